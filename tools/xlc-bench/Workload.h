//===- Workload.h - Bytes and FLOPs of a call, and the limits they meet -*- C++ -*-===//
//
// The physical limit of a figure is the time the device needs at least for the work the call
// must do: max(compulsory bytes / memory bandwidth, FLOPs / arithmetic throughput). Both come
// from the artifact's own plan at the call's (B, S), never from the model's name:
//
//   FLOPs     every GEMM step: 2·m·n·k (m, n, k evaluated at the call; the generation prefill's
//             LM head has m = B, one row per sequence); every mLSTM cell launch, per token and
//             head with L = chunk, K = qk head dim, V = v head dim (causal halves counted once,
//             the useful work):
//               chunkwise, scores kernel     L·K              (the gated causal QKᵀ)
//               chunkwise, fused state pass  L·V + 4·K·V      (P̃·V, Q·C_prev, C += Kᵀ(ā⊙V))
//               chunkwise, states kernel     2·K·V            (C += Kᵀ(ā⊙V) per chunk)
//               chunkwise, outputs kernel    L·(K + V) + 2·K·V (QKᵀ, P·V, Q·C_prev)
//               decode step                  4·K·V            (C update, qᵀC readout)
//             Element-wise kernels (norms, gates, SwiGLU, soft-cap) count no FLOPs: they are
//             bandwidth-bound and their FLOPs are below 1 % of the GEMMs'.
//   bytes     per step, every distinct buffer operand once at the call's size, by class:
//             weights (a GEMM reads exactly its m·k, n·k slices; the embedding gathers
//             B·S rows, not the table), states (read and written: twice), inputs/outputs, and
//             activations/workspace. A whole call's compulsory bytes are its weights, states
//             and inputs/outputs only -- the traffic no fusion can remove (for a decode step of
//             xLSTM 7B: 13.3 GB of weights without the embedding table, plus 2 × 134 MB of fp32
//             state per sequence). A single step's bytes also count its activations, since
//             that is what the step itself moves. Bytes are the backend's: the CPU backend
//             holds every float buffer as fp32 (FloatStorage).
//
// Limits: a table of the devices measured for this project (H100 SXM 80GB HBM3: 3.35 TB/s
// peak HBM bandwidth, ~790 TFLOP/s dense bf16 achieved by cuBLAS, targets.md; H200: 4.8 TB/s,
// the same GH100 compute), overrides from the command line, and for the CPU backend a quick
// measurement at start (multi-threaded read of a large array, fp32 multiply-add loop): a
// ceiling for this build on this machine rather than a datasheet value.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_XLC_BENCH_WORKLOAD_H
#define XLC_TOOLS_XLC_BENCH_WORKLOAD_H

#include "runtime/exec/Plan.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace xlc::bench {

struct Work {
  double flops = 0;
  double weightBytes = 0, stateBytes = 0, ioBytes = 0, activationBytes = 0;

  /// Weights, states, inputs and outputs: what the call must move at least.
  double compulsoryBytes() const { return weightBytes + stateBytes + ioBytes; }
  /// Everything the steps move, activations included.
  double trafficBytes() const { return compulsoryBytes() + activationBytes; }
  Work &operator+=(const Work &other);
  Work scaled(double factor) const;
};

/// How a backend stores float buffers: in the artifact's dtypes (the CUDA backend), or every
/// float buffer as fp32 (the CPU backend, runtime/exec/cpu/CpuBackend.h), which doubles the
/// bytes of bf16 weights and activations.
enum class FloatStorage : std::uint8_t { ArtifactDtypes, Fp32 };

/// The work of one prepared step of |plan| at |shape|.
Work stepWork(const exec::Plan &plan, const exec::PreparedStep &step,
              const exec::CallShape &shape, FloatStorage storage);
/// The work of a whole call of |function| at |shape| (the sum over its steps).
Work callWork(const exec::Plan &plan, std::string_view function, const exec::CallShape &shape,
              FloatStorage storage);

/// What a device can do at most.
struct DeviceLimit {
  double bytesPerSecond = 0; ///< 0: unknown
  double flopsPerSecond = 0; ///< 0: unknown
  std::string source;        ///< where the numbers come from, for the report
  bool known() const { return bytesPerSecond > 0 && flopsPerSecond > 0; }
};

/// The table entry for a GPU by its name ("NVIDIA H100 80GB HBM3"); unknown cards give a limit
/// that is not known() and a source saying to pass --bandwidth and --tflops.
DeviceLimit gpuLimit(std::string_view deviceName);

/// Measures this CPU with |threads| threads (0 = all cores); takes about half a second.
DeviceLimit measureCpuLimit(unsigned threads);

/// The lower bound on the time of |work| with |limit|, and which resource sets it; nullopt when
/// the limit is unknown. |useTraffic|: count activation bytes too (single steps).
struct Bound {
  double seconds = 0;
  std::string_view resource; ///< "bandwidth" or "compute"
};
std::optional<Bound> limitTime(const Work &work, const DeviceLimit &limit, bool useTraffic);

} // namespace xlc::bench

#endif // XLC_TOOLS_XLC_BENCH_WORKLOAD_H
