// RUN: xlc-opt %s --split-input-file --xlc-fuse-cell-gates | FileCheck %s

// Tests that both gate soft-caps move into the cell.
// CHECK-LABEL: func.func @fuse
// CHECK-SAME: (%[[Q:[^:]+]]: tensor<?x?x8xbf16>, %[[V:[^:]+]]: tensor<?x?x16xbf16>, %[[I:[^:]+]]: tensor<?x?x2xbf16>, %[[F:[^:]+]]: tensor<?x?x2xbf16>)
// CHECK-NOT: xlstm.soft_cap
// CHECK: xlstm.mlstm_cell %[[Q]], %[[Q]], %[[V]], %[[I]], %[[F]] {gate_soft_cap = 1.500000e+01 : f64, num_heads = 2 : i64}
func.func @fuse(%q: tensor<?x?x8xbf16>, %v: tensor<?x?x16xbf16>, %i: tensor<?x?x2xbf16>, %f: tensor<?x?x2xbf16>) -> tensor<?x?x16xbf16> {
  %ic = xlstm.soft_cap %i {cap = 15.0 : f64} : tensor<?x?x2xbf16>
  %fc = xlstm.soft_cap %f {cap = 15.0 : f64} : tensor<?x?x2xbf16>
  %h, %s = xlstm.mlstm_cell %q, %q, %v, %ic, %fc {num_heads = 2 : i64}
      : (tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x16xbf16>, tensor<?x?x2xbf16>, tensor<?x?x2xbf16>)
      -> (tensor<?x?x16xbf16>, !xlstm.state<2x4x8xf32>)
  return %h : tensor<?x?x16xbf16>
}

// -----

// Tests that caps that differ, or a capped value with another reader, stay outside the cell.
// CHECK-LABEL: func.func @keep
// CHECK-COUNT-2: xlstm.soft_cap
// CHECK: xlstm.mlstm_cell
// CHECK-NOT: gate_soft_cap
// CHECK-LABEL: func.func @shared
// CHECK-COUNT-2: xlstm.soft_cap
// CHECK-NOT: gate_soft_cap
func.func @keep(%q: tensor<?x?x8xbf16>, %v: tensor<?x?x16xbf16>, %i: tensor<?x?x2xbf16>, %f: tensor<?x?x2xbf16>) -> tensor<?x?x16xbf16> {
  %ic = xlstm.soft_cap %i {cap = 15.0 : f64} : tensor<?x?x2xbf16>
  %fc = xlstm.soft_cap %f {cap = 10.0 : f64} : tensor<?x?x2xbf16>
  %h, %s = xlstm.mlstm_cell %q, %q, %v, %ic, %fc {num_heads = 2 : i64}
      : (tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x16xbf16>, tensor<?x?x2xbf16>, tensor<?x?x2xbf16>)
      -> (tensor<?x?x16xbf16>, !xlstm.state<2x4x8xf32>)
  return %h : tensor<?x?x16xbf16>
}
func.func @shared(%q: tensor<?x?x8xbf16>, %v: tensor<?x?x16xbf16>, %i: tensor<?x?x2xbf16>, %f: tensor<?x?x2xbf16>) -> (tensor<?x?x16xbf16>, tensor<?x?x2xbf16>) {
  %ic = xlstm.soft_cap %i {cap = 15.0 : f64} : tensor<?x?x2xbf16>
  %fc = xlstm.soft_cap %f {cap = 15.0 : f64} : tensor<?x?x2xbf16>
  %h, %s = xlstm.mlstm_cell %q, %q, %v, %ic, %fc {num_heads = 2 : i64}
      : (tensor<?x?x8xbf16>, tensor<?x?x8xbf16>, tensor<?x?x16xbf16>, tensor<?x?x2xbf16>, tensor<?x?x2xbf16>)
      -> (tensor<?x?x16xbf16>, !xlstm.state<2x4x8xf32>)
  return %h, %ic : tensor<?x?x16xbf16>, tensor<?x?x2xbf16>
}
