// The socket system calls, one binding each, on plain descriptor numbers.
// Hot paths (recv, send, accept) return -1 for "would block" instead of throwing.
#include <cstring>
#include <string>

#include "address.h"
#include "bindings.h"
#include "errors.h"
#include "platform.h"

namespace iomux {
namespace {

using platform::sock_t;

sock_t Fd(const Napi::CallbackInfo& info, size_t index = 0) {
  return static_cast<sock_t>(ArgDescriptor(info, index));
}

int Int(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return static_cast<int>(ArgInteger(info, index, name, INT32_MIN, INT32_MAX));
}

// New descriptors are close-on-exec (a child process must not inherit a listener) and, on
// platforms without MSG_NOSIGNAL, never raise SIGPIPE.
void PrepareNewSocket(Napi::Env env, sock_t fd) {
#if !defined(_WIN32) && !defined(SOCK_CLOEXEC)
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    int err = errno;
    platform::CloseSocket(fd);
    ThrowSystemError(env, err, "fcntl");
  }
#endif
#if defined(SO_NOSIGPIPE)
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
#ifdef _WIN32
  if (platform::SetNoInherit(fd) != 0) {
    int err = platform::LastError();
    platform::CloseSocket(fd);
    ThrowSystemError(env, err, "SetHandleInformation");
  }
#endif
  (void)env;
  (void)fd;
}

int WithCloexec(int type) {
#ifdef SOCK_CLOEXEC
  return type | SOCK_CLOEXEC;
#else
  return type;
#endif
}

// `type` may carry SOCK_NONBLOCK; close-on-exec is always added.
Napi::Value Socket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int domain = Int(info, 0, "domain");
  int type = Int(info, 1, "type");
  int protocol = static_cast<int>(ArgIntegerOr(info, 2, "protocol", 0, 0, INT32_MAX));
  sock_t fd = ::socket(domain, WithCloexec(type), protocol);
  if (fd == platform::kInvalidSocket) ThrowSystemError(env, platform::LastError(), "socket");
  PrepareNewSocket(env, fd);
  return Napi::Number::New(env, static_cast<double>(fd));
}

#ifndef _WIN32
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int domain = Int(info, 0, "domain");
  int type = Int(info, 1, "type");
  int protocol = static_cast<int>(ArgIntegerOr(info, 2, "protocol", 0, 0, INT32_MAX));
  int fds[2];
  if (::socketpair(domain, WithCloexec(type), protocol, fds) != 0) {
    ThrowSystemError(env, errno, "socketpair");
  }
  PrepareNewSocket(env, fds[0]);
  PrepareNewSocket(env, fds[1]);
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, fds[0]);
  pair.Set(1u, fds[1]);
  return pair;
}
#endif

Napi::Value Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  SocketAddress address = ArgAddress(info, 1, SocketFamily(env, fd, "bind"));
  if (::bind(fd, address.get(), address.length) != 0) {
    ThrowSystemError(env, platform::LastError(), "bind");
  }
  return env.Undefined();
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  int backlog = static_cast<int>(ArgIntegerOr(info, 1, "backlog", 511, 0, INT32_MAX));
  if (::listen(fd, backlog) != 0) ThrowSystemError(env, platform::LastError(), "listen");
  return env.Undefined();
}

// Returns the new descriptor, or kInvalidSocket when no connection is waiting.
sock_t AcceptOne(Napi::Env env, sock_t fd, bool nonBlocking, sockaddr* peer,
                 platform::socklen_t* peerLength) {
  for (;;) {
#if defined(__linux__)
    int flags = SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0);
    sock_t client = ::accept4(fd, peer, peerLength, flags);
#else
    sock_t client = ::accept(fd, peer, peerLength);
#endif
    if (client != platform::kInvalidSocket) {
#if !defined(__linux__)
      PrepareNewSocket(env, client);
      if (platform::SetNonBlocking(client, nonBlocking) != 0) {
        int err = platform::LastError();
        platform::CloseSocket(client);
        ThrowSystemError(env, err, "accept");
      }
#endif
      return client;
    }
    int err = platform::LastError();
    if (err == EINTR) continue;
    // A connection that died in the queue is not the listener's failure: try the next one.
    if (err == ECONNABORTED) continue;
    if (platform::WouldBlock(err)) return platform::kInvalidSocket;
    ThrowSystemError(env, err, "accept");
  }
}

Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  bool nonBlocking = info.Length() < 2 || info[1].IsUndefined() || ArgBoolean(info, 1, "nonBlocking");
  sock_t client = AcceptOne(env, fd, nonBlocking, nullptr, nullptr);
  return Napi::Number::New(env, client == platform::kInvalidSocket ? -1.0 : static_cast<double>(client));
}

Napi::Value AcceptWithAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  bool nonBlocking = info.Length() < 2 || info[1].IsUndefined() || ArgBoolean(info, 1, "nonBlocking");
  SocketAddress peer;
  std::memset(&peer.storage, 0, sizeof(peer.storage));
  peer.length = sizeof(peer.storage);
  sock_t client = AcceptOne(env, fd, nonBlocking, peer.get(), &peer.length);
  if (client == platform::kInvalidSocket) return env.Null();
  Napi::Object result = Napi::Object::New(env);
  result.Set("fd", Napi::Number::New(env, static_cast<double>(client)));
  result.Set("peer", AddressToObject(env, peer.get(), peer.length));
  return result;
}

// Waits for a connect that a signal interrupted, then reports its outcome (PEP 475's way:
// a connect must not be restarted, its result is read from SO_ERROR).
int FinishInterruptedConnect(sock_t fd) {
#ifdef _WIN32
  (void)fd;
  return EINTR;
#else
  pollfd entry{fd, POLLOUT, 0};
  int ready;
  do {
    ready = ::poll(&entry, 1, -1);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return errno;
  int err = 0;
  socklen_t length = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length) != 0) return errno;
  return err;
#endif
}

// true: connected now; false: a non-blocking connect is in progress (wait for writability,
// then read SO_ERROR). Every other failure throws.
Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  SocketAddress address = ArgAddress(info, 1, SocketFamily(env, fd, "connect"));
  if (::connect(fd, address.get(), address.length) == 0) return Napi::Boolean::New(env, true);
  int err = platform::LastError();
  // Winsock reports a connect in progress as WSAEWOULDBLOCK (mapped to EAGAIN).
  if (err == EINPROGRESS || (platform::WouldBlock(err) && address.storage.ss_family != AF_UNIX)) {
    return Napi::Boolean::New(env, false);
  }
  if (err == EINTR) {
    err = FinishInterruptedConnect(fd);
    if (err == 0) return Napi::Boolean::New(env, true);
  }
  ThrowSystemError(env, err, "connect");
}

int Flags(const Napi::CallbackInfo& info, size_t index) {
  return static_cast<int>(ArgIntegerOr(info, index, "flags", 0, 0, INT32_MAX));
}

Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  ByteRange range = ArgByteRange(info, 1, "buffer");
  int flags = Flags(info, 4);
  for (;;) {
    auto n = ::recv(fd, reinterpret_cast<char*>(range.data), static_cast<platform::buflen_t>(range.length), flags);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    int err = platform::LastError();
    if (err == EINTR) continue;
    if (platform::WouldBlock(err)) return Napi::Number::New(env, -1);
    if (platform::DatagramTruncated(err)) return Napi::Number::New(env, static_cast<double>(range.length));
    ThrowSystemError(env, err, "recv");
  }
}

Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  ByteRange range = ArgByteRange(info, 1, "buffer");
  int flags = Flags(info, 4) | platform::kSendFlags;
  for (;;) {
    auto n = ::send(fd, reinterpret_cast<const char*>(range.data), static_cast<platform::buflen_t>(range.length), flags);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    int err = platform::LastError();
    if (err == EINTR) continue;
    if (platform::WouldBlock(err)) return Napi::Number::New(env, -1);
    ThrowSystemError(env, err, "send");
  }
}

// null when nothing is waiting; otherwise { bytes, peer }.
Napi::Value RecvFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  ByteRange range = ArgByteRange(info, 1, "buffer");
  int flags = Flags(info, 4);
  SocketAddress peer;
  for (;;) {
    std::memset(&peer.storage, 0, sizeof(peer.storage));
    peer.length = sizeof(peer.storage);
    auto n = ::recvfrom(fd, reinterpret_cast<char*>(range.data), static_cast<platform::buflen_t>(range.length), flags,
                        peer.get(), &peer.length);
    if (n < 0 && platform::DatagramTruncated(platform::LastError())) n = static_cast<decltype(n)>(range.length);
    if (n >= 0) {
      Napi::Object result = Napi::Object::New(env);
      result.Set("bytes", Napi::Number::New(env, static_cast<double>(n)));
      // A connected stream socket reports no address: say so instead of inventing one.
      result.Set("peer", peer.length > 0 ? Napi::Value(AddressToObject(env, peer.get(), peer.length))
                                         : env.Null());
      return result;
    }
    int err = platform::LastError();
    if (err == EINTR) continue;
    if (platform::WouldBlock(err)) return env.Null();
    ThrowSystemError(env, err, "recvfrom");
  }
}

// sendto(fd, buffer, offset, length, flags, host, port) or (…, flags, path).
Napi::Value SendTo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  ByteRange range = ArgByteRange(info, 1, "buffer");
  int flags = Flags(info, 4) | platform::kSendFlags;
  SocketAddress address = ArgAddress(info, 5, SocketFamily(env, fd, "sendto"));
  for (;;) {
    auto n = ::sendto(fd, reinterpret_cast<const char*>(range.data), static_cast<platform::buflen_t>(range.length), flags,
                      address.get(), address.length);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    int err = platform::LastError();
    if (err == EINTR) continue;
    if (platform::WouldBlock(err)) return Napi::Number::New(env, -1);
    ThrowSystemError(env, err, "sendto");
  }
}

Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  int how = static_cast<int>(ArgInteger(info, 1, "how", 0, 2));
  if (::shutdown(fd, how) != 0) ThrowSystemError(env, platform::LastError(), "shutdown");
  return env.Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  // Never retried on EINTR: Linux has already released the descriptor, and a retry could close
  // a number another thread just received.
  if (platform::CloseSocket(fd) != 0) {
    int err = platform::LastError();
    if (err != EINTR) ThrowSystemError(env, err, "close");
  }
  return env.Undefined();
}

Napi::Value SetNonBlocking(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  bool on = ArgBoolean(info, 1, "nonBlocking");
  if (platform::SetNonBlocking(fd, on) != 0) {
    ThrowSystemError(env, platform::LastError(), platform::kNonBlockingSyscall);
  }
  return env.Undefined();
}

Napi::Value GetNonBlocking(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  bool on = false;
  if (platform::GetNonBlocking(fd, &on) != 0) ThrowSystemError(env, platform::LastError(), platform::kNonBlockingSyscall);
  return Napi::Boolean::New(env, on);
}

Napi::Value SockName(const Napi::CallbackInfo& info, bool peer) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  SocketAddress address;
  std::memset(&address.storage, 0, sizeof(address.storage));
  address.length = sizeof(address.storage);
  int rc = peer ? ::getpeername(fd, address.get(), &address.length)
                : ::getsockname(fd, address.get(), &address.length);
  if (rc != 0) ThrowSystemError(env, platform::LastError(), peer ? "getpeername" : "getsockname");
  return AddressToObject(env, address.get(), address.length);
}

Napi::Value GetSockName(const Napi::CallbackInfo& info) { return SockName(info, false); }
Napi::Value GetPeerName(const Napi::CallbackInfo& info) { return SockName(info, true); }

// The options whose value is not a plain int have shapes of their own.
enum class OptionShape { Int, Linger, TimeoutMs, DeviceName };

OptionShape ShapeOf(int level, int name) {
  if (level != SOL_SOCKET) return OptionShape::Int;
  if (name == SO_LINGER) return OptionShape::Linger;
  if (name == SO_RCVTIMEO || name == SO_SNDTIMEO) return OptionShape::TimeoutMs;
#ifdef SO_BINDTODEVICE
  if (name == SO_BINDTODEVICE) return OptionShape::DeviceName;
#endif
  return OptionShape::Int;
}

Napi::Value SetSockOpt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  int level = Int(info, 1, "level");
  int name = Int(info, 2, "option");
  Napi::Value value = info[3];
  int rc = 0;
  switch (ShapeOf(level, name)) {
    case OptionShape::Int: {
      int number;
      if (value.IsBoolean()) {
        number = value.As<Napi::Boolean>().Value() ? 1 : 0;
      } else {
        if (!value.IsNumber()) throw Napi::TypeError::New(env, "The \"value\" argument must be an integer or a boolean");
        number = Int(info, 3, "value");
      }
      rc = setsockopt(fd, level, name, reinterpret_cast<const char*>(&number), sizeof(number));
      break;
    }
    case OptionShape::Linger: {
      if (!value.IsObject()) {
        throw Napi::TypeError::New(env, "SO_LINGER takes { onoff: boolean, linger: seconds }");
      }
      Napi::Object object = value.As<Napi::Object>();
      Napi::Value onoff = object.Get("onoff");
      Napi::Value seconds = object.Get("linger");
      if (!(onoff.IsBoolean() || onoff.IsNumber()) || !seconds.IsNumber()) {
        throw Napi::TypeError::New(env, "SO_LINGER takes { onoff: boolean, linger: seconds }");
      }
      // Whole seconds, by the rule of every integer argument (a fraction is a TypeError).
      int64_t secs = CheckInteger(env, seconds, "linger", 0, 65535);
      linger l;
      l.l_onoff = onoff.ToBoolean().Value() ? 1 : 0;
      l.l_linger = static_cast<decltype(l.l_linger)>(secs);
      rc = setsockopt(fd, level, name, reinterpret_cast<const char*>(&l), sizeof(l));
      break;
    }
    case OptionShape::TimeoutMs: {
      int64_t ms = ArgInteger(info, 3, "value", 0, INT32_MAX);
#ifdef _WIN32
      DWORD timeout = static_cast<DWORD>(ms);
#else
      timeval timeout;
      timeout.tv_sec = static_cast<time_t>(ms / 1000);
      timeout.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
#endif
      rc = setsockopt(fd, level, name, reinterpret_cast<const char*>(&timeout), sizeof(timeout));
      break;
    }
    case OptionShape::DeviceName: {
      std::string device = ArgString(info, 3, "value");
      rc = setsockopt(fd, level, name, device.c_str(), static_cast<platform::socklen_t>(device.size()));
      break;
    }
  }
  if (rc != 0) ThrowSystemError(env, platform::LastError(), "setsockopt");
  return env.Undefined();
}

Napi::Value GetSockOpt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sock_t fd = Fd(info);
  int level = Int(info, 1, "level");
  int name = Int(info, 2, "option");
  switch (ShapeOf(level, name)) {
    case OptionShape::Int: {
      int number = 0;
      platform::socklen_t length = sizeof(number);
      if (getsockopt(fd, level, name, reinterpret_cast<char*>(&number), &length) != 0) break;
      // A pending error is an errno value, so that Winsock's codes read as POSIX ones.
      if (level == SOL_SOCKET && name == SO_ERROR) number = platform::ToErrno(number);
      return Napi::Number::New(env, number);
    }
    case OptionShape::Linger: {
      linger l{};
      platform::socklen_t length = sizeof(l);
      if (getsockopt(fd, level, name, reinterpret_cast<char*>(&l), &length) != 0) break;
      Napi::Object object = Napi::Object::New(env);
      object.Set("onoff", Napi::Boolean::New(env, l.l_onoff != 0));
      object.Set("linger", Napi::Number::New(env, l.l_linger));
      return object;
    }
    case OptionShape::TimeoutMs: {
#ifdef _WIN32
      DWORD timeout = 0;
      platform::socklen_t length = sizeof(timeout);
      if (getsockopt(fd, level, name, reinterpret_cast<char*>(&timeout), &length) != 0) break;
      return Napi::Number::New(env, static_cast<double>(timeout));
#else
      timeval timeout{};
      socklen_t length = sizeof(timeout);
      if (getsockopt(fd, level, name, &timeout, &length) != 0) break;
      return Napi::Number::New(env, static_cast<double>(timeout.tv_sec) * 1000 + timeout.tv_usec / 1000);
#endif
    }
    case OptionShape::DeviceName: {
      char device[64] = {0};
      platform::socklen_t length = sizeof(device);
      if (getsockopt(fd, level, name, device, &length) != 0) break;
      return Napi::String::New(env, device, strnlen(device, length));
    }
  }
  ThrowSystemError(env, platform::LastError(), "getsockopt");
}

}  // namespace

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("socket", Napi::Function::New(env, Socket, "socket"));
#ifndef _WIN32
  exports.Set("socketpair", Napi::Function::New(env, SocketPair, "socketpair"));
#endif
  exports.Set("bind", Napi::Function::New(env, Bind, "bind"));
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("accept", Napi::Function::New(env, Accept, "accept"));
  exports.Set("acceptWithAddress", Napi::Function::New(env, AcceptWithAddress, "acceptWithAddress"));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect"));
  exports.Set("recv", Napi::Function::New(env, Recv, "recv"));
  exports.Set("send", Napi::Function::New(env, Send, "send"));
  exports.Set("recvfrom", Napi::Function::New(env, RecvFrom, "recvfrom"));
  exports.Set("sendto", Napi::Function::New(env, SendTo, "sendto"));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown, "shutdown"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking, "setNonBlocking"));
  exports.Set("getNonBlocking", Napi::Function::New(env, GetNonBlocking, "getNonBlocking"));
  exports.Set("getsockname", Napi::Function::New(env, GetSockName, "getsockname"));
  exports.Set("getpeername", Napi::Function::New(env, GetPeerName, "getpeername"));
  exports.Set("setsockopt", Napi::Function::New(env, SetSockOpt, "setsockopt"));
  exports.Set("getsockopt", Napi::Function::New(env, GetSockOpt, "getsockopt"));
}

}  // namespace iomux
