// Node-API glue shared by every binding file: the module registry, the cheap second guard on raw
// arguments (so that calling the binding directly with garbage throws instead of crashing), and the
// mapping of kernel errors to JS errors.
#pragma once
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "../kernels/error.hpp"

namespace nsa::addon {

// Each binding file registers its exports with a static NSA_REGISTER(fn) line.
using Registrar = void (*)(Napi::Env, Napi::Object);
std::vector<Registrar>& registry();
struct Register {
  explicit Register(Registrar f) { registry().push_back(f); }
};
#define NSA_REGISTER(fn) static ::nsa::addon::Register nsa_register_##fn(fn)

// A JS error for a kernel error. Numerical failures and cancellations carry a `kind` the TypeScript
// layer turns into NumericalError / AbortError.
Napi::Error toJsError(Napi::Env env, ErrorKind kind, const std::string& message);

[[noreturn]] void throwType(Napi::Env env, const std::string& message);
[[noreturn]] void throwRangeJs(Napi::Env env, const std::string& message);

// Argument guards. `what` names the argument in messages.
Napi::Float64Array float64Arg(const Napi::CallbackInfo& info, std::size_t i, const char* what,
                              std::size_t expectedLength);
std::size_t sizeArg(const Napi::CallbackInfo& info, std::size_t i, const char* what,
                    std::size_t min = 1);
double numberArg(const Napi::CallbackInfo& info, std::size_t i, const char* what);
int intArg(const Napi::CallbackInfo& info, std::size_t i, const char* what, int min, int max);
std::string stringArg(const Napi::CallbackInfo& info, std::size_t i, const char* what);
// Product of dimensions, refusing overflow and absurd sizes before anything is allocated.
std::size_t checkedProduct(Napi::Env env, std::initializer_list<std::size_t> dims, const char* what);
void requireFinite(Napi::Env env, const Napi::Float64Array& a, const char* what);

// (Y0, X0 | null | undefined, p, k) of the flow solvers, at arguments 0–3: lengths and finiteness
// checked (LAPACK must never see NaN), both copied so the job owns them.
struct StartAndTarget {
  std::vector<double> Y0, X0;
  bool hasX0 = false;
  std::size_t p = 0, k = 0;
};
StartAndTarget startAndTarget(const Napi::CallbackInfo& info);

// Copies a JS-owned result into a fresh Float64Array.
Napi::Float64Array newFloat64Array(Napi::Env env, const double* data, std::size_t n);

// Runs a sync kernel call, turning kernel errors into JS exceptions.
template <class F>
auto guarded(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const nsa::Error& e) {
    throw toJsError(env, e.kind(), e.what());
  } catch (const std::bad_alloc&) {
    throw toJsError(env, ErrorKind::Range, "out of memory for this problem size");
  }
}

}  // namespace nsa::addon
