// Node-API glue shared by every binding file: the module registry, the exports wrapper that turns
// every C++ exception into a JS error, and the mapping of kernel errors to JS errors. The argument
// readers are in args.hpp.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "../kernels/error.hpp"
#include "args.hpp"

namespace nsa::addon {

// Each binding file registers its exports with a static NSA_REGISTER(fn) line.
using Registrar = void (*)(Napi::Env, Napi::Object);
std::vector<Registrar>& registry();
struct Register {
  explicit Register(Registrar f) { registry().push_back(f); }
};
#define NSA_REGISTER(fn) static ::nsa::addon::Register nsa_register_##fn(fn)

// One exported function. Binding files list theirs in a static array and define them with
// exportFunctions, which wraps each one so that a kernel error, std::bad_alloc or any other C++
// exception becomes a JS error (belt and braces: the bindings check memory before allocating).
using Callback = Napi::Value (*)(const Napi::CallbackInfo&);
struct Export {
  const char* name;
  Callback fn;
};
void exportFunction(Napi::Env env, Napi::Object target, const Export& e);
template <std::size_t N>
void exportFunctions(Napi::Env env, Napi::Object target, const Export (&list)[N]) {
  for (const Export& e : list) exportFunction(env, target, e);
}

// A JS error for a kernel error. Numerical failures and cancellations carry a `kind` the TypeScript
// layer turns into NumericalError / AbortError.
Napi::Error toJsError(Napi::Env env, ErrorKind kind, const std::string& message);

// Positional number (used by the async runtime for its progress interval).
double numberArg(const Napi::CallbackInfo& info, std::size_t i, const char* what);

// Runs a sync kernel call, turning kernel errors into JS exceptions.
template <class F>
auto guarded(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const nsa::Error& e) {
    throw toJsError(env, e.kind(), e.what());
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "Not enough memory for this problem: an allocation failed");
  }
}

}  // namespace nsa::addon
