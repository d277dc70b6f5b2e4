//===- ModelForwardTest.cpp - Whole-model reference forward and its plumbing ===//

#include "runtime/reference/BlockOps.h"
#include "runtime/reference/ModelForward.h"
#include "runtime/support/Error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

namespace xlc::ref {
namespace {

ModelConfig tinyConfig() {
  ModelConfig c;
  c.embeddingDim = 32;
  c.numHeads = 2;
  c.qkDim = 16; // DQK 8
  c.vDim = 32;  // DV 16
  c.ffnDim = 64;
  c.numBlocks = 2;
  c.vocabSize = 50;
  return c;
}

/// Random weights whose input-gate biases are spread around 0 instead of −10, so the recurrent
/// state carries a lot of signal (the 7B init, −10, is tested separately).
ModelWeights liveWeights(const ModelConfig &config, std::uint64_t seed) {
  ModelWeights w = randomWeights(config, seed);
  Random rng(seed + 1);
  for (BlockWeights &b : w.blocks)
    b.igateBias = rng.normal(b.igateBias.shape, 0.0, 3.0);
  return w;
}

std::vector<std::int64_t> randomTokens(Random &rng, std::int64_t count, std::int64_t vocab) {
  std::vector<std::int64_t> tokens(count);
  for (auto &t : tokens)
    t = static_cast<std::int64_t>(rng.uniform(0.0, static_cast<double>(vocab)));
  return tokens;
}

/// Tokens [B, S] → columns [begin, end) as a [B, end − begin] block.
std::vector<std::int64_t> tokenColumns(const std::vector<std::int64_t> &tokens, std::int64_t batch,
                                       std::int64_t seq, std::int64_t begin, std::int64_t end) {
  std::vector<std::int64_t> out;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t s = begin; s < end; ++s)
      out.push_back(tokens[b * seq + s]);
  return out;
}

/// Concatenate logits [B, S1, V] and [B, S2, V] along S.
Tensor concatSeq(const Tensor &a, const Tensor &b) {
  std::int64_t batch = a.dim(0), s1 = a.dim(1), s2 = b.dim(1), v = a.dim(2);
  Tensor out({batch, s1 + s2, v});
  for (std::int64_t i = 0; i < batch; ++i)
    for (std::int64_t s = 0; s < s1 + s2; ++s)
      for (std::int64_t j = 0; j < v; ++j)
        out.at(i, s, j) = s < s1 ? a.at(i, s, j) : b.at(i, s - s1, j);
  return out;
}

TEST(ModelForward, TinyModelLogitsAreFiniteAndCapped) {
  ModelConfig config = tinyConfig();
  Random rng(1);
  const std::int64_t B = 2, S = 13;
  std::vector<std::int64_t> tokens = randomTokens(rng, B * S, config.vocabSize);
  for (bool live : {false, true}) { // 7B-like init (igate bias −10) and a lively one
    ModelWeights weights = live ? liveWeights(config, 7) : randomWeights(config, 7);
    ModelState state = ModelState::zeros(config, B);
    Tensor logits = modelForward(config, weights, tokens, B, S, state, {MlstmForm::Chunkwise, 4});
    EXPECT_EQ(logits.shape, (Shape{B, S, config.vocabSize}));
    EXPECT_TRUE(allFinite(logits));
    double maxAbs = 0, mean = 0, var = 0;
    for (double x : logits.data) {
      maxAbs = std::max(maxAbs, std::abs(x));
      mean += x / logits.numel();
    }
    for (double x : logits.data)
      var += (x - mean) * (x - mean) / logits.numel();
    EXPECT_LT(maxAbs, 30.0);
    EXPECT_GT(std::sqrt(var), 1e-3); // not a constant output
    EXPECT_TRUE(allFinite(state.blocks[1].C));
    EXPECT_NE(state.blocks[1].m.at(0, 0), 0.0); // the state moved
  }
}

TEST(ModelForward, TwoPiecesWithThreadedStateEqualOnePiece) {
  ModelConfig config = tinyConfig();
  Random rng(2);
  const std::int64_t B = 2, S = 24, split = 10;
  std::vector<std::int64_t> tokens = randomTokens(rng, B * S, config.vocabSize);
  double worst = 0;
  for (bool live : {false, true}) {
    ModelWeights weights = live ? liveWeights(config, 8) : randomWeights(config, 8);
    for (MlstmSchedule schedule : {MlstmSchedule{MlstmForm::Chunkwise, 4},
                                   MlstmSchedule{MlstmForm::Recurrent, 1}}) {
      ModelState whole = ModelState::zeros(config, B);
      Tensor ref = modelForward(config, weights, tokens, B, S, whole, schedule);

      ModelState pieces = ModelState::zeros(config, B);
      Tensor first = modelForward(config, weights, tokenColumns(tokens, B, S, 0, split), B, split,
                                  pieces, schedule);
      Tensor second = modelForward(config, weights, tokenColumns(tokens, B, S, split, S), B,
                                   S - split, pieces, schedule);
      double e = relativeError(concatSeq(first, second), ref);
      worst = std::max(worst, e);
      EXPECT_LT(e, 1e-12) << (live ? "live" : "7b-init") << " " << toString(schedule.form);
      for (int i = 0; i < 2; ++i) {
        EXPECT_LT(relativeError(pieces.blocks[i].C, whole.blocks[i].C), 1e-12);
        EXPECT_LT(relativeError(pieces.blocks[i].n, whole.blocks[i].n), 1e-12);
        EXPECT_LT(relativeError(pieces.blocks[i].m, whole.blocks[i].m), 1e-12);
      }

      // The threaded state matters: the second piece from a fresh state gives other logits.
      ModelState fresh = ModelState::zeros(config, B);
      Tensor alone = modelForward(config, weights, tokenColumns(tokens, B, S, split, S), B,
                                  S - split, fresh, schedule);
      EXPECT_GT(relativeError(alone, second), 1e-4);
    }
  }
  std::printf("[model two pieces vs one] worst rel. error of logits %.2e\n", worst);
}

TEST(ModelForward, RecurrentAndChunkwiseSchedulesAgree) {
  ModelConfig config = tinyConfig();
  ModelWeights weights = liveWeights(config, 9);
  Random rng(3);
  std::vector<std::int64_t> tokens = randomTokens(rng, 2 * 21, config.vocabSize);
  ModelState s1 = ModelState::zeros(config, 2), s2 = ModelState::zeros(config, 2);
  Tensor a = modelForward(config, weights, tokens, 2, 21, s1, {MlstmForm::Recurrent, 1});
  Tensor b = modelForward(config, weights, tokens, 2, 21, s2, {MlstmForm::Chunkwise, 8});
  EXPECT_LT(relativeError(b, a), 1e-12);
  EXPECT_THROW(modelForward(config, weights, tokens, 2, 21, s1, {MlstmForm::Parallel, 1}), Error);
}

TEST(ModelForward, MlstmLayerMatchesHandComposition) {
  // §2.3 spelled out with the primitive ops, with a gate soft-cap small enough to bite.
  ModelConfig config = tinyConfig();
  config.gateSoftCap = 1.0;
  ModelWeights weights = liveWeights(config, 10);
  const BlockWeights &w = weights.blocks[0];
  Random rng(4);
  Tensor xNorm = rng.normal({2, 9, config.embeddingDim}, 0.0, 1.0);
  MlstmStates state = MlstmStates::zeros(2, 2, 8, 16);
  Tensor y = mlstmLayer(xNorm, w, config, state, {MlstmForm::Recurrent, 1});

  Tensor iPre = linear(xNorm, w.igate, &w.igateBias);
  double maxAbsGate = 0;
  for (double x : iPre.data)
    maxAbsGate = std::max(maxAbsGate, std::abs(x));
  ASSERT_GT(maxAbsGate, 1.5) << "the cap must be exercised";
  MlstmCellResult cell = mlstmCell(linear(xNorm, w.q), linear(xNorm, w.k), linear(xNorm, w.v),
                                   softCap(iPre, 1.0),
                                   softCap(linear(xNorm, w.fgate, &w.fgateBias), 1.0), 2, nullptr,
                                   {1e-6, InputGate::Exp, Normalizer::MaxAbs},
                                   {MlstmForm::Recurrent, 1});
  Tensor expected = linear(
      outputGate(linear(xNorm, w.ogate), multiHeadLayerNorm(cell.h, w.multiheadNorm, 2, 1e-6)),
      w.outProj);
  EXPECT_EQ(relativeError(y, expected), 0.0);
  EXPECT_EQ(relativeError(state.C, cell.state.C), 0.0);

  // Without the cap the layer computes something else.
  config.gateSoftCap.reset();
  MlstmStates state2 = MlstmStates::zeros(2, 2, 8, 16);
  EXPECT_GT(relativeError(mlstmLayer(xNorm, w, config, state2, {MlstmForm::Recurrent, 1}), y), 1e-3);

  // The FFN block (§2.4) by hand.
  Tensor x = rng.normal({2, 9, config.embeddingDim}, 0.0, 1.0);
  Tensor xn = rmsNorm(x, w.normFfn, config.normEps);
  Tensor hidden = linear(xn, w.ffnUpGate);
  Tensor up = linear(xn, w.ffnUp);
  for (std::size_t j = 0; j < hidden.data.size(); ++j)
    hidden.data[j] = hidden.data[j] / (1.0 + std::exp(-hidden.data[j])) * up.data[j];
  Tensor ffnOut = linear(hidden, w.ffnDown);
  for (std::size_t j = 0; j < ffnOut.data.size(); ++j)
    ffnOut.data[j] += x.data[j];
  EXPECT_LT(relativeError(ffnBlock(x, w, config), ffnOut), 1e-14);
}

TEST(ModelForward, TiedEmbeddingsAndOutNormSwitches) {
  ModelConfig config = tinyConfig();
  ModelWeights weights = liveWeights(config, 11);
  Random rng(5);
  std::vector<std::int64_t> tokens = randomTokens(rng, 7, config.vocabSize);

  ModelConfig tied = config;
  tied.tieWordEmbeddings = true;
  ModelWeights tiedWeights = weights;
  tiedWeights.lmHead = Tensor();
  ModelWeights untiedCopy = weights;
  untiedCopy.lmHead = weights.embedding;
  ModelState s1 = ModelState::zeros(config, 1), s2 = ModelState::zeros(config, 1);
  Tensor a = modelForward(tied, tiedWeights, tokens, 1, 7, s1);
  Tensor b = modelForward(config, untiedCopy, tokens, 1, 7, s2);
  EXPECT_EQ(relativeError(a, b), 0.0);

  // Tied with a stored lm_head.weight (transformers 5 writes and uses it): that is the head.
  ModelState s3 = ModelState::zeros(config, 1), s4 = ModelState::zeros(config, 1);
  Tensor storedHead = modelForward(tied, weights, tokens, 1, 7, s3);
  Tensor untied = modelForward(config, weights, tokens, 1, 7, s4);
  EXPECT_EQ(relativeError(storedHead, untied), 0.0);
  EXPECT_GT(relativeError(storedHead, a), 0.1); // the two heads differ, so the test can fail

  // No blocks, no out norm, no cap: logits = embedding[token] · W_lmᵀ exactly.
  ModelConfig bare = config;
  bare.numBlocks = 0;
  bare.addOutNorm = false;
  bare.outputLogitSoftCap.reset();
  ModelWeights bareWeights = weights;
  bareWeights.blocks.clear();
  ModelState none = ModelState::zeros(bare, 1);
  Tensor logits = modelForward(bare, bareWeights, tokens, 1, 7, none);
  Tensor expected = linear(embedding(weights.embedding, tokens, {1, 7}), weights.lmHead);
  EXPECT_EQ(relativeError(logits, expected), 0.0);
}

TEST(ModelWeights, ValidationNamesTheCheckpointTensor) {
  ModelConfig config = tinyConfig();
  ModelWeights weights = randomWeights(config, 12);
  EXPECT_NO_THROW(validateWeights(config, weights));
  auto messageOf = [&](const ModelWeights &w) {
    try {
      validateWeights(config, w);
    } catch (const Error &e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  ModelWeights missing = weights;
  missing.blocks[1].fgateBias = Tensor();
  EXPECT_NE(messageOf(missing).find("backbone.blocks.1.mlstm_layer.fgate_preact.bias is missing"),
            std::string::npos)
      << messageOf(missing);
  ModelWeights misshapen = weights;
  misshapen.blocks[0].ogate = Tensor({16, 32});
  EXPECT_NE(messageOf(misshapen).find("backbone.blocks.0.mlstm_layer.ogate_preact.weight: expected "
                                      "shape [32, 32], got [16, 32]"),
            std::string::npos)
      << messageOf(misshapen);
  ModelConfig bad = config;
  bad.qkDim = 15;
  EXPECT_THROW(bad.validate(), Error);

  // Deterministic in the seed, different across seeds.
  EXPECT_EQ(randomWeights(config, 12).blocks[1].q.data, weights.blocks[1].q.data);
  EXPECT_NE(randomWeights(config, 13).blocks[1].q.data, weights.blocks[1].q.data);
}

TEST(ModelWeights, SevenBLayoutMatchesTheCheckpoint) {
  // §1.2 / §5.1: 483 tensors and exactly 6,865,424,896 parameters. Shapes only, nothing allocated.
  ModelConfig c;
  c.embeddingDim = 4096;
  c.numHeads = 8;
  c.qkDim = 2048;
  c.vDim = 4096;
  c.ffnDim = 10944;
  c.numBlocks = 32;
  c.vocabSize = 50304;
  EXPECT_EQ(c.qkHeadDim(), 256);
  EXPECT_EQ(c.vHeadDim(), 512);
  ModelWeights empty;
  std::vector<WeightSlot> slots = weightSlots(c, empty);
  std::int64_t params = 0;
  for (const WeightSlot &s : slots)
    params += numElements(s.shape);
  EXPECT_EQ(slots.size(), 483u);
  EXPECT_EQ(params, 6865424896);
  EXPECT_EQ(slots.front().name, "backbone.embeddings.weight");
  EXPECT_EQ(slots.back().name, "lm_head.weight");
}

} // namespace
} // namespace xlc::ref
