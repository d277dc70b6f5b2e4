//===- MlstmChunkScores.cpp - Chunkwise mLSTM: per-chunk scores and gates -===//
//
// The state-independent half of the fused chunkwise form (runtime/device/mlstm_chunk_scores.cuh):
// every chunk's gated causal scores P̃ (bf16) and gate vectors, one block per (chunk, b·head),
// written as records that the fused state pass (MlstmChunkFused.cpp) reads in the same call.
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/families/MlstmChunkwise.h"

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) { exec::cpu::mlstmChunkScores(l.pool(), mlstm::recordsOf(l)); }

} // namespace

std::int64_t mlstm::scoresSharedBytes(std::int64_t chunk, std::int64_t dqk) {
  // MlstmChunkScoresConfig's layout: q and k tiles (padded width), the P̃ staging tile, six gate
  // vectors, every region 128-byte aligned.
  const std::int64_t qw = (dqk + 15) / 16 * 16;
  return 2 * smemBytes(chunk * (qw + 8), 2) + smemBytes(chunk * (chunk + 8), 2) +
         smemBytes(6 * chunk, 4) + 128;
}

const FamilyDef &mlstmChunkScoresFamily() {
  static const FamilyDef def{
      .name = "mlstm_chunk_scores",
      .op = "mlstm_chunkwise",
      .header = "mlstm_chunk_scores",
      .paramsType = "MlstmChunkScoresParams",
      .function = "mlstm_chunk_scores",
      .config = mlstm::cellFields({ConfigField::integer("chunk", 16, 1024)}),
      .attrs = mlstm::cellAttrs({{"chunk", AttrCheck::Source::ConfigField, "chunk"}},
                                {"gate_soft_cap"}),
      .params =
          [](const Config &) {
            std::vector<ParamDef> params = mlstm::viewParams({"q", "k", "igate", "fgate"});
            for (ParamDef &p : mlstm::recordParams())
              params.push_back(std::move(p));
            params.push_back(i64Param("batch"));
            params.push_back(i64Param("seq_len"));
            params.push_back(f32Param("gate_soft_cap"));
            return params;
          },
      .configType =
          [](const Config &c) {
            return configSpelling("MlstmChunkScoresConfig",
                                  mlstm::cellConfigType(c) + ", " + num(c, "chunk"));
          },
      .geometry =
          [](const Config &c) {
            const std::int64_t chunk = cfgInt(c, "chunk");
            Geometry g;
            g.block = {static_cast<std::uint32_t>(32 * (chunk / 16)), 1, 1};
            g.grid = {artifact::ceilDiv(artifact::Expr::seq(), u64(chunk)),
                      artifact::Expr::batch(u64(cfgInt(c, "num_heads"))),
                      artifact::Expr::constant(1)};
            g.sharedBytes = static_cast<std::uint32_t>(
                mlstm::scoresSharedBytes(chunk, cfgInt(c, "qk_head_dim")));
            g.assertSharedBytes = true;
            return g;
          },
      .cpu = runCpu,
  };
  return def;
}

} // namespace xlc::kernels
