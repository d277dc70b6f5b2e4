//===- XlstmWeights.cpp - The tensors of an xLSTM checkpoint --------------===//

#include "runtime/weights/XlstmWeights.h"

#include "runtime/support/Error.h"

namespace xlc::weights {

std::vector<ExpectedTensor> xlstmExpectedTensors(const config::ModelConfig &config,
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
    if (config.weightMode == config::WeightMode::Single) {
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
    if (config.weightMode == config::WeightMode::Single) {
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

std::vector<ExpectedTensor> xlstmExpectedTensorsForConfigFile(const std::string &path,
                                                              config::ModelConfig *parsed) {
  config::ModelConfig config = config::loadModelConfig(path);
  std::vector<ExpectedTensor> expected = xlstmExpectedTensors(config);
  if (parsed)
    *parsed = std::move(config);
  return expected;
}

} // namespace xlc::weights
