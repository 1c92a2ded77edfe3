// io_uring (Linux) through the raw system calls and the kernel's uapi header, no liburing: the
// rings are mapped once at setup, submission queue entries are written straight into the shared
// array, and completions are read straight out of the shared completion ring. Only what the poll
// operations need (POLL_ADD, POLL_REMOVE and its update form) is here.
#pragma once
#ifdef __linux__
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <initializer_list>

// Older uapi headers lack the newer names; the values are the kernel's ABI and never change.
#ifndef IORING_POLL_ADD_LEVEL
#define IORING_POLL_ADD_LEVEL (1U << 3)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_SQ_TASKRUN
#define IORING_SQ_TASKRUN (1U << 2)
#endif
#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif
#ifndef IORING_FEAT_RSRC_TAGS
#define IORING_FEAT_RSRC_TAGS (1U << 10)
#endif

namespace iomux {

inline int IoUringSetup(unsigned entries, io_uring_params* params) {
  return static_cast<int>(::syscall(__NR_io_uring_setup, entries, params));
}

inline int IoUringEnter(int fd, unsigned toSubmit, unsigned minComplete, unsigned flags, const void* arg,
                        size_t argSize) {
  return static_cast<int>(::syscall(__NR_io_uring_enter, fd, toSubmit, minComplete, flags, arg, argSize));
}

// One ring: its descriptor and the three shared mappings. Owned by one thread at a time.
class Ring {
 public:
  // io_uring_setup and the mappings; returns 0, or an errno value (nothing is left open then).
  // `deferTaskrun` asks for IORING_SETUP_DEFER_TASKRUN (6.1): completion work waits for the next
  // io_uring_enter instead of interrupting the thread; a kernel without it gets the plain ring.
  int Open(unsigned sqEntries, unsigned cqEntries, bool deferTaskrun) {
    io_uring_params params{};
    // SUBMIT_ALL (5.18): an entry the kernel refuses does not stop the submission of those after it.
    // TASKRUN_FLAG: the kernel sets IORING_SQ_TASKRUN while deferred work waits to be run.
    constexpr unsigned kDefer = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    for (unsigned flags : {IORING_SETUP_SUBMIT_ALL | kDefer, IORING_SETUP_SUBMIT_ALL | 0u, 0u}) {
      if ((flags & kDefer) != 0 && !deferTaskrun) continue;
      params = io_uring_params{};
      params.flags = flags | (cqEntries > 0 ? IORING_SETUP_CQSIZE : 0);
      params.cq_entries = cqEntries;
      fd_ = IoUringSetup(sqEntries, &params);
      if (fd_ >= 0 || errno != EINVAL) break;
    }
    if (fd_ < 0) return Fail(errno);
    deferred_ = (params.flags & IORING_SETUP_DEFER_TASKRUN) != 0;
    features_ = params.features;
    // One mapping for both rings (5.4), waits with a timeout argument (5.11), and the release that
    // brought multishot poll (5.13, which added RSRC_TAGS in the same merge window).
    constexpr unsigned kRequired = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_EXT_ARG | IORING_FEAT_RSRC_TAGS;
    if ((features_ & kRequired) != kRequired) return Fail(EOPNOTSUPP);
    sqEntries_ = params.sq_entries;
    cqEntries_ = params.cq_entries;
    sqRingSize_ = params.sq_off.array + params.sq_entries * sizeof(uint32_t);
    size_t cqSize = params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe);
    if (cqSize > sqRingSize_) sqRingSize_ = cqSize;
    ring_ = ::mmap(nullptr, sqRingSize_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQ_RING);
    if (ring_ == MAP_FAILED) return Fail(errno);
    sqesSize_ = params.sq_entries * sizeof(io_uring_sqe);
    void* sqes = ::mmap(nullptr, sqesSize_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) return Fail(errno);
    sqes_ = static_cast<io_uring_sqe*>(sqes);
    char* base = static_cast<char*>(ring_);
    sqHead_ = reinterpret_cast<unsigned*>(base + params.sq_off.head);
    sqTail_ = reinterpret_cast<unsigned*>(base + params.sq_off.tail);
    sqMask_ = *reinterpret_cast<unsigned*>(base + params.sq_off.ring_mask);
    sqFlags_ = reinterpret_cast<unsigned*>(base + params.sq_off.flags);
    sqArray_ = reinterpret_cast<unsigned*>(base + params.sq_off.array);
    cqHead_ = reinterpret_cast<unsigned*>(base + params.cq_off.head);
    cqTail_ = reinterpret_cast<unsigned*>(base + params.cq_off.tail);
    cqMask_ = *reinterpret_cast<unsigned*>(base + params.cq_off.ring_mask);
    cqOverflow_ = reinterpret_cast<unsigned*>(base + params.cq_off.overflow);
    cqes_ = reinterpret_cast<io_uring_cqe*>(base + params.cq_off.cqes);
    // The SQ array maps ring slots to entries: make it the identity once, so a submission only
    // writes the entry and moves the tail.
    for (unsigned i = 0; i < sqEntries_; i++) sqArray_[i] = i;
    localTail_ = *sqTail_;
    return 0;
  }

  void Close() {
    if (sqes_ != nullptr) ::munmap(sqes_, sqesSize_);
    if (ring_ != nullptr && ring_ != MAP_FAILED) ::munmap(ring_, sqRingSize_);
    if (fd_ >= 0) ::close(fd_);
    sqes_ = nullptr;
    ring_ = nullptr;
    fd_ = -1;
  }

  bool open() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  unsigned features() const { return features_; }
  unsigned sqEntries() const { return sqEntries_; }
  unsigned cqEntries() const { return cqEntries_; }
  // Completion work runs only inside io_uring_enter(GETEVENTS) (IORING_SETUP_DEFER_TASKRUN).
  bool deferred() const { return deferred_; }
  // Entries written but not yet handed to the kernel.
  unsigned Pending() const { return localTail_ - __atomic_load_n(sqHead_, __ATOMIC_ACQUIRE); }
  // Completions waiting in the ring.
  unsigned Ready() const { return __atomic_load_n(cqTail_, __ATOMIC_ACQUIRE) - *cqHead_; }
  // Completions the kernel had to hold back because the ring was full (it keeps them on a list
  // and moves them in on the next enter; IORING_FEAT_NODROP).
  bool Overflowed() const { return (__atomic_load_n(sqFlags_, __ATOMIC_ACQUIRE) & IORING_SQ_CQ_OVERFLOW) != 0; }
  // Deferred completion work is waiting for an io_uring_enter(GETEVENTS) (IORING_SQ_TASKRUN).
  bool WorkPending() const { return deferred_ && (__atomic_load_n(sqFlags_, __ATOMIC_ACQUIRE) & IORING_SQ_TASKRUN) != 0; }
  unsigned OverflowCount() const { return __atomic_load_n(cqOverflow_, __ATOMIC_ACQUIRE); }

  // A zeroed entry to fill, or nullptr when the submission queue is full (submit first).
  io_uring_sqe* NextSqe() {
    if (Pending() >= sqEntries_) return nullptr;
    io_uring_sqe* sqe = &sqes_[localTail_ & sqMask_];
    std::memset(sqe, 0, sizeof(*sqe));
    localTail_++;
    // Published at once: the kernel reads entries only up to the tail, and only inside enter.
    __atomic_store_n(sqTail_, localTail_, __ATOMIC_RELEASE);
    return sqe;
  }

  // The oldest completion, or nullptr; Advance() releases it to the kernel.
  const io_uring_cqe* PeekCqe() const {
    unsigned head = *cqHead_;
    if (head == __atomic_load_n(cqTail_, __ATOMIC_ACQUIRE)) return nullptr;
    return &cqes_[head & cqMask_];
  }
  void Advance(unsigned count) { __atomic_store_n(cqHead_, *cqHead_ + count, __ATOMIC_RELEASE); }

 private:
  int Fail(int err) {
    Close();
    return err;
  }

  int fd_ = -1;
  unsigned features_ = 0;
  bool deferred_ = false;
  unsigned sqEntries_ = 0;
  unsigned cqEntries_ = 0;
  void* ring_ = nullptr;
  size_t sqRingSize_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  size_t sqesSize_ = 0;
  unsigned* sqHead_ = nullptr;
  unsigned* sqTail_ = nullptr;
  unsigned sqMask_ = 0;
  unsigned* sqFlags_ = nullptr;
  unsigned* sqArray_ = nullptr;
  unsigned* cqHead_ = nullptr;
  unsigned* cqTail_ = nullptr;
  unsigned cqMask_ = 0;
  unsigned* cqOverflow_ = nullptr;
  io_uring_cqe* cqes_ = nullptr;
  unsigned localTail_ = 0;
};

}  // namespace iomux
#endif  // __linux__
