//===- SequenceStream.cpp - Fixed-length training sequences out of a token file -===//

#include "runtime/train/SequenceStream.h"

#include "runtime/support/Error.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace xlc::train {
namespace {

/// splitmix64: a fixed, portable 64-bit generator (Steele, Lea, Flood 2014).
std::uint64_t splitmix64(std::uint64_t &state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Uniform on [0, bound) without modulo bias (rejection of the top partial range).
std::uint64_t below(std::uint64_t &state, std::uint64_t bound) {
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % bound);
  std::uint64_t x;
  do
    x = splitmix64(state);
  while (x >= limit);
  return x % bound;
}

} // namespace

Split splitTokens(std::uint64_t tokenCount, double validationFraction) {
  check(validationFraction >= 0.0 && validationFraction < 1.0,
        "validation fraction {} is outside [0, 1)", validationFraction);
  const auto held = static_cast<std::uint64_t>(
      std::ceil(validationFraction * static_cast<double>(tokenCount)));
  const std::uint64_t cut = tokenCount - std::min(held, tokenCount);
  return {0, cut, cut, tokenCount};
}

SequenceStream::SequenceStream(const TokenFile &file, std::uint64_t begin, std::uint64_t end,
                               std::int64_t seq, std::uint64_t seed, bool shuffle)
    : file_(&file), begin_(begin), seq_(seq), seed_(seed), shuffle_(shuffle) {
  check(seq > 0, "{}: sequence length must be positive, got {}", file.path(), seq);
  check(begin <= end && end <= file.size(), "{}: token range [{}, {}) is outside its {} tokens",
        file.path(), begin, end, file.size());
  const std::uint64_t len = end - begin;
  windows_ = len > static_cast<std::uint64_t>(seq) ? (len - 1) / static_cast<std::uint64_t>(seq) : 0;
  check(windows_ > 0,
        "{}: tokens [{}, {}) hold no sequence of {} tokens plus its next-token target ({} tokens "
        "needed)",
        file.path(), begin, end, seq, seq + 1);
}

void SequenceStream::seek(StreamPosition pos) {
  check(pos.index < windows_, "{}: stream position {} of epoch {} is past the {} sequences of an "
        "epoch", file_->path(), pos.index, pos.epoch, windows_);
  pos_ = pos;
}

void SequenceStream::shuffleFor(std::uint64_t epoch) {
  if (orderEpoch_ == epoch)
    return;
  order_.resize(windows_);
  std::iota(order_.begin(), order_.end(), std::uint64_t{0});
  if (shuffle_) {
    std::uint64_t state = seed_ ^ (0xD1B54A32D192ED03ull * (epoch + 1));
    for (std::uint64_t i = windows_ - 1; i > 0; --i)
      std::swap(order_[i], order_[below(state, i + 1)]);
  }
  orderEpoch_ = epoch;
}

std::uint64_t SequenceStream::windowAt(std::uint64_t epoch, std::uint64_t index) {
  shuffleFor(epoch);
  return order_.at(index);
}

Batch SequenceStream::next(std::int64_t batch) {
  check(batch > 0, "batch size must be positive, got {}", batch);
  Batch out;
  out.batch = batch;
  out.seq = seq_;
  const std::size_t cells = static_cast<std::size_t>(batch * seq_);
  out.tokens.resize(cells);
  out.targets.resize(cells);
  out.resets.assign(cells, 0);
  std::vector<std::uint32_t> window(static_cast<std::size_t>(seq_ + 1));
  const auto starts = file_->documentStarts();
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::uint64_t first = begin_ + windowAt(pos_.epoch, pos_.index) * seq_;
    file_->read(first, window);
    for (std::int64_t t = 0; t < seq_; ++t) {
      out.tokens[b * seq_ + t] = window[t];
      out.targets[b * seq_ + t] = window[t + 1];
    }
    // Documents beginning at input positions 1..S−1 of this row.
    for (auto it = std::upper_bound(starts.begin(), starts.end(), first);
         it != starts.end() && *it < first + seq_; ++it)
      out.resets[b * seq_ + (*it - first)] = 1;
    if (++pos_.index == windows_)
      pos_ = {pos_.epoch + 1, 0};
  }
  return out;
}

} // namespace xlc::train
