//===- XlstmBase.td - xlstm dialect, enums and base classes -*- tablegen -*-===//
//
// The `xlstm` dialect describes xLSTM language models (the mLSTM-only architecture of xLSTM 7B)
// at the model level: parameters bound to checkpoint tensors, the layers of a block, the mLSTM
// cell and the composite blocks that passes decompose.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DIALECT_XLSTMBASE_TD
#define XLC_DIALECT_XLSTMBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Xlstm_Dialect : Dialect {
  let name = "xlstm";
  let cppNamespace = "::xlc::xlstm";
  let summary = "Model-level ops of xLSTM language models (mLSTM cells and blocks).";
  let description = [{
    A model is a module holding `xlstm.parameter` symbols (each bound to a checkpoint tensor
    name) and a `func.func @forward` that maps token ids and one recurrent state per mLSTM cell to
    logits and the updated states. Activations are tensors whose leading dimensions are the
    batch and the sequence (usually dynamic) and whose last dimension is the feature size;
    weights are static tensors in the checkpoint's `[out, in]` layout.

    The mLSTM cell works on the flat feature layout `[B, S, NH*D]` with a `num_heads` attribute;
    the head split is the cell's business (and the kernel's), not the graph's.
  }];
  let useDefaultTypePrinterParser = 1;
  let extraClassDeclaration = [{
    /// Registers the dialect's types (defined next to their storage in XlstmTypes.cpp).
    void registerTypes();
  }];
  let useDefaultAttributePrinterParser = 1;
}

class Xlstm_Op<string mnemonic, list<Trait> traits = []>
    : Op<Xlstm_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Xlstm_InputGateKind : I32EnumAttr<"InputGateKind",
    "activation of the mLSTM input gate", [
      I32EnumAttrCase<"Exp", 0, "exp">,
      I32EnumAttrCase<"Sigmoid", 1, "sigmoid">
    ]> {
  let cppNamespace = "::xlc::xlstm";
  let genSpecializedAttr = 0;
}
def Xlstm_InputGateKindAttr
    : EnumAttr<Xlstm_Dialect, Xlstm_InputGateKind, "input_gate"> {
  let summary = "Input gate activation: exponential (xLSTM 7B) or sigmoid (mLSTMsig).";
  let assemblyFormat = "`<` $value `>`";
}

def Xlstm_NormalizerKind : I32EnumAttr<"NormalizerKind",
    "denominator of the mLSTM readout", [
      I32EnumAttrCase<"MaxAbs", 0, "max_abs">,
      I32EnumAttrCase<"None", 1, "none">
    ]> {
  let cppNamespace = "::xlc::xlstm";
  let genSpecializedAttr = 0;
}
def Xlstm_NormalizerKindAttr
    : EnumAttr<Xlstm_Dialect, Xlstm_NormalizerKind, "normalizer"> {
  let summary = [{Readout denominator: `max_abs` is max(|q̂ᵀn|, exp(-m)) + eps, `none` divides by nothing.}];
  let assemblyFormat = "`<` $value `>`";
}

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

def Xlstm_StateType : TypeDef<Xlstm_Dialect, "State"> {
  let mnemonic = "state";
  let summary = "Recurrent state (C, n, m) of one mLSTM cell for every sequence of a batch.";
  let description = [{
    `!xlstm.state<NHxDQKxDVxT>` holds, per sequence, the matrix memory C `[NH, DQK, DV]`, the
    normaliser n `[NH, DQK]` and the stabiliser m `[NH]`, all of element type T (f32 by default;
    bf16 halves the footprint). The batch dimension is that of the activations the state travels
    with. Its size per sequence is `NH * (DQK*DV + DQK + 1) * sizeof(T)`.

    Example (xLSTM 7B): `!xlstm.state<8x256x512xf32>`, 4,202,528 bytes per sequence and layer.
  }];
  let parameters = (ins "int64_t":$numHeads, "int64_t":$qkHeadDim, "int64_t":$vHeadDim,
                        "::mlir::Type":$elementType);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Number of elements of C, n and m together, per sequence.
    int64_t getElementsPerSequence() const {
      return getNumHeads() * (getQkHeadDim() * getVHeadDim() + getQkHeadDim() + 1);
    }
    /// Bytes per sequence.
    int64_t getBytesPerSequence() const {
      return getElementsPerSequence() * (getElementType().getIntOrFloatBitWidth() / 8);
    }
  }];
}

// The state constraint is declared with the generic C++ type so the printer always spells the
// type out in full (`!xlstm.state<...>`) instead of the dialect-elided short form.
// Document starts [B, S] (i8, nonzero: the token begins a document): the optional `resets` of
// the cell and its gradient (xlstm-7b.md §6.3).
def Xlstm_ResetsTensor : RankedTensorOf<[I8]>;

def Xlstm_AnyState : Type<CPred<"::llvm::isa<::xlc::xlstm::StateType>($_self)">,
                          "xlstm recurrent state", "::mlir::Type">;

#endif // XLC_DIALECT_XLSTMBASE_TD
