/*
 * The scaling loop of bench/scaling.ts written in C, so each JavaScript row has a native row to be
 * divided by. In the manner of libevent's test/bench.c: N socketpairs, every read end watched; each
 * round writes one byte to A of them (spread evenly, shifted by one each round), waits once, and
 * reads what is ready. Prints one JSON line per (A, mechanism) cell, in the order asked.
 *
 *   scaling --n N --a 1,100 --mechanisms select,poll,epoll-lt,epoll-et,io_uring --time-ms 50 [--warmup-rounds 10]
 *
 * io_uring goes through the raw system calls and <linux/io_uring.h> (bench/uring.h), as native/io_uring.h does: one
 * multishot POLL_ADD per read end, completions read straight from the mapped ring.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "uring.h"

#define MAX_CELLS 64
#define WAIT_TIMEOUT_MS 1000

static int n_pairs;
static int *read_fds, *write_fds;
static char recv_buffer[64];
static const char one_byte = 'x';

typedef struct {
  uint64_t wait_ns;
  int ready;
} wait_result;

/*
 * Watched descriptor i and the one written to make it readable: a socketpair's two ends, or one UDP
 * socket connected to itself (one descriptor per watched socket, so N reaches the descriptor limit).
 */
static void open_watched(int i, int udp) {
  if (!udp) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair #%d", i);
    read_fds[i] = sv[0];
    write_fds[i] = sv[1];
    return;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket #%d", i);
  struct sockaddr_in self = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof self;
  if (bind(fd, (struct sockaddr *)&self, len) != 0) die("bind #%d", i);
  if (getsockname(fd, (struct sockaddr *)&self, &len) != 0) die("getsockname");
  if (connect(fd, (struct sockaddr *)&self, len) != 0) die("connect #%d", i);
  read_fds[i] = write_fds[i] = fd;
}

/* Makes A descriptors readable for round `round`: the same spread the JavaScript loop uses. */
static void make_active(int a, uint64_t round) {
  for (int k = 0; k < a; k++) {
    int index = (int)(((int64_t)k * n_pairs / a + round) % n_pairs);
    if (send(write_fds[index], &one_byte, 1, MSG_NOSIGNAL) != 1) die("send");
  }
}

/* Reads one ready descriptor: once (level-triggered), or until it would block (edge-triggered). */
static void drain(int fd, int until_would_block) {
  for (;;) {
    ssize_t got = recv(fd, recv_buffer, sizeof recv_buffer, 0);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      die("recv");
    }
    if (got == 0) die("recv: unexpected end of stream");
    if (!until_would_block) return;
  }
}

/* ---- select: a master set copied before each wait, as libevent's select backend does. ---- */
static fd_set select_master;
static int select_max_fd;

static int select_setup(void) {
  FD_ZERO(&select_master);
  select_max_fd = -1;
  for (int i = 0; i < n_pairs; i++) {
    if (read_fds[i] >= FD_SETSIZE) return -1;
    FD_SET(read_fds[i], &select_master);
    if (read_fds[i] > select_max_fd) select_max_fd = read_fds[i];
  }
  return 0;
}

static int select_round(uint64_t *wait_ns) {
  fd_set work;
  memcpy(&work, &select_master, sizeof work);
  struct timeval tv = {WAIT_TIMEOUT_MS / 1000, 0};
  uint64_t t0 = now_ns();
  int n = select(select_max_fd + 1, &work, NULL, NULL, &tv);
  *wait_ns += now_ns() - t0;
  if (n < 0) die("select");
  int found = 0;
  for (int i = 0; found < n && i < n_pairs; i++) {
    if (FD_ISSET(read_fds[i], &work)) {
      drain(read_fds[i], 0);
      found++;
    }
  }
  return n;
}

/* ---- poll: one pollfd array, used in place. ---- */
static struct pollfd *pollfds;

static int poll_setup(void) {
  pollfds = calloc((size_t)n_pairs, sizeof *pollfds);
  if (!pollfds) die("calloc");
  for (int i = 0; i < n_pairs; i++) {
    pollfds[i].fd = read_fds[i];
    pollfds[i].events = POLLIN;
  }
  return 0;
}

static int poll_round(uint64_t *wait_ns) {
  uint64_t t0 = now_ns();
  int n = poll(pollfds, (nfds_t)n_pairs, WAIT_TIMEOUT_MS);
  *wait_ns += now_ns() - t0;
  if (n < 0) die("poll");
  int found = 0;
  for (int i = 0; found < n && i < n_pairs; i++) {
    if (pollfds[i].revents) {
      drain(pollfds[i].fd, 0);
      found++;
    }
  }
  return n;
}

/* ---- epoll: every read end registered once; data is the pair's index. ---- */
static int epfd = -1;
static struct epoll_event *events;
static int max_events;
static int edge;

static int epoll_setup(int a, int edge_triggered) {
  edge = edge_triggered;
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  for (int i = 0; i < n_pairs; i++) {
    struct epoll_event ev = {.events = EPOLLIN | (edge ? EPOLLET : 0), .data.u64 = (uint64_t)i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, read_fds[i], &ev) != 0) die("epoll_ctl");
  }
  max_events = a;
  events = calloc((size_t)a, sizeof *events);
  if (!events) die("calloc");
  return 0;
}

static int epoll_round(uint64_t *wait_ns) {
  uint64_t t0 = now_ns();
  int n = epoll_wait(epfd, events, max_events, WAIT_TIMEOUT_MS);
  *wait_ns += now_ns() - t0;
  if (n < 0) die("epoll_wait");
  for (int i = 0; i < n; i++) drain(read_fds[events[i].data.u64], edge);
  return n;
}

/*
 * ---- io_uring: one multishot POLL_ADD per read end, user_data = the pair's index. A multishot poll
 * is edge-like (one completion per arrival), so a ready descriptor is read until it would block, as
 * under epoll-et. A completion without IORING_CQE_F_MORE (the kernel ended the poll) is re-armed. ----
 */
static uring ring = {.fd = -1};

static void uring_poll_add(int index) {
  struct io_uring_sqe *sqe = uring_sqe(&ring);
  sqe->opcode = IORING_OP_POLL_ADD;
  sqe->fd = read_fds[index];
  sqe->poll32_events = POLLIN;
  sqe->len = IORING_POLL_ADD_MULTI;
  sqe->user_data = (uint64_t)index;
  uring_push(&ring);
}

/* Returns 0, or -1 with errno set when this process may not use io_uring (the cell is skipped). */
static int scaling_uring_setup(int a) {
  struct io_uring_params params = {0};
  unsigned cq = 4096;
  while (cq < 2 * (unsigned)a) cq *= 2;
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = cq;
  if (uring_setup(&ring, 1024, &params) != 0) return -1;
  for (int i = 0; i < n_pairs; i++) uring_poll_add(i);
  uring_submit(&ring);
  return 0;
}

static int uring_round(uint64_t *wait_ns) {
  uint64_t t0 = now_ns();
  unsigned head = uring_cq_head(&ring);
  /* Completions already in the ring need no system call; otherwise submit (re-arms) and wait in one enter. */
  if (head == uring_cq_tail(&ring) || uring_pending(&ring) > 0) {
    struct __kernel_timespec ts = {WAIT_TIMEOUT_MS / 1000, 0};
    struct io_uring_getevents_arg arg = {.ts = (uint64_t)(uintptr_t)&ts};
    int rc = uring_enter(&ring, uring_pending(&ring), 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
    if (rc < 0 && errno != EINTR && errno != ETIME) die("io_uring_enter");
  }
  unsigned tail = uring_cq_tail(&ring);
  *wait_ns += now_ns() - t0;
  int n = 0;
  for (; head != tail; head++, n++) {
    struct io_uring_cqe *cqe = &ring.cqes[head & ring.cq_mask];
    int index = (int)cqe->user_data;
    if (cqe->res < 0) {
      errno = -cqe->res;
      die("io_uring poll of #%d", index);
    }
    if (!(cqe->flags & IORING_CQE_F_MORE)) uring_poll_add(index);
    drain(read_fds[index], 1);
  }
  uring_cq_advance(&ring, head);
  return n;
}

static void teardown(void) {
  uring_teardown(&ring);
  free(pollfds);
  pollfds = NULL;
  free(events);
  events = NULL;
  if (epfd >= 0) close(epfd);
  epfd = -1;
}

static void print_skipped(const char *mechanism, int a, const char *why) {
  printf("{\"impl\":\"c\",\"mechanism\":\"%s\",\"n\":%d,\"a\":%d,\"skipped\":\"%s\"}\n", mechanism, n_pairs, a, why);
  fflush(stdout);
}

static void run_cell(const char *mechanism, int a, double time_ms, int warmup_rounds) {
  int (*round_fn)(uint64_t *) = NULL;
  if (strcmp(mechanism, "select") == 0) {
    if (select_setup() != 0) {
      char why[128];
      snprintf(why, sizeof why, "descriptors reach FD_SETSIZE (%d)", FD_SETSIZE);
      print_skipped(mechanism, a, why);
      return;
    }
    round_fn = select_round;
  } else if (strcmp(mechanism, "poll") == 0) {
    poll_setup();
    round_fn = poll_round;
  } else if (strcmp(mechanism, "epoll-lt") == 0 || strcmp(mechanism, "epoll-et") == 0) {
    epoll_setup(a, mechanism[6] == 'e');
    round_fn = epoll_round;
  } else if (strcmp(mechanism, "io_uring") == 0) {
    if (scaling_uring_setup(a) != 0) {
      char why[128];
      snprintf(why, sizeof why, "io_uring_setup: %s", strerror(errno));
      print_skipped(mechanism, a, why);
      return;
    }
    round_fn = uring_round;
  } else {
    errno = 0;
    die("unknown mechanism '%s'", mechanism);
  }

  uint64_t wait_ns = 0, round = 0;
  for (int i = 0; i < warmup_rounds; i++, round++) {
    make_active(a, round);
    int got = 0;
    while (got < a) got += round_fn(&wait_ns);
  }
  wait_ns = 0;
  uint64_t rounds = 0;
  uint64_t budget = (uint64_t)(time_ms * 1e6);
  uint64_t start = now_ns(), elapsed = 0;
  do {
    make_active(a, round++);
    int got = 0;
    while (got < a) got += round_fn(&wait_ns);
    if (got != a) {
      errno = 0;
      die("%s: %d descriptors ready, expected %d", mechanism, got, a);
    }
    rounds++;
    elapsed = now_ns() - start;
  } while (elapsed < budget);
  teardown();
  printf("{\"impl\":\"c\",\"mechanism\":\"%s\",\"n\":%d,\"a\":%d,\"rounds\":%lu,\"roundNs\":%.1f,\"waitNs\":%.1f}\n",
         mechanism, n_pairs, a, (unsigned long)rounds, (double)elapsed / rounds, (double)wait_ns / rounds);
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *a_list = "1", *mechanisms = "poll";
  double time_ms = 50;
  int warmup_rounds = 10, udp = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--n") == 0) n_pairs = (int)parse_long("--n", argv[i + 1], 1, 10000000);
    else if (strcmp(argv[i], "--a") == 0) a_list = argv[i + 1];
    else if (strcmp(argv[i], "--mechanisms") == 0) mechanisms = argv[i + 1];
    else if (strcmp(argv[i], "--time-ms") == 0) time_ms = (double)parse_long("--time-ms", argv[i + 1], 1, 600000);
    else if (strcmp(argv[i], "--transport") == 0) {
      udp = strcmp(argv[i + 1], "udp") == 0;
      if (!udp && strcmp(argv[i + 1], "socketpair") != 0) {
        errno = 0;
        die("--transport must be udp or socketpair");
      }
    } else if (strcmp(argv[i], "--warmup-rounds") == 0) warmup_rounds = (int)parse_long("--warmup-rounds", argv[i + 1], 0, 1000000);
    else {
      errno = 0;
      die("unknown option %s", argv[i]);
    }
  }
  if (n_pairs < 1 || argc % 2 == 0) {
    errno = 0;
    die("usage: scaling --n N [--a 1,100] [--mechanisms select,poll,epoll-lt,epoll-et] [--time-ms 50] [--warmup-rounds 10]");
  }
  char why[256];
  int fits = ensure_descriptors((rlim_t)n_pairs * (udp ? 1 : 2) + 64, why, sizeof why) == 0;
  read_fds = malloc(sizeof(int) * (size_t)n_pairs);
  write_fds = malloc(sizeof(int) * (size_t)n_pairs);
  if (!read_fds || !write_fds) die("malloc");
  for (int i = 0; fits && i < n_pairs; i++) open_watched(i, udp);

  char a_copy[256], mech_copy[256];
  snprintf(a_copy, sizeof a_copy, "%s", a_list);
  for (char *a_save = NULL, *a_text = strtok_r(a_copy, ",", &a_save); a_text; a_text = strtok_r(NULL, ",", &a_save)) {
    int a = (int)parse_long("--a", a_text, 1, n_pairs);
    snprintf(mech_copy, sizeof mech_copy, "%s", mechanisms);
    for (char *m_save = NULL, *m = strtok_r(mech_copy, ",", &m_save); m; m = strtok_r(NULL, ",", &m_save)) {
      if (fits) run_cell(m, a, time_ms, warmup_rounds);
      else print_skipped(m, a, why);
    }
  }
  for (int i = 0; fits && i < n_pairs; i++) {
    close(read_fds[i]);
    if (!udp) close(write_fds[i]);
  }
  return 0;
}
