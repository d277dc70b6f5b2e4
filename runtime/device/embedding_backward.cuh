//===- embedding_backward.cuh - Gradient of the embedding gather ----*- CUDA -*-===//
//
// dtable[t, :] += Σ over rows r with tokens[r] = t of dy[r, :]      (fp32, ACCUMULATED)
// (runtime/reference/BlockOps.h embeddingBackward), deterministically: the rows of one token id
// are added by one thread per column, in row order, so the sum's order never depends on timing
// (no floating-point atomics).
//
// Grid (ceil(kDim / (kThreads·8)), kPartitions, 1), block (kThreads, 1, 1), no shared memory.
// Block (x, y) owns columns [x·kThreads·8, (x+1)·kThreads·8) — 8 per thread — of the token ids
// t with t mod kPartitions = y, and walks all rows in order, adding the rows whose token it owns.
// Every block reads all token ids (4 bytes a row) but only its 1/kPartitions of dy, so the
// partitions give the parallelism a small kDim lacks. A token outside [0, vocab) adds nothing and
// records row + 1 in *error (zeroed by the runtime before the launch), as embedding.cuh does.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_EMBEDDING_BACKWARD_CUH
#define XLC_DEVICE_EMBEDDING_BACKWARD_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct EmbeddingBackwardParams {
  const int32_t *tokens; ///< [rows] token ids
  const void *dy;        ///< [rows, kDim] of T
  float *dtable;         ///< [vocab, kDim] fp32, accumulated
  int64_t *error;        ///< one int64, zero before the launch; row + 1 of a bad token after
  int64_t rows;
  int64_t vocab;
};

template <class T_, int kDim_, int kThreads_, int kPartitions_> struct EmbeddingBackwardConfig {
  using T = T_;
  static constexpr int kDim = kDim_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kPartitions = kPartitions_;
  static constexpr int kSharedBytes = 0;
  static constexpr int kColsPerBlock = kThreads * 8;
  static constexpr int kColBlocks = ceil_div(kDim, kColsPerBlock); ///< grid.x
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
  static_assert(kPartitions >= 1 && kPartitions <= 65535, "kPartitions is grid.y");
};

template <class Config> __device__ void embedding_backward(const EmbeddingBackwardParams &p) {
  using T = typename Config::T;
  constexpr int kDim = Config::kDim;
  const int c0 = blockIdx.x * Config::kColsPerBlock + threadIdx.x * 8;
  const int part = blockIdx.y;
  for (int64_t row = 0; row < p.rows; ++row) {
    const int64_t token = p.tokens[row];
    if (token < 0 || token >= p.vocab) {
      if (part == 0 && blockIdx.x == 0 && threadIdx.x == 0)
        atomicCAS(reinterpret_cast<unsigned long long *>(p.error), 0ull,
                  static_cast<unsigned long long>(row + 1));
      continue;
    }
    if (token % Config::kPartitions != part || c0 >= kDim)
      continue;
    const T *dy = static_cast<const T *>(p.dy) + row * kDim;
    float *dst = p.dtable + token * kDim;
    for (int c = c0; c < c0 + 8 && c < kDim; ++c)
      dst[c] += to_float(dy[c]);
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_EMBEDDING_BACKWARD_CUH
