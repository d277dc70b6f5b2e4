//===- XkEnums.td - Enums of the xk dialect -----------------*- tablegen -*-===//
// Kept apart from XkOps.td so -gen-enum-decls sees only xk's enums (XkOps.td includes the xlstm
// enums too).
#ifndef XLC_DIALECT_XKENUMS_TD
#define XLC_DIALECT_XKENUMS_TD

include "mlir/IR/EnumAttr.td"

def Xk_Epilogue : I32EnumAttr<"Epilogue", "what a GEMM does with its product", [
      I32EnumAttrCase<"None", 0, "none">,
      I32EnumAttrCase<"Bias", 1, "bias">,
      I32EnumAttrCase<"ResidualAdd", 2, "residual_add">
    ]> {
  let cppNamespace = "::xlc::xk";
  let genSpecializedAttr = 0;
}

#endif // XLC_DIALECT_XKENUMS_TD
