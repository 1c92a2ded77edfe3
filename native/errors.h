// Errors shaped like Node's system errors, and the argument checks every entry point shares.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace iomux {

// The symbolic name of a POSIX errno value ("EBADF"), or nullptr if unknown.
const char* ErrnoName(int err);

// An Error with code, errno (negative, as Node's), syscall and a readable message.
Napi::Error SystemError(Napi::Env env, int err, const char* syscall);
[[noreturn]] void ThrowSystemError(Napi::Env env, int err, const char* syscall);

// Adds every errno name this platform knows to `target` (name -> positive value).
void AddErrnoConstants(Napi::Env env, Napi::Object target);

// Argument checks: a wrong type throws TypeError, a value out of range throws RangeError.
// TypeError 'The "<name>" argument must be <expected>'.
[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& name, const char* expected);
// RangeError "<what> (<value>) is past the end of <end> (<size>)": every offset, index or count
// that runs past what it points into is reported in these words.
[[noreturn]] void ThrowPastEnd(Napi::Env env, const std::string& what, int64_t value, const std::string& end,
                               size_t size);
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

// [start, start + count) of something `size` long (a buffer's bytes, an array's elements), from the
// optional integer arguments at index (start, default 0) and index + 1 (count, default: the rest).
// `of` names the whole in a RangeError ("the buffer").
struct Span {
  size_t start;
  size_t count;
};
Span ArgSpan(const Napi::CallbackInfo& info, size_t index, size_t size, const char* startName,
             const char* countName, const char* of);

// A byte range of a caller's buffer: (buffer, offset = 0, length = rest of buffer) at index,
// index + 1, index + 2. Any TypedArray, DataView or ArrayBuffer is accepted.
struct ByteRange {
  uint8_t* data;
  size_t length;
};
ByteRange ArgByteRange(const Napi::CallbackInfo& info, size_t index, const char* name);

// The bytes of a TypedArray or DataView (a view over a resizable buffer: as long as it is now),
// else a TypeError naming the value: `name`, or `name[index]` for an array's element (index >= 0).
ByteRange CheckView(Napi::Env env, napi_value value, const char* name, int64_t index = -1);

// The whole memory of a typed array (for caller-owned wait arrays), checked for alignment.
ByteRange ArgTypedMemory(const Napi::CallbackInfo& info, size_t index, const char* name,
                         size_t alignment);

}  // namespace iomux
