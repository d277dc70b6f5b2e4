//===- XlstmTypes.cpp - The recurrent-state type ---------------------------===//

#include "dialect/XlstmDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace xlc::xlstm;

#define GET_TYPEDEF_CLASSES
#include "dialect/XlstmTypes.cpp.inc"

void XlstmDialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialect/XlstmTypes.cpp.inc"
      >();
}

// !xlstm.state<NHxDQKxDVxT>: the dimension-list syntax of tensor types, three static sizes.
Type StateType::parse(AsmParser &parser) {
  SmallVector<int64_t, 3> dims;
  Type elementType;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() ||
      parser.parseDimensionList(dims, /*allowDynamic=*/false, /*withTrailingX=*/true) ||
      parser.parseType(elementType) || parser.parseGreater())
    return {};
  if (dims.size() != 3) {
    parser.emitError(loc) << "expected 3 dimensions (heads x qk head dim x v head dim) in "
                             "!xlstm.state, got "
                          << dims.size();
    return {};
  }
  return parser.getChecked<StateType>(loc, parser.getContext(), dims[0], dims[1], dims[2],
                                      elementType);
}

void StateType::print(AsmPrinter &printer) const {
  printer << "<" << getNumHeads() << "x" << getQkHeadDim() << "x" << getVHeadDim() << "x"
          << getElementType() << ">";
}

LogicalResult StateType::verify(function_ref<InFlightDiagnostic()> emitError, int64_t numHeads,
                                int64_t qkHeadDim, int64_t vHeadDim, Type elementType) {
  if (numHeads <= 0)
    return emitError() << "state head count must be positive, got " << numHeads;
  if (qkHeadDim <= 0)
    return emitError() << "state qk head dim must be positive, got " << qkHeadDim;
  if (vHeadDim <= 0)
    return emitError() << "state v head dim must be positive, got " << vHeadDim;
  if (!elementType.isF32() && !elementType.isBF16())
    return emitError() << "state element type must be f32 or bf16, got " << elementType;
  return success();
}
