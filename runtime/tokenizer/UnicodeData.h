//===- UnicodeData.h - Character properties the tokenizer needs -*- C++ -*-===//
//
// Lookups into the generated tables (UnicodeTables.inc, made by gen_unicode_tables.py): the
// character classes of the GPT-2 pre-tokenizer regex and the data of canonical normalization.
// Which Unicode version each comes from, and why, is in the generator's docstring; in short:
// classes are Unicode 14.0 (Python 3.11 unicodedata; HF's Oniguruma is 14.0 in older and 16.0 in
// newer `tokenizers` releases), NFC data is Unicode 9.0 (HF's unicode-normalization fork).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TOKENIZER_UNICODEDATA_H
#define XLC_RUNTIME_TOKENIZER_UNICODEDATA_H

#include <cstdint>
#include <span>

namespace xlc::unicode {

enum CharFlag : std::uint8_t {
  kLetter = 1, ///< General_Category L (regex \p{L})
  kNumber = 2, ///< General_Category N (regex \p{N})
  kSpace = 4,  ///< White_Space (Oniguruma's and Rust's \s, Rust's char::is_whitespace)
  kWord = 8,   ///< approximately the Rust regex crate's \w (see the generator)
};

/// The CharFlag bits of |cp|; 0 for everything else (punctuation, symbols, marks, unassigned).
std::uint8_t charFlags(char32_t cp);

/// Canonical combining class (0 for starters and for characters newer than the NFC data).
std::uint8_t combiningClass(char32_t cp);

/// Full canonical decomposition of |cp|; empty when it has none. Hangul syllables are not in the
/// table (decomposed algorithmically by the normalizer).
std::span<const char32_t> canonicalDecomposition(char32_t cp);

/// The primary composite of the pair, Hangul included; 0 when the pair does not compose.
char32_t compose(char32_t first, char32_t second);

/// False when |cp| can never make a string change under NFC (no decomposition, combining class 0,
/// never the second character of a composition): a string of such characters is already NFC.
bool isNfcSensitive(char32_t cp);

/// The Unicode versions of the generated tables, e.g. "14.0.0" and "9.0".
const char *classesVersion();
const char *nfcVersion();

} // namespace xlc::unicode

#endif // XLC_RUNTIME_TOKENIZER_UNICODEDATA_H
