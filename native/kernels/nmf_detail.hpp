// Internals shared by the NMF kernels (nmf.cpp, nmf_stratified.cpp); not part of the kernel API.
#pragma once
#include <functional>

#include "nmf.hpp"
#include "random.hpp"

namespace nsa::nmf_detail {

// Row-major r×m H → HHᵀ (r×r, both triangles).
void outerGram(const double* H, std::size_t r, std::size_t m, double* out);
// ⟨X, Y⟩ over n entries.
double dot(const double* x, const double* y, std::size_t n);

// A linear operator B (n×m) given by its products with thin row-major blocks:
// times(X m×l, l, out n×l) and transposeTimes(Y n×l, l, out m×l).
struct LinearOperator {
  std::size_t rows, cols;
  std::function<void(const double*, std::size_t, double*)> times;
  std::function<void(const double*, std::size_t, double*)> transposeTimes;
};

// NNDSVD (Boutsidis & Gallopoulos) from a randomized truncated SVD of B (k + 10 columns, four power
// iterations): W (n×k), H (k×m); entries that come out 0 are set to `fill` (MU never revives a 0).
void nndsvd(const LinearOperator& B, std::size_t k, Random& rng, double fill, double* W, double* H);
// The fill: 1 % of the typical factor entry √(mean(A)/r), small enough not to spoil the start.
double nndsvdFill(double mean, std::size_t r);

// Records the loss and decides whether to stop, shared by both solvers' loops.
class LossRecorder {
 public:
  LossRecorder(double tolerance, int lossEvery) : tolerance_(tolerance), every_(lossEvery) {}
  bool due(int iteration) const { return iteration % every_ == 0; }
  // Records the loss after `iteration` iterations; true when the relative change since the
  // previously recorded loss is below the tolerance.
  bool record(int iteration, double loss, LossTrace& trace) const;

 private:
  double tolerance_;
  int every_;
};

void checkFiniteLoss(double loss, int iteration);

}  // namespace nsa::nmf_detail
