//===- Tokenizer.cpp - Hugging Face tokenizer.json byte-level BPE ---------===//

#include "runtime/tokenizer/Tokenizer.h"

#include "runtime/support/Error.h"
#include "runtime/support/MappedFile.h"
#include "runtime/tokenizer/AddedVocabulary.h"
#include "runtime/tokenizer/Bpe.h"
#include "runtime/tokenizer/ByteLevel.h"
#include "runtime/tokenizer/Normalizer.h"
#include "runtime/tokenizer/PreTokenizer.h"
#include "runtime/tokenizer/TokenizerJson.h"
#include "runtime/tokenizer/Utf8.h"

#include <unordered_map>

namespace xlc {

struct Tokenizer::Impl {
  explicit Impl(TokenizerSpec s, std::string_view origin)
      : spec(std::move(s)), bpe(std::move(spec.model), origin) {}

  TokenizerSpec spec; // spec.model is moved into bpe
  BpeModel bpe;
  // Pass 1 matches added tokens with normalized=false in the raw text, pass 2 those with
  // normalized=true in each normalized piece (see AddedVocabulary.h).
  AddedTokenMatcher rawMatcher, normalizedMatcher;
  std::unordered_map<std::string, TokenId> addedIds;

  // Per id: the token string (empty and absent when no token has the id), whether it is special,
  // and the bytes the decoder turns it into.
  std::vector<std::string> tokens;
  std::vector<bool> present, special;
  std::vector<std::string> decoded;
  std::optional<TokenId> bos;

  std::string normalize(std::string_view text) const {
    return spec.nfc ? toNfc(text) : std::string(text);
  }

  void encodeText(std::string_view text, std::vector<TokenId> &out) const {
    if (text.empty())
      return;
    std::string prefixed;
    if (spec.addPrefixSpace && text.front() != ' ') {
      prefixed.reserve(text.size() + 1);
      prefixed.push_back(' ');
      prefixed.append(text);
      text = prefixed;
    }
    if (spec.useRegex)
      forEachGpt2Piece(text, [&](std::string_view piece) { bpe.tokenize(piece, out); });
    else
      bpe.tokenize(text, out);
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer &&) noexcept = default;
Tokenizer &Tokenizer::operator=(Tokenizer &&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::fromFile(const std::string &path) { return fromJson(readFile(path), path); }

Tokenizer Tokenizer::fromJson(std::string_view json, std::string_view origin) {
  auto impl = std::make_unique<Impl>(parseTokenizerJson(json, origin), origin);
  Impl &t = *impl;

  std::size_t size = 0;
  for (const auto &[token, id] : t.bpe.vocab())
    size = std::max<std::size_t>(size, std::size_t(id) + 1);
  for (const AddedToken &a : t.spec.addedTokens)
    size = std::max<std::size_t>(size, std::size_t(a.id) + 1);
  // Per-id tables are dense; a vocabulary with ids far beyond its size is not one we can serve.
  constexpr std::size_t kMaxIds = std::size_t(1) << 24;
  check(size <= kMaxIds, "{}: model.vocab / added_tokens: largest id {} exceeds the supported {}",
        origin, size - 1, kMaxIds - 1);
  t.tokens.resize(size);
  t.present.assign(size, false);
  t.special.assign(size, false);
  t.decoded.resize(size);
  for (const auto &[token, id] : t.bpe.vocab()) {
    t.tokens[id] = token;
    t.present[id] = true;
  }
  // Added tokens name their id in decode (HF looks them up before the model), and a content
  // marked special makes every id with that string special (HF tests the string).
  std::unordered_map<std::string_view, bool> specialContent;
  for (const AddedToken &a : t.spec.addedTokens) {
    // HF (0.23) names a normalized added token by its normalized content when going from id to
    // token, so that is what decode sees; token -> id keeps the content as written.
    t.tokens[a.id] = a.normalized ? t.normalize(a.content) : a.content;
    t.present[a.id] = true;
    t.addedIds[a.content] = a.id;
    if (a.special)
      specialContent[a.content] = true;
  }
  for (std::size_t id = 0; id < size; ++id) {
    if (!t.present[id])
      continue;
    t.special[id] = specialContent.count(t.tokens[id]) > 0;
    t.decoded[id] = t.spec.byteLevelDecoder ? bytelevel::decodeToken(t.tokens[id]) : t.tokens[id];
  }

  // HF builds its matchers from the special tokens first, then the others, each in file order;
  // on equal patterns the first one wins.
  for (bool specialPass : {true, false}) {
    for (const AddedToken &a : t.spec.addedTokens) {
      if (a.special != specialPass)
        continue;
      if (a.normalized)
        t.normalizedMatcher.add(t.normalize(a.content), &a);
      else
        t.rawMatcher.add(a.content, &a);
    }
  }

  Tokenizer tokenizer(std::move(impl));
  tokenizer.impl_->bos = tokenizer.tokenToId("<|endoftext|>");
  return tokenizer;
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, const EncodeOptions &options) const {
  const Impl &t = *impl_;
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 1);
  if (options.addBos) {
    check(t.bos.has_value(),
          "encode: addBos was requested but the tokenizer has no BOS token (no \"<|endoftext|>\" "
          "added token and none set with setBosId)");
    out.push_back(*t.bos);
  }

  // HF's order (TokenizerImpl::encode_single_sequence): added tokens that are not normalized are
  // found in the raw text; each piece between them is normalized on its own, then searched for
  // the normalized added tokens; what remains goes through the pre-tokenizer and BPE.
  std::string clean = utf8::sanitize(text);
  std::vector<AddedSplit> rawSplits, normSplits;
  t.rawMatcher.split(clean, options.parseSpecial, rawSplits);
  for (const AddedSplit &raw : rawSplits) {
    if (raw.id) {
      out.push_back(*raw.id);
      continue;
    }
    std::string normalized = t.normalize(raw.text);
    normSplits.clear();
    t.normalizedMatcher.split(normalized, options.parseSpecial, normSplits);
    for (const AddedSplit &piece : normSplits) {
      if (piece.id)
        out.push_back(*piece.id);
      else
        t.encodeText(piece.text, out);
    }
  }
  return out;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, const DecodeOptions &options) const {
  const Impl &t = *impl_;
  std::string bytes;
  bool first = true;
  for (TokenId id : ids) {
    if (id >= t.present.size() || !t.present[id])
      continue;
    if (options.skipSpecial && t.special[id])
      continue;
    // Without a decoder HF joins the token strings with spaces.
    if (!t.spec.byteLevelDecoder && !first)
      bytes.push_back(' ');
    bytes += t.decoded[id];
    first = false;
  }
  return t.spec.byteLevelDecoder ? utf8::sanitize(bytes) : bytes;
}

std::optional<TokenId> Tokenizer::tokenToId(std::string_view token) const {
  const Impl &t = *impl_;
  std::string key(token);
  if (auto it = t.addedIds.find(key); it != t.addedIds.end())
    return it->second;
  if (auto it = t.bpe.vocab().find(key); it != t.bpe.vocab().end())
    return it->second;
  return std::nullopt;
}

std::optional<std::string_view> Tokenizer::idToToken(TokenId id) const {
  const Impl &t = *impl_;
  if (id >= t.present.size() || !t.present[id])
    return std::nullopt;
  return std::string_view(t.tokens[id]);
}

bool Tokenizer::isSpecial(TokenId id) const {
  return id < impl_->special.size() && impl_->special[id];
}

std::size_t Tokenizer::vocabSize() const { return impl_->present.size(); }

std::optional<TokenId> Tokenizer::bosId() const { return impl_->bos; }

void Tokenizer::setBosId(std::optional<TokenId> id) { impl_->bos = id; }

} // namespace xlc
