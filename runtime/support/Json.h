//===- Json.h - Strict JSON reading for untrusted files ---------*- C++ -*-===//
//
// Everything the runtime reads as JSON comes from disk and is never trusted: safetensors headers
// and index files, config.json, the artifact's payload. nlohmann::json alone accepts duplicate
// keys (the last silently wins), nests without limit and converts between number types on
// request; these helpers add the checks the formats need and make every field access a checked
// one whose failure names the file and the item:
//
//   Json root = parseStrictJson(text, "'model.xlca'", /*maxDepth=*/32);
//   ObjectReader r(root, {"model.xlca: buffer 3 'x'", ""});
//   std::uint32_t id = r.u32("id");          // missing / ill-typed / out of range -> xlc::Error
//   r.finish();                              // any field not read -> "unknown field"
//
// Every failure throws xlc::Error.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_SUPPORT_JSON_H
#define XLC_RUNTIME_SUPPORT_JSON_H

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::json {

using Json = nlohmann::json;

/// Offset of the first byte that breaks UTF-8 (overlong forms, surrogates and code points above
/// U+10FFFF are errors), or nullopt when |text| is valid.
std::optional<std::size_t> findInvalidUtf8(std::string_view text);

/// Parses |text| as one JSON value. Throws xlc::Error "<where>: ..." when the text is not valid
/// UTF-8, holds a NUL byte (nlohmann::json would take it as the end of the input), is not valid
/// JSON (a number too large for a double included), repeats a key within one object, or nests
/// containers deeper than |maxDepth| (the root container is at depth 0).
Json parseStrictJson(std::string_view text, std::string_view where, int maxDepth);

/// |text| in single quotes with quotes and backslashes escaped, control and non-ASCII bytes
/// written as \xNN, and long strings shortened, so a hostile name cannot break a message or a
/// terminal.
std::string quoteText(std::string_view text);

/// The JSON type of |value| with its article, for messages: "a string", "an array",
/// "an unsigned integer", "a negative integer", "a floating-point number", ...
std::string_view typeName(const Json &value);

/// |value| itself, briefly, for messages: "the string 'x'", "the integer 3", "an array", ...
std::string describe(const Json &value);

/// Where a value sits, for messages: the item ("model.xlca: buffer 3 'x'") and the path of the
/// value inside it ("shape[2]", "offset.div"); str() is "model.xlca: buffer 3 'x': shape[2]".
struct Loc {
  std::string item;
  std::string path;

  std::string str() const { return path.empty() ? item : item + ": " + path; }
  Loc child(std::string_view key) const;
  Loc index(std::size_t i) const;
};

/// Typed conversions of one value; failures read "<loc> must be ..., got ...".
std::uint64_t asU64(const Json &value, const Loc &loc);
std::uint32_t asU32(const Json &value, const Loc &loc);
std::int64_t asI64(const Json &value, const Loc &loc);
/// A finite number (integer or floating-point) as a double.
double asNumber(const Json &value, const Loc &loc);
const std::string &asString(const Json &value, const Loc &loc);
const Json::array_t &asArray(const Json &value, const Loc &loc);

/// The fields of one object, read with checked accessors; finish() refuses fields nobody read.
class ObjectReader {
public:
  /// Throws unless |value| is an object.
  ObjectReader(const Json &value, Loc loc);

  const Loc &loc() const { return loc_; }
  Loc field(std::string_view key) const { return loc_.child(key); }

  /// The field's value; throws when it is missing.
  const Json &get(const char *key);
  /// The field's value, or nullptr when it is missing.
  const Json *find(const char *key);

  std::uint64_t u64(const char *key) { return asU64(get(key), field(key)); }
  std::uint32_t u32(const char *key) { return asU32(get(key), field(key)); }
  const std::string &string(const char *key) { return asString(get(key), field(key)); }
  const Json::array_t &array(const char *key) { return asArray(get(key), field(key)); }

  /// Throws naming the first key that no accessor asked for.
  void finish() const;

private:
  const Json &object_;
  Loc loc_;
  std::vector<std::string_view> seen_;
};

} // namespace xlc::json

#endif // XLC_RUNTIME_SUPPORT_JSON_H
