//===- RmsNorm.cpp - RMSNorm over rows ------------------------------------===//
//
// y[r, :] = x[r, :] · rsqrt(mean(x[r, :]²) + eps) · w, x a strided view; a folded norm has no
// weight (has_weight = false: the slot is an i64 null). One block per row
// (runtime/device/rms_norm.cuh).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"
#include "runtime/support/Error.h"

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  const std::int64_t rows = l.count("rows"), dim = l.cfg("dim");
  const exec::cpu::View x = l.view("x", "x_offset", "x_stride", rows, dim);
  const float *weight = nullptr;
  if (cfgBool(l.config(), "has_weight"))
    weight = l.floats("weight", u64(dim));
  else
    check(l.integer("weight_null") == 0, "{}: weight_null must be 0 (a null pointer), got {}",
          l.where(), l.integer("weight_null"));
  float *y = l.floats("y", l.product({rows, dim}));
  exec::cpu::rmsNorm(l.pool(), x, weight, y, rows, dim, l.real("eps"));
}

} // namespace

const FamilyDef &rmsNormFamily() {
  static const FamilyDef def{
      .name = "rms_norm",
      .op = "rms_norm",
      .header = "rms_norm",
      .paramsType = "RmsNormParams",
      .function = "rms_norm",
      .config = {ConfigField::dtype("dtype"), ConfigField::integer("dim"),
                 ConfigField::integer("threads", 32, 1024), ConfigField::boolean("has_weight")},
      .attrs = {{"eps", AttrCheck::Source::F32Arg, "eps"},
                {"has_weight", AttrCheck::Source::ConfigField, "has_weight"}},
      .params =
          [](const Config &c) {
            return std::vector<ParamDef>{
                bufferParam("x", "dtype"),
                i64Param("x_offset"),
                i64Param("x_stride"),
                cfgBool(c, "has_weight") ? bufferParam("weight", "dtype") : i64Param("weight_null"),
                bufferParam("y", "dtype"),
                i64Param("rows"),
                f32Param("eps")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("RmsNormConfig", cfgCudaType(c, "dtype") + ", " +
                                                       num(c, "dim") + ", " +
                                                       num(c, "threads"));
          },
      .geometry = rowGeometry,
      .cpu = runCpu,
      .tuning = threadsSpace,
  };
  return def;
}

} // namespace xlc::kernels
