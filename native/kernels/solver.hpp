// The one solver contract of every iterative method (NSA-Flow in all its forms, NMF, Stratified-NMF,
// NTF, Stratified-NTF): why a run stopped, and the scale-free stationarity certificate.
// lib/solver.ts is its TypeScript side; the names below are the strings every result carries.
#pragma once
#include <chrono>
#include <cmath>
#include <cstddef>
#include <vector>

namespace nsa {

enum class StopReason {
  GradMap,        // the certificate (gradient mapping) fell to the tolerance: a certified stationary point
  Plateau,        // the energy/loss stopped decreasing by the method's own rule (no stationarity claim)
  LineSearch,     // the line search found no decrease; certified only within 1e3·tolerance
  Stalled,        // no step was ever accepted (the run returns its start)
  MaxIterations,  // the iteration limit
  NonFinite,      // the energy became non-finite; the best finite iterate is returned
};

inline const char* stopReasonName(StopReason r) {
  switch (r) {
    case StopReason::GradMap: return "gradMap";
    case StopReason::Plateau: return "plateau";
    case StopReason::LineSearch: return "lineSearch";
    case StopReason::Stalled: return "stalled";
    case StopReason::NonFinite: return "nonFinite";
    case StopReason::MaxIterations: break;
  }
  return "maxIterations";
}

// One entry's share of gradientMapping's square (below), (P(y − yy·g) − y)², and the mapping from the
// sum of those shares and yy: the pieces for a solver that sums them inside a pass of its own.
inline double gradientMappingShare(double y, double g, double yy, bool nonnegative) {
  double t = y - yy * g;
  if (nonnegative) t = 0.0 > t ? 0.0 : t;  // max(t, 0) keeping NaN; a select, not a branch
  const double d = t - y;
  return d * d;
}
inline double gradientMappingFromSums(double d2, double yy) {
  if (!(yy > 0)) return yy == 0 ? 0.0 : NAN;
  return std::sqrt(d2 / yy);
}

// The scale-free gradient mapping ‖P(Y − ‖Y‖²·G) − Y‖ / ‖Y‖ of a point Y with gradient G of a
// scale-free energy (P = max(·, 0) when `nonnegative`, else the identity). It is 0 exactly at a KKT
// point of min E(Y) s.t. Y ≥ 0; the step ‖Y‖² makes it invariant to the units of Y (E's gradient
// scales as 1/‖Y‖). Returns 0 for Y = 0 (nothing to move) and NaN when an input is not finite.
// `yy` = ‖Y‖², summed in index order (a solver that already made a pass over Y passes it in, saving one).
inline double gradientMappingGivenNorm(const double* Y, const double* G, std::size_t n, bool nonnegative, double yy) {
  if (!(yy > 0)) return yy == 0 ? 0.0 : NAN;
  double d2 = 0;
  for (std::size_t i = 0; i < n; ++i) d2 += gradientMappingShare(Y[i], G[i], yy, nonnegative);
  return gradientMappingFromSums(d2, yy);
}

inline double gradientMapping(const double* Y, const double* G, std::size_t n, bool nonnegative) {
  double yy = 0;
  for (std::size_t i = 0; i < n; ++i) yy += Y[i] * Y[i];
  return gradientMappingGivenNorm(Y, G, n, nonnegative, yy);
}

// The certificate of several factor blocks: the largest, NaN when any is NaN (std::max drops a NaN).
inline double worstCertificate(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return NAN;
  return a > b ? a : b;
}

// The loss trace of the NMF family (NMF, Stratified-NMF, NTF, Stratified-NTF): one entry per recorded
// iteration — the iterations completed, the milliseconds since the solve started and the loss then.
// lib/solver.ts's SolverTraces is its JS side (with the methods' normalized loss added there).
struct LossTrace {
  std::vector<double> iteration, timeMs, loss;

  // Empties the trace and starts its clock (call when the solve starts).
  void start() {
    iteration.clear();
    timeMs.clear();
    loss.clear();
    started_ = std::chrono::steady_clock::now();
  }
  void record(double iterationsDone, double value) {
    iteration.push_back(iterationsDone);
    timeMs.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count());
    loss.push_back(value);
  }

 private:
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace nsa
