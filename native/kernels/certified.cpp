#include "certified.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#include "error.hpp"

namespace nsa {

namespace {

constexpr double kArmijo = 1e-4;     // sufficient decrease c1 (both solvers)
constexpr double kCurvature = 0.9;   // strong-Wolfe c2 (L-BFGS-B)
constexpr double kEpsilon = 2.220446049250313e-16;

double dot(const double* a, const double* b, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

bool finiteAll(const double* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return false;
  return true;
}

// Solves A·x = b in place (A n×n row-major, destroyed; b → x) by Gaussian elimination with partial
// pivoting; false when A is singular to working precision.
bool solveDense(double* A, double* b, std::size_t n) {
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t piv = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::fabs(A[r * n + c]) > std::fabs(A[piv * n + c])) piv = r;
    if (!(std::fabs(A[piv * n + c]) > 0)) return false;
    if (piv != c) {
      for (std::size_t j = 0; j < n; ++j) std::swap(A[c * n + j], A[piv * n + j]);
      std::swap(b[c], b[piv]);
    }
    const double inv = 1.0 / A[c * n + c];
    for (std::size_t r = c + 1; r < n; ++r) {
      const double f = A[r * n + c] * inv;
      if (f == 0) continue;
      for (std::size_t j = c; j < n; ++j) A[r * n + j] -= f * A[c * n + j];
      b[r] -= f * b[c];
    }
  }
  for (std::size_t c = n; c-- > 0;) {
    double s = b[c];
    for (std::size_t j = c + 1; j < n; ++j) s -= A[c * n + j] * b[j];
    b[c] = s / A[c * n + c];
  }
  return true;
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
      for (std::size_t i = 0; i < n; ++i) xt_[i] = x_[i] + lambda * d_[i];
      const double ft = evaluate(xt_.data(), gt_.data());
      if (usable(ft, xt_.data(), gt_.data()) && ft <= fx_ + kArmijo * lambda * gd) {
        // Barzilai–Borwein: s = λd, y = Δg; BB1 = sᵀs/sᵀy and BB2 = sᵀy/yᵀy alternate.
        double ss = 0, sy = 0, yy = 0;
        for (std::size_t i = 0; i < n; ++i) {
          const double s = xt_[i] - x_[i], y = gt_[i] - g_[i];
          ss += s * s;
          sy += s * y;
          yy += y * y;
        }
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
      : Run(f, std::move(x0), o, monitor, r), m_(static_cast<std::size_t>(std::max(1, o.memory))) {
    const std::size_t n = n_, m = m_;
    S_.assign(m * n, 0);
    Y_.assign(m * n, 0);
    SS_.assign(m * m, 0);
    SY_.assign(m * m, 0);
    YY_.assign(m * m, 0);
    M_.assign(4 * m * m, 0);
    K_.assign(4 * m * m, 0);
    N_.assign(4 * m * m, 0);
    WW_.assign(4 * m * m, 0);
    p_.assign(2 * m, 0);
    c_.assign(2 * m, 0);
    v_.assign(2 * m, 0);
    u_.assign(2 * m, 0);
    wb_.assign(2 * m, 0);
    mp_.assign(2 * m, 0);
    mc_.assign(2 * m, 0);
    xc_.assign(n, 0);
    d_.assign(n, 0);
    r0_.assign(n, 0);
    breaks_.reserve(nonneg_ ? n : 0);
    free_.reserve(n);
  }

 protected:
  bool step() override {
    if (theta_ == 0) resetMemory();
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (direction() && lineSearch()) return true;
      if (count_ == 0) return false;
      resetMemory();  // a stale memory is the usual cause: retry once as a (projected) gradient step
    }
    return false;
  }

 private:
  // The pair slot of the i-th oldest pair.
  std::size_t slot(std::size_t i) const { return (head_ + i) % m_; }
  const double* sAt(std::size_t i) const { return S_.data() + slot(i) * n_; }
  const double* yAt(std::size_t i) const { return Y_.data() + slot(i) * n_; }

  void resetMemory() {
    count_ = 0;
    head_ = 0;
    const double xx = dot(x_.data(), x_.data(), n_);
    theta_ = xx > 0 ? 1.0 / xx : 1.0;  // B₀ = I/‖x‖²: the certificate's step
  }

  // Row b of W = [Y θS]: (y_1b … y_qb, θs_1b … θs_qb), q = count_.
  void rowOfW(std::size_t b, double* w) const {
    const std::size_t q = count_;
    for (std::size_t i = 0; i < q; ++i) {
      w[i] = yAt(i)[b];
      w[q + i] = theta_ * sAt(i)[b];
    }
  }

  // out = M·v (2q).
  void timesM(const double* v, double* out) const {
    const std::size_t q2 = 2 * count_;
    for (std::size_t i = 0; i < q2; ++i) {
      double s = 0;
      for (std::size_t j = 0; j < q2; ++j) s += M_[i * q2 + j] * v[j];
      out[i] = s;
    }
  }

  // M = [[−D, Lᵀ], [L, θSᵀS]]⁻¹ with D = diag(s_iᵀy_i), L_ij = s_iᵀy_j (i > j).
  bool formM() {
    const std::size_t q = count_, q2 = 2 * q;
    if (q == 0) return true;
    for (std::size_t i = 0; i < q; ++i)
      for (std::size_t j = 0; j < q; ++j) {
        const double sy = SY_[slot(i) * m_ + slot(j)];
        K_[i * q2 + j] = i == j ? -sy : 0.0;
        K_[(q + i) * q2 + j] = i > j ? sy : 0.0;                    // L
        K_[j * q2 + q + i] = i > j ? sy : 0.0;                      // Lᵀ
        K_[(q + i) * q2 + q + j] = theta_ * SS_[slot(i) * m_ + slot(j)];
      }
    // M column by column (2q ≤ 2·memory solves of a 2q system: negligible next to the n-sized work)
    for (std::size_t c = 0; c < q2; ++c) {
      std::copy(K_.begin(), K_.begin() + q2 * q2, N_.begin());
      for (std::size_t i = 0; i < q2; ++i) u_[i] = i == c ? 1.0 : 0.0;
      if (!solveDense(N_.data(), u_.data(), q2)) return false;
      for (std::size_t i = 0; i < q2; ++i) M_[i * q2 + c] = u_[i];
    }
    return true;
  }

  void addPair(const double* s, const double* y, double sy, double yy) {
    std::size_t at;
    if (count_ < m_) {
      at = slot(count_);
      ++count_;
    } else {
      at = head_;
      head_ = (head_ + 1) % m_;
    }
    std::copy(s, s + n_, S_.data() + at * n_);
    std::copy(y, y + n_, Y_.data() + at * n_);
    for (std::size_t i = 0; i < count_; ++i) {
      const std::size_t o = slot(i);
      const double* so = S_.data() + o * n_;
      const double* yo = Y_.data() + o * n_;
      SS_[at * m_ + o] = SS_[o * m_ + at] = o == at ? dot(s, s, n_) : dot(s, so, n_);
      SY_[at * m_ + o] = o == at ? sy : dot(s, yo, n_);  // s_at·y_o
      SY_[o * m_ + at] = o == at ? sy : dot(so, y, n_);  // s_o·y_at
      YY_[at * m_ + o] = YY_[o * m_ + at] = o == at ? yy : dot(y, yo, n_);
    }
    theta_ = yy / sy;
  }

  // The search direction d = x̄ − x: the generalized Cauchy point, then subspace minimisation.
  bool direction() {
    const std::size_t n = n_, q = count_, q2 = 2 * q;
    if (!formM()) return false;
    // -- generalized Cauchy point along x(t) = P(x − t·g)
    for (std::size_t i = 0; i < q2; ++i) p_[i] = c_[i] = 0;
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
    for (std::size_t j = 0; j < q; ++j) {
      p_[j] = dot(yAt(j), d_.data(), n);
      p_[q + j] = theta_ * dot(sAt(j), d_.data(), n);
    }
    if (f1 == 0) return false;  // projected gradient 0 along every free direction
    timesM(p_.data(), mp_.data());
    double f2 = -theta_ * f1 - dot(p_.data(), mp_.data(), q2);
    const double f2Start = f2;
    double dtMin = -f1 / f2;
    double tOld = 0;
    std::sort(breaks_.begin(), breaks_.end());
    for (std::size_t bi = 0; bi < breaks_.size(); ++bi) {
      const double t = breaks_[bi].first;
      const std::size_t b = breaks_[bi].second;
      const double dt = t - tOld;
      if (dtMin < dt) break;
      // move to the breakpoint: x_b hits 0 and leaves the path
      const double gb = g_[b], zb = -x_[b];
      xc_[b] = 0;
      for (std::size_t i = 0; i < q2; ++i) c_[i] += dt * p_[i];
      double wMc = 0, wMp = 0, wMw = 0;
      if (q) {
        rowOfW(b, wb_.data());
        timesM(wb_.data(), v_.data());
        wMc = dot(v_.data(), c_.data(), q2);
        wMp = dot(v_.data(), p_.data(), q2);
        wMw = dot(v_.data(), wb_.data(), q2);
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
    for (std::size_t i = 0; i < n; ++i)
      if (d_[i] != 0) xc_[i] = x_[i] + tOld * d_[i];
    for (std::size_t i = 0; i < q2; ++i) c_[i] += dtMin * p_[i];
    // -- subspace minimisation over the free variables F = {i: x^c_i not at its bound}
    free_.clear();
    for (std::size_t i = 0; i < n; ++i)
      if (!nonneg_ || xc_[i] > 0) free_.push_back(i);
    timesM(c_.data(), mc_.data());
    // reduced gradient r = Zᵀ(g + θ(x^c − x) − W·M·c)
    for (std::size_t i = 0; i < q2; ++i) v_[i] = 0;
    for (std::size_t fi = 0; fi < free_.size(); ++fi) {
      const std::size_t i = free_[fi];
      double r = g_[i] + theta_ * (xc_[i] - x_[i]);
      if (q) {
        rowOfW(i, wb_.data());
        r -= dot(wb_.data(), mc_.data(), q2);
        for (std::size_t j = 0; j < q2; ++j) v_[j] += wb_[j] * r;  // WᵀZ·r
      }
      r0_[i] = r;
    }
    if (q) {
      // u solves (I − M·WᵀZZᵀW/θ)·u = M·WᵀZ·r
      freeGram();
      timesM(v_.data(), u_.data());
      for (std::size_t i = 0; i < q2; ++i)
        for (std::size_t j = 0; j < q2; ++j) {
          double s = 0;
          for (std::size_t l = 0; l < q2; ++l) s += M_[i * q2 + l] * WW_[l * q2 + j];
          N_[i * q2 + j] = (i == j ? 1.0 : 0.0) - s / theta_;
        }
      if (!solveDense(N_.data(), u_.data(), q2)) return false;
    }
    // d_u = −r/θ − ZᵀW·u/θ², stored in r0_ on F; x̄ = P(x^c + d_u) when that is a descent direction,
    // else x^c + α*·d_u with α* the longest feasible fraction of d_u.
    for (std::size_t fi = 0; fi < free_.size(); ++fi) {
      const std::size_t i = free_[fi];
      double du = -r0_[i] / theta_;
      if (q) {
        rowOfW(i, wb_.data());
        du -= dot(wb_.data(), u_.data(), q2) / (theta_ * theta_);
      }
      r0_[i] = du;
    }
    double gd = 0;
    for (std::size_t i = 0; i < n; ++i) d_[i] = xc_[i] - x_[i];
    for (std::size_t fi = 0; fi < free_.size(); ++fi) {
      const std::size_t i = free_[fi];
      double t = xc_[i] + r0_[i];
      if (nonneg_ && t < 0) t = 0;
      d_[i] = t - x_[i];
    }
    gd = dot(g_.data(), d_.data(), n);
    if (!(gd < 0)) {
      double alpha = 1;
      if (nonneg_)
        for (std::size_t i : free_)
          if (r0_[i] < 0) alpha = std::min(alpha, -xc_[i] / r0_[i]);
      for (std::size_t i = 0; i < n; ++i) d_[i] = xc_[i] - x_[i];
      for (std::size_t i : free_) d_[i] += alpha * r0_[i];
      gd = dot(g_.data(), d_.data(), n);
    }
    gd_ = gd;
    return gd < 0 && std::isfinite(gd);
  }

  // WW = WᵀZZᵀW = Σ_{i∈F} w_i w_iᵀ, from whichever side is smaller: the free rows, or WᵀW (kept as
  // the pairs' inner products) minus the fixed rows.
  void freeGram() {
    const std::size_t q = count_, q2 = 2 * q, n = n_;
    const bool fromFree = free_.size() * 2 <= n;
    if (fromFree) {
      for (std::size_t i = 0; i < q2 * q2; ++i) WW_[i] = 0;
    } else {
      for (std::size_t i = 0; i < q; ++i)
        for (std::size_t j = 0; j < q; ++j) {
          const std::size_t a = slot(i), b = slot(j);
          WW_[i * q2 + j] = YY_[a * m_ + b];
          WW_[i * q2 + q + j] = theta_ * SY_[b * m_ + a];  // y_aᵀs_b
          WW_[(q + i) * q2 + j] = theta_ * SY_[a * m_ + b];
          WW_[(q + i) * q2 + q + j] = theta_ * theta_ * SS_[a * m_ + b];
        }
    }
    const double sign = fromFree ? 1.0 : -1.0;
    std::size_t fi = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const bool isFree = fi < free_.size() && free_[fi] == i;
      if (isFree) ++fi;
      if (isFree != fromFree) continue;
      rowOfW(i, wb_.data());
      for (std::size_t a = 0; a < q2; ++a) {
        const double wa = sign * wb_[a];
        for (std::size_t b = 0; b < q2; ++b) WW_[a * q2 + b] += wa * wb_[b];
      }
    }
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
      d_[i] = s;    // d_ is free once the step is taken: s
      r0_[i] = y;   // and y
      sy += s * y;
      yy += y * y;
    }
    x_.swap(xt_);
    g_.swap(gt_);
    fx_ = f;
    if (sy > kEpsilon * yy && yy > 0) addPair(d_.data(), r0_.data(), sy, yy);
  }

  // Strong-Wolfe line search (Nocedal & Wright, Algorithms 3.5–3.6) on [0, λmax]; monotone: only a
  // point with sufficient decrease is ever accepted.
  bool lineSearch() {
    const std::size_t n = n_;
    const double f0 = fx_, d0 = gd_;
    double lambdaMax = std::numeric_limits<double>::infinity();
    if (nonneg_)
      for (std::size_t i = 0; i < n; ++i)
        if (d_[i] < 0) lambdaMax = std::min(lambdaMax, -x_[i] / d_[i]);
    lambdaMax = std::min(lambdaMax, 1e10);
    double lo = 0, flo = f0, dlo = d0;  // the best point with sufficient decrease so far
    double hi = 0, fhi = 0, dhi = 0;
    bool bracketed = false;
    double lambda = std::min(1.0, lambdaMax);
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
      if (lambda >= lambdaMax) {  // the longest feasible step decreases f: take it (as L-BFGS-B does)
        accept(f);
        return true;
      }
      lambda = std::min(4 * lambda, lambdaMax);
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

  const std::size_t m_;
  std::size_t count_ = 0, head_ = 0;
  double theta_ = 0, gd_ = 0;
  std::vector<double> S_, Y_, SS_, SY_, YY_, M_, K_, N_, WW_, p_, c_, v_, u_, wb_, mp_, mc_, xc_, d_, r0_;
  std::vector<std::pair<double, std::size_t>> breaks_;
  std::vector<std::size_t> free_;
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
