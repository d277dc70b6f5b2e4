//===- Swiglu.cpp - SiLU(gate) · up ---------------------------------------===//
//
// out[r, c] = silu(gate[r, c]) · up[r, c], gate and up strided views (the two halves of the
// fused gate|up projection). Grid (rows, ceil(dim / (threads·8))): each thread owns 8 columns
// (runtime/device/swiglu.cuh).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  const std::int64_t rows = l.count("rows"), dim = l.cfg("dim");
  const exec::cpu::View gate = l.view("gate", "gate_offset", "gate_stride", rows, dim);
  const exec::cpu::View up = l.view("up", "up_offset", "up_stride", rows, dim);
  float *out = l.floats("out", l.product({rows, dim}));
  exec::cpu::swiglu(l.pool(), gate, up, out, rows, dim);
}

} // namespace

const FamilyDef &swigluFamily() {
  static const FamilyDef def{
      .name = "swiglu",
      .op = "swiglu",
      .header = "swiglu",
      .paramsType = "SwigluParams",
      .function = "swiglu",
      .config = {ConfigField::dtype("dtype"), ConfigField::integer("dim"),
                 ConfigField::integer("threads", 32, 1024)},
      .attrs = {},
      .params =
          [](const Config &) {
            return std::vector<ParamDef>{
                bufferParam("gate", "dtype"), i64Param("gate_offset"), i64Param("gate_stride"),
                bufferParam("up", "dtype"),   i64Param("up_offset"),   i64Param("up_stride"),
                bufferParam("out", "dtype"),  i64Param("rows")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("SwigluConfig", cfgCudaType(c, "dtype") + ", " +
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
