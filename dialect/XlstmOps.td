//===- XlstmOps.td - xlstm dialect operations --------------*- tablegen -*-===//
//
// Model-level operations. Shape rules live in XlstmShapeRules.cpp as free functions shared by
// the verifiers of the primitive ops and of the composite blocks that contain them.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DIALECT_XLSTMOPS_TD
#define XLC_DIALECT_XLSTMOPS_TD

include "dialect/XlstmBase.td"
include "dialect/XlstmInterfaces.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

def Xlstm_FloatTensor : RankedTensorOf<[AnyFloat]>;
def Xlstm_TokenTensor : RankedTensorOf<[AnySignlessInteger]>;

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def Xlstm_ParameterOp : Xlstm_Op<"parameter", [Symbol, HasParent<"::mlir::ModuleOp">]> {
  let summary = "Declares a model parameter bound to a checkpoint tensor.";
  let description = [{
    A module-level symbol for one weight. `checkpoint` names the tensor in the Hugging Face
    checkpoint (xlstm-7b.md §5.1) that supplies its value; the type is the shape in the
    checkpoint's layout and the element type the model computes with (the loader converts, for
    example fp32 on disk to bf16).

    ```mlir
    xlstm.parameter @blocks.0.mlstm_layer.q.weight : tensor<2048x4096xbf16>
        = "backbone.blocks.0.mlstm_layer.q.weight"
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttr:$type,
                       StrAttr:$checkpoint);
  let assemblyFormat = "$sym_name `:` $type `=` $checkpoint attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
  }];
}

def Xlstm_AssembledParameterOp : Xlstm_Op<"assembled_parameter",
    [Symbol, HasParent<"::mlir::ModuleOp">, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Declares a parameter assembled from checkpoint-bound parameters.";
  let description = [{
    A weight the compiler derives from other `xlstm.parameter`s: the concatenation of `sources`
    along `axis`, then, with `scale_columns`, every row multiplied elementwise by that vector
    parameter (an RMSNorm weight folded into the projection that follows it:
    (x̂ ⊙ w) Wᵀ = x̂ (W diag(w))ᵀ). The loader performs the same assembly; the verifier checks
    that the shapes add up.

    ```mlir
    xlstm.assembled_parameter @blocks.0.qkvo : tensor<12288x4096xbf16>
        = concat [@q, @k, @v, @o] scale_columns @blocks.0.norm_mlstm.weight
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttr:$type,
                       FlatSymbolRefArrayAttr:$sources,
                       DefaultValuedAttr<I64Attr, "0">:$axis,
                       OptionalAttr<FlatSymbolRefAttr>:$scale_columns);
  let assemblyFormat = [{
    $sym_name `:` $type `=` `concat` $sources (`scale_columns` $scale_columns^)? attr-dict
  }];
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
  }];
}

def Xlstm_ParamOp : Xlstm_Op<"param", [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Reads the value of a parameter symbol.";
  let description = [{
    Produces the tensor value of an `xlstm.parameter` or `xlstm.assembled_parameter`. The result
    type must equal the parameter's declared type.

    ```mlir
    %wq = xlstm.param @blocks.0.mlstm_layer.q.weight : tensor<2048x4096xbf16>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Primitive layers
//===----------------------------------------------------------------------===//

def Xlstm_EmbeddingOp : Xlstm_Op<"embedding", [Pure, DeclareOpInterfaceMethods<Xlstm_DifferentiableOpInterface>]> {
  let summary = "Looks up token ids in an embedding table.";
  let description = [{
    `result[b, s, :] = table[tokens[b, s], :]`. No scaling, no positional encoding.

    ```mlir
    %x = xlstm.embedding %table[%tokens]
        : tensor<50304x4096xbf16>, tensor<?x?xi32> -> tensor<?x?x4096xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$table, Xlstm_TokenTensor:$tokens);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = [{
    $table `[` $tokens `]` attr-dict `:` type($table) `,` type($tokens) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Xlstm_RMSNormOp : Xlstm_Op<"rms_norm", [Pure, AllTypesMatch<["input", "result"]>,
    DeclareOpInterfaceMethods<Xlstm_DifferentiableOpInterface>]> {
  let summary = "RMS normalisation over the last dimension, times an optional weight.";
  let description = [{
    `y = x * rsqrt(mean(x^2) + eps) * weight`, reduced in fp32, no bias (xlstm-7b.md §2.2).
    Without `weight` the normalised value is returned (after `xlc-fold-norm-weights` moved the
    weight into the projections that read it).

    ```mlir
    %y = xlstm.rms_norm %x, %w {eps = 1.0e-06 : f64} : tensor<?x?x4096xbf16>, tensor<4096xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Optional<Xlstm_FloatTensor>:$weight,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$eps);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = [{
    $input (`,` $weight^)? attr-dict `:` type($input) (`,` type($weight)^)?
  }];
  let hasVerifier = 1;
}

def Xlstm_LinearOp : Xlstm_Op<"linear", [Pure, DeclareOpInterfaceMethods<Xlstm_DifferentiableOpInterface>]> {
  let summary = "Dense projection y = x Wᵀ (+ b) with W in [out, in] layout.";
  let description = [{
    Contracts the last dimension of `input` with the second dimension of `weight`; the optional
    `bias` has `out` elements.

    ```mlir
    %q = xlstm.linear %x, %wq : tensor<?x?x4096xbf16>, tensor<2048x4096xbf16>
        -> tensor<?x?x2048xbf16>
    %i = xlstm.linear %x, %wi, %bi : tensor<?x?x4096xbf16>, tensor<8x4096xbf16>, tensor<8xbf16>
        -> tensor<?x?x8xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$weight,
                       Optional<Xlstm_FloatTensor>:$bias);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` type($input) `,` type($weight)
    (`,` type($bias)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def Xlstm_SplitOp : Xlstm_Op<"split", [Pure, DeclareOpInterfaceMethods<Xlstm_DifferentiableOpInterface>]> {
  let summary = "Splits the last dimension into consecutive slices.";
  let description = [{
    The inverse of a fused projection: result i holds features
    `[sum(sizes[0..i)), sum(sizes[0..i]))` of the input's last dimension. Kernels read the slices
    in place (a row stride), so a split costs nothing at run time.

    ```mlir
    %q, %k, %v, %o = xlstm.split %qkvo : tensor<?x?x12288xbf16>
        -> tensor<?x?x2048xbf16>, tensor<?x?x2048xbf16>, tensor<?x?x4096xbf16>, tensor<?x?x4096xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input);
  let results = (outs Variadic<Xlstm_FloatTensor>:$results);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($results)";
  let hasVerifier = 1;
}

def Xlstm_LastPositionOp : Xlstm_Op<"last_position", [Pure]> {
  let summary = "Selects the last position of every sequence.";
  let description = [{
    `result[b, 0, :] = input[b, S - 1, :]` for an input `[B, S, F]`: the rows a generation
    prefill needs logits for. Kernel formation puts it in front of the LM head of `@prefill`, so
    the head's GEMM and soft-cap run on B rows instead of B·S. The GEMM reads the selected rows
    in place (a row stride of S·F, the artifact's `a_rows = last_position`), so the selection
    costs nothing at run time; any other consumer is refused by `xlc-verify-kernel-form`.

    ```mlir
    %last = xlstm.last_position %x : tensor<?x?x4096xbf16> -> tensor<?x1x4096xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Xlstm_SoftCapOp : Xlstm_Op<"soft_cap", [Pure, AllTypesMatch<["input", "result"]>,
    DeclareOpInterfaceMethods<Xlstm_DifferentiableOpInterface>]> {
  let summary = "Soft-caps values to (-cap, cap) with cap * tanh(x / cap).";
  let description = [{
    Used on the gate pre-activations (cap 15 in xLSTM 7B) before log-sigmoid/exp.

    ```mlir
    %ic = xlstm.soft_cap %i {cap = 1.500000e+01 : f64} : tensor<?x?x8xf32>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, F64Attr:$cap);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Xlstm_MLSTMCellOp : Xlstm_Op<"mlstm_cell", [Pure, AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<Xlstm_DifferentiableOpInterface>]> {
  let summary = "The mLSTM cell: gated matrix-memory recurrence over a sequence.";
  let description = [{
    Runs the stabilised mLSTM recurrence of xlstm-7b.md §2.5 for every head and sequence:

    ```
    lf_t = logsigmoid(f_t);  m_t = max(lf_t + m_{t-1}, i_t)
    C_t  = exp(lf_t + m_{t-1} - m_t) C_{t-1} + exp(i_t - m_t) k_t v_tᵀ
    n_t  = exp(lf_t + m_{t-1} - m_t) n_{t-1} + exp(i_t - m_t) k_t
    h_t  = (q_t/sqrt(DQK))ᵀ C_t / (max(|(q_t/sqrt(DQK))ᵀ n_t|, exp(-m_t)) + eps)
    ```

    Operands use the flat layout: `q`, `k` are `[B, S, NH*DQK]`, `v` is `[B, S, NH*DV]`,
    `igate`, `fgate` are `[B, S, NH]` (already soft-capped pre-activations). The optional
    `initial_state` defaults to zeros with m = 0. Results: `h` `[B, S, NH*DV]` and the final state.
    With `gate_soft_cap`, the gate operands are raw pre-activations and the cell applies
    `cap * tanh(x / cap)` to both first (the form `xlc-fuse-cell-gates` produces).
    With `input_gate = sigmoid` the input gate is σ(i) (computed as exp of logsigmoid(i)); with
    `normalizer = none` the readout is not divided.

    The optional `resets` `[B, S]` (i8; training's `@train_step` passes them) marks the tokens
    that start a document inside a sequence (xlstm-7b.md §6.3): there the forget gate the
    recurrence uses is f = −25 after any soft cap (logsigmoid(−25) ≈ −25: the carried state is
    scaled by ~1.4e-11), whatever `fgate` holds, and `fgate` gets no gradient there.

    ```mlir
    %h, %s1 = xlstm.mlstm_cell %q, %k, %v, %i, %f init %s0 {num_heads = 8 : i64}
        : (tensor<?x?x2048xbf16>, tensor<?x?x2048xbf16>, tensor<?x?x4096xbf16>,
           tensor<?x?x8xf32>, tensor<?x?x8xf32>, !xlstm.state<8x256x512xf32>)
        -> (tensor<?x?x4096xbf16>, !xlstm.state<8x256x512xf32>)
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$q, Xlstm_FloatTensor:$k, Xlstm_FloatTensor:$v,
                       Xlstm_FloatTensor:$igate, Xlstm_FloatTensor:$fgate,
                       Optional<Xlstm_AnyState>:$initial_state,
                       Optional<Xlstm_ResetsTensor>:$resets,
                       I64Attr:$num_heads,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$eps,
                       OptionalAttr<F64Attr>:$gate_soft_cap,
                       DefaultValuedAttr<Xlstm_InputGateKindAttr, "InputGateKind::Exp">:$input_gate,
                       DefaultValuedAttr<Xlstm_NormalizerKindAttr, "NormalizerKind::MaxAbs">:$normalizer);
  let results = (outs Xlstm_FloatTensor:$h, Xlstm_AnyState:$final_state);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $igate `,` $fgate (`init` $initial_state^)?
    (`resets` `(` $resets^ `:` type($resets) `)`)? attr-dict `:`
    `(` type($q) `,` type($k) `,` type($v) `,` type($igate) `,` type($fgate)
    (`,` type($initial_state)^)? `)` `->` `(` type($h) `,` type($final_state) `)`
  }];
  let hasVerifier = 1;
}

def Xlstm_MultiHeadLayerNormOp : Xlstm_Op<"multihead_layer_norm",
    [Pure, AllTypesMatch<["input", "result"]>, DeclareOpInterfaceMethods<Xlstm_DifferentiableOpInterface>]> {
  let summary = "LayerNorm per (token, head) over each head's values, times a weight.";
  let description = [{
    Splits the last dimension into `num_heads` groups, normalises each group to zero mean and
    unit (biased) variance with `eps`, reduced in fp32, then multiplies by the `[NH*DV]` weight.
    No bias (xlstm-7b.md §2.3 step 5).

    ```mlir
    %y = xlstm.multihead_layer_norm %h, %w {num_heads = 8 : i64}
        : tensor<?x?x4096xbf16>, tensor<4096xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$weight, I64Attr:$num_heads,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$eps);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` type($input) `,` type($weight)";
  let hasVerifier = 1;
}

def Xlstm_OutputGateOp : Xlstm_Op<"output_gate",
    [Pure, AllTypesMatch<["preact", "input", "result"]>, DeclareOpInterfaceMethods<Xlstm_DifferentiableOpInterface>]> {
  let summary = "Applies the mLSTM output gate: sigmoid(preact) * input.";
  let description = [{
    ```mlir
    %y = xlstm.output_gate %o, %h : tensor<?x?x4096xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$preact, Xlstm_FloatTensor:$input);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = "$preact `,` $input attr-dict `:` type($result)";
}

def Xlstm_SwiGLUOp : Xlstm_Op<"swiglu", [Pure, AllTypesMatch<["gate", "up", "result"]>,
    DeclareOpInterfaceMethods<Xlstm_DifferentiableOpInterface>]> {
  let summary = "SwiGLU activation: silu(gate) * up.";
  let description = [{
    ```mlir
    %z = xlstm.swiglu %g, %u : tensor<?x?x10944xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$gate, Xlstm_FloatTensor:$up);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def Xlstm_AddOp : Xlstm_Op<"add", [Pure, Commutative, AllTypesMatch<["lhs", "rhs", "result"]>,
    DeclareOpInterfaceMethods<Xlstm_DifferentiableOpInterface>]> {
  let summary = "Elementwise addition (the residual connections).";
  let description = [{
    ```mlir
    %y = xlstm.add %x, %r : tensor<?x?x4096xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$lhs, Xlstm_FloatTensor:$rhs);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Xlstm_SwiGLUFFNOp : Xlstm_Op<"swiglu_ffn", [Pure]> {
  let summary = "SwiGLU feed-forward network: (silu(x Wgᵀ) * (x Wuᵀ)) Wdᵀ.";
  let description = [{
    `w_gate` and `w_up` are `[F, D]`, `w_down` is `[D, F]` (checkpoint names `proj_up_gate`,
    `proj_up`, `proj_down`; xlstm-7b.md §2.4). Decomposes into three `xlstm.linear` and one
    `xlstm.swiglu`.

    ```mlir
    %y = xlstm.swiglu_ffn %x, %wg, %wu, %wd
        : (tensor<?x?x4096xbf16>, tensor<10944x4096xbf16>, tensor<10944x4096xbf16>,
           tensor<4096x10944xbf16>) -> tensor<?x?x4096xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$w_gate,
                       Xlstm_FloatTensor:$w_up, Xlstm_FloatTensor:$w_down);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Xlstm_LMHeadOp : Xlstm_Op<"lm_head", [Pure, DeclareOpInterfaceMethods<Xlstm_DifferentiableOpInterface>]> {
  let summary = "Output projection to vocabulary logits with an optional logit soft-cap.";
  let description = [{
    `logits = cap * tanh((x Wᵀ) / cap)` with W `[V, D]` (no bias); without `soft_cap` the
    product is returned as is. Logits are produced in the result's element type (f32 in the
    models xlc imports).

    ```mlir
    %logits = xlstm.lm_head %x, %w {soft_cap = 3.000000e+01 : f64}
        : tensor<?x?x4096xbf16>, tensor<50304x4096xbf16> -> tensor<?x?x50304xf32>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$weight,
                       OptionalAttr<F64Attr>:$soft_cap);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Training: the loss and the gradient ops (built by xlc-autodiff through
// DifferentiableOpInterface; the math of each is the float64 reference's, runtime/reference)
//===----------------------------------------------------------------------===//

def Xlstm_LMHeadLossOp : Xlstm_Op<"lm_head_loss", [Pure, DeclareOpInterfaceMethods<Xlstm_DifferentiableOpInterface>]> {
  let summary = "Next-token cross-entropy of the LM head's logits, without the logits.";
  let description = [{
    `loss = mean over positions p with targets[p] >= 0 of -log softmax(logits_p)[targets[p]]`,
    `logits = cap * tanh((x Wᵀ) / cap)` (no cap without `soft_cap`), as `xlstm.lm_head` computes
    them (ModelBackward.h). A negative target is not counted. Kernels compute it over row chunks
    so that the full logits of a batch never exist at once.

    ```mlir
    %loss = xlstm.lm_head_loss %x, %w, %targets {soft_cap = 3.000000e+01 : f64}
        : tensor<?x?x64xbf16>, tensor<50304x64xbf16>, tensor<?x?xi32> -> tensor<f32>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$weight,
                       Xlstm_TokenTensor:$targets, OptionalAttr<F64Attr>:$soft_cap);
  let results = (outs 0DTensorOf<[F32]>:$loss);
  let assemblyFormat = [{
    $input `,` $weight `,` $targets attr-dict `:` type($input) `,` type($weight) `,`
    type($targets) `->` type($loss)
  }];
}

def Xlstm_LMHeadLossGradOp : Xlstm_Op<"lm_head_loss_grad", [Pure,
    AllTypesMatch<["input", "d_input"]>, AllTypesMatch<["weight", "d_weight"]>]> {
  let summary = "Gradient of `xlstm.lm_head_loss` times `d_loss`.";
  let description = [{
    With z = x Wᵀ, l = cap·tanh(z/cap) and n counted positions:
    `dz = d_loss · (softmax(l) − onehot(target)) · (1 − tanh²(z/cap)) / n` on counted rows, 0 on
    the others; `d_input = dz W`, `d_weight = Σ_rows dzᵀ x`.

    ```mlir
    %dx, %dw = xlstm.lm_head_loss_grad %x, %w, %targets, %dloss {soft_cap = 3.000000e+01 : f64}
        : tensor<?x?x64xbf16>, tensor<50304x64xbf16>, tensor<?x?xi32>, tensor<f32>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$weight,
                       Xlstm_TokenTensor:$targets, 0DTensorOf<[F32]>:$d_loss,
                       OptionalAttr<F64Attr>:$soft_cap);
  let results = (outs Xlstm_FloatTensor:$d_input, Xlstm_FloatTensor:$d_weight);
  let assemblyFormat = [{
    $input `,` $weight `,` $targets `,` $d_loss attr-dict `:` type($input) `,` type($weight) `,`
    type($targets) `,` type($d_loss)
  }];
}

def Xlstm_LMHeadGradOp : Xlstm_Op<"lm_head_grad", [Pure,
    AllTypesMatch<["input", "d_input"]>, AllTypesMatch<["weight", "d_weight"]>]> {
  let summary = "Gradient of `xlstm.lm_head` given the logits' gradient.";
  let description = [{
    `dz = d_logits · (1 − tanh²(z/cap))` with z = x Wᵀ recomputed (no cap: dz = d_logits);
    `d_input = dz W`, `d_weight = Σ_rows dzᵀ x`.

    ```mlir
    %dx, %dw = xlstm.lm_head_grad %x, %w, %dl {soft_cap = 3.000000e+01 : f64}
        : tensor<?x?x64xbf16>, tensor<100x64xbf16>, tensor<?x?x100xf32>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$weight,
                       Xlstm_FloatTensor:$d_logits, OptionalAttr<F64Attr>:$soft_cap);
  let results = (outs Xlstm_FloatTensor:$d_input, Xlstm_FloatTensor:$d_weight);
  let assemblyFormat = [{
    $input `,` $weight `,` $d_logits attr-dict `:` type($input) `,` type($weight) `,`
    type($d_logits)
  }];
}

def Xlstm_EmbeddingGradOp : Xlstm_Op<"embedding_grad", [Pure]> {
  let summary = "Gradient of an embedding lookup w.r.t. its table.";
  let description = [{
    `d_table[t, :] = Σ over positions holding token t of dy[b, s, :]`, summed in position order
    (deterministic). The result has the table's type.

    ```mlir
    %dt = xlstm.embedding_grad %tokens, %dy : tensor<?x?xi32>, tensor<?x?x64xbf16>
        -> tensor<100x64xbf16>
    ```
  }];
  let arguments = (ins Xlstm_TokenTensor:$tokens, Xlstm_FloatTensor:$dy);
  let results = (outs Xlstm_FloatTensor:$d_table);
  let assemblyFormat = "$tokens `,` $dy attr-dict `:` type($tokens) `,` type($dy) `->` type($d_table)";
}

def Xlstm_RMSNormGradOp : Xlstm_Op<"rms_norm_grad", [Pure,
    AllTypesMatch<["input", "dy", "d_input"]>]> {
  let summary = "Gradient of `xlstm.rms_norm`.";
  let description = [{
    With r = (mean(x²) + eps)^(−1/2) and g = dy ⊙ w: `d_input = r·g − r³·x·⟨g, x⟩/D`,
    `d_weight = Σ_rows dy ⊙ x·r` (present exactly when `weight` is).

    ```mlir
    %dx, %dw = xlstm.rms_norm_grad %x, %w, %dy {eps = 1.0e-06 : f64}
        : tensor<?x?x64xbf16>, tensor<64xbf16> -> tensor<64xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Optional<Xlstm_FloatTensor>:$weight,
                       Xlstm_FloatTensor:$dy, DefaultValuedAttr<F64Attr, "1.0e-6">:$eps);
  let results = (outs Xlstm_FloatTensor:$d_input, Optional<Xlstm_FloatTensor>:$d_weight);
  let assemblyFormat = [{
    $input (`,` $weight^)? `,` $dy attr-dict `:` type($input) (`,` type($weight)^)?
    (`->` type($d_weight)^)?
  }];
}

def Xlstm_LinearGradOp : Xlstm_Op<"linear_grad", [Pure,
    AllTypesMatch<["input", "d_input"]>, AllTypesMatch<["weight", "d_weight"]>]> {
  let summary = "Gradient of `xlstm.linear` w.r.t. its input, weight and bias.";
  let description = [{
    `d_input = dy W`, `d_weight = Σ_rows dyᵀ x`, and with `has_bias` `d_bias = Σ_rows dy`
    (two GEMMs — one of them transposed and accumulating — and a row sum at the kernel level).

    ```mlir
    %dx, %dw = xlstm.linear_grad %x, %w, %dy
        : tensor<?x?x64xbf16>, tensor<32x64xbf16>, tensor<?x?x32xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$weight, Xlstm_FloatTensor:$dy,
                       UnitAttr:$has_bias);
  let results = (outs Xlstm_FloatTensor:$d_input, Xlstm_FloatTensor:$d_weight,
                      Optional<Xlstm_FloatTensor>:$d_bias);
  let assemblyFormat = [{
    $input `,` $weight `,` $dy attr-dict `:` type($input) `,` type($weight) `,` type($dy)
    (`->` type($d_bias)^)?
  }];
}

def Xlstm_ConcatOp : Xlstm_Op<"concat", [Pure]> {
  let summary = "Concatenates along the last dimension (the gradient of `xlstm.split`).";
  let description = [{
    ```mlir
    %y = xlstm.concat %a, %b : tensor<?x?x8xbf16>, tensor<?x?x8xbf16> -> tensor<?x?x16xbf16>
    ```
  }];
  let arguments = (ins Variadic<Xlstm_FloatTensor>:$inputs);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` type($inputs) `->` type($result)";
  let hasVerifier = 1;
}

def Xlstm_SoftCapGradOp : Xlstm_Op<"soft_cap_grad", [Pure,
    AllTypesMatch<["input", "dy", "d_input"]>]> {
  let summary = "Gradient of `xlstm.soft_cap`: dy · (1 − tanh²(x/cap)).";
  let description = [{
    ```mlir
    %dx = xlstm.soft_cap_grad %x, %dy {cap = 1.500000e+01 : f64} : tensor<?x?x2xf32>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$dy, F64Attr:$cap);
  let results = (outs Xlstm_FloatTensor:$d_input);
  let assemblyFormat = "$input `,` $dy attr-dict `:` type($input)";
}

def Xlstm_MLSTMCellGradOp : Xlstm_Op<"mlstm_cell_grad", [Pure,
    AllTypesMatch<["q", "d_q"]>, AllTypesMatch<["k", "d_k"]>, AllTypesMatch<["v", "d_v"]>,
    AllTypesMatch<["igate", "d_igate"]>, AllTypesMatch<["fgate", "d_fgate"]>,
    AllTypesMatch<["v", "dh"]>]> {
  let summary = "The mLSTM cell's exact gradient w.r.t. q, k, v and the gates.";
  let description = [{
    Reverse mode through `xlstm.mlstm_cell` from the zero initial state (a training sequence
    starts fresh; a state entering the step is a constant): the derivative of the recurrent form
    with the normaliser and the stabiliser differentiated (runtime/reference/MlstmCellBackward.h;
    the kernels organise it chunk by chunk, MlstmChunkwiseBackward.cpp). With `gate_soft_cap` the
    gate gradients are those of the raw pre-activations (the cap's derivative applied). The
    attributes and the optional `resets` are the forward cell's (the forget gate's gradient is 0
    at a reset).

    ```mlir
    %dq, %dk, %dv, %di, %df = xlstm.mlstm_cell_grad %q, %k, %v, %i, %f, %dh {num_heads = 2 : i64}
        : tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x16xbf16>, tensor<?x?x2xf32>,
          tensor<?x?x2xf32>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$q, Xlstm_FloatTensor:$k, Xlstm_FloatTensor:$v,
                       Xlstm_FloatTensor:$igate, Xlstm_FloatTensor:$fgate, Xlstm_FloatTensor:$dh,
                       Optional<Xlstm_ResetsTensor>:$resets,
                       I64Attr:$num_heads,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$eps,
                       OptionalAttr<F64Attr>:$gate_soft_cap,
                       DefaultValuedAttr<Xlstm_InputGateKindAttr, "InputGateKind::Exp">:$input_gate,
                       DefaultValuedAttr<Xlstm_NormalizerKindAttr, "NormalizerKind::MaxAbs">:$normalizer);
  let results = (outs Xlstm_FloatTensor:$d_q, Xlstm_FloatTensor:$d_k, Xlstm_FloatTensor:$d_v,
                      Xlstm_FloatTensor:$d_igate, Xlstm_FloatTensor:$d_fgate);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $igate `,` $fgate `,` $dh (`resets` `(` $resets^ `:` type($resets) `)`)?
    attr-dict `:` type($q) `,` type($k) `,` type($v) `,` type($igate) `,` type($fgate)
  }];
  let hasVerifier = 1;
}

def Xlstm_MultiHeadLayerNormGradOp : Xlstm_Op<"multihead_layer_norm_grad", [Pure,
    AllTypesMatch<["input", "dy", "d_input"]>, AllTypesMatch<["weight", "d_weight"]>]> {
  let summary = "Gradient of `xlstm.multihead_layer_norm`.";
  let description = [{
    Per (token, head) with x̂ the normalised values, r = (var + eps)^(−1/2), g = dy ⊙ w:
    `d_input = r·(g − mean(g) − x̂·mean(g ⊙ x̂))`, `d_weight = Σ_rows dy ⊙ x̂`.

    ```mlir
    %dh, %dw = xlstm.multihead_layer_norm_grad %h, %w, %dy {num_heads = 2 : i64}
        : tensor<?x?x16xbf16>, tensor<16xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$weight, Xlstm_FloatTensor:$dy,
                       I64Attr:$num_heads, DefaultValuedAttr<F64Attr, "1.0e-6">:$eps);
  let results = (outs Xlstm_FloatTensor:$d_input, Xlstm_FloatTensor:$d_weight);
  let assemblyFormat = "$input `,` $weight `,` $dy attr-dict `:` type($input) `,` type($weight)";
}

def Xlstm_OutputGateGradOp : Xlstm_Op<"output_gate_grad", [Pure,
    AllTypesMatch<["preact", "input", "dy", "d_preact", "d_input"]>]> {
  let summary = "Gradient of `xlstm.output_gate`: dy·h·σ(o)σ(−o) and dy·σ(o).";
  let description = [{
    ```mlir
    %do, %dh = xlstm.output_gate_grad %o, %h, %dy : tensor<?x?x16xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$preact, Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$dy);
  let results = (outs Xlstm_FloatTensor:$d_preact, Xlstm_FloatTensor:$d_input);
  let assemblyFormat = "$preact `,` $input `,` $dy attr-dict `:` type($dy)";
}

def Xlstm_SwiGLUGradOp : Xlstm_Op<"swiglu_grad", [Pure,
    AllTypesMatch<["gate", "up", "dy", "d_gate", "d_up"]>]> {
  let summary = "Gradient of `xlstm.swiglu`: dy·u·σ(g)(1 + g·σ(−g)) and dy·silu(g).";
  let description = [{
    ```mlir
    %dg, %du = xlstm.swiglu_grad %g, %u, %dy : tensor<?x?x32xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$gate, Xlstm_FloatTensor:$up, Xlstm_FloatTensor:$dy);
  let results = (outs Xlstm_FloatTensor:$d_gate, Xlstm_FloatTensor:$d_up);
  let assemblyFormat = "$gate `,` $up `,` $dy attr-dict `:` type($dy)";
}

//===----------------------------------------------------------------------===//
// Composite blocks (decomposed by a pass)
//===----------------------------------------------------------------------===//

def Xlstm_MLSTMBlockOp : Xlstm_Op<"mlstm_block", [Pure,
    AllTypesMatch<["input", "result"]>, AllTypesMatch<["wq", "wk"]>,
    AllTypesMatch<["wv", "wo"]>, AllTypesMatch<["wi", "wf"]>, AllTypesMatch<["bi", "bf"]>]> {
  let summary = "Residual mLSTM block: x + mLSTMLayer(RMSNorm(x)).";
  let description = [{
    The pre-norm mLSTM half of an xLSTM 7B block (xlstm-7b.md §2.2, §2.3):

    ```
    x̂ = rms_norm(x, norm)
    q, k, v, o = x̂ Wqᵀ, x̂ Wkᵀ, x̂ Wvᵀ, x̂ Woᵀ        (+ biases when present)
    i, f = soft_cap(x̂ Wiᵀ + bi), soft_cap(x̂ Wfᵀ + bf)  (no cap without gate_soft_cap)
    h, state' = mlstm_cell(q, k, v, i, f, state)
    y = x + (output_gate(o, multihead_layer_norm(h, mh_norm))) Woutᵀ
    ```

    Operands, in order: `input`, `norm` `[D]`, `wq`/`wk` `[NH*DQK, D]`, `wv`/`wo` `[NH*DV, D]`,
    `wi`/`wf` `[NH, D]`, `bi`/`bf` `[NH]`, `mh_norm` `[NH*DV]`, `wout` `[D, NH*DV]`, then the
    optional initial state. Only the gate projections have biases (xLSTM 7B's `use_bias: false`).

    ```mlir
    %y, %s1 = xlstm.mlstm_block %x, %n, %wq, %wk, %wv, %wo, %wi, %wf, %bi, %bf, %mhn, %wout
        init %s0 : !xlstm.state<8x256x512xf32> {num_heads = 8 : i64, gate_soft_cap = 1.500000e+01 : f64}
        : tensor<?x?x4096xbf16>, tensor<4096xbf16>, tensor<2048x4096xbf16>,
          tensor<4096x4096xbf16>, tensor<8x4096xbf16>, tensor<8xbf16>, tensor<4096xbf16>,
          tensor<4096x4096xbf16> -> !xlstm.state<8x256x512xf32>
    ```

    The printed types are, in order, those of `input` (= result), `norm`, `wq` (= `wk`),
    `wv` (= `wo`), `wi` (= `wf`), `bi` (= `bf`), `mh_norm`, `wout`, and the final state.
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$norm,
                       Xlstm_FloatTensor:$wq, Xlstm_FloatTensor:$wk, Xlstm_FloatTensor:$wv,
                       Xlstm_FloatTensor:$wo, Xlstm_FloatTensor:$wi, Xlstm_FloatTensor:$wf,
                       Xlstm_FloatTensor:$bi, Xlstm_FloatTensor:$bf,
                       Xlstm_FloatTensor:$mh_norm, Xlstm_FloatTensor:$wout,
                       Optional<Xlstm_AnyState>:$initial_state,
                       I64Attr:$num_heads,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$norm_eps,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$mh_norm_eps,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$cell_eps,
                       OptionalAttr<F64Attr>:$gate_soft_cap,
                       DefaultValuedAttr<Xlstm_InputGateKindAttr, "InputGateKind::Exp">:$input_gate,
                       DefaultValuedAttr<Xlstm_NormalizerKindAttr, "NormalizerKind::MaxAbs">:$normalizer);
  let results = (outs Xlstm_FloatTensor:$result, Xlstm_AnyState:$final_state);
  let assemblyFormat = [{
    $input `,` $norm `,` $wq `,` $wk `,` $wv `,` $wo `,` $wi `,` $wf `,` $bi `,` $bf `,`
    $mh_norm `,` $wout
    (`init` $initial_state^ `:` type($initial_state))? attr-dict `:`
    type($input) `,` type($norm) `,` type($wq) `,` type($wv) `,` type($wi) `,` type($bi) `,`
    type($mh_norm) `,` type($wout) `->` type($final_state)
  }];
  let hasVerifier = 1;
}

def Xlstm_FFNBlockOp : Xlstm_Op<"ffn_block", [Pure, AllTypesMatch<["input", "result"]>,
    AllTypesMatch<["w_gate", "w_up"]>]> {
  let summary = "Residual SwiGLU block: x + SwiGLU_FFN(RMSNorm(x)).";
  let description = [{
    The pre-norm feed-forward half of an xLSTM 7B block (xlstm-7b.md §2.2, §2.4). Operands:
    `input`, `norm` `[D]`, `w_gate`/`w_up` `[F, D]`, `w_down` `[D, F]`; no biases.

    ```mlir
    %y = xlstm.ffn_block %x, %n, %wg, %wu, %wd
        : tensor<?x?x4096xbf16>, tensor<4096xbf16>, tensor<10944x4096xbf16>, tensor<4096x10944xbf16>
    ```
  }];
  let arguments = (ins Xlstm_FloatTensor:$input, Xlstm_FloatTensor:$norm,
                       Xlstm_FloatTensor:$w_gate, Xlstm_FloatTensor:$w_up,
                       Xlstm_FloatTensor:$w_down,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$norm_eps);
  let results = (outs Xlstm_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $norm `,` $w_gate `,` $w_up `,` $w_down attr-dict `:`
    type($input) `,` type($norm) `,` type($w_gate) `,` type($w_down)
  }];
  let hasVerifier = 1;
}

#endif // XLC_DIALECT_XLSTMOPS_TD
