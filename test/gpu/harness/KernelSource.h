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

#include <stdexcept>
#include <string>

namespace xlc::test {

/// A kernel family as the emitted translation unit names it.
struct Family {
  const char *header;   ///< "xlc/device/rms_norm.cuh"
  const char *params;   ///< "xlc::device::RmsNormParams"
  const char *function; ///< "xlc::device::rms_norm"
  bool waitsInside = false; ///< the function calls grid_dependency_sync() (FamilyDef::waitsInside)
};

inline constexpr Family kEmbedding{"xlc/device/embedding.cuh", "xlc::device::EmbeddingParams",
                                   "xlc::device::embedding"};
inline constexpr Family kEmbeddingBackward{"xlc/device/embedding_backward.cuh",
                                           "xlc::device::EmbeddingBackwardParams",
                                           "xlc::device::embedding_backward"};
inline constexpr Family kAdamW{"xlc/device/adamw.cuh", "xlc::device::AdamWParams",
                               "xlc::device::adamw"};
inline constexpr Family kConvert{"xlc/device/convert.cuh", "xlc::device::ConvertParams",
                                 "xlc::device::convert"};
inline constexpr Family kColumnSum{"xlc/device/column_sum.cuh", "xlc::device::ColumnSumParams",
                                   "xlc::device::column_sum"};
inline constexpr Family kGradNorm{"xlc/device/grad_norm.cuh", "xlc::device::GradNormParams",
                                  "xlc::device::grad_norm"};
inline constexpr Family kCrossEntropy{"xlc/device/cross_entropy.cuh",
                                      "xlc::device::CrossEntropyParams",
                                      "xlc::device::cross_entropy"};
inline constexpr Family kRmsNorm{"xlc/device/rms_norm.cuh", "xlc::device::RmsNormParams",
                                 "xlc::device::rms_norm"};
inline constexpr Family kRmsNormBackward{"xlc/device/rms_norm_backward.cuh",
                                         "xlc::device::RmsNormBackwardParams",
                                         "xlc::device::rms_norm_backward"};
inline constexpr Family kNormGate{"xlc/device/norm_gate.cuh", "xlc::device::NormGateParams",
                                  "xlc::device::norm_gate"};
inline constexpr Family kNormGateBackward{"xlc/device/norm_gate_backward.cuh",
                                          "xlc::device::NormGateBackwardParams",
                                          "xlc::device::norm_gate_backward"};
inline constexpr Family kSwiglu{"xlc/device/swiglu.cuh", "xlc::device::SwigluParams",
                                "xlc::device::swiglu"};
inline constexpr Family kSwigluBackward{"xlc/device/swiglu_backward.cuh",
                                        "xlc::device::SwigluBackwardParams",
                                        "xlc::device::swiglu_backward"};
inline constexpr Family kSoftCap{"xlc/device/soft_cap.cuh", "xlc::device::SoftCapParams",
                                 "xlc::device::soft_cap"};
inline constexpr Family kChunkStates{"xlc/device/mlstm_chunkwise.cuh",
                                     "xlc::device::MlstmChunkwiseParams",
                                     "xlc::device::mlstm_chunk_states"};
inline constexpr Family kChunkOutputs{"xlc/device/mlstm_chunkwise.cuh",
                                      "xlc::device::MlstmChunkwiseParams",
                                      "xlc::device::mlstm_chunk_outputs"};
inline constexpr Family kBackwardReadout{"xlc/device/mlstm_chunk_backward.cuh",
                                         "xlc::device::MlstmChunkBackwardParams",
                                         "xlc::device::mlstm_backward_readout"};
inline constexpr Family kBackwardStates{"xlc/device/mlstm_chunk_backward.cuh",
                                        "xlc::device::MlstmChunkBackwardParams",
                                        "xlc::device::mlstm_backward_states"};
inline constexpr Family kBackwardChunk{"xlc/device/mlstm_chunk_backward.cuh",
                                       "xlc::device::MlstmChunkBackwardParams",
                                       "xlc::device::mlstm_backward_chunk"};
inline constexpr Family kBackwardGates{"xlc/device/mlstm_chunk_backward.cuh",
                                       "xlc::device::MlstmChunkBackwardParams",
                                       "xlc::device::mlstm_backward_gates"};
inline constexpr Family kChunkScores{"xlc/device/mlstm_chunk_scores.cuh",
                                     "xlc::device::MlstmChunkScoresParams",
                                     "xlc::device::mlstm_chunk_scores"};
inline constexpr Family kChunkFused{"xlc/device/mlstm_chunk_fused.cuh",
                                    "xlc::device::MlstmChunkFusedParams",
                                    "xlc::device::mlstm_chunk_fused"};
inline constexpr Family kDecodeStep{"xlc/device/mlstm_decode_step.cuh",
                                    "xlc::device::MlstmDecodeParams",
                                    "xlc::device::mlstm_decode_step", true};

/// "xlc::device::MlstmChunkScoresConfig<CELL, L>" for the fused variant spelt
/// "xlc::device::MlstmChunkFusedConfig<CELL, L, TILE_V, SPLIT>": the scores kernel the compiler
/// emits next to that state pass (same cell, same chunk).
inline std::string scoresConfigOf(const std::string &fused) {
  const std::string prefix = "xlc::device::MlstmChunkFusedConfig<";
  if (fused.rfind(prefix, 0) != 0)
    throw std::runtime_error("not a fused chunkwise config: " + fused);
  // The cell is the first template argument: up to the first ',' at bracket depth 0.
  size_t pos = prefix.size(), depth = 0;
  for (; pos < fused.size(); ++pos) {
    if (fused[pos] == '<')
      ++depth;
    else if (fused[pos] == '>')
      --depth;
    else if (fused[pos] == ',' && depth == 0)
      break;
  }
  const std::string cell = fused.substr(prefix.size(), pos - prefix.size());
  const size_t chunkEnd = fused.find(',', pos + 1);
  const std::string chunk = fused.substr(pos + 1, chunkEnd - pos - 1);
  return "xlc::device::MlstmChunkScoresConfig<" + cell + "," + chunk + ">";
}

/// The translation unit for |family| instantiated with the config type spelled |config|.
inline std::string translationUnit(const Family &family, const std::string &config) {
  return fmt::format("#include \"{}\"\n"
                     "using Config = {};\n"
                     "extern \"C\" __global__ void __launch_bounds__(Config::kThreads)\n"
                     "xlc_kernel({} p) {{\n"
                     "{}"
                     "  {}<Config>(p);\n"
                     "}}\n",
                     family.header, config, family.params,
                     family.waitsInside ? "" : "  xlc::device::grid_dependency_sync();\n",
                     family.function);
}

} // namespace xlc::test

#endif // XLC_TEST_GPU_HARNESS_KERNELSOURCE_H
