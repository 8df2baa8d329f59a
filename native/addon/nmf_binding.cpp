// Bindings of the NMF kernels (native/kernels/nmf.hpp). lib/factorization/ validates and names every
// defect first; the checks here (args.hpp) are the second guard that keeps a direct call with garbage
// from crashing: every field read once first, exact types, lengths, memory, then the data taken
// (copied when shared or kept by a job) and its CSR structure and values checked.
//
//   stratifiedNmf(strata, cols, rank, options)            → result
//   stratifiedNmfAsync(strata, cols, rank, options, token, onProgress, intervalMs) → Promise<result>
//   nmf(A, rank, options) / nmfAsync(A, rank, options, token, onProgress, intervalMs)
// A data matrix is {rows, cols, data} (dense, row-major) or {rows, cols, indptr, indices, data} (CSR).
// Stratified-NMF's rank is a number or an array of one rank rₛ ≥ 0 per stratum (nested topics: H has
// max rₛ rows; W(s), given or returned, is rows·rₛ).
// options: {solver?: 'mu'|'hals' (default 'mu'), maxIterations, tolerance, lossEvery, init: 'random'|'nndsvd'|'given', seed, epsilon?, certificateTolerance?,
//           vScaling, V?, W?: Float64Array[], H?, l1V?, l2V?, l1W?, l2W?, l1H?, l2H?}
//          (NMF: solver, loss, W?, H?, l1W?, l2W?, l1H?, l2H?, innerSweeps?, innerTolerance?), and the missing
//          values: weights?, missing? and maskEntries? ({rows, cols: Int32Array}, CSR data: its missing entries
//          as a list; Stratified-NMF: one per stratum, null for none).
// result: {V?, W, H, trace: {iteration, timeMs, loss, objective (with a penalty on)}, iterations, stopReason, certificate}.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "../kernels/nmf.hpp"
#include "async_job.hpp"
#include "common.hpp"

namespace nsa::addon {

namespace {

// One data matrix, read and type-checked (phases a, b) but not taken: {rows, cols, data} (dense) or
// {rows, cols, indptr, indices, data} (CSR).
struct DataIn {
  std::string name;
  std::size_t rows = 0, cols = 0;
  TypedIn data;
  std::optional<TypedIn> indptr, indices;
  bool sparse() const { return indptr.has_value(); }
  double values() const { return static_cast<double>(data.length); }
};

DataIn dataIn(const In& v) {
  const Fields f(v, {"rows", "cols", "data", "indptr", "indices"});
  DataIn d;
  d.name = v.name;
  d.rows = dimension(f["rows"]);
  d.cols = dimension(f["cols"]);
  if (!f.has("indptr")) {
    d.data = float64(f["data"], product(v.value.Env(), {d.rows, d.cols}, v.name), "rows·cols");
    return d;
  }
  d.indptr = int32(f["indptr"], d.rows + 1, "rows + 1");
  d.indices = int32(f["indices"]);
  d.data = float64(f["data"], d.indices->length, "indices.length");
  return d;
}

// A data matrix whose buffers are the caller's (a sync call, unshared memory) or owned copies.
struct OwnedData {
  DataMatrix view;
  Doubles values;
  Int32s indptr, indices;
  std::vector<double> observed;  // dense data with weights: a copy, 0 where the weight is 0
};

// Phase (c): takes the data (copied when `copy` or shared) and checks the values that will be used:
// CSR structure and finite non-negative entries. With dense weights ω the data is always copied and
// its entries where ω = 0 (missing: they may hold NaN) are set to 0, so the kernel never reads them.
std::unique_ptr<OwnedData> takeData(Napi::Env env, const DataIn& d, bool copy, const double* omega = nullptr) {
  auto o = std::make_unique<OwnedData>();
  o->view.rows = d.rows;
  o->view.cols = d.cols;
  if (!d.sparse() && omega) {
    o->observed = std::move(doubles(d.data, true)).owned();
    for (std::size_t i = 0; i < o->observed.size(); ++i)
      if (omega[i] == 0.0) o->observed[i] = 0.0;
    requireNonNegativeFinite(env, o->observed.data(), o->observed.size(), d.name + ".data (at entries of positive weight)");
    o->view.dense = o->observed.data();
    return o;
  }
  o->values = doubles(d.data, copy);
  if (!d.sparse()) {
    requireNonNegativeFinite(env, o->values.data(), o->values.size(), d.name + ".data");
    o->view.dense = o->values.data();
    return o;
  }
  o->indptr = int32s(*d.indptr, copy);
  o->indices = int32s(*d.indices, copy);
  const int32_t* p = o->indptr.data();
  const int32_t* idx = o->indices.data();
  const std::size_t rows = d.rows, nnz = o->indices.size();
  if (p[0] != 0) throwRangeJs(env, "Expected indptr[0] = 0 for " + d.name + ".indptr but received " + std::to_string(p[0]));
  for (std::size_t i = 0; i < rows; ++i)
    if (p[i + 1] < p[i])
      throwRangeJs(env, "Expected a non-decreasing " + d.name + ".indptr but received " + std::to_string(p[i + 1]) + " after " +
                            std::to_string(p[i]) + " at index " + std::to_string(i + 1));
  if (static_cast<std::size_t>(p[rows]) != nnz)
    throwRangeJs(env, "Expected indptr[rows] = indices.length (" + std::to_string(nnz) + ") for " + d.name +
                          ".indptr but received " + std::to_string(p[rows]));
  for (std::size_t i = 0; i < rows; ++i)
    for (int32_t q = p[i]; q < p[i + 1]; ++q)
      if (idx[q] < 0 || static_cast<std::size_t>(idx[q]) >= d.cols || (q > p[i] && idx[q] <= idx[q - 1]))
        throwRangeJs(env, "Expected strictly increasing column indices in [0, cols) in each row for " + d.name +
                              ".indices but received " + std::to_string(idx[q]) + " at index " + std::to_string(q));
  requireNonNegativeFinite(env, o->values.data(), nnz, d.name + ".data");
  o->view.values = o->values.data();
  o->view.indptr = p;
  o->view.indices = idx;
  return o;
}

// Doubles an NMF solve keeps besides its data (nmf.cpp, nmf_stratified.cpp), N data rows in S strata,
// m columns, rank r: the factors (C++, the random draws of a partial init and the JS results), the
// update workspaces (N×r, m×r and r×r products), the loss's row block, NNDSVD's sketches (rank + 10)
// and, for the KL loss, the quotient (nonzeros or N·m) and the dense W·H.
double nmfDoubles(double N, double m, double r, double S, double nonzeros, bool kl, bool dense) {
  const double factors = N * r + r * m + S * m;
  double d = 3 * factors + 4 * N * r + 6 * m * r + 4 * r * r + 2 * S * m + (m > 65536 ? m : 65536) + 6 * (N + m) * (r + 10) + 4 * r;
  if (kl) d += nonzeros + (dense ? N * m : 0);
  return d;
}

// Bytes of a copy of the data (a job keeps one; shared input is copied for a sync call too).
double dataBytes(const DataIn& d) {
  return d.sparse() ? 12 * d.values() + 4 * (static_cast<double>(d.rows) + 1) : 8 * d.values();
}

// Copies the dense strata, in order, into one buffer so that consecutive dense strata are contiguous
// (the kernel then runs one GEMM for all of them). Jobs always copy; sync calls copy only small data,
// where the per-call overhead of many small GEMMs matters and the copy costs little.
void stackDense(std::vector<DataMatrix>& views, std::vector<double>& stacked, bool always) {
  std::size_t total = 0;
  for (const DataMatrix& v : views)
    if (!v.sparse()) total += v.rows * v.cols;
  if (total == 0 || (!always && (views.size() < 2 || total > (std::size_t{1} << 22)))) return;
  stacked.resize(total);
  std::size_t at = 0;
  for (DataMatrix& v : views) {
    if (v.sparse()) continue;
    std::memcpy(stacked.data() + at, v.dense, v.rows * v.cols * sizeof(double));
    v.dense = stacked.data() + at;
    at += v.rows * v.cols;
  }
}

NmfInit initOf(const In& v) {
  static const std::map<std::string, NmfInit> names = {
      {"random", NmfInit::Random}, {"nndsvd", NmfInit::Nndsvd}, {"given", NmfInit::Given}};
  return oneOf(v, names);
}

// The multiplicative updates' denominator shift (optional; default 1e-9): in (0, 1], as 0 would
// divide 0 by 0 on a zero row.
double epsilonIn(Napi::Env env, const In& v) {
  const double e = numberIn(v, 0, 1);
  if (!(e > 0)) throwRangeJs(env, "Expected a number in (0, 1] for " + v.name + " but received 0");
  return e;
}

// The penalty weights l1<X>, l2<X> of block X (optional, default 0): finite and ≥ 0.
Penalty penaltyIn(const Fields& o, const char* block) {
  Penalty p;
  const std::string l1 = std::string("l1") + block, l2 = std::string("l2") + block;
  if (o.has(l1.c_str())) p.l1 = numberIn(o[l1.c_str()], 0, std::numeric_limits<double>::max());
  if (o.has(l2.c_str())) p.l2 = numberIn(o[l2.c_str()], 0, std::numeric_limits<double>::max());
  return p;
}

uint64_t seedOf(const In& v) { return static_cast<uint64_t>(integerIn(v, 0, 9007199254740991)); }

// A given factor (optional): checked for length now, copied into `out` by takeFactor.
std::optional<TypedIn> givenIn(const In& v, std::size_t n, const char* meaning) {
  if (v.value.IsUndefined()) return std::nullopt;
  return float64(v, n, meaning);
}
void takeFactor(Napi::Env env, const TypedIn& t, double* out) {
  Doubles d = doubles(t);
  requireNonNegativeFinite(env, d.data(), d.size(), t.name);
  if (d.size()) std::memcpy(out, d.data(), d.size() * sizeof(double));
}


// The missing-value options of one data matrix: `weights` (dense data only: a Float64Array of
// rows·cols finite weights ≥ 0, 0 = missing), `missing` 'absent' (CSR data only: the absent
// entries are missing rather than observed zeros) or `maskEntries` (CSR data only: {rows, cols},
// Int32Arrays of one length, the missing entries as a list, so that no rows×cols array is ever
// made). Read and checked for type and length (a, b); the indices are checked when taken (c).
struct MissingIn {
  std::optional<TypedIn> weights;
  bool absentMissing = false;
  std::optional<TypedIn> maskRows, maskCols;
  std::string maskName;
  bool any() const { return weights || absentMissing || maskRows; }
};

// Among strata (`stratum`), 'absent' concerns the CSR strata only.
MissingIn missingIn(Napi::Env env, const DataIn& d, const In& weights, const In& missing, const In& maskEntries,
                    bool stratum = false) {
  MissingIn out;
  if (!missing.value.IsUndefined()) {
    static const std::map<std::string, bool> names = {{"absent", true}, {"observed", false}};
    out.absentMissing = oneOf(missing, names) && (d.sparse() || !stratum);
    if (out.absentMissing && !d.sparse())
      throwRangeJs(env, "Expected CSR data for " + missing.name + " 'absent' but " + d.name + " is dense (give weights instead)");
  }
  if (!weights.value.IsUndefined() && !weights.value.IsNull()) {
    if (d.sparse())
      throwRangeJs(env, "Expected dense data for " + weights.name + " but " + d.name + " is CSR (use missing 'absent' for CSR)");
    out.weights = float64(weights, product(env, {d.rows, d.cols}, weights.name), "rows·cols");
  }
  if (!maskEntries.value.IsUndefined() && !maskEntries.value.IsNull()) {
    const Fields f(maskEntries, {"rows", "cols"});
    out.maskName = maskEntries.name;
    out.maskRows = int32(f["rows"]);
    out.maskCols = int32(f["cols"], out.maskRows->length, "rows.length");
    if (!d.sparse())
      throwRangeJs(env, "Expected CSR data for " + maskEntries.name + " but " + d.name + " is dense (give weights instead)");
    if (out.absentMissing)
      throwRangeJs(env, "Expected missing 'observed' with " + maskEntries.name + " but received 'absent' for " + missing.name +
                            " (the absent entries of " + d.name + " are missing already)");
  }
  return out;
}

// The listed missing entries of CSR data (phase c): every index in range, no entry twice, then the
// list built and the stored entries among them set to 0 in the data's copy (EntryWeights's contract).
EntryWeights takeMaskEntries(Napi::Env env, const MissingIn& mi, OwnedData& o) {
  const Int32s rows = int32s(*mi.maskRows), cols = int32s(*mi.maskCols);
  const std::size_t k = rows.size();
  for (std::size_t p = 0; p < k; ++p) {
    if (rows[p] < 0 || static_cast<std::size_t>(rows[p]) >= o.view.rows)
      throwRangeJs(env, "Expected row indices in [0, " + std::to_string(o.view.rows) + ") for " + mi.maskRows->name + " but received " +
                            std::to_string(rows[p]) + " at index " + std::to_string(p));
    if (cols[p] < 0 || static_cast<std::size_t>(cols[p]) >= o.view.cols)
      throwRangeJs(env, "Expected column indices in [0, " + std::to_string(o.view.cols) + ") for " + mi.maskCols->name + " but received " +
                            std::to_string(cols[p]) + " at index " + std::to_string(p));
  }
  EntryWeights e = maskedEntryWeights(o.view, rows.data(), cols.data(), k);
  // Zero the stored entries the list names: both are sorted by column within a row, so one merge per row.
  double* values = o.values.size() ? const_cast<double*>(o.values.data()) : nullptr;  // an owned copy (taken with copy)
  for (std::size_t i = 0; i < o.view.rows && e.active(); ++i) {
    std::size_t p = e.rowPtr[i];
    int32_t q = o.view.indptr[i];
    for (; p < e.rowPtr[i + 1]; ++p) {
      const int32_t j = e.rowCol[p];
      if (p > e.rowPtr[i] && j == e.rowCol[p - 1])
        throwRangeJs(env, "Expected distinct entries in " + mi.maskName + " but received [" +
                              std::to_string(i) + ", " + std::to_string(j) + "] twice");
      while (q < o.view.indptr[i + 1] && o.view.indices[q] < j) ++q;
      if (q < o.view.indptr[i + 1] && o.view.indices[q] == j) values[q] = 0.0;
    }
  }
  return e;
}

// Phase (c) of the missing-value options: the data taken (zeroed where the weight is 0) and the
// listed entries built, with their memory checked first (the list's size is known only now).
std::unique_ptr<OwnedData> takeWeightedData(Napi::Env env, const DataIn& d, const MissingIn& mi, bool copy,
                                            EntryWeights& weights) {
  if (mi.maskRows) {
    // The list (both orders) and its row counts, beside the copy of the data that is zeroed at it.
    const double k = static_cast<double>(mi.maskRows->length);
    checkMemory(env, dataBytes(d) + float64Bytes({1}) * (entryWeightsDoubles(static_cast<double>(d.rows), static_cast<double>(d.cols), k) + static_cast<double>(d.rows)),
                [&] { return "the " + std::to_string(mi.maskRows->length) + " listed missing entries of " + d.name + " and its zeroed copy"; });
    auto o = takeData(env, d, true);
    weights = takeMaskEntries(env, mi, *o);
    return o;
  }
  if (!mi.weights) {
    auto o = takeData(env, d, copy);
    if (mi.absentMissing) {
      checkMemory(env, float64Bytes({1}) * entryWeightsDoubles(static_cast<double>(d.rows), static_cast<double>(d.cols), d.values()),
                  [&] { return std::string("the list of observed entries of ") + d.name; });
      weights = storedEntryWeights(o->view);
    }
    return o;
  }
  Doubles omega = doubles(*mi.weights, true);  // read once: what is checked is what is used
  requireNonNegativeFinite(env, omega.data(), omega.size(), mi.weights->name);
  double listed = 0;
  for (std::size_t i = 0; i < omega.size(); ++i) listed += omega[i] != 1.0;
  checkMemory(env, float64Bytes({1}) * entryWeightsDoubles(static_cast<double>(d.rows), static_cast<double>(d.cols), listed),
              [&] { return "the " + std::to_string(static_cast<std::size_t>(listed)) + " entries of weight ≠ 1 of " + d.name; });
  auto o = takeData(env, d, copy, omega.data());
  weights = denseEntryWeights(o->view, omega.data());
  return o;
}

void setTrace(Napi::Env env, Napi::Object out, const NmfRun& run) {
  Napi::Object trace = Napi::Object::New(env);
  trace.Set("iteration", newFloat64Array(env, run.trace.iteration.data(), run.trace.iteration.size()));
  trace.Set("timeMs", newFloat64Array(env, run.trace.timeMs.data(), run.trace.timeMs.size()));
  trace.Set("loss", newFloat64Array(env, run.trace.loss.data(), run.trace.loss.size()));
  if (!run.objective.empty()) trace.Set("objective", newFloat64Array(env, run.objective.data(), run.objective.size()));
  out.Set("trace", trace);
  out.Set("iterations", Napi::Number::New(env, run.iterations));
  out.Set("stopReason", Napi::String::New(env, stopReasonName(run.stop)));
  out.Set("certificate", Napi::Number::New(env, run.certificate));
}

// ---- Stratified-NMF ---------------------------------------------------------------------------

// The strata of a call: at most this many (each has at least one row).
constexpr std::size_t kMaxStrata = 1 << 20;

// The rank argument: one rank for every stratum, or an array of one rank rₛ ≥ 0 per stratum (nested
// topics, StratifiedNmfOptions::stratumRanks). Read (a) with `rankElements`, checked (b) by `rankOf`,
// which returns r = max rₛ ≥ 1 and fills `stratumRanks` (left empty for one rank).
std::vector<In> rankElements(const In& rank, std::size_t S) {
  return rank.value.IsArray() ? elements(rank, S, S) : std::vector<In>{};
}
std::size_t rankOf(Napi::Env env, const In& rank, const std::vector<In>& list, std::vector<std::size_t>& stratumRanks) {
  if (list.empty()) return dimension(rank);
  std::size_t r = 0;
  for (const In& e : list) {
    stratumRanks.push_back(dimension(e, 0));
    r = std::max(r, stratumRanks.back());
  }
  if (r == 0) throwRangeJs(env, "Expected at least one positive rank (H needs a row) for " + rank.name + " but received all zeros");
  return r;
}
// The columns of W(s) as given and as stored (rₛ of r: the rest are its fixed zeros).
std::size_t givenRank(const std::vector<std::size_t>& stratumRanks, std::size_t s, std::size_t r) {
  return stratumRanks.empty() ? r : stratumRanks[s];
}
// A given nₛ×rₛ W(s) into its nₛ×r buffer (columns ≥ rₛ zero).
void takePaddedFactor(Napi::Env env, const TypedIn& t, std::size_t rows, std::size_t rs, std::size_t r, double* out) {
  if (rs == r) return takeFactor(env, t, out);
  std::vector<double> given(rows * rs);
  takeFactor(env, t, given.data());
  std::fill(out, out + rows * r, 0.0);
  for (std::size_t i = 0; i < rows; ++i) std::copy(given.data() + i * rs, given.data() + (i + 1) * rs, out + i * r);
}

class StratifiedNmfJob : public Job {
 public:
  StratifiedNmfJob(const Napi::CallbackInfo& info, bool copy) {
    Napi::Env env = info.Env();
    // (a) read everything
    const std::vector<In> strata = elements(arg(info, 0, "strata"), 1, kMaxStrata);
    std::vector<DataIn> data;
    data.reserve(strata.size());
    for (const In& s : strata) data.push_back(dataIn(s));
    m_ = dimension(arg(info, 1, "cols"));
    const In rankArg = arg(info, 2, "rank");
    const std::vector<In> rankList = rankElements(rankArg, strata.size());
    const Fields o(arg(info, 3, "options"), {"solver", "maxIterations", "vScaling", "tolerance", "lossEvery", "init", "seed", "epsilon",
                                             "certificateTolerance", "V", "W", "H", "weights", "missing", "maskEntries",
                                             "l1V", "l2V", "l1W", "l2W", "l1H", "l2H"});
    init_ = initOf(o["init"]);
    std::vector<In> Wlist;
    if (init_ == NmfInit::Given && o.has("W")) Wlist = elements(o["W"], strata.size(), strata.size());
    // weights: one entry per stratum (a Float64Array, or null for a stratum without weights).
    std::vector<In> weightList;
    if (o.has("weights")) weightList = elements(o["weights"], strata.size(), strata.size());
    // maskEntries: one entry per stratum (a list {rows, cols} for a CSR stratum, or null).
    std::vector<In> maskList;
    if (o.has("maskEntries")) maskList = elements(o["maskEntries"], strata.size(), strata.size());
    // (b) check
    opts_.rank = rankOf(env, rankArg, rankList, opts_.stratumRanks);
    if (o.has("solver")) {
      static const std::map<std::string, StratifiedNmfSolver> solvers = {{"mu", StratifiedNmfSolver::Mu},
                                                                         {"hals", StratifiedNmfSolver::Hals}};
      opts_.solver = oneOf(o["solver"], solvers);
    }
    opts_.maxIterations = intIn(o["maxIterations"], 0, 1 << 30);
    opts_.vScaling = intIn(o["vScaling"], 0, 1000);
    opts_.tolerance = numberIn(o["tolerance"], 0, 1);
    opts_.lossEvery = intIn(o["lossEvery"], 1, 1 << 30);
    seed_ = seedOf(o["seed"]);
    if (o.has("epsilon")) opts_.epsilon = epsilonIn(env, o["epsilon"]);
    if (o.has("certificateTolerance")) opts_.certificateTolerance = numberIn(o["certificateTolerance"], 0, 1);
    opts_.penaltyV = penaltyIn(o, "V");
    opts_.penaltyW = penaltyIn(o, "W");
    opts_.penaltyH = penaltyIn(o, "H");
    const std::size_t S = data.size(), r = opts_.rank;
    std::size_t totalRows = 0;
    double nonzeros = 0, copyBytes = 0;
    bool anyDense = false;
    std::vector<MissingIn> missing;
    for (std::size_t s = 0; s < data.size(); ++s) {
      const DataIn& d = data[s];
      if (d.cols != m_)
        throwRangeJs(env, "Expected " + std::to_string(m_) + " (cols) for " + d.name + ".cols but received " + std::to_string(d.cols));
      totalRows += d.rows;
      nonzeros += d.values();
      anyDense |= !d.sparse();
      missing.push_back(missingIn(env, d, weightList.empty() ? o["weights"] : weightList[s], o["missing"],
                                  maskList.empty() ? o["maskEntries"] : maskList[s], true));
      if (copy || d.data.shared) copyBytes += dataBytes(d);
      if (missing.back().weights) copyBytes += 2 * dataBytes(d);  // the weights and the zeroed data, read into copies
    }
    // With missing entries, HALS sweeps rows and columns with their own lists: the team's buffers for
    // them (at most one thread per core, teamThreads' cap), and int32 indices into the stacked W.
    bool anyMissing = false;
    for (const MissingIn& mi : missing) anyMissing |= mi.any();
    double rowLists = 0;
    if (anyMissing && opts_.solver == StratifiedNmfSolver::Hals) {
      if (totalRows > static_cast<std::size_t>(INT32_MAX))
        throwRangeJs(env, "Expected at most 2147483647 rows in all strata with missing entries (weights, mask or missing) but received " +
                              std::to_string(totalRows));
      rowLists = stratifiedNmfRowListDoubles(static_cast<double>(totalRows), static_cast<double>(m_), static_cast<double>(r),
                                             static_cast<double>(std::max(1u, std::thread::hardware_concurrency())));
    }
    std::optional<TypedIn> Vin, Hin;
    std::vector<TypedIn> Win;
    if (init_ == NmfInit::Given) {
      Vin = givenIn(o["V"], product(env, {S, m_}, "options.V"), "strata·cols");
      Hin = givenIn(o["H"], product(env, {r, m_}, "options.H"), "rank·cols");
      for (std::size_t s = 0; s < Wlist.size(); ++s)
        Win.push_back(float64(Wlist[s], product(env, {data[s].rows, givenRank(opts_.stratumRanks, s, r)}, Wlist[s].name), "rows·rank"));
    }
    checkMemory(env,
                copyBytes + float64Bytes({1}) * (nmfDoubles(static_cast<double>(totalRows), static_cast<double>(m_), static_cast<double>(r),
                                                            static_cast<double>(S), nonzeros, false, anyDense) +
                                                 (anyDense ? nonzeros : 0) + rowLists),
                                                     [&] { return std::string("Stratified-NMF of rank " + std::to_string(r) + " on " + std::to_string(totalRows) + "×" + std::to_string(m_) + " data"); });
    // (c) take the data, (d) copy what the job keeps
    weights_.resize(data.size());
    for (std::size_t s = 0; s < data.size(); ++s) {
      data_.push_back(takeWeightedData(env, data[s], missing[s], copy, weights_[s]));
      views_.push_back(data_.back()->view);
    }
    stackDense(views_, stacked_, copy);
    V_.resize(S * m_);
    H_.resize(r * m_);
    // All W(s) in one buffer, stratum after stratum (the kernel's GEMMs span consecutive strata).
    std::size_t at = 0;
    for (const DataMatrix& v : views_) wOffset_.push_back(at), at += v.rows;
    W_.resize(totalRows * r);
    if (Vin) takeFactor(env, *Vin, V_.data());
    if (Hin) takeFactor(env, *Hin, H_.data());
    for (std::size_t s = 0; s < Win.size(); ++s) takePaddedFactor(env, Win[s], views_[s].rows, givenRank(opts_.stratumRanks, s, opts_.rank), opts_.rank, Wof(s));
    given_[0] = Vin.has_value();
    given_[1] = !Win.empty();
    given_[2] = Hin.has_value();
  }

  void execute(Monitor& monitor) override {
    const std::size_t S = views_.size();
    std::vector<double*> W(S);
    for (std::size_t s = 0; s < S; ++s) W[s] = Wof(s);
    if (init_ != NmfInit::Given) {
      stratifiedNmfInit(views_, opts_.rank, init_, seed_, V_.data(), W, H_.data(), opts_.stratumRanks);
    } else if (!(given_[0] && given_[1] && given_[2])) {
      // Draw everything (so the draws do not depend on which factors were given), keep the given.
      std::vector<double> V(V_.size()), Wr(W_.size()), H(H_.size());
      std::vector<double*> Wp(S);
      for (std::size_t s = 0; s < S; ++s) Wp[s] = Wr.data() + wOffset_[s] * opts_.rank;
      stratifiedNmfInit(views_, opts_.rank, NmfInit::Random, seed_, V.data(), Wp, H.data(), opts_.stratumRanks);
      if (!given_[0]) V_ = V;
      if (!given_[1]) W_ = Wr;
      if (!given_[2]) H_ = H;
    }
    run_ = stratifiedNmf(views_, opts_, V_.data(), W, H_.data(), monitor, &weights_);
  }

  Napi::Value result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("V", newFloat64Array(env, V_.data(), V_.size()));
    Napi::Array W = Napi::Array::New(env, views_.size());
    for (std::size_t s = 0; s < views_.size(); ++s) {
      // W(s) as nₛ×rₛ: its free columns only.
      const std::size_t n = views_[s].rows, r = opts_.rank, rs = givenRank(opts_.stratumRanks, s, r);
      if (rs == r) {
        W.Set(static_cast<uint32_t>(s), newFloat64Array(env, Wof(s), n * r));
        continue;
      }
      Napi::Float64Array Ws = newFloat64(env, n * rs, "a result");
      for (std::size_t i = 0; i < n; ++i) std::copy(Wof(s) + i * r, Wof(s) + i * r + rs, Ws.Data() + i * rs);
      W.Set(static_cast<uint32_t>(s), Ws);
    }
    out.Set("W", W);
    out.Set("H", newFloat64Array(env, H_.data(), H_.size()));
    setTrace(env, out, run_);
    return out;
  }

 private:
  std::vector<std::unique_ptr<OwnedData>> data_;
  std::vector<EntryWeights> weights_;
  std::vector<DataMatrix> views_;
  std::size_t m_ = 0;
  StratifiedNmfOptions opts_;
  NmfInit init_ = NmfInit::Random;
  uint64_t seed_ = 0;
  bool given_[3] = {false, false, false};
  double* Wof(std::size_t s) { return W_.data() + wOffset_[s] * opts_.rank; }

  std::vector<double> stacked_;
  std::vector<std::size_t> wOffset_;
  std::vector<double> V_, W_, H_;
  NmfRun run_;
};

Napi::Value StratifiedNmfSync(const Napi::CallbackInfo& info) {
  StratifiedNmfJob job(info, false);
  guarded(info.Env(), [&] { job.execute(silentMonitor()); });
  return job.result(info.Env());
}

Napi::Value StratifiedNmfAsync(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<StratifiedNmfJob>(info, true);
  AsyncArgs a = asyncArgs(info, 4);
  return startJob(info.Env(), std::move(job), std::move(a));
}

// (strata, cols, rank, V, W[], H) → loss, for checks of given factors.
Napi::Value StratifiedNmfLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // (a) read everything
  const std::vector<In> strata = elements(arg(info, 0, "strata"), 1, kMaxStrata);
  std::vector<DataIn> data;
  data.reserve(strata.size());
  for (const In& s : strata) data.push_back(dataIn(s));
  const std::vector<In> Wlist = elements(arg(info, 4, "W"), strata.size(), strata.size());
  const In rankArg = arg(info, 2, "rank");
  const std::vector<In> rankList = rankElements(rankArg, strata.size());
  // (b) check
  std::vector<std::size_t> stratumRanks;
  const std::size_t m = dimension(arg(info, 1, "cols")), r = rankOf(env, rankArg, rankList, stratumRanks);
  const std::size_t S = data.size();
  std::size_t totalRows = 0;
  double nonzeros = 0, copyBytes = 0;
  for (const DataIn& d : data) {
    if (d.cols != m) throwRangeJs(env, "Expected " + std::to_string(m) + " (cols) for " + d.name + ".cols but received " + std::to_string(d.cols));
    totalRows += d.rows;
    nonzeros += d.values();
    if (d.data.shared) copyBytes += dataBytes(d);
  }
  TypedIn Vin = float64(arg(info, 3, "V"), product(env, {S, m}, "V"), "strata·cols");
  std::vector<TypedIn> Win;
  for (std::size_t s = 0; s < S; ++s)
    Win.push_back(float64(Wlist[s], product(env, {data[s].rows, givenRank(stratumRanks, s, r)}, Wlist[s].name), "rows·rank"));
  TypedIn Hin = float64(arg(info, 5, "H"), product(env, {r, m}, "H"), "rank·cols");
  checkMemory(env,
              copyBytes + float64Bytes({1}) * nmfDoubles(static_cast<double>(totalRows), static_cast<double>(m), static_cast<double>(r),
                                                         static_cast<double>(S), nonzeros, false, false),
                                                             [&] { return std::string("the Stratified-NMF loss of rank " + std::to_string(r) + " on " + std::to_string(totalRows) + "×" + std::to_string(m) + " data"); });
  // (c) take
  std::vector<std::unique_ptr<OwnedData>> owned;
  std::vector<DataMatrix> views;
  for (const DataIn& d : data) {
    owned.push_back(takeData(env, d, false));
    views.push_back(owned.back()->view);
  }
  Doubles V = doubles(Vin), H = doubles(Hin);
  requireFinite(env, V.data(), V.size(), "V");
  requireFinite(env, H.data(), H.size(), "H");
  std::vector<Doubles> Ws;
  std::vector<double*> W;
  std::vector<std::vector<double>> padded(S);  // per-stratum ranks: W(s) as nₛ×r, columns ≥ rₛ zero
  for (std::size_t s = 0; s < S; ++s) {
    const TypedIn& w = Win[s];
    Ws.push_back(doubles(w));
    requireFinite(env, Ws.back().data(), Ws.back().size(), w.name);
    const std::size_t rs = givenRank(stratumRanks, s, r), n = data[s].rows;
    if (rs == r) {
      W.push_back(const_cast<double*>(Ws.back().data()));
      continue;
    }
    padded[s].assign(n * r, 0.0);
    for (std::size_t i = 0; i < n; ++i) std::copy(Ws.back().data() + i * rs, Ws.back().data() + (i + 1) * rs, padded[s].data() + i * r);
    W.push_back(padded[s].data());
  }
  return Napi::Number::New(env, guarded(env, [&] { return stratifiedNmfLoss(views, r, V.data(), W, H.data()); }));
}

// ---- plain NMF ------------------------------------------------------------------------------------

class NmfJob : public Job {
 public:
  NmfJob(const Napi::CallbackInfo& info, bool copy) {
    Napi::Env env = info.Env();
    // (a) read everything
    const DataIn A = dataIn(arg(info, 0, "A"));
    opts_.rank = dimension(arg(info, 1, "rank"));
    const Fields o(arg(info, 2, "options"), {"solver", "loss", "maxIterations", "tolerance", "lossEvery", "init", "seed", "epsilon",
                                             "certificateTolerance", "W", "H", "weights", "missing", "maskEntries",
                                             "l1W", "l2W", "l1H", "l2H", "innerSweeps", "innerTolerance"});
    // (b) check
    static const std::map<std::string, NmfSolver> solvers = {{"mu", NmfSolver::Mu}, {"hals", NmfSolver::Hals}};
    static const std::map<std::string, NmfLoss> losses = {{"frobenius", NmfLoss::Frobenius}, {"kl", NmfLoss::KL}};
    opts_.solver = oneOf(o["solver"], solvers);
    opts_.loss = oneOf(o["loss"], losses);
    if (opts_.loss == NmfLoss::KL && opts_.solver != NmfSolver::Mu)
      throwRangeJs(env, "Expected solver 'mu' for options.solver with the KL loss but received " + describe(o["solver"].value));
    opts_.maxIterations = intIn(o["maxIterations"], 0, 1 << 30);
    opts_.tolerance = numberIn(o["tolerance"], 0, 1);
    opts_.lossEvery = intIn(o["lossEvery"], 1, 1 << 30);
    init_ = initOf(o["init"]);
    seed_ = seedOf(o["seed"]);
    if (o.has("epsilon")) opts_.epsilon = epsilonIn(env, o["epsilon"]);
    if (o.has("certificateTolerance")) opts_.certificateTolerance = numberIn(o["certificateTolerance"], 0, 1);
    opts_.penaltyW = penaltyIn(o, "W");
    opts_.penaltyH = penaltyIn(o, "H");
    const MissingIn missing = missingIn(env, A, o["weights"], o["missing"], o["maskEntries"]);
    if (missing.any() && opts_.loss == NmfLoss::KL)
      throwRangeJs(env, "Expected the Frobenius loss with options.weights, options.missing or options.maskEntries but received loss 'kl'");
    // Inner sweeps (optional, default 1): the unweighted Frobenius updates only reuse their products.
    if (o.has("innerSweeps")) opts_.innerSweeps = intIn(o["innerSweeps"], 1, 1 << 20);
    if (o.has("innerTolerance")) opts_.innerTolerance = numberIn(o["innerTolerance"], 0, 1);
    if (opts_.innerSweeps > 1 && (opts_.loss == NmfLoss::KL || missing.any()))
      throwRangeJs(env, "Expected options.innerSweeps 1 with the KL loss, weights or missing entries but received " +
                            std::to_string(opts_.innerSweeps));
    const std::size_t r = opts_.rank;
    std::optional<TypedIn> Win, Hin;
    if (init_ == NmfInit::Given) {
      Win = givenIn(o["W"], product(env, {A.rows, r}, "options.W"), "rows·rank");
      Hin = givenIn(o["H"], product(env, {r, A.cols}, "options.H"), "rank·cols");
    }
    checkMemory(env,
                (copy || A.data.shared || missing.weights ? dataBytes(A) : 0) +
                    (missing.weights ? dataBytes(A) : 0) +  // the weights, read into a copy
                    float64Bytes({1}) * nmfDoubles(static_cast<double>(A.rows), static_cast<double>(A.cols), static_cast<double>(r), 0,
                                                   A.values(), opts_.loss == NmfLoss::KL, !A.sparse()),
                                                       [&] { return std::string("NMF of rank " + std::to_string(r) + " on " + std::to_string(A.rows) + "×" + std::to_string(A.cols) + " data"); });
    // (c) take the data (copied for a job), (d) the factors
    data_ = takeWeightedData(env, A, missing, copy, weights_);
    W_.resize(A.rows * r);
    H_.resize(r * A.cols);
    if (Win) takeFactor(env, *Win, W_.data());
    if (Hin) takeFactor(env, *Hin, H_.data());
    given_[0] = Win.has_value();
    given_[1] = Hin.has_value();
  }

  void execute(Monitor& monitor) override {
    const DataMatrix& A = data_->view;
    if (init_ != NmfInit::Given) {
      nmfInit(A, opts_.rank, init_, seed_, W_.data(), H_.data(), &weights_);
    } else if (!(given_[0] && given_[1])) {
      std::vector<double> W(W_.size()), H(H_.size());
      nmfInit(A, opts_.rank, NmfInit::Random, seed_, W.data(), H.data(), &weights_);
      if (!given_[0]) W_ = W;
      if (!given_[1]) H_ = H;
    }
    run_ = nmf(A, opts_, W_.data(), H_.data(), monitor, &weights_);
  }

  Napi::Value result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("W", newFloat64Array(env, W_.data(), W_.size()));
    out.Set("H", newFloat64Array(env, H_.data(), H_.size()));
    setTrace(env, out, run_);
    return out;
  }

 private:
  std::unique_ptr<OwnedData> data_;
  EntryWeights weights_;
  NmfOptions opts_;
  NmfInit init_ = NmfInit::Random;
  uint64_t seed_ = 0;
  bool given_[2] = {false, false};
  std::vector<double> W_, H_;
  NmfRun run_;
};

Napi::Value NmfSync(const Napi::CallbackInfo& info) {
  NmfJob job(info, false);
  guarded(info.Env(), [&] { job.execute(silentMonitor()); });
  return job.result(info.Env());
}

Napi::Value NmfAsync(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<NmfJob>(info, true);
  AsyncArgs a = asyncArgs(info, 3);
  return startJob(info.Env(), std::move(job), std::move(a));
}

// nonNegativeNorm(data: Float64Array) → ‖data‖ when every entry is finite and ≥ 0 and the plain sum
// of squares neither overflows nor underflows (lib/validate.ts scaledNorm's fast case, the same sum
// in the same order), else NaN: lib/factorization/missing.ts then runs its own checks, which name the
// defect, and the scaled norm. One native pass instead of two JS passes over the data (the fixed
// cost of every small factorization call); it reads the data and changes nothing.
Napi::Value NonNegativeNorm(const Napi::CallbackInfo& info) {
  const Doubles x = doubles(float64(arg(info, 0, "data")));
  double sum = 0;
  const bool signed_ = squaredNormSigned(x.data(), x.size(), sum);
  const bool fast = !signed_ && sum > 1e-280 && sum < 1e280;
  return Napi::Number::New(info.Env(), fast ? std::sqrt(sum) : std::numeric_limits<double>::quiet_NaN());
}

const Export kNmf[] = {
    {"nonNegativeNorm", NonNegativeNorm},
    {"stratifiedNmf", StratifiedNmfSync},
    {"stratifiedNmfAsync", StratifiedNmfAsync},
    {"stratifiedNmfLoss", StratifiedNmfLoss},
    {"nmf", NmfSync},
    {"nmfAsync", NmfAsync},
};

void registerNmf(Napi::Env env, Napi::Object exports) { exportFunctions(env, exports, kNmf); }

}  // namespace

NSA_REGISTER(registerNmf);

}  // namespace nsa::addon
