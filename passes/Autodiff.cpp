//===- Autodiff.cpp - @train_step from @forward by reverse mode -----------===//
//
// Implements xlc-autodiff (Passes.td). The forward part of @train_step is a clone of @forward
// up to the loss; the reverse part is appended after it, op by op in reverse program order,
// through DifferentiableOpInterface (dialect/XlstmGradients.cpp). Invariant of the sweep: when an
// op is visited, every user of its results has been visited already (reverse program order of a
// single block), so the gradients of its results are complete.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/MapVector.h"

#define DEBUG_TYPE "xlc-autodiff"

namespace xlc {
#define GEN_PASS_DEF_AUTODIFF
#include "passes/Passes.h.inc"
} // namespace xlc

using namespace mlir;
using namespace xlc;
using namespace xlc::xlstm;

namespace {

struct AutodiffPass : public xlc::impl::AutodiffBase<AutodiffPass> {
  void runOnOperation() override {
    if (failed(build(getOperation())))
      signalPassFailure();
  }

  LogicalResult build(ModuleOp module) {
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward)
      return module.emitError() << "xlc-autodiff: the module has no @forward function";
    if (module.lookupSymbol("train_step"))
      return module.emitError() << "xlc-autodiff: the module already has a @train_step";
    if (!forward.getBody().hasOneBlock())
      return forward.emitError() << "xlc-autodiff: @forward must be a single block";
    MLIRContext *ctx = module.getContext();
    Location loc = forward.getLoc();

    auto train = llvm::cast<func::FuncOp>(forward->clone());
    train.setSymName("train_step");
    module.getBody()->getOperations().insert(std::next(Block::iterator(forward)), train);
    Block &body = train.front();
    if (body.getNumArguments() == 0 ||
        !llvm::isa<IntegerType>(
            llvm::cast<ShapedType>(body.getArgument(0).getType()).getElementType()))
      return forward.emitError() << "xlc-autodiff: @forward's first argument must be the token ids";

    // The step starts every sequence from the zero state.
    train.walk([](MLSTMCellOp cell) {
      if (cell.getInitialState() && llvm::isa<BlockArgument>(cell.getInitialState()))
        cell.getInitialStateMutable().clear();
    });

    // The loss replaces the logits.
    auto ret = llvm::cast<func::ReturnOp>(body.getTerminator());
    auto head = ret.getNumOperands() ? ret.getOperand(0).getDefiningOp<LMHeadOp>() : LMHeadOp();
    if (!head)
      return forward.emitError() << "xlc-autodiff: @forward's first result must be the logits of "
                                    "an xlstm.lm_head";
    auto scalar = RankedTensorType::get({}, Float32Type::get(ctx));
    BlockArgument targets = body.addArgument(body.getArgument(0).getType(), loc);
    BlockArgument lossScale = body.addArgument(scalar, loc);
    // Document starts inside the sequences [B, S] (xlstm-7b.md §6.3): every cell's forget gate
    // is overridden there, in the forward and (through the cell's gradient) the backward.
    auto tokensType = llvm::cast<RankedTensorType>(body.getArgument(0).getType());
    BlockArgument resets = body.addArgument(
        RankedTensorType::get(tokensType.getShape(), IntegerType::get(ctx, 8)), loc);
    train.walk([&](MLSTMCellOp cell) { cell.getResetsMutable().assign(resets); });
    OpBuilder b(head);
    b.setInsertionPointAfter(head);
    auto loss = b.create<LMHeadLossOp>(head.getLoc(), scalar, head.getInput(), head.getWeight(),
                                       targets, head.getSoftCapAttr());
    ret.erase();

    // Reverse sweep from the loss.
    SmallVector<Operation *> primal;
    for (Operation &op : body) {
      primal.push_back(&op);
      if (&op == loss.getOperation())
        break;
    }
    DenseMap<Value, Value> grads;
    grads[loss.getLoss()] = lossScale;
    b.setInsertionPointToEnd(&body);
    auto accumulate = [&](Value primalValue, Value grad) {
      Value &slot = grads[primalValue];
      slot = slot ? b.create<AddOp>(grad.getLoc(), slot.getType(), slot, grad).getResult() : grad;
    };
    for (Operation *op : llvm::reverse(primal)) {
      if (llvm::isa<ParamOp>(op))
        continue;
      SmallVector<Value> resultGrads;
      bool reaches = false;
      for (Value r : op->getResults()) {
        resultGrads.push_back(grads.lookup(r));
        reaches |= static_cast<bool>(resultGrads.back());
      }
      if (!reaches)
        continue;
      auto diff = llvm::dyn_cast<DifferentiableOpInterface>(op);
      if (!diff)
        return op->emitOpError() << "has no gradient (it does not implement "
                                    "DifferentiableOpInterface), so xlc-autodiff cannot train "
                                    "through it";
      SmallVector<Value> operandGrads;
      if (failed(diff.buildGradient(b, resultGrads, operandGrads)))
        return failure();
      if (operandGrads.size() != op->getNumOperands())
        return op->emitOpError() << "buildGradient gave " << operandGrads.size()
                                 << " operand gradients for " << op->getNumOperands()
                                 << " operands";
      for (auto [operand, g] : llvm::zip(op->getOperands(), operandGrads))
        if (g)
          accumulate(operand, g);
    }

    // One gradient per parameter symbol (a symbol read twice, e.g. a tied embedding, sums).
    llvm::MapVector<StringAttr, Value> paramGrads;
    for (Operation *op : primal)
      if (auto p = llvm::dyn_cast<ParamOp>(op))
        if (Value g = grads.lookup(p.getResult())) {
          Value &slot = paramGrads[p.getNameAttr().getAttr()];
          slot = slot ? b.create<AddOp>(p.getLoc(), slot.getType(), slot, g).getResult() : g;
        }
    SmallVector<Value> results{loss.getLoss()};
    SmallVector<Attribute> resultAttrs{
        b.getDictionaryAttr(b.getNamedAttr("xlstm.name", b.getStringAttr("loss")))};
    for (Operation &op : module.getBody()->getOperations()) {
      auto sym = llvm::dyn_cast<SymbolOpInterface>(op);
      if (!sym || !llvm::isa<ParameterOp, AssembledParameterOp>(op))
        continue;
      auto it = paramGrads.find(sym.getNameAttr());
      if (it == paramGrads.end())
        continue;
      results.push_back(it->second);
      resultAttrs.push_back(b.getDictionaryAttr(b.getNamedAttr(
          "xlstm.gradient_of", FlatSymbolRefAttr::get(sym.getNameAttr()))));
    }
    b.create<func::ReturnOp>(loc, results);

    // Drop what the step does not need: primal ops nothing reads any more (the logits, final
    // states), then the state arguments.
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(body.getOperations())))
      if (isOpTriviallyDead(&op))
        op.erase();
    llvm::BitVector unusedStates(body.getNumArguments());
    for (BlockArgument arg : body.getArguments())
      if (arg.getArgNumber() != 0 && arg != targets && arg != lossScale && arg != resets) {
        if (!arg.use_empty())
          return train.emitError() << "xlc-autodiff: argument " << arg.getArgNumber()
                                   << " of @forward is still used after the states were dropped";
        unusedStates.set(arg.getArgNumber());
      }
    train.eraseArguments(unusedStates);
    train.setFunctionType(FunctionType::get(ctx, body.getArgumentTypes(),
                                            ValueRange(results).getTypes()));
    train.setAllResultAttrs(resultAttrs);
    const char *names[] = {"tokens", "targets", "loss_scale", "resets"};
    for (unsigned i = 0; i < 4; ++i)
      train.setArgAttr(i, "xlstm.name", b.getStringAttr(names[i]));
    return success();
  }
};

} // namespace
