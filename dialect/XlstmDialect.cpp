//===- XlstmDialect.cpp - xlstm dialect registration ----------------------===//

#include "dialect/XlstmDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace xlc::xlstm;

#include "dialect/XlstmDialect.cpp.inc"
#include "dialect/XlstmEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/XlstmAttrs.cpp.inc"

void XlstmDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/XlstmAttrs.cpp.inc"
      >();
  registerTypes();
  addOperations<
#define GET_OP_LIST
#include "dialect/XlstmOps.cpp.inc"
      >();
}
