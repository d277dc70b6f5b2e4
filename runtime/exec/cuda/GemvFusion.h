//===- GemvFusion.h - Row kernels a decode GEMV absorbs ---------*- C++ -*-===//
//
// A decode step runs an RMS norm before the q|k|v|o and i|f gate projections, another before the
// up|gate projection, and a SwiGLU before the down projection: one-block row kernels of a few
// microseconds each, 96 launches a step of the 7B, whose outputs only the GEMMs right after them
// read. When every one of those GEMMs runs on the GEMV kernel (a per-shape decision the backend
// makes before the call: Gemv.h), the GEMV forms its A from the row kernel's input itself
// (gemv.cuh "Prologues") and the row kernel is not launched at all.
//
// The artifact does not change: the compiler emits the row kernel and the GEMMs as usual, and
// any backend may run them as they are (the CPU backend does; so does the CUDA backend at
// batches where cuBLASLt wins). What makes the absorption safe is found here, from the artifact
// alone (findAbsorbableRowKernels): the row kernel's output is an activation that no step of the
// function touches except that kernel (writing it) and the GEMMs right after it (reading it as A
// in the plain forward form), so skipping the write is unobservable. The RMS-norm form drops one
// bf16 rounding of the normalised A (gemv.cuh); the SwiGLU form is bit for bit.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_GEMVFUSION_H
#define XLC_RUNTIME_EXEC_CUDA_GEMVFUSION_H

#include "runtime/artifact/Artifact.h"
#include "runtime/exec/Plan.h"
#include "runtime/exec/cuda/Gemv.h"

#include <cstddef>
#include <span>
#include <vector>

namespace xlc::exec {

/// A row-kernel launch whose output only the GEMM steps right after it read.
struct AbsorbableRowKernel {
  std::size_t step = 0;               ///< the launch's index in its function
  std::vector<std::size_t> consumers; ///< the GEMM steps right after it that read its output
  gemv_abi::Prologue kind = gemv_abi::Prologue::None;
  artifact::BufferId output = 0;      ///< the buffer the launch writes and the GEMMs read as A
};

/// Every launch of |function| that a GEMV could absorb, in step order: an rms_norm without a
/// weight or a swiglu whose gate and up views share a buffer and a row stride, with no duties,
/// whose output is an activation that the steps right after it read as A of a plain forward
/// GEMM (D = A·Wᵀ, all rows, not accumulating, no duties) and no other step names. Two such
/// GEMMs of one row kernel may share a launch (Gemv::runPair: q|k|v|o and the i|f gates).
std::vector<AbsorbableRowKernel> findAbsorbableRowKernels(const artifact::Artifact &artifact,
                                                          const artifact::Function &function);

/// What the GEMV reads in place of the row kernel's output: the row kernel's input (for SwiGLU
/// the gate view; the up view follows at |prologue.upOffset|) and its row stride.
struct AbsorbedInput {
  CUdeviceptr a = 0;
  std::uint64_t lda = 0;
  GemvPrologue prologue;
  /// The bytes of the buffer the row kernel reads. The GEMMs now read them too, so nothing they
  /// write may overlap them -- which the arena allows when the row kernel was their last reader.
  CUdeviceptr inputBegin = 0, inputEnd = 0;
};

/// The input of the absorbable launch |kernel| called with the resolved |args|.
AbsorbedInput absorbedInput(const artifact::Kernel &kernel, gemv_abi::Prologue kind,
                            std::span<const LaunchArg> args);

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_GEMVFUSION_H
