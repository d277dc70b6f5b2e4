//===- Report.h - xlc-bench's JSON document and human table -------*- C++ -*-===//
//
// One JSON document holds everything a run measured: the command, the device and its limits,
// versions and provenance, the model's facts, the settings, and every case with all its repeats
// (warm-up ones apart), the figures derived from them (median, p20, p80), the work and the ratio
// to the limit, the memory readings, the transformers figures and the speed-up over them, and
// the profiles with every group and step. docs/xlc-bench.md describes each field. The table
// prints the same figures for humans. scripts/plot-bench.py draws the plots from the JSON.
//
// Ratios: ratio_to_limit = (lower bound on the time of one repeat) / (median time of a repeat);
// xlc_speedup_vs_hf = (transformers' median time of a repeat) / (xlc's), for the same repeat,
// so > 1 means xlc is faster for throughput and for latency alike.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_XLC_BENCH_REPORT_H
#define XLC_TOOLS_XLC_BENCH_REPORT_H

#include "runtime/exec/Plan.h"
#include "tools/xlc-bench/HfBench.h"
#include "tools/xlc-bench/Measure.h"
#include "tools/xlc-bench/Workload.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace xlc::bench {

struct BenchRun {
  std::vector<std::string> command;
  std::string startedUtc;
  double totalSeconds = 0;
  bool complete = false; ///< false while cases are still to run (a document written on the way)
  nlohmann::ordered_json provenance; ///< null when none was given
  nlohmann::ordered_json versions;
  std::string device;            ///< "cpu" or "cuda"
  std::string deviceName;        ///< the GPU's name, or the CPU's model name
  std::string deviceDescription; ///< the (first) backend's description line
  DeviceLimit limit;
  std::string artifactPath, weightsPath;
  nlohmann::ordered_json model;  ///< modelFacts()
  RunSettings settings;
  std::uint64_t tokensPerCall = 0;
  std::string gemv;          ///< --gemv ("" = the backend's default)
  bool hostSampling = false; ///< --host-sampling
  std::string memoryMethod;
  std::vector<CaseResult> cases; ///< in the order asked for
  bool hfRequested = false;
  std::vector<std::string> hfCases;
  HfRun hf;
  std::vector<std::string> plots;
};

/// Facts of the model from the plan: name, vocabulary, blocks, chunk, weight bytes (every
/// weight buffer), state bytes per sequence, the artifact's compiler and device-header hash.
nlohmann::ordered_json modelFacts(const exec::Plan &plan);

nlohmann::ordered_json toJson(const BenchRun &run);
void printTable(const BenchRun &run, std::FILE *out);

/// The current time, UTC, ISO 8601 to the second: "2026-12-08T02:00:00Z".
std::string utcNow();

} // namespace xlc::bench

#endif // XLC_TOOLS_XLC_BENCH_REPORT_H
