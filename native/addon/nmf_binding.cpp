// Bindings of the NMF kernels (native/kernels/nmf.hpp). lib/factorization/ validates and names every
// defect first; the checks here are the cheap second guard that keeps a direct call with garbage
// from crashing (lengths, CSR structure, finite non-negative values).
//
//   stratifiedNmf(strata, cols, rank, options)            → result
//   stratifiedNmfAsync(strata, cols, rank, options, token, onProgress, intervalMs) → Promise<result>
//   nmf(A, rank, options) / nmfAsync(A, rank, options, token, onProgress, intervalMs)
// A data matrix is {rows, cols, data} (dense, row-major) or {rows, cols, indptr, indices, data} (CSR).
// options: {maxIterations, tolerance, lossEvery, init: 'random'|'nndsvd'|'given', seed,
//           vScaling, V?, W?: Float64Array[], H?}  (NMF: solver, loss, W?, H?).
// result: {V?, W, H, lossIterations, loss, iterations, stopReason}.
#include <cstring>
#include <map>
#include <memory>

#include "../kernels/nmf.hpp"
#include "async_job.hpp"
#include "common.hpp"

namespace nsa::addon {

namespace {

// A data matrix whose buffers are either the caller's (sync calls) or owned copies (jobs).
struct OwnedData {
  DataMatrix view;
  std::vector<double> values;
  std::vector<int32_t> indptr, indices;
};

Napi::Value property(Napi::Object o, const char* key) { return o.Get(key); }

std::size_t sizeProperty(Napi::Env env, Napi::Object o, const char* key, const std::string& what) {
  Napi::Value v = property(o, key);
  if (!v.IsNumber()) throwType(env, "Expected a number for " + what + "." + key);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1) || d != std::floor(d) || d > 2147483647.0)
    throwRangeJs(env, "Expected a positive integer for " + what + "." + key);
  return static_cast<std::size_t>(d);
}

template <class T, napi_typedarray_type kType>
Napi::TypedArrayOf<T> typedProperty(Napi::Env env, Napi::Object o, const char* key, const std::string& what,
                                    const char* typeName) {
  Napi::Value v = property(o, key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType)
    throwType(env, std::string("Expected a ") + typeName + " for " + what + "." + key);
  return v.As<Napi::TypedArrayOf<T>>();
}

void requireFiniteNonNegative(Napi::Env env, const double* x, std::size_t n, const std::string& what) {
  for (std::size_t i = 0; i < n; ++i)
    if (!(x[i] >= 0) || !std::isfinite(x[i]))
      throwRangeJs(env, "Expected finite non-negative values in " + what);
}

// Reads and checks one data matrix; copies CSR buffers when `copy` (dense ones: see stackDense).
std::unique_ptr<OwnedData> dataArg(Napi::Env env, Napi::Value value, const std::string& what, bool copy) {
  if (!value.IsObject()) throwType(env, "Expected a data matrix object for " + what);
  Napi::Object o = value.As<Napi::Object>();
  auto d = std::make_unique<OwnedData>();
  d->view.rows = sizeProperty(env, o, "rows", what);
  d->view.cols = sizeProperty(env, o, "cols", what);
  auto data = typedProperty<double, napi_float64_array>(env, o, "data", what, "Float64Array");
  const bool sparse = !property(o, "indptr").IsUndefined();
  if (!sparse) {
    const std::size_t n = checkedProduct(env, {d->view.rows, d->view.cols}, what.c_str());
    if (data.ElementLength() != n) throwRangeJs(env, "Expected rows*cols values in " + what + ".data");
    requireFiniteNonNegative(env, data.Data(), n, what);
    d->view.dense = data.Data();  // jobs copy dense strata into one stacked buffer (stackDense)
    return d;
  }
  auto indptr = typedProperty<int32_t, napi_int32_array>(env, o, "indptr", what, "Int32Array");
  auto indices = typedProperty<int32_t, napi_int32_array>(env, o, "indices", what, "Int32Array");
  const std::size_t rows = d->view.rows, cols = d->view.cols;
  if (indptr.ElementLength() != rows + 1) throwRangeJs(env, "Expected rows + 1 entries in " + what + ".indptr");
  const int32_t* p = indptr.Data();
  if (p[0] != 0) throwRangeJs(env, "Expected indptr[0] = 0 in " + what);
  for (std::size_t i = 0; i < rows; ++i)
    if (p[i + 1] < p[i]) throwRangeJs(env, "Expected a non-decreasing indptr in " + what);
  const std::size_t nnz = static_cast<std::size_t>(p[rows]);
  if (indices.ElementLength() != nnz || data.ElementLength() != nnz)
    throwRangeJs(env, "Expected indptr[rows] entries in " + what + ".indices and .data");
  const int32_t* idx = indices.Data();
  for (std::size_t i = 0; i < rows; ++i)
    for (int32_t q = p[i]; q < p[i + 1]; ++q)
      if (idx[q] < 0 || static_cast<std::size_t>(idx[q]) >= cols || (q > p[i] && idx[q] <= idx[q - 1]))
        throwRangeJs(env, "Expected strictly increasing column indices in [0, cols) in each row of " + what);
  requireFiniteNonNegative(env, data.Data(), nnz, what);
  if (copy) {
    d->values.assign(data.Data(), data.Data() + nnz);
    d->indptr.assign(p, p + rows + 1);
    d->indices.assign(idx, idx + nnz);
    d->view.values = d->values.data();
    d->view.indptr = d->indptr.data();
    d->view.indices = d->indices.data();
  } else {
    d->view.values = data.Data();
    d->view.indptr = p;
    d->view.indices = idx;
  }
  return d;
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

Napi::Object optionsArg(const Napi::CallbackInfo& info, std::size_t i) {
  if (info.Length() <= i || !info[i].IsObject()) throwType(info.Env(), "Expected an options object");
  return info[i].As<Napi::Object>();
}

double numberOption(Napi::Env env, Napi::Object o, const char* key, double min, double max) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throwType(env, std::string("Expected a number for options.") + key);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max)) throwRangeJs(env, std::string("Expected options.") + key + " in range");
  return d;
}

int intOption(Napi::Env env, Napi::Object o, const char* key, int min, int max) {
  const double d = numberOption(env, o, key, min, max);
  if (d != std::floor(d)) throwRangeJs(env, std::string("Expected an integer for options.") + key);
  return static_cast<int>(d);
}

std::string stringOption(Napi::Env env, Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throwType(env, std::string("Expected a string for options.") + key);
  return v.As<Napi::String>().Utf8Value();
}

template <class E>
E enumOption(Napi::Env env, Napi::Object o, const char* key, const std::map<std::string, E>& names) {
  const std::string s = stringOption(env, o, key);
  auto it = names.find(s);
  if (it == names.end()) throwRangeJs(env, std::string("Unknown value '") + s + "' for options." + key);
  return it->second;
}

NmfInit initOption(Napi::Env env, Napi::Object o) {
  static const std::map<std::string, NmfInit> names = {
      {"random", NmfInit::Random}, {"nndsvd", NmfInit::Nndsvd}, {"given", NmfInit::Given}};
  return enumOption(env, o, "init", names);
}

uint64_t seedOption(Napi::Env env, Napi::Object o) {
  return static_cast<uint64_t>(numberOption(env, o, "seed", 0, 9007199254740991.0));
}

// Copies a given factor (when present) into `out` of length n; returns whether one was given.
bool givenFactor(Napi::Env env, Napi::Value v, double* out, std::size_t n, const std::string& what) {
  if (v.IsUndefined()) return false;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throwType(env, "Expected a Float64Array for " + what);
  auto a = v.As<Napi::Float64Array>();
  if (a.ElementLength() != n) throwRangeJs(env, "Expected " + std::to_string(n) + " values in " + what);
  requireFiniteNonNegative(env, a.Data(), n, what);
  std::memcpy(out, a.Data(), n * sizeof(double));
  return true;
}

const char* stopName(StopReason s) { return s == StopReason::Tolerance ? "tolerance" : "maxIterations"; }

void setTrace(Napi::Env env, Napi::Object out, const NmfRun& run) {
  out.Set("lossIterations", newFloat64Array(env, run.trace.iteration.data(), run.trace.iteration.size()));
  out.Set("loss", newFloat64Array(env, run.trace.loss.data(), run.trace.loss.size()));
  out.Set("iterations", Napi::Number::New(env, run.iterations));
  out.Set("stopReason", Napi::String::New(env, stopName(run.stop)));
}

// ---- Stratified-NMF ---------------------------------------------------------------------------

class StratifiedNmfJob : public Job {
 public:
  StratifiedNmfJob(const Napi::CallbackInfo& info, bool copy) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsArray()) throwType(env, "Expected an array of strata");
    Napi::Array strata = info[0].As<Napi::Array>();
    if (strata.Length() < 1) throwRangeJs(env, "Expected at least one stratum");
    m_ = sizeArg(info, 1, "cols");
    opts_.rank = sizeArg(info, 2, "rank");
    for (uint32_t s = 0; s < strata.Length(); ++s) {
      data_.push_back(dataArg(env, strata.Get(s), "strata[" + std::to_string(s) + "]", copy));
      if (data_.back()->view.cols != m_) throwRangeJs(env, "Expected every stratum to have cols columns");
      views_.push_back(data_.back()->view);
    }
    stackDense(views_, stacked_, copy);
    const std::size_t S = views_.size(), r = opts_.rank;
    Napi::Object o = optionsArg(info, 3);
    opts_.maxIterations = intOption(env, o, "maxIterations", 0, 1 << 30);
    opts_.vScaling = intOption(env, o, "vScaling", 0, 1000);
    opts_.tolerance = numberOption(env, o, "tolerance", 0, 1);
    opts_.lossEvery = intOption(env, o, "lossEvery", 1, 1 << 30);
    init_ = initOption(env, o);
    seed_ = seedOption(env, o);
    V_.resize(checkedProduct(env, {S, m_}, "V"));
    H_.resize(checkedProduct(env, {r, m_}, "H"));
    // All W(s) in one buffer, stratum after stratum (the kernel's GEMMs span consecutive strata).
    std::size_t totalRows = 0;
    for (const DataMatrix& v : views_) wOffset_.push_back(totalRows), totalRows += v.rows;
    W_.resize(checkedProduct(env, {totalRows, r}, "W"));
    if (init_ == NmfInit::Given) {
      Napi::Value W = o.Get("W");
      const bool hasW = !W.IsUndefined();
      if (hasW && (!W.IsArray() || W.As<Napi::Array>().Length() != S))
        throwType(env, "Expected an array of one Float64Array per stratum for options.W");
      given_[0] = givenFactor(env, o.Get("V"), V_.data(), V_.size(), "options.V");
      given_[2] = givenFactor(env, o.Get("H"), H_.data(), H_.size(), "options.H");
      given_[1] = hasW;
      if (hasW)
        for (std::size_t s = 0; s < S; ++s)
          givenFactor(env, W.As<Napi::Array>().Get(static_cast<uint32_t>(s)), Wof(s), views_[s].rows * r,
                      "options.W[" + std::to_string(s) + "]");
    }
  }

  void execute(Monitor& monitor) override {
    const std::size_t S = views_.size();
    std::vector<double*> W(S);
    for (std::size_t s = 0; s < S; ++s) W[s] = Wof(s);
    if (init_ != NmfInit::Given) {
      stratifiedNmfInit(views_, opts_.rank, init_, seed_, V_.data(), W, H_.data());
    } else if (!(given_[0] && given_[1] && given_[2])) {
      // Draw everything (so the draws do not depend on which factors were given), keep the given.
      std::vector<double> V(V_.size()), Wr(W_.size()), H(H_.size());
      std::vector<double*> Wp(S);
      for (std::size_t s = 0; s < S; ++s) Wp[s] = Wr.data() + wOffset_[s] * opts_.rank;
      stratifiedNmfInit(views_, opts_.rank, NmfInit::Random, seed_, V.data(), Wp, H.data());
      if (!given_[0]) V_ = V;
      if (!given_[1]) W_ = Wr;
      if (!given_[2]) H_ = H;
    }
    run_ = stratifiedNmf(views_, opts_, V_.data(), W, H_.data(), monitor);
  }

  Napi::Value result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("V", newFloat64Array(env, V_.data(), V_.size()));
    Napi::Array W = Napi::Array::New(env, views_.size());
    for (std::size_t s = 0; s < views_.size(); ++s)
      W.Set(static_cast<uint32_t>(s), newFloat64Array(env, Wof(s), views_[s].rows * opts_.rank));
    out.Set("W", W);
    out.Set("H", newFloat64Array(env, H_.data(), H_.size()));
    setTrace(env, out, run_);
    return out;
  }

 private:
  std::vector<std::unique_ptr<OwnedData>> data_;
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
  if (info.Length() < 1 || !info[0].IsArray()) throwType(env, "Expected an array of strata");
  Napi::Array strata = info[0].As<Napi::Array>();
  const std::size_t m = sizeArg(info, 1, "cols"), r = sizeArg(info, 2, "rank");
  std::vector<std::unique_ptr<OwnedData>> data;
  std::vector<DataMatrix> views;
  for (uint32_t s = 0; s < strata.Length(); ++s) {
    data.push_back(dataArg(env, strata.Get(s), "strata[" + std::to_string(s) + "]", false));
    if (data.back()->view.cols != m) throwRangeJs(env, "Expected every stratum to have cols columns");
    views.push_back(data.back()->view);
  }
  if (views.empty()) throwRangeJs(env, "Expected at least one stratum");
  Napi::Float64Array V = float64Arg(info, 3, "V", checkedProduct(env, {views.size(), m}, "V"));
  if (info.Length() < 5 || !info[4].IsArray() || info[4].As<Napi::Array>().Length() != views.size())
    throwType(env, "Expected an array of one Float64Array per stratum for W");
  std::vector<Napi::Float64Array> Wa;
  std::vector<double*> W;
  for (uint32_t s = 0; s < views.size(); ++s) {
    Napi::Value w = info[4].As<Napi::Array>().Get(s);
    if (!w.IsTypedArray() || w.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        w.As<Napi::Float64Array>().ElementLength() != views[s].rows * r)
      throwRangeJs(env, "Expected W[s] of length rows·rank");
    Wa.push_back(w.As<Napi::Float64Array>());
    W.push_back(Wa.back().Data());
  }
  Napi::Float64Array H = float64Arg(info, 5, "H", checkedProduct(env, {r, m}, "H"));
  return Napi::Number::New(env, guarded(env, [&] { return stratifiedNmfLoss(views, r, V.Data(), W, H.Data()); }));
}

// ---- plain NMF ------------------------------------------------------------------------------------

class NmfJob : public Job {
 public:
  NmfJob(const Napi::CallbackInfo& info, bool copy) {
    Napi::Env env = info.Env();
    data_ = dataArg(env, info.Length() > 0 ? info[0] : env.Undefined(), "A", copy);
    if (copy && !data_->view.sparse()) {
      data_->values.assign(data_->view.dense, data_->view.dense + data_->view.rows * data_->view.cols);
      data_->view.dense = data_->values.data();
    }
    opts_.rank = sizeArg(info, 1, "rank");
    Napi::Object o = optionsArg(info, 2);
    static const std::map<std::string, NmfSolver> solvers = {{"mu", NmfSolver::Mu}, {"hals", NmfSolver::Hals}};
    static const std::map<std::string, NmfLoss> losses = {{"frobenius", NmfLoss::Frobenius}, {"kl", NmfLoss::KL}};
    opts_.solver = enumOption(env, o, "solver", solvers);
    opts_.loss = enumOption(env, o, "loss", losses);
    if (opts_.loss == NmfLoss::KL && opts_.solver != NmfSolver::Mu) throwRangeJs(env, "The KL loss needs solver 'mu'");
    opts_.maxIterations = intOption(env, o, "maxIterations", 0, 1 << 30);
    opts_.tolerance = numberOption(env, o, "tolerance", 0, 1);
    opts_.lossEvery = intOption(env, o, "lossEvery", 1, 1 << 30);
    init_ = initOption(env, o);
    seed_ = seedOption(env, o);
    const DataMatrix& A = data_->view;
    W_.resize(checkedProduct(env, {A.rows, opts_.rank}, "W"));
    H_.resize(checkedProduct(env, {opts_.rank, A.cols}, "H"));
    if (init_ == NmfInit::Given) {
      given_[0] = givenFactor(env, o.Get("W"), W_.data(), W_.size(), "options.W");
      given_[1] = givenFactor(env, o.Get("H"), H_.data(), H_.size(), "options.H");
    }
  }

  void execute(Monitor& monitor) override {
    const DataMatrix& A = data_->view;
    if (init_ != NmfInit::Given) {
      nmfInit(A, opts_.rank, init_, seed_, W_.data(), H_.data());
    } else if (!(given_[0] && given_[1])) {
      std::vector<double> W(W_.size()), H(H_.size());
      nmfInit(A, opts_.rank, NmfInit::Random, seed_, W.data(), H.data());
      if (!given_[0]) W_ = W;
      if (!given_[1]) H_ = H;
    }
    run_ = nmf(A, opts_, W_.data(), H_.data(), monitor);
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

void registerNmf(Napi::Env env, Napi::Object exports) {
  exports.Set("stratifiedNmf", Napi::Function::New(env, StratifiedNmfSync, "stratifiedNmf"));
  exports.Set("stratifiedNmfAsync", Napi::Function::New(env, StratifiedNmfAsync, "stratifiedNmfAsync"));
  exports.Set("stratifiedNmfLoss", Napi::Function::New(env, StratifiedNmfLoss, "stratifiedNmfLoss"));
  exports.Set("nmf", Napi::Function::New(env, NmfSync, "nmf"));
  exports.Set("nmfAsync", Napi::Function::New(env, NmfAsync, "nmfAsync"));
}

}  // namespace

NSA_REGISTER(registerNmf);

}  // namespace nsa::addon
