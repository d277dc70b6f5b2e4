//===- ArenaPlanner.h - Liveness-based arena planning -----------*- C++ -*-===//
//
// Places every activation and workspace buffer of an artifact in one arena. Sizes are affine in
// the batch B and sequence length S (artifact::Expr), and a plan must hold for every B and S, so
// placement works on coefficients: a buffer goes at the coefficient-wise maximum of
// (offset + size) over the buffers already placed whose live ranges overlap its own. For
// non-negative coefficients that maximum is ≥ each of them at every (B, S), so live buffers
// never overlap whatever the sizes at run time; buffers dead by the time a new one starts do not
// push it up, which is where the reuse comes from. Coefficients are rounded up to 256 bytes so
// every offset is 256-aligned for every B and S. Liveness is per function (functions never run
// concurrently), so prefill, decode_step and score share the arena. Its size bounds every
// buffer's end for every B, S ≥ 1: the larger of two ends where one always is (the decode step's
// buffers, sized by the batch alone, end below the prefill's), else their coefficient-wise
// maximum.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_CODEGEN_ARENAPLANNER_H
#define XLC_CODEGEN_ARENAPLANNER_H

#include "runtime/artifact/Artifact.h"

namespace xlc::codegen {

/// Sets `offset` of every arena-class buffer and `arena.bytes`. Buffers no function touches are
/// placed at 0 (they are never live).
void planArena(artifact::Artifact &artifact);

/// An upper bound of |e| with divisor 1 (ceil(x/d) ≤ Σ ceil(coef/d)·term) and every coefficient
/// rounded up to a multiple of |align|.
artifact::Expr alignedUpperBound(const artifact::Expr &e, std::uint64_t align);

} // namespace xlc::codegen

#endif // XLC_CODEGEN_ARENAPLANNER_H
