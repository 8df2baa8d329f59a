// NSA-Flow, exact-gradient mode (the reference's nsa_flow_orth; SPEC.md §5): the whole loop —
// weights, scaling, warm-up, learning-rate estimation, gradient, clipping, optimizer step, plateau
// schedule, slope stopping rule, best-iterate tracking and traces — in one call.
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
  FidelityType fidelity = FidelityType::ScaleInvariant;
  OrthogonalityType orthogonality = OrthogonalityType::ScaleInvariant;
  double w = 0.5;
  OptimizerSpec optimizer;
  double learningRate = 0;  // > 0: used as given; 0: estimated by `strategy`, or 1e-3 without one
  bool estimateLr = false;
  LrStrategy strategy = LrStrategy::Bayes;
  double aggression = 0.5;
  const LrDraws* draws = nullptr;  // injected draws for the randomized strategies (tests)
  int maxIterations = 500;
  double tolerance = 1e-4;
  int windowSize = 10;
  int recordEvery = 1;
  int warmupIterations = 0;
  bool scheduler = false;
  int schedulerPatience = 10;
  double schedulerFactor = 0.5;
  double clipNorm = 10.0;  // ‖∇‖ is clipped to this (0: no clipping)
  uint64_t seed = 42;
};


struct NsaFlowResult {
  std::vector<double> Y, target;  // best iterate and target, in the caller's units
  int bestIteration = 0;
  double bestEnergy = 0;  // in scaled units, as the traces
  int iterations = 0;
  StopReason stopReason = StopReason::MaxIterations;
  std::vector<double> traceIteration, traceTimeMs, traceFidelity, traceOrthogonality, traceTotal, traceLr;
  double learningRate = 0, fidEta = 0, cOrth = 0, scale = 0;
  int warmupSteps = 0;
  bool hasBest = false;
  LrEstimate lrEstimate;  // when estimated
};

// X0 may be null: then the reference's jitter start, drawn from nsa::Random(seed).
// Throws nsa::Error (Aborted when the monitor cancels; Numerical when the very first energy is
// non-finite, so there is no best iterate to return).
NsaFlowResult nsaFlow(const double* Y0, const double* X0, std::size_t p, std::size_t k,
                      const NsaFlowOptions& options, Monitor& monitor);

// The estimator on its own: E and ∇E at Y0 (the map's input), then the strategy's candidates.
LrEstimate estimateFlowLearningRate(const double* Y0, const double* X0, std::size_t p, std::size_t k,
                                    const NsaFlowOptions& options, const EnergyOptions& energy,
                                    Random& rng);

}  // namespace nsa
