#include "nsa_energy.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "error.hpp"
#include "linalg.hpp"

namespace nsa {

namespace {

// The p×k·k×k products and k×k Grams go through BLAS even for the small k of NSA-Flow: OpenBLAS's
// small-matrix kernels beat plain loops here (measured: a whole 300×66, k = 5 fit took 2.2 ms with
// loops up to k = 8 and 1.4 ms with BLAS throughout).

// S = VᵀV (k×k, both triangles).
void gramOf(const double* V, std::size_t p, std::size_t k, double* S) { gram(V, p, k, S); }

// C = beta·C + A·M for A p×k, M k×k (row-major).
void timesSmall(const double* A, std::size_t p, std::size_t k, const double* M, double beta, double* C) {
  gemm(false, false, p, k, k, 1.0, A, M, beta, C);
}

// C = AᵀB (k×k) for A, B p×k.
void crossSmall(const double* A, const double* B, std::size_t p, std::size_t k, double* C) {
  gemm(true, false, k, k, p, 1.0, A, B, 0.0, C);
}

}  // namespace

CertifiedEnergy::CertifiedEnergy(const CertifiedEnergyOptions& options, const CertifiedData& data) : options_(options), data_(data) {
  const std::size_t p = data.p, k = data.k;
  if (p == 0 || k == 0) throwRange("Expected a variable with at least one row and one column");
  if (!(options.w >= 0 && options.w <= 1)) throwRange("Expected w in [0, 1]");
  varCols_ = options.mode == CertifiedMode::Signed ? 2 * k : k;
  size_ = p * varCols_;
  M_.assign(k * k, 0);
  B_.assign(k * k, 0);
  // Signed mode works on V = V⁺ − V⁻ and measures O on the 2k lobes, weighted data fit or not.
  auto allocateSigned = [&] {
    if (options.mode != CertifiedMode::Signed) return;
    V_.assign(p * k, 0);
    GV_.assign(p * k, 0);
    lobeGram_.assign(4 * k * k, 0);
    lobeM_.assign(4 * k * k, 0);
  };
  switch (options.mode) {
    case CertifiedMode::Target:
      if (!data.X0) throwRange("Expected a target X0 in 'target' mode");
      if (!data.W) {
        // Row blocks of ~256 KiB of k×k products stay in cache between the pass's two uses of them;
        // wide Y (k > 48) is compute-bound: whole-matrix BLAS calls, threaded by OpenBLAS, do better.
        const int threads = k > 48 ? 1 : teamThreads(0, double(p) * double(k));
        team_ = std::make_unique<RowTeam>(threads);
        blockRows_ = k <= 48 ? std::clamp<std::size_t>(262144 / (k * k * 2), 32, 1024) : p;
        partS_.assign(std::size_t(threads) * k * k, 0);
        partF_.assign(std::size_t(threads), 0);
      }
      if (data.W) {
        for (std::size_t i = 0; i < p * k; ++i)
          if (data.W[i] != 0) x0Squared_ += data.W[i] * data.X0[i] * data.X0[i];
        if (!(x0Squared_ > 0) || !std::isfinite(x0Squared_))
          throwRange("Expected a target X0 with a nonzero, finite weighted norm (F = Σ ω(Y − X0)²/Σ ω·X0²) at the entries of nonzero weight");
      } else {
        x0Squared_ = team_ ? squaredNormOnTeam(data.X0) : squaredNorm(data.X0, p * k);
        if (!(x0Squared_ > 0) || !std::isfinite(x0Squared_))
          throwRange("Expected a target X0 with a nonzero, finite norm (F = ‖Y − X0‖²/‖X0‖²)");
      }
      break;
    case CertifiedMode::Data:
    case CertifiedMode::Signed: {
      if (!data.X || data.n == 0) throwRange("Expected data X in 'data' and 'signed' modes");
      const std::size_t n = data.n;
      if (data.W) {
        // ω∘X (0 where ω = 0, whatever X holds there), D = diag(p/Σⱼ ωᵢⱼ) and Σ ω·X², once.
        Xw_.assign(n * p, 0);
        rowScale_.assign(n, 0);
        for (std::size_t i = 0; i < n; ++i) {
          double rowWeight = 0;
          for (std::size_t j = 0; j < p; ++j) {
            const double om = data.W[i * p + j];
            if (om == 0) continue;
            const double x = data.X[i * p + j];
            Xw_[i * p + j] = om * x;
            traceS_ += om * x * x;
            rowWeight += om;
          }
          rowScale_[i] = rowWeight > 0 ? double(p) / rowWeight : 0.0;
        }
        if (!(traceS_ > 0) || !std::isfinite(traceS_))
          throwRange("Expected data X with a nonzero, finite weighted norm (F = Σ ω(X − TVᵀ)²/Σ ω·X²) at the entries of nonzero weight");
        T_.assign(n * k, 0);
        U_.assign(n * k, 0);
        Rw_.assign(n * p, 0);
        allocateSigned();
        break;
      }
      traceS_ = squaredNorm(data.X, n * p);
      if (!(traceS_ > 0) || !std::isfinite(traceS_))
        throwRange("Expected data X with a nonzero, finite norm (F = ‖X − XVVᵀ‖²/‖X‖²)");
      // SV per evaluation: S·V costs 2p²k flops, Xᵀ(X·V) costs 4npk; S once costs np² (repaid within a
      // few evaluations) and p² doubles, so S is formed when p < 2n and it stays small.
      formS_ = p < 2 * n && p <= 4096;
      if (formS_) {
        S_.assign(p * p, 0);
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, asInt(p), asInt(n), 1.0, data.X, asInt(p), 0.0, S_.data(), asInt(p));
        for (std::size_t i = 0; i < p; ++i)
          for (std::size_t j = 0; j < i; ++j) S_[i * p + j] = S_[j * p + i];
      } else {
        T_.assign(n * k, 0);
      }
      SV_.assign(p * k, 0);
      A_.assign(k * k, 0);
      K1_.assign(k * k, 0);
      K2_.assign(k * k, 0);
      allocateSigned();
      break;
    }
    case CertifiedMode::Anchored: {
      const std::size_t m = data.m;
      if (data.W) throwRange("Expected no weights in 'anchored' mode (its fidelity is to the anchor, which has no missing entries)");
      if (!data.X0 || m == 0) throwRange("Expected an anchor (X0) in 'anchored' mode");
      if (options.anchor == AnchorKind::Target) {
        if (m != k) throwRange("Expected an anchor with as many columns as Y for anchor 'target'");
        anchorSquared_.assign(k, 0);
        columnSums_.assign(2 * k, 0);
        for (std::size_t r = 0; r < p; ++r)
          for (std::size_t j = 0; j < k; ++j) anchorSquared_[j] += data.X0[r * k + j] * data.X0[r * k + j];
        for (std::size_t j = 0; j < k; ++j)
          if (!(anchorSquared_[j] > 0) || !std::isfinite(anchorSquared_[j]))
            throwRange("Expected anchor columns with nonzero, finite norms for anchor 'target' (column " + std::to_string(j) +
                       " is zero)");
      } else {
        // Q from the SVD of A: left singular vectors whose singular value is above the usual rank
        // tolerance max(p, m)·ε·σ_max (a rank-deficient anchor spans fewer directions than it has columns).
        const std::size_t r0 = std::min(p, m);
        std::vector<double> a(data.X0, data.X0 + p * m), s(r0), u(p * r0), superb(r0 > 1 ? r0 - 1 : 1);
        const lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'S', 'N', asInt(p), asInt(m), a.data(), asInt(m), s.data(),
                                               u.data(), asInt(r0), nullptr, 1, superb.data());
        if (info != 0) throwNumerical("The SVD of the anchor did not converge");
        const double cut = s.empty() ? 0 : s[0] * double(std::max(p, m)) * 2.220446049250313e-16;
        rank_ = 0;
        while (rank_ < r0 && s[rank_] > cut) ++rank_;
        if (rank_ == 0) throwRange("Expected an anchor with a nonzero, finite norm");
        Q_.assign(p * rank_, 0);
        for (std::size_t i = 0; i < p; ++i)
          for (std::size_t j = 0; j < rank_; ++j) Q_[i * rank_ + j] = u[i * r0 + j];
        R_.assign(rank_ * k, 0);
        V_.assign(p * k, 0);  // D = Y − QQᵀY
      }
      break;
    }
  }
}

// ‖x‖² of a p×k matrix on the team: each thread sums its rows in index order, the partial sums added
// in thread order (one thread: squaredNorm, bit for bit).
double CertifiedEnergy::squaredNormOnTeam(const double* x) {
  const std::size_t k = data_.k;
  std::fill(partF_.begin(), partF_.end(), 0.0);
  auto f = [&](int th, std::size_t b, std::size_t e) { partF_[th] = squaredNorm(x + b * k, (e - b) * k); };
  runRowsIfWorth(*team_, data_.p, blockRows_, double(data_.p) * double(k), f);
  double s = 0;
  for (double v : partF_) s += v;
  return s;
}

void CertifiedEnergy::orthogonalityTerm(const double* V, double* GV, CertifiedTerms& t, double gradientBeta) {
  const std::size_t p = data_.p, k = data_.k;
  gramOf(V, p, k, B_.data());
  t.orthogonality = orthogonalityFunctional(options_.orthogonality, B_.data(), k, GV ? M_.data() : nullptr);
  if (GV) {
    for (double& x : M_) x *= options_.w;
    timesSmall(V, p, k, M_.data(), gradientBeta, GV);
  }
}

void CertifiedEnergy::weightedDataFidelity(const double* V, double* GV, CertifiedTerms& t) {
  const std::size_t p = data_.p, k = data_.k, n = data_.n;
  const double* X = data_.X;
  const double* W = data_.W;
  double* T = T_.data();
  double* R = Rw_.data();
  // T = D·(ω∘X)·V, then R = X − T·Vᵀ at the weighted entries (0 elsewhere): a residual, no cancellation.
  gemm(false, false, n, k, p, 1.0, Xw_.data(), V, 0.0, T);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < k; ++c) T[i * k + c] *= rowScale_[i];
  for (std::size_t i = 0; i < n * p; ++i) R[i] = W[i] != 0 ? X[i] : 0.0;
  gemm(false, true, n, p, k, -1.0, T, V, 1.0, R);
  double r2 = 0;
  for (std::size_t i = 0; i < n * p; ++i) {
    const double om = W[i];
    if (om == 0) {
      R[i] = 0;
      continue;
    }
    r2 += om * R[i] * R[i];
    R[i] *= om;
  }
  t.fidelity = r2 / traceS_;
  if (!GV) return;
  // ∇[(1 − w)F] = −2c·((ω∘X)ᵀ·D·R·V + Rᵀ·T), c = (1 − w)/Σ ω·X², R now ω∘(X − TVᵀ).
  const double c = (1 - options_.w) / traceS_;
  double* U = U_.data();
  gemm(false, false, n, k, p, 1.0, R, V, 0.0, U);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t q = 0; q < k; ++q) U[i * k + q] *= rowScale_[i];
  gemm(true, false, p, k, n, -2 * c, Xw_.data(), U, 0.0, GV);
  gemm(true, false, p, k, n, -2 * c, R, T, 1.0, GV);
}

void CertifiedEnergy::dataTerms(const double* V, double* GV, CertifiedTerms& t, bool withOrthogonality) {
  const std::size_t p = data_.p, k = data_.k, n = data_.n;
  const double w = options_.w;
  if (data_.W) {
    weightedDataFidelity(V, GV, t);
    if (withOrthogonality) orthogonalityTerm(V, GV, t, 1.0);
    return;
  }
  gramOf(V, p, k, B_.data());
  double* SV = SV_.data();
  if (formS_) {
    gemm(false, false, p, k, p, 1.0, S_.data(), V, 0.0, SV);
  } else {
    gemm(false, false, n, k, p, 1.0, data_.X, V, 0.0, T_.data());
    gemm(true, false, p, k, n, 1.0, data_.X, T_.data(), 0.0, SV);
  }
  crossSmall(V, SV, p, k, A_.data());
  double trA = 0, AB = 0;
  for (std::size_t i = 0; i < k; ++i) trA += A_[i * k + i];
  for (std::size_t i = 0; i < k * k; ++i) AB += A_[i] * B_[i];
  t.fidelity = (traceS_ - 2 * trA + AB) / traceS_;
  if (withOrthogonality) t.orthogonality = orthogonalityFunctional(options_.orthogonality, B_.data(), k, GV ? M_.data() : nullptr);
  if (!GV) return;
  // ∇[(1 − w)F + wO] = SV·K1 + V·K2 with c = (1 − w)/tr S, K1 = 2c·B − 4c·I, K2 = 2c·A + w·M.
  const double c = (1 - w) / traceS_;
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j) {
      K1_[i * k + j] = 2 * c * B_[i * k + j] - (i == j ? 4 * c : 0.0);
      K2_[i * k + j] = 2 * c * A_[i * k + j] + (withOrthogonality ? w * M_[i * k + j] : 0.0);
    }
  timesSmall(SV, p, k, K1_.data(), 0.0, GV);
  timesSmall(V, p, k, K2_.data(), 1.0, GV);
}

// With the gradient: the Gram B = YᵀY from per-thread block Grams on the team (gramAccumulate), M from B, then
// one sweep over row blocks computes ‖Y − X0‖² and G = c(Y − X0) + Y·(wM) while the block is in cache:
// Y is read twice, X0 once, G written once. Without: one sweep, the block Grams and ‖Y − X0‖² together.
// Each thread sums its rows in order; the partial sums are added in thread order (see
// test/threads.test.ts for what that changes between thread counts).
void CertifiedEnergy::targetTerms(const double* Y, double* G, CertifiedTerms& t, bool gramKnown,
                                  const BoundObjective::FormRows* form) {
  const std::size_t p = data_.p, k = data_.k, kk = k * k;
  const double* X0 = data_.X0;
  const double w = options_.w;
  const double c = 2 * (1 - w) / x0Squared_;
  RowTeam& team = *team_;
  const int T = team.size();
  valued_ = G ? nullptr : Y;
  if (G) {
    // The Gram first (M needs all of it): per-thread block Grams on the team, added in thread order,
    // as the value sweep below adds them (so a Gram kept from it is this one, bit for bit).
    auto gramPass = [&](int th, std::size_t b, std::size_t e) {
      double* S = partS_.data() + th * kk;
      for (std::size_t r = b; r < e; r += blockRows_) gramAccumulate(Y + r * k, std::min(blockRows_, e - r), k, S, r == b);
    };
    if (!gramKnown) {
      std::fill(partS_.begin(), partS_.end(), 0.0);
      runRows(team, p, blockRows_, gramPass);
      std::fill(B_.begin(), B_.end(), 0.0);
      for (int th = 0; th < T; ++th)
        for (std::size_t i = 0; i < kk; ++i) B_[i] += partS_[th * kk + i];
      for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < i; ++j) B_[i * k + j] = B_[j * k + i];
    }
    t.orthogonality = orthogonalityFunctional(options_.orthogonality, B_.data(), k, M_.data());
    for (double& x : M_) x *= w;
    const double* M = M_.data();
    auto f = [&](int th, std::size_t b, std::size_t e) {
      double d2[4] = {0, 0, 0, 0};
      for (std::size_t r = b; r < e; r += blockRows_) {
        const std::size_t m = std::min(blockRows_, e - r), off = r * k, len = m * k;
        const double* Yb = Y + off;
        const double* Xb = X0 + off;
        double* Gb = G + off;
        gemm(false, false, m, k, k, 1.0, Yb, M, 0.0, Gb);
        std::size_t i = 0;
        for (; i + 4 <= len; i += 4)
          for (std::size_t l = 0; l < 4; ++l) {
            const double d = Yb[i + l] - Xb[i + l];
            d2[l] += d * d;
            Gb[i + l] += c * d;
          }
        for (; i < len; ++i) {
          const double d = Yb[i] - Xb[i];
          d2[0] += d * d;
          Gb[i] += c * d;
        }
      }
      partF_[th] = (d2[0] + d2[1]) + (d2[2] + d2[3]);
    };
    std::fill(partF_.begin(), partF_.end(), 0.0);
    runRows(team, p, blockRows_, f);
    double d2 = 0;
    for (int th = 0; th < T; ++th) d2 += partF_[th];
    t.fidelity = d2 / x0Squared_;
    return;
  }
  auto f = [&](int th, std::size_t b, std::size_t e) {
    double* S = partS_.data() + th * kk;
    double d2[4] = {0, 0, 0, 0};
    for (std::size_t r = b; r < e; r += blockRows_) {
      const std::size_t m = std::min(blockRows_, e - r), off = r * k, len = m * k;
      const double* Yb = Y + off;
      const double* Xb = X0 + off;
      if (form) (*form)(th, off, off + len);
      gramAccumulate(Yb, m, k, S, r == b);
      squaredDistanceLanes(Yb, Xb, len, d2);
    }
    partF_[th] = (d2[0] + d2[1]) + (d2[2] + d2[3]);
  };
  std::fill(partS_.begin(), partS_.end(), 0.0);
  std::fill(partF_.begin(), partF_.end(), 0.0);
  runRows(team, p, blockRows_, f);
  double d2 = 0;
  std::fill(B_.begin(), B_.end(), 0.0);
  for (int th = 0; th < T; ++th) {
    d2 += partF_[th];
    for (std::size_t i = 0; i < kk; ++i) B_[i] += partS_[th * kk + i];
  }
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < i; ++j) B_[i * k + j] = B_[j * k + i];
  t.fidelity = d2 / x0Squared_;
  t.orthogonality = orthogonalityFunctional(options_.orthogonality, B_.data(), k, nullptr);
}

double CertifiedEnergy::total(const CertifiedTerms& t) const {
  const double w = options_.w;
  return (1 - w) * t.fidelity + w * t.orthogonality + (options_.mode == CertifiedMode::Signed ? options_.overlapPenalty * t.overlap : 0.0);
}

CertifiedTerms CertifiedEnergy::gradientAtValued(const double* Y, double* G) {
  if (!G || Y != valued_ || !valueIsCheap()) return evaluate(Y, G);
  CertifiedTerms t;
  targetTerms(Y, G, t, true);
  t.energy = total(t);
  return t;
}

CertifiedTerms CertifiedEnergy::valueOfFormed(double* Y, const BoundObjective::FormRows& form) {
  if (!valueIsCheap()) throwRange("valueOfFormed: offered only in 'target' mode without weights");
  CertifiedTerms t;
  targetTerms(Y, nullptr, t, false, &form);
  t.energy = total(t);
  return t;
}

CertifiedTerms CertifiedEnergy::evaluate(const double* Y, double* G) {
  valued_ = nullptr;
  const std::size_t p = data_.p, k = data_.k;
  const double w = options_.w;
  CertifiedTerms t;
  switch (options_.mode) {
    case CertifiedMode::Target: {
      const double* X0 = data_.X0;
      const std::size_t n = p * k;
      if (data_.W) {
        // Σ ω(Y − X0)² and ∇F; an entry of weight 0 is skipped (X0 may hold anything there).
        const double* W = data_.W;
        const double c = 2 * (1 - w) / x0Squared_;
        double d2 = 0;
        for (std::size_t i = 0; i < n; ++i) {
          const double om = W[i];
          if (om == 0) {
            if (G) G[i] = 0;
            continue;
          }
          const double d = Y[i] - X0[i];
          d2 += om * d * d;
          if (G) G[i] = c * om * d;
        }
        t.fidelity = d2 / x0Squared_;
        orthogonalityTerm(Y, G, t, 1.0);
        break;
      }
      targetTerms(Y, G, t);
      break;
    }
    case CertifiedMode::Data:
      dataTerms(Y, G, t);
      break;
    case CertifiedMode::Signed: {
      double* V = V_.data();
      double pp = 0, mm = 0, pm = 0;
      for (std::size_t r = 0; r < p; ++r) {
        const double* zp = Y + r * 2 * k;
        const double* zm = zp + k;
        for (std::size_t j = 0; j < k; ++j) {
          V[r * k + j] = zp[j] - zm[j];
          pp += zp[j] * zp[j];
          mm += zm[j] * zm[j];
          pm += zp[j] * zm[j];
        }
      }
      const double N = pp + mm;
      t.overlap = N > 0 ? 2 * pm / N : 0.0;
      dataTerms(V, G ? GV_.data() : nullptr, t, false);
      // O on the 2k lobes (see nsa_energy.hpp): value from ZᵀZ, gradient w·Z·M added below.
      gramOf(Y, p, 2 * k, lobeGram_.data());
      t.orthogonality = orthogonalityFunctional(options_.orthogonality, lobeGram_.data(), 2 * k, G ? lobeM_.data() : nullptr);
      if (G) {
        const double lam = options_.overlapPenalty;
        const double c = N > 0 ? 2 * lam / N : 0.0, P = t.overlap;
        for (std::size_t r = 0; r < p; ++r) {
          const double* zp = Y + r * 2 * k;
          const double* zm = zp + k;
          double* gp = G + r * 2 * k;
          double* gm = gp + k;
          const double* g = GV_.data() + r * k;
          for (std::size_t j = 0; j < k; ++j) {
            gp[j] = g[j] + c * (zm[j] - P * zp[j]);
            gm[j] = -g[j] + c * (zp[j] - P * zm[j]);
          }
        }
        for (double& x : lobeM_) x *= w;
        timesSmall(Y, p, 2 * k, lobeM_.data(), 1.0, G);
      }
      break;
    }
    case CertifiedMode::Anchored: {
      const std::size_t n = p * k;
      const double yy = squaredNorm(Y, n);
      if (options_.anchor == AnchorKind::Subspace) {
        if (!(yy > 0)) {
          t.fidelity = yy == 0 ? 1.0 : NAN;
          if (G)
            for (std::size_t i = 0; i < n; ++i) G[i] = 0;
        } else {
          // R = QᵀY (r×k), D = Y − Q·R, computed as a residual (no cancellation when F ≈ 0).
          const std::size_t r = rank_;
          gemm(true, false, r, k, p, 1.0, Q_.data(), Y, 0.0, R_.data());
          double* D = V_.data();
          for (std::size_t i = 0; i < n; ++i) D[i] = Y[i];
          gemm(false, false, p, k, r, -1.0, Q_.data(), R_.data(), 1.0, D);
          const double F = squaredNorm(D, n) / yy;
          t.fidelity = F;
          if (G) {
            const double c = 2 * (1 - w) / yy;
            for (std::size_t i = 0; i < n; ++i) G[i] = c * (D[i] - F * Y[i]);
          }
        }
      } else {
        const double* A = data_.X0;
        double* cj = columnSums_.data();  // c_j = y_jᵀa_j
        double* nj = cj + k;                // n_j = ‖y_j‖²
        for (std::size_t j = 0; j < 2 * k; ++j) cj[j] = 0;
        for (std::size_t r = 0; r < p; ++r)
          for (std::size_t j = 0; j < k; ++j) {
            cj[j] += Y[r * k + j] * A[r * k + j];
            nj[j] += Y[r * k + j] * Y[r * k + j];
          }
        double F = 0;
        for (std::size_t j = 0; j < k; ++j) F += nj[j] > 0 ? 1 - cj[j] * cj[j] / (nj[j] * anchorSquared_[j]) : 1.0;
        t.fidelity = F / double(k);
        if (G) {
          for (std::size_t r = 0; r < p; ++r)
            for (std::size_t j = 0; j < k; ++j) {
              const std::size_t i = r * k + j;
              if (!(nj[j] > 0)) {
                G[i] = 0;
                continue;
              }
              const double s = -2 * (1 - w) * cj[j] / (double(k) * nj[j] * anchorSquared_[j]);
              G[i] = s * (A[i] - cj[j] / nj[j] * Y[i]);
            }
        }
      }
      orthogonalityTerm(Y, G, t, 1.0);
      break;
    }
  }
  t.energy = total(t);
  return t;
}

}  // namespace nsa
