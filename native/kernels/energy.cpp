#include "energy.hpp"

#include <algorithm>
#include <cmath>

#include "ortho.hpp"

namespace nsa {

namespace {

struct Sums {
  double diff2 = 0, x2 = 0, y2 = 0;  // ‖Y − X0‖², ‖X0‖², ‖Y‖²
};

Sums sums(const double* Y, const double* X0, std::size_t n) {
  Sums s;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = Y[i] - X0[i];
    s.diff2 += d * d;
    s.x2 += X0[i] * X0[i];
    s.y2 += Y[i] * Y[i];
  }
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

// ‖YᵀY − I‖²/k²; with G, adds scale·∇ = scale·4Y(S − I)/k² to G.
double basicOrthogonalityWithGradient(const double* Y, std::size_t p, std::size_t k, double* G,
                                      double scale, Workspace& ws) {
  double* S = ws.get(0, k * k);
  gram(Y, p, k, S);
  double sum = 0;
  for (std::size_t i = 0; i < k; ++i) {
    S[i * k + i] -= 1.0;
    for (std::size_t j = 0; j < k; ++j) sum += S[i * k + j] * S[i * k + j];
  }
  const double kk = static_cast<double>(k * k);
  if (G) gemm(false, false, p, k, k, 4.0 * scale / kk, Y, S, 1.0, G);
  return sum / kk;
}

}  // namespace

EnergyValue energy(const double* Y, const double* X0, std::size_t p, std::size_t k,
                   const EnergyOptions& o, double* G, Workspace& ws) {
  const std::size_t n = p * k;
  const Sums s = sums(Y, X0, n);
  const double F = fidelityValue(o.fidelity, s);
  double O;
  const double orthScale = o.w * o.cOrth;
  if (o.orthogonality == OrthogonalityType::ScaleInvariant) {
    if (G) {
      O = defectGradient(Y, p, k, G, orthScale, 1e-24, ws);  // overwrites G
    } else {
      O = defect(Y, p, k, ws);
    }
  } else {
    if (G) std::fill(G, G + n, 0.0);
    O = basicOrthogonalityWithGradient(Y, p, k, G, orthScale, ws);
  }
  EnergyValue e;
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
    for (std::size_t i = 0; i < n; ++i) G[i] += c * (Y[i] - X0[i]) + cy * Y[i];
  }
  return e;
}

EnergyValue energyBatch(const double* Y, const double* X0, std::size_t B, std::size_t p,
                        std::size_t k, const EnergyOptions& o, Workspace& ws) {
  const std::size_t n = p * k;
  double F = 0, O = 0;
  for (std::size_t b = 0; b < B; ++b) {
    const Sums s = sums(Y + b * n, X0 + b * n, n);
    // basic: ½ of the sum over the whole batch; the ratios: mean of the per-element ratios.
    F += o.fidelity == FidelityType::Basic ? 0.5 * s.diff2 : fidelityValue(o.fidelity, s);
    if (o.orthogonality == OrthogonalityType::ScaleInvariant) {
      if (s.y2 > 1e-12) {
        double* S = ws.get(0, k * k);
        gram(Y + b * n, p, k, S);
        double all = 0, diag = 0;
        for (std::size_t i = 0; i < k * k; ++i) all += S[i] * S[i];
        for (std::size_t i = 0; i < k; ++i) diag += S[i * k + i] * S[i * k + i];
        O += (all - diag) / std::max(s.y2 * s.y2, 1e-12);
      }
    } else {
      O += basicOrthogonalityWithGradient(Y + b * n, p, k, nullptr, 0.0, ws);
    }
  }
  const double Bd = static_cast<double>(B);
  if (o.fidelity != FidelityType::Basic) F /= Bd;
  O /= Bd;
  EnergyValue e;
  e.fidelity = F * o.fidEta;
  e.orthogonality = o.cOrth * O;
  e.total = e.fidelity * (1.0 - o.w) + e.orthogonality * o.w;
  return e;
}

}  // namespace nsa
