//===- Json.cpp - Strict JSON reading for untrusted files -----------------===//

#include "runtime/support/Json.h"

#include "runtime/support/Error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace xlc::json {

namespace {

/// nlohmann's messages quote the offending token, which may hold raw bytes of the input.
std::string sanitize(std::string_view text) {
  std::string out;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += ch;
  }
  return out;
}

} // namespace

std::optional<std::size_t> findInvalidUtf8(std::string_view text) {
  const auto *s = reinterpret_cast<const unsigned char *>(text.data());
  std::size_t n = text.size(), i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i; // continuation byte without a lead, or 0xf8..0xff
    }
    if (n - i < len)
      return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xc0) != 0x80)
        return i;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return i;
    i += len;
  }
  return std::nullopt;
}

Json parseStrictJson(std::string_view text, std::string_view where, int maxDepth) {
  if (auto bad = findInvalidUtf8(text))
    fail("{}: not valid UTF-8 (byte 0x{:02x} at offset {})", where,
         static_cast<unsigned char>(text[*bad]), *bad);
  // JSON text never holds a raw NUL (strings spell it \u0000), but nlohmann::json treats one as
  // the end of the input and would accept "{...}\0<anything>".
  if (std::size_t nul = text.find('\0'); nul != std::string_view::npos)
    fail("{}: not valid JSON: NUL byte at offset {}", where, nul);

  // One key set per open object, innermost last. The callback sees every key before its value;
  // the last key seen tells a reader which field a syntax error (say, 1e999) sits in.
  std::vector<std::set<std::string>> keys;
  std::string lastKey;
  auto callback = [&](int depth, Json::parse_event_t event, Json &parsed) {
    using Event = Json::parse_event_t;
    switch (event) {
    case Event::object_start:
    case Event::array_start:
      if (depth > maxDepth)
        fail("{}: JSON nests deeper than the {} levels this format uses", where, maxDepth + 1);
      if (event == Event::object_start)
        keys.emplace_back();
      break;
    case Event::object_end:
      if (!keys.empty())
        keys.pop_back();
      break;
    case Event::key: {
      const std::string &key = parsed.get_ref<const std::string &>();
      if (!keys.empty() && !keys.back().insert(key).second)
        fail("{}: duplicate key {} in one JSON object", where, quoteText(key));
      lastKey = key;
      break;
    }
    default:
      break;
    }
    return true;
  };

  try {
    return Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
  } catch (const Json::exception &e) {
    // parse_error, and out_of_range for a number beyond a double ("number overflow").
    if (lastKey.empty())
      fail("{}: not valid JSON: {}", where, sanitize(e.what()));
    fail("{}: not valid JSON: {} (after the key {})", where, sanitize(e.what()),
         quoteText(lastKey));
  }
}

std::string quoteText(std::string_view text) {
  constexpr std::size_t kMaxShown = 80;
  std::string out = "'";
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i == kMaxShown) {
      out += fmt::format("...' ({} bytes)", text.size());
      return out;
    }
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += text[i];
    } else if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += text[i];
    }
  }
  return out + "'";
}

std::string_view typeName(const Json &value) {
  switch (value.type()) {
  case Json::value_t::null:
    return "null";
  case Json::value_t::object:
    return "an object";
  case Json::value_t::array:
    return "an array";
  case Json::value_t::string:
    return "a string";
  case Json::value_t::boolean:
    return "a boolean";
  case Json::value_t::number_integer:
    return value.get<std::int64_t>() < 0 ? "a negative integer" : "an integer";
  case Json::value_t::number_unsigned:
    return "an unsigned integer";
  case Json::value_t::number_float:
    return "a floating-point number";
  case Json::value_t::binary:
    return "binary data";
  case Json::value_t::discarded:
    return "a discarded value";
  }
  return "an unknown value";
}

std::string describe(const Json &value) {
  // Values worth quoting; for everything else the type says it all.
  switch (value.type()) {
  case Json::value_t::string:
    return fmt::format("the string {}", quoteText(value.get_ref<const std::string &>()));
  case Json::value_t::boolean:
    return value.get<bool>() ? "true" : "false";
  case Json::value_t::number_integer:
    return fmt::format("the integer {}", value.get<std::int64_t>());
  case Json::value_t::number_unsigned:
    return fmt::format("the integer {}", value.get<std::uint64_t>());
  case Json::value_t::number_float:
    return fmt::format("the number {}", value.get<double>());
  default:
    return std::string(typeName(value));
  }
}

Loc Loc::child(std::string_view key) const {
  return {item, path.empty() ? std::string(key) : fmt::format("{}.{}", path, key)};
}

Loc Loc::index(std::size_t i) const { return {item, fmt::format("{}[{}]", path, i)}; }

std::uint64_t asU64(const Json &value, const Loc &loc) {
  // nlohmann stores every non-negative integer literal as number_unsigned.
  if (!value.is_number_unsigned())
    fail("{} must be a non-negative integer, got {}", loc.str(), describe(value));
  return value.get<std::uint64_t>();
}

std::uint32_t asU32(const Json &value, const Loc &loc) {
  std::uint64_t v = asU64(value, loc);
  if (v > std::numeric_limits<std::uint32_t>::max())
    fail("{} must be at most {}, got {}", loc.str(), std::numeric_limits<std::uint32_t>::max(), v);
  return static_cast<std::uint32_t>(v);
}

std::int64_t asI64(const Json &value, const Loc &loc) {
  if (value.is_number_unsigned()) {
    std::uint64_t v = value.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      fail("{} does not fit in i64: {}", loc.str(), v);
    return static_cast<std::int64_t>(v);
  }
  if (value.is_number_integer())
    return value.get<std::int64_t>();
  fail("{} must be an integer, got {}", loc.str(), describe(value));
}

double asNumber(const Json &value, const Loc &loc) {
  if (value.is_number_unsigned())
    return static_cast<double>(value.get<std::uint64_t>());
  if (value.is_number_integer())
    return static_cast<double>(value.get<std::int64_t>());
  if (value.is_number_float()) {
    double v = value.get<double>();
    if (!std::isfinite(v))
      fail("{} must be finite, got {}", loc.str(), v);
    return v;
  }
  fail("{} must be a number, got {}", loc.str(), describe(value));
}

const std::string &asString(const Json &value, const Loc &loc) {
  if (!value.is_string())
    fail("{} must be a string, got {}", loc.str(), describe(value));
  return value.get_ref<const std::string &>();
}

const Json::array_t &asArray(const Json &value, const Loc &loc) {
  if (!value.is_array())
    fail("{} must be an array, got {}", loc.str(), describe(value));
  return value.get_ref<const Json::array_t &>();
}

ObjectReader::ObjectReader(const Json &value, Loc loc) : object_(value), loc_(std::move(loc)) {
  if (!value.is_object())
    fail("{} must be an object, got {}", loc_.str(), describe(value));
}

const Json *ObjectReader::find(const char *key) {
  seen_.push_back(key);
  auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

const Json &ObjectReader::get(const char *key) {
  if (const Json *value = find(key))
    return *value;
  fail("{}: missing field '{}'", loc_.str(), key);
}

void ObjectReader::finish() const {
  for (const auto &[key, value] : object_.items()) {
    if (std::find(seen_.begin(), seen_.end(), key) == seen_.end())
      fail("{}: unknown field {}", loc_.str(), quoteText(key));
  }
}

} // namespace xlc::json
