//===- ParameterUtils.cpp - Helpers for passes that rewrite weights -------===//

#include "passes/ParameterUtils.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;

namespace xlc {

static Operation *lookupParamSymbol(Value value) {
  auto read = value ? value.getDefiningOp<xlstm::ParamOp>() : xlstm::ParamOp();
  if (!read)
    return nullptr;
  return SymbolTable::lookupNearestSymbolFrom(read, read.getNameAttr());
}

xlstm::ParameterOp getCheckpointParameter(Value value) {
  return llvm::dyn_cast_or_null<xlstm::ParameterOp>(lookupParamSymbol(value));
}

xlstm::AssembledParameterOp getAssembledParameter(Value value) {
  return llvm::dyn_cast_or_null<xlstm::AssembledParameterOp>(lookupParamSymbol(value));
}

void insertParameterDeclaration(ModuleOp module, Operation *op) {
  Operation *last = nullptr;
  for (Operation &candidate : module.getBody()->getOperations())
    if (isa<xlstm::ParameterOp, xlstm::AssembledParameterOp>(candidate) && &candidate != op)
      last = &candidate;
  if (last)
    op->moveAfter(last);
  else
    op->moveBefore(&module.getBody()->front());
  // SymbolTable::insert would rename on collision but also moves the op; do the renaming only.
  StringAttr name = SymbolTable::getSymbolName(op);
  std::string base = name.str();
  unsigned suffix = 0;
  auto taken = [&](StringRef candidate) {
    for (Operation &other : module.getBody()->getOperations())
      if (&other != op)
        if (auto sym = other.getAttrOfType<StringAttr>(SymbolTable::getSymbolAttrName()))
          if (sym.getValue() == candidate)
            return true;
    return false;
  };
  std::string candidate = base;
  while (taken(candidate))
    candidate = base + "." + std::to_string(++suffix);
  if (candidate != base)
    SymbolTable::setSymbolName(op, candidate);
}

Location namedLoc(Location base, StringRef name) {
  return NameLoc::get(StringAttr::get(base.getContext(), name), base);
}

std::string locName(Location loc, StringRef fallback) {
  if (auto named = llvm::dyn_cast<NameLoc>(loc))
    return named.getName().str();
  return fallback.str();
}

} // namespace xlc
