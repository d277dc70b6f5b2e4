//===- xlc-tune.cpp - Kernel variants: list, compile, check a database ----===//
//
//   xlc-tune list <model.xlca> [--variants] [--family F] [--json]
//   xlc-tune compile <model.xlca> [--family F] [--jobs N] [--kernel-cache DIR] [--json]
//   xlc-tune check <tuning.jsonl> [--json]
//   xlc-tune run <model.xlca> --weights DIR --db tuning.jsonl [--function F] [--batch 1,8]
//                [--seq N] [--family F] [--budget S] [--device auto|cpu|cuda] ...
//   xlc-tune apply <model.xlca> --db tuning.jsonl -o tuned.xlca
//
// Auto-tuning's runtime side (docs/auto-tuning.md); no MLIR.
//
// `list` enumerates the tuning space of every distinct kernel problem of an artifact (a family
// and its configuration without the knobs): how many launches use it, the default variant, how
// many variants are valid and why the others are refused; --variants lists them.
//
// `compile` compiles every valid variant of those problems with NVRTC for the artifact's
// architecture, on all cores, through the kernel cache (a later measurement finds them there),
// with a progress line and an ETA; it reports each family's count, failures with NVRTC's message,
// and exits 1 when any valid variant does not compile (the family's constraint missed a limit).
// No GPU needed.
//
// `check` reads a tuning database and compares the environment it was measured in with this
// machine's: the device-header hash and xlc version always, the GPU, SM count, driver, NVRTC and
// cuBLASLt versions where a GPU and the libraries are present. Exit 0: it matches; 1: it is stale
// (every differing field named) or unreadable; 2: fields could not be compared here (no GPU).
//
// `run` measures every variant of the function's kernel problems at the shapes given, checks
// each against the default's output first, and merges the records into the database
// (TuneRun.h); resumable, with a time budget.
//
// `apply` does on a compiled artifact what xlc-compile --tuning-db does while compiling
// (runtime/tune/ApplyTuning.h), so a model is tuned where it runs, without the compiler.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/cuda/Device.h"
#include "runtime/cuda/DriverApi.h"
#include "runtime/cuda/Nvrtc.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/exec/cuda/KernelCache.h"
#include "runtime/kernels/KernelFamily.h"
#include "runtime/kernels/Tuning.h"
#include "runtime/support/Error.h"
#include "runtime/tune/ApplyTuning.h"
#include "runtime/tune/TuningDb.h"
#include "tools/xlc-tune/TuneRun.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
namespace kernels = xlc::kernels;
namespace art = xlc::artifact;

/// One distinct kernel problem of an artifact and its tuning space.
struct Problem {
  const kernels::FamilyDef *family = nullptr;
  art::Kernel kernel; ///< the artifact's (default) kernel
  std::string key;    ///< kernels::problemKey
  std::size_t launches = 0;
  kernels::TuningSpace space;
};

/// The artifact's tunable problems in kernel order, optionally of one family.
std::vector<Problem> problemsOf(const art::Artifact &artifact, const std::string &onlyFamily) {
  std::map<art::KernelIndex, std::size_t> launches;
  for (const art::Function &f : artifact.functions)
    for (const art::Step &s : f.steps)
      if (const auto *l = std::get_if<art::LaunchStep>(&s.body)) {
        ++launches[l->kernel];
        for (const art::BatchVariant &v : l->byBatch)
          ++launches[v.kernel];
      }
  std::vector<Problem> out;
  std::map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < artifact.kernels.size(); ++i) {
    const art::Kernel &k = artifact.kernels[i];
    const kernels::FamilyDef *family = kernels::findFamily(k.family);
    if (!family || kernels::tuningKnobs(*family, k.config).empty())
      continue;
    if (!onlyFamily.empty() && k.family != onlyFamily)
      continue;
    const std::string key = kernels::problemKey(*family, k.config);
    auto [it, inserted] = seen.emplace(k.family + " " + key, out.size());
    if (!inserted) { // another variant of a problem already listed (a batch variant)
      out[it->second].launches += launches[static_cast<art::KernelIndex>(i)];
      continue;
    }
    out.push_back({family, k, key, launches[static_cast<art::KernelIndex>(i)],
                   kernels::tuningSpace(*family, k.config)});
  }
  return out;
}

std::string knobsText(const kernels::FamilyDef &family, const kernels::Config &config) {
  std::vector<std::string> parts;
  for (const kernels::TuningKnob &knob : kernels::tuningKnobs(family, config))
    parts.push_back(fmt::format("{} {}", knob.field, fmt::join(knob.values, "|")));
  return fmt::format("{}", fmt::join(parts, ", "));
}

int runList(const std::string &path, const std::string &family, bool variants, bool json) {
  const art::Artifact artifact = art::loadArtifact(path);
  const std::vector<Problem> problems = problemsOf(artifact, family);
  if (json) {
    Json out = Json::array();
    for (const Problem &p : problems) {
      Json j = {{"family", p.kernel.family},
                {"kernel", p.kernel.name},
                {"problem", Json::parse(p.key)},
                {"launches", p.launches},
                {"default", kernels::variantTile(*p.family, p.kernel.config)},
                {"valid", p.space.valid.size()},
                {"refused", p.space.rejected.size()}};
      Json knobs = Json::object();
      for (const kernels::TuningKnob &knob : kernels::tuningKnobs(*p.family, p.kernel.config))
        knobs[std::string(knob.field)] = knob.values;
      j["knobs"] = knobs;
      if (variants) {
        Json list = Json::array();
        for (const kernels::Config &v : p.space.valid) {
          Json knobValues = Json::object();
          for (const auto &[k, _] : knobs.items())
            knobValues[k] = v[k];
          list.push_back({{"tile", kernels::variantTile(*p.family, v)}, {"knobs", knobValues}});
        }
        j["variants"] = list;
        Json refused = Json::array();
        for (const auto &[config, why] : p.space.rejected)
          refused.push_back(
              {{"tile", kernels::variantTile(*p.family, config)}, {"reason", why}});
        j["refused_variants"] = refused;
      }
      out.push_back(j);
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::size_t valid = 0, refused = 0;
  for (const Problem &p : problems) {
    std::cout << fmt::format("{}  {}  {} launches  default {}\n", p.kernel.name,
                             p.kernel.family, p.launches,
                             kernels::variantTile(*p.family, p.kernel.config));
    std::cout << fmt::format("    problem {}\n    knobs {}\n    {} valid, {} refused\n", p.key,
                             knobsText(*p.family, p.kernel.config), p.space.valid.size(),
                             p.space.rejected.size());
    if (variants) {
      for (const kernels::Config &v : p.space.valid)
        std::cout << "      " << kernels::variantTile(*p.family, v) << "\n";
      for (const auto &[config, why] : p.space.rejected)
        std::cout << "      refused " << kernels::variantTile(*p.family, config) << ": " << why
                  << "\n";
    }
    valid += p.space.valid.size();
    refused += p.space.rejected.size();
  }
  std::cout << fmt::format("{} kernel problems, {} valid variants, {} refused\n",
                           problems.size(), valid, refused);
  return 0;
}

int runCompile(const std::string &path, const std::string &family, unsigned jobs,
               const std::string &cacheDir, bool json) {
  const art::Artifact artifact = art::loadArtifact(path);
  std::string reason;
  if (!xlc::cuda::Nvrtc::available(&reason))
    throw xlc::Error("libnvrtc cannot be loaded: " + reason);
  const std::vector<Problem> problems = problemsOf(artifact, family);
  struct Job {
    const Problem *problem;
    art::Kernel kernel;
  };
  std::vector<Job> work;
  for (const Problem &p : problems)
    for (const kernels::Config &v : p.space.valid) {
      art::Kernel k = kernels::renderKernel(*p.family, v, kernels::variantTile(*p.family, v));
      k.name = p.kernel.name + "_variant";
      work.push_back({&p, std::move(k)});
    }
  const xlc::exec::KernelCache cache(cacheDir.empty() ? xlc::exec::defaultKernelCacheDir()
                                                      : cacheDir);
  std::atomic<std::size_t> next = 0, done = 0, cached = 0;
  std::mutex mutex;
  std::map<std::string, std::pair<std::size_t, std::size_t>> perFamily; // compiled, failed
  std::vector<std::string> failures;
  const Clock::time_point start = Clock::now();
  auto progress = [&] {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const std::size_t n = done.load();
    const double eta = n == 0 ? 0 : elapsed / static_cast<double>(n) * (work.size() - n);
    std::fprintf(stderr, "\rxlc-tune: compiled %zu/%zu variants (%zu from the cache), %.0f s, "
                         "ETA %.0f s   ",
                 n, work.size(), cached.load(), elapsed, eta);
  };
  auto worker = [&] {
    for (std::size_t i; (i = next++) < work.size();) {
      const Job &job = work[i];
      std::string failure;
      try {
        const xlc::exec::CompiledCubin cubin = cache.get(job.kernel, artifact.targetArch);
        if (cubin.fromCache)
          ++cached;
      } catch (const std::exception &e) {
        failure = e.what();
      }
      std::lock_guard lock(mutex);
      auto &counts = perFamily[job.kernel.family];
      if (failure.empty()) {
        ++counts.first;
      } else {
        ++counts.second;
        failures.push_back(fmt::format("{} {}: {}", job.kernel.family, job.kernel.tile, failure));
      }
      ++done;
      progress();
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < std::max(1u, jobs); ++t)
    threads.emplace_back(worker);
  for (std::thread &t : threads)
    t.join();
  std::fprintf(stderr, "\n");
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (json) {
    Json out = {{"artifact", path},
                {"arch", artifact.targetArch},
                {"variants", work.size()},
                {"from_cache", cached.load()},
                {"seconds", seconds}};
    Json fam = Json::object();
    for (const auto &[name, counts] : perFamily)
      fam[name] = {{"compiled", counts.first}, {"failed", counts.second}};
    out["families"] = fam;
    out["failures"] = failures;
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << fmt::format("{:<24} {:>9} {:>7}\n", "family", "compiled", "failed");
    for (const auto &[name, counts] : perFamily)
      std::cout << fmt::format("{:<24} {:>9} {:>7}\n", name, counts.first, counts.second);
    std::cout << fmt::format("{} variants for {} in {:.1f} s ({} from the kernel cache)\n",
                             work.size(), artifact.targetArch, seconds, cached.load());
    for (const std::string &f : failures)
      std::cout << "FAILED " << f << "\n";
  }
  return failures.empty() ? 0 : 1;
}

int runCheck(const std::string &path, bool json) {
  const xlc::tune::Database db = xlc::tune::readDatabase(path);
  const xlc::tune::Environment &e = db.environment;
  // What can be compared on this machine, field by field: "match", "differs: ..." or why not.
  std::vector<std::pair<std::string, std::string>> fields;
  bool stale = false, unknown = false;
  auto compare = [&](const char *field, const std::string &there, const std::string &here) {
    if (there == here) {
      fields.emplace_back(field, "matches (" + here + ")");
    } else {
      fields.emplace_back(field, fmt::format("differs: database {}, here {}", there, here));
      stale = true;
    }
  };
  auto notHere = [&](const char *field, const std::string &why) {
    fields.emplace_back(field, "not compared: " + why);
    unknown = true;
  };
  compare("headers", e.headers, std::string(xlc::device::headerHash()));
  compare("xlc", e.xlc, XLC_VERSION);
  std::string reason;
  if (xlc::cuda::Nvrtc::available(&reason)) {
    const auto [major, minor] = xlc::cuda::Nvrtc::instance().version();
    compare("nvrtc", e.nvrtc, fmt::format("{}.{}", major, minor));
  } else {
    notHere("nvrtc", reason);
  }
  if (xlc::cuda::cudaAvailable(&reason)) {
    const xlc::cuda::CudaDevice device = xlc::cuda::CudaDevice::open(0);
    compare("gpu", e.gpu, device.name());
    compare("sms", std::to_string(e.sms), std::to_string(device.smCount()));
    compare("arch", e.arch, device.arch());
    compare("driver", std::to_string(e.driver),
            std::to_string(xlc::cuda::driverStatus().driverVersion));
    notHere("cublaslt", "compared when xlc-tune measures (its library is loaded then)");
  } else {
    for (const char *f : {"gpu", "sms", "arch", "driver", "cublaslt"})
      notHere(f, "no GPU here");
    fields.emplace_back("(no GPU)", reason);
  }
  const int status = stale ? 1 : unknown ? 2 : 0;
  if (json) {
    Json out = {{"database", path},
                {"records", db.records.size()},
                {"status", stale ? "stale" : unknown ? "partly compared" : "current"}};
    Json f = Json::object();
    for (const auto &[name, what] : fields)
      f[name] = what;
    out["fields"] = f;
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << fmt::format("{}: {} records measured on {} ({} SMs, {}), driver {}, NVRTC {}, "
                             "cuBLASLt {}, headers {}, xlc {}\n",
                             path, db.records.size(), e.gpu, e.sms, e.arch, e.driver, e.nvrtc,
                             e.cublaslt, e.headers, e.xlc);
    for (const auto &[name, what] : fields)
      std::cout << fmt::format("  {:<9} {}\n", name, what);
    std::cout << (stale     ? "stale: tune again (xlc-tune) before using it\n"
                  : unknown ? "current in every field compared here\n"
                            : "current\n");
  }
  return status;
}

int runApply(const std::string &path, const std::string &dbPath, const std::string &output) {
  art::Artifact artifact = art::loadArtifact(path);
  const xlc::tune::Database db = xlc::tune::readDatabase(dbPath);
  const std::string stale = xlc::tune::compileTimeStaleness(
      db, std::string(xlc::device::headerHash()), XLC_VERSION);
  if (!stale.empty())
    throw xlc::Error(fmt::format("{} was measured with other kernels ({}); tune again", dbPath,
                                 stale));
  const xlc::tune::ApplyReport report = xlc::tune::applyTuning(artifact, db);
  art::writeArtifact(output, artifact);
  std::cout << fmt::format("{}: {} of {} tunable launches take a tuned kernel ({} added, {} "
                           "defaults dropped); {} kernel problems have no record; wrote {}\n",
                           dbPath, report.tunedLaunches, report.launches, report.kernelsAdded,
                           report.kernelsDropped, report.untuned.size(), output);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"xlc-tune: kernel variants of a compiled model (list their tuning spaces, "
               "compile them) and tuning databases (check one against this machine)"};
  app.require_subcommand(1);
  std::string artifactPath, family, dbPath, cacheDir;
  bool json = false, variants = false;
  unsigned jobs = std::max(1u, std::thread::hardware_concurrency());

  CLI::App *list = app.add_subcommand("list", "the tuning space of every kernel problem");
  list->add_option("artifact", artifactPath, "compiled model (.xlca)")->required();
  list->add_option("--family", family, "only this kernel family");
  list->add_flag("--variants", variants, "list every variant and every refused point");
  list->add_flag("--json", json, "machine-readable output");

  CLI::App *compile =
      app.add_subcommand("compile", "compile every valid variant with NVRTC (no GPU needed)");
  compile->add_option("artifact", artifactPath, "compiled model (.xlca)")->required();
  compile->add_option("--family", family, "only this kernel family");
  compile->add_option("-j,--jobs", jobs, "parallel NVRTC compilations (default: all cores)")
      ->check(CLI::Range(1u, 1024u));
  compile->add_option("--kernel-cache", cacheDir,
                      "kernel cache directory (default: $XLC_CACHE_DIR or ~/.cache/xlc/kernels)");
  compile->add_flag("--json", json, "machine-readable output");

  CLI::App *checkCmd =
      app.add_subcommand("check", "does a tuning database match this machine and this xlc?");
  checkCmd->add_option("database", dbPath, "tuning database (.jsonl)")->required();
  checkCmd->add_flag("--json", json, "machine-readable output");

  xlc::tune::RunOptions run;
  CLI::App *runCmd = app.add_subcommand(
      "run", "measure the variants of a function's kernels and write a tuning database");
  runCmd->add_option("artifact", run.artifact, "compiled model (.xlca)")->required();
  runCmd->add_option("--weights", run.weights, "checkpoint directory (config.json + safetensors)")
      ->required();
  runCmd->add_option("--db", run.database, "tuning database to merge the records into")
      ->required();
  runCmd->add_option("--function", run.function, "prefill, decode_step or train_step")
      ->check(CLI::IsMember({"prefill", "decode_step", "train_step"}));
  runCmd->add_option("--batch", run.batches, "batch sizes, each its own records (1,8,64)")
      ->delimiter(',');
  runCmd->add_option("--seq", run.seq, "tokens per sequence (prefill, train_step)");
  runCmd->add_option("--family", run.family, "only this kernel family");
  runCmd->add_option("--warmup", run.warmup, "untimed calls per round");
  runCmd->add_option("--reps", run.reps, "timed calls per round");
  runCmd->add_option("--margin", run.margin,
                     "a variant must beat the default by more than this fraction (and the "
                     "noise) to be chosen");
  runCmd->add_option("--tolerance", run.tolerance,
                     "largest relative L2 error against the default's output");
  runCmd->add_option("--budget", run.budgetSeconds,
                     "stop after the round that passes this many seconds (0: none); rerun to "
                     "continue");
  runCmd->add_option("--seed", run.seed, "seed of the prompt tokens");
  runCmd->add_flag("--json", run.json, "machine-readable summary");
  xlc::tools::addBackendOptions(*runCmd, run.device, run.backend);

  std::string applyOutput;
  CLI::App *applyCmd = app.add_subcommand(
      "apply", "make a compiled model launch a tuning database's choices (as xlc-compile "
               "--tuning-db does)");
  applyCmd->add_option("artifact", artifactPath, "compiled model (.xlca)")->required();
  applyCmd->add_option("--db", dbPath, "tuning database (.jsonl)")->required();
  applyCmd->add_option("-o,--output", applyOutput, "the tuned artifact")->required();

  CLI11_PARSE(app, argc, argv);
  try {
    if (applyCmd->parsed())
      return runApply(artifactPath, dbPath, applyOutput);
    if (runCmd->parsed())
      return xlc::tune::runTuning(run);
    if (list->parsed())
      return runList(artifactPath, family, variants, json);
    if (compile->parsed())
      return runCompile(artifactPath, family, jobs, cacheDir, json);
    return runCheck(dbPath, json);
  } catch (const std::exception &e) {
    std::cerr << "xlc-tune: error: " << e.what() << "\n";
    return 1;
  }
}
