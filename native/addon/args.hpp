// The one argument contract of every binding: the addon's second guard behind lib/'s validation.
//
// A binding works in four phases, so that no user code (a getter, a Proxy trap) can run once a data
// pointer has been taken (a getter that detaches or transfers a buffer already read would leave the
// pointer dangling):
//   (a) read: `arg` and `Fields` read every positional argument and every field of every argument
//       object exactly once, up front (`Fields` and `elements` are the only readers that can run JS);
//   (b) check: types exactly (a Float64Array, not any view), lengths, finiteness, integer ranges, and
//       the memory the call will need (`checkMemory`, before anything is allocated);
//   (c) take data pointers (`doubles`, `int32s`): a buffer another thread can change (backed by a
//       SharedArrayBuffer) is copied first, and value checks run on what the kernel will read;
//   (d) copy whatever an async job keeps.
// Missing required fields are TypeErrors that name them: defaults live only in the TypeScript specs.
// Messages follow lib/validate.ts: "Expected <what> for <name> but received <value>".
#pragma once
#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace nsa::addon {

[[noreturn]] void throwType(Napi::Env env, const std::string& message);
[[noreturn]] void throwRangeJs(Napi::Env env, const std::string& message);

// ---- (a) reading ---------------------------------------------------------------------------------

// One JS value and the name messages give it ("cols", "options.maxIterations", "strata[2].data").
struct In {
  Napi::Value value;
  std::string name;
};

// Positional argument i (undefined when missing).
In arg(const Napi::CallbackInfo& info, std::size_t i, std::string name);

// Every listed field of an object argument, read once, in order, when constructed.
class Fields {
 public:
  Fields(const In& object, std::initializer_list<const char*> keys);
  const In& operator[](const char* key) const;
  // Whether the field holds something other than undefined (an optional field that was given).
  bool has(const char* key) const;

 private:
  std::vector<std::pair<std::string, In>> fields_;
};

// The elements of a JS array, read once: a length in [minLength, maxLength], then each element.
std::vector<In> elements(const In& array, std::size_t minLength, std::size_t maxLength);

// Whether a value is undefined or null (an optional argument left out).
bool absent(const In& v);

// ---- (b) checking --------------------------------------------------------------------------------

// "NaN", "65536", "the string \"x\"", "a Float64Array of length 3", "an object"… (as describeValue).
std::string describe(const Napi::Value& v);

// A number (not NaN: a TypeError, as in lib/validate.ts).
double number(const In& v);
double finiteNumber(const In& v);
// A number in [lo, hi]; `what` describes the range in messages ("a number in [0, 1]").
double numberIn(const In& v, double lo, double hi);
// An integer in [lo, hi] (≤ 2^53).
std::int64_t integerIn(const In& v, std::int64_t lo, std::int64_t hi);
int intIn(const In& v, int lo, int hi);
// A dimension: an integer in [min, 2^31 − 1] (BLAS takes int sizes).
std::size_t dimension(const In& v, std::size_t min = 1);
bool boolean(const In& v);
std::string string(const In& v);

template <class E>
E oneOf(const In& v, const std::map<std::string, E>& names) {
  std::string valid;
  for (auto& [k, e] : names) valid += (valid.empty() ? "'" : ", '") + k + "'";
  if (!v.value.IsString())
    throwType(v.value.Env(), "Expected one of " + valid + " for " + v.name + " but received " + describe(v.value));
  auto it = names.find(v.value.As<Napi::String>().Utf8Value());
  if (it == names.end())
    throwRangeJs(v.value.Env(), "Expected one of " + valid + " for " + v.name + " but received " + describe(v.value));
  return it->second;
}

// A typed array checked for its exact kind and length, whose data pointer is not taken yet.
struct TypedIn {
  Napi::TypedArray array;
  std::string name;
  std::size_t length = 0;
  bool shared = false;  // backed by a SharedArrayBuffer: another thread may write it at any time
};
constexpr std::size_t kAnyLength = static_cast<std::size_t>(-1);
// A Float64Array / Int32Array (no other view), not detached, of `length` elements (or any length).
TypedIn float64(const In& v, std::size_t length = kAnyLength, const char* lengthMeaning = nullptr);
TypedIn int32(const In& v, std::size_t length = kAnyLength, const char* lengthMeaning = nullptr);

// n1·n2·… with overflow refused (a RangeError naming `what`).
std::size_t product(Napi::Env env, std::initializer_list<std::size_t> dims, const std::string& what);

// ---- memory ------------------------------------------------------------------------------------------

// Bytes of 8-byte values: a sum of products of counts, in double (an overflowing estimate is +inf,
// which is over any limit, so no estimate can wrap around to a small number).
double float64Bytes(std::initializer_list<double> dims);
// RangeError "Not enough memory for <what>: it needs N bytes (x GiB), over the memory limit of …",
// the message of lib/memory.ts.
void checkMemory(Napi::Env env, double bytes, const std::string& what);
// The same with `what` built only on refusal (the bindings' descriptions cost more than the check).
bool withinMemoryLimit(Napi::Env env, double bytes, double* limit);
[[noreturn]] void refuseMemory(Napi::Env env, double bytes, double limit, const std::string& what);
template <class What, class = decltype(std::declval<What>()())>
void checkMemory(Napi::Env env, double bytes, What&& what) {
  double limit = 0;
  if (!withinMemoryLimit(env, bytes, &limit)) refuseMemory(env, bytes, limit, what());
}

// ---- (c) taking data ------------------------------------------------------------------------------

// Throws the TypeError for an array detached or shrunk after it was checked.
[[noreturn]] void changedSinceRead(const TypedIn& t);

// Values the kernel may read: the caller's buffer, or an owned copy (when asked, or always when the
// buffer is shared, so that what was validated is what is used).
template <class T>
class Stable {
 public:
  const T* data() const { return ptr_; }
  std::size_t size() const { return n_; }
  // The values as an owned vector (moved when already a copy).
  std::vector<T> owned() && { return own_.empty() && n_ ? std::vector<T>(ptr_, ptr_ + n_) : std::move(own_); }
  const T& operator[](std::size_t i) const { return ptr_[i]; }

  static Stable take(const TypedIn& t, bool copy) {
    Stable s;
    s.n_ = t.length;
    // The array as it is now: the checks ran on what it was when read, so a buffer detached (or a
    // resizable one shrunk) since then is refused here, before any element is touched.
    void* raw = nullptr;
    std::size_t length = 0;
    napi_get_typedarray_info(t.array.Env(), t.array, nullptr, &length, &raw, nullptr, nullptr);
    if (length != t.length || (t.length && raw == nullptr)) changedSinceRead(t);
    const T* p = t.length ? static_cast<const T*>(raw) : nullptr;
    if ((copy || t.shared) && t.length) {
      s.own_.assign(p, p + t.length);
      s.ptr_ = s.own_.data();
    } else {
      s.ptr_ = p;
    }
    return s;
  }

 private:
  const T* ptr_ = nullptr;
  std::size_t n_ = 0;
  std::vector<T> own_;
};
using Doubles = Stable<double>;
using Int32s = Stable<std::int32_t>;
inline Doubles doubles(const TypedIn& t, bool copy = false) { return Doubles::take(t, copy); }
inline Int32s int32s(const TypedIn& t, bool copy = false) { return Int32s::take(t, copy); }

// Value checks on taken data (RangeError naming `name`).
void requireFinite(Napi::Env env, const double* x, std::size_t n, const std::string& name);
// A number as JavaScript prints it (`${v}`), for messages.
std::string jsNumber(double v);
void requireNonNegativeFinite(Napi::Env env, const double* x, std::size_t n, const std::string& name);

// ---- results -------------------------------------------------------------------------------------

// The longest Float64Array V8 can make (2^32 elements in Node 20).
constexpr double kMaxTypedArrayLength = 4294967296.0;
// A fresh Float64Array of n elements, checked against V8's limit and the memory limit; a failed
// allocation is a RangeError naming `what`, never V8's fatal "Allocation failed".
Napi::Float64Array newFloat64(Napi::Env env, std::size_t n, const std::string& what);
// The same, filled with a copy of data.
Napi::Float64Array newFloat64Array(Napi::Env env, const double* data, std::size_t n, const std::string& what = "a result");
inline Napi::Float64Array newFloat64Array(Napi::Env env, const std::vector<double>& v, const std::string& what = "a result") {
  return newFloat64Array(env, v.data(), v.size(), what);
}

// ---- the raw setter ----------------------------------------------------------------------------

// setMemoryLimit(bytes) of this environment: 0 = the memory available at each check (MemAvailable,
// else sysconf); returns the previous setting. Exported by info_binding.cpp.
Napi::Value SetMemoryLimit(const Napi::CallbackInfo& info);

}  // namespace nsa::addon
