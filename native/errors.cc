#include "errors.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <limits>
#include <sstream>
#include <string>

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

namespace {

[[noreturn]] void ThrowType(Napi::Env env, const char* name, const char* expected) {
  throw Napi::TypeError::New(env, std::string("The \"") + name + "\" argument must be " + expected);
}

[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

}  // namespace

int64_t CheckInteger(Napi::Env env, Napi::Value value, const char* name, int64_t min, int64_t max) {
  // One N-API call on the hot path: napi_get_value_double itself says when it is not a number.
  double d = 0;
  if (napi_get_value_double(env, value, &d) != napi_ok) ThrowType(env, name, "an integer");
  if (!std::isfinite(d) || std::trunc(d) != d) ThrowType(env, name, "an integer");
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
  if (!value.IsBoolean()) ThrowType(info.Env(), name, "a boolean");
  return value.As<Napi::Boolean>().Value();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsString()) ThrowType(info.Env(), name, "a string");
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
  if (!value.IsNumber()) ThrowType(info.Env(), "timeoutMs", "a number, null or undefined");
  double ms = value.As<Napi::Number>().DoubleValue();
  if (std::isnan(ms)) ThrowType(info.Env(), "timeoutMs", "a number, not NaN");
  if (ms < 0 || ms == std::numeric_limits<double>::infinity()) return -1;
  double rounded = std::ceil(ms);
  // Longer than INT_MAX ms (~24.8 days) is treated as forever; no syscall takes more.
  return rounded > std::numeric_limits<int>::max() ? -1 : static_cast<int>(rounded);
}

namespace {

// The C API is used directly: it yields the data pointer of a view over a SharedArrayBuffer too,
// where node-addon-api's ArrayBuffer() wrapper would fail on the shared buffer.
size_t ElementSize(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      return 1;
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    default:  // Float64, BigInt64, BigUint64.
      return 8;
  }
}

bool MemoryOf(Napi::Env env, Napi::Value value, uint8_t** data, size_t* length) {
  void* start = nullptr;
  if (value.IsTypedArray()) {
    napi_typedarray_type type;
    size_t elements = 0;
    NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, value, &type, &elements, &start, nullptr, nullptr),
                         false);
    *data = static_cast<uint8_t*>(start);
    // One N-API call on the hot path: the byte length follows from the type and element count.
    *length = elements * ElementSize(type);
    return true;
  }
  if (value.IsDataView()) {
    NAPI_THROW_IF_FAILED(env, napi_get_dataview_info(env, value, length, &start, nullptr, nullptr), false);
    *data = static_cast<uint8_t*>(start);
    return true;
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

ByteRange ArgByteRange(const Napi::CallbackInfo& info, size_t index, const char* name) {
  uint8_t* data = nullptr;
  size_t size = 0;
  if (!MemoryOf(info.Env(), info[index], &data, &size)) {
    ThrowType(info.Env(), name, "a Buffer, TypedArray, DataView or ArrayBuffer");
  }
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  int64_t offset = ArgIntegerOr(info, index + 1, "offset", 0, 0, kMax);
  if (static_cast<size_t>(offset) > size) {
    ThrowRange(info.Env(), "The \"offset\" argument (" + std::to_string(offset) +
                               ") is past the end of the buffer (" + std::to_string(size) + ")");
  }
  int64_t length = ArgIntegerOr(info, index + 2, "length", static_cast<int64_t>(size) - offset, 0, kMax);
  if (static_cast<size_t>(offset + length) > size) {
    ThrowRange(info.Env(), "offset + length (" + std::to_string(offset + length) +
                               ") is past the end of the buffer (" + std::to_string(size) + ")");
  }
  return ByteRange{data + offset, static_cast<size_t>(length)};
}

ByteRange ArgTypedMemory(const Napi::CallbackInfo& info, size_t index, const char* name,
                         size_t alignment) {
  uint8_t* data = nullptr;
  size_t size = 0;
  if (!MemoryOf(info.Env(), info[index], &data, &size)) {
    ThrowType(info.Env(), name, "a TypedArray or ArrayBuffer");
  }
  if (reinterpret_cast<uintptr_t>(data) % alignment != 0) {
    ThrowRange(info.Env(), std::string("The \"") + name + "\" argument must be aligned to " +
                               std::to_string(alignment) + " bytes");
  }
  return ByteRange{data, size};
}

}  // namespace iomux
