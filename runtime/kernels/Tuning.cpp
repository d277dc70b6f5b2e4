//===- Tuning.cpp - Kernel variants: tuning spaces and their constraints ----===//

#include "runtime/kernels/Tuning.h"

#include "runtime/support/Error.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace xlc::kernels {

std::vector<TuningKnob> tuningKnobs(const FamilyDef &family, const Config &config) {
  return family.tuning ? family.tuning(config) : std::vector<TuningKnob>{};
}

std::string variantProblem(const FamilyDef &family, const Config &config) {
  try {
    checkConfig(family, config, "variant");
  } catch (const Error &e) {
    return e.what();
  }
  if (family.constraint)
    if (std::string why = family.constraint(config); !why.empty())
      return why;
  const Geometry g = family.geometry(config);
  const std::uint64_t threads = std::uint64_t{g.block[0]} * g.block[1] * g.block[2];
  if (threads == 0 || threads > 1024 || threads % 32 != 0)
    return fmt::format("{} threads per block: whole warps and at most 1024 needed", threads);
  if (g.sharedBytes > kMaxSharedBytes)
    return fmt::format("{} bytes of shared memory per block: at most {} on sm_90", g.sharedBytes,
                       kMaxSharedBytes);
  const std::uint64_t gridLimit[3] = {(1ull << 31) - 1, 65535, 65535};
  for (int d = 0; d < 3; ++d)
    if (g.grid[d].isConstant() && (g.grid[d].c == 0 || g.grid[d].c > gridLimit[d]))
      return fmt::format("grid dimension {} is {}: 1 to {} allowed", d, g.grid[d].c,
                         gridLimit[d]);
  return {};
}

std::string variantTile(const FamilyDef &family, const Config &config) {
  std::string out = "#xk.tile<";
  const char *sep = "";
  for (const TuningKnob &knob : tuningKnobs(family, config)) {
    out += fmt::format("{}{} = {}", sep, knob.field, cfgInt(config, knob.field));
    sep = ", ";
  }
  return out + ">";
}

std::string problemKey(const FamilyDef &family, const Config &config) {
  Config problem = config;
  for (const TuningKnob &knob : tuningKnobs(family, config))
    problem.erase(std::string(knob.field));
  return problem.dump(); // nlohmann::json keeps object keys sorted
}

TuningSpace tuningSpace(const FamilyDef &family, const Config &base) {
  if (std::string why = variantProblem(family, base); !why.empty())
    fail("family '{}': the default configuration {} is not a valid variant: {}", family.name,
         base.dump(), why);
  const std::vector<TuningKnob> knobs = tuningKnobs(family, base);
  TuningSpace space;
  space.valid.push_back(base);
  std::set<std::string> seen = {base.dump()};
  // Odometer over the knobs' values: the last knob turns fastest.
  std::vector<std::size_t> at(knobs.size(), 0);
  for (const TuningKnob &knob : knobs)
    if (knob.values.empty())
      return space;
  while (true) {
    Config point = base;
    for (std::size_t k = 0; k < knobs.size(); ++k)
      point[std::string(knobs[k].field)] = knobs[k].values[at[k]];
    if (seen.insert(point.dump()).second) {
      if (std::string why = variantProblem(family, point); why.empty())
        space.valid.push_back(std::move(point));
      else
        space.rejected.emplace_back(std::move(point), std::move(why));
    }
    std::size_t k = knobs.size();
    while (k > 0 && ++at[k - 1] == knobs[k - 1].values.size())
      at[--k] = 0;
    if (k == 0)
      break;
  }
  return space;
}

std::vector<std::size_t> spreadSample(std::size_t size, std::size_t count) {
  std::vector<std::size_t> out;
  if (size == 0 || count == 0)
    return out;
  if (size <= count) {
    for (std::size_t i = 0; i < size; ++i)
      out.push_back(i);
    return out;
  }
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t index = count == 1 ? 0 : i * (size - 1) / (count - 1);
    if (out.empty() || out.back() != index)
      out.push_back(index);
  }
  return out;
}

std::vector<std::int64_t> powersOfTwo(std::int64_t lo, std::int64_t hi) {
  std::vector<std::int64_t> out;
  for (std::int64_t v = lo; v <= hi; v *= 2)
    out.push_back(v);
  return out;
}

} // namespace xlc::kernels
