//===- SummaryTest.cpp - The human-readable listing -----------------------===//

#include "runtime/artifact/Summary.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <sstream>

using namespace xlc::artifact;
using namespace xlc::artifact::testing;

namespace {

std::string summaryOf(const Artifact &a) {
  std::ostringstream out;
  printSummary(out, a);
  return out.str();
}

TEST(Summary, ListsFunctionsKernelsBuffersMemoryAndWeights) {
  Artifact a = makeTestArtifact();
  a.sourceName = "model.xlca";
  std::string s = summaryOf(a);
  // Header.
  EXPECT_TRUE(contains(s, "xlc artifact model.xlca (schema 2), compiled by xlc 0.1.0 for sm_90a"));
  EXPECT_TRUE(contains(s, "4 kernels, 17 buffers (4 weight, 1 input, 1 output, 7 activation, "
                          "1 workspace, 3 state), 4 weight bindings, 2 functions"));
  // Functions, one line per step.
  EXPECT_TRUE(contains(s,
                       "  prefill: 7 steps; inputs tokens = %0 'tokens'; outputs logits = %1 'logits'; states "
                       "%13 'blocks.0.state.c', %14 'blocks.0.state.n', %15 'blocks.0.state.m'"));
  EXPECT_TRUE(contains(s,
                       "    [  1] launch rms_norm {\"eps\":1e-06,\"weight\":\"folded\"}  kernel 1 "
                       "rms_norm_0(%6 'x', %7 'blocks.0.xn', BS, 32, 1e-06f)"));
  EXPECT_TRUE(contains(s, "    [  4] gemm   linear  %11 'blocks.0.y' = %9 'blocks.0.h' x %4 "
                          "'blocks.0.w_out'^T + %6 'x'  [m=B*S, n=32, k=32]"));
  EXPECT_TRUE(
      contains(s, "    [  1] copy   copy  %6 'x' -> %16 'blocks.0.residual'  (64*B*S bytes)"));
  // Kernels.
  EXPECT_TRUE(
      contains(s, "  [2] mlstm_chunkwise_fwd_0  family mlstm_chunkwise_fwd  entry xlc_kernel"));
  EXPECT_TRUE(contains(s, "      tile #xk.tile<chunk = 16, block_q = 16, block_kv = 16, warps = 4, "
                          "stages = 2>"));
  EXPECT_TRUE(contains(s, "      grid [2, B, 1]  block [128, 1, 1]  shared 49152 bytes"));
  EXPECT_TRUE(contains(s, "      grid [ceil(32*B*S/128), 1, 1]"));
  // Buffer plan.
  EXPECT_TRUE(contains(s, "     %8  activation  bf16   [B, S, 96]            512*B*S           "
                          "192*B*S  'blocks.0.qkvo'"));
  // Memory at (1,1), (1,chunk), (8,8192): the arena is 1024·B·S bytes.
  EXPECT_TRUE(contains(s, "  memory                               B=1,S=1        B=1,S=16      "
                          "B=8,S=8192\n"
                          "  arena                                1.0 KiB        16.0 KiB        "
                          "64.0 MiB\n"));
  // prefill's peak: x, h, qkvo, workspace live at step 3 = (64 + 64 + 192 + 8)·B·S.
  EXPECT_TRUE(contains(s, "  peak live arena (prefill)              328 B         5.1 KiB        "
                          "20.5 MiB\n"));
  EXPECT_TRUE(contains(s, "  states                               1.1 KiB         1.1 KiB         "
                          "8.6 KiB\n"));
  // What a backend that runs only prefill allocates for its arguments: tokens (4·B·S bytes) and
  // logits (256·B·S).
  EXPECT_TRUE(contains(s, "  inputs+outputs (prefill)               260 B         4.1 KiB        "
                          "16.2 MiB\n"));
  // Weight assembly.
  EXPECT_TRUE(contains(s, "  %3 'blocks.0.w_qkvo' bf16 [96, 32] = concat along axis 0 of 4 tensors "
                          "(fused), columns scaled by 'backbone.blocks.0.norm_mlstm.weight' "
                          "(folded norm)"));
  EXPECT_TRUE(contains(s, "      'backbone.blocks.0.mlstm_layer.v.weight' [32, 32]"));
  EXPECT_TRUE(
      contains(s, "  %2 'embedding' bf16 [64, 32] <- 'backbone.embeddings.weight' [64, 32]"));
}

// A GEMM that reads the last position of each sequence shows it on its A operand.
TEST(Summary, ShowsTheLastPositionRows) {
  Artifact a = makeTestArtifact();
  a.buffers[kLogits].shape = {Dim::batch(), 1, 64};
  GemmStep &head = std::get<GemmStep>(a.functions[0].steps[6].body);
  head.aRows = GemmRows::LastPosition;
  head.m = Expr::batch();
  std::string s = summaryOf(a);
  EXPECT_TRUE(contains(s, "    [  6] gemm   linear  %1 'logits' = %12 'yn'[:, S-1] x %5 "
                          "'lm_head'^T  [m=B, n=64, k=32]"));
  EXPECT_TRUE(contains(s, "  inputs+outputs (prefill)               260 B           320 B       "
                          "258.0 KiB\n"));
}

TEST(Summary, NeverCrashesOnAnInvalidArtifact) {
  Artifact a = makeTestArtifact();
  std::get<LaunchStep>(a.functions[0].steps[1].body).kernel = 99;
  std::get<LaunchStep>(a.functions[0].steps[1].body).args[0] = Arg::buffer(1234);
  a.weights[1].buffer = 999;
  a.weights[1].sourceShapes.clear();
  a.buffers[6].shape = {Dim::batch(), Dim::batch()};
  a.arenaBytes = Expr::batchSeq(~0ull);
  std::string s = summaryOf(a);
  EXPECT_TRUE(contains(s, "kernel 99 ?(%1234 (?)"));
  EXPECT_TRUE(contains(s, "overflow"));
  EXPECT_TRUE(contains(s, "not affine"));
}

} // namespace
