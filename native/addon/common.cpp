#include "common.hpp"

#include <limits>

namespace nsa::addon {

std::vector<Registrar>& registry() {
  static std::vector<Registrar> r;
  return r;
}

Napi::Error toJsError(Napi::Env env, ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::Type:
      return Napi::TypeError::New(env, message);
    case ErrorKind::Range:
      return Napi::RangeError::New(env, message);
    case ErrorKind::Numerical: {
      Napi::Error e = Napi::Error::New(env, message);
      e.Set("kind", Napi::String::New(env, "numerical"));
      return e;
    }
    case ErrorKind::Aborted:
    default: {
      Napi::Error e = Napi::Error::New(env, message);
      e.Set("kind", Napi::String::New(env, "aborted"));
      return e;
    }
  }
}

void throwType(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }
void throwRangeJs(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

Napi::Float64Array float64Arg(const Napi::CallbackInfo& info, std::size_t i, const char* what,
                              std::size_t expectedLength) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throwType(env, std::string("Expected a Float64Array for ") + what);
  }
  Napi::Float64Array a = info[i].As<Napi::Float64Array>();
  if (a.ElementLength() != expectedLength) {
    throwRangeJs(env, std::string("Expected a Float64Array of length ") + std::to_string(expectedLength) +
                          " for " + what + " but received length " + std::to_string(a.ElementLength()));
  }
  return a;
}

double numberArg(const Napi::CallbackInfo& info, std::size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throwType(info.Env(), std::string("Expected a number for ") + what);
  return info[i].As<Napi::Number>().DoubleValue();
}

std::size_t sizeArg(const Napi::CallbackInfo& info, std::size_t i, const char* what, std::size_t min) {
  const double v = numberArg(info, i, what);
  if (!(v >= static_cast<double>(min)) || v != std::floor(v) || v > 9007199254740991.0) {
    throwRangeJs(info.Env(), std::string("Expected an integer ≥ ") + std::to_string(min) + " for " + what);
  }
  return static_cast<std::size_t>(v);
}

int intArg(const Napi::CallbackInfo& info, std::size_t i, const char* what, int min, int max) {
  const double v = numberArg(info, i, what);
  if (!(v >= min && v <= max) || v != std::floor(v)) {
    throwRangeJs(info.Env(), std::string("Expected an integer in [") + std::to_string(min) + ", " +
                                 std::to_string(max) + "] for " + what);
  }
  return static_cast<int>(v);
}

std::string stringArg(const Napi::CallbackInfo& info, std::size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) throwType(info.Env(), std::string("Expected a string for ") + what);
  return info[i].As<Napi::String>().Utf8Value();
}

std::size_t checkedProduct(Napi::Env env, std::initializer_list<std::size_t> dims, const char* what) {
  std::size_t n = 1;
  for (std::size_t d : dims) {
    if (d != 0 && n > (std::size_t{1} << 40) / d) throwRangeJs(env, std::string("The shape of ") + what + " is too large");
    n *= d;
  }
  return n;
}

void requireFinite(Napi::Env env, const Napi::Float64Array& a, const char* what) {
  const double* d = a.Data();
  for (std::size_t i = 0; i < a.ElementLength(); ++i)
    if (!std::isfinite(d[i])) throwRangeJs(env, std::string("Expected finite values in ") + what);
}

StartAndTarget startAndTarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  StartAndTarget in;
  in.p = sizeArg(info, 2, "rows");
  in.k = sizeArg(info, 3, "cols");
  const std::size_t n = checkedProduct(env, {in.p, in.k}, "Y0");
  Napi::Float64Array Y0 = float64Arg(info, 0, "Y0", n);
  requireFinite(env, Y0, "Y0");
  in.Y0.assign(Y0.Data(), Y0.Data() + n);
  if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) {
    Napi::Float64Array X0 = float64Arg(info, 1, "X0", n);
    requireFinite(env, X0, "X0");
    in.X0.assign(X0.Data(), X0.Data() + n);
    in.hasX0 = true;
  }
  return in;
}

Napi::Float64Array newFloat64Array(Napi::Env env, const double* data, std::size_t n) {
  Napi::Float64Array out = Napi::Float64Array::New(env, n);
  if (n) std::copy(data, data + n, out.Data());
  return out;
}

}  // namespace nsa::addon
