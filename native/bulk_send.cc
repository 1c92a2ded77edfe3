// Sends of many bytes per system call, for a stream's write queue: writev gathers queued chunks
// into one sendmsg (WSASend), sendfile moves a file's bytes to a socket inside the kernel (Linux).
// Like send, both return -1 for "would block" instead of throwing, and never raise SIGPIPE.
#ifdef __linux__
#include <sys/sendfile.h>

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

using platform::sock_t;

constexpr int64_t kMaxSafeInteger = (int64_t(1) << 53) - 1;

// writev(fd, chunks, first = 0, count = chunks.length - first, firstOffset = 0) -> bytes sent or -1.
// At most platform::kMaxGather chunks go in one call; the caller loops on the count it gets back.
Napi::Value Writev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = static_cast<sock_t>(ArgDescriptor(info, 0));
  napi_value chunks = info[1];
  bool isArray = false;
  NAPI_THROW_IF_FAILED(env, napi_is_array(env, chunks, &isArray), Napi::Value());
  if (!isArray) ThrowTypeError(env, "chunks", "an Array of TypedArrays or DataViews");
  uint32_t chunkCount = 0;
  NAPI_THROW_IF_FAILED(env, napi_get_array_length(env, chunks, &chunkCount), Napi::Value());
  Span span = ArgSpan(info, 2, chunkCount, "first", "count", "chunks");
  int64_t firstOffset = ArgIntegerOr(info, 4, "firstOffset", 0, 0, kMaxSafeInteger);
  if (span.count == 0 && firstOffset != 0) {
    ThrowPastEnd(env, "The \"firstOffset\" argument", firstOffset, "the 0 chunks selected", 0);
  }

  // Every element is read before any memory is: reading one may run JavaScript (a getter, a
  // Proxy in the prototype chain) that shrinks or detaches a buffer. Once all are in hand, nothing
  // runs JavaScript until the system call returns, so the pointers below stay valid.
  size_t count = std::min(span.count, platform::kMaxGather);
  napi_value elements[platform::kMaxGather];
  for (size_t i = 0; i < count; i++) {
    NAPI_THROW_IF_FAILED(env, napi_get_element(env, chunks, static_cast<uint32_t>(span.start + i), &elements[i]),
                         Napi::Value());
  }
  platform::GatherBuffer buffers[platform::kMaxGather];
  size_t gathered = 0;
  size_t bytes = 0;
  for (size_t i = 0; i < count; i++) {
    ByteRange chunk = CheckView(env, elements[i], "chunks", static_cast<int64_t>(span.start + i));
    if (i == 0) {
      if (static_cast<uint64_t>(firstOffset) > chunk.length) {
        ThrowPastEnd(env, "The \"firstOffset\" argument", firstOffset,
                     "chunks[" + std::to_string(span.start) + "]", chunk.length);
      }
      chunk.data += firstOffset;
      chunk.length -= static_cast<size_t>(firstOffset);
    }
    // Past what one call can report, the rest waits for the next call (still checked above).
    size_t room = platform::kMaxGatherBytes - bytes;
    if (room == 0) continue;
    size_t length = std::min(chunk.length, room);
    platform::SetGatherBuffer(&buffers[gathered++], chunk.data, length);
    bytes += length;
  }

  for (;;) {
    int64_t sent = platform::SendGathered(fd, buffers, gathered);
    if (sent >= 0) return Napi::Number::New(env, static_cast<double>(sent));
    int err = platform::LastError();
    if (err == EINTR) continue;
    if (platform::WouldBlock(err)) return Napi::Number::New(env, -1);
    ThrowSystemError(env, err, platform::kGatherSyscall);
  }
}

#ifdef __linux__
// sendfile(outFd, inFd, offset, length, chunk = length) -> bytes sent, 0 when offset is at or past
// the end of the file, or -1 when outFd would block before a byte went. Calls sendfile(2) with at
// most `chunk` bytes at a time until `length` bytes are sent, the socket is full (EAGAIN) or the
// file ends: one crossing and one SIGPIPE check per flush, whatever the chunk. Why a chunk at all:
// one call that fills a multi-megabyte socket buffer costs the kernel more per byte than several
// of a few hundred KiB (docs/benchmarks.md, FTP). An error after some bytes went is reported by
// the next call. The offset is passed explicitly, so the file position of inFd is neither used nor
// moved; the kernel sends at most 0x7ffff000 bytes per call.
Napi::Value SendFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int outFd = static_cast<int>(ArgDescriptor(info, 0, "outFd"));
  int inFd = static_cast<int>(ArgDescriptor(info, 1, "inFd"));
  constexpr int64_t kMaxOffset = std::min<int64_t>(kMaxSafeInteger, std::numeric_limits<off_t>::max());
  int64_t offset = ArgInteger(info, 2, "offset", 0, kMaxOffset);
  int64_t length = ArgInteger(info, 3, "length", 0, kMaxSafeInteger);
  constexpr int64_t kMaxCall = 0x7ffff000;
  int64_t chunk = std::min(ArgIntegerOr(info, 4, "chunk", std::max<int64_t>(length, 1), 1, kMaxSafeInteger), kMaxCall);
  int64_t total = 0;
  SigPipeGuard sigPipe;
  while (total < length) {
    off_t at = static_cast<off_t>(offset + total);
    ssize_t sent = ::sendfile(outFd, inFd, &at, static_cast<size_t>(std::min(chunk, length - total)));
    if (sent > 0) {
      total += sent;
      continue;
    }
    if (sent == 0) break;  // The end of the file.
    int err = errno;
    if (err == EINTR) continue;  // Interrupted before anything was sent.
    if (platform::WouldBlock(err)) return Napi::Number::New(env, total > 0 ? static_cast<double>(total) : -1);
    if (err == EPIPE) sigPipe.TakeBack();
    if (total > 0) break;  // The next call reports it.
    ThrowSystemError(env, err, "sendfile");
  }
  return Napi::Number::New(env, static_cast<double>(total));
}
#endif

}  // namespace

void InitBulkSend(Napi::Env env, Napi::Object exports) {
  exports.Set("writev", Napi::Function::New(env, Writev, "writev"));
#ifdef __linux__
  exports.Set("sendfile", Napi::Function::New(env, SendFile, "sendfile"));
#endif
}

}  // namespace iomux
