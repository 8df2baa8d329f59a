// Argument guards shared by the tensor toolkit and the NTF bindings: shapes given as JS arrays, lists
// of Float64Arrays, and numeric fields of an options object. Each throws a TypeError/RangeError that
// names the argument, so a direct call of the raw binding with garbage never reaches a kernel.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "../kernels/tensor.hpp"
#include "common.hpp"

namespace nsa::addon {

// Upper bound on the elements of one tensor (as lib/validate.ts: 2^32).
constexpr double kMaxElements = 4294967296.0;

inline std::size_t positiveInteger(Napi::Env env, const Napi::Value& v, const std::string& what) {
  if (!v.IsNumber()) throwType(env, "Expected a positive integer for " + what);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1) || d != std::floor(d) || d > kMaxElements) throwRangeJs(env, "Expected a positive integer for " + what);
  return static_cast<std::size_t>(d);
}

// A JS array of positive integers with 1 … kMaxTensorOrder entries and a product ≤ 2^32.
inline Shape shapeArg(const Napi::CallbackInfo& info, std::size_t i, const std::string& what,
                      std::size_t minOrder = 1) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsArray()) throwType(env, "Expected an array of dimensions for " + what);
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() < minOrder || a.Length() > kMaxTensorOrder) {
    throwRangeJs(env, "Expected between " + std::to_string(minOrder) + " and " + std::to_string(kMaxTensorOrder) +
                          " dimensions for " + what);
  }
  Shape shape(a.Length());
  double product = 1;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    shape[k] = positiveInteger(env, a.Get(k), what + "[" + std::to_string(k) + "]");
    product *= static_cast<double>(shape[k]);
  }
  if (product > kMaxElements) throwRangeJs(env, "The shape of " + what + " has more than 2^32 elements");
  return shape;
}

// A JS array of positive integers of any non-zero length (sample counts, ranks: one per stratum).
inline std::vector<std::size_t> sizeListArg(const Napi::CallbackInfo& info, std::size_t i, const std::string& what) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsArray()) throwType(env, "Expected an array of positive integers for " + what);
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() < 1) throwRangeJs(env, "Expected a non-empty array for " + what);
  std::vector<std::size_t> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) out[k] = positiveInteger(env, a.Get(k), what + "[" + std::to_string(k) + "]");
  return out;
}

inline Napi::Float64Array float64Value(Napi::Env env, const Napi::Value& v, const std::string& what, std::size_t length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throwType(env, "Expected a Float64Array for " + what);
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  if (a.ElementLength() != length) {
    throwRangeJs(env, "Expected a Float64Array of length " + std::to_string(length) + " for " + what +
                          " but received length " + std::to_string(a.ElementLength()));
  }
  return a;
}

inline Napi::Array arrayArg(const Napi::CallbackInfo& info, std::size_t i, const std::string& what, std::size_t length) {
  if (info.Length() <= i || !info[i].IsArray()) throwType(info.Env(), "Expected an array for " + what);
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() != length) {
    throwRangeJs(info.Env(), "Expected an array of length " + std::to_string(length) + " for " + what);
  }
  return a;
}

inline Napi::Object objectArg(const Napi::CallbackInfo& info, std::size_t i, const std::string& what) {
  if (info.Length() <= i || !info[i].IsObject() || info[i].IsArray()) throwType(info.Env(), "Expected an object for " + what);
  return info[i].As<Napi::Object>();
}

// A finite number field of an options object within [min, max].
inline double numberField(const Napi::Object& o, const char* name, double min, double max) {
  Napi::Env env = o.Env();
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throwType(env, std::string("Expected a number for options.") + name);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max)) throwRangeJs(env, std::string("Expected options.") + name + " in range");
  return d;
}

inline int intField(const Napi::Object& o, const char* name, int min, int max) {
  const double d = numberField(o, name, min, max);
  if (d != std::floor(d)) throwRangeJs(o.Env(), std::string("Expected an integer for options.") + name);
  return static_cast<int>(d);
}

inline bool boolField(const Napi::Object& o, const char* name) { return o.Get(name).ToBoolean(); }

// Rejects negative and non-finite entries (the factorizations need non-negative finite data).
inline void requireNonNegativeFinite(Napi::Env env, const double* x, std::size_t n, const std::string& what) {
  for (std::size_t i = 0; i < n; ++i)
    if (!(x[i] >= 0) || !std::isfinite(x[i])) throwRangeJs(env, "Expected finite non-negative values in " + what);
}

inline Napi::Array float64List(Napi::Env env, const std::vector<std::vector<double>>& xs) {
  Napi::Array out = Napi::Array::New(env, xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) out.Set(static_cast<uint32_t>(i), newFloat64Array(env, xs[i].data(), xs[i].size()));
  return out;
}

}  // namespace nsa::addon
