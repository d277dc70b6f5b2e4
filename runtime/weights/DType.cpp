//===- DType.cpp - Element types of safetensors checkpoints ---------------===//

#include "runtime/weights/DType.h"

#include <array>
#include <utility>

namespace xlc::weights {

namespace {

struct DTypeEntry {
  DType dtype;
  std::string_view name;
  std::size_t size;
};

constexpr std::array<DTypeEntry, 17> kDTypes = {{
    {DType::BOOL, "BOOL", 1},
    {DType::U8, "U8", 1},
    {DType::I8, "I8", 1},
    {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::F8_E8M0, "F8_E8M0", 1},
    {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},
    {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},
    {DType::F64, "F64", 8},
    {DType::C64, "C64", 8},
}};

const DTypeEntry &entry(DType dtype) {
  // The table is in enum order; the static_assert below keeps it that way.
  return kDTypes[static_cast<std::size_t>(dtype)];
}

constexpr bool tableInEnumOrder() {
  for (std::size_t i = 0; i < kDTypes.size(); ++i)
    if (static_cast<std::size_t>(kDTypes[i].dtype) != i)
      return false;
  return true;
}
static_assert(tableInEnumOrder(), "kDTypes must list the DType enumerators in order");

} // namespace

std::string_view dtypeName(DType dtype) { return entry(dtype).name; }

std::size_t dtypeSize(DType dtype) { return entry(dtype).size; }

std::optional<DType> parseDType(std::string_view name) {
  for (const DTypeEntry &e : kDTypes)
    if (e.name == name)
      return e.dtype;
  return std::nullopt;
}

bool isConvertibleFloat(DType dtype) {
  return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16;
}

std::string dtypeListName(std::span<const DType> dtypes) {
  if (dtypes.empty())
    return "any";
  std::string out;
  for (DType d : dtypes) {
    if (!out.empty())
      out += '|';
    out += dtypeName(d);
  }
  return out;
}

} // namespace xlc::weights
