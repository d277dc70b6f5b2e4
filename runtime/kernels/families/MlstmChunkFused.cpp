//===- MlstmChunkFused.cpp - Chunkwise mLSTM, one fused kernel ------------===//
//
// The chunkwise forward with the state kept on chip for the whole sequence: outputs, final C,
// n and m from q, k, v and the gates in one launch (runtime/device/mlstm_chunk_fused.cuh). One
// block per (DV tile, batch·head); the blocks of a head meet through per-(b, head) counters the
// runtime zeroes before the launch (the last reader of the initial n, m writes the final ones).
// Chosen over the two-kernel form when the chunk's q, k, v and the bf16 C tile fit in shared
// memory (codegen/cuda/EmitMlstm.cpp).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/families/MlstmChunkwise.h"

#include <vector>

namespace xlc::kernels {

namespace {

/// The CPU backend computes the same chunkwise form as the two GPU kernels, through a workspace
/// of its own (the fused kernel has none).
void runCpu(CpuLaunch &l) {
  exec::cpu::MlstmChunkwise op;
  op.cell = mlstm::cellOf(l, l.count("seq_len"));
  op.chunk = l.cfg("chunk");
  l.i64s("counters", l.product({op.cell.batch, op.cell.numHeads})); // checked, unused
  const std::int64_t chunks = (op.cell.seq + op.chunk - 1) / op.chunk;
  const std::uint64_t slots = l.product({op.cell.batch, op.cell.numHeads, chunks + 1});
  std::vector<float> wsC(l.product({static_cast<std::int64_t>(slots), op.cell.dqk, op.cell.dv}));
  std::vector<float> wsN(l.product({static_cast<std::int64_t>(slots), op.cell.dqk}));
  std::vector<float> wsM(slots);
  op.wsC = wsC.data();
  op.wsN = wsN.data();
  op.wsM = wsM.data();
  exec::cpu::mlstmChunkStates(l.pool(), op);
  exec::cpu::mlstmChunkOutputs(l.pool(), op);
}

} // namespace

std::int64_t mlstm::fusedSharedBytes(std::int64_t chunk, std::int64_t dqk, std::int64_t tileV,
                                     std::int64_t keySplit) {
  // MlstmChunkFusedConfig's layout, every region 128-byte aligned: two stages of q, k (padded
  // width) and the v tile; the bf16 C tile; the epilogue (the parts' partial numerators and ΣP,
  // the h staging tile) in a region of its own only when it does not fit in a stage; five gate
  // vectors; four per-row vectors; two n buffers; scalars.
  const std::int64_t qw = (dqk + 15) / 16 * 16;
  const std::int64_t stage = 2 * smemBytes(chunk * (qw + 8), 2) + smemBytes(chunk * (tileV + 8), 2);
  const std::int64_t epilogue = smemBytes((keySplit - 1) * chunk * tileV, 4) +
                                smemBytes((keySplit - 1) * chunk, 4) +
                                smemBytes(chunk * (tileV + 8), 2);
  return 2 * stage + smemBytes(qw * (tileV + 8), 2) + (epilogue <= stage ? 0 : epilogue) +
         smemBytes(5 * chunk, 4) + smemBytes(4 * chunk, 4) + smemBytes(2 * qw, 4) + 128;
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
      .attrs = mlstm::cellAttrs({{"chunk", AttrCheck::Source::ConfigField, "chunk"}}),
      .params = [](const Config &) { return mlstm::inPlaceParams(true); },
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
  };
  return def;
}

} // namespace xlc::kernels
