//===- Normalizer.cpp - NFC -----------------------------------------------===//

#include "runtime/tokenizer/Normalizer.h"

#include "runtime/tokenizer/UnicodeData.h"
#include "runtime/tokenizer/Utf8.h"

#include <vector>

namespace xlc {
namespace {

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = 11172;

void decomposeInto(char32_t cp, std::vector<char32_t> &out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount)
      out.push_back(kTBase + s % kTCount);
    return;
  }
  std::span<const char32_t> d = unicode::canonicalDecomposition(cp);
  if (d.empty())
    out.push_back(cp);
  else
    out.insert(out.end(), d.begin(), d.end());
}

} // namespace

bool isNfcInert(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[pos]);
    if (c < 0xC3) { // everything below U+00C0 is inert (ASCII, C1 and the Latin-1 symbols)
      pos += c < 0x80 ? 1 : 2;
      continue;
    }
    if (unicode::isNfcSensitive(utf8::decode(text, pos)))
      return false;
  }
  return true;
}

std::string toNfc(std::string_view text) {
  if (isNfcInert(text))
    return std::string(text);

  // 1. Full canonical decomposition.
  std::vector<char32_t> chars;
  chars.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();)
    decomposeInto(utf8::decode(text, pos), chars);

  // 2. Canonical ordering: within each run of non-starters, a stable sort by combining class.
  // Runs are short (a handful of marks), so insertion sort is the right tool.
  std::vector<std::uint8_t> ccc(chars.size());
  for (std::size_t i = 0; i < chars.size(); ++i)
    ccc[i] = unicode::combiningClass(chars[i]);
  for (std::size_t i = 1; i < chars.size(); ++i) {
    if (ccc[i] == 0)
      continue;
    for (std::size_t j = i; j > 0 && ccc[j - 1] > ccc[j]; --j) {
      std::swap(ccc[j - 1], ccc[j]);
      std::swap(chars[j - 1], chars[j]);
    }
  }

  // 3. Canonical composition. Invariants: |starter| indexes the last starter written (or is
  // npos before the first one); |lastCcc| is the class of the last character written. A
  // character C composes with the starter when nothing between them blocks it: either it directly
  // follows the starter, or every character in between has a class lower than C's (they are in
  // canonical order, so checking the last one written suffices; a class-0 one would have become
  // the new starter).
  constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::size_t starter = npos;
  std::uint8_t lastCcc = 0;
  std::size_t written = 0;
  for (std::size_t i = 0; i < chars.size(); ++i) {
    char32_t c = chars[i];
    std::uint8_t cc = ccc[i];
    if (starter != npos) {
      bool adjacent = starter + 1 == written;
      if (adjacent || (lastCcc != 0 && lastCcc < cc)) {
        if (char32_t composite = unicode::compose(chars[starter], c)) {
          chars[starter] = composite;
          continue;
        }
      }
    }
    if (cc == 0)
      starter = written;
    lastCcc = cc;
    chars[written++] = c;
  }

  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < written; ++i)
    utf8::append(out, chars[i]);
  return out;
}

} // namespace xlc
