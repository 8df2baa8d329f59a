#include "ortho.hpp"

#include <algorithm>
#include <cstring>

#include "error.hpp"

namespace nsa {

namespace {

// Workspace slots used by this file (callers' solvers use slots ≥ 16).
enum Slot : std::size_t { kS = 0, kA, kB, kC, kD, kE, kF };

// Σ_{i≠j} S_ij², summed directly: the reference's ‖S‖² − Σ S_ii² cancels catastrophically near
// orthogonality (it rounds to 0 or below 0 once the defect is under ~1e-16), this never does.
double offDiagonalEnergy(const double* S, std::size_t k) {
  double off = 0;
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j)
      if (i != j) off += S[i * k + j] * S[i * k + j];
  return off;
}

}  // namespace

double defect(const double* Y, std::size_t p, std::size_t k, Workspace& ws) {
  const double n = squaredNorm(Y, p * k);
  if (n <= 1e-12) return 0.0;
  double* S = ws.get(kS, k * k);
  gram(Y, p, k, S);
  return offDiagonalEnergy(S, k) / std::max(n * n, 1e-24);
}

double defectGradient(const double* Y, std::size_t p, std::size_t k, double* G, double scale,
                      double nFloor, Workspace& ws) {
  const double n = squaredNorm(Y, p * k);
  if (n <= 1e-12) {
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

bool isSoft(RetractionType t) {
  return t == RetractionType::SoftPolar || t == RetractionType::SoftNewtonSchulz ||
         t == RetractionType::SoftQuinticNewtonSchulz || t == RetractionType::SoftCayley;
}

void thinSvd(const double* Y, std::size_t p, std::size_t k, double* U, double* S, double* V,
             Workspace& ws) {
  if (!allFinite(Y, p * k)) throwRange("svd: the matrix has non-finite entries");
  const std::size_t r = std::min(p, k);
  // Row-major Y (p×k) is column-major A = Yᵀ (k×p). A = Ua Σ VTa gives Y = VTaᵀ Σ Uaᵀ, and VTa
  // (column-major r×p) has exactly the memory layout of the row-major p×r U.
  double* A = ws.get(kA, p * k);
  double* Ua = ws.get(kB, k * r);
  std::memcpy(A, Y, p * k * sizeof(double));
  lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', asInt(k), asInt(p), A, asInt(k), S, Ua,
                                   asInt(k), U, asInt(r));
  if (info > 0) {  // divide and conquer failed: try the QR-iteration driver once
    std::memcpy(A, Y, p * k * sizeof(double));
    std::vector<double> superb(r);
    info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, 'S', 'S', asInt(k), asInt(p), A, asInt(k), S, Ua,
                          asInt(k), U, asInt(r), superb.data());
  }
  if (info != 0) throwNumerical("svd: LAPACK did not converge (info " + std::to_string(info) + ")");
  if (V) {  // Ua is column-major k×r: element (i, c) at i + c·k; V row-major k×r.
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t c = 0; c < r; ++c) V[i * r + c] = Ua[i + c * k];
  }
}

namespace {

bool polarFactorSvd(const double* Y, std::size_t p, std::size_t k, double* Q, Workspace& ws) {
  const std::size_t r = std::min(p, k);
  double* A = ws.get(kA, p * k);
  double* Ua = ws.get(kB, k * r);
  double* VTa = ws.get(kC, r * p);
  double* S = ws.get(kD, r);
  std::memcpy(A, Y, p * k * sizeof(double));
  lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', asInt(k), asInt(p), A, asInt(k), S, Ua,
                                   asInt(k), VTa, asInt(r));
  if (info > 0) {
    std::memcpy(A, Y, p * k * sizeof(double));
    std::vector<double> superb(r);
    info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, 'S', 'S', asInt(k), asInt(p), A, asInt(k), S, Ua,
                          asInt(k), VTa, asInt(r), superb.data());
  }
  if (info != 0) return false;
  // Qᵀ (column-major k×p) = Ua · VTa; its buffer is the row-major p×k polar factor U Vᵀ.
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, asInt(k), asInt(p), asInt(r), 1.0, Ua,
              asInt(k), VTa, asInt(r), 0.0, Q, asInt(k));
  return true;
}

// Q = Y (YᵀY)^{-1/2} through the k×k eigendecomposition: one DSYRK, one small eig, one GEMM.
// Returns false (without touching Q) when YᵀY is too ill-conditioned for this to be accurate.
bool polarFactorGram(const double* Y, std::size_t p, std::size_t k, double* Q, Workspace& ws,
                     double conditionLimit) {
  double* S = ws.get(kS, k * k);
  double* lam = ws.get(kD, k);
  double* W = ws.get(kE, k * k);
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, asInt(k), asInt(p), 1.0, Y, asInt(k), 0.0, S,
              asInt(k));
  // Row-major upper triangle = column-major lower triangle.
  if (LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', asInt(k), S, asInt(k), lam) != 0) return false;
  const double lmin = lam[0], lmax = lam[k - 1];
  if (!(lmin > 0) || !(lmax <= conditionLimit * lmin)) return false;
  // W = V diag(λ^{-1/2}) Vᵀ with V's columns in S (column-major).
  double* B = ws.get(kF, k * k);
  for (std::size_t c = 0; c < k; ++c) {
    const double s = 1.0 / std::sqrt(lam[c]);
    for (std::size_t i = 0; i < k; ++i) B[i + c * k] = S[i + c * k] * s;
  }
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, asInt(k), asInt(k), asInt(k), 1.0, B,
              asInt(k), S, asInt(k), 0.0, W, asInt(k));
  gemm(false, false, p, k, k, 1.0, Y, W, 0.0, Q);
  return true;
}

}  // namespace

bool polarFactor(const double* Y, std::size_t p, std::size_t k, double* Q, Workspace& ws,
                 PolarMethod method, double gramConditionLimit, bool* usedGram) {
  if (usedGram) *usedGram = false;
  if (method != PolarMethod::Svd && p >= k) {
    // A forced Gram path still refuses a singular Gram matrix (it has no inverse square root).
    const double limit = method == PolarMethod::Gram ? 1e15 : gramConditionLimit;
    if (polarFactorGram(Y, p, k, Q, ws, limit)) {
      if (usedGram) *usedGram = true;
      return true;
    }
  }
  return polarFactorSvd(Y, p, k, Q, ws);
}

void newtonSchulz(const double* Y, std::size_t p, std::size_t k, int iterations, double eps,
                  bool quintic, double* X, Workspace& ws) {
  const double norm = std::max(std::sqrt(squaredNorm(Y, p * k)), eps);
  for (std::size_t i = 0; i < p * k; ++i) X[i] = Y[i] / norm;
  double* XtX = ws.get(kS, k * k);
  double* T = ws.get(kE, k * k);
  double* next = ws.get(kA, p * k);
  for (int it = 0; it < iterations; ++it) {
    gram(X, p, k, XtX);
    if (!quintic) {
      // X ← ½·X(3I − XᵀX)
      for (std::size_t i = 0; i < k * k; ++i) T[i] = -XtX[i];
      for (std::size_t i = 0; i < k; ++i) T[i * k + i] += 3.0;
      gemm(false, false, p, k, k, 0.5, X, T, 0.0, next);
    } else {
      // X ← aX + X(b·A + c·A²), A = XᵀX
      constexpr double a = 3.4445, b = -4.7750, c = 2.0315;
      gemm(false, false, k, k, k, c, XtX, XtX, 0.0, T);
      for (std::size_t i = 0; i < k * k; ++i) T[i] += b * XtX[i];
      std::memcpy(next, X, p * k * sizeof(double));
      gemm(false, false, p, k, k, 1.0, X, T, a, next);
    }
    std::memcpy(X, next, p * k * sizeof(double));
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

bool cayleyFactor(const double* Y, std::size_t p, std::size_t k, double* out, Workspace& ws) {
  const std::size_t k2 = 2 * k;
  double* X = ws.get(kB, p * k);
  thinQr(Y, p, k, X, nullptr, ws);
  // U = [Y, X], V = [X, −Y] (p×2k); solve (I − ½VᵀU) Z = VᵀX; result X + U Z.
  double* U = ws.get(kC, p * k2);
  double* V = ws.get(kF, p * k2);
  for (std::size_t i = 0; i < p; ++i)
    for (std::size_t j = 0; j < k; ++j) {
      U[i * k2 + j] = Y[i * k + j];
      U[i * k2 + k + j] = X[i * k + j];
      V[i * k2 + j] = X[i * k + j];
      V[i * k2 + k + j] = -Y[i * k + j];
    }
  double* M = ws.get(kS, k2 * k2);
  double* Z = ws.get(kE, k2 * k);
  gemm(true, false, k2, k2, p, -0.5, V, U, 0.0, M);
  for (std::size_t i = 0; i < k2; ++i) M[i * k2 + i] += 1.0;
  gemm(true, false, k2, k, p, 1.0, V, X, 0.0, Z);
  std::vector<lapack_int> ipiv(k2);
  if (LAPACKE_dgesv(LAPACK_ROW_MAJOR, asInt(k2), asInt(k), M, asInt(k2), ipiv.data(), Z, asInt(k)) != 0)
    return false;
  std::memcpy(out, X, p * k * sizeof(double));
  gemm(false, false, p, k, k2, 1.0, U, Z, 1.0, out);
  return true;
}

namespace {

// The retraction after the early-return checks: factor, blend, restore the norm.
bool retractCore(const double* Y, std::size_t p, std::size_t k, double normY,
                 const RetractionOptions& o, double* out, Workspace& ws) {
  switch (o.type) {
    case RetractionType::None:
      std::memcpy(out, Y, p * k * sizeof(double));
      return true;
    case RetractionType::Polar:
    case RetractionType::SoftPolar:
      if (!polarFactor(Y, p, k, out, ws, o.polarMethod, o.gramConditionLimit)) return false;
      break;
    case RetractionType::NewtonSchulz:
    case RetractionType::SoftNewtonSchulz:
      newtonSchulz(Y, p, k, o.nsIterations, o.eps, false, out, ws);
      break;
    case RetractionType::QuinticNewtonSchulz:
    case RetractionType::SoftQuinticNewtonSchulz:
      newtonSchulz(Y, p, k, o.nsIterations, o.eps, true, out, ws);
      break;
    case RetractionType::Cayley:
    case RetractionType::SoftCayley:
      if (!cayleyFactor(Y, p, k, out, ws)) return false;
      break;
    case RetractionType::Normalize:
      for (std::size_t j = 0; j < k; ++j) {
        double s = 0;
        for (std::size_t i = 0; i < p; ++i) s += Y[i * k + j] * Y[i * k + j];
        const double nrm = std::max(std::sqrt(s), o.eps);
        for (std::size_t i = 0; i < p; ++i) out[i * k + j] = Y[i * k + j] / nrm;
      }
      break;
  }
  const std::size_t n = p * k;
  if (isSoft(o.type)) {
    const double a = 1.0 - o.w;
    for (std::size_t i = 0; i < n; ++i) out[i] = a * Y[i] + o.w * out[i];
  }
  const double scale = normY / std::max(std::sqrt(squaredNorm(out, n)), 1e-12);
  for (std::size_t i = 0; i < n; ++i) out[i] *= scale;
  return true;
}

}  // namespace

namespace {

enum class GramOutcome { Done, Unchanged, IllConditioned };

// The polar retractions fused into DSYRK + k×k work + one GEMM, with no other pass over p×k data:
// with S = YᵀY = VΛVᵀ and W = VΛ^{-1/2}Vᵀ, the blend (1−w)Y + w·YW is Y·M for
// M = (1−w)I + wW, ‖Y‖² = tr S and ‖YM‖² = tr(MᵀSM), so the norm restoration folds into M too.
GramOutcome gramRetraction(const double* Y, std::size_t p, std::size_t k, const RetractionOptions& o,
                           double* out, Workspace& ws) {
  double* S = ws.get(kS, k * k);
  double* V = ws.get(kA, k * k);
  double* lam = ws.get(kD, k);
  double* M = ws.get(kE, k * k);
  double* T = ws.get(kF, k * k);
  gram(Y, p, k, S);
  double normY2 = 0;
  for (std::size_t i = 0; i < k; ++i) normY2 += S[i * k + i];
  const double normY = std::sqrt(normY2);
  if (!(normY >= 1e-12) || !std::isfinite(normY)) return GramOutcome::Unchanged;
  std::memcpy(V, S, k * k * sizeof(double));
  if (LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', asInt(k), V, asInt(k), lam) != 0) return GramOutcome::IllConditioned;
  const double lmin = lam[0], lmax = lam[k - 1];
  if (!(lmin > 0) || !(lmax <= o.gramConditionLimit * lmin)) return GramOutcome::IllConditioned;
  double* B = ws.get(kB, k * k);
  for (std::size_t c = 0; c < k; ++c) {
    const double s = 1.0 / std::sqrt(lam[c]);
    for (std::size_t i = 0; i < k; ++i) B[i + c * k] = V[i + c * k] * s;
  }
  const double w = isSoft(o.type) ? o.w : 1.0;
  // M = w·W + (1−w)·I (W symmetric, so its layout does not matter).
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, asInt(k), asInt(k), asInt(k), w, B, asInt(k), V,
              asInt(k), 0.0, M, asInt(k));
  if (w != 1.0)
    for (std::size_t i = 0; i < k; ++i) M[i * k + i] += 1.0 - w;
  gemm(false, false, k, k, k, 1.0, S, M, 0.0, T);
  double n2 = 0;
  for (std::size_t i = 0; i < k * k; ++i) n2 += M[i] * T[i];
  const double scale = normY / std::max(std::sqrt(n2), 1e-12);
  for (std::size_t i = 0; i < k * k; ++i) M[i] *= scale;
  if (!allFinite(M, k * k)) return GramOutcome::Unchanged;
  gemm(false, false, p, k, k, 1.0, Y, M, 0.0, out);
  return GramOutcome::Done;
}

}  // namespace

bool retract(const double* Y, std::size_t p, std::size_t k, const RetractionOptions& o, double* out,
             Workspace& ws) {
  const std::size_t n = p * k;
  if (o.w != 0.0 && (o.type == RetractionType::Polar || o.type == RetractionType::SoftPolar) &&
      o.polarMethod != PolarMethod::Svd && p >= k) {
    RetractionOptions g = o;
    if (o.polarMethod == PolarMethod::Gram) g.gramConditionLimit = 1e15;  // forced: refuse only singular S
    switch (gramRetraction(Y, p, k, g, out, ws)) {
      case GramOutcome::Done:
        return true;
      case GramOutcome::Unchanged:
        std::memcpy(out, Y, n * sizeof(double));
        return false;
      case GramOutcome::IllConditioned:
        break;  // fall through to the SVD path below
    }
  }
  RetractionOptions svdOptions = o;
  if (o.type == RetractionType::Polar || o.type == RetractionType::SoftPolar) svdOptions.polarMethod = PolarMethod::Svd;
  const double normY = std::sqrt(squaredNorm(Y, n));
  if (o.type == RetractionType::None || o.w == 0.0 || !(normY >= 1e-12) || !std::isfinite(normY) ||
      !retractCore(Y, p, k, normY, svdOptions, out, ws) || !allFinite(out, n)) {
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
    if (!(norms[b] >= 1e-12) || !std::isfinite(norms[b])) return unchanged();
  }
  ProgressRecord rec;
  rec.total = static_cast<int64_t>(batch);
  for (std::size_t b = 0; b < batch; ++b) {
    if (monitor.cancelled()) throwAborted();
    if (!retractCore(Y + b * n, p, k, norms[b], o, out + b * n, ws)) return unchanged();
    rec.iteration = static_cast<int64_t>(b + 1);
    monitor.progress(rec);
  }
  if (!allFinite(out, batch * n)) return unchanged();
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
  if (method == InvSqrtMethod::Auto) method = k <= 128 ? InvSqrtMethod::Eig : InvSqrtMethod::NewtonSchulz;
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
      for (std::size_t i = 0; i < n; ++i) out[i] = Y[i] > 0.0 ? Y[i] : 0.0;
      return;
    case Nonnegativity::Softplus:
      // torch's softplus (β = 1, threshold 20): exact identity above 20, log1p(eˣ) otherwise.
      for (std::size_t i = 0; i < n; ++i) out[i] = Y[i] > 20.0 ? Y[i] : std::log1p(std::exp(Y[i]));
      return;
  }
}

}  // namespace nsa
