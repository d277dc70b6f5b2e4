//===- SequenceStream.h - Fixed-length training sequences out of a token file -*- C++ -*-===//
//
// A range [begin, end) of a token file is cut into windows of S + 1 tokens starting every S
// tokens (window w covers [begin + wS, begin + wS + S]); window w gives the inputs
// tokens[0..S−1] and the next-token targets tokens[1..S]. Each epoch visits every window once, in
// an order that depends only on (seed, epoch): a Fisher–Yates shuffle driven by splitmix64 (the
// standard library's distributions are implementation-defined, and a resumed run must see the
// same order on every machine). The stream's position (epoch, index in the epoch) is all a
// checkpoint needs to resume it exactly.
//
// Document boundaries: resets[b·S + t] = 1 when a document of the token file begins at input
// position t > 0 of row b; training then starts the recurrent state afresh there (the forget gate
// is overridden, xlstm-7b.md §6.3). Position 0 of every row starts from the zero state anyway.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TRAIN_SEQUENCESTREAM_H
#define XLC_RUNTIME_TRAIN_SEQUENCESTREAM_H

#include "runtime/train/TokenFile.h"

#include <cstdint>
#include <vector>

namespace xlc::train {

/// The token ranges of a training and a held-out split: the last ⌈fraction·N⌉ tokens are held
/// out (0 ≤ fraction < 1; 0 holds nothing out).
struct Split {
  std::uint64_t trainBegin = 0, trainEnd = 0;
  std::uint64_t validationBegin = 0, validationEnd = 0;
};
Split splitTokens(std::uint64_t tokenCount, double validationFraction);

/// Where a stream is; equal positions give equal batches.
struct StreamPosition {
  std::uint64_t epoch = 0;
  std::uint64_t index = 0; ///< next window within the epoch's order
  bool operator==(const StreamPosition &) const = default;
};

/// One batch, row-major [batch, seq].
struct Batch {
  std::int64_t batch = 0, seq = 0;
  std::vector<std::int64_t> tokens;
  std::vector<std::int64_t> targets;
  std::vector<std::uint8_t> resets;
};

class SequenceStream {
public:
  /// Throws xlc::Error (naming the file) if [begin, end) holds no window of seq + 1 tokens.
  SequenceStream(const TokenFile &file, std::uint64_t begin, std::uint64_t end, std::int64_t seq,
                 std::uint64_t seed, bool shuffle = true);

  std::uint64_t windowsPerEpoch() const { return windows_; }
  std::int64_t seqLen() const { return seq_; }
  StreamPosition position() const { return pos_; }
  /// Moves to |pos| (index < windowsPerEpoch()).
  void seek(StreamPosition pos);

  /// The next |batch| windows (wrapping into the next epoch as needed).
  Batch next(std::int64_t batch);

  /// Window index of the |index|-th window of |epoch|'s order.
  std::uint64_t windowAt(std::uint64_t epoch, std::uint64_t index);

private:
  void shuffleFor(std::uint64_t epoch);

  const TokenFile *file_;
  std::uint64_t begin_;
  std::int64_t seq_;
  std::uint64_t seed_;
  bool shuffle_;
  std::uint64_t windows_;
  StreamPosition pos_;
  std::uint64_t orderEpoch_ = ~std::uint64_t{0};
  std::vector<std::uint64_t> order_;
};

} // namespace xlc::train

#endif // XLC_RUNTIME_TRAIN_SEQUENCESTREAM_H
