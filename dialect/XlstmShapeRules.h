//===- XlstmShapeRules.h - Shape rules of xlstm ops -------------*- C++ -*-===//
//
// The shape and attribute rules of the xlstm ops as free functions (StableHLO style), shared by
// the verifiers of the primitive ops and of the composite blocks built from them. Each rule emits
// one diagnostic that names the operand or attribute at fault and the sizes involved.
//
// Dynamic dimensions match anything; static ones must agree exactly.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DIALECT_XLSTMSHAPERULES_H
#define XLC_DIALECT_XLSTMSHAPERULES_H

#include "dialect/XlstmDialect.h"

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"

namespace xlc::xlstm {

using EmitErrorFn = llvm::function_ref<mlir::InFlightDiagnostic()>;

/// True when two dimension sizes can be equal at run time.
bool dimsCompatible(int64_t a, int64_t b);

/// |eps| must be finite and non-negative.
mlir::LogicalResult verifyEpsilon(EmitErrorFn emitError, llvm::StringRef name, double eps);

/// |cap| must be finite and positive.
mlir::LogicalResult verifySoftCapValue(EmitErrorFn emitError, llvm::StringRef name, double cap);

/// |weight| is a rank-1 vector of |features| elements (the weight of a norm over the last
/// dimension of |input|, whose rank must be at least 1).
mlir::LogicalResult verifyNormWeight(EmitErrorFn emitError, llvm::StringRef weightName,
                                     mlir::RankedTensorType input, mlir::RankedTensorType weight);

/// y = x Wᵀ + b: W is [out, in], x is [..., in], b is [out], y is [..., out] with x's leading
/// dimensions. |bias| and |result| may be null (checked only when present).
mlir::LogicalResult verifyLinear(EmitErrorFn emitError, llvm::StringRef weightName,
                                 mlir::RankedTensorType input, mlir::RankedTensorType weight,
                                 mlir::RankedTensorType bias, mlir::RankedTensorType result);

/// The mLSTM cell on the flat layout: q, k [B,S,NH*DQK], v [B,S,NH*DV], i, f [B,S,NH],
/// state NHxDQKxDV, h [B,S,NH*DV]. |initialState| and |h| may be null.
mlir::LogicalResult verifyCell(EmitErrorFn emitError, mlir::RankedTensorType q,
                               mlir::RankedTensorType k, mlir::RankedTensorType v,
                               mlir::RankedTensorType igate, mlir::RankedTensorType fgate,
                               StateType initialState, mlir::RankedTensorType h,
                               StateType finalState, int64_t numHeads);

/// A cell's document resets: [batch, seq] with |q|'s batch and sequence sizes. Null: none.
mlir::LogicalResult verifyResets(EmitErrorFn emitError, mlir::RankedTensorType resets,
                                 mlir::RankedTensorType q);

/// Multi-head LayerNorm: the last dimension of |input| splits into |numHeads| equal groups and
/// |weight| has one element per feature.
mlir::LogicalResult verifyMultiHeadNorm(EmitErrorFn emitError, mlir::RankedTensorType input,
                                        mlir::RankedTensorType weight, int64_t numHeads);

/// The SwiGLU FFN weights: gate and up [F, D], down [D, F], for input [..., D].
mlir::LogicalResult verifySwiGLUFFN(EmitErrorFn emitError, mlir::RankedTensorType input,
                                    mlir::RankedTensorType wGate, mlir::RankedTensorType wUp,
                                    mlir::RankedTensorType wDown);

} // namespace xlc::xlstm

#endif // XLC_DIALECT_XLSTMSHAPERULES_H
