//===- CpuBackend.h - Running an artifact on the CPU in fp32 ----*- C++ -*-===//
//
// The CPU backend runs the compiled plan through the plan executor (runtime/exec/Plan.h): each
// launch executes its kernel family's CPU implementation (runtime/kernels) on exactly the launch
// arguments and kernel configuration the GPU receives; GEMMs and copies are its own. It is the
// fp32 oracle of the GPU tests and the fallback without a GPU.
//
// Storage. Every float buffer (f32, bf16 or f16 in the artifact) is held as fp32, integer
// buffers in their own types. Activation and workspace buffers live in ONE arena laid out
// exactly as the compiler planned it, with every byte offset doubled: no element grows by more
// than a factor of two (bf16/f16 → f32 exactly two, f32 → f32, i64 → i64, ...), so doubling all
// offsets keeps every planned non-overlap valid, and the backend exercises the compiler's
// memory plan. The arena holds 2 · arena_bytes at (maxBatch, maxSeq). Weights and parameters are
// assembled from the checkpoint once (WeightAssembly.h) in fp32, gradients and optimizer state
// start at zero; each state buffer holds maxBatch slots; every function's inputs and outputs are
// laid out one after another in one block the functions share (they never run at once).
//
// The mLSTM cell runs as the GPU splits it: the chunkwise prefill's first launch fills the
// chunk-state workspaces (ws_C, ws_n, ws_m) and the final C, n; the second computes h from those
// workspaces and writes the final m (CpuOps.h mlstmChunkStates/mlstmChunkOutputs). The decode
// step is one recurrent step.
//
// Threads: GEMMs split over row and column blocks, row-wise ops over rows, the cell over
// (batch, head) pairs (and chunks); results do not depend on the thread count.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CPU_CPUBACKEND_H
#define XLC_RUNTIME_EXEC_CPU_CPUBACKEND_H

#include "runtime/exec/Backend.h"

#include <memory>

namespace xlc::exec {

/// Validates |artifact| at |limits| (artifact::validate), checks the checkpoint against every
/// weight binding, assembles the weights in fp32 and allocates the arena, states and I/O
/// buffers. |threads| = 0 uses std::thread::hardware_concurrency(). The artifact must outlive
/// the backend; the checkpoint is only read here. Throws xlc::Error on an invalid artifact
/// (including a kernel that is not what its family renders), mismatched weights, or memory that
/// cannot be allocated (naming the sizes).
std::unique_ptr<Backend> createCpuBackend(const artifact::Artifact &artifact,
                                          const weights::Checkpoint &checkpoint, Limits limits,
                                          unsigned threads = 0);

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CPU_CPUBACKEND_H
