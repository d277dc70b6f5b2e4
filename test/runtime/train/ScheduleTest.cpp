//===- ScheduleTest.cpp - Learning-rate schedules --------------------------===//

#include "runtime/train/Schedule.h"

#include "test/runtime/ErrorMatchers.h"

#include <gtest/gtest.h>

#include <cmath>

namespace xlc::train {
namespace {

using xlc::testing::expectError;

TEST(Schedule, WarmupIsLinearAndTheFirstUpdateMoves) {
  LrSchedule s{ScheduleKind::Constant, 1e-3, 100, 10, 0, 0.1};
  EXPECT_DOUBLE_EQ(s.at(0), 1e-4);
  EXPECT_DOUBLE_EQ(s.at(4), 5e-4);
  EXPECT_DOUBLE_EQ(s.at(9), 1e-3);
  EXPECT_DOUBLE_EQ(s.at(99), 1e-3);
}

TEST(Schedule, ExponentialDecaysToTheEndFactorThenCoolsDownToZero) {
  // 10 warm-up, 80 decay, 10 cool-down steps.
  LrSchedule s{ScheduleKind::Exponential, 4e-4, 100, 10, 10, 0.1};
  EXPECT_DOUBLE_EQ(s.at(10), 4e-4);
  EXPECT_NEAR(s.at(50), 4e-4 * std::sqrt(0.1), 1e-18); // halfway: endFactor^(1/2)
  EXPECT_NEAR(s.at(90), 4e-5, 1e-18);                  // cool-down starts at peak·endFactor
  EXPECT_NEAR(s.at(95), 4e-5 * 0.5, 1e-18);
  EXPECT_NEAR(s.at(99), 4e-6, 1e-18);
  for (std::int64_t i = 10; i + 1 < 100; ++i)
    EXPECT_GT(s.at(i), s.at(i + 1)) << i;
}

TEST(Schedule, CosineFallsFromPeakToItsFloor) {
  LrSchedule s{ScheduleKind::Cosine, 1.0, 110, 10, 0, 0.1};
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_NEAR(s.at(60), 0.55, 1e-12); // p = 1/2: floor + (1 − floor)/2
  EXPECT_GT(s.at(109), 0.1);
  EXPECT_LT(s.at(109), 0.1003);
}

TEST(Schedule, RejectsBadFieldsAndSteps) {
  LrSchedule s{ScheduleKind::Exponential, 1e-3, 10, 6, 6, 0.1};
  expectError([&] { s.validate(); }, {"warm-up 6", "cool-down 6", "10 steps"});
  s = {ScheduleKind::Constant, -1.0, 10, 0, 0, 0.1};
  expectError([&] { s.validate(); }, {"peak"});
  s = {ScheduleKind::Constant, 1.0, 10, 0, 0, 0.1};
  expectError([&] { s.at(10); }, {"step 10"});
  EXPECT_EQ(parseScheduleKind("cosine"), ScheduleKind::Cosine);
  expectError([] { parseScheduleKind("linear"); }, {"linear", "constant, cosine or exponential"});
}

} // namespace
} // namespace xlc::train
