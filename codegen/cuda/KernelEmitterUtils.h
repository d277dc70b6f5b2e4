//===- KernelEmitterUtils.h - Shared helpers of the kernel emitters -*- C++ -*-===//
#ifndef XLC_CODEGEN_CUDA_KERNELEMITTERUTILS_H
#define XLC_CODEGEN_CUDA_KERNELEMITTERUTILS_H

#include "codegen/cuda/KernelEmitter.h"
#include "runtime/kernels/KernelFamily.h"

namespace xlc::codegen {

/// The tile attribute of a kernel op, or a diagnostic naming the op when it has none.
inline mlir::FailureOr<xk::TileAttr> tileOf(mlir::Operation *op) {
  auto tile = op->getAttrOfType<xk::TileAttr>("tile");
  if (!tile)
    return op->emitError() << "has no tile configuration; run xlc-assign-tile-configs";
  return tile;
}

/// Entry |name| of the op's tile, or a diagnostic naming the entry.
inline mlir::FailureOr<int64_t> tileEntry(mlir::Operation *op, llvm::StringRef name) {
  mlir::FailureOr<xk::TileAttr> tile = tileOf(op);
  if (mlir::failed(tile))
    return mlir::failure();
  std::optional<int64_t> value = tile->get(name);
  if (!value)
    return op->emitError() << "tile " << tile->str() << " has no '" << name << "' entry";
  return *value;
}

inline std::string tileText(mlir::Operation *op) {
  auto tile = op->getAttrOfType<xk::TileAttr>("tile");
  return tile ? tile.str() : std::string();
}

/// The artifact dtype spelling of a float element type ("bf16", "f16" or "f32"), for kernel
/// configurations.
inline std::string dtypeText(mlir::Type type) {
  if (type.isBF16())
    return "bf16";
  if (type.isF16())
    return "f16";
  return "f32";
}

/// The product of the leading dimensions of a [..., F] tensor (its rows; the first dynamic
/// dimension is the batch B, the second the sequence S, as the artifact writer maps them) times
/// |factor|: B·S for activations, B for the last positions [B, 1, F].
inline artifact::Expr rowsExpr(mlir::RankedTensorType type, std::uint64_t factor = 1) {
  std::uint64_t constant = factor;
  int dynamic = 0;
  for (int64_t d : type.getShape().drop_back()) {
    if (mlir::ShapedType::isDynamic(d))
      ++dynamic;
    else
      constant *= static_cast<std::uint64_t>(d);
  }
  if (dynamic == 0)
    return artifact::Expr::constant(constant);
  if (dynamic == 1)
    return mlir::ShapedType::isDynamic(type.getDimSize(0)) ? artifact::Expr::batch(constant)
                                                             : artifact::Expr::seq(constant);
  return artifact::Expr::batchSeq(constant);
}

/// The rows of a [..., F] tensor as a launch argument: the symbol B, S or BS when it is one of
/// them, else the expression.
inline artifact::Arg rowsArg(mlir::RankedTensorType type) {
  const artifact::Expr rows = rowsExpr(type);
  if (rows == artifact::Expr::batchSeq())
    return artifact::Arg::symbol(artifact::Symbol::BS);
  if (rows == artifact::Expr::batch())
    return artifact::Arg::symbol(artifact::Symbol::B);
  if (rows == artifact::Expr::seq())
    return artifact::Arg::symbol(artifact::Symbol::S);
  return artifact::Arg::expr(rows);
}

/// The kernel the registry renders for family |family| and |config|, added to the artifact (or
/// found, when an identical one exists); a configuration the family refuses is a diagnostic.
inline mlir::FailureOr<artifact::KernelIndex> emitFamilyKernel(mlir::Operation *op,
                                                               EmitContext &ctx,
                                                               std::string_view family,
                                                               const kernels::Config &config) {
  const kernels::FamilyDef *def = kernels::findFamily(family);
  if (!def)
    return op->emitError() << "no kernel family '" << std::string(family) << "'";
  try {
    return ctx.kernel(kernels::renderKernel(*def, config, tileText(op)));
  } catch (const std::exception &e) {
    return op->emitError() << e.what();
  }
}

/// Appends a (buffer, offset, stride) argument triple.
inline void appendView(std::vector<artifact::Arg> &args, const BufferView &view) {
  args.push_back(artifact::Arg::buffer(view.id));
  args.push_back(artifact::Arg::i64(view.offset));
  args.push_back(artifact::Arg::i64(view.stride));
}

/// The buffer of |value| when it is a whole contiguous buffer ([rows, F] at offset 0, stride F),
/// as kernel parameters without an offset and stride need; else a diagnostic naming |what|.
inline mlir::FailureOr<artifact::BufferId> contiguousView(mlir::Operation *op, mlir::Value value,
                                                          const BufferView &view,
                                                          llvm::StringRef what) {
  auto type = mlir::cast<mlir::RankedTensorType>(value.getType());
  const int64_t width = type.getRank() == 0 ? 1 : type.getShape().back();
  if (view.offset != 0 || view.stride != width)
    return op->emitError() << what << " must be a whole contiguous buffer, but it is a view at "
                           << "column " << view.offset << " with row stride " << view.stride;
  return view.id;
}
inline mlir::FailureOr<artifact::BufferId> contiguous(mlir::Operation *op, EmitContext &ctx,
                                                      mlir::Value value, llvm::StringRef what) {
  return contiguousView(op, value, ctx.view(value), what);
}
inline mlir::FailureOr<artifact::BufferId>
contiguousOutput(mlir::Operation *op, EmitContext &ctx, mlir::Value result, llvm::StringRef what) {
  return contiguousView(op, result, ctx.outputView(result), what);
}

// One emitter per family (Emit*.cpp).
mlir::LogicalResult emitEmbedding(xk::EmbeddingOp op, EmitContext &ctx);
mlir::LogicalResult emitRmsNorm(xk::RMSNormOp op, EmitContext &ctx);
mlir::LogicalResult emitNormGate(xk::NormGateOp op, EmitContext &ctx);
mlir::LogicalResult emitSwiGLU(xk::SwiGLUOp op, EmitContext &ctx);
mlir::LogicalResult emitSoftCap(xk::SoftCapOp op, EmitContext &ctx);
mlir::LogicalResult emitConvert(xk::ConvertOp op, EmitContext &ctx);
mlir::LogicalResult emitMlstmChunkwise(xk::MLSTMChunkwiseOp op, EmitContext &ctx);
mlir::LogicalResult emitMlstmDecodeStep(xk::MLSTMDecodeStepOp op, EmitContext &ctx);
// Training (EmitRowBackward.cpp, EmitMlstmBackward.cpp).
mlir::LogicalResult emitRmsNormBackward(xk::RMSNormBackwardOp op, EmitContext &ctx);
mlir::LogicalResult emitNormGateBackward(xk::NormGateBackwardOp op, EmitContext &ctx);
mlir::LogicalResult emitSwiGLUBackward(xk::SwiGLUBackwardOp op, EmitContext &ctx);
mlir::LogicalResult emitColumnSum(xk::ColumnSumOp op, EmitContext &ctx);
mlir::LogicalResult emitEmbeddingBackward(xk::EmbeddingBackwardOp op, EmitContext &ctx);
mlir::LogicalResult emitCrossEntropy(xk::CrossEntropyOp op, EmitContext &ctx);
mlir::LogicalResult emitMlstmCellGrad(xk::MLSTMCellGradOp op, EmitContext &ctx);

} // namespace xlc::codegen

#endif // XLC_CODEGEN_CUDA_KERNELEMITTERUTILS_H
