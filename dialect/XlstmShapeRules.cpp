//===- XlstmShapeRules.cpp - Shape rules of xlstm ops ---------------------===//

#include "dialect/XlstmShapeRules.h"

#include <cmath>

using namespace mlir;

namespace xlc::xlstm {

bool dimsCompatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

static std::string dimString(int64_t d) {
  return ShapedType::isDynamic(d) ? std::string("?") : std::to_string(d);
}

LogicalResult verifyEpsilon(EmitErrorFn emitError, StringRef name, double eps) {
  if (!std::isfinite(eps) || eps < 0.0)
    return emitError() << name << " must be finite and non-negative, got " << eps;
  return success();
}

LogicalResult verifySoftCapValue(EmitErrorFn emitError, StringRef name, double cap) {
  if (!std::isfinite(cap) || cap <= 0.0)
    return emitError() << name << " must be finite and positive, got " << cap;
  return success();
}

LogicalResult verifyNormWeight(EmitErrorFn emitError, StringRef weightName, RankedTensorType input,
                               RankedTensorType weight) {
  if (input.getRank() < 1)
    return emitError() << "input must have at least one dimension, got " << input;
  if (weight.getRank() != 1)
    return emitError() << weightName << " must be a vector, got " << weight;
  int64_t features = input.getShape().back();
  if (!dimsCompatible(weight.getDimSize(0), features))
    return emitError() << weightName << " has " << weight.getDimSize(0)
                       << " elements but the input has " << features << " features";
  return success();
}

LogicalResult verifyLinear(EmitErrorFn emitError, StringRef weightName, RankedTensorType input,
                           RankedTensorType weight, RankedTensorType bias,
                           RankedTensorType result) {
  if (input.getRank() < 1)
    return emitError() << "input of " << weightName << " must have at least one dimension";
  if (weight.getRank() != 2)
    return emitError() << weightName << " must be a matrix [out, in], got " << weight;
  int64_t out = weight.getDimSize(0), in = weight.getDimSize(1);
  int64_t features = input.getShape().back();
  if (!dimsCompatible(in, features))
    return emitError() << weightName << " expects " << in << " input features but the input has "
                       << features;
  if (bias) {
    if (bias.getRank() != 1 || !dimsCompatible(bias.getDimSize(0), out))
      return emitError() << "bias of " << weightName << " must be a vector of " << out
                         << " elements, got " << bias;
  }
  if (result) {
    if (result.getRank() != input.getRank())
      return emitError() << "result of " << weightName << " has rank " << result.getRank()
                         << " but the input has rank " << input.getRank();
    for (int64_t d = 0; d + 1 < input.getRank(); ++d)
      if (!dimsCompatible(result.getDimSize(d), input.getDimSize(d)))
        return emitError() << "result dimension " << d << " of " << weightName << " is "
                           << dimString(result.getDimSize(d)) << " but the input's is "
                           << dimString(input.getDimSize(d));
    if (!dimsCompatible(result.getShape().back(), out))
      return emitError() << "result of " << weightName << " has "
                         << dimString(result.getShape().back()) << " features but "
                         << weightName << " produces " << out;
  }
  return success();
}

/// Checks that |t| is [B, S, F] with B and S compatible with |ref|'s.
static LogicalResult verifyBatchSeq(EmitErrorFn emitError, StringRef name, RankedTensorType t,
                                    RankedTensorType ref, StringRef refName) {
  if (t.getRank() != 3)
    return emitError() << name << " must be [batch, seq, features], got " << t;
  for (int64_t d = 0; d < 2; ++d)
    if (!dimsCompatible(t.getDimSize(d), ref.getDimSize(d)))
      return emitError() << (d == 0 ? "batch" : "sequence") << " size of " << name << " ("
                         << dimString(t.getDimSize(d)) << ") differs from " << refName << " ("
                         << dimString(ref.getDimSize(d)) << ")";
  return success();
}

LogicalResult verifyResets(EmitErrorFn emitError, RankedTensorType resets, RankedTensorType q) {
  if (!resets)
    return success();
  if (resets.getRank() != 2)
    return emitError() << "resets must be [batch, seq], got " << resets;
  for (int64_t d = 0; d < 2; ++d)
    if (!dimsCompatible(resets.getDimSize(d), q.getDimSize(d)))
      return emitError() << (d == 0 ? "batch" : "sequence") << " size of resets ("
                         << dimString(resets.getDimSize(d)) << ") differs from q ("
                         << dimString(q.getDimSize(d)) << ")";
  return success();
}

LogicalResult verifyCell(EmitErrorFn emitError, RankedTensorType q, RankedTensorType k,
                         RankedTensorType v, RankedTensorType igate, RankedTensorType fgate,
                         StateType initialState, RankedTensorType h, StateType finalState,
                         int64_t numHeads) {
  if (numHeads <= 0)
    return emitError() << "num_heads must be positive, got " << numHeads;
  if (q.getRank() != 3)
    return emitError() << "q must be [batch, seq, heads*qk_head_dim], got " << q;
  if (failed(verifyBatchSeq(emitError, "k", k, q, "q")) ||
      failed(verifyBatchSeq(emitError, "v", v, q, "q")) ||
      failed(verifyBatchSeq(emitError, "igate", igate, q, "q")) ||
      failed(verifyBatchSeq(emitError, "fgate", fgate, q, "q")))
    return failure();
  int64_t qkDim = q.getDimSize(2), vDim = v.getDimSize(2);
  if (!dimsCompatible(k.getDimSize(2), qkDim))
    return emitError() << "k has " << dimString(k.getDimSize(2)) << " features but q has "
                       << dimString(qkDim);
  if (ShapedType::isDynamic(qkDim) || ShapedType::isDynamic(vDim))
    return emitError() << "q/k and v feature sizes must be static, got " << q << " and " << v;
  if (qkDim % numHeads != 0)
    return emitError() << "qk feature size " << qkDim << " is not divisible by num_heads "
                       << numHeads;
  if (vDim % numHeads != 0)
    return emitError() << "v feature size " << vDim << " is not divisible by num_heads "
                       << numHeads;
  if (q.getElementType() != k.getElementType() || q.getElementType() != v.getElementType())
    return emitError() << "q, k and v must share one element type, got " << q.getElementType()
                       << ", " << k.getElementType() << " and " << v.getElementType();
  for (auto [name, gate] : {std::pair<StringRef, RankedTensorType>{"igate", igate},
                            std::pair<StringRef, RankedTensorType>{"fgate", fgate}})
    if (!dimsCompatible(gate.getDimSize(2), numHeads))
      return emitError() << name << " must have one pre-activation per head (" << numHeads
                         << "), got " << dimString(gate.getDimSize(2));
  int64_t qkHead = qkDim / numHeads, vHead = vDim / numHeads;
  auto checkState = [&](StringRef name, StateType s) -> LogicalResult {
    if (s.getNumHeads() != numHeads || s.getQkHeadDim() != qkHead || s.getVHeadDim() != vHead)
      return emitError() << name << " " << s << " does not match the cell's " << numHeads
                         << " heads of qk dim " << qkHead << " and v dim " << vHead;
    return success();
  };
  if (initialState && failed(checkState("initial state", initialState)))
    return failure();
  if (finalState && failed(checkState("final state", finalState)))
    return failure();
  if (initialState && finalState && initialState != finalState)
    return emitError() << "final state " << finalState << " differs from the initial state "
                       << initialState;
  if (h) {
    if (failed(verifyBatchSeq(emitError, "h", h, q, "q")))
      return failure();
    if (!dimsCompatible(h.getDimSize(2), vDim))
      return emitError() << "h has " << dimString(h.getDimSize(2))
                         << " features but v has " << vDim;
  }
  return success();
}

LogicalResult verifyMultiHeadNorm(EmitErrorFn emitError, RankedTensorType input,
                                  RankedTensorType weight, int64_t numHeads) {
  if (numHeads <= 0)
    return emitError() << "num_heads must be positive, got " << numHeads;
  if (failed(verifyNormWeight(emitError, "multi-head norm weight", input, weight)))
    return failure();
  int64_t features = input.getShape().back();
  if (!ShapedType::isDynamic(features) && features % numHeads != 0)
    return emitError() << "feature size " << features << " is not divisible by num_heads "
                       << numHeads;
  return success();
}

LogicalResult verifySwiGLUFFN(EmitErrorFn emitError, RankedTensorType input,
                              RankedTensorType wGate, RankedTensorType wUp,
                              RankedTensorType wDown) {
  if (failed(verifyLinear(emitError, "w_gate", input, wGate, {}, {})) ||
      failed(verifyLinear(emitError, "w_up", input, wUp, {}, {})))
    return failure();
  if (wGate.getShape() != wUp.getShape())
    return emitError() << "w_gate " << wGate << " and w_up " << wUp << " must have one shape";
  if (wDown.getRank() != 2 || !dimsCompatible(wDown.getDimSize(0), input.getShape().back()) ||
      !dimsCompatible(wDown.getDimSize(1), wGate.getDimSize(0)))
    return emitError() << "w_down must be [" << dimString(input.getShape().back()) << ", "
                       << wGate.getDimSize(0) << "] to map the hidden size back, got " << wDown;
  return success();
}

} // namespace xlc::xlstm
