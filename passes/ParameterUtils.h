//===- ParameterUtils.h - Helpers for passes that rewrite weights -*- C++ -*-===//
#ifndef XLC_PASSES_PARAMETERUTILS_H
#define XLC_PASSES_PARAMETERUTILS_H

#include "dialect/XlstmDialect.h"

#include "mlir/IR/Builders.h"

namespace xlc {

/// The checkpoint-bound parameter that |value| reads, or null when |value| is not an
/// `xlstm.param` of an `xlstm.parameter`.
xlstm::ParameterOp getCheckpointParameter(mlir::Value value);

/// The assembled parameter that |value| reads, or null.
xlstm::AssembledParameterOp getAssembledParameter(mlir::Value value);

/// Inserts |op| (a parameter declaration) into |module| after the last parameter declaration
/// and renames it, if needed, so that its symbol is unique.
void insertParameterDeclaration(mlir::ModuleOp module, mlir::Operation *op);

/// A location named |name| (e.g. "blocks.0.mlstm.q") wrapping |base|. Names travel into the
/// artifact as buffer names.
mlir::Location namedLoc(mlir::Location base, llvm::StringRef name);

/// The name of a NameLoc, or |fallback|.
std::string locName(mlir::Location loc, llvm::StringRef fallback);

} // namespace xlc

#endif // XLC_PASSES_PARAMETERUTILS_H
