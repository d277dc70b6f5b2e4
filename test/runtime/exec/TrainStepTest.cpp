//===- TrainStepTest.cpp - The compiled train_step against the float64 objective ===//
//
// Artifacts compiled by `xlc-compile --training` at build time (the tiny model: exponential input
// gate, soft-caps, untied head; the sig/tied variant: sigmoid input gate, no caps, tied embeddings,
// bf16 state; the 3-head variant: an odd head count), random weights on disk, and the CPU
// backend's train_step against ref::modelLossAndGrads (float64) on the very same weights: the
// per-token losses' mean is the loss, and every checkpoint tensor's gradient (exported through
// the gradient buffers' parameters) is the reference's. The backend computes in fp32: relative
// L2 errors are ~1e-6; the tests assert 1e-4 (NaN fails).
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/device/stochastic_rounding.cuh"
#include "runtime/exec/cpu/CpuBackend.h"
#include "runtime/reference/ModelBackward.h"
#include "runtime/reference/RandomCheckpoint.h"
#include "runtime/train/AdamW.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"

#include "test/runtime/ErrorMatchers.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <unistd.h>

namespace xlc::exec {
namespace {
namespace fs = std::filesystem;

constexpr double kTolerance = 1e-4;
constexpr std::int64_t kBatch = 2, kSeq = 37; // a partial last chunk at chunk 16 and 32

/// One model: its training artifact, random weights on disk, the reference weights read back
/// from that checkpoint, and a CPU backend created for the training functions only.
struct TrainModel {
  artifact::Artifact artifact; ///< the backend keeps a reference to it
  ref::ModelConfig config;
  fs::path dir;
  std::unique_ptr<weights::Checkpoint> checkpoint;
  ref::ModelWeights weights;
  std::unique_ptr<Backend> backend;

  /// |artifactSuffix| picks the compilation: "-train" (standard precision) or "-train-lowmem"
  /// (xlc-compile --training-precision low-memory).
  explicit TrainModel(const std::string &name, const std::string &artifactSuffix = "-train") {
    const std::string configPath = name == "xlstm-3heads"
                                       ? std::string(XLC_TEST_VARIANT_CONFIG_DIR) + "/" + name + ".json"
                                       : std::string(XLC_TEST_MODELS_DIR) + "/" + name + "/config.json";
    config = ref::modelConfigFromHfJson(configPath);
    dir = fs::temp_directory_path() / fmt::format("xlc-train-step-{}-{}", ::getpid(), name);
    ref::ModelWeights drawn = ref::randomWeights(config, 303);
    // Input-gate biases around 0 (not the 7B's −10), so the state carries signal.
    ref::Random rng(11);
    for (ref::BlockWeights &b : drawn.blocks)
      b.igateBias = rng.normal(b.igateBias.shape, 0.0, 3.0);
    ref::writeCheckpoint(config, drawn, dir.string(), weights::DType::F32);
    checkpoint = std::make_unique<weights::Checkpoint>(weights::Checkpoint::open(dir.string()));
    weights = ref::readCheckpointWeights(config, *checkpoint);
    // A tied model's checkpoint also stores lm_head.weight (a copy of the embedding, as
    // save_pretrained writes it), which the reference would read as a separate head with its own
    // gradient. Trained, the two are one tensor (the artifact's one buffer): its gradient is the
    // sum of the lookup's and the head's, the reference's with no separate head.
    if (config.tieWordEmbeddings)
      weights.lmHead = ref::Tensor();
    artifact =
        artifact::loadArtifact(std::string(XLC_TEST_TRAIN_DIR) + "/" + name + artifactSuffix + ".xlca");
    backend = createCpuBackend(artifact, *checkpoint, {kBatch, kSeq, {"train_step", "grad_norm", "optimizer_step"}}, 2);
  }
  ~TrainModel() {
    backend.reset();
    checkpoint.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

struct Batch {
  std::vector<std::int32_t> tokens, targets;
  std::vector<std::uint8_t> resets = std::vector<std::uint8_t>(kBatch * kSeq, 0);
  std::int64_t counted = 0;
};

/// Random tokens, next-token targets, and a few positions not counted (target −1).
Batch randomBatch(std::int64_t vocab, std::uint64_t seed) {
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  std::uniform_int_distribution<std::int32_t> token(0, static_cast<std::int32_t>(vocab - 1));
  std::vector<std::int64_t> tokens(kBatch * kSeq);
  for (auto &t : tokens)
    t = token(rng);
  std::vector<std::int64_t> targets = ref::nextTokenTargets(tokens, kBatch, kSeq);
  targets[3] = -1;
  targets[kSeq + 10] = -1;
  Batch b;
  b.tokens.assign(tokens.begin(), tokens.end());
  b.targets.assign(targets.begin(), targets.end());
  for (std::int32_t t : b.targets)
    b.counted += t >= 0;
  return b;
}

/// One train_step call; returns the mean loss over counted positions from token_loss.
double trainStep(Backend &backend, const Batch &b, double lossScale = 1.0) {
  std::vector<float> tokenLoss(kBatch * kSeq, -1.0f);
  CallArgs args;
  args.batch = kBatch;
  args.seq = kSeq;
  args.inputs.emplace("tokens", std::as_bytes(std::span(b.tokens)));
  args.inputs.emplace("targets", std::as_bytes(std::span(b.targets)));
  args.inputs.emplace("resets", std::as_bytes(std::span(b.resets)));
  args.scalars.emplace("grad_scale", lossScale / static_cast<double>(b.counted));
  args.outputs.emplace("token_loss", OutputRequest{tokenLoss});
  backend.call("train_step", args);
  double sum = 0.0;
  for (std::size_t p = 0; p < tokenLoss.size(); ++p) {
    if (b.targets[p] < 0)
      EXPECT_EQ(tokenLoss[p], 0.0f) << "position " << p << " has no target";
    sum += tokenLoss[p];
  }
  return sum / static_cast<double>(b.counted);
}

double relativeError(std::span<const float> got, const ref::Tensor &want, double factor) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double w = factor * want.data[i];
    num += (got[i] - w) * (got[i] - w);
    den += w * w;
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

/// Every checkpoint tensor's gradient, exported from the backend, against the reference's
/// times |factor| (the number of accumulated calls); each exactly once.
void expectGradients(Backend &backend, const ref::ModelConfig &config, ref::ModelWeights &grads,
                     double factor) {
  std::map<std::string, NamedTensor> got;
  for (NamedTensor &t : backend.exportGradients()) {
    const std::string name = t.name;
    EXPECT_TRUE(got.emplace(name, std::move(t)).second) << name << " exported twice";
  }
  std::size_t compared = 0;
  for (const ref::WeightSlot &slot : ref::weightSlots(config, grads)) {
    if (slot.tensor->data.empty())
      continue; // a tied model without a stored head: its gradient is the embedding's
    auto it = got.find(slot.name);
    if (it == got.end()) {
      ADD_FAILURE() << "no gradient for " << slot.name;
      continue;
    }
    ASSERT_EQ(it->second.values.size(), slot.tensor->data.size()) << slot.name;
    const double err = relativeError(it->second.values, *slot.tensor, factor);
    EXPECT_LT(err, kTolerance) << slot.name << " (NaN fails)";
    ++compared;
  }
  EXPECT_EQ(compared, got.size()) << "gradients exported for tensors the reference lacks";
}

class TrainStepTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainStepTest, LossAndEveryGradientMatchTheFloat64Objective) {
  TrainModel m(GetParam());
  const Batch b = randomBatch(m.config.vocabSize, 5);
  const std::vector<std::int64_t> tokens(b.tokens.begin(), b.tokens.end()),
      targets(b.targets.begin(), b.targets.end());
  ref::ModelLossAndGrads want =
      ref::modelLossAndGrads(m.config, m.weights, tokens, targets, kBatch, kSeq);
  ASSERT_EQ(want.count, b.counted);

  const double loss = trainStep(*m.backend, b);
  EXPECT_NEAR(loss, want.loss, 1e-5 * want.loss);
  expectGradients(*m.backend, m.config, want.grads, 1.0);

  // Gradient buffers persist and accumulate: a second micro-batch (the same one) doubles them,
  // and the loss of the second call is that of the first.
  EXPECT_NEAR(trainStep(*m.backend, b), want.loss, 1e-5 * want.loss);
  expectGradients(*m.backend, m.config, want.grads, 2.0);

  // Zeroed, they hold one call's gradients again.
  m.backend->zeroGradients();
  trainStep(*m.backend, b);
  expectGradients(*m.backend, m.config, want.grads, 1.0);
}

/// Documents starting inside the sequences (the `resets` input): the loss and every gradient are
/// the float64 objective's with the forget gates overridden there, and differ from the loss
/// without them.
TEST_P(TrainStepTest, DocumentResetsMatchTheFloat64Objective) {
  TrainModel m(GetParam());
  Batch b = randomBatch(m.config.vocabSize, 6);
  // Sequence 0: documents at t = 5 (inside the first chunk) and t = 16 (a chunk's first token);
  // sequence 1: at t = 33 (inside the partial last chunk).
  for (std::int64_t p : {std::int64_t{5}, std::int64_t{16}, kSeq + 33})
    b.resets[static_cast<std::size_t>(p)] = 1;
  const std::vector<std::int64_t> tokens(b.tokens.begin(), b.tokens.end()),
      targets(b.targets.begin(), b.targets.end());
  ref::ModelLossAndGrads want =
      ref::modelLossAndGrads(m.config, m.weights, tokens, targets, kBatch, kSeq, b.resets);
  const double plain = ref::modelLoss(m.config, m.weights, tokens, targets, kBatch, kSeq).loss;
  ASSERT_GT(std::abs(want.loss - plain), 1e-4 * plain) << "the resets change nothing";

  EXPECT_NEAR(trainStep(*m.backend, b), want.loss, 1e-5 * want.loss);
  expectGradients(*m.backend, m.config, want.grads, 1.0);
}

INSTANTIATE_TEST_SUITE_P(Models, TrainStepTest,
                         ::testing::Values("xlstm-tiny", "xlstm-sig-tied", "xlstm-3heads"),
                         [](const auto &info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

/// One optimizer step after one train_step: grad_norm is the squared global norm of the exported
/// gradients; optimizer_step moves every parameter as the host's AdamW (the same fp32 arithmetic)
/// moves it from the loaded weights with those gradients, decays the matrices only, and leaves
/// the gradients at zero.
TEST(TrainStepOptimizerTest, OneStepIsTheHostsAdamWOnTheExportedGradients) {
  TrainModel m("xlstm-sig-tied");
  const Batch b = randomBatch(m.config.vocabSize, 21);
  trainStep(*m.backend, b);
  std::map<std::string, NamedTensor> grads;
  double normSq = 0.0;
  for (NamedTensor &t : m.backend->exportGradients()) {
    for (float g : t.values)
      normSq += static_cast<double>(g) * g;
    grads.emplace(t.name, std::move(t));
  }
  std::vector<float> gotNormSq(1, -1.0f);
  CallArgs norm;
  norm.outputs.emplace("norm_sq", OutputRequest{gotNormSq});
  m.backend->call("grad_norm", norm);
  EXPECT_NEAR(gotNormSq[0], normSq, 1e-5 * normSq);

  const train::AdamWConfig config; // β1 0.9, β2 0.95, ε 1e-8, λ 0.1
  const double lr = 3e-3, clip = train::clipScale(std::sqrt(normSq), 0.5);
  const train::AdamWStep step = train::adamwStep(config, 1, lr, clip);
  std::map<std::string, NamedTensor> before;
  for (NamedTensor &t : m.backend->exportParameters())
    before.emplace(t.name, std::move(t));
  CallArgs update;
  update.scalars = train::optimizerStepScalars(config, step);
  m.backend->call("optimizer_step", update);

  // The model's parameters are bf16: the update runs on their f32 master copies, and the working
  // weights are the masters rounded to bf16.
  std::map<std::string, NamedTensor> masters;
  for (NamedTensor &t : m.backend->exportOptimizerState(artifact::OptimizerRole::Master))
    masters.emplace(t.name, std::move(t));
  std::size_t moved = 0;
  for (const NamedTensor &t : m.backend->exportParameters()) {
    ASSERT_TRUE(grads.count(t.name)) << t.name << " has no gradient";
    ASSERT_TRUE(masters.count(t.name)) << t.name << " has no master copy";
    std::vector<float> want = before.at(t.name).values;
    std::vector<float> mom(want.size(), 0.0f), var(want.size(), 0.0f);
    train::adamwApply(want, grads.at(t.name).values, mom, var, config, step,
                      train::decaysWeight(t.name, t.shape.size()));
    const std::vector<float> &master = masters.at(t.name).values;
    double num = 0.0, den = 0.0, change = 0.0;
    std::size_t unrounded = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      num += (master[i] - want[i]) * (master[i] - want[i]);
      den += want[i] * want[i];
      change += std::fabs(want[i] - before.at(t.name).values[i]);
      unrounded += t.values[i] != weights::bf16ToF32(weights::f32ToBF16(master[i]));
    }
    EXPECT_LT(std::sqrt(num / den), 1e-6) << t.name;
    EXPECT_EQ(unrounded, 0u) << t.name << ": the working weight is its master rounded to bf16";
    moved += change > 0.0;
  }
  EXPECT_EQ(moved, grads.size()) << "every parameter moves";
  for (const NamedTensor &t : m.backend->exportGradients())
    for (float g : t.values)
      ASSERT_EQ(g, 0.0f) << t.name << ": the step consumes the gradients";
}

/// Activations recomputed (xlc-compile --training --recompute ffn): the backward reads the FFNs'
/// recomputed gate|up projections and SwiGLU outputs, which are the forward's values computed
/// again by the same steps, so the loss and every gradient are exactly the saved plan's.
TEST(TrainStepTest, RecomputedFfnGivesTheSavedPlansGradients) {
  TrainModel recomputed("xlstm-tiny", "-train-recompute"), saved("xlstm-tiny");
  std::size_t clones = 0;
  for (const artifact::Buffer &buf : recomputed.artifact.buffers)
    clones += buf.name.find(".recomputed") != std::string::npos;
  EXPECT_GT(clones, 0u) << "the artifact recomputes nothing";
  const Batch b = randomBatch(saved.config.vocabSize, 23);
  EXPECT_EQ(trainStep(*recomputed.backend, b), trainStep(*saved.backend, b));
  std::map<std::string, NamedTensor> want;
  for (NamedTensor &t : saved.backend->exportGradients())
    want.emplace(t.name, std::move(t));
  std::size_t compared = 0;
  for (const NamedTensor &t : recomputed.backend->exportGradients()) {
    ASSERT_TRUE(want.count(t.name)) << t.name;
    EXPECT_EQ(t.values, want.at(t.name).values) << t.name;
    ++compared;
  }
  EXPECT_EQ(compared, want.size());
}

/// The low-memory mode (xlc-compile --training-precision low-memory) on the tiny model: no master
/// copies; the gradients that only GEMMs write (projection matrices, the untied LM head) in bf16,
/// the embedding's and the norms' in f32; bf16 moments. train_step computes the same gradients
/// as the standard artifact (the CPU backend's arithmetic is fp32 either way), and
/// optimizer_step is, launch by launch, the host's AdamW on the parameter's buffer followed by the
/// stochastic rounding of the weight and both moments with the bits of (step, launch, array,
/// element) — so every bf16 value the backend holds is one a checkpoint can store exactly.
TEST(TrainStepOptimizerTest, LowMemoryModeRoundsStochasticallyWithoutMasters) {
  TrainModel low("xlstm-tiny", "-train-lowmem"), standard("xlstm-tiny");
  const artifact::Artifact &a = low.artifact;
  std::size_t bf16Grads = 0, f32Grads = 0;
  for (const artifact::Buffer &buf : a.buffers) {
    EXPECT_NE(buf.role, artifact::OptimizerRole::Master) << buf.name;
    if (buf.cls == artifact::BufferClass::Gradient) {
      (buf.dtype == artifact::DType::BF16 ? bf16Grads : f32Grads) += 1;
      const bool matrix = buf.shape.size() == 2 && buf.name != "grad.embeddings.weight";
      EXPECT_EQ(buf.dtype, matrix ? artifact::DType::BF16 : artifact::DType::F32) << buf.name;
    }
    if (buf.cls == artifact::BufferClass::Optimizer)
      EXPECT_EQ(buf.dtype, a.buffers[*buf.parameter].dtype) << buf.name;
  }
  EXPECT_GT(bf16Grads, 0u);
  EXPECT_GT(f32Grads, 0u);

  const Batch b = randomBatch(low.config.vocabSize, 22);
  trainStep(*low.backend, b);
  trainStep(*standard.backend, b);
  std::map<std::string, NamedTensor> want;
  for (NamedTensor &t : standard.backend->exportGradients())
    want.emplace(t.name, std::move(t));
  for (const NamedTensor &t : low.backend->exportGradients()) {
    ASSERT_TRUE(want.count(t.name)) << t.name;
    EXPECT_EQ(t.values, want.at(t.name).values) << t.name;
  }

  // Buffer by buffer, in launch order: what the host's AdamW and rounding make of it.
  const artifact::Function *opt = nullptr;
  for (const artifact::Function &f : a.functions)
    if (f.name == "optimizer_step")
      opt = &f;
  ASSERT_NE(opt, nullptr);
  const train::AdamWConfig config;
  const std::int64_t stepNumber = 1;
  const train::AdamWStep step = train::adamwStep(config, stepNumber, 3e-3, 0.7f);
  struct Expected {
    artifact::BufferId w, m, v;
    std::vector<float> weight, mom, var;
  };
  std::vector<Expected> expected;
  for (std::size_t i = 0; i < opt->steps.size(); ++i) {
    const artifact::Step &s = opt->steps[i];
    const auto &args = s.launch()->args;
    ASSERT_EQ(args[7].intValue, static_cast<std::int64_t>(i)) << "the launch's tensor index";
    Expected e{args[0].bufferId, args[3].bufferId, args[4].bufferId, {}, {}, {}};
    e.weight = low.backend->readBuffer(e.w, {1, 1});
    const std::vector<float> grad = low.backend->readBuffer(args[2].bufferId, {1, 1});
    e.mom.assign(e.weight.size(), 0.0f);
    e.var.assign(e.weight.size(), 0.0f);
    const bool decay = s.attrs.value("decay", false);
    train::adamwApply(e.weight, grad, e.mom, e.var, config, step, decay);
    const unsigned int keyA = device::rounding_key(stepNumber, static_cast<unsigned int>(i) * 2U),
                       keyB = device::rounding_key(stepNumber, static_cast<unsigned int>(i) * 2U + 1U);
    const bool bf16 = a.buffers[e.w].dtype == artifact::DType::BF16;
    for (std::size_t j = 0; j < e.weight.size() && bf16; ++j) {
      auto round = [&](float x, int array) {
        return weights::bf16ToF32(device::bf16_bits_stochastic(
            std::bit_cast<std::uint32_t>(x), device::adamw_rounding_value(keyA, keyB, array, j)));
      };
      e.weight[j] = round(e.weight[j], 0);
      e.mom[j] = round(e.mom[j], 1);
      e.var[j] = round(e.var[j], 2);
    }
    expected.push_back(std::move(e));
  }
  CallArgs update;
  update.scalars = train::optimizerStepScalars(config, step);
  low.backend->call("optimizer_step", update);
  for (const Expected &e : expected) {
    const std::string &name = a.buffers[e.w].name;
    EXPECT_EQ(low.backend->readBuffer(e.w, {1, 1}), e.weight) << name;
    EXPECT_EQ(low.backend->readBuffer(e.m, {1, 1}), e.mom) << name;
    EXPECT_EQ(low.backend->readBuffer(e.v, {1, 1}), e.var) << name;
  }
}

TEST(TrainStepArtifactTest, NamesItsArgumentsAndEveryGradientsParameter) {
  const artifact::Artifact a =
      artifact::loadArtifact(std::string(XLC_TEST_TRAIN_DIR) + "/xlstm-tiny-train.xlca");
  const artifact::Function *f = nullptr;
  for (const artifact::Function &fn : a.functions)
    if (fn.name == "train_step")
      f = &fn;
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->inputs.size(), 3u);
  EXPECT_EQ(f->inputs[0].name, "tokens");
  EXPECT_EQ(f->inputs[1].name, "targets");
  EXPECT_EQ(f->inputs[2].name, "resets");
  EXPECT_EQ(a.buffers[f->inputs[2].buffer].dtype, artifact::DType::U8);
  ASSERT_EQ(f->outputs.size(), 1u);
  EXPECT_EQ(f->outputs[0].name, "token_loss");
  ASSERT_EQ(f->scalars.size(), 1u);
  EXPECT_EQ(f->scalars[0].name, "grad_scale");
  std::size_t gradients = 0;
  for (const artifact::Buffer &buf : a.buffers) {
    if (buf.cls != artifact::BufferClass::Gradient)
      continue;
    ++gradients;
    ASSERT_TRUE(buf.parameter.has_value()) << buf.name;
    EXPECT_EQ(a.buffers[*buf.parameter].cls, artifact::BufferClass::Parameter) << buf.name;
    EXPECT_EQ(buf.dtype, artifact::DType::F32) << buf.name;
  }
  // The tiny model: the embedding, the final norm, the head, and 9 per block (2 blocks):
  // two norms, the fused q|k|v|o-gate, the gates' weight and bias, the multi-head norm, the
  // out projection, the fused FFN gate|up, the down projection.
  EXPECT_EQ(gradients, 3u + 2u * 9u);
}

/// A backend for the training functions touches no folded weight of the inference functions
/// (the CUDA backend then neither allocates nor uploads them), but every parameter, gradient and
/// optimizer buffer; a generator's backend the reverse.
TEST(TrainStepArtifactTest, ATrainingBackendUsesTheParametersOnly) {
  TrainModel m("xlstm-tiny");
  const std::vector<bool> training = m.backend->buffersInUse();
  const std::unique_ptr<Backend> generator =
      createCpuBackend(m.artifact, *m.checkpoint, {1, 4, {"prefill", "decode_step"}}, 1);
  const std::vector<bool> inference = generator->buffersInUse();
  std::size_t weightBuffers = 0;
  for (const artifact::Buffer &b : m.artifact.buffers) {
    switch (b.cls) {
    case artifact::BufferClass::Weight:
      ++weightBuffers;
      EXPECT_FALSE(training[b.id]) << b.name;
      EXPECT_TRUE(inference[b.id]) << b.name;
      break;
    case artifact::BufferClass::Gradient:
    case artifact::BufferClass::Optimizer:
      EXPECT_TRUE(training[b.id]) << b.name;
      EXPECT_FALSE(inference[b.id]) << b.name;
      break;
    case artifact::BufferClass::Parameter:
      EXPECT_TRUE(training[b.id]) << b.name;
      break;
    default:
      break;
    }
  }
  EXPECT_GT(weightBuffers, 0u);
}

TEST(TrainStepArtifactTest, ARuntimeWithoutTheTrainingFunctionRefusesToTrain) {
  TrainModel m("xlstm-tiny");
  std::unique_ptr<Backend> generator = createCpuBackend(
      m.artifact, *m.checkpoint, {1, 8, {"prefill", "decode_step"}}, 1);
  const Batch b = randomBatch(m.config.vocabSize, 9);
  xlc::testing::expectError([&] { trainStep(*generator, b); }, {"train_step"});
}

} // namespace
} // namespace xlc::exec
