// NSA-Flow energies: fidelity to a target X0 plus an orthogonality penalty, their weighted total, and
// the exact gradient of the total with respect to Y. All matrices row-major p×k. Two weightings:
//   reference        (SPEC.md §4)  total = (1 − w)·fidEta·F(Y, X0) + w·cOrth·O(Y), F and O as chosen;
//   calibrationFree                total = (1 − w)·‖Y − X0‖²/‖X0‖² + w·O(Y), O one of the functionals of
//                                  orthogonality.hpp. Both terms are 0 at their ideal and 1 at the
//                                  "nothing" point (Y = 0; all columns parallel), so w alone trades them
//                                  and the energy does not change when Y and X0 are scaled together.
//                                  It is the certified solvers' 'target' mode: evaluated by
//                                  CertifiedEnergy (nsa_energy.hpp), the one implementation of its terms.
#pragma once
#include <cstddef>

#include "linalg.hpp"
#include "nsa_energy.hpp"
#include "orthogonality.hpp"

namespace nsa {

enum class FidelityType { Basic, ScaleInvariant, Symmetric };
enum class OrthogonalityType { Basic, ScaleInvariant };
enum class Weighting { Reference, CalibrationFree };

struct EnergyOptions {
  Weighting weighting = Weighting::Reference;
  // reference weighting only
  FidelityType fidelity = FidelityType::ScaleInvariant;
  OrthogonalityType orthogonality = OrthogonalityType::ScaleInvariant;
  double fidEta = 1.0;  // fidelity = fidEta·F
  double cOrth = 1.0;   // orthogonality = cOrth·O
  // calibration-free weighting only
  OrthogonalityFunctional functional = OrthogonalityFunctional::Gram;
  double w = 0.5;  // total = (1 − w)·fidelity + w·orthogonality (both weightings)
};

struct EnergyValue {
  double fidelity = 0;
  double orthogonality = 0;
  double total = 0;
};

// Rows per block when a p×k-by-k×k product is followed by more work on the same rows: ~64 KiB of
// each p×k operand, so that OpenBLAS's beta pass, its kernel and the work after it find the rows in
// L2 instead of memory (worth a third of an iteration at 100000×20).
inline std::size_t rowBlock(std::size_t k) { return k >= 512 ? 16 : 8192 / k; }

// E(Y) against X0. When G is non-null it receives ∂total/∂Y (p×k). The reference weighting uses
// Workspace slots 0 (the ortho kernels' Gram slot) and 1, and nothing else; the calibration-free one
// uses CertifiedEnergy's own two k×k matrices. The calibration-free weighting needs ‖X0‖ > 0
// (its fidelity divides by ‖X0‖²): callers refuse a zero target before; here it throws a RangeError.
EnergyValue energy(const double* Y, const double* X0, std::size_t p, std::size_t k,
                   const EnergyOptions& opts, double* G, Workspace& ws);

// The calibration-free energy against one target X0, built once (its ‖X0‖², its check that X0 ≠ 0 and
// its workspaces) for a loop that evaluates it at many Y: energy() builds one per call.
class CalibrationFreeEnergy {
 public:
  CalibrationFreeEnergy(const double* X0, std::size_t p, std::size_t k, const EnergyOptions& opts);
  EnergyValue operator()(const double* Y, double* G);

 private:
  CertifiedEnergy target_;
};

// The batch form over B matrices, with the reference's quirks: `basic` fidelity is summed over the
// batch, the two ratio fidelities are averaged; orthogonality is the batch mean. Calibration-free:
// both terms are batch means (each element's energy is scale-free on its own).
EnergyValue energyBatch(const double* Y, const double* X0, std::size_t B, std::size_t p,
                        std::size_t k, const EnergyOptions& opts, Workspace& ws);

}  // namespace nsa
