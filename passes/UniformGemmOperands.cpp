//===- UniformGemmOperands.cpp - One element type per GEMM ----------------===//
//
// Implements xlc-uniform-gemm-operands (Passes.td): every xk.matmul whose A and B differ in
// element type gets its f32 operand narrowed by an xk.convert placed right after the value's
// definition, one per value, which every product that reads it shares.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "llvm/ADT/DenseMap.h"

namespace xlc {
#define GEN_PASS_DEF_UNIFORMGEMMOPERANDS
#include "passes/Passes.h.inc"
} // namespace xlc

using namespace mlir;
using namespace xlc;

namespace {

struct UniformGemmOperandsPass
    : public xlc::impl::UniformGemmOperandsBase<UniformGemmOperandsPass> {
  void runOnOperation() override {
    bool ok = true;
    getOperation().walk([&](func::FuncOp func) {
      // (value, narrow type) -> its conversion.
      llvm::DenseMap<std::pair<Value, Type>, Value> converted;
      func.walk([&](xk::MatmulOp matmul) {
        Type a = matmul.getA().getType().getElementType();
        Type b = matmul.getB().getType().getElementType();
        if (a == b)
          return;
        // The wider operand is narrowed: f32 meets bf16 or f16.
        const bool narrowA = a.isF32();
        if (!narrowA && !b.isF32()) {
          matmul.emitError() << "operands of " << a << " and " << b
                             << ": only an f32 operand can be narrowed to the other's type";
          ok = false;
          return;
        }
        OpOperand &wide = narrowA ? matmul.getAMutable() : matmul.getBMutable();
        Type narrow = narrowA ? b : a;
        Value &conversion = converted[{wide.get(), narrow}];
        if (!conversion) {
          OpBuilder builder(matmul.getContext());
          if (Operation *def = wide.get().getDefiningOp())
            builder.setInsertionPointAfter(def);
          else
            builder.setInsertionPointToStart(&func.getBody().front());
          auto type = cast<RankedTensorType>(wide.get().getType());
          conversion = builder.create<xk::ConvertOp>(wide.get().getLoc(), type.clone(narrow),
                                                     wide.get(), xk::TileAttr());
        }
        wide.set(conversion);
      });
    });
    if (!ok)
      signalPassFailure();
  }
};

} // namespace
