// RUN: xlc-opt %s --split-input-file | xlc-opt --split-input-file | FileCheck %s
// RUN: xlc-opt %s --split-input-file --mlir-print-op-generic | xlc-opt --split-input-file | FileCheck %s

// Tests that parameters and their reads round-trip, with checkpoint names kept verbatim.
// CHECK-LABEL: xlstm.parameter @blocks.0.mlstm_layer.q.weight : tensor<32x64xbf16> = "backbone.blocks.0.mlstm_layer.q.weight"
// CHECK-LABEL: func.func @params
// CHECK: %[[W:.+]] = xlstm.param @blocks.0.mlstm_layer.q.weight : tensor<32x64xbf16>
// CHECK: return %[[W]]
xlstm.parameter @blocks.0.mlstm_layer.q.weight : tensor<32x64xbf16> = "backbone.blocks.0.mlstm_layer.q.weight"
func.func @params() -> tensor<32x64xbf16> {
  %w = xlstm.param @blocks.0.mlstm_layer.q.weight : tensor<32x64xbf16>
  return %w : tensor<32x64xbf16>
}

// -----

// Tests the primitive layers of a block.
// CHECK-LABEL: func.func @layers
// CHECK-SAME: (%[[T:.+]]: tensor<?x?xi32>, %[[E:.+]]: tensor<100x64xbf16>, %[[N:.+]]: tensor<64xbf16>, %[[W:.+]]: tensor<16x64xbf16>, %[[B:.+]]: tensor<16xbf16>
// CHECK: %[[X:.+]] = xlstm.embedding %[[E]][%[[T]]] : tensor<100x64xbf16>, tensor<?x?xi32> -> tensor<?x?x64xbf16>
// CHECK: %[[XN:.+]] = xlstm.rms_norm %[[X]], %[[N]] {eps = 1.000000e-05 : f64} : tensor<?x?x64xbf16>, tensor<64xbf16>
// CHECK: %[[Y:.+]] = xlstm.linear %[[XN]], %[[W]] : tensor<?x?x64xbf16>, tensor<16x64xbf16> -> tensor<?x?x16xbf16>
// CHECK: %[[YB:.+]] = xlstm.linear %[[XN]], %[[W]], %[[B]] : tensor<?x?x64xbf16>, tensor<16x64xbf16>, tensor<16xbf16> -> tensor<?x?x16xbf16>
// CHECK: %[[C:.+]] = xlstm.soft_cap %[[YB]] {cap = 1.500000e+01 : f64} : tensor<?x?x16xbf16>
// CHECK: %[[G:.+]] = xlstm.output_gate %[[Y]], %[[C]] : tensor<?x?x16xbf16>
// CHECK: %[[S:.+]] = xlstm.swiglu %[[G]], %[[Y]] : tensor<?x?x16xbf16>
// CHECK: %[[MH:.+]] = xlstm.multihead_layer_norm %[[S]], %[[B]] {num_heads = 4 : i64} : tensor<?x?x16xbf16>, tensor<16xbf16>
// CHECK: %[[A:.+]] = xlstm.add %[[MH]], %[[Y]] : tensor<?x?x16xbf16>
// CHECK: return %[[A]]
func.func @layers(%tokens: tensor<?x?xi32>, %table: tensor<100x64xbf16>, %norm: tensor<64xbf16>,
                  %w: tensor<16x64xbf16>, %b: tensor<16xbf16>) -> tensor<?x?x16xbf16> {
  %x = xlstm.embedding %table[%tokens] : tensor<100x64xbf16>, tensor<?x?xi32> -> tensor<?x?x64xbf16>
  %xn = xlstm.rms_norm %x, %norm {eps = 1.0e-5 : f64} : tensor<?x?x64xbf16>, tensor<64xbf16>
  %y = xlstm.linear %xn, %w : tensor<?x?x64xbf16>, tensor<16x64xbf16> -> tensor<?x?x16xbf16>
  %yb = xlstm.linear %xn, %w, %b : tensor<?x?x64xbf16>, tensor<16x64xbf16>, tensor<16xbf16> -> tensor<?x?x16xbf16>
  %c = xlstm.soft_cap %yb {cap = 15.0 : f64} : tensor<?x?x16xbf16>
  %g = xlstm.output_gate %y, %c : tensor<?x?x16xbf16>
  %s = xlstm.swiglu %g, %y : tensor<?x?x16xbf16>
  %mh = xlstm.multihead_layer_norm %s, %b {num_heads = 4 : i64} : tensor<?x?x16xbf16>, tensor<16xbf16>
  %a = xlstm.add %mh, %y : tensor<?x?x16xbf16>
  return %a : tensor<?x?x16xbf16>
}

// -----

// Tests the mLSTM cell with and without an initial state, and its non-default attributes.
// CHECK-LABEL: func.func @cell
// CHECK: %[[H0:.+]], %[[S0:.+]] = xlstm.mlstm_cell %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} {num_heads = 2 : i64} : (tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x16xbf16>, tensor<?x?x2xf32>, tensor<?x?x2xf32>) -> (tensor<?x?x16xbf16>, !xlstm.state<2x4x8xf32>)
// CHECK: %[[H1:.+]], %[[S1:.+]] = xlstm.mlstm_cell %{{.+}} init %[[S0]] {eps = 0.000000e+00 : f64, input_gate = #xlstm.input_gate<sigmoid>, normalizer = #xlstm.normalizer<none>, num_heads = 2 : i64}
// CHECK-SAME: !xlstm.state<2x4x8xf32>) -> (tensor<?x?x16xbf16>, !xlstm.state<2x4x8xf32>)
// CHECK: return %[[H1]], %[[S1]]
func.func @cell(%q: tensor<?x?x8xbf16>, %v: tensor<?x?x16xbf16>, %g: tensor<?x?x2xf32>)
    -> (tensor<?x?x16xbf16>, !xlstm.state<2x4x8xf32>) {
  %h0, %s0 = xlstm.mlstm_cell %q, %q, %v, %g, %g {num_heads = 2 : i64}
      : (tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x16xbf16>, tensor<?x?x2xf32>, tensor<?x?x2xf32>)
      -> (tensor<?x?x16xbf16>, !xlstm.state<2x4x8xf32>)
  %h1, %s1 = xlstm.mlstm_cell %q, %q, %v, %g, %g init %s0
      {num_heads = 2 : i64, eps = 0.0 : f64, input_gate = #xlstm.input_gate<sigmoid>, normalizer = #xlstm.normalizer<none>}
      : (tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x16xbf16>, tensor<?x?x2xf32>, tensor<?x?x2xf32>, !xlstm.state<2x4x8xf32>)
      -> (tensor<?x?x16xbf16>, !xlstm.state<2x4x8xf32>)
  return %h1, %s1 : tensor<?x?x16xbf16>, !xlstm.state<2x4x8xf32>
}

// -----

// Tests the document resets of a training cell (with and without an initial state) and of its
// gradient.
// CHECK-LABEL: func.func @cell_resets
// CHECK: xlstm.mlstm_cell %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} resets(%[[R:[^ ]+]] : tensor<?x?xi8>) {num_heads = 2 : i64}
// CHECK: xlstm.mlstm_cell %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} init %{{.+}} resets(%[[R]] : tensor<?x?xi8>) {num_heads = 2 : i64}
// CHECK: xlstm.mlstm_cell_grad %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} resets(%[[R]] : tensor<?x?xi8>) {num_heads = 2 : i64}
func.func @cell_resets(%q: tensor<?x?x8xbf16>, %v: tensor<?x?x16xbf16>, %g: tensor<?x?x2xf32>,
                       %r: tensor<?x?xi8>) -> tensor<?x?x8xbf16> {
  %h0, %s0 = xlstm.mlstm_cell %q, %q, %v, %g, %g resets(%r : tensor<?x?xi8>) {num_heads = 2 : i64}
      : (tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x16xbf16>, tensor<?x?x2xf32>, tensor<?x?x2xf32>)
      -> (tensor<?x?x16xbf16>, !xlstm.state<2x4x8xf32>)
  %h1, %s1 = xlstm.mlstm_cell %q, %q, %v, %g, %g init %s0 resets(%r : tensor<?x?xi8>) {num_heads = 2 : i64}
      : (tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x16xbf16>, tensor<?x?x2xf32>, tensor<?x?x2xf32>, !xlstm.state<2x4x8xf32>)
      -> (tensor<?x?x16xbf16>, !xlstm.state<2x4x8xf32>)
  %dq, %dk, %dv, %di, %df = xlstm.mlstm_cell_grad %q, %q, %v, %g, %g, %h1 resets(%r : tensor<?x?xi8>) {num_heads = 2 : i64}
      : tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x16xbf16>, tensor<?x?x2xf32>, tensor<?x?x2xf32>
  return %dq : tensor<?x?x8xbf16>
}

// -----

// Tests the SwiGLU FFN, the LM head with and without soft-cap, and a bf16 state type.
// CHECK-LABEL: func.func @ffn_head
// CHECK: %[[F:.+]] = xlstm.swiglu_ffn %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} : (tensor<?x?x64xbf16>, tensor<192x64xbf16>, tensor<192x64xbf16>, tensor<64x192xbf16>) -> tensor<?x?x64xbf16>
// CHECK: xlstm.lm_head %[[F]], %{{.+}} {soft_cap = 3.000000e+01 : f64} : tensor<?x?x64xbf16>, tensor<100x64xbf16> -> tensor<?x?x100xf32>
// CHECK: xlstm.lm_head %[[F]], %{{.+}} : tensor<?x?x64xbf16>, tensor<100x64xbf16> -> tensor<?x?x100xf32>
// CHECK: !xlstm.state<8x256x512xbf16>
func.func @ffn_head(%x: tensor<?x?x64xbf16>, %wg: tensor<192x64xbf16>, %wd: tensor<64x192xbf16>,
                    %wl: tensor<100x64xbf16>, %s: !xlstm.state<8x256x512xbf16>)
    -> (tensor<?x?x100xf32>, tensor<?x?x100xf32>, !xlstm.state<8x256x512xbf16>) {
  %f = xlstm.swiglu_ffn %x, %wg, %wg, %wd
      : (tensor<?x?x64xbf16>, tensor<192x64xbf16>, tensor<192x64xbf16>, tensor<64x192xbf16>) -> tensor<?x?x64xbf16>
  %l = xlstm.lm_head %f, %wl {soft_cap = 30.0 : f64} : tensor<?x?x64xbf16>, tensor<100x64xbf16> -> tensor<?x?x100xf32>
  %u = xlstm.lm_head %f, %wl : tensor<?x?x64xbf16>, tensor<100x64xbf16> -> tensor<?x?x100xf32>
  return %l, %u, %s : tensor<?x?x100xf32>, tensor<?x?x100xf32>, !xlstm.state<8x256x512xbf16>
}

// -----

// Tests the selection of each sequence's last position (the generation prefill's LM head input).
// CHECK-LABEL: func.func @last_position
// CHECK: %[[L:.+]] = xlstm.last_position %{{.+}} : tensor<?x?x64xbf16> -> tensor<?x1x64xbf16>
// CHECK: xlstm.lm_head %[[L]], %{{.+}} : tensor<?x1x64xbf16>, tensor<100x64xbf16> -> tensor<?x1x100xf32>
func.func @last_position(%x: tensor<?x?x64xbf16>, %wl: tensor<100x64xbf16>) -> tensor<?x1x100xf32> {
  %last = xlstm.last_position %x : tensor<?x?x64xbf16> -> tensor<?x1x64xbf16>
  %l = xlstm.lm_head %last, %wl : tensor<?x1x64xbf16>, tensor<100x64xbf16> -> tensor<?x1x100xf32>
  return %l : tensor<?x1x100xf32>
}

// -----

// Tests the composite blocks.
// CHECK-LABEL: func.func @blocks
// CHECK: %[[Y:.+]], %[[S:.+]] = xlstm.mlstm_block %{{.+}} init %{{.+}} : !xlstm.state<2x16x32xf32> {gate_soft_cap = 1.500000e+01 : f64, num_heads = 2 : i64} : tensor<?x?x64xbf16>, tensor<64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>, tensor<2x64xbf16>, tensor<2xbf16>, tensor<64xbf16>, tensor<64x64xbf16> -> !xlstm.state<2x16x32xf32>
// CHECK: %[[Z:.+]], %{{.+}} = xlstm.mlstm_block %[[Y]], {{.+}} {input_gate = #xlstm.input_gate<sigmoid>, num_heads = 2 : i64}
// CHECK: %[[F:.+]] = xlstm.ffn_block %[[Z]], %{{.+}} {norm_eps = 1.000000e-05 : f64} : tensor<?x?x64xbf16>, tensor<64xbf16>, tensor<192x64xbf16>, tensor<64x192xbf16>
// CHECK: return %[[F]], %[[S]]
func.func @blocks(%x: tensor<?x?x64xbf16>, %n: tensor<64xbf16>, %wqk: tensor<32x64xbf16>,
                  %wvo: tensor<64x64xbf16>, %wif: tensor<2x64xbf16>, %bif: tensor<2xbf16>,
                  %wg: tensor<192x64xbf16>, %wd: tensor<64x192xbf16>, %s0: !xlstm.state<2x16x32xf32>)
    -> (tensor<?x?x64xbf16>, !xlstm.state<2x16x32xf32>) {
  %y, %s1 = xlstm.mlstm_block %x, %n, %wqk, %wqk, %wvo, %wvo, %wif, %wif, %bif, %bif, %n, %wvo
      init %s0 : !xlstm.state<2x16x32xf32> {num_heads = 2 : i64, gate_soft_cap = 15.0 : f64}
      : tensor<?x?x64xbf16>, tensor<64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>,
        tensor<2x64xbf16>, tensor<2xbf16>, tensor<64xbf16>, tensor<64x64xbf16> -> !xlstm.state<2x16x32xf32>
  %z, %s2 = xlstm.mlstm_block %y, %n, %wqk, %wqk, %wvo, %wvo, %wif, %wif, %bif, %bif, %n, %wvo
      {num_heads = 2 : i64, input_gate = #xlstm.input_gate<sigmoid>}
      : tensor<?x?x64xbf16>, tensor<64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>,
        tensor<2x64xbf16>, tensor<2xbf16>, tensor<64xbf16>, tensor<64x64xbf16> -> !xlstm.state<2x16x32xf32>
  %f = xlstm.ffn_block %z, %n, %wg, %wg, %wd {norm_eps = 1.0e-5 : f64}
      : tensor<?x?x64xbf16>, tensor<64xbf16>, tensor<192x64xbf16>, tensor<64x192xbf16>
  return %f, %s1 : tensor<?x?x64xbf16>, !xlstm.state<2x16x32xf32>
}

// -----

// Tests assembled parameters (fused and folded weights) and splits of fused projections.
// CHECK: xlstm.assembled_parameter @qk : tensor<64x64xbf16> = concat [@q, @k] scale_columns @n
// CHECK: xlstm.assembled_parameter @qk1 : tensor<32x128xbf16> = concat [@q, @k] {axis = 1 : i64}
// CHECK-LABEL: func.func @split
// CHECK: %[[W:.+]] = xlstm.param @qk : tensor<64x64xbf16>
// CHECK: %[[P:.+]] = xlstm.linear %{{.+}}, %[[W]]
// CHECK: %[[S:.+]]:2 = xlstm.split %[[P]] : tensor<?x?x64xbf16> -> tensor<?x?x32xbf16>, tensor<?x?x32xbf16>
// CHECK: return %[[S]]#1
xlstm.parameter @q : tensor<32x64xbf16> = "q"
xlstm.parameter @k : tensor<32x64xbf16> = "k"
xlstm.parameter @n : tensor<64xbf16> = "n"
xlstm.assembled_parameter @qk : tensor<64x64xbf16> = concat [@q, @k] scale_columns @n
xlstm.assembled_parameter @qk1 : tensor<32x128xbf16> = concat [@q, @k] {axis = 1 : i64}
func.func @split(%x: tensor<?x?x64xbf16>) -> tensor<?x?x32xbf16> {
  %w = xlstm.param @qk : tensor<64x64xbf16>
  %p = xlstm.linear %x, %w : tensor<?x?x64xbf16>, tensor<64x64xbf16> -> tensor<?x?x64xbf16>
  %a, %b = xlstm.split %p : tensor<?x?x64xbf16> -> tensor<?x?x32xbf16>, tensor<?x?x32xbf16>
  return %b : tensor<?x?x32xbf16>
}
