// The constants object: every flag, level and option the bindings accept, as this platform
// defines them. A name missing here is a name this platform does not have.
#ifdef __linux__
#include <sys/epoll.h>
#endif

#include "bindings.h"
#include "errors.h"
#include "platform.h"

namespace iomux {

#define IOMUX_SET(target, name) target.Set(#name, Napi::Number::New(env, static_cast<double>(name)));

void InitConstants(Napi::Env env, Napi::Object exports) {
  Napi::Object c = Napi::Object::New(env);

  // Address families and socket types.
  IOMUX_SET(c, AF_INET)
  IOMUX_SET(c, AF_INET6)
  IOMUX_SET(c, AF_UNIX)
  IOMUX_SET(c, AF_UNSPEC)
  IOMUX_SET(c, SOCK_STREAM)
  IOMUX_SET(c, SOCK_DGRAM)
#ifdef SOCK_SEQPACKET
  IOMUX_SET(c, SOCK_SEQPACKET)
#endif
#ifdef SOCK_NONBLOCK
  IOMUX_SET(c, SOCK_NONBLOCK)
#endif
#ifdef SOCK_CLOEXEC
  IOMUX_SET(c, SOCK_CLOEXEC)
#endif

  // Option levels and options.
  IOMUX_SET(c, SOL_SOCKET)
  IOMUX_SET(c, IPPROTO_IP)
  IOMUX_SET(c, IPPROTO_IPV6)
  IOMUX_SET(c, IPPROTO_TCP)
  IOMUX_SET(c, IPPROTO_UDP)
  IOMUX_SET(c, SO_REUSEADDR)
#ifdef SO_REUSEPORT
  IOMUX_SET(c, SO_REUSEPORT)
#endif
  IOMUX_SET(c, SO_KEEPALIVE)
  IOMUX_SET(c, SO_BROADCAST)
  IOMUX_SET(c, SO_LINGER)
  IOMUX_SET(c, SO_RCVBUF)
  IOMUX_SET(c, SO_SNDBUF)
  IOMUX_SET(c, SO_RCVLOWAT)
  IOMUX_SET(c, SO_SNDLOWAT)
  IOMUX_SET(c, SO_RCVTIMEO)
  IOMUX_SET(c, SO_SNDTIMEO)
  IOMUX_SET(c, SO_ERROR)
  IOMUX_SET(c, SO_TYPE)
  IOMUX_SET(c, SO_OOBINLINE)
#ifdef SO_DOMAIN
  IOMUX_SET(c, SO_DOMAIN)
#endif
#ifdef SO_PROTOCOL
  IOMUX_SET(c, SO_PROTOCOL)
#endif
#ifdef SO_ACCEPTCONN
  IOMUX_SET(c, SO_ACCEPTCONN)
#endif
#ifdef SO_BINDTODEVICE
  IOMUX_SET(c, SO_BINDTODEVICE)
#endif
#ifdef SO_BUSY_POLL
  IOMUX_SET(c, SO_BUSY_POLL)
#endif
  IOMUX_SET(c, TCP_NODELAY)
#ifdef TCP_KEEPIDLE
  IOMUX_SET(c, TCP_KEEPIDLE)
#endif
#ifdef TCP_KEEPINTVL
  IOMUX_SET(c, TCP_KEEPINTVL)
#endif
#ifdef TCP_KEEPCNT
  IOMUX_SET(c, TCP_KEEPCNT)
#endif
#ifdef TCP_QUICKACK
  IOMUX_SET(c, TCP_QUICKACK)
#endif
#ifdef TCP_CORK
  IOMUX_SET(c, TCP_CORK)
#endif
#ifdef TCP_DEFER_ACCEPT
  IOMUX_SET(c, TCP_DEFER_ACCEPT)
#endif
#ifdef TCP_FASTOPEN
  IOMUX_SET(c, TCP_FASTOPEN)
#endif
  IOMUX_SET(c, IPV6_V6ONLY)
  IOMUX_SET(c, IP_TTL)

  // shutdown() and message flags.
#ifdef _WIN32
  c.Set("SHUT_RD", SD_RECEIVE);
  c.Set("SHUT_WR", SD_SEND);
  c.Set("SHUT_RDWR", SD_BOTH);
#else
  IOMUX_SET(c, SHUT_RD)
  IOMUX_SET(c, SHUT_WR)
  IOMUX_SET(c, SHUT_RDWR)
#endif
  IOMUX_SET(c, MSG_PEEK)
  IOMUX_SET(c, MSG_OOB)
  IOMUX_SET(c, MSG_WAITALL)
#ifdef MSG_DONTWAIT
  IOMUX_SET(c, MSG_DONTWAIT)
#endif
#ifdef MSG_NOSIGNAL
  IOMUX_SET(c, MSG_NOSIGNAL)
#endif
#ifdef MSG_TRUNC
  IOMUX_SET(c, MSG_TRUNC)
#endif
#ifdef MSG_MORE
  IOMUX_SET(c, MSG_MORE)
#endif

  // poll() events and the layout of one pollfd entry, for the caller-owned array.
  IOMUX_SET(c, POLLIN)
  IOMUX_SET(c, POLLOUT)
  IOMUX_SET(c, POLLPRI)
  IOMUX_SET(c, POLLERR)
  IOMUX_SET(c, POLLHUP)
  IOMUX_SET(c, POLLNVAL)
  IOMUX_SET(c, POLLRDNORM)
  IOMUX_SET(c, POLLWRNORM)
#ifdef POLLRDBAND
  IOMUX_SET(c, POLLRDBAND)
#endif
#ifdef POLLWRBAND
  IOMUX_SET(c, POLLWRBAND)
#endif
#ifdef POLLRDHUP
  IOMUX_SET(c, POLLRDHUP)
#endif
#ifdef _WIN32
  c.Set("POLLFD_SIZE", static_cast<double>(sizeof(WSAPOLLFD)));
  c.Set("POLLFD_EVENTS_OFFSET", static_cast<double>(offsetof(WSAPOLLFD, events)));
#else
  c.Set("POLLFD_SIZE", static_cast<double>(sizeof(pollfd)));
  c.Set("POLLFD_EVENTS_OFFSET", static_cast<double>(offsetof(pollfd, events)));
#endif
  c.Set("FD_SETSIZE", static_cast<double>(FD_SETSIZE));
  // The most chunks one writev sends (Linux: IOV_MAX; Windows: the same number, by choice).
  c.Set("IOV_MAX", static_cast<double>(platform::kMaxGather));

#ifdef __linux__
  // epoll: every flag this kernel's headers define.
  IOMUX_SET(c, EPOLLIN)
  IOMUX_SET(c, EPOLLOUT)
  IOMUX_SET(c, EPOLLPRI)
  IOMUX_SET(c, EPOLLERR)
  IOMUX_SET(c, EPOLLHUP)
  IOMUX_SET(c, EPOLLRDHUP)
  IOMUX_SET(c, EPOLLRDNORM)
  IOMUX_SET(c, EPOLLRDBAND)
  IOMUX_SET(c, EPOLLWRNORM)
  IOMUX_SET(c, EPOLLWRBAND)
  IOMUX_SET(c, EPOLLMSG)
  IOMUX_SET(c, EPOLLET)
  IOMUX_SET(c, EPOLLONESHOT)
  IOMUX_SET(c, EPOLLWAKEUP)
  IOMUX_SET(c, EPOLLEXCLUSIVE)
  IOMUX_SET(c, EPOLL_CTL_ADD)
  IOMUX_SET(c, EPOLL_CTL_MOD)
  IOMUX_SET(c, EPOLL_CTL_DEL)
  IOMUX_SET(c, EPOLL_CLOEXEC)
#endif

  Napi::Object errnos = Napi::Object::New(env);
  AddErrnoConstants(env, errnos);
  c.Set("errno", errnos);
  exports.Set("constants", c);

#if defined(_WIN32)
  exports.Set("platform", "win32");
#elif defined(__linux__)
  exports.Set("platform", "linux");
#else
  exports.Set("platform", "posix");
#endif
}

}  // namespace iomux
