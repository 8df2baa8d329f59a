// Non-negative tensor factorizations on the tensor toolkit (SPEC.md §9, §10): Stratified-NTF by
// multiplicative updates (with the reference's optional total-variation term), and plain
// non-negative CP (NTF) by multiplicative updates or HALS.
//
// Every numerator and denominator is built from Gram/Hadamard products of the small factors and
// from MTTKRPs (mode-wise GEMM/GEMV contractions, tensor.hpp); nothing of size rank × d₂ × … × d_N is
// ever formed. The loss after an iteration comes almost for free from quantities the updates already
// computed: ‖A − B‖² = ‖A‖² − 2⟨A, B⟩ + ‖B‖², with ⟨A, B⟩ read off the last numerators and ‖B‖² from
// Gram matrices. (That form loses relative accuracy when the loss is below about 1e-7·‖A‖.)
//
// Factor layout is rank-major throughout: a factor of mode t is r × d_t, row a contiguous.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "monitor.hpp"
#include "solver.hpp"
#include "tensor.hpp"

namespace nsa {

// Losses recorded during a run (solver.hpp's LossTrace): loss[i] is the loss after iteration[i]
// iterations (0 = initial).

// Entry weights of a dense tensor (as nmf.hpp's EntryWeights with base 1): ω = 1 + κ, listed where
// ω ≠ 1, each entry with its multi-index and data value; the tensor must hold 0 where ω = 0. The
// weighted objective is ½Σω(t − model)²; every weighted MTTKRP is the plain one plus a sum over the
// list. Empty: the unweighted solve, exactly.
struct TensorEntryWeights {
  std::size_t order = 0;
  std::vector<int32_t> index;  // listed × order
  std::vector<double> kappa, data;
  bool active() const { return !kappa.empty(); }
  std::size_t size() const { return kappa.size(); }
};
TensorEntryWeights denseTensorEntryWeights(const double* T, const Shape& shape, const double* omega);

// The update rule of a solve: multiplicative updates, or block-coordinate descent by HALS (exact
// non-negative coordinate minimization, component row by component row). Stratified-NTF's HALS lives
// in ntf_stratified_hals.hpp.
enum class NtfSolver { MultiplicativeUpdates, Hals };

// ---- Stratified-NTF -------------------------------------------------------------------------------

struct StratifiedNtfProblem {
  std::vector<const double*> strata;  // A(s): C order, shape (nₛ, d_1, …, d_K)
  std::vector<std::size_t> samples;   // nₛ
  Shape dims;                         // d_1 … d_K, K ≥ 1
  // Entry weights of each stratum over its shape (nₛ, d_1, …, d_K): none, or one per stratum (an
  // inactive one: all weights 1). A(s) holds 0 where ω = 0. The objective is then ½Σₛ Σ ω(A(s) − B(s))²
  // (plus the TV term); every weighted numerator and denominator is the plain one plus a sum over
  // the listed entries, and loss and certificate are over the observed entries.
  std::vector<TensorEntryWeights> weights;
  bool weighted() const {
    for (const TensorEntryWeights& w : weights)
      if (w.active()) return true;
    return false;
  }
};

// HALS's update with weights (NtfOptions::weightedHals, StratifiedNtfOptions::weightedHals).
enum class WeightedHals { Exact, Surrogate };

struct StratifiedNtfOptions {
  std::vector<std::size_t> strataRank;  // qₛ, one per stratum
  std::size_t rank = 1;                 // r, topics
  int maxIterations = 100;
  NtfSolver solver = NtfSolver::MultiplicativeUpdates;
  int vScaling = 2;      // v sweeps per iteration (≥ 1)
  bool tv = false;       // total variation on h₁, h₂ (the reference's "tv" regularization)
  double tvReg = 0;
  double epsilon = 1e-9;  // floor of every numerator and denominator
  double tolerance = 0;   // stop when |Δloss| < tolerance·loss between two recorded losses
  int lossEvery = 1;      // record the loss every this many iterations (and after the last one)
  bool recordStages = false;  // keep the state after each stage of iteration 1 (for parity tests)
  // Stop ('gradMap') when the certificate of the state is at most this, checked before every
  // lossEvery-th iteration at the cost of one gradient evaluation; 0 = never (always with TV).
  double certificateTolerance = 0;
  // HALS with weights (ntf_stratified_hals.cpp): Exact, each block's weighted sweeps over the listed
  // entries' Khatri–Rao rows; Surrogate (every weight ≤ 1), the plain sweeps on the block's data with
  // the listed entries' κ(target − model)·z added to its linear term at the block's start (the
  // majorizer of NtfOptions::weightedHals, per block).
  WeightedHals weightedHals = WeightedHals::Exact;
};

struct StratifiedNtfState {
  std::vector<std::vector<double>> v;  // [s·K + t]: qₛ × d_t
  std::vector<std::vector<double>> w;  // [s]: r × nₛ
  std::vector<std::vector<double>> h;  // [t]: r × d_t
};

struct StratifiedNtfResult {
  LossTrace trace;
  int iterations = 0;
  StopReason stop = StopReason::MaxIterations;
  double certificate = 0;  // stratifiedNtfCertificate of the returned state (NaN with TV: none defined)
  std::vector<StratifiedNtfState> stages;  // with recordStages
  std::size_t scratchDoubles = 0;          // working memory the solver allocated, in doubles
};

// U(0,1) entries from the project generator, in the reference's order: all v (stratum, then mode),
// all w, then all h.
void stratifiedNtfRandomInit(const StratifiedNtfProblem& problem, const StratifiedNtfOptions& options,
                             std::uint64_t seed, StratifiedNtfState& state);

// √(Σₛ‖A(s) − B(s)‖²), plus reg·Σₜ[TV(row 0 of hₜ) + TV(row 1 of hₜ)] with TV on (weighted:
// √ΣₛΣω(A(s) − B(s))², over the observed entries).
double stratifiedNtfLoss(const StratifiedNtfProblem& problem, const StratifiedNtfOptions& options,
                         const StratifiedNtfState& state);

// The KKT gradient mapping (solver.hpp) of f = ½Σₛ‖A(s) − B(s)‖² / Σₛ‖A(s)‖² (weighted:
// ½ΣₛΣω(A(s) − B(s))² / ΣₛΣωA(s)²) at `state`: the largest
// over the blocks v(s)ₜ, w(s) and hₜ; 0 exactly at a stationary point. NaN with TV on (the loss then
// has a non-smooth term and this measure is not defined).
double stratifiedNtfCertificate(const StratifiedNtfProblem& problem, const StratifiedNtfOptions& options,
                                const StratifiedNtfState& state);

class RowTeam;  // thread_team.hpp

// The threads of a Stratified-NTF solve's team (and of the loss and certificate above): the job's
// (teamThreads, thread_team.hpp) when a pass over the strata pays for waking a helper, at most one
// per stratum (one when there are fewer strata than threads and each is large enough for OpenBLAS's
// own threads). A stratum's products are too small to split (10×64×64 at rank 40 in the benchmark),
// so the solver's passes spread whole strata over the team, each thread on single-threaded OpenBLAS,
// and sum what the strata share from per-stratum parts in stratum order: the same bits as one thread.
int stratifiedNtfThreads(const StratifiedNtfProblem& problem, const StratifiedNtfOptions& options);

// stratifiedNtfLoss with the strata spread over `team` (OpenBLAS held at one thread by the caller
// while the team has several): each stratum's term on one thread, summed in stratum order.
double stratifiedNtfLoss(const StratifiedNtfProblem& problem, const StratifiedNtfOptions& options,
                         const StratifiedNtfState& state, RowTeam& team);

// Runs options.solver from `state` (updated in place): the multiplicative updates below, or HALS
// (ntf_stratified_hals.hpp; not with TV). Progress values: [loss, loss /
// √(Σₛ‖A(s)‖²)]. MU with weights: each block's step is Lee–Seung's for the weighted objective (its
// numerator and denominator the MTTKRPs of Ω∘A and Ω∘B), which never raises it.
void stratifiedNtf(const StratifiedNtfProblem& problem, const StratifiedNtfOptions& options,
                   StratifiedNtfState& state, StratifiedNtfResult& result, Monitor& monitor);

// ---- non-negative CP ------------------------------------------------------------------------------

struct NtfOptions {
  std::size_t rank = 1;
  int maxIterations = 100;
  NtfSolver solver = NtfSolver::MultiplicativeUpdates;
  double epsilon = 2.220446049250313e-16;  // MU floor (machine epsilon, as tensorly)
  double tolerance = 0;
  int lossEvery = 1;
  double certificateTolerance = 0;  // as StratifiedNtfOptions'
  // Updates of each mode's factor per iteration. The MTTKRP Mₘ and
  // the Hadamard Gₘ of the other Grams are the expensive part of a mode's update and do not change
  // while Fₘ does, so further updates reuse them: HALS sweeps the columns of Fₘ (each column's r
  // coordinates in order, each the exact non-negative minimizer) up to innerSweeps times, a block of
  // 128 columns stopping early when a sweep's change Σ G[a,a]·δ_a² over it falls to innerTolerance²
  // times its first sweep's (Gillis and Glineur's rule); MU repeats its step while the factor's change
  // is above that fraction.
  // Every update is exact or majorize–minimize on the same block objective, so the loss never rises.
  // With weights, MU takes one update per mode (its listed sums change with the factor); HALS sweeps
  // as above, the block objective being weightedHals's.
  int innerSweeps = 1;
  double innerTolerance = 0.1;
  // HALS with weights (ntf.cpp: weightedHalsMode, and the surrogate in ntf's loop):
  // - Exact: each coordinate step is the exact minimizer of the weighted objective, the listed
  //   entries' residuals kept current through every step (their Khatri–Rao rows gathered once per
  //   column and mode);
  // - Surrogate (every weight ≤ 1): majorize–minimize. At the start of a mode's update the weighted
  //   objective ½Σω(t − m)² is majorized by the unweighted ½Σ(x̃ − m)² with x̃ = ωt + (1 − ω)m_old (the
  //   gap ½Σ(1 − ω)(m_old − m)² is ≥ 0 and 0 at the current factor), so the plain sweeps on the MTTKRP
  //   of x̃ (the plain MTTKRP plus the listed entries' κ(t − m_old)·z) lower the weighted objective.
  WeightedHals weightedHals = WeightedHals::Exact;
};

struct NtfResult {
  LossTrace trace;
  int iterations = 0;
  StopReason stop = StopReason::MaxIterations;
  double certificate = 0;  // ntfCertificate of the returned factors
};

// U(0,1) entries, factor by factor in mode order (rank-major r × dₘ).
void ntfRandomInit(const Shape& shape, std::size_t rank, std::uint64_t seed, std::vector<std::vector<double>>& F);

// Doubles of the weighted HALS's column scratch (ntf.cpp, WeightedHalsScratch) on a team of `threads`:
// per thread one column's gathered Khatri–Rao rows and residuals, at most min(listed, size/d_min)
// entries (a column of the smallest mode meets size/d_min entries). lib/factorization/ntf.ts counts
// the same.
double weightedHalsScratchDoubles(double listed, double size, double dmin, double r, double threads);

// ‖T − Σ_a ⊗ₘ Fₘ[a, :]‖ for rank-major factors (weighted: √Σω(t − model)²).
double cpLoss(const double* T, const Shape& shape, const std::vector<std::vector<double>>& F, std::size_t rank,
              const TensorEntryWeights* weights = nullptr);

// The KKT gradient mapping (solver.hpp) of f = ½‖T − Σ_a ⊗ₘ Fₘ[a, :]‖² / ‖T‖² at F: the largest over
// the modes of gradientMapping(Fₘ, (GₘFₘ − Mₘ)/‖T‖²), Gₘ = ⊙ᵢ≠ₘ FᵢFᵢᵀ, Mₘ the MTTKRP.
double ntfCertificate(const double* T, const Shape& shape, const std::vector<std::vector<double>>& F, std::size_t rank,
                      const TensorEntryWeights* weights = nullptr);

// Non-negative CP from the rank-major factors F (updated in place): modes in order, each using the
// others' newest values. MU: Fₘ ← Fₘ ∘ max(Mₘ, ε)/max(GₘFₘ, ε); HALS: exact non-negative coordinate
// minimization, one coordinate at a time (options.innerSweeps per mode and iteration). The solver's
// own passes (MTTKRP contractions, the updates, the weighted updates' listed sums and columns,
// norms) run on the thread team (thread_team.hpp); each value is computed by one thread in a fixed
// order, so only the BLAS calls' rounding depends on the thread count. Progress values: [loss, loss/‖T‖].
// With active `weights`: the same two rules for the weighted objective (Lee–Seung's MU with the
// weighted MTTKRPs; HALS with per-entry curvatures), loss and certificate over the observed entries.
void ntf(const double* T, const Shape& shape, const NtfOptions& options, std::vector<std::vector<double>>& F,
         NtfResult& result, Monitor& monitor, const TensorEntryWeights* weights = nullptr);

}  // namespace nsa
