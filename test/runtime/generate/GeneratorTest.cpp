//===- GeneratorTest.cpp - The generation loop over a recording fake backend ===//
//
// FakeBackend keeps, per slot, every token it was fed since the last reset and returns logits
// that are a pure function of that history: a "model" whose next token depends on the whole
// prefix. So a wrong prefill plan (a token fed twice, skipped, or to the wrong slot), a state not
// reset, or a token fed out of order changes the generated text, and the tests compare against a
// direct simulation (prompt → greedy next token → append → ...).
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/Generator.h"
#include "runtime/support/Error.h"

#include "test/runtime/ErrorMatchers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <cstring>
#include <vector>

namespace xlc::exec {
namespace {

constexpr std::uint64_t kVocab = 48;
constexpr std::uint64_t kChunk = 4;
constexpr std::int32_t kEos = 2;

/// A valid artifact with just what the generator and Backend::run look at: the model facts and
/// two functions from token ids to logits, without steps (the fake backend computes the logits).
artifact::Artifact makeFakeArtifact() {
  namespace art = xlc::artifact;
  art::Artifact a;
  a.compiler = {"xlc", "test"};
  a.targetArch = "sm_90a";
  a.deviceHeadersHash = "00";
  a.model = {"fake", kVocab, 8, 1, kChunk, 0, static_cast<std::uint64_t>(kEos), 1};
  a.sourceName = "fake.xlca";
  a.buffers = {{0, "tokens", art::BufferClass::Input, art::DType::I32,
                {art::Dim::batch(), art::Dim::seq()}, std::nullopt, std::nullopt},
               {1, "logits", art::BufferClass::Output, art::DType::F32,
                {art::Dim::batch(), art::Dim::seq(), kVocab}, std::nullopt, std::nullopt}};
  for (const char *name : {"prefill", "decode_step"}) {
    art::Function f;
    f.name = name;
    f.inputs = {{"tokens", 0}};
    f.outputs = {{"logits", 1}};
    a.functions.push_back(f);
  }
  return a;
}

std::uint64_t historyHash(const std::vector<std::int32_t> &history) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::int32_t t : history)
    h = (h ^ static_cast<std::uint64_t>(t)) * 0x100000001b3ull;
  return h ^ (h >> 29);
}

/// The fake model's logits after |history|: a clear favourite (the greedy token) and a spread of
/// smaller values, so sampling at temperature 1 has real choices.
void fakeLogits(const std::vector<std::int32_t> &history, std::span<float> row) {
  std::uint64_t h = historyHash(history);
  for (std::uint64_t v = 0; v < row.size(); ++v)
    row[v] = -0.25f * static_cast<float>((v * 7 + h) % 13);
  row[h % row.size()] = 3.0f;
}

std::int32_t greedyNext(const std::vector<std::int32_t> &history) {
  return static_cast<std::int32_t>(historyHash(history) % kVocab);
}

struct Call {
  std::string function;
  std::uint64_t firstSlot, batch, seq;
  friend bool operator==(const Call &, const Call &) = default;
};

class FakeBackend final : public Backend {
public:
  FakeBackend(const artifact::Artifact &artifact, Limits limits)
      : Backend(artifact, limits), histories(limits.maxBatch),
        tokens_(limits.maxBatch * limits.maxSeq), logits_(limits.maxBatch * limits.maxSeq * kVocab) {
    memory_.base = {reinterpret_cast<std::uintptr_t>(tokens_.data()),
                    reinterpret_cast<std::uintptr_t>(logits_.data())};
    memory_.slotBytes = {0, 0};
  }

  std::string_view kind() const override { return "fake"; }
  std::string description() const override { return "fake backend"; }

  void resetStates(std::uint64_t firstSlot, std::uint64_t count) override {
    checkSlots(firstSlot, count, "resetStates");
    for (std::uint64_t s = firstSlot; s < firstSlot + count; ++s)
      histories[s].clear();
    resets.push_back({firstSlot, count});
  }

  std::vector<float> readState(std::uint64_t, std::size_t) override { return {}; }
  std::vector<float> readBoundBuffer(artifact::BufferId) override { return {}; }
  std::vector<float> readBuffer(artifact::BufferId, const CallShape &) override { return {}; }
  void writeBuffer(artifact::BufferId, const CallShape &, std::span<const float>) override {}

  std::vector<std::vector<std::int32_t>> histories;
  std::vector<Call> calls;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> resets;
  /// NaN logits for this slot once its history reaches poisonAfter tokens.
  std::optional<std::uint64_t> poisonSlot;
  std::size_t poisonAfter = 0;
  /// Draw as a GPU backend does: from the logits where they are, without downloadRows.
  bool drawsInPlace = false;
  std::size_t downloads = 0; ///< downloadRows calls
  /// Every draw request's rows, in call order, with the call's function and first slot.
  struct SeenDraw {
    std::string function;
    std::uint64_t firstSlot;
    std::vector<DrawRow> rows;
  };
  std::vector<SeenDraw> draws;

private:
  const Memory &memory() const override { return memory_; }
  void uploadInput(const BufferRef &, std::span<const std::byte> bytes) override {
    std::memcpy(tokens_.data(), bytes.data(), bytes.size());
  }
  std::vector<std::int64_t> execute(const PreparedFunction &fn, const CallShape &shape,
                                    std::span<const double>, StepObserver *) override {
    const std::uint64_t firstSlot = shape.firstSlot, batch = shape.batch, seq = shape.seq;
    calls.push_back({fn.function->name, firstSlot, batch, seq});
    if (!draws.empty() && draws.back().function.empty())
      draws.back().function = fn.function->name;
    for (std::uint64_t b = 0; b < batch; ++b) {
      std::vector<std::int32_t> &history = histories[firstSlot + b];
      for (std::uint64_t t = 0; t < seq; ++t) {
        history.push_back(tokens_[b * seq + t]);
        fakeLogits(history, std::span(logits_).subspan((b * seq + t) * kVocab, kVocab));
      }
      if (poisonSlot && *poisonSlot == firstSlot + b && history.size() >= poisonAfter)
        logits_[(b * seq + seq - 1) * kVocab + 5] = std::numeric_limits<float>::quiet_NaN();
    }
    return {};
  }
  void downloadRows(const BufferRef &, std::uint64_t firstRow, std::uint64_t rows,
                    std::uint64_t rowElements, float *out) override {
    ++downloads;
    std::memcpy(out, logits_.data() + firstRow * rowElements, rows * rowElements * 4);
  }
  void prepareDraw(const DrawSource &source, const CallShape &shape,
                   const DrawRequest &draw) override {
    draws.push_back({"", shape.firstSlot,
                     std::vector<DrawRow>(draw.rows.begin(), draw.rows.end())});
    Backend::prepareDraw(source, shape, draw);
  }
  void finishDraw(const DrawSource &source, const CallShape &shape,
                  const DrawRequest &draw) override {
    if (!drawsInPlace)
      return Backend::finishDraw(source, shape, draw);
    Sampler sampler(draw.options);
    for (std::uint64_t b = 0; b < shape.batch; ++b)
      draw.results[b] =
          draw.rows[b].active
              ? sampler.draw(std::span<const float>(logits_).subspan(
                                 (source.first + b * source.stride), source.elements),
                             draw.rows[b].stream, draw.rows[b].step)
              : Draw{};
  }

  std::vector<std::int32_t> tokens_;
  std::vector<float> logits_;
  Memory memory_;
};

/// Greedy generation simulated directly on the fake model.
std::vector<std::int32_t> simulateGreedy(std::vector<std::int32_t> history, std::uint64_t count,
                                         std::optional<std::int32_t> eos = std::nullopt) {
  std::vector<std::int32_t> out;
  while (out.size() < count) {
    out.push_back(greedyNext(history));
    history.push_back(out.back());
    if (eos && out.back() == *eos)
      break;
  }
  return out;
}

std::vector<std::int32_t> iotaPrompt(std::size_t length, std::int32_t start) {
  std::vector<std::int32_t> p(length);
  for (std::size_t i = 0; i < length; ++i)
    p[i] = static_cast<std::int32_t>((start + 5 * i) % kVocab);
  return p;
}

using xlc::testing::errorOf;

//===----------------------------------------------------------------------===//
// The prefill plan
//===----------------------------------------------------------------------===//

TEST(PrefillPlanTest, SplitPrefersChunkMultiples) {
  using V = std::vector<std::uint64_t>;
  EXPECT_EQ(splitPrefill(36, 40, 16), (V{36}));          // fits: one piece
  EXPECT_EQ(splitPrefill(100, 40, 16), (V{32, 32, 36})); // 32 = largest multiple of 16 ≤ 40
  EXPECT_EQ(splitPrefill(100, 48, 16), (V{48, 48, 4}));
  EXPECT_EQ(splitPrefill(100, 10, 16), (V{10, 10, 10, 10, 10, 10, 10, 10, 10, 10})); // chunk > max
  EXPECT_EQ(splitPrefill(7, 3, 0), (V{3, 3, 1}));
  EXPECT_EQ(splitPrefill(0, 3, 2), V{});
  EXPECT_NE(errorOf([] { splitPrefill(5, 0, 4); }).find(">= 1"), std::string::npos);
}

TEST(PrefillPlanTest, EqualLengthsAreOneCall) {
  std::vector<std::uint64_t> lengths = {8, 8, 8};
  EXPECT_EQ(planPrefill(lengths, 64, 4), (std::vector<PrefillCall>{{0, 3, 0, 8}}));
}

TEST(PrefillPlanTest, CommonPrefixBatchedThenRemainders) {
  // Slots 0..3 share 3 tokens; then slots 0..2 share 2 more; then slots 1..2 share 4 more.
  std::vector<std::uint64_t> lengths = {5, 9, 9, 3};
  EXPECT_EQ(planPrefill(lengths, 64, 4),
            (std::vector<PrefillCall>{{0, 4, 0, 3}, {0, 3, 3, 2}, {1, 2, 5, 4}}));
  // A short prompt in the middle splits the remainders into two runs.
  lengths = {10, 2, 6};
  EXPECT_EQ(planPrefill(lengths, 64, 4),
            (std::vector<PrefillCall>{{0, 3, 0, 2}, {0, 1, 2, 8}, {2, 1, 2, 4}}));
}

TEST(PrefillPlanTest, LongRunsAreSplit) {
  std::vector<std::uint64_t> lengths = {20, 45};
  // Common 20 → 8 + 8 + 4 (max 10, chunk 4: pieces of 8); slot 1's 25 more → 8, 8, 9.
  EXPECT_EQ(
      planPrefill(lengths, 10, 4),
      (std::vector<PrefillCall>{
          {0, 2, 0, 8}, {0, 2, 8, 8}, {0, 2, 16, 4}, {1, 1, 20, 8}, {1, 1, 28, 8}, {1, 1, 36, 9}}));
}

TEST(PrefillPlanTest, RandomPlansCoverEveryTokenOnce) {
  std::uint64_t rng = 12345;
  auto next = [&](std::uint64_t bound) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (rng >> 33) % bound;
  };
  for (int trial = 0; trial < 300; ++trial) {
    std::size_t n = 1 + next(8);
    std::uint64_t maxSeq = 1 + next(40), chunk = next(3) == 0 ? 0 : 1 + next(16);
    std::vector<std::uint64_t> lengths(n);
    for (auto &l : lengths)
      l = 1 + next(next(2) ? 100 : 10);
    std::vector<std::uint64_t> fed(n, 0);
    std::size_t calls = 0;
    for (const PrefillCall &call : planPrefill(lengths, maxSeq, chunk)) {
      ++calls;
      ASSERT_GE(call.batch, 1u);
      ASSERT_LE(call.firstSlot + call.batch, n);
      ASSERT_GE(call.seq, 1u);
      ASSERT_LE(call.seq, maxSeq);
      for (std::uint64_t s = call.firstSlot; s < call.firstSlot + call.batch; ++s) {
        ASSERT_EQ(fed[s], call.offset) << "slot " << s << " fed out of order";
        fed[s] += call.seq;
        ASSERT_LE(fed[s], lengths[s]);
      }
      // Every piece that is not the end of some slot's prompt is a whole number of chunks when
      // chunks fit in a call.
      bool endsSome = false;
      for (std::uint64_t s = call.firstSlot; s < call.firstSlot + call.batch; ++s)
        endsSome |= fed[s] == lengths[s];
      if (!endsSome && chunk != 0 && chunk <= maxSeq)
        EXPECT_EQ(call.seq % chunk, 0u);
    }
    EXPECT_EQ(fed, lengths);
    // Without splitting, each call finishes at least one slot.
    if (*std::max_element(lengths.begin(), lengths.end()) <= maxSeq)
      EXPECT_LE(calls, n);
  }
}

//===----------------------------------------------------------------------===//
// Generation
//===----------------------------------------------------------------------===//

struct Fixture {
  artifact::Artifact artifact = makeFakeArtifact();
  FakeBackend backend;
  explicit Fixture(Limits limits) : backend(artifact, limits) {}
};

TEST(GeneratorTest, HistoryIsPromptPlusGeneratedAndMatchesSimulation) {
  Fixture f({4, 6});
  std::vector<std::vector<std::int32_t>> prompts = {iotaPrompt(5, 1), iotaPrompt(17, 2),
                                                    iotaPrompt(3, 3), iotaPrompt(17, 4)};
  GenerateOptions options;
  options.maxNewTokens = 7;
  options.ignoreEos = true;
  Generator generator(f.backend);
  GenerateResult result = generator.generate(prompts, options);

  ASSERT_EQ(result.sequences.size(), prompts.size());
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const std::vector<std::int32_t> &generated = result.sequences[i].tokens;
    EXPECT_EQ(generated, simulateGreedy(prompts[i], 7)) << "sequence " << i;
    std::vector<std::int32_t> expected = prompts[i];
    expected.insert(expected.end(), generated.begin(), generated.end() - 1);
    EXPECT_EQ(f.backend.histories[i], expected) << "sequence " << i;
    EXPECT_EQ(result.sequences[i].stop, StopReason::MaxTokens);
  }
  ASSERT_EQ(f.backend.resets.size(), 1u);
  EXPECT_EQ(f.backend.resets[0], (std::pair<std::uint64_t, std::uint64_t>{0, 4}));

  // The plan: all four for 3 tokens, slots 0..1 for 2 more, slot 1 for 12 more (max 6, chunk 4:
  // 4 + 4 + 4), slot 3 for 14 more (4 + 4 + 6); then 6 decode steps over all slots.
  std::vector<Call> expected = {{"prefill", 0, 4, 3}, {"prefill", 0, 2, 2}, {"prefill", 1, 1, 4},
                                {"prefill", 1, 1, 4}, {"prefill", 1, 1, 4}, {"prefill", 3, 1, 4},
                                {"prefill", 3, 1, 4}, {"prefill", 3, 1, 6}};
  for (int step = 1; step < 7; ++step)
    expected.push_back({"decode_step", 0, 4, 1});
  EXPECT_EQ(f.backend.calls, expected);

  const GenerateStats &stats = result.stats;
  EXPECT_EQ(stats.sequences, 4u);
  EXPECT_EQ(stats.promptTokens, 5u + 17 + 3 + 17);
  EXPECT_EQ(stats.generatedTokens, 28u);
  EXPECT_EQ(stats.prefillCalls, 8u);
  EXPECT_EQ(stats.decodeCalls, 6u);
  EXPECT_GE(stats.totalSeconds, stats.timeToFirstTokenSeconds);
  EXPECT_GE(stats.decodeTokensPerSecond, 0.0);
}

TEST(GeneratorTest, EosStopsASequenceAndOthersContinue) {
  Fixture f({3, 64});
  std::vector<std::vector<std::int32_t>> prompts = {iotaPrompt(4, 7), iotaPrompt(6, 8),
                                                    iotaPrompt(5, 9)};
  // Make the middle sequence's third greedy token the EOS id.
  std::vector<std::int32_t> middle = simulateGreedy(prompts[1], 8);
  GenerateOptions options;
  options.maxNewTokens = 8;
  options.eosTokenId = middle[2];
  std::vector<std::pair<std::size_t, StopReason>> finishes;
  std::vector<std::vector<std::int32_t>> streamed(3);
  GenerateCallbacks callbacks;
  callbacks.onToken = [&](std::size_t s, std::int32_t t) { streamed[s].push_back(t); };
  callbacks.onFinish = [&](std::size_t s, StopReason r) { finishes.push_back({s, r}); };
  GenerateResult result = Generator(f.backend).generate(prompts, options, callbacks);

  for (std::size_t i = 0; i < 3; ++i) {
    std::vector<std::int32_t> expected = simulateGreedy(prompts[i], 8, middle[2]);
    EXPECT_EQ(result.sequences[i].tokens, expected) << "sequence " << i;
    EXPECT_EQ(streamed[i], expected);
    EXPECT_EQ(result.sequences[i].stop,
              expected.back() == middle[2] ? StopReason::Eos : StopReason::MaxTokens);
  }
  ASSERT_EQ(result.sequences[1].tokens.size(), 3u);
  EXPECT_EQ(result.sequences[1].stop, StopReason::Eos);
  // Each sequence finishes once; the middle one first.
  ASSERT_EQ(finishes.size(), 3u);
  EXPECT_EQ(finishes[0], (std::pair<std::size_t, StopReason>{1, StopReason::Eos}));
  // The finished middle sequence keeps being fed (it lies between live slots): its history grows
  // by its EOS token for every later step.
  std::uint64_t laterSteps = 8 - 3;
  EXPECT_EQ(f.backend.histories[1].size(), prompts[1].size() + 2 + laterSteps);
  EXPECT_EQ(f.backend.histories[1].back(), middle[2]);
  for (const Call &call : f.backend.calls)
    if (call.function == "decode_step")
      EXPECT_EQ(call, (Call{"decode_step", 0, 3, 1}));
}

TEST(GeneratorTest, FinishedSequencesAtTheEdgesLeaveTheBatch) {
  Fixture f({3, 64});
  std::vector<std::vector<std::int32_t>> prompts = {iotaPrompt(4, 7), iotaPrompt(6, 8),
                                                    iotaPrompt(5, 9)};
  GenerateOptions options;
  options.maxNewTokens = 8;
  options.forcedTokens = {{5, kEos}, {}, {}}; // sequence 0 stops after two tokens
  GenerateResult result = Generator(f.backend).generate(prompts, options);
  EXPECT_EQ(result.sequences[0].tokens, (std::vector<std::int32_t>{5, kEos}));
  EXPECT_EQ(result.sequences[0].stop, StopReason::Eos);
  for (std::size_t i = 1; i < 3; ++i)
    EXPECT_EQ(result.sequences[i].tokens, simulateGreedy(prompts[i], 8, kEos));
  // Slot 0 is at the edge of the batch: after its EOS it is not fed again.
  std::vector<std::int32_t> expected = prompts[0];
  expected.push_back(5);
  EXPECT_EQ(f.backend.histories[0], expected);
  std::size_t fromSlot0 = 0;
  for (const Call &call : f.backend.calls)
    if (call.function == "decode_step") {
      fromSlot0 += call.firstSlot == 0;
      EXPECT_EQ(call.firstSlot + call.batch, 3u); // slot 2 runs to the end
    }
  EXPECT_EQ(fromSlot0, 1u);
}

TEST(GeneratorTest, IgnoreEosAndMaxTokens) {
  Fixture f({2, 64});
  std::vector<std::vector<std::int32_t>> prompts = {iotaPrompt(4, 7), iotaPrompt(6, 8)};
  std::vector<std::int32_t> a = simulateGreedy(prompts[0], 10);
  GenerateOptions options;
  options.maxNewTokens = 10;
  options.eosTokenId = a[0];
  options.ignoreEos = true;
  GenerateResult result = Generator(f.backend).generate(prompts, options);
  EXPECT_EQ(result.sequences[0].tokens, a);
  EXPECT_EQ(result.sequences[1].tokens, simulateGreedy(prompts[1], 10));

  // Without ignoreEos, the first token stops it.
  options.ignoreEos = false;
  result = Generator(f.backend).generate(prompts, options);
  EXPECT_EQ(result.sequences[0].tokens, (std::vector<std::int32_t>{a[0]}));
  EXPECT_EQ(result.sequences[0].stop, StopReason::Eos);

  // The artifact's EOS id is the default.
  options = {};
  options.maxNewTokens = 3;
  result = Generator(f.backend).generate(prompts, options);
  for (std::size_t i = 0; i < 2; ++i)
    EXPECT_EQ(result.sequences[i].tokens, simulateGreedy(prompts[i], 3, kEos));

  // One token: prefill only, no decode step.
  f.backend.calls.clear();
  options.maxNewTokens = 1;
  result = Generator(f.backend).generate(prompts, options);
  EXPECT_EQ(result.sequences[0].tokens.size(), 1u);
  EXPECT_EQ(result.stats.decodeCalls, 0u);
  EXPECT_EQ(result.stats.decodeTokensPerSecond, 0.0);
  EXPECT_TRUE(std::none_of(f.backend.calls.begin(), f.backend.calls.end(),
                           [](const Call &c) { return c.function == "decode_step"; }));

  // Zero tokens: the prompts are still fed (the state is ready), nothing is generated.
  options.maxNewTokens = 0;
  int finishes = 0;
  GenerateCallbacks callbacks;
  callbacks.onFinish = [&](std::size_t, StopReason r) {
    EXPECT_EQ(r, StopReason::MaxTokens);
    ++finishes;
  };
  result = Generator(f.backend).generate(prompts, options, callbacks);
  EXPECT_EQ(result.stats.generatedTokens, 0u);
  EXPECT_EQ(finishes, 2);
  EXPECT_EQ(f.backend.histories[1], prompts[1]);
}

TEST(GeneratorTest, ForcedTokensReplaceDrawsAndLogitsFollowThem) {
  Fixture f({2, 64});
  std::vector<std::vector<std::int32_t>> prompts = {iotaPrompt(4, 7), iotaPrompt(6, 8)};
  GenerateOptions options;
  options.maxNewTokens = 6;
  options.ignoreEos = true;
  options.forcedTokens = {{}, {11, 12, 13}};
  std::map<std::pair<std::size_t, std::uint64_t>, std::vector<float>> seen;
  GenerateCallbacks callbacks;
  callbacks.onLogits = [&](std::size_t s, std::uint64_t step, std::span<const float> row) {
    seen[{s, step}] = std::vector<float>(row.begin(), row.end());
  };
  GenerateResult result = Generator(f.backend).generate(prompts, options, callbacks);

  EXPECT_EQ(result.sequences[0].tokens, simulateGreedy(prompts[0], 6));
  std::vector<std::int32_t> history = prompts[1];
  history.insert(history.end(), {11, 12, 13});
  std::vector<std::int32_t> expected = {11, 12, 13};
  for (std::int32_t t : simulateGreedy(history, 3))
    expected.push_back(t);
  EXPECT_EQ(result.sequences[1].tokens, expected);

  // Logits of step j are those of prompt + tokens[:j], for every sequence and step.
  ASSERT_EQ(seen.size(), 12u);
  for (std::size_t s = 0; s < 2; ++s)
    for (std::uint64_t step = 0; step < 6; ++step) {
      std::vector<std::int32_t> h = prompts[s];
      h.insert(h.end(), result.sequences[s].tokens.begin(),
               result.sequences[s].tokens.begin() + static_cast<std::ptrdiff_t>(step));
      std::vector<float> row(kVocab);
      fakeLogits(h, row);
      EXPECT_EQ(seen.at(std::make_pair(s, step)), row) << "sequence " << s << " step " << step;
    }
}

TEST(GeneratorTest, BatchedAndUnbatchedSampleTheSame) {
  std::vector<std::vector<std::int32_t>> prompts = {iotaPrompt(9, 1), iotaPrompt(3, 2),
                                                    iotaPrompt(9, 1)};
  GenerateOptions options;
  options.maxNewTokens = 12;
  options.ignoreEos = true;
  options.sampling.temperature = 1.0;
  options.sampling.seed = 77;
  Fixture batched({3, 5});
  GenerateResult all = Generator(batched.backend).generate(prompts, options);
  // The same prompt in slots 0 and 2 samples differently (different streams)...
  EXPECT_NE(all.sequences[0].tokens, all.sequences[2].tokens);
  // ...and each sequence alone, on its stream, reproduces its batched tokens.
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    Fixture single({1, 64});
    GenerateOptions alone = options;
    alone.rngStreams = {i};
    GenerateResult r = Generator(single.backend).generate({prompts[i]}, alone);
    EXPECT_EQ(r.sequences[0].tokens, all.sequences[i].tokens) << "sequence " << i;
  }
  // Sampling really happened (the greedy result differs).
  EXPECT_NE(all.sequences[0].tokens, simulateGreedy(prompts[0], 12));
}

TEST(GeneratorTest, DrawsOnTheBackendAndLogitsComeBackOnlyForOnLogits) {
  std::vector<std::vector<std::int32_t>> prompts = {iotaPrompt(4, 7), iotaPrompt(9, 8),
                                                    iotaPrompt(5, 9)};
  GenerateOptions options;
  options.maxNewTokens = 7;
  options.sampling.temperature = 1.0;
  options.sampling.topK = 20;
  options.sampling.seed = 5;
  options.rngStreams = {10, 11, 12};
  // Sequence 1 stops after 3 tokens inside the batch.
  options.forcedTokens = {{}, {1, 1, kEos}, {}};
  Fixture host({3, 64});
  const GenerateResult expected = Generator(host.backend).generate(prompts, options);
  EXPECT_GT(host.backend.downloads, 0u); // the default draw downloads the rows

  Fixture device({3, 64});
  device.backend.drawsInPlace = true;
  const GenerateResult result = Generator(device.backend).generate(prompts, options);
  for (std::size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(result.sequences[i].tokens, expected.sequences[i].tokens) << "sequence " << i;
  EXPECT_EQ(device.backend.downloads, 0u) << "no onLogits: no logits may come back";

  // What was asked of the backend: prefill draws only for the sequences whose prompt ends in the
  // call (step 0), decode draws for the live sequences (step = their token count), streams as
  // given, sequence 1's row inactive once it has produced its EOS.
  std::vector<std::uint64_t> drawn(3, 0);
  for (const FakeBackend::SeenDraw &d : device.backend.draws) {
    for (std::size_t b = 0; b < d.rows.size(); ++b) {
      const std::size_t i = d.firstSlot + b;
      const DrawRow &row = d.rows[b];
      if (!row.active)
        continue;
      EXPECT_EQ(row.stream, options.rngStreams[i]);
      EXPECT_EQ(row.step, drawn[i]) << d.function << " sequence " << i;
      if (d.function == "prefill")
        EXPECT_EQ(row.step, 0u);
      ++drawn[i];
    }
  }
  EXPECT_EQ(drawn, (std::vector<std::uint64_t>{7, 3, 7}));

  // onLogits needs the rows: then they come back too.
  Fixture withLogits({3, 64});
  withLogits.backend.drawsInPlace = true;
  GenerateCallbacks callbacks;
  std::size_t rows = 0;
  callbacks.onLogits = [&](std::size_t, std::uint64_t, std::span<const float> row) {
    EXPECT_EQ(row.size(), kVocab);
    ++rows;
  };
  const GenerateResult again = Generator(withLogits.backend).generate(prompts, options, callbacks);
  EXPECT_EQ(rows, 7u + 3 + 7);
  EXPECT_GT(withLogits.backend.downloads, 0u);
  for (std::size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(again.sequences[i].tokens, expected.sequences[i].tokens) << "sequence " << i;
}

TEST(GeneratorTest, Errors) {
  Fixture f({2, 8});
  Generator generator(f.backend);
  GenerateOptions options;
  std::string message = errorOf([&] { generator.generate({{1}, {2}, {3}}, options); });
  EXPECT_NE(message.find("3 prompts but the backend was created for 2 sequence slot(s)"),
            std::string::npos)
      << message;
  message = errorOf([&] { generator.generate({}, options); });
  EXPECT_NE(message.find("no prompts"), std::string::npos) << message;
  message = errorOf([&] { generator.generate({{1, 2}, {}}, options); });
  EXPECT_NE(message.find("prompt 1 is empty"), std::string::npos) << message;
  message = errorOf([&] { generator.generate({{1, 2, 48}}, options); });
  EXPECT_NE(message.find("prompt 0: token 2 is 48, outside the vocabulary [0, 48)"),
            std::string::npos)
      << message;
  message = errorOf([&] { generator.generate({{1, -1}}, options); });
  EXPECT_NE(message.find("token 1 is -1"), std::string::npos) << message;
  options.forcedTokens = {{1}};
  message = errorOf([&] { generator.generate({{1}, {2}}, options); });
  EXPECT_NE(message.find("forced tokens are given for 1 sequences, but there are 2 prompts"),
            std::string::npos)
      << message;
  options.forcedTokens = {{1}, {99}};
  message = errorOf([&] { generator.generate({{1}, {2}}, options); });
  EXPECT_NE(message.find("forced tokens of sequence 1: token 0 is 99"), std::string::npos)
      << message;
  options.forcedTokens.clear();
  options.rngStreams = {0, 1, 2};
  message = errorOf([&] { generator.generate({{1}, {2}}, options); });
  EXPECT_NE(message.find("RNG streams"), std::string::npos) << message;
  options.rngStreams.clear();
  options.sampling.topP = 0;
  message = errorOf([&] { generator.generate({{1}, {2}}, options); });
  EXPECT_NE(message.find("top-p"), std::string::npos) << message;
  EXPECT_TRUE(f.backend.calls.empty()) << "arguments must be checked before any backend call";

  // NaN logits name the sequence and the step.
  options = {};
  options.maxNewTokens = 5;
  options.ignoreEos = true;
  f.backend.poisonSlot = 1;
  f.backend.poisonAfter = 4 + 2; // prompt of 4, then the decode step that feeds token 1
  message = errorOf([&] { generator.generate({{1, 2, 3}, {4, 5, 6, 7}}, options); });
  EXPECT_NE(message.find("sequence 1, step 2"), std::string::npos) << message;
  EXPECT_NE(message.find("NaN"), std::string::npos) << message;
}

} // namespace
} // namespace xlc::exec
