//===- GemvFusionTest.cpp - Which row kernels a decode GEMV may absorb ----===//
//
// runtime/exec/cuda/GemvFusion.h on the sig/tied fixture model (CI, no GPU): in decode_step every
// RMS norm (before q|k|v|o + the gates, before up|gate, before the LM head) and every SwiGLU
// (before down) is absorbable, with exactly the GEMMs right after it as consumers; in prefill
// the last norm is not (the LM head reads the last positions in place). Then each condition the
// absorption rests on is broken in turn, and the row kernel must no longer be found.
//
//===----------------------------------------------------------------------===//
#include "runtime/artifact/Artifact.h"
#include "runtime/artifact/Serialize.h"
#include "runtime/exec/cuda/GemvFusion.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace xlc::exec {
namespace {
namespace art = xlc::artifact;

const art::Function &functionNamed(const art::Artifact &a, std::string_view name) {
  for (const art::Function &f : a.functions)
    if (f.name == name)
      return f;
  throw std::runtime_error("no function " + std::string(name));
}

art::Function &functionNamed(art::Artifact &a, std::string_view name) {
  return const_cast<art::Function &>(functionNamed(std::as_const(a), name));
}

/// Launch steps of |op| in |f|.
std::vector<std::size_t> launchesOf(const art::Function &f, std::string_view op) {
  std::vector<std::size_t> out;
  for (std::size_t j = 0; j < f.steps.size(); ++j)
    if (f.steps[j].launch() && f.steps[j].op == op)
      out.push_back(j);
  return out;
}

class GemvFusion : public ::testing::Test {
protected:
  void SetUp() override { artifact_ = art::loadArtifact(XLC_GEMV_FUSION_ARTIFACT); }
  art::Artifact artifact_;
};

TEST_F(GemvFusion, EveryDecodeNormAndSwigluIsAbsorbable) {
  const art::Function &decode = functionNamed(artifact_, "decode_step");
  const std::vector<AbsorbableRowKernel> rows = findAbsorbableRowKernels(artifact_, decode);
  const std::vector<std::size_t> norms = launchesOf(decode, "rms_norm");
  const std::vector<std::size_t> swiglus = launchesOf(decode, "swiglu");
  ASSERT_FALSE(norms.empty());
  ASSERT_FALSE(swiglus.empty());
  ASSERT_EQ(rows.size(), norms.size() + swiglus.size());
  for (const AbsorbableRowKernel &row : rows) {
    const art::Step &step = decode.steps[row.step];
    const bool norm = std::count(norms.begin(), norms.end(), row.step) == 1;
    EXPECT_EQ(row.kind, norm ? gemv_abi::Prologue::RmsNorm : gemv_abi::Prologue::SwiGlu)
        << step.op;
    // Consumers: the GEMMs right after it, reading its output as A; the step after the last
    // consumer does not read it.
    ASSERT_FALSE(row.consumers.empty());
    for (std::size_t i = 0; i < row.consumers.size(); ++i) {
      EXPECT_EQ(row.consumers[i], row.step + 1 + i);
      const art::GemmStep *g = decode.steps[row.consumers[i]].gemm();
      ASSERT_NE(g, nullptr);
      EXPECT_EQ(g->a, row.output);
    }
  }
  // The norm before q|k|v|o feeds the gate projection too: two consumers.
  EXPECT_EQ(rows.front().consumers.size(), 2u);
}

TEST_F(GemvFusion, PrefillLastNormIsNotAbsorbable) {
  // prefill's LM head reads the last position of each sequence in place (a_rows
  // last_position): not the plain form a prologue GEMV reads.
  const art::Function &prefill = functionNamed(artifact_, "prefill");
  const std::vector<AbsorbableRowKernel> rows = findAbsorbableRowKernels(artifact_, prefill);
  const std::vector<std::size_t> norms = launchesOf(prefill, "rms_norm");
  ASSERT_FALSE(norms.empty());
  for (const AbsorbableRowKernel &row : rows)
    EXPECT_NE(row.step, norms.back());
  EXPECT_EQ(rows.size(), norms.size() - 1 + launchesOf(prefill, "swiglu").size());
}

TEST_F(GemvFusion, AnyOtherReaderOfTheOutputPreventsIt) {
  art::Function &decode = functionNamed(artifact_, "decode_step");
  const std::size_t before = findAbsorbableRowKernels(artifact_, decode).size();
  const AbsorbableRowKernel first = findAbsorbableRowKernels(artifact_, decode).front();
  // A copy of the output at the end of the function reads it.
  decode.steps.push_back(art::Step::makeCopy("copy", first.output, first.output, art::Expr(2)));
  const std::vector<AbsorbableRowKernel> after = findAbsorbableRowKernels(artifact_, decode);
  EXPECT_EQ(after.size(), before - 1);
  for (const AbsorbableRowKernel &row : after)
    EXPECT_NE(row.step, first.step);
}

TEST_F(GemvFusion, ADutyOrANonPlainConsumerPreventsIt) {
  art::Function &decode = functionNamed(artifact_, "decode_step");
  const std::vector<AbsorbableRowKernel> rows = findAbsorbableRowKernels(artifact_, decode);
  // A zero duty on the row kernel (work around it that skipping would drop).
  decode.steps[rows[0].step].duties.push_back({art::DutyKind::Zero, rows[0].output});
  // A transposed-A consumer.
  std::get<art::GemmStep>(decode.steps[rows[1].consumers[0]].body).transA = true;
  const std::vector<AbsorbableRowKernel> after = findAbsorbableRowKernels(artifact_, decode);
  for (const AbsorbableRowKernel &row : after) {
    EXPECT_NE(row.step, rows[0].step);
    EXPECT_NE(row.step, rows[1].step);
  }
  EXPECT_EQ(after.size(), rows.size() - 2);
}

TEST_F(GemvFusion, ANormWithAWeightOrASplitSwigluIsNotAbsorbable) {
  art::Function &decode = functionNamed(artifact_, "decode_step");
  const std::vector<AbsorbableRowKernel> rows = findAbsorbableRowKernels(artifact_, decode);
  auto firstOf = [&](gemv_abi::Prologue kind) {
    return *std::find_if(rows.begin(), rows.end(),
                         [&](const AbsorbableRowKernel &r) { return r.kind == kind; });
  };
  const AbsorbableRowKernel norm = firstOf(gemv_abi::Prologue::RmsNorm);
  const AbsorbableRowKernel swiglu = firstOf(gemv_abi::Prologue::SwiGlu);
  // A norm kernel with a weight (the GEMV has no weight vector to multiply by).
  art::Kernel weighted = artifact_.kernels[decode.steps[norm.step].launch()->kernel];
  weighted.config["has_weight"] = true;
  artifact_.kernels.push_back(weighted);
  std::get<art::LaunchStep>(decode.steps[norm.step].body).kernel = artifact_.kernels.size() - 1;
  // A swiglu whose up values are not in the gate's row (another stride).
  art::LaunchStep &launch = std::get<art::LaunchStep>(decode.steps[swiglu.step].body);
  const art::Kernel &sk = artifact_.kernels[launch.kernel];
  for (std::size_t i = 0; i < sk.params.size(); ++i)
    if (sk.params[i].name == "up_stride")
      launch.args[i].intValue += 8;
  const std::vector<AbsorbableRowKernel> after = findAbsorbableRowKernels(artifact_, decode);
  EXPECT_EQ(after.size(), rows.size() - 2);
}

} // namespace
} // namespace xlc::exec
