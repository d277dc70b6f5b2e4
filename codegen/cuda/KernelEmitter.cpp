//===- KernelEmitter.cpp - Dispatch of xk ops to their family emitter -----===//

#include "codegen/cuda/KernelEmitter.h"

#include "codegen/cuda/KernelEmitterUtils.h"
#include "runtime/device/DeviceHeaders.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace xlc::codegen {

LogicalResult emitKernelOp(Operation *op, EmitContext &ctx) {
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](xk::EmbeddingOp o) { return emitEmbedding(o, ctx); })
      .Case([&](xk::RMSNormOp o) { return emitRmsNorm(o, ctx); })
      .Case([&](xk::NormGateOp o) { return emitNormGate(o, ctx); })
      .Case([&](xk::SwiGLUOp o) { return emitSwiGLU(o, ctx); })
      .Case([&](xk::SoftCapOp o) { return emitSoftCap(o, ctx); })
      .Case([&](xk::ConvertOp o) { return emitConvert(o, ctx); })
      .Case([&](xk::MLSTMChunkwiseOp o) { return emitMlstmChunkwise(o, ctx); })
      .Case([&](xk::MLSTMDecodeStepOp o) { return emitMlstmDecodeStep(o, ctx); })
      .Case([&](xk::RMSNormBackwardOp o) { return emitRmsNormBackward(o, ctx); })
      .Case([&](xk::NormGateBackwardOp o) { return emitNormGateBackward(o, ctx); })
      .Case([&](xk::SwiGLUBackwardOp o) { return emitSwiGLUBackward(o, ctx); })
      .Case([&](xk::ColumnSumOp o) { return emitColumnSum(o, ctx); })
      .Case([&](xk::EmbeddingBackwardOp o) { return emitEmbeddingBackward(o, ctx); })
      .Case([&](xk::CrossEntropyOp o) { return emitCrossEntropy(o, ctx); })
      .Case([&](xk::MLSTMCellGradOp o) { return emitMlstmCellGrad(o, ctx); })
      .Default([&](Operation *o) {
        return o->emitError() << "no kernel family emits this op";
      });
}

std::string deviceHeadersHash() { return std::string(xlc::device::headerHash()); }

} // namespace xlc::codegen
