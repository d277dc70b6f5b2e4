//===- ByteLevel.h - GPT-2 byte-level alphabet ------------------*- C++ -*-===//
//
// Byte-level BPE works on bytes, but its vocabulary is written in printable characters: GPT-2's
// bytes_to_unicode() gives each of the 256 byte values a stand-in code point. The 188 printable
// bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves; the other 68 (controls,
// space, U+00A0, U+00AD) get U+0100, U+0101, ... in byte order, so the space 0x20 is 'Ġ' (U+0120)
// and '\n' is 'Ċ' (U+010A). The map is a bijection between bytes and 256 code points.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TOKENIZER_BYTELEVEL_H
#define XLC_RUNTIME_TOKENIZER_BYTELEVEL_H

#include <cstdint>
#include <string>
#include <string_view>

namespace xlc::bytelevel {

/// The stand-in code point of byte |b|.
char32_t byteToChar(std::uint8_t b);

/// The UTF-8 of byte |b|'s stand-in (one or two bytes).
std::string_view byteToUtf8(std::uint8_t b);

/// The byte whose stand-in is |cp|, or -1 if |cp| is not in the byte-level alphabet.
int charToByte(char32_t cp);

/// Maps raw bytes to their stand-ins: the string the BPE vocabulary is written in.
std::string encode(std::string_view bytes);

/// The bytes a token stands for, as Hugging Face's ByteLevel decoder computes them: each
/// character mapped back to its byte, or, when any character of the token is outside the
/// alphabet (e.g. the plain spaces of GPT-NeoX's added whitespace tokens), the token's own UTF-8
/// unchanged.
std::string decodeToken(std::string_view token);

} // namespace xlc::bytelevel

#endif // XLC_RUNTIME_TOKENIZER_BYTELEVEL_H
