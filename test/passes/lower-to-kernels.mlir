// RUN: xlc-opt %s --split-input-file --xlc-lower-to-kernels --verify-diagnostics | FileCheck %s

// Tests kernel formation: @forward becomes @prefill (chunkwise cell, the LM head on the last
// position of each sequence only), @decode_step (decode-step cell, one token per sequence: every
// [batch, seq, ...] type gets seq = 1) and @score (chunkwise cell, logits at every position); the
// residual add fuses into the out-projection GEMM, the multi-head norm and output gate into
// norm_gate, the gate bias into a GEMM epilogue, and the LM head's cap into a soft_cap kernel.
// CHECK-NOT: func.func @forward
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: (%[[T:[^:]+]]: tensor<?x?xi32>, %[[S0:[^:]+]]: !xlstm.state<2x16x32xf32>) -> (tensor<?x1x100xf32>, !xlstm.state<2x16x32xf32>)
// CHECK: %[[X:.+]] = xk.embedding %{{.+}}[%[[T]]]
// CHECK: %[[XN:.+]] = xk.rms_norm %[[X]] {eps = 9.9999999999999995E-7 : f64} : tensor<?x?x64xbf16>
// CHECK: %[[P:.+]] = xk.gemm %[[XN]], %{{.+}} {epilogue = #xk.epilogue<none>} : (tensor<?x?x64xbf16>, tensor<192x64xbf16>) -> tensor<?x?x192xbf16>
// CHECK: %[[S:.+]]:4 = xlstm.split %[[P]]
// CHECK: %[[G:.+]] = xk.gemm %[[XN]], %{{.+}} bias %{{.+}} {epilogue = #xk.epilogue<bias>}
// CHECK: %[[GS:.+]]:2 = xlstm.split %[[G]]
// CHECK: %[[H:.+]], %[[S1:.+]] = xk.mlstm_chunkwise %[[S]]#0, %[[S]]#1, %[[S]]#2, %[[GS]]#0, %[[GS]]#1, %[[S0]] {eps = 9.9999999999999995E-7 : f64, gate_soft_cap = 1.500000e+01 : f64, input_gate = #xlstm.input_gate<exp>, normalizer = #xlstm.normalizer<max_abs>, num_heads = 2 : i64}
// CHECK: %[[NG:.+]] = xk.norm_gate %[[H]], %{{.+}}, %[[S]]#3 {eps = 9.9999999999999995E-7 : f64, num_heads = 2 : i64}
// CHECK: %[[R:.+]] = xk.gemm %[[NG]], %{{.+}} residual %[[X]] {epilogue = #xk.epilogue<residual_add>}
// CHECK: %[[LAST:.+]] = xlstm.last_position %[[R]] : tensor<?x?x64xbf16> -> tensor<?x1x64xbf16>
// CHECK: %[[L:.+]] = xk.gemm %[[LAST]], %{{.+}} {epilogue = #xk.epilogue<none>} : (tensor<?x1x64xbf16>, tensor<100x64xbf16>) -> tensor<?x1x100xf32>
// CHECK: %[[C:.+]] = xk.soft_cap %[[L]] {cap = 3.000000e+01 : f64} : tensor<?x1x100xf32>
// CHECK: return %[[C]], %[[S1]]
// CHECK-LABEL: func.func @decode_step
// CHECK-SAME: (%{{[^:]+}}: tensor<?x1xi32>, %{{[^:]+}}: !xlstm.state<2x16x32xf32>) -> (tensor<?x1x100xf32>, !xlstm.state<2x16x32xf32>)
// CHECK: xk.mlstm_decode_step {{.+}} : (tensor<?x1x32xbf16>, tensor<?x1x32xbf16>, tensor<?x1x64xbf16>, tensor<?x1x2xbf16>, tensor<?x1x2xbf16>, !xlstm.state<2x16x32xf32>) -> tensor<?x1x64xbf16>
// CHECK-NOT: xk.mlstm_chunkwise
// CHECK-NOT: xlstm.last_position
// CHECK: xk.gemm %{{.+}}, %{{.+}} {epilogue = #xk.epilogue<none>} : (tensor<?x1x64xbf16>, tensor<100x64xbf16>) -> tensor<?x1x100xf32>
// CHECK-LABEL: func.func @score
// CHECK-SAME: (%{{[^:]+}}: tensor<?x?xi32>, %{{[^:]+}}: !xlstm.state<2x16x32xf32>) -> (tensor<?x?x100xf32>, !xlstm.state<2x16x32xf32>)
// CHECK: xk.mlstm_chunkwise
// CHECK-NOT: xlstm.last_position
// CHECK: %[[SL:.+]] = xk.gemm %{{.+}}, %{{.+}} {epilogue = #xk.epilogue<none>} : (tensor<?x?x64xbf16>, tensor<100x64xbf16>) -> tensor<?x?x100xf32>
// CHECK: %[[SC:.+]] = xk.soft_cap %[[SL]] {cap = 3.000000e+01 : f64} : tensor<?x?x100xf32>
// CHECK: return %[[SC]]
// CHECK-NOT: xlstm.linear
// CHECK-NOT: xlstm.add
xlstm.parameter @emb : tensor<100x64xbf16> = "emb"
xlstm.parameter @qkvo : tensor<192x64xbf16> = "qkvo"
xlstm.parameter @if : tensor<4x64xbf16> = "if"
xlstm.parameter @ifb : tensor<4xbf16> = "ifb"
xlstm.parameter @mh : tensor<64xbf16> = "mh"
xlstm.parameter @out : tensor<64x64xbf16> = "out"
xlstm.parameter @head : tensor<100x64xbf16> = "head"
func.func @forward(%tokens: tensor<?x?xi32>, %s0: !xlstm.state<2x16x32xf32>) -> (tensor<?x?x100xf32>, !xlstm.state<2x16x32xf32>) {
  %emb = xlstm.param @emb : tensor<100x64xbf16>
  %x = xlstm.embedding %emb[%tokens] : tensor<100x64xbf16>, tensor<?x?xi32> -> tensor<?x?x64xbf16>
  %xn = xlstm.rms_norm %x : tensor<?x?x64xbf16>
  %wqkvo = xlstm.param @qkvo : tensor<192x64xbf16>
  %p = xlstm.linear %xn, %wqkvo : tensor<?x?x64xbf16>, tensor<192x64xbf16> -> tensor<?x?x192xbf16>
  %q, %k, %v, %o = xlstm.split %p : tensor<?x?x192xbf16> -> tensor<?x?x32xbf16>, tensor<?x?x32xbf16>, tensor<?x?x64xbf16>, tensor<?x?x64xbf16>
  %wif = xlstm.param @if : tensor<4x64xbf16>
  %bif = xlstm.param @ifb : tensor<4xbf16>
  %g = xlstm.linear %xn, %wif, %bif : tensor<?x?x64xbf16>, tensor<4x64xbf16>, tensor<4xbf16> -> tensor<?x?x4xbf16>
  %i, %f = xlstm.split %g : tensor<?x?x4xbf16> -> tensor<?x?x2xbf16>, tensor<?x?x2xbf16>
  %h, %s1 = xlstm.mlstm_cell %q, %k, %v, %i, %f init %s0 {num_heads = 2 : i64, gate_soft_cap = 15.0 : f64}
      : (tensor<?x?x32xbf16>, tensor<?x?x32xbf16>, tensor<?x?x64xbf16>, tensor<?x?x2xbf16>, tensor<?x?x2xbf16>, !xlstm.state<2x16x32xf32>)
      -> (tensor<?x?x64xbf16>, !xlstm.state<2x16x32xf32>)
  %mh = xlstm.param @mh : tensor<64xbf16>
  %hn = xlstm.multihead_layer_norm %h, %mh {num_heads = 2 : i64} : tensor<?x?x64xbf16>, tensor<64xbf16>
  %gated = xlstm.output_gate %o, %hn : tensor<?x?x64xbf16>
  %wout = xlstm.param @out : tensor<64x64xbf16>
  %y = xlstm.linear %gated, %wout : tensor<?x?x64xbf16>, tensor<64x64xbf16> -> tensor<?x?x64xbf16>
  %r = xlstm.add %x, %y : tensor<?x?x64xbf16>
  %wh = xlstm.param @head : tensor<100x64xbf16>
  %l = xlstm.lm_head %r, %wh {soft_cap = 30.0 : f64} : tensor<?x?x64xbf16>, tensor<100x64xbf16> -> tensor<?x?x100xf32>
  return %l, %s1 : tensor<?x?x100xf32>, !xlstm.state<2x16x32xf32>
}

// -----

// Tests that a residual add with no projection to absorb is an error naming the op.
func.func @forward(%a: tensor<?x?x64xbf16>, %b: tensor<?x?x64xbf16>) -> tensor<?x?x64xbf16> {
  // expected-error @+1 {{no kernel computes a residual add}}
  %r = xlstm.add %a, %b : tensor<?x?x64xbf16>
  return %r : tensor<?x?x64xbf16>
}

// -----

// Tests that @prefill refuses logits that feed anything but the return: it computes them for
// the last position of each sequence only.
xlstm.parameter @head : tensor<100x64xbf16> = "head"
func.func @forward(%x: tensor<?x?x64xbf16>) -> tensor<?x?x100xf32> {
  %wh = xlstm.param @head : tensor<100x64xbf16>
  %l = xlstm.lm_head %x, %wh : tensor<?x?x64xbf16>, tensor<100x64xbf16> -> tensor<?x?x100xf32>
  // expected-error @+1 {{reads the logits of every position, but @prefill computes only the last one per sequence}}
  %c = xlstm.soft_cap %l {cap = 5.0 : f64} : tensor<?x?x100xf32>
  return %c : tensor<?x?x100xf32>
}
