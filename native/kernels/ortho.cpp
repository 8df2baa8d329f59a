#include "ortho.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "error.hpp"

namespace nsa {

namespace {

// Workspace slots used by this file (retraction_core.cpp uses 8–15, the callers' solvers ≥ 16).
enum Slot : std::size_t { kS = 0, kA, kB, kC, kD, kE, kF };

}  // namespace

double defect(const double* Y, std::size_t p, std::size_t k, Workspace& ws) {
  const double n = squaredNorm(Y, p * k);
  if (n <= kDefectSquaredNormFloor) return 0.0;
  double* S = ws.get(kS, k * k);
  gram(Y, p, k, S);
  return defectOfGram(S, k, n);
}

double defectGradient(const double* Y, std::size_t p, std::size_t k, double* G, double scale,
                      double nFloor, Workspace& ws) {
  const double n = squaredNorm(Y, p * k);
  if (n <= kDefectSquaredNormFloor) {
    std::fill(G, G + p * k, 0.0);
    return 0.0;
  }
  double* S = ws.get(kS, k * k);
  gram(Y, p, k, S);
  const double n2 = n * n;
  const double denom = std::max(n2, nFloor);
  const double d = offDiagonalEnergy(S, k) / denom;
  // G = 4·[Y(S − Diag S)/denom − d·Y/n] (the second term only where the floor is inactive, since
  // a floored denominator no longer depends on Y).
  for (std::size_t i = 0; i < k; ++i) S[i * k + i] = 0.0;
  gemm(false, false, p, k, k, 4.0 * scale / denom, Y, S, 0.0, G);
  if (n2 >= nFloor) {
    const double c = 4.0 * scale * d / n;
    for (std::size_t i = 0; i < p * k; ++i) G[i] -= c * Y[i];
  }
  return d;
}

double basicOrthogonality(const double* Y, std::size_t p, std::size_t k, Workspace& ws) {
  double* S = ws.get(kS, k * k);
  gram(Y, p, k, S);
  double s = 0;
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j) {
      const double e = S[i * k + j] - (i == j ? 1.0 : 0.0);
      s += e * e;
    }
  return s / static_cast<double>(k * k);
}

void thinSvd(const double* Y, std::size_t p, std::size_t k, double* U, double* S, double* V,
             Workspace& ws) {
  if (!allFinite(Y, p * k)) throwRange("svd: the matrix has non-finite entries");
  const std::size_t r = std::min(p, k);
  // VTa (column-major r×p) has exactly the memory layout of the row-major p×r U.
  double* Ua = ws.get(kB, k * r);
  const lapack_int info = svdOfRowMajor(Y, p, k, S, Ua, U, ws);
  if (info != 0) throwNumerical("svd: LAPACK did not converge (info " + std::to_string(info) + ")");
  if (V) {  // Ua is column-major k×r: element (i, c) at i + c·k; V row-major k×r.
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t c = 0; c < r; ++c) V[i * r + c] = Ua[i + c * k];
  }
}

void thinQr(const double* Y, std::size_t p, std::size_t k, double* Q, double* R, Workspace& ws) {
  // LAPACK wants the column-major p×k matrix: transpose the row-major buffer once.
  double* A = ws.get(kA, p * k);
  double* tau = ws.get(kD, k);
  transposeInto(Y, p, k, A);
  lapack_int info = LAPACKE_dgeqrf(LAPACK_COL_MAJOR, asInt(p), asInt(k), A, asInt(p), tau);
  if (info != 0) throwNumerical("qr: dgeqrf failed (info " + std::to_string(info) + ")");
  if (R) {
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = 0; j < k; ++j) R[i * k + j] = j >= i ? A[i + j * p] : 0.0;
  }
  info = LAPACKE_dorgqr(LAPACK_COL_MAJOR, asInt(p), asInt(k), asInt(k), A, asInt(p), tau);
  if (info != 0) throwNumerical("qr: dorgqr failed (info " + std::to_string(info) + ")");
  transposeInto(A, k, p, Q);  // column-major p×k = row-major k×p; transpose to row-major p×k
}

bool retract(const double* Y, std::size_t p, std::size_t k, const RetractionOptions& o, double* out,
             Workspace& ws) {
  const std::size_t n = p * k;
  if (o.w != 0.0 && triesGramPath(o, p, k)) {
    // The polar retractions fused into DSYRK + k×k work + one GEMM (gramPolarMatrix).
    double* S = ws.get(kS, k * k);
    double* M = ws.get(kE, k * k);
    gram(Y, p, k, S);
    switch (gramPolarMatrix(S, k, o, M, ws)) {
      case GramOutcome::Done:
        gemm(false, false, p, k, k, 1.0, Y, M, 0.0, out);
        return true;
      case GramOutcome::Unchanged:
        std::memcpy(out, Y, n * sizeof(double));
        return false;
      case GramOutcome::IllConditioned:
        break;  // the SVD path below
    }
  }
  RetractionOptions svdOptions = o;
  if (isPolar(o.type)) svdOptions.polarMethod = PolarMethod::Svd;
  const double normY = std::sqrt(squaredNorm(Y, n));
  if (o.type == RetractionType::None || o.w == 0.0 || !(normY >= kRetractionNormFloor) || !std::isfinite(normY) ||
      !factorRetraction(Y, p, k, normY, svdOptions, out, ws)) {
    std::memcpy(out, Y, n * sizeof(double));
    return false;
  }
  return true;
}

bool retractBatch(const double* Y, std::size_t batch, std::size_t p, std::size_t k,
                  const RetractionOptions& o, double* out, Workspace& ws, Monitor& monitor) {
  const std::size_t n = p * k;
  auto unchanged = [&] {
    std::memcpy(out, Y, batch * n * sizeof(double));
    return false;
  };
  if (o.type == RetractionType::None || o.w == 0.0) return unchanged();
  std::vector<double> norms(batch);
  for (std::size_t b = 0; b < batch; ++b) {
    norms[b] = std::sqrt(squaredNorm(Y + b * n, n));
    if (!(norms[b] >= kRetractionNormFloor) || !std::isfinite(norms[b])) return unchanged();
  }
  ProgressRecord rec;
  rec.total = static_cast<int64_t>(batch);
  for (std::size_t b = 0; b < batch; ++b) {
    if (monitor.cancelled()) throwAborted();
    // Each element through its orthogonal factor (polar: the Gram factor Y·(YᵀY)^{-1/2} when accepted).
    if (!factorRetraction(Y + b * n, p, k, norms[b], o, out + b * n, ws)) return unchanged();
    rec.iteration = static_cast<int64_t>(b + 1);
    monitor.progress(rec);
  }
  return true;
}

namespace {

void inverseSqrtEig(const double* A, std::size_t k, double eps, double* out, Workspace& ws) {
  double* V = ws.get(kA, k * k);
  double* lam = ws.get(kD, k);
  double* B = ws.get(kB, k * k);
  std::memcpy(V, A, k * k * sizeof(double));
  // 'U' of the column-major view reads the lower triangle of the row-major A, as torch's eigh does.
  const lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', asInt(k), V, asInt(k), lam);
  if (info != 0) throwNumerical("inverseSqrt: eigendecomposition failed (info " + std::to_string(info) + ")");
  // A is symmetric, so the column-major reading of a row-major buffer is A itself; V's columns are
  // eigenvectors. out = V diag(max(λ, eps)^{-1/2}) Vᵀ (symmetric, so layout does not matter).
  for (std::size_t c = 0; c < k; ++c) {
    const double s = std::pow(std::max(lam[c], eps), -0.5);
    for (std::size_t i = 0; i < k; ++i) B[i + c * k] = V[i + c * k] * s;
  }
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, asInt(k), asInt(k), asInt(k), 1.0, B, asInt(k),
              V, asInt(k), 0.0, out, asInt(k));
}

}  // namespace

void inverseSqrt(const double* A, std::size_t k, InvSqrtMethod method, double eps, int nsIterations,
                 double* out, Workspace& ws) {
  if (!allFinite(A, k * k)) throwRange("inverseSqrt: the matrix has non-finite entries");
  if (method == InvSqrtMethod::Auto)
    method = k <= kInverseSqrtEigMaxCols ? InvSqrtMethod::Eig : InvSqrtMethod::NewtonSchulz;
  switch (method) {
    case InvSqrtMethod::Eig:
    case InvSqrtMethod::Auto:
      inverseSqrtEig(A, k, eps, out, ws);
      return;
    case InvSqrtMethod::Diag:
      std::fill(out, out + k * k, 0.0);
      for (std::size_t i = 0; i < k; ++i) out[i * k + i] = std::pow(std::max(A[i * k + i], eps), -0.5);
      return;
    case InvSqrtMethod::NewtonSchulz: {
      // Coupled iteration on A' = A + eps·I scaled by its spectral norm s: Y → A'^{1/2}/√s,
      // Z → (A'/s)^{-1/2}; result Z/√s. Falls back to eig when it produces non-finite values.
      double* Areg = ws.get(kA, k * k);
      double* Yk = ws.get(kB, k * k);
      double* Z = ws.get(kC, k * k);
      double* T = ws.get(kE, k * k);
      double* tmp = ws.get(kF, k * k);
      double* sv = ws.get(kD, k);
      std::memcpy(Areg, A, k * k * sizeof(double));
      for (std::size_t i = 0; i < k; ++i) Areg[i * k + i] += eps;
      std::memcpy(tmp, Areg, k * k * sizeof(double));
      if (LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', asInt(k), asInt(k), tmp, asInt(k), sv, nullptr, 1,
                         nullptr, 1) != 0)
        throwNumerical("inverseSqrt: singular values did not converge");
      const double s = sv[0] == 0.0 ? 1.0 : sv[0];
      for (std::size_t i = 0; i < k * k; ++i) Yk[i] = Areg[i] / s;
      std::fill(Z, Z + k * k, 0.0);
      for (std::size_t i = 0; i < k; ++i) Z[i * k + i] = 1.0;
      for (int it = 0; it < nsIterations; ++it) {
        gemm(false, false, k, k, k, -0.5, Z, Yk, 0.0, T);  // T = ½(3I − ZY)
        for (std::size_t i = 0; i < k; ++i) T[i * k + i] += 1.5;
        gemm(false, false, k, k, k, 1.0, Yk, T, 0.0, tmp);
        std::memcpy(Yk, tmp, k * k * sizeof(double));
        gemm(false, false, k, k, k, 1.0, T, Z, 0.0, tmp);
        std::memcpy(Z, tmp, k * k * sizeof(double));
      }
      const double r = std::sqrt(s);
      for (std::size_t i = 0; i < k * k; ++i) out[i] = Z[i] / r;
      if (!allFinite(out, k * k)) inverseSqrtEig(A, k, eps, out, ws);
      return;
    }
  }
}

void procrustes(const double* A, const double* B, std::size_t n, std::size_t k, double* Q,
                Workspace& ws) {
  if (!allFinite(A, n * k) || !allFinite(B, n * k)) throwRange("procrustes: non-finite entries");
  double* M = ws.get(kF + 1, k * k);
  gemm(true, false, k, k, n, 1.0, A, B, 0.0, M);
  if (!polarFactor(M, k, k, Q, ws, PolarMethod::Svd, 0.0))
    throwNumerical("procrustes: the SVD of AᵀB did not converge");
}

void applyNonnegativity(const double* Y, std::size_t n, Nonnegativity mode, double* out) {
  switch (mode) {
    case Nonnegativity::None:
      if (out != Y) std::memcpy(out, Y, n * sizeof(double));
      return;
    case Nonnegativity::Hard:
      // max(x, 0) as JavaScript's Math.max: −0 to +0, a NaN (an unknown entry) kept
      for (std::size_t i = 0; i < n; ++i) out[i] = Y[i] > 0.0 || Y[i] != Y[i] ? Y[i] : 0.0;
      return;
    case Nonnegativity::Softplus:
      // torch's softplus (β = 1): the identity above its threshold, log1p(eˣ) otherwise.
      for (std::size_t i = 0; i < n; ++i)
        out[i] = Y[i] > kSoftplusLinearThreshold ? Y[i] : std::log1p(std::exp(Y[i]));
      return;
  }
}

}  // namespace nsa
