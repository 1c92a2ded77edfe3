/*
 * The calls of bench/micro.ts made directly in C, so each JavaScript figure has a native one to be
 * divided by. Prints one JSON line per (repetition, call): nanoseconds per call over a loop that
 * runs for at least --time-ms after a calibration pass.
 *
 *   micro [--time-ms 200] [--repeat 3]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

static int idle_fd, epfd;
static struct epoll_event events[64];
static char buffer[64];
static volatile int sink;

/* Each call is one system call on an idle descriptor: nothing is ever ready. */
static void call_fcntl(void) { sink = fcntl(idle_fd, F_GETFL); }
static void call_epoll_wait(void) { sink = epoll_wait(epfd, events, 64, 0); }
static void call_poll(void) {
  struct pollfd p = {.fd = idle_fd, .events = POLLIN};
  sink = poll(&p, 1, 0);
}
static void call_select(void) {
  fd_set r;
  FD_ZERO(&r);
  FD_SET(idle_fd, &r);
  struct timeval tv = {0, 0};
  sink = select(idle_fd + 1, &r, NULL, NULL, &tv);
}
static void call_recv(void) {
  if (recv(idle_fd, buffer, sizeof buffer, 0) != -1 || errno != EAGAIN) die("recv did not report EAGAIN");
}

static const struct {
  const char *name;
  void (*fn)(void);
} calls[] = {
    {"fcntl", call_fcntl}, {"epoll_wait", call_epoll_wait}, {"poll", call_poll}, {"select", call_select}, {"recv", call_recv},
};

static double ns_per_call(void (*fn)(void), double time_ms) {
  uint64_t iterations = 1000, budget = (uint64_t)(time_ms * 1e6);
  for (;;) {
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iterations; i++) fn();
    uint64_t elapsed = now_ns() - t0;
    if (elapsed >= budget) return (double)elapsed / (double)iterations;
    /* Aim straight for the budget (plus 10%) from what this pass took. */
    double scale = elapsed > 0 ? 1.1 * (double)budget / (double)elapsed : 10;
    iterations = (uint64_t)((double)iterations * (scale < 10 ? scale : 10)) + 1;
  }
}

int main(int argc, char **argv) {
  double time_ms = 200;
  long repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--time-ms") == 0) time_ms = (double)parse_long("--time-ms", argv[i + 1], 1, 600000);
    else if (strcmp(argv[i], "--repeat") == 0) repeat = parse_long("--repeat", argv[i + 1], 1, 1000);
    else {
      errno = 0;
      die("usage: micro [--time-ms 200] [--repeat 3]");
    }
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  idle_fd = sv[0];
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  for (long rep = 0; rep < repeat; rep++) {
    for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
      double ns = ns_per_call(calls[c].fn, time_ms);
      printf("{\"call\":\"%s\",\"repetition\":%ld,\"nsPerCall\":%.2f}\n", calls[c].name, rep, ns);
      fflush(stdout);
    }
  }
  close(epfd);
  close(sv[0]);
  close(sv[1]);
  return 0;
}
