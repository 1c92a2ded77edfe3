// Module entry point. No process-global state: every export is created per environment, so
// the addon loads in worker threads as well as on the main thread.
#include <napi.h>

#include "bindings.h"
#include "platform.h"

namespace iomux {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  if (!platform::StartUp()) {
    throw Napi::Error::New(env, "iomux: the socket library could not be started");
  }
  InitConstants(env, exports);
  InitSockets(env, exports);
  InitBulkSend(env, exports);
  InitBulkReceive(env, exports);
  InitSelect(env, exports);
  InitPoll(env, exports);
  InitEpoll(env, exports);
  InitIoUring(env, exports);
  InitWaitThread(env, exports);
  InitLoopWatcher(env, exports);
  InitTls(env, exports);
  return exports;
}

}  // namespace iomux

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return iomux::Init(env, exports);
}

NODE_API_MODULE(iomux, InitModule)
