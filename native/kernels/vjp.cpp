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
    return {kQuinticNsA, kQuinticNsB, kQuinticNsC};
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
  reserveTape(tape_, opts_, p, k);
  switch (opts_.type) {
    case RetractionType::NewtonSchulz:
    case RetractionType::SoftNewtonSchulz:
    case RetractionType::QuinticNewtonSchulz:
    case RetractionType::SoftQuinticNewtonSchulz:
      big1_.resize(n);
      big2_.resize(n);
      break;
    case RetractionType::Cayley:
    case RetractionType::SoftCayley:
      cgV_.resize(2 * n);
      cgX_.resize(n);
      big2_.resize(2 * n);
      break;
    default:
      break;
  }
}

GramOutcome DifferentiableRetraction::gramForward(double* Y) {
  const std::size_t p = p_, k = k_;
  const double* Z = z_;
  gram(Z, p, k, tape_.S.data());  // (reserveTape sized S and M)
  const GramOutcome g = gramPolarMatrix(tape_.S.data(), k, opts_, tape_.M.data(), ws_, &tape_);
  if (g != GramOutcome::Done) return g;
  // R = Z·M and Y = nonneg(R) block by block, while each block of R is still in cache.
  const double* M = tape_.M.data();
  for (std::size_t r0 = 0, rows = rowBlock(k); r0 < p; r0 += rows) {
    const std::size_t m = std::min(rows, p - r0);
    gemm(false, false, m, k, k, 1.0, Z + r0 * k, M, 0.0, R_.data() + r0 * k);
    applyNonneg(R_.data() + r0 * k, m * k, Y + r0 * k);
  }
  return GramOutcome::Done;
}

bool DifferentiableRetraction::generalForward() {
  const std::size_t n = p_ * k_;
  const double normZ = std::sqrt(squaredNorm(z_, n));
  if (!(normZ >= kRetractionNormFloor) || !std::isfinite(normZ)) return false;
  if (gB_.size() < n) {  // first use (the Gram path needs neither)
    gB_.resize(n);
    gQ_.resize(n);
  }
  // The polar factor through the SVD: the Gram path refused Z, or the options ask for the SVD.
  RetractionOptions o = opts_;
  if (isPolar(o.type)) o.polarMethod = PolarMethod::Svd;
  try {
    return factorRetraction(z_, p_, k_, normZ, o, R_.data(), ws_, &tape_);
  } catch (const Error&) {  // a failed thin QR (Cayley): pass Z through, as a failed SVD does
    return false;
  }
}

void DifferentiableRetraction::forward(const double* Z, double* Y) {
  const std::size_t n = p_ * k_;
  z_ = Z;
  gram_ = false;
  identity_ = true;
  if (opts_.type != RetractionType::None && opts_.w != 0.0) {
    const GramOutcome g = triesGramPath(opts_, p_, k_) ? gramForward(Y) : GramOutcome::IllConditioned;
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
        if (R[i] > kSoftplusLinearThreshold) {
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

// R = B·‖Z‖/m with m = max(‖B‖, kBlendNormFloor), B = Z·M0: with gb = ⟨gR, B⟩, s = ‖Z‖/m,
//   gB = s·gR + bCoef·B,  GZ = zCoef·Z + (1−w)·gB + polarVjp(w·gB)   (w = 1 for hard polar),
// and polarVjp(G) = G·W + Z·A2(ZᵀG) (polarBackward). Since (1−w)I + wW = M0, everything folds into
//   GZ = gR·(s·M0) + Z·(zCoef·I + bCoef·M0² + A2),   ZᵀG = w·(s·K + bCoef·S·M0),  gb = Σ K ∘ M0,
// with K = ZᵀgR: the only p×k work is that GEMM and the two of GZ.
void DifferentiableRetraction::gramBackward(const double* gR, double* GZ) {
  const std::size_t p = p_, k = k_, kk = k * k;
  const double* Z = z_;
  const double* M0 = tape_.M0.data();
  const double* V = tape_.V.data();
  const double* sig = tape_.sigma.data();
  const double normZ = tape_.normY, normB = tape_.normB;
  double* K = t1_.data();
  gemm(true, false, k, k, p, 1.0, Z, gR, 0.0, K);
  double gb = 0;
  for (std::size_t i = 0; i < kk; ++i) gb += K[i] * M0[i];
  const double m = std::max(normB, kBlendNormFloor);
  const double s = normZ / m;
  const double bCoef = normB > kBlendNormFloor ? -gb * normZ / (m * m * normB) : 0.0;
  const double zCoef = gb / m / normZ;
  const double wq = isSoft(opts_.type) ? opts_.w : 1.0;
  // T = ZᵀG for the polar VJP's input G = wq·gB; Mh = VᵀTV/σ_i = UᵀGV.
  double* T = t1_.data();
  const double* SM0 = tape_.SM0.data();
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
  // R = B·‖Z‖/m with m = max(‖B‖, kBlendNormFloor): the gradient flows through both norms.
  const double normZ = tape_.normY, normB = tape_.normB;
  const double* B = tape_.B.data();
  const double m = std::max(normB, kBlendNormFloor);
  const double scale = normZ / m;
  const double gb = dot(gR, B, n);
  const double bCoef = normB > kBlendNormFloor ? -gb * normZ / (m * m * normB) : 0.0;
  double* gB = gB_.data();
  for (std::size_t i = 0; i < n; ++i) gB[i] = scale * gR[i] + bCoef * B[i];
  const double zCoef = gb / m / normZ;
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
  const double* V = tape_.V.data();
  const double* s = tape_.sigma.data();
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
    const double* X = tape_.nsX.data() + static_cast<std::size_t>(it) * n;
    const double* A = tape_.nsA.data() + static_cast<std::size_t>(it) * kk;
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
  const double nz = tape_.normY;
  if (nz > opts_.eps) {
    const double c = dot(G, z_, n) / (nz * nz * nz);
    for (std::size_t i = 0; i < n; ++i) GZ[i] += G[i] / nz - c * z_[i];
  } else {
    for (std::size_t i = 0; i < n; ++i) GZ[i] += G[i] / tape_.nsNorm;
  }
}

void DifferentiableRetraction::cayleyBackward(const double* GQ, double* GZ) {
  const std::size_t p = p_, k = k_, k2 = 2 * k, n = p * k;
  const double* X = tape_.qrX.data();
  const double* U = tape_.cayU.data();
  const double* V = tape_.cayV.data();
  const double* W = tape_.cayW.data();
  double* gU = big2_.data();  // p×2k
  double* gV = cgV_.data();   // p×2k
  double* gX = cgX_.data();   // p×k
  // out = X + U·W
  std::memcpy(gX, GQ, n * sizeof(double));
  gemm(false, true, p, k2, k, 1.0, GQ, W, 0.0, gU);  // gU = G Wᵀ
  double* gW = t1_.data();                            // 2k×k
  gemm(true, false, k2, k, p, 1.0, U, GQ, 0.0, gW);  // gW = Uᵀ G
  // W = M⁻¹·VᵀX: gRhs = M⁻ᵀ gW (LU reused), gM = −gRhs Wᵀ.
  LAPACKE_dgetrs(LAPACK_ROW_MAJOR, 'T', asInt(k2), asInt(k), tape_.cayLU.data(), asInt(k2), tape_.cayPivots.data(), gW,
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
              tape_.qrR.data(), asInt(k), gX, asInt(k));
  for (std::size_t i = 0; i < n; ++i) GZ[i] += gX[i];
}

void DifferentiableRetraction::normalizeBackward(const double* GQ, double* GZ) {
  const std::size_t p = p_, k = k_;
  for (std::size_t j = 0; j < k; ++j) {
    const double nr = tape_.colNorm[j];
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
