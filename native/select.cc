// select(2). An fd_set holds descriptors below FD_SETSIZE only; FD_SET with a larger one writes
// past the set (the classic memory corruption), so every descriptor is checked first.
#include <string>
#include <vector>

#include "bindings.h"
#include "errors.h"
#include "platform.h"
#include "wait_retry.h"
#include "waits.h"

namespace iomux {
namespace {

using platform::sock_t;

void CheckSelectable(Napi::Env env, int64_t fd) {
#ifndef _WIN32
  // On Windows an fd_set is a counted array of handles: the limit is on the count, not the value.
  if (fd >= FD_SETSIZE) {
    throw Napi::RangeError::New(env, "select() cannot watch fd " + std::to_string(fd) +
                                         ": descriptors must be below FD_SETSIZE (" +
                                         std::to_string(FD_SETSIZE) + "); use poll or epoll");
  }
#else
  (void)env;
  (void)fd;
#endif
}

// `reserved`: how many of the sockets counted are the caller's own (the helper thread's wake-up).
void CheckSetCount(Napi::Env env, size_t count, int reserved = 0) {
#ifdef _WIN32
  if (count > FD_SETSIZE) {
    if (reserved == 0) {
      throw Napi::RangeError::New(env, "select() can watch at most FD_SETSIZE (" +
                                           std::to_string(FD_SETSIZE) + ") sockets per set");
    }
    throw Napi::RangeError::New(env, "select() can watch at most " + std::to_string(FD_SETSIZE - reserved) +
                                         " sockets here: FD_SETSIZE is " + std::to_string(FD_SETSIZE) +
                                         " and the helper thread's wake-up socket takes one");
  }
#else
  (void)env;
  (void)count;
  (void)reserved;
#endif
}

timeval* ToTimeval(int timeoutMs, timeval* storage) {
  if (timeoutMs < 0) return nullptr;
  storage->tv_sec = timeoutMs / 1000;
  storage->tv_usec = (timeoutMs % 1000) * 1000;
  return storage;
}

int SystemSelect(int maxFd, fd_set* r, fd_set* w, fd_set* x, int ms) {
#ifdef _WIN32
  // Winsock refuses three empty sets (WSAEINVAL) where POSIX sleeps for the timeout.
  if (r->fd_count + w->fd_count + x->fd_count == 0) {
    Sleep(ms < 0 ? INFINITE : static_cast<DWORD>(ms));
    return 0;
  }
#endif
  timeval storage;
  int rc = ::select(maxFd + 1, r, w, x, ToTimeval(ms, &storage));
#ifdef _WIN32
  if (rc == SOCKET_ERROR) errno = platform::LastError();
#endif
  return rc;
}

// One of select()'s three lists: an Array of descriptors, or null/undefined for none.
std::vector<sock_t> ArgDescriptorList(const Napi::CallbackInfo& info, size_t index, const char* name) {
  std::vector<sock_t> fds;
  Napi::Value value = info[index];
  if (value.IsUndefined() || value.IsNull()) return fds;
  if (!value.IsArray()) {
    throw Napi::TypeError::New(info.Env(), std::string("The \"") + name +
                                               "\" argument must be an array of descriptors");
  }
  Napi::Array array = value.As<Napi::Array>();
  uint32_t length = array.Length();
  CheckSetCount(info.Env(), length);
  // No reserve(length): a sparse array can claim 2^32 - 1 entries while holding none.
  for (uint32_t i = 0; i < length; i++) {
    // Each entry follows the rule of every descriptor argument; "read[2]" fits the short-string buffer.
    std::string entry = std::string(name) + "[" + std::to_string(i) + "]";
    int64_t fd = CheckDescriptor(info.Env(), array.Get(i), entry.c_str());
    CheckSelectable(info.Env(), fd);
    fds.push_back(static_cast<sock_t>(fd));
  }
  return fds;
}

Napi::Array ReadyList(Napi::Env env, const std::vector<sock_t>& fds, fd_set* set) {
  Napi::Array ready = Napi::Array::New(env);
  uint32_t n = 0;
  for (sock_t fd : fds) {
    if (FD_ISSET(fd, set)) ready.Set(n++, Napi::Number::New(env, static_cast<double>(fd)));
  }
  return ready;
}

// select(read, write, except, timeoutMs) -> [readable, writable, exceptional], as Python's.
Napi::Value Select(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<sock_t> lists[3] = {ArgDescriptorList(info, 0, "read"),
                                  ArgDescriptorList(info, 1, "write"),
                                  ArgDescriptorList(info, 2, "except")};
  int timeoutMs = ArgTimeoutMs(info, 3);
  fd_set sets[3];
  int rc = WaitRetryingEintr(timeoutMs, [&](int ms) {
    int maxFd = -1;
    for (int i = 0; i < 3; i++) {
      FD_ZERO(&sets[i]);
      for (sock_t fd : lists[i]) {
        FD_SET(fd, &sets[i]);
        if (static_cast<int>(fd) > maxFd) maxFd = static_cast<int>(fd);
      }
    }
    return SystemSelect(maxFd, &sets[0], &sets[1], &sets[2], ms);
  });
  if (rc < 0) ThrowSystemError(env, errno, "select");
  Napi::Array result = Napi::Array::New(env, 3);
  for (uint32_t i = 0; i < 3; i++) result.Set(i, ReadyList(env, lists[i], &sets[i]));
  return result;
}

}  // namespace

namespace {

// One read of a field of caller memory. The pollfd array may be a view of a SharedArrayBuffer that
// another thread writes meanwhile: a descriptor checked against FD_SETSIZE and then read again
// could have grown past the fd_set by the time FD_SET writes its bit. So every use works on a
// copy taken by one volatile load, and is bounded by its own check.
template <typename T>
T ReadOnce(const T& field) {
  return *static_cast<const volatile T*>(&field);
}

// Whether `fd` may be put in an fd_set: not a placeholder, and (POSIX) below FD_SETSIZE. The
// arguments were checked before the wait; this is the guard a racing writer cannot get past.
bool Settable(sock_t fd) {
  if (fd == platform::kInvalidSocket || static_cast<int64_t>(fd) < 0) return false;
#ifndef _WIN32
  if (fd >= FD_SETSIZE) return false;
#endif
  return true;
}

}  // namespace

int SelectWait(PollFd* fds, int64_t count, int timeoutMs) {
  fd_set r, w, x;
  int rc = WaitRetryingEintr(timeoutMs, [&](int ms) {
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&x);
    int maxFd = -1;
    for (int64_t i = 0; i < count; i++) {
      sock_t fd = ReadOnce(fds[i].fd);
      if (!Settable(fd)) continue;
      auto events = ReadOnce(fds[i].events);
      if (events & POLLIN) FD_SET(fd, &r);
      if (events & POLLOUT) FD_SET(fd, &w);
      if (events & POLLPRI) FD_SET(fd, &x);
#ifdef _WIN32
      // Winsock reports a failed non-blocking connect in the except set, never the write set.
      if (events & POLLOUT) FD_SET(fd, &x);
#endif
      if (static_cast<int>(fd) > maxFd) maxFd = static_cast<int>(fd);
    }
    return SystemSelect(maxFd, &r, &w, &x, ms);
  });
  if (rc < 0) return -1;
  int ready = 0;
  for (int64_t i = 0; i < count; i++) {
    PollFd& entry = fds[i];
    sock_t fd = ReadOnce(entry.fd);
    auto events = ReadOnce(entry.events);
    decltype(entry.revents) revents = 0;
    if (rc > 0 && Settable(fd)) {
      if ((events & POLLIN) && FD_ISSET(fd, &r)) revents |= POLLIN;
      if ((events & POLLOUT) && FD_ISSET(fd, &w)) revents |= POLLOUT;
      if ((events & POLLPRI) && FD_ISSET(fd, &x)) revents |= POLLPRI;
#ifdef _WIN32
      if ((events & POLLOUT) && FD_ISSET(fd, &x)) revents |= POLLERR;
#endif
    }
    entry.revents = revents;
    if (revents) ready++;
  }
  return ready;
}

void CheckSelectPollfds(Napi::Env env, const PollFd* fds, int64_t count, int reserved) {
  size_t watched = 0;
  for (int64_t i = 0; i < count; i++) {
    if (fds[i].fd == platform::kInvalidSocket || static_cast<int64_t>(fds[i].fd) < 0) continue;
    CheckSelectable(env, static_cast<int64_t>(fds[i].fd));
    watched++;
  }
  CheckSetCount(env, watched, reserved);
}

namespace {

// selectPollfds(pollfds, nfds, timeoutMs): select() driven by the same pollfd array poll() uses
// (POLLIN -> read set, POLLOUT -> write set, POLLPRI -> except set), so the select and poll
// selectors share their bookkeeping. Returns how many entries have revents set.
Napi::Value SelectPollfds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto [fds, count] = ArgPollFds(info, 0);
  int timeoutMs = ArgTimeoutMs(info, 2);
  CheckSelectPollfds(env, fds, count, 0);
  int ready = SelectWait(fds, count, timeoutMs);
  if (ready < 0) ThrowSystemError(env, errno, "select");
  return Napi::Number::New(env, ready);
}

}  // namespace

void InitSelect(Napi::Env env, Napi::Object exports) {
  exports.Set("select", Napi::Function::New(env, Select, "select"));
  exports.Set("selectPollfds", Napi::Function::New(env, SelectPollfds, "selectPollfds"));
}

}  // namespace iomux
