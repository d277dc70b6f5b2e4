//===- Summary.h - A human-readable listing of an artifact ------*- C++ -*-===//
//
// What `xlc-dump <artifact>` prints: the header and model facts, each function with one line per
// step, the kernels with family, tile, launch geometry and shared memory, the buffer plan with
// classes, shapes, offsets and sizes, a memory table (arena size, peak live arena bytes per
// function, weights, states) at a few (B, S) points, and how every weight buffer is assembled
// from checkpoint tensors (fused concatenations, folded norms).
//
// Meant for validated artifacts, but never crashes on an invalid one: out-of-range references
// print as "?" and overflowing sizes as "overflow".
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_ARTIFACT_SUMMARY_H
#define XLC_RUNTIME_ARTIFACT_SUMMARY_H

#include "runtime/artifact/Artifact.h"

#include <ostream>

namespace xlc::artifact {

void printSummary(std::ostream &out, const Artifact &artifact);

} // namespace xlc::artifact

#endif // XLC_RUNTIME_ARTIFACT_SUMMARY_H
