//===- ComponentsTest.cpp - UTF-8, byte-level, NFC and pre-tokenizer pieces ===//
//
// Expectations here are worked out by hand from the definitions (Unicode, GPT-2's regex and
// byte table); the cross-check against Hugging Face itself is ParityTest.cpp.
//
//===----------------------------------------------------------------------===//

#include "runtime/tokenizer/ByteLevel.h"
#include "runtime/tokenizer/Normalizer.h"
#include "runtime/tokenizer/PreTokenizer.h"
#include "runtime/tokenizer/UnicodeData.h"
#include "runtime/tokenizer/Utf8.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace xlc {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

/// gtest cannot print char32_t.
std::uint32_t u32(char32_t c) { return c; }

TEST(Utf8, EncodeDecodeEveryScalarValue) {
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp < 0xE000)
      continue;
    std::string s;
    utf8::append(s, cp);
    ASSERT_TRUE(utf8::isValid(s)) << std::hex << u32(cp);
    std::size_t pos = 0;
    ASSERT_EQ(u32(utf8::decode(s, pos)), u32(cp));
    ASSERT_EQ(pos, s.size());
    std::size_t end = s.size();
    ASSERT_EQ(u32(utf8::decodeBackward(s, end)), u32(cp));
    ASSERT_EQ(end, 0u);
  }
}

TEST(Utf8, SanitizeReplacesMaximalSubparts) {
  // Each case: input, expected output (U+FFFD written as R).
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"plain ascii", "plain ascii"},
      {"caf\xC3\xA9", "caf\xC3\xA9"},
      {"caf\xE9 au lait", "cafR au lait"}, // Latin-1 byte: one per byte
      {"\x80\x81", "RR"},                  // lone continuation bytes
      {"\xC0\xAF", "RR"},                  // C0 never starts a sequence
      {"\xE0\x80\xAF", "RRR"},             // overlong: E0 needs A0..BF next
      {"\xED\xA0\x80", "RRR"},             // surrogate: ED needs 80..9F next
      {"\xF4\x90\x80\x80", "RRRR"},        // above U+10FFFF
      {"\xF0\x9F\x98", "R"},               // truncated at the end: one
      {"\xF0\x9F\x98x", "Rx"},             // truncated before ASCII: one
      {"\xE2\x82 \xC3", "R R"},            // two truncated sequences
      {"\xF0\x9F\x98\x80\xF0\x9F", "\xF0\x9F\x98\x80R"},
      {"\xFF\xFE", "RR"},
  };
  for (const auto &[in, want] : cases) {
    std::string expected;
    for (char c : want)
      expected += c == 'R' ? kFffd : std::string(1, c);
    EXPECT_EQ(utf8::sanitize(in), expected) << "input bytes of size " << in.size();
    EXPECT_EQ(utf8::isValid(in), in == expected);
  }
}

TEST(ByteLevel, IsTheGpt2Bijection) {
  std::set<char32_t> seen;
  for (int b = 0; b < 256; ++b) {
    char32_t c = bytelevel::byteToChar(static_cast<std::uint8_t>(b));
    EXPECT_TRUE(seen.insert(c).second);
    EXPECT_EQ(bytelevel::charToByte(c), b);
  }
  EXPECT_EQ(u32(bytelevel::byteToChar(' ')), u32(U'\u0120'));  // 'Ġ'
  EXPECT_EQ(u32(bytelevel::byteToChar('\n')), u32(U'\u010A')); // 'Ċ'
  EXPECT_EQ(u32(bytelevel::byteToChar('A')), u32(U'A'));
  EXPECT_EQ(u32(bytelevel::byteToChar(0xAD)), u32(U'\u0143')); // the last non-printable byte
  EXPECT_EQ(u32(bytelevel::byteToChar(0xE9)),
            u32(U'\u00E9')); // printable Latin-1 stands for itself
  EXPECT_EQ(bytelevel::charToByte(U' '), -1);
  EXPECT_EQ(bytelevel::encode(" hi\n"), "\xC4\xA0hi\xC4\x8A");
  EXPECT_EQ(bytelevel::decodeToken("\xC4\xA0hi\xC4\x8A"), " hi\n");
  // A token with a character outside the alphabet decodes to its own UTF-8 (HF's rule).
  EXPECT_EQ(bytelevel::decodeToken("   "), "   ");
  EXPECT_EQ(bytelevel::decodeToken("a b"), "a b");
}

TEST(UnicodeData, Classes) {
  using namespace unicode;
  EXPECT_EQ(charFlags('a') & (kLetter | kNumber | kSpace), kLetter);
  EXPECT_EQ(charFlags('7') & (kLetter | kNumber | kSpace), kNumber);
  EXPECT_EQ(charFlags(' ') & (kLetter | kNumber | kSpace), kSpace);
  EXPECT_EQ(charFlags('\'') & (kLetter | kNumber | kSpace), 0);
  EXPECT_TRUE(charFlags(0x4E2D) & kLetter); // 中
  EXPECT_TRUE(charFlags(0x00B2) & kNumber); // ² (No)
  EXPECT_TRUE(charFlags(0x2167) & kNumber); // Ⅷ (Nl)
  EXPECT_TRUE(charFlags(0x0661) & kNumber); // Arabic-Indic one
  EXPECT_TRUE(charFlags(0x3000) & kSpace);  // ideographic space
  EXPECT_TRUE(charFlags(0x0085) & kSpace);  // NEL
  EXPECT_TRUE(charFlags(0x2028) & kSpace);  // line separator
  EXPECT_FALSE(charFlags(0x200B) & kSpace); // zero width space is Cf, not White_Space
  EXPECT_FALSE(charFlags(0x180E) & kSpace); // no longer White_Space since Unicode 6.3
  EXPECT_FALSE(charFlags(0x0301) & (kLetter | kNumber | kSpace)); // combining mark
  EXPECT_TRUE(charFlags(0x0301) & kWord);
  EXPECT_TRUE(charFlags('_') & kWord);
  EXPECT_STREQ(classesVersion(), "14.0.0");
  EXPECT_STREQ(nfcVersion(), "9.0");
}

TEST(Normalizer, Nfc) {
  EXPECT_EQ(toNfc("plain ASCII text\n"), "plain ASCII text\n");
  EXPECT_EQ(toNfc("cafe\xCC\x81"), "caf\xC3\xA9");               // e + acute -> é
  EXPECT_EQ(toNfc("caf\xC3\xA9"), "caf\xC3\xA9");                // already composed
  EXPECT_EQ(toNfc("\xE2\x84\xAB"), "\xC3\x85");                  // Angstrom sign -> Å
  EXPECT_EQ(toNfc("\xE2\x84\xA6"), "\xCE\xA9");                  // Ohm sign -> Ω
  EXPECT_EQ(toNfc("\xEF\xAC\x81"), "\xEF\xAC\x81");              // ﬁ: compatibility only
  EXPECT_EQ(toNfc("q\xCC\x87\xCC\xA3"), "q\xCC\xA3\xCC\x87");    // reorder: 0323 (220) first
  EXPECT_EQ(toNfc("e\xCC\x81\xCC\xA3"), "\xE1\xBA\xB9\xCC\x81"); // -> ẹ + acute
  EXPECT_EQ(toNfc("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"), "\xED\x95\x9C"); // jamo -> 한
  EXPECT_EQ(toNfc("\xED\x95\x9C"), "\xED\x95\x9C");
  EXPECT_EQ(toNfc("\xCC\x81x"), "\xCC\x81x");                               // leading mark stays
  EXPECT_EQ(toNfc("\xE0\xA4\x95\xE0\xA4\xBC"), "\xE0\xA4\x95\xE0\xA4\xBC"); // excluded composite
  EXPECT_EQ(toNfc("\xE0\xA5\x98"), "\xE0\xA4\x95\xE0\xA4\xBC");             // U+0958 decomposes
  // Unicode 9.0 data, as HF: U+1DFA (Unicode 14, class 218) is a starter there, so the acute
  // after it is blocked and nothing composes.
  EXPECT_EQ(toNfc("a\xE1\xB7\xBA\xCC\x81"), "a\xE1\xB7\xBA\xCC\x81");
  EXPECT_TRUE(isNfcInert("plain \xC2\xA0 text \xE4\xB8\xAD"));
  EXPECT_FALSE(isNfcInert("caf\xC3\xA9"));
}

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  forEachGpt2Piece(text, [&](std::string_view p) { out.emplace_back(p); });
  return out;
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2Regex) {
  EXPECT_EQ(pieces("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(pieces("I'm don't we'll"), (Pieces{"I", "'m", " don", "'t", " we", "'ll"}));
  EXPECT_EQ(pieces("IT'S 'sdf"), (Pieces{"IT", "'", "S", " '", "sdf"}));
  EXPECT_EQ(pieces("it\xE2\x80\x99s"), (Pieces{"it", "\xE2\x80\x99", "s"}));
  EXPECT_EQ(pieces("a  b"), (Pieces{"a", " ", " b"}));
  EXPECT_EQ(pieces("a   \n b"), (Pieces{"a", "   \n", " b"}));
  EXPECT_EQ(pieces("a \nb"), (Pieces{"a", " ", "\n", "b"}));
  EXPECT_EQ(pieces("x   "), (Pieces{"x", "   "}));
  EXPECT_EQ(pieces("\t\tx"), (Pieces{"\t", "\t", "x"}));
  EXPECT_EQ(pieces("abc123def 456"), (Pieces{"abc", "123", "def", " 456"}));
  EXPECT_EQ(pieces("!!! ?? x"), (Pieces{"!!!", " ??", " x"}));
  EXPECT_EQ(pieces(" 'll"), (Pieces{" '", "ll"}));
  EXPECT_EQ(pieces("caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87"),
            (Pieces{"caf\xC3\xA9", " \xE4\xB8\xAD\xE6\x96\x87"}));
  EXPECT_EQ(pieces("x\xC2\xA0y"), (Pieces{"x", "\xC2\xA0", "y"})); // NBSP is \s but not ' '
  EXPECT_EQ(pieces("'"), (Pieces{"'"}));
  EXPECT_EQ(pieces(" "), (Pieces{" "}));
}

} // namespace
} // namespace xlc
