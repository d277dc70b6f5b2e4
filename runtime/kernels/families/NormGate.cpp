//===- NormGate.cpp - Multi-head LayerNorm times the output gate ----------===//
//
// out = LayerNorm_head(h) · w · σ(o) per row and head; h and o strided views
// (runtime/device/norm_gate.cuh). One block per row.
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  const std::int64_t rows = l.count("rows");
  const std::int64_t numHeads = l.cfg("num_heads"), headDim = l.cfg("head_dim");
  const std::int64_t width = static_cast<std::int64_t>(l.product({numHeads, headDim}));
  const exec::cpu::View h = l.view("h", "h_offset", "h_stride", rows, width);
  const exec::cpu::View o = l.view("o", "o_offset", "o_stride", rows, width);
  const float *weight = l.floats("weight", u64(width));
  float *out = l.floats("out", l.product({rows, width}));
  exec::cpu::normGate(l.pool(), h, weight, o, out, rows, numHeads, headDim, l.real("eps"));
}

} // namespace

const FamilyDef &normGateFamily() {
  static const FamilyDef def{
      .name = "norm_gate",
      .op = "norm_gate",
      .header = "norm_gate",
      .paramsType = "NormGateParams",
      .function = "norm_gate",
      .config = {ConfigField::dtype("dtype"), ConfigField::integer("num_heads"),
                 ConfigField::integer("head_dim"), ConfigField::integer("threads", 32, 1024)},
      .attrs = {{"eps", AttrCheck::Source::F32Arg, "eps"},
                {"num_heads", AttrCheck::Source::ConfigField, "num_heads"}},
      .params =
          [](const Config &) {
            return std::vector<ParamDef>{
                bufferParam("h", "dtype"),      i64Param("h_offset"),
                i64Param("h_stride"),           bufferParam("weight", "dtype"),
                bufferParam("o", "dtype"),      i64Param("o_offset"),
                i64Param("o_stride"),           bufferParam("out", "dtype"),
                i64Param("rows"),               f32Param("eps")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("NormGateConfig",
                                  cfgCudaType(c, "dtype") + ", " +
                                      num(c, "num_heads") + ", " +
                                      num(c, "head_dim") + ", " +
                                      num(c, "threads"));
          },
      .geometry = rowGeometry,
      .cpu = runCpu,
      .tuning = threadsSpace,
  };
  return def;
}

} // namespace xlc::kernels
