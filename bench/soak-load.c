/*
 * The soak benchmark's load generator (bench/soak.ts drives it), in C so that it can open 10,000
 * connections and make a million connect/echo/close cycles without being the limit. Two modes:
 *
 *   hold:  C connections (opened at most --pending at a time, so a listen backlog never overflows),
 *          each sending one S-byte message every --interval-ms (staggered evenly over the interval),
 *          at most one in flight. Every --report-ms it prints a "sample" line (messages, p99 and the
 *          slowest echo of that interval, turns skipped as late, and how far behind its schedule this
 *          process itself sent: a stall of its own shows there, not as the server's); after --duration-ms it stops sending, waits for every byte in flight, and
 *          prints a "done" line (totals, p50/p99 after --warmup-ms).
 *   churn: --cycles connect -> send S bytes -> receive their echo -> close cycles, --parallel at a
 *          time. Prints a "progress" line every --report-ms and a "done" line (cycles/s, p99 cycle time).
 *
 *   soak-load --mode hold|churn --port P [--host 127.0.0.1] [--size 64] [--report-ms 5000]
 *             hold:  [--connections 10000] [--interval-ms 1000] [--duration-ms 60000] [--warmup-ms 1000] [--pending 256]
 *             churn: [--cycles 1000000] [--parallel 100]
 *
 * Every echoed byte is compared with what was sent. Failures (refused or reset connections, an early
 * close, wrong bytes) are counted, the first one described, and the run goes on: the "done" line says
 * how many errors and how many bytes were sent but never came back. Exits 2 only on misuse.
 *
 * From a loopback host the connections come from source addresses spread over 127.0.0.1-127.0.0.254:
 * a million client-side closes leave sockets in TIME_WAIT, and one source address has only ~28,000
 * ephemeral ports towards one server port.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "histogram.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define PERIOD 65521
#define MAX_SIZE 65536
static unsigned char pattern[PERIOD + MAX_SIZE];
static unsigned char recv_buffer[MAX_SIZE];
static long size = 64;

static void fill_pattern(void) {
  uint32_t x = 2463534242u;
  for (int i = 0; i < PERIOD; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    pattern[i] = (unsigned char)x;
  }
  for (int i = PERIOD; i < PERIOD + MAX_SIZE; i++) pattern[i] = pattern[i - PERIOD];
}

/* ---- latency: histogram.h's buckets, in ns ---- */
typedef struct {
  uint64_t counts[BUCKETS];
  uint64_t n, max;
} histogram;

static void record(histogram *h, uint64_t ns) {
  h->counts[bucket_of(ns)]++;
  h->n++;
  if (ns > h->max) h->max = ns;
}

static double percentile_us(const histogram *h, double p) {
  if (h->n == 0) return -1;
  uint64_t rank = (uint64_t)ceil(p * (double)h->n), seen = 0;
  if (rank == 0) rank = 1;
  for (int i = 0; i < BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank) return bucket_middle(i) / 1000;
  }
  return (double)h->max / 1000;
}

/* ---- errors: counted, the first one kept for the report ---- */
static uint64_t errors;
static char first_error[256];

static void fail(const char *what, int err) {
  if (errors++ == 0) snprintf(first_error, sizeof first_error, "%s%s%s", what, err ? ": " : "", err ? strerror(err) : "");
}

/* A JSON string without quotes or control characters (error texts are ours and strerror's). */
static const char *json_safe(char *s) {
  for (char *p = s; *p; p++) if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = ' ';
  return s;
}

/* ---- connecting ---- */
static struct addrinfo *target;
static int spread_sources;
static unsigned source_next;
static int epfd;

/* A non-blocking socket with a connect under way, or -1 (counted as an error). */
static int start_connect(void) {
  int fd = socket(target->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail("socket", errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (spread_sources) {
    struct sockaddr_in source = {.sin_family = AF_INET};
    source.sin_addr.s_addr = htonl(0x7f000001u + source_next++ % 254);
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one); /* the port is chosen by connect() */
    if (bind(fd, (struct sockaddr *)&source, sizeof source) != 0) {
      fail("bind", errno);
      close(fd);
      return -1;
    }
  }
  if (connect(fd, target->ai_addr, target->ai_addrlen) != 0 && errno != EINPROGRESS) {
    fail("connect", errno);
    close(fd);
    return -1;
  }
  return fd;
}

static int connect_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

static void watch(int fd, int op, uint32_t events, void *ptr) {
  struct epoll_event ev = {.events = events, .data.ptr = ptr};
  if (epoll_ctl(epfd, op, fd, &ev) != 0) die("epoll_ctl");
}

/* ---- one connection of either mode ---- */
enum { CONNECTING, OPEN, DEAD };
typedef struct {
  int fd, state;
  uint64_t base;      /* where in the pattern this connection's stream starts */
  uint64_t sent;      /* bytes sent (always whole messages here: S <= the socket buffer) */
  uint64_t received;  /* bytes echoed back and verified */
  uint64_t sent_at;   /* when the message in flight was sent (hold) or the cycle began (churn) */
  int want_out;
} conn;

static uint64_t bytes_sent, bytes_verified;

static void close_conn(conn *c, int state) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->state = state;
}

/* Sends one message; returns 0, or -1 after counting the error and closing. */
static int send_message(conn *c) {
  ssize_t n = send(c->fd, pattern + (c->base + c->sent) % PERIOD, (size_t)size, MSG_NOSIGNAL);
  if (n != size) {
    /* S is far below the socket buffer and one message is in flight at most: a short send is a failure. */
    fail(n < 0 ? "send" : "short send", n < 0 ? errno : 0);
    close_conn(c, DEAD);
    return -1;
  }
  c->sent += (uint64_t)size;
  bytes_sent += (uint64_t)size;
  return 0;
}

/* Reads what arrived and verifies it; returns the bytes verified now, or -1 after counting the error. */
static ssize_t receive(conn *c) {
  ssize_t total = 0;
  for (;;) {
    ssize_t n = recv(c->fd, recv_buffer, sizeof recv_buffer, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return total;
      if (errno == EINTR) continue;
      fail("recv", errno);
      close_conn(c, DEAD);
      return -1;
    }
    if (n == 0) {
      fail("the server closed a connection early", 0);
      close_conn(c, DEAD);
      return -1;
    }
    if ((uint64_t)n + c->received > c->sent || memcmp(recv_buffer, pattern + (c->base + c->received) % PERIOD, (size_t)n) != 0) {
      fail("echoed bytes differ from those sent", 0);
      close_conn(c, DEAD);
      return -1;
    }
    c->received += (uint64_t)n;
    bytes_verified += (uint64_t)n;
    total += n;
    if ((size_t)n < sizeof recv_buffer) return total;
  }
}

static conn *conns;
static struct epoll_event events[1024];

/* ---- hold ---- */
static int hold(long n_conns, long interval_ms, long duration_ms, long warmup_ms, long pending_max, long report_ms) {
  conns = calloc((size_t)n_conns, sizeof *conns);
  if (!conns) die("calloc");
  histogram *interval_h = calloc(1, sizeof *interval_h), *total_h = calloc(1, sizeof *total_h);
  if (!interval_h || !total_h) die("calloc");
  uint64_t start = now_ns();
  long opened = 0, pending = 0, open = 0;
  /* Open the connections, at most pending_max connects under way at a time. */
  while (opened < n_conns || pending > 0) {
    while (opened < n_conns && pending < pending_max) {
      conn *c = &conns[opened];
      c->base = (uint64_t)opened * 7919 % PERIOD;
      opened++;
      c->fd = start_connect();
      if (c->fd < 0) {
        c->state = DEAD;
        continue;
      }
      c->state = CONNECTING;
      watch(c->fd, EPOLL_CTL_ADD, EPOLLOUT, c);
      pending++;
    }
    int n = epoll_wait(epfd, events, 1024, 1000);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      conn *c = events[i].data.ptr;
      if (c->state != CONNECTING) continue; /* an open one the server closed: seen when sending */
      pending--;
      int err = connect_error(c->fd);
      if (err != 0) {
        fail("connect", err);
        close_conn(c, DEAD);
        continue;
      }
      c->state = OPEN;
      open++;
      watch(c->fd, EPOLL_CTL_MOD, EPOLLIN, c);
    }
  }
  uint64_t connected = now_ns();
  printf("{\"type\":\"connected\",\"connections\":%ld,\"connectMs\":%.1f,\"errors\":%llu}\n", open, (double)(connected - start) / 1e6,
         (unsigned long long)errors);
  fflush(stdout);

  /* Connection i sends at connected + i * interval / C + k * interval: one due time after another. */
  const uint64_t interval = (uint64_t)interval_ms * 1000000u, end = connected + (uint64_t)duration_ms * 1000000u;
  const uint64_t measure_from = connected + (uint64_t)warmup_ms * 1000000u, report = (uint64_t)report_ms * 1000000u;
  uint64_t round = 0, messages = 0, interval_messages = 0, late = 0, interval_late = 0, next_report = connected + report;
  uint64_t interval_lag = 0; /* how far behind its due time this process sent a message, at most, in the interval: its own stalls */
  long next = 0;
  for (;;) {
    uint64_t now = now_ns();
    uint64_t due = connected + round * interval + interval * (uint64_t)next / (uint64_t)n_conns;
    while (due <= now && due < end) {
      conn *c = &conns[next];
      if (now - due > interval_lag) interval_lag = now - due;
      if (c->state == OPEN) {
        if (c->received < c->sent) late++, interval_late++; /* the last echo is not back: skip this turn */
        else {
          c->sent_at = now_ns();
          send_message(c);
        }
      }
      if (++next == n_conns) next = 0, round++;
      due = connected + round * interval + interval * (uint64_t)next / (uint64_t)n_conns;
    }
    if (now >= next_report && next_report < end) { /* the last interval is in the "done" line */
      printf("{\"type\":\"sample\",\"elapsedMs\":%.0f,\"messages\":%llu,\"p99Us\":%.2f,\"maxUs\":%.2f,\"late\":%llu,"
             "\"sendLagMaxUs\":%.2f,\"errors\":%llu}\n",
             (double)(now - connected) / 1e6, (unsigned long long)interval_messages, percentile_us(interval_h, 0.99),
             (double)interval_h->max / 1000, (unsigned long long)interval_late, (double)interval_lag / 1000, (unsigned long long)errors);
      fflush(stdout);
      memset(interval_h, 0, sizeof *interval_h);
      interval_messages = interval_late = interval_lag = 0;
      next_report += report;
    }
    if (now >= end) break;
    uint64_t wake = due < next_report ? due : next_report; /* past `end`, `due` stops advancing: end bounds it */
    if (end < wake) wake = end;
    int timeout = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;
    int n = epoll_wait(epfd, events, 1024, timeout);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      conn *c = events[i].data.ptr;
      if (c->state != OPEN) continue;
      uint64_t before = c->received;
      if (receive(c) < 0) continue;
      if (before < c->sent && c->received == c->sent) {
        uint64_t latency = now_ns() - c->sent_at;
        messages++;
        interval_messages++;
        record(interval_h, latency);
        if (c->sent_at >= measure_from) record(total_h, latency);
      }
    }
  }
  /* Stop sending; wait (at most 5 s) until every byte in flight has come back. */
  uint64_t deadline = now_ns() + 5000000000u;
  for (;;) {
    long busy = 0;
    for (long i = 0; i < n_conns; i++) busy += conns[i].state == OPEN && conns[i].received < conns[i].sent;
    uint64_t now = now_ns();
    if (busy == 0 || now >= deadline) break;
    int n = epoll_wait(epfd, events, 1024, (int)((deadline - now) / 1000000) + 1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      conn *c = events[i].data.ptr;
      if (c->state != OPEN) continue;
      uint64_t before = c->received;
      if (receive(c) >= 0 && before < c->sent && c->received == c->sent) messages++;
    }
  }
  long still_open = 0;
  for (long i = 0; i < n_conns; i++) {
    still_open += conns[i].state == OPEN;
    close_conn(&conns[i], DEAD);
  }
  printf("{\"type\":\"done\",\"mode\":\"hold\",\"connections\":%ld,\"open\":%ld,\"intervalMs\":%ld,\"durationMs\":%ld,\"warmupMs\":%ld,"
         "\"size\":%ld,\"connectMs\":%.1f,\"messages\":%llu,\"measured\":%llu,\"late\":%llu,\"bytesSent\":%llu,\"bytesVerified\":%llu,"
         "\"latencyUs\":{\"p50\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f},\"errors\":%llu,\"firstError\":\"%s\"}\n",
         n_conns, still_open, interval_ms, duration_ms, warmup_ms, size, (double)(connected - start) / 1e6, (unsigned long long)messages,
         (unsigned long long)total_h->n, (unsigned long long)late, (unsigned long long)bytes_sent, (unsigned long long)bytes_verified,
         percentile_us(total_h, 0.5), percentile_us(total_h, 0.99), percentile_us(total_h, 0.999), (double)total_h->max / 1000,
         (unsigned long long)errors, json_safe(first_error));
  return 0;
}

/* ---- churn ---- */
static uint64_t cycles_started, cycles_done, cycles_target;

static void begin_cycle(conn *c) {
  while (cycles_started < cycles_target) {
    cycles_started++;
    c->base = cycles_started * 7919 % PERIOD;
    c->sent = c->received = 0;
    c->sent_at = now_ns();
    c->fd = start_connect();
    if (c->fd < 0) continue; /* counted; try the next cycle */
    c->state = CONNECTING;
    watch(c->fd, EPOLL_CTL_ADD, EPOLLOUT, c);
    return;
  }
  c->state = DEAD;
}

static int churn(long parallel, long report_ms) {
  conns = calloc((size_t)parallel, sizeof *conns);
  histogram *h = calloc(1, sizeof *h);
  if (!conns || !h) die("calloc");
  uint64_t start = now_ns(), report = (uint64_t)report_ms * 1000000u, next_report = start + report;
  long active = 0;
  for (long i = 0; i < parallel; i++) {
    begin_cycle(&conns[i]);
    active += conns[i].state != DEAD;
  }
  while (active > 0) {
    int n = epoll_wait(epfd, events, 1024, 1000);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      conn *c = events[i].data.ptr;
      if (c->state == CONNECTING) {
        int err = connect_error(c->fd);
        if (err != 0) fail("connect", err);
        else if (send_message(c) == 0) {
          c->state = OPEN;
          watch(c->fd, EPOLL_CTL_MOD, EPOLLIN, c);
          continue;
        }
      } else if (receive(c) >= 0 && c->received < (uint64_t)size) {
        continue; /* more of the echo to come */
      } else if (c->state == OPEN) {
        cycles_done++;
        record(h, now_ns() - c->sent_at);
      }
      close_conn(c, DEAD);
      begin_cycle(c);
      active -= c->state == DEAD;
    }
    uint64_t now = now_ns();
    if (now >= next_report) {
      printf("{\"type\":\"progress\",\"elapsedMs\":%.0f,\"cycles\":%llu,\"errors\":%llu}\n", (double)(now - start) / 1e6,
             (unsigned long long)cycles_done, (unsigned long long)errors);
      fflush(stdout);
      next_report += report;
    }
  }
  double seconds = (double)(now_ns() - start) / 1e9;
  printf("{\"type\":\"done\",\"mode\":\"churn\",\"cycles\":%llu,\"completed\":%llu,\"parallel\":%ld,\"size\":%ld,\"seconds\":%.3f,"
         "\"cyclesPerSec\":%.1f,\"bytesSent\":%llu,\"bytesVerified\":%llu,\"cycleUs\":{\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f},"
         "\"errors\":%llu,\"firstError\":\"%s\"}\n",
         (unsigned long long)cycles_target, (unsigned long long)cycles_done, parallel, size, seconds, (double)cycles_done / seconds,
         (unsigned long long)bytes_sent, (unsigned long long)bytes_verified, percentile_us(h, 0.5), percentile_us(h, 0.99),
         (double)h->max / 1000, (unsigned long long)errors, json_safe(first_error));
  return 0;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *port = NULL, *mode = NULL;
  long connections = 10000, interval_ms = 1000, duration_ms = 60000, warmup_ms = 1000, pending = 256, report_ms = 5000;
  long cycles = 1000000, parallel = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *name = argv[i], *value = argv[i + 1];
    if (strcmp(name, "--mode") == 0) mode = value;
    else if (strcmp(name, "--host") == 0) host = value;
    else if (strcmp(name, "--port") == 0) port = value;
    else if (strcmp(name, "--size") == 0) size = parse_long(name, value, 1, MAX_SIZE);
    else if (strcmp(name, "--report-ms") == 0) report_ms = parse_long(name, value, 10, 3600000);
    else if (strcmp(name, "--connections") == 0) connections = parse_long(name, value, 1, 1000000);
    else if (strcmp(name, "--interval-ms") == 0) interval_ms = parse_long(name, value, 1, 3600000);
    else if (strcmp(name, "--duration-ms") == 0) duration_ms = parse_long(name, value, 1, 86400000);
    else if (strcmp(name, "--warmup-ms") == 0) warmup_ms = parse_long(name, value, 0, 86400000);
    else if (strcmp(name, "--pending") == 0) pending = parse_long(name, value, 1, 100000);
    else if (strcmp(name, "--cycles") == 0) cycles = parse_long(name, value, 1, 1000000000);
    else if (strcmp(name, "--parallel") == 0) parallel = parse_long(name, value, 1, 100000);
    else {
      errno = 0;
      die("unknown option %s", name);
    }
  }
  if (!port || !mode || argc % 2 == 0 || (strcmp(mode, "hold") != 0 && strcmp(mode, "churn") != 0)) {
    errno = 0;
    die("usage: soak-load --mode hold|churn --port P [--host H] [--size S] [--report-ms R] [--connections C] [--interval-ms I] "
        "[--duration-ms T] [--warmup-ms W] [--pending N] [--cycles N] [--parallel K]");
  }
  int holding = strcmp(mode, "hold") == 0;
  char why[256];
  if (ensure_descriptors((rlim_t)(holding ? connections : parallel) + 64, why, sizeof why) != 0) {
    errno = 0;
    die("%s", why);
  }
  fill_pattern();
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  int rc = getaddrinfo(host, port, &hints, &target);
  if (rc != 0) {
    errno = 0;
    die("getaddrinfo %s:%s: %s", host, port, gai_strerror(rc));
  }
  spread_sources = target->ai_family == AF_INET && (ntohl(((struct sockaddr_in *)target->ai_addr)->sin_addr.s_addr) >> 24) == 127;
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  cycles_target = (uint64_t)cycles;
  int status = holding ? hold(connections, interval_ms, duration_ms, warmup_ms, pending, report_ms) : churn(parallel, report_ms);
  close(epfd);
  freeaddrinfo(target);
  return status;
}
