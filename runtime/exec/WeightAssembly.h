//===- WeightAssembly.h - Filling weight buffers from a checkpoint -*- C++ -*-===//
//
// An artifact's weight buffers are not checkpoint tensors one to one: the compiler fuses
// projections (the sources of a binding concatenated along an axis) and folds RMSNorm weights
// into the following projection (every row of the [out, in] matrix multiplied elementwise by the
// norm weight). This file checks a checkpoint against every binding before anything is allocated
// and computes each buffer's contents in fp32 (exact from F32, BF16, F16 sources; the product of
// a fold is computed in fp32). A backend that stores the buffer as bf16 rounds that fp32 value
// once; the CPU backend keeps it.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_WEIGHTASSEMBLY_H
#define XLC_RUNTIME_EXEC_WEIGHTASSEMBLY_H

#include "runtime/artifact/Artifact.h"

#include <cstdint>
#include <vector>

namespace xlc::weights {
class Checkpoint;
}

namespace xlc::exec {

/// Checks that |checkpoint| holds every tensor the artifact's bindings name, with the recorded
/// shapes and a float dtype (F32, BF16, F16), and that every scale_columns_by tensor is a vector
/// of the buffer's column count. All problems are collected into one xlc::Error naming the
/// checkpoint, the artifact and each tensor.
void checkWeights(const artifact::Artifact &artifact, const weights::Checkpoint &checkpoint);

/// The fp32 contents of the buffer that |binding| fills (row-major, the buffer's shape).
std::vector<float> assembleWeight(const artifact::Artifact &artifact,
                                  const artifact::WeightBinding &binding,
                                  const weights::Checkpoint &checkpoint);

/// Total bytes of all weight buffers in their artifact dtypes.
std::uint64_t weightBytes(const artifact::Artifact &artifact);

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_WEIGHTASSEMBLY_H
