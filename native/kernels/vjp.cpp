#include "vjp.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "energy.hpp"  // rowBlock
#include "error.hpp"

namespace nsa {

namespace {

bool isStiefelType(RetractionType t) { return t != RetractionType::None && t != RetractionType::Normalize; }

// out = max(x, 0) elementwise, NaN kept (std::max's semantics). GCC -O2 compiles the plain loop
// to a compare-and-branch, which random signs mispredict half the time (it was 15% of an
// iteration); MAXPD computes exactly (0 > x ? 0 : x).
void clampNonnegative(const double* x, std::size_t n, double* out) {
  std::size_t i = 0;
#if defined(__SSE2__)
  const __m128d zero = _mm_setzero_pd();
  for (; i + 2 <= n; i += 2) _mm_storeu_pd(out + i, _mm_max_pd(zero, _mm_loadu_pd(x + i)));
#endif
  for (; i < n; ++i) out[i] = std::max(x[i], 0.0);
}

double dot(const double* a, const double* b, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Newton–Schulz step coefficients: X ← aX + X(bA + cA²). The cubic step ½X(3I − A) is (1.5, −½, 0).
struct NsCoefficients {
  double a, b, c;
};
NsCoefficients nsCoefficients(RetractionType t) {
  if (t == RetractionType::QuinticNewtonSchulz || t == RetractionType::SoftQuinticNewtonSchulz)
    return {3.4445, -4.7750, 2.0315};
  return {1.5, -0.5, 0.0};
}

// The polar factor's VJP in the Sylvester form: it divides by σᵢ + σⱼ, never by σᵢ − σⱼ, so equal
// singular values (orthonormal starts such as PCA loadings) are fine. In: T = ZᵀG with Z = UΣVᵀ
// (V row-major k×k). Out: C = (M − Mᵀ)/(σᵢ + σⱼ) − M/σⱼ for M = UᵀGV, and VΣ⁻¹ written over T.
// `TV` and `M` are k×k scratch.
void polarVjpCore(std::size_t k, const double* V, const double* sig, double* T, double* TV, double* M, double* C) {
  gemm(false, false, k, k, k, 1.0, T, V, 0.0, TV);
  gemm(true, false, k, k, k, 1.0, V, TV, 0.0, M);  // VᵀZᵀGV = Σ·(UᵀGV)
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j) M[i * k + j] /= sig[i];
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j)
      C[i * k + j] = (M[i * k + j] - M[j * k + i]) / (sig[i] + sig[j]) - M[i * k + j] / sig[j];
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t c = 0; c < k; ++c) T[i * k + c] = V[i * k + c] / sig[c];
}

}  // namespace

DifferentiableRetraction::DifferentiableRetraction(std::size_t p, std::size_t k,
                                                   const RetractionOptions& retraction,
                                                   Nonnegativity nonnegativity)
    : p_(p), k_(k), opts_(retraction), nonneg_(nonnegativity) {
  if (isStiefelType(opts_.type) && p < k)
    throwRange("Expected rows ≥ cols (p ≥ k) for a Stiefel retraction but received " +
               std::to_string(p) + "×" + std::to_string(k));
  const std::size_t n = p * k, kk = k * k;
  R_.resize(n);
  gR_.resize(n);
  t1_.resize(4 * kk);
  t2_.resize(4 * kk);
  t3_.resize(4 * kk);
  t4_.resize(4 * kk);
  switch (opts_.type) {
    case RetractionType::Polar:
    case RetractionType::SoftPolar:
      V_.resize(kk);
      sigma_.resize(k);
      polarU_.resize(n);
      gS_.resize(kk);
      gM0_.resize(kk);
      gSM0_.resize(kk);
      gM_.resize(kk);
      break;
    case RetractionType::NewtonSchulz:
    case RetractionType::SoftNewtonSchulz:
    case RetractionType::QuinticNewtonSchulz:
    case RetractionType::SoftQuinticNewtonSchulz: {
      const std::size_t T = static_cast<std::size_t>(std::max(opts_.nsIterations, 0));
      nsX_.resize((T + 1) * n);
      nsA_.resize(std::max<std::size_t>(T, 1) * kk);
      big1_.resize(n);
      big2_.resize(n);
      break;
    }
    case RetractionType::Cayley:
    case RetractionType::SoftCayley:
      cR_.resize(kk);
      cU_.resize(2 * n);
      cV_.resize(2 * n);
      cLU_.resize(4 * kk);
      cW_.resize(2 * kk);
      cPiv_.resize(2 * k);
      cgV_.resize(2 * n);
      cgX_.resize(n);
      big1_.resize(2 * n);
      big2_.resize(2 * n);
      break;
    case RetractionType::Normalize:
      colNorm_.resize(k);
      break;
    case RetractionType::None:
      break;
  }
}

bool DifferentiableRetraction::forwardFactor() {
  const std::size_t p = p_, k = k_, n = p * k;
  const double* Z = z_;
  double* Q = Q_.data();
  switch (opts_.type) {
    case RetractionType::Polar:
    case RetractionType::SoftPolar: {
      // The SVD path: the Gram path (gramForward) refused Z, or the options ask for the SVD.
      try {
        thinSvd(Z, p, k, polarU_.data(), sigma_.data(), V_.data(), ws_);
      } catch (const Error&) {
        return false;
      }
      gemm(false, true, p, k, k, 1.0, polarU_.data(), V_.data(), 0.0, Q);
      return true;
    }
    case RetractionType::NewtonSchulz:
    case RetractionType::SoftNewtonSchulz:
    case RetractionType::QuinticNewtonSchulz:
    case RetractionType::SoftQuinticNewtonSchulz: {
      // As newtonSchulz(), keeping every iterate.
      const NsCoefficients cf = nsCoefficients(opts_.type);
      const bool quintic = cf.c != 0.0;
      nsNorm_ = std::max(std::sqrt(squaredNorm(Z, n)), opts_.eps);
      double* X = nsX_.data();
      for (std::size_t i = 0; i < n; ++i) X[i] = Z[i] / nsNorm_;
      double* T = t1_.data();
      for (int it = 0; it < opts_.nsIterations; ++it) {
        const double* Xt = nsX_.data() + static_cast<std::size_t>(it) * n;
        double* next = nsX_.data() + static_cast<std::size_t>(it + 1) * n;
        double* A = nsA_.data() + static_cast<std::size_t>(it) * k * k;
        gram(Xt, p, k, A);
        if (!quintic) {
          for (std::size_t i = 0; i < k * k; ++i) T[i] = -A[i];
          for (std::size_t i = 0; i < k; ++i) T[i * k + i] += 3.0;
          gemm(false, false, p, k, k, 0.5, Xt, T, 0.0, next);
        } else {
          gemm(false, false, k, k, k, cf.c, A, A, 0.0, T);
          for (std::size_t i = 0; i < k * k; ++i) T[i] += cf.b * A[i];
          std::memcpy(next, Xt, n * sizeof(double));
          gemm(false, false, p, k, k, 1.0, Xt, T, cf.a, next);
        }
      }
      std::memcpy(Q, nsX_.data() + static_cast<std::size_t>(opts_.nsIterations) * n, n * sizeof(double));
      return true;
    }
    case RetractionType::Cayley:
    case RetractionType::SoftCayley: {
      // As cayleyFactor(), keeping the QR factors, the LU of I − ½VᵀU and the solution.
      const std::size_t k2 = 2 * k;
      double* X = big1_.data();  // the QR's Q (p×k), kept until backward
      try {
        thinQr(Z, p, k, X, cR_.data(), ws_);
      } catch (const Error&) {
        return false;
      }
      double* U = cU_.data();
      double* V = cV_.data();
      for (std::size_t i = 0; i < p; ++i)
        for (std::size_t j = 0; j < k; ++j) {
          U[i * k2 + j] = Z[i * k + j];
          U[i * k2 + k + j] = X[i * k + j];
          V[i * k2 + j] = X[i * k + j];
          V[i * k2 + k + j] = -Z[i * k + j];
        }
      double* M = cLU_.data();
      double* W = cW_.data();
      gemm(true, false, k2, k2, p, -0.5, V, U, 0.0, M);
      for (std::size_t i = 0; i < k2; ++i) M[i * k2 + i] += 1.0;
      gemm(true, false, k2, k, p, 1.0, V, X, 0.0, W);
      if (LAPACKE_dgesv(LAPACK_ROW_MAJOR, asInt(k2), asInt(k), M, asInt(k2), cPiv_.data(), W, asInt(k)) != 0)
        return false;
      std::memcpy(Q, X, n * sizeof(double));
      gemm(false, false, p, k, k2, 1.0, U, W, 1.0, Q);
      return true;
    }
    case RetractionType::Normalize:
      for (std::size_t j = 0; j < k; ++j) {
        double s = 0;
        for (std::size_t i = 0; i < p; ++i) s += Z[i * k + j] * Z[i * k + j];
        colNorm_[j] = std::sqrt(s);
        const double nrm = std::max(colNorm_[j], opts_.eps);
        for (std::size_t i = 0; i < p; ++i) Q[i * k + j] = Z[i * k + j] / nrm;
      }
      return true;
    case RetractionType::None:
    default:
      return false;
  }
}

DifferentiableRetraction::GramOutcome DifferentiableRetraction::gramForward(double* Y) {
  const std::size_t p = p_, k = k_, kk = k * k;
  const double* Z = z_;
  double* S = gS_.data();
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, asInt(k), asInt(p), 1.0, Z, asInt(k), 0.0, S, asInt(k));
  double normZ2 = 0;
  for (std::size_t i = 0; i < k; ++i) normZ2 += S[i * k + i];
  normZ_ = std::sqrt(normZ2);
  if (!(normZ_ >= 1e-12) || !std::isfinite(normZ_)) return GramOutcome::Unchanged;
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < i; ++j) S[i * k + j] = S[j * k + i];
  // Row-major upper = column-major lower: dsyevd reads S as stored. Vc: eigenvectors, column-major.
  double* Vc = t1_.data();
  double* lam = sigma_.data();
  std::memcpy(Vc, S, kk * sizeof(double));
  const double limit = opts_.polarMethod == PolarMethod::Gram ? 1e15 : opts_.gramConditionLimit;
  if (LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', asInt(k), Vc, asInt(k), lam) != 0 || !(lam[0] > 0) ||
      !(lam[k - 1] <= limit * lam[0]))
    return GramOutcome::IllConditioned;
  // W = V diag(λ^{-1/2}) Vᵀ (the same operations as polarFactorGram), M0 = (1−w)I + wW.
  double* Bm = t2_.data();
  double* M0 = gM0_.data();
  for (std::size_t c = 0; c < k; ++c) {
    const double s = 1.0 / std::sqrt(lam[c]);
    for (std::size_t i = 0; i < k; ++i) Bm[i + c * k] = Vc[i + c * k] * s;
  }
  const double w = isSoft(opts_.type) ? opts_.w : 1.0;
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, asInt(k), asInt(k), asInt(k), w, Bm, asInt(k), Vc,
              asInt(k), 0.0, M0, asInt(k));
  if (w != 1.0)
    for (std::size_t i = 0; i < k; ++i) M0[i * k + i] += 1.0 - w;
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t c = 0; c < k; ++c) V_[i * k + c] = Vc[i + c * k];
  for (std::size_t c = 0; c < k; ++c) sigma_[c] = std::sqrt(lam[c]);
  // ‖B‖² = ‖Z·M0‖² = tr(M0ᵀ S M0) = Σ M0 ∘ (S·M0).
  double* SM0 = gSM0_.data();
  gemm(false, false, k, k, k, 1.0, S, M0, 0.0, SM0);
  double normB2 = 0;
  for (std::size_t i = 0; i < kk; ++i) normB2 += M0[i] * SM0[i];
  normB_ = std::sqrt(normB2);
  const double scale = normZ_ / std::max(normB_, 1e-12);
  double* M = gM_.data();
  for (std::size_t i = 0; i < kk; ++i) M[i] = M0[i] * scale;
  // Z is finite (its norm is) and ‖R‖ = ‖Z‖, so R = Z·M is finite exactly when M is.
  if (!allFinite(M, kk)) return GramOutcome::Unchanged;
  // R = Z·M and Y = nonneg(R) block by block, while each block of R is still in cache.
  for (std::size_t r0 = 0, rows = rowBlock(k); r0 < p; r0 += rows) {
    const std::size_t m = std::min(rows, p - r0);
    gemm(false, false, m, k, k, 1.0, Z + r0 * k, M, 0.0, R_.data() + r0 * k);
    applyNonneg(R_.data() + r0 * k, m * k, Y + r0 * k);
  }
  return GramOutcome::Done;
}

bool DifferentiableRetraction::generalForward() {
  const std::size_t n = p_ * k_;
  const double* Z = z_;
  normZ_ = std::sqrt(squaredNorm(Z, n));
  if (!(normZ_ >= 1e-12) || !std::isfinite(normZ_)) return false;
  if (Q_.size() < n) {  // first use (the Gram path needs neither)
    Q_.resize(n);
    B_.resize(n);
    gB_.resize(n);
    gQ_.resize(n);
  }
  if (!forwardFactor()) return false;
  if (isSoft(opts_.type)) {
    const double a = 1.0 - opts_.w;
    for (std::size_t i = 0; i < n; ++i) B_[i] = a * Z[i] + opts_.w * Q_[i];
  } else {
    std::memcpy(B_.data(), Q_.data(), n * sizeof(double));
  }
  normB_ = std::sqrt(squaredNorm(B_.data(), n));
  const double scale = normZ_ / std::max(normB_, 1e-12);
  for (std::size_t i = 0; i < n; ++i) R_[i] = B_[i] * scale;
  return allFinite(R_.data(), n);
}

void DifferentiableRetraction::forward(const double* Z, double* Y) {
  const std::size_t n = p_ * k_;
  z_ = Z;
  gram_ = false;
  identity_ = true;
  if (opts_.type != RetractionType::None && opts_.w != 0.0) {
    const bool polar = opts_.type == RetractionType::Polar || opts_.type == RetractionType::SoftPolar;
    const GramOutcome g = polar && opts_.polarMethod != PolarMethod::Svd ? gramForward(Y) : GramOutcome::IllConditioned;
    if (g == GramOutcome::Done) {
      gram_ = true;
      identity_ = false;
    } else if (g == GramOutcome::IllConditioned) {
      identity_ = !generalForward();
    }
  }
  r_ = identity_ ? Z : R_.data();
  if (!gram_) applyNonneg(r_, n, Y);  // (the Gram path applied it block by block)
}

void DifferentiableRetraction::applyNonneg(const double* R, std::size_t n, double* Y) const {
  if (nonneg_ == Nonnegativity::Hard) {
    clampNonnegative(R, n, Y);
  } else {
    applyNonnegativity(R, n, nonneg_, Y);
  }
}

void DifferentiableRetraction::backward(const double* GY, double* GZ) {
  const std::size_t n = p_ * k_;
  // gR = (∂Y/∂R)ᵀ GY; when the retraction passed Z through, that is already GZ.
  double* gR = identity_ ? GZ : gR_.data();
  const double* R = r_;
  switch (nonneg_) {
    case Nonnegativity::None:
      if (identity_) std::memcpy(GZ, GY, n * sizeof(double));
      break;
    case Nonnegativity::Hard: {  // torch's clamp passes the gradient where the input is ≥ 0, 0 included
      // (the product form compiles without a branch, which random signs would mispredict)
      for (std::size_t i = 0; i < n; ++i) gR[i] = static_cast<double>(R[i] >= 0.0) * GY[i];
      break;
    }
    case Nonnegativity::Softplus:
      for (std::size_t i = 0; i < n; ++i) {
        if (R[i] > 20.0) {
          gR[i] = GY[i];
        } else {
          const double z = std::exp(R[i]);
          gR[i] = GY[i] * z / (z + 1.0);
        }
      }
      break;
  }
  if (identity_) return;
  const double* g = nonneg_ == Nonnegativity::None ? GY : gR;
  if (gram_) {
    gramBackward(g, GZ);
  } else {
    generalBackward(g, GZ);
  }
}

// R = B·‖Z‖/m with m = max(‖B‖, 1e-12), B = Z·M0: with gb = ⟨gR, B⟩, s = ‖Z‖/m,
//   gB = s·gR + bCoef·B,  GZ = zCoef·Z + (1−w)·gB + polarVjp(w·gB)   (w = 1 for hard polar),
// and polarVjp(G) = G·W + Z·A2(ZᵀG) (polarBackward). Since (1−w)I + wW = M0, everything folds into
//   GZ = gR·(s·M0) + Z·(zCoef·I + bCoef·M0² + A2),   ZᵀG = w·(s·K + bCoef·S·M0),  gb = Σ K ∘ M0,
// with K = ZᵀgR: the only p×k work is that GEMM and the two of GZ.
void DifferentiableRetraction::gramBackward(const double* gR, double* GZ) {
  const std::size_t p = p_, k = k_, kk = k * k;
  const double* Z = z_;
  const double* M0 = gM0_.data();
  const double* V = V_.data();
  const double* sig = sigma_.data();
  double* K = t1_.data();
  gemm(true, false, k, k, p, 1.0, Z, gR, 0.0, K);
  double gb = 0;
  for (std::size_t i = 0; i < kk; ++i) gb += K[i] * M0[i];
  const double m = std::max(normB_, 1e-12);
  const double s = normZ_ / m;
  const double bCoef = normB_ > 1e-12 ? -gb * normZ_ / (m * m * normB_) : 0.0;
  const double zCoef = gb / m / normZ_;
  const double wq = isSoft(opts_.type) ? opts_.w : 1.0;
  // T = ZᵀG for the polar VJP's input G = wq·gB; Mh = VᵀTV/σ_i = UᵀGV.
  double* T = t1_.data();
  const double* SM0 = gSM0_.data();
  for (std::size_t i = 0; i < kk; ++i) T[i] = wq * (s * K[i] + bCoef * SM0[i]);
  double* C = t4_.data();
  polarVjpCore(k, V, sig, T, t2_.data(), t3_.data(), C);
  // A = VΣ⁻¹CVᵀ + bCoef·M0² + zCoef·I.
  double* VS = T;
  double* CV = t2_.data();
  gemm(false, true, k, k, k, 1.0, C, V, 0.0, CV);
  double* A = t3_.data();
  gemm(false, false, k, k, k, 1.0, VS, CV, 0.0, A);
  gemm(false, false, k, k, k, bCoef, M0, M0, 1.0, A);
  for (std::size_t i = 0; i < k; ++i) A[i * k + i] += zCoef;
  double* M1 = t4_.data();
  for (std::size_t i = 0; i < kk; ++i) M1[i] = s * M0[i];
  for (std::size_t r0 = 0, rows = rowBlock(k); r0 < p; r0 += rows) {
    const std::size_t mRows = std::min(rows, p - r0);
    gemm(false, false, mRows, k, k, 1.0, gR + r0 * k, M1, 0.0, GZ + r0 * k);
    gemm(false, false, mRows, k, k, 1.0, Z + r0 * k, A, 1.0, GZ + r0 * k);
  }
}

void DifferentiableRetraction::generalBackward(const double* gR, double* GZ) {
  const std::size_t n = p_ * k_;
  // R = B·‖Z‖/m with m = max(‖B‖, 1e-12): the gradient flows through both norms.
  const double m = std::max(normB_, 1e-12);
  const double scale = normZ_ / m;
  const double gb = dot(gR, B_.data(), n);
  const double bCoef = normB_ > 1e-12 ? -gb * normZ_ / (m * m * normB_) : 0.0;
  double* gB = gB_.data();
  for (std::size_t i = 0; i < n; ++i) gB[i] = scale * gR[i] + bCoef * B_[i];
  const double zCoef = gb / m / normZ_;
  const bool soft = isSoft(opts_.type);
  const double a = soft ? 1.0 - opts_.w : 0.0;
  for (std::size_t i = 0; i < n; ++i) GZ[i] = zCoef * z_[i] + a * gB[i];
  double* gQ = gQ_.data();
  const double wq = soft ? opts_.w : 1.0;
  for (std::size_t i = 0; i < n; ++i) gQ[i] = wq * gB[i];
  backwardFactor(gQ, GZ);
}

void DifferentiableRetraction::backwardFactor(const double* GQ, double* GZ) {
  switch (opts_.type) {
    case RetractionType::Polar:
    case RetractionType::SoftPolar:
      polarBackward(GQ, GZ);
      break;
    case RetractionType::NewtonSchulz:
    case RetractionType::SoftNewtonSchulz:
    case RetractionType::QuinticNewtonSchulz:
    case RetractionType::SoftQuinticNewtonSchulz:
      newtonSchulzBackward(GQ, GZ);
      break;
    case RetractionType::Cayley:
    case RetractionType::SoftCayley:
      cayleyBackward(GQ, GZ);
      break;
    case RetractionType::Normalize:
      normalizeBackward(GQ, GZ);
      break;
    case RetractionType::None:
      break;
  }
}

void DifferentiableRetraction::polarBackward(const double* GQ, double* GZ) {
  const std::size_t p = p_, k = k_;
  const double* V = V_.data();
  const double* s = sigma_.data();
  double* T = t1_.data();
  gemm(true, false, k, k, p, 1.0, z_, GQ, 0.0, T);  // ZᵀG = VΣUᵀG
  double* C = t4_.data();
  polarVjpCore(k, V, s, T, t2_.data(), t3_.data(), C);
  // A1 = VΣ⁻¹Vᵀ, A2 = VΣ⁻¹CVᵀ; GZ += G·A1 + Z·A2.
  double* VS = T;
  double* A1 = t2_.data();
  gemm(false, true, k, k, k, 1.0, VS, V, 0.0, A1);
  double* CV = t3_.data();
  gemm(false, true, k, k, k, 1.0, C, V, 0.0, CV);
  double* A2 = t4_.data() + k * k;
  gemm(false, false, k, k, k, 1.0, VS, CV, 0.0, A2);
  gemm(false, false, p, k, k, 1.0, GQ, A1, 1.0, GZ);
  gemm(false, false, p, k, k, 1.0, z_, A2, 1.0, GZ);
}

void DifferentiableRetraction::newtonSchulzBackward(const double* GQ, double* GZ) {
  const std::size_t p = p_, k = k_, n = p * k, kk = k * k;
  const NsCoefficients cf = nsCoefficients(opts_.type);
  double* G = big1_.data();
  double* next = big2_.data();
  std::memcpy(G, GQ, n * sizeof(double));
  double* H = t1_.data();
  double* F = t2_.data();
  double* J = t3_.data();
  double* AH = t4_.data();
  for (int it = opts_.nsIterations - 1; it >= 0; --it) {
    const double* X = nsX_.data() + static_cast<std::size_t>(it) * n;
    const double* A = nsA_.data() + static_cast<std::size_t>(it) * kk;
    // X' = aX + X·f(A), f(A) = bA + cA²; adjoint: aG + G·f(A) + X(J + Jᵀ), J = bH + c(HA + AH), H = XᵀG.
    gemm(true, false, k, k, p, 1.0, X, G, 0.0, H);
    for (std::size_t i = 0; i < kk; ++i) {
      F[i] = cf.b * A[i];
      J[i] = cf.b * H[i];
    }
    if (cf.c != 0.0) {
      gemm(false, false, k, k, k, cf.c, A, A, 1.0, F);
      gemm(false, false, k, k, k, cf.c, H, A, 1.0, J);
      gemm(false, false, k, k, k, cf.c, A, H, 1.0, J);
    }
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = 0; j < k; ++j) AH[i * k + j] = J[i * k + j] + J[j * k + i];
    for (std::size_t i = 0; i < n; ++i) next[i] = cf.a * G[i];
    gemm(false, false, p, k, k, 1.0, G, F, 1.0, next);
    gemm(false, false, p, k, k, 1.0, X, AH, 1.0, next);
    std::swap(G, next);
  }
  // X₀ = Z / max(‖Z‖, eps).
  const double nz = normZ_;
  if (nz > opts_.eps) {
    const double c = dot(G, z_, n) / (nz * nz * nz);
    for (std::size_t i = 0; i < n; ++i) GZ[i] += G[i] / nz - c * z_[i];
  } else {
    for (std::size_t i = 0; i < n; ++i) GZ[i] += G[i] / nsNorm_;
  }
}

void DifferentiableRetraction::cayleyBackward(const double* GQ, double* GZ) {
  const std::size_t p = p_, k = k_, k2 = 2 * k, n = p * k;
  const double* X = big1_.data();
  const double* U = cU_.data();
  const double* V = cV_.data();
  const double* W = cW_.data();
  double* gU = big2_.data();  // p×2k
  double* gV = cgV_.data();   // p×2k
  double* gX = cgX_.data();   // p×k
  // out = X + U·W
  std::memcpy(gX, GQ, n * sizeof(double));
  gemm(false, true, p, k2, k, 1.0, GQ, W, 0.0, gU);  // gU = G Wᵀ
  double* gW = t1_.data();                            // 2k×k
  gemm(true, false, k2, k, p, 1.0, U, GQ, 0.0, gW);  // gW = Uᵀ G
  // W = M⁻¹·VᵀX: gRhs = M⁻ᵀ gW (LU reused), gM = −gRhs Wᵀ.
  LAPACKE_dgetrs(LAPACK_ROW_MAJOR, 'T', asInt(k2), asInt(k), cLU_.data(), asInt(k2), cPiv_.data(), gW,
                 asInt(k));
  const double* gRhs = gW;
  double* gM = t2_.data();  // 2k×2k
  gemm(false, true, k2, k2, k, -1.0, gRhs, W, 0.0, gM);
  // M = I − ½VᵀU: gV = −½ U gMᵀ, gU += −½ V gM.
  gemm(false, true, p, k2, k2, -0.5, U, gM, 0.0, gV);
  gemm(false, false, p, k2, k2, -0.5, V, gM, 1.0, gU);
  // Rhs = VᵀX: gV += X gRhsᵀ, gX += V gRhs.
  gemm(false, true, p, k2, k, 1.0, X, gRhs, 1.0, gV);
  gemm(false, false, p, k, k2, 1.0, V, gRhs, 1.0, gX);
  // U = [Z, X], V = [X, −Z].
  for (std::size_t i = 0; i < p; ++i)
    for (std::size_t j = 0; j < k; ++j) {
      GZ[i * k + j] += gU[i * k2 + j] - gV[i * k2 + k + j];
      gX[i * k + j] += gU[i * k2 + k + j] + gV[i * k2 + j];
    }
  // Thin QR Z = XR: gZ += [gX + X(tril(B − Bᵀ, −1) − B)] R⁻ᵀ with B = XᵀgX.
  double* Bq = t3_.data();
  gemm(true, false, k, k, p, 1.0, X, gX, 0.0, Bq);
  double* Cq = t4_.data();
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j)
      Cq[i * k + j] = (j < i ? Bq[i * k + j] - Bq[j * k + i] : 0.0) - Bq[i * k + j];
  gemm(false, false, p, k, k, 1.0, X, Cq, 1.0, gX);
  cblas_dtrsm(CblasRowMajor, CblasRight, CblasUpper, CblasTrans, CblasNonUnit, asInt(p), asInt(k), 1.0,
              cR_.data(), asInt(k), gX, asInt(k));
  for (std::size_t i = 0; i < n; ++i) GZ[i] += gX[i];
}

void DifferentiableRetraction::normalizeBackward(const double* GQ, double* GZ) {
  const std::size_t p = p_, k = k_;
  for (std::size_t j = 0; j < k; ++j) {
    const double nr = colNorm_[j];
    if (nr > opts_.eps) {
      double gz = 0;
      for (std::size_t i = 0; i < p; ++i) gz += GQ[i * k + j] * z_[i * k + j];
      const double c = gz / (nr * nr * nr);
      for (std::size_t i = 0; i < p; ++i) GZ[i * k + j] += GQ[i * k + j] / nr - c * z_[i * k + j];
    } else {
      for (std::size_t i = 0; i < p; ++i) GZ[i * k + j] += GQ[i * k + j] / opts_.eps;
    }
  }
}

}  // namespace nsa
