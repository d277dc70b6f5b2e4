//===- PreTokenizer.h - The GPT-2 pre-tokenizer split -----------*- C++ -*-===//
//
// Byte-level BPE first cuts text into "words" with GPT-2's regular expression
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// which Hugging Face runs with Oniguruma (a backtracking engine: at each position the first
// alternative that matches wins, each alternative greedy). No regex library with Unicode classes
// is available here, so the match is written out by hand; gpt2MatchEnd documents how each
// alternative reduces to a scan. Every position matches some alternative and none matches the
// empty string, so the matches tile the text.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TOKENIZER_PRETOKENIZER_H
#define XLC_RUNTIME_TOKENIZER_PRETOKENIZER_H

#include <cstddef>
#include <string_view>

namespace xlc {

/// End offset of the regex match that starts at |pos| (< text.size()) in |text| (well-formed
/// UTF-8). The next match starts there.
std::size_t gpt2MatchEnd(std::string_view text, std::size_t pos);

/// Calls fn(piece) for each match of the regex over |text|, in order.
template <typename Fn> void forEachGpt2Piece(std::string_view text, Fn &&fn) {
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = gpt2MatchEnd(text, pos);
    fn(text.substr(pos, end - pos));
    pos = end;
  }
}

} // namespace xlc

#endif // XLC_RUNTIME_TOKENIZER_PRETOKENIZER_H
