//===- RandomCheckpoint.cpp - Reference configs and checkpoints on disk ---===//

#include "runtime/reference/RandomCheckpoint.h"

#include "runtime/support/Error.h"
#include "runtime/support/MappedFile.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/JsonUtil.h"
#include "runtime/weights/SafetensorsWriter.h"
#include "runtime/weights/XlstmWeights.h"

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>

namespace xlc::ref {
namespace fs = std::filesystem;

namespace {

/// Typed optional fields of a config object; every error names the source and the field.
class Fields {
public:
  Fields(const nlohmann::json &root, std::string_view source) : root_(root), source_(source) {}

  /// Present (possibly null).
  bool present(const char *key) const { return root_.contains(key); }
  /// Present and not null.
  bool has(const char *key) const {
    auto it = root_.find(key);
    return it != root_.end() && !it->is_null();
  }

  double number(const char *key) const {
    const nlohmann::json &v = root_.at(key);
    check(v.is_number(), "{}: field '{}' must be a number, found {}", source_, key,
          weights::jsonTypeName(v));
    const double d = v.get<double>();
    check(std::isfinite(d), "{}: field '{}' must be finite, got {}", source_, key, v.dump());
    return d;
  }
  double positive(const char *key) const {
    const double d = number(key);
    check(d > 0.0, "{}: field '{}' must be positive, got {}", source_, key, root_.at(key).dump());
    return d;
  }
  bool boolean(const char *key) const {
    const nlohmann::json &v = root_.at(key);
    check(v.is_boolean(), "{}: field '{}' must be true or false, found {}", source_, key,
          weights::jsonTypeName(v));
    return v.get<bool>();
  }
  std::string string(const char *key) const {
    const nlohmann::json &v = root_.at(key);
    check(v.is_string(), "{}: field '{}' must be a string, found {}", source_, key,
          weights::jsonTypeName(v));
    return v.get<std::string>();
  }

private:
  const nlohmann::json &root_;
  std::string_view source_;
};

std::vector<std::int64_t> shapeOf(const Shape &shape) { return {shape.begin(), shape.end()}; }

} // namespace

ModelConfig modelConfigFromHfJsonText(std::string_view jsonText, std::string_view source,
                                      std::vector<std::string> *warnings) {
  // Sizes exactly as transformers computes them (int() truncation of the widths, Python's
  // round-up of the FFN width), with the same field aliases and validation.
  const weights::XlstmConfig sizes = weights::XlstmConfig::fromHfConfigJson(jsonText, source);
  check(!sizes.useBias, "{}: field 'use_bias' is true; xlc supports only bias-free projections",
        source);
  check(sizes.weightMode == weights::XlstmWeightMode::Single,
        "{}: field 'weight_mode' is \"fused\"; xlc reads single-weight checkpoints", source);

  const nlohmann::json root = weights::parseStrictJson(jsonText, source, /*maxDepth=*/16);
  const Fields f(root, source);
  ModelConfig c;
  c.embeddingDim = sizes.embeddingDim;
  c.numHeads = sizes.numHeads;
  c.qkDim = sizes.qkDim();
  c.vDim = sizes.vDim();
  c.ffnDim = sizes.ffnDim();
  c.numBlocks = sizes.numBlocks;
  c.vocabSize = sizes.vocabSize;

  // The numerics fields, mirroring models/import/ModelConfig.cpp (parseModelConfig).
  c.normEps = f.has("norm_eps") ? f.positive("norm_eps") : 1e-6;
  c.layerNormEps = f.has("cell_norm_eps") ? f.positive("cell_norm_eps") : c.normEps;
  c.cellEps = 1e-6;
  if (f.has("eps")) {
    c.cellEps = f.number("eps");
    check(c.cellEps >= 0.0, "{}: field 'eps' must be non-negative, got {}", source, c.cellEps);
  }
  // A soft cap that is present and null is disabled; absent means the 7B's default.
  c.gateSoftCap = 15.0;
  c.outputLogitSoftCap = 30.0;
  if (f.present("gate_soft_cap"))
    c.gateSoftCap = f.has("gate_soft_cap") ? std::optional<double>(f.positive("gate_soft_cap"))
                                           : std::nullopt;
  if (f.present("output_logit_soft_cap"))
    c.outputLogitSoftCap = f.has("output_logit_soft_cap")
                               ? std::optional<double>(f.positive("output_logit_soft_cap"))
                               : std::nullopt;
  c.tieWordEmbeddings = f.has("tie_word_embeddings") && f.boolean("tie_word_embeddings");
  // Hugging Face's xLSTMModel creates and applies out_norm whatever add_out_norm says; so does
  // the compiler (docs/parity/hf-checkpoints.md).
  c.addOutNorm = true;
  for (const char *key : {"add_out_norm", "add_post_blocks_norm"})
    if (f.has(key) && !f.boolean(key) && warnings)
      warnings->push_back(fmt::format("{} is false, but Hugging Face's xLSTMModel applies "
                                      "out_norm regardless; xlc does the same",
                                      key));
  c.inputGate = InputGate::Exp;
  if (f.has("xlc_input_gate")) {
    const std::string kind = f.string("xlc_input_gate");
    if (kind == "sigmoid")
      c.inputGate = InputGate::Sigmoid;
    else
      check(kind == "exp", "{}: field 'xlc_input_gate' must be \"exp\" or \"sigmoid\", got \"{}\"",
            source, kind);
  }
  c.normalizer = Normalizer::MaxAbs;
  for (const char *key : {"add_qk_norm", "add_post_norm", "add_embedding_dropout"})
    check(!(f.has(key) && f.boolean(key)),
          "{}: field '{}' is true; this block variant is not supported (it must be false)", source,
          key);
  try {
    c.validate();
  } catch (const Error &e) {
    fail("{}: {}", source, e.what());
  }
  return c;
}

ModelConfig modelConfigFromHfJson(const std::string &path, std::vector<std::string> *warnings) {
  const std::string text = readFile(path);
  return modelConfigFromHfJsonText(text, fmt::format("'{}'", path), warnings);
}

CheckpointSummary writeCheckpoint(const ModelConfig &config, const ModelWeights &weights,
                                  const std::string &directory, weights::DType dtype) {
  check(dtype == weights::DType::F32 || dtype == weights::DType::BF16,
        "writeCheckpoint: dtype must be F32 or BF16, got {}", weights::dtypeName(dtype));
  validateWeights(config, weights);
  // weightSlots wants a mutable ModelWeights; it only points into it, nothing is modified.
  ModelWeights &source = const_cast<ModelWeights &>(weights);
  std::vector<WeightSlot> slots = weightSlots(config, source);
  if (config.tieWordEmbeddings) // save_pretrained stores the tied head anyway
    slots.push_back({"lm_head.weight", weights.embedding.shape, &source.embedding});

  const std::size_t elementSize = weights::dtypeSize(dtype);
  std::vector<std::vector<std::uint8_t>> data(slots.size());
  std::vector<weights::TensorToWrite> tensors;
  CheckpointSummary summary;
  summary.dtype = dtype;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const std::vector<double> &values = slots[i].tensor->data;
    std::vector<std::uint8_t> &bytes = data[i];
    bytes.resize(values.size() * elementSize);
    for (std::size_t j = 0; j < values.size(); ++j) {
      const float f = static_cast<float>(values[j]);
      if (dtype == weights::DType::F32) {
        std::memcpy(bytes.data() + 4 * j, &f, 4);
      } else {
        const std::uint16_t b = weights::f32ToBF16(f);
        std::memcpy(bytes.data() + 2 * j, &b, 2);
      }
    }
    tensors.push_back({slots[i].name, dtype, shapeOf(slots[i].shape), bytes});
    summary.parameters += values.size();
    summary.bytes += bytes.size();
  }
  summary.tensors = tensors.size();

  std::error_code ec;
  fs::create_directories(directory, ec);
  check(!ec, "cannot create the directory '{}': {}", directory, ec.message());
  summary.path = (fs::path(directory) / weights::kSingleFileName).string();
  weights::writeSafetensors(summary.path, tensors, {{"format", "pt"}});
  return summary;
}

ModelWeights readCheckpointWeights(const ModelConfig &config,
                                   const weights::Checkpoint &checkpoint) {
  ModelWeights weights;
  for (WeightSlot &slot : weightSlots(config, weights)) {
    const weights::TensorInfo &info = checkpoint.get(slot.name);
    check(info.shape == shapeOf(slot.shape), "{}: tensor '{}' has shape [{}], expected {}",
          checkpoint.path(), slot.name, fmt::join(info.shape, ", "), shapeString(slot.shape));
    std::vector<float> values(static_cast<std::size_t>(numElements(slot.shape)));
    checkpoint.readF32(info, values);
    *slot.tensor = Tensor(slot.shape, std::vector<double>(values.begin(), values.end()));
  }
  validateWeights(config, weights);
  return weights;
}

CheckpointSummary writeRandomCheckpoint(const std::string &configPath, const std::string &outDir,
                                        const RandomCheckpointOptions &options) {
  const std::string text = readFile(configPath);
  const ModelConfig config = modelConfigFromHfJsonText(text, fmt::format("'{}'", configPath));
  const ModelWeights weights = randomWeights(config, options.seed);
  CheckpointSummary summary = writeCheckpoint(config, weights, outDir, options.dtype);

  // config.json next to the weights, so the directory is a complete model (unless it is the
  // very file we read).
  const fs::path target = fs::path(outDir) / "config.json";
  std::error_code ec;
  if (!fs::exists(target, ec) || !fs::equivalent(configPath, target, ec))
    writeFileAtomically(target.string(),
                        std::span(reinterpret_cast<const std::uint8_t *>(text.data()), text.size()));
  return summary;
}

} // namespace xlc::ref
