//===- Choose.h - Timing statistics and the tuner's decision rule --*- C++ -*-===//
//
// What xlc-tune does with the samples of each candidate (docs/auto-tuning.md): summarize them as
// median, p20 and p80 (nearest rank), and keep the compiler's default unless a correct candidate
// is faster by more than both the required margin and the noise of the two measurements. Two runs
// on one machine then pick the same variant unless a candidate's lead is real, and a fast but
// wrong candidate is never picked (its status is not Ok).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TUNE_CHOOSE_H
#define XLC_RUNTIME_TUNE_CHOOSE_H

#include "runtime/tune/TuningDb.h"

#include <string>
#include <vector>

namespace xlc::tune {

/// Median, p20 and p80 (nearest rank) of |samples| (microseconds), and their count. Throws
/// xlc::Error when |samples| is empty or holds a value that is not positive and finite.
struct Timing {
  double medianUs = 0, p20Us = 0, p80Us = 0;
  std::int64_t repeats = 0;
};
Timing summarize(std::vector<double> samples);

/// Half the p20–p80 spread relative to the median: the noise of one measurement.
double relativeNoise(const Candidate &candidate);

/// The tile of the pick among |candidates|: the correct candidate with the lowest median, if it
/// beats the default's median by more than max(|margin|, the noise of either); else
/// |defaultTile|. Throws when the default is not among the candidates or was not measured
/// correctly (nothing to compare against).
std::string choose(const std::vector<Candidate> &candidates, const std::string &defaultTile,
                   double margin);

} // namespace xlc::tune

#endif // XLC_RUNTIME_TUNE_CHOOSE_H
