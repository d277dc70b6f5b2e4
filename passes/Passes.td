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

#endif // XLC_PASSES_TD
