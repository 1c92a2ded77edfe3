/*
 * The ceiling for the echo benchmark: a small single-threaded epoll (level-triggered) echo server in
 * C. It reads once per readiness event and sends at once; only what the kernel does not take is kept,
 * and then that connection waits for EPOLLOUT (and is not read) until the rest is sent.
 *
 *   echo-server [--host 127.0.0.1] [--port 0] [--backlog 4096]
 *
 * Prints "listening on HOST:PORT" when ready; SIGTERM/SIGINT stop it, and it prints "stats {...}".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define BUFFER 65536

typedef struct {
  int fd;
  unsigned char *pending; /* what the last send left over, or NULL */
  size_t pending_off, pending_len;
} connection;

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

static int epfd;
static unsigned char buffer[BUFFER];
static unsigned long long accepted, bytes_echoed;

static void watch(connection *c, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(epfd, op, c->fd, &ev) != 0) die("epoll_ctl");
}

static void drop(connection *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c->pending);
  free(c);
}

/* Sends what is pending; returns 1 when all of it is gone. */
static int send_pending(connection *c) {
  while (c->pending_off < c->pending_len) {
    ssize_t n = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    c->pending_off += (size_t)n;
    bytes_echoed += (unsigned long long)n;
  }
  free(c->pending);
  c->pending = NULL;
  return 1;
}

static void on_readable(connection *c) {
  ssize_t got = recv(c->fd, buffer, sizeof buffer, 0);
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
  bytes_echoed += (unsigned long long)sent;
  if (sent == got) return;
  c->pending_len = (size_t)(got - sent);
  c->pending_off = 0;
  c->pending = malloc(c->pending_len);
  if (!c->pending) die("malloc");
  memcpy(c->pending, buffer + sent, c->pending_len);
  watch(c, EPOLLOUT, EPOLL_CTL_MOD); /* stop reading until the rest is out */
}

static void on_writable(connection *c) {
  int done = send_pending(c);
  if (done < 0) drop(c);
  else if (done) watch(c, EPOLLIN, EPOLL_CTL_MOD);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *port = "0";
  long backlog = 4096;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--host") == 0) host = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0) port = argv[i + 1];
    else if (strcmp(argv[i], "--backlog") == 0) backlog = parse_long("--backlog", argv[i + 1], 1, 65535);
    else {
      errno = 0;
      die("usage: echo-server [--host H] [--port P] [--backlog N]");
    }
  }
  struct rlimit lim; /* as many connections as the hard limit allows */
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: epoll_wait returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *addr;
  int rc = getaddrinfo(host, port, &hints, &addr);
  if (rc != 0) {
    errno = 0;
    die("getaddrinfo %s: %s", host, gai_strerror(rc));
  }
  int listener = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(listener, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind(listener, addr->ai_addr, addr->ai_addrlen) != 0) die("bind %s:%s", host, port);
  freeaddrinfo(addr);
  if (listen(listener, (int)backlog) != 0) die("listen");

  struct sockaddr_storage bound;
  socklen_t len = sizeof bound;
  getsockname(listener, (struct sockaddr *)&bound, &len);
  char name[INET6_ADDRSTRLEN] = "?";
  int bound_port;
  if (bound.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&bound;
    inet_ntop(AF_INET6, &a->sin6_addr, name, sizeof name);
    bound_port = ntohs(a->sin6_port);
    printf("listening on [%s]:%d\n", name, bound_port);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&bound;
    inet_ntop(AF_INET, &a->sin_addr, name, sizeof name);
    bound_port = ntohs(a->sin_port);
    printf("listening on %s:%d\n", name, bound_port);
  }
  fflush(stdout);

  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  connection listen_key = {.fd = listener};
  watch(&listen_key, EPOLLIN, EPOLL_CTL_ADD);
  struct epoll_event events[1024];
  while (!stopping) {
    int n = epoll_wait(epfd, events, 1024, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      connection *c = events[i].data.ptr;
      if (c == &listen_key) {
        int fd;
        while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          connection *nc = calloc(1, sizeof *nc);
          if (!nc) die("calloc");
          nc->fd = fd;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          watch(nc, EPOLLIN, EPOLL_CTL_ADD);
          accepted++;
        }
        continue;
      }
      if (c->pending) on_writable(c);
      else on_readable(c);
    }
  }
  printf("stats {\"accepted\":%llu,\"bytesEchoed\":%llu}\n", accepted, bytes_echoed);
  return 0;
}
