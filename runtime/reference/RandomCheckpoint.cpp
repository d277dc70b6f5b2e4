//===- RandomCheckpoint.cpp - Reference configs and checkpoints on disk ---===//

#include "runtime/reference/RandomCheckpoint.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "runtime/support/Error.h"
#include "runtime/support/MappedFile.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/SafetensorsWriter.h"

#include <fmt/ranges.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>

namespace xlc::ref {
namespace fs = std::filesystem;

namespace {

std::vector<std::int64_t> shapeOf(const Shape &shape) { return {shape.begin(), shape.end()}; }

} // namespace

ModelConfig referenceConfig(const config::ModelConfig &parsed) {
  config::checkSupported(parsed);
  ModelConfig c;
  c.embeddingDim = parsed.embeddingDim;
  c.numHeads = parsed.numHeads;
  c.qkDim = parsed.qkDim();
  c.vDim = parsed.vDim();
  c.ffnDim = parsed.ffnDim();
  c.numBlocks = parsed.numBlocks;
  c.vocabSize = parsed.vocabSize;
  c.normEps = parsed.normEps;
  c.layerNormEps = parsed.mhNormEps;
  c.cellEps = parsed.cellEps;
  c.gateSoftCap = parsed.gateSoftCap;
  c.outputLogitSoftCap = parsed.outputLogitSoftCap;
  c.tieWordEmbeddings = parsed.tieWordEmbeddings;
  // Hugging Face's xLSTMModel creates and applies out_norm whatever add_out_norm says; so does
  // the compiler (docs/parity/hf-checkpoints.md).
  c.addOutNorm = true;
  c.inputGate =
      parsed.inputGate == config::InputGate::Sigmoid ? InputGate::Sigmoid : InputGate::Exp;
  c.normalizer = Normalizer::MaxAbs;
  try {
    c.validate();
  } catch (const Error &e) {
    fail("{}: {}", parsed.source.empty() ? "model config" : parsed.source, e.what());
  }
  return c;
}

namespace {

ModelConfig fromParsed(const config::ModelConfig &parsed, std::vector<std::string> *warnings) {
  ModelConfig c = referenceConfig(parsed);
  if (warnings)
    warnings->insert(warnings->end(), parsed.warnings.begin(), parsed.warnings.end());
  return c;
}

} // namespace

ModelConfig modelConfigFromHfJsonText(std::string_view jsonText, std::string_view source,
                                      std::vector<std::string> *warnings) {
  return fromParsed(config::parseModelConfig(jsonText, source), warnings);
}

ModelConfig modelConfigFromHfJson(const std::string &path, std::vector<std::string> *warnings) {
  return fromParsed(config::loadModelConfig(path), warnings);
}

namespace {

/// Writes |tensors| as <directory>/model.safetensors (the directory created if missing) and
/// completes |summary| with the tensor count and the path.
CheckpointSummary writeTensors(const std::string &directory,
                               const std::vector<weights::TensorToWrite> &tensors,
                               CheckpointSummary summary) {
  summary.tensors = tensors.size();
  std::error_code ec;
  fs::create_directories(directory, ec);
  check(!ec, "cannot create the directory '{}': {}", directory, ec.message());
  summary.path = (fs::path(directory) / weights::kSingleFileName).string();
  weights::writeSafetensors(summary.path, tensors, {{"format", "pt"}});
  return summary;
}

} // namespace

CheckpointSummary writeCheckpoint(const ModelConfig &config, const ModelWeights &weights,
                                  const std::string &directory, weights::DType dtype) {
  check(dtype == weights::DType::F32 || dtype == weights::DType::BF16,
        "writeCheckpoint: dtype must be F32 or BF16, got {}", weights::dtypeName(dtype));
  validateWeights(config, weights);
  // weightSlots wants a mutable ModelWeights; it only points into it, nothing is modified.
  ModelWeights &source = const_cast<ModelWeights &>(weights);
  std::vector<WeightSlot> slots = weightSlots(config, source);
  if (config.tieWordEmbeddings) // save_pretrained stores the tied head anyway
    slots.push_back({"lm_head.weight", weights.embedding.shape,
                     source.lmHead.isEmpty() ? &source.embedding : &source.lmHead});

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
  return writeTensors(directory, tensors, std::move(summary));
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
  // Tied, but a stored lm_head.weight is the head transformers 5 uses: the reference too.
  if (const weights::TensorInfo *head = config.tieWordEmbeddings
                                           ? checkpoint.find("lm_head.weight")
                                           : nullptr) {
    const Shape shape{config.vocabSize, config.embeddingDim};
    check(head->shape == shapeOf(shape), "{}: tensor 'lm_head.weight' has shape [{}], expected {}",
          checkpoint.fileOf(*head), fmt::join(head->shape, ", "), shapeString(shape));
    std::vector<float> values(static_cast<std::size_t>(numElements(shape)));
    checkpoint.readF32(*head, values);
    weights.lmHead = Tensor(shape, std::vector<double>(values.begin(), values.end()));
  }
  validateWeights(config, weights);
  return weights;
}

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// Normal(0, 1) for element |index| of stream |stream|: Box–Muller on two 53-bit uniforms drawn
/// from the element's own counters, so any thread can draw any element.
double counterNormal(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  const std::uint64_t base = splitmix64(seed ^ splitmix64(stream + 1)) + 2 * index;
  const double u1 = (static_cast<double>(splitmix64(base) >> 11) + 1.0) * 0x1.0p-53; // (0, 1]
  const double u2 = static_cast<double>(splitmix64(base + 1) >> 11) * 0x1.0p-53;     // [0, 1)
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

/// The checkpoint's tensors drawn directly in their on-disk dtype, slot by slot, each slot's
/// elements split over the cores (RandomCheckpointOptions::fast).
CheckpointSummary writeFastCheckpoint(const ModelConfig &config, const std::string &directory,
                                      const RandomCheckpointOptions &options) {
  ModelWeights shapes; // weightSlots only points into it; nothing is allocated
  std::vector<WeightSlot> slots = weightSlots(config, shapes);
  const std::size_t elementSize = weights::dtypeSize(options.dtype);
  std::vector<std::vector<std::uint8_t>> data(slots.size());
  std::vector<weights::TensorToWrite> tensors;
  CheckpointSummary summary;
  summary.dtype = options.dtype;
  const unsigned workers = std::max(1u, std::thread::hardware_concurrency());
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const InitRule rule = initRule(config, slots[i].name, options.init);
    const std::int64_t n = numElements(slots[i].shape);
    std::vector<std::uint8_t> &bytes = data[i];
    bytes.resize(static_cast<std::size_t>(n) * elementSize);
    auto fill = [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t j = begin; j < end; ++j) {
        const float f = static_cast<float>(
            rule.mean + rule.stddev * counterNormal(options.seed, i, static_cast<std::uint64_t>(j)) +
            rule.offset(j, n));
        if (options.dtype == weights::DType::F32) {
          std::memcpy(bytes.data() + 4 * j, &f, 4);
        } else {
          const std::uint16_t b = weights::f32ToBF16(f);
          std::memcpy(bytes.data() + 2 * j, &b, 2);
        }
      }
    };
    const std::int64_t per = (n + workers - 1) / workers;
    std::vector<std::thread> threads;
    for (unsigned w = 0; w < workers && static_cast<std::int64_t>(w) * per < n; ++w)
      threads.emplace_back(fill, w * per, std::min<std::int64_t>(n, (w + 1) * per));
    for (std::thread &t : threads)
      t.join();
    tensors.push_back({slots[i].name, options.dtype, shapeOf(slots[i].shape), bytes});
    summary.parameters += static_cast<std::uint64_t>(n);
    summary.bytes += bytes.size();
  }
  if (config.tieWordEmbeddings) // save_pretrained stores the tied head anyway: the same bytes
    for (std::size_t i = 0; i < slots.size(); ++i)
      if (slots[i].tensor == &shapes.embedding) {
        tensors.push_back({"lm_head.weight", options.dtype, shapeOf(slots[i].shape), data[i]});
        summary.parameters += static_cast<std::uint64_t>(numElements(slots[i].shape));
        summary.bytes += data[i].size();
      }
  return writeTensors(directory, tensors, std::move(summary));
}

} // namespace

CheckpointSummary writeRandomCheckpoint(const std::string &configPath, const std::string &outDir,
                                        const RandomCheckpointOptions &options) {
  const std::string text = readFile(configPath);
  const ModelConfig config = modelConfigFromHfJsonText(text, configPath);
  CheckpointSummary summary;
  if (options.fast) {
    summary = writeFastCheckpoint(config, outDir, options);
  } else {
    const ModelWeights weights = randomWeights(config, options.seed, options.init);
    summary = writeCheckpoint(config, weights, outDir, options.dtype);
  }

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
