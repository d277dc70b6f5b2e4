//===- Profile.cpp - Where the time of one call goes, step by step --------===//

#include "tools/xlc-bench/Profile.h"

#include "runtime/support/Error.h"
#include "tools/xlc-bench/StepClock.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <regex>

namespace xlc::bench {
namespace art = xlc::artifact;

namespace {

/// A weight's name for humans, the same for every block: "weight.blocks.7.ffn.proj_down.weight"
/// -> "ffn.proj_down"; "weight.lm_head.weight.scaled" -> "lm_head".
std::string weightLabel(std::string name) {
  static const std::regex block(R"(blocks\.[0-9]+\.)");
  name = std::regex_replace(name, block, "");
  for (std::string_view prefix : {"weight.", "param."})
    if (name.starts_with(prefix))
      name.erase(0, prefix.size());
  for (std::string_view suffix : {".scaled", ".weight"})
    if (name.ends_with(suffix))
      name.erase(name.size() - suffix.size());
  return name;
}

struct GroupId {
  std::string key, kind, family, detail;
};

GroupId groupOf(const exec::Plan &plan, const exec::PreparedStep &ps,
                const exec::CallShape &shape) {
  const art::Artifact &a = plan.artifact();
  const art::Step &step = *ps.step;
  if (const art::GemmStep *g = step.gemm()) {
    const art::Buffer &weight = a.buffers[g->b];
    const std::string label = art::isBoundClass(weight.cls) ? weightLabel(weight.name) : step.op;
    return {fmt::format("gemm {} {}x{}x{}", label, g->m.evaluate(shape.batch, shape.seq, ps.where),
                        g->n.evaluate(shape.batch, shape.seq, ps.where),
                        g->k.evaluate(shape.batch, shape.seq, ps.where)),
            "gemm", "gemm", std::string(art::epilogueName(g->epilogue))};
  }
  if (const art::CopyStep *c = step.copy())
    return {fmt::format("copy {}", weightLabel(a.buffers[c->src].name)), "copy", "copy", ""};
  return {ps.kernel->name, "launch", ps.kernel->family, ps.kernel->tile};
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

Profile profileCall(exec::Backend &backend, const std::string &function,
                    const exec::CallShape &shape, const exec::CallArgs &base, std::size_t warmup,
                    std::size_t reps, const DeviceLimit &limit, FloatStorage storage) {
  const exec::Plan &plan = backend.plan();
  const exec::PreparedFunction &fn = plan.function(function);
  check(reps >= 1, "profile of '{}': at least one timed call is needed", function);

  Profile profile;
  profile.function = function;
  profile.shape = shape;
  profile.warmup = warmup;

  std::unique_ptr<StepClock> clock = makeStepClock(backend);
  profile.clock = std::string(clock->name());
  ClockObserver observer(*clock, fn.steps.size());
  exec::CallArgs args = base;
  args.firstSlot = shape.firstSlot;
  args.batch = shape.batch;
  args.seq = shape.seq;
  args.observer = &observer;

  std::vector<std::vector<double>> perCall; // [timed call][step]
  for (std::size_t call = 0; call < warmup + reps; ++call) {
    backend.resetStates(shape.firstSlot, shape.batch);
    clock->begin(fn.steps.size());
    const auto start = std::chrono::steady_clock::now();
    backend.call(function, args);
    const double wall = secondsSince(start);
    std::vector<double> seconds = clock->end();
    if (call < warmup)
      continue;
    double sum = 0;
    for (double s : seconds)
      sum += s;
    profile.stepSumSeconds.push_back(sum);
    profile.wallSeconds.push_back(wall);
    perCall.push_back(std::move(seconds));
  }
  profile.gateTimeouts = clock->gateTimeouts();

  // Group the steps; per timed call, the time of each group.
  std::map<std::string, std::size_t> index;
  std::vector<std::vector<double>> groupSeconds; // [group][timed call]
  for (const exec::PreparedStep &prepared : fn.steps) {
    const exec::PreparedStep &ps = prepared.forBatch(shape.batch); // the kernel that ran
    GroupId id = groupOf(plan, ps, shape);
    auto [it, inserted] = index.emplace(id.key, profile.groups.size());
    if (inserted) {
      ProfileGroup g;
      g.key = id.key;
      g.kind = id.kind;
      g.family = id.family;
      g.detail = id.detail;
      profile.groups.push_back(std::move(g));
      groupSeconds.emplace_back(perCall.size(), 0.0);
    }
    ProfileGroup &g = profile.groups[it->second];
    ++g.steps;
    g.work += stepWork(plan, ps, shape, storage);
    std::vector<double> stepSeconds;
    for (std::size_t c = 0; c < perCall.size(); ++c) {
      groupSeconds[it->second][c] += perCall[c][ps.index];
      stepSeconds.push_back(perCall[c][ps.index]);
    }
    profile.steps.push_back({ps.index, id.key, summarize(std::move(stepSeconds)).median});
  }
  double total = 0;
  for (std::size_t i = 0; i < profile.groups.size(); ++i) {
    ProfileGroup &g = profile.groups[i];
    g.seconds = summarize(groupSeconds[i]);
    g.bound = limitTime(g.work, limit, /*useTraffic=*/true);
    total += g.seconds.median;
  }
  for (ProfileGroup &g : profile.groups)
    g.share = total > 0 ? g.seconds.median / total : 0;
  std::stable_sort(profile.groups.begin(), profile.groups.end(),
                   [](const ProfileGroup &x, const ProfileGroup &y) {
                     return x.seconds.median > y.seconds.median;
                   });
  return profile;
}

} // namespace xlc::bench
