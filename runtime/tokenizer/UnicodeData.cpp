//===- UnicodeData.cpp - Lookups into the generated Unicode tables --------===//

#include "runtime/tokenizer/UnicodeData.h"

#include <algorithm>
#include <array>

namespace xlc::unicode {
namespace {

struct ClassRange {
  char32_t first, last;
  std::uint8_t flags;
};
struct CccRange {
  char32_t first, last;
  std::uint8_t value;
};
struct DecompositionEntry {
  char32_t cp;
  std::uint16_t offset;
  std::uint8_t length;
};
struct CompositionEntry {
  std::uint64_t key; // (first << 21) | second
  char32_t composite;
};

#include "runtime/tokenizer/UnicodeTables.inc"

// Hangul syllables compose and decompose arithmetically (Unicode §3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

/// Binary search over sorted, non-overlapping [first, last] ranges.
template <typename Range, std::size_t N>
const Range *findRange(const Range (&table)[N], char32_t cp) {
  const Range *it = std::upper_bound(std::begin(table), std::end(table), cp,
                                     [](char32_t c, const Range &r) { return c < r.first; });
  if (it == std::begin(table))
    return nullptr;
  --it;
  return cp <= it->last ? it : nullptr;
}

// ASCII is most of the text the tokenizer sees: its flags come from a direct table.
const std::array<std::uint8_t, 128> kAsciiFlags = [] {
  std::array<std::uint8_t, 128> flags{};
  for (char32_t c = 0; c < 128; ++c) {
    const ClassRange *r = findRange(kClassRanges, c);
    flags[c] = r ? r->flags : 0;
  }
  return flags;
}();

} // namespace

std::uint8_t charFlags(char32_t cp) {
  if (cp < 128)
    return kAsciiFlags[cp];
  const ClassRange *r = findRange(kClassRanges, cp);
  return r ? r->flags : 0;
}

std::uint8_t combiningClass(char32_t cp) {
  if (cp < 0x300)
    return 0;
  const CccRange *r = findRange(kCccRanges, cp);
  return r ? r->value : 0;
}

std::span<const char32_t> canonicalDecomposition(char32_t cp) {
  const DecompositionEntry *it =
      std::lower_bound(std::begin(kDecompositions), std::end(kDecompositions), cp,
                       [](const DecompositionEntry &e, char32_t c) { return e.cp < c; });
  if (it == std::end(kDecompositions) || it->cp != cp)
    return {};
  return {kDecompositionPool + it->offset, it->length};
}

char32_t compose(char32_t first, char32_t second) {
  // L + V -> LV syllable.
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase && second < kVBase + kVCount)
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  // LV syllable + T -> LVT syllable (T index 0 means "no trailing consonant" and never composes).
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount)
    return first + (second - kTBase);
  std::uint64_t key = (std::uint64_t(first) << 21) | second;
  const CompositionEntry *it =
      std::lower_bound(std::begin(kCompositions), std::end(kCompositions), key,
                       [](const CompositionEntry &e, std::uint64_t k) { return e.key < k; });
  if (it == std::end(kCompositions) || it->key != key)
    return 0;
  return it->composite;
}

bool isNfcSensitive(char32_t cp) {
  if (cp < 0xC0)
    return false;
  return findRange(kNfcSensitiveRanges, cp) != nullptr;
}

const char *classesVersion() { return XLC_UNICODE_CLASSES_VERSION; }
const char *nfcVersion() { return XLC_UNICODE_NFC_VERSION; }

} // namespace xlc::unicode
