// The arithmetic of the device solves, written once. Every function here is the body of one element (or
// one partial sum) of a kernel: nvcc compiles it as __host__ __device__ code into the CUDA addon's
// kernels (device.cu), and g++ compiles the same text as plain host code into host_check.cpp, whose
// results the tests compare with the CPU addon (test/cuda.test.ts). So CI checks the formulas of the GPU
// path on every run without a GPU; what only a GPU can check (launches, cuBLAS/cuSOLVER, reductions'
// order) is left to bench/gpu-check.sh.
//
// Each formula mirrors the CPU kernel named beside it, operation for operation, so that the host
// compilation agrees with the CPU path to rounding (the tests ask 1e-12 relative).
#pragma once

#include <cmath>
#include <cstddef>

#if defined(__CUDACC__)
#define NSA_HD __host__ __device__ inline
#else
#define NSA_HD inline
#endif

namespace nsa::cuda {

// The std:: overloads on the host; CUDA declares the same names for device code.
using std::exp;
using std::isfinite;
using std::log1p;
using std::sqrt;

// Thresholds shared with the CPU (native/kernels/retraction_core.hpp): the CUDA addon does not include
// the CPU headers (they pull in LAPACKE), so the values are repeated here and host_check.cpp asserts
// at compile time that they equal the CPU's.
constexpr double kRetractionNormFloor = 1e-12;
constexpr double kBlendNormFloor = 1e-12;
constexpr double kSoftplusLinearThreshold = 20.0;

// ---- elementwise maps ------------------------------------------------------------------------------

// Lee–Seung's multiplicative update of one entry, x·num/(den + ε) (nmf.cpp: W ← W ∘ AHᵀ/(WHHᵀ + ε)).
NSA_HD double muUpdate(double x, double num, double den, double eps) { return x * num / (den + eps); }

// Projection onto the non-negative orthant (ortho.cpp applyNonnegativity 'hard'): NaN maps to 0 there too.
NSA_HD double projectNonNegative(double y) { return y > 0.0 ? y : 0.0; }

// torch's softplus with β = 1 (ortho.cpp applyNonnegativity 'softplus').
NSA_HD double softplus(double y) { return y > kSoftplusLinearThreshold ? y : log1p(exp(y)); }

// Column c of V·Λ^{-1/2} (retraction_core.cpp gramInverseSqrtBlend's Bm), V column-major k×k.
NSA_HD double inverseSqrtColumn(double v, double lambda) { return v * (1.0 / sqrt(lambda)); }

// The soft blend's identity part: M0 = w·V Λ^{-1/2} Vᵀ + (1 − w)·I adds (1 − w) on the diagonal.
NSA_HD double blendDiagonal(double m, double w) { return w != 1.0 ? m + (1.0 - w) : m; }

// The norm restoration's factor ‖Y‖ / max(‖B‖, floor) (retraction_core.cpp gramPolarMatrix).
NSA_HD double restoreScale(double normY, double normB) { return normY / (normB > kBlendNormFloor ? normB : kBlendNormFloor); }

// Makes the column-major symmetric k×k S full from its lower triangle (DSYRK fills one triangle).
NSA_HD void symmetrizeEntry(double* S, std::size_t k, std::size_t i, std::size_t j) {
  if (i < j) S[i + j * k] = S[j + i * k];
}

// ---- reductions ------------------------------------------------------------------------------------
// A reduction is split into partial sums over strided index sets, {first, first + stride, …} below n:
// a GPU thread sums its set (first = its global index, stride = the grid's thread count), then the
// partials are added. Host code with stride 1 is the CPU's sequential sum.

NSA_HD double squaredNormPartial(const double* x, std::size_t n, std::size_t first, std::size_t stride) {
  double s = 0;
  for (std::size_t i = first; i < n; i += stride) s += x[i] * x[i];
  return s;
}

NSA_HD double dotPartial(const double* x, const double* y, std::size_t n, std::size_t first, std::size_t stride) {
  double s = 0;
  for (std::size_t i = first; i < n; i += stride) s += x[i] * y[i];
  return s;
}

// ‖x − y‖² (the direct residual ‖A − WH‖² of nmf.cpp's directResidualSquared, used where the expanded
// loss would cancel).
NSA_HD double squaredDistancePartial(const double* x, const double* y, std::size_t n, std::size_t first, std::size_t stride) {
  double s = 0;
  for (std::size_t i = first; i < n; i += stride) {
    const double d = x[i] - y[i];
    s += d * d;
  }
  return s;
}

// The Frobenius loss² from the products the update computes anyway (nmf.cpp frobeniusLossSquared):
// ‖A‖² − 2⟨AHᵀ, W⟩ + ⟨WᵀW, HHᵀ⟩, or NaN where it cancels below kCancellationRatio (the caller then
// takes the direct residual).
constexpr double kCancellationRatio = 1e-4;
NSA_HD double expandedLossSquared(double normA2, double cross, double model) {
  const double expanded = normA2 - 2.0 * cross + model;
  return expanded >= kCancellationRatio * (normA2 + model) ? expanded : NAN;
}

// The trace of the column-major k×k S, over diagonal entries first, first + stride, ….
NSA_HD double tracePartial(const double* S, std::size_t k, std::size_t first, std::size_t stride) {
  double s = 0;
  for (std::size_t i = first; i < k; i += stride) s += S[i + i * k];
  return s;
}

// How many entries are not finite (a count in a double, so it reduces as the sums do).
NSA_HD double nonFinitePartial(const double* x, std::size_t n, std::size_t first, std::size_t stride) {
  double s = 0;
  for (std::size_t i = first; i < n; i += stride) s += isfinite(x[i]) ? 0.0 : 1.0;
  return s;
}

}  // namespace nsa::cuda
