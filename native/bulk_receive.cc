// Receives of many bytes per system call, the reverse of sendfile: recvfile moves a socket's bytes
// into a file inside the kernel (Linux: splice(2) from the socket into a pipe, then from the pipe
// into the file). The bytes never reach user space: one copy (into the page cache) instead of
// recv's copy out and write's copy back in, and one crossing from JavaScript per flush of the
// socket instead of two per read.
#ifdef __linux__
#include <fcntl.h>
#include <unistd.h>

#include "sigpipe_guard.h"
#endif

#include <algorithm>
#include <cstdint>
#include <limits>

#include "bindings.h"
#include "errors.h"
#include "platform.h"

namespace iomux {
namespace {

#ifdef __linux__
constexpr int64_t kMaxSafeInteger = (int64_t(1) << 53) - 1;
constexpr int64_t kMaxCall = 0x7ffff000;  // The most one read or write call moves (Linux's MAX_RW_COUNT).

// pipe(size = 0) -> [readFd, writeFd]: a pipe for recvfile, both ends non-blocking and
// close-on-exec. With a size, F_SETPIPE_SZ asks for that capacity; a refusal (above
// /proc/sys/fs/pipe-max-size, or past the user's pipe-user-pages-soft) keeps the default: recvfile
// still works, with more calls.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t size = ArgIntegerOr(info, 0, "size", 0, 0, std::numeric_limits<int>::max());
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) ThrowSystemError(env, errno, "pipe2");
  if (size > 0) ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(size));
  Napi::Array ends = Napi::Array::New(env, 2);
  ends.Set(uint32_t(0), Napi::Number::New(env, fds[0]));
  ends.Set(uint32_t(1), Napi::Number::New(env, fds[1]));
  return ends;
}

// A failed splice, naming the descriptor whose side failed: `fd` is inFd when reading it failed,
// outFd when writing the file failed (a caller answers the two differently: a lost connection, a
// full disk).
[[noreturn]] void ThrowSpliceError(Napi::Env env, int err, int fd) {
  Napi::Error error = SystemError(env, err, "splice");
  error.Set("fd", Napi::Number::New(env, fd));
  throw error;
}

// recvfile(outFd, inFd, offset, length, pipe) -> bytes written to outFd at `offset`, 0 at inFd's end
// of stream, or -1 when inFd would block before a byte came. Moves at most `length` bytes: splices
// what inFd holds into `pipe` ([readFd, writeFd], empty, from pipe()), then all of it from the pipe
// into outFd at the next offset, until `length` bytes moved, inFd would block or ends. The pipe is
// empty again when it returns. An error is thrown at once, even after some bytes moved (a socket
// reports its error only once); its `fd` says which side failed. The file position of outFd is
// neither used nor moved; outFd must not be O_APPEND (EINVAL: splice cannot append). After a throw
// the pipe may still hold bytes: close it.
Napi::Value RecvFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int outFd = static_cast<int>(ArgDescriptor(info, 0, "outFd"));
  int inFd = static_cast<int>(ArgDescriptor(info, 1, "inFd"));
  constexpr int64_t kMaxOffset = std::min<int64_t>(kMaxSafeInteger, std::numeric_limits<loff_t>::max());
  int64_t offset = ArgInteger(info, 2, "offset", 0, kMaxOffset);
  int64_t length = ArgInteger(info, 3, "length", 1, kMaxSafeInteger);
  Napi::Value ends = info[4];
  if (!ends.IsArray() || ends.As<Napi::Array>().Length() != 2) ThrowTypeError(env, "pipe", "an Array of two descriptors");
  int pipeRead = static_cast<int>(CheckDescriptor(env, ends.As<Napi::Array>().Get(uint32_t(0)), "pipe[0]"));
  int pipeWrite = static_cast<int>(CheckDescriptor(env, ends.As<Napi::Array>().Get(uint32_t(1)), "pipe[1]"));

  int64_t total = 0;
  SigPipeGuard sigPipe;  // A pipe whose read end was closed raises SIGPIPE: an error here, never a death.
  while (total < length) {
    ssize_t in = ::splice(inFd, nullptr, pipeWrite, nullptr, static_cast<size_t>(std::min(length - total, kMaxCall)),
                          SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (in == 0) break;  // The end of the stream: 0 now if nothing moved, else from the next call.
    if (in < 0) {
      int err = errno;
      if (err == EINTR) continue;
      // The pipe is empty here, so "would block" is inFd's: nothing more has come yet.
      if (err == EAGAIN || err == EWOULDBLOCK) return Napi::Number::New(env, total > 0 ? static_cast<double>(total) : -1);
      if (err == EPIPE) sigPipe.TakeBack();  // pipe[1] had no reader left: pipe[0] was closed.
      ThrowSpliceError(env, err, inFd);
    }
    // All of it into the file before inFd is read again: the pipe is empty between calls.
    for (ssize_t left = in; left > 0;) {
      loff_t at = static_cast<loff_t>(offset + total);
      ssize_t out = ::splice(pipeRead, nullptr, outFd, &at, static_cast<size_t>(left), SPLICE_F_MOVE);
      if (out <= 0) {
        int err = out < 0 ? errno : EIO;  // 0: bytes in the pipe went nowhere.
        if (err == EINTR) continue;
        ThrowSpliceError(env, err, outFd);
      }
      left -= out;
      total += out;
    }
  }
  return Napi::Number::New(env, static_cast<double>(total));
}
#endif

}  // namespace

void InitBulkReceive(Napi::Env env, Napi::Object exports) {
#ifdef __linux__
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("recvfile", Napi::Function::New(env, RecvFile, "recvfile"));
#endif
}

}  // namespace iomux
