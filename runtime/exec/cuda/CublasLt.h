//===- CublasLt.h - GEMMs with epilogues through cuBLASLt --------*- C++ -*-===//
//
// The artifact's GEMM steps compute, on row-major buffers,
//
//   D[m, n] = A[m, k] · W[n, k]ᵀ  (+ bias[n] | + C[m, n])
//
// with W a weight in the checkpoint's [out, in] layout. cuBLASLt is column-major, and a row-major
// [r, c] matrix is the column-major [c, r] matrix, so we ask it for Dᵀ = W · Aᵀ: its "A" operand
// is W seen as column-major [k, n] and transposed (op T, ld k), its "B" operand is A seen as
// column-major [k, m] (op N, ld k), and D (and the residual C) are column-major [n, m] (ld n).
// The bias of the BIAS epilogue runs along the rows of that Dᵀ, i.e. over n, as the artifact's
// bias does. Accumulation and scaling are fp32 (CUBLAS_COMPUTE_32F).
//
// libcublasLt.so.13 is loaded with dlopen like the driver, so binaries start without it. The
// algorithm of each distinct GEMM (sizes, dtypes, epilogue) is chosen once by cuBLASLt's
// heuristic and cached; every call uses one preallocated workspace, so GEMMs can be captured in
// CUDA graphs.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_CUBLASLT_H
#define XLC_RUNTIME_EXEC_CUDA_CUBLASLT_H

#include "runtime/artifact/Artifact.h"
#include "runtime/cuda/Device.h"
#include "runtime/cuda/DynamicLibrary.h"

#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace xlc::exec {

struct CublasLtApi {
#define XLC_CUBLASLT_SYMBOL(name) decltype(&::name) name = nullptr;
#include "runtime/exec/cuda/CublasLtSymbols.inc"
#undef XLC_CUBLASLT_SYMBOL
};

/// One GEMM's shape and types (everything that selects an algorithm).
struct GemmShape {
  std::uint64_t m = 0, n = 0, k = 0;
  artifact::DType ab = artifact::DType::BF16;   ///< A and W
  artifact::DType d = artifact::DType::BF16;    ///< D (and the residual C)
  artifact::DType bias = artifact::DType::BF16; ///< the bias vector (Bias epilogue only)
  artifact::Epilogue epilogue = artifact::Epilogue::None;
  auto key() const { return std::tie(m, n, k, ab, d, bias, epilogue); }
  friend bool operator<(const GemmShape &x, const GemmShape &y) { return x.key() < y.key(); }
};

class CublasLt {
public:
  /// Loads libcublasLt (tried as $XLC_CUBLASLT_LIBRARY, libcublasLt.so.13, libcublasLt.so, then
  /// in the toolkit's library directory) and creates a handle. Needs a current CUDA context.
  /// |workspaceBytes| of device memory are allocated for the algorithms' scratch space.
  explicit CublasLt(std::size_t workspaceBytes = 32u << 20);
  ~CublasLt();
  CublasLt(const CublasLt &) = delete;
  CublasLt &operator=(const CublasLt &) = delete;

  /// "cuBLASLt 130100 (libcublasLt.so.13)".
  std::string description() const;

  /// D = A·Wᵀ (+ epilogue) on |stream|. |c| is the residual (ResidualAdd) or the bias (Bias),
  /// ignored otherwise. Throws xlc::Error naming |what| when cuBLASLt has no algorithm for the
  /// shape or the call fails.
  void gemm(const GemmShape &shape, CUdeviceptr a, CUdeviceptr w, CUdeviceptr c, CUdeviceptr d,
            CUstream stream, const std::string &what);

private:
  struct Plan;
  Plan &plan(const GemmShape &shape, const std::string &what);
  void checkStatus(cublasStatus_t status, const char *call, const std::string &what) const;

  cuda::DynamicLibrary library_;
  CublasLtApi api_;
  cublasLtHandle_t handle_ = nullptr;
  cuda::DeviceBuffer workspace_;
  std::map<GemmShape, std::unique_ptr<Plan>> plans_;
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_CUBLASLT_H
