// The certified solvers of the calibration-free NSA-Flow energy (nsa_energy.hpp): minimise a smooth
// f(x) subject to x ≥ 0 (or unconstrained), monotonically (every accepted iterate has f no larger
// than the one before), and certify the result with the scale-free gradient mapping of solver.hpp.
//
//   spg     spectral projected gradient: Barzilai–Borwein step lengths (alternating BB1/BB2, safeguarded),
//           projected step d = P(x − α∇f) − x, Armijo backtracking along d (monotone: f(x + λd) ≤
//           f(x) + 1e-4·λ·∇fᵀd), cubic-free halving with a quadratic-interpolation guess.
//   lbfgsb  L-BFGS-B (Byrd, Lu, Nocedal, Zhu 1995) for the lower bound 0: the compact limited-memory
//           form B = θI − W·M·Wᵀ, the generalized Cauchy point along the projected steepest descent
//           path, subspace minimisation over the free variables (direct primal method, then projected;
//           truncated to the box when the projected point is no descent direction, as Morales and
//           Nocedal 2011), and a strong-Wolfe line search (c1 = 1e-4, c2 = 0.9, bracketing + zoom with
//           safeguarded cubic interpolation) bounded by the largest feasible step. Without the bound
//           the same code is plain L-BFGS with a strong-Wolfe search.
//
// Stop rules (StopReason, solver.hpp), checked after every accepted iterate:
//   gradMap        certificate ≤ tolerance;
//   plateau        f decreased by less than plateauTolerance·|f| over the last kPlateauWindow iterations;
//   lineSearch     the line search found no acceptable step (after one retry from a fresh memory);
//   stalled        as lineSearch, but no step was ever accepted (the start is returned);
//   maxIterations  the cap;
//   nonFinite      f or ∇f became non-finite at the start (a non-finite trial point inside a line search
//                  is treated as too long a step and backtracked; the best finite point is returned).
// A non-gradMap stop whose certificate exceeds 1e3·tolerance carries a warning (not stationary).
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "linalg.hpp"
#include "monitor.hpp"
#include "solver.hpp"

namespace nsa {

// A smooth objective over x ∈ ℝⁿ with the optional lower bound 0 on every coordinate.
class BoundObjective {
 public:
  virtual ~BoundObjective() = default;
  virtual std::size_t size() const = 0;
  virtual bool nonnegative() const = 0;
  // f(x); ∇f into g when g is not null. The two trace terms of the last evaluation are kept by
  // the objective (terms()).
  virtual double evaluate(const double* x, double* g) = 0;
  // True when f(x) alone costs clearly less than f(x) with ∇f (one sweep over x instead of two): SPG
  // then tests a trial point's sufficient decrease on the value and forms the gradient only for the
  // point it accepts. The value must equal, bit for bit, the one evaluate(x, g) returns.
  virtual bool valueIsCheap() const { return false; }
  // f and ∇f at x, which the last call, evaluate(x, nullptr), valued and the caller has not changed
  // since: an objective whose value sweep leaves what the gradient needs (valueIsCheap) reuses it
  // instead of sweeping x for it again. Returns the same value as evaluate(x, g), bit for bit.
  virtual double gradientAtValued(const double* x, double* g) { return evaluate(x, g); }
  // Valuing a point while it is formed: valueOfFormed(x, form) calls form(t, b, e), which writes
  // x[b, e), block by block in its own sweep (t: the sweeping thread, 0 ≤ t < formThreads()), and
  // values each block while it is in cache; the value is evaluate(x, nullptr)'s on the formed x, bit
  // for bit, and gradientAtValued(x, g) may follow. formThreads() = 0: not offered (valueOfFormed is
  // then not called).
  using FormRows = std::function<void(int, std::size_t, std::size_t)>;
  virtual int formThreads() const { return 0; }
  virtual double valueOfFormed(double* x, const FormRows& form) {
    (void)x;
    (void)form;
    return NAN;
  }
  // Fidelity and orthogonality of the last evaluation (traces and progress only).
  virtual void terms(double* fidelity, double* orthogonality) const = 0;
};

enum class CertifiedSolver { Lbfgsb, Spg };

struct CertifiedOptions {
  CertifiedSolver solver = CertifiedSolver::Lbfgsb;
  double tolerance = 1e-6;
  double plateauTolerance = 1e-12;
  int maxIterations = 1000;
  int memory = 10;  // L-BFGS pairs
  int recordEvery = 1;
};

// Iterations over which the plateau rule measures the relative decrease of f.
constexpr int kPlateauWindow = 10;
// Trial steps per line search before it fails.
constexpr int kMaxLineSearchSteps = 40;

struct CertifiedTraces {
  std::vector<double> iteration, timeMs, energy, fidelity, orthogonality, certificate;
};

struct CertifiedResult {
  UninitDoubles x;  // the returned point (the best finite iterate); empty when certifiedSolve wrote it `into`
  double value = 0;
  double certificate = 0;
  StopReason stopReason = StopReason::MaxIterations;
  int iterations = 0;
  int evaluations = 0;
  CertifiedTraces traces;
  std::vector<std::string> warnings;
};

// Progress values: [energy, certificate, fidelity, orthogonality]. x0: the start, f.size() values, read
// once (copied into the solver's own buffer, clamped at 0 with the bound) and not changed. into: null, or
// f.size() doubles the returned point is written to instead of result.x, by SPG's thread team (a caller
// that has the result's final buffer, such as a JS array made before the call, so saves a copy of p×k on
// one thread).
void certifiedSolve(BoundObjective& f, const double* x0, const CertifiedOptions& options, Monitor& monitor,
                    CertifiedResult& result, double* into = nullptr);

}  // namespace nsa
