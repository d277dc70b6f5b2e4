//===- xlc-train.cpp - Train a compiled xLSTM model ------------------------===//
//
//   xlc-train --model model.xlca|config.json --weights <hf-dir> --data train.tok|text...
//             --out <run-dir> [options]
//   xlc-train --model model.xlca --data train.tok --out <run-dir> --resume
//
// The loop around the artifact's compiled training functions (xlc-compile --training;
// docs/artifact.md): per optimizer step, --grad-accum micro-batches of --batch sequences of
// --seq tokens from the token file's training split (SequenceStream: shuffled windows, resumable
// from a position), each through train_step (gradients accumulate in the backend's gradient
// buffers, scaled by 1/(counted targets of the whole step), so the step's loss is the mean over
// every counted target); then grad_norm (the global norm for clipping) and optimizer_step
// (AdamW with the schedule's learning rate and the step's bias corrections). Every --save-every
// steps and at the end it writes <run-dir>/checkpoint atomically (runtime/train/TrainCheckpoint.h:
// the model as a Hugging Face directory, AdamW's moments and master copies, the trainer state);
// --resume continues from it bit for bit; --save-best also keeps the weights of the lowest held-out
// loss in <run-dir>/best; --plot draws <run-dir>/loss.png. <run-dir>/log.jsonl holds one JSON line per step (and
// per evaluation); --json prints a summary of the run on stdout.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/exec/Backend.h"
#include "runtime/support/Error.h"
#include "runtime/train/AdamW.h"
#include "runtime/train/Schedule.h"
#include "runtime/train/SequenceStream.h"
#include "runtime/train/TextData.h"
#include "runtime/train/TokenFile.h"
#include "runtime/train/TrainCheckpoint.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/SafetensorsWriter.h"
#include "tools/support/BackendChoice.h"
#include "tools/support/Child.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>

namespace {

namespace fs = std::filesystem;
namespace art = xlc::artifact;
namespace train = xlc::train;
using xlc::check;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string model, weights, out;
  std::vector<std::string> dataFiles; ///< --data as given: one token file, or text files
  std::string tokenizer;              ///< for text --data (default: <weights>/tokenizer.json)
  std::string data;                   ///< the token file trained on
  std::string device = "auto";
  xlc::tools::BackendSettings backend;
  std::int64_t batch = 4, seq = 128, gradAccum = 1, steps = 100;
  double lr = 1e-3;
  std::string schedule = "cosine";
  std::int64_t warmup = 0, cooldown = 0;
  double endFactor = 0.1;
  double clip = 1.0;
  train::AdamWConfig adamw;
  std::uint64_t seed = 0;
  double validationFraction = 0.05;
  std::int64_t evalEvery = 0, evalBatches = 4;
  std::int64_t saveEvery = 0;
  std::int64_t crashAfterStep = 0;
  std::string gradientsOut;
  bool resume = false, json = false, quiet = false, saveBest = false, noCheckpoint = false;
  bool plot = false;
  std::string python = "python3", scriptsDir;
  std::string compiler; ///< xlc-compile for a config.json or .mlir --model (default: found)
};

/// The settings a resumed run must share with the run it continues (bit-exact resume).
nlohmann::json runSettings(const Options &o, const train::TokenFile &data) {
  return {{"batch", o.batch},
          {"seq", o.seq},
          {"grad_accum", o.gradAccum},
          {"steps", o.steps},
          {"lr", o.lr},
          {"schedule", o.schedule},
          {"warmup", o.warmup},
          {"cooldown", o.cooldown},
          {"end_factor", o.endFactor},
          {"clip", o.clip},
          {"beta1", o.adamw.beta1},
          {"beta2", o.adamw.beta2},
          {"eps", o.adamw.eps},
          {"weight_decay", o.adamw.weightDecay},
          {"validation_fraction", o.validationFraction},
          {"data_tokens", data.size()}};
}

/// One micro-batch as the train_step inputs take it.
struct MicroBatch {
  std::vector<std::int32_t> tokens, targets;
  std::vector<std::uint8_t> resets; ///< where a document starts inside a sequence
  std::int64_t counted = 0;
};

MicroBatch toMicroBatch(const train::Batch &b) {
  MicroBatch m;
  m.tokens.assign(b.tokens.begin(), b.tokens.end());
  m.targets.assign(b.targets.begin(), b.targets.end());
  m.resets = b.resets;
  for (std::int32_t t : m.targets)
    m.counted += t >= 0;
  return m;
}

/// train_step on one micro-batch; returns the sum of its per-token losses.
double runTrainStep(xlc::exec::Backend &backend, const MicroBatch &m, const Options &o,
                    double gradScale) {
  std::vector<float> tokenLoss(static_cast<std::size_t>(o.batch * o.seq));
  xlc::exec::CallArgs args;
  args.batch = static_cast<std::uint64_t>(o.batch);
  args.seq = static_cast<std::uint64_t>(o.seq);
  args.inputs.emplace("tokens", std::as_bytes(std::span(m.tokens)));
  args.inputs.emplace("targets", std::as_bytes(std::span(m.targets)));
  args.inputs.emplace("resets", std::as_bytes(std::span(m.resets)));
  args.scalars.emplace("grad_scale", gradScale);
  args.outputs.emplace("token_loss", xlc::exec::OutputRequest{tokenLoss});
  backend.call("train_step", args);
  double sum = 0.0;
  for (float l : tokenLoss) // in position order: the same sum on every run
    sum += l;
  return sum;
}

/// The checkpoint's dtype of each checkpoint tensor: its parameter buffer's (bf16 stays bf16);
/// with |role|, that of its optimizer buffer of that role (bf16 moments in the low-memory mode).
std::map<std::string, xlc::weights::DType> tensorDTypes(
    const art::Artifact &a, std::optional<art::OptimizerRole> role = std::nullopt) {
  std::map<std::string, xlc::weights::DType> out;
  for (const art::Buffer &b : a.buffers) {
    const bool wanted = role ? b.cls == art::BufferClass::Optimizer && b.role == role
                             : b.cls == art::BufferClass::Parameter;
    if (!wanted)
      continue;
    const art::BufferId bound = role ? *b.parameter : b.id;
    for (const art::WeightBinding &w : a.weights)
      if (w.buffer == bound)
        for (const std::string &name : w.sources)
          out[name] = b.dtype == art::DType::BF16 ? xlc::weights::DType::BF16
                                                  : xlc::weights::DType::F32;
  }
  return out;
}

void saveCheckpoint(xlc::exec::Backend &backend, const std::string &dir,
                    const train::TrainerState &state, const std::string &configJson,
                    std::span<const train::ExtraFile> extraFiles) {
  const auto dtypes = tensorDTypes(backend.artifact());
  const auto momentDtypes = tensorDTypes(backend.artifact(), art::OptimizerRole::ExpAvg);
  std::map<std::string, std::vector<float>> masters, m, v;
  for (auto &t : backend.exportOptimizerState(art::OptimizerRole::Master))
    masters[t.name] = std::move(t.values);
  for (auto &t : backend.exportOptimizerState(art::OptimizerRole::ExpAvg))
    m[t.name] = std::move(t.values);
  for (auto &t : backend.exportOptimizerState(art::OptimizerRole::ExpAvgSq))
    v[t.name] = std::move(t.values);
  std::vector<train::ParameterState> params;
  for (auto &t : backend.exportParameters()) {
    train::ParameterState p;
    p.name = t.name;
    p.shape.assign(t.shape.begin(), t.shape.end());
    p.dtype = dtypes.at(t.name);
    p.momentDtype = momentDtypes.at(t.name);
    p.weight = std::move(t.values);
    if (auto it = masters.find(p.name); it != masters.end())
      p.master = std::move(it->second);
    p.m = std::move(m.at(p.name));
    p.v = std::move(v.at(p.name));
    params.push_back(std::move(p));
  }
  train::writeTrainCheckpoint(dir, params, state, configJson, extraFiles);
}

/// Restores the optimizer state of |ckpt| into |backend| (the weights came with its creation).
void restoreOptimizer(xlc::exec::Backend &backend, const train::TrainCheckpoint &ckpt) {
  using Map = std::map<std::string, std::span<const float>, std::less<>>;
  Map masters, m, v;
  for (const train::ParameterState &p : ckpt.params) {
    if (!p.master.empty())
      masters.emplace(p.name, p.master);
    m.emplace(p.name, p.m);
    v.emplace(p.name, p.v);
  }
  backend.importTensors(art::OptimizerRole::ExpAvg, m);
  backend.importTensors(art::OptimizerRole::ExpAvgSq, v);
  if (!masters.empty())
    backend.importTensors(art::OptimizerRole::Master, masters);
}

/// --gradients-out: train_step once on the training split's first --batch windows in file order
/// (window i = tokens [i·seq, i·seq + seq] of the split; no shuffle), with grad_scale =
/// 1/(counted targets), so the gradients are those of the mean next-token loss; every checkpoint
/// tensor's gradient goes to |path| as fp32 safetensors, the loss and the batch into its
/// metadata. No optimizer step, no checkpoint. test/parity/hf_grad_parity.py compares the file
/// with torch autograd's gradients of the same loss.
int writeGradients(xlc::exec::Backend &backend, const train::TokenFile &data,
                   const train::Split &split, const Options &o) {
  train::SequenceStream firstWindows(data, split.trainBegin, split.trainEnd, o.seq, 0, false);
  const MicroBatch m = toMicroBatch(firstWindows.next(o.batch));
  check(m.counted > 0, "{}: the first {} windows hold no counted target", o.data, o.batch);
  backend.zeroGradients();
  const double loss =
      runTrainStep(backend, m, o, 1.0 / static_cast<double>(m.counted)) /
      static_cast<double>(m.counted);
  std::vector<xlc::exec::NamedTensor> grads = backend.exportGradients();
  std::vector<xlc::weights::TensorToWrite> tensors;
  for (const xlc::exec::NamedTensor &g : grads) {
    xlc::weights::TensorToWrite t;
    t.name = g.name;
    t.shape.assign(g.shape.begin(), g.shape.end());
    t.data = std::span(reinterpret_cast<const std::uint8_t *>(g.values.data()),
                       g.values.size() * sizeof(float));
    tensors.push_back(std::move(t));
  }
  const xlc::weights::SafetensorsMetadata metadata = {
      {"loss", fmt::format("{:.9g}", loss)},
      {"counted_targets", std::to_string(m.counted)},
      {"batch", std::to_string(o.batch)},
      {"seq", std::to_string(o.seq)},
      {"device", std::string(backend.kind())},
      {"what", "gradient of the mean next-token loss over the training split's first windows"}};
  xlc::weights::writeSafetensors(o.gradientsOut, tensors, metadata);
  if (!o.quiet)
    std::cerr << fmt::format("xlc-train: wrote {} gradients of loss {:.6f} ({} targets) to {}\n",
                             tensors.size(), loss, m.counted, o.gradientsOut);
  if (o.json)
    std::cout << nlohmann::json{{"device", backend.kind()},
                                {"loss", loss},
                                {"counted_targets", m.counted},
                                {"tensors", tensors.size()},
                                {"gradients", o.gradientsOut}}
                     .dump(2)
              << "\n";
  return 0;
}

/// --plot: <out>/loss.png from <out>/log.jsonl (training and held-out loss) with
/// scripts/plot-train.py. A plot that fails is a warning: the run goes on. Python and matplotlib
/// take a second or two to start, longer than many training steps of a small model, so during
/// the run a plot is redrawn at an evaluation only when a minute has passed since the last one
/// (the caller's |lastPlot|), and always at the end.
void drawPlot(const Options &o, const std::string &title) {
  const std::string script =
      (fs::path(xlc::tools::findScriptsDir(o.scriptsDir, "plot-train.py")) / "plot-train.py")
          .string();
  const std::string png = (fs::path(o.out) / "loss.png").string();
  const xlc::tools::ChildResult child = xlc::tools::runChild(
      {o.python, script, png, (fs::path(o.out) / "log.jsonl").string() + "=" + title, "--title",
       title},
      120.0);
  if (!child.ok())
    std::cerr << fmt::format("xlc-train: warning: plotting {} with {} {} failed ({})\n", png,
                             o.python, script, child.why);
}

/// "45s", "12m05s", "3h07m": a progress line's remaining time.
std::string formatDuration(double seconds) {
  const auto s = static_cast<std::int64_t>(std::llround(std::max(0.0, seconds)));
  if (s < 60)
    return fmt::format("{}s", s);
  if (s < 3600)
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

std::string readText(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  check(bool(in), "cannot read {}", path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// xlc-compile for --model config.json|model.mlir: --xlc-compile, else the build tree's
/// tools/xlc-compile/xlc-compile or an xlc-compile beside this binary, else xlc-compile on PATH.
std::string findCompiler(const Options &o) {
  if (!o.compiler.empty())
    return o.compiler;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    for (const fs::path &candidate : {exe.parent_path() / "xlc-compile",
                                      exe.parent_path().parent_path() / "xlc-compile" /
                                          "xlc-compile"})
      if (fs::is_regular_file(candidate, ec))
        return candidate.string();
  return "xlc-compile";
}

/// --model: an artifact as it is; a Hugging Face config.json or xlstm IR (.mlir) compiled with
/// xlc-compile --training into <out>/model.xlca first (the runtime has no compiler of its own;
/// the same input compiles to the same artifact, so a resumed run gets what it started with).
std::string resolveModel(const Options &o) {
  const fs::path model(o.model);
  check(fs::exists(model), "--model: '{}' does not exist", o.model);
  if (model.extension() != ".json" && model.extension() != ".mlir")
    return o.model;
  fs::create_directories(o.out);
  const std::string artifact = (fs::path(o.out) / "model.xlca").string();
  const std::string compiler = findCompiler(o);
  if (!o.quiet)
    std::cerr << fmt::format("xlc-train: compiling {} with {} --training -> {}\n", o.model,
                             compiler, artifact);
  const xlc::tools::ChildResult child =
      xlc::tools::runChild({compiler, o.model, "--training", "-o", artifact}, 3600.0);
  check(child.ok(),
        "--model {}: {} --training {} ({}); xlc-compile needs the compiler build (MLIR): "
        "compile there and pass the artifact, or name the compiler with --xlc-compile",
        o.model, compiler, child.end == xlc::tools::ChildResult::End::NotStarted
                               ? "could not be started"
                               : "failed",
        child.why);
  return artifact;
}

/// The token file a run trains on, and the tokenizer that made it (empty when unknown).
struct ResolvedData {
  std::string tokenFile, tokenizer;
};

/// --data: one token file as it is, or text files tokenised once into <out>/data.tok (each file a
/// document) with --tokenizer, else the tokenizer that made <out>/data.tok (a resumed run), else
/// the tokenizer.json beside --weights or in <out>/checkpoint.
ResolvedData resolveData(const Options &o) {
  check(!o.dataFiles.empty(), "--data: give a token file or text files");
  for (const std::string &f : o.dataFiles)
    check(fs::exists(f), "--data: '{}' does not exist", f);
  if (o.dataFiles.size() == 1 && train::isTokenFile(o.dataFiles[0]))
    return {o.dataFiles[0], o.tokenizer};
  for (const std::string &f : o.dataFiles)
    check(!train::isTokenFile(f),
          "--data: '{}' is a token file; give one token file alone, or text files only", f);
  const std::string tokenFile = (fs::path(o.out) / "data.tok").string();
  std::string tokenizer = o.tokenizer;
  if (tokenizer.empty())
    tokenizer = train::recordedTokenizer(tokenFile).value_or("");
  if (tokenizer.empty()) {
    for (const std::string &dir : {o.weights, (fs::path(o.out) / "checkpoint").string()})
      if (!dir.empty() && fs::exists(fs::path(dir) / "tokenizer.json")) {
        tokenizer = (fs::path(dir) / "tokenizer.json").string();
        break;
      }
    check(!tokenizer.empty(),
          "--data: text files need a tokenizer: pass --tokenizer tokenizer.json (there is none "
          "beside --weights)");
  }
  fs::create_directories(o.out);
  const bool encoded = train::tokenizeOnce(tokenFile, o.dataFiles, tokenizer, [&](const std::string &p) {
    if (!o.quiet)
      std::cerr << fmt::format("xlc-train: tokenising {} with {}\n", p, tokenizer);
  });
  if (!o.quiet && !encoded)
    std::cerr << fmt::format("xlc-train: {} is up to date with its texts\n", tokenFile);
  return {tokenFile, tokenizer};
}

int run(Options o) {
  check(o.batch >= 1 && o.seq >= 1 && o.gradAccum >= 1 && o.steps >= 1,
        "--batch, --seq, --grad-accum and --steps must be at least 1");
  check(o.clip >= 0.0, "--clip must be ≥ 0 (0: no clipping), got {}", o.clip);
  const ResolvedData resolvedData = resolveData(o);
  o.data = resolvedData.tokenFile;
  o.model = resolveModel(o);
  const art::Artifact artifact = art::loadArtifact(o.model);
  for (const char *fn : {"train_step", "grad_norm", "optimizer_step"})
    check(artifact.findFunction(fn) != nullptr,
          "{} has no '{}' function: compile the model with xlc-compile --training", o.model, fn);
  const train::TokenFile data = train::TokenFile::open(o.data);
  check(data.vocabSize() <= artifact.model.vocabSize,
        "{}: its token ids run to a vocabulary of {}, the model's is {}", o.data,
        data.vocabSize(), artifact.model.vocabSize);
  train::LrSchedule schedule;
  schedule.kind = train::parseScheduleKind(o.schedule);
  schedule.peak = o.lr;
  schedule.total = o.steps;
  schedule.warmup = o.warmup;
  schedule.cooldown = o.cooldown;
  schedule.endFactor = o.endFactor;
  schedule.validate();

  check(o.gradientsOut.empty() || !o.resume, "--gradients-out and --resume exclude each other");
  check(!o.saveBest || o.evalEvery > 0,
        "--save-best keeps the weights of the lowest held-out loss: it needs --eval-every");
  const std::string ckptDir = (fs::path(o.out) / "checkpoint").string();
  const std::string bestDir = (fs::path(o.out) / "best").string();
  fs::create_directories(o.out);
  const nlohmann::json settings = runSettings(o, data);
  std::optional<train::TrainCheckpoint> resumed;
  if (o.resume && (fs::exists(ckptDir) || fs::exists(ckptDir + ".prev"))) {
    resumed = train::readTrainCheckpoint(ckptDir);
    for (auto &[key, value] : settings.items())
      check(resumed->state.run.contains(key) && resumed->state.run[key] == value,
            "--resume: {} was {} in the run being resumed ({}), now {}; a resumed run must keep "
            "its settings",
            key, resumed->state.run.contains(key) ? resumed->state.run[key].dump() : "absent",
            resumed->directory, value.dump());
  }
  check(resumed || !o.weights.empty(),
        "--weights is required unless --resume finds a checkpoint in {}", ckptDir);
  const std::string weightsDir = resumed ? resumed->directory : o.weights;
  const std::string configJson =
      resumed ? resumed->configJson : readText((fs::path(o.weights) / "config.json").string());
  // The tokenizer the checkpoints carry, so that checkpoint/ and best/ are models xlc-run loads
  // as they are: the one the data was tokenised with (or --tokenizer), else the one beside
  // --weights or in the checkpoint resumed.
  std::vector<train::ExtraFile> extraFiles;
  for (const std::string &candidate :
       {resolvedData.tokenizer,
        o.weights.empty() ? std::string() : (fs::path(o.weights) / "tokenizer.json").string(),
        resumed ? (fs::path(resumed->directory) / "tokenizer.json").string() : std::string()})
    if (!candidate.empty() && fs::is_regular_file(candidate)) {
      extraFiles.push_back({"tokenizer.json", readText(candidate)});
      break;
    }
  const xlc::weights::Checkpoint weights = xlc::weights::Checkpoint::open(weightsDir);

  const std::string device = xlc::tools::chooseDevice(o.device, "xlc-train");
  xlc::exec::Limits limits;
  limits.maxBatch = static_cast<std::uint64_t>(o.batch);
  limits.maxSeq = static_cast<std::uint64_t>(o.seq);
  limits.functions = {"train_step", "grad_norm", "optimizer_step"};
  std::unique_ptr<xlc::exec::Backend> backend =
      xlc::tools::createBackend(device, artifact, weights, limits, o.backend);

  const train::Split split = train::splitTokens(data.size(), o.validationFraction);
  if (!o.gradientsOut.empty())
    return writeGradients(*backend, data, split, o);
  train::SequenceStream stream(data, split.trainBegin, split.trainEnd, o.seq, o.seed);
  train::TrainerState state;
  state.dataSeed = o.seed;
  state.run = settings;
  if (resumed) {
    restoreOptimizer(*backend, *resumed);
    state = resumed->state;
    stream.seek(state.stream);
    if (!o.quiet)
      std::cerr << fmt::format("xlc-train: resuming from step {} ({}), {} tokens seen\n",
                               state.step, resumed->directory, state.tokensSeen);
  }
  if (data.documentStarts().size() > 1 && !o.quiet)
    std::cerr << fmt::format("xlc-train: {} holds {} documents; the recurrent state restarts "
                             "where one begins inside a sequence\n",
                             o.data, data.documentStarts().size());
  // The low-memory mode (xlc-compile --training-precision low-memory): bf16 gradients of the
  // projection matrices sum the micro-batches in bf16, one rounding per micro-batch.
  const bool bf16Gradients =
      std::any_of(artifact.buffers.begin(), artifact.buffers.end(), [](const art::Buffer &b) {
        return b.cls == art::BufferClass::Gradient && b.dtype == art::DType::BF16;
      });
  if (bf16Gradients && o.gradAccum > 1 && !o.quiet)
    std::cerr << fmt::format("xlc-train: warning: the artifact keeps bf16 gradients (low-memory "
                             "mode): each of the {} micro-batches rounds the summed gradient to "
                             "bf16 once more\n",
                             o.gradAccum);
  if (!o.quiet)
    std::cerr << fmt::format("xlc-train: {} on {}; {} x {} tokens x {} micro-batches per step, "
                             "{} steps; {} training windows\n",
                             artifact.model.name, backend->description(), o.batch, o.seq,
                             o.gradAccum, o.steps, stream.windowsPerEpoch());

  std::ofstream log((fs::path(o.out) / "log.jsonl").string(), std::ios::app);
  check(bool(log), "cannot write {}", (fs::path(o.out) / "log.jsonl").string());

  Clock::time_point lastPlot = Clock::now(); // --plot: when loss.png was last drawn
  auto evaluate = [&](std::int64_t step) {
    // The held-out loss through train_step (the inference functions read folded copies of the
    // weights that training does not update); its gradients are thrown away.
    if (split.validationEnd <= split.validationBegin + static_cast<std::uint64_t>(o.seq))
      return;
    train::SequenceStream held(data, split.validationBegin, split.validationEnd, o.seq, 0, false);
    double sum = 0.0;
    std::int64_t counted = 0;
    for (std::int64_t k = 0; k < o.evalBatches; ++k) {
      const MicroBatch m = toMicroBatch(held.next(o.batch));
      sum += runTrainStep(*backend, m, o, 1.0);
      counted += m.counted;
    }
    backend->zeroGradients();
    const double loss = sum / static_cast<double>(std::max<std::int64_t>(counted, 1));
    log << nlohmann::json{{"step", step}, {"eval_loss", loss}, {"eval_tokens", counted}}.dump()
        << "\n"
        << std::flush;
    if (!o.quiet)
      std::cerr << fmt::format("xlc-train: step {:>6}  held-out loss {:.4f}\n", step, loss);
    if (o.plot && std::chrono::duration<double>(Clock::now() - lastPlot).count() >= 60.0) {
      drawPlot(o, artifact.model.name);
      lastPlot = Clock::now();
    }
    if (state.bestEvalStep == 0 || loss < state.bestEvalLoss) {
      state.bestEvalStep = step;
      state.bestEvalLoss = loss;
      if (o.saveBest) {
        saveCheckpoint(*backend, bestDir, state, configJson, extraFiles);
        if (!o.quiet)
          std::cerr << fmt::format("xlc-train: saved {} (lowest held-out loss so far)\n",
                                   bestDir);
      }
    }
  };

  const Clock::time_point start = Clock::now();
  double lastLoss = 0.0, lastNorm = 0.0;
  const std::int64_t firstStep = state.step;
  for (std::int64_t t = state.step; t < o.steps; ++t) {
    const Clock::time_point stepStart = Clock::now();
    std::vector<MicroBatch> micro;
    std::int64_t counted = 0;
    for (std::int64_t k = 0; k < o.gradAccum; ++k) {
      micro.push_back(toMicroBatch(stream.next(o.batch)));
      counted += micro.back().counted;
    }
    check(counted > 0, "step {}: no counted targets", t);
    const double gradScale = 1.0 / static_cast<double>(counted);
    double lossSum = 0.0;
    for (const MicroBatch &m : micro)
      lossSum += runTrainStep(*backend, m, o, gradScale);
    const double loss = lossSum / static_cast<double>(counted);

    std::vector<float> normSq(1);
    xlc::exec::CallArgs normCall;
    normCall.outputs.emplace("norm_sq", xlc::exec::OutputRequest{normSq});
    backend->call("grad_norm", normCall);
    const double norm = std::sqrt(std::max(0.0, static_cast<double>(normSq[0])));
    check(std::isfinite(loss) && std::isfinite(norm),
          "step {}: the loss ({}) or the gradient norm ({}) is not finite", t + 1, loss, norm);
    const float clipScale = o.clip > 0.0 ? train::clipScale(norm, o.clip) : 1.0f;
    const double lr = schedule.at(t);
    const train::AdamWStep s = train::adamwStep(o.adamw, t + 1, lr, clipScale);
    xlc::exec::CallArgs update;
    update.scalars = train::optimizerStepScalars(o.adamw, s);
    backend->call("optimizer_step", update);

    state.step = t + 1;
    state.tokensSeen += static_cast<std::uint64_t>(o.gradAccum * o.batch * o.seq);
    state.stream = stream.position();
    const double seconds = std::chrono::duration<double>(Clock::now() - stepStart).count();
    const double tokensPerSecond = static_cast<double>(o.gradAccum * o.batch * o.seq) / seconds;
    lastLoss = loss;
    lastNorm = norm;
    log << nlohmann::json{{"step", state.step},     {"loss", loss},
                          {"lr", lr},               {"grad_norm", norm},
                          {"clip_scale", clipScale}, {"tokens", state.tokensSeen},
                          {"tokens_per_s", tokensPerSecond}, {"ms", seconds * 1e3}}
               .dump()
        << "\n"
        << std::flush;
    if (!o.quiet) {
      // ETA from this run's mean step time so far (evaluations and checkpoints included).
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      const double eta = elapsed / static_cast<double>(state.step - firstStep) *
                         static_cast<double>(o.steps - state.step);
      std::cerr << fmt::format("xlc-train: step {:>6}/{}  loss {:.4f}  lr {:.3e}  |g| {:.3f}  "
                               "{:.0f} tok/s  ETA {}\n",
                               state.step, o.steps, loss, lr, norm, tokensPerSecond,
                               formatDuration(eta));
    }
    // Evaluation first: the checkpoint's trainer state then holds the best held-out loss so far.
    if (o.evalEvery > 0 && state.step % o.evalEvery == 0)
      evaluate(state.step);
    if (!o.noCheckpoint &&
        ((o.saveEvery > 0 && state.step % o.saveEvery == 0) || state.step == o.steps)) {
      saveCheckpoint(*backend, ckptDir, state, configJson, extraFiles);
      if (!o.quiet)
        std::cerr << fmt::format("xlc-train: saved {} (step {})\n", ckptDir, state.step);
    }
    if (o.crashAfterStep > 0 && state.step == o.crashAfterStep)
      std::_Exit(137); // a crash: no destructors, no flush beyond what is on disk
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (o.plot)
    drawPlot(o, artifact.model.name);
  if (o.json) {
    nlohmann::json summary = {{"model", artifact.model.name},
                              {"device", backend->kind()},
                              {"steps", state.step},
                              {"steps_this_run", state.step - firstStep},
                              {"tokens_seen", state.tokensSeen},
                              {"final_loss", lastLoss},
                              {"final_grad_norm", lastNorm},
                              {"seconds", seconds},
                              {"checkpoint", o.noCheckpoint ? nlohmann::json() : nlohmann::json(ckptDir)}};
    if (state.bestEvalStep > 0) {
      summary["best_eval_step"] = state.bestEvalStep;
      summary["best_eval_loss"] = state.bestEvalLoss;
      if (o.saveBest)
        summary["best_checkpoint"] = bestDir;
    }
    std::cout << summary.dump(2) << "\n";
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"xlc-train: train a compiled xLSTM model (an artifact from xlc-compile --training) "
               "on a token file (xlc-tokenize --token-file), on the CPU or a CUDA GPU, with "
               "resumable checkpoints.",
               "xlc-train"};
  Options o;
  app.add_option("--model", o.model,
                 "The model: an artifact compiled with xlc-compile --training, or a Hugging Face "
                 "config.json or xlstm IR (.mlir), which xlc-compile --training compiles into "
                 "<out>/model.xlca first")
      ->type_name("<artifact.xlca | config.json | model.mlir>")
      ->required();
  app.add_option("--xlc-compile", o.compiler,
                 "xlc-compile for a config.json or .mlir --model (default: the one of this build "
                 "tree, else xlc-compile on PATH)")
      ->type_name("<path>");
  app.add_option("--weights", o.weights,
                 "Initial weights: a Hugging Face model directory (model.safetensors, "
                 "config.json); not needed with --resume once a checkpoint exists")
      ->type_name("<hf-dir>");
  app.add_option("--data", o.dataFiles,
                 "Training data: one token file (xlc-tokenize --token-file), or text files, "
                 "each a document, tokenised once into <out>/data.tok (reused while the texts "
                 "and the tokenizer are unchanged)")
      ->type_name("<file.tok | text ...>")
      ->required();
  app.add_option("--tokenizer", o.tokenizer,
                 "tokenizer.json for text --data (default: the one beside --weights)")
      ->type_name("<tokenizer.json>");
  app.add_option("--out", o.out,
                 "Run directory: checkpoint/ (replaced atomically), log.jsonl (a line per step)")
      ->type_name("<dir>")
      ->required();
  xlc::tools::addBackendOptions(app, o.device, o.backend);
  app.add_option("--batch", o.batch, "Sequences per micro-batch")->capture_default_str();
  app.add_option("--seq", o.seq, "Tokens per sequence")->capture_default_str();
  app.add_option("--grad-accum", o.gradAccum, "Micro-batches per optimizer step")
      ->capture_default_str();
  app.add_option("--steps", o.steps, "Optimizer steps of the whole run")->capture_default_str();
  app.add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
  app.add_option("--schedule", o.schedule, "Learning-rate schedule after the warm-up")
      ->check(CLI::IsMember({"constant", "cosine", "exponential"}))
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "Linear warm-up steps")->capture_default_str();
  app.add_option("--cooldown", o.cooldown, "Linear cool-down steps (exponential schedule)")
      ->capture_default_str();
  app.add_option("--end-factor", o.endFactor,
                 "cosine: the floor as a fraction of the peak; exponential: the learning rate at "
                 "the cool-down's start as one")
      ->capture_default_str();
  app.add_option("--clip", o.clip, "Global gradient-norm clipping threshold; 0 = off")
      ->capture_default_str();
  app.add_option("--weight-decay", o.adamw.weightDecay,
                 "AdamW weight decay (projection matrices only)")
      ->capture_default_str();
  app.add_option("--beta1", o.adamw.beta1, "AdamW β1")->capture_default_str();
  app.add_option("--beta2", o.adamw.beta2, "AdamW β2")->capture_default_str();
  app.add_option("--adam-eps", o.adamw.eps, "AdamW ε")->capture_default_str();
  app.add_option("--seed", o.seed, "Shuffle seed of the training windows")->capture_default_str();
  app.add_option("--val-fraction", o.validationFraction,
                 "Fraction of the token file held out for evaluation (its end)")
      ->capture_default_str();
  app.add_option("--eval-every", o.evalEvery, "Held-out loss every this many steps; 0 = never")
      ->capture_default_str();
  app.add_option("--eval-batches", o.evalBatches, "Micro-batches per evaluation")
      ->capture_default_str();
  app.add_option("--save-every", o.saveEvery,
                 "Checkpoint every this many steps (and always at the end); 0 = at the end only")
      ->capture_default_str();
  app.add_flag("--no-checkpoint", o.noCheckpoint,
               "Write no checkpoint/ (throughput measurements of large models: a 1.4B model's "
               "checkpoint is 20 GB)")
      ->excludes("--save-every");
  app.add_flag("--save-best", o.saveBest,
               "After each evaluation that lowers the held-out loss, also write <out>/best (a "
               "checkpoint like checkpoint/, atomically)");
  app.add_flag("--resume", o.resume,
               "Continue from <out>/checkpoint when there is one (bit for bit: same settings)");
  app.add_option("--crash-after-step", o.crashAfterStep,
                 "Testing: exit abruptly (as a crash) right after this step; 0 = never")
      ->capture_default_str();
  app.add_option("--gradients-out", o.gradientsOut,
                 "Instead of training: one train_step on the training split's first --batch "
                 "windows in file order, and every checkpoint tensor's gradient of the mean loss "
                 "written to this file (fp32 safetensors; the loss in its metadata)")
      ->type_name("<file.safetensors>");
  app.add_flag("--plot", o.plot,
               "Draw <out>/loss.png (training and held-out loss per step) with "
               "scripts/plot-train.py (matplotlib) at the end, and at evaluations a minute or "
               "more after the last plot");
  app.add_option("--python", o.python, "Python for the plot script")->capture_default_str();
  app.add_option("--scripts-dir", o.scriptsDir,
                 "Where plot-train.py is (default: $XLC_REPO_DIR/scripts, else scripts/ of the "
                 "repository this binary is in, else ./scripts)")
      ->type_name("<dir>");
  app.add_flag("--json", o.json, "Print a JSON summary of the run on stdout");
  app.add_flag("-q,--quiet", o.quiet, "No progress lines on stderr");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const std::exception &e) {
    std::cerr << "xlc-train: error: " << e.what() << "\n";
    return 1;
  }
}
