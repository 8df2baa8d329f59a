#include "retraction_core.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "error.hpp"
#include "ortho.hpp"  // thinQr

namespace nsa {

namespace {

// Workspace slots of this file (see the header): the Gram path's eigensolver, the SVD, Newton–Schulz
// and Cayley reuse the same slots, since no two of them are live at once.
enum Slot : std::size_t {
  kSlot0 = 8,  // eigenvectors | SVD copy of Y | NS step matrix | Cayley's X
  kSlot1,      // eigenvalues | SVD's Ua | NS Gram | Cayley's U
  kSlot2,      // eigenvectors·Λ^{-1/2} | SVD's VTa | NS next iterate | Cayley's V
  kSlot3,      // dsyevd's work | SVD's σ | Cayley's system matrix
  kSlot4,      // S·M0 | the Gram path's W | Cayley's solution
  kSlot5,      // YᵀY of polarFactor's Gram path
};

// The tape's buffer when recording, the workspace slot otherwise; tape buffers grow only.
double* buffer(std::vector<double>* keep, Workspace& ws, Slot slot, std::size_t n) {
  if (!keep) return ws.get(slot, n);
  if (keep->size() < n) keep->resize(n);
  return keep->data();
}

double traceOf(const double* S, std::size_t k) {
  double t = 0;
  for (std::size_t i = 0; i < k; ++i) t += S[i * k + i];
  return t;
}

// Eigenvalues (ascending) and eigenvectors (the columns of the column-major A) of the symmetric k×k A,
// whose column-major lower triangle (= row-major upper) is read. As LAPACKE_dsyevd (a workspace query,
// then the driver) with the work arrays held across calls: solvers call this every iteration.
bool symmetricEigen(double* A, std::size_t k, double* lam, Workspace& ws) {
  // dsyevd's integer work array: per thread, grown once (Workspace holds doubles only).
  thread_local std::vector<lapack_int> iwork;
  double workQuery = 0;
  lapack_int iworkQuery = 0;
  if (LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', asInt(k), A, asInt(k), lam, &workQuery, -1, &iworkQuery, -1) != 0)
    return false;
  const lapack_int lwork = static_cast<lapack_int>(workQuery);
  double* work = ws.get(kSlot3, static_cast<std::size_t>(lwork));
  if (iwork.size() < static_cast<std::size_t>(iworkQuery)) iwork.resize(static_cast<std::size_t>(iworkQuery));
  return LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', asInt(k), A, asInt(k), lam, work, lwork, iwork.data(),
                             iworkQuery) == 0;
}

// M0 = (1−w)I + w·S^{-1/2} from S = YᵀY through its eigendecomposition; false when S is not positive
// definite within `limit` (λmax ≤ limit·λmin) or the eigensolver fails. Records V and λ (in σ's buffer)
// on the tape; M0 may be the tape's.
bool gramInverseSqrtBlend(const double* S, std::size_t k, double w, double limit, double* M0, Workspace& ws,
                          RetractionTape* tape) {
  const std::size_t kk = k * k;
  if (!allFinite(S, kk)) return false;
  double* Vc = ws.get(kSlot0, kk);
  double* lam = buffer(tape ? &tape->sigma : nullptr, ws, kSlot1, k);
  std::memcpy(Vc, S, kk * sizeof(double));
  if (!symmetricEigen(Vc, k, lam, ws)) return false;
  if (!(lam[0] > 0) || !(lam[k - 1] <= limit * lam[0])) return false;
  // M0 = w·V diag(λ^{-1/2}) Vᵀ (+ (1−w)I): symmetric, so its layout does not matter.
  double* Bm = ws.get(kSlot2, kk);
  for (std::size_t c = 0; c < k; ++c) {
    const double s = 1.0 / std::sqrt(lam[c]);
    for (std::size_t i = 0; i < k; ++i) Bm[i + c * k] = Vc[i + c * k] * s;
  }
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, asInt(k), asInt(k), asInt(k), w, Bm, asInt(k), Vc, asInt(k),
              0.0, M0, asInt(k));
  if (w != 1.0)
    for (std::size_t i = 0; i < k; ++i) M0[i * k + i] += 1.0 - w;
  if (tape) {  // V row-major (column c = eigenvector c) and σ = √λ: the singular values of Y
    double* V = buffer(&tape->V, ws, kSlot0, kk);
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t c = 0; c < k; ++c) V[i * k + c] = Vc[i + c * k];
    for (std::size_t c = 0; c < k; ++c) lam[c] = std::sqrt(lam[c]);
  }
  return true;
}

bool polarFactorGram(const double* Y, std::size_t p, std::size_t k, double* Q, Workspace& ws, double limit,
                     RetractionTape* tape) {
  double* S = ws.get(kSlot5, k * k);
  gram(Y, p, k, S);
  double* W = ws.get(kSlot4, k * k);
  if (!gramInverseSqrtBlend(S, k, 1.0, limit, W, ws, tape)) return false;
  gemm(false, false, p, k, k, 1.0, Y, W, 0.0, Q);
  return true;
}

bool polarFactorSvd(const double* Y, std::size_t p, std::size_t k, double* Q, Workspace& ws, RetractionTape* tape) {
  const std::size_t r = std::min(p, k);
  double* Ua = ws.get(kSlot1, k * r);
  double* VTa = ws.get(kSlot2, r * p);
  double* sigma = buffer(tape ? &tape->sigma : nullptr, ws, kSlot3, r);
  if (svdOfRowMajor(Y, p, k, sigma, Ua, VTa, ws) != 0) return false;
  // Qᵀ (column-major k×p) = Ua · VTa; its buffer is the row-major p×k polar factor U Vᵀ.
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, asInt(k), asInt(p), asInt(r), 1.0, Ua, asInt(k), VTa,
              asInt(r), 0.0, Q, asInt(k));
  if (tape) {  // V row-major k×r from the column-major Ua
    double* V = buffer(&tape->V, ws, kSlot0, k * r);
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t c = 0; c < r; ++c) V[i * r + c] = Ua[i + c * k];
  }
  return true;
}

}  // namespace

// ---- the orthogonality defect --------------------------------------------------------------------

double offDiagonalEnergy(const double* S, std::size_t k) {
  double off = 0;
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j)
      if (i != j) off += S[i * k + j] * S[i * k + j];
  return off;
}

double defectOfGram(const double* S, std::size_t k, double squaredNormY) {
  if (squaredNormY <= kDefectSquaredNormFloor) return 0.0;
  return offDiagonalEnergy(S, k) / std::max(squaredNormY * squaredNormY, kDefectDenominatorFloor);
}

double defectFromGram(const double* S, std::size_t k) { return defectOfGram(S, k, traceOf(S, k)); }

// ---- options -----------------------------------------------------------------------------------

bool isSoft(RetractionType t) {
  return t == RetractionType::SoftPolar || t == RetractionType::SoftNewtonSchulz ||
         t == RetractionType::SoftQuinticNewtonSchulz || t == RetractionType::SoftCayley;
}

bool isPolar(RetractionType t) { return t == RetractionType::Polar || t == RetractionType::SoftPolar; }

double gramConditionLimitOf(const RetractionOptions& o) {
  return o.polarMethod == PolarMethod::Gram ? kForcedGramConditionLimit : o.gramConditionLimit;
}

bool triesGramPath(const RetractionOptions& o, std::size_t p, std::size_t k) {
  return isPolar(o.type) && o.polarMethod != PolarMethod::Svd && p >= k;
}

void reserveTape(RetractionTape& tape, const RetractionOptions& o, std::size_t p, std::size_t k) {
  const std::size_t n = p * k, kk = k * k;
  auto reserve = [](std::vector<double>& v, std::size_t size) {
    if (v.size() < size) v.resize(size);
  };
  switch (o.type) {
    case RetractionType::Polar:
    case RetractionType::SoftPolar:
      for (std::vector<double>* v : {&tape.S, &tape.M0, &tape.SM0, &tape.M, &tape.V}) reserve(*v, kk);
      reserve(tape.sigma, k);
      return;
    case RetractionType::NewtonSchulz:
    case RetractionType::SoftNewtonSchulz:
    case RetractionType::QuinticNewtonSchulz:
    case RetractionType::SoftQuinticNewtonSchulz: {
      const std::size_t steps = static_cast<std::size_t>(std::max(o.nsIterations, 0));
      reserve(tape.nsX, (steps + 1) * n);
      reserve(tape.nsA, std::max<std::size_t>(steps, 1) * kk);
      break;
    }
    case RetractionType::Cayley:
    case RetractionType::SoftCayley:
      reserve(tape.qrX, n);
      reserve(tape.qrR, kk);
      reserve(tape.cayU, 2 * n);
      reserve(tape.cayV, 2 * n);
      reserve(tape.cayLU, 4 * kk);
      reserve(tape.cayW, 2 * kk);
      if (tape.cayPivots.size() < 2 * k) tape.cayPivots.resize(2 * k);
      break;
    case RetractionType::Normalize:
      reserve(tape.colNorm, k);
      break;
    case RetractionType::None:
      return;
  }
  reserve(tape.Q, n);
  reserve(tape.B, n);
}

// ---- forward passes ------------------------------------------------------------------------------

GramOutcome gramPolarMatrix(const double* S, std::size_t k, const RetractionOptions& o, double* M, Workspace& ws,
                            RetractionTape* tape) {
  const std::size_t kk = k * k;
  const double normY = std::sqrt(traceOf(S, k));
  if (tape) tape->normY = normY;
  if (!(normY >= kRetractionNormFloor) || !std::isfinite(normY)) return GramOutcome::Unchanged;
  const double w = isSoft(o.type) ? o.w : 1.0;
  // Without a tape M0 is built in M and scaled in place.
  double* M0 = tape ? buffer(&tape->M0, ws, kSlot4, kk) : M;
  if (!gramInverseSqrtBlend(S, k, w, gramConditionLimitOf(o), M0, ws, tape)) return GramOutcome::IllConditioned;
  // ‖Y·M0‖² = tr(M0ᵀ S M0) = Σ M0 ∘ (S·M0).
  double* SM0 = buffer(tape ? &tape->SM0 : nullptr, ws, kSlot4, kk);
  gemm(false, false, k, k, k, 1.0, S, M0, 0.0, SM0);
  double normB2 = 0;
  for (std::size_t i = 0; i < kk; ++i) normB2 += M0[i] * SM0[i];
  const double normB = std::sqrt(normB2);
  if (tape) tape->normB = normB;
  const double scale = normY / std::max(normB, kBlendNormFloor);
  for (std::size_t i = 0; i < kk; ++i) M[i] = M0[i] * scale;
  // Y is finite (its norm is) and ‖Y·M‖ = ‖Y‖, so Y·M is finite exactly when M is.
  return allFinite(M, kk) ? GramOutcome::Done : GramOutcome::Unchanged;
}

bool polarFactor(const double* Y, std::size_t p, std::size_t k, double* Q, Workspace& ws, PolarMethod method,
                 double gramConditionLimit, bool* usedGram, RetractionTape* tape) {
  if (usedGram) *usedGram = false;
  if (method != PolarMethod::Svd && p >= k) {
    const double limit = method == PolarMethod::Gram ? kForcedGramConditionLimit : gramConditionLimit;
    if (polarFactorGram(Y, p, k, Q, ws, limit, tape)) {
      if (usedGram) *usedGram = true;
      return true;
    }
  }
  return polarFactorSvd(Y, p, k, Q, ws, tape);
}

void newtonSchulz(const double* Y, std::size_t p, std::size_t k, int iterations, double eps, bool quintic, double* X,
                  Workspace& ws, RetractionTape* tape) {
  const std::size_t n = p * k, kk = k * k;
  const std::size_t steps = static_cast<std::size_t>(std::max(iterations, 0));
  const double norm = std::max(std::sqrt(squaredNorm(Y, n)), eps);
  // With a tape every iterate stays in tape->nsX (and its Gram in tape->nsA); otherwise X is the iterate.
  double* cur = X;
  if (tape) {
    tape->nsNorm = norm;
    cur = buffer(&tape->nsX, ws, kSlot0, (steps + 1) * n);
    buffer(&tape->nsA, ws, kSlot0, std::max<std::size_t>(steps, 1) * kk);
  }
  for (std::size_t i = 0; i < n; ++i) cur[i] = Y[i] / norm;
  double* T = ws.get(kSlot0, kk);
  for (std::size_t it = 0; it < steps; ++it) {
    double* A = tape ? tape->nsA.data() + it * kk : ws.get(kSlot1, kk);
    double* next = tape ? cur + n : ws.get(kSlot2, n);
    gram(cur, p, k, A);
    if (!quintic) {
      // X ← ½·X(3I − XᵀX)
      for (std::size_t i = 0; i < kk; ++i) T[i] = -A[i];
      for (std::size_t i = 0; i < k; ++i) T[i * k + i] += 3.0;
      gemm(false, false, p, k, k, 0.5, cur, T, 0.0, next);
    } else {
      // X ← aX + X(b·A + c·A²)
      gemm(false, false, k, k, k, kQuinticNsC, A, A, 0.0, T);
      for (std::size_t i = 0; i < kk; ++i) T[i] += kQuinticNsB * A[i];
      std::memcpy(next, cur, n * sizeof(double));
      gemm(false, false, p, k, k, 1.0, cur, T, kQuinticNsA, next);
    }
    if (tape) {
      cur = next;
    } else {
      std::memcpy(X, next, n * sizeof(double));
    }
  }
  if (tape) std::memcpy(X, cur, n * sizeof(double));
}

bool cayleyFactor(const double* Y, std::size_t p, std::size_t k, double* out, Workspace& ws, RetractionTape* tape) {
  const std::size_t k2 = 2 * k, n = p * k;
  double* X = buffer(tape ? &tape->qrX : nullptr, ws, kSlot0, n);
  double* R = tape ? buffer(&tape->qrR, ws, kSlot0, k * k) : nullptr;
  thinQr(Y, p, k, X, R, ws);
  // U = [Y, X], V = [X, −Y] (p×2k); solve (I − ½VᵀU) W = VᵀX; result X + U W.
  double* U = buffer(tape ? &tape->cayU : nullptr, ws, kSlot1, p * k2);
  double* V = buffer(tape ? &tape->cayV : nullptr, ws, kSlot2, p * k2);
  for (std::size_t i = 0; i < p; ++i)
    for (std::size_t j = 0; j < k; ++j) {
      U[i * k2 + j] = Y[i * k + j];
      U[i * k2 + k + j] = X[i * k + j];
      V[i * k2 + j] = X[i * k + j];
      V[i * k2 + k + j] = -Y[i * k + j];
    }
  double* M = buffer(tape ? &tape->cayLU : nullptr, ws, kSlot3, k2 * k2);
  double* W = buffer(tape ? &tape->cayW : nullptr, ws, kSlot4, k2 * k);
  gemm(true, false, k2, k2, p, -0.5, V, U, 0.0, M);
  for (std::size_t i = 0; i < k2; ++i) M[i * k2 + i] += 1.0;
  gemm(true, false, k2, k, p, 1.0, V, X, 0.0, W);
  std::vector<lapack_int> localPivots;
  std::vector<lapack_int>& pivots = tape ? tape->cayPivots : localPivots;
  if (pivots.size() < k2) pivots.resize(k2);
  if (LAPACKE_dgesv(LAPACK_ROW_MAJOR, asInt(k2), asInt(k), M, asInt(k2), pivots.data(), W, asInt(k)) != 0)
    return false;
  std::memcpy(out, X, n * sizeof(double));
  gemm(false, false, p, k, k2, 1.0, U, W, 1.0, out);
  return true;
}

void normalizeColumns(const double* Y, std::size_t p, std::size_t k, double eps, double* out, RetractionTape* tape) {
  if (tape && tape->colNorm.size() < k) tape->colNorm.resize(k);
  for (std::size_t j = 0; j < k; ++j) {
    double s = 0;
    for (std::size_t i = 0; i < p; ++i) s += Y[i * k + j] * Y[i * k + j];
    const double norm = std::sqrt(s);
    if (tape) tape->colNorm[j] = norm;
    const double floored = std::max(norm, eps);
    for (std::size_t i = 0; i < p; ++i) out[i * k + j] = Y[i * k + j] / floored;
  }
}

bool factorRetraction(const double* Y, std::size_t p, std::size_t k, double normY, const RetractionOptions& o,
                      double* out, Workspace& ws, RetractionTape* tape) {
  const std::size_t n = p * k;
  // Without a tape the factor, the blend and the result share `out`.
  double* Q = tape ? buffer(&tape->Q, ws, kSlot0, n) : out;
  switch (o.type) {
    case RetractionType::None:
      std::memcpy(out, Y, n * sizeof(double));
      return true;
    case RetractionType::Polar:
    case RetractionType::SoftPolar:
      if (!polarFactor(Y, p, k, Q, ws, o.polarMethod, o.gramConditionLimit, nullptr, tape)) return false;
      break;
    case RetractionType::NewtonSchulz:
    case RetractionType::SoftNewtonSchulz:
      newtonSchulz(Y, p, k, o.nsIterations, o.eps, false, Q, ws, tape);
      break;
    case RetractionType::QuinticNewtonSchulz:
    case RetractionType::SoftQuinticNewtonSchulz:
      newtonSchulz(Y, p, k, o.nsIterations, o.eps, true, Q, ws, tape);
      break;
    case RetractionType::Cayley:
    case RetractionType::SoftCayley:
      if (!cayleyFactor(Y, p, k, Q, ws, tape)) return false;
      break;
    case RetractionType::Normalize:
      normalizeColumns(Y, p, k, o.eps, Q, tape);
      break;
  }
  double* B = tape ? buffer(&tape->B, ws, kSlot0, n) : out;
  if (isSoft(o.type)) {
    const double a = 1.0 - o.w;
    for (std::size_t i = 0; i < n; ++i) B[i] = a * Y[i] + o.w * Q[i];
  } else if (B != Q) {
    std::memcpy(B, Q, n * sizeof(double));
  }
  const double normB = std::sqrt(squaredNorm(B, n));
  if (tape) {
    tape->normY = normY;
    tape->normB = normB;
  }
  const double scale = normY / std::max(normB, kBlendNormFloor);
  for (std::size_t i = 0; i < n; ++i) out[i] = B[i] * scale;
  return allFinite(out, n);
}

// ---- shared LAPACK drivers -----------------------------------------------------------------------

lapack_int svdOfRowMajor(const double* Y, std::size_t p, std::size_t k, double* sigma, double* Ua, double* VTa,
                         Workspace& ws) {
  const std::size_t r = std::min(p, k);
  double* A = ws.get(kSlot0, p * k);
  std::memcpy(A, Y, p * k * sizeof(double));
  lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', asInt(k), asInt(p), A, asInt(k), sigma, Ua, asInt(k), VTa,
                                   asInt(r));
  if (info > 0) {  // divide and conquer failed: try the QR-iteration driver once
    std::memcpy(A, Y, p * k * sizeof(double));
    std::vector<double> superb(r);
    info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, 'S', 'S', asInt(k), asInt(p), A, asInt(k), sigma, Ua, asInt(k), VTa,
                          asInt(r), superb.data());
  }
  return info;
}

}  // namespace nsa
