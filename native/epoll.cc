// epoll (Linux): epoll_create1, epoll_ctl, and epoll_wait filling a caller-owned typed array
// with [data, events] pairs, so a wait allocates nothing per call.
#ifdef __linux__
#include <sys/epoll.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "bindings.h"
#include "errors.h"
#include "platform.h"
#include "wait_retry.h"

namespace iomux {
namespace {

Napi::Value EpollCreate1(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int flags = static_cast<int>(ArgIntegerOr(info, 0, "flags", 0, 0, INT32_MAX));
  int fd = ::epoll_create1(flags | EPOLL_CLOEXEC);
  if (fd < 0) ThrowSystemError(env, errno, "epoll_create1");
  return Napi::Number::New(env, fd);
}

// epoll_ctl(epfd, op, fd, events = 0, data = fd): `data` is the 32-bit token epoll_wait reports
// for this descriptor (the fd itself unless the caller picks another, e.g. a generation).
Napi::Value EpollCtl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int epfd = static_cast<int>(ArgDescriptor(info, 0, "epfd"));
  int op = static_cast<int>(ArgInteger(info, 1, "op", 1, 3));
  int fd = static_cast<int>(ArgDescriptor(info, 2, "fd"));
  uint32_t events = static_cast<uint32_t>(ArgIntegerOr(info, 3, "events", 0, INT32_MIN, UINT32_MAX));
  uint32_t data = static_cast<uint32_t>(ArgIntegerOr(info, 4, "data", fd, INT32_MIN, UINT32_MAX));
  epoll_event event{};
  event.events = events;
  event.data.u64 = data;
  if (::epoll_ctl(epfd, op, fd, &event) != 0) ThrowSystemError(env, errno, "epoll_ctl");
  return env.Undefined();
}

// epoll_wait(epfd, events, maxevents, timeoutMs) -> n; events[2i] = data, events[2i+1] = events.
Napi::Value EpollWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int epfd = static_cast<int>(ArgDescriptor(info, 0, "epfd"));
  ByteRange memory = ArgTypedMemory(info, 1, "events", alignof(uint32_t));
  // The kernel takes at most INT_MAX / sizeof(epoll_event) (EP_MAX_EVENTS); refusing more here
  // also keeps the scratch array below from attempting an allocation that could only fail.
  constexpr int64_t kMaxEvents = std::numeric_limits<int>::max() / sizeof(epoll_event);
  int64_t capacity = std::min<int64_t>(static_cast<int64_t>(memory.length / (2 * sizeof(uint32_t))), kMaxEvents);
  int maxEvents = static_cast<int>(ArgInteger(info, 2, "maxevents", 1, capacity < 1 ? 1 : capacity));
  if (capacity < 1) throw Napi::RangeError::New(env, "The \"events\" array must hold at least one [data, events] pair");
  int timeoutMs = ArgTimeoutMs(info, 3);
  // struct epoll_event is packed on x86-64, so the kernel cannot write the pairs directly; this
  // per-thread scratch array grows once and is then reused (threads: workers have their own).
  thread_local std::vector<epoll_event> scratch;
  if (scratch.size() < static_cast<size_t>(maxEvents)) scratch.resize(maxEvents);
  int n = WaitRetryingEintr(timeoutMs, [&](int ms) {
    return ::epoll_wait(epfd, scratch.data(), maxEvents, ms);
  });
  if (n < 0) ThrowSystemError(env, errno, "epoll_wait");
  uint32_t* out = reinterpret_cast<uint32_t*>(memory.data);
  for (int i = 0; i < n; i++) {
    out[2 * i] = static_cast<uint32_t>(scratch[i].data.u64);
    out[2 * i + 1] = scratch[i].events;
  }
  return Napi::Number::New(env, n);
}

}  // namespace

void InitEpoll(Napi::Env env, Napi::Object exports) {
  exports.Set("epoll_create1", Napi::Function::New(env, EpollCreate1, "epoll_create1"));
  exports.Set("epoll_ctl", Napi::Function::New(env, EpollCtl, "epoll_ctl"));
  exports.Set("epoll_wait", Napi::Function::New(env, EpollWait, "epoll_wait"));
}

}  // namespace iomux

#else  // !__linux__

#include "bindings.h"
namespace iomux {
void InitEpoll(Napi::Env, Napi::Object) {}  // No epoll here; the JavaScript side says so.
}  // namespace iomux

#endif
