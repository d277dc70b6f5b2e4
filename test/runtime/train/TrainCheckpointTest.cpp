//===- TrainCheckpointTest.cpp - Resumable training checkpoints -----------===//
//
// A checkpoint reads back bit for bit (weights in their dtype, moments and master copies,
// trainer state, config); the directory is replaced atomically (never read without its marker,
// read from <dir>.prev after an interrupted replace); bad input is refused with the tensor named.
//
//===----------------------------------------------------------------------===//

#include "runtime/train/TrainCheckpoint.h"

#include "runtime/support/Error.h"
#include "runtime/support/MappedFile.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/SafetensorsWriter.h"
#include "test/runtime/ErrorMatchers.h"

#include <gtest/gtest.h>

#include <fstream>

#include <cstring>
#include <filesystem>
#include <random>
#include <unistd.h>

namespace xlc::train {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string &name)
      : path(fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<float> randomValues(std::size_t n, std::mt19937 &rng, bool bf16) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float &x : v)
    x = bf16 ? weights::bf16ToF32(weights::f32ToBF16(normal(rng))) : normal(rng);
  return v;
}

/// A bf16 matrix with an fp32 master copy and an f32 vector without one.
std::vector<ParameterState> someParameters(std::uint32_t seed) {
  std::mt19937 rng(seed);
  ParameterState a{"backbone.blocks.0.mlstm_layer.q.weight", {4, 6}, weights::DType::BF16,
                   randomValues(24, rng, true), randomValues(24, rng, false),
                   randomValues(24, rng, false), randomValues(24, rng, false)};
  ParameterState b{"backbone.blocks.0.norm_mlstm.weight", {6}, weights::DType::F32,
                   randomValues(6, rng, false), {}, randomValues(6, rng, false),
                   randomValues(6, rng, false)};
  return {a, b};
}

bool sameBits(const std::vector<float> &x, const std::vector<float> &y) {
  return x.size() == y.size() &&
         (x.empty() || std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0);
}

TEST(TrainCheckpointTest, ReadsBackBitForBit) {
  TempDir tmp("xlc-train-ckpt");
  const std::string dir = (tmp.path / "step-000100").string();
  const std::vector<ParameterState> params = someParameters(3);
  TrainerState state;
  state.step = 100;
  state.tokensSeen = 409600;
  state.stream = {2, 17};
  state.dataSeed = 1234;
  state.run = {{"lr", 3e-4}, {"batch", 8}, {"seq", 512}, {"schedule", "cosine"}};
  state.bestEvalStep = 80;
  state.bestEvalLoss = 1.4736218452453613;
  const std::string config = "{\"model_type\": \"xlstm\"}\n";
  writeTrainCheckpoint(dir, params, state, config);

  for (const char *f : {"model.safetensors", "optimizer.safetensors", "trainer_state.json",
                        "config.json", "COMPLETE"})
    EXPECT_TRUE(fs::exists(fs::path(dir) / f)) << f;
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
  EXPECT_FALSE(fs::exists(dir + ".prev"));

  const TrainCheckpoint back = readTrainCheckpoint(dir);
  EXPECT_EQ(back.directory, dir);
  EXPECT_EQ(back.configJson, config);
  EXPECT_EQ(back.state.step, 100);
  EXPECT_EQ(back.state.tokensSeen, 409600u);
  EXPECT_EQ(back.state.stream, (StreamPosition{2, 17}));
  EXPECT_EQ(back.state.dataSeed, 1234u);
  EXPECT_EQ(back.state.run, state.run);
  EXPECT_EQ(back.state.bestEvalStep, 80);
  EXPECT_EQ(back.state.bestEvalLoss, 1.4736218452453613); // JSON keeps every bit of a double
  ASSERT_EQ(back.params.size(), params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    SCOPED_TRACE(params[i].name);
    const ParameterState &p = params[i], &q = back.params[i];
    EXPECT_EQ(q.name, p.name);
    EXPECT_EQ(q.shape, p.shape);
    EXPECT_EQ(q.dtype, p.dtype);
    EXPECT_TRUE(sameBits(q.weight, p.weight));
    EXPECT_TRUE(sameBits(q.master, p.master));
    EXPECT_TRUE(sameBits(q.m, p.m));
    EXPECT_TRUE(sameBits(q.v, p.v));
  }
}

/// The low-memory mode's state: a bf16 weight with bf16 moments and no master. The moments are
/// stored as bf16 (half the bytes) and read back bit for bit with their dtype; a moment that is
/// not bf16-exact is refused, naming the tensor.
TEST(TrainCheckpointTest, KeepsBf16MomentsAsBf16) {
  TempDir tmp("xlc-train-ckpt-bf16");
  const std::string dir = (tmp.path / "c").string();
  std::mt19937 rng(6);
  ParameterState p{"backbone.blocks.0.mlstm_layer.q.weight", {4, 6}, weights::DType::BF16,
                   randomValues(24, rng, true), {}, randomValues(24, rng, true),
                   randomValues(24, rng, true), weights::DType::BF16};
  writeTrainCheckpoint(dir, std::span(&p, 1), {}, "{}");
  const weights::Checkpoint optimizer = weights::Checkpoint::open(dir + "/optimizer.safetensors");
  ASSERT_NE(optimizer.find(p.name + ".exp_avg_sq"), nullptr);
  EXPECT_EQ(optimizer.find(p.name + ".exp_avg_sq")->dtype, weights::DType::BF16);
  EXPECT_EQ(optimizer.find(p.name + ".master"), nullptr);
  const TrainCheckpoint back = readTrainCheckpoint(dir);
  ASSERT_EQ(back.params.size(), 1u);
  EXPECT_EQ(back.params[0].momentDtype, weights::DType::BF16);
  EXPECT_TRUE(sameBits(back.params[0].m, p.m));
  EXPECT_TRUE(sameBits(back.params[0].v, p.v));
  EXPECT_TRUE(back.params[0].master.empty());

  p.v[7] = 1.0f + 1.0f / 1024.0f; // not a bf16 value
  xlc::testing::expectError([&] { writeTrainCheckpoint(dir, std::span(&p, 1), {}, "{}"); },
                            {"'backbone.blocks.0.mlstm_layer.q.weight'", "element 7",
                             "bf16 exp_avg_sq is not a bf16 value"});
}

TEST(TrainCheckpointTest, ReplacesAtomicallyAndNeverReadsAnIncompleteOne) {
  TempDir tmp("xlc-train-ckpt-replace");
  const std::string dir = (tmp.path / "latest").string();
  TrainerState state;
  state.step = 1;
  writeTrainCheckpoint(dir, someParameters(1), state, "{}");

  // A leftover of an interrupted write is cleared, the new checkpoint replaces the old one.
  fs::create_directories(dir + ".tmp");
  writeFileAtomically(dir + ".tmp/model.safetensors", std::span<const std::uint8_t>());
  state.step = 2;
  writeTrainCheckpoint(dir, someParameters(2), state, "{}");
  EXPECT_EQ(readTrainCheckpoint(dir).state.step, 2);
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
  EXPECT_FALSE(fs::exists(dir + ".prev"));

  // Interrupted between the two renames: <dir> gone, <dir>.prev complete.
  fs::rename(dir, dir + ".prev");
  const TrainCheckpoint prev = readTrainCheckpoint(dir);
  EXPECT_EQ(prev.state.step, 2);
  EXPECT_EQ(prev.directory, dir + ".prev");
  // The next write finishes the replace.
  state.step = 3;
  writeTrainCheckpoint(dir, someParameters(3), state, "{}");
  EXPECT_EQ(readTrainCheckpoint(dir).state.step, 3);
  EXPECT_FALSE(fs::exists(dir + ".prev"));

  // Without its marker a directory is not a checkpoint.
  fs::remove(fs::path(dir) / "COMPLETE");
  xlc::testing::expectError([&] { readTrainCheckpoint(dir); },
                            {"has no COMPLETE marker", "not completely written"});
}

// Extra files (the run's tokenizer.json) are written inside the checkpoint, so the directory is
// a model xlc-run loads as it is; the checkpoint's own names and paths are refused.
TEST(TrainCheckpointTest, CarriesExtraFiles) {
  TempDir tmp("xlc-train-ckpt-extra");
  const std::string dir = (tmp.path / "c").string();
  const std::vector<ExtraFile> extra = {{"tokenizer.json", "{\"model\": {}}\n"}};
  writeTrainCheckpoint(dir, someParameters(2), {}, "{}", extra);
  std::ifstream in(dir + "/tokenizer.json");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), extra[0].contents);
  EXPECT_EQ(readTrainCheckpoint(dir).params.size(), 2u);
  for (const char *bad : {"config.json", "COMPLETE", "../x.json", ""}) {
    const std::vector<ExtraFile> wrong = {{bad, "x"}};
    xlc::testing::expectError(
        [&] { writeTrainCheckpoint(dir, someParameters(2), {}, "{}", wrong); },
        {"extra file name", "plain file name"});
  }
  EXPECT_TRUE(fs::exists(dir + "/tokenizer.json")) << "a refused write keeps the old checkpoint";
}

TEST(TrainCheckpointTest, RefusesBadInputNamingTheTensor) {
  TempDir tmp("xlc-train-ckpt-bad");
  const std::string dir = (tmp.path / "c").string();
  std::vector<ParameterState> params = someParameters(4);
  params[0].weight[5] = 1.0f + 1.0f / 1024.0f; // not a bf16 value
  xlc::testing::expectError([&] { writeTrainCheckpoint(dir, params, {}, "{}"); },
                            {"'backbone.blocks.0.mlstm_layer.q.weight'", "element 5",
                             "not a bf16 value"});
  params = someParameters(4);
  params[1].v.pop_back();
  xlc::testing::expectError([&] { writeTrainCheckpoint(dir, params, {}, "{}"); },
                            {"'backbone.blocks.0.norm_mlstm.weight'", "exp_avg_sq has 5 values"});
  EXPECT_FALSE(fs::exists(dir)) << "a refused write leaves nothing behind";

  // An optimizer file that lacks a model tensor's moments.
  writeTrainCheckpoint(dir, someParameters(5), {}, "{}");
  const std::vector<ParameterState> written = someParameters(5);
  const ParameterState &p = written[1];
  std::vector<float> m = p.m;
  const weights::TensorToWrite only{p.name + ".exp_avg", weights::DType::F32, p.shape,
                                    {reinterpret_cast<const std::uint8_t *>(m.data()),
                                     m.size() * sizeof(float)}};
  weights::writeSafetensors(dir + "/optimizer.safetensors", std::span(&only, 1));
  xlc::testing::expectError([&] { readTrainCheckpoint(dir); },
                            {"optimizer.safetensors", "no 'backbone.blocks.0.mlstm_layer.q.weight.exp_avg'"});
}

} // namespace
} // namespace xlc::train
