#include "ntf.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "error.hpp"
#include "listed_kernels.hpp"
#include "ntf_stratified_hals.hpp"
#include "random.hpp"
#include "thread_team.hpp"

namespace nsa {

void crossRows(const double* A, std::size_t m, const double* B, std::size_t n, std::size_t d, double* out) {
  gemm(false, true, m, n, d, 1.0, A, B, 0.0, out);
}

void stratumGrams(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o, const StratifiedNtfState& st,
                  std::size_t s, std::vector<std::vector<double>>& VV, std::vector<std::vector<double>>& VH,
                  std::vector<std::vector<double>>& WW, std::vector<std::vector<double>>& wsum) {
  const std::size_t K = p.dims.size(), q = o.strataRank[s];
  for (std::size_t t = 0; t < K; ++t) {
    const double* v = st.v[s * K + t].data();
    crossRows(v, q, v, q, p.dims[t], VV[s * K + t].data());
    crossRows(v, q, st.h[t].data(), o.rank, p.dims[t], VH[s * K + t].data());
  }
  stratumWGrams(p, o, st, s, WW, wsum);
}

void stratumWGrams(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o, const StratifiedNtfState& st,
                   std::size_t s, std::vector<std::vector<double>>& WW, std::vector<std::vector<double>>& wsum) {
  const std::size_t n = p.samples[s], r = o.rank;
  const double* w = st.w[s].data();
  for (std::size_t b = 0; b < r; ++b) {
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) total += w[b * n + i];
    wsum[s][b] = total;
  }
  crossRows(w, r, w, r, n, WW[s].data());
}

namespace {

using Vec = std::vector<double>;

double sum(const double* x, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += x[i];
  return s;
}

double dot(const double* x, const double* y, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += x[i] * y[i];
  return s;
}

// x ← x ∘ max(num, ε) / max(den, ε)
void multiplicativeStep(double* x, const double* num, const double* den, std::size_t n, double eps) {
  for (std::size_t i = 0; i < n; ++i) x[i] = x[i] * std::max(num[i], eps) / std::max(den[i], eps);
}

// The reference's TV subgradient split for each row of x (r × d): with sⱼ = sign(xⱼ₊₁ − xⱼ),
// g₀ = −s₀, gⱼ = sⱼ₋₁ − sⱼ, g_{d−1} = s_{d−2}; num = max(−g, 0), den = max(g, 0).
void tvSplit(const double* x, std::size_t r, std::size_t d, double* num, double* den) {
  auto sign = [](double a) { return a > 0 ? 1.0 : (a < 0 ? -1.0 : 0.0); };
  for (std::size_t b = 0; b < r; ++b) {
    const double* row = x + b * d;
    for (std::size_t j = 0; j < d; ++j) {
      const double left = j > 0 ? sign(row[j] - row[j - 1]) : 0.0;
      const double right = j + 1 < d ? sign(row[j + 1] - row[j]) : 0.0;
      const double g = left - right;
      num[b * d + j] = std::max(-g, 0.0);
      den[b * d + j] = std::max(g, 0.0);
    }
  }
}

// The reference's TV loss term: Σₜ [TV(row 0 of hₜ) + TV(row 1 of hₜ)] (rows that exist).
double tvLoss(const std::vector<Vec>& h, const Shape& dims, std::size_t r) {
  double s = 0;
  for (std::size_t t = 0; t < dims.size(); ++t)
    for (std::size_t b = 0; b < std::min<std::size_t>(2, r); ++b) {
      const double* row = h[t].data() + b * dims[t];
      for (std::size_t j = 0; j + 1 < dims[t]; ++j) s += std::abs(row[j + 1] - row[j]);
    }
  return s;
}

// Divides every column of x (r × d) by its Euclidean norm over the rows (zero columns stay).
void normalizeColumns(double* x, std::size_t r, std::size_t d) {
  for (std::size_t j = 0; j < d; ++j) {
    double s = 0;
    for (std::size_t b = 0; b < r; ++b) s += x[b * d + j] * x[b * d + j];
    if (s > 0) {
      const double c = std::sqrt(s);
      for (std::size_t b = 0; b < r; ++b) x[b * d + j] /= c;
    }
  }
}

// Hadamard product of the matrices mats[k] (all m×n), skipping index `skip` (ones if none remain).
void hadamardAllBut(const std::vector<const double*>& mats, std::size_t skip, std::size_t mn, double* out) {
  std::fill(out, out + mn, 1.0);
  for (std::size_t k = 0; k < mats.size(); ++k)
    if (k != skip)
      for (std::size_t i = 0; i < mn; ++i) out[i] *= mats[k][i];
}

// ---- the listed entries of a weighted Stratified-NTF (TensorEntryWeights per stratum) ----

// What the listed loops may skip reading (as nmf.hpp's EntryWeights): κ when every κ is the same (a
// mask's: −1), and the data when every κ·t is 0 (a mask's data are 0 at its missing entries).
struct ListedTerms {
  const double* kappa = nullptr;  // null: every κ is kappa0
  double kappa0 = 0;
  const double* data = nullptr;  // null: every κ·t is 0
  ListedTerms() = default;
  explicit ListedTerms(const TensorEntryWeights& e) {
    if (e.size() == 0) return;
    kappa0 = e.kappa[0];
    bool uniform = true, dataTerms = false;
    for (std::size_t p = 0; p < e.size(); ++p) {
      uniform = uniform && e.kappa[p] == kappa0;
      dataTerms = dataTerms || e.kappa[p] * e.data[p] != 0.0;
    }
    if (!uniform) kappa = e.kappa.data();
    if (dataTerms) data = e.data.data();
  }
};

// ⟨x, y⟩ over a short row with four partial sums: one running sum makes each addition wait for the
// previous one (the listed loops' rows are 4–50 long, and these sums were the larger part of them).
double dotShort(const double* x, const double* y, std::size_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) s0 += x[i] * y[i], s1 += x[i + 1] * y[i + 1], s2 += x[i + 2] * y[i + 2], s3 += x[i + 3] * y[i + 3];
  for (; i < n; ++i) s0 += x[i] * y[i];
  return (s0 + s1) + (s2 + s3);
}

// The rows' product at one entry from entry-major factors (row idx[k] of factor k holds its R values
// contiguously): z[a] = Π_{k≠skip} rows[k][idx[k]·R + a], the entry's derivative factors with respect
// to row idx[skip] of factor `skip` (skip ≥ order: no factor left out; none left: all 1).
void rowsProduct(const double* const* rows, std::size_t order, std::size_t R, const int32_t* idx, std::size_t skip,
                 double* __restrict z) {
  // The rows taken apart first, so that the products are one loop (two factors, the usual case: one
  // multiplication per value) over rows that cannot alias z; the same products in the same order as
  // multiplying z by each row in turn.
  const double* x[kMaxTensorOrder];
  std::size_t n = 0;
  for (std::size_t k = 0; k < order; ++k)
    if (k != skip) x[n++] = rows[k] + static_cast<std::size_t>(idx[k]) * R;
  if (n == 0) {
    std::fill(z, z + R, 1.0);
  } else if (n == 1) {
    std::copy(x[0], x[0] + R, z);
  } else if (n == 2) {
    const double* __restrict x0 = x[0];
    const double* __restrict x1 = x[1];
    for (std::size_t a = 0; a < R; ++a) z[a] = x0[a] * x1[a];
  } else {
    for (std::size_t a = 0; a < R; ++a) {
      double p = x[0][a];
      for (std::size_t j = 1; j < n; ++j) p *= x[j][a];
      z[a] = p;
    }
  }
}

// A CP term at one entry: z as rowsProduct; returns the term's value Σ_a z[a]·rows[skip][idx[skip]·R + a]
// (skip ≥ order: the value Σ_a z[a]).
double termAt(const double* const* rows, std::size_t order, std::size_t R, const int32_t* idx, std::size_t skip,
              double* __restrict z) {
  rowsProduct(rows, order, R, idx, skip, z);
  if (skip >= order) return sum(z, R);
  return dotShort(z, rows[skip] + static_cast<std::size_t>(idx[skip]) * R, R);
}

// Entry-major copies (dₖ × R) of stratum s's factors, for the sums over its listed entries: own[t] =
// v(s)ₜᵀ (R = qₛ; indexed by an entry's feature index, its index from the second place) and topics =
// w(s)ᵀ, h₁ᵀ, …, h_Kᵀ (R = r; the full index). Rebuilt after every factor change: r·(nₛ + Σd) + qₛ·Σd
// copies, small beside the listed sums.
struct EntryRows {
  const double* own[kMaxTensorOrder];
  const double* topics[kMaxTensorOrder];
  std::size_t K = 0, q = 0, r = 0;

  static std::size_t size(const StratifiedNtfProblem& p, std::size_t q, std::size_t r, std::size_t s) {
    std::size_t sumD = 0;
    for (std::size_t d : p.dims) sumD += d;
    return (q + r) * sumD + r * p.samples[s];
  }
  // ownOnly: the v(s) factors only (the v updates read nothing else), the topic rows left unset.
  void build(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o, const StratifiedNtfState& st, std::size_t s,
             Vec& buffer, bool ownOnly = false) {
    K = p.dims.size();
    q = o.strataRank[s];
    r = o.rank;
    buffer.resize(size(p, q, r, s));  // within the capacity reserved by the solver: no allocation
    double* at = buffer.data();
    auto transposed = [&](const double* x, std::size_t rows, std::size_t cols) {
      for (std::size_t a = 0; a < rows; ++a)
        for (std::size_t j = 0; j < cols; ++j) at[j * rows + a] = x[a * cols + j];
      const double* out = at;
      at += rows * cols;
      return out;
    };
    for (std::size_t t = 0; t < K; ++t) own[t] = transposed(st.v[s * K + t].data(), q, p.dims[t]);
    if (ownOnly) {
      std::fill(topics, topics + K + 1, nullptr);
      return;
    }
    topics[0] = transposed(st.w[s].data(), r, p.samples[s]);
    for (std::size_t t = 0; t < K; ++t) topics[t + 1] = transposed(st.h[t].data(), r, p.dims[t]);
  }
  double ownAt(const int32_t* idx, double* z) const { return termAt(own, K, q, idx + 1, K, z); }
  double topicsAt(const int32_t* idx, double* z) const { return termAt(topics, K + 1, r, idx, K + 1, z); }
  // ownAt and topicsAt of every listed entry of e, into out (e.size()).
  void ownValues(const TensorEntryWeights& e, double* out) const {
    listed::kernels().cpValues(own, K, q, e.index.data() + 1, e.order, e.size(), out);
  }
  void topicsValues(const TensorEntryWeights& e, double* out) const {
    listed::kernels().cpValues(topics, K + 1, r, e.index.data(), e.order, e.size(), out);
  }
};

// The listed entries of a stratum grouped by their feature index (i₁, …, i_K), all samples together:
// the stratum's own term v(s) depends on the feature index only, so each of its blocks' listed sums
// Σ κ(c + own)z (c the topic term, fixed through the v sweeps) is, per feature f,
// (Σ_f κc)·z_f + (Σ_f κ)·own_f·z_f, and Σ κa·z is (Σ_f κa)·z_f: one visit per feature instead of one
// per entry (a 10 % mask of 500 samples lists each feature about 50 times). The w and h blocks visit
// the entries feature by feature too: the h rows at a feature (and their product) and its own term
// are then taken once per feature, and an entry reads only its row of w(s). Built once per solve.
struct ListedFeatures {
  std::vector<int32_t> index;  // K per feature
  Vec kappa;                   // Σ κ per feature
  Vec data;                    // Σ κa per feature (empty when every κa is 0)
  Vec offset;                  // Σ κc per feature, c the topic term at the start of the v sweeps
  Vec own;                     // the own term per feature, at the end of the v sweeps
  // The entries feature by feature: feature p's are start[p] … start[p + 1] − 1 of `samples` (their
  // sample indices) and of `kappas` (their κ; every κ where they are all kappa0, that many copies).
  std::vector<std::size_t> start;
  std::vector<int32_t> samples;
  Vec kappas;
  Vec kappaData;  // κa of the entries feature by feature (empty when every κa is 0)
  std::size_t most = 0;  // the most entries of one feature
  std::size_t size() const { return kappa.size(); }
  // Doubles held per listed entry (samples, κ and κa by feature at most; while building, each entry's
  // feature too) and per feature.
  static double doubles(std::size_t K, std::size_t entries, std::size_t features) {
    return 3.0 * static_cast<double>(entries) + (0.5 * static_cast<double>(K) + 5) * static_cast<double>(features);
  }
  void build(const TensorEntryWeights& e, const ListedTerms& terms, const Shape& dims) {
    const std::size_t K = dims.size(), F = shapeSize(dims);
    std::vector<int32_t> placeOf(F, -1);  // flat feature index → place in the list
    std::vector<int32_t> of(e.size());    // per listed entry: its feature's place in the list
    for (std::size_t k = 0; k < e.size(); ++k) {
      const int32_t* idx = e.index.data() + k * e.order + 1;
      std::size_t flat = 0;
      for (std::size_t t = 0; t < K; ++t) flat = flat * dims[t] + static_cast<std::size_t>(idx[t]);
      if (placeOf[flat] < 0) {
        placeOf[flat] = static_cast<int32_t>(kappa.size());
        index.insert(index.end(), idx, idx + K);
        kappa.push_back(0.0);
        if (terms.data) data.push_back(0.0);
      }
      const std::size_t f = static_cast<std::size_t>(placeOf[flat]);
      of[k] = static_cast<int32_t>(f);
      kappa[f] += e.kappa[k];
      if (terms.data) data[f] += e.kappa[k] * e.data[k];
    }
    offset.resize(kappa.size());
    own.resize(kappa.size());
    start.assign(kappa.size() + 1, 0);
    for (std::size_t k = 0; k < e.size(); ++k) ++start[static_cast<std::size_t>(of[k]) + 1];
    most = 0;
    for (std::size_t f = 0; f < kappa.size(); ++f) {
      most = std::max(most, start[f + 1]);
      start[f + 1] += start[f];
    }
    samples.resize(e.size());
    kappas.assign(terms.kappa ? e.size() : most, terms.kappa0);
    if (terms.data) kappaData.resize(e.size());
    std::vector<std::size_t> next(start.begin(), start.end() - 1);
    for (std::size_t k = 0; k < e.size(); ++k) {
      const std::size_t to = next[static_cast<std::size_t>(of[k])]++;
      samples[to] = e.index[k * e.order];
      if (terms.kappa) kappas[to] = terms.kappa[k];
      if (terms.data) kappaData[to] = e.kappa[k] * e.data[k];
    }
  }
  // κ of feature p's entries (kappas read from start[p], or the shared copies of kappa0).
  const double* kappasOf(std::size_t p, bool uniform) const { return uniform ? kappas.data() : kappas.data() + start[p]; }
};

// The listed entries of stratum s, or null when it has none (the plain solve).
const TensorEntryWeights* listedOf(const StratifiedNtfProblem& p, std::size_t s) {
  return s < p.weights.size() && p.weights[s].active() ? &p.weights[s] : nullptr;
}

// Σκ(a − B)² over the listed entries of stratum s: what they add to the plain ‖A(s) − B(s)‖².
double stratumListedLoss(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o, const StratifiedNtfState& st,
                         std::size_t s) {
  const TensorEntryWeights* e = listedOf(p, s);
  if (!e) return 0;
  Vec buffer, z(std::max(o.strataRank[s], o.rank));
  EntryRows rows;
  rows.build(p, o, st, s, buffer);
  double total = 0;
  for (std::size_t k = 0; k < e->size(); ++k) {
    const int32_t* idx = e->index.data() + k * e->order;
    const double d = e->data[k] - rows.ownAt(idx, z.data()) - rows.topicsAt(idx, z.data());
    total += e->kappa[k] * d * d;
  }
  return total;
}

// ‖A(s)‖² of every stratum, each on one thread of the team.
Vec strataSquaredNorms(RowTeam& team, const StratifiedNtfProblem& p) {
  const std::size_t F = shapeSize(p.dims);
  Vec norms(p.strata.size());
  double values = 0;
  for (std::size_t n : p.samples) values += static_cast<double>(n * F);
  auto norm = [&](std::size_t s, int) { norms[s] = squaredNorm(p.strata[s], p.samples[s] * F); };
  runEachIfWorth(team, p.strata.size(), values, norm);
  return norms;
}

// Σₛ Σ ω A(s)², the squared normalizer of loss and certificate (the plain Σₛ‖A(s)‖² without weights),
// from the strata's ‖A(s)‖²: the same additions in the same order as one pass over the strata.
double weightedDataNorm2(const StratifiedNtfProblem& p, const Vec& strataNorms) {
  double total = 0;
  for (std::size_t s = 0; s < p.strata.size(); ++s) {
    total += strataNorms[s];
    if (const TensorEntryWeights* e = listedOf(p, s))
      for (std::size_t k = 0; k < e->size(); ++k) total += e->kappa[k] * e->data[k] * e->data[k];
  }
  return total;
}

// Flops of one pass over every stratum's data at rank r (an MTTKRP of each): the work of the
// solver's per-stratum passes, which decides whether they pay for waking the team.
double strataFlops(const StratifiedNtfProblem& p, std::size_t r) {
  const double F = static_cast<double>(shapeSize(p.dims));
  double values = 0;
  for (std::size_t n : p.samples) values += static_cast<double>(n) * F;
  return 2 * values * static_cast<double>(r);
}

// Everything the Stratified-NTF updates keep between stages: Gram matrices, caches, scratch.
//
// The work is per stratum: its v(s) and w(s) updates, its parts of each hₜ update's numerator and
// denominator, its Grams and loss terms. A stratum's products are too small to split (10×64×64 at
// rank 40 in the benchmark: OpenBLAS gained 1.09× on 2 threads), so with a team of more than one
// thread the strata are spread over it (runEachIfWorth): a thread does whole strata, with its own
// scratch (Scratch) and single-threaded BLAS, and writes only that stratum's state and parts. What
// the strata share (hₜ's numerator and denominator, the loss) is summed from the stored parts in
// stratum order afterwards: the same operations in the same order as one thread, so the results are
// the same bits for every team size.
class StratifiedNtfSolver {
 public:
  StratifiedNtfSolver(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o, StratifiedNtfState& st)
      : p_(p), o_(o), st_(st), S_(p.strata.size()), K_(p.dims.size()), r_(o.rank), team_(stratifiedNtfThreads(p, o)),
        blas_(team_.size() > 1) {
    F_ = shapeSize(p.dims);
    dmax_ = *std::max_element(p.dims.begin(), p.dims.end());
    qmax_ = *std::max_element(o.strataRank.begin(), o.strataRank.end());
    nmax_ = *std::max_element(p.samples.begin(), p.samples.end());
    work_ = strataFlops(p, r_);
    const std::size_t dK = p.dims[K_ - 1];
    // Y(s) = A(s) contracted over its last mode with h_K: r × (nₛ·F/d_K). It serves the w update and
    // every h mode but the last (h_K changes only then), so it is kept for all strata when that costs
    // at most the data size (r ≤ d_K); otherwise it is recomputed per stratum and mode.
    cacheY_ = K_ >= 2 && r_ <= dK;
    if (cacheY_) Y_.resize(S_);
    // Per stratum on the team: Σᵢ A(s)[i], ‖A(s)‖² and Y(s)'s buffer (zeroed there, by its thread).
    sumA_.resize(S_);
    normsA_.resize(S_);
    auto prepare = [&](std::size_t s, Scratch&) {
      const std::size_t n = p.samples[s];
      const double* A = p.strata[s];
      sumA_[s].assign(F_, 0.0);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < F_; ++j) sumA_[s][j] += A[i * F_ + j];
      normsA_[s] = squaredNorm(A, n * F_);
      if (cacheY_) Y_[s].resize(r_ * n * F_ / dK);
    };
    perThread_.resize(static_cast<std::size_t>(team_.size()));
    eachStratum(work_, prepare);
    normA2_ = 0;
    for (std::size_t s = 0; s < S_; ++s) {
      normA2_ += normsA_[s];
      track(F_ + (cacheY_ ? Y_[s].size() : 0));
    }
    VV_.resize(S_ * K_);
    VH_.resize(S_ * K_);
    for (std::size_t s = 0; s < S_; ++s)
      for (std::size_t t = 0; t < K_; ++t) {
        const std::size_t q = o.strataRank[s];
        VV_[s * K_ + t].resize(q * q);
        VH_[s * K_ + t].resize(q * r_);
        track(q * q + q * r_);
      }
    HH_.assign(K_, Vec(r_ * r_));
    // Pointer tables over the Gram matrices (their buffers never move), so iterations allocate nothing.
    vvPtr_.resize(S_);
    vhPtr_.resize(S_);
    for (std::size_t s = 0; s < S_; ++s) {
      vvPtr_[s] = gramsOf(VV_, s * K_, K_);
      vhPtr_[s] = gramsOf(VH_, s * K_, K_);
    }
    hhPtr_ = gramsOf(HH_, 0, K_);
    // Weighted: per listed entry its topic term (see updateV/updateW), the listed numerator parts
    // and the derivative factors of one entry.
    topic_.resize(S_);
    terms_.resize(p.weights.size());
    features_.resize(S_);
    std::size_t longest = 0, most = 0;
    for (std::size_t s = 0; s < S_; ++s)
      if (const TensorEntryWeights* e = listedOf(p, s)) {
        topic_[s].resize(e->size());
        terms_[s] = ListedTerms(*e);
        features_[s].build(*e, terms_[s], p.dims);
        scratch_ += static_cast<std::size_t>(std::ceil(ListedFeatures::doubles(K_, e->size(), features_[s].size())));
        longest = std::max(longest, e->size());
        most = std::max(most, features_[s].most);
        track(e->size());
      }
    // The parts of the hₜ updates per stratum (each r × dₜ, stratum s's at s·r·dₜ): the numerators
    // (numAll_), the denominators (Dall_) and, where the loss reads another numerator than the update
    // (TV's normalized one, or the unweighted one with weights), that one (rawAll_). Left unset here:
    // the team's passes write them first (a serial fill of megabytes would be the longest serial
    // step of a solve on 2 threads).
    Mall_.resize(S_ * r_ * r_);
    Dall_.reset(new double[S_ * r_ * dmax_]);
    numAll_.reset(new double[S_ * r_ * dmax_]);
    keepRaw_ = o.tv || p.weighted();
    if (keepRaw_) rawAll_.reset(new double[S_ * r_ * dK]);
    modelS_.resize(S_);
    listedS_.resize(S_);
    track(Mall_.size() + (2 * dmax_ + (keepRaw_ ? dK : 0)) * S_ * r_ + 2 * S_);
    WW_.assign(S_, Vec(r_ * r_));
    wsum_.assign(S_, Vec(r_));
    innerV_.assign(S_, 0.0);
    track((K_ + S_) * r_ * r_ + S_ * r_);
    numSum_.resize(r_ * dmax_);
    denSum_.resize(r_ * dmax_);
    numRaw_.resize(r_ * dmax_);
    G_.resize(r_ * r_);
    track(3 * r_ * dmax_ + r_ * r_);
    if (o.tv) {
      hhat_.resize(K_);
      for (std::size_t t = 0; t < K_; ++t) hhat_[t].resize(r_ * p.dims[t]);
      track(3 * r_ * dmax_ * K_);
    }
    // Each thread's scratch. The last h mode's intermediate (see hNumerator): r × F (Z) when d₁ ≤ nₛ,
    // else r × nₛ·F/d₁ (X); contraction buffers: per-component slices of Y(s) (nₛ·F/d_K) or of X
    // (nₛ·F/d₁); MTTKRP scratch of the v update (sum tensors, rank qₛ).
    std::size_t xSize = 0;
    for (std::size_t n : p.samples) xSize = std::max(xSize, p.dims[0] <= n ? F_ : n * F_ / p.dims[0]);
    const std::size_t mat = std::max(r_, qmax_) * std::max({dmax_, nmax_, r_, qmax_});
    const std::size_t slice = std::max({nmax_ * F_ / dK, nmax_ * F_ / p.dims[0], F_});
    std::size_t rows = 0;
    for (std::size_t s = 0; s < S_; ++s) rows = std::max(rows, EntryRows::size(p, o.strataRank[s], r_, s));
    const std::size_t sums = std::max(r_, qmax_) * std::max(dmax_, nmax_);
    std::size_t mttkrp = 0;
    for (std::size_t t = 0; t < K_; ++t) mttkrp = std::max(mttkrp, mttkrpScratch(p.dims, qmax_, t));
    const std::size_t ySize = cacheY_ ? 0 : r_ * nmax_ * F_ / dK;
    const bool weighted = p.weighted();
    // Each thread sizes (and first writes) its own scratch.
    auto size = [&](int t, std::size_t, std::size_t) {
      Scratch& x = perThread_[static_cast<std::size_t>(t)];
      for (Vec* b : {&x.num, &x.den, &x.tmp, &x.tmp2}) b->resize(mat);
      x.E.resize(r_ * qmax_);
      x.X.resize(r_ * xSize);
      x.Y.resize(ySize);
      x.bufA.resize(slice);
      x.bufB.resize(slice);
      if (weighted) {
        x.listedNum.resize(mat);
        x.z.resize(std::max(r_, qmax_));
        x.acc.resize(2 * r_);
        x.coef.resize(most);
        x.values.resize(2 * longest);  // own and topic terms of every entry, for the loss
        x.rowsBuffer.reserve(rows);
        x.numT.resize(sums);
        x.denT.resize(sums);
      }
    };
    runRows(team_, perThread_.size(), 1, size);
    track(perThread_.size() * (4 * mat + r_ * qmax_ + r_ * xSize + ySize + 2 * slice + mttkrp));
    if (weighted)
      track(perThread_.size() * (mat + std::max(r_, qmax_) + 2 * r_ + most + 2 * longest + rows + 2 * sums));
    // The initial loss' MTTKRP scratch (strata, rank r).
    Shape full(p.dims);
    full.insert(full.begin(), nmax_);
    track(mttkrpScratch(full, r_, 0));
  }

  std::size_t scratchDoubles() const { return scratch_; }
  RowTeam& team() { return team_; }
  // ‖A(s)‖² per stratum (computed once by the constructor).
  const Vec& strataNorms() const { return normsA_; }

  double initialLoss() { return stratifiedNtfLoss(p_, o_, st_, team_); }

  // One iteration; returns the loss after it when `wantLoss`, else NaN.
  double iterate(bool wantLoss, std::vector<StratifiedNtfState>* stages) {
    for (std::size_t t = 0; t < K_; ++t) crossRows(st_.h[t].data(), r_, st_.h[t].data(), r_, p_.dims[t], HH_[t].data());
    if (stages) {
      // The state after each stage (recordStages: parity tests), so stage by stage over all strata.
      eachStratum(work_, [&](std::size_t s, Scratch&) { refreshGrams(s); });
      for (int sweep = 0; sweep < o_.vScaling; ++sweep) {
        eachStratum(work_, [&](std::size_t s, Scratch& x) { updateV(s, x, sweep == 0, sweep + 1 == o_.vScaling); });
        stages->push_back(st_);
      }
      eachStratum(work_, [&](std::size_t s, Scratch& x) { updateW(s, x); });
      stages->push_back(st_);
    } else {
      // A stratum's Grams, v sweeps and w update read its own state and h, which no other stratum's
      // change: its whole sequence in one pass, on one thread.
      eachStratum(work_, [&](std::size_t s, Scratch& x) {
        refreshGrams(s);
        for (int sweep = 0; sweep < o_.vScaling; ++sweep) updateV(s, x, sweep == 0, sweep + 1 == o_.vScaling);
        updateW(s, x);
      });
    }
    // The loss' parts per stratum (modelS_, listedS_) come with the last refresh of the Grams.
    updateH(wantLoss);
    if (stages) stages->push_back(st_);
    if (o_.tv) {
      for (std::size_t t = 0; t < K_; ++t) st_.h[t] = hhat_[t];
      for (std::size_t t = 0; t < K_; ++t) refreshH(t, wantLoss && t + 1 == K_);
      if (stages) stages->push_back(st_);
    }
    if (!wantLoss) return std::nan("");
    double inner = 0;
    for (std::size_t s = 0; s < S_; ++s) inner += innerV_[s];
    inner += dot(numRaw_.data(), st_.h[K_ - 1].data(), r_ * p_.dims[K_ - 1]);
    double model = 0;
    for (std::size_t s = 0; s < S_; ++s) model += modelS_[s];
    // Weighted: the plain part (A(s) holds 0 at missing entries) plus the listed entries' part.
    double listed = 0;
    for (std::size_t s = 0; s < S_; ++s) listed += listedS_[s];
    const double fit = std::sqrt(std::max(normA2_ - 2 * inner + model + listed, 0.0));
    return o_.tv ? fit + o_.tvReg * tvLoss(st_.h, p_.dims, r_) : fit;
  }

 private:
  // One thread's scratch for the per-stratum work.
  struct Scratch {
    Vec num, den, tmp, tmp2, E, X, Y, bufA, bufB;
    Vec listedNum, z, acc, coef, rowsBuffer, numT, denT, values;  // weighted only
    EntryRows rows;
    Workspace ws;
  };

  void track(std::size_t n) { scratch_ += n; }

  // f(s, the thread's scratch) for every stratum on the team (runEachIfWorth).
  template <class F>
  void eachStratum(double work, F&& f) {
    auto item = [&](std::size_t s, int t) { f(s, perThread_[static_cast<std::size_t>(t)]); };
    runEachIfWorth(team_, S_, work, item);
  }

  const double* v(std::size_t s, std::size_t t) const { return st_.v[s * K_ + t].data(); }
  double* v(std::size_t s, std::size_t t) { return st_.v[s * K_ + t].data(); }

  void refreshGrams(std::size_t s) { stratumGrams(p_, o_, st_, s, VV_, VH_, WW_, wsum_); }
  void refreshW(std::size_t s) { stratumWGrams(p_, o_, st_, s, WW_, wsum_); }

  // After hₜ changed: its Grams; with `loss` (the last change of an iteration whose loss is wanted),
  // then each stratum's ‖B(s)‖² and listed part into modelS_ and listedS_, in the same pass.
  void refreshH(std::size_t t, bool loss) {
    crossRows(st_.h[t].data(), r_, st_.h[t].data(), r_, p_.dims[t], HH_[t].data());
    const double work = static_cast<double>(2 * S_ * qmax_ * r_ * p_.dims[t]);
    eachStratum(work, [&](std::size_t s, Scratch& x) {
      crossRows(v(s, t), o_.strataRank[s], st_.h[t].data(), r_, p_.dims[t], VH_[s * K_ + t].data());
      if (loss) {
        modelS_[s] = modelSquaredNorm(s);
        listedS_[s] = listedLoss(s, x);
      }
    });
  }

  std::vector<const double*> gramsOf(const std::vector<Vec>& g, std::size_t first, std::size_t count) const {
    std::vector<const double*> out(count);
    for (std::size_t k = 0; k < count; ++k) out[k] = g[first + k].data();
    return out;
  }

  // v(s)ₜ ← v(s)ₜ ∘ N/D for every mode in order (old w and h), N = MTTKRP of Σᵢ A(s)[i] with the
  // other v(s) factors, D = nₛ(⊙ₖ≠ₜ VₖVₖᵀ)Vₜ + (⊙ₖ≠ₜ VₖHₖᵀ)(Hₜ with rows scaled by Σᵢ w[b, i]).
  // Weighted: N and D gain the listed entries' κ·a·z and κ·B·z (z: the entry's derivative factors),
  // making them the MTTKRPs of Ω∘A and Ω∘B; the topic term of B is fixed through the v sweeps.
  void updateV(std::size_t s, Scratch& x, bool firstSweep, bool lastSweep) {
    const std::size_t q = o_.strataRank[s], n = p_.samples[s];
    const TensorEntryWeights* e = listedOf(p_, s);
    if (e && firstSweep) {
      // The topic term c at each listed entry (w and h are those of the w update too, which reads
      // them from topic_), and Σ_f κc per feature (ListedFeatures).
      x.rows.build(p_, o_, st_, s, x.rowsBuffer);
      ListedFeatures& f = features_[s];
      const listed::Kernels& kernels = listed::kernels();
      const bool uniform = !terms_[s].kappa;
      double* c = topic_[s].data();
      double* z = x.z.data();
      for (std::size_t p = 0; p < f.size(); ++p) {
        const std::size_t first = f.start[p], k = f.start[p + 1] - first;
        hRowsProduct(x.rows, f.index.data() + p * K_, K_, z);
        kernels.dots(z, x.rows.topics[0], f.samples.data() + first, k, r_, c + first);
        f.offset[p] = dotShort(f.kappasOf(p, uniform), c + first, k);
      }
    }
    const double* factors[kMaxTensorOrder];
    for (std::size_t t = 0; t < K_; ++t) factors[t] = v(s, t);
    const auto& vv = vvPtr_[s];
    const auto& vh = vhPtr_[s];
    for (std::size_t t = 0; t < K_; ++t) {
      const std::size_t d = p_.dims[t];
      mttkrpRankMajor(sumA_[s].data(), p_.dims, factors, q, t, x.num.data(), x.ws);
      double* G1 = x.tmp.data();
      double* G2 = x.tmp2.data();
      hadamardAllBut(vv, t, q * q, G1);
      gemm(false, false, q, d, q, static_cast<double>(n), G1, v(s, t), 0.0, x.den.data());
      hadamardAllBut(vh, t, q * r_, G2);
      // (⊙ₖ≠ₜ VₖHₖᵀ)·diag(Σᵢ w[b, i])·Hₜ: the row sums of w scale the columns of the small factor.
      const double* h = st_.h[t].data();
      for (std::size_t a = 0; a < q; ++a)
        for (std::size_t b = 0; b < r_; ++b) G2[a * r_ + b] *= wsum_[s][b];
      gemm(false, false, q, d, r_, 1.0, G2, h, 1.0, x.den.data());
      if (e) {
        double* lnum = x.listedNum.data();
        std::copy(x.num.begin(), x.num.begin() + static_cast<std::ptrdiff_t>(q * d), lnum);
        x.rows.build(p_, o_, st_, s, x.rowsBuffer, true);
        listedFeatureSums(s, t, lnum, x.den.data(), x);
        multiplicativeStep(v(s, t), lnum, x.den.data(), q * d, o_.epsilon);
      } else {
        multiplicativeStep(v(s, t), x.num.data(), x.den.data(), q * d, o_.epsilon);
      }
      crossRows(v(s, t), q, v(s, t), q, d, VV_[s * K_ + t].data());
      crossRows(v(s, t), q, h, r_, d, VH_[s * K_ + t].data());
      // ⟨Σᵢ A(s)[i], ⊗ₜ v(s)ₜ⟩ for the loss: the last mode's numerator against its new value.
      if (lastSweep && t + 1 == K_) innerV_[s] = dot(x.num.data(), v(s, t), q * d);
    }
  }

  // Y(s) (r × nₛ·F/d_K) = A(s) contracted over its last mode with h_K (kept, or in x.Y).
  const double* computeY(std::size_t s, Scratch& x) {
    const std::size_t n = p_.samples[s], dK = p_.dims[K_ - 1];
    double* Y = cacheY_ ? Y_[s].data() : x.Y.data();
    gemm(false, true, r_, n * F_ / dK, dK, 1.0, st_.h[K_ - 1].data(), p_.strata[s], 0.0, Y);
    return Y;
  }

  // w(s) ← w(s) ∘ N/D with N = MTTKRP of A(s) with h (mode 0), D = row sums of ⊙ₜ HₜVₜᵀ + (⊙ₜ HₜHₜᵀ)w.
  void updateW(std::size_t s, Scratch& x) {
    const std::size_t n = p_.samples[s];
    const double* Y = computeY(s, x);
    if (K_ == 1) {
      std::memcpy(x.num.data(), Y, r_ * n * sizeof(double));
    } else {
      std::size_t dims[kMaxTensorOrder];
      dims[0] = n;
      for (std::size_t t = 0; t + 1 < K_; ++t) dims[t + 1] = p_.dims[t];
      const std::size_t len = n * F_ / p_.dims[K_ - 1];
      const double* vecs[kMaxTensorOrder];
      for (std::size_t b = 0; b < r_; ++b) {
        vecs[0] = nullptr;
        for (std::size_t t = 0; t + 1 < K_; ++t) vecs[t + 1] = st_.h[t].data() + b * p_.dims[t];
        contractAllBut(Y + b * len, dims, K_, 0, vecs, x.num.data() + b * n, x.bufA.data(), x.bufB.data());
      }
    }
    const std::size_t q = o_.strataRank[s];
    double* P = x.tmp.data();  // ⊙ₜ VₜHₜᵀ (q × r)
    hadamardAllBut(vhPtr_[s], K_, q * r_, P);
    double* G = x.tmp2.data();
    hadamardAllBut(hhPtr_, K_, r_ * r_, G);
    double* w = st_.w[s].data();
    double* den = x.den.data();
    gemm(false, false, r_, n, r_, 1.0, G, w, 0.0, den);
    for (std::size_t b = 0; b < r_; ++b) {
      double c = 0;
      for (std::size_t a = 0; a < q; ++a) c += P[a * r_ + b];
      for (std::size_t i = 0; i < n; ++i) den[b * n + i] += c;
    }
    if (listedOf(p_, s)) {
      // Weighted: as in updateV, with the stratum's own term fixed (kept for the h update too).
      // By feature (ListedFeatures): an entry's derivative factors are the h rows' product z_f at its
      // feature and its model value own_f + c (c from updateV: w and h have not changed since), so
      // it adds κ(own_f + c)·z_f and κa·z_f to its sample's rows.
      double* lnum = x.listedNum.data();
      std::copy(x.num.begin(), x.num.begin() + static_cast<std::ptrdiff_t>(r_ * n), lnum);
      x.rows.build(p_, o_, st_, s, x.rowsBuffer);
      ListedFeatures& f = features_[s];
      const listed::Kernels& kernels = listed::kernels();
      kernels.cpValues(x.rows.own, K_, o_.strataRank[s], f.index.data(), K_, f.size(), f.own.data());
      const bool uniform = !terms_[s].kappa, data = !f.kappaData.empty();
      double* nT = x.numT.data();
      double* dT = x.denT.data();
      std::fill(dT, dT + n * r_, 0.0);
      if (data) std::fill(nT, nT + n * r_, 0.0);
      const double* c = topic_[s].data();
      double* coef = x.coef.data();
      double* z = x.z.data();
      for (std::size_t p = 0; p < f.size(); ++p) {
        const std::size_t first = f.start[p], k = f.start[p + 1] - first;
        const double* kappa = f.kappasOf(p, uniform);
        const double own = f.own[p];
        for (std::size_t j = 0; j < k; ++j) coef[j] = kappa[j] * (own + c[first + j]);
        hRowsProduct(x.rows, f.index.data() + p * K_, K_, z);
        kernels.scatterAxpy(coef, z, f.samples.data() + first, k, r_, dT);
        if (data) kernels.scatterAxpy(f.kappaData.data() + first, z, f.samples.data() + first, k, r_, nT);
      }
      addTransposed(dT, n, den);
      if (data) addTransposed(nT, n, lnum);
      multiplicativeStep(w, lnum, den, r_ * n, o_.epsilon);
    } else {
      multiplicativeStep(w, x.num.data(), den, r_ * n, o_.epsilon);
    }
    refreshW(s);
  }

  // N(s) for h mode t into out (r × d_t); for the last mode, also the numerator with the
  // column-normalized earlier modes (TV) into `hatOut` when given.
  void hNumerator(std::size_t s, std::size_t t, double* out, double* hatOut, Scratch& x) {
    const std::size_t n = p_.samples[s];
    const double* w = st_.w[s].data();
    if (K_ == 1) {
      gemm(false, false, r_, F_, n, 1.0, w, p_.strata[s], 0.0, out);
      if (hatOut) std::memcpy(hatOut, out, r_ * F_ * sizeof(double));
      return;
    }
    const double* vecs[kMaxTensorOrder];
    std::size_t dims[kMaxTensorOrder];
    if (t + 1 < K_) {
      const double* Y = cacheY_ ? Y_[s].data() : computeY(s, x);
      dims[0] = n;
      for (std::size_t k = 0; k + 1 < K_; ++k) dims[k + 1] = p_.dims[k];
      const std::size_t len = n * F_ / p_.dims[K_ - 1];
      for (std::size_t b = 0; b < r_; ++b) {
        vecs[0] = w + b * n;
        for (std::size_t k = 0; k + 1 < K_; ++k) vecs[k + 1] = st_.h[k].data() + b * p_.dims[k];
        contractAllBut(Y + b * len, dims, K_, t + 1, vecs, out + b * p_.dims[t], x.bufA.data(), x.bufB.data());
      }
      return;
    }
    // Last mode. Both ways below cost 2·|A(s)|·r flops; take the one with the smaller intermediate.
    const std::size_t d = p_.dims[t];
    double* X = x.X.data();
    if (p_.dims[0] <= n) {
      // Z = w(s)·A(s) (r × F, one GEMM with k = nₛ), then per component the other h modes.
      gemm(false, false, r_, F_, n, 1.0, w, p_.strata[s], 0.0, X);
      for (std::size_t k = 0; k < K_; ++k) dims[k] = p_.dims[k];
      for (int pass = 0; pass < (hatOut ? 2 : 1); ++pass) {
        const std::vector<Vec>& h = pass == 0 ? st_.h : hhat_;
        double* dst = pass == 0 ? out : hatOut;
        for (std::size_t b = 0; b < r_; ++b) {
          for (std::size_t k = 0; k + 1 < K_; ++k) vecs[k] = h[k].data() + b * p_.dims[k];
          contractAllBut(X + b * F_, dims, K_, K_ - 1, vecs, dst + b * d, x.bufA.data(), x.bufB.data());
        }
      }
      return;
    }
    // X = A(s) contracted over its first feature mode with h₁ (per-sample GEMMs with k = d₁, small
    // outputs: much faster than contracting few samples first), then per component the samples with
    // w(s)[b] and the middle modes.
    dims[0] = n;
    for (std::size_t k = 1; k < K_; ++k) dims[k] = p_.dims[k];
    const std::size_t len = n * F_ / p_.dims[0];
    for (int pass = 0; pass < (hatOut ? 2 : 1); ++pass) {
      const std::vector<Vec>& h = pass == 0 ? st_.h : hhat_;
      double* dst = pass == 0 ? out : hatOut;
      contractFirstFeatureMode(s, h[0].data(), X);
      for (std::size_t b = 0; b < r_; ++b) {
        vecs[0] = w + b * n;
        for (std::size_t k = 1; k + 1 < K_; ++k) vecs[k] = h[k].data() + b * p_.dims[k];
        contractAllBut(X + b * len, dims, K_, K_ - 1, vecs, dst + b * d, x.bufA.data(), x.bufB.data());
      }
    }
  }

  // X (r × nₛ·F/d₁, component-major) = A(s) contracted over mode 1 with h₁: one GEMM per sample,
  // h₁ (r × d₁) · A(s)[i] (d₁ × F/d₁), written into the columns of sample i.
  void contractFirstFeatureMode(std::size_t s, const double* h1, double* X) {
    const std::size_t n = p_.samples[s], d1 = p_.dims[0], R = F_ / d1;
    for (std::size_t i = 0; i < n; ++i) {
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, asInt(r_), asInt(R), asInt(d1), 1.0, h1, asInt(d1),
                  p_.strata[s] + i * F_, asInt(R), 0.0, X + i * R, asInt(n * R));
    }
  }

  // Stratum s's parts of the hₜ update (r × dₜ each): its numerator into numAll_, its denominator
  // D(s) = (w(s)w(s)ᵀ ⊙ G)·Hₜ (in Dall_ already) + diag(Σᵢ w[b, i])·(⊙ₖ≠ₜ HₖVₖᵀ)·Vₜ into Dall_
  // (G = ⊙ₖ≠ₜ HₖHₖᵀ), and with `raw` the numerator the loss reads into rawAll_.
  void hParts(std::size_t s, std::size_t t, bool loss, bool raw, Scratch& x) {
    const std::size_t q = o_.strataRank[s], d = p_.dims[t], rd = r_ * d;
    double* Ds = Dall_.get() + s * rd;
    double* numS = numAll_.get() + s * rd;
    double* rawS = raw ? rawAll_.get() + s * rd : nullptr;
    const bool listed = listedOf(p_, s) != nullptr;
    double* plain = listed ? x.num.data() : numS;  // the unweighted numerator
    double* hat = loss && o_.tv ? rawS : nullptr;
    hNumerator(s, t, plain, hat, x);
    if (rawS && !hat) std::copy(plain, plain + rd, rawS);
    double* E = x.E.data();
    const auto& vh = vhPtr_[s];
    for (std::size_t b = 0; b < r_; ++b)
      for (std::size_t a = 0; a < q; ++a) {
        double e = wsum_[s][b];
        for (std::size_t k = 0; k < K_; ++k)
          if (k != t) e *= vh[k][a * r_ + b];
        E[b * q + a] = e;
      }
    gemm(false, false, r_, d, q, 1.0, E, v(s, t), 1.0, Ds);
    if (listed) {
      // Weighted: as in updateW, with the stratum's own term fixed (from updateW).
      std::copy(plain, plain + rd, numS);
      listedHSums(s, t, numS, Ds, x);
    }
  }

  // The modes of h in order (new w), numerators and denominators floored per stratum then summed.
  // `wantLoss`: the loss after the update is wanted (the numerator it reads kept).
  void updateH(bool wantLoss) {
    if (o_.tv)
      // From h at the start of the update, as the reference (for these two modes that equals their
      // value when they are updated, since only earlier modes change before).
      for (std::size_t t = 0; t < std::min<std::size_t>(2, K_); ++t) {
        tvNum_[t].resize(r_ * p_.dims[t]);
        tvDen_[t].resize(r_ * p_.dims[t]);
        tvSplit(st_.h[t].data(), r_, p_.dims[t], tvNum_[t].data(), tvDen_[t].data());
      }
    for (std::size_t t = 0; t < K_; ++t) {
      const std::size_t d = p_.dims[t], rd = r_ * d;
      const bool loss = t + 1 == K_ && wantLoss;
      // The loss reads another numerator than the update: TV's, or the unweighted one with weights.
      const bool raw = loss && keepRaw_;
      // ((w(s)w(s)ᵀ) ⊙ ⊙ₖ≠ₜ HₖHₖᵀ)·Hₜ for every stratum at once: one (S·r × r)·(r × dₜ) GEMM, split by
      // columns over the team (a split by rows, one stratum's each, rounds differently in OpenBLAS).
      hadamardAllBut(hhPtr_, t, r_ * r_, G_.data());
      for (std::size_t s = 0; s < S_; ++s)
        for (std::size_t i = 0; i < r_ * r_; ++i) Mall_[s * r_ * r_ + i] = WW_[s][i] * G_[i];
      const double* h = st_.h[t].data();
      auto product = [&](int, std::size_t b, std::size_t e) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, asInt(S_ * r_), asInt(e - b), asInt(r_), 1.0, Mall_.data(),
                    asInt(r_), h + b, asInt(d), 0.0, Dall_.get() + b, asInt(d));
      };
      runRowsIfWorth(team_, d, 8, static_cast<double>(2 * S_ * rd * r_), product);
      eachStratum(work_, [&](std::size_t s, Scratch& x) { hParts(s, t, loss, raw, x); });
      // Σₛ max(N(s), ε) and Σₛ max(D(s), ε) (and the loss' Σₛ N(s)) entry by entry, in stratum order.
      const double* numAll = numAll_.get();
      const double* Dall = Dall_.get();
      const double* rawParts = raw ? rawAll_.get() : numAll;
      // Each thread's entries [b, e), stratum by stratum (contiguous reads), each sum started at 0.
      auto reduce = [&](int, std::size_t b, std::size_t e) {
        std::fill(numSum_.begin() + static_cast<std::ptrdiff_t>(b), numSum_.begin() + static_cast<std::ptrdiff_t>(e), 0.0);
        std::fill(denSum_.begin() + static_cast<std::ptrdiff_t>(b), denSum_.begin() + static_cast<std::ptrdiff_t>(e), 0.0);
        if (loss) std::fill(numRaw_.begin() + static_cast<std::ptrdiff_t>(b), numRaw_.begin() + static_cast<std::ptrdiff_t>(e), 0.0);
        for (std::size_t s = 0; s < S_; ++s) {
          const double* num = numAll + s * rd;
          const double* den = Dall + s * rd;
          for (std::size_t i = b; i < e; ++i) {
            numSum_[i] += std::max(num[i], o_.epsilon);
            denSum_[i] += std::max(den[i], o_.epsilon);
          }
          if (loss)
            for (std::size_t i = b; i < e; ++i) numRaw_[i] += rawParts[s * rd + i];
        }
      };
      runRowsIfWorth(team_, rd, 8, static_cast<double>(3 * S_ * rd), reduce);
      if (o_.tv && t < 2) {
        const Vec& tn = tvNum_[t];
        const Vec& td = tvDen_[t];
        for (std::size_t i = 0; i < rd; ++i) {
          numSum_[i] += o_.tvReg * tn[i];
          denSum_[i] += o_.tvReg * td[i];
        }
      }
      double* hm = st_.h[t].data();
      for (std::size_t i = 0; i < rd; ++i) hm[i] = hm[i] * (numSum_[i] / denSum_[i]);
      refreshH(t, loss && !o_.tv);  // with TV, h changes once more below
      if (o_.tv) {
        hhat_[t] = st_.h[t];
        normalizeColumns(hhat_[t].data(), r_, d);
      }
    }
  }

  // The listed entries' parts of the v(s)ₜ update's sums (q × dₜ, rank-major), by feature
  // (ListedFeatures): den += Σ_f (Σκc + Σκ·own_f)·z_f and num += Σ_f (Σκa)·z_f, z_f the feature's
  // derivative factors (the other v(s) modes' rows). Reads x.rows.own.
  void listedFeatureSums(std::size_t s, std::size_t t, double* num, double* den, Scratch& x) {
    const ListedFeatures& f = features_[s];
    const std::size_t q = o_.strataRank[s], d = p_.dims[t];
    double* z = x.z.data();
    for (std::size_t p = 0; p < f.size(); ++p) {
      const int32_t* idx = f.index.data() + p * K_;
      const double own = termAt(x.rows.own, K_, q, idx, t, z);
      const double coef = f.offset[p] + f.kappa[p] * own;
      const std::size_t i = static_cast<std::size_t>(idx[t]);
      for (std::size_t a = 0; a < q; ++a) den[a * d + i] += coef * z[a];
      if (!f.data.empty())
        for (std::size_t a = 0; a < q; ++a) num[a * d + i] += f.data[p] * z[a];
    }
  }

  // The listed entries' parts of the hₜ update's sums for stratum s (r × dₜ, rank-major), by feature
  // (ListedFeatures): at feature f the h rows' product g_f (all modes) gives each entry's model value
  // own_f + w(s)[i]·g_f, and the entries' derivative factors w(s)[i] ⊙ z_f (z_f: the h rows but
  // mode t's) share z_f, so row fₜ gains z_f ⊙ Σ κ(own_f + w(s)[i]·g_f)·w(s)[i] in den and
  // z_f ⊙ Σ κa·w(s)[i] in num: per entry a product and a sum of its row of w(s), nothing else.
  void listedHSums(std::size_t s, std::size_t t, double* num, double* den, Scratch& x) {
    x.rows.build(p_, o_, st_, s, x.rowsBuffer);
    const ListedFeatures& f = features_[s];
    const listed::Kernels& kernels = listed::kernels();
    const std::size_t d = p_.dims[t];
    const bool uniform = !terms_[s].kappa, data = !f.kappaData.empty();
    double* nT = x.numT.data();
    double* dT = x.denT.data();
    std::fill(dT, dT + d * r_, 0.0);
    if (data) std::fill(nT, nT + d * r_, 0.0);
    double* z = x.z.data();
    double* acc = x.acc.data();
    double* accData = acc + r_;
    const double* w = x.rows.topics[0];
    for (std::size_t p = 0; p < f.size(); ++p) {
      const std::size_t first = f.start[p], k = f.start[p + 1] - first;
      const int32_t* idx = f.index.data() + p * K_;
      const int32_t* samples = f.samples.data() + first;
      hRowsProduct(x.rows, idx, K_, z);
      std::fill(acc, acc + r_, 0.0);
      kernels.dotsAxpy(z, w, samples, f.kappasOf(p, uniform), f.own[p], k, r_, acc);
      if (data) {
        std::fill(accData, accData + r_, 0.0);
        kernels.gatherAxpy(f.kappaData.data() + first, w, samples, k, r_, accData);
      }
      hRowsProduct(x.rows, idx, t, z);
      const std::size_t row = static_cast<std::size_t>(idx[t]) * r_;
      for (std::size_t b = 0; b < r_; ++b) dT[row + b] += z[b] * acc[b];
      if (data)
        for (std::size_t b = 0; b < r_; ++b) nT[row + b] += z[b] * accData[b];
    }
    addTransposed(dT, d, den);
    if (data) addTransposed(nT, d, num);
  }

  // out (r) = ⊙_{k≠skip} hₖ[idx[k]] from the entry-major h rows of `rows` (skip ≥ K: all modes).
  void hRowsProduct(const EntryRows& rows, const int32_t* idx, std::size_t skip, double* out) const {
    rowsProduct(rows.topics + 1, K_, r_, idx, skip, out);
  }

  // out (r × d, rank-major) += x (d × r, entry-major).
  void addTransposed(const double* x, std::size_t d, double* out) const {
    for (std::size_t a = 0; a < r_; ++a)
      for (std::size_t j = 0; j < d; ++j) out[a * d + j] += x[j * r_ + a];
  }

  // stratumListedLoss at the solver's state, in the thread's buffers.
  double listedLoss(std::size_t s, Scratch& x) {
    const TensorEntryWeights* e = listedOf(p_, s);
    if (!e) return 0;
    x.rows.build(p_, o_, st_, s, x.rowsBuffer);
    double* own = x.values.data();
    double* topics = own + e->size();
    x.rows.ownValues(*e, own);
    x.rows.topicsValues(*e, topics);
    double total = 0;
    for (std::size_t k = 0; k < e->size(); ++k) {
      const double d = e->data[k] - own[k] - topics[k];
      total += e->kappa[k] * d * d;
    }
    return total;
  }

  // ‖B(s)‖² = nₛ Σ ⊙ₜVₜVₜᵀ + 2 Σ_{a,b} (⊙ₜVₜHₜᵀ)[a,b] Σᵢw[b,i] + Σ (wwᵀ) ⊙ (⊙ₜHₜHₜᵀ), from current Grams.
  double modelSquaredNorm(std::size_t s) const {
    const std::size_t q = o_.strataRank[s], n = p_.samples[s];
    double total = 0;
    {
      double acc = 0;
      for (std::size_t i = 0; i < q * q; ++i) {
        double e = 1;
        for (std::size_t t = 0; t < K_; ++t) e *= VV_[s * K_ + t][i];
        acc += e;
      }
      total += static_cast<double>(n) * acc;
    }
    {
      double acc = 0;
      for (std::size_t a = 0; a < q; ++a)
        for (std::size_t b = 0; b < r_; ++b) {
          double e = 1;
          for (std::size_t t = 0; t < K_; ++t) e *= VH_[s * K_ + t][a * r_ + b];
          acc += e * wsum_[s][b];
        }
      total += 2 * acc;
    }
    {
      double acc = 0;
      for (std::size_t i = 0; i < r_ * r_; ++i) {
        double e = WW_[s][i];
        for (std::size_t t = 0; t < K_; ++t) e *= HH_[t][i];
        acc += e;
      }
      total += acc;
    }
    return total;
  }

  const StratifiedNtfProblem& p_;
  const StratifiedNtfOptions& o_;
  StratifiedNtfState& st_;
  std::size_t S_, K_, r_, F_ = 0, dmax_ = 0, qmax_ = 0, nmax_ = 0;
  RowTeam team_;
  SingleThreadedBlas blas_;  // OpenBLAS on one thread while a team of several runs the strata
  std::vector<Scratch> perThread_;
  double work_ = 0;  // flops of a pass over the strata (strataFlops)
  double normA2_ = 0;
  Vec normsA_;
  std::vector<Vec> sumA_, VV_, VH_, HH_, WW_, wsum_, Y_, hhat_;
  std::vector<double> innerV_;
  bool cacheY_ = false;
  Vec numSum_, denSum_, numRaw_, G_, Mall_, modelS_, listedS_;
  std::unique_ptr<double[]> Dall_, numAll_, rawAll_;
  bool keepRaw_ = false;
  std::vector<Vec> topic_;  // weighted: per listed entry of each stratum (by feature), its topic term
  std::vector<ListedTerms> terms_;  // per stratum: what its listed loops may skip reading
  std::vector<ListedFeatures> features_;  // per stratum: its listed entries by feature index
  Vec tvNum_[2], tvDen_[2];
  std::vector<std::vector<const double*>> vvPtr_, vhPtr_;
  std::vector<const double*> hhPtr_;
  std::size_t scratch_ = 0;
};

}  // namespace

void stratifiedNtfRandomInit(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o, std::uint64_t seed,
                             StratifiedNtfState& st) {
  Random rng(seed);
  const std::size_t S = p.strata.size(), K = p.dims.size(), r = o.rank;
  st.v.assign(S * K, Vec());
  st.w.assign(S, Vec());
  st.h.assign(K, Vec());
  for (std::size_t s = 0; s < S; ++s)
    for (std::size_t t = 0; t < K; ++t) {
      st.v[s * K + t].resize(o.strataRank[s] * p.dims[t]);
      rng.fillUniform(st.v[s * K + t].data(), st.v[s * K + t].size());
    }
  for (std::size_t s = 0; s < S; ++s) {
    st.w[s].resize(r * p.samples[s]);
    rng.fillUniform(st.w[s].data(), st.w[s].size());
  }
  for (std::size_t t = 0; t < K; ++t) {
    st.h[t].resize(r * p.dims[t]);
    rng.fillUniform(st.h[t].data(), st.h[t].size());
  }
}

int stratifiedNtfThreads(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o) {
  const int threads = teamThreads(0, strataFlops(p, o.rank));
  const int S = static_cast<int>(p.strata.size());
  if (S >= threads) return threads;
  // Fewer strata than threads: spread, they would leave threads idle. That still pays where a
  // stratum's products are too small for OpenBLAS to thread well (below about 10⁷ flops: docs/
  // threads.md, "Small jobs"); larger ones keep OpenBLAS's threads, one stratum at a time.
  return strataFlops(p, o.rank) / S < 1e7 ? S : 1;
}

double stratifiedNtfLoss(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o, const StratifiedNtfState& st) {
  RowTeam team(stratifiedNtfThreads(p, o));
  SingleThreadedBlas blas(team.size() > 1);
  return stratifiedNtfLoss(p, o, st, team);
}

double stratifiedNtfLoss(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o, const StratifiedNtfState& st,
                         RowTeam& team) {
  const std::size_t S = p.strata.size(), K = p.dims.size(), r = o.rank;
  const std::size_t F = shapeSize(p.dims);
  struct Scratch {
    Workspace ws;
    Vec M, g1, g2, sumA;
  };
  std::vector<Scratch> perThread(static_cast<std::size_t>(team.size()));
  std::vector<Vec> HH(K, Vec(r * r));
  for (std::size_t t = 0; t < K; ++t) crossRows(st.h[t].data(), r, st.h[t].data(), r, p.dims[t], HH[t].data());
  // Each stratum's ‖A(s) − B(s)‖² (plus its listed part) on one thread, summed in stratum order below.
  Vec terms(S);
  auto term = [&](std::size_t s, int thread) {
    Scratch& x = perThread[static_cast<std::size_t>(thread)];
    const std::size_t n = p.samples[s], q = o.strataRank[s];
    const double* A = p.strata[s];
    Vec& sumA = x.sumA;
    sumA.assign(F, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < F; ++j) sumA[j] += A[i * F + j];
    // ⟨A, B⟩: the v term through Σᵢ A[i], the CP term through the mode-0 MTTKRP.
    std::vector<const double*> vf(K), cf(K + 1);
    for (std::size_t t = 0; t < K; ++t) vf[t] = st.v[s * K + t].data();
    x.M.resize(std::max(q * p.dims[K - 1], r * n));
    mttkrpRankMajor(sumA.data(), p.dims, vf.data(), q, K - 1, x.M.data(), x.ws);
    double inner = dot(x.M.data(), vf[K - 1], q * p.dims[K - 1]);
    Shape full(p.dims);
    full.insert(full.begin(), n);
    cf[0] = st.w[s].data();
    for (std::size_t t = 0; t < K; ++t) cf[t + 1] = st.h[t].data();
    mttkrpRankMajor(A, full, cf.data(), r, 0, x.M.data(), x.ws);
    inner += dot(x.M.data(), st.w[s].data(), r * n);
    // ‖B‖² from Gram matrices.
    Vec VV(q * q, 1.0), VH(q * r, 1.0), WW(r * r);
    x.g1.resize(q * q);
    x.g2.resize(q * r);
    for (std::size_t t = 0; t < K; ++t) {
      crossRows(vf[t], q, vf[t], q, p.dims[t], x.g1.data());
      crossRows(vf[t], q, st.h[t].data(), r, p.dims[t], x.g2.data());
      for (std::size_t i = 0; i < q * q; ++i) VV[i] *= x.g1[i];
      for (std::size_t i = 0; i < q * r; ++i) VH[i] *= x.g2[i];
    }
    crossRows(st.w[s].data(), r, st.w[s].data(), r, n, WW.data());
    double model = static_cast<double>(n) * sum(VV.data(), q * q);
    for (std::size_t b = 0; b < r; ++b) {
      const double ws_b = sum(st.w[s].data() + b * n, n);
      for (std::size_t a = 0; a < q; ++a) model += 2 * VH[a * r + b] * ws_b;
    }
    for (std::size_t i = 0; i < r * r; ++i) {
      double e = WW[i];
      for (std::size_t t = 0; t < K; ++t) e *= HH[t][i];
      model += e;
    }
    terms[s] = squaredNorm(A, n * F) - 2 * inner + model + stratumListedLoss(p, o, st, s);
  };
  runEachIfWorth(team, S, strataFlops(p, r), term);
  double total = 0;
  for (std::size_t s = 0; s < S; ++s) total += terms[s];
  const double fit = std::sqrt(std::max(total, 0.0));
  return o.tv ? fit + o.tvReg * tvLoss(st.h, p.dims, r) : fit;
}

namespace {

// Shared loop control of both solvers: records losses, applies the tolerance rule, polls the monitor.
// `normalizer` (the data's norm) gives the progress records' normalized loss. With a
// certificateTolerance > 0, `certificate()` of the current state is checked before every
// lossEvery-th iteration (where the state's loss was recorded) and stops the run with 'gradMap'.
template <class Iterate, class Certificate>
void runLoop(int maxIterations, int lossEvery, double tolerance, double certificateTolerance, double initialLoss,
             double normalizer, LossTrace& trace, int& iterations, StopReason& stop, Monitor& monitor,
             Iterate&& iterate, Certificate&& certificate) {
  trace.start();
  trace.record(0, initialLoss);
  double lastLoss = initialLoss;
  stop = StopReason::MaxIterations;
  iterations = 0;
  for (int it = 1; it <= maxIterations; ++it) {
    if (monitor.cancelled()) throwAborted();
    if (certificateTolerance > 0 && (it - 1) % lossEvery == 0 && certificate() <= certificateTolerance) {
      stop = StopReason::GradMap;
      break;
    }
    const bool wantLoss = it % lossEvery == 0 || it == maxIterations || monitor.wantsProgress();
    const double loss = iterate(it, wantLoss);
    iterations = it;
    if (wantLoss) {
      if (!std::isfinite(loss)) throwNumerical("the loss became non-finite at iteration " + std::to_string(it));
      const bool record = it % lossEvery == 0 || it == maxIterations;
      const double previous = trace.loss.back();
      if (record) trace.record(it, loss);
      lastLoss = loss;
      if (record && tolerance > 0 && std::abs(previous - loss) < tolerance * previous) {
        stop = StopReason::Plateau;
        break;
      }
    }
    ProgressRecord rec;
    rec.iteration = it;
    rec.total = maxIterations;
    rec.count = 2;
    rec.values[0] = lastLoss;
    rec.values[1] = lastLoss / std::max(normalizer, 1e-300);
    monitor.progress(rec);
  }
}

}  // namespace

namespace {

// stratifiedNtfCertificate on a team, with Σₛ Σ ω A(s)² given. Per stratum on the team: its v(s) and
// w(s) blocks' gradient mappings, and the parts of each hₜ's gradient that cost a pass over its data
// (its MTTKRP) or depend on it alone (the small matrices that multiply hₜ and v(s)ₜ), kept. Then the
// hₜ gradients from them, stratum by stratum in order, as one thread adds them: split by columns over
// the team (each column's sums the same in any split).
double certificateOn(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o, const StratifiedNtfState& st,
                     RowTeam& team, double normA2) {
  if (o.tv) return std::nan("");
  const std::size_t S = p.strata.size(), K = p.dims.size(), r = o.rank;
  const std::size_t F = shapeSize(p.dims);
  std::size_t dmax = 0, qmax = 0, nmax = 0, sumD = 0;
  for (std::size_t d : p.dims) dmax = std::max(dmax, d), sumD += d;
  for (std::size_t q : o.strataRank) qmax = std::max(qmax, q);
  for (std::size_t n : p.samples) nmax = std::max(nmax, n);
  const double scale = 1.0 / std::max(normA2, 1e-300);
  // Grams HₜHₜᵀ (r×r); per stratum VₜVₜᵀ (q×q) and VₜHₜᵀ (q×r).
  std::vector<Vec> HH(K, Vec(r * r));
  for (std::size_t t = 0; t < K; ++t) crossRows(st.h[t].data(), r, st.h[t].data(), r, p.dims[t], HH[t].data());
  std::vector<const double*> hh(K);
  for (std::size_t t = 0; t < K; ++t) hh[t] = HH[t].data();
  // Kept per stratum s and h mode t: (wwᵀ ⊙ ⊙ₖ≠ₜ HₖHₖᵀ) (r×r) at hG + (s·K + t)·r², diag(Σᵢw)(⊙ₖ≠ₜ HₖVₖᵀ)
  // (r×q) at hE + (s·K + t)·r·qmax, the MTTKRP (r×dₜ) at hM + s·r·Σd + r·(d₁ + … + dₜ₋₁); the listed
  // entries' κ(B − a) (weighted); the blocks' worst mapping. Left unset here: the strata's pass
  // writes them first (a serial fill would be a long serial step on 2 threads).
  std::unique_ptr<double[]> hG(new double[S * K * r * r]), hE(new double[S * K * r * qmax]), hM(new double[S * r * sumD]);
  Vec worstS(S);
  std::vector<Vec> residuals(S);
  std::vector<std::size_t> offset(K, 0);
  for (std::size_t t = 1; t < K; ++t) offset[t] = offset[t - 1] + r * p.dims[t - 1];
  struct Scratch {
    Workspace ws;
    Vec M, G, E, grad, WW, wsum, sumA, z, rowsBuffer;
    std::vector<Vec> VV, VH;
    EntryRows rows;
  };
  std::vector<Scratch> perThread(static_cast<std::size_t>(team.size()));
  // Adds the listed part Σ κ(B − a)·z to the gradient (R × d, rank-major) of factor `skip` of the
  // term `f` (rows of stratum s), the columns [b, e) of it.
  auto addListed = [&](const TensorEntryWeights* listed, const Vec& residual, const double* const* f, std::size_t order,
                       std::size_t R, std::size_t first, std::size_t skip, std::size_t d, double* g, double* z,
                       std::size_t b, std::size_t e) {
    if (!listed) return;
    for (std::size_t k = 0; k < listed->size(); ++k) {
      const int32_t* idx = listed->index.data() + k * listed->order + first;
      const std::size_t j = static_cast<std::size_t>(idx[skip]);
      if (j < b || j >= e) continue;
      termAt(f, order, R, idx, skip, z);
      for (std::size_t a = 0; a < R; ++a) g[a * d + j] += residual[k] * z[a];
    }
  };
  auto stratum = [&](std::size_t s, int thread) {
    Scratch& x = perThread[static_cast<std::size_t>(thread)];
    const std::size_t n = p.samples[s], q = o.strataRank[s];
    const double* A = p.strata[s];
    const double* w = st.w[s].data();
    std::vector<const double*> vf(K), cf(K + 1), vv(K), vh(K);
    x.M.resize(std::max({qmax, r}) * std::max(dmax, nmax));  // sized by the thread's first stratum
    x.G.resize(std::max(qmax, r) * std::max(qmax, r));
    x.E.resize(r * qmax);
    x.WW.resize(r * r);
    x.wsum.resize(r);
    x.VV.resize(K);
    x.VH.resize(K);
    x.sumA.assign(F, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < F; ++j) x.sumA[j] += A[i * F + j];
    for (std::size_t t = 0; t < K; ++t) {
      vf[t] = st.v[s * K + t].data();
      x.VV[t].resize(q * q);
      x.VH[t].resize(q * r);
      crossRows(vf[t], q, vf[t], q, p.dims[t], x.VV[t].data());
      crossRows(vf[t], q, st.h[t].data(), r, p.dims[t], x.VH[t].data());
      vv[t] = x.VV[t].data();
      vh[t] = x.VH[t].data();
    }
    for (std::size_t b = 0; b < r; ++b) x.wsum[b] = sum(w + b * n, n);
    crossRows(w, r, w, r, n, x.WW.data());
    Shape full(p.dims);
    full.insert(full.begin(), n);
    cf[0] = w;
    for (std::size_t t = 0; t < K; ++t) cf[t + 1] = st.h[t].data();
    // Weighted: each block's gradient gains Σ_listed κ(B − a)·z, z the entry's derivative factors.
    const TensorEntryWeights* listed = listedOf(p, s);
    Vec& residual = residuals[s];
    if (listed) {
      x.rows.build(p, o, st, s, x.rowsBuffer);
      residual.resize(listed->size());
      x.z.resize(std::max(q, r));
      for (std::size_t k = 0; k < listed->size(); ++k) {
        const int32_t* idx = listed->index.data() + k * listed->order;
        residual[k] = listed->kappa[k] * (x.rows.ownAt(idx, x.z.data()) + x.rows.topicsAt(idx, x.z.data()) - listed->data[k]);
      }
    }
    double worst = 0;
    double* M = x.M.data();
    double* G = x.G.data();
    double* E = x.E.data();
    // ∇v(s)ₜ = nₛ(⊙ₖ≠ₜ VₖVₖᵀ)Vₜ + (⊙ₖ≠ₜ VₖHₖᵀ)·diag(Σᵢw)·Hₜ − MTTKRP(Σᵢ A(s)[i]; v(s)).
    for (std::size_t t = 0; t < K; ++t) {
      const std::size_t d = p.dims[t];
      x.grad.resize(q * d);
      mttkrpRankMajor(x.sumA.data(), p.dims, vf.data(), q, t, M, x.ws);
      hadamardAllBut(vv, t, q * q, G);
      gemm(false, false, q, d, q, static_cast<double>(n), G, vf[t], 0.0, x.grad.data());
      hadamardAllBut(vh, t, q * r, E);
      for (std::size_t a = 0; a < q; ++a)
        for (std::size_t b = 0; b < r; ++b) E[a * r + b] *= x.wsum[b];
      gemm(false, false, q, d, r, 1.0, E, st.h[t].data(), 1.0, x.grad.data());
      addListed(listed, residual, x.rows.own, K, q, 1, t, d, x.grad.data(), x.z.data(), 0, d);
      for (std::size_t i = 0; i < q * d; ++i) x.grad[i] = (x.grad[i] - M[i]) * scale;
      worst = worstCertificate(worst, gradientMapping(vf[t], x.grad.data(), q * d, true));
    }
    // ∇w(s)[b, i] = Σ_b' (⊙ₜHₜHₜᵀ)[b, b'] w[b', i] + Σ_a (⊙ₜVₜHₜᵀ)[a, b] − MTTKRP(A(s); w, h) over the samples.
    x.grad.resize(r * n);
    mttkrpRankMajor(A, full, cf.data(), r, 0, M, x.ws);
    hadamardAllBut(hh, K, r * r, G);
    gemm(false, false, r, n, r, 1.0, G, w, 0.0, x.grad.data());
    hadamardAllBut(vh, K, q * r, E);
    addListed(listed, residual, x.rows.topics, K + 1, r, 0, 0, n, x.grad.data(), x.z.data(), 0, n);
    for (std::size_t b = 0; b < r; ++b) {
      double shift = 0;
      for (std::size_t a = 0; a < q; ++a) shift += E[a * r + b];
      for (std::size_t i = 0; i < n; ++i) x.grad[b * n + i] = (x.grad[b * n + i] + shift - M[b * n + i]) * scale;
    }
    worst = worstCertificate(worst, gradientMapping(w, x.grad.data(), r * n, true));
    worstS[s] = worst;
    // hₜ's parts: MTTKRP(A(s); w, h) over mode t, (wwᵀ ⊙ ⊙ₖ≠ₜ HₖHₖᵀ) and diag(Σᵢw)(⊙ₖ≠ₜ HₖVₖᵀ).
    for (std::size_t t = 0; t < K; ++t) {
      mttkrpRankMajor(A, full, cf.data(), r, t + 1, hM.get() + s * r * sumD + offset[t], x.ws);
      double* Gt = hG.get() + (s * K + t) * r * r;
      hadamardAllBut(hh, t, r * r, Gt);
      for (std::size_t i = 0; i < r * r; ++i) Gt[i] *= x.WW[i];
      double* Et = hE.get() + (s * K + t) * r * qmax;
      for (std::size_t b = 0; b < r; ++b)
        for (std::size_t a = 0; a < q; ++a) {
          double e = x.wsum[b];
          for (std::size_t k = 0; k < K; ++k)
            if (k != t) e *= x.VH[k][a * r + b];
          Et[b * q + a] = e;
        }
    }
  };
  runEachIfWorth(team, S, strataFlops(p, r), stratum);
  double worst = 0;
  for (std::size_t s = 0; s < S; ++s) worst = worstCertificate(worst, worstS[s]);
  // ∇hₜ = Σₛ [(wwᵀ ⊙ ⊙ₖ≠ₜ HₖHₖᵀ)Hₜ + diag(Σᵢw)(⊙ₖ≠ₜ HₖVₖᵀ)Vₜ − MTTKRP(A(s); w, h) over mode t], in
  // stratum order, columns [b, e) of it by one thread.
  std::vector<Vec> gradH(K);
  for (std::size_t t = 0; t < K; ++t) {
    const std::size_t d = p.dims[t];
    gradH[t].assign(r * d, 0.0);
    double* gh = gradH[t].data();
    const double* h = st.h[t].data();
    auto columns = [&](int thread, std::size_t b, std::size_t e) {
      Scratch& x = perThread[static_cast<std::size_t>(thread)];
      const std::size_t c = e - b;
      for (std::size_t s = 0; s < S; ++s) {
        const std::size_t q = o.strataRank[s];
        const double* Gt = hG.get() + (s * K + t) * r * r;
        const double* Et = hE.get() + (s * K + t) * r * qmax;
        const double* Mt = hM.get() + s * r * sumD + offset[t];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, asInt(r), asInt(c), asInt(r), 1.0, Gt, asInt(r), h + b,
                    asInt(d), 1.0, gh + b, asInt(d));
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, asInt(r), asInt(c), asInt(q), 1.0, Et, asInt(q),
                    st.v[s * K + t].data() + b, asInt(d), 1.0, gh + b, asInt(d));
        if (const TensorEntryWeights* listed = listedOf(p, s)) {
          x.rows.build(p, o, st, s, x.rowsBuffer);
          x.z.resize(std::max(q, r));
          addListed(listed, residuals[s], x.rows.topics, K + 1, r, 0, t + 1, d, gh, x.z.data(), b, e);
        }
        for (std::size_t a = 0; a < r; ++a)
          for (std::size_t j = b; j < e; ++j) gh[a * d + j] -= Mt[a * d + j];
      }
    };
    runRowsIfWorth(team, d, 8, static_cast<double>(2 * S * r * (r + qmax) * d), columns);
    for (double& g : gradH[t]) g *= scale;
    worst = worstCertificate(worst, gradientMapping(h, gh, r * d, true));
  }
  return worst;
}

}  // namespace

void stratifiedNtf(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o, StratifiedNtfState& st,
                   StratifiedNtfResult& result, Monitor& monitor) {
  if (o.solver == NtfSolver::Hals) {
    StratifiedNtfHals solver(p, o, st);
    result.scratchDoubles = solver.scratchDoubles();
    RowTeam& team = solver.team();
    const double normA2 = weightedDataNorm2(p, solver.strataNorms());
    runLoop(
        o.maxIterations, o.lossEvery, o.tolerance, o.certificateTolerance, solver.initialLoss(), std::sqrt(normA2),
        result.trace, result.iterations, result.stop, monitor,
        [&](int it, bool wantLoss) { return solver.iterate(wantLoss, o.recordStages && it == 1 ? &result.stages : nullptr); },
        [&] { return certificateOn(p, o, st, team, normA2); });
    result.certificate = certificateOn(p, o, st, team, normA2);
    return;
  }
  StratifiedNtfSolver solver(p, o, st);
  result.scratchDoubles = solver.scratchDoubles();
  const double loss0 = solver.initialLoss();
  const double normA2 = weightedDataNorm2(p, solver.strataNorms());
  runLoop(
      o.maxIterations, o.lossEvery, o.tolerance, o.tv ? 0.0 : o.certificateTolerance, loss0, std::sqrt(normA2),
      result.trace, result.iterations, result.stop, monitor,
      [&](int it, bool wantLoss) { return solver.iterate(wantLoss, o.recordStages && it == 1 ? &result.stages : nullptr); },
      [&] { return certificateOn(p, o, st, solver.team(), normA2); });
  result.certificate = certificateOn(p, o, st, solver.team(), normA2);
}

double stratifiedNtfCertificate(const StratifiedNtfProblem& p, const StratifiedNtfOptions& o,
                                const StratifiedNtfState& st) {
  if (o.tv) return std::nan("");
  RowTeam team(stratifiedNtfThreads(p, o));
  SingleThreadedBlas blas(team.size() > 1);
  return certificateOn(p, o, st, team, weightedDataNorm2(p, strataSquaredNorms(team, p)));
}

// ---- NTF --------------------------------------------------------------------------------------------

TensorEntryWeights denseTensorEntryWeights(const double* T, const Shape& shape, const double* omega) {
  TensorEntryWeights e;
  e.order = shape.size();
  const std::size_t size = shapeSize(shape);
  std::vector<int32_t> at(shape.size(), 0);  // the multi-index of flat index k (C order)
  for (std::size_t k = 0; k < size; ++k) {
    if (omega[k] != 1.0) {
      e.index.insert(e.index.end(), at.begin(), at.end());
      e.kappa.push_back(omega[k] - 1.0);
      e.data.push_back(T[k]);
    }
    for (std::size_t m = shape.size(); m-- > 0;) {
      if (static_cast<std::size_t>(++at[m]) < shape[m]) break;
      at[m] = 0;
    }
  }
  return e;
}

void ntfRandomInit(const Shape& shape, std::size_t rank, std::uint64_t seed, std::vector<Vec>& F) {
  Random rng(seed);
  F.assign(shape.size(), Vec());
  for (std::size_t m = 0; m < shape.size(); ++m) {
    F[m].resize(rank * shape[m]);
    rng.fillUniform(F[m].data(), F[m].size());
  }
}

namespace {

// ‖Σ_a ⊗ₘ Fₘ[a]‖² = Σ ⊙ₘ FₘFₘᵀ
double cpSquaredNorm(const std::vector<Vec>& FF, std::size_t r) {
  double acc = 0;
  for (std::size_t i = 0; i < r * r; ++i) {
    double e = 1;
    for (const Vec& g : FF) e *= g[i];
    acc += e;
  }
  return acc;
}

}  // namespace

namespace {
// Entry-major copies (dₘ × r) of rank-major factors, for the listed loops: an entry's r values of
// each factor are then contiguous. Refreshed after each mode's update (r·dₘ copies). Each copy starts
// on a cache line (cacheAligned): for r a multiple of 4 every row's 4-wide loads then stay
// within cache lines (the HALS gather took 5–15 % less per entry, timed alone at rank 20).
struct EntryMajorFactors {
  std::vector<Vec> rows;  // storage; the copy of factor m starts at ptrs[m]
  std::vector<const double*> ptrs;
  void build(const std::vector<Vec>& F, const Shape& shape, std::size_t r) {
    rows.resize(F.size());
    ptrs.resize(F.size());
    for (std::size_t m = 0; m < F.size(); ++m) refresh(F, shape, r, m);
  }
  void refresh(const std::vector<Vec>& F, const Shape& shape, std::size_t r, std::size_t m) {
    const std::size_t d = shape[m];
    double* copy = cacheAligned(rows[m], d * r);
    for (std::size_t a = 0; a < r; ++a)
      for (std::size_t i = 0; i < d; ++i) copy[i * r + a] = F[m][a * d + i];
    ptrs[m] = copy;
  }
};

// Σκ(t − model)² over the listed entries: what they add to the plain ‖T − model‖². values: scratch.
double listedLossSquared(const TensorEntryWeights& e, const EntryMajorFactors& rows, std::size_t r, Vec& values) {
  values.resize(e.size());
  listed::kernels().cpValues(rows.ptrs.data(), e.order, r, e.index.data(), e.order, e.size(), values.data());
  double sum = 0;
  for (std::size_t p = 0; p < e.size(); ++p) {
    const double d = e.data[p] - values[p];
    sum += e.kappa[p] * d * d;
  }
  return sum;
}

// The listed entries grouped by their index in each mode (a counting sort, once per solve), each
// group's entries stored contiguously with what the weighted HALS reads of them: group i of mode m
// is entries start[m][i] … start[m][i + 1] of mode m's lists: `others` (their indices in the other
// modes, N − 1 each), and κ and data where the solve reads them (ListedTerms).
struct ListedByMode {
  std::vector<std::vector<int32_t>> others;
  std::vector<Vec> kappa, data;
  std::vector<std::vector<std::size_t>> start;
  std::size_t largest = 0;  // the most entries in one group
  void build(const TensorEntryWeights& e, const ListedTerms& terms, const Shape& shape) {
    const std::size_t N = shape.size(), L = e.size();
    others.assign(N, std::vector<int32_t>(L * (N - 1)));
    kappa.assign(N, Vec(terms.kappa ? L : 0));
    data.assign(N, Vec(terms.data ? L : 0));
    start.assign(N, {});
    for (std::size_t m = 0; m < N; ++m) {
      std::vector<std::size_t>& at = start[m];
      at.assign(shape[m] + 1, 0);
      for (std::size_t p = 0; p < L; ++p) ++at[static_cast<std::size_t>(e.index[p * N + m]) + 1];
      for (std::size_t i = 0; i < shape[m]; ++i) {
        largest = std::max(largest, at[i + 1]);
        at[i + 1] += at[i];
      }
      std::vector<std::size_t> next(at.begin(), at.end() - 1);
      for (std::size_t p = 0; p < L; ++p) {
        const int32_t* idx = e.index.data() + p * N;
        const std::size_t to = next[static_cast<std::size_t>(idx[m])]++;
        int32_t* o = others[m].data() + to * (N - 1);
        for (std::size_t j = 0; j < N; ++j)
          if (j != m) *o++ = idx[j];
        if (terms.kappa) kappa[m][to] = terms.kappa[p];
        if (terms.data) data[m][to] = terms.data[p];
      }
    }
  }
};

// The listed parts of mode m's weighted MTTKRPs (r × d, rank-major), added to num and den:
//   num[a, iₘ] += κt·z_a,   den[a, iₘ] += κ·model·z_a,   z_a = Π_{k≠m} F_k[a, i_k];
// with them M + num is the MTTKRP of Ω∘T and G·Fₘ + den that of Ω∘model. Each entry's z and model
// are computed once (listed::cpGroupSums, over the entries grouped by their index in mode m), summed
// entry-major into sums (2·d·r), then added. The rows are independent sums: split over the team, each
// computed by one thread as it would be alone (z: one workspace per thread).
void listedMttkrp(RowTeam& team, const ListedByMode& groups, const ListedTerms& terms, const EntryMajorFactors& rows,
                  const Shape& shape, std::size_t r, std::size_t m, double* num, double* den, Vec& sums,
                  std::vector<Vec>& z) {
  const std::size_t d = shape[m];
  z.resize(static_cast<std::size_t>(team.size()));
  sums.resize(2 * d * r);  // every row written by cpGroupSums (nT only with data)
  double* nT = sums.data();
  double* dT = nT + d * r;
  const listed::Kernels& kernels = listed::kernels();
  auto part = [&](int t, std::size_t b, std::size_t e) {
    Vec& zt = z[static_cast<std::size_t>(t)];
    zt.resize(r);
    kernels.cpGroupSums(rows.ptrs.data(), shape.size(), r, groups.others[m].data(), groups.start[m].data(), b, e, m,
                        terms.kappa ? groups.kappa[m].data() : nullptr, terms.kappa0,
                        terms.data ? groups.data[m].data() : nullptr, nT, dT, zt.data());
  };
  const double entries = static_cast<double>(groups.start[m][d]);
  runRowsIfWorth(team, d, 1, entries * static_cast<double>(r * shape.size()), part);
  for (std::size_t a = 0; a < r; ++a)
    for (std::size_t i = 0; i < d; ++i) den[a * d + i] += dT[i * r + a];
  if (terms.data)
    for (std::size_t a = 0; a < r; ++a)
      for (std::size_t i = 0; i < d; ++i) num[a * d + i] += nT[i * r + a];
}

// Scratch of the weighted HALS, sized once per solve, one per thread of the team
// (weightedHalsScratchDoubles counts it).
struct WeightedHalsScratch {
  Vec x, xold, P, curvature, cross, ycStorage, eStorage;
  double *Yc = nullptr, *e = nullptr;  // listed::cpHalsGather's workspaces, on cache lines (cacheAligned)
  void size(std::size_t r, std::size_t largest) {
    x.resize(r);
    xold.resize(r);
    P.resize(r);
    curvature.resize(r);
    cross.resize((r + 1) / 2);
    Yc = cacheAligned(ycStorage, (largest + 3) / 4 * 4 * r);
    e = cacheAligned(eStorage, largest);
  }
};

// Exact weighted HALS of mode m (NtfOptions::weightedHals). Column i of Fₘ meets only the entries
// with iₘ = i, so the columns are independent and the component rows k may be swept column by
// column instead: for each column in turn, its coordinates k = 0 … r − 1, each the exact
// non-negative minimizer of the convex quadratic in it (the others fixed), with the curvature
// G[k,k] + Σ_listed(i) κz_k² and slope (M − GFₘ)[k,i] + Σ_listed(i) e·z_k, e = κ(t − model) kept
// current; a curvature ≤ 1e-12·G[k,k] (no observed entry meets it) leaves the coordinate. That is the
// weighted NMF's row update with the column's listed Khatri–Rao rows z = ⊙_{j≠m} F_j[:, i_j] as its
// rows, formed once per column (listed::cpHalsGather) from the entry-major factors `rows` straight
// into the column layout that update works on, then swept up to `sweeps` times (listed::cpHalsSweep,
// listed::repeatSweeps), stopping after a sweep whose change Σ_k curvature_k·δ_k² is at most
// tolerance² times the first's (the plain sweeps' rule, halsColumns).
// The columns are split over the team, each thread with its own scratch (`w`, one per thread): a
// column's steps are the same whichever thread takes it, so the team changes no result.
void weightedHalsMode(RowTeam& team, const TensorEntryWeights& e, const ListedTerms& terms,
                      const ListedByMode& groups, const EntryMajorFactors& rows, std::vector<Vec>& F,
                      const Shape& shape, std::size_t r, std::size_t m, const double* M, const double* G, int sweeps,
                      double tolerance, std::vector<WeightedHalsScratch>& w) {
  const listed::Kernels& kernels = listed::kernels();
  const std::size_t d = shape[m], N = e.order;
  const double stop = tolerance * tolerance;
  double* Fm = F[m].data();
  const double* other[kMaxTensorOrder];
  std::size_t others = 0;
  for (std::size_t j = 0; j < N; ++j)
    if (j != m) other[others++] = rows.ptrs[j];
  auto columns = [&](int t, std::size_t begin, std::size_t end) {
    WeightedHalsScratch& s = w[static_cast<std::size_t>(t)];
    const double* kappa = terms.kappa ? groups.kappa[m].data() : nullptr;
    const double* data = terms.data ? groups.data[m].data() : nullptr;
    for (std::size_t i = begin; i < end; ++i) {
      const std::size_t p0 = groups.start[m][i], k = groups.start[m][i + 1] - p0;
      for (std::size_t a = 0; a < r; ++a) s.x[a] = Fm[a * d + i], s.P[a] = M[a * d + i];
      kernels.cpHalsGather(other, others, groups.others[m].data() + p0 * others, others, s.x.data(),
                           kappa ? kappa + p0 : nullptr, terms.kappa0, data ? data + p0 : nullptr, k, r, G,
                           s.curvature.data(), s.Yc, s.e);
      listed::repeatSweeps(s.x.data(), s.xold.data(), s.curvature.data(), r, 0.0, stop, sweeps, [&](int sweep, bool last) {
        kernels.cpHalsSweep(s.x.data(), kappa ? kappa + p0 : nullptr, terms.kappa0, k, r, s.P.data(), G,
                            s.curvature.data(), s.cross.data(), s.Yc, s.e, !last, sweep == 0);
      });
      for (std::size_t a = 0; a < r; ++a) Fm[a * d + i] = s.x[a];
    }
  };
  // Per listed entry: its Khatri–Rao row (N − 1 rows of r) and the passes (about 2r multiply-adds).
  const double entries = static_cast<double>(groups.start[m][d]);
  runRowsIfWorth(team, d, 1, entries * static_cast<double>(r * (N + 1)), columns);
}
}  // namespace

namespace {

// ---- the plain solve's passes on the thread team (thread_team.hpp) ----
// Each value below is computed by one thread with the same operations in the same order whatever the
// team's size, so the team changes no result; only the BLAS calls (GEMM, Grams) may round differently
// with their own thread count. A pass runs on the team only when its work pays for a wake-up.

// Σx² summed in fixed blocks, then the blocks in order: the same sum for any team.
double teamSquaredNorm(RowTeam& team, const double* x, std::size_t n) {
  constexpr std::size_t block = std::size_t{1} << 14;
  const std::size_t blocks = (n + block - 1) / block;
  Vec partial(blocks);
  auto pass = [&](int, std::size_t b, std::size_t e) {
    for (std::size_t k = b; k < e; ++k) {
      const std::size_t lo = k * block;
      partial[k] = squaredNorm(x + lo, std::min(n, lo + block) - lo);
    }
  };
  runRowsIfWorth(team, blocks, 1, static_cast<double>(n), pass);
  return sum(partial.data(), blocks);
}

// mttkrpRankMajor (tensor.hpp) with its per-component contractions on the team: the same GEMM
// contracting an end mode c (the larger of 0 and N − 1 that is not `mode`; as tensor.cpp chooses),
// then component a's slice of the GEMM's result (size/d_c values) contracted by one thread with that
// thread's buffers. The contractions are plain loops over as many values as the GEMM writes: left
// serial, they bound the speed-up of the whole solve.
class TeamMttkrp {
 public:
  TeamMttkrp(const Shape& shape, std::size_t r, int threads) : shape_(shape), r_(r) {
    std::size_t y = 0;
    for (std::size_t m = 0; m < shape.size() && shape.size() > 1; ++m) {
      Plan p = plan(m);
      y = std::max(y, r * p.rest);
      scratch_ = std::max(scratch_, contractionScratch(p.dims, p.k, p.keep));
    }
    Y_.resize(y);
    bufs_.assign(static_cast<std::size_t>(std::max(threads, 1)), Vec(2 * scratch_));
  }

  void operator()(RowTeam& team, const double* T, const double* const* F, std::size_t mode, double* M) {
    const std::size_t r = r_;
    if (shape_.size() == 1) {
      for (std::size_t a = 0; a < r; ++a) std::memcpy(M + a * shape_[0], T, shape_[0] * sizeof(double));
      return;
    }
    const Plan p = plan(mode);
    const std::size_t dc = shape_[p.c];
    double* Y = Y_.data();
    // The GEMM's product depends on T and F_c alone: kept from the last call with the same c while
    // F_c is unchanged (factorChanged). In a sweep of a 3-way tensor the modes 1 and 2 both contract
    // mode 0 first (or both mode 2), so the second skips its GEMM, a third of the MTTKRPs' flops.
    if (!(p.c == cachedC_ && T == cachedT_ && F[p.c] == cachedF_)) {
      // Split by columns over the team, a single-threaded GEMM each (runBlasRowsIfWorth): every entry
      // of Y is the same K-long dot product in any split.
      const double* Fc = F[p.c];
      auto part = [&](int, std::size_t b, std::size_t e) {
        const std::size_t n = e - b;
        if (p.c == 0)  // F₀ (r×d₀) · T (d₀×rest), columns [b, e)
          cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, asInt(r), asInt(n), asInt(dc), 1.0, Fc, asInt(dc),
                      T + b, asInt(p.rest), 0.0, Y + b, asInt(p.rest));
        else  // F_c (r×d_c) · T(rest×d_c)ᵀ, columns [b, e)
          cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, asInt(r), asInt(n), asInt(dc), 1.0, Fc, asInt(dc),
                      T + b * dc, asInt(dc), 0.0, Y + b, asInt(p.rest));
      };
      runBlasRowsIfWorth(team, p.rest, kGemmColumns, static_cast<double>(r * p.rest * dc), part);
      cachedC_ = p.c;
      cachedT_ = T;
      cachedF_ = F[p.c];
    }
    auto pass = [&](int t, std::size_t b, std::size_t e) {
      double* bufA = bufs_[static_cast<std::size_t>(t)].data();
      double* bufB = bufA + scratch_;
      const double* vecs[kMaxTensorOrder];
      for (std::size_t a = b; a < e; ++a) {
        for (std::size_t i = 0; i < p.k; ++i) vecs[i] = p.modes[i] == mode ? nullptr : F[p.modes[i]] + a * shape_[p.modes[i]];
        contractAllBut(Y + a * p.rest, p.dims, p.k, p.keep, vecs, M + a * shape_[mode], bufA, bufB);
      }
    };
    runRowsIfWorth(team, r, 1, static_cast<double>(r * p.rest), pass);
  }

  // The caller changed factor m's values in place: a product kept from it is stale.
  void factorChanged(std::size_t m) {
    if (m == cachedC_) cachedC_ = kNone;
  }

 private:
  static constexpr std::size_t kNone = ~std::size_t{0};
  static constexpr std::size_t kGemmColumns = 64;  // the team's column blocks of Y: whole cache lines
  struct Plan {
    std::size_t c = 0, rest = 0, k = 0, keep = 0;
    std::size_t dims[kMaxTensorOrder], modes[kMaxTensorOrder];
  };
  Plan plan(std::size_t mode) const {
    const std::size_t N = shape_.size(), last = N - 1;
    Plan p;
    p.c = mode == 0 ? last : mode == last ? 0 : (shape_[last] >= shape_[0] ? last : 0);
    p.rest = shapeSize(shape_) / shape_[p.c];
    for (std::size_t m = 0; m < N; ++m)
      if (m != p.c) {
        p.dims[p.k] = shape_[m];
        p.modes[p.k++] = m;
      }
    p.keep = mode - (p.c == 0 ? 1 : 0);
    return p;
  }

  Shape shape_;
  std::size_t r_;
  std::size_t scratch_ = 1;
  Vec Y_;
  std::vector<Vec> bufs_;
  std::size_t cachedC_ = kNone;  // the end mode Y_ holds the contraction by, kNone when none
  const double* cachedT_ = nullptr;
  const double* cachedF_ = nullptr;
};

// y −= a·x over n entries (unrolled by four so that -O2 vectorizes it).
inline void subtractScaled(double* __restrict y, const double* __restrict x, double a, std::size_t n) {
  std::size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    y[j] -= a * x[j];
    y[j + 1] -= a * x[j + 1];
    y[j + 2] -= a * x[j + 2];
    y[j + 3] -= a * x[j + 3];
  }
  for (; j < n; ++j) y[j] -= a * x[j];
}

// Coordinate a of n columns: x ← max(0, x + g/gaa), delta ← the steps; returns Σ gaa·δ² (four partial
// sums, unrolled so that -O2 vectorizes it).
inline double coordinateSteps(double* __restrict x, const double* __restrict g, double gaa, double* __restrict delta,
                              std::size_t n) {
  double c[4] = {0, 0, 0, 0};
  std::size_t j = 0;
  for (; j + 4 <= n; j += 4)
    for (std::size_t k = 0; k < 4; ++k) {
      const double next = std::max(0.0, x[j + k] + g[j + k] / gaa);
      delta[j + k] = next - x[j + k];
      c[k] += gaa * delta[j + k] * delta[j + k];
      x[j + k] = next;
    }
  for (; j < n; ++j) {
    const double next = std::max(0.0, x[j] + g[j] / gaa);
    delta[j] = next - x[j];
    c[0] += gaa * delta[j] * delta[j];
    x[j] = next;
  }
  return (c[0] + c[1]) + (c[2] + c[3]);
}

// HALS of columns [begin, end) of a mode's factor X (r × d, rank-major) from its MTTKRP M and Gram
// Hadamard G: each column x minimizes ½xᵀGx − mᵀx over x ≥ 0 on its own (the block objective is a
// sum over the columns), by coordinates a = 0 … r − 1 in order, x_a ← max(0, x_a + g_a/G[a,a]) with
// the gradient g = m − Gx kept current. One sweep is the row-by-row HALS update (row a of X from the
// rows updated before it). The columns go kColumnBlock at a time, their gradients side by side (r ×
// kColumnBlock), so every step is a loop along contiguous columns; a block sweeps up to `sweeps`
// times and stops when a sweep's change Σ G[a,a]·δ² over it is at most tolerance² times its first
// sweep's, or is 0 (Gillis and Glineur's rule, over a block of columns; nmf applies it per row). The
// blocks (halsColumnBlock) depend on d alone and start at multiples of their width whatever the team
// (begin is one), so the team changes no result. G[a,a] = 0 (a component that vanished in another
// mode) leaves the coordinate.
constexpr std::size_t kColumnBlock = 128;
// A mode of fewer than kMinColumnBlocks full blocks goes in up to that many equal blocks of at least
// kMinColumnBlockWidth columns, so that a mode of a few dozen columns is split over a team too:
// d = 64 in 4 blocks of 16, d = 400 in 8 of 50; larger modes in blocks of kColumnBlock.
constexpr std::size_t kMinColumnBlocks = 8, kMinColumnBlockWidth = 16;

inline std::size_t halsColumnBlock(std::size_t d) {
  if (d >= kMinColumnBlocks * kColumnBlock) return kColumnBlock;
  const std::size_t blocks = std::max({(d + kColumnBlock - 1) / kColumnBlock, std::min(kMinColumnBlocks, d / kMinColumnBlockWidth), std::size_t{1}});
  return (d + blocks - 1) / blocks;
}

void halsColumns(double* X, const double* M, const double* G, std::size_t r, std::size_t d, int sweeps,
                 double tolerance, std::size_t begin, std::size_t end) {
  const double stop = tolerance * tolerance;
  const std::size_t width = halsColumnBlock(d);
  Vec g(r * width), delta(width);
  for (std::size_t b0 = begin; b0 < end; b0 += width) {
    const std::size_t n = std::min(width, end - b0);
    for (std::size_t a = 0; a < r; ++a) {
      double* ga = g.data() + a * width;
      std::memcpy(ga, M + a * d + b0, n * sizeof(double));
      for (std::size_t l = 0; l < r; ++l) subtractScaled(ga, X + l * d + b0, G[a * r + l], n);
    }
    double first = 0;
    for (int s = 0; s < sweeps; ++s) {
      double change = 0;
      for (std::size_t a = 0; a < r; ++a) {
        const double gaa = G[a * r + a];
        if (!(gaa > 0)) continue;
        change += coordinateSteps(X + a * d + b0, g.data() + a * width, gaa, delta.data(), n);
        for (std::size_t l = 0; l < r; ++l) subtractScaled(g.data() + l * width, delta.data(), G[a * r + l], n);
      }
      if (s == 0) first = change;
      else if (change <= stop * first) break;
      if (!(change > 0)) break;
    }
  }
}

// What the plain solve keeps for its whole run: the team, the MTTKRP's buffers, and the per-column
// changes of the MU repeats. With a team of more than one thread, OpenBLAS runs on one thread for the
// whole solve (`blas`): the team splits the large products itself (the MTTKRP's GEMM, MU's GₘFₘ),
// and an OpenBLAS thread left spinning after a threaded call (OpenBLAS's workers spin a while before
// they sleep) would take a core from the team's helpers: on 2 cores, with OpenBLAS's threads only
// lowered around the split GEMM, 2 threads measured anywhere from 1.6× to 1.0× one thread.
struct PlainNtf {
  const double* T;
  const Shape& shape;
  std::size_t r;
  RowTeam team;
  SingleThreadedBlas blas;
  TeamMttkrp mttkrp;
  Vec columnChange;

  PlainNtf(const double* T_, const Shape& shape_, std::size_t r_, int threads)
      : T(T_), shape(shape_), r(r_), team(threads), blas(team.size() > 1), mttkrp(shape_, r_, threads) {}

  // Threads for a solve on T: enough work in its largest pass (the MTTKRP's contractions, about the
  // tensor's size) or, with many components, in the HALS sweeps (r² per column).
  static int threadsFor(const Shape& shape, std::size_t r) {
    std::size_t dmax = 0;
    for (std::size_t d : shape) dmax = std::max(dmax, d);
    return teamThreads(0, std::max(static_cast<double>(shapeSize(shape)), static_cast<double>(r * r * dmax)));
  }

  double squaredNormT() { return teamSquaredNorm(team, T, shapeSize(shape)); }

  // ½‖T − model‖²·2 = ‖T‖² − 2⟨M_N, F_N⟩ + Σ⊙FFᵀ from the factors F and their Grams FF.
  double lossSquared(double normT2, const std::vector<Vec>& F, const std::vector<Vec>& FF, const double* const* ptrs, double* M) {
    const std::size_t N = shape.size();
    mttkrp(team, T, ptrs, N - 1, M);
    return normT2 - 2 * dot(M, F[N - 1].data(), r * shape[N - 1]) + cpSquaredNorm(FF, r);
  }

  // HALS of mode m's factor on the team (by columns).
  void hals(double* Fm, std::size_t d, const double* M, const double* G, int sweeps, double tolerance) {
    auto pass = [&](int, std::size_t b, std::size_t e) { halsColumns(Fm, M, G, r, d, sweeps, tolerance, b, e); };
    // work: the multiply-adds every block makes, r² a column for its gradients and r² for its first sweep
    runRowsIfWorth(team, d, halsColumnBlock(d), 2.0 * static_cast<double>(r * r * d), pass);
  }

  // MU of mode m's factor: Fₘ ← Fₘ ∘ max(M, ε)/max(GFₘ, ε), repeated (D = GFₘ recomputed, M and G
  // reused) while the change Σ G[a,a]·δ² is above tolerance² times the first step's; the change is
  // summed per column, then over the columns in order, so the decision is the same for any team.
  void mu(double* Fm, std::size_t d, const double* M, const double* G, double* D, double eps, int sweeps, double tolerance) {
    columnChange.resize(d);
    auto pass = [&](int, std::size_t b, std::size_t e) {
      std::fill(columnChange.begin() + static_cast<std::ptrdiff_t>(b), columnChange.begin() + static_cast<std::ptrdiff_t>(e), 0.0);
      for (std::size_t a = 0; a < r; ++a) {
        const double gaa = G[a * r + a];
        double* x = Fm + a * d;
        const double* num = M + a * d;
        const double* den = D + a * d;
        for (std::size_t i = b; i < e; ++i) {
          const double next = x[i] * std::max(num[i], eps) / std::max(den[i], eps);
          const double delta = next - x[i];
          columnChange[i] += gaa * delta * delta;
          x[i] = next;
        }
      }
    };
    // D = G·Fₘ by columns on the team (each entry the same r-long dot product in any split).
    auto product = [&](int, std::size_t b, std::size_t e) {
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, asInt(r), asInt(e - b), asInt(r), 1.0, G, asInt(r), Fm + b,
                  asInt(d), 0.0, D + b, asInt(d));
    };
    double first = 0;
    for (int s = 0; s < sweeps; ++s) {
      runBlasRowsIfWorth(team, d, 8, static_cast<double>(r * r * d), product);
      runRowsIfWorth(team, d, 1, static_cast<double>(r * d), pass);
      if (sweeps == 1) return;
      const double change = sum(columnChange.data(), d);
      if (s == 0) first = change;
      else if (change <= tolerance * tolerance * first) return;
      if (!(change > 0)) return;
    }
  }

  // ntfCertificate's gradients (GₘFₘ − Mₘ)/‖T‖² (weighted: with the listed parts) on this team;
  // `groups`: the listed entries grouped by mode (ListedByMode), built here when null.
  double certificate(double normT2, const std::vector<Vec>& F, const TensorEntryWeights* listed,
                     const ListedByMode* groups = nullptr) {
    const std::size_t N = shape.size();
    const double scale = 1.0 / std::max(normT2, 1e-300);
    Vec sums;
    std::vector<Vec> z;
    EntryMajorFactors rows;
    const ListedTerms terms = listed ? ListedTerms(*listed) : ListedTerms();
    ListedByMode built;
    if (listed) {
      rows.build(F, shape, r);
      if (!groups) built.build(*listed, terms, shape), groups = &built;
    }
    std::vector<Vec> FF(N, Vec(r * r));
    std::vector<const double*> ptrs(N), grams(N);
    std::size_t dmax = 0;
    for (std::size_t m = 0; m < N; ++m) {
      crossRows(F[m].data(), r, F[m].data(), r, shape[m], FF[m].data());
      ptrs[m] = F[m].data();
      grams[m] = FF[m].data();
      dmax = std::max(dmax, shape[m]);
    }
    Vec M(r * dmax), grad(r * dmax), G(r * r);
    double worst = 0;
    for (std::size_t m = 0; m < N; ++m) {
      const std::size_t d = shape[m];
      mttkrp(team, T, ptrs.data(), m, M.data());
      hadamardAllBut(grams, m, r * r, G.data());
      gemm(false, false, r, d, r, 1.0, G.data(), F[m].data(), 0.0, grad.data());
      if (listed) listedMttkrp(team, *groups, terms, rows, shape, r, m, M.data(), grad.data(), sums, z);  // weighted: den − num
      for (std::size_t i = 0; i < r * d; ++i) grad[i] = (grad[i] - M[i]) * scale;
      worst = worstCertificate(worst, gradientMapping(F[m].data(), grad.data(), r * d, true));
    }
    return worst;
  }
};

// Σωt² = ‖T‖² + Σ_listed κt² (T holds 0 at missing entries).
double weightedNorm2(double plainNormT2, const TensorEntryWeights* listed) {
  double normT2 = plainNormT2;
  if (listed)
    for (std::size_t p = 0; p < listed->size(); ++p) normT2 += listed->kappa[p] * listed->data[p] * listed->data[p];
  return normT2;
}

// Grams FF[m] = FₘFₘᵀ and the pointers the MTTKRP reads.
void gramsOf(const std::vector<Vec>& F, const Shape& shape, std::size_t r, std::vector<Vec>& FF, std::vector<const double*>& ptrs) {
  const std::size_t N = shape.size();
  FF.assign(N, Vec(r * r));
  ptrs.resize(N);
  for (std::size_t m = 0; m < N; ++m) {
    crossRows(F[m].data(), r, F[m].data(), r, shape[m], FF[m].data());
    ptrs[m] = F[m].data();
  }
}

double lossOf(PlainNtf& plain, double plainNormT2, const std::vector<Vec>& F, const TensorEntryWeights* listed) {
  const Shape& shape = plain.shape;
  const std::size_t r = plain.r;
  std::vector<Vec> FF;
  std::vector<const double*> ptrs;
  gramsOf(F, shape, r, FF, ptrs);
  Vec M(r * shape.back());
  double total = plain.lossSquared(plainNormT2, F, FF, ptrs.data(), M.data());
  if (listed) {
    EntryMajorFactors rows;
    rows.build(F, shape, r);
    Vec values;
    total += listedLossSquared(*listed, rows, r, values);
  }
  return std::sqrt(std::max(total, 0.0));
}

}  // namespace

double weightedHalsScratchDoubles(double listed, double size, double dmin, double r, double threads) {
  // WeightedHalsScratch::size: Yc r·⌈largest/4⌉·4 and e largest, each with 8 more for its alignment;
  // x, xold, P, curvature and cross (⌈r/2⌉), 5r bounding them.
  const double largest = std::min(listed, size / std::max(dmin, 1.0));
  return threads * ((r + 1) * (largest + 3) + 5 * r + 16);
}

double cpLoss(const double* T, const Shape& shape, const std::vector<Vec>& F, std::size_t r, const TensorEntryWeights* weights) {
  const TensorEntryWeights* listed = weights && weights->active() ? weights : nullptr;
  PlainNtf plain(T, shape, r, PlainNtf::threadsFor(shape, r));
  return lossOf(plain, plain.squaredNormT(), F, listed);
}

void ntf(const double* T, const Shape& shape, const NtfOptions& o, std::vector<Vec>& F, NtfResult& result,
         Monitor& monitor, const TensorEntryWeights* weights) {
  const std::size_t N = shape.size(), r = o.rank;
  const TensorEntryWeights* listed = weights && weights->active() ? weights : nullptr;
  // Inner sweeps reuse the mode's products (the bindings refuse more than 1 for MU with weights).
  const int sweeps = std::max(o.innerSweeps, 1);
  const bool surrogate = listed && o.solver == NtfSolver::Hals && o.weightedHals == WeightedHals::Surrogate;
  PlainNtf plain(T, shape, r, PlainNtf::threadsFor(shape, r));
  const double plainNormT2 = plain.squaredNormT();
  const double normT2 = weightedNorm2(plainNormT2, listed);
  Vec listedNum, sums, values;
  std::vector<Vec> z;
  EntryMajorFactors rows;
  const ListedTerms terms = listed ? ListedTerms(*listed) : ListedTerms();
  ListedByMode groups;
  std::vector<WeightedHalsScratch> hals;
  if (listed) {
    rows.build(F, shape, r);
    groups.build(*listed, terms, shape);
    if (o.solver == NtfSolver::Hals && !surrogate) {
      hals.resize(static_cast<std::size_t>(plain.team.size()));
      for (WeightedHalsScratch& w : hals) w.size(r, groups.largest);
    }
  }
  std::vector<Vec> FF;
  std::vector<const double*> ptrs;
  gramsOf(F, shape, r, FF, ptrs);
  std::size_t dmax = 0;
  for (std::size_t d : shape) dmax = std::max(dmax, d);
  Vec M(r * dmax), D(r * dmax), G(r * r);
  std::vector<const double*> grams(N);
  for (std::size_t m = 0; m < N; ++m) grams[m] = FF[m].data();
  const double loss0 = lossOf(plain, plainNormT2, F, listed);
  runLoop(o.maxIterations, o.lossEvery, o.tolerance, o.certificateTolerance, loss0, std::sqrt(normT2), result.trace,
          result.iterations, result.stop, monitor, [&](int, bool wantLoss) {
            double inner = 0;
            for (std::size_t m = 0; m < N; ++m) {
              const std::size_t d = shape[m];
              double* Fm = F[m].data();
              plain.mttkrp(plain.team, T, ptrs.data(), m, M.data());
              hadamardAllBut(grams, m, r * r, G.data());
              if (listed && o.solver == NtfSolver::MultiplicativeUpdates) {
                // Fₘ ← Fₘ ∘ MTTKRP(Ω∘T) / MTTKRP(Ω∘model): Lee–Seung's step of the weighted objective.
                gemm(false, false, r, d, r, 1.0, G.data(), Fm, 0.0, D.data());
                listedNum.assign(M.data(), M.data() + r * d);
                listedMttkrp(plain.team, groups, terms, rows, shape, r, m, listedNum.data(), D.data(), sums, z);
                multiplicativeStep(Fm, listedNum.data(), D.data(), r * d, o.epsilon);
              } else if (surrogate) {
                // The plain sweeps on the MTTKRP of x̃ = Ω∘T + (1 − Ω)∘model (NtfOptions::weightedHals):
                // M plus the listed entries' κ(t − model)·z, listedMttkrp's num − den.
                std::fill(D.begin(), D.begin() + static_cast<std::ptrdiff_t>(r * d), 0.0);
                listedNum.assign(M.data(), M.data() + r * d);
                listedMttkrp(plain.team, groups, terms, rows, shape, r, m, listedNum.data(), D.data(), sums, z);
                for (std::size_t q = 0; q < r * d; ++q) listedNum[q] -= D[q];
                plain.hals(Fm, d, listedNum.data(), G.data(), sweeps, o.innerTolerance);
              } else if (listed) {
                weightedHalsMode(plain.team, *listed, terms, groups, rows, F, shape, r, m, M.data(), G.data(), sweeps,
                                 o.innerTolerance, hals);
              } else if (o.solver == NtfSolver::MultiplicativeUpdates) {
                plain.mu(Fm, d, M.data(), G.data(), D.data(), o.epsilon, sweeps, o.innerTolerance);
              } else {
                plain.hals(Fm, d, M.data(), G.data(), sweeps, o.innerTolerance);
              }
              plain.mttkrp.factorChanged(m);
              crossRows(Fm, r, Fm, r, d, FF[m].data());
              if (listed) rows.refresh(F, shape, r, m);
              if (m + 1 == N && wantLoss) inner = dot(M.data(), Fm, r * d);
            }
            if (!wantLoss) return std::nan("");
            if (listed)  // the plain part (T holds 0 at missing entries) plus the listed entries'
              return std::sqrt(std::max(plainNormT2 - 2 * inner + cpSquaredNorm(FF, r) + listedLossSquared(*listed, rows, r, values), 0.0));
            return std::sqrt(std::max(normT2 - 2 * inner + cpSquaredNorm(FF, r), 0.0));
          },
          [&] { return plain.certificate(normT2, F, listed, &groups); });
  result.certificate = plain.certificate(normT2, F, listed, &groups);
}

double ntfCertificate(const double* T, const Shape& shape, const std::vector<Vec>& F, std::size_t r,
                      const TensorEntryWeights* weights) {
  const TensorEntryWeights* listed = weights && weights->active() ? weights : nullptr;
  PlainNtf plain(T, shape, r, PlainNtf::threadsFor(shape, r));
  return plain.certificate(weightedNorm2(plain.squaredNormT(), listed), F, listed);
}

}  // namespace nsa
