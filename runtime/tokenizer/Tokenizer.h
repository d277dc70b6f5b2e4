//===- Tokenizer.h - Hugging Face tokenizer.json byte-level BPE -*- C++ -*-===//
//
// A tokenizer loaded from a Hugging Face tokenizer.json of the GPT-2 / GPT-NeoX family (byte-level
// BPE), producing the same ids as the Rust `tokenizers` library:
//
//   encode: text -> invalid UTF-8 replaced by U+FFFD -> split on added tokens (special ones only
//           on request) -> NFC per piece -> split on normalized added tokens -> GPT-2 regex
//           pre-tokenizer -> bytes to byte-level alphabet -> BPE merges by rank -> ids
//   decode: ids -> token strings -> bytes (byte-level decoder) -> UTF-8, invalid sequences
//           replaced by U+FFFD
//
// encode(text) equals HF `Tokenizer.encode(text, add_special_tokens=False).ids` with
// `encode_special_tokens=True` (special-token strings in the text are plain text) by default, and
// with HF's default `encode_special_tokens=False` when EncodeOptions::parseSpecial is set. BOS is
// never inserted unless EncodeOptions::addBos asks for it (xLSTM 7B wants id 0 first).
//
// Supported tokenizer.json: model BPE (vocab; merges as "a b" strings or [a, b] pairs; unk_token,
// fuse_unk, ignore_merges; no dropout, byte_fallback, continuing_subword_prefix or
// end_of_word_suffix), normalizer null / NFC / Sequence of NFC, pre_tokenizer ByteLevel (possibly
// alone in a Sequence), decoder null / ByteLevel, post_processor null / ByteLevel (it only adjusts
// offsets), truncation and padding null. Anything else is rejected with an xlc::Error naming the
// field and the value.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TOKENIZER_TOKENIZER_H
#define XLC_RUNTIME_TOKENIZER_TOKENIZER_H

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xlc {

using TokenId = std::uint32_t;

struct EncodeOptions {
  /// Prepend bosId() (id 0, "<|endoftext|>", for GPT-NeoX and xLSTM 7B).
  bool addBos = false;
  /// Recognise special added tokens (e.g. "<|endoftext|>") written in the text. Off by default so
  /// that untrusted text cannot inject control tokens; non-special added tokens are always
  /// recognised, as in HF.
  bool parseSpecial = false;
};

struct DecodeOptions {
  /// Leave out special tokens, as HF decode(skip_special_tokens=True).
  bool skipSpecial = false;
};

class Tokenizer {
public:
  /// Loads a tokenizer.json; throws xlc::Error naming the path and the field at fault.
  static Tokenizer fromFile(const std::string &path);
  /// Same, from the JSON text; |origin| names it in error messages.
  static Tokenizer fromJson(std::string_view json, std::string_view origin = "tokenizer.json");

  Tokenizer(Tokenizer &&) noexcept;
  Tokenizer &operator=(Tokenizer &&) noexcept;
  ~Tokenizer();

  /// Token ids of |text|. Ill-formed UTF-8 in |text| is first replaced, each maximal ill-formed
  /// subsequence by one U+FFFD (what Python's bytes.decode("utf-8", errors="replace") gives HF).
  /// Thread-safe.
  std::vector<TokenId> encode(std::string_view text, const EncodeOptions &options = {}) const;

  /// Text of |ids|. Ids without a token are skipped, as HF does (the model's embedding has
  /// padding rows beyond the vocabulary). Byte sequences that are not valid UTF-8 (a multi-byte
  /// character cut between tokens) become U+FFFD as in HF's lossy conversion. Thread-safe.
  std::string decode(std::span<const TokenId> ids, const DecodeOptions &options = {}) const;

  /// Id of a token string (byte-level alphabet for BPE tokens, e.g. "Ġworld"; content for
  /// added tokens). Added tokens take precedence, as in HF.
  std::optional<TokenId> tokenToId(std::string_view token) const;
  /// The token string of |id|, or nullopt when no token has that id.
  std::optional<std::string_view> idToToken(TokenId id) const;
  /// True for the ids of added tokens marked special.
  bool isSpecial(TokenId id) const;
  /// One past the largest id (50277 for GPT-NeoX-20B; the xLSTM 7B embedding has 50304 rows).
  std::size_t vocabSize() const;

  /// The id EncodeOptions::addBos prepends: by default the id of "<|endoftext|>" when the
  /// tokenizer has that token (xLSTM 7B §5.2: bos_token_id 0), otherwise none.
  std::optional<TokenId> bosId() const;
  void setBosId(std::optional<TokenId> id);

private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace xlc

#endif // XLC_RUNTIME_TOKENIZER_TOKENIZER_H
