//===- CpuBackendTest.cpp - The CPU backend against the float64 reference ===//
//
// End to end on two compiled models (artifacts made by xlc-compile at build time):
//   xlstm-tiny      exp input gate, gate and logit soft-caps, untied head, V 50304, chunk 16;
//   xlstm-sig-tied  sigmoid input gate, no soft-caps, tied embeddings, bf16 state, chunk 32.
// Each model gets random weights written to a temporary checkpoint (RandomCheckpoint), with the
// input-gate biases spread around 0 instead of the 7B's −10 so that the recurrent state carries
// real signal. The reference forward (ref::modelForward, float64) reads the very same weights
// back from the checkpoint, so the only difference is the CPU backend's fp32 arithmetic: the
// relative L2 error ‖out − ref‖/‖ref‖ is ~1e-6; the tests assert < 1e-4 (NaN fails).
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/exec/Generator.h"
#include "runtime/exec/cpu/CpuBackend.h"
#include "runtime/kernels/KernelFamily.h"
#include "runtime/reference/ModelForward.h"
#include "runtime/reference/RandomCheckpoint.h"
#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"

#include "test/runtime/ErrorMatchers.h"
#include "test/runtime/exec/BackwardGemmArtifact.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <unistd.h>

namespace xlc::exec {
namespace {
namespace fs = std::filesystem;

constexpr double kTolerance = 1e-4;

// AddressSanitizer's allocator reports a failed huge allocation as a fatal error instead of
// throwing std::bad_alloc, so the allocation-failure check is skipped under it.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif
const Limits kLimits{3, 48}; // 3 slots, up to 48 tokens per call
constexpr unsigned kThreads = 2;

/// One compiled model with random weights on disk and a CPU backend over them.
struct Model {
  std::string name;
  artifact::Artifact artifact;
  ref::ModelConfig config;
  fs::path dir;
  std::unique_ptr<weights::Checkpoint> checkpoint;
  ref::ModelWeights weights; ///< read back from the checkpoint: exactly what the backend uses
  std::unique_ptr<Backend> backend;

  ~Model() {
    backend.reset();
    checkpoint.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::int64_t vocab() const { return config.vocabSize; }
};

/// The models, built once per process (the backend is shared; every test resets the slots it
/// uses before relying on their state).
Model &model(const std::string &name) {
  static std::map<std::string, std::unique_ptr<Model>> models;
  std::unique_ptr<Model> &slot = models[name];
  if (slot)
    return *slot;
  // The shipped tiny and sig/tied models, and the variants of test/runtime/exec/variants/.
  std::string artifactPath = std::string(XLC_TEST_VARIANT_DIR) + "/" + name + ".xlca";
  std::string configPath = std::string(XLC_TEST_VARIANT_CONFIG_DIR) + "/" + name + ".json";
  if (name == "xlstm-tiny") {
    artifactPath = XLC_TEST_TINY_ARTIFACT;
    configPath = XLC_TEST_TINY_CONFIG;
  } else if (name == "xlstm-sig-tied") {
    artifactPath = XLC_TEST_SIG_ARTIFACT;
    configPath = XLC_TEST_SIG_CONFIG;
  }
  auto m = std::make_unique<Model>();
  m->name = name;
  m->artifact = artifact::loadArtifact(artifactPath);
  m->config = ref::modelConfigFromHfJson(configPath);
  m->dir = fs::temp_directory_path() / fmt::format("xlc-exec-cpu-{}-{}", ::getpid(), name);
  ref::ModelWeights drawn = ref::randomWeights(m->config, name == "xlstm-tiny" ? 101 : 202);
  ref::Random rng(7);
  for (ref::BlockWeights &b : drawn.blocks)
    b.igateBias = rng.normal(b.igateBias.shape, 0.0, 3.0);
  ref::writeCheckpoint(m->config, drawn, m->dir.string(), weights::DType::F32);
  m->checkpoint = std::make_unique<weights::Checkpoint>(weights::Checkpoint::open(m->dir.string()));
  m->weights = ref::readCheckpointWeights(m->config, *m->checkpoint);
  m->backend = createCpuBackend(m->artifact, *m->checkpoint, kLimits, kThreads);
  slot = std::move(m);
  return *slot;
}

std::vector<std::int32_t> randomTokens(std::mt19937 &rng, std::size_t count, std::int64_t vocab) {
  std::uniform_int_distribution<std::int32_t> dist(0, static_cast<std::int32_t>(vocab - 1));
  std::vector<std::int32_t> t(count);
  for (auto &x : t)
    x = dist(rng);
  return t;
}

/// The reference logits [batch, seq, V] of |tokens| [batch, seq], continuing |state|.
ref::Tensor reference(const Model &m, const std::vector<std::int32_t> &tokens, std::int64_t batch,
                      std::int64_t seq, ref::ModelState &state) {
  const std::vector<std::int64_t> ids(tokens.begin(), tokens.end());
  return ref::modelForward(m.config, m.weights, ids, batch, seq, state);
}

ref::Tensor reference(const Model &m, const std::vector<std::int32_t> &tokens, std::int64_t batch,
                      std::int64_t seq) {
  ref::ModelState state = ref::ModelState::zeros(m.config, batch);
  return reference(m, tokens, batch, seq, state);
}

ref::Tensor toTensor(std::span<const float> v, ref::Shape shape) {
  return ref::Tensor(std::move(shape), std::vector<double>(v.begin(), v.end()));
}

/// Rows [b, t, :] of a [B, S, V] tensor for t in [t0, t1) of every b, as [B, t1 − t0, V].
ref::Tensor positions(const ref::Tensor &logits, std::int64_t t0, std::int64_t t1) {
  const std::int64_t batch = logits.dim(0), seq = logits.dim(1), v = logits.dim(2);
  ref::Tensor out({batch, t1 - t0, v});
  for (std::int64_t b = 0; b < batch; ++b)
    std::copy_n(logits.data.begin() + (b * seq + t0) * v, (t1 - t0) * v,
                out.data.begin() + b * (t1 - t0) * v);
  return out;
}

/// Tokens [B, S] → columns [t0, t1) as [B, t1 − t0].
std::vector<std::int32_t> columns(const std::vector<std::int32_t> &tokens, std::int64_t batch,
                                  std::int64_t seq, std::int64_t t0, std::int64_t t1) {
  std::vector<std::int32_t> out;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t t = t0; t < t1; ++t)
      out.push_back(tokens[b * seq + t]);
  return out;
}

void report(const std::string &what, double err) {
  std::printf("[ measure  ] %s: relative L2 error %.2e\n", what.c_str(), err);
}

using xlc::testing::expectError;

class CpuBackendTest : public ::testing::TestWithParam<std::string> {
protected:
  Model &m() { return model(GetParam()); }
  Backend &backend() { return *m().backend; }
};

TEST_P(CpuBackendTest, Describes) {
  EXPECT_EQ(backend().kind(), "cpu");
  const std::string d = backend().description();
  EXPECT_NE(d.find("cpu: 2 threads, arena"), std::string::npos) << d;
  EXPECT_EQ(backend().vocabSize(), static_cast<std::uint64_t>(m().vocab()));
}

TEST_P(CpuBackendTest, ScoreMatchesReferenceAtAllPositions) {
  std::mt19937 rng(1);
  const std::pair<std::int64_t, std::int64_t> shapes[] = {{1, 1}, {2, 1}, {2, 17}, {2, 40},
                                                          {1, 48}, {3, 5}};
  for (auto [batch, seq] : shapes) {
    const auto tokens = randomTokens(rng, static_cast<std::size_t>(batch * seq), m().vocab());
    std::vector<float> logits(static_cast<std::size_t>(batch * seq * m().vocab()), NAN);
    backend().resetStates(0, static_cast<std::uint64_t>(batch));
    backend().run("score", 0, batch, seq, tokens, logits, Logits::AllPositions);
    const ref::Tensor expected = reference(m(), tokens, batch, seq);
    const double err = ref::relativeError(toTensor(logits, {batch, seq, m().vocab()}), expected);
    report(fmt::format("{} score B={} S={} all positions", GetParam(), batch, seq), err);
    EXPECT_LT(err, kTolerance) << "B=" << batch << " S=" << seq;

    // prefill computes the LM head for the last positions only: the same numbers up to the
    // summation order of the LM head's GEMM (the CPU GEMM takes dot products for a few rows and
    // its blocked micro-kernel for many, so B rows and B·S rows round differently in fp32).
    std::vector<float> last(static_cast<std::size_t>(batch * m().vocab()), NAN);
    backend().resetStates(0, static_cast<std::uint64_t>(batch));
    backend().run("prefill", 0, batch, seq, tokens, last, Logits::LastPosition);
    const double lastErr = ref::relativeError(toTensor(last, {batch, 1, m().vocab()}),
                                              positions(toTensor(logits, {batch, seq, m().vocab()}),
                                                        seq - 1, seq));
    report(fmt::format("{} prefill B={} S={} vs score's last positions", GetParam(), batch, seq),
           lastErr);
    EXPECT_LE(lastErr, 1e-6) << "B=" << batch << " S=" << seq;
  }
}

// Prompts longer than the chunk, with a partial last chunk (chunk 16, 32, 64 or 128 by model):
// the chunkwise cell's inter-chunk recurrence against the float64 reference at every position.
TEST_P(CpuBackendTest, ScoreAcrossChunkBoundaries) {
  std::unique_ptr<Backend> backend = createCpuBackend(m().artifact, *m().checkpoint, {2, 160},
                                                      kThreads);
  std::mt19937 rng(11);
  const std::pair<std::int64_t, std::int64_t> shapes[] = {{1, 150}, {2, 131}};
  for (auto [batch, seq] : shapes) {
    const auto tokens = randomTokens(rng, static_cast<std::size_t>(batch * seq), m().vocab());
    std::vector<float> logits(static_cast<std::size_t>(batch * seq * m().vocab()), NAN);
    backend->resetStates(0, static_cast<std::uint64_t>(batch)); // a fresh state per case
    backend->run("score", 0, batch, seq, tokens, logits, Logits::AllPositions);
    const double err = ref::relativeError(toTensor(logits, {batch, seq, m().vocab()}),
                                          reference(m(), tokens, batch, seq));
    report(fmt::format("{} score B={} S={} (several chunks)", GetParam(), batch, seq), err);
    EXPECT_LT(err, kTolerance) << "B=" << batch << " S=" << seq;
  }
}

// Generation computes the LM head only for the last prompt position of each sequence
// (prefill's logits are [B, 1, V]); its first-token logits must be the last rows of score's
// [B, S, V]. Several sequences, prompts of lengths that are no multiple of the chunk (16 for
// tiny, 32 for sig-tied), equal and different lengths (the generator's prefill plan then makes
// several calls). A backend created for the generation functions only holds B·V logits.
TEST_P(CpuBackendTest, GenerationLogitsAreTheLastRowsOfScore) {
  std::mt19937 rng(11);
  const std::int64_t v = m().vocab();
  const std::uint64_t chunk = m().artifact.model.chunkSize;
  Limits lean{3, 48, {"prefill", "decode_step"}};
  std::unique_ptr<Backend> generation =
      createCpuBackend(m().artifact, *m().checkpoint, lean, kThreads);
  for (const std::vector<std::int64_t> &lengths :
       {std::vector<std::int64_t>{37, 37, 37}, std::vector<std::int64_t>{37, 21, 45}}) {
    std::vector<std::vector<std::int32_t>> prompts;
    for (std::int64_t length : lengths) {
      ASSERT_NE(static_cast<std::uint64_t>(length) % chunk, 0u);
      prompts.push_back(randomTokens(rng, static_cast<std::size_t>(length), v));
    }
    // What generation draws its first tokens from.
    std::vector<std::vector<float>> first(prompts.size());
    GenerateOptions options;
    options.maxNewTokens = 1;
    GenerateCallbacks callbacks;
    callbacks.onLogits = [&](std::size_t sequence, std::uint64_t step,
                             std::span<const float> logits) {
      ASSERT_EQ(step, 0u);
      first[sequence].assign(logits.begin(), logits.end());
    };
    Generator(*generation).generate(prompts, options, callbacks);

    // score through the same calls (the generator's prefill plan): the same arithmetic up to
    // the LM head, which it runs on every position.
    std::vector<std::uint64_t> ulengths(lengths.begin(), lengths.end());
    std::vector<std::vector<float>> expected(prompts.size());
    backend().resetStates(0, prompts.size());
    for (const PrefillCall &call : planPrefill(ulengths, kLimits.maxSeq, chunk)) {
      std::vector<std::int32_t> tokens;
      for (std::uint64_t b = 0; b < call.batch; ++b) {
        const auto &prompt = prompts[call.firstSlot + b];
        tokens.insert(tokens.end(), prompt.begin() + static_cast<std::ptrdiff_t>(call.offset),
                      prompt.begin() + static_cast<std::ptrdiff_t>(call.offset + call.seq));
      }
      std::vector<float> all(call.batch * call.seq * static_cast<std::uint64_t>(v), NAN);
      backend().run("score", call.firstSlot, call.batch, call.seq, tokens, all,
                    Logits::AllPositions);
      for (std::uint64_t b = 0; b < call.batch; ++b)
        if (call.offset + call.seq == ulengths[call.firstSlot + b]) {
          const auto row = all.begin() + static_cast<std::ptrdiff_t>(
                                             ((b + 1) * call.seq - 1) * static_cast<std::uint64_t>(v));
          expected[call.firstSlot + b].assign(row, row + v);
        }
    }

    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const std::int64_t seq = lengths[i];
      ASSERT_EQ(first[i].size(), static_cast<std::size_t>(v)) << "sequence " << i;
      ASSERT_EQ(expected[i].size(), static_cast<std::size_t>(v)) << "sequence " << i;
      const std::vector<float> &lastRow = expected[i];
      double diff = 0, norm = 0;
      for (std::int64_t j = 0; j < v; ++j) {
        diff += std::pow(double(first[i][j]) - double(lastRow[j]), 2);
        norm += std::pow(double(lastRow[j]), 2);
      }
      const double err = std::sqrt(diff / norm);
      report(fmt::format("{} generation logits of sequence {} (prompt {}) vs score's last row",
                         GetParam(), i, seq),
             err);
      // Equal up to the summation order of the LM head's GEMM (B rows against S rows).
      EXPECT_LE(err, 1e-6) << "sequence " << i << ", prompt of " << seq;
    }
  }

  // The generation backend's inputs and outputs hold the prefill's [B, 1, V] logits (and the
  // decode step's), not score's [B, S, V]; it refuses score.
  const std::string lean_ = generation->description(), full = backend().description();
  const auto ioOf = [](const std::string &d) { return d.substr(d.find("inputs and outputs")); };
  // prefill's: the tokens [3, 48] (576 bytes, a multiple of the 64-byte alignment), then the
  // logits [3, 1, V] in fp32; decode_step's are smaller and share the block.
  EXPECT_EQ(ioOf(lean_),
            fmt::format("inputs and outputs {:.1f} KiB", (3 * 48 * 4 + 3 * v * 4) / 1024.0))
      << lean_;
  EXPECT_NE(ioOf(full), ioOf(lean_)) << full;
  std::vector<std::int32_t> tokens(4, 1);
  std::vector<float> logits(static_cast<std::size_t>(4 * v));
  expectError([&] { generation->run("score", 0, 1, 4, tokens, logits, Logits::AllPositions); },
              {"score", "created for the functions prefill, decode_step only"});
  expectError([&] { createCpuBackend(m().artifact, *m().checkpoint, {1, 4, {"prefil"}}, 1); },
              {"no function 'prefil'", "decode_step, prefill, score"});
}

TEST_P(CpuBackendTest, PrefillInPiecesCarriesTheState) {
  std::mt19937 rng(2);
  const std::int64_t batch = 2, seq = 32, v = m().vocab();
  const auto tokens = randomTokens(rng, static_cast<std::size_t>(batch * seq), v);
  const ref::Tensor expected = reference(m(), tokens, batch, seq);

  // One call of 32.
  std::vector<float> whole(static_cast<std::size_t>(batch * seq * v));
  backend().resetStates(0, 2);
  backend().run("score", 0, batch, seq, tokens, whole, Logits::AllPositions);
  std::vector<std::vector<float>> wholeStates;
  for (std::size_t i = 0; i < m().artifact.functions[0].states.size(); ++i)
    wholeStates.push_back(backend().readState(1, i));

  // Three calls of 7 + 16 + 9 on the same slots.
  backend().resetStates(0, 2);
  std::int64_t t0 = 0;
  for (std::int64_t len : {7, 16, 9}) {
    const auto piece = columns(tokens, batch, seq, t0, t0 + len);
    std::vector<float> logits(static_cast<std::size_t>(batch * len * v), NAN);
    backend().run("score", 0, batch, len, piece, logits, Logits::AllPositions);
    const double err =
        ref::relativeError(toTensor(logits, {batch, len, v}), positions(expected, t0, t0 + len));
    report(fmt::format("{} score piece [{}, {}) of 32", GetParam(), t0, t0 + len), err);
    EXPECT_LT(err, kTolerance) << "piece at " << t0;
    // Against the single call: the same arithmetic token by token (the recurrent state is
    // stored in the fp32 it is computed in), so at most GEMM summation-order differences.
    const double vsWhole = ref::relativeError(
        toTensor(logits, {batch, len, v}),
        positions(toTensor(whole, {batch, seq, v}), t0, t0 + len));
    report(fmt::format("{} score piece [{}, {}) vs one call of 32", GetParam(), t0, t0 + len),
           vsWhole);
    EXPECT_LT(vsWhole, 1e-6) << "piece at " << t0;
    t0 += len;
  }
  // The state after the pieces is the state after the whole (to fp32 rounding of the path).
  for (std::size_t i = 0; i < wholeStates.size(); ++i) {
    const std::vector<float> pieces = backend().readState(1, i);
    const double err = ref::relativeError(toTensor(pieces, {static_cast<std::int64_t>(pieces.size())}),
                                          toTensor(wholeStates[i], {static_cast<std::int64_t>(pieces.size())}));
    EXPECT_LT(err, 1e-5) << "state " << i;
  }
}

TEST_P(CpuBackendTest, DecodeStepsContinueThePrefill) {
  std::mt19937 rng(3);
  const std::int64_t batch = 2, prompt = 12, steps = 5, total = prompt + steps, v = m().vocab();
  const auto tokens = randomTokens(rng, static_cast<std::size_t>(batch * total), v);
  const ref::Tensor expected = reference(m(), tokens, batch, total);

  backend().resetStates(1, 2); // slots 1 and 2
  std::vector<float> last(static_cast<std::size_t>(batch * v), NAN);
  backend().run("prefill", 1, batch, prompt, columns(tokens, batch, total, 0, prompt), last);
  double err = ref::relativeError(toTensor(last, {batch, 1, v}),
                                  positions(expected, prompt - 1, prompt));
  EXPECT_LT(err, kTolerance);
  for (std::int64_t t = prompt; t < total; ++t) {
    const auto step = columns(tokens, batch, total, t, t + 1);
    std::fill(last.begin(), last.end(), NAN);
    backend().run("decode_step", 1, batch, 1, step, last);
    err = ref::relativeError(toTensor(last, {batch, 1, v}), positions(expected, t, t + 1));
    report(fmt::format("{} decode step at position {}", GetParam(), t), err);
    EXPECT_LT(err, kTolerance) << "position " << t;
  }
}

TEST_P(CpuBackendTest, SlotsAreIndependentAndStatesMatchTheReference) {
  std::mt19937 rng(4);
  const std::int64_t seq = 20, v = m().vocab();
  std::vector<float> logits(static_cast<std::size_t>(2 * seq * v));
  backend().resetStates(0, 3);
  backend().run("score", 0, 2, seq, randomTokens(rng, 2 * seq, v), logits,
                Logits::AllPositions);
  const std::size_t numStates = m().artifact.functions[0].states.size();
  ASSERT_EQ(numStates, static_cast<std::size_t>(3 * m().config.numBlocks));
  std::vector<std::vector<float>> before;
  for (std::uint64_t slot : {0, 1})
    for (std::size_t i = 0; i < numStates; ++i)
      before.push_back(backend().readState(slot, i));

  // Slot 2 alone: slots 0 and 1 stay bit for bit.
  const auto tokens = randomTokens(rng, seq, v);
  std::vector<float> one(static_cast<std::size_t>(seq * v));
  backend().run("score", 2, 1, seq, tokens, one, Logits::AllPositions);
  std::size_t k = 0;
  for (std::uint64_t slot : {0, 1})
    for (std::size_t i = 0; i < numStates; ++i, ++k)
      EXPECT_EQ(backend().readState(slot, i), before[k]) << "slot " << slot << " state " << i;

  // Slot 2's logits and its state (C, n, m of every block) against the reference.
  ref::ModelState state = ref::ModelState::zeros(m().config, 1);
  const ref::Tensor expected = reference(m(), tokens, 1, seq, state);
  double err = ref::relativeError(toTensor(one, {1, seq, v}), expected);
  report(fmt::format("{} score on slot 2 of 3", GetParam()), err);
  EXPECT_LT(err, kTolerance);
  for (std::size_t block = 0; block < state.blocks.size(); ++block) {
    const ref::MlstmStates &s = state.blocks[block];
    const ref::Tensor *parts[] = {&s.C, &s.n, &s.m};
    const char *names[] = {"C", "n", "m"};
    for (std::size_t p = 0; p < 3; ++p) {
      const std::vector<float> got = backend().readState(2, 3 * block + p);
      ASSERT_EQ(static_cast<std::int64_t>(got.size()), parts[p]->numel());
      err = ref::relativeError(toTensor(got, parts[p]->shape), *parts[p]);
      report(fmt::format("{} state {} of block {}", GetParam(), names[p], block), err);
      EXPECT_LT(err, kTolerance) << names[p] << " of block " << block;
    }
  }

  // Reset: zeros, and the same run again gives the same logits bit for bit.
  backend().resetStates(2, 1);
  for (std::size_t i = 0; i < numStates; ++i)
    for (float x : backend().readState(2, i))
      ASSERT_EQ(x, 0.0f);
  std::vector<float> again(one.size());
  backend().run("score", 2, 1, seq, tokens, again, Logits::AllPositions);
  EXPECT_EQ(std::memcmp(again.data(), one.data(), one.size() * sizeof(float)), 0);
}

TEST_P(CpuBackendTest, ResultsDoNotDependOnTheThreadCount) {
  std::mt19937 rng(5);
  const std::int64_t batch = 2, seq = 19, v = m().vocab();
  const auto tokens = randomTokens(rng, static_cast<std::size_t>(batch * seq), v);
  std::unique_ptr<Backend> single = createCpuBackend(m().artifact, *m().checkpoint, {2, 19}, 1);
  std::vector<float> a(static_cast<std::size_t>(batch * seq * v)), b(a.size());
  single->run("score", 0, batch, seq, tokens, a, Logits::AllPositions);
  backend().resetStates(0, 2);
  backend().run("score", 0, batch, seq, tokens, b, Logits::AllPositions);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

TEST_P(CpuBackendTest, RejectsBadCalls) {
  const std::int64_t v = m().vocab();
  std::vector<float> logits(static_cast<std::size_t>(2 * 4 * v));
  std::vector<std::int32_t> tokens = {1, 2, 3, 4, 5, 6, 7, 8};
  // A token id outside the vocabulary: the message names the id, where it is, and V.
  tokens[6] = static_cast<std::int32_t>(v);
  expectError([&] { backend().run("prefill", 0, 2, 4, tokens, logits, Logits::AllPositions); },
              {"prefill", fmt::format("token id {}", v), "sequence 1", "position 2",
               fmt::format("vocabulary [0, {})", v)});
  tokens[6] = -3;
  expectError([&] { backend().run("prefill", 0, 2, 4, tokens, logits, Logits::AllPositions); },
              {"token id -3"});
  tokens[6] = 6;
  expectError([&] {
    backend().run("decode_step", 1, 2, 1, std::span(tokens).subspan(0, 2),
                  std::span(logits).subspan(0, 2 * v), Logits::LastPosition);
    std::vector<std::int32_t> bad = {0, static_cast<std::int32_t>(v + 5)};
    backend().run("decode_step", 1, 2, 1, bad, std::span(logits).subspan(0, 2 * v));
  }, {"decode_step", fmt::format("token id {}", v + 5), "slot 2"});
  // Slot ranges.
  expectError([&] { backend().run("prefill", 2, 2, 4, tokens, logits, Logits::AllPositions); },
              {"slots [2, 4)", "3 slot"});
  expectError([&] { backend().resetStates(3, 1); }, {"resetStates", "slots [3, 4)"});
  expectError([&] { backend().readState(3, 0); }, {"readState"});
  expectError([&] { backend().readState(0, 999); }, {"state index 999"});
  // Lengths and spans.
  std::vector<std::int32_t> longTokens(49, 1);
  std::vector<float> longLogits(static_cast<std::size_t>(49 * v));
  expectError([&] { backend().run("prefill", 0, 1, 49, longTokens, longLogits, Logits::AllPositions); },
              {"49 tokens", "[1, 48]"});
  expectError([&] {
    backend().run("score", 0, 2, 4, tokens, std::span(logits).subspan(1), Logits::AllPositions);
  }, {"span for output 'logits'", fmt::format("expected {}", 8 * v)});
  expectError([&] { backend().run("prefill", 0, 2, 4, tokens, logits, Logits::LastPosition); },
              {"span for output 'logits'"});
  // prefill has logits for the last positions only.
  expectError([&] { backend().run("prefill", 0, 2, 4, tokens, logits, Logits::AllPositions); },
              {"prefill", "output 'logits' ([B, 1, ", "holds only the last position",
               "every position of 4 tokens", "'score'"});
  expectError([&] { backend().run("decode_step", 0, 2, 4, tokens, logits, Logits::AllPositions); },
              {"decode_step", "one token"});
  expectError([&] { backend().run("train_step", 0, 1, 1, std::span(tokens).subspan(0, 1),
                                  std::span(logits).subspan(0, v)); },
              {"no function 'train_step'"});
  // The backend is still usable after errors.
  backend().resetStates(0, 1);
  backend().run("prefill", 0, 1, 4, std::span(tokens).subspan(0, 4),
                std::span(logits).subspan(0, v));
  EXPECT_TRUE(std::isfinite(logits[0]));
}

TEST_P(CpuBackendTest, RejectsWhatItCannotRun) {
  // An unknown kernel family: the error names the kernel and the families there are.
  artifact::Artifact bogus = m().artifact;
  const std::size_t kernel = bogus.functions[0].steps[1].launch()->kernel;
  bogus.kernels[kernel].family = "bogus_norm";
  expectError([&] { createCpuBackend(bogus, *m().checkpoint, kLimits, 1); },
              {fmt::format("kernel {}", kernel), "unknown kernel family 'bogus_norm'", "rms_norm"});
  // A kernel whose parameters are not the family's: refused before anything runs.
  artifact::Artifact renamed = m().artifact;
  for (artifact::KernelParam &p : renamed.kernels[kernel].params)
    if (p.name == "x_stride")
      p.name = "x_pitch";
  expectError([&] { createCpuBackend(renamed, *m().checkpoint, kLimits, 1); },
              {"parameter list", "family 'rms_norm'"});
  // A configuration the source was not rendered from (the GPU would compile one thing and the
  // CPU execute another): refused.
  artifact::Artifact reconfigured = m().artifact;
  reconfigured.kernels[kernel].config["threads"] = 64;
  expectError([&] { createCpuBackend(reconfigured, *m().checkpoint, kLimits, 1); },
              {"source", "family 'rms_norm'", "\"threads\":64"});
  // A buffer of another element type than the configuration says the kernel reads (the GPU
  // would read fp32 from bf16 bytes): refused, even with a consistently re-rendered kernel.
  artifact::Artifact retyped = m().artifact;
  {
    kernels::Config config = retyped.kernels[kernel].config;
    config["dtype"] = "f32";
    artifact::Kernel k = kernels::renderKernel(*kernels::findFamily("rms_norm"), config,
                                               retyped.kernels[kernel].tile);
    k.name = retyped.kernels[kernel].name;
    retyped.kernels[kernel] = k;
  }
  expectError([&] { createCpuBackend(retyped, *m().checkpoint, kLimits, 1); },
              {"prefill step 1", "parameter 'x' of family 'rms_norm' takes f32 elements", "is bf16"});
  // An attribute that disagrees with the argument the GPU gets.
  artifact::Artifact attr = m().artifact;
  attr.functions[0].steps[1].attrs["eps"] = 0.5;
  expectError([&] { createCpuBackend(attr, *m().checkpoint, kLimits, 1); },
              {"prefill step 1", "attribute 'eps' = 0.5 disagrees with argument 'eps'"});
  // The embedding's error flag without its duties.
  artifact::Artifact noDuty = m().artifact;
  noDuty.functions[0].steps[0].duties.clear();
  expectError([&] { createCpuBackend(noDuty, *m().checkpoint, kLimits, 1); },
              {"prefill step 0", "parameter 'error'", "'zero' duty"});
  // Zero limits.
  expectError([&] { createCpuBackend(m().artifact, *m().checkpoint, {0, 4}, 1); },
              {"max batch"});
  // Limits the artifact accepts (launch grids within CUDA's limits) but whose arena and logits
  // (~190 GiB and ~15 TiB for the tiny model) cannot be allocated: a clear error naming the
  // sizes. With overcommit_memory = 1 the kernel would hand out that much address space, so the
  // check needs the default heuristic (or strict) overcommit, and no AddressSanitizer.
  std::string overcommit = "0";
  if (std::FILE *f = std::fopen("/proc/sys/vm/overcommit_memory", "r")) {
    char c = '0';
    if (std::fread(&c, 1, 1, f) == 1)
      overcommit = std::string(1, c);
    std::fclose(f);
  }
  if (GetParam() == "xlstm-tiny" && overcommit != "1" && !kAddressSanitizer)
    expectError([&] { createCpuBackend(m().artifact, *m().checkpoint, {80, 1000000}, 1); },
                {"cannot allocate", "GiB", "max sequence length 1000000", "--max-seq"});
}

// The review's crafted artifact: step 1 (rms_norm) of prefill with x_stride 0 and rows 2^58
// passes validation (every expression is in range), and the sizes it implies wrap around u64.
// The run must end in an error naming the step, not in an out-of-bounds access.
TEST_P(CpuBackendTest, CraftedSizesFailCleanly) {
  artifact::Artifact crafted = m().artifact;
  artifact::Step &step = crafted.functions[0].steps[1];
  const artifact::Kernel &kernel = crafted.kernels[step.launch()->kernel];
  ASSERT_EQ(kernel.family, "rms_norm");
  for (std::size_t i = 0; i < kernel.params.size(); ++i) {
    if (kernel.params[i].name == "x_stride")
      std::get<artifact::LaunchStep>(step.body).args[i] = artifact::Arg::i64(0);
    if (kernel.params[i].name == "rows")
      std::get<artifact::LaunchStep>(step.body).args[i] = artifact::Arg::i64(std::int64_t{1} << 58);
  }
  // Through the file format, as a user would meet it: a valid checksum, a valid structure.
  const artifact::Artifact loaded =
      artifact::parseArtifact(artifact::serialize(crafted), "crafted.xlca");
  std::unique_ptr<Backend> cpu = createCpuBackend(loaded, *m().checkpoint, kLimits, 1);
  std::vector<std::int32_t> tokens(4, 3);
  std::vector<float> logits(cpu->vocabSize());
  expectError([&] { cpu->run("prefill", 0, 1, 4, tokens, logits); },
              {"prefill step 1", "rms_norm", "overflows"});
}

// The generic entry: named inputs and outputs, a step observer that sees every step in order
// and may read and write buffers (the GPU tests give the GPU the CPU's inputs this way), and
// parameter export that splits fused bindings back into the checkpoint's tensors.
TEST_P(CpuBackendTest, CallObserveAndExport) {
  struct Counter final : StepObserver {
    Backend *backend = nullptr;
    std::vector<std::size_t> before, after;
    void beforeStep(const PreparedStep &ps, const CallShape &) override {
      before.push_back(ps.index);
    }
    void afterStep(const PreparedStep &ps, const CallShape &shape) override {
      after.push_back(ps.index);
      // Round trip of every float arena buffer the step touched.
      for (artifact::BufferId id : artifact::buffersOf(*ps.step)) {
        const artifact::Buffer &b = backend->artifact().buffers[id];
        if (!artifact::isArenaClass(b.cls) || b.dtype == artifact::DType::I64)
          continue;
        std::vector<float> v = backend->readBuffer(id, shape);
        backend->writeBuffer(id, shape, v);
      }
    }
  } counter;
  counter.backend = &backend();
  const std::vector<std::int32_t> tokens = {1, 2, 3, 4, 5, 6};
  std::vector<float> observed(2 * m().vocab()), plain(2 * m().vocab());
  CallArgs args;
  args.batch = 2;
  args.seq = 3;
  args.inputs.emplace("tokens", std::as_bytes(std::span(tokens)));
  args.outputs.emplace("logits", OutputRequest{observed, Logits::LastPosition});
  args.observer = &counter;
  backend().resetStates(0, 2);
  backend().call("prefill", args);
  const std::size_t steps = m().artifact.findFunction("prefill")->steps.size();
  ASSERT_EQ(counter.before.size(), steps);
  ASSERT_EQ(counter.after.size(), steps);
  for (std::size_t i = 0; i < steps; ++i)
    EXPECT_EQ(counter.before[i], i);
  backend().resetStates(0, 2);
  backend().run("prefill", 0, 2, 3, tokens, plain);
  EXPECT_EQ(observed, plain);
  // Names are checked.
  CallArgs bad = args;
  bad.observer = nullptr;
  bad.inputs.emplace("token_ids", std::as_bytes(std::span(tokens)));
  expectError([&] { backend().call("prefill", bad); }, {"prefill", "no input 'token_ids'"});
  bad = args;
  bad.observer = nullptr;
  bad.scalars.emplace("lr", 1.0);
  expectError([&] { backend().call("prefill", bad); }, {"prefill", "no scalar 'lr'"});
  // Buffers are read and written only at shapes a call could have.
  const std::uint64_t stateC = m().artifact.findFunction("prefill")->states[0];
  expectError([&] { backend().readBuffer(stateC, {2, 1, kLimits.maxBatch - 1}); },
              {"readBuffer", "slots"});
  expectError([&] { backend().readBuffer(stateC, {1, kLimits.maxSeq + 1, 0}); },
              {"readBuffer", "tokens per sequence"});

  // Export: every binding without a folded norm, split into its sources, equals the checkpoint.
  const std::vector<NamedTensor> exported = backend().exportParameters(/*parametersOnly=*/false);
  ASSERT_FALSE(exported.empty());
  std::size_t fused = 0;
  for (const artifact::WeightBinding &w : m().artifact.weights)
    fused += !w.scaleColumnsBy && w.sources.size() > 1;
  EXPECT_GT(fused, 0u) << "no fused binding to split";
  for (const NamedTensor &t : exported) {
    EXPECT_EQ(t.values, m().checkpoint->readF32(t.name)) << t.name;
  }
}

// A launch step with batch variants (artifact::LaunchStep::byBatch) launches, in a call of B
// sequences, the first variant with B ≤ max_batch and its own kernel otherwise; handlers and
// observers see the kernel that runs. The compiler gives the fused chunkwise step a narrower-tile
// variant where few sequences leave SMs idle (the sig/tied model's two heads of DV 32: always).
TEST_P(CpuBackendTest, BatchVariantsAreChosenByTheCallsBatch) {
  struct Launches final : StepObserver {
    std::map<std::size_t, std::string> kernelOfStep;
    void beforeStep(const PreparedStep &ps, const CallShape &) override {
      if (ps.kernel)
        kernelOfStep[ps.index] = ps.kernel->name;
    }
    void afterStep(const PreparedStep &, const CallShape &) override {}
  };
  const artifact::Function &prefill = *m().artifact.findFunction("prefill");
  std::vector<std::size_t> withVariants;
  for (std::size_t i = 0; i < prefill.steps.size(); ++i)
    if (prefill.steps[i].launch() && !prefill.steps[i].launch()->byBatch.empty())
      withVariants.push_back(i);
  if (GetParam() == "xlstm-sig-tied")
    ASSERT_FALSE(withVariants.empty()) << "the compiler gave the sig/tied model no batch variant";
  if (withVariants.empty())
    GTEST_SKIP() << GetParam() << " has no launch with batch variants";

  // The same artifact with every variant's bound lowered to 1: batch 1 runs the variants, batch 2
  // the steps' own kernels, and both compute the same logits as the unchanged artifact.
  artifact::Artifact lowered = m().artifact;
  for (artifact::Function &f : lowered.functions)
    for (artifact::Step &step : f.steps)
      if (auto *launch = std::get_if<artifact::LaunchStep>(&step.body))
        for (artifact::BatchVariant &v : launch->byBatch)
          v.maxBatch = 1;
  std::unique_ptr<Backend> loweredBackend =
      createCpuBackend(lowered, *m().checkpoint, kLimits, kThreads);
  const std::vector<std::int32_t> tokens = {5, 9, 2, 7, 1, 3, 8, 4, 6, 2};
  for (const std::uint64_t batch : {1u, 2u}) {
    Launches launches;
    std::vector<float> logits(batch * m().vocab()), plain(batch * m().vocab());
    const std::span<const std::int32_t> ids(tokens.data(), batch * 5);
    CallArgs args;
    args.batch = batch;
    args.seq = 5;
    args.inputs.emplace("tokens", std::as_bytes(ids));
    args.outputs.emplace("logits", OutputRequest{logits, Logits::LastPosition});
    args.observer = &launches;
    loweredBackend->resetStates(0, batch);
    loweredBackend->call("prefill", args);
    for (std::size_t i : withVariants) {
      const artifact::LaunchStep &launch = *prefill.steps[i].launch();
      const artifact::KernelIndex expected =
          batch == 1 ? launch.byBatch.front().kernel : launch.kernel;
      EXPECT_EQ(launches.kernelOfStep[i], lowered.kernels[expected].name)
          << "prefill step " << i << " at batch " << batch;
    }
    std::vector<std::int32_t> same(ids.begin(), ids.end());
    backend().resetStates(0, batch);
    backend().run("prefill", 0, batch, 5, same, plain);
    EXPECT_EQ(logits, plain) << "batch " << batch;
  }
}

// The backward's GEMM forms (transposed operands, accumulation into a persistent gradient)
// against plain loops, through the whole plan (validation, executor, CPU handlers).
TEST(CpuBackendGemms, TransposesAndAccumulation) {
  using namespace xlc::testing;
  const fs::path dir = fs::temp_directory_path() / fmt::format("xlc-gemm-{}", ::getpid());
  fs::create_directories(dir);
  const std::vector<float> w = writeBackwardGemmCheckpoint((dir / "w.safetensors").string());
  const weights::Checkpoint checkpoint = weights::Checkpoint::open((dir / "w.safetensors").string());
  const artifact::Artifact a = backwardGemmArtifact("00");
  std::unique_ptr<Backend> cpu = createCpuBackend(a, checkpoint, {2, 8}, 2);
  const std::uint64_t rows = 2 * 5;
  std::vector<double> dw(kIn * kOut, 0.0);
  for (int call = 0; call < 2; ++call) {
    const Bf16Values g = randomBf16(rows * kIn, 10 + call), x = randomBf16(rows * kOut, 20 + call);
    std::vector<float> dx(rows * kOut);
    CallArgs args;
    args.batch = 2;
    args.seq = 5;
    args.inputs.emplace("g", std::as_bytes(std::span(g.bits)));
    args.inputs.emplace("a", std::as_bytes(std::span(x.bits)));
    args.outputs.emplace("dx", OutputRequest{dx});
    cpu->call("backward", args);
    double err = 0, norm = 0;
    for (std::uint64_t r = 0; r < rows; ++r)
      for (std::uint64_t j = 0; j < kOut; ++j) {
        double ref = 0;
        for (std::uint64_t i = 0; i < kIn; ++i)
          ref += static_cast<double>(g.values[r * kIn + i]) * w[i * kOut + j];
        err = std::max(err, std::abs(dx[r * kOut + j] - ref));
        norm = std::max(norm, std::abs(ref));
      }
    EXPECT_LT(err, 1e-5 * norm) << "dx, call " << call;
    for (std::uint64_t i = 0; i < kIn; ++i)
      for (std::uint64_t j = 0; j < kOut; ++j)
        for (std::uint64_t r = 0; r < rows; ++r)
          dw[i * kOut + j] += static_cast<double>(g.values[r * kIn + i]) * x.values[r * kOut + j];
    const std::vector<float> got = cpu->readBuffer(kDw, {2, 5, 0});
    double dwErr = 0, dwNorm = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      dwErr = std::max(dwErr, std::abs(got[i] - dw[i]));
      dwNorm = std::max(dwNorm, std::abs(dw[i]));
    }
    EXPECT_LT(dwErr, 1e-5 * dwNorm) << "dw after " << call + 1 << " accumulating calls";
  }
  cpu.reset();
  fs::remove_all(dir);
}

TEST_P(CpuBackendTest, RejectsMismatchedWeights) {
  // A checkpoint of the other model: every problem named in one error.
  const std::string other = GetParam() == "xlstm-tiny" ? "xlstm-sig-tied" : "xlstm-tiny";
  expectError([&] { createCpuBackend(m().artifact, *model(other).checkpoint, kLimits, 1); },
              {"does not match artifact", "has shape"});
}

TEST_P(CpuBackendTest, Bf16CheckpointMatchesItsReference) {
  // The same model from bf16 weights: the reference reads the same rounded values back.
  const fs::path dir = m().dir.string() + "-bf16";
  ref::writeCheckpoint(m().config, ref::randomWeights(m().config, 9), dir.string(),
                       weights::DType::BF16);
  const weights::Checkpoint ckpt = weights::Checkpoint::open(dir.string());
  Model bf16;
  bf16.config = m().config;
  bf16.weights = ref::readCheckpointWeights(m().config, ckpt);
  std::unique_ptr<Backend> backend = createCpuBackend(m().artifact, ckpt, {1, 24}, kThreads);
  std::mt19937 rng(6);
  const auto tokens = randomTokens(rng, 24, m().vocab());
  std::vector<float> logits(static_cast<std::size_t>(24 * m().vocab()));
  backend->run("score", 0, 1, 24, tokens, logits, Logits::AllPositions);
  const double err =
      ref::relativeError(toTensor(logits, {1, 24, m().vocab()}), reference(bf16, tokens, 1, 24));
  report(fmt::format("{} score S=24 from a bf16 checkpoint (7B-style gate init)", GetParam()),
         err);
  EXPECT_LT(err, kTolerance);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

INSTANTIATE_TEST_SUITE_P(Models, CpuBackendTest,
                         ::testing::Values(std::string("xlstm-tiny"), std::string("xlstm-sig-tied"),
                                           std::string("xlstm-3heads"),
                                           std::string("xlstm-chunk128")),
                         [](const ::testing::TestParamInfo<std::string> &info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

} // namespace
} // namespace xlc::exec
