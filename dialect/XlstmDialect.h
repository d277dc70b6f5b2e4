//===- XlstmDialect.h - The xlstm dialect -----------------------*- C++ -*-===//
//
// Declares the xlstm dialect, its enums, the recurrent-state type and its operations.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DIALECT_XLSTMDIALECT_H
#define XLC_DIALECT_XLSTMDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialect/XlstmEnums.h.inc"

#include "dialect/XlstmDialect.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/XlstmAttrs.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialect/XlstmTypes.h.inc"

#include "dialect/XlstmInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialect/XlstmOps.h.inc"

#endif // XLC_DIALECT_XLSTMDIALECT_H
