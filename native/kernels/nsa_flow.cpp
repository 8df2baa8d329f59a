#include "nsa_flow.hpp"

#include <optional>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "error.hpp"
#include "vjp.hpp"

namespace nsa {

namespace {

using Vec = std::vector<double>;

// torch.optim.lr_scheduler.ReduceLROnPlateau(mode min, threshold 1e-6 rel, cooldown 0, min_lr 0,
// eps 1e-8).
struct PlateauScheduler {
  int patience;
  double factor;
  double best = std::numeric_limits<double>::infinity();
  int bad = 0;
  void step(double value, double& lr) {
    if (value < best * (1. - 1e-6)) {
      best = value;
      bad = 0;
    } else {
      ++bad;
    }
    if (bad > patience) {
      const double next = std::max(lr * factor, 0.0);
      if (lr - next > 1e-8) lr = next;
      bad = 0;
    }
  }
};

// The least-squares slope of the last `window` (iteration, energy) pairs, as the reference (numpy
// means, sums of centred products). `a` and `b` are scratch of at least xs.size() (no allocation).
double windowSlope(const Vec& xs, const Vec& ys, double* a, double* b) {
  const std::size_t n = xs.size();
  const double xm = numpySum(xs.data(), n) / static_cast<double>(n);
  const double ym = numpySum(ys.data(), n) / static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = (xs[i] - xm) * (xs[i] - xm);
    b[i] = (xs[i] - xm) * (ys[i] - ym);
  }
  const double den = numpySum(a, n);
  return den > 0 ? numpySum(b, n) / den : 0.0;
}

// ‖x‖² with four interleaved partial sums (a single running sum waits on one add per element).
double squaredNorm4(const double* x, std::size_t n) {
  double s[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (std::size_t l = 0; l < 4; ++l) s[l] += x[i + l] * x[i + l];
  for (std::size_t l = 0; i < n; ++i, ++l) s[l] += x[i] * x[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// E(Y(Z)) and its gradient with respect to Z through the differentiable map.
struct FlowObjective {
  DifferentiableRetraction& map;
  const double* X0;
  EnergyOptions energy;
  Vec Y, GY;
  Workspace ws;
  // The calibration-free energy, built once for the run (energy() would rebuild it, with a pass over X0,
  // at every evaluation); the reference weighting goes through energy(), whose weights warm-up changes.
  std::optional<CalibrationFreeEnergy> calibrationFree;
  FlowObjective(DifferentiableRetraction& m, const double* x0, const EnergyOptions& e)
      : map(m), X0(x0), energy(e), Y(m.rows() * m.cols()), GY(m.rows() * m.cols()) {
    if (e.weighting == Weighting::CalibrationFree) calibrationFree.emplace(x0, m.rows(), m.cols(), e);
  }
  // Forward with the gradient with respect to Y kept for backward().
  EnergyValue forward(const double* Z) {
    map.forward(Z, Y.data());
    if (calibrationFree) return (*calibrationFree)(Y.data(), GY.data());
    return nsa::energy(Y.data(), X0, map.rows(), map.cols(), energy, GY.data(), ws);
  }
  void backward(double* GZ) { map.backward(GY.data(), GZ); }
  double valueAndGradient(const double* Z, double* GZ) {
    const double e = forward(Z).total;
    backward(GZ);
    return e;
  }
};

// The certificate of Y with gradient G, or NaN at Y = 0: there the orthogonality term is not
// differentiable (it counts as 1, orthogonality.hpp) while the fidelity still pulls Y towards X0, so the gradient
// mapping's "nothing to move" 0 would certify a point that is not stationary.
double certificateOf(const double* Y, const double* G, std::size_t n, bool nonnegative) {
  bool any = false;
  for (std::size_t i = 0; i < n && !any; ++i) any = Y[i] != 0;
  return any ? gradientMapping(Y, G, n, nonnegative) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

LrEstimate estimateFlowLearningRate(const double* Y0, const double* X0, std::size_t p, std::size_t k,
                                    const NsaFlowOptions& o, const EnergyOptions& energyOptions,
                                    Random& rng) {
  const std::size_t n = p * k;
  RetractionOptions ro = o.retraction;
  ro.w = o.w;
  DifferentiableRetraction map(p, k, ro, o.nonnegativity);
  FlowObjective f(map, X0, energyOptions);
  Vec g(n), trial(n), Ytrial(n);
  const double fRef = f.valueAndGradient(Y0, g.data());
  if (!std::isfinite(fRef)) throwNumerical("learning-rate estimation: the start energy is not finite");
  const double gn = std::sqrt(squaredNorm(g.data(), n)) + 1e-12;
  Workspace ws;
  auto lossAt = [&](double lr) {
    for (std::size_t i = 0; i < n; ++i) trial[i] = Y0[i] - lr * g[i];
    map.forward(trial.data(), Ytrial.data());
    return energy(Ytrial.data(), X0, p, k, energyOptions, nullptr, ws).total;
  };
  return estimateLearningRate(o.strategy, o.aggression, fRef, gn, lossAt, o.draws, rng);
}

NsaFlowResult nsaFlow(const double* Y0, const double* X0in, std::size_t p, std::size_t k,
                      const NsaFlowOptions& o, Monitor& monitor) {
  const std::size_t n = p * k;
  const double pk = static_cast<double>(n);
  const bool clampTarget = o.nonnegativity != Nonnegativity::None;
  const bool nonnegative = clampTarget;  // the certificate's constraint set: Y ≥ 0 under hard or softplus
  Random rng(o.seed);
  NsaFlowResult res;

  // 1. Target and start; scale both by s = √(ΣX0²/pk) + 1e-12.
  Vec X0(n), Y(Y0, Y0 + n);
  if (X0in) {
    for (std::size_t i = 0; i < n; ++i) X0[i] = clampTarget ? std::max(X0in[i], 0.0) : X0in[i];
  } else {
    for (std::size_t i = 0; i < n; ++i) X0[i] = clampTarget ? std::max(Y0[i], 0.0) : Y0[i];
    const double jitter = std::sqrt(squaredNorm(Y0, n)) / std::sqrt(pk) * 0.05;
    for (std::size_t i = 0; i < n; ++i) Y[i] = Y[i] + jitter * rng.normal();
  }
  const bool free = o.weighting == Weighting::CalibrationFree;
  // Reference: s = √(ΣX0²/pk) + 1e-12, as the reference. Calibration-free: ‖X0‖ (the energy does not
  // change; the loop's units do, so that ‖X0‖ = 1 and the step ‖Y‖²·∇E of the certificate is ≈ 1).
  const double x0Squared = squaredNorm(X0.data(), n);
  if (free && !(x0Squared > 0))
    throwRange("Expected a target X0 with a nonzero entry (the calibration-free fidelity ‖Y − X0‖²/‖X0‖² divides by ‖X0‖²) but received X0 = 0");
  const double scale = free ? std::sqrt(x0Squared) : std::sqrt(x0Squared / pk) + 1e-12;
  for (std::size_t i = 0; i < n; ++i) {
    X0[i] /= scale;
    Y[i] /= scale;
  }
  res.scale = scale;
  res.weighting = o.weighting;

  // 2. Weights from the scaled start (reference weighting).
  Workspace ws;
  double g0 = 0, d0 = 0;
  if (!free) {
    double diff2 = 0;
    for (std::size_t i = 0; i < n; ++i) diff2 += (Y[i] - X0[i]) * (Y[i] - X0[i]);
    g0 = std::max(0.5 * diff2 / pk, 1e-8);
    d0 = std::max(defect(Y.data(), p, k, ws), 1e-8);
  }
  EnergyOptions eo;
  eo.weighting = o.weighting;
  eo.fidelity = o.fidelity;
  eo.orthogonality = o.orthogonality;
  eo.functional = o.functional;
  eo.w = o.w;
  if (!free) {
    eo.fidEta = std::min((1 - o.w) / (g0 * static_cast<double>(p) * static_cast<double>(k)), 1e6);
    eo.cOrth = std::min(4 * o.w / d0, 1e6);
  }

  RetractionOptions ro = o.retraction;
  ro.w = o.w;
  DifferentiableRetraction map(p, k, ro, o.nonnegativity);
  FlowObjective f(map, X0.data(), eo);
  Vec Z(n), G(n);
  const bool lbfgs = o.optimizer.kind == OptimizerKind::Lbfgs;

  // 3. Warm-up: steps at learning rate 1 with unit weights, then weights from the mean energies.
  if (free && o.warmupIterations > 0) throwRange("Expected warmupIterations 0 with the calibration-free weighting (it has no weights to calibrate)");
  if (o.warmupIterations > 0) {
    f.energy.fidEta = 1.0;
    f.energy.cOrth = 1.0;
    Z = Y;
    std::unique_ptr<Optimizer> opt = lbfgs ? nullptr : makeOptimizer(o.optimizer, p, k, 1.0);
    Lbfgs lb(n);
    Vec fids, orths;
    for (int it = 0; it < o.warmupIterations; ++it) {
      if (monitor.cancelled()) throwAborted();
      if (lbfgs) {
        lb.step(Z.data(), [&](const double* x, double* g) { return f.valueAndGradient(x, g); }, 1.0);
      } else {
        f.valueAndGradient(Z.data(), G.data());
        opt->step(Z.data(), G.data(), 1.0);
      }
      const EnergyValue e = f.forward(Z.data());
      fids.push_back(e.fidelity);
      orths.push_back(e.orthogonality);
    }
    res.warmupSteps = o.warmupIterations;
    const double meanFid = numpySum(fids.data(), fids.size()) / static_cast<double>(fids.size()) + 1e-12;
    const double meanOrth = numpySum(orths.data(), orths.size()) / static_cast<double>(orths.size()) + 1e-12;
    if (meanFid > 0 && meanOrth > 0) {
      f.energy.fidEta = 5e-4 / meanFid;
      f.energy.cOrth = 1.0 / meanOrth;
    }
  }
  res.fidEta = f.energy.fidEta;
  res.cOrth = f.energy.cOrth;

  // 4. Learning rate: given, estimated (reference: from a random start, as the reference does;
  // calibration-free: from the start itself, in the units where ‖X0‖ = 1), or 1e-3.
  double lr = o.learningRate > 0 ? o.learningRate : 1e-3;
  if (!(o.learningRate > 0) && o.estimateLr) {
    Vec start(n);
    if (free)
      start = Y;
    else
      rng.fillNormal(start.data(), n);
    res.lrEstimate = estimateFlowLearningRate(start.data(), X0.data(), p, k, o, f.energy, rng);
    lr = res.lrEstimate.bestLr;
  }
  res.learningRate = lr;

  // 5. Main loop from Z = Y with a fresh optimizer.
  Z = Y;
  std::unique_ptr<Optimizer> opt = lbfgs ? nullptr : makeOptimizer(o.optimizer, p, k, lr);
  Lbfgs lb(n);
  PlateauScheduler scheduler{o.schedulerPatience, o.schedulerFactor};
  // The best iterate's Y: when an iterate improves, its buffer is swapped with f.Y (no copy).
  Vec bestY(n), recentIt, recentE, slopeA(o.windowSize + 1), slopeB(o.windowSize + 1);
  recentIt.reserve(o.windowSize + 1);
  recentE.reserve(o.windowSize + 1);
  double best = std::numeric_limits<double>::infinity();
  const auto t0 = std::chrono::steady_clock::now();
  EnergyValue current = f.forward(Z.data());  // E(Y(Z)) with ∂E/∂Y kept for the first backward
  ProgressRecord rec;
  rec.total = o.maxIterations;
  rec.count = 3;
  res.stopReason = StopReason::MaxIterations;
  // The calibration-free weighting counts the start as iteration 0 (trace entry and best candidate), as
  // every solver of the contract does, so a run whose steps all raise the energy returns its start and
  // says so ('stalled'). The reference weighting keeps the reference's traces, which start after step 1.
  if (free && std::isfinite(current.total)) {
    best = current.total;
    std::copy(f.Y.begin(), f.Y.end(), bestY.begin());
    res.hasBest = true;
    if (o.recordEvery > 0) {
      res.traceIteration.push_back(0);
      res.traceTimeMs.push_back(0);
      res.traceFidelity.push_back(current.fidelity);
      res.traceOrthogonality.push_back(current.orthogonality);
      res.traceTotal.push_back(current.total);
      res.traceLr.push_back(lr);
    }
  }
  for (int it = 1; it <= o.maxIterations; ++it) {
    if (monitor.cancelled()) throwAborted();
    const double before = current.total;
    if (lbfgs) {
      lb.step(Z.data(), [&](const double* x, double* g) { return f.valueAndGradient(x, g); }, lr);
    } else {
      f.backward(G.data());
      if (o.clipNorm > 0) {
        // torch's clip_grad_norm_: always multiplies, by exactly 1.0 when not clipping
        // (a multiplication by exactly 1.0 changes nothing, so that pass is skipped)
        const double coef = std::min(o.clipNorm / (std::sqrt(squaredNorm4(G.data(), n)) + 1e-6), 1.0);
        if (coef != 1.0)
          for (std::size_t i = 0; i < n; ++i) G[i] *= coef;
      }
      opt->step(Z.data(), G.data(), lr);
    }
    res.iterations = it;
    if (!std::isfinite(before)) {
      res.stopReason = StopReason::NonFinite;
      res.iterations = it;
      break;
    }
    current = f.forward(Z.data());  // trace entry `it`: the energy after `it` steps
    bool certified = false;
    if (current.total < best) {
      best = current.total;
      // The certificate of the best iterate, from the ∂E/∂Y the forward pass kept (one pass over Y).
      certified = certificateOf(f.Y.data(), f.GY.data(), n, nonnegative) <= o.certificateTolerance;
      std::swap(f.Y, bestY);
      res.bestIteration = it;
      res.hasBest = true;
    }
    if (it % o.recordEvery == 0) {
      res.traceIteration.push_back(it);
      res.traceTimeMs.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      res.traceFidelity.push_back(current.fidelity);
      res.traceOrthogonality.push_back(current.orthogonality);
      res.traceTotal.push_back(current.total);
      res.traceLr.push_back(lr);
    }
    rec.iteration = it;
    rec.values[0] = current.fidelity;
    rec.values[1] = current.orthogonality;
    rec.values[2] = current.total;
    monitor.progress(rec);
    if (certified) {
      res.stopReason = StopReason::GradMap;
      break;
    }
    if (o.scheduler) scheduler.step(current.total, lr);
    recentIt.push_back(it);
    recentE.push_back(current.total);
    if (static_cast<int>(recentIt.size()) > o.windowSize) {
      recentIt.erase(recentIt.begin());
      recentE.erase(recentE.begin());
    }
    if (static_cast<int>(recentIt.size()) >= o.windowSize - 1 && windowSlope(recentIt, recentE, slopeA.data(), slopeB.data()) > -o.tolerance) {
      res.stopReason = StopReason::Plateau;
      break;
    }
  }
  if (o.maxIterations == 0 && std::isfinite(current.total)) {  // no step taken: the start is the result
    best = current.total;
    std::copy(f.Y.begin(), f.Y.end(), bestY.begin());
    res.hasBest = true;
  }
  if (!res.hasBest) throwNumerical("nsaFlow: the energy was not finite from the first iteration on; no iterate to return");
  res.bestEnergy = best;
  // The certificate of the returned Y: ∇_Y E once more at the best iterate (its own gradient was not
  // kept), and a stop reason that claims stationarity exactly when the certificate shows it.
  f.GY.resize(n);
  energy(bestY.data(), X0.data(), p, k, f.energy, f.GY.data(), ws);
  res.certificate = certificateOf(bestY.data(), f.GY.data(), n, nonnegative);
  if (res.certificate <= o.certificateTolerance)
    res.stopReason = StopReason::GradMap;
  else if (free && res.iterations > 0 && res.bestIteration == 0 && res.stopReason != StopReason::NonFinite)
    res.stopReason = StopReason::Stalled;  // no step lowered the energy: the result is the start
  else if (res.stopReason == StopReason::GradMap)
    res.stopReason = StopReason::Plateau;  // unreachable: a certified stop returns that iterate
  res.Y.resize(n);
  res.target.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    res.Y[i] = bestY[i] * scale;
    res.target[i] = X0[i] * scale;
  }
  return res;
}

}  // namespace nsa
