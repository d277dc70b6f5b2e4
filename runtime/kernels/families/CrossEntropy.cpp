//===- CrossEntropy.cpp - The loss head: soft-capped cross-entropy and its gradient -===//
//
// Per row of pre-cap logits z (fp32, in place): loss_r = logΣe^{l} − l_target with
// l = cap·tanh(z/cap), z ← grad_scale·(softmax(l) − onehot)·(1 − tanh²), and
// loss += grad_scale·Σ_r loss_r in row order (runtime/device/cross_entropy.cuh: one block per
// row, the last block sums the rows). Targets < 0 are not counted; a target ≥ vocab sets the
// error flag. grad_scale is normally a function scalar: 1/(counted positions) × the loss scale.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cpu/CpuBackwardOps.h"
#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  const std::int64_t rows = l.count("rows"), vocab = l.count("vocab");
  float *z = l.floats("z", l.product({rows, vocab}));
  const std::int32_t *targets = l.i32s("targets", u64(rows));
  float *loss = l.floats("loss", 1);
  std::int64_t *error = l.i64s("error", 1);
  *error = 0;
  for (std::int64_t r = 0; r < rows && *error == 0; ++r)
    if (targets[r] >= vocab)
      *error = r + 1;
  const double cap = cfgBool(l.config(), "capped") ? l.real("cap") : 0.0;
  const double scale = l.real("grad_scale");
  // The CPU op treats a target ≥ vocab as a bug (it throws); the kernel's convention is a zero
  // row and the flag, so such rows are masked here.
  std::vector<std::int32_t> masked(targets, targets + rows);
  for (std::int32_t &t : masked)
    if (t >= vocab)
      t = -1;
  // Each row's loss (0 where the target is not counted), as the kernel's loss_rows.
  const double total = exec::cpu::crossEntropyBackward(l.pool(), z, masked.data(), rows, vocab,
                                                       cap, scale, l.floats("loss_rows", u64(rows)));
  *loss += static_cast<float>(scale * total);
}

} // namespace

const FamilyDef &crossEntropyFamily() {
  static const FamilyDef def{
      .name = "cross_entropy",
      .op = "cross_entropy",
      .header = "cross_entropy",
      .paramsType = "CrossEntropyParams",
      .function = "cross_entropy",
      .config = {ConfigField::integer("threads", 32, 1024), ConfigField::boolean("capped")},
      .attrs = {{"vocab", AttrCheck::Source::I64Arg, "vocab"}},
      .params =
          [](const Config &) {
            return std::vector<ParamDef>{
                bufferParam("z", artifact::DType::F32),
                bufferParam("targets", artifact::DType::I32),
                bufferParam("loss_rows", artifact::DType::F32),
                bufferParam("loss", artifact::DType::F32),
                bufferParam("counter", artifact::DType::I64, Duty::Zeroed),
                bufferParam("error", artifact::DType::I64, Duty::ErrorFlag),
                i64Param("rows"),
                i64Param("vocab"),
                f32Param("cap"),
                f32Param("grad_scale")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("CrossEntropyConfig", num(c, "threads") + ", " +
                                                            (cfgBool(c, "capped") ? "true"
                                                                                  : "false"));
          },
      .geometry = rowGeometry,
      .cpu = runCpu,
      .tuning = threadsSpace,
  };
  return def;
}

} // namespace xlc::kernels
