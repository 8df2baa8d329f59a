// Reference kernels for benchmarks: the speed limits that bench/ reports ratios against, measured
// in the same process and run (plain DGEMM, DSYRK and a memory copy on this machine's OpenBLAS).
#include <chrono>
#include <cstring>
#include <vector>

#include "../kernels/linalg.hpp"
#include "common.hpp"

namespace nsa::addon {

namespace {

template <class F>
double bestSeconds(int repeats, F&& f) {
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

std::vector<double> filled(std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = 1.0 / static_cast<double>(1 + i % 97);
  return v;
}

// (m, n, k, repeats) → best seconds of C = A·B with A m×k, B k×n (row-major).
Napi::Value TimeGemm(const Napi::CallbackInfo& info) {
  const std::size_t m = dimension(arg(info, 0, "m")), n = dimension(arg(info, 1, "n")), k = dimension(arg(info, 2, "k"));
  const int reps = intIn(arg(info, 3, "repeats"), 1, 1000);
  const double dm = static_cast<double>(m), dn = static_cast<double>(n), dk = static_cast<double>(k);
  checkMemory(info.Env(), float64Bytes({1}) * (dm * dk + dk * dn + dm * dn),
              [&] { return std::string("the GEMM operands (" + std::to_string(m) + "×" +
                                                                            std::to_string(k) + " by " + std::to_string(k) + "×" + std::to_string(n) + ")"); });
  auto A = filled(m * k), B = filled(k * n);
  std::vector<double> C(m * n);
  return Napi::Number::New(info.Env(), bestSeconds(reps, [&] { gemm(false, false, m, n, k, 1.0, A.data(), B.data(), 0.0, C.data()); }));
}

// (p, k, repeats) → best seconds of S = YᵀY by DSYRK (one triangle), Y p×k.
Napi::Value TimeSyrk(const Napi::CallbackInfo& info) {
  const std::size_t p = dimension(arg(info, 0, "p")), k = dimension(arg(info, 1, "k"));
  const int reps = intIn(arg(info, 2, "repeats"), 1, 1000);
  const double dp = static_cast<double>(p), dk = static_cast<double>(k);
  checkMemory(info.Env(), float64Bytes({1}) * (dp * dk + dk * dk),
              [&] { return std::string("the SYRK operands (" + std::to_string(p) + "×" + std::to_string(k) + ")"); });
  auto Y = filled(p * k);
  std::vector<double> S(k * k);
  return Napi::Number::New(info.Env(), bestSeconds(reps, [&] {
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, asInt(k), asInt(p), 1.0, Y.data(), asInt(k), 0.0, S.data(), asInt(k));
  }));
}

// (n, repeats) → best seconds of copying n doubles.
Napi::Value TimeCopy(const Napi::CallbackInfo& info) {
  const std::size_t n = dimension(arg(info, 0, "n"));
  const int reps = intIn(arg(info, 1, "repeats"), 1, 1000);
  checkMemory(info.Env(), float64Bytes({2, static_cast<double>(n)}),
              [&] { return std::string("the copy buffers (" + std::to_string(n) + " values each)"); });
  auto a = filled(n);
  std::vector<double> b(n);
  return Napi::Number::New(info.Env(), bestSeconds(reps, [&] { std::memcpy(b.data(), a.data(), n * sizeof(double)); }));
}

void registerBench(Napi::Env env, Napi::Object exports) {
  Napi::Object bench = Napi::Object::New(env);
  static const Export kBench[] = {{"timeGemm", TimeGemm}, {"timeSyrk", TimeSyrk}, {"timeCopy", TimeCopy}};
  exportFunctions(env, bench, kBench);
  exports.Set("bench", bench);
}

}  // namespace

NSA_REGISTER(registerBench);

}  // namespace nsa::addon
