// io_uring's readiness operations (Linux): a ring object whose pollAdd/pollRemove/pollUpdate
// queue entries in the shared submission ring without a system call, and whose wait() hands them
// to the kernel and waits in the same io_uring_enter, then fills a caller-owned typed array with
// [data, result] pairs read straight from the completion ring: no allocation per call.
#ifdef __linux__
#include "io_uring.h"

#include <chrono>
#include <cmath>
#include <ctime>

#include "bindings.h"
#include "errors.h"
#include "platform.h"

namespace iomux {
namespace {

// Set in a reported result when the completion carried IORING_CQE_F_MORE (the multishot poll
// goes on). Poll masks use the low 16 bits and errors are negative, so the bit is free.
constexpr int32_t kMoreBit = 1 << 30;
constexpr unsigned kMaxEntries = 32768;  // IORING_MAX_ENTRIES
constexpr unsigned kMaxCqEntries = 2 * kMaxEntries;

class IoUring : public Napi::ObjectWrap<IoUring> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "IoUring",
        {InstanceAccessor<&IoUring::Fd>("fd"), InstanceAccessor<&IoUring::Features>("features"),
         InstanceAccessor<&IoUring::SqEntries>("sqEntries"), InstanceAccessor<&IoUring::CqEntries>("cqEntries"),
         InstanceAccessor<&IoUring::DeferTaskrun>("deferTaskrun"),
         InstanceMethod<&IoUring::PollAdd>("pollAdd"), InstanceMethod<&IoUring::PollRemove>("pollRemove"),
         InstanceMethod<&IoUring::PollUpdate>("pollUpdate"), InstanceMethod<&IoUring::Cancel>("cancel"),
         InstanceMethod<&IoUring::Submit>("submit"),
         InstanceMethod<&IoUring::Wait>("wait"), InstanceMethod<&IoUring::Pending>("pending"),
         InstanceMethod<&IoUring::Overflow>("overflow"), InstanceMethod<&IoUring::Close>("close"),
         StaticValue("MORE", Napi::Number::New(env, kMoreBit)),
         StaticValue("POLL_ADD_MULTI", Napi::Number::New(env, IORING_POLL_ADD_MULTI)),
         StaticValue("POLL_ADD_LEVEL", Napi::Number::New(env, IORING_POLL_ADD_LEVEL)),
         StaticValue("POLL_UPDATE_EVENTS", Napi::Number::New(env, IORING_POLL_UPDATE_EVENTS)),
         StaticValue("POLL_UPDATE_USER_DATA", Napi::Number::New(env, IORING_POLL_UPDATE_USER_DATA))});
  }

  // new IoUring(sqEntries = 256, cqEntries = 0: the kernel's default, twice sqEntries,
  //             deferTaskrun = false: see Ring::Open; only the thread that first submits may use it then)
  explicit IoUring(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IoUring>(info) {
    Napi::Env env = info.Env();
    unsigned sq = static_cast<unsigned>(ArgIntegerOr(info, 0, "sqEntries", 256, 1, kMaxEntries));
    unsigned cq = static_cast<unsigned>(ArgIntegerOr(info, 1, "cqEntries", 0, 0, kMaxCqEntries));
    bool defer = info.Length() > 2 && !info[2].IsUndefined() && ArgBoolean(info, 2, "deferTaskrun");
    if (cq != 0 && cq < sq) throw Napi::RangeError::New(env, "cqEntries must be 0 (the default) or at least sqEntries");
    int err = ring_.Open(sq, cq, defer);
    if (err == EOPNOTSUPP) {
      Napi::Error error = SystemError(env, err, "io_uring_setup");
      error.Set("message", Napi::String::New(env, "io_uring_setup EOPNOTSUPP: this kernel's io_uring lacks multishot poll "
                                                  "or timed waits (Linux 5.13 or later is needed)"));
      throw error;
    }
    if (err != 0) ThrowSystemError(env, err, "io_uring_setup");
  }

  ~IoUring() override { ring_.Close(); }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ring_.fd()); }
  Napi::Value Features(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ring_.features()); }
  Napi::Value SqEntries(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ring_.sqEntries()); }
  Napi::Value CqEntries(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ring_.cqEntries()); }
  Napi::Value DeferTaskrun(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), ring_.deferred()); }

  // pollAdd(fd, events, data, flags = 0): a POLL_ADD for `events` (POLLIN, POLLOUT, ...; the
  // kernel's epoll bits) whose completions carry `data`. flags: POLL_ADD_MULTI, POLL_ADD_LEVEL.
  Napi::Value PollAdd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    int fd = static_cast<int>(ArgDescriptor(info, 0, "fd"));
    uint32_t events = static_cast<uint32_t>(ArgInteger(info, 1, "events", 0, UINT32_MAX));
    uint32_t data = static_cast<uint32_t>(ArgInteger(info, 2, "data", 0, UINT32_MAX));
    uint32_t flags = static_cast<uint32_t>(ArgIntegerOr(info, 3, "flags", 0, 0, IORING_POLL_ADD_MULTI | IORING_POLL_ADD_LEVEL));
    io_uring_sqe* sqe = Sqe(env);
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = fd;
    sqe->poll32_events = events;
    sqe->len = flags;
    sqe->user_data = data;
    return env.Undefined();
  }

  // pollRemove(target, data): cancels the poll whose completions carry `target`; the cancelled
  // poll completes with -ECANCELED. The removal's own completion carries `data`; without `data` it
  // posts one only if it fails (IOSQE_CQE_SKIP_SUCCESS, Linux 5.17+), with data 0: -ENOENT when the
  // poll had already ended.
  Napi::Value PollRemove(const Napi::CallbackInfo& info) { return QueueRemoval(info, IORING_OP_POLL_REMOVE); }

  // cancel(target, data): IORING_OP_ASYNC_CANCEL of the request whose completions carry `target`.
  // Unlike POLL_REMOVE, which fails with -EALREADY while a wake-up of the poll is being handled (and
  // then leaves a multishot poll armed), a cancel marks the poll so that it ends in that case too:
  // it completes with -ECANCELED. `data` as for pollRemove (-ENOENT: nothing to cancel).
  Napi::Value Cancel(const Napi::CallbackInfo& info) { return QueueRemoval(info, IORING_OP_ASYNC_CANCEL); }

  // pollRemove and cancel: (target, data) -> an entry of `opcode` aimed at the request carrying `target`.
  Napi::Value QueueRemoval(const Napi::CallbackInfo& info, uint8_t opcode) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    uint32_t target = static_cast<uint32_t>(ArgInteger(info, 0, "target", 0, UINT32_MAX));
    CompletionData data = ArgCompletionData(info, 1);
    io_uring_sqe* sqe = Sqe(env);
    sqe->opcode = opcode;
    sqe->fd = -1;
    sqe->addr = target;
    SetCompletionData(sqe, data);
    return env.Undefined();
  }

  // pollUpdate(target, newData, events, flags, data): changes a live poll in place, and the kernel
  // polls the descriptor again (a multishot poll posts a completion at once if it is ready).
  // flags: POLL_UPDATE_EVENTS and/or POLL_UPDATE_USER_DATA, plus POLL_ADD_MULTI to keep it
  // multishot. `data` as for pollRemove.
  Napi::Value PollUpdate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    uint32_t target = static_cast<uint32_t>(ArgInteger(info, 0, "target", 0, UINT32_MAX));
    uint32_t newData = static_cast<uint32_t>(ArgInteger(info, 1, "newData", 0, UINT32_MAX));
    uint32_t events = static_cast<uint32_t>(ArgInteger(info, 2, "events", 0, UINT32_MAX));
    constexpr int64_t kUpdateFlags = IORING_POLL_UPDATE_EVENTS | IORING_POLL_UPDATE_USER_DATA | IORING_POLL_ADD_MULTI |
                                     IORING_POLL_ADD_LEVEL;
    uint32_t flags = static_cast<uint32_t>(ArgInteger(info, 3, "flags", 0, kUpdateFlags));
    CompletionData data = ArgCompletionData(info, 4);
    io_uring_sqe* sqe = Sqe(env);
    sqe->opcode = IORING_OP_POLL_REMOVE;
    sqe->fd = -1;
    sqe->addr = target;
    // The kernel refuses a new user_data (EINVAL) unless the update asks to change it.
    sqe->off = (flags & IORING_POLL_UPDATE_USER_DATA) ? newData : 0;
    sqe->poll32_events = events;
    sqe->len = flags;
    SetCompletionData(sqe, data);
    return env.Undefined();
  }

  // The user_data of a removal or update (checked before an entry is taken), or none: then no
  // completion on success, where the kernel can skip it.
  struct CompletionData {
    bool given;
    uint32_t value;
  };
  static CompletionData ArgCompletionData(const Napi::CallbackInfo& info, size_t index) {
    if (info.Length() <= index || info[index].IsUndefined()) return {false, 0};
    return {true, static_cast<uint32_t>(ArgInteger(info, index, "data", 0, UINT32_MAX))};
  }
  void SetCompletionData(io_uring_sqe* sqe, CompletionData data) {
    sqe->user_data = data.value;
    if (!data.given && (ring_.features() & IORING_FEAT_CQE_SKIP)) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  }

  // submit() -> how many queued entries the kernel took, without waiting.
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    return Napi::Number::New(env, Flush(env));
  }

  // wait(events, maxevents, timeoutMs) -> n: submits what is queued and waits (in the same
  // io_uring_enter) up to timeoutMs for a completion, then moves up to `maxevents` completions
  // into events as [data, result] pairs: result is the poll mask (| IoUring.MORE while a
  // multishot poll goes on) or -errno. Completions that do not fit stay for the next call.
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    ByteRange memory = ArgTypedMemory(info, 0, "events", alignof(int32_t));
    int64_t capacity = static_cast<int64_t>(memory.length / (2 * sizeof(int32_t)));
    int maxEvents = static_cast<int>(ArgInteger(info, 1, "maxevents", 1, capacity < 1 ? 1 : std::min<int64_t>(capacity, INT32_MAX)));
    if (capacity < 1) throw Napi::RangeError::New(env, "The \"events\" array must hold at least one [data, result] pair");
    int timeoutMs = ArgTimeoutMs(info, 2);
    if (EnterAndWait(timeoutMs) != 0) ThrowSystemError(env, errno, "io_uring_enter");
    int32_t* out = reinterpret_cast<int32_t*>(memory.data);
    int n = 0;
    for (const io_uring_cqe* cqe; n < maxEvents && (cqe = ring_.PeekCqe()) != nullptr; n++) {
      out[2 * n] = static_cast<int32_t>(static_cast<uint32_t>(cqe->user_data));
      out[2 * n + 1] = cqe->res >= 0 && (cqe->flags & IORING_CQE_F_MORE) ? (cqe->res | kMoreBit) : cqe->res;
      ring_.Advance(1);
    }
    return Napi::Number::New(env, n);
  }

  // pending() -> entries queued and not yet submitted.
  Napi::Value Pending(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ring_.open() ? ring_.Pending() : 0);
  }

  // overflow() -> completions the kernel could not place in a full ring, ever (cq.overflow).
  Napi::Value Overflow(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ring_.open() ? ring_.OverflowCount() : 0);
  }

  // close(): unmaps the rings and closes the descriptor, which ends every poll. Idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    ring_.Close();
    return info.Env().Undefined();
  }

  void CheckOpen(Napi::Env env) {
    if (!ring_.open()) {
      Napi::Error error = Napi::Error::New(env, "This io_uring is closed");
      error.Set("code", Napi::String::New(env, "ERR_INVALID_STATE"));
      throw error;
    }
  }

  // A free submission entry; a full queue is handed to the kernel first.
  io_uring_sqe* Sqe(Napi::Env env) {
    io_uring_sqe* sqe = ring_.NextSqe();
    if (sqe == nullptr) {
      Flush(env);
      sqe = ring_.NextSqe();
      if (sqe == nullptr) ThrowSystemError(env, EBUSY, "io_uring_enter");
    }
    return sqe;
  }

  int Flush(Napi::Env env) {
    int total = 0;
    // A deferred ring also runs its completion work here, so that what a removal releases (the
    // descriptor's file) is released now, not at the next wait.
    unsigned flags = ring_.deferred() ? IORING_ENTER_GETEVENTS : 0;
    for (unsigned pending; (pending = ring_.Pending()) > 0;) {
      int rc = IoUringEnter(ring_.fd(), pending, 0, flags, nullptr, 0);
      if (rc < 0 && errno == EINTR) continue;
      // EBUSY/EAGAIN: the completion ring is full and the kernel takes no more until it is read.
      if (rc < 0) ThrowSystemError(env, errno, "io_uring_enter");
      if (rc == 0) break;
      total += rc;
    }
    return total;
  }

  // Submits everything queued and, unless a completion is already there or timeoutMs is 0,
  // waits for one. EINTR (and a wake-up with nothing to show) goes on waiting for the time left,
  // on a monotonic clock. Returns 0, or -1 with errno set.
  int EnterAndWait(int timeoutMs) {
    using Clock = std::chrono::steady_clock;
    const bool forever = timeoutMs < 0;
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(forever ? 0 : timeoutMs);
    int remaining = timeoutMs;
    for (;;) {
      unsigned toSubmit = ring_.Pending();
      bool empty = ring_.Ready() == 0;
      bool block = empty && remaining != 0;
      // With nothing to submit, nothing to wait for and no held-back completions, the ring is
      // read without a system call at all. A deferred ring's completion work runs only in here.
      if (toSubmit > 0 || block || ring_.Overflowed() || (empty && ring_.deferred())) {
        timespec ts{};
        io_uring_getevents_arg arg{};
        if (block && remaining > 0) {
          ts.tv_sec = remaining / 1000;
          ts.tv_nsec = static_cast<long>(remaining % 1000) * 1000000L;
          arg.ts = reinterpret_cast<uint64_t>(&ts);
        }
        int rc = IoUringEnter(ring_.fd(), toSubmit, block ? 1 : 0, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg,
                              sizeof(arg));
        // ETIME: the timeout ran out; EINTR: a signal (retried below); EBUSY/EAGAIN: completions
        // are held back, and reading the ring makes room.
        if (rc < 0 && errno != ETIME && errno != EINTR && errno != EBUSY && errno != EAGAIN) return -1;
        if (rc < 0 && (errno == EBUSY || errno == EAGAIN) && ring_.Ready() == 0) return -1;
        if (rc < 0 && errno == ETIME) return 0;
      }
      if (ring_.Ready() > 0 || !block) {
        // The kernel runs deferred work in batches and returns once a completion is there: run the
        // rest now, so one wait reports everything ready (bounded: work that keeps coming waits).
        for (int rounds = 0; rounds < 64 && ring_.WorkPending(); rounds++) {
          if (IoUringEnter(ring_.fd(), 0, 0, IORING_ENTER_GETEVENTS, nullptr, 0) < 0 && errno != EINTR) break;
        }
        // An entry a submission stopped short of stays queued for the next enter.
        return 0;
      }
      if (forever) continue;
      auto left = std::chrono::duration<double, std::milli>(deadline - Clock::now()).count();
      if (left <= 0) return 0;
      remaining = static_cast<int>(std::ceil(left));
    }
  }

  Ring ring_;
};

}  // namespace

void InitIoUring(Napi::Env env, Napi::Object exports) {
  exports.Set("IoUring", IoUring::Define(env));
}

}  // namespace iomux

#else  // !__linux__

#include "bindings.h"
namespace iomux {
void InitIoUring(Napi::Env, Napi::Object) {}  // No io_uring here; the JavaScript side says so.
}  // namespace iomux

#endif
