//===- KernelSource.h - The emitted kernel translation unit -----*- C++ -*-===//
//
// Every emitted kernel is the same thin shape over a device-header family:
//
//   // xlc kernel: rms_norm #xk.tile<threads = 256>
//   #include "xlc/device/rms_norm.cuh"
//   using Config = xlc::device::RmsNormConfig<__nv_bfloat16, 4096, 256>;
//   extern "C" __global__ void __launch_bounds__(Config::kThreads)
//   xlc_kernel(xlc::device::RmsNormParams p) { xlc::device::rms_norm<Config>(p); }
//
// The parameter struct has one 8-byte slot per field (device pointers, int64, double), listed in
// KernelSpec::params in order; the runtime packs launch arguments into it slot by slot.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_CODEGEN_CUDA_KERNELSOURCE_H
#define XLC_CODEGEN_CUDA_KERNELSOURCE_H

#include "runtime/artifact/Artifact.h"

#include "mlir/IR/Types.h"

#include <string>
#include <vector>

namespace xlc::codegen {

struct KernelSpec {
  std::string family;       ///< artifact family, e.g. "rms_norm"
  std::string header;       ///< device header, e.g. "rms_norm" for xlc/device/rms_norm.cuh
  std::string config;       ///< the Config type, e.g. "xlc::device::RmsNormConfig<...>"
  std::string paramsType;   ///< e.g. "RmsNormParams"
  std::string function;     ///< device function template, e.g. "rms_norm"
  std::string tile;         ///< canonical #xk.tile text
  std::vector<artifact::KernelParam> params;
  std::array<std::uint32_t, 3> block{1, 1, 1};
  std::array<artifact::Expr, 3> grid{artifact::Expr::constant(1), artifact::Expr::constant(1),
                                     artifact::Expr::constant(1)};
  std::uint32_t sharedBytes = 0;
  /// When set, the source asserts Config::kSharedBytes equals sharedBytes: codegen mirrors the
  /// header's shared-memory layout, and every NVRTC compile (CI compiles all kernels) checks it.
  bool assertSharedBytes = false;
};

/// The artifact kernel (source, entry, options, geometry) for |spec|.
artifact::Kernel makeKernel(const KernelSpec &spec);

/// The CUDA spelling of an element type: "__nv_bfloat16" or "float".
std::string cudaType(mlir::Type type);

/// Parameter-list builders: buffer pointers, int64 and double slots.
artifact::KernelParam bufferParam(std::string name);
artifact::KernelParam i64Param(std::string name);
artifact::KernelParam f64Param(std::string name);

} // namespace xlc::codegen

#endif // XLC_CODEGEN_CUDA_KERNELSOURCE_H
