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

// select() driven by pollfd entries (POLLIN -> read set, POLLOUT -> write set, POLLPRI ->
// except set), filling revents. The caller has checked every fd with CheckSelectable().
// Returns how many entries are ready, or -1 with errno set.
int SelectWait(PollFd* fds, int64_t count, int timeoutMs);

}  // namespace iomux
