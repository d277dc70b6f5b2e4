//===- RecomputeFfn.cpp - Recompute the FFN's up projection in the backward ---===//
//
// Implements xlc-recompute-ffn (Passes.td). In @train_step the backward of a SwiGLU FFN reads
// the forward's gate|up projection (swiglu_backward) and the SwiGLU output (the down
// projection's weight gradient): 3·F values per token and block kept alive from the forward to
// the backward (F = 10944 in xLSTM 7B: 8 GiB of the 7B's activations at 1 × 4096). This pass
// clones the chain that makes them — the gate|up xk.gemm, its xlstm.split and the xk.swiglu —
// right before the first backward op that reads any of them and points every backward read at
// the clones. The forward's originals then die at the down projection, and the arena planner
// (liveness over the steps) reuses their bytes; the price is one more up-projection GEMM and
// SwiGLU per block in the backward (about 1/7 of the 7B's training FLOPs).
//
// The forward/backward boundary is the op that produces @train_step's first result, the loss:
// autodiff emits the reverse ops after it. Runs on kernel-form IR after CSE (which would merge
// the clones back into the originals).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"

namespace xlc {
#define GEN_PASS_DEF_RECOMPUTEFFN
#include "passes/Passes.h.inc"
} // namespace xlc

using namespace mlir;
using namespace xlc;

namespace {

/// The op's name location with |suffix| appended (the writer names buffers after it).
Location suffixed(Location loc, StringRef suffix) {
  if (auto named = dyn_cast<NameLoc>(loc))
    return NameLoc::get(StringAttr::get(loc.getContext(), named.getName().str() + suffix.str()),
                        named.getChildLoc());
  return loc;
}

struct RecomputeFfnPass : public xlc::impl::RecomputeFfnBase<RecomputeFfnPass> {
  void runOnOperation() override {
    auto train = getOperation().lookupSymbol<func::FuncOp>("train_step");
    if (!train)
      return; // nothing to recompute in an inference module
    Block &body = train.getBody().front();
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    Operation *loss = ret.getNumOperands() ? ret.getOperand(0).getDefiningOp() : nullptr;
    if (!loss || loss->getBlock() != &body) {
      train.emitError() << "xlc-recompute-ffn: @train_step's first result (the loss) must be "
                           "computed in its body";
      return signalPassFailure();
    }
    auto backward = [&](Operation *user) {
      return user->getBlock() == &body && loss->isBeforeInBlock(user);
    };

    SmallVector<xk::SwiGLUOp> candidates;
    train.walk([&](xk::SwiGLUOp swiglu) {
      if (swiglu->getBlock() == &body && swiglu->isBeforeInBlock(loss))
        candidates.push_back(swiglu);
    });
    for (xk::SwiGLUOp swiglu : candidates) {
      // The chain gemm -> split -> swiglu, with both halves of one split.
      auto split = swiglu.getGate().getDefiningOp<xlstm::SplitOp>();
      if (!split || swiglu.getUp().getDefiningOp() != split.getOperation() ||
          split->getNumResults() != 2)
        continue;
      auto gemm = split.getInput().getDefiningOp<xk::GemmOp>();
      if (!gemm || !gemm->hasOneUse())
        continue;
      // The values the backward reads, and the first backward op that reads one.
      SmallVector<OpOperand *> reads;
      for (Value v : std::initializer_list<Value>{split->getResult(0), split->getResult(1),
                                                  swiglu.getResult()})
        for (OpOperand &use : v.getUses())
          if (backward(use.getOwner()))
            reads.push_back(&use);
      if (reads.empty())
        continue;
      Operation *first = reads.front()->getOwner();
      for (OpOperand *use : reads)
        if (use->getOwner()->isBeforeInBlock(first))
          first = use->getOwner();
      // Its operands (the normed input, the weight) are forward values that dominate `first`.
      OpBuilder builder(first);
      IRMapping map;
      for (Operation *op : {gemm.getOperation(), split.getOperation(), swiglu.getOperation()}) {
        Operation *copy = builder.clone(*op, map);
        copy->setLoc(suffixed(op->getLoc(), ".recomputed"));
      }
      for (OpOperand *use : reads)
        use->set(map.lookup(use->get()));
    }
  }
};

} // namespace
