// The one implementation of every retraction toward the Stiefel manifold (SPEC.md §2) and of the
// invariant orthogonality defect (SPEC.md §1), with the thresholds they use.
//
// Each forward pass is written once here. It takes an optional RetractionTape: when given, the pass
// records the intermediates its vector–Jacobian product needs (the Gram's eigenvectors and
// eigenvalues, every Newton–Schulz iterate, Cayley's QR and LU factors, …), so vjp.cpp runs the
// forward pass through this file and its backward pass from the tape. ortho.cpp's retract() and the
// explicit flow call the same functions without a tape.
//
// All matrices are row-major. The Workspace slots used here are 8–15 (ortho.cpp's own helpers use
// 0–7, the solvers 16 and up), so a caller's buffers in the other slots survive these calls.
#pragma once
#include <cstddef>
#include <vector>

#include "linalg.hpp"

namespace nsa {

// ---- thresholds ----------------------------------------------------------------------------------

// ‖Y‖ (Frobenius) below which every retraction returns Y unchanged, as the reference does: the
// direction of a numerically zero matrix is rounding noise, and the norm restoration would blow it up.
constexpr double kRetractionNormFloor = 1e-12;
// Floor of ‖B‖ in the norm restoration R = B·‖Y‖/max(‖B‖, ·) of a blend B (the reference's value):
// B = 0 only for a soft blend that cancels exactly, which must not divide by zero.
constexpr double kBlendNormFloor = 1e-12;
// ‖Y‖² at or below which the defect is 0 (the reference's early return): the defect is scale
// invariant, and a numerically zero Y has no meaningful column directions.
constexpr double kDefectSquaredNormFloor = 1e-12;
// Floors of the defect's denominator ‖Y‖⁴ = (tr S)²: 1e-24 for one matrix (the square of the norm
// floor above, so it never binds once ‖Y‖² > 1e-12) and 1e-12 per element of a batch — the
// reference's values; ∇defect drops the denominator's derivative where the floor binds.
constexpr double kDefectDenominatorFloor = 1e-24;
constexpr double kBatchDefectDenominatorFloor = 1e-12;
// λmax/λmin of YᵀY up to which PolarMethod::Auto takes the Gram path: its rounding error grows like
// 1e-16·λmax/λmin (eigenvalues of the squared matrix), so 1e4 keeps the polar factor good to ~1e-12,
// about what the SVD gives; beyond, the SVD path is used.
constexpr double kGramConditionLimit = 1e4;
// The limit of a forced PolarMethod::Gram: it accepts any Gram matrix that is numerically positive
// definite (λmax/λmin below 1/ε ≈ 4.5e15 of double precision), refusing only a numerically singular
// one, which has no inverse square root.
constexpr double kForcedGramConditionLimit = 1e15;
// Default floor of ‖Y‖ in Newton–Schulz's starting scale X₀ = Y/max(‖Y‖, eps) and of each column norm
// in normalize (the reference's eps_rf): a zero column stays zero instead of dividing by zero.
constexpr double kRetractionEps = 1e-6;
// inverseSqrt's Auto method uses the eigendecomposition up to this k and the coupled Newton–Schulz
// iteration (GEMMs only) above it, as the reference (SPEC.md §3).
constexpr std::size_t kInverseSqrtEigMaxCols = 128;
// torch's softplus (β = 1) is the identity above this input: log1p(eˣ) − x = log1p(e⁻ˣ) < 2.1e-9
// there, and the identity never overflows (eˣ does above x ≈ 709).
constexpr double kSoftplusLinearThreshold = 20.0;
// The quintic Newton–Schulz step X ← aX + X(bA + cA²), A = XᵀX, with the reference's (Muon's)
// coefficients: they trade exact convergence of the singular values to 1 for a faster pull toward it.
constexpr double kQuinticNsA = 3.4445, kQuinticNsB = -4.7750, kQuinticNsC = 2.0315;

// ---- the orthogonality defect --------------------------------------------------------------------

// Σ_{i≠j} S_ij², summed directly. The reference's ‖S‖² − Σ S_ii² cancels catastrophically near
// orthogonality (with Y = Q + 1e-9·noise it loses every digit and rounds to 0 or below), this never does.
double offDiagonalEnergy(const double* S, std::size_t k);
// defect = Σ_{i≠j} S_ij² / max(n², kDefectDenominatorFloor) for the Gram S = YᵀY (k×k, both
// triangles) and n = ‖Y‖²; 0 when n ≤ kDefectSquaredNormFloor. defect(Y) passes n = Σ Y_ij²,
// defectFromGram(S) passes n = tr S (the same number up to rounding).
double defectOfGram(const double* S, std::size_t k, double squaredNormY);
double defectFromGram(const double* S, std::size_t k);

// ---- retraction types and options --------------------------------------------------------------

enum class RetractionType {
  None,
  Polar,
  SoftPolar,
  NewtonSchulz,
  SoftNewtonSchulz,
  QuinticNewtonSchulz,
  SoftQuinticNewtonSchulz,
  Cayley,
  SoftCayley,
  Normalize,
};
enum class PolarMethod { Auto, Svd, Gram };

struct RetractionOptions {
  RetractionType type = RetractionType::SoftPolar;
  double w = 1.0;
  int nsIterations = 5;
  double eps = kRetractionEps;
  PolarMethod polarMethod = PolarMethod::Auto;
  double gramConditionLimit = kGramConditionLimit;  // the Auto method's limit (see above)
};

bool isSoft(RetractionType t);
bool isPolar(RetractionType t);
// The condition limit of the Gram path under these options (forced Gram: kForcedGramConditionLimit).
double gramConditionLimitOf(const RetractionOptions& o);
// Whether the polar retraction tries the Gram path first (polar type, method not SVD, p ≥ k).
bool triesGramPath(const RetractionOptions& o, std::size_t p, std::size_t k);

// ---- the tape ----------------------------------------------------------------------------------

// What a forward pass records for its vector–Jacobian product. Buffers are sized on first use and then
// reused, so a solver that keeps one tape for its run does not allocate per iteration.
struct RetractionTape {
  // ‖Y‖ and ‖B‖ of the norm restoration R = B·‖Y‖/max(‖B‖, kBlendNormFloor).
  double normY = 0, normB = 0;
  // Polar (both paths): V (k×k row-major, column c = right singular vector c of Y = eigenvector c of
  // YᵀY) and σ (σ_c = √λ_c).
  std::vector<double> V, sigma;
  // Polar through the Gram: S = YᵀY (written by the caller), M0 = (1−w)I + w·S^{-1/2}, S·M0 and
  // M = M0·‖Y‖/‖B‖ (R = Y·M).
  std::vector<double> S, M0, SM0, M;
  // The other paths: the orthogonal factor Q and the blend B = (1−w)Y + wQ (p×k each).
  std::vector<double> Q, B;
  // Newton–Schulz: the iterates X_0..X_T (p×k each), A_t = X_tᵀX_t (k×k each) and the start scale
  // max(‖Y‖, eps).
  std::vector<double> nsX, nsA;
  double nsNorm = 0;
  // Cayley: the thin QR Y = X·R, U = [Y, X], V = [X, −Y] (p×2k), the LU factors and pivots of
  // I − ½VᵀU, and the solution W of (I − ½VᵀU)·W = VᵀX.
  std::vector<double> qrX, qrR, cayU, cayV, cayLU, cayW;
  std::vector<lapack_int> cayPivots;
  // normalize: the column norms (before the eps floor).
  std::vector<double> colNorm;
};

// Sizes the buffers that the forward pass of o.type records for a p×k input (the polar types: those
// of the Gram path; the SVD fallback's Q and B are sized on first use), so that a caller that reserves
// once does not allocate them during its iterations.
void reserveTape(RetractionTape& tape, const RetractionOptions& o, std::size_t p, std::size_t k);

// ---- forward passes ------------------------------------------------------------------------------

enum class GramOutcome { Done, Unchanged, IllConditioned };

// The polar retractions through S = YᵀY (k×k, both triangles filled) with no pass over p×k data: with
// S = VΛVᵀ and W = VΛ^{-1/2}Vᵀ the blend (1−w)Y + wYW is Y·M0 for M0 = (1−w)I + wW, ‖Y‖² = tr S and
// ‖Y·M0‖² = tr(M0ᵀSM0), so the norm restoration folds into M = M0·‖Y‖/‖Y·M0‖ and R_w(Y) = Y·M (the
// caller forms that product, fused with whatever else it does per row block). `w` is o.w for the soft
// type and 1 for the hard one. Unchanged: ‖Y‖ below the floor or non-finite, or M non-finite (return Y
// as is). IllConditioned: λmax/λmin above the limit, λmin ≤ 0 or a failed eigensolver (use the SVD).
GramOutcome gramPolarMatrix(const double* S, std::size_t k, const RetractionOptions& o, double* M,
                            Workspace& ws, RetractionTape* tape = nullptr);

// The unblended orthogonal factor of each retraction type (no norm restoration).
// Polar: Gram path unless `method` is Svd, p < k or the Gram is refused under `conditionLimit`
// (a forced Gram still refuses a singular S). false when the SVD fails.
bool polarFactor(const double* Y, std::size_t p, std::size_t k, double* Q, Workspace& ws, PolarMethod method,
                 double gramConditionLimit, bool* usedGram = nullptr, RetractionTape* tape = nullptr);
// X_T of X ← ½X(3I − XᵀX) (cubic) or X ← aX + X(bA + cA²) (quintic) from X₀ = Y/max(‖Y‖, eps).
void newtonSchulz(const double* Y, std::size_t p, std::size_t k, int iterations, double eps, bool quintic,
                  double* X, Workspace& ws, RetractionTape* tape = nullptr);
// The Cayley transform toward the thin QR factor X of Y: X + U·W for U = [Y, X], V = [X, −Y],
// (I − ½VᵀU)·W = VᵀX. false when the thin QR or the solve fails.
bool cayleyFactor(const double* Y, std::size_t p, std::size_t k, double* out, Workspace& ws,
                  RetractionTape* tape = nullptr);
// Each column divided by max(its norm, eps).
void normalizeColumns(const double* Y, std::size_t p, std::size_t k, double eps, double* out,
                      RetractionTape* tape = nullptr);

// R_w(Y) through the orthogonal factor: Q = factor(Y), B = (1−w)Y + wQ (soft) or Q, R = B·‖Y‖/‖B‖,
// into out (may not alias Y). `normY` = ‖Y‖, already checked against the floor by the caller. The
// polar factor follows o.polarMethod (see polarFactor). false on a failed factorization or non-finite
// R (then out is unspecified).
bool factorRetraction(const double* Y, std::size_t p, std::size_t k, double normY, const RetractionOptions& o,
                      double* out, Workspace& ws, RetractionTape* tape = nullptr);

// ---- shared LAPACK drivers -----------------------------------------------------------------------

// Y = U·diag(σ)·Vᵀ (p×k row-major, r = min(p, k)) with LAPACK's column-major view A = Yᵀ (k×p) =
// Ua·diag(σ)·VTa: Ua (k×r column-major) holds V, VTa (r×p column-major) has the memory layout of the
// row-major p×r U. Divide and conquer, then the QR-iteration driver once if that fails. Returns info.
lapack_int svdOfRowMajor(const double* Y, std::size_t p, std::size_t k, double* sigma, double* Ua, double* VTa,
                         Workspace& ws);

}  // namespace nsa
