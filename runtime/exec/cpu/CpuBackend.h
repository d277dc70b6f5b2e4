//===- CpuBackend.h - Running an artifact on the CPU in fp32 ----*- C++ -*-===//
//
// The CPU backend interprets the compiled plan step by step: each step's op (its kernel family
// for launches, GEMM, copy) and attributes say what to compute, and its launch arguments are
// read by the kernel's parameter names (docs/kernels.md), so every size comes from the artifact.
// It is the fp32 oracle of the GPU tests and the fallback without a GPU.
//
// Storage. Every float buffer (f32, bf16 or f16 in the artifact) is held as fp32, integer
// buffers in their own types. Activation and workspace buffers live in ONE arena laid out
// exactly as the compiler planned it, with every byte offset doubled: no element grows by more
// than a factor of two (bf16/f16 → f32 exactly two, f32 → f32, i64 → i64, ...), so doubling all
// offsets keeps every planned non-overlap valid, and the backend exercises the compiler's
// memory plan. The arena holds 2 · arena_bytes at (maxBatch, maxSeq). Weights are assembled
// from the checkpoint once (WeightAssembly.h) in fp32; each state buffer is one allocation of
// maxBatch slots; the token input and the logits output are allocated at the limits (shared by
// the functions, which never run at the same time).
//
// The mLSTM cell. The chunkwise prefill is two launches in the plan (phase "states", then
// "outputs"); this backend computes the whole cell in the "states" step, in the recurrent
// stabilised form (the same function as the chunkwise form, MlstmCell.h): h for every token and
// the final C, n, m. The "outputs" step then has nothing left to do and is skipped; the chunk
// workspaces (ws_C, ws_n, ws_m) are never touched. The decode step is one recurrent step.
//
// Threads: GEMMs split over row and column blocks, row-wise ops over rows, the cell over
// (batch, head) pairs and column blocks of C; results do not depend on the thread count.
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
/// the backend; the checkpoint is only read here. Throws xlc::Error on an invalid artifact, a
/// step this backend does not know (naming the function, the step index and the op), mismatched
/// weights, or memory that cannot be allocated (naming the sizes).
std::unique_ptr<Backend> createCpuBackend(const artifact::Artifact &artifact,
                                          const weights::Checkpoint &checkpoint, Limits limits,
                                          unsigned threads = 0);

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CPU_CPUBACKEND_H
