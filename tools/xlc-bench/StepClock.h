//===- StepClock.h - Timing every step of a call -------------------*- C++ -*-===//
//
// A StepClock measures how long each step of one call takes on the device, driven by the plan
// executor's StepObserver hooks (runtime/exec/Plan.h): before(i) right before step i is
// enqueued (its zero duties included), after(i) right after it (its error-flag copy included).
// An observed call runs eagerly: the CUDA backend does not replay its decode graph then.
//
//   CPU backend   the host clock: every step has finished when its handler returns.
//   CUDA backend  CUDA events recorded on the backend's stream (Backend::nativeStream) around
//                 each step, read after the call. Events alone would also time the host: when
//                 the GPU is idle, a start event completes at once and the step's kernel
//                 arrives microseconds later (a decode step's kernels take 5-50 µs, a launch
//                 3-10 µs of host time). So the stream is held back: at the start of every
//                 window of kWindow steps a host function (cuLaunchHostFunc) that waits until
//                 the host has enqueued that whole window is put on the stream. The GPU then
//                 finds each step's start event, kernels and stop event queued back to back,
//                 and the events measure the device alone; the waits sit between windows,
//                 outside every pair. A window is short enough (a few hundred queued commands)
//                 that the driver's launch queue never fills while the GPU waits; a wait gives
//                 up after 10 s all the same (counted in gateTimeouts(), the profile is then
//                 marked unreliable) so that a full queue cannot hang the run.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_XLC_BENCH_STEPCLOCK_H
#define XLC_TOOLS_XLC_BENCH_STEPCLOCK_H

#include "runtime/exec/Backend.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace xlc::bench {

class StepClock {
public:
  virtual ~StepClock() = default;
  /// "cuda-events" or "host-clock".
  virtual std::string_view name() const = 0;
  /// A call of |steps| steps is about to start.
  virtual void begin(std::size_t steps) = 0;
  virtual void before(std::size_t step) = 0;
  virtual void after(std::size_t step) = 0;
  /// After the call returned: seconds per step.
  virtual std::vector<double> end() = 0;
  /// Host waits that gave up (CUDA); nonzero makes the timings unreliable.
  virtual std::uint64_t gateTimeouts() const { return 0; }
};

/// The clock for |backend|: CUDA events on a CUDA backend, the host clock otherwise.
std::unique_ptr<StepClock> makeStepClock(const exec::Backend &backend);

/// The observer that drives a clock through the steps of one call.
class ClockObserver final : public exec::StepObserver {
public:
  ClockObserver(StepClock &clock, std::size_t steps) : clock_(clock), steps_(steps) {}
  void beforeStep(const exec::PreparedStep &step, const exec::CallShape &) override {
    clock_.before(step.index);
  }
  void afterStep(const exec::PreparedStep &step, const exec::CallShape &) override {
    clock_.after(step.index);
  }
  std::size_t steps() const { return steps_; }

private:
  StepClock &clock_;
  std::size_t steps_;
};

#if XLC_HAVE_CUDA_BACKEND
/// The CUDA clock on |stream| (a CUstream as an integer).
std::unique_ptr<StepClock> makeCudaStepClock(std::uint64_t stream);
#endif

} // namespace xlc::bench

#endif // XLC_TOOLS_XLC_BENCH_STEPCLOCK_H
