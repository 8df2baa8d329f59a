// The tensor toolkit: C-order unfold/fold, Khatri–Rao products, MTTKRP and CP reconstruction
// (SPEC.md §9 conventions, as tensorly). A tensor is a flat C-order buffer plus its shape.
//
// Mode-n unfolding is dₙ × Πₘ≠ₙ dₘ with the remaining modes in increasing order, the last fastest.
// Khatri–Rao products put the first matrix's row index slowest, so that
// unfold(T, n) = Fₙ · khatriRao(F, skip n)ᵀ for T = Σ_a ⊗ₘ Fₘ[:, a].
//
// Two factor layouts appear: the toolkit's public one (tensorly: Fₘ is dₘ × r) and the solvers'
// "rank-major" one (Fₘ is r × dₘ, row a contiguous), which is the layout of Stratified-NTF's v, w, h
// and makes every per-component vector contiguous. The MTTKRP kernel works on rank-major factors.
#pragma once
#include <cstddef>
#include <vector>

#include "linalg.hpp"

namespace nsa {

using Shape = std::vector<std::size_t>;
// Highest tensor order the kernels accept (they keep per-mode arrays on the stack).
constexpr std::size_t kMaxTensorOrder = 32;

std::size_t shapeSize(const Shape& shape);

// out (dₙ × size/dₙ) = mode-n unfolding of T.
void unfold(const double* T, const Shape& shape, std::size_t mode, double* out);
// The inverse of unfold: M (dₙ × size/dₙ) back into a tensor of `shape`.
void fold(const double* M, const Shape& shape, std::size_t mode, double* out);

// out (Πᵢ rowsᵢ × r) = Khatri–Rao product of the matrices (rowsᵢ × r, row-major), the first slowest.
void khatriRao(const std::vector<const double*>& mats, const std::vector<std::size_t>& rows, std::size_t r,
               double* out);

// Contracts every mode of the C-order tensor y (shape dims[0..order)) except `keep` with the vector
// vecs[m] (length dims[m], stride 1), writing the dims[keep] results to out. Trailing modes are
// contracted from the back (GEMV), then leading modes from the front. bufA and bufB must each hold
// contractionScratch(dims, order, keep) doubles.
void contractAllBut(const double* y, const std::size_t* dims, std::size_t order, std::size_t keep,
                    const double* const* vecs, double* out, double* bufA, double* bufB);
std::size_t contractionScratch(const std::size_t* dims, std::size_t order, std::size_t keep);

// MTTKRP with rank-major factors: M (r × d_mode), M[a, j] = Σ T[…, j, …] Πₘ≠mode Fₘ[a, iₘ].
// F has one pointer per mode (F[mode] is ignored). The Khatri–Rao product is never formed: one GEMM
// contracts the larger end mode (0 or N−1, not `mode`) with its factor into r × size/d_c, then each
// component's slice is contracted mode by mode with GEMVs. Extra memory: mttkrpScratch() doubles,
// r·size/d_c + 2·size/(d_c·d_c') where d_c' is the next contracted dimension.
void mttkrpRankMajor(const double* T, const Shape& shape, const double* const* F, std::size_t r,
                     std::size_t mode, double* M, Workspace& ws);
std::size_t mttkrpScratch(const Shape& shape, std::size_t r, std::size_t mode);

// T = Σ_a weights[a] ⊗ₘ Fₘ[:, a] with tensorly-layout factors (dₘ × r); weights may be null (ones).
// Extra memory r·size/d_{N−1} (the Khatri–Rao product of the first N−1 factors, then one GEMM).
void cpReconstruct(const std::vector<const double*>& F, const Shape& shape, std::size_t r, const double* weights,
                   double* out);

}  // namespace nsa
