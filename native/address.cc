#include "address.h"

#include <cstring>
#include <string>

#include "errors.h"

namespace iomux {

int SocketFamily(Napi::Env env, platform::sock_t fd, const char* syscall) {
#if defined(SO_DOMAIN)
  int family = 0;
  platform::socklen_t length = sizeof(family);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, reinterpret_cast<char*>(&family), &length) == 0) {
    return family;
  }
#elif defined(_WIN32)
  int family = 0;
  if (platform::SocketFamily(fd, &family) == 0) return family;
#else
  sockaddr_storage storage;
  platform::socklen_t length = sizeof(storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) == 0) {
    return storage.ss_family;
  }
#endif
  ThrowSystemError(env, platform::LastError(), syscall);
}

SocketAddress ArgAddress(const Napi::CallbackInfo& info, size_t index, int family) {
  Napi::Env env = info.Env();
  SocketAddress result;
  std::memset(&result.storage, 0, sizeof(result.storage));
  if (family == AF_UNIX) {
    std::string path = ArgString(info, index, "path");
    sockaddr_un* un = reinterpret_cast<sockaddr_un*>(&result.storage);
    // A leading NUL names a Linux abstract socket; its length is exact, not NUL-terminated.
    bool abstract = !path.empty() && path[0] == '\0';
    size_t limit = sizeof(un->sun_path) - (abstract ? 0 : 1);
    if (path.empty() || path.size() > limit) {
      throw Napi::RangeError::New(env, "A Unix socket path must be 1 to " + std::to_string(limit) +
                                           " bytes long; got " + std::to_string(path.size()));
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    result.length = static_cast<platform::socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                                     (abstract ? 0 : 1));
    return result;
  }
  if (family != AF_INET && family != AF_INET6) {
    throw Napi::RangeError::New(env, "Unsupported address family " + std::to_string(family));
  }
  std::string host = ArgString(info, index, "host");
  int port = static_cast<int>(ArgInteger(info, index + 1, "port", 0, 65535));
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_family = family;
  hints.ai_flags = AI_NUMERICHOST;  // Never a DNS lookup on this path: it would block.
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
    throw Napi::TypeError::New(env, "Invalid " + std::string(family == AF_INET ? "IPv4" : "IPv6") +
                                        " address: \"" + host + "\"");
  }
  std::memcpy(&result.storage, found->ai_addr, found->ai_addrlen);
  result.length = static_cast<platform::socklen_t>(found->ai_addrlen);
  freeaddrinfo(found);
  if (family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&result.storage)->sin_port = htons(static_cast<uint16_t>(port));
  } else {
    reinterpret_cast<sockaddr_in6*>(&result.storage)->sin6_port = htons(static_cast<uint16_t>(port));
  }
  return result;
}

Napi::Object AddressToObject(Napi::Env env, const sockaddr* address, platform::socklen_t length) {
  Napi::Object out = Napi::Object::New(env);
  char text[INET6_ADDRSTRLEN + 16] = {0};
  switch (address->sa_family) {
    case AF_INET: {
      auto in = reinterpret_cast<const sockaddr_in*>(address);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
      out.Set("family", "IPv4");
      out.Set("address", text);
      out.Set("port", ntohs(in->sin_port));
      break;
    }
    case AF_INET6: {
      auto in6 = reinterpret_cast<const sockaddr_in6*>(address);
      getnameinfo(address, length, text, sizeof(text), nullptr, 0, NI_NUMERICHOST);
      out.Set("family", "IPv6");
      out.Set("address", text);
      out.Set("port", ntohs(in6->sin6_port));
      break;
    }
    case AF_UNIX: {
      auto un = reinterpret_cast<const sockaddr_un*>(address);
      size_t offset = offsetof(sockaddr_un, sun_path);
      size_t size = static_cast<size_t>(length) > offset ? static_cast<size_t>(length) - offset : 0;
      // Pathname sockets end in NUL; an abstract name starts with one and uses its exact length.
      if (size > 0 && un->sun_path[0] != '\0') size = strnlen(un->sun_path, size);
      out.Set("family", "unix");
      out.Set("address", Napi::String::New(env, un->sun_path, size));
      out.Set("port", 0);
      break;
    }
    default:
      out.Set("family", Napi::Number::New(env, address->sa_family));
      out.Set("address", "");
      out.Set("port", 0);
  }
  return out;
}

}  // namespace iomux
