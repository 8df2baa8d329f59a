// Data products (dense through BLAS, CSR by hand), the direct residual, NNDSVD initialization and
// the plain NMF solvers (multiplicative updates, HALS).
#include "nmf.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "error.hpp"
#include "listed_kernels.hpp"
#include "nmf_detail.hpp"
#include "ortho.hpp"
#include "thread_team.hpp"

namespace nsa {

using namespace nmf_detail;

// ---- data products ----------------------------------------------------------------------------

void dataTimes(const DataMatrix& A, const double* X, std::size_t l, double beta, double* out) {
  if (!A.sparse()) {
    gemm(false, false, A.rows, l, A.cols, 1.0, A.dense, X, beta, out);
    return;
  }
  for (std::size_t i = 0; i < A.rows; ++i) {
    double* o = out + i * l;
    if (beta == 0.0) std::fill(o, o + l, 0.0);
    else if (beta != 1.0) for (std::size_t c = 0; c < l; ++c) o[c] *= beta;
    for (int32_t p = A.indptr[i]; p < A.indptr[i + 1]; ++p) {
      const double a = A.values[p];
      const double* x = X + static_cast<std::size_t>(A.indices[p]) * l;
      for (std::size_t c = 0; c < l; ++c) o[c] += a * x[c];
    }
  }
}

void dataTransposeTimes(const DataMatrix& A, const double* Y, std::size_t l, double beta, double* out) {
  if (!A.sparse()) {
    gemm(true, false, A.cols, l, A.rows, 1.0, A.dense, Y, beta, out);
    return;
  }
  if (beta == 0.0) std::fill(out, out + A.cols * l, 0.0);
  else if (beta != 1.0) for (std::size_t i = 0; i < A.cols * l; ++i) out[i] *= beta;
  for (std::size_t i = 0; i < A.rows; ++i) {
    const double* y = Y + i * l;
    for (int32_t p = A.indptr[i]; p < A.indptr[i + 1]; ++p) {
      const double a = A.values[p];
      double* o = out + static_cast<std::size_t>(A.indices[p]) * l;
      for (std::size_t c = 0; c < l; ++c) o[c] += a * y[c];
    }
  }
}

void dataColumnSums(const DataMatrix& A, double* out) {
  std::fill(out, out + A.cols, 0.0);
  if (!A.sparse()) {
    for (std::size_t i = 0; i < A.rows; ++i) {
      const double* a = A.dense + i * A.cols;
      for (std::size_t j = 0; j < A.cols; ++j) out[j] += a[j];
    }
    return;
  }
  const std::size_t nnz = static_cast<std::size_t>(A.indptr[A.rows]);
  for (std::size_t p = static_cast<std::size_t>(A.indptr[0]); p < nnz; ++p) out[A.indices[p]] += A.values[p];
}

namespace {
std::pair<const double*, std::size_t> valuesOf(const DataMatrix& A) {
  if (!A.sparse()) return {A.dense, A.rows * A.cols};
  const std::size_t first = static_cast<std::size_t>(A.indptr[0]);
  return {A.values + first, static_cast<std::size_t>(A.indptr[A.rows]) - first};
}
}  // namespace

double dataSquaredNorm(const DataMatrix& A) {
  auto [x, n] = valuesOf(A);
  return laneSquaredNorm(x, n);
}

double dataSum(const DataMatrix& A) {
  auto [x, n] = valuesOf(A);
  return laneSum(x, n);
}

double directResidualSquared(const DataMatrix& A, const double* v, const double* W, const double* H,
                             std::size_t r, Workspace& ws) {
  const std::size_t m = A.cols;
  const std::size_t block = std::max<std::size_t>(1, std::min<std::size_t>(A.rows, (1u << 16) / m));
  double* R = ws.get(0, block * m);
  double sum = 0;
  for (std::size_t i0 = 0; i0 < A.rows; i0 += block) {
    const std::size_t b = std::min(block, A.rows - i0);
    // R = A − 1vᵀ − WH for this block of rows (stored entries only, for CSR), then ‖R‖².
    for (std::size_t bi = 0; bi < b; ++bi) {
      double* row = R + bi * m;
      const std::size_t i = i0 + bi;
      if (!A.sparse()) std::memcpy(row, A.dense + i * m, m * sizeof(double));
      else std::fill(row, row + m, 0.0);
      if (A.sparse())
        for (int32_t p = A.indptr[i]; p < A.indptr[i + 1]; ++p) row[A.indices[p]] = A.values[p];
      if (v) for (std::size_t j = 0; j < m; ++j) row[j] -= v[j];
    }
    gemm(false, false, b, m, r, -1.0, W + i0 * r, H, 1.0, R);
    sum += cblas_ddot(asInt(b * m), R, 1, R, 1);
  }
  return sum;
}

// ---- entry weights ------------------------------------------------------------------------------

namespace {
// The column-ordered copy of the row-ordered list (a counting sort: rows stay increasing in each column).
void listByColumns(EntryWeights& e, std::size_t rows, std::size_t cols) {
  const std::size_t k = e.rowCol.size();
  e.colPtr.assign(cols + 1, 0);
  for (std::size_t p = 0; p < k; ++p) ++e.colPtr[static_cast<std::size_t>(e.rowCol[p]) + 1];
  for (std::size_t j = 0; j < cols; ++j) e.colPtr[j + 1] += e.colPtr[j];
  e.colRow.resize(k);
  e.colKappa.resize(k);
  e.colData.resize(k);
  std::vector<std::size_t> next(e.colPtr.begin(), e.colPtr.end() - 1);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t p = e.rowPtr[i]; p < e.rowPtr[i + 1]; ++p) {
      const std::size_t q = next[static_cast<std::size_t>(e.rowCol[p])]++;
      e.colRow[q] = static_cast<int32_t>(i);
      e.colKappa[q] = e.rowKappa[p];
      e.colData[q] = e.rowData[p];
    }
  e.uniformKappa = std::all_of(e.rowKappa.begin(), e.rowKappa.end(), [&](double kappa) { return kappa == e.rowKappa[0]; });
  e.dataTerms = false;
  for (std::size_t p = 0; p < k && !e.dataTerms; ++p) e.dataTerms = e.rowKappa[p] * e.rowData[p] != 0.0;
}
}  // namespace

EntryWeights denseEntryWeights(const DataMatrix& A, const double* omega) {
  EntryWeights e;
  const std::size_t n = A.rows, m = A.cols;
  e.rowPtr.assign(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < m; ++j) {
      const double w = omega[i * m + j];
      if (w == 1.0) continue;
      e.rowCol.push_back(static_cast<int32_t>(j));
      e.rowKappa.push_back(w - 1.0);
      e.rowData.push_back(A.dense[i * m + j]);
    }
    e.rowPtr[i + 1] = e.rowCol.size();
  }
  if (e.rowCol.empty()) return EntryWeights{};  // all weights 1: the unweighted problem, exactly
  listByColumns(e, n, m);
  return e;
}

EntryWeights storedEntryWeights(const DataMatrix& A) {
  EntryWeights e;
  e.base = false;
  const std::size_t n = A.rows;
  const std::size_t first = static_cast<std::size_t>(A.indptr[0]), nnz = static_cast<std::size_t>(A.indptr[n]) - first;
  e.rowPtr.resize(n + 1);
  for (std::size_t i = 0; i <= n; ++i) e.rowPtr[i] = static_cast<std::size_t>(A.indptr[i]) - first;
  e.rowCol.assign(A.indices + first, A.indices + first + nnz);
  e.rowKappa.assign(nnz, 1.0);
  e.rowData.assign(A.values + first, A.values + first + nnz);
  listByColumns(e, n, A.cols);
  return e;
}

EntryWeights maskedEntryWeights(const DataMatrix& A, const int32_t* rows, const int32_t* cols, std::size_t k) {
  if (k == 0) return EntryWeights{};  // nothing missing: the unweighted problem, exactly
  EntryWeights e;
  const std::size_t n = A.rows;
  // By rows (a counting sort), then the columns of each row in increasing order, as denseEntryWeights lists them.
  e.rowPtr.assign(n + 1, 0);
  for (std::size_t p = 0; p < k; ++p) ++e.rowPtr[static_cast<std::size_t>(rows[p]) + 1];
  for (std::size_t i = 0; i < n; ++i) e.rowPtr[i + 1] += e.rowPtr[i];
  e.rowCol.resize(k);
  {
    std::vector<std::size_t> next(e.rowPtr.begin(), e.rowPtr.end() - 1);
    for (std::size_t p = 0; p < k; ++p) e.rowCol[next[static_cast<std::size_t>(rows[p])]++] = cols[p];
  }
  for (std::size_t i = 0; i < n; ++i)
    std::sort(e.rowCol.begin() + static_cast<std::ptrdiff_t>(e.rowPtr[i]), e.rowCol.begin() + static_cast<std::ptrdiff_t>(e.rowPtr[i + 1]));
  e.rowKappa.assign(k, -1.0);
  e.rowData.assign(k, 0.0);
  listByColumns(e, n, A.cols);
  return e;
}

double entryWeightsDoubles(double rows, double cols, double k) { return 2 * 2.5 * k + rows + cols + 2 + cols; }

// ---- penalties ----------------------------------------------------------------------------------

bool recordObjective(std::vector<double>& objective, double value, double tolerance) {
  const bool hasPrevious = !objective.empty();
  const double previous = hasPrevious ? objective.back() : 0.0;
  objective.push_back(value);
  return tolerance > 0 && hasPrevious && std::abs(previous - value) <= tolerance * std::max(previous, 1e-300);
}

double Penalty::value(const double* X, std::size_t n) const {
  if (!active()) return 0.0;
  double sum = 0, squares = 0;
  for (std::size_t i = 0; i < n; ++i) sum += X[i], squares += X[i] * X[i];
  return l1 * sum + 0.5 * l2 * squares;
}

void Penalty::addGradient(const double* X, std::size_t n, double scale, double* out) const {
  if (!active()) return;
  for (std::size_t i = 0; i < n; ++i) out[i] += (l1 + l2 * X[i]) * scale;
}

// ---- shared helpers ---------------------------------------------------------------------------

namespace nmf_detail {

void outerGram(const double* H, std::size_t r, std::size_t m, double* out) {
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, asInt(r), asInt(m), 1.0, H, asInt(m), 0.0, out,
              asInt(r));
  for (std::size_t i = 0; i < r; ++i)
    for (std::size_t j = 0; j < i; ++j) out[i * r + j] = out[j * r + i];
}

double dot(const double* x, const double* y, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += x[i] * y[i];
  return s;
}

bool LossRecorder::record(int iteration, double loss, LossTrace& trace) const {
  const bool hasPrevious = !trace.loss.empty();
  const double previous = hasPrevious ? trace.loss.back() : 0.0;
  trace.record(iteration, loss);
  if (!(tolerance_ > 0) || !hasPrevious) return false;
  return std::abs(previous - loss) <= tolerance_ * std::max(previous, 1e-300);
}

void checkFiniteLoss(double loss, int iteration) {
  if (!std::isfinite(loss))
    throwNumerical("the loss became non-finite after " + std::to_string(iteration) + " iterations");
}

namespace {
// Orthonormalizes the columns of a row-major n×l block in place (thin QR).
void orthonormalize(double* X, std::size_t n, std::size_t l, Workspace& ws) {
  double* Q = ws.get(10, n * l);
  thinQr(X, n, l, Q, nullptr, ws);
  std::memcpy(X, Q, n * l * sizeof(double));
}
}  // namespace

double nndsvdFill(double mean, std::size_t r) {
  return 0.01 * std::sqrt(std::max(mean, 1e-300) / static_cast<double>(r));
}

void nndsvd(const LinearOperator& B, std::size_t k, Random& rng, double fill, double* W, double* H) {
  const std::size_t n = B.rows, m = B.cols;
  const std::size_t l = std::min({k + 10, n, m});
  Workspace ws;
  std::vector<double> omega(m * l), Y(n * l), Z(m * l);
  rng.fillNormal(omega.data(), omega.size());
  B.times(omega.data(), l, Y.data());
  orthonormalize(Y.data(), n, l, ws);
  for (int q = 0; q < 4; ++q) {
    B.transposeTimes(Y.data(), l, Z.data());
    orthonormalize(Z.data(), m, l, ws);
    B.times(Z.data(), l, Y.data());
    orthonormalize(Y.data(), n, l, ws);
  }
  // B ≈ Q Qᵀ B = Q Zᵀ with Z = BᵀQ; Z = Uz Σ Vzᵀ gives B ≈ (Q Vz) Σ Uzᵀ.
  B.transposeTimes(Y.data(), l, Z.data());
  if (!allFinite(Z.data(), Z.size())) throwNumerical("nndsvd: non-finite values in the data products");
  std::vector<double> Uz(m * l), S(l), Vz(l * l), U(n * l);
  thinSvd(Z.data(), m, l, Uz.data(), S.data(), Vz.data(), ws);
  gemm(false, false, n, l, l, 1.0, Y.data(), Vz.data(), 0.0, U.data());

  std::vector<double> x(n), y(m);
  for (std::size_t c = 0; c < k; ++c) {
    const double sigma = c < l ? S[c] : 0.0;
    for (std::size_t i = 0; i < n; ++i) x[i] = c < l ? U[i * l + c] : 0.0;
    for (std::size_t j = 0; j < m; ++j) y[j] = c < l ? Uz[j * l + c] : 0.0;
    // Keep the sign pattern (positive or negative parts of both vectors) with the larger mass.
    double xp = 0, xn = 0, yp = 0, yn = 0;
    for (double t : x) (t > 0 ? xp : xn) += t * t;
    for (double t : y) (t > 0 ? yp : yn) += t * t;
    xp = std::sqrt(xp), xn = std::sqrt(xn), yp = std::sqrt(yp), yn = std::sqrt(yn);
    const bool positive = xp * yp >= xn * yn;
    const double nx = positive ? xp : xn, ny = positive ? yp : yn;
    const double scale = std::sqrt(sigma * nx * ny);
    for (std::size_t i = 0; i < n; ++i) {
      const double t = positive ? std::max(x[i], 0.0) : std::max(-x[i], 0.0);
      W[i * k + c] = nx > 0 ? scale * t / nx : 0.0;
    }
    for (std::size_t j = 0; j < m; ++j) {
      const double t = positive ? std::max(y[j], 0.0) : std::max(-y[j], 0.0);
      H[c * m + j] = ny > 0 ? scale * t / ny : 0.0;
    }
  }
  for (std::size_t i = 0; i < n * k; ++i)
    if (!(W[i] > 0)) W[i] = fill;
  for (std::size_t i = 0; i < k * m; ++i)
    if (!(H[i] > 0)) H[i] = fill;
}

}  // namespace nmf_detail

// ---- plain NMF ----------------------------------------------------------------------------------

void nmfInit(const DataMatrix& A, std::size_t r, NmfInit init, uint64_t seed, double* W, double* H,
             const EntryWeights* weights) {
  if (init == NmfInit::Given) return;
  double mean = dataSum(A) / (static_cast<double>(A.rows) * static_cast<double>(A.cols));
  if (weights && weights->active()) {  // Σωa / Σω with ω = base + κ
    const double b = weights->base ? 1.0 : 0.0;
    double sum = b * dataSum(A), count = b * static_cast<double>(A.rows) * static_cast<double>(A.cols);
    for (std::size_t p = 0; p < weights->size(); ++p) {
      sum += weights->rowKappa[p] * weights->rowData[p];
      count += weights->rowKappa[p];
    }
    mean = count > 0 ? std::max(sum, 0.0) / count : 0.0;
  }
  Random rng(seed);
  if (init == NmfInit::Random) {
    const double scale = std::sqrt(std::max(mean, 1e-300) / static_cast<double>(r));
    rng.fillUniform(W, A.rows * r, scale);
    rng.fillUniform(H, r * A.cols, scale);
    return;
  }
  LinearOperator B{A.rows, A.cols,
                   [&](const double* X, std::size_t l, double* out) { dataTimes(A, X, l, 0.0, out); },
                   [&](const double* Y, std::size_t l, double* out) { dataTransposeTimes(A, Y, l, 0.0, out); }};
  nndsvd(B, r, rng, nndsvdFill(mean, r), W, H);
}

namespace {

enum Slot : std::size_t { kResidual = 0, kHHt = 1, kAHt, kWHHt, kWtW, kWtAT, kHt, kQ, kSums, kWH };

// ‖A − WH‖² expanded as ‖A‖² − 2⟨A, WH⟩ + ⟨WᵀW, HHᵀ⟩ from the cross term ⟨A, WH⟩ and the two Grams,
// or computed directly when the expansion cancels.
double expandedLossSquared(const DataMatrix& A, double normA2, double cross, const double* W, const double* H,
                           const double* WtW, const double* HHt, std::size_t r, Workspace& ws) {
  const double model = dot(WtW, HHt, r * r);
  const double expanded = normA2 - 2.0 * cross + model;
  if (expanded >= kCancellationRatio * (normA2 + model)) return expanded;
  return directResidualSquared(A, nullptr, W, H, r, ws);
}

// wtwCurrent: the workspace's WᵀW is already that of this W (the iteration's loss after the previous
// update, which formed it for the H update), so it is not formed again: the same DSYRK of the same W.
double frobeniusLossSquared(const DataMatrix& A, double normA2, const double* W, const double* H,
                            const double* AHt, const double* HHt, std::size_t r, Workspace& ws, bool wtwCurrent = false) {
  const std::size_t n = A.rows;
  double* WtW = ws.get(kWtW, r * r);
  if (!wtwCurrent) gram(W, n, r, WtW);
  return expandedLossSquared(A, normA2, dot(AHt, W, n * r), W, H, WtW, HHt, r, ws);
}

// Q = A ⊘ (WH) at A's stored entries (all entries when dense) and the KL divergence of (W, H).
double klQuotient(const DataMatrix& A, const double* W, const double* H, const double* Ht, std::size_t r,
                  double* Q, double* WHfull) {
  const std::size_t n = A.rows, m = A.cols;
  double divergence = 0;
  if (!A.sparse()) {
    gemm(false, false, n, m, r, 1.0, W, H, 0.0, WHfull);
    for (std::size_t i = 0; i < n * m; ++i) {
      const double a = A.dense[i], wh = WHfull[i];
      divergence += wh - a;
      if (a > 0) divergence += a * std::log(a / wh);
      Q[i] = a / std::max(wh, 1e-300);
    }
    return divergence;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const double* w = W + i * r;
    for (int32_t p = A.indptr[i]; p < A.indptr[i + 1]; ++p) {
      const double wh = dot(w, Ht + static_cast<std::size_t>(A.indices[p]) * r, r);
      const double a = A.values[p];
      divergence -= a;
      if (a > 0) divergence += a * std::log(a / wh);
      Q[p] = a / std::max(wh, 1e-300);
    }
  }
  // Σ over all entries of WH = (1ᵀW)(H1).
  for (std::size_t c = 0; c < r; ++c) {
    double ws = 0, hs = 0;
    for (std::size_t i = 0; i < n; ++i) ws += W[i * r + c];
    for (std::size_t j = 0; j < m; ++j) hs += H[c * m + j];
    divergence += ws * hs;
  }
  return divergence;
}

// The listed entries of EntryWeights seen from one factor: entries of row o of X (count×r) are
// ptr[o]..ptr[o+1], each meeting row idx[p] of the other factor Y. By rows: X = W, Y = Hᵀ; by
// columns: X = Hᵀ, Y = W. The model value of an entry is x·y.
// dataTerms and uniform: EntryWeights's dataTerms and uniformKappa.
struct ListView {
  const std::size_t* ptr;
  const int32_t* idx;
  const double* kappa;
  const double* data;
  bool dataTerms;
  bool uniform;
};
ListView byRows(const EntryWeights& e) {
  return {e.rowPtr.data(), e.rowCol.data(), e.rowKappa.data(), e.rowData.data(), e.dataTerms, e.uniformKappa};
}
ListView byColumns(const EntryWeights& e) {
  return {e.colPtr.data(), e.colRow.data(), e.colKappa.data(), e.colData.data(), e.dataTerms, e.uniformKappa};
}

// Σ κ(a − x·y)² over the list: what the listed entries add to the base loss.
double listedResidualSquared(const ListView& L, std::size_t count, std::size_t r, const double* X, const double* Y) {
  const listed::Kernels& K = listed::kernels();
  std::vector<double> model;
  double sum = 0;
  for (std::size_t o = 0; o < count; ++o) {
    const std::size_t p0 = L.ptr[o], k = L.ptr[o + 1] - p0;
    if (model.size() < k) model.resize(k);
    K.dots(X + o * r, Y, L.idx + p0, k, r, model.data());
    for (std::size_t q = 0; q < k; ++q) {
      const double e = L.data[p0 + q] - model[q];
      sum += L.kappa[p0 + q] * e * e;
    }
  }
  return sum;
}

// The two halves of the weighted gradient with respect to X (count×r), ∇X = den − num:
//   num = (Ω∘A)Y = b·P + Σ κa·y,   den = (Ω∘XYᵀ)Y = b·XG + Σ κ(x·y)·y,
// where P = AY and G = YᵀY are the base products (b = base). Both are ≥ 0 in exact arithmetic; the
// listed sums may round a hair below, so they are clamped.
void weightedGradientParts(const ListView& L, bool base, std::size_t count, std::size_t r, const double* X,
                           const double* Y, const double* P, const double* G, double* num, double* den) {
  if (base) {
    if (num != P) std::memcpy(num, P, count * r * sizeof(double));
    gemm(false, false, count, r, r, 1.0, X, G, 0.0, den);
  } else {
    std::fill(num, num + count * r, 0.0);
    std::fill(den, den + count * r, 0.0);
  }
  const listed::Kernels& K = listed::kernels();
  std::vector<double> coef;
  for (std::size_t o = 0; o < count; ++o) {
    const std::size_t p0 = L.ptr[o], k = L.ptr[o + 1] - p0;
    const int32_t* idx = L.idx + p0;
    double* nu = num + o * r;
    double* de = den + o * r;
    if (coef.size() < k) coef.resize(k);
    // The data terms κa (a mask's entries hold 0 in the data: theirs vanish, and so does the pass).
    if (L.dataTerms) {
      for (std::size_t q = 0; q < k; ++q) coef[q] = L.kappa[p0 + q] * L.data[p0 + q];
      K.gatherAxpy(coef.data(), Y, idx, k, r, nu);
    }
    // The model terms κ(x·y).
    K.dots(X + o * r, Y, idx, k, r, coef.data());
    if (L.uniform) {
      for (std::size_t q = 0; q < k; ++q) coef[q] *= L.kappa[0];
    } else {
      for (std::size_t q = 0; q < k; ++q) coef[q] *= L.kappa[p0 + q];
    }
    K.gatherAxpy(coef.data(), Y, idx, k, r, de);
    for (std::size_t c = 0; c < r; ++c) nu[c] = std::max(nu[c], 0.0), de[c] = std::max(de[c], 0.0);
  }
}

// One weighted HALS sweep over the rows of X: each coordinate x_c in turn is set to the exact
// minimizer over x_c ≥ 0 of the convex quadratic ½Σⱼ ωⱼ(aⱼ − x·yⱼ)² (the other coordinates fixed):
//   x_c ← max(0, x_c + g/d),  g = Σⱼ ωⱼ(aⱼ − x·yⱼ)y_jc = b(P_c − (xG)_c) + Σ_listed e·y_c,
//   d = Σⱼ ωⱼ y_jc² = b·G_cc + Σ_listed κ y_c²,
// with the listed residuals e = κ(a − x·y) kept current as x changes. d ≤ 0 (no observed entry
// meets x_c with y_c ≠ 0; up to rounding when b = 1) leaves x_c where it is: any value is optimal.
// A penalty l1·x_c + ½·l2·x_c² keeps the coordinate problem a convex quadratic, now of curvature
// d + l2 and slope −(g − l1 − l2·x_c) at x_c, so its exact minimizer is the same step with those.
// The row update itself is listed::Kernels::halsRow (listed_kernels.cpp).
void weightedHalsSweep(const ListView& L, bool base, std::size_t count, std::size_t r, double* X, const double* Y,
                       const double* P, const double* G, std::vector<double>& residual, std::vector<double>& gathered,
                       const Penalty& penalty) {
  const listed::Kernels& K = listed::kernels();
  std::vector<double> curvature(r);
  for (std::size_t o = 0; o < count; ++o) {
    const std::size_t p0 = L.ptr[o], k = L.ptr[o + 1] - p0;
    if (residual.size() < k) residual.resize(k);
    if (gathered.size() < r * k) gathered.resize(r * k);
    // (A mask's κ, all −1, and data, all 0, are not read: one cache miss per row each, otherwise.)
    K.halsRow(X + o * r, Y, L.idx + p0, L.uniform ? nullptr : L.kappa + p0, L.kappa[0],
              L.dataTerms ? L.data + p0 : nullptr, k, r, base, base ? P + o * r : nullptr, G, penalty.l1, penalty.l2,
              curvature.data(), gathered.data(), residual.data());
  }
}

// The KL multiplicative update of one entry with a penalty: the minimizer over w > 0 of the KL
// auxiliary function (Lee–Seung's, separable: s·w − b·log w with b = w̃·(QHᵀ) at the current w̃ and
// s the column sum) plus l1·w + ½·l2·w². It is the positive root of l2·w² + (s + l1)·w − b = 0,
// written without cancellation; l2 = 0 gives b/(s + l1). Minimizing a majorizer that touches the
// objective at w̃ never increases the objective, so the penalized updates stay monotone.
inline double klPenalizedStep(double b, double s, const Penalty& p) {
  const double t = s + p.l1;
  return p.l2 > 0 ? 2.0 * b / (t + std::sqrt(t * t + 4.0 * p.l2 * b)) : b / t;
}

// y −= a·x over r entries (unrolled by four so that -O2 vectorizes it; the sweeps' inner loop).
inline void subtractScaled(double* __restrict y, const double* __restrict x, double a, std::size_t r) {
  std::size_t l = 0;
  const std::size_t whole = r - r % 4;
  for (; l < whole; l += 4) {
    y[l] -= a * x[l];
    y[l + 1] -= a * x[l + 1];
    y[l + 2] -= a * x[l + 2];
    y[l + 3] -= a * x[l + 3];
  }
  for (; l < r; ++l) y[l] -= a * x[l];
}

// The HALS updates of one row x (r entries) of the factor being updated, with the other factor fixed:
// the row's objective is ½·xGxᵀ − p·xᵀ + the penalty (G = HHᵀ and p the row of AHᵀ; for Hᵀ: WᵀW and
// the row of AᵀW), a convex quadratic. Each coordinate step x_c ← max(0, x_c + g_c/d_c) minimizes it
// exactly over x_c ≥ 0 (g_c = p_c − (xG)_c − l1 − l2·x_c, curvature d_c = G_cc + l2), so no step can
// increase it, and the rows are independent: sweeping one row several times before the next is
// block-coordinate descent of the same objective (any order of exact coordinate steps is monotone).
// The residual gradient p − xG of each row is kept (r entries) and updated by a row of G (G symmetric)
// only when a coordinate moves, so a sweep costs r per coordinate plus r per move, contiguous.
// Up to `sweeps` sweeps; stops when a sweep's change Σ d_c·δ_c² is at most tolerance² times the
// first sweep's (Gillis–Glineur's rule for accelerated HALS), or 0.
// `inverse` holds 1/d_c (0 where d_c ≤ 0: that coordinate is left alone): a multiplication instead of a
// division on the sweep's serial chain (coordinate c's step waits for the gradient update of c − 1);
// `curvature` holds d_c itself, so the change costs no division either.
// Rows go in groups of kGroup, swept in lockstep: their chains are independent, so the processor
// overlaps them; each row does exactly the operations it would do alone (a row that has stopped is
// skipped), so the grouping changes no result. Eight rather than four: with the AVX build below,
// about 4 % less CPU per call on ALL 128×1000 rank 10 (two iterations), where four gained nothing over
// the portable build (the chains, not the vector width, were the limit).
constexpr std::size_t kGroup = 8;

// Rank > 0: compiled for that rank (halsRows below picks it for small ranks), so the row loops of r
// entries unroll completely (the sweeps are most of an iteration on small problems); the operations
// and their order are those of the general version (Rank 0), so the results are the same.
// The body is inlined into two versions (below): the portable one, and one compiled for AVX (256-bit
// vectors: the r-entry row loops in half the instructions) chosen at run time as the listed kernels
// are (listed::kernels().vectorized: the CPU has AVX + FMA and NSA_FLOW_SIMD is not 0). The AVX
// version has no FMA (target "avx" only: with no fused multiply–add instruction none can be formed,
// whatever -ffp-contract says), so it does the same IEEE operations in the same order: the two give
// the same bits (test/nmf.test.ts checks it).
#if defined(__GNUC__) || defined(__clang__)
#define NSA_HALS_INLINE __attribute__((always_inline)) inline
#else
#define NSA_HALS_INLINE inline
#endif
template <std::size_t Rank>
NSA_HALS_INLINE void halsRowsBody(double* X, const double* P, const double* G, std::size_t rank, const Penalty& penalty,
                                  int sweeps, double tolerance, std::size_t begin, std::size_t end) {
  const std::size_t r = Rank > 0 ? Rank : rank;
  const double l1 = penalty.l1, l2 = penalty.l2, stop = tolerance * tolerance;
  std::vector<double> inverse(r), curvature(r), grads(kGroup * r);
  for (std::size_t c = 0; c < r; ++c) {
    const double d = G[c * r + c] + l2;
    inverse[c] = d > 0 ? 1.0 / d : 0.0;
    curvature[c] = d;
  }
  for (std::size_t i0 = begin; i0 < end; i0 += kGroup) {
    const std::size_t count = std::min(kGroup, end - i0);
    double first[kGroup] = {}, change[kGroup];
    bool active[kGroup] = {};
    for (std::size_t k = 0; k < count; ++k) {
      double* __restrict grad = grads.data() + k * r;
      const double* x = X + (i0 + k) * r;
      const double* p = P + (i0 + k) * r;
      for (std::size_t c = 0; c < r; ++c) grad[c] = p[c];
      for (std::size_t l = 0; l < r; ++l)
        if (x[l] != 0.0) subtractScaled(grad, G + l * r, x[l], r);
      active[k] = true;
    }
    for (int s = 0; s < sweeps; ++s) {
      bool any = false;
      for (std::size_t k = 0; k < count; ++k) change[k] = 0;
      for (std::size_t c = 0; c < r; ++c) {
        const double inv = inverse[c], d = curvature[c];
        if (inv == 0.0) continue;
        for (std::size_t k = 0; k < count; ++k) {
          if (!active[k]) continue;
          double* __restrict x = X + (i0 + k) * r;
          double* __restrict grad = grads.data() + k * r;
          const double g = grad[c] - l1 - l2 * x[c];
          const double next = std::max(0.0, x[c] + g * inv);
          const double delta = next - x[c];
          if (delta == 0.0) continue;
          change[k] += delta * delta * d;
          x[c] = next;
          subtractScaled(grad, G + c * r, delta, r);
        }
      }
      for (std::size_t k = 0; k < count; ++k) {
        if (!active[k]) continue;
        if (s == 0) first[k] = change[k];
        else if (change[k] <= stop * first[k]) active[k] = false;
        if (!(change[k] > 0)) active[k] = false;
        any = any || active[k];
      }
      if (!any) break;
    }
  }
}

template <std::size_t Rank>
void halsRowsOfRank(double* X, const double* P, const double* G, std::size_t rank, const Penalty& penalty, int sweeps,
                    double tolerance, std::size_t begin, std::size_t end) {
  halsRowsBody<Rank>(X, P, G, rank, penalty, sweeps, tolerance, begin, end);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NSA_NMF_AVX 1
template <std::size_t Rank>
__attribute__((target("avx"))) void halsRowsOfRankAvx(double* X, const double* P, const double* G, std::size_t rank,
                                                      const Penalty& penalty, int sweeps, double tolerance,
                                                      std::size_t begin, std::size_t end) {
  halsRowsBody<Rank>(X, P, G, rank, penalty, sweeps, tolerance, begin, end);
}
#endif

template <std::size_t... Ranks>
void halsRowsDispatch(std::index_sequence<Ranks...>, bool avx, double* X, const double* P, const double* G, std::size_t r,
                      const Penalty& penalty, int sweeps, double tolerance, std::size_t begin, std::size_t end) {
  using Kernel = void (*)(double*, const double*, const double*, std::size_t, const Penalty&, int, double, std::size_t, std::size_t);
  static constexpr Kernel portable[] = {&halsRowsOfRank<Ranks>...};  // [0]: any rank
#ifdef NSA_NMF_AVX
  static constexpr Kernel avx256[] = {&halsRowsOfRankAvx<Ranks>...};
  const Kernel* kernels = avx ? avx256 : portable;
#else
  const Kernel* kernels = portable;
#endif
  (r < sizeof...(Ranks) ? kernels[r] : kernels[0])(X, P, G, r, penalty, sweeps, tolerance, begin, end);
}

// The HALS row updates, compiled for each rank up to 32 (halsRowsBody), portable or AVX (`avx`:
// listed::kernels().vectorized, read once per solve).
inline void halsRows(bool avx, double* X, const double* P, const double* G, std::size_t r, const Penalty& penalty,
                     int sweeps, double tolerance, std::size_t begin, std::size_t end) {
  halsRowsDispatch(std::make_index_sequence<33>{}, avx, X, P, G, r, penalty, sweeps, tolerance, begin, end);
}

// The dense data products of the plain solve split over its team (runBlasRowsIfWorth: one
// single-threaded GEMM per thread): OpenBLAS threads these thin products (2000×1000 times rank 20)
// about 1.5× on 2 cores, two single-threaded halves close to 2×. Every entry of the product is the
// same K-long dot product whichever block it falls in, so a team of any size gives the same bits
// (test/threads-nmf.test.ts); a team of one makes the one call it made before. CSR data keep their
// serial loops (dataTimes, dataTransposeTimes).
constexpr std::size_t kProductAlign = 8;  // blocks of 8 rows of A·X, or 8 columns of A (a cache line)

// Rows [b, e) of out (n×l) = A·X (dense A), X m×l, or l×m when `transposed` (the iteration's A·Hᵀ from H).
void dataTimesRows(const DataMatrix& A, const double* X, bool transposed, std::size_t l, double* out, std::size_t b,
                   std::size_t e) {
  gemm(false, transposed, e - b, l, A.cols, 1.0, A.dense + b * A.cols, X, 0.0, out + b * l);
}

// Rows [b, e) of out (m×l) = Aᵀ·Y (dense A): columns [b, e) of A, Y n×l.
void dataTransposeTimesRows(const DataMatrix& A, const double* Y, std::size_t l, double* out, std::size_t b, std::size_t e) {
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, asInt(e - b), asInt(l), asInt(A.rows), 1.0, A.dense + b,
              asInt(A.cols), Y, asInt(l), 0.0, out + b * l, asInt(l));
}

// out (n×l) = A·X by row blocks of A (dataTimesRows).
void teamDataTimes(RowTeam& team, const DataMatrix& A, const double* X, bool transposed, std::size_t l, double* out) {
  if (A.sparse()) {
    dataTimes(A, X, l, 0.0, out);
    return;
  }
  auto part = [&](int, std::size_t b, std::size_t e) { dataTimesRows(A, X, transposed, l, out, b, e); };
  runBlasRowsIfWorth(team, A.rows, kProductAlign, static_cast<double>(A.rows * A.cols * l), part);
}

// out (m×l) = Aᵀ·Y by column blocks of A (dataTransposeTimesRows).
void teamDataTransposeTimes(RowTeam& team, const DataMatrix& A, const double* Y, std::size_t l, double* out) {
  if (A.sparse()) {
    dataTransposeTimes(A, Y, l, 0.0, out);
    return;
  }
  auto part = [&](int, std::size_t b, std::size_t e) { dataTransposeTimesRows(A, Y, l, out, b, e); };
  runBlasRowsIfWorth(team, A.cols, kProductAlign, static_cast<double>(A.rows * A.cols * l), part);
}

}  // namespace

// Penalties in the multiplicative updates. The Frobenius update of a row x of W (H likewise) with
// the other factor fixed minimizes Lee–Seung's quadratic majorizer of the data term, of diagonal
// curvature K = diag((x·G)_c / x_c) ⪰ G (G = HHᵀ, or the weighted Gram of the row). The penalized
// row objective has Hessian G + l2·I and gradient (xG − p) + l1 + l2·x; the curvature
// K' = diag(((xG)_c + l1 + l2·x_c) / x_c) = K + l2·I + diag(l1/x_c) ⪰ G + l2·I still majorizes
// it, touching at x, and the majorizer's minimizer x − K'⁻¹∇ is x ∘ p / (xG + l1 + l2·x): the
// penalty's gradient added to the denominator. It is ≥ 0 and never increases the penalized
// objective (the ε of the denominator, a guard against 0/0, as in the unpenalized update).
// KL: klPenalizedStep.
NmfRun nmf(const DataMatrix& A, const NmfOptions& o, double* W, double* H, Monitor& monitor,
           const EntryWeights* weights) {
  const std::size_t n = A.rows, m = A.cols, r = o.rank;
  const double eps = o.epsilon;
  Workspace ws;
  NmfRun run;
  run.trace.start();
  LossRecorder recorder(o.tolerance, o.lossEvery);
  const bool kl = o.loss == NmfLoss::KL;
  // Penalties (NmfOptions): they enter the updates and the certificate only when active, so an
  // unpenalized solve is the plain one bit for bit.
  const Penalty& penaltyW = o.penaltyW;
  const Penalty& penaltyH = o.penaltyH;
  const bool penalized = o.penalized();
  auto penaltyValue = [&]() { return penaltyW.value(W, n * r) + penaltyH.value(H, r * m); };
  // Weighted (Frobenius only; the bindings refuse weights with KL): ω = base + κ over the list.
  const bool weighted = weights && weights->active() && !kl;
  const bool base = !weighted || weights->base;
  const ListView rowList = weighted ? byRows(*weights) : ListView{};
  const ListView colList = weighted ? byColumns(*weights) : ListView{};
  std::vector<double> residual, gathered;
  const double baseNormA2 = base ? dataSquaredNorm(A) : 0.0;
  double normA2 = baseNormA2;  // Σωa²
  if (weighted)
    for (std::size_t p = 0; p < weights->size(); ++p) normA2 += weights->rowKappa[p] * weights->rowData[p] * weights->rowData[p];
  normA2 = std::max(normA2, 0.0);
  const double normalizer = kl ? std::max(dataSum(A), 1e-300) : std::sqrt(std::max(normA2, 1e-300));
  // Σω(a − wh)²: the base loss (expanded from AHᵀ and HHᵀ) plus the listed entries' part.
  auto weightedLossSquared = [&]() {
    double sum = base ? frobeniusLossSquared(A, baseNormA2, W, H, ws.get(kAHt, n * r), ws.get(kHHt, r * r), r, ws) : 0.0;
    return sum + listedResidualSquared(rowList, n, r, W, ws.get(kHt, m * r));
  };

  double* HHt = ws.get(kHHt, r * r);
  double* AHt = ws.get(kAHt, n * r);
  double* WHHt = ws.get(kWHHt, std::max(n, m) * r);  // W·HHᵀ, then Hᵀ·WᵀW
  double* WtW = ws.get(kWtW, r * r);
  double* WtAT = ws.get(kWtAT, m * r);  // (WᵀA)ᵀ = AᵀW, m×r
  double* Ht = ws.get(kHt, m * r);
  const std::size_t qSize = A.sparse() ? static_cast<std::size_t>(A.indptr[n]) : n * m;
  double* Q = kl ? ws.get(kQ, std::max<std::size_t>(qSize, 1)) : nullptr;
  double* WH = kl && !A.sparse() ? ws.get(kWH, n * m) : nullptr;
  double* sums = ws.get(kSums, r);
  DataMatrix quotient = A;
  if (kl) {
    if (A.sparse()) quotient.values = Q;
    else quotient.dense = Q;
  }

  // The thread team of the unweighted Frobenius solve (KL and weighted: one thread, their passes are
  // serial): the data products (teamDataTimes, teamDataTransposeTimes), the HALS row sweeps and the
  // MU row passes, on dense data a product and its factor's update in one pass (fusedPasses below).
  // With more than one thread, OpenBLAS runs on one thread for the whole solve
  // (`blas`, as PlainNtf in ntf.cpp): the team splits the large products itself, and an OpenBLAS
  // worker left spinning after a threaded call would take a core from the team's helpers.
  RowTeam team(kl || weighted ? 1 : teamThreads(0, static_cast<double>((n + m) * r * r)));
  SingleThreadedBlas blas(team.size() > 1);

  // The loss of the current (W, H) as the solver's products allow, then one update of W and H.
  auto lossOf = [&](double raw) { return kl ? raw : std::sqrt(std::max(raw, 0.0)); };
  auto evaluateLoss = [&]() -> double {  // standalone (after the last iteration)
    transposeInto(H, r, m, Ht);
    if (kl) return klQuotient(A, W, H, Ht, r, Q, WH);
    outerGram(H, r, m, HHt);
    teamDataTimes(team, A, Ht, false, r, AHt);
    if (weighted) return weightedLossSquared();
    return frobeniusLossSquared(A, normA2, W, H, AHt, HHt, r, ws);
  };

  // productsCurrent: evaluateLoss() has just computed Hᵀ, HHᵀ and AHᵀ of the current (W, H) (the
  // final certificate after the final loss): the unweighted Frobenius certificate reuses them, and
  // AᵀW and WᵀW too when wProductsCurrent says the last H update left them of the current W (no W
  // update follows it), so the final certificate needs no product with the data.
  bool wProductsCurrent = false;
  auto certificateOf = [&](bool productsCurrent = false) -> double {
    // The certificate: the gradients of the normalized objective at the current (W, H), in the
    // update's workspaces, which every iteration recomputes (AHt → ∇W, n×r; WtAT → ∇H transposed,
    // m×r, beside Hᵀ).
    //   Frobenius, f = ½‖A − WH‖²/‖A‖²: ∇W = (W·HHᵀ − AHᵀ)/‖A‖², ∇Hᵀ = (Hᵀ·WᵀW − AᵀW)/‖A‖².
    //   KL, f = D(A‖WH)/Σa, Q = A ⊘ WH: ∇W = (1(H1)ᵀ − QHᵀ)/Σa, ∇Hᵀ = (1(Wᵀ1)ᵀ − QᵀW)/Σa.
    if (!productsCurrent) transposeInto(H, r, m, Ht);
    const double scale = 1.0 / (kl ? normalizer : std::max(normA2, 1e-300));
    if (kl) {
      klQuotient(A, W, H, Ht, r, Q, WH);
      dataTimes(quotient, Ht, r, 0.0, AHt);
      dataTransposeTimes(quotient, W, r, 0.0, WtAT);
      for (std::size_t c = 0; c < r; ++c) {
        double hs = 0, wsum = 0;
        for (std::size_t j = 0; j < m; ++j) hs += H[c * m + j];
        for (std::size_t i = 0; i < n; ++i) wsum += W[i * r + c];
        for (std::size_t i = 0; i < n; ++i) AHt[i * r + c] = (hs - AHt[i * r + c]) * scale;
        for (std::size_t j = 0; j < m; ++j) WtAT[j * r + c] = (wsum - WtAT[j * r + c]) * scale;
      }
    } else if (weighted) {
      //   weighted, f = ½Σω(a − wh)²/Σωa²: ∇W = ((Ω∘WH)Hᵀ − (Ω∘A)Hᵀ)/Σωa², ∇Hᵀ likewise.
      outerGram(H, r, m, HHt);
      if (base) dataTimes(A, Ht, r, 0.0, AHt);
      weightedGradientParts(rowList, base, n, r, W, Ht, AHt, HHt, AHt, WHHt);
      for (std::size_t i = 0; i < n * r; ++i) AHt[i] = (WHHt[i] - AHt[i]) * scale;
      gram(W, n, r, WtW);
      if (base) dataTransposeTimes(A, W, r, 0.0, WtAT);
      weightedGradientParts(colList, base, m, r, Ht, W, WtAT, WtW, WtAT, WHHt);
      for (std::size_t i = 0; i < m * r; ++i) WtAT[i] = (WHHt[i] - WtAT[i]) * scale;
    } else {
      if (!productsCurrent) {
        outerGram(H, r, m, HHt);
        teamDataTimes(team, A, Ht, false, r, AHt);
      }
      gemm(false, false, n, r, r, 1.0, W, HHt, 0.0, WHHt);
      for (std::size_t i = 0; i < n * r; ++i) AHt[i] = (WHHt[i] - AHt[i]) * scale;
      if (!(productsCurrent && wProductsCurrent)) {
        gram(W, n, r, WtW);
        teamDataTransposeTimes(team, A, W, r, WtAT);
      }
      gemm(false, false, m, r, r, 1.0, Ht, WtW, 0.0, WHHt);
      for (std::size_t i = 0; i < m * r; ++i) WtAT[i] = (WHHt[i] - WtAT[i]) * scale;
    }
    wProductsCurrent = false;  // WtAT now holds the gradient
    // The penalties' gradients l1 + l2·X, over the same normalizer.
    penaltyW.addGradient(W, n * r, scale, AHt);
    penaltyH.addGradient(Ht, m * r, scale, WtAT);
    return worstCertificate(gradientMapping(W, AHt, n * r, true), gradientMapping(Ht, WtAT, m * r, true));
  };

  // The unweighted Frobenius updates of one factor X (rows×r, W or Hᵀ) from its products P (AHᵀ or
  // AᵀW) and Gram G (HHᵀ or WᵀW), with o.innerSweeps inner updates (NmfOptions says why they are
  // cheap). The row passes run on the thread team; every row is computed by one thread in the same
  // order whatever the team's size, so the team changes no result. `transposed` (H, for X = Hᵀ): the
  // pass also writes its rows of X there as columns, the iteration's H, so that no serial transpose
  // follows the update.
  auto transposeRows = [&](const double* X, std::size_t rows, double* transposed, std::size_t b, std::size_t e) {
    if (!transposed) return;
    for (std::size_t c = 0; c < r; ++c)
      for (std::size_t i = b; i < e; ++i) transposed[c * rows + i] = X[i * r + c];
  };
  const int sweeps = std::max(o.innerSweeps, 1);
  const bool avx = listed::kernels().vectorized;
  std::vector<double> rowChange;  // MU's change per row, with inner repeats
  // One MU step of rows [b, e) of X (muRepeats below): the denominator XG (+ the penalty's
  // gradient) of those rows, then the elementwise update.
  auto muRows = [&](double* X, const double* P, const double* G, const Penalty& penalty, std::size_t b, std::size_t e) {
    gemm(false, false, e - b, r, r, 1.0, X + b * r, G, 0.0, WHHt + b * r);
    penalty.addGradient(X + b * r, (e - b) * r, 1.0, WHHt + b * r);
    for (std::size_t i = b; i < e; ++i) {
      double* x = X + i * r;
      const double* p = P + i * r;
      const double* den = WHHt + i * r;
      double change = 0;
      for (std::size_t c = 0; c < r; ++c) {
        const double next = x[c] * p[c] / (den[c] + eps);
        const double delta = next - x[c];
        change += G[c * (r + 1)] * delta * delta;
        x[c] = next;
      }
      if (sweeps > 1) rowChange[i] = change;
    }
  };
  // The update of rows [b, e) of X: HALS's sweeps of those rows or one MU step, then their columns of `transposed`.
  auto updateRows = [&](double* X, std::size_t rows, const double* P, const double* G, const Penalty& penalty,
                        double* transposed, std::size_t b, std::size_t e) {
    if (o.solver == NmfSolver::Hals) halsRows(avx, X, P, G, r, penalty, sweeps, o.innerTolerance, b, e);
    else muRows(X, P, G, penalty, b, e);
    transposeRows(X, rows, transposed, b, e);
  };
  auto halsFactor = [&](double* X, std::size_t rows, const double* P, const double* G, const Penalty& penalty,
                        double* transposed = nullptr) {
    auto pass = [&](int, std::size_t b, std::size_t e) { updateRows(X, rows, P, G, penalty, transposed, b, e); };
    runRows(team, rows, 1, pass);
  };
  // MU: X ← X ∘ P / (XG + l1 + l2·X + ε), each a majorize–minimize step of the same block objective
  // at the current X (the note above nmf()), so repeating it stays monotone; repeated while the
  // change Σ G_cc·δ² exceeds innerTolerance² times the first update's. The pass (the denominator XG
  // of its rows, one single-threaded GEMM per block, each entry the same r-long dot product in any
  // split, and the elementwise update) runs on the team when its rows·r² flops pay for a wake-up; the
  // change is summed per row and then over the rows in order, so the stopping decision is the same
  // for any team size. Every repeat's pass writes `transposed`, so the last one leaves it current.
  auto muRepeats = [&](double* X, std::size_t rows, const double* P, const double* G, const Penalty& penalty,
                       double* transposed = nullptr) {
    if (sweeps > 1) rowChange.resize(rows);
    auto pass = [&](int, std::size_t b, std::size_t e) { updateRows(X, rows, P, G, penalty, transposed, b, e); };
    double first = 0;
    for (int s = 0; s < sweeps; ++s) {
      runRowsIfWorth(team, rows, kProductAlign, static_cast<double>(rows * r * r), pass);
      if (sweeps == 1) return;
      double change = 0;
      for (std::size_t i = 0; i < rows; ++i) change += rowChange[i];
      if (s == 0) first = change;
      else if (change <= o.innerTolerance * o.innerTolerance * first) return;
      if (!(change > 0)) return;
    }
  };

  // The larger factor is fitted first, to the start's smaller one: on wide data (n < m) the first
  // iteration of unweighted HALS updates only H (tall data, n ≥ m, fit W first anyway). Fitting the
  // n×r W first to a random r×m H with m ≫ n (its rows nearly collinear: each is mostly its mean)
  // spends that update on an uninformative start and leads to a worse path. Measured on the ALL
  // expression matrix (128×1000, rank 10; bench/tta/nmf.ts): within 5 % / 1 % of the best loss after
  // 7 / 18 iterations instead of 10 / 27; on the Austen tf-idf rows (90×8984, rank 6, l2W 0.05) a
  // lower penalized objective (test/penalties.test.ts); tall problems are unchanged.
  const bool hFirst = o.solver == NmfSolver::Hals && !weighted && !kl && n < m;

  // With a team of more than one thread (dense data), a factor's product and its update are one
  // team pass: each thread forms its rows of AHᵀ (of AᵀW) and updates the same rows of W (of Hᵀ),
  // which read no other row of the product: one wake-up of the team instead of two per factor, the
  // rows still in cache, and the same operations on every row as the separate passes. The
  // iteration's loss is of the W before its update, so the pass keeps a copy of it (`Wold`) when the
  // loss is due. Not for MU with inner repeats (its stopping rule sums the change of all rows between
  // repeats) nor for the first iteration on wide data (its loss needs the H before the update).
  const bool fusedPasses = !kl && !weighted && !A.sparse() && team.size() > 1 && (o.solver == NmfSolver::Hals || sweeps == 1) &&
                           static_cast<double>(n * m * r) >= kTeamMinWork;
  double* Wold = fusedPasses ? ws.get(kQ, n * r) : nullptr;  // (kQ: the KL quotient's slot, unused here)
  int it = 0;
  for (; it < o.maxIterations; ++it) {
    if (monitor.cancelled()) throwAborted();
    const bool due = recorder.due(it);
    if (due && o.certificateTolerance > 0 && certificateOf() <= o.certificateTolerance) {
      run.stop = StopReason::GradMap;  // the returned (W, H) are the certified ones: no update
      break;
    }
    const bool wantLoss = due || monitor.wantsProgress();
    double raw = 0;
    const double penaltyBefore = wantLoss && penalized ? penaltyValue() : 0.0;  // of the iterate the loss is of
    // Hᵀ: the Frobenius updates leave H as the transpose of their Hᵀ (the end of the iteration), so
    // only the first iteration and KL (which updates H itself) form it here.
    if (kl || it == 0) transposeInto(H, r, m, Ht);

    if (kl) {
      // W ← W ∘ (Q Hᵀ) / (1 (H1)ᵀ), Q = A ⊘ WH; then the same for H with the new W.
      raw = klQuotient(A, W, H, Ht, r, Q, WH);
      dataTimes(quotient, Ht, r, 0.0, AHt);
      for (std::size_t c = 0; c < r; ++c) {
        double s = 0;
        for (std::size_t j = 0; j < m; ++j) s += H[c * m + j];
        sums[c] = s + eps;
      }
      if (penaltyW.active()) {
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t c = 0; c < r; ++c) W[i * r + c] = klPenalizedStep(W[i * r + c] * AHt[i * r + c], sums[c], penaltyW);
      } else {
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t c = 0; c < r; ++c) W[i * r + c] = W[i * r + c] * AHt[i * r + c] / sums[c];
      }
      transposeInto(H, r, m, Ht);
      klQuotient(A, W, H, Ht, r, Q, WH);
      dataTransposeTimes(quotient, W, r, 0.0, WtAT);
      for (std::size_t c = 0; c < r; ++c) {
        double s = 0;
        for (std::size_t i = 0; i < n; ++i) s += W[i * r + c];
        sums[c] = s + eps;
      }
      if (penaltyH.active()) {
        for (std::size_t c = 0; c < r; ++c)
          for (std::size_t j = 0; j < m; ++j) H[c * m + j] = klPenalizedStep(H[c * m + j] * WtAT[j * r + c], sums[c], penaltyH);
      } else {
        for (std::size_t c = 0; c < r; ++c)
          for (std::size_t j = 0; j < m; ++j) H[c * m + j] = H[c * m + j] * WtAT[j * r + c] / sums[c];
      }
    } else {
      // The first iteration on wide data updates only H: it needs no AHᵀ, and the start's loss takes
      // its cross term ⟨A, WH⟩ = ⟨AᵀW, Hᵀ⟩ from the AᵀW of the H update (below), one product with
      // the data fewer.
      const bool onlyH = it == 0 && hFirst;
      const bool fuse = fusedPasses && !onlyH;
      outerGram(H, r, m, HHt);
      if (fuse) {
        auto pass = [&](int, std::size_t b, std::size_t e) {
          dataTimesRows(A, H, true, r, AHt, b, e);
          if (wantLoss) std::memcpy(Wold + b * r, W + b * r, (e - b) * r * sizeof(double));
          updateRows(W, n, AHt, HHt, penaltyW, nullptr, b, e);
        };
        runRows(team, n, kProductAlign, pass);
        if (wantLoss) raw = frobeniusLossSquared(A, normA2, Wold, H, AHt, HHt, r, ws, it > 0);
      } else if (!base || onlyH) {  // !base: only the listed (stored) entries are observed, no product with all of A
      } else if (A.sparse()) dataTimes(A, Ht, r, 0.0, AHt);
      else teamDataTimes(team, A, H, true, r, AHt);
      // WᵀW (kWtW) is of the current W after any iteration's H update (it > 0): formed there for it.
      if (wantLoss && !onlyH && !fuse)
        raw = weighted ? weightedLossSquared() : frobeniusLossSquared(A, normA2, W, H, AHt, HHt, r, ws, it > 0);

      if (weighted && o.solver == NmfSolver::Mu) {
        // W ← W ∘ (Ω∘A)Hᵀ / ((Ω∘WH)Hᵀ + ε): Lee–Seung's update of the weighted objective.
        // A penalty adds its gradient l1 + l2·W (≥ 0) to the denominator: see the note above nmf().
        weightedGradientParts(rowList, base, n, r, W, Ht, AHt, HHt, AHt, WHHt);
        penaltyW.addGradient(W, n * r, 1.0, WHHt);
        for (std::size_t i = 0; i < n * r; ++i) W[i] = W[i] * AHt[i] / (WHHt[i] + eps);
      } else if (weighted) {
        weightedHalsSweep(rowList, base, n, r, W, Ht, AHt, HHt, residual, gathered, penaltyW);
      } else if (fuse) {
        // (W updated in the product's pass above)
      } else if (o.solver == NmfSolver::Mu) {
        muRepeats(W, n, AHt, HHt, penaltyW);
      } else if (onlyH) {
        // The first iteration of unweighted HALS on wide data fits only H, to the start's W (below).
      } else {
        // HALS: the columns of W in turn; row i of W only meets row i, so sweep row by row
        // (penalized: curvature + l2 and gradient + l1 + l2·w_c, weightedHalsSweep says why).
        halsFactor(W, n, AHt, HHt, penaltyW);
      }
      gram(W, n, r, WtW);
      // AᵀW straight into its m×r form: on dense data the faster GEMM shape at one thread wherever
      // measured (OpenBLAS 0.3.21, x86-64: 128×1000 rank 10 71 µs against 135 µs for WᵀA (r×m) and its
      // transpose; 2000×1000 rank 20, 10000×40 and 600×300 rank 20 10–25 % faster too).
      if (fuse) {
        auto pass = [&](int, std::size_t b, std::size_t e) {
          dataTransposeTimesRows(A, W, r, WtAT, b, e);
          updateRows(Ht, m, WtAT, WtW, penaltyH, H, b, e);
        };
        runRows(team, m, kProductAlign, pass);
      } else if (base) {
        teamDataTransposeTimes(team, A, W, r, WtAT);
      }
      if (wantLoss && onlyH) raw = expandedLossSquared(A, normA2, dot(WtAT, Ht, m * r), W, H, WtW, HHt, r, ws);
      if (fuse) {
        // (Hᵀ and H updated in the product's pass above)
      } else if (weighted && o.solver == NmfSolver::Mu) {
        weightedGradientParts(colList, base, m, r, Ht, W, WtAT, WtW, WtAT, WHHt);
        penaltyH.addGradient(Ht, m * r, 1.0, WHHt);
        for (std::size_t i = 0; i < m * r; ++i) Ht[i] = Ht[i] * WtAT[i] / (WHHt[i] + eps);
      } else if (weighted) {
        weightedHalsSweep(colList, base, m, r, Ht, W, WtAT, WtW, residual, gathered, penaltyH);
      } else if (o.solver == NmfSolver::Mu) {
        // H ← H ∘ WᵀA / (WᵀW H + ε), computed on Hᵀ rows (m×r).
        muRepeats(Ht, m, WtAT, WtW, penaltyH, H);
      } else {
        halsFactor(Ht, m, WtAT, WtW, penaltyH, H);
      }
      if (weighted) transposeInto(Ht, m, r, H);  // (the unweighted updates wrote H in their passes)
      wProductsCurrent = !weighted;
    }

    if (wantLoss) {
      const double loss = lossOf(raw);
      checkFiniteLoss(loss, it);
      ProgressRecord rec;
      rec.iteration = it;
      rec.total = o.maxIterations;
      rec.count = 2;
      rec.values[0] = loss;
      rec.values[1] = loss / normalizer;
      const double objective = penalized ? (kl ? raw : 0.5 * std::max(raw, 0.0)) + penaltyBefore : 0.0;
      if (penalized) rec.count = 3, rec.values[2] = objective;
      monitor.progress(rec);
      // With a penalty the objective, not the loss, is what the updates never increase: its trace
      // decides the tolerance rule.
      bool plateau = due && recorder.record(it, loss, run.trace);
      if (due && penalized) plateau = recordObjective(run.objective, objective, o.tolerance);
      if (plateau) {
        // The loss measured before this iteration's update met the tolerance; the update is kept
        // (it never raises the loss) and counted.
        ++it;
        run.stop = StopReason::Plateau;
        break;
      }
    }
  }
  run.iterations = it;
  const double finalRaw = evaluateLoss();
  const double final = lossOf(finalRaw);
  checkFiniteLoss(final, it);
  run.trace.record(it, final);
  if (penalized) run.objective.push_back((kl ? finalRaw : 0.5 * std::max(finalRaw, 0.0)) + penaltyValue());

  run.certificate = certificateOf(!kl && !weighted);
  return run;
}

}  // namespace nsa
