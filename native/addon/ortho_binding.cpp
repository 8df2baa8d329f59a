// Bindings of the orthogonalization toolkit (native/kernels/ortho.hpp). Raw signatures are flat
// (buffers, dimensions, option values); lib/ortho.ts is the typed surface that validates first.
#include <cstring>
#include <map>

#include "../kernels/ortho.hpp"
#include "async_job.hpp"
#include "common.hpp"
#include "names.hpp"

namespace nsa::addon {

namespace {

// Dimensions (p, k) at args i, i+1 and a Float64Array of p·k at arg `buf`.
struct MatArg {
  Napi::Float64Array array;
  std::size_t p, k;
};
MatArg matArg(const Napi::CallbackInfo& info, std::size_t buf, std::size_t dims, const char* what) {
  const std::size_t p = sizeArg(info, dims, "rows");
  const std::size_t k = sizeArg(info, dims + 1, "cols");
  const std::size_t n = checkedProduct(info.Env(), {p, k}, what);
  return {float64Arg(info, buf, what, n), p, k};
}

// Reads (type, w, nsIterations, polarMethod) starting at argument i.
RetractionOptions retractionArgs(const Napi::CallbackInfo& info, std::size_t i) {
  RetractionOptions o;
  o.type = enumArg(info, i, "retraction type", retractionNames());
  o.w = numberArg(info, i + 1, "w");
  if (!(o.w >= 0.0 && o.w <= 1.0)) throwRangeJs(info.Env(), "Expected w in [0, 1]");
  o.nsIterations = intArg(info, i + 2, "nsIterations", 0, 100000);
  o.polarMethod = enumArg(info, i + 3, "polar method", polarMethodNames());
  return o;
}

Napi::Value Defect(const Napi::CallbackInfo& info) {
  MatArg Y = matArg(info, 0, 1, "Y");
  Workspace ws;
  return Napi::Number::New(info.Env(), defect(Y.array.Data(), Y.p, Y.k, ws));
}

Napi::Value BasicOrthogonality(const Napi::CallbackInfo& info) {
  MatArg Y = matArg(info, 0, 1, "Y");
  Workspace ws;
  return Napi::Number::New(info.Env(), basicOrthogonality(Y.array.Data(), Y.p, Y.k, ws));
}

// (Y, B, p, k) → {value, gradient}: mean defect over the batch (B = 1 for one matrix) and its
// gradient, with the reference's floors (1e-24 for one matrix, 1e-12 per batch element).
Napi::Value DefectGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t B = sizeArg(info, 1, "batch");
  const std::size_t p = sizeArg(info, 2, "rows"), k = sizeArg(info, 3, "cols");
  const std::size_t n = checkedProduct(env, {B, p, k}, "Y");
  Napi::Float64Array Y = float64Arg(info, 0, "Y", n);
  const bool batched = info.Length() > 4 && info[4].ToBoolean();
  std::vector<double> G(n);
  Workspace ws;
  double sum = 0;
  for (std::size_t b = 0; b < B; ++b) {
    sum += defectGradient(Y.Data() + b * p * k, p, k, G.data() + b * p * k, 1.0 / static_cast<double>(B),
                          batched ? 1e-12 : 1e-24, ws);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("value", Napi::Number::New(env, sum / static_cast<double>(B)));
  o.Set("gradient", newFloat64Array(env, G.data(), n));
  return o;
}

Napi::Object retractResult(Napi::Env env, Napi::Float64Array out, bool changed) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("data", out);
  o.Set("changed", Napi::Boolean::New(env, changed));
  return o;
}

// (Y, B, p, k, type, w, nsIterations, polarMethod) → {data, changed}; B = 0 means one matrix.
// The result is written straight into a fresh JS-owned array (no extra copy of p×k data).
Napi::Value Retract(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t B = sizeArg(info, 1, "batch", 0);
  const std::size_t p = sizeArg(info, 2, "rows"), k = sizeArg(info, 3, "cols");
  const std::size_t n = checkedProduct(env, {B == 0 ? 1 : B, p, k}, "Y");
  Napi::Float64Array Y = float64Arg(info, 0, "Y", n);
  RetractionOptions o = retractionArgs(info, 4);
  Napi::Float64Array out = Napi::Float64Array::New(env, n);
  Workspace ws;
  const bool changed = guarded(env, [&] {
    return B == 0 ? retract(Y.Data(), p, k, o, out.Data(), ws)
                  : retractBatch(Y.Data(), B, p, k, o, out.Data(), ws, silentMonitor());
  });
  return retractResult(env, out, changed);
}

// The input is copied when the job is created; the output array is allocated here on the JS thread
// and filled by the worker (JS cannot reach it before the Promise resolves).
class RetractJob : public Job {
 public:
  RetractJob(const double* Y, Napi::Float64Array out, std::size_t B, std::size_t p, std::size_t k,
             RetractionOptions o)
      : Y_(Y, Y + out.ElementLength()), out_(Napi::Persistent(out)), outData_(out.Data()), B_(B), p_(p), k_(k), o_(o) {}
  void execute(Monitor& monitor) override {
    Workspace ws;
    changed_ = B_ == 0 ? retract(Y_.data(), p_, k_, o_, outData_, ws)
                       : retractBatch(Y_.data(), B_, p_, k_, o_, outData_, ws, monitor);
  }
  Napi::Value result(Napi::Env env) override { return retractResult(env, out_.Value(), changed_); }

 private:
  std::vector<double> Y_;
  Napi::Reference<Napi::Float64Array> out_;
  double* outData_;
  std::size_t B_, p_, k_;
  RetractionOptions o_;
  bool changed_ = false;
};

// As Retract, then (cancelToken, onProgress, intervalMs) → Promise<{data, changed}>.
Napi::Value RetractAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t B = sizeArg(info, 1, "batch", 0);
  const std::size_t p = sizeArg(info, 2, "rows"), k = sizeArg(info, 3, "cols");
  const std::size_t n = checkedProduct(env, {B == 0 ? 1 : B, p, k}, "Y");
  Napi::Float64Array Y = float64Arg(info, 0, "Y", n);
  RetractionOptions o = retractionArgs(info, 4);
  AsyncArgs a = asyncArgs(info, 8);
  Napi::Float64Array out = Napi::Float64Array::New(env, n);
  return startJob(env, std::make_unique<RetractJob>(Y.Data(), out, B, p, k, o), std::move(a));
}

// (A, k, method, eps, nsIterations) → Float64Array k×k
Napi::Value InverseSqrt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t k = sizeArg(info, 1, "k");
  Napi::Float64Array A = float64Arg(info, 0, "A", checkedProduct(env, {k, k}, "A"));
  static const std::map<std::string, InvSqrtMethod> methods = {{"eig", InvSqrtMethod::Eig},
                                                               {"newtonSchulz", InvSqrtMethod::NewtonSchulz},
                                                               {"diag", InvSqrtMethod::Diag},
                                                               {"auto", InvSqrtMethod::Auto}};
  const InvSqrtMethod m = enumArg(info, 2, "method", methods);
  const double eps = numberArg(info, 3, "epsilon");
  if (!(eps >= 0) || !std::isfinite(eps)) throwRangeJs(env, "Expected a finite epsilon ≥ 0");
  const int iters = intArg(info, 4, "nsIterations", 0, 100000);
  std::vector<double> out(k * k);
  Workspace ws;
  guarded(env, [&] { inverseSqrt(A.Data(), k, m, eps, iters, out.data(), ws); });
  return newFloat64Array(env, out.data(), out.size());
}

// (A, B, n, k) → Float64Array k×k
Napi::Value Procrustes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t n = sizeArg(info, 2, "rows"), k = sizeArg(info, 3, "cols");
  const std::size_t len = checkedProduct(env, {n, k}, "A");
  Napi::Float64Array A = float64Arg(info, 0, "A", len);
  Napi::Float64Array B = float64Arg(info, 1, "B", len);
  std::vector<double> Q(k * k);
  Workspace ws;
  guarded(env, [&] { procrustes(A.Data(), B.Data(), n, k, Q.data(), ws); });
  return newFloat64Array(env, Q.data(), Q.size());
}

// (Y, p, k) → {Q, R}
Napi::Value Qr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MatArg Y = matArg(info, 0, 1, "Y");
  if (Y.p < Y.k) throwRangeJs(env, "qr: Expected rows ≥ cols");
  requireFinite(env, Y.array, "Y");
  std::vector<double> Q(Y.p * Y.k), R(Y.k * Y.k);
  Workspace ws;
  guarded(env, [&] { thinQr(Y.array.Data(), Y.p, Y.k, Q.data(), R.data(), ws); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("Q", newFloat64Array(env, Q.data(), Q.size()));
  o.Set("R", newFloat64Array(env, R.data(), R.size()));
  return o;
}

// (Y, p, k) → {U, S, V}
Napi::Value Svd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MatArg Y = matArg(info, 0, 1, "Y");
  const std::size_t r = std::min(Y.p, Y.k);
  std::vector<double> U(Y.p * r), S(r), V(Y.k * r);
  Workspace ws;
  guarded(env, [&] { thinSvd(Y.array.Data(), Y.p, Y.k, U.data(), S.data(), V.data(), ws); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("U", newFloat64Array(env, U.data(), U.size()));
  o.Set("S", newFloat64Array(env, S.data(), S.size()));
  o.Set("V", newFloat64Array(env, V.data(), V.size()));
  return o;
}

// (Y, mode) → Float64Array
Napi::Value NonNegativity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throwType(env, "Expected a Float64Array for Y");
  Napi::Float64Array Y = info[0].As<Napi::Float64Array>();
  const Nonnegativity m = enumArg(info, 1, "non-negativity mode", nonNegativityNames());
  std::vector<double> out(Y.ElementLength());
  applyNonnegativity(Y.Data(), out.size(), m, out.data());
  return newFloat64Array(env, out.data(), out.size());
}

void registerOrtho(Napi::Env env, Napi::Object exports) {
  exports.Set("defect", Napi::Function::New(env, Defect, "defect"));
  exports.Set("defectGradient", Napi::Function::New(env, DefectGradient, "defectGradient"));
  exports.Set("basicOrthogonality", Napi::Function::New(env, BasicOrthogonality, "basicOrthogonality"));
  exports.Set("retract", Napi::Function::New(env, Retract, "retract"));
  exports.Set("retractAsync", Napi::Function::New(env, RetractAsync, "retractAsync"));
  exports.Set("inverseSqrt", Napi::Function::New(env, InverseSqrt, "inverseSqrt"));
  exports.Set("procrustes", Napi::Function::New(env, Procrustes, "procrustes"));
  exports.Set("qr", Napi::Function::New(env, Qr, "qr"));
  exports.Set("svd", Napi::Function::New(env, Svd, "svd"));
  exports.Set("nonNegativity", Napi::Function::New(env, NonNegativity, "nonNegativity"));
}

}  // namespace

NSA_REGISTER(registerOrtho);

}  // namespace nsa::addon
