/*
 * The FTP benchmark's load: pyftpdlib's ftpbench procedure, in C so that the client is not what
 * is measured (ftpbench's own Python client reads 8 KiB at a time). Steps, in order:
 *
 *   stor        one client: whole STORs of --transfer-size (one file name) until --seconds have
 *               passed -> MB/s
 *   retr        one client: whole RETRs of a --transfer-size file (uploaded first, untimed) until
 *               --seconds have passed -> MB/s
 *
 * Transfers are never cut short: some servers do not answer a RETR whose client hung up (ftp-srv
 * 4.6 hangs), and the time of whole transfers is what is measured.
 *   login       --clients clients connect and log in at once (a thread each) -> seconds; they stay
 *               (a connection with no greeting within 3 s is made again, and counted: "retries")
 *   stor-idle   as stor, with those clients connected and idle
 *   retr-idle   as retr, likewise
 *   retr-n      every client RETRs a --file-size file at once -> seconds
 *   stor-n      every client STORs --file-size bytes at once (one file name, as ftpbench) -> seconds
 *   quit        every client sends QUIT at once and waits for 221 and the close -> seconds
 *
 * A concurrent step's seconds run from the first client's start to the last client's final reply
 * (each client reads the clock itself: see concurrent()).
 *
 * After each step it prints one JSON line and waits for a line on stdin, so that the harness can
 * read the server's memory between steps (and before the first: it waits once at the start too).
 * Any protocol failure ends the program with a message on stderr and exit status 1.
 *
 * With --once retr|stor it only logs in, makes that one transfer of --name (a STOR of
 * --transfer-size bytes), prints {"bytes":B,"seconds":S} (the transfer command to its 226) and quits:
 * the whole-file rows of the benchmark, beside curl and Python's ftplib.
 *
 *   bench-ftp-load --port P --user U --pass W [--clients N] [--file-size B] [--transfer-size B] [--seconds S]
 *   bench-ftp-load --port P --user U --pass W --once retr|stor --name NAME [--transfer-size B]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port = 0;
static const char *user = NULL;
static const char *pass = NULL;
static int clients = 200;
static long long file_size = 10LL << 20;
static long long transfer_size = 256LL << 20;
static double seconds = 1.0;
static const char *once = NULL;
static const char *once_name = NULL;

#define IO_CHUNK (256 * 1024)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench-ftp-load: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

typedef struct {
  int fd;
  char buf[4096];
  size_t len;
  char last[512]; /* The last reply line, for messages. */
} ftp_t;

static int tcp_connect(int to_port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket: %s", strerror(errno));
  struct timeval tv = {60, 0}; /* A server that stops answering fails the run instead of hanging it. */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(to_port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int attempt = 0;; attempt++) {
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) break;
    if (errno == EINTR) continue;
    /* A full backlog under a connect storm: SYN retries take care of it, but a refusal is final. */
    die("connect to port %d: %s", to_port, strerror(errno));
  }
  return fd;
}

static void send_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("send: %s", strerror(errno));
    }
    data += n;
    len -= (size_t)n;
  }
}

/* One line from the control connection (without CRLF) into line. */
static void read_line(ftp_t *c, char *line, size_t size) {
  for (;;) {
    char *end = memchr(c->buf, '\n', c->len);
    if (end != NULL) {
      size_t n = (size_t)(end - c->buf) + 1;
      size_t copy = n - 1;
      if (copy > 0 && c->buf[copy - 1] == '\r') copy--;
      if (copy >= size) copy = size - 1;
      memcpy(line, c->buf, copy);
      line[copy] = 0;
      memmove(c->buf, c->buf + n, c->len - n);
      c->len -= n;
      return;
    }
    if (c->len == sizeof c->buf) die("a reply line over %zu bytes", sizeof c->buf);
    ssize_t got = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) die("control connection: %s (last reply: %s)", got == 0 ? "closed by the server" : strerror(errno), c->last);
    c->len += (size_t)got;
  }
}

/* A whole reply (multi-line ones too); returns its code. */
static int reply(ftp_t *c) {
  char line[4096];
  read_line(c, line, sizeof line);
  if (strlen(line) < 4) die("a malformed reply: %s", line);
  int code = atoi(line);
  if (line[3] == '-') {
    char end[5];
    memcpy(end, line, 3);
    end[3] = ' ';
    end[4] = 0;
    do read_line(c, line, sizeof line);
    while (strncmp(line, end, 4) != 0);
  }
  snprintf(c->last, sizeof c->last, "%s", line);
  return code;
}

static int command(ftp_t *c, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 2, fmt, ap);
  va_end(ap);
  line[n++] = '\r';
  line[n++] = '\n';
  send_all(c->fd, line, (size_t)n);
  return reply(c);
}

static void expect(ftp_t *c, int want, int got, const char *what) {
  if (got != want) die("%s: expected %d, got: %s", what, want, c->last);
}

/* Connections that got no greeting in time and were made again (see ftp_login). */
static atomic_int greeting_retries = 0;

static void ftp_login(ftp_t *c) {
  c->len = 0;
  /*
   * A burst of connects can overflow a small listen backlog (vsftpd's is 32); the kernel then
   * answers with SYN cookies and may drop the handshake's last ACK, so the client believes it is
   * connected while the server never saw it, and a protocol where the server speaks first waits
   * forever. A client gives up on such a connection and connects again, as real clients do.
   */
  for (int attempt = 0;; attempt++) {
    c->fd = tcp_connect(port);
    struct pollfd greeting = {.fd = c->fd, .events = POLLIN};
    int ready;
    while ((ready = poll(&greeting, 1, 3000)) < 0 && errno == EINTR) {
    }
    if (ready > 0) break;
    if (attempt == 20) die("no greeting after %d connections", attempt + 1);
    close(c->fd);
    atomic_fetch_add(&greeting_retries, 1);
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  expect(c, 220, reply(c), "greeting");
  expect(c, 331, command(c, "USER %s", user), "USER");
  expect(c, 230, command(c, "PASS %s", pass), "PASS");
  expect(c, 200, command(c, "TYPE I"), "TYPE I");
}

/* EPSV, then a connection to the port it names. */
static int data_connection(ftp_t *c) {
  expect(c, 229, command(c, "EPSV"), "EPSV");
  char *open = strstr(c->last, "(|||");
  if (open == NULL) die("EPSV: no port in: %s", c->last);
  return tcp_connect(atoi(open + 4));
}

static void expect_preliminary(ftp_t *c, const char *what) {
  int code = reply(c);
  if (code != 125 && code != 150) die("%s: expected 125 or 150, got: %s", what, c->last);
}

/* RETR name, read to the end; returns the bytes. */
static long long retr(ftp_t *c, const char *name, char *buf) {
  int data = data_connection(c);
  char line[600];
  snprintf(line, sizeof line, "RETR %s\r\n", name);
  send_all(c->fd, line, strlen(line));
  expect_preliminary(c, "RETR");
  long long total = 0;
  for (;;) {
    ssize_t n = recv(data, buf, IO_CHUNK, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("RETR data: %s", strerror(errno));
    if (n == 0) break;
    total += n;
  }
  close(data);
  expect(c, 226, reply(c), "RETR");
  return total;
}

/* STOR name of `bytes` bytes. */
static long long stor(ftp_t *c, const char *name, long long bytes, const char *buf) {
  int data = data_connection(c);
  char line[600];
  snprintf(line, sizeof line, "STOR %s\r\n", name);
  send_all(c->fd, line, strlen(line));
  expect_preliminary(c, "STOR");
  long long sent = 0;
  while (sent < bytes) {
    size_t n = bytes - sent < IO_CHUNK ? (size_t)(bytes - sent) : IO_CHUNK;
    send_all(data, buf, n);
    sent += (long long)n;
  }
  shutdown(data, SHUT_WR);
  char drain[64];
  while (recv(data, drain, sizeof drain, 0) > 0) {
    /* The server closes its side once it has it all (before or after its 226): wait for that. */
  }
  close(data);
  expect(c, 226, reply(c), "STOR");
  return sent;
}

static void step_done(const char *json) {
  printf("%s\n", json);
  fflush(stdout);
  char go[16];
  if (fgets(go, sizeof go, stdin) == NULL) exit(0); /* The harness went away. */
}

/* One client for `seconds`: STOR files of transfer_size, or RETR the file again and again. */
static void throughput(const char *step, int store, char *buf) {
  ftp_t *c = calloc(1, sizeof *c);
  ftp_login(c);
  double start = now();
  long long total = 0;
  while (now() < start + seconds) {
    total += store ? stor(c, "bench-1.bin", transfer_size, buf) : retr(c, "bench-r.bin", buf);
  }
  double elapsed = now() - start;
  expect(c, 221, command(c, "QUIT"), "QUIT");
  close(c->fd);
  free(c);
  char json[256];
  snprintf(json, sizeof json, "{\"step\":\"%s\",\"bytes\":%lld,\"seconds\":%.6f,\"mbPerSec\":%.3f}", step, total, elapsed,
           total / elapsed / (1024.0 * 1024.0));
  step_done(json);
}

typedef enum { JOB_LOGIN, JOB_RETR, JOB_STOR, JOB_QUIT } job_t;

static ftp_t *sessions;
static pthread_barrier_t barrier;
static job_t job;
static char *shared_buf;
/* When each client began its part of the step and when it had its last reply (see concurrent()). */
static double *began;
static double *finished;

static void *worker(void *arg) {
  intptr_t i = (intptr_t)arg;
  ftp_t *c = &sessions[i];
  char *buf = malloc(IO_CHUNK);
  pthread_barrier_wait(&barrier);
  began[i] = now();
  switch (job) {
    case JOB_LOGIN: ftp_login(c); break;
    case JOB_RETR:
      if (retr(c, "bench-n.bin", buf) != file_size) die("RETR: short file");
      break;
    case JOB_STOR: stor(c, "bench-n.bin", file_size, shared_buf); break;
    case JOB_QUIT: {
      expect(c, 221, command(c, "QUIT"), "QUIT");
      char rest[64];
      while (recv(c->fd, rest, sizeof rest, 0) > 0) {
        /* Until the server closes. */
      }
      close(c->fd);
      break;
    }
  }
  finished[i] = now();
  free(buf);
  return NULL;
}

/* Every client does `what` at once; the time from the first client's start until the last is done. */
static void concurrent(const char *step, job_t what) {
  job = what;
  pthread_t *threads = calloc((size_t)clients, sizeof *threads);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_barrier_init(&barrier, NULL, (unsigned)clients + 1);
  for (int i = 0; i < clients; i++) {
    if (pthread_create(&threads[i], &attr, worker, (void *)(intptr_t)i) != 0) die("pthread_create failed");
  }
  pthread_barrier_wait(&barrier);
  for (int i = 0; i < clients; i++) pthread_join(threads[i], NULL);
  /*
   * From the first client's start to the last client's final reply, as the clients saw them. Not
   * this thread's own clock around the joins: released from the barrier together with N clients
   * on one core, it may run only once most of them are done (by 0.35 s of a 1.3 s step against
   * vsftpd, whose session processes answer fast enough that the clients rarely block).
   */
  double first = began[0], last = finished[0];
  for (int i = 1; i < clients; i++) {
    if (began[i] < first) first = began[i];
    if (finished[i] > last) last = finished[i];
  }
  double elapsed = last - first;
  pthread_barrier_destroy(&barrier);
  free(threads);
  char json[256];
  snprintf(json, sizeof json, "{\"step\":\"%s\",\"clients\":%d,\"seconds\":%.6f,\"retries\":%d}", step, clients, elapsed,
           atomic_exchange(&greeting_retries, 0));
  step_done(json);
}

/* --once: one transfer in one session. */
static int transfer_once(char *buf) {
  int store = !strcmp(once, "stor");
  if ((!store && strcmp(once, "retr")) || once_name == NULL) die("--once takes retr or stor, and needs --name");
  ftp_t c = {0};
  ftp_login(&c);
  double start = now();
  long long bytes = store ? stor(&c, once_name, transfer_size, buf) : retr(&c, once_name, buf);
  double elapsed = now() - start;
  expect(&c, 221, command(&c, "QUIT"), "QUIT");
  close(c.fd);
  printf("{\"bytes\":%lld,\"seconds\":%.6f}\n", bytes, elapsed);
  return 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--port")) port = atoi(v);
    else if (!strcmp(k, "--user")) user = v;
    else if (!strcmp(k, "--pass")) pass = v;
    else if (!strcmp(k, "--clients")) clients = atoi(v);
    else if (!strcmp(k, "--file-size")) file_size = atoll(v);
    else if (!strcmp(k, "--transfer-size")) transfer_size = atoll(v);
    else if (!strcmp(k, "--seconds")) seconds = atof(v);
    else if (!strcmp(k, "--once")) once = v;
    else if (!strcmp(k, "--name")) once_name = v;
    else die("unknown option %s", k);
  }
  if (port <= 0 || user == NULL || pass == NULL || clients < 1 || file_size < 1 || transfer_size < 1 || seconds <= 0) {
    die("usage: bench-ftp-load --port P --user U --pass W [--clients N] [--file-size B] [--transfer-size B] [--seconds S] [--once retr|stor --name NAME]");
  }
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  char *buf = malloc(IO_CHUNK);
  shared_buf = malloc(IO_CHUNK);
  memset(shared_buf, 'x', IO_CHUNK);
  memcpy(buf, shared_buf, IO_CHUNK);
  if (once != NULL) return transfer_once(buf);
  sessions = calloc((size_t)clients, sizeof *sessions);
  began = calloc((size_t)clients, sizeof *began);
  finished = calloc((size_t)clients, sizeof *finished);

  {
    /* The file the RETR steps read, whole (a timed STOR may end mid-file). */
    ftp_t c = {0};
    ftp_login(&c);
    stor(&c, "bench-r.bin", transfer_size, buf);
    expect(&c, 221, command(&c, "QUIT"), "QUIT");
    close(c.fd);
  }
  step_done("{\"step\":\"start\"}");
  throughput("stor", 1, buf);
  throughput("retr", 0, buf);
  concurrent("login", JOB_LOGIN);
  throughput("stor-idle", 1, buf);
  throughput("retr-idle", 0, buf);
  {
    /* The file every client downloads, uploaded once first. */
    ftp_t c = {0};
    ftp_login(&c);
    stor(&c, "bench-n.bin", file_size, buf);
    expect(&c, 221, command(&c, "QUIT"), "QUIT");
    close(c.fd);
  }
  concurrent("retr-n", JOB_RETR);
  concurrent("stor-n", JOB_STOR);
  concurrent("quit", JOB_QUIT);
  {
    ftp_t c = {0};
    ftp_login(&c);
    command(&c, "DELE bench-1.bin");
    command(&c, "DELE bench-r.bin");
    command(&c, "DELE bench-n.bin");
    command(&c, "QUIT");
    close(c.fd);
  }
  printf("{\"step\":\"done\"}\n");
  return 0;
}
