//===- TokenizerJson.cpp - Reading tokenizer.json -------------------------===//

#include "runtime/tokenizer/TokenizerJson.h"

#include "runtime/support/Error.h"
#include "runtime/support/Json.h"

#include <nlohmann/json.hpp>

#include <limits>
#include <unordered_map>

namespace xlc {
namespace {

using nlohmann::json;

/// Checks the fields of one JSON object, naming them by their path in the file.
class Reader {
public:
  explicit Reader(std::string_view origin) : origin_(origin) {}

  template <typename... Args>
  [[noreturn]] void error(std::string_view path, fmt::format_string<Args...> format,
                          Args &&...args) const {
    fail("{}: {}: {}", origin_, path, fmt::format(format, std::forward<Args>(args)...));
  }

  const json &object(const json &j, std::string_view path) const {
    if (!j.is_object())
      error(path, "expected an object, got {}", brief(j));
    return j;
  }

  /// The member |key| of |obj|, or nullptr when absent.
  static const json *member(const json &obj, const char *key) {
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }

  const json &required(const json &obj, std::string_view path, const char *key) const {
    const json *m = member(obj, key);
    if (!m)
      error(join(path, key), "missing");
    return *m;
  }

  bool boolean(const json &obj, std::string_view path, const char *key, bool fallback) const {
    const json *m = member(obj, key);
    if (!m || m->is_null())
      return fallback;
    if (!m->is_boolean())
      error(join(path, key), "expected true or false, got {}", brief(*m));
    return m->get<bool>();
  }

  std::string string(const json &j, std::string_view path) const {
    if (!j.is_string())
      error(path, "expected a string, got {}", brief(j));
    return j.get<std::string>();
  }

  TokenId id(const json &j, std::string_view path) const {
    if (!j.is_number_unsigned() || j.get<std::uint64_t>() > std::numeric_limits<TokenId>::max())
      error(path, "expected a token id (an unsigned 32-bit integer), got {}", brief(j));
    return static_cast<TokenId>(j.get<std::uint64_t>());
  }

  /// The "type" member of a component object.
  std::string type(const json &obj, std::string_view path) const {
    return string(required(object(obj, path), path, "type"), join(path, "type"));
  }

  /// A field that this implementation supports only when it is null (or absent, or false).
  void requireUnset(const json &obj, std::string_view path, const char *key,
                    std::string_view why) const {
    const json *m = member(obj, key);
    if (m && !m->is_null() && !(m->is_boolean() && !m->get<bool>()) &&
        !(m->is_string() && m->get<std::string>().empty()))
      error(join(path, key), "unsupported value {} ({})", brief(*m), why);
  }

  static std::string join(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
  }
  static std::string index(std::string_view path, std::size_t i) {
    return fmt::format("{}[{}]", path, i);
  }

  /// A short rendering of a JSON value for error messages.
  static std::string brief(const json &j) {
    std::string s = j.dump();
    if (s.size() > 60)
      s = s.substr(0, 57) + "...";
    return s;
  }

private:
  std::string_view origin_;
};

void readNormalizer(const Reader &r, const json &j, const std::string &path, TokenizerSpec &spec) {
  if (j.is_null())
    return;
  std::string type = r.type(j, path);
  if (type == "NFC") {
    spec.nfc = true;
  } else if (type == "Sequence") {
    const json &list = r.required(j, path, "normalizers");
    std::string listPath = Reader::join(path, "normalizers");
    if (!list.is_array())
      r.error(listPath, "expected an array, got {}", Reader::brief(list));
    for (std::size_t i = 0; i < list.size(); ++i)
      readNormalizer(r, list[i], Reader::index(listPath, i), spec);
  } else {
    r.error(Reader::join(path, "type"), "unsupported value \"{}\" (supported: NFC, Sequence)",
            type);
  }
}

void readPreTokenizer(const Reader &r, const json &j, const std::string &path, TokenizerSpec &spec,
                      int &byteLevels) {
  if (j.is_null())
    r.error(path, "null is unsupported (expected a ByteLevel pre-tokenizer)");
  std::string type = r.type(j, path);
  if (type == "ByteLevel") {
    // HF's ByteLevel defaults: add_prefix_space true, use_regex true.
    spec.addPrefixSpace = r.boolean(j, path, "add_prefix_space", true);
    spec.useRegex = r.boolean(j, path, "use_regex", true);
    ++byteLevels;
  } else if (type == "Sequence") {
    const json &list = r.required(j, path, "pretokenizers");
    std::string listPath = Reader::join(path, "pretokenizers");
    if (!list.is_array())
      r.error(listPath, "expected an array, got {}", Reader::brief(list));
    for (std::size_t i = 0; i < list.size(); ++i)
      readPreTokenizer(r, list[i], Reader::index(listPath, i), spec, byteLevels);
  } else {
    r.error(Reader::join(path, "type"),
            "unsupported value \"{}\" (supported: ByteLevel, Sequence of one ByteLevel)", type);
  }
}

/// Decoder and post-processor: null, ByteLevel, or a Sequence of ByteLevel. Returns whether a
/// ByteLevel was present.
bool readByteLevelOnly(const Reader &r, const json &j, const std::string &path,
                       const char *listKey) {
  if (j.is_null())
    return false;
  std::string type = r.type(j, path);
  if (type == "ByteLevel")
    return true;
  if (type == "Sequence") {
    const json &list = r.required(j, path, listKey);
    std::string listPath = Reader::join(path, listKey);
    if (!list.is_array())
      r.error(listPath, "expected an array, got {}", Reader::brief(list));
    bool any = false;
    for (std::size_t i = 0; i < list.size(); ++i)
      any |= readByteLevelOnly(r, list[i], Reader::index(listPath, i), listKey);
    return any;
  }
  r.error(Reader::join(path, "type"), "unsupported value \"{}\" (supported: ByteLevel, Sequence)",
          type);
}

void readModel(const Reader &r, const json &j, TokenizerSpec &spec) {
  const std::string path = "model";
  r.object(j, path);
  if (const json *t = Reader::member(j, "type")) {
    std::string type = r.string(*t, "model.type");
    if (type != "BPE")
      r.error("model.type", "unsupported value \"{}\" (supported: BPE)", type);
  }
  if (const json *d = Reader::member(j, "dropout");
      d && !d->is_null() && !(d->is_number() && d->get<double>() == 0.0))
    r.error("model.dropout",
            "unsupported value {} (BPE dropout is random; only deterministic BPE "
            "is supported)",
            Reader::brief(*d));
  r.requireUnset(j, path, "continuing_subword_prefix", "only byte-level BPE is supported");
  r.requireUnset(j, path, "end_of_word_suffix", "only byte-level BPE is supported");
  r.requireUnset(j, path, "byte_fallback", "only byte-level BPE is supported");
  spec.model.fuseUnk = r.boolean(j, path, "fuse_unk", false);
  spec.model.ignoreMerges = r.boolean(j, path, "ignore_merges", false);
  if (const json *unk = Reader::member(j, "unk_token"); unk && !unk->is_null())
    spec.model.unkToken = r.string(*unk, "model.unk_token");

  const json &vocab = r.required(j, path, "vocab");
  if (!vocab.is_object())
    r.error("model.vocab", "expected an object of token -> id, got {}", Reader::brief(vocab));
  spec.model.vocab.reserve(vocab.size());
  std::unordered_map<TokenId, std::string> seen;
  seen.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    TokenId id = r.id(it.value(), fmt::format("model.vocab[\"{}\"]", it.key()));
    auto [prev, fresh] = seen.emplace(id, it.key());
    if (!fresh)
      r.error("model.vocab", "id {} is used by both \"{}\" and \"{}\"", id, prev->second, it.key());
    spec.model.vocab.emplace(it.key(), id);
  }

  const json &merges = r.required(j, path, "merges");
  if (!merges.is_array())
    r.error("model.merges", "expected an array, got {}", Reader::brief(merges));
  spec.model.merges.reserve(merges.size());
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const json &m = merges[i];
    std::string mpath = Reader::index("model.merges", i);
    if (m.is_string()) {
      // The legacy form "a b": exactly one space. HF skips "#version" header lines.
      const std::string &line = m.get_ref<const std::string &>();
      if (line.starts_with("#version"))
        continue;
      std::size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
        r.error(mpath, "expected \"left right\" with exactly one space, got {}", Reader::brief(m));
      spec.model.merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      spec.model.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      r.error(mpath, "expected \"left right\" or [\"left\", \"right\"], got {}", Reader::brief(m));
    }
  }
}

void readAddedTokens(const Reader &r, const json &list, TokenizerSpec &spec) {
  if (list.is_null())
    return;
  if (!list.is_array())
    r.error("added_tokens", "expected an array, got {}", Reader::brief(list));
  // Ids as HF assigns them while loading (AddedVocabulary::add_tokens): the model's id when the
  // content is in the vocabulary, else the next id after the vocabulary and the added tokens so
  // far. The file's "id" must agree; a file where it does not would be tokenized by HF with ids
  // other than the ones it states, so it is rejected.
  const auto &vocab = spec.model.vocab;
  const TokenId vocabSize = static_cast<TokenId>(vocab.size());
  std::unordered_map<std::string, std::size_t> byContent;
  std::optional<TokenId> maxAdded;
  for (std::size_t i = 0; i < list.size(); ++i) {
    std::string path = Reader::index("added_tokens", i);
    const json &t = r.object(list[i], path);
    AddedToken token;
    TokenId fileId = r.id(r.required(t, path, "id"), Reader::join(path, "id"));
    token.content = r.string(r.required(t, path, "content"), Reader::join(path, "content"));
    if (token.content.empty())
      r.error(Reader::join(path, "content"), "empty");
    token.special = r.boolean(t, path, "special", false);
    token.singleWord = r.boolean(t, path, "single_word", false);
    token.lstrip = r.boolean(t, path, "lstrip", false);
    token.rstrip = r.boolean(t, path, "rstrip", false);
    token.normalized = r.boolean(t, path, "normalized", !token.special);

    TokenId assigned;
    if (auto it = byContent.find(token.content); it != byContent.end()) {
      assigned = spec.addedTokens[it->second].id;
    } else if (auto v = vocab.find(token.content); v != vocab.end()) {
      assigned = v->second;
    } else if (!maxAdded) {
      assigned = vocabSize;
    } else {
      assigned = *maxAdded >= vocabSize || vocabSize == 0 ? *maxAdded + 1 : vocabSize;
    }
    if (assigned != fileId)
      r.error(Reader::join(path, "id"),
              "the file says {} but \"{}\" gets id {} (its model.vocab id, or the next id after "
              "the vocabulary and the added tokens before it)",
              fileId, token.content, assigned);
    token.id = assigned;
    maxAdded = maxAdded ? std::max(*maxAdded, assigned) : assigned;
    if (auto it = byContent.find(token.content); it != byContent.end()) {
      spec.addedTokens[it->second] = token; // a repeated content: the later flags win
    } else {
      byContent.emplace(token.content, spec.addedTokens.size());
      spec.addedTokens.push_back(std::move(token));
    }
  }
}

} // namespace

TokenizerSpec parseTokenizerJson(std::string_view text, std::string_view origin) {
  Reader r(origin);
  // Strict: valid UTF-8, no NUL, no key twice in one object (nlohmann alone lets the last win,
  // which would silently change a merge rule or a vocabulary entry), bounded nesting.
  const nlohmann::json root = ::xlc::json::parseStrictJson(text, origin, /*maxDepth=*/32);
  r.object(root, "(top level)");

  TokenizerSpec spec;
  r.requireUnset(root, "", "truncation", "encode never truncates; truncate the ids instead");
  r.requireUnset(root, "", "padding", "encode never pads; pad the ids instead");
  readModel(r, r.required(root, "", "model"), spec);

  const nlohmann::json *normalizer = Reader::member(root, "normalizer");
  readNormalizer(r, normalizer ? *normalizer : nlohmann::json(), "normalizer", spec);

  int byteLevels = 0;
  readPreTokenizer(r, r.required(root, "", "pre_tokenizer"), "pre_tokenizer", spec, byteLevels);
  if (byteLevels != 1)
    r.error("pre_tokenizer", "expected exactly one ByteLevel pre-tokenizer, found {}", byteLevels);

  const nlohmann::json *decoder = Reader::member(root, "decoder");
  spec.byteLevelDecoder =
      readByteLevelOnly(r, decoder ? *decoder : nlohmann::json(), "decoder", "decoders");
  const nlohmann::json *post = Reader::member(root, "post_processor");
  readByteLevelOnly(r, post ? *post : nlohmann::json(), "post_processor", "processors");

  const nlohmann::json *added = Reader::member(root, "added_tokens");
  readAddedTokens(r, added ? *added : nlohmann::json(), spec);
  return spec;
}

} // namespace xlc
