// Bindings of the explicit NSA-Flow (native/kernels/explicit_flow.hpp). lib/nsa-flow-explicit/ is the
// typed surface that validates first; here every option is re-checked cheaply so that calling the raw
// binding with garbage throws instead of crashing.
//   explicitFlow(Y0, X0 | null, p, k, options) → result
//   explicitFlowAsync(Y0, X0 | null, p, k, options, cancelToken, onProgress, intervalMs) → Promise<result>
#include <map>

#include "../kernels/explicit_flow.hpp"
#include "async_job.hpp"
#include "common.hpp"
#include "names.hpp"

namespace nsa::addon {

namespace {

Napi::Value field(const Napi::Object& o, const char* name) {
  if (!o.Has(name)) throwType(o.Env(), std::string("Expected options.") + name);
  return o.Get(name);
}

double numberField(const Napi::Object& o, const char* name, double lo, double hi) {
  Napi::Value v = field(o, name);
  if (!v.IsNumber()) throwType(o.Env(), std::string("Expected a number for options.") + name);
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!(x >= lo && x <= hi)) {
    throwRangeJs(o.Env(), std::string("Expected options.") + name + " in [" + std::to_string(lo) + ", " +
                              std::to_string(hi) + "] but received " + std::to_string(x));
  }
  return x;
}

int intField(const Napi::Object& o, const char* name, int lo, int hi) {
  const double x = numberField(o, name, lo, hi);
  if (x != std::floor(x)) throwRangeJs(o.Env(), std::string("Expected an integer for options.") + name);
  return static_cast<int>(x);
}

bool boolField(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsBoolean()) throwType(o.Env(), std::string("Expected a boolean for options.") + name);
  return v.As<Napi::Boolean>().Value();
}

template <class E>
E enumField(const Napi::Object& o, const char* name, const std::map<std::string, E>& names) {
  Napi::Value v = field(o, name);
  if (!v.IsString()) throwType(o.Env(), std::string("Expected a string for options.") + name);
  return lookupName(o.Env(), v.As<Napi::String>().Utf8Value(), (std::string("options.") + name).c_str(), names);
}

OptimizerKind optimizerField(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsString()) throwType(o.Env(), std::string("Expected a string for options.") + name);
  const std::string s = v.As<Napi::String>().Utf8Value();
  OptimizerKind kind;
  if (!optimizerKindFromName(s, &kind)) throwRangeJs(o.Env(), "Unknown optimizer '" + s + "' for options." + name);
  return kind;
}

struct Settings {
  ExplicitFlowOptions flow;
  OptimizerSpec optimizer;
};

Settings readOptions(const Napi::Value& v) {
  if (!v.IsObject()) throwType(v.Env(), "Expected an options object");
  const Napi::Object o = v.As<Napi::Object>();
  static const std::map<std::string, Nonnegativity> nonneg = {{"hard", Nonnegativity::Hard},
                                                              {"none", Nonnegativity::None}};
  static const std::map<std::string, FlowWeighting> weightings = {{"reference", FlowWeighting::Reference},
                                                                  {"balanced", FlowWeighting::Balanced}};
  Settings settings;
  ExplicitFlowOptions& r = settings.flow;
  r.w = numberField(o, "w", 0, 1);
  r.retraction.type = enumField(o, "retraction", retractionNames());
  r.retraction.nsIterations = intField(o, "nsIterations", 0, 10000);
  r.retraction.polarMethod = enumField(o, "polarMethod", polarMethodNames());
  r.nonnegativity = enumField(o, "nonnegativity", nonneg);
  r.weighting = enumField(o, "weighting", weightings);
  settings.optimizer.kind = optimizerField(o, "optimizer");
  settings.optimizer.base = optimizerField(o, "lookaheadBase");
  if (settings.optimizer.base == OptimizerKind::Lookahead || settings.optimizer.base == OptimizerKind::Lbfgs)
    throwRangeJs(o.Env(), "Expected a gradient-step optimizer for options.lookaheadBase");
  r.orthogonalityReference = numberField(o, "orthogonalityReference", 0, 1e300);
  r.rescale = boolField(o, "rescale");
  r.projectFullGradient = boolField(o, "projectFullGradient");
  r.learningRate = numberField(o, "learningRate", 0, 1e300);
  if (!(r.learningRate > 0)) throwRangeJs(o.Env(), "Expected options.learningRate > 0");
  r.maxIterations = intField(o, "maxIterations", 0, 100000000);
  r.tolerance = numberField(o, "tolerance", 0, 1e300);
  r.windowSize = intField(o, "windowSize", 2, 1000000);
  r.recordEvery = intField(o, "recordEvery", 1, 100000000);
  r.maxBacktracks = intField(o, "maxBacktracks", 0, 1000);
  r.seed = static_cast<uint64_t>(numberField(o, "seed", 0, 9007199254740991.0));
  r.threads = intField(o, "threads", 0, 1024);
  return settings;
}

using Inputs = StartAndTarget;

Napi::Object toJs(Napi::Env env, const ExplicitFlowResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("Y", newFloat64Array(env, r.Y.data(), r.Y.size()));
  o.Set("target", newFloat64Array(env, r.target.data(), r.target.size()));
  o.Set("bestIteration", Napi::Number::New(env, r.bestIteration));
  o.Set("bestEnergy", Napi::Number::New(env, r.bestEnergy));
  o.Set("startEnergy", Napi::Number::New(env, r.startEnergy));
  o.Set("iterations", Napi::Number::New(env, r.iterations));
  o.Set("stopReason", Napi::String::New(env, r.stopReason));
  o.Set("convergence", r.convergence.empty() ? env.Null() : Napi::String::New(env, r.convergence));
  o.Set("fidEta", Napi::Number::New(env, r.fidEta));
  o.Set("cOrth", Napi::Number::New(env, r.cOrth));
  o.Set("orthogonalityReference", Napi::Number::New(env, r.orthogonalityReference));
  o.Set("scale", Napi::Number::New(env, r.scale));
  o.Set("finalLearningRate", Napi::Number::New(env, r.finalLearningRate));
  o.Set("jittered", Napi::Boolean::New(env, r.jittered));
  o.Set("threads", Napi::Number::New(env, r.threads));
  o.Set("retractionFallbacks", Napi::Number::New(env, r.retractionFallbacks));
  Napi::Object t = Napi::Object::New(env);
  auto col = [&](const char* name, const std::vector<double>& v) { t.Set(name, newFloat64Array(env, v.data(), v.size())); };
  col("iteration", r.traces.iteration);
  col("timeMs", r.traces.timeMs);
  col("fidelity", r.traces.fidelity);
  col("orthogonality", r.traces.orthogonality);
  col("total", r.traces.total);
  col("learningRate", r.traces.learningRate);
  col("backtracks", r.traces.backtracks);
  o.Set("traces", t);
  return o;
}

// The optimizer's state is allocated here, inside the (guarded or worker-thread) run.
void run(Inputs& in, const Settings& s, Monitor& monitor, ExplicitFlowResult& r) {
  std::unique_ptr<Stepper> step = makeStepper(s.optimizer, in.p, in.k, s.flow.learningRate);
  explicitFlow(std::move(in.Y0), std::move(in.X0), in.p, in.k, s.flow, *step, monitor, r);
}

Napi::Value ExplicitFlow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Inputs in = startAndTarget(info);
  Settings s = readOptions(info.Length() > 4 ? info[4] : env.Undefined());
  ExplicitFlowResult r;
  guarded(env, [&] { run(in, s, silentMonitor(), r); });
  return toJs(env, r);
}

class ExplicitFlowJob : public Job {
 public:
  ExplicitFlowJob(Inputs in, Settings s) : in_(std::move(in)), s_(s) {}
  void execute(Monitor& monitor) override { run(in_, s_, monitor, r_); }
  Napi::Value result(Napi::Env env) override { return toJs(env, r_); }

 private:
  Inputs in_;
  Settings s_;
  ExplicitFlowResult r_;
};

Napi::Value ExplicitFlowAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Inputs in = startAndTarget(info);
  Settings s = readOptions(info.Length() > 4 ? info[4] : env.Undefined());
  AsyncArgs a = asyncArgs(info, 5);
  return startJob(env, std::make_unique<ExplicitFlowJob>(std::move(in), s), std::move(a));
}

void registerExplicitFlow(Napi::Env env, Napi::Object exports) {
  exports.Set("explicitFlow", Napi::Function::New(env, ExplicitFlow, "explicitFlow"));
  exports.Set("explicitFlowAsync", Napi::Function::New(env, ExplicitFlowAsync, "explicitFlowAsync"));
}

}  // namespace

NSA_REGISTER(registerExplicitFlow);

}  // namespace nsa::addon
