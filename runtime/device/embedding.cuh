//===- embedding.cuh - Token embedding gather ---------------------*- CUDA -*-===//
//
// out[r, :] = table[tokens[r], :] for r in [0, rows), table [vocab, kDim] row-major, out
// [rows, kDim] contiguous (xlstm-7b.md §2.1 step 1: no scaling). A token outside [0, vocab)
// writes a row of zeros and records the failure in *error, which the runtime zeroes before the
// launch and checks after it: the first failing block to get there stores row + 1 (so any nonzero
// value names one offending row, r = value − 1; not necessarily the smallest).
//
// Grid (rows, 1, 1), block (kThreads, 1, 1), no dynamic shared memory.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_EMBEDDING_CUH
#define XLC_DEVICE_EMBEDDING_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct EmbeddingParams {
  const int32_t *tokens; ///< [rows] token ids
  const void *table;     ///< [vocab, kDim] of T
  void *out;             ///< [rows, kDim] of T
  int64_t *error;        ///< one int64, zero before the launch; row + 1 of a bad token after
  int64_t rows;          ///< B·S
  int64_t vocab;         ///< V
};

template <class T_, int kDim_, int kThreads_> struct EmbeddingConfig {
  using T = T_;
  static constexpr int kDim = kDim_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kSharedBytes = 0;
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
};

template <class Config> __device__ void embedding(const EmbeddingParams &p) {
  using T = typename Config::T;
  constexpr int kDim = Config::kDim, kV = kVec16<T>;
  const int64_t row = blockIdx.x;
  if (row >= p.rows)
    return;
  const int64_t token = p.tokens[row];
  T *out = static_cast<T *>(p.out) + row * kDim;
  const bool valid = token >= 0 && token < p.vocab;
  if (!valid && threadIdx.x == 0)
    atomicCAS(reinterpret_cast<unsigned long long *>(p.error), 0ull,
              static_cast<unsigned long long>(row + 1));
  const T *src = static_cast<const T *>(p.table) + (valid ? token : 0) * kDim;
  // 16-byte copies when the rows allow it (kDim a multiple of the vector and aligned bases).
  const bool vector = kDim % kV == 0 && view_aligned16<T>(p.table, 0, kDim) &&
                      view_aligned16<T>(p.out, 0, kDim);
  if (vector) {
    for (int c = threadIdx.x * kV; c < kDim; c += Config::kThreads * kV) {
      uint4 raw = make_uint4(0u, 0u, 0u, 0u);
      if (valid)
        raw = *reinterpret_cast<const uint4 *>(src + c);
      *reinterpret_cast<uint4 *>(out + c) = raw;
    }
  } else {
    for (int c = threadIdx.x; c < kDim; c += Config::kThreads)
      out[c] = valid ? src[c] : from_float<T>(0.0f);
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_EMBEDDING_CUH
