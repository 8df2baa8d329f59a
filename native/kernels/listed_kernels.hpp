// The inner loops over listed entries (entries whose weight differs from 1, nmf.hpp's EntryWeights):
// short products of one factor row x (length r) with the rows of the other factor that the entries
// of x's row or column meet, Y[idx[q]]. They are the masked solves' extra cost over the plain GEMMs
// (docs/missing-values.md, "How it is computed, and what it costs").
//
// Two versions of each: the portable loops (the x86-64 baseline, SSE2, that prebuilt binaries are
// compiled for), and 256-bit AVX + FMA ones chosen at run time where the CPU has them. They agree to
// rounding (FMA and a different order of the sums); NSA_FLOW_SIMD=0 in the environment selects the
// portable loops (for tests, and to reproduce results across CPUs).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nsa::listed {

// The part of a weighted row's problem besides its listed entries, for halsSweeps: with `base` the
// rest of the row has weight 1 and contributes P (r) − xG and G's diagonal (G symmetric, r×r); without,
// its weight is 0 (P and G unread). A penalty l1·x_c + ½·l2·x_c² adds l2 to each curvature and
// l1 + l2·x_c to each gradient. Only the first `free` coordinates move; the rest (0 in the solvers
// that fix them) stay. A coordinate whose curvature d (with l2) is at most rounding·G_cc (base), or
// at most 0, has none: it stays, or, with `penaltyZeroes`, goes to 0 where l1 > 0 and its slope is
// positive (its exact minimizer: the objective is then linear in it).
struct HalsRowTerms {
  bool base = true;
  const double* P = nullptr;
  const double* G = nullptr;
  double l1 = 0, l2 = 0;
  std::size_t free = 0;
  double rounding = 1e-12;
  bool penaltyZeroes = false;
};

// One row's arguments of cpHalsSweep that differ between rows (cpHalsSweepPair).
struct SweepRow {
  double* x;
  const double* kappa;
  std::size_t k;
  const double* P;
  double* curvature;
  double* cross;
  const double* Yc;
  double* e;
};

struct Kernels {
  // out[q] = x·Y[idx[q]], q < k.
  void (*dots)(const double* x, const double* Y, const int32_t* idx, std::size_t k, std::size_t r, double* out);
  // out += Σ_q coef[q]·Y[idx[q]] (entries with coef 0 are skipped).
  void (*gatherAxpy)(const double* coef, const double* Y, const int32_t* idx, std::size_t k, std::size_t r,
                     double* out);
  // out[idx[q]] += coef[q]·x (row idx[q] of out, length r; entries with coef 0 are skipped).
  void (*scatterAxpy)(const double* coef, const double* x, const int32_t* idx, std::size_t k, std::size_t r,
                      double* out);
  // dots and gatherAxpy in one pass over the rows: out += Σ_q kappa[q]·(c + x·Y[idx[q]])·Y[idx[q]]
  // (stratifiedNtf's weighted h blocks, by feature: x the h rows' product at a feature, c its own
  // term, Y the entry-major w(s)). The same sums in the same order as dots then gatherAxpy.
  void (*dotsAxpy)(const double* x, const double* Y, const int32_t* idx, const double* kappa, double c, std::size_t k,
                   std::size_t r, double* out);
  // One HALS row update, weightedHalsSweep's inner part (nmf.cpp): x (r) against the k listed rows
  // Y[idx[q]] with weights kappa (null: all kappa0) and data a (null: all 0); base: the rest of the
  // row has weight 1 and contributes P (r) − xG and G's diagonal (G symmetric); a penalty
  // l1·x_c + ½·l2·x_c² adds l2 to each curvature and l1 + l2·x_c to each gradient. Workspaces:
  // curvature (r), Yc (r·k), e (k).
  void (*halsRow)(double* x, const double* Y, const int32_t* idx, const double* kappa, double kappa0, const double* a,
                  std::size_t k, std::size_t r, bool base, const double* P, const double* G, double l1, double l2,
                  double* curvature, double* Yc, double* e);
  // The listed entries of a CP term (the tensor solvers' weighted HALS, ntf.cpp and
  // ntf_stratified_hals.cpp): entry q's multi-index is idx[q·stride + j], j < order, and rows[j] is
  // factor j entry-major (row i: its R values contiguous). halsRow with base and no penalty, in two
  // parts, so that a row's coordinates can be swept more than once over one gather: cpHalsGather
  // forms the entries' Khatri–Rao rows z_q = ⊙_j rows[j][idx_j] (R = r; order 0: all 1) straight into
  // the workspace Yc (r·⌈k/4⌉·4, laid out as the vector version's loops read it), the residuals
  // e = κ(a − x·z) (k) and the curvatures G_cc + Σκz_c² (r); cpHalsSweep then runs one sweep of the
  // r coordinates over them, and with `again` leaves e current (every step applied), so that it can
  // run again (without, the vector version skips the last steps' pass).
  // `first`: the first sweep after the gather, which leaves the curvatures G_cc + Σκz_c² in curvature
  // and the sums Σκz_c·z_{c+1} (c even) in cross (⌈r/2⌉); a later sweep over the same Yc and κ reads
  // them instead of summing them again (the vector version: 4 multiply-adds per four entries and two
  // coordinates instead of 7; the portable one takes its curvatures in the gather).
  void (*cpHalsGather)(const double* const* rows, std::size_t order, const int32_t* idx, std::size_t stride,
                       const double* x, const double* kappa, double kappa0, const double* a, std::size_t k,
                       std::size_t r, const double* G, double* curvature, double* Yc, double* e);
  void (*cpHalsSweep)(double* x, const double* kappa, double kappa0, std::size_t k, std::size_t r, const double* P,
                      const double* G, double* curvature, double* cross, const double* Yc, double* e, bool again,
                      bool first);
  // A row's HALS update by repeated sweeps (stratifiedNmf's weighted rows and columns): the gather of
  // cpHalsGather for a term of order 1 (the listed rows Y[idx[q]], Y with rows of r values; the
  // residuals e = κ(a − x·y)), then up to maxSweeps sweeps of cpHalsSweep's over the coordinates
  // c < t.free (the others stay), with t's base part, penalty and curvature rule, each later sweep
  // reading the curvatures and cross sums the first took. Sweeps stop after one that lowers the row
  // objective, Σ_c (curvature_c + l2)·step_c² (curvatures below 0 counted as 0), by at most 1e-4 of
  // what the first lowered (Gillis and Glineur's rule). Returns the number of sweeps made.
  // Workspaces: curvature and xold (r), cross (⌈r/2⌉), Yc (r·⌈k/4⌉·4), e (k).
  int (*halsSweeps)(double* x, const double* Y, const int32_t* idx, const double* kappa, double kappa0,
                    const double* a, std::size_t k, std::size_t r, const HalsRowTerms& t, int maxSweeps,
                    double* curvature, double* cross, double* xold, double* Yc, double* e);
  // cpHalsSweep on two rows (the same r, G, kappa0, again and first): the same steps, bit for bit, as
  // two calls. The vector version runs the two rows' coordinate loops pair of coordinates by pair in
  // turn, so that the passes of one row run while the other's steps wait on its last pass: a row
  // of ~100 entries is bound by that chain of one pass, two steps (each a division and a dot with
  // a row of G) and the next pass, not by its multiply-adds.
  void (*cpHalsSweepPair)(const SweepRow& a, const SweepRow& b, double kappa0, std::size_t r, const double* G,
                          bool again, bool first);
  // out[q] = Σ_a Π_j rows[j][idx_j][a], the term's value at entry q.
  void (*cpValues)(const double* const* rows, std::size_t order, std::size_t R, const int32_t* idx, std::size_t stride,
                   std::size_t k, double* out);
  // One mode's listed sums (ntf's weighted MU and its certificate), the entries grouped by their index
  // i in mode `skip`: group i is entries start[i] … start[i + 1] − 1, entry q's indices in the other
  // modes are others[q·(order − 1) + j] (j < order − 1, in mode order), kappa and a are per entry in
  // group order (kappa null: all kappa0; a null: all data 0). With z = ⊙_{j≠skip} rows[j][idx_j] and
  // model = z·rows[skip][i], for i in [begin, end) row i of den (entry-major, d × R) is set to
  // Σ_group κ·model·z and, when a is given, row i of num to Σ_group κa·z (entries with a = 0
  // skipped); each sum starts from 0 and takes the group's entries in order, so a row's value does not
  // depend on the range it is summed in (rows may be split over threads). A row is summed in registers
  // (a list in entry order adds to scattered rows, each addition waiting on the previous one's store).
  // skip < order. Workspace z (R).
  void (*cpGroupSums)(const double* const* rows, std::size_t order, std::size_t R, const int32_t* others,
                      const std::size_t* start, std::size_t begin, std::size_t end, std::size_t skip,
                      const double* kappa, double kappa0, const double* a, double* num, double* den, double* z);
  bool vectorized;
};

// What a sweep lowered a row's objective by (twice): Σ_c (d_c + l2)·step_c² over the first `free`
// coordinates, d_c + l2 below 0 counted as 0 (a coordinate without curvature that moved).
inline double sweepDecrease(const double* x, const double* xold, const double* curvature, std::size_t free, double l2) {
  double lowered = 0;
  for (std::size_t c = 0; c < free; ++c) {
    const double step = x[c] - xold[c];
    lowered += std::max(curvature[c] + l2, 0.0) * step * step;
  }
  return lowered;
}

// halsSweeps' ratio: Gillis and Glineur's rule.
constexpr double kGillisGlineurStop = 1e-4;

// The repeated sweeps of one row, around `sweep(i, last)` (sweep i, 0-based; `last`: none follows),
// at most maxSweeps: they stop after a sweep that lowered nothing, or after a later sweep that lowered
// the objective (sweepDecrease, from x's first `free` values before it, kept in xold) by at most
// `stop` times what the first did. Returns the sweeps made. (The curvatures are read after each
// sweep: the vector sweeps take them in their first pass.)
template <class Sweep>
inline int repeatSweeps(double* x, double* xold, const double* curvature, std::size_t free, double l2, double stop,
                        int maxSweeps, Sweep sweep) {
  double first = 0;
  int sweeps = 0;
  while (sweeps < maxSweeps) {
    std::copy(x, x + free, xold);
    sweep(sweeps, sweeps + 1 == maxSweeps);
    const double lowered = sweepDecrease(x, xold, curvature, free, l2);
    if (sweeps++ == 0) {
      first = lowered;
      if (!(lowered > 0)) break;
    } else if (lowered <= stop * first) {
      break;
    }
  }
  return sweeps;
}

// The kernels for this CPU and environment (NSA_FLOW_SIMD=0: the portable ones); read once per call
// of a solver's top-level function, as the environment may change between calls.
const Kernels& kernels();

}  // namespace nsa::listed
