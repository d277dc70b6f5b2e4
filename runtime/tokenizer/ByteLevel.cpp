//===- ByteLevel.cpp - GPT-2 byte-level alphabet --------------------------===//

#include "runtime/tokenizer/ByteLevel.h"

#include "runtime/tokenizer/Utf8.h"

#include <array>

namespace xlc::bytelevel {
namespace {

struct Tables {
  std::array<char32_t, 256> toChar{};
  std::array<std::string, 256> toUtf8;
  std::array<std::int16_t, 324> fromChar{}; // stand-ins are all below U+0144
};

const Tables &tables() {
  static const Tables t = [] {
    Tables t;
    auto printable = [](unsigned b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next = 256;
    for (unsigned b = 0; b < 256; ++b)
      t.toChar[b] = printable(b) ? char32_t(b) : next++;
    t.fromChar.fill(-1);
    for (unsigned b = 0; b < 256; ++b) {
      utf8::append(t.toUtf8[b], t.toChar[b]);
      t.fromChar[t.toChar[b]] = static_cast<std::int16_t>(b);
    }
    return t;
  }();
  return t;
}

} // namespace

char32_t byteToChar(std::uint8_t b) { return tables().toChar[b]; }

std::string_view byteToUtf8(std::uint8_t b) { return tables().toUtf8[b]; }

int charToByte(char32_t cp) {
  const Tables &t = tables();
  return cp < t.fromChar.size() ? t.fromChar[cp] : -1;
}

std::string encode(std::string_view bytes) {
  const Tables &t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes)
    out += t.toUtf8[static_cast<unsigned char>(c)];
  return out;
}

std::string decodeToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  // Tokens come from tokenizer.json, which nlohmann::json has validated as UTF-8.
  for (std::size_t pos = 0; pos < token.size();) {
    int b = charToByte(utf8::decode(token, pos));
    if (b < 0)
      return std::string(token);
    out.push_back(static_cast<char>(b));
  }
  return out;
}

} // namespace xlc::bytelevel
