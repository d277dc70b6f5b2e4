//===- convert.cuh - A float tensor in another float type ----------*- CUDA -*-===//
//
// y[r, c] = TOut(x[r, c])   for c < kCols, every row
//
// x is a strided view (a column range of a wider buffer), y contiguous [rows, kCols]. The
// conversion rounds to nearest even (bf16) or is exact (widening). Used where a GEMM's operands
// come in two types (cuBLASLt multiplies one type by itself): the f32 gradient of the logits or
// of the gates meets bf16 weights and activations in the backward, and is narrowed to bf16
// first (as llm.c keeps the logits' gradient in bf16).
//
// Grid (rows, ceil(kCols / (kThreads·8)), 1), block (kThreads, 1, 1), no dynamic shared memory:
// each thread converts one group of 8 consecutive columns of its row.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_CONVERT_CUH
#define XLC_DEVICE_CONVERT_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct ConvertParams {
  const void *x; ///< view of TIn
  int64_t x_offset;
  int64_t x_stride;
  void *y;       ///< [rows, kCols] of TOut
  int64_t rows;
};

template <class TIn_, class TOut_, int kCols_, int kThreads_> struct ConvertConfig {
  using TIn = TIn_;
  using TOut = TOut_;
  static constexpr int kCols = kCols_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kSharedBytes = 0;
  static constexpr int kColsPerBlock = kThreads * 8;
  static constexpr int kColBlocks = ceil_div(kCols, kColsPerBlock); ///< grid.y
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
};

template <class Config> __device__ void convert(const ConvertParams &p) {
  using TIn = typename Config::TIn;
  using TOut = typename Config::TOut;
  const int64_t row = blockIdx.x;
  const int c = blockIdx.y * Config::kColsPerBlock + threadIdx.x * 8;
  if (row >= p.rows || c >= Config::kCols)
    return;
  const TIn *x = static_cast<const TIn *>(p.x) + row * p.x_stride + p.x_offset + c;
  TOut *y = static_cast<TOut *>(p.y) + row * Config::kCols + c;
  for (int i = 0; i < 8 && c + i < Config::kCols; ++i)
    y[i] = from_float<TOut>(to_float(x[i]));
}

} // namespace xlc::device

#endif // XLC_DEVICE_CONVERT_CUH
