//===- TuneRun.cpp - xlc-tune run: measure kernel variants ----------------===//

#include "tools/xlc-tune/TuneRun.h"

#include "runtime/artifact/Serialize.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/kernels/KernelFamily.h"
#include "runtime/kernels/Tuning.h"
#include "runtime/support/Error.h"
#include "runtime/tune/ApplyTuning.h"
#include "runtime/tune/Choose.h"
#include "runtime/tune/TuningDb.h"
#include "runtime/weights/Checkpoint.h"
#include "tools/xlc-bench/Measure.h"
#include "tools/xlc-bench/Profile.h"
#include "tools/xlc-bench/Report.h"

#if XLC_HAVE_CUDA_BACKEND
#include "runtime/cuda/Device.h"
#include "runtime/cuda/DriverApi.h"
#include "runtime/cuda/Nvrtc.h"
#include "runtime/exec/cuda/CublasLt.h"
#endif

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <thread>

namespace xlc::tune {
namespace {

namespace art = xlc::artifact;
using Clock = std::chrono::steady_clock;

/// One kernel problem of the function: its family, problem, valid variants (the default first)
/// and what was measured of them so far.
struct TunedProblem {
  const kernels::FamilyDef *family = nullptr;
  std::string key;                    ///< kernels::problemKey
  std::vector<kernels::Config> valid; ///< valid[0] is the compiler's default
  std::size_t firstStep = 0;          ///< the function's first launch of it
  std::vector<Candidate> candidates;  ///< candidates[i] measured valid[i]
  /// The default's inputs and outputs at the first launch: every variant runs on those inputs
  /// and is compared with those outputs.
  std::vector<std::pair<art::BufferId, std::vector<float>>> inputs, reference;

  std::string id() const { return std::string(family->name) + " " + key; }
  bool complete() const { return candidates.size() >= valid.size(); }
  std::string tile(std::size_t i) const { return kernels::variantTile(*family, valid[i]); }
};

/// The problems the function launches at |batch| (the kernel each launch runs at that batch),
/// of |onlyFamily| when given, in order of first launch.
std::vector<TunedProblem> problemsOf(const art::Artifact &artifact, const std::string &function,
                                     std::uint64_t batch, const std::string &onlyFamily) {
  const art::Function *fn = artifact.findFunction(function);
  check(fn != nullptr, "the artifact has no function '{}'", function);
  std::vector<TunedProblem> out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < fn->steps.size(); ++i) {
    const auto *launch = std::get_if<art::LaunchStep>(&fn->steps[i].body);
    if (!launch)
      continue;
    const art::Kernel &kernel = artifact.kernels[launch->kernelFor(batch)];
    const kernels::FamilyDef *family = kernels::findFamily(kernel.family);
    if (!family || kernels::tuningKnobs(*family, kernel.config).empty() ||
        (!onlyFamily.empty() && kernel.family != onlyFamily))
      continue;
    TunedProblem p;
    p.family = family;
    p.key = kernels::problemKey(*family, kernel.config);
    if (!seen.insert(p.id()).second)
      continue;
    p.valid = kernels::tuningSpace(*family, kernel.config).valid;
    p.firstStep = i;
    out.push_back(std::move(p));
  }
  return out;
}

/// The environment of this run: the device the backend runs on and the libraries it uses.
Environment environmentHere(const std::string &device, unsigned cpuThreads) {
  Environment e;
  e.headers = std::string(device::headerHash());
  e.xlc = XLC_VERSION;
#if XLC_HAVE_CUDA_BACKEND
  if (device == "cuda") {
    const cuda::CudaDevice gpu = cuda::CudaDevice::open(0);
    e.gpu = gpu.name();
    e.sms = gpu.smCount();
    e.arch = gpu.arch();
    e.driver = cuda::driverStatus().driverVersion;
    const auto [major, minor] = cuda::Nvrtc::instance().version();
    e.nvrtc = fmt::format("{}.{}", major, minor);
    e.cublaslt = static_cast<std::int64_t>(exec::CublasLt().version());
    return e;
  }
#endif
  // The CPU backend: timings of its fp32 implementations, which ignore the knobs (a CPU
  // database exercises the procedure; only a GPU's says which variant is faster there).
  e.gpu = "cpu";
  e.sms = cpuThreads ? cpuThreads : std::thread::hardware_concurrency();
  e.arch = "cpu";
  return e;
}

/// ‖a − b‖ / ‖b‖ (infinite for NaN, Inf or a size mismatch).
double relativeL2(const std::vector<float> &a, const std::vector<float> &b) {
  if (a.size() != b.size())
    return INFINITY;
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    diff += d * d;
    norm += static_cast<double>(b[i]) * b[i];
  }
  if (!std::isfinite(diff) || !std::isfinite(norm))
    return INFINITY;
  return norm > 0 ? std::sqrt(diff / norm) : (diff > 0 ? INFINITY : 0.0);
}

/// What each problem's first launch reads and writes. Round 0 (the defaults) records the float
/// buffers the launch takes before it runs (its inputs) and those it changed (its outputs).
/// Later rounds write the recorded inputs back before the launch, so that every variant sees
/// exactly the default's inputs whatever the variants upstream did, and read the recorded
/// outputs after it.
class OutputCapture final : public exec::StepObserver {
public:
  using Buffers = std::vector<std::pair<art::BufferId, std::vector<float>>>;
  struct Watch {
    std::size_t problem = 0;
    const Buffers *inputs = nullptr;  ///< round 0: nullptr (record them)
    std::vector<art::BufferId> outputs; ///< round 0: empty (find them)
  };
  OutputCapture(exec::Backend &backend, std::map<std::size_t, Watch> watch)
      : backend_(backend), watch_(std::move(watch)) {}

  void beforeStep(const exec::PreparedStep &step, const exec::CallShape &shape) override {
    auto it = watch_.find(step.index);
    if (it == watch_.end())
      return;
    if (it->second.inputs) {
      for (const auto &[id, values] : *it->second.inputs)
        backend_.writeBuffer(id, shape, values);
      return;
    }
    Buffers &inputs = inputs_[it->second.problem];
    for (art::BufferId id : floatBuffers(step))
      inputs.emplace_back(id, backend_.readBuffer(id, shape));
  }

  void afterStep(const exec::PreparedStep &step, const exec::CallShape &shape) override {
    auto it = watch_.find(step.index);
    if (it == watch_.end())
      return;
    Buffers &outputs = outputs_[it->second.problem];
    if (it->second.inputs) {
      for (art::BufferId id : it->second.outputs)
        outputs.emplace_back(id, backend_.readBuffer(id, shape));
      return;
    }
    for (const auto &[id, values] : inputs_[it->second.problem]) {
      std::vector<float> after = backend_.readBuffer(id, shape);
      if (after != values)
        outputs.emplace_back(id, std::move(after));
    }
  }

  /// Per problem: its launch's inputs (round 0) and its outputs.
  std::map<std::size_t, Buffers> &inputs() { return inputs_; }
  std::map<std::size_t, Buffers> &outputs() { return outputs_; }

private:
  /// The launch's float buffer arguments that belong to the call (not the bound weights).
  std::vector<art::BufferId> floatBuffers(const exec::PreparedStep &step) const {
    std::vector<art::BufferId> ids;
    const art::Artifact &a = backend_.artifact();
    for (const art::Arg &arg : std::get<art::LaunchStep>(step.step->body).args) {
      if (arg.kind != art::ArgKind::Buffer)
        continue;
      const art::Buffer &b = a.buffers[arg.bufferId];
      // The buffers every backend reads back as fp32 (the CUDA backend reads no f16).
      const bool isFloat = b.dtype == art::DType::F32 || b.dtype == art::DType::BF16;
      if (isFloat && !art::isBoundClass(b.cls) &&
          std::find(ids.begin(), ids.end(), arg.bufferId) == ids.end())
        ids.push_back(arg.bufferId);
    }
    return ids;
  }

  exec::Backend &backend_;
  std::map<std::size_t, Watch> watch_;
  std::map<std::size_t, Buffers> inputs_, outputs_;
};

/// The measurement of one (function, batch, seq).
class ShapeTuner {
public:
  ShapeTuner(const RunOptions &o, const art::Artifact &artifact,
             const weights::Checkpoint &checkpoint, std::string device, std::uint64_t batch,
             std::uint64_t seq, std::vector<TunedProblem> problems)
      : o_(o), artifact_(artifact), checkpoint_(checkpoint), device_(std::move(device)),
        batch_(batch), seq_(seq), problems_(std::move(problems)) {
    const std::uint64_t vocab = artifact.model.vocabSize;
    if (o.function == "train_step") {
      train_ = std::make_unique<bench::TrainBatch>(
          bench::makePrompts(batch, seq + 1, vocab, o.seed));
      args_ = train_->trainStepArgs(batch, seq);
    } else {
      tokens_.clear();
      for (const auto &p : bench::makePrompts(batch, seq, vocab, o.seed))
        tokens_.insert(tokens_.end(), p.begin(), p.end());
      args_.batch = batch;
      args_.seq = seq;
      args_.inputs.emplace(artifact.findFunction(o.function)->inputs.at(0).name,
                           std::as_bytes(std::span(tokens_)));
    }
  }

  /// Measures round |round| for the problems |which| (indices into problems()): appends one
  /// candidate to each. Round 0 (the defaults) also records the references.
  void round(std::size_t round, const std::vector<std::size_t> &which) {
    if (round == 0) { // the defaults must run: nothing to compare against otherwise
      try {
        measure(0, which);
      } catch (const Error &e) {
        fail("the compiler's default kernels do not run at B={} S={}: {}", batch_, seq_,
             e.what());
      }
      return;
    }
    try {
      measure(round, which);
    } catch (const Error &e) {
      if (which.size() > 1) { // one failing variant must not cost the others theirs
        for (std::size_t p : which)
          this->round(round, {p});
        return;
      }
      Candidate c = identity(which[0], round);
      c.status = failedAt_ == Stage::Backend ? Candidate::Status::CompileError
                                             : Candidate::Status::LaunchError;
      c.message = e.what();
      problems_[which[0]].candidates.push_back(std::move(c));
    }
  }

  std::vector<TunedProblem> &problems() { return problems_; }

private:
  enum class Stage { Backend, Call };

  Candidate identity(std::size_t p, std::size_t round) const {
    const TunedProblem &problem = problems_[p];
    Candidate c;
    c.tile = problem.tile(round);
    for (const kernels::TuningKnob &knob : kernels::tuningKnobs(*problem.family, problem.valid[0]))
      c.knobs[std::string(knob.field)] = problem.valid[round][std::string(knob.field)];
    return c;
  }

  void measure(std::size_t round, const std::vector<std::size_t> &which) {
    // The round's artifact: the listed problems launch their round-th variant.
    art::Artifact variant = artifact_;
    applyChoices(variant, [&](const std::string &function, const art::Kernel &kernel,
                              const std::string &key) {
      if (function != o_.function)
        return std::vector<Choice>{};
      for (std::size_t p : which) {
        const TunedProblem &problem = problems_[p];
        if (kernel.family == problem.family->name && key == problem.key)
          return std::vector<Choice>{{batch_, problem.valid[round], std::nullopt,
                                      fmt::format("round {}", round)}};
      }
      return std::vector<Choice>{};
    });
    failedAt_ = Stage::Backend;
    const bool training = o_.function == "train_step";
    const std::vector<std::string> functions =
        training ? std::vector<std::string>{"train_step", "grad_norm", "optimizer_step"}
                 : std::vector<std::string>{"prefill", "decode_step"};
    std::unique_ptr<exec::Backend> backend = tools::createBackend(
        device_, variant, checkpoint_, exec::Limits{batch_, seq_, functions}, o_.backend);
    failedAt_ = Stage::Call;
    const exec::CallShape shape{batch_, seq_, 0};

    // Check: the buffers each problem's first launch writes, on the default's inputs, against
    // the default's outputs.
    std::map<std::size_t, OutputCapture::Watch> watch;
    for (std::size_t p : which) {
      OutputCapture::Watch w{p, round == 0 ? nullptr : &problems_[p].inputs, {}};
      for (const auto &[id, _] : problems_[p].reference)
        w.outputs.push_back(id);
      watch[problems_[p].firstStep] = std::move(w);
    }
    OutputCapture capture(*backend, watch);
    exec::CallArgs args = args_;
    args.observer = &capture;
    if (training) {
      backend->zeroGradients();
    } else {
      backend->resetStates(0, batch_);
      if (o_.function == "decode_step") // a state that is not zero, for the check to see
        backend->call("prefill", args_);
    }
    backend->call(o_.function, args);
    if (training)
      backend->zeroGradients();

    // Time every step of the call; a problem's sample is its launches' sum.
    const bench::Profile profile =
        bench::profileCall(*backend, o_.function, shape, args_, o_.warmup, o_.reps,
                           bench::DeviceLimit{}, bench::floatStorage(device_));
    std::map<std::string, const bench::ProfileGroup *> byKernel;
    for (const bench::ProfileGroup &g : profile.groups)
      if (g.kind == "launch")
        byKernel[g.key] = &g;

    // Candidates go to the problems only when every one of them is complete: a failure half
    // way must not leave some problems a candidate ahead (the round is then retried per problem).
    std::vector<Candidate> measured;
    for (std::size_t p : which) {
      TunedProblem &problem = problems_[p];
      Candidate c = identity(p, round);
      auto &outputs = capture.outputs()[p];
      if (round == 0) {
        check(!outputs.empty(), "the default of {} wrote nothing at its first launch (step {})",
                problem.id(), problem.firstStep);
      } else {
        double error = 0;
        for (std::size_t i = 0; i < problem.reference.size(); ++i)
          error = std::max(error, i < outputs.size()
                                      ? relativeL2(outputs[i].second, problem.reference[i].second)
                                      : INFINITY);
        c.error = error;
        if (!(error <= o_.tolerance)) {
          c.status = Candidate::Status::Wrong;
          c.message = fmt::format("relative L2 error {:.3g} against the default (tolerance {})",
                                  error, o_.tolerance);
        }
      }
      if (c.status == Candidate::Status::Ok) {
        // The kernel this problem launches in the round's artifact.
        const bench::ProfileGroup *group = nullptr;
        for (const art::Kernel &k : variant.kernels)
          if (k.family == problem.family->name && k.config == problem.valid[round])
            if (auto it = byKernel.find(k.name); it != byKernel.end())
              group = it->second;
        check(group != nullptr, "no timing for {} in round {}", problem.id(), round);
        c.medianUs = group->seconds.median * 1e6;
        c.p20Us = group->seconds.p20 * 1e6;
        c.p80Us = group->seconds.p80 * 1e6;
        c.repeats = static_cast<std::int64_t>(group->seconds.count);
      }
      measured.push_back(std::move(c));
    }
    for (std::size_t i = 0; i < which.size(); ++i) {
      TunedProblem &problem = problems_[which[i]];
      if (round == 0) {
        problem.inputs = std::move(capture.inputs()[which[i]]);
        problem.reference = std::move(capture.outputs()[which[i]]);
      }
      problem.candidates.push_back(std::move(measured[i]));
    }
  }

  const RunOptions &o_;
  const art::Artifact &artifact_;
  const weights::Checkpoint &checkpoint_;
  std::string device_;
  std::uint64_t batch_, seq_;
  std::vector<TunedProblem> problems_;
  std::vector<std::int32_t> tokens_;
  std::unique_ptr<bench::TrainBatch> train_;
  exec::CallArgs args_;
  Stage failedAt_ = Stage::Backend;
};

/// The record of a problem from what was measured (the choice by Choose.h).
Record recordOf(const std::string &function, const TunedProblem &p, std::uint64_t batch,
                std::uint64_t seq, double margin) {
  Record r;
  r.function = function;
  r.family = std::string(p.family->name);
  r.problem = nlohmann::json::parse(p.key);
  r.batch = static_cast<std::int64_t>(batch);
  r.seq = static_cast<std::int64_t>(seq);
  r.defaultTile = p.tile(0);
  r.candidates = p.candidates;
  r.chosenTile = choose(p.candidates, r.defaultTile, margin);
  r.measured = bench::utcNow();
  return r;
}

} // namespace

int runTuning(const RunOptions &o) {
  check(o.function == "prefill" || o.function == "decode_step" || o.function == "train_step",
        "--function must be prefill, decode_step or train_step, got '{}'", o.function);
  const art::Artifact artifact = art::loadArtifact(o.artifact);
  const weights::Checkpoint checkpoint = weights::Checkpoint::open(o.weights);
  const std::string device = tools::chooseDevice(o.device, "xlc-tune");
  const Environment environment = environmentHere(device, o.backend.threads);
  if (device == "cpu")
    std::cerr << "xlc-tune: on the CPU backend, whose fp32 kernels ignore the knobs: the records "
                 "exercise the procedure, they do not say which variant is faster on a GPU\n";
  const std::string partialPath = o.database + ".partial";
  Database partial;
  if (std::filesystem::exists(partialPath)) {
    partial = readDatabase(partialPath);
    check(differences(partial.environment, environment).empty(),
          "{} was measured in another environment; delete it to start over", partialPath);
  }
  Database done;
  if (std::filesystem::exists(o.database))
    done = readDatabase(o.database);
  const Clock::time_point start = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  std::vector<Record> summary;
  bool stopped = false;

  for (std::uint64_t batch : o.batches) {
    const std::uint64_t seq = o.function == "decode_step" ? 1 : o.seq;
    const Clock::time_point shapeStart = Clock::now();
    auto atThisShape = [&](const Record &r) {
      return r.function == o.function && r.batch == static_cast<std::int64_t>(batch) &&
             r.seq == static_cast<std::int64_t>(seq);
    };
    auto isRecordOf = [&](const Record &r, const TunedProblem &p) {
      return atThisShape(r) && r.family == p.family->name && r.problem.dump() == p.key;
    };
    // The partial records this run continues and replaces: its function, shape and family.
    auto ownedBy = [&](const Record &r) {
      return atThisShape(r) && (o.family.empty() || r.family == o.family);
    };
    std::vector<TunedProblem> problems;
    for (TunedProblem &p : problemsOf(artifact, o.function, batch, o.family))
      if (std::none_of(done.records.begin(), done.records.end(),
                       [&](const Record &r) { return isRecordOf(r, p); }))
        problems.push_back(std::move(p));
    if (problems.empty()) {
      std::cerr << fmt::format("xlc-tune: {} B={} S={}: every problem is in {} already\n",
                               o.function, batch, seq, o.database);
      continue;
    }
    // Continue what a stopped run measured at this shape (its candidates, in round order).
    for (TunedProblem &p : problems)
      for (const Record &r : partial.records)
        if (isRecordOf(r, p))
          p.candidates = r.candidates;
    std::size_t rounds = 0;
    for (const TunedProblem &p : problems)
      rounds = std::max(rounds, p.valid.size());
    ShapeTuner tuner(o, artifact, checkpoint, device, batch, seq, std::move(problems));
    // The defaults run again in every session: references and the baseline's timing.
    {
      std::vector<std::size_t> all(tuner.problems().size());
      for (std::size_t i = 0; i < all.size(); ++i)
        all[i] = i;
      std::vector<std::vector<Candidate>> resumed;
      for (TunedProblem &p : tuner.problems())
        resumed.push_back(std::exchange(p.candidates, {}));
      tuner.round(0, all);
      for (std::size_t i = 0; i < all.size(); ++i) {
        TunedProblem &p = tuner.problems()[i];
        if (resumed[i].size() > 1) {
          p.candidates.insert(p.candidates.end(), resumed[i].begin() + 1, resumed[i].end());
        }
      }
    }
    std::size_t firstRound = rounds;
    for (const TunedProblem &p : tuner.problems())
      if (!p.complete())
        firstRound = std::min(firstRound, p.candidates.size());
    for (std::size_t round = firstRound; round < rounds; ++round) {
      std::vector<std::size_t> which;
      for (std::size_t i = 0; i < tuner.problems().size(); ++i) {
        const TunedProblem &p = tuner.problems()[i];
        if (p.candidates.size() == round && round < p.valid.size())
          which.push_back(i);
      }
      if (which.empty())
        continue;
      tuner.round(round, which);
      const double seconds = elapsed();
      const double shapeSeconds =
          std::chrono::duration<double>(Clock::now() - shapeStart).count();
      std::cerr << fmt::format("\rxlc-tune: {} B={} S={}: round {}/{} ({} problems), {:.0f} s, "
                               "ETA {:.0f} s   ",
                               o.function, batch, seq, round + 1, rounds, which.size(), seconds,
                               shapeSeconds / static_cast<double>(round + 1 - firstRound) *
                                   static_cast<double>(rounds - round - 1));
      // Finished problems go into the database now; the rest wait in the partial file.
      std::vector<Record> finished, pending;
      for (const TunedProblem &p : tuner.problems())
        (p.complete() ? finished : pending)
            .push_back(recordOf(o.function, p, batch, seq, o.margin));
      std::erase_if(partial.records, ownedBy);
      partial.environment = environment;
      partial.records.insert(partial.records.end(), pending.begin(), pending.end());
      if (!finished.empty())
        mergeIntoDatabase(o.database, environment, finished);
      for (const Record &r : finished)
        if (std::none_of(summary.begin(), summary.end(),
                         [&](const Record &s) { return s.key() == r.key(); }))
          summary.push_back(r);
      writeDatabase(partialPath, partial);
      std::erase_if(tuner.problems(), [](const TunedProblem &p) { return p.complete(); });
      if (o.budgetSeconds > 0 && seconds > o.budgetSeconds && round + 1 < rounds) {
        stopped = true;
        break;
      }
    }
    // Problems whose whole space is the default (one valid variant) finish with round 0.
    std::vector<Record> finished;
    for (const TunedProblem &p : tuner.problems())
      if (p.complete())
        finished.push_back(recordOf(o.function, p, batch, seq, o.margin));
    if (!finished.empty()) {
      mergeIntoDatabase(o.database, environment, finished);
      summary.insert(summary.end(), finished.begin(), finished.end());
    }
    std::cerr << "\n";
    if (stopped)
      break;
    std::erase_if(partial.records, ownedBy);
  }
  if (!stopped && std::filesystem::exists(partialPath)) {
    if (partial.records.empty())
      std::filesystem::remove(partialPath);
    else // other shapes' unfinished work, from an earlier run
      writeDatabase(partialPath, partial);
  }

  if (o.json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const Record &r : summary)
      out.push_back({{"family", r.family},
                     {"batch", r.batch},
                     {"seq", r.seq},
                     {"default", r.defaultTile},
                     {"chosen", r.chosenTile},
                     {"default_us", r.candidates.front().medianUs},
                     {"chosen_us", r.chosen().medianUs},
                     {"candidates", r.candidates.size()}});
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << fmt::format("{:<22} {:>5} {:>6} {:>10} {:>10} {:>7}  {}\n", "family", "B", "S",
                             "default us", "chosen us", "speedup", "chosen");
    for (const Record &r : summary)
      std::cout << fmt::format("{:<22} {:>5} {:>6} {:>10.2f} {:>10.2f} {:>6.2f}x  {}\n",
                               r.family, r.batch, r.seq, r.candidates.front().medianUs,
                               r.chosen().medianUs,
                               r.candidates.front().medianUs / r.chosen().medianUs,
                               r.chosenTile == r.defaultTile ? "(default)" : r.chosenTile);
    std::cout << fmt::format("{} records in {} ({:.0f} s){}\n", summary.size(), o.database,
                             elapsed(),
                             stopped ? "; stopped by the budget: run again to continue" : "");
  }
  return stopped ? 3 : 0;
}

} // namespace xlc::tune
