//===- MlstmEmitterUtils.h - What the mLSTM emitters share ------*- C++ -*-===//
//
// The cell's configuration fields and step attributes, read from an xk mLSTM op (the chunkwise
// forward or the decode step; the backward reads its forward's), for the forward's and the
// backward's emitters (EmitMlstm.cpp, EmitMlstmBackward.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_CODEGEN_CUDA_MLSTMEMITTERUTILS_H
#define XLC_CODEGEN_CUDA_MLSTMEMITTERUTILS_H

#include "codegen/cuda/KernelEmitterUtils.h"

#include <initializer_list>

namespace xlc::codegen {

/// The cell fields of an mLSTM kernel configuration (runtime/kernels/families/MlstmCommon.h).
template <typename Op> kernels::Config mlstmCellConfig(Op op) {
  auto state = mlir::cast<xlstm::StateType>(op.getInitialState().getType());
  return {{"dtype", dtypeText(op.getQ().getType().getElementType())},
          {"gate_dtype", dtypeText(op.getIgate().getType().getElementType())},
          {"state_dtype", dtypeText(state.getElementType())},
          {"num_heads", state.getNumHeads()},
          {"qk_head_dim", state.getQkHeadDim()},
          {"v_head_dim", state.getVHeadDim()},
          {"input_gate", op.getInputGate() == xlstm::InputGateKind::Exp ? "exp" : "sigmoid"},
          {"normalizer", op.getNormalizer() == xlstm::NormalizerKind::MaxAbs ? "max_abs" : "none"}};
}

inline double mlstmCapOf(std::optional<llvm::APFloat> cap) {
  return cap ? cap->convertToDouble() : 0.0;
}

/// The step attributes of an mLSTM launch (the families cross-check them).
template <typename Op> nlohmann::json mlstmCellAttrs(Op op) {
  auto state = mlir::cast<xlstm::StateType>(op.getInitialState().getType());
  return {{"num_heads", state.getNumHeads()},
          {"qk_head_dim", state.getQkHeadDim()},
          {"v_head_dim", state.getVHeadDim()},
          {"eps", op.getEps().convertToDouble()},
          {"gate_soft_cap", mlstmCapOf(op.getGateSoftCap())},
          {"input_gate", op.getInputGate() == xlstm::InputGateKind::Exp ? "exp" : "sigmoid"},
          {"normalizer", op.getNormalizer() == xlstm::NormalizerKind::MaxAbs ? "max_abs" : "none"}};
}

/// Strided operands as (buffer, offset, stride) argument triples.
inline std::vector<artifact::Arg> viewArgs(EmitContext &ctx,
                                           std::initializer_list<mlir::Value> values) {
  std::vector<artifact::Arg> args;
  for (mlir::Value v : values)
    appendView(args, ctx.view(v));
  return args;
}

/// The document-reset mask argument of the two-kernel forward and the backward
/// (MlstmCommon.h resetsParam): the [B, S] u8 buffer of |resets|, or a null pointer (i64 0).
inline artifact::Arg resetsArg(mlir::Value resets, EmitContext &ctx) {
  return resets ? artifact::Arg::buffer(ctx.view(resets).id) : artifact::Arg::i64(0);
}

} // namespace xlc::codegen

#endif // XLC_CODEGEN_CUDA_MLSTMEMITTERUTILS_H
