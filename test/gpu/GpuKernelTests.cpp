//===- GpuKernelTests.cpp - Every kernel family on the GPU ----------------===//
//
// The kernels compiled by NVRTC (a translation unit of the form the compiler emits, against the
// embedded headers, for the device's sm_XXa) and run on the GPU, against the float64 reference,
// on random inputs with poisoned outputs (harness/KernelCases.h states the tolerances). Without
// a usable driver every test is SKIPPED with the reason (a FAILURE when XLC_REQUIRE_GPU is set,
// as run_on_gpu.sh does: harness/GpuSkip.h).
//
// The chunkwise cases cover several (B, S, L) including S not a multiple of L and S < L, a
// nonzero initial state and the final state; the decode step is chained over several steps;
// tiny-model and xLSTM 7B head shapes (NH 8, DQK 256, DV 512, chunk 64 and 128). These are
// hand-picked variants (Variants.h); the GpuEmitted tests run exactly the configurations
// xlc-compile emits for every model in models/ (EmittedVariants.h).
//
//===----------------------------------------------------------------------===//
#include "GpuBackend.h"
#include "GpuSkip.h"
#include "EmittedVariants.h"
#include "KernelCases.h"
#include "Variants.h"

#include "runtime/cuda/Nvrtc.h"
#include "runtime/support/Error.h"

#include <gtest/gtest.h>

#include <memory>
#include <regex>

namespace {

using namespace xlc::test;
using namespace xlc::test::variants;

#define XLC_REQUIRE_GPU(be) XLC_REQUIRE_GPU_BACKEND(be)

void expectOk(const CaseReport &report) {
  std::printf("%s", report.describe().c_str());
  std::fflush(stdout);
  EXPECT_TRUE(report.ok()) << report.describe();
}

TEST(Gpu, RmsNorm) {
  XLC_REQUIRE_GPU(be);
  expectOk(runRmsNorm<GpuBackend, TinyRmsNorm>(be, "tiny, contiguous", {.rows = 5}));
  expectOk(runRmsNorm<GpuBackend, TinyRmsNorm>(
      be, "tiny, strided view (scalar path), no weight",
      {.rows = 3, .offset = 3, .stride = 101, .weight = false}));
  expectOk(runRmsNorm<GpuBackend, TinyRmsNormF32>(be, "tiny fp32", {.rows = 4}));
  expectOk(runRmsNorm<GpuBackend, RmsNorm7B>(be, "7B, 257 rows", {.rows = 257}));
  expectOk(runRmsNorm<GpuBackend, RmsNorm7B>(be, "7B, last-token view",
                                             {.rows = 4, .offset = 0, .stride = 5 * 4096}));
}

TEST(Gpu, NormGate) {
  XLC_REQUIRE_GPU(be);
  expectOk(runNormGate<GpuBackend, TinyNormGate>(be, "tiny, o view of q|k|v|o",
                                                 {.rows = 4, .oOffset = 96, .oStride = 192}));
  expectOk(runNormGate<GpuBackend, TinyNormGate>(
      be, "tiny, unaligned views (scalar path)",
      {.rows = 3, .hOffset = 1, .hStride = 67, .oOffset = 5, .oStride = 77}));
  expectOk(runNormGate<GpuBackend, NormGate7B>(
      be, "7B, o view of the fused projection", {.rows = 33, .oOffset = 8192, .oStride = 12288}));
}

TEST(Gpu, Swiglu) {
  XLC_REQUIRE_GPU(be);
  expectOk(runSwiglu<GpuBackend, TinySwiglu>(be, "tiny, fused [gate | up]", {.rows = 3}));
  expectOk(runSwiglu<GpuBackend, TinySwiglu>(
      be, "tiny, unaligned (scalar path)", {.rows = 2, .stride = 389, .gateOffset = 1, .upOffset = 195}));
  expectOk(runSwiglu<GpuBackend, Swiglu7B>(be, "7B FFN 10944, fused", {.rows = 65}));
}

TEST(Gpu, SoftCap) {
  XLC_REQUIRE_GPU(be);
  expectOk(runSoftCap<GpuBackend, SoftCapF32>(be, "fp32 with a tail", {.count = 2053}));
  expectOk(runSoftCap<GpuBackend, SoftCapF32>(be, "fp32 misaligned", {.count = 999, .misaligned = true}));
  expectOk(runSoftCap<GpuBackend, SoftCapF32>(be, "fp32, 3 rows of the 7B vocab", {.count = 3 * 50304}));
  expectOk(runSoftCap<GpuBackend, SoftCapBf16>(be, "bf16", {.count = 517}));
}

TEST(Gpu, Embedding) {
  XLC_REQUIRE_GPU(be);
  expectOk(runEmbedding<GpuBackend, TinyEmbedding>(be, "tiny, valid tokens", {.rows = 6}));
  expectOk(runEmbedding<GpuBackend, TinyEmbedding>(be, "tiny, out-of-range tokens",
                                                   {.rows = 7, .badRows = {2, 5}}));
  expectOk(runEmbedding<GpuBackend, Embedding7B>(be, "7B, 50304 x 4096 table",
                                                 {.rows = 40, .vocab = 50304}));
  expectOk(runEmbedding<GpuBackend, Embedding7B>(be, "7B, one bad token",
                                                 {.rows = 9, .vocab = 50304, .badRows = {8}}));
}

// The training families (the same cases as the emulator's, plus 7B-sized ones).
TEST(Gpu, TrainingFamilies) {
  XLC_REQUIRE_GPU(be);
  expectOk(runRmsNormBackward<GpuBackend, TinyRmsNormBackward>(be, "rms_norm_backward tiny", {.rows = 9}));
  expectOk(runRmsNormBackward<GpuBackend, RmsNormBackward7B>(be, "rms_norm_backward 7B, 257 rows", {.rows = 257}));
  expectOk(runRmsNormBackward<GpuBackend, RmsNormBackward7B>(
      be, "rms_norm_backward 7B, 129 rows, a residual gradient added", {.rows = 129, .residual = true}));
  expectOk(runNormGateBackward<GpuBackend, NormGateBackward7B>(be, "norm_gate_backward 7B, 65 rows",
                                                               {.rows = 65, .oOffset = 8192, .oStride = 12288}));
  expectOk(runSwigluBackward<GpuBackend, SwigluBackward7B>(be, "swiglu_backward 7B", {.rows = 33}));
  expectOk(runEmbeddingBackward<GpuBackend, EmbeddingBackward7B>(
      be, "embedding_backward 7B", {.rows = 300, .vocab = 50304, .badRows = {7}}));
  expectOk(runCrossEntropy<GpuBackend, CrossEntropyCapped>(be, "cross_entropy, 7B vocabulary",
                                                           {.rows = 17, .vocab = 50304}));
  expectOk(runAdamW<GpuBackend, AdamWMasterBf16>(be, "adamw bf16 + master, 1M elements",
                                                 {.count = 1 << 20, .blocks = 528}));
  expectOk(runAdamW<GpuBackend, AdamWLowMemory>(be, "adamw low-memory (bf16 grad and moments, "
                                                "stochastic rounding), 1M elements",
                                                {.count = 1 << 20, .blocks = 528}));
  expectOk(runAdamWUnbiased<GpuBackend, AdamWLowMemory>(be, "adamw low-memory, sub-ulp updates",
                                                        1 << 20, 20));
  expectOk(runGradNorm<GpuBackend, GradNorm256>(be, "grad_norm, 528 blocks", 528));
  expectOk(runGradNorm<GpuBackend, GradNormBf16>(be, "grad_norm bf16, 528 blocks", 528));
  expectOk(runConvert<GpuBackend, ConvertF32ToBf16>(be, "convert f32 -> bf16, 65 rows", 65, 310,
                                                     5));
  expectOk(runColumnSum<GpuBackend, ColumnSumGates>(be, "column_sum, 7B gates, 8192 rows",
                                                    {.rows = 8192, .offset = 0, .stride = 16}));
  expectOk(runColumnSum<GpuBackend, ColumnSumBf16Wide>(be, "column_sum, bf16 300 columns",
                                                       {.rows = 1000}));
}

TEST(Gpu, MlstmBackwardTiny) {
  XLC_REQUIRE_GPU(be);
  expectOk(runMlstmBackward<GpuBackend, TinyStates16, TinyOutputs16, TinyBackward16>(
      be, "backward L16 B2 S37 (partial last chunk)", {}));
  expectOk(runMlstmBackward<GpuBackend, TinyStates16, TinyOutputs16, TinyBackward16>(
      be, "backward L16 B1 S5 (S < L), random initial state", {.batch = 1, .seq = 5, .initialState = true, .seed = 32}));
  expectOk(runMlstmBackward<GpuBackend, TinyStates32, TinyOutputs32, TinyBackward32>(
      be, "backward L32 B2 S70", {.batch = 2, .seq = 70, .seed = 33}));
  expectOk(runMlstmBackward<GpuBackend, TinySigStates16, TinySigOutputs16, TinySigBackward16>(
      be, "backward sigmoid gate, no normaliser, B2 S40", {.batch = 2, .seq = 40, .seed = 34}));
  expectOk(runMlstmBackward<GpuBackend, TinyBf16States16, TinyBf16Outputs16, TinyBf16Backward16>(
      be, "backward bf16 gates and state, B2 S33", {.batch = 2, .seq = 33, .seed = 35}));
  expectOk(runMlstmBackward<GpuBackend, TinyStates16, TinyOutputs16, TinyBackward16>(
      be, "backward document resets, B2 S37", {.resets = {5, 16, 36, 37 + 20}, .seed = 43}));
  expectOk(runMlstmBackward<GpuBackend, TinySigStates16, TinySigOutputs16, TinySigBackward16>(
      be, "backward document resets, sigmoid gate, B1 S40", {.batch = 1, .seq = 40, .resets = {12}, .seed = 45}));
}

TEST(Gpu, MlstmBackward7B) {
  XLC_REQUIRE_GPU(be);
  expectOk(runMlstmBackward<GpuBackend, States64, Outputs64, Backward64>(
      be, "backward 7B head L64 B1 S300", {.batch = 1, .seq = 300, .seed = 37}));
  expectOk(runMlstmBackward<GpuBackend, SigStates128, SigOutputs128, SigBackward128>(
      be, "backward 7B head mLSTMsig L128 B2 S200", {.batch = 2, .seq = 200, .seed = 38}));
  expectOk(runMlstmBackward<GpuBackend, States64, Outputs64, Backward64>(
      be, "backward 7B head L64 B2 S300, document resets",
      {.batch = 2, .seq = 300, .resets = {64, 100, 300 + 7, 300 + 250}, .seed = 39}));
}

TEST(Gpu, ChunkwiseTiny) {
  XLC_REQUIRE_GPU(be);
  expectOk(runChunkwise<GpuBackend, TinyStates16, TinyOutputs16>(
      be, "L16 B2 S37 (partial last chunk)", {.batch = 2, .seq = 37}));
  expectOk(runChunkwise<GpuBackend, TinyStates16, TinyOutputs16>(
      be, "L16 B3 S5 (S < L)", {.batch = 3, .seq = 5, .seed = 8}));
  expectOk(runChunkwise<GpuBackend, TinyStates16, TinyOutputs16>(
      be, "L16 B1 S32 zero initial state", {.batch = 1, .seq = 32, .initialState = false, .seed = 9}));
  expectOk(runChunkwise<GpuBackend, TinyStates16, TinyOutputs16>(
      be, "L16 B1 S1", {.batch = 1, .seq = 1, .seed = 10}));
  expectOk(runChunkwise<GpuBackend, TinyStates16, TinyOutputs16>(
      be, "document resets, B2 S37", {.batch = 2, .seq = 37, .resets = {0, 5, 16, 57, 73}, .seed = 41}));
  expectOk(runChunkwise<GpuBackend, TinyStates16, TinyOutputs16>(
      be, "L16 B4 S1000", {.batch = 4, .seq = 1000, .seed = 11}));
  expectOk(runChunkwise<GpuBackend, TinyStates32, TinyOutputs32>(
      be, "L32 two query blocks, B2 S50", {.batch = 2, .seq = 50, .seed = 12}));
  expectOk(runChunkwise<GpuBackend, TinyStates32, TinyOutputs32>(
      be, "L32, S20 (only the first query block of the chunk)", {.batch = 1, .seq = 20, .seed = 13}));
  expectOk(runChunkwise<GpuBackend, TinyStates32, TinyOutputs32Wide>(
      be, "L32 one wide query block, B2 S45", {.batch = 2, .seq = 45, .seed = 14}));
  expectOk(runChunkwise<GpuBackend, TinySigStates16, TinySigOutputs16>(
      be, "sigmoid gate, no normaliser, B2 S40", {.batch = 2, .seq = 40, .seed = 15}));
  expectOk(runChunkwise<GpuBackend, TinyBf16States16, TinyBf16Outputs16>(
      be, "bf16 gates and state, B2 S33", {.batch = 2, .seq = 33, .seed = 16}));
  expectOk(runChunkwise<GpuBackend, TinyStates16, TinyOutputs16>(
      be, "no gate soft-cap, B1 S40", {.batch = 1, .seq = 40, .cap = 0.0, .seed = 17}));
}

TEST(Gpu, Chunkwise7BHeads) {
  XLC_REQUIRE_GPU(be);
  expectOk(runChunkwise<GpuBackend, States64, Outputs64>(
      be, "7B L64 B2 S200 (partial last chunk)", {.batch = 2, .seq = 200, .seed = 21}));
  expectOk(runChunkwise<GpuBackend, States64, Outputs64>(
      be, "7B L64 B2 S50 (S < L)", {.batch = 2, .seq = 50, .seed = 22}));
  expectOk(runChunkwise<GpuBackend, States64, Outputs64>(
      be, "7B L64 B1 S256 zero initial state", {.batch = 1, .seq = 256, .initialState = false, .seed = 23}));
  expectOk(runChunkwise<GpuBackend, States128, Outputs128>(
      be, "7B L128 B1 S300 (two query blocks, partial)", {.batch = 1, .seq = 300, .seed = 24}));
  expectOk(runChunkwise<GpuBackend, States128, Outputs128>(
      be, "7B L128 B3 S100 (S < L, two query blocks)", {.batch = 3, .seq = 100, .seed = 25}));
  expectOk(runChunkwise<GpuBackend, SigStates128, SigOutputs128>(
      be, "7B mLSTMsig L128 B1 S260", {.batch = 1, .seq = 260, .seed = 26}));
  expectOk(runChunkwise<GpuBackend, Bf16States64, Bf16Outputs64>(
      be, "7B bf16 state L64 B1 S130", {.batch = 1, .seq = 130, .seed = 27}));
}

TEST(Gpu, ChunkFused) {
  XLC_REQUIRE_GPU(be);
  expectOk(runChunkFused<GpuBackend, TinyFused16>(
      be, "fused L16 B2 S37 (partial last chunk)", {.batch = 2, .seq = 37}));
  expectOk(runChunkFused<GpuBackend, TinyFused16>(
      be, "fused L16 B4 S1000", {.batch = 4, .seq = 1000, .seed = 11}));
  expectOk(runChunkFused<GpuBackend, TinyFused32>(
      be, "fused L32 two strips, B2 S50", {.batch = 2, .seq = 50, .seed = 12}));
  expectOk(runChunkFused<GpuBackend, TinySigFused16>(
      be, "fused sigmoid gate, no normaliser, B2 S40", {.batch = 2, .seq = 40, .seed = 15}));
  expectOk(runChunkFused<GpuBackend, TinyBf16Fused16>(
      be, "fused bf16 gates and state, B2 S33", {.batch = 2, .seq = 33, .seed = 16}));
  expectOk(runChunkFused<GpuBackend, SmallFused32>(
      be, "fused key split 2, DV 48 in tiles of 32, B2 S75", {.batch = 2, .seq = 75, .seed = 18}));
  expectOk(runChunkFused<GpuBackend, Fused64>(
      be, "7B fused L64 B2 S200 (partial last chunk)", {.batch = 2, .seq = 200, .seed = 21}));
  expectOk(runChunkFused<GpuBackend, Fused64>(
      be, "7B fused L64 B2 S50 (S < L)", {.batch = 2, .seq = 50, .seed = 22}));
  expectOk(runChunkFused<GpuBackend, Fused64>(
      be, "7B fused L64 B1 S256 zero initial state", {.batch = 1, .seq = 256, .initialState = false, .seed = 23}));
  expectOk(runChunkFused<GpuBackend, Fused64T32>(
      be, "7B fused L64 DV tile 32, B1 S300", {.batch = 1, .seq = 300, .seed = 24}));
  expectOk(runChunkFused<GpuBackend, SmallFused64S4>(
      be, "fused key split 4, DV 48 in tiles of 32, B2 S150", {.batch = 2, .seq = 150, .seed = 28}));
  expectOk(runChunkFused<GpuBackend, Fused64S4>(
      be, "7B fused L64 key split 4, B2 S200", {.batch = 2, .seq = 200, .seed = 29}));
  expectOk(runChunkFused<GpuBackend, Fused64T32S4>(
      be, "7B fused L64 DV tile 32 key split 4, B1 S70", {.batch = 1, .seq = 70, .seed = 30}));
  expectOk(runChunkFused<GpuBackend, SigFused64>(
      be, "7B fused mLSTMsig L64 B1 S260", {.batch = 1, .seq = 260, .seed = 26}));
  expectOk(runChunkFused<GpuBackend, Bf16Fused64>(
      be, "7B fused bf16 state L64 B1 S130", {.batch = 1, .seq = 130, .seed = 27}));
}

TEST(Gpu, DecodeTiny) {
  XLC_REQUIRE_GPU(be);
  expectOk(runDecode<GpuBackend, TinyDecode>(be, "one tile per head, B2 x5 steps",
                                             {.batch = 2, .steps = 5}));
  expectOk(runDecode<GpuBackend, TinyDecodeSplit>(be, "two DV tiles per head, B3 x4 steps",
                                                  {.batch = 3, .steps = 4, .seed = 12}));
  expectOk(runDecode<GpuBackend, TinySigDecode>(be, "sigmoid gate, no normaliser",
                                                {.batch = 2, .steps = 3, .seed = 13}));
  expectOk(runDecode<GpuBackend, TinyBf16Decode>(be, "bf16 gates and state",
                                                 {.batch = 2, .steps = 4, .seed = 14}));
}

TEST(Gpu, Decode7BHeads) {
  XLC_REQUIRE_GPU(be);
  expectOk(runDecode<GpuBackend, Decode7B>(be, "7B B1 x6 steps", {.batch = 1, .steps = 6}));
  expectOk(runDecode<GpuBackend, Decode7B>(be, "7B B64 x3 steps", {.batch = 64, .steps = 3, .seed = 31}));
  expectOk(runDecode<GpuBackend, Decode7B32>(be, "7B DV tile 32, B5 x4 steps", {.batch = 5, .steps = 4, .seed = 32}));
  expectOk(runDecode<GpuBackend, Bf16Decode7B>(be, "7B bf16 state, B3 x4 steps", {.batch = 3, .steps = 4, .seed = 33}));
}

// Every kernel configuration xlc-compile emits for the models in models/ (EmittedVariants.h,
// generated from the compiled artifacts and kept current by the gpu_emitted_variants_current
// ctest), each on a standard case against the float64 reference. The hand-picked cases above add
// views, tails, odd sizes and variants codegen does not choose today.
namespace em = xlc::test::emitted;

TEST(GpuEmitted, RowKernels) {
  XLC_REQUIRE_GPU(be);
#define XLC_CASE(V, label, hasWeight)                                                          \
  expectOk(runRmsNorm<GpuBackend, em::V>(be, label, {.rows = 7, .weight = hasWeight}));
  XLC_EMITTED_RMS_NORM(XLC_CASE)
#undef XLC_CASE
#define XLC_CASE(V, label) expectOk(runNormGate<GpuBackend, em::V>(be, label, {.rows = 5}));
  XLC_EMITTED_NORM_GATE(XLC_CASE)
#undef XLC_CASE
#define XLC_CASE(V, label) expectOk(runSwiglu<GpuBackend, em::V>(be, label, {.rows = 3}));
  XLC_EMITTED_SWIGLU(XLC_CASE)
#undef XLC_CASE
#define XLC_CASE(V, label, count_, cap_)                                                       \
  expectOk(runSoftCap<GpuBackend, em::V>(be, label, {.count = count_, .cap = cap_}));
  XLC_EMITTED_SOFT_CAP(XLC_CASE)
#undef XLC_CASE
#define XLC_CASE(V, label, vocab_)                                                             \
  expectOk(runEmbedding<GpuBackend, em::V>(be, label, {.rows = 9, .vocab = vocab_, .badRows = {4}}));
  XLC_EMITTED_EMBEDDING(XLC_CASE)
#undef XLC_CASE
}

TEST(GpuEmitted, MlstmKernels) {
  XLC_REQUIRE_GPU(be);
#define XLC_CASE(VA, VB, label, cap_, seq_)                                                    \
  expectOk(runChunkwise<GpuBackend, em::VA, em::VB>(be, label,                                 \
                                                    {.batch = 2, .seq = seq_, .cap = cap_}));
  XLC_EMITTED_CHUNKWISE(XLC_CASE)
#undef XLC_CASE
#define XLC_CASE(V, label, cap_, seq_)                                                         \
  expectOk(runChunkFused<GpuBackend, em::V>(be, label, {.batch = 2, .seq = seq_, .cap = cap_}));
  XLC_EMITTED_CHUNK_FUSED(XLC_CASE)
#undef XLC_CASE
#define XLC_CASE(V, label, cap_)                                                               \
  expectOk(runDecode<GpuBackend, em::V>(be, label, {.batch = 2, .steps = 3, .cap = cap_}));
  XLC_EMITTED_DECODE(XLC_CASE)
#undef XLC_CASE
}

// Last (gtest runs tests in order within a file): the registers and spills of what was compiled.
TEST(Gpu, ZzCompileReport) {
  XLC_REQUIRE_GPU(be);
  const std::regex regs(R"(Used (\d+) registers)"), spills(R"((\d+) bytes spill stores)");
  for (const auto &[config, log] : be.compileLogs()) {
    std::smatch r, s;
    std::regex_search(log, r, regs);
    std::regex_search(log, s, spills);
    std::printf("%s registers, %s spill bytes: %.110s\n", r.size() > 1 ? r[1].str().c_str() : "?",
                s.size() > 1 ? s[1].str().c_str() : "?", config.c_str());
  }
}

} // namespace
