#include "certified.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "error.hpp"
#include "linalg.hpp"
#include "thread_team.hpp"

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
  // x, g, x_t and g_t are not zero-filled: x is written by load(), g by the start's evaluation, x_t
  // and g_t by a solver's trial before it reads them (for SPG all on its team, so the first touch of
  // their pages, and its page faults, is spread over the threads).
  Run(BoundObjective& f, const double* x0, const CertifiedOptions& o, Monitor& monitor, CertifiedResult& r, double* into)
      : f_(f), o_(o), monitor_(monitor), r_(r), n_(f.size()), nonneg_(f.nonnegative()), x0_(x0), into_(into), x_(n_),
        g_(n_), xt_(n_), gt_(n_) {
    start_ = std::chrono::steady_clock::now();
  }
  virtual ~Run() = default;

  void solve() {
    load(x0_);
    fx_ = evaluate(x_.data(), g_.data());
    if (!std::isfinite(fx_) || !allOf(g_.data(), [](double v) { return std::isfinite(v); })) {
      finish(StopReason::NonFinite, NAN);
      return;
    }
    double cert = certificateAt(x_.data(), g_.data());
    record(0, cert, true);
    if (allOf(x_.data(), [](double v) { return v == 0; })) {
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
      cert = acceptedCertificateKnown_ ? acceptedCertificate_ : certificateAt(x_.data(), g_.data());
      acceptedCertificateKnown_ = false;
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
  // The certificate (solver.hpp gradientMapping) of x with gradient g; a solver with a thread team
  // sums it there.
  virtual double certificateAt(const double* x, const double* g) { return gradientMapping(x, g, n_, nonneg_); }
  // Whether test(v) holds for all n values of v (the start's checks); a solver with a thread team
  // tests on it.
  using Test = bool (*)(double);
  virtual bool allOf(const double* v, Test test) { return std::all_of(v, v + n_, test); }
  // x = the start x0, clamped at 0 with the bound (a NaN becomes 0 there, as the bound's projection
  // does); a solver with a thread team copies on it.
  virtual void load(const double* x0) { loadRange(x0, 0, n_); }
  void loadRange(const double* x0, std::size_t b, std::size_t e) {
    double* x = x_.data();
    if (nonneg_)
      for (std::size_t i = b; i < e; ++i) x[i] = x0[i] > 0 ? x0[i] : 0.0;
    else
      std::copy(x0 + b, x0 + e, x + b);
  }
  // into = x, the returned point; a solver with a thread team copies on it.
  virtual void store(double* into) { std::copy(x_.data(), x_.data() + n_, into); }

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
    if (into_) store(into_);
    else r_.x = std::move(x_);
  }

  BoundObjective& f_;
  const CertifiedOptions& o_;
  Monitor& monitor_;
  CertifiedResult& r_;
  const std::size_t n_;
  const bool nonneg_;
  const double* const x0_;
  double* const into_;
  UninitDoubles x_, g_, xt_, gt_;
  // The certificate (gradient mapping) of the point step() just accepted, when its own passes summed
  // it (it then saves the certificate a pass over x and g).
  bool acceptedCertificateKnown_ = false;
  double acceptedCertificate_ = 0;
  double fx_ = 0;
  int lastRecorded_ = -1;
  std::chrono::steady_clock::time_point start_;
};

// ---- SPG ---------------------------------------------------------------------------------------

class Spg : public Run {
 public:
  // The SPG iteration's own sweeps (the step, a backtracking trial, the Barzilai–Borwein sums) run on a
  // thread team (thread_team.hpp) sized like the energy's; each thread sums its own range in index
  // order and the partial sums are added in thread order, so one thread gives the serial sums exactly.
  Spg(BoundObjective& f, const double* x0, const CertifiedOptions& o, Monitor& monitor, CertifiedResult& r, double* into)
      : Run(f, x0, o, monitor, r, into), team_(teamThreads(0, 2.0 * double(n_))), formed_(f.formThreads() > 0),
        part_(4 * std::size_t(std::max(team_.size(), f.formThreads())), 0.0),
        moved_(std::size_t(std::max(team_.size(), f.formThreads())), 0) {}

 protected:
  bool step() override {
    const std::size_t n = n_;
    if (alpha_ == 0) {
      // the certificate's own step ‖x‖² (E's gradient scales as 1/‖x‖), bounded in [1e-10, 1e10] of it
      const double s0 = squared(x_.data());
      scale_ = s0 > 0 ? s0 : 1.0;
      alpha_ = scale_;
    }
    // d = P(x − αg) − x is never stored: the first trial x + d is written in the pass that forms the
    // slope gᵀd, and a backtracking trial recomputes d from x and g (the same values, bit for bit).
    const double lower = nonneg_ ? 0.0 : -std::numeric_limits<double>::infinity();
    const double alpha = alpha_;
    const double* x = x_.data();
    const double* g = g_.data();
    double* xt = xt_.data();
    double lambda = 1;
    // xt = x + λd, and x + λd ≠ 0 somewhere (see usable()); with λ = 1 also the slope gᵀd.
    // gᵀd in four partial sums (i mod 4): one running sum is a chain of dependent additions that set
    // the pace of the whole pass (one element per addition latency).
    // SSE2 where there is SSE2: the lanes hold sums 0–1 and 2–3 of the portable loop's four, the same
    // sums bit for bit (max(lower, v) keeps v for NaN and for v = lower, as std::max(v, lower)).
    auto trial = [&](int th, std::size_t b, std::size_t e) {
      double gd[4] = {0, 0, 0, 0}, xx[4] = {0, 0, 0, 0};
      bool moved = false;
      const double al = alpha, la = lambda;  // locals: the stores to xt cannot alias them
      std::size_t i = b;
#if defined(__SSE2__)
      {
        const __m128d av = _mm_set1_pd(al), lv = _mm_set1_pd(la), lo = _mm_set1_pd(lower), zero = _mm_setzero_pd();
        __m128d gd0 = zero, gd1 = zero, xx0 = zero, xx1 = zero, mv = zero;
        for (; i + 4 <= e; i += 4) {
          const __m128d x0 = _mm_loadu_pd(x + i), x1 = _mm_loadu_pd(x + i + 2);
          const __m128d g0 = _mm_loadu_pd(g + i), g1 = _mm_loadu_pd(g + i + 2);
          const __m128d d0 = _mm_sub_pd(_mm_max_pd(lo, _mm_sub_pd(x0, _mm_mul_pd(av, g0))), x0);
          const __m128d d1 = _mm_sub_pd(_mm_max_pd(lo, _mm_sub_pd(x1, _mm_mul_pd(av, g1))), x1);
          gd0 = _mm_add_pd(gd0, _mm_mul_pd(g0, d0));
          gd1 = _mm_add_pd(gd1, _mm_mul_pd(g1, d1));
          const __m128d t0 = _mm_add_pd(x0, _mm_mul_pd(lv, d0)), t1 = _mm_add_pd(x1, _mm_mul_pd(lv, d1));
          _mm_storeu_pd(xt + i, t0);
          _mm_storeu_pd(xt + i + 2, t1);
          xx0 = _mm_add_pd(xx0, _mm_mul_pd(t0, t0));
          xx1 = _mm_add_pd(xx1, _mm_mul_pd(t1, t1));
          mv = _mm_or_pd(mv, _mm_or_pd(_mm_cmpneq_pd(t0, zero), _mm_cmpneq_pd(t1, zero)));
        }
        _mm_storeu_pd(gd, gd0);
        _mm_storeu_pd(gd + 2, gd1);
        _mm_storeu_pd(xx, xx0);
        _mm_storeu_pd(xx + 2, xx1);
        moved = _mm_movemask_pd(mv) != 0;
      }
#endif
      auto one = [&](std::size_t j, int a) {
        const double t = std::max(x[j] - al * g[j], lower);  // a select, not a data-dependent branch
        const double d = t - x[j];
        gd[a] += g[j] * d;
        xt[j] = x[j] + la * d;
        xx[a] += xt[j] * xt[j];
        moved |= xt[j] != 0;
      };
      fourLanes(i, e, one);
      // Added to the thread's sums: with the objective's sweep (formed_) a thread forms several blocks.
      part_[4 * th] += (gd[0] + gd[1]) + (gd[2] + gd[3]);
      part_[4 * th + 1] += (xx[0] + xx[1]) + (xx[2] + xx[3]);
      if (moved) moved_[th] = 1;
    };
    // The trial point, and with formed_ its value too: the objective's value sweep forms each row
    // block of x + λd just before it values it, in cache, where a trial pass and a value sweep of their
    // own would write x + λd and read it back (one evaluation, counted here; NaN: not valued).
    const BoundObjective::FormRows form = trial;
    auto makeTrial = [&]() -> double {
      std::fill(part_.begin(), part_.end(), 0.0);
      std::fill(moved_.begin(), moved_.end(), 0);
      if (!formed_) {
        runRows(team_, n, kAlign, trial);
        return NAN;
      }
      ++r_.evaluations;
      return f_.valueOfFormed(xt, form);
    };
    double formedValue = makeTrial();
    const double gd = sum(0);
    double xtNorm2 = sum(1);  // ‖x + λd‖², for the certificate of the point if it is accepted
    bool moved = anyMoved();
    if (!(gd < 0)) return false;
    for (int ls = 0; ls < kMaxLineSearchSteps; ++ls) {
      if (ls > 0) {
        formedValue = makeTrial();
        xtNorm2 = sum(1);
        moved = anyMoved();
      }
      // With a cheap value the sufficient decrease is tested on f alone and ∇f is formed only for the
      // point that passes (the same trial: it counts as one evaluation, and f is the same bit for bit).
      const bool valueFirst = f_.valueIsCheap();
      double ft = formed_ ? formedValue : evaluate(xt_.data(), valueFirst ? nullptr : gt_.data());
      // usable() in the passes that are made anyway: a non-finite ∇f makes yy below non-finite (g is finite)
      bool accepted = moved && std::isfinite(ft) && ft <= fx_ + kArmijo * lambda * gd;
      if (accepted && valueFirst) {
        ft = f_.gradientAtValued(xt_.data(), gt_.data());
        accepted = std::isfinite(ft) && ft <= fx_ + kArmijo * lambda * gd;
      }
      double ss = 0, sy = 0, yy = 0, cd2 = 0;
      if (accepted) {
        // Barzilai–Borwein: s = λd, y = Δg; BB1 = sᵀs/sᵀy and BB2 = sᵀy/yᵀy alternate. The certificate
        // of x + λd in the same pass (its ‖x + λd‖² came with the trial), where a pass of its own would
        // read x + λd and its gradient once more.
        const double* gt = gt_.data();
        const double xtn2 = xtNorm2;
        const bool nonneg = nonneg_;
        // Each sum in four partial sums (i mod 4), as the trial's gᵀd: four running sums of one element
        // each are four chains of dependent additions that set the pace of the pass.
        auto bb = [&](int th, std::size_t b, std::size_t e) {
          double a[4][4] = {};
          std::size_t i = b;
#if defined(__SSE2__)
          {  // as the trial: SSE2 lanes hold the portable loop's sums 0–1 and 2–3, bit for bit
            const __m128d yyv = _mm_set1_pd(xtn2), zero = _mm_setzero_pd();
            __m128d acc[4][2] = {{zero, zero}, {zero, zero}, {zero, zero}, {zero, zero}};
            for (; i + 4 <= e; i += 4)
              for (int h = 0; h < 2; ++h) {
                const std::size_t j = i + 2 * std::size_t(h);
                const __m128d xtv = _mm_loadu_pd(xt + j), gtv = _mm_loadu_pd(gt + j);
                const __m128d s = _mm_sub_pd(xtv, _mm_loadu_pd(x + j)), y = _mm_sub_pd(gtv, _mm_loadu_pd(g + j));
                acc[0][h] = _mm_add_pd(acc[0][h], _mm_mul_pd(s, s));
                acc[1][h] = _mm_add_pd(acc[1][h], _mm_mul_pd(s, y));
                acc[2][h] = _mm_add_pd(acc[2][h], _mm_mul_pd(y, y));
                __m128d t = _mm_sub_pd(xtv, _mm_mul_pd(yyv, gtv));  // gradientMappingShare
                if (nonneg) t = _mm_max_pd(zero, t);
                const __m128d dd = _mm_sub_pd(t, xtv);
                acc[3][h] = _mm_add_pd(acc[3][h], _mm_mul_pd(dd, dd));
              }
            for (int q = 0; q < 4; ++q) {
              _mm_storeu_pd(a[q], acc[q][0]);
              _mm_storeu_pd(a[q] + 2, acc[q][1]);
            }
          }
#endif
          auto one = [&](std::size_t j, int l) {
            const double s = xt[j] - x[j], y = gt[j] - g[j];
            a[0][l] += s * s;
            a[1][l] += s * y;
            a[2][l] += y * y;
            a[3][l] += gradientMappingShare(xt[j], gt[j], xtn2, nonneg);
          };
          fourLanes(i, e, one);
          for (int q = 0; q < 4; ++q) part_[4 * th + q] = (a[q][0] + a[q][1]) + (a[q][2] + a[q][3]);
        };
        std::fill(part_.begin(), part_.end(), 0.0);  // the objective's team may have more threads
        runRows(team_, n, kAlign, bb);
        ss = sum(0);
        sy = sum(1);
        yy = sum(2);
        cd2 = sum(3);
        accepted = std::isfinite(yy) && std::isfinite(sy);
      }
      if (accepted) {
        double next = sy > 0 ? ((++bbCount_ & 1) ? ss / sy : sy / yy) : 1e10 * scale_;
        alpha_ = std::min(std::max(next, 1e-10 * scale_), 1e10 * scale_);
        x_.swap(xt_);
        g_.swap(gt_);
        fx_ = ft;
        acceptedCertificate_ = gradientMappingFromSums(cd2, xtNorm2);
        acceptedCertificateKnown_ = true;
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

  // The start's copy and the result's on the team: the first touch of x's pages (and of a fresh
  // `into`'s) on the threads that sweep those rows afterwards, not all on the calling thread.
  void load(const double* x0) override {
    auto copy = [&](int, std::size_t b, std::size_t e) { loadRange(x0, b, e); };
    runRows(team_, n_, kAlign, copy);
  }
  bool allOf(const double* v, Test test) override {
    std::fill(moved_.begin(), moved_.end(), 0);
    auto pass = [&](int th, std::size_t b, std::size_t e) { moved_[th] = std::all_of(v + b, v + e, test) ? 0 : 1; };
    runRows(team_, n_, kAlign, pass);
    return !anyMoved();  // moved_ holds, per thread, whether a value of its range failed the test
  }
  void store(double* into) override {
    const double* x = x_.data();
    auto copy = [&](int, std::size_t b, std::size_t e) { std::copy(x + b, x + e, into + b); };
    runRows(team_, n_, kAlign, copy);
  }

  // gradientMapping on the team: ‖x‖², then Σ of the shares, each thread over its range in index
  // order, the partial sums added in thread order (one thread: gradientMapping's sums, bit for bit).
  double certificateAt(const double* x, const double* g) override {
    const bool nonneg = nonneg_;
    std::fill(part_.begin(), part_.end(), 0.0);
    auto norm = [&](int th, std::size_t b, std::size_t e) {
      double yy = 0;
      for (std::size_t i = b; i < e; ++i) yy += x[i] * x[i];
      part_[4 * th] = yy;
    };
    runRows(team_, n_, kAlign, norm);
    const double yy = sum(0);
    if (!(yy > 0)) return gradientMappingFromSums(0, yy);
    auto share = [&](int th, std::size_t b, std::size_t e) {
      double d2 = 0;
      for (std::size_t i = b; i < e; ++i) d2 += gradientMappingShare(x[i], g[i], yy, nonneg);
      part_[4 * th] = d2;
    };
    std::fill(part_.begin(), part_.end(), 0.0);
    runRows(team_, n_, kAlign, share);
    return gradientMappingFromSums(sum(0), yy);
  }

 private:
  double squared(const double* x) const { return dot(x, x, n_); }
  // Partial sum `which` of the last team pass, added in thread order.
  double sum(int which) const {
    double total = 0;
    for (std::size_t t = 0; t < moved_.size(); ++t) total += part_[4 * t + std::size_t(which)];
    return total;
  }
  bool anyMoved() const {
    for (char m : moved_)
      if (m) return true;
    return false;
  }
  static constexpr std::size_t kAlign = 512;  // doubles per range step: whole cache lines per thread
  RowTeam team_;
  const bool formed_;  // the objective values a trial while it is formed (valueOfFormed)
  std::vector<double> part_;
  std::vector<char> moved_;
  double alpha_ = 0, scale_ = 1;
  unsigned bbCount_ = 0;
};

// ---- L-BFGS-B ----------------------------------------------------------------------------------

class Lbfgsb : public Run {
 public:
  Lbfgsb(BoundObjective& f, const double* x0, const CertifiedOptions& o, Monitor& monitor, CertifiedResult& r, double* into)
      : Run(f, x0, o, monitor, r, into), m_(static_cast<std::size_t>(std::max(1, o.memory))) {
    const std::size_t n = n_, m = m_;
    S_.assign(m * n, 0);
    Y_.assign(m * n, 0);
    for (auto* v : {&SS_, &SY_, &FSS_, &FSY_, &FYY_}) v->assign(m * m, 0);
    for (auto* v : {&K_, &Kf_, &N_, &WW_}) v->assign(4 * m * m, 0);
    for (auto* v : {&p_, &c_, &v_, &u_, &wb_, &mp_, &mc_, &a_, &b_}) v->assign(2 * m, 0);
    piv_.assign(2 * m, 0);
    pivK_.assign(2 * m, 0);
    xc_.assign(n, 0);
    d_.assign(n, 0);
    r_.assign(n, 0);
    t_.assign(n, 0);
    mask_.assign(n, 1.0);  // the F matrices are sums over the coordinates with mask 1
    sMasked_.assign(n, 0);
    yMasked_.assign(n, 0);
    scratch_.assign(7 * m, 0);
    free_.assign(n, 1.0);
    breaks_.resize(nonneg_ ? n : 0);
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
  // Pairs live in rows of S_ and Y_ (m×n); the i-th oldest is in row slot(i). While fewer than m
  // pairs are stored they fill rows 0..count−1 in order, so the rows in use are always 0..used()−1.
  std::size_t slot(std::size_t i) const { return (head_ + i) % m_; }
  std::size_t used() const { return count_; }
  const double* sAt(std::size_t i) const { return S_.data() + slot(i) * n_; }
  const double* yAt(std::size_t i) const { return Y_.data() + slot(i) * n_; }

  void resetMemory() {
    count_ = 0;
    head_ = 0;
    const double xx = dot(x_.data(), x_.data(), n_);
    theta_ = xx > 0 ? 1.0 / xx : 1.0;  // B₀ = I/‖x‖²: the certificate's step
  }

  // Wᵀv in logical order: (y_1ᵀv … y_qᵀv, θs_1ᵀv … θs_qᵀv), one pass over each store (BLAS-2).
  void timesWt(const double* v, double* out) {
    const std::size_t q = count_;
    if (q == 0) return;
    cblas_dgemv(CblasRowMajor, CblasNoTrans, int(used()), int(n_), 1.0, Y_.data(), int(n_), v, 1, 0.0, a_.data(), 1);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, int(used()), int(n_), theta_, S_.data(), int(n_), v, 1, 0.0, b_.data(), 1);
    for (std::size_t i = 0; i < q; ++i) {
      out[i] = a_[slot(i)];
      out[q + i] = b_[slot(i)];
    }
  }

  // out = beta·out + W·z for z in logical order (2q).
  void timesW(const double* z, double beta, double* out) {
    const std::size_t q = count_;
    if (q == 0) {
      if (beta != 1)
        for (std::size_t i = 0; i < n_; ++i) out[i] *= beta;
      return;
    }
    for (std::size_t i = 0; i < q; ++i) {
      a_[slot(i)] = z[i];
      b_[slot(i)] = theta_ * z[q + i];
    }
    cblas_dgemv(CblasRowMajor, CblasTrans, int(used()), int(n_), 1.0, Y_.data(), int(n_), a_.data(), 1, beta, out, 1);
    cblas_dgemv(CblasRowMajor, CblasTrans, int(used()), int(n_), 1.0, S_.data(), int(n_), b_.data(), 1, 1.0, out, 1);
  }

  // Row b of W = [Y θS] in logical order.
  void rowOfW(std::size_t b, double* w) const {
    const std::size_t q = count_;
    for (std::size_t i = 0; i < q; ++i) {
      w[i] = yAt(i)[b];
      w[q + i] = theta_ * sAt(i)[b];
    }
  }

  // out = M·v = K⁻¹·v with the factors of K (formM): O(q²), as a product with an explicit M would be.
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

  // Stores the pair (s, y) and its inner products with every stored pair, over all coordinates
  // (SS, SY) and over the current free set (FSS, FSY, FYS, FYY: the blocks of WᵀZZᵀW).
  void addPair(const double* s, const double* y, double sy) {
    std::size_t at;
    if (count_ < m_) {
      at = count_;
      ++count_;
    } else {
      at = head_;
      head_ = (head_ + 1) % m_;
    }
    const std::size_t n = n_;
    std::copy(s, s + n, S_.data() + at * n);
    std::copy(y, y + n, Y_.data() + at * n);
    // Products with every stored pair as BLAS-2 passes over the stores (rows 0..used−1, slot order):
    // over all coordinates, then over the free set (s and y masked; the same numbers when all are free).
    const int rows = int(used()), cols = int(n);
    double* sv = a_.data();  // m-sized scratch, slot-indexed
    double* yv = b_.data();
    auto products = [&](const double* sIn, const double* yIn, double* SSo, double* SYo, double* YSo, double* YYo) {
      cblas_dgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0, S_.data(), cols, sIn, 1, 0.0, sv, 1);  // s_oᵀs
      for (int o = 0; o < rows; ++o) SSo[o] = sv[o];
      cblas_dgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0, S_.data(), cols, yIn, 1, 0.0, sv, 1);  // s_oᵀy
      for (int o = 0; o < rows; ++o) SYo[o] = sv[o];
      cblas_dgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0, Y_.data(), cols, sIn, 1, 0.0, yv, 1);  // y_oᵀs
      for (int o = 0; o < rows; ++o) YSo[o] = yv[o];
      if (YYo) {
        cblas_dgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0, Y_.data(), cols, yIn, 1, 0.0, yv, 1);  // y_oᵀy
        for (int o = 0; o < rows; ++o) YYo[o] = yv[o];
      }
    };
    double* ss = scratch_.data();
    double* so_y = ss + m_;
    double* s_yo = so_y + m_;
    double* fss = s_yo + m_;
    double* fso_y = fss + m_;
    double* fs_yo = fso_y + m_;
    double* fyy = fs_yo + m_;
    products(s, y, ss, so_y, s_yo, nullptr);
    bool allFree = true;
    for (std::size_t j = 0; j < n && allFree; ++j) allFree = mask_[j] != 0;
    if (allFree) {
      std::copy(ss, ss + rows, fss);
      std::copy(so_y, so_y + rows, fso_y);
      std::copy(s_yo, s_yo + rows, fs_yo);
      cblas_dgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0, Y_.data(), cols, y, 1, 0.0, fyy, 1);
    } else {
      for (std::size_t j = 0; j < n; ++j) {
        sMasked_[j] = s[j] * mask_[j];
        yMasked_[j] = y[j] * mask_[j];
      }
      products(sMasked_.data(), yMasked_.data(), fss, fso_y, fs_yo, fyy);
    }
    for (std::size_t o = 0; o < std::size_t(rows); ++o) {
      SS_[at * m_ + o] = SS_[o * m_ + at] = ss[o];
      SY_[at * m_ + o] = o == at ? sy : s_yo[o];  // s_atᵀy_o
      SY_[o * m_ + at] = o == at ? sy : so_y[o];  // s_oᵀy_at
      FSS_[at * m_ + o] = FSS_[o * m_ + at] = fss[o];
      FSY_[at * m_ + o] = fs_yo[o];  // over the free set: s_atᵀZZᵀy_o
      FSY_[o * m_ + at] = fso_y[o];
      FYY_[at * m_ + o] = FYY_[o * m_ + at] = fyy[o];
    }
    theta_ = dot(y, y, n) / sy;
  }

  // Moves the free-set sums from mask_ to free_: ± the rows of the coordinates that changed sides.
  void updateFreeSums() {
    const std::size_t q = count_, n = n_;
    for (std::size_t j = 0; j < n; ++j) {
      if (free_[j] == mask_[j]) continue;
      const double sign = free_[j] - mask_[j];
      mask_[j] = free_[j];
      for (std::size_t a = 0; a < q; ++a) {
        const std::size_t sa = slot(a);
        const double saj = S_[sa * n + j], yaj = Y_[sa * n + j];
        for (std::size_t b = 0; b < q; ++b) {
          const std::size_t sb = slot(b);
          const double sbj = S_[sb * n + j], ybj = Y_[sb * n + j];
          FSS_[sa * m_ + sb] += sign * saj * sbj;
          FSY_[sa * m_ + sb] += sign * saj * ybj;
          FYY_[sa * m_ + sb] += sign * yaj * ybj;
        }
      }
    }
  }

  // The search direction d = x̄ − x: the generalized Cauchy point, then subspace minimisation.
  bool direction() {
    const std::size_t n = n_, q = count_, q2 = 2 * q;
    if (!formM()) return false;
    // -- generalized Cauchy point along x(t) = P(x − t·g); breakpoints t_i = x_i/g_i in a min-heap
    // The n-loops of the direction are branch-free (selects, a slot always written and counted or
    // not): whether a coordinate is free, fixed or a breakpoint follows the data, so branches on it
    // mispredict about half the time, which cost more than the loops' arithmetic (measured: 57×2000).
    std::size_t breakCount = 0;
    double f1 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double gi = g_[i], xi = x_[i];
      const bool pushed = nonneg_ && gi > 0;
      const bool fixed = pushed && xi <= 0;  // at the bound, pushed into it: fixed from the start
      const double di = -gi * static_cast<double>(!fixed);
      d_[i] = di;
      f1 -= di * di;
      if (nonneg_) {
        breaks_[breakCount] = {xi / gi, i};
        breakCount += pushed && !fixed;
      }
    }
    if (f1 == 0) return false;  // no free direction of descent
    timesWt(d_.data(), p_.data());
    for (std::size_t i = 0; i < q2; ++i) c_[i] = 0;
    timesM(p_.data(), mp_.data());
    double f2 = -theta_ * f1 - dot(p_.data(), mp_.data(), q2);
    const double f2Start = f2;
    double dtMin = -f1 / f2;
    double tOld = 0;
    auto later = [](const std::pair<double, std::size_t>& a, const std::pair<double, std::size_t>& b) { return a.first > b.first; };
    std::make_heap(breaks_.begin(), breaks_.begin() + long(breakCount), later);
    std::size_t heapEnd = breakCount;
    while (heapEnd > 0) {
      const double t = breaks_.front().first;
      const std::size_t b = breaks_.front().second;
      const double dt = t - tOld;
      if (dtMin < dt) break;
      std::pop_heap(breaks_.begin(), breaks_.begin() + long(heapEnd), later);
      --heapEnd;
      // move to the breakpoint: x_b reaches 0 and leaves the path
      const double gb = g_[b], zb = -x_[b];
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
    // x^c = x + t·d (d is 0 on the fixed coordinates and on the breakpoints passed, so x stays), then
    // the breakpoints passed, which pop_heap left at the end of the heap's range, go to 0
    for (std::size_t i = 0; i < n; ++i) xc_[i] = x_[i] + tOld * d_[i];
    for (std::size_t k = heapEnd; k < breakCount; ++k) xc_[breaks_[k].second] = 0;
    for (std::size_t i = 0; i < q2; ++i) c_[i] += dtMin * p_[i];
    // -- subspace minimisation over the free variables F = {i: x^c_i off its bound}
    for (std::size_t i = 0; i < n; ++i) free_[i] = static_cast<double>(!nonneg_ || xc_[i] > 0);
    if (q) updateFreeSums();
    // reduced gradient r = Zᵀ(g + θ(x^c − x) − W·M·c), zero off F
    timesM(c_.data(), mc_.data());
    if (q) timesW(mc_.data(), 0.0, t_.data());
    if (q)
      for (std::size_t i = 0; i < n; ++i) r_[i] = free_[i] * (g_[i] + theta_ * (xc_[i] - x_[i]) - t_[i]);
    else
      for (std::size_t i = 0; i < n; ++i) r_[i] = free_[i] * (g_[i] + theta_ * (xc_[i] - x_[i]));
    if (q) {
      // u solves (I − M·WᵀZZᵀW/θ)·u = M·WᵀZ·r, i.e. (K − WᵀZZᵀW/θ)·u = WᵀZ·r (multiplied by K = M⁻¹)
      timesWt(r_.data(), u_.data());
      for (std::size_t i = 0; i < q; ++i)
        for (std::size_t j = 0; j < q; ++j) {
          const std::size_t a = slot(i), b = slot(j);
          WW_[i * q2 + j] = FYY_[a * m_ + b];
          WW_[i * q2 + q + j] = theta_ * FSY_[b * m_ + a];  // y_aᵀZZᵀs_b
          WW_[(q + i) * q2 + j] = theta_ * FSY_[a * m_ + b];
          WW_[(q + i) * q2 + q + j] = theta_ * theta_ * FSS_[a * m_ + b];
        }
      for (std::size_t i = 0; i < q2 * q2; ++i) N_[i] = K_[i] - WW_[i] / theta_;
      if (!luFactor(N_.data(), piv_.data(), q2)) return false;
      luSolve(N_.data(), piv_.data(), q2, u_.data());
      // d_u = −r/θ − ZᵀW·u/θ² (into t_, on F)
      timesW(u_.data(), 0.0, t_.data());
    }
    const double it = 1 / theta_, it2 = it * it;
    double gd = 0;
    const double lower = nonneg_ ? 0.0 : -std::numeric_limits<double>::infinity();
    const double tScale = q ? it2 : 0.0;
    if (!q) std::fill(t_.begin(), t_.end(), 0.0);  // no W·u: t_ may hold an older product
    for (std::size_t i = 0; i < n; ++i) {
      const bool isFree = free_[i] != 0;
      const double du = -r_[i] * it - t_[i] * tScale;
      const double y = std::max(xc_[i] + du, lower);
      t_[i] = isFree ? du : 0.0;
      const double di = (isFree ? y : xc_[i]) - x_[i];
      d_[i] = di;
      gd += g_[i] * di;
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
    const double lower = nonneg_ ? 0.0 : -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < n; ++i) xt_[i] = std::max(x_[i] + lambda * d_[i], lower);  // rounding at the largest feasible step
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

  const std::size_t m_;
  std::size_t count_ = 0, head_ = 0;
  double theta_ = 0, gd_ = 0;
  std::vector<double> S_, Y_;                               // the pairs, one per row
  std::vector<double> SS_, SY_, FSS_, FSY_, FYY_;  // slot-indexed m×m inner products (F: over the free set)
  std::vector<double> K_, Kf_, N_, WW_;  // 2q×2q: M⁻¹, its LU factors, the subspace system, WᵀZZᵀW
  std::vector<double> p_, c_, v_, u_, wb_, mp_, mc_, a_, b_;  // 2q
  std::vector<std::size_t> piv_, pivK_;
  std::vector<double> xc_, d_, r_, t_, mask_, free_, sMasked_, yMasked_;  // n
  std::vector<double> scratch_;  // 7 m-vectors of addPair
  std::vector<std::pair<double, std::size_t>> breaks_;
};

}  // namespace

void certifiedSolve(BoundObjective& f, const double* x0, const CertifiedOptions& options, Monitor& monitor,
                    CertifiedResult& result, double* into) {
  if (options.recordEvery < 1) throwRange("Expected recordEvery ≥ 1");
  if (options.solver == CertifiedSolver::Spg) {
    // An objective that sweeps its rows on a team of more than one thread (nsa_energy.cpp's target
    // mode: every p×k product per row block) runs its BLAS calls on one OpenBLAS thread each, as the
    // SPG sweeps run on their team: OpenBLAS is held at one thread for the solve, so that no OpenBLAS
    // worker spinning after a threaded call takes a core from the teams.
    SingleThreadedBlas one(f.formThreads() > 1);
    Spg run(f, x0, options, monitor, result, into);
    run.solve();
  } else {
    Lbfgsb run(f, x0, options, monitor, result, into);
    run.solve();
  }
}

}  // namespace nsa
