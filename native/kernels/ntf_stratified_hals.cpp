#include "ntf_stratified_hals.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "error.hpp"
#include "linalg.hpp"
#include "listed_kernels.hpp"
#include "thread_team.hpp"

namespace nsa {

namespace {

using Vec = std::vector<double>;

double dotOf(const double* x, const double* y, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += x[i] * y[i];
  return s;
}

// Hadamard product of mats[k] (all of mn entries) over k ≠ skip (ones if none remain).
void hadamardAllBut(const std::vector<const double*>& mats, std::size_t skip, std::size_t mn, double* out) {
  std::fill(out, out + mn, 1.0);
  for (std::size_t k = 0; k < mats.size(); ++k)
    if (k != skip)
      for (std::size_t i = 0; i < mn; ++i) out[i] *= mats[k][i];
}

// Columns per chunk of a block sweep. A chunk is the unit of the inner-sweep stopping rule, so the
// chunks (and with them every result) are the same whatever the number of threads.
constexpr std::size_t kChunk = 64;
// Inner sweeps stop when a sweep lowers the objective by at most this fraction of what the first sweep
// lowered it (each coordinate step lowers it by ½Q[a,a]·step², whatever the scale of the row; Gillis
// and Glineur's accelerated HALS (2012) measure the step's norm instead, which is not scale-free).
constexpr double kInnerStop = 0.1;
constexpr int kMaxInnerSweeps = 10;
// The weighted sweeps take two columns together (cpHalsSweepPair) when each has at most this many
// Khatri–Rao row values (items × R; 32 kB): such a column's sweep is bound by the chain from one
// pass to the next through the steps, which the other column's passes then fill. A longer column's
// passes are bound by their loads and multiply-adds, and two such columns' rows would no longer stay
// in the caches together (an h column here: 5000 entries, 800 kB).
constexpr std::size_t kPairedRows = 4096;

// Exact non-negative coordinate minimization of f(X) = ½ tr(XᵀQX) − tr(PᵀX) over X ≥ 0, X R × d
// rank-major, Q (R × R) positive semidefinite: component row a ← max(0, row a + (P − QX)[a]/Q[a,a])
// in order, repeated up to `sweeps` times per chunk of columns (the columns are independent: f is a
// sum over them). A row with Q[a,a] ≤ 0 (a component that no data meets) stays.
void sweepChunk(double* X, const double* P, const double* Q, std::size_t R, std::size_t d, std::size_t c0,
                std::size_t c1, int sweeps) {
  double acc[kChunk];
  const std::size_t w = c1 - c0;
  double first = 0;
  for (int sweep = 0; sweep < sweeps; ++sweep) {
    double moved = 0;
    for (std::size_t a = 0; a < R; ++a) {
      const double qaa = Q[a * R + a];
      if (!(qaa > 0)) continue;
      const double* p = P + a * d + c0;
      for (std::size_t j = 0; j < w; ++j) acc[j] = p[j];
      for (std::size_t b = 0; b < R; ++b) {
        const double q = Q[a * R + b];
        const double* x = X + b * d + c0;
        for (std::size_t j = 0; j < w; ++j) acc[j] -= q * x[j];
      }
      double* x = X + a * d + c0;
      const double inv = 1.0 / qaa;
      for (std::size_t j = 0; j < w; ++j) {
        const double next = std::max(0.0, x[j] + acc[j] * inv);
        moved += qaa * (next - x[j]) * (next - x[j]);
        x[j] = next;
      }
    }
    if (sweep == 0) first = moved;
    if (moved <= kInnerStop * first) break;
  }
}

// Rescales the rows rows[k] (lengths len[k], k < count) of one rank-one term by powers of two whose
// product is 1, so that their norms agree within a factor 2 (the term, a product of one entry of each,
// is unchanged bit for bit: a power-of-two scale is exact). Coordinate descent crawls along the
// directions that trade the scale of one factor for another's; balanced factors keep it off them.
// A term with a zero row is left as it is.
void balanceTerm(double* const* rows, const std::size_t* len, std::size_t count) {
  double logs[kMaxTensorOrder + 1];
  double mean = 0;
  for (std::size_t k = 0; k < count; ++k) {
    double n2 = 0;
    for (std::size_t j = 0; j < len[k]; ++j) n2 += rows[k][j] * rows[k][j];
    if (!(n2 > 0) || !std::isfinite(n2)) return;
    logs[k] = 0.5 * std::log2(n2);
    mean += logs[k] / static_cast<double>(count);
  }
  int total = 0;
  for (std::size_t k = 0; k < count; ++k) {
    const int e = k + 1 < count ? static_cast<int>(std::lround(mean - logs[k])) : -total;
    total += e;
    if (e == 0) continue;
    const double c = std::ldexp(1.0, e);
    for (std::size_t j = 0; j < len[k]; ++j) rows[k][j] *= c;
  }
}

}  // namespace

struct StratifiedNtfHals::Impl {
  const StratifiedNtfProblem& p;
  const StratifiedNtfOptions& o;
  StratifiedNtfState& st;
  std::size_t S, K, r, F = 0, dmax = 0, qmax = 0, nmax = 0;
  double normA2 = 0;
  Vec normsA;  // ‖A(s)‖² per stratum
  std::vector<Vec> sumA, VV, VH, HH, WW, wsum;
  std::vector<std::vector<const double*>> vvPtr, vhPtr;
  std::vector<const double*> hhPtr;
  Vec innerV, wrow;
  // Entry weights (ntf.hpp's TensorEntryWeights): per stratum its listed entries (null: none),
  // numbered together (entry k of stratum s is entry base[s] + k). A block's columns meet disjoint
  // sets of entries: grouped by column once per solve (ListedGroups), each group with the indices
  // its Khatri–Rao rows read, which the weighted sweeps form from entry-major copies of the factors
  // (the R values of one index contiguous; refreshed after each block's update) with
  // listed::Kernels::cpHalsGather and sweep with cpHalsSweep, as ntf's weighted HALS. Each entry's
  // target is its data less the term that stays fixed while the block updates: the own term for w
  // and h, the topic term for v.
  std::vector<const TensorEntryWeights*> listed;
  bool anyListed = false;
  std::size_t listedTotal = 0;  // Σₛ listed entries
  std::vector<std::size_t> base;
  Vec lessTopics;  // per entry, all strata: a − topic term
  bool uniformKappa = true;  // every κ is kappa0 (a mask's −1)
  double kappa0 = 0;
  // The listed features (those with listed entries) of every stratum, numbered together: stratum s's
  // are slots featureBase[s] … featureBase[s + 1] − 1, in feature order. The own term ⊗ₜ v(s)ₜ takes
  // one value per feature, computed per slot (`ownTerm`, after the v sweeps; the w and h sweeps' targets
  // are a − ownTerm[slot], formed as their groups are read, so that these read their data in group order
  // and ownTerm from a table of the listed features instead of a per-entry array in entry order). And an
  // entry's Khatri–Rao row in a v block, ⊙_{k≠t} v(s)ₖ[fₖ], depends on its feature only, so the v
  // sweeps take each feature's entries as one item: κ_f = Σκ and residual Σκ(target − z·x) =
  // Σκ·target − κ_f·z·x (the same objective, summed over features instead of entries), with
  // featureKappa (per solve) and featureTargets, Σκ·(a − topic term) (per iteration, with the topic
  // values, which the v sweeps leave fixed).
  std::vector<std::size_t> featureBase;  // S + 1
  std::vector<int32_t> featureIndex;  // per slot its K feature indices
  std::vector<int32_t> entrySlot;     // per entry its feature's slot
  Vec featureKappa, featureTargets, ownTerm;  // per slot
  // weightedHals Surrogate: the items' targets (and the v blocks' κ) in group order, as
  // listed::Kernels::cpGroupSums reads them: the w and h blocks' per entry (stratum s's w block at
  // base[s] …), the v blocks' per slot (stratum s's at featureBase[s] …).
  bool surrogate = false;
  Vec entryTargets, slotTargets, slotKappa;
  std::vector<std::size_t> featureStride;  // feature f = Σₖ fₖ·featureStride[k] (C order over dims)
  // The items of a block grouped by its column: group j is items start[j] … start[j + 1] − 1, `index`
  // (stride per item) the indices their Khatri–Rao rows read, `slot` their features' slots. The w
  // and h groups' items are entries, with their data a and κ (kappa empty when uniformKappa); the v
  // groups' are listed features.
  struct ListedGroups {
    std::vector<std::size_t> start;
    std::vector<int32_t> slot, index;
    Vec data, kappa;
    std::size_t stride = 0;
  };
  // [s][t]: columns of v(s)ₜ, by listed feature; the other feature modes' indices.
  std::vector<std::vector<ListedGroups>> vGroups;
  std::vector<ListedGroups> wGroups;  // [s]: columns (samples) of w(s); the K feature indices
  std::vector<ListedGroups> hGroups;  // [t]: columns of hₜ, all strata; the sample (in wRows) and the other feature modes'
  std::vector<std::vector<Vec>> vRows;  // entry-major v(s)ₜ (dₜ × qₛ)
  Vec wRows;                            // entry-major w(s) of all strata (Σnₛ × r), stratum s from row wBase[s]
  std::vector<std::size_t> wBase;
  std::vector<Vec> hRows;  // entry-major hₜ (dₜ × r)
  // One thread's scratch (the strata are spread over the team: see stratifiedNtfThreads, ntf.hpp;
  // thread 0's also serves the h updates).
  struct Scratch {
    Vec M, P, Q, E;  // one block's MTTKRP, linear term, curvature; Hadamard scratch
    Vec Zone, bufA, bufB;  // one stratum's Z (without the cache); contraction slices
    Workspace ws;
    // One column's scratch: its Khatri–Rao rows (listed::cpHalsGather's layout), κ, a − fixed term,
    // residuals; the column of X, before a sweep (xold), of P, the curvatures (curv) and the cross
    // sums Σκz_a·z_{a+1}, a even (curvPairs), that the first sweep leaves for the later ones
    // (listed::Kernels::cpHalsSweep); `first`, what its first sweep lowered the objective by.
    // Yc and resid lie on cache lines (cacheAligned), in ycStorage and residStorage.
    struct Column {
      Vec ycStorage, kap, target, residStorage, xc, xold, Pc, curv, curvPairs;
      double *Yc = nullptr, *resid = nullptr;
      const double* kappa = nullptr;  // κ of its items (null: all kappa0)
      std::size_t j = 0, k = 0;  // the column, its items
      double first = 0;
      bool active = false;  // its sweeps go on
    };
    Column col[2];  // two columns swept together (weightedBlock)
    Vec num, den, z;  // the surrogate's listed sums (entry-major, D × R) and one item's Khatri–Rao row
  };
  bool cacheZ = false;
  std::vector<Vec> Zall;
  Vec G, Msum;  // Hadamard scratch; Σₛ MTTKRPs
  Vec decrease;  // sweepOnTeam's per-step decreases (R × d)
  // Per stratum, the parts of an hₜ update: its MTTKRP (r × dₜ at s·r·dₜ) and diag(Σᵢ w)(⊙ₖ≠ₜ HₖV(s)ₖᵀ)
  // (r × qₛ at s·r·qmax). Left unset by the constructor: the strata's pass writes them first.
  std::unique_ptr<double[]> hM, hE;
  std::unique_ptr<RowTeam> team;
  RowTeam alone{1};
  bool spread = false;  // the strata spread over the team (then OpenBLAS on one thread: blas)
  std::unique_ptr<SingleThreadedBlas> blas;
  std::vector<Scratch> perThread;
  double work = 0;  // flops of a pass over the strata' data at rank r
  std::size_t scratch = 0;

  Impl(const StratifiedNtfProblem& p_, const StratifiedNtfOptions& o_, StratifiedNtfState& st_)
      : p(p_), o(o_), st(st_), S(p_.strata.size()), K(p_.dims.size()), r(o_.rank) {
    if (o.tv)
      throwRange("Expected options.solver 'mu' with options.tv (the TV term's split subgradient defines only the multiplicative updates) but received 'hals'");
    F = shapeSize(p.dims);
    std::size_t sumN = 0;
    for (std::size_t n : p.samples) sumN += n;
    for (std::size_t d : p.dims) dmax = std::max(dmax, d);
    for (std::size_t q : o.strataRank) qmax = std::max(qmax, q);
    for (std::size_t n : p.samples) nmax = std::max(nmax, n);
    const std::size_t R = std::max(r, qmax), D = std::max(dmax, nmax);
    // The team: the strata spread over it (stratifiedNtfThreads), or, one stratum or a small job
    // aside, the sweeps of a block large enough (by columns, OpenBLAS keeping its own threads).
    const int strataThreads = stratifiedNtfThreads(p, o);
    spread = strataThreads > 1;
    team = std::make_unique<RowTeam>(std::max(strataThreads, teamThreads(0, static_cast<double>(R * R * D), 20000)));
    blas = std::make_unique<SingleThreadedBlas>(spread);
    perThread.resize(static_cast<std::size_t>(spread ? team->size() : 1));
    for (std::size_t n : p.samples) work += 2.0 * static_cast<double>(n * F * r);
    // Per stratum: Σᵢ A(s)[i] and ‖A(s)‖² (summed in stratum order below).
    sumA.resize(S);
    normsA.resize(S);
    eachStratum(work, [&](std::size_t s, Scratch&) {
      const std::size_t n = p.samples[s];
      const double* A = p.strata[s];
      sumA[s].assign(F, 0.0);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < F; ++j) sumA[s][j] += A[i * F + j];
      normsA[s] = squaredNorm(A, n * F);
    });
    for (std::size_t s = 0; s < S; ++s) normA2 += normsA[s];
    VV.resize(S * K);
    VH.resize(S * K);
    vvPtr.resize(S);
    vhPtr.resize(S);
    for (std::size_t s = 0; s < S; ++s) {
      const std::size_t q = o.strataRank[s];
      for (std::size_t t = 0; t < K; ++t) {
        VV[s * K + t].resize(q * q);
        VH[s * K + t].resize(q * r);
      }
      for (std::size_t t = 0; t < K; ++t) {
        vvPtr[s].push_back(VV[s * K + t].data());
        vhPtr[s].push_back(VH[s * K + t].data());
      }
    }
    HH.assign(K, Vec(r * r));
    for (std::size_t t = 0; t < K; ++t) hhPtr.push_back(HH[t].data());
    WW.assign(S, Vec(r * r));
    wsum.assign(S, Vec(r));
    innerV.assign(S, 0.0);
    for (Scratch& x : perThread) {
      x.M.resize(R * D);
      x.P.resize(R * D);
      x.Q.resize(R * R);
      x.E.resize(R * R);
    }
    Msum.resize(r * dmax);
    G.resize(R * R);
    hM.reset(new double[S * r * dmax]);
    hE.reset(new double[S * r * qmax]);
    listed.assign(S, nullptr);
    base.assign(S, 0);
    std::vector<std::size_t> strata;  // those with listed entries
    for (std::size_t s = 0; s < S && p.weighted(); ++s) {
      if (s >= p.weights.size() || !p.weights[s].active()) continue;
      listed[s] = &p.weights[s];
      base[s] = listedTotal;
      listedTotal += p.weights[s].size();
      strata.push_back(s);
    }
    anyListed = !strata.empty();
    surrogate = anyListed && o.weightedHals == WeightedHals::Surrogate;
    if (anyListed) buildListed(strata);
    cacheZ = true;
    for (std::size_t n : p.samples) cacheZ = cacheZ && r <= n;
    if (cacheZ) {
      Zall.resize(S);  // each Z(s) allocated (and first written) by the thread that computes it
      scratch += S * r * F;
    }
    std::size_t slice = 1;
    for (std::size_t t = 0; t < K; ++t) slice = std::max(slice, contractionScratch(p.dims.data(), K, t));
    Shape full(p.dims);
    full.insert(full.begin(), nmax);
    std::size_t mttkrp = 0;
    for (std::size_t m = 0; m <= K; ++m) mttkrp = std::max(mttkrp, mttkrpScratch(full, r, m));
    for (std::size_t t = 0; t < K; ++t) mttkrp = std::max(mttkrp, mttkrpScratch(p.dims, qmax, t));
    for (Scratch& x : perThread) {
      if (!cacheZ) x.Zone.resize(r * F);
      x.bufA.resize(slice);
      x.bufB.resize(slice);
      scratch += x.Zone.size() + 2 * slice + 2 * R * D + 2 * R * R + mttkrp;
    }
    scratch += sumN + S * F + S * K * (qmax * qmax + qmax * r) + (K + S) * r * r + S * r + S + r * dmax + R * R +
               S * r * (dmax + qmax);
  }

  double* v(std::size_t s, std::size_t t) { return st.v[s * K + t].data(); }

  // The weighted solve's lists, copies and scratch (constructor): entries numbered across strata,
  // grouped per block, the entry-major copies, and the topic values at the initial state.
  void buildListed(const std::vector<std::size_t>& strata) {
    lessTopics.resize(listedTotal);
    kappa0 = listed[strata[0]]->kappa[0];
    for (std::size_t s : strata)
      for (double k : listed[s]->kappa) uniformKappa = uniformKappa && k == kappa0;
    wBase.assign(S + 1, 0);
    for (std::size_t s = 0; s < S; ++s) wBase[s + 1] = wBase[s] + p.samples[s];
    std::size_t column = 0;  // the most listed items one column of a block meets
    vGroups.assign(S, std::vector<ListedGroups>(K));
    wGroups.resize(S);
    hGroups.resize(K);
    featureStride.assign(K, 1);
    for (std::size_t t = K - 1; t > 0; --t) featureStride[t - 1] = featureStride[t] * p.dims[t];
    featureBase.assign(S + 1, 0);
    entrySlot.resize(listedTotal);
    std::vector<int32_t> slotOf(F);
    for (std::size_t s = 0; s < S; ++s) {
      featureBase[s + 1] = featureBase[s];
      if (!listed[s]) continue;
      const TensorEntryWeights& e = *listed[s];
      std::fill(slotOf.begin(), slotOf.end(), -1);
      for (std::size_t k = 0; k < e.size(); ++k) slotOf[featureOf(e.index.data() + k * (K + 1))] = 0;
      for (std::size_t f = 0; f < F; ++f) {
        if (slotOf[f] < 0) continue;
        slotOf[f] = static_cast<int32_t>(featureBase[s + 1]++);
        for (std::size_t m = 0; m < K; ++m) featureIndex.push_back(static_cast<int32_t>(f / featureStride[m] % p.dims[m]));
      }
      for (std::size_t k = 0; k < e.size(); ++k) entrySlot[base[s] + k] = slotOf[featureOf(e.index.data() + k * (K + 1))];
    }
    const std::size_t slots = featureBase[S];
    featureKappa.assign(slots, 0.0);
    featureTargets.assign(slots, 0.0);
    ownTerm.assign(slots, 0.0);
    for (std::size_t s : strata) {
      const TensorEntryWeights& e = *listed[s];
      for (std::size_t k = 0; k < e.size(); ++k) featureKappa[static_cast<std::size_t>(entrySlot[base[s] + k])] += e.kappa[k];
      for (std::size_t t = 0; t < K; ++t) column = std::max(column, groupFeatures(vGroups[s][t], s, t));
    }
    std::vector<std::size_t> otherFeatures;
    for (std::size_t t = 0; t < K; ++t) {
      otherFeatures.clear();
      for (std::size_t m = 0; m < K; ++m)
        if (m != t) otherFeatures.push_back(m + 1);
      otherFeatures.insert(otherFeatures.begin(), 0);
      column = std::max(column, group(hGroups[t], strata, t + 1, p.dims[t], otherFeatures));
    }
    std::vector<std::size_t> features;
    for (std::size_t m = 0; m < K; ++m) features.push_back(m + 1);
    for (std::size_t s : strata) column = std::max(column, group(wGroups[s], {s}, 0, p.samples[s], features));
    vRows.assign(S, std::vector<Vec>(K));
    std::size_t sumD = 0;
    for (std::size_t d : p.dims) sumD += d;
    for (std::size_t s : strata)
      for (std::size_t t = 0; t < K; ++t) vRows[s][t].resize(p.dims[t] * o.strataRank[s]);
    wRows.resize(wBase[S] * r);
    hRows.resize(K);
    for (std::size_t t = 0; t < K; ++t) hRows[t].resize(p.dims[t] * r);
    const std::size_t R = std::max(r, qmax);
    for (Scratch& x : perThread) {
      // The second column only ever holds a paired one: k·R' ≤ kPairedRows (R' ≤ R the block's rank).
      for (Scratch::Column& c : x.col) {
        const bool second = &c == &x.col[1];
        const std::size_t items = second ? std::min(column, kPairedRows) : column;
        c.Yc = cacheAligned(c.ycStorage, second ? std::min((column + 3) / 4 * 4 * R, kPairedRows + 3 * R)
                                                : (column + 3) / 4 * 4 * R);
        c.resid = cacheAligned(c.residStorage, items);
        for (Vec* b : {&c.kap, &c.target}) b->resize(items);
        for (Vec* b : {&c.xc, &c.xold, &c.Pc, &c.curv}) b->resize(R);
        c.curvPairs.resize((R + 1) / 2);
        scratch += c.ycStorage.size() + 3 * items + 7 + 4 * R + c.curvPairs.size();
      }
      if (surrogate) {
        x.num.resize(std::max(dmax, nmax) * R);
        x.den.resize(std::max(dmax, nmax) * R);
        x.z.resize(R);
        scratch += 2 * std::max(dmax, nmax) * R + R;
      }
    }
    if (surrogate) {
      entryTargets.resize(listedTotal);
      slotTargets.resize(slots);
      slotKappa.resize(slots);
      scratch += listedTotal + 2 * slots;
    }
    // Per entry: its topic value and slot, and in the w group and each h group its data, κ (unless
    // uniform) and K + 1 indices (its slot and K in the rows); per slot 3 doubles and K + K² indices
    // (its own and, in the v groups, its slot and K − 1 in the rows); per column a start; the copies;
    // the column scratch (above).
    scratch += listedTotal * (3 + (K + 1) * ((uniformKappa ? 3 : 5) + K)) / 2 + slots * (6 + K + K * K) / 2 +
               strata.size() * (K * dmax + nmax) + K * dmax + strata.size() * qmax * sumD + (wBase[S] + sumD) * r;
    refreshAllRows();
    for (std::size_t s : strata) topicValues(s);
  }

  // g: the entries of `which` grouped by their index at place `by` of the multi-index (columns
  // groups, each in stratum and entry order), each with its indices at `places` (place 0, the
  // sample, as a row of wRows). Returns the largest group's size.
  std::size_t group(ListedGroups& g, const std::vector<std::size_t>& which, std::size_t by, std::size_t columns,
                    const std::vector<std::size_t>& places) {
    const std::size_t stride = K + 1;
    g.stride = places.size();
    g.start.assign(columns + 1, 0);
    for (std::size_t s : which)
      for (std::size_t k = 0; k < listed[s]->size(); ++k) ++g.start[static_cast<std::size_t>(listed[s]->index[k * stride + by]) + 1];
    std::size_t largest = 0;
    for (std::size_t j = 0; j < columns; ++j) {
      largest = std::max(largest, g.start[j + 1]);
      g.start[j + 1] += g.start[j];
    }
    g.slot.resize(g.start[columns]);
    g.data.resize(g.start[columns]);
    if (!uniformKappa) g.kappa.resize(g.start[columns]);
    g.index.resize(g.start[columns] * g.stride);
    std::vector<std::size_t> next(g.start.begin(), g.start.end() - 1);
    for (std::size_t s : which)
      for (std::size_t k = 0; k < listed[s]->size(); ++k) {
        const int32_t* idx = listed[s]->index.data() + k * stride;
        const std::size_t to = next[static_cast<std::size_t>(idx[by])]++;
        g.slot[to] = entrySlot[base[s] + k];
        g.data[to] = listed[s]->data[k];
        if (!uniformKappa) g.kappa[to] = listed[s]->kappa[k];
        for (std::size_t l = 0; l < places.size(); ++l)
          g.index[to * g.stride + l] = places[l] == 0 ? static_cast<int32_t>(wBase[s] + static_cast<std::size_t>(idx[0])) : idx[places[l]];
      }
    return largest;
  }

  // The feature (0 … F − 1) of a multi-index (sample, f₁, …, f_K).
  std::size_t featureOf(const int32_t* idx) const {
    std::size_t f = 0;
    for (std::size_t m = 0; m < K; ++m) f += static_cast<std::size_t>(idx[m + 1]) * featureStride[m];
    return f;
  }

  // g: stratum s's listed features (slots) grouped by fₜ (in slot order), each with its indices in
  // the other feature modes. Returns the largest group's size.
  std::size_t groupFeatures(ListedGroups& g, std::size_t s, std::size_t t) {
    const std::size_t d = p.dims[t], s0 = featureBase[s], s1 = featureBase[s + 1];
    const int32_t* fi = featureIndex.data();
    g.stride = K - 1;
    g.start.assign(d + 1, 0);
    for (std::size_t l = s0; l < s1; ++l) ++g.start[static_cast<std::size_t>(fi[l * K + t]) + 1];
    std::size_t largest = 0;
    for (std::size_t j = 0; j < d; ++j) {
      largest = std::max(largest, g.start[j + 1]);
      g.start[j + 1] += g.start[j];
    }
    g.slot.resize(g.start[d]);
    g.index.resize(g.start[d] * g.stride);
    std::vector<std::size_t> next(g.start.begin(), g.start.end() - 1);
    for (std::size_t l = s0; l < s1; ++l) {
      const std::size_t to = next[static_cast<std::size_t>(fi[l * K + t])]++;
      g.slot[to] = static_cast<int32_t>(l);
      for (std::size_t m = 0, at = 0; m < K; ++m)
        if (m != t) g.index[to * g.stride + at++] = fi[l * K + m];
    }
    return largest;
  }

  // Entry-major copies of the factors the weighted sweeps read (X: R × d rank-major → d × R).
  static void entryMajor(const double* X, std::size_t R, std::size_t d, double* out) {
    for (std::size_t a = 0; a < R; ++a)
      for (std::size_t j = 0; j < d; ++j) out[j * R + a] = X[a * d + j];
  }
  void refreshRowsV(std::size_t s, std::size_t t) {
    if (listed[s]) entryMajor(v(s, t), o.strataRank[s], p.dims[t], vRows[s][t].data());
  }
  void refreshRowsW(std::size_t s) {
    if (anyListed) entryMajor(st.w[s].data(), r, p.samples[s], wRows.data() + wBase[s] * r);
  }
  void refreshRowsH(std::size_t t) {
    if (anyListed) entryMajor(st.h[t].data(), r, p.dims[t], hRows[t].data());
  }
  void refreshAllRows() {
    for (std::size_t s = 0; s < S; ++s) refreshStratumRows(s);
    for (std::size_t t = 0; t < K; ++t) refreshRowsH(t);
  }
  void refreshStratumRows(std::size_t s) {
    for (std::size_t t = 0; t < K; ++t) refreshRowsV(s, t);
    refreshRowsW(s);
  }

  void refreshGrams(std::size_t s) { stratumGrams(p, o, st, s, VV, VH, WW, wsum); }
  void refreshW(std::size_t s) { stratumWGrams(p, o, st, s, WW, wsum); }

  // The block X (R × d) ← inner HALS sweeps on ½tr(XᵀQX) − tr(PᵀX). Sweeps allowed: as Gillis and
  // Glineur, 1 + ½·(cost of P and Q)/(cost of one sweep), at most kMaxInnerSweeps: when the block's
  // MTTKRP dominates, sweeping it again is nearly free.
  // `listedEntries`: the weighted sweeps' entries (each costs ~4R flops per sweep, beside the 2R²d).
  static int sweepsFor(std::size_t R, std::size_t d, double setupFlops, std::size_t listedEntries = 0) {
    const double sweepFlops = 2.0 * static_cast<double>(R * R * d) + 4.0 * static_cast<double>(R * listedEntries);
    return static_cast<int>(std::min<double>(kMaxInnerSweeps, 1 + 0.5 * setupFlops / std::max(sweepFlops, 1.0)));
  }

  // With x.P and x.Q; by chunks of columns on the team when `onTeam` (the h blocks; a stratum's
  // blocks run on the thread that has the stratum) and worth it: the same chunks either way.
  void block(double* X, std::size_t R, std::size_t d, double setupFlops, Scratch& x, bool onTeam) {
    const double sweepFlops = 2.0 * static_cast<double>(R * R * d);
    const int sweeps = sweepsFor(R, d, setupFlops);
    const double* Pd = x.P.data();
    const double* Qd = x.Q.data();
    auto pass = [&](int, std::size_t b, std::size_t e) {
      for (std::size_t c0 = b; c0 < e; c0 += kChunk) sweepChunk(X, Pd, Qd, R, d, c0, std::min(e, c0 + kChunk), sweeps);
    };
    if (onTeam && team->size() > 1 && sweepFlops * sweeps >= kTeamMinWork && d > kChunk)
      runRows(*team, d, kChunk, pass);
    else if (onTeam && team->size() > 1 && sweepFlops >= kTeamMinWork)
      sweepOnTeam(X, Pd, Qd, R, d, sweeps);  // one chunk: its columns split in every sweep
    else
      pass(0, 0, d);
  }

  // sweepChunk over one chunk of d ≤ kChunk columns with each sweep's columns split over the team (a
  // column's coordinate steps read and write that column only): every step's decrease Q[a,a]·step²
  // is stored and summed on this thread in sweepChunk's order, so the stopping rule sees the same sum
  // and every result is the same. Its loop repeats sweepChunk's on purpose: one shared kernel for
  // both (a template on storing or summing the decreases) made the unmasked solve's sweeps slower,
  // 10.3 → 11.9 ms per iteration of bench/masks.ts's problem (4 strata of 500×40×25, rank 20), and
  // still 5–8 % slower kept out of line.
  void sweepOnTeam(double* X, const double* P, const double* Q, std::size_t R, std::size_t d, int sweeps) {
    decrease.resize(R * d);
    double first = 0;
    for (int sweep = 0; sweep < sweeps; ++sweep) {
      auto part = [&](int, std::size_t b, std::size_t e) {
        double acc[kChunk];
        const std::size_t w = e - b;
        for (std::size_t a = 0; a < R; ++a) {
          const double qaa = Q[a * R + a];
          if (!(qaa > 0)) continue;
          const double* linear = P + a * d + b;
          for (std::size_t j = 0; j < w; ++j) acc[j] = linear[j];
          for (std::size_t c = 0; c < R; ++c) {
            const double q = Q[a * R + c];
            const double* x = X + c * d + b;
            for (std::size_t j = 0; j < w; ++j) acc[j] -= q * x[j];
          }
          double* x = X + a * d + b;
          double* lowered = decrease.data() + a * d + b;
          const double inv = 1.0 / qaa;
          for (std::size_t j = 0; j < w; ++j) {
            const double next = std::max(0.0, x[j] + acc[j] * inv);
            lowered[j] = qaa * (next - x[j]) * (next - x[j]);
            x[j] = next;
          }
        }
      };
      runRows(*team, d, 8, part);
      double moved = 0;
      for (std::size_t a = 0; a < R; ++a)
        if (Q[a * R + a] > 0)
          for (std::size_t j = 0; j < d; ++j) moved += decrease[a * d + j];
      if (sweep == 0) first = moved;
      if (moved <= kInnerStop * first) break;
    }
  }

  // f(s, the thread's scratch) for every stratum: spread over the team (runEachIfWorth), or in
  // order on this thread.
  template <class Fn>
  void eachStratum(double flops, Fn&& f) {
    auto item = [&](std::size_t s, int t) { f(s, perThread[static_cast<std::size_t>(t)]); };
    runEachIfWorth(spread ? *team : alone, S, flops, item);
  }

  // v(s)ₜ for every mode in order: Q = nₛ(⊙ₖ≠ₜ VₖVₖᵀ), P = MTTKRP(Σᵢ A(s)[i]; v(s)) − (⊙ₖ≠ₜ VₖHₖᵀ)·diag(Σᵢ w)·Hₜ.
  void updateV(std::size_t s, bool lastSweep, Scratch& x) {
    const std::size_t q = o.strataRank[s], n = p.samples[s];
    const double* factors[kMaxTensorOrder];
    for (std::size_t t = 0; t < K; ++t) factors[t] = v(s, t);
    Vec &M = x.M, &P = x.P, &Q = x.Q, &E = x.E;
    for (std::size_t t = 0; t < K; ++t) {
      const std::size_t d = p.dims[t];
      mttkrpRankMajor(sumA[s].data(), p.dims, factors, q, t, M.data(), x.ws);
      std::copy(M.begin(), M.begin() + static_cast<std::ptrdiff_t>(q * d), P.begin());
      hadamardAllBut(vvPtr[s], t, q * q, Q.data());
      for (std::size_t i = 0; i < q * q; ++i) Q[i] *= static_cast<double>(n);
      hadamardAllBut(vhPtr[s], t, q * r, E.data());
      for (std::size_t a = 0; a < q; ++a)
        for (std::size_t b = 0; b < r; ++b) E[a * r + b] *= wsum[s][b];
      const double* h = st.h[t].data();
      gemm(false, false, q, d, r, -1.0, E.data(), h, 1.0, P.data());
      const double setup = 2.0 * static_cast<double>(q * F + q * r * d);
      if (listed[s] && surrogate) {
        // By feature: κ_f = Σκ and target Σκ(a − topic term)/κ_f (κ_f < 0: every ω ≤ 1, ω ≠ 1).
        const double* rows[kMaxTensorOrder];
        for (std::size_t k = 0; k < K; ++k) rows[k] = vRows[s][k].data();
        const ListedGroups& g = vGroups[s][t];
        const std::size_t s0 = featureBase[s], items = g.start.back();
        for (std::size_t i = 0; i < items; ++i) {
          const std::size_t l = static_cast<std::size_t>(g.slot[i]);
          slotKappa[s0 + i] = featureKappa[l];
          slotTargets[s0 + i] = featureTargets[l] / featureKappa[l];
        }
        surrogateTerm(P.data(), q, d, g, rows, K, t, slotTargets.data() + s0, slotKappa.data() + s0, x, x, 0, d);
        block(v(s, t), q, d, setup, x, false);
        refreshRowsV(s, t);
      } else if (listed[s]) {
        // Column j of v(s)ₜ meets the entries with jₜ = j: z_a = Π_{k≠t} v(s)ₖ[a, jₖ], fixed term the topics'.
        const double* rows[kMaxTensorOrder];
        for (std::size_t k = 0, at = 0; k < K; ++k)
          if (k != t) rows[at++] = vRows[s][k].data();
        weightedBlock(v(s, t), q, d, sweepsFor(q, d, setup, featureBase[s + 1] - featureBase[s]), vGroups[s][t], rows,
                      K - 1, true, x.P.data(), x.Q.data(), x, 0, d);
        refreshRowsV(s, t);
      } else {
        block(v(s, t), q, d, setup, x, false);
      }
      crossRows(v(s, t), q, v(s, t), q, d, VV[s * K + t].data());
      crossRows(v(s, t), q, h, r, d, VH[s * K + t].data());
      // ⟨Σᵢ A(s)[i], ⊗ₜ v(s)ₜ⟩ for the loss: the last mode's MTTKRP against its new value.
      if (lastSweep && t + 1 == K) innerV[s] = dotOf(M.data(), v(s, t), q * d);
    }
  }

  // w(s): Q = ⊙ₜ HₜHₜᵀ, P = MTTKRP(A(s); h) − (row sums of ⊙ₜ HₜVₜᵀ)·1ᵀ.
  void updateW(std::size_t s, Scratch& x) {
    const std::size_t n = p.samples[s], q = o.strataRank[s];
    const double* factors[kMaxTensorOrder];
    factors[0] = st.w[s].data();
    for (std::size_t t = 0; t < K; ++t) factors[t + 1] = st.h[t].data();
    Shape full(p.dims);
    full.insert(full.begin(), n);
    Vec &P = x.P, &Q = x.Q, &E = x.E;
    mttkrpRankMajor(p.strata[s], full, factors, r, 0, P.data(), x.ws);
    hadamardAllBut(hhPtr, K, r * r, Q.data());
    hadamardAllBut(vhPtr[s], K, q * r, E.data());
    for (std::size_t b = 0; b < r; ++b) {
      double c = 0;
      for (std::size_t a = 0; a < q; ++a) c += E[a * r + b];
      for (std::size_t i = 0; i < n; ++i) P[b * n + i] -= c;
    }
    const double setup = 2.0 * static_cast<double>(r * n * F);
    if (listed[s] && surrogate) {
      const double* rows[kMaxTensorOrder + 1];
      rows[0] = wRows.data() + wBase[s] * r;
      for (std::size_t t = 0; t < K; ++t) rows[t + 1] = hRows[t].data();
      double* targets = entryTargets.data() + base[s];
      entryTargetsOf(wGroups[s], targets);
      surrogateTerm(P.data(), r, n, wGroups[s], rows, K + 1, 0, targets, uniformKappa ? nullptr : wGroups[s].kappa.data(),
                    x, x, 0, n);
      block(st.w[s].data(), r, n, setup, x, false);
    } else if (listed[s]) {
      // Column i of w(s) meets the entries of sample i: z_b = Πₜ hₜ[b, jₜ], fixed term the own one.
      const double* rows[kMaxTensorOrder];
      for (std::size_t t = 0; t < K; ++t) rows[t] = hRows[t].data();
      weightedBlock(st.w[s].data(), r, n, sweepsFor(r, n, setup, listed[s]->size()), wGroups[s], rows, K, false, x.P.data(),
                    x.Q.data(), x, 0, n);
    } else {
      block(st.w[s].data(), r, n, setup, x, false);
    }
    refreshRowsW(s);
    refreshW(s);
  }

  // Z(s) = w(s)·A(s) (r × F: A(s) contracted over its samples): what every h mode's MTTKRP starts
  // from, since w(s) stays fixed through the h updates. Kept for all strata when that costs at most
  // the data (r ≤ nₛ), else recomputed per stratum and mode.
  const double* contractSamples(std::size_t s, Scratch& x) {
    if (cacheZ) Zall[s].resize(r * F);
    double* Z = cacheZ ? Zall[s].data() : x.Zone.data();
    gemm(false, false, r, F, p.samples[s], 1.0, st.w[s].data(), p.strata[s], 0.0, Z);
    return Z;
  }

  // Stratum s's MTTKRP for h mode t (r × dₜ, into out) from Z(s): per component the other h modes.
  void hMttkrp(std::size_t s, std::size_t t, double* out, Scratch& x) {
    const double* Z = cacheZ ? Zall[s].data() : contractSamples(s, x);
    const std::size_t d = p.dims[t];
    if (K == 1) {
      std::copy(Z, Z + r * d, out);
      return;
    }
    const double* vecs[kMaxTensorOrder];
    for (std::size_t b = 0; b < r; ++b) {
      for (std::size_t k = 0; k < K; ++k) vecs[k] = k == t ? nullptr : st.h[k].data() + b * p.dims[k];
      contractAllBut(Z + b * F, p.dims.data(), K, t, vecs, out + b * d, x.bufA.data(), x.bufB.data());
    }
  }

  // hₜ: Q = Σₛ (w(s)w(s)ᵀ) ⊙ (⊙ₖ≠ₜ HₖHₖᵀ), P = Σₛ MTTKRP(A(s); w(s), h) − diag(Σᵢ w(s))·(⊙ₖ≠ₜ HₖV(s)ₖᵀ)·V(s)ₜ.
  void updateH(std::size_t t) {
    const std::size_t d = p.dims[t];
    Scratch& x0 = perThread[0];
    Vec &P = x0.P, &Q = x0.Q;
    hadamardAllBut(hhPtr, t, r * r, G.data());
    std::fill(Q.begin(), Q.begin() + static_cast<std::ptrdiff_t>(r * r), 0.0);
    double setup = 0;
    for (std::size_t s = 0; s < S; ++s) {
      for (std::size_t i = 0; i < r * r; ++i) Q[i] += WW[s][i] * G[i];
      setup += 2.0 * static_cast<double>(r * p.samples[s] * F) / static_cast<double>(cacheZ ? K : 1);
    }
    // Per stratum (the strata spread over the team): its MTTKRP and diag(Σᵢ w(s))(⊙ₖ≠ₜ HₖV(s)ₖᵀ).
    eachStratum(work / static_cast<double>(cacheZ ? K : 1), [&](std::size_t s, Scratch& x) {
      const std::size_t q = o.strataRank[s];
      hMttkrp(s, t, hM.get() + s * r * d, x);
      double* E = hE.get() + s * r * qmax;
      for (std::size_t b = 0; b < r; ++b)
        for (std::size_t a = 0; a < q; ++a) {
          double e = wsum[s][b];
          for (std::size_t k = 0; k < K; ++k)
            if (k != t) e *= VH[s * K + k][a * r + b];
          E[b * q + a] = e;
        }
    });
    // P = Σₛ MTTKRP(s) − Σₛ E(s)·V(s)ₜ, both sums in stratum order, the columns [b, e) by one thread
    // (each column's sums the same in any split).
    auto columns = [&](int, std::size_t b, std::size_t e) {
      const std::size_t c = e - b;
      for (std::size_t a = 0; a < r; ++a) std::fill(Msum.begin() + static_cast<std::ptrdiff_t>(a * d + b), Msum.begin() + static_cast<std::ptrdiff_t>(a * d + e), 0.0);
      for (std::size_t s = 0; s < S; ++s) {
        const std::size_t q = o.strataRank[s];
        const double* Ms = hM.get() + s * r * d;
        for (std::size_t a = 0; a < r; ++a)
          for (std::size_t j = b; j < e; ++j) Msum[a * d + j] += Ms[a * d + j];
        // Msum − E·V(s)ₜ accumulated into the stratum-independent P below: subtract per stratum.
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, asInt(r), asInt(c), asInt(q), -1.0, hE.get() + s * r * qmax,
                    asInt(q), v(s, t) + b, asInt(d), s == 0 ? 0.0 : 1.0, P.data() + b, asInt(d));
      }
      for (std::size_t a = 0; a < r; ++a)
        for (std::size_t j = b; j < e; ++j) P[a * d + j] += Msum[a * d + j];
    };
    runRowsIfWorth(spread ? *team : alone, d, 8, static_cast<double>(2 * S * r * qmax * d), columns);
    double* h = st.h[t].data();
    if (anyListed && surrogate) {
      // Items: the entries of every stratum with jₜ = j; the other modes: the w row, the other h modes.
      const double* rows[kMaxTensorOrder + 1];
      rows[0] = wRows.data();
      for (std::size_t k = 0; k < K; ++k) rows[k + 1] = hRows[k].data();
      const ListedGroups& g = hGroups[t];
      entryTargetsOf(g, entryTargets.data());
      auto sums = [&](int thread, std::size_t b, std::size_t e) {
        surrogateTerm(P.data(), r, d, g, rows, K + 1, t + 1, entryTargets.data(), uniformKappa ? nullptr : g.kappa.data(),
                      perThread[static_cast<std::size_t>(thread)], x0, b, e);
      };
      runRowsIfWorth(spread ? *team : alone, d, 2, static_cast<double>(listedTotal * r * (K + 2)), sums);
      block(h, r, d, setup, x0, true);
      refreshRowsH(t);
    } else if (anyListed) {
      // Column j of hₜ meets the entries of every stratum with jₜ = j: z_b = w(s)[b, i]·Π_{k≠t} hₖ[b, jₖ].
      const double* rows[kMaxTensorOrder + 1];
      rows[0] = wRows.data();
      for (std::size_t k = 0, at = 1; k < K; ++k)
        if (k != t) rows[at++] = hRows[k].data();
      // Its columns split over the team when the strata are (each column's steps the same on any
      // thread, so the result is the same bit for bit), each thread with its own column scratch.
      const int sweeps = sweepsFor(r, d, setup, listedTotal);
      const double *Pd = P.data(), *Qd = Q.data();
      auto sweepColumns = [&](int thread, std::size_t b, std::size_t e) {
        weightedBlock(h, r, d, sweeps, hGroups[t], rows, K, false, Pd, Qd, perThread[static_cast<std::size_t>(thread)], b, e);
      };
      runRowsIfWorth(spread ? *team : alone, d, 2, 4.0 * sweeps * static_cast<double>(r * listedTotal), sweepColumns);
      refreshRowsH(t);
    } else {
      block(h, r, d, setup, x0, true);
    }
    crossRows(h, r, h, r, d, HH[t].data());
    eachStratum(static_cast<double>(2 * S * qmax * r * d),
                [&](std::size_t s, Scratch&) { crossRows(v(s, t), o.strataRank[s], h, r, d, VH[s * K + t].data()); });
  }

  // ‖B(s)‖² = nₛ Σ ⊙ₜVₜVₜᵀ + 2 Σ_{a,b} (⊙ₜVₜHₜᵀ)[a,b] Σᵢw[b,i] + Σ (wwᵀ) ⊙ (⊙ₜHₜHₜᵀ), from current Grams.
  double modelSquaredNorm(std::size_t s) const {
    const std::size_t q = o.strataRank[s], n = p.samples[s];
    double own = 0, cross = 0, topics = 0;
    for (std::size_t i = 0; i < q * q; ++i) {
      double e = 1;
      for (std::size_t t = 0; t < K; ++t) e *= VV[s * K + t][i];
      own += e;
    }
    for (std::size_t a = 0; a < q; ++a)
      for (std::size_t b = 0; b < r; ++b) {
        double e = wsum[s][b];
        for (std::size_t t = 0; t < K; ++t) e *= VH[s * K + t][a * r + b];
        cross += e;
      }
    for (std::size_t i = 0; i < r * r; ++i) {
      double e = WW[s][i];
      for (std::size_t t = 0; t < K; ++t) e *= HH[t][i];
      topics += e;
    }
    return static_cast<double>(n) * own + 2 * cross + topics;
  }

  // Balances every rank-one term: each stratum's own components a (rows a of v(s)₁ … v(s)_K:
  // balanceOwn) and the topic components b (row b of every w(s), taken together, and of h₁ … h_K:
  // balanceTopics). The two touch disjoint factors, so either may come first.
  void balanceOwn(std::size_t s) {
    double* rows[kMaxTensorOrder + 1];
    std::size_t len[kMaxTensorOrder + 1];
    for (std::size_t a = 0; a < o.strataRank[s]; ++a) {
      for (std::size_t t = 0; t < K; ++t) rows[t] = v(s, t) + a * p.dims[t], len[t] = p.dims[t];
      balanceTerm(rows, len, K);
    }
  }
  void balanceTopics() {
    double* rows[kMaxTensorOrder + 1];
    std::size_t len[kMaxTensorOrder + 1];
    // The w rows of all strata are one factor: gathered, balanced with the h rows, scattered back.
    std::size_t sumN = 0;
    for (std::size_t n : p.samples) sumN += n;
    wrow.resize(sumN);
    for (std::size_t b = 0; b < r; ++b) {
      std::size_t at = 0;
      for (std::size_t s = 0; s < S; ++s) {
        const std::size_t n = p.samples[s];
        std::copy(st.w[s].data() + b * n, st.w[s].data() + (b + 1) * n, wrow.data() + at);
        at += n;
      }
      rows[0] = wrow.data(), len[0] = sumN;
      for (std::size_t t = 0; t < K; ++t) rows[t + 1] = st.h[t].data() + b * p.dims[t], len[t + 1] = p.dims[t];
      balanceTerm(rows, len, K + 1);
      at = 0;
      for (std::size_t s = 0; s < S; ++s) {
        const std::size_t n = p.samples[s];
        std::copy(wrow.data() + at, wrow.data() + at + n, st.w[s].data() + b * n);
        at += n;
      }
    }
  }

  // The own term Σₐ Πₜ v(s)ₜ[a, fₜ] at stratum s's listed features (from the entry-major copies).
  void ownValues(std::size_t s) {
    const double* rows[kMaxTensorOrder];
    for (std::size_t t = 0; t < K; ++t) rows[t] = vRows[s][t].data();
    const std::size_t s0 = featureBase[s];
    listed::kernels().cpValues(rows, K, o.strataRank[s], featureIndex.data() + s0 * K, K, featureBase[s + 1] - s0,
                               ownTerm.data() + s0);
  }

  // a − the topic term Σ_b w(s)[b, i] Πₜ hₜ[b, jₜ] at every listed entry of stratum s, and the v
  // blocks' targets by feature, Σκ·(a − topic term), summed in entry order.
  void topicValues(std::size_t s) {
    const TensorEntryWeights& e = *listed[s];
    const double* rows[kMaxTensorOrder + 1];
    rows[0] = wRows.data() + wBase[s] * r;
    for (std::size_t t = 0; t < K; ++t) rows[t + 1] = hRows[t].data();
    double* out = lessTopics.data() + base[s];
    listed::kernels().cpValues(rows, K + 1, r, e.index.data(), K + 1, e.size(), out);
    std::fill(featureTargets.begin() + static_cast<std::ptrdiff_t>(featureBase[s]),
              featureTargets.begin() + static_cast<std::ptrdiff_t>(featureBase[s + 1]), 0.0);
    const int32_t* slot = entrySlot.data() + base[s];
    for (std::size_t k = 0; k < e.size(); ++k) {
      out[k] = e.data[k] - out[k];
      featureTargets[static_cast<std::size_t>(slot[k])] += e.kappa[k] * out[k];
    }
  }

  // weightedHals Surrogate: adds to the block's linear term P (R × d, rank-major), columns [j0, j1),
  // the listed items' Σ κ(target − z·x)·z (listed::Kernels::cpGroupSums' num − den; rows[skip] the
  // block's own factor entry-major, at its value before the block). The plain sweeps on that P are
  // those of the majorizer ½Σ(x̃ − model)² with x̃ = ωa + (1 − ω)·model at the block's start, which
  // touches the weighted objective there (StratifiedNtfOptions::weightedHals): neither sweep nor block
  // raises it. targets and kappa per item in g's order (kappa null: all kappa0); the sums go through
  // `sums`' num and den (rows j of the block), the item's Khatri–Rao row through x's z.
  void surrogateTerm(double* P, std::size_t R, std::size_t d, const ListedGroups& g, const double* const* rows,
                     std::size_t order, std::size_t skip, const double* targets, const double* kappa, Scratch& x,
                     Scratch& sums, std::size_t j0, std::size_t j1) {
    listed::kernels().cpGroupSums(rows, order, R, g.index.data(), g.start.data(), j0, j1, skip, kappa, kappa0, targets,
                                  sums.num.data(), sums.den.data(), x.z.data());
    for (std::size_t a = 0; a < R; ++a)
      for (std::size_t j = j0; j < j1; ++j) P[a * d + j] += sums.num[j * R + a] - sums.den[j * R + a];
  }

  // The w and h blocks' targets for the surrogate, a − own term, per item of g (in its order).
  void entryTargetsOf(const ListedGroups& g, double* out) const {
    const std::size_t items = g.start.back();
    for (std::size_t i = 0; i < items; ++i) out[i] = g.data[i] - ownTerm[static_cast<std::size_t>(g.slot[i])];
  }

  // The weighted block: column by column (each meets only its own listed items, the group g[j], so
  // they are independent), the coordinates in order, each set to the exact non-negative minimizer
  // of the weighted objective in it: curvature Q[a,a] + Σκz_a² (= Σωz_a² ≥ 0 over the column's
  // entries), slope (QX − P)[a] − Σ e·z_a with e = κ(target − z·x) kept current
  // (listed::Kernels::cpHalsSweep; z = ⊙ rows[l][index_l], the term's other factors at the item).
  // The items are entries with target a − own term (the w and h blocks), or with `byFeature` listed
  // features with κ their Σκ and e = Σκ·target − κ·z·x (the v blocks: featureTargets).
  // A curvature ≤ 1e-12·Q[a,a] (only missing entries meet the coordinate) leaves it. Sweeps and
  // their stopping rule as block(), per column.
  // Short columns two at a time, whose sweeps run together while both go on
  // (listed::Kernels::cpHalsSweepPair: each column's steps those of its own sweeps, bit for bit).
  // Columns j0 … j1 − 1 of X (R × d), with the linear term P (R × d) and the curvature Q, in x's
  // column scratch.
  void weightedBlock(double* X, std::size_t R, std::size_t d, int sweeps, const ListedGroups& g,
                     const double* const* rows, std::size_t order, bool byFeature, const double* P, const double* Q,
                     Scratch& x, std::size_t j0, std::size_t j1) {
    const listed::Kernels& kernels = listed::kernels();
    // Column j into c: its targets and κ, x and P, the Khatri–Rao rows and residuals.
    const auto gather = [&](std::size_t j, Scratch::Column& c) {
      const std::size_t p0 = g.start[j], k = g.start[j + 1] - p0;
      const int32_t* slot = g.slot.data() + p0;
      c.j = j, c.k = k, c.kappa = nullptr, c.active = true;
      if (byFeature) {
        for (std::size_t q = 0; q < k; ++q) {
          const std::size_t l = static_cast<std::size_t>(slot[q]);
          c.target[q] = featureTargets[l];
          c.kap[q] = featureKappa[l];
        }
        c.kappa = c.kap.data();
      } else {
        const double* a = g.data.data() + p0;
        for (std::size_t q = 0; q < k; ++q) c.target[q] = a[q] - ownTerm[static_cast<std::size_t>(slot[q])];
        if (!uniformKappa) c.kappa = g.kappa.data() + p0;
      }
      for (std::size_t a = 0; a < R; ++a) c.xc[a] = X[a * d + j], c.Pc[a] = P[a * d + j];
      kernels.cpHalsGather(rows, order, g.index.data() + p0 * g.stride, g.stride, c.xc.data(), c.kappa, kappa0,
                           byFeature ? nullptr : c.target.data(), k, R, Q, c.curv.data(), c.Yc, c.resid);
      if (byFeature)
        for (std::size_t q = 0; q < k; ++q) c.resid[q] += c.target[q];  // −κ·z·x from the gather (no data)
    };
    const auto row = [&](Scratch::Column& c) {
      return listed::SweepRow{c.xc.data(), c.kappa, c.k, c.Pc.data(), c.curv.data(), c.curvPairs.data(), c.Yc, c.resid};
    };
    // After sweep `sweep` of c: its stopping rule, and x back into X when it stops.
    const auto settle = [&](Scratch::Column& c, int sweep) {
      // What the sweep lowered the objective by, twice (a coordinate without curvature does not move).
      const double lowered = listed::sweepDecrease(c.xc.data(), c.xold.data(), c.curv.data(), R, 0.0);
      if (sweep == 0) c.first = lowered;
      if (lowered <= kInnerStop * c.first || sweep + 1 == sweeps) {
        c.active = false;
        for (std::size_t a = 0; a < R; ++a) X[a * d + c.j] = c.xc[a];
      }
    };
    Scratch::Column &c0 = x.col[0], &c1 = x.col[1];
    const auto paired = [&](std::size_t j) { return (g.start[j + 1] - g.start[j]) * R <= kPairedRows; };
    for (std::size_t j = j0; j < j1;) {
      const bool two = j + 1 < j1 && paired(j) && paired(j + 1);
      gather(j, c0);
      c1.active = false;
      if (two) gather(j + 1, c1);
      for (int sweep = 0; sweep < sweeps && (c0.active || c1.active); ++sweep) {
        const bool again = sweep + 1 < sweeps, first = sweep == 0;
        for (Scratch::Column* c : {&c0, &c1})
          if (c->active) std::copy(c->xc.begin(), c->xc.begin() + static_cast<std::ptrdiff_t>(R), c->xold.begin());
        if (c0.active && c1.active) {
          kernels.cpHalsSweepPair(row(c0), row(c1), kappa0, R, Q, again, first);
        } else {
          Scratch::Column& c = c0.active ? c0 : c1;
          kernels.cpHalsSweep(c.xc.data(), c.kappa, kappa0, c.k, R, c.Pc.data(), Q, c.curv.data(), c.curvPairs.data(),
                              c.Yc, c.resid, again, first);
        }
        for (Scratch::Column* c : {&c0, &c1})
          if (c->active) settle(*c, sweep);
      }
      j += two ? 2 : 1;
    }
  }

  double iterate(bool wantLoss, std::vector<StratifiedNtfState>* stages) {
    balanceTopics();
    for (std::size_t t = 0; t < K; ++t) {
      crossRows(st.h[t].data(), r, st.h[t].data(), r, p.dims[t], HH[t].data());
      if (anyListed) refreshRowsH(t);
    }
    // Stratum s's own balance, Grams and entry-major copies (weighted), before its v sweeps.
    auto prepare = [&](std::size_t s) {
      balanceOwn(s);
      refreshGrams(s);
      if (anyListed) refreshStratumRows(s);
    };
    // After the v sweeps: the own term at its listed entries, then w(s) and Z(s) (w's contraction).
    auto finish = [&](std::size_t s, Scratch& x) {
      if (listed[s]) ownValues(s);
      updateW(s, x);
      if (cacheZ) contractSamples(s, x);
    };
    if (stages) {
      // The state after each stage (recordStages: parity tests), so stage by stage over all strata.
      eachStratum(work, [&](std::size_t s, Scratch&) { prepare(s); });
      for (int sweep = 0; sweep < o.vScaling; ++sweep) {
        eachStratum(work, [&](std::size_t s, Scratch& x) { updateV(s, sweep + 1 == o.vScaling, x); });
        stages->push_back(st);
      }
      eachStratum(work, finish);
      stages->push_back(st);
    } else {
      // A stratum's steps up to its w update read its own state and h, which no other stratum's
      // change: its whole sequence in one pass, on one thread.
      eachStratum(work, [&](std::size_t s, Scratch& x) {
        prepare(s);
        for (int sweep = 0; sweep < o.vScaling; ++sweep) updateV(s, sweep + 1 == o.vScaling, x);
        finish(s, x);
      });
    }
    for (std::size_t t = 0; t < K; ++t) updateH(t);
    if (anyListed)
      eachStratum(static_cast<double>(listedTotal * r * (K + 1)), [&](std::size_t s, Scratch&) {
        if (listed[s]) topicValues(s);
      });
    if (stages) stages->push_back(st);
    if (!wantLoss) return std::nan("");
    // ‖A − B‖² = ‖A‖² − 2⟨A, B⟩ + ‖B‖²: ⟨A, B⟩ from the last v mode's and the last h mode's MTTKRPs
    // (neither depends on the factor it multiplies), ‖B‖² from the Grams.
    double inner = dotOf(Msum.data(), st.h[K - 1].data(), r * p.dims[K - 1]);
    double model = 0;
    for (std::size_t s = 0; s < S; ++s) inner += innerV[s], model += modelSquaredNorm(s);
    // Weighted: the plain part (A(s) holds 0 at missing entries) plus the listed entries' Σκ(a − B)².
    double extra = 0;
    for (std::size_t s = 0; s < S; ++s)
      if (const TensorEntryWeights* e = listed[s])
        for (std::size_t k = 0; k < e->size(); ++k) {
          const std::size_t id = base[s] + k;
          const double lessOwn = e->data[k] - ownTerm[static_cast<std::size_t>(entrySlot[id])];
          const double res = lessOwn + lessTopics[id] - e->data[k];  // a − own − topics
          extra += e->kappa[k] * res * res;
        }
    return std::sqrt(std::max(normA2 - 2 * inner + model + extra, 0.0));
  }
};

StratifiedNtfHals::StratifiedNtfHals(const StratifiedNtfProblem& problem, const StratifiedNtfOptions& options,
                                     StratifiedNtfState& state)
    : impl_(std::make_unique<Impl>(problem, options, state)) {}
StratifiedNtfHals::~StratifiedNtfHals() = default;
std::size_t StratifiedNtfHals::scratchDoubles() const { return impl_->scratch; }
double StratifiedNtfHals::initialLoss() { return stratifiedNtfLoss(impl_->p, impl_->o, impl_->st, team()); }
RowTeam& StratifiedNtfHals::team() { return impl_->spread ? *impl_->team : impl_->alone; }
const std::vector<double>& StratifiedNtfHals::strataNorms() const { return impl_->normsA; }
double StratifiedNtfHals::iterate(bool wantLoss, std::vector<StratifiedNtfState>* stages) {
  return impl_->iterate(wantLoss, stages);
}

}  // namespace nsa
