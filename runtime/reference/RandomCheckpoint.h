//===- RandomCheckpoint.h - Reference configs and checkpoints on disk -*- C++ -*-===//
//
// The bridge between the float64 reference and the files the runtime reads:
//
//   - modelConfigFromHfJson: a Hugging Face xLSTM config.json as a ref::ModelConfig, read by the
//     one config reader (runtime/config/ModelConfig.h, the importer's and the weight checks' too)
//     and mapped onto the reference's hyper-parameters;
//   - writeCheckpoint / readCheckpointWeights: ModelWeights to and from a safetensors file under
//     the checkpoint names of shared/reference/xlstm-7b.md §5.1;
//   - writeRandomCheckpoint: config.json → ref::randomWeights → <dir>/model.safetensors plus a
//     copy of config.json, i.e. a model directory every xlc tool accepts (xlc-random-weights).
//
// Tied embeddings: transformers' save_pretrained stores lm_head.weight even when it is tied to
// the embedding (docs/parity/hf-checkpoints.md), so writeCheckpoint does too, with the
// embedding's values.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_REFERENCE_RANDOMCHECKPOINT_H
#define XLC_RUNTIME_REFERENCE_RANDOMCHECKPOINT_H

#include "runtime/config/ModelConfig.h"
#include "runtime/reference/Model.h"
#include "runtime/weights/DType.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::weights {
class Checkpoint;
}

namespace xlc::ref {

/// The reference's hyper-parameters of a parsed config: sizes as config::ModelConfig derives
/// them, the numerics fields as written (defaults filled in), the normalizer max_abs, and
/// add_out_norm always true (Hugging Face applies out_norm whatever the field says). Throws
/// xlc::Error naming the source and the field for variants xlc does not run
/// (config::checkSupported: use_bias, a fused weight_mode).
ModelConfig referenceConfig(const config::ModelConfig &config);

/// A config.json text read by config::parseModelConfig and mapped by referenceConfig; the
/// config's warnings (unknown fields, add_out_norm false, ...) are appended to |warnings|.
/// Throws xlc::Error naming |source| and the field.
ModelConfig modelConfigFromHfJsonText(std::string_view jsonText, std::string_view source,
                                      std::vector<std::string> *warnings = nullptr);
/// The same from a file.
ModelConfig modelConfigFromHfJson(const std::string &path,
                                  std::vector<std::string> *warnings = nullptr);

/// What a checkpoint write produced.
struct CheckpointSummary {
  std::string path;               ///< the .safetensors file
  std::size_t tensors = 0;
  std::uint64_t parameters = 0;   ///< elements over all tensors (lm_head counted when stored)
  std::uint64_t bytes = 0;        ///< tensor data bytes
  weights::DType dtype = weights::DType::F32;
};

/// Writes every tensor of |config| from |weights| (plus, when tied, lm_head.weight: weights.lmHead
/// if set, else the embedding)
/// into <directory>/model.safetensors, atomically, as |dtype| (F32, or BF16 rounded to nearest
/// even), with metadata {"format": "pt"}. Creates the directory if needed.
CheckpointSummary writeCheckpoint(const ModelConfig &config, const ModelWeights &weights,
                                  const std::string &directory, weights::DType dtype);

/// The tensors of |config| read back from |checkpoint| as float64 (exact: every F32, BF16 and
/// F16 value is a double); when tied, a stored lm_head.weight too (it is the head, as in
/// transformers 5). The result passes validateWeights.
ModelWeights readCheckpointWeights(const ModelConfig &config, const weights::Checkpoint &checkpoint);

struct RandomCheckpointOptions {
  std::uint64_t seed = 0;
  weights::DType dtype = weights::DType::F32; ///< F32 or BF16
  /// Draw with a counter-based generator on every core instead of randomWeights' sequential
  /// one: the same initialisation (initRule), other values, no float64 copy of the model. For
  /// benchmark checkpoints (the 7B in seconds instead of minutes); deterministic in the seed
  /// whatever the number of threads.
  bool fast = false;
  InitScheme init = InitScheme::Test; ///< which initialisation (Model.h)
};

/// Reads |configPath| (modelConfigFromHfJson), draws randomWeights(config, seed, init), writes
/// <outDir>/model.safetensors and copies the config to <outDir>/config.json (unless it is
/// already that file).
CheckpointSummary writeRandomCheckpoint(const std::string &configPath, const std::string &outDir,
                                        const RandomCheckpointOptions &options);

} // namespace xlc::ref

#endif // XLC_RUNTIME_REFERENCE_RANDOMCHECKPOINT_H
