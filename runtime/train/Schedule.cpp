//===- Schedule.cpp - Learning-rate schedules -----------------------------===//

#include "runtime/train/Schedule.h"

#include "runtime/support/Error.h"

#include <cmath>
#include <numbers>

namespace xlc::train {

std::string_view toString(ScheduleKind kind) {
  switch (kind) {
  case ScheduleKind::Constant:
    return "constant";
  case ScheduleKind::Cosine:
    return "cosine";
  case ScheduleKind::Exponential:
    return "exponential";
  }
  return "?";
}

ScheduleKind parseScheduleKind(std::string_view name) {
  for (ScheduleKind k : {ScheduleKind::Constant, ScheduleKind::Cosine, ScheduleKind::Exponential})
    if (name == toString(k))
      return k;
  fail("unknown learning-rate schedule \"{}\": expected constant, cosine or exponential", name);
}

void LrSchedule::validate() const {
  check(peak > 0.0 && std::isfinite(peak), "schedule: peak learning rate {} must be positive",
        peak);
  check(total > 0, "schedule: total steps {} must be positive", total);
  check(warmup >= 0 && cooldown >= 0, "schedule: warm-up {} and cool-down {} must be >= 0", warmup,
        cooldown);
  check(warmup + (kind == ScheduleKind::Exponential ? cooldown : 0) <= total,
        "schedule: warm-up {} + cool-down {} exceed the {} steps", warmup, cooldown, total);
  check(endFactor > 0.0 && endFactor <= 1.0, "schedule: end factor {} must be in (0, 1]",
        endFactor);
}

double LrSchedule::at(std::int64_t step) const {
  check(step >= 0 && step < total, "schedule: step {} is outside [0, {})", step, total);
  if (step < warmup)
    return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
  switch (kind) {
  case ScheduleKind::Constant:
    return peak;
  case ScheduleKind::Cosine: {
    const double p = static_cast<double>(step - warmup) / static_cast<double>(total - warmup);
    const double floor = peak * endFactor;
    return floor + (peak - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
  }
  case ScheduleKind::Exponential: {
    const std::int64_t decay = total - warmup - cooldown;
    auto decayed = [&](std::int64_t s) {
      return decay == 0 ? peak
                        : peak * std::pow(endFactor, static_cast<double>(s - warmup) /
                                                         static_cast<double>(decay));
    };
    if (step < warmup + decay)
      return decayed(step);
    return decayed(warmup + decay) * static_cast<double>(total - step) /
           static_cast<double>(cooldown);
  }
  }
  return peak;
}

} // namespace xlc::train
