//===- EmulatedGemvTest.cpp - The decode GEMV on the SIMT emulator ---------===//
//
// runtime/device/gemv.cuh on the CPU (test/gpu/harness/GemvCases.h) against the float64
// reference: every epilogue (none, bias in bf16 and fp32, residual, residual in place), every
// batch size m = 1..8, bf16 and fp32 outputs, odd n (row tiles cut by n), k that is and is not a
// multiple of the 32-wide step, A rows read in place with a row stride (the last position of each
// sequence), split-K over several blocks (the last block's ordered reduction), and every tiling
// the runtime instantiates. Also: the runtime's host copy of the kernel's parameter struct, its
// tilings and its translation units are the ones tested here.
//
//===----------------------------------------------------------------------===//
#include "GemvCases.h"

#include "runtime/exec/cuda/Gemv.h"

#include <gtest/gtest.h>

#include <cstddef>

namespace {

using namespace xlc::test;
using namespace xlc::test::variants;
namespace device = xlc::device;
namespace exec = xlc::exec;
using device::GemvEpilogue;
using device::GemvPrologue;

void expectOk(const CaseReport &report) {
  std::printf("%s", report.describe().c_str());
  EXPECT_TRUE(report.ok()) << report.describe();
}

struct EpilogueCase {
  const char *name;
  GemvEpilogue epilogue;
  bool cF32, inPlace;
};

const EpilogueCase kEpilogues[] = {
    {"none", GemvEpilogue::kNone, false, false},
    {"bias bf16", GemvEpilogue::kBias, false, false},
    {"bias f32", GemvEpilogue::kBias, true, false},
    {"residual", GemvEpilogue::kResidual, false, false},
    {"residual in place", GemvEpilogue::kResidual, false, true},
};

template <class V> void everyEpilogueAndBatch(const char *variant) {
  EmuBackend be;
  uint64_t seed = 100;
  for (int64_t m = 1; m <= 8; ++m)
    for (const EpilogueCase &e : kEpilogues) {
      GemvCase c;
      c.m = m;
      c.n = 21 + 4 * m;            // odd n for odd m: the last row tile is cut
      c.k = m % 2 ? 104 : 72;      // 3.25 and 2.25 steps of 32: a partial last step
      c.split = m % 3 == 0 ? 2 : 1;
      c.epilogue = e.epilogue;
      c.cF32 = e.cF32;
      c.inPlace = e.inPlace;
      c.seed = seed++;
      expectOk(runGemv<EmuBackend, V>(be, fmt::format("{} m {} {}", variant, m, e.name), c));
    }
}

TEST(EmulatedGemv, EveryEpilogueAndBatchSizeBf16Out) {
  everyEpilogueAndBatch<GemvBf16R1W4U2>("bf16 out");
}

TEST(EmulatedGemv, EveryEpilogueAndBatchSizeF32Out) {
  everyEpilogueAndBatch<GemvF32R1W4U2>("f32 out");
}

TEST(EmulatedGemv, ReductionLengthsAndSplits) {
  EmuBackend be;
  // k = 8 (one vector), a multiple of 32, one past a step, long; split-K factors whose slices
  // end mid-group and a wish above the steps there are (grid.y is then ⌈k / k_split⌉).
  for (int64_t k : {8, 64, 264, 1000})
    for (int64_t split : {1, 3, 8}) {
      GemvCase c;
      c.m = 3;
      c.n = 33;
      c.k = k;
      c.split = split;
      c.epilogue = GemvEpilogue::kBias;
      c.cF32 = true;
      c.seed = static_cast<uint64_t>(k * 10 + split);
      expectOk(runGemv<EmuBackend, GemvF32R1W4U2>(
          be, fmt::format("f32 out k {} split {}", k, split), c));
    }
}

TEST(EmulatedGemv, RowsReadInPlaceWithAStride) {
  // The LM head of a generation prefill reads the last position of each sequence: row i of A
  // at i·S·k. Strides of 3·k and k + 8 (the smallest legal step above k).
  EmuBackend be;
  for (int64_t strideExtra : {2 * 96, 8}) {
    GemvCase c;
    c.m = 4;
    c.n = 50;
    c.k = 96;
    c.lda = 96 + strideExtra;
    c.seed = static_cast<uint64_t>(strideExtra);
    expectOk(runGemv<EmuBackend, GemvF32R1W4U2>(be, fmt::format("lda {}", c.lda), c));
  }
}

TEST(EmulatedGemv, EveryRuntimeTiling) {
  EmuBackend be;
  // k = 328: 10.25 steps of 32, a warp takes zero, one or two groups; k = 1000 (31.25 steps):
  // up to four groups a warp, so the double-buffered tilings go round their loop (both
  // buffers, an odd and an even count of groups).
  forEachGemvVariant([&]<class V>() {
    for (int64_t k : {328, 1000})
      for (int64_t split : {1, 2}) {
        GemvCase c;
        c.m = 5;
        c.n = 70; // several blocks of every tiling, the last one cut
        c.k = k;
        c.split = split;
        c.epilogue = GemvEpilogue::kResidual;
        c.seed = static_cast<uint64_t>(split + k);
        expectOk(runGemv<EmuBackend, V>(
            be, fmt::format("{} k {} split {}", V::kConfig, k, split), c));
      }
  });
}

TEST(EmulatedGemv, ProloguesFormAFromTheOperand) {
  // Both prologues, one block and split-K (the RMS sums of squares of the slices go through the
  // partials), m = 1 and 5, a stage-1 and a stage-2 tiling, k with a partial last step.
  EmuBackend be;
  for (GemvPrologue prologue : {GemvPrologue::kRmsNorm, GemvPrologue::kSwiGlu})
    for (int64_t split : {1, 3})
      for (int64_t m : {1, 5}) {
        GemvCase c;
        c.m = m;
        c.n = 40;
        c.k = 264;
        c.split = split;
        c.prologue = prologue;
        c.epilogue = m == 1 ? GemvEpilogue::kResidual : GemvEpilogue::kNone;
        c.seed = static_cast<uint64_t>(split * 10 + m);
        const std::string what = fmt::format("prologue {} m {} split {}",
                                             static_cast<int>(prologue), m, split);
        expectOk(runGemv<EmuBackend, GemvBf16R1W4U2>(be, what, c));
        expectOk(runGemv<EmuBackend, GemvF32R1W4U2S2>(be, what + " f32 2 stages", c));
      }
}

TEST(EmulatedGemv, ASecondGemmRidesInTheLaunch) {
  // The q|k|v|o + i|f gates form: the second GEMM (fp32 out, fp32 bias) in the blocks past the
  // first's, with and without split-K (its partials after the first's) and the RMS prologue.
  EmuBackend be;
  for (int64_t split : {1, 3})
    for (GemvPrologue prologue : {GemvPrologue::kNone, GemvPrologue::kRmsNorm}) {
      GemvCase c;
      c.m = 3;
      c.n = 40;
      c.n2 = 19;
      c.k = 264;
      c.split = split;
      c.prologue = prologue;
      c.seed = static_cast<uint64_t>(split * 7 + static_cast<int>(prologue));
      const std::string what = fmt::format("second GEMM split {} prologue {}", split,
                                           static_cast<int>(prologue));
      expectOk(runGemv<EmuBackend, GemvBf16R1W4U2>(be, what, c));
      expectOk(runGemv<EmuBackend, GemvBf16R1W8U4S2>(be, what + " 2 stages", c));
    }
}

TEST(EmulatedGemv, RuntimeAbiAndTilingsAreTheTestedOnes) {
  using P = exec::gemv_abi::Params;
  static_assert(sizeof(P) == sizeof(device::GemvParams));
  static_assert(offsetof(P, a) == offsetof(device::GemvParams, a));
  static_assert(offsetof(P, lda) == offsetof(device::GemvParams, lda));
  static_assert(offsetof(P, w) == offsetof(device::GemvParams, w));
  static_assert(offsetof(P, c) == offsetof(device::GemvParams, c));
  static_assert(offsetof(P, d) == offsetof(device::GemvParams, d));
  static_assert(offsetof(P, m) == offsetof(device::GemvParams, m));
  static_assert(offsetof(P, n) == offsetof(device::GemvParams, n));
  static_assert(offsetof(P, k) == offsetof(device::GemvParams, k));
  static_assert(offsetof(P, kSplit) == offsetof(device::GemvParams, k_split));
  static_assert(offsetof(P, epilogue) == offsetof(device::GemvParams, epilogue));
  static_assert(offsetof(P, cIsF32) == offsetof(device::GemvParams, c_is_f32));
  static_assert(offsetof(P, partials) == offsetof(device::GemvParams, partials));
  static_assert(offsetof(P, counters) == offsetof(device::GemvParams, counters));
  static_assert(offsetof(P, prologue) == offsetof(device::GemvParams, prologue));
  static_assert(offsetof(P, aUpOffset) == offsetof(device::GemvParams, a_up_offset));
  static_assert(offsetof(P, eps) == offsetof(device::GemvParams, eps));
  static_assert(offsetof(P, gridX1) == offsetof(device::GemvParams, grid_x1));
  static_assert(offsetof(P, w2) == offsetof(device::GemvParams, w2));
  static_assert(offsetof(P, c2) == offsetof(device::GemvParams, c2));
  static_assert(offsetof(P, d2) == offsetof(device::GemvParams, d2));
  static_assert(offsetof(P, n2) == offsetof(device::GemvParams, n2));
  static_assert(offsetof(P, epilogue2) == offsetof(device::GemvParams, epilogue2));
  static_assert(offsetof(P, c2IsF32) == offsetof(device::GemvParams, c2_is_f32));
  static_assert(offsetof(P, d2IsF32) == offsetof(device::GemvParams, d2_is_f32));
  static_assert(static_cast<int>(exec::gemv_abi::Prologue::RmsNorm) ==
                    static_cast<int>(device::GemvPrologue::kRmsNorm) &&
                static_cast<int>(exec::gemv_abi::Prologue::SwiGlu) ==
                    static_cast<int>(device::GemvPrologue::kSwiGlu));
  static_assert(offsetof(P, cIsF32) == offsetof(device::GemvParams, c_is_f32));
  static_assert(offsetof(P, partials) == offsetof(device::GemvParams, partials));
  static_assert(offsetof(P, counters) == offsetof(device::GemvParams, counters));
  static_assert(static_cast<int>(exec::gemv_abi::Epilogue::None) ==
                    static_cast<int>(GemvEpilogue::kNone) &&
                static_cast<int>(exec::gemv_abi::Epilogue::Bias) ==
                    static_cast<int>(GemvEpilogue::kBias) &&
                static_cast<int>(exec::gemv_abi::Epilogue::Residual) ==
                    static_cast<int>(GemvEpilogue::kResidual));

  // The runtime's tilings, in order, are the variants above (bf16 outputs, then fp32), with the
  // same block shape and shared memory; its translation units instantiate exactly them.
  std::vector<std::string> tested;
  std::vector<std::array<int, 3>> testedShape; // threads, rows, shared bytes
  forEachGemvVariant([&]<class V>() {
    tested.push_back(V::kConfig);
    testedShape.push_back({V::Config::kThreads, V::Config::kRows, V::Config::kSharedBytes});
  });
  const std::vector<exec::GemvTiling> &tilings = exec::gemvTilings();
  ASSERT_EQ(2 * tilings.size(), tested.size());
  std::size_t index = 0;
  for (xlc::artifact::DType out : {xlc::artifact::DType::BF16, xlc::artifact::DType::F32}) {
    const std::string source = exec::Gemv::kernel(out).source;
    for (std::size_t t = 0; t < tilings.size(); ++t, ++index) {
      EXPECT_EQ(exec::Gemv::configText(out, tilings[t]), tested[index]);
      EXPECT_EQ(tilings[t].threads(), testedShape[index][0]) << tested[index];
      EXPECT_EQ(tilings[t].rows(), testedShape[index][1]) << tested[index];
      EXPECT_EQ(tilings[t].sharedBytes(), testedShape[index][2]) << tested[index];
      EXPECT_NE(source.find(tested[index]), std::string::npos) << tested[index];
      EXPECT_NE(source.find(exec::Gemv::entryName(t)), std::string::npos);
    }
  }
}

} // namespace
