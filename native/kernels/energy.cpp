#include "energy.hpp"

#include <algorithm>
#include <cmath>

#include "error.hpp"
#include "nsa_energy.hpp"
#include "ortho.hpp"
#include "retraction_core.hpp"

namespace nsa {

namespace {

struct Sums {
  double diff2 = 0, x2 = 0, y2 = 0;  // ‖Y − X0‖², ‖X0‖², ‖Y‖²
};

// Four interleaved partial sums per quantity: a single running sum is bound by the latency of one
// add per element (it was the slowest pass of an iteration); four run in parallel, in a fixed order.
Sums sums(const double* Y, const double* X0, std::size_t n) {
  double d[4] = {0, 0, 0, 0}, x[4] = {0, 0, 0, 0}, y[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (std::size_t l = 0; l < 4; ++l) {
      const double yi = Y[i + l], xi = X0[i + l], di = yi - xi;
      d[l] += di * di;
      x[l] += xi * xi;
      y[l] += yi * yi;
    }
  for (std::size_t l = 0; i < n; ++i, ++l) {
    const double di = Y[i] - X0[i];
    d[l] += di * di;
    x[l] += X0[i] * X0[i];
    y[l] += Y[i] * Y[i];
  }
  Sums s;
  s.diff2 = (d[0] + d[1]) + (d[2] + d[3]);
  s.x2 = (x[0] + x[1]) + (x[2] + x[3]);
  s.y2 = (y[0] + y[1]) + (y[2] + y[3]);
  return s;
}

// F for one matrix, with the operation order of the reference (½·Σ first, then the division).
double fidelityValue(FidelityType t, const Sums& s) {
  switch (t) {
    case FidelityType::Basic:
      return 0.5 * s.diff2;
    case FidelityType::ScaleInvariant:
      return 0.5 * s.diff2 / std::max(s.x2, 1e-12);
    case FidelityType::Symmetric:
    default:
      return 0.5 * s.diff2 / std::max(0.5 * (s.x2 + s.y2), 1e-12);
  }
}

// The orthogonality term O and, when A is non-null, the k×k matrix A with ∇(scale·O) = Y·A, from
// S = YᵀY and y2 = ‖Y‖² (already summed by the caller's pass over Y):
//   scaleInvariant  O = Σ_{i≠j} S_ij²/max(y2², 1e-24),  A = 4·scale·[(S − Diag S)/den − O/y2·I]
//                   (the second term only where the floor is inactive), as ortho.cpp's defectGradient;
//   basic           O = ‖S − I‖²/k²,                     A = 4·scale·(S − I)/k².
// Folding the Y-multiples into A leaves one GEMM and no extra pass over Y for the gradient.
double orthogonalityFactor(const double* Y, std::size_t p, std::size_t k, double y2, OrthogonalityType type,
                           double scale, double* A, Workspace& ws) {
  const std::size_t kk = k * k;
  if (type == OrthogonalityType::ScaleInvariant && y2 <= kDefectSquaredNormFloor) {
    if (A) std::fill(A, A + kk, 0.0);
    return 0.0;
  }
  double* S = ws.get(0, kk);
  gram(Y, p, k, S);
  if (type == OrthogonalityType::ScaleInvariant) {
    // The defect of the shared core (retraction_core.hpp): Σ_{i≠j} S_ij² summed directly over
    // max(y2², kDefectDenominatorFloor); the gradient drops the denominator's derivative where the floor binds.
    const double d = defectOfGram(S, k, y2);
    if (A) {
      const double n2 = y2 * y2;
      const double c = 4.0 * scale / std::max(n2, kDefectDenominatorFloor);
      const double diag = n2 >= kDefectDenominatorFloor ? -4.0 * scale * d / y2 : 0.0;
      for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < k; ++j) A[i * k + j] = i == j ? diag : c * S[i * k + j];
    }
    return d;
  }
  double sum = 0;
  for (std::size_t i = 0; i < k; ++i) {
    S[i * k + i] -= 1.0;
    for (std::size_t j = 0; j < k; ++j) sum += S[i * k + j] * S[i * k + j];
  }
  const double kd = static_cast<double>(kk);
  if (A)
    for (std::size_t i = 0; i < kk; ++i) A[i] = 4.0 * scale / kd * S[i];
  return sum / kd;
}

// The calibration-free fidelity divides by ‖X0‖²: a zero target is refused with the message callers
// of the loop know (CertifiedEnergy's own check would name the certified solvers' terms).
void requireTarget(const double* X0, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (X0[i] != 0) return;
  throwRange("Expected a target X0 with a nonzero entry (the calibration-free fidelity ‖Y − X0‖²/‖X0‖² divides by ‖X0‖²) but received X0 = 0");
}

}  // namespace

namespace {
CertifiedData targetData(const double* X0, std::size_t p, std::size_t k) {
  requireTarget(X0, p * k);
  CertifiedData d;
  d.p = p;
  d.k = k;
  d.X0 = X0;
  return d;
}
CertifiedEnergyOptions targetOptions(const EnergyOptions& o) {
  CertifiedEnergyOptions c;
  c.mode = CertifiedMode::Target;
  c.w = o.w;
  c.orthogonality = o.functional;
  return c;
}
}  // namespace

// The calibration-free energy is the certified solvers' 'target' mode: one implementation of its terms
// (nsa_energy.cpp), so that the loop's 'energy' weighting and nsaEnergy(mode 'target') agree bit for bit.
CalibrationFreeEnergy::CalibrationFreeEnergy(const double* X0, std::size_t p, std::size_t k, const EnergyOptions& o)
    : target_(targetOptions(o), targetData(X0, p, k)) {}

EnergyValue CalibrationFreeEnergy::operator()(const double* Y, double* G) {
  const CertifiedTerms t = target_.evaluate(Y, G);
  EnergyValue e;
  e.fidelity = t.fidelity;
  e.orthogonality = t.orthogonality;
  e.total = t.energy;
  return e;
}

EnergyValue energy(const double* Y, const double* X0, std::size_t p, std::size_t k,
                   const EnergyOptions& o, double* G, Workspace& ws) {
  if (o.weighting == Weighting::CalibrationFree) return CalibrationFreeEnergy(X0, p, k, o)(Y, G);
  const std::size_t n = p * k;
  const Sums s = sums(Y, X0, n);
  double* A = G ? ws.get(1, k * k) : nullptr;
  EnergyValue e;
  const double F = fidelityValue(o.fidelity, s);
  const double O = orthogonalityFactor(Y, p, k, s.y2, o.orthogonality, o.w * o.cOrth, A, ws);
  e.fidelity = F * o.fidEta;
  e.orthogonality = o.cOrth * O;
  e.total = e.fidelity * (1.0 - o.w) + e.orthogonality * o.w;
  if (G) {
    // ∂F/∂Y: (Y − X0)/den, and for `symmetric` also −F·Y/den (den = ½(‖X0‖² + ‖Y‖²) depends on Y
    // unless it is floored).
    const double a = (1.0 - o.w) * o.fidEta;
    double den = 1.0, yCoef = 0.0;
    if (o.fidelity == FidelityType::ScaleInvariant) {
      den = std::max(s.x2, 1e-12);
    } else if (o.fidelity == FidelityType::Symmetric) {
      const double raw = 0.5 * (s.x2 + s.y2);
      den = std::max(raw, 1e-12);
      if (raw >= 1e-12) yCoef = -F / den;
    }
    const double c = a / den, cy = a * yCoef;
    for (std::size_t r0 = 0, rows = rowBlock(k); r0 < p; r0 += rows) {
      const std::size_t m = std::min(rows, p - r0);
      gemm(false, false, m, k, k, 1.0, Y + r0 * k, A, 0.0, G + r0 * k);
      double* __restrict g = G + r0 * k;
      const double* __restrict y = Y + r0 * k;
      const double* __restrict x = X0 + r0 * k;
      for (std::size_t i = 0; i < m * k; ++i) g[i] += c * (y[i] - x[i]) + cy * y[i];
    }
  }
  return e;
}

EnergyValue energyBatch(const double* Y, const double* X0, std::size_t B, std::size_t p,
                        std::size_t k, const EnergyOptions& o, Workspace& ws) {
  const std::size_t n = p * k;
  const double Bd = static_cast<double>(B);
  double F = 0, O = 0;
  if (o.weighting == Weighting::CalibrationFree) {
    for (std::size_t b = 0; b < B; ++b) {
      const EnergyValue one = CalibrationFreeEnergy(X0 + b * n, p, k, o)(Y + b * n, nullptr);
      F += one.fidelity;
      O += one.orthogonality;
    }
    EnergyValue e;
    e.fidelity = F / Bd;
    e.orthogonality = O / Bd;
    e.total = e.fidelity * (1.0 - o.w) + e.orthogonality * o.w;
    return e;
  }
  for (std::size_t b = 0; b < B; ++b) {
    const Sums s = sums(Y + b * n, X0 + b * n, n);
    // basic: ½ of the sum over the whole batch; the ratios: mean of the per-element ratios.
    F += o.fidelity == FidelityType::Basic ? 0.5 * s.diff2 : fidelityValue(o.fidelity, s);
    if (o.orthogonality == OrthogonalityType::ScaleInvariant) {
      // the reference's per-element floor of the batch form (kBatchDefectDenominatorFloor on ‖Y_b‖⁴)
      if (s.y2 > kDefectSquaredNormFloor) {
        double* S = ws.get(0, k * k);
        gram(Y + b * n, p, k, S);
        O += offDiagonalEnergy(S, k) / std::max(s.y2 * s.y2, kBatchDefectDenominatorFloor);
      }
    } else {
      O += orthogonalityFactor(Y + b * n, p, k, s.y2, OrthogonalityType::Basic, 0.0, nullptr, ws);
    }
  }
  if (o.fidelity != FidelityType::Basic) F /= Bd;
  O /= Bd;
  EnergyValue e;
  e.fidelity = F * o.fidEta;
  e.orthogonality = o.cOrth * O;
  e.total = e.fidelity * (1.0 - o.w) + e.orthogonality * o.w;
  return e;
}

}  // namespace nsa
