#include "tensor.hpp"

#include <algorithm>
#include <cstring>

namespace nsa {

namespace {

// Workspace slots of this file (ortho uses 0–6; solvers use ≥ 16).
enum Slot : std::size_t { kY = 8, kBufA, kBufB };

std::size_t product(const std::size_t* dims, std::size_t n) {
  std::size_t p = 1;
  for (std::size_t i = 0; i < n; ++i) p *= dims[i];
  return p;
}

// The end mode an MTTKRP contracts first with one GEMM: the larger of modes 0 and N−1 that is not
// `mode` (fewer columns left means a smaller intermediate).
std::size_t firstContracted(const Shape& shape, std::size_t mode) {
  const std::size_t last = shape.size() - 1;
  if (mode == 0) return last;
  if (mode == last) return 0;
  return shape[last] >= shape[0] ? last : 0;
}

}  // namespace

std::size_t shapeSize(const Shape& shape) { return product(shape.data(), shape.size()); }

void unfold(const double* T, const Shape& shape, std::size_t mode, double* out) {
  // View T as (L, dₙ, R): out[j, l·R + k] = T[(l·dₙ + j)·R + k].
  const std::size_t L = product(shape.data(), mode), d = shape[mode];
  const std::size_t R = product(shape.data() + mode + 1, shape.size() - mode - 1);
  for (std::size_t l = 0; l < L; ++l)
    for (std::size_t j = 0; j < d; ++j) std::memcpy(out + j * L * R + l * R, T + (l * d + j) * R, R * sizeof(double));
}

void fold(const double* M, const Shape& shape, std::size_t mode, double* out) {
  const std::size_t L = product(shape.data(), mode), d = shape[mode];
  const std::size_t R = product(shape.data() + mode + 1, shape.size() - mode - 1);
  for (std::size_t l = 0; l < L; ++l)
    for (std::size_t j = 0; j < d; ++j) std::memcpy(out + (l * d + j) * R, M + j * L * R + l * R, R * sizeof(double));
}

void khatriRao(const std::vector<const double*>& mats, const std::vector<std::size_t>& rows, std::size_t r,
               double* out) {
  // Built right to left: out holds the product of mats[i..] after step i, `n` rows of it.
  std::size_t n = rows.back();
  std::memcpy(out, mats.back(), n * r * sizeof(double));
  for (std::size_t i = mats.size() - 1; i-- > 0;) {
    const std::size_t d = rows[i];
    // Row (j·n + k) = mats[i][j] ∘ previous row k; fill from the end so the previous rows survive.
    for (std::size_t j = d; j-- > 0;) {
      const double* a = mats[i] + j * r;
      for (std::size_t k = n; k-- > 0;) {
        const double* src = out + k * r;
        double* dst = out + (j * n + k) * r;
        for (std::size_t c = 0; c < r; ++c) dst[c] = a[c] * src[c];
      }
    }
    n *= d;
  }
}

std::size_t contractionScratch(const std::size_t* dims, std::size_t order, std::size_t keep) {
  const std::size_t size = product(dims, order);
  if (order <= 1) return 1;
  const std::size_t first = keep + 1 < order ? dims[order - 1] : dims[0];
  return std::max<std::size_t>(1, size / first);
}

void contractAllBut(const double* y, const std::size_t* dims, std::size_t order, std::size_t keep,
                    const double* const* vecs, double* out, double* bufA, double* bufB) {
  std::size_t size = product(dims, order);
  const double* cur = y;
  double* bufs[2] = {bufA, bufB};
  int next = 0;
  // Plain loops rather than GEMV calls: the solvers contract many small slices, where a BLAS call
  // costs more than the arithmetic; on large slices both are bound by memory bandwidth anyway.
  for (std::size_t m = order; m-- > keep + 1;) {
    const std::size_t d = dims[m], P = size / d;
    const double* v = vecs[m];
    double* dst = bufs[next];
    for (std::size_t p = 0; p < P; ++p) {
      const double* row = cur + p * d;
      double acc = 0;
      for (std::size_t j = 0; j < d; ++j) acc += row[j] * v[j];
      dst[p] = acc;
    }
    cur = dst;
    next ^= 1;
    size = P;
  }
  for (std::size_t m = 0; m < keep; ++m) {
    const std::size_t d = dims[m], Q = size / d;
    const double* v = vecs[m];
    double* dst = bufs[next];
    std::fill(dst, dst + Q, 0.0);
    for (std::size_t j = 0; j < d; ++j) {
      const double c = v[j];
      const double* row = cur + j * Q;
      for (std::size_t q = 0; q < Q; ++q) dst[q] += c * row[q];
    }
    cur = dst;
    next ^= 1;
    size = Q;
  }
  std::memcpy(out, cur, size * sizeof(double));
}

std::size_t mttkrpScratch(const Shape& shape, std::size_t r, std::size_t mode) {
  if (shape.size() <= 1) return 0;
  const std::size_t c = firstContracted(shape, mode);
  const std::size_t rest = shapeSize(shape) / shape[c];
  Shape dims(shape);
  dims.erase(dims.begin() + static_cast<std::ptrdiff_t>(c));
  const std::size_t keep = mode - (c == 0 ? 1 : 0);
  return r * rest + 2 * contractionScratch(dims.data(), dims.size(), keep);
}

void mttkrpRankMajor(const double* T, const Shape& shape, const double* const* F, std::size_t r,
                     std::size_t mode, double* M, Workspace& ws) {
  const std::size_t N = shape.size();
  if (N == 1) {
    for (std::size_t a = 0; a < r; ++a) std::memcpy(M + a * shape[0], T, shape[0] * sizeof(double));
    return;
  }
  const std::size_t c = firstContracted(shape, mode);
  const std::size_t dc = shape[c], rest = shapeSize(shape) / dc;
  double* Y = ws.get(kY, r * rest);
  if (c == 0) {
    gemm(false, false, r, rest, dc, 1.0, F[0], T, 0.0, Y);  // F₀ (r×d₀) · T (d₀×rest)
  } else {
    gemm(false, true, r, rest, dc, 1.0, F[c], T, 0.0, Y);  // F_c (r×d_c) · T(rest×d_c)ᵀ
  }
  // The remaining modes, in order, and the index of `mode` among them.
  std::size_t dims[kMaxTensorOrder];
  std::size_t modes[kMaxTensorOrder];
  std::size_t k = 0;
  for (std::size_t m = 0; m < N; ++m)
    if (m != c) {
      dims[k] = shape[m];
      modes[k++] = m;
    }
  const std::size_t keep = mode - (c == 0 ? 1 : 0);
  const std::size_t scratch = contractionScratch(dims, k, keep);
  double* bufA = ws.get(kBufA, scratch);
  double* bufB = ws.get(kBufB, scratch);
  const double* vecs[kMaxTensorOrder];
  for (std::size_t a = 0; a < r; ++a) {
    for (std::size_t i = 0; i < k; ++i) vecs[i] = modes[i] == mode ? nullptr : F[modes[i]] + a * shape[modes[i]];
    contractAllBut(Y + a * rest, dims, k, keep, vecs, M + a * shape[mode], bufA, bufB);
  }
}

void cpReconstruct(const std::vector<const double*>& F, const Shape& shape, std::size_t r, const double* weights,
                   double* out) {
  const std::size_t N = shape.size();
  const std::size_t dl = shape[N - 1];
  if (N == 1) {
    for (std::size_t j = 0; j < dl; ++j) {
      double s = 0;
      for (std::size_t a = 0; a < r; ++a) s += (weights ? weights[a] : 1.0) * F[0][j * r + a];
      out[j] = s;
    }
    return;
  }
  const std::size_t P = shapeSize(shape) / dl;
  std::vector<double> kr(P * r);
  std::vector<const double*> left(F.begin(), F.end() - 1);
  std::vector<std::size_t> rows(shape.begin(), shape.end() - 1);
  khatriRao(left, rows, r, kr.data());
  if (weights)
    for (std::size_t i = 0; i < P; ++i)
      for (std::size_t a = 0; a < r; ++a) kr[i * r + a] *= weights[a];
  gemm(false, true, P, dl, r, 1.0, kr.data(), F[N - 1], 0.0, out);  // (P×r) · (d_last×r)ᵀ
}

}  // namespace nsa
