#include "args.hpp"

#include "../kernels/linalg.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

namespace nsa::addon {

void throwType(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }
void throwRangeJs(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

// A number as JavaScript prints it (`${v}`), close enough for messages: integers in full, others in
// the shortest %g form that reads back to the same double.
std::string jsNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == std::floor(v) && std::fabs(v) < 1e21) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf[0] == '-' && buf[1] == '0' && buf[2] == 0 ? "0" : buf;
  }
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s(buf);
  // "1e-07" → "1e-7", as JavaScript writes exponents.
  const auto e = s.find('e');
  if (e != std::string::npos) {
    std::size_t digits = e + 2;
    while (digits + 1 < s.size() && s[digits] == '0') s.erase(digits, 1);
  }
  return s;
}

namespace {

const char* typedArrayName(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

TypedIn typedArray(const In& v, napi_typedarray_type type, std::size_t length, const char* lengthMeaning) {
  Napi::Env env = v.value.Env();
  // The message only on failure: this runs on every call, however small.
  auto what = [&] {
    std::string w = std::string("a ") + typedArrayName(type);
    if (length != kAnyLength) {
      w += " of length " + std::to_string(length);
      if (lengthMeaning) w += std::string(" (") + lengthMeaning + ")";
    }
    return w;
  };
  napi_typedarray_type actual = napi_int8_array;
  std::size_t actualLength = 0;
  napi_value buffer = nullptr;
  if (!v.value.IsTypedArray() ||
      napi_get_typedarray_info(env, v.value, &actual, &actualLength, nullptr, &buffer, nullptr) != napi_ok || actual != type)
    throwType(env, "Expected " + what() + " for " + v.name + " but received " + describe(v.value));
  if (actualLength == 0) {
    bool isDetached = false;
    napi_is_detached_arraybuffer(env, buffer, &isDetached);
    if (isDetached) throwType(env, "Expected " + what() + " for " + v.name + " but received a detached " + typedArrayName(type));
  }
  if (length != kAnyLength && actualLength != length)
    throwRangeJs(env, "Expected " + what() + " for " + v.name + " but received " + describe(v.value));
  bool plain = false;
  napi_is_arraybuffer(env, buffer, &plain);  // a typed array's buffer is an ArrayBuffer or a SharedArrayBuffer
  return {v.value.As<Napi::TypedArray>(), v.name, actualLength, !plain};
}

}  // namespace

// ---- reading -----------------------------------------------------------------------------------------

In arg(const Napi::CallbackInfo& info, std::size_t i, std::string name) {
  return {i < info.Length() ? info[i] : info.Env().Undefined(), std::move(name)};
}

Fields::Fields(const In& object, std::initializer_list<const char*> keys) {
  Napi::Env env = object.value.Env();
  if (!object.value.IsObject() || object.value.IsArray() || object.value.IsFunction() || object.value.IsTypedArray())
    throwType(env, "Expected an object for " + object.name + " but received " + describe(object.value));
  Napi::Object o = object.value.As<Napi::Object>();
  fields_.reserve(keys.size());
  for (const char* key : keys) fields_.emplace_back(key, In{o.Get(key), object.name + "." + key});
}

const In& Fields::operator[](const char* key) const {
  for (auto& f : fields_)
    if (f.first == key) return f.second;
  // A binding asked for a field it did not read up front: a programming error, never user input.
  throw std::logic_error(std::string("field not read: ") + key);
}

bool Fields::has(const char* key) const { return !(*this)[key].value.IsUndefined(); }

std::vector<In> elements(const In& array, std::size_t minLength, std::size_t maxLength) {
  Napi::Env env = array.value.Env();
  const std::string range = minLength == maxLength ? "of length " + std::to_string(minLength)
                                                   : "of " + std::to_string(minLength) + " to " + std::to_string(maxLength) + " elements";
  if (!array.value.IsArray()) throwType(env, "Expected an array " + range + " for " + array.name + " but received " + describe(array.value));
  Napi::Array a = array.value.As<Napi::Array>();
  const std::size_t n = a.Length();
  if (n < minLength || n > maxLength)
    throwRangeJs(env, "Expected an array " + range + " for " + array.name + " but received " + describe(array.value));
  std::vector<In> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    out.push_back({a.Get(static_cast<uint32_t>(i)), array.name + "[" + std::to_string(i) + "]"});
  return out;
}

bool absent(const In& v) { return v.value.IsUndefined() || v.value.IsNull(); }

// ---- checking ----------------------------------------------------------------------------------------

std::string describe(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_number: return jsNumber(v.As<Napi::Number>().DoubleValue());
    case napi_boolean: return std::string("boolean ") + (v.As<Napi::Boolean>().Value() ? "true" : "false");
    case napi_string: {
      std::string s = v.As<Napi::String>().Utf8Value();
      if (s.size() > 40) s = s.substr(0, 40) + "…";
      std::string quoted = "\"";
      for (char c : s) quoted += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
      return "the string " + quoted + "\"";
    }
    case napi_bigint: return "a bigint";
    case napi_symbol: return "a symbol";
    case napi_function: return "a function";
    case napi_external: return "an external";
    default: break;
  }
  if (v.IsTypedArray()) {
    Napi::TypedArray a = v.As<Napi::TypedArray>();
    return std::string("a ") + typedArrayName(a.TypedArrayType()) + " of length " + std::to_string(a.ElementLength());
  }
  if (v.IsDataView()) return "a DataView";
  if (v.IsArray()) return "an array of length " + std::to_string(v.As<Napi::Array>().Length());
  if (v.IsArrayBuffer()) return "an ArrayBuffer";
  // The constructor's name would need a property read (user code): not here.
  return "an object";
}

double number(const In& v) {
  if (!v.value.IsNumber() || std::isnan(v.value.As<Napi::Number>().DoubleValue()))
    throwType(v.value.Env(), "Expected a number for " + v.name + " but received " + describe(v.value));
  return v.value.As<Napi::Number>().DoubleValue();
}

double finiteNumber(const In& v) {
  const double d = number(v);
  if (!std::isfinite(d)) throwRangeJs(v.value.Env(), "Expected a finite number for " + v.name + " but received " + jsNumber(d));
  return d;
}

double numberIn(const In& v, double lo, double hi) {
  const double d = number(v);
  if (!(d >= lo && d <= hi))
    throwRangeJs(v.value.Env(), "Expected a number in [" + jsNumber(lo) + ", " + jsNumber(hi) + "] for " + v.name +
                                    " but received " + jsNumber(d));
  return d;
}

std::int64_t integerIn(const In& v, std::int64_t lo, std::int64_t hi) {
  const std::string what = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (!v.value.IsNumber()) throwType(v.value.Env(), "Expected " + what + " for " + v.name + " but received " + describe(v.value));
  const double d = v.value.As<Napi::Number>().DoubleValue();
  if (std::isnan(d) || (std::isfinite(d) && d != std::floor(d)))
    throwType(v.value.Env(), "Expected " + what + " for " + v.name + " but received " + jsNumber(d));
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)))
    throwRangeJs(v.value.Env(), "Expected " + what + " for " + v.name + " but received " + jsNumber(d));
  return static_cast<std::int64_t>(d);
}

int intIn(const In& v, int lo, int hi) { return static_cast<int>(integerIn(v, lo, hi)); }

std::size_t dimension(const In& v, std::size_t min) {
  return static_cast<std::size_t>(integerIn(v, static_cast<std::int64_t>(min), 2147483647));
}

bool boolean(const In& v) {
  if (!v.value.IsBoolean()) throwType(v.value.Env(), "Expected a boolean for " + v.name + " but received " + describe(v.value));
  return v.value.As<Napi::Boolean>().Value();
}

std::string string(const In& v) {
  if (!v.value.IsString()) throwType(v.value.Env(), "Expected a string for " + v.name + " but received " + describe(v.value));
  return v.value.As<Napi::String>().Utf8Value();
}

TypedIn float64(const In& v, std::size_t length, const char* lengthMeaning) {
  return typedArray(v, napi_float64_array, length, lengthMeaning);
}
TypedIn int32(const In& v, std::size_t length, const char* lengthMeaning) {
  return typedArray(v, napi_int32_array, length, lengthMeaning);
}

void changedSinceRead(const TypedIn& t) {
  throwType(t.array.Env(), std::string("Expected a ") + typedArrayName(t.array.TypedArrayType()) + " of length " +
                               std::to_string(t.length) + " for " + t.name + " but received a detached " +
                               typedArrayName(t.array.TypedArrayType()) + " (its buffer was detached or shrunk while the arguments were read)");
}

std::size_t product(Napi::Env env, std::initializer_list<std::size_t> dims, const std::string& what) {
  std::size_t n = 1;
  for (std::size_t d : dims) {
    if (d != 0 && n > SIZE_MAX / d) throwRangeJs(env, "Expected a shape whose size fits in memory for " + what);
    n *= d;
  }
  return n;
}

void requireFinite(Napi::Env env, const double* x, std::size_t n, const std::string& name) {
  if (allFinite(x, n)) return;  // the usual case, at memory speed; else find the entry to name
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]))
      throwRangeJs(env, "Expected finite values in " + name + " but received " + jsNumber(x[i]) + " at index " + std::to_string(i));
}

void requireNonNegativeFinite(Napi::Env env, const double* x, std::size_t n, const std::string& name) {
  if (allNonNegativeFinite(x, n)) return;  // the usual case, at memory speed; else find the entry to name
  for (std::size_t i = 0; i < n; ++i)
    if (!(x[i] >= 0) || !std::isfinite(x[i]))
      throwRangeJs(env, "Expected finite non-negative values in " + name + " but received " + jsNumber(x[i]) + " at index " +
                            std::to_string(i));
}

// ---- memory --------------------------------------------------------------------------------------------

double float64Bytes(std::initializer_list<double> dims) {
  double n = 8;
  for (double d : dims) n *= d;
  return n;
}

namespace {

// The limit of each environment (main thread, each Worker), as lib/memory.ts keeps one per isolate;
// 0 = the memory available at each check.
std::mutex limitsMutex;
std::unordered_map<napi_env, double>& limits() {
  static std::unordered_map<napi_env, double> m;
  return m;
}

double availableMemory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    if (line.rfind("MemAvailable:", 0) == 0) {
      std::istringstream in(line.substr(13));
      double kib = 0;
      if (in >> kib) return kib * 1024.0;
    }
  }
  const long pages = sysconf(_SC_AVPHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? static_cast<double>(pages) * static_cast<double>(size) : 0.0;
}

// As formatBytes in lib/memory.ts: "34359738368 bytes (32.0 GiB)".
std::string formatBytes(double bytes) {
  static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = bytes;
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  std::string exact = std::isfinite(bytes) ? jsNumber(std::round(bytes)) + " bytes" : "more bytes than a double holds";
  if (u == 0) return exact;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return exact + " (" + buf + " " + units[u] + ")";
}

}  // namespace

Napi::Value SetMemoryLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double bytes = static_cast<double>(integerIn(arg(info, 0, "bytes"), 0, 9007199254740991));
  double previous = 0;
  {
    std::lock_guard<std::mutex> lock(limitsMutex);
    auto it = limits().find(env);
    if (it == limits().end()) {
      it = limits().emplace(env, 0.0).first;
      // Forget the setting when the environment (a Worker) goes away.
      napi_add_env_cleanup_hook(
          env,
          [](void* e) {
            std::lock_guard<std::mutex> l(limitsMutex);
            limits().erase(static_cast<napi_env>(e));
          },
          static_cast<napi_env>(env));
    }
    previous = it->second;
    it->second = bytes;
  }
  return Napi::Number::New(env, previous);
}

namespace {

// The fixed limit of this environment, or 0 for 'auto'.
double fixedLimit(Napi::Env env) {
  std::lock_guard<std::mutex> lock(limitsMutex);
  auto it = limits().find(env);
  return it != limits().end() ? it->second : 0.0;
}

// Under 'auto', requests up to this size are not checked against /proc/meminfo (reading it costs
// tens of microseconds, more than the small calls themselves); an allocation that fails anyway is a
// RangeError through the exports wrapper.
constexpr double kUncheckedBytes = 16.0 * 1024 * 1024;

}  // namespace

void refuseMemory(Napi::Env env, double bytes, double limit, const std::string& what) {
  throwRangeJs(env, "Not enough memory for " + what + ": it needs " + formatBytes(bytes) + ", over the memory limit of " +
                        formatBytes(limit) + "; reduce the problem size or raise the limit with setMemoryLimit()");
}

bool withinMemoryLimit(Napi::Env env, double bytes, double* limit) {
  const double fixed = fixedLimit(env);
  if (fixed > 0) {
    *limit = fixed;
    return bytes <= fixed;
  }
  if (bytes <= kUncheckedBytes) return true;
  *limit = availableMemory();
  return bytes <= *limit;
}

void checkMemory(Napi::Env env, double bytes, const std::string& what) {
  double limit = 0;
  if (!withinMemoryLimit(env, bytes, &limit)) refuseMemory(env, bytes, limit, what);
}

// ---- results ---------------------------------------------------------------------------------------------

Napi::Float64Array newFloat64(Napi::Env env, std::size_t n, const std::string& what) {
  if (static_cast<double>(n) > kMaxTypedArrayLength)
    throwRangeJs(env, "Expected at most 4294967296 values (the longest Float64Array) for " + what + " but it has " +
                          std::to_string(n));
  checkMemory(env, float64Bytes({static_cast<double>(n)}), what);
  try {
    return Napi::Float64Array::New(env, n);
  } catch (const Napi::Error&) {
    // V8 could not make the array (a failure napi reports instead of aborting): clear it, say why.
    env.GetAndClearPendingException();
    throwRangeJs(env, "Not enough memory for " + what + ": it needs " + formatBytes(float64Bytes({static_cast<double>(n)})) +
                          " that could not be allocated");
  }
}

Napi::Float64Array newFloat64Array(Napi::Env env, const double* data, std::size_t n, const std::string& what) {
  Napi::Float64Array out = newFloat64(env, n, what);
  if (n) std::copy(data, data + n, out.Data());
  return out;
}

}  // namespace nsa::addon
