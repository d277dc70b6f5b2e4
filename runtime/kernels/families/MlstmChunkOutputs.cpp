//===- MlstmChunkOutputs.cpp - Chunkwise mLSTM, kernel B ------------------===//
//
// Every chunk's outputs in parallel from the chunk's q, k, v, gates and the workspace slot
// before the chunk; the final m from slot NC (runtime/device/mlstm_chunkwise.cuh). One block per
// (DV tile, query block of the sequence, batch·head).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/families/MlstmChunkwise.h"

#include <fmt/format.h>

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
      .tuning =
          [](const Config &c) {
            std::vector<std::int64_t> blockL;
            for (std::int64_t l = 16; l <= std::min<std::int64_t>(128, cfgInt(c, "chunk")); l *= 2)
              blockL.push_back(l);
            return std::vector<TuningKnob>{
                {"block_l", blockL},
                {"block_dv", mlstm::tileValues(cfgInt(c, "v_head_dim"), 128)},
                {"block_dqk", mlstm::tileValues(cfgInt(c, "qk_head_dim"), 128)},
                threadsKnob(32, 256)};
          },
      // MlstmChunkOutputsConfig's static_asserts: the query block divides the chunk, warps own
      // whole 16-row query strips, the q̂ᵀn pass's threads per row are a power of two ≤ 32.
      .constraint =
          [](const Config &c) -> std::string {
            const std::int64_t chunk = cfgInt(c, "chunk"), blockL = cfgInt(c, "block_l"),
                               threads = cfgInt(c, "threads");
            if (chunk % blockL != 0 || blockL % 16 != 0)
              return fmt::format("block_l {} must be a multiple of 16 dividing the chunk {}",
                                 blockL, chunk);
            if (cfgInt(c, "block_dv") % 16 != 0 || cfgInt(c, "block_dqk") % 16 != 0)
              return "block_dv and block_dqk must be whole 16-wide fragments";
            const std::int64_t strips = blockL / 16, warps = threads / 32;
            if (warps == 0 || strips % warps != 0)
              return fmt::format("{} warps cannot share {} query strips of 16 rows", warps,
                                 strips);
            const std::int64_t rowThreads = threads >= blockL ? threads / blockL : 1;
            if ((rowThreads & (rowThreads - 1)) != 0 || rowThreads > 32 ||
                threads % rowThreads != 0)
              return fmt::format("{} threads per query row: a power of two ≤ 32 needed",
                                 rowThreads);
            return {};
          },
  };
  return def;
}

} // namespace xlc::kernels
