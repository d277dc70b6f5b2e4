//===- Passes.h - xlc passes ------------------------------------*- C++ -*-===//
#ifndef XLC_PASSES_PASSES_H
#define XLC_PASSES_PASSES_H

#include "dialect/XkDialect.h"
#include "dialect/XlstmDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

#include "mlir/Pass/Pass.h"

namespace xlc {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace xlc

#endif // XLC_PASSES_PASSES_H
