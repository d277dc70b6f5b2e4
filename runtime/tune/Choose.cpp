//===- Choose.cpp - The tuner's decision rule ----------------------------===//

#include "runtime/tune/Choose.h"

#include "runtime/support/Error.h"

#include <algorithm>

namespace xlc::tune {

double relativeNoise(const Candidate &c) {
  return c.medianUs > 0 ? (c.p80Us - c.p20Us) / (2 * c.medianUs) : 0;
}

std::string choose(const std::vector<Candidate> &candidates, const std::string &defaultTile,
                   double margin) {
  auto def = std::find_if(candidates.begin(), candidates.end(),
                          [&](const Candidate &c) { return c.tile == defaultTile; });
  check(def != candidates.end(), "the default {} was not measured", defaultTile);
  check(def->status == Candidate::Status::Ok,
        "the default {} did not run correctly ({}): nothing to compare the variants against",
        defaultTile, def->message);
  const Candidate *best = &*def;
  for (const Candidate &c : candidates)
    if (c.status == Candidate::Status::Ok && c.medianUs < best->medianUs)
      best = &c;
  const double needed = std::max({margin, relativeNoise(*def), relativeNoise(*best)});
  return best->medianUs < def->medianUs * (1 - needed) ? best->tile : defaultTile;
}

} // namespace xlc::tune
