//===- ModelConfig.h - xLSTM hyper-parameters from a config.json -*- C++ -*-===//
//
// The hyper-parameters of an mLSTM-only xLSTM language model, read from a Hugging Face
// `config.json` (both the original NX-AI field names and the current `xLSTMConfig` ones,
// xlstm-7b.md §1.3–1.4), with the documented defaults filled in and every value validated.
// Derived sizes follow the Hugging Face modelling code, which defines the checkpoint shapes.
//
// Plain C++ (no MLIR): the importer turns a ModelConfig into IR.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_MODELS_IMPORT_MODELCONFIG_H
#define XLC_MODELS_IMPORT_MODELCONFIG_H

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace xlc::models {

/// Thrown for an unreadable or invalid config; the message names the file and the field.
class ConfigError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

enum class InputGate { Exp, Sigmoid };
enum class StateDtype { F32, BF16 };

struct ModelConfig {
  std::string name;              ///< the config file's directory name (e.g. "xlstm-7b")
  std::string hfName;            ///< `_name_or_path` as written, if any

  // Sizes as written in the config.
  int64_t embeddingDim = 4096;   ///< embedding_dim | hidden_size
  int64_t numBlocks = 32;        ///< num_blocks | num_hidden_layers
  int64_t numHeads = 8;
  int64_t vocabSize = 50304;
  double qkDimFactor = 0.5;
  double vDimFactor = 1.0;
  double ffnProjFactor = 2.667;
  int64_t ffnRoundUpToMultipleOf = 64;

  // Derived sizes (HF xLSTMLayer / xLSTMFeedForward):
  //   qk_dim = int(d * qk_dim_factor), v_dim = int(d * v_dim_factor),
  //   ffn_dim = round_up(d * ffn_proj_factor, ffn_round_up_to_multiple_of).
  int64_t qkDim = 0, vDim = 0, ffnDim = 0;
  int64_t qkHeadDim() const { return qkDim / numHeads; }
  int64_t vHeadDim() const { return vDim / numHeads; }

  double normEps = 1e-6;         ///< RMSNorms and, unless cell_norm_eps says otherwise, the
                                 ///< multi-head LayerNorm.
  double mhNormEps = 1e-6;       ///< cell_norm_eps (original config) | norm_eps
  double cellEps = 1e-6;         ///< `eps`: added to the mLSTM readout denominator.
  std::optional<double> gateSoftCap = 15.0;          ///< null disables the cap
  std::optional<double> outputLogitSoftCap = 30.0;   ///< null disables the cap
  bool tieWordEmbeddings = false;
  bool addOutNorm = true;        ///< always true: HF applies out_norm whatever add_out_norm says
  InputGate inputGate = InputGate::Exp;              ///< xlc extension: `xlc_input_gate`
  StateDtype stateDtype = StateDtype::F32;           ///< inference_state_dtype
  int64_t chunkSize = 64;

  int64_t bosTokenId = 0, eosTokenId = 2, padTokenId = 1;

  /// Fields accepted without effect in xlc (Python kernel names, training switches, ...).
  std::vector<std::string> ignoredFields;
  /// Things a user should see: unknown fields, ambiguous values.
  std::vector<std::string> warnings;
};

/// Parses a config.json text. |source| names the file in error messages.
ModelConfig parseModelConfig(const std::string &jsonText, const std::string &source);

/// Reads and parses a config.json file.
ModelConfig loadModelConfig(const std::string &path);

} // namespace xlc::models

#endif // XLC_MODELS_IMPORT_MODELCONFIG_H
