/* What the C programs under bench/ share: a monotonic clock, the descriptor limit, failing loudly, and saying where a server listens. */
#ifndef IOMUX_BENCH_COMMON_H
#define IOMUX_BENCH_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Prints "program: message[: strerror]" and exits 2; the harness shows stderr when a program fails. */
static inline void die(const char *what, ...) {
  int err = errno;
  va_list ap;
  va_start(ap, what);
  fprintf(stderr, "bench: ");
  vfprintf(stderr, what, ap);
  va_end(ap);
  if (err != 0) fprintf(stderr, ": %s", strerror(err));
  fputc('\n', stderr);
  exit(2);
}

/*
 * Raises RLIMIT_NOFILE to at least `wanted` descriptors: the soft limit, and the hard one where the
 * process may (root with CAP_SYS_RESOURCE). Returns 0, or -1 with `why` saying what stood in the way.
 */
static inline int ensure_descriptors(rlim_t wanted, char *why, size_t why_size) {
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) die("getrlimit");
  if (lim.rlim_cur >= wanted) return 0;
  struct rlimit raised = lim;
  raised.rlim_cur = wanted;
  if (raised.rlim_max < wanted) raised.rlim_max = wanted;
  if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return 0;
  snprintf(why, why_size, "needs %lu descriptors; RLIMIT_NOFILE hard limit is %lu and cannot be raised (%s)",
           (unsigned long)wanted, (unsigned long)lim.rlim_max, strerror(errno));
  return -1;
}

/* Reads a positive integer option value or dies naming the option. */
static inline long parse_long(const char *name, const char *text, long min, long max) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
    errno = 0;
    die("%s must be an integer in [%ld, %ld], got '%s'", name, min, max, text);
  }
  return v;
}

/* Prints "listening on HOST:PORT" (an IPv6 host in brackets) and flushes: the harness waits for this line. */
static inline void print_listening(const struct sockaddr_storage *bound) {
  char name[INET6_ADDRSTRLEN] = "?";
  if (bound->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)bound;
    inet_ntop(AF_INET6, &a->sin6_addr, name, sizeof name);
    printf("listening on [%s]:%d\n", name, ntohs(a->sin6_port));
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)bound;
    inet_ntop(AF_INET, &a->sin_addr, name, sizeof name);
    printf("listening on %s:%d\n", name, ntohs(a->sin_port));
  }
  fflush(stdout);
}

#endif
