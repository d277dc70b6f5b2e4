//===- MlstmChunkFused.cpp - Chunkwise mLSTM, the fused state pass --------===//
//
// The chunkwise forward with the state kept on chip for the whole sequence: outputs, final C,
// n and m from q, k, v and the scores kernel's per-chunk records (MlstmChunkScores.cpp) in one
// launch (runtime/device/mlstm_chunk_fused.cuh). One block per (DV tile, batch·head); the blocks
// of a head meet through per-(b, head) counters the runtime zeroes before the launch (the last
// reader of the initial n, m writes the final ones). Chosen over the two-kernel form when the
// chunk's q, k, v, P̃ and the bf16 C tile fit in shared memory (codegen/cuda/EmitMlstm.cpp).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/families/MlstmChunkwise.h"


namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  l.i64s("counters", l.product({l.count("batch"), l.cfg("num_heads")})); // checked, unused
  exec::cpu::mlstmChunkStatePass(l.pool(), mlstm::recordsOf(l));
}

} // namespace

std::int64_t mlstm::fusedSharedBytes(std::int64_t chunk, std::int64_t dqk, std::int64_t tileV,
                                     std::int64_t keySplit) {
  // MlstmChunkFusedConfig's layout, every region 128-byte aligned: two stages of q, k (padded
  // width), the v tile, P̃ and the gate record; the bf16 C tile; the epilogue (the parts' partial
  // numerators, the h staging tile) in a region of its own only when it does not fit in a stage;
  // five row and key vectors; two n buffers.
  const std::int64_t qw = (dqk + 15) / 16 * 16;
  const std::int64_t stage = 2 * smemBytes(chunk * (qw + 8), 2) +
                             smemBytes(chunk * (tileV + 8), 2) +
                             smemBytes(chunk * (chunk + 8), 2) + smemBytes(4 * chunk + 4, 4);
  const std::int64_t epilogue =
      smemBytes((keySplit - 1) * chunk * tileV, 4) + smemBytes(chunk * (tileV + 8), 2);
  return 2 * stage + smemBytes(qw * (tileV + 8), 2) + (epilogue <= stage ? 0 : epilogue) +
         smemBytes(5 * chunk, 4) + smemBytes(2 * qw, 4) + 128;
}

const FamilyDef &mlstmChunkFusedFamily() {
  static const FamilyDef def{
      .name = "mlstm_chunk_fused",
      .op = "mlstm_chunkwise",
      .header = "mlstm_chunk_fused",
      .paramsType = "MlstmChunkFusedParams",
      .function = "mlstm_chunk_fused",
      .config = mlstm::cellFields({ConfigField::integer("chunk", 16, 1024),
                                   ConfigField::integer("tile_v", 16, 256),
                                   ConfigField::integer("key_split", 1, 8)}),
      .attrs = mlstm::cellAttrs({{"chunk", AttrCheck::Source::ConfigField, "chunk"}}, {"eps"}),
      .params =
          [](const Config &) {
            std::vector<ParamDef> params = mlstm::viewParams({"q", "k", "v"});
            for (ParamDef &p : mlstm::recordParams())
              params.push_back(std::move(p));
            for (ParamDef &p : mlstm::inPlaceStateParams())
              params.push_back(std::move(p));
            params.push_back(i64Param("batch"));
            params.push_back(i64Param("seq_len"));
            params.push_back(f32Param("eps"));
            return params;
          },
      .configType =
          [](const Config &c) {
            return configSpelling("MlstmChunkFusedConfig",
                                  mlstm::cellConfigType(c) + ", " + num(c, "chunk") + ", " +
                                      num(c, "tile_v") + ", " + num(c, "key_split"));
          },
      .geometry =
          [](const Config &c) {
            const std::int64_t chunk = cfgInt(c, "chunk"), tileV = cfgInt(c, "tile_v"),
                               keySplit = cfgInt(c, "key_split");
            const std::int64_t dv = cfgInt(c, "v_head_dim");
            Geometry g;
            g.block = {static_cast<std::uint32_t>(32 * (chunk / 16) * keySplit), 1, 1};
            g.grid = {artifact::Expr::constant(u64((dv + tileV - 1) / tileV)),
                      artifact::Expr::batch(u64(cfgInt(c, "num_heads"))),
                      artifact::Expr::constant(1)};
            g.sharedBytes = static_cast<std::uint32_t>(
                mlstm::fusedSharedBytes(chunk, cfgInt(c, "qk_head_dim"), tileV, keySplit));
            g.assertSharedBytes = true;
            return g;
          },
      .cpu = runCpu,
      .tuning =
          [](const Config &c) {
            return std::vector<TuningKnob>{
                {"tile_v", mlstm::tileValues(cfgInt(c, "v_head_dim"), 256)},
                {"key_split", {1, 2, 4}}};
          },
      .constraint =
          [](const Config &c) {
            return mlstm::fusedConstraint(cfgInt(c, "chunk"), cfgInt(c, "qk_head_dim"),
                                          cfgInt(c, "key_split"));
          },
  };
  return def;
}

} // namespace xlc::kernels
