//===- Profile.h - Where the time of one call goes, step by step --*- C++ -*-===//
//
// profileCall() runs one function of the plan at one (B, S) with every step timed
// (StepClock.h), warm-up calls first, then |reps| timed calls, each on freshly reset states of
// the same slots with the same tokens. The steps are grouped by what they run: a launch by its
// kernel (the family and the variant: every block's RMSNorm is the same kernel), a GEMM by its
// shape and the weight it reads with the block index dropped ("ffn.proj_down 2048x4096x10944":
// one row for all 32 blocks), a copy by its source. Each group's time per call is summarised
// over the timed calls (median, p20, p80), with its share of the summed step time, its bytes
// and FLOPs (Workload.h: all the bytes it moves, activations included) and the ratio of its
// lower bound to its median.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_XLC_BENCH_PROFILE_H
#define XLC_TOOLS_XLC_BENCH_PROFILE_H

#include "runtime/exec/Backend.h"
#include "tools/xlc-bench/Stats.h"
#include "tools/xlc-bench/Workload.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace xlc::bench {

struct ProfileGroup {
  std::string key;    ///< unique in the profile: "rms_norm_1", "gemm ffn.proj_down 2048x4096x10944"
  std::string kind;   ///< "launch", "gemm" or "copy"
  std::string family; ///< the kernel family, "gemm" or "copy"
  std::string detail; ///< the kernel's tile, or the GEMM's epilogue
  std::size_t steps = 0;   ///< steps of one call in the group
  Summary seconds;         ///< the group's time per call over the timed calls
  double share = 0;        ///< median / the sum of every group's median
  Work work;               ///< per call
  std::optional<Bound> bound;
};

struct StepTiming {
  std::size_t index = 0;
  std::string group;
  double medianSeconds = 0;
};

struct Profile {
  std::string function;
  exec::CallShape shape;
  std::string clock; ///< StepClock::name()
  std::size_t warmup = 0;
  std::vector<double> stepSumSeconds; ///< per timed call: the sum of its step times
  std::vector<double> wallSeconds;    ///< per timed call: the host's time for the whole call
  std::vector<ProfileGroup> groups;   ///< by median time, longest first
  std::vector<StepTiming> steps;      ///< in plan order
  std::uint64_t gateTimeouts = 0;
};

/// Profiles |function| on slots [0, shape.batch) with the inputs, outputs and scalars of |args|
/// (its shape and observer are set here). Throws xlc::Error from the backend, naming the
/// function.
Profile profileCall(exec::Backend &backend, const std::string &function,
                    const exec::CallShape &shape, const exec::CallArgs &args, std::size_t warmup,
                    std::size_t reps, const DeviceLimit &limit, FloatStorage storage);

} // namespace xlc::bench

#endif // XLC_TOOLS_XLC_BENCH_PROFILE_H
