//===- MlstmBackwardGates.cpp - mLSTM backward, kernel G -------------------===//
//
// Per batch·head: the stabiliser's gradient across chunks (a scalar recurrence), then δĩ, δf̃ of
// every token through the cumulative sums and the soft-cap and log-sigmoid derivatives
// (runtime/device/mlstm_chunk_backward.cuh).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/families/MlstmChunkwise.h"

namespace xlc::kernels {

const FamilyDef &mlstmBackwardGatesFamily() {
  static const FamilyDef def = mlstm::backwardFamily(
      "mlstm_backward_gates",
      [](const Config &c) {
        return mlstm::backwardGeometry(
            c,
            {artifact::Expr::batch(u64(cfgInt(c, "num_heads"))), artifact::Expr::constant(1),
             artifact::Expr::constant(1)},
            &mlstm::BackwardShared::gates, "kGatesBytes");
      },
      [](CpuLaunch &l) { exec::cpu::mlstmBackwardGates(l.pool(), mlstm::backwardOf(l)); });
  return def;
}

} // namespace xlc::kernels
