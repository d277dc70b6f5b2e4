//===- ColumnSum.cpp - Column sums of a view (a bias's gradient) -----------===//
//
// out[c] += Σ_rows x[r, c] in fp32 (runtime/device/column_sum.cuh: blocks of rows_per_block rows,
// per-block partial sums reduced in block order by the last block).
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cpu/CpuBackwardOps.h"
#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  const std::int64_t rows = l.count("rows"), cols = l.cfg("cols");
  const exec::cpu::View x = l.view("x", "x_offset", "x_stride", rows, cols);
  // The CPU sums in its own fixed row blocks (CpuBackwardOps.h); the GPU's partial-sum scratch
  // and counter are not needed here.
  exec::cpu::columnSum(l.pool(), x, l.floats("out", u64(cols)), rows, cols);
}

} // namespace

const FamilyDef &columnSumFamily() {
  static const FamilyDef def{
      .name = "column_sum",
      .op = "column_sum",
      .header = "column_sum",
      .paramsType = "ColumnSumParams",
      .function = "column_sum",
      .config = {ConfigField::dtype("dtype"), ConfigField::integer("cols"),
                 ConfigField::integer("threads", 32, 1024),
                 ConfigField::integer("rows_per_block", 1, 1 << 16)},
      .attrs = {},
      .params =
          [](const Config &) {
            return std::vector<ParamDef>{bufferParam("x", "dtype"),
                                         i64Param("x_offset"),
                                         i64Param("x_stride"),
                                         bufferParam("partial", artifact::DType::F32),
                                         bufferParam("out", artifact::DType::F32),
                                         bufferParam("counter", artifact::DType::I64, Duty::Zeroed),
                                         i64Param("rows")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("ColumnSumConfig", cfgCudaType(c, "dtype") + ", " +
                                                         num(c, "cols") + ", " +
                                                         num(c, "threads") + ", " +
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
