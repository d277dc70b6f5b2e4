//===- Measure.cpp - Running xlc-bench's cases on a backend ---------------===//

#include "tools/xlc-bench/Measure.h"

#include "runtime/exec/Generator.h"
#include "runtime/support/Error.h"
#include "runtime/train/AdamW.h"

#if XLC_HAVE_CUDA_BACKEND
#include "runtime/cuda/Device.h"
#include "runtime/cuda/DriverApi.h"
#endif

#include <chrono>
#include <cmath>
#include <fstream>
#include <span>
#include <sstream>

namespace xlc::bench {

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// The process's resident set (VmRSS of /proc/self/status).
class RssProbe final : public MemoryProbe {
public:
  std::string method() const override { return "VmRSS of /proc/self/status (host memory)"; }
  MemoryReading read() override {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
      if (line.starts_with("VmRSS:")) {
        std::istringstream fields(line.substr(6));
        double kib = 0;
        if (fields >> kib)
          return {kib * 1024.0, true};
      }
    return {};
  }
  std::string deviceName() const override {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line))
      if (line.starts_with("model name")) {
        const std::size_t colon = line.find(':');
        if (colon != std::string::npos && colon + 2 <= line.size())
          return line.substr(colon + 2);
      }
    return "CPU";
  }
};

#if XLC_HAVE_CUDA_BACKEND
/// The device's memory in use (total − free), all processes and contexts included: on a GPU of
/// its own, this process's context and allocations.
class CudaProbe final : public MemoryProbe {
public:
  CudaProbe() : device_(cuda::CudaDevice::open(0)) {}
  std::string method() const override {
    return "cuMemGetInfo on device 0 (total - free: this process's context and allocations, "
           "and anything else on the device)";
  }
  MemoryReading read() override {
    device_.makeCurrent();
    std::size_t freeBytes = 0, totalBytes = 0;
    XLC_CU_CHECK(cuda::driver().cuMemGetInfo_v2(&freeBytes, &totalBytes));
    return {static_cast<double>(totalBytes - freeBytes), true};
  }
  std::string deviceName() const override { return device_.name(); }

private:
  cuda::CudaDevice device_;
};
#endif

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<std::int32_t> flatten(const std::vector<std::vector<std::int32_t>> &prompts) {
  std::vector<std::int32_t> tokens;
  for (const auto &p : prompts)
    tokens.insert(tokens.end(), p.begin(), p.end());
  return tokens;
}

void runPrefill(exec::Backend &backend, CaseResult &r, const RunSettings &s,
                const std::vector<std::vector<std::int32_t>> &prompts, const Progress &progress) {
  exec::GenerateOptions options;
  options.maxNewTokens = 1;
  options.ignoreEos = true;
  exec::Generator generator(backend);
  for (std::size_t rep = 0; rep < s.warmup + s.reps; ++rep) {
    const exec::GenerateResult g = generator.generate(prompts, options);
    r.prefillCalls = g.stats.prefillCalls;
    (rep < s.warmup ? r.warmupRepeats : r.repeats).push_back(g.stats.timeToFirstTokenSeconds);
    if (progress)
      progress(fmt::format("{} {} {}/{}: {:.2f} ms", r.bench.name,
                           rep < s.warmup ? "warm-up" : "repeat",
                           rep < s.warmup ? rep + 1 : rep + 1 - s.warmup,
                           rep < s.warmup ? s.warmup : s.reps,
                           g.stats.timeToFirstTokenSeconds * 1e3));
  }
}

void runDecode(exec::Backend &backend, CaseResult &r, const RunSettings &s,
               const std::vector<std::vector<std::int32_t>> &prompts, const Progress &progress) {
  const std::size_t blocks = s.warmup + s.reps;
  exec::GenerateOptions options;
  options.maxNewTokens = 1 + blocks * s.decodeSteps;
  options.ignoreEos = true;
  // times[j]: when generated token j of sequence 0 arrived (token 0 from the prefill). Sequence
  // 0 is always live (EOS ignored), so every step reports it first.
  std::vector<Clock::time_point> times;
  times.reserve(options.maxNewTokens);
  exec::GenerateCallbacks callbacks;
  callbacks.onToken = [&](std::size_t sequence, std::int32_t) {
    if (sequence != 0)
      return;
    times.push_back(Clock::now());
    const std::size_t step = times.size() - 1;
    if (progress && step > 0 && step % s.decodeSteps == 0) {
      const std::size_t block = step / s.decodeSteps;
      const double seconds =
          std::chrono::duration<double>(times[step] - times[step - s.decodeSteps]).count();
      progress(fmt::format("{} {} {}/{}: {} steps in {:.2f} ms, {:.1f} tokens/s", r.bench.name,
                           block <= s.warmup ? "warm-up block" : "block",
                           block <= s.warmup ? block : block - s.warmup,
                           block <= s.warmup ? s.warmup : s.reps, s.decodeSteps, seconds * 1e3,
                           static_cast<double>(r.bench.batch * s.decodeSteps) / seconds));
    }
  };
  exec::Generator generator(backend);
  const exec::GenerateResult g = generator.generate(prompts, options, callbacks);
  check(times.size() == options.maxNewTokens,
        "case {}: sequence 0 produced {} tokens, {} expected", r.bench.name, times.size(),
        options.maxNewTokens);
  r.prefillCalls = g.stats.prefillCalls;
  r.decodeTtftSeconds = g.stats.timeToFirstTokenSeconds;
  for (std::size_t b = 0; b < blocks; ++b) {
    const double seconds = std::chrono::duration<double>(times[(b + 1) * s.decodeSteps] -
                                                         times[b * s.decodeSteps])
                               .count();
    (b < s.warmup ? r.warmupRepeats : r.repeats).push_back(seconds);
  }
}

/// A repeat = one optimizer step, as xlc-train takes it: train_step (the gradients of the mean
/// loss), grad_norm (for clipping), optimizer_step (AdamW at a small learning rate, so the
/// weights stay sane over the repeats). Every call is synchronous (its outputs come back, or the
/// backend waits for the device at its end); the host clock times each of the three, and a
/// repeat is their sum.
void runTrain(exec::Backend &backend, CaseResult &r, const RunSettings &s,
              const std::vector<std::vector<std::int32_t>> &sequences, const Progress &progress) {
  TrainBatch batch(sequences);
  exec::CallArgs step = batch.trainStepArgs(r.bench.batch, r.bench.prompt);
  std::vector<float> normSq(1);
  exec::CallArgs norm;
  norm.outputs.emplace("norm_sq", exec::OutputRequest{normSq});
  backend.zeroGradients();
  for (std::size_t rep = 0; rep < s.warmup + s.reps; ++rep) {
    // AdamW at a small learning rate (β1 0.9, β2 0.95, λ 0.1), update number rep + 1.
    const train::AdamWConfig adamw;
    exec::CallArgs update;
    update.scalars = train::optimizerStepScalars(
        adamw, train::adamwStep(adamw, static_cast<std::int64_t>(rep + 1), 1e-5, 1.0f));
    const std::pair<const char *, const exec::CallArgs *> calls[] = {
        {"train_step", &step}, {"grad_norm", &norm}, {"optimizer_step", &update}};
    if (r.callSeconds.empty())
      for (const auto &[function, args] : calls)
        r.callSeconds.emplace_back(function, std::vector<double>());
    double seconds = 0;
    for (std::size_t i = 0; i < std::size(calls); ++i) {
      const Clock::time_point start = Clock::now();
      backend.call(calls[i].first, *calls[i].second);
      const double t = secondsSince(start);
      seconds += t;
      if (rep >= s.warmup)
        r.callSeconds[i].second.push_back(t);
    }
    (rep < s.warmup ? r.warmupRepeats : r.repeats).push_back(seconds);
    check(std::isfinite(normSq[0]), "case {}: the gradient norm is not finite", r.bench.name);
    if (progress) {
      double loss = 0;
      for (float l : batch.tokenLoss)
        loss += l;
      progress(fmt::format("{} {} {}/{}: {:.2f} ms, loss {:.4f}, {:.0f} tokens/s", r.bench.name,
                           rep < s.warmup ? "warm-up" : "repeat",
                           rep < s.warmup ? rep + 1 : rep + 1 - s.warmup,
                           rep < s.warmup ? s.warmup : s.reps, seconds * 1e3,
                           loss / static_cast<double>(batch.targets.size()),
                           static_cast<double>(batch.targets.size()) / seconds));
    }
  }
}

} // namespace

TrainBatch::TrainBatch(const std::vector<std::vector<std::int32_t>> &sequences) {
  for (const std::vector<std::int32_t> &seq : sequences) {
    tokens.insert(tokens.end(), seq.begin(), seq.end() - 1);
    targets.insert(targets.end(), seq.begin() + 1, seq.end());
  }
  tokenLoss.resize(tokens.size());
  resets.assign(tokens.size(), 0);
}

exec::CallArgs TrainBatch::trainStepArgs(std::uint64_t batch, std::uint64_t seq) {
  exec::CallArgs args;
  args.batch = batch;
  args.seq = seq;
  args.inputs.emplace("tokens", std::as_bytes(std::span(tokens)));
  args.inputs.emplace("targets", std::as_bytes(std::span(targets)));
  args.inputs.emplace("resets", std::as_bytes(std::span(resets)));
  args.scalars.emplace("grad_scale", 1.0 / static_cast<double>(targets.size()));
  args.outputs.emplace("token_loss", exec::OutputRequest{tokenLoss});
  return args;
}

std::int32_t promptToken(std::uint64_t seed, std::uint64_t sequence, std::uint64_t position,
                         std::uint64_t vocab) {
  const std::uint64_t key = (sequence << 32) | (position & 0xFFFFFFFFull);
  return static_cast<std::int32_t>(3 + splitmix64(seed ^ key) % (vocab - 3));
}

std::vector<std::vector<std::int32_t>> makePrompts(std::uint64_t batch, std::uint64_t length,
                                                   std::uint64_t vocab, std::uint64_t seed) {
  check(vocab > 3, "the vocabulary has {} tokens; xlc-bench's prompts need more than 3", vocab);
  std::vector<std::vector<std::int32_t>> prompts(batch, std::vector<std::int32_t>(length));
  for (std::uint64_t i = 0; i < batch; ++i)
    for (std::uint64_t t = 0; t < length; ++t)
      prompts[i][t] = promptToken(seed, i, t, vocab);
  return prompts;
}

std::unique_ptr<MemoryProbe> makeMemoryProbe(const std::string &device) {
#if XLC_HAVE_CUDA_BACKEND
  if (device == "cuda")
    return std::make_unique<CudaProbe>();
#endif
  check(device == "cpu", "no memory probe for device '{}'", device);
  return std::make_unique<RssProbe>();
}

FloatStorage floatStorage(std::string_view device) {
  return device == "cpu" ? FloatStorage::Fp32 : FloatStorage::ArtifactDtypes;
}

Work caseWork(const exec::Plan &plan, const BenchCase &c, std::uint64_t maxSeq,
              std::size_t decodeSteps, FloatStorage storage) {
  switch (c.kind) {
  case CaseKind::Prefill: {
    Work total;
    const std::vector<std::uint64_t> lengths(c.batch, c.prompt);
    for (const exec::PrefillCall &call :
         exec::planPrefill(lengths, maxSeq, plan.artifact().model.chunkSize))
      total += callWork(plan, "prefill", {call.batch, call.seq, call.firstSlot}, storage);
    return total;
  }
  case CaseKind::Decode:
    return callWork(plan, "decode_step", {c.batch, 1, 0}, storage)
        .scaled(static_cast<double>(decodeSteps));
  case CaseKind::ProfilePrefill:
    return callWork(plan, "prefill", {c.batch, c.prompt, 0}, storage);
  case CaseKind::ProfileDecode:
    return callWork(plan, "decode_step", {c.batch, 1, 0}, storage);
  case CaseKind::Train: {
    Work total = callWork(plan, "train_step", {c.batch, c.prompt, 0}, storage);
    total += callWork(plan, "grad_norm", {1, 1, 0}, storage);
    total += callWork(plan, "optimizer_step", {1, 1, 0}, storage);
    return total;
  }
  case CaseKind::ProfileTrain:
    return callWork(plan, "train_step", {c.batch, c.prompt, 0}, storage);
  }
  return {};
}

void runCase(exec::Backend &backend, CaseResult &r, const RunSettings &s,
             const DeviceLimit &limit, const Progress &progress) {
  const BenchCase &c = r.bench;
  const std::uint64_t vocab = backend.vocabSize();
  const Clock::time_point start = Clock::now();
  const FloatStorage storage = floatStorage(backend.kind());
  r.work = caseWork(backend.plan(), c, r.maxSeq, s.decodeSteps, storage);
  r.bound = limitTime(r.work, limit, /*useTraffic=*/false);
  switch (c.kind) {
  case CaseKind::Prefill:
    runPrefill(backend, r, s, makePrompts(c.batch, c.prompt, vocab, s.seed), progress);
    break;
  case CaseKind::Decode:
    runDecode(backend, r, s, makePrompts(c.batch, c.prompt, vocab, s.seed), progress);
    break;
  case CaseKind::ProfilePrefill:
  case CaseKind::ProfileDecode: {
    const bool prefill = c.kind == CaseKind::ProfilePrefill;
    const std::string function = prefill ? "prefill" : "decode_step";
    const std::uint64_t seq = prefill ? c.prompt : 1;
    const std::vector<std::int32_t> tokens = flatten(makePrompts(c.batch, seq, vocab, s.seed));
    exec::CallArgs args;
    args.inputs.emplace(backend.plan().function(function).function->inputs.at(0).name,
                        std::as_bytes(std::span(tokens)));
    r.profile = profileCall(backend, function, {c.batch, seq, 0}, args, s.warmup, s.reps, limit,
                            storage);
    r.repeats = r.profile->stepSumSeconds;
    break;
  }
  case CaseKind::Train:
    runTrain(backend, r, s, makePrompts(c.batch, c.prompt + 1, vocab, s.seed), progress);
    break;
  case CaseKind::ProfileTrain: {
    TrainBatch batch(makePrompts(c.batch, c.prompt + 1, vocab, s.seed));
    r.profile = profileCall(backend, "train_step", {c.batch, c.prompt, 0},
                            batch.trainStepArgs(c.batch, c.prompt), s.warmup, s.reps, limit,
                            storage);
    backend.zeroGradients();
    r.repeats = r.profile->stepSumSeconds;
    break;
  }
  }
  if (progress)
    progress(fmt::format("{} done in {:.1f} s", c.name, secondsSince(start)));
}

} // namespace xlc::bench
