//===- KernelSource.h - The translation unit of one kernel variant -*- C++ -*-===//
//
// What the compiler emits per kernel variant (docs/kernels.md, "Emitted translation unit"): the
// family header, the Config alias, and a one-line extern "C" entry point taking the family's
// Params struct by value. Free of device headers, so NVRTC-only code can use it.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_GPU_HARNESS_KERNELSOURCE_H
#define XLC_TEST_GPU_HARNESS_KERNELSOURCE_H

#include <fmt/format.h>

#include <string>

namespace xlc::test {

/// A kernel family as the emitted translation unit names it.
struct Family {
  const char *header;   ///< "xlc/device/rms_norm.cuh"
  const char *params;   ///< "xlc::device::RmsNormParams"
  const char *function; ///< "xlc::device::rms_norm"
};

inline constexpr Family kEmbedding{"xlc/device/embedding.cuh", "xlc::device::EmbeddingParams",
                                   "xlc::device::embedding"};
inline constexpr Family kRmsNorm{"xlc/device/rms_norm.cuh", "xlc::device::RmsNormParams",
                                 "xlc::device::rms_norm"};
inline constexpr Family kNormGate{"xlc/device/norm_gate.cuh", "xlc::device::NormGateParams",
                                  "xlc::device::norm_gate"};
inline constexpr Family kSwiglu{"xlc/device/swiglu.cuh", "xlc::device::SwigluParams",
                                "xlc::device::swiglu"};
inline constexpr Family kSoftCap{"xlc/device/soft_cap.cuh", "xlc::device::SoftCapParams",
                                 "xlc::device::soft_cap"};
inline constexpr Family kChunkStates{"xlc/device/mlstm_chunkwise.cuh",
                                     "xlc::device::MlstmChunkwiseParams",
                                     "xlc::device::mlstm_chunk_states"};
inline constexpr Family kChunkOutputs{"xlc/device/mlstm_chunkwise.cuh",
                                      "xlc::device::MlstmChunkwiseParams",
                                      "xlc::device::mlstm_chunk_outputs"};
inline constexpr Family kChunkFused{"xlc/device/mlstm_chunk_fused.cuh",
                                    "xlc::device::MlstmChunkFusedParams",
                                    "xlc::device::mlstm_chunk_fused"};
inline constexpr Family kDecodeStep{"xlc/device/mlstm_decode_step.cuh",
                                    "xlc::device::MlstmDecodeParams",
                                    "xlc::device::mlstm_decode_step"};

/// The translation unit for |family| instantiated with the config type spelled |config|.
inline std::string translationUnit(const Family &family, const std::string &config) {
  return fmt::format("#include \"{}\"\n"
                     "using Config = {};\n"
                     "extern \"C\" __global__ void __launch_bounds__(Config::kThreads)\n"
                     "xlc_kernel({} p) {{\n"
                     "  xlc::device::grid_dependency_sync();\n"
                     "  {}<Config>(p);\n"
                     "}}\n",
                     family.header, config, family.params, family.function);
}

} // namespace xlc::test

#endif // XLC_TEST_GPU_HARNESS_KERNELSOURCE_H
