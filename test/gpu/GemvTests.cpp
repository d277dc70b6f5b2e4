//===- GemvTests.cpp - The decode GEMV on the GPU
//--------------------------===//
//
// runtime/device/gemv.cuh compiled by NVRTC (the test harness's one-entry
// translation unit of each runtime tiling) and run on the GPU against the
// float64 reference (GemvCases.h: values, nothing written past D, split-K
// counters back at zero, bit-identical relaunches): every epilogue and batch
// size m = 1..8 on a mid-size shape, every runtime tiling with and without
// split-K on the 7B's down projection, and every projection shape of the 7B at
// m = 1 and 8 -- including the 16-output gate projection split 32 ways and the
// LM head with A rows read in place. Part of gpu_kernel_tests; skipped without
// a GPU (failed when XLC_REQUIRE_GPU is set).
//
//===----------------------------------------------------------------------===//
#include "GemvCases.h"
#include "GpuBackend.h"
#include "GpuSkip.h"

#include <gtest/gtest.h>

namespace {

using namespace xlc::test;
using namespace xlc::test::variants;
using xlc::device::GemvEpilogue;
using xlc::device::GemvPrologue;

void expectOk(const CaseReport &report) {
  std::printf("%s", report.describe().c_str());
  std::fflush(stdout);
  EXPECT_TRUE(report.ok()) << report.describe();
}

TEST(GpuGemv, EveryEpilogueAndBatchSize) {
  XLC_REQUIRE_GPU_BACKEND(be);
  struct Epilogue {
    const char *name;
    GemvEpilogue epilogue;
    bool cF32, inPlace;
  };
  const Epilogue epilogues[] = {{"none", GemvEpilogue::kNone, false, false},
                                {"bias bf16", GemvEpilogue::kBias, false, false},
                                {"bias f32", GemvEpilogue::kBias, true, false},
                                {"residual", GemvEpilogue::kResidual, false, false},
                                {"residual in place", GemvEpilogue::kResidual, false, true}};
  for (int64_t m = 1; m <= 8; ++m)
    for (const Epilogue &e : epilogues) {
      const GemvCase c{.m = m,
                       .n = 1000 + 7 * m,
                       .k = 2056,
                       .split = m % 2 ? 1 : 3,
                       .epilogue = e.epilogue,
                       .cF32 = e.cF32,
                       .inPlace = e.inPlace,
                       .seed = static_cast<uint64_t>(m)};
      expectOk(
          runGemv<GpuBackend, GemvBf16R2W4U4>(be, fmt::format("bf16 out m {} {}", m, e.name), c));
      expectOk(
          runGemv<GpuBackend, GemvF32R2W4U4>(be, fmt::format("f32 out m {} {}", m, e.name), c));
    }
}

TEST(GpuGemv, EveryRuntimeTiling) {
  XLC_REQUIRE_GPU_BACKEND(be);
  forEachGemvVariant([&]<class V>() {
    for (int64_t split : {1, 4}) {
      const GemvCase c{.m = 3,
                       .n = 4096,
                       .k = 10944,
                       .split = split,
                       .epilogue = GemvEpilogue::kResidual,
                       .seed = 5};
      expectOk(
          runGemv<GpuBackend, V>(be, fmt::format("{} down m 3 split {}", V::kConfig, split), c));
    }
  });
}

TEST(GpuGemv, Every7BProjection) {
  XLC_REQUIRE_GPU_BACKEND(be);
  for (int64_t m : {1, 8}) {
    const uint64_t seed = static_cast<uint64_t>(m) * 10;
    expectOk(runGemv<GpuBackend, GemvBf16R2W4U4>(be, fmt::format("q|k|v|o 12288x4096 m {}", m),
                                                 {.m = m, .n = 12288, .k = 4096, .seed = seed}));
    expectOk(runGemv<GpuBackend, GemvF32R1W4U2>(
        be, fmt::format("i|f gates 16x4096 f32 bias m {} split 32", m),
        {.m = m,
         .n = 16,
         .k = 4096,
         .split = 32,
         .epilogue = GemvEpilogue::kBias,
         .cF32 = true,
         .seed = seed + 1}));
    expectOk(runGemv<GpuBackend, GemvBf16R2W4U4>(
        be, fmt::format("out 4096x4096 residual in place m {} split 2", m),
        {.m = m,
         .n = 4096,
         .k = 4096,
         .split = 2,
         .epilogue = GemvEpilogue::kResidual,
         .inPlace = true,
         .seed = seed + 2}));
    expectOk(
        runGemv<GpuBackend, GemvBf16R2W4U4>(be, fmt::format("up|gate 21888x4096 m {}", m),
                                            {.m = m, .n = 21888, .k = 4096, .seed = seed + 3}));
    expectOk(runGemv<GpuBackend, GemvBf16R1W8U4>(
        be, fmt::format("down 4096x10944 residual m {} split 4", m),
        {.m = m,
         .n = 4096,
         .k = 10944,
         .split = 4,
         .epilogue = GemvEpilogue::kResidual,
         .seed = seed + 4}));
    expectOk(runGemv<GpuBackend, GemvF32R4W4U2>(
        be, fmt::format("LM head 50304x4096 f32 m {} (rows at stride 3k)", m),
        {.m = m, .n = 50304, .k = 4096, .lda = 3 * 4096, .seed = seed + 5}));
  }
}

TEST(GpuGemv, ProloguesAt7BShapes) {
  // The decode step's fused forms: the RMS norm before q|k|v|o with the i|f gates in the same
  // launch (one block and split-K) and the SwiGLU of the fused gate|up row before the down
  // projection (split 4, residual).
  XLC_REQUIRE_GPU_BACKEND(be);
  for (int64_t m : {1, 8}) {
    const uint64_t seed = static_cast<uint64_t>(m) * 100;
    for (int64_t split : {1, 2})
      expectOk(runGemv<GpuBackend, GemvBf16R1W4U4S2>(
          be, fmt::format("rms_norm + q|k|v|o 12288x4096 + i|f gates 16 m {} split {}", m, split),
          {.m = m,
           .n = 12288,
           .k = 4096,
           .split = split,
           .prologue = GemvPrologue::kRmsNorm,
           .n2 = 16,
           .seed = seed + static_cast<uint64_t>(split)}));
    expectOk(runGemv<GpuBackend, GemvBf16R1W8U4>(
        be, fmt::format("swiglu + down 4096x10944 residual m {} split 4", m),
        {.m = m,
         .n = 4096,
         .k = 10944,
         .split = 4,
         .epilogue = GemvEpilogue::kResidual,
         .prologue = GemvPrologue::kSwiGlu,
         .seed = seed + 3}));
  }
}

} // namespace
