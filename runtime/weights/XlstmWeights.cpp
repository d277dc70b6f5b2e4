//===- XlstmWeights.cpp - The tensors of an xLSTM checkpoint --------------===//

#include "runtime/weights/XlstmWeights.h"

#include "runtime/support/Error.h"
#include "runtime/support/MappedFile.h"
#include "runtime/weights/JsonUtil.h"

#include <cmath>
#include <limits>

namespace xlc::weights {

namespace {

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

constexpr std::int64_t kMaxWidth = std::int64_t{1} << 22; // any dimension of a sane model
constexpr std::int64_t kMaxBlocks = std::int64_t{1} << 16;

} // namespace

std::int64_t roundUpToMultipleOf(double x, std::int64_t multiple) {
  double m = static_cast<double>(multiple);
  return pythonInt(pythonFloorDiv(x + m - 1.0, m) * m);
}

std::int64_t XlstmConfig::qkDim() const {
  return pythonInt(static_cast<double>(embeddingDim) * qkDimFactor);
}

std::int64_t XlstmConfig::vDim() const {
  return pythonInt(static_cast<double>(embeddingDim) * vDimFactor);
}

std::int64_t XlstmConfig::ffnDim() const {
  return roundUpToMultipleOf(static_cast<double>(embeddingDim) * ffnProjFactor,
                             ffnRoundUpToMultipleOf);
}

void XlstmConfig::validate() const {
  auto checkSize = [](std::int64_t value, std::int64_t max, const char *field) {
    check(value >= 1 && value <= max, "xLSTM config: {} = {} must be in [1, {}]", field, value,
          max);
  };
  checkSize(embeddingDim, kMaxWidth, "embedding_dim");
  checkSize(numHeads, kMaxWidth, "num_heads");
  checkSize(numBlocks, kMaxBlocks, "num_blocks");
  checkSize(vocabSize, kMaxWidth, "vocab_size");
  checkSize(ffnRoundUpToMultipleOf, kMaxWidth, "ffn_round_up_to_multiple_of");
  auto checkFactor = [](double value, const char *field) {
    check(std::isfinite(value) && value > 0 && value <= 64,
          "xLSTM config: {} = {} must be in "
          "(0, 64]",
          field, value);
  };
  checkFactor(qkDimFactor, "qk_dim_factor");
  checkFactor(vDimFactor, "v_dim_factor");
  checkFactor(ffnProjFactor, "ffn_proj_factor");
  // Factors up to 64 on widths up to 2^22 keep every product far below 2^53.
  checkSize(qkDim(), kMaxWidth * 64, "qk_dim (embedding_dim * qk_dim_factor)");
  checkSize(vDim(), kMaxWidth * 64, "v_dim (embedding_dim * v_dim_factor)");
  checkSize(ffnDim(), kMaxWidth * 128, "ffn dim (embedding_dim * ffn_proj_factor, rounded up)");
  check(qkDim() % numHeads == 0,
        "xLSTM config: qk_dim {} (= int({} * {})) is not a multiple of "
        "num_heads {}",
        qkDim(), embeddingDim, qkDimFactor, numHeads);
  check(vDim() % numHeads == 0,
        "xLSTM config: v_dim {} (= int({} * {})) is not a multiple of "
        "num_heads {}",
        vDim(), embeddingDim, vDimFactor, numHeads);
}

std::string XlstmConfig::summary() const {
  return fmt::format("xLSTM d={}, {} block{}, {} heads (qk {}, v {}), ffn {}, vocab {}, {}{}{}",
                     embeddingDim, numBlocks, numBlocks == 1 ? "" : "s", numHeads, qkDim(), vDim(),
                     ffnDim(), vocabSize, tieWordEmbeddings ? "tied" : "untied",
                     useBias ? ", biases" : "",
                     weightMode == XlstmWeightMode::Fused ? ", fused weights" : "");
}

namespace {

class ConfigReader {
public:
  ConfigReader(const nlohmann::json &root, std::string_view source)
      : root_(root), source_(source) {}

  const nlohmann::json *field(const char *key) const {
    auto it = root_.find(key);
    if (it == root_.end() || it->is_null()) // transformers writes null for unset optionals
      return nullptr;
    return &*it;
  }

  std::optional<std::int64_t> integer(const char *key) const {
    const nlohmann::json *v = field(key);
    if (v == nullptr)
      return std::nullopt;
    if (v->is_number_unsigned() && v->get<std::uint64_t>() <= std::uint64_t{1} << 62)
      return static_cast<std::int64_t>(v->get<std::uint64_t>());
    if (v->is_number_integer() && !v->is_number_unsigned())
      return v->get<std::int64_t>(); // negative: validate() reports it with the field name
    fail("{}: '{}' must be an integer, found {}", source_, key, jsonTypeName(*v));
  }

  std::optional<double> number(const char *key) const {
    const nlohmann::json *v = field(key);
    if (v == nullptr)
      return std::nullopt;
    if (!v->is_number())
      fail("{}: '{}' must be a number, found {}", source_, key, jsonTypeName(*v));
    return v->get<double>();
  }

  std::optional<bool> boolean(const char *key) const {
    const nlohmann::json *v = field(key);
    if (v == nullptr)
      return std::nullopt;
    if (!v->is_boolean())
      fail("{}: '{}' must be true or false, found {}", source_, key, jsonTypeName(*v));
    return v->get<bool>();
  }

  std::optional<std::string> string(const char *key) const {
    const nlohmann::json *v = field(key);
    if (v == nullptr)
      return std::nullopt;
    if (!v->is_string())
      fail("{}: '{}' must be a string, found {}", source_, key, jsonTypeName(*v));
    return v->get<std::string>();
  }

  /// transformers treats `a` and `b` as one field under two names.
  std::optional<std::int64_t> aliased(const char *a, const char *b) const {
    std::optional<std::int64_t> x = integer(a), y = integer(b);
    if (x && y && *x != *y)
      fail("{}: '{}' = {} and '{}' = {} disagree (they name the same size)", source_, a, *x, b, *y);
    return x ? x : y;
  }

private:
  const nlohmann::json &root_;
  std::string_view source_;
};

} // namespace

XlstmConfig XlstmConfig::fromHfConfigJson(std::string_view jsonText, std::string_view source) {
  nlohmann::json root = parseStrictJson(jsonText, source, /*maxDepth=*/16);
  if (!root.is_object())
    fail("{}: a config must be a JSON object, found {}", source, jsonTypeName(root));
  ConfigReader r(root, source);
  if (auto type = r.string("model_type"); type && *type != "xlstm")
    fail("{}: model_type is {}, not 'xlstm'; only xLSTM checkpoints can be checked", source,
         quoteName(*type));

  XlstmConfig c; // defaults of transformers' xLSTMConfig (= xLSTM 7B)
  c.embeddingDim = r.aliased("hidden_size", "embedding_dim").value_or(c.embeddingDim);
  c.numBlocks = r.aliased("num_hidden_layers", "num_blocks").value_or(c.numBlocks);
  c.numHeads = r.integer("num_heads").value_or(c.numHeads);
  c.vocabSize = r.integer("vocab_size").value_or(c.vocabSize);
  c.qkDimFactor = r.number("qk_dim_factor").value_or(c.qkDimFactor);
  c.vDimFactor = r.number("v_dim_factor").value_or(c.vDimFactor);
  c.ffnProjFactor = r.number("ffn_proj_factor").value_or(c.ffnProjFactor);
  c.ffnRoundUpToMultipleOf =
      r.integer("ffn_round_up_to_multiple_of").value_or(c.ffnRoundUpToMultipleOf);
  c.tieWordEmbeddings = r.boolean("tie_word_embeddings").value_or(c.tieWordEmbeddings);
  c.addOutNorm = r.boolean("add_out_norm").value_or(c.addOutNorm);
  c.useBias = r.boolean("use_bias").value_or(c.useBias);
  if (auto mode = r.string("weight_mode")) {
    if (*mode == "single")
      c.weightMode = XlstmWeightMode::Single;
    else if (*mode == "fused")
      c.weightMode = XlstmWeightMode::Fused;
    else
      fail("{}: weight_mode is {}, expected 'single' or 'fused'", source, quoteName(*mode));
  }
  try {
    c.validate();
  } catch (const Error &e) {
    fail("{}: {}", source, e.what());
  }
  return c;
}

XlstmConfig XlstmConfig::fromHfConfigFile(const std::string &path) {
  MappedFile file = MappedFile::open(path);
  check(file.size() <= 10'000'000, "'{}': {} bytes is too large for a config.json", path,
        file.size());
  return fromHfConfigJson(
      std::string_view(reinterpret_cast<const char *>(file.data()), file.size()),
      fmt::format("'{}'", path));
}

std::vector<ExpectedTensor> xlstmExpectedTensors(const XlstmConfig &config,
                                                 std::vector<DType> dtypes) {
  config.validate();
  const std::int64_t d = config.embeddingDim, heads = config.numHeads, qk = config.qkDim(),
                     v = config.vDim(), ffn = config.ffnDim(), vocab = config.vocabSize;
  const bool bias = config.useBias;
  std::vector<ExpectedTensor> out;
  auto add = [&](std::string name, std::vector<std::int64_t> shape, bool optional = false) {
    out.push_back(ExpectedTensor{std::move(name), dtypes, std::move(shape), optional});
  };
  // A linear layer [out, in], with a bias [out] when |withBias|.
  auto linear = [&](const std::string &prefix, std::int64_t outDim, std::int64_t inDim,
                    bool withBias) {
    add(prefix + ".weight", {outDim, inDim});
    if (withBias)
      add(prefix + ".bias", {outDim});
  };
  auto norm = [&](const std::string &prefix, std::int64_t width) {
    add(prefix + ".weight", {width});
    if (bias)
      add(prefix + ".bias", {width});
  };

  add("backbone.embeddings.weight", {vocab, d});
  for (std::int64_t i = 0; i < config.numBlocks; ++i) {
    std::string block = fmt::format("backbone.blocks.{}.", i);
    std::string layer = block + "mlstm_layer.";
    norm(block + "norm_mlstm", d);
    if (config.weightMode == XlstmWeightMode::Single) {
      linear(layer + "q", qk, d, bias);
      linear(layer + "k", qk, d, bias);
      linear(layer + "v", v, d, bias);
      linear(layer + "ogate_preact", v, d, bias);
      linear(layer + "igate_preact", heads, d, /*withBias=*/true); // gates always have biases
      linear(layer + "fgate_preact", heads, d, /*withBias=*/true);
    } else {
      linear(layer + "qkv_opreact", 2 * qk + 2 * v, d, bias);
      linear(layer + "ifgate_preact", 2 * heads, d, /*withBias=*/true);
    }
    norm(layer + "multihead_norm", v);
    linear(layer + "out_proj", d, v, bias);
    norm(block + "norm_ffn", d);
    if (config.weightMode == XlstmWeightMode::Single) {
      linear(block + "ffn.proj_up_gate", ffn, d, bias);
      linear(block + "ffn.proj_up", ffn, d, bias);
    } else {
      linear(block + "ffn.proj_up_gate_z", 2 * ffn, d, bias);
    }
    linear(block + "ffn.proj_down", d, ffn, bias);
  }
  add("backbone.out_norm.weight", {d}, /*optional=*/!config.addOutNorm);
  add("lm_head.weight", {vocab, d}, /*optional=*/config.tieWordEmbeddings);
  return out;
}

} // namespace xlc::weights
