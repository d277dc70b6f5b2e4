//===- XlstmOps.cpp - xlstm operation verifiers ---------------------------===//
//
// Verifiers are thin: they unpack operand types and call the shared rules of
// XlstmShapeRules.cpp, so a composite block checks exactly what its parts would.
//
//===----------------------------------------------------------------------===//

#include "dialect/XlstmDialect.h"
#include "dialect/XlstmShapeRules.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace xlc::xlstm;

#define GET_OP_CLASSES
#include "dialect/XlstmOps.cpp.inc"

namespace {
RankedTensorType rankedOrNull(Value v) {
  return v ? llvm::cast<RankedTensorType>(v.getType()) : RankedTensorType();
}
} // namespace

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

LogicalResult ParameterOp::verify() {
  auto type = llvm::dyn_cast<RankedTensorType>(getType());
  if (!type || !type.hasStaticShape())
    return emitOpError() << "parameter @" << getSymName()
                         << " must have a static tensor type, got " << getType();
  if (!llvm::isa<FloatType>(type.getElementType()))
    return emitOpError() << "parameter @" << getSymName()
                         << " must have a floating-point element type, got "
                         << type.getElementType();
  if (getCheckpoint().empty())
    return emitOpError() << "parameter @" << getSymName() << " has an empty checkpoint name";
  return success();
}

LogicalResult AssembledParameterOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto type = llvm::dyn_cast<RankedTensorType>(getType());
  if (!type || !type.hasStaticShape())
    return emitOpError() << "parameter @" << getSymName()
                         << " must have a static tensor type, got " << getType();
  if (getSources().empty())
    return emitOpError() << "parameter @" << getSymName() << " has no sources";
  int64_t axis = getAxis();
  if (axis < 0 || axis >= type.getRank())
    return emitOpError() << "concat axis " << axis << " is out of range for " << type;
  int64_t total = 0;
  for (Attribute attr : getSources()) {
    auto ref = llvm::cast<FlatSymbolRefAttr>(attr);
    auto source = symbolTable.lookupNearestSymbolFrom<ParameterOp>(*this, ref);
    if (!source)
      return emitOpError() << "source " << ref << " does not name an xlstm.parameter";
    RankedTensorType st = source.getTensorType();
    if (st.getRank() != type.getRank() || st.getElementType() != type.getElementType())
      return emitOpError() << "source " << ref << " of type " << st
                           << " cannot be concatenated into " << type;
    for (int64_t d = 0; d < type.getRank(); ++d)
      if (d != axis && st.getDimSize(d) != type.getDimSize(d))
        return emitOpError() << "source " << ref << " of type " << st << " differs from "
                             << type << " in dimension " << d;
    total += st.getDimSize(axis);
  }
  if (total != type.getDimSize(axis))
    return emitOpError() << "sources add up to " << total << " along axis " << axis
                         << " but the parameter has " << type.getDimSize(axis);
  if (auto scale = getScaleColumnsAttr()) {
    auto vec = symbolTable.lookupNearestSymbolFrom<ParameterOp>(*this, scale);
    if (!vec)
      return emitOpError() << "scale_columns " << scale << " does not name an xlstm.parameter";
    RankedTensorType vt = vec.getTensorType();
    if (type.getRank() != 2 || vt.getRank() != 1 || vt.getDimSize(0) != type.getDimSize(1))
      return emitOpError() << "scale_columns " << scale << " of type " << vt
                           << " must be a vector as long as the rows of " << type;
  }
  return success();
}

LogicalResult ParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  Operation *symbol = symbolTable.lookupNearestSymbolFrom(*this, getNameAttr());
  Type declared;
  if (auto param = llvm::dyn_cast_or_null<ParameterOp>(symbol))
    declared = param.getType();
  else if (auto assembled = llvm::dyn_cast_or_null<AssembledParameterOp>(symbol))
    declared = assembled.getType();
  else
    return emitOpError() << "'" << getName() << "' does not name an xlstm.parameter";
  if (declared != getResult().getType())
    return emitOpError() << "result type " << getResult().getType() << " differs from the type "
                         << declared << " of parameter @" << getName();
  return success();
}

//===----------------------------------------------------------------------===//
// Primitive layers
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  auto table = getTable().getType();
  auto tokens = getTokens().getType();
  auto result = getResult().getType();
  if (table.getRank() != 2)
    return emitOpError() << "table must be [vocab, features], got " << table;
  if (result.getRank() != tokens.getRank() + 1)
    return emitOpError() << "result must have the token shape plus one feature dimension, got "
                         << result << " for tokens " << tokens;
  for (int64_t d = 0; d < tokens.getRank(); ++d)
    if (!dimsCompatible(result.getDimSize(d), tokens.getDimSize(d)))
      return emitOpError() << "result dimension " << d << " differs from the token shape "
                           << tokens;
  if (!dimsCompatible(result.getShape().back(), table.getDimSize(1)))
    return emitOpError() << "result has " << result.getShape().back()
                         << " features but the table rows have " << table.getDimSize(1);
  if (result.getElementType() != table.getElementType())
    return emitOpError() << "result element type " << result.getElementType()
                         << " differs from the table's " << table.getElementType();
  return success();
}

LogicalResult RMSNormOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(verifyEpsilon(emit, "eps", getEps().convertToDouble())))
    return failure();
  if (!getWeight())
    return success();
  return verifyNormWeight(emit, "weight", getInput().getType(), getWeight().getType());
}

LogicalResult LinearOp::verify() {
  return verifyLinear([&] { return emitOpError(); }, "weight", getInput().getType(),
                      getWeight().getType(), rankedOrNull(getBias()), getResult().getType());
}

LogicalResult SplitOp::verify() {
  RankedTensorType in = getInput().getType();
  if (in.getRank() < 1 || ShapedType::isDynamic(in.getShape().back()))
    return emitOpError() << "input must have a static last dimension, got " << in;
  if (getResults().empty())
    return emitOpError() << "must produce at least one slice";
  int64_t total = 0;
  for (auto [i, result] : llvm::enumerate(getResults())) {
    auto rt = llvm::cast<RankedTensorType>(result.getType());
    if (rt.getRank() != in.getRank() || rt.getElementType() != in.getElementType())
      return emitOpError() << "slice " << i << " of type " << rt << " is not a slice of " << in;
    for (int64_t d = 0; d + 1 < in.getRank(); ++d)
      if (rt.getDimSize(d) != in.getDimSize(d))
        return emitOpError() << "slice " << i << " of type " << rt
                             << " changes a leading dimension of " << in;
    if (ShapedType::isDynamic(rt.getShape().back()))
      return emitOpError() << "slice " << i << " must have a static last dimension";
    total += rt.getShape().back();
  }
  if (total != in.getShape().back())
    return emitOpError() << "slices add up to " << total << " features but the input has "
                         << in.getShape().back();
  return success();
}

LogicalResult LastPositionOp::verify() {
  RankedTensorType in = getInput().getType(), out = getResult().getType();
  if (in.getRank() != 3)
    return emitOpError() << "input must be [batch, seq, features], got " << in;
  if (out.getRank() != 3 || out.getDimSize(1) != 1)
    return emitOpError() << "result must be [batch, 1, features], got " << out;
  if (out.getElementType() != in.getElementType())
    return emitOpError() << "result element type " << out.getElementType()
                         << " differs from the input's " << in.getElementType();
  if (!dimsCompatible(in.getDimSize(0), out.getDimSize(0)))
    return emitOpError() << "result batch " << out.getDimSize(0) << " differs from the input's "
                         << in.getDimSize(0);
  if (ShapedType::isDynamic(in.getDimSize(2)) || out.getDimSize(2) != in.getDimSize(2))
    return emitOpError() << "result features " << out.getDimSize(2)
                         << " must equal the input's static " << in.getDimSize(2);
  return success();
}

LogicalResult SoftCapOp::verify() {
  return verifySoftCapValue([&] { return emitOpError(); }, "cap", getCap().convertToDouble());
}

LogicalResult MLSTMCellOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(verifyEpsilon(emit, "eps", getEps().convertToDouble())))
    return failure();
  if (auto cap = getGateSoftCap())
    if (failed(verifySoftCapValue(emit, "gate_soft_cap", cap->convertToDouble())))
      return failure();
  StateType init = getInitialState() ? llvm::cast<StateType>(getInitialState().getType())
                                     : StateType();
  if (failed(verifyCell(emit, getQ().getType(), getK().getType(), getV().getType(),
                        getIgate().getType(), getFgate().getType(), init, getH().getType(),
                        llvm::cast<StateType>(getFinalState().getType()), getNumHeads())))
    return failure();
  return verifyResets(emit, getResets() ? getResets().getType() : RankedTensorType(),
                      getQ().getType());
}

LogicalResult MLSTMCellGradOp::verify() {
  return verifyResets([&] { return emitOpError(); },
                      getResets() ? getResets().getType() : RankedTensorType(), getQ().getType());
}

LogicalResult MultiHeadLayerNormOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(verifyEpsilon(emit, "eps", getEps().convertToDouble())))
    return failure();
  return verifyMultiHeadNorm(emit, getInput().getType(), getWeight().getType(), getNumHeads());
}

LogicalResult SwiGLUFFNOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (getResult().getType() != getInput().getType())
    return emitOpError() << "result type " << getResult().getType()
                         << " differs from the input type " << getInput().getType();
  return verifySwiGLUFFN(emit, getInput().getType(), getWGate().getType(), getWUp().getType(),
                         getWDown().getType());
}

LogicalResult LMHeadOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (auto cap = getSoftCap())
    if (failed(verifySoftCapValue(emit, "soft_cap", cap->convertToDouble())))
      return failure();
  return verifyLinear(emit, "lm_head weight", getInput().getType(), getWeight().getType(), {},
                      getResult().getType());
}

//===----------------------------------------------------------------------===//
// Composite blocks
//===----------------------------------------------------------------------===//

LogicalResult MLSTMBlockOp::verify() {
  auto emit = [&] { return emitOpError(); };
  for (auto [name, eps] : {std::pair<StringRef, double>{"norm_eps", getNormEps().convertToDouble()},
                           {"mh_norm_eps", getMhNormEps().convertToDouble()},
                           {"cell_eps", getCellEps().convertToDouble()}})
    if (failed(verifyEpsilon(emit, name, eps)))
      return failure();
  if (auto cap = getGateSoftCap())
    if (failed(verifySoftCapValue(emit, "gate_soft_cap", cap->convertToDouble())))
      return failure();

  RankedTensorType x = getInput().getType();
  if (x.getRank() != 3)
    return emitOpError() << "input must be [batch, seq, features], got " << x;
  if (failed(verifyNormWeight(emit, "norm weight", x, getNorm().getType())))
    return failure();

  // Projections read the normalised input, whose type is the input's.
  if (failed(verifyLinear(emit, "wq", x, getWq().getType(), {}, {})) ||
      failed(verifyLinear(emit, "wk", x, getWk().getType(), {}, {})) ||
      failed(verifyLinear(emit, "wv", x, getWv().getType(), {}, {})) ||
      failed(verifyLinear(emit, "wo", x, getWo().getType(), {}, {})) ||
      failed(verifyLinear(emit, "wi", x, getWi().getType(), getBi().getType(), {})) ||
      failed(verifyLinear(emit, "wf", x, getWf().getType(), getBf().getType(), {})))
    return failure();
  int64_t numHeads = getNumHeads();
  if (getWi().getType().getDimSize(0) != numHeads)
    return emitOpError() << "wi must produce one input-gate pre-activation per head ("
                         << numHeads << "), got " << getWi().getType().getDimSize(0);
  int64_t qkDim = getWq().getType().getDimSize(0), vDim = getWv().getType().getDimSize(0);
  auto featureType = [&](int64_t features) {
    return RankedTensorType::get({x.getDimSize(0), x.getDimSize(1), features},
                                 x.getElementType());
  };
  StateType init = getInitialState() ? llvm::cast<StateType>(getInitialState().getType())
                                     : StateType();
  if (failed(verifyCell(emit, featureType(qkDim), featureType(qkDim), featureType(vDim),
                        featureType(numHeads), featureType(numHeads), init, featureType(vDim),
                        llvm::cast<StateType>(getFinalState().getType()), numHeads)))
    return failure();
  if (failed(verifyMultiHeadNorm(emit, featureType(vDim), getMhNorm().getType(), numHeads)))
    return failure();
  return verifyLinear(emit, "wout", featureType(vDim), getWout().getType(), {},
                      getResult().getType());
}

LogicalResult FFNBlockOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(verifyEpsilon(emit, "norm_eps", getNormEps().convertToDouble())))
    return failure();
  RankedTensorType x = getInput().getType();
  if (failed(verifyNormWeight(emit, "norm weight", x, getNorm().getType())))
    return failure();
  return verifySwiGLUFFN(emit, x, getWGate().getType(), getWUp().getType(), getWDown().getType());
}
