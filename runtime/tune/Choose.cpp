//===- Choose.cpp - Timing statistics and the tuner's decision rule -------===//

#include "runtime/tune/Choose.h"

#include "runtime/support/Error.h"

#include <algorithm>
#include <cmath>

namespace xlc::tune {

Timing summarize(std::vector<double> samples) {
  check(!samples.empty(), "no timing samples");
  for (double s : samples)
    check(std::isfinite(s) && s > 0, "timing sample {} is not a positive time", s);
  std::sort(samples.begin(), samples.end());
  // Nearest rank: the smallest sample with at least q of them at or below it.
  auto rank = [&](double q) {
    const auto n = static_cast<double>(samples.size());
    const auto index = static_cast<std::size_t>(std::max(1.0, std::ceil(q * n))) - 1;
    return samples[std::min(index, samples.size() - 1)];
  };
  return {rank(0.5), rank(0.2), rank(0.8), static_cast<std::int64_t>(samples.size())};
}

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
