// RUN: xlc-opt %s --split-input-file --xlc-fold-norm-weights | FileCheck %s

// Tests that a norm weight moves into every projection that reads the norm: a checkpoint weight
// becomes a one-source assembled parameter, an assembled one gets scale_columns (and the unscaled
// version, now unread, disappears), and the LM head is folded too.
// CHECK-NOT: assembled_parameter @qk :
// CHECK-DAG: xlstm.assembled_parameter @w.scaled : tensor<16x64xbf16> = concat [@w] scale_columns @n
// CHECK-DAG: xlstm.assembled_parameter @qk.scaled : tensor<64x64xbf16> = concat [@q, @k] scale_columns @n
// CHECK-DAG: xlstm.assembled_parameter @head.scaled : tensor<100x64xbf16> = concat [@head] scale_columns @n
// CHECK-LABEL: func.func @fold
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x64xbf16>)
// CHECK: %[[XN:.+]] = xlstm.rms_norm %[[X]] : tensor<?x?x64xbf16>
// CHECK-DAG: xlstm.param @w.scaled
// CHECK-DAG: xlstm.param @qk.scaled
// CHECK-DAG: xlstm.param @head.scaled
// CHECK-NOT: xlstm.param @n
xlstm.parameter @n : tensor<64xbf16> = "n"
xlstm.parameter @w : tensor<16x64xbf16> = "w"
xlstm.parameter @q : tensor<32x64xbf16> = "q"
xlstm.parameter @k : tensor<32x64xbf16> = "k"
xlstm.parameter @head : tensor<100x64xbf16> = "head"
xlstm.assembled_parameter @qk : tensor<64x64xbf16> = concat [@q, @k]
func.func @fold(%x: tensor<?x?x64xbf16>) -> (tensor<?x?x16xbf16>, tensor<?x?x64xbf16>, tensor<?x?x100xf32>) {
  %n = xlstm.param @n : tensor<64xbf16>
  %w = xlstm.param @w : tensor<16x64xbf16>
  %qk = xlstm.param @qk : tensor<64x64xbf16>
  %head = xlstm.param @head : tensor<100x64xbf16>
  %xn = xlstm.rms_norm %x, %n : tensor<?x?x64xbf16>, tensor<64xbf16>
  %a = xlstm.linear %xn, %w : tensor<?x?x64xbf16>, tensor<16x64xbf16> -> tensor<?x?x16xbf16>
  %b = xlstm.linear %xn, %qk : tensor<?x?x64xbf16>, tensor<64x64xbf16> -> tensor<?x?x64xbf16>
  %l = xlstm.lm_head %xn, %head {soft_cap = 30.0 : f64} : tensor<?x?x64xbf16>, tensor<100x64xbf16> -> tensor<?x?x100xf32>
  return %a, %b, %l : tensor<?x?x16xbf16>, tensor<?x?x64xbf16>, tensor<?x?x100xf32>
}

// -----

// Tests that a norm read by anything but a projection keeps its weight.
// CHECK-NOT: assembled_parameter
// CHECK-LABEL: func.func @keep
// CHECK: xlstm.rms_norm %{{.+}}, %{{.+}} : tensor<?x?x64xbf16>, tensor<64xbf16>
xlstm.parameter @n : tensor<64xbf16> = "n"
xlstm.parameter @w : tensor<16x64xbf16> = "w"
func.func @keep(%x: tensor<?x?x64xbf16>) -> (tensor<?x?x16xbf16>, tensor<?x?x64xbf16>) {
  %n = xlstm.param @n : tensor<64xbf16>
  %w = xlstm.param @w : tensor<16x64xbf16>
  %xn = xlstm.rms_norm %x, %n : tensor<?x?x64xbf16>, tensor<64xbf16>
  %a = xlstm.linear %xn, %w : tensor<?x?x64xbf16>, tensor<16x64xbf16> -> tensor<?x?x16xbf16>
  %r = xlstm.add %xn, %x : tensor<?x?x64xbf16>
  return %a, %r : tensor<?x?x16xbf16>, tensor<?x?x64xbf16>
}
