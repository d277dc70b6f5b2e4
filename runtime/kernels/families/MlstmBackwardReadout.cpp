//===- MlstmBackwardReadout.cpp - mLSTM backward, kernel R -----------------===//
//
// Per (chunk, batch·head): the forward's per-token stabiliser and denominator recomputed, δh
// turned into the readout's scalars (s, δden, δm, β per token) and the chunk's decay d
// (runtime/device/mlstm_chunk_backward.cuh).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/families/MlstmChunkwise.h"

namespace xlc::kernels {

const FamilyDef &mlstmBackwardReadoutFamily() {
  static const FamilyDef def = mlstm::backwardFamily(
      "mlstm_backward_readout",
      [](const Config &c) {
        return mlstm::backwardGeometry(
            c,
            {artifact::ceilDiv(artifact::Expr::seq(), u64(cfgInt(c, "chunk"))),
             artifact::Expr::batch(u64(cfgInt(c, "num_heads"))), artifact::Expr::constant(1)},
            &mlstm::BackwardShared::readout, "kReadoutBytes");
      },
      [](CpuLaunch &l) { exec::cpu::mlstmBackwardReadout(l.pool(), mlstm::backwardOf(l)); });
  return def;
}

} // namespace xlc::kernels
