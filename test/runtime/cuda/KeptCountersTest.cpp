//===- KeptCountersTest.cpp - Which counters may stay out of the arena ----===//
//
// runtime/exec/cuda/KeptCounters.h on the sig/tied fixture model (CI, no GPU): the counters of
// every decode-step cell and every fused chunkwise state pass (in prefill and score) are kept,
// nothing else is; a counter that another step also names, or that carries an error-flag duty,
// or whose zero duty is gone, is not.
//
//===----------------------------------------------------------------------===//
#include "runtime/artifact/Artifact.h"
#include "runtime/artifact/Serialize.h"
#include "runtime/exec/cuda/KeptCounters.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace xlc::exec {
namespace {
namespace art = xlc::artifact;

/// The buffers passed as "counters" by the mLSTM launches of |a|, all functions.
std::set<art::BufferId> counterArgs(const art::Artifact &a) {
  std::set<art::BufferId> ids;
  for (const art::Function &f : a.functions)
    for (const art::Step &step : f.steps)
      if (const art::LaunchStep *launch = step.launch()) {
        const art::Kernel &k = a.kernels[launch->kernel];
        for (std::size_t i = 0; i < k.params.size(); ++i)
          if (k.params[i].name == "counters")
            ids.insert(launch->args[i].bufferId);
      }
  return ids;
}

/// The first step of |a| that passes |id| as an argument, and that argument's index.
std::pair<art::Step *, std::size_t> firstUse(art::Artifact &a, art::BufferId id) {
  for (art::Function &f : a.functions)
    for (art::Step &step : f.steps)
      if (const art::LaunchStep *launch = step.launch())
        for (std::size_t i = 0; i < launch->args.size(); ++i)
          if (launch->args[i].kind == art::ArgKind::Buffer && launch->args[i].bufferId == id)
            return {&step, i};
  throw std::runtime_error("buffer not used");
}

class KeptCounters : public ::testing::Test {
protected:
  void SetUp() override { artifact_ = art::loadArtifact(XLC_GEMV_FUSION_ARTIFACT); }
  art::Artifact artifact_;
};

TEST_F(KeptCounters, EveryMlstmCounterIsKeptAndNothingElse) {
  const std::set<art::BufferId> expected = counterArgs(artifact_);
  // Three blocks: a decode cell each in decode_step, a state pass each in prefill and score.
  ASSERT_EQ(expected.size(), 9u);
  const std::vector<art::BufferId> kept = findKeptCounters(artifact_);
  EXPECT_EQ(std::set<art::BufferId>(kept.begin(), kept.end()), expected);
  EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end()));
}

TEST_F(KeptCounters, AnotherUseDisqualifies) {
  const art::BufferId id = *counterArgs(artifact_).begin();
  // The same buffer also as D of some GEMM: its contents are then observable.
  for (art::Function &f : artifact_.functions)
    for (art::Step &step : f.steps)
      if (art::GemmStep *g = std::get_if<art::GemmStep>(&step.body)) {
        g->d = id;
        const std::vector<art::BufferId> kept = findKeptCounters(artifact_);
        EXPECT_EQ(std::count(kept.begin(), kept.end(), id), 0);
        return;
      }
  FAIL() << "no GEMM step";
}

TEST_F(KeptCounters, ErrorFlagOrMissingZeroDisqualifies) {
  const art::BufferId id = *counterArgs(artifact_).begin();
  art::Step *step = firstUse(artifact_, id).first;
  step->duties.push_back({art::DutyKind::ErrorFlag, id});
  std::vector<art::BufferId> kept = findKeptCounters(artifact_);
  EXPECT_EQ(std::count(kept.begin(), kept.end(), id), 0);
  step->duties.clear();
  kept = findKeptCounters(artifact_);
  EXPECT_EQ(std::count(kept.begin(), kept.end(), id), 0);
}

} // namespace
} // namespace xlc::exec
