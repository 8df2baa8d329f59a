// Non-negative matrix factorizations (SPEC.md §8, §10): Stratified-NMF by the reference's
// multiplicative updates, and plain NMF by multiplicative updates (Frobenius or KL) or HALS.
// Data matrices are dense row-major or CSR and are never densified: every product with the data
// is A·X or Aᵀ·Y with a thin X/Y. All factors row-major.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "linalg.hpp"
#include "monitor.hpp"
#include "solver.hpp"

namespace nsa {

// A data matrix: dense (`dense` set, rows×cols row-major) or CSR (`dense` null). The caller keeps
// the buffers alive; CSR indices are assumed validated (monotone indptr, in-range columns).
struct DataMatrix {
  std::size_t rows = 0, cols = 0;
  const double* dense = nullptr;
  const int32_t* indptr = nullptr;
  const int32_t* indices = nullptr;
  const double* values = nullptr;
  bool sparse() const { return dense == nullptr; }
};

// out (rows×l) = A·X with X cols×l; beta as BLAS (0 overwrites, 1 accumulates).
void dataTimes(const DataMatrix& A, const double* X, std::size_t l, double beta, double* out);
// out (cols×l) = Aᵀ·Y with Y rows×l; beta as BLAS.
void dataTransposeTimes(const DataMatrix& A, const double* Y, std::size_t l, double beta, double* out);
void dataColumnSums(const DataMatrix& A, double* out);
double dataSquaredNorm(const DataMatrix& A);
double dataSum(const DataMatrix& A);

// ‖A − 1vᵀ − WH‖² evaluated entry by entry (v may be null), streaming blocks of rows so that only a
// block of the model is ever held. The cancellation-free fallback of the expanded loss.
double directResidualSquared(const DataMatrix& A, const double* v, const double* W, const double* H,
                             std::size_t r, Workspace& ws);

// The expanded loss ‖A‖² − 2⟨A, M⟩ + ‖M‖² loses about log10(‖A‖² + ‖M‖²)/loss² digits; below this
// ratio the direct form is used instead (the expansion then keeps ≳ 11 correct digits).
constexpr double kCancellationRatio = 1e-4;

enum class NmfInit { Random, Nndsvd, Given };

// Entry weights of the weighted objective ½Σᵢⱼ ωᵢⱼ(aᵢⱼ − mᵢⱼ)² (ω = 0: a missing entry), stored as
// ω = base + κ with `base` 1 for every entry (dense data: κ = ω − 1 listed where ω ≠ 1, so a mask
// with few missing entries is a short list) or 0 (CSR data whose absent entries are missing: κ = 1
// at the stored entries). Every weighted product is the unweighted one (when base is 1) plus a sum
// over the list, so the cost above the unweighted solve is proportional to the listed entries. The
// data must hold 0 where ω = 0 (the binding zeroes them). The list is kept twice, by rows and by
// columns, each with the data value of its entry. Inactive (no list, base 1): the unweighted solve.
struct EntryWeights {
  bool base = true;
  std::vector<std::size_t> rowPtr, colPtr;  // rows + 1, cols + 1
  std::vector<int32_t> rowCol, colRow;      // the other index of each listed entry
  std::vector<double> rowKappa, rowData, colKappa, colData;
  // What the listed loops may skip reading: every κ is rowKappa[0] (a mask's: −1), and whether some
  // κa ≠ 0 (a mask's data are 0: none). The defaults assume neither.
  bool uniformKappa = false, dataTerms = true;
  bool active() const { return !base || !rowCol.empty(); }
  std::size_t size() const { return rowCol.size(); }
};

// From dense weights ω (rows×cols, finite, ≥ 0) of dense data A.
EntryWeights denseEntryWeights(const DataMatrix& A, const double* omega);
// CSR data whose absent entries are missing: weight 1 at the stored entries, 0 elsewhere.
EntryWeights storedEntryWeights(const DataMatrix& A);
// Missing entries of CSR (or dense) data given as a list: weight 0 at the k entries (rows[p], cols[p]),
// 1 everywhere else (κ = −1 listed, no dense rows×cols array). The indices must be in range and
// distinct (the binding checks them); their order is free. The data must hold 0 at them (the caller
// zeroes the stored ones), so the list carries data 0.
EntryWeights maskedEntryWeights(const DataMatrix& A, const int32_t* rows, const int32_t* cols, std::size_t k);
// Doubles the list of k entries of an rows×cols matrix takes (both orders; int32 as half a double).
double entryWeightsDoubles(double rows, double cols, double k);

// The L1/L2 penalty of one factor block X ≥ 0: l1·ΣX + ½·l2·‖X‖² (ΣX = ‖X‖₁ as X ≥ 0). Its gradient
// l1 + l2·X is ≥ 0, so the multiplicative updates add it to their denominators (nmf.cpp says why
// they stay monotone) and HALS adds l2 to a coordinate's curvature and l1 + l2·x to its gradient.
struct Penalty {
  double l1 = 0, l2 = 0;
  bool active() const { return l1 > 0 || l2 > 0; }
  // l1·ΣX + ½·l2·‖X‖² over n entries (0 when inactive, without reading X).
  double value(const double* X, std::size_t n) const;
  // out[i] += (l1 + l2·X[i])·scale: the penalty's gradient into a gradient or MU denominator.
  void addGradient(const double* X, std::size_t n, double scale, double* out) const;
};

// Appends a penalized objective to NmfRun::objective; true when its relative change since the previous
// entry is at most `tolerance` (> 0): the tolerance rule of a penalized solve.
bool recordObjective(std::vector<double>& objective, double value, double tolerance);

struct NmfRun {
  int iterations = 0;
  StopReason stop = StopReason::MaxIterations;
  LossTrace trace;
  // The KKT gradient mapping of the normalized objective at the returned factors (solver.hpp's
  // gradientMapping, the max over the factor blocks): 0 exactly at a stationary point. With a
  // penalty, of the penalized objective (normalized the same way).
  double certificate = 0;
  // With a penalty on: the penalized objective (data term + penalties, nmf()'s and stratifiedNmf()'s
  // doc) at each entry of `trace`, which the updates never increase; the tolerance rule reads it
  // instead of the loss. Empty without a penalty.
  std::vector<double> objective;
};

// ---- Stratified-NMF ---------------------------------------------------------------------------------

// The update rule of stratifiedNmf: the reference's multiplicative updates, or block-coordinate
// descent (HALS: exact minimization over v(s), then each W(s), then H; docs/stratified-nmf.md).
enum class StratifiedNmfSolver { Mu, Hals };

struct StratifiedNmfOptions {
  std::size_t rank = 1;
  StratifiedNmfSolver solver = StratifiedNmfSolver::Mu;
  int maxIterations = 100;
  int vScaling = 2;
  double tolerance = 0;  // stop when |Δloss|/loss between two recorded losses falls below; 0 = never
  int lossEvery = 1;     // record the loss every this many iterations (always after the last one)
  double epsilon = 1e-9; // added to every denominator, as the reference's `tol`
  // Stop ('gradMap') when the certificate of the iterate is at most this, checked before every
  // lossEvery-th iteration at the cost of one gradient evaluation; 0 = never.
  double certificateTolerance = 0;
  // Penalties of the blocks (default off): the objective becomes ½Σₛ Σ ω(a − m)² + the three penalties.
  Penalty penaltyV, penaltyW, penaltyH;
  bool penalized() const { return penaltyV.active() || penaltyW.active() || penaltyH.active(); }
  // Per-stratum ranks rₛ ≤ rank (empty: every stratum has `rank`). Nested topics: stratum s uses the
  // first rₛ rows of H, i.e. W(s) is nₛ×rank with its columns ≥ rₛ fixed at 0 (not variables: the
  // multiplicative updates keep exact zeros, the certificate leaves them out).
  std::vector<std::size_t> stratumRanks;
};

// Fills V (S×m), W[s] (nₛ×r) and H (r×m). Random: the reference's V ~ U(0,1), then each W(s) and
// then H ~ U(0,1)/√r. Nndsvd: v(s) = ½·column means of A(s), W/H from NNDSVD (zeros filled with
// 1 % of √(mean/r)) of the stacked A(s) − 1v(s)ᵀ by a randomized SVD. With `stratumRanks` (as the
// options'), the same draws with the columns ≥ rₛ of each W(s) then set to 0 (Given: left as given).
void stratifiedNmfInit(const std::vector<DataMatrix>& A, std::size_t r, NmfInit init, uint64_t seed,
                       double* V, const std::vector<double*>& W, double* H,
                       const std::vector<std::size_t>& stratumRanks = {});

// Runs the multiplicative updates in place on V, W, H. Progress values: [loss, normalized loss].
// With o.stratumRanks, the columns ≥ rₛ of each W(s) are set to 0 first and stay 0.
// The certificate is over the blocks V, each W(s) and H of ½Σₛ‖A(s) − 1v(s)ᵀ − W(s)H‖² / Σₛ‖A(s)‖².
// With `weights` (one per stratum, or null): the weighted objective ½Σₛ Σ ω(a − m)² and its
// Lee–Seung updates; the loss, its normalizer √Σωa² and the certificate are over the observed entries.
// With penalties (StratifiedNmfOptions::penaltyV/W/H), as nmf()'s.
NmfRun stratifiedNmf(const std::vector<DataMatrix>& A, const StratifiedNmfOptions& o, double* V,
                     const std::vector<double*>& W, double* H, Monitor& monitor,
                     const std::vector<EntryWeights>* weights = nullptr);

// Doubles of the buffers of stratifiedNmf's weighted HALS rows and columns (listed entries, solver
// Hals) on a team of `threads`, N data rows in all, m columns, rank r: each thread holds one row's or
// column's list at a time. lib/factorization/stratified-nmf.ts counts the same.
double stratifiedNmfRowListDoubles(double N, double m, double r, double threads);

// √(Σₛ‖A(s) − 1v(s)ᵀ − W(s)H‖²) for given factors (expanded, with the direct fallback).
double stratifiedNmfLoss(const std::vector<DataMatrix>& A, std::size_t r, const double* V,
                         const std::vector<double*>& W, const double* H);

// ---- plain NMF ------------------------------------------------------------------------------------

enum class NmfSolver { Mu, Hals };
enum class NmfLoss { Frobenius, KL };

struct NmfOptions {
  std::size_t rank = 1;
  NmfSolver solver = NmfSolver::Hals;
  NmfLoss loss = NmfLoss::Frobenius;
  int maxIterations = 200;
  double tolerance = 0;
  int lossEvery = 1;
  double epsilon = 1e-9;  // added to multiplicative-update denominators
  double certificateTolerance = 0;  // as StratifiedNmfOptions'
  // Inner updates of one factor per outer iteration (unweighted Frobenius only; 1 elsewhere). The
  // products AHᵀ, HHᵀ (WᵀA, WᵀW) that dominate an outer iteration are computed once and reused, so an
  // inner sweep costs r² per row against the products' 2·m·r. HALS: each row of W (of Hᵀ) is swept up
  // to `innerSweeps` times and stops early when a sweep's change Σ_c d_c·δ_c² (d_c the coordinate's
  // curvature) falls to innerTolerance² times its first sweep's; with enough sweeps this is the exact
  // non-negative least-squares solve of the row by coordinate descent (RcppML's alternating NNLS).
  // MU: the multiplicative update of the whole factor repeated, with the same rule on the factor.
  int innerSweeps = 1;
  double innerTolerance = 0.1;
  // Penalties of W and H (default off): the objective becomes the data term (½Σω(a − wh)², KL: the
  // divergence) + l1W·ΣW + ½·l2W·‖W‖² + l1H·ΣH + ½·l2H·‖H‖².
  Penalty penaltyW, penaltyH;
  bool penalized() const { return penaltyW.active() || penaltyH.active(); }
};

// Random: W, H ~ U(0,1)·√(mean(A)/r) (W first). Nndsvd: NNDSVD of A, zeros filled with 1 % of √(mean(A)/r).
// With active weights the mean is the weighted one, Σωa/Σω (NNDSVD still factors A, zero where missing).
void nmfInit(const DataMatrix& A, std::size_t r, NmfInit init, uint64_t seed, double* W, double* H,
             const EntryWeights* weights = nullptr);

// Frobenius: loss ‖A − WH‖ (normalized by ‖A‖). KL: the generalized divergence
// Σ a·log(a/wh) − a + wh (normalized by Σa). Progress values: [loss, normalized loss].
// The certificate is over the blocks W and H of ½‖A − WH‖²/‖A‖² (KL: the divergence / Σa).
// With active `weights` (Frobenius only): the loss is √Σω(a − wh)², normalized by √Σωa², and the
// updates and certificate are those of the weighted objective; inactive weights change nothing.
// With penalties (NmfOptions::penaltyW/H): the loss stays the data fit; the updates, the certificate
// and NmfRun::objective (progress value 2) are of the penalized objective.
// Unweighted Frobenius HALS on wide data (rows < cols) updates only H in its first iteration (nmf.cpp).
NmfRun nmf(const DataMatrix& A, const NmfOptions& o, double* W, double* H, Monitor& monitor,
           const EntryWeights* weights = nullptr);

}  // namespace nsa
