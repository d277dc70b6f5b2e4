//===- ApplyTuning.h - An artifact's kernels from a tuning database ---*- C++ -*-===//
//
// xlc-compile --tuning-db: every launch whose kernel has records in the database (same
// function, family and problem: runtime/kernels/Tuning.h) launches the database's choice instead
// of the compiler's default. Records at several batch sizes become batch variants of the launch
// (artifact::LaunchStep::byBatch): a call of B sequences runs the choice measured at the smallest
// measured batch ≥ B, and the largest batch's beyond it (applyChoices says where the compiler's
// own batch variants stay); among records of one batch, the one timed at the longest sequence
// decides. A choice equal to the default leaves the kernel as it is. Tuned kernels carry their
// provenance (artifact::KernelTuning); kernels no launch uses any more are dropped. The result
// depends only on the artifact and the database (deterministic).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TUNE_APPLYTUNING_H
#define XLC_RUNTIME_TUNE_APPLYTUNING_H

#include "runtime/artifact/Artifact.h"
#include "runtime/kernels/KernelFamily.h"
#include "runtime/tune/TuningDb.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace xlc::tune {

struct ApplyReport {
  std::size_t launches = 0;       ///< launch steps of tunable kernels
  std::size_t tunedLaunches = 0;  ///< of them, launching a tuned variant for some batch
  std::size_t kernelsAdded = 0;   ///< distinct tuned kernels
  std::size_t kernelsDropped = 0; ///< defaults no launch uses any more
  std::vector<std::string> untuned; ///< "family problem" of tunable kernels without records
};

/// One configuration a launch takes, measured at |batch| sequences.
struct Choice {
  std::uint64_t batch = 1;
  kernels::Config config; ///< a variant of the kernel's problem
  std::optional<artifact::KernelTuning> provenance; ///< recorded in the kernel when it changes
  std::string origin; ///< names the choice in errors ("tuning record ...")
};
/// The choices for a launch of |kernel| (whose problem is |problemKey|) in |function|,
/// ascending by batch; none: the launch keeps its kernel.
using Chooser = std::function<std::vector<Choice>(
    const std::string &function, const artifact::Kernel &kernel, const std::string &problemKey)>;

/// Replaces the kernel of every launch of a tunable family by what |chooser| picks and drops
/// kernels no launch uses any more. A choice made at batch b stands for the batches from the
/// previous choice's (exclusive) up to b, the last one for every larger batch, but only where
/// the launch ran the kernel it was measured against: the compiler's own batch variants keep
/// the batches nothing was measured at. A launch whose every choice is what it runs already is
/// left as it is. Throws xlc::Error, the artifact unchanged, when a choice is not a valid
/// variant of the kernel it replaces.
ApplyReport applyChoices(artifact::Artifact &artifact, const Chooser &chooser);

/// applyChoices with |db|'s records. Throws xlc::Error (the artifact unchanged) when a record's
/// choice is not a valid variant of the kernel it names.
ApplyReport applyTuning(artifact::Artifact &artifact, const Database &db);

/// The environment fields a compiler can check without the GPU: the device-header hash and the
/// xlc version; "" when |db| matches |headersHash| and |xlcVersion|, else the differences.
std::string compileTimeStaleness(const Database &db, const std::string &headersHash,
                                 const std::string &xlcVersion);

} // namespace xlc::tune

#endif // XLC_RUNTIME_TUNE_APPLYTUNING_H
