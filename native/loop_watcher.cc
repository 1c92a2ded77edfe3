// Attached mode without a thread hop: Node's own event loop (libuv) watches one pollable
// descriptor — the epoll descriptor, readable while any of its events is pending — with a
// uv_poll_t, and a uv_timer_t stands for the reactor's next timer. Either one calls
// onReady(errno, timedOut) on the JavaScript thread through a callback scope, as Node's own
// handles do, so process.nextTick callbacks and promise jobs run right after it.
//
// The poll stays started while the watcher is open: starting and stopping it per wake-up would
// cost epoll_ctl calls in libuv's loop. ref()/unref() act on both handles, like a Node handle's.
// close() (or the end of the environment, e.g. a worker thread's) closes them; their memory is
// freed when libuv says they are closed, which may be after the JavaScript object is gone.
//
// Only builds that reach libuv compile it: binding.gyp defines IOMUX_LIBUV and node-gyp's headers
// hold <uv.h>. cmake-js (Node-API-only headers) and the Windows cross build (an import library of
// the Node-API symbols only) export no LoopWatcher; the reactor then uses WaitThread.
#include <napi.h>

#include "bindings.h"

#if defined(IOMUX_LIBUV) && __has_include(<uv.h>)
#define IOMUX_LOOP_WATCHER 1
#include <uv.h>

#include <memory>

#include "errors.h"
#endif

namespace iomux {

#ifdef IOMUX_LOOP_WATCHER
namespace {

class LoopWatcher;

// The libuv handles, apart from the JavaScript object: uv_close completes on a later turn of the
// loop, and only then may this memory go. The environment's teardown (a worker thread ending)
// waits for that too: the async cleanup hook is removed, which tells it we are done, only when
// both handles are closed.
struct Handles {
  uv_poll_t poll;
  uv_timer_t timer;
  LoopWatcher* owner = nullptr;  // Null once closing: a late callback finds nobody to call.
  bool closing = false;
  int open = 0;  // Handles whose close callback has not run yet.
  napi_async_cleanup_hook_handle hook = nullptr;
};

void OnHandleClosed(uv_handle_t* handle) {
  auto* handles = static_cast<Handles*>(handle->data);
  if (--handles->open > 0) return;
  if (handles->hook != nullptr) napi_remove_async_cleanup_hook(handles->hook);
  delete handles;
}

void CloseHandles(Handles* handles) {
  if (handles->closing) return;
  handles->closing = true;
  handles->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&handles->poll), OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&handles->timer), OnHandleClosed);
}

Napi::Error StateError(Napi::Env env, const char* message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, "ERR_INVALID_STATE"));
  return error;
}

class LoopWatcher : public Napi::ObjectWrap<LoopWatcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "LoopWatcher",
                       {InstanceMethod<&LoopWatcher::SetTimer>("setTimer"),
                        InstanceMethod<&LoopWatcher::RefHandles>("ref"),
                        InstanceMethod<&LoopWatcher::UnrefHandles>("unref"),
                        InstanceMethod<&LoopWatcher::Close>("close")});
  }

  // new LoopWatcher(fd, onReady: (errno: number, timedOut: boolean) => void)
  explicit LoopWatcher(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<LoopWatcher>(info), context_(info.Env(), "iomux.LoopWatcher") {
    Napi::Env env = info.Env();
    int fd = static_cast<int>(ArgDescriptor(info, 0, "fd"));
    if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "The \"onReady\" argument must be a function");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env);
    auto handles = std::make_unique<Handles>();
    // uv_poll_init refuses what epoll cannot watch (EPERM: a regular file) and a descriptor this
    // loop already watches (EEXIST).
    int rc = uv_poll_init(loop, &handles->poll, fd);
    if (rc != 0) ThrowSystemError(env, -rc, "uv_poll_init");
    uv_timer_init(loop, &handles->timer);
    handles->poll.data = handles->timer.data = handles.get();
    handles->open = 2;
    rc = uv_poll_start(&handles->poll, UV_READABLE, OnPoll);
    if (rc != 0) {
      CloseHandles(handles.release());
      ThrowSystemError(env, -rc, "uv_poll_start");
    }
    if (napi_add_async_cleanup_hook(env, OnTeardown, handles.get(), &handles->hook) != napi_ok) {
      CloseHandles(handles.release());
      throw Napi::Error::New(env);
    }
    onReady_ = Napi::Persistent(info[1].As<Napi::Function>());
    handles_ = handles.release();
    handles_->owner = this;
    Ref();  // Like a Node handle: open, it lives whatever JavaScript still holds.
  }

  ~LoopWatcher() override { Release(); }

 private:
  // setTimer(timeoutMs): onReady(0, true) after timeoutMs unless set again first; null stops it.
  Napi::Value SetTimer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (handles_ == nullptr) throw StateError(env, "LoopWatcher is closed");
    int timeoutMs = ArgTimeoutMs(info, 0);
    if (timeoutMs < 0) {
      uv_timer_stop(&handles_->timer);
    } else {
      uv_timer_start(&handles_->timer, OnTimer, static_cast<uint64_t>(timeoutMs), 0);
    }
    return env.Undefined();
  }

  Napi::Value RefHandles(const Napi::CallbackInfo& info) {
    if (handles_ != nullptr) {
      uv_ref(reinterpret_cast<uv_handle_t*>(&handles_->poll));
      uv_ref(reinterpret_cast<uv_handle_t*>(&handles_->timer));
    }
    return info.Env().Undefined();
  }

  Napi::Value UnrefHandles(const Napi::CallbackInfo& info) {
    if (handles_ != nullptr) {
      uv_unref(reinterpret_cast<uv_handle_t*>(&handles_->poll));
      uv_unref(reinterpret_cast<uv_handle_t*>(&handles_->timer));
    }
    return info.Env().Undefined();
  }

  // Idempotent. No onReady runs after it.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (handles_ != nullptr) {
      Release();
      onReady_.Reset();
      Unref();  // Now only JavaScript's references keep the object.
    }
    return info.Env().Undefined();
  }

  void Release() {
    if (handles_ == nullptr) return;
    CloseHandles(handles_);
    handles_ = nullptr;
  }

  // The environment is ending with the handles open (or still closing): close them; the
  // teardown waits until OnHandleClosed removes this hook.
  static void OnTeardown(napi_async_cleanup_hook_handle, void* data) {
    auto* handles = static_cast<Handles*>(data);
    if (handles->owner != nullptr) handles->owner->handles_ = nullptr;
    CloseHandles(handles);
  }

  static void OnPoll(uv_poll_t* poll, int status, int) {
    // On an error (status < 0) libuv has stopped the poll; the reactor reports it.
    auto* handles = static_cast<Handles*>(poll->data);
    if (handles->owner != nullptr) handles->owner->Ready(status < 0 ? -status : 0, false);
  }

  static void OnTimer(uv_timer_t* timer) {
    auto* handles = static_cast<Handles*>(timer->data);
    if (handles->owner != nullptr) handles->owner->Ready(0, true);
  }

  void Ready(int err, bool timedOut) {
    Napi::Env env = Env();
    // The one scope this call needs (in Node 20 each Node-API handle scope is an allocation:
    // FunctionReference::MakeCallback would open a second one).
    Napi::HandleScope scope(env);
    try {
      onReady_.Value().MakeCallback(Value(), {Napi::Number::New(env, err), Napi::Boolean::New(env, timedOut)}, context_);
    } catch (const Napi::Error& error) {
      // As for Node's own callbacks: an exception reaches 'uncaughtException'.
      napi_fatal_exception(env, error.Value());
    }
  }

  Napi::AsyncContext context_;
  Napi::FunctionReference onReady_;
  Handles* handles_ = nullptr;  // Null once closed.
};

}  // namespace

void InitLoopWatcher(Napi::Env env, Napi::Object exports) {
  exports.Set("LoopWatcher", LoopWatcher::Define(env));
}
#else
// No libuv in this build: the attached reactor uses WaitThread on every mechanism.
void InitLoopWatcher(Napi::Env, Napi::Object) {}
#endif

}  // namespace iomux
