// Stratified-NTF by block-coordinate descent (HALS): the objective of ntf.hpp's stratifiedNtf,
// ½Σₛ‖A(s) − B(s)‖², minimized block by block — the modes of each stratum's own term v(s)ₜ, the sample
// weights w(s), the shared topics hₜ — each block by exact non-negative coordinate minimization of its
// (convex quadratic) subproblem, component row by component row, repeated for a few inner sweeps while
// they still move the block (the block's MTTKRP and Gram matrix are computed once and reused by every
// sweep, so the extra sweeps are cheap). Every coordinate step minimizes the objective exactly over
// [0, ∞) with the others fixed, and each iteration starts by rescaling every rank-one term's factors by
// powers of two (exact: the model is unchanged bit for bit) so that their norms agree within a factor 2;
// so the loss never increases. (MU's epsilon, the floor of its numerators and denominators, has no
// role here.) With entry weights (missing entries) the objective is ½Σₛ Σ ω(A(s) − B(s))² and each
// block is swept column by column with per-column curvatures (each column meets only its own listed
// entries), still exact coordinate minimizations.
//
// Called through stratifiedNtf with options.solver = NtfSolver::Hals, which runs the shared loop
// (losses, tolerance, certificate, progress) over iterate().
#pragma once
#include <memory>
#include <vector>

#include "ntf.hpp"

namespace nsa {

// ---- what both Stratified-NTF solvers keep alike (ntf.cpp's multiplicative updates and HALS) ----
// out (m×n) = A (m×d) · B (n×d)ᵀ: Gram matrices of rank-major factors.
void crossRows(const double* A, std::size_t m, const double* B, std::size_t n, std::size_t d, double* out);
// Stratum s's Grams after its blocks changed: v(s)ₜv(s)ₜᵀ into VV[s·K + t] (qₛ × qₛ) and v(s)ₜhₜᵀ
// into VH[s·K + t] (qₛ × r), then stratumWGrams.
void stratumGrams(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o, const StratifiedNtfState& st,
                  std::size_t s, std::vector<std::vector<double>>& VV, std::vector<std::vector<double>>& VH,
                  std::vector<std::vector<double>>& WW, std::vector<std::vector<double>>& wsum);
// After w(s) changed: its row sums Σᵢ w(s)[b, i] (each in index order) into wsum[s] and w(s)w(s)ᵀ into WW[s].
void stratumWGrams(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o, const StratifiedNtfState& st,
                   std::size_t s, std::vector<std::vector<double>>& WW, std::vector<std::vector<double>>& wsum);

class StratifiedNtfHals {
 public:
  // Throws a RangeError (error.hpp) for what this solver does not support: the TV term.
  StratifiedNtfHals(const StratifiedNtfProblem& problem, const StratifiedNtfOptions& options, StratifiedNtfState& state);
  ~StratifiedNtfHals();
  StratifiedNtfHals(const StratifiedNtfHals&) = delete;
  StratifiedNtfHals& operator=(const StratifiedNtfHals&) = delete;

  std::size_t scratchDoubles() const;
  double initialLoss();
  // The team the strata are spread over (one thread when they are not; see stratifiedNtfThreads),
  // OpenBLAS on one thread while this solver lives if it has several: for the loss and certificate.
  RowTeam& team();
  // ‖A(s)‖² per stratum (computed once by the constructor).
  const std::vector<double>& strataNorms() const;
  // One iteration (v sweeps, every w(s), every hₜ); the loss after it when `wantLoss`, else NaN.
  // `stages`: the state after each stage, as the multiplicative updates record them.
  double iterate(bool wantLoss, std::vector<StratifiedNtfState>* stages);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nsa
