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
#include "names.hpp"

namespace nsa::addon {

namespace {

const std::map<std::string, FidelityType> kFidelity = {
    {"basic", FidelityType::Basic}, {"scaleInvariant", FidelityType::ScaleInvariant}, {"symmetric", FidelityType::Symmetric}};
const std::map<std::string, OrthogonalityType> kOrthogonality = {
    {"basic", OrthogonalityType::Basic}, {"scaleInvariant", OrthogonalityType::ScaleInvariant}};

double unitArg(const Napi::CallbackInfo& info, std::size_t i, const char* what) {
  const double v = numberArg(info, i, what);
  if (!(v >= 0.0 && v <= 1.0)) throwRangeJs(info.Env(), std::string("Expected a number in [0, 1] for ") + what);
  return v;
}

double finiteArg(const Napi::CallbackInfo& info, std::size_t i, const char* what) {
  const double v = numberArg(info, i, what);
  if (!std::isfinite(v)) throwRangeJs(info.Env(), std::string("Expected a finite number for ") + what);
  return v;
}

// (fidelity, orthogonality, w, fidEta, cOrth) from argument i on.
EnergyOptions energyArgs(const Napi::CallbackInfo& info, std::size_t i) {
  EnergyOptions o;
  o.fidelity = enumArg(info, i, "fidelity type", kFidelity);
  o.orthogonality = enumArg(info, i + 1, "orthogonality type", kOrthogonality);
  o.w = unitArg(info, i + 2, "w");
  o.fidEta = finiteArg(info, i + 3, "fidEta");
  o.cOrth = finiteArg(info, i + 4, "cOrth");
  return o;
}

// (type, w, nsIterations, nonnegativity) from argument i on.
struct MapArgs {
  RetractionOptions retraction;
  Nonnegativity nonneg;
};
MapArgs mapArgs(const Napi::CallbackInfo& info, std::size_t i, std::size_t p, std::size_t k) {
  MapArgs a;
  a.retraction.type = enumArg(info, i, "retraction type", retractionNames());
  a.retraction.w = unitArg(info, i + 1, "w");
  a.retraction.nsIterations = intArg(info, i + 2, "nsIterations", 0, 100000);
  a.nonneg = enumArg(info, i + 3, "non-negativity", nonNegativityNames());
  if (p < k && a.retraction.type != RetractionType::None && a.retraction.type != RetractionType::Normalize)
    throwRangeJs(info.Env(), "Expected rows ≥ cols (p ≥ k) for a Stiefel retraction");
  return a;
}

Napi::Object energyObject(Napi::Env env, const EnergyValue& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("fidelity", Napi::Number::New(env, e.fidelity));
  o.Set("orthogonality", Napi::Number::New(env, e.orthogonality));
  o.Set("total", Napi::Number::New(env, e.total));
  return o;
}

// (Y, X0, B, p, k, fidelity, orthogonality, w, fidEta, cOrth) → {fidelity, orthogonality, total};
// B = 0 means one matrix.
Napi::Value FlowEnergy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t B = sizeArg(info, 2, "batch", 0);
  const std::size_t p = sizeArg(info, 3, "rows"), k = sizeArg(info, 4, "cols");
  const std::size_t n = checkedProduct(env, {B == 0 ? 1 : B, p, k}, "Y");
  Napi::Float64Array Y = float64Arg(info, 0, "Y", n);
  Napi::Float64Array X0 = float64Arg(info, 1, "X0", n);
  const EnergyOptions o = energyArgs(info, 5);
  Workspace ws;
  const EnergyValue e = B == 0 ? energy(Y.Data(), X0.Data(), p, k, o, nullptr, ws)
                               : energyBatch(Y.Data(), X0.Data(), B, p, k, o, ws);
  return energyObject(env, e);
}

// (Z, X0, p, k, type, w, nsIterations, nonneg, fidelity, orthogonality, wEnergy, fidEta, cOrth)
//   → {fidelity, orthogonality, total, Y, gradient}: E(nonneg(retract(Z))) and ∂E/∂Z.
Napi::Value FlowEnergyGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t p = sizeArg(info, 2, "rows"), k = sizeArg(info, 3, "cols");
  const std::size_t n = checkedProduct(env, {p, k}, "Z");
  Napi::Float64Array Z = float64Arg(info, 0, "Z", n);
  Napi::Float64Array X0 = float64Arg(info, 1, "X0", n);
  const MapArgs m = mapArgs(info, 4, p, k);
  const EnergyOptions o = energyArgs(info, 8);
  requireFinite(env, Z, "Z");
  std::vector<double> Y(n), GY(n), GZ(n);
  EnergyValue e;
  guarded(env, [&] {
    DifferentiableRetraction map(p, k, m.retraction, m.nonneg);
    Workspace ws;
    map.forward(Z.Data(), Y.data());
    e = energy(Y.data(), X0.Data(), p, k, o, GY.data(), ws);
    map.backward(GY.data(), GZ.data());
  });
  Napi::Object out = energyObject(env, e);
  out.Set("Y", newFloat64Array(env, Y.data(), n));
  out.Set("gradient", newFloat64Array(env, GZ.data(), n));
  return out;
}

// (Z, G, p, k, type, w, nsIterations, nonneg) → {Y, gradient}: Y = nonneg(retract(Z)) and the
// vector–Jacobian product (∂Y/∂Z)ᵀG.
Napi::Value RetractVjp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t p = sizeArg(info, 2, "rows"), k = sizeArg(info, 3, "cols");
  const std::size_t n = checkedProduct(env, {p, k}, "Z");
  Napi::Float64Array Z = float64Arg(info, 0, "Z", n);
  Napi::Float64Array G = float64Arg(info, 1, "G", n);
  const MapArgs m = mapArgs(info, 4, p, k);
  requireFinite(env, Z, "Z");
  std::vector<double> Y(n), GZ(n);
  guarded(env, [&] {
    DifferentiableRetraction map(p, k, m.retraction, m.nonneg);
    map.forward(Z.Data(), Y.data());
    map.backward(G.Data(), GZ.data());
  });
  Napi::Object out = Napi::Object::New(env);
  out.Set("Y", newFloat64Array(env, Y.data(), n));
  out.Set("gradient", newFloat64Array(env, GZ.data(), n));
  return out;
}

// ---- options objects ---------------------------------------------------------------------------

double numberField(Napi::Object o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throwType(o.Env(), std::string("Expected a number for ") + key);
  return v.As<Napi::Number>().DoubleValue();
}
int intField(Napi::Object o, const char* key, int fallback, int min, int max) {
  const double v = numberField(o, key, fallback);
  if (!(v >= min && v <= max) || v != std::floor(v))
    throwRangeJs(o.Env(), std::string("Expected an integer in [") + std::to_string(min) + ", " + std::to_string(max) + "] for " + key);
  return static_cast<int>(v);
}
std::string stringField(Napi::Object o, const char* key, const char* fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) throwType(o.Env(), std::string("Expected a string for ") + key);
  return v.As<Napi::String>().Utf8Value();
}
template <class E>
E namedField(Napi::Object o, const char* key, const char* fallback, const std::map<std::string, E>& names) {
  return lookupName(o.Env(), stringField(o, key, fallback), key, names);
}
OptimizerKind optimizerField(Napi::Object o, const char* key, const char* fallback) {
  const std::string s = stringField(o, key, fallback);
  OptimizerKind kind;
  if (!optimizerKindFromName(s, &kind)) throwRangeJs(o.Env(), std::string("Unknown optimizer '") + s + "' for " + key);
  return kind;
}
std::vector<double> arrayField(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throwType(o.Env(), std::string("Expected a Float64Array for ") + key);
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  return std::vector<double>(a.Data(), a.Data() + a.ElementLength());
}

// The solver's flat options object (lib/nsa-flow/solver.ts builds it; names as the public options).
struct FlowConfig {
  NsaFlowOptions options;
  LrDraws draws;
  bool hasDraws = false;
};
FlowConfig flowConfig(Napi::Env env, Napi::Value value, std::size_t p, std::size_t k) {
  if (!value.IsObject()) throwType(env, "Expected an options object");
  Napi::Object o = value.As<Napi::Object>();
  FlowConfig c;
  NsaFlowOptions& f = c.options;
  f.retraction.type = namedField(o, "retraction", "softPolar", retractionNames());
  f.retraction.nsIterations = intField(o, "nsIterations", 5, 0, 100000);
  f.nonnegativity = namedField(o, "nonnegativity", "hard", nonNegativityNames());
  f.fidelity = namedField(o, "fidelityType", "scaleInvariant", kFidelity);
  f.orthogonality = namedField(o, "orthogonalityType", "scaleInvariant", kOrthogonality);
  f.w = numberField(o, "w", 0.5);
  if (!(f.w >= 0 && f.w <= 1)) throwRangeJs(env, "Expected w in [0, 1]");
  f.optimizer.kind = optimizerField(o, "optimizer", "asgd");
  f.optimizer.base = optimizerField(o, "lookaheadBase", "adam");
  f.optimizer.lookaheadK = intField(o, "lookaheadK", 5, 1, 1000000);
  f.optimizer.lookaheadAlpha = numberField(o, "lookaheadAlpha", 0.5);
  f.learningRate = numberField(o, "learningRate", 0);
  if (!(f.learningRate >= 0) || !std::isfinite(f.learningRate)) throwRangeJs(env, "Expected learningRate > 0");
  const std::string strategy = stringField(o, "lrStrategy", "");
  f.estimateLr = !strategy.empty();
  if (f.estimateLr && !lrStrategyFromName(strategy, &f.strategy)) throwRangeJs(env, "Unknown lrStrategy '" + strategy + "'");
  f.aggression = numberField(o, "aggression", 0.5);
  if (!(f.aggression >= 0 && f.aggression <= 1)) throwRangeJs(env, "Expected aggression in [0, 1]");
  f.maxIterations = intField(o, "maxIterations", 500, 0, 100000000);
  f.tolerance = numberField(o, "tolerance", 1e-4);
  if (std::isnan(f.tolerance)) throwRangeJs(env, "Expected a number for tolerance");
  f.windowSize = intField(o, "windowSize", 10, 2, 100000000);
  f.recordEvery = intField(o, "recordEvery", 1, 1, 100000000);
  f.warmupIterations = intField(o, "warmupIterations", 0, 0, 100000000);
  f.scheduler = o.Get("lrScheduler").ToBoolean();
  f.schedulerPatience = intField(o, "lrSchedulerPatience", 10, 0, 100000000);
  f.schedulerFactor = numberField(o, "lrSchedulerFactor", 0.5);
  if (!(f.schedulerFactor > 0 && f.schedulerFactor < 1)) throwRangeJs(env, "Expected lrSchedulerFactor in (0, 1)");
  f.clipNorm = numberField(o, "clipNorm", 10);
  if (!(f.clipNorm >= 0)) throwRangeJs(env, "Expected clipNorm ≥ 0");
  const double seed = numberField(o, "seed", 42);
  if (!(seed >= 0 && seed <= 9007199254740991.0) || seed != std::floor(seed)) throwRangeJs(env, "Expected a non-negative integer seed");
  f.seed = static_cast<uint64_t>(seed);
  c.draws.uniforms = arrayField(o, "drawsUniform");
  c.draws.normals = arrayField(o, "drawsNormal");
  c.hasDraws = !c.draws.uniforms.empty() || !c.draws.normals.empty();
  if (p < k && f.retraction.type != RetractionType::None && f.retraction.type != RetractionType::Normalize)
    throwRangeJs(env, "Expected rows ≥ cols (p ≥ k) for a Stiefel retraction");
  return c;
}

Napi::Object lrEstimateObject(Napi::Env env, const LrEstimate& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("bestLr", Napi::Number::New(env, e.bestLr));
  o.Set("bestEnergy", Napi::Number::New(env, e.bestEnergy));
  o.Set("candidates", newFloat64Array(env, e.candidates.data(), e.candidates.size()));
  o.Set("losses", newFloat64Array(env, e.losses.data(), e.losses.size()));
  o.Set("relChanges", newFloat64Array(env, e.relChanges.data(), e.relChanges.size()));
  Napi::Object d = Napi::Object::New(env);
  d.Set("uniform", newFloat64Array(env, e.drawsUsed.uniforms.data(), e.drawsUsed.uniforms.size()));
  d.Set("normal", newFloat64Array(env, e.drawsUsed.normals.data(), e.drawsUsed.normals.size()));
  o.Set("draws", d);
  return o;
}

const char* stopReasonName(StopReason r) {
  switch (r) {
    case StopReason::Converged: return "converged";
    case StopReason::NonFinite: return "nonFinite";
    case StopReason::MaxIterations:
    default: return "maxIterations";
  }
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
  o.Set("fidEta", Napi::Number::New(env, r.fidEta));
  o.Set("cOrth", Napi::Number::New(env, r.cOrth));
  o.Set("scale", Napi::Number::New(env, r.scale));
  o.Set("lrEstimate", estimated ? Napi::Value(lrEstimateObject(env, r.lrEstimate)) : env.Null());
  return o;
}

// Inputs of a solve: (Y0, X0 | null, p, k, options).
struct FlowInputs : StartAndTarget {
  FlowConfig config;
};
FlowInputs flowInputs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FlowInputs in;
  static_cast<StartAndTarget&>(in) = startAndTarget(info);
  in.config = flowConfig(env, info.Length() > 4 ? info[4] : env.Undefined(), in.p, in.k);
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

// (Y0, X0, p, k, options with fidEta, cOrth) → the estimator's result at Y0 (no scaling, no jitter).
Napi::Value EstimateLearningRate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FlowInputs in = flowInputs(info);
  if (!in.hasX0) throwType(env, "Expected a Float64Array for X0");
  Napi::Object o = info[4].As<Napi::Object>();
  EnergyOptions e;
  e.fidelity = in.config.options.fidelity;
  e.orthogonality = in.config.options.orthogonality;
  e.w = in.config.options.w;
  e.fidEta = numberField(o, "fidEta", 1.0);
  e.cOrth = numberField(o, "cOrth", 1.0);
  if (!in.config.options.estimateLr) throwRangeJs(env, "Expected an lrStrategy");
  LrEstimate r = guarded(env, [&] {
    Random rng(in.config.options.seed);
    NsaFlowOptions opts = in.config.options;
    if (in.config.hasDraws) opts.draws = &in.config.draws;
    return estimateFlowLearningRate(in.Y0.data(), in.X0.data(), in.p, in.k, opts, e, rng);
  });
  return lrEstimateObject(env, r);
}

// (optimizer, lookaheadBase, rows, cols, x0, grads T×n, lrs T) → Float64Array T×n of the parameter
// after each step: the optimizers on their own, for tests and for custom loops.
Napi::Value OptimizerSteps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OptimizerSpec spec;
  const std::string name = stringArg(info, 0, "optimizer");
  const std::string base = stringArg(info, 1, "lookahead base");
  if (!optimizerKindFromName(name, &spec.kind) || spec.kind == OptimizerKind::Lbfgs)
    throwRangeJs(env, "Unknown gradient-step optimizer '" + name + "'");
  if (!optimizerKindFromName(base, &spec.base)) throwRangeJs(env, "Unknown optimizer '" + base + "'");
  const std::size_t rows = sizeArg(info, 2, "rows"), cols = sizeArg(info, 3, "cols");
  const std::size_t n = checkedProduct(env, {rows, cols}, "x0");
  Napi::Float64Array x0 = float64Arg(info, 4, "x0", n);
  if (info.Length() < 7 || !info[6].IsTypedArray()) throwType(env, "Expected a Float64Array for lrs");
  Napi::Float64Array lrs = info[6].As<Napi::Float64Array>();
  const std::size_t T = lrs.ElementLength();
  Napi::Float64Array grads = float64Arg(info, 5, "grads", checkedProduct(env, {T, n}, "grads"));
  std::vector<double> x(x0.Data(), x0.Data() + n), out(T * n);
  guarded(env, [&] {
    auto opt = makeOptimizer(spec, rows, cols, T > 0 ? lrs[0] : 1e-3);
    for (std::size_t t = 0; t < T; ++t) {
      opt->step(x.data(), grads.Data() + t * n, lrs[t]);
      std::copy(x.begin(), x.end(), out.begin() + static_cast<std::ptrdiff_t>(t * n));
    }
  });
  return newFloat64Array(env, out.data(), out.size());
}

void registerNsaFlow(Napi::Env env, Napi::Object exports) {
  exports.Set("flowEnergy", Napi::Function::New(env, FlowEnergy, "flowEnergy"));
  exports.Set("flowEnergyGradient", Napi::Function::New(env, FlowEnergyGradient, "flowEnergyGradient"));
  exports.Set("retractVjp", Napi::Function::New(env, RetractVjp, "retractVjp"));
  exports.Set("nsaFlowSync", Napi::Function::New(env, NsaFlowSync, "nsaFlowSync"));
  exports.Set("nsaFlowAsync", Napi::Function::New(env, NsaFlowAsync, "nsaFlowAsync"));
  exports.Set("estimateLearningRate", Napi::Function::New(env, EstimateLearningRate, "estimateLearningRate"));
  exports.Set("optimizerSteps", Napi::Function::New(env, OptimizerSteps, "optimizerSteps"));
}

}  // namespace

NSA_REGISTER(registerNsaFlow);

}  // namespace nsa::addon
