//===- Tuning.h - Kernel variants: tuning spaces and their constraints --*- C++ -*-===//
//
// A kernel's *variants* are the configurations its family's tuning space reaches from it
// (FamilyDef::tuning): the same problem (every field outside the space unchanged), other tiles,
// thread counts or splits. A variant is *valid* when its configuration passes the schema, the
// family's constraint and the limits every sm_90 launch has; only valid variants are compiled,
// checked and timed (xlc-tune), and a tuning database records a choice by the variant's tile
// (variantTile) under the problem's key (problemKey). docs/auto-tuning.md describes the whole.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_KERNELS_TUNING_H
#define XLC_RUNTIME_KERNELS_TUNING_H

#include "runtime/kernels/KernelFamily.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace xlc::kernels {

/// Dynamic shared memory one block may use on sm_90 (H100, H200): 227 KiB.
inline constexpr std::int64_t kMaxSharedBytes = 227 * 1024;

/// Why |config| cannot be a kernel of |family|, "" when it can: the schema (checkConfig), the
/// family's constraint, then the launch limits (whole warps, at most 1024 threads, at most
/// kMaxSharedBytes of dynamic shared memory, constant grid dimensions within the hardware's).
std::string variantProblem(const FamilyDef &family, const Config &config);

/// The knobs of |family| at |config| (empty when the family has no tuning space).
std::vector<TuningKnob> tuningKnobs(const FamilyDef &family, const Config &config);

/// A variant's identity: its knob values in the compiler's tile-attribute syntax, in the order
/// the family declares them, e.g. "#xk.tile<threads = 128, rows_per_block = 32>".
std::string variantTile(const FamilyDef &family, const Config &config);

/// The problem a kernel solves: its configuration without the knob fields, as compact JSON with
/// sorted keys (one string per problem, whatever the variant).
std::string problemKey(const FamilyDef &family, const Config &config);

/// Every point of |family|'s tuning space around |base|.
struct TuningSpace {
  /// The valid variants, |base| first (the default), then in lexicographic order of the knobs'
  /// values as declared; no duplicates.
  std::vector<Config> valid;
  /// The points refused before compilation, with the reason.
  std::vector<std::pair<Config, std::string>> rejected;
};

/// Enumerates the space around |base| (the product of the knobs' values). Throws xlc::Error when
/// |base| itself is not valid: the compiler's default must always be a legal point.
TuningSpace tuningSpace(const FamilyDef &family, const Config &base);

/// |count| indices spread evenly over [0, size): 0, the last, and between (all when size ≤
/// count). Deterministic, for sampling a large space.
std::vector<std::size_t> spreadSample(std::size_t size, std::size_t count);

/// Powers of two in [lo, hi] (lo and hi themselves powers of two): a common knob's values.
std::vector<std::int64_t> powersOfTwo(std::int64_t lo, std::int64_t hi);

} // namespace xlc::kernels

#endif // XLC_RUNTIME_KERNELS_TUNING_H
