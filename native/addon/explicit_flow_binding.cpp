// Bindings of the explicit NSA-Flow (native/kernels/explicit_flow.hpp). lib/nsa-flow-explicit/ is the
// typed surface that validates first; here every option is re-checked (args.hpp) so that calling the
// raw binding with garbage throws instead of crashing.
//   explicitFlow(Y0, X0 | null, p, k, options) → result
//   explicitFlowAsync(Y0, X0 | null, p, k, options, cancelToken, onProgress, intervalMs) → Promise<result>
#include <map>

#include "../kernels/explicit_flow.hpp"
#include "async_job.hpp"
#include "common.hpp"
#include "flow_args.hpp"
#include "names.hpp"

namespace nsa::addon {

namespace {

struct Settings {
  ExplicitFlowOptions flow;
  OptimizerSpec optimizer;
};

// Every field is required (its default lives in lib/nsa-flow-explicit's spec); read once each.
Settings readOptions(const In& options) {
  const Fields o(options, {"w", "retraction", "nsIterations", "polarMethod", "nonnegativity", "weighting", "optimizer",
                           "lookaheadBase", "orthogonalityReference", "rescale", "projectFullGradient", "learningRate",
                           "maxIterations", "tolerance", "windowSize", "recordEvery", "maxBacktracks", "seed", "threads",
                           "orthogonality"});
  static const std::map<std::string, Nonnegativity> nonneg = {{"hard", Nonnegativity::Hard},
                                                              {"none", Nonnegativity::None}};
  static const std::map<std::string, FlowWeighting> weightings = {{"reference", FlowWeighting::Reference},
                                                                  {"balanced", FlowWeighting::Balanced},
                                                                  {"energy", FlowWeighting::Energy}};
  static const std::map<std::string, OrthogonalityFunctional> functionals = {
      {"gram", OrthogonalityFunctional::Gram},
      {"offDiagonal", OrthogonalityFunctional::OffDiagonal},
      {"meanCos2", OrthogonalityFunctional::MeanCos2}};
  Settings settings;
  ExplicitFlowOptions& r = settings.flow;
  r.w = numberIn(o["w"], 0, 1);
  r.retraction.type = oneOf(o["retraction"], retractionNames());
  r.retraction.nsIterations = intIn(o["nsIterations"], 0, 10000);
  r.retraction.polarMethod = oneOf(o["polarMethod"], polarMethodNames());
  r.nonnegativity = oneOf(o["nonnegativity"], nonneg);
  r.weighting = oneOf(o["weighting"], weightings);
  r.orthogonality = oneOf(o["orthogonality"], functionals);
  settings.optimizer.kind = optimizerOf(o["optimizer"]);
  settings.optimizer.base = optimizerOf(o["lookaheadBase"]);
  if (settings.optimizer.base == OptimizerKind::Lookahead || settings.optimizer.base == OptimizerKind::Lbfgs)
    throwRangeJs(options.value.Env(), "Expected a gradient-step optimizer for " + o["lookaheadBase"].name + " but received " +
                                          describe(o["lookaheadBase"].value));
  r.orthogonalityReference = numberIn(o["orthogonalityReference"], 0, 1e300);
  r.rescale = boolean(o["rescale"]);
  r.projectFullGradient = boolean(o["projectFullGradient"]);
  r.learningRate = numberIn(o["learningRate"], 0, 1e300);
  if (!(r.learningRate > 0))
    throwRangeJs(options.value.Env(), "Expected a number > 0 for " + o["learningRate"].name + " but received 0");
  r.maxIterations = intIn(o["maxIterations"], 0, 100000000);
  r.tolerance = numberIn(o["tolerance"], 0, 1e300);
  r.windowSize = intIn(o["windowSize"], 2, 1000000);
  r.recordEvery = intIn(o["recordEvery"], 1, 100000000);
  r.maxBacktracks = intIn(o["maxBacktracks"], 0, 1000);
  r.seed = static_cast<uint64_t>(integerIn(o["seed"], 0, 9007199254740991));
  r.threads = intIn(o["threads"], 0, 1024);
  return settings;
}

using Inputs = StartAndTarget;

// Reads (Y0, X0 | null, p, k, options), checks the memory of the run, then copies the inputs.
std::pair<Inputs, Settings> readCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const FlowStart start = flowStart(info);
  Settings s = readOptions(arg(info, 4, "options"));
  const ExplicitFlowOptions& f = s.flow;
  const double dp = static_cast<double>(start.p), dk = static_cast<double>(start.k), n = dp * dk;
  const double threads = f.threads > 0 ? f.threads : 64;  // 0: as many as BLAS uses (at most 64)
  const double records = static_cast<double>(f.maxIterations) / f.recordEvery + 2;
  const double stateN = s.optimizer.kind == OptimizerKind::Lbfgs ? 208 : 16;
  // copies of Y0 and X0, the iterate pool, the results (C++ and JS), the retraction's blocks and
  // Grams, per-thread k×k partial sums, the optimizer's state, the window and the traces
  checkMemory(env,
              float64Bytes({1}) * ((16 + stateN) * n + 12 * dk * dk + threads * (2 * dk * dk + 4) + f.windowSize + 14 * records),
                  [&] { return std::string("the explicit NSA-Flow on Y0 (" + std::to_string(start.p) + "×" + std::to_string(start.k) + ")"); });
  return {takeStart(env, start), s};
}

Napi::Object toJs(Napi::Env env, const ExplicitFlowResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("Y", newFloat64Array(env, r.Y.data(), r.Y.size()));
  o.Set("target", newFloat64Array(env, r.target.data(), r.target.size()));
  o.Set("bestIteration", Napi::Number::New(env, r.bestIteration));
  o.Set("bestEnergy", Napi::Number::New(env, r.bestEnergy));
  o.Set("startEnergy", Napi::Number::New(env, r.startEnergy));
  o.Set("iterations", Napi::Number::New(env, r.iterations));
  o.Set("acceptedSteps", Napi::Number::New(env, r.acceptedSteps));
  o.Set("stopReason", Napi::String::New(env, stopReasonName(r.stopReason)));
  o.Set("certificate", Napi::Number::New(env, r.certificate));
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
  Napi::Object summary = Napi::Object::New(env);
  summary.Set("zeros", Napi::Number::New(env, r.summary.zeros));
  summary.Set("distance2", Napi::Number::New(env, r.summary.distance2));
  summary.Set("target2", Napi::Number::New(env, r.summary.target2));
  summary.Set("defect", Napi::Number::New(env, r.summary.defect));
  summary.Set("finite", Napi::Boolean::New(env, r.summary.finite));
  o.Set("summary", summary);
  return o;
}

// The optimizer's state is allocated here, inside the (guarded or worker-thread) run.
void run(Inputs& in, const Settings& s, Monitor& monitor, ExplicitFlowResult& r) {
  std::unique_ptr<Stepper> step = makeStepper(s.optimizer, in.p, in.k, s.flow.learningRate);
  explicitFlow(std::move(in.Y0), std::move(in.X0), in.p, in.k, s.flow, *step, monitor, r);
}

Napi::Value ExplicitFlow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto call = readCall(info);
  Inputs& in = call.first;
  const Settings& s = call.second;
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
  auto call = readCall(info);
  Inputs& in = call.first;
  Settings& s = call.second;
  AsyncArgs a = asyncArgs(info, 5);
  return startJob(env, std::make_unique<ExplicitFlowJob>(std::move(in), std::move(s)), std::move(a));
}

const Export kExplicitFlow[] = {{"explicitFlow", ExplicitFlow}, {"explicitFlowAsync", ExplicitFlowAsync}};

void registerExplicitFlow(Napi::Env env, Napi::Object exports) { exportFunctions(env, exports, kExplicitFlow); }

}  // namespace

NSA_REGISTER(registerExplicitFlow);

}  // namespace nsa::addon
