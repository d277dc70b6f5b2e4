//===- NvrtcCompileTest.cpp - Every kernel family compiles under NVRTC -----===//
//
// Verification ladder step 3 (DESIGN.md): each kernel variant of test/gpu/harness/Variants.h
// (tiny-model and xLSTM 7B shapes) is emitted exactly as the compiler emits it and compiled with
// NVRTC to CUBIN for sm_90a against the embedded device headers. No GPU needed; skipped (with the
// reason) only when libnvrtc cannot be loaded, and failed instead when XLC_REQUIRE_GPU is set
// (test/gpu/harness/GpuSkip.h). ptxas's register and spill report is printed.
//
//===----------------------------------------------------------------------===//
#include "Variants.h"

#include "runtime/cuda/Nvrtc.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/kernels/KernelFamily.h"
#include "test/gpu/harness/GpuSkip.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace {

using namespace xlc::test;

struct CompileCase {
  std::string name;
  const Family *family;
  std::string config;
};

#define XLC_COMPILE_CASE(family, variant)                                                      \
  CompileCase { #variant, &family, variants::variant::kConfig }
// One variant of a header with several entry points (the four backward kernels): named per entry.
#define XLC_COMPILE_ENTRY(family, variant, entry)                                              \
  CompileCase { #variant "_" #entry, &family, variants::variant::kConfig }

const std::vector<CompileCase> &compileCases() {
  static const std::vector<CompileCase> cases = {
      XLC_COMPILE_CASE(kEmbedding, TinyEmbedding),
      XLC_COMPILE_CASE(kEmbeddingBackward, TinyEmbeddingBackward),
      XLC_COMPILE_CASE(kEmbeddingBackward, EmbeddingBackward7B),
      XLC_COMPILE_CASE(kAdamW, AdamWMasterBf16),
      XLC_COMPILE_CASE(kAdamW, AdamWF32),
      XLC_COMPILE_CASE(kGradNorm, GradNorm256),
      XLC_COMPILE_CASE(kConvert, ConvertF32ToBf16),
      XLC_COMPILE_CASE(kColumnSum, ColumnSumGates),
      XLC_COMPILE_CASE(kColumnSum, ColumnSumBf16Wide),
      XLC_COMPILE_CASE(kCrossEntropy, CrossEntropyCapped),
      XLC_COMPILE_CASE(kCrossEntropy, CrossEntropyPlain),
      XLC_COMPILE_CASE(kRmsNorm, TinyRmsNorm),
      XLC_COMPILE_CASE(kRmsNorm, TinyRmsNormF32),
      XLC_COMPILE_CASE(kRmsNormBackward, TinyRmsNormBackward),
      XLC_COMPILE_CASE(kRmsNormBackward, TinyRmsNormBackwardF32),
      XLC_COMPILE_CASE(kRmsNormBackward, RmsNormBackward7B),
      XLC_COMPILE_CASE(kNormGate, TinyNormGate),
      XLC_COMPILE_CASE(kSwiglu, TinySwiglu),
      XLC_COMPILE_CASE(kNormGateBackward, TinyNormGateBackward),
      XLC_COMPILE_CASE(kNormGateBackward, NormGateBackward7B),
      XLC_COMPILE_CASE(kSwigluBackward, TinySwigluBackward),
      XLC_COMPILE_CASE(kSwigluBackward, SwigluBackward7B),
      XLC_COMPILE_CASE(kSoftCap, SoftCapF32),
      XLC_COMPILE_CASE(kSoftCap, SoftCapBf16),
      XLC_COMPILE_ENTRY(kBackwardReadout, TinyBackward16, Readout),
      XLC_COMPILE_ENTRY(kBackwardStates, TinyBackward16, States),
      XLC_COMPILE_ENTRY(kBackwardChunk, TinyBackward16, Chunk),
      XLC_COMPILE_ENTRY(kBackwardGates, TinyBackward16, Gates),
      XLC_COMPILE_ENTRY(kBackwardReadout, TinyBackward32, Readout),
      XLC_COMPILE_ENTRY(kBackwardStates, TinyBackward32, States),
      XLC_COMPILE_ENTRY(kBackwardChunk, TinyBackward32, Chunk),
      XLC_COMPILE_ENTRY(kBackwardGates, TinyBackward32, Gates),
      XLC_COMPILE_ENTRY(kBackwardReadout, TinySigBackward16, Readout),
      XLC_COMPILE_ENTRY(kBackwardStates, TinySigBackward16, States),
      XLC_COMPILE_ENTRY(kBackwardChunk, TinySigBackward16, Chunk),
      XLC_COMPILE_ENTRY(kBackwardGates, TinySigBackward16, Gates),
      XLC_COMPILE_ENTRY(kBackwardReadout, TinyBf16Backward16, Readout),
      XLC_COMPILE_ENTRY(kBackwardStates, TinyBf16Backward16, States),
      XLC_COMPILE_ENTRY(kBackwardChunk, TinyBf16Backward16, Chunk),
      XLC_COMPILE_ENTRY(kBackwardGates, TinyBf16Backward16, Gates),
      XLC_COMPILE_ENTRY(kBackwardReadout, Backward64, Readout),
      XLC_COMPILE_ENTRY(kBackwardStates, Backward64, States),
      XLC_COMPILE_ENTRY(kBackwardChunk, Backward64, Chunk),
      XLC_COMPILE_ENTRY(kBackwardGates, Backward64, Gates),
      XLC_COMPILE_ENTRY(kBackwardReadout, SigBackward128, Readout),
      XLC_COMPILE_ENTRY(kBackwardStates, SigBackward128, States),
      XLC_COMPILE_ENTRY(kBackwardChunk, SigBackward128, Chunk),
      XLC_COMPILE_ENTRY(kBackwardGates, SigBackward128, Gates),
      XLC_COMPILE_CASE(kChunkStates, TinyStates16),
      XLC_COMPILE_CASE(kChunkOutputs, TinyOutputs16),
      XLC_COMPILE_CASE(kChunkStates, TinyStates32),
      XLC_COMPILE_CASE(kChunkOutputs, TinyOutputs32),
      XLC_COMPILE_CASE(kChunkOutputs, TinyOutputs32Wide),
      XLC_COMPILE_CASE(kChunkStates, TinySigStates16),
      XLC_COMPILE_CASE(kChunkOutputs, TinySigOutputs16),
      XLC_COMPILE_CASE(kChunkStates, TinyBf16States16),
      XLC_COMPILE_CASE(kChunkOutputs, TinyBf16Outputs16),
      XLC_COMPILE_CASE(kDecodeStep, TinyDecode),
      XLC_COMPILE_CASE(kDecodeStep, TinyDecodeSplit),
      XLC_COMPILE_CASE(kDecodeStep, TinySigDecode),
      XLC_COMPILE_CASE(kDecodeStep, TinyBf16Decode),
      XLC_COMPILE_CASE(kEmbedding, Embedding7B),
      XLC_COMPILE_CASE(kRmsNorm, RmsNorm7B),
      XLC_COMPILE_CASE(kNormGate, NormGate7B),
      XLC_COMPILE_CASE(kSwiglu, Swiglu7B),
      XLC_COMPILE_CASE(kChunkStates, States64),
      XLC_COMPILE_CASE(kChunkOutputs, Outputs64),
      XLC_COMPILE_CASE(kChunkStates, States128),
      XLC_COMPILE_CASE(kChunkOutputs, Outputs128),
      XLC_COMPILE_CASE(kChunkOutputs, Outputs64W),
      XLC_COMPILE_CASE(kChunkStates, States128W),
      XLC_COMPILE_CASE(kChunkStates, States128K),
      XLC_COMPILE_CASE(kChunkStates, States128F),
      XLC_COMPILE_CASE(kChunkOutputs, Outputs128Q),
      XLC_COMPILE_CASE(kChunkStates, States256),
      XLC_COMPILE_CASE(kChunkOutputs, Outputs256),
      XLC_COMPILE_CASE(kChunkStates, SigStates128),
      XLC_COMPILE_CASE(kChunkOutputs, SigOutputs128),
      XLC_COMPILE_CASE(kChunkStates, Bf16States64),
      XLC_COMPILE_CASE(kChunkOutputs, Bf16Outputs64),
      XLC_COMPILE_CASE(kChunkFused, TinyFused16),
      XLC_COMPILE_CASE(kChunkFused, TinyFused32),
      XLC_COMPILE_CASE(kChunkFused, TinySigFused16),
      XLC_COMPILE_CASE(kChunkFused, TinyBf16Fused16),
      XLC_COMPILE_CASE(kChunkFused, SmallFused32),
      XLC_COMPILE_CASE(kChunkFused, Fused64),
      XLC_COMPILE_CASE(kChunkFused, Fused64T32),
      XLC_COMPILE_CASE(kChunkFused, SmallFused64S4),
      XLC_COMPILE_CASE(kChunkFused, Fused64S4),
      XLC_COMPILE_CASE(kChunkFused, Fused64T32S4),
      XLC_COMPILE_CASE(kChunkFused, SigFused64),
      XLC_COMPILE_CASE(kChunkFused, Bf16Fused64),
      XLC_COMPILE_CASE(kDecodeStep, Decode7B),
      XLC_COMPILE_CASE(kDecodeStep, Decode7B32),
      XLC_COMPILE_CASE(kDecodeStep, Bf16Decode7B),
  };
  static const std::vector<CompileCase> withScores = [] {
    // Each fused state pass runs after the scores kernel of its cell and chunk.
    std::vector<CompileCase> all = cases;
    std::set<std::string> seen;
    for (const CompileCase &c : cases)
      if (c.family == &kChunkFused && seen.insert(scoresConfigOf(c.config)).second)
        all.push_back({c.name + "Scores", &kChunkScores, scoresConfigOf(c.config)});
    return all;
  }();
  return withScores;
}

class NvrtcCompile : public ::testing::TestWithParam<CompileCase> {};

TEST_P(NvrtcCompile, ToCubinForSm90a) {
  std::string reason;
  if (!xlc::cuda::Nvrtc::available(&reason))
    XLC_SKIP_OR_FAIL("libnvrtc cannot be loaded: " << reason);
  const CompileCase &c = GetParam();
  std::vector<xlc::cuda::NvrtcHeader> headers;
  for (const xlc::device::EmbeddedHeader &h : xlc::device::embeddedHeaders())
    headers.push_back({h.name, h.text});
  std::vector<std::string> options = xlc::cuda::Nvrtc::defaultOptions("sm_90a");
  options.emplace_back("--ptxas-options=-v");
  std::string log;
  const std::string source = translationUnit(*c.family, c.config);
  std::vector<char> cubin;
  ASSERT_NO_THROW(cubin = xlc::cuda::Nvrtc::instance().compile(source, c.name + ".cu",
                                                               options, headers, &log))
      << source;
  EXPECT_GT(cubin.size(), 0u);
  // ELF magic: a CUBIN, not PTX.
  ASSERT_GE(cubin.size(), 4u);
  EXPECT_EQ(std::string(cubin.data() + 1, 3), "ELF");
  std::smatch regs, spills;
  const bool haveRegs = std::regex_search(log, regs, std::regex(R"(Used (\d+) registers)"));
  const bool haveSpills =
      std::regex_search(log, spills, std::regex(R"((\d+) bytes spill stores, (\d+) bytes spill loads)"));
  std::printf("%-20s %-32s %7zu bytes cubin, %s registers, %s spill stores\n", c.name.c_str(),
              c.family->function, cubin.size(), haveRegs ? regs[1].str().c_str() : "?",
              haveSpills ? spills[1].str().c_str() : "?");
}

INSTANTIATE_TEST_SUITE_P(Variants, NvrtcCompile, ::testing::ValuesIn(compileCases()),
                         [](const ::testing::TestParamInfo<CompileCase> &info) {
                           return info.param.name;
                         });

/// Compiles the kernel the registry renders for |family| and |config| (renderKernel: the
/// artifact's source, with its static_assert that the family's shared-memory size is the
/// header's) for sm_90a against the embedded headers.
void expectRenderedCompiles(const char *family, const xlc::kernels::Config &config) {
  SCOPED_TRACE(std::string(family) + " " + config.dump());
  std::vector<xlc::cuda::NvrtcHeader> headers;
  for (const xlc::device::EmbeddedHeader &h : xlc::device::embeddedHeaders())
    headers.push_back({h.name, h.text});
  std::vector<std::string> options = xlc::cuda::Nvrtc::defaultOptions("sm_90a");
  const xlc::artifact::Kernel k =
      xlc::kernels::renderKernel(*xlc::kernels::findFamily(family), config, "#xk.tile<>");
  options.insert(options.end(), k.options.begin(), k.options.end());
  std::vector<char> cubin;
  std::string log;
  ASSERT_NO_THROW(cubin = xlc::cuda::Nvrtc::instance().compile(
                      k.source, std::string(family) + ".cu", options, headers, &log))
      << k.source;
  EXPECT_GT(cubin.size(), 0u);
  EXPECT_LE(k.sharedBytes, 227u * 1024u) << "over the H100's shared memory per block";
}

// The backward families at the tiny model's and the 7B's cell, chunk 64 in slices of 64 and
// chunk 128 in slices of 32.
TEST(NvrtcCompileRendered, MlstmBackwardFamilies) {
  std::string reason;
  if (!xlc::cuda::Nvrtc::available(&reason))
    XLC_SKIP_OR_FAIL("libnvrtc cannot be loaded: " << reason);
  auto config = [](int nh, int dqk, int dv, int chunk, int tile, const char *gate) {
    return xlc::kernels::Config{{"dtype", "bf16"},      {"gate_dtype", "f32"},
                                {"state_dtype", "f32"}, {"num_heads", nh},
                                {"qk_head_dim", dqk},   {"v_head_dim", dv},
                                {"input_gate", gate},   {"normalizer", "max_abs"},
                                {"chunk", chunk},       {"tile", tile},
                                {"resets", tile != 64}}; // both the mask and its null pointer
  };
  for (const xlc::kernels::Config &c :
       {config(4, 8, 16, 16, 16, "exp"), config(8, 256, 512, 64, 64, "exp"),
        config(8, 256, 512, 128, 16, "sigmoid")})
    for (const char *family : {"mlstm_backward_readout", "mlstm_backward_states",
                               "mlstm_backward_chunk", "mlstm_backward_gates"})
      expectRenderedCompiles(family, c);
}

// The optimizer's families in both precision modes: AdamW with an fp32 master (standard) and
// with bf16 gradient and moments and stochastic rounding (low-memory), grad_norm over f32 and
// bf16 gradients.
TEST(NvrtcCompileRendered, OptimizerFamilies) {
  std::string reason;
  if (!xlc::cuda::Nvrtc::available(&reason))
    XLC_SKIP_OR_FAIL("libnvrtc cannot be loaded: " << reason);
  for (const char *g : {"f32", "bf16"}) {
    const bool low = std::string(g) == "bf16";
    expectRenderedCompiles("adamw", {{"dtype", "bf16"}, {"grad_dtype", g}, {"moment_dtype", g},
                                     {"master", !low}, {"rounding", low ? "stochastic" : "nearest"},
                                     {"threads", 256}, {"blocks", 528}});
    expectRenderedCompiles("grad_norm", {{"grad_dtype", g}, {"threads", 256}, {"blocks", 528}});
  }
}

} // namespace
