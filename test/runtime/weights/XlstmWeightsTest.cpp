//===- XlstmWeightsTest.cpp - xLSTM tensor lists and expectation checks ---===//

#include "runtime/weights/XlstmWeights.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Expected.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

using namespace xlc::weights;
using namespace xlc::weights::testing;

namespace {

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

const ExpectedTensor *byName(const std::vector<ExpectedTensor> &list, const std::string &name) {
  for (const ExpectedTensor &e : list)
    if (e.name == name)
      return &e;
  return nullptr;
}

std::vector<TensorInfo> infos(const std::vector<ExpectedTensor> &expected, DType dtype) {
  std::vector<TensorInfo> out;
  for (const ExpectedTensor &e : expected) {
    if (e.optional)
      continue;
    TensorInfo t;
    t.name = e.name;
    t.dtype = dtype;
    t.shape = e.shape;
    t.numElements = elementCount(e.shape);
    out.push_back(t);
  }
  return out;
}

} // namespace

TEST(XlstmWeights, SevenBillionParameterCountIsExact) {
  ModelConfig config; // defaults are xLSTM 7B
  EXPECT_EQ(config.qkDim(), 2048);
  EXPECT_EQ(config.vDim(), 4096);
  EXPECT_EQ(config.ffnDim(), 10944);
  std::vector<ExpectedTensor> expected = xlstmExpectedTensors(config);
  EXPECT_EQ(expected.size(), 32u * 15u + 3u); // 483, as in reference/xlstm-7b.md §5.1
  EXPECT_EQ(parameterCount(expected), 6'865'424'896ull);
  EXPECT_EQ(parameterCount(expected) * 4, 27'461'699'584ull); // the index's total_size in fp32

  EXPECT_EQ(expected.front().name, "backbone.embeddings.weight");
  EXPECT_EQ(expected.back().name, "lm_head.weight");
  auto shapeOf = [&](const std::string &name) {
    const ExpectedTensor *e = byName(expected, name);
    EXPECT_NE(e, nullptr) << name;
    return e ? e->shape : std::vector<std::int64_t>{};
  };
  using Shape = std::vector<std::int64_t>;
  EXPECT_EQ(shapeOf("backbone.embeddings.weight"), (Shape{50304, 4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.norm_mlstm.weight"), (Shape{4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.mlstm_layer.q.weight"), (Shape{2048, 4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.7.mlstm_layer.k.weight"), (Shape{2048, 4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.31.mlstm_layer.v.weight"), (Shape{4096, 4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.mlstm_layer.ogate_preact.weight"), (Shape{4096, 4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.mlstm_layer.igate_preact.weight"), (Shape{8, 4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.mlstm_layer.igate_preact.bias"), (Shape{8}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.mlstm_layer.fgate_preact.weight"), (Shape{8, 4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.mlstm_layer.fgate_preact.bias"), (Shape{8}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.mlstm_layer.multihead_norm.weight"), (Shape{4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.mlstm_layer.out_proj.weight"), (Shape{4096, 4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.norm_ffn.weight"), (Shape{4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.ffn.proj_up_gate.weight"), (Shape{10944, 4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.ffn.proj_up.weight"), (Shape{10944, 4096}));
  EXPECT_EQ(shapeOf("backbone.blocks.0.ffn.proj_down.weight"), (Shape{4096, 10944}));
  EXPECT_EQ(shapeOf("backbone.out_norm.weight"), (Shape{4096}));
  EXPECT_EQ(shapeOf("lm_head.weight"), (Shape{50304, 4096}));
  EXPECT_EQ(byName(expected, "backbone.blocks.32.norm_ffn.weight"), nullptr);
  for (const ExpectedTensor &e : expected) {
    EXPECT_FALSE(e.optional) << e.name;
    EXPECT_EQ(e.dtypes, (std::vector<DType>{DType::F32, DType::BF16, DType::F16}));
  }
}

TEST(XlstmWeights, RoundingFollowsPython) {
  EXPECT_EQ(xlc::config::roundUpToMultipleOf(4096 * 2.667, 64), 10944);
  EXPECT_EQ(xlc::config::roundUpToMultipleOf(4096 * 2.6667, 64), 10944);
  EXPECT_EQ(xlc::config::roundUpToMultipleOf(64.0, 64), 64);
  EXPECT_EQ(xlc::config::roundUpToMultipleOf(65.0, 64), 128);
  // (64.5 + 63) // 64 == 1.0 in Python: round_up_to_next_multiple_of(64.5, 64) == 64, not 128.
  EXPECT_EQ(xlc::config::roundUpToMultipleOf(64.5, 64), 64);
  EXPECT_EQ(xlc::config::roundUpToMultipleOf(1.0, 64), 64);
  EXPECT_EQ(xlc::config::roundUpToMultipleOf(128 * 2.667, 64), 384); // 341.376 -> 384

  ModelConfig odd;
  odd.embeddingDim = 160;
  odd.numHeads = 4;
  EXPECT_EQ(odd.qkDim(), 80); // int(160 * 0.5): the layer's width, not xLSTMConfig.qk_dim (128)
  EXPECT_EQ(odd.vDim(), 160);
  EXPECT_EQ(odd.ffnDim(), 448); // 426.72 -> 448
}

TEST(XlstmWeights, VariantsChangeTheList) {
  ModelConfig tied = tinyConfig();
  tied.tieWordEmbeddings = true;
  std::vector<ExpectedTensor> expected = xlstmExpectedTensors(tied);
  ASSERT_NE(byName(expected, "lm_head.weight"), nullptr);
  EXPECT_TRUE(byName(expected, "lm_head.weight")->optional);
  EXPECT_EQ(parameterCount(expected), parameterCount(xlstmExpectedTensors(tinyConfig())) - 96 * 64);

  ModelConfig noOutNorm = tinyConfig();
  noOutNorm.addOutNorm = false;
  EXPECT_TRUE(byName(xlstmExpectedTensors(noOutNorm), "backbone.out_norm.weight")->optional);

  ModelConfig biased = tinyConfig();
  biased.useBias = true;
  expected = xlstmExpectedTensors(biased);
  EXPECT_NE(byName(expected, "backbone.blocks.1.mlstm_layer.q.bias"), nullptr);
  EXPECT_NE(byName(expected, "backbone.blocks.1.ffn.proj_down.bias"), nullptr);
  EXPECT_NE(byName(expected, "backbone.blocks.1.norm_ffn.bias"), nullptr);
  EXPECT_EQ(byName(expected, "backbone.out_norm.bias"), nullptr);
  EXPECT_EQ(expected.size(), 2u * 26u + 3u);

  ModelConfig fused = tinyConfig();
  fused.weightMode = xlc::config::WeightMode::Fused;
  expected = xlstmExpectedTensors(fused);
  EXPECT_EQ(byName(expected, "backbone.blocks.0.mlstm_layer.qkv_opreact.weight")->shape,
            (std::vector<std::int64_t>{2 * 32 + 2 * 64, 64}));
  EXPECT_EQ(byName(expected, "backbone.blocks.0.mlstm_layer.ifgate_preact.bias")->shape,
            (std::vector<std::int64_t>{8}));
  EXPECT_EQ(byName(expected, "backbone.blocks.0.ffn.proj_up_gate_z.weight")->shape,
            (std::vector<std::int64_t>{2 * 192, 64}));
  EXPECT_EQ(parameterCount(expected), parameterCount(xlstmExpectedTensors(tinyConfig())));
}

TEST(XlstmWeights, ReadsTheOriginal7BConfigJson) {
  // The original NX-AI/xLSTM-7b config.json (reference/xlstm-7b.md §1.3): only the xlstm-package
  // spellings embedding_dim and num_blocks, plus fields that do not affect the tensors.
  const char *json = R"({
    "_name_or_path": "NX-AI/xLSTM-7b", "add_embedding_dropout": false,
    "add_forward_backend_padding": false, "add_out_norm": true, "add_post_blocks_norm": true,
    "add_post_norm": false, "add_qk_norm": false, "architectures": ["xLSTMForCausalLM"],
    "bos_token_id": 0, "cell_norm_eps": 1e-06, "embedding_dim": 4096, "eos_token_id": 2,
    "ffn_proj_factor": 2.667, "ffn_round_up_to_multiple_of": 64, "force_bos_token_insert": true,
    "forward_backend_name": "chunkwise--triton_limit_chunk", "gate_soft_cap": 15.0,
    "head_dim": 512, "igate_bias_init_range": -10.0, "mlstm_round_up_to_multiple_of": 64,
    "model_type": "xlstm", "norm_eps": 1e-06, "norm_reduction_force_float32": true,
    "num_blocks": 32, "num_heads": 8, "output_logit_soft_cap": 30.0, "pad_token_id": 1,
    "qk_dim_factor": 0.5, "return_last_states": true, "step_backend_name": "triton_fused",
    "tie_word_embeddings": false, "torch_dtype": "float32", "transformers_version": "4.47.0.dev0",
    "use_bias": false, "use_cache": true, "v_dim_factor": 1.0, "vocab_size": 50304})";
  ModelConfig config = xlc::config::parseModelConfig(json, "config.json");
  EXPECT_EQ(parameterCount(xlstmExpectedTensors(config)), 6'865'424'896ull);
  EXPECT_EQ(config.summary(),
            "xLSTM d=4096, 32 blocks, 8 heads (qk 2048, v 4096), ffn 10944, vocab 50304, untied");
}

TEST(XlstmWeights, ReadsTransformersStyleConfig) {
  ModelConfig tiny = tinyConfig();
  tiny.tieWordEmbeddings = true;
  ModelConfig parsed = xlc::config::parseModelConfig(hfConfigJson(tiny), "config.json");
  EXPECT_EQ(parsed.embeddingDim, 64);
  EXPECT_EQ(parsed.numBlocks, 2);
  EXPECT_EQ(parsed.numHeads, 4);
  EXPECT_EQ(parsed.vocabSize, 96);
  EXPECT_TRUE(parsed.tieWordEmbeddings);
  // null means "unset" in transformers' JSON: the other spelling decides.
  parsed = xlc::config::parseModelConfig(R"({"model_type": "xlstm", "embedding_dim": null,
      "hidden_size": 128, "num_blocks": null, "num_hidden_layers": 3, "num_heads": 4})",
                                         "c");
  EXPECT_EQ(parsed.embeddingDim, 128);
  EXPECT_EQ(parsed.numBlocks, 3);
}

TEST(XlstmWeights, ConfigErrorsNameTheField) {
  // The weight checks read config.json with the one config reader (runtime/config); the full
  // corpus of good and bad configs is test/runtime/config. A few here, through the file entry.
  auto error = [](const std::string &json) {
    std::string path = ::testing::TempDir() + "xlstm-weights-config.json";
    writeBytes(path, std::vector<std::uint8_t>(json.begin(), json.end()));
    return errorOf([&] { xlstmExpectedTensorsForConfigFile(path); });
  };
  EXPECT_TRUE(
      contains(error(R"({"model_type": "llama"})"),
               "xlstm-weights-config.json: field 'model_type' must be \"xlstm\", got \"llama\""));
  EXPECT_TRUE(
      contains(error(R"({"hidden_size": 128, "embedding_dim": 256})"),
               "field 'hidden_size' disagrees with its alias 'embedding_dim' (128 vs 256)"));
  EXPECT_TRUE(
      contains(error(R"({"num_heads": "8"})"), "field 'num_heads' must be an integer, got \"8\""));
  EXPECT_TRUE(
      contains(error(R"({"num_heads": 8.0})"), "field 'num_heads' must be an integer, got 8.0"));
  EXPECT_TRUE(
      contains(error(R"({"qk_dim_factor": "half"})"), "field 'qk_dim_factor' must be a number"));
  EXPECT_TRUE(contains(error(R"({"tie_word_embeddings": 1})"),
                       "field 'tie_word_embeddings' must be true or false"));
  EXPECT_TRUE(contains(error(R"({"weight_mode": "split"})"),
                       "field 'weight_mode' must be \"single\" or \"fused\", got \"split\""));
  EXPECT_TRUE(contains(error(R"({"num_heads": 0})"),
                       "field 'num_heads' must be a positive integer, got 0"));
  EXPECT_TRUE(contains(error(R"({"vocab_size": -5})"),
                       "field 'vocab_size' must be a positive integer, got -5"));
  EXPECT_TRUE(contains(
      error(R"({"num_heads": 3})"),
      "field 'num_heads' (3) does not divide the qk dimension 2048 = int(4096 * qk_dim_factor)"));
  EXPECT_TRUE(contains(error(R"({"qk_dim_factor": 1e308})"),
                       "field 'qk_dim_factor' must be in (0, 64], got 1e+308"));
  EXPECT_TRUE(contains(error(R"({"num_heads": 4, "num_heads": 4})"), "duplicate key 'num_heads'"));
  EXPECT_TRUE(contains(error("[1]"), "a config must be a JSON object"));
  EXPECT_TRUE(contains(error("{"), "not valid JSON"));
  // Biases and fused weights are checkpoint layouts the weight checks know (the importer and the
  // reference refuse them).
  EXPECT_EQ(error(R"({"hidden_size": 64, "num_heads": 4, "num_blocks": 1, "vocab_size": 96,
                      "use_bias": true, "weight_mode": "fused"})"),
            "<no error>");
}

TEST(Expected, ReportsEveryProblemWithExpectedAndActual) {
  std::vector<ExpectedTensor> expected = xlstmExpectedTensors(tinyConfig(), {DType::BF16});
  std::vector<TensorInfo> actual = infos(expected, DType::BF16);
  EXPECT_TRUE(findTensorProblems(actual, expected).empty());

  // Remove one, add one, reshape one, retype one, and one both.
  actual.erase(actual.begin() + 3);
  TensorInfo extra;
  extra.name = "backbone.blocks.0.mlstm_layer.qkv_opreact.weight";
  extra.dtype = DType::F32;
  extra.shape = {192, 64};
  actual.push_back(extra);
  for (TensorInfo &t : actual) {
    if (t.name == "backbone.blocks.1.ffn.proj_down.weight")
      t.shape = {192, 64};
    if (t.name == "lm_head.weight")
      t.dtype = DType::F32;
    if (t.name == "backbone.out_norm.weight") {
      t.dtype = DType::I64;
      t.shape = {65};
    }
  }
  std::string removed = expected[3].name;
  std::vector<std::string> problems = findTensorProblems(actual, expected);
  ASSERT_EQ(problems.size(), 5u);
  std::string message =
      errorOf([&] { checkTensors(actual, "checkpoint 'x'", expected, "config.json (tiny)"); });
  EXPECT_TRUE(contains(message, "checkpoint 'x' does not match config.json (tiny): 5 problems"))
      << message;
  EXPECT_TRUE(contains(message, "missing tensor '" + removed + "' (expected BF16 [")) << message;
  EXPECT_TRUE(contains(
      message,
      "unexpected tensor 'backbone.blocks.0.mlstm_layer.qkv_opreact.weight' (F32 [192, 64])"))
      << message;
  EXPECT_TRUE(contains(
      message,
      "tensor 'backbone.blocks.1.ffn.proj_down.weight' has shape [192, 64], expected [64, 192]"))
      << message;
  EXPECT_TRUE(contains(message, "tensor 'lm_head.weight' has dtype F32, expected BF16")) << message;
  EXPECT_TRUE(
      contains(message, "tensor 'backbone.out_norm.weight' is I64 [65], expected BF16 [64]"))
      << message;
  // Reported in name order.
  EXPECT_LT(message.find("backbone.blocks.0.mlstm_layer.qkv"), message.find("lm_head.weight"));

  // allowExtra accepts the unexpected one.
  EXPECT_EQ(findTensorProblems(actual, expected, /*allowExtra=*/true).size(), 4u);
}

TEST(Expected, OptionalTensorsMayBeAbsentButMustMatch) {
  std::vector<ExpectedTensor> expected = {{"a", {DType::F32}, {2}, false}, {"b", {}, {3}, true}};
  std::vector<TensorInfo> actual(1);
  actual[0].name = "a";
  actual[0].dtype = DType::F32;
  actual[0].shape = {2};
  EXPECT_TRUE(findTensorProblems(actual, expected).empty());
  TensorInfo b;
  b.name = "b";
  b.dtype = DType::U8; // any dtype accepted
  b.shape = {4};
  actual.push_back(b);
  std::vector<std::string> problems = findTensorProblems(actual, expected);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], "tensor 'b' has shape [4], expected [3]");
}

TEST(Expected, LongListsAreCapped) {
  std::vector<ExpectedTensor> expected;
  for (int i = 0; i < 100; ++i)
    expected.push_back({fmt::format("t{:03d}", i), {DType::F32}, {1}, false});
  std::string message = errorOf([&] { checkTensors({}, "empty", expected, "a list"); });
  EXPECT_TRUE(contains(message, "100 problems")) << message;
  EXPECT_TRUE(contains(message, "missing tensor 't000'")) << message;
  EXPECT_TRUE(contains(message, "... and 60 more")) << message;
  EXPECT_FALSE(contains(message, "'t099'")) << message;
}

TEST(Expected, TinyCheckpointWrittenByTheWriterMatchesItsConfig) {
  TempDir dir;
  ModelConfig config = tinyConfig();
  TensorSet set = xlstmTensors(config, DType::BF16, 11);
  writeSafetensors(dir.file("model.safetensors"), set.tensors, {{"format", "pt"}});
  Checkpoint checkpoint = Checkpoint::open(dir.path());
  checkTensors(checkpoint, xlstmExpectedTensors(config), "its config");
  // One block too many in the config: the check names the block-2 tensors as missing.
  config.numBlocks = 3;
  std::string message =
      errorOf([&] { checkTensors(checkpoint, xlstmExpectedTensors(config), "config (3 blocks)"); });
  EXPECT_TRUE(contains(message, "15 problems")) << message;
  EXPECT_TRUE(contains(
      message,
      "missing tensor 'backbone.blocks.2.ffn.proj_down.weight' (expected F32|BF16|F16 [64, 192])"))
      << message;
}
