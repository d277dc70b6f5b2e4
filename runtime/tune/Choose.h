//===- Choose.h - The tuner's decision rule ---------------------*- C++ -*-===//
//
// How xlc-tune picks among the candidates it measured (docs/auto-tuning.md): the compiler's
// default stays unless a correct candidate is faster by more than both the required margin and
// the noise of the two measurements (their p20-p80 spread). Two runs on one machine then pick the
// same variant unless a candidate's lead is real, and a fast but wrong candidate is never picked
// (its status is not Ok).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TUNE_CHOOSE_H
#define XLC_RUNTIME_TUNE_CHOOSE_H

#include "runtime/tune/TuningDb.h"

#include <string>
#include <vector>

namespace xlc::tune {

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
