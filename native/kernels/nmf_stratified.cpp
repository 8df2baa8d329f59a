// Stratified-NMF (Chapman, Yaniv, Needell 2023) by the reference's multiplicative updates, with the
// loss expanded through the products each iteration computes anyway:
//   ‖A − 1vᵀ − WH‖² = ‖A‖² − 2[(1ᵀA)·v + ⟨AHᵀ, W⟩] + n‖v‖² + 2(Wᵀ1)·(Hv) + ⟨WᵀW, HHᵀ⟩,
// where 1ᵀA and ‖A‖² are computed once and AHᵀ, WᵀW, HHᵀ, Wᵀ1 are the update's own products.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "error.hpp"
#include "linalg.hpp"
#include "listed_kernels.hpp"
#include "nmf.hpp"
#include "nmf_detail.hpp"
#include "thread_team.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NSA_SNMF_AVX 1
#include <immintrin.h>
#endif

namespace nsa {

using namespace nmf_detail;

namespace {

enum Slot : std::size_t {
  kResidual = 0,  // directResidualSquared's block
  kHHt = 1,
  kHt,       // Hᵀ (m×r), for CSR products
  kAHt,      // A(s)Hᵀ (nₛ×r)
  kWHHt,     // W(s)HHᵀ (nₛ×r)
  kGramSum,  // Σₛ W(s)ᵀW(s)
  kNum,      // Σₛ W(s)ᵀA(s) (r×m)
  kNumT,     // its CSR part, transposed (m×r)
  kDen,      // Σₛ (W(s)ᵀ1)v(s)ᵀ + ΣWᵀW·H (r×m)
  kG,        // Hᵀ(W(s)ᵀ1) (m)
  kWsum,     // W(s)ᵀ1 (r)
  kHv,       // H v (r)
  kDenT,     // the listed entries' part of H's denominator, transposed (m×r)
  kWt,       // W(s)ᵀ of a run (r×nₛ), for ΣW(s)ᵀA(s) as a plain product
  kVDen,     // v(s)'s update denominator (m)
  kColumns,  // per column: observed weight, listed model and data sums (3m)
};

struct Problem {
  const std::vector<DataMatrix>& A;
  std::size_t S, m, r;
  std::vector<std::vector<double>> colSums;
  std::vector<double> normA2;
  double totalNorm2 = 0;  // Σωa² over all strata
  bool anySparse = false;
  // Entry weights per stratum (null: unweighted); `weighted(s)` only when active.
  const std::vector<EntryWeights>* weights;
  bool anyWeighted = false;
  std::size_t maxListed = 0;
  // The penalties of the blocks (StratifiedNmfOptions; inactive for the loss alone).
  Penalty penaltyV, penaltyW, penaltyH;
  // rₛ per stratum (empty: all r); W(s)'s columns ≥ rₛ are fixed at 0 (StratifiedNmfOptions).
  std::vector<std::size_t> stratumRanks;

  // The strata's column sums and squared norms (a pass over all the data) on the team, whole strata
  // per thread: each stratum's values are the same in any split.
  Problem(RowTeam& team, const std::vector<DataMatrix>& data, std::size_t rank, const std::vector<EntryWeights>* w = nullptr)
      : A(data), S(data.size()), m(data.front().cols), r(rank), colSums(S), normA2(S), weights(w) {
    double entries = 0;
    for (const DataMatrix& a : A) entries += a.sparse() ? static_cast<double>(a.indptr[a.rows]) : static_cast<double>(a.rows * a.cols);
    auto sums = [&](int, std::size_t b, std::size_t e) {
      for (std::size_t s = b; s < e; ++s) {
        colSums[s].resize(m);
        dataColumnSums(A[s], colSums[s].data());
        normA2[s] = dataSquaredNorm(A[s]);
      }
    };
    runRowsIfWorth(team, S, 1, entries, sums);
    for (std::size_t s = 0; s < S; ++s) {
      anySparse = anySparse || A[s].sparse();
      const EntryWeights* e = weighted(s);
      if (!e) {
        totalNorm2 += normA2[s];
        continue;
      }
      anyWeighted = true;
      maxListed = std::max(maxListed, e->size());
      double norm2 = e->base ? normA2[s] : 0.0;
      for (std::size_t p = 0; p < e->size(); ++p) norm2 += e->rowKappa[p] * e->rowData[p] * e->rowData[p];
      totalNorm2 += std::max(norm2, 0.0);
    }
  }
  const EntryWeights* weighted(std::size_t s) const {
    return weights && s < weights->size() && (*weights)[s].active() ? &(*weights)[s] : nullptr;
  }
  std::size_t rankOf(std::size_t s) const { return stratumRanks.empty() ? r : stratumRanks[s]; }
  // The weight every entry of stratum s has besides its listed κ: 1, or 0 (only listed entries observed).
  double base(std::size_t s) const {
    const EntryWeights* e = weighted(s);
    return e && !e->base ? 0.0 : 1.0;
  }
};

// Per-stratum ranks: one per stratum, each in [0, r] (checked by the binding too).
void checkStratumRanks(const std::vector<std::size_t>& ranks, std::size_t S, std::size_t r) {
  if (ranks.empty()) return;
  if (ranks.size() != S)
    throwRange("Expected " + std::to_string(S) + " per-stratum ranks (one per stratum) but received " + std::to_string(ranks.size()));
  for (std::size_t s = 0; s < S; ++s)
    if (ranks[s] > r)
      throwRange("Expected a rank in [0, " + std::to_string(r) + "] for stratum " + std::to_string(s) + " but received " + std::to_string(ranks[s]));
}

// Sets the entries of an nₛ×r block in columns ≥ rₛ to 0: W(s)'s fixed coordinates (init, start of a
// run) or their gradient entries (the certificate: they are not variables, so a gradient there is
// no departure from stationarity; with Y = 0 and G = 0 they add nothing to gradientMapping).
void zeroFixedColumns(double* X, std::size_t n, std::size_t r, std::size_t rs) {
  if (rs >= r) return;
  for (std::size_t i = 0; i < n; ++i) std::fill(X + i * r + rs, X + (i + 1) * r, 0.0);
}

void zeroFixedColumns(const std::vector<DataMatrix>& A, std::size_t r, const std::vector<std::size_t>& ranks,
                      const std::vector<double*>& W) {
  for (std::size_t s = 0; s < ranks.size(); ++s) zeroFixedColumns(W[s], A[s].rows, r, ranks[s]);
}

// ---- the listed entries of a weighted stratum (nmf.hpp's EntryWeights) -------------------------------
// The model of an entry is m = v_j + w_i·h_j; wh holds w_i·h_j per listed entry (row order). The data
// products of a stratum whose base weight is 0 (CSR, absent entries missing) already are the observed
// ones (the listed entries are its stored entries, weight 1), so the listed data terms use
// κ' = κ·base; the model terms use κ.

void listedModel(const EntryWeights& e, std::size_t n, std::size_t r, const double* W, const double* Ht, double* wh) {
  const listed::Kernels& K = listed::kernels();
  for (std::size_t i = 0; i < n; ++i)
    K.dots(W + i * r, Ht, e.rowCol.data() + e.rowPtr[i], e.rowPtr[i + 1] - e.rowPtr[i], r, wh + e.rowPtr[i]);
}

// Σᵢ(ωᵢⱼ·mᵢⱼ) = v_j·weight_j + b·(Hᵀ(Wᵀ1))_j + model_j and Σᵢωᵢⱼaᵢⱼ = colSum_j + data_j, where
// weight_j = b·n + Σκ, model_j = Σκ·wh, data_j = Σκ'·a over the listed entries of column j.
void listedColumns(const EntryWeights& e, std::size_t n, std::size_t m, const double* wh, double* weight,
                   double* model, double* data) {
  const double b = e.base ? 1.0 : 0.0;
  std::fill(weight, weight + m, b * static_cast<double>(n));
  std::fill(model, model + m, 0.0);
  std::fill(data, data + m, 0.0);
  if (e.uniformKappa && !e.dataTerms) {
    // (A mask: κ = −1 and a = 0 everywhere. Σκ over a column is κ times its count: exactly so for a
    // mask's κ = −1, to rounding for another uniform κ.)
    const double kappa = e.rowKappa[0];
    for (std::size_t j = 0; j < m; ++j) weight[j] += kappa * static_cast<double>(e.colPtr[j + 1] - e.colPtr[j]);
    for (std::size_t p = 0; p < e.size(); ++p) model[e.rowCol[p]] += kappa * wh[p];
    return;
  }
  for (std::size_t p = 0; p < e.size(); ++p) {
    const std::size_t j = static_cast<std::size_t>(e.rowCol[p]);
    weight[j] += e.rowKappa[p];
    model[j] += e.rowKappa[p] * wh[p];
    data[j] += b * e.rowKappa[p] * e.rowData[p];
  }
}

// The listed parts of the W(s) and H products: numW(i) += κ'a·h_j, denW(i) += κm·h_j,
// numHt(j) += κ'a·w_i, denHt(j) += κm·w_i (numW/denW may be null).
void listedProducts(const EntryWeights& e, std::size_t n, std::size_t r, const double* v, const double* W,
                    const double* Ht, const double* wh, double* numW, double* denW, double* numHt, double* denHt) {
  const double b = e.base ? 1.0 : 0.0;
  const listed::Kernels& K = listed::kernels();
  // (A mask's entries hold 0 in the data: their data terms vanish, and so do their passes.)
  const bool dataTerms = b != 0.0 && e.dataTerms;
  std::vector<double> ka, km;
  for (std::size_t i = 0; i < n; ++i) {
    const double* w = W + i * r;
    const std::size_t p0 = e.rowPtr[i], k = e.rowPtr[i + 1] - p0;
    const int32_t* cols = e.rowCol.data() + p0;
    if (km.size() < k) ka.resize(k), km.resize(k);
    if (e.uniformKappa)
      for (std::size_t q = 0; q < k; ++q) km[q] = e.rowKappa[0] * (v[cols[q]] + wh[p0 + q]);
    else
      for (std::size_t q = 0; q < k; ++q) km[q] = e.rowKappa[p0 + q] * (v[cols[q]] + wh[p0 + q]);
    if (dataTerms)
      for (std::size_t q = 0; q < k; ++q) ka[q] = b * e.rowKappa[p0 + q] * e.rowData[p0 + q];
    if (numW) {
      if (dataTerms) K.gatherAxpy(ka.data(), Ht, cols, k, r, numW + i * r);
      K.gatherAxpy(km.data(), Ht, cols, k, r, denW + i * r);
    }
    if (dataTerms) K.scatterAxpy(ka.data(), w, cols, k, r, numHt);
    K.scatterAxpy(km.data(), w, cols, k, r, denHt);
  }
}

// Σκ(a − v_j − wh)² over the listed entries: what they add to the base loss b·‖A − 1vᵀ − WH‖².
double listedLossSquared(const EntryWeights& e, const double* v, const double* wh) {
  double sum = 0;
  for (std::size_t p = 0; p < e.size(); ++p) {
    const double d = e.rowData[p] - v[e.rowCol[p]] - wh[p];
    sum += e.rowKappa[p] * d * d;
  }
  return sum;
}

// ‖A(s) − 1vᵀ − W(s)H‖² expanded through the products of (v, W(s), H) — ⟨WᵀW, HHᵀ⟩ is taken as
// ⟨W·HHᵀ, W⟩, which the W update computes anyway. Returns false (the caller then computes the
// residual directly) where the expansion would cancel too many digits.
bool expandedLossSquared(const Problem& P, std::size_t s, const double* v, const double* W, const double* H,
                         const double* AHt, const double* WHHt, const double* wsum, Workspace& ws,
                         double* out) {
  const std::size_t n = P.A[s].rows, m = P.m, r = P.r;
  double* Hv = ws.get(kHv, r);
  cblas_dgemv(CblasRowMajor, CblasNoTrans, asInt(r), asInt(m), 1.0, H, asInt(m), v, 1, 0.0, Hv, 1);
  const double cross = dot(P.colSums[s].data(), v, m) + dot(AHt, W, n * r);
  const double model =
      static_cast<double>(n) * dot(v, v, m) + 2.0 * dot(wsum, Hv, r) + dot(WHHt, W, n * r);
  *out = P.normA2[s] - 2.0 * cross + model;
  return *out >= kCancellationRatio * (P.normA2[s] + model);
}

double stratumLossSquared(const Problem& P, std::size_t s, const double* v, const double* W,
                          const double* H, const double* AHt, const double* WHHt, const double* wsum,
                          Workspace& ws) {
  double expanded;
  if (expandedLossSquared(P, s, v, W, H, AHt, WHHt, wsum, ws, &expanded)) return expanded;
  return directResidualSquared(P.A[s], v, W, H, P.r, ws);
}

// Consecutive strata whose data (dense) and W rows are contiguous share one GEMM per product: small
// strata then cost one BLAS call, not one per stratum. A CSR stratum is a run of its own.
struct Run {
  std::size_t first, last;  // strata [first, last)
  std::size_t rows;
};

std::vector<Run> contiguousRuns(const std::vector<DataMatrix>& A, const std::vector<double*>& W, std::size_t r) {
  std::vector<Run> runs;
  for (std::size_t s = 0; s < A.size(); ++s) {
    if (!runs.empty()) {
      Run& last = runs.back();
      const DataMatrix& prev = A[s - 1];
      const bool joins = !A[s].sparse() && !prev.sparse() && A[s].dense == prev.dense + prev.rows * prev.cols &&
                         W[s] == W[s - 1] + prev.rows * r;
      if (joins) {
        last.last = s + 1;
        last.rows += A[s].rows;
        continue;
      }
    }
    runs.push_back({s, s + 1, A[s].rows});
  }
  return runs;
}

#ifdef NSA_SNMF_AVX
// ‖A − 1vᵀ − WH‖² of a dense n×m block in one pass, for the AVX + FMA CPUs (listed::kernels()
// .vectorized: the run-time check and NSA_FLOW_SIMD=0 of the listed kernels). The BLAS form below
// makes four passes over n×m values (copy A, subtract v, a GEMM into the copy, a DDOT); here each
// residual entry a − v_j − w·h_j is formed in registers, squared and summed without being stored:
// four rows at a time share every load of v and H. On the paper's 4 strata × 100×100, rank 5, the loss
// then costs 0.13 s per 10 000 iterations instead of 0.46 s (docs/performance.md "Small problems").
// The sums run in another order than DDOT's: the two agree to rounding (≈ 1e-16 relative).
__attribute__((target("avx,fma"))) double fusedResidualSquared(const double* A, std::size_t n, std::size_t m,
                                                              const double* v, const double* W, const double* H,
                                                              std::size_t r) {
  const std::size_t m4 = m & ~static_cast<std::size_t>(3);
  __m256d acc0 = _mm256_setzero_pd(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  double tail = 0;
  auto scalarEntry = [&](const double* a, const double* w, std::size_t j) {
    double d = a[j] - v[j];
    for (std::size_t c = 0; c < r; ++c) d -= w[c] * H[c * m + j];
    tail += d * d;
  };
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const double* a = A + i * m;
    const double* w = W + i * r;
    for (std::size_t j = 0; j < m4; j += 4) {
      const __m256d vj = _mm256_loadu_pd(v + j);
      __m256d d0 = _mm256_sub_pd(_mm256_loadu_pd(a + j), vj);
      __m256d d1 = _mm256_sub_pd(_mm256_loadu_pd(a + m + j), vj);
      __m256d d2 = _mm256_sub_pd(_mm256_loadu_pd(a + 2 * m + j), vj);
      __m256d d3 = _mm256_sub_pd(_mm256_loadu_pd(a + 3 * m + j), vj);
      for (std::size_t c = 0; c < r; ++c) {
        const __m256d h = _mm256_loadu_pd(H + c * m + j);
        d0 = _mm256_fnmadd_pd(_mm256_broadcast_sd(w + c), h, d0);
        d1 = _mm256_fnmadd_pd(_mm256_broadcast_sd(w + r + c), h, d1);
        d2 = _mm256_fnmadd_pd(_mm256_broadcast_sd(w + 2 * r + c), h, d2);
        d3 = _mm256_fnmadd_pd(_mm256_broadcast_sd(w + 3 * r + c), h, d3);
      }
      acc0 = _mm256_fmadd_pd(d0, d0, acc0);
      acc1 = _mm256_fmadd_pd(d1, d1, acc1);
      acc2 = _mm256_fmadd_pd(d2, d2, acc2);
      acc3 = _mm256_fmadd_pd(d3, d3, acc3);
    }
    for (std::size_t q = 0; q < 4; ++q)
      for (std::size_t j = m4; j < m; ++j) scalarEntry(a + q * m, w + q * r, j);
  }
  for (; i < n; ++i) {
    const double* a = A + i * m;
    const double* w = W + i * r;
    for (std::size_t j = 0; j < m4; j += 4) {
      __m256d d = _mm256_sub_pd(_mm256_loadu_pd(a + j), _mm256_loadu_pd(v + j));
      for (std::size_t c = 0; c < r; ++c) d = _mm256_fnmadd_pd(_mm256_broadcast_sd(w + c), _mm256_loadu_pd(H + c * m + j), d);
      acc0 = _mm256_fmadd_pd(d, d, acc0);
    }
    for (std::size_t j = m4; j < m; ++j) scalarEntry(a, w, j);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(_mm256_add_pd(acc0, acc1), _mm256_add_pd(acc2, acc3)));
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail;
}

// The same pass 8 lanes wide, for CPUs with AVX-512F (the columns past the last multiple of 8 by
// fusedResidualSquared's scalar tail, which is what its loops leave to it).
__attribute__((target("avx512f"))) double fusedResidualSquared512(const double* A, std::size_t n, std::size_t m,
                                                                 const double* v, const double* W, const double* H,
                                                                 std::size_t r) {
  const std::size_t m8 = m & ~static_cast<std::size_t>(7);
  __m512d acc0 = _mm512_setzero_pd(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  double tail = 0;
  auto scalarEntry = [&](const double* a, const double* w, std::size_t j) {
    double d = a[j] - v[j];
    for (std::size_t c = 0; c < r; ++c) d -= w[c] * H[c * m + j];
    tail += d * d;
  };
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const double* a = A + i * m;
    const double* w = W + i * r;
    for (std::size_t j = 0; j < m8; j += 8) {
      const __m512d vj = _mm512_loadu_pd(v + j);
      __m512d d0 = _mm512_sub_pd(_mm512_loadu_pd(a + j), vj);
      __m512d d1 = _mm512_sub_pd(_mm512_loadu_pd(a + m + j), vj);
      __m512d d2 = _mm512_sub_pd(_mm512_loadu_pd(a + 2 * m + j), vj);
      __m512d d3 = _mm512_sub_pd(_mm512_loadu_pd(a + 3 * m + j), vj);
      for (std::size_t c = 0; c < r; ++c) {
        const __m512d h = _mm512_loadu_pd(H + c * m + j);
        d0 = _mm512_fnmadd_pd(_mm512_set1_pd(w[c]), h, d0);
        d1 = _mm512_fnmadd_pd(_mm512_set1_pd(w[r + c]), h, d1);
        d2 = _mm512_fnmadd_pd(_mm512_set1_pd(w[2 * r + c]), h, d2);
        d3 = _mm512_fnmadd_pd(_mm512_set1_pd(w[3 * r + c]), h, d3);
      }
      acc0 = _mm512_fmadd_pd(d0, d0, acc0);
      acc1 = _mm512_fmadd_pd(d1, d1, acc1);
      acc2 = _mm512_fmadd_pd(d2, d2, acc2);
      acc3 = _mm512_fmadd_pd(d3, d3, acc3);
    }
    for (std::size_t q = 0; q < 4; ++q)
      for (std::size_t j = m8; j < m; ++j) scalarEntry(a + q * m, w + q * r, j);
  }
  for (; i < n; ++i) {
    const double* a = A + i * m;
    const double* w = W + i * r;
    for (std::size_t j = 0; j < m8; j += 8) {
      __m512d d = _mm512_sub_pd(_mm512_loadu_pd(a + j), _mm512_loadu_pd(v + j));
      for (std::size_t c = 0; c < r; ++c) d = _mm512_fnmadd_pd(_mm512_set1_pd(w[c]), _mm512_loadu_pd(H + c * m + j), d);
      acc0 = _mm512_fmadd_pd(d, d, acc0);
    }
    for (std::size_t j = m8; j < m; ++j) scalarEntry(a, w, j);
  }
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, _mm512_add_pd(_mm512_add_pd(acc0, acc1), _mm512_add_pd(acc2, acc3)));
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])) + tail;
}

// AVX-512 where the CPU has it, unless NSA_FLOW_SIMD=256 asks for the 256-bit pass (so that a machine
// with AVX-512 can test that one too; the environment is read per call, as listed::kernels() does).
bool useAvx512() {
  static const bool cpu = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  const char* simd = std::getenv("NSA_FLOW_SIMD");
  return cpu && !(simd && std::strcmp(simd, "256") == 0);
}

// ---- the small-problem data pass (snmf_data_pass.inc), per SIMD width -----------------------------
// (kDataPassMaxRank and smallKernels(), which chooses among these, follow the #endif.)
// Below smallProducts' size OpenBLAS's small-matrix kernels still made three passes over the data per
// iteration (A·Hᵀ, Wᵀ·A and the fused loss above); this one makes one, ranks 1–8 (docs/performance.md,
// "Small problems"). NSA_FLOW_SIMD=0 keeps the BLAS products, which the tests compare it with.
#pragma GCC push_options
#pragma GCC target("avx")
// out[k] = the lane sum of x[k], k < N, for 4-lane vectors (both widths below end their sums here).
template <std::size_t N>
inline void laneSums4(const __m256d* x, double* out) {
  const __m256d z = _mm256_setzero_pd();
  for (std::size_t k = 0; k < N; k += 4) {
    const __m256d h01 = _mm256_hadd_pd(x[k], k + 1 < N ? x[k + 1] : z);
    const __m256d h23 = _mm256_hadd_pd(k + 2 < N ? x[k + 2] : z, k + 3 < N ? x[k + 3] : z);
    const __m256d s = _mm256_add_pd(_mm256_permute2f128_pd(h01, h23, 0x20), _mm256_permute2f128_pd(h01, h23, 0x31));
    if (k + 4 <= N) {
      _mm256_storeu_pd(out + k, s);
    } else {
      double t[4];
      _mm256_storeu_pd(t, s);
      for (std::size_t q = k; q < N; ++q) out[q] = t[q - k];
    }
  }
}
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
namespace avx512 {
struct L {
  using V = __m512d;
  using Mask = __mmask8;
  static constexpr std::size_t kLanes = 8;
  // Rows per step: Q·R accumulators + Q data + Q residual vectors + H, num and a broadcast ≤ 32.
  static constexpr std::size_t dataRowsFor(std::size_t r) { return r <= 4 ? 4 : r <= 6 ? 3 : 2; }
  static Mask mask(std::size_t count) { return static_cast<Mask>((1u << count) - 1u); }
  template <bool Masked>
  static V load(const double* p, Mask k) {
    return Masked ? _mm512_maskz_loadu_pd(k, p) : _mm512_loadu_pd(p);
  }
  template <bool Masked>
  static void store(double* p, Mask k, V x) {
    if (Masked) _mm512_mask_storeu_pd(p, k, x);
    else _mm512_storeu_pd(p, x);
  }
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V div(V a, V b) { return _mm512_div_pd(a, b); }
  template <std::size_t N>
  static void sums(const V* x, double* out) {
    __m256d halves[N];
    // Lanes 0–3 plus 4–7 (zero-masked extracts: GCC 12's plain ones and the cast warn of an uninitialized value).
    for (std::size_t k = 0; k < N; ++k)
      halves[k] = _mm256_add_pd(_mm512_maskz_extractf64x4_pd(0xF, x[k], 0), _mm512_maskz_extractf64x4_pd(0xF, x[k], 1));
    laneSums4<N>(halves, out);
  }
};
#include "snmf_data_pass.inc"
}  // namespace avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx,fma")
namespace avx256 {
struct L {
  using V = __m256d;
  using Mask = __m256i;
  static constexpr std::size_t kLanes = 4;
  // Rows per step for 16 vector registers (avx512::L::dataRowsFor). At rank 5 two rows need 17 vectors,
  // yet ran the paper's run in 0.30 s instead of 0.43 s with one row: a spilled broadcast costs less
  // than loading v, H and num (and storing num) once per row.
  static constexpr std::size_t dataRowsFor(std::size_t r) { return r <= 2 ? 4 : r <= 6 ? 2 : 1; }
  static Mask mask(std::size_t count) {
    return _mm256_set_epi64x(count > 3 ? -1LL : 0LL, count > 2 ? -1LL : 0LL, count > 1 ? -1LL : 0LL,
                             count > 0 ? -1LL : 0LL);
  }
  template <bool Masked>
  static V load(const double* p, Mask k) {
    return Masked ? _mm256_maskload_pd(p, k) : _mm256_loadu_pd(p);
  }
  template <bool Masked>
  static void store(double* p, Mask k, V x) {
    if (Masked) _mm256_maskstore_pd(p, k, x);
    else _mm256_storeu_pd(p, x);
  }
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  template <std::size_t N>
  static void sums(const V* x, double* out) {
    laneSums4<N>(x, out);
  }
};
#include "snmf_data_pass.inc"
}  // namespace avx256
#pragma GCC pop_options
#endif

// The data pass's largest rank: its per-rank code keeps a row's R sums in registers.
constexpr std::size_t kDataPassMaxRank = 8;

void ratioPortable(double* x, const double* a, const double* b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] = x[i] * a[i] / b[i];
}

// The small-problem kernels for this CPU and environment: AVX-512, or AVX + FMA where the CPU has no
// AVX-512 or NSA_FLOW_SIMD=256; where the vectorized kernels are off (NSA_FLOW_SIMD=0, no AVX + FMA) no
// data pass (the BLAS products and loss instead) and the scalar quotients. Read once per solver call,
// as listed::kernels() is.
struct SmallKernels {
  // dataPass (snmf_data_pass.inc) for 1 ≤ r ≤ kDataPassMaxRank, or null.
  double (*pass)(std::size_t r, bool loss, const double* A, std::size_t n, std::size_t m, const double* v,
                 const double* W, const double* H, double* AHt, double* num);
  // x ← x ∘ a / b over n entries (ratioUpdate): the same bits in every variant.
  void (*ratio)(double* x, const double* a, const double* b, std::size_t n);
};

SmallKernels smallKernels() {
#ifdef NSA_SNMF_AVX
  if (listed::kernels().vectorized)
    return useAvx512() ? SmallKernels{avx512::dataPass, avx512::ratioUpdate} : SmallKernels{avx256::dataPass, avx256::ratioUpdate};
#endif
  return {nullptr, ratioPortable};
}

// Whether directRunResidualSquared sums a dense run stratum by stratum, one fused pass each (the CPU
// has AVX + FMA and the vectorized kernels are on): then its strata may be spread over the team.
bool residualPerStratum() {
#ifdef NSA_SNMF_AVX
  return listed::kernels().vectorized;
#else
  return false;
#endif
}

// Σ over the strata of a run of ‖A(s) − 1v(s)ᵀ − W(s)H‖², computed directly: dense strata in one
// fused pass each where the CPU has AVX + FMA (above), otherwise a dense run in blocks of rows that may
// span strata (one GEMM per block, not per stratum); a CSR run through directResidualSquared.
double directRunResidualSquared(const std::vector<DataMatrix>& A, const Run& run, const double* V,
                                const double* W, const double* H, std::size_t r, Workspace& ws) {
  if (A[run.first].sparse()) return directResidualSquared(A[run.first], V + run.first * A[run.first].cols, W, H, r, ws);
  const std::size_t m = A[run.first].cols;
#ifdef NSA_SNMF_AVX
  if (residualPerStratum()) {
    const bool wide = useAvx512();
    double sum = 0;
    const double* Ws = W;
    for (std::size_t s = run.first; s < run.last; Ws += A[s].rows * r, ++s)
      sum += (wide ? fusedResidualSquared512 : fusedResidualSquared)(A[s].dense, A[s].rows, m, V + s * m, Ws, H, r);
    return sum;
  }
#endif
  const std::size_t block = std::max<std::size_t>(1, std::min<std::size_t>(run.rows, (1u << 16) / m));
  double* R = ws.get(kResidual, block * m);
  const double* data = A[run.first].dense;
  std::size_t s = run.first, stratumEnd = A[s].rows;  // rows of the run before stratum s ends
  double sum = 0;
  for (std::size_t i0 = 0; i0 < run.rows; i0 += block) {
    const std::size_t b = std::min(block, run.rows - i0);
    std::memcpy(R, data + i0 * m, b * m * sizeof(double));
    for (std::size_t bi = 0; bi < b; ++bi) {
      while (i0 + bi >= stratumEnd) stratumEnd += A[++s].rows;
      const double* v = V + s * m;
      double* row = R + bi * m;
      for (std::size_t j = 0; j < m; ++j) row[j] -= v[j];
    }
    gemm(false, false, b, m, r, -1.0, W + i0 * r, H, 1.0, R);
    sum += cblas_ddot(asInt(b * m), R, 1, R, 1);
  }
  return sum;
}

void columnSumsOf(const double* W, std::size_t n, std::size_t r, double* out) {
  std::fill(out, out + r, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < r; ++c) out[c] += W[i * r + c];
}

// ---- the data products on the thread team -----------------------------------------------------------
// A dense block's products with a factor, split over the team so that each thread makes one
// single-threaded GEMM on its part (runBlasRowsIfWorth; the solve holds OpenBLAS at one thread while its
// team has more than one, SingleThreadedBlas). OpenBLAS threads these thin products (2000×1000 by rank
// 20) only 1.5× on 2 cores, two single-threaded halves nearly 2×. Each split is by rows or columns of
// the product, never of the sum: every entry is the same dot product in any split, which OpenBLAS
// forms the same way in a part as in the whole where both take its regular kernels (a product above
// its small-matrix kernels' 10⁶ multiply-adds, and parts above them too: then a team of T gives the
// bits of a team of one; a part below may round differently). A team of one (or a block too small to
// split) makes the one call the solver made before the split.
constexpr std::size_t kColumnAlign = 8;  // a column split's parts start on whole cache lines of A's rows

// out (n×r) = A·Hᵀ for a dense n×m A (row stride m): by rows of A.
void denseAHt(RowTeam& team, const double* A, std::size_t n, std::size_t m, const double* H, std::size_t r,
              double* out) {
  auto part = [&](int, std::size_t b, std::size_t e) { gemm(false, true, e - b, r, m, 1.0, A + b * m, H, 0.0, out + b * r); };
  runBlasRowsIfWorth(team, n, 1, 2.0 * static_cast<double>(n * m * r), part);
}

// out (n×r) = W·G for an n×r W and an r×r G (W(s)HHᵀ): by rows of W.
void rowsTimesSquare(RowTeam& team, const double* W, std::size_t n, std::size_t r, const double* G, double* out) {
  auto part = [&](int, std::size_t b, std::size_t e) { gemm(false, false, e - b, r, r, 1.0, W + b * r, G, 0.0, out + b * r); };
  runBlasRowsIfWorth(team, n, 1, 2.0 * static_cast<double>(n * r * r), part);
}

// out (m×r) = Aᵀ·W + beta·out for a dense n×m A and an n×r W: by columns of A (rows of out).
void denseAtW(RowTeam& team, const double* A, std::size_t n, std::size_t m, const double* W, std::size_t r,
              double beta, double* out) {
  auto part = [&](int, std::size_t b, std::size_t e) {
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, asInt(e - b), asInt(r), asInt(n), 1.0, A + b, asInt(m), W,
                asInt(r), beta, out + b * r, asInt(r));
  };
  runBlasRowsIfWorth(team, m, kColumnAlign, 2.0 * static_cast<double>(n * m * r), part);
}

// out (r×m) = Wᵀ·A + beta·out for an n×r W and a dense n×m A: by columns of A (and of out).
void denseWtA(RowTeam& team, const double* W, std::size_t n, std::size_t r, const double* A, std::size_t m,
              double beta, double* out) {
  auto part = [&](int, std::size_t b, std::size_t e) {
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, asInt(r), asInt(e - b), asInt(n), 1.0, W, asInt(r), A + b,
                asInt(m), beta, out + b, asInt(m));
  };
  runBlasRowsIfWorth(team, m, kColumnAlign, 2.0 * static_cast<double>(n * m * r), part);
}

void productAHt(RowTeam& team, const DataMatrix& A, const double* H, const double* Ht, std::size_t r, double* out) {
  if (A.sparse()) dataTimes(A, Ht, r, 0.0, out);
  else denseAHt(team, A.dense, A.rows, A.cols, H, r, out);
}

// Σₖ directRunResidualSquared of the runs k with want[k] (all where want is empty) on the team, each
// part by one thread with that thread's workspace (ws[t]): a run's strata where the run is summed
// stratum by stratum (the fused pass: residualPerStratum), else whole runs. The parts are added as one
// thread adds them (a run's strata in order from 0, then the runs in order), so the value is the same
// for any team; sums[k] holds run k's.
double directRunsResidualSquared(RowTeam& team, const std::vector<DataMatrix>& A, const std::vector<Run>& runs,
                                 const std::vector<char>& want, const double* V, const std::vector<double*>& W,
                                 const double* H, std::size_t r, std::vector<Workspace>& ws, std::vector<double>& sums) {
  std::vector<Run> parts;
  std::vector<std::size_t> partRun;
  double work = 0;
  for (std::size_t k = 0; k < runs.size(); ++k) {
    if (!want.empty() && !want[k]) continue;
    const Run& g0 = runs[k];
    work += static_cast<double>(g0.rows * A[g0.first].cols * r);
    if (A[g0.first].sparse() || !residualPerStratum()) {
      parts.push_back(g0);
      partRun.push_back(k);
      continue;
    }
    for (std::size_t s = g0.first; s < g0.last; ++s) {
      parts.push_back({s, s + 1, A[s].rows});
      partRun.push_back(k);
    }
  }
  std::vector<double> partSums(parts.size());
  auto pass = [&](int t, std::size_t b, std::size_t e) {
    for (std::size_t q = b; q < e; ++q)
      partSums[q] = directRunResidualSquared(A, parts[q], V, W[parts[q].first], H, r, ws[static_cast<std::size_t>(t)]);
  };
  runRowsIfWorth(team, parts.size(), 1, work, pass);
  sums.assign(runs.size(), 0.0);
  for (std::size_t q = 0; q < parts.size(); ++q) sums[partRun[q]] += partSums[q];
  double sum = 0;
  for (std::size_t k = 0; k < runs.size(); ++k) sum += sums[k];
  return sum;
}

// The certificate of (V, W, H): the gradients of f = ½Σₛ‖R(s)‖² / Σₛ‖A(s)‖², R(s) = 1v(s)ᵀ + W(s)H − A(s),
// are the multiplicative updates' denominators minus their numerators (over Σₛ‖A(s)‖²):
//   ∇v(s) = R(s)ᵀ1 = nₛv(s) + Hᵀ(W(s)ᵀ1) − A(s)ᵀ1,   ∇W(s) = R(s)Hᵀ = W(s)HHᵀ + 1(Hv(s))ᵀ − A(s)Hᵀ,
//   ∇H = Σₛ W(s)ᵀR(s) = Σₛ (W(s)ᵀ1)v(s)ᵀ + (ΣₛW(s)ᵀW(s))H − ΣₛW(s)ᵀA(s).
// The gradient mapping of each block (V, every W(s), H); the certificate is the largest.
// Weighted strata: every product is replaced by its weighted one, ∇ = (Ω∘M)-products − (Ω∘A)-products:
//   ∇v(s)_j = v_j·weight_j + b(Hᵀ(Wᵀ1))_j + model_j − colSum_j − data_j,
//   ∇W(s) = b(W·HHᵀ + 1(Hv)ᵀ) − A(s)Hᵀ + listed,  ∇H gets b(Wᵀ1)vᵀ + b·WᵀW·H − WᵀA + listed
// (listedColumns, listedProducts), over Σωa².
double certificate(RowTeam& team, const Problem& P, const double* V, const std::vector<double*>& W, const double* H,
                   Workspace& ws) {
  const std::size_t S = P.S, m = P.m, r = P.r;
  const double scale = 1.0 / std::max(P.totalNorm2, 1e-300);
  double* HHt = ws.get(kHHt, r * r);
  double* Ht = ws.get(kHt, m * r);
  double* gramSum = ws.get(kGramSum, r * r);
  double* num = ws.get(kNum, r * m);
  double* numT = ws.get(kNumT, m * r);
  double* gradH = ws.get(kDen, r * m);
  double* wsum = ws.get(kWsum, r);
  double* Hv = ws.get(kHv, r);
  std::vector<double> gradV(S * m);
  double* denT = P.anyWeighted ? ws.get(kDenT, m * r) : nullptr;
  double* columns = P.anyWeighted ? ws.get(kColumns, 3 * m) : nullptr;
  std::vector<double> wh(P.maxListed), numW, denW;
  if (denT) std::fill(denT, denT + m * r, 0.0);
  outerGram(H, r, m, HHt);
  transposeInto(H, r, m, Ht);
  std::fill(num, num + r * m, 0.0);
  std::fill(numT, numT + m * r, 0.0);
  std::fill(gradH, gradH + r * m, 0.0);
  std::fill(gramSum, gramSum + r * r, 0.0);
  double worst = 0;
  for (std::size_t s = 0; s < S; ++s) {
    const DataMatrix& As = P.A[s];
    const std::size_t n = As.rows;
    const double* v = V + s * m;
    double* AHt = ws.get(kAHt, n * r);
    double* gradW = ws.get(kWHHt, n * r);
    const EntryWeights* e = P.weighted(s);
    const double b = P.base(s);
    columnSumsOf(W[s], n, r, wsum);
    // ∇v(s), with g = Hᵀ(W(s)ᵀ1) in its place.
    double* g = gradV.data() + s * m;
    cblas_dgemv(CblasRowMajor, CblasTrans, asInt(r), asInt(m), 1.0, H, asInt(m), wsum, 1, 0.0, g, 1);
    if (e) {
      listedModel(*e, n, r, W[s], Ht, wh.data());
      listedColumns(*e, n, m, wh.data(), columns, columns + m, columns + 2 * m);
      for (std::size_t j = 0; j < m; ++j)
        g[j] = (v[j] * columns[j] + b * g[j] + columns[m + j] - P.colSums[s][j] - columns[2 * m + j]) * scale;
    } else {
      for (std::size_t j = 0; j < m; ++j) g[j] = (static_cast<double>(n) * v[j] + g[j] - P.colSums[s][j]) * scale;
    }
    // ∇W(s)
    productAHt(team, As, H, Ht, r, AHt);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, asInt(r), asInt(m), 1.0, H, asInt(m), v, 1, 0.0, Hv, 1);
    rowsTimesSquare(team, W[s], n, r, HHt, gradW);
    if (e) {
      numW.assign(n * r, 0.0);
      denW.assign(n * r, 0.0);
      listedProducts(*e, n, r, v, W[s], Ht, wh.data(), numW.data(), denW.data(), numT, denT);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t c = 0; c < r; ++c) {
          const std::size_t k = i * r + c;
          gradW[k] = (b * (gradW[k] + Hv[c]) + denW[k] - AHt[k] - numW[k]) * scale;
        }
    } else {
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t c = 0; c < r; ++c) gradW[i * r + c] = (gradW[i * r + c] + Hv[c] - AHt[i * r + c]) * scale;
    }
    P.penaltyW.addGradient(W[s], n * r, scale, gradW);  // + (l1 + l2·W)/Σωa² (inactive: nothing)
    zeroFixedColumns(gradW, n, r, P.rankOf(s));
    worst = worstCertificate(worst, gradientMapping(W[s], gradW, n * r, true));
    // ∇H's parts of this stratum (its base part only when every entry has the base weight 1)
    if (b != 0.0) {
      cblas_dger(CblasRowMajor, asInt(r), asInt(m), 1.0, wsum, 1, v, 1, gradH, asInt(m));
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, asInt(r), asInt(n), 1.0, W[s], asInt(r), 1.0, gramSum, asInt(r));
    }
    if (As.sparse()) dataTransposeTimes(As, W[s], r, 1.0, numT);
    else denseWtA(team, W[s], n, r, As.dense, m, 1.0, num);
  }
  for (std::size_t i = 0; i < r; ++i)
    for (std::size_t j = 0; j < i; ++j) gramSum[i * r + j] = gramSum[j * r + i];
  gemm(false, false, r, m, r, 1.0, gramSum, H, 1.0, gradH);
  for (std::size_t c = 0; c < r; ++c)
    for (std::size_t j = 0; j < m; ++j)
      gradH[c * m + j] = (gradH[c * m + j] + (denT ? denT[j * r + c] : 0.0) - num[c * m + j] - numT[j * r + c]) * scale;
  P.penaltyH.addGradient(H, r * m, scale, gradH);
  P.penaltyV.addGradient(V, S * m, scale, gradV.data());
  worst = worstCertificate(worst, gradientMapping(H, gradH, r * m, true));
  return worstCertificate(worst, gradientMapping(V, gradV.data(), S * m, true));
}

}  // namespace

void stratifiedNmfInit(const std::vector<DataMatrix>& A, std::size_t r, NmfInit init, uint64_t seed,
                       double* V, const std::vector<double*>& W, double* H,
                       const std::vector<std::size_t>& stratumRanks) {
  if (init == NmfInit::Given) return;
  const std::size_t S = A.size(), m = A.front().cols;
  checkStratumRanks(stratumRanks, S, r);
  Random rng(seed);
  if (init == NmfInit::Random) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(r));
    rng.fillUniform(V, S * m);
    for (std::size_t s = 0; s < S; ++s) rng.fillUniform(W[s], A[s].rows * r, scale);
    rng.fillUniform(H, r * m, scale);
    zeroFixedColumns(A, r, stratumRanks, W);
    return;
  }
  std::size_t N = 0;
  double total = 0;
  std::vector<std::size_t> offset(S);
  for (std::size_t s = 0; s < S; ++s) {
    offset[s] = N;
    N += A[s].rows;
    total += dataSum(A[s]);
    dataColumnSums(A[s], V + s * m);
    for (std::size_t j = 0; j < m; ++j) V[s * m + j] *= 0.5 / static_cast<double>(A[s].rows);
  }
  // The stacked B = [A(s) − 1v(s)ᵀ]: B·X = A(s)X − 1(v(s)ᵀX), BᵀY = Σ A(s)ᵀY(s) − v(s)(1ᵀY(s)).
  std::vector<double> row;
  LinearOperator B{
      N, m,
      [&](const double* X, std::size_t l, double* out) {
        row.assign(l, 0.0);
        for (std::size_t s = 0; s < S; ++s) {
          double* o = out + offset[s] * l;
          dataTimes(A[s], X, l, 0.0, o);
          std::fill(row.begin(), row.end(), 0.0);
          for (std::size_t j = 0; j < m; ++j)
            for (std::size_t c = 0; c < l; ++c) row[c] += V[s * m + j] * X[j * l + c];
          for (std::size_t i = 0; i < A[s].rows; ++i)
            for (std::size_t c = 0; c < l; ++c) o[i * l + c] -= row[c];
        }
      },
      [&](const double* Y, std::size_t l, double* out) {
        std::fill(out, out + m * l, 0.0);
        row.assign(l, 0.0);
        for (std::size_t s = 0; s < S; ++s) {
          const double* y = Y + offset[s] * l;
          dataTransposeTimes(A[s], y, l, 1.0, out);
          std::fill(row.begin(), row.end(), 0.0);
          for (std::size_t i = 0; i < A[s].rows; ++i)
            for (std::size_t c = 0; c < l; ++c) row[c] += y[i * l + c];
          for (std::size_t j = 0; j < m; ++j)
            for (std::size_t c = 0; c < l; ++c) out[j * l + c] -= V[s * m + j] * row[c];
        }
      }};
  std::vector<double> stackedW(N * r);
  const double mean = total / (static_cast<double>(N) * static_cast<double>(m));
  nndsvd(B, r, rng, nndsvdFill(mean, r), stackedW.data(), H);
  for (std::size_t s = 0; s < S; ++s)
    std::memcpy(W[s], stackedW.data() + offset[s] * r, A[s].rows * r * sizeof(double));
  zeroFixedColumns(A, r, stratumRanks, W);
}

namespace {
// Σₛ Σ ω(a − m)² (unweighted strata: ‖A(s) − 1v(s)ᵀ − W(s)H‖²), expanded with the direct fallback.
// `ws`: the run's workspace at the end of a run (its slots are recomputed before any later read).
double lossSquaredOf(RowTeam& team, const Problem& P, const double* V, const std::vector<double*>& W, const double* H,
                     Workspace& ws) {
  const std::vector<DataMatrix>& A = P.A;
  const std::size_t r = P.r;
  const std::size_t m = P.m;
  double* HHt = ws.get(kHHt, r * r);
  double* Ht = ws.get(kHt, m * r);
  double* wsum = ws.get(kWsum, r);
  outerGram(H, r, m, HHt);
  transposeInto(H, r, m, Ht);
  double sum = 0;
  for (std::size_t s = 0; s < P.S; ++s) {
    const std::size_t n = A[s].rows;
    double* AHt = ws.get(kAHt, n * r);
    double* WHHt = ws.get(kWHHt, n * r);
    productAHt(team, A[s], H, Ht, r, AHt);
    rowsTimesSquare(team, W[s], n, r, HHt, WHHt);
    columnSumsOf(W[s], n, r, wsum);
    const EntryWeights* e = P.weighted(s);
    if (!e) {
      sum += stratumLossSquared(P, s, V + s * m, W[s], H, AHt, WHHt, wsum, ws);
      continue;
    }
    std::vector<double> wh(e->size());
    listedModel(*e, n, r, W[s], Ht, wh.data());
    if (e->base) sum += stratumLossSquared(P, s, V + s * m, W[s], H, AHt, WHHt, wsum, ws);
    sum += listedLossSquared(*e, V + s * m, wh.data());
  }
  return sum;
}
}  // namespace

double stratifiedNmfLoss(const std::vector<DataMatrix>& A, std::size_t r, const double* V,
                         const std::vector<double*>& W, const double* H) {
  double entries = 0;
  for (const DataMatrix& a : A) entries += static_cast<double>(a.rows * a.cols);
  RowTeam team(teamThreads(0, entries));
  SingleThreadedBlas blas(team.size() > 1);  // the team splits the products (denseAHt)
  Workspace ws;
  return std::sqrt(std::max(lossSquaredOf(team, Problem(team, A, r), V, W, H, ws), 0.0));
}

namespace {

// ---- HALS: block-coordinate descent on the same objective -------------------------------------------
// Blocks, in order: every v(s), then every W(s), then H. Each block's subproblem (the others fixed) is a
// convex quadratic over x ≥ 0 that separates into rows with one Gram matrix G and one linear term p:
//   v(s):  diagonal, one exact step: v_j = max(0, ((1ᵀA(s))_j − (Hᵀ(W(s)ᵀ1))_j − l1) / (nₛ + l2)),
//   W(s):  row i of W(s), G = HHᵀ,        p = ((A(s) − 1v(s)ᵀ)Hᵀ)ᵢ,
//   H:     column j of H,  G = ΣₛW(s)ᵀW(s), p = (Σₛ W(s)ᵀ(A(s) − 1v(s)ᵀ))_j.
// Every coordinate step is an exact minimizer (sweepRow), so the objective (data term + penalties)
// never increases: in exact arithmetic, loss(k+1) ≤ loss(k); computed, up to the rounding of the
// expanded loss (≈ 1e-13 relative at the losses the tests reach). The products that form G and p are
// the expensive part (2·N·m·r flops each) and are reused by several sweeps of a row (N·r² each).

// Slots of the HALS solver beyond the multiplicative solver's (one workspace for the run).
enum HalsSlot : std::size_t { kQt = kColumns + 1 };

// Coordinate descent on one row x (r values, the first rs free, the rest 0) of the convex quadratic
// ½xᵀGx − pᵀx + l1·Σx + ½l2‖x‖² over x ≥ 0: each coordinate in turn set to its exact minimizer
//   x_c ← max(0, x_c − ((xG)_c − p_c + l1 + l2·x_c) / (G_cc + l2)).
// Sweeps repeat (G and p reused) until one lowers the row objective by at most 1e-4 of what the
// first one did (Gillis and Glineur's stopping rule for accelerated HALS), at most maxSweeps. A
// coordinate without curvature (G_cc + l2 = 0: G's row c is 0, an unused topic) has slope l1 − p_c
// = l1 ≥ 0 and stays, or goes to 0 where that slope is positive (its exact minimizer).
// Each row depends on its own values only: rows run on the thread team in any split, bit for bit.
// `inverse` holds 1/(G_cc + l2) per coordinate, 0 where there is no curvature (inverseCurvatures):
// shared by all rows of a block, it keeps a division off each step's dependency chain.
inline void sweepRow(double* x, const double* p, const double* G, const double* inverse, std::size_t r,
                     std::size_t rs, double l1, double l2, int maxSweeps) {
  double first = 0;
  for (int k = 0; k < maxSweeps; ++k) {
    double decrease = 0;
    for (std::size_t c = 0; c < rs; ++c) {
      const double* g = G + c * r;
      double slope = l1 + l2 * x[c] - p[c];
      for (std::size_t d = 0; d < rs; ++d) slope += g[d] * x[d];
      const double curvature = g[c] + l2;
      if (inverse[c] == 0.0) {
        if (slope > 0) x[c] = 0;
        continue;
      }
      const double next = std::max(0.0, x[c] - slope * inverse[c]);
      const double step = next - x[c];
      decrease += curvature * step * step;
      x[c] = next;
    }
    if (k == 0) first = decrease;
    if (decrease <= 1e-4 * first) break;
  }
}

// sweepRow for a row whose entries carry weights: the row objective is ½Σⱼ ωⱼ(aⱼ − x·yⱼ)² with
// ωⱼ = b + κⱼ (κ listed for k entries, y_j = Y's row idx_j), plus the penalty. Its Gram is b·G + Σκyyᵀ,
// its linear term b·P + Σκa·y; each coordinate step is the exact minimizer as in sweepRow, with the
// listed residuals e = κ(a − x·y) kept current, and the sweeps stop by sweepRow's rule
// (listed::Kernels::halsSweeps, the AVX + FMA or portable kernels; only the first rs coordinates move).
// A curvature that is rounding only (≤ 1e-10 of b·G_cc: every entry meeting the coordinate is missing)
// counts as none: the coordinate stays, or goes to 0 where l1 > 0 and its slope is positive.
// One thread's buffers for it: the kernel's workspaces (the gathered rows and residuals on cache
// lines: the kernel's passes read them four doubles at a time), and the row's list (its data less v;
// for H's columns its rows of the stacked W and its κ).
struct RowBuffers {
  std::vector<double> curvature, cross, xold, gatheredStorage, residualStorage, data, kappa;
  std::vector<int32_t> rows;
  double *gathered = nullptr, *residual = nullptr;
  // Room for a row of k listed entries at rank r (stratifiedNmfRowListDoubles counts it).
  void fit(std::size_t k, std::size_t r) {
    if (curvature.size() < r) curvature.resize(r), cross.resize((r + 1) / 2), xold.resize(r);
    if (data.size() < std::max<std::size_t>(k, 1)) {
      const std::size_t room = std::max<std::size_t>(k, 1) + k / 2;  // grown by half: few reallocations
      data.resize(room);
      gathered = cacheAligned(gatheredStorage, r * ((room + 3) / 4 * 4));
      residual = cacheAligned(residualStorage, room);
    }
  }
};
void weightedSweepRow(const listed::Kernels& K, double* x, const double* Y, const int32_t* idx, const double* kappa,
                      double kappa0, std::size_t k, std::size_t r, std::size_t rs, double b, const double* P,
                      const double* G, const Penalty& penalty, int maxSweeps, RowBuffers& buf) {
  listed::HalsRowTerms terms;
  terms.base = b != 0.0, terms.P = P, terms.G = G, terms.l1 = penalty.l1, terms.l2 = penalty.l2, terms.free = rs;
  terms.rounding = 1e-10, terms.penaltyZeroes = true;
  K.halsSweeps(x, Y, idx, kappa, kappa0, buf.data.data(), k, r, terms, maxSweeps, buf.curvature.data(),
               buf.cross.data(), buf.xold.data(), buf.gathered, buf.residual);
}

// 1/(G_cc + l2) per coordinate, 0 where G_cc + l2 is not positive (sweepRow).
// Both solvers' report of an iteration whose loss was computed: progress (loss, normalized loss and,
// with penalties, the penalized objective from `penalty`, its value before the update), then, when the
// iteration is `due`, its record in the traces. True when the recorded quantity (the penalized
// objective with penalties, else the loss) has reached its plateau: the caller stops.
bool reportIteration(int it, double lossSquared, double penalty, bool due, const StratifiedNmfOptions& o,
                     double normA, const LossRecorder& recorder, Monitor& monitor, NmfRun& run) {
  const double loss = std::sqrt(std::max(lossSquared, 0.0));
  checkFiniteLoss(loss, it);
  const bool penalized = o.penalized();
  ProgressRecord rec;
  rec.iteration = it;
  rec.total = o.maxIterations;
  rec.count = 2;
  rec.values[0] = loss;
  rec.values[1] = loss / std::max(normA, 1e-300);
  const double objective = penalized ? 0.5 * std::max(lossSquared, 0.0) + penalty : 0.0;
  if (penalized) rec.count = 3, rec.values[2] = objective;
  monitor.progress(rec);
  bool plateau = due && recorder.record(it, loss, run.trace);
  if (due && penalized) plateau = recordObjective(run.objective, objective, o.tolerance);
  return plateau;
}

// Both solvers' end of a run after `it` iterations: the final loss (and, with penalties, the penalized
// objective with `penalty`, the penalties' value at the final factors) recorded, and the certificate.
void finishRun(RowTeam& team, const Problem& P, const double* V, const std::vector<double*>& W, const double* H, int it,
               double penalty, const StratifiedNmfOptions& o, Workspace& ws, NmfRun& run) {
  run.iterations = it;
  const double finalSquared = std::max(lossSquaredOf(team, P, V, W, H, ws), 0.0);
  const double final = std::sqrt(finalSquared);
  checkFiniteLoss(final, it);
  run.trace.record(it, final);
  if (o.penalized()) run.objective.push_back(0.5 * finalSquared + penalty);
  run.certificate = certificate(team, P, V, W, H, ws);
}

void inverseCurvatures(const double* G, std::size_t r, double l2, double* out) {
  for (std::size_t c = 0; c < r; ++c) {
    const double curvature = G[c * r + c] + l2;
    out[c] = curvature > 0 ? 1.0 / curvature : 0.0;
  }
}

// Sweeps per row and block: 1 + ½·(flops of the block's products)/(flops of one sweep), at most 10
// (Gillis and Glineur's α = ½). A plain sweep costs r² multiply-adds: W rows 1 + m/(2r), H columns
// 1 + N/(2r). A row (or column) with k listed entries of base weight 1 (a mask's, weights') sweeps at
// r·(r + 2k) (the base part's r², and per listed entry and coordinate its gradient term and its
// residual's update): 1 + productSide/(2(r + 2k)). The listed entries of a stratum of base weight 0
// (CSR strata whose absent entries are missing) are its data, not corrections to a plain row, and are
// not counted (k = 0): there the cost rule made the time to a given loss longer (Austen's TF-IDF as 6
// strata, rank 10: 1.55 times to the loss of 50 iterations; docs/missing-values.md).
int sweepsFor(std::size_t productSide, std::size_t r, std::size_t k = 0) {
  return static_cast<int>(std::min<std::size_t>(10, 1 + productSide / (2 * (std::max<std::size_t>(r, 1) + 2 * k))));
}

NmfRun stratifiedNmfHals(RowTeam& team, const Problem& P, const StratifiedNmfOptions& o, double* V,
                         const std::vector<double*>& W, double* H, Monitor& monitor) {
  const std::vector<DataMatrix>& A = P.A;
  const std::size_t S = P.S, m = P.m, r = o.rank;
  const bool penalized = o.penalized();
  auto penaltyValue = [&]() {
    double sum = P.penaltyV.value(V, S * m) + P.penaltyH.value(H, r * m);
    for (std::size_t s = 0; s < S; ++s) sum += P.penaltyW.value(W[s], A[s].rows * r);
    return sum;
  };
  const std::vector<Run> runs = contiguousRuns(A, W, r);
  std::vector<std::size_t> rowOffset(S + 1, 0);
  for (std::size_t s = 0; s < S; ++s) rowOffset[s + 1] = rowOffset[s] + A[s].rows;
  const std::size_t N = rowOffset[S];
  // The weighted H columns name their listed entries' rows of the stacked W by int32 indices (the
  // listed kernels'); the bindings refuse more rows before any work, this is the second guard.
  if (P.anyWeighted && N > static_cast<std::size_t>(INT32_MAX))
    throwRange("Expected at most 2147483647 rows in all strata with missing entries but received " + std::to_string(N));
  const int sweepsW = sweepsFor(m, r), sweepsH = sweepsFor(N, r);

  Workspace ws;
  Workspace lossWs;  // the weighted loss's products (its slots would overwrite the sweeps' in ws)
  double* HHt = ws.get(kHHt, r * r);
  double* Ht = ws.get(kHt, m * r);
  double* AHt = ws.get(kAHt, N * r);  // A(s)Hᵀ stacked, then the W rows' p = (A(s) − 1v(s)ᵀ)Hᵀ
  double* gramSum = ws.get(kGramSum, r * r);
  double* Qt = ws.get(kQt, m * r);  // the H columns' p, Σₛ (A(s) − 1v(s)ᵀ)ᵀW(s) (m×r)
  double* g = ws.get(kG, m);
  double* wsum = ws.get(kWsum, r);
  double* Hv = ws.get(kHv, r);
  ws.get(kWHHt, N * r);  // the certificate's ∇W(s)
  ws.get(kResidual, 1);

  // Weighted strata: the listed entries' model values, column sums and one row's list at a time.
  double* columns = P.anyWeighted ? ws.get(kColumns, 3 * m) : nullptr;
  std::vector<double> wh(P.maxListed), stackedW(P.anyWeighted ? N * r : 0);
  std::vector<double> inverse(r);  // 1/curvature of the block being swept (sweepRow)
  // The weighted rows' kernels, and whether every listed κ of every weighted stratum is one value
  // (a mask's −1): then no κ is read entry by entry.
  const listed::Kernels& K = listed::kernels();
  bool uniformKappa = true;
  double kappa0 = 0;
  for (std::size_t s = 0, seen = 0; s < S; ++s) {
    const EntryWeights* e = P.weighted(s);
    if (!e || e->size() == 0) continue;
    uniformKappa = uniformKappa && e->uniformKappa && (seen++ == 0 || e->rowKappa[0] == kappa0);
    kappa0 = e->rowKappa[0];
  }

  // The row sweeps of a block run on the thread team (each row is independent: see sweepRow), and so
  // do the data products (denseAHt, denseAtW) and the direct loss (directRunsResidualSquared).
  std::vector<Workspace> teamWs(static_cast<std::size_t>(team.size()));
  std::vector<RowBuffers> teamBuffers(static_cast<std::size_t>(team.size()));  // the weighted rows'
  std::vector<double> runSums;

  NmfRun run;
  run.trace.start();
  LossRecorder recorder(o.tolerance, o.lossEvery);
  const double normA = std::sqrt(P.totalNorm2);
  // Σₛ‖A(s) − 1v(s)ᵀ − W(s)H‖² of the current iterate when the last update expanded it without
  // cancelling too many digits (< 0: unknown, computed directly when wanted).
  double currentSquared = -1;
  outerGram(H, r, m, HHt);

  int it = 0;
  for (; it < o.maxIterations; ++it) {
    if (monitor.cancelled()) throwAborted();
    const bool due = recorder.due(it);
    if (due && o.certificateTolerance > 0 && certificate(team, P, V, W, H, ws) <= o.certificateTolerance) {
      run.stop = StopReason::GradMap;
      break;
    }
    const bool wantLoss = due || monitor.wantsProgress();
    double lossSquared = 0;
    if (wantLoss && currentSquared >= 0) {
      lossSquared = currentSquared;
    } else if (wantLoss && P.anyWeighted) {
      lossSquared = lossSquaredOf(team, P, V, W, H, lossWs);
    } else if (wantLoss) {
      // The expansion cancelled (a close fit): the residual itself, one product pass per run.
      lossSquared = directRunsResidualSquared(team, A, runs, {}, V, W, H, r, teamWs, runSums);
    }
    const double penaltyBefore = wantLoss && penalized ? penaltyValue() : 0.0;

    // A(s)Hᵀ of every stratum (one GEMM per run of dense strata).
    if (P.anySparse || P.anyWeighted) transposeInto(H, r, m, Ht);
    for (const Run& g0 : runs) {
      const DataMatrix& As = A[g0.first];
      double* aht = AHt + rowOffset[g0.first] * r;
      if (As.sparse()) dataTimes(As, Ht, r, 0.0, aht);
      else denseAHt(team, As.dense, g0.rows, m, H, r, aht);
    }
    // v(s) (exact: the same value however often it is repeated, so vScaling > 0 is one step and
    // vScaling 0 keeps v fixed, as it does for 'mu'), then the W(s) rows' linear terms.
    for (std::size_t s = 0; s < S; ++s) {
      const std::size_t n = A[s].rows;
      double* v = V + s * m;
      const EntryWeights* e = P.weighted(s);
      if (e) listedModel(*e, n, r, W[s], Ht, wh.data());
      if (o.vScaling > 0) {
        columnSumsOf(W[s], n, r, wsum);
        cblas_dgemv(CblasRowMajor, CblasTrans, asInt(r), asInt(m), 1.0, H, asInt(m), wsum, 1, 0.0, g, 1);
        const double* colSum = P.colSums[s].data();
        if (e) {
          // Weighted: v_j = argmin ½Σᵢωᵢⱼ(aᵢⱼ − v_j − (WH)ᵢⱼ)² + penalty, from the column sums of
          // ω, ωa and ω·WH (listedColumns); a column without observed entries keeps its v_j (any
          // value is optimal) unless l1 > 0 makes 0 the minimizer.
          const double b = P.base(s);
          double* weight = columns;
          double* model = columns + m;
          double* data = columns + 2 * m;
          listedColumns(*e, n, m, wh.data(), weight, model, data);
          for (std::size_t j = 0; j < m; ++j) {
            const double curvature = weight[j] + P.penaltyV.l2;
            const double numerator = colSum[j] + data[j] - b * g[j] - model[j] - P.penaltyV.l1;
            if (curvature > 1e-10 * static_cast<double>(n) * b && curvature > 0) v[j] = std::max(0.0, numerator / curvature);
            else if (P.penaltyV.l1 > 0) v[j] = 0;
          }
        } else {
          const double curvature = static_cast<double>(n) + P.penaltyV.l2;
          for (std::size_t j = 0; j < m; ++j) v[j] = std::max(0.0, (colSum[j] - g[j] - P.penaltyV.l1) / curvature);
        }
      }
      cblas_dgemv(CblasRowMajor, CblasNoTrans, asInt(r), asInt(m), 1.0, H, asInt(m), v, 1, 0.0, Hv, 1);
      double* p = AHt + rowOffset[s] * r;
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t c = 0; c < r; ++c) p[i * r + c] -= Hv[c];
    }
    // The rows of every W(s) on the team, each row on one thread: a weighted stratum's with its own
    // Gram b·HHᵀ + Σκhhᵀ (weightedSweepRow, the thread's buffers), the others by sweepRow.
    auto sweepW = [&](int t, std::size_t begin, std::size_t end) {
      RowBuffers& buf = teamBuffers[static_cast<std::size_t>(t)];
      std::size_t s = static_cast<std::size_t>(std::upper_bound(rowOffset.begin(), rowOffset.end(), begin) - rowOffset.begin()) - 1;
      for (std::size_t i = begin; i < end; ++i) {
        while (i >= rowOffset[s + 1]) ++s;
        const std::size_t row = i - rowOffset[s];
        const EntryWeights* e = P.weighted(s);
        if (!e) {
          sweepRow(W[s] + row * r, AHt + i * r, HHt, inverse.data(), r, P.rankOf(s), P.penaltyW.l1, P.penaltyW.l2, sweepsW);
          continue;
        }
        const std::size_t p0 = e->rowPtr[row], k = e->rowPtr[row + 1] - p0;
        const int32_t* cols = e->rowCol.data() + p0;
        const double* v = V + s * m;
        buf.fit(k, r);
        for (std::size_t q = 0; q < k; ++q) buf.data[q] = e->rowData[p0 + q] - v[cols[q]];
        const double b = P.base(s);
        weightedSweepRow(K, W[s] + row * r, Ht, cols, uniformKappa ? nullptr : e->rowKappa.data() + p0, kappa0, k, r,
                         P.rankOf(s), b, AHt + i * r, HHt, P.penaltyW, sweepsFor(m, r, b != 0.0 ? k : 0), buf);
      }
    };
    inverseCurvatures(HHt, r, P.penaltyW.l2, inverse.data());
    runRows(team, N, 1, sweepW);

    // H's columns: G = ΣₛW(s)ᵀW(s) and p = Σₛ(A(s) − 1v(s)ᵀ)ᵀW(s) of the new W(s) and v(s).
    std::fill(Qt, Qt + m * r, 0.0);
    std::fill(gramSum, gramSum + r * r, 0.0);
    for (const Run& g0 : runs) {
      const DataMatrix& As = A[g0.first];
      const double* Ws = W[g0.first];
      if (P.base(g0.first) == 0.0) continue;  // only its listed entries are observed (a run of its own)
      if (As.sparse()) dataTransposeTimes(As, Ws, r, 1.0, Qt);
      else denseAtW(team, As.dense, g0.rows, m, Ws, r, 1.0, Qt);
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, asInt(r), asInt(g0.rows), 1.0, Ws, asInt(r), 1.0, gramSum, asInt(r));
    }
    for (std::size_t i = 0; i < r; ++i)
      for (std::size_t j = 0; j < i; ++j) gramSum[i * r + j] = gramSum[j * r + i];
    double shiftTerms = 0;  // Σₛ ‖A(s)‖² − 2(1ᵀA(s))·v(s) + nₛ‖v(s)‖², for the loss below
    for (std::size_t s = 0; s < S; ++s) {
      const double* v = V + s * m;
      if (P.base(s) == 0.0) continue;
      columnSumsOf(W[s], A[s].rows, r, wsum);
      cblas_dger(CblasRowMajor, asInt(m), asInt(r), -1.0, v, 1, wsum, 1, Qt, asInt(r));
      shiftTerms += P.normA2[s] - 2.0 * dot(P.colSums[s].data(), v, m) + static_cast<double>(A[s].rows) * dot(v, v, m);
    }
    transposeInto(H, r, m, Ht);
    auto sweepH = [&](int, std::size_t begin, std::size_t end) {
      for (std::size_t j = begin; j < end; ++j)
        sweepRow(Ht + j * r, Qt + j * r, gramSum, inverse.data(), r, r, P.penaltyH.l1, P.penaltyH.l2, sweepsH);
    };
    if (!P.anyWeighted) {
      inverseCurvatures(gramSum, r, P.penaltyH.l2, inverse.data());
      runRows(team, m, 1, sweepH);
    } else {
      // Columns with their listed entries from every weighted stratum (rows of the stacked W), on
      // the team, each column on one thread.
      for (std::size_t s = 0; s < S; ++s)
        std::copy(W[s], W[s] + A[s].rows * r, stackedW.data() + rowOffset[s] * r);
      auto sweepWeightedH = [&](int t, std::size_t begin, std::size_t end) {
        RowBuffers& buf = teamBuffers[static_cast<std::size_t>(t)];
        for (std::size_t j = begin; j < end; ++j) {
          std::size_t k = 0, corrections = 0;  // listed entries, those of strata of base weight 1
          for (std::size_t s = 0; s < S; ++s)
            if (const EntryWeights* e = P.weighted(s)) {
              const std::size_t here = e->colPtr[j + 1] - e->colPtr[j];
              k += here;
              if (P.base(s) != 0.0) corrections += here;
            }
          buf.fit(k, r);
          if (buf.rows.size() < buf.data.size()) buf.rows.resize(buf.data.size()), buf.kappa.resize(buf.data.size());
          std::size_t q = 0;
          for (std::size_t s = 0; s < S; ++s) {
            const EntryWeights* e = P.weighted(s);
            if (!e) continue;
            const double vj = V[s * m + j];
            for (std::size_t p = e->colPtr[j]; p < e->colPtr[j + 1]; ++p, ++q) {
              buf.rows[q] = static_cast<int32_t>(rowOffset[s]) + e->colRow[p];
              if (!uniformKappa) buf.kappa[q] = e->colKappa[p];
              buf.data[q] = e->colData[p] - vj;
            }
          }
          weightedSweepRow(K, Ht + j * r, stackedW.data(), buf.rows.data(), uniformKappa ? nullptr : buf.kappa.data(),
                           kappa0, k, r, r, 1.0, Qt + j * r, gramSum, P.penaltyH, sweepsFor(N, r, corrections), buf);
        }
      };
      runRows(team, m, 1, sweepWeightedH);
    }
    transposeInto(Ht, m, r, H);
    outerGram(H, r, m, HHt);

    // The loss of the new iterate from the products just formed (r·m + r² flops):
    //   Σₛ‖A(s) − 1v(s)ᵀ − W(s)H‖² = shiftTerms − 2⟨p_H, Hᵀ⟩ + ⟨ΣₛW(s)ᵀW(s), HHᵀ⟩,
    // or unknown where that cancels too many digits (kCancellationRatio, as the expanded loss of 'mu').
    const double model = dot(gramSum, HHt, r * r);
    currentSquared = shiftTerms - 2.0 * dot(Qt, Ht, m * r) + model;
    // (weighted strata: the expansion is of the unweighted loss; their loss is evaluated when wanted)
    if (P.anyWeighted || !(currentSquared >= kCancellationRatio * (P.totalNorm2 + model))) currentSquared = -1;

    if (wantLoss && reportIteration(it, lossSquared, penaltyBefore, due, o, normA, recorder, monitor, run)) {
      ++it;  // this iteration's update is kept (it never raises the objective) and counted
      run.stop = StopReason::Plateau;
      break;
    }
  }
  finishRun(team, P, V, W, H, it, penalized ? penaltyValue() : 0.0, o, ws, run);
  return run;
}

}  // namespace

double stratifiedNmfRowListDoubles(double N, double m, double r, double threads) {
  // RowBuffers::fit's room for the longest list, max(m, N) entries (an H column meets every
  // stratum's rows): the gathered rows r·(room + 3) and the residuals room, each with 8 more for its
  // alignment, the data and κ room each, the rows' int32 indices room/2; curvature, cross and xold
  // (2.5r + 1).
  const double room = 1.5 * std::max(N, m) + 1;
  return threads * ((r + 3.5) * room + 5.5 * r + 17);
}

NmfRun stratifiedNmf(const std::vector<DataMatrix>& A, const StratifiedNmfOptions& o, double* V,
                     const std::vector<double*>& W, double* H, Monitor& monitor,
                     const std::vector<EntryWeights>* weights) {
  const std::size_t r = o.rank, m = A.front().cols;
  std::size_t N = 0;
  for (const DataMatrix& a : A) N += a.rows;
  // One thread team for the whole solve, sized by the solver's passes: MU's elementwise updates touch
  // (N + m)·r values, HALS's row sweeps make (N + m)·r² steps. With more than one thread the team also
  // splits the data products (denseAHt and the others), each thread's GEMM on one OpenBLAS thread:
  // OpenBLAS stays at one thread for the whole solve (`blas`), so that no OpenBLAS worker left spinning
  // after a threaded call takes a core from the team's helpers (ntf.cpp's PlainNtf, docs/threads.md).
  const bool hals = o.solver == StratifiedNmfSolver::Hals;
  RowTeam team(teamThreads(0, static_cast<double>(N + m) * static_cast<double>(hals ? r * r : r)));
  SingleThreadedBlas blas(team.size() > 1);
  Problem P(team, A, o.rank, weights);
  // Penalties: each multiplicative update adds its block's penalty gradient l1 + l2·x (≥ 0) to the
  // denominator (nmf.cpp's note above nmf() says why the updates stay monotone); with all of them 0
  // the additions are exact zeros and the solve is the unpenalized one bit for bit.
  P.penaltyV = o.penaltyV, P.penaltyW = o.penaltyW, P.penaltyH = o.penaltyH;
  const bool penalized = o.penalized();
  auto penaltyValue = [&]() {
    double sum = P.penaltyV.value(V, P.S * P.m) + P.penaltyH.value(H, o.rank * P.m);
    for (std::size_t s = 0; s < P.S; ++s) sum += P.penaltyW.value(W[s], A[s].rows * o.rank);
    return sum;
  };
  const std::size_t S = P.S;
  // Per-stratum ranks: the fixed coordinates start at 0, and the multiplicative updates keep them
  // there (0·num/(den + ε) = 0 with den + ε > 0), so the updates below apply unchanged.
  checkStratumRanks(o.stratumRanks, S, r);
  P.stratumRanks = o.stratumRanks;
  zeroFixedColumns(A, r, o.stratumRanks, W);
  if (hals) return stratifiedNmfHals(team, P, o, V, W, H, monitor);
  const double eps = o.epsilon;
  const std::vector<Run> runs = contiguousRuns(A, W, r);
  std::vector<std::size_t> rowOffset(S + 1, 0);
  for (std::size_t s = 0; s < S; ++s) rowOffset[s + 1] = rowOffset[s] + A[s].rows;

  Workspace ws;
  double* HHt = ws.get(kHHt, r * r);
  double* Ht = ws.get(kHt, m * r);
  double* AHt = ws.get(kAHt, N * r);    // all strata's A(s)Hᵀ, stacked
  double* WHHt = ws.get(kWHHt, N * r);  // all strata's W(s)HHᵀ, stacked
  double* gramSum = ws.get(kGramSum, r * r);
  double* num = ws.get(kNum, r * m);
  double* numT = ws.get(kNumT, m * r);
  double* den = ws.get(kDen, r * m);
  double* g = ws.get(kG, m);
  double* wsum = ws.get(kWsum, r);
  double* Hv = ws.get(kHv, r);
  double* vDen = ws.get(kVDen, m);
  ws.get(kResidual, 1);
  // Weighted strata: the listed entries' model values and parts of the products (see listedProducts).
  double* denT = P.anyWeighted ? ws.get(kDenT, m * r) : nullptr;
  double* columns = P.anyWeighted ? ws.get(kColumns, 3 * m) : nullptr;
  std::vector<double> wh(P.maxListed), numW, denW;

  // The elementwise updates of W(s) and H run on the thread team (entrywise: any split gives the same
  // bits), and so do the large data products (denseAHt, denseWtA: by rows or columns, the same bits)
  // and the direct loss (directRunsResidualSquared).
  std::vector<Workspace> teamWs(static_cast<std::size_t>(team.size()));
  std::vector<double> runSums;

  NmfRun run;
  run.trace.start();
  LossRecorder recorder(o.tolerance, o.lossEvery);
  const double normA = std::sqrt(P.totalNorm2);
  // Per run: whether its expanded loss has cancelled. The multiplicative updates do not raise the
  // loss (without penalties), so a fit that has become too close for the expansion stays so: from
  // then on the run's loss is taken directly, without first paying for the expansion (a quarter of
  // the direct pass's time at the paper's size, its dot products being latency-bound). Where the
  // loss does rise again (penalties), the direct value is only more accurate than needed.
  std::vector<char> expansionCancels(runs.size(), 0);
  // A run's data products A·Hᵀ and Wᵀ·A at the paper's size (400×100 by rank 5) cost OpenBLAS 0.3.21
  // 2.4× more as the transposed products (its packed TN path) than as plain ones on the transposed
  // factors, Hᵀ and Wᵀ (its small-matrix kernels, used up to about 10⁶ multiply-adds per product);
  // above that both forms take the regular path and the transposed one was as fast or faster
  // (4 strata × 500×300, rank 10: 1.1 vs 1.2–1.4 ms per iteration). Measured: docs/performance.md,
  // "Small problems".
  auto smallProducts = [&](const Run& g0) {
    return !A[g0.first].sparse() && static_cast<double>(g0.rows) * static_cast<double>(r) * static_cast<double>(m) <= 1e6;
  };
  // Below the same size and up to rank 8, a run's A(s)Hᵀ, W(s)ᵀA(s) and loss come from one pass over
  // its data instead (smallKernels; the BLAS products where that is off).
  const SmallKernels kernels = smallKernels();
  const auto dataPass = r >= 1 && r <= kDataPassMaxRank ? kernels.pass : nullptr;
  auto passRun = [&](const Run& g0) { return dataPass && smallProducts(g0); };
  bool anySmallRun = false;  // one that takes the BLAS small-matrix products
  for (const Run& g0 : runs) anySmallRun = anySmallRun || (smallProducts(g0) && !passRun(g0));
  if (anySmallRun) ws.get(kWt, N * r);  // sized once, before the loop
  std::vector<double> runLoss(runs.size(), 0.0);  // the data pass's loss per run
  std::vector<double> runPart;                    // each run's loss (expanded, or from the data pass)
  std::vector<char> direct;                       // the runs whose loss is taken directly

  int it = 0;
  for (; it < o.maxIterations; ++it) {
    if (monitor.cancelled()) throwAborted();
    const bool due = recorder.due(it);
    // certificate() uses workspaces that every iteration recomputes before reading them.
    if (due && o.certificateTolerance > 0 && certificate(team, P, V, W, H, ws) <= o.certificateTolerance) {
      run.stop = StopReason::GradMap;  // the returned factors are the certified ones: no update
      break;
    }
    const bool wantLoss = due || monitor.wantsProgress();
    double lossSquared = 0;
    const double penaltyBefore = wantLoss && penalized ? penaltyValue() : 0.0;  // of the iterate the loss is of

    // Products of the old W and H, shared by the V, W and H updates and the loss.
    outerGram(H, r, m, HHt);
    if (P.anySparse || P.anyWeighted || anySmallRun) transposeInto(H, r, m, Ht);
    if (P.anySparse || P.anyWeighted) std::fill(numT, numT + m * r, 0.0);
    if (denT) std::fill(denT, denT + m * r, 0.0);
    std::fill(num, num + r * m, 0.0);
    std::fill(den, den + r * m, 0.0);
    std::fill(gramSum, gramSum + r * r, 0.0);
    for (std::size_t k = 0; k < runs.size(); ++k) {
      const Run& g0 = runs[k];
      const DataMatrix& As = A[g0.first];
      const double* Ws = W[g0.first];
      double* aht = AHt + rowOffset[g0.first] * r;
      if (As.sparse()) {
        dataTimes(As, Ht, r, 0.0, aht);
        dataTransposeTimes(As, Ws, r, 1.0, numT);
      } else {
        if (passRun(g0)) {  // the products and the direct loss in one pass per stratum
          runLoss[k] = 0;
          for (std::size_t s = g0.first; s < g0.last; ++s)
            runLoss[k] += dataPass(r, wantLoss && P.base(s) != 0.0, A[s].dense, A[s].rows, m, V + s * m, W[s], H,
                                   AHt + rowOffset[s] * r, num);
        } else if (smallProducts(g0)) {  // both as plain products: OpenBLAS's small-matrix kernels
          // (Not split over the team: too small to pay for it, and a part could take another kernel.)
          double* Wt = ws.get(kWt, g0.rows * r);
          transposeInto(Ws, g0.rows, r, Wt);
          gemm(false, false, g0.rows, r, m, 1.0, As.dense, Ht, 0.0, aht);
          gemm(false, false, r, m, g0.rows, 1.0, Wt, As.dense, 1.0, num);
        } else {
          denseAHt(team, As.dense, g0.rows, m, H, r, aht);
          denseWtA(team, Ws, g0.rows, r, As.dense, m, 1.0, num);
        }
      }
      rowsTimesSquare(team, Ws, g0.rows, r, HHt, WHHt + rowOffset[g0.first] * r);
      if (P.base(g0.first) != 0.0)  // a stratum whose unlisted entries are missing is its own run
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, asInt(r), asInt(g0.rows), 1.0, Ws, asInt(r), 1.0,
                    gramSum, asInt(r));
    }
    for (std::size_t i = 0; i < r; ++i)
      for (std::size_t j = 0; j < i; ++j) gramSum[i * r + j] = gramSum[j * r + i];

    // The loss of the old iterate: expanded per stratum; a run with a stratum where that would
    // cancel is evaluated directly as a whole (those runs on the team, directRunsResidualSquared).
    // Each run's part is kept, then the parts are added in the runs' order.
    if (wantLoss) {
      runPart.assign(runs.size(), 0.0);
      direct.assign(runs.size(), 0);
      bool anyDirect = false;
      for (std::size_t k = 0; k < runs.size(); ++k) {
        const Run& g0 = runs[k];
        if (P.base(g0.first) == 0.0) continue;  // only its listed entries count (added below)
        if (passRun(g0)) {  // the direct loss, exact and nearly free in the data pass
          runPart[k] = runLoss[k];
          continue;
        }
        if (!expansionCancels[k]) {
          double expanded = 0;
          bool accurate = true;
          for (std::size_t s = g0.first; s < g0.last; ++s) {
            const std::size_t n = A[s].rows;
            double part;
            columnSumsOf(W[s], n, r, wsum);
            accurate = expandedLossSquared(P, s, V + s * m, W[s], H, AHt + rowOffset[s] * r,
                                           WHHt + rowOffset[s] * r, wsum, ws, &part) && accurate;
            expanded += part;
          }
          if (accurate) {
            runPart[k] = expanded;
            continue;
          }
          expansionCancels[k] = true;
        }
        direct[k] = 1;
        anyDirect = true;
      }
      if (anyDirect) directRunsResidualSquared(team, A, runs, direct, V, W, H, r, teamWs, runSums);
      for (std::size_t k = 0; k < runs.size(); ++k) lossSquared += direct[k] ? runSums[k] : runPart[k];
    }

    for (std::size_t s = 0; s < S; ++s) {
      const std::size_t n = A[s].rows;
      double* Ws = W[s];
      double* v = V + s * m;
      const double* colSum = P.colSums[s].data();
      const double* aht = AHt + rowOffset[s] * r;
      double* whht = WHHt + rowOffset[s] * r;

      columnSumsOf(Ws, n, r, wsum);

      // v(s) ← v(s) ∘ (1ᵀA) / (n·v(s) + Hᵀ(Wᵀ1) + ε), vScaling times with the old W and H.
      cblas_dgemv(CblasRowMajor, CblasTrans, asInt(r), asInt(m), 1.0, H, asInt(m), wsum, 1, 0.0, g, 1);
      if (const EntryWeights* e = P.weighted(s)) {
        // The same updates of the weighted objective, Lee–Seung's: each multiplies by the ratio of
        // the weighted data product to the weighted model product (listedColumns, listedProducts).
        const double b = P.base(s);
        listedModel(*e, n, r, Ws, Ht, wh.data());
        if (wantLoss) lossSquared += listedLossSquared(*e, v, wh.data());
        double* weight = columns;
        double* model = columns + m;
        double* data = columns + 2 * m;
        listedColumns(*e, n, m, wh.data(), weight, model, data);
        for (int pass = 0; pass < o.vScaling; ++pass)
          for (std::size_t j = 0; j < m; ++j)
            v[j] = v[j] * std::max(colSum[j] + data[j], 0.0) /
                   (std::max(v[j] * weight[j] + b * g[j] + model[j], 0.0) + P.penaltyV.l1 + P.penaltyV.l2 * v[j] + eps);
        cblas_dgemv(CblasRowMajor, CblasNoTrans, asInt(r), asInt(m), 1.0, H, asInt(m), v, 1, 0.0, Hv, 1);
        numW.assign(n * r, 0.0);
        denW.assign(n * r, 0.0);
        listedProducts(*e, n, r, v, Ws, Ht, wh.data(), numW.data(), denW.data(), numT, denT);  // old W(s)
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t c = 0; c < r; ++c) {
            const std::size_t k = i * r + c;
            Ws[k] = Ws[k] * std::max(aht[k] + numW[k], 0.0) /
                    (std::max(b * (whht[k] + Hv[c]) + denW[k], 0.0) + P.penaltyW.l1 + P.penaltyW.l2 * Ws[k] + eps);
          }
        if (b != 0.0) cblas_dger(CblasRowMajor, asInt(r), asInt(m), 1.0, wsum, 1, v, 1, den, asInt(m));
        continue;
      }
      const double rows = static_cast<double>(n);
      for (int pass = 0; pass < o.vScaling; ++pass) {
        for (std::size_t j = 0; j < m; ++j) vDen[j] = v[j] * rows + g[j] + P.penaltyV.l1 + P.penaltyV.l2 * v[j] + eps;
        kernels.ratio(v, colSum, vDen, m);
      }

      // W(s) ← W(s) ∘ A(s)Hᵀ / (W(s)HHᵀ + 1(Hv(s))ᵀ + ε), with the new v(s) (rows on the team).
      cblas_dgemv(CblasRowMajor, CblasNoTrans, asInt(r), asInt(m), 1.0, H, asInt(m), v, 1, 0.0, Hv, 1);
      // (The denominator replaces W(s)HHᵀ, which nothing reads after this update.)
      auto updateW = [&](int, std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
          for (std::size_t c = 0; c < r; ++c) {
            const std::size_t k = i * r + c;
            whht[k] = whht[k] + Hv[c] + P.penaltyW.l1 + P.penaltyW.l2 * Ws[k] + eps;
          }
        kernels.ratio(Ws + begin * r, aht + begin * r, whht + begin * r, (end - begin) * r);
      };
      runRows(team, n, 1, updateW);

      // H's denominator, first part: (W(s)ᵀ1) v(s)ᵀ with the old W(s) and the new v(s).
      cblas_dger(CblasRowMajor, asInt(r), asInt(m), 1.0, wsum, 1, v, 1, den, asInt(m));
    }

    // H ← H ∘ ΣW(s)ᵀA(s) / (Σ(W(s)ᵀ1)v(s)ᵀ + (ΣW(s)ᵀW(s))H + ε).
    if (P.anySparse || P.anyWeighted)
      for (std::size_t c = 0; c < r; ++c)
        for (std::size_t j = 0; j < m; ++j) num[c * m + j] += numT[j * r + c];
    gemm(false, false, r, m, r, 1.0, gramSum, H, 1.0, den);
    P.penaltyH.addGradient(H, r * m, 1.0, den);
    if (P.anyWeighted) {
      for (std::size_t c = 0; c < r; ++c)
        for (std::size_t j = 0; j < m; ++j) den[c * m + j] += denT[j * r + c];
      for (std::size_t i = 0; i < r * m; ++i) H[i] = H[i] * std::max(num[i], 0.0) / (std::max(den[i], 0.0) + eps);
    } else {
      auto updateH = [&](int, std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) den[i] += eps;
        kernels.ratio(H + begin, num + begin, den + begin, end - begin);
      };
      runRows(team, r * m, 1, updateH);
    }

    if (wantLoss && reportIteration(it, lossSquared, penaltyBefore, due, o, normA, recorder, monitor, run)) {
      ++it;  // this iteration's update is kept (it never raises the objective) and counted
      run.stop = StopReason::Plateau;
      break;
    }
  }
  finishRun(team, P, V, W, H, it, penalized ? penaltyValue() : 0.0, o, ws, run);
  return run;
}

}  // namespace nsa
