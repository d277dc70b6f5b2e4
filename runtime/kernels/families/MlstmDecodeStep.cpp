//===- MlstmDecodeStep.cpp - The fused mLSTM decode step ------------------===//
//
// One recurrent step per (b, head): gates, state update, readout and normalisation in one pass
// over C (runtime/device/mlstm_decode_step.cuh). One block per (DV tile, batch·head); the
// blocks of a head meet through per-(b, head) counters the runtime zeroes before the launch.
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/families/MlstmCommon.h"

#include <fmt/format.h>

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  exec::cpu::MlstmCell cell = mlstm::cellOf(l, 1);
  l.i64s("counters", l.product({cell.batch, cell.numHeads})); // checked like the GPU's, unused
  exec::cpu::mlstmRecurrent(l.pool(), cell);
}

} // namespace

const FamilyDef &mlstmDecodeStepFamily() {
  static const FamilyDef def{
      .name = "mlstm_decode_step",
      .op = "mlstm_decode_step",
      .header = "mlstm_decode_step",
      .paramsType = "MlstmDecodeParams",
      .function = "mlstm_decode_step",
      .config = mlstm::cellFields({ConfigField::integer("block_dv", 1, 1024),
                                   ConfigField::integer("threads", 32, 1024)}),
      .attrs = mlstm::cellAttrs(),
      .params = [](const Config &) { return mlstm::inPlaceParams(false); },
      .configType =
          [](const Config &c) {
            return configSpelling("MlstmDecodeConfig",
                                  mlstm::cellConfigType(c) + ", " +
                                      num(c, "block_dv") + ", " +
                                      num(c, "threads"));
          },
      .geometry =
          [](const Config &c) {
            const std::int64_t blockDV = cfgInt(c, "block_dv");
            Geometry g;
            g.block = {static_cast<std::uint32_t>(cfgInt(c, "threads")), 1, 1};
            g.grid = {
                artifact::Expr::constant(u64((cfgInt(c, "v_head_dim") + blockDV - 1) / blockDV)),
                artifact::Expr::batch(u64(cfgInt(c, "num_heads"))), artifact::Expr::constant(1)};
            return g;
          },
      .cpu = runCpu,
      // The C tile's loads go out before the wait for the gate GEMM (mlstm_decode_step.cuh).
      .waitsInside = true,
      .tuning =
          [](const Config &c) {
            return std::vector<TuningKnob>{
                {"block_dv", mlstm::tileValues(cfgInt(c, "v_head_dim"), 256)},
                threadsKnob(64, 512)};
          },
      // MlstmDecodeConfig's static_asserts: the DV tile is whole 16-byte vectors of the state
      // and the block whole rows of them.
      .constraint =
          [](const Config &c) -> std::string {
            const std::int64_t vec = cfgString(c, "state_dtype") == "f32" ? 4 : 8;
            const std::int64_t blockDV = cfgInt(c, "block_dv"), threads = cfgInt(c, "threads");
            if (blockDV % vec != 0)
              return fmt::format("block_dv {} is not whole 16-byte vectors of {} states",
                                 blockDV, vec);
            if (threads % (blockDV / vec) != 0)
              return fmt::format("{} threads do not tile rows of {} vectors", threads,
                                 blockDV / vec);
            return {};
          },
  };
  return def;
}

} // namespace xlc::kernels
