// poll(2) (WSAPoll on Windows) over a caller-owned pollfd array, used in place: a wait
// allocates nothing and copies nothing.
#include "bindings.h"
#include "errors.h"
#include "platform.h"
#include "wait_retry.h"

namespace iomux {
namespace {

#ifdef _WIN32
using PollFd = WSAPOLLFD;
int SystemPoll(PollFd* fds, unsigned long count, int ms) {
  int rc = WSAPoll(fds, count, ms);
  if (rc == SOCKET_ERROR) errno = platform::LastError();
  return rc;
}
constexpr const char* kPollName = "WSAPoll";
#else
using PollFd = pollfd;
int SystemPoll(PollFd* fds, nfds_t count, int ms) { return ::poll(fds, count, ms); }
constexpr const char* kPollName = "poll";
#endif

// poll(pollfds, nfds, timeoutMs) -> how many entries have revents set.
Napi::Value Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteRange memory = ArgTypedMemory(info, 0, "pollfds", alignof(PollFd));
  int64_t capacity = static_cast<int64_t>(memory.length / sizeof(PollFd));
  int64_t count = ArgInteger(info, 1, "nfds", 0, capacity);
  int timeoutMs = ArgTimeoutMs(info, 2);
  PollFd* fds = reinterpret_cast<PollFd*>(memory.data);
  int rc = WaitRetryingEintr(timeoutMs, [&](int ms) {
    return SystemPoll(fds, static_cast<decltype(capacity)>(count), ms);
  });
  if (rc < 0) ThrowSystemError(env, errno, kPollName);
  return Napi::Number::New(env, rc);
}

}  // namespace

void InitPoll(Napi::Env env, Napi::Object exports) {
  exports.Set(kPollName, Napi::Function::New(env, Poll, kPollName));
}

}  // namespace iomux
