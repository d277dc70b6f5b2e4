//===- ModelConfig.h - xLSTM hyper-parameters from a config.json -*- C++ -*-===//
//
// The hyper-parameters of an mLSTM-only xLSTM language model, read from a Hugging Face
// `config.json`: both the original NX-AI field names and the current `xLSTMConfig` ones
// (xlstm-7b.md §1.3–1.4), the documented defaults filled in, every value validated. This is the
// one reader of config.json: the importer (xlc-import, xlc-compile), the weight checks
// (runtime/weights, xlc-dump --weights) and the float64 reference (xlc-random-weights) all use it.
//
// Strict: the text must be valid UTF-8 JSON without duplicate keys (json::parseStrictJson);
// integer fields must be JSON integers (4.0 is refused); numbers must be finite; aliases
// (embedding_dim | hidden_size, num_blocks | num_hidden_layers, add_out_norm |
// add_post_blocks_norm) must agree when both are given; null means "unset" (except for the soft
// caps, where an explicit null disables the cap). Every error is an xlc::Error that names the
// file and the field: "<source>: field 'num_heads' must be an integer, got 4.0".
//
// Derived sizes follow the Hugging Face modelling code, which defines the checkpoint shapes:
//   qk  = int(d * qk_dim_factor), v = int(d * v_dim_factor)   (xLSTMLayer; xLSTMConfig.qk_dim
//         rounds up to 64 instead, which agrees whenever d * factor is a multiple of 64, as for
//         every published config)
//   ffn = round_up_to_next_multiple_of(d * ffn_proj_factor, ffn_round_up_to_multiple_of),
//         i.e. int(((x + m - 1) // m) * m) on the Python float x (7B: 10924.03 -> 10944)
//
// Plain C++: no MLIR, no LLVM (the importer turns a ModelConfig into IR).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_CONFIG_MODELCONFIG_H
#define XLC_RUNTIME_CONFIG_MODELCONFIG_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::config {

enum class InputGate { Exp, Sigmoid };
enum class StateDtype { F32, BF16 };
/// How the checkpoint stores the projections: one tensor each, or q|k|v|o, i|f and the FFN up
/// projections concatenated (`weight_mode: "fused"`).
enum class WeightMode { Single, Fused };

struct ModelConfig {
  std::string name;   ///< the config file's directory name ("xlstm-7b"), set by loadModelConfig
  std::string hfName; ///< `_name_or_path` as written, if any
  std::string source; ///< the file (or label) the config was read from, for messages

  // Sizes as written in the config. The defaults are transformers' xLSTMConfig's (= xLSTM 7B).
  std::int64_t embeddingDim = 4096; ///< embedding_dim | hidden_size
  std::int64_t numBlocks = 32;      ///< num_blocks | num_hidden_layers
  std::int64_t numHeads = 8;
  std::int64_t vocabSize = 50304;
  double qkDimFactor = 0.5;
  double vDimFactor = 1.0;
  double ffnProjFactor = 2.667;
  std::int64_t ffnRoundUpToMultipleOf = 64;

  double normEps = 1e-6;   ///< RMSNorms; also the multi-head LayerNorm unless cell_norm_eps is set
  double mhNormEps = 1e-6; ///< cell_norm_eps (original config), defaulting to norm_eps
  double cellEps = 1e-6;   ///< `eps`: added to the mLSTM readout denominator (may be 0)
  std::optional<double> gateSoftCap = 15.0;        ///< null disables the cap
  std::optional<double> outputLogitSoftCap = 30.0; ///< null disables the cap
  bool tieWordEmbeddings = false;
  /// add_out_norm | add_post_blocks_norm as written. Hugging Face's xLSTMModel creates and applies
  /// out_norm whatever it says (and save_pretrained stores its weight), so the importer and the
  /// reference always apply it (a false value is a warning); the weight check only treats the
  /// tensor as optional.
  bool addOutNorm = true;
  InputGate inputGate = InputGate::Exp;    ///< xlc extension: `xlc_input_gate`
  StateDtype stateDtype = StateDtype::F32; ///< inference_state_dtype
  std::int64_t chunkSize = 64;
  /// Checkpoint variants the weight checks understand but xlc does not compile (checkSupported).
  bool useBias = false;
  WeightMode weightMode = WeightMode::Single;

  std::int64_t bosTokenId = 0, eosTokenId = 2, padTokenId = 1;

  /// Fields accepted without effect in xlc (Python kernel names, training switches, ...).
  std::vector<std::string> ignoredFields;
  /// Things a user should see: unknown fields, ambiguous values.
  std::vector<std::string> warnings;

  // Derived sizes, exactly as the Hugging Face modelling code computes them (see the top).
  std::int64_t qkDim() const;
  std::int64_t vDim() const;
  std::int64_t ffnDim() const;
  std::int64_t qkHeadDim() const { return qkDim() / numHeads; }
  std::int64_t vHeadDim() const { return vDim() / numHeads; }

  /// Throws xlc::Error "<source>: field '<name>' ..." when a size is not positive or absurdly
  /// large, a factor or eps is out of range, a width is empty or not a multiple of the head
  /// count, or a token id lies outside the vocabulary. parseModelConfig calls it; configs built
  /// in code call it themselves.
  void validate() const;

  /// "xLSTM d=4096, 32 blocks, 8 heads (qk 2048, v 4096), ffn 10944, vocab 50304, untied"
  std::string summary() const;
};

/// Parses a config.json text; |source| names the file in messages (and becomes config.source).
/// The result is validated.
ModelConfig parseModelConfig(std::string_view jsonText, std::string_view source);

/// Reads and parses a config.json file (at most 10 MB); messages name |path| as given.
ModelConfig loadModelConfig(const std::string &path);

/// Throws xlc::Error naming the field when |config| describes a checkpoint variant that xlc does
/// not compile or run: biases on the projections (use_bias) or fused weights (weight_mode).
/// The importer and the reference call it; the weight checks do not.
void checkSupported(const ModelConfig &config);

/// Python's round_up_to_next_multiple_of(x, m) for a float x: int(((x + m - 1) // m) * m), with
/// Python's float floor division, so the FFN width matches transformers bit for bit.
std::int64_t roundUpToMultipleOf(double x, std::int64_t multiple);

} // namespace xlc::config

#endif // XLC_RUNTIME_CONFIG_MODELCONFIG_H
