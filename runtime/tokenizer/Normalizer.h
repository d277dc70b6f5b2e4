//===- Normalizer.h - Unicode normalization (NFC) ---------------*- C++ -*-===//
//
// Canonical composition (Unicode Standard Annex #15): full canonical decomposition, canonical
// ordering of combining marks, then canonical composition. The data is Unicode 9.0, the version
// of the normalization crate Hugging Face `tokenizers` uses (see UnicodeData.h).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TOKENIZER_NORMALIZER_H
#define XLC_RUNTIME_TOKENIZER_NORMALIZER_H

#include <string>
#include <string_view>

namespace xlc {

/// True when |text| (well-formed UTF-8) contains no character that NFC could change, so NFC is
/// the identity on it. A fast scan; all-ASCII text passes.
bool isNfcInert(std::string_view text);

/// The NFC form of |text| (well-formed UTF-8).
std::string toNfc(std::string_view text);

} // namespace xlc

#endif // XLC_RUNTIME_TOKENIZER_NORMALIZER_H
