//===- RmsNormBackward.cpp - Gradient of RMSNorm ---------------------------===//
//
// dx = r·(dy ⊙ w) − (r³/D)·x·⟨dy ⊙ w, x⟩ per row, and dw += Σ_rows dy ⊙ x·r accumulated in fp32
// (runtime/device/rms_norm_backward.cuh: blocks of rows_per_block rows, per-block partial sums
// reduced in block order by the last block). Without a weight (a norm whose weight was folded)
// only dx is computed and the weight-gradient slots are i64 nulls. With `residual` a second
// gradient of the input (a residual block's skip path) is added to dx.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cpu/CpuBackwardOps.h"
#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"
#include "runtime/support/Error.h"

#include <vector>

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  const std::int64_t rows = l.count("rows"), dim = l.cfg("dim");
  const exec::cpu::View x = l.view("x", "x_offset", "x_stride", rows, dim);
  const float *dy = l.floats("dy", l.product({rows, dim}));
  float *dx = l.floats("dx", l.product({rows, dim}));
  const float *weight = nullptr;
  float *dw = nullptr;
  if (cfgBool(l.config(), "has_weight")) {
    weight = l.floats("weight", u64(dim));
    dw = l.floats("dw", u64(dim));
  } else {
    for (const char *null : {"weight_null", "dw_partial_null", "dw_null"})
      check(l.integer(null) == 0, "{}: {} must be 0 (a null pointer), got {}", l.where(), null,
            l.integer(null));
  }
  // The CPU sums the weight gradient in its own fixed row blocks (CpuBackwardOps.h); the GPU's
  // partial-sum scratch and counter are not needed here.
  // The residual is read before dx is written (it may be dx itself, as on the GPU).
  std::vector<float> residual;
  if (cfgBool(l.config(), "residual")) {
    const float *res = l.floats("residual", l.product({rows, dim}));
    residual.assign(res, res + rows * dim);
  } else {
    check(l.integer("residual_null") == 0, "{}: residual_null must be 0 (a null pointer), got {}",
          l.where(), l.integer("residual_null"));
  }
  exec::cpu::rmsNormBackward(l.pool(), x, weight, exec::cpu::View{dy, 0, dim}, dx, dw, rows, dim,
                             l.real("eps"));
  for (std::size_t i = 0; i < residual.size(); ++i)
    dx[i] += residual[i];
}

} // namespace

const FamilyDef &rmsNormBackwardFamily() {
  static const FamilyDef def{
      .name = "rms_norm_backward",
      .op = "rms_norm_backward",
      .header = "rms_norm_backward",
      .paramsType = "RmsNormBackwardParams",
      .function = "rms_norm_backward",
      .config = {ConfigField::dtype("dtype"), ConfigField::integer("dim"),
                 ConfigField::integer("threads", 32, 1024),
                 ConfigField::integer("rows_per_block", 1, 4096),
                 ConfigField::boolean("has_weight"), ConfigField::boolean("residual")},
      .attrs = {{"eps", AttrCheck::Source::F32Arg, "eps"},
                {"has_weight", AttrCheck::Source::ConfigField, "has_weight"},
                {"residual", AttrCheck::Source::ConfigField, "residual"}},
      .params =
          [](const Config &c) {
            const bool weight = cfgBool(c, "has_weight");
            std::vector<ParamDef> p{bufferParam("x", "dtype"), i64Param("x_offset"),
                                    i64Param("x_stride")};
            p.push_back(weight ? bufferParam("weight", "dtype") : i64Param("weight_null"));
            p.push_back(bufferParam("dy", "dtype"));
            p.push_back(cfgBool(c, "residual") ? bufferParam("residual", "dtype")
                                               : i64Param("residual_null"));
            p.push_back(bufferParam("dx", "dtype"));
            p.push_back(weight ? bufferParam("dw_partial", artifact::DType::F32)
                               : i64Param("dw_partial_null"));
            p.push_back(weight ? bufferParam("dw", artifact::DType::F32) : i64Param("dw_null"));
            p.push_back(bufferParam("counter", artifact::DType::I64, Duty::Zeroed));
            p.push_back(i64Param("rows"));
            p.push_back(f32Param("eps"));
            return p;
          },
      .configType =
          [](const Config &c) {
            return configSpelling("RmsNormBackwardConfig",
                                  cfgCudaType(c, "dtype") + ", " + num(c, "dim") + ", " +
                                      num(c, "threads") + ", " + num(c, "rows_per_block"));
          },
      .geometry = rowBlockGeometry,
      .cpu = runCpu,
      // rows_per_block sizes the partial-sum workspace (one row per block): the problem's.
      .tuning = threadsSpace,
  };
  return def;
}

} // namespace xlc::kernels
