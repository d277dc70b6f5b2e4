//===- TuningSpaceTest.cpp - Every family's tuning space, enumerated ------===//
//
// Issue 12's CI proof for tuning spaces (docs/auto-tuning.md): around every kernel the compiler
// emits for the models under test (XLC_TUNING_ARTIFACTS, '|'-separated), the family's space is
// enumerated; the default is a valid point and comes first, variants keep the problem
// (problemKey) and differ in their identity (variantTile), every valid variant renders into a
// kernel the validator accepts, and a deterministic sample of them compiles with NVRTC for
// sm_90a (skipped without libnvrtc).
// Constraint unit tests pin the reasons a point is refused.
//
//===----------------------------------------------------------------------===//
#include "runtime/artifact/Serialize.h"
#include "runtime/cuda/Nvrtc.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/kernels/KernelFamily.h"
#include "runtime/kernels/Tuning.h"
#include "runtime/support/Error.h"
#include "test/gpu/harness/GpuSkip.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace xlc::kernels {
namespace {

/// One kernel problem of the artifacts under test: a family and the compiler's configuration.
struct Problem {
  const FamilyDef *family = nullptr;
  Config config;
  std::string origin; ///< "<artifact>: <kernel name>"
};

/// The distinct (family, problem) pairs of every artifact in XLC_TUNING_ARTIFACTS.
const std::vector<Problem> &problems() {
  static const std::vector<Problem> all = [] {
    std::vector<Problem> out;
    std::set<std::string> seen;
    std::stringstream list(XLC_TUNING_ARTIFACTS);
    std::string path;
    while (std::getline(list, path, '|')) {
      const artifact::Artifact a = artifact::loadArtifact(path);
      for (const artifact::Kernel &k : a.kernels) {
        const FamilyDef *family = findFamily(k.family);
        if (!family || !seen.insert(k.family + " " + k.config.dump()).second)
          continue;
        out.push_back({family, k.config, path.substr(path.find_last_of('/') + 1) + ": " + k.name});
      }
    }
    return out;
  }();
  return all;
}

Config rowConfig(std::int64_t threads) {
  return {{"dtype", "bf16"}, {"dim", 4096}, {"threads", threads}, {"has_weight", true}};
}

Config cellConfig(std::int64_t dqk, std::int64_t dv) {
  return {{"dtype", "bf16"},      {"gate_dtype", "f32"},  {"state_dtype", "f32"},
          {"num_heads", 8},       {"qk_head_dim", dqk},   {"v_head_dim", dv},
          {"input_gate", "exp"},  {"normalizer", "max_abs"}};
}

TEST(TuningSpace, ArtifactsUnderTestHaveKernelsWithSpaces) {
  ASSERT_FALSE(problems().empty());
  std::set<std::string_view> tunable;
  for (const Problem &p : problems())
    if (!tuningKnobs(*p.family, p.config).empty())
      tunable.insert(p.family->name);
  // At least the row kernels and the chunkwise forward of every model.
  EXPECT_TRUE(tunable.count("rms_norm"));
  EXPECT_TRUE(tunable.count("mlstm_decode_step"));
}

TEST(TuningSpace, DefaultIsValidFirstAndVariantsKeepTheProblem) {
  for (const Problem &p : problems()) {
    SCOPED_TRACE(p.origin + " " + p.config.dump());
    TuningSpace space;
    ASSERT_NO_THROW(space = tuningSpace(*p.family, p.config));
    ASSERT_FALSE(space.valid.empty());
    EXPECT_EQ(space.valid.front(), p.config);
    const std::string key = problemKey(*p.family, p.config);
    std::set<std::string> tiles, dumps;
    for (const Config &v : space.valid) {
      EXPECT_EQ(problemKey(*p.family, v), key) << v.dump();
      EXPECT_TRUE(tiles.insert(variantTile(*p.family, v)).second)
          << "two variants share the identity " << variantTile(*p.family, v);
      EXPECT_TRUE(dumps.insert(v.dump()).second);
      EXPECT_EQ(variantProblem(*p.family, v), "");
    }
    for (const auto &[config, why] : space.rejected)
      EXPECT_FALSE(why.empty()) << config.dump();
    const std::size_t points = [&] {
      std::size_t n = 1;
      for (const TuningKnob &k : tuningKnobs(*p.family, p.config))
        n *= k.values.size();
      return n;
    }();
    // The product of the knobs, plus the default when it lies outside the knobs' values.
    EXPECT_GE(space.valid.size() + space.rejected.size(), points);
    EXPECT_LE(space.valid.size() + space.rejected.size(), points + 1);
  }
}

TEST(TuningSpace, EveryValidVariantRendersAKernelTheValidatorAccepts) {
  std::map<std::string_view, std::pair<std::size_t, std::size_t>> perFamily; // valid, refused
  for (const Problem &p : problems()) {
    const TuningSpace space = tuningSpace(*p.family, p.config);
    perFamily[p.family->name].first += space.valid.size();
    perFamily[p.family->name].second += space.rejected.size();
    for (const Config &v : space.valid) {
      SCOPED_TRACE(p.origin + " " + v.dump());
      artifact::Kernel k;
      ASSERT_NO_THROW(k = renderKernel(*p.family, v, variantTile(*p.family, v)));
      k.name = "variant";
      EXPECT_NO_THROW(checkKernel(k, "variant"));
      EXPECT_LE(k.sharedBytes, kMaxSharedBytes);
    }
  }
  for (const auto &[family, counts] : perFamily)
    std::printf("%-24s %5zu valid variants, %5zu refused\n", std::string(family).c_str(),
                counts.first, counts.second);
}

TEST(TuningSpace, EnumeratesTheKnobsLastFastest) {
  const FamilyDef &rms = *findFamily("rms_norm");
  const TuningSpace space = tuningSpace(rms, rowConfig(256));
  std::vector<std::int64_t> threads;
  for (const Config &v : space.valid)
    threads.push_back(v["threads"].get<std::int64_t>());
  EXPECT_EQ(threads, (std::vector<std::int64_t>{256, 32, 64, 128, 512, 1024}));
  EXPECT_TRUE(space.rejected.empty());
  EXPECT_EQ(variantTile(rms, rowConfig(128)), "#xk.tile<threads = 128>");
  EXPECT_EQ(problemKey(rms, rowConfig(128)), problemKey(rms, rowConfig(1024)));
  Config wider = rowConfig(128);
  wider["dim"] = 2048;
  EXPECT_NE(problemKey(rms, rowConfig(128)), problemKey(rms, wider));
}

TEST(TuningSpace, ConstraintsNameWhyAPointIsRefused) {
  const FamilyDef &fused = *findFamily("mlstm_chunk_fused");
  Config c = cellConfig(256, 512);
  c.update({{"chunk", 64}, {"tile_v", 64}, {"key_split", 2}});
  EXPECT_EQ(variantProblem(fused, c), "");
  // Four warps per strip at chunk 32: 8 keys each, not whole 16-key steps.
  Config split = c;
  split.update({{"chunk", 32}, {"key_split", 4}});
  EXPECT_NE(variantProblem(fused, split).find("16-key"), std::string::npos)
      << variantProblem(fused, split);
  // DV tile 256 at DQK 256: two stages of q, k, v and P̃ plus the C tile exceed 227 KiB.
  Config wide = c;
  wide["tile_v"] = 256;
  EXPECT_NE(variantProblem(fused, wide).find("shared memory"), std::string::npos)
      << variantProblem(fused, wide);

  const FamilyDef &states = *findFamily("mlstm_chunk_states");
  Config s = cellConfig(256, 512);
  s.update({{"chunk", 64}, {"tile_k", 32}, {"tile_v", 64}, {"threads", 128}, {"resets", false}});
  EXPECT_NE(variantProblem(states, s).find("strips"), std::string::npos); // 4 warps, 2 strips

  const FamilyDef &decode = *findFamily("mlstm_decode_step");
  Config d = cellConfig(256, 512);
  d.update({{"block_dv", 64}, {"threads", 64}});
  EXPECT_EQ(variantProblem(decode, d), ""); // 16 column threads of 4 f32 each
  d["block_dv"] = 24; // 6 column threads: 64 threads are not whole rows of them
  EXPECT_NE(variantProblem(decode, d).find("tile rows"), std::string::npos)
      << variantProblem(decode, d);
  EXPECT_NE(variantProblem(*findFamily("rms_norm"), rowConfig(48)), "");
  EXPECT_NE(variantProblem(*findFamily("rms_norm"), rowConfig(2048)), "");
}

TEST(TuningSpace, TheDefaultMustBeValid) {
  Config c = cellConfig(256, 512);
  c.update({{"chunk", 32}, {"tile_v", 64}, {"key_split", 4}});
  try {
    tuningSpace(*findFamily("mlstm_chunk_fused"), c);
    FAIL() << "an invalid default was accepted";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("mlstm_chunk_fused"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a valid variant"), std::string::npos) << e.what();
  }
}

TEST(TuningSpace, SpreadSampleTakesBothEndsAndStaysInRange) {
  EXPECT_EQ(spreadSample(10, 3), (std::vector<std::size_t>{0, 4, 9}));
  EXPECT_EQ(spreadSample(2, 3), (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(spreadSample(5, 1), (std::vector<std::size_t>{0}));
  EXPECT_TRUE(spreadSample(0, 3).empty());
}

// A sample of every space compiles: per problem, the variant in the middle of the valid list and
// the last one (the largest tiles and thread counts the knobs reach, the hardest to fit).
TEST(TuningSpace, SampledVariantsCompileWithNvrtcForSm90a) {
  std::string reason;
  if (!cuda::Nvrtc::available(&reason))
    XLC_SKIP_OR_FAIL("libnvrtc cannot be loaded: " << reason);
  std::vector<cuda::NvrtcHeader> headers;
  for (const device::EmbeddedHeader &h : device::embeddedHeaders())
    headers.push_back({h.name, h.text});
  std::vector<artifact::Kernel> kernels;
  std::set<std::string> sources;
  for (const Problem &p : problems()) {
    const TuningSpace space = tuningSpace(*p.family, p.config);
    for (std::size_t i : spreadSample(space.valid.size(), 3)) {
      if (i == 0)
        continue; // the default: compiled by the models' own tests
      artifact::Kernel k = renderKernel(*p.family, space.valid[i],
                                        variantTile(*p.family, space.valid[i]));
      k.name = p.origin;
      if (sources.insert(k.source).second)
        kernels.push_back(std::move(k));
    }
  }
  std::atomic<std::size_t> next = 0;
  std::mutex mutex;
  std::vector<std::string> failures;
  auto worker = [&] {
    for (std::size_t i; (i = next++) < kernels.size();) {
      const artifact::Kernel &k = kernels[i];
      std::vector<std::string> options = cuda::Nvrtc::defaultOptions("sm_90a");
      options.insert(options.end(), k.options.begin(), k.options.end());
      try {
        std::string log;
        const std::vector<char> cubin =
            cuda::Nvrtc::instance().compile(k.source, k.family + ".cu", options, headers, &log);
        if (cubin.size() < 4 || std::string(cubin.data() + 1, 3) != "ELF")
          throw Error("no CUBIN");
      } catch (const std::exception &e) {
        std::lock_guard lock(mutex);
        failures.push_back(fmt::format("{} {} {}: {}", k.name, k.family, k.tile, e.what()));
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < std::max(1u, std::thread::hardware_concurrency()); ++t)
    threads.emplace_back(worker);
  for (std::thread &t : threads)
    t.join();
  std::printf("%zu sampled variants compiled for sm_90a\n", kernels.size());
  for (const std::string &f : failures)
    ADD_FAILURE() << f;
}

} // namespace
} // namespace xlc::kernels
