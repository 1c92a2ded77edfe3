// Errors shaped like Node's system errors, and the argument checks every entry point shares.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace iomux {

// The symbolic name of a POSIX errno value ("EBADF"), or nullptr if unknown.
const char* ErrnoName(int err);

// An Error with code, errno (negative, as Node's), syscall and a readable message.
Napi::Error SystemError(Napi::Env env, int err, const char* syscall);
[[noreturn]] void ThrowSystemError(Napi::Env env, int err, const char* syscall);

// Adds every errno name this platform knows to `target` (name -> positive value).
void AddErrnoConstants(Napi::Env env, Napi::Object target);

// Argument checks: a wrong type throws TypeError, a value out of range throws RangeError.
// CheckInteger is the rule for any integer (also one inside an array): a non-number or a fraction
// is a TypeError, an integer outside [min, max] a RangeError.
int64_t CheckInteger(Napi::Env env, Napi::Value value, const char* name, int64_t min, int64_t max);
// A descriptor number (also one inside an array): a non-negative integer the platform can hold.
int64_t CheckDescriptor(Napi::Env env, Napi::Value value, const char* name);
int64_t ArgInteger(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min,
                   int64_t max);
int64_t ArgIntegerOr(const Napi::CallbackInfo& info, size_t index, const char* name,
                     int64_t fallback, int64_t min, int64_t max);
bool ArgBoolean(const Napi::CallbackInfo& info, size_t index, const char* name);
std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* name);
// A descriptor number: a non-negative integer.
int64_t ArgDescriptor(const Napi::CallbackInfo& info, size_t index, const char* name = "fd");
// Milliseconds for a wait: negative, undefined, null or Infinity = forever (-1); a fraction rounds
// up so that a wait lasts at least what was asked.
int ArgTimeoutMs(const Napi::CallbackInfo& info, size_t index);

// A byte range of a caller's buffer: (buffer, offset = 0, length = rest of buffer) at index,
// index + 1, index + 2. Any TypedArray, DataView or ArrayBuffer is accepted.
struct ByteRange {
  uint8_t* data;
  size_t length;
};
ByteRange ArgByteRange(const Napi::CallbackInfo& info, size_t index, const char* name);

// The whole memory of a typed array (for caller-owned wait arrays), checked for alignment.
ByteRange ArgTypedMemory(const Napi::CallbackInfo& info, size_t index, const char* name,
                         size_t alignment);

}  // namespace iomux
