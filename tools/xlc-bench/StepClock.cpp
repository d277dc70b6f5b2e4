//===- StepClock.cpp - Timing every step of a call on the host ------------===//

#include "tools/xlc-bench/StepClock.h"

#include "runtime/support/Error.h"

#include <chrono>

namespace xlc::bench {

namespace {

/// The CPU backend runs each step to completion inside its handler.
class HostStepClock final : public StepClock {
public:
  std::string_view name() const override { return "host-clock"; }
  void begin(std::size_t steps) override {
    starts_.assign(steps, {});
    stops_.assign(steps, {});
  }
  void before(std::size_t step) override { starts_.at(step) = Clock::now(); }
  void after(std::size_t step) override { stops_.at(step) = Clock::now(); }
  std::vector<double> end() override {
    std::vector<double> seconds(starts_.size());
    for (std::size_t i = 0; i < seconds.size(); ++i)
      seconds[i] = std::chrono::duration<double>(stops_[i] - starts_[i]).count();
    return seconds;
  }

private:
  using Clock = std::chrono::steady_clock;
  std::vector<Clock::time_point> starts_, stops_;
};

} // namespace

std::unique_ptr<StepClock> makeStepClock(const exec::Backend &backend) {
  if (backend.kind() != "cuda")
    return std::make_unique<HostStepClock>();
#if XLC_HAVE_CUDA_BACKEND
  const std::uint64_t stream = backend.nativeStream();
  check(stream != 0, "the CUDA backend does not name its stream (Backend::nativeStream): its "
                     "steps cannot be timed with events");
  return makeCudaStepClock(stream);
#else
  fail("a '{}' backend in a build without the CUDA backend", backend.kind());
#endif
}

} // namespace xlc::bench
