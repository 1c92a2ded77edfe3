// The blocking waits themselves, shared by the bindings (select.cc, poll.cc) and the helper
// thread that lets a reactor live inside Node's event loop (wait_thread.cc).
#pragma once
#include <napi.h>

#include <cstdint>

#include "platform.h"

namespace iomux {

#ifdef _WIN32
using PollFd = WSAPOLLFD;
#else
using PollFd = pollfd;
#endif

// The (pollfds, nfds) arguments at info[index], info[index + 1]: a caller-owned, aligned pollfd
// array and how many of its entries to use (RangeError past its end). Written once for poll,
// selectPollfds and WaitThread.arm.
struct PollFdRange {
  PollFd* fds;
  int64_t count;
};
PollFdRange ArgPollFds(const Napi::CallbackInfo& info, size_t index);

// poll()/WSAPoll() on `fds`, EINTR retried with the remaining time. Returns the count, or -1
// with errno set.
int PollWait(PollFd* fds, int64_t count, int timeoutMs);

// Throws RangeError unless select() can take every entry of `fds`: on POSIX each descriptor
// below FD_SETSIZE (FD_SET past the set writes outside it); on Windows, where an fd_set is a
// counted array and FD_SET drops what does not fit without a word, at most FD_SETSIZE sockets
// (`reserved` of them the caller's own, as the message says).
void CheckSelectPollfds(Napi::Env env, const PollFd* fds, int64_t count, int reserved);

// select() driven by pollfd entries (POLLIN -> read set, POLLOUT -> write set, POLLPRI ->
// except set), filling revents. The caller has checked the entries with CheckSelectPollfds().
// Returns how many entries are ready, or -1 with errno set.
int SelectWait(PollFd* fds, int64_t count, int timeoutMs);

}  // namespace iomux
