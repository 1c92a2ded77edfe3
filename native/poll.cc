// poll(2) (WSAPoll on Windows) over a caller-owned pollfd array, used in place: a wait
// allocates nothing and copies nothing.
#include "bindings.h"
#include "errors.h"
#include "platform.h"
#include "wait_retry.h"
#include "waits.h"

namespace iomux {
namespace {

#ifdef _WIN32
int SystemPoll(PollFd* fds, int64_t count, int ms) {
  // WSAPoll refuses an array with no socket in it (WSAEINVAL) where poll() sleeps for the timeout.
  bool watching = false;
  for (int64_t i = 0; i < count && !watching; i++) watching = static_cast<int64_t>(fds[i].fd) >= 0;
  if (!watching) {
    Sleep(ms < 0 ? INFINITE : static_cast<DWORD>(ms));
    return 0;
  }
  int rc = WSAPoll(fds, static_cast<ULONG>(count), ms);
  if (rc == SOCKET_ERROR) errno = platform::LastError();
  return rc;
}
constexpr const char* kExportName = "wsapoll";
constexpr const char* kSyscallName = "WSAPoll";
#else
int SystemPoll(PollFd* fds, int64_t count, int ms) { return ::poll(fds, static_cast<nfds_t>(count), ms); }
constexpr const char* kExportName = "poll";
constexpr const char* kSyscallName = "poll";
#endif

// poll(pollfds, nfds, timeoutMs) -> how many entries have revents set.
Napi::Value Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PollFdRange range = ArgPollFds(info, 0);
  int timeoutMs = ArgTimeoutMs(info, 2);
  int rc = PollWait(range.fds, range.count, timeoutMs);
  if (rc < 0) ThrowSystemError(env, errno, kSyscallName);
  return Napi::Number::New(env, rc);
}

}  // namespace

PollFdRange ArgPollFds(const Napi::CallbackInfo& info, size_t index) {
  ByteRange memory = ArgTypedMemory(info, index, "pollfds", alignof(PollFd));
  int64_t capacity = static_cast<int64_t>(memory.length / sizeof(PollFd));
  int64_t count = ArgInteger(info, index + 1, "nfds", 0, capacity);
  return PollFdRange{reinterpret_cast<PollFd*>(memory.data), count};
}

int PollWait(PollFd* fds, int64_t count, int timeoutMs) {
  return WaitRetryingEintr(timeoutMs, [&](int ms) { return SystemPoll(fds, count, ms); });
}

void InitPoll(Napi::Env env, Napi::Object exports) {
  exports.Set(kExportName, Napi::Function::New(env, Poll, kExportName));
}

}  // namespace iomux
