//===- SwigluBackward.cpp - Gradient of SiLU(gate) · up --------------------===//
//
// dgate = dout·u·σ(g)(1 + g·σ(−g)), dup = dout·SiLU(g), written as two column ranges of one
// strided destination (the gradient of the fused gate|up projection; runtime/device/
// swiglu_backward.cuh). Grid (rows, ceil(dim / (threads·8))).
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
  const exec::cpu::View gate = l.view("gate", "gate_offset", "gate_stride", rows, dim);
  const exec::cpu::View up = l.view("up", "up_offset", "up_stride", rows, dim);
  const float *dout = l.floats("dout", l.product({rows, dim}));
  const std::int64_t dg = l.integer("dgate_offset"), du = l.integer("dup_offset");
  const std::int64_t stride = l.integer("d_stride");
  check(dg >= 0 && du >= 0 && stride >= 0 && std::max(dg, du) + dim <= stride,
        "{}: the gradient columns [{}, {}) and [{}, {}) do not fit rows of stride {}", l.where(),
        dg, dg + dim, du, du + dim, stride);
  check(dg + dim <= du || du + dim <= dg, "{}: the gradient column ranges overlap", l.where());
  float *d = l.floats("d", rows == 0 ? 0 : l.product({rows - 1, stride}) + u64(stride));
  std::vector<float> dgate(u64(rows * dim)), dup(u64(rows * dim));
  exec::cpu::swigluBackward(l.pool(), gate, up, exec::cpu::View{dout, 0, dim}, dgate.data(),
                            dup.data(), rows, dim);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < dim; ++c) {
      d[r * stride + dg + c] = dgate[u64(r * dim + c)];
      d[r * stride + du + c] = dup[u64(r * dim + c)];
    }
}

} // namespace

const FamilyDef &swigluBackwardFamily() {
  static const FamilyDef def{
      .name = "swiglu_backward",
      .op = "swiglu_backward",
      .header = "swiglu_backward",
      .paramsType = "SwigluBackwardParams",
      .function = "swiglu_backward",
      .config = {ConfigField::dtype("dtype"), ConfigField::integer("dim"),
                 ConfigField::integer("threads", 32, 1024)},
      .attrs = {},
      .params =
          [](const Config &) {
            return std::vector<ParamDef>{
                bufferParam("gate", "dtype"), i64Param("gate_offset"),  i64Param("gate_stride"),
                bufferParam("up", "dtype"),   i64Param("up_offset"),    i64Param("up_stride"),
                bufferParam("dout", "dtype"), bufferParam("d", "dtype"), i64Param("dgate_offset"),
                i64Param("dup_offset"),       i64Param("d_stride"),     i64Param("rows")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("SwigluBackwardConfig", cfgCudaType(c, "dtype") + ", " +
                                                              num(c, "dim") + ", " +
                                                              num(c, "threads"));
          },
      .geometry = [](const Config &c) { return rowColumnBlockGeometry(c, "dim"); },
      .cpu = runCpu,
      .tuning = threadsSpace,
  };
  return def;
}

} // namespace xlc::kernels
