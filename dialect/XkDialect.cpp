//===- XkDialect.cpp - xk dialect and attributes --------------------------===//

#include "dialect/XkDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace xlc::xk;

#include "dialect/XkDialect.cpp.inc"
#include "dialect/XkEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/XkAttrs.cpp.inc"

void XkDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/XkAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialect/XkOps.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// #xk.tile<name = value, ...>
//===----------------------------------------------------------------------===//

// The entries live in a DictionaryAttr, which keeps them sorted by name: printing walks it in
// order, so two equal configurations always print the same text.
Attribute TileAttr::parse(AsmParser &parser, Type) {
  SmallVector<NamedAttribute> entries;
  Builder b(parser.getContext());
  auto parseEntry = [&]() -> ParseResult {
    std::string name;
    int64_t value;
    if (parser.parseKeywordOrString(&name) || parser.parseEqual() || parser.parseInteger(value))
      return failure();
    entries.emplace_back(b.getStringAttr(name), b.getI64IntegerAttr(value));
    return success();
  };
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseCommaSeparatedList(AsmParser::Delimiter::LessGreater, parseEntry))
    return {};
  return parser.getChecked<TileAttr>(loc, parser.getContext(), b.getDictionaryAttr(entries));
}

void TileAttr::print(AsmPrinter &printer) const {
  printer << "<";
  llvm::interleaveComma(getEntries(), printer, [&](NamedAttribute entry) {
    printer << entry.getName().getValue() << " = "
            << llvm::cast<IntegerAttr>(entry.getValue()).getInt();
  });
  printer << ">";
}

LogicalResult TileAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               DictionaryAttr entries) {
  for (NamedAttribute entry : entries) {
    auto value = llvm::dyn_cast<IntegerAttr>(entry.getValue());
    if (!value)
      return emitError() << "tile entry '" << entry.getName().getValue()
                         << "' must be an integer";
    if (value.getInt() <= 0)
      return emitError() << "tile entry '" << entry.getName().getValue()
                         << "' must be positive, got " << value.getInt();
  }
  return success();
}

std::optional<int64_t> TileAttr::get(StringRef name) const {
  if (auto value = getEntries().getAs<IntegerAttr>(name))
    return value.getInt();
  return std::nullopt;
}

std::string TileAttr::str() const {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << Attribute(*this);
  return os.str();
}

TileAttr TileAttr::get(MLIRContext *context, ArrayRef<std::pair<StringRef, int64_t>> entries) {
  Builder b(context);
  SmallVector<NamedAttribute> named;
  for (auto [name, value] : entries)
    named.emplace_back(b.getStringAttr(name), b.getI64IntegerAttr(value));
  return Base::get(context, b.getDictionaryAttr(named));
}
