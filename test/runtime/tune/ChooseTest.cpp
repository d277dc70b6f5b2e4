//===- ChooseTest.cpp - The tuner's decision rule ------------------------===//

#include "runtime/support/Error.h"
#include "runtime/tune/Choose.h"

#include <gtest/gtest.h>


namespace xlc::tune {
namespace {

Candidate timed(const std::string &tile, double median, double spread = 0.0) {
  Candidate c;
  c.tile = tile;
  c.medianUs = median;
  c.p20Us = median * (1 - spread);
  c.p80Us = median * (1 + spread);
  c.repeats = 20;
  return c;
}

TEST(Choose, KeepsTheDefaultUnlessACandidateWinsByMoreThanMarginAndNoise) {
  const std::vector<Candidate> clear = {timed("d", 10.0), timed("a", 9.0), timed("b", 9.5)};
  EXPECT_EQ(choose(clear, "d", 0.02), "a");
  // 1.5 % faster: inside the 2 % margin.
  EXPECT_EQ(choose({timed("d", 10.0), timed("a", 9.85)}, "d", 0.02), "d");
  // 10 % faster, but the measurements scatter by ±15 %: noise.
  EXPECT_EQ(choose({timed("d", 10.0, 0.15), timed("a", 9.0)}, "d", 0.02), "d");
  EXPECT_EQ(choose({timed("d", 10.0), timed("a", 9.0, 0.15)}, "d", 0.02), "d");
  // The default is the fastest.
  EXPECT_EQ(choose({timed("d", 8.0), timed("a", 9.0)}, "d", 0.02), "d");
}

TEST(Choose, NeverPicksAWrongOrFailedCandidate) {
  Candidate wrong = timed("w", 1.0);
  wrong.status = Candidate::Status::Wrong;
  Candidate broken;
  broken.tile = "x";
  broken.status = Candidate::Status::CompileError;
  EXPECT_EQ(choose({timed("d", 10.0), wrong, broken, timed("a", 9.0)}, "d", 0.02), "a");
  EXPECT_EQ(choose({timed("d", 10.0), wrong}, "d", 0.02), "d");
}

TEST(Choose, NeedsAMeasuredDefault) {
  EXPECT_THROW(choose({timed("a", 9.0)}, "d", 0.02), Error);
  Candidate def = timed("d", 10.0);
  def.status = Candidate::Status::LaunchError;
  def.message = "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
  try {
    choose({def, timed("a", 9.0)}, "d", 0.02);
    FAIL();
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("LAUNCH_OUT_OF_RESOURCES"), std::string::npos);
  }
}

} // namespace
} // namespace xlc::tune
