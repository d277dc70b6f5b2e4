//===- KernelFormation.h - Shared rules of xlc-lower-to-kernels -*- C++ -*-===//
//
// The pass lowers the inference functions (LowerToKernels.cpp) and @train_step
// (LowerTrainStep.cpp) with the same per-op rules for the forward ops.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_PASSES_KERNELFORMATION_H
#define XLC_PASSES_KERNELFORMATION_H

#include "dialect/XkDialect.h"
#include "dialect/XlstmDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace xlc::detail {

enum class CellForm { Chunkwise, DecodeStep };

/// The projection |value| comes from when an add is its only user, else null.
xlstm::LinearOp absorbableProjection(mlir::Value value);

/// True when |op| will be lowered as part of its single consumer.
bool absorbedByConsumer(mlir::Operation *op);

/// Lowers one forward op to its kernel (erasing it and any producer it absorbs); ops without a
/// kernel form (params, splits, the return) are left as they are.
mlir::LogicalResult lowerOp(mlir::Operation *op, CellForm form);

/// Lowers @train_step: the forward ops as lowerOp does (cells from an xk.zero_state), the loss
/// head and every gradient op to their kernels (LowerTrainStep.cpp).
mlir::LogicalResult lowerTrainStep(mlir::func::FuncOp func);

} // namespace xlc::detail

#endif // XLC_PASSES_KERNELFORMATION_H
