// The differentiable map of NSA-Flow's exact-gradient mode, Y(Z) = nonneg(retract_w(Z)), with its
// analytic vector–Jacobian product (SPEC.md §5 step 5). forward() runs the retraction's one forward
// pass (retraction_core.hpp) with a RetractionTape, and backward() works from that tape.
// The polar retractions take the Gram path when ZᵀZ is well conditioned (gramPolarMatrix): with
// S = ZᵀZ = VΛVᵀ, W = VΛ^{-1/2}Vᵀ and M0 = (1−w)I + wW, R = Z·M with M = M0·‖Z‖/‖Z·M0‖; its backward
// pass is likewise K = ZᵀgR, k×k work and GZ = gR·(sM0) + Z·A (see gramBackward()).
// The other paths (and polar through the SVD when ZᵀZ is ill conditioned) go through the factor:
//   polar      Q = U Vᵀ = Z (ZᵀZ)^{-1/2}; with Z = UΣVᵀ, M = UᵀG V and C_ij = (M_ij − M_ji)/(σ_i + σ_j)
//              − M_ij/σ_j, the VJP is G·VΣ⁻¹Vᵀ + Z·VΣ⁻¹CVᵀ. The Sylvester form divides by σ_i + σ_j,
//              never by σ_i − σ_j, so equal singular values (an orthonormal start) are fine.
//   NS         reverse pass through every recorded iterate of X ← aX + X(bA + cA²), A = XᵀX.
//   Cayley     reverse pass through the linear solve (recorded LU reused, transposed) and the thin QR.
//   normalize  per-column x/‖x‖.
// The constructor sizes the tape (reserveTape) and the backward scratch, so iterations allocate
// nothing of size p×k (the SVD fallback sizes its Q and B on first use): a solver keeps one instance
// for its whole run.
#pragma once
#include <cstddef>
#include <vector>

#include "linalg.hpp"
#include "ortho.hpp"
#include "retraction_core.hpp"

namespace nsa {

class DifferentiableRetraction {
 public:
  DifferentiableRetraction(std::size_t p, std::size_t k, const RetractionOptions& retraction,
                           Nonnegativity nonnegativity);

  // Y = nonneg(retract(Z)) (Y may not alias Z). Remembers Z's factorization for backward() and Z
  // itself by address (no copy): Z must stay alive and unchanged until backward().
  void forward(const double* Z, double* Y);
  // GZ = (∂Y/∂Z)ᵀ·GY at the Z of the last forward() (GZ may not alias GY).
  void backward(const double* GY, double* GZ);
  // True when the last forward() returned Z unchanged by the retraction (w = 0, type none, tiny or
  // non-finite norm, failed factorization): the Jacobian of the retraction is then the identity.
  bool passedThrough() const { return identity_; }

  std::size_t rows() const { return p_; }
  std::size_t cols() const { return k_; }

 private:
  GramOutcome gramForward(double* Y);  // the polar retractions through ZᵀZ: R_ = Z·M, Y = nonneg(R_)
  void applyNonneg(const double* R, std::size_t n, double* Y) const;
  void gramBackward(const double* gR, double* GZ);
  bool generalForward();  // R_ through the orthogonal factor; false when Z passes through unchanged
  void generalBackward(const double* gR, double* GZ);
  void backwardFactor(const double* GQ, double* GZ);  // GZ += (∂Q/∂Z)ᵀ GQ
  void polarBackward(const double* GQ, double* GZ);
  void newtonSchulzBackward(const double* GQ, double* GZ);
  void cayleyBackward(const double* GQ, double* GZ);
  void normalizeBackward(const double* GQ, double* GZ);

  std::size_t p_, k_;
  RetractionOptions opts_;
  Nonnegativity nonneg_;
  bool identity_ = true, gram_ = false;
  const double* z_ = nullptr;  // the last forward()'s input
  const double* r_ = nullptr;  // retraction before nonneg: R_, or z_ when passed through
  RetractionTape tape_;        // what the last forward() recorded for backward()
  std::vector<double> R_;      // retraction before nonneg
  // backward scratch
  std::vector<double> gR_, gB_, gQ_;
  std::vector<double> cgV_, cgX_;  // Cayley
  std::vector<double> t1_, t2_, t3_, t4_, big1_, big2_;
  Workspace ws_;
};

}  // namespace nsa
