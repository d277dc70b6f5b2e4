//===- CudaStepClock.cpp - Timing every step of a call with CUDA events ---===//
//
// StepClock.h explains the method: events around every step on the backend's stream, and the
// stream held back by a host function per window of steps until the host has enqueued the
// window, so that the events time the device and not the host's launches.
//
//===----------------------------------------------------------------------===//

#include "tools/xlc-bench/StepClock.h"

#include "runtime/cuda/Device.h"
#include "runtime/cuda/DriverApi.h"
#include "runtime/support/Error.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

namespace xlc::bench {

namespace {

/// Steps per window: ≤ 32 steps of ≤ 8 commands (two events, a memset, a launch or cuBLASLt's
/// kernels, an error-flag copy) stay far below the driver's launch queue.
constexpr std::size_t kWindow = 32;
constexpr auto kGateTimeout = std::chrono::seconds(10);

/// Where the stream waits until the host opens it.
struct Gate {
  std::mutex mutex;
  std::condition_variable opened;
  bool open = false;
  bool timedOut = false;
};

/// Runs on a driver thread when the stream reaches it; makes no CUDA call (the driver forbids
/// them in host functions).
void CUDA_CB waitAtGate(void *data) {
  Gate &gate = *static_cast<Gate *>(data);
  std::unique_lock lock(gate.mutex);
  if (!gate.opened.wait_for(lock, kGateTimeout, [&] { return gate.open; }))
    gate.timedOut = true;
}

void openGate(Gate &gate) {
  {
    std::lock_guard lock(gate.mutex);
    gate.open = true;
  }
  gate.opened.notify_all();
}

class CudaStepClock final : public StepClock {
public:
  explicit CudaStepClock(CUstream stream) : stream_(stream) {}
  ~CudaStepClock() override { abandon(); }

  std::string_view name() const override { return "cuda-events"; }

  void begin(std::size_t steps) override {
    abandon();
    while (starts_.size() < steps) {
      starts_.emplace_back();
      stops_.emplace_back();
    }
    steps_ = steps;
  }

  void before(std::size_t step) override {
    check(step < steps_, "step {} of a call announced with {} steps", step, steps_);
    if (step % kWindow == 0) {
      // This window's gate goes on the stream first; the previous window is now all enqueued.
      gates_.emplace_back();
      XLC_CU_CHECK(cuda::driver().cuLaunchHostFunc(stream_, waitAtGate, &gates_.back()));
      if (gates_.size() >= 2)
        openGate(gates_[gates_.size() - 2]);
    }
    starts_[step].record(stream_);
  }

  void after(std::size_t step) override {
    stops_[step].record(stream_);
    if (step + 1 == steps_ && !gates_.empty())
      openGate(gates_.back());
  }

  std::vector<double> end() override {
    for (Gate &gate : gates_)
      openGate(gate);
    XLC_CU_CHECK(cuda::driver().cuStreamSynchronize(stream_));
    for (Gate &gate : gates_)
      timeouts_ += gate.timedOut;
    gates_.clear();
    std::vector<double> seconds(steps_);
    for (std::size_t i = 0; i < steps_; ++i)
      seconds[i] = static_cast<double>(stops_[i].elapsedSince(starts_[i])) * 1e-3;
    return seconds;
  }

  std::uint64_t gateTimeouts() const override { return timeouts_; }

private:
  /// Opens every gate and waits for the stream, so that no host function still refers to a
  /// gate (after an error inside a call; a normal call has synchronised already).
  void abandon() {
    for (Gate &gate : gates_)
      openGate(gate);
    if (!gates_.empty())
      (void)cuda::driver().cuStreamSynchronize(stream_);
    gates_.clear();
  }

  CUstream stream_;
  std::deque<cuda::Event> starts_, stops_;
  std::deque<Gate> gates_; ///< the call's gates; a deque keeps their addresses stable
  std::size_t steps_ = 0;
  std::uint64_t timeouts_ = 0;
};

} // namespace

std::unique_ptr<StepClock> makeCudaStepClock(std::uint64_t stream) {
  return std::make_unique<CudaStepClock>(reinterpret_cast<CUstream>(stream));
}

} // namespace xlc::bench
