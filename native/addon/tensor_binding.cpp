// Bindings of the tensor toolkit (native/kernels/tensor.hpp). Factors cross the boundary in
// tensorly's layout (dₘ × r, row-major); lib/tensor-ops.ts is the typed surface that validates first.
// Each binding reads all its arguments (the factor lists' elements included) before taking any data
// pointer, and checks its output (and the Khatri–Rao / MTTKRP scratch) against the memory limit and
// V8's longest Float64Array before allocating.
#include <cblas.h>

#include <optional>

#include "../kernels/tensor.hpp"
#include "tensor_args.hpp"

namespace nsa::addon {

namespace {

std::size_t modeOf(const In& v, const Shape& shape) {
  return static_cast<std::size_t>(integerIn(v, 0, static_cast<std::int64_t>(shape.size()) - 1));
}

std::string shapeText(const Shape& shape) {
  std::string s;
  for (std::size_t d : shape) s += (s.empty() ? "" : "×") + std::to_string(d);
  return s;
}

Doubles finiteValues(Napi::Env env, const TypedIn& t) {
  Doubles d = doubles(t);
  requireFinite(env, d.data(), d.size(), t.name);
  return d;
}

// (data, shape, mode) → Float64Array dₙ × size/dₙ
Napi::Value Unfold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Shape shape = shapeOf(arg(info, 1, "shape"));
  const std::size_t mode = modeOf(arg(info, 2, "mode"), shape);
  TypedIn T = float64(arg(info, 0, "T"), shapeSize(shape), "the product of shape");
  Napi::Float64Array out = newFloat64(env, T.length, "the unfolding of T (" + shapeText(shape) + ")");
  Doubles t = finiteValues(env, T);
  unfold(t.data(), shape, mode, out.Data());
  return out;
}

// (data, shape, mode) → Float64Array in C order of `shape`
Napi::Value Fold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Shape shape = shapeOf(arg(info, 1, "shape"));
  const std::size_t mode = modeOf(arg(info, 2, "mode"), shape);
  TypedIn M = float64(arg(info, 0, "M"), shapeSize(shape), "the product of shape");
  Napi::Float64Array out = newFloat64(env, M.length, "the folding of M (" + shapeText(shape) + ")");
  Doubles m = finiteValues(env, M);
  fold(m.data(), shape, mode, out.Data());
  return out;
}

// A list of dₘ × r factors whose row counts are `rows`: read (every element) and type-checked.
std::vector<TypedIn> factorsIn(const In& v, const Shape& rows, std::size_t r) {
  std::vector<TypedIn> out;
  const std::vector<In> list = elements(v, rows.size(), rows.size());
  for (std::size_t m = 0; m < list.size(); ++m) {
    if (static_cast<double>(rows[m]) * static_cast<double>(r) > kMaxTypedArrayLength)
      throwRangeJs(v.value.Env(), "Expected at most 2^32 values (rows·rank) for " + list[m].name + " but it would need " +
                                      std::to_string(static_cast<double>(rows[m]) * static_cast<double>(r)));
    out.push_back(float64(list[m], rows[m] * r, "rows·rank"));
  }
  return out;
}

// (c): the factors' data, finite, kept alive by the returned Doubles.
std::vector<const double*> takeFactors(Napi::Env env, const std::vector<TypedIn>& in, std::vector<Doubles>& keep) {
  keep.reserve(in.size());
  std::vector<const double*> out;
  for (const TypedIn& t : in) {
    keep.push_back(finiteValues(env, t));
    out.push_back(keep.back().data());
  }
  return out;
}

// (matrices, rows, r) → Float64Array (Π rows) × r
Napi::Value KhatriRao(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const In matrices = arg(info, 0, "matrices");
  const Shape rows = shapeOf(arg(info, 1, "rows"));
  const std::size_t r = dimension(arg(info, 2, "rank"));
  const std::vector<TypedIn> F = factorsIn(matrices, rows, r);
  const double size = static_cast<double>(shapeSize(rows)) * static_cast<double>(r);
  checkMemory(env, float64Bytes({size}),
              [&] { return std::string("the Khatri–Rao product (" + shapeText(rows) + " rows × rank " + std::to_string(r) + ")"); });
  Napi::Float64Array out = newFloat64(env, shapeSize(rows) * r, "the Khatri–Rao product");
  std::vector<Doubles> keep;
  khatriRao(takeFactors(env, F, keep), rows, r, out.Data());
  return out;
}

// (data, shape, factors (dₘ × r each), r, mode) → Float64Array d_mode × r
Napi::Value Mttkrp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Shape shape = shapeOf(arg(info, 1, "shape"));
  const std::size_t r = dimension(arg(info, 3, "rank"));
  const std::size_t mode = modeOf(arg(info, 4, "mode"), shape);
  const std::vector<TypedIn> F = factorsIn(arg(info, 2, "factors"), shape, r);
  TypedIn T = float64(arg(info, 0, "T"), shapeSize(shape), "the product of shape");
  const double dr = static_cast<double>(r), size = static_cast<double>(shapeSize(shape));
  double factors = 0;
  for (std::size_t d : shape) factors += static_cast<double>(d) * dr;
  // rank-major copies of the factors, the result (C++ and JS) and the contraction's r × size/d_c
  // intermediate with its buffers (mttkrpScratch)
  const double scratch = dr * size < 1e18 ? static_cast<double>(mttkrpScratch(shape, r, mode)) : dr * size;
  checkMemory(env, float64Bytes({1}) * (factors + 2 * dr * static_cast<double>(shape[mode]) + scratch),
              [&] { return std::string("the MTTKRP of T (" + shapeText(shape) + ", rank " + std::to_string(r) + ")"); });
  Doubles t = finiteValues(env, T);
  std::vector<Doubles> keep;
  const std::vector<const double*> Fp = takeFactors(env, F, keep);
  // The kernel works on rank-major factors (r × dₘ): transpose the small factors once.
  std::vector<std::vector<double>> rankMajor(shape.size());
  std::vector<const double*> ptrs(shape.size());
  for (std::size_t m = 0; m < shape.size(); ++m) {
    rankMajor[m].resize(shape[m] * r);
    transposeInto(Fp[m], shape[m], r, rankMajor[m].data());
    ptrs[m] = rankMajor[m].data();
  }
  std::vector<double> M(r * shape[mode]);
  Workspace ws;
  guarded(env, [&] { mttkrpRankMajor(t.data(), shape, ptrs.data(), r, mode, M.data(), ws); });
  Napi::Float64Array out = newFloat64(env, M.size(), "the MTTKRP");
  transposeInto(M.data(), r, shape[mode], out.Data());
  return out;
}

// (factors, shape, r, weights | undefined) → Float64Array of `shape`
Napi::Value CpReconstruct(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Shape shape = shapeOf(arg(info, 1, "shape"));
  const std::size_t r = dimension(arg(info, 2, "rank"));
  const std::vector<TypedIn> F = factorsIn(arg(info, 0, "factors"), shape, r);
  const In weightsArg = arg(info, 3, "weights");
  std::optional<TypedIn> W;
  if (!weightsArg.value.IsUndefined()) W = float64(weightsArg, r, "rank");
  const double size = static_cast<double>(shapeSize(shape));
  // the result, and the Khatri–Rao product of all factors but the last (size / d_last × r)
  checkMemory(env, float64Bytes({1}) * (size + size / static_cast<double>(shape.back()) * static_cast<double>(r)),
              [&] { return std::string("the CP reconstruction (" + shapeText(shape) + ", rank " + std::to_string(r) + ")"); });
  Napi::Float64Array out = newFloat64(env, shapeSize(shape), "the CP reconstruction");
  std::vector<Doubles> keep;
  const std::vector<const double*> Fp = takeFactors(env, F, keep);
  std::optional<Doubles> weights;
  if (W) weights = finiteValues(env, *W);
  guarded(env, [&] { cpReconstruct(Fp, shape, r, weights ? weights->data() : nullptr, out.Data()); });
  return out;
}

// (data) → Frobenius norm, accumulated with scaling so that huge or tiny entries do not over/underflow.
Napi::Value TensorNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TypedIn Tin = float64(arg(info, 0, "T"));
  Doubles T = finiteValues(env, Tin);
  // dnrm2 takes an int length: combine the norms of chunks.
  double norm = 0;
  const std::size_t n = T.size(), chunk = std::size_t{1} << 30;
  for (std::size_t i = 0; i < n; i += chunk)
    norm = std::hypot(norm, cblas_dnrm2(static_cast<int>(std::min(chunk, n - i)), T.data() + i, 1));
  return Napi::Number::New(env, norm);
}

const Export kTensor[] = {
    {"unfold", Unfold},
    {"fold", Fold},
    {"khatriRao", KhatriRao},
    {"mttkrp", Mttkrp},
    {"cpReconstruct", CpReconstruct},
    {"tensorNorm", TensorNorm},
};

void registerTensor(Napi::Env env, Napi::Object exports) { exportFunctions(env, exports, kTensor); }

}  // namespace

NSA_REGISTER(registerTensor);

}  // namespace nsa::addon
