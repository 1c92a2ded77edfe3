/*
 * Closed-loop echo load generator, in C so that it is not the bottleneck. C connections each keep D
 * messages of S bytes in flight: a message is sent as soon as an earlier one's echo has fully
 * arrived. Every echoed byte is compared with what was sent (a pseudo-random stream per
 * connection), so a server that drops, reorders or corrupts bytes fails the run. Once every
 * connection is up and a warm-up has passed, a timed window counts messages, their round-trip
 * latency (p50/p99), this process's own CPU time and, given --server-pid, the server's CPU time
 * from /proc/PID/stat (summed over a comma-separated list of processes: a server of several, such as
 * Node's cluster). --server-tasks names threads (PID/TID) or processes (PID) whose CPU time is
 * reported one by one over the same window ("serverTasksCpuNs"): each thread's share.
 *
 *   loadgen --port P [--host 127.0.0.1] [--connections 100] [--depth 1] [--size 64]
 *           [--warmup-ms 500] [--duration-ms 2000] [--server-pid PID[,PID...]] [--server-tasks PID[/TID],...]
 *
 * Prints one JSON line (messages may be 0 if the server is too slow: the caller decides); exits 3 if
 * the server broke the stream, 2 on any other failure.
 */
#define _GNU_SOURCE
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "histogram.h"

/* The byte stream every connection sends: a pseudo-random pattern with a prime period, stored with
 * one extra chunk appended so that any window of up to CHUNK bytes is contiguous. */
#define CONNECT_TIMEOUT_MS 15000
#define PERIOD 65521
#define CHUNK 65536
static unsigned char pattern[PERIOD + CHUNK];
static unsigned char recv_buffer[CHUNK];

typedef struct {
  int fd;
  int connected;
  int want_out; /* EPOLLOUT registered */
  uint64_t base;     /* where in the pattern this connection's stream starts */
  uint64_t queued;   /* bytes of messages issued so far */
  uint64_t written;  /* bytes handed to the kernel */
  uint64_t received; /* bytes echoed back and verified */
  uint64_t issued;   /* messages issued */
  uint64_t *sent_at; /* issue time of message m at [m % depth] */
} connection;

static long n_conns = 100, depth = 1, size = 64;
static int epfd;
static connection *conns;

/* Latency histogram (histogram.h's buckets), in ns. */
static uint64_t histogram[BUCKETS];
static uint64_t latency_count, latency_sum_ns, latency_max_ns;

static double percentile_us(double p) {
  if (latency_count == 0) return 0;
  uint64_t rank = (uint64_t)ceil(p * (double)latency_count), seen = 0;
  if (rank == 0) rank = 1;
  for (int i = 0; i < BUCKETS; i++) {
    seen += histogram[i];
    if (seen >= rank) return bucket_middle(i) / 1000;
  }
  return (double)latency_max_ns / 1000;
}

static void fill_pattern(void) {
  uint32_t x = 2463534242u;
  for (int i = 0; i < PERIOD; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    pattern[i] = (unsigned char)x;
  }
  for (int i = PERIOD; i < PERIOD + CHUNK; i++) pattern[i] = pattern[i - PERIOD]; /* CHUNK > PERIOD: overlaps */
}

static void set_interest(connection *c, int want_out) {
  if (c->want_out == want_out) return;
  struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) die("epoll_ctl");
  c->want_out = want_out;
}

static void flush(connection *c) {
  while (c->written < c->queued) {
    uint64_t left = c->queued - c->written;
    size_t len = left < CHUNK ? (size_t)left : CHUNK;
    ssize_t n = send(c->fd, pattern + (c->base + c->written) % PERIOD, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      die("send");
    }
    c->written += (uint64_t)n;
  }
  set_interest(c, c->written < c->queued);
}

/* Issues messages until D are in flight. */
static void top_up(connection *c, uint64_t now) {
  uint64_t done = c->received / (uint64_t)size;
  while (c->issued - done < (uint64_t)depth) {
    c->sent_at[c->issued % (uint64_t)depth] = now;
    c->issued++;
    c->queued += (uint64_t)size;
  }
  flush(c);
}

static int in_window, draining;
static uint64_t window_messages, messages_total, bytes_verified;

static void on_readable(connection *c) {
  for (;;) {
    ssize_t n = recv(c->fd, recv_buffer, sizeof recv_buffer, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      die("recv");
    }
    if (n == 0) {
      errno = 0;
      die("the server closed connection %ld", (long)(c - conns));
    }
    if ((uint64_t)n + c->received > c->written) {
      errno = 0;
      fprintf(stderr, "bench: connection %ld received %llu bytes more than it sent\n", (long)(c - conns),
              (unsigned long long)((uint64_t)n + c->received - c->written));
      exit(3);
    }
    if (memcmp(recv_buffer, pattern + (c->base + c->received) % PERIOD, (size_t)n) != 0) {
      fprintf(stderr, "bench: connection %ld: echoed bytes at offset %llu differ from those sent\n", (long)(c - conns),
              (unsigned long long)c->received);
      exit(3);
    }
    uint64_t before = c->received / (uint64_t)size;
    c->received += (uint64_t)n;
    bytes_verified += (uint64_t)n;
    uint64_t after = c->received / (uint64_t)size, now = now_ns();
    for (uint64_t m = before; m < after; m++) {
      messages_total++;
      if (!in_window) continue;
      uint64_t latency = now - c->sent_at[m % (uint64_t)depth];
      histogram[bucket_of(latency)]++;
      latency_count++;
      latency_sum_ns += latency;
      if (latency > latency_max_ns) latency_max_ns = latency;
      window_messages++;
    }
    if (after > before && !draining) top_up(c, now);
    if ((size_t)n < sizeof recv_buffer) return;
  }
}

static void on_connected(connection *c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) die("getsockopt");
  if (err != 0) {
    errno = err;
    die("connect (connection %ld)", (long)(c - conns));
  }
  c->connected = 1;
  top_up(c, now_ns());
}

/*
 * After the window: issue nothing more and wait (at most DRAIN_MS) until every byte sent has come
 * back and been verified, so the run ends on a clean close instead of a reset. Returns 1 if all did.
 */
#define DRAIN_MS 2000
static int drain_in_flight(struct epoll_event *events) {
  draining = 1;
  in_window = 0; /* what completes now is not counted */
  uint64_t deadline = now_ns() + (uint64_t)DRAIN_MS * 1000000u;
  for (;;) {
    long busy = 0;
    for (long i = 0; i < n_conns; i++) busy += conns[i].connected && conns[i].received < conns[i].queued;
    if (busy == 0) return 1;
    uint64_t now = now_ns();
    if (now >= deadline) return 0;
    int n = epoll_wait(epfd, events, 1024, (int)((deadline - now) / 1000000) + 1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      connection *c = events[i].data.ptr;
      if (!c->connected) continue;
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
      if (events[i].events & EPOLLOUT) flush(c);
    }
  }
}

/* utime + stime of a process (tid 0) or one of its threads, in ns, from /proc (clock ticks, so 10 ms
 * resolution at 100 Hz). */
static double task_cpu_ns(long pid, long tid) {
  char path[96], text[2048];
  if (tid) snprintf(path, sizeof path, "/proc/%ld/task/%ld/stat", pid, tid);
  else snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t got = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[got] = '\0';
  char *p = strrchr(text, ')'); /* the command name may hold spaces and parentheses */
  if (!p) return -1;
  unsigned long utime = 0, stime = 0;
  /* After ")": state is field 3; utime and stime are fields 14 and 15. */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return -1;
  return (double)(utime + stime) * 1e9 / (double)sysconf(_SC_CLK_TCK);
}

/* Processes and threads to read CPU time from: "PID" or "PID/TID" entries, comma-separated. */
#define MAX_TASKS 64
typedef struct {
  int count;
  long pid[MAX_TASKS], tid[MAX_TASKS];
  double cpu0[MAX_TASKS], cpu1[MAX_TASKS];
} task_list;

static void parse_tasks(const char *name, const char *text, task_list *list, int threads_allowed) {
  char *copy = strdup(text), *save = NULL;
  for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    if (list->count == MAX_TASKS) {
      errno = 0;
      die("%s: at most %d entries", name, MAX_TASKS);
    }
    char *slash = strchr(item, '/');
    if (slash && !threads_allowed) {
      errno = 0;
      die("%s takes process ids only", name);
    }
    if (slash) *slash = '\0';
    list->pid[list->count] = parse_long(name, item, 1, 1L << 30);
    list->tid[list->count] = slash ? parse_long(name, slash + 1, 1, 1L << 30) : 0;
    list->count++;
  }
  free(copy);
}

/* Reads every entry into cpu0 (start) or cpu1 (end); returns their sum, or -1 if one could not be read. */
static double read_tasks(task_list *list, int end) {
  double sum = 0;
  int ok = 1;
  for (int i = 0; i < list->count; i++) {
    double v = task_cpu_ns(list->pid[i], list->tid[i]);
    (end ? list->cpu1 : list->cpu0)[i] = v;
    if (v < 0) ok = 0;
    sum += v;
  }
  return ok ? sum : -1;
}

static double self_cpu_ns(double *user, double *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = (double)ru.ru_utime.tv_sec * 1e9 + (double)ru.ru_utime.tv_usec * 1e3;
  *sys = (double)ru.ru_stime.tv_sec * 1e9 + (double)ru.ru_stime.tv_usec * 1e3;
  return *user + *sys;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *port = NULL;
  long warmup_ms = 500, duration_ms = 2000;
  static task_list servers, tasks;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *name = argv[i], *value = argv[i + 1];
    if (strcmp(name, "--host") == 0) host = value;
    else if (strcmp(name, "--port") == 0) port = value;
    else if (strcmp(name, "--connections") == 0) n_conns = parse_long(name, value, 1, 1000000);
    else if (strcmp(name, "--depth") == 0) depth = parse_long(name, value, 1, 1024);
    else if (strcmp(name, "--size") == 0) size = parse_long(name, value, 1, 16 * 1024 * 1024);
    else if (strcmp(name, "--warmup-ms") == 0) warmup_ms = parse_long(name, value, 0, 3600000);
    else if (strcmp(name, "--duration-ms") == 0) duration_ms = parse_long(name, value, 1, 3600000);
    else if (strcmp(name, "--server-pid") == 0) parse_tasks(name, value, &servers, 0);
    else if (strcmp(name, "--server-tasks") == 0) parse_tasks(name, value, &tasks, 1);
    else {
      errno = 0;
      die("unknown option %s", name);
    }
  }
  if (!port || argc % 2 == 0) {
    errno = 0;
    die("usage: loadgen --port P [--host H] [--connections C] [--depth D] [--size S] [--warmup-ms W] [--duration-ms T] [--server-pid PID[,PID...]] [--server-tasks PID[/TID],...]");
  }
  char why[256];
  if (ensure_descriptors((rlim_t)n_conns + 64, why, sizeof why) != 0) {
    errno = 0;
    die("%s", why);
  }
  fill_pattern();

  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *addr;
  int rc = getaddrinfo(host, port, &hints, &addr);
  if (rc != 0) {
    errno = 0;
    die("getaddrinfo %s:%s: %s", host, port, gai_strerror(rc));
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  conns = calloc((size_t)n_conns, sizeof *conns);
  if (!conns) die("calloc");
  uint64_t start = now_ns();
  for (long i = 0; i < n_conns; i++) {
    connection *c = &conns[i];
    c->base = (uint64_t)i * 7919 % PERIOD;
    c->sent_at = calloc((size_t)depth, sizeof *c->sent_at);
    if (!c->sent_at) die("calloc");
    c->fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) != 0 && errno != EINPROGRESS) die("connect %s:%s", host, port);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->want_out = 1;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl");
  }
  freeaddrinfo(addr);

  /* The warm-up starts once every connection is up (SYN retries can take a second at C = 1000). */
  const uint64_t connect_deadline = start + (uint64_t)CONNECT_TIMEOUT_MS * 1000000u;
  uint64_t window_start = UINT64_MAX, window_end = UINT64_MAX;
  double server_cpu0 = 0, self_cpu0 = 0, user0 = 0, sys0 = 0, user1 = 0, sys1 = 0;
  uint64_t connected_at = 0;
  long connected = 0;
  struct epoll_event events[1024];
  for (;;) {
    uint64_t now = now_ns();
    if (connected < n_conns && now >= connect_deadline) {
      errno = 0;
      die("only %ld of %ld connections were established within %d ms", connected, n_conns, CONNECT_TIMEOUT_MS);
    }
    if (!in_window && now >= window_start) {
      in_window = 1;
      self_cpu0 = self_cpu_ns(&user0, &sys0);
      if (servers.count) server_cpu0 = read_tasks(&servers, 0);
      read_tasks(&tasks, 0);
    }
    if (now >= window_end) break;
    uint64_t next = connected < n_conns ? connect_deadline : in_window ? window_end : window_start;
    int timeout = (int)((next - now + 999999) / 1000000);
    int n = epoll_wait(epfd, events, 1024, timeout < 100 ? timeout : 100);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      connection *c = events[i].data.ptr;
      if (!c->connected) {
        if (!(events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
        on_connected(c);
        if (++connected == n_conns) {
          connected_at = now_ns();
          window_start = connected_at + (uint64_t)warmup_ms * 1000000u;
          window_end = window_start + (uint64_t)duration_ms * 1000000u;
        }
        continue;
      }
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
      if (events[i].events & EPOLLOUT) flush(c);
    }
  }
  double server_cpu1 = servers.count ? read_tasks(&servers, 1) : 0;
  read_tasks(&tasks, 1);
  double self_cpu1 = self_cpu_ns(&user1, &sys1);
  double window_ns = (double)(now_ns() - window_start);
  int drained = drain_in_flight(events);
  double server_cpu = servers.count && server_cpu0 >= 0 && server_cpu1 >= 0 ? server_cpu1 - server_cpu0 : -1;
  printf("{\"connections\":%ld,\"depth\":%ld,\"size\":%ld,\"warmupMs\":%ld,\"durationMs\":%ld,"
         "\"connectMs\":%.3f,\"windowNs\":%.0f,\"messages\":%llu,\"messagesTotal\":%llu,\"bytesVerified\":%llu,"
         "\"messagesPerSec\":%.1f,\"latencyUs\":{\"p50\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"mean\":%.2f,\"max\":%.2f},"
         "\"loadgenCpu\":{\"userNs\":%.0f,\"sysNs\":%.0f,\"share\":%.4f},"
         "\"serverCpuNs\":%.0f,\"serverCpuNsPerMessage\":%.1f,\"drained\":%s,\"serverTasksCpuNs\":[",
         n_conns, depth, size, warmup_ms, duration_ms, connected_at ? (double)(connected_at - start) / 1e6 : -1.0,
         window_ns, (unsigned long long)window_messages, (unsigned long long)messages_total,
         (unsigned long long)bytes_verified, (double)window_messages * 1e9 / window_ns, percentile_us(0.5),
         percentile_us(0.99), percentile_us(0.999), latency_count ? (double)latency_sum_ns / (double)latency_count / 1000 : 0.0,
         (double)latency_max_ns / 1000, user1 - user0, sys1 - sys0, (self_cpu1 - self_cpu0) / window_ns, server_cpu,
         server_cpu >= 0 && window_messages > 0 ? server_cpu / (double)window_messages : -1.0, drained ? "true" : "false");
  for (int i = 0; i < tasks.count; i++) {
    double v = tasks.cpu0[i] >= 0 && tasks.cpu1[i] >= 0 ? tasks.cpu1[i] - tasks.cpu0[i] : -1;
    printf("%s%.0f", i ? "," : "", v);
  }
  printf("]}\n");
  for (long i = 0; i < n_conns; i++) close(conns[i].fd);
  close(epfd);
  return 0;
}
