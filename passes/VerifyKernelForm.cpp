//===- VerifyKernelForm.cpp - The seam between kernels and codegen --------===//
//
// Implements xlc-verify-kernel-form: what the artifact writer assumes, checked once, with a
// diagnostic on the op that breaks it.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#define DEBUG_TYPE "xlc-verify-kernel-form"

namespace xlc {
#define GEN_PASS_DEF_VERIFYKERNELFORM
#include "passes/Passes.h.inc"
} // namespace xlc

using namespace mlir;
using namespace xlc;

namespace {

struct VerifyKernelFormPass : public xlc::impl::VerifyKernelFormBase<VerifyKernelFormPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    bool ok = true;
    if (auto forward = module.lookupSymbol<func::FuncOp>("forward")) {
      forward.emitError() << "@forward is still present: kernel formation has not run";
      ok = false;
    }
    // @score (the prefill with logits at every position) and @train_step (xlc-autodiff) are
    // optional.
    for (StringRef name : {"prefill", "decode_step", "score", "train_step"}) {
      auto func = module.lookupSymbol<func::FuncOp>(name);
      if (!func) {
        if (name != "score" && name != "train_step") {
          module.emitError() << "kernel form needs a @" << name << " function";
          ok = false;
        }
        continue;
      }
      func.walk([&](Operation *op) {
        if (op == func.getOperation() || isa<func::ReturnOp, xlstm::ParamOp, xlstm::SplitOp>(op))
          return;
        // The gradient of a split: column slices of one buffer the kernels write in place.
        if (isa<xlstm::ConcatOp>(op) && name == "train_step")
          return;
        if (auto last = dyn_cast<xlstm::LastPositionOp>(op)) {
          // A view the GEMM reads in place (row stride S·F): no kernel reads it otherwise.
          for (OpOperand &use : last->getUses()) {
            auto gemm = dyn_cast<xk::GemmOp>(use.getOwner());
            if (!gemm || use.get() != gemm.getA() || use.getOperandNumber() != 0) {
              use.getOwner()->emitError()
                  << "reads an xlstm.last_position; only the A operand of an xk.gemm can";
              ok = false;
            }
          }
          return;
        }
        if (!isa<xk::XkDialect>(op->getDialect())) {
          op->emitError() << "is not a kernel: kernel form allows only xk ops, xlstm.param, "
                             "xlstm.split, xlstm.last_position (read by a GEMM) and func.return "
                             "in @"
                          << name;
          ok = false;
          return;
        }
        if (auto matmul = dyn_cast<xk::MatmulOp>(op);
            matmul && matmul.getA().getType().getElementType() !=
                          matmul.getB().getType().getElementType()) {
          op->emitError() << "multiplies operands of two element types (run "
                             "xlc-uniform-gemm-operands)";
          ok = false;
        }
        if (!isa<xk::GemmOp, xk::MatmulOp, xk::ZeroStateOp>(op) &&
            !op->getAttrOfType<xk::TileAttr>("tile")) {
          op->emitError() << "has no tile configuration (run xlc-assign-tile-configs)";
          ok = false;
        }
      });
    }
    if (!ok)
      signalPassFailure();
  }
};

} // namespace
