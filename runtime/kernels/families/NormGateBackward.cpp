//===- NormGateBackward.cpp - Gradient of the multi-head LayerNorm times the output gate -===//
//
// do = dout·y·σ(o)σ(−o) (into a strided destination: the o-gate columns of the fused q|k|v|o
// gradient), dh = r·(g − mean(g) − x̂·mean(g ⊙ x̂)) with g = dout·σ(o)·w per (row, head), and
// dw += Σ_rows dout·σ(o)·x̂ in fp32 (runtime/device/norm_gate_backward.cuh: blocks of
// rows_per_block rows, partial sums reduced in block order by the last block).
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
  const std::int64_t rows = l.count("rows"), heads = l.cfg("num_heads"), dv = l.cfg("head_dim");
  const std::int64_t width = heads * dv;
  const exec::cpu::View h = l.view("h", "h_offset", "h_stride", rows, width);
  const exec::cpu::View o = l.view("o", "o_offset", "o_stride", rows, width);
  const float *weight = l.floats("weight", u64(width));
  const float *dout = l.floats("dout", l.product({rows, width}));
  float *dh = l.floats("dh", l.product({rows, width}));
  const std::int64_t offset = l.integer("do_offset"), stride = l.integer("do_stride");
  check(offset >= 0 && offset + width <= stride,
        "{}: the o-gate gradient columns [{}, {}) do not fit rows of stride {}", l.where(), offset,
        offset + width, stride);
  float *dO = l.floats("d_o", rows == 0 ? 0 : l.product({rows - 1, stride}) + u64(stride));
  float *dw = l.floats("dw", u64(width));
  std::vector<float> dOrows(u64(rows * width));
  exec::cpu::normGateBackward(l.pool(), h, weight, o, exec::cpu::View{dout, 0, width}, dh,
                              dOrows.data(), dw, rows, heads, dv, l.real("eps"));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < width; ++c)
      dO[r * stride + offset + c] = dOrows[u64(r * width + c)];
}

} // namespace

const FamilyDef &normGateBackwardFamily() {
  static const FamilyDef def{
      .name = "norm_gate_backward",
      .op = "norm_gate_backward",
      .header = "norm_gate_backward",
      .paramsType = "NormGateBackwardParams",
      .function = "norm_gate_backward",
      .config = {ConfigField::dtype("dtype"), ConfigField::integer("num_heads", 1, 32),
                 ConfigField::integer("head_dim"), ConfigField::integer("threads", 32, 1024),
                 ConfigField::integer("rows_per_block", 1, 4096)},
      .attrs = {{"eps", AttrCheck::Source::F32Arg, "eps"},
                {"num_heads", AttrCheck::Source::ConfigField, "num_heads"}},
      .params =
          [](const Config &) {
            return std::vector<ParamDef>{
                bufferParam("h", "dtype"),    i64Param("h_offset"),
                i64Param("h_stride"),         bufferParam("weight", "dtype"),
                bufferParam("o", "dtype"),    i64Param("o_offset"),
                i64Param("o_stride"),         bufferParam("dout", "dtype"),
                bufferParam("dh", "dtype"),   bufferParam("d_o", "dtype"),
                i64Param("do_offset"),        i64Param("do_stride"),
                bufferParam("dw_partial", artifact::DType::F32),
                bufferParam("dw", artifact::DType::F32),
                bufferParam("counter", artifact::DType::I64, Duty::Zeroed),
                i64Param("rows"),             f32Param("eps")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("NormGateBackwardConfig",
                                  cfgCudaType(c, "dtype") + ", " + num(c, "num_heads") + ", " +
                                      num(c, "head_dim") + ", " + num(c, "threads") + ", " +
                                      num(c, "rows_per_block"));
          },
      .geometry = rowBlockGeometry,
      .cpu = runCpu,
      // rows_per_block sizes the partial-sum workspace (one row per block): the problem's.
      .tuning = threadsSpace,
  };
  return def;
}

} // namespace xlc::kernels
