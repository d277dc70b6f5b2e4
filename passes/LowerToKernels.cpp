//===- LowerToKernels.cpp - Kernel formation --------------------------------===//
//
// Implements xlc-lower-to-kernels. Works in program order over a clone of @forward per
// function kind; a producer that a consumer will absorb (a projection feeding a residual add, a
// multi-head norm feeding the output gate) is left for the consumer to lower.
//
//===----------------------------------------------------------------------===//

#include "passes/KernelFormation.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

#define DEBUG_TYPE "xlc-lower-to-kernels"

namespace xlc {
#define GEN_PASS_DEF_LOWERTOKERNELS
#include "passes/Passes.h.inc"
} // namespace xlc

using namespace mlir;
using namespace xlc;

namespace xlc::detail {

/// The projection |value| comes from when this add is its only user, else null.
xlstm::LinearOp absorbableProjection(Value value) {
  auto linear = value.getDefiningOp<xlstm::LinearOp>();
  if (!linear || linear.getBias() || !linear->hasOneUse())
    return {};
  return linear;
}

/// True when |op| will be lowered as part of its single consumer.
bool absorbedByConsumer(Operation *op) {
  if (auto linear = dyn_cast<xlstm::LinearOp>(op))
    if (absorbableProjection(linear.getResult()))
      if (auto add = dyn_cast<xlstm::AddOp>(*linear->getUsers().begin()))
        // The add absorbs its right operand when it can, else its left one (see lowerOp).
        return add.getRhs() == linear.getResult() || !absorbableProjection(add.getRhs());
  if (auto norm = dyn_cast<xlstm::MultiHeadLayerNormOp>(op))
    if (norm->hasOneUse())
      if (auto gate = dyn_cast<xlstm::OutputGateOp>(*norm->getUsers().begin()))
        return gate.getInput() == norm.getResult();
  return false;
}

LogicalResult lowerOp(Operation *op, CellForm form) {
  OpBuilder b(op);
  Location loc = op->getLoc();
  auto epilogue = [&](xk::Epilogue e) { return xk::EpilogueAttr::get(op->getContext(), e); };

  Value replacement, stateReplacement;
  Operation *absorbed = nullptr; // a producer to erase once |op| no longer uses it
  if (auto emb = dyn_cast<xlstm::EmbeddingOp>(op)) {
    if (!emb.getTokens().getType().getElementType().isInteger(32))
      return op->emitError() << "kernels take int32 token ids, got " << emb.getTokens().getType();
    replacement = b.create<xk::EmbeddingOp>(loc, emb.getResult().getType(), emb.getTable(),
                                            emb.getTokens(), xk::TileAttr());
  } else if (auto norm = dyn_cast<xlstm::RMSNormOp>(op)) {
    replacement = b.create<xk::RMSNormOp>(loc, norm.getResult().getType(), norm.getInput(),
                                          norm.getWeight(), norm.getEpsAttr(), xk::TileAttr());
  } else if (auto linear = dyn_cast<xlstm::LinearOp>(op)) {
    Value bias = linear.getBias();
    replacement = b.create<xk::GemmOp>(
        loc, linear.getResult().getType(), linear.getInput(), linear.getWeight(), bias, Value(),
        epilogue(bias ? xk::Epilogue::Bias : xk::Epilogue::None), xk::TileAttr());
  } else if (auto add = dyn_cast<xlstm::AddOp>(op)) {
    // x + P(y): the projection's GEMM adds the residual in its epilogue.
    Value residual;
    xlstm::LinearOp proj = absorbableProjection(add.getRhs());
    residual = add.getLhs();
    if (!proj) {
      proj = absorbableProjection(add.getLhs());
      residual = add.getRhs();
    }
    if (!proj)
      return op->emitError() << "no kernel computes a residual add whose operands are not the "
                                "only use of a bias-free projection";
    replacement = b.create<xk::GemmOp>(loc, add.getResult().getType(), proj.getInput(),
                                       proj.getWeight(), Value(), residual,
                                       epilogue(xk::Epilogue::ResidualAdd), xk::TileAttr());
    absorbed = proj;
  } else if (auto gate = dyn_cast<xlstm::OutputGateOp>(op)) {
    auto norm = gate.getInput().getDefiningOp<xlstm::MultiHeadLayerNormOp>();
    if (!norm || !norm->hasOneUse())
      return op->emitError() << "the output gate must read a multi-head LayerNorm that has no "
                                "other user (kernel norm_gate)";
    replacement = b.create<xk::NormGateOp>(loc, gate.getResult().getType(), norm.getInput(),
                                           norm.getWeight(), gate.getPreact(),
                                           norm.getNumHeadsAttr(), norm.getEpsAttr(),
                                           xk::TileAttr());
    absorbed = norm;
  } else if (isa<xlstm::MultiHeadLayerNormOp>(op)) {
    return op->emitError() << "a multi-head LayerNorm must feed an output gate (kernel norm_gate)";
  } else if (auto swiglu = dyn_cast<xlstm::SwiGLUOp>(op)) {
    replacement = b.create<xk::SwiGLUOp>(loc, swiglu.getResult().getType(), swiglu.getGate(),
                                         swiglu.getUp(), xk::TileAttr());
  } else if (auto cap = dyn_cast<xlstm::SoftCapOp>(op)) {
    replacement = b.create<xk::SoftCapOp>(loc, cap.getResult().getType(), cap.getInput(),
                                          cap.getCapAttr(), xk::TileAttr());
  } else if (auto head = dyn_cast<xlstm::LMHeadOp>(op)) {
    replacement = b.create<xk::GemmOp>(loc, head.getResult().getType(), head.getInput(),
                                       head.getWeight(), Value(), Value(),
                                       epilogue(xk::Epilogue::None), xk::TileAttr());
    if (FloatAttr softCap = head.getSoftCapAttr())
      replacement = b.create<xk::SoftCapOp>(loc, replacement.getType(), replacement, softCap,
                                            xk::TileAttr());
  } else if (auto cell = dyn_cast<xlstm::MLSTMCellOp>(op)) {
    if (!cell.getInitialState())
      return op->emitError() << "kernels update a state in place: the cell needs an initial state";
    if (cell.getResets() && form != CellForm::Chunkwise)
      return op->emitError() << "a decode step takes no document resets";
    auto build = [&](auto tag) {
      using KernelOp = decltype(tag);
      auto k = b.create<KernelOp>(loc, cell.getH().getType(), cell.getFinalState().getType(),
                                  cell.getQ(), cell.getK(), cell.getV(), cell.getIgate(),
                                  cell.getFgate(), cell.getInitialState(), cell.getResets(),
                                  cell.getNumHeadsAttr(), cell.getEpsAttr(),
                                  cell.getGateSoftCapAttr(), cell.getInputGateAttr(),
                                  cell.getNormalizerAttr(), xk::TileAttr());
      replacement = k.getH();
      stateReplacement = k.getFinalState();
    };
    if (form == CellForm::Chunkwise)
      build(xk::MLSTMChunkwiseOp());
    else
      build(xk::MLSTMDecodeStepOp());
  } else if (isa<xlstm::MLSTMBlockOp, xlstm::FFNBlockOp, xlstm::SwiGLUFFNOp>(op)) {
    return op->emitError() << "composite op reached kernel formation; run xlc-decompose-blocks "
                              "first";
  } else {
    return success(); // xlstm.param, xlstm.split, xlstm.last_position, func.return: unchanged
  }
  op->getResult(0).replaceAllUsesWith(replacement);
  if (stateReplacement)
    op->getResult(1).replaceAllUsesWith(stateReplacement);
  op->erase();
  if (absorbed)
    absorbed->erase();
  return success();
}

/// Makes |func| return the logits of each sequence's last position only: every LM head reads
/// xlstm.last_position of its input, so its GEMM and soft-cap run on B rows instead of B·S, and
/// its result (and the function's) becomes [B, 1, V]. The logits must go straight to the return.
} // namespace xlc::detail

namespace {

using namespace xlc::detail;

LogicalResult selectLastPositions(func::FuncOp func) {
  SmallVector<xlstm::LMHeadOp> heads;
  func.walk([&](xlstm::LMHeadOp head) { heads.push_back(head); });
  for (xlstm::LMHeadOp head : heads) {
    RankedTensorType in = head.getInput().getType(), out = head.getResult().getType();
    if (in.getRank() != 3 || out.getRank() != 3)
      return head.emitError() << "the LM head must map [batch, seq, features] to [batch, seq, "
                                 "vocab] to select the last positions, got "
                              << in << " -> " << out;
    for (Operation *user : head->getUsers())
      if (!isa<func::ReturnOp>(user))
        return user->emitError() << "reads the logits of every position, but @" << func.getSymName()
                                 << " computes only the last one per sequence";
    OpBuilder b(head);
    auto lastType =
        RankedTensorType::get({in.getDimSize(0), 1, in.getDimSize(2)}, in.getElementType());
    Value last = b.create<xlstm::LastPositionOp>(head.getLoc(), lastType, head.getInput());
    head.getInputMutable().assign(last);
    head.getResult().setType(
        RankedTensorType::get({out.getDimSize(0), 1, out.getDimSize(2)}, out.getElementType()));
  }
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  func.setType(FunctionType::get(func.getContext(), func.getArgumentTypes(),
                                 ret.getOperandTypes()));
  return success();
}

/// Makes |func| take one token per sequence: every [batch, seq, ...] tensor of the function
/// (arguments and results of every op) gets seq = 1, so its buffers and logits are sized by the
/// batch alone and do not grow with the prompt length the prefill is planned for.
void specializeOneToken(func::FuncOp func) {
  auto refine = [](Type type) -> Type {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor || tensor.getRank() < 2 || !ShapedType::isDynamic(tensor.getDimSize(0)) ||
        !ShapedType::isDynamic(tensor.getDimSize(1)))
      return type;
    SmallVector<int64_t> shape(tensor.getShape());
    shape[1] = 1;
    return RankedTensorType::get(shape, tensor.getElementType(), tensor.getEncoding());
  };
  for (BlockArgument arg : func.getBody().front().getArguments())
    arg.setType(refine(arg.getType()));
  func.getBody().walk([&](Operation *op) {
    for (Value result : op->getResults())
      result.setType(refine(result.getType()));
  });
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  func.setType(FunctionType::get(func.getContext(),
                                 func.getBody().front().getArgumentTypes(),
                                 ret.getOperandTypes()));
}

LogicalResult lowerFunction(func::FuncOp func, CellForm form) {
  SmallVector<Operation *> ops;
  for (Operation &op : func.getBody().front())
    ops.push_back(&op);
  // lowerOp erases the op it lowers and the producers it absorbs; absorbed producers are
  // skipped here (they come before their consumer), so no erased op is visited.
  for (Operation *op : ops) {
    if (absorbedByConsumer(op))
      continue;
    if (failed(lowerOp(op, form)))
      return failure();
  }
  return success();
}

struct LowerToKernelsPass : public xlc::impl::LowerToKernelsBase<LowerToKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward) {
      module.emitError() << "the model has no @forward function to compile";
      return signalPassFailure();
    }
    // @prefill feeds prompts for generation and returns the logits of the last position only;
    // @score is the same prefill with the logits of every position (scoring, parity).
    OpBuilder b(forward);
    auto prefill = cast<func::FuncOp>(b.clone(*forward));
    prefill.setSymName("prefill");
    auto decode = cast<func::FuncOp>(b.clone(*forward));
    decode.setSymName("decode_step");
    auto score = cast<func::FuncOp>(b.clone(*forward));
    score.setSymName("score");
    forward.erase();
    // @train_step (xlc-autodiff) keeps its own forward: every cell from a zero state, the
    // chunkwise kernels with their chunk-start states saved for the backward.
    if (auto train = module.lookupSymbol<func::FuncOp>("train_step"))
      if (failed(lowerTrainStep(train)))
        return signalPassFailure();
    specializeOneToken(decode);
    if (failed(selectLastPositions(prefill)) ||
        failed(lowerFunction(prefill, CellForm::Chunkwise)) ||
        failed(lowerFunction(decode, CellForm::DecodeStep)) ||
        failed(lowerFunction(score, CellForm::Chunkwise)))
      return signalPassFailure();
  }
};

} // namespace
