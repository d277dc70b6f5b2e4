//===- KeptCounters.h - Counters that stay zero between launches -*- C++ -*-===//
//
// The mLSTM decode step and the fused chunkwise state pass take per-(b, head) counters that must
// be zero when the kernel starts (a `zero` duty on the argument: the family's parameter has
// Duty::Zeroed) and that the kernel itself sets back to zero before it exits (the last block of
// each head resets its counter: mlstm_decode_step.cuh, mlstm_chunk_fused.cuh). The artifact
// plans them as ordinary workspaces in the arena, which other steps reuse, so every launch
// zeroes them first: a memset per layer and step, 32 graph nodes in a 7B decode step, each of
// which also keeps the kernel after it from starting early under programmatic dependent launch.
//
// A backend may instead give such a buffer a device allocation of its own, zeroed once: it is
// then zero before every launch because the previous launch left it so. That is safe exactly
// when no other step touches the buffer (findKeptCounters checks it from the artifact alone),
// since then nothing can observe that the arena copy is neither zeroed nor written.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_KEPTCOUNTERS_H
#define XLC_RUNTIME_EXEC_CUDA_KEPTCOUNTERS_H

#include "runtime/artifact/Artifact.h"

#include <vector>

namespace xlc::exec {

/// The buffers of |artifact| that may live outside the arena, zeroed once: each is named only
/// by launch steps (in any function) that pass it to a Duty::Zeroed parameter of their kernel
/// and of every batch variant, with a `zero` duty and no `error_flag` duty on it in that step.
/// Sorted by id.
std::vector<artifact::BufferId> findKeptCounters(const artifact::Artifact &artifact);

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_KEPTCOUNTERS_H
