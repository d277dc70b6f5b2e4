//===- MlstmChunkOutputs.cpp - Chunkwise mLSTM, kernel B ------------------===//
//
// Every chunk's outputs in parallel from the chunk's q, k, v, gates and the workspace slot
// before the chunk; the final m from slot NC (runtime/device/mlstm_chunkwise.cuh). One block per
// (DV tile, query block of the sequence, batch·head).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/families/MlstmChunkwise.h"

#include <algorithm>

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  exec::cpu::MlstmChunkwise op = mlstm::chunkwiseOf(l);
  exec::cpu::mlstmChunkOutputs(l.pool(), op);
}

} // namespace

const FamilyDef &mlstmChunkOutputsFamily() {
  static const FamilyDef def{
      .name = "mlstm_chunk_outputs",
      .op = "mlstm_chunkwise",
      .header = "mlstm_chunkwise",
      .paramsType = "MlstmChunkwiseParams",
      .function = "mlstm_chunk_outputs",
      .config = mlstm::cellFields({ConfigField::integer("chunk", 16, 1024),
                                   ConfigField::integer("block_l", 16, 1024),
                                   ConfigField::integer("block_dv", 16, 256),
                                   ConfigField::integer("block_dqk", 16, 256),
                                   ConfigField::integer("threads", 32, 1024),
                                   ConfigField::boolean("resets")}),
      .attrs = mlstm::cellAttrs({{"chunk", AttrCheck::Source::ConfigField, "chunk"}}),
      .params = mlstm::chunkwiseParams,
      .configType =
          [](const Config &c) {
            return configSpelling("MlstmChunkOutputsConfig",
                                  mlstm::cellConfigType(c) + ", " +
                                      num(c, "chunk") + ", " +
                                      num(c, "block_l") + ", " +
                                      num(c, "block_dv") + ", " +
                                      num(c, "block_dqk") + ", " +
                                      num(c, "threads"));
          },
      .geometry =
          [](const Config &c) {
            const std::int64_t chunk = cfgInt(c, "chunk"), blockL = cfgInt(c, "block_l"),
                               blockDV = cfgInt(c, "block_dv"), blockDQK = cfgInt(c, "block_dqk");
            const std::int64_t dqk = cfgInt(c, "qk_head_dim"), dv = cfgInt(c, "v_head_dim");
            Geometry g;
            g.block = {static_cast<std::uint32_t>(cfgInt(c, "threads")), 1, 1};
            g.grid = {artifact::Expr::constant(u64((dv + blockDV - 1) / blockDV)),
                      artifact::ceilDiv(artifact::Expr::seq(), u64(blockL)),
                      artifact::Expr::batch(u64(cfgInt(c, "num_heads")))};
            // MlstmChunkOutputsConfig's layout (every region 128-byte aligned): the q rows, a
            // ring of three operand slots (each the largest of a C slice, a k slice, a v tile),
            // gate vectors, per-row values, n.
            const std::int64_t qWidth = (dqk + blockDQK - 1) / blockDQK * blockDQK;
            using mlstm::smemBytes;
            const std::int64_t slot = std::max({smemBytes(blockDQK * (blockDV + 8), 2),
                                                smemBytes(blockL * (blockDQK + 8), 2),
                                                smemBytes(blockL * (blockDV + 8), 2)});
            g.sharedBytes = static_cast<std::uint32_t>(
                smemBytes(blockL * (qWidth + 8), 2) + 3 * slot + smemBytes(3 * chunk, 4) +
                smemBytes(4 * blockL, 4) + smemBytes(qWidth, 4));
            g.assertSharedBytes = true;
            return g;
          },
      .cpu = runCpu,
  };
  return def;
}

} // namespace xlc::kernels
