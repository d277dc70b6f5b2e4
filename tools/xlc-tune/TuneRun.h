//===- TuneRun.h - xlc-tune run: measure kernel variants -------*- C++ -*-===//
//
// Measures the tuning spaces of one function of a compiled model at the shapes asked for and
// merges what it found into a tuning database (docs/auto-tuning.md, "Measuring"):
//
//   rounds    round r runs an artifact in which every kernel problem of the function launches
//             its r-th valid variant (its default where it has fewer; round 0: every default),
//             so one backend serves one variant of every problem at once;
//   checks    before timing, one call with a step observer reads the buffers the first launch of
//             each problem writes; a variant whose buffers differ from the default's by more
//             than the tolerance (relative L2) is `wrong`, whatever its speed;
//   timing    xlc-bench's step profile (CUDA events with the stream held back, or the host clock
//             on the CPU backend): warm-up calls, then repeats; a problem's sample is the sum of
//             its launches in one call;
//   failures  a round whose backend or call fails is retried problem by problem, so one variant
//             that does not compile or launch is marked and the others are measured;
//   choosing  a problem whose every variant was measured gets its record (Choose.h: the default
//             unless beaten by more than the margin and the noise), merged into the database at
//             once; what a round left half done is kept in "<db>.partial" and a rerun with the
//             same arguments continues from it (problems already in the database are skipped).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_XLC_TUNE_TUNERUN_H
#define XLC_TOOLS_XLC_TUNE_TUNERUN_H

#include "tools/support/BackendChoice.h"

#include <cstdint>
#include <string>
#include <vector>

namespace xlc::tune {

struct RunOptions {
  std::string artifact, weights, database;
  std::string device = "auto";
  std::string function = "prefill"; ///< prefill, decode_step or train_step
  std::string family;               ///< only this family ("" = all)
  std::vector<std::uint64_t> batches = {1};
  std::uint64_t seq = 2048; ///< tokens per sequence (prefill, train_step)
  std::size_t warmup = 2, reps = 10;
  double margin = 0.02;     ///< a variant must beat the default by more than this (and the noise)
  double tolerance = 0.03;  ///< relative L2 against the default's output
  double budgetSeconds = 0; ///< stop after the round that passes it (0: no budget)
  std::uint64_t seed = 1;
  bool json = false;
  tools::BackendSettings backend;
};

/// Runs the measurement; returns the exit status (0 done, 3 stopped by the budget with work
/// left for a rerun). Throws xlc::Error on bad input or a default that does not run.
int runTuning(const RunOptions &options);

} // namespace xlc::tune

#endif // XLC_TOOLS_XLC_TUNE_TUNERUN_H
