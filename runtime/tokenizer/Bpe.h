//===- Bpe.h - Byte-level BPE model -----------------------------*- C++ -*-===//
//
// The BPE model of a tokenizer.json: a vocabulary of byte-level strings and a ranked list of
// merges. A word (one pre-tokenizer piece, as raw bytes) starts as one symbol per byte and is
// merged pair by pair, always the pair of lowest merge rank first, leftmost among equal ranks,
// until no adjacent pair has a merge. This is Hugging Face's Word::merge_all exactly, including
// its tie-breaking, so the result is identical even for merge lists that are not "well trained".
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TOKENIZER_BPE_H
#define XLC_RUNTIME_TOKENIZER_BPE_H

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace xlc {

using TokenId = std::uint32_t; // also declared in Tokenizer.h

class BpeModel {
public:
  struct Config {
    std::unordered_map<std::string, TokenId> vocab;          ///< byte-level string -> id
    std::vector<std::pair<std::string, std::string>> merges; ///< in rank order
    std::optional<std::string> unkToken;
    bool fuseUnk = false;
    bool ignoreMerges = false;
  };

  /// Builds the merge table; throws xlc::Error naming |origin| and the offending merge when a
  /// merge's parts or result are not in the vocabulary (as HF refuses such a file).
  BpeModel(Config config, std::string_view origin);

  /// Appends the ids of one pre-tokenized word, given as raw bytes (not yet byte-level mapped).
  /// Thread-safe; results of short words are cached.
  void tokenize(std::string_view word, std::vector<TokenId> &out) const;

  const std::unordered_map<std::string, TokenId> &vocab() const { return vocab_; }

private:
  struct Merge {
    std::uint32_t rank;
    TokenId result;
  };

  /// The merge table: (left id, right id) -> Merge, open addressing with linear probing in a
  /// power-of-two table at most half full. Lookups are the inner loop of BPE; this is several
  /// times faster than std::unordered_map's node chasing.
  class MergeTable {
  public:
    void reserve(std::size_t count);
    /// Inserts or overwrites.
    void set(TokenId left, TokenId right, Merge merge);
    const Merge *find(TokenId left, TokenId right) const {
      std::uint64_t key = pack(left, right);
      for (std::size_t i = slot(key);; i = (i + 1) & mask_) {
        const Entry &e = entries_[i];
        if (e.key == key)
          return &e.merge;
        if (e.key == kEmpty)
          return nullptr;
      }
    }

  private:
    struct Entry {
      std::uint64_t key;
      Merge merge;
    };
    // No real key is all ones: token ids are below 2^32 - 1 in any sane vocabulary (checked on
    // insertion).
    static constexpr std::uint64_t kEmpty = ~std::uint64_t(0);
    static std::uint64_t pack(TokenId a, TokenId b) { return (std::uint64_t(a) << 32) | b; }
    std::size_t slot(std::uint64_t key) const {
      return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> 32) & mask_;
    }
    std::vector<Entry> entries_ = std::vector<Entry>(1, Entry{kEmpty, {}});
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
  };

  void mergeWord(std::string_view word, std::vector<TokenId> &out) const;

  std::unordered_map<std::string, TokenId> vocab_;
  MergeTable merges_;
  std::optional<TokenId> unkId_;
  bool fuseUnk_ = false;
  bool ignoreMerges_ = false;
  // Vocabulary id of each byte's stand-in; nullopt when the vocabulary lacks it.
  std::optional<TokenId> byteIds_[256];

  // Word cache: raw word bytes -> ids. Bounded; cleared when full.
  static constexpr std::size_t kCacheCapacity = 1 << 16;
  static constexpr std::size_t kMaxCachedWordBytes = 64;
  mutable std::mutex cacheMutex_;
  mutable std::unordered_map<std::string, std::vector<TokenId>> cache_;
};

} // namespace xlc

#endif // XLC_RUNTIME_TOKENIZER_BPE_H
