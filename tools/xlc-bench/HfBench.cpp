//===- HfBench.cpp - transformers on the same cases, in a child process ---===//

#include "tools/xlc-bench/HfBench.h"

#include "runtime/support/Error.h"

#include "tools/support/Child.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace xlc::bench {

namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
constexpr int kProtocol = 1;

std::vector<double> numbers(const Json &array) {
  std::vector<double> out;
  if (array.is_array())
    for (const Json &x : array)
      if (x.is_number())
        out.push_back(x.get<double>());
  return out;
}

double number(const Json &object, const char *key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : 0.0;
}

} // namespace

/// Fills |run| from its parsed response; throws nlohmann::json::exception on unexpected types.
static void readResponse(HfRun &run, const tools::ChildResult &child, const std::string &script);

HfRun runHfBench(const HfSettings &s, const std::vector<BenchCase> &cases) {
  HfRun run;
  const Clock::time_point start = Clock::now();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(s.script, ec)) {
    run.status = "unavailable";
    run.reason = fmt::format("the transformers script '{}' does not exist (--hf-script)", s.script);
    return run;
  }
  Json request;
  request["protocol"] = kProtocol;
  request["weights"] = s.weights;
  request["device"] = s.device;
  request["dtype"] = s.dtype;
  request["seed"] = s.seed;
  request["vocab"] = s.vocab;
  request["reps"] = s.reps;
  request["warmup"] = s.warmup;
  request["decode_steps"] = s.decodeSteps;
  request["cases"] = Json::array();
  for (const BenchCase &c : cases) {
    check(c.kind == CaseKind::Prefill || c.kind == CaseKind::Decode,
          "case {}: transformers runs prefill and decode cases only", c.name);
    request["cases"].push_back({{"name", c.name},
                                {"kind", std::string(caseKindName(c.kind))},
                                {"batch", c.batch},
                                {"prompt", c.prompt}});
  }
  std::filesystem::create_directories(s.workDir, ec);
  const std::string requestPath = (std::filesystem::path(s.workDir) / "hf-request.json").string();
  const std::string responsePath =
      (std::filesystem::path(s.workDir) / "hf-response.json").string();
  {
    std::ofstream out(requestPath);
    out << request.dump(1) << '\n';
    check(static_cast<bool>(out), "cannot write the transformers request '{}'", requestPath);
  }
  std::filesystem::remove(responsePath, ec);

  const tools::ChildResult child = tools::runChild(
      {s.python, s.script, "--request", requestPath, "--out", responsePath}, s.timeoutSeconds);
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::ifstream in(responsePath);
  if (in) {
    std::ostringstream text;
    text << in.rdbuf();
    try {
      run.response = Json::parse(text.str());
    } catch (const std::exception &e) {
      run.status = "failed";
      run.reason = fmt::format("{}: not JSON: {}", responsePath, e.what());
      return run;
    }
  }
  try {
    readResponse(run, child, s.script);
  } catch (const nlohmann::json::exception &e) {
    run.status = "failed";
    run.reason = fmt::format("{}: unexpected response: {}", responsePath, e.what());
  }
  // A child stopped at the time limit keeps the cases it finished (the script rewrites its
  // response after every case).
  if (child.end == tools::ChildResult::End::TimedOut) {
    run.status = "timeout";
    run.reason = fmt::format("{} {} (--hf-timeout)", s.script, child.why);
  }
  return run;
}

static void readResponse(HfRun &run, const tools::ChildResult &child, const std::string &script) {
  if (!run.response.is_object()) {
    run.status = "failed";
    run.reason = child.end == tools::ChildResult::End::NotStarted
                     ? child.why
                     : fmt::format("{} {} and wrote no response", script, child.why);
    return;
  }
  const Json protocol = run.response.value("protocol", Json(nullptr));
  if (!protocol.is_number_integer() || protocol.get<int>() != kProtocol) {
    run.status = "failed";
    run.reason = fmt::format("{} answered protocol {}, xlc-bench speaks {}", script,
                             protocol.dump(), kProtocol);
    return;
  }
  const std::string status = run.response.value("status", std::string("failed"));
  const Json reason = run.response.value("reason", Json(nullptr));
  run.reason = reason.is_string() ? reason.get<std::string>() : "";
  // "ok" only from a script that also exited cleanly; "unavailable" as it says; anything else
  // ("failed", or "running" from a script that died mid-way) is a failure.
  if (status == "ok" && child.ok()) {
    run.status = "ok";
  } else if (status == "unavailable") {
    run.status = "unavailable";
  } else {
    run.status = "failed";
    if (run.reason.empty())
      run.reason = fmt::format("{} {} (response status '{}')", script, child.why, status);
  }
  if (const auto it = run.response.find("cases"); it != run.response.end() && it->is_array())
    for (const Json &entry : *it) {
      if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string())
        continue;
      HfCaseResult r;
      r.repeats = numbers(entry.value("repeats_s", Json::array()));
      r.warmupRepeats = numbers(entry.value("warmup_s", Json::array()));
      r.ttftSeconds = number(entry, "ttft_s");
      r.peakAllocatedBytes = number(entry, "peak_allocated_bytes");
      r.deviceUsedBytes = number(entry, "device_used_bytes");
      if (const auto e = entry.find("error"); e != entry.end() && e->is_string())
        r.error = e->get<std::string>();
      if (r.repeats.empty() && r.error.empty())
        r.error = "no repeats in the response";
      run.cases[entry["name"].get<std::string>()] = std::move(r);
    }
}

} // namespace xlc::bench
