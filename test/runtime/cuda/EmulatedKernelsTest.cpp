//===- EmulatedKernelsTest.cpp - Kernels on the CPU SIMT emulator ---------===//
//
// Every kernel family, run through the SIMT emulator (test/gpu/harness/xlc_device_emulation.h)
// on tiny-model shapes and a few small xLSTM-7B-head shapes, against the float64 reference, with
// the tolerances of KernelCases.h. This checks the kernels' indexing, masking, synchronisation
// and numerics without a GPU; test/gpu runs the same cases (and bigger ones) on the hardware.
//
//===----------------------------------------------------------------------===//
#include "KernelCases.h"
#include "Variants.h"

#include <gtest/gtest.h>

namespace {

using namespace xlc::test;
using namespace xlc::test::variants;

void expectOk(const CaseReport &report) {
  std::printf("%s", report.describe().c_str());
  EXPECT_TRUE(report.ok()) << report.describe();
}

TEST(Emulated, RmsNorm) {
  EmuBackend be;
  expectOk(runRmsNorm<EmuBackend, TinyRmsNorm>(be, "tiny, contiguous", {.rows = 5}));
  expectOk(runRmsNorm<EmuBackend, TinyRmsNorm>(
      be, "tiny, strided view (scalar path), no weight",
      {.rows = 3, .offset = 3, .stride = 101, .weight = false}));
  expectOk(runRmsNorm<EmuBackend, TinyRmsNormF32>(be, "tiny fp32", {.rows = 4}));
  expectOk(runRmsNorm<EmuBackend, RmsNorm7B>(be, "7B width, last-token view",
                                             {.rows = 2, .offset = 0, .stride = 3 * 4096}));
}

TEST(Emulated, RmsNormBackward) {
  EmuBackend be;
  expectOk(runRmsNormBackward<EmuBackend, TinyRmsNormBackward>(be, "tiny, 3 blocks of 4 rows",
                                                               {.rows = 9}));
  expectOk(runRmsNormBackward<EmuBackend, TinyRmsNormBackward>(
      be, "tiny, strided view, no weight", {.rows = 5, .offset = 3, .stride = 101, .weight = false}));
  expectOk(runRmsNormBackward<EmuBackend, TinyRmsNormBackwardF32>(be, "tiny fp32, one row",
                                                                  {.rows = 1}));
  expectOk(runRmsNormBackward<EmuBackend, TinyRmsNormBackward>(
      be, "tiny, a residual gradient added", {.rows = 7, .residual = true, .seed = 13}));
  expectOk(runRmsNormBackward<EmuBackend, RmsNormBackward7B>(be, "7B width, 2 blocks",
                                                             {.rows = 20}));
}

TEST(Emulated, NormGate) {
  EmuBackend be;
  expectOk(runNormGate<EmuBackend, TinyNormGate>(be, "tiny, o view of q|k|v|o",
                                                 {.rows = 4, .oOffset = 96, .oStride = 192}));
  expectOk(runNormGate<EmuBackend, TinyNormGate>(
      be, "tiny, unaligned views (scalar path)",
      {.rows = 3, .hOffset = 1, .hStride = 67, .oOffset = 5, .oStride = 77}));
  expectOk(runNormGate<EmuBackend, NormGate7B>(be, "7B heads", {.rows = 2}));
}

TEST(Emulated, NormGateBackward) {
  EmuBackend be;
  expectOk(runNormGateBackward<EmuBackend, TinyNormGateBackward>(
      be, "tiny, o view of q|k|v|o, 3 blocks", {.rows = 7, .oOffset = 96, .oStride = 192}));
  expectOk(runNormGateBackward<EmuBackend, TinyNormGateBackward>(
      be, "tiny, unaligned views", {.rows = 2, .hOffset = 1, .hStride = 67, .oOffset = 5, .oStride = 77}));
  expectOk(runNormGateBackward<EmuBackend, NormGateBackward7B>(be, "7B heads, 2 blocks",
                                                               {.rows = 17}));
}

TEST(Emulated, Swiglu) {
  EmuBackend be;
  expectOk(runSwiglu<EmuBackend, TinySwiglu>(be, "tiny, fused [gate | up]", {.rows = 3}));
  expectOk(runSwiglu<EmuBackend, TinySwiglu>(
      be, "tiny, unaligned (scalar path)", {.rows = 2, .stride = 389, .gateOffset = 1, .upOffset = 195}));
}

TEST(Emulated, SwigluBackward) {
  EmuBackend be;
  expectOk(runSwigluBackward<EmuBackend, TinySwigluBackward>(be, "tiny, fused [dgate | dup]",
                                                             {.rows = 3}));
  expectOk(runSwigluBackward<EmuBackend, TinySwigluBackward>(
      be, "tiny, wider rows, swapped halves", {.rows = 2, .stride = 401, .gateOffset = 200, .upOffset = 3}));
}

TEST(Emulated, SoftCap) {
  EmuBackend be;
  expectOk(runSoftCap<EmuBackend, SoftCapF32>(be, "fp32 with a tail", {.count = 2053}));
  expectOk(runSoftCap<EmuBackend, SoftCapF32>(be, "fp32 misaligned", {.count = 999, .misaligned = true}));
  expectOk(runSoftCap<EmuBackend, SoftCapBf16>(be, "bf16", {.count = 517}));
}

TEST(Emulated, Embedding) {
  EmuBackend be;
  expectOk(runEmbedding<EmuBackend, TinyEmbedding>(be, "tiny, valid tokens", {.rows = 6}));
  expectOk(runEmbedding<EmuBackend, TinyEmbedding>(be, "tiny, out-of-range tokens",
                                                   {.rows = 7, .badRows = {2, 5}}));
}

TEST(Emulated, EmbeddingBackward) {
  EmuBackend be;
  expectOk(runEmbeddingBackward<EmuBackend, TinyEmbeddingBackward>(be, "tiny, repeated ids", {}));
  expectOk(runEmbeddingBackward<EmuBackend, TinyEmbeddingBackward>(
      be, "tiny, out-of-range ids", {.rows = 9, .vocab = 5, .badRows = {3, 6}}));
  expectOk(runEmbeddingBackward<EmuBackend, EmbeddingBackward7B>(be, "7B width",
                                                                 {.rows = 5, .vocab = 300}));
}

TEST(Emulated, AdamW) {
  EmuBackend be;
  expectOk(runAdamW<EmuBackend, AdamWMasterBf16>(be, "bf16 weight, fp32 master, 3 steps", {}));
  // 1003 = 125 groups of 8 (16-byte accesses) and 3 elements the scalar tail takes.
  expectOk(runAdamW<EmuBackend, AdamWMasterBf16>(be, "bf16 weight, partial last group",
                                                 {.count = 1003, .blocks = 2}));
  expectOk(runAdamW<EmuBackend, AdamWF32>(be, "fp32 weight, no decay", {.count = 77, .blocks = 1, .weightDecay = 0.0}));
  // The low-memory mode: bf16 gradient and moments, no master, stochastic rounding.
  expectOk(runAdamW<EmuBackend, AdamWLowMemory>(be, "low-memory, partial last group",
                                                {.count = 1003, .blocks = 2}));
  expectOk(runAdamW<EmuBackend, AdamWLowMemoryF32Grad>(be, "low-memory, fp32 gradient",
                                                       {.count = 301, .blocks = 2}));
  expectOk(runAdamWUnbiased<EmuBackend, AdamWLowMemory>(be, "low-memory, sub-ulp updates", 8192, 10));
}

TEST(Emulated, Convert) {
  EmuBackend be;
  expectOk(runConvert<EmuBackend, ConvertF32ToBf16>(be, "f32 -> bf16, 300 of 310 columns at 5", 3,
                                                     310, 5));
}

TEST(Emulated, ColumnSum) {
  EmuBackend be;
  expectOk(runColumnSum<EmuBackend, ColumnSumGates>(be, "7B gate columns of a strided view, 3 blocks",
                                                    {.rows = 150, .offset = 8, .stride = 40}));
  expectOk(runColumnSum<EmuBackend, ColumnSumBf16Wide>(be, "bf16, 300 columns, one partial block",
                                                       {.rows = 11}));
}

TEST(Emulated, GradNorm) {
  EmuBackend be;
  expectOk(runGradNorm<EmuBackend, GradNorm256>(be, "two tensors, 4 blocks", 4));
  expectOk(runGradNorm<EmuBackend, GradNorm256>(be, "two tensors, 1 block", 1));
  expectOk(runGradNorm<EmuBackend, GradNormBf16>(be, "bf16 gradients, 3 blocks", 3));
}

TEST(Emulated, CrossEntropy) {
  EmuBackend be;
  expectOk(runCrossEntropy<EmuBackend, CrossEntropyCapped>(be, "capped at 30, one row not counted", {}));
  expectOk(runCrossEntropy<EmuBackend, CrossEntropyPlain>(be, "no cap, a target past the vocabulary",
                                                          {.rows = 4, .vocab = 77, .targets = {3, 76, 77, 0}}));
}

TEST(Emulated, ChunkwiseTiny) {
  EmuBackend be;
  expectOk(runChunkwise<EmuBackend, TinyStates16, TinyOutputs16>(
      be, "L16 B2 S37 (partial last chunk)", {.batch = 2, .seq = 37}));
  expectOk(runChunkwise<EmuBackend, TinyStates16, TinyOutputs16>(
      be, "L16 B3 S5 (S < L)", {.batch = 3, .seq = 5, .seed = 8}));
  expectOk(runChunkwise<EmuBackend, TinyStates16, TinyOutputs16>(
      be, "L16 B1 S32 zero initial state", {.batch = 1, .seq = 32, .initialState = false, .seed = 9}));
  expectOk(runChunkwise<EmuBackend, TinyStates16, TinyOutputs16>(
      be, "L16 B1 S1", {.batch = 1, .seq = 1, .seed = 10}));
  expectOk(runChunkwise<EmuBackend, TinyStates32, TinyOutputs32>(
      be, "L32 two query blocks, B2 S50", {.batch = 2, .seq = 50, .seed = 12}));
  expectOk(runChunkwise<EmuBackend, TinyStates32, TinyOutputs32>(
      be, "L32, S20 (only the first query block of the chunk)", {.batch = 1, .seq = 20, .seed = 13}));
  expectOk(runChunkwise<EmuBackend, TinyStates32, TinyOutputs32Wide>(
      be, "L32 one wide query block, B2 S45", {.batch = 2, .seq = 45, .seed = 14}));
  expectOk(runChunkwise<EmuBackend, TinySigStates16, TinySigOutputs16>(
      be, "sigmoid gate, no normaliser, B2 S40", {.batch = 2, .seq = 40, .seed = 15}));
  expectOk(runChunkwise<EmuBackend, TinyBf16States16, TinyBf16Outputs16>(
      be, "bf16 gates and state, B2 S33", {.batch = 2, .seq = 33, .seed = 16}));
  expectOk(runChunkwise<EmuBackend, TinyStates16, TinyOutputs16>(
      be, "no gate soft-cap, B1 S40", {.batch = 1, .seq = 40, .cap = 0.0, .seed = 17}));
  // Documents starting at a sequence's first token (over a random initial state), inside a
  // chunk, at a chunk's first token and at the last token.
  expectOk(runChunkwise<EmuBackend, TinyStates16, TinyOutputs16>(
      be, "document resets, B2 S37", {.batch = 2, .seq = 37, .resets = {0, 5, 16, 57, 73}, .seed = 41}));
  expectOk(runChunkwise<EmuBackend, TinySigStates16, TinySigOutputs16>(
      be, "document resets, sigmoid gate, B1 S40", {.batch = 1, .seq = 40, .resets = {9, 31}, .seed = 42}));
}

TEST(Emulated, ChunkFusedTiny) {
  EmuBackend be;
  expectOk(runChunkFused<EmuBackend, TinyFused16>(
      be, "fused L16 B2 S37 (partial last chunk)", {.batch = 2, .seq = 37}));
  expectOk(runChunkFused<EmuBackend, TinyFused16>(
      be, "fused L16 B3 S5 (S < L)", {.batch = 3, .seq = 5, .seed = 8}));
  expectOk(runChunkFused<EmuBackend, TinyFused16>(
      be, "fused L16 B1 S32 zero initial state", {.batch = 1, .seq = 32, .initialState = false, .seed = 9}));
  expectOk(runChunkFused<EmuBackend, TinyFused16>(be, "fused L16 B1 S1", {.batch = 1, .seq = 1, .seed = 10}));
  expectOk(runChunkFused<EmuBackend, TinyFused32>(
      be, "fused L32 two strips, B2 S50", {.batch = 2, .seq = 50, .seed = 12}));
  expectOk(runChunkFused<EmuBackend, TinySigFused16>(
      be, "fused sigmoid gate, no normaliser, B2 S40", {.batch = 2, .seq = 40, .seed = 15}));
  expectOk(runChunkFused<EmuBackend, TinyBf16Fused16>(
      be, "fused bf16 gates and state, B2 S33", {.batch = 2, .seq = 33, .seed = 16}));
  expectOk(runChunkFused<EmuBackend, TinyFused16>(
      be, "fused no gate soft-cap, B1 S40", {.batch = 1, .seq = 40, .cap = 0.0, .seed = 17}));
  expectOk(runChunkFused<EmuBackend, SmallFused32>(
      be, "fused key split 2, DV 48 in tiles of 32, B2 S75", {.batch = 2, .seq = 75, .seed = 18}));
  expectOk(runChunkFused<EmuBackend, SmallFused32>(
      be, "fused key split 2, S < L, B1 S9", {.batch = 1, .seq = 9, .seed = 19}));
  expectOk(runChunkFused<EmuBackend, SmallFused64S4>(
      be, "fused key split 4, DV 48 in tiles of 32, B1 S150", {.batch = 1, .seq = 150, .seed = 28}));
  expectOk(runChunkFused<EmuBackend, SmallFused64S4>(
      be, "fused key split 4, S < L, B2 S21", {.batch = 2, .seq = 21, .seed = 31}));
}

TEST(Emulated, MlstmBackwardTiny) {
  EmuBackend be;
  expectOk(runMlstmBackward<EmuBackend, TinyStates16, TinyOutputs16, TinyBackward16>(
      be, "backward L16 B2 S37 (partial last chunk)", {}));
  expectOk(runMlstmBackward<EmuBackend, TinyStates16, TinyOutputs16, TinyBackward16>(
      be, "backward L16 B1 S5 (S < L), random initial state", {.batch = 1, .seq = 5, .initialState = true, .seed = 32}));
  expectOk(runMlstmBackward<EmuBackend, TinyStates32, TinyOutputs32, TinyBackward32>(
      be, "backward L32 B2 S70", {.batch = 2, .seq = 70, .seed = 33}));
  expectOk(runMlstmBackward<EmuBackend, TinySigStates16, TinySigOutputs16, TinySigBackward16>(
      be, "backward sigmoid gate, no normaliser, B2 S40", {.batch = 2, .seq = 40, .seed = 34}));
  expectOk(runMlstmBackward<EmuBackend, TinyBf16States16, TinyBf16Outputs16, TinyBf16Backward16>(
      be, "backward bf16 gates and state, B2 S33", {.batch = 2, .seq = 33, .seed = 35}));
  expectOk(runMlstmBackward<EmuBackend, TinyStates16, TinyOutputs16, TinyBackward16>(
      be, "backward no gate soft-cap, B1 S40", {.batch = 1, .seq = 40, .cap = 0.0, .seed = 36}));
  expectOk(runMlstmBackward<EmuBackend, TinyStates16, TinyOutputs16, TinyBackward16>(
      be, "backward document resets, B2 S37", {.resets = {5, 16, 36, 37 + 20}, .seed = 43}));

  expectOk(runMlstmBackward<EmuBackend, TinyStates32, TinyOutputs32, TinyBackward32>(
      be, "backward document resets, L32 B2 S70", {.batch = 2, .seq = 70, .resets = {1, 32, 70 + 40}, .seed = 44}));
  expectOk(runMlstmBackward<EmuBackend, TinySigStates16, TinySigOutputs16, TinySigBackward16>(
      be, "backward document resets, sigmoid gate, B1 S40", {.batch = 1, .seq = 40, .resets = {12}, .seed = 45}));
}

// Whether this binary is built with AddressSanitizer (GCC's macro, clang's feature test).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

TEST(Emulated, Chunkwise7BHeads) {
  if (kSanitized)
    GTEST_SKIP() << "7B-head chunkwise emulation takes minutes under AddressSanitizer; the "
                    "non-sanitized tree runs it (and every tiny-shape path runs here)";
  EmuBackend be;
  expectOk(runChunkwise<EmuBackend, States64, Outputs64>(
      be, "7B heads L64 B1 S70", {.batch = 1, .seq = 70, .seed = 21}));
  expectOk(runChunkwise<EmuBackend, States128, Outputs128>(
      be, "7B heads L128 (two query blocks, DV tile 128) B1 S150", {.batch = 1, .seq = 150, .seed = 22}));
}

TEST(Emulated, DecodeTiny) {
  EmuBackend be;
  expectOk(runDecode<EmuBackend, TinyDecode>(be, "one tile per head, B2 x5 steps",
                                             {.batch = 2, .steps = 5}));
  expectOk(runDecode<EmuBackend, TinyDecodeSplit>(be, "two DV tiles per head, B3 x4 steps",
                                                  {.batch = 3, .steps = 4, .seed = 12}));
  expectOk(runDecode<EmuBackend, TinySigDecode>(be, "sigmoid gate, no normaliser",
                                                {.batch = 2, .steps = 3, .seed = 13}));
  expectOk(runDecode<EmuBackend, TinyBf16Decode>(be, "bf16 gates and state",
                                                 {.batch = 2, .steps = 4, .seed = 14}));
}

TEST(Emulated, Decode7BHeads) {
  EmuBackend be;
  expectOk(runDecode<EmuBackend, Decode7B>(be, "7B heads B1 x2 steps", {.batch = 1, .steps = 2}));
}

} // namespace
