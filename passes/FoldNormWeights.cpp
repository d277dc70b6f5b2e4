//===- FoldNormWeights.cpp - RMSNorm weights into projections -------------===//
//
// Implements xlc-fold-norm-weights: (x̂ ⊙ w) Wᵀ = x̂ (W diag(w))ᵀ. The folded weights are
// assembled parameters with `scale_columns`, so the multiplication happens once, in the loader.
//
//===----------------------------------------------------------------------===//

#include "passes/ParameterUtils.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

#define DEBUG_TYPE "xlc-fold-norm-weights"

namespace xlc {
#define GEN_PASS_DEF_FOLDNORMWEIGHTS
#include "passes/Passes.h.inc"
} // namespace xlc

using namespace mlir;
using namespace xlc;
using namespace xlc::xlstm;

namespace {

/// The weight operand of a projection that reads |normalised| as its input, or null.
OpOperand *projectionWeight(OpOperand &use) {
  Operation *user = use.getOwner();
  if (auto linear = dyn_cast<LinearOp>(user))
    return use.getOperandNumber() == 0 ? &linear.getWeightMutable() : nullptr;
  if (auto head = dyn_cast<LMHeadOp>(user))
    return use.getOperandNumber() == 0 ? &head.getWeightMutable() : nullptr;
  return nullptr;
}

/// True when |weight| reads a parameter the pass can scale: a checkpoint parameter, or an
/// assembled one that is not scaled yet.
bool scalable(Value weight) {
  if (getCheckpointParameter(weight))
    return true;
  AssembledParameterOp assembled = getAssembledParameter(weight);
  return assembled && !assembled.getScaleColumns();
}

/// Declares W·diag(norm) for the parameter |weight| reads and returns a read of it placed
/// before |user|.
Value scaledWeight(ModuleOp module, Value weight, ParameterOp norm, Operation *user) {
  OpBuilder b(module.getContext());
  auto read = weight.getDefiningOp<ParamOp>();
  RankedTensorType type = llvm::cast<RankedTensorType>(weight.getType());
  ArrayAttr sources;
  IntegerAttr axis = b.getI64IntegerAttr(0);
  if (ParameterOp p = getCheckpointParameter(weight)) {
    sources = b.getArrayAttr({FlatSymbolRefAttr::get(p.getSymNameAttr())});
  } else {
    AssembledParameterOp a = getAssembledParameter(weight);
    sources = a.getSources();
    axis = a.getAxisAttr();
  }
  auto decl = b.create<AssembledParameterOp>(
      read.getLoc(), b.getStringAttr(read.getName() + ".scaled"), TypeAttr::get(type), sources,
      axis, FlatSymbolRefAttr::get(norm.getSymNameAttr()));
  module.getBody()->push_back(decl);
  insertParameterDeclaration(module, decl);
  b.setInsertionPoint(user);
  return b.create<ParamOp>(read.getLoc(), type, FlatSymbolRefAttr::get(decl.getSymNameAttr()));
}

struct FoldNormWeightsPass : public xlc::impl::FoldNormWeightsBase<FoldNormWeightsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<RMSNormOp> norms;
    module.walk([&](RMSNormOp op) { norms.push_back(op); });
    for (RMSNormOp norm : norms) {
      ParameterOp weight = getCheckpointParameter(norm.getWeight());
      if (!weight || norm.getResult().use_empty())
        continue;
      bool foldable = llvm::all_of(norm.getResult().getUses(), [](OpOperand &use) {
        OpOperand *w = projectionWeight(use);
        return w && scalable(w->get());
      });
      if (!foldable)
        continue;

      SmallVector<OpOperand *> weights;
      for (OpOperand &use : norm.getResult().getUses())
        weights.push_back(projectionWeight(use));
      for (OpOperand *w : weights) {
        Value old = w->get();
        AssembledParameterOp replaced = getAssembledParameter(old);
        w->set(scaledWeight(module, old, weight, w->getOwner()));
        if (old.use_empty())
          old.getDefiningOp()->erase();
        // An assembled weight nobody reads any more (its scaled copy replaced it) goes away;
        // checkpoint parameters stay, they are the scaled copy's sources.
        if (replaced && SymbolTable::symbolKnownUseEmpty(replaced, module))
          replaced.erase();
      }

      OpBuilder b(norm);
      auto bare = b.create<RMSNormOp>(norm.getLoc(), norm.getResult().getType(), norm.getInput(),
                                      Value(), norm.getEpsAttr());
      Value oldWeight = norm.getWeight();
      norm.getResult().replaceAllUsesWith(bare.getResult());
      norm.erase();
      if (oldWeight.use_empty())
        oldWeight.getDefiningOp()->erase();
    }
  }
};

} // namespace
