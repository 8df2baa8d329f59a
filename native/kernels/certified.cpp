#include "certified.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#include "error.hpp"
#include "linalg.hpp"

namespace nsa {

namespace {

constexpr double kArmijo = 1e-4;     // sufficient decrease c1 (both solvers)
constexpr double kCurvature = 0.9;   // strong-Wolfe c2 (L-BFGS-B)
constexpr double kEpsilon = 2.220446049250313e-16;

// BLAS's dot: vectorised with several partial sums (a plain loop is one dependent chain of adds,
// which the compiler may not reorder).
double dot(const double* a, const double* b, std::size_t n) { return cblas_ddot(int(n), a, 1, b, 1); }

bool finiteAll(const double* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return false;
  return true;
}

// LU factorisation with partial pivoting of a small dense n×n A (row-major, in place); false when A is
// singular to working precision.
bool luFactor(double* A, std::size_t* piv, std::size_t n) {
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::fabs(A[r * n + c]) > std::fabs(A[p * n + c])) p = r;
    piv[c] = p;
    if (!(std::fabs(A[p * n + c]) > 0)) return false;
    if (p != c)
      for (std::size_t j = 0; j < n; ++j) std::swap(A[c * n + j], A[p * n + j]);
    const double inv = 1.0 / A[c * n + c];
    for (std::size_t r = c + 1; r < n; ++r) {
      const double f = (A[r * n + c] *= inv);
      if (f == 0) continue;
      for (std::size_t j = c + 1; j < n; ++j) A[r * n + j] -= f * A[c * n + j];
    }
  }
  return true;
}

// Solves A·x = b (b → x) with the factors of luFactor.
void luSolve(const double* LU, const std::size_t* piv, std::size_t n, double* b) {
  for (std::size_t c = 0; c < n; ++c)  // every interchange first (P·b), as LAPACK's getrs
    if (piv[c] != c) std::swap(b[c], b[piv[c]]);
  for (std::size_t c = 0; c < n; ++c)
    for (std::size_t r = c + 1; r < n; ++r) b[r] -= LU[r * n + c] * b[c];
  for (std::size_t c = n; c-- > 0;) {
    double s = b[c];
    for (std::size_t j = c + 1; j < n; ++j) s -= LU[c * n + j] * b[j];
    b[c] = s / LU[c * n + c];
  }
}

// The state and bookkeeping both solvers share: the current point, its value and gradient, counts,
// traces and progress. A solver's step() moves (x, g, fx) to an accepted point with a lower f and
// returns true, or returns false (leaving them unchanged) when it cannot.
class Run {
 public:
  Run(BoundObjective& f, std::vector<double> x0, const CertifiedOptions& o, Monitor& monitor, CertifiedResult& r)
      : f_(f), o_(o), monitor_(monitor), r_(r), n_(f.size()), nonneg_(f.nonnegative()), x_(std::move(x0)), g_(n_),
        xt_(n_), gt_(n_) {
    if (x_.size() != n_) throwRange("Expected a start with as many values as the objective has variables");
    if (nonneg_)
      for (double& v : x_) v = v > 0 ? v : 0.0;
    start_ = std::chrono::steady_clock::now();
  }
  virtual ~Run() = default;

  void solve() {
    fx_ = evaluate(x_.data(), g_.data());
    if (!std::isfinite(fx_) || !finiteAll(g_.data(), n_)) {
      finish(StopReason::NonFinite, NAN);
      return;
    }
    double cert = gradientMapping(x_.data(), g_.data(), n_, nonneg_);
    record(0, cert, true);
    if (std::all_of(x_.begin(), x_.end(), [](double v) { return v == 0; })) {
      r_.warnings.push_back("the start is Y = 0, where the scale-free energy has no gradient: nothing to move");
      finish(StopReason::Stalled, cert);
      return;
    }
    std::vector<double> history(kPlateauWindow + 1, 0.0);  // f of the last iterates, a ring
    history[0] = fx_;
    int accepted = 0;
    StopReason reason = StopReason::MaxIterations;
    for (;;) {
      if (cert <= o_.tolerance) {
        reason = StopReason::GradMap;
        break;
      }
      if (r_.iterations >= o_.maxIterations) {
        reason = StopReason::MaxIterations;
        break;
      }
      if (monitor_.cancelled()) throwAborted();
      if (!step()) {
        reason = accepted > 0 ? StopReason::LineSearch : StopReason::Stalled;
        break;
      }
      ++accepted;
      const int it = ++r_.iterations;
      cert = gradientMapping(x_.data(), g_.data(), n_, nonneg_);
      record(it, cert, it % o_.recordEvery == 0);
      history[it % (kPlateauWindow + 1)] = fx_;
      if (monitor_.wantsProgress()) {
        ProgressRecord p;
        p.iteration = it;
        p.total = o_.maxIterations;
        p.count = 4;
        p.values[0] = fx_;
        p.values[1] = cert;
        f_.terms(&p.values[2], &p.values[3]);
        monitor_.progress(p);
      }
      if (cert > o_.tolerance && it >= kPlateauWindow) {
        const double old = history[(it - kPlateauWindow) % (kPlateauWindow + 1)];
        if (old - fx_ <= o_.plateauTolerance * std::fabs(old)) {
          reason = StopReason::Plateau;
          break;
        }
      }
    }
    finish(reason, cert);
  }

 protected:
  virtual bool step() = 0;

  double evaluate(const double* x, double* g) {
    ++r_.evaluations;
    return f_.evaluate(x, g);
  }

  // A trial point is usable when f and ∇f are finite (a non-finite one is treated as too long a step)
  // and it is not 0: the scale-free terms (orthogonality, the anchored fidelity) are undefined at
  // Y = 0, where the certificate is 0 by convention, so a step onto it would be a false success.
  bool usable(double f, const double* x, const double* g) const {
    if (!std::isfinite(f) || !finiteAll(g, n_)) return false;
    for (std::size_t i = 0; i < n_; ++i)
      if (x[i] != 0) return true;
    return false;
  }

  void record(int iteration, double cert, bool due) {
    lastRecorded_ = due ? iteration : lastRecorded_;
    if (!due) return;
    CertifiedTraces& t = r_.traces;
    double fid = 0, orth = 0;
    f_.terms(&fid, &orth);
    t.iteration.push_back(iteration);
    t.timeMs.push_back(elapsedMs());
    t.energy.push_back(fx_);
    t.fidelity.push_back(fid);
    t.orthogonality.push_back(orth);
    t.certificate.push_back(cert);
  }

  double elapsedMs() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  }

  void finish(StopReason reason, double cert) {
    r_.stopReason = reason;
    r_.value = fx_;
    r_.certificate = cert;
    // the terms of the returned point (the last evaluation may have been a rejected trial)
    if (std::isfinite(fx_)) f_.evaluate(x_.data(), g_.data());
    if (lastRecorded_ != r_.iterations && std::isfinite(fx_)) record(r_.iterations, cert, true);
    const double limit = 1e3 * o_.tolerance;
    if (reason == StopReason::NonFinite) {
      r_.warnings.push_back("the energy or its gradient is not finite at the start; the start is returned");
    } else if (reason != StopReason::GradMap && !(cert <= limit)) {
      r_.warnings.push_back("the returned point is not stationary: its certificate " + std::to_string(cert) +
                            " is above 1e3·tolerance = " + std::to_string(limit));
    }
    r_.x = std::move(x_);
  }

  BoundObjective& f_;
  const CertifiedOptions& o_;
  Monitor& monitor_;
  CertifiedResult& r_;
  const std::size_t n_;
  const bool nonneg_;
  std::vector<double> x_, g_, xt_, gt_;
  double fx_ = 0;
  int lastRecorded_ = -1;
  std::chrono::steady_clock::time_point start_;
};

// ---- SPG ---------------------------------------------------------------------------------------

class Spg : public Run {
 public:
  using Run::Run;

 protected:
  bool step() override {
    const std::size_t n = n_;
    if (alpha_ == 0) {
      // the certificate's own step ‖x‖² (E's gradient scales as 1/‖x‖), bounded in [1e-10, 1e10] of it
      const double s0 = squared(x_.data());
      scale_ = s0 > 0 ? s0 : 1.0;
      alpha_ = scale_;
    }
    d_.resize(n);
    double gd = 0;
    for (std::size_t i = 0; i < n; ++i) {
      double t = x_[i] - alpha_ * g_[i];
      if (nonneg_ && t < 0) t = 0;
      d_[i] = t - x_[i];
      gd += g_[i] * d_[i];
    }
    if (!(gd < 0)) return false;
    double lambda = 1;
    for (int ls = 0; ls < kMaxLineSearchSteps; ++ls) {
      bool moved = false;  // x + λd ≠ 0 (see usable()), checked in the same pass
      for (std::size_t i = 0; i < n; ++i) {
        xt_[i] = x_[i] + lambda * d_[i];
        moved |= xt_[i] != 0;
      }
      const double ft = evaluate(xt_.data(), gt_.data());
      // usable() in the passes that are made anyway: a non-finite ∇f makes yy below non-finite (g is finite)
      bool accepted = moved && std::isfinite(ft) && ft <= fx_ + kArmijo * lambda * gd;
      double ss = 0, sy = 0, yy = 0;
      if (accepted) {
        // Barzilai–Borwein: s = λd, y = Δg; BB1 = sᵀs/sᵀy and BB2 = sᵀy/yᵀy alternate.
        for (std::size_t i = 0; i < n; ++i) {
          const double s = xt_[i] - x_[i], y = gt_[i] - g_[i];
          ss += s * s;
          sy += s * y;
          yy += y * y;
        }
        accepted = std::isfinite(yy) && std::isfinite(sy);
      }
      if (accepted) {
        double next = sy > 0 ? ((++bbCount_ & 1) ? ss / sy : sy / yy) : 1e10 * scale_;
        alpha_ = std::min(std::max(next, 1e-10 * scale_), 1e10 * scale_);
        x_.swap(xt_);
        g_.swap(gt_);
        fx_ = ft;
        return true;
      }
      // the minimiser of the quadratic through f(x), f'(x; d) and f(x + λd), kept in [0.1λ, 0.5λ]
      double next = 0.5 * lambda;
      if (std::isfinite(ft)) {
        const double q = -gd * lambda * lambda / (2 * (ft - fx_ - lambda * gd));
        if (std::isfinite(q)) next = std::min(std::max(q, 0.1 * lambda), 0.5 * lambda);
      } else {
        next = 0.1 * lambda;
      }
      lambda = next;
    }
    return false;
  }

 private:
  double squared(const double* x) const { return dot(x, x, n_); }
  std::vector<double> d_;
  double alpha_ = 0, scale_ = 1;
  unsigned bbCount_ = 0;
};

// ---- L-BFGS-B ----------------------------------------------------------------------------------

class Lbfgsb : public Run {
 public:
  Lbfgsb(BoundObjective& f, std::vector<double> x0, const CertifiedOptions& o, Monitor& monitor, CertifiedResult& r)
      : Run(f, std::move(x0), o, monitor, r), m_(static_cast<std::size_t>(std::max(1, o.memory))), w2_(2 * m_) {
    const std::size_t n = n_, m = m_;
    W_.assign(n * w2_, 0);
    for (auto* v : {&SS_, &SY_}) v->assign(m * m, 0);
    for (auto* v : {&G_, &FG_, &K_, &Kf_, &N_, &WW_}) v->assign(4 * m * m, 0);
    for (auto* v : {&p_, &c_, &v_, &u_, &wb_, &mp_, &mc_, &a_}) v->assign(2 * m, 0);
    piv_.assign(2 * m, 0);
    slots_.assign(m, 0);
    refreshSlots();
    pivK_.assign(2 * m, 0);
    xc_.assign(n, 0);
    d_.assign(n, 0);
    r_.assign(n, 0);
    t_.assign(n, 0);
    mask_.assign(n, 1);  // FG_ sums over the coordinates with mask 1
    free_.assign(n, 1);
    freeCount_ = n;
    rowBuffer_.assign(std::max(kGatherRows * w2_, 5 * kBlockRows), 0);
    acc_.assign(5 * w2_, 0);
    coef_.assign(w2_, 0);
    cauchyRaw_.assign(w2_, 0);
    breaks_.reserve(nonneg_ ? n : 0);
  }

 protected:
  bool step() override {
    if (theta_ == 0) resetMemory();
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (direction() && lineSearch()) return true;
      if (count_ == 0) return false;
      resetMemory();  // a stale memory is the usual cause: retry once from B₀ (a projected gradient step)
    }
    return false;
  }

 private:
  // Rows gathered per BLAS-3 update of the free-set Gram (a fixed buffer, whatever n is).
  static constexpr std::size_t kGatherRows = 256;
  // Below this many rows the free-set Gram is updated by plain loops instead.
  static constexpr std::size_t kLoopRows = 16;
  // Rows per block of the fused passes over W (a block of W stays in cache between two BLAS calls).
  static constexpr std::size_t kBlockRows = 512;

  // The pairs live in W_ (n×2m, row-major): column a holds y of slot a and column m + a holds s of
  // slot a, so row j of W = [Y θS] is contiguous (the Cauchy point reads one row per breakpoint) and
  // every product with W or Wᵀ is one streaming pass (BLAS-2 over n×2m). The i-th oldest pair is in
  // slot(i); while fewer than m are stored they fill slots 0..count−1. Unused columns are zero.
  std::size_t slot(std::size_t i) const { return slots_[i]; }
  // slots_[i] = (head_ + i) mod m, refreshed whenever count_ or head_ change (no division per use)
  void refreshSlots() {
    for (std::size_t i = 0; i < m_; ++i) slots_[i] = (head_ + i) % m_;
  }

  void resetMemory() {
    if (count_ > 0) std::fill(W_.begin(), W_.end(), 0.0);  // the zero columns stand for empty slots
    std::fill(G_.begin(), G_.end(), 0.0);
    std::fill(FG_.begin(), FG_.end(), 0.0);
    count_ = 0;
    head_ = 0;
    refreshSlots();
    cauchyReady_ = false;
    const double xx = dot(x_.data(), x_.data(), n_);
    theta_ = xx > 0 ? 1.0 / xx : 1.0;  // B₀ = I/‖x‖²: the certificate's step
  }

  // Row b of W = [Y θS] in logical order.
  void rowOfW(std::size_t b, double* w) const {
    const std::size_t q = count_;
    const double* row = W_.data() + b * w2_;
    for (std::size_t i = 0; i < q; ++i) {
      w[i] = row[slot(i)];
      w[q + i] = theta_ * row[m_ + slot(i)];
    }
  }

  // out = M·v = K⁻¹·v with the factors of K (formM): O(q²), as a product with an explicit M would be
  // (forming M costs 2q solves, more than the few breakpoints a data fit visits).
  void timesM(const double* v, double* out) const {
    const std::size_t q2 = 2 * count_;
    std::copy(v, v + q2, out);
    luSolve(Kf_.data(), pivK_.data(), q2, out);
  }

  // K = M⁻¹ = [[−D, Lᵀ], [L, θSᵀS]] with D = diag(s_iᵀy_i), L_ij = s_iᵀy_j (i > j), and its LU factors.
  bool formM() {
    const std::size_t q = count_, q2 = 2 * q;
    if (q == 0) return true;
    for (std::size_t i = 0; i < q; ++i)
      for (std::size_t j = 0; j < q; ++j) {
        const double sy = SY_[slot(i) * m_ + slot(j)];
        K_[i * q2 + j] = i == j ? -sy : 0.0;
        K_[(q + i) * q2 + j] = i > j ? sy : 0.0;  // L
        K_[j * q2 + q + i] = i > j ? sy : 0.0;    // Lᵀ
        K_[(q + i) * q2 + q + j] = theta_ * SS_[slot(i) * m_ + slot(j)];
      }
    std::copy(K_.begin(), K_.begin() + long(q2 * q2), Kf_.begin());
    return luFactor(Kf_.data(), pivK_.data(), q2);
  }

  // Stores the pair (s, y) in its slot's columns, then its products with every stored pair over all
  // coordinates (G_ = WᵀW by slot, hence SS, SY) and over the current free set (FG_ = WᵀZZᵀW): one
  // pass over W with the 2 or 4 columns [s y (Zs Zy)].
  void addPair(const double* s, const double* y, double sy) {
    std::size_t at;
    if (count_ < m_) {
      at = count_;
      ++count_;
    } else {
      at = head_;
      head_ = (head_ + 1) % m_;
    }
    refreshSlots();
    const std::size_t n = n_, m = m_, w2 = w2_;
    const bool allFree = freeCount_ == n;
    // One pass over W: the new columns in, and Wᵀy, Wᵀs, (WᵀZy, WᵀZs over mask_), and Wᵀd with the
    // next Cauchy direction d = −g off the coordinates at the bound with g > 0 (x and g are the new ones).
    double* P = acc_.data();  // 5 slot-indexed 2m vectors
    std::fill(P, P + 5 * w2, 0.0);
    double *P0 = P, *P1 = P + w2, *P2 = P + 2 * w2, *P3 = P + 3 * w2, *P4 = P + 4 * w2;
    double* W = W_.data();
    const std::size_t cols = allFree ? 3 : 5;
    double* Bk = rowBuffer_.data();  // a block's rows of the columns, transposed: cols×rows
    for (std::size_t j0 = 0; j0 < n; j0 += kBlockRows) {
      const std::size_t rows = std::min(kBlockRows, n - j0);
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t j = j0 + r;
        double* w = W + j * w2;
        const double yj = y[j], sj = s[j];
        w[at] = yj;
        w[m + at] = sj;
        Bk[r] = yj;
        Bk[rows + r] = sj;
        Bk[2 * rows + r] = nonneg_ && g_[j] > 0 && x_[j] <= 0 ? 0.0 : -g_[j];
        if (!allFree) {
          Bk[3 * rows + r] = mask_[j] ? yj : 0.0;
          Bk[4 * rows + r] = mask_[j] ? sj : 0.0;
        }
      }
      // P (cols×2m) += Bkᵀ·W_block, the block still in cache
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(cols), int(w2), int(rows), 1.0, Bk, int(rows), W + j0 * w2,
                  int(w2), 1.0, P, int(w2));
    }
    // rows of P: y, s, d, Zy, Zs
    P4 = P + 2 * w2;
    P2 = P + 3 * w2;
    P3 = P + 4 * w2;
    std::copy(P4, P4 + w2, cauchyRaw_.data());
    cauchyReady_ = true;
    if (allFree) {
      P2 = P0;
      P3 = P1;
    }
    const std::size_t ya = at, sa = m + at;
    for (std::size_t o = 0; o < w2; ++o) {
      G_[o * w2 + ya] = G_[ya * w2 + o] = P0[o];
      G_[o * w2 + sa] = G_[sa * w2 + o] = P1[o];
      FG_[o * w2 + ya] = FG_[ya * w2 + o] = P2[o];
      FG_[o * w2 + sa] = FG_[sa * w2 + o] = P3[o];
    }
    for (std::size_t a = 0; a < m; ++a)
      for (std::size_t b = 0; b < m; ++b) {
        SS_[a * m + b] = G_[(m + a) * w2 + m + b];
        SY_[a * m + b] = G_[(m + a) * w2 + b];  // s_aᵀy_b
      }
    SY_[at * m + at] = sy;
    theta_ = G_[ya * w2 + ya] / sy;
  }

  // FG_ ± Σ wⱼwⱼᵀ over rows listed in idx (BLAS-3 in chunks of kGatherRows).
  void addRows(const std::size_t* idx, std::size_t count, double sign) {
    const std::size_t w2 = w2_;
    if (count < kLoopRows) {  // a few rows: rank-1 updates of the upper triangle beat a BLAS call's setup
      for (std::size_t r = 0; r < count; ++r) {
        const double* w = W_.data() + idx[r] * w2;
        for (std::size_t a = 0; a < w2; ++a) {
          const double wa = sign * w[a];
          double* row = FG_.data() + a * w2;
          for (std::size_t b = a; b < w2; ++b) row[b] += wa * w[b];
        }
      }
      return;
    }
    for (std::size_t start = 0; start < count; start += kGatherRows) {
      const std::size_t rows = std::min(kGatherRows, count - start);
      for (std::size_t r = 0; r < rows; ++r)
        std::copy(W_.data() + idx[start + r] * w2, W_.data() + (idx[start + r] + 1) * w2, rowBuffer_.data() + r * w2);
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, int(w2), int(rows), sign, rowBuffer_.data(), int(w2), 1.0, FG_.data(),
                  int(w2));
    }
  }

  // Moves FG_ from the set mask_ to the set free_, by whichever is fewest rows: the coordinates that
  // changed sides (± their rows), the new free set (from scratch) or its complement (G_ minus those).
  void updateFreeSums() {
    const std::size_t n = n_, w2 = w2_;
    std::size_t changes = 0, freeNow = 0;
    for (std::size_t j = 0; j < n; ++j) {
      changes += free_[j] != mask_[j];
      freeNow += free_[j];
    }
    if (changes == 0) return;
    changed_.clear();
    const std::size_t fixedNow = n - freeNow;
    const std::size_t cost = std::min(changes, std::min(freeNow, fixedNow));
    if (cost == changes) {
      // entering rows first (+), then leaving rows (−)
      for (std::size_t j = 0; j < n; ++j)
        if (free_[j] && !mask_[j]) changed_.push_back(j);
      const std::size_t entering = changed_.size();
      for (std::size_t j = 0; j < n; ++j)
        if (!free_[j] && mask_[j]) changed_.push_back(j);
      addRows(changed_.data(), entering, 1.0);
      addRows(changed_.data() + entering, changed_.size() - entering, -1.0);
    } else if (cost == freeNow) {
      std::fill(FG_.begin(), FG_.end(), 0.0);
      for (std::size_t j = 0; j < n; ++j)
        if (free_[j]) changed_.push_back(j);
      addRows(changed_.data(), changed_.size(), 1.0);
    } else {
      for (std::size_t i = 0; i < w2 * w2; ++i) FG_[i] = G_[i];
      for (std::size_t j = 0; j < n; ++j)
        if (!free_[j]) changed_.push_back(j);
      addRows(changed_.data(), changed_.size(), -1.0);
    }
    for (std::size_t a = 0; a < w2; ++a)  // the upper triangle to both
      for (std::size_t b = 0; b < a; ++b) FG_[a * w2 + b] = FG_[b * w2 + a];
    mask_.swap(free_);
    std::copy(mask_.begin(), mask_.end(), free_.begin());
    freeCount_ = freeNow;
  }

  // Coefficients of W·z for z in logical order (2q) as a slot-indexed 2m vector (θ on the S half,
  // zeros for empty slots), for the row kernels below.
  void slotCoefficients(const double* z, double* out) const {
    const std::size_t q = count_;
    std::fill(out, out + w2_, 0.0);
    for (std::size_t i = 0; i < q; ++i) {
      out[slot(i)] = z[i];
      out[m_ + slot(i)] = theta_ * z[q + i];
    }
  }
  // A slot-indexed Wᵀv (2m) to logical order with θ on the S half.
  void logicalProducts(const double* raw, double* out) const {
    const std::size_t q = count_;
    for (std::size_t i = 0; i < q; ++i) {
      out[i] = raw[slot(i)];
      out[q + i] = theta_ * raw[m_ + slot(i)];
    }
  }

  // The search direction d = x̄ − x: the generalized Cauchy point, then subspace minimisation.
  // Passes over W: none for the Cauchy point (Wᵀd came with the last addPair), one for the reduced
  // gradient and Wᵀr together, one for the subspace step; rows of fixed coordinates are skipped.
  bool direction() {
    const std::size_t n = n_, q = count_, q2 = 2 * q, w2 = w2_;
    if (!formM()) return false;
    // -- generalized Cauchy point along x(t) = P(x − t·g); breakpoints t_i = x_i/g_i
    breaks_.clear();
    double f1 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double gi = g_[i];
      xc_[i] = x_[i];
      if (nonneg_ && gi > 0) {
        if (x_[i] <= 0) {
          d_[i] = 0;  // at the bound, pushed into it: fixed from the start
          continue;
        }
        breaks_.emplace_back(x_[i] / gi, i);
      }
      d_[i] = -gi;
      f1 -= gi * gi;
    }
    if (f1 == 0) return false;  // no free direction of descent
    if (q) {
      if (!cauchyReady_) cblas_dgemv(CblasRowMajor, CblasTrans, int(n), int(w2), 1.0, W_.data(), int(w2), d_.data(), 1, 0.0, cauchyRaw_.data(), 1);
      logicalProducts(cauchyRaw_.data(), p_.data());
    }
    cauchyReady_ = false;
    for (std::size_t i = 0; i < q2; ++i) c_[i] = 0;
    timesM(p_.data(), mp_.data());
    double f2 = -theta_ * f1 - dot(p_.data(), mp_.data(), q2);
    const double f2Start = f2;
    double dtMin = -f1 / f2;
    double tOld = 0;
    // Breakpoints in increasing order, sorted only as far as the path gets: the next batch (twice the
    // last, at least 256) is selected from the rest in linear time (nth_element), then sorted.
    auto earlier = [](const std::pair<double, std::size_t>& a, const std::pair<double, std::size_t>& b) { return a.first < b.first; };
    std::size_t done = 0, sorted = 0;
    for (;;) {
      if (done == sorted) {
        if (sorted == breaks_.size()) break;
        const std::size_t end = std::min(breaks_.size(), sorted + std::max<std::size_t>(256, sorted));
        if (end < breaks_.size()) std::nth_element(breaks_.begin() + long(sorted), breaks_.begin() + long(end), breaks_.end(), earlier);
        std::sort(breaks_.begin() + long(sorted), breaks_.begin() + long(end), earlier);
        sorted = end;
      }
      const double t = breaks_[done].first;
      const std::size_t b = breaks_[done].second;
      const double dt = t - tOld;
      if (dtMin < dt) break;
      ++done;
      // move to the breakpoint: x_b reaches 0 and leaves the path
      const double gb = g_[b], zb = -x_[b];
      xc_[b] = 0;
      for (std::size_t i = 0; i < q2; ++i) c_[i] += dt * p_[i];
      double wMc = 0, wMp = 0, wMw = 0;
      if (q) {
        rowOfW(b, wb_.data());
        timesM(wb_.data(), v_.data());
        for (std::size_t i = 0; i < q2; ++i) {  // 2q terms: a loop beats a BLAS call here
          wMc += v_[i] * c_[i];
          wMp += v_[i] * p_[i];
          wMw += v_[i] * wb_[i];
        }
      }
      f1 += dt * f2 + gb * gb + theta_ * gb * zb - gb * wMc;
      f2 += -theta_ * gb * gb - 2 * gb * wMp - gb * gb * wMw;
      f2 = std::max(kEpsilon * f2Start, f2);
      for (std::size_t i = 0; i < q2; ++i) p_[i] += gb * wb_[i];
      d_[b] = 0;
      dtMin = -f1 / f2;
      tOld = t;
    }
    dtMin = std::max(dtMin, 0.0);
    if (!std::isfinite(dtMin)) return false;
    tOld += dtMin;
    for (std::size_t i = 0; i < q2; ++i) c_[i] += dtMin * p_[i];
    // -- subspace minimisation over the free variables F = {i: x^c_i off its bound}; one pass makes
    // x^c, F, the reduced gradient r = Zᵀ(g + θ(x^c − x) − W·M·c) (zero off F) and Wᵀr
    double* coef = coef_.data();
    double* acc = acc_.data();
    timesM(c_.data(), mc_.data());
    slotCoefficients(mc_.data(), coef);
    std::fill(acc, acc + w2, 0.0);
    const double* W = W_.data();
    // rows in blocks that stay in cache between the two BLAS-2 products (W·Mc in, Wᵀr out)
    for (std::size_t j0 = 0; j0 < n; j0 += kBlockRows) {
      const std::size_t rows = std::min(kBlockRows, n - j0);
      if (q) cblas_dgemv(CblasRowMajor, CblasNoTrans, int(rows), int(w2), 1.0, W + j0 * w2, int(w2), coef, 1, 0.0, t_.data() + j0, 1);
      for (std::size_t j = j0; j < j0 + rows; ++j) {
        const double xc = d_[j] != 0 ? x_[j] + tOld * d_[j] : xc_[j];
        xc_[j] = xc;
        const bool isFree = !nonneg_ || xc > 0;
        free_[j] = isFree;
        r_[j] = isFree ? g_[j] + theta_ * (xc - x_[j]) - (q ? t_[j] : 0.0) : 0.0;
      }
      if (q) cblas_dgemv(CblasRowMajor, CblasTrans, int(rows), int(w2), 1.0, W + j0 * w2, int(w2), r_.data() + j0, 1, 1.0, acc, 1);
    }
    if (q) updateFreeSums();
    if (q) {
      // u solves (I − M·WᵀZZᵀW/θ)·u = M·WᵀZ·r, i.e. (K − WᵀZZᵀW/θ)·u = WᵀZ·r (multiplied by K = M⁻¹)
      logicalProducts(acc, u_.data());
      for (std::size_t i = 0; i < q; ++i)
        for (std::size_t j = 0; j < q; ++j) {
          const std::size_t a = slot(i), b = slot(j);
          const double* ya = FG_.data() + a * w2_;  // row y_a of [Y S]ᵀZZᵀ[Y S]
          const double* sa = FG_.data() + (m_ + a) * w2_;
          WW_[i * q2 + j] = ya[b];
          WW_[i * q2 + q + j] = theta_ * ya[m_ + b];  // y_aᵀZZᵀs_b
          WW_[(q + i) * q2 + j] = theta_ * sa[b];
          WW_[(q + i) * q2 + q + j] = theta_ * theta_ * sa[m_ + b];
        }
      for (std::size_t i = 0; i < q2 * q2; ++i) N_[i] = K_[i] - WW_[i] / theta_;
      if (!luFactor(N_.data(), piv_.data(), q2)) return false;
      luSolve(N_.data(), piv_.data(), q2, u_.data());
      slotCoefficients(u_.data(), coef);
    }
    // d_u = −r/θ − ZᵀW·u/θ² on F (into t_), and the projected x̄ = P(x^c + d_u): one pass
    const double it = 1 / theta_, it2 = it * it;
    double gd = 0;
    if (q) cblas_dgemv(CblasRowMajor, CblasNoTrans, int(n), int(w2), 1.0, W, int(w2), coef, 1, 0.0, t_.data(), 1);
    for (std::size_t i = 0; i < n; ++i) {
      if (free_[i] == 0) {
        t_[i] = 0;
        d_[i] = xc_[i] - x_[i];
      } else {
        const double du = -r_[i] * it - (q ? t_[i] * it2 : 0.0);
        t_[i] = du;
        double y = xc_[i] + du;
        if (nonneg_ && y < 0) y = 0;
        d_[i] = y - x_[i];
      }
      gd += g_[i] * d_[i];
    }
    // x̄ = P(x^c + d_u) when that is a descent direction, else x^c + α*·d_u with α* the longest
    // feasible fraction of d_u (Morales & Nocedal 2011)
    if (!(gd < 0)) {
      double alpha = 1;
      if (nonneg_)
        for (std::size_t i = 0; i < n; ++i)
          if (t_[i] < 0) alpha = std::min(alpha, -xc_[i] / t_[i]);
      gd = 0;
      for (std::size_t i = 0; i < n; ++i) {
        d_[i] = xc_[i] + alpha * t_[i] - x_[i];
        gd += g_[i] * d_[i];
      }
    }
    gd_ = gd;
    return gd < 0 && std::isfinite(gd);
  }

  // φ(λ) = f(x + λd) into (xt_, gt_); returns φ and sets dphi = ∇f(x + λd)ᵀd.
  double trial(double lambda, double& dphi) {
    const std::size_t n = n_;
    for (std::size_t i = 0; i < n; ++i) {
      double t = x_[i] + lambda * d_[i];
      if (nonneg_ && t < 0) t = 0;  // rounding at the largest feasible step
      xt_[i] = t;
    }
    const double f = evaluate(xt_.data(), gt_.data());
    if (!usable(f, xt_.data(), gt_.data())) {
      dphi = NAN;
      return NAN;
    }
    dphi = dot(gt_.data(), d_.data(), n);
    return f;
  }

  static double cubicMinimizer(double a, double fa, double da, double b, double fb, double db) {
    const double d1 = da + db - 3 * (fa - fb) / (a - b);
    const double disc = d1 * d1 - da * db;
    if (!(disc >= 0)) return NAN;
    const double d2 = (b > a ? 1 : -1) * std::sqrt(disc);
    return b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2);
  }

  void accept(double f) {
    const std::size_t n = n_;
    double sy = 0, yy = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double s = xt_[i] - x_[i], y = gt_[i] - g_[i];
      d_[i] = s;  // d_ and r_ are free once the step is taken: s and y
      r_[i] = y;
      sy += s * y;
      yy += y * y;
    }
    x_.swap(xt_);
    g_.swap(gt_);
    fx_ = f;
    cauchyReady_ = false;
    if (sy > kEpsilon * yy && yy > 0) addPair(d_.data(), r_.data(), sy);
  }

  // Strong-Wolfe line search (Nocedal & Wright, Algorithms 3.5–3.6) on [0, λmax]; monotone: only a
  // point with sufficient decrease is ever accepted.
  bool lineSearch() {
    const std::size_t n = n_;
    const double f0 = fx_, d0 = gd_;
    // x + d = x̄ is feasible, so every λ ≤ 1 is; the largest feasible step is needed (one pass with a
    // division per coordinate) only when the search extrapolates beyond 1.
    double lambdaMax = -1;
    auto largestStep = [&] {
      if (lambdaMax < 0) {
        lambdaMax = 1e10;
        if (nonneg_)
          for (std::size_t i = 0; i < n; ++i)
            if (d_[i] < 0) lambdaMax = std::min(lambdaMax, -x_[i] / d_[i]);
        lambdaMax = std::max(lambdaMax, 1.0);
      }
      return lambdaMax;
    };
    double lo = 0, flo = f0, dlo = d0;  // the best point with sufficient decrease so far
    double hi = 0, fhi = 0, dhi = 0;
    bool bracketed = false;
    double lambda = 1;
    int evals = 0;
    auto armijo = [&](double l, double f) { return f <= f0 + kArmijo * l * d0; };
    auto strongCurvature = [&](double dphi) { return std::fabs(dphi) <= -kCurvature * d0; };
    // bracketing
    while (evals < kMaxLineSearchSteps) {
      double dphi;
      const double f = trial(lambda, dphi);
      ++evals;
      if (!std::isfinite(f) || !armijo(lambda, f) || (lo > 0 && f >= flo)) {
        hi = lambda, fhi = f, dhi = dphi;
        bracketed = true;
        break;
      }
      if (strongCurvature(dphi)) {
        accept(f);
        return true;
      }
      if (dphi >= 0) {
        hi = lo, fhi = flo, dhi = dlo;
        lo = lambda, flo = f, dlo = dphi;
        bracketed = true;
        break;
      }
      lo = lambda, flo = f, dlo = dphi;
      if (lambda >= largestStep()) {  // the longest feasible step decreases f: take it (as L-BFGS-B does)
        accept(f);
        return true;
      }
      lambda = std::min(4 * lambda, largestStep());
    }
    // zoom between lo (sufficient decrease) and hi
    while (bracketed && evals < kMaxLineSearchSteps) {
      const double width = std::fabs(hi - lo);
      if (width <= kEpsilon * std::max(lo, hi)) break;
      double next = std::isfinite(fhi) && std::isfinite(dhi) ? cubicMinimizer(lo, flo, dlo, hi, fhi, dhi) : NAN;
      const double a = std::min(lo, hi), b = std::max(lo, hi);
      if (!std::isfinite(next) || next < a + 0.1 * width || next > b - 0.1 * width) next = 0.5 * (lo + hi);
      double dphi;
      const double f = trial(next, dphi);
      ++evals;
      if (!std::isfinite(f) || !armijo(next, f) || f >= flo) {
        hi = next, fhi = f, dhi = dphi;
        continue;
      }
      if (strongCurvature(dphi)) {
        accept(f);
        return true;
      }
      if (dphi * (hi - lo) >= 0) hi = lo, fhi = flo, dhi = dlo;
      lo = next, flo = f, dlo = dphi;
    }
    if (lo > 0 && flo < f0) {  // sufficient decrease without the curvature condition: still monotone
      double dphi;
      const double f = trial(lo, dphi);
      if (std::isfinite(f) && f < f0) {
        accept(f);
        return true;
      }
    }
    return false;
  }

  const std::size_t m_, w2_;  // memory pairs, and 2m columns of W_
  std::size_t count_ = 0, head_ = 0, freeCount_ = 0;
  double theta_ = 0, gd_ = 0;
  std::vector<double> W_;        // n×2m: [Y S] by slot (see slot())
  std::vector<double> SS_, SY_;  // slot-indexed m×m inner products over all coordinates
  std::vector<double> G_, FG_;   // 2m×2m: [Y S]ᵀ[Y S] by slot, over all coordinates and over mask_
  std::vector<double> K_, Kf_, N_, WW_;  // 2q×2q: M⁻¹, its LU factors, the subspace system, WᵀZZᵀW
  std::vector<double> p_, c_, v_, u_, wb_, mp_, mc_, a_;  // 2q (a_: 2m, slot-indexed scratch)
  std::vector<std::size_t> piv_, pivK_, changed_, slots_;
  std::vector<double> xc_, d_, r_, t_;           // n
  std::vector<unsigned char> mask_, free_;       // n: the set FG_ sums over; the current free set
  std::vector<double> rowBuffer_, acc_, coef_;  // gathered rows (updateFreeSums); row-kernel sums; coefficients
  std::vector<double> cauchyRaw_;  // Wᵀd for the next Cauchy direction (slot-indexed), when cauchyReady_
  bool cauchyReady_ = false;
  std::vector<std::pair<double, std::size_t>> breaks_;
};

}  // namespace

void certifiedSolve(BoundObjective& f, std::vector<double> x0, const CertifiedOptions& options, Monitor& monitor,
                    CertifiedResult& result) {
  if (options.recordEvery < 1) throwRange("Expected recordEvery ≥ 1");
  if (options.solver == CertifiedSolver::Spg) {
    Spg run(f, std::move(x0), options, monitor, result);
    run.solve();
  } else {
    Lbfgsb run(f, std::move(x0), options, monitor, result);
    run.solve();
  }
}

}  // namespace nsa
