// RUN: xlc-opt %s --split-input-file --xlc-autodiff --verify-diagnostics | FileCheck %s

// Tests the reverse sweep on a small model with a fused projection (split), the cell, a residual
// and a tied LM head: the step starts from the zero state, the loss replaces the logits, every
// op is differentiated in reverse order, gradients meeting at a value are added, and the tied
// table gets one summed gradient. @forward is kept. The step takes the document resets and
// passes them to the cell and to its gradient.
// CHECK-LABEL: func.func @forward
// CHECK-LABEL: func.func @train_step
// CHECK-SAME: (%[[TOK:[^:]+]]: tensor<?x?xi32> {xlstm.name = "tokens"}, %[[TGT:[^:]+]]: tensor<?x?xi32> {xlstm.name = "targets"}, %[[SCALE:[^:]+]]: tensor<f32> {xlstm.name = "loss_scale"}, %[[RESETS:[^:]+]]: tensor<?x?xi8> {xlstm.name = "resets"})
// CHECK-SAME: -> (tensor<f32> {xlstm.name = "loss"}, tensor<10x8xbf16> {xlstm.gradient_of = @emb}, tensor<24x8xbf16> {xlstm.gradient_of = @wqkv}, tensor<4x8xbf16> {xlstm.gradient_of = @wif})
// CHECK: %[[E:.+]] = xlstm.param @emb
// CHECK: %[[X:.+]] = xlstm.embedding %[[E]][%[[TOK]]]
// CHECK: %[[W:.+]] = xlstm.param @wqkv
// CHECK: %[[QKV:.+]] = xlstm.linear %[[X]], %[[W]] :
// CHECK: %[[S:.+]]:3 = xlstm.split %[[QKV]]
// CHECK: %[[WG:.+]] = xlstm.param @wif
// CHECK: %[[G:.+]] = xlstm.linear %[[X]], %[[WG]] :
// CHECK: %[[GS:.+]]:2 = xlstm.split %[[G]]
// CHECK: %[[H:[^,]+]], %{{.+}} = xlstm.mlstm_cell %[[S]]#0, %[[S]]#1, %[[S]]#2, %[[GS]]#0, %[[GS]]#1 resets(%[[RESETS]] : tensor<?x?xi8>) {gate_soft_cap = 1.500000e+01 : f64, num_heads = 2 : i64}
// CHECK: %[[Y:.+]] = xlstm.add %[[X]], %[[H]]
// CHECK: %[[LOSS:.+]] = xlstm.lm_head_loss %[[Y]], %[[E]], %[[TGT]] {soft_cap = 3.000000e+01 : f64}
// CHECK: %[[DY:[^,]+]], %[[DHEAD:[^ ]+]] = xlstm.lm_head_loss_grad %[[Y]], %[[E]], %[[TGT]], %[[SCALE]] {soft_cap = 3.000000e+01 : f64}
// CHECK: %[[DQ:[^,]+]], %[[DK:[^,]+]], %[[DV:[^,]+]], %[[DI:[^,]+]], %[[DF:[^ ]+]] = xlstm.mlstm_cell_grad %[[S]]#0, %[[S]]#1, %[[S]]#2, %[[GS]]#0, %[[GS]]#1, %[[DY]] resets(%[[RESETS]] : tensor<?x?xi8>) {gate_soft_cap = 1.500000e+01 : f64, num_heads = 2 : i64}
// CHECK: %[[DG:.+]] = xlstm.concat %[[DI]], %[[DF]]
// CHECK: %[[DX1:[^,]+]], %[[DWG:[^ ]+]] = xlstm.linear_grad %[[X]], %[[WG]], %[[DG]]
// CHECK: %[[SUM1:.+]] = xlstm.add %[[DY]], %[[DX1]]
// CHECK: %[[DQKV:.+]] = xlstm.concat %[[DQ]], %[[DK]], %[[DV]]
// CHECK: %[[DX2:[^,]+]], %[[DW:[^ ]+]] = xlstm.linear_grad %[[X]], %[[W]], %[[DQKV]]
// CHECK: %[[SUM2:.+]] = xlstm.add %[[SUM1]], %[[DX2]]
// CHECK: %[[DTAB:.+]] = xlstm.embedding_grad %[[TOK]], %[[SUM2]]
// CHECK: %[[DE:.+]] = xlstm.add %[[DHEAD]], %[[DTAB]]
// CHECK-NOT: xlstm.lm_head %
// CHECK: return %[[LOSS]], %[[DE]], %[[DW]], %[[DWG]]
module {
  xlstm.parameter @emb : tensor<10x8xbf16> = "backbone.embeddings.weight"
  xlstm.parameter @wqkv : tensor<24x8xbf16> = "qkv"
  xlstm.parameter @wif : tensor<4x8xbf16> = "if"
  func.func @forward(%tokens: tensor<?x?xi32>, %s: !xlstm.state<2x4x4xf32>)
      -> (tensor<?x?x10xf32>, !xlstm.state<2x4x4xf32>) {
    %e = xlstm.param @emb : tensor<10x8xbf16>
    %x = xlstm.embedding %e[%tokens] : tensor<10x8xbf16>, tensor<?x?xi32> -> tensor<?x?x8xbf16>
    %w = xlstm.param @wqkv : tensor<24x8xbf16>
    %qkv = xlstm.linear %x, %w : tensor<?x?x8xbf16>, tensor<24x8xbf16> -> tensor<?x?x24xbf16>
    %q, %k, %v = xlstm.split %qkv : tensor<?x?x24xbf16>
        -> tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x8xbf16>
    %wg = xlstm.param @wif : tensor<4x8xbf16>
    %g = xlstm.linear %x, %wg : tensor<?x?x8xbf16>, tensor<4x8xbf16> -> tensor<?x?x4xf32>
    %i, %f = xlstm.split %g : tensor<?x?x4xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xf32>
    %h, %s1 = xlstm.mlstm_cell %q, %k, %v, %i, %f init %s {num_heads = 2 : i64, gate_soft_cap = 15.0 : f64}
        : (tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x2xf32>,
           tensor<?x?x2xf32>, !xlstm.state<2x4x4xf32>) -> (tensor<?x?x8xbf16>, !xlstm.state<2x4x4xf32>)
    %y = xlstm.add %x, %h : tensor<?x?x8xbf16>
    %logits = xlstm.lm_head %y, %e {soft_cap = 30.0 : f64}
        : tensor<?x?x8xbf16>, tensor<10x8xbf16> -> tensor<?x?x10xf32>
    return %logits, %s1 : tensor<?x?x10xf32>, !xlstm.state<2x4x4xf32>
  }
}

// -----

// Tests that every block op's gradient is the reference's op: norms, the output gate, SwiGLU,
// soft-caps and biased projections (the decomposed form of an xLSTM block).
// CHECK-LABEL: func.func @train_step
// CHECK-DAG: xlstm.rms_norm_grad
// CHECK-DAG: xlstm.swiglu_grad
// CHECK-DAG: xlstm.output_gate_grad
// CHECK-DAG: xlstm.multihead_layer_norm_grad {{.+}} {num_heads = 2 : i64}
// CHECK-DAG: xlstm.soft_cap_grad {{.+}} {cap = 1.500000e+01 : f64}
// CHECK-DAG: xlstm.linear_grad {{.+}} {has_bias} : {{.+}} -> tensor<2xbf16>
// CHECK: return
module {
  xlstm.parameter @emb : tensor<10x8xbf16> = "backbone.embeddings.weight"
  xlstm.parameter @n : tensor<8xbf16> = "n"
  xlstm.parameter @wi : tensor<2x8xbf16> = "wi"
  xlstm.parameter @bi : tensor<2xbf16> = "bi"
  xlstm.parameter @mh : tensor<8xbf16> = "mh"
  xlstm.parameter @wu : tensor<16x8xbf16> = "wu"
  xlstm.parameter @head : tensor<10x8xbf16> = "lm_head.weight"
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x10xf32> {
    %e = xlstm.param @emb : tensor<10x8xbf16>
    %x = xlstm.embedding %e[%tokens] : tensor<10x8xbf16>, tensor<?x?xi32> -> tensor<?x?x8xbf16>
    %n = xlstm.param @n : tensor<8xbf16>
    %xn = xlstm.rms_norm %x, %n : tensor<?x?x8xbf16>, tensor<8xbf16>
    %wi = xlstm.param @wi : tensor<2x8xbf16>
    %bi = xlstm.param @bi : tensor<2xbf16>
    %i = xlstm.linear %xn, %wi, %bi : tensor<?x?x8xbf16>, tensor<2x8xbf16>, tensor<2xbf16> -> tensor<?x?x2xf32>
    %ic = xlstm.soft_cap %i {cap = 15.0 : f64} : tensor<?x?x2xf32>
    %h, %s1 = xlstm.mlstm_cell %xn, %xn, %xn, %ic, %ic {num_heads = 2 : i64}
        : (tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x2xf32>,
           tensor<?x?x2xf32>) -> (tensor<?x?x8xbf16>, !xlstm.state<2x4x4xf32>)
    %mh = xlstm.param @mh : tensor<8xbf16>
    %hn = xlstm.multihead_layer_norm %h, %mh {num_heads = 2 : i64} : tensor<?x?x8xbf16>, tensor<8xbf16>
    %o = xlstm.output_gate %xn, %hn : tensor<?x?x8xbf16>
    %wu = xlstm.param @wu : tensor<16x8xbf16>
    %gu = xlstm.linear %o, %wu : tensor<?x?x8xbf16>, tensor<16x8xbf16> -> tensor<?x?x16xbf16>
    %gg, %uu = xlstm.split %gu : tensor<?x?x16xbf16> -> tensor<?x?x8xbf16>, tensor<?x?x8xbf16>
    %z = xlstm.swiglu %gg, %uu : tensor<?x?x8xbf16>
    %hw = xlstm.param @head : tensor<10x8xbf16>
    %logits = xlstm.lm_head %z, %hw : tensor<?x?x8xbf16>, tensor<10x8xbf16> -> tensor<?x?x10xf32>
    return %logits : tensor<?x?x10xf32>
  }
}

// -----

// Tests that an op without a gradient is named.
module {
  xlstm.parameter @emb : tensor<10x8xbf16> = "backbone.embeddings.weight"
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x1x10xf32> {
    %e = xlstm.param @emb : tensor<10x8xbf16>
    %x = xlstm.embedding %e[%tokens] : tensor<10x8xbf16>, tensor<?x?xi32> -> tensor<?x?x8xbf16>
    // expected-error @+1 {{'xlstm.last_position' op has no gradient (it does not implement DifferentiableOpInterface), so xlc-autodiff cannot train through it}}
    %l = xlstm.last_position %x : tensor<?x?x8xbf16> -> tensor<?x1x8xbf16>
    %logits = xlstm.lm_head %l, %e : tensor<?x1x8xbf16>, tensor<10x8xbf16> -> tensor<?x1x10xf32>
    return %logits : tensor<?x1x10xf32>
  }
}

// -----

// Tests that a function whose first result is not the LM head's logits is refused.
module {
  // expected-error @+1 {{xlc-autodiff: @forward's first result must be the logits of an xlstm.lm_head}}
  func.func @forward(%tokens: tensor<?x?xi32>, %x: tensor<?x?x8xbf16>) -> tensor<?x?x8xbf16> {
    return %x : tensor<?x?x8xbf16>
  }
}

// -----

// expected-error @+1 {{xlc-autodiff: the module has no @forward function}}
module {
}
