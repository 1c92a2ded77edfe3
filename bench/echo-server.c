/*
 * The ceiling for the echo benchmark: a small epoll (level-triggered) echo server in C. It reads
 * once per readiness event and sends at once; only what the kernel does not take is kept, and then
 * that connection waits for EPOLLOUT (and is not read) until the rest is sent.
 *
 *   echo-server [--host 127.0.0.1] [--port 0] [--backlog 4096] [--threads 1] [--reuseport]
 *
 * With --threads N (N > 1) each of N threads runs the same loop on its own SO_REUSEPORT listener and
 * its own epoll instance, and the kernel spreads connections over them (--reuseport alone sets the
 * option on a single listener, so that 1 and N threads are the same program).
 *
 * Prints "threads {"tids":[...]}" (the kernel thread ids, to read each one's CPU time) and
 * "listening on HOST:PORT" when ready; SIGTERM/SIGINT stop it, and it prints "stats {...}" with the
 * totals and each thread's own.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

#define BUFFER 65536

typedef struct {
  int fd;
  unsigned char *pending; /* what the last send left over, or NULL */
  size_t pending_off, pending_len;
} connection;

/* One serving thread: its listener, its epoll instance, its buffer and its counts. */
typedef struct {
  int listener, epfd;
  long tid;
  pthread_t thread;
  unsigned long long accepted, bytes_echoed;
  unsigned char buffer[BUFFER];
} worker;

/* Readable (never drained) once a stop is asked: every thread's epoll reports it. */
static int stop_fd;
static connection stop_key;

static void watch(worker *w, connection *c, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(w->epfd, op, c->fd, &ev) != 0) die("epoll_ctl");
}

static void drop(connection *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c->pending);
  free(c);
}

/* Sends what is pending; returns 1 when all of it is gone. */
static int send_pending(worker *w, connection *c) {
  while (c->pending_off < c->pending_len) {
    ssize_t n = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    c->pending_off += (size_t)n;
    w->bytes_echoed += (unsigned long long)n;
  }
  free(c->pending);
  c->pending = NULL;
  return 1;
}

static void on_readable(worker *w, connection *c) {
  unsigned char *buffer = w->buffer;
  ssize_t got = recv(c->fd, buffer, BUFFER, 0);
  if (got < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) drop(c);
    return;
  }
  if (got == 0) {
    drop(c);
    return;
  }
  ssize_t sent = send(c->fd, buffer, (size_t)got, MSG_NOSIGNAL);
  if (sent < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      drop(c);
      return;
    }
    sent = 0;
  }
  w->bytes_echoed += (unsigned long long)sent;
  if (sent == got) return;
  c->pending_len = (size_t)(got - sent);
  c->pending_off = 0;
  c->pending = malloc(c->pending_len);
  if (!c->pending) die("malloc");
  memcpy(c->pending, buffer + sent, c->pending_len);
  watch(w, c, EPOLLOUT, EPOLL_CTL_MOD); /* stop reading until the rest is out */
}

static void on_writable(worker *w, connection *c) {
  int done = send_pending(w, c);
  if (done < 0) drop(c);
  else if (done) watch(w, c, EPOLLIN, EPOLL_CTL_MOD);
}

static pthread_barrier_t started;

static void *serve(void *arg) {
  worker *w = arg;
  w->tid = (long)syscall(SYS_gettid);
  connection listen_key = {.fd = w->listener};
  watch(w, &listen_key, EPOLLIN, EPOLL_CTL_ADD);
  watch(w, &stop_key, EPOLLIN, EPOLL_CTL_ADD);
  pthread_barrier_wait(&started);
  struct epoll_event events[1024];
  const int one = 1;
  for (;;) {
    int n = epoll_wait(w->epfd, events, 1024, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      connection *c = events[i].data.ptr;
      if (c == &stop_key) return NULL;
      if (c == &listen_key) {
        int fd;
        while ((fd = accept4(w->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          connection *nc = calloc(1, sizeof *nc);
          if (!nc) die("calloc");
          nc->fd = fd;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          watch(w, nc, EPOLLIN, EPOLL_CTL_ADD);
          w->accepted++;
        }
        continue;
      }
      if (c->pending) on_writable(w, c);
      else on_readable(w, c);
    }
  }
}

/* A non-blocking listening socket on addr; SO_REUSEPORT when asked (several threads, one port). */
static int open_listener(struct addrinfo *addr, int reuseport, long backlog) {
  int fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) die("setsockopt(SO_REUSEPORT)");
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind(fd, addr->ai_addr, addr->ai_addrlen) != 0) die("bind");
  if (listen(fd, (int)backlog) != 0) die("listen");
  return fd;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *port = "0";
  long backlog = 4096, threads = 1;
  int reuseport = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--reuseport") == 0) reuseport = 1;
    else if (i + 1 >= argc) break;
    else if (strcmp(argv[i], "--host") == 0) host = argv[++i];
    else if (strcmp(argv[i], "--port") == 0) port = argv[++i];
    else if (strcmp(argv[i], "--backlog") == 0) backlog = parse_long("--backlog", argv[++i], 1, 65535);
    else if (strcmp(argv[i], "--threads") == 0) threads = parse_long("--threads", argv[++i], 1, 1024);
    else {
      errno = 0;
      die("usage: echo-server [--host H] [--port P] [--backlog N] [--threads N] [--reuseport]");
    }
  }
  if (threads > 1) reuseport = 1;
  struct rlimit lim; /* as many connections as the hard limit allows */
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  /* Signals are taken by this thread alone, with sigwait; the serving threads never see them. */
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
  signal(SIGPIPE, SIG_IGN);

  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *addr;
  int rc = getaddrinfo(host, port, &hints, &addr);
  if (rc != 0) {
    errno = 0;
    die("getaddrinfo %s: %s", host, gai_strerror(rc));
  }
  worker *workers = calloc((size_t)threads, sizeof *workers);
  if (!workers) die("calloc");
  workers[0].listener = open_listener(addr, reuseport, backlog);

  struct sockaddr_storage bound;
  socklen_t len = sizeof bound;
  getsockname(workers[0].listener, (struct sockaddr *)&bound, &len);
  /* Port 0: the others join the port the first one got. */
  memcpy(addr->ai_addr, &bound, addr->ai_addrlen);
  for (long t = 1; t < threads; t++) workers[t].listener = open_listener(addr, reuseport, backlog);
  freeaddrinfo(addr);

  stop_fd = eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) die("eventfd");
  stop_key.fd = stop_fd;
  pthread_barrier_init(&started, NULL, (unsigned)threads + 1);
  for (long t = 0; t < threads; t++) {
    workers[t].epfd = epoll_create1(EPOLL_CLOEXEC);
    if (workers[t].epfd < 0) die("epoll_create1");
    if (pthread_create(&workers[t].thread, NULL, serve, &workers[t]) != 0) die("pthread_create");
  }
  pthread_barrier_wait(&started);

  printf("threads {\"tids\":[");
  for (long t = 0; t < threads; t++) printf("%s%ld", t ? "," : "", workers[t].tid);
  printf("]}\n");
  print_listening(&bound);

  int sig;
  sigwait(&stop_signals, &sig);
  uint64_t one = 1;
  if (write(stop_fd, &one, sizeof one) != sizeof one) die("write(eventfd)");
  unsigned long long accepted = 0, bytes_echoed = 0;
  for (long t = 0; t < threads; t++) {
    pthread_join(workers[t].thread, NULL);
    accepted += workers[t].accepted;
    bytes_echoed += workers[t].bytes_echoed;
  }
  printf("stats {\"accepted\":%llu,\"bytesEchoed\":%llu,\"threads\":[", accepted, bytes_echoed);
  for (long t = 0; t < threads; t++) {
    printf("%s{\"thread\":%ld,\"tid\":%ld,\"accepted\":%llu,\"bytesEchoed\":%llu}", t ? "," : "", t + 1, workers[t].tid,
           workers[t].accepted, workers[t].bytes_echoed);
  }
  printf("]}\n");
  return 0;
}
