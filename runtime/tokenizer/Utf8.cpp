//===- Utf8.cpp - UTF-8 validation and lossy repair -----------------------===//

#include "runtime/tokenizer/Utf8.h"

#include <cstdint>
#include <cstring>

namespace xlc::utf8 {

std::size_t sequenceLength(std::string_view s, std::size_t pos, std::size_t &subpart) {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char lead = b(pos);
  subpart = 1;
  if (lead < 0x80)
    return 1;
  std::size_t need;
  // The allowed range of the second byte depends on the lead: this is what excludes overlongs,
  // surrogates and code points above U+10FFFF (Unicode Table 3-7, well-formed byte sequences).
  unsigned char lo = 0x80, hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 3;
    if (lead == 0xE0)
      lo = 0xA0;
    else if (lead == 0xED)
      hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 4;
    if (lead == 0xF0)
      lo = 0x90;
    else if (lead == 0xF4)
      hi = 0x8F;
  } else {
    return 0; // 0x80..0xC1, 0xF5..0xFF never start a sequence: a one-byte maximal subpart
  }
  for (std::size_t k = 1; k < need; ++k) {
    if (pos + k >= s.size())
      return 0; // truncated: the bytes so far are the maximal subpart
    unsigned char c = b(pos + k);
    bool ok = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok)
      return 0;
    subpart = k + 1;
  }
  return need;
}

bool isValid(std::string_view s) {
  std::size_t pos = 0;
  const std::size_t n = s.size();
  while (pos < n) {
    // ASCII runs are the common case: skip eight bytes at a time while no high bit is set.
    while (pos + 8 <= n) {
      std::uint64_t word;
      std::memcpy(&word, s.data() + pos, 8);
      if (word & 0x8080808080808080ULL)
        break;
      pos += 8;
    }
    if (pos >= n)
      break;
    std::size_t subpart;
    std::size_t len = sequenceLength(s, pos, subpart);
    if (len == 0)
      return false;
    pos += len;
  }
  return true;
}

std::string sanitize(std::string_view s) {
  if (isValid(s))
    return std::string(s);
  std::string out;
  out.reserve(s.size() + 16);
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t subpart;
    std::size_t len = sequenceLength(s, pos, subpart);
    if (len) {
      out.append(s.substr(pos, len));
      pos += len;
    } else {
      append(out, kReplacement);
      pos += subpart;
    }
  }
  return out;
}

} // namespace xlc::utf8
