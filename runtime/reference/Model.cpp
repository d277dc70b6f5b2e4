//===- Model.cpp - Configuration, weights and state of an xLSTM model -----===//

#include "runtime/reference/Model.h"

#include "runtime/support/Error.h"

#include <algorithm>
#include <cmath>
#include <string_view>

namespace xlc::ref {

void ModelConfig::validate() const {
  check(embeddingDim > 0, "model config: embedding_dim must be positive, got {}", embeddingDim);
  check(numHeads > 0, "model config: num_heads must be positive, got {}", numHeads);
  check(qkDim > 0 && qkDim % numHeads == 0,
        "model config: qk_dim {} must be a positive multiple of num_heads {}", qkDim, numHeads);
  check(vDim > 0 && vDim % numHeads == 0,
        "model config: v_dim {} must be a positive multiple of num_heads {}", vDim, numHeads);
  check(ffnDim > 0, "model config: ffn_dim must be positive, got {}", ffnDim);
  check(numBlocks >= 0, "model config: num_blocks must be non-negative, got {}", numBlocks);
  check(vocabSize > 0, "model config: vocab_size must be positive, got {}", vocabSize);
  check(normEps > 0.0, "model config: norm_eps must be positive, got {}", normEps);
  check(layerNormEps > 0.0, "model config: cell_norm_eps must be positive, got {}", layerNormEps);
  check(cellEps >= 0.0, "model config: eps must be non-negative, got {}", cellEps);
  check(!gateSoftCap || *gateSoftCap > 0.0, "model config: gate_soft_cap must be positive, got {}",
        gateSoftCap.value_or(0.0));
  check(!outputLogitSoftCap || *outputLogitSoftCap > 0.0,
        "model config: output_logit_soft_cap must be positive, got {}",
        outputLogitSoftCap.value_or(0.0));
}

namespace {

/// Calls fn(name, shape, tensor) for every tensor the config requires, in checkpoint order.
/// |Weights| is ModelWeights or const ModelWeights; weights.blocks must already have numBlocks
/// entries.
template <typename Weights, typename Fn>
void forEachWeight(const ModelConfig &config, Weights &weights, Fn fn) {
  const std::int64_t d = config.embeddingDim, nh = config.numHeads, qk = config.qkDim,
                     vd = config.vDim, f = config.ffnDim, vocab = config.vocabSize;
  struct BlockEntry {
    const char *suffix;
    Tensor BlockWeights::*member;
    Shape shape;
  };
  const BlockEntry blockEntries[] = {
      {"norm_mlstm.weight", &BlockWeights::normMlstm, {d}},
      {"mlstm_layer.q.weight", &BlockWeights::q, {qk, d}},
      {"mlstm_layer.k.weight", &BlockWeights::k, {qk, d}},
      {"mlstm_layer.v.weight", &BlockWeights::v, {vd, d}},
      {"mlstm_layer.ogate_preact.weight", &BlockWeights::ogate, {vd, d}},
      {"mlstm_layer.igate_preact.weight", &BlockWeights::igate, {nh, d}},
      {"mlstm_layer.igate_preact.bias", &BlockWeights::igateBias, {nh}},
      {"mlstm_layer.fgate_preact.weight", &BlockWeights::fgate, {nh, d}},
      {"mlstm_layer.fgate_preact.bias", &BlockWeights::fgateBias, {nh}},
      {"mlstm_layer.multihead_norm.weight", &BlockWeights::multiheadNorm, {vd}},
      {"mlstm_layer.out_proj.weight", &BlockWeights::outProj, {d, vd}},
      {"norm_ffn.weight", &BlockWeights::normFfn, {d}},
      {"ffn.proj_up_gate.weight", &BlockWeights::ffnUpGate, {f, d}},
      {"ffn.proj_up.weight", &BlockWeights::ffnUp, {f, d}},
      {"ffn.proj_down.weight", &BlockWeights::ffnDown, {d, f}},
  };

  fn(std::string("backbone.embeddings.weight"), Shape{vocab, d}, weights.embedding);
  for (std::int64_t i = 0; i < config.numBlocks; ++i)
    for (const BlockEntry &entry : blockEntries)
      fn(fmt::format("backbone.blocks.{}.{}", i, entry.suffix), entry.shape,
         weights.blocks[static_cast<std::size_t>(i)].*entry.member);
  if (config.addOutNorm)
    fn(std::string("backbone.out_norm.weight"), Shape{d}, weights.outNorm);
  if (!config.tieWordEmbeddings)
    fn(std::string("lm_head.weight"), Shape{vocab, d}, weights.lmHead);
}

} // namespace

std::vector<WeightSlot> weightSlots(const ModelConfig &config, ModelWeights &weights) {
  config.validate();
  weights.blocks.resize(static_cast<std::size_t>(config.numBlocks));
  std::vector<WeightSlot> slots;
  forEachWeight(config, weights, [&](std::string name, Shape shape, Tensor &tensor) {
    slots.push_back({std::move(name), std::move(shape), &tensor});
  });
  return slots;
}

void validateWeights(const ModelConfig &config, const ModelWeights &weights) {
  config.validate();
  check(static_cast<std::int64_t>(weights.blocks.size()) == config.numBlocks,
        "model weights: {} blocks, config has num_blocks {}", weights.blocks.size(),
        config.numBlocks);
  forEachWeight(config, weights, [](const std::string &name, const Shape &shape,
                                    const Tensor &tensor) {
    check(!tensor.isEmpty(), "model weights: {} is missing (expected shape {})", name,
          shapeString(shape));
    checkShape(tensor, shape, fmt::format("model weights: {}", name));
  });
  if (config.tieWordEmbeddings && !weights.lmHead.isEmpty()) // a stored head, used when tied
    checkShape(weights.lmHead, Shape{config.vocabSize, config.embeddingDim},
               "model weights: lm_head.weight");
}

InitRule initRule(const ModelConfig &config, std::string_view name, InitScheme scheme) {
  const double d = static_cast<double>(config.embeddingDim);
  const double smallInit = std::sqrt(2.0 / (5.0 * d));
  const double wangInit = 2.0 / std::max<double>(1.0, static_cast<double>(config.numBlocks)) /
                          std::sqrt(d);
  const bool exact = scheme == InitScheme::Xlstm7b;
  auto endsWith = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  if (endsWith("norm_mlstm.weight") || endsWith("norm_ffn.weight") ||
      endsWith("multihead_norm.weight") || endsWith("out_norm.weight"))
    return {1.0, exact ? 0.0 : 0.1, false};
  if (endsWith("igate_preact.bias"))
    return {-10.0, exact ? 0.0 : 1.0, false};
  if (endsWith("fgate_preact.bias"))
    return {0.0, exact ? 0.0 : 1.0, true};
  if (exact && (endsWith("igate_preact.weight") || endsWith("fgate_preact.weight") ||
                endsWith("ogate_preact.weight")))
    return {0.0, 0.0, false};
  if (endsWith("out_proj.weight") || endsWith("proj_down.weight"))
    return {0.0, wangInit, false};
  return {0.0, smallInit, false};
}

double InitRule::offset(std::int64_t index, std::int64_t count) const {
  if (!headRamp)
    return 0.0;
  return count == 1 ? 3.0 : 3.0 + 3.0 * static_cast<double>(index) / static_cast<double>(count - 1);
}

ModelWeights randomWeights(const ModelConfig &config, std::uint64_t seed, InitScheme scheme) {
  ModelWeights weights;
  std::vector<WeightSlot> slots = weightSlots(config, weights);
  Random rng(seed);
  for (WeightSlot &slot : slots) {
    const InitRule rule = initRule(config, slot.name, scheme);
    *slot.tensor = rng.normal(slot.shape, rule.mean, rule.stddev);
    const std::int64_t n = static_cast<std::int64_t>(slot.tensor->data.size());
    for (std::int64_t i = 0; i < n; ++i)
      slot.tensor->data[i] += rule.offset(i, n);
  }
  return weights;
}

ModelState ModelState::zeros(const ModelConfig &config, std::int64_t batch) {
  config.validate();
  check(batch >= 0, "model state: batch must be non-negative, got {}", batch);
  ModelState state;
  for (std::int64_t i = 0; i < config.numBlocks; ++i)
    state.blocks.push_back(
        MlstmStates::zeros(batch, config.numHeads, config.qkHeadDim(), config.vHeadDim()));
  return state;
}

} // namespace xlc::ref
