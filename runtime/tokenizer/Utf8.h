//===- Utf8.h - UTF-8 decoding, encoding and lossy repair -------*- C++ -*-===//
//
// The tokenizer works on UTF-8 throughout. Text from outside (encode input) and the byte stream
// rebuilt by the byte-level decoder may be ill-formed; both are repaired with one rule,
// sanitize(), so that encode and decode agree with what Hugging Face `tokenizers` sees:
//
//   every maximal ill-formed subsequence becomes one U+FFFD
//
// ("substitution of maximal subparts", Unicode 15 §3.9 / U+FFFD recommended practice). This is
// what Rust's String::from_utf8_lossy (HF decode) and Python's bytes.decode("utf-8",
// errors="replace") (how the fixture script turns invalid bytes into a str for HF) both do. A
// maximal subpart is the longest prefix of a well-formed sequence that the bytes start with, or a
// single byte when the byte cannot start one (0x80..0xC1, 0xF5..0xFF). Surrogates (ED A0..BF) and
// overlongs (E0 80..9F, F0 80..8F, C0/C1) are ill-formed.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TOKENIZER_UTF8_H
#define XLC_RUNTIME_TOKENIZER_UTF8_H

#include <cstddef>
#include <string>
#include <string_view>

namespace xlc::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;

/// Length of the well-formed sequence at s[pos], or 0 if the bytes there are ill-formed; then
/// |subpart| is the length of the maximal subpart to replace (>= 1). pos < s.size().
std::size_t sequenceLength(std::string_view s, std::size_t pos, std::size_t &subpart);

/// True if |s| is well-formed UTF-8.
bool isValid(std::string_view s);

/// |s| with every maximal ill-formed subsequence replaced by U+FFFD (see the file comment).
std::string sanitize(std::string_view s);

/// Decodes the code point at s[pos] and advances pos. |s| must be well-formed UTF-8.
inline char32_t decode(std::string_view s, std::size_t &pos) {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char c = b(pos);
  if (c < 0x80) {
    ++pos;
    return c;
  }
  if (c < 0xE0) {
    char32_t cp = (char32_t(c & 0x1F) << 6) | (b(pos + 1) & 0x3F);
    pos += 2;
    return cp;
  }
  if (c < 0xF0) {
    char32_t cp =
        (char32_t(c & 0x0F) << 12) | (char32_t(b(pos + 1) & 0x3F) << 6) | (b(pos + 2) & 0x3F);
    pos += 3;
    return cp;
  }
  char32_t cp = (char32_t(c & 0x07) << 18) | (char32_t(b(pos + 1) & 0x3F) << 12) |
                (char32_t(b(pos + 2) & 0x3F) << 6) | (b(pos + 3) & 0x3F);
  pos += 4;
  return cp;
}

/// Decodes the code point that ends at s[end - 1] and moves end to its first byte. end > 0.
inline char32_t decodeBackward(std::string_view s, std::size_t &end) {
  std::size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
    --start;
  std::size_t pos = start;
  char32_t cp = decode(s, pos);
  end = start;
  return cp;
}

/// Appends the UTF-8 encoding of |cp| (a scalar value) to |out|.
inline void append(std::string &out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

} // namespace xlc::utf8

#endif // XLC_RUNTIME_TOKENIZER_UTF8_H
