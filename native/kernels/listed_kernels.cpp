// The listed entries' inner loops, portable and AVX + FMA (listed_kernels.hpp).
//
// Why by hand: the rows are short (r ≈ 10–50) and r is only known at run time, so -O2 leaves these
// loops scalar, and prebuilt binaries target the x86-64 baseline (SSE2): -march=native is not an
// option. The AVX + FMA versions carry their own target attribute and are chosen by a run-time check
// of the CPU, so a binary built for the baseline still runs everywhere.
#include "listed_kernels.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NSA_LISTED_AVX 1
#include <immintrin.h>
#endif

namespace nsa::listed {

namespace {

inline const double* rowOf(const double* Y, const int32_t* idx, std::size_t q, std::size_t r) {
  return Y + static_cast<std::size_t>(idx[q]) * r;
}

// ---- portable -----------------------------------------------------------------------------------

// ⟨x, y⟩ with four partial sums: one running sum would make every addition wait for the previous one.
inline double dot4(const double* __restrict x, const double* __restrict y, std::size_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) s0 += x[i] * y[i], s1 += x[i + 1] * y[i + 1], s2 += x[i + 2] * y[i + 2], s3 += x[i + 3] * y[i + 3];
  for (; i < n; ++i) s0 += x[i] * y[i];
  return (s0 + s1) + (s2 + s3);
}

void dotsPortable(const double* x, const double* Y, const int32_t* idx, std::size_t k, std::size_t r, double* out) {
  for (std::size_t q = 0; q < k; ++q) out[q] = dot4(x, rowOf(Y, idx, q, r), r);
}

void gatherAxpyPortable(const double* coef, const double* Y, const int32_t* idx, std::size_t k, std::size_t r,
                        double* __restrict out) {
  for (std::size_t q = 0; q < k; ++q) {
    if (coef[q] == 0.0) continue;
    const double* __restrict y = rowOf(Y, idx, q, r);
    for (std::size_t c = 0; c < r; ++c) out[c] += coef[q] * y[c];
  }
}

void scatterAxpyPortable(const double* coef, const double* x, const int32_t* idx, std::size_t k, std::size_t r,
                         double* out) {
  for (std::size_t q = 0; q < k; ++q) {
    if (coef[q] == 0.0) continue;
    double* __restrict o = out + static_cast<std::size_t>(idx[q]) * r;
    for (std::size_t c = 0; c < r; ++c) o[c] += coef[q] * x[c];
  }
}

void dotsAxpyPortable(const double* x, const double* Y, const int32_t* idx, const double* kappa, double c,
                      std::size_t k, std::size_t r, double* __restrict out) {
  for (std::size_t q = 0; q < k; ++q) {
    const double* __restrict y = rowOf(Y, idx, q, r);
    const double coef = kappa[q] * (c + dot4(x, y, r));
    for (std::size_t a = 0; a < r; ++a) out[a] += coef * y[a];
  }
}

// The update of x_c ≥ 0 by its exact minimizer, shared by both versions (nmf.cpp, weightedHalsSweep).
// Returns x_c's step; `listedGradient` is Σ_listed e·y_c.
// baseGradient: P_c − (xG)_c when base; d: the curvature with the penalty's l2.
inline double coordinateStep(double* x, std::size_t c, double d, double baseGradient, double listedGradient, double l1,
                             double l2) {
  double g = baseGradient + listedGradient;
  g -= l1 + l2 * x[c];
  const double updated = std::max(0.0, x[c] + g / d);
  const double step = updated - x[c];
  x[c] = updated;
  return step;
}

inline bool curvatureUsable(double d, const HalsRowTerms& t, std::size_t c, std::size_t r) {
  return d > (t.base ? t.rounding * t.G[c * r + c] : 0.0);
}

// Whether a coordinate without usable curvature may still move (HalsRowTerms::penaltyZeroes): then its
// gradient is taken as for any other.
inline bool uncurvedMoves(const HalsRowTerms& t) { return t.penaltyZeroes && t.l1 > 0; }

// The step of coordinate c, with curvature d (with l2) and its gradient's two parts (coordinateStep's),
// under t's curvature rule: the exact minimizer's where d is usable; else, with uncurvedMoves, 0 for
// x_c where its slope −g is positive (the objective linear in x_c, rising), and none otherwise.
inline double ruledStep(double* x, std::size_t c, double d, double baseGradient, double listedGradient,
                        const HalsRowTerms& t, std::size_t r) {
  if (curvatureUsable(d, t, c, r)) return coordinateStep(x, c, d, baseGradient, listedGradient, t.l1, t.l2);
  if (!uncurvedMoves(t)) return 0.0;
  const double g = baseGradient + listedGradient - (t.l1 + t.l2 * x[c]);
  if (!(g < 0)) return 0.0;
  const double step = -x[c];
  x[c] = 0;
  return step;
}

// The terms of halsRow and the cp row kernels: all r coordinates free, the curvature rule 1e-12.
inline HalsRowTerms rowTerms(bool base, const double* P, const double* G, double l1, double l2, std::size_t r) {
  HalsRowTerms t;
  t.base = base, t.P = P, t.G = G, t.l1 = l1, t.l2 = l2, t.free = r;
  return t;
}

// The coordinate loop of a HALS row, after the gather (halsRowPortable, cpHalsSweepPortable, halsSweeps):
// Yc holds the listed rows column by column, e = κ(a − x·y) and curvature the base part plus Σκy_c²;
// coordinates c < t.free, each in turn.
void halsCoordinatesPortable(double* x, const double* kappa, double kappa0, std::size_t k, std::size_t r,
                             const HalsRowTerms& t, const double* curvature, const double* __restrict Yc,
                             double* __restrict e) {
  for (std::size_t c = 0; c < t.free; ++c) {
    const double* yc = Yc + c * k;
    const double d = curvature[c] + t.l2;
    if (!curvatureUsable(d, t, c, r) && !uncurvedMoves(t)) continue;
    double g = 0;
    if (t.base) {
      g = t.P[c];
      for (std::size_t l = 0; l < r; ++l) g -= x[l] * t.G[l * r + c];
    }
    const double step = ruledStep(x, c, d, g, dot4(e, yc, k), t, r);
    if (step != 0.0)
      for (std::size_t q = 0; q < k; ++q) e[q] -= step * ((kappa ? kappa[q] : kappa0) * yc[q]);
  }
}

// halsRowPortable's gather: the listed entries' rows of Y column by column (Yc[c·k + q] = y_c of entry
// q), so that every pass runs over contiguous memory; the residuals e = κ(a − x·y) and the curvatures
// d_c = b·G_cc + Σκy_c² in the same pass.
void gatherRowsPortable(const double* x, const double* Y, const int32_t* idx, const double* kappa, double kappa0,
                        const double* a, std::size_t k, std::size_t r, bool base, const double* G, double* curvature,
                        double* __restrict Yc, double* __restrict e) {
  for (std::size_t c = 0; c < r; ++c) curvature[c] = base ? G[c * r + c] : 0.0;
  for (std::size_t q = 0; q < k; ++q) {
    const double* y = rowOf(Y, idx, q, r);
    for (std::size_t c = 0; c < r; ++c) {
      Yc[c * k + q] = y[c];
      curvature[c] += (kappa ? kappa[q] : kappa0) * y[c] * y[c];
    }
    e[q] = (kappa ? kappa[q] : kappa0) * ((a ? a[q] : 0.0) - dot4(x, y, r));
  }
}

void halsRowPortable(double* x, const double* Y, const int32_t* idx, const double* kappa, double kappa0, const double* a,
                     std::size_t k, std::size_t r, bool base, const double* P, const double* G, double l1, double l2,
                     double* curvature, double* __restrict Yc, double* __restrict e) {
  gatherRowsPortable(x, Y, idx, kappa, kappa0, a, k, r, base, G, curvature, Yc, e);
  halsCoordinatesPortable(x, kappa, kappa0, k, r, rowTerms(base, P, G, l1, l2, r), curvature, Yc, e);
}

int halsSweepsPortable(double* x, const double* Y, const int32_t* idx, const double* kappa, double kappa0,
                       const double* a, std::size_t k, std::size_t r, const HalsRowTerms& t, int maxSweeps,
                       double* curvature, double*, double* xold, double* Yc, double* e) {
  gatherRowsPortable(x, Y, idx, kappa, kappa0, a, k, r, t.base, t.G, curvature, Yc, e);
  return repeatSweeps(x, xold, curvature, t.free, t.l2, kGillisGlineurStop, maxSweeps,
                      [&](int, bool) { halsCoordinatesPortable(x, kappa, kappa0, k, r, t, curvature, Yc, e); });
}

// halsRowPortable's gather with each row y the entry's Khatri–Rao row, formed as it is stored.
void cpHalsGatherPortable(const double* const* rows, std::size_t order, const int32_t* idx, std::size_t stride,
                          const double* x, const double* kappa, double kappa0, const double* a, std::size_t k,
                          std::size_t r, const double* G, double* curvature, double* __restrict Yc,
                          double* __restrict e) {
  for (std::size_t c = 0; c < r; ++c) curvature[c] = G[c * r + c];
  for (std::size_t q = 0; q < k; ++q) {
    const int32_t* at = idx + q * stride;
    const double kq = kappa ? kappa[q] : kappa0;
    double m0 = 0, m1 = 0;
    for (std::size_t c = 0; c < r; ++c) {
      double y = 1.0;
      for (std::size_t j = 0; j < order; ++j) y *= rows[j][static_cast<std::size_t>(at[j]) * r + c];
      Yc[c * k + q] = y;
      curvature[c] += kq * y * y;
      if (c % 2 == 0) m0 += x[c] * y;
      else m1 += x[c] * y;
    }
    e[q] = kq * ((a ? a[q] : 0.0) - (m0 + m1));
  }
}

// The portable coordinate loop applies each step to e as it goes: e is current after it. Its
// curvatures come from the gather, and its one-coordinate passes need no cross sums: `cross` and
// `first` are the vector version's.
void cpHalsSweepPortable(double* x, const double* kappa, double kappa0, std::size_t k, std::size_t r, const double* P,
                         const double* G, double* curvature, double*, const double* Yc, double* e, bool, bool) {
  halsCoordinatesPortable(x, kappa, kappa0, k, r, rowTerms(true, P, G, 0.0, 0.0, r), curvature, Yc, e);
}

void cpHalsSweepPairPortable(const SweepRow& a, const SweepRow& b, double kappa0, std::size_t r, const double* G,
                             bool again, bool first) {
  for (const SweepRow* row : {&a, &b})
    cpHalsSweepPortable(row->x, row->kappa, kappa0, row->k, r, row->P, G, row->curvature, row->cross, row->Yc, row->e,
                        again, first);
}

void cpValuesPortable(const double* const* rows, std::size_t order, std::size_t R, const int32_t* idx, std::size_t stride,
                      std::size_t k, double* out) {
  for (std::size_t q = 0; q < k; ++q) {
    const int32_t* at = idx + q * stride;
    const double* x0 = rows[0] + static_cast<std::size_t>(at[0]) * R;
    double s0 = 0, s1 = 0;
    std::size_t a = 0;
    for (; a + 2 <= R; a += 2) {
      double p0 = x0[a], p1 = x0[a + 1];
      for (std::size_t j = 1; j < order; ++j) {
        const double* x = rows[j] + static_cast<std::size_t>(at[j]) * R;
        p0 *= x[a], p1 *= x[a + 1];
      }
      s0 += p0, s1 += p1;
    }
    for (; a < R; ++a) {
      double p0 = x0[a];
      for (std::size_t j = 1; j < order; ++j) p0 *= rows[j][static_cast<std::size_t>(at[j]) * R + a];
      s0 += p0;
    }
    out[q] = s0 + s1;
  }
}

void cpGroupSumsPortable(const double* const* rows, std::size_t order, std::size_t R, const int32_t* others,
                         const std::size_t* start, std::size_t begin, std::size_t end, std::size_t skip,
                         const double* kappa, double kappa0, const double* a, double* num, double* den,
                         double* __restrict z) {
  const std::size_t n = order - 1;
  const double* other[64];  // the other factors, in mode order (orders up to 65)
  for (std::size_t j = 0, count = 0; j < order; ++j)
    if (j != skip) other[count++] = rows[j];
  for (std::size_t i = begin; i < end; ++i) {
    const double* own = rows[skip] + i * R;
    double* __restrict dj = den + i * R;
    double* __restrict nj = a ? num + i * R : nullptr;
    std::fill(dj, dj + R, 0.0);
    if (nj) std::fill(nj, nj + R, 0.0);
    for (std::size_t q = start[i]; q < start[i + 1]; ++q) {
      const int32_t* at = others + q * n;
      if (n > 0)
        std::memcpy(z, other[0] + static_cast<std::size_t>(at[0]) * R, R * sizeof(double));
      else
        std::fill(z, z + R, 1.0);  // order 1: the empty product
      for (std::size_t j = 1; j < n; ++j) {
        const double* __restrict y = other[j] + static_cast<std::size_t>(at[j]) * R;
        for (std::size_t c = 0; c < R; ++c) z[c] *= y[c];
      }
      const double model = dot4(z, own, R);
      const double kq = kappa ? kappa[q] : kappa0;
      const double km = kq * model;
      for (std::size_t c = 0; c < R; ++c) dj[c] += km * z[c];
      if (a && a[q] != 0.0) {
        const double ka = kq * a[q];
        for (std::size_t c = 0; c < R; ++c) nj[c] += ka * z[c];
      }
    }
  }
}

const Kernels portableKernels{dotsPortable,        gatherAxpyPortable,   scatterAxpyPortable, dotsAxpyPortable,
                              halsRowPortable,     cpHalsGatherPortable, cpHalsSweepPortable,
                              halsSweepsPortable,  cpHalsSweepPairPortable, cpValuesPortable,  cpGroupSumsPortable,
                              false};

// ---- AVX + FMA ----------------------------------------------------------------------------------

#ifdef NSA_LISTED_AVX
#define NSA_AVX_FMA __attribute__((target("avx,fma")))

// Lanes below `count` (0–3) set: loads of a row's last partial chunk (maskload never touches the
// lanes left out, so it cannot read past the row).
NSA_AVX_FMA inline __m256i laneMask(std::size_t count) {
  return _mm256_set_epi64x(count > 3 ? -1LL : 0LL, count > 2 ? -1LL : 0LL, count > 1 ? -1LL : 0LL,
                           count > 0 ? -1LL : 0LL);
}

// Asks for the cache lines of the rows of entries q..q+3 (a row of r doubles spans up to
// ⌈8r/64⌉ + 1 lines): the rows are scattered, and the next block's loads would otherwise wait on them.
inline void prefetchRows(const double* Y, const int32_t* idx, std::size_t q, std::size_t k, std::size_t r) {
  for (std::size_t l = q; l < std::min(q + 4, k); ++l) {
    const char* row = reinterpret_cast<const char*>(rowOf(Y, idx, l, r));
    for (std::size_t b = 0; b < r * sizeof(double); b += 64) _mm_prefetch(row + b, _MM_HINT_T0);
    _mm_prefetch(row + r * sizeof(double) - 1, _MM_HINT_T0);
  }
}

NSA_AVX_FMA inline double horizontalSum(__m256d v) {
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// [Σa0, Σa1, Σa2, Σa3]: the four lane sums of four vectors.
NSA_AVX_FMA inline __m256d horizontalSums4(__m256d a0, __m256d a1, __m256d a2, __m256d a3) {
  const __m256d h01 = _mm256_hadd_pd(a0, a1), h23 = _mm256_hadd_pd(a2, a3);
  return _mm256_add_pd(_mm256_permute2f128_pd(h01, h23, 0x20), _mm256_permute2f128_pd(h01, h23, 0x31));
}

// ⟨x, y⟩ over n contiguous entries.
NSA_AVX_FMA inline double dotAvx(const double* x, const double* y, std::size_t n) {
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    s0 = _mm256_fmadd_pd(_mm256_loadu_pd(x + i), _mm256_loadu_pd(y + i), s0);
    s1 = _mm256_fmadd_pd(_mm256_loadu_pd(x + i + 4), _mm256_loadu_pd(y + i + 4), s1);
  }
  if (i + 4 <= n) s0 = _mm256_fmadd_pd(_mm256_loadu_pd(x + i), _mm256_loadu_pd(y + i), s0), i += 4;
  if (i < n) {
    const __m256i mask = laneMask(n - i);
    s1 = _mm256_fmadd_pd(_mm256_maskload_pd(x + i, mask), _mm256_maskload_pd(y + i, mask), s1);
  }
  return horizontalSum(_mm256_add_pd(s0, s1));
}

NSA_AVX_FMA void dotsAvx(const double* x, const double* Y, const int32_t* idx, std::size_t k, std::size_t r,
                         double* out) {
  const std::size_t full = r & ~std::size_t{3}, tail = r - full;
  const __m256i mask = laneMask(tail);
  std::size_t q = 0;
  // Four entries at a time: four independent sums, reduced together.
  for (; q + 4 <= k; q += 4) {
    prefetchRows(Y, idx, q + 4, k, r);
    const double *y0 = rowOf(Y, idx, q, r), *y1 = rowOf(Y, idx, q + 1, r), *y2 = rowOf(Y, idx, q + 2, r),
                 *y3 = rowOf(Y, idx, q + 3, r);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    for (std::size_t c = 0; c < full; c += 4) {
      const __m256d xv = _mm256_loadu_pd(x + c);
      a0 = _mm256_fmadd_pd(_mm256_loadu_pd(y0 + c), xv, a0);
      a1 = _mm256_fmadd_pd(_mm256_loadu_pd(y1 + c), xv, a1);
      a2 = _mm256_fmadd_pd(_mm256_loadu_pd(y2 + c), xv, a2);
      a3 = _mm256_fmadd_pd(_mm256_loadu_pd(y3 + c), xv, a3);
    }
    if (tail) {
      const __m256d xv = _mm256_maskload_pd(x + full, mask);
      a0 = _mm256_fmadd_pd(_mm256_maskload_pd(y0 + full, mask), xv, a0);
      a1 = _mm256_fmadd_pd(_mm256_maskload_pd(y1 + full, mask), xv, a1);
      a2 = _mm256_fmadd_pd(_mm256_maskload_pd(y2 + full, mask), xv, a2);
      a3 = _mm256_fmadd_pd(_mm256_maskload_pd(y3 + full, mask), xv, a3);
    }
    _mm256_storeu_pd(out + q, horizontalSums4(a0, a1, a2, a3));
  }
  for (; q < k; ++q) out[q] = dotAvx(x, rowOf(Y, idx, q, r), r);
}

// o (r) += Σ_l c[l]·y_l over `count` (1–4) rows.
NSA_AVX_FMA inline void axpyRows(double* o, const double* const* y, const double* c, std::size_t count,
                                 std::size_t r) {
  const std::size_t full = r & ~std::size_t{3}, tail = r - full;
  if (count == 4) {
    const __m256d c0 = _mm256_broadcast_sd(c), c1 = _mm256_broadcast_sd(c + 1), c2 = _mm256_broadcast_sd(c + 2),
                  c3 = _mm256_broadcast_sd(c + 3);
    for (std::size_t j = 0; j < full; j += 4) {
      __m256d v = _mm256_loadu_pd(o + j);
      v = _mm256_fmadd_pd(c0, _mm256_loadu_pd(y[0] + j), v);
      v = _mm256_fmadd_pd(c1, _mm256_loadu_pd(y[1] + j), v);
      v = _mm256_fmadd_pd(c2, _mm256_loadu_pd(y[2] + j), v);
      v = _mm256_fmadd_pd(c3, _mm256_loadu_pd(y[3] + j), v);
      _mm256_storeu_pd(o + j, v);
    }
    if (tail) {
      const __m256i mask = laneMask(tail);
      __m256d v = _mm256_maskload_pd(o + full, mask);
      v = _mm256_fmadd_pd(c0, _mm256_maskload_pd(y[0] + full, mask), v);
      v = _mm256_fmadd_pd(c1, _mm256_maskload_pd(y[1] + full, mask), v);
      v = _mm256_fmadd_pd(c2, _mm256_maskload_pd(y[2] + full, mask), v);
      v = _mm256_fmadd_pd(c3, _mm256_maskload_pd(y[3] + full, mask), v);
      _mm256_maskstore_pd(o + full, mask, v);
    }
    return;
  }
  for (std::size_t l = 0; l < count; ++l) {
    const __m256d cv = _mm256_broadcast_sd(c + l);
    for (std::size_t j = 0; j < full; j += 4)
      _mm256_storeu_pd(o + j, _mm256_fmadd_pd(cv, _mm256_loadu_pd(y[l] + j), _mm256_loadu_pd(o + j)));
    if (tail) {
      const __m256i mask = laneMask(tail);
      _mm256_maskstore_pd(o + full, mask,
                          _mm256_fmadd_pd(cv, _mm256_maskload_pd(y[l] + full, mask), _mm256_maskload_pd(o + full, mask)));
    }
  }
}

NSA_AVX_FMA void gatherAxpyAvx(const double* coef, const double* Y, const int32_t* idx, std::size_t k, std::size_t r,
                               double* out) {
  // The nonzero entries four at a time: out is loaded and stored once per four rows.
  const double* rows[4];
  double c[4];
  std::size_t count = 0;
  for (std::size_t q = 0; q < k; ++q) {
    if (coef[q] == 0.0) continue;
    if (q % 4 == 0) prefetchRows(Y, idx, q + 4, k, r);
    rows[count] = rowOf(Y, idx, q, r), c[count] = coef[q];
    if (++count == 4) axpyRows(out, rows, c, 4, r), count = 0;
  }
  if (count) axpyRows(out, rows, c, count, r);
}

NSA_AVX_FMA void scatterAxpyAvx(const double* coef, const double* x, const int32_t* idx, std::size_t k, std::size_t r,
                                double* out) {
  for (std::size_t q = 0; q < k; ++q) {
    if (coef[q] == 0.0) continue;
    const double* rows[1] = {x};
    axpyRows(out + static_cast<std::size_t>(idx[q]) * r, rows, coef + q, 1, r);
  }
}

// dotsAvx's four sums at a time, then their coefficients' axpyRows on the same rows (now in L1): the
// rows are fetched once instead of twice, and out stays in L1 between the blocks.
NSA_AVX_FMA void dotsAxpyAvx(const double* x, const double* Y, const int32_t* idx, const double* kappa, double c,
                             std::size_t k, std::size_t r, double* out) {
  const std::size_t full = r & ~std::size_t{3}, tail = r - full;
  const __m256i mask = laneMask(tail);
  const __m256d cv = _mm256_set1_pd(c);
  std::size_t q = 0;
  for (; q + 4 <= k; q += 4) {
    prefetchRows(Y, idx, q + 4, k, r);
    const double* y[4] = {rowOf(Y, idx, q, r), rowOf(Y, idx, q + 1, r), rowOf(Y, idx, q + 2, r),
                          rowOf(Y, idx, q + 3, r)};
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    for (std::size_t j = 0; j < full; j += 4) {
      const __m256d xv = _mm256_loadu_pd(x + j);
      a0 = _mm256_fmadd_pd(_mm256_loadu_pd(y[0] + j), xv, a0);
      a1 = _mm256_fmadd_pd(_mm256_loadu_pd(y[1] + j), xv, a1);
      a2 = _mm256_fmadd_pd(_mm256_loadu_pd(y[2] + j), xv, a2);
      a3 = _mm256_fmadd_pd(_mm256_loadu_pd(y[3] + j), xv, a3);
    }
    if (tail) {
      const __m256d xv = _mm256_maskload_pd(x + full, mask);
      a0 = _mm256_fmadd_pd(_mm256_maskload_pd(y[0] + full, mask), xv, a0);
      a1 = _mm256_fmadd_pd(_mm256_maskload_pd(y[1] + full, mask), xv, a1);
      a2 = _mm256_fmadd_pd(_mm256_maskload_pd(y[2] + full, mask), xv, a2);
      a3 = _mm256_fmadd_pd(_mm256_maskload_pd(y[3] + full, mask), xv, a3);
    }
    double coef[4];
    const __m256d model = _mm256_add_pd(cv, horizontalSums4(a0, a1, a2, a3));
    _mm256_storeu_pd(coef, _mm256_mul_pd(_mm256_loadu_pd(kappa + q), model));
    axpyRows(out, y, coef, 4, r);
  }
  for (; q < k; ++q) {
    const double* y[1] = {rowOf(Y, idx, q, r)};
    const double coef = kappa[q] * (c + dotAvx(x, y[0], r));
    axpyRows(out, y, &coef, 1, r);
  }
}

// The 4×4 block of rows y0..y3 (columns j..j+3) stored transposed: Yc[(j + l)·k + q..q+3], l < count.
NSA_AVX_FMA inline void storeTransposed(__m256d r0, __m256d r1, __m256d r2, __m256d r3, double* Yc, std::size_t k,
                                        std::size_t count) {
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(Yc, _mm256_permute2f128_pd(t0, t2, 0x20));
  if (count > 1) _mm256_storeu_pd(Yc + k, _mm256_permute2f128_pd(t1, t3, 0x20));
  if (count > 2) _mm256_storeu_pd(Yc + 2 * k, _mm256_permute2f128_pd(t0, t2, 0x31));
  if (count > 3) _mm256_storeu_pd(Yc + 3 * k, _mm256_permute2f128_pd(t1, t3, 0x31));
}

// One pass of the coordinate loop over a row's k listed entries, for the coordinates c (y0) and, when
// Pair, c + 1 (y1): applies the two previous coordinates' steps to the residuals
// (e −= s_a·κ∘y_a + s_b·κ∘y_b; a step of 0 changes nothing) and returns Σe·y0, Σe·y1, Σκy0², Σκy1² and
// Σκy0y1 (out[0..4]), from which both coordinates' steps follow (halsCoordinatesAvx). Uniform: every
// κ is kappa0, taken out of the sums. Two sets of partial sums, for alternate chunks of four entries:
// each sum is then a chain of one addition per eight entries instead of four, and the loop runs at
// the rate of its multiply-adds, not of their latency. Squares false: the curvatures are known (a
// later sweep over the same rows), and the pass takes only Σe·y0 and Σe·y1 (out[2..4] are left).
// Steps false: both previous steps are 0 (the first pass, or two coordinates that stayed at 0), and
// e, which they would leave as it is, is only read.
template <bool Uniform, bool Pair, bool Squares, bool Steps>
NSA_AVX_FMA inline void coordinatePairPass(double* e, const double* kappa, double kappa0, const double* ya, double sa,
                                           const double* yb, double sb, const double* y0, const double* y1,
                                           std::size_t k, std::size_t chunk, double* out) {
  const std::size_t kFull = k & ~std::size_t{3};
  const __m256d va = _mm256_set1_pd(Uniform ? sa * kappa0 : sa), vb = _mm256_set1_pd(Uniform ? sb * kappa0 : sb);
  // Σe·y0, Σe·y1, Σκy0², Σκy1², Σκy0y1 over the chunks of one parity (named fields, not an array:
  // they stay in registers from the start, with no zeroing through memory per pass).
  struct Sums {
    __m256d g0, g1, d0, d1, d01;
  };
  const __m256d zero = _mm256_setzero_pd();
  Sums even{zero, zero, zero, zero, zero}, odd = even;
  const auto update = [&](Sums& acc, __m256d ev, __m256d pa, __m256d pb, __m256d z0, __m256d z1, __m256d kv)
                         NSA_AVX_FMA __attribute__((always_inline)) {
    if (Steps && Uniform) {
      ev = _mm256_fnmadd_pd(va, pa, ev);
      ev = _mm256_fnmadd_pd(vb, pb, ev);
    } else if (Steps) {
      ev = _mm256_fnmadd_pd(va, _mm256_mul_pd(kv, pa), ev);
      ev = _mm256_fnmadd_pd(vb, _mm256_mul_pd(kv, pb), ev);
    }
    acc.g0 = _mm256_fmadd_pd(ev, z0, acc.g0);
    if (Pair) acc.g1 = _mm256_fmadd_pd(ev, z1, acc.g1);
    if (Squares) {
      const __m256d kz0 = Uniform ? z0 : _mm256_mul_pd(kv, z0);
      acc.d0 = _mm256_fmadd_pd(kz0, z0, acc.d0);
      if (Pair) {
        acc.d1 = _mm256_fmadd_pd(Uniform ? z1 : _mm256_mul_pd(kv, z1), z1, acc.d1);
        acc.d01 = _mm256_fmadd_pd(kz0, z1, acc.d01);
      }
    }
    return ev;
  };
  // The entries' values of a column lie in chunks of four, `chunk` doubles apart (j: the chunk's offset).
  const auto full = [&](Sums& acc, std::size_t i, std::size_t j) NSA_AVX_FMA __attribute__((always_inline)) {
    const __m256d ev = update(acc, _mm256_loadu_pd(e + i), Steps ? _mm256_loadu_pd(ya + j) : zero,
                              Steps ? _mm256_loadu_pd(yb + j) : zero, _mm256_loadu_pd(y0 + j),
                              Pair ? _mm256_loadu_pd(y1 + j) : zero,
                              Uniform || !(Squares || Steps) ? zero : _mm256_loadu_pd(kappa + i));
    if (Steps) _mm256_storeu_pd(e + i, ev);
  };
  std::size_t i = 0, j = 0;
  for (; i + 8 <= kFull; i += 8, j += 2 * chunk) {
    full(even, i, j);
    full(odd, i + 4, j + chunk);
  }
  if (i < kFull) full(even, i, j), i += 4, j += chunk;
  if (kFull < k) {
    const __m256i mask = laneMask(k - kFull);
    const __m256d ev = update(odd, _mm256_maskload_pd(e + kFull, mask), Steps ? _mm256_maskload_pd(ya + j, mask) : zero,
                              Steps ? _mm256_maskload_pd(yb + j, mask) : zero, _mm256_maskload_pd(y0 + j, mask),
                              Pair ? _mm256_maskload_pd(y1 + j, mask) : zero,
                              Uniform || !(Squares || Steps) ? zero : _mm256_maskload_pd(kappa + kFull, mask));
    if (Steps) _mm256_maskstore_pd(e + kFull, mask, ev);
  }
  const double scale = Uniform ? kappa0 : 1.0;
  out[0] = horizontalSum(_mm256_add_pd(even.g0, odd.g0));
  out[1] = horizontalSum(_mm256_add_pd(even.g1, odd.g1));
  if (Squares) {
    out[2] = scale * horizontalSum(_mm256_add_pd(even.d0, odd.d0));
    out[3] = scale * horizontalSum(_mm256_add_pd(even.d1, odd.d1));
    out[4] = scale * horizontalSum(_mm256_add_pd(even.d01, odd.d01));
  }
}

// The pass for (uniform, pair, squares, steps): coordinatePairPass's 16 versions.
using CoordinatePass = void (*)(double*, const double*, double, const double*, double, const double*, double,
                                const double*, const double*, std::size_t, std::size_t, double*);
constexpr CoordinatePass coordinatePasses[2][2][2][2] = {
    {{{coordinatePairPass<false, false, false, false>, coordinatePairPass<false, false, false, true>},
      {coordinatePairPass<false, false, true, false>, coordinatePairPass<false, false, true, true>}},
     {{coordinatePairPass<false, true, false, false>, coordinatePairPass<false, true, false, true>},
      {coordinatePairPass<false, true, true, false>, coordinatePairPass<false, true, true, true>}}},
    {{{coordinatePairPass<true, false, false, false>, coordinatePairPass<true, false, false, true>},
      {coordinatePairPass<true, false, true, false>, coordinatePairPass<true, false, true, true>}},
     {{coordinatePairPass<true, true, false, false>, coordinatePairPass<true, true, false, true>},
      {coordinatePairPass<true, true, true, false>, coordinatePairPass<true, true, true, true>}}}};

// The coordinate loop of a HALS row, after the gather (halsRowAvx, cpHalsSweepAvx, halsSweepsAvx): Yc
// holds the k listed rows and e = κ(a − x·y). Blocked: Yc in blocks of four entries, each its r
// columns of four in turn (Yc[(q/4)·4r + 4c + q%4] = y_c of entry q: what cpHalsGatherAvx
// stores contiguously); else column by column (Yc[c·k + q]).
// cross (null, or ⌈r/2⌉ doubles): where the sums Σκy_c·y_{c+1} (c even) are stored, or read when
// `known`: then curvature and cross hold the values an earlier sweep over the same rows (and κ) left,
// and the passes skip the sums of squares (4 multiply-adds per four entries and pass instead of 7);
// the values they would take are those, bit for bit (the same sums in the same order).
// Coordinates c < t.free move (t: the row's other terms and curvature rule, HalsRowTerms).
// Two coordinates per pass over the row, keeping e current (e −= step·κ∘y_c): the pass applies the
// previous two coordinates' steps and takes, for c and c + 1, Σe·y, the curvatures
// d = b·G_cc + Σκy² and Σκy_c·y_{c+1}; c + 1's gradient is then corrected for c's step
// (Σ(e − s_c·κy_c)·y_{c+1} = Σe·y_{c+1} − s_c·Σκy_c·y_{c+1}): each coordinate's exact step, as one
// pass per coordinate would take it, with half the passes. The last steps are applied only when
// finish() asks for e after the row (another sweep follows). A struct, so that cpHalsSweepPairAvx
// can run two rows' loops pair by pair in turn.
struct CoordinateLoop {
  double* x;
  const double* kappa;
  double kappa0;
  std::size_t k, r;
  HalsRowTerms t;
  double* curvature;
  const double* Yc;
  double* e;
  double* cross;
  bool known;
  std::size_t column, chunk;
  bool uniform = true;
  const double *ya, *yb;  // the previous pass's coordinates (steps 0 before the first)
  double sa = 0, sb = 0;
  double sums[5];

  NSA_AVX_FMA CoordinateLoop(double* x_, const double* kappa_, double kappa0_, std::size_t k_, std::size_t r_,
                             const HalsRowTerms& t_, double* curvature_, const double* Yc_, double* e_, bool blocked,
                             double* cross_, bool known_)
      : x(x_), kappa(kappa_), kappa0(kappa0_), k(k_), r(r_), t(t_), curvature(curvature_), Yc(Yc_), e(e_),
        cross(cross_), known(known_), column(blocked ? 4 : k_), chunk(blocked ? 4 * r_ : 4), ya(Yc_), yb(Yc_) {
    if (kappa) {
      kappa0 = k ? kappa[0] : kappa0;
      for (std::size_t i = 1; i < k; ++i) uniform &= kappa[i] == kappa0;
    }
  }
  NSA_AVX_FMA __attribute__((always_inline)) void pass(bool pair, bool squares, const double* y0, const double* y1) {
    coordinatePasses[uniform][pair][squares][sa != 0.0 || sb != 0.0](e, kappa, kappa0, ya, sa, yb, sb, y0, y1, k, chunk,
                                                                     sums);
  }
  // Coordinate c's step, with the listed part of its gradient and its listed curvature.
  NSA_AVX_FMA __attribute__((always_inline)) double stepOf(std::size_t c, double listedGradient, double squares) {
    if (!known) curvature[c] = (t.base ? t.G[c * r + c] : 0.0) + squares;
    const double d = curvature[c] + t.l2;
    if (!curvatureUsable(d, t, c, r) && !uncurvedMoves(t)) return 0.0;
    // (xG)_c as a dot with row c of G: G is a Gram matrix, symmetric.
    const double g = t.base ? t.P[c] - dotAvx(x, t.G + c * r, r) : 0.0;
    return ruledStep(x, c, d, g, listedGradient, t, r);
  }
  // Coordinates c and c + 1 (c even; c alone when it is the last free one).
  NSA_AVX_FMA __attribute__((always_inline)) void coordinates(std::size_t c) {
    const double* y0 = Yc + c * column;
    const bool pair = c + 1 < t.free;
    const double* y1 = pair ? y0 + column : y0;
    pass(pair, !known, y0, y1);
    sa = stepOf(c, sums[0], sums[2]);
    ya = y0;
    sb = 0;
    if (pair) {
      if (cross) {
        if (known) sums[4] = cross[c / 2];
        else cross[c / 2] = sums[4];
      }
      sb = stepOf(c + 1, sums[1] - sa * sums[4], sums[3]);
      yb = y1;
    }
  }
  // Applies the last two steps to e (sums unused).
  NSA_AVX_FMA __attribute__((always_inline)) void finish() {
    if (sa != 0.0 || sb != 0.0) pass(false, false, ya, ya);
  }
};

// One row's coordinate loop (CoordinateLoop). Not inlined: profiles then tell it from the gathers.
NSA_AVX_FMA __attribute__((noinline)) void halsCoordinatesAvx(double* x, const double* kappa, double kappa0,
                                                              std::size_t k, std::size_t r, const HalsRowTerms& t,
                                                              double* curvature, const double* Yc, double* e,
                                                              bool blocked, bool finish = false,
                                                              double* cross = nullptr, bool known = false) {
  CoordinateLoop loop(x, kappa, kappa0, k, r, t, curvature, Yc, e, blocked, cross, known);
  for (std::size_t c = 0; c < t.free; c += 2) loop.coordinates(c);
  if (finish) loop.finish();
}

NSA_AVX_FMA void halsRowAvx(double* x, const double* Y, const int32_t* idx, const double* kappa, double kappa0,
                            const double* a,
                            std::size_t k, std::size_t r, bool base, const double* P, const double* G, double l1,
                            double l2, double* curvature, double* Yc, double* e) {
  const std::size_t full = r & ~std::size_t{3}, tail = r - full;
  const std::size_t kFull = k & ~std::size_t{3};
  const __m256i mask = laneMask(tail);
  // One pass over the listed rows, four entries × four columns at a time: the gather
  // Yc[c·k + q] = y_c of entry q and the residuals e = κ(a − x·y).
  std::size_t q = 0;
  for (; q < kFull; q += 4) {
    prefetchRows(Y, idx, q + 4, k, r);
    const double *y0 = rowOf(Y, idx, q, r), *y1 = rowOf(Y, idx, q + 1, r), *y2 = rowOf(Y, idx, q + 2, r),
                 *y3 = rowOf(Y, idx, q + 3, r);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    for (std::size_t c = 0; c < full; c += 4) {
      const __m256d r0 = _mm256_loadu_pd(y0 + c), r1 = _mm256_loadu_pd(y1 + c), r2 = _mm256_loadu_pd(y2 + c),
                    r3 = _mm256_loadu_pd(y3 + c), xv = _mm256_loadu_pd(x + c);
      storeTransposed(r0, r1, r2, r3, Yc + c * k + q, k, 4);
      a0 = _mm256_fmadd_pd(r0, xv, a0), a1 = _mm256_fmadd_pd(r1, xv, a1);
      a2 = _mm256_fmadd_pd(r2, xv, a2), a3 = _mm256_fmadd_pd(r3, xv, a3);
    }
    if (tail) {
      const __m256d r0 = _mm256_maskload_pd(y0 + full, mask), r1 = _mm256_maskload_pd(y1 + full, mask),
                    r2 = _mm256_maskload_pd(y2 + full, mask), r3 = _mm256_maskload_pd(y3 + full, mask),
                    xv = _mm256_maskload_pd(x + full, mask);
      storeTransposed(r0, r1, r2, r3, Yc + full * k + q, k, tail);
      a0 = _mm256_fmadd_pd(r0, xv, a0), a1 = _mm256_fmadd_pd(r1, xv, a1);
      a2 = _mm256_fmadd_pd(r2, xv, a2), a3 = _mm256_fmadd_pd(r3, xv, a3);
    }
    const __m256d model = horizontalSums4(a0, a1, a2, a3);
    _mm256_storeu_pd(e + q, _mm256_mul_pd(kappa ? _mm256_loadu_pd(kappa + q) : _mm256_set1_pd(kappa0),
                                          _mm256_sub_pd(a ? _mm256_loadu_pd(a + q) : _mm256_setzero_pd(), model)));
  }
  for (; q < k; ++q) {
    const double* y = rowOf(Y, idx, q, r);
    for (std::size_t c = 0; c < r; ++c) Yc[c * k + q] = y[c];
    e[q] = (kappa ? kappa[q] : kappa0) * ((a ? a[q] : 0.0) - dotAvx(x, y, r));
  }
  halsCoordinatesAvx(x, kappa, kappa0, k, r, rowTerms(base, P, G, l1, l2, r), curvature, Yc, e, false);
}

// cpHalsGather's vector version for `Order` factors (0: any number, `order`): Yc[(q/4)·4r + 4c + q%4] = z_c of
// entry q (halsCoordinatesAvx's blocked layout: each block of four entries contiguous),
// z = ⊙_j rows[j][idx_j], formed four entries × four columns at a time and stored transposed, and the
// residuals e = κ(a − x·z) from the same registers: the Khatri–Rao rows are never stored row by row.
template <std::size_t Order>
NSA_AVX_FMA inline void cpHalsGatherAvx(const double* const* rows, std::size_t order, const int32_t* idx,
                                        std::size_t stride, const double* x, const double* kappa, double kappa0,
                                        const double* a, std::size_t k, std::size_t r, double* Yc, double* e) {
  constexpr std::size_t kMaxOrder = 32;
  const std::size_t n = Order ? Order : order;
  const std::size_t full = r & ~std::size_t{3}, tail = r - full;
  const std::size_t kFull = k & ~std::size_t{3};
  const __m256i mask = laneMask(tail);
  const auto product = [&](const double* const* y, std::size_t c, bool partial) NSA_AVX_FMA __attribute__((always_inline)) {
    __m256d p = partial ? _mm256_maskload_pd(y[0] + c, mask) : _mm256_loadu_pd(y[0] + c);
#pragma GCC unroll 4
    for (std::size_t j = 1; j < (Order ? Order : n); ++j)
      p = _mm256_mul_pd(p, partial ? _mm256_maskload_pd(y[j] + c, mask) : _mm256_loadu_pd(y[j] + c));
    return p;
  };
  std::size_t q = 0;
  for (; q < kFull; q += 4) {
    const double* y[4][Order ? Order : kMaxOrder];
#pragma GCC unroll 4
    for (std::size_t l = 0; l < 4; ++l) {
      const int32_t* at = idx + (q + l) * stride;
#pragma GCC unroll 4
      for (std::size_t j = 0; j < (Order ? Order : n); ++j) y[l][j] = rows[j] + static_cast<std::size_t>(at[j]) * r;
    }
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    for (std::size_t c = 0; c < full; c += 4) {
      const __m256d r0 = product(y[0], c, false), r1 = product(y[1], c, false), r2 = product(y[2], c, false),
                    r3 = product(y[3], c, false), xv = _mm256_loadu_pd(x + c);
      storeTransposed(r0, r1, r2, r3, Yc + q * r + 4 * c, 4, 4);
      a0 = _mm256_fmadd_pd(r0, xv, a0), a1 = _mm256_fmadd_pd(r1, xv, a1);
      a2 = _mm256_fmadd_pd(r2, xv, a2), a3 = _mm256_fmadd_pd(r3, xv, a3);
    }
    if (tail) {
      const __m256d r0 = product(y[0], full, true), r1 = product(y[1], full, true), r2 = product(y[2], full, true),
                    r3 = product(y[3], full, true), xv = _mm256_maskload_pd(x + full, mask);
      storeTransposed(r0, r1, r2, r3, Yc + q * r + 4 * full, 4, tail);
      a0 = _mm256_fmadd_pd(r0, xv, a0), a1 = _mm256_fmadd_pd(r1, xv, a1);
      a2 = _mm256_fmadd_pd(r2, xv, a2), a3 = _mm256_fmadd_pd(r3, xv, a3);
    }
    const __m256d model = horizontalSums4(a0, a1, a2, a3);
    _mm256_storeu_pd(e + q, _mm256_mul_pd(kappa ? _mm256_loadu_pd(kappa + q) : _mm256_set1_pd(kappa0),
                                          _mm256_sub_pd(a ? _mm256_loadu_pd(a + q) : _mm256_setzero_pd(), model)));
  }
  for (; q < k; ++q) {
    const int32_t* at = idx + q * stride;
    double model = 0;
    for (std::size_t c = 0; c < r; ++c) {
      double z = 1.0;
      for (std::size_t j = 0; j < n; ++j) z *= rows[j][static_cast<std::size_t>(at[j]) * r + c];
      Yc[(q & ~std::size_t{3}) * r + 4 * c + (q & 3)] = z;
      model += x[c] * z;
    }
    e[q] = (kappa ? kappa[q] : kappa0) * ((a ? a[q] : 0.0) - model);
  }
}

NSA_AVX_FMA void cpHalsGatherAvxAny(const double* const* rows, std::size_t order, const int32_t* idx,
                                    std::size_t stride, const double* x, const double* kappa, double kappa0,
                                    const double* a, std::size_t k, std::size_t r, const double* G, double* curvature,
                                    double* Yc, double* e) {
  // halsCoordinatesAvx takes each curvature in its passes; G's diagonal stands until then.
  for (std::size_t c = 0; c < r; ++c) curvature[c] = G[c * r + c];
  if (order == 0) {  // a 1-way term: every z is 1, in the blocked layout
    double model = 0;
    for (std::size_t c = 0; c < r; ++c) model += x[c];
    for (std::size_t q = 0; q < k; ++q) {
      for (std::size_t c = 0; c < r; ++c) Yc[(q & ~std::size_t{3}) * r + 4 * c + (q & 3)] = 1.0;
      e[q] = (kappa ? kappa[q] : kappa0) * ((a ? a[q] : 0.0) - model);
    }
  } else if (order == 1) {
    cpHalsGatherAvx<1>(rows, order, idx, stride, x, kappa, kappa0, a, k, r, Yc, e);
  } else if (order == 2) {
    cpHalsGatherAvx<2>(rows, order, idx, stride, x, kappa, kappa0, a, k, r, Yc, e);
  } else if (order == 3) {
    cpHalsGatherAvx<3>(rows, order, idx, stride, x, kappa, kappa0, a, k, r, Yc, e);
  } else {
    cpHalsGatherAvx<0>(rows, order, idx, stride, x, kappa, kappa0, a, k, r, Yc, e);
  }
}

NSA_AVX_FMA void cpHalsSweepAvx(double* x, const double* kappa, double kappa0, std::size_t k, std::size_t r,
                                const double* P, const double* G, double* curvature, double* cross, const double* Yc,
                                double* e, bool again, bool first) {
  halsCoordinatesAvx(x, kappa, kappa0, k, r, rowTerms(true, P, G, 0.0, 0.0, r), curvature, Yc, e, true, again, cross,
                     !first);
}

// cpHalsSweepAvx on two rows, their coordinate loops in turn pair by pair (each row's operations
// those of its own call, in the same order).
NSA_AVX_FMA __attribute__((noinline)) void cpHalsSweepPairAvx(const SweepRow& a, const SweepRow& b, double kappa0,
                                                              std::size_t r, const double* G, bool again, bool first) {
  CoordinateLoop la(a.x, a.kappa, kappa0, a.k, r, rowTerms(true, a.P, G, 0.0, 0.0, r), a.curvature, a.Yc, a.e, true,
                    a.cross, !first);
  CoordinateLoop lb(b.x, b.kappa, kappa0, b.k, r, rowTerms(true, b.P, G, 0.0, 0.0, r), b.curvature, b.Yc, b.e, true,
                    b.cross, !first);
  for (std::size_t c = 0; c < r; c += 2) {
    la.coordinates(c);
    lb.coordinates(c);
  }
  if (again) la.finish(), lb.finish();
}

// cpHalsGatherAvx<1> and cpHalsSweepAvx's sweeps with t's terms, repeated as halsSweepsPortable does.
NSA_AVX_FMA int halsSweepsAvx(double* x, const double* Y, const int32_t* idx, const double* kappa, double kappa0,
                              const double* a, std::size_t k, std::size_t r, const HalsRowTerms& t, int maxSweeps,
                              double* curvature, double* cross, double* xold, double* Yc, double* e) {
  const double* rows[1] = {Y};
  cpHalsGatherAvx<1>(rows, 1, idx, 1, x, kappa, kappa0, a, k, r, Yc, e);
  return repeatSweeps(x, xold, curvature, t.free, t.l2, kGillisGlineurStop, maxSweeps, [&](int sweep, bool last) {
    halsCoordinatesAvx(x, kappa, kappa0, k, r, t, curvature, Yc, e, true, !last, cross, sweep > 0);
  });
}

// cpValuesAvx for `Order` factors and rows of C chunks of four (the last one partial when R is not a
// multiple of 4), both known at compile time: the loops unrolled, the same operations in the same
// order.
template <std::size_t Order, std::size_t C>
NSA_AVX_FMA inline void cpValuesAvxOf(const double* const* rows, std::size_t R, const int32_t* idx, std::size_t stride,
                                      std::size_t k, double* out) {
  const bool partial = R % 4 != 0;
  const __m256i mask = laneMask(R - 4 * (C - 1));
  for (std::size_t q = 0; q < k; ++q) {
    const int32_t* at = idx + q * stride;
    const double* x[Order];
#pragma GCC unroll 4
    for (std::size_t j = 0; j < Order; ++j) x[j] = rows[j] + static_cast<std::size_t>(at[j]) * R;
    __m256d s = _mm256_setzero_pd();
#pragma GCC unroll 8
    for (std::size_t c = 0; c < C; ++c) {
      const bool last = c + 1 == C && partial;
      __m256d p = last ? _mm256_maskload_pd(x[0] + 4 * c, mask) : _mm256_loadu_pd(x[0] + 4 * c);
#pragma GCC unroll 4
      for (std::size_t j = 1; j < Order; ++j)
        p = _mm256_mul_pd(p, last ? _mm256_maskload_pd(x[j] + 4 * c, mask) : _mm256_loadu_pd(x[j] + 4 * c));
      s = _mm256_add_pd(s, p);
    }
    out[q] = horizontalSum(s);
  }
}

// Calls cpValuesAvxOf for C = ⌈R/4⌉ when that is at most 8 (R ≤ 32); false otherwise.
template <std::size_t Order, std::size_t C = 1>
NSA_AVX_FMA inline bool cpValuesAvxDispatch(const double* const* rows, std::size_t R, const int32_t* idx,
                                            std::size_t stride, std::size_t k, double* out) {
  if constexpr (C > 8) {
    return false;
  } else {
    if ((R + 3) / 4 == C) {
      cpValuesAvxOf<Order, C>(rows, R, idx, stride, k, out);
      return true;
    }
    return cpValuesAvxDispatch<Order, C + 1>(rows, R, idx, stride, k, out);
  }
}

NSA_AVX_FMA void cpValuesAvx(const double* const* rows, std::size_t order, std::size_t R, const int32_t* idx,
                             std::size_t stride, std::size_t k, double* out) {
  if (order == 2 && cpValuesAvxDispatch<2>(rows, R, idx, stride, k, out)) return;
  if (order == 3 && cpValuesAvxDispatch<3>(rows, R, idx, stride, k, out)) return;
  if (order == 4 && cpValuesAvxDispatch<4>(rows, R, idx, stride, k, out)) return;
  const std::size_t full = R & ~std::size_t{3}, tail = R - full;
  const __m256i mask = laneMask(tail);
  const double* x[64];  // the rows of an entry (orders up to 64)
  for (std::size_t q = 0; q < k; ++q) {
    const int32_t* at = idx + q * stride;
    for (std::size_t j = 0; j < order; ++j) x[j] = rows[j] + static_cast<std::size_t>(at[j]) * R;
    __m256d s = _mm256_setzero_pd();
    for (std::size_t c = 0; c < full; c += 4) {
      __m256d p = _mm256_loadu_pd(x[0] + c);
      for (std::size_t j = 1; j < order; ++j) p = _mm256_mul_pd(p, _mm256_loadu_pd(x[j] + c));
      s = _mm256_add_pd(s, p);
    }
    if (tail) {
      __m256d p = _mm256_maskload_pd(x[0] + full, mask);
      for (std::size_t j = 1; j < order; ++j) p = _mm256_mul_pd(p, _mm256_maskload_pd(x[j] + full, mask));
      s = _mm256_add_pd(s, p);
    }
    out[q] = horizontalSum(s);
  }
}

// cpGroupSumsAvx for `Others` other factors known at compile time (1, 2: the loops over them
// unrolled), or any (0), and rows of any length: z through the workspace, the row's sums in den and
// num; the same operations in the same order either way.
template <std::size_t Others>
NSA_AVX_FMA inline void cpGroupSumsAvxOf(const double* const* rows, std::size_t order, std::size_t R,
                                         const int32_t* others, const std::size_t* start, std::size_t begin,
                                         std::size_t end, std::size_t skip, const double* kappa, double kappa0,
                                         const double* a, double* num, double* den, double* z) {
  const std::size_t full = R & ~std::size_t{3}, tail = R - full;
  const __m256i mask = laneMask(tail);
  const __m256d one = _mm256_set1_pd(1.0);
  const double* other[64];  // the other factors, in mode order (orders up to 65)
  const double* x[64];      // an entry's rows of them
  const std::size_t n = order - 1;
  for (std::size_t j = 0, count = 0; j < order; ++j)
    if (j != skip) other[count++] = rows[j];
  const std::size_t count = Others ? Others : n;
  for (std::size_t i = begin; i < end; ++i) {
    const double* own = rows[skip] + i * R;
    double* dj = den + i * R;
    double* nj = a ? num + i * R : nullptr;
    std::fill(dj, dj + R, 0.0);
    if (nj) std::fill(nj, nj + R, 0.0);
    for (std::size_t q = start[i]; q < start[i + 1]; ++q) {
      const int32_t* at = others + q * n;
      for (std::size_t j = 0; j < count; ++j) x[j] = other[j] + static_cast<std::size_t>(at[j]) * R;
      // z (kept in the workspace) and the model's partial sums.
      __m256d s = _mm256_setzero_pd();
      for (std::size_t c = 0; c < full; c += 4) {
        __m256d p = one;
        for (std::size_t j = 0; j < count; ++j) p = _mm256_mul_pd(p, _mm256_loadu_pd(x[j] + c));
        _mm256_storeu_pd(z + c, p);
        s = _mm256_fmadd_pd(p, _mm256_loadu_pd(own + c), s);
      }
      if (tail) {
        __m256d p = one;
        for (std::size_t j = 0; j < count; ++j) p = _mm256_mul_pd(p, _mm256_maskload_pd(x[j] + full, mask));
        _mm256_maskstore_pd(z + full, mask, p);
        s = _mm256_fmadd_pd(p, _mm256_maskload_pd(own + full, mask), s);
      }
      const double kq = kappa ? kappa[q] : kappa0;
      const __m256d km = _mm256_set1_pd(kq * horizontalSum(s));
      for (std::size_t c = 0; c < full; c += 4)
        _mm256_storeu_pd(dj + c, _mm256_fmadd_pd(km, _mm256_loadu_pd(z + c), _mm256_loadu_pd(dj + c)));
      if (tail)
        _mm256_maskstore_pd(dj + full, mask,
                            _mm256_fmadd_pd(km, _mm256_maskload_pd(z + full, mask), _mm256_maskload_pd(dj + full, mask)));
      if (a && a[q] != 0.0) {
        const __m256d ka = _mm256_set1_pd(kq * a[q]);
        for (std::size_t c = 0; c < full; c += 4)
          _mm256_storeu_pd(nj + c, _mm256_fmadd_pd(ka, _mm256_loadu_pd(z + c), _mm256_loadu_pd(nj + c)));
        if (tail)
          _mm256_maskstore_pd(nj + full, mask,
                              _mm256_fmadd_pd(ka, _mm256_maskload_pd(z + full, mask), _mm256_maskload_pd(nj + full, mask)));
      }
    }
  }
}

// cpGroupSumsAvxOf for rows of C chunks of four (the last one partial when R is not a multiple of 4),
// C known at compile time: an entry's z stays in C registers between its model and its additions,
// the group's row of den (and of num) is summed in C registers and stored once, and the group's own
// row is read from L1 for every entry. The same operations in the same order as cpGroupSumsAvxOf.
template <std::size_t Others, std::size_t C, bool Data>
NSA_AVX_FMA inline void cpGroupSumsAvxInRegisters(const double* const* rows, std::size_t order, std::size_t R,
                                                  const int32_t* others, const std::size_t* start,
                                                  std::size_t begin, std::size_t end, std::size_t skip,
                                                  const double* kappa, double kappa0, const double* a, double* num,
                                                  double* den) {
  const bool partial = R % 4 != 0;
  const __m256i mask = laneMask(R - 4 * (C - 1));
  const __m256d one = _mm256_set1_pd(1.0);
  const double* other[Others];
  for (std::size_t j = 0, count = 0; j < order; ++j)
    if (j != skip) other[count++] = rows[j];
  const auto load = [&](const double* p, std::size_t c) NSA_AVX_FMA __attribute__((always_inline)) {
    return c + 1 == C && partial ? _mm256_maskload_pd(p + 4 * c, mask) : _mm256_loadu_pd(p + 4 * c);
  };
  const auto store = [&](double* p, std::size_t c, __m256d v) NSA_AVX_FMA __attribute__((always_inline)) {
    if (c + 1 == C && partial) _mm256_maskstore_pd(p + 4 * c, mask, v);
    else _mm256_storeu_pd(p + 4 * c, v);
  };
  for (std::size_t i = begin; i < end; ++i) {
    const double* own = rows[skip] + i * R;
    // One entry's z (into zv) and its model's partial sums.
    const auto entry = [&](std::size_t q, __m256d* zv) NSA_AVX_FMA __attribute__((always_inline)) {
      const int32_t* at = others + q * Others;
      const double* x[Others];
#pragma GCC unroll 4
      for (std::size_t j = 0; j < Others; ++j) x[j] = other[j] + static_cast<std::size_t>(at[j]) * R;
      __m256d s = _mm256_setzero_pd();
#pragma GCC unroll 8
      for (std::size_t c = 0; c < C; ++c) {
        __m256d p = one;
#pragma GCC unroll 4
        for (std::size_t j = 0; j < Others; ++j) p = _mm256_mul_pd(p, load(x[j], c));
        zv[c] = p;
        s = _mm256_fmadd_pd(p, load(own, c), s);
      }
      return s;
    };
    __m256d dv[C], nv[C];
#pragma GCC unroll 8
    for (std::size_t c = 0; c < C; ++c) dv[c] = nv[c] = _mm256_setzero_pd();
    // Entry q's additions, with its model's partial sums s.
    const auto add = [&](std::size_t q, const __m256d* zv, __m256d s) NSA_AVX_FMA __attribute__((always_inline)) {
      const double kq = kappa ? kappa[q] : kappa0;
      const __m256d km = _mm256_set1_pd(kq * horizontalSum(s));
#pragma GCC unroll 8
      for (std::size_t c = 0; c < C; ++c) dv[c] = _mm256_fmadd_pd(km, zv[c], dv[c]);
      if (Data && a[q] != 0.0) {
        const __m256d ka = _mm256_set1_pd(kq * a[q]);
#pragma GCC unroll 8
        for (std::size_t c = 0; c < C; ++c) nv[c] = _mm256_fmadd_pd(ka, zv[c], nv[c]);
      }
    };
    // One entry at a time: its z, the row's sums and their temporaries fit in the 16 registers (two
    // entries' z did not, and the row's sums then went through the stack); the entries' products and
    // model sums are independent of one another, so the next one's overlap this one's additions.
    for (std::size_t q = start[i]; q < start[i + 1]; ++q) {
      __m256d zv[C];
      add(q, zv, entry(q, zv));
    }
#pragma GCC unroll 8
    for (std::size_t c = 0; c < C; ++c) store(den + i * R, c, dv[c]);
    if (Data)
#pragma GCC unroll 8
      for (std::size_t c = 0; c < C; ++c) store(num + i * R, c, nv[c]);
  }
}

// Calls cpGroupSumsAvxInRegisters for C = ⌈R/4⌉ when that is at most 8 (R ≤ 32); false otherwise.
template <std::size_t Others, std::size_t C = 1>
NSA_AVX_FMA inline bool cpGroupSumsAvxDispatch(const double* const* rows, std::size_t order, std::size_t R,
                                               const int32_t* others, const std::size_t* start, std::size_t begin,
                                               std::size_t end, std::size_t skip, const double* kappa, double kappa0,
                                               const double* a, double* num, double* den) {
  if constexpr (C > 8) {
    return false;
  } else {
    if ((R + 3) / 4 == C) {
      // Data: a numerator to sum (kept out of the registers when there is none, as for a mask).
      if (a)
        cpGroupSumsAvxInRegisters<Others, C, true>(rows, order, R, others, start, begin, end, skip, kappa, kappa0, a, num,
                                                   den);
      else
        cpGroupSumsAvxInRegisters<Others, C, false>(rows, order, R, others, start, begin, end, skip, kappa, kappa0, a, num,
                                                    den);
      return true;
    }
    return cpGroupSumsAvxDispatch<Others, C + 1>(rows, order, R, others, start, begin, end, skip, kappa, kappa0, a,
                                                 num, den);
  }
}

NSA_AVX_FMA void cpGroupSumsAvx(const double* const* rows, std::size_t order, std::size_t R, const int32_t* others,
                                const std::size_t* start, std::size_t begin, std::size_t end, std::size_t skip,
                                const double* kappa, double kappa0, const double* a, double* num, double* den,
                                double* z) {
  if (order == 2 && cpGroupSumsAvxDispatch<1>(rows, order, R, others, start, begin, end, skip, kappa, kappa0, a, num, den))
    return;
  if (order == 3 && cpGroupSumsAvxDispatch<2>(rows, order, R, others, start, begin, end, skip, kappa, kappa0, a, num, den))
    return;
  if (order == 4 && cpGroupSumsAvxDispatch<3>(rows, order, R, others, start, begin, end, skip, kappa, kappa0, a, num, den))
    return;
  if (order == 2)
    cpGroupSumsAvxOf<1>(rows, order, R, others, start, begin, end, skip, kappa, kappa0, a, num, den, z);
  else if (order == 3)
    cpGroupSumsAvxOf<2>(rows, order, R, others, start, begin, end, skip, kappa, kappa0, a, num, den, z);
  else
    cpGroupSumsAvxOf<0>(rows, order, R, others, start, begin, end, skip, kappa, kappa0, a, num, den, z);
}

const Kernels avxKernels{dotsAvx,        gatherAxpyAvx, scatterAxpyAvx, dotsAxpyAvx, halsRowAvx,
                         cpHalsGatherAvxAny, cpHalsSweepAvx, halsSweepsAvx, cpHalsSweepPairAvx,
                         cpValuesAvx,    cpGroupSumsAvx, true};

bool cpuHasAvxFma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx") && __builtin_cpu_supports("fma");
}
#endif

}  // namespace

const Kernels& kernels() {
#ifdef NSA_LISTED_AVX
  static const bool cpu = cpuHasAvxFma();
  const char* simd = std::getenv("NSA_FLOW_SIMD");
  if (cpu && !(simd && std::strcmp(simd, "0") == 0)) return avxKernels;
#endif
  return portableKernels;
}

}  // namespace nsa::listed
