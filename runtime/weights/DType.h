//===- DType.h - Element types of safetensors checkpoints -------*- C++ -*-===//
//
// The element types a safetensors header may name. Every type listed here occupies a whole number
// of bytes, so a header using it can be listed and validated; only F32, BF16 and F16 can be
// converted to the runtime's storage types (see Convert.h). Sub-byte types (F4, F6_*) are not
// listed: a header naming them is reported as using an unknown dtype.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_WEIGHTS_DTYPE_H
#define XLC_RUNTIME_WEIGHTS_DTYPE_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace xlc::weights {

enum class DType : std::uint8_t {
  BOOL,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  I64,
  U64,
  F64,
  C64,
};

/// The safetensors spelling, e.g. "BF16".
std::string_view dtypeName(DType dtype);

/// Bytes per element.
std::size_t dtypeSize(DType dtype);

/// Parses a safetensors dtype name (case-sensitive, as the format requires).
std::optional<DType> parseDType(std::string_view name);

/// Whether tensors of this type can be read as float32 or bfloat16 (F32, BF16, F16).
bool isConvertibleFloat(DType dtype);

/// "F32|BF16|F16", or "any" for an empty list.
std::string dtypeListName(std::span<const DType> dtypes);

} // namespace xlc::weights

#endif // XLC_RUNTIME_WEIGHTS_DTYPE_H
