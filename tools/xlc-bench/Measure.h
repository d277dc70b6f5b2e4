//===- Measure.h - Running xlc-bench's cases on a backend ----------*- C++ -*-===//
//
// Prefill and decode cases go through the generator (runtime/exec/Generator.h), the path
// xlc-run takes, so a figure is what a user gets: every call synchronous, its inputs uploaded
// and the drawn tokens copied back. Times are the host's steady clock around those calls (a
// CUDA event pair would leave out exactly that host part); per-step device times are the
// profiles' job (Profile.h, CUDA events).
//
//   prefill-bB-pP   a repeat = one generate() with one new token: reset of the B slots, every
//                   prefill call, the first draw (GenerateStats::timeToFirstTokenSeconds)
//   decode-bB-pP    one generate() whose prompts are prefilled once, then warm-up blocks and
//                   timed blocks of |decodeSteps| greedy decode steps each: a repeat = the time of
//                   one block, from the token that ends the previous block to the block's last
//                   (taken in the onToken callback of sequence 0, which every step reports first)
//
// Prompts: B sequences of P token ids in [3, V): id(i, t) = 3 + splitmix64(seed ^ (i·2³² + t))
// mod (V − 3) (promptToken), which scripts/hf-bench.py computes the same way, so transformers
// sees the very same ids. Decode is greedy with EOS ignored, so every sequence runs every step.
//
// Memory: a MemoryProbe reads the device's use (cuMemGetInfo: total − free) on the GPU, the
// process's resident set on the CPU, once before the case's backend exists and once after the
// case: the backend allocates everything when it is created (and its decode graphs on first
// use), and nothing is freed during a case, so the reading after the case is its peak.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_XLC_BENCH_MEASURE_H
#define XLC_TOOLS_XLC_BENCH_MEASURE_H

#include "runtime/exec/Backend.h"
#include "tools/xlc-bench/BenchCase.h"
#include "tools/xlc-bench/Profile.h"
#include "tools/xlc-bench/Workload.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::bench {

/// Token t of prompt i (see the file comment); |vocab| > 3.
std::int32_t promptToken(std::uint64_t seed, std::uint64_t sequence, std::uint64_t position,
                         std::uint64_t vocab);
std::vector<std::vector<std::int32_t>> makePrompts(std::uint64_t batch, std::uint64_t length,
                                                   std::uint64_t vocab, std::uint64_t seed);

/// A training batch from B sequences of S + 1 ids: tokens are each sequence's first S ids,
/// targets its last S (next-token prediction, every target counted), and train_step's buffers.
struct TrainBatch {
  std::vector<std::int32_t> tokens, targets;
  std::vector<std::uint8_t> resets; ///< one document per sequence: no resets inside
  std::vector<float> tokenLoss;

  explicit TrainBatch(const std::vector<std::vector<std::int32_t>> &sequences);
  /// train_step's arguments over this batch's buffers (which must outlive the call).
  exec::CallArgs trainStepArgs(std::uint64_t batch, std::uint64_t seq);
};

struct RunSettings {
  std::size_t reps = 5;
  std::size_t warmup = 1;
  std::size_t decodeSteps = 32;
  std::uint64_t seed = 1;
  /// Model FLOPs per training token: 6 × the parameters train_step updates (0: no training
  /// functions); training cases report model FLOP/s with it.
  double trainFlopsPerToken = 0;
};

/// A memory reading.
struct MemoryReading {
  double bytes = 0;
  bool known = false;
};

class MemoryProbe {
public:
  virtual ~MemoryProbe() = default;
  /// "cuMemGetInfo (device total - free)" or "VmRSS (/proc/self/status)".
  virtual std::string method() const = 0;
  virtual MemoryReading read() = 0;
  /// The GPU's name, or the CPU's model name (/proc/cpuinfo).
  virtual std::string deviceName() const = 0;
};

/// The probe for |device| ("cuda": opens device 0's primary context, which the backends share;
/// "cpu": the resident set).
std::unique_ptr<MemoryProbe> makeMemoryProbe(const std::string &device);

struct CaseResult {
  BenchCase bench;
  std::uint64_t maxBatch = 0, maxSeq = 0; ///< the backend's limits
  bool done = false;                      ///< ran, or failed (false: still to run)
  std::string error;                      ///< empty when the case ran
  /// Seconds: prefill cases one generate() per repeat; decode cases one block of decodeSteps.
  std::vector<double> repeats, warmupRepeats;
  std::uint64_t prefillCalls = 0;  ///< per prefill (the generator's calls)
  double decodeTtftSeconds = 0;    ///< decode cases: the time to first token of their prefill
  Work work;                       ///< of one repeat
  std::optional<Bound> bound;      ///< of one repeat (compulsory bytes)
  MemoryReading memoryBefore, memoryAfter;
  std::optional<Profile> profile;
  /// Training cases: each function's time per repeat (host clock around its synchronous call),
  /// in call order: where an optimizer step's time goes between train_step and the optimizer.
  std::vector<std::pair<std::string, std::vector<double>>> callSeconds;
};

/// Progress lines ("[xlc-bench] ..."), or nothing.
using Progress = std::function<void(const std::string &)>;

/// Runs |c| on |backend| (created for its limits, slots [0, batch)).
void runCase(exec::Backend &backend, CaseResult &result, const RunSettings &settings,
             const DeviceLimit &limit, const Progress &progress);

/// The work of one repeat of |c| on |plan| with |maxSeq| tokens per prefill call.
Work caseWork(const exec::Plan &plan, const BenchCase &c, std::uint64_t maxSeq,
              std::size_t decodeSteps, FloatStorage storage);
/// How the backend of |device| ("cpu", "cuda") stores float buffers.
FloatStorage floatStorage(std::string_view device);

} // namespace xlc::bench

#endif // XLC_TOOLS_XLC_BENCH_MEASURE_H
