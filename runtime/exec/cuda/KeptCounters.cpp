//===- KeptCounters.cpp - Counters that stay zero between launches -------===//

#include "runtime/exec/cuda/KeptCounters.h"

#include "runtime/kernels/KernelFamily.h"

#include <algorithm>
#include <map>

namespace xlc::exec {

namespace art = xlc::artifact;

namespace {

/// Whether argument |i| of |step| (a launch of |kernel|) is a Duty::Zeroed parameter.
bool zeroedParam(const art::Kernel &kernel, std::size_t i) {
  const kernels::FamilyDef *family = kernels::findFamily(kernel.family);
  if (family == nullptr || family->params == nullptr)
    return false;
  const std::vector<kernels::ParamDef> params = family->params(kernel.config);
  return i < params.size() && params[i].duty == kernels::Duty::Zeroed;
}

} // namespace

std::vector<art::BufferId> findKeptCounters(const art::Artifact &artifact) {
  // Per buffer: whether every use seen so far is a kept-counter use.
  std::map<art::BufferId, bool> candidates;
  for (const art::Function &fn : artifact.functions)
    for (const art::Step &step : fn.steps) {
      auto hasDuty = [&](art::DutyKind kind, art::BufferId id) {
        return std::any_of(step.duties.begin(), step.duties.end(),
                           [&](const art::Duty &d) { return d.kind == kind && d.buffer == id; });
      };
      // The arguments this step passes as kept counters.
      std::vector<art::BufferId> kept;
      if (const art::LaunchStep *launch = step.launch())
        for (std::size_t i = 0; i < launch->args.size(); ++i) {
          const art::Arg &arg = launch->args[i];
          if (arg.kind != art::ArgKind::Buffer)
            continue;
          bool ok = hasDuty(art::DutyKind::Zero, arg.bufferId) &&
                    !hasDuty(art::DutyKind::ErrorFlag, arg.bufferId) &&
                    zeroedParam(artifact.kernels[launch->kernel], i);
          for (const art::BatchVariant &v : launch->byBatch)
            ok = ok && zeroedParam(artifact.kernels[v.kernel], i);
          if (ok)
            kept.push_back(arg.bufferId);
        }
      // Every other mention of a buffer (operands, other arguments, duties) disqualifies it.
      std::map<art::BufferId, int> keptUses;
      for (art::BufferId id : kept)
        ++keptUses[id];
      std::map<art::BufferId, int> uses;
      for (art::BufferId id : art::buffersOf(step))
        ++uses[id];
      for (const auto &[id, count] : uses) {
        // A kept counter appears as its argument and once in its zero duty.
        const auto k = keptUses.find(id);
        const bool keptUse = k != keptUses.end() && count == k->second + 1;
        auto [it, inserted] = candidates.emplace(id, keptUse);
        if (!inserted)
          it->second = it->second && keptUse;
      }
    }
  std::vector<art::BufferId> ids;
  for (const auto &[id, ok] : candidates)
    if (ok && artifact.buffers[id].cls == art::BufferClass::Workspace)
      ids.push_back(id);
  return ids;
}

} // namespace xlc::exec
