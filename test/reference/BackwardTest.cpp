//===- BackwardTest.cpp - Op and whole-model gradients against finite differences -===//
//
// Every gradient of BlockOps.h and ModelBackward.h is compared with five-point differences of the
// forward it belongs to (FiniteDifference.h), on random inputs with fixed seeds. The whole-model
// check runs over every element of every checkpoint tensor of small configs that differ in each
// option the model has (tied embeddings, the sigmoid input gate, no soft-caps, no output norm).
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/BlockOps.h"
#include "runtime/reference/ModelBackward.h"
#include "runtime/reference/ModelForward.h"
#include "runtime/support/Error.h"
#include "test/reference/FiniteDifference.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace xlc::ref {
namespace {

using testing::gradientError;
using testing::inner;
using testing::innerAbs;
using testing::numericGradient;

constexpr double kGradTol = 1e-6;

/// L = ⟨w, f(inputs)⟩ with random w, and its cancellation-free magnitude for the error floor.
struct Projection {
  Tensor w;
  double floor(const Tensor &y) const { return 1e-3 * innerAbs(w, y); }
};

Projection projectionFor(Random &rng, const Tensor &y) {
  return {rng.normal(y.shape, 0.0, 1.0)};
}

TEST(OpGradients, Linear) {
  Random rng(1);
  Tensor x = rng.normal({2, 3, 5}, 0, 1), w = rng.normal({4, 5}, 0, 1), b = rng.normal({4}, 0, 1);
  Projection p = projectionFor(rng, linear(x, w, &b));
  auto loss = [&] { return inner(p.w, linear(x, w, &b)); };
  const double floor = p.floor(linear(x, w, &b));
  LinearGrads g = linearBackward(x, w, true, p.w);
  EXPECT_LT(gradientError(g.x, numericGradient(loss, x), floor), kGradTol);
  EXPECT_LT(gradientError(g.weight, numericGradient(loss, w), floor), kGradTol);
  EXPECT_LT(gradientError(g.bias, numericGradient(loss, b), floor), kGradTol);
  EXPECT_TRUE(linearBackward(x, w, false, p.w).bias.isEmpty());
}

TEST(OpGradients, RmsNormAndMultiHeadLayerNorm) {
  Random rng(2);
  Tensor x = rng.normal({3, 12}, 0.5, 2.0), w = rng.normal({12}, 1.0, 0.3);
  {
    Projection p = projectionFor(rng, x);
    auto loss = [&] { return inner(p.w, rmsNorm(x, w, 1e-6)); };
    NormGrads g = rmsNormBackward(x, w, 1e-6, p.w);
    const double floor = p.floor(rmsNorm(x, w, 1e-6));
    EXPECT_LT(gradientError(g.x, numericGradient(loss, x), floor), kGradTol);
    EXPECT_LT(gradientError(g.weight, numericGradient(loss, w), floor), kGradTol);
  }
  {
    Projection p = projectionFor(rng, x);
    auto loss = [&] { return inner(p.w, multiHeadLayerNorm(x, w, 3, 1e-6)); };
    NormGrads g = multiHeadLayerNormBackward(x, w, 3, 1e-6, p.w);
    const double floor = p.floor(multiHeadLayerNorm(x, w, 3, 1e-6));
    EXPECT_LT(gradientError(g.x, numericGradient(loss, x), floor), kGradTol);
    EXPECT_LT(gradientError(g.weight, numericGradient(loss, w), floor), kGradTol);
  }
}

TEST(OpGradients, SoftCapGatesAndSwiglu) {
  Random rng(3);
  Tensor x = rng.uniform({4, 6}, -40, 40), h = rng.normal({4, 6}, 0, 1);
  Projection p = projectionFor(rng, x);
  {
    auto loss = [&] { return inner(p.w, softCap(x, 15.0)); };
    EXPECT_LT(gradientError(softCapBackward(x, 15.0, p.w), numericGradient(loss, x),
                            p.floor(softCap(x, 15.0))),
              kGradTol);
  }
  Tensor o = rng.normal({4, 6}, 0, 3);
  {
    auto loss = [&] { return inner(p.w, outputGate(o, h)); };
    GatedGrads g = outputGateBackward(o, h, p.w);
    const double floor = p.floor(outputGate(o, h));
    EXPECT_LT(gradientError(g.gate, numericGradient(loss, o), floor), kGradTol);
    EXPECT_LT(gradientError(g.value, numericGradient(loss, h), floor), kGradTol);
  }
  {
    auto loss = [&] { return inner(p.w, swiglu(o, h)); };
    GatedGrads g = swigluBackward(o, h, p.w);
    const double floor = p.floor(swiglu(o, h));
    EXPECT_LT(gradientError(g.gate, numericGradient(loss, o), floor), kGradTol);
    EXPECT_LT(gradientError(g.value, numericGradient(loss, h), floor), kGradTol);
  }
}

TEST(OpGradients, EmbeddingAccumulatesRepeatedTokens) {
  Random rng(4);
  Tensor table = rng.normal({7, 3}, 0, 1);
  const std::vector<std::int64_t> tokens{2, 5, 2, 0, 2, 6};
  Projection p = projectionFor(rng, embedding(table, tokens, {2, 3}));
  auto loss = [&] { return inner(p.w, embedding(table, tokens, {2, 3})); };
  Tensor g = embeddingBackward(tokens, 7, p.w);
  EXPECT_LT(gradientError(g, numericGradient(loss, table), 1e-9), kGradTol);
  EXPECT_THROW(embeddingBackward(std::vector<std::int64_t>{0, 7}, 7, Tensor({2, 3})), Error);
}

TEST(OpGradients, CrossEntropyCountsOnlyNonNegativeTargets) {
  Random rng(5);
  Tensor logits = rng.normal({2, 3, 9}, 0, 4);
  const std::vector<std::int64_t> targets{3, -1, 8, 0, -100, 4};
  CrossEntropy ce = crossEntropy(logits, targets);
  EXPECT_EQ(ce.count, 4);
  // The value, from the definition: mean of log Σ_v e^{l_v} − l_target over counted rows.
  double expected = 0.0;
  for (std::int64_t r = 0; r < 6; ++r) {
    if (targets[r] < 0)
      continue;
    double sum = 0.0;
    for (std::int64_t v = 0; v < 9; ++v)
      sum += std::exp(logits.data[r * 9 + v]);
    expected += std::log(sum) - logits.data[r * 9 + targets[r]];
  }
  EXPECT_NEAR(ce.loss, expected / 4.0, 1e-12);
  auto loss = [&] { return crossEntropy(logits, targets).loss; };
  EXPECT_LT(gradientError(ce.dLogits, numericGradient(loss, logits), 1e-9), kGradTol);
  for (std::int64_t v = 0; v < 9; ++v)
    EXPECT_EQ(ce.dLogits.data[1 * 9 + v], 0.0); // an ignored row gets no gradient
  EXPECT_EQ(crossEntropy(logits, std::vector<std::int64_t>(6, -1)).count, 0);
  EXPECT_THROW(crossEntropy(logits, std::vector<std::int64_t>{0, 0, 9, 0, 0, 0}), Error);
}

//===--------------------------------------------------------------------===//
// Whole model
//===--------------------------------------------------------------------===//

ModelConfig smallConfig() {
  ModelConfig c;
  c.embeddingDim = 8;
  c.numHeads = 2;
  c.qkDim = 8; // DQK 4
  c.vDim = 8;  // DV 4
  c.ffnDim = 12;
  c.numBlocks = 2;
  c.vocabSize = 11;
  return c;
}

/// Input-gate biases around 0 instead of −10 so the cell's state carries signal (and its
/// gradient is not e^{−10}-small); the output-gate and out-projection weights as randomWeights.
ModelWeights liveWeights(const ModelConfig &config, std::uint64_t seed) {
  ModelWeights w = randomWeights(config, seed);
  Random rng(seed + 1);
  for (BlockWeights &b : w.blocks) {
    b.igateBias = rng.normal(b.igateBias.shape, 0.0, 2.0);
    b.outProj = rng.normal(b.outProj.shape, 0.0, 0.3);
    b.ffnDown = rng.normal(b.ffnDown.shape, 0.0, 0.3);
  }
  w.embedding = rng.normal(w.embedding.shape, 0.0, 1.0);
  return w;
}

struct ModelCase {
  std::string name;
  ModelConfig config;
};

std::vector<ModelCase> modelCases() {
  std::vector<ModelCase> cases;
  cases.push_back({"default", smallConfig()});
  ModelCase tied{"tied-sigmoid", smallConfig()};
  tied.config.tieWordEmbeddings = true;
  tied.config.inputGate = InputGate::Sigmoid;
  cases.push_back(tied);
  ModelCase bare{"no-caps-no-out-norm", smallConfig()};
  bare.config.gateSoftCap.reset();
  bare.config.outputLogitSoftCap.reset();
  bare.config.addOutNorm = false;
  bare.config.numHeads = 1;
  cases.push_back(bare);
  return cases;
}

/// |count| token ids drawn uniformly from the vocabulary.
std::vector<std::int64_t> randomTokens(const ModelConfig &config, std::int64_t count,
                                       std::uint64_t seed) {
  Random rng(seed);
  std::vector<std::int64_t> tokens(static_cast<std::size_t>(count));
  for (auto &t : tokens)
    t = static_cast<std::int64_t>(rng.uniform(0.0, static_cast<double>(config.vocabSize)));
  return tokens;
}

/// Every tensor of |lg|'s gradients against five-point finite differences of |loss| (which reads
/// |weights|, perturbed in place).
template <class LossFn>
void expectFiniteDifferences(const ModelConfig &config, ModelWeights &weights,
                             const ModelLossAndGrads &lg, LossFn loss) {
  // The cross-entropy is a mean of O(1) terms: its scale before cancellation is ~loss.
  const double floor = 1e-3 * lg.loss;
  std::vector<WeightSlot> slots = weightSlots(config, weights);
  ModelWeights grads = lg.grads;
  std::vector<WeightSlot> gradSlots = weightSlots(config, grads);
  ASSERT_EQ(slots.size(), gradSlots.size());
  for (std::size_t i = 0; i < slots.size(); ++i) {
    ASSERT_EQ(gradSlots[i].tensor->shape, slots[i].tensor->shape) << slots[i].name;
    EXPECT_LT(gradientError(*gradSlots[i].tensor, numericGradient(loss, *slots[i].tensor), floor),
              kGradTol)
        << slots[i].name;
  }
}

TEST(ModelGradients, EveryCheckpointTensorMatchesFiniteDifferences) {
  constexpr std::int64_t B = 2, S = 6;
  for (const ModelCase &mc : modelCases()) {
    SCOPED_TRACE(mc.name);
    ModelWeights weights = liveWeights(mc.config, 42);
    const std::vector<std::int64_t> tokens = randomTokens(mc.config, B * S, 7);
    std::vector<std::int64_t> targets = nextTokenTargets(tokens, B, S);
    targets[2] = -1; // an ignored position inside a sequence

    ModelLossAndGrads lg = modelLossAndGrads(mc.config, weights, tokens, targets, B, S);
    ModelLoss plain = modelLoss(mc.config, weights, tokens, targets, B, S);
    EXPECT_NEAR(lg.loss, plain.loss, 1e-12 * plain.loss);
    EXPECT_EQ(lg.count, B * (S - 1) - 1);
    EXPECT_GT(lg.loss, 0.5); // not a degenerate model: it is guessing among 11 tokens

    expectFiniteDifferences(mc.config, weights, lg, [&] {
      return modelLoss(mc.config, weights, tokens, targets, B, S).loss;
    });
    if (mc.config.tieWordEmbeddings)
      EXPECT_TRUE(lg.grads.lmHead.isEmpty());
  }
}

/// Documents starting inside the sequences (train_step's `resets`): the gradient is still exact,
/// the overridden forget gates pass none to their raw pre-activations, and the loss of a sequence
/// after a reset does not depend on the tokens before it (the carried state is multiplied by
/// σ(−25) ≈ 1.4e-11).
TEST(ModelGradients, DocumentResetsMatchFiniteDifferencesAndCutTheState) {
  constexpr std::int64_t B = 2, S = 6;
  for (const ModelCase &mc : modelCases()) {
    SCOPED_TRACE(mc.name);
    ModelWeights weights = liveWeights(mc.config, 43);
    const std::vector<std::int64_t> tokens = randomTokens(mc.config, B * S, 8);
    std::vector<std::int64_t> targets = nextTokenTargets(tokens, B, S);
    std::vector<std::uint8_t> resets(B * S, 0);
    resets[3] = 1;     // sequence 0: a document starts at t = 3
    resets[S + 1] = 1; // sequence 1: at t = 1 and t = 4
    resets[S + 4] = 1;

    ModelLossAndGrads lg = modelLossAndGrads(mc.config, weights, tokens, targets, B, S, resets);
    EXPECT_NEAR(lg.loss, modelLoss(mc.config, weights, tokens, targets, B, S, resets).loss,
                1e-12 * lg.loss);
    EXPECT_GT(std::abs(lg.loss - modelLoss(mc.config, weights, tokens, targets, B, S).loss), 1e-6)
        << "the resets change nothing";
    expectFiniteDifferences(mc.config, weights, lg, [&] {
      return modelLoss(mc.config, weights, tokens, targets, B, S, resets).loss;
    });

    // Only positions after the reset count: changing tokens before it leaves the loss (up to
    // the 1.4e-11 the state keeps).
    std::vector<std::int64_t> counted(B * S, -1);
    for (std::int64_t t = 3; t < S - 1; ++t)
      counted[t] = targets[t];
    std::vector<std::int64_t> other = tokens;
    other[0] = (other[0] + 1) % mc.config.vocabSize;
    other[2] = (other[2] + 5) % mc.config.vocabSize;
    const double a = modelLoss(mc.config, weights, tokens, counted, B, S, resets).loss;
    const double b = modelLoss(mc.config, weights, other, counted, B, S, resets).loss;
    EXPECT_NEAR(a, b, 1e-9 * a);
    EXPECT_GT(std::abs(a - modelLoss(mc.config, weights, other, counted, B, S).loss), 1e-6);
  }
}

TEST(ModelGradients, NextTokenTargetsShiftEachSequence) {
  const std::vector<std::int64_t> tokens{1, 2, 3, 4, 5, 6};
  EXPECT_EQ(nextTokenTargets(tokens, 2, 3), (std::vector<std::int64_t>{2, 3, -1, 5, 6, -1}));
  EXPECT_THROW(nextTokenTargets(tokens, 2, 2), Error);
}

TEST(ModelGradients, RejectsTargetsOutsideTheVocabulary) {
  ModelConfig c = smallConfig();
  ModelWeights w = randomWeights(c, 1);
  const std::vector<std::int64_t> tokens{1, 2}, bad{11, -1};
  EXPECT_THROW(modelLossAndGrads(c, w, tokens, bad, 1, 2), Error);
  EXPECT_THROW(modelLoss(c, w, tokens, std::vector<std::int64_t>{1}, 1, 2), Error);
  const std::vector<std::int64_t> good{2, -1};
  EXPECT_THROW(modelLoss(c, w, tokens, good, 1, 2, std::vector<std::uint8_t>{1}), Error);
}

} // namespace
} // namespace xlc::ref
