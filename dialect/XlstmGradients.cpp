//===- XlstmGradients.cpp - DifferentiableOpInterface of the xlstm ops ----===//
//
// One buildGradient per differentiable op: reverse mode for that op alone, in terms of the
// gradient ops of XlstmOps.td ("Training"). The math each gradient op stands for is the float64
// reference's (runtime/reference/BlockOps.h, MlstmCellBackward.h), checked there against finite
// differences; xlc-autodiff (passes/Autodiff.cpp) chains these over a function.
//
//===----------------------------------------------------------------------===//

#include "dialect/XlstmDialect.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace xlc::xlstm;

#include "dialect/XlstmInterfaces.cpp.inc"

namespace {

/// The gradient of a single-result op's only result (null if it does not reach the loss).
Value onlyGrad(ArrayRef<Value> resultGrads) { return resultGrads.empty() ? Value() : resultGrads[0]; }

} // namespace

LogicalResult EmbeddingOp::buildGradient(OpBuilder &b, ArrayRef<Value> resultGrads,
                                         SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<EmbeddingGradOp>(getLoc(), getTable().getType(), getTokens(),
                                        onlyGrad(resultGrads));
  operandGrads.append({grad.getDTable(), Value()}); // token ids have no gradient
  return success();
}

LogicalResult RMSNormOp::buildGradient(OpBuilder &b, ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  SmallVector<Type> types{getInput().getType()};
  SmallVector<Value> operands{getInput()};
  if (getWeight()) {
    types.push_back(getWeight().getType());
    operands.push_back(getWeight());
  }
  operands.push_back(onlyGrad(resultGrads));
  auto grad = b.create<RMSNormGradOp>(getLoc(), types, operands,
                                      ArrayRef<NamedAttribute>{b.getNamedAttr("eps", getEpsAttr())});
  operandGrads.push_back(grad.getDInput());
  if (getWeight())
    operandGrads.push_back(grad.getDWeight());
  return success();
}

LogicalResult LinearOp::buildGradient(OpBuilder &b, ArrayRef<Value> resultGrads,
                                      SmallVectorImpl<Value> &operandGrads) {
  SmallVector<Type> types{getInput().getType(), getWeight().getType()};
  SmallVector<NamedAttribute> attrs;
  if (getBias()) {
    types.push_back(getBias().getType());
    attrs.push_back(b.getNamedAttr("has_bias", b.getUnitAttr()));
  }
  auto grad = b.create<LinearGradOp>(getLoc(), types,
                                     ValueRange{getInput(), getWeight(), onlyGrad(resultGrads)},
                                     attrs);
  operandGrads.append({grad.getDInput(), grad.getDWeight()});
  if (getBias())
    operandGrads.push_back(grad.getDBias());
  return success();
}

LogicalResult SplitOp::buildGradient(OpBuilder &b, ArrayRef<Value> resultGrads,
                                     SmallVectorImpl<Value> &operandGrads) {
  for (auto [i, g] : llvm::enumerate(resultGrads))
    if (!g)
      return emitOpError() << "slice " << i
                           << " does not reach the loss: a zero gradient for it is not "
                              "supported (every slice of a fused projection must be used)";
  operandGrads.push_back(
      b.create<ConcatOp>(getLoc(), getInput().getType(), resultGrads).getResult());
  return success();
}

LogicalResult SoftCapOp::buildGradient(OpBuilder &b, ArrayRef<Value> resultGrads,
                                       SmallVectorImpl<Value> &operandGrads) {
  operandGrads.push_back(
      b.create<SoftCapGradOp>(getLoc(), getInput().getType(), getInput(), onlyGrad(resultGrads),
                                 getCapAttr()));
  return success();
}

LogicalResult MLSTMCellOp::buildGradient(OpBuilder &b, ArrayRef<Value> resultGrads,
                                         SmallVectorImpl<Value> &operandGrads) {
  if (resultGrads[1])
    return emitOpError() << "its final state reaches the loss; training differentiates the "
                            "outputs h only (the state leaving a step is not trained through)";
  if (getInitialState() && !llvm::isa<BlockArgument>(getInitialState()))
    return emitOpError() << "its initial state is computed inside the function; training starts "
                            "every sequence from the zero state or a state argument";
  auto grad = b.create<MLSTMCellGradOp>(
      getLoc(), getQ().getType(), getK().getType(), getV().getType(), getIgate().getType(),
      getFgate().getType(), getQ(), getK(), getV(), getIgate(), getFgate(), resultGrads[0],
      getResets(), getNumHeadsAttr(), getEpsAttr(), getGateSoftCapAttr(), getInputGateAttr(),
      getNormalizerAttr());
  operandGrads.append({grad.getDQ(), grad.getDK(), grad.getDV(), grad.getDIgate(),
                       grad.getDFgate()});
  if (getInitialState())
    operandGrads.push_back(Value()); // the entering state is a constant of the step
  if (getResets())
    operandGrads.push_back(Value()); // document boundaries are data
  return success();
}

LogicalResult MultiHeadLayerNormOp::buildGradient(OpBuilder &b, ArrayRef<Value> resultGrads,
                                                  SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<MultiHeadLayerNormGradOp>(getLoc(), getInput().getType(),
                                                 getWeight().getType(), getInput(), getWeight(),
                                                 onlyGrad(resultGrads), getNumHeadsAttr(),
                                                 getEpsAttr());
  operandGrads.append({grad.getDInput(), grad.getDWeight()});
  return success();
}

LogicalResult OutputGateOp::buildGradient(OpBuilder &b, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<OutputGateGradOp>(getLoc(), getPreact().getType(), getInput().getType(),
                                         getPreact(), getInput(), onlyGrad(resultGrads));
  operandGrads.append({grad.getDPreact(), grad.getDInput()});
  return success();
}

LogicalResult SwiGLUOp::buildGradient(OpBuilder &b, ArrayRef<Value> resultGrads,
                                      SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<SwiGLUGradOp>(getLoc(), getGate().getType(), getUp().getType(), getGate(),
                                     getUp(), onlyGrad(resultGrads));
  operandGrads.append({grad.getDGate(), grad.getDUp()});
  return success();
}

LogicalResult AddOp::buildGradient(OpBuilder &, ArrayRef<Value> resultGrads,
                                   SmallVectorImpl<Value> &operandGrads) {
  operandGrads.append({onlyGrad(resultGrads), onlyGrad(resultGrads)});
  return success();
}

LogicalResult LMHeadOp::buildGradient(OpBuilder &b, ArrayRef<Value> resultGrads,
                                      SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<LMHeadGradOp>(getLoc(), getInput().getType(), getWeight().getType(),
                                     getInput(), getWeight(), onlyGrad(resultGrads),
                                     getSoftCapAttr());
  operandGrads.append({grad.getDInput(), grad.getDWeight()});
  return success();
}

LogicalResult LMHeadLossOp::buildGradient(OpBuilder &b, ArrayRef<Value> resultGrads,
                                          SmallVectorImpl<Value> &operandGrads) {
  auto grad = b.create<LMHeadLossGradOp>(getLoc(), getInput().getType(), getWeight().getType(),
                                         getInput(), getWeight(), getTargets(),
                                         onlyGrad(resultGrads), getSoftCapAttr());
  operandGrads.append({grad.getDInput(), grad.getDWeight(), Value()}); // targets: none
  return success();
}

LogicalResult ConcatOp::verify() {
  if (getInputs().empty())
    return emitOpError() << "needs at least one input";
  auto result = llvm::cast<RankedTensorType>(getResult().getType());
  int64_t total = 0;
  for (Value v : getInputs()) {
    auto t = llvm::cast<RankedTensorType>(v.getType());
    if (t.getRank() != result.getRank() || t.getElementType() != result.getElementType())
      return emitOpError() << "input " << t << " does not match the result " << result
                           << " in rank and element type";
    for (int64_t d = 0; d + 1 < t.getRank(); ++d)
      if (t.getDimSize(d) != result.getDimSize(d))
        return emitOpError() << "input " << t << " differs from the result " << result
                             << " in dimension " << d;
    if (t.isDynamicDim(t.getRank() - 1))
      return emitOpError() << "input " << t << " has a dynamic last dimension";
    total += t.getDimSize(t.getRank() - 1);
  }
  if (result.getDimSize(result.getRank() - 1) != total)
    return emitOpError() << "the inputs' last dimensions add up to " << total << ", the result "
                         << result << " has " << result.getDimSize(result.getRank() - 1);
  return success();
}
