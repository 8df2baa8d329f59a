// Bindings of the tensor toolkit (native/kernels/tensor.hpp). Factors cross the boundary in
// tensorly's layout (dₘ × r, row-major); lib/tensor-ops.ts is the typed surface that validates first.
#include "../kernels/tensor.hpp"
#include "tensor_args.hpp"

namespace nsa::addon {

namespace {

std::size_t modeArg(const Napi::CallbackInfo& info, std::size_t i, const Shape& shape) {
  const double m = numberArg(info, i, "mode");
  if (!(m >= 0) || m != std::floor(m) || m >= static_cast<double>(shape.size()))
    throwRangeJs(info.Env(), "Expected a mode in [0, " + std::to_string(shape.size() - 1) + "]");
  return static_cast<std::size_t>(m);
}

// (data, shape, mode) → Float64Array dₙ × size/dₙ
Napi::Value Unfold(const Napi::CallbackInfo& info) {
  const Shape shape = shapeArg(info, 1, "shape");
  Napi::Float64Array T = float64Arg(info, 0, "T", shapeSize(shape));
  const std::size_t mode = modeArg(info, 2, shape);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), T.ElementLength());
  unfold(T.Data(), shape, mode, out.Data());
  return out;
}

// (data, shape, mode) → Float64Array in C order of `shape`
Napi::Value Fold(const Napi::CallbackInfo& info) {
  const Shape shape = shapeArg(info, 1, "shape");
  Napi::Float64Array M = float64Arg(info, 0, "M", shapeSize(shape));
  const std::size_t mode = modeArg(info, 2, shape);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), M.ElementLength());
  fold(M.Data(), shape, mode, out.Data());
  return out;
}

// Reads a list of dₘ × r factors whose row counts are `rows`.
std::vector<const double*> factorList(const Napi::CallbackInfo& info, std::size_t i, const Shape& rows, std::size_t r) {
  Napi::Array a = arrayArg(info, i, "factors", rows.size());
  std::vector<const double*> out(rows.size());
  for (uint32_t m = 0; m < a.Length(); ++m) {
    if (static_cast<double>(rows[m]) * static_cast<double>(r) > kMaxElements) throwRangeJs(info.Env(), "A factor is too large");
    out[m] = float64Value(info.Env(), a.Get(m), "factors[" + std::to_string(m) + "]", rows[m] * r).Data();
  }
  return out;
}

// (matrices, rows, r) → Float64Array (Π rows) × r
Napi::Value KhatriRao(const Napi::CallbackInfo& info) {
  const Shape rows = shapeArg(info, 1, "rows");
  const std::size_t r = sizeArg(info, 2, "rank");
  const std::vector<const double*> mats = factorList(info, 0, rows, r);
  if (static_cast<double>(shapeSize(rows)) * static_cast<double>(r) > kMaxElements)
    throwRangeJs(info.Env(), "The Khatri–Rao product would have more than 2^32 elements");
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), shapeSize(rows) * r);
  khatriRao(mats, rows, r, out.Data());
  return out;
}

// (data, shape, factors (dₘ × r each), r, mode) → Float64Array d_mode × r
Napi::Value Mttkrp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Shape shape = shapeArg(info, 1, "shape");
  Napi::Float64Array T = float64Arg(info, 0, "T", shapeSize(shape));
  const std::size_t r = sizeArg(info, 3, "rank");
  const std::vector<const double*> F = factorList(info, 2, shape, r);
  const std::size_t mode = modeArg(info, 4, shape);
  // The kernel works on rank-major factors (r × dₘ): transpose the small factors once.
  std::vector<std::vector<double>> rankMajor(shape.size());
  std::vector<const double*> ptrs(shape.size());
  for (std::size_t m = 0; m < shape.size(); ++m) {
    rankMajor[m].resize(shape[m] * r);
    transposeInto(F[m], shape[m], r, rankMajor[m].data());
    ptrs[m] = rankMajor[m].data();
  }
  std::vector<double> M(r * shape[mode]);
  Workspace ws;
  guarded(env, [&] { mttkrpRankMajor(T.Data(), shape, ptrs.data(), r, mode, M.data(), ws); });
  Napi::Float64Array out = Napi::Float64Array::New(env, M.size());
  transposeInto(M.data(), r, shape[mode], out.Data());
  return out;
}

// (factors, shape, r, weights | undefined) → Float64Array of `shape`
Napi::Value CpReconstruct(const Napi::CallbackInfo& info) {
  const Shape shape = shapeArg(info, 1, "shape");
  const std::size_t r = sizeArg(info, 2, "rank");
  const std::vector<const double*> F = factorList(info, 0, shape, r);
  const double* weights = nullptr;
  if (info.Length() > 3 && !info[3].IsUndefined()) weights = float64Value(info.Env(), info[3], "weights", r).Data();
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), shapeSize(shape));
  guarded(info.Env(), [&] { cpReconstruct(F, shape, r, weights, out.Data()); });
  return out;
}

// (data) → Frobenius norm, accumulated with scaling so that huge or tiny entries do not over/underflow.
Napi::Value TensorNorm(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throwType(info.Env(), "Expected a Float64Array for T");
  Napi::Float64Array T = info[0].As<Napi::Float64Array>();
  // dnrm2 takes an int length: combine the norms of chunks.
  double norm = 0;
  const std::size_t n = T.ElementLength(), chunk = std::size_t{1} << 30;
  for (std::size_t i = 0; i < n; i += chunk)
    norm = std::hypot(norm, cblas_dnrm2(static_cast<int>(std::min(chunk, n - i)), T.Data() + i, 1));
  return Napi::Number::New(info.Env(), norm);
}

void registerTensor(Napi::Env env, Napi::Object exports) {
  exports.Set("unfold", Napi::Function::New(env, Unfold, "unfold"));
  exports.Set("fold", Napi::Function::New(env, Fold, "fold"));
  exports.Set("khatriRao", Napi::Function::New(env, KhatriRao, "khatriRao"));
  exports.Set("mttkrp", Napi::Function::New(env, Mttkrp, "mttkrp"));
  exports.Set("cpReconstruct", Napi::Function::New(env, CpReconstruct, "cpReconstruct"));
  exports.Set("tensorNorm", Napi::Function::New(env, TensorNorm, "tensorNorm"));
}

}  // namespace

NSA_REGISTER(registerTensor);

}  // namespace nsa::addon
