// RUN: xlc-opt %s --split-input-file --xlc-decompose-blocks --xlc-fuse-projections --xlc-fuse-cell-gates --xlc-autodiff --xlc-kernel-pipeline --verify-diagnostics | FileCheck %s

// Tests kernel formation for @train_step on a one-block model as xlc-import writes it: the
// forward from a zero state with the two-kernel chunkwise form (its chunk-start states are the
// backward's), the LM head as an f32 GEMM and the cross_entropy kernel, every gradient op as its
// kernel, gradient sums absorbed into the kernel of their later operand (a GEMM's addend, the
// rms_norm_backward residual of a residual block), weight gradients in f32, concatenations of
// gradients kept for the writer; f32 gradients narrowed to bf16 where they meet bf16 operands
// (xlc-uniform-gemm-operands: the logits' and the gates'). The loss scale becomes grad_scale:
// the kernel takes it divided by the counted targets. The document resets reach the forward and
// the backward cell kernels.
// CHECK-LABEL: func.func @train_step
// CHECK-SAME: {xlstm.name = "targets"}, %arg2: tensor<f32> {xlstm.name = "grad_scale"}, %arg3: tensor<?x?xi8> {xlstm.name = "resets"})
// CHECK-SAME: -> (tensor<f32> {xlstm.name = "loss"}, tensor<100x32xf32> {xlstm.gradient_of = @embeddings.weight}
// CHECK: %[[Z:.+]] = xk.zero_state : !xlstm.state<2x8x16xf32>
// CHECK: %[[H:[^,]+]], %{{.+}} = xk.mlstm_chunkwise %[[QKVO:[0-9]+]]#0, %[[QKVO]]#1, %[[QKVO]]#2, %[[IF:[0-9]+]]#0, %[[IF]]#1, %[[Z]] resets(%arg3 : tensor<?x?xi8>)
// CHECK-NOT: fused
// CHECK-SAME: tile = #xk.tile<block_dqk
// CHECK: %[[Z:.+]] = xk.gemm %{{.+}}, %[[HEAD:[0-9]+]] {epilogue = #xk.epilogue<none>} : (tensor<?x?x32xbf16>, tensor<100x32xbf16>) -> tensor<?x?x100xf32>
// CHECK: %[[LOSS:.+]], %[[DZ:.+]] = xk.cross_entropy %[[Z]], %arg1, %arg2 {cap = 3.000000e+01 : f64
// CHECK: %[[DZ16:.+]] = xk.convert %[[DZ]] {tile = #xk.tile<threads = 32>} : tensor<?x?x100xf32> -> tensor<?x?x100xbf16>
// CHECK: %[[DY:.+]] = xk.matmul %[[DZ16]], %[[HEAD]] : (tensor<?x?x100xbf16>, tensor<100x32xbf16>) -> tensor<?x?x32xbf16>
// CHECK: %[[DHEAD:.+]] = xk.matmul %[[DZ16]], %{{.+}} {trans_a} : (tensor<?x?x100xbf16>, tensor<?x?x32xbf16>) -> tensor<100x32xf32>
// CHECK: %[[DX:[^,]+]], %[[DOUTN:[^ ]+]] = xk.rms_norm_backward %{{.+}}, %[[DY]] {eps
// CHECK: xk.swiglu_backward
// CHECK: %[[DGU:.+]] = xlstm.concat %d_gate, %d_up
// CHECK: %[[DXN:.+]] = xk.matmul %[[DGU]], %{{.+}} : (tensor<?x?x256xbf16>, tensor<256x32xbf16>) -> tensor<?x?x32xbf16>
// CHECK: xk.rms_norm_backward %{{.+}}, %[[DXN]] residual %[[DX]] : tensor<?x?x32xbf16>
// CHECK: %{{.+}}, %{{.+}}, %[[DO:.+]] = xk.norm_gate_backward %[[H]], %{{.+}}, %[[QKVO]]#3, %{{.+}} {eps = {{.+}}, num_heads = 2 : i64
// CHECK: %[[DQ:[^,]+]], %[[DK:[^,]+]], %[[DV:[^,]+]], %[[DI:[^,]+]], %[[DF:[^ ]+]] = xk.mlstm_cell_grad %[[QKVO]]#0, %[[QKVO]]#1, %[[QKVO]]#2, %[[IF]]#0, %[[IF]]#1, %[[H]], %{{.+}} resets(%arg3 : tensor<?x?xi8>) {{{.+}}tile = #xk.tile<chunk = 16, tile = 16>
// CHECK: %[[DG:.+]] = xlstm.concat %[[DI]], %[[DF]] : tensor<?x?x2xf32>, tensor<?x?x2xf32> -> tensor<?x?x4xf32>
// CHECK: %[[DG16:.+]] = xk.convert %[[DG]] {{.+}} : tensor<?x?x4xf32> -> tensor<?x?x4xbf16>
// CHECK: %[[DXG:.+]] = xk.matmul %[[DG16]], %{{.+}} : (tensor<?x?x4xbf16>, tensor<4x32xbf16>) -> tensor<?x?x32xbf16>
// CHECK: xk.matmul %[[DG16]], %{{.+}} {trans_a} : (tensor<?x?x4xbf16>, tensor<?x?x32xbf16>) -> tensor<4x32xf32>
// CHECK: %[[DB:.+]] = xk.column_sum %[[DG]] {tile = #xk.tile<rows_per_block = 256, threads = 32>} : {{.+}} -> tensor<4xf32>
// CHECK: %[[DQKVO:.+]] = xlstm.concat %[[DQ]], %[[DK]], %[[DV]], %[[DO]]
// CHECK: %[[DXQ:.+]] = xk.matmul %[[DQKVO]], %{{.+}} addend %[[DXG]]
// CHECK: %[[DE:[^,]+]], %{{.+}} = xk.rms_norm_backward %{{.+}}, %[[DXQ]] residual
// CHECK: %[[DEMB:.+]] = xk.embedding_backward %arg0, %[[DE]] {tile = #xk.tile<partitions = 64, threads = 32>} : {{.+}} -> tensor<100x32xf32>
// CHECK: return %[[LOSS]], %[[DEMB]],
// CHECK-SAME: %[[DHEAD]],
// CHECK-SAME: %[[DB]]
module @mini attributes {xlstm.chunk_size = 16 : i64, xlstm.tokens = {bos = 0 : i64, eos = 2 : i64, pad = 1 : i64}} {
  xlstm.parameter @embeddings.weight : tensor<100x32xbf16> = "backbone.embeddings.weight"
  xlstm.parameter @blocks.0.norm_mlstm.weight : tensor<32xbf16> = "backbone.blocks.0.norm_mlstm.weight"
  xlstm.parameter @blocks.0.mlstm_layer.q.weight : tensor<16x32xbf16> = "backbone.blocks.0.mlstm_layer.q.weight"
  xlstm.parameter @blocks.0.mlstm_layer.k.weight : tensor<16x32xbf16> = "backbone.blocks.0.mlstm_layer.k.weight"
  xlstm.parameter @blocks.0.mlstm_layer.v.weight : tensor<32x32xbf16> = "backbone.blocks.0.mlstm_layer.v.weight"
  xlstm.parameter @blocks.0.mlstm_layer.ogate_preact.weight : tensor<32x32xbf16> = "backbone.blocks.0.mlstm_layer.ogate_preact.weight"
  xlstm.parameter @blocks.0.mlstm_layer.igate_preact.weight : tensor<2x32xbf16> = "backbone.blocks.0.mlstm_layer.igate_preact.weight"
  xlstm.parameter @blocks.0.mlstm_layer.igate_preact.bias : tensor<2xbf16> = "backbone.blocks.0.mlstm_layer.igate_preact.bias"
  xlstm.parameter @blocks.0.mlstm_layer.fgate_preact.weight : tensor<2x32xbf16> = "backbone.blocks.0.mlstm_layer.fgate_preact.weight"
  xlstm.parameter @blocks.0.mlstm_layer.fgate_preact.bias : tensor<2xbf16> = "backbone.blocks.0.mlstm_layer.fgate_preact.bias"
  xlstm.parameter @blocks.0.mlstm_layer.multihead_norm.weight : tensor<32xbf16> = "backbone.blocks.0.mlstm_layer.multihead_norm.weight"
  xlstm.parameter @blocks.0.mlstm_layer.out_proj.weight : tensor<32x32xbf16> = "backbone.blocks.0.mlstm_layer.out_proj.weight"
  xlstm.parameter @blocks.0.norm_ffn.weight : tensor<32xbf16> = "backbone.blocks.0.norm_ffn.weight"
  xlstm.parameter @blocks.0.ffn.proj_up_gate.weight : tensor<128x32xbf16> = "backbone.blocks.0.ffn.proj_up_gate.weight"
  xlstm.parameter @blocks.0.ffn.proj_up.weight : tensor<128x32xbf16> = "backbone.blocks.0.ffn.proj_up.weight"
  xlstm.parameter @blocks.0.ffn.proj_down.weight : tensor<32x128xbf16> = "backbone.blocks.0.ffn.proj_down.weight"
  xlstm.parameter @out_norm.weight : tensor<32xbf16> = "backbone.out_norm.weight"
  xlstm.parameter @lm_head.weight : tensor<100x32xbf16> = "lm_head.weight"
  func.func @forward(%arg0: tensor<?x?xi32>, %arg1: !xlstm.state<2x8x16xf32>) -> (tensor<?x?x100xf32>, !xlstm.state<2x8x16xf32>) {
    %0 = xlstm.param @embeddings.weight : tensor<100x32xbf16>
    %1 = xlstm.embedding %0[%arg0] : tensor<100x32xbf16>, tensor<?x?xi32> -> tensor<?x?x32xbf16>
    %2 = xlstm.param @blocks.0.norm_mlstm.weight : tensor<32xbf16>
    %3 = xlstm.param @blocks.0.mlstm_layer.q.weight : tensor<16x32xbf16>
    %4 = xlstm.param @blocks.0.mlstm_layer.k.weight : tensor<16x32xbf16>
    %5 = xlstm.param @blocks.0.mlstm_layer.v.weight : tensor<32x32xbf16>
    %6 = xlstm.param @blocks.0.mlstm_layer.ogate_preact.weight : tensor<32x32xbf16>
    %7 = xlstm.param @blocks.0.mlstm_layer.igate_preact.weight : tensor<2x32xbf16>
    %8 = xlstm.param @blocks.0.mlstm_layer.igate_preact.bias : tensor<2xbf16>
    %9 = xlstm.param @blocks.0.mlstm_layer.fgate_preact.weight : tensor<2x32xbf16>
    %10 = xlstm.param @blocks.0.mlstm_layer.fgate_preact.bias : tensor<2xbf16>
    %11 = xlstm.param @blocks.0.mlstm_layer.multihead_norm.weight : tensor<32xbf16>
    %12 = xlstm.param @blocks.0.mlstm_layer.out_proj.weight : tensor<32x32xbf16>
    %result, %final_state = xlstm.mlstm_block %1, %2, %3, %4, %5, %6, %7, %9, %8, %10, %11, %12 init %arg1 : !xlstm.state<2x8x16xf32> {gate_soft_cap = 1.500000e+01 : f64, num_heads = 2 : i64} : tensor<?x?x32xbf16>, tensor<32xbf16>, tensor<16x32xbf16>, tensor<32x32xbf16>, tensor<2x32xbf16>, tensor<2xbf16>, tensor<32xbf16>, tensor<32x32xbf16> -> !xlstm.state<2x8x16xf32>
    %13 = xlstm.param @blocks.0.norm_ffn.weight : tensor<32xbf16>
    %14 = xlstm.param @blocks.0.ffn.proj_up_gate.weight : tensor<128x32xbf16>
    %15 = xlstm.param @blocks.0.ffn.proj_up.weight : tensor<128x32xbf16>
    %16 = xlstm.param @blocks.0.ffn.proj_down.weight : tensor<32x128xbf16>
    %17 = xlstm.ffn_block %result, %13, %14, %15, %16 : tensor<?x?x32xbf16>, tensor<32xbf16>, tensor<128x32xbf16>, tensor<32x128xbf16>
    %18 = xlstm.param @out_norm.weight : tensor<32xbf16>
    %19 = xlstm.rms_norm %17, %18 : tensor<?x?x32xbf16>, tensor<32xbf16>
    %20 = xlstm.param @lm_head.weight : tensor<100x32xbf16>
    %21 = xlstm.lm_head %19, %20 {soft_cap = 3.000000e+01 : f64} : tensor<?x?x32xbf16>, tensor<100x32xbf16> -> tensor<?x?x100xf32>
    return %21, %final_state : tensor<?x?x100xf32>, !xlstm.state<2x8x16xf32>
  }
}


// -----

// Tests that a soft-cap outside the cell and the loss head has no kernel form in @train_step.
module {
  xlstm.parameter @emb : tensor<10x8xbf16> = "backbone.embeddings.weight"
  xlstm.parameter @head : tensor<10x8xbf16> = "lm_head.weight"
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x10xf32> {
    %e = xlstm.param @emb : tensor<10x8xbf16>
    %x = xlstm.embedding %e[%tokens] : tensor<10x8xbf16>, tensor<?x?xi32> -> tensor<?x?x8xbf16>
    // expected-error @+1 {{has no kernel form in @train_step}}
    %c = xlstm.soft_cap %x {cap = 5.0 : f64} : tensor<?x?x8xbf16>
    %hw = xlstm.param @head : tensor<10x8xbf16>
    %logits = xlstm.lm_head %c, %hw : tensor<?x?x8xbf16>, tensor<10x8xbf16> -> tensor<?x?x10xf32>
    return %logits : tensor<?x?x10xf32>
  }
}
