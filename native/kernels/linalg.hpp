// Small helpers over CBLAS/LAPACKE shared by every kernel family.
// Convention: public buffers are row-major; a row-major p×k buffer is a column-major k×p matrix,
// which is how LAPACK routines are fed without copying where the algebra allows it.
#pragma once
#include <cblas.h>
#include <lapacke.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace nsa {

// Reusable scratch buffers: a solver keeps one Workspace for its whole run so that iterations do not
// allocate once the first one has sized the slots.
class Workspace {
 public:
  double* get(std::size_t slot, std::size_t n) {
    if (slot >= bufs_.size()) bufs_.resize(slot + 1);
    if (bufs_[slot].size() < n) bufs_[slot].resize(n);
    return bufs_[slot].data();
  }

 private:
  std::vector<std::vector<double>> bufs_;
};

// n doubles left uninitialized (new double[n], not std::vector's value-initialization), for a run's
// large buffers that a pass on its thread team writes in full before anything reads them. A vector's
// zero fill runs on the allocating thread, and for a fresh allocation it is also the first touch of
// every page: that one thread takes all the page faults (SPG at 100000×20: four 16 MB buffers, about a
// tenth of the calling thread's time on two threads), where the team's first pass spreads them.
class UninitDoubles {
 public:
  UninitDoubles() = default;
  explicit UninitDoubles(std::size_t n) : p_(n ? new double[n] : nullptr), n_(n) {}
  UninitDoubles(UninitDoubles&& other) noexcept : p_(std::move(other.p_)), n_(std::exchange(other.n_, 0)) {}
  UninitDoubles& operator=(UninitDoubles&& other) noexcept {
    p_ = std::move(other.p_);
    n_ = std::exchange(other.n_, 0);
    return *this;
  }
  double* data() { return p_.get(); }
  const double* data() const { return p_.get(); }
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  double& operator[](std::size_t i) { return p_[i]; }
  const double& operator[](std::size_t i) const { return p_[i]; }
  double* begin() { return p_.get(); }
  double* end() { return p_.get() + n_; }
  const double* begin() const { return p_.get(); }
  const double* end() const { return p_.get() + n_; }
  void swap(UninitDoubles& other) noexcept {
    p_.swap(other.p_);
    std::swap(n_, other.n_);
  }

 private:
  std::unique_ptr<double[]> p_;
  std::size_t n_ = 0;
};

// n doubles that start on a 64-byte boundary, inside `storage` (resized to n + 7): for buffers that
// vector passes read four or eight doubles at a time. From malloc's 16-byte alignment half of the
// 4-wide loads straddle two cache lines; the tensor HALS kernels' passes (listed_kernels.cpp) took
// 1.5–1.6 times as long per entry so (timed alone, rank 20, 1000 and 20000 entries per column).
inline double* cacheAligned(std::vector<double>& storage, std::size_t n) {
  storage.resize(n + 7);
  const std::size_t misalignment = reinterpret_cast<std::uintptr_t>(storage.data()) % 64;
  return storage.data() + (64 - misalignment) % 64 / sizeof(double);
}

inline double squaredNorm(const double* x, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += x[i] * x[i];
  return s;
}

// one(j, lane) for j in [i, e): lanes 0–3 in turn over the whole groups of four, lane 0 for the rest.
// The order of the fused passes' four partial sums (one running sum is a chain of dependent additions
// that sets the pace of a pass); their SSE2 versions hold lanes 0–1 and 2–3 in two registers, handle
// the groups of four first and leave `i` at the tail, so the sums are the same bit for bit.
template <class F>
inline void fourLanes(std::size_t i, std::size_t e, F&& one) {
  for (; i + 4 <= e; i += 4) {
    one(i, 0);
    one(i + 1, 1);
    one(i + 2, 2);
    one(i + 3, 3);
  }
  for (; i < e; ++i) one(i, 0);
}

// Σx² in four partial sums (lanes 0–3 over the whole groups of four, lane 0 for the rest, added as
// (s₀ + s₁) + (s₂ + s₃): the order of lib/validate.ts's scaledNorm, so both give the same bits where the
// compiler fuses no multiply–add, as on the x86-64 baseline), and whether any entry has its sign bit
// set: one pass with no branch per entry. One running sum would be a chain of dependent additions, four
// cycles an entry: on a 128×1000 matrix 0.15 ms, a sixth of a whole small NMF call's fixed cost. A NaN
// or ±∞ entry makes the sum non-finite, so a finite sum and a false return value together mean every
// entry is finite and ≥ 0 (−0 counts as signed: callers treat `true` as "look closer", never as a defect).
inline bool squaredNormSigned(const double* x, std::size_t n, double& sum) {
  double acc[4] = {0, 0, 0, 0};
  unsigned long long signs = 0;
  std::size_t i = 0;
#if defined(__SSE2__)
  __m128d s01 = _mm_setzero_pd(), s23 = _mm_setzero_pd(), bits = _mm_setzero_pd();
  for (; i + 4 <= n; i += 4) {
    const __m128d a = _mm_loadu_pd(x + i), b = _mm_loadu_pd(x + i + 2);
    s01 = _mm_add_pd(s01, _mm_mul_pd(a, a));
    s23 = _mm_add_pd(s23, _mm_mul_pd(b, b));
    bits = _mm_or_pd(bits, _mm_or_pd(a, b));
  }
  _mm_storeu_pd(acc, s01);
  _mm_storeu_pd(acc + 2, s23);
  signs = _mm_movemask_pd(bits) != 0 ? 1ull << 63 : 0;  // either lane's sign bit
#endif
  fourLanes(i, n, [&](std::size_t j, int l) {
    acc[l] += x[j] * x[j];
    unsigned long long b;
    std::memcpy(&b, x + j, sizeof b);
    signs |= b;
  });
  sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  return (signs >> 63) != 0;
}

// Σx² in squaredNormSigned's four partial sums, for a pass that needs only the sum.
inline double laneSquaredNorm(const double* x, std::size_t n) {
  double sum = 0;
  squaredNormSigned(x, n, sum);
  return sum;
}

// Σx in four partial sums, the order of squaredNormSigned (one running sum would cost four cycles an
// entry: the data's sum is part of every NMF call's fixed cost, its random start's scale).
inline double laneSum(const double* x, std::size_t n) {
  double acc[4] = {0, 0, 0, 0};
  std::size_t i = 0;
#if defined(__SSE2__)
  __m128d s01 = _mm_setzero_pd(), s23 = _mm_setzero_pd();
  for (; i + 4 <= n; i += 4) {
    s01 = _mm_add_pd(s01, _mm_loadu_pd(x + i));
    s23 = _mm_add_pd(s23, _mm_loadu_pd(x + i + 2));
  }
  _mm_storeu_pd(acc, s01);
  _mm_storeu_pd(acc + 2, s23);
#endif
  fourLanes(i, n, [&](std::size_t j, int l) { acc[l] += x[j]; });
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Whether every entry is finite and ≥ 0 (0 ≤ x ≤ DBL_MAX, which a NaN fails), without a branch per
// entry: the addon's second guard over every non-negative input, so a pass at memory speed. −0 passes.
inline bool allNonNegativeFinite(const double* x, std::size_t n) {
  std::size_t i = 0;
  bool ok = true;
#if defined(__SSE2__)
  const __m128d zero = _mm_setzero_pd(), largest = _mm_set1_pd(1.7976931348623157e308);
  __m128d good = _mm_castsi128_pd(_mm_set1_epi32(-1));
  for (; i + 2 <= n; i += 2) {
    const __m128d v = _mm_loadu_pd(x + i);
    good = _mm_and_pd(good, _mm_and_pd(_mm_cmpge_pd(v, zero), _mm_cmple_pd(v, largest)));
  }
  ok = _mm_movemask_pd(good) == 3;
#endif
  for (; i < n; ++i) ok = ok && x[i] >= 0 && x[i] <= 1.7976931348623157e308;
  return ok;
}

// Whether every entry is finite (|x| ≤ DBL_MAX, which a NaN fails), without a branch per entry: the
// guard over every signed input (Y0, X0: 4·10⁶ values a call at 100000×20), at memory speed.
inline bool allFinite(const double* x, std::size_t n) {
  std::size_t i = 0;
  bool ok = true;
#if defined(__SSE2__)
  const __m128d largest = _mm_set1_pd(1.7976931348623157e308), sign = _mm_set1_pd(-0.0);
  __m128d good = _mm_castsi128_pd(_mm_set1_epi32(-1));
  for (; i + 2 <= n; i += 2) good = _mm_and_pd(good, _mm_cmple_pd(_mm_andnot_pd(sign, _mm_loadu_pd(x + i)), largest));
  ok = _mm_movemask_pd(good) == 3;
#endif
  for (; i < n; ++i) ok = ok && std::abs(x[i]) <= 1.7976931348623157e308;
  return ok;
}

inline int asInt(std::size_t n) { return static_cast<int>(n); }

// C = alpha * op(A) * op(B) + beta * C, all row-major.
inline void gemm(bool transA, bool transB, std::size_t m, std::size_t n, std::size_t k, double alpha,
                 const double* A, const double* B, double beta, double* C) {
  cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
              asInt(m), asInt(n), asInt(k), alpha, A, asInt(transA ? m : k), B, asInt(transB ? k : n),
              beta, C, asInt(n));
}

// S = YᵀY for a row-major p×k Y, both triangles filled.
inline void gram(const double* Y, std::size_t p, std::size_t k, double* S) {
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, asInt(k), asInt(p), 1.0, Y, asInt(k), 0.0, S,
              asInt(k));
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < i; ++j) S[i * k + j] = S[j * k + i];
}

// S = AᵀA over the m rows of a row block (at least the upper triangle, row-major), or S += AᵀA when
// !first: the Gram of a tall matrix accumulated block by block. Narrow blocks use DGEMM: for k = 20 and
// row blocks of a few hundred rows OpenBLAS's DGEMM forms the full AᵀA in about half the time its DSYRK
// takes for one triangle (measured 1.5–1.9 vs 3.5–4.1 ms per 10⁵ rows, one thread); wide ones (k > 48)
// keep DSYRK's half of the flops.
inline void gramAccumulate(const double* A, std::size_t m, std::size_t k, double* S, bool first) {
  if (k <= 48) {
    gemm(true, false, k, k, m, 1.0, A, A, first ? 0.0 : 1.0, S);
    return;
  }
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, asInt(k), asInt(m), 1.0, A, asInt(k), first ? 0.0 : 1.0, S,
              asInt(k));
}

// acc[i mod 4] += (a[i] − b[i])² over the whole groups of four of `len` entries, acc[0] for the rest:
// a sum of squares in four partial sums (one running sum is a chain of dependent additions that sets the
// pace of a pass). SSE2 where there is SSE2, its two registers holding sums 0–1 and 2–3: the same sums
// as the portable loop, bit for bit. acc carries over between calls (a pass over row blocks).
inline void squaredDistanceLanes(const double* a, const double* b, std::size_t len, double acc[4]) {
  std::size_t i = 0;
#if defined(__SSE2__)
  __m128d s0 = _mm_loadu_pd(acc), s1 = _mm_loadu_pd(acc + 2);
  for (; i + 4 <= len; i += 4) {
    const __m128d d0 = _mm_sub_pd(_mm_loadu_pd(a + i), _mm_loadu_pd(b + i));
    const __m128d d1 = _mm_sub_pd(_mm_loadu_pd(a + i + 2), _mm_loadu_pd(b + i + 2));
    s0 = _mm_add_pd(s0, _mm_mul_pd(d0, d0));
    s1 = _mm_add_pd(s1, _mm_mul_pd(d1, d1));
  }
  _mm_storeu_pd(acc, s0);
  _mm_storeu_pd(acc + 2, s1);
#endif
  fourLanes(i, len, [&](std::size_t j, int l) {
    const double d = a[j] - b[j];
    acc[l] += d * d;
  });
}

// Row-major rows×cols → row-major cols×rows.
inline void transposeInto(const double* A, std::size_t rows, std::size_t cols, double* out) {
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) out[j * rows + i] = A[i * cols + j];
}

}  // namespace nsa
