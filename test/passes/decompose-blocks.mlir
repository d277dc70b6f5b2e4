// RUN: xlc-opt %s --split-input-file --xlc-decompose-blocks | FileCheck %s

// Tests that an mLSTM block becomes norm, six projections, capped gates, the cell, the
// multi-head norm, the output gate, the output projection and the residual add, in that order.
// CHECK-LABEL: func.func @mlstm_block
// CHECK-SAME: (%[[X:[^:]+]]: tensor<?x?x64xbf16>, %[[N:[^:]+]]: tensor<64xbf16>, %[[WQK:[^:]+]]: tensor<32x64xbf16>, %[[WVO:[^:]+]]: tensor<64x64xbf16>, %[[WIF:[^:]+]]: tensor<2x64xbf16>, %[[BIF:[^:]+]]: tensor<2xbf16>, %[[S0:[^:]+]]: !xlstm.state<2x16x32xf32>)
// CHECK: %[[XN:.+]] = xlstm.rms_norm %[[X]], %[[N]] : tensor<?x?x64xbf16>, tensor<64xbf16>
// CHECK: %[[Q:.+]] = xlstm.linear %[[XN]], %[[WQK]] : {{.+}} -> tensor<?x?x32xbf16>
// CHECK: %[[K:.+]] = xlstm.linear %[[XN]], %[[WQK]] : {{.+}} -> tensor<?x?x32xbf16>
// CHECK: %[[V:.+]] = xlstm.linear %[[XN]], %[[WVO]] : {{.+}} -> tensor<?x?x64xbf16>
// CHECK: %[[O:.+]] = xlstm.linear %[[XN]], %[[WVO]] : {{.+}} -> tensor<?x?x64xbf16>
// CHECK: %[[I:.+]] = xlstm.linear %[[XN]], %[[WIF]], %[[BIF]] : {{.+}} -> tensor<?x?x2xf32>
// CHECK: %[[F:.+]] = xlstm.linear %[[XN]], %[[WIF]], %[[BIF]] : {{.+}} -> tensor<?x?x2xf32>
// CHECK: %[[IC:.+]] = xlstm.soft_cap %[[I]] {cap = 1.500000e+01 : f64}
// CHECK: %[[FC:.+]] = xlstm.soft_cap %[[F]] {cap = 1.500000e+01 : f64}
// CHECK: %[[H:.+]], %[[S1:.+]] = xlstm.mlstm_cell %[[Q]], %[[K]], %[[V]], %[[IC]], %[[FC]] init %[[S0]] {input_gate = #xlstm.input_gate<sigmoid>, num_heads = 2 : i64}
// CHECK: %[[HN:.+]] = xlstm.multihead_layer_norm %[[H]], %[[N]] {num_heads = 2 : i64}
// CHECK: %[[G:.+]] = xlstm.output_gate %[[O]], %[[HN]]
// CHECK: %[[Y:.+]] = xlstm.linear %[[G]], %[[WVO]]
// CHECK: %[[R:.+]] = xlstm.add %[[X]], %[[Y]]
// CHECK: return %[[R]], %[[S1]]
func.func @mlstm_block(%x: tensor<?x?x64xbf16>, %n: tensor<64xbf16>, %wqk: tensor<32x64xbf16>,
                       %wvo: tensor<64x64xbf16>, %wif: tensor<2x64xbf16>, %bif: tensor<2xbf16>,
                       %s0: !xlstm.state<2x16x32xf32>) -> (tensor<?x?x64xbf16>, !xlstm.state<2x16x32xf32>) {
  %y, %s1 = xlstm.mlstm_block %x, %n, %wqk, %wqk, %wvo, %wvo, %wif, %wif, %bif, %bif, %n, %wvo
      init %s0 : !xlstm.state<2x16x32xf32> {num_heads = 2 : i64, gate_soft_cap = 15.0 : f64, input_gate = #xlstm.input_gate<sigmoid>}
      : tensor<?x?x64xbf16>, tensor<64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>,
        tensor<2x64xbf16>, tensor<2xbf16>, tensor<64xbf16>, tensor<64x64xbf16> -> !xlstm.state<2x16x32xf32>
  return %y, %s1 : tensor<?x?x64xbf16>, !xlstm.state<2x16x32xf32>
}

// -----

// Tests that a block without gate soft-cap gets no soft_cap ops and a cell without initial state.
// CHECK-LABEL: func.func @uncapped
// CHECK-NOT: xlstm.soft_cap
// CHECK: xlstm.mlstm_cell %{{[^ ]+}}, %{{[^ ]+}}, %{{[^ ]+}}, %{{[^ ]+}}, %{{[^ ]+}} {num_heads = 2 : i64}
func.func @uncapped(%x: tensor<?x?x64xbf16>, %n: tensor<64xbf16>, %wqk: tensor<32x64xbf16>,
                    %wvo: tensor<64x64xbf16>, %wif: tensor<2x64xbf16>, %bif: tensor<2xbf16>) -> tensor<?x?x64xbf16> {
  %y, %s1 = xlstm.mlstm_block %x, %n, %wqk, %wqk, %wvo, %wvo, %wif, %wif, %bif, %bif, %n, %wvo {num_heads = 2 : i64}
      : tensor<?x?x64xbf16>, tensor<64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>,
        tensor<2x64xbf16>, tensor<2xbf16>, tensor<64xbf16>, tensor<64x64xbf16> -> !xlstm.state<2x16x32xf32>
  return %y : tensor<?x?x64xbf16>
}

// -----

// Tests that an FFN block becomes norm, gate and up projections, SwiGLU, down projection, add.
// CHECK-LABEL: func.func @ffn_block
// CHECK-SAME: (%[[X:[^:]+]]: tensor<?x?x64xbf16>, %[[N:[^:]+]]: tensor<64xbf16>, %[[WG:[^:]+]]: tensor<192x64xbf16>, %[[WD:[^:]+]]: tensor<64x192xbf16>)
// CHECK: %[[XN:.+]] = xlstm.rms_norm %[[X]], %[[N]] {eps = 1.000000e-05 : f64}
// CHECK: %[[G:.+]] = xlstm.linear %[[XN]], %[[WG]] : {{.+}} -> tensor<?x?x192xbf16>
// CHECK: %[[U:.+]] = xlstm.linear %[[XN]], %[[WG]] : {{.+}} -> tensor<?x?x192xbf16>
// CHECK: %[[Z:.+]] = xlstm.swiglu %[[G]], %[[U]] : tensor<?x?x192xbf16>
// CHECK: %[[D:.+]] = xlstm.linear %[[Z]], %[[WD]] : {{.+}} -> tensor<?x?x64xbf16>
// CHECK: %[[R:.+]] = xlstm.add %[[X]], %[[D]]
// CHECK: return %[[R]]
func.func @ffn_block(%x: tensor<?x?x64xbf16>, %n: tensor<64xbf16>, %wg: tensor<192x64xbf16>,
                     %wd: tensor<64x192xbf16>) -> tensor<?x?x64xbf16> {
  %y = xlstm.ffn_block %x, %n, %wg, %wg, %wd {norm_eps = 1.0e-5 : f64}
      : tensor<?x?x64xbf16>, tensor<64xbf16>, tensor<192x64xbf16>, tensor<64x192xbf16>
  return %y : tensor<?x?x64xbf16>
}

// -----

// Tests that a bare SwiGLU FFN decomposes without a norm or residual.
// CHECK-LABEL: func.func @swiglu_ffn
// CHECK-NOT: xlstm.rms_norm
// CHECK: xlstm.swiglu
// CHECK-NOT: xlstm.add
// CHECK: return
func.func @swiglu_ffn(%x: tensor<?x?x64xbf16>, %wg: tensor<192x64xbf16>, %wd: tensor<64x192xbf16>) -> tensor<?x?x64xbf16> {
  %y = xlstm.swiglu_ffn %x, %wg, %wg, %wd
      : (tensor<?x?x64xbf16>, tensor<192x64xbf16>, tensor<192x64xbf16>, tensor<64x192xbf16>) -> tensor<?x?x64xbf16>
  return %y : tensor<?x?x64xbf16>
}
