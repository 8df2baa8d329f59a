// Data products (dense through BLAS, CSR by hand), the direct residual, NNDSVD initialization and
// the plain NMF solvers (multiplicative updates, HALS).
#include "nmf.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "error.hpp"
#include "nmf_detail.hpp"
#include "ortho.hpp"

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
  return squaredNorm(x, n);
}

double dataSum(const DataMatrix& A) {
  auto [x, n] = valuesOf(A);
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += x[i];
  return s;
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

void nmfInit(const DataMatrix& A, std::size_t r, NmfInit init, uint64_t seed, double* W, double* H) {
  if (init == NmfInit::Given) return;
  const double mean = dataSum(A) / (static_cast<double>(A.rows) * static_cast<double>(A.cols));
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

enum Slot : std::size_t { kResidual = 0, kHHt = 1, kAHt, kWHHt, kWtW, kWtAT, kHt, kQ, kSums, kWH, kWtA };

double frobeniusLossSquared(const DataMatrix& A, double normA2, const double* W, const double* H,
                            const double* AHt, const double* HHt, std::size_t r, Workspace& ws) {
  const std::size_t n = A.rows;
  double* WtW = ws.get(kWtW, r * r);
  gram(W, n, r, WtW);
  const double model = dot(WtW, HHt, r * r);
  const double expanded = normA2 - 2.0 * dot(AHt, W, n * r) + model;
  if (expanded >= kCancellationRatio * (normA2 + model)) return expanded;
  return directResidualSquared(A, nullptr, W, H, r, ws);
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

}  // namespace

NmfRun nmf(const DataMatrix& A, const NmfOptions& o, double* W, double* H, Monitor& monitor) {
  const std::size_t n = A.rows, m = A.cols, r = o.rank;
  const double eps = o.epsilon;
  Workspace ws;
  NmfRun run;
  run.trace.start();
  LossRecorder recorder(o.tolerance, o.lossEvery);
  const bool kl = o.loss == NmfLoss::KL;
  const double normA2 = dataSquaredNorm(A);
  const double normalizer = kl ? std::max(dataSum(A), 1e-300) : std::sqrt(std::max(normA2, 1e-300));

  double* HHt = ws.get(kHHt, r * r);
  double* AHt = ws.get(kAHt, n * r);
  double* WHHt = ws.get(kWHHt, std::max(n, m) * r);  // W·HHᵀ, then Hᵀ·WᵀW
  double* WtW = ws.get(kWtW, r * r);
  double* WtAT = ws.get(kWtAT, m * r);  // (WᵀA)ᵀ = AᵀW, m×r
  double* WtA = ws.get(kWtA, r * m);
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

  // The loss of the current (W, H) as the solver's products allow, then one update of W and H.
  auto lossOf = [&](double raw) { return kl ? raw : std::sqrt(std::max(raw, 0.0)); };
  auto evaluateLoss = [&]() -> double {  // standalone (after the last iteration)
    transposeInto(H, r, m, Ht);
    if (kl) return klQuotient(A, W, H, Ht, r, Q, WH);
    outerGram(H, r, m, HHt);
    dataTimes(A, Ht, r, 0.0, AHt);
    return frobeniusLossSquared(A, normA2, W, H, AHt, HHt, r, ws);
  };

  auto certificateOf = [&]() -> double {
    // The certificate: the gradients of the normalized objective at the current (W, H), in the
    // update's workspaces, which every iteration recomputes (AHt → ∇W, n×r; WtAT → ∇H transposed,
    // m×r, beside Hᵀ).
    //   Frobenius, f = ½‖A − WH‖²/‖A‖²: ∇W = (W·HHᵀ − AHᵀ)/‖A‖², ∇Hᵀ = (Hᵀ·WᵀW − AᵀW)/‖A‖².
    //   KL, f = D(A‖WH)/Σa, Q = A ⊘ WH: ∇W = (1(H1)ᵀ − QHᵀ)/Σa, ∇Hᵀ = (1(Wᵀ1)ᵀ − QᵀW)/Σa.
    transposeInto(H, r, m, Ht);
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
    } else {
      outerGram(H, r, m, HHt);
      dataTimes(A, Ht, r, 0.0, AHt);
      gemm(false, false, n, r, r, 1.0, W, HHt, 0.0, WHHt);
      for (std::size_t i = 0; i < n * r; ++i) AHt[i] = (WHHt[i] - AHt[i]) * scale;
      gram(W, n, r, WtW);
      dataTransposeTimes(A, W, r, 0.0, WtAT);
      gemm(false, false, m, r, r, 1.0, Ht, WtW, 0.0, WHHt);
      for (std::size_t i = 0; i < m * r; ++i) WtAT[i] = (WHHt[i] - WtAT[i]) * scale;
    }
    return worstCertificate(gradientMapping(W, AHt, n * r, true), gradientMapping(Ht, WtAT, m * r, true));
  };

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
    transposeInto(H, r, m, Ht);

    if (kl) {
      // W ← W ∘ (Q Hᵀ) / (1 (H1)ᵀ), Q = A ⊘ WH; then the same for H with the new W.
      raw = klQuotient(A, W, H, Ht, r, Q, WH);
      dataTimes(quotient, Ht, r, 0.0, AHt);
      for (std::size_t c = 0; c < r; ++c) {
        double s = 0;
        for (std::size_t j = 0; j < m; ++j) s += H[c * m + j];
        sums[c] = s + eps;
      }
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t c = 0; c < r; ++c) W[i * r + c] = W[i * r + c] * AHt[i * r + c] / sums[c];
      transposeInto(H, r, m, Ht);
      klQuotient(A, W, H, Ht, r, Q, WH);
      dataTransposeTimes(quotient, W, r, 0.0, WtAT);
      for (std::size_t c = 0; c < r; ++c) {
        double s = 0;
        for (std::size_t i = 0; i < n; ++i) s += W[i * r + c];
        sums[c] = s + eps;
      }
      for (std::size_t c = 0; c < r; ++c)
        for (std::size_t j = 0; j < m; ++j) H[c * m + j] = H[c * m + j] * WtAT[j * r + c] / sums[c];
    } else {
      outerGram(H, r, m, HHt);
      if (A.sparse()) dataTimes(A, Ht, r, 0.0, AHt);
      else gemm(false, true, n, r, m, 1.0, A.dense, H, 0.0, AHt);
      if (wantLoss) raw = frobeniusLossSquared(A, normA2, W, H, AHt, HHt, r, ws);

      if (o.solver == NmfSolver::Mu) {
        gemm(false, false, n, r, r, 1.0, W, HHt, 0.0, WHHt);
        for (std::size_t i = 0; i < n * r; ++i) W[i] = W[i] * AHt[i] / (WHHt[i] + eps);
      } else {
        // HALS: the columns of W in turn; row i of W only meets row i, so sweep row by row.
        for (std::size_t i = 0; i < n; ++i) {
          double* w = W + i * r;
          for (std::size_t c = 0; c < r; ++c) {
            const double d = HHt[c * r + c];
            if (!(d > 0)) continue;
            double g = AHt[i * r + c];
            for (std::size_t l = 0; l < r; ++l) g -= w[l] * HHt[l * r + c];
            w[c] = std::max(0.0, w[c] + g / d);
          }
        }
      }
      gram(W, n, r, WtW);
      if (A.sparse()) {
        dataTransposeTimes(A, W, r, 0.0, WtAT);
      } else {  // WᵀA (r×m) is the faster GEMM shape (A read row-major); transpose the small result
        gemm(true, false, r, m, n, 1.0, W, A.dense, 0.0, WtA);
        transposeInto(WtA, r, m, WtAT);
      }
      if (o.solver == NmfSolver::Mu) {
        // H ← H ∘ WᵀA / (WᵀW H + ε), computed on Hᵀ rows (m×r).
        gemm(false, false, m, r, r, 1.0, Ht, WtW, 0.0, WHHt);
        for (std::size_t i = 0; i < m * r; ++i) Ht[i] = Ht[i] * WtAT[i] / (WHHt[i] + eps);
      } else {
        for (std::size_t j = 0; j < m; ++j) {
          double* h = Ht + j * r;
          for (std::size_t c = 0; c < r; ++c) {
            const double d = WtW[c * r + c];
            if (!(d > 0)) continue;
            double g = WtAT[j * r + c];
            for (std::size_t l = 0; l < r; ++l) g -= h[l] * WtW[l * r + c];
            h[c] = std::max(0.0, h[c] + g / d);
          }
        }
      }
      transposeInto(Ht, m, r, H);
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
      monitor.progress(rec);
      if (due && recorder.record(it, loss, run.trace)) {
        // The loss measured before this iteration's update met the tolerance; the update is kept
        // (it never raises the loss) and counted.
        ++it;
        run.stop = StopReason::Plateau;
        break;
      }
    }
  }
  run.iterations = it;
  const double final = lossOf(evaluateLoss());
  checkFiniteLoss(final, it);
  run.trace.record(it, final);

  run.certificate = certificateOf();
  return run;
}

}  // namespace nsa
