//===- TokenizerJson.h - Reading tokenizer.json -----------------*- C++ -*-===//
//
// Turns the JSON of a Hugging Face tokenizer.json into a TokenizerSpec, checking every field the
// tokenizer depends on. Errors are xlc::Error with messages of the form
//   "<origin>: <json path>: <what is wrong> (<value>)"
// e.g. "tokenizer.json: normalizer.type: unsupported value \"Lowercase\" (supported: NFC,
// Sequence)".
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TOKENIZER_TOKENIZERJSON_H
#define XLC_RUNTIME_TOKENIZER_TOKENIZERJSON_H

#include "runtime/tokenizer/AddedVocabulary.h"
#include "runtime/tokenizer/Bpe.h"

#include <string_view>
#include <vector>

namespace xlc {

struct TokenizerSpec {
  BpeModel::Config model;
  /// In file order, with the ids Hugging Face assigns (checked against the file's ids).
  std::vector<AddedToken> addedTokens;
  bool nfc = false;             ///< normalizer is NFC (else none)
  bool addPrefixSpace = false;  ///< ByteLevel pre-tokenizer option
  bool useRegex = true;         ///< ByteLevel pre-tokenizer option
  bool byteLevelDecoder = true; ///< decoder ByteLevel (else none: tokens joined by spaces)
};

TokenizerSpec parseTokenizerJson(std::string_view json, std::string_view origin);

} // namespace xlc

#endif // XLC_RUNTIME_TOKENIZER_TOKENIZERJSON_H
