// The Windows half of the platform seam (declared in platform.h): Winsock start-up, its error
// codes in POSIX terms, and the few calls whose Windows form is more than one line.
#ifdef _WIN32
#include <cstring>
#include <mutex>
#include <string>

#include "platform.h"

namespace iomux {
namespace platform {
namespace {

struct ErrorPair {
  int windows;
  int posix;
};

// Where Linux has two names for one value, the mapping picks the name Linux reports (EAGAIN, not
// EWOULDBLOCK; ENOTSUP, not EOPNOTSUPP), so codes compare equal across platforms.
constexpr ErrorPair kErrors[] = {
    {WSAEINTR, EINTR},
    {WSAEBADF, EBADF},
    {WSAEACCES, EACCES},
    {WSAEFAULT, EFAULT},
    {WSAEINVAL, EINVAL},
    {WSAEMFILE, EMFILE},
    {WSAEWOULDBLOCK, EAGAIN},
    {WSAEINPROGRESS, EINPROGRESS},
    {WSAEALREADY, EALREADY},
    {WSAENOTSOCK, ENOTSOCK},
    {WSAEDESTADDRREQ, EDESTADDRREQ},
    {WSAEMSGSIZE, EMSGSIZE},
    {WSAEPROTOTYPE, EPROTOTYPE},
    {WSAENOPROTOOPT, ENOPROTOOPT},
    {WSAEPROTONOSUPPORT, EPROTONOSUPPORT},
    {WSAESOCKTNOSUPPORT, ESOCKTNOSUPPORT},
    {WSAEOPNOTSUPP, ENOTSUP},
    {WSAEPFNOSUPPORT, EPFNOSUPPORT},
    {WSAEAFNOSUPPORT, EAFNOSUPPORT},
    {WSAEADDRINUSE, EADDRINUSE},
    {WSAEADDRNOTAVAIL, EADDRNOTAVAIL},
    {WSAENETDOWN, ENETDOWN},
    {WSAENETUNREACH, ENETUNREACH},
    {WSAENETRESET, ENETRESET},
    {WSAECONNABORTED, ECONNABORTED},
    {WSAECONNRESET, ECONNRESET},
    {WSAENOBUFS, ENOBUFS},
    {WSAEISCONN, EISCONN},
    {WSAENOTCONN, ENOTCONN},
    {WSAESHUTDOWN, EPIPE},  // Sending after shutdown(SHUT_WR): Linux says EPIPE.
    {WSAETOOMANYREFS, ETOOMANYREFS},
    {WSAETIMEDOUT, ETIMEDOUT},
    {WSAECONNREFUSED, ECONNREFUSED},
    {WSAELOOP, ELOOP},
    {WSAENAMETOOLONG, ENAMETOOLONG},
    {WSAEHOSTDOWN, EHOSTDOWN},
    {WSAEHOSTUNREACH, EHOSTUNREACH},
    {WSAENOTEMPTY, ENOTEMPTY},
    {WSAEDQUOT, EDQUOT},
    {WSAEDISCON, EPIPE},
    {WSA_NOT_ENOUGH_MEMORY, ENOMEM},
    {WSA_INVALID_HANDLE, EBADF},  // Also ERROR_INVALID_HANDLE, from SetHandleInformation.
    {WSA_INVALID_PARAMETER, EINVAL},
};

}  // namespace

int ToErrno(int wsaError) {
  for (const ErrorPair& pair : kErrors) {
    if (pair.windows == wsaError) return pair.posix;
  }
  return wsaError;
}

int LastError() { return ToErrno(WSAGetLastError()); }

std::string ErrorMessage(int err) {
  // The C runtime's strerror() knows no socket errors: ask Windows about its own code.
  int windowsCode = 0;
  for (const ErrorPair& pair : kErrors) {
    if (pair.posix == err) {
      windowsCode = pair.windows;
      break;
    }
  }
  if (windowsCode != 0) {
    char text[512];
    DWORD length = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                                  static_cast<DWORD>(windowsCode), 0, text, sizeof(text), nullptr);
    while (length > 0 && (text[length - 1] == '\n' || text[length - 1] == '\r' || text[length - 1] == ' ' ||
                          text[length - 1] == '.')) {
      length--;
    }
    if (length > 0) return std::string(text, length);
    // Wine has no text for some codes; the number still tells a reader where to look.
    return "Winsock error " + std::to_string(windowsCode);
  }
  return std::strerror(err);
}

int SetNoInherit(sock_t s) {
  if (SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0)) return 0;
  WSASetLastError(static_cast<int>(GetLastError()));
  return -1;
}

int SocketFamily(sock_t s, int* family) {
  WSAPROTOCOL_INFOW protocol;
  int length = sizeof(protocol);
  if (getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, reinterpret_cast<char*>(&protocol), &length) != 0) return -1;
  *family = protocol.iAddressFamily;
  return 0;
}

bool StartUp() {
  // Once per process; every environment (main thread, workers) shares it. Never cleaned up:
  // the process's exit releases Winsock, and a worker's exit must not pull it from the others.
  static std::once_flag once;
  static bool started = false;
  std::call_once(once, []() {
    WSADATA data;
    started = WSAStartup(MAKEWORD(2, 2), &data) == 0;
  });
  return started;
}

namespace {

// Closes `s` without losing the error that made us give up.
void CloseKeepingError(sock_t s) {
  int saved = WSAGetLastError();
  closesocket(s);
  WSASetLastError(saved);
}

// A fresh loopback TCP socket, non-inheritable, or kInvalidSocket.
sock_t LoopbackSocket() {
  sock_t s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  if (s == kInvalidSocket) return s;
  if (SetNoInherit(s) != 0) {
    CloseKeepingError(s);
    return kInvalidSocket;
  }
  return s;
}

}  // namespace

// Windows has no eventfd or pipe that WSAPoll and select() accept: the waker is a connected
// loopback TCP pair, whose read end becomes readable when a byte is sent on the other.
int CreateWaker(Waker* waker) {
  sock_t listener = LoopbackSocket();
  if (listener == kInvalidSocket) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  int length = sizeof(address);
  sock_t writer = kInvalidSocket;
  sock_t reader = kInvalidSocket;
  int one = 1;
  bool ok = bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
            getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0 &&
            listen(listener, 1) == 0 && (writer = LoopbackSocket()) != kInvalidSocket &&
            connect(writer, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
            (reader = accept(listener, nullptr, nullptr)) != kInvalidSocket && SetNoInherit(reader) == 0 &&
            SetNonBlocking(reader, true) == 0 && SetNonBlocking(writer, true) == 0 &&
            setsockopt(writer, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof(one)) == 0;
  CloseKeepingError(listener);
  if (!ok) {
    if (writer != kInvalidSocket) CloseKeepingError(writer);
    if (reader != kInvalidSocket) CloseKeepingError(reader);
    return -1;
  }
  waker->readFd = reader;
  waker->writeFd = writer;
  return 0;
}

void Wake(const Waker& waker) {
  // A full send buffer means the reader already has bytes waiting: losing this one loses nothing.
  char one = 1;
  send(waker.writeFd, &one, 1, 0);
}

void DrainWaker(const Waker& waker) {
  char sink[64];
  while (recv(waker.readFd, sink, sizeof(sink), 0) > 0) {
  }
}

void CloseWaker(Waker* waker) {
  if (waker->writeFd != kInvalidSocket) closesocket(waker->writeFd);
  if (waker->readFd != kInvalidSocket) closesocket(waker->readFd);
  waker->readFd = waker->writeFd = kInvalidSocket;
}

}  // namespace platform
}  // namespace iomux

#endif  // _WIN32
