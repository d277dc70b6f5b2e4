//===- JsonUtil.cpp - Strict JSON parsing for untrusted headers -----------===//

#include "runtime/weights/JsonUtil.h"

#include "runtime/support/Error.h"

#include <set>
#include <vector>

namespace xlc::weights {

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

nlohmann::json parseStrictJson(std::string_view text, std::string_view label, int maxDepth) {
  if (auto bad = findInvalidUtf8(text))
    fail("{}: not valid UTF-8 (byte 0x{:02x} at offset {})", label,
         static_cast<unsigned char>(text[*bad]), *bad);

  // JSON text never holds a raw NUL (strings spell it \u0000), but nlohmann::json treats one as
  // the end of the input and would accept "{...}\0<anything>".
  if (std::size_t nul = text.find('\0'); nul != std::string_view::npos)
    fail("{}: not valid JSON: NUL byte at offset {}", label, nul);

  // One key set per open object, innermost last. The callback sees every key before its value.
  std::vector<std::set<std::string>> keys;
  auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json &parsed) {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
    case Event::object_start:
    case Event::array_start:
      if (depth > maxDepth)
        fail("{}: JSON nests deeper than the {} levels this format uses", label, maxDepth + 1);
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
        fail("{}: duplicate key {} in one JSON object", label, quoteName(key));
      break;
    }
    default:
      break;
    }
    return true;
  };

  try {
    return nlohmann::json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
  } catch (const nlohmann::json::exception &e) {
    fail("{}: not valid JSON: {}", label, e.what());
  }
}

std::string quoteName(std::string_view name) {
  std::string out = "'";
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += ch;
    }
  }
  out += '\'';
  return out;
}

std::string_view jsonTypeName(const nlohmann::json &value) {
  switch (value.type()) {
  case nlohmann::json::value_t::null:
    return "null";
  case nlohmann::json::value_t::object:
    return "an object";
  case nlohmann::json::value_t::array:
    return "an array";
  case nlohmann::json::value_t::string:
    return "a string";
  case nlohmann::json::value_t::boolean:
    return "a boolean";
  case nlohmann::json::value_t::number_integer:
    return value.get<std::int64_t>() < 0 ? "a negative integer" : "an integer";
  case nlohmann::json::value_t::number_unsigned:
    return "an unsigned integer";
  case nlohmann::json::value_t::number_float:
    return "a floating-point number";
  case nlohmann::json::value_t::binary:
    return "binary data";
  case nlohmann::json::value_t::discarded:
    return "a discarded value";
  }
  return "an unknown value";
}

} // namespace xlc::weights
