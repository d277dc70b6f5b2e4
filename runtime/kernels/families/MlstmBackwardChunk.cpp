//===- MlstmBackwardChunk.cpp - mLSTM backward, kernel P -------------------===//
//
// Per (chunk, batch·head): δq, δk, δv into their strided destinations and the gate-gradient
// pieces that do not depend on the stabiliser's gradient (runtime/device/
// mlstm_chunk_backward.cuh).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/families/MlstmChunkwise.h"

namespace xlc::kernels {

const FamilyDef &mlstmBackwardChunkFamily() {
  static const FamilyDef def{
      .name = "mlstm_backward_chunk",
      .op = "mlstm_cell_grad",
      .header = "mlstm_chunk_backward",
      .paramsType = "MlstmChunkBackwardParams",
      .function = "mlstm_backward_chunk",
      .config = mlstm::backwardFields(),
      .attrs = mlstm::cellAttrs({{"chunk", AttrCheck::Source::ConfigField, "chunk"}}),
      .params = [](const Config &) { return mlstm::backwardParams(); },
      .configType = mlstm::backwardConfigType,
      .geometry =
          [](const Config &c) {
            return mlstm::backwardGeometry(
                c,
                {artifact::ceilDiv(artifact::Expr::seq(), u64(cfgInt(c, "chunk"))),
                 artifact::Expr::batch(u64(cfgInt(c, "num_heads"))), artifact::Expr::constant(1)},
                &mlstm::BackwardShared::chunk, "kSharedBytes");
          },
      .cpu = [](CpuLaunch &l) { exec::cpu::mlstmBackwardChunks(l.pool(), mlstm::backwardOf(l)); },
  };
  return def;
}

} // namespace xlc::kernels
