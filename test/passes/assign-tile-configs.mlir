// RUN: xlc-opt %s --xlc-assign-tile-configs | FileCheck %s

// Tests the default tiles: the module's chunk size, power-of-two head-dim tiles that divide the
// head dims (capped at 64), row kernels sized to the features; existing tiles and GEMMs untouched.
// CHECK-LABEL: func.func @tiles
// CHECK: xk.rms_norm {{.+}} tile = #xk.tile<threads = 256>
// CHECK: xk.swiglu {{.+}} {tile = #xk.tile<threads = 32>}
// CHECK: xk.soft_cap {{.+}} tile = #xk.tile<threads = 7>
// CHECK: xk.gemm
// CHECK-NOT: tile
// Small heads fit the fused chunkwise kernel (one launch, state on chip): fused = 1 with one warp
// per query strip (DQK 8 pads to 16, too narrow to split).
// CHECK: xk.mlstm_chunkwise {{.+}} tile = #xk.tile<block_dqk = 8, block_dv = 16, block_kv = 64, block_q = 64, chunk = 128, fused = 1, key_split = 1, state_dv = 16, warps = 4>
// CHECK: xk.mlstm_decode_step {{.+}} tile = #xk.tile<block_dv = 16, warps = 4>
// A 7B head (DQK 256, DV 512) at chunk 128 does not: q and k of a chunk alone need 264 KB of
// shared memory, so the tile keeps the two-kernel form.
// CHECK-LABEL: func.func @big_head
// CHECK: xk.mlstm_chunkwise {{.+}} tile = #xk.tile<block_dqk = 64, block_dv = 128, block_kv = 64, block_q = 64, chunk = 128, state_dv = 64, warps = 4>
// Document resets are read by the two-kernel form only: a small head with resets keeps it.
// CHECK-LABEL: func.func @resets
// CHECK: xk.mlstm_chunkwise {{.+}} resets({{.+}}) {{.+}} tile = #xk.tile<block_dqk = 8, block_dv = 16, block_kv = 64, block_q = 64, chunk = 128, state_dv = 16, warps = 4>
module attributes {xlstm.chunk_size = 128 : i64} {
  func.func @tiles(%x: tensor<?x?x4096xbf16>, %g: tensor<?x?x24xbf16>, %l: tensor<?x?x100xf32>,
                   %w: tensor<24x4096xbf16>, %q: tensor<?x?x16xbf16>, %v: tensor<?x?x96xbf16>,
                   %i: tensor<?x?x2xbf16>, %s: !xlstm.state<2x8x48xf32>) {
    %0 = xk.rms_norm %x {eps = 1.0e-6 : f64} : tensor<?x?x4096xbf16>
    %1 = xk.swiglu %g, %g : tensor<?x?x24xbf16>
    %2 = xk.soft_cap %l {cap = 30.0 : f64, tile = #xk.tile<threads = 7>} : tensor<?x?x100xf32>
    %3 = xk.gemm %0, %w {epilogue = #xk.epilogue<none>} : (tensor<?x?x4096xbf16>, tensor<24x4096xbf16>) -> tensor<?x?x24xbf16>
    %h, %s1 = xk.mlstm_chunkwise %q, %q, %v, %i, %i, %s {num_heads = 2 : i64, eps = 1.0e-6 : f64, input_gate = #xlstm.input_gate<exp>, normalizer = #xlstm.normalizer<max_abs>}
        : (tensor<?x?x16xbf16>, tensor<?x?x16xbf16>, tensor<?x?x96xbf16>, tensor<?x?x2xbf16>, tensor<?x?x2xbf16>, !xlstm.state<2x8x48xf32>) -> tensor<?x?x96xbf16>
    %h2, %s2 = xk.mlstm_decode_step %q, %q, %v, %i, %i, %s {num_heads = 2 : i64, eps = 1.0e-6 : f64, input_gate = #xlstm.input_gate<exp>, normalizer = #xlstm.normalizer<max_abs>}
        : (tensor<?x?x16xbf16>, tensor<?x?x16xbf16>, tensor<?x?x96xbf16>, tensor<?x?x2xbf16>, tensor<?x?x2xbf16>, !xlstm.state<2x8x48xf32>) -> tensor<?x?x96xbf16>
    return
  }
  func.func @big_head(%q: tensor<?x?x256xbf16>, %v: tensor<?x?x512xbf16>, %i: tensor<?x?x1xbf16>,
                      %s: !xlstm.state<1x256x512xf32>) {
    %h, %s1 = xk.mlstm_chunkwise %q, %q, %v, %i, %i, %s {num_heads = 1 : i64, eps = 1.0e-6 : f64, input_gate = #xlstm.input_gate<exp>, normalizer = #xlstm.normalizer<max_abs>}
        : (tensor<?x?x256xbf16>, tensor<?x?x256xbf16>, tensor<?x?x512xbf16>, tensor<?x?x1xbf16>, tensor<?x?x1xbf16>, !xlstm.state<1x256x512xf32>) -> tensor<?x?x512xbf16>
    return
  }
  func.func @resets(%q: tensor<?x?x16xbf16>, %v: tensor<?x?x96xbf16>, %i: tensor<?x?x2xbf16>,
                     %s: !xlstm.state<2x8x48xf32>, %r: tensor<?x?xi8>) {
    %h, %s1 = xk.mlstm_chunkwise %q, %q, %v, %i, %i, %s resets(%r : tensor<?x?xi8>) {num_heads = 2 : i64, eps = 1.0e-6 : f64, input_gate = #xlstm.input_gate<exp>, normalizer = #xlstm.normalizer<max_abs>}
        : (tensor<?x?x16xbf16>, tensor<?x?x16xbf16>, tensor<?x?x96xbf16>, tensor<?x?x2xbf16>, tensor<?x?x2xbf16>, !xlstm.state<2x8x48xf32>) -> tensor<?x?x96xbf16>
    return
  }
}
