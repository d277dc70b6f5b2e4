//===- HfBench.h - transformers on the same cases, in a child process -*- C++ -*-===//
//
// xlc-bench measures Hugging Face transformers' xLSTM side by side, in the same run and process
// tree: after its own cases (and after its backends are gone, so that both never hold the GPU
// at once) it writes a request file and runs a Python script (scripts/hf-bench.py) as a child
// process, which loads the same checkpoint directory with transformers, measures the requested
// cases with the same prompts (promptToken in Measure.h), repeats, warm-up and decode block
// size, and writes a response file. The child's stdout and stderr both go to xlc-bench's stderr
// (its progress lines), so they never mix with a JSON document on stdout.
//
// Request (JSON): {"protocol": 1, "weights": dir, "device": "cuda"|"cpu", "dtype":
//   "bfloat16"|"float32", "seed", "vocab", "reps", "warmup", "decode_steps",
//   "cases": [{"name", "kind": "prefill"|"decode", "batch", "prompt"}]}
// Response (JSON): {"protocol": 1, "status": "ok"|"unavailable", "reason", "versions": {...},
//   "device", "load_seconds", "config": {...}, "cases": [{"name", "repeats_s": [...],
//   "warmup_s": [...], "ttft_s", "peak_allocated_bytes", "device_used_bytes", "error"}]}
// A repeat means what it means on the xlc side: a prefill case's forward over the prompts and
// the first token's argmax; a decode case's block of decode_steps cached steps.
//
// Failure modes, all reported in HfRun::status/reason rather than thrown: the script missing,
// Python or transformers not importable ("unavailable"), a nonzero exit or no response
// ("failed"), the time limit (the child is killed: "timeout").
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_XLC_BENCH_HFBENCH_H
#define XLC_TOOLS_XLC_BENCH_HFBENCH_H

#include "tools/xlc-bench/BenchCase.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace xlc::bench {

struct HfSettings {
  std::string python = "python3";
  std::string script;    ///< scripts/hf-bench.py
  std::string weights;   ///< the checkpoint directory (config.json + safetensors)
  std::string device;    ///< "cuda" or "cpu"
  std::string dtype;     ///< "bfloat16" or "float32"
  std::string workDir;   ///< where the request and response files go
  std::uint64_t seed = 1, vocab = 0;
  std::size_t reps = 3, warmup = 1, decodeSteps = 32;
  double timeoutSeconds = 1800;
};

struct HfCaseResult {
  std::vector<double> repeats, warmupRepeats;
  double ttftSeconds = 0;
  double peakAllocatedBytes = 0, deviceUsedBytes = 0;
  std::string error; ///< empty when the case ran
};

struct HfRun {
  std::string status = "skipped"; ///< "ok", "unavailable", "failed", "timeout", "skipped"
  std::string reason;
  double seconds = 0;
  nlohmann::ordered_json response; ///< the response document as received (null if none)
  std::map<std::string, HfCaseResult> cases;
};

/// Runs the script on |cases| (prefill and decode cases only). Never throws for what the child
/// does; throws xlc::Error only when the request file cannot be written.
HfRun runHfBench(const HfSettings &settings, const std::vector<BenchCase> &cases);

} // namespace xlc::bench

#endif // XLC_TOOLS_XLC_BENCH_HFBENCH_H
