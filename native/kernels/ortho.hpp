// Orthogonality measures, retractions toward the Stiefel manifold, inverse square roots,
// Procrustes, thin QR/SVD and non-negativity maps (SPEC.md §1–3). All matrices row-major.
#pragma once
#include <cstddef>

#include "linalg.hpp"
#include "monitor.hpp"
#include "retraction_core.hpp"

namespace nsa {

// ---- orthogonality measures -------------------------------------------------------------------
// The invariant defect Σ_{i≠j} (YᵀY)_ij² / ‖Y‖⁴ (retraction_core.hpp's defectOfGram on YᵀY).
double defect(const double* Y, std::size_t p, std::size_t k, Workspace& ws);
// Writes ∇defect(Y)·scale into G (p×k); returns defect(Y). `nFloor` is the floor of ‖Y‖⁴
// (kDefectDenominatorFloor for one matrix, kBatchDefectDenominatorFloor per element of a batch).
double defectGradient(const double* Y, std::size_t p, std::size_t k, double* G, double scale,
                      double nFloor, Workspace& ws);
double basicOrthogonality(const double* Y, std::size_t p, std::size_t k, Workspace& ws);

// ---- retractions ------------------------------------------------------------------------------
// RetractionType, RetractionOptions and the forward passes (polarFactor, newtonSchulz, cayleyFactor,
// …) live in retraction_core.hpp, written once for retract() and for the VJP (vjp.hpp).

// R_w(Y) into out (p×k; may not alias Y). Returns false when Y was returned unchanged (w = 0,
// type none, tiny or non-finite norm, failed or non-finite result), mirroring the reference.
bool retract(const double* Y, std::size_t p, std::size_t k, const RetractionOptions& opts, double* out,
             Workspace& ws);
// The batch form: one decision for the whole batch as the reference (any tiny element → unchanged).
bool retractBatch(const double* Y, std::size_t batch, std::size_t p, std::size_t k,
                  const RetractionOptions& opts, double* out, Workspace& ws, Monitor& monitor);

// ---- factorizations -----------------------------------------------------------------------------
// Thin QR (p ≥ k): Q p×k, R k×k upper triangular (may be null). LAPACK signs (no normalization).
void thinQr(const double* Y, std::size_t p, std::size_t k, double* Q, double* R, Workspace& ws);
// Thin SVD Y = U diag(S) Vᵀ with r = min(p, k): U p×r, S r, V k×r. Throws NumericalError on failure.
void thinSvd(const double* Y, std::size_t p, std::size_t k, double* U, double* S, double* V,
             Workspace& ws);
enum class InvSqrtMethod { Eig, NewtonSchulz, Diag, Auto };
void inverseSqrt(const double* A, std::size_t k, InvSqrtMethod method, double eps, int nsIterations,
                 double* out, Workspace& ws);
// argmin over orthogonal Q of ‖AQ − B‖ (A, B n×k): the polar factor of AᵀB.
void procrustes(const double* A, const double* B, std::size_t n, std::size_t k, double* Q,
                Workspace& ws);

// ---- non-negativity ---------------------------------------------------------------------------
enum class Nonnegativity { None, Hard, Softplus };
// out = N(Y): Y, max(Y, 0) (−0 to +0, NaN kept) or softplus(Y); out may be Y.
void applyNonnegativity(const double* Y, std::size_t n, Nonnegativity mode, double* out);

}  // namespace nsa
