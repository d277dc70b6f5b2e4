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
  static const FamilyDef def = mlstm::backwardFamily(
      "mlstm_backward_chunk",
      [](const Config &c) {
        return mlstm::backwardGeometry(
            c,
            {artifact::ceilDiv(artifact::Expr::seq(), u64(cfgInt(c, "chunk"))),
             artifact::Expr::batch(u64(cfgInt(c, "num_heads"))), artifact::Expr::constant(1)},
            &mlstm::BackwardShared::chunk, "kSharedBytes");
      },
      [](CpuLaunch &l) { exec::cpu::mlstmBackwardChunks(l.pool(), mlstm::backwardOf(l)); });
  return def;
}

} // namespace xlc::kernels
