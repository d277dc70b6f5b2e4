//===- Schedule.h - Learning-rate schedules ---------------------*- C++ -*-===//
//
// lr(step) for update number step = 0, 1, ..., total − 1:
//   warm-up (all kinds)  step < W:  peak·(step + 1)/W   (linear; the first update already moves)
//   constant             peak
//   cosine               floor + (peak − floor)·(1 + cos(π·p))/2,  p = (step − W)/(total − W),
//                        floor = peak·endFactor
//   exponential (the 7B's, xlstm-7b.md §6.2: optax exponential_decay, continuous, then a linear
//   cool-down)           D = total − W − cooldown decay steps:
//                        step < W + D:  peak·endFactor^{(step − W)/D}
//                        else:          lr(W + D)·(total − step)/cooldown   (linear to 0)
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TRAIN_SCHEDULE_H
#define XLC_RUNTIME_TRAIN_SCHEDULE_H

#include <cstdint>
#include <string>
#include <string_view>

namespace xlc::train {

enum class ScheduleKind { Constant, Cosine, Exponential };

/// "constant" | "cosine" | "exponential"; parseScheduleKind throws xlc::Error naming the choices.
std::string_view toString(ScheduleKind kind);
ScheduleKind parseScheduleKind(std::string_view name);

struct LrSchedule {
  ScheduleKind kind = ScheduleKind::Exponential;
  double peak = 4e-4;
  std::int64_t total = 1;
  std::int64_t warmup = 0;
  std::int64_t cooldown = 0;  ///< exponential only
  double endFactor = 0.1;     ///< exponential: lr at the cool-down's start / peak; cosine: floor

  /// Throws xlc::Error naming the first bad field (non-positive peak or total, warmup + cooldown
  /// > total, endFactor outside (0, 1]).
  void validate() const;
  /// The learning rate of update |step| (0 ≤ step < total).
  double at(std::int64_t step) const;
};

} // namespace xlc::train

#endif // XLC_RUNTIME_TRAIN_SCHEDULE_H
