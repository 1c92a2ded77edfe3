// The one platform seam: everything that differs between POSIX and Winsock lives here, so the
// rest of native/ is written once against these names.
#pragma once

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
// Winsock's fd_set is a counted array of 64 handles unless FD_SETSIZE is set before
// <winsock2.h> (Microsoft documents this); 1024 gives select() the same capacity as on Linux.
#ifndef FD_SETSIZE
#define FD_SETSIZE 1024
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <afunix.h>
#include <cerrno>
static_assert(FD_SETSIZE == 1024, "platform.h must be included before any other Winsock header");
// POSIX names the C runtime lacks take Winsock's own values, as Python's errno module does on
// Windows; they cannot collide with the runtime's small numbers.
#ifndef ESHUTDOWN
#define ESHUTDOWN WSAESHUTDOWN
#endif
#ifndef EHOSTDOWN
#define EHOSTDOWN WSAEHOSTDOWN
#endif
#ifndef EPFNOSUPPORT
#define EPFNOSUPPORT WSAEPFNOSUPPORT
#endif
#ifndef ESOCKTNOSUPPORT
#define ESOCKTNOSUPPORT WSAESOCKTNOSUPPORT
#endif
#ifndef ETOOMANYREFS
#define ETOOMANYREFS WSAETOOMANYREFS
#endif
#ifndef EDQUOT
#define EDQUOT WSAEDQUOT
#endif
#else
#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "glibc_floor.h"
#endif

#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

namespace iomux {
namespace platform {

#ifdef _WIN32
using sock_t = SOCKET;
using socklen_t = int;
using buflen_t = int;
constexpr sock_t kInvalidSocket = INVALID_SOCKET;
constexpr int kSendFlags = 0;  // Winsock never raises SIGPIPE.

// A Winsock error code (WSAGetLastError(), SO_ERROR) as the POSIX errno that means the same,
// so `code` strings read as on Linux ('ECONNREFUSED', 'EWOULDBLOCK'). Unknown codes pass through.
int ToErrno(int wsaError);
// The last failure of a Winsock call (or of a check below), already mapped by ToErrno.
int LastError();
// A readable sentence for a mapped errno value (the C runtime knows none of the socket ones).
std::string ErrorMessage(int err);
inline int CloseSocket(sock_t s) { return closesocket(s) == 0 ? 0 : -1; }
constexpr const char* kNonBlockingSyscall = "ioctlsocket";  // Named in errors as the failing call.
inline int SetNonBlocking(sock_t s, bool on) {
  u_long mode = on ? 1 : 0;
  return ioctlsocket(s, FIONBIO, &mode) == 0 ? 0 : -1;
}
// A datagram longer than the buffer: Winsock fills the buffer, drops the rest and fails with
// WSAEMSGSIZE, where POSIX returns the part that fit. True when `err` is that report.
inline bool DatagramTruncated(int err) { return err == EMSGSIZE; }
// Winsock keeps no readable non-blocking flag (callers track it, as Python's socket does).
inline int GetNonBlocking(sock_t, bool*) {
  WSASetLastError(WSAEOPNOTSUPP);
  return -1;
}
// Windows' counterpart of close-on-exec: a child process must not inherit the socket.
int SetNoInherit(sock_t s);
// The address family of a socket, bound or not (getsockname fails on an unbound Winsock socket).
int SocketFamily(sock_t s, int* family);
bool StartUp();  // WSAStartup once per process; reference-counted by Winsock itself.

// A gathered send (writev): WSASend over an array of WSABUFs.
using GatherBuffer = WSABUF;
constexpr const char* kGatherSyscall = "WSASend";
// Winsock names no limit; Linux's keeps the caller's loop and the stack array the same everywhere.
constexpr size_t kMaxGather = 1024;
// A WSABUF length is a ULONG and WSASend reports a DWORD: one call gathers at most INT_MAX bytes.
constexpr size_t kMaxGatherBytes = INT_MAX;
inline void SetGatherBuffer(GatherBuffer* buffer, uint8_t* data, size_t length) {
  buffer->buf = reinterpret_cast<char*>(data);
  buffer->len = static_cast<ULONG>(length);
}
// Bytes sent, or -1 with the error in LastError().
inline int64_t SendGathered(sock_t s, GatherBuffer* buffers, size_t count) {
  DWORD sent = 0;
  if (WSASend(s, buffers, static_cast<DWORD>(count), &sent, 0, nullptr, nullptr) != 0) return -1;
  return sent;
}
#else
using sock_t = int;
using socklen_t = ::socklen_t;
using buflen_t = size_t;
constexpr sock_t kInvalidSocket = -1;
// Sends must never raise SIGPIPE: a closed peer is an EPIPE error, not a dead process.
#ifdef MSG_NOSIGNAL
constexpr int kSendFlags = MSG_NOSIGNAL;
#else
constexpr int kSendFlags = 0;  // macOS: SO_NOSIGPIPE is set on every new socket instead.
#endif

inline int ToErrno(int err) { return err; }
inline bool DatagramTruncated(int) { return false; }
inline int LastError() { return errno; }
inline std::string ErrorMessage(int err) { return std::strerror(err); }
inline int CloseSocket(sock_t s) { return ::close(s); }
constexpr const char* kNonBlockingSyscall = "fcntl";
inline int SetNonBlocking(sock_t s, bool on) {
  int flags = fcntl(s, F_GETFL);
  if (flags < 0) return -1;
  int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  return wanted == flags ? 0 : fcntl(s, F_SETFL, wanted);
}
inline int GetNonBlocking(sock_t s, bool* on) {
  int flags = fcntl(s, F_GETFL);
  if (flags < 0) return -1;
  *on = (flags & O_NONBLOCK) != 0;
  return 0;
}
inline bool StartUp() { return true; }

// A gathered send (writev): sendmsg over an iovec array, so that kSendFlags (MSG_NOSIGNAL) apply.
using GatherBuffer = iovec;
constexpr const char* kGatherSyscall = "sendmsg";
#ifdef IOV_MAX
constexpr size_t kMaxGather = IOV_MAX;  // 1024 on Linux: more is EMSGSIZE.
#else
constexpr size_t kMaxGather = 16;  // POSIX's floor (_XOPEN_IOV_MAX).
#endif
constexpr size_t kMaxGatherBytes = SSIZE_MAX;  // Linux sends at most 0x7ffff000 per call anyway.
inline void SetGatherBuffer(GatherBuffer* buffer, uint8_t* data, size_t length) {
  buffer->iov_base = data;
  buffer->iov_len = length;
}
// Bytes sent, or -1 with the error in LastError().
inline int64_t SendGathered(sock_t s, GatherBuffer* buffers, size_t count) {
  msghdr message{};
  message.msg_iov = buffers;
  message.msg_iovlen = static_cast<decltype(message.msg_iovlen)>(count);
  return ::sendmsg(s, &message, kSendFlags);
}
#endif

// A descriptor another thread can make readable to interrupt a wait (mio's Waker): an eventfd
// on Linux, a pipe elsewhere on POSIX, a loopback socket pair on Windows.
struct Waker {
  sock_t readFd = kInvalidSocket;
  sock_t writeFd = kInvalidSocket;
};
#ifdef _WIN32
int CreateWaker(Waker* waker);  // In platform_win.cc.
void Wake(const Waker& waker);
void DrainWaker(const Waker& waker);
void CloseWaker(Waker* waker);
#else
inline int CreateWaker(Waker* waker) {
#ifdef __linux__
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return -1;
  waker->readFd = waker->writeFd = fd;
#else
  int fds[2];
  if (pipe(fds) != 0) return -1;
  for (int fd : fds) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    SetNonBlocking(fd, true);
  }
  waker->readFd = fds[0];
  waker->writeFd = fds[1];
#endif
  return 0;
}
inline void Wake(const Waker& waker) {
  uint64_t one = 1;
  // A full pipe or a saturated eventfd is already readable: losing this write loses nothing.
  ssize_t ignored = write(waker.writeFd, &one, waker.readFd == waker.writeFd ? sizeof(one) : 1);
  (void)ignored;
}
inline void DrainWaker(const Waker& waker) {
  char sink[64];
  while (read(waker.readFd, sink, sizeof(sink)) > 0) {
  }
}
inline void CloseWaker(Waker* waker) {
  if (waker->writeFd != waker->readFd && waker->writeFd != kInvalidSocket) CloseSocket(waker->writeFd);
  if (waker->readFd != kInvalidSocket) CloseSocket(waker->readFd);
  waker->readFd = waker->writeFd = kInvalidSocket;
}
#endif

// True when the last call failed only because it would have blocked.
inline bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

}  // namespace platform
}  // namespace iomux
