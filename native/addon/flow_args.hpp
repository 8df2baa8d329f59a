// The (Y0, X0 | null, p, k) arguments both flow solvers (nsa_flow_binding, explicit_flow_binding)
// take first, and the memory of their gradient machinery, which both share.
#pragma once
#include <optional>

#include "../kernels/optimizers.hpp"
#include "args.hpp"

namespace nsa::addon {

// (a)+(b): dimensions and exact Float64Arrays of p·k values; no data pointer is taken yet.
struct FlowStart {
  std::size_t p = 0, k = 0;
  TypedIn Y0;
  std::optional<TypedIn> X0;
};
inline FlowStart flowStart(const Napi::CallbackInfo& info) {
  FlowStart s;
  s.p = dimension(arg(info, 2, "rows"));
  s.k = dimension(arg(info, 3, "cols"));
  const std::size_t n = product(info.Env(), {s.p, s.k}, "Y0");
  s.Y0 = float64(arg(info, 0, "Y0"), n, "rows·cols");
  In X0 = arg(info, 1, "X0");
  if (!absent(X0)) s.X0 = float64(X0, n, "rows·cols");
  return s;
}

// (c)+(d): owned, finite copies (LAPACK must never see NaN), so the job keeps nothing of the caller's.
struct StartAndTarget {
  std::vector<double> Y0, X0;
  bool hasX0 = false;
  std::size_t p = 0, k = 0;
};
inline StartAndTarget takeStart(Napi::Env env, const FlowStart& s) {
  StartAndTarget in;
  in.p = s.p;
  in.k = s.k;
  in.Y0 = doubles(s.Y0, true).owned();
  requireFinite(env, in.Y0.data(), in.Y0.size(), "Y0");
  if (s.X0) {
    in.X0 = doubles(*s.X0, true).owned();
    requireFinite(env, in.X0.data(), in.X0.size(), "X0");
    in.hasX0 = true;
  }
  return in;
}

// Doubles of the differentiable retraction (vjp.cpp) for a p×k matrix and T Newton–Schulz steps: the
// forward pass keeps every iterate ((T+1)·n and T·k²), plus a dozen n- and k×k-sized buffers.
inline double retractionVjpDoubles(double p, double k, double T) {
  const double n = p * k, kk = k * k;
  return (T + 1) * n + (T > 1 ? T : 1) * kk + 14 * n + 30 * kk + 4 * k;
}

// An optimizer option (its name, as in lib/nsa-flow/optimizers.ts) of either flow solver.
inline OptimizerKind optimizerOf(const In& v) {
  const std::string s = string(v);
  OptimizerKind kind;
  if (!optimizerKindFromName(s, &kind))
    throwRangeJs(v.value.Env(), "Expected an optimizer name for " + v.name + " but received " + describe(v.value));
  return kind;
}

}  // namespace nsa::addon
