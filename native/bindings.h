// Each native/*.cc file adds its functions to the module's exports through one of these.
#pragma once
#include <napi.h>

namespace iomux {

void InitConstants(Napi::Env env, Napi::Object exports);
void InitSockets(Napi::Env env, Napi::Object exports);
void InitBulkSend(Napi::Env env, Napi::Object exports);
void InitBulkReceive(Napi::Env env, Napi::Object exports);
void InitSelect(Napi::Env env, Napi::Object exports);
void InitPoll(Napi::Env env, Napi::Object exports);
void InitEpoll(Napi::Env env, Napi::Object exports);
void InitIoUring(Napi::Env env, Napi::Object exports);
void InitWaitThread(Napi::Env env, Napi::Object exports);
void InitLoopWatcher(Napi::Env env, Napi::Object exports);
void InitTls(Napi::Env env, Napi::Object exports);

}  // namespace iomux
