// The device side of the CUDA addon (device.cu), as plain C++ for the binding (binding.cpp): no CUDA
// header is needed to call it, so the binding compiles with the host compiler alone.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace nsa::cuda {

// A failure of the device path. `outOfMemory`: an allocation of `bytes` failed (`freeBytes` were
// free); otherwise a CUDA, cuBLAS or cuSOLVER call failed and the message names it.
struct DeviceError : std::runtime_error {
  bool outOfMemory = false;
  double bytes = 0;
  double freeBytes = 0;
  explicit DeviceError(const std::string& message) : std::runtime_error(message) {}
};

struct Probe {
  bool usable = false;
  std::string reason;  // why not usable
  std::string deviceName;
  double memoryBytes = 0;
  bool hasDevice = false;  // deviceName/memoryBytes are set
};

// Asks the CUDA runtime for device 0 and loads cuBLAS and cuSOLVER (dlopen: each of `libraryDirs`
// first, then the loader's own search path). Never throws; the first call decides for the process.
Probe probe(const std::vector<std::string>& libraryDirs);

struct MemoryInfo {
  double freeBytes = 0;
  double totalBytes = 0;
};
MemoryInfo memoryInfo();

enum class GramOutcome { Done, Unchanged, IllConditioned };

// The Gram polar retraction of the row-major p×k Y into `out` (p·k doubles): YᵀY on the device
// (DSYRK), its eigendecomposition (cuSOLVER DSYEVD), M = (w·VΛ^{-1/2}Vᵀ + (1 − w)I)·‖Y‖/‖Y·M0‖ and
// out = Y·M, as the CPU's gramPolarMatrix. IllConditioned: λmax > conditionLimit·λmin (the caller
// takes the SVD path); Unchanged: ‖Y‖ tiny or not finite, or M not finite (out is not written).
// Requires probe() to have reported usable.
GramOutcome polarGram(const double* Y, std::size_t p, std::size_t k, double w, double conditionLimit, double* out);

// `iterations` plain Frobenius multiplicative updates of the row-major W (n×r) and H (r×m) for the
// row-major A (n×m), in the CPU's order (nmf.cpp: W first, then H with the new W), on the device; W and
// H are updated in place. Returns the device time of the iterations in ms (copies excluded). The
// building block of the device NMF solve still to come (docs/cuda.md): bench/gpu-check uses it for
// parity with nmfSync and the per-iteration time. Requires probe() to have reported usable.
double nmfMuIterations(const double* A, std::size_t n, std::size_t m, std::size_t r, double eps, int iterations,
                       double* W, double* H);

// The plain NMF solve by Frobenius multiplicative updates on dense A, on the device, as nmf.cpp's loop
// without weights, penalties or a certificate stop: every `lossEvery` iterations the loss of the
// current (W, H) is recorded (expanded from the update's products, the direct residual where that
// cancels) and the tolerance rule applied. W and H (the starting factors) are updated in place. The
// final loss and the certificate are the caller's (lib/, through the CPU addon at the final W, H).
struct NmfMuRun {
  std::vector<double> iteration, timeMs, loss;
  int iterations = 0;
  bool plateau = false;
};
NmfMuRun nmfMuSolve(const double* A, std::size_t n, std::size_t m, std::size_t r, double eps, int maxIterations,
                    int lossEvery, double tolerance, double* W, double* H);

}  // namespace nsa::cuda
