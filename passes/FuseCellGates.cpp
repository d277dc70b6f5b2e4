//===- FuseCellGates.cpp - Gate soft-caps into the mLSTM cell -------------===//
//
// Implements xlc-fuse-cell-gates. After it, the cell kernel computes
// cap·tanh(x/cap) → log-sigmoid → exponential gating on the raw pre-activations in registers,
// and the gates never make a round trip through memory.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

#define DEBUG_TYPE "xlc-fuse-cell-gates"

namespace xlc {
#define GEN_PASS_DEF_FUSECELLGATES
#include "passes/Passes.h.inc"
} // namespace xlc

using namespace mlir;
using namespace xlc;
using namespace xlc::xlstm;

namespace {

struct FuseCellGatesPass : public xlc::impl::FuseCellGatesBase<FuseCellGatesPass> {
  void runOnOperation() override {
    getOperation().walk([](MLSTMCellOp cell) {
      if (cell.getGateSoftCap())
        return;
      auto i = cell.getIgate().getDefiningOp<SoftCapOp>();
      auto f = cell.getFgate().getDefiningOp<SoftCapOp>();
      // Both gates, one cap, and no other reader of the capped values.
      if (!i || !f || i == f || i.getCap() != f.getCap() || !i->hasOneUse() || !f->hasOneUse())
        return;
      cell.getIgateMutable().assign(i.getInput());
      cell.getFgateMutable().assign(f.getInput());
      cell.setGateSoftCapAttr(i.getCapAttr());
      i.erase();
      f.erase();
    });
  }
};

} // namespace
