//===- GradNorm.cpp - Squared L2 norm of a gradient ------------------------===//
//
// norm_sq += Σ grad² for one gradient tensor (runtime/device/grad_norm.cuh: `blocks` blocks in
// a grid-stride loop, partial sums added in block order by the last block). One launch per
// tensor into the same norm_sq gives the global norm of global-norm clipping. `grad_dtype` is the
// gradient's storage type (f32, or bf16 in the low-memory mode); the sum is fp32 either way.
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"
#include "runtime/train/AdamW.h"

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  const std::int64_t count = l.count("count");
  const float *grad = l.floats("grad", u64(count));
  float *normSq = l.floats("norm_sq", 1);
  const std::span<const float> one(grad, static_cast<std::size_t>(count));
  const double norm = train::globalGradNorm(std::span(&one, 1));
  *normSq += static_cast<float>(norm * norm);
}

} // namespace

const FamilyDef &gradNormFamily() {
  static const FamilyDef def{
      .name = "grad_norm",
      .op = "grad_norm",
      .header = "grad_norm",
      .paramsType = "GradNormParams",
      .function = "grad_norm",
      .config = {ConfigField::dtype("grad_dtype"), ConfigField::integer("threads", 32, 1024),
                 ConfigField::integer("blocks", 1, 65535)},
      .attrs = {},
      .params =
          [](const Config &) {
            return std::vector<ParamDef>{
                bufferParam("grad", "grad_dtype"),
                bufferParam("partial", artifact::DType::F32),
                bufferParam("norm_sq", artifact::DType::F32),
                bufferParam("counter", artifact::DType::I64, Duty::Zeroed), i64Param("count")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("GradNormConfig",
                                  cfgCudaType(c, "grad_dtype") + ", " + num(c, "threads"));
          },
      .geometry = gridStrideGeometry,
      .cpu = runCpu,
      // `blocks` sizes the partial-sum workspace, so it is the problem's, not a knob.
      .tuning = [](const Config &) { return std::vector<TuningKnob>{threadsKnob(128, 1024)}; },
  };
  return def;
}

} // namespace xlc::kernels
