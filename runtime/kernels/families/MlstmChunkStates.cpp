//===- MlstmChunkStates.cpp - Chunkwise mLSTM, kernel A -------------------===//
//
// The inter-chunk recurrence: the state before every chunk into the workspaces ws_C (in the
// cell's dtype), ws_n, ws_m (fp32) ([B, NH, NC+1, ...], NC = ceil(S/L)), the final C and n in place
// (runtime/device/mlstm_chunkwise.cuh). One block per (C tile, batch·head).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/families/MlstmChunkwise.h"

#include <fmt/format.h>

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  exec::cpu::MlstmChunkwise op = mlstm::chunkwiseOf(l);
  exec::cpu::mlstmChunkStates(l.pool(), op);
}

} // namespace

const FamilyDef &mlstmChunkStatesFamily() {
  static const FamilyDef def{
      .name = "mlstm_chunk_states",
      .op = "mlstm_chunkwise",
      .header = "mlstm_chunkwise",
      .paramsType = "MlstmChunkwiseParams",
      .function = "mlstm_chunk_states",
      .config = mlstm::cellFields({ConfigField::integer("chunk", 16, 1024),
                                   ConfigField::integer("tile_k", 16, 256),
                                   ConfigField::integer("tile_v", 16, 256),
                                   ConfigField::integer("threads", 32, 1024),
                                   ConfigField::boolean("resets")}),
      .attrs = mlstm::cellAttrs({{"chunk", AttrCheck::Source::ConfigField, "chunk"}}),
      .params = mlstm::chunkwiseParams,
      .configType =
          [](const Config &c) {
            return configSpelling("MlstmChunkStatesConfig",
                                  mlstm::cellConfigType(c) + ", " +
                                      num(c, "chunk") + ", " +
                                      num(c, "tile_k") + ", " +
                                      num(c, "tile_v") + ", " +
                                      num(c, "threads"));
          },
      .geometry =
          [](const Config &c) {
            const std::int64_t chunk = cfgInt(c, "chunk"), tileK = cfgInt(c, "tile_k"),
                               tileV = cfgInt(c, "tile_v");
            const std::int64_t dqk = cfgInt(c, "qk_head_dim"), dv = cfgInt(c, "v_head_dim");
            Geometry g;
            g.block = {static_cast<std::uint32_t>(cfgInt(c, "threads")), 1, 1};
            const std::int64_t tiles = ((dqk + tileK - 1) / tileK) * ((dv + tileV - 1) / tileV);
            g.grid = {artifact::Expr::constant(u64(tiles)),
                      artifact::Expr::batch(u64(cfgInt(c, "num_heads"))),
                      artifact::Expr::constant(1)};
            // MlstmChunkStatesConfig's layout: two stages of the k and v tiles (bf16), three
            // gate vectors, the n tile, scalars, the C staging tile (of the cell dtype); every
            // region 128-byte aligned.
            const std::int64_t ldK = tileK + 8, ldV = tileV + 8;
            const std::int64_t stage =
                mlstm::smemBytes(chunk * ldK, 2) + mlstm::smemBytes(chunk * ldV, 2);
            const std::int64_t tSize = cfgString(c, "dtype") == "f32" ? 4 : 2;
            g.sharedBytes = static_cast<std::uint32_t>(
                2 * stage + mlstm::smemBytes(3 * chunk, 4) + mlstm::smemBytes(tileK, 4) + 128 +
                mlstm::smemBytes(tileK * (tileV + 8), tSize));
            g.assertSharedBytes = true;
            return g;
          },
      .cpu = runCpu,
      .tuning =
          [](const Config &c) {
            return std::vector<TuningKnob>{
                {"tile_k", mlstm::tileValues(cfgInt(c, "qk_head_dim"), 128)},
                {"tile_v", mlstm::tileValues(cfgInt(c, "v_head_dim"), 128)},
                threadsKnob(32, 256)};
          },
      // Each warp owns whole 16-row strips of the C tile (kStrips % kWarps == 0).
      .constraint =
          [](const Config &c) -> std::string {
            const std::int64_t strips = cfgInt(c, "tile_k") / 16,
                               warps = cfgInt(c, "threads") / 32;
            if (cfgInt(c, "tile_k") % 16 != 0 || cfgInt(c, "tile_v") % 16 != 0)
              return "tile_k and tile_v must be whole 16-wide fragments";
            if (warps == 0 || strips % warps != 0)
              return fmt::format("{} warps cannot share {} strips of 16 rows", warps, strips);
            return {};
          },
  };
  return def;
}

} // namespace xlc::kernels
