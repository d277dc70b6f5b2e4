//===- ModelConfig.cpp - xLSTM hyper-parameters from a config.json --------===//

#include "models/import/ModelConfig.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace xlc::models {
namespace {

using json = nlohmann::json;

/// Reads typed fields out of the config object, naming the file and the field in every error.
class FieldReader {
public:
  FieldReader(const json &object, std::string source)
      : object_(object), source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string &field, const std::string &what) const {
    throw ConfigError(source_ + ": field '" + field + "' " + what);
  }

  bool has(const std::string &key) const {
    auto it = object_.find(key);
    return it != object_.end() && !it->is_null();
  }
  bool present(const std::string &key) const { return object_.contains(key); }

  /// An integer field (JSON integers, or floats holding an integral value).
  int64_t integer(const std::string &key) const {
    const json &v = object_.at(key);
    if (v.is_number_integer())
      return v.get<int64_t>();
    if (v.is_number_float()) {
      double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
        return static_cast<int64_t>(d);
    }
    fail(key, "must be an integer, got " + v.dump());
  }

  int64_t positiveInteger(const std::string &key) const {
    int64_t value = integer(key);
    if (value <= 0)
      fail(key, "must be a positive integer, got " + std::to_string(value));
    return value;
  }

  double number(const std::string &key) const {
    const json &v = object_.at(key);
    if (!v.is_number())
      fail(key, "must be a number, got " + v.dump());
    double d = v.get<double>();
    if (!std::isfinite(d))
      fail(key, "must be finite, got " + v.dump());
    return d;
  }

  double positiveNumber(const std::string &key) const {
    double d = number(key);
    if (d <= 0.0)
      fail(key, "must be positive, got " + object_.at(key).dump());
    return d;
  }

  bool boolean(const std::string &key) const {
    const json &v = object_.at(key);
    if (!v.is_boolean())
      fail(key, "must be true or false, got " + v.dump());
    return v.get<bool>();
  }

  std::string string(const std::string &key) const {
    const json &v = object_.at(key);
    if (!v.is_string())
      fail(key, "must be a string, got " + v.dump());
    return v.get<std::string>();
  }

  /// A token id: an integer, or a list whose first element is used (HF allows a list of EOS ids).
  int64_t tokenId(const std::string &key, std::vector<std::string> &warnings) const {
    const json &v = object_.at(key);
    if (v.is_array()) {
      if (v.empty() || !v.front().is_number_integer())
        fail(key, "must be a token id or a non-empty list of token ids, got " + v.dump());
      if (v.size() > 1)
        warnings.push_back("'" + key + "' lists several ids; xlc uses the first, " +
                        v.front().dump());
      return v.front().get<int64_t>();
    }
    int64_t id = integer(key);
    if (id < 0)
      fail(key, "must be a non-negative token id, got " + std::to_string(id));
    return id;
  }

  /// Reads one of two alias fields; when both are present they must agree.
  template <typename Read>
  auto aliased(const std::string &a, const std::string &b, Read read) const
      -> std::optional<decltype(read(a))> {
    bool hasA = has(a), hasB = has(b);
    if (hasA && hasB) {
      auto va = read(a), vb = read(b);
      if (va != vb)
        fail(b, "disagrees with its alias '" + a + "' (" + object_.at(b).dump() + " vs " +
                    object_.at(a).dump() + ")");
      return va;
    }
    if (hasA)
      return read(a);
    if (hasB)
      return read(b);
    return std::nullopt;
  }

private:
  const json &object_;
  std::string source_;
};

// Fields that select kernels, training modes or initialisation in the Python implementations:
// accepted, recorded as notes, no effect on the model's function.
const std::set<std::string> kIgnoredFields = {
    "architectures", "transformers_version", "torch_dtype", "dtype", "forward_backend_name",
    "step_backend_name", "chunkwise_kernel", "sequence_kernel", "step_kernel", "mode",
    "return_last_states", "autocast_kernel_dtype", "use_cache", "max_inference_chunksize",
    "force_bos_token_insert", "add_forward_backend_padding", "igate_bias_init_range",
    "fgate_bias_init_range", "mlstm_round_up_to_multiple_of", "output_hidden_states",
    "output_attentions", "return_dict", "initializer_range", "weight_mode_fused_conversion",
    "is_encoder_decoder", "tokenizer_class"};

} // namespace

ModelConfig parseModelConfig(const std::string &jsonText, const std::string &source) {
  json root;
  try {
    root = json::parse(jsonText);
  } catch (const json::parse_error &e) {
    throw ConfigError(source + ": not valid JSON: " + e.what());
  }
  if (!root.is_object())
    throw ConfigError(source + ": expected a JSON object at the top level");

  FieldReader r(root, source);
  ModelConfig c;
  auto posInt = [&](const std::string &k) { return r.positiveInteger(k); };

  if (r.has("model_type") && r.string("model_type") != "xlstm")
    r.fail("model_type", "must be \"xlstm\", got \"" + r.string("model_type") + "\"");

  if (auto v = r.aliased("embedding_dim", "hidden_size", posInt))
    c.embeddingDim = *v;
  if (auto v = r.aliased("num_blocks", "num_hidden_layers", posInt))
    c.numBlocks = *v;
  if (r.has("num_heads"))
    c.numHeads = r.positiveInteger("num_heads");
  if (r.has("vocab_size"))
    c.vocabSize = r.positiveInteger("vocab_size");
  if (r.has("qk_dim_factor"))
    c.qkDimFactor = r.positiveNumber("qk_dim_factor");
  if (r.has("v_dim_factor"))
    c.vDimFactor = r.positiveNumber("v_dim_factor");
  if (r.has("ffn_proj_factor"))
    c.ffnProjFactor = r.positiveNumber("ffn_proj_factor");
  if (r.has("ffn_round_up_to_multiple_of"))
    c.ffnRoundUpToMultipleOf = r.positiveInteger("ffn_round_up_to_multiple_of");

  if (r.has("norm_eps"))
    c.normEps = r.positiveNumber("norm_eps");
  c.mhNormEps = r.has("cell_norm_eps") ? r.positiveNumber("cell_norm_eps") : c.normEps;
  if (r.has("eps")) {
    c.cellEps = r.number("eps");
    if (c.cellEps < 0.0)
      r.fail("eps", "must be non-negative, got " + root.at("eps").dump());
  }

  // A soft-cap field that is present and null disables the cap; absent means the default.
  for (auto [key, slot] : {std::pair<const char *, std::optional<double> *>{"gate_soft_cap",
                                                                          &c.gateSoftCap},
                           {"output_logit_soft_cap", &c.outputLogitSoftCap}}) {
    if (!r.present(key))
      continue;
    *slot = r.has(key) ? std::optional<double>(r.positiveNumber(key)) : std::nullopt;
  }

  if (r.has("tie_word_embeddings"))
    c.tieWordEmbeddings = r.boolean("tie_word_embeddings");
  // Hugging Face's xLSTMModel (transformers 5.17) creates and applies out_norm whatever
  // add_out_norm says, and save_pretrained stores its weight (docs/parity/hf-facts-*.txt); xlc
  // follows the implementation that defines the checkpoints and says so.
  if (auto v = r.aliased("add_out_norm", "add_post_blocks_norm",
                         [&](const std::string &k) { return r.boolean(k); }))
    if (!*v)
      c.warnings.push_back("add_out_norm is false, but Hugging Face's xLSTMModel applies "
                           "out_norm regardless; xlc does the same");

  if (r.has("xlc_input_gate")) {
    std::string kind = r.string("xlc_input_gate");
    if (kind == "exp")
      c.inputGate = InputGate::Exp;
    else if (kind == "sigmoid")
      c.inputGate = InputGate::Sigmoid;
    else
      r.fail("xlc_input_gate", "must be \"exp\" or \"sigmoid\", got \"" + kind + "\"");
  }
  if (r.has("inference_state_dtype")) {
    std::string dtype = r.string("inference_state_dtype");
    if (dtype == "float32")
      c.stateDtype = StateDtype::F32;
    else if (dtype == "bfloat16")
      c.stateDtype = StateDtype::BF16;
    else
      r.fail("inference_state_dtype",
             "must be \"float32\" or \"bfloat16\", got \"" + dtype + "\"");
  }
  if (r.has("chunk_size"))
    c.chunkSize = r.positiveInteger("chunk_size");
  if (r.has("bos_token_id"))
    c.bosTokenId = r.tokenId("bos_token_id", c.warnings);
  if (r.has("eos_token_id"))
    c.eosTokenId = r.tokenId("eos_token_id", c.warnings);
  if (r.has("pad_token_id"))
    c.padTokenId = r.tokenId("pad_token_id", c.warnings);

  // Architecture switches xlc does not implement: refuse rather than compute something else.
  if (r.has("use_bias") && r.boolean("use_bias"))
    r.fail("use_bias", "is true; xlc supports only bias-free projections (the gate "
                       "projections always have biases), as in xLSTM 7B");
  if (r.has("weight_mode") && r.string("weight_mode") != "single")
    r.fail("weight_mode", "is \"" + r.string("weight_mode") +
                              "\"; xlc reads single-weight checkpoints and fuses projections "
                              "itself, so it must be \"single\"");
  for (const char *key : {"add_qk_norm", "add_post_norm", "add_embedding_dropout"})
    if (r.has(key) && r.boolean(key))
      r.fail(key, "is true; this block variant is not supported (it must be false)");
  if (r.has("norm_reduction_force_float32") && !r.boolean("norm_reduction_force_float32"))
    c.warnings.push_back("norm_reduction_force_float32 is false; xlc always reduces norms in "
                         "fp32");

  // Derived sizes, exactly as the Hugging Face modelling code computes them.
  double qk = static_cast<double>(c.embeddingDim) * c.qkDimFactor;
  double v = static_cast<double>(c.embeddingDim) * c.vDimFactor;
  c.qkDim = static_cast<int64_t>(qk);
  c.vDim = static_cast<int64_t>(v);
  double multiple = static_cast<double>(c.ffnRoundUpToMultipleOf);
  double ffn = static_cast<double>(c.embeddingDim) * c.ffnProjFactor;
  c.ffnDim = static_cast<int64_t>(std::floor((ffn + multiple - 1.0) / multiple) * multiple);
  if (c.qkDim <= 0)
    r.fail("qk_dim_factor", "gives an empty qk dimension (" + std::to_string(c.qkDim) + ")");
  if (c.vDim <= 0)
    r.fail("v_dim_factor", "gives an empty v dimension (" + std::to_string(c.vDim) + ")");
  if (c.qkDim % c.numHeads != 0)
    r.fail("num_heads", "(" + std::to_string(c.numHeads) + ") does not divide the qk dimension " +
                            std::to_string(c.qkDim) + " = int(" +
                            std::to_string(c.embeddingDim) + " * qk_dim_factor)");
  if (c.vDim % c.numHeads != 0)
    r.fail("num_heads", "(" + std::to_string(c.numHeads) + ") does not divide the v dimension " +
                            std::to_string(c.vDim) + " = int(" + std::to_string(c.embeddingDim) +
                            " * v_dim_factor)");
  if (r.has("head_dim") && r.positiveInteger("head_dim") != c.vHeadDim())
    r.fail("head_dim", "is " + std::to_string(r.integer("head_dim")) +
                           " but the v head dimension is " + std::to_string(c.vHeadDim()));
  for (auto [key, id] : {std::pair<const char *, int64_t>{"bos_token_id", c.bosTokenId},
                         {"eos_token_id", c.eosTokenId},
                         {"pad_token_id", c.padTokenId}})
    if (id >= c.vocabSize)
      r.fail(key, "is " + std::to_string(id) + ", outside the vocabulary of " +
                      std::to_string(c.vocabSize));

  static const std::set<std::string> kUsedFields = {
      "model_type", "embedding_dim", "hidden_size", "num_blocks", "num_hidden_layers",
      "num_heads", "vocab_size", "qk_dim_factor", "v_dim_factor", "ffn_proj_factor",
      "ffn_round_up_to_multiple_of", "norm_eps", "cell_norm_eps", "eps", "gate_soft_cap",
      "output_logit_soft_cap", "tie_word_embeddings", "add_out_norm", "add_post_blocks_norm",
      "xlc_input_gate", "inference_state_dtype", "chunk_size", "bos_token_id", "eos_token_id",
      "pad_token_id", "use_bias", "weight_mode", "add_qk_norm", "add_post_norm",
      "add_embedding_dropout", "norm_reduction_force_float32", "head_dim", "_name_or_path"};
  for (const auto &[key, value] : root.items()) {
    if (kUsedFields.count(key))
      continue;
    if (kIgnoredFields.count(key))
      c.ignoredFields.push_back(key);
    else
      c.warnings.push_back("unknown field '" + key + "' ignored");
  }

  if (r.has("_name_or_path"))
    c.hfName = r.string("_name_or_path");
  return c;
}

ModelConfig loadModelConfig(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ConfigError(path + ": cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  ModelConfig config = parseModelConfig(text.str(), path);
  std::filesystem::path p = std::filesystem::absolute(path);
  config.name = p.parent_path().filename().string();
  if (config.name.empty())
    config.name = p.stem().string();
  return config;
}

} // namespace xlc::models
