//===- Bpe.cpp - Byte-level BPE model -------------------------------------===//

#include "runtime/tokenizer/Bpe.h"

#include "runtime/support/Error.h"
#include "runtime/tokenizer/ByteLevel.h"

#include <queue>

namespace xlc {

void BpeModel::MergeTable::reserve(std::size_t count) {
  std::size_t capacity = 1;
  while (capacity < 2 * count + 2)
    capacity <<= 1;
  if (capacity <= entries_.size())
    return;
  std::vector<Entry> old = std::move(entries_);
  entries_.assign(capacity, Entry{kEmpty, {}});
  mask_ = capacity - 1;
  size_ = 0;
  for (const Entry &e : old)
    if (e.key != kEmpty)
      set(static_cast<TokenId>(e.key >> 32), static_cast<TokenId>(e.key), e.merge);
}

void BpeModel::MergeTable::set(TokenId left, TokenId right, Merge merge) {
  if (2 * (size_ + 1) > entries_.size())
    reserve(size_ + 1 > 8 ? 2 * (size_ + 1) : 8);
  std::uint64_t key = pack(left, right);
  for (std::size_t i = slot(key);; i = (i + 1) & mask_) {
    Entry &e = entries_[i];
    if (e.key == key) {
      e.merge = merge;
      return;
    }
    if (e.key == kEmpty) {
      e = Entry{key, merge};
      ++size_;
      return;
    }
  }
}

BpeModel::BpeModel(Config config, std::string_view origin)
    : vocab_(std::move(config.vocab)), fuseUnk_(config.fuseUnk),
      ignoreMerges_(config.ignoreMerges) {
  if (config.unkToken) {
    auto it = vocab_.find(*config.unkToken);
    check(it != vocab_.end(), "{}: model.unk_token: \"{}\" is not in model.vocab", origin,
          *config.unkToken);
    unkId_ = it->second;
  }
  merges_.reserve(config.merges.size());
  for (std::size_t rank = 0; rank < config.merges.size(); ++rank) {
    const auto &[a, b] = config.merges[rank];
    auto lookup = [&](const std::string &token) {
      auto it = vocab_.find(token);
      check(it != vocab_.end(), "{}: model.merges[{}]: token \"{}\" is not in model.vocab", origin,
            rank, token);
      return it->second;
    };
    TokenId ida = lookup(a), idb = lookup(b), result = lookup(a + b);
    check(ida != ~TokenId(0) && idb != ~TokenId(0),
          "{}: model.merges[{}]: token id {} is too large", origin, rank, ~TokenId(0));
    // A repeated pair keeps its last rank, as HF's HashMap collect does.
    merges_.set(ida, idb, Merge{static_cast<std::uint32_t>(rank), result});
  }
  for (unsigned b = 0; b < 256; ++b) {
    auto it = vocab_.find(std::string(bytelevel::byteToUtf8(static_cast<std::uint8_t>(b))));
    if (it != vocab_.end())
      byteIds_[b] = it->second;
  }
}

void BpeModel::tokenize(std::string_view word, std::vector<TokenId> &out) const {
  if (word.size() > kMaxCachedWordBytes) {
    mergeWord(word, out);
    return;
  }
  std::string key(word);
  {
    std::lock_guard<std::mutex> lock(cacheMutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::size_t first = out.size();
  mergeWord(word, out);
  std::vector<TokenId> ids(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  std::lock_guard<std::mutex> lock(cacheMutex_);
  if (cache_.size() >= kCacheCapacity)
    cache_.clear();
  cache_.emplace(std::move(key), std::move(ids));
}

void BpeModel::mergeWord(std::string_view word, std::vector<TokenId> &out) const {
  if (ignoreMerges_) {
    auto it = vocab_.find(bytelevel::encode(word));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }

  // Initial symbols: one per byte. A byte missing from the vocabulary becomes the unknown token
  // (consecutive ones fused into one with fuse_unk) or, without unk_token, is dropped: HF's
  // BPE::merge_word does the same.
  struct Symbol {
    TokenId id;
    std::int32_t prev, next; // neighbours in the live list; -1 at the ends
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  bool lastWasUnk = false;
  for (char ch : word) {
    std::optional<TokenId> id = byteIds_[static_cast<unsigned char>(ch)];
    if (!id) {
      if (!unkId_)
        continue;
      if (fuseUnk_ && lastWasUnk)
        continue;
      id = unkId_;
      lastWasUnk = true;
    } else {
      lastWasUnk = false;
    }
    auto index = static_cast<std::int32_t>(symbols.size());
    symbols.push_back(Symbol{*id, index - 1, -1, true});
    if (index > 0)
      symbols[index - 1].next = index;
  }

  // Candidate merges, lowest rank first and leftmost among equal ranks. Entries go stale when a
  // neighbour merges; a popped entry is applied only if its left symbol is alive, still has a
  // right neighbour, and that pair still merges into the same token.
  struct Candidate {
    std::uint32_t rank;
    std::int32_t pos;
    TokenId result;
    bool operator>(const Candidate &o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto push = [&](std::int32_t pos) {
    const Symbol &left = symbols[pos];
    if (left.next < 0)
      return;
    if (const Merge *m = merges_.find(left.id, symbols[left.next].id))
      queue.push(Candidate{m->rank, pos, m->result});
  };
  for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(symbols.size()); ++i)
    push(i);

  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol &left = symbols[top.pos];
    if (!left.alive || left.next < 0)
      continue;
    Symbol &right = symbols[left.next];
    const Merge *m = merges_.find(left.id, right.id);
    if (!m || m->result != top.result)
      continue;
    left.id = top.result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0)
      symbols[right.next].prev = top.pos;
    if (left.prev >= 0)
      push(left.prev);
    push(top.pos);
  }

  for (const Symbol &s : symbols)
    if (s.alive)
      out.push_back(s.id);
}

} // namespace xlc
