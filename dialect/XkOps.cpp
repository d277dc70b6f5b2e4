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
  if (failed(xlc::xlstm::verifyCell(emit, op.getQ().getType(), op.getK().getType(),
                                    op.getV().getType(), op.getIgate().getType(),
                                    op.getFgate().getType(), state, op.getH().getType(), state,
                                    op.getNumHeads())))
    return failure();
  return xlc::xlstm::verifyResets(
      emit, op.getResets() ? op.getResets().getType() : RankedTensorType(), op.getQ().getType());
}

LogicalResult MLSTMChunkwiseOp::verify() { return verifyMLSTM(*this); }

LogicalResult MLSTMDecodeStepOp::verify() {
  if (failed(verifyMLSTM(*this)))
    return failure();
  if (getResets())
    return emitOpError() << "takes no resets: generation starts a document by resetting the "
                            "state, not inside a step";
  int64_t seq = getQ().getType().getDimSize(1);
  if (!ShapedType::isDynamic(seq) && seq != 1)
    return emitOpError() << "a decode step takes one token per sequence, got " << seq;
  return success();
}

LogicalResult MatmulOp::verify() {
  RankedTensorType a = getA().getType(), b = getB().getType(), d = getResult().getType();
  if (a.getRank() < 2 || b.getRank() < 2 || d.getRank() < 2)
    return emitOpError() << "operands and result must be matrices or batches of rows (rank >= 2)";
  // Columns of op(A) and rows of op(B) (the reduced dimension), columns of op(B).
  const int64_t bCols = getTransB() ? b.getShape().front() : b.getShape().back();
  if (getTransB() && b.getRank() != 2)
    return emitOpError() << "a transposed B must be a 2-D matrix, got " << b;
  if (d.getShape().back() != bCols && !ShapedType::isDynamic(bCols))
    return emitOpError() << "result columns " << d.getShape().back() << " differ from op(B)'s "
                         << bCols;
  if (getTransA()) {
    if (d.getRank() != 2 || d.getShape().front() != a.getShape().back())
      return emitOpError() << "with trans_a the result is [columns of A, N] = ["
                           << a.getShape().back() << ", " << bCols << "], got " << d;
  } else {
    const int64_t aCols = a.getShape().back();
    const int64_t bRows = getTransB() ? b.getShape().back() : b.getShape().front();
    if (b.getRank() == 2 && aCols != bRows)
      return emitOpError() << "A has " << aCols << " columns but op(B) has " << bRows << " rows";
    if (d.getRank() != a.getRank())
      return emitOpError() << "the result keeps A's leading dimensions, got " << d << " for " << a;
  }
  if (getAddend() && getAddend().getType() != d)
    return emitOpError() << "addend type " << getAddend().getType()
                         << " differs from the result type " << d;
  return success();
}

LogicalResult MLSTMCellGradOp::verify() {
  auto forward = getH().getDefiningOp<MLSTMChunkwiseOp>();
  if (!forward)
    return emitOpError() << "h must be the result of the xk.mlstm_chunkwise whose saved states "
                            "the backward reads";
  if (forward.getQ() != getQ() || forward.getK() != getK() || forward.getV() != getV() ||
      forward.getIgate() != getIgate() || forward.getFgate() != getFgate())
    return emitOpError() << "q, k, v and the gates must be the forward's own operands";
  if (forward.getResets() != getResets())
    return emitOpError() << "resets must be the forward's";
  if (!forward.getInitialState().getDefiningOp<ZeroStateOp>())
    return emitOpError() << "the forward must start from an xk.zero_state (the backward does "
                            "not produce the initial state's gradient)";
  return success();
}

LogicalResult RMSNormBackwardOp::verify() {
  if (getResidual() && getResidual().getType() != getInput().getType())
    return emitOpError() << "residual type " << getResidual().getType()
                         << " differs from the input type " << getInput().getType();
  if (static_cast<bool>(getWeight()) != static_cast<bool>(getDWeight()))
    return emitOpError() << "has a weight gradient exactly when it has a weight";
  return success();
}
