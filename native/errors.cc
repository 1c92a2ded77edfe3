#include "errors.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>

#include "errno_list.h"
#include "platform.h"

namespace iomux {

const char* ErrnoName(int err) {
  // A switch cannot hold aliases (EAGAIN == EWOULDBLOCK on Linux); the first name in the list wins.
#define IOMUX_ERRNO_NAME(name) \
  if (err == name) return #name;
  IOMUX_ERRNO_LIST(IOMUX_ERRNO_NAME)
#undef IOMUX_ERRNO_NAME
  return nullptr;
}

void AddErrnoConstants(Napi::Env env, Napi::Object target) {
#define IOMUX_ERRNO_CONSTANT(name) target.Set(#name, Napi::Number::New(env, name));
  IOMUX_ERRNO_LIST(IOMUX_ERRNO_CONSTANT)
#undef IOMUX_ERRNO_CONSTANT
}

Napi::Error SystemError(Napi::Env env, int err, const char* syscall) {
  const char* name = ErrnoName(err);
  std::string code = name ? name : "E" + std::to_string(err);
  std::string message = std::string(syscall) + " " + code + ": " + platform::ErrorMessage(err);
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));  // Node's system errors carry -errno.
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

void ThrowSystemError(Napi::Env env, int err, const char* syscall) {
  throw SystemError(env, err, syscall);
}

void ThrowTypeError(Napi::Env env, const std::string& name, const char* expected) {
  throw Napi::TypeError::New(env, "The \"" + name + "\" argument must be " + expected);
}

void ThrowPastEnd(Napi::Env env, const std::string& what, int64_t value, const std::string& end, size_t size) {
  throw Napi::RangeError::New(env, what + " (" + std::to_string(value) + ") is past the end of " + end + " (" +
                                       std::to_string(size) + ")");
}

namespace {

[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

}  // namespace

int64_t CheckInteger(Napi::Env env, Napi::Value value, const char* name, int64_t min, int64_t max) {
  // One N-API call on the hot path: napi_get_value_double itself says when it is not a number.
  double d = 0;
  if (napi_get_value_double(env, value, &d) != napi_ok) ThrowTypeError(env, name, "an integer");
  if (!std::isfinite(d) || std::trunc(d) != d) ThrowTypeError(env, name, "an integer");
  if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
    // Printed as a double: a value beyond int64's range must not be cast to one.
    std::ostringstream message;
    message << "The \"" << name << "\" argument must be >= " << min << " and <= " << max
            << ". Received " << std::setprecision(16) << d;
    ThrowRange(env, message.str());
  }
  return static_cast<int64_t>(d);
}

int64_t ArgInteger(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min,
                   int64_t max) {
  return CheckInteger(info.Env(), info[index], name, min, max);
}

int64_t ArgIntegerOr(const Napi::CallbackInfo& info, size_t index, const char* name,
                     int64_t fallback, int64_t min, int64_t max) {
  if (index >= info.Length() || info[index].IsUndefined()) return fallback;
  return ArgInteger(info, index, name, min, max);
}

bool ArgBoolean(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsBoolean()) ThrowTypeError(info.Env(), name, "a boolean");
  return value.As<Napi::Boolean>().Value();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsString()) ThrowTypeError(info.Env(), name, "a string");
  return value.As<Napi::String>().Utf8Value();
}

int64_t CheckDescriptor(Napi::Env env, Napi::Value value, const char* name) {
  // Descriptors are ints on POSIX; Winsock SOCKETs are handles that still fit a JS number.
  constexpr int64_t kMax =
#ifdef _WIN32
      (int64_t(1) << 53) - 1;
#else
      std::numeric_limits<int>::max();
#endif
  return CheckInteger(env, value, name, 0, kMax);
}

int64_t ArgDescriptor(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return CheckDescriptor(info.Env(), info[index], name);
}

int ArgTimeoutMs(const Napi::CallbackInfo& info, size_t index) {
  if (index >= info.Length()) return -1;
  Napi::Value value = info[index];
  if (value.IsUndefined() || value.IsNull()) return -1;
  if (!value.IsNumber()) ThrowTypeError(info.Env(), "timeoutMs", "a number, null or undefined");
  double ms = value.As<Napi::Number>().DoubleValue();
  if (std::isnan(ms)) ThrowTypeError(info.Env(), "timeoutMs", "a number, not NaN");
  if (ms < 0 || ms == std::numeric_limits<double>::infinity()) return -1;
  double rounded = std::ceil(ms);
  // Longer than INT_MAX ms (~24.8 days) is treated as forever; no syscall takes more.
  return rounded > std::numeric_limits<int>::max() ? -1 : static_cast<int>(rounded);
}

namespace {

// Bytes per element of a typed array's type code, or 0 for a code this build cannot name (a type
// added to JavaScript after these headers), which is refused: a guessed size could reach past the
// end of the array's memory.
size_t ElementSize(std::underlying_type_t<napi_typedarray_type> code) {
  switch (code) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      return 1;
    case napi_int16_array:
    case napi_uint16_array:
#ifdef NODE_API_HAS_FLOAT16_ARRAY
    case napi_float16_array:
#endif
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array:
      return 8;
    default:
      return 0;
  }
}

// The C API is used directly: it yields the data pointer of a view over a SharedArrayBuffer too,
// where node-addon-api's ArrayBuffer() wrapper would fail on the shared buffer. Each info call
// answers napi_invalid_arg (nothing thrown) for a value of another kind, so a typed array, the
// common case, costs one N-API call.
enum class View { kNone, kMemory, kUnnamedType };

View ViewMemory(napi_env env, napi_value value, ByteRange* range) {
  // N-API leaves `type` unwritten for a typed array it has no name for (Node 24's Float16Array,
  // before napi_float16_array): preset bytes that no type has, and read them back as a number.
  napi_typedarray_type type;
  std::memset(&type, 0xff, sizeof(type));
  size_t elements = 0;
  void* start = nullptr;
  if (napi_get_typedarray_info(env, value, &type, &elements, &start, nullptr, nullptr) == napi_ok) {
    std::underlying_type_t<napi_typedarray_type> code;
    std::memcpy(&code, &type, sizeof(code));
    size_t size = ElementSize(code);
    if (size == 0) return View::kUnnamedType;
    // One N-API call on the hot path: the byte length follows from the type and element count.
    *range = ByteRange{static_cast<uint8_t*>(start), elements * size};
    return View::kMemory;
  }
  size_t length = 0;
  if (napi_get_dataview_info(env, value, &length, &start, nullptr, nullptr) == napi_ok) {
    *range = ByteRange{static_cast<uint8_t*>(start), length};
    return View::kMemory;
  }
  return View::kNone;
}

[[noreturn]] void ThrowUnnamedType(Napi::Env env, const std::string& name) {
  throw Napi::TypeError::New(env, "The \"" + name +
                                      "\" argument is a typed array whose element type this build of iomux "
                                      "does not know (rebuild it against newer Node-API headers)");
}

bool MemoryOf(Napi::Env env, Napi::Value value, const char* name, uint8_t** data, size_t* length) {
  ByteRange range{};
  switch (ViewMemory(env, value, &range)) {
    case View::kMemory:
      *data = range.data;
      *length = range.length;
      return true;
    case View::kUnnamedType:
      ThrowUnnamedType(env, name);
    case View::kNone:
      break;
  }
  if (value.IsArrayBuffer()) {
    Napi::ArrayBuffer buffer = value.As<Napi::ArrayBuffer>();
    *data = static_cast<uint8_t*>(buffer.Data());
    *length = buffer.ByteLength();
    return true;
  }
  return false;
}

}  // namespace

Span ArgSpan(const Napi::CallbackInfo& info, size_t index, size_t size, const char* startName,
             const char* countName, const char* of) {
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  int64_t start = ArgIntegerOr(info, index, startName, 0, 0, kMax);
  if (static_cast<uint64_t>(start) > size) {
    ThrowPastEnd(info.Env(), std::string("The \"") + startName + "\" argument", start, of, size);
  }
  int64_t count = ArgIntegerOr(info, index + 1, countName, static_cast<int64_t>(size) - start, 0, kMax);
  if (static_cast<uint64_t>(start + count) > size) {
    ThrowPastEnd(info.Env(), std::string(startName) + " + " + countName, start + count, of, size);
  }
  return Span{static_cast<size_t>(start), static_cast<size_t>(count)};
}

ByteRange ArgByteRange(const Napi::CallbackInfo& info, size_t index, const char* name) {
  uint8_t* data = nullptr;
  size_t size = 0;
  if (!MemoryOf(info.Env(), info[index], name, &data, &size)) {
    ThrowTypeError(info.Env(), name, "a Buffer, TypedArray, DataView or ArrayBuffer");
  }
  Span span = ArgSpan(info, index + 1, size, "offset", "length", "the buffer");
  return ByteRange{data + span.start, span.count};
}

ByteRange CheckView(Napi::Env env, napi_value value, const char* name, int64_t index) {
  ByteRange range{};
  View view = ViewMemory(env, value, &range);
  if (view == View::kMemory) return range;
  // The name is built only on the way out: the hot path formats nothing.
  std::string named = index < 0 ? std::string(name) : std::string(name) + "[" + std::to_string(index) + "]";
  if (view == View::kUnnamedType) ThrowUnnamedType(env, named);
  ThrowTypeError(env, named, "a TypedArray or DataView");
}

ByteRange ArgTypedMemory(const Napi::CallbackInfo& info, size_t index, const char* name,
                         size_t alignment) {
  uint8_t* data = nullptr;
  size_t size = 0;
  if (!MemoryOf(info.Env(), info[index], name, &data, &size)) {
    ThrowTypeError(info.Env(), name, "a TypedArray or ArrayBuffer");
  }
  if (reinterpret_cast<uintptr_t>(data) % alignment != 0) {
    ThrowRange(info.Env(), std::string("The \"") + name + "\" argument must be aligned to " +
                               std::to_string(alignment) + " bytes");
  }
  return ByteRange{data, size};
}

}  // namespace iomux
