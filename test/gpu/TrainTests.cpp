//===- TrainTests.cpp - The CUDA backend's training functions against the CPU's ===//
//
// The tiny model compiled with --training ($XLC_GPU_ARTIFACTS/xlstm-tiny-train.xlca), random
// bf16 weights, one train_step, grad_norm and optimizer_step on the CUDA backend and on the CPU
// backend (fp32; its train_step equals the float64 objective's gradients in CI,
// test/runtime/exec/TrainStepTest.cpp). The GPU keeps activations and the logits' and gates'
// gradients in bf16 (fp32 accumulation, fp32 weight gradients and master weights): the loss,
// every checkpoint tensor's gradient, the norm and the updated master weights must agree to what
// that rounding implies. The same for the low-memory mode ($XLC_GPU_ARTIFACTS/
// xlstm-tiny-train-lowmem.xlca: bf16 GEMM gradients and moments, no masters, stochastic
// rounding on both backends with the same bits), whose updated working weights are compared.
// Skips without a GPU or the artifact (fails under XLC_REQUIRE_GPU).
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/cuda/DriverApi.h"
#include "runtime/exec/cpu/CpuBackend.h"
#include "runtime/exec/cuda/CudaBackend.h"
#include "runtime/reference/RandomCheckpoint.h"
#include "runtime/train/AdamW.h"
#include "runtime/weights/Checkpoint.h"
#include "test/gpu/harness/ArtifactDirs.h"
#include "test/gpu/harness/GpuSkip.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>

namespace xlc::exec {
namespace {
namespace fs = std::filesystem;

double relativeL2(std::span<const float> got, std::span<const float> want) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]))
      return INFINITY;
    num += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    den += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

std::map<std::string, std::vector<float>> byName(std::vector<NamedTensor> tensors) {
  std::map<std::string, std::vector<float>> out;
  for (NamedTensor &t : tensors)
    out[t.name] = std::move(t.values);
  return out;
}

/// The largest relativeL2 over the tensors of |want| (by name; |got| must have the same names).
double worstRelativeL2(std::vector<NamedTensor> gotTensors, std::vector<NamedTensor> wantTensors) {
  const auto got = byName(std::move(gotTensors)), want = byName(std::move(wantTensors));
  EXPECT_EQ(got.size(), want.size());
  double worst = 0.0;
  for (const auto &[name, w] : want) {
    const auto it = got.find(name);
    worst = std::max(worst, it == got.end() ? INFINITY : relativeL2(it->second, w));
  }
  return worst;
}

/// One train_step, grad_norm and optimizer_step of |file| (an artifact of the tiny model) on both
/// backends.
void cudaMatchesCpu(const std::string &file, bool lowMemory) {
  std::string reason;
  if (!cuda::cudaAvailable(&reason))
    XLC_SKIP_OR_FAIL("no GPU: " << reason);
  const fs::path path = test::artifactDir() / file;
  if (!fs::exists(path))
    XLC_SKIP_OR_FAIL("no artifact " << path << " (xlc-compile models/xlstm-tiny/config.json "
                                                "--training; scripts/gpu-bundle.sh makes it)");
  const artifact::Artifact a = artifact::loadArtifact(path.string());
  const fs::path work = fs::temp_directory_path() / "xlc-gpu-train";
  fs::remove_all(work);
  ref::writeRandomCheckpoint((test::repoDir() / "models/xlstm-tiny/config.json").string(),
                             (work / "weights").string(),
                             {.seed = 11, .dtype = weights::DType::BF16});
  const weights::Checkpoint checkpoint = weights::Checkpoint::open((work / "weights").string());
  constexpr std::uint64_t kBatch = 2, kSeq = 77; // a partial last chunk
  const Limits limits{kBatch, kSeq, {"train_step", "grad_norm", "optimizer_step"}};
  CudaBackendOptions options;
  options.cacheDir = (work / "cache").string();
  std::unique_ptr<Backend> cpu = createCpuBackend(a, checkpoint, limits);
  std::unique_ptr<Backend> gpu = createCudaBackend(a, checkpoint, limits, options);

  std::mt19937_64 rng(3);
  std::vector<std::int32_t> tokens(kBatch * kSeq), targets(kBatch * kSeq);
  for (auto &t : tokens)
    t = static_cast<std::int32_t>(rng() % a.model.vocabSize);
  std::int64_t counted = 0;
  for (std::size_t p = 0; p < targets.size(); ++p) {
    targets[p] = (p + 1) % kSeq == 0 ? -1 : tokens[p + 1];
    counted += targets[p] >= 0;
  }
  // Documents starting inside both sequences, at a chunk's first token and inside a chunk.
  std::vector<std::uint8_t> resets(kBatch * kSeq, 0);
  resets[64] = 1;
  resets[kSeq + 20] = 1;
  auto step = [&](Backend &be) {
    std::vector<float> tokenLoss(kBatch * kSeq);
    CallArgs args;
    args.batch = kBatch;
    args.seq = kSeq;
    args.inputs.emplace("tokens", std::as_bytes(std::span(tokens)));
    args.inputs.emplace("targets", std::as_bytes(std::span(targets)));
    args.inputs.emplace("resets", std::as_bytes(std::span(resets)));
    args.scalars.emplace("grad_scale", 1.0 / static_cast<double>(counted));
    args.outputs.emplace("token_loss", OutputRequest{tokenLoss});
    be.call("train_step", args);
    double sum = 0.0;
    for (float l : tokenLoss)
      sum += l;
    std::vector<float> normSq(1);
    CallArgs norm;
    norm.outputs.emplace("norm_sq", OutputRequest{normSq});
    be.call("grad_norm", norm);
    return std::pair{sum / static_cast<double>(counted), std::sqrt(normSq[0])};
  };
  const auto [cpuLoss, cpuNorm] = step(*cpu);
  const auto [gpuLoss, gpuNorm] = step(*gpu);
  std::printf("[train] loss cpu %.6f cuda %.6f; |g| cpu %.6f cuda %.6f\n", cpuLoss, gpuLoss,
              cpuNorm, gpuNorm);
  EXPECT_NEAR(gpuLoss, cpuLoss, 1e-2 * cpuLoss);
  EXPECT_NEAR(gpuNorm, cpuNorm, 3e-2 * cpuNorm);

  // Every checkpoint tensor's gradient. bf16 activations and bf16 gradients of the logits and
  // gates against fp32 throughout: a few 1e-3 to 1e-2 relative; a wrong index or missing term is
  // O(1).
  const auto want = byName(cpu->exportGradients()), got = byName(gpu->exportGradients());
  ASSERT_EQ(got.size(), want.size());
  double worst = 0.0;
  for (const auto &[name, w] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    const double err = relativeL2(got.at(name), w);
    std::printf("[train]   %-60s grad rel err %.3e\n", name.c_str(), err);
    worst = std::max(worst, err);
    EXPECT_LT(err, 5e-2) << name;
  }
  std::printf("[train] worst gradient rel err %.3e over %zu tensors\n", worst, want.size());

  // One AdamW update: the masters move by about lr per element on both.
  const train::AdamWConfig config;
  const train::AdamWStep s = train::adamwStep(config, 1, 1e-3, 1.0f);
  CallArgs update;
  update.scalars = train::optimizerStepScalars(config, s);
  cpu->call("optimizer_step", update);
  gpu->call("optimizer_step", update);
  if (!lowMemory) {
    const double worstMaster =
        worstRelativeL2(gpu->exportOptimizerState(artifact::OptimizerRole::Master),
                        cpu->exportOptimizerState(artifact::OptimizerRole::Master));
    std::printf("[train] worst master rel err after one update %.3e\n", worstMaster);
    EXPECT_LT(worstMaster, 1e-2);
  } else {
    // No masters: the bf16 weights themselves, stochastically rounded with the same bits on
    // both; they differ where the gradients' difference moves an update across a rounding step.
    EXPECT_TRUE(cpu->exportOptimizerState(artifact::OptimizerRole::Master).empty());
    const double worstWeight = worstRelativeL2(gpu->exportParameters(), cpu->exportParameters());
    std::printf("[train] worst weight rel err after one update %.3e\n", worstWeight);
    EXPECT_LT(worstWeight, 1e-2);
    const double worstMoment =
        worstRelativeL2(gpu->exportOptimizerState(artifact::OptimizerRole::ExpAvg),
                        cpu->exportOptimizerState(artifact::OptimizerRole::ExpAvg));
    std::printf("[train] worst exp_avg rel err after one update %.3e\n", worstMoment);
    EXPECT_LT(worstMoment, 5e-2);
  }
  // The gradients were consumed on both.
  for (const auto &[name, g] : byName(gpu->exportGradients()))
    for (float x : g)
      ASSERT_EQ(x, 0.0f) << name;
  fs::remove_all(work);
}

TEST(TrainStep, CudaMatchesCpu) { cudaMatchesCpu("xlstm-tiny-train.xlca", false); }

TEST(TrainStep, LowMemoryCudaMatchesCpu) { cudaMatchesCpu("xlstm-tiny-train-lowmem.xlca", true); }

} // namespace
} // namespace xlc::exec
