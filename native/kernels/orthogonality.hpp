// The calibration-free orthogonality functionals of NSA-Flow's energy
//   E_w(Y) = (1 − w)·F(Y) + w·O(Y),
// each a function of the Gram matrix S = YᵀY only, scale invariant, in [0, 1], 0 at its ideal and 1
// when all columns are parallel (so that w trades two terms that both live in [0, 1]); offDiagonal
// reaches 1 only for parallel columns of equal norms (parallel columns of norms 1 and 2 give 0.64):
//   gram         D̃ = ‖G − I/k‖² / (1 − 1/k),  G = S / tr S        (0 iff YᵀY = c·I)
//   offDiagonal  ‖offdiag(S)‖² / (tr S)² / (1 − 1/k)                (0 iff the columns are orthogonal)
//   meanCos2     Σ_{i≠j} S_ij² / (S_ii·S_jj) / (k(k − 1))           (mean squared cosine between columns)
// For k = 1 every functional is 0. Gradients have the form ∇_Y O = Y·M with M = 2·∂O/∂S symmetric k×k,
// so a solver forms M from the k×k Gram and pays one p×k×k product (fused where the caller can).
// Written in forms that do not cancel near the ideal (never ‖S‖² − Σ diag²).
#pragma once
#include <cmath>
#include <cstddef>

namespace nsa {

enum class OrthogonalityFunctional { Gram, OffDiagonal, MeanCos2 };

// Columns whose squared norm is at most this fraction of the largest count as zero in meanCos2 (their
// cosines are undefined); they contribute 0 and get no gradient.
constexpr double kZeroColumnFraction = 1e-300;

// Value of O at the Gram S (k×k, symmetric, row-major). When M is not null it receives M (k×k) with
// ∇_Y O(Y) = Y·M. At Y = 0 (tr S ≤ 0) O is undefined (every direction has its own limit, all ≤ 1): it
// counts as 1, its largest value, with M = 0, so that no solver or line search ever prefers collapsing Y
// to 0 (with O(0) = 0, E_w(0) = 1 − w undercut every start less orthogonal than that).
inline double orthogonalityFunctional(OrthogonalityFunctional f, const double* S, std::size_t k, double* M) {
  if (M)
    for (std::size_t i = 0; i < k * k; ++i) M[i] = 0;
  if (k < 2) return 0;
  double t = 0;
  for (std::size_t i = 0; i < k; ++i) t += S[i * k + i];
  if (t == 0) return 1;
  if (!(t > 0)) return t < 0 ? 1 : t;  // a negative trace cannot come from a Gram; NaN propagates
  const double norm = 1.0 - 1.0 / double(k);
  switch (f) {
    case OrthogonalityFunctional::Gram: {
      // D̃ = ‖G − I/k‖²/(1−1/k); ∂/∂S = (2/t)·[(G − I/k) − ‖G − I/k‖²·I]/(1−1/k), using tr G = 1 so that
      // ‖G‖² − 1/k = ‖G − I/k‖² exactly (no cancellation near the ideal).
      double d2 = 0;
      for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < k; ++j) {
          const double e = S[i * k + j] / t - (i == j ? 1.0 / double(k) : 0.0);
          d2 += e * e;
        }
      if (M) {
        const double c = 4.0 / (t * norm);  // M = 2·∂O/∂S
        for (std::size_t i = 0; i < k; ++i)
          for (std::size_t j = 0; j < k; ++j) {
            const double e = S[i * k + j] / t - (i == j ? 1.0 / double(k) : 0.0);
            M[i * k + j] = c * (e - (i == j ? d2 : 0.0));
          }
      }
      return d2 / norm;
    }
    case OrthogonalityFunctional::OffDiagonal: {
      // O = Σ_{i≠j} (S_ij/t)²/(1−1/k); ∂/∂S = (2/t)·[offdiag(S)/t − (O·(1−1/k))·I]/(1−1/k).
      double o2 = 0;
      for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < k; ++j)
          if (i != j) {
            const double e = S[i * k + j] / t;
            o2 += e * e;
          }
      if (M) {
        const double c = 4.0 / (t * norm);
        for (std::size_t i = 0; i < k; ++i)
          for (std::size_t j = 0; j < k; ++j) M[i * k + j] = c * (i == j ? -o2 : S[i * k + j] / t);
      }
      return o2 / norm;
    }
    case OrthogonalityFunctional::MeanCos2: {
      // O = Σ_{i≠j} C_ij/(k(k−1)), C_ij = S_ij²/(S_ii S_jj).
      // ∂O/∂S_ij = 2S_ij/(S_ii S_jj)/(k(k−1)) (i ≠ j, each of the symmetric pair counted once in S),
      // ∂O/∂S_ii = −2·Σ_{j≠i} C_ij/S_ii/(k(k−1)).
      double smax = 0;
      for (std::size_t i = 0; i < k; ++i) smax = std::fmax(smax, S[i * k + i]);
      const double floor = smax * kZeroColumnFraction;
      const double pairs = double(k) * double(k - 1);
      double sum = 0;
      for (std::size_t i = 0; i < k; ++i) {
        const double sii = S[i * k + i];
        if (!(sii > floor)) continue;
        double rowSum = 0;
        for (std::size_t j = 0; j < k; ++j) {
          const double sjj = S[j * k + j];
          if (j == i || !(sjj > floor)) continue;
          const double c = S[i * k + j] * S[i * k + j] / (sii * sjj);
          rowSum += c;
          if (M) M[i * k + j] = 4.0 * S[i * k + j] / (sii * sjj) / pairs;
        }
        sum += rowSum;
        if (M) M[i * k + i] = -4.0 * rowSum / sii / pairs;
      }
      return sum / pairs;
    }
  }
  return 0;
}

}  // namespace nsa
