//===- AddedVocabulary.cpp - Splitting text on added tokens ---------------===//

#include "runtime/tokenizer/AddedVocabulary.h"

#include "runtime/tokenizer/UnicodeData.h"
#include "runtime/tokenizer/Utf8.h"

#include <algorithm>

namespace xlc {
namespace {

bool isWordChar(char32_t cp) { return unicode::charFlags(cp) & unicode::kWord; }
bool isSpace(char32_t cp) { return unicode::charFlags(cp) & unicode::kSpace; }

} // namespace

std::uint32_t AddedTokenMatcher::child(std::uint32_t node, unsigned char byte) const {
  const auto &edges = nodes_[node].edges;
  auto it = std::lower_bound(edges.begin(), edges.end(), byte,
                             [](const auto &e, unsigned char b) { return e.first < b; });
  return it != edges.end() && it->first == byte ? it->second : 0;
}

void AddedTokenMatcher::add(std::string_view pattern, const AddedToken *token) {
  if (pattern.empty())
    return;
  std::uint32_t node = 0;
  for (char ch : pattern) {
    auto byte = static_cast<unsigned char>(ch);
    std::uint32_t next = child(node, byte);
    if (next == 0) {
      next = static_cast<std::uint32_t>(nodes_.size());
      nodes_.emplace_back();
      auto &edges = nodes_[node].edges;
      auto it = std::lower_bound(edges.begin(), edges.end(), byte,
                                 [](const auto &e, unsigned char b) { return e.first < b; });
      edges.insert(it, {byte, next});
    }
    node = next;
  }
  // The same pattern twice (e.g. two contents equal after normalization): the first one wins,
  // like the first of two identical patterns in an Aho-Corasick automaton.
  if (nodes_[node].token < 0) {
    nodes_[node].token = static_cast<std::int32_t>(tokens_.size());
    tokens_.push_back(token);
  }
  auto b0 = static_cast<unsigned char>(pattern[0]);
  firstByte_[b0] = true;
  if (pattern.size() == 1)
    singleByte_[b0] = true;
  else
    firstPair_[b0 << 8 | static_cast<unsigned char>(pattern[1])] = true;
}

void AddedTokenMatcher::split(std::string_view text, bool matchSpecial,
                              std::vector<AddedSplit> &out) const {
  std::size_t plainStart = 0; // start of the text not yet reported
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto b0 = static_cast<unsigned char>(text[pos]);
    if (!firstByte_[b0] ||
        (!singleByte_[b0] && (pos + 1 == text.size() ||
                              !firstPair_[b0 << 8 | static_cast<unsigned char>(text[pos + 1])]))) {
      ++pos;
      continue;
    }
    // Longest pattern starting at pos.
    std::int32_t found = -1;
    std::size_t foundEnd = 0;
    std::uint32_t node = 0;
    for (std::size_t i = pos; i < text.size(); ++i) {
      node = child(node, static_cast<unsigned char>(text[i]));
      if (node == 0)
        break;
      if (nodes_[node].token >= 0) {
        found = nodes_[node].token;
        foundEnd = i + 1;
      }
    }
    if (found < 0) {
      ++pos;
      continue;
    }
    const AddedToken &token = *tokens_[found];
    std::size_t start = pos, stop = foundEnd;
    pos = foundEnd; // the match is consumed even if rejected below

    if (token.special && !matchSpecial)
      continue;
    if (token.singleWord) {
      // HF: `\w$` on the text before and `^\w` on the text after must both fail.
      std::size_t before = start;
      bool wordBefore = start > 0 && isWordChar(utf8::decodeBackward(text, before));
      std::size_t after = stop;
      bool wordAfter = stop < text.size() && isWordChar(utf8::decode(text, after));
      if (wordBefore || wordAfter)
        continue;
    }
    if (token.lstrip) {
      // Take the whitespace run before the token, but not what an earlier match already took.
      std::size_t s = start;
      while (s > 0) {
        std::size_t prev = s;
        if (!isSpace(utf8::decodeBackward(text, prev)))
          break;
        s = prev;
      }
      start = std::max(s, plainStart);
    }
    if (token.rstrip) {
      // The whitespace after the token joins it. HF's match iteration still resumes at the end of
      // the pattern (|pos|), so a later match may start inside this whitespace; then the two
      // splits overlap, exactly as in HF.
      while (stop < text.size()) {
        std::size_t next = stop;
        if (!isSpace(utf8::decode(text, next)))
          break;
        stop = next;
      }
    }
    if (start > plainStart)
      out.push_back({text.substr(plainStart, start - plainStart), std::nullopt});
    out.push_back({text.substr(start, stop - start), token.id});
    plainStart = stop;
  }
  if (plainStart < text.size())
    out.push_back({text.substr(plainStart), std::nullopt});
}

} // namespace xlc
