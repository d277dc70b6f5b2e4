//===- ArtifactFuzzExecTest.cpp - Mutated artifacts, executed -------------===//
//
// Structure-aware fuzzing of the whole path a user's artifact takes: a compiled model
// (fixtures/xlstm-sig-tied.xlca, kept identical to what xlc-compile writes by the
// exec_fixture_current test of the full build) has one JSON value changed at a time -- a size, an
// offset, an argument, a buffer id, an enum string, a configuration field -- and is re-wrapped with
// a valid checksum, so the mutation reaches the validator instead of the checksum check. Whatever
// survives validation is executed on the CPU backend (prefill and a decode step). Every outcome
// must be a clean xlc::Error or a finished call; the runtime-only tree runs this under
// AddressSanitizer and UBSan, which turn any out-of-bounds access or overflow into a failure.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/exec/cpu/CpuBackend.h"
#include "runtime/reference/RandomCheckpoint.h"
#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

namespace xlc::exec {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::vector<std::uint8_t> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

/// Every leaf (number, string, bool) of |j| as a JSON pointer, except kernel sources (a changed
/// source is refused by one string comparison; the budget is better spent elsewhere).
void collectLeaves(const Json &j, const Json::json_pointer &at, std::vector<Json::json_pointer> &out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "source")
        collectLeaves(it.value(), at / it.key(), out);
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i)
      collectLeaves(j[i], at / i, out);
  } else {
    out.push_back(at);
  }
}

/// A replacement for |value| that is likely to matter: boundaries, neighbours, huge values,
/// other spellings.
Json mutate(const Json &value, std::mt19937_64 &rng) {
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  if (value.is_boolean())
    return !value.get<bool>();
  if (value.is_string()) {
    static const char *words[] = {"", "B", "S", "BS", "bf16", "f32", "i64", "i32", "u8",
                                  "weight", "state", "workspace", "parameter", "zero",
                                  "error_flag", "accumulate", "exp", "sigmoid", "none",
                                  "embedding", "rms_norm", "mlstm_chunk_states", "prefill"};
    return words[pick(sizeof(words) / sizeof(*words))];
  }
  if (value.is_number_float()) {
    static const double reals[] = {0.0, -1.0, 1e-30, 1e30, 3.4e38, -0.0, 0.5};
    return reals[pick(sizeof(reals) / sizeof(*reals))];
  }
  if (value.is_null()) // a GEMM without operand c: give it one
    return static_cast<std::int64_t>(pick(64));
  const std::int64_t v = value.is_number_unsigned()
                             ? static_cast<std::int64_t>(value.get<std::uint64_t>())
                             : value.get<std::int64_t>();
  const std::int64_t big[] = {0, 1, -1, 2, v + 1, v - 1, v * 2, v / 2, 7, 16, 255, 256,
                              std::int64_t{1} << 31, std::int64_t{1} << 32,
                              std::int64_t{1} << 58, std::int64_t{1} << 62,
                              std::numeric_limits<std::int64_t>::max()};
  const std::int64_t r = big[pick(sizeof(big) / sizeof(*big))];
  if (r < 0 && value.is_number_unsigned())
    return r; // a negative where the schema wants u64: the parser must say so
  return r;
}

TEST(ArtifactFuzzExec, MutatedArtifactsFailCleanlyOrRun) {
  const std::vector<std::uint8_t> original = readFile(XLC_FUZZ_ARTIFACT);
  ASSERT_FALSE(original.empty()) << "missing " << XLC_FUZZ_ARTIFACT;
  const artifact::Artifact base = artifact::parseArtifact(original, "fixture.xlca");

  // Random weights for the fixture's model, once.
  const fs::path dir = fs::temp_directory_path() / ("xlc-fuzz-exec-" + std::to_string(::getpid()));
  const ref::ModelConfig config = ref::modelConfigFromHfJson(XLC_FUZZ_CONFIG);
  ref::writeCheckpoint(config, ref::randomWeights(config, 11), dir.string(),
                             weights::DType::F32);
  const weights::Checkpoint checkpoint = weights::Checkpoint::open(dir.string());
  // The unmutated fixture runs.
  const Limits limits{2, 20};
  {
    std::unique_ptr<Backend> cpu = createCpuBackend(base, checkpoint, limits, 2);
    std::vector<std::int32_t> tokens(2 * 13, 5);
    std::vector<float> logits(2 * cpu->vocabSize());
    cpu->run("prefill", 0, 2, 13, tokens, logits);
    EXPECT_TRUE(std::isfinite(logits[0]));
  }

  const Json payload = Json::parse(artifact::unwrapContainer(original, "fixture.xlca"));
  std::vector<Json::json_pointer> leaves;
  collectLeaves(payload, Json::json_pointer(), leaves);
  ASSERT_GT(leaves.size(), 1000u);

  std::mt19937_64 rng(20261206);
  const int iterations = 2000;
  int parsedOk = 0, built = 0, ran = 0;
  for (int i = 0; i < iterations; ++i) {
    Json mutated = payload;
    const Json::json_pointer &at =
        leaves[std::uniform_int_distribution<std::size_t>(0, leaves.size() - 1)(rng)];
    mutated[at] = mutate(mutated[at], rng);
    const std::vector<std::uint8_t> bytes = artifact::wrapContainer(mutated.dump());
    SCOPED_TRACE(::testing::Message() << "mutation " << i << ": " << at.to_string() << " = "
                                      << mutated[at].dump());
    try {
      artifact::Artifact a = artifact::parseArtifact(bytes, "mutated.xlca");
      ++parsedOk;
      std::unique_ptr<Backend> cpu = createCpuBackend(a, checkpoint, limits, 2);
      ++built;
      std::vector<std::int32_t> tokens(2 * 13, 7);
      std::vector<float> logits(2 * cpu->vocabSize());
      cpu->run("prefill", 0, 2, 13, tokens, logits);
      cpu->run("decode_step", 0, 2, 1, std::span(tokens).first(2), logits);
      ++ran;
    } catch (const Error &) {
      // A clean refusal, naming what is wrong: the outcome we want for a broken artifact.
    }
  }
  std::printf("[ measure  ] %d mutations: %d parsed, %d passed every check, %d ran both "
              "functions\n",
              iterations, parsedOk, built, ran);
  // The fuzzing must reach execution, or it tests only the validator.
  EXPECT_GT(ran, iterations / 20);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

} // namespace
} // namespace xlc::exec
