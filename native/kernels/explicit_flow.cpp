#include "explicit_flow.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <thread>

#if defined(__SSE2__)
#include <xmmintrin.h>
#include <emmintrin.h>
#endif

#include "error.hpp"
#include "random.hpp"
#include "thread_team.hpp"

namespace nsa {

namespace {

void symmetrizeFromUpper(double* S, std::size_t k) {
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < i; ++j) S[i * k + j] = S[j * k + i];
}

double trace(const double* S, std::size_t k) {
  double t = 0;
  for (std::size_t i = 0; i < k; ++i) t += S[i * k + i];
  return t;
}

// M with ¼c·∇defect(Y) = Y·M from S = YᵀY: M = c[(S − Diag S)/n² − (d/n)I], n = tr S, d = defect;
// 0 when n ≤ 1e-12 (defect is 0 there).
void defectGradientFromGram(const double* S, std::size_t k, double c, double* M) {
  const double n = trace(S, k);
  std::fill(M, M + k * k, 0.0);
  if (!(n > 1e-12)) return;
  const double d = defectFromGram(S, k);
  const double n2 = n * n;
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j) M[i * k + j] = i == j ? -c * d / n : c * S[i * k + j] / n2;
}

// Eigendecomposition of a symmetric k×k matrix (LAPACK dsyevd): V column-major (column i = eigenvector
// i), values ascending. The workspaces are sized once by the caller.
struct SymmetricEig {
  std::vector<double> V, values, work;
  std::vector<lapack_int> iwork;
  void resize(std::size_t k) {
    V.assign(k * k, 0.0);
    values.assign(k, 0.0);
    work.assign(1 + 6 * k + 2 * k * k, 0.0);
    iwork.assign(3 + 5 * k, 0);
  }
  bool compute(const double* S, std::size_t k) {
    std::memcpy(V.data(), S, k * k * sizeof(double));
    return LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', asInt(k), V.data(), asInt(k), values.data(), work.data(),
                               static_cast<lapack_int>(work.size()), iwork.data(),
                               static_cast<lapack_int>(iwork.size())) == 0;
  }
};

// (YᵀY)^{-1/2} as the pseudo-inverse square root (eigenvalues ≤ 1e-14·λmax count as 0), so that
// Q = Y·(YᵀY)^{-1/2} is Y's polar factor (a partial isometry, ‖Q‖₂ ≤ 1, when Y is rank-deficient).
// Symmetric, so row- and column-major agree. Returns false when S is 0, not finite or eig fails.
bool inverseSqrtOfGram(const double* S, std::size_t k, SymmetricEig& eig, double* out) {
  if (!allFinite(S, k * k) || !eig.compute(S, k)) return false;
  const double lmax = eig.values[k - 1];
  if (!(lmax > 0)) return false;
  std::fill(out, out + k * k, 0.0);
  for (std::size_t c = 0; c < k; ++c) {
    const double l = eig.values[c];
    if (!(l > 1e-14 * lmax)) continue;
    const double f = 1.0 / std::sqrt(l);
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = 0; j < k; ++j) out[i * k + j] += f * eig.V[i + c * k] * eig.V[j + c * k];
  }
  return true;
}

// T = N(best + α(R − best)) (T = N(R) when α = 1) over `len` entries; returns ‖T − X0‖². Four
// independent partial sums (two SSE2 lanes × 2): a single running sum is a chain of dependent additions,
// and the clamp is branch-free (maxpd; ½ of the entries are clamped on a random start, so a branch
// mispredicts half the time). Before both, this loop was the slowest part of the pass after the DGEMMs.
// max(0, v) as `0 > v ? 0 : v` keeps v for −0 and NaN, as std::max(v, 0.0) did.
template <bool Full, bool Hard>
double trialRowsT(const double* R, const double* B, const double* X, double* T, std::size_t len, double alpha) {
  std::size_t i = 0;
  double acc[4] = {0, 0, 0, 0};
#if defined(__SSE2__)
  const __m128d zero = _mm_setzero_pd(), a = _mm_set1_pd(alpha);
  __m128d acc0 = _mm_setzero_pd(), acc1 = _mm_setzero_pd();
  for (; i + 4 <= len; i += 4) {
    __m128d v0 = _mm_loadu_pd(R + i), v1 = _mm_loadu_pd(R + i + 2);
    if (!Full) {
      const __m128d b0 = _mm_loadu_pd(B + i), b1 = _mm_loadu_pd(B + i + 2);
      v0 = _mm_add_pd(b0, _mm_mul_pd(a, _mm_sub_pd(v0, b0)));
      v1 = _mm_add_pd(b1, _mm_mul_pd(a, _mm_sub_pd(v1, b1)));
    }
    if (Hard) {
      v0 = _mm_max_pd(zero, v0);
      v1 = _mm_max_pd(zero, v1);
    }
    _mm_storeu_pd(T + i, v0);
    _mm_storeu_pd(T + i + 2, v1);
    const __m128d d0 = _mm_sub_pd(v0, _mm_loadu_pd(X + i)), d1 = _mm_sub_pd(v1, _mm_loadu_pd(X + i + 2));
    acc0 = _mm_add_pd(acc0, _mm_mul_pd(d0, d0));
    acc1 = _mm_add_pd(acc1, _mm_mul_pd(d1, d1));
  }
  _mm_storeu_pd(acc, acc0);
  _mm_storeu_pd(acc + 2, acc1);
#endif
  auto one = [&](std::size_t j, int s) {
    double v = Full ? R[j] : B[j] + alpha * (R[j] - B[j]);
    if (Hard) v = 0.0 > v ? 0.0 : v;
    T[j] = v;
    const double d = v - X[j];
    acc[s] += d * d;
  };
  fourLanes(i, len, one);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

double trialRows(const double* R, const double* B, const double* X, double* T, std::size_t len, double alpha,
                 bool hard) {
  if (alpha == 1.0)
    return hard ? trialRowsT<true, true>(R, B, X, T, len, alpha) : trialRowsT<true, false>(R, B, X, T, len, alpha);
  return hard ? trialRowsT<false, true>(R, B, X, T, len, alpha) : trialRowsT<false, false>(R, B, X, T, len, alpha);
}

// ‖Y − X0‖² over `len` entries, summed in trialRows' order: a trial equal to an iterate gets exactly
// that iterate's energy (a flow at its fixed point must not "improve" by rounding).
double distanceRows(const double* Y, const double* X, std::size_t len) {
  double acc[4] = {0, 0, 0, 0};
  squaredDistanceLanes(Y, X, len, acc);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Software prefetch of `len` doubles into L2 (one request per 64-byte line).
void prefetchRows(const double* x, std::size_t len) {
#if defined(__SSE2__)
  for (std::size_t i = 0; i < len; i += 8) _mm_prefetch(reinterpret_cast<const char*>(x + i), _MM_HINT_T1);
#else
  (void)x;
  (void)len;
#endif
}

// dst = src with non-temporal stores where dst is 16-byte aligned (streamFence() orders them).
void streamRows(const double* src, double* dst, std::size_t len) {
  std::size_t i = 0;
#if defined(__SSE2__)
  if (reinterpret_cast<std::uintptr_t>(dst) % 16 != 0 && len > 0) {
    dst[0] = src[0];
    i = 1;
  }
  if (reinterpret_cast<std::uintptr_t>(dst + i) % 16 == 0)
    for (; i + 2 <= len; i += 2) _mm_stream_pd(dst + i, _mm_loadu_pd(src + i));
#endif
  for (; i < len; ++i) dst[i] = src[i];
}

void streamFence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// g = G + η(Y − X0) (G = 0 when null), Ỹ = Y − lr·g over `len` entries; returns ‖g‖² (four partial
// sums, as trialRows, the SSE2 lanes holding sums 0–1 and 2–3: the same sums as the portable loop).
// 0 + η(Y − X0) when G is null, as the portable loop adds it (the sign of a zero g is kept alike).
template <bool WithG>
double plainStepRowsT(const double* Y, const double* X, const double* G, double eta, double lr, double* Yt,
                      std::size_t len) {
  double acc[4] = {0, 0, 0, 0};
  std::size_t i = 0;
#if defined(__SSE2__)
  const __m128d e = _mm_set1_pd(eta), l = _mm_set1_pd(lr), zero = _mm_setzero_pd();
  __m128d acc0 = _mm_setzero_pd(), acc1 = _mm_setzero_pd();
  for (; i + 4 <= len; i += 4) {
    const __m128d y0 = _mm_loadu_pd(Y + i), y1 = _mm_loadu_pd(Y + i + 2);
    const __m128d g0 = _mm_add_pd(WithG ? _mm_loadu_pd(G + i) : zero, _mm_mul_pd(e, _mm_sub_pd(y0, _mm_loadu_pd(X + i))));
    const __m128d g1 =
        _mm_add_pd(WithG ? _mm_loadu_pd(G + i + 2) : zero, _mm_mul_pd(e, _mm_sub_pd(y1, _mm_loadu_pd(X + i + 2))));
    acc0 = _mm_add_pd(acc0, _mm_mul_pd(g0, g0));
    acc1 = _mm_add_pd(acc1, _mm_mul_pd(g1, g1));
    _mm_storeu_pd(Yt + i, _mm_sub_pd(y0, _mm_mul_pd(l, g0)));
    _mm_storeu_pd(Yt + i + 2, _mm_sub_pd(y1, _mm_mul_pd(l, g1)));
  }
  _mm_storeu_pd(acc, acc0);
  _mm_storeu_pd(acc + 2, acc1);
#endif
  auto one = [&](std::size_t j, int a) {
    const double g = (WithG ? G[j] : 0.0) + eta * (Y[j] - X[j]);
    acc[a] += g * g;
    Yt[j] = Y[j] - lr * g;
  };
  fourLanes(i, len, one);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

double plainStepRows(const double* Y, const double* X, const double* G, double eta, double lr, double* Yt,
                     std::size_t len) {
  return G ? plainStepRowsT<true>(Y, X, G, eta, lr, Yt, len) : plainStepRowsT<false>(Y, X, G, eta, lr, Yt, len);
}

// One matrix of the pool (current, best, trial) with what the flow knows about it.
struct Iterate {
  std::vector<double> data;
  std::vector<double> S, C;  // YᵀY, YᵀX0 (C only with projectFullGradient)
  double f2 = 0;             // ‖Y − X0‖²
  double defect = 0, energy = 0;
};

class Flow {
 public:
  Flow(std::vector<double>& Y0, std::vector<double>& X0in, std::size_t p, std::size_t k,
       const ExplicitFlowOptions& o, Stepper& stepper, Monitor& monitor, ExplicitFlowResult& out)
      : p_(p), k_(k), n_(p * k), o_(o), stepper_(stepper), monitor_(monitor), out_(out),
        team_(teamSize(p, k, o.threads)) {
    blockRows_ = k <= 48 ? std::clamp<std::size_t>(262144 / (k * k * 2), 32, 1024) : p;
    if (team_.size() == 1 && k > 48) blockRows_ = p;
    fused_ = stepper.plain();
    // The single-pass iteration needs C = YᵀX0 of every iterate (ỸᵀỸ from k×k algebra, below).
    needC_ = o.projectFullGradient || fused_;
    prepare(Y0, X0in);
    objective_ = [this](const double* x, double* G) { return energyAndGradient(x, G); };
  }

  void run();

  // Wide matrices are compute-bound: let BLAS thread whole-matrix calls instead.
  static int teamSize(std::size_t p, std::size_t k, int requested) {
    return k > 48 ? 1 : teamThreads(requested, static_cast<double>(p) * static_cast<double>(k));
  }

 private:
  void prepare(std::vector<double>& Y0, std::vector<double>& X0in);
  void gramOf(const double* x, Iterate& it);
  void gramOf(Iterate& it) { gramOf(it.data.data(), it); }
  void reducePartials(Iterate& it) const;
  // The orthogonality part of the energy at S = YᵀY: returns its weighted value ¼c·m(Y), stores the
  // unweighted measure m (defect, or O for the Energy weighting) in `measure` and, when M is not null,
  // M (k×k) with ∇_Y(¼c·m) = Y·M.
  double orthogonalityTerm(const double* S, double& measure, double* M);
  double energyOf(Iterate& it) {
    double e = 0.5 * eta_ * it.f2 + orthogonalityTerm(it.S.data(), it.defect, nullptr);
    it.energy = std::isfinite(e) ? e : std::numeric_limits<double>::infinity();
    return it.energy;
  }
  void gradientMap(const double* S, const double* C);
  double certificateAt(const Iterate& Y);
  double stepPass(const Iterate& Y);
  void proposedGram(const Iterate& Y);
  double fusedPass(bool product, bool store, double alpha, const Iterate& Y, const Iterate& best, Iterate& T);
  double energyAndGradient(const double* x, double* G);
  // Product: R = Ỹ·K; Retracted: R formed in R_; Proposed: R = Ỹ; Unformed: the retraction needs Ỹ
  // itself (off the Gram path) and Ỹ has not been formed (the single-pass iteration never forms it).
  enum class Source { Product, Retracted, Proposed, Unformed };
  Source retractionMap(bool materialized = true);
  void trialPass(Source src, double alpha, const Iterate& best, Iterate& T);
  // A p×k work buffer (Ỹ or R) sized on first use.
  void needWork(std::vector<double>& v) {
    if (v.size() != n_) v.resize(n_);
  }
  int freeSlot() const {
    for (int i = 0; i < 3; ++i)
      if (i != cur_ && i != best_) return i;
    return -1;
  }

  std::size_t p_, k_, n_;
  const ExplicitFlowOptions& o_;
  Stepper& stepper_;
  Monitor& monitor_;
  ExplicitFlowResult& out_;
  RowTeam team_;
  std::size_t blockRows_ = 256;
  bool needC_ = false;
  bool fused_ = false;               // the plain step: the single-pass iteration (fusedPass)
  bool storeR_ = false;              // keep R = Ỹ·K in the first trial of an iteration (backtracking expected)

  std::vector<double> X0_, Yt_, R_;  // target, proposed point Ỹ, retracted R_w(Ỹ) (general path only)
  Iterate pool_[3];
  int cur_ = 0, best_ = 1;
  double eta_ = 0, c_ = 0, dref_ = 0, scale_ = 1, x0Norm2_ = 0, lr_ = 0;
  // The stepped gradient is stepScale_·g: ‖X0‖² for the Energy weighting, whose E is a relative,
  // scale-free energy (∇E ~ 1/‖X0‖²: a plain step lr·∇E would not move Y at any usable lr), so that
  // lr is a step in units of the relative energy (lr·2(1 − w) is the fidelity's contraction per step).
  double stepScale_ = 1;

  // k×k scratch, sized once. X0g_ = X0ᵀX0 (constant); B_ with Ỹ = Y·B + γ·X0 for the plain step.
  std::vector<double> A_, K_, St_, M_, T1_, T2_, Sh_, Mo_, X0g_, B_;
  std::vector<double> scratch_;  // per thread: Ỹ and G of one row block (the fused pass)
  SymmetricEig currentEig_;  // of YᵀY (the projection at the polar factor)
  bool aZero_ = true;
  int accepted_ = 0;
  // Per-thread partial sums: k×k Gram and cross products and two scalars.
  std::vector<double> partS_, partC_, partF_, partG_;
  Workspace ws_;  // for the retractions (gramPolarMatrix, nsa::retract)
  Objective objective_;  // E and its flow gradient at any point (closure optimizers)
  Iterate probe_;        // S, C, f2 of the objective's last point
};

void Flow::gramOf(const double* x, Iterate& it) {
  auto f = [&](int t, std::size_t b, std::size_t e) {
    double* S = partS_.data() + t * k_ * k_;
    double* C = partC_.data() + t * k_ * k_;
    double f2 = 0;
    bool first = true;
    for (std::size_t r = b; r < e; r += blockRows_) {
      const std::size_t m = std::min(blockRows_, e - r);
      const double* Yb = x + r * k_;
      const double* Xb = X0_.data() + r * k_;
      gramAccumulate(Yb, m, k_, S, first);
      if (needC_) gemm(true, false, k_, k_, m, 1.0, Yb, Xb, first ? 0.0 : 1.0, C);
      f2 += distanceRows(Yb, Xb, m * k_);
      first = false;
    }
    partF_[t] = f2;
  };
  std::fill(partS_.begin(), partS_.end(), 0.0);
  std::fill(partC_.begin(), partC_.end(), 0.0);
  std::fill(partF_.begin(), partF_.end(), 0.0);
  runRows(team_, p_, blockRows_, f);
  reducePartials(it);
}

// Sums the per-thread partial YᵀY, YᵀX0 and ‖Y − X0‖² of the last row pass into `it` (sized once,
// so this does not allocate after the first iteration).
void Flow::reducePartials(Iterate& it) const {
  const std::size_t kk = k_ * k_;
  it.S.assign(kk, 0.0);
  it.C.assign(needC_ ? kk : 0, 0.0);
  it.f2 = 0;
  for (int t = 0; t < team_.size(); ++t) {
    for (std::size_t i = 0; i < kk; ++i) it.S[i] += partS_[t * kk + i];
    if (needC_)
      for (std::size_t i = 0; i < kk; ++i) it.C[i] += partC_[t * kk + i];
    it.f2 += partF_[t];
  }
  symmetrizeFromUpper(it.S.data(), k_);
}

void Flow::prepare(std::vector<double>& Y0, std::vector<double>& X0in) {
  const std::size_t kk = k_ * k_;
  A_.assign(kk, 0.0);
  K_.assign(kk, 0.0);
  St_.assign(kk, 0.0);
  M_.assign(kk, 0.0);
  T1_.assign(kk, 0.0);
  T2_.assign(kk, 0.0);
  Sh_.assign(kk, 0.0);
  Mo_.assign(kk, 0.0);
  X0g_.assign(kk, 0.0);
  B_.assign(kk, 0.0);
  if (fused_) scratch_.assign(team_.size() * 2 * std::min(blockRows_, p_) * k_, 0.0);
  currentEig_.resize(k_);
  partS_.assign(team_.size() * kk, 0.0);
  partC_.assign(team_.size() * kk, 0.0);
  partF_.assign(team_.size(), 0.0);
  partG_.assign(team_.size(), 0.0);

  // Target: given (projected by N), or N(Y0) with a jittered start (the reference's default). The
  // elementwise passes over the p×k inputs run on the team, each thread on its rows, its sums in index
  // order and added in thread order (one thread: the serial sums, bit for bit).
  std::vector<double>& Y = pool_[0].data;
  Y = std::move(Y0);
  const Nonnegativity nn = o_.nonnegativity;
  const double work = static_cast<double>(n_);
  auto partialSum = [&] {
    double s = 0;
    for (int t = 0; t < team_.size(); ++t) s += partF_[t];
    return s;
  };
  // ‖x‖² of a p×k matrix on the team
  auto squaredNormOnTeam = [&](const double* x) {
    std::fill(partF_.begin(), partF_.end(), 0.0);
    auto f = [&](int t, std::size_t b, std::size_t e) { partF_[t] = squaredNorm(x + b * k_, (e - b) * k_); };
    runRowsIfWorth(team_, p_, blockRows_, work, f);
    return partialSum();
  };
  double x0Squared = 0;  // ‖N(X0)‖², for the rescale
  if (X0in.empty()) {
    X0_.resize(n_);
    applyNonnegativity(Y.data(), n_, nn, X0_.data());
    const double sd = 0.05 * std::sqrt(squaredNorm(Y.data(), n_) / static_cast<double>(n_));
    Random rng(o_.seed);
    for (std::size_t i = 0; i < n_; ++i) Y[i] += sd * rng.normal();
    out_.jittered = true;
    if (o_.rescale) x0Squared = squaredNormOnTeam(X0_.data());
  } else {
    X0_ = std::move(X0in);
    // N(X0) in place, and its ‖·‖² while the rows are in cache
    const bool norm = o_.rescale;
    std::fill(partF_.begin(), partF_.end(), 0.0);
    auto f = [&](int t, std::size_t b, std::size_t e) {
      double* x = X0_.data() + b * k_;
      const std::size_t len = (e - b) * k_;
      applyNonnegativity(x, len, nn, x);
      if (norm) partF_[t] = squaredNorm(x, len);
    };
    runRowsIfWorth(team_, p_, blockRows_, work, f);
    x0Squared = partialSum();
  }

  // Scale to unit RMS of the target (of Y when the target is 0), so the flow is scale invariant.
  if (o_.rescale) {
    double rms = std::sqrt(x0Squared / static_cast<double>(n_));
    if (!(rms > 0)) rms = std::sqrt(squaredNormOnTeam(Y.data()) / static_cast<double>(n_));
    scale_ = rms > 0 ? rms + 1e-12 : 1.0;
  }
  // X0 /= s and Y /= s (with rescale), ‖X0‖² of the scaled target and the start's best = N(Y): one
  // pass over the rows, each block once in cache.
  pool_[1].data.resize(n_);
  {
    const bool rescale = o_.rescale;
    const double s = scale_;
    double* X = X0_.data();
    double* Yd = Y.data();
    double* Nb = pool_[1].data.data();
    std::fill(partF_.begin(), partF_.end(), 0.0);
    auto f = [&](int t, std::size_t b, std::size_t e) {
      double x2 = 0;  // one running sum over the thread's rows, in index order (squaredNorm's order)
      for (std::size_t r = b; r < e; r += blockRows_) {
        const std::size_t off = r * k_, len = std::min(blockRows_, e - r) * k_;
        if (rescale)
          for (std::size_t i = off; i < off + len; ++i) {
            X[i] /= s;
            Yd[i] /= s;
          }
        for (std::size_t i = off; i < off + len; ++i) x2 += X[i] * X[i];
        applyNonnegativity(Yd + off, len, nn, Nb + off);
      }
      partF_[t] = x2;
    };
    runRowsIfWorth(team_, p_, blockRows_, work, f);
    x0Norm2_ = partialSum();
  }
  if (fused_) {
    // X0ᵀX0 (constant): one DSYRK with one thread (as before the team), else one per thread's rows on
    // single-threaded OpenBLAS (its DSYRK of a 100000×20 block does not scale), added in thread order.
    if (team_.size() == 1) {
      gram(X0_.data(), p_, k_, X0g_.data());
    } else {
      std::fill(partS_.begin(), partS_.end(), 0.0);
      auto f = [&](int t, std::size_t b, std::size_t e) { gram(X0_.data() + b * k_, e - b, k_, partS_.data() + t * kk); };
      runBlasRowsIfWorth(team_, p_, blockRows_, work * static_cast<double>(k_), f);
      std::fill(X0g_.begin(), X0g_.end(), 0.0);
      for (int t = 0; t < team_.size(); ++t)
        for (std::size_t i = 0; i < kk; ++i) X0g_[i] += partS_[t * kk + i];
    }
  }

  // The start: current = Y (as the reference, the first gradient is taken there), best = N(Y).
  gramOf(pool_[0]);
  gramOf(pool_[1]);

  const double w = o_.w;
  if (o_.weighting == FlowWeighting::Reference) {
    const double g0 = std::max(0.5 * pool_[0].f2 / static_cast<double>(n_), 1e-8);
    const double d0 = std::max(defectFromGram(pool_[0].S.data(), k_), 1e-8);
    eta_ = (1.0 - w) / (g0 * static_cast<double>(n_));
    c_ = 4.0 * w / d0;
    dref_ = d0;
  } else if (o_.weighting == FlowWeighting::Energy) {
    // ½η‖Y − X0‖² = (1 − w)‖Y − X0‖²/‖X0‖² and ¼c·O = w·O: nothing measured from the data.
    eta_ = 2.0 * (1.0 - w) / std::max(x0Norm2_, 1e-300);
    c_ = 4.0 * w;
    dref_ = 0;
    stepScale_ = x0Norm2_ > 0 ? x0Norm2_ : 1.0;
  } else {
    dref_ = o_.orthogonalityReference > 0
                ? o_.orthogonalityReference
                : std::max({defect(X0_.data(), p_, k_, ws_), defectFromGram(pool_[1].S.data(), k_), 1e-8});
    eta_ = 2.0 * (1.0 - w) / std::max(x0Norm2_, 1e-300);
    c_ = 4.0 * w / dref_;
  }
  energyOf(pool_[0]);
  energyOf(pool_[1]);
  cur_ = 0;
  best_ = 1;
  // Ỹ and R (Yt_, R_) are allocated when first needed (needWork): the single-pass iteration forms
  // neither, and a fresh 2·p·k doubles cost page faults in every call.
  pool_[2].data.resize(n_);
  pool_[2].S.assign(kk, 0.0);
  pool_[2].C.assign(needC_ ? kk : 0, 0.0);
}

double Flow::orthogonalityTerm(const double* S, double& measure, double* M) {
  if (o_.weighting == FlowWeighting::Energy) {
    measure = orthogonalityFunctional(o_.orthogonality, S, k_, M ? Mo_.data() : nullptr);
    if (M)
      for (std::size_t i = 0; i < k_ * k_; ++i) M[i] = 0.25 * c_ * Mo_[i];
    return c_ > 0 ? 0.25 * c_ * measure : 0.0;
  }
  measure = defectFromGram(S, k_);
  if (M) {
    if (c_ > 0) defectGradientFromGram(S, k_, c_, M);
    else std::fill(M, M + k_ * k_, 0.0);
  }
  return c_ > 0 && trace(S, k_) > 0 ? 0.25 * c_ * measure : 0.0;
}

// A_ such that the flow's gradient is g = η(Y − X0) + Y·A: the orthogonality gradient Z = Y·M
// (with projectFullGradient, Z = Y·M + η(Y − X0)) projected on the tangent space of the Stiefel
// manifold at Q, the polar factor of Y:
//   P(Z) = Z − Q·sym(QᵀZ),  Q = Y·S^{-1/2},  S = YᵀY   ⇒   P(Z) = Z − Y·S^{-1/2}·sym(S^{-1/2}·YᵀZ),
// with YᵀZ = S·M (+ η(S − C), C = YᵀX0), so P(Z) stays Z minus a product with Y (k×k work only).
// Why at Q and not at Y (SPEC §6's Z − Y·sym(YᵀZ)): for any Q with ‖Q‖₂ ≤ 1,
//   ⟨Z, Z − Q·sym(QᵀZ)⟩ = ‖Z‖² − ‖sym(QᵀZ)‖² ≥ ‖Z‖² − ‖QᵀZ‖² ≥ 0,
// so the projected direction is never an ascent direction of the energy it projects; with QᵀQ = I
// it is the orthogonal projection (⟨Z, P(Z)⟩ = ‖P(Z)‖²). The reference's form uses Y in place of Q and
// is that projection only when YᵀY = I: with YᵀY = s·I it maps a normal component Y·Σ to (1 − s)·Y·Σ,
// so at s ≫ 1 (orthonormal PCA loadings in the RMS units of `rescale`: s = p) it inflates the gradient
// s-fold and points it uphill — the flow then backtracks to its start and stalls. The "scale-correct"
// form Z − Y·S⁻¹·sym(YᵀZ) is neither self-adjoint nor idempotent unless S ∝ I, so ⟨Z, P(Z)⟩ can be
// negative; the polar factor is the one point of the manifold the retraction moves Y toward, so its
// tangent space is the one the step should respect. For a functional of the Gram that is invariant
// under Y → Y·R (R orthogonal; 'gram'), S^{1/2}M is symmetric and P(Y·M) = 0: the step then carries
// only the fidelity and the retraction does all of the orthogonalizing.
void Flow::gradientMap(const double* S, const double* C) {
  const std::size_t k = k_;
  double measure = 0;
  orthogonalityTerm(S, measure, M_.data());
  const bool project = c_ > 0 || o_.projectFullGradient;
  // 'gram' (Energy weighting) is invariant under Y → Y·R, so P(Y·M) = 0 exactly: A = 0 outright, not
  // the rounding noise (~1e-17 of M) that the products below leave; the plain step then skips Y·A
  // (a fifth of the iteration at k = 20). S^{1/2}M commutes with S: Y·M − Y·S^{-1/2}·S^{1/2}M = Y·(I − Π)M
  // with Π the projector on S's range (eigenvalues above the cut of inverseSqrtOfGram), and Y·(I − Π)
  // is zero up to that cut. A Gram that is not finite keeps the general path (its A is not finite).
  if (project && !o_.projectFullGradient && o_.weighting == FlowWeighting::Energy &&
      o_.orthogonality == OrthogonalityFunctional::Gram && allFinite(S, k * k)) {
    std::fill(A_.begin(), A_.end(), 0.0);
    aZero_ = true;
    return;
  }
  std::fill(T1_.begin(), T1_.end(), 0.0);  // becomes S^{-1/2}·sym(S^{-1/2}·YᵀZ)
  if (project && inverseSqrtOfGram(S, k, currentEig_, Sh_.data())) {
    // T2 = YᵀZ
    gemm(false, false, k, k, k, 1.0, S, M_.data(), 0.0, T2_.data());
    if (o_.projectFullGradient)
      for (std::size_t i = 0; i < k * k; ++i) T2_[i] += eta_ * (S[i] - C[i]);
    // T1 = S^{-1/2}·YᵀZ, symmetrized into T2, then T1 = S^{-1/2}·sym(·).
    gemm(false, false, k, k, k, 1.0, Sh_.data(), T2_.data(), 0.0, T1_.data());
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = 0; j < k; ++j) T2_[i * k + j] = 0.5 * (T1_[i * k + j] + T1_[j * k + i]);
    gemm(false, false, k, k, k, 1.0, Sh_.data(), T2_.data(), 0.0, T1_.data());
  }
  aZero_ = true;
  for (std::size_t i = 0; i < k * k; ++i) {
    A_[i] = M_[i] - T1_[i];
    if (A_[i] != 0.0) aZero_ = false;
  }
}

// Pass 1: g = stepScale·(η(Y − X0) + Y·A); Ỹ = step(Y, g) into Yt_, S̃ = ỸᵀỸ into St_. Returns ‖g‖².
// Elementwise steppers run inside the pass. Whole-matrix ones get g in R_ (free until the
// retraction) and Ỹ ← Y copied in the same pass, then one call, then a Gram pass over Ỹ.
double Flow::stepPass(const Iterate& Y) {
  const int T = team_.size();
  const bool fused = stepper_.elementwise();
  const double lr = lr_;
  needWork(Yt_);
  if (!fused) needWork(R_);
  double* gradOut = fused ? Yt_.data() : R_.data();
  auto f = [&](int t, std::size_t b, std::size_t e) {
    double* S = partS_.data() + t * k_ * k_;
    double g2 = 0;
    bool first = true;
    for (std::size_t r = b; r < e; r += blockRows_) {
      const std::size_t m = std::min(blockRows_, e - r), len = m * k_, off = r * k_;
      const double* Yb = Y.data.data() + off;
      const double* Xb = X0_.data() + off;
      double* G = gradOut + off;
      if (aZero_) std::fill(G, G + len, 0.0);
      else gemm(false, false, m, k_, k_, stepScale_, Yb, A_.data(), 0.0, G);
      const double eta = stepScale_ * eta_;
      for (std::size_t i = 0; i < len; ++i) {
        const double g = G[i] + eta * (Yb[i] - Xb[i]);
        g2 += g * g;
        G[i] = g;
      }
      if (fused) {
        stepper_.step(Y.data.data(), Yt_.data(), off, off + len, lr);
        gramAccumulate(G, m, k_, S, first);
      } else {
        std::memcpy(Yt_.data() + off, Yb, len * sizeof(double));
      }
      first = false;
    }
    partF_[t] = g2;
  };
  std::fill(partS_.begin(), partS_.end(), 0.0);
  runRows(team_, p_, blockRows_, f);
  double g2 = 0;
  for (int t = 0; t < T; ++t) g2 += partF_[t];
  if (!fused) {
    if (!std::isfinite(g2)) return g2;
    stepper_.stepMatrix(Yt_.data(), R_.data(), lr, objective_);
    std::fill(partS_.begin(), partS_.end(), 0.0);
    auto gramPass = [&](int t, std::size_t b, std::size_t e) {
      double* S = partS_.data() + t * k_ * k_;
      for (std::size_t r = b; r < e; r += blockRows_)
        gramAccumulate(Yt_.data() + r * k_, std::min(blockRows_, e - r), k_, S, r == b);
    };
    runRows(team_, p_, blockRows_, gramPass);
  }
  std::fill(St_.begin(), St_.end(), 0.0);
  for (int t = 0; t < T; ++t)
    for (std::size_t i = 0; i < k_ * k_; ++i) St_[i] += partS_[t * k_ * k_ + i];
  symmetrizeFromUpper(St_.data(), k_);
  return g2;
}

// S̃ = ỸᵀỸ of the plain step's proposal without forming Ỹ: Ỹ = Y − lr·s·(η(Y − X0) + Y·A) = Y·B + γ·X0
// with B = I − lr·s·(A + ηI), γ = lr·s·η, so ỸᵀỸ = BᵀSB + γ(BᵀC + CᵀB) + γ²·X0ᵀX0 from the iterate's
// S = YᵀY and C = YᵀX0 (k×k work). It differs from the Gram of the formed Ỹ by rounding only (the
// terms add without cancellation unless the step overshoots the target, lr·s·η > 1).
void Flow::proposedGram(const Iterate& Y) {
  const std::size_t k = k_, kk = k * k;
  const double a = lr_ * stepScale_;
  const double gamma = a * eta_;
  for (std::size_t i = 0; i < kk; ++i) B_[i] = -a * A_[i];
  for (std::size_t i = 0; i < k; ++i) B_[i * k + i] += 1.0 - gamma;
  gemm(false, false, k, k, k, 1.0, Y.S.data(), B_.data(), 0.0, T1_.data());   // S·B
  gemm(true, false, k, k, k, 1.0, B_.data(), T1_.data(), 0.0, St_.data());    // Bᵀ·S·B
  gemm(true, false, k, k, k, 1.0, B_.data(), Y.C.data(), 0.0, T2_.data());    // Bᵀ·C
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j)
      St_[i * k + j] += gamma * (T2_[i * k + j] + T2_[j * k + i]) + gamma * gamma * X0g_[i * k + j];
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < i; ++j) St_[i * k + j] = St_[j * k + i] = 0.5 * (St_[i * k + j] + St_[j * k + i]);
}

// The single-pass iteration of the plain step: per row block (in cache), g = s·(η(Y − X0) + Y·A) and
// Ỹ = Y − lr·g (the same arithmetic as stepPass), R = Ỹ·K (`product`; else R = Ỹ), the trial
// T = N(best + α(R − best)), ‖T − X0‖², TᵀT and TᵀX0. K comes from S̃ = proposedGram, so Ỹ and R never
// leave the cache: the pass reads Y and X0 (and best when α < 1) and writes T, where stepPass +
// trialPass stream Y, X0, Ỹ (twice), R, T and X0 again. `store` keeps R in R_ for backtracking trials.
// Returns ‖g‖² (that of the iteration when α = 1).
double Flow::fusedPass(bool product, bool store, double alpha, const Iterate& Y, const Iterate& best, Iterate& Tr) {
  const double lr = lr_;
  const double eta = stepScale_ * eta_;
  const bool hard = o_.nonnegativity == Nonnegativity::Hard;
  const std::size_t stride = 2 * std::min(blockRows_, p_) * k_;
  if (store) needWork(R_);
  auto f = [&](int t, std::size_t b, std::size_t e) {
    double* S = partS_.data() + t * k_ * k_;
    double* C = partC_.data() + t * k_ * k_;
    double* Yt = scratch_.data() + t * stride;
    double* G = Yt + stride / 2;
    double f2 = 0, g2 = 0;
    bool first = true;
    for (std::size_t r = b; r < e; r += blockRows_) {
      const std::size_t m = std::min(blockRows_, e - r), len = m * k_, off = r * k_;
      const double* Yb = Y.data.data() + off;
      const double* Xb = X0_.data() + off;
      const double* Bb = best.data.data() + off;
      double* Tb = Tr.data.data() + off;
      if (!aZero_) gemm(false, false, m, k_, k_, stepScale_, Yb, A_.data(), 0.0, G);
      g2 += plainStepRows(Yb, Xb, aZero_ ? nullptr : G, eta, lr, Yt, len);
      // Ask for the next block's Y and X0 (into L2) in four parts, one before each DGEMM and one
      // before the clamp, so that they arrive while this block computes in the cache.
      const std::size_t nextLen = r + blockRows_ < e ? std::min(blockRows_, e - r - blockRows_) * k_ : 0;
      const std::size_t part = (nextLen / 4 + 7) / 8 * 8;
      std::size_t asked = 0;
      auto ask = [&] {
        const std::size_t n = std::min(part, nextLen - asked);
        prefetchRows(Yb + len + asked, n);
        prefetchRows(Xb + len + asked, n);
        asked += n;
      };
      ask();
      const double* Rb = Yt;
      if (product) {
        double* out = store ? R_.data() + off : G;
        gemm(false, false, m, k_, k_, 1.0, Yt, K_.data(), 0.0, out);
        Rb = out;
      }
      // T is formed in the cache (G), its Gram and TᵀX0 taken there, then streamed out past the cache
      // (no read of T's old contents, which a plain store would fetch first).
      ask();
      f2 += trialRows(Rb, Bb, Xb, G, len, alpha, hard);
      ask();
      gramAccumulate(G, m, k_, S, first);
      ask();
      gemm(true, false, k_, k_, m, 1.0, G, Xb, first ? 0.0 : 1.0, C);
      streamRows(G, Tb, len);
      first = false;
    }
    streamFence();
    partF_[t] = f2;
    partG_[t] = g2;
  };
  std::fill(partS_.begin(), partS_.end(), 0.0);
  std::fill(partC_.begin(), partC_.end(), 0.0);
  std::fill(partG_.begin(), partG_.end(), 0.0);
  runRows(team_, p_, blockRows_, f);
  reducePartials(Tr);
  energyOf(Tr);
  double g2 = 0;
  for (int t = 0; t < team_.size(); ++t) g2 += partG_[t];
  return g2;
}

// The objective of closure optimizers (L-BFGS): E(x) = ½η‖x − X0‖² + ¼c·m(x) and the flow's
// gradient at x, η(x − X0) + x·A(x) (the projected one). Two passes over x.
double Flow::energyAndGradient(const double* x, double* G) {
  gramOf(x, probe_);
  const double energy = energyOf(probe_);
  gradientMap(probe_.S.data(), probe_.C.data());
  auto f = [&](int, std::size_t b, std::size_t e) {
    for (std::size_t r = b; r < e; r += blockRows_) {
      const std::size_t m = std::min(blockRows_, e - r), len = m * k_, off = r * k_;
      double* Gb = G + off;
      if (aZero_) std::fill(Gb, Gb + len, 0.0);
      else gemm(false, false, m, k_, k_, 1.0, x + off, A_.data(), 0.0, Gb);
      for (std::size_t i = 0; i < len; ++i) Gb[i] += eta_ * (x[off + i] - X0_[off + i]);
    }
  };
  runRows(team_, p_, blockRows_, f);
  return energy;
}

// Decides how R_w(Ỹ) is formed. Gram path: the polar retraction with the norm restored is Ỹ·K for
// the k×k K = gramPolarMatrix(ỸᵀỸ), so the whole retraction is one p×k·k×k product. Anything else
// (ill-conditioned Gram, polarMethod 'svd', other types) goes through nsa::retract.
Flow::Source Flow::retractionMap(bool materialized) {
  const RetractionType type = o_.retraction.type;
  const double tr = trace(St_.data(), k_);
  const bool finite = allFinite(St_.data(), k_ * k_);
  // The reference's early returns (w = 0, type none, tiny or non-finite norm): R = Ỹ.
  if (type == RetractionType::None || o_.w == 0.0 || !finite || !(std::sqrt(tr) >= kRetractionNormFloor))
    return Source::Proposed;
  RetractionOptions ro = o_.retraction;
  ro.w = o_.w;
  if (triesGramPath(ro, p_, k_) && gramPolarMatrix(St_.data(), k_, ro, K_.data(), ws_) == GramOutcome::Done)
    return Source::Product;
  if (!materialized) return Source::Unformed;
  ++out_.retractionFallbacks;
  if (isPolar(type) && ro.polarMethod == PolarMethod::Auto) ro.polarMethod = PolarMethod::Svd;  // Gram refused it
  needWork(R_);
  retract(Yt_.data(), p_, k_, ro, R_.data(), ws_);
  return Source::Retracted;
}

// Pass 2: T = N(best + α(R − best)) with R = R_w(Ỹ); fills T's S, C, f2 and energy.
void Flow::trialPass(Source src, double alpha, const Iterate& best, Iterate& Tr) {
  if (src == Source::Product) needWork(R_);
  auto f = [&](int t, std::size_t b, std::size_t e) {
    double* S = partS_.data() + t * k_ * k_;
    double* C = partC_.data() + t * k_ * k_;
    double f2 = 0;
    bool first = true;
    for (std::size_t r = b; r < e; r += blockRows_) {
      const std::size_t m = std::min(blockRows_, e - r), len = m * k_, off = r * k_;
      double* Tb = Tr.data.data() + off;
      const double* Xb = X0_.data() + off;
      const double* Bb = best.data.data() + off;
      const double* Rb = (src == Source::Proposed ? Yt_.data() : R_.data()) + off;
      if (src == Source::Product)  // R = Ỹ·K, kept for the backtracking trials
        gemm(false, false, m, k_, k_, 1.0, Yt_.data() + off, K_.data(), 0.0, R_.data() + off);
      f2 += trialRows(Rb, Bb, Xb, Tb, len, alpha, o_.nonnegativity == Nonnegativity::Hard);
      gramAccumulate(Tb, m, k_, S, first);
      if (needC_) gemm(true, false, k_, k_, m, 1.0, Tb, Xb, first ? 0.0 : 1.0, C);
      first = false;
    }
    partF_[t] = f2;
  };
  std::fill(partS_.begin(), partS_.end(), 0.0);
  std::fill(partC_.begin(), partC_.end(), 0.0);
  runRows(team_, p_, blockRows_, f);
  reducePartials(Tr);
  energyOf(Tr);
}

// The scale-free gradient mapping (solver.hpp) of the energy at Y with its full (unprojected) gradient
// ∇E = η(Y − X0) + Y·M, non-negativity as the constraint when it is hard. Uses Ỹ's buffer (free once
// the loop has ended) for ∇E: one pass over Y.
double Flow::certificateAt(const Iterate& Y) {
  double measure = 0;
  orthogonalityTerm(Y.S.data(), measure, M_.data());
  // ∇E in a free slot of the pool (Y is the best iterate; the loop has ended), ‖Y‖² in the same
  // pass, then the gradient mapping's sum (solver.hpp gradientMapping, on the team: each thread sums
  // its rows in index order, the sums added in thread order, so one thread gives its sums exactly).
  double* G = pool_[freeSlot()].data.data();
  const double* Yd = Y.data.data();
  const bool hard = o_.nonnegativity == Nonnegativity::Hard;
  const int T = team_.size();
  std::fill(partF_.begin(), partF_.end(), 0.0);
  auto f = [&](int t, std::size_t b, std::size_t e) {
    double yy = 0;
    for (std::size_t r = b; r < e; r += blockRows_) {
      const std::size_t m = std::min(blockRows_, e - r), len = m * k_, off = r * k_;
      gemm(false, false, m, k_, k_, 1.0, Yd + off, M_.data(), 0.0, G + off);
      for (std::size_t i = off; i < off + len; ++i) {
        G[i] += eta_ * (Yd[i] - X0_[i]);
        yy += Yd[i] * Yd[i];
      }
    }
    partF_[t] = yy;
  };
  runRows(team_, p_, blockRows_, f);
  double yy = 0;
  for (int t = 0; t < T; ++t) yy += partF_[t];
  if (!(yy > 0)) return gradientMappingFromSums(0, yy);
  auto share = [&](int t, std::size_t b, std::size_t e) {
    double d2 = 0;
    for (std::size_t i = b * k_; i < e * k_; ++i) d2 += gradientMappingShare(Yd[i], G[i], yy, hard);
    partF_[t] = d2;
  };
  std::fill(partF_.begin(), partF_.end(), 0.0);
  runRows(team_, p_, blockRows_, share);
  double d2 = 0;
  for (int t = 0; t < T; ++t) d2 += partF_[t];
  return gradientMappingFromSums(d2, yy);
}

void Flow::run() {
  const auto t0 = std::chrono::steady_clock::now();
  ExplicitFlowTraces& tr = out_.traces;
  const std::size_t records = static_cast<std::size_t>(o_.maxIterations / std::max(o_.recordEvery, 1)) + 2;
  for (auto* v : {&tr.iteration, &tr.timeMs, &tr.fidelity, &tr.orthogonality, &tr.total, &tr.learningRate,
                  &tr.backtracks})
    v->reserve(records);
  std::vector<double> window(static_cast<std::size_t>(std::max(o_.windowSize, 1)), 0.0);
  std::size_t windowCount = 0;

  lr_ = o_.learningRate;
  out_.startEnergy = pool_[best_].energy;
  out_.bestIteration = 0;
  double initGradNorm = 0;
  out_.stopReason = StopReason::MaxIterations;
  bool ruleFired = false;
  int completed = 0;
  {  // The start is trace entry 0, as in every solver of the contract (lib/solver.ts).
    const Iterate& s = pool_[best_];
    tr.iteration.push_back(0);
    tr.timeMs.push_back(0);
    tr.fidelity.push_back(0.5 * eta_ * s.f2);
    tr.orthogonality.push_back(s.defect);
    tr.total.push_back(s.energy);
    tr.learningRate.push_back(lr_);
    tr.backtracks.push_back(0);
  }
  for (int it = 1; it <= o_.maxIterations; ++it) {
    if (monitor_.cancelled()) throwAborted();
    Iterate& Y = pool_[cur_];
    gradientMap(Y.S.data(), Y.C.data());
    const int trial = freeSlot();
    Iterate& best = pool_[best_];
    Iterate& T = pool_[trial];
    // The plain step runs as one fused pass (fusedPass) unless its retraction needs Ỹ itself.
    Source src = Source::Unformed;
    bool single = false;
    double g2 = 0;
    if (fused_) {
      proposedGram(Y);
      src = retractionMap(false);
      single = src != Source::Unformed;
      if (single) g2 = fusedPass(src == Source::Product, storeR_ && src == Source::Product, 1.0, Y, best, T);
    }
    if (!single) g2 = stepPass(Y);
    if (!std::isfinite(g2)) {
      out_.stopReason = StopReason::NonFinite;
      break;
    }
    completed = it;
    const double gradNorm = std::sqrt(g2);
    if (it == 1) initGradNorm = gradNorm + 1e-8;

    if (!single) {
      src = retractionMap();
      trialPass(src, 1.0, best, T);
    }
    // Backtracking toward the best iterate: halve while the energy exceeds the best one. The single
    // pass re-forms R = Ỹ·K per trial unless it kept R (storeR_: the previous iteration backtracked).
    double alpha = 1.0;
    int count = 0;
    const bool keptR = single && storeR_ && src == Source::Product;
    const Source again = src == Source::Product ? Source::Retracted : src;
    while (T.energy > best.energy && count < o_.maxBacktracks) {
      alpha *= 0.5;
      if (single && !keptR) fusedPass(src == Source::Product, false, alpha, Y, best, T);
      else trialPass(again, alpha, best, T);
      ++count;
      if (T.energy < best.energy) break;
    }
    storeR_ = count > 0;
    const bool reverted = T.energy > best.energy;  // every halving failed: stay at the best iterate
    cur_ = reverted ? best_ : trial;
    if (count > 2) lr_ *= 0.95;
    else if (count == 0 && it % 5 == 0) lr_ *= 1.01;

    const Iterate& now = pool_[cur_];
    if (now.energy < pool_[best_].energy) {
      best_ = cur_;
      out_.bestIteration = it;
      ++accepted_;
    }
    const double fid = 0.5 * eta_ * now.f2;
    if (it % o_.recordEvery == 0) {
      tr.iteration.push_back(it);
      tr.timeMs.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      tr.fidelity.push_back(fid);
      tr.orthogonality.push_back(now.defect);
      tr.total.push_back(now.energy);
      tr.learningRate.push_back(lr_);
      tr.backtracks.push_back(count);
    }
    if (monitor_.wantsProgress()) {
      ProgressRecord rec;
      rec.iteration = it;
      rec.total = o_.maxIterations;
      rec.count = 5;
      rec.values[0] = fid;
      rec.values[1] = now.defect;
      rec.values[2] = now.energy;
      rec.values[3] = pool_[best_].energy;
      rec.values[4] = lr_;
      monitor_.progress(rec);
    }

    window[windowCount % window.size()] = now.energy;
    ++windowCount;
    // With the Energy weighting the projected gradient of a rotation-invariant O is 0 (gradientMap): the
    // retraction does the orthogonalizing, so a small flow gradient only says the fidelity is met and
    // is no reason to stop; the energy window decides there.
    if (o_.weighting != FlowWeighting::Energy && gradNorm / initGradNorm < o_.tolerance) {
      ruleFired = true;
      out_.convergence = "gradientNorm";
      break;
    }
    if (windowCount >= window.size()) {
      const auto [lo, hi] = std::minmax_element(window.begin(), window.end());
      double avg = 0;
      for (double e : window) avg += e;
      avg /= static_cast<double>(window.size());
      if ((*hi - *lo) / (std::abs(avg) + 1e-12) < o_.tolerance) {
        ruleFired = true;
        out_.convergence = "energyWindow";
        break;
      }
    }
  }
  out_.iterations = completed;
  out_.acceptedSteps = accepted_;
  out_.bestEnergy = pool_[best_].energy;
  // The flow's rules say the energy stopped moving; only the certificate says the point is stationary.
  out_.certificate = certificateAt(pool_[best_]);
  if (out_.stopReason != StopReason::NonFinite) {
    if (completed > 0 && accepted_ == 0) out_.stopReason = StopReason::Stalled;
    else if (ruleFired) out_.stopReason = out_.certificate <= o_.tolerance ? StopReason::GradMap : StopReason::Plateau;
  }
  out_.fidEta = eta_;
  out_.cOrth = c_;
  out_.orthogonalityReference = dref_;
  out_.scale = scale_;
  out_.finalLearningRate = lr_;
  out_.threads = team_.size();

  // Results in the caller's units, reusing the best and target buffers; free the rest first.
  const int keep = best_;
  for (int i = 0; i < 3; ++i)
    if (i != keep) std::vector<double>().swap(pool_[i].data);
  std::vector<double>().swap(Yt_);
  std::vector<double>().swap(R_);
  out_.Y = std::move(pool_[keep].data);
  out_.target = std::move(X0_);
  double* Yo = out_.Y.data();
  double* To = out_.target.data();
  const double s = scale_;
  // The sums of the result's diagnostics (ExplicitFlowSummary) in the same pass, while each block is
  // in cache: ‖Y − target‖², ‖target‖² and YᵀY in working units (before the scaling: the ratios are
  // scale-free and the unit-RMS values cannot overflow), Y's zeros and the finiteness of both in the
  // caller's units. Each thread sums its rows in index order (the Gram by row blocks); the threads'
  // parts are added in thread order.
  struct Part {
    double distance[4] = {0, 0, 0, 0};
    double target2 = 0;
    std::size_t zeros = 0;
    bool finite = true;
  };
  std::vector<Part> parts(static_cast<std::size_t>(team_.size()));
  const std::size_t kk = k_ * k_;
  std::fill(partS_.begin(), partS_.end(), 0.0);
  auto back = [&](int t, std::size_t b, std::size_t e) {
    Part& q = parts[static_cast<std::size_t>(t)];
    for (std::size_t r = b; r < e; r += blockRows_) {
      const std::size_t rows = std::min(blockRows_, e - r), off = r * k_, end = off + rows * k_;
      gramAccumulate(Yo + off, rows, k_, partS_.data() + static_cast<std::size_t>(t) * kk, r == b);
      squaredDistanceLanes(Yo + off, To + off, rows * k_, q.distance);
      q.target2 += laneSquaredNorm(To + off, rows * k_);
      std::size_t zeros = 0;
      bool finite = true;
      for (std::size_t i = off; i < end; ++i) {
        Yo[i] *= s;
        To[i] *= s;
        zeros += Yo[i] == 0.0;
        finite &= std::abs(Yo[i]) <= std::numeric_limits<double>::max() && std::abs(To[i]) <= std::numeric_limits<double>::max();
      }
      q.zeros += zeros;
      q.finite = q.finite && finite;
    }
  };
  runBlasRowsIfWorth(team_, p_, blockRows_, static_cast<double>(n_ * k_), back);
  ExplicitFlowSummary& sum = out_.summary;
  std::vector<double> S(kk, 0.0);
  sum = ExplicitFlowSummary{};
  for (const Part& q : parts) {
    sum.zeros += static_cast<double>(q.zeros);
    sum.distance2 += (q.distance[0] + q.distance[1]) + (q.distance[2] + q.distance[3]);
    sum.target2 += q.target2;
    sum.finite = sum.finite && q.finite;
  }
  for (int t = 0; t < team_.size(); ++t)
    for (std::size_t i = 0; i < kk; ++i) S[i] += partS_[static_cast<std::size_t>(t) * kk + i];
  symmetrizeFromUpper(S.data(), k_);
  // defect(Y) is 0 when ‖Y‖² ≤ kDefectSquaredNormFloor in the caller's units (ortho.cpp defect).
  double trace = 0;
  for (std::size_t i = 0; i < k_; ++i) trace += S[i * k_ + i];
  sum.defect = trace * s * s <= kDefectSquaredNormFloor ? 0.0 : defectOfGram(S.data(), k_, trace);
}

}  // namespace

std::unique_ptr<Stepper> makeStepper(const OptimizerSpec& spec, std::size_t p, std::size_t k, double initialLr) {
  if (spec.kind == OptimizerKind::Fast) return std::make_unique<PlainStep>();
  if (spec.kind == OptimizerKind::Lbfgs) return std::make_unique<LbfgsStep>(p * k);
  return std::make_unique<OptimizerStep>(makeOptimizer(spec, p, k, initialLr));
}

std::size_t explicitFlowWorkBuffers(const ExplicitFlowOptions& o) {
  // X0, Ỹ, R, current/best/trial; + the SVD's two scratch matrices off the Gram path.
  const bool gramOnly = o.retraction.type == RetractionType::None;
  return gramOnly ? 6 : 8;
}

void explicitFlow(std::vector<double> Y0, std::vector<double> X0, std::size_t p, std::size_t k,
                  const ExplicitFlowOptions& o, Stepper& stepper, Monitor& monitor, ExplicitFlowResult& out) {
  if (p == 0 || k == 0) throwRange("explicitFlow: Expected a non-empty Y0");
  if (Y0.size() != p * k) throwRange("explicitFlow: Expected Y0 of length p*k");
  if (!X0.empty() && X0.size() != p * k) throwRange("explicitFlow: Expected X0 of length p*k");
  if (!allFinite(Y0.data(), Y0.size())) throwRange("explicitFlow: Expected finite values in Y0");
  if (!allFinite(X0.data(), X0.size())) throwRange("explicitFlow: Expected finite values in X0");
  if (!(o.w >= 0 && o.w <= 1)) throwRange("explicitFlow: Expected w in [0, 1]");
  if (o.maxIterations < 0 || o.recordEvery < 1 || o.windowSize < 2 || !(o.learningRate > 0) ||
      !std::isfinite(o.learningRate) || !(o.tolerance >= 0) || o.maxBacktracks < 0)
    throwRange("explicitFlow: invalid iteration settings");
  // With a team of more than one thread and an elementwise step, every p×k product runs per row block
  // on the team, on one OpenBLAS thread each: OpenBLAS is held at one thread for the whole run
  // (thread_team.hpp BlasThreadCount), so that no OpenBLAS worker, spinning a while after a threaded
  // call, takes a core from the team. Whole-matrix optimizers keep OpenBLAS's threads for their own
  // BLAS calls on the whole p×k arrays.
  SingleThreadedBlas one(stepper.elementwise() && Flow::teamSize(p, k, o.threads) > 1);
  Flow flow(Y0, X0, p, k, o, stepper, monitor, out);
  flow.run();
}

}  // namespace nsa
