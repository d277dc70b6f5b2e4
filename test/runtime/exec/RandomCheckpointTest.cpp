//===- RandomCheckpointTest.cpp - config.json mapping and checkpoint round trips ===//

#include "runtime/reference/RandomCheckpoint.h"
#include "runtime/support/Error.h"
#include "runtime/support/MappedFile.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"

#include "test/runtime/ErrorMatchers.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <filesystem>
#include <string>
#include <unistd.h>

namespace xlc::ref {
namespace {
namespace fs = std::filesystem;

/// A fresh directory under the system temp dir, removed with the object.
class TempDir {
public:
  explicit TempDir(const std::string &tag)
      : path_(fs::temp_directory_path() /
              fmt::format("xlc-{}-{}-{}", tag, ::getpid(), counter()++)) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string &name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

private:
  static int &counter() {
    static int c = 0;
    return c;
  }
  fs::path path_;
};

std::string modelConfigPath(const std::string &model) {
  return std::string(XLC_SOURCE_DIR) + "/models/" + model + "/config.json";
}

using xlc::testing::expectError;

TEST(ModelConfigFromHfJsonTest, TinyModel) {
  const ModelConfig c = modelConfigFromHfJson(modelConfigPath("xlstm-tiny"));
  EXPECT_EQ(c.embeddingDim, 64);
  EXPECT_EQ(c.numHeads, 4);
  EXPECT_EQ(c.qkDim, 32);
  EXPECT_EQ(c.vDim, 64);
  EXPECT_EQ(c.ffnDim, 192); // round_up(64 * 2.667, 64)
  EXPECT_EQ(c.numBlocks, 2);
  EXPECT_EQ(c.vocabSize, 50304);
  EXPECT_EQ(c.normEps, 1e-6);
  EXPECT_EQ(c.layerNormEps, 1e-6);
  EXPECT_EQ(c.cellEps, 1e-6);
  EXPECT_EQ(c.gateSoftCap, 15.0);
  EXPECT_EQ(c.outputLogitSoftCap, 30.0);
  EXPECT_EQ(c.inputGate, InputGate::Exp);
  EXPECT_EQ(c.normalizer, Normalizer::MaxAbs);
  EXPECT_FALSE(c.tieWordEmbeddings);
  EXPECT_TRUE(c.addOutNorm);
}

TEST(ModelConfigFromHfJsonTest, SigmoidTiedVariant) {
  const ModelConfig c = modelConfigFromHfJson(modelConfigPath("xlstm-sig-tied"));
  EXPECT_EQ(c.embeddingDim, 128);
  EXPECT_EQ(c.qkDim, 32);
  EXPECT_EQ(c.vDim, 64);
  EXPECT_EQ(c.ffnDim, 256);
  EXPECT_EQ(c.normEps, 1e-5);
  EXPECT_EQ(c.layerNormEps, 1e-5); // cell_norm_eps defaults to norm_eps
  EXPECT_FALSE(c.gateSoftCap.has_value());
  EXPECT_FALSE(c.outputLogitSoftCap.has_value());
  EXPECT_EQ(c.inputGate, InputGate::Sigmoid);
  EXPECT_TRUE(c.tieWordEmbeddings);
}

TEST(ModelConfigFromHfJsonTest, DefaultsAndOverrides) {
  const std::string base = R"({"model_type": "xlstm", "hidden_size": 32, "num_heads": 2,
    "num_hidden_layers": 1, "vocab_size": 40)";
  ModelConfig c = modelConfigFromHfJsonText(base + "}", "base");
  EXPECT_EQ(c.normEps, 1e-6);
  EXPECT_EQ(c.cellEps, 1e-6);
  EXPECT_EQ(c.gateSoftCap, 15.0);
  EXPECT_EQ(c.outputLogitSoftCap, 30.0);
  EXPECT_FALSE(c.tieWordEmbeddings);

  c = modelConfigFromHfJsonText(base + R"(, "norm_eps": 1e-4, "cell_norm_eps": 1e-3, "eps": 0,
    "gate_soft_cap": 7.5, "output_logit_soft_cap": null, "xlc_input_gate": "sigmoid"})",
                                "overrides");
  EXPECT_EQ(c.normEps, 1e-4);
  EXPECT_EQ(c.layerNormEps, 1e-3);
  EXPECT_EQ(c.cellEps, 0.0);
  EXPECT_EQ(c.gateSoftCap, 7.5);
  EXPECT_FALSE(c.outputLogitSoftCap.has_value());
  EXPECT_EQ(c.inputGate, InputGate::Sigmoid);

  std::vector<std::string> warnings;
  c = modelConfigFromHfJsonText(base + R"(, "add_out_norm": false})", "no-out-norm", &warnings);
  EXPECT_TRUE(c.addOutNorm);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("add_out_norm"), std::string::npos);
}

TEST(ModelConfigFromHfJsonTest, ErrorsNameTheSourceAndField) {
  const std::string base = R"({"model_type": "xlstm", "hidden_size": 32, "num_heads": 2,
    "num_hidden_layers": 1, "vocab_size": 40)";
  expectError([&] { modelConfigFromHfJsonText(base + R"(, "xlc_input_gate": "relu"})", "cfg.json"); },
              {"cfg.json", "xlc_input_gate", "relu"});
  expectError([&] { modelConfigFromHfJsonText(base + R"(, "gate_soft_cap": -1})", "cfg.json"); },
              {"cfg.json", "gate_soft_cap"});
  expectError([&] { modelConfigFromHfJsonText(base + R"(, "norm_eps": "small"})", "cfg.json"); },
              {"cfg.json", "norm_eps"});
  expectError([&] { modelConfigFromHfJsonText(base + R"(, "use_bias": true})", "cfg.json"); },
              {"cfg.json", "use_bias"});
  expectError([&] { modelConfigFromHfJsonText(base + R"(, "add_qk_norm": true})", "cfg.json"); },
              {"cfg.json", "add_qk_norm"});
  expectError([&] { modelConfigFromHfJsonText(R"({"model_type": "llama"})", "cfg.json"); },
              {"cfg.json", "llama"});
  expectError([&] { modelConfigFromHfJson("/no/such/config.json"); }, {"/no/such/config.json"});
}

TEST(RandomCheckpointTest, RoundTripIsExactInF32AndBf16) {
  ModelConfig config = modelConfigFromHfJson(modelConfigPath("xlstm-sig-tied"));
  config.numBlocks = 1; // smaller; the tied head is what matters here
  const ModelWeights weights = randomWeights(config, 11);
  for (weights::DType dtype : {weights::DType::F32, weights::DType::BF16}) {
    TempDir dir("ckpt");
    const CheckpointSummary s = writeCheckpoint(config, weights, dir.str(), dtype);
    EXPECT_EQ(s.tensors, 18u); // embedding, 15 per block, out_norm, lm_head (tied, stored)
    const weights::Checkpoint ckpt = weights::Checkpoint::open(dir.str());
    ASSERT_NE(ckpt.find("lm_head.weight"), nullptr);
    EXPECT_EQ(ckpt.readF32("lm_head.weight"), ckpt.readF32("backbone.embeddings.weight"));
    const ModelWeights back = readCheckpointWeights(config, ckpt);
    // Every value is the original rounded once to the file's dtype; nothing is zero.
    const auto rounded = [&](double x) -> double {
      const float f = static_cast<float>(x);
      return dtype == weights::DType::F32 ? f : weights::bf16ToF32(weights::f32ToBF16(f));
    };
    for (std::size_t i = 0; i < weights.embedding.data.size(); ++i) {
      ASSERT_EQ(back.embedding.data[i], rounded(weights.embedding.data[i]));
      ASSERT_NE(back.embedding.data[i], 0.0);
    }
    for (std::size_t i = 0; i < weights.blocks[0].igateBias.data.size(); ++i)
      ASSERT_EQ(back.blocks[0].igateBias.data[i], rounded(weights.blocks[0].igateBias.data[i]));
    // Tied, and the stored head (the embedding's copy) is read back: it is the head.
    EXPECT_EQ(back.lmHead.data, back.embedding.data);
  }
}

TEST(RandomCheckpointTest, WritesAModelDirectoryDeterministically) {
  TempDir a("rw-a"), b("rw-b");
  const std::string config = modelConfigPath("xlstm-sig-tied");
  const CheckpointSummary sa = writeRandomCheckpoint(config, a.str(), {5, weights::DType::F32});
  writeRandomCheckpoint(config, b.str(), {5, weights::DType::F32});
  EXPECT_EQ(readFile(sa.path), readFile(b.file("model.safetensors")));
  EXPECT_EQ(readFile(a.file("config.json")), readFile(config));
  EXPECT_EQ(sa.tensors, 48u);
  EXPECT_EQ(sa.parameters, 1444428u);
  TempDir c("rw-c");
  writeRandomCheckpoint(config, c.str(), {6, weights::DType::F32});
  EXPECT_NE(readFile(sa.path), readFile(c.file("model.safetensors")));
}

/// The fast generator: the same tensors (names, shapes, dtype, the tied head's copy) as the
/// reference generator's checkpoint, deterministic in the seed, and each tensor drawn by its
/// initialisation rule (mean and spread of the larger tensors; the forget-gate bias ramp).
TEST(RandomCheckpointTest, FastGeneratorDrawsTheSameInitialisation) {
  TempDir ref("rw-ref"), a("rw-fast-a"), b("rw-fast-b"), c("rw-fast-c");
  const std::string path = modelConfigPath("xlstm-sig-tied");
  const CheckpointSummary sr = writeRandomCheckpoint(path, ref.str(), {5, weights::DType::BF16});
  const CheckpointSummary sa =
      writeRandomCheckpoint(path, a.str(), {5, weights::DType::BF16, /*fast=*/true});
  writeRandomCheckpoint(path, b.str(), {5, weights::DType::BF16, true});
  writeRandomCheckpoint(path, c.str(), {6, weights::DType::BF16, true});
  EXPECT_EQ(readFile(sa.path), readFile(b.file("model.safetensors")));
  EXPECT_NE(readFile(sa.path), readFile(c.file("model.safetensors")));
  EXPECT_NE(readFile(sa.path), readFile(sr.path));
  EXPECT_EQ(sa.tensors, sr.tensors);
  EXPECT_EQ(sa.parameters, sr.parameters);
  EXPECT_EQ(sa.bytes, sr.bytes);

  const ModelConfig config = modelConfigFromHfJson(path);
  const weights::Checkpoint fast = weights::Checkpoint::open(sa.path);
  const weights::Checkpoint slow = weights::Checkpoint::open(sr.path);
  ModelWeights shapes;
  for (const WeightSlot &slot : weightSlots(config, shapes)) {
    SCOPED_TRACE(slot.name);
    const weights::TensorInfo &info = fast.get(slot.name);
    EXPECT_EQ(info.shape, slow.get(slot.name).shape);
    EXPECT_EQ(info.dtype, weights::DType::BF16);
    std::vector<float> v(static_cast<std::size_t>(numElements(slot.shape)));
    fast.readF32(info, v);
    const InitRule rule = initRule(config, slot.name);
    double mean = 0, sq = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double x = v[i] - rule.offset(static_cast<std::int64_t>(i), static_cast<std::int64_t>(v.size()));
      mean += x;
      sq += x * x;
    }
    mean /= static_cast<double>(v.size());
    const double sd = std::sqrt(std::max(0.0, sq / static_cast<double>(v.size()) - mean * mean));
    if (v.size() >= 4096) { // enough draws for a 5 % check of the spread
      EXPECT_NEAR(mean, rule.mean, 0.05 * rule.stddev + 1e-3 * std::abs(rule.mean));
      EXPECT_NEAR(sd, rule.stddev, 0.05 * rule.stddev);
    }
  }
}

// --init xlstm-7b: the 7B's training initialisation exactly (xlstm-7b.md §6.1): the o-gate and
// the gate kernels zero, gate biases -10 and linspace(3, 6), norms 1, and the random matrices
// with the Test scheme's spreads (the same rules).
TEST(RandomWeightsTest, Xlstm7bInitialisationIsExact) {
  const ModelConfig config = modelConfigFromHfJson(modelConfigPath("xlstm-tiny"));
  const ModelWeights w = randomWeights(config, 5, InitScheme::Xlstm7b);
  auto all = [](const Tensor &t, double value) {
    return std::all_of(t.data.begin(), t.data.end(), [&](double x) { return x == value; });
  };
  for (const BlockWeights &b : w.blocks) {
    EXPECT_TRUE(all(b.igate, 0.0));
    EXPECT_TRUE(all(b.fgate, 0.0));
    EXPECT_TRUE(all(b.ogate, 0.0));
    EXPECT_TRUE(all(b.igateBias, -10.0));
    EXPECT_TRUE(all(b.normMlstm, 1.0));
    EXPECT_TRUE(all(b.normFfn, 1.0));
    EXPECT_TRUE(all(b.multiheadNorm, 1.0));
    ASSERT_EQ(b.fgateBias.data.size(), 4u);
    EXPECT_EQ(b.fgateBias.data, (std::vector<double>{3.0, 4.0, 5.0, 6.0}));
    EXPECT_FALSE(all(b.q, 0.0));
  }
  EXPECT_TRUE(all(w.outNorm, 1.0));
  EXPECT_EQ(initRule(config, "backbone.blocks.0.mlstm_layer.q.weight", InitScheme::Xlstm7b).stddev,
            initRule(config, "backbone.blocks.0.mlstm_layer.q.weight").stddev);
}

} // namespace
} // namespace xlc::ref
