/*
 * LD_PRELOAD'ed into a child Node process by test/allocations.test.ts: counts every heap
 * allocation (malloc, calloc, realloc, the aligned ones; C++'s operator new calls malloc) of
 * every thread. The count lives in the 8-byte file named by IOMUX_ALLOCATION_COUNTER, mapped
 * shared, so the process itself can read it at any moment with an ordinary file read.
 * glibc only: it forwards to glibc's own __libc_* entry points.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static _Atomic uint64_t before_mapping;
static _Atomic uint64_t *counter = &before_mapping;

__attribute__((constructor)) static void map_counter(void) {
  const char *path = getenv("IOMUX_ALLOCATION_COUNTER");
  if (path == NULL) return;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  void *shared = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (shared != MAP_FAILED) counter = shared;
}

static inline void count(void) { atomic_fetch_add_explicit(counter, 1, memory_order_relaxed); }

void *malloc(size_t size) {
  count();
  return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
  count();
  return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
  count();
  return __libc_realloc(p, size);
}

void *memalign(size_t alignment, size_t size) {
  count();
  return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
  count();
  return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
  count();
  void *p = __libc_memalign(alignment, size);
  if (p == NULL) return 12; /* ENOMEM */
  *out = p;
  return 0;
}
