//===- Stats.h - Medians and percentiles of repeated measurements -*- C++ -*-===//
//
// xlc-bench reports every figure as the median of its repeats with the 20th and 80th
// percentiles (linear interpolation between the order statistics, numpy's default), and keeps
// the repeats themselves in its JSON.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_XLC_BENCH_STATS_H
#define XLC_TOOLS_XLC_BENCH_STATS_H

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace xlc::bench {

struct Summary {
  double median = 0, p20 = 0, p80 = 0, min = 0, max = 0;
  std::size_t count = 0;
};

/// The |q|-quantile (q in [0, 1]) of sorted |v| (not empty): v[q·(n−1)] interpolated linearly.
inline double quantileSorted(const std::vector<double> &v, double q) {
  const double position = q * static_cast<double>(v.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(position));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (position - static_cast<double>(lo));
}

/// Median, p20, p80, min and max of |values| (all zero when empty).
inline Summary summarize(std::vector<double> values) {
  Summary s;
  s.count = values.size();
  if (values.empty())
    return s;
  std::sort(values.begin(), values.end());
  s.median = quantileSorted(values, 0.5);
  s.p20 = quantileSorted(values, 0.2);
  s.p80 = quantileSorted(values, 0.8);
  s.min = values.front();
  s.max = values.back();
  return s;
}

} // namespace xlc::bench

#endif // XLC_TOOLS_XLC_BENCH_STATS_H
