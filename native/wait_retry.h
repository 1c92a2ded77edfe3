// PEP 475 for the wait calls: a signal must not cut a wait short, and the retry waits only for
// what is left of the caller's timeout, measured on a monotonic clock.
#pragma once
#include <cerrno>
#include <chrono>
#include <cmath>

namespace iomux {

// `wait(ms)` is the system call: it returns a count, or -1 with errno set.
template <typename Wait>
int WaitRetryingEintr(int timeoutMs, Wait wait) {
  using Clock = std::chrono::steady_clock;
  const bool forever = timeoutMs < 0;
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(forever ? 0 : timeoutMs);
  int remaining = timeoutMs;
  for (;;) {
    int rc = wait(remaining);
    if (rc >= 0 || errno != EINTR) return rc;
    if (forever) continue;
    auto left = std::chrono::duration<double, std::milli>(deadline - Clock::now()).count();
    if (left <= 0) return 0;  // The time ran out while we were interrupted: nothing is ready.
    remaining = static_cast<int>(std::ceil(left));
  }
}

}  // namespace iomux
