// Bindings of the orthogonalization toolkit (native/kernels/ortho.hpp). Raw signatures are flat
// (buffers, dimensions, option values); lib/ortho.ts is the typed surface that validates first.
// Every binding reads its arguments (args.hpp), checks the memory its kernel needs (workspace sizes
// from ortho.cpp: k×k Grams and eigen-buffers, p×k copies), then runs.
#include <map>

#include "../kernels/ortho.hpp"
#include "async_job.hpp"
#include "common.hpp"
#include "names.hpp"

namespace nsa::addon {

namespace {

std::string shapeText(std::size_t p, std::size_t k) { return std::to_string(p) + "×" + std::to_string(k); }

// A p×k matrix: dimensions at args dims, dims+1, values at arg buf, finite.
struct Matrix {
  TypedIn array;
  std::size_t p, k;
};
Matrix matrixArg(const Napi::CallbackInfo& info, std::size_t buf, std::size_t dims, const char* what) {
  const std::size_t p = dimension(arg(info, dims, "rows"));
  const std::size_t k = dimension(arg(info, dims + 1, "cols"));
  return {float64(arg(info, buf, what), product(info.Env(), {p, k}, what), "rows·cols"), p, k};
}

Doubles finiteValues(Napi::Env env, const TypedIn& t, bool copy = false) {
  Doubles d = doubles(t, copy);
  requireFinite(env, d.data(), d.size(), t.name);
  return d;
}

// (type, w, nsIterations, polarMethod) from argument i on.
RetractionOptions retractionArgs(const Napi::CallbackInfo& info, std::size_t i) {
  RetractionOptions o;
  o.type = oneOf(arg(info, i, "type"), retractionNames());
  o.w = numberIn(arg(info, i + 1, "w"), 0, 1);
  o.nsIterations = intIn(arg(info, i + 2, "nsIterations"), 0, 100000);
  o.polarMethod = oneOf(arg(info, i + 3, "polarMethod"), polarMethodNames());
  return o;
}

// Doubles of a retraction's workspace for one p×k matrix: the Cayley transform works on p×2k blocks
// and (2k)×(2k) systems, the polar forms on p×k copies and k×k Grams (ortho.cpp).
double retractWorkspace(double p, double k) { return 8 * p * k + 10 * k * k + 4 * k; }

// (Y, p, k) → number
Napi::Value Defect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Matrix Y = matrixArg(info, 0, 1, "Y");
  checkMemory(env, float64Bytes({static_cast<double>(Y.k), static_cast<double>(Y.k) + 1}),
              [&] { return std::string("the Gram matrix of Y (" + shapeText(Y.p, Y.k) + ")"); });
  Doubles y = finiteValues(env, Y.array);
  Workspace ws;
  return Napi::Number::New(env, defect(y.data(), Y.p, Y.k, ws));
}

Napi::Value BasicOrthogonality(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Matrix Y = matrixArg(info, 0, 1, "Y");
  checkMemory(env, float64Bytes({static_cast<double>(Y.k), static_cast<double>(Y.k) + 1}),
              [&] { return std::string("the Gram matrix of Y (" + shapeText(Y.p, Y.k) + ")"); });
  Doubles y = finiteValues(env, Y.array);
  Workspace ws;
  return Napi::Number::New(env, basicOrthogonality(y.data(), Y.p, Y.k, ws));
}

// (Y, B, p, k, batched) → {value, gradient}: mean defect over the batch (B = 1 for one matrix) and its
// gradient, with the reference's floors of ‖Y‖⁴ (retraction_core.hpp: kDefectDenominatorFloor for one
// matrix, kBatchDefectDenominatorFloor per batch element).
Napi::Value DefectGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t B = dimension(arg(info, 1, "batch"));
  const std::size_t p = dimension(arg(info, 2, "rows")), k = dimension(arg(info, 3, "cols"));
  const bool batched = boolean(arg(info, 4, "batched"));
  const std::size_t n = product(env, {B, p, k}, "Y");
  TypedIn Yin = float64(arg(info, 0, "Y"), n, "batch·rows·cols");
  const double dn = static_cast<double>(n), dk = static_cast<double>(k);
  // the input's copy, the gradient (C++ and JS copies) and the k×k Gram (ortho.cpp defectGradient works
  // in place in G and the Gram; no p×k workspace)
  checkMemory(env, float64Bytes({1}) * (3 * dn + dk * dk),
              [&] { return std::string("the gradient of the defect of Y (" + shapeText(p, k) + ")"); });
  Doubles Y = finiteValues(env, Yin);
  std::vector<double> G(n);
  Workspace ws;
  double sum = 0;
  for (std::size_t b = 0; b < B; ++b) {
    sum += defectGradient(Y.data() + b * p * k, p, k, G.data() + b * p * k, 1.0 / static_cast<double>(B),
                          batched ? kBatchDefectDenominatorFloor : kDefectDenominatorFloor, ws);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("value", Napi::Number::New(env, sum / static_cast<double>(B)));
  o.Set("gradient", newFloat64Array(env, G, "the gradient"));
  return o;
}

Napi::Object retractResult(Napi::Env env, Napi::Float64Array out, bool changed) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("data", out);
  o.Set("changed", Napi::Boolean::New(env, changed));
  return o;
}

struct RetractCall {
  TypedIn Y;
  std::size_t B, p, k, n;
  RetractionOptions options;
};
RetractCall retractCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t B = dimension(arg(info, 1, "batch"), 0);
  const std::size_t p = dimension(arg(info, 2, "rows")), k = dimension(arg(info, 3, "cols"));
  RetractionOptions o = retractionArgs(info, 4);
  const std::size_t n = product(env, {B == 0 ? 1 : B, p, k}, "Y");
  TypedIn Y = float64(arg(info, 0, "Y"), n, B == 0 ? "rows·cols" : "batch·rows·cols");
  // the result, a copy of the input and the workspace of one matrix
  checkMemory(env, float64Bytes({1}) * (2 * static_cast<double>(n) + retractWorkspace(static_cast<double>(p), static_cast<double>(k)) +
                                         static_cast<double>(B)),
                                             [&] { return std::string("the retraction of Y (" + shapeText(p, k) + (B ? ", batch " + std::to_string(B) : std::string()) + ")"); });
  return {Y, B, p, k, n, o};
}

// (Y, B, p, k, type, w, nsIterations, polarMethod) → {data, changed}; B = 0 means one matrix.
// The result is written straight into a fresh JS-owned array (no extra copy of p×k data).
Napi::Value Retract(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RetractCall c = retractCall(info);
  Napi::Float64Array out = newFloat64(env, c.n, "the retracted Y");
  // Non-finite input is allowed: the kernel returns it unchanged (the reference's semantics).
  Doubles Y = doubles(c.Y);
  Workspace ws;
  const bool changed = guarded(env, [&] {
    return c.B == 0 ? retract(Y.data(), c.p, c.k, c.options, out.Data(), ws)
                    : retractBatch(Y.data(), c.B, c.p, c.k, c.options, out.Data(), ws, silentMonitor());
  });
  return retractResult(env, out, changed);
}

// The input is copied when the job is created; the output array is allocated here on the JS thread
// and filled by the worker (JS cannot reach it before the Promise resolves).
class RetractJob : public Job {
 public:
  RetractJob(std::vector<double> Y, Napi::Float64Array out, const RetractCall& c)
      : Y_(std::move(Y)), out_(Napi::Persistent(out)), outData_(out.Data()), B_(c.B), p_(c.p), k_(c.k), o_(c.options) {}
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
  RetractCall c = retractCall(info);
  AsyncArgs a = asyncArgs(info, 8);
  Napi::Float64Array out = newFloat64(env, c.n, "the retracted Y");
  std::vector<double> Y = doubles(c.Y, true).owned();
  return startJob(env, std::make_unique<RetractJob>(std::move(Y), out, c), std::move(a));
}

// (A, k, method, eps, nsIterations) → Float64Array k×k
Napi::Value InverseSqrt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t k = dimension(arg(info, 1, "k"));
  static const std::map<std::string, InvSqrtMethod> methods = {{"eig", InvSqrtMethod::Eig},
                                                               {"newtonSchulz", InvSqrtMethod::NewtonSchulz},
                                                               {"diag", InvSqrtMethod::Diag},
                                                               {"auto", InvSqrtMethod::Auto}};
  const InvSqrtMethod m = oneOf(arg(info, 2, "method"), methods);
  const double eps = numberIn(arg(info, 3, "epsilon"), 0, 1.7976931348623157e308);
  const int iters = intIn(arg(info, 4, "nsIterations"), 0, 100000);
  TypedIn Ain = float64(arg(info, 0, "A"), product(env, {k, k}, "A"), "k·k");
  const double kk = static_cast<double>(k) * static_cast<double>(k);
  // the result (C++ and JS) and up to seven k×k eigen/Newton–Schulz buffers
  checkMemory(env, float64Bytes({1}) * (9 * kk + 2 * static_cast<double>(k)),
              [&] { return std::string("the inverse square root of A (" + shapeText(k, k) + ")"); });
  Doubles A = finiteValues(env, Ain);
  std::vector<double> out(k * k);
  Workspace ws;
  guarded(env, [&] { inverseSqrt(A.data(), k, m, eps, iters, out.data(), ws); });
  return newFloat64Array(env, out, "the inverse square root");
}

// (A, B, n, k) → Float64Array k×k
Napi::Value Procrustes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::size_t n = dimension(arg(info, 2, "rows")), k = dimension(arg(info, 3, "cols"));
  const std::size_t len = product(env, {n, k}, "A");
  TypedIn Ain = float64(arg(info, 0, "A"), len, "rows·cols");
  TypedIn Bin = float64(arg(info, 1, "B"), len, "rows·cols");
  const double dk = static_cast<double>(k);
  // Q (C++ and JS), AᵀB and the SVD's k×k factors and work
  checkMemory(env, float64Bytes({1}) * (8 * dk * dk + 2 * static_cast<double>(len) + 6 * dk),
              [&] { return std::string("the Procrustes rotation of A (" + shapeText(n, k) + ")"); });
  Doubles A = finiteValues(env, Ain), B = finiteValues(env, Bin);
  std::vector<double> Q(k * k);
  Workspace ws;
  guarded(env, [&] { procrustes(A.data(), B.data(), n, k, Q.data(), ws); });
  return newFloat64Array(env, Q, "the rotation");
}

// (Y, p, k) → {Q, R}
Napi::Value Qr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Matrix Y = matrixArg(info, 0, 1, "Y");
  if (Y.p < Y.k) throwRangeJs(env, "Expected rows ≥ cols for Y but received " + shapeText(Y.p, Y.k));
  const double pk = static_cast<double>(Y.p) * static_cast<double>(Y.k), kk = static_cast<double>(Y.k) * static_cast<double>(Y.k);
  checkMemory(env, float64Bytes({1}) * (3 * pk + 2 * kk + static_cast<double>(Y.k)),
              [&] { return std::string("the QR decomposition of Y (" + shapeText(Y.p, Y.k) + ")"); });
  Doubles y = finiteValues(env, Y.array);
  std::vector<double> Q(Y.p * Y.k), R(Y.k * Y.k);
  Workspace ws;
  guarded(env, [&] { thinQr(y.data(), Y.p, Y.k, Q.data(), R.data(), ws); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("Q", newFloat64Array(env, Q, "Q"));
  o.Set("R", newFloat64Array(env, R, "R"));
  return o;
}

// (Y, p, k) → {U, S, V}
Napi::Value Svd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Matrix Y = matrixArg(info, 0, 1, "Y");
  const std::size_t r = std::min(Y.p, Y.k);
  const double dp = static_cast<double>(Y.p), dk = static_cast<double>(Y.k), dr = static_cast<double>(r);
  // U, S, V (C++ and JS), the input copy, the SVD's factors and LAPACK's work (a few r² and p+k)
  checkMemory(env, float64Bytes({1}) * (3 * (dp * dr + dk * dr) + dp * dk + 6 * dr * dr + 8 * (dp + dk)),
              [&] { return std::string("the SVD of Y (" + shapeText(Y.p, Y.k) + ")"); });
  Doubles y = finiteValues(env, Y.array);
  std::vector<double> U(Y.p * r), S(r), V(Y.k * r);
  Workspace ws;
  guarded(env, [&] { thinSvd(y.data(), Y.p, Y.k, U.data(), S.data(), V.data(), ws); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("U", newFloat64Array(env, U, "U"));
  o.Set("S", newFloat64Array(env, S, "S"));
  o.Set("V", newFloat64Array(env, V, "V"));
  return o;
}

// (Y, mode) → Float64Array
Napi::Value NonNegativity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TypedIn Yin = float64(arg(info, 0, "Y"));
  const Nonnegativity m = oneOf(arg(info, 1, "mode"), nonNegativityNames());
  Napi::Float64Array out = newFloat64(env, Yin.length, "the non-negative Y");
  Doubles Y = finiteValues(env, Yin);
  applyNonnegativity(Y.data(), Y.size(), m, out.Data());
  return out;
}

const Export kOrtho[] = {
    {"defect", Defect},
    {"defectGradient", DefectGradient},
    {"basicOrthogonality", BasicOrthogonality},
    {"retract", Retract},
    {"retractAsync", RetractAsync},
    {"inverseSqrt", InverseSqrt},
    {"procrustes", Procrustes},
    {"qr", Qr},
    {"svd", Svd},
    {"nonNegativity", NonNegativity},
};

void registerOrtho(Napi::Env env, Napi::Object exports) { exportFunctions(env, exports, kOrtho); }

}  // namespace

NSA_REGISTER(registerOrtho);

}  // namespace nsa::addon
