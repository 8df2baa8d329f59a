// NSA-Flow, exact-gradient mode (the reference's nsa_flow_orth; SPEC.md §5): the whole loop —
// weights, scaling, warm-up, learning-rate estimation, gradient, clipping, optimizer step, plateau
// schedule, slope stopping rule, certificate, best-iterate tracking and traces — in one call.
// Weighting::Reference is the reference's energy with its calibrated weights fidEta, cOrth (from the
// start, or from the warm-up); Weighting::CalibrationFree is E_w = (1 − w)·‖Y − X0‖²/‖X0‖² + w·O(Y)
// (energy.hpp), which needs no weights, no warm-up and no scale: the loop only divides Y and X0 by
// ‖X0‖ so that a learning rate means the same at every scale of the data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "energy.hpp"
#include "lr_strategies.hpp"
#include "monitor.hpp"
#include "solver.hpp"
#include "optimizers.hpp"
#include "ortho.hpp"

namespace nsa {

struct NsaFlowOptions {
  RetractionOptions retraction;  // retraction.w is set to w by the solver
  Nonnegativity nonnegativity = Nonnegativity::Hard;
  Weighting weighting = Weighting::Reference;
  FidelityType fidelity = FidelityType::ScaleInvariant;             // reference weighting
  OrthogonalityType orthogonality = OrthogonalityType::ScaleInvariant;  // reference weighting
  OrthogonalityFunctional functional = OrthogonalityFunctional::Gram;  // calibration-free weighting
  double w = 0.5;
  OptimizerSpec optimizer;
  double learningRate = 0;  // > 0: used as given; 0: estimated by `strategy`, or 1e-3 without one
  bool estimateLr = false;
  LrStrategy strategy = LrStrategy::Bayes;
  double aggression = 0.5;
  const LrDraws* draws = nullptr;  // injected draws for the randomized strategies (tests)
  int maxIterations = 500;
  double tolerance = 1e-4;             // the slope rule's ('plateau')
  double certificateTolerance = 1e-6;  // the gradient mapping's ('gradMap')
  int windowSize = 10;
  int recordEvery = 1;
  int warmupIterations = 0;  // reference weighting only
  bool scheduler = false;
  int schedulerPatience = 10;
  double schedulerFactor = 0.5;
  double clipNorm = 10.0;  // ‖∇‖ is clipped to this (0: no clipping)
  uint64_t seed = 42;
};


struct NsaFlowResult {
  std::vector<double> Y, target;  // best iterate and target, in the caller's units
  Weighting weighting = Weighting::Reference;
  int bestIteration = 0;
  double bestEnergy = 0;  // in scaled units, as the traces
  int iterations = 0;
  StopReason stopReason = StopReason::MaxIterations;
  std::vector<double> traceIteration, traceTimeMs, traceFidelity, traceOrthogonality, traceTotal, traceLr;
  double learningRate = 0, fidEta = 0, cOrth = 0, scale = 0;  // fidEta, cOrth: reference weighting
  // The gradient mapping (solver.hpp) of the loop's energy at the returned Y, in the solver's units;
  // NaN when Y = 0 (not differentiable there: no certificate).
  double certificate = 0;
  int warmupSteps = 0;
  bool hasBest = false;
  LrEstimate lrEstimate;  // when estimated
};

// X0 may be null: then the reference's jitter start, drawn from nsa::Random(seed).
// Stops with GradMap when the certificate of an iterate that is also the best so far is ≤
// certificateTolerance, with Plateau by the slope rule; the result's stopReason is GradMap exactly
// when the returned Y's certificate is ≤ certificateTolerance.
// Throws nsa::Error (Aborted when the monitor cancels; Numerical when the very first energy is
// non-finite, so there is no best iterate to return).
NsaFlowResult nsaFlow(const double* Y0, const double* X0, std::size_t p, std::size_t k,
                      const NsaFlowOptions& options, Monitor& monitor);

// The estimator on its own: E and ∇E at Y0 (the map's input), then the strategy's candidates.
// `energy` carries the weighting (reference: with the given fidEta, cOrth).
LrEstimate estimateFlowLearningRate(const double* Y0, const double* X0, std::size_t p, std::size_t k,
                                    const NsaFlowOptions& options, const EnergyOptions& energy,
                                    Random& rng);

}  // namespace nsa
