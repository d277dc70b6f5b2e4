//===- SoftCap.cpp - cap·tanh(x/cap) in place -----------------------------===//
//
// x[i] = cap·tanh(x[i]/cap) for i < count, in place over the logits [rows, width]; each thread
// owns 8 elements, so grid.x = ceil(rows·width / (threads·8)) (runtime/device/soft_cap.cuh).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"
#include "runtime/support/Error.h"

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  const std::int64_t count = l.count("count");
  const double cap = l.real("cap");
  check(cap > 0.0, "{}: cap must be positive, got {}", l.where(), cap);
  float *x = l.floats("x", u64(count));
  exec::cpu::softCap(l.pool(), x, count, cap);
}

} // namespace

const FamilyDef &softCapFamily() {
  static const FamilyDef def{
      .name = "soft_cap",
      .op = "soft_cap",
      .header = "soft_cap",
      .paramsType = "SoftCapParams",
      .function = "soft_cap",
      .config = {ConfigField::dtype("dtype"), ConfigField::integer("width", 1, 1ll << 40),
                 ConfigField::integer("threads", 32, 1024)},
      .attrs = {{"cap", AttrCheck::Source::F32Arg, "cap"}},
      .params =
          [](const Config &) {
            return std::vector<ParamDef>{bufferParam("x", "dtype"), i64Param("count"),
                                         f32Param("cap")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("SoftCapConfig", cfgCudaType(c, "dtype") + ", " +
                                                       num(c, "threads"));
          },
      .geometry =
          [](const Config &c) {
            Geometry g;
            const std::int64_t threads = cfgInt(c, "threads");
            g.block = {static_cast<std::uint32_t>(threads), 1, 1};
            g.grid[0] = artifact::ceilDiv(artifact::Expr::batchSeq(u64(cfgInt(c, "width"))),
                                          u64(threads * 8));
            return g;
          },
      .cpu = runCpu,
      .tuning = threadsSpace,
  };
  return def;
}

} // namespace xlc::kernels
