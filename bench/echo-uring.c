/*
 * The completion-based reference for the echo benchmark (the `c-uring` row beside `c`): a
 * single-threaded echo server on io_uring, the way its networking examples do it today, through the
 * raw system calls (bench/uring.h; no liburing):
 *
 * - one multishot ACCEPT posts a completion per new connection;
 * - one multishot RECV per connection, with IOSQE_BUFFER_SELECT on a ring of provided buffers: the
 *   kernel picks a buffer when data arrives, so no buffer is tied to an idle connection;
 * - each received buffer is sent back as it is (IORING_OP_SEND, no copy), one send in flight per
 *   connection, the rest queued in order; the buffer returns to the ring when its send has finished;
 * - every submission of a turn goes in the one io_uring_enter that also waits (batched sends);
 * - the ring is set up with IORING_SETUP_DEFER_TASKRUN | SINGLE_ISSUER where the kernel has them
 *   (completion work runs when this thread enters, not by interrupting it), COOP_TASKRUN where only
 *   that exists, plain otherwise.
 *
 * Running out of buffers is normal: the multishot recv ends with -ENOBUFS, and the connection is
 * re-armed once sends have given buffers back. A short send sends the rest before anything queued
 * behind it. A recv of 0 (the peer finished sending) stops receiving; what was received is still sent,
 * then the connection is closed. An error drops what is queued and closes once nothing is in flight.
 *
 *   echo-uring [--host 127.0.0.1] [--port 0] [--backlog 4096]
 *   echo-uring --check      exits 0 where the kernel has what the server needs, or 3 saying what is missing
 *
 * Prints "listening on HOST:PORT" when ready (or exits 3 with "io_uring unavailable: ..." on stderr);
 * SIGTERM/SIGINT stop it, and it prints "stats {...}".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "uring.h"

/* Provided buffers: BUFFERS of BUFFER_SIZE bytes in group 0. A message larger than one arrives in several. */
#ifndef BUFFERS
#define BUFFERS 4096
#endif
#define BUFFER_SIZE 16384
#define GROUP 0
#define NONE 0xffff

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };

typedef struct connection {
  int fd;
  int receiving;  /* the multishot recv is armed */
  int closing;    /* no more receiving: the peer finished (send what is queued, then close) or failed */
  int failed;     /* an error: drop what is queued and close once nothing is in flight */
  int sending;    /* a send is in flight */
  int starved;    /* its recv ended with -ENOBUFS: re-arm when buffers are back */
  uint16_t queue_head, queue_tail; /* buffers waiting to be sent, linked through next_in_queue[] */
  struct connection *next_starved;
} connection;

static uring ring = {.fd = -1};
static struct io_uring_buf_ring *buffer_ring;
static unsigned char *buffers;
static uint16_t buffer_tail;           /* our copy of the buffer ring's tail */
static unsigned buffers_returned;      /* returned since the tail was last published */
/* Per buffer: where the unsent part starts, how long it is, and the next buffer of its connection's queue. */
static uint32_t sent_from[BUFFERS], length[BUFFERS];
static uint16_t next_in_queue[BUFFERS];
static connection *starved;
static int listener;
static volatile sig_atomic_t stop_asked;

static unsigned long long accepted, bytes_echoed, enters, completions, no_buffers, short_sends;

static uint64_t tag(void *ptr, int op) { return (uint64_t)(uintptr_t)ptr | (uint64_t)op; }

static void on_stop(int sig) {
  (void)sig;
  stop_asked = 1;
}

static void give_back(uint16_t bid) {
  struct io_uring_buf *buf = &buffer_ring->bufs[(uint16_t)(buffer_tail + buffers_returned) & (BUFFERS - 1)];
  buf->addr = (uint64_t)(uintptr_t)(buffers + (size_t)bid * BUFFER_SIZE);
  buf->len = BUFFER_SIZE;
  buf->bid = bid;
  buffers_returned++;
}

/* Makes the buffers given back visible to the kernel: one store per turn, not one per buffer. Returns how many. */
static unsigned publish_buffers(void) {
  unsigned n = buffers_returned;
  if (n == 0) return 0;
  buffer_tail = (uint16_t)(buffer_tail + n);
  buffers_returned = 0;
  __atomic_store_n(&buffer_ring->tail, buffer_tail, __ATOMIC_RELEASE);
  return n;
}

static void arm_accept(void) {
  struct io_uring_sqe *sqe = uring_sqe(&ring);
  sqe->opcode = IORING_OP_ACCEPT;
  sqe->fd = listener;
  sqe->ioprio = IORING_ACCEPT_MULTISHOT;
  sqe->accept_flags = SOCK_CLOEXEC;
  sqe->user_data = tag(NULL, OP_ACCEPT);
  uring_push(&ring);
}

static void arm_recv(connection *c) {
  struct io_uring_sqe *sqe = uring_sqe(&ring);
  sqe->opcode = IORING_OP_RECV;
  sqe->fd = c->fd;
  sqe->ioprio = IORING_RECV_MULTISHOT;
  sqe->flags = IOSQE_BUFFER_SELECT;
  sqe->buf_group = GROUP;
  sqe->user_data = tag(c, OP_RECV);
  uring_push(&ring);
  c->receiving = 1;
}

static void send_head(connection *c) {
  uint16_t bid = c->queue_head;
  struct io_uring_sqe *sqe = uring_sqe(&ring);
  sqe->opcode = IORING_OP_SEND;
  sqe->fd = c->fd;
  sqe->addr = (uint64_t)(uintptr_t)(buffers + (size_t)bid * BUFFER_SIZE + sent_from[bid]);
  sqe->len = length[bid];
  sqe->msg_flags = MSG_NOSIGNAL;
  sqe->user_data = tag(c, OP_SEND);
  uring_push(&ring);
  c->sending = 1;
}

static void enqueue(connection *c, uint16_t bid, uint32_t n) {
  sent_from[bid] = 0;
  length[bid] = n;
  next_in_queue[bid] = NONE;
  if (c->queue_head == NONE) c->queue_head = bid;
  else next_in_queue[c->queue_tail] = bid;
  c->queue_tail = bid;
  if (!c->sending) send_head(c);
}

/* Closes and frees the connection once it is closing and nothing of it is in flight or (unless it
 * failed) left to send; gives its queued buffers back. Every completion handler calls it last, once: it may free c. */
static void finish_if_done(connection *c) {
  if (!c->closing || c->sending || c->receiving || (!c->failed && c->queue_head != NONE)) return;
  while (c->queue_head != NONE) {
    uint16_t bid = c->queue_head;
    c->queue_head = next_in_queue[bid];
    give_back(bid);
  }
  if (c->starved) { /* unlink it from the starved list */
    for (connection **p = &starved; *p; p = &(*p)->next_starved) {
      if (*p == c) {
        *p = c->next_starved;
        break;
      }
    }
  }
  close(c->fd);
  free(c);
}

/* A send or recv failed: stop receiving (shutdown ends the multishot recv); finish_if_done() closes. */
static void fail_connection(connection *c) {
  c->failed = 1;
  if (c->closing) return;
  c->closing = 1;
  if (c->receiving) shutdown(c->fd, SHUT_RDWR);
}

static void on_accept(struct io_uring_cqe *cqe) {
  if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(); /* the kernel ended the multishot accept */
  if (cqe->res < 0) return; /* e.g. EMFILE: the client sees the reset; the next accept may work */
  connection *c = calloc(1, sizeof *c);
  if (!c) die("calloc");
  c->fd = cqe->res;
  c->queue_head = c->queue_tail = NONE;
  const int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  accepted++;
  arm_recv(c);
}

static void on_recv(connection *c, struct io_uring_cqe *cqe) {
  int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  if (!more) c->receiving = 0;
  if (cqe->res > 0) {
    uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (c->failed) give_back(bid);
    else enqueue(c, bid, (uint32_t)cqe->res);
    if (!more && !c->closing) arm_recv(c); /* the kernel ended it (e.g. its completion ring was full): go on */
  } else if (cqe->res == -ENOBUFS && !c->closing) {
    no_buffers++;
    if (!more && !c->starved) {
      c->starved = 1;
      c->next_starved = starved;
      starved = c;
    }
  } else if (!more && cqe->res == 0) {
    c->closing = 1; /* the peer finished sending: what is queued still goes out */
  } else if (!more) {
    fail_connection(c);
  }
  finish_if_done(c);
}

static void on_send(connection *c, struct io_uring_cqe *cqe) {
  c->sending = 0;
  uint16_t bid = c->queue_head;
  if (cqe->res < 0) {
    fail_connection(c);
  } else if ((uint32_t)cqe->res < length[bid] && !c->failed) {
    short_sends++;
    bytes_echoed += (unsigned long long)cqe->res;
    sent_from[bid] += (uint32_t)cqe->res;
    length[bid] -= (uint32_t)cqe->res;
    send_head(c); /* the rest first: bytes behind it must not overtake it */
  } else {
    bytes_echoed += (unsigned long long)cqe->res;
    c->queue_head = next_in_queue[bid];
    give_back(bid);
    if (c->queue_head != NONE && !c->failed) send_head(c);
  }
  finish_if_done(c);
}

/* Connections whose recv ran out of buffers, re-armed now that buffers are back. */
static void rearm_starved(void) {
  while (starved) {
    connection *c = starved;
    starved = c->next_starved;
    c->starved = 0;
    if (!c->closing && !c->receiving) arm_recv(c);
  }
}

static int setup_ring(char *why, size_t why_size) {
  /* DEFER_TASKRUN needs SINGLE_ISSUER (6.1); COOP_TASKRUN alone (5.19); plain otherwise. */
  const unsigned tries[] = {IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER, IORING_SETUP_COOP_TASKRUN, 0};
  for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
    struct io_uring_params params = {0};
    params.flags = tries[i] | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    params.cq_entries = 4 * BUFFERS > 4096 ? 4 * BUFFERS : 4096;
    if (uring_setup(&ring, 1024, &params) == 0) return (int)tries[i];
    if (errno != EINVAL) break;
  }
  snprintf(why, why_size, "io_uring_setup: %s", strerror(errno));
  return -1;
}

static int setup_buffers(char *why, size_t why_size) {
  buffer_ring = mmap(NULL, BUFFERS * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  buffers = mmap(NULL, (size_t)BUFFERS * BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer_ring == MAP_FAILED || buffers == MAP_FAILED) die("mmap (provided buffers)");
  struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)buffer_ring, .ring_entries = BUFFERS, .bgid = GROUP};
  if (syscall(__NR_io_uring_register, ring.fd, IORING_REGISTER_PBUF_RING, &reg, 1) != 0) {
    snprintf(why, why_size, "IORING_REGISTER_PBUF_RING: %s", strerror(errno));
    return -1;
  }
  for (uint16_t bid = 0; bid < BUFFERS; bid++) give_back(bid);
  publish_buffers();
  return 0;
}

static int open_listener(const char *host, const char *port, long backlog, struct sockaddr_storage *bound) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *addr;
  int rc = getaddrinfo(host, port, &hints, &addr);
  if (rc != 0) {
    errno = 0;
    die("getaddrinfo %s: %s", host, gai_strerror(rc));
  }
  int fd = socket(addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, addr->ai_addr, addr->ai_addrlen) != 0) die("bind");
  if (listen(fd, (int)backlog) != 0) die("listen");
  freeaddrinfo(addr);
  socklen_t len = sizeof *bound;
  getsockname(fd, (struct sockaddr *)bound, &len);
  return fd;
}

/*
 * --check: whether this kernel does what the server needs, beyond io_uring_setup: a multishot recv on a
 * provided buffer (6.0) that stays armed after its first completion. Returns 0, or 3 with the reason.
 */
static int check(char *why, size_t why_size) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) die("socketpair");
  connection c = {.fd = pair[0], .queue_head = NONE, .queue_tail = NONE};
  arm_recv(&c);
  if (write(pair[1], "x", 1) != 1) die("write");
  int rc = uring_enter(&ring, uring_pending(&ring), 1, IORING_ENTER_GETEVENTS, NULL, 0);
  unsigned head = uring_cq_head(&ring);
  if (rc < 0 || head == uring_cq_tail(&ring)) {
    snprintf(why, why_size, "io_uring_enter: %s", rc < 0 ? strerror(errno) : "no completion");
    return 3;
  }
  struct io_uring_cqe *cqe = &ring.cqes[head & ring.cq_mask];
  if (cqe->res != 1 || !(cqe->flags & IORING_CQE_F_BUFFER) || !(cqe->flags & IORING_CQE_F_MORE)) {
    snprintf(why, why_size, "multishot recv into provided buffers is not supported by this kernel (%s)",
             cqe->res < 0 ? strerror(-cqe->res) : "the recv was not multishot");
    return 3;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *port = "0";
  long backlog = 4096;
  int checking = argc == 2 && strcmp(argv[1], "--check") == 0;
  if (checking) argc = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--host") == 0) host = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0) port = argv[i + 1];
    else if (strcmp(argv[i], "--backlog") == 0) backlog = parse_long("--backlog", argv[i + 1], 1, 65535);
    else {
      errno = 0;
      die("usage: echo-uring [--host H] [--port P] [--backlog N]");
    }
  }
  if (argc % 2 == 0) {
    errno = 0;
    die("usage: echo-uring [--host H] [--port P] [--backlog N]");
  }
  struct rlimit lim; /* as many connections as the hard limit allows */
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  char why[256];
  int mode = setup_ring(why, sizeof why);
  if (mode < 0 || setup_buffers(why, sizeof why) != 0 || (checking && check(why, sizeof why) != 0)) {
    fprintf(stderr, "io_uring unavailable: %s\n", why);
    return 3;
  }
  if (checking) return 0;
  signal(SIGPIPE, SIG_IGN);
  /* SIGTERM and SIGINT are blocked except inside io_uring_enter (its sigmask argument, as with
   * pselect): a stop can only interrupt the wait, never be lost between a check and the wait. */
  sigset_t stop_signals, waiting;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigprocmask(SIG_BLOCK, &stop_signals, &waiting);
  sigdelset(&waiting, SIGTERM);
  sigdelset(&waiting, SIGINT);
  struct sigaction sa = {.sa_handler = on_stop}; /* no SA_RESTART: the wait returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  struct sockaddr_storage bound;
  listener = open_listener(host, port, backlog, &bound);
  arm_accept();
  print_listening(&bound);

  while (!stop_asked) {
    /* Submit the turn's accepts, recvs and sends and wait for at least one completion, in one call. */
    enters++;
    int rc = uring_enter(&ring, uring_pending(&ring), 1, IORING_ENTER_GETEVENTS, &waiting, _NSIG / 8);
    if (rc < 0 && errno != EINTR && errno != EBUSY && errno != EAGAIN) die("io_uring_enter");
    unsigned head = uring_cq_head(&ring), tail = uring_cq_tail(&ring);
    for (; head != tail; head++) {
      struct io_uring_cqe *cqe = &ring.cqes[head & ring.cq_mask];
      completions++;
      void *ptr = (void *)(uintptr_t)(cqe->user_data & ~(uint64_t)7);
      switch ((int)(cqe->user_data & 7)) {
        case OP_ACCEPT: on_accept(cqe); break;
        case OP_RECV: on_recv(ptr, cqe); break;
        case OP_SEND: on_send(ptr, cqe); break;
      }
    }
    uring_cq_advance(&ring, head);
    if (publish_buffers() > 0) rearm_starved();
  }
  const char *modes = mode & IORING_SETUP_DEFER_TASKRUN ? "defer_taskrun" : mode & IORING_SETUP_COOP_TASKRUN ? "coop_taskrun" : "plain";
  printf("stats {\"accepted\":%llu,\"bytesEchoed\":%llu,\"enters\":%llu,\"completions\":%llu,\"noBuffers\":%llu,\"shortSends\":%llu,"
         "\"ring\":\"%s\"}\n", accepted, bytes_echoed, enters, completions, no_buffers, short_sends, modes);
  return 0;
}
