// RUN: xlc-opt %s --split-input-file --xlc-verify-kernel-form --verify-diagnostics | FileCheck %s

// Tests that kernel-form IR passes unchanged.
// CHECK-LABEL: func.func @prefill
// CHECK: xk.rms_norm
// CHECK-LABEL: func.func @decode_step
func.func @prefill(%x: tensor<?x?x64xbf16>) -> tensor<?x?x64xbf16> {
  %y = xk.rms_norm %x {eps = 1.0e-6 : f64, tile = #xk.tile<threads = 32>} : tensor<?x?x64xbf16>
  return %y : tensor<?x?x64xbf16>
}
func.func @decode_step(%x: tensor<?x?x64xbf16>) -> tensor<?x?x64xbf16> {
  return %x : tensor<?x?x64xbf16>
}

// -----

// Tests that a model-level compute op left in a function is named.
func.func @prefill(%x: tensor<?x?x64xbf16>) -> tensor<?x?x64xbf16> {
  // expected-error @+1 {{is not a kernel: kernel form allows only xk ops}}
  %y = xlstm.add %x, %x : tensor<?x?x64xbf16>
  return %y : tensor<?x?x64xbf16>
}
func.func @decode_step(%x: tensor<?x?x64xbf16>) -> tensor<?x?x64xbf16> {
  return %x : tensor<?x?x64xbf16>
}

// -----

// Tests that a kernel without a tile is named, and that a missing function is reported.
// expected-error @+1 {{kernel form needs a @decode_step function}}
module {
  func.func @prefill(%x: tensor<?x?x64xbf16>) -> tensor<?x?x64xbf16> {
    // expected-error @+1 {{has no tile configuration}}
    %y = xk.rms_norm %x {eps = 1.0e-6 : f64} : tensor<?x?x64xbf16>
    return %y : tensor<?x?x64xbf16>
  }
}

// -----

// Tests that a GEMM may read the last positions in place (and that @score is checked too).
// CHECK-LABEL: func.func @prefill
// CHECK: %[[LAST:.+]] = xlstm.last_position
// CHECK: xk.gemm %[[LAST]]
// CHECK-LABEL: func.func @score
func.func @prefill(%x: tensor<?x?x64xbf16>, %w: tensor<100x64xbf16>) -> tensor<?x1x100xf32> {
  %last = xlstm.last_position %x : tensor<?x?x64xbf16> -> tensor<?x1x64xbf16>
  %l = xk.gemm %last, %w {epilogue = #xk.epilogue<none>} : (tensor<?x1x64xbf16>, tensor<100x64xbf16>) -> tensor<?x1x100xf32>
  return %l : tensor<?x1x100xf32>
}
func.func @decode_step(%x: tensor<?x1x64xbf16>) -> tensor<?x1x64xbf16> {
  return %x : tensor<?x1x64xbf16>
}
func.func @score(%x: tensor<?x?x64xbf16>) -> tensor<?x?x64xbf16> {
  return %x : tensor<?x?x64xbf16>
}

// -----

// Tests that only a GEMM's A operand may read the last positions (no kernel reads that view).
func.func @prefill(%x: tensor<?x?x64xbf16>) -> tensor<?x1x64xbf16> {
  %last = xlstm.last_position %x : tensor<?x?x64xbf16> -> tensor<?x1x64xbf16>
  // expected-error @+1 {{reads an xlstm.last_position; only the A operand of an xk.gemm can}}
  %y = xk.rms_norm %last {eps = 1.0e-6 : f64, tile = #xk.tile<threads = 32>} : tensor<?x1x64xbf16>
  return %y : tensor<?x1x64xbf16>
}
func.func @decode_step(%x: tensor<?x1x64xbf16>) -> tensor<?x1x64xbf16> {
  return %x : tensor<?x1x64xbf16>
}

// -----

// Tests that @score, when present, must be in kernel form too.
func.func @prefill(%x: tensor<?x?x64xbf16>) -> tensor<?x?x64xbf16> {
  return %x : tensor<?x?x64xbf16>
}
func.func @decode_step(%x: tensor<?x1x64xbf16>) -> tensor<?x1x64xbf16> {
  return %x : tensor<?x1x64xbf16>
}
func.func @score(%x: tensor<?x?x64xbf16>) -> tensor<?x?x64xbf16> {
  // expected-error @+1 {{is not a kernel: kernel form allows only xk ops}}
  %y = xlstm.add %x, %x : tensor<?x?x64xbf16>
  return %y : tensor<?x?x64xbf16>
}
