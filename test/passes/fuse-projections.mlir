// RUN: xlc-opt %s --split-input-file --xlc-fuse-projections | FileCheck %s

// Tests that q, k, v and o-gate projections of one input become one projection over an assembled
// weight (concatenated in program order) and a split; the gate projections with biases fuse
// separately, with their biases concatenated.
// CHECK: xlstm.assembled_parameter @l.q_k_v_o.weight : tensor<192x64xbf16> = concat [@l.q.weight, @l.k.weight, @l.v.weight, @l.o.weight]
// CHECK: xlstm.assembled_parameter @l.i_f.weight : tensor<4x64xbf16> = concat [@l.i.weight, @l.f.weight]
// CHECK: xlstm.assembled_parameter @l.i_f.bias : tensor<4xbf16> = concat [@l.i.bias, @l.f.bias]
// CHECK-LABEL: func.func @qkvo
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x64xbf16>)
// CHECK: %[[W:.+]] = xlstm.param @l.q_k_v_o.weight : tensor<192x64xbf16>
// CHECK: %[[P:.+]] = xlstm.linear %[[X]], %[[W]] : tensor<?x?x64xbf16>, tensor<192x64xbf16> -> tensor<?x?x192xbf16>
// CHECK: %[[S:.+]]:4 = xlstm.split %[[P]] : tensor<?x?x192xbf16> -> tensor<?x?x32xbf16>, tensor<?x?x32xbf16>, tensor<?x?x64xbf16>, tensor<?x?x64xbf16>
// CHECK-DAG: %[[B:.+]] = xlstm.param @l.i_f.bias
// CHECK-DAG: %[[WG:.+]] = xlstm.param @l.i_f.weight
// CHECK: %[[G:.+]] = xlstm.linear %[[X]], %[[WG]], %[[B]] : {{.+}} -> tensor<?x?x4xbf16>
// CHECK: %[[GS:.+]]:2 = xlstm.split %[[G]]
// CHECK-NOT: xlstm.linear
// CHECK: return %[[S]]#0, %[[S]]#1, %[[S]]#2, %[[S]]#3, %[[GS]]#0, %[[GS]]#1
xlstm.parameter @l.q.weight : tensor<32x64xbf16> = "l.q.weight"
xlstm.parameter @l.k.weight : tensor<32x64xbf16> = "l.k.weight"
xlstm.parameter @l.v.weight : tensor<64x64xbf16> = "l.v.weight"
xlstm.parameter @l.o.weight : tensor<64x64xbf16> = "l.o.weight"
xlstm.parameter @l.i.weight : tensor<2x64xbf16> = "l.i.weight"
xlstm.parameter @l.i.bias : tensor<2xbf16> = "l.i.bias"
xlstm.parameter @l.f.weight : tensor<2x64xbf16> = "l.f.weight"
xlstm.parameter @l.f.bias : tensor<2xbf16> = "l.f.bias"
func.func @qkvo(%x: tensor<?x?x64xbf16>) -> (tensor<?x?x32xbf16>, tensor<?x?x32xbf16>, tensor<?x?x64xbf16>, tensor<?x?x64xbf16>, tensor<?x?x2xbf16>, tensor<?x?x2xbf16>) {
  %wq = xlstm.param @l.q.weight : tensor<32x64xbf16>
  %wk = xlstm.param @l.k.weight : tensor<32x64xbf16>
  %wv = xlstm.param @l.v.weight : tensor<64x64xbf16>
  %wo = xlstm.param @l.o.weight : tensor<64x64xbf16>
  %wi = xlstm.param @l.i.weight : tensor<2x64xbf16>
  %bi = xlstm.param @l.i.bias : tensor<2xbf16>
  %wf = xlstm.param @l.f.weight : tensor<2x64xbf16>
  %bf = xlstm.param @l.f.bias : tensor<2xbf16>
  %q = xlstm.linear %x, %wq : tensor<?x?x64xbf16>, tensor<32x64xbf16> -> tensor<?x?x32xbf16>
  %k = xlstm.linear %x, %wk : tensor<?x?x64xbf16>, tensor<32x64xbf16> -> tensor<?x?x32xbf16>
  %v = xlstm.linear %x, %wv : tensor<?x?x64xbf16>, tensor<64x64xbf16> -> tensor<?x?x64xbf16>
  %o = xlstm.linear %x, %wo : tensor<?x?x64xbf16>, tensor<64x64xbf16> -> tensor<?x?x64xbf16>
  %i = xlstm.linear %x, %wi, %bi : tensor<?x?x64xbf16>, tensor<2x64xbf16>, tensor<2xbf16> -> tensor<?x?x2xbf16>
  %f = xlstm.linear %x, %wf, %bf : tensor<?x?x64xbf16>, tensor<2x64xbf16>, tensor<2xbf16> -> tensor<?x?x2xbf16>
  return %q, %k, %v, %o, %i, %f : tensor<?x?x32xbf16>, tensor<?x?x32xbf16>, tensor<?x?x64xbf16>, tensor<?x?x64xbf16>, tensor<?x?x2xbf16>, tensor<?x?x2xbf16>
}

// -----

// Tests that projections of different inputs, or with weights that are not parameters, stay apart.
// CHECK-NOT: xlstm.assembled_parameter
// CHECK-LABEL: func.func @no_fusion
// CHECK-COUNT-3: xlstm.linear
// CHECK-NOT: xlstm.split
xlstm.parameter @a : tensor<32x64xbf16> = "a"
xlstm.parameter @b : tensor<32x64xbf16> = "b"
func.func @no_fusion(%x: tensor<?x?x64xbf16>, %y: tensor<?x?x64xbf16>, %w: tensor<32x64xbf16>) -> (tensor<?x?x32xbf16>, tensor<?x?x32xbf16>, tensor<?x?x32xbf16>) {
  %wa = xlstm.param @a : tensor<32x64xbf16>
  %wb = xlstm.param @b : tensor<32x64xbf16>
  %0 = xlstm.linear %x, %wa : tensor<?x?x64xbf16>, tensor<32x64xbf16> -> tensor<?x?x32xbf16>
  %1 = xlstm.linear %y, %wb : tensor<?x?x64xbf16>, tensor<32x64xbf16> -> tensor<?x?x32xbf16>
  %2 = xlstm.linear %x, %w : tensor<?x?x64xbf16>, tensor<32x64xbf16> -> tensor<?x?x32xbf16>
  return %0, %1, %2 : tensor<?x?x32xbf16>, tensor<?x?x32xbf16>, tensor<?x?x32xbf16>
}

// -----

// Tests that projections with different output dtypes stay apart: one GEMM has one output type
// (the gates' fp32 pre-activations never share a GEMM with bf16 projections).
// CHECK-NOT: xlstm.assembled_parameter
// CHECK-LABEL: func.func @output_dtypes
// CHECK: xlstm.linear {{.+}} -> tensor<?x?x32xbf16>
// CHECK: xlstm.linear {{.+}} -> tensor<?x?x32xf32>
// CHECK-NOT: xlstm.split
xlstm.parameter @c : tensor<32x64xbf16> = "c"
xlstm.parameter @d : tensor<32x64xbf16> = "d"
func.func @output_dtypes(%x: tensor<?x?x64xbf16>) -> (tensor<?x?x32xbf16>, tensor<?x?x32xf32>) {
  %wc = xlstm.param @c : tensor<32x64xbf16>
  %wd = xlstm.param @d : tensor<32x64xbf16>
  %0 = xlstm.linear %x, %wc : tensor<?x?x64xbf16>, tensor<32x64xbf16> -> tensor<?x?x32xbf16>
  %1 = xlstm.linear %x, %wd : tensor<?x?x64xbf16>, tensor<32x64xbf16> -> tensor<?x?x32xf32>
  return %0, %1 : tensor<?x?x32xbf16>, tensor<?x?x32xf32>
}
