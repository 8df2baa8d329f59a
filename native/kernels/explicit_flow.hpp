// NSA-Flow explicit flow, the paper's algorithm (SPEC.md §6, the reference's `legacy.nsa_flow`) with
// its two defects fixed: the fidelity gradient has the correct sign and the energy is evaluated at the
// iterate itself (no second retraction inside the energy).
//
// Hot path (soft polar / polar / none): every p×k product is applied to row blocks that stay in cache,
// fused with the elementwise work and shared by up to `threads` threads. With the plain step
// (PlainStep, optimizer 'fast') an iteration is one pass:
//   k×k:    eig(YᵀY) → A (k×k) such that Y·A is the orthogonality gradient projected on the tangent
//           space at the polar factor of Y (see gradientMap in explicit_flow.cpp for why there);
//           Ỹ = Y·B + γ·X0 (B = I − lr·s(A + ηI), γ = lr·s·η), so S̃ = ỸᵀỸ = BᵀSB + γ(BᵀC + CᵀB) +
//           γ²X0ᵀX0 from S = YᵀY and C = YᵀX0 of the iterate; eig(S̃) → K = the soft-polar map with the
//           norm restored (R_w(Ỹ) = Ỹ·K exactly);
//   pass:   per row block, in cache: G = Y·A, g = s(G + η(Y − X0)), Ỹ = Y − lr·g, R = Ỹ·K,
//           T = N(best + α(R − best)), ‖T − X0‖², S_T += TᵀT, C_T += TᵀX0 (T written once).
// Other steppers form Ỹ in a step pass (S̃ += ỸᵀỸ) and run the trial as a second pass; a retraction
// off the Gram path needs Ỹ itself and does the same.
// Work buffers (p×k doubles): X0, Ỹ, R and a pool of 3 (current, best, trial) = 6 at most (Ỹ and R
// are allocated when a path first forms them: the single-pass iteration needs neither); a retraction off
// the Gram path (ill-conditioned YᵀY, polarMethod 'svd') adds the 2 scratch matrices of nsa::retract's
// SVD = 8 at most. An optimizer adds its state (lib/nsa-flow-explicit/core.ts optimizerStateBuffers:
// 0 for 'fast', 2 for adam, …, 210 for lbfgs with its 100-pair history); a whole-matrix optimizer
// takes its gradient in R (free before the retraction), so it adds no work buffer of its own.
// The inputs are consumed (they become X0 and the first current iterate).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <memory>

#include "monitor.hpp"
#include "optimizers.hpp"
#include "ortho.hpp"
#include "orthogonality.hpp"
#include "solver.hpp"

namespace nsa {

// The energy the flow decreases (its trace `total`, its `bestEnergy`, the certificate's gradient).
enum class FlowWeighting {
  // E = ½η‖Y − X0‖² + ¼c·defect(Y), η = (1−w)/(g0·p·k), c = 4w/d0 with g0, d0 from the start (SPEC §6):
  // from an orthogonal start d0 ≈ 0 and c saturates for every w > 0.
  Reference,
  // E = (1−w)·‖Y−X0‖²/‖X0‖² + w·defect(Y)/d_ref, d_ref = max(defect(X0), defect(N(Y0))): both terms are
  // 0 at their ideal and 1 at the other's; d_ref depends on the data (a path fixes it from its first solve).
  Balanced,
  // The calibration-free energy E_w(Y) = (1 − w)·‖Y − X0‖²/‖X0‖² + w·O(Y), O a scale-invariant
  // orthogonality functional in [0, 1] (orthogonality.hpp): nothing is measured from the data.
  Energy,
};

// How the (projected) gradient becomes the proposed point Ỹ. Elementwise steppers are called per row
// block inside the fused pass 1; the others once per iteration on the whole matrix. The shared
// optimizer library (optimizers.hpp) plugs in through OptimizerStep / LbfgsStep below.
class Stepper {
 public:
  virtual ~Stepper() = default;
  virtual bool elementwise() const = 0;
  // Ỹ = Y − lr·g exactly (PlainStep): Ỹ is then linear in Y and X0 and the flow runs its single-pass
  // iteration (ỸᵀỸ from k×k algebra, Ỹ never stored).
  virtual bool plain() const { return false; }
  // Elementwise: on entry G[begin, end) holds the gradient at Y; on exit the proposed point.
  virtual void step(const double* /*Y*/, double* /*G*/, std::size_t /*begin*/, std::size_t /*end*/, double /*lr*/) {}
  // Whole matrix: on entry P is a copy of Y and G the gradient at Y; on exit P is the proposed point.
  // `f` evaluates the flow's energy and (projected) gradient at any point, for closure optimizers.
  virtual void stepMatrix(double* /*P*/, const double* /*G*/, double /*lr*/, const Objective& /*f*/) {}
};

// The reference's 'fast' optimizer: Ỹ = Y − lr·g, fused into pass 1.
class PlainStep final : public Stepper {
 public:
  bool elementwise() const override { return true; }
  bool plain() const override { return true; }
  void step(const double* Y, double* G, std::size_t begin, std::size_t end, double lr) override {
    for (std::size_t i = begin; i < end; ++i) G[i] = Y[i] - lr * G[i];
  }
};

// Any gradient-step optimizer of the shared library. Its state persists across iterations while its
// parameter is reset to the flow's current iterate each time (as the reference does with torch
// optimizers): P ← Y, then opt.step(P, g, lr). The library steps whole arrays (and counts steps per
// call), so it cannot run per row block: once per iteration on the whole matrix.
class OptimizerStep final : public Stepper {
 public:
  explicit OptimizerStep(std::unique_ptr<Optimizer> opt) : opt_(std::move(opt)) {}
  bool elementwise() const override { return false; }
  void stepMatrix(double* P, const double* G, double lr, const Objective&) override { opt_->step(P, G, lr); }

 private:
  std::unique_ptr<Optimizer> opt_;
};

// L-BFGS (strong-Wolfe line search) on the flow's energy before the retraction, E(x), with the flow's
// (projected) gradient; one L-BFGS step (up to 10 inner iterations) per flow iteration.
class LbfgsStep final : public Stepper {
 public:
  explicit LbfgsStep(std::size_t n) : lb_(n) {}
  bool elementwise() const override { return false; }
  void stepMatrix(double* P, const double*, double lr, const Objective& f) override { lb_.step(P, f, lr); }

 private:
  Lbfgs lb_;
};

// The stepper for an optimizer spec: 'fast' → PlainStep (fused), lbfgs → LbfgsStep, else
// OptimizerStep. `initialLr` is the flow's first learning rate (ASGD's η₀, AdaBound's base, Rprop's step).
std::unique_ptr<Stepper> makeStepper(const OptimizerSpec& spec, std::size_t p, std::size_t k, double initialLr);

struct ExplicitFlowOptions {
  double w = 0.5;
  RetractionOptions retraction;  // type, nsIterations, polarMethod, gramConditionLimit (w is set from w)
  Nonnegativity nonnegativity = Nonnegativity::Hard;
  FlowWeighting weighting = FlowWeighting::Energy;
  OrthogonalityFunctional orthogonality = OrthogonalityFunctional::Gram;  // O of the Energy weighting
  // Balanced weighting: the defect that counts as fully non-orthogonal; 0 = max(defect(X0),
  // defect(N(Y0)), 1e-8). A path fixes it from its first solve so every w minimizes the same family.
  double orthogonalityReference = 0;
  bool rescale = true;  // work on X0/s, Y/s with s = RMS(X0) (SPEC §5 step 2): scale invariance
  bool projectFullGradient = false;
  double learningRate = 1e-3;
  int maxIterations = 500;
  double tolerance = 1e-5;  // the flow's own rules (relative gradient norm, energy window) and the certificate
  int windowSize = 5;
  int recordEvery = 1;
  int maxBacktracks = 20;
  uint64_t seed = 42;
  int threads = 0;  // 0: the BLAS thread count now in effect
};

// fidelity: the weighted fidelity term ½η‖Y − X0‖²; orthogonality: the unweighted orthogonality measure
// of the energy (defect(Y) for Reference/Balanced, O(Y) for Energy); total: the energy.
struct ExplicitFlowTraces {
  std::vector<double> iteration, timeMs, fidelity, orthogonality, total, learningRate, backtracks;
};

// The sums behind the result's diagnostics (lib/nsa-flow-explicit/diagnostics.ts), taken on the team in
// the pass that scales the results back, so that the caller's thread does not pass over them again.
// distance2, target2 and the Gram behind `defect` are in working units (Y/s, target/s): the ratios
// built from them do not depend on s.
struct ExplicitFlowSummary {
  double zeros = 0;      // exact zeros of Y (caller's units)
  double distance2 = 0;  // ‖Y − target‖²
  double target2 = 0;    // ‖target‖²
  double defect = 0;     // the invariant orthogonality defect of Y (nsa::defect)
  bool finite = true;    // every entry of Y and of the target finite in the caller's units
};

struct ExplicitFlowResult {
  std::vector<double> Y;       // best iterate, caller's units
  std::vector<double> target;  // X0 actually used (after P₊ / jitter default), caller's units
  int bestIteration = 0;       // 0 = the start N(Y0)
  double bestEnergy = 0;
  double startEnergy = 0;
  int iterations = 0;
  int acceptedSteps = 0;  // iterations whose step lowered the best energy
  // gradMap (a flow rule fired and certificate ≤ tolerance) | plateau (a flow rule fired) | stalled (no
  // accepted step: the start is returned) | maxIterations | nonFinite
  StopReason stopReason = StopReason::MaxIterations;
  std::string convergence;  // the flow rule that fired: gradientNorm | energyWindow | "" (none)
  // nsa::gradientMapping of the energy at the returned point (working units, hard non-negativity as
  // the constraint): 0 exactly at a KKT point; NaN when not finite.
  double certificate = 0;
  double fidEta = 0, cOrth = 0, scale = 1, finalLearningRate = 0;
  double orthogonalityReference = 0;  // d0 (reference weighting) or the balanced weighting's reference
  bool jittered = false;
  int threads = 1;
  int retractionFallbacks = 0;  // iterations whose retraction left the Gram path
  ExplicitFlowTraces traces;
  ExplicitFlowSummary summary;
};

// How many p×k doubles a run keeps at most (work buffers only; inputs/outputs are the caller's).
std::size_t explicitFlowWorkBuffers(const ExplicitFlowOptions& o);

// Runs the flow. Y0 is p×k row-major; X0 may be empty (then X0 = N(Y0) and the start is jittered by
// 5% of Y0's RMS from nsa::Random(seed), as the reference). Both buffers are consumed: they become
// the run's current iterate and target, so a run holds no extra copy of its inputs. Throws nsa::Error
// (Range for bad shapes, Aborted when the monitor cancels).
void explicitFlow(std::vector<double> Y0, std::vector<double> X0, std::size_t p, std::size_t k,
                  const ExplicitFlowOptions& o, Stepper& stepper, Monitor& monitor,
                  ExplicitFlowResult& out);

}  // namespace nsa
