// The device solves' arithmetic compiled as host code (kernels.hpp through g++), for the tests: they
// compare what this program prints with the CPU addon (test/cuda.test.ts), so CI checks the GPU path's
// formulas and the order of its steps on every run, without a GPU. The products the GPU leaves to
// cuBLAS are plain loops here; everything elementwise or reduced is kernels.hpp's, as on the device.
//
// Input (stdin, whitespace-separated): an operation name, then its numbers; output: the result's
// numbers, one per line, with 17 significant digits (exact round trip of a double).
//   map <mu|project|softplus> n eps x[n] num[n] den[n]    (project/softplus read only x; eps unused)
//   reduce <squaredNorm|dot|squaredDistance|nonFinite> n stride x[n] y[n]   (the partials of `stride` threads, summed)
//   nmfMu n m r eps A[n·m] W[n·r] H[r·m]                   (one Frobenius MU iteration: W′, H′, then the loss before it)
//   polarGram p k w Y[p·k] V[k·k] lambda[k]                (the Gram polar retraction given YᵀY = VΛVᵀ)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "../kernels/nmf.hpp"
#include "../kernels/retraction_core.hpp"
#include "kernels.hpp"

namespace {

static_assert(nsa::cuda::kRetractionNormFloor == nsa::kRetractionNormFloor, "the device's norm floor is the CPU's");
static_assert(nsa::cuda::kBlendNormFloor == nsa::kBlendNormFloor, "the device's blend floor is the CPU's");
static_assert(nsa::cuda::kCancellationRatio == nsa::kCancellationRatio, "the device's loss switches form where the CPU's does");
static_assert(nsa::cuda::kSoftplusLinearThreshold == nsa::kSoftplusLinearThreshold, "the device's softplus is the CPU's");

using Vec = std::vector<double>;
using std::size_t;

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "host_check: " << what << "\n";
  std::exit(2);
}

double number() {
  std::string t;
  if (!(std::cin >> t)) fail("input ended early");
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (*end != '\0') fail("not a number: " + t);
  return v;
}

size_t count() {
  const double v = number();
  if (!(v >= 0) || v != static_cast<double>(static_cast<size_t>(v))) fail("not a count");
  return static_cast<size_t>(v);
}

Vec numbers(size_t n) {
  Vec v(n);
  for (auto& x : v) x = number();
  return v;
}

void print(const Vec& v) {
  for (double x : v) std::printf("%.17g\n", x);
}

// Row-major C (m×n) = op(A)·op(B), as the CPU's gemm(transA, transB, …) (a plain loop in place of BLAS).
Vec product(bool transA, bool transB, size_t m, size_t n, size_t k, const Vec& A, const Vec& B) {
  Vec C(m * n, 0.0);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t l = 0; l < k; ++l) s += (transA ? A[l * m + i] : A[i * k + l]) * (transB ? B[j * k + l] : B[l * n + j]);
      C[i * n + j] = s;
    }
  return C;
}

double reduce(const std::string& kind, const Vec& x, const Vec& y, size_t stride) {
  double total = 0;
  for (size_t first = 0; first < stride; ++first) {
    if (kind == "squaredNorm") total += nsa::cuda::squaredNormPartial(x.data(), x.size(), first, stride);
    else if (kind == "dot") total += nsa::cuda::dotPartial(x.data(), y.data(), x.size(), first, stride);
    else if (kind == "squaredDistance") total += nsa::cuda::squaredDistancePartial(x.data(), y.data(), x.size(), first, stride);
    else if (kind == "nonFinite") total += nsa::cuda::nonFinitePartial(x.data(), x.size(), first, stride);
    else fail("unknown reduction " + kind);
  }
  return total;
}

// One Frobenius MU iteration in the device solve's order (device.cu nmfMuIteration; the CPU's nmf.cpp):
// W ← W ∘ AHᵀ / (W·HHᵀ + ε), then Hᵀ ← Hᵀ ∘ AᵀW / (Hᵀ·WᵀW + ε) with the new W.
// Returns the loss of the starting (W, H), as the device solve records it before the update.
double nmfMu(size_t n, size_t m, size_t r, double eps, const Vec& A, Vec& W, Vec& H) {
  const Vec HHt = product(false, true, r, r, m, H, H);
  const Vec AHt = product(false, true, n, r, m, A, H);
  const Vec WtW0 = product(true, false, r, r, n, W, W);
  const double normA2 = nsa::cuda::squaredNormPartial(A.data(), n * m, 0, 1);
  double raw = nsa::cuda::expandedLossSquared(normA2, nsa::cuda::dotPartial(AHt.data(), W.data(), n * r, 0, 1),
                                              nsa::cuda::dotPartial(WtW0.data(), HHt.data(), r * r, 0, 1));
  if (std::isnan(raw)) {
    const Vec WH = product(false, false, n, m, r, W, H);
    raw = nsa::cuda::squaredDistancePartial(A.data(), WH.data(), n * m, 0, 1);
  }
  const double loss = sqrt(raw > 0 ? raw : 0.0);
  const Vec WHHt = product(false, false, n, r, r, W, HHt);
  for (size_t i = 0; i < n * r; ++i) W[i] = nsa::cuda::muUpdate(W[i], AHt[i], WHHt[i], eps);
  const Vec WtW = product(true, false, r, r, n, W, W);
  const Vec WtAT = product(true, false, m, r, n, A, W);  // AᵀW, m×r
  Vec Ht(m * r);
  for (size_t c = 0; c < r; ++c)
    for (size_t j = 0; j < m; ++j) Ht[j * r + c] = H[c * m + j];
  const Vec HtWtW = product(false, false, m, r, r, Ht, WtW);
  for (size_t i = 0; i < m * r; ++i) Ht[i] = nsa::cuda::muUpdate(Ht[i], WtAT[i], HtWtW[i], eps);
  for (size_t c = 0; c < r; ++c)
    for (size_t j = 0; j < m; ++j) H[c * m + j] = Ht[j * r + c];
  return loss;
}

// The Gram polar retraction in the device solve's order (device.cu polarGram; the CPU's
// retraction_core.cpp gramPolarMatrix + ortho.cpp retract), given the eigenpairs of YᵀY.
Vec polarGram(size_t p, size_t k, double w, const Vec& Y, const Vec& V, const Vec& lambda) {
  Vec S = product(true, false, k, k, p, Y, Y);
  const double normY = sqrt(nsa::cuda::tracePartial(S.data(), k, 0, 1));
  if (!(normY >= nsa::cuda::kRetractionNormFloor)) return Y;
  Vec Bm(k * k);
  for (size_t c = 0; c < k; ++c)
    for (size_t i = 0; i < k; ++i) Bm[i + c * k] = nsa::cuda::inverseSqrtColumn(V[i + c * k], lambda[c]);
  // Column-major M0 = w·Bm·Vᵀ: entry (i, j) at i + j·k.
  Vec M0(k * k);
  for (size_t j = 0; j < k; ++j)
    for (size_t i = 0; i < k; ++i) {
      double s = 0;
      for (size_t c = 0; c < k; ++c) s += Bm[i + c * k] * V[j + c * k];
      M0[i + j * k] = w * s;
    }
  for (size_t i = 0; i < k; ++i) M0[i + i * k] = nsa::cuda::blendDiagonal(M0[i + i * k], w);
  const Vec SM0 = product(false, false, k, k, k, S, M0);
  const double normB = sqrt(nsa::cuda::dotPartial(M0.data(), SM0.data(), k * k, 0, 1));
  const double scale = nsa::cuda::restoreScale(normY, normB);
  for (auto& x : M0) x *= scale;
  return product(false, false, p, k, k, Y, M0);
}

}  // namespace

int main() {
  std::string op;
  if (!(std::cin >> op)) fail("no operation");
  if (op == "map") {
    std::string kind;
    std::cin >> kind;
    const size_t n = count();
    const double eps = number();
    const Vec x = numbers(n);
    Vec out(n);
    if (kind == "mu") {
      const Vec num = numbers(n), den = numbers(n);
      for (size_t i = 0; i < n; ++i) out[i] = nsa::cuda::muUpdate(x[i], num[i], den[i], eps);
    } else if (kind == "project") {
      for (size_t i = 0; i < n; ++i) out[i] = nsa::cuda::projectNonNegative(x[i]);
    } else if (kind == "softplus") {
      for (size_t i = 0; i < n; ++i) out[i] = nsa::cuda::softplus(x[i]);
    } else {
      fail("unknown map " + kind);
    }
    print(out);
  } else if (op == "reduce") {
    std::string kind;
    std::cin >> kind;
    const size_t n = count(), stride = count();
    if (stride == 0) fail("stride 0");
    const Vec x = numbers(n), y = numbers(n);
    print({reduce(kind, x, y, stride)});
  } else if (op == "nmfMu") {
    const size_t n = count(), m = count(), r = count();
    const double eps = number();
    const Vec A = numbers(n * m);
    Vec W = numbers(n * r), H = numbers(r * m);
    const double loss = nmfMu(n, m, r, eps, A, W, H);
    print(W);
    print(H);
    print({loss});
  } else if (op == "polarGram") {
    const size_t p = count(), k = count();
    const double w = number();
    const Vec Y = numbers(p * k), V = numbers(k * k), lambda = numbers(k);
    print(polarGram(p, k, w, Y, V, lambda));
  } else {
    fail("unknown operation " + op);
  }
  return 0;
}
