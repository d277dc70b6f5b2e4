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
  // The host struct H mirrors the device struct D: the same size, each field at the same offset.
#define XLC_SAME_SIZE(H, D) static_assert(sizeof(H) == sizeof(device::D), #H " vs " #D)
#define XLC_SAME_FIELD(H, h, D, d)                                                             \
  static_assert(offsetof(H, h) == offsetof(device::D, d), #H "::" #h " vs " #D "::" #d)
  XLC_SAME_SIZE(Options, SamplingOptionsBlock);
  XLC_SAME_FIELD(Options, invTemperature, SamplingOptionsBlock, inv_temperature);
  XLC_SAME_FIELD(Options, topP, SamplingOptionsBlock, top_p);
  XLC_SAME_FIELD(Options, topK, SamplingOptionsBlock, top_k);
  XLC_SAME_FIELD(Options, greedy, SamplingOptionsBlock, greedy);
  XLC_SAME_FIELD(Options, seed, SamplingOptionsBlock, seed);
  XLC_SAME_SIZE(Row, SamplingRow);
  XLC_SAME_FIELD(Row, stream, SamplingRow, stream);
  XLC_SAME_FIELD(Row, step, SamplingRow, step);
  XLC_SAME_FIELD(Row, active, SamplingRow, active);
  XLC_SAME_SIZE(Result, SampledToken);
  XLC_SAME_FIELD(Result, token, SampledToken, token);
  XLC_SAME_FIELD(Result, nanCount, SampledToken, nan_count);
  XLC_SAME_FIELD(Result, firstNan, SampledToken, first_nan);
  XLC_SAME_FIELD(Result, kept, SampledToken, kept);
  XLC_SAME_SIZE(Params, SamplingParams);
  XLC_SAME_FIELD(Params, rowStride, SamplingParams, row_stride);
  XLC_SAME_FIELD(Params, vocab, SamplingParams, vocab);
  XLC_SAME_FIELD(Params, options, SamplingParams, options);
  XLC_SAME_FIELD(Params, rows, SamplingParams, rows);
  XLC_SAME_FIELD(Params, out, SamplingParams, out);
#undef XLC_SAME_SIZE
#undef XLC_SAME_FIELD
  EXPECT_EQ(exec::DeviceSampler::configText(xlc::artifact::DType::F32), SamplingF32::kConfig);
  EXPECT_EQ(exec::DeviceSampler::configText(xlc::artifact::DType::BF16), SamplingBf16::kConfig);
  EXPECT_NE(exec::DeviceSampler::kernel(xlc::artifact::DType::F32)
                .source.find(std::string("using Config = ") + SamplingF32::kConfig + ";"),
            std::string::npos);
}

TEST(EmulatedSampling, SmallVocabularies) {
  EmuBackend be;
  for (int64_t vocab : {1, 2, 3, 31, 32, 33, 100, 1000})
    forEachOptionSet(vocab, 24, 1, [&](const std::string &name, const SamplingCase &c) {
      expectOk(runSampling<EmuBackend, SamplingTiny>(be, name, c));
    });
}

TEST(EmulatedSampling, Vocab50304WithTheRuntimeBlock) {
  EmuBackend be;
  forEachOptionSet(50304, 12, 2, [&](const std::string &name, const SamplingCase &c) {
    expectOk(runSampling<EmuBackend, SamplingF32>(be, name, c)); // one row of every kind
  });
}

TEST(EmulatedSampling, Bf16Logits) {
  EmuBackend be;
  forEachOptionSet(4099, 12, 3, [&](const std::string &name, const SamplingCase &c) {
    expectOk(runSampling<EmuBackend, SamplingBf16>(be, "bf16 " + name, c));
  });
}

} // namespace
