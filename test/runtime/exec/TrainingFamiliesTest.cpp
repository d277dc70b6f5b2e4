//===- TrainingFamiliesTest.cpp - Training kernel families through the plan executor -===//
//
// Each training family, rendered from the registry, in a one-step artifact function that the
// CPU backend validates and executes like any other: parameters, duties (a zeroed counter, an
// accumulated gradient) and the CPU implementation, against the float64 reference. The device
// side of the same families is checked on the SIMT emulator (test/runtime/cuda) and the GPU.
//
//===----------------------------------------------------------------------===//

#include "runtime/device/stochastic_rounding.cuh"
#include "runtime/exec/Backend.h"
#include "runtime/exec/cpu/CpuBackend.h"
#include "runtime/kernels/KernelFamily.h"
#include "runtime/reference/BlockOps.h"
#include "runtime/reference/MlstmCellBackward.h"
#include "runtime/support/Error.h"
#include "runtime/train/AdamW.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"

#include "test/runtime/ErrorMatchers.h"
#include "test/runtime/exec/BackwardGemmArtifact.h"
#include "test/runtime/exec/CpuTestUtil.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <unistd.h>

namespace xlc::exec {
namespace {

namespace fs = std::filesystem;
namespace art = xlc::artifact;
using xlc::testing::Bf16Values;
using xlc::testing::randomBf16;

constexpr std::uint64_t kDim = 16;
enum : art::BufferId { kX, kDy, kW, kDx, kDw, kPartial, kCounter };

/// backward(x, dy) → dx, with dw [16] a gradient buffer the step accumulates into; w from a
/// checkpoint tensor "w".
art::Artifact rmsNormBackwardArtifact() {
  const art::Dim B = art::Dim::batch(), S = art::Dim::seq();
  art::Artifact a;
  a.compiler = {"xlc", "test"};
  a.targetArch = "sm_90a";
  a.deviceHeadersHash = "00";
  a.model = {"rms-norm-backward", 64, kDim, 1, 16, 0, 2, 1};
  a.sourceName = "rms-norm-backward.xlca";
  const art::Expr perToken = art::Expr::batchSeq(256);
  a.buffers = {
      {kX, "x", art::BufferClass::Input, art::DType::BF16, {B, S, kDim}, {}, {}},
      {kDy, "dy", art::BufferClass::Input, art::DType::BF16, {B, S, kDim}, {}, {}},
      {kW, "w", art::BufferClass::Weight, art::DType::BF16, {kDim}, {}, {}},
      {kDx, "dx", art::BufferClass::Output, art::DType::BF16, {B, S, kDim}, {}, {}},
      {kDw, "dw", art::BufferClass::Gradient, art::DType::F32, {kDim}, {}, {}},
      // One row of partial sums per block of rows: at most B·S rows.
      {kPartial, "dw_partial", art::BufferClass::Workspace, art::DType::F32, {B, S, kDim},
       art::Expr::constant(0), {}},
      {kCounter, "counter", art::BufferClass::Workspace, art::DType::I64, {1}, perToken, {}},
  };
  a.arenaBytes = art::Expr{256, 0, 0, 256, 1};
  a.weights = {{kW, {"w"}, {{kDim}}, 0, std::nullopt}};
  const kernels::Config config = {{"dtype", "bf16"},      {"dim", kDim},        {"threads", 32},
                                  {"rows_per_block", 4}, {"has_weight", true}, {"residual", false}};
  art::Kernel k = kernels::renderKernel(*kernels::findFamily("rms_norm_backward"), config,
                                        "#xk.tile<rows = 4>");
  k.name = "rms_norm_backward_0";
  a.kernels = {k};
  art::Step step = art::Step::makeLaunch(
      "rms_norm_backward", {{"eps", 1e-6}, {"has_weight", true}, {"residual", false}}, 0,
      {art::Arg::buffer(kX), art::Arg::i64(0), art::Arg::i64(kDim), art::Arg::buffer(kW),
       art::Arg::buffer(kDy), art::Arg::i64(0), art::Arg::buffer(kDx), art::Arg::buffer(kPartial),
       art::Arg::buffer(kDw), art::Arg::buffer(kCounter), art::Arg::symbol(art::Symbol::BS),
       art::Arg::f32(1e-6f)});
  step.duties = {{art::DutyKind::Zero, kCounter}, {art::DutyKind::Accumulate, kDw}};
  art::Function f;
  f.name = "backward";
  f.inputs = {{"x", kX}, {"dy", kDy}};
  f.outputs = {{"dx", kDx}};
  f.steps = {step};
  a.functions = {f};
  return a;
}

TEST(TrainingFamiliesTest, RmsNormBackwardAccumulatesItsWeightGradientAcrossCalls) {
  const fs::path dir =
      fs::temp_directory_path() / ("xlc-training-families-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const Bf16Values w = randomBf16(kDim, 3);
  weights::TensorToWrite t{"w", weights::DType::BF16, {kDim},
                           {reinterpret_cast<const std::uint8_t *>(w.bits.data()),
                            w.bits.size() * 2}};
  weights::writeSafetensors((dir / "w.safetensors").string(), std::span(&t, 1));
  const weights::Checkpoint checkpoint =
      weights::Checkpoint::open((dir / "w.safetensors").string());
  const art::Artifact a = rmsNormBackwardArtifact(); // the backend keeps a reference
  std::unique_ptr<Backend> cpu = createCpuBackend(a, checkpoint, {2, 8}, 2);

  const std::int64_t rows = 2 * 7;
  ref::Tensor wt({static_cast<std::int64_t>(kDim)});
  for (std::uint64_t i = 0; i < kDim; ++i)
    wt.data[i] = w.values[i];
  ref::Tensor dwExpected({static_cast<std::int64_t>(kDim)});
  for (int call = 0; call < 2; ++call) {
    const Bf16Values x = randomBf16(rows * kDim, 10 + call), dy = randomBf16(rows * kDim, 20 + call);
    std::vector<float> dx(rows * kDim);
    CallArgs args;
    args.batch = 2;
    args.seq = 7;
    args.inputs.emplace("x", std::as_bytes(std::span(x.bits)));
    args.inputs.emplace("dy", std::as_bytes(std::span(dy.bits)));
    args.outputs.emplace("dx", OutputRequest{dx});
    cpu->call("backward", args);
    const ref::Tensor xt({rows, static_cast<std::int64_t>(kDim)},
                         std::vector<double>(x.values.begin(), x.values.end()));
    const ref::Tensor dyt({rows, static_cast<std::int64_t>(kDim)},
                          std::vector<double>(dy.values.begin(), dy.values.end()));
    const ref::NormGrads g = ref::rmsNormBackward(xt, wt, 1e-6, dyt);
    for (std::uint64_t i = 0; i < kDim; ++i)
      dwExpected.data[i] += g.weight.data[i];
    // dx is bf16 in the artifact: one rounding.
    EXPECT_LT(ref::relativeError(
                  ref::Tensor(g.x.shape, std::vector<double>(dx.begin(), dx.end())), g.x),
              4e-3);
    const std::vector<float> dw = cpu->readBuffer(kDw, {2, 7});
    EXPECT_LT(ref::relativeError(ref::Tensor(dwExpected.shape,
                                             std::vector<double>(dw.begin(), dw.end())),
                                 dwExpected),
              1e-5)
        << "after call " << call;
  }
  fs::remove_all(dir);
}

/// backward(gu, dout) → d: the SwiGLU gradient of the fused [gate | up] input [B, S, 2·8], written
/// as the fused [dgate | dup] output.
TEST(TrainingFamiliesTest, SwigluBackwardWritesTheFusedGradient) {
  constexpr std::uint64_t kF = 8;
  const art::Dim B = art::Dim::batch(), S = art::Dim::seq();
  enum : art::BufferId { kGu, kDout, kD };
  art::Artifact a;
  a.compiler = {"xlc", "test"};
  a.targetArch = "sm_90a";
  a.deviceHeadersHash = "00";
  a.model = {"swiglu-backward", 64, kF, 1, 16, 0, 2, 1};
  a.sourceName = "swiglu-backward.xlca";
  a.buffers = {
      {kGu, "gu", art::BufferClass::Input, art::DType::BF16, {B, S, 2 * kF}, {}, {}},
      {kDout, "dout", art::BufferClass::Input, art::DType::BF16, {B, S, kF}, {}, {}},
      {kD, "d", art::BufferClass::Output, art::DType::F32, {B, S, 2 * kF}, {}, {}},
  };
  a.arenaBytes = art::Expr::constant(0);
  const kernels::Config config = {{"dtype", "f32"}, {"dim", kF}, {"threads", 32}};
  // The kernel's dtype is the buffers' element type: f32 here for d; gu and dout are bf16 — a
  // family reads one T, so the artifact's validator must refuse this mix.
  art::Kernel k =
      kernels::renderKernel(*kernels::findFamily("swiglu_backward"), config, "#xk.tile<threads = 32>");
  k.name = "swiglu_backward_0";
  a.kernels = {k};
  const std::vector<art::Arg> args{
      art::Arg::buffer(kGu),   art::Arg::i64(0),  art::Arg::i64(2 * kF),
      art::Arg::buffer(kGu),   art::Arg::i64(kF), art::Arg::i64(2 * kF),
      art::Arg::buffer(kDout), art::Arg::buffer(kD), art::Arg::i64(0),
      art::Arg::i64(kF),       art::Arg::i64(2 * kF), art::Arg::symbol(art::Symbol::BS)};
  art::Function f;
  f.name = "backward";
  f.inputs = {{"gu", kGu}, {"dout", kDout}};
  f.outputs = {{"d", kD}};
  f.steps = {art::Step::makeLaunch("swiglu_backward", nlohmann::json::object(), 0, args)};
  a.functions = {f};
  const weights::Checkpoint none;
  xlc::testing::expectError([&] { createCpuBackend(a, none, {2, 8}, 2); },
                            {"parameter 'gate' of family 'swiglu_backward' takes f32 elements",
                             "buffer 0 'gu' is bf16"});

  // All bf16: accepted and executed.
  a.buffers[kD].dtype = art::DType::BF16;
  kernels::Config bf16 = config;
  bf16["dtype"] = "bf16";
  a.kernels[0] = kernels::renderKernel(*kernels::findFamily("swiglu_backward"), bf16,
                                       "#xk.tile<threads = 32>");
  a.kernels[0].name = "swiglu_backward_0";
  std::unique_ptr<Backend> cpu = createCpuBackend(a, none, {2, 8}, 2);
  const std::int64_t rows = 2 * 3;
  const Bf16Values gu = randomBf16(rows * 2 * kF, 31), dout = randomBf16(rows * kF, 32);
  std::vector<float> d(rows * 2 * kF);
  CallArgs call;
  call.batch = 2;
  call.seq = 3;
  call.inputs.emplace("gu", std::as_bytes(std::span(gu.bits)));
  call.inputs.emplace("dout", std::as_bytes(std::span(dout.bits)));
  call.outputs.emplace("d", OutputRequest{d});
  cpu->call("backward", call);
  ref::Tensor g({rows, static_cast<std::int64_t>(kF)}), u(g.shape), dy(g.shape);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::uint64_t c = 0; c < kF; ++c) {
      g.data[r * kF + c] = gu.values[r * 2 * kF + c];
      u.data[r * kF + c] = gu.values[r * 2 * kF + kF + c];
      dy.data[r * kF + c] = dout.values[r * kF + c];
    }
  const ref::GatedGrads expected = ref::swigluBackward(g, u, dy);
  ref::Tensor dg(g.shape), du(g.shape);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::uint64_t c = 0; c < kF; ++c) {
      dg.data[r * kF + c] = d[r * 2 * kF + c];
      du.data[r * kF + c] = d[r * 2 * kF + kF + c];
    }
  EXPECT_LT(ref::relativeError(dg, expected.gate), 4e-3);
  EXPECT_LT(ref::relativeError(du, expected.value), 4e-3);
}

/// loss(z_in, targets) with grad_scale a function scalar: z_in copied into the output z, the loss
/// head in place on it; the loss accumulates in a persistent [1] buffer across calls.
TEST(TrainingFamiliesTest, CrossEntropyTakesItsScaleAsAFunctionScalar) {
  constexpr std::uint64_t kV = 40;
  const art::Dim B = art::Dim::batch(), S = art::Dim::seq();
  enum : art::BufferId { kZin, kTargets, kZ, kRows, kLoss, kCount, kError };
  art::Artifact a;
  a.compiler = {"xlc", "test"};
  a.targetArch = "sm_90a";
  a.deviceHeadersHash = "00";
  a.model = {"loss-head", kV, 8, 1, 16, 0, 2, 1};
  a.sourceName = "loss-head.xlca";
  a.buffers = {
      {kZin, "z_in", art::BufferClass::Input, art::DType::F32, {B, S, kV}, {}, {}},
      {kTargets, "targets", art::BufferClass::Input, art::DType::I32, {B, S}, {}, {}},
      {kZ, "z", art::BufferClass::Output, art::DType::F32, {B, S, kV}, {}, {}},
      {kRows, "loss_rows", art::BufferClass::Workspace, art::DType::F32, {B, S},
       art::Expr::constant(0), {}},
      {kLoss, "loss", art::BufferClass::Gradient, art::DType::F32, {1}, {}, {}},
      {kCount, "counter", art::BufferClass::Workspace, art::DType::I64, {1},
       art::Expr::batchSeq(256), {}},
      {kError, "error", art::BufferClass::Workspace, art::DType::I64, {1},
       art::Expr{256, 0, 0, 256, 1}, {}},
  };
  a.arenaBytes = art::Expr{512, 0, 0, 256, 1};
  art::Kernel k = kernels::renderKernel(*kernels::findFamily("cross_entropy"),
                                        {{"threads", 32}, {"capped", true}},
                                        "#xk.tile<threads = 32>");
  k.name = "cross_entropy_0";
  a.kernels = {k};
  art::Step head = art::Step::makeLaunch(
      "cross_entropy", {{"vocab", kV}}, 0,
      {art::Arg::buffer(kZ), art::Arg::buffer(kTargets), art::Arg::buffer(kRows),
       art::Arg::buffer(kLoss), art::Arg::buffer(kCount), art::Arg::buffer(kError),
       art::Arg::symbol(art::Symbol::BS), art::Arg::i64(kV), art::Arg::f32(30.0f),
       art::Arg::scalar(0)});
  head.duties = {{art::DutyKind::Zero, kCount},
                 {art::DutyKind::Zero, kError},
                 {art::DutyKind::ErrorFlag, kError},
                 {art::DutyKind::Accumulate, kLoss}};
  art::Function f;
  f.name = "loss";
  f.inputs = {{"z_in", kZin}, {"targets", kTargets}};
  f.outputs = {{"z", kZ}};
  f.scalars = {{"grad_scale", art::ParamKind::F32}};
  f.steps = {art::Step::makeCopy("copy", kZin, kZ, art::Expr::batchSeq(kV * 4)), head};
  a.functions = {f};
  const weights::Checkpoint none;
  std::unique_ptr<Backend> cpu = createCpuBackend(a, none, {2, 8}, 2);

  const std::int64_t rows = 2 * 3;
  std::vector<float> zIn(rows * kV);
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0.0f, 15.0f);
  for (float &x : zIn)
    x = normal(rng);
  const std::vector<std::int32_t> targets{1, 39, -100, 0, 7, 22};
  double expectedLoss = 0.0;
  for (int call = 0; call < 2; ++call) {
    std::vector<float> dz(rows * kV);
    CallArgs args;
    args.batch = 2;
    args.seq = 3;
    args.inputs.emplace("z_in", std::as_bytes(std::span(zIn)));
    args.inputs.emplace("targets", std::as_bytes(std::span(targets)));
    args.outputs.emplace("z", OutputRequest{dz});
    args.scalars.emplace("grad_scale", 1.0 / 5.0);
    cpu->call("loss", args);
    const ref::Tensor zt({rows, static_cast<std::int64_t>(kV)},
                         std::vector<double>(zIn.begin(), zIn.end()));
    const ref::CrossEntropy ce =
        ref::crossEntropy(ref::softCap(zt, 30.0), std::vector<std::int64_t>(targets.begin(), targets.end()));
    expectedLoss += ce.loss;
    EXPECT_LT(ref::relativeError(ref::Tensor(zt.shape, std::vector<double>(dz.begin(), dz.end())),
                                 ref::softCapBackward(zt, 30.0, ce.dLogits)),
              1e-5);
    EXPECT_NEAR(cpu->readBuffer(kLoss, {2, 3})[0], expectedLoss, 1e-5 * expectedLoss);
  }
  // A target past the vocabulary is the error the flag reports, naming the step.
  const std::vector<std::int32_t> bad{1, 40, 2, 0, 7, 22};
  std::vector<float> dz(rows * kV);
  CallArgs args;
  args.batch = 2;
  args.seq = 3;
  args.inputs.emplace("z_in", std::as_bytes(std::span(zIn)));
  args.inputs.emplace("targets", std::as_bytes(std::span(bad)));
  args.scalars.emplace("grad_scale", 1.0);
  xlc::testing::expectError([&] { cpu->call("loss", args); }, {"loss step 1", "cross_entropy"});
}

/// An artifact with one function update(lr, c1, c2, grad_scale, step): AdamW on a parameter w
/// [kN] of |wType|, its gradient of |gradType| and moments of |momentType| (|rounding| their bf16
/// stores), as writeOptimizerFunctions emits it, with the weights file written into |dir|.
struct AdamWArtifact {
  static constexpr std::uint64_t kN = 24;
  enum : art::BufferId { kW, kGrad, kM, kV };
  art::Artifact a;
  std::vector<float> w0;

  AdamWArtifact(art::DType wType, art::DType gradType, art::DType momentType,
                const std::string &rounding) {
    a.compiler = {"xlc", "test"};
    a.targetArch = "sm_90a";
    a.deviceHeadersHash = "00";
    a.model = {"adamw", 64, 8, 1, 16, 0, 2, 1};
    a.sourceName = "adamw.xlca";
    a.buffers = {
        {kW, "w", art::BufferClass::Parameter, wType, {kN}, {}, {}},
        {kGrad, "grad", art::BufferClass::Gradient, gradType, {kN}, {}, {}, kW},
        {kM, "m", art::BufferClass::Optimizer, momentType, {kN}, {}, {}, kW,
         art::OptimizerRole::ExpAvg},
        {kV, "v", art::BufferClass::Optimizer, momentType, {kN}, {}, {}, kW,
         art::OptimizerRole::ExpAvgSq},
    };
    a.arenaBytes = art::Expr::constant(0);
    a.weights = {{kW, {"w"}, {{kN}}, 0, std::nullopt}};
    auto name = [](art::DType t) { return std::string(art::dtypeName(t)); };
    art::Kernel k = kernels::renderKernel(
        *kernels::findFamily("adamw"),
        {{"dtype", name(wType)}, {"grad_dtype", name(gradType)},
         {"moment_dtype", name(momentType)}, {"master", false}, {"rounding", rounding},
         {"threads", 32}, {"blocks", 2}},
        "#xk.tile<threads = 32>");
    k.name = "adamw_0";
    a.kernels = {k};
    const train::AdamWConfig config; // β1 0.9, β2 0.95, ε 1e-8, λ 0.1
    art::Step update = art::Step::makeLaunch(
        "adamw", nlohmann::json::object(), 0,
        {art::Arg::buffer(kW), art::Arg::i64(0), art::Arg::buffer(kGrad), art::Arg::buffer(kM),
         art::Arg::buffer(kV), art::Arg::i64(kN), art::Arg::scalar(4), art::Arg::i64(kTensor),
         art::Arg::scalar(0), art::Arg::f32(static_cast<float>(config.beta1)),
         art::Arg::f32(static_cast<float>(config.beta2)),
         art::Arg::f32(static_cast<float>(config.eps)),
         art::Arg::f32(static_cast<float>(config.weightDecay)), art::Arg::scalar(1),
         art::Arg::scalar(2), art::Arg::scalar(3)});
    art::Function f;
    f.name = "update";
    f.scalars = {{"lr", art::ParamKind::F32},
                 {"c1", art::ParamKind::F32},
                 {"c2", art::ParamKind::F32},
                 {"grad_scale", art::ParamKind::F32},
                 {"step", art::ParamKind::I64}};
    f.steps = {update};
    a.functions = {f};
    std::mt19937_64 rng(9);
    std::normal_distribution<float> normal(0.0f, 0.1f);
    w0.resize(kN);
    for (float &x : w0) // bf16-exact, so that a bf16 parameter loads these very values
      x = weights::bf16ToF32(weights::f32ToBF16(normal(rng)));
  }

  static constexpr std::int64_t kTensor = 3; ///< the launch's index in optimizer_step

  std::unique_ptr<Backend> cpuBackend(const fs::path &dir) const {
    weights::TensorToWrite t{"w", weights::DType::F32, {kN},
                             {reinterpret_cast<const std::uint8_t *>(w0.data()), w0.size() * 4}};
    weights::writeSafetensors((dir / "w.safetensors").string(), std::span(&t, 1));
    const weights::Checkpoint checkpoint =
        weights::Checkpoint::open((dir / "w.safetensors").string());
    return createCpuBackend(a, checkpoint, {1, 1}, 2);
  }
};

/// bf16 bits of |x| rounded stochastically with the 16-bit value |bits|, as a float.
float roundStochastic(float x, unsigned int bits) {
  return weights::bf16ToF32(device::bf16_bits_stochastic(std::bit_cast<std::uint32_t>(x), bits));
}

/// update() with the step's constants as function scalars: a trainable fp32 parameter (filled
/// from the checkpoint, written by the step), its gradient buffer (consumed: zeroed by the
/// step), AdamW moments in optimizer buffers, three steps against train::adamwUpdate on the host.
TEST(TrainingFamiliesTest, AdamWUpdatesAParameterAndItsMoments) {
  constexpr std::uint64_t kN = AdamWArtifact::kN;
  const AdamWArtifact art(art::DType::F32, art::DType::F32, art::DType::F32, "nearest");
  const fs::path dir = fs::temp_directory_path() / ("xlc-adamw-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::unique_ptr<Backend> cpu = art.cpuBackend(dir);
  const train::AdamWConfig config;
  std::mt19937_64 rng(10);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w = art.w0, m(kN, 0.0f), v(kN, 0.0f);
  for (int step = 1; step <= 3; ++step) {
    std::vector<float> grad(kN);
    for (float &g : grad)
      g = normal(rng);
    const train::AdamWStep s = train::adamwStep(config, step, 1e-2, 0.5f);
    train::adamwUpdate(w, grad, m, v, config, step, 1e-2, 0.5f, true);
    cpu->writeBuffer(AdamWArtifact::kGrad, {1, 1}, grad);
    CallArgs args;
    args.scalars = {{"lr", s.lr}, {"c1", s.c1}, {"c2", s.c2}, {"grad_scale", s.gradScale},
                    {"step", step}};
    cpu->call("update", args);
    // The step consumes the gradient.
    for (float g : cpu->readBuffer(AdamWArtifact::kGrad, {1, 1}))
      ASSERT_EQ(g, 0.0f);
  }
  // f32 launch arguments round lr, c1, c2 to float as the GPU receives them: 1e-6 relative.
  const std::vector<float> got = cpu->readBuffer(AdamWArtifact::kW, {1, 1});
  const std::vector<float> gotM = cpu->readBuffer(AdamWArtifact::kM, {1, 1});
  auto tensor = [](const std::vector<float> &x) {
    return ref::Tensor({static_cast<std::int64_t>(x.size())}, std::vector<double>(x.begin(), x.end()));
  };
  EXPECT_LT(ref::relativeError(tensor(got), tensor(w)), 1e-6);
  EXPECT_LT(ref::relativeError(tensor(gotM), tensor(m)), 1e-6);
  EXPECT_GT(ref::relativeError(tensor(got), tensor(art.w0)), 1e-3); // it moved
  fs::remove_all(dir);
}

/// The low-memory mode's update on the CPU backend: a bf16 parameter without a master, bf16
/// gradient and moments, stochastic rounding. After each step the weight and both moments hold
/// exactly the host's fp32 update rounded with the bits of (step, tensor, array, element) —
/// the same values the kernel stores (test/gpu/harness/KernelCases.h runAdamW checks the kernel
/// against the same rounding) — and the same step replayed rounds the same way.
TEST(TrainingFamiliesTest, AdamWLowMemoryRoundsStochasticallyByStepTensorAndElement) {
  constexpr std::uint64_t kN = AdamWArtifact::kN;
  const AdamWArtifact art(art::DType::BF16, art::DType::BF16, art::DType::BF16, "stochastic");
  const fs::path dir = fs::temp_directory_path() / ("xlc-adamw-lm-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::unique_ptr<Backend> cpu = art.cpuBackend(dir);
  const train::AdamWConfig config;
  std::mt19937_64 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w = art.w0, m(kN, 0.0f), v(kN, 0.0f);
  const unsigned int stream = AdamWArtifact::kTensor * 2U;
  std::size_t notNearest = 0;
  for (int step = 1; step <= 3; ++step) {
    std::vector<float> grad(kN);
    for (float &g : grad) // the gradient buffer is bf16: the kernel reads bf16 values
      g = weights::bf16ToF32(weights::f32ToBF16(normal(rng)));
    const train::AdamWStep s = train::adamwStep(config, step, 1e-2, 0.5f);
    train::adamwUpdate(w, grad, m, v, config, step, 1e-2, 0.5f, true);
    const unsigned int keyA = device::rounding_key(step, stream),
                       keyB = device::rounding_key(step, stream + 1U);
    for (std::size_t i = 0; i < kN; ++i) {
      const float exact = w[i];
      w[i] = roundStochastic(w[i], device::adamw_rounding_value(keyA, keyB, 0, i));
      m[i] = roundStochastic(m[i], device::adamw_rounding_value(keyA, keyB, 1, i));
      v[i] = roundStochastic(v[i], device::adamw_rounding_value(keyA, keyB, 2, i));
      notNearest += w[i] != weights::bf16ToF32(weights::f32ToBF16(exact));
    }
    cpu->writeBuffer(AdamWArtifact::kGrad, {1, 1}, grad);
    CallArgs args;
    args.scalars = {{"lr", s.lr}, {"c1", s.c1}, {"c2", s.c2}, {"grad_scale", s.gradScale},
                    {"step", step}};
    cpu->call("update", args);
    EXPECT_EQ(cpu->readBuffer(AdamWArtifact::kW, {1, 1}), w) << "step " << step;
    EXPECT_EQ(cpu->readBuffer(AdamWArtifact::kM, {1, 1}), m) << "step " << step;
    EXPECT_EQ(cpu->readBuffer(AdamWArtifact::kV, {1, 1}), v) << "step " << step;
  }
  // Stochastic rounding is not rounding to nearest (each element rounds away from the nearer
  // value with probability up to ½): over 72 roundings some must differ.
  EXPECT_GT(notNearest, 0u);
  fs::remove_all(dir);
}

/// The random bits are a pure function of (seed, stream, index), and the rounding is unbiased:
/// x = 1 + 0.3 ulp rounds up in 30 % of 100000 draws (±5σ) with each of AdamW's three rounding
/// values, and the values it takes are the two bf16 neighbours of x. ±∞ and NaN are kept.
TEST(TrainingFamiliesTest, StochasticRoundingIsUnbiasedAndReproducible) {
  const float ulp = std::ldexp(1.0f, -7), x = 1.0f + 0.3f * ulp;
  const unsigned int key = device::rounding_key(12345, 7);
  EXPECT_EQ(key, device::rounding_key(12345, 7));
  EXPECT_NE(key, device::rounding_key(12346, 7));
  EXPECT_NE(key, device::rounding_key(12345, 8));
  const unsigned int keyB = device::rounding_key(12345, 8);
  // Each of the three arrays' values (two halves of one word, the low half of another) is
  // unbiased on its own.
  constexpr int kDraws = 100000;
  for (int array = 0; array < 3; ++array) {
    int up = 0;
    for (int i = 0; i < kDraws; ++i) {
      const float r = roundStochastic(x, device::adamw_rounding_value(key, keyB, array, i));
      ASSERT_TRUE(r == 1.0f || r == 1.0f + ulp) << r;
      up += r != 1.0f;
    }
    const double sigma = std::sqrt(0.3 * 0.7 / kDraws);
    EXPECT_NEAR(static_cast<double>(up) / kDraws, 0.3, 5.0 * sigma) << "array " << array;
  }
  EXPECT_EQ(device::rounding_word(key, 5), device::rounding_word(key, 5));
  EXPECT_NE(device::rounding_word(key, 5), device::rounding_word(key, 5 + (1ull << 32)));
  // Negative values round in magnitude, the same way.
  const unsigned int bits = device::adamw_rounding_value(key, keyB, 0, 3);
  EXPECT_EQ(roundStochastic(-x, bits), -roundStochastic(x, bits));
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(roundStochastic(inf, 0xffff), inf);
  EXPECT_EQ(roundStochastic(-inf, 0xffff), -inf);
  EXPECT_TRUE(std::isnan(roundStochastic(std::numeric_limits<float>::quiet_NaN(), 0xffff)));
  // A bf16-exact value never moves.
  EXPECT_EQ(roundStochastic(1.5f, 0xffff), 1.5f);
}

/// sum(x) with db [3] a gradient buffer: the column sums of columns 2..4 of x [B, S, 6], added
/// to db on every call (a bias's gradient over two micro-batches).
TEST(TrainingFamiliesTest, ColumnSumAccumulatesABiasGradient) {
  constexpr std::uint64_t kW = 6, kN = 3;
  const art::Dim B = art::Dim::batch(), S = art::Dim::seq();
  enum : art::BufferId { kXIn, kDb, kPart, kCount };
  art::Artifact a;
  a.compiler = {"xlc", "test"};
  a.targetArch = "sm_90a";
  a.deviceHeadersHash = "00";
  a.model = {"column-sum", 64, kW, 1, 16, 0, 2, 1};
  a.sourceName = "column-sum.xlca";
  a.buffers = {
      {kXIn, "x", art::BufferClass::Input, art::DType::F32, {B, S, kW}, {}, {}},
      {kDb, "db", art::BufferClass::Gradient, art::DType::F32, {kN}, {}, {}},
      {kPart, "partial", art::BufferClass::Workspace, art::DType::F32, {B, S, kN},
       art::Expr::constant(0), {}},
      {kCount, "counter", art::BufferClass::Workspace, art::DType::I64, {1},
       art::Expr::batchSeq(256), {}},
  };
  a.arenaBytes = art::Expr{256, 0, 0, 256, 1};
  art::Kernel k = kernels::renderKernel(
      *kernels::findFamily("column_sum"),
      {{"dtype", "f32"}, {"cols", kN}, {"threads", 32}, {"rows_per_block", 4}}, "#xk.tile<>");
  k.name = "column_sum_0";
  a.kernels = {k};
  art::Step step = art::Step::makeLaunch(
      "column_sum", nlohmann::json::object(), 0,
      {art::Arg::buffer(kXIn), art::Arg::i64(2), art::Arg::i64(kW), art::Arg::buffer(kPart),
       art::Arg::buffer(kDb), art::Arg::buffer(kCount), art::Arg::symbol(art::Symbol::BS)});
  step.duties = {{art::DutyKind::Zero, kCount}, {art::DutyKind::Accumulate, kDb}};
  art::Function f;
  f.name = "sum";
  f.inputs = {{"x", kXIn}};
  f.steps = {step};
  a.functions = {f};
  const weights::Checkpoint none;
  std::unique_ptr<Backend> cpu = createCpuBackend(a, none, {2, 8}, 2);
  std::mt19937 rng(5);
  std::vector<double> expected(kN, 0.0);
  for (int call = 0; call < 2; ++call) {
    const std::int64_t rows = 2 * (5 + call);
    const std::vector<float> x = testing::randomFloats(static_cast<std::size_t>(rows * kW), rng);
    CallArgs args;
    args.batch = 2;
    args.seq = 5 + call;
    args.inputs.emplace("x", std::as_bytes(std::span(x)));
    cpu->call("sum", args);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::uint64_t c = 0; c < kN; ++c)
        expected[c] += x[r * kW + 2 + c];
    const std::vector<float> db = cpu->readBuffer(kDb, {2, 5 + call});
    for (std::uint64_t c = 0; c < kN; ++c)
      EXPECT_NEAR(db[c], expected[c], 1e-5) << "column " << c << " after call " << call;
  }
}

/// forward_backward(qkv, gates, dh) → (dqkv, dgates): the chunkwise forward (mlstm_chunk_states,
/// mlstm_chunk_outputs) from the zero state, then the backward's four kernels
/// (mlstm_backward_readout, _states, _chunk, _gates) on the forward's saved chunk-start states
/// and output, writing the fused q|k|v and i|f gradients. Every buffer f32, so the CPU
/// backend's result is the exact derivative up to fp32 rounding (float64 oracle:
/// ref::mlstmCellBackward, with the soft-cap's derivative).
TEST(TrainingFamiliesTest, MlstmCellGradRunsItsFourKernelsAfterTheForward) {
  constexpr std::uint64_t NH = 2, DQK = 8, DV = 16, L = 16, W = 2 * NH * DQK + NH * DV;
  constexpr double kCap = 15.0, kEps = 1e-6;
  const art::Dim B = art::Dim::batch(), S = art::Dim::seq();
  enum : art::BufferId {
    kQkv, kGates, kDh, kC, kN, kM, kWsC, kWsN, kWsM, kH, kDqkv, kDgates,
    kTok, kDC, kDN, kGate, kChunk
  };
  // Arena: each region bounded by an affine size with coefficients rounded up to 256 bytes
  // (slots: NC + 1 ≤ S + 1 per (b, head); records ≤ S).
  auto round = [](std::uint64_t x) { return (x + 255) / 256 * 256; };
  art::Expr offset = art::Expr::constant(0);
  std::vector<art::Buffer> arena;
  auto region = [&](art::BufferId id, const char *name, art::Shape shape, art::Expr bytes) {
    art::Buffer b{id, name, id == kH ? art::BufferClass::Activation : art::BufferClass::Workspace,
                  art::DType::F32, std::move(shape), offset, {}};
    if (id != kH)
      b.bytes = bytes;
    offset = offset + bytes;
    arena.push_back(b);
  };
  region(kWsC, "ws_C", {}, art::Expr{0, round(NH * DQK * DV * 4), 0, round(NH * DQK * DV * 4), 1});
  region(kWsN, "ws_n", {}, art::Expr{0, round(NH * DQK * 4), 0, round(NH * DQK * 4), 1});
  region(kWsM, "ws_m", {}, art::Expr{0, round(NH * 4), 0, round(NH * 4), 1});
  region(kH, "h", {B, S, NH * DV}, art::Expr::batchSeq(round(NH * DV * 4)));
  region(kTok, "ws_tok", {}, art::Expr::batchSeq(round(NH * 16)));
  region(kDC, "ws_dC", {}, art::Expr::batchSeq(round(NH * DQK * DV * 4)));
  region(kDN, "ws_dn", {}, art::Expr::batchSeq(round(NH * DQK * 4)));
  region(kGate, "ws_gate", {}, art::Expr::batchSeq(round(NH * 16)));
  region(kChunk, "ws_chunk", {}, art::Expr::batchSeq(round(NH * 32)));

  art::Artifact a;
  a.compiler = {"xlc", "test"};
  a.targetArch = "sm_90a";
  a.deviceHeadersHash = "00";
  a.model = {"mlstm-cell-grad", 64, NH * DV, 1, L, 0, 2, 1};
  a.sourceName = "mlstm-cell-grad.xlca";
  a.buffers = {
      {kQkv, "qkv", art::BufferClass::Input, art::DType::F32, {B, S, W}, {}, {}},
      {kGates, "gates", art::BufferClass::Input, art::DType::F32, {B, S, 2 * NH}, {}, {}},
      {kDh, "dh", art::BufferClass::Input, art::DType::F32, {B, S, NH * DV}, {}, {}},
      {kC, "C", art::BufferClass::State, art::DType::F32, {B, NH, DQK, DV}, {}, {}},
      {kN, "n", art::BufferClass::State, art::DType::F32, {B, NH, DQK}, {}, {}},
      {kM, "m", art::BufferClass::State, art::DType::F32, {B, NH}, {}, {}},
  };
  a.buffers.insert(a.buffers.end(), arena.begin(), arena.begin() + 4); // ws_C, ws_n, ws_m, h
  a.buffers.push_back({kDqkv, "dqkv", art::BufferClass::Output, art::DType::F32, {B, S, W}, {}, {}});
  a.buffers.push_back(
      {kDgates, "dgates", art::BufferClass::Output, art::DType::F32, {B, S, 2 * NH}, {}, {}});
  a.buffers.insert(a.buffers.end(), arena.begin() + 4, arena.end());
  a.arenaBytes = offset;

  kernels::Config cell = {{"dtype", "f32"},     {"gate_dtype", "f32"},  {"state_dtype", "f32"},
                          {"num_heads", NH},    {"qk_head_dim", DQK},   {"v_head_dim", DV},
                          {"input_gate", "exp"}, {"normalizer", "max_abs"}, {"chunk", L},
                          {"resets", false}};
  kernels::Config states = cell, outputs = cell, backward = cell;
  states.update({{"tile_k", 16}, {"tile_v", 16}, {"threads", 32}});
  outputs.update({{"block_l", 16}, {"block_dv", 16}, {"block_dqk", 16}, {"threads", 32}});
  backward["tile"] = 16;
  const char *names[] = {"mlstm_chunk_states", "mlstm_chunk_outputs", "mlstm_backward_readout",
                         "mlstm_backward_states", "mlstm_backward_chunk", "mlstm_backward_gates"};
  for (int i = 0; i < 6; ++i) {
    art::Kernel k = kernels::renderKernel(*kernels::findFamily(names[i]),
                                          i == 0 ? states : i == 1 ? outputs : backward, "#xk.tile<>");
    k.name = std::string(names[i]) + "_0";
    a.kernels.push_back(k);
  }
  std::vector<art::Arg> views = {
      art::Arg::buffer(kQkv),   art::Arg::i64(0),       art::Arg::i64(W),
      art::Arg::buffer(kQkv),   art::Arg::i64(NH * DQK), art::Arg::i64(W),
      art::Arg::buffer(kQkv),   art::Arg::i64(2 * NH * DQK), art::Arg::i64(W),
      art::Arg::buffer(kGates), art::Arg::i64(0),       art::Arg::i64(2 * NH),
      art::Arg::buffer(kGates), art::Arg::i64(NH),      art::Arg::i64(2 * NH),
      art::Arg::i64(0)}; // resets_null: no document starts
  const std::vector<art::Arg> tail = {art::Arg::symbol(art::Symbol::B),
                                      art::Arg::symbol(art::Symbol::S),
                                      art::Arg::f32(static_cast<float>(kEps)),
                                      art::Arg::f32(static_cast<float>(kCap))};
  std::vector<art::Arg> fwd = views;
  for (art::BufferId id : {kC, kN, kM, kWsC, kWsN, kWsM, kH})
    fwd.push_back(art::Arg::buffer(id));
  fwd.insert(fwd.end(), tail.begin(), tail.end());
  std::vector<art::Arg> bwd = views;
  for (art::BufferId id : {kWsC, kWsN, kWsM, kH, kDh})
    bwd.push_back(art::Arg::buffer(id));
  for (auto [id, off, stride] : {std::tuple{kDqkv, std::uint64_t{0}, W},
                                 {kDqkv, NH * DQK, W},
                                 {kDqkv, 2 * NH * DQK, W},
                                 {kDgates, std::uint64_t{0}, 2 * NH},
                                 {kDgates, NH, 2 * NH}}) {
    bwd.push_back(art::Arg::buffer(id));
    bwd.push_back(art::Arg::i64(static_cast<std::int64_t>(off)));
    bwd.push_back(art::Arg::i64(static_cast<std::int64_t>(stride)));
  }
  for (art::BufferId id : {kTok, kDC, kDN, kGate, kChunk})
    bwd.push_back(art::Arg::buffer(id));
  bwd.insert(bwd.end(), tail.begin(), tail.end());
  nlohmann::json attrs = {{"num_heads", NH}, {"qk_head_dim", DQK}, {"v_head_dim", DV},
                          {"input_gate", "exp"}, {"normalizer", "max_abs"}, {"eps", kEps},
                          {"gate_soft_cap", kCap}, {"chunk", L}};
  art::Function f;
  f.name = "forward_backward";
  f.inputs = {{"qkv", kQkv}, {"gates", kGates}, {"dh", kDh}};
  f.outputs = {{"dqkv", kDqkv}, {"dgates", kDgates}};
  f.states = {kC, kN, kM};
  f.steps.push_back(art::Step::makeLaunch("mlstm_chunkwise", attrs, 0, fwd));
  f.steps.push_back(art::Step::makeLaunch("mlstm_chunkwise", attrs, 1, fwd));
  for (art::KernelIndex k = 2; k < 6; ++k)
    f.steps.push_back(art::Step::makeLaunch("mlstm_cell_grad", attrs, k, bwd));
  a.functions = {f};

  const weights::Checkpoint none;
  std::unique_ptr<Backend> cpu = createCpuBackend(a, none, {2, 40}, 2);
  const std::int64_t batch = 2, seq = 37, rows = batch * seq; // a partial last chunk
  std::mt19937 rng(41);
  const std::vector<float> qkv = testing::randomFloats(static_cast<std::size_t>(rows * W), rng);
  const std::vector<float> dh = testing::randomFloats(static_cast<std::size_t>(rows * NH * DV), rng);
  std::vector<float> gates(static_cast<std::size_t>(rows * 2 * NH));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::uint64_t hd = 0; hd < NH; ++hd) {
      gates[r * 2 * NH + hd] = 4.0f * normal(rng);
      gates[r * 2 * NH + NH + hd] = 2.0f + 3.0f * normal(rng);
    }
  std::vector<float> dqkv(qkv.size()), dgates(gates.size());
  CallArgs call;
  call.batch = batch;
  call.seq = seq;
  call.inputs.emplace("qkv", std::as_bytes(std::span(qkv)));
  call.inputs.emplace("gates", std::as_bytes(std::span(gates)));
  call.inputs.emplace("dh", std::as_bytes(std::span(dh)));
  call.outputs.emplace("dqkv", OutputRequest{dqkv});
  call.outputs.emplace("dgates", OutputRequest{dgates});
  cpu->call("forward_backward", call);

  const auto sh = [](std::int64_t a0, std::int64_t a1, std::int64_t a2) {
    return std::vector<std::int64_t>{a0, a1, a2};
  };
  ref::Tensor q(sh(batch, seq, NH * DQK)), k(q.shape), v(sh(batch, seq, NH * DV));
  ref::Tensor ig(sh(batch, seq, NH)), fg(ig.shape), igRaw(ig.shape), fgRaw(ig.shape);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::uint64_t x = 0; x < NH * DQK; ++x) {
      q.data[r * NH * DQK + x] = qkv[r * W + x];
      k.data[r * NH * DQK + x] = qkv[r * W + NH * DQK + x];
    }
    for (std::uint64_t x = 0; x < NH * DV; ++x)
      v.data[r * NH * DV + x] = qkv[r * W + 2 * NH * DQK + x];
    for (std::uint64_t hd = 0; hd < NH; ++hd) {
      igRaw.data[r * NH + hd] = gates[r * 2 * NH + hd];
      fgRaw.data[r * NH + hd] = gates[r * 2 * NH + NH + hd];
    }
  }
  const ref::Tensor dhT(sh(batch, seq, NH * DV), std::vector<double>(dh.begin(), dh.end()));
  const ref::MlstmCellGrads g =
      ref::mlstmCellBackward(q, k, v, ref::softCap(igRaw, kCap), ref::softCap(fgRaw, kCap), NH,
                             nullptr, {kEps, ref::InputGate::Exp, ref::Normalizer::MaxAbs}, dhT);
  const ref::Tensor di = ref::softCapBackward(igRaw, kCap, g.iPre);
  const ref::Tensor df = ref::softCapBackward(fgRaw, kCap, g.fPre);
  ref::Tensor gq(q.shape), gk(k.shape), gv(v.shape), gi(ig.shape), gf(ig.shape);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::uint64_t x = 0; x < NH * DQK; ++x) {
      gq.data[r * NH * DQK + x] = dqkv[r * W + x];
      gk.data[r * NH * DQK + x] = dqkv[r * W + NH * DQK + x];
    }
    for (std::uint64_t x = 0; x < NH * DV; ++x)
      gv.data[r * NH * DV + x] = dqkv[r * W + 2 * NH * DQK + x];
    for (std::uint64_t hd = 0; hd < NH; ++hd) {
      gi.data[r * NH + hd] = dgates[r * 2 * NH + hd];
      gf.data[r * NH + hd] = dgates[r * 2 * NH + NH + hd];
    }
  }
  // fp32 storage of the forward's states and output between the kernels: ~1e-6.
  EXPECT_LT(ref::relativeError(gq, g.q), 1e-5);
  EXPECT_LT(ref::relativeError(gk, g.k), 1e-5);
  EXPECT_LT(ref::relativeError(gv, g.v), 1e-5);
  EXPECT_LT(ref::relativeError(gi, di), 1e-5);
  EXPECT_LT(ref::relativeError(gf, df), 1e-5);
}

} // namespace
} // namespace xlc::exec
