//===- XkOps.td - The xk kernel-level dialect --------------*- tablegen -*-===//
//
// `xk` ops are the kernels and library calls a compiled model executes: each becomes one or
// more launches (or a cuBLASLt GEMM) in the artifact. They keep tensor semantics; buffers are
// assigned when the artifact is written. Tile configurations are `#xk.tile` attributes whose
// printed form is the kernel variant's identity in caches, tuning tables and logs.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DIALECT_XKOPS_TD
#define XLC_DIALECT_XKOPS_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "dialect/XlstmBase.td"
include "dialect/XkEnums.td"

def Xk_Dialect : Dialect {
  let name = "xk";
  let cppNamespace = "::xlc::xk";
  let summary = "Kernel-level ops of compiled xLSTM models: fused kernels and GEMMs.";
  let description = [{
    Produced by `xlc-lower-to-kernels` from fused `xlstm` IR. Every op is one kernel family
    (or a GEMM with an epilogue) with a `tile` attribute chosen by `xlc-assign-tile-configs`.
  }];
  let useDefaultAttributePrinterParser = 1;
  let dependentDialects = ["::xlc::xlstm::XlstmDialect"];
}

class Xk_Op<string mnemonic, list<Trait> traits = []> : Op<Xk_Dialect, mnemonic, traits>;

def Xk_EpilogueAttr : EnumAttr<Xk_Dialect, Xk_Epilogue, "epilogue"> {
  let assemblyFormat = "`<` $value `>`";
}

def Xk_TileAttr : AttrDef<Xk_Dialect, "Tile"> {
  let mnemonic = "tile";
  let summary = "Tile configuration of a kernel variant: named positive integers.";
  let description = [{
    `#xk.tile<block_dv = 64, chunk = 64, warps = 4>`. Entries print sorted by name, so equal
    configurations print identically: the printed form is the variant's identity (cache keys,
    tuning tables, logs). Which names a family needs is checked by the op that carries it.
  }];
  let parameters = (ins "::mlir::DictionaryAttr":$entries);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The value of entry |name|, or std::nullopt.
    std::optional<int64_t> get(::llvm::StringRef name) const;
    /// The canonical printed form, e.g. "#xk.tile<chunk = 64, warps = 4>".
    std::string str() const;
    static TileAttr get(::mlir::MLIRContext *context,
                        ::llvm::ArrayRef<std::pair<::llvm::StringRef, int64_t>> entries);
  }];
}

def Xk_SizeAttr : AttrDef<Xk_Dialect, "Size"> {
  let mnemonic = "size";
  let summary = "A byte count affine in the batch B and sequence length S.";
  let description = [{
    `#xk.size<c = 0, b = 0, s = 0, bs = 8192>` is `c + b·B + s·S + bs·B·S` bytes: buffer sizes,
    arena offsets and peaks of a plan that holds for every B and S.
  }];
  let parameters = (ins "int64_t":$c, "int64_t":$b, "int64_t":$s, "int64_t":$bs);
  let assemblyFormat = "`<` struct(params) `>`";
}

def Xk_FloatTensor : RankedTensorOf<[AnyFloat]>;

def Xk_GemmOp : Xk_Op<"gemm", [Pure, AttrSizedOperandSegments]> {
  let summary = "D = A·Wᵀ with an epilogue (none, + bias, + residual), through cuBLASLt.";
  let description = [{
    `a` is `[..., K]`, `weight` `[N, K]` (checkpoint layout), the result `[..., N]`. With
    `epilogue = bias` the `[N]` bias is added; with `residual_add` the `residual` (result-typed)
    is added: the residual connections of both block halves fuse here.

    ```mlir
    %y = xk.gemm %a, %w residual %x {epilogue = #xk.epilogue<residual_add>}
        : (tensor<?x?x4096xbf16>, tensor<4096x4096xbf16>, tensor<?x?x4096xbf16>) -> tensor<?x?x4096xbf16>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$a, Xk_FloatTensor:$weight,
                       Optional<Xk_FloatTensor>:$bias, Optional<Xk_FloatTensor>:$residual,
                       Xk_EpilogueAttr:$epilogue, OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$result);
  let assemblyFormat = [{
    $a `,` $weight (`bias` $bias^)? (`residual` $residual^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Xk_EmbeddingOp : Xk_Op<"embedding", [Pure]> {
  let summary = "Gathers embedding rows for token ids (kernel family `embedding`).";
  let description = [{
    ```mlir
    %x = xk.embedding %table[%tokens] : tensor<50304x4096xbf16>, tensor<?x?xi32> -> tensor<?x?x4096xbf16>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$table, RankedTensorOf<[I32]>:$tokens,
                       OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$result);
  let assemblyFormat = [{
    $table `[` $tokens `]` attr-dict `:` type($table) `,` type($tokens) `->` type($result)
  }];
}

def Xk_RMSNormOp : Xk_Op<"rms_norm", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "RMS normalisation with an optional weight (kernel family `rms_norm`).";
  let description = [{
    ```mlir
    %y = xk.rms_norm %x {eps = 1.0e-06 : f64} : tensor<?x?x4096xbf16>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$input, Optional<Xk_FloatTensor>:$weight, F64Attr:$eps,
                       OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$result);
  let assemblyFormat = [{
    $input (`,` $weight^ `:` type($weight))? attr-dict `:` type($input)
  }];
}

def Xk_NormGateOp : Xk_Op<"norm_gate", [Pure, AllTypesMatch<["input", "ogate", "result"]>]> {
  let summary = "Multi-head LayerNorm, weight and sigmoid output gate in one kernel (`norm_gate`).";
  let description = [{
    `y = layer_norm_per_head(h) * weight * sigmoid(o)`: xlstm.multihead_layer_norm followed by
    xlstm.output_gate, with one read of h and o and one write of y.

    ```mlir
    %y = xk.norm_gate %h, %w, %o {num_heads = 8 : i64, eps = 1.0e-06 : f64}
        : tensor<?x?x4096xbf16>, tensor<4096xbf16>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$input, Xk_FloatTensor:$weight, Xk_FloatTensor:$ogate,
                       I64Attr:$num_heads, F64Attr:$eps, OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `,` $ogate attr-dict `:` type($input) `,` type($weight)
  }];
}

def Xk_SwiGLUOp : Xk_Op<"swiglu", [Pure, AllTypesMatch<["gate", "up", "result"]>]> {
  let summary = "silu(gate)·up in one pass over the fused gate|up projection (`swiglu`).";
  let description = [{
    ```mlir
    %z = xk.swiglu %g, %u : tensor<?x?x10944xbf16>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$gate, Xk_FloatTensor:$up, OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def Xk_SoftCapOp : Xk_Op<"soft_cap", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "cap·tanh(x/cap) over the logits, in place (`soft_cap`).";
  let description = [{
    ```mlir
    %l = xk.soft_cap %logits {cap = 3.0e+01 : f64} : tensor<?x?x50304xf32>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$input, F64Attr:$cap, OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

class Xk_MLSTMOp<string mnemonic, string what>
    : Xk_Op<mnemonic, [Pure, AllTypesMatch<["initial_state", "final_state"]>]> {
  let arguments = (ins Xk_FloatTensor:$q, Xk_FloatTensor:$k, Xk_FloatTensor:$v,
                       Xk_FloatTensor:$igate, Xk_FloatTensor:$fgate,
                       Xlstm_AnyState:$initial_state,
                       Optional<Xlstm_ResetsTensor>:$resets,
                       I64Attr:$num_heads, F64Attr:$eps, OptionalAttr<F64Attr>:$gate_soft_cap,
                       Xlstm_InputGateKindAttr:$input_gate, Xlstm_NormalizerKindAttr:$normalizer,
                       OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$h, Xlstm_AnyState:$final_state);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $igate `,` $fgate `,` $initial_state
    (`resets` `(` $resets^ `:` type($resets) `)`)? attr-dict `:`
    `(` type($q) `,` type($k) `,` type($v) `,` type($igate) `,` type($fgate) `,`
    type($initial_state) `)` `->` type($h)
  }];
  let hasVerifier = 1;
}

def Xk_MLSTMChunkwiseOp : Xk_MLSTMOp<"mlstm_chunkwise", "prefill"> {
  let summary = "Chunkwise mLSTM forward over a sequence (prefill, training).";
  let description = [{
    Two-level tiling as TFLA (xlstm-7b.md §3.4): chunk-start states are materialised by a
    sequential kernel, then every chunk's outputs are computed in parallel. Gates are raw
    pre-activations; soft-cap, log-sigmoid and exponential gating happen in the kernel. Any
    sequence length: the last chunk may be partial. With `resets` (training; the two-kernel form
    only) a document's first token has forget gate −25 after the cap (`xlstm.mlstm_cell`). The
    tile names `chunk` (L), `block_q`,
    `block_kv`, `block_dqk`, `block_dv` (the output kernel's DV tile), optionally `state_dv`
    (the state kernel's C-tile columns; block_dv when absent) and `warps`.

    ```mlir
    %h, %s1 = xk.mlstm_chunkwise %q, %k, %v, %i, %f, %s0 {num_heads = 8 : i64, eps = 1.0e-06 : f64,
        gate_soft_cap = 1.5e+01 : f64, input_gate = #xlstm.input_gate<exp>,
        normalizer = #xlstm.normalizer<max_abs>,
        tile = #xk.tile<block_dqk = 64, block_dv = 64, block_kv = 64, block_q = 64, chunk = 64, warps = 4>}
        : (...) -> tensor<?x?x4096xbf16>
    ```
  }];
}

def Xk_MLSTMDecodeStepOp : Xk_MLSTMOp<"mlstm_decode_step", "decode"> {
  let summary = "Fused mLSTM decode step: gates, state update, readout, normalisation.";
  let description = [{
    One token per sequence; one pass over C (read once, written once), xlstm-7b.md §4.2. The
    tile names `block_dv` and `warps`.

    ```mlir
    %h, %s1 = xk.mlstm_decode_step %q, %k, %v, %i, %f, %s0 {..., tile = #xk.tile<block_dv = 64, warps = 4>}
        : (...) -> tensor<?x1x4096xbf16>
    ```
  }];
}

//===----------------------------------------------------------------------===//
// Training: the kernels of @train_step (lowered from xlc-autodiff's gradient ops). Weight
// gradients are f32 whatever the weight's type: they are sums over every token of the batch.
//===----------------------------------------------------------------------===//

def Xk_ZeroStateOp : Xk_Op<"zero_state", [MemoryEffects<[MemAlloc]>]> {
  let summary = "A zero mLSTM state owned by the function (a training sequence starts fresh).";
  let description = [{
    The state buffers behind the result are zeroed before the kernel that reads them. Each op
    is its own buffers (an allocation: never merged with another), since the cell that reads
    it updates it in place.

    ```mlir
    %s0 = xk.zero_state : !xlstm.state<8x256x512xf32>
    ```
  }];
  let results = (outs Xlstm_AnyState:$state);
  let assemblyFormat = "attr-dict `:` type($state)";
}

def Xk_MatmulOp : Xk_Op<"matmul", [Pure]> {
  let summary = "D = op(A)·op(B) (+ addend): the GEMMs of the backward, through cuBLASLt.";
  let description = [{
    A matrix's rows are the product of its tensor's leading dimensions, its columns the last
    one. op(A) = A, or Aᵀ with `trans_a`; op(B) = B, or Bᵀ with `trans_b`. The result is
    `[..., N]` with A's leading dimensions, or the 2-D `[A's columns, N]` with `trans_a` (a
    weight's gradient: dW = dYᵀ·X, summed over every token). With `addend` the product is added
    to it (result-typed): gradients that meet at a value are summed in the GEMM's epilogue.

    ```mlir
    %dx = xk.matmul %dy, %w : (tensor<?x?x32xbf16>, tensor<32x64xbf16>) -> tensor<?x?x64xbf16>
    %dw = xk.matmul %dy, %x {trans_a} : (tensor<?x?x32xbf16>, tensor<?x?x64xbf16>) -> tensor<32x64xf32>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$a, Xk_FloatTensor:$b, Optional<Xk_FloatTensor>:$addend,
                       UnitAttr:$trans_a, UnitAttr:$trans_b, OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$result);
  let assemblyFormat = [{
    $a `,` $b (`addend` $addend^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Xk_ConvertOp : Xk_Op<"convert", [Pure, SameOperandsAndResultShape]> {
  let summary = "The tensor in another float type (`convert`): round to nearest even, or widen.";
  let description = [{
    Where a GEMM's operands come in two types (cuBLASLt multiplies one type by itself;
    `xlc-uniform-gemm-operands` inserts it): the backward's f32 gradients of the logits and of
    the gates narrowed to the bf16 of the weights and activations they meet.

    ```mlir
    %d16 = xk.convert %d : tensor<?x?x50304xf32> -> tensor<?x?x50304xbf16>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$input, OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Xk_CrossEntropyOp : Xk_Op<"cross_entropy", [Pure, AllTypesMatch<["logits", "d_logits"]>,
    AllTypesMatch<["scale", "loss"]>]> {
  let summary = "The loss head: soft-capped cross-entropy and its gradient (`cross_entropy`).";
  let description = [{
    Over pre-cap logits `[..., V]` (f32, replaced in place by their gradient) and targets:
    `loss = scale · Σ_p loss_p` and `d_logits = scale · (softmax(l) − onehot) · cap′` on rows
    with a target ≥ 0 (0 elsewhere), `l = cap·tanh(z/cap)`. `scale` is the step's loss scale
    divided by the number of counted targets (the caller counts them), so the loss is the mean.

    ```mlir
    %loss, %dz = xk.cross_entropy %z, %targets, %scale {cap = 3.0e+01 : f64}
        : tensor<?x?x50304xf32>, tensor<?x?xi32>, tensor<f32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$logits, RankedTensorOf<[I32]>:$targets,
                       0DTensorOf<[F32]>:$scale, OptionalAttr<F64Attr>:$cap,
                       OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs 0DTensorOf<[F32]>:$loss, RankedTensorOf<[F32]>:$d_logits);
  let assemblyFormat = [{
    $logits `,` $targets `,` $scale attr-dict `:` type($logits) `,` type($targets) `,`
    type($scale)
  }];
}

def Xk_RMSNormBackwardOp : Xk_Op<"rms_norm_backward", [Pure,
    AllTypesMatch<["input", "dy", "d_input"]>, AttrSizedOperandSegments]> {
  let summary = "Gradient of `xk.rms_norm` (`rms_norm_backward`); d_weight in f32.";
  let description = [{
    With `residual` the input's gradient is added to it: the two paths of a residual block
    (`x + f(norm(x))`) meet in this kernel's epilogue.

    ```mlir
    %dx, %dw = xk.rms_norm_backward %x, %w : tensor<64xbf16>, %dy residual %dres : tensor<?x?x64xbf16>
        {eps = 1.0e-06 : f64} : tensor<?x?x64xbf16> -> tensor<64xf32>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$input, Optional<Xk_FloatTensor>:$weight,
                       Xk_FloatTensor:$dy, Optional<Xk_FloatTensor>:$residual, F64Attr:$eps,
                       OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$d_input, Optional<RankedTensorOf<[F32]>>:$d_weight);
  let assemblyFormat = [{
    $input (`,` $weight^ `:` type($weight))? `,` $dy (`residual` $residual^ `:` type($residual))?
    attr-dict `:` type($input) (`->` type($d_weight)^)?
  }];  let hasVerifier = 1;
}

def Xk_ColumnSumOp : Xk_Op<"column_sum", [Pure]> {
  let summary = "Σ over rows of a [..., N] tensor, in f32 (a bias's gradient).";
  let description = [{
    Summed in a fixed order (blocks of rows, then the blocks in order): the same bits every run.

    ```mlir
    %db = xk.column_sum %dy : tensor<?x?x8xf32> -> tensor<8xf32>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$input, OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Xk_NormGateBackwardOp : Xk_Op<"norm_gate_backward", [Pure,
    AllTypesMatch<["input", "ogate", "dy", "d_input", "d_ogate"]>]> {
  let summary = "Gradient of `xk.norm_gate` (`norm_gate_backward`); d_weight in f32.";
  let description = [{
    ```mlir
    %dh, %dw, %do = xk.norm_gate_backward %h, %w, %o, %dy {num_heads = 8 : i64, eps = 1.0e-06 : f64}
        : tensor<?x?x4096xbf16>, tensor<4096xbf16> -> tensor<4096xf32>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$input, Xk_FloatTensor:$weight, Xk_FloatTensor:$ogate,
                       Xk_FloatTensor:$dy, I64Attr:$num_heads, F64Attr:$eps,
                       OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$d_input, RankedTensorOf<[F32]>:$d_weight,
                      Xk_FloatTensor:$d_ogate);
  let assemblyFormat = [{
    $input `,` $weight `,` $ogate `,` $dy attr-dict `:` type($input) `,` type($weight) `->`
    type($d_weight)
  }];
}

def Xk_SwiGLUBackwardOp : Xk_Op<"swiglu_backward", [Pure,
    AllTypesMatch<["gate", "up", "dy", "d_gate", "d_up"]>]> {
  let summary = "Gradient of `xk.swiglu` (`swiglu_backward`).";
  let description = [{
    ```mlir
    %dg, %du = xk.swiglu_backward %g, %u, %dy : tensor<?x?x10944xbf16>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$gate, Xk_FloatTensor:$up, Xk_FloatTensor:$dy,
                       OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$d_gate, Xk_FloatTensor:$d_up);
  let assemblyFormat = "$gate `,` $up `,` $dy attr-dict `:` type($dy)";
}

def Xk_EmbeddingBackwardOp : Xk_Op<"embedding_backward", [Pure]> {
  let summary = "Gradient of an embedding lookup w.r.t. its table (`embedding_backward`).";
  let description = [{
    `d_table[t] = addend[t] + Σ over positions holding t of dy` (f32; without `addend` from 0),
    summed in position order.

    ```mlir
    %dt = xk.embedding_backward %tokens, %dy addend %dhead
        : (tensor<?x?xi32>, tensor<?x?x64xbf16>, tensor<100x64xf32>) -> tensor<100x64xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[I32]>:$tokens, Xk_FloatTensor:$dy,
                       Optional<RankedTensorOf<[F32]>>:$addend, OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs RankedTensorOf<[F32]>:$d_table);
  let assemblyFormat = [{
    $tokens `,` $dy (`addend` $addend^)? attr-dict `:` functional-type(operands, results)
  }];
}

def Xk_MLSTMCellGradOp : Xk_Op<"mlstm_cell_grad", [Pure,
    AllTypesMatch<["q", "d_q"]>, AllTypesMatch<["k", "d_k"]>, AllTypesMatch<["v", "d_v"]>,
    AllTypesMatch<["igate", "d_igate"]>, AllTypesMatch<["fgate", "d_fgate"]>,
    AllTypesMatch<["h", "dh"]>]> {
  let summary = "The mLSTM cell's backward (`mlstm_backward_*`, four kernels).";
  let description = [{
    `h` is the result of the `xk.mlstm_chunkwise` that computed the forward from a zero state:
    the backward reads that kernel's saved chunk-start states and its output. The attributes and
    `resets` are the forward's; the tile names `chunk` (the forward's) and `tile`.

    ```mlir
    %dq, %dk, %dv, %di, %df = xk.mlstm_cell_grad %q, %k, %v, %i, %f, %h, %dh {num_heads = 8 : i64, ...}
        : tensor<?x?x2048xbf16>, tensor<?x?x2048xbf16>, tensor<?x?x4096xbf16>, tensor<?x?x8xf32>,
          tensor<?x?x8xf32>, tensor<?x?x4096xbf16>
    ```
  }];
  let arguments = (ins Xk_FloatTensor:$q, Xk_FloatTensor:$k, Xk_FloatTensor:$v,
                       Xk_FloatTensor:$igate, Xk_FloatTensor:$fgate, Xk_FloatTensor:$h,
                       Xk_FloatTensor:$dh, Optional<Xlstm_ResetsTensor>:$resets,
                       I64Attr:$num_heads, F64Attr:$eps, OptionalAttr<F64Attr>:$gate_soft_cap,
                       Xlstm_InputGateKindAttr:$input_gate, Xlstm_NormalizerKindAttr:$normalizer,
                       OptionalAttr<Xk_TileAttr>:$tile);
  let results = (outs Xk_FloatTensor:$d_q, Xk_FloatTensor:$d_k, Xk_FloatTensor:$d_v,
                      Xk_FloatTensor:$d_igate, Xk_FloatTensor:$d_fgate);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $igate `,` $fgate `,` $h `,` $dh
    (`resets` `(` $resets^ `:` type($resets) `)`)? attr-dict `:` type($q) `,` type($k) `,`
    type($v) `,` type($igate) `,` type($fgate) `,` type($h)
  }];
  let hasVerifier = 1;
}

#endif // XLC_DIALECT_XKOPS_TD
