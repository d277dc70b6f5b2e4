//===- XkOps.cpp - xk operation verifiers ---------------------------------===//
//
// Kernel ops check their operands with the same shape rules as the model-level ops they come
// from (XlstmShapeRules), plus what the kernel itself needs.
//
//===----------------------------------------------------------------------===//

#include "dialect/XkDialect.h"
#include "dialect/XlstmShapeRules.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace xlc::xk;

#define GET_OP_CLASSES
#include "dialect/XkOps.cpp.inc"

LogicalResult GemmOp::verify() {
  auto emit = [&] { return emitOpError(); };
  RankedTensorType bias = getBias() ? getBias().getType() : RankedTensorType();
  if (failed(xlc::xlstm::verifyLinear(emit, "weight", getA().getType(), getWeight().getType(),
                                      bias, getResult().getType())))
    return failure();
  switch (getEpilogue()) {
  case Epilogue::None:
    if (getBias() || getResidual())
      return emitOpError() << "epilogue none takes no bias or residual operand";
    break;
  case Epilogue::Bias:
    if (!getBias() || getResidual())
      return emitOpError() << "epilogue bias needs a bias operand and no residual";
    break;
  case Epilogue::ResidualAdd:
    if (!getResidual() || getBias())
      return emitOpError() << "epilogue residual_add needs a residual operand and no bias";
    if (getResidual().getType() != getResult().getType())
      return emitOpError() << "residual type " << getResidual().getType()
                           << " differs from the result type " << getResult().getType();
    break;
  }
  return success();
}

template <typename Op>
static LogicalResult verifyMLSTM(Op op) {
  auto emit = [&] { return op.emitOpError(); };
  auto state = llvm::cast<xlc::xlstm::StateType>(op.getInitialState().getType());
  return xlc::xlstm::verifyCell(emit, op.getQ().getType(), op.getK().getType(),
                                op.getV().getType(), op.getIgate().getType(),
                                op.getFgate().getType(), state, op.getH().getType(), state,
                                op.getNumHeads());
}

LogicalResult MLSTMChunkwiseOp::verify() { return verifyMLSTM(*this); }

LogicalResult MLSTMDecodeStepOp::verify() {
  if (failed(verifyMLSTM(*this)))
    return failure();
  int64_t seq = getQ().getType().getDimSize(1);
  if (!ShapedType::isDynamic(seq) && seq != 1)
    return emitOpError() << "a decode step takes one token per sequence, got " << seq;
  return success();
}
