//===- column_sum.cuh - Column sums of a row-major view (a bias's gradient) -*- CUDA -*-===//
//
//     out[c] += Σ_{r < rows} x[r, c]        (fp32, ACCUMULATED)
// The gradient of a bias added to every row of a projection (xk.column_sum): Σ over the batch's
// tokens of the output's gradient.
//
// Grid (ceil(rows / kRowsPerBlock), 1, 1), block (kThreads, 1, 1), no dynamic shared memory.
// Thread t owns columns t, t + kThreads, ... and sums its block's rows in row order in
// registers; each block writes its partial sums to partial[blockIdx.x, :], and the last block to
// finish (an atomic counter it resets) adds them in block order into out — bit-identical from
// run to run (no floating-point atomics), as rms_norm_backward's weight gradient.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_COLUMN_SUM_CUH
#define XLC_DEVICE_COLUMN_SUM_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct ColumnSumParams {
  const void *x;     ///< view of T: element (r, c) at x[r·x_stride + x_offset + c]
  int64_t x_offset;
  int64_t x_stride;
  float *partial;    ///< [gridDim.x, kCols] fp32 scratch
  float *out;        ///< [kCols] fp32, accumulated (+=)
  int64_t *counter;  ///< [1], zero before the launch (left zero after it)
  int64_t rows;
};

template <class T_, int kCols_, int kThreads_, int kRowsPerBlock_> struct ColumnSumConfig {
  using T = T_;
  static constexpr int kCols = kCols_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kRowsPerBlock = kRowsPerBlock_;
  static constexpr int kSharedBytes = 0;
  static constexpr int kPerThread = ceil_div(kCols, kThreads);
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
  static_assert(kRowsPerBlock >= 1, "kRowsPerBlock must be positive");
};

template <class Config> __device__ void column_sum(const ColumnSumParams &p) {
  using T = typename Config::T;
  constexpr int kCols = Config::kCols, kThreads = Config::kThreads, kPer = Config::kPerThread;
  __shared__ bool isLast;
  const int tid = threadIdx.x;
  float acc[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i)
    acc[i] = 0.0f;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * Config::kRowsPerBlock;
  const int64_t last = first + Config::kRowsPerBlock < p.rows ? first + Config::kRowsPerBlock
                                                               : p.rows;
  for (int64_t row = first; row < last; ++row) {
    const T *x = static_cast<const T *>(p.x) + row * p.x_stride + p.x_offset;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int c = i * kThreads + tid;
      if (c < kCols)
        acc[i] += to_float(x[c]);
    }
  }
  float *partial = p.partial + static_cast<int64_t>(blockIdx.x) * kCols;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int c = i * kThreads + tid;
    if (c < kCols)
      partial[c] = acc[i];
  }
  if (arrive_last(p.counter, isLast))
    add_partials_in_order<kThreads>(p.out, p.partial, kCols, p.counter);
}

} // namespace xlc::device

#endif // XLC_DEVICE_COLUMN_SUM_CUH
