//===- Passes.td - xlc passes ------------------------------*- tablegen -*-===//
//
// One entry per pass; one .cpp per pass; one lit test per pass named after its flag
// (test/passes/<flag without "xlc-">.mlir).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_PASSES_TD
#define XLC_PASSES_TD

include "mlir/Pass/PassBase.td"

def DecomposeBlocks : Pass<"xlc-decompose-blocks", "::mlir::ModuleOp"> {
  let summary = "Rewrites the composite mLSTM, FFN and SwiGLU-FFN ops into primitive ops.";
  let description = [{
    `xlstm.mlstm_block` becomes RMSNorm, six projections, two gate soft-caps, the mLSTM cell, the
    multi-head LayerNorm, the output gate, the output projection and the residual add
    (xlstm-7b.md §2.2–2.3). `xlstm.ffn_block` becomes RMSNorm, `xlstm.swiglu_ffn` and the residual
    add; `xlstm.swiglu_ffn` becomes two projections, `xlstm.swiglu` and the down projection.

    Before:
    ```mlir
    %y = xlstm.ffn_block %x, %n, %wg, %wu, %wd : ...
    ```
    After:
    ```mlir
    %xn = xlstm.rms_norm %x, %n : ...
    %g = xlstm.linear %xn, %wg : ...
    %u = xlstm.linear %xn, %wu : ...
    %z = xlstm.swiglu %g, %u : ...
    %d = xlstm.linear %z, %wd : ...
    %y = xlstm.add %x, %d : ...
    ```
  }];
  let dependentDialects = ["::xlc::xlstm::XlstmDialect"];
}

def FuseProjections : Pass<"xlc-fuse-projections", "::mlir::ModuleOp"> {
  let summary = "Merges projections of one input into a single projection and a split.";
  let description = [{
    Linear ops that read the same value with weights read from checkpoint parameters, and agree
    on having a bias or not, become one `xlstm.linear` whose weight is an
    `xlstm.assembled_parameter` concatenating the weights (and biases) in program order, followed
    by an `xlstm.split`. In xLSTM 7B this forms q|k|v|o-gate (4096 -> 12288), i|f-gate
    (4096 -> 16, with the concatenated bias) and FFN gate|up (4096 -> 21888): one GEMM each
    instead of six.

    Before:
    ```mlir
    %q = xlstm.linear %x, %wq : ... -> tensor<?x?x2048xbf16>
    %k = xlstm.linear %x, %wk : ... -> tensor<?x?x2048xbf16>
    ```
    After:
    ```mlir
    xlstm.assembled_parameter @fused.q.k : tensor<4096x4096xbf16> = concat [@q, @k]
    %w = xlstm.param @fused.q.k : tensor<4096x4096xbf16>
    %qk = xlstm.linear %x, %w : ... -> tensor<?x?x4096xbf16>
    %q, %k = xlstm.split %qk : ... -> tensor<?x?x2048xbf16>, tensor<?x?x2048xbf16>
    ```
  }];
  let dependentDialects = ["::xlc::xlstm::XlstmDialect"];
}

def FoldNormWeights : Pass<"xlc-fold-norm-weights", "::mlir::ModuleOp"> {
  let summary = "Folds RMSNorm weights into the projections that read the normalised value.";
  let description = [{
    When every user of `xlstm.rms_norm %x, %w` is a projection (`xlstm.linear` or
    `xlstm.lm_head`) whose weight is a parameter, the norm loses its weight and each projection
    weight W becomes W·diag(w) — an `xlstm.assembled_parameter` with `scale_columns`; the loader
    does the multiplication once. Exact algebra: (x̂ ⊙ w) Wᵀ = x̂ (W diag(w))ᵀ.

    Before:
    ```mlir
    %xn = xlstm.rms_norm %x, %w : ...
    %y = xlstm.linear %xn, %W : ...
    ```
    After:
    ```mlir
    xlstm.assembled_parameter @W.scaled : ... = concat [@W] scale_columns @w
    %xn = xlstm.rms_norm %x : ...
    %y = xlstm.linear %xn, %Ws : ...
    ```
  }];
  let dependentDialects = ["::xlc::xlstm::XlstmDialect"];
}

def FuseCellGates : Pass<"xlc-fuse-cell-gates", "::mlir::ModuleOp"> {
  let summary = "Moves the gate soft-caps into the mLSTM cell.";
  let description = [{
    `xlstm.soft_cap` ops whose only user is an `xlstm.mlstm_cell` gate operand (both gates, one
    cap) are removed and the cell gets `gate_soft_cap`: the cell kernel then computes
    soft-cap, log-sigmoid and exponential gating in registers.

    Before:
    ```mlir
    %ic = xlstm.soft_cap %i {cap = 15.0 : f64} : ...
    %fc = xlstm.soft_cap %f {cap = 15.0 : f64} : ...
    %h, %s = xlstm.mlstm_cell %q, %k, %v, %ic, %fc ...
    ```
    After:
    ```mlir
    %h, %s = xlstm.mlstm_cell %q, %k, %v, %i, %f {gate_soft_cap = 15.0 : f64, ...} ...
    ```
  }];
  let dependentDialects = ["::xlc::xlstm::XlstmDialect"];
}

def Autodiff : Pass<"xlc-autodiff", "::mlir::ModuleOp"> {
  let summary = "Builds @train_step (loss and parameter gradients) from @forward by reverse mode.";
  let description = [{
    Clones `@forward` into
    `@train_step(tokens, targets, loss_scale, resets) -> (loss, gradients...)`: every mLSTM cell
    starts from the zero state (the state arguments are dropped) and takes `resets` `[B, S]` (i8,
    nonzero where a document starts inside a sequence: the cell's forget gate is −25 there,
    xlstm-7b.md §6.3; all zeros for none), the LM head
    becomes `xlstm.lm_head_loss` (mean next-token cross-entropy over targets >= 0, no logits),
    and the ops from the loss back to the inputs are differentiated in reverse program order,
    each through its `DifferentiableOpInterface` (an op without one is an error naming it).
    The seed is `loss_scale` (1 for one batch, 1/n when n micro-batches accumulate), so the
    gradients are those of `loss_scale · loss`. Gradients that meet at a value are added
    (`xlstm.add`); a parameter read more than once (tied embeddings) gets one summed gradient.
    Results: the loss, then one gradient per parameter that reaches the loss, in the module's
    declaration order, each tagged `xlstm.gradient_of = @parameter`. `@forward` is kept (the
    inference functions are still built from it). Run it before the passes that fold norm
    weights, so that every checkpoint tensor keeps a gradient of its own.

    Before:
    ```mlir
    func.func @forward(%tokens: tensor<?x?xi32>, %s: !xlstm.state<...>) -> (tensor<?x?x100xf32>, !xlstm.state<...>)
    ```
    After (added):
    ```mlir
    func.func @train_step(%tokens: tensor<?x?xi32>, %targets: tensor<?x?xi32>, %loss_scale: tensor<f32>,
                          %resets: tensor<?x?xi8>)
        -> (tensor<f32> {xlstm.name = "loss"}, tensor<100x16xbf16> {xlstm.gradient_of = @embedding}, ...)
    ```
  }];
  let dependentDialects = ["::xlc::xlstm::XlstmDialect", "::mlir::func::FuncDialect"];
}

def LowerToKernels : Pass<"xlc-lower-to-kernels", "::mlir::ModuleOp"> {
  let summary = "Forms kernels: lowers fused xlstm IR of @forward to xk ops in @prefill, @decode_step and @score.";
  let description = [{
    Specialises `@forward` into three functions:
    - `@prefill`, the prompt prefill of generation: mLSTM cells become `xk.mlstm_chunkwise`,
      and the LM head reads `xlstm.last_position` of its input, so the head's GEMM and soft-cap
      run on one row per sequence and the logits are `[B, 1, V]` (for 8 prompts of 8192
      tokens and V = 50304: 1.5 MiB of fp32 logits instead of 12.3 GiB);
    - `@score`, the same prefill with the logits of every position `[B, S, V]` (scoring,
      parity with other implementations, tests);
    - `@decode_step`: cells become `xk.mlstm_decode_step`; it takes one token per sequence,
      so every `[batch, seq, ...]` tensor of it becomes `[batch, 1, ...]` (its buffers and
      logits do not grow with the prompt length the prefill is planned for).
    It then forms the kernels of all three, fusing elementwise chains into their producers as
    it goes:
    - `xlstm.linear` becomes `xk.gemm` (bias in the epilogue); an `xlstm.add` of a projection's
      only use and another value becomes that GEMM's `residual_add` epilogue;
    - `xlstm.multihead_layer_norm` whose only user is `xlstm.output_gate` becomes one
      `xk.norm_gate`;
    - `xlstm.swiglu` becomes `xk.swiglu` (silu·mul in one pass over the fused gate|up buffer);
    - `xlstm.lm_head` becomes an fp32 `xk.gemm` and, with a cap, `xk.soft_cap` on the logits;
    - `xlstm.embedding`, `xlstm.rms_norm` map one to one; `xlstm.split`, `xlstm.param` and
      `xlstm.last_position` stay (views the kernels read in place).
    An op with no kernel form (a lone `xlstm.add`, a multi-head norm without its output gate, a
    cell without an initial state) is an error naming the op.

    When the module has a `@train_step` (xlc-autodiff), it is lowered in place
    (LowerTrainStep.cpp): its cells start from `xk.zero_state` and keep the two-kernel
    chunkwise form (the backward reads the chunk-start states), the loss becomes an f32 GEMM and
    `xk.cross_entropy`, and each gradient op its kernel (`xk.matmul`, `xk.column_sum`,
    `xk.rms_norm_backward`, `xk.norm_gate_backward`, `xk.swiglu_backward`,
    `xk.embedding_backward`, `xk.mlstm_cell_grad`); sums of gradients are absorbed into the
    kernel of their later operand, and `xlstm.concat` stays (column slices the kernels write).

    Before:
    ```mlir
    %y = xlstm.linear %g, %wout : ...
    %r = xlstm.add %x, %y : ...
    ```
    After:
    ```mlir
    %r = xk.gemm %g, %wout residual %x {epilogue = #xk.epilogue<residual_add>} : ...
    ```
    and the LM head of `@prefill`:
    ```mlir
    %last = xlstm.last_position %xn : tensor<?x?x4096xbf16> -> tensor<?x1x4096xbf16>
    %l = xk.gemm %last, %wh {epilogue = #xk.epilogue<none>} : ... -> tensor<?x1x50304xf32>
    %c = xk.soft_cap %l {cap = 3.000000e+01 : f64} : tensor<?x1x50304xf32>
    ```
  }];
  let dependentDialects = ["::xlc::xk::XkDialect", "::mlir::func::FuncDialect"];
}

def UniformGemmOperands : Pass<"xlc-uniform-gemm-operands", "::mlir::ModuleOp"> {
  let summary = "Gives both operands of every xk.matmul one element type (xk.convert).";
  let description = [{
    cuBLASLt multiplies a type by itself (bf16 × bf16, f32 × f32, accumulating in f32), but the
    backward meets f32 gradients (the logits', from the f32 loss head; the gates', from the
    cell's f32 gate math) with bf16 weights and activations. Each such f32 operand is narrowed
    once to the other operand's type with an `xk.convert` (shared by every product that reads
    it), as llm.c keeps the logits' gradient in bf16. Results keep their types (a weight's
    gradient stays f32).

    Before:
    ```mlir
    %dx = xk.matmul %dz, %w : (tensor<?x?x100xf32>, tensor<100x32xbf16>) -> tensor<?x?x32xbf16>
    ```
    After:
    ```mlir
    %dz16 = xk.convert %dz : tensor<?x?x100xf32> -> tensor<?x?x100xbf16>
    %dx = xk.matmul %dz16, %w : (tensor<?x?x100xbf16>, tensor<100x32xbf16>) -> tensor<?x?x32xbf16>
    ```
  }];
  let dependentDialects = ["::xlc::xk::XkDialect"];
}

def AssignTileConfigs : Pass<"xlc-assign-tile-configs", "::mlir::ModuleOp"> {
  let summary = "Gives every kernel op without one a tile configuration.";
  let description = [{
    Heuristic defaults derived from the op's shapes (head dims, feature sizes, the module's
    `xlstm.chunk_size`), each valid for the device kernel family it selects; a tuning table
    will later override them. Ops that already carry a `tile` keep it.

    Before:
    ```mlir
    %h, %s1 = xk.mlstm_chunkwise ... {num_heads = 8 : i64, ...}
    ```
    After:
    ```mlir
    %h, %s1 = xk.mlstm_chunkwise ... {..., tile = #xk.tile<block_dv = 64, ..., chunk = 64, warps = 4>}
    ```
  }];
  let dependentDialects = ["::xlc::xk::XkDialect"];
}

def RecomputeFfn : Pass<"xlc-recompute-ffn", "::mlir::ModuleOp"> {
  let summary = "Recomputes each SwiGLU FFN's gate|up projection in @train_step's backward.";
  let description = [{
    Activations saved vs recomputed (`xlc-compile --training --recompute ffn`): for every
    `xk.gemm` -> `xlstm.split` -> `xk.swiglu` chain of @train_step's forward whose results the
    backward reads (`xk.swiglu_backward` reads the gate and up halves, the down projection's
    weight-gradient `xk.matmul` the SwiGLU output), the chain is cloned right before the first
    backward op that reads one of them (the backward is everything after the op that produces the
    loss, the first result), and every backward read goes to the clones. The originals die at the
    forward's down projection: 3·F values per token and block less in the arena, for one more
    up-projection GEMM and SwiGLU per block. The clones' locations get the suffix
    `.recomputed`. Run it after CSE, which would merge the clones back.

    Before:
    ```mlir
    %gu = xk.gemm %xn, %w : ...
    %g, %u = xlstm.split %gu : ...
    %a = xk.swiglu %g, %u : ...
    ...                                            // the loss
    %dg, %du = xk.swiglu_backward %g, %u, %da : ...
    ```
    After:
    ```mlir
    ...                                            // the forward as before
    %gu2 = xk.gemm %xn, %w : ...
    %g2, %u2 = xlstm.split %gu2 : ...
    %a2 = xk.swiglu %g2, %u2 : ...
    %dg, %du = xk.swiglu_backward %g2, %u2, %da : ...
    ```
  }];
  let dependentDialects = ["::xlc::xk::XkDialect", "::xlc::xlstm::XlstmDialect"];
}

def VerifyKernelForm : Pass<"xlc-verify-kernel-form", "::mlir::ModuleOp"> {
  let summary = "Checks that a module is in kernel form, ready for code generation.";
  let description = [{
    The seam between the kernel pipeline and codegen: the module has `@prefill` and
    `@decode_step` (and optionally `@score`) and no `@forward`; their bodies hold only xk kernel
    ops, `xlstm.param`, `xlstm.split`, `xlstm.last_position` read only as the A operand of
    `xk.gemm`, and `func.return`; every kernel op other than `xk.gemm` carries a `tile`.
    Anything else is an error naming the op. Changes nothing.

    Before and after (unchanged):
    ```mlir
    func.func @prefill(...) { %x = xk.embedding ... {tile = #xk.tile<threads = 256>} ... }
    ```
  }];
  let dependentDialects = ["::xlc::xk::XkDialect"];
}

#endif // XLC_PASSES_TD
