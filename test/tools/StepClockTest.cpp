//===- StepClockTest.cpp - xlc-bench's CUDA step clock under the driver double ===//
//
// The CUDA step clock (tools/xlc-bench/StepClock.h) times every step of a call with an event
// pair on the backend's stream and holds the stream, a window of steps at a time, until the host
// has enqueued the window. Under the CUDA driver double (test/runtime/cuda/FakeCudaDriver.cpp:
// a stream is a thread that runs its operations in order, each after a random pause of up to
// 200 µs; events record when their stream reached them) a "step" here is a host function that
// sleeps a known time on the stream, and the host enqueues steps more slowly than the stream
// would run them, as a launch-bound decode step does on a GPU. Checked: every step's time covers
// its work and little more; no step of a window starts before the host has enqueued the whole
// window (without the hold, the first step would run within a millisecond of its launch); the
// clock serves several calls; an abandoned call releases the stream at once.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/Device.h"
#include "runtime/cuda/DriverApi.h"
#include "tools/xlc-bench/StepClock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace {

using namespace xlc;
using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;

/// One step's work: runs on the stream's thread.
struct Work {
  microseconds sleep{0};
  Clock::time_point ranAt;
};

void CUDA_CB doWork(void *data) {
  Work &w = *static_cast<Work *>(data);
  w.ranAt = Clock::now();
  std::this_thread::sleep_for(w.sleep);
}

double seconds(microseconds us) { return static_cast<double>(us.count()) * 1e-6; }

class StepClockTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string reason;
    ASSERT_TRUE(cuda::cudaAvailable(&reason))
        << "no CUDA driver: " << reason
        << " (ctest sets XLC_CUDA_DRIVER to the driver double, test/runtime/cuda)";
    device_.emplace(cuda::CudaDevice::open(0));
    stream_.emplace();
  }
  CUstream stream() const { return stream_->handle(); }

  std::optional<cuda::CudaDevice> device_;
  std::optional<cuda::Stream> stream_;
};

TEST_F(StepClockTest, TimesEveryStepAndHoldsTheStreamUntilEachWindowIsEnqueued) {
  std::unique_ptr<bench::StepClock> clock =
      bench::makeCudaStepClock(reinterpret_cast<std::uint64_t>(stream()));
  EXPECT_EQ(clock->name(), "cuda-events");
  constexpr std::size_t kSteps = 70; // windows of 32 steps: 32, 32 and 6
  constexpr std::size_t kWindow = 32;
  std::vector<Work> work(kSteps);
  std::vector<Clock::time_point> enqueued(kSteps);
  for (int call = 0; call < 2; ++call) { // one clock serves every call of a profile
    for (std::size_t i = 0; i < kSteps; ++i)
      work[i].sleep = microseconds(i % 3 == 0 ? 2000 : 300);
    clock->begin(kSteps);
    for (std::size_t i = 0; i < kSteps; ++i) {
      clock->before(i);
      XLC_CU_CHECK(cuda::driver().cuLaunchHostFunc(stream(), doWork, &work[i]));
      enqueued[i] = Clock::now(); // before after(): the last step's after() opens its window
      clock->after(i);
      std::this_thread::sleep_for(microseconds(400)); // the host is the slow side
    }
    const std::vector<double> times = clock->end();
    ASSERT_EQ(times.size(), kSteps);
    for (std::size_t i = 0; i < kSteps; ++i) {
      EXPECT_GE(times[i], seconds(work[i].sleep) * 0.99) << "call " << call << " step " << i;
      // The events sit right around the work: the double pauses at most 200 µs per operation.
      EXPECT_LT(times[i], seconds(work[i].sleep) + 0.1) << "call " << call << " step " << i;
    }
    for (std::size_t first = 0; first < kSteps; first += kWindow) {
      const std::size_t last = std::min(first + kWindow, kSteps) - 1;
      EXPECT_GE(work[first].ranAt, enqueued[last])
          << "call " << call << ": step " << first << " ran before step " << last
          << " of its window was enqueued";
    }
    EXPECT_EQ(clock->gateTimeouts(), 0u);
  }
}

TEST_F(StepClockTest, AnAbandonedCallReleasesTheStream) {
  std::unique_ptr<bench::StepClock> clock =
      bench::makeCudaStepClock(reinterpret_cast<std::uint64_t>(stream()));
  std::vector<Work> work(10);
  clock->begin(40); // a call of 40 steps that stops after 10, its first window still held
  for (std::size_t i = 0; i < work.size(); ++i) {
    clock->before(i);
    XLC_CU_CHECK(cuda::driver().cuLaunchHostFunc(stream(), doWork, &work[i]));
    clock->after(i);
  }
  const Clock::time_point start = Clock::now();
  clock.reset(); // what an exception out of the backend's call does to the profile's clock
  EXPECT_EQ(cuda::driver().cuStreamSynchronize(stream()), CUDA_SUCCESS);
  // Released at once, not by the gate's 10 s time-out.
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 5.0);
  for (const Work &w : work)
    EXPECT_NE(w.ranAt, Clock::time_point{});
}

} // namespace
