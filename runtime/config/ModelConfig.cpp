//===- ModelConfig.cpp - xLSTM hyper-parameters from a config.json --------===//

#include "runtime/config/ModelConfig.h"

#include "runtime/support/Error.h"
#include "runtime/support/Json.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

namespace xlc::config {
namespace {

using json::Json;

constexpr std::int64_t kMaxWidth = std::int64_t{1} << 22; // any width of a sane model
constexpr std::int64_t kMaxBlocks = std::int64_t{1} << 16;
constexpr double kMaxFactor = 64.0; // keeps every derived width far below 2^53
constexpr std::size_t kMaxConfigBytes = 10'000'000;
constexpr int kMaxDepth = 16;

/// Python's float floor division (Objects/floatobject.c, float_floor_div), so rounding matches
/// transformers bit for bit, including the fmod-based correction near multiples.
double pythonFloorDiv(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0 && ((b < 0) != (mod < 0)))
    div -= 1.0;
  if (div == 0.0)
    return std::copysign(0.0, a / b);
  double floorDiv = std::floor(div);
  if (div - floorDiv > 0.5)
    floorDiv += 1.0;
  return floorDiv;
}

/// Python's int(x) for a float that validate() has bounded.
std::int64_t pythonInt(double x) { return static_cast<std::int64_t>(std::trunc(x)); }

/// A value as JSON text for messages: ASCII only, long values shortened.
std::string shown(const Json &value) {
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true);
  if (text.size() > 80)
    text = text.substr(0, 77) + "...";
  return text;
}

/// Reads typed fields out of the config object, naming the file and the field in every error.
class FieldReader {
public:
  FieldReader(const Json &object, std::string_view source) : object_(object), source_(source) {}

  template <typename... Args>
  [[noreturn]] void fail(std::string_view field, fmt::format_string<Args...> what,
                         Args &&...args) const {
    xlc::fail("{}: field '{}' {}", source_, field, fmt::format(what, std::forward<Args>(args)...));
  }

  /// Present and not null (transformers writes null for unset optionals).
  bool has(const std::string &key) const {
    auto it = object_.find(key);
    return it != object_.end() && !it->is_null();
  }
  /// Present, possibly null.
  bool present(const std::string &key) const { return object_.contains(key); }
  const Json &at(const std::string &key) const { return object_.at(key); }

  /// An integer field: a JSON integer (4.0 and 4.5 are refused).
  std::int64_t integer(const std::string &key) const {
    const Json &v = at(key);
    if (v.is_number_unsigned()) {
      std::uint64_t u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail(key, "is too large, got {}", u);
      return static_cast<std::int64_t>(u);
    }
    if (v.is_number_integer())
      return v.get<std::int64_t>();
    fail(key, "must be an integer, got {}", shown(v));
  }

  /// A size: an integer in [1, max].
  std::int64_t size(const std::string &key, std::int64_t max) const {
    std::int64_t value = integer(key);
    if (value <= 0)
      fail(key, "must be a positive integer, got {}", value);
    if (value > max)
      fail(key, "must be at most {}, got {}", max, value);
    return value;
  }

  double number(const std::string &key) const {
    const Json &v = at(key);
    if (!v.is_number())
      fail(key, "must be a number, got {}", shown(v));
    double d = v.get<double>();
    if (!std::isfinite(d))
      fail(key, "must be finite, got {}", shown(v));
    return d;
  }

  double positiveNumber(const std::string &key) const {
    double d = number(key);
    if (d <= 0.0)
      fail(key, "must be positive, got {}", shown(at(key)));
    return d;
  }

  bool boolean(const std::string &key) const {
    const Json &v = at(key);
    if (!v.is_boolean())
      fail(key, "must be true or false, got {}", shown(v));
    return v.get<bool>();
  }

  std::string string(const std::string &key) const {
    const Json &v = at(key);
    if (!v.is_string())
      fail(key, "must be a string, got {}", shown(v));
    return v.get<std::string>();
  }

  /// A token id: an integer, or a list whose first element is used (HF allows a list of EOS ids).
  std::int64_t tokenId(const std::string &key, std::vector<std::string> &warnings) const {
    const Json &v = at(key);
    if (v.is_array()) {
      if (v.empty())
        fail(key, "must be a token id or a non-empty list of token ids, got {}", shown(v));
      for (const Json &id : v)
        if (!id.is_number_integer() || (!id.is_number_unsigned() && id.get<std::int64_t>() < 0))
          fail(key, "must be a token id or a non-empty list of token ids, got {}", shown(v));
      if (v.size() > 1)
        warnings.push_back(
            fmt::format("'{}' lists several ids; xlc uses the first, {}", key, shown(v.front())));
      if (v.front().get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxWidth))
        fail(key, "is {}, outside any vocabulary", shown(v.front()));
      return v.front().get<std::int64_t>();
    }
    std::int64_t id = integer(key);
    if (id < 0)
      fail(key, "must be a non-negative token id, got {}", id);
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
        fail(b, "disagrees with its alias '{}' ({} vs {})", a, shown(at(b)), shown(at(a)));
      return va;
    }
    if (hasA)
      return read(a);
    if (hasB)
      return read(b);
    return std::nullopt;
  }

private:
  const Json &object_;
  std::string_view source_;
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

// Fields parseModelConfig reads.
const std::set<std::string> kUsedFields = {
    "model_type", "embedding_dim", "hidden_size", "num_blocks", "num_hidden_layers",
    "num_heads", "vocab_size", "qk_dim_factor", "v_dim_factor", "ffn_proj_factor",
    "ffn_round_up_to_multiple_of", "norm_eps", "cell_norm_eps", "eps", "gate_soft_cap",
    "output_logit_soft_cap", "tie_word_embeddings", "add_out_norm", "add_post_blocks_norm",
    "xlc_input_gate", "inference_state_dtype", "chunk_size", "bos_token_id", "eos_token_id",
    "pad_token_id", "use_bias", "weight_mode", "add_qk_norm", "add_post_norm",
    "add_embedding_dropout", "norm_reduction_force_float32", "head_dim", "_name_or_path"};

} // namespace

std::int64_t roundUpToMultipleOf(double x, std::int64_t multiple) {
  double m = static_cast<double>(multiple);
  return pythonInt(pythonFloorDiv(x + m - 1.0, m) * m);
}

std::int64_t ModelConfig::qkDim() const {
  return pythonInt(static_cast<double>(embeddingDim) * qkDimFactor);
}

std::int64_t ModelConfig::vDim() const {
  return pythonInt(static_cast<double>(embeddingDim) * vDimFactor);
}

std::int64_t ModelConfig::ffnDim() const {
  return roundUpToMultipleOf(static_cast<double>(embeddingDim) * ffnProjFactor,
                             ffnRoundUpToMultipleOf);
}

void ModelConfig::validate() const {
  const std::string where = source.empty() ? std::string("model config") : source;
  auto size = [&](std::int64_t value, std::int64_t max, const char *field) {
    check(value >= 1, "{}: field '{}' must be a positive integer, got {}", where, field, value);
    check(value <= max, "{}: field '{}' must be at most {}, got {}", where, field, max, value);
  };
  size(embeddingDim, kMaxWidth, "embedding_dim");
  size(numBlocks, kMaxBlocks, "num_blocks");
  size(numHeads, kMaxWidth, "num_heads");
  size(vocabSize, kMaxWidth, "vocab_size");
  size(ffnRoundUpToMultipleOf, kMaxWidth, "ffn_round_up_to_multiple_of");
  size(chunkSize, kMaxWidth, "chunk_size");
  auto factor = [&](double value, const char *field) {
    check(std::isfinite(value) && value > 0 && value <= kMaxFactor,
          "{}: field '{}' must be in (0, {}], got {}", where, field, kMaxFactor, value);
  };
  factor(qkDimFactor, "qk_dim_factor");
  factor(vDimFactor, "v_dim_factor");
  factor(ffnProjFactor, "ffn_proj_factor");
  auto positive = [&](double value, const char *field) {
    check(std::isfinite(value) && value > 0, "{}: field '{}' must be positive, got {}", where,
          field, value);
  };
  positive(normEps, "norm_eps");
  positive(mhNormEps, "cell_norm_eps");
  check(std::isfinite(cellEps) && cellEps >= 0, "{}: field 'eps' must be non-negative, got {}",
        where, cellEps);
  if (gateSoftCap)
    positive(*gateSoftCap, "gate_soft_cap");
  if (outputLogitSoftCap)
    positive(*outputLogitSoftCap, "output_logit_soft_cap");

  // Widths: d <= 2^22 and factors <= 64 keep every product far below 2^53 (exact in a double).
  const std::int64_t qk = qkDim(), v = vDim();
  check(qk > 0, "{}: field 'qk_dim_factor' gives an empty qk dimension ({})", where, qk);
  check(v > 0, "{}: field 'v_dim_factor' gives an empty v dimension ({})", where, v);
  check(qk % numHeads == 0,
        "{}: field 'num_heads' ({}) does not divide the qk dimension {} = int({} * "
        "qk_dim_factor)",
        where, numHeads, qk, embeddingDim);
  check(v % numHeads == 0,
        "{}: field 'num_heads' ({}) does not divide the v dimension {} = int({} * v_dim_factor)",
        where, numHeads, v, embeddingDim);
  for (auto [field, id] : {std::pair<const char *, std::int64_t>{"bos_token_id", bosTokenId},
                           {"eos_token_id", eosTokenId},
                           {"pad_token_id", padTokenId}}) {
    check(id >= 0, "{}: field '{}' must be a non-negative token id, got {}", where, field, id);
    check(id < vocabSize, "{}: field '{}' is {}, outside the vocabulary of {}", where, field, id,
          vocabSize);
  }
}

std::string ModelConfig::summary() const {
  return fmt::format("xLSTM d={}, {} block{}, {} heads (qk {}, v {}), ffn {}, vocab {}, {}{}{}",
                     embeddingDim, numBlocks, numBlocks == 1 ? "" : "s", numHeads, qkDim(), vDim(),
                     ffnDim(), vocabSize, tieWordEmbeddings ? "tied" : "untied",
                     useBias ? ", biases" : "",
                     weightMode == WeightMode::Fused ? ", fused weights" : "");
}

ModelConfig parseModelConfig(std::string_view jsonText, std::string_view source) {
  const Json root = json::parseStrictJson(jsonText, source, kMaxDepth);
  if (!root.is_object())
    fail("{}: a config must be a JSON object, got {}", source, json::typeName(root));

  FieldReader r(root, source);
  ModelConfig c;
  c.source = std::string(source);
  auto width = [&](const std::string &k) { return r.size(k, kMaxWidth); };
  auto blocks = [&](const std::string &k) { return r.size(k, kMaxBlocks); };
  auto boolean = [&](const std::string &k) { return r.boolean(k); };

  if (r.has("model_type")) {
    std::string type = r.string("model_type");
    if (type != "xlstm")
      r.fail("model_type", "must be \"xlstm\", got {}", shown(r.at("model_type")));
  }

  if (auto v = r.aliased("embedding_dim", "hidden_size", width))
    c.embeddingDim = *v;
  if (auto v = r.aliased("num_blocks", "num_hidden_layers", blocks))
    c.numBlocks = *v;
  if (r.has("num_heads"))
    c.numHeads = width("num_heads");
  if (r.has("vocab_size"))
    c.vocabSize = width("vocab_size");
  if (r.has("qk_dim_factor"))
    c.qkDimFactor = r.positiveNumber("qk_dim_factor");
  if (r.has("v_dim_factor"))
    c.vDimFactor = r.positiveNumber("v_dim_factor");
  if (r.has("ffn_proj_factor"))
    c.ffnProjFactor = r.positiveNumber("ffn_proj_factor");
  if (r.has("ffn_round_up_to_multiple_of"))
    c.ffnRoundUpToMultipleOf = width("ffn_round_up_to_multiple_of");

  if (r.has("norm_eps"))
    c.normEps = r.positiveNumber("norm_eps");
  c.mhNormEps = r.has("cell_norm_eps") ? r.positiveNumber("cell_norm_eps") : c.normEps;
  if (r.has("eps")) {
    c.cellEps = r.number("eps");
    if (c.cellEps < 0.0)
      r.fail("eps", "must be non-negative, got {}", shown(r.at("eps")));
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
  // add_out_norm says, and save_pretrained stores its weight (docs/parity/hf-facts-*.txt).
  if (auto v = r.aliased("add_out_norm", "add_post_blocks_norm", boolean)) {
    c.addOutNorm = *v;
    if (!*v)
      c.warnings.push_back("add_out_norm is false, but Hugging Face's xLSTMModel applies "
                           "out_norm regardless; xlc does the same");
  }

  if (r.has("xlc_input_gate")) {
    std::string kind = r.string("xlc_input_gate");
    if (kind == "exp")
      c.inputGate = InputGate::Exp;
    else if (kind == "sigmoid")
      c.inputGate = InputGate::Sigmoid;
    else
      r.fail("xlc_input_gate", "must be \"exp\" or \"sigmoid\", got {}",
             shown(r.at("xlc_input_gate")));
  }
  if (r.has("inference_state_dtype")) {
    std::string dtype = r.string("inference_state_dtype");
    if (dtype == "float32")
      c.stateDtype = StateDtype::F32;
    else if (dtype == "bfloat16")
      c.stateDtype = StateDtype::BF16;
    else
      r.fail("inference_state_dtype", "must be \"float32\" or \"bfloat16\", got {}",
             shown(r.at("inference_state_dtype")));
  }
  if (r.has("chunk_size"))
    c.chunkSize = width("chunk_size");
  if (r.has("bos_token_id"))
    c.bosTokenId = r.tokenId("bos_token_id", c.warnings);
  if (r.has("eos_token_id"))
    c.eosTokenId = r.tokenId("eos_token_id", c.warnings);
  if (r.has("pad_token_id"))
    c.padTokenId = r.tokenId("pad_token_id", c.warnings);

  // Checkpoint variants: read here (the weight checks know their tensors), refused by
  // checkSupported where xlc would have to compute them.
  if (r.has("use_bias"))
    c.useBias = r.boolean("use_bias");
  if (r.has("weight_mode")) {
    std::string mode = r.string("weight_mode");
    if (mode == "single")
      c.weightMode = WeightMode::Single;
    else if (mode == "fused")
      c.weightMode = WeightMode::Fused;
    else
      r.fail("weight_mode", "must be \"single\" or \"fused\", got {}",
             shown(r.at("weight_mode")));
  }
  // Block variants with other tensors and other functions: refused everywhere.
  for (const char *key : {"add_qk_norm", "add_post_norm", "add_embedding_dropout"})
    if (r.has(key) && r.boolean(key))
      r.fail(key, "is true; this block variant is not supported (it must be false)");
  if (r.has("norm_reduction_force_float32") && !r.boolean("norm_reduction_force_float32"))
    c.warnings.push_back("norm_reduction_force_float32 is false; xlc always reduces norms in "
                         "fp32");
  if (r.has("_name_or_path"))
    c.hfName = r.string("_name_or_path");

  c.validate();
  if (r.has("head_dim")) {
    std::int64_t headDim = width("head_dim");
    if (headDim != c.vHeadDim())
      r.fail("head_dim", "is {} but the v head dimension is {}", headDim, c.vHeadDim());
  }

  for (const auto &[key, value] : root.items()) {
    if (kUsedFields.count(key))
      continue;
    if (kIgnoredFields.count(key))
      c.ignoredFields.push_back(key);
    else
      c.warnings.push_back(fmt::format("unknown field {} ignored", json::quoteText(key)));
  }
  return c;
}

ModelConfig loadModelConfig(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail("{}: cannot open the file ({})", path, std::strerror(errno));
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    fail("{}: cannot open the file (not a regular file)", path);
  if (std::uintmax_t bytes = std::filesystem::file_size(path, ec); !ec && bytes > kMaxConfigBytes)
    fail("{}: {} bytes is too large for a config.json", path, bytes);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    fail("{}: cannot read the file", path);
  ModelConfig config = parseModelConfig(text.str(), path);
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  config.name = p.parent_path().filename().string();
  if (config.name.empty())
    config.name = p.stem().string();
  return config;
}

void checkSupported(const ModelConfig &c) {
  const std::string where = c.source.empty() ? std::string("model config") : c.source;
  check(!c.useBias,
        "{}: field 'use_bias' is true; xlc supports only bias-free projections (the gate "
        "projections always have biases), as in xLSTM 7B",
        where);
  check(c.weightMode == WeightMode::Single,
        "{}: field 'weight_mode' is \"fused\"; xlc reads single-weight checkpoints and fuses "
        "projections itself, so it must be \"single\"",
        where);
}

} // namespace xlc::config
