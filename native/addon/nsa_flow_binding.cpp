// Bindings of NSA-Flow's exact-gradient mode: energies, the differentiable retraction, the
// learning-rate estimator and the whole solver (native/kernels/{energy,vjp,optimizers,lr_strategies,
// nsa_flow}.hpp). Raw signatures are flat; lib/nsa-flow/ validates first.
#include <cstring>
#include <map>

#include "../kernels/energy.hpp"
#include "../kernels/lr_strategies.hpp"
#include "../kernels/nsa_flow.hpp"
#include "../kernels/optimizers.hpp"
#include "../kernels/vjp.hpp"
#include "async_job.hpp"
#include "common.hpp"
#include "flow_args.hpp"
#include "names.hpp"

namespace nsa::addon {

namespace {

const std::map<std::string, FidelityType> kFidelity = {
    {"basic", FidelityType::Basic}, {"scaleInvariant", FidelityType::ScaleInvariant}, {"symmetric", FidelityType::Symmetric}};
const std::map<std::string, OrthogonalityType> kOrthogonality = {
    {"basic", OrthogonalityType::Basic}, {"scaleInvariant", OrthogonalityType::ScaleInvariant}};
const std::map<std::string, Weighting> kWeighting = {{"reference", Weighting::Reference}, {"energy", Weighting::CalibrationFree}};
const std::map<std::string, OrthogonalityFunctional> kFunctional = {
    {"gram", OrthogonalityFunctional::Gram}, {"offDiagonal", OrthogonalityFunctional::OffDiagonal}, {"meanCos2", OrthogonalityFunctional::MeanCos2}};

// (fidelity, orthogonality, w, fidEta, cOrth, weighting, functional) from argument i on.
EnergyOptions energyArgs(const Napi::CallbackInfo& info, std::size_t i) {
  EnergyOptions o;
  o.fidelity = oneOf(arg(info, i, "fidelityType"), kFidelity);
  o.orthogonality = oneOf(arg(info, i + 1, "orthogonalityType"), kOrthogonality);
  o.w = numberIn(arg(info, i + 2, "w"), 0, 1);
  o.fidEta = finiteNumber(arg(info, i + 3, "fidEta"));
  o.cOrth = finiteNumber(arg(info, i + 4, "cOrth"));
  o.weighting = oneOf(arg(info, i + 5, "weighting"), kWeighting);
  o.functional = oneOf(arg(info, i + 6, "orthogonality"), kFunctional);
  return o;
}

bool stiefel(RetractionType t) { return t != RetractionType::None && t != RetractionType::Normalize; }

// (type, w, nsIterations, nonnegativity) from argument i on.
struct MapArgs {
  RetractionOptions retraction;
  Nonnegativity nonneg;
};
MapArgs mapArgs(const Napi::CallbackInfo& info, std::size_t i, std::size_t p, std::size_t k) {
  MapArgs a;
  a.retraction.type = oneOf(arg(info, i, "type"), retractionNames());
  a.retraction.w = numberIn(arg(info, i + 1, "w"), 0, 1);
  a.retraction.nsIterations = intIn(arg(info, i + 2, "nsIterations"), 0, 100000);
  a.nonneg = oneOf(arg(info, i + 3, "nonnegativity"), nonNegativityNames());
  if (p < k && stiefel(a.retraction.type))
    throwRangeJs(info.Env(), "Expected rows ≥ cols (p ≥ k) for a Stiefel retraction but received " + std::to_string(p) + "×" +
                                 std::to_string(k));
  return a;
}

Napi::Object energyObject(Napi::Env env, const EnergyValue& e) {
  // Finite inputs whose energy overflows: a NumericalError, never a silent NaN.
  if (!std::isfinite(e.total))
    throw toJsError(env, ErrorKind::Numerical, "The energy is not finite (the values of Y or X0 are too large to square)");
  Napi::Object o = Napi::Object::New(env);
  o.Set("fidelity", Napi::Number::New(env, e.fidelity));
  o.Set("orthogonality", Napi::Number::New(env, e.orthogonality));
  o.Set("total", Napi::Number::New(env, e.total));
  return o;
}

std::string shapeText(std::size_t p, std::size_t k) { return std::to_string(p) + "×" + std::to_string(k); }

// (Y, X0, B, p, k, fidelity, orthogonality, w, fidEta, cOrth, weighting, functional)
//   → {fidelity, orthogonality, total}; B = 0 means one matrix.
Napi::Value FlowEnergy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t B = dimension(arg(info, 2, "batch"), 0);
  const std::size_t p = dimension(arg(info, 3, "rows")), k = dimension(arg(info, 4, "cols"));
  const EnergyOptions o = energyArgs(info, 5);
  const std::size_t n = product(env, {B == 0 ? 1 : B, p, k}, "Y");
  TypedIn Yin = float64(arg(info, 0, "Y"), n, B == 0 ? "rows·cols" : "batch·rows·cols");
  TypedIn Xin = float64(arg(info, 1, "X0"), n, B == 0 ? "rows·cols" : "batch·rows·cols");
  const double dp = static_cast<double>(p), dk = static_cast<double>(k);
  checkMemory(env, float64Bytes({1}) * (4 * dk * dk + 2 * dp * dk),
              [&] { return std::string("the energy of Y (" + shapeText(p, k) + ")"); });
  Doubles Y = doubles(Yin), X0 = doubles(Xin);
  requireFinite(env, Y.data(), Y.size(), "Y");
  requireFinite(env, X0.data(), X0.size(), "X0");
  Workspace ws;
  const EnergyValue e = guarded(env, [&] {
    return B == 0 ? energy(Y.data(), X0.data(), p, k, o, nullptr, ws) : energyBatch(Y.data(), X0.data(), B, p, k, o, ws);
  });
  return energyObject(env, e);
}

// (Z, X0, p, k, type, w, nsIterations, nonneg, fidelity, orthogonality, wEnergy, fidEta, cOrth,
//  weighting, functional) → {fidelity, orthogonality, total, Y, gradient}: E(nonneg(retract(Z))) and ∂E/∂Z.
Napi::Value FlowEnergyGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t p = dimension(arg(info, 2, "rows")), k = dimension(arg(info, 3, "cols"));
  const MapArgs m = mapArgs(info, 4, p, k);
  const EnergyOptions o = energyArgs(info, 8);
  const std::size_t n = product(env, {p, k}, "Z");
  TypedIn Zin = float64(arg(info, 0, "Z"), n, "rows·cols");
  TypedIn Xin = float64(arg(info, 1, "X0"), n, "rows·cols");
  const double dp = static_cast<double>(p), dk = static_cast<double>(k);
  // Y, ∂E/∂Y, ∂E/∂Z and the two JS results, the energy's Grams, the retraction's VJP
  checkMemory(env, float64Bytes({1}) * (5 * dp * dk + 4 * dk * dk + retractionVjpDoubles(dp, dk, m.retraction.nsIterations)),
              [&] { return std::string("the energy gradient of Z (" + shapeText(p, k) + ")"); });
  Doubles Z = doubles(Zin), X0 = doubles(Xin);
  requireFinite(env, Z.data(), n, "Z");
  requireFinite(env, X0.data(), n, "X0");
  std::vector<double> Y(n), GY(n), GZ(n);
  EnergyValue e;
  guarded(env, [&] {
    DifferentiableRetraction map(p, k, m.retraction, m.nonneg);
    Workspace ws;
    map.forward(Z.data(), Y.data());
    e = energy(Y.data(), X0.data(), p, k, o, GY.data(), ws);
    map.backward(GY.data(), GZ.data());
  });
  Napi::Object out = energyObject(env, e);
  out.Set("Y", newFloat64Array(env, Y, "Y"));
  out.Set("gradient", newFloat64Array(env, GZ, "the gradient"));
  return out;
}

// (Z, G, p, k, type, w, nsIterations, nonneg) → {Y, gradient}: Y = nonneg(retract(Z)) and the
// vector–Jacobian product (∂Y/∂Z)ᵀG.
Napi::Value RetractVjp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t p = dimension(arg(info, 2, "rows")), k = dimension(arg(info, 3, "cols"));
  const MapArgs m = mapArgs(info, 4, p, k);
  const std::size_t n = product(env, {p, k}, "Z");
  TypedIn Zin = float64(arg(info, 0, "Z"), n, "rows·cols");
  TypedIn Gin = float64(arg(info, 1, "G"), n, "rows·cols");
  const double dp = static_cast<double>(p), dk = static_cast<double>(k);
  checkMemory(env, float64Bytes({1}) * (4 * dp * dk + retractionVjpDoubles(dp, dk, m.retraction.nsIterations)),
              [&] { return std::string("the retraction's VJP at Z (" + shapeText(p, k) + ")"); });
  Doubles Z = doubles(Zin), G = doubles(Gin);
  requireFinite(env, Z.data(), n, "Z");
  requireFinite(env, G.data(), n, "G");
  std::vector<double> Y(n), GZ(n);
  guarded(env, [&] {
    DifferentiableRetraction map(p, k, m.retraction, m.nonneg);
    map.forward(Z.data(), Y.data());
    map.backward(G.data(), GZ.data());
  });
  Napi::Object out = Napi::Object::New(env);
  out.Set("Y", newFloat64Array(env, Y, "Y"));
  out.Set("gradient", newFloat64Array(env, GZ, "the gradient"));
  return out;
}

// ---- options objects ---------------------------------------------------------------------------

LrStrategy strategyOf(const In& v) {
  const std::string s = string(v);
  LrStrategy strategy;
  if (!lrStrategyFromName(s, &strategy))
    throwRangeJs(v.value.Env(), "Expected a learning-rate strategy for " + v.name + " but received " + describe(v.value));
  return strategy;
}

// Optional injected draws (absent: the strategy draws from the seed).
std::optional<TypedIn> drawsOf(const In& v) {
  if (absent(v)) return std::nullopt;
  return float64(v);
}

// Doubles an optimizer keeps for n parameters: L-BFGS its history of direction pairs, the others a
// few moment buffers (Lookahead: its base's and a slow copy).
double optimizerDoubles(const OptimizerSpec& o, double n) {
  if (o.kind == OptimizerKind::Lbfgs) return (2.0 * 100 + 8) * n;
  return 16 * n;
}

// The fields the solver and the learning-rate estimator share: the retraction map and the energy's
// terms and weight.
void readMapAndEnergy(const Fields& o, NsaFlowOptions& f) {
  f.retraction.type = oneOf(o["retraction"], retractionNames());
  f.retraction.nsIterations = intIn(o["nsIterations"], 0, 100000);
  f.nonnegativity = oneOf(o["nonnegativity"], nonNegativityNames());
  f.weighting = oneOf(o["weighting"], kWeighting);
  f.fidelity = oneOf(o["fidelityType"], kFidelity);
  f.orthogonality = oneOf(o["orthogonalityType"], kOrthogonality);
  f.functional = oneOf(o["orthogonality"], kFunctional);
  f.w = numberIn(o["w"], 0, 1);
}

// The solver's flat options object (lib/nsa-flow/solver.ts builds it; names as the public options).
// Every field is required (its default lives in the TypeScript spec).
struct FlowConfig {
  NsaFlowOptions options;
  std::optional<TypedIn> uniforms, normals;
  LrDraws draws;
  bool hasDraws = false;
};
FlowConfig flowConfig(const In& options, std::size_t p, std::size_t k) {
  Napi::Env env = options.value.Env();
  const Fields o(options, {"retraction", "nsIterations", "nonnegativity", "weighting", "fidelityType", "orthogonalityType",
                           "orthogonality", "certificateTolerance", "w", "optimizer",
                           "lookaheadBase", "lookaheadK", "lookaheadAlpha", "learningRate", "lrStrategy", "aggression",
                           "maxIterations", "tolerance", "windowSize", "recordEvery", "warmupIterations", "lrScheduler",
                           "lrSchedulerPatience", "lrSchedulerFactor", "clipNorm", "seed", "drawsUniform", "drawsNormal"});
  FlowConfig c;
  NsaFlowOptions& f = c.options;
  readMapAndEnergy(o, f);
  f.optimizer.kind = optimizerOf(o["optimizer"]);
  f.optimizer.base = optimizerOf(o["lookaheadBase"]);
  f.optimizer.lookaheadK = intIn(o["lookaheadK"], 1, 1000000);
  f.optimizer.lookaheadAlpha = numberIn(o["lookaheadAlpha"], 0, 1);
  f.learningRate = numberIn(o["learningRate"], 0, 1.7976931348623157e308);
  const std::string strategy = string(o["lrStrategy"]);
  f.estimateLr = !strategy.empty();
  if (f.estimateLr) f.strategy = strategyOf(o["lrStrategy"]);
  f.aggression = numberIn(o["aggression"], 0, 1);
  f.maxIterations = intIn(o["maxIterations"], 0, 100000000);
  f.tolerance = number(o["tolerance"]);
  f.certificateTolerance = numberIn(o["certificateTolerance"], 0, 1.0 / 0.0);
  f.windowSize = intIn(o["windowSize"], 2, 100000000);
  f.recordEvery = intIn(o["recordEvery"], 1, 100000000);
  f.warmupIterations = intIn(o["warmupIterations"], 0, 100000000);
  if (f.weighting == Weighting::CalibrationFree && f.warmupIterations > 0)
    throwRangeJs(env, "Expected 0 for " + o["warmupIterations"].name + " with weighting 'energy' (it has no weights to calibrate) but received " +
                          describe(o["warmupIterations"].value));
  f.scheduler = boolean(o["lrScheduler"]);
  f.schedulerPatience = intIn(o["lrSchedulerPatience"], 0, 100000000);
  f.schedulerFactor = numberIn(o["lrSchedulerFactor"], 0, 1);
  if (!(f.schedulerFactor > 0 && f.schedulerFactor < 1))
    throwRangeJs(env, "Expected a number in (0, 1) for " + o["lrSchedulerFactor"].name + " but received " +
                          describe(o["lrSchedulerFactor"].value));
  f.clipNorm = numberIn(o["clipNorm"], 0, 1.0 / 0.0);
  f.seed = static_cast<uint64_t>(integerIn(o["seed"], 0, 9007199254740991));
  c.uniforms = drawsOf(o["drawsUniform"]);
  c.normals = drawsOf(o["drawsNormal"]);
  if (p < k && stiefel(f.retraction.type))
    throwRangeJs(env, "Expected rows ≥ cols (p ≥ k) for a Stiefel retraction but received " + shapeText(p, k));
  return c;
}

// (c): copies of the optional draws (after every options getter ran).
void takeDraws(Napi::Env env, FlowConfig& c) {
  if (c.uniforms) c.draws.uniforms = doubles(*c.uniforms, true).owned();
  if (c.normals) c.draws.normals = doubles(*c.normals, true).owned();
  requireFinite(env, c.draws.uniforms.data(), c.draws.uniforms.size(), "options.drawsUniform");
  requireFinite(env, c.draws.normals.data(), c.draws.normals.size(), "options.drawsNormal");
  c.hasDraws = !c.draws.uniforms.empty() || !c.draws.normals.empty();
}

Napi::Object lrEstimateObject(Napi::Env env, const LrEstimate& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("bestLr", Napi::Number::New(env, e.bestLr));
  o.Set("bestEnergy", Napi::Number::New(env, e.bestEnergy));
  o.Set("candidates", newFloat64Array(env, e.candidates));
  o.Set("losses", newFloat64Array(env, e.losses.data(), e.losses.size()));
  o.Set("relChanges", newFloat64Array(env, e.relChanges.data(), e.relChanges.size()));
  Napi::Object d = Napi::Object::New(env);
  d.Set("uniform", newFloat64Array(env, e.drawsUsed.uniforms.data(), e.drawsUsed.uniforms.size()));
  d.Set("normal", newFloat64Array(env, e.drawsUsed.normals.data(), e.drawsUsed.normals.size()));
  o.Set("draws", d);
  return o;
}

Napi::Object flowResultObject(Napi::Env env, const NsaFlowResult& r, bool estimated) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("Y", newFloat64Array(env, r.Y.data(), r.Y.size()));
  o.Set("target", newFloat64Array(env, r.target.data(), r.target.size()));
  o.Set("bestIteration", Napi::Number::New(env, r.bestIteration));
  o.Set("bestEnergy", Napi::Number::New(env, r.bestEnergy));
  o.Set("iterations", Napi::Number::New(env, r.iterations));
  o.Set("stopReason", Napi::String::New(env, stopReasonName(r.stopReason)));
  Napi::Object t = Napi::Object::New(env);
  t.Set("iteration", newFloat64Array(env, r.traceIteration.data(), r.traceIteration.size()));
  t.Set("timeMs", newFloat64Array(env, r.traceTimeMs.data(), r.traceTimeMs.size()));
  t.Set("fidelity", newFloat64Array(env, r.traceFidelity.data(), r.traceFidelity.size()));
  t.Set("orthogonality", newFloat64Array(env, r.traceOrthogonality.data(), r.traceOrthogonality.size()));
  t.Set("total", newFloat64Array(env, r.traceTotal.data(), r.traceTotal.size()));
  t.Set("learningRate", newFloat64Array(env, r.traceLr.data(), r.traceLr.size()));
  o.Set("traces", t);
  o.Set("learningRate", Napi::Number::New(env, r.learningRate));
  const bool reference = r.weighting == Weighting::Reference;
  o.Set("fidEta", reference ? Napi::Value(Napi::Number::New(env, r.fidEta)) : env.Null());
  o.Set("cOrth", reference ? Napi::Value(Napi::Number::New(env, r.cOrth)) : env.Null());
  o.Set("scale", Napi::Number::New(env, r.scale));
  o.Set("certificate", Napi::Number::New(env, r.certificate));
  o.Set("lrEstimate", estimated ? Napi::Value(lrEstimateObject(env, r.lrEstimate)) : env.Null());
  return o;
}

// Inputs of a solve: (Y0, X0 | null, p, k, options), read, checked (memory too), then copied.
struct FlowInputs : StartAndTarget {
  FlowConfig config;
};
FlowInputs flowInputs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const FlowStart start = flowStart(info);
  FlowInputs in;
  in.config = flowConfig(arg(info, 4, "options"), start.p, start.k);
  const NsaFlowOptions& f = in.config.options;
  const double dp = static_cast<double>(start.p), dk = static_cast<double>(start.k), n = dp * dk;
  const double records = static_cast<double>(f.maxIterations) / f.recordEvery + 2;
  // copies of Y0 and X0, the iterate, its gradient, the best Y, the results (C++ and JS), the
  // energy's Grams, the retraction's VJP, the optimizer's state, the window and the traces
  checkMemory(env,
              float64Bytes({1}) * (12 * n + 4 * dk * dk + retractionVjpDoubles(dp, dk, f.retraction.nsIterations) +
                                   optimizerDoubles(f.optimizer, n) + 3.0 * f.windowSize + 12 * records),
                                       [&] { return std::string("NSA-Flow on Y0 (" + shapeText(start.p, start.k) + ")"); });
  static_cast<StartAndTarget&>(in) = takeStart(env, start);
  takeDraws(env, in.config);
  return in;
}

NsaFlowResult runFlow(FlowInputs& in, Monitor& monitor) {
  NsaFlowOptions o = in.config.options;
  if (in.config.hasDraws) o.draws = &in.config.draws;
  return nsaFlow(in.Y0.data(), in.hasX0 ? in.X0.data() : nullptr, in.p, in.k, o, monitor);
}

// (Y0, X0 | null, p, k, options) → result
Napi::Value NsaFlowSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FlowInputs in = flowInputs(info);
  NsaFlowResult r = guarded(env, [&] { return runFlow(in, silentMonitor()); });
  return flowResultObject(env, r, in.config.options.estimateLr && !(in.config.options.learningRate > 0));
}

class NsaFlowJob : public Job {
 public:
  explicit NsaFlowJob(FlowInputs in) : in_(std::move(in)) {}
  void execute(Monitor& monitor) override { result_ = runFlow(in_, monitor); }
  Napi::Value result(Napi::Env env) override {
    return flowResultObject(env, result_, in_.config.options.estimateLr && !(in_.config.options.learningRate > 0));
  }

 private:
  FlowInputs in_;
  NsaFlowResult result_;
};

// As NsaFlowSync, then (cancelToken, onProgress, intervalMs) → Promise<result>.
Napi::Value NsaFlowAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FlowInputs in = flowInputs(info);
  AsyncArgs a = asyncArgs(info, 5);
  return startJob(env, std::make_unique<NsaFlowJob>(std::move(in)), std::move(a));
}

// (Y0, X0, p, k, options) → the estimator's result at Y0 (no scaling, no jitter). The options are
// the estimator's own: the map, the energy (with fidEta, cOrth), the strategy, seed and draws.
Napi::Value EstimateLearningRate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const FlowStart start = flowStart(info);
  if (!start.X0) float64(arg(info, 1, "X0"), start.p * start.k, "rows·cols");  // throws: X0 is required here
  const Fields o(arg(info, 4, "options"), {"retraction", "nsIterations", "nonnegativity", "weighting", "fidelityType",
                                           "orthogonalityType", "orthogonality", "w", "lrStrategy", "aggression", "fidEta", "cOrth", "seed", "drawsUniform", "drawsNormal"});
  FlowConfig c;
  NsaFlowOptions& f = c.options;
  readMapAndEnergy(o, f);
  f.estimateLr = true;
  f.strategy = strategyOf(o["lrStrategy"]);
  f.aggression = numberIn(o["aggression"], 0, 1);
  f.seed = static_cast<uint64_t>(integerIn(o["seed"], 0, 9007199254740991));
  EnergyOptions e;
  e.weighting = f.weighting;
  e.fidelity = f.fidelity;
  e.orthogonality = f.orthogonality;
  e.functional = f.functional;
  e.w = f.w;
  e.fidEta = finiteNumber(o["fidEta"]);
  e.cOrth = finiteNumber(o["cOrth"]);
  c.uniforms = drawsOf(o["drawsUniform"]);
  c.normals = drawsOf(o["drawsNormal"]);
  if (start.p < start.k && stiefel(f.retraction.type))
    throwRangeJs(env, "Expected rows ≥ cols (p ≥ k) for a Stiefel retraction but received " + shapeText(start.p, start.k));
  const double dp = static_cast<double>(start.p), dk = static_cast<double>(start.k);
  // inputs, the gradient, a trial point per candidate and the VJP
  checkMemory(env, float64Bytes({1}) * (8 * dp * dk + 4 * dk * dk + retractionVjpDoubles(dp, dk, f.retraction.nsIterations)),
              [&] { return std::string("the learning-rate estimate at Y0 (" + shapeText(start.p, start.k) + ")"); });
  StartAndTarget in = takeStart(env, start);
  takeDraws(env, c);
  LrEstimate r = guarded(env, [&] {
    Random rng(f.seed);
    NsaFlowOptions opts = f;
    if (c.hasDraws) opts.draws = &c.draws;
    return estimateFlowLearningRate(in.Y0.data(), in.X0.data(), in.p, in.k, opts, e, rng);
  });
  return lrEstimateObject(env, r);
}

// (optimizer, lookaheadBase, rows, cols, x0, grads T×n, lrs T) → Float64Array T×n of the parameter
// after each step: the optimizers on their own, for tests and for custom loops.
Napi::Value OptimizerSteps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OptimizerSpec spec;
  const In name = arg(info, 0, "optimizer");
  spec.kind = optimizerOf(name);
  if (spec.kind == OptimizerKind::Lbfgs)
    throwRangeJs(env, "Expected a gradient-step optimizer for optimizer but received " + describe(name.value));
  spec.base = optimizerOf(arg(info, 1, "lookaheadBase"));
  const std::size_t rows = dimension(arg(info, 2, "rows")), cols = dimension(arg(info, 3, "cols"));
  const std::size_t n = product(env, {rows, cols}, "x0");
  TypedIn x0in = float64(arg(info, 4, "x0"), n, "rows·cols");
  TypedIn lrsIn = float64(arg(info, 6, "lrs"));
  const std::size_t T = lrsIn.length;
  TypedIn gradsIn = float64(arg(info, 5, "grads"), product(env, {T, n}, "grads"), "lrs.length·rows·cols");
  const double dn = static_cast<double>(n), dT = static_cast<double>(T);
  // the parameter, every step's copy (C++ and JS) and the optimizer's state
  checkMemory(env, float64Bytes({1}) * (dn + 2 * dT * dn + optimizerDoubles(spec, dn)),
              [&] { return std::string("the optimizer steps (" + std::to_string(T) + " steps of " + std::to_string(n) + " values)"); });
  Doubles x0 = doubles(x0in), lrs = doubles(lrsIn), grads = doubles(gradsIn);
  requireFinite(env, x0.data(), n, "x0");
  requireFinite(env, lrs.data(), T, "lrs");
  requireFinite(env, grads.data(), grads.size(), "grads");
  std::vector<double> x(x0.data(), x0.data() + n), out(T * n);
  guarded(env, [&] {
    auto opt = makeOptimizer(spec, rows, cols, T > 0 ? lrs[0] : 1e-3);
    for (std::size_t t = 0; t < T; ++t) {
      opt->step(x.data(), grads.data() + t * n, lrs[t]);
      std::copy(x.begin(), x.end(), out.begin() + static_cast<std::ptrdiff_t>(t * n));
    }
  });
  return newFloat64Array(env, out, "the optimizer steps");
}

const Export kNsaFlow[] = {
    {"flowEnergy", FlowEnergy},
    {"flowEnergyGradient", FlowEnergyGradient},
    {"retractVjp", RetractVjp},
    {"nsaFlowSync", NsaFlowSync},
    {"nsaFlowAsync", NsaFlowAsync},
    {"estimateLearningRate", EstimateLearningRate},
    {"optimizerSteps", OptimizerSteps},
};

void registerNsaFlow(Napi::Env env, Napi::Object exports) { exportFunctions(env, exports, kNsaFlow); }

}  // namespace

NSA_REGISTER(registerNsaFlow);

}  // namespace nsa::addon
