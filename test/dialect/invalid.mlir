// RUN: xlc-opt %s --split-input-file --verify-diagnostics

// Tests that a parameter needs a static shape.
// expected-error @+1 {{parameter @w must have a static tensor type, got 'tensor<?x4xbf16>'}}
xlstm.parameter @w : tensor<?x4xbf16> = "backbone.w"

// -----

// Tests that a parameter needs a floating-point element type.
// expected-error @+1 {{parameter @w must have a floating-point element type, got 'i32'}}
xlstm.parameter @w : tensor<4xi32> = "backbone.w"

// -----

// Tests that a parameter is bound to a checkpoint tensor.
// expected-error @+1 {{parameter @w has an empty checkpoint name}}
xlstm.parameter @w : tensor<4xbf16> = ""

// -----

// Tests that param names an existing parameter.
func.func @f() -> tensor<4xbf16> {
  // expected-error @+1 {{'missing' does not name an xlstm.parameter}}
  %w = xlstm.param @missing : tensor<4xbf16>
  return %w : tensor<4xbf16>
}

// -----

// Tests that param's type matches the declaration.
xlstm.parameter @w : tensor<4xbf16> = "backbone.w"
func.func @f() -> tensor<4xf32> {
  // expected-error @+1 {{result type 'tensor<4xf32>' differs from the type 'tensor<4xbf16>' of parameter @w}}
  %w = xlstm.param @w : tensor<4xf32>
  return %w : tensor<4xf32>
}

// -----

// Tests that the embedding result width equals the table's row width.
func.func @f(%t: tensor<100x64xbf16>, %ids: tensor<?x?xi32>) {
  // expected-error @+1 {{result has 32 features but the table rows have 64}}
  %x = xlstm.embedding %t[%ids] : tensor<100x64xbf16>, tensor<?x?xi32> -> tensor<?x?x32xbf16>
  return
}

// -----

// Tests that an RMSNorm weight covers the normalised features.
func.func @f(%x: tensor<?x?x64xbf16>, %w: tensor<63xbf16>) {
  // expected-error @+1 {{weight has 63 elements but the input has 64 features}}
  %y = xlstm.rms_norm %x, %w : tensor<?x?x64xbf16>, tensor<63xbf16>
  return
}

// -----

// Tests that norm epsilons are non-negative.
func.func @f(%x: tensor<?x?x64xbf16>, %w: tensor<64xbf16>) {
  // expected-error @+1 {{eps must be finite and non-negative, got -1.000000e-06}}
  %y = xlstm.rms_norm %x, %w {eps = -1.0e-6 : f64} : tensor<?x?x64xbf16>, tensor<64xbf16>
  return
}

// -----

// Tests that a linear weight contracts the input's feature dimension.
func.func @f(%x: tensor<?x?x64xbf16>, %w: tensor<16x65xbf16>) {
  // expected-error @+1 {{weight expects 65 input features but the input has 64}}
  %y = xlstm.linear %x, %w : tensor<?x?x64xbf16>, tensor<16x65xbf16> -> tensor<?x?x16xbf16>
  return
}

// -----

// Tests that a linear bias has one element per output feature.
func.func @f(%x: tensor<?x?x64xbf16>, %w: tensor<16x64xbf16>, %b: tensor<8xbf16>) {
  // expected-error @+1 {{bias of weight must be a vector of 16 elements, got 'tensor<8xbf16>'}}
  %y = xlstm.linear %x, %w, %b : tensor<?x?x64xbf16>, tensor<16x64xbf16>, tensor<8xbf16> -> tensor<?x?x16xbf16>
  return
}

// -----

// Tests that a linear result has the weight's output width.
func.func @f(%x: tensor<?x?x64xbf16>, %w: tensor<16x64xbf16>) {
  // expected-error @+1 {{result of weight has 32 features but weight produces 16}}
  %y = xlstm.linear %x, %w : tensor<?x?x64xbf16>, tensor<16x64xbf16> -> tensor<?x?x32xbf16>
  return
}

// -----

// Tests that a soft-cap is positive.
func.func @f(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{cap must be finite and positive, got 0.000000e+00}}
  %y = xlstm.soft_cap %x {cap = 0.0 : f64} : tensor<?x?x8xf32>
  return
}

// -----

// Tests that the qk feature size splits evenly into heads.
func.func @f(%q: tensor<?x?x250xbf16>, %v: tensor<?x?x512xbf16>, %g: tensor<?x?x8xf32>) {
  // expected-error @+1 {{qk feature size 250 is not divisible by num_heads 8}}
  %h, %s = xlstm.mlstm_cell %q, %q, %v, %g, %g {num_heads = 8 : i64}
      : (tensor<?x?x250xbf16>, tensor<?x?x250xbf16>, tensor<?x?x512xbf16>, tensor<?x?x8xf32>, tensor<?x?x8xf32>)
      -> (tensor<?x?x512xbf16>, !xlstm.state<8x31x64xf32>)
  return
}

// -----

// Tests that the v feature size splits evenly into heads.
func.func @f(%q: tensor<?x?x256xbf16>, %v: tensor<?x?x500xbf16>, %g: tensor<?x?x8xf32>) {
  // expected-error @+1 {{v feature size 500 is not divisible by num_heads 8}}
  %h, %s = xlstm.mlstm_cell %q, %q, %v, %g, %g {num_heads = 8 : i64}
      : (tensor<?x?x256xbf16>, tensor<?x?x256xbf16>, tensor<?x?x500xbf16>, tensor<?x?x8xf32>, tensor<?x?x8xf32>)
      -> (tensor<?x?x500xbf16>, !xlstm.state<8x32x62xf32>)
  return
}

// -----

// Tests that q and k have one width.
func.func @f(%q: tensor<?x?x256xbf16>, %k: tensor<?x?x128xbf16>, %v: tensor<?x?x512xbf16>, %g: tensor<?x?x8xf32>) {
  // expected-error @+1 {{k has 128 features but q has 256}}
  %h, %s = xlstm.mlstm_cell %q, %k, %v, %g, %g {num_heads = 8 : i64}
      : (tensor<?x?x256xbf16>, tensor<?x?x128xbf16>, tensor<?x?x512xbf16>, tensor<?x?x8xf32>, tensor<?x?x8xf32>)
      -> (tensor<?x?x512xbf16>, !xlstm.state<8x32x64xf32>)
  return
}

// -----

// Tests that document resets have the cell's batch and sequence sizes.
func.func @f(%q: tensor<2x7x256xbf16>, %v: tensor<2x7x512xbf16>, %g: tensor<2x7x8xf32>, %r: tensor<2x6xi8>) {
  // expected-error @+1 {{sequence size of resets (6) differs from q (7)}}
  %h, %s = xlstm.mlstm_cell %q, %q, %v, %g, %g resets(%r : tensor<2x6xi8>) {num_heads = 8 : i64}
      : (tensor<2x7x256xbf16>, tensor<2x7x256xbf16>, tensor<2x7x512xbf16>, tensor<2x7x8xf32>, tensor<2x7x8xf32>)
      -> (tensor<2x7x512xbf16>, !xlstm.state<8x32x64xf32>)
  return
}

// -----

// Tests that document resets are [batch, seq].
func.func @f(%q: tensor<?x?x256xbf16>, %v: tensor<?x?x512xbf16>, %g: tensor<?x?x8xf32>, %r: tensor<?xi8>) {
  // expected-error @+1 {{resets must be [batch, seq], got 'tensor<?xi8>'}}
  %dq, %dk, %dv, %di, %df = xlstm.mlstm_cell_grad %q, %q, %v, %g, %g, %v resets(%r : tensor<?xi8>) {num_heads = 8 : i64}
      : tensor<?x?x256xbf16>, tensor<?x?x256xbf16>, tensor<?x?x512xbf16>, tensor<?x?x8xf32>, tensor<?x?x8xf32>
  return
}

// -----

// Tests that there is one gate pre-activation per head.
func.func @f(%q: tensor<?x?x256xbf16>, %v: tensor<?x?x512xbf16>, %i: tensor<?x?x4xf32>, %f: tensor<?x?x8xf32>) {
  // expected-error @+1 {{igate must have one pre-activation per head (8), got 4}}
  %h, %s = xlstm.mlstm_cell %q, %q, %v, %i, %f {num_heads = 8 : i64}
      : (tensor<?x?x256xbf16>, tensor<?x?x256xbf16>, tensor<?x?x512xbf16>, tensor<?x?x4xf32>, tensor<?x?x8xf32>)
      -> (tensor<?x?x512xbf16>, !xlstm.state<8x32x64xf32>)
  return
}

// -----

// Tests that the operands agree on the sequence length.
func.func @f(%q: tensor<2x16x256xbf16>, %v: tensor<2x17x512xbf16>, %g: tensor<2x16x8xf32>) {
  // expected-error @+1 {{sequence size of v (17) differs from q (16)}}
  %h, %s = xlstm.mlstm_cell %q, %q, %v, %g, %g {num_heads = 8 : i64}
      : (tensor<2x16x256xbf16>, tensor<2x16x256xbf16>, tensor<2x17x512xbf16>, tensor<2x16x8xf32>, tensor<2x16x8xf32>)
      -> (tensor<2x16x512xbf16>, !xlstm.state<8x32x64xf32>)
  return
}

// -----

// Tests that the state type matches the cell's head split.
func.func @f(%q: tensor<?x?x256xbf16>, %v: tensor<?x?x512xbf16>, %g: tensor<?x?x8xf32>, %s0: !xlstm.state<8x64x64xf32>) {
  // expected-error @+1 {{initial state '!xlstm.state<8x64x64xf32>' does not match the cell's 8 heads of qk dim 32 and v dim 64}}
  %h, %s = xlstm.mlstm_cell %q, %q, %v, %g, %g init %s0 {num_heads = 8 : i64}
      : (tensor<?x?x256xbf16>, tensor<?x?x256xbf16>, tensor<?x?x512xbf16>, tensor<?x?x8xf32>, tensor<?x?x8xf32>, !xlstm.state<8x64x64xf32>)
      -> (tensor<?x?x512xbf16>, !xlstm.state<8x64x64xf32>)
  return
}

// -----

// Tests that the state keeps its element type through the cell.
func.func @f(%q: tensor<?x?x256xbf16>, %v: tensor<?x?x512xbf16>, %g: tensor<?x?x8xf32>, %s0: !xlstm.state<8x32x64xf32>) {
  // expected-error @+1 {{final state '!xlstm.state<8x32x64xbf16>' differs from the initial state '!xlstm.state<8x32x64xf32>'}}
  %h, %s = xlstm.mlstm_cell %q, %q, %v, %g, %g init %s0 {num_heads = 8 : i64}
      : (tensor<?x?x256xbf16>, tensor<?x?x256xbf16>, tensor<?x?x512xbf16>, tensor<?x?x8xf32>, tensor<?x?x8xf32>, !xlstm.state<8x32x64xf32>)
      -> (tensor<?x?x512xbf16>, !xlstm.state<8x32x64xbf16>)
  return
}

// -----

// Tests that the state type rejects non-positive sizes.
// expected-error @+1 {{state head count must be positive, got 0}}
func.func private @f(!xlstm.state<0x32x64xf32>)

// -----

// Tests that the state type accepts only f32 and bf16 elements.
// expected-error @+1 {{state element type must be f32 or bf16, got 'f16'}}
func.func private @f(!xlstm.state<8x32x64xf16>)

// -----

// Tests that the multi-head LayerNorm splits features evenly.
func.func @f(%h: tensor<?x?x100xbf16>, %w: tensor<100xbf16>) {
  // expected-error @+1 {{feature size 100 is not divisible by num_heads 8}}
  %y = xlstm.multihead_layer_norm %h, %w {num_heads = 8 : i64} : tensor<?x?x100xbf16>, tensor<100xbf16>
  return
}

// -----

// Tests that the FFN down projection maps the hidden size back.
func.func @f(%x: tensor<?x?x64xbf16>, %wg: tensor<192x64xbf16>, %wd: tensor<64x128xbf16>) {
  // expected-error @+1 {{w_down must be [64, 192] to map the hidden size back, got 'tensor<64x128xbf16>'}}
  %y = xlstm.swiglu_ffn %x, %wg, %wg, %wd
      : (tensor<?x?x64xbf16>, tensor<192x64xbf16>, tensor<192x64xbf16>, tensor<64x128xbf16>) -> tensor<?x?x64xbf16>
  return
}

// -----

// Tests that the LM head's vocabulary comes from its weight.
func.func @f(%x: tensor<?x?x64xbf16>, %w: tensor<100x64xbf16>) {
  // expected-error @+1 {{result of lm_head weight has 101 features but lm_head weight produces 100}}
  %l = xlstm.lm_head %x, %w {soft_cap = 30.0 : f64} : tensor<?x?x64xbf16>, tensor<100x64xbf16> -> tensor<?x?x101xf32>
  return
}

// -----

// Tests that the LM head soft-cap is positive.
func.func @f(%x: tensor<?x?x64xbf16>, %w: tensor<100x64xbf16>) {
  // expected-error @+1 {{soft_cap must be finite and positive, got -3.000000e+01}}
  %l = xlstm.lm_head %x, %w {soft_cap = -30.0 : f64} : tensor<?x?x64xbf16>, tensor<100x64xbf16> -> tensor<?x?x100xf32>
  return
}

// -----

// Tests that a composite block checks its projections with the same rules.
func.func @f(%x: tensor<?x?x64xbf16>, %n: tensor<64xbf16>, %wqk: tensor<32x64xbf16>, %wvo: tensor<64x64xbf16>,
             %wif: tensor<2x64xbf16>, %bif: tensor<3xbf16>) {
  // expected-error @+1 {{bias of wi must be a vector of 2 elements, got 'tensor<3xbf16>'}}
  %y, %s = xlstm.mlstm_block %x, %n, %wqk, %wqk, %wvo, %wvo, %wif, %wif, %bif, %bif, %n, %wvo {num_heads = 2 : i64}
      : tensor<?x?x64xbf16>, tensor<64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>,
        tensor<2x64xbf16>, tensor<3xbf16>, tensor<64xbf16>, tensor<64x64xbf16> -> !xlstm.state<2x16x32xf32>
  return
}

// -----

// Tests that a composite block's gate projections produce one value per head.
func.func @f(%x: tensor<?x?x64xbf16>, %n: tensor<64xbf16>, %wqk: tensor<32x64xbf16>, %wvo: tensor<64x64xbf16>,
             %wif: tensor<4x64xbf16>, %bif: tensor<4xbf16>) {
  // expected-error @+1 {{wi must produce one input-gate pre-activation per head (2), got 4}}
  %y, %s = xlstm.mlstm_block %x, %n, %wqk, %wqk, %wvo, %wvo, %wif, %wif, %bif, %bif, %n, %wvo {num_heads = 2 : i64}
      : tensor<?x?x64xbf16>, tensor<64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>,
        tensor<4x64xbf16>, tensor<4xbf16>, tensor<64xbf16>, tensor<64x64xbf16> -> !xlstm.state<2x16x32xf32>
  return
}

// -----

// Tests that a composite block's state matches its head split.
func.func @f(%x: tensor<?x?x64xbf16>, %n: tensor<64xbf16>, %wqk: tensor<32x64xbf16>, %wvo: tensor<64x64xbf16>,
             %wif: tensor<2x64xbf16>, %bif: tensor<2xbf16>) {
  // expected-error @+1 {{final state '!xlstm.state<2x32x32xf32>' does not match the cell's 2 heads of qk dim 16 and v dim 32}}
  %y, %s = xlstm.mlstm_block %x, %n, %wqk, %wqk, %wvo, %wvo, %wif, %wif, %bif, %bif, %n, %wvo {num_heads = 2 : i64}
      : tensor<?x?x64xbf16>, tensor<64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>,
        tensor<2x64xbf16>, tensor<2xbf16>, tensor<64xbf16>, tensor<64x64xbf16> -> !xlstm.state<2x32x32xf32>
  return
}

// -----

// Tests that the FFN block's norm weight covers the input features.
func.func @f(%x: tensor<?x?x64xbf16>, %n: tensor<32xbf16>, %wg: tensor<192x64xbf16>, %wd: tensor<64x192xbf16>) {
  // expected-error @+1 {{norm weight has 32 elements but the input has 64 features}}
  %y = xlstm.ffn_block %x, %n, %wg, %wg, %wd : tensor<?x?x64xbf16>, tensor<32xbf16>, tensor<192x64xbf16>, tensor<64x192xbf16>
  return
}

// -----

// Tests that an assembled parameter's sources add up to its shape.
xlstm.parameter @q : tensor<32x64xbf16> = "q"
// expected-error @+1 {{sources add up to 32 along axis 0 but the parameter has 64}}
xlstm.assembled_parameter @qk : tensor<64x64xbf16> = concat [@q]

// -----

// Tests that a folded norm weight is as long as the weight's rows.
xlstm.parameter @q : tensor<32x64xbf16> = "q"
xlstm.parameter @n : tensor<32xbf16> = "n"
// expected-error @+1 {{scale_columns @n of type 'tensor<32xbf16>' must be a vector as long as the rows of 'tensor<32x64xbf16>'}}
xlstm.assembled_parameter @qs : tensor<32x64xbf16> = concat [@q] scale_columns @n

// -----

// Tests that a split's slices add up to its input.
func.func @f(%x: tensor<?x?x64xbf16>) {
  // expected-error @+1 {{slices add up to 48 features but the input has 64}}
  %a, %b = xlstm.split %x : tensor<?x?x64xbf16> -> tensor<?x?x32xbf16>, tensor<?x?x16xbf16>
  return
}

// -----

// Tests that the last positions of a [batch, seq, features] tensor are [batch, 1, features].
func.func @f(%x: tensor<?x?x64xbf16>) {
  // expected-error @+1 {{result must be [batch, 1, features], got 'tensor<?x2x64xbf16>'}}
  %l = xlstm.last_position %x : tensor<?x?x64xbf16> -> tensor<?x2x64xbf16>
  return
}

// -----

// Tests that selecting the last positions keeps the features.
func.func @f(%x: tensor<?x?x64xbf16>) {
  // expected-error @+1 {{result features 32 must equal the input's static 64}}
  %l = xlstm.last_position %x : tensor<?x?x64xbf16> -> tensor<?x1x32xbf16>
  return
}

// -----

// Tests that the last positions are selected from a [batch, seq, features] tensor.
func.func @f(%x: tensor<?x64xbf16>) {
  // expected-error @+1 {{input must be [batch, seq, features], got 'tensor<?x64xbf16>'}}
  %l = xlstm.last_position %x : tensor<?x64xbf16> -> tensor<?x1x64xbf16>
  return
}

// -----

// Tests that selecting the last positions keeps the batch.
func.func @f(%x: tensor<4x?x64xbf16>) {
  // expected-error @+1 {{result batch 2 differs from the input's 4}}
  %l = xlstm.last_position %x : tensor<4x?x64xbf16> -> tensor<2x1x64xbf16>
  return
}
