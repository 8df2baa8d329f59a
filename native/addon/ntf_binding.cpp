// Bindings of the NTF solvers (native/kernels/ntf.hpp): Stratified-NTF and non-negative CP, each sync
// and as an async Job. Raw signatures are flat; lib/factorization/*.ts validate first.
//
//   stratifiedNtf(strata[], samples[], dims[], strataRanks[], rank, options, init | undefined)
//   ntf(T, shape, rank, options, factors[] | undefined)          (factors in tensorly layout, dₘ × r)
// The async forms take (cancelToken, onProgress, intervalMs) after these.
#include "../kernels/ntf.hpp"
#include "async_job.hpp"
#include "tensor_args.hpp"

namespace nsa::addon {

namespace {

const char* stopName(StopReason r) { return r == StopReason::Tolerance ? "tolerance" : "maxIterations"; }

Napi::Object traceObject(Napi::Env env, const LossTrace& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("iteration", newFloat64Array(env, t.iteration.data(), t.iteration.size()));
  o.Set("loss", newFloat64Array(env, t.loss.data(), t.loss.size()));
  return o;
}

// ---- Stratified-NTF ---------------------------------------------------------------------------------

// Owns copies of the strata and the initial state, so that the caller's buffers are free to change.
struct StratifiedNtfCall {
  std::vector<std::vector<double>> data;
  StratifiedNtfProblem problem;
  StratifiedNtfOptions options;
  StratifiedNtfState state;
  StratifiedNtfResult result;
};

// `copy`: async jobs own a copy of the strata; a sync call reads the caller's buffers in place.
std::unique_ptr<StratifiedNtfCall> readStratifiedNtf(const Napi::CallbackInfo& info, bool copy) {
  Napi::Env env = info.Env();
  auto call = std::make_unique<StratifiedNtfCall>();
  if (info.Length() < 1 || !info[0].IsArray()) throwType(env, "Expected an array of Float64Arrays for strata");
  const std::size_t S = info[0].As<Napi::Array>().Length();
  if (S < 1) throwRangeJs(env, "Expected at least one stratum");
  const Shape samples = sizeListArg(info, 1, "samples");
  if (samples.size() != S) throwRangeJs(env, "Expected one sample count per stratum");
  const Shape dims = shapeArg(info, 2, "dims");
  if (dims.size() + 1 > kMaxTensorOrder) throwRangeJs(env, "Expected fewer dimensions for dims");
  const Shape ranks = sizeListArg(info, 3, "strataRanks");
  if (ranks.size() != S) throwRangeJs(env, "Expected one strata rank per stratum");
  const std::size_t r = sizeArg(info, 4, "rank");
  Napi::Object o = objectArg(info, 5, "options");
  const std::size_t F = shapeSize(dims);
  const double rd = static_cast<double>(r);
  StratifiedNtfOptions& opt = call->options;
  opt.strataRank = ranks;
  opt.rank = r;
  opt.maxIterations = intField(o, "maxIterations", 0, 100000000);
  opt.vScaling = intField(o, "vScaling", 1, 1000000);
  opt.tv = boolField(o, "tv");
  opt.tvReg = opt.tv ? numberField(o, "tvReg", 0, 1.7976931348623157e308) : 0.0;
  opt.epsilon = numberField(o, "epsilon", 0, 1.7976931348623157e308);
  opt.tolerance = numberField(o, "tolerance", 0, 1.7976931348623157e308);
  opt.lossEvery = intField(o, "lossEvery", 1, 100000000);
  opt.recordStages = boolField(o, "recordStages");
  Napi::Array strata = info[0].As<Napi::Array>();
  call->data.resize(S);
  for (uint32_t s = 0; s < S; ++s) {
    const double size = static_cast<double>(samples[s]) * static_cast<double>(F);
    // The solver's largest per-stratum intermediates are r × (nₛ·F/d) and r × F.
    if (size > kMaxElements || rd * size > 64 * kMaxElements || rd * static_cast<double>(F) > kMaxElements)
      throwRangeJs(env, "The problem is too large: strata[" + std::to_string(s) + "] times the rank exceeds 2^38 elements");
    const std::string name = "strata[" + std::to_string(s) + "]";
    Napi::Float64Array A = float64Value(env, strata.Get(s), name, samples[s] * F);
    requireNonNegativeFinite(env, A.Data(), A.ElementLength(), name);
    if (copy) call->data[s].assign(A.Data(), A.Data() + A.ElementLength());
    call->problem.strata.push_back(copy ? call->data[s].data() : A.Data());
  }
  call->problem.samples = samples;
  call->problem.dims = dims;
  const std::size_t K = dims.size();
  const bool given = info.Length() > 6 && !info[6].IsUndefined() && !info[6].IsNull();
  if (!given) {
    const double seed = numberField(o, "seed", 0, 9007199254740991.0);
    stratifiedNtfRandomInit(call->problem, opt, static_cast<std::uint64_t>(seed), call->state);
    return call;
  }
  if (!info[6].IsObject()) throwType(env, "Expected an object {v, w, h} for init");
  Napi::Object init = info[6].As<Napi::Object>();
  auto list = [&](const char* key, std::size_t length) {
    Napi::Value v = init.Get(key);
    if (!v.IsArray()) throwType(env, std::string("Expected an array for init.") + key);
    Napi::Array a = v.As<Napi::Array>();
    if (a.Length() != length) throwRangeJs(env, std::string("Expected an array of length ") + std::to_string(length) + " for init." + key);
    return a;
  };
  auto copyOf = [&](Napi::Array a, uint32_t i, const std::string& what, std::size_t length) {
    Napi::Float64Array x = float64Value(env, a.Get(i), what, length);
    requireNonNegativeFinite(env, x.Data(), length, what);
    return std::vector<double>(x.Data(), x.Data() + length);
  };
  Napi::Array v = list("v", S * K), w = list("w", S), h = list("h", K);
  for (uint32_t s = 0; s < S; ++s)
    for (uint32_t t = 0; t < K; ++t)
      call->state.v.push_back(copyOf(v, s * static_cast<uint32_t>(K) + t, "init.v", ranks[s] * dims[t]));
  for (uint32_t s = 0; s < S; ++s) call->state.w.push_back(copyOf(w, s, "init.w", r * samples[s]));
  for (uint32_t t = 0; t < K; ++t) call->state.h.push_back(copyOf(h, t, "init.h", r * dims[t]));
  return call;
}

Napi::Object stateObject(Napi::Env env, const StratifiedNtfState& st) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("v", float64List(env, st.v));
  o.Set("w", float64List(env, st.w));
  o.Set("h", float64List(env, st.h));
  return o;
}

Napi::Value stratifiedNtfResult(Napi::Env env, const StratifiedNtfCall& call) {
  Napi::Object o = stateObject(env, call.state);
  o.Set("trace", traceObject(env, call.result.trace));
  o.Set("iterations", Napi::Number::New(env, call.result.iterations));
  o.Set("stopReason", Napi::String::New(env, stopName(call.result.stop)));
  o.Set("scratchDoubles", Napi::Number::New(env, static_cast<double>(call.result.scratchDoubles)));
  if (call.options.recordStages) {
    Napi::Array stages = Napi::Array::New(env, call.result.stages.size());
    for (std::size_t i = 0; i < call.result.stages.size(); ++i)
      stages.Set(static_cast<uint32_t>(i), stateObject(env, call.result.stages[i]));
    o.Set("stages", stages);
  }
  return o;
}

Napi::Value StratifiedNtf(const Napi::CallbackInfo& info) {
  auto call = readStratifiedNtf(info, false);
  guarded(info.Env(), [&] { stratifiedNtf(call->problem, call->options, call->state, call->result, silentMonitor()); });
  return stratifiedNtfResult(info.Env(), *call);
}

class StratifiedNtfJob : public Job {
 public:
  explicit StratifiedNtfJob(std::unique_ptr<StratifiedNtfCall> call) : call_(std::move(call)) {}
  void execute(Monitor& monitor) override {
    stratifiedNtf(call_->problem, call_->options, call_->state, call_->result, monitor);
  }
  Napi::Value result(Napi::Env env) override { return stratifiedNtfResult(env, *call_); }

 private:
  std::unique_ptr<StratifiedNtfCall> call_;
};

Napi::Value StratifiedNtfAsync(const Napi::CallbackInfo& info) {
  auto call = readStratifiedNtf(info, true);
  AsyncArgs a = asyncArgs(info, 7);
  return startJob(info.Env(), std::make_unique<StratifiedNtfJob>(std::move(call)), std::move(a));
}

// Same arguments as stratifiedNtf (init required) → the loss of that state.
Napi::Value StratifiedNtfLoss(const Napi::CallbackInfo& info) {
  if (info.Length() < 7 || info[6].IsUndefined()) throwType(info.Env(), "Expected an object {v, w, h} for init");
  auto call = readStratifiedNtf(info, false);
  const double loss = guarded(info.Env(), [&] { return stratifiedNtfLoss(call->problem, call->options, call->state); });
  return Napi::Number::New(info.Env(), loss);
}

// ---- NTF ---------------------------------------------------------------------------------------------

struct NtfCall {
  std::vector<double> data;
  Shape shape;
  NtfOptions options;
  std::vector<std::vector<double>> factors;  // rank-major
  NtfResult result;
};

std::unique_ptr<NtfCall> readNtf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto call = std::make_unique<NtfCall>();
  call->shape = shapeArg(info, 1, "shape", 2);
  Napi::Float64Array T = float64Arg(info, 0, "T", shapeSize(call->shape));
  requireNonNegativeFinite(env, T.Data(), T.ElementLength(), "T");
  const std::size_t r = sizeArg(info, 2, "rank");
  const Shape& shape = call->shape;
  const std::size_t first = shape[0] >= shape.back() ? 0 : shape.size() - 1;
  if (static_cast<double>(r) * static_cast<double>(shapeSize(shape) / shape[first]) > 64 * kMaxElements)
    throwRangeJs(env, "The problem is too large: the tensor times the rank exceeds 2^38 elements");
  Napi::Object o = objectArg(info, 3, "options");
  NtfOptions& opt = call->options;
  opt.rank = r;
  opt.maxIterations = intField(o, "maxIterations", 0, 100000000);
  const std::string solver = o.Get("solver").IsString() ? o.Get("solver").As<Napi::String>().Utf8Value() : "";
  if (solver == "mu") opt.solver = NtfSolver::MultiplicativeUpdates;
  else if (solver == "hals") opt.solver = NtfSolver::Hals;
  else throwRangeJs(env, "Expected 'mu' or 'hals' for options.solver");
  opt.epsilon = numberField(o, "epsilon", 0, 1.7976931348623157e308);
  opt.tolerance = numberField(o, "tolerance", 0, 1.7976931348623157e308);
  opt.lossEvery = intField(o, "lossEvery", 1, 100000000);
  call->data.assign(T.Data(), T.Data() + T.ElementLength());
  const bool given = info.Length() > 4 && !info[4].IsUndefined() && !info[4].IsNull();
  if (!given) {
    ntfRandomInit(shape, r, static_cast<std::uint64_t>(numberField(o, "seed", 0, 9007199254740991.0)), call->factors);
    return call;
  }
  Napi::Array a = arrayArg(info, 4, "factors", shape.size());
  call->factors.resize(shape.size());
  for (uint32_t m = 0; m < shape.size(); ++m) {
    const std::string what = "factors[" + std::to_string(m) + "]";
    Napi::Float64Array f = float64Value(env, a.Get(m), what, shape[m] * r);
    requireNonNegativeFinite(env, f.Data(), f.ElementLength(), what);
    call->factors[m].resize(shape[m] * r);
    transposeInto(f.Data(), shape[m], r, call->factors[m].data());
  }
  return call;
}

Napi::Value ntfResult(Napi::Env env, const NtfCall& call) {
  Napi::Object o = Napi::Object::New(env);
  const std::size_t r = call.options.rank;
  Napi::Array factors = Napi::Array::New(env, call.factors.size());
  for (std::size_t m = 0; m < call.factors.size(); ++m) {
    Napi::Float64Array f = Napi::Float64Array::New(env, call.factors[m].size());
    transposeInto(call.factors[m].data(), r, call.shape[m], f.Data());
    factors.Set(static_cast<uint32_t>(m), f);
  }
  o.Set("factors", factors);
  o.Set("trace", traceObject(env, call.result.trace));
  o.Set("iterations", Napi::Number::New(env, call.result.iterations));
  o.Set("stopReason", Napi::String::New(env, stopName(call.result.stop)));
  return o;
}

Napi::Value Ntf(const Napi::CallbackInfo& info) {
  auto call = readNtf(info);
  guarded(info.Env(), [&] { ntf(call->data.data(), call->shape, call->options, call->factors, call->result, silentMonitor()); });
  return ntfResult(info.Env(), *call);
}

class NtfJob : public Job {
 public:
  explicit NtfJob(std::unique_ptr<NtfCall> call) : call_(std::move(call)) {}
  void execute(Monitor& monitor) override {
    ntf(call_->data.data(), call_->shape, call_->options, call_->factors, call_->result, monitor);
  }
  Napi::Value result(Napi::Env env) override { return ntfResult(env, *call_); }

 private:
  std::unique_ptr<NtfCall> call_;
};

Napi::Value NtfAsync(const Napi::CallbackInfo& info) {
  auto call = readNtf(info);
  AsyncArgs a = asyncArgs(info, 5);
  return startJob(info.Env(), std::make_unique<NtfJob>(std::move(call)), std::move(a));
}

void registerNtf(Napi::Env env, Napi::Object exports) {
  exports.Set("stratifiedNtf", Napi::Function::New(env, StratifiedNtf, "stratifiedNtf"));
  exports.Set("stratifiedNtfAsync", Napi::Function::New(env, StratifiedNtfAsync, "stratifiedNtfAsync"));
  exports.Set("stratifiedNtfLoss", Napi::Function::New(env, StratifiedNtfLoss, "stratifiedNtfLoss"));
  exports.Set("ntf", Napi::Function::New(env, Ntf, "ntf"));
  exports.Set("ntfAsync", Napi::Function::New(env, NtfAsync, "ntfAsync"));
}

}  // namespace

NSA_REGISTER(registerNtf);

}  // namespace nsa::addon
