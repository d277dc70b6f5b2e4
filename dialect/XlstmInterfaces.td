//===- XlstmInterfaces.td - xlstm op interfaces ------------*- tablegen -*-===//
//
// DifferentiableOpInterface: how an op differentiates, defined once next to the op, so that a
// new op cannot be used in training without saying so (xlc-autodiff refuses ops without it).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DIALECT_XLSTMINTERFACES_TD
#define XLC_DIALECT_XLSTMINTERFACES_TD

include "mlir/IR/OpBase.td"

def Xlstm_DifferentiableOpInterface : OpInterface<"DifferentiableOpInterface"> {
  let cppNamespace = "::xlc::xlstm";
  let description = [{
    Reverse mode for one op: given ∂L/∂ of each result, build (at the builder's insertion point)
    the ops that compute ∂L/∂ of each operand. A null result gradient means that result does not
    reach the loss; a null operand gradient means no gradient flows into that operand (token
    ids, a recurrent state entering the step). Gradients have the type of the value they belong
    to. The builders mirror the float64 reference gradients of runtime/reference (BlockOps.h,
    MlstmCellBackward.h, ModelBackward.h), which define the math.
  }];
  let methods = [
    InterfaceMethod<[{
        Appends one Value per operand to `operandGrads` (null where no gradient flows).
        Fails (with a diagnostic on the op) when a result gradient it cannot take is present.
      }],
      "::mlir::LogicalResult", "buildGradient",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::ArrayRef<::mlir::Value>":$resultGrads,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>
  ];
}

#endif // XLC_DIALECT_XLSTMINTERFACES_TD
