// The device solves of the CUDA addon. The CUDA runtime is linked statically (libcudart_static.a), so
// the addon loads on a machine with no CUDA toolkit; cuBLAS and cuSOLVER are never linked: the few
// entry points used are declared here and resolved with dlopen/dlsym at the first probe, from
// NSA_FLOW_CUDA_LIBS's directories (e.g. the nvidia-* Python wheels' lib folders) or the loader's
// path. Their ABI is stable across CUDA 12/13 for these functions (handles are opaque pointers,
// enums plain ints with the documented values below).
//
// Layout: the JS side holds row-major p×k arrays; cuBLAS is column-major, where the same buffer is the
// k×p matrix X = Yᵀ (leading dimension k). So YᵀY = X·Xᵀ (DSYRK, no transpose) and Y·M = (Mᵀ·X)ᵀ.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "device.hpp"
#include "kernels.hpp"

namespace nsa::cuda {

namespace {

// ---- cuBLAS / cuSOLVER, resolved at run time ----------------------------------------------------------

using cublasHandle = void*;
using cusolverHandle = void*;
constexpr int kOpN = 0, kOpT = 1;  // cublasOperation_t
constexpr int kFillLower = 0;      // cublasFillMode_t
constexpr int kEigVectors = 1;     // cusolverEigMode_t CUSOLVER_EIG_MODE_VECTOR

struct Api {
  int (*cublasCreate)(cublasHandle*) = nullptr;
  int (*cublasDgemm)(cublasHandle, int, int, int, int, int, const double*, const double*, int, const double*, int,
                     const double*, double*, int) = nullptr;
  int (*cublasDsyrk)(cublasHandle, int, int, int, int, const double*, const double*, int, const double*, double*,
                     int) = nullptr;
  int (*cusolverCreate)(cusolverHandle*) = nullptr;
  int (*syevdBufferSize)(cusolverHandle, int, int, int, const double*, int, const double*, int*) = nullptr;
  int (*syevd)(cusolverHandle, int, int, int, double*, int, double*, double*, int, int*) = nullptr;
  cublasHandle blas = nullptr;
  cusolverHandle solver = nullptr;
};

Api api;
Probe probed;
std::once_flag probeOnce;

// dlopen of the first name found in the directories, then through the loader's own search.
void* openLibrary(const std::vector<std::string>& dirs, const std::vector<std::string>& names, std::string& tried) {
  for (const auto& dir : dirs)
    for (const auto& name : names) {
      const std::string path = dir + "/" + name;
      if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) return h;
      const char* e = dlerror();
      tried += std::string("; ") + (e ? e : path);
    }
  for (const auto& name : names) {
    if (void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL)) return h;
    const char* e = dlerror();
    tried += std::string("; ") + (e ? e : name);
  }
  return nullptr;
}

template <class F>
bool symbol(void* lib, const char* name, F& out, std::string& missing) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  if (!out) missing += std::string(missing.empty() ? "" : ", ") + name;
  return out != nullptr;
}

std::string cudaText(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }

void doProbe(const std::vector<std::string>& dirs) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    // The runtime says "insufficient driver" also when there is no driver at all: tell the two apart.
    void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (driver) dlclose(driver);
    probed.reason = driver ? "the CUDA runtime found no usable device (" + cudaText(e) + ")"
                           : "no NVIDIA driver is installed (libcuda.so.1 was not found; " + cudaText(e) + ")";
    return;
  }
  if (count < 1) {
    probed.reason = "the CUDA runtime reports no device";
    return;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess || cudaSetDevice(0) != cudaSuccess) {
    probed.reason = "device 0 did not answer";
    return;
  }
  probed.hasDevice = true;
  probed.deviceName = prop.name;
  probed.memoryBytes = static_cast<double>(prop.totalGlobalMem);
  std::string tried;
  void* blas = openLibrary(dirs, {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}, tried);
  if (!blas) {
    probed.reason = "cuBLAS was not found (set NSA_FLOW_CUDA_LIBS to the folder of libcublas.so" + tried + ")";
    return;
  }
  void* solver = openLibrary(dirs, {"libcusolver.so.12", "libcusolver.so.11", "libcusolver.so"}, tried);
  if (!solver) {
    probed.reason = "cuSOLVER was not found (set NSA_FLOW_CUDA_LIBS to the folder of libcusolver.so" + tried + ")";
    return;
  }
  std::string missing;
  symbol(blas, "cublasCreate_v2", api.cublasCreate, missing);
  symbol(blas, "cublasDgemm_v2", api.cublasDgemm, missing);
  symbol(blas, "cublasDsyrk_v2", api.cublasDsyrk, missing);
  symbol(solver, "cusolverDnCreate", api.cusolverCreate, missing);
  symbol(solver, "cusolverDnDsyevd_bufferSize", api.syevdBufferSize, missing);
  symbol(solver, "cusolverDnDsyevd", api.syevd, missing);
  if (!missing.empty()) {
    probed.reason = "cuBLAS/cuSOLVER lack " + missing;
    return;
  }
  if (api.cublasCreate(&api.blas) != 0) {
    probed.reason = "cublasCreate failed";
    return;
  }
  if (api.cusolverCreate(&api.solver) != 0) {
    probed.reason = "cusolverDnCreate failed";
    return;
  }
  probed.usable = true;
}

// ---- errors ------------------------------------------------------------------------------------

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw DeviceError(std::string("CUDA error in ") + what + ": " + cudaText(e));
}

void checkLibrary(int status, const char* what) {
  if (status != 0) throw DeviceError(std::string(what) + " failed with status " + std::to_string(status));
}

// A device array; an allocation failure is an out-of-memory DeviceError naming the bytes.
class Buffer {
 public:
  explicit Buffer(std::size_t n) : bytes_(n * sizeof(double)) {
    const cudaError_t e = cudaMalloc(&ptr_, bytes_ == 0 ? sizeof(double) : bytes_);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the sticky-free error
      DeviceError err("cudaMalloc of " + std::to_string(bytes_) + " bytes failed: out of device memory");
      err.outOfMemory = true;
      err.bytes = static_cast<double>(bytes_);
      err.freeBytes = memoryInfo().freeBytes;
      throw err;
    }
    check(e, "cudaMalloc");
  }
  ~Buffer() { cudaFree(ptr_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  double* get() const { return static_cast<double*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_;
};

// ---- kernels (bodies in kernels.hpp) --------------------------------------------------------------

constexpr int kThreads = 256;
constexpr int kReduceBlocks = 1024;

int blocksFor(std::size_t n) {
  const std::size_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 ? (b == 0 ? 1 : b) : 65535);
}

enum class Sum { SquaredNorm, Dot, SquaredDistance, Trace, NonFinite };

// Block partial sums of a grid-stride reduction: thread t sums its strided set (kernels.hpp), the
// block adds its threads' partials in shared memory.
__global__ void reducePartials(Sum kind, const double* x, const double* y, std::size_t n, double* partials) {
  __shared__ double shared[kThreads];
  const std::size_t first = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  double s = 0;
  switch (kind) {
    case Sum::SquaredNorm: s = squaredNormPartial(x, n, first, stride); break;
    case Sum::Dot: s = dotPartial(x, y, n, first, stride); break;
    case Sum::SquaredDistance: s = squaredDistancePartial(x, y, n, first, stride); break;
    case Sum::Trace: s = tracePartial(x, n, first, stride); break;
    case Sum::NonFinite: s = nonFinitePartial(x, n, first, stride); break;
  }
  shared[threadIdx.x] = s;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = shared[0];
}

__global__ void sumPartials(const double* partials, int count, double* out) {
  __shared__ double shared[kThreads];
  double s = 0;
  for (int i = static_cast<int>(threadIdx.x); i < count; i += kThreads) s += partials[i];
  shared[threadIdx.x] = s;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = shared[0];
}

// One scalar to the host: the only transfer a reduction makes.
double reduce(Sum kind, const double* x, const double* y, std::size_t n, Buffer& scratch) {
  const int blocks = std::min(kReduceBlocks, blocksFor(n));
  reducePartials<<<blocks, kThreads>>>(kind, x, y, n, scratch.get());
  check(cudaGetLastError(), "the reduction kernel");
  sumPartials<<<1, kThreads>>>(scratch.get(), blocks, scratch.get() + kReduceBlocks);
  check(cudaGetLastError(), "the reduction kernel");
  double out = 0;
  check(cudaMemcpy(&out, scratch.get() + kReduceBlocks, sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy");
  return out;
}

// Elementwise kernels loop over a grid stride, so any length is covered by blocksFor's capped grid.
#define NSA_FOR_EACH(i, n)                                                                          \
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)

__global__ void symmetrize(double* S, std::size_t k) {
  NSA_FOR_EACH(t, k * k) symmetrizeEntry(S, k, t % k, t / k);
}

__global__ void inverseSqrtColumns(const double* V, const double* lambda, std::size_t k, double* Bm) {
  NSA_FOR_EACH(t, k * k) Bm[t] = inverseSqrtColumn(V[t], lambda[t / k]);
}

__global__ void addBlendDiagonal(double* M, std::size_t k, double w) {
  NSA_FOR_EACH(i, k) M[i + i * k] = blendDiagonal(M[i + i * k], w);
}

__global__ void scaleEntries(double* x, std::size_t n, double s) {
  NSA_FOR_EACH(i, n) x[i] *= s;
}

__global__ void muUpdates(double* x, const double* num, const double* den, std::size_t n, double eps) {
  NSA_FOR_EACH(i, n) x[i] = muUpdate(x[i], num[i], den[i], eps);
}

int asInt(std::size_t n) {
  if (n > 2147483647u) throw DeviceError("a dimension exceeds cuBLAS's 32-bit int: " + std::to_string(n));
  return static_cast<int>(n);
}

}  // namespace

Probe probe(const std::vector<std::string>& libraryDirs) {
  std::call_once(probeOnce, [&] { doProbe(libraryDirs); });
  return probed;
}

MemoryInfo memoryInfo() {
  std::size_t freeBytes = 0, totalBytes = 0;
  MemoryInfo m;
  if (cudaMemGetInfo(&freeBytes, &totalBytes) == cudaSuccess) {
    m.freeBytes = static_cast<double>(freeBytes);
    m.totalBytes = static_cast<double>(totalBytes);
  }
  return m;
}

GramOutcome polarGram(const double* Y, std::size_t p, std::size_t k, double w, double conditionLimit, double* out) {
  if (!probed.usable) throw DeviceError("the CUDA path is not usable: " + probed.reason);
  const std::size_t n = p * k, kk = k * k;
  const int ik = asInt(k), ip = asInt(p);
  asInt(n);
  Buffer X(n), S(kk), V(kk), lambda(k), M(kk), SM(kk), result(n), scratch(kReduceBlocks + 1);
  Buffer info(1);
  check(cudaMemcpy(X.get(), Y, n * sizeof(double), cudaMemcpyHostToDevice), "cudaMemcpy (upload of Y)");
  const double one = 1.0, zero = 0.0;
  // S = YᵀY = X·Xᵀ (lower triangle), made full for the S·M0 product.
  checkLibrary(api.cublasDsyrk(api.blas, kFillLower, kOpN, ik, ip, &one, X.get(), ik, &zero, S.get(), ik), "cublasDsyrk");
  symmetrize<<<blocksFor(kk), kThreads>>>(S.get(), k);
  check(cudaGetLastError(), "the symmetrize kernel");
  const double normY = std::sqrt(reduce(Sum::Trace, S.get(), nullptr, k, scratch));
  if (!(normY >= kRetractionNormFloor) || !std::isfinite(normY)) return GramOutcome::Unchanged;
  if (reduce(Sum::NonFinite, S.get(), nullptr, kk, scratch) != 0) return GramOutcome::IllConditioned;
  // V Λ Vᵀ = S (eigenvalues ascending), as LAPACK's DSYEVD on the CPU.
  check(cudaMemcpy(V.get(), S.get(), kk * sizeof(double), cudaMemcpyDeviceToDevice), "cudaMemcpy");
  int lwork = 0;
  checkLibrary(api.syevdBufferSize(api.solver, kEigVectors, kFillLower, ik, V.get(), ik, lambda.get(), &lwork),
               "cusolverDnDsyevd_bufferSize");
  Buffer work(static_cast<std::size_t>(lwork > 0 ? lwork : 1));
  checkLibrary(api.syevd(api.solver, kEigVectors, kFillLower, ik, V.get(), ik, lambda.get(), work.get(), lwork,
                         reinterpret_cast<int*>(info.get())),
               "cusolverDnDsyevd");
  int devInfo = 0;
  double lamMin = 0, lamMax = 0;
  check(cudaMemcpy(&devInfo, info.get(), sizeof(int), cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaMemcpy(&lamMin, lambda.get(), sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaMemcpy(&lamMax, lambda.get() + (k - 1), sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy");
  if (devInfo != 0 || !(lamMin > 0) || !(lamMax <= conditionLimit * lamMin)) return GramOutcome::IllConditioned;
  // M0 = w·(VΛ^{-1/2})·Vᵀ + (1 − w)I (column-major; symmetric).
  inverseSqrtColumns<<<blocksFor(kk), kThreads>>>(V.get(), lambda.get(), k, SM.get());
  check(cudaGetLastError(), "the inverse square root kernel");
  checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpT, ik, ik, ik, &w, SM.get(), ik, V.get(), ik, &zero, M.get(), ik),
               "cublasDgemm");
  addBlendDiagonal<<<blocksFor(k), kThreads>>>(M.get(), k, w);
  check(cudaGetLastError(), "the blend kernel");
  // ‖Y·M0‖² = Σ M0 ∘ (S·M0); M = M0·‖Y‖/max(‖Y·M0‖, floor).
  checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpN, ik, ik, ik, &one, S.get(), ik, M.get(), ik, &zero, SM.get(), ik),
               "cublasDgemm");
  const double normB = std::sqrt(reduce(Sum::Dot, M.get(), SM.get(), kk, scratch));
  const double scale = restoreScale(normY, normB);
  scaleEntries<<<blocksFor(kk), kThreads>>>(M.get(), kk, scale);
  check(cudaGetLastError(), "the scale kernel");
  if (reduce(Sum::NonFinite, M.get(), nullptr, kk, scratch) != 0) return GramOutcome::Unchanged;
  // out (row-major p×k) = Y·M with M's buffer read row-major, as the CPU's product reads it: that is
  // the column-major k×p M·X.
  checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpN, ik, ip, ik, &one, M.get(), ik, X.get(), ik, &zero, result.get(), ik),
               "cublasDgemm");
  check(cudaMemcpy(out, result.get(), n * sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy (download)");
  return GramOutcome::Done;
}

double nmfMuIterations(const double* A, std::size_t n, std::size_t m, std::size_t r, double eps, int iterations,
                       double* W, double* H) {
  if (!probed.usable) throw DeviceError("the CUDA path is not usable: " + probed.reason);
  const int in = asInt(n), im = asInt(m), ir = asInt(r);
  asInt(n * m);
  // Row-major buffers read column-major: A is Aᵀ (m×n, ld m), W is Wᵀ (r×n, ld r), H is Hᵀ (m×r, ld m).
  Buffer dA(n * m), dW(n * r), dH(m * r), HHt(r * r), AHt(n * r), WHHt(n * r), WtW(r * r), AtW(m * r), HWtW(m * r);
  check(cudaMemcpy(dA.get(), A, n * m * sizeof(double), cudaMemcpyHostToDevice), "cudaMemcpy (upload of A)");
  check(cudaMemcpy(dW.get(), W, n * r * sizeof(double), cudaMemcpyHostToDevice), "cudaMemcpy (upload of W)");
  check(cudaMemcpy(dH.get(), H, m * r * sizeof(double), cudaMemcpyHostToDevice), "cudaMemcpy (upload of H)");
  const double one = 1.0, zero = 0.0;
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  check(cudaEventRecord(start), "cudaEventRecord");
  for (int it = 0; it < iterations; ++it) {
    // W ← W ∘ AHᵀ / (W·HHᵀ + ε): in Wᵀ's layout, AHᵀ is (Hᵀ)ᵀ·Aᵀ and W·HHᵀ is HHᵀ·Wᵀ.
    checkLibrary(api.cublasDgemm(api.blas, kOpT, kOpN, ir, ir, im, &one, dH.get(), im, dH.get(), im, &zero, HHt.get(), ir), "cublasDgemm");
    checkLibrary(api.cublasDgemm(api.blas, kOpT, kOpN, ir, in, im, &one, dH.get(), im, dA.get(), im, &zero, AHt.get(), ir), "cublasDgemm");
    checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpN, ir, in, ir, &one, HHt.get(), ir, dW.get(), ir, &zero, WHHt.get(), ir), "cublasDgemm");
    muUpdates<<<blocksFor(n * r), kThreads>>>(dW.get(), AHt.get(), WHHt.get(), n * r, eps);
    check(cudaGetLastError(), "the MU kernel");
    // Hᵀ ← Hᵀ ∘ AᵀW / (Hᵀ·WᵀW + ε) with the new W, in Hᵀ's layout.
    checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpT, ir, ir, in, &one, dW.get(), ir, dW.get(), ir, &zero, WtW.get(), ir), "cublasDgemm");
    checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpT, im, ir, in, &one, dA.get(), im, dW.get(), ir, &zero, AtW.get(), im), "cublasDgemm");
    checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpN, im, ir, ir, &one, dH.get(), im, WtW.get(), ir, &zero, HWtW.get(), im), "cublasDgemm");
    muUpdates<<<blocksFor(m * r), kThreads>>>(dH.get(), AtW.get(), HWtW.get(), m * r, eps);
    check(cudaGetLastError(), "the MU kernel");
  }
  check(cudaEventRecord(stop), "cudaEventRecord");
  check(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  check(cudaMemcpy(W, dW.get(), n * r * sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy (download of W)");
  check(cudaMemcpy(H, dH.get(), m * r * sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy (download of H)");
  return static_cast<double>(ms);
}

NmfMuRun nmfMuSolve(const double* A, std::size_t n, std::size_t m, std::size_t r, double eps, int maxIterations,
                    int lossEvery, double tolerance, double* W, double* H) {
  if (!probed.usable) throw DeviceError("the CUDA path is not usable: " + probed.reason);
  const auto started = std::chrono::steady_clock::now();
  const int in = asInt(n), im = asInt(m), ir = asInt(r);
  asInt(n * m);
  // Layouts as nmfMuIterations; WH (m×n, Aᵀ's layout) only when the expanded loss cancels.
  Buffer dA(n * m), dW(n * r), dH(m * r), HHt(r * r), AHt(n * r), WHHt(n * r), WtW(r * r), AtW(m * r), HWtW(m * r);
  Buffer scratch(kReduceBlocks + 1);
  check(cudaMemcpy(dA.get(), A, n * m * sizeof(double), cudaMemcpyHostToDevice), "cudaMemcpy (upload of A)");
  check(cudaMemcpy(dW.get(), W, n * r * sizeof(double), cudaMemcpyHostToDevice), "cudaMemcpy (upload of W)");
  check(cudaMemcpy(dH.get(), H, m * r * sizeof(double), cudaMemcpyHostToDevice), "cudaMemcpy (upload of H)");
  const double one = 1.0, zero = 0.0;
  const double normA2 = reduce(Sum::SquaredNorm, dA.get(), nullptr, n * m, scratch);
  NmfMuRun run;
  bool hasPrevious = false;
  double previous = 0;
  int it = 0;
  for (; it < maxIterations; ++it) {
    const bool due = it % lossEvery == 0;
    checkLibrary(api.cublasDgemm(api.blas, kOpT, kOpN, ir, ir, im, &one, dH.get(), im, dH.get(), im, &zero, HHt.get(), ir), "cublasDgemm");
    checkLibrary(api.cublasDgemm(api.blas, kOpT, kOpN, ir, in, im, &one, dH.get(), im, dA.get(), im, &zero, AHt.get(), ir), "cublasDgemm");
    bool plateau = false;
    if (due) {
      // The loss of the current (W, H), before the update (nmf.cpp records it so): 4 scalars cross.
      checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpT, ir, ir, in, &one, dW.get(), ir, dW.get(), ir, &zero, WtW.get(), ir), "cublasDgemm");
      const double model = reduce(Sum::Dot, WtW.get(), HHt.get(), r * r, scratch);
      const double cross = reduce(Sum::Dot, AHt.get(), dW.get(), n * r, scratch);
      double raw = expandedLossSquared(normA2, cross, model);
      if (std::isnan(raw)) {
        Buffer WH(n * m);
        checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpN, im, in, ir, &one, dH.get(), im, dW.get(), ir, &zero, WH.get(), im), "cublasDgemm");
        raw = reduce(Sum::SquaredDistance, dA.get(), WH.get(), n * m, scratch);
      }
      const double loss = std::sqrt(std::max(raw, 0.0));
      if (!std::isfinite(loss)) throw DeviceError("the loss became non-finite after " + std::to_string(it) + " iterations");
      run.iteration.push_back(it);
      run.timeMs.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
      run.loss.push_back(loss);
      plateau = tolerance > 0 && hasPrevious && std::abs(previous - loss) <= tolerance * std::max(previous, 1e-300);
      previous = loss;
      hasPrevious = true;
    }
    checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpN, ir, in, ir, &one, HHt.get(), ir, dW.get(), ir, &zero, WHHt.get(), ir), "cublasDgemm");
    muUpdates<<<blocksFor(n * r), kThreads>>>(dW.get(), AHt.get(), WHHt.get(), n * r, eps);
    check(cudaGetLastError(), "the MU kernel");
    checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpT, ir, ir, in, &one, dW.get(), ir, dW.get(), ir, &zero, WtW.get(), ir), "cublasDgemm");
    checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpT, im, ir, in, &one, dA.get(), im, dW.get(), ir, &zero, AtW.get(), im), "cublasDgemm");
    checkLibrary(api.cublasDgemm(api.blas, kOpN, kOpN, im, ir, ir, &one, dH.get(), im, WtW.get(), ir, &zero, HWtW.get(), im), "cublasDgemm");
    muUpdates<<<blocksFor(m * r), kThreads>>>(dH.get(), AtW.get(), HWtW.get(), m * r, eps);
    check(cudaGetLastError(), "the MU kernel");
    if (plateau) {  // as the CPU: the update after a plateaued loss is kept and counted
      ++it;
      run.plateau = true;
      break;
    }
  }
  run.iterations = it;
  check(cudaMemcpy(W, dW.get(), n * r * sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy (download of W)");
  check(cudaMemcpy(H, dH.get(), m * r * sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy (download of H)");
  return run;
}

}  // namespace nsa::cuda
