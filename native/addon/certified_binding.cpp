// Bindings of the calibration-free NSA-Flow energy (native/kernels/nsa_energy.hpp) and its certified
// solvers (native/kernels/certified.hpp). lib/nsa-flow/certified.ts validates first; every field is
// re-read here with args.hpp so that the raw binding refuses garbage.
//   certifiedSolve(Y0, rows, cols, X0 | null, x0Cols, X | null, dataRows, options) → result
//   certifiedSolveAsync(…same…, cancelToken, onProgress, intervalMs) → Promise<result>
//   certifiedEnergy(Y, rows, cols, X0 | null, x0Cols, X | null, dataRows, options)
//     → {energy, fidelity, orthogonality, overlap, gradient, certificate}
// cols is the variable's column count (2k in 'signed'); X0 is rows×x0Cols; X is dataRows×rows.
// options.weights (optional): the fidelity's entry weights ≥ 0, the shape of X0 ('target') or of X
// ('data', 'signed'); 0 = missing, and X0/X may hold NaN there. 'anchored' takes none.
#include <map>
#include <optional>

#include "../kernels/certified.hpp"
#include "../kernels/nsa_energy.hpp"
#include "../kernels/ortho.hpp"
#include "../kernels/thread_team.hpp"
#include "async_job.hpp"
#include "common.hpp"

namespace nsa::addon {

namespace {

const std::map<std::string, CertifiedMode> kModes = {
    {"target", CertifiedMode::Target}, {"data", CertifiedMode::Data}, {"signed", CertifiedMode::Signed}, {"anchored", CertifiedMode::Anchored}};
const std::map<std::string, OrthogonalityFunctional> kFunctionals = {{"gram", OrthogonalityFunctional::Gram},
                                                                     {"offDiagonal", OrthogonalityFunctional::OffDiagonal},
                                                                     {"meanCos2", OrthogonalityFunctional::MeanCos2}};
const std::map<std::string, CertifiedSolver> kSolvers = {{"lbfgsb", CertifiedSolver::Lbfgsb}, {"spg", CertifiedSolver::Spg}};
const std::map<std::string, AnchorKind> kAnchors = {{"subspace", AnchorKind::Subspace}, {"target", AnchorKind::Target}};

// The energy fields every call has.
CertifiedEnergyOptions energyFields(const Fields& o) {
  CertifiedEnergyOptions e;
  e.mode = oneOf(o["mode"], kModes);
  e.w = numberIn(o["w"], 0, 1);
  e.orthogonality = oneOf(o["orthogonality"], kFunctionals);
  e.nonnegative = boolean(o["nonnegative"]);
  e.overlapPenalty = numberIn(o["overlapPenalty"], 0, 1e6);
  e.anchor = oneOf(o["anchor"], kAnchors);
  return e;
}

// The problem's arrays after (a)+(b): shapes checked against the mode, no pointer taken yet.
struct ProblemIn {
  std::size_t p = 0, cols = 0, m = 0, n = 0;
  TypedIn Y;
  std::optional<TypedIn> X0, X, weights;
};

ProblemIn problemArgs(const Napi::CallbackInfo& info, const CertifiedEnergyOptions& e, const In& weights) {
  Napi::Env env = info.Env();
  ProblemIn in;
  in.p = dimension(arg(info, 1, "rows"));
  in.cols = dimension(arg(info, 2, "cols"));
  in.Y = float64(arg(info, 0, "Y"), product(env, {in.p, in.cols}, "Y"), "rows·cols");
  const In X0 = arg(info, 3, "X0"), X = arg(info, 5, "X");
  const In x0Cols = arg(info, 4, "x0Cols"), dataRows = arg(info, 6, "dataRows");
  const bool needsX0 = e.mode == CertifiedMode::Target || e.mode == CertifiedMode::Anchored;
  const bool needsX = e.mode == CertifiedMode::Data || e.mode == CertifiedMode::Signed;
  if (needsX0) {
    in.m = dimension(x0Cols);
    if (e.mode == CertifiedMode::Target && in.m != in.cols)
      throwRangeJs(env, "Expected x0Cols equal to cols in 'target' mode but received " + std::to_string(in.m));
    if (e.mode == CertifiedMode::Anchored && e.anchor == AnchorKind::Target && in.m != in.cols)
      throwRangeJs(env, "Expected an anchor with as many columns as Y (" + std::to_string(in.cols) + ") for anchor 'target' but received " +
                            std::to_string(in.m));
    in.X0 = float64(X0, product(env, {in.p, in.m}, "X0"), "rows·x0Cols");
  } else if (!absent(X0)) {
    throwType(env, "Expected null for X0 in 'data' and 'signed' modes (they fit X) but received " + describe(X0.value));
  }
  if (needsX) {
    in.n = dimension(dataRows);
    in.X = float64(X, product(env, {in.n, in.p}, "X"), "dataRows·rows");
    if (e.mode == CertifiedMode::Signed && in.cols % 2 != 0)
      throwRangeJs(env, "Expected an even cols ([V⁺ V⁻]) in 'signed' mode but received " + std::to_string(in.cols));
    if (e.mode == CertifiedMode::Signed && !e.nonnegative)
      throwRangeJs(env, "Expected nonnegative true in 'signed' mode (the lobes V⁺, V⁻ are non-negative) but received false");
  } else if (!absent(X)) {
    throwType(env, "Expected null for X in 'target' and 'anchored' modes but received " + describe(X.value));
  }
  if (!absent(weights)) {
    if (e.mode == CertifiedMode::Anchored)
      throwRangeJs(env, "Expected no " + weights.name + " in 'anchored' mode (its fidelity is to the anchor) but received " + describe(weights.value));
    in.weights = needsX ? float64(weights, product(env, {in.n, in.p}, weights.name), "dataRows·rows (the shape of X)")
                        : float64(weights, product(env, {in.p, in.m}, weights.name), "rows·x0Cols (the shape of X0)");
  }
  return in;
}

// Doubles of a solve or an evaluation: copies of the inputs, the energy's workspaces (S = XᵀX when
// p < 2n, n×k and five p×k buffers), the solver's (4 n-sized vectors; L-BFGS-B: 2·memory more, the
// Cauchy point, direction and its sort keys), the result and the traces.
double problemDoubles(const ProblemIn& in, const CertifiedEnergyOptions& e, int memory, double records) {
  const double p = double(in.p), c = double(in.cols), m = double(in.m), n = double(in.n), vars = p * c;
  const double S = (e.mode == CertifiedMode::Data || e.mode == CertifiedMode::Signed) && in.p < 2 * in.n && in.p <= 4096 ? p * p : 0;
  // Weights: their copy; with data also ω∘X, the weighted residual and two n×k score buffers (no S).
  const double weighted = !in.weights ? 0 : in.n > 0 ? 3 * n * p + 2 * n * c - S : p * m;
  return 2 * vars + p * m + n * p + S + n * c + 6 * vars + p * m + (8 + 2.0 * memory + 6) * vars + 6 * records + 64 * c * c + weighted;
}

// The weights (finite, ≥ 0) and the data they weigh: finite where the weight is nonzero, set to 0 where it
// is 0 (a missing entry may hold NaN; the energy never reads it). Both are the caller's copies.
void readWeighted(Napi::Env env, std::vector<double>& weights, std::vector<double>& values, const std::string& weightsName,
                  const std::string& name) {
  requireNonNegativeFinite(env, weights.data(), weights.size(), weightsName);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (weights[i] == 0) {
      values[i] = 0;
    } else if (!std::isfinite(values[i])) {
      throwRangeJs(env, "Expected finite values in " + name + " at the entries of nonzero weight but received " + describe(Napi::Number::New(env, values[i])) +
                            " at index " + std::to_string(i));
    }
  }
}

CertifiedData dataOf(const ProblemIn& in, const CertifiedEnergyOptions& e, const double* X0, const double* X) {
  CertifiedData d;
  d.p = in.p;
  d.k = e.mode == CertifiedMode::Signed ? in.cols / 2 : in.cols;
  d.X0 = X0;
  d.m = in.m;
  d.X = X;
  d.n = in.n;
  return d;
}

// ---- solve -------------------------------------------------------------------------------------

// The arrays of a solve: in place (Stable views of the caller's arrays) for the synchronous call, which
// holds them for its whole run, so that no p×k input is copied on the calling thread; copies for an
// asynchronous job, which runs while JS may change them. Weighted data are always copies (the missing
// entries are zeroed).
struct SolveCall {
  CertifiedEnergyOptions energy;
  CertifiedOptions solver;
  std::size_t p = 0, cols = 0, m = 0, n = 0;
  Doubles Y0, X0in, Xin, weightsIn;
  std::vector<double> X0w, Xw, weights;
  const double* X0 = nullptr;
  const double* X = nullptr;
};

SolveCall readSolve(const Napi::CallbackInfo& info, bool copy) {
  Napi::Env env = info.Env();
  const Fields o(arg(info, 7, "options"), {"mode", "w", "orthogonality", "solver", "nonnegative", "tolerance", "plateauTolerance",
                                            "maxIterations", "memory", "overlapPenalty", "anchor", "recordEvery", "weights"});
  SolveCall call;
  call.energy = energyFields(o);
  CertifiedOptions& s = call.solver;
  s.solver = oneOf(o["solver"], kSolvers);
  s.tolerance = numberIn(o["tolerance"], 0, 1e300);
  s.plateauTolerance = numberIn(o["plateauTolerance"], 0, 1);
  s.maxIterations = intIn(o["maxIterations"], 0, 100000000);
  s.memory = intIn(o["memory"], 1, 100);
  s.recordEvery = intIn(o["recordEvery"], 1, 100000000);
  const ProblemIn in = problemArgs(info, call.energy, o["weights"]);
  const double records = double(s.maxIterations) / s.recordEvery + 3;
  checkMemory(env, float64Bytes({1}) * problemDoubles(in, call.energy, s.memory, records), [&] {
    return "the certified NSA-Flow solve on Y0 (" + std::to_string(in.p) + "×" + std::to_string(in.cols) + ")";
  });
  call.p = in.p, call.cols = in.cols, call.m = in.m, call.n = in.n;
  call.Y0 = doubles(in.Y, copy);
  requireFinite(env, call.Y0.data(), call.Y0.size(), "Y0");
  if (in.weights) call.weights = doubles(*in.weights, true).owned();
  // X0 and X alike: with weights a copy whose missing entries are zeroed (readWeighted), else the
  // caller's array (in place for the sync call), checked finite.
  auto take = [&](const TypedIn& t, const std::string& name, Doubles& view, std::vector<double>& zeroed) -> const double* {
    if (in.weights) {
      zeroed = doubles(t, true).owned();
      readWeighted(env, call.weights, zeroed, in.weights->name, name);
      return zeroed.data();
    }
    view = doubles(t, copy);
    requireFinite(env, view.data(), view.size(), name);
    return view.data();
  };
  if (in.X0) call.X0 = take(*in.X0, "X0", call.X0in, call.X0w);
  if (in.X) call.X = take(*in.X, "X", call.Xin, call.Xw);
  return call;
}

struct SolveOutcome {
  CertifiedResult result;
  CertifiedTerms terms;
};

// into: null (the returned point in out.result.x) or the result's p×cols doubles.
void runSolve(SolveCall& call, Monitor& monitor, SolveOutcome& out, double* into) {
  ProblemIn shape;
  shape.p = call.p, shape.cols = call.cols, shape.m = call.m, shape.n = call.n;
  CertifiedData data = dataOf(shape, call.energy, call.X0, call.X);
  data.W = call.weights.empty() ? nullptr : call.weights.data();
  CertifiedEnergy energy(call.energy, data);
  EnergyObjective objective(energy);
  certifiedSolve(objective, call.Y0.data(), call.solver, monitor, out.result, into);
  out.terms = objective.last();  // certifiedSolve evaluates the returned point last
}

// Y: the result's array when the solver wrote it (into), else empty and made here from result.x.
Napi::Object solveToJs(Napi::Env env, const SolveOutcome& out, Napi::Float64Array Y = Napi::Float64Array()) {
  const CertifiedResult& r = out.result;
  Napi::Object o = Napi::Object::New(env);
  o.Set("Y", Y.IsEmpty() ? newFloat64Array(env, r.x.data(), r.x.size()) : Y);
  o.Set("energy", Napi::Number::New(env, r.value));
  o.Set("fidelity", Napi::Number::New(env, out.terms.fidelity));
  o.Set("orthogonality", Napi::Number::New(env, out.terms.orthogonality));
  o.Set("overlap", Napi::Number::New(env, out.terms.overlap));
  o.Set("certificate", Napi::Number::New(env, r.certificate));
  o.Set("stopReason", Napi::String::New(env, stopReasonName(r.stopReason)));
  o.Set("iterations", Napi::Number::New(env, r.iterations));
  o.Set("evaluations", Napi::Number::New(env, r.evaluations));
  Napi::Object t = Napi::Object::New(env);
  t.Set("iteration", newFloat64Array(env, r.traces.iteration));
  t.Set("timeMs", newFloat64Array(env, r.traces.timeMs));
  t.Set("energy", newFloat64Array(env, r.traces.energy));
  t.Set("fidelity", newFloat64Array(env, r.traces.fidelity));
  t.Set("orthogonality", newFloat64Array(env, r.traces.orthogonality));
  t.Set("certificate", newFloat64Array(env, r.traces.certificate));
  o.Set("traces", t);
  Napi::Array warnings = Napi::Array::New(env, r.warnings.size());
  for (std::size_t i = 0; i < r.warnings.size(); ++i) warnings.Set(uint32_t(i), Napi::String::New(env, r.warnings[i]));
  o.Set("warnings", warnings);
  return o;
}

Napi::Value CertifiedSolveSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SolveCall call = readSolve(info, false);
  // The result's array first, so that the solver's team writes the returned point into it (fresh
  // pages, first touched there) instead of a copy of it on this thread after the solve.
  Napi::Float64Array Y = newFloat64(env, call.p * call.cols, "a result");
  SolveOutcome out;
  guarded(env, [&] { runSolve(call, silentMonitor(), out, Y.Data()); });
  return solveToJs(env, out, Y);
}

class CertifiedJob : public Job {
 public:
  explicit CertifiedJob(SolveCall call) : call_(std::move(call)) {}
  void execute(Monitor& monitor) override { runSolve(call_, monitor, out_, nullptr); }
  Napi::Value result(Napi::Env env) override { return solveToJs(env, out_); }

 private:
  SolveCall call_;
  SolveOutcome out_;
};

Napi::Value CertifiedSolveAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SolveCall call = readSolve(info, true);
  AsyncArgs a = asyncArgs(info, 8);
  return startJob(env, std::make_unique<CertifiedJob>(std::move(call)), std::move(a));
}

// ---- one evaluation ----------------------------------------------------------------------------

Napi::Value CertifiedEnergyAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Fields o(arg(info, 7, "options"), {"mode", "w", "orthogonality", "nonnegative", "overlapPenalty", "anchor", "weights"});
  const CertifiedEnergyOptions e = energyFields(o);
  const ProblemIn in = problemArgs(info, e, o["weights"]);
  checkMemory(env, float64Bytes({1}) * problemDoubles(in, e, 0, 0),
              [&] { return "the NSA-Flow energy of Y (" + std::to_string(in.p) + "×" + std::to_string(in.cols) + ")"; });
  const Doubles Y = doubles(in.Y);
  requireFinite(env, Y.data(), Y.size(), "Y");
  // Without weights the arrays are read in place; with them the weights and the data they weigh are
  // copies, checked together, with the missing entries zeroed.
  std::optional<Doubles> X0in, Xin;
  std::vector<double> weights, weighted;
  const double* X0 = nullptr;
  const double* X = nullptr;
  if (in.weights) weights = doubles(*in.weights, true).owned();
  if (in.X0) {
    X0in = doubles(*in.X0, bool(in.weights));
    if (in.weights) {
      weighted = std::move(*X0in).owned();
      readWeighted(env, weights, weighted, in.weights->name, "X0");
      X0 = weighted.data();
    } else {
      requireFinite(env, X0in->data(), X0in->size(), "X0");
      X0 = X0in->data();
    }
  }
  if (in.X) {
    Xin = doubles(*in.X, bool(in.weights));
    if (in.weights) {
      weighted = std::move(*Xin).owned();
      readWeighted(env, weights, weighted, in.weights->name, "X");
      X = weighted.data();
    } else {
      requireFinite(env, Xin->data(), Xin->size(), "X");
      X = Xin->data();
    }
  }
  std::vector<double> G(Y.size());
  CertifiedTerms t;
  double certificate = 0;
  guarded(env, [&] {
    CertifiedData data = dataOf(in, e, X0, X);
    data.W = in.weights ? weights.data() : nullptr;
    CertifiedEnergy energy(e, data);
    t = energy.evaluate(Y.data(), G.data());
    certificate = gradientMapping(Y.data(), G.data(), G.size(), e.nonnegative);
  });
  if (!std::isfinite(t.energy))
    throw toJsError(env, ErrorKind::Numerical, "The energy is not finite (the values are too large to square)");
  Napi::Object r = Napi::Object::New(env);
  r.Set("energy", Napi::Number::New(env, t.energy));
  r.Set("fidelity", Napi::Number::New(env, t.fidelity));
  r.Set("orthogonality", Napi::Number::New(env, t.orthogonality));
  r.Set("overlap", Napi::Number::New(env, t.overlap));
  r.Set("gradient", newFloat64Array(env, G));
  r.Set("certificate", Napi::Number::New(env, certificate));
  return r;
}

// ---- the target of hard non-negativity ---------------------------------------------------------

// nonNegativePart(X0) → max(X0, 0) entry by entry in a new Float64Array (applyNonnegativity: −0 to +0;
// a NaN, which only a missing entry of weighted data holds, stays NaN as Math.max keeps it): the target of every certified
// solve with hard non-negativity, made before it on the calling thread. On the solver's thread team
// (the runtime's thread count), so that its pages are first written by the threads: a JavaScript loop
// took 4 ms at 100000×20, a twentieth of a 2-thread solve.
Napi::Value NonNegativePart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Doubles x = doubles(float64(arg(info, 0, "data")));
  Napi::Float64Array out = newFloat64(env, x.size(), "the non-negative part of data");
  const double* in = x.data();
  double* o = out.Data();
  RowTeam team(teamThreads(0, static_cast<double>(x.size())));
  auto part = [&](int, std::size_t b, std::size_t e) { applyNonnegativity(in + b, e - b, Nonnegativity::Hard, o + b); };
  runRowsIfWorth(team, x.size(), 1024, static_cast<double>(x.size()), part);
  return out;
}

const Export kCertified[] = {{"certifiedSolve", CertifiedSolveSync},
                             {"certifiedSolveAsync", CertifiedSolveAsync},
                             {"certifiedEnergy", CertifiedEnergyAt},
                             {"nonNegativePart", NonNegativePart}};

void registerCertified(Napi::Env env, Napi::Object exports) { exportFunctions(env, exports, kCertified); }

}  // namespace

NSA_REGISTER(registerCertified);

}  // namespace nsa::addon
