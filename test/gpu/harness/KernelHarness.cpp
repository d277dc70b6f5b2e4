//===- KernelHarness.cpp --------------------------------------------------===//
#include "KernelHarness.h"

#include <fmt/format.h>

namespace xlc::test {

double relativeError(const std::vector<double> &out, const std::vector<double> &ref) {
  if (out.size() != ref.size())
    return std::numeric_limits<double>::infinity();
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i]) || !std::isfinite(ref[i]))
      return std::numeric_limits<double>::infinity();
    diff += (out[i] - ref[i]) * (out[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return norm > 0.0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

double maxAbsError(const std::vector<double> &out, const std::vector<double> &ref) {
  if (out.size() != ref.size())
    return std::numeric_limits<double>::infinity();
  double worst = 0.0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i]) || !std::isfinite(ref[i]))
      return std::numeric_limits<double>::infinity();
    worst = std::max(worst, std::abs(out[i] - ref[i]));
  }
  return worst;
}

bool CaseReport::ok() const {
  for (const Metric &m : metrics)
    if (!m.ok())
      return false;
  return !metrics.empty();
}

std::string CaseReport::describe() const {
  std::string text = fmt::format("[{}] {}\n", backend, name);
  for (const Metric &m : metrics)
    text += fmt::format("  {:<34} {:10.3e} <= {:9.2e}  {}\n", m.what, m.value, m.tolerance,
                        m.ok() ? "ok" : "FAIL");
  for (const std::string &note : notes)
    text += "  note: " + note + "\n";
  return text;
}

} // namespace xlc::test
