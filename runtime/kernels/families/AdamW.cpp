//===- AdamW.cpp - The AdamW update of one tensor --------------------------===//
//
// m, v and the weight (and with `master` an fp32 master copy the working weight is rounded
// from) updated element by element in fp32 (runtime/device/adamw.cuh; the arithmetic is
// runtime/train/AdamW.h's, which the CPU implementation calls). Grid `blocks` × `threads` in a
// grid-stride loop: one kernel serves every tensor size. Hyper-parameters and the step's bias
// corrections and clipping factor are launch arguments (function scalars in a train step).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"
#include "runtime/support/Error.h"
#include "runtime/train/AdamW.h"
#include "runtime/weights/Convert.h"


namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  const std::int64_t count = l.count("count");
  float *weight = l.floats("weight", u64(count));
  const bool master = cfgBool(l.config(), "master");
  float *param = master ? l.floats("master", u64(count)) : weight;
  if (!master)
    check(l.integer("master_null") == 0, "{}: master_null must be 0 (a null pointer), got {}",
          l.where(), l.integer("master_null"));
  float *grad = l.floats("grad", u64(count));
  float *m = l.floats("m", u64(count)), *v = l.floats("v", u64(count));
  train::AdamWConfig c;
  c.beta1 = l.real("beta1");
  c.beta2 = l.real("beta2");
  c.eps = l.real("eps");
  c.weightDecay = l.real("weight_decay");
  const train::AdamWStep step{l.real("lr"), l.real("c1"), l.real("c2"),
                              static_cast<float>(l.real("grad_scale"))};
  const auto n = static_cast<std::size_t>(count);
  train::adamwApply({param, n}, {grad, n}, {m, n}, {v, n}, c, step, c.weightDecay > 0.0);
  if (master) {
    // The working copy, rounded to T as the kernel stores it (the CPU holds every float buffer as
    // fp32, but a bf16 weight must hold bf16 values: a checkpoint saves them, and a resumed run
    // must read back exactly what the uninterrupted one computes with).
    const std::string &type = cfgString(l.config(), "dtype");
    for (std::size_t i = 0; i < n; ++i)
      weight[i] = type == "bf16"  ? weights::bf16ToF32(weights::f32ToBF16(param[i]))
                  : type == "f16" ? static_cast<float>(static_cast<_Float16>(param[i]))
                                  : param[i];
  }
  std::fill(grad, grad + n, 0.0f); // consumed, as the kernel leaves it
}

} // namespace

const FamilyDef &adamwFamily() {
  static const FamilyDef def{
      .name = "adamw",
      .op = "adamw",
      .header = "adamw",
      .paramsType = "AdamWParams",
      .function = "adamw",
      .config = {ConfigField::dtype("dtype"), ConfigField::boolean("master"),
                 ConfigField::integer("threads", 32, 1024), ConfigField::integer("blocks", 1, 65535)},
      .attrs = {},
      .params =
          [](const Config &c) {
            return std::vector<ParamDef>{
                bufferParam("weight", "dtype"),
                cfgBool(c, "master") ? bufferParam("master", artifact::DType::F32)
                                     : i64Param("master_null"),
                bufferParam("grad", artifact::DType::F32),
                bufferParam("m", artifact::DType::F32),
                bufferParam("v", artifact::DType::F32),
                i64Param("count"),
                f32Param("lr"),
                f32Param("beta1"),
                f32Param("beta2"),
                f32Param("eps"),
                f32Param("weight_decay"),
                f32Param("c1"),
                f32Param("c2"),
                f32Param("grad_scale")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("AdamWConfig", cfgCudaType(c, "dtype") + ", " +
                                                     (cfgBool(c, "master") ? "true" : "false") +
                                                     ", " + num(c, "threads"));
          },
      .geometry = gridStrideGeometry,
      .cpu = runCpu,
  };
  return def;
}

} // namespace xlc::kernels
