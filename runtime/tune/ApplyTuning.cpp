//===- ApplyTuning.cpp - An artifact's kernels from a tuning database -----===//

#include "runtime/tune/ApplyTuning.h"

#include "runtime/kernels/KernelFamily.h"
#include "runtime/kernels/Tuning.h"
#include "runtime/support/Error.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

namespace xlc::tune {
namespace art = xlc::artifact;

namespace {

/// The median of candidate |tile| in |record|, 0 when it was not timed.
double medianOf(const Record &record, const std::string &tile) {
  for (const Candidate &c : record.candidates)
    if (c.tile == tile && c.status == Candidate::Status::Ok)
      return c.medianUs;
  return 0;
}

/// The identity of a kernel for deduplication: entry, source and parameters (as the writer's).
std::string kernelKey(const art::Kernel &k) {
  std::string key = k.entry + "\n" + k.source;
  for (const art::KernelParam &p : k.params)
    key += "\n" + p.name + ":" + std::string(art::paramKindName(p.kind));
  return key;
}

} // namespace

ApplyReport applyChoices(art::Artifact &artifact, const Chooser &chooser) {
  art::Artifact out = artifact; // the input stays as it was if anything throws
  ApplyReport report;
  std::map<std::string, art::KernelIndex> byKey;
  std::set<std::string> names;
  for (std::size_t i = 0; i < out.kernels.size(); ++i) {
    byKey.emplace(kernelKey(out.kernels[i]), static_cast<art::KernelIndex>(i));
    names.insert(out.kernels[i].name);
  }
  std::set<std::string> untuned;

  // The kernel of |choice| in place of kernel |index|.
  auto chosenKernel = [&](art::KernelIndex index, const Choice &choice) -> art::KernelIndex {
    const art::Kernel base = out.kernels[index];
    if (choice.config == base.config)
      return index;
    const kernels::FamilyDef &family = *kernels::findFamily(base.family);
    if (kernels::problemKey(family, choice.config) != kernels::problemKey(family, base.config))
      fail("{}: the choice {} is not a variant of kernel '{}' (another problem)", choice.origin,
           choice.config.dump(), base.name);
    if (std::string why = kernels::variantProblem(family, choice.config); !why.empty())
      fail("{}: the choice {} is not a valid variant of kernel '{}': {}", choice.origin,
           kernels::variantTile(family, choice.config), base.name, why);
    art::Kernel kernel = kernels::renderKernel(family, choice.config,
                                               kernels::variantTile(family, choice.config));
    kernel.tuning = choice.provenance;
    const std::string key = kernelKey(kernel);
    if (auto it = byKey.find(key); it != byKey.end())
      return it->second;
    // A name no kernel has (an artifact tuned before has "<family>_tuned_<n>" already).
    for (std::size_t n = report.kernelsAdded;; ++n) {
      kernel.name = fmt::format("{}_tuned_{}", kernel.family, n);
      if (names.insert(kernel.name).second)
        break;
    }
    ++report.kernelsAdded;
    const auto added = static_cast<art::KernelIndex>(out.kernels.size());
    out.kernels.push_back(std::move(kernel));
    byKey.emplace(key, added);
    return added;
  };

  for (art::Function &function : out.functions)
    for (art::Step &step : function.steps) {
      auto *launch = std::get_if<art::LaunchStep>(&step.body);
      if (!launch)
        continue;
      const art::Kernel &kernel = out.kernels[launch->kernel];
      const kernels::FamilyDef *family = kernels::findFamily(kernel.family);
      if (!family || kernels::tuningKnobs(*family, kernel.config).empty())
        continue;
      ++report.launches;
      const std::string problem = kernels::problemKey(*family, kernel.config);
      const std::vector<Choice> choices = chooser(function.name, kernel, problem);
      if (choices.empty()) {
        untuned.insert(function.name + " " + kernel.family + " " + problem);
        continue;
      }
      // The launch as a piecewise-constant function of B, before and after. A choice made at
      // batch b_i stands for the batches nearest above it (B in (b_{i-1}, b_i], the last one for
      // every B beyond), but only where the launch ran the kernel it was measured against
      // (kernelFor(b_i)): the compiler's batch variants keep the batches nothing was measured at.
      const art::LaunchStep before = *launch;
      std::vector<std::uint64_t> points;
      for (const Choice &c : choices)
        points.push_back(c.batch);
      for (const art::BatchVariant &v : before.byBatch)
        points.push_back(v.maxBatch);
      std::sort(points.begin(), points.end());
      points.erase(std::unique(points.begin(), points.end()), points.end());
      auto kernelAt = [&](std::uint64_t batch) {
        const art::KernelIndex original = before.kernelFor(batch);
        std::size_t i = 0;
        while (i + 1 < choices.size() && choices[i].batch < batch)
          ++i;
        if (before.kernelFor(choices[i].batch) != original)
          return original;
        // A choice the launch already has at other batches is that kernel, not a copy.
        if (out.kernels[before.kernel].config == choices[i].config)
          return before.kernel;
        for (const art::BatchVariant &v : before.byBatch)
          if (out.kernels[v.kernel].config == choices[i].config)
            return v.kernel;
        return chosenKernel(original, choices[i]);
      };
      std::vector<art::KernelIndex> segment; // segment j: B in (points[j-1], points[j]]
      for (std::uint64_t p : points)
        segment.push_back(kernelAt(p));
      const art::KernelIndex beyond = kernelAt(points.back() + 1);
      std::vector<art::BatchVariant> byBatch;
      for (std::size_t j = 0; j < points.size(); ++j) {
        const art::KernelIndex next = j + 1 < points.size() ? segment[j + 1] : beyond;
        if (segment[j] != next)
          byBatch.push_back({points[j], segment[j]});
      }
      bool changed = beyond != before.kernel;
      for (std::size_t j = 0; j < points.size(); ++j)
        changed = changed || segment[j] != before.kernelFor(points[j]);
      if (!changed)
        continue; // every choice is what the launch already runs: leave the step as it is
      launch->kernel = beyond;
      launch->byBatch = std::move(byBatch);
      ++report.tunedLaunches;
    }

  // Drop kernels no launch uses any more; the rest keep their order and names.
  std::vector<bool> used(out.kernels.size(), false);
  for (const art::Function &function : out.functions)
    for (const art::Step &step : function.steps)
      if (const auto *launch = std::get_if<art::LaunchStep>(&step.body)) {
        used[launch->kernel] = true;
        for (const art::BatchVariant &v : launch->byBatch)
          used[v.kernel] = true;
      }
  std::vector<art::KernelIndex> remap(out.kernels.size());
  std::vector<art::Kernel> kept;
  for (std::size_t i = 0; i < out.kernels.size(); ++i) {
    if (!used[i]) {
      ++report.kernelsDropped;
      continue;
    }
    remap[i] = static_cast<art::KernelIndex>(kept.size());
    kept.push_back(std::move(out.kernels[i]));
  }
  out.kernels = std::move(kept);
  for (art::Function &function : out.functions)
    for (art::Step &step : function.steps)
      if (auto *launch = std::get_if<art::LaunchStep>(&step.body)) {
        launch->kernel = remap[launch->kernel];
        for (art::BatchVariant &v : launch->byBatch)
          v.kernel = remap[v.kernel];
      }
  report.untuned.assign(untuned.begin(), untuned.end());
  artifact = std::move(out);
  return report;
}

ApplyReport applyTuning(art::Artifact &artifact, const Database &db) {
  return applyChoices(artifact, [&](const std::string &function, const art::Kernel &kernel,
                                    const std::string &problem) {
    // One record per measured batch of this function: the longest sequence's (find() sorts by
    // batch, then seq).
    std::vector<const Record *> buckets;
    for (const Record *r : db.find(kernel.family, problem)) {
      if (r->function != function)
        continue;
      if (!buckets.empty() && buckets.back()->batch == r->batch)
        buckets.back() = r;
      else
        buckets.push_back(r);
    }
    std::vector<Choice> choices;
    for (const Record *r : buckets) {
      Choice c;
      c.batch = static_cast<std::uint64_t>(r->batch);
      c.config = kernel.config;
      for (const auto &[field, value] : r->chosen().knobs.items())
        c.config[field] = value;
      c.provenance = art::KernelTuning{r->key(), r->defaultTile, medianOf(*r, r->defaultTile),
                                       r->chosen().medianUs};
      c.origin = "tuning record " + r->key();
      choices.push_back(std::move(c));
    }
    return choices;
  });
}

std::string compileTimeStaleness(const Database &db, const std::string &headersHash,
                                 const std::string &xlcVersion) {
  std::vector<std::string> diff;
  if (db.environment.headers != headersHash)
    diff.push_back(fmt::format("device headers: database {}, this compiler {}",
                               db.environment.headers, headersHash));
  if (db.environment.xlc != xlcVersion)
    diff.push_back(
        fmt::format("xlc: database {}, this compiler {}", db.environment.xlc, xlcVersion));
  return fmt::format("{}", fmt::join(diff, "; "));
}

} // namespace xlc::tune
