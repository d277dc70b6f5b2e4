//===- MlstmBackwardStates.cpp - mLSTM backward, kernel S ------------------===//
//
// Per (δC tile, batch·head), chunks last to first: the gradient of the state after every chunk
// into ws_dC, ws_dn (runtime/device/mlstm_chunk_backward.cuh). The reverse of the forward's
// state pass, linear in (δC, δn).
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/families/MlstmChunkwise.h"

namespace xlc::kernels {

const FamilyDef &mlstmBackwardStatesFamily() {
  static const FamilyDef def = mlstm::backwardFamily(
      "mlstm_backward_states",
      [](const Config &c) {
        const std::int64_t tile = cfgInt(c, "tile");
        const std::int64_t tiles = ((cfgInt(c, "qk_head_dim") + tile - 1) / tile) *
                                   ((cfgInt(c, "v_head_dim") + tile - 1) / tile);
        return mlstm::backwardGeometry(
            c,
            {artifact::Expr::constant(u64(tiles)),
             artifact::Expr::batch(u64(cfgInt(c, "num_heads"))), artifact::Expr::constant(1)},
            &mlstm::BackwardShared::states, "kStatesBytes");
      },
      [](CpuLaunch &l) { exec::cpu::mlstmBackwardStates(l.pool(), mlstm::backwardOf(l)); });
  return def;
}

} // namespace xlc::kernels
