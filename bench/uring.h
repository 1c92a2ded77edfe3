/*
 * A ring of io_uring through the raw system calls and <linux/io_uring.h> (no liburing: the C programs
 * of bench/ build with a compiler and the kernel's headers alone), shared by bench/scaling.c and
 * bench/echo-uring.c: set up and map the rings, hand out submission entries, enter, tear down.
 * Completions are read by the caller between uring_cq_head() and uring_cq_tail().
 */
#ifndef IOMUX_BENCH_URING_H
#define IOMUX_BENCH_URING_H

#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

typedef struct {
  int fd;
  void *ring;
  size_t ring_size;
  struct io_uring_sqe *sqes;
  size_t sqes_size;
  unsigned *sq_head, *sq_tail, sq_mask, sq_entries, local_tail;
  unsigned *cq_head, *cq_tail, cq_mask;
  struct io_uring_cqe *cqes;
} uring;

static inline int uring_enter(uring *r, unsigned to_submit, unsigned min_complete, unsigned flags, const void *arg, size_t arg_size) {
  return (int)syscall(__NR_io_uring_enter, r->fd, to_submit, min_complete, flags, arg, arg_size);
}

/* Entries written but not yet consumed by the kernel. */
static inline unsigned uring_pending(const uring *r) { return r->local_tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE); }

static inline void uring_submit(uring *r) {
  while (uring_pending(r) > 0) {
    int rc = uring_enter(r, uring_pending(r), 0, 0, NULL, 0);
    if (rc < 0 && errno != EINTR) die("io_uring_enter (submit)");
  }
}

/* A zeroed submission entry; the ring is submitted first when it is full. Published by uring_push(). */
static inline struct io_uring_sqe *uring_sqe(uring *r) {
  if (uring_pending(r) >= r->sq_entries) uring_submit(r);
  struct io_uring_sqe *sqe = &r->sqes[r->local_tail & r->sq_mask];
  memset(sqe, 0, sizeof *sqe);
  return sqe;
}

static inline void uring_push(uring *r) {
  r->local_tail++;
  __atomic_store_n(r->sq_tail, r->local_tail, __ATOMIC_RELEASE);
}

static inline unsigned uring_cq_head(const uring *r) { return *r->cq_head; }
static inline unsigned uring_cq_tail(const uring *r) { return __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE); }
static inline void uring_cq_advance(uring *r, unsigned head) { __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE); }

/*
 * io_uring_setup with `params` (flags, cq_entries) and maps the rings. Returns 0, or -1 with errno set
 * (io_uring disabled, or a flag this kernel does not know: EINVAL), the ring left closed.
 */
static inline int uring_setup(uring *r, unsigned entries, struct io_uring_params *params) {
  r->fd = (int)syscall(__NR_io_uring_setup, entries, params);
  if (r->fd < 0) return -1;
  r->ring_size = params->sq_off.array + params->sq_entries * sizeof(unsigned);
  size_t cq_size = params->cq_off.cqes + params->cq_entries * sizeof(struct io_uring_cqe);
  if (cq_size > r->ring_size) r->ring_size = cq_size;
  r->ring = mmap(NULL, r->ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
  if (r->ring == MAP_FAILED) die("mmap (io_uring rings)");
  r->sqes_size = params->sq_entries * sizeof(struct io_uring_sqe);
  r->sqes = mmap(NULL, r->sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
  if (r->sqes == MAP_FAILED) die("mmap (io_uring entries)");
  char *base = r->ring;
  r->sq_head = (unsigned *)(base + params->sq_off.head);
  r->sq_tail = (unsigned *)(base + params->sq_off.tail);
  r->sq_mask = *(unsigned *)(base + params->sq_off.ring_mask);
  r->sq_entries = params->sq_entries;
  unsigned *array = (unsigned *)(base + params->sq_off.array);
  for (unsigned i = 0; i < params->sq_entries; i++) array[i] = i;
  r->local_tail = *r->sq_tail;
  r->cq_head = (unsigned *)(base + params->cq_off.head);
  r->cq_tail = (unsigned *)(base + params->cq_off.tail);
  r->cq_mask = *(unsigned *)(base + params->cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)(base + params->cq_off.cqes);
  return 0;
}

static inline void uring_teardown(uring *r) {
  if (r->fd < 0) return;
  munmap(r->sqes, r->sqes_size);
  munmap(r->ring, r->ring_size);
  close(r->fd);
  r->fd = -1;
}

#endif
