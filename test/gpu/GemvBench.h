//===- GemvBench.h - Decode GEMV timings: xlc's GEMV vs. cuBLASLt -*- C++ -*-===//
//
// kernel_bench's GEMV section (KernelBench.cpp calls it): every projection of xLSTM 7B at
// decode -- q|k|v|o-gate 12288×4096, i|f gates 16×4096 (+ bias, fp32 out), out 4096×4096
// (+ residual), up|gate 21888×4096, down 4096×10944 (+ residual), LM head 50304×4096 (fp32 out) --
// at m = 1, 2, 4, 8 rows, through the runtime's own classes (exec::Gemv: its kernels, launch
// candidates and launch; exec::CublasLt), so the numbers are those of what CudaBackend runs.
//
// Protocol (../shared/reference/kernel-anchors.md §3.1, the anchor's cuBLAS figures): the weight
// is replicated into enough copies to exceed twice the L2, and kLaunches back-to-back launches
// cycle through the copies (each launch reads its weight from HBM, as in a decode step where the
// other layers' weights have evicted it), bracketed by two CUDA events; the figure is the median
// over --reps of the time per launch. Bandwidth counts the bytes a GEMM must move (W, A, D and
// the epilogue operand); the ratio is to 3.35 TB/s (the H100 SXM's HBM3 peak) and to the card's
// own peak from its memory clock and bus width.
//
// Before it is timed, the fastest GEMV plan of every shape and m is checked against cuBLASLt on
// random operands (‖D_gemv − D_cublas‖ / ‖D_cublas‖ within twice GemvCases.h's tolerance: both
// are fp32-accumulated products of the same bf16 values).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_GPU_GEMVBENCH_H
#define XLC_TEST_GPU_GEMVBENCH_H

#include "runtime/cuda/Device.h"

#include <string>

namespace xlc::test {

struct GemvBenchOptions {
  int reps = 30;
  int warmup = 3;
  bool quick = false; ///< m = 1 and 8 only, fewer launches
};

/// Runs the GEMV section; prints its table and returns its JSON array (the value of "gemv");
/// |ok| is cleared when a check fails.
std::string runGemvBench(cuda::CudaDevice &device, const GemvBenchOptions &options, bool &ok);

} // namespace xlc::test

#endif // XLC_TEST_GPU_GEMVBENCH_H
