// The calibration-free NSA-Flow energy that the certified solvers (certified.hpp) minimise:
//   E_w(Y) = (1 − w)·F(Y) + w·O(Y) [+ λ·P(Y) in 'signed' mode],   Y ≥ 0 (or unconstrained),
// every term scale-free, 0 at its ideal and 1 at the natural "nothing" point, so that w trades terms
// that live on the same [0, 1] scale without any calibration. O is one of the orthogonality
// functionals of orthogonality.hpp (value and ∇O = V·M from the k×k Gram only).
//
// Fidelity F by mode (‖·‖ Frobenius, ⟨·,·⟩ the trace inner product):
//   target    F = ‖Y − X0‖²/‖X0‖²                         ∇F = 2(Y − X0)/‖X0‖²
//             (X0 p×k; F = 0 at Y = X0, 1 at Y = 0).
//   data      V (p×k) fitted to data X (n×p): F = ‖X − X·V·Vᵀ‖²/‖X‖² = (tr S − 2 tr A + ⟨A, B⟩)/tr S,
//             S = XᵀX, A = VᵀSV, B = VᵀV;              ∇F = (−4·SV + 2·SV·B + 2·V·A)/tr S
//             (F = 0 when V is an orthonormal basis of X's row space (rank X ≤ k), 1 at V = 0).
//   signed    the variable is Z = [V⁺ V⁻] (p×2k, Z ≥ 0) and V = V⁺ − V⁻; F as in 'data' on V
//             (∇_{V⁺}F = ∇_V F, ∇_{V⁻}F = −∇_V F) and O on the 2k lobes Z (∇O = Z·M from ZᵀZ), plus
//             λ·P with the lobe-overlap penalty
//             P = 2⟨V⁺, V⁻⟩/(‖V⁺‖² + ‖V⁻‖²) ∈ [0, 1]   (0 iff the lobes have disjoint supports),
//             ∇_{V⁺}P = 2(V⁻ − P·V⁺)/N, ∇_{V⁻}P = 2(V⁺ − P·V⁻)/N, N = ‖V⁺‖² + ‖V⁻‖².
//   anchored  sign-blind fidelity to an anchor A (p×m):
//             subspace  F = ‖Y − QQᵀY‖²/‖Y‖² with Q an orthonormal basis of span(A) (the share of Y's
//                       energy outside the anchor subspace): with D = Y − QQᵀY,
//                       ∇F = 2(D − F·Y)/‖Y‖²   (F = 0 iff span Y ⊆ span A; F := 1, ∇F := 0 at Y = 0).
//             target    (m = k) F = mean_j (1 − cos²(y_j, a_j)), c_j = y_jᵀa_j, n_j = ‖y_j‖²:
//                       ∇_{y_j}F = −2c_j/(k·n_j‖a_j‖²)·(a_j − (c_j/n_j)·y_j)
//                       (a zero column y_j counts 1 − 0 = 1 and gets no gradient).
// Entry weights ω ≥ 0 of the fidelity (CertifiedData::W; 0 = missing, the entry never enters):
//   target    F = Σ ω(Y − X0)²/Σ ω·X0²                   ∇F = 2ω∘(Y − X0)/Σ ω·X0²
//   data      F = Σ ω(X − T·Vᵀ)²/Σ ω·X²  with the scores T = D·(ω∘X)·V, D = diag(p/Σⱼ ωᵢⱼ) (a row's
//             ω-weighted projection rescaled by its mean weight; a row without weight scores 0).
//             With R = ω∘(X − T·Vᵀ):   ∇F = −2·((ω∘X)ᵀ·D·R·V + Rᵀ·T)/Σ ω·X².
//             At ω ≡ 1, D = I and T = XV: the unweighted F and ∇F above. The entries of X where ω = 0
//             enter neither T nor the sum, so their values (NaN included) cannot change F.
//   signed    as 'data' on V = V⁺ − V⁻.   ('anchored' has no data term and takes no weights.)
// Without W (every weight 1) the unweighted code runs unchanged.
// Orthogonality: O(Y) from the Gram YᵀY, ∇O = Y·M (orthogonality.hpp) — in 'signed' mode Y is the
// 2k lobes: O on V alone is 0 for PCA's loadings, which also minimise F and have disjoint lobes, so w
// could not act there; orthogonal non-negative lobes must have disjoint supports, so w trades fidelity
// for a sparse contrast basis whose components do not share rows.
//
// All workspaces are sized once, when the CertifiedEnergy is built; evaluate() allocates nothing.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

#include "certified.hpp"
#include "orthogonality.hpp"
#include "thread_team.hpp"

namespace nsa {

enum class CertifiedMode { Target, Data, Signed, Anchored };
enum class AnchorKind { Subspace, Target };

struct CertifiedEnergyOptions {
  CertifiedMode mode = CertifiedMode::Target;
  double w = 0.5;
  OrthogonalityFunctional orthogonality = OrthogonalityFunctional::Gram;
  bool nonnegative = true;
  double overlapPenalty = 0.1;  // λ of 'signed'
  AnchorKind anchor = AnchorKind::Subspace;
};

// The terms of the last evaluation: energy = (1 − w)·fidelity + w·orthogonality + λ·overlap.
struct CertifiedTerms {
  double energy = 0, fidelity = 0, orthogonality = 0, overlap = 0;
};

// The problem's data. Pointers are borrowed: they must outlive the CertifiedEnergy.
struct CertifiedData {
  std::size_t p = 0;   // rows of the variable
  std::size_t k = 0;   // columns of V (the variable has 2k in 'signed')
  const double* X0 = nullptr;  // 'target': p×k target; 'anchored': p×m anchor
  std::size_t m = 0;           // anchor columns
  const double* X = nullptr;   // 'data' | 'signed': n×p data, rows = observations
  std::size_t n = 0;
  // Entry weights of the fidelity ('target': p×k like X0; 'data' | 'signed': n×p like X), finite and ≥ 0;
  // null: every weight 1. Entries of X0/X where the weight is 0 are never read as numbers (NaN allowed).
  const double* W = nullptr;
};

class CertifiedEnergy {
 public:
  // Validates shapes and the degenerate inputs the terms cannot be defined for (‖X0‖ = 0, ‖X‖ = 0,
  // a zero anchor column in 'target' anchoring) with a RangeError (nsa::Error), then sizes every
  // workspace. 'anchored'/'subspace' computes Q here (SVD of A, rank by the LAPACK tolerance).
  CertifiedEnergy(const CertifiedEnergyOptions& options, const CertifiedData& data);

  // Number of coordinates of the variable (p·k, or p·2k in 'signed').
  std::size_t size() const { return size_; }
  std::size_t rows() const { return data_.p; }
  std::size_t cols() const { return varCols_; }
  bool nonnegative() const { return options_.nonnegative; }
  const CertifiedEnergyOptions& options() const { return options_; }

  // Value and terms at Y (row-major p×cols()); the gradient into G when G is not null.
  CertifiedTerms evaluate(const double* Y, double* G);
  // Value, terms and gradient at the Y of the last call, evaluate(Y, nullptr), Y unchanged since
  // (BoundObjective::gradientAtValued): 'target' without weights keeps that sweep's Gram and skips
  // its own Gram sweep; every other mode evaluates afresh.
  CertifiedTerms gradientAtValued(const double* Y, double* G);
  // BoundObjective::valueOfFormed for 'target' without weights (the value sweep, each row block
  // formed by `form` just before it is valued); formThreads() = 0 in every other mode.
  int formThreads() const { return valueIsCheap() ? team_->size() : 0; }
  CertifiedTerms valueOfFormed(double* Y, const BoundObjective::FormRows& form);
  // 'target' without weights: the value is one sweep (block Grams and ‖Y − X0‖² together), the value
  // with the gradient two, and both sum in the same order (the same value bit for bit).
  bool valueIsCheap() const { return options_.mode == CertifiedMode::Target && data_.W == nullptr; }

 private:
  // F and O of 'data'/'signed' at V (p×k); gradient of (1 − w)F + wO into GV when not null.
  void dataTerms(const double* V, double* GV, CertifiedTerms& t, bool withOrthogonality = true);
  void orthogonalityTerm(const double* V, double* GV, CertifiedTerms& t, double gradientBeta);
  double squaredNormOnTeam(const double* x);
  // 'data'/'signed' with weights: F (and the gradient of (1 − w)F into GV, without O).
  void weightedDataFidelity(const double* V, double* GV, CertifiedTerms& t);
  // 'target' without weights, the tall-skinny case: F, O and the gradient in two sweeps over p×k
  // (the Gram YᵀY, then F and ∇E together), on the thread team.
  // E = (1 − w)F + wO (+ the overlap penalty in 'signed') from the terms.
  double total(const CertifiedTerms& t) const;
  // gramKnown: B_ is already YᵀY (summed by the value sweep at this Y, the order of the Gram sweep).
  // form (value only): writes each row block of Y just before the sweep values it (valueOfFormed).
  void targetTerms(const double* Y, double* G, CertifiedTerms& t, bool gramKnown = false,
                   const BoundObjective::FormRows* form = nullptr);

  CertifiedEnergyOptions options_;
  CertifiedData data_;
  std::size_t varCols_ = 0, size_ = 0;
  double x0Squared_ = 0;  // ‖X0‖² ('target')
  double traceS_ = 0;     // tr XᵀX ('data', 'signed'); Σ ω·X² with weights
  double weightedX0Squared_ = 0;  // Σ ω·X0² ('target' with weights)
  std::vector<double> Xw_, rowScale_, Rw_, U_;  // ω∘X (0 where ω = 0), D, R and D·R·V (weighted 'data'/'signed')
  bool formS_ = false;    // SV as S·V with S = XᵀX formed once (cheaper by flop count), else Xᵀ(X·V)
  std::vector<double> S_;       // p×p when formS_
  std::vector<double> Q_;       // p×r orthonormal basis of span(anchor)
  std::size_t rank_ = 0;
  std::vector<double> anchorSquared_;  // ‖a_j‖² ('anchored'/'target')
  std::vector<double> columnSums_;     // y_jᵀa_j and ‖y_j‖² ('anchored'/'target')
  // workspaces
  std::vector<double> V_, GV_, T_, SV_, R_;
  std::vector<double> B_, A_, M_, K1_, K2_;
  std::vector<double> lobeGram_, lobeM_;  // 2k×2k ('signed': O on the lobes)
  // 'target' without weights: the row team (thread_team.hpp), its row-block size, per-thread partial
  // Grams and sums of squares.
  std::unique_ptr<RowTeam> team_;
  std::size_t blockRows_ = 0;
  std::vector<double> partS_, partF_;
  const double* valued_ = nullptr;  // the Y of the last value-only 'target' sweep (B_ is its Gram)
};

// The energy as the certified solvers' objective; remembers the terms of its last evaluation.
class EnergyObjective final : public BoundObjective {
 public:
  explicit EnergyObjective(CertifiedEnergy& energy) : energy_(energy) {}
  std::size_t size() const override { return energy_.size(); }
  bool nonnegative() const override { return energy_.nonnegative(); }
  double evaluate(const double* x, double* g) override {
    last_ = energy_.evaluate(x, g);
    return last_.energy;
  }
  bool valueIsCheap() const override { return energy_.valueIsCheap(); }
  double gradientAtValued(const double* x, double* g) override {
    last_ = energy_.gradientAtValued(x, g);
    return last_.energy;
  }
  int formThreads() const override { return energy_.formThreads(); }
  double valueOfFormed(double* x, const FormRows& form) override {
    last_ = energy_.valueOfFormed(x, form);
    return last_.energy;
  }
  void terms(double* fidelity, double* orthogonality) const override {
    *fidelity = last_.fidelity;
    *orthogonality = last_.orthogonality;
  }
  const CertifiedTerms& last() const { return last_; }

 private:
  CertifiedEnergy& energy_;
  CertifiedTerms last_;
};

}  // namespace nsa
