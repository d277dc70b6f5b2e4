//===- xlc-bench.cpp - Measure a compiled xLSTM model ----------------------===//
//
//   xlc-bench --model model.xlca --weights <hf-dir> [--device auto|cpu|cuda] [--cases LIST]
//             [--reps N] [--warmup N] [--decode-steps N] [--tokens-per-call N]
//             [--json] [--output FILE] [--plots DIR] [--no-hf | --hf-cases LIST] ...
//
// A program, not a test: it measures, it never judges speed. What it measures (BenchCase.h):
// prefill and time to first token, decode at a batch after a prompt, and profiles of one call
// with every step timed (the share of each kernel and GEMM shape); for every figure the
// ratio to the device's physical limit (Workload.h) and, when transformers is there, to Hugging
// Face transformers on the same checkpoint and prompts (HfBench.h); the memory each case's
// backend holds (Measure.h). Output: a table on stdout (on stderr with --json), one JSON
// document (--json: stdout; --output FILE), PNG plots (--plots DIR, scripts/plot-bench.py).
//
// Steps: parse the options and the cases; load the artifact and check every case's limits
// against it (a Plan per case: fails before anything large is read); pick the device; open and
// check the checkpoint; the limits of the device; then the cases, grouped by the backend they
// need (cases with the same batch and tokens per call share one; a profile joins a backend of
// its batch that holds its call), one backend at a time, each destroyed before the next is
// made; then transformers in a child process (its own cases: --hf-cases); then the report and
// the plots. A case that fails (out of memory, say) is reported and the others still run.
//
// Exit status: 0 when every case ran and the transformers side (unless --no-hf) and the plots
// (if asked for) worked; 1 otherwise or on errors (the message names the file, case or value);
// 2 on usage errors (unknown options or case names, limits a case exceeds). A transformers case
// that fails (out of memory) or is cut by --hf-timeout is reported, not an error.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/artifact/Validate.h"
#include "runtime/exec/Plan.h"
#include "runtime/exec/WeightAssembly.h"
#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"
#include "tools/support/BackendChoice.h"
#include "tools/xlc-bench/BenchCase.h"
#include "tools/support/Child.h"
#include "tools/xlc-bench/HfBench.h"
#include "tools/xlc-bench/Measure.h"
#include "tools/xlc-bench/Report.h"

#if XLC_HAVE_CUDA_BACKEND
#include "runtime/cuda/DriverApi.h"
#endif

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <tuple>

#include <unistd.h>

namespace {

using namespace xlc;
using namespace xlc::bench;
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct Options {
  std::string model, weights, device = "auto", cases;
  tools::BackendSettings backend; ///< --threads, --kernel-cache, --host-sampling, --gemv
  std::size_t reps = 5, warmup = 1, decodeSteps = 32;
  std::uint64_t tokensPerCall = 65536, seed = 1;
  double bandwidthGBs = 0, tflops = 0;
  bool json = false, quiet = false, verbose = false, dryRun = false, noHf = false;
  std::string output, plots, provenance;
  std::string hfCases = "auto", hfPython = "python3", hfScript, scriptsDir, python = "python3";
  std::size_t hfReps = 0;
  double hfTimeout = 1800, plotTimeout = 300;
};

/// An error in how the tool was called: exit status 2.
struct UsageError : Error {
  using Error::Error;
};

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// "key: value" lines (test/gpu/provenance.sh) as a JSON object; the first value of a key wins.
Json readProvenance(const std::string &path) {
  std::ifstream in(path);
  check(static_cast<bool>(in), "--provenance: cannot read '{}'", path);
  Json object = Json::object();
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t sep = line.find(": ");
    if (sep != std::string::npos && !object.contains(line.substr(0, sep)))
      object[line.substr(0, sep)] = line.substr(sep + 2);
  }
  return object;
}

/// The directory of scripts/hf-bench.py and scripts/plot-bench.py (tools::findScriptsDir).
std::string findScriptsDir(const Options &o) {
  return tools::findScriptsDir(o.scriptsDir, "plot-bench.py");
}

/// The checkpoint's directory (transformers loads a directory).
std::string weightsDirectory(const std::string &weights) {
  std::error_code ec;
  const fs::path path(weights);
  if (fs::is_directory(path, ec))
    return path.string();
  return path.has_parent_path() ? path.parent_path().string() : ".";
}

/// A case planned: its backend's limits and the plan validated at them.
struct Planned {
  std::size_t index = 0; ///< in the order asked for
  std::uint64_t maxBatch = 0, maxSeq = 0;
  bool training = false; ///< a backend created for the training functions
};

/// The functions a backend is created for: inference, or training (its own backends: the
/// training functions' buffers are many times the inference ones').
const std::vector<std::string> &backendFunctions(bool training) {
  static const std::vector<std::string> inference = {"prefill", "decode_step"};
  static const std::vector<std::string> train = {"train_step", "grad_norm", "optimizer_step"};
  return training ? train : inference;
}

/// Groups the cases by the backend they run on: equal (functions, batch, tokens per call) share
/// one; a profile joins an earlier or later group of its functions and batch whose tokens per
/// call hold its call.
std::vector<std::vector<Planned>> groupByBackend(const std::vector<BenchCase> &cases,
                                                 std::vector<Planned> planned) {
  std::vector<std::vector<Planned>> groups;
  using Key = std::tuple<bool, std::uint64_t, std::uint64_t>;
  std::map<Key, std::size_t> byLimits;
  auto place = [&](const Planned &p) {
    auto [it, inserted] =
        byLimits.emplace(Key(p.training, p.maxBatch, p.maxSeq), groups.size());
    if (inserted)
      groups.emplace_back();
    groups[it->second].push_back(p);
  };
  for (const Planned &p : planned)
    if (!cases[p.index].isProfile())
      place(p);
  for (Planned p : planned) {
    const BenchCase &c = cases[p.index];
    if (!c.isProfile())
      continue;
    const std::uint64_t need = c.kind == CaseKind::ProfileDecode ? 1 : c.prompt;
    for (const auto &[key, group] : byLimits) {
      const auto &[training, batch, seq] = key;
      // A training profile needs its exact S (train_step runs at the backend's S).
      if (training == p.training && batch == c.batch &&
          (training ? seq == need : seq >= need)) {
        p.maxBatch = batch;
        p.maxSeq = seq;
        break;
      }
    }
    place(p);
  }
  return groups;
}

int run(const Options &o, const std::vector<std::string> &command) {
  const Clock::time_point start = Clock::now();
  auto progress = [&](const std::string &line) {
    if (!o.quiet)
      std::fprintf(stderr, "[xlc-bench %6.1fs] %s\n", secondsSince(start), line.c_str());
  };

  // Cases and their limits: every mistake here is found before anything large is read.
  std::vector<BenchCase> cases;
  try {
    cases = parseCaseList(o.cases);
  } catch (const Error &e) {
    throw UsageError(e.what());
  }
  artifact::Artifact artifact = artifact::loadArtifact(o.model);
  const std::uint64_t chunk = artifact.model.chunkSize;
  for (const std::string &f : backendFunctions(false))
    check(artifact.findFunction(f) != nullptr,
          "{} has no '{}' function; recompile the model with this release's xlc-compile",
          o.model, f);
  std::vector<Planned> planned;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    Planned p;
    p.index = i;
    p.maxBatch = cases[i].batch;
    p.training = cases[i].isTraining();
    if (p.training)
      for (const std::string &f : backendFunctions(true))
        if (artifact.findFunction(f) == nullptr)
          throw UsageError(fmt::format("case {}: {} has no '{}' function: training cases need "
                                       "an artifact compiled with xlc-compile --training",
                                       cases[i].name, o.model, f));
    try {
      p.maxSeq = seqPerCall(cases[i], o.tokensPerCall, chunk);
      artifact::validate(artifact, p.maxBatch, p.maxSeq);
    } catch (const UsageError &) {
      throw;
    } catch (const Error &e) {
      throw UsageError(fmt::format("case {}: {}", cases[i].name, e.what()));
    }
    planned.push_back(p);
  }
  const std::vector<std::vector<Planned>> groups = groupByBackend(cases, planned);

  // A dry run plans for the device asked for (auto: the GPU the artifact is compiled for) and
  // needs none.
  const std::string device = o.dryRun ? (o.device == "cpu" ? "cpu" : "cuda")
                                      : tools::chooseDevice(o.device, "xlc-bench");
  BenchRun report;
  report.command = command;
  report.startedUtc = utcNow();
  report.device = device;
  report.artifactPath = o.model;
  report.settings = {o.reps, o.warmup, o.decodeSteps, o.seed};
  {
    // Model FLOPs of a training token: 6 per parameter train_step updates (2 forward, 4 backward).
    const exec::Plan plan(artifact, 1, 1);
    double parameters = 0;
    for (const artifact::Buffer &b : artifact.buffers)
      if (b.cls == artifact::BufferClass::Parameter)
        parameters += static_cast<double>(plan.elements(b.id, 1, 1));
    report.settings.trainFlopsPerToken = 6.0 * parameters;
  }
  report.tokensPerCall = o.tokensPerCall;
  report.gemv = o.backend.gemv;
  report.hostSampling = o.backend.hostSampling;
  report.cases.resize(cases.size());
  for (const std::vector<Planned> &group : groups)
    for (const Planned &p : group) {
      report.cases[p.index].bench = cases[p.index];
      report.cases[p.index].maxBatch = p.maxBatch;
      report.cases[p.index].maxSeq = p.maxSeq;
    }
  {
    const exec::Plan plan(artifact, 1, std::max<std::uint64_t>(chunk, 1));
    report.model = modelFacts(plan);
  }
  report.versions = {{"xlc_bench", XLC_VERSION},
                     {"runtime", XLC_VERSION},
                     {"artifact_compiler", artifact.compiler.name + " " + artifact.compiler.version}};
#if XLC_HAVE_CUDA_BACKEND
  if (device == "cuda")
    report.versions["cuda_driver"] = cuda::driverStatus().driverVersion;
#endif
  const std::string provenancePath =
      !o.provenance.empty() ? o.provenance
                            : (std::getenv("XLC_PROVENANCE") ? std::getenv("XLC_PROVENANCE") : "");
  report.provenance = provenancePath.empty() ? Json(nullptr) : readProvenance(provenancePath);

  // The device's limits (given ones win; a dry run on the GPU needs them, it opens no device).
  const bool givenLimits = o.bandwidthGBs > 0 || o.tflops > 0;
  if (givenLimits && !(o.bandwidthGBs > 0 && o.tflops > 0))
    throw UsageError("--bandwidth and --tflops go together (the limit needs both)");
  std::unique_ptr<MemoryProbe> probe;
  if (!(o.dryRun && device == "cuda")) {
    probe = makeMemoryProbe(device);
    report.deviceName = probe->deviceName();
    report.memoryMethod = probe->method();
  } else {
    report.deviceName = "(dry run: no device opened)";
  }
  if (givenLimits) {
    report.limit.bytesPerSecond = o.bandwidthGBs * 1e9;
    report.limit.flopsPerSecond = o.tflops * 1e12;
    report.limit.source = fmt::format("given: --bandwidth {} GB/s, --tflops {}", o.bandwidthGBs,
                                      o.tflops);
  } else if (device == "cuda") {
    report.limit = gpuLimit(report.deviceName);
  } else {
    progress("measuring this CPU's read bandwidth and fp32 multiply-add rate");
    report.limit = measureCpuLimit(o.backend.threads);
  }
  progress(fmt::format("{} case(s) on {} ({}), {} backend(s); limits: {}", cases.size(),
                       report.deviceName, device, groups.size(), report.limit.source));

  if (o.dryRun) {
    for (const std::vector<Planned> &group : groups)
      for (const Planned &p : group) {
        const BenchCase &c = cases[p.index];
        const exec::Plan plan(artifact, p.maxBatch, p.maxSeq);
        CaseResult &r = report.cases[p.index];
        r.work = caseWork(plan, c, p.maxSeq, o.decodeSteps, floatStorage(device));
        r.bound = limitTime(r.work, report.limit, false);
        std::printf("%-26s backend B=%llu S=%llu  %.4g GFLOP  %.4g GB compulsory  limit %s\n",
                    c.name.c_str(), static_cast<unsigned long long>(p.maxBatch),
                    static_cast<unsigned long long>(p.maxSeq), r.work.flops / 1e9,
                    r.work.compulsoryBytes() / 1e9,
                    r.bound ? fmt::format("{:.4g} ms ({})", r.bound->seconds * 1e3,
                                          r.bound->resource)
                                  .c_str()
                            : "unknown");
      }
    return 0;
  }

  weights::Checkpoint checkpoint = weights::Checkpoint::open(o.weights);
  exec::checkWeights(artifact, checkpoint);
  report.weightsPath = checkpoint.path();
  progress(fmt::format("weights {}: {} tensors, {:.2f} GiB; they match the artifact",
                       checkpoint.path(), checkpoint.tensors().size(),
                       static_cast<double>(checkpoint.totalBytes()) / (1u << 30)));

  std::string jsonPath = o.output;
  if (jsonPath.empty() && !o.plots.empty())
    jsonPath = (fs::path(o.plots) / "xlc-bench.json").string();
  // Written after every backend's cases too (complete: false), so that a run stopped by an
  // outer time limit keeps what it measured.
  auto writeJson = [&] {
    if (jsonPath.empty())
      return;
    report.totalSeconds = secondsSince(start);
    std::error_code ec;
    if (fs::path(jsonPath).has_parent_path())
      fs::create_directories(fs::path(jsonPath).parent_path(), ec);
    std::ofstream out(jsonPath);
    out << toJson(report).dump(1, ' ', false, Json::error_handler_t::replace) << '\n';
    check(static_cast<bool>(out), "cannot write '{}'", jsonPath);
  };
  tools::BackendSettings settings = o.backend;
  settings.verbose = o.verbose;
  bool failed = false;
  for (const std::vector<Planned> &group : groups) {
    const Planned &first = group.front();
    const MemoryReading before = probe->read();
    std::unique_ptr<exec::Backend> backend;
    const Clock::time_point made = Clock::now();
    progress(fmt::format("backend for batch {}, {} tokens per call (cases: {})", first.maxBatch,
                         first.maxSeq, [&] {
                           std::string names;
                           for (const Planned &p : group)
                             names += (names.empty() ? "" : ", ") + cases[p.index].name;
                           return names;
                         }()));
    try {
      backend = tools::createBackend(
          device, artifact, checkpoint,
          exec::Limits{first.maxBatch, first.maxSeq, backendFunctions(first.training)},
          settings);
    } catch (const Error &e) {
      progress(fmt::format("backend failed: {}", e.what()));
      for (const Planned &p : group) {
        report.cases[p.index].error = fmt::format("creating the backend: {}", e.what());
        report.cases[p.index].done = true;
      }
      failed = true;
      continue;
    }
    progress(fmt::format("backend ready in {:.1f} s: {}", secondsSince(made),
                         backend->description()));
    if (report.deviceDescription.empty())
      report.deviceDescription = backend->description();
    for (const Planned &p : group) {
      CaseResult &r = report.cases[p.index];
      r.memoryBefore = before;
      try {
        runCase(*backend, r, report.settings, report.limit, progress);
      } catch (const Error &e) {
        r.error = e.what();
        failed = true;
        progress(fmt::format("{} failed: {}", r.bench.name, e.what()));
      }
      r.memoryAfter = probe->read();
      r.done = true;
    }
    backend.reset();
    writeJson();
  }

  // transformers, after every backend is gone.
  report.hfRequested = !o.noHf;
  const std::string scripts = findScriptsDir(o);
  if (report.hfRequested) {
    std::vector<BenchCase> hfCases;
    if (o.hfCases == "auto" || o.hfCases == "all") {
      // auto: on the GPU only the rows of issue 10 (transformers is slow); on the CPU all.
      std::vector<BenchCase> issue;
      if (o.hfCases == "auto" && device == "cuda")
        issue = parseCaseList("issue10");
      for (const BenchCase &c : cases)
        if (!c.isProfile() && !c.isTraining() &&
            (issue.empty() || std::find(issue.begin(), issue.end(), c) != issue.end()))
          hfCases.push_back(c);
    } else {
      try {
        for (const BenchCase &c : parseCaseList(o.hfCases)) {
          if (std::find(cases.begin(), cases.end(), c) == cases.end() || c.isProfile() ||
              c.isTraining())
            throw UsageError(fmt::format("--hf-cases: {} is not a prefill or decode case of "
                                         "this run (--cases)",
                                         c.name));
          hfCases.push_back(c);
        }
      } catch (const UsageError &) {
        throw;
      } catch (const Error &e) {
        throw UsageError(fmt::format("--hf-cases: {}", e.what()));
      }
    }
    for (const BenchCase &c : hfCases)
      report.hfCases.push_back(c.name);
    if (hfCases.empty()) {
      report.hf.status = "skipped";
      report.hf.reason = "no prefill or decode case to compare";
    } else {
      HfSettings hf;
      hf.python = o.hfPython;
      hf.script = o.hfScript.empty() ? (fs::path(scripts) / "hf-bench.py").string() : o.hfScript;
      hf.weights = weightsDirectory(o.weights);
      hf.device = device;
      hf.dtype = device == "cuda" ? "bfloat16" : "float32";
      hf.workDir = !o.output.empty() && fs::path(o.output).has_parent_path()
                       ? fs::path(o.output).parent_path().string()
                   : !o.plots.empty() ? o.plots
                                      : (fs::temp_directory_path() /
                                         fmt::format("xlc-bench-{}", getpid()))
                                            .string();
      hf.seed = o.seed;
      hf.vocab = artifact.model.vocabSize;
      hf.reps = o.hfReps ? o.hfReps : std::min<std::size_t>(o.reps, 3);
      hf.warmup = o.warmup;
      hf.decodeSteps = o.decodeSteps;
      hf.timeoutSeconds = o.hfTimeout;
      progress(fmt::format("transformers: {} case(s) with {} {}", hfCases.size(), hf.python,
                           hf.script));
      report.hf = runHfBench(hf, hfCases);
      progress(fmt::format("transformers: {}{} in {:.1f} s", report.hf.status,
                           report.hf.reason.empty() ? "" : " (" + report.hf.reason + ")",
                           report.hf.seconds));
      if (report.hf.response.is_object() && report.hf.response.contains("versions"))
        report.versions["hf"] = report.hf.response["versions"];
      // transformers that cannot run at all is a failure; one of its cases that runs out of
      // memory, or a time limit that leaves cases unmeasured, is a measurement: reported, and
      // the figures it has are compared.
      if (report.hf.status != "ok" && report.hf.status != "timeout")
        failed = true;
    }
  }

  // The report; the plots are drawn from the JSON file, which then lists them.
  report.totalSeconds = secondsSince(start);
  report.complete = true;
  writeJson();
  if (!o.plots.empty()) {
    const std::string script = (fs::path(scripts) / "plot-bench.py").string();
    progress(fmt::format("plots: {} {} into {}", o.python, script, o.plots));
    const tools::ChildResult child =
        tools::runChild({o.python, script, jsonPath, "--out", o.plots}, o.plotTimeout);
    if (!child.ok()) {
      progress(fmt::format("plots failed: {} {}", script, child.why));
      failed = true;
    }
    std::error_code ec;
    for (const char *name : {"prefill-tokens-per-s.png", "decode-tokens-per-s.png",
                             "step-shares.png"})
      if (fs::is_regular_file(fs::path(o.plots) / name, ec))
        report.plots.push_back((fs::path(o.plots) / name).string());
    writeJson();
  }
  printTable(report, o.json ? stderr : stdout);
  if (o.json)
    std::cout << toJson(report).dump(1, ' ', false, Json::error_handler_t::replace) << '\n';
  return failed ? 1 : 0;
}

std::string setsHelp() {
  std::string text = "Cases (--cases, comma-separated; names say what they measure):\n"
                     "  prefill-b<B>-p<P>          time to first token and prefill tokens/s of B "
                     "prompts of P tokens\n"
                     "  decode-b<B>-p<P>           decode tokens/s at batch B after prompts of P "
                     "tokens\n"
                     "  profile-prefill-b<B>-p<P>  every step of one B x P prefill call timed\n"
                     "  profile-decode-b<B>        every step of one decode step at batch B timed\n"
                     "  train-b<B>-s<S>            one optimizer step (train_step, grad_norm, "
                     "optimizer_step) on B sequences of S tokens: training tokens/s and model "
                     "FLOP/s at 6 per parameter and token (an artifact compiled with --training)\n"
                     "  profile-train-b<B>-s<S>    every step of one B x S train_step timed\n"
                     "Sets:\n";
  for (const CaseSet &set : caseSets())
    text += fmt::format("  {:<10} {}\n             = {}\n", set.name, set.description, set.cases);
  return text;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"xlc-bench: measure a compiled xLSTM model (an xlc-compile artifact and a Hugging "
               "Face safetensors checkpoint): prefill, time to first token, decode, memory, the "
               "time of every kernel, each against the device's limit and Hugging Face "
               "transformers on the same weights.",
               "xlc-bench"};
  Options o;
  app.add_option("--model", o.model, "Compiled artifact (xlc-compile -o model.xlca)")
      ->type_name("<artifact.xlca>")
      ->required();
  CLI::Option *weights =
      app.add_option("--weights", o.weights,
                     "Checkpoint directory (config.json + safetensors); transformers loads the "
                     "same directory")
          ->type_name("<hf-dir>");
  tools::addBackendOptions(app, o.device, o.backend);
  app.add_option("--cases", o.cases,
                 "Cases and sets, comma-separated (see below); default: all on the GPU, tiny on "
                 "the CPU")
      ->type_name("<list>");
  app.add_option("--reps", o.reps, "Timed repeats of every case")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "Untimed repeats before them")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_option("--decode-steps", o.decodeSteps, "Decode steps in one repeat of a decode case")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--tokens-per-call", o.tokensPerCall,
                 "Most tokens (batch x tokens per sequence) in one prefill call; longer prompts "
                 "are fed in pieces, as xlc-run --max-seq does")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the prompts' token ids")->capture_default_str();
  app.add_option("--bandwidth", o.bandwidthGBs,
                 "Memory bandwidth limit in GB/s (with --tflops; default: the device table, or "
                 "measured on the CPU)")
      ->check(CLI::PositiveNumber);
  app.add_option("--tflops", o.tflops, "Arithmetic limit in TFLOP/s (with --bandwidth)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", o.json,
               "Print the JSON document on stdout (the table then goes to stderr)");
  app.add_option("--output", o.output, "Write the JSON document to this file")
      ->type_name("<file.json>");
  app.add_option("--plots", o.plots,
                 "Draw PNG plots into this directory with scripts/plot-bench.py (matplotlib); "
                 "the JSON goes there too unless --output names a file")
      ->type_name("<dir>");
  app.add_option("--python", o.python, "Python for the plot script")->capture_default_str();
  app.add_flag("--no-hf", o.noHf, "Do not measure Hugging Face transformers");
  app.add_option("--hf-cases", o.hfCases,
                 "Cases for transformers: auto (GPU: those of the issue10 set in this run; CPU: "
                 "all), all (every prefill and decode case), or a list")
      ->capture_default_str();
  app.add_option("--hf-reps", o.hfReps, "transformers' timed repeats (default: min(--reps, 3))");
  app.add_option("--hf-timeout", o.hfTimeout, "Seconds transformers may take in all")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--hf-python", o.hfPython, "Python with torch and transformers")
      ->capture_default_str();
  app.add_option("--hf-script", o.hfScript,
                 "The transformers script (default: hf-bench.py in the scripts directory)")
      ->type_name("<file.py>");
  app.add_option("--scripts-dir", o.scriptsDir,
                 "Where hf-bench.py and plot-bench.py are (default: $XLC_REPO_DIR/scripts, else "
                 "scripts/ of the repository this binary is in, else ./scripts)")
      ->type_name("<dir>");
  app.add_option("--provenance", o.provenance,
                 "A provenance file of 'key: value' lines for the JSON (default: "
                 "$XLC_PROVENANCE, as test/gpu/run_bundle.sh sets it)")
      ->type_name("<file>");
  app.add_flag("--dry-run", o.dryRun,
               "Check the cases against the artifact and print each one's work and limit; run "
               "nothing (no --weights needed)");
  app.add_flag("--quiet", o.quiet, "No progress lines on stderr");
  app.add_flag("--verbose", o.verbose, "The CUDA backend's own progress lines too");
  app.footer(setsHelp() + "\nExit status: 0 when everything ran, 1 when a case, transformers or "
                          "the plots failed (a transformers case out of memory or cut by "
                          "--hf-timeout is reported, not a failure), 2 on usage errors.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  std::vector<std::string> command(argv, argv + argc);
  try {
    if (!o.dryRun && weights->count() == 0)
      throw UsageError("--weights is required (except with --dry-run)");
    if (o.noHf && app.get_option("--hf-cases")->count() > 0)
      throw UsageError("--no-hf and --hf-cases contradict each other");
    if (o.cases.empty()) {
      // The default set depends on the device; resolve it the way the run will.
      o.cases = tools::chooseDevice(o.device, "xlc-bench") == "cuda" ? "all" : "tiny";
      o.device = o.cases == "all" ? "cuda" : "cpu";
    }
    return run(o, command);
  } catch (const UsageError &e) {
    std::fprintf(stderr, "xlc-bench: error: %s\nRun with --help for more information.\n",
                 e.what());
    return 2;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "xlc-bench: error: %s\n", e.what());
    return 1;
  }
}
