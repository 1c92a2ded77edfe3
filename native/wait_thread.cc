// The bridge to Node's event loop: a helper thread that blocks in the reactor's own mechanism
// (poll, select, or poll on the epoll descriptor, which is itself pollable) and tells the
// JavaScript thread when something is ready. JavaScript then runs a non-blocking select on the
// real selector and dispatches, so the event loop is never blocked and an idle reactor costs
// no CPU. A thread-safe function carries the wake-up, with ref/unref like Node's handles.
//
// Protocol (one wait in flight at a time): arm() starts a wait on a snapshot of the interest
// set; when it ends (ready, timeout, wake() or error) onReady(errno) runs on the JS thread and
// the thread goes idle until the next arm(). wake() ends an armed wait early, so an interest
// change made outside dispatch is seen at once. close() joins the thread and drops a wake-up
// not yet delivered: no onReady runs after it.
//
// A wake-up allocates nothing: the snapshot vector is reused, and the errno travels to
// JavaScript inside the thread-safe call's data pointer.
#include <napi.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "bindings.h"
#include "errors.h"
#include "platform.h"
#include "waits.h"

namespace iomux {
namespace {

enum class Mechanism { Poll = 0, Select = 1, Epoll = 2 };

class WaitThread : public Napi::ObjectWrap<WaitThread> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "WaitThread",
                       {InstanceMethod<&WaitThread::Arm>("arm"), InstanceMethod<&WaitThread::WakeUp>("wake"),
                        InstanceMethod<&WaitThread::Ref>("ref"), InstanceMethod<&WaitThread::Unref>("unref"),
                        InstanceMethod<&WaitThread::Close>("close")});
  }

  // new WaitThread(onReady: (errno: number) => void)
  explicit WaitThread(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WaitThread>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "The \"onReady\" argument must be a function");
    if (platform::CreateWaker(&waker_) != 0) ThrowSystemError(env, platform::LastError(), "eventfd");
    // A throwing constructor runs no destructor: whatever was made so far is freed here.
    try {
      tsfn_ = WakeUps::New(env, info[0].As<Napi::Function>(), "iomux.WaitThread", 0, 1);
    } catch (...) {
      platform::CloseWaker(&waker_);
      throw;
    }
    try {
      thread_ = std::thread([this]() { Run(); });
    } catch (const std::system_error& error) {
      tsfn_.Abort();
      platform::CloseWaker(&waker_);
      ThrowSystemError(env, error.code().value(), "pthread_create");
    }
    // Hooked only now that nothing can throw: a hook must never point at an object never made.
    // A worker thread's environment can end with the wait in flight: stop and join first.
    cleanup_ = env.AddCleanupHook(std::function<void()>([this]() {
      hooked_ = false;
      Shutdown();
    }));
    hooked_ = true;
  }

  ~WaitThread() override {
    Unhook(Env());
    Shutdown();
  }

 private:
  // arm(mechanism, pollfds | null, nfds, epfd, timeoutMs)
  Napi::Value Arm(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    auto mechanism = static_cast<Mechanism>(ArgInteger(info, 0, "mechanism", 0, 2));
    PollFdRange range{nullptr, 0};
    PollFd epoll{};
    if (mechanism == Mechanism::Epoll) {
      epoll.fd = static_cast<platform::sock_t>(ArgDescriptor(info, 3, "epfd"));
      epoll.events = POLLIN;
      range = PollFdRange{&epoll, 1};
    } else {
      range = ArgPollFds(info, 1);
    }
    int timeoutMs = ArgTimeoutMs(info, 4);
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_ != State::Idle) throw StateError(env, "WaitThread.arm: a wait is already in flight");
    // The snapshot is the thread's own copy (JavaScript may change its pollfd array meanwhile),
    // copied straight into the vector of the last wait: no allocation once it is big enough.
    snapshot_.assign(range.fds, range.fds + range.count);
    PollFd wake{};
    wake.fd = waker_.readFd;
    wake.events = POLLIN;
    snapshot_.push_back(wake);
    // FD_SET past the set's end corrupts memory (POSIX) or drops the socket silently (Windows, a
    // counted array): the wake-up descriptor is checked too, so it always fits.
    if (mechanism == Mechanism::Select) CheckSelectPollfds(env, snapshot_.data(), snapshot_.size(), 1);
    mechanism_ = mechanism;
    timeoutMs_ = timeoutMs;
    state_ = State::Armed;
    armed_.notify_one();
    return env.Undefined();
  }

  Napi::Value WakeUp(const Napi::CallbackInfo& info) {
    if (!closed_) platform::Wake(waker_);
    return info.Env().Undefined();
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (!closed_) tsfn_.Ref(info.Env());
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (!closed_) tsfn_.Unref(info.Env());
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Unhook(info.Env());
    Shutdown();
    return info.Env().Undefined();
  }

  // Misuse of the protocol is not a system error: Node's code for it is ERR_INVALID_STATE.
  static Napi::Error StateError(Napi::Env env, const char* message) {
    Napi::Error error = Napi::Error::New(env, message);
    error.Set("code", Napi::String::New(env, "ERR_INVALID_STATE"));
    return error;
  }

  void Unhook(Napi::Env env) {
    if (hooked_) cleanup_.Remove(env);
    hooked_ = false;
  }

  void CheckOpen(Napi::Env env) {
    if (closed_) throw StateError(env, "WaitThread is closed");
  }

  void Run() {
    for (;;) {
      std::unique_lock<std::mutex> lock(mutex_);
      armed_.wait(lock, [this]() { return state_ != State::Idle; });
      if (state_ == State::Stopping) return;
      lock.unlock();
      // Only this thread touches the snapshot while Armed.
      int rc = mechanism_ == Mechanism::Select ? SelectWait(snapshot_.data(), snapshot_.size(), timeoutMs_)
                                               : PollWait(snapshot_.data(), snapshot_.size(), timeoutMs_);
      int err = rc < 0 ? errno : 0;
      platform::DrainWaker(waker_);
      lock.lock();
      if (state_ == State::Stopping) return;
      state_ = State::Idle;
      lock.unlock();
      tsfn_.NonBlockingCall(ErrnoAsData(err));
    }
  }

  static void* ErrnoAsData(int err) { return reinterpret_cast<void*>(static_cast<intptr_t>(err)); }

  // On the JavaScript thread. env is null when close() dropped this call.
  static void CallOnReady(Napi::Env env, Napi::Function onReady, std::nullptr_t*, void* data) {
    if (env == nullptr || onReady.IsEmpty()) return;
    int err = static_cast<int>(reinterpret_cast<intptr_t>(data));
    try {
      onReady.Call({Napi::Number::New(env, err)});
    } catch (const Napi::Error& error) {
      // As for Node's own callbacks: the error reaches 'uncaughtException' (a pending exception
      // left to Node-API would only print a deprecation warning, DEP0168).
      napi_fatal_exception(env, error.Value());
    }
  }

  void Shutdown() {
    if (closed_) return;
    closed_ = true;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      state_ = State::Stopping;
    }
    armed_.notify_one();
    platform::Wake(waker_);
    if (thread_.joinable()) thread_.join();
    tsfn_.Abort();  // A wake-up queued but not yet delivered is dropped, not run after close().
    platform::CloseWaker(&waker_);
  }

  enum class State { Idle, Armed, Stopping };
  using WakeUps = Napi::TypedThreadSafeFunction<std::nullptr_t, void, CallOnReady>;

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable armed_;
  State state_ = State::Idle;
  Mechanism mechanism_ = Mechanism::Poll;
  int timeoutMs_ = -1;
  std::vector<PollFd> snapshot_;
  platform::Waker waker_;
  WakeUps tsfn_;
  Napi::Env::CleanupHook<std::function<void()>> cleanup_;
  bool hooked_ = false;
  bool closed_ = false;
};

}  // namespace

void InitWaitThread(Napi::Env env, Napi::Object exports) {
  exports.Set("WaitThread", WaitThread::Define(env));
}

}  // namespace iomux
