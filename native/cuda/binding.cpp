// The CUDA addon's Node-API surface (build/cuda/nsa_flow_cuda.node, built by scripts/build-cuda.cjs,
// loaded by lib/cuda.ts in try/catch). lib/ validates every argument first; these readers check them
// again, so a direct call with garbage throws a TypeError/RangeError naming the argument. Device
// failures become Errors with `kind` ('outOfMemory' with `bytes` and `freeBytes', or 'cuda'), which
// lib/cuda.ts maps to RangeError / NumericalError.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "device.hpp"

namespace {

using nsa::cuda::DeviceError;

double finiteNumber(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string("Expected a number for ") + name);
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v)) throw Napi::RangeError::New(info.Env(), std::string("Expected a finite number for ") + name);
  return v;
}

std::size_t dimension(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  const double v = finiteNumber(info, i, name);
  if (v < 1 || v != std::floor(v) || v > 9007199254740991.0)
    throw Napi::RangeError::New(info.Env(), std::string("Expected a positive integer for ") + name);
  return static_cast<std::size_t>(v);
}

Napi::Float64Array matrix(const Napi::CallbackInfo& info, std::size_t i, const char* name, std::size_t length) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(info.Env(), std::string("Expected a Float64Array for ") + name);
  Napi::Float64Array a = info[i].As<Napi::Float64Array>();
  if (a.ElementLength() != length)
    throw Napi::RangeError::New(info.Env(), std::string("Expected ") + std::to_string(length) + " entries for " + name +
                                                " but received " + std::to_string(a.ElementLength()));
  return a;
}

// A DeviceError as a JS Error lib/cuda.ts recognizes.
Napi::Error deviceError(Napi::Env env, const DeviceError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("kind", Napi::String::New(env, e.outOfMemory ? "outOfMemory" : "cuda"));
  if (e.outOfMemory) {
    err.Set("bytes", Napi::Number::New(env, e.bytes));
    err.Set("freeBytes", Napi::Number::New(env, e.freeBytes));
  }
  return err;
}

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> dirs;
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "Expected an array of strings for libraryDirs");
  Napi::Array a = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value v = a.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(env, "Expected an array of strings for libraryDirs");
    dirs.push_back(v.As<Napi::String>().Utf8Value());
  }
  const nsa::cuda::Probe p = nsa::cuda::probe(dirs);
  Napi::Object o = Napi::Object::New(env);
  o.Set("usable", Napi::Boolean::New(env, p.usable));
  if (!p.usable) o.Set("reason", Napi::String::New(env, p.reason));
  if (p.hasDevice) {
    o.Set("deviceName", Napi::String::New(env, p.deviceName));
    o.Set("memoryBytes", Napi::Number::New(env, p.memoryBytes));
  }
  return o;
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  const nsa::cuda::MemoryInfo m = nsa::cuda::memoryInfo();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("free", Napi::Number::New(info.Env(), m.freeBytes));
  o.Set("total", Napi::Number::New(info.Env(), m.totalBytes));
  return o;
}

// polarGram(Y, p, k, w, conditionLimit) → {outcome, data}
Napi::Value PolarGram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t p = dimension(info, 1, "p");
  const std::size_t k = dimension(info, 2, "k");
  if (p < k) throw Napi::RangeError::New(env, "Expected p ≥ k for the polar retraction");
  Napi::Float64Array Y = matrix(info, 0, "Y", p * k);
  const double w = finiteNumber(info, 3, "w");
  if (!(w >= 0 && w <= 1)) throw Napi::RangeError::New(env, "Expected w in [0, 1]");
  const double limit = finiteNumber(info, 4, "conditionLimit");
  if (!(limit >= 1)) throw Napi::RangeError::New(env, "Expected conditionLimit ≥ 1");
  Napi::Float64Array out = Napi::Float64Array::New(env, p * k);
  nsa::cuda::GramOutcome outcome;
  try {
    outcome = nsa::cuda::polarGram(Y.Data(), p, k, w, limit, out.Data());
  } catch (const DeviceError& e) {
    throw deviceError(env, e);
  }
  Napi::Object o = Napi::Object::New(env);
  const char* name = outcome == nsa::cuda::GramOutcome::Done        ? "done"
                     : outcome == nsa::cuda::GramOutcome::Unchanged ? "unchanged"
                                                                    : "illConditioned";
  o.Set("outcome", Napi::String::New(env, name));
  o.Set("data", out);
  return o;
}

// nmfMuIterations(A, W, H, n, m, r, epsilon, iterations) → {W, H, deviceMs}: for bench/gpu-check.mjs.
Napi::Value NmfMuIterations(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t n = dimension(info, 3, "n");
  const std::size_t m = dimension(info, 4, "m");
  const std::size_t r = dimension(info, 5, "r");
  Napi::Float64Array A = matrix(info, 0, "A", n * m);
  Napi::Float64Array W0 = matrix(info, 1, "W", n * r);
  Napi::Float64Array H0 = matrix(info, 2, "H", r * m);
  const double eps = finiteNumber(info, 6, "epsilon");
  if (!(eps >= 0)) throw Napi::RangeError::New(env, "Expected epsilon ≥ 0");
  const double iterations = finiteNumber(info, 7, "iterations");
  if (!(iterations >= 0 && iterations <= 1e6 && iterations == std::floor(iterations)))
    throw Napi::RangeError::New(env, "Expected an integer in [0, 1e6] for iterations");
  Napi::Float64Array W = Napi::Float64Array::New(env, n * r);
  Napi::Float64Array H = Napi::Float64Array::New(env, r * m);
  std::copy(W0.Data(), W0.Data() + n * r, W.Data());
  std::copy(H0.Data(), H0.Data() + r * m, H.Data());
  double ms = 0;
  try {
    ms = nsa::cuda::nmfMuIterations(A.Data(), n, m, r, eps, static_cast<int>(iterations), W.Data(), H.Data());
  } catch (const DeviceError& e) {
    throw deviceError(env, e);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("W", W);
  o.Set("H", H);
  o.Set("deviceMs", Napi::Number::New(env, ms));
  return o;
}

Napi::Float64Array toArray(Napi::Env env, const std::vector<double>& v) {
  Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

// nmfMu(A, W, H, n, m, r, epsilon, maxIterations, lossEvery, tolerance)
//   → {W, H, iterations, plateau, trace: {iteration, timeMs, loss}}
Napi::Value NmfMu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t n = dimension(info, 3, "n");
  const std::size_t m = dimension(info, 4, "m");
  const std::size_t r = dimension(info, 5, "r");
  Napi::Float64Array A = matrix(info, 0, "A", n * m);
  Napi::Float64Array W0 = matrix(info, 1, "W", n * r);
  Napi::Float64Array H0 = matrix(info, 2, "H", r * m);
  const double eps = finiteNumber(info, 6, "epsilon");
  if (!(eps >= 0)) throw Napi::RangeError::New(env, "Expected epsilon ≥ 0");
  const double maxIterations = finiteNumber(info, 7, "maxIterations");
  if (!(maxIterations >= 0 && maxIterations <= 1073741824.0 && maxIterations == std::floor(maxIterations)))
    throw Napi::RangeError::New(env, "Expected an integer in [0, 2^30] for maxIterations");
  const double lossEvery = finiteNumber(info, 8, "lossEvery");
  if (!(lossEvery >= 1 && lossEvery <= 1073741824.0 && lossEvery == std::floor(lossEvery)))
    throw Napi::RangeError::New(env, "Expected an integer in [1, 2^30] for lossEvery");
  const double tolerance = finiteNumber(info, 9, "tolerance");
  if (!(tolerance >= 0)) throw Napi::RangeError::New(env, "Expected tolerance ≥ 0");
  Napi::Float64Array W = Napi::Float64Array::New(env, n * r);
  Napi::Float64Array H = Napi::Float64Array::New(env, r * m);
  std::copy(W0.Data(), W0.Data() + n * r, W.Data());
  std::copy(H0.Data(), H0.Data() + r * m, H.Data());
  nsa::cuda::NmfMuRun run;
  try {
    run = nsa::cuda::nmfMuSolve(A.Data(), n, m, r, eps, static_cast<int>(maxIterations), static_cast<int>(lossEvery),
                                tolerance, W.Data(), H.Data());
  } catch (const DeviceError& e) {
    throw deviceError(env, e);
  }
  Napi::Object trace = Napi::Object::New(env);
  trace.Set("iteration", toArray(env, run.iteration));
  trace.Set("timeMs", toArray(env, run.timeMs));
  trace.Set("loss", toArray(env, run.loss));
  Napi::Object o = Napi::Object::New(env);
  o.Set("W", W);
  o.Set("H", H);
  o.Set("iterations", Napi::Number::New(env, run.iterations));
  o.Set("plateau", Napi::Boolean::New(env, run.plateau));
  o.Set("trace", trace);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("memory", Napi::Function::New(env, Memory, "memory"));
  exports.Set("polarGram", Napi::Function::New(env, PolarGram, "polarGram"));
  exports.Set("nmfMu", Napi::Function::New(env, NmfMu, "nmfMu"));
  exports.Set("nmfMuIterations", Napi::Function::New(env, NmfMuIterations, "nmfMuIterations"));
  return exports;
}

}  // namespace

NODE_API_MODULE(nsa_flow_cuda, Init)
