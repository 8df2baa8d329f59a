// The reference's learning-rate estimation (estimate_learning_rate_for_nsa_flow; SPEC.md §7 and the
// fixtures README): each of 11 strategies builds candidate rates from its formula scaled by the
// aggression a ∈ [0, 1], scores each by the energy after a trial step Y0 − lr·∇E, and picks by its rule.
// The three randomized strategies take their draws from `draws` when given (fixture parity), else
// from the caller's seeded nsa::Random.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "random.hpp"

namespace nsa {

enum class LrStrategy {
  Armijo,
  ArmijoAggressive,
  Exponential,
  Linear,
  Entropy,
  Random,
  Adaptive,
  MomentumBoost,
  PolyDecay,
  Grid,
  Bayes,
};
bool lrStrategyFromName(const std::string& name, LrStrategy* out);

struct LrDraws {
  std::vector<double> uniforms;  // random: 25 U(0,1); entropy: 1 U(0,1)
  std::vector<double> normals;   // bayes: 25 N(0, 0.05²) (already scaled)
};

struct LrEstimate {
  double bestLr = 1e-3;
  double bestEnergy = 0;
  std::vector<double> candidates, losses, relChanges;
  LrDraws drawsUsed;
};

// lossAt(lr) = E(nonneg(retract(Y0 − lr·g))); fRef = E at Y0, gradNorm = ‖g‖ + 1e-12.
LrEstimate estimateLearningRate(LrStrategy strategy, double aggression, double fRef, double gradNorm,
                                const std::function<double(double)>& lossAt, const LrDraws* draws,
                                Random& rng);

// numpy's pairwise summation (np.sum / np.mean of a float64 array), for results equal to numpy's.
double numpySum(const double* x, std::size_t n);

}  // namespace nsa
