//===- Report.cpp - xlc-bench's JSON document and human table -------------===//

#include "tools/xlc-bench/Report.h"

#include "runtime/support/Error.h"
#include "tools/xlc-bench/Stats.h"

#include <cmath>
#include <ctime>
#include <functional>

namespace xlc::bench {
namespace art = xlc::artifact;

namespace {

using Json = nlohmann::ordered_json;

/// A figure derived from each repeat's seconds.
struct FigureDef {
  const char *key;
  const char *label;
  const char *unit;
  std::function<double(double)> fromSeconds;
};

std::vector<FigureDef> figuresOf(const BenchCase &c, const RunSettings &settings) {
  const double b = static_cast<double>(c.batch), p = static_cast<double>(c.prompt);
  const double n = static_cast<double>(settings.decodeSteps);
  const double flopsPerToken = settings.trainFlopsPerToken;
  switch (c.kind) {
  case CaseKind::Prefill:
    return {{"prefill_tokens_per_s", "prefill", "tok/s", [=](double t) { return b * p / t; }},
            {"time_to_first_token_ms", "first token", "ms", [](double t) { return t * 1e3; }}};
  case CaseKind::Decode:
    return {{"decode_tokens_per_s", "decode", "tok/s", [=](double t) { return b * n / t; }},
            {"step_ms", "decode step", "ms", [=](double t) { return t / n * 1e3; }}};
  case CaseKind::Train:
    return {{"train_tokens_per_s", "training", "tok/s", [=](double t) { return b * p / t; }},
            {"optimizer_step_ms", "step", "ms", [](double t) { return t * 1e3; }},
            {"model_tflops", "6N FLOP/s", "TFLOP/s",
             [=](double t) { return flopsPerToken * b * p / t / 1e12; }}};
  case CaseKind::ProfilePrefill:
  case CaseKind::ProfileDecode:
  case CaseKind::ProfileTrain:
    return {{"step_sum_ms", "sum of steps", "ms", [](double t) { return t * 1e3; }}};
  }
  return {};
}

Summary figureSummary(const FigureDef &f, const std::vector<double> &seconds) {
  std::vector<double> values;
  for (double t : seconds)
    values.push_back(f.fromSeconds(t));
  return summarize(std::move(values));
}

Json summaryJson(const Summary &s, const char *unit) {
  return {{"median", s.median}, {"p20", s.p20},   {"p80", s.p80},
          {"min", s.min},       {"max", s.max},   {"count", s.count},
          {"unit", unit}};
}

Json figuresJson(const BenchCase &c, const RunSettings &settings,
                 const std::vector<double> &seconds) {
  Json figures = Json::object();
  for (const FigureDef &f : figuresOf(c, settings))
    figures[f.key] = summaryJson(figureSummary(f, seconds), f.unit);
  return figures;
}

Json workJson(const Work &w) {
  return {{"flops", w.flops},
          {"weight_bytes", w.weightBytes},
          {"state_bytes", w.stateBytes},
          {"io_bytes", w.ioBytes},
          {"activation_bytes", w.activationBytes},
          {"compulsory_bytes", w.compulsoryBytes()}};
}

/// The ratio of the bound to the median of |seconds| (null without a bound or repeats).
Json ratioJson(const std::optional<Bound> &bound, const std::vector<double> &seconds) {
  const double median = summarize(seconds).median;
  if (!bound || seconds.empty() || median <= 0)
    return nullptr;
  return bound->seconds / median;
}

Json profileJson(const Profile &p) {
  Json groups = Json::array();
  for (const ProfileGroup &g : p.groups) {
    Json entry = {{"key", g.key},
                  {"kind", g.kind},
                  {"family", g.family},
                  {"detail", g.detail},
                  {"steps", g.steps},
                  {"ms", summaryJson(Summary{g.seconds.median * 1e3, g.seconds.p20 * 1e3,
                                             g.seconds.p80 * 1e3, g.seconds.min * 1e3,
                                             g.seconds.max * 1e3, g.seconds.count},
                                     "ms")},
                  {"share", g.share},
                  {"work", workJson(g.work)}};
    const double t = g.seconds.median;
    entry["achieved_gb_per_s"] = t > 0 ? Json(g.work.trafficBytes() / t / 1e9) : Json(nullptr);
    entry["achieved_tflop_per_s"] = t > 0 ? Json(g.work.flops / t / 1e12) : Json(nullptr);
    if (g.bound && t > 0) {
      entry["limit_ms"] = g.bound->seconds * 1e3;
      entry["bound"] = std::string(g.bound->resource);
      entry["ratio_to_limit"] = g.bound->seconds / t;
    } else {
      entry["limit_ms"] = nullptr;
      entry["bound"] = nullptr;
      entry["ratio_to_limit"] = nullptr;
    }
    groups.push_back(std::move(entry));
  }
  Json steps = Json::array();
  for (const StepTiming &s : p.steps)
    steps.push_back({{"index", s.index}, {"group", s.group}, {"median_us", s.medianSeconds * 1e6}});
  Json wall = Json::array(), sums = Json::array();
  for (double s : p.wallSeconds)
    wall.push_back(s);
  for (double s : p.stepSumSeconds)
    sums.push_back(s);
  return {{"function", p.function},
          {"batch", p.shape.batch},
          {"seq", p.shape.seq},
          {"clock", p.clock},
          {"warmup_calls", p.warmup},
          {"step_sum_s", sums},
          {"wall_s", wall},
          {"wall_ms", summaryJson(
                          [&] {
                            Summary s = summarize(p.wallSeconds);
                            return Summary{s.median * 1e3, s.p20 * 1e3, s.p80 * 1e3, s.min * 1e3,
                                           s.max * 1e3, s.count};
                          }(),
                          "ms")},
          {"gate_timeouts", p.gateTimeouts},
          {"reliable", p.gateTimeouts == 0},
          {"groups", groups},
          {"steps", steps}};
}

Json caseJson(const BenchRun &run, const CaseResult &r) {
  const BenchCase &c = r.bench;
  Json entry;
  entry["name"] = c.name;
  entry["kind"] = std::string(caseKindName(c.kind));
  entry["batch"] = c.batch;
  entry["prompt_tokens"] = c.prompt;
  if (c.kind == CaseKind::Decode)
    entry["decode_steps_per_repeat"] = run.settings.decodeSteps;
  entry["status"] = !r.done ? "pending" : r.error.empty() ? "ok" : "failed";
  entry["error"] = r.error.empty() ? Json(nullptr) : Json(r.error);
  entry["backend_limits"] = {{"max_batch", r.maxBatch}, {"max_seq", r.maxSeq}};
  // Corners of the prompts, [sequence, position, id]: scripts/hf-bench.py computes the same ids.
  const std::uint64_t vocab = run.model.value("vocab_size", std::uint64_t{0});
  const std::uint64_t length = std::max<std::uint64_t>(c.prompt, 1);
  Json sample = Json::array();
  if (vocab > 3)
    for (std::uint64_t i : {std::uint64_t{0}, c.batch - 1})
      for (std::uint64_t t : {std::uint64_t{0}, length - 1})
        sample.push_back({i, t, promptToken(run.settings.seed, i, t, vocab)});
  entry["prompt_sample"] = std::move(sample);
  if (!c.isProfile() && !c.isTraining())
    entry["prefill_calls"] = r.prefillCalls;
  if (c.isTraining())
    entry["sequence_tokens"] = c.prompt;
  entry["repeats_s"] = r.repeats;
  entry["warmup_s"] = r.warmupRepeats;
  const std::vector<FigureDef> defs = figuresOf(c, run.settings);
  entry["primary_figure"] = defs.front().key;
  entry["figures"] = figuresJson(c, run.settings, r.repeats);
  if (c.kind == CaseKind::Decode)
    entry["prefill_time_to_first_token_ms"] = r.decodeTtftSeconds * 1e3;
  entry["work"] = workJson(r.work);
  entry["limit"] = r.bound ? Json{{"seconds", r.bound->seconds},
                                  {"bound", std::string(r.bound->resource)}}
                           : Json(nullptr);
  entry["ratio_to_limit"] = ratioJson(r.bound, r.repeats);
  const bool memory = r.memoryBefore.known && r.memoryAfter.known;
  entry["memory"] = {{"method", run.memoryMethod},
                     {"before_bytes", memory ? Json(r.memoryBefore.bytes) : Json(nullptr)},
                     {"after_bytes", memory ? Json(r.memoryAfter.bytes) : Json(nullptr)},
                     {"backend_bytes", memory ? Json(r.memoryAfter.bytes - r.memoryBefore.bytes)
                                              : Json(nullptr)}};
  const auto hf = run.hf.cases.find(c.name);
  if (hf == run.hf.cases.end()) {
    entry["hf"] = nullptr;
    entry["xlc_speedup_vs_hf"] = nullptr;
  } else {
    const HfCaseResult &h = hf->second;
    entry["hf"] = {{"status", h.error.empty() ? "ok" : "failed"},
                   {"error", h.error.empty() ? Json(nullptr) : Json(h.error)},
                   {"repeats_s", h.repeats},
                   {"warmup_s", h.warmupRepeats},
                   {"figures", figuresJson(c, run.settings, h.repeats)},
                   {"ratio_to_limit", ratioJson(r.bound, h.repeats)},
                   {"time_to_first_token_ms", h.ttftSeconds * 1e3},
                   {"peak_allocated_bytes", h.peakAllocatedBytes},
                   {"device_used_bytes", h.deviceUsedBytes}};
    const double xlc = summarize(r.repeats).median, other = summarize(h.repeats).median;
    entry["xlc_speedup_vs_hf"] =
        xlc > 0 && other > 0 && r.error.empty() && h.error.empty() ? Json(other / xlc)
                                                                     : Json(nullptr);
  }
  entry["profile"] = r.profile ? profileJson(*r.profile) : Json(nullptr);
  if (!r.callSeconds.empty()) {
    Json calls = Json::object();
    for (const auto &[function, seconds] : r.callSeconds) {
      std::vector<double> ms;
      for (double t : seconds)
        ms.push_back(t * 1e3);
      calls[function] = summaryJson(summarize(std::move(ms)), "ms");
    }
    entry["calls_ms"] = std::move(calls);
  }
  return entry;
}

std::string gib(double bytes) { return fmt::format("{:.2f} GiB", bytes / (1u << 30)); }

/// "156.7", "36,675" style: enough digits for the size.
std::string number(double x) {
  if (!std::isfinite(x))
    return "-";
  const double a = std::fabs(x);
  if (a >= 1e4)
    return fmt::format("{:.0f}", x);
  if (a >= 100)
    return fmt::format("{:.1f}", x);
  if (a >= 1)
    return fmt::format("{:.2f}", x);
  return fmt::format("{:.3g}", x);
}

} // namespace

Json modelFacts(const exec::Plan &plan) {
  const art::Artifact &a = plan.artifact();
  double weightBytes = 0, stateBytes = 0, weightElements = 0;
  for (const art::Buffer &b : a.buffers) {
    if (art::isBoundClass(b.cls)) {
      weightBytes += static_cast<double>(plan.bytes(b.id, 1, 1));
      weightElements += static_cast<double>(plan.elements(b.id, 1, 1));
    } else if (b.cls == art::BufferClass::State) {
      stateBytes += static_cast<double>(plan.bytes(b.id, 1, 1));
    }
  }
  return {{"name", a.model.name},
          {"vocab_size", a.model.vocabSize},
          {"embedding_dim", a.model.embeddingDim},
          {"blocks", a.model.numBlocks},
          {"chunk_size", a.model.chunkSize},
          {"weight_bytes", weightBytes},
          {"weight_elements", weightElements},
          {"state_bytes_per_sequence", stateBytes},
          {"artifact_compiler", a.compiler.name + " " + a.compiler.version},
          {"target_arch", a.targetArch},
          {"device_headers_hash", a.deviceHeadersHash}};
}

Json toJson(const BenchRun &run) {
  Json doc;
  doc["tool"] = "xlc-bench";
  doc["schema_version"] = 1;
  doc["command"] = run.command;
  doc["started_utc"] = run.startedUtc;
  doc["total_seconds"] = run.totalSeconds;
  doc["complete"] = run.complete;
  doc["provenance"] = run.provenance;
  doc["versions"] = run.versions;
  doc["device"] = {{"kind", run.device},
                   {"name", run.deviceName},
                   {"description", run.deviceDescription}};
  doc["limits"] = {{"bandwidth_bytes_per_s",
                    run.limit.bytesPerSecond > 0 ? Json(run.limit.bytesPerSecond) : Json(nullptr)},
                   {"flops_per_s",
                    run.limit.flopsPerSecond > 0 ? Json(run.limit.flopsPerSecond) : Json(nullptr)},
                   {"source", run.limit.source}};
  doc["model"] = run.model;
  doc["model"]["artifact"] = run.artifactPath;
  doc["model"]["weights"] = run.weightsPath;
  doc["settings"] = {{"reps", run.settings.reps},
                     {"warmup", run.settings.warmup},
                     {"decode_steps", run.settings.decodeSteps},
                     {"seed", run.settings.seed},
                     {"train_flops_per_token", run.settings.trainFlopsPerToken},
                     {"tokens_per_call", run.tokensPerCall},
                     {"gemv", run.gemv.empty() ? Json(nullptr) : Json(run.gemv)},
                     {"host_sampling", run.hostSampling},
                     {"timing", "cases: the host's steady clock around synchronous calls "
                                "(generate()); profiles: per step, CUDA events on the GPU, the "
                                "host clock on the CPU"}};
  Json cases = Json::array();
  for (const CaseResult &r : run.cases)
    cases.push_back(caseJson(run, r));
  doc["cases"] = std::move(cases);
  Json hf;
  hf["requested"] = run.hfRequested;
  hf["status"] = run.hf.status;
  hf["reason"] = run.hf.reason.empty() ? Json(nullptr) : Json(run.hf.reason);
  hf["cases_requested"] = run.hfCases;
  hf["seconds"] = run.hf.seconds;
  hf["response"] = run.hf.response;
  doc["hf"] = std::move(hf);
  doc["plots"] = run.plots;
  return doc;
}

void printTable(const BenchRun &run, std::FILE *out) {
  fmt::print(out, "xlc-bench: {} on {} ({})\n", run.model.value("name", std::string()),
             run.deviceName, run.device);
  if (run.limit.known())
    fmt::print(out, "limits: {} GB/s, {} TFLOP/s -- {}\n", number(run.limit.bytesPerSecond / 1e9),
               number(run.limit.flopsPerSecond / 1e12), run.limit.source);
  else
    fmt::print(out, "limits: {}\n", run.limit.source);
  fmt::print(out, "{} repeats after {} warm-up, decode repeats of {} steps; median [p20, p80]\n\n",
             run.settings.reps, run.settings.warmup, run.settings.decodeSteps);
  fmt::print(out, "{:<26} {:<12} {:>10} {:>21} {:>7} {:>6} {:>10} {:>11} {:>8}\n", "case", "figure",
             "median", "[p20, p80]", "unit", "%limit", "memory", "transformers", "xlc/HF");
  for (const CaseResult &r : run.cases) {
    const BenchCase &c = r.bench;
    if (!r.done || !r.error.empty()) {
      fmt::print(out, "{:<26} {}\n", c.name, r.done ? "FAILED: " + r.error : "not run");
      continue;
    }
    const auto hf = run.hf.cases.find(c.name);
    const bool haveHf = hf != run.hf.cases.end() && hf->second.error.empty() &&
                        !hf->second.repeats.empty();
    const std::vector<FigureDef> defs = figuresOf(c, run.settings);
    for (std::size_t i = 0; i < defs.size(); ++i) {
      const Summary s = figureSummary(defs[i], r.repeats);
      std::string limit, memory, other, speedup;
      if (i == 0) {
        const Json ratio = ratioJson(r.bound, r.repeats);
        limit = ratio.is_number() ? fmt::format("{:.1f}%", ratio.get<double>() * 100) : "-";
        memory = r.memoryBefore.known && r.memoryAfter.known ? gib(r.memoryAfter.bytes) : "-";
      }
      if (haveHf) {
        other = number(figureSummary(defs[i], hf->second.repeats).median);
        if (i == 0)
          speedup = fmt::format("{:.2f}x", summarize(hf->second.repeats).median /
                                               summarize(r.repeats).median);
      } else if (i == 0 && hf != run.hf.cases.end()) {
        other = "failed";
      }
      fmt::print(out, "{:<26} {:<12} {:>10} {:>21} {:>7} {:>6} {:>10} {:>11} {:>8}\n",
                 i == 0 ? c.name : "", defs[i].label, number(s.median),
                 fmt::format("[{}, {}]", number(s.p20), number(s.p80)), defs[i].unit, limit,
                 memory, other, speedup);
    }
    for (const auto &[function, seconds] : r.callSeconds) { // training: the step's parts
      const Summary s = summarize(seconds);
      fmt::print(out, "{:<26} {:<12} {:>10} {:>21} {:>7}\n", "", function, number(s.median * 1e3),
                 fmt::format("[{}, {}]", number(s.p20 * 1e3), number(s.p80 * 1e3)), "ms");
    }
  }
  for (const CaseResult &r : run.cases) {
    if (!r.profile)
      continue;
    const Profile &p = *r.profile;
    const Summary sum = summarize(p.stepSumSeconds), wall = summarize(p.wallSeconds);
    fmt::print(out, "\n{}: {} at B={} S={}, {} steps timed by {}: {:.3f} ms of steps, {:.3f} ms "
                    "wall{}\n",
               r.bench.name, p.function, p.shape.batch, p.shape.seq, p.steps.size(), p.clock,
               sum.median * 1e3, wall.median * 1e3,
               p.gateTimeouts ? fmt::format(" (UNRELIABLE: {} gate timeouts)", p.gateTimeouts)
                              : "");
    fmt::print(out, "  {:<48} {:>5} {:>10} {:>7} {:>9} {:>9} {:>7}\n", "group", "steps", "ms",
               "share", "GB/s", "TFLOP/s", "%limit");
    for (const ProfileGroup &g : p.groups) {
      const double t = g.seconds.median;
      fmt::print(out, "  {:<48} {:>5} {:>10.4f} {:>6.1f}% {:>9} {:>9} {:>7}\n", g.key, g.steps,
                 t * 1e3, g.share * 100, t > 0 ? number(g.work.trafficBytes() / t / 1e9) : "-",
                 t > 0 && g.work.flops > 0 ? number(g.work.flops / t / 1e12) : "-",
                 g.bound && t > 0 ? fmt::format("{:.1f}%", g.bound->seconds / t * 100) : "-");
    }
  }
  if (run.hfRequested) {
    fmt::print(out, "\ntransformers: {}{}\n", run.hf.status,
               run.hf.reason.empty() ? "" : " (" + run.hf.reason + ")");
    for (const auto &[name, h] : run.hf.cases)
      if (!h.error.empty())
        fmt::print(out, "  {}: {}\n", name, h.error);
  }
  for (const std::string &plot : run.plots)
    fmt::print(out, "plot: {}\n", plot);
}

std::string utcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

} // namespace xlc::bench
