//===- AddedVocabulary.h - Splitting text on added tokens -------*- C++ -*-===//
//
// tokenizer.json's added_tokens are matched in the text before anything else and become single
// ids; the text between them goes on to the pre-tokenizer and BPE. Hugging Face matches them with
// an Aho-Corasick automaton in leftmost-longest mode and iterates non-overlapping matches: the
// match that starts first wins, the longest among those starting there, and the search resumes
// after it. A match that is then rejected (a special token the caller did not ask for, a
// single_word token inside a word) still consumes its text, which stays plain text. Two passes,
// as in HF's AddedVocabulary::extract_and_normalize: tokens with normalized=false are matched in
// the raw text, then tokens with normalized=true (their content normalized) in each normalized
// piece of text left between the first ones.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TOKENIZER_ADDEDVOCABULARY_H
#define XLC_RUNTIME_TOKENIZER_ADDEDVOCABULARY_H

#include "runtime/tokenizer/Bpe.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xlc {

struct AddedToken {
  TokenId id = 0;
  std::string content;
  bool special = false;
  bool singleWord = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
};

/// One piece of a split: plain text, or an added token (id set) covering that text.
struct AddedSplit {
  std::string_view text;
  std::optional<TokenId> id;
};

/// The tokens of one pass and the leftmost-longest matcher over their patterns.
class AddedTokenMatcher {
public:
  /// |pattern| is what is searched for (the content, normalized for the second pass); |token|
  /// must outlive the matcher.
  void add(std::string_view pattern, const AddedToken *token);
  bool empty() const { return tokens_.empty(); }

  /// Splits |text| into plain pieces and added tokens, applying single_word, lstrip and rstrip as
  /// HF's AddedVocabulary::find_matches does. Special tokens are matched only when
  /// |matchSpecial|. Empty plain pieces are not reported.
  void split(std::string_view text, bool matchSpecial, std::vector<AddedSplit> &out) const;

private:
  struct Node {
    std::vector<std::pair<unsigned char, std::uint32_t>> edges; // sorted by byte
    std::int32_t token = -1; // index into tokens_ when a pattern ends here
  };
  std::uint32_t child(std::uint32_t node, unsigned char byte) const;

  std::vector<Node> nodes_{Node{}};
  std::vector<const AddedToken *> tokens_;
  // Fast rejection before walking the trie: the first byte of some pattern; a whole one-byte
  // pattern; the first two bytes of some longer pattern.
  std::array<bool, 256> firstByte_{};
  std::array<bool, 256> singleByte_{};
  std::vector<bool> firstPair_ = std::vector<bool>(1 << 16);
};

} // namespace xlc

#endif // XLC_RUNTIME_TOKENIZER_ADDEDVOCABULARY_H
