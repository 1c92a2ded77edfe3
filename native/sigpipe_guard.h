// SIGPIPE around the system calls that take no MSG_NOSIGNAL (sendfile, splice): Linux only.
#pragma once
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>

namespace iomux {

// sendfile(2) and splice(2) take no MSG_NOSIGNAL: a write to a closed peer (socket or pipe) raises
// SIGPIPE, which kills a process that does not ignore it. Node ignores it (SigIgn), and then nothing needs doing. But a process
// may not: after a 'SIGPIPE' listener is removed, libuv leaves SIG_DFL. So the disposition is read
// once per call (one rt_sigaction), and only when SIGPIPE is not ignored is it blocked on this
// thread for the call, and one the call raised taken back before the old mask returns (libcurl's
// sigpipe.h does the same). This costs one system call per binding call, not two around every system call.
class SigPipeGuard {
 public:
  SigPipeGuard() {
    struct sigaction action {};
    ignored_ = sigaction(SIGPIPE, nullptr, &action) == 0 && !(action.sa_flags & SA_SIGINFO) &&
               action.sa_handler == SIG_IGN;
    if (ignored_) return;
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigPipeGuard() {
    if (!ignored_) pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigPipeGuard(const SigPipeGuard&) = delete;
  SigPipeGuard& operator=(const SigPipeGuard&) = delete;

  // After EPIPE. A thread that blocked SIGPIPE itself may have one pending from before: not ours.
  void TakeBack() {
    if (ignored_ || sigismember(&old_, SIGPIPE)) return;
    timespec now{};
    while (sigtimedwait(&pipe_, nullptr, &now) < 0 && errno == EINTR) {
    }
  }

 private:
  bool ignored_ = false;
  sigset_t pipe_;
  sigset_t old_;
};

}  // namespace iomux
