//===- JsonUtil.h - Strict JSON parsing for untrusted headers ---*- C++ -*-===//
//
// Safetensors headers and index files come from disk and are never trusted. nlohmann::json alone
// accepts duplicate keys (the last one silently wins) and nests without limit; these helpers add
// the checks the format needs: valid UTF-8 everywhere, no duplicate key in any object, and a
// nesting-depth cap so a hostile header cannot make the parser build a deep tree.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_WEIGHTS_JSONUTIL_H
#define XLC_RUNTIME_WEIGHTS_JSONUTIL_H

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace xlc::weights {

/// Offset of the first byte that breaks UTF-8 (overlong forms, surrogates and code points above
/// U+10FFFF are errors), or nullopt when |text| is valid.
std::optional<std::size_t> findInvalidUtf8(std::string_view text);

/// Parses |text| as JSON. Throws xlc::Error naming |label| when the text is not valid UTF-8, not
/// valid JSON (a raw NUL byte included, which nlohmann::json would take as the end), repeats a
/// key within one object, or nests containers deeper than |maxDepth|
/// (the root container is at depth 0).
nlohmann::json parseStrictJson(std::string_view text, std::string_view label, int maxDepth);

/// |name| in single quotes with control characters, quotes and backslashes escaped, so a hostile
/// tensor name cannot break a message or a terminal.
std::string quoteName(std::string_view name);

/// The JSON type of |value| with its article ("a string", "an array", "an unsigned integer", ...).
std::string_view jsonTypeName(const nlohmann::json &value);

} // namespace xlc::weights

#endif // XLC_RUNTIME_WEIGHTS_JSONUTIL_H
