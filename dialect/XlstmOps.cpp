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

LogicalResult ParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto param = symbolTable.lookupNearestSymbolFrom<ParameterOp>(*this, getNameAttr());
  if (!param)
    return emitOpError() << "'" << getName() << "' does not name an xlstm.parameter";
  if (param.getType() != getResult().getType())
    return emitOpError() << "result type " << getResult().getType() << " differs from the type "
                         << param.getType() << " of parameter @" << getName();
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
  return verifyNormWeight(emit, "weight", getInput().getType(), getWeight().getType());
}

LogicalResult LinearOp::verify() {
  return verifyLinear([&] { return emitOpError(); }, "weight", getInput().getType(),
                      getWeight().getType(), rankedOrNull(getBias()), getResult().getType());
}

LogicalResult SoftCapOp::verify() {
  return verifySoftCapValue([&] { return emitOpError(); }, "cap", getCap().convertToDouble());
}

LogicalResult MLSTMCellOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(verifyEpsilon(emit, "eps", getEps().convertToDouble())))
    return failure();
  StateType init = getInitialState() ? llvm::cast<StateType>(getInitialState().getType())
                                     : StateType();
  return verifyCell(emit, getQ().getType(), getK().getType(), getV().getType(),
                    getIgate().getType(), getFgate().getType(), init, getH().getType(),
                    llvm::cast<StateType>(getFinalState().getType()), getNumHeads());
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

  auto biases = getProjBiases();
  if (!biases.empty() && biases.size() != 5)
    return emitOpError() << "expected 0 or 5 projection biases (q, k, v, o, out), got "
                         << biases.size();
  auto bias = [&](unsigned i) {
    return biases.empty() ? RankedTensorType() : rankedOrNull(biases[i]);
  };
  // Projections read the normalised input, whose type is the input's.
  if (failed(verifyLinear(emit, "wq", x, getWq().getType(), bias(0), {})) ||
      failed(verifyLinear(emit, "wk", x, getWk().getType(), bias(1), {})) ||
      failed(verifyLinear(emit, "wv", x, getWv().getType(), bias(2), {})) ||
      failed(verifyLinear(emit, "wo", x, getWo().getType(), bias(3), {})) ||
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
  return verifyLinear(emit, "wout", featureType(vDim), getWout().getType(), bias(4),
                      getResult().getType());
}

LogicalResult FFNBlockOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(verifyEpsilon(emit, "norm_eps", getNormEps().convertToDouble())))
    return failure();
  RankedTensorType x = getInput().getType();
  if (failed(verifyNormWeight(emit, "norm weight", x, getNorm().getType())) ||
      failed(verifySwiGLUFFN(emit, x, getWGate().getType(), getWUp().getType(),
                             getWDown().getType())))
    return failure();
  auto biases = getBiases();
  if (biases.empty())
    return success();
  if (biases.size() != 3)
    return emitOpError() << "expected 0 or 3 biases (gate, up, down), got " << biases.size();
  if (failed(verifyLinear(emit, "w_gate", x, getWGate().getType(), rankedOrNull(biases[0]), {})) ||
      failed(verifyLinear(emit, "w_up", x, getWUp().getType(), rankedOrNull(biases[1]), {})))
    return failure();
  auto down = getWDown().getType();
  if (biases[2].getType() != RankedTensorType::get({down.getDimSize(0)}, down.getElementType()))
    return emitOpError() << "bias of w_down must be a vector of " << down.getDimSize(0)
                         << " elements, got " << biases[2].getType();
  return success();
}
