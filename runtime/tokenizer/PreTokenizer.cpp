//===- PreTokenizer.cpp - The GPT-2 pre-tokenizer split -------------------===//

#include "runtime/tokenizer/PreTokenizer.h"

#include "runtime/tokenizer/UnicodeData.h"
#include "runtime/tokenizer/Utf8.h"

namespace xlc {
namespace {

// The regex sees four kinds of characters: \p{L}, \p{N}, \s and everything else ("other", the
// class [^\s\p{L}\p{N}]). The three are disjoint.
enum class Kind { Letter, Number, Space, Other };

Kind kindOf(char32_t cp) {
  std::uint8_t f = unicode::charFlags(cp);
  if (f & unicode::kLetter)
    return Kind::Letter;
  if (f & unicode::kNumber)
    return Kind::Number;
  if (f & unicode::kSpace)
    return Kind::Space;
  return Kind::Other;
}

/// Kind of the character at |pos| and the offset just past it.
Kind kindAt(std::string_view text, std::size_t pos, std::size_t &next) {
  unsigned char c = static_cast<unsigned char>(text[pos]);
  if (c < 0x80) {
    next = pos + 1;
    return kindOf(c);
  }
  next = pos;
  return kindOf(utf8::decode(text, next));
}

/// End of the run of characters of kind |kind| that starts at |pos| (which is of that kind).
std::size_t runEnd(std::string_view text, std::size_t pos, Kind kind) {
  std::size_t next;
  while (pos < text.size() && kindAt(text, pos, next) == kind)
    pos = next;
  return pos;
}

} // namespace

std::size_t gpt2MatchEnd(std::string_view text, std::size_t pos) {
  const std::size_t n = text.size();
  const char c = text[pos];

  // 's|'t|'re|'ve|'m|'ll|'d: case-sensitive, ASCII apostrophe only, whatever follows ("'S" and
  // "’s" fall through to the punctuation alternative).
  if (c == '\'' && pos + 1 < n) {
    char a = text[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
      return pos + 2;
    if (pos + 2 < n) {
      char b = text[pos + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return pos + 3;
    }
  }

  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional U+0020 glued to a following run of
  // one class. When the space is not followed by such a run the optional part backtracks to
  // empty, and the space itself (class \s) cannot start any of the three runs.
  std::size_t next;
  if (c == ' ' && pos + 1 < n) {
    Kind k = kindAt(text, pos + 1, next);
    if (k != Kind::Space)
      return runEnd(text, next, k);
  }
  Kind k = kindAt(text, pos, next);
  if (k != Kind::Space)
    return runEnd(text, next, k);

  // "\s+(?!\S)|\s+": the whitespace run [pos, end). At the end of the text the first alternative
  // takes all of it. Otherwise a non-space follows, so the greedy run backtracks one character:
  // the shorter run is followed by whitespace, which satisfies (?!\S), leaving the last space to
  // start the next match (where " ?\p{L}+" etc. may take it). A run of one character cannot give
  // one back, and the final "\s+" takes it alone.
  std::size_t end = runEnd(text, next, Kind::Space);
  if (end == n)
    return end;
  std::size_t lastStart = end;
  utf8::decodeBackward(text, lastStart);
  return lastStart > pos ? lastStart : end;
}

} // namespace xlc
