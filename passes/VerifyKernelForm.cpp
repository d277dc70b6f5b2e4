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
    for (StringRef name : {"prefill", "decode_step"}) {
      auto func = module.lookupSymbol<func::FuncOp>(name);
      if (!func) {
        module.emitError() << "kernel form needs a @" << name << " function";
        ok = false;
        continue;
      }
      func.walk([&](Operation *op) {
        if (op == func.getOperation() || isa<func::ReturnOp, xlstm::ParamOp, xlstm::SplitOp>(op))
          return;
        if (!isa<xk::XkDialect>(op->getDialect())) {
          op->emitError() << "is not a kernel: kernel form allows only xk ops, xlstm.param, "
                             "xlstm.split and func.return in @"
                          << name;
          ok = false;
          return;
        }
        if (!isa<xk::GemmOp>(op) && !op->getAttrOfType<xk::TileAttr>("tile")) {
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
