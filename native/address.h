// Socket addresses between JavaScript and sockaddr: { family, address, port } objects out,
// (host, port) or a Unix path in. Numeric hosts only: name resolution is not a socket call.
#pragma once
#include <napi.h>

#include "platform.h"

namespace iomux {

struct SocketAddress {
  sockaddr_storage storage;
  platform::socklen_t length;
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

// The address family the socket was created with (SO_DOMAIN, or getsockname where it is missing).
int SocketFamily(Napi::Env env, platform::sock_t fd, const char* syscall);

// Reads (host, port) for AF_INET/AF_INET6, or (path) for AF_UNIX, from info[index...].
SocketAddress ArgAddress(const Napi::CallbackInfo& info, size_t index, int family);

// { family: 'IPv4' | 'IPv6', address, port } or { family: 'unix', address: path, port: 0 }.
Napi::Object AddressToObject(Napi::Env env, const sockaddr* address, platform::socklen_t length);

}  // namespace iomux
