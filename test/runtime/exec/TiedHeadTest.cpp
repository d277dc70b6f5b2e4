//===- TiedHeadTest.cpp - Which tensor the LM head of a tied model reads --===//
//
// Issue 10: a checkpoint saved by transformers 5 with tie_word_embeddings true still holds
// lm_head.weight, and transformers uses it as the LM head. The compiled sig/tied variant (the
// head is its own buffer: the embedding with out_norm folded in; XLC_TIED_ARTIFACT is the one
// xlc-compile writes in the full build, fixtures/xlstm-sig-tied.xlca in the runtime-only tree)
// is loaded with checkpoints holding
//   - a stored lm_head.weight that differs from the embedding: the head is lm_head.weight
//     (the assembled weight, and the CPU backend's logits against the float64 reference), the
//     lookup is still the embedding;
//   - no lm_head.weight: the head is the embedding, as before;
//   - a stored lm_head.weight of the wrong shape or dtype: one error naming the file, the
//     tensor, the shape expected and the one found.
// An artifact that uses one buffer for the lookup and the head (made here by pointing the head
// GEMM at the embedding's buffer) cannot take a distinct lm_head.weight: refused, unless equal.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/exec/WeightAssembly.h"
#include "runtime/exec/cpu/CpuBackend.h"
#include "runtime/reference/ModelForward.h"
#include "runtime/reference/RandomCheckpoint.h"
#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/SafetensorsWriter.h"

#include "test/runtime/ErrorMatchers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

namespace xlc::exec {
namespace {

namespace fs = std::filesystem;
namespace art = xlc::artifact;
using xlc::testing::errorOf;
using xlc::testing::expectError;

constexpr double kTolerance = 1e-4; // the CPU backend (fp32) against float64, as CpuBackendTest
constexpr Limits kLimits{1, 32};
constexpr std::int64_t kSeq = 20;

class TempDir {
public:
  explicit TempDir(const std::string &tag)
      : path_(fs::temp_directory_path() /
              fmt::format("xlc-tied-{}-{}-{}", tag, ::getpid(), counter()++)) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string file(const std::string &name) const { return (path_ / name).string(); }

private:
  static int &counter() {
    static int c = 0;
    return c;
  }
  fs::path path_;
};

/// The tied model: its artifact, config and random weights whose lm_head.weight differs from
/// the embedding (drawn like hf_parity.py's: std 4/sqrt(d), the embedding's is sqrt(2/(5d))).
struct Tied {
  art::Artifact artifact = art::loadArtifact(XLC_TIED_ARTIFACT);
  ref::ModelConfig config = ref::modelConfigFromHfJson(XLC_TIED_CONFIG);
  ref::ModelWeights weights;

  Tied() {
    EXPECT_TRUE(config.tieWordEmbeddings);
    weights = ref::randomWeights(config, 31);
    ref::Random rng(32);
    weights.lmHead = rng.normal(weights.embedding.shape, 0.0,
                                4.0 / std::sqrt(static_cast<double>(config.embeddingDim)));
  }

  /// The binding of the buffer that the last GEMM of prefill (the LM head) multiplies by.
  const art::WeightBinding &headBinding() const {
    const art::Function *prefill = artifact.findFunction("prefill");
    const art::GemmStep *head = prefill->steps.back().gemm();
    EXPECT_NE(head, nullptr);
    for (const art::WeightBinding &b : artifact.weights)
      if (b.buffer == head->b)
        return b;
    throw Error("no binding for the LM head buffer");
  }
  const art::WeightBinding &embeddingBinding() const {
    for (const art::WeightBinding &b : artifact.weights)
      if (b.sources == std::vector<std::string>{std::string(kEmbeddingTensor)} &&
          b.buffer != headBinding().buffer)
        return b;
    throw Error("no binding for the embedding table");
  }
};

std::vector<std::uint8_t> f32Bytes(const ref::Tensor &t) {
  std::vector<std::uint8_t> bytes(t.data.size() * 4);
  for (std::size_t i = 0; i < t.data.size(); ++i) {
    const float f = static_cast<float>(t.data[i]);
    std::memcpy(bytes.data() + 4 * i, &f, 4);
  }
  return bytes;
}

/// Rewrites the checkpoint in |dir| without lm_head.weight, then with |head| (bytes of |dtype|,
/// |shape|) under that name when given; |shardBytes| > 0 writes shards and an index.
void rewriteHead(const std::string &dir, const std::vector<std::uint8_t> *head,
                 weights::DType dtype, std::vector<std::int64_t> shape,
                 std::uint64_t shardBytes = 0) {
  std::vector<std::vector<std::uint8_t>> storage;
  std::vector<weights::TensorToWrite> tensors;
  {
    const weights::Checkpoint ckpt = weights::Checkpoint::open(dir);
    storage.reserve(ckpt.tensors().size() + 1);
    for (const weights::TensorInfo &t : ckpt.tensors()) {
      if (t.name == kLmHeadTensor)
        continue;
      std::span<const std::uint8_t> raw = ckpt.rawData(t);
      storage.emplace_back(raw.begin(), raw.end());
      tensors.push_back({t.name, t.dtype, t.shape, {}});
    }
  }
  if (head) {
    storage.push_back(*head);
    tensors.push_back({std::string(kLmHeadTensor), dtype, std::move(shape), {}});
  }
  for (std::size_t i = 0; i < tensors.size(); ++i)
    tensors[i].data = storage[i];
  fs::remove(fs::path(dir) / weights::kSingleFileName);
  if (shardBytes)
    weights::writeShardedSafetensors(dir, tensors, shardBytes, {{"format", "pt"}});
  else
    weights::writeSafetensors((fs::path(dir) / weights::kSingleFileName).string(), tensors,
                              {{"format", "pt"}});
}

/// The logits after the prefill of all but the last of |tokens| (one sequence) and after one
/// decode step on the last, as [1, 2, V]: the last position's row is all that every version of
/// prefill returns.
std::vector<float> run(Backend &backend, const std::vector<std::int32_t> &tokens,
                       std::int64_t vocab) {
  const std::size_t v = static_cast<std::size_t>(vocab), seq = tokens.size() - 1;
  std::vector<float> logits(2 * v, NAN);
  backend.resetStates(0, 1);
  backend.run("prefill", 0, 1, seq, std::span(tokens).first(seq), std::span(logits).first(v),
              Logits::LastPosition);
  backend.run("decode_step", 0, 1, 1, std::span(tokens).last(1), std::span(logits).last(v),
              Logits::LastPosition);
  return logits;
}

/// The reference's logits at the last two positions of |tokens|, as [1, 2, V].
ref::Tensor referenceLogits(const ref::ModelConfig &config, const ref::ModelWeights &weights,
                            const std::vector<std::int32_t> &tokens) {
  const std::vector<std::int64_t> ids(tokens.begin(), tokens.end());
  const std::int64_t seq = static_cast<std::int64_t>(tokens.size()), v = config.vocabSize;
  ref::ModelState state = ref::ModelState::zeros(config, 1);
  const ref::Tensor all = ref::modelForward(config, weights, ids, 1, seq, state);
  ref::Tensor out({1, 2, v});
  std::copy(all.data.end() - 2 * v, all.data.end(), out.data.begin());
  return out;
}

double errorAgainst(const std::vector<float> &logits, const ref::Tensor &expected) {
  return ref::relativeError(
      ref::Tensor(expected.shape, std::vector<double>(logits.begin(), logits.end())), expected);
}

std::vector<std::int32_t> someTokens(std::int64_t vocab) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<std::int32_t> dist(0, static_cast<std::int32_t>(vocab - 1));
  std::vector<std::int32_t> tokens(kSeq);
  for (auto &t : tokens)
    t = dist(rng);
  return tokens;
}

/// The head buffer's expected fp32 contents: |head| rows with out_norm folded in (in fp32, as
/// assembleWeight computes them).
std::vector<float> foldedHead(const ref::Tensor &head, const ref::Tensor &outNorm) {
  const std::size_t d = outNorm.data.size();
  std::vector<float> out(head.data.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<float>(head.data[i]) * static_cast<float>(outNorm.data[i % d]);
  return out;
}

bool contains(const std::vector<std::string> &lines, const std::string &part) {
  for (const std::string &l : lines)
    if (l.find(part) != std::string::npos)
      return true;
  return false;
}

/// A checkpoint of |m| in |dir|: with its distinct lm_head.weight, or without one.
weights::Checkpoint writeTied(const Tied &m, const TempDir &dir, bool withHead) {
  ref::writeCheckpoint(m.config, m.weights, dir.str(), weights::DType::F32);
  if (!withHead)
    rewriteHead(dir.str(), nullptr, weights::DType::F32, {});
  return weights::Checkpoint::open(dir.str());
}

TEST(TiedHead, StoredLmHeadIsTheHead) {
  Tied m;
  TempDir dir("stored");
  const weights::Checkpoint ckpt = writeTied(m, dir, true);
  ASSERT_NE(ckpt.readF32(kLmHeadTensor), ckpt.readF32(kEmbeddingTensor)); // the test can fail

  EXPECT_TRUE(isTiedLmHead(m.artifact, m.headBinding()));
  EXPECT_FALSE(isTiedLmHead(m.artifact, m.embeddingBinding()));
  EXPECT_EQ(bindingSources(m.artifact, m.headBinding(), ckpt),
            std::vector<std::string>{std::string(kLmHeadTensor)});
  EXPECT_EQ(bindingSources(m.artifact, m.embeddingBinding(), ckpt),
            std::vector<std::string>{std::string(kEmbeddingTensor)});
  EXPECT_NO_THROW(checkWeights(m.artifact, ckpt));
  // The head buffer is lm_head.weight with out_norm folded in; the lookup stays the embedding.
  EXPECT_EQ(assembleWeight(m.artifact, m.headBinding(), ckpt),
            foldedHead(m.weights.lmHead, m.weights.outNorm));
  EXPECT_EQ(assembleWeight(m.artifact, m.embeddingBinding(), ckpt),
            ckpt.readF32(kEmbeddingTensor));
  // --verbose says so.
  const std::vector<std::string> notes = describeLmHead(m.artifact, ckpt);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("from tensor 'lm_head.weight'"), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("tie_word_embeddings is true"), std::string::npos) << notes[0];
}

TEST(TiedHead, WithoutLmHeadTheEmbeddingIsTheHead) {
  Tied m;
  TempDir dir("absent");
  const weights::Checkpoint ckpt = writeTied(m, dir, false);
  ASSERT_EQ(ckpt.find(kLmHeadTensor), nullptr);

  EXPECT_EQ(bindingSources(m.artifact, m.headBinding(), ckpt),
            std::vector<std::string>{std::string(kEmbeddingTensor)});
  EXPECT_NO_THROW(checkWeights(m.artifact, ckpt));
  EXPECT_EQ(assembleWeight(m.artifact, m.headBinding(), ckpt),
            foldedHead(m.weights.embedding, m.weights.outNorm));
  const std::vector<std::string> notes = describeLmHead(m.artifact, ckpt);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("from tensor 'backbone.embeddings.weight' (tied embeddings; the "
                          "checkpoint has no 'lm_head.weight')"),
            std::string::npos)
      << notes[0];
}

// The CPU backend end to end: its head buffer and its logits (prefill and a decode step)
// against the float64 reference of the same checkpoint.
TEST(TiedHead, LogitsComeFromTheHeadTheCheckpointHas) {
  Tied m;
  const std::vector<std::int32_t> tokens = someTokens(m.config.vocabSize);
  {
    TempDir dir("logits-stored");
    const weights::Checkpoint ckpt = writeTied(m, dir, true);
    std::unique_ptr<Backend> backend = createCpuBackend(m.artifact, ckpt, kLimits, 2);
    EXPECT_EQ(backend->readBoundBuffer(m.headBinding().buffer),
              foldedHead(m.weights.lmHead, m.weights.outNorm));
    EXPECT_EQ(backend->readBoundBuffer(m.embeddingBinding().buffer),
              ckpt.readF32(kEmbeddingTensor));
    const std::vector<float> logits = run(*backend, tokens, m.config.vocabSize);
    const ref::ModelWeights read = ref::readCheckpointWeights(m.config, ckpt);
    ASSERT_FALSE(read.lmHead.isEmpty());
    EXPECT_LT(errorAgainst(logits, referenceLogits(m.config, read, tokens)), kTolerance);
    // Far from what the embedding as head gives (what xlc did before issue 10).
    ref::ModelWeights embeddingHead = read;
    embeddingHead.lmHead = ref::Tensor();
    EXPECT_GT(errorAgainst(logits, referenceLogits(m.config, embeddingHead, tokens)), 0.5);
  }
  {
    TempDir dir("logits-absent");
    const weights::Checkpoint ckpt = writeTied(m, dir, false);
    std::unique_ptr<Backend> backend = createCpuBackend(m.artifact, ckpt, kLimits, 2);
    EXPECT_EQ(backend->readBoundBuffer(m.headBinding().buffer),
              foldedHead(m.weights.embedding, m.weights.outNorm));
    const ref::ModelWeights read = ref::readCheckpointWeights(m.config, ckpt);
    EXPECT_TRUE(read.lmHead.isEmpty());
    EXPECT_LT(errorAgainst(run(*backend, tokens, m.config.vocabSize),
                           referenceLogits(m.config, read, tokens)),
              kTolerance);
  }
}

TEST(TiedHead, MisshapenLmHeadIsAnError) {
  Tied m;
  const std::int64_t vocab = m.config.vocabSize, d = m.config.embeddingDim;
  const std::vector<std::uint8_t> wide(static_cast<std::size_t>(vocab * (d + 1)) * 4, 0x3f);
  {
    TempDir dir("wide");
    ref::writeCheckpoint(m.config, m.weights, dir.str(), weights::DType::F32);
    rewriteHead(dir.str(), &wide, weights::DType::F32, {vocab, d + 1});
    const weights::Checkpoint ckpt = weights::Checkpoint::open(dir.str());
    const std::string file = dir.file("model.safetensors");
    const std::string found = fmt::format("[{}, {}]", vocab, d + 1);
    const std::string expected = fmt::format("[{}, {}]", vocab, d);
    expectError([&] { checkWeights(m.artifact, ckpt); },
                {"tensor 'lm_head.weight' in " + file, "has shape " + found,
                 "needs " + expected, "tie_word_embeddings is true"});
  }
  {
    // Sharded: the message names the shard that holds the tensor.
    TempDir dir("sharded");
    ref::writeCheckpoint(m.config, m.weights, dir.str(), weights::DType::F32);
    rewriteHead(dir.str(), &wide, weights::DType::F32, {vocab, d + 1}, 1u << 20);
    const weights::Checkpoint ckpt = weights::Checkpoint::open(dir.str());
    const std::string message = errorOf([&] { checkWeights(m.artifact, ckpt); });
    const weights::TensorInfo &head = ckpt.get(kLmHeadTensor);
    EXPECT_NE(message.find("tensor 'lm_head.weight' in " + ckpt.fileOf(head)), std::string::npos)
        << message;
    EXPECT_NE(ckpt.fileOf(head), ckpt.path());
  }
  {
    // Not a float tensor.
    TempDir dir("int");
    ref::writeCheckpoint(m.config, m.weights, dir.str(), weights::DType::F32);
    const std::vector<std::uint8_t> ints(static_cast<std::size_t>(vocab * d) * 4, 1);
    rewriteHead(dir.str(), &ints, weights::DType::I32, {vocab, d});
    const weights::Checkpoint ckpt = weights::Checkpoint::open(dir.str());
    expectError([&] { checkWeights(m.artifact, ckpt); },
                {"tensor 'lm_head.weight' in", "has dtype I32", "expected F32, BF16 or F16"});
  }
}

TEST(TiedHead, OneBufferForLookupAndHeadTakesOnlyAnEqualLmHead) {
  Tied m;
  // Point the LM head GEMMs at the lookup table: one buffer for both (an artifact that does not
  // fold out_norm into the head would look like this).
  art::Artifact shared = m.artifact;
  const art::BufferId head = m.headBinding().buffer, table = m.embeddingBinding().buffer;
  for (art::Function &f : shared.functions)
    for (art::Step &s : f.steps)
      if (auto *g = std::get_if<art::GemmStep>(&s.body); g && g->b == head)
        g->b = table;
  const art::WeightBinding &tableBinding = m.embeddingBinding();
  EXPECT_TRUE(isTiedLmHead(shared, tableBinding));

  TempDir distinct("shared-distinct");
  ref::writeCheckpoint(m.config, m.weights, distinct.str(), weights::DType::F32);
  const weights::Checkpoint a = weights::Checkpoint::open(distinct.str());
  EXPECT_EQ(bindingSources(shared, tableBinding, a),
            std::vector<std::string>{std::string(kEmbeddingTensor)}); // never the lookup
  expectError([&] { checkWeights(shared, a); },
              {"tensor 'lm_head.weight' in " + distinct.file("model.safetensors"),
               "differs from 'backbone.embeddings.weight'", "cannot hold both",
               "tie_word_embeddings false"});

  TempDir equal("shared-equal");
  ref::ModelWeights same = m.weights;
  same.lmHead = ref::Tensor(); // writeCheckpoint stores the embedding as lm_head.weight
  ref::writeCheckpoint(m.config, same, equal.str(), weights::DType::F32);
  const weights::Checkpoint b = weights::Checkpoint::open(equal.str());
  EXPECT_NO_THROW(checkWeights(shared, b));
  EXPECT_TRUE(contains(describeLmHead(shared, b), "equals it"));
}

TEST(TiedHead, UntiedHeadIsDescribed) {
  // An untied model's head binding names lm_head.weight (the tied fixture, rebound so).
  art::Artifact untied = art::loadArtifact(XLC_TIED_ARTIFACT);
  for (art::WeightBinding &b : untied.weights)
    if (b.sources == std::vector<std::string>{std::string(kEmbeddingTensor)} &&
        isTiedLmHead(untied, b))
      b.sources = {std::string(kLmHeadTensor)};
  Tied m;
  TempDir dir("untied");
  ref::writeCheckpoint(m.config, m.weights, dir.str(), weights::DType::F32);
  const weights::Checkpoint ckpt = weights::Checkpoint::open(dir.str());
  EXPECT_TRUE(contains(describeLmHead(untied, ckpt), "from tensor 'lm_head.weight' (untied"));
}

} // namespace
} // namespace xlc::exec
