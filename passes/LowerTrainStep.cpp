//===- LowerTrainStep.cpp - Kernel formation for @train_step --------------===//
//
// Part of xlc-lower-to-kernels (Passes.td). @train_step, as xlc-autodiff builds it, is the
// forward up to the loss followed by the gradient ops in reverse order. Its forward ops lower
// as the inference functions' do (KernelFormation.h), with two differences: every cell starts
// from an xk.zero_state (its xk.mlstm_chunkwise keeps the chunk-start states the backward
// reads), and the LM head and loss become one f32 GEMM and the cross_entropy kernel, which also
// leaves the logits' gradient in place. The gradient ops become:
//
//   lm_head_loss_grad          dX = dZ·W (xk.matmul), dW = dZᵀ·X (xk.matmul trans_a, f32)
//   linear_grad                the same two GEMMs, and xk.column_sum of dy for a bias
//   rms_norm_grad              xk.rms_norm_backward
//   output_gate_grad +         xk.norm_gate_backward (one kernel, as the forward's norm_gate)
//     multihead_layer_norm_grad
//   swiglu_grad                xk.swiglu_backward
//   embedding_grad             xk.embedding_backward (f32 table gradient)
//   mlstm_cell_grad            xk.mlstm_cell_grad, reading the forward kernel's saved states
//
// Gradients that meet at a value were added by an xlstm.add; each add is absorbed into the
// kernel that produces its later operand, as that kernel's addend (GEMMs, embedding_backward)
// or residual (rms_norm_backward): the producer adds the earlier gradient in its epilogue. A
// weight's gradient is f32 whatever the weight's type (the function's results change type
// accordingly). xlstm.concat (the gradient of a split) stays: the writer gives its operands
// column slices of one buffer, which the kernels write in place, as split's views are read.
//
//===----------------------------------------------------------------------===//

#include "passes/KernelFormation.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"

using namespace mlir;
using namespace xlc;

namespace xlc::detail {
namespace {

RankedTensorType f32Like(Type type) {
  auto t = cast<RankedTensorType>(type);
  return RankedTensorType::get(t.getShape(), Float32Type::get(t.getContext()));
}

/// The earlier operand of the xlstm.add that is |value|'s only user, when it is defined before
/// |at| (so the kernel at |at| can add it in its epilogue); null otherwise.
std::pair<xlstm::AddOp, Value> absorbableAdd(Value value, Operation *at) {
  if (!value.hasOneUse())
    return {};
  auto add = dyn_cast<xlstm::AddOp>(*value.getUsers().begin());
  if (!add)
    return {};
  Value other = add.getLhs() == value ? add.getRhs() : add.getLhs();
  if (other == value)
    return {};
  if (Operation *def = other.getDefiningOp())
    if (def->getBlock() != at->getBlock() || !def->isBeforeInBlock(at))
      return {};
  return {add, other};
}

class TrainStepLowering {
public:
  explicit TrainStepLowering(func::FuncOp func) : func_(func) {}

  LogicalResult run() {
    if (failed(fuseNormGateGradients()))
      return failure();
    SmallVector<Operation *> ops;
    for (Operation &op : func_.getBody().front())
      ops.push_back(&op);
    for (Operation *op : ops) {
      if (erased_.contains(op) || absorbedByConsumer(op))
        continue;
      if (failed(lower(op)))
        return failure();
    }
    auto ret = cast<func::ReturnOp>(func_.getBody().front().getTerminator());
    func_.setType(FunctionType::get(func_.getContext(), func_.getArgumentTypes(),
                                    ret.getOperandTypes()));
    return success();
  }

private:
  /// output_gate_grad(o, LN(h), dy) whose input gradient feeds only the multi-head norm's
  /// gradient becomes one norm_gate_backward(h, w, o, dy) — the fused kernel recomputes LN(h),
  /// and the forward norm is left with its output gate as its only user (one norm_gate kernel).
  LogicalResult fuseNormGateGradients() {
    SmallVector<xlstm::OutputGateGradOp> gates;
    func_.walk([&](xlstm::OutputGateGradOp g) { gates.push_back(g); });
    for (xlstm::OutputGateGradOp g : gates) {
      auto norm = g.getInput().getDefiningOp<xlstm::MultiHeadLayerNormOp>();
      auto normGrad = g.getDInput().hasOneUse()
                          ? dyn_cast<xlstm::MultiHeadLayerNormGradOp>(*g.getDInput().getUsers().begin())
                          : xlstm::MultiHeadLayerNormGradOp();
      if (!norm || !normGrad || normGrad.getInput() != norm.getInput() ||
          normGrad.getWeight() != norm.getWeight())
        return g.emitError() << "the output gate's gradient must feed the gradient of the "
                                "multi-head LayerNorm it gates (kernel norm_gate_backward)";
      OpBuilder b(normGrad);
      auto fused = b.create<xk::NormGateBackwardOp>(
          normGrad.getLoc(), normGrad.getDInput().getType(),
          f32Like(normGrad.getDWeight().getType()), g.getDPreact().getType(), norm.getInput(),
          norm.getWeight(), g.getPreact(), g.getDy(), norm.getNumHeadsAttr(), norm.getEpsAttr(),
          xk::TileAttr());
      normGrad.getDInput().replaceAllUsesWith(fused.getDInput());
      normGrad.getDWeight().replaceAllUsesWith(fused.getDWeight());
      g.getDPreact().replaceAllUsesWith(fused.getDOgate());
      normGrad.erase();
      g.erase();
    }
    return success();
  }

  /// Replaces |value| by |replacement|; when |add| is given, the add (absorbed into the kernel
  /// that computed |replacement|) is replaced instead.
  void replace(Value value, Value replacement, xlstm::AddOp add) {
    if (add) {
      add.getResult().replaceAllUsesWith(replacement);
      erased_.insert(add);
      add.erase();
    } else {
      value.replaceAllUsesWith(replacement);
    }
  }

  LogicalResult lower(Operation *op) {
    OpBuilder b(op);
    Location loc = op->getLoc();
    if (auto cell = dyn_cast<xlstm::MLSTMCellOp>(op)) {
      if (!cell.getInitialState()) {
        Value zero = b.create<xk::ZeroStateOp>(loc, cell.getFinalState().getType());
        cell.getInitialStateMutable().assign(zero);
      }
      return lowerOp(op, CellForm::Chunkwise);
    }
    if (auto loss = dyn_cast<xlstm::LMHeadLossOp>(op))
      return lowerLoss(loss, b);
    if (auto grad = dyn_cast<xlstm::LMHeadLossGradOp>(op)) {
      Value dz = logitGrads_.lookup(grad);
      if (!dz)
        return grad.emitError() << "no xlstm.lm_head_loss of the same input, weight and targets "
                                   "precedes this gradient";
      matmulPair(b, loc, op, dz, grad.getWeight(), grad.getInput(), grad.getDInput(),
                 grad.getDWeight());
      op->erase();
      return success();
    }
    if (auto grad = dyn_cast<xlstm::LinearGradOp>(op)) {
      matmulPair(b, loc, op, grad.getDy(), grad.getWeight(), grad.getInput(), grad.getDInput(),
                 grad.getDWeight());
      if (Value db = grad.getDBias()) {
        auto sum = b.create<xk::ColumnSumOp>(loc, f32Like(db.getType()), grad.getDy(),
                                             xk::TileAttr());
        db.replaceAllUsesWith(sum.getResult());
      }
      op->erase();
      return success();
    }
    if (auto grad = dyn_cast<xlstm::RMSNormGradOp>(op)) {
      auto [add, residual] = absorbableAdd(grad.getDInput(), op);
      Type dw = grad.getDWeight() ? Type(f32Like(grad.getDWeight().getType())) : Type();
      auto k = b.create<xk::RMSNormBackwardOp>(loc, grad.getDInput().getType(), dw,
                                               grad.getInput(), grad.getWeight(), grad.getDy(),
                                               residual, grad.getEpsAttr(), xk::TileAttr());
      if (grad.getDWeight())
        grad.getDWeight().replaceAllUsesWith(k.getDWeight());
      replace(grad.getDInput(), k.getDInput(), add);
      op->erase();
      return success();
    }
    if (auto grad = dyn_cast<xlstm::SwiGLUGradOp>(op)) {
      auto k = b.create<xk::SwiGLUBackwardOp>(loc, grad.getDGate().getType(),
                                              grad.getDUp().getType(), grad.getGate(),
                                              grad.getUp(), grad.getDy(), xk::TileAttr());
      grad.getDGate().replaceAllUsesWith(k.getDGate());
      grad.getDUp().replaceAllUsesWith(k.getDUp());
      op->erase();
      return success();
    }
    if (auto grad = dyn_cast<xlstm::EmbeddingGradOp>(op)) {
      auto [add, addend] = absorbableAdd(grad.getDTable(), op);
      Type table = f32Like(grad.getDTable().getType());
      if (addend && addend.getType() != table)
        return grad.emitError() << "the gradient added to the embedding table's must be f32";
      auto k = b.create<xk::EmbeddingBackwardOp>(loc, table, grad.getTokens(), grad.getDy(),
                                                 addend, xk::TileAttr());
      replace(grad.getDTable(), k.getDTable(), add);
      op->erase();
      return success();
    }
    if (auto grad = dyn_cast<xlstm::MLSTMCellGradOp>(op)) {
      xk::MLSTMChunkwiseOp forward;
      func_.walk([&](xk::MLSTMChunkwiseOp k) {
        if (k.getQ() == grad.getQ() && k.getK() == grad.getK() && k.getV() == grad.getV() &&
            k.getIgate() == grad.getIgate() && k.getFgate() == grad.getFgate() &&
            k.getResets() == grad.getResets())
          forward = k;
      });
      if (!forward)
        return grad.emitError() << "no xk.mlstm_chunkwise of the same q, k, v and gates: the "
                                   "backward reads the forward kernel's saved states";
      auto k = b.create<xk::MLSTMCellGradOp>(
          loc, grad.getDQ().getType(), grad.getDK().getType(), grad.getDV().getType(),
          grad.getDIgate().getType(), grad.getDFgate().getType(), grad.getQ(), grad.getK(),
          grad.getV(), grad.getIgate(), grad.getFgate(), forward.getH(), grad.getDh(),
          grad.getResets(), grad.getNumHeadsAttr(), grad.getEpsAttr(), grad.getGateSoftCapAttr(),
          grad.getInputGateAttr(), grad.getNormalizerAttr(), xk::TileAttr());
      for (auto [from, to] : llvm::zip(grad->getResults(), k->getResults()))
        from.replaceAllUsesWith(to);
      op->erase();
      return success();
    }
    if (isa<xlstm::ConcatOp>(op))
      return success(); // a view the writer assembles
    if (isa<xlstm::SoftCapGradOp, xlstm::LMHeadGradOp>(op))
      return op->emitError() << "has no kernel form in @train_step (the gate soft-cap belongs "
                                "in the cell, the logit cap in the loss head)";
    if (auto add = dyn_cast<xlstm::AddOp>(op)) {
      // A residual add of the forward has a projection to absorb; a sum of gradients is
      // absorbed by the kernel of its later operand, which is lowered before the add is
      // reached — an add still here has neither.
      if (absorbableProjection(add.getLhs()) || absorbableProjection(add.getRhs()))
        return lowerOp(op, CellForm::Chunkwise);
      return op->emitError() << "no kernel computes this sum of gradients: its later operand "
                                "is not the only use of a GEMM, rms_norm_backward or "
                                "embedding_backward result";
    }
    return lowerOp(op, CellForm::Chunkwise);
  }

  /// dX = dZ·W into |dInput|'s uses (absorbing its add), dW = dZᵀ·X (f32) into |dWeight|'s.
  void matmulPair(OpBuilder &b, Location loc, Operation *at, Value dz, Value weight, Value input,
                  Value dInput, Value dWeight) {
    auto [addX, addendX] = absorbableAdd(dInput, at);
    auto dx = b.create<xk::MatmulOp>(loc, dInput.getType(), dz, weight, addendX, UnitAttr(),
                                     UnitAttr(), xk::TileAttr());
    replace(dInput, dx.getResult(), addX);
    RankedTensorType dwType = f32Like(dWeight.getType());
    auto [addW, addendW] = absorbableAdd(dWeight, at);
    if (addendW && addendW.getType() != dwType)
      addW = {}, addendW = {};
    auto dw = b.create<xk::MatmulOp>(loc, dwType, dz, input, addendW, b.getUnitAttr(),
                                     UnitAttr(), xk::TileAttr());
    replace(dWeight, dw.getResult(), addW);
  }

  /// loss(x, W, targets): z = x·Wᵀ in f32 (xk.gemm), then cross_entropy(z, targets, scale) with
  /// the scale of the loss's gradient op, which reads the logits' gradient it leaves in place.
  LogicalResult lowerLoss(xlstm::LMHeadLossOp loss, OpBuilder &b) {
    xlstm::LMHeadLossGradOp grad;
    func_.walk([&](xlstm::LMHeadLossGradOp g) {
      if (g.getInput() == loss.getInput() && g.getWeight() == loss.getWeight() &&
          g.getTargets() == loss.getTargets())
        grad = g;
    });
    if (!grad)
      return loss.emitError() << "the loss has no xlstm.lm_head_loss_grad: @train_step must "
                                 "come from xlc-autodiff";
    auto arg = dyn_cast<BlockArgument>(grad.getDLoss());
    if (!arg)
      return grad.emitError() << "the loss scale must be an argument of @train_step";
    // The kernel takes the loss scale already divided by the number of counted targets (the
    // caller counts them: xk.cross_entropy), so the argument's meaning changes here, and its
    // name with it.
    func_.setArgAttr(arg.getArgNumber(), "xlstm.name", b.getStringAttr("grad_scale"));
    RankedTensorType in = loss.getInput().getType();
    int64_t vocab = loss.getWeight().getType().getDimSize(0);
    SmallVector<int64_t> shape(in.getShape());
    shape.back() = vocab;
    auto logitsType = RankedTensorType::get(shape, Float32Type::get(loss.getContext()));
    Location loc = loss.getLoc();
    auto logits = b.create<xk::GemmOp>(
        loc, logitsType, loss.getInput(), loss.getWeight(), Value(), Value(),
        xk::EpilogueAttr::get(loss.getContext(), xk::Epilogue::None), xk::TileAttr());
    FloatAttr cap = loss.getSoftCapAttr();
    auto ce = b.create<xk::CrossEntropyOp>(loc, grad.getDLoss().getType(), logitsType, logits,
                                           loss.getTargets(), grad.getDLoss(), cap,
                                           xk::TileAttr());
    loss.getLoss().replaceAllUsesWith(ce.getLoss());
    logitGrads_[grad] = ce.getDLogits();
    loss.erase();
    return success();
  }

  func::FuncOp func_;
  llvm::DenseSet<Operation *> erased_;
  llvm::DenseMap<Operation *, Value> logitGrads_;
};

} // namespace

LogicalResult lowerTrainStep(func::FuncOp func) { return TrainStepLowering(func).run(); }

} // namespace xlc::detail
