// Build and BLAS information, the BLAS thread setting (process-global in OpenBLAS 0.3.21) and the
// addon's memory limit (args.cpp).
#include <cblas.h>

#include <cstdlib>
#include <string>

#include "../kernels/thread_team.hpp"
#include "common.hpp"

namespace nsa::addon {

namespace {

// The most threads this OpenBLAS build can use: its MAX_THREADS, which openblas_set_num_threads
// silently clamps to. OpenBLAS has no getter for it; its configuration string states it.
int blasThreadLimit() {
  const std::string config = openblas_get_config();
  const std::string key = "MAX_THREADS=";
  const std::size_t at = config.find(key);
  if (at == std::string::npos) return openblas_get_num_procs();
  const int n = std::atoi(config.c_str() + at + key.size());
  return n >= 1 ? n : openblas_get_num_procs();
}

Napi::Value BlasInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("config", Napi::String::New(env, openblas_get_config()));
  o.Set("corename", Napi::String::New(env, openblas_get_corename()));
  o.Set("threads", Napi::Number::New(env, BlasThreadCount::instance().get()));
  o.Set("processors", Napi::Number::New(env, openblas_get_num_procs()));
  o.Set("parallel", Napi::Number::New(env, openblas_get_parallel()));
  o.Set("threadLimit", Napi::Number::New(env, blasThreadLimit()));
  return o;
}

// OpenBLAS keeps at most its build's MAX_THREADS threads (64 in Debian's); more would be ignored.
Napi::Value SetBlasThreads(const Napi::CallbackInfo& info) {
  const int n = intIn(arg(info, 0, "threads"), 1, blasThreadLimit());
  return Napi::Number::New(info.Env(), BlasThreadCount::instance().set(n));  // thread_team.hpp: not under a split pass
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
#ifdef __VERSION__
  o.Set("compiler", Napi::String::New(env, __VERSION__));
#endif
#ifdef NSA_FLOW_BUILD_SYSTEM
  o.Set("buildSystem", Napi::String::New(env, NSA_FLOW_BUILD_SYSTEM));
#endif
  return o;
}

const Export kInfo[] = {
    {"blasInfo", BlasInfo},
    {"setBlasThreads", SetBlasThreads},
    {"buildInfo", BuildInfo},
    {"setMemoryLimit", SetMemoryLimit},
};

void registerInfo(Napi::Env env, Napi::Object exports) { exportFunctions(env, exports, kInfo); }

}  // namespace

NSA_REGISTER(registerInfo);

}  // namespace nsa::addon
