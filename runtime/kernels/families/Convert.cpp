//===- Convert.cpp - A float tensor in another float type ------------------===//
//
// y = TOut(x) for a strided view x [rows, cols] (runtime/device/convert.cuh): the narrowing
// before a GEMM whose operands came in two types. The CPU backend holds every float buffer as
// fp32, so its conversion is a copy (no rounding: it stays the fp32 reference).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"

#include <algorithm>

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  const std::int64_t rows = l.count("rows"), cols = l.cfg("cols");
  const exec::cpu::View x = l.view("x", "x_offset", "x_stride", rows, cols);
  float *y = l.floats("y", l.product({rows, cols}));
  for (std::int64_t r = 0; r < rows; ++r)
    std::copy_n(x.row(r), cols, y + r * cols);
}

} // namespace

const FamilyDef &convertFamily() {
  static const FamilyDef def{
      .name = "convert",
      .op = "convert",
      .header = "convert",
      .paramsType = "ConvertParams",
      .function = "convert",
      .config = {ConfigField::dtype("src_dtype"), ConfigField::dtype("dst_dtype"),
                 ConfigField::integer("cols"), ConfigField::integer("threads", 32, 1024)},
      .attrs = {},
      .params =
          [](const Config &) {
            return std::vector<ParamDef>{bufferParam("x", "src_dtype"), i64Param("x_offset"),
                                         i64Param("x_stride"), bufferParam("y", "dst_dtype"),
                                         i64Param("rows")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("ConvertConfig", cfgCudaType(c, "src_dtype") + ", " +
                                                       cfgCudaType(c, "dst_dtype") + ", " +
                                                       num(c, "cols") + ", " + num(c, "threads"));
          },
      .geometry = [](const Config &c) { return rowColumnBlockGeometry(c, "cols"); },
      .cpu = runCpu,
      .tuning = threadsSpace,
  };
  return def;
}

} // namespace xlc::kernels
