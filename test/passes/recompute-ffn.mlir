// RUN: xlc-opt %s --xlc-recompute-ffn --mlir-print-debuginfo --mlir-print-local-scope | FileCheck %s
// RUN: xlc-opt %s --xlc-recompute-ffn --xlc-recompute-ffn | FileCheck %s --check-prefix=TWICE

// The backward reads the gate and up halves (swiglu_backward) and the SwiGLU output (the down
// projection's weight gradient): the gemm -> split -> swiglu chain is cloned before the first of
// those reads, with ".recomputed" locations, and both reads go to the clones. The forward's own
// chain still feeds the down projection (the loss here, @train_step's first result).
// CHECK-LABEL: func.func @train_step
// CHECK:       %[[GU:.+]] = xk.gemm %arg0, %arg1
// CHECK:       %[[S:.+]]:2 = xlstm.split %[[GU]]
// CHECK:       %[[A:.+]] = xk.swiglu %[[S]]#0, %[[S]]#1
// CHECK:       %[[Y:.+]] = xk.gemm %[[A]], %arg2
// CHECK-NEXT:  %[[GU2:.+]] = xk.gemm %arg0, %arg1 {{.+}} loc("blocks.0.ffn.gate_up.recomputed")
// CHECK-NEXT:  %[[S2:.+]]:2 = xlstm.split %[[GU2]] {{.+}} loc("blocks.0.ffn.split.recomputed")
// CHECK-NEXT:  %[[A2:.+]] = xk.swiglu %[[S2]]#0, %[[S2]]#1 {{.+}} loc("blocks.0.ffn.act.recomputed")
// CHECK-NEXT:  %[[DW:.+]] = xk.matmul %arg3, %[[A2]] {trans_a}
// CHECK-NEXT:  xk.swiglu_backward %[[S2]]#0, %[[S2]]#1, %arg4
// CHECK:       return %[[Y]], %[[DW]]
// A second run finds the backward reading only the clones (which are after the loss): nothing more.
// TWICE-LABEL: func.func @train_step
// TWICE-COUNT-2: xk.swiglu %
// TWICE-NOT: xk.swiglu %
// TWICE-LABEL: func.func @prefill
func.func @train_step(%x: tensor<?x?x64xbf16>, %w: tensor<384x64xbf16>, %wd: tensor<64x192xbf16>,
                      %dy: tensor<?x?x64xbf16>, %da: tensor<?x?x192xbf16>)
    -> (tensor<?x?x64xbf16>, tensor<64x192xf32>, tensor<?x?x192xbf16>, tensor<?x?x192xbf16>) {
  %gu = xk.gemm %x, %w {epilogue = #xk.epilogue<none>} : (tensor<?x?x64xbf16>, tensor<384x64xbf16>) -> tensor<?x?x384xbf16> loc("blocks.0.ffn.gate_up")
  %s:2 = xlstm.split %gu : tensor<?x?x384xbf16> -> tensor<?x?x192xbf16>, tensor<?x?x192xbf16> loc("blocks.0.ffn.split")
  %a = xk.swiglu %s#0, %s#1 {tile = #xk.tile<threads = 32>} : tensor<?x?x192xbf16> loc("blocks.0.ffn.act")
  %y = xk.gemm %a, %wd {epilogue = #xk.epilogue<none>} : (tensor<?x?x192xbf16>, tensor<64x192xbf16>) -> tensor<?x?x64xbf16>
  %dw = xk.matmul %dy, %a {trans_a} : (tensor<?x?x64xbf16>, tensor<?x?x192xbf16>) -> tensor<64x192xf32>
  %dg, %du = xk.swiglu_backward %s#0, %s#1, %da {tile = #xk.tile<threads = 32>} : tensor<?x?x192xbf16>
  return %y, %dw, %dg, %du : tensor<?x?x64xbf16>, tensor<64x192xf32>, tensor<?x?x192xbf16>, tensor<?x?x192xbf16>
}

// The same chain in an inference function, and one whose output only the forward reads in
// @train_step: left alone.
// CHECK-LABEL: func.func @prefill
// CHECK-COUNT-1: xk.swiglu %
// CHECK-NOT: recomputed
func.func @prefill(%x: tensor<?x?x64xbf16>, %w: tensor<384x64xbf16>) -> tensor<?x?x192xbf16> {
  %gu = xk.gemm %x, %w {epilogue = #xk.epilogue<none>} : (tensor<?x?x64xbf16>, tensor<384x64xbf16>) -> tensor<?x?x384xbf16>
  %s:2 = xlstm.split %gu : tensor<?x?x384xbf16> -> tensor<?x?x192xbf16>, tensor<?x?x192xbf16>
  %a = xk.swiglu %s#0, %s#1 {tile = #xk.tile<threads = 32>} : tensor<?x?x192xbf16>
  return %a : tensor<?x?x192xbf16>
}
