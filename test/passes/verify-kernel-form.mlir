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
