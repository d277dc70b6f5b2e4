// RUN: xlc-opt %s --split-input-file --xlc-uniform-gemm-operands --verify-diagnostics | FileCheck %s

// Tests that an f32 operand meeting a bf16 one is narrowed once, right after its definition, and
// the conversion is shared by every product that reads it; uniform products are left alone.
// CHECK-LABEL: func.func @head
// CHECK: %{{.+}}, %[[DZ:.+]] = xk.cross_entropy
// CHECK-NEXT: %[[DZ16:.+]] = xk.convert %[[DZ]] : tensor<?x?x100xf32> -> tensor<?x?x100xbf16>
// CHECK: xk.matmul %[[DZ16]], %arg1 : (tensor<?x?x100xbf16>, tensor<100x32xbf16>) -> tensor<?x?x32xbf16>
// CHECK: xk.matmul %[[DZ16]], %arg2 {trans_a} : (tensor<?x?x100xbf16>, tensor<?x?x32xbf16>) -> tensor<100x32xf32>
// CHECK: xk.matmul %arg2, %arg3 : (tensor<?x?x32xbf16>, tensor<32x8xbf16>) -> tensor<?x?x8xbf16>
// CHECK-NOT: xk.convert
func.func @head(%z: tensor<?x?x100xf32>, %w: tensor<100x32xbf16>, %x: tensor<?x?x32xbf16>,
                %v: tensor<32x8xbf16>, %t: tensor<?x?xi32>, %s: tensor<f32>)
    -> (tensor<?x?x32xbf16>, tensor<100x32xf32>, tensor<?x?x8xbf16>) {
  %loss, %dz = xk.cross_entropy %z, %t, %s : tensor<?x?x100xf32>, tensor<?x?xi32>, tensor<f32>
  %dx = xk.matmul %dz, %w : (tensor<?x?x100xf32>, tensor<100x32xbf16>) -> tensor<?x?x32xbf16>
  %dw = xk.matmul %dz, %x {trans_a} : (tensor<?x?x100xf32>, tensor<?x?x32xbf16>) -> tensor<100x32xf32>
  %y = xk.matmul %x, %v : (tensor<?x?x32xbf16>, tensor<32x8xbf16>) -> tensor<?x?x8xbf16>
  return %dx, %dw, %y : tensor<?x?x32xbf16>, tensor<100x32xf32>, tensor<?x?x8xbf16>
}

// -----

// Two narrow types cannot be made one by narrowing an f32 operand.
func.func @mixed(%a: tensor<?x?x32xf16>, %w: tensor<32x8xbf16>) -> tensor<?x?x8xbf16> {
  // expected-error @+1 {{operands of 'f16' and 'bf16': only an f32 operand can be narrowed to the other's type}}
  %y = xk.matmul %a, %w : (tensor<?x?x32xf16>, tensor<32x8xbf16>) -> tensor<?x?x8xbf16>
  return %y : tensor<?x?x8xbf16>
}
