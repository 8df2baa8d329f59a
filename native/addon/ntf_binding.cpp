// Bindings of the NTF solvers (native/kernels/ntf.hpp): Stratified-NTF and non-negative CP, each sync
// and as an async Job. Raw signatures are flat; lib/factorization/*.ts validate first.
//
//   stratifiedNtf(strata[], samples[], dims[], strataRanks[], rank, options, init | undefined)
//     (options.weights, optional: one Float64Array of nₛ·Π dims weights ≥ 0 per stratum, or null)
//   ntf(T, shape, rank, options, factors[] | undefined)          (factors in tensorly layout, dₘ × r;
//     options.innerSweeps?, innerTolerance?: NtfOptions', innerSweeps 1 with weights)
// The async forms take (cancelToken, onProgress, intervalMs) after these.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <thread>

#include "../kernels/ntf.hpp"
#include "async_job.hpp"
#include "tensor_args.hpp"

namespace nsa::addon {

namespace {

// weightedHals 'surrogate' (ntf, stratifiedNtf): its majorizer needs every weight ≤ 1 (NtfOptions).
void requireSurrogateWeights(Napi::Env env, const Doubles& omega, const std::string& name) {
  for (std::size_t k = 0; k < omega.size(); ++k)
    if (omega[k] > 1.0)
      throwRangeJs(env, "Expected " + name + " ≤ 1 with options.weightedHals 'surrogate' but received " + jsNumber(omega[k]) +
                            " at index " + std::to_string(k));
}


Napi::Object traceObject(Napi::Env env, const LossTrace& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("iteration", newFloat64Array(env, t.iteration, "the loss trace"));
  o.Set("timeMs", newFloat64Array(env, t.timeMs, "the loss trace"));
  o.Set("loss", newFloat64Array(env, t.loss, "the loss trace"));
  return o;
}

// NaN (no certificate defined) becomes null.
Napi::Value certificateValue(Napi::Env env, double c) {
  if (std::isnan(c)) return env.Null();
  return Napi::Number::New(env, c);
}

// The names of options.solver (ntf and stratifiedNtf read the same option).
const std::map<std::string, WeightedHals>& weightedHalsUpdates() {
  static const std::map<std::string, WeightedHals> updates = {{"exact", WeightedHals::Exact},
                                                              {"surrogate", WeightedHals::Surrogate}};
  return updates;
}

const std::map<std::string, NtfSolver>& ntfSolvers() {
  static const std::map<std::string, NtfSolver> solvers = {{"mu", NtfSolver::MultiplicativeUpdates}, {"hals", NtfSolver::Hals}};
  return solvers;
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

// The doubles of a Stratified-NTF solve besides its data: the state (v, w, h; kept by the solver,
// its random or given start and the JS result, and the stages when recorded) and the buffers the
// solver allocates (ntf.cpp's StratifiedNtfSolver for MU, ntf_stratified_hals.cpp for HALS), with
// the certificate's (ntf.cpp, certificateOn), which it computes while they are held.
// lib/factorization/stratified-ntf.ts (stratifiedNtfWorkDoubles) bounds the same buffers the same way.
//
// `threads` bounds the team the strata are spread over, each thread with its own scratch set:
// stratifiedNtfThreads gives at most one thread per stratum and at most the cores
// (std::thread::hardware_concurrency, teamThreads' cap). Not the BLAS thread count in force: an
// async job reads it when it starts, and setBlasThreads may raise it after this check; the cores
// cannot be exceeded. `listed` and `listedAll` bound one stratum's and all strata's entries of
// weight ≠ 1 (0 without weights; their lists are checked per stratum when built, the solver's
// scratch and copies for them here).
double stratifiedNtfDoubles(const Shape& samples, const Shape& dims, const Shape& ranks, std::size_t rank, NtfSolver method,
                            bool tv, double listed, double listedAll, bool recordStages, double threads) {
  const double r = static_cast<double>(rank), S = static_cast<double>(samples.size()), K = static_cast<double>(dims.size());
  double F = 1, dmax = 0, nmax = 0, nmin = 0, qmax = 0, sumN = 0, sumD = 0, sumQ = 0, sumNF = 0;
  for (std::size_t d : dims) F *= static_cast<double>(d), dmax = std::max(dmax, static_cast<double>(d)), sumD += static_cast<double>(d);
  for (std::size_t n : samples) {
    const double x = static_cast<double>(n);
    nmin = nmax == 0 ? x : std::min(nmin, x);
    nmax = std::max(nmax, x), sumN += x, sumNF += x * F;
  }
  for (std::size_t q : ranks) qmax = std::max(qmax, static_cast<double>(q)), sumQ += static_cast<double>(q);
  const double dK = static_cast<double>(dims.back()), d1 = static_cast<double>(dims.front());
  const double T = std::min(S, std::max(threads, 1.0));
  const double R = std::max(r, qmax), D = std::max(dmax, nmax);
  const double state = sumQ * sumD + r * sumN + r * sumD;
  // An MTTKRP's workspace (tensor.cpp, mttkrpScratch): the rank times the tensor over its first
  // contracted mode, plus two contraction slices of at most that tensor. A stratum (nₛ × dims) at
  // rank r contracts d_K or nₛ first; the summed stratum (dims) at rank q contracts d_K or d₁.
  const double mttkrpStratum = (r + 2) * std::max(nmax * F / dK, F);
  const double mttkrpSummed = (qmax + 2) * F / std::min(d1, dK);
  // Both solvers, per stratum: Σᵢ A(s)[i], the Grams v(s)ₜv(s)ₜᵀ, v(s)ₜhₜᵀ and w(s)w(s)ᵀ, Σᵢ w(s), the
  // loss' parts; the hₜhₜᵀ.
  double solver = S * F + K * sumQ * (qmax + r) + (K + S) * r * r + S * r + 3 * S;
  // The certificate: per stratum and mode its h parts (r × r, r × q, and the MTTKRPs, r × Σd per
  // stratum), the h gradients (r × Σd), and per thread its scratch (M, G, E, the gradient, w's Grams,
  // Σᵢ A(s)[i], the stratum's Grams, an MTTKRP's workspace). The initial loss' scratch
  // (stratifiedNtfLoss) is smaller and freed before.
  solver += S * K * r * (r + qmax) + S * r * sumD + r * sumD + K * r * r;
  solver += T * (2 * R * D + R * R + r * qmax + r * r + r + F + K * qmax * (qmax + r) + mttkrpStratum);
  // Weighted, per thread: a listed work matrix, the entries' values and coefficients, the factors'
  // rows by entry (EntryRows), the by-feature sums; the certificate's residuals per entry; and, while
  // the lists are built, a map from each of the F features to its place (int32: F/2 doubles).
  if (listed > 0) solver += T * (3 * R * D + 2 * R + 2 * r + 3 * listed + (qmax + r) * sumD + r * nmax) + listedAll + F / 2;
  const double slice = std::max({nmax * F / dK, nmax * F / d1, F});
  if (method == NtfSolver::Hals) {
    // Z(s) = w(s)·A(s) (r × F) kept per stratum when r ≤ every nₛ, else one per thread; the h
    // updates' parts per stratum (MTTKRP r × d, r × q); Σₛ MTTKRPs, a Hadamard scratch; per thread
    // M, P (R × D), Q, E (R × R), two contraction slices and an MTTKRP's workspace.
    const bool cached = r <= nmin;
    solver += (cached ? S * r * F : T * r * F) + S * r * (dmax + qmax) + r * dmax + R * R + sumN;
    solver += T * (2 * R * D + 2 * R * R + 2 * slice + std::max(mttkrpStratum, mttkrpSummed));
    // Weighted: per entry a − topic and its feature's slot, and in the w group and each h group its
    // data, κ, slot and K row indices; per listed feature (at most one per entry) three doubles and
    // K + K² indices; the factors entry-major; per thread one column's Khatri–Rao rows and vectors
    // (a column meets at most a stratum's entries), and a second, paired column's (at most 4096 row
    // values: kPairedRows in ntf_stratified_hals.cpp).
    // With weightedHals Surrogate besides: the items' targets (per entry, and per slot with κ), and
    // per thread the listed sums (2 × D × R) and one Khatri–Rao row; counted whichever update runs.
    if (listed > 0)
      solver += (1.5 + (K + 1) * (2.5 + K / 2) + 3 + (K + K * K) / 2) * listedAll + (sumN + sumD) * r +
                S * qmax * sumD + S * (K * dmax + nmax) +
                T * ((listed + 4) * R + 3 * listed + 6 * R + 7 + 4 * 4096 + 10 * R + 7) + 3 * listedAll +
                T * (2 * D * R + R);
    return 3 * state + solver;
  }
  // MU: Y(s) = A(s) ×_K h_K (r × nₛ·F/d_K) kept per stratum when r ≤ d_K (K ≥ 2), else one per
  // thread; the h updates' parts per stratum (M r × r; numerators and denominators r × d_max; with
  // TV or weights the loss' numerator r × d_K); their sums and G; TV's ĥ and its two terms.
  const bool cacheY = dims.size() >= 2 && rank <= dims.back();
  solver += (cacheY ? r * sumNF / dK : T * r * nmax * F / dK);
  solver += S * r * r + S * r * (2 * dmax + (tv || listed > 0 ? dK : 0)) + 3 * r * dmax + r * r;
  if (tv) solver += 3 * r * dmax * K;
  // Per thread (StratifiedNtfSolver::Scratch): num, den, tmp, tmp2 (R × max(D, R)), E (r × q), the
  // last h mode's intermediate X (r × F, or r × nₛ·F/d₁ when nₛ < d₁), two contraction slices, the
  // v update's MTTKRP workspace (the summed stratum at rank q).
  const double mat = R * std::max(D, R);
  solver += T * (4 * mat + r * qmax + r * (nmax >= d1 ? F : nmax * F / d1) + 2 * slice + mttkrpSummed);
  return (recordStages ? 7 : 3) * state + solver;
}

// Read and checked arguments of a Stratified-NTF call; the data is taken by takeStratifiedNtf.
struct StratifiedNtfIn {
  std::vector<TypedIn> strata;
  std::vector<std::optional<TypedIn>> weights;  // per stratum; none: every weight 1
  std::optional<std::vector<TypedIn>> v, w, h;
};

// (strata[], samples[], dims[], strataRanks[], rank, options, init | undefined): everything read, then
// checked, then the memory the solve needs; `copy`: async jobs own a copy of the strata (sync calls
// read unshared buffers in place).
std::unique_ptr<StratifiedNtfCall> readStratifiedNtf(const Napi::CallbackInfo& info, bool copy, bool requireInit) {
  Napi::Env env = info.Env();
  auto call = std::make_unique<StratifiedNtfCall>();
  // (a) read everything
  const std::vector<In> strata = elements(arg(info, 0, "strata"), 1, 1 << 20);
  const std::size_t S = strata.size();
  const Shape samples = sizesOf(arg(info, 1, "samples"), S);
  const Shape dims = shapeOf(arg(info, 2, "dims"));
  if (dims.size() + 1 > kMaxTensorOrder)
    throwRangeJs(env, "Expected at most " + std::to_string(kMaxTensorOrder - 1) + " dimensions for dims but received " +
                          std::to_string(dims.size()));
  const Shape ranks = sizesOf(arg(info, 3, "strataRanks"), S);
  const std::size_t r = dimension(arg(info, 4, "rank"));
  const Fields o(arg(info, 5, "options"),
                 {"maxIterations", "solver", "vScaling", "tv", "tvReg", "epsilon", "tolerance", "lossEvery", "recordStages",
                  "seed", "certificateTolerance", "weights", "weightedHals"});
  const In initArg = arg(info, 6, "init");
  const bool given = !absent(initArg);
  if (requireInit && !given) throwType(env, "Expected an object {v, w, h} for init but received " + describe(initArg.value));
  const std::size_t K = dims.size();
  std::vector<In> vList, wList, hList;
  if (given) {
    const Fields init(initArg, {"v", "w", "h"});
    vList = elements(init["v"], S * K, S * K);
    wList = elements(init["w"], S, S);
    hList = elements(init["h"], K, K);
  }
  // (b) check
  StratifiedNtfOptions& opt = call->options;
  opt.strataRank = ranks;
  opt.rank = r;
  opt.maxIterations = intIn(o["maxIterations"], 0, 100000000);
  // Optional (the loss-only call reads none): the multiplicative updates unless 'hals'.
  if (o.has("solver")) opt.solver = oneOf(o["solver"], ntfSolvers());
  opt.vScaling = intIn(o["vScaling"], 1, 1000000);
  opt.tv = boolean(o["tv"]);
  opt.tvReg = opt.tv ? numberIn(o["tvReg"], 0, 1.7976931348623157e308) : 0.0;
  opt.epsilon = numberIn(o["epsilon"], 0, 1.7976931348623157e308);
  opt.tolerance = numberIn(o["tolerance"], 0, 1.7976931348623157e308);
  opt.lossEvery = intIn(o["lossEvery"], 1, 100000000);
  opt.recordStages = boolean(o["recordStages"]);
  if (o.has("certificateTolerance")) opt.certificateTolerance = numberIn(o["certificateTolerance"], 0, 1);
  if (opt.solver == NtfSolver::Hals && opt.tv)
    throwRangeJs(env, "Expected options.solver 'mu' with options.tv (the TV term defines only the multiplicative updates) but received 'hals'");
  if (o.has("weightedHals")) opt.weightedHals = oneOf(o["weightedHals"], weightedHalsUpdates());
  const std::uint64_t seed = given ? 0 : static_cast<std::uint64_t>(integerIn(o["seed"], 0, 9007199254740991));
  const std::size_t F = shapeSize(dims);
  StratifiedNtfIn in;
  // weights: one entry per stratum (a Float64Array of the stratum's size, or null for none).
  std::vector<In> weightList;
  if (!absent(o["weights"])) weightList = elements(o["weights"], S, S);
  double dataDoubles = 0;
  for (std::size_t s = 0; s < S; ++s) {
    const double size = static_cast<double>(samples[s]) * static_cast<double>(F);
    if (size > kMaxElements)
      throwRangeJs(env, "Expected at most 2^32 values (samples·dims) for " + strata[s].name + " but it would need " + std::to_string(size));
    in.strata.push_back(float64(strata[s], samples[s] * F, "samples·Π dims"));
    in.weights.emplace_back();
    if (!weightList.empty() && !absent(weightList[s])) in.weights.back() = float64(weightList[s], samples[s] * F, "samples·Π dims");
    // Weighted strata are copied (their missing entries set to 0), with a copy of the weights.
    if (copy || in.strata.back().shared || in.weights.back()) dataDoubles += size;
    if (in.weights.back()) dataDoubles += size;
  }
  if (given) {
    in.v.emplace();
    in.w.emplace();
    in.h.emplace();
    for (std::size_t s = 0; s < S; ++s)
      for (std::size_t t = 0; t < K; ++t)
        in.v->push_back(float64(vList[s * K + t], product(env, {ranks[s], dims[t]}, vList[s * K + t].name), "strataRank·dim"));
    for (std::size_t s = 0; s < S; ++s) in.w->push_back(float64(wList[s], product(env, {r, samples[s]}, wList[s].name), "rank·samples"));
    for (std::size_t t = 0; t < K; ++t) in.h->push_back(float64(hList[t], product(env, {r, dims[t]}, hList[t].name), "rank·dim"));
  }
  // Weighted strata: their entries of weight ≠ 1, at most a stratum's size (counted when listed).
  double listedBound = 0, listedAll = 0;
  for (std::size_t s = 0; s < S; ++s)
    if (in.weights[s]) {
      listedBound = std::max(listedBound, static_cast<double>(samples[s]) * static_cast<double>(F));
      listedAll += static_cast<double>(samples[s]) * static_cast<double>(F);
    }
  if (o.has("weightedHals") && (listedAll == 0 || opt.solver != NtfSolver::Hals))
    throwRangeJs(env, "Expected options.weightedHals only with solver 'hals' and weights");
  const double cores = static_cast<double>(std::max(1u, std::thread::hardware_concurrency()));
  checkMemory(env, float64Bytes({1}) * (dataDoubles + stratifiedNtfDoubles(samples, dims, ranks, r, opt.solver, opt.tv, listedBound, listedAll, opt.recordStages, cores)),
              [&] { return std::string("Stratified-NTF of rank " + std::to_string(r) + " (" + std::to_string(S) + (S == 1 ? " stratum" : " strata") + ")"); });
  // (c) take the strata (copied for a job or when shared), (d) the initial state
  call->data.resize(S);
  if (!weightList.empty()) call->problem.weights.resize(S);
  double listedSoFar = 0;  // the solvers number the listed entries of all strata by int32 indices
  for (std::size_t s = 0; s < S; ++s) {
    const bool weighted = in.weights[s].has_value();
    Doubles A = doubles(in.strata[s], copy || weighted);
    if (weighted) {
      Doubles omega = doubles(*in.weights[s], true);  // read once: what is checked is what is used
      requireNonNegativeFinite(env, omega.data(), omega.size(), in.weights[s]->name);
      if (opt.weightedHals == WeightedHals::Surrogate) requireSurrogateWeights(env, omega, in.weights[s]->name);
      std::vector<double> observed = std::move(A).owned();
      double listed = 0;
      for (std::size_t k = 0; k < omega.size(); ++k) {
        listed += omega[k] != 1.0;
        if (omega[k] == 0.0) observed[k] = 0.0;  // missing: never read (it may hold NaN)
      }
      listedSoFar += listed;
      if (listedSoFar > static_cast<double>(INT32_MAX))
        throwRangeJs(env, "Expected at most 2147483647 entries of weight ≠ 1 in all strata but received more by " + in.weights[s]->name);
      // The list: per entry its multi-index (K + 1 int32), κ and the value, and the solver's offset.
      checkMemory(env, float64Bytes({1}) * listed * (3 + 0.5 * static_cast<double>(K + 1)),
                  [&] { return "the " + std::to_string(static_cast<std::size_t>(listed)) + " entries of weight ≠ 1 of " + in.strata[s].name; });
      requireNonNegativeFinite(env, observed.data(), observed.size(), in.strata[s].name + " (at entries of positive weight)");
      Shape full(dims);
      full.insert(full.begin(), samples[s]);
      call->problem.weights[s] = denseTensorEntryWeights(observed.data(), full, omega.data());
      call->data[s] = std::move(observed);
    } else {
      requireNonNegativeFinite(env, A.data(), A.size(), in.strata[s].name);
      if (A.data() != nullptr && (copy || in.strata[s].shared)) call->data[s] = std::move(A).owned();
    }
    call->problem.strata.push_back(call->data[s].empty() ? A.data() : call->data[s].data());
  }
  call->problem.samples = samples;
  call->problem.dims = dims;
  if (!given) {
    stratifiedNtfRandomInit(call->problem, opt, seed, call->state);
    return call;
  }
  auto copyOf = [&](const TypedIn& t) {
    std::vector<double> x = doubles(t, true).owned();
    requireNonNegativeFinite(env, x.data(), x.size(), t.name);
    return x;
  };
  for (const TypedIn& t : *in.v) call->state.v.push_back(copyOf(t));
  for (const TypedIn& t : *in.w) call->state.w.push_back(copyOf(t));
  for (const TypedIn& t : *in.h) call->state.h.push_back(copyOf(t));
  return call;
}

Napi::Object stateObject(Napi::Env env, const StratifiedNtfState& st) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("v", float64List(env, st.v, "v"));
  o.Set("w", float64List(env, st.w, "w"));
  o.Set("h", float64List(env, st.h, "h"));
  return o;
}

Napi::Value stratifiedNtfResult(Napi::Env env, const StratifiedNtfCall& call) {
  Napi::Object o = stateObject(env, call.state);
  o.Set("trace", traceObject(env, call.result.trace));
  o.Set("iterations", Napi::Number::New(env, call.result.iterations));
  o.Set("stopReason", Napi::String::New(env, stopReasonName(call.result.stop)));
  o.Set("certificate", certificateValue(env, call.result.certificate));
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
  auto call = readStratifiedNtf(info, false, false);
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
  auto call = readStratifiedNtf(info, true, false);
  AsyncArgs a = asyncArgs(info, 7);
  return startJob(info.Env(), std::make_unique<StratifiedNtfJob>(std::move(call)), std::move(a));
}

// Same arguments as stratifiedNtf (init required) → the loss of that state.
Napi::Value StratifiedNtfLoss(const Napi::CallbackInfo& info) {
  auto call = readStratifiedNtf(info, false, true);
  const double loss = guarded(info.Env(), [&] { return stratifiedNtfLoss(call->problem, call->options, call->state); });
  return Napi::Number::New(info.Env(), loss);
}

// ---- NTF ---------------------------------------------------------------------------------------------

struct NtfCall {
  // The tensor the solver reads: `view` (the caller's buffer, for a synchronous call whose JS cannot
  // run meanwhile; a copy for a job or a shared buffer) or, with weights, `data` (a copy whose missing
  // entries are set to 0).
  const double* tensor = nullptr;
  Doubles view;
  std::vector<double> data;
  Shape shape;
  NtfOptions options;
  std::vector<std::vector<double>> factors;  // rank-major
  NtfResult result;
  TensorEntryWeights weights;  // empty: unweighted
};

// (T, shape, rank, options, factors | undefined): everything read, checked, memory checked, then the
// tensor taken (copied for a job, `copy`, or with weights) and the factors taken.
std::unique_ptr<NtfCall> readNtf(const Napi::CallbackInfo& info, bool copy) {
  Napi::Env env = info.Env();
  auto call = std::make_unique<NtfCall>();
  // (a) read everything
  call->shape = shapeOf(arg(info, 1, "shape"), 2);
  const Shape& shape = call->shape;
  const std::size_t r = dimension(arg(info, 2, "rank"));
  const Fields o(arg(info, 3, "options"),
                 {"maxIterations", "solver", "epsilon", "tolerance", "lossEvery", "seed", "certificateTolerance", "weights",
                  "innerSweeps", "innerTolerance", "weightedHals"});
  const In factorsArg = arg(info, 4, "factors");
  const bool given = !absent(factorsArg);
  std::vector<In> factorList;
  if (given) factorList = elements(factorsArg, shape.size(), shape.size());
  // (b) check
  TypedIn T = float64(arg(info, 0, "T"), shapeSize(shape), "the product of shape");
  NtfOptions& opt = call->options;
  opt.rank = r;
  opt.maxIterations = intIn(o["maxIterations"], 0, 100000000);
  opt.solver = oneOf(o["solver"], ntfSolvers());
  opt.epsilon = numberIn(o["epsilon"], 0, 1.7976931348623157e308);
  opt.tolerance = numberIn(o["tolerance"], 0, 1.7976931348623157e308);
  opt.lossEvery = intIn(o["lossEvery"], 1, 100000000);
  if (o.has("certificateTolerance")) opt.certificateTolerance = numberIn(o["certificateTolerance"], 0, 1);
  if (o.has("innerSweeps")) opt.innerSweeps = intIn(o["innerSweeps"], 1, 1 << 20);
  if (o.has("innerTolerance")) opt.innerTolerance = numberIn(o["innerTolerance"], 0, 1);
  const std::uint64_t seed = given ? 0 : static_cast<std::uint64_t>(integerIn(o["seed"], 0, 9007199254740991));
  // weights (optional): shapeSize finite weights ≥ 0 (0 = missing; T may hold NaN there).
  std::optional<TypedIn> weightsIn;
  if (!absent(o["weights"])) weightsIn = float64(o["weights"], shapeSize(shape), "the product of shape");
  if (opt.innerSweeps > 1 && weightsIn && opt.solver == NtfSolver::MultiplicativeUpdates)
    throwRangeJs(env, "Expected options.innerSweeps 1 for solver 'mu' with weights or missing entries but received " +
                          std::to_string(opt.innerSweeps));
  if (o.has("weightedHals")) {
    opt.weightedHals = oneOf(o["weightedHals"], weightedHalsUpdates());
    if (!weightsIn || opt.solver != NtfSolver::Hals)
      throwRangeJs(env, "Expected options.weightedHals only with solver 'hals' and weights");
  }
  std::vector<TypedIn> factorsIn;
  for (std::size_t m = 0; m < factorList.size(); ++m)
    factorsIn.push_back(float64(factorList[m], product(env, {shape[m], r}, factorList[m].name), "dim·rank"));
  const double dr = static_cast<double>(r), size = static_cast<double>(shapeSize(shape));
  double factorDoubles = 0, dmax = 0, scratch = 0;
  for (std::size_t d : shape) factorDoubles += static_cast<double>(d) * dr, dmax = std::max(dmax, static_cast<double>(d));
  if (dr * size < 1e18) {
    for (std::size_t m = 0; m < shape.size(); ++m) scratch = std::max(scratch, static_cast<double>(mttkrpScratch(shape, r, m)));
  } else {
    scratch = dr * size;
  }
  // the tensor's copy (a job's, a shared buffer's or with weights), the factors (solver, given or
  // random start, JS result), the r×r Grams, the MTTKRP result and its contraction scratch
  // (with weights: their copy, and the weighted updates' d-length and r-length buffers)
  const bool copied = copy || T.shared || weightsIn;
  checkMemory(env, float64Bytes({1}) * ((copied ? size : 0) + 3 * factorDoubles + 2 * static_cast<double>(shape.size()) * dr * dr + 2 * dr * dmax + scratch +
                                        (weightsIn ? size + 2 * dr * dmax + dmax : 0)),
              [&] { return std::string("NTF of rank " + std::to_string(r) + " on a tensor of " + std::to_string(shapeSize(shape)) + " values"); });
  // (c) take the tensor, then check what was taken
  if (weightsIn) {
    call->data = doubles(T, true).owned();
    call->tensor = call->data.data();
    Doubles omega = doubles(*weightsIn, true);
    requireNonNegativeFinite(env, omega.data(), omega.size(), "options.weights");
    if (opt.weightedHals == WeightedHals::Surrogate) requireSurrogateWeights(env, omega, "options.weights");
    double listed = 0;
    for (std::size_t k = 0; k < omega.size(); ++k) {
      listed += omega[k] != 1.0;
      if (omega[k] == 0.0) call->data[k] = 0.0;  // missing: never read (it may hold NaN)
    }
    // What the solve builds for the listed entries (lib/factorization/ntf.ts's listedDoubles counts
    // the same): the list (N int32 indices, κ, data), its groups by mode (ntf.cpp's ListedByMode: per
    // mode the other N − 1 indices, κ and data, and the groups' starts) and the model values; the
    // factors' entry-major copies and MU's row sums; for HALS, the column scratch of each thread of
    // the team (at most one per core, teamThreads' cap).
    const double N = static_cast<double>(shape.size());
    double dmin = dmax, sumDims = 0;
    for (std::size_t d : shape) dmin = std::min(dmin, static_cast<double>(d)), sumDims += static_cast<double>(d);
    const double halsScratch = opt.solver == NtfSolver::Hals && opt.weightedHals == WeightedHals::Exact
                                   ? weightedHalsScratchDoubles(listed, size, dmin, dr, static_cast<double>(std::max(1u, std::thread::hardware_concurrency())))
                                   : 0.0;
    checkMemory(env, float64Bytes({1}) * (listed * (N * (N - 1) / 2 + 2.5 * N + 3) + sumDims + N + (sumDims + 2 * dmax) * dr + halsScratch),
                [&] { return "the " + std::to_string(static_cast<std::size_t>(listed)) + " entries of weight ≠ 1 of T"; });
    requireNonNegativeFinite(env, call->data.data(), call->data.size(), "T (at entries of positive weight)");
    call->weights = denseTensorEntryWeights(call->data.data(), shape, omega.data());
  } else {
    call->view = doubles(T, copy);
    call->tensor = call->view.data();
    requireNonNegativeFinite(env, call->tensor, call->view.size(), "T");
  }
  if (!given) {
    ntfRandomInit(shape, r, seed, call->factors);
    return call;
  }
  call->factors.resize(shape.size());
  for (std::size_t m = 0; m < shape.size(); ++m) {
    Doubles f = doubles(factorsIn[m]);
    requireNonNegativeFinite(env, f.data(), f.size(), factorsIn[m].name);
    call->factors[m].resize(shape[m] * r);
    transposeInto(f.data(), shape[m], r, call->factors[m].data());
  }
  return call;
}

Napi::Value ntfResult(Napi::Env env, const NtfCall& call) {
  Napi::Object o = Napi::Object::New(env);
  const std::size_t r = call.options.rank;
  Napi::Array factors = Napi::Array::New(env, call.factors.size());
  for (std::size_t m = 0; m < call.factors.size(); ++m) {
    Napi::Float64Array f = newFloat64(env, call.factors[m].size(), "the factors");
    transposeInto(call.factors[m].data(), r, call.shape[m], f.Data());
    factors.Set(static_cast<uint32_t>(m), f);
  }
  o.Set("factors", factors);
  o.Set("trace", traceObject(env, call.result.trace));
  o.Set("iterations", Napi::Number::New(env, call.result.iterations));
  o.Set("stopReason", Napi::String::New(env, stopReasonName(call.result.stop)));
  o.Set("certificate", certificateValue(env, call.result.certificate));
  return o;
}

Napi::Value Ntf(const Napi::CallbackInfo& info) {
  auto call = readNtf(info, false);
  guarded(info.Env(), [&] { ntf(call->tensor, call->shape, call->options, call->factors, call->result, silentMonitor(), &call->weights); });
  return ntfResult(info.Env(), *call);
}

class NtfJob : public Job {
 public:
  explicit NtfJob(std::unique_ptr<NtfCall> call) : call_(std::move(call)) {}
  void execute(Monitor& monitor) override {
    ntf(call_->tensor, call_->shape, call_->options, call_->factors, call_->result, monitor, &call_->weights);
  }
  Napi::Value result(Napi::Env env) override { return ntfResult(env, *call_); }

 private:
  std::unique_ptr<NtfCall> call_;
};

Napi::Value NtfAsync(const Napi::CallbackInfo& info) {
  auto call = readNtf(info, true);
  AsyncArgs a = asyncArgs(info, 5);
  return startJob(info.Env(), std::make_unique<NtfJob>(std::move(call)), std::move(a));
}

const Export kNtf[] = {
    {"stratifiedNtf", StratifiedNtf},
    {"stratifiedNtfAsync", StratifiedNtfAsync},
    {"stratifiedNtfLoss", StratifiedNtfLoss},
    {"ntf", Ntf},
    {"ntfAsync", NtfAsync},
};

void registerNtf(Napi::Env env, Napi::Object exports) { exportFunctions(env, exports, kNtf); }

}  // namespace

NSA_REGISTER(registerNtf);

}  // namespace nsa::addon
