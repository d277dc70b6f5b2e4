//===- EmulatedSamplingTest.cpp - The sampling kernel on the SIMT emulator ===//
//
// runtime/device/sampling.cuh on the CPU (test/gpu/harness/SamplingCases.h): every row's draw
// equals runtime/exec/Sampler.cpp's on the same logits, for every option set, small vocabularies
// (including V = 1 and sizes around a warp) with a 64-thread block and the 7B's V = 50304 with
// the block the runtime launches, fp32 and bf16 logits. Also: the device port of the uniform
// number is the host's bit for bit, and the runtime's host copies of the kernel's structs and its
// configs are the ones tested here.
//
//===----------------------------------------------------------------------===//
#include "SamplingCases.h"

#include "runtime/exec/cuda/DeviceSampler.h"

#include <gtest/gtest.h>

#include <cstddef>

namespace {

using namespace xlc::test;
using namespace xlc::test::variants;
namespace device = xlc::device;
namespace exec = xlc::exec;

void expectOk(const CaseReport &report) {
  std::printf("%s", report.describe().c_str());
  EXPECT_TRUE(report.ok()) << report.describe();
}

TEST(EmulatedSampling, UniformDrawIsTheHostsBitForBit) {
  for (uint64_t seed : {0ull, 1ull, 42ull, ~0ull})
    for (uint64_t stream = 0; stream < 50; ++stream)
      for (uint64_t step : {0ull, 1ull, 17ull, 1000003ull, ~0ull - 1})
        ASSERT_EQ(device::sampling::uniform_draw(seed, stream, step),
                  exec::uniformDraw(seed, stream, step))
            << seed << " " << stream << " " << step;
}

TEST(EmulatedSampling, RuntimeAbiAndConfigsAreTheTestedOnes) {
  using exec::sampling_abi::Options, exec::sampling_abi::Row, exec::sampling_abi::Result,
      exec::sampling_abi::Params;
  static_assert(sizeof(Options) == sizeof(device::SamplingOptionsBlock));
  static_assert(offsetof(Options, invTemperature) ==
                offsetof(device::SamplingOptionsBlock, inv_temperature));
  static_assert(offsetof(Options, topP) == offsetof(device::SamplingOptionsBlock, top_p));
  static_assert(offsetof(Options, topK) == offsetof(device::SamplingOptionsBlock, top_k));
  static_assert(offsetof(Options, greedy) == offsetof(device::SamplingOptionsBlock, greedy));
  static_assert(offsetof(Options, seed) == offsetof(device::SamplingOptionsBlock, seed));
  static_assert(sizeof(Row) == sizeof(device::SamplingRow));
  static_assert(offsetof(Row, stream) == offsetof(device::SamplingRow, stream));
  static_assert(offsetof(Row, step) == offsetof(device::SamplingRow, step));
  static_assert(offsetof(Row, active) == offsetof(device::SamplingRow, active));
  static_assert(sizeof(Result) == sizeof(device::SampledToken));
  static_assert(offsetof(Result, token) == offsetof(device::SampledToken, token));
  static_assert(offsetof(Result, nanCount) == offsetof(device::SampledToken, nan_count));
  static_assert(offsetof(Result, firstNan) == offsetof(device::SampledToken, first_nan));
  static_assert(offsetof(Result, kept) == offsetof(device::SampledToken, kept));
  static_assert(sizeof(Params) == sizeof(device::SamplingParams));
  static_assert(offsetof(Params, rowStride) == offsetof(device::SamplingParams, row_stride));
  static_assert(offsetof(Params, vocab) == offsetof(device::SamplingParams, vocab));
  static_assert(offsetof(Params, options) == offsetof(device::SamplingParams, options));
  static_assert(offsetof(Params, rows) == offsetof(device::SamplingParams, rows));
  static_assert(offsetof(Params, out) == offsetof(device::SamplingParams, out));
  EXPECT_EQ(exec::DeviceSampler::configText(xlc::artifact::DType::F32), SamplingF32::kConfig);
  EXPECT_EQ(exec::DeviceSampler::configText(xlc::artifact::DType::BF16), SamplingBf16::kConfig);
  EXPECT_NE(exec::DeviceSampler::kernel(xlc::artifact::DType::F32)
                .source.find(std::string("using Config = ") + SamplingF32::kConfig + ";"),
            std::string::npos);
}

TEST(EmulatedSampling, SmallVocabularies) {
  EmuBackend be;
  for (int64_t vocab : {1, 2, 3, 31, 32, 33, 100, 1000})
    for (const auto &[name, options] : samplingOptionSets(vocab)) {
      SamplingCase c;
      c.vocab = vocab;
      c.options = options;
      c.seed = static_cast<uint64_t>(vocab) * 131 + options.seed;
      expectOk(runSampling<EmuBackend, SamplingTiny>(be, fmt::format("V {} {}", vocab, name), c));
    }
}

TEST(EmulatedSampling, Vocab50304WithTheRuntimeBlock) {
  EmuBackend be;
  for (const auto &[name, options] : samplingOptionSets(50304)) {
    SamplingCase c;
    c.vocab = 50304;
    c.rows = 5;
    c.options = options;
    c.seed = 50304 + options.seed;
    c.kinds = {LogitKind::Normal, LogitKind::Ties, LogitKind::Wide, LogitKind::PosInf,
               LogitKind::Nan};
    expectOk(runSampling<EmuBackend, SamplingF32>(be, fmt::format("V 50304 {}", name), c));
  }
}

TEST(EmulatedSampling, Bf16Logits) {
  EmuBackend be;
  for (const auto &[name, options] : samplingOptionSets(4099)) {
    SamplingCase c;
    c.vocab = 4099;
    c.rows = 12;
    c.options = options;
    c.seed = 4099 + options.seed;
    expectOk(runSampling<EmuBackend, SamplingBf16>(be, fmt::format("bf16 V 4099 {}", name), c));
  }
}

} // namespace
