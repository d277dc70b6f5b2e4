//===- rms_norm_backward.cuh - Gradient of RMSNorm ---------------*- CUDA -*-===//
//
// The backward of rms_norm.cuh (runtime/reference/BlockOps.h rmsNormBackward): for each row,
// with r = rsqrt(mean_c x[r, c]² + eps) and g = dy ⊙ w (w = 1 without a weight),
//     dx[r, :] = r·g − (r³/D)·x·⟨g, x⟩  (+ residual[r, :] when given: the gradient of a residual
//                                        block's skip path, added in this kernel's epilogue)
// and the weight's gradient, summed over all rows and ACCUMULATED into dw (fp32):
//     dw[c] += Σ_r dy[r, c]·x[r, c]·r.
//
// Grid (ceil(rows / kRowsPerBlock), 1, 1), block (kThreads, 1, 1), no dynamic shared memory.
// A block takes kRowsPerBlock consecutive rows one after another; each thread owns the same
// columns in every row, so it sums its columns' dw terms in registers in row order. With a
// weight, each block then writes its partial sums to dw_partial[blockIdx.x, :], and the last
// block to finish (an atomic counter, reset to 0 by that block, so every completed launch leaves
// it zero) adds the partials in block order into dw. The sum's order is fixed by the grid and
// the configuration, so results are bit-identical from run to run (no floating-point atomics).
// Sums of squares and dot products are reduced in fp32; dx is rounded to T once.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_RMS_NORM_BACKWARD_CUH
#define XLC_DEVICE_RMS_NORM_BACKWARD_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct RmsNormBackwardParams {
  const void *x;      ///< the forward's input view of T
  int64_t x_offset;   ///< column offset of the view, elements
  int64_t x_stride;   ///< row stride of the view, elements
  const void *weight; ///< [kDim] of T, or null (no weight)
  const void *dy;     ///< [rows, kDim] of T, contiguous
  const void *residual; ///< [rows, kDim] of T added to dx, or null; may be dx itself
  void *dx;           ///< [rows, kDim] of T, written
  float *dw_partial;  ///< [gridDim.x, kDim] fp32 scratch (only read and written with a weight)
  float *dw;          ///< [kDim] fp32, accumulated (+=); null without a weight
  int64_t *counter;   ///< [1], zero before the launch (left zero after it)
  int64_t rows;
  double eps;
};

template <class T_, int kDim_, int kThreads_, int kRowsPerBlock_> struct RmsNormBackwardConfig {
  using T = T_;
  static constexpr int kDim = kDim_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kRowsPerBlock = kRowsPerBlock_;
  static constexpr int kSharedBytes = 0;
  /// Groups of 8 columns per thread.
  static constexpr int kGroups = ceil_div(kDim, kThreads * 8);
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
  static_assert(kRowsPerBlock >= 1, "kRowsPerBlock must be positive");
};

template <class Config> __device__ void rms_norm_backward(const RmsNormBackwardParams &p) {
  using T = typename Config::T;
  constexpr int kDim = Config::kDim, kGroups = Config::kGroups, kThreads = Config::kThreads;
  __shared__ float scratch[32];
  __shared__ bool isLast;
  const int tid = threadIdx.x;
  const T *w = static_cast<const T *>(p.weight);
  float wv[kGroups][8], acc[kGroups][8];
#pragma unroll
  for (int g = 0; g < kGroups; ++g) {
    const int c = (g * kThreads + tid) * 8;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      wv[g][i] = c + i < kDim ? (w ? to_float(w[c + i]) : 1.0f) : 0.0f;
      acc[g][i] = 0.0f;
    }
  }

  const int64_t first = static_cast<int64_t>(blockIdx.x) * Config::kRowsPerBlock;
  const int64_t last = first + Config::kRowsPerBlock < p.rows ? first + Config::kRowsPerBlock
                                                               : p.rows;
  // A thread's 8 consecutive columns of a group move as one 16-byte access when every view
  // allows it; and every load of a row (x, dy, the residual) is issued before its stores (the
  // views may alias as far as the compiler knows, so a load after a store would wait for it).
  const bool vector = view_aligned16<T>(p.x, p.x_offset, p.x_stride) &&
                      view_aligned16<T>(p.dy, 0, kDim) && view_aligned16<T>(p.dx, 0, kDim) &&
                      (p.residual == nullptr || view_aligned16<T>(p.residual, 0, kDim));
  auto load8 = [&](const T *src, int c, float (&out)[8]) {
    if (vector && c + 8 <= kDim) {
      load_floats<8, true>(src + c, out);
      return;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i)
      out[i] = c + i < kDim ? to_float(src[c + i]) : 0.0f;
  };
  for (int64_t row = first; row < last; ++row) {
    const T *x = static_cast<const T *>(p.x) + row * p.x_stride + p.x_offset;
    const T *dy = static_cast<const T *>(p.dy) + row * kDim;
    const T *res = p.residual ? static_cast<const T *>(p.residual) + row * kDim : nullptr;
    float xv[kGroups][8], dv[kGroups][8], rv[kGroups][8];
    float sumsq = 0.0f, gx = 0.0f;
#pragma unroll
    for (int g = 0; g < kGroups; ++g) {
      const int c = (g * kThreads + tid) * 8;
      load8(x, c, xv[g]);
      load8(dy, c, dv[g]);
      if (res)
        load8(res, c, rv[g]);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        if (!res)
          rv[g][i] = 0.0f;
        sumsq += xv[g][i] * xv[g][i];
        gx += dv[g][i] * wv[g][i] * xv[g][i];
      }
    }
    const float total = block_sum<kThreads>(sumsq, scratch);
    const float dot = block_sum<kThreads>(gx, scratch);
    const float r = rsqrtf(total / kDim + static_cast<float>(p.eps));
    const float k = r * r * r / kDim * dot;
    T *dx = static_cast<T *>(p.dx) + row * kDim;
#pragma unroll
    for (int g = 0; g < kGroups; ++g) {
      const int c = (g * kThreads + tid) * 8;
      float out[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        out[i] = r * dv[g][i] * wv[g][i] - k * xv[g][i] + rv[g][i];
        acc[g][i] += dv[g][i] * xv[g][i] * r;
      }
      if (vector && c + 8 <= kDim) {
        store_floats<8, true>(dx + c, out);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i)
          if (c + i < kDim)
            dx[c + i] = from_float<T>(out[i]);
      }
    }
  }
  if (w == nullptr)
    return;

  float *partial = p.dw_partial + static_cast<int64_t>(blockIdx.x) * kDim;
#pragma unroll
  for (int g = 0; g < kGroups; ++g) {
    const int c = (g * kThreads + tid) * 8;
#pragma unroll
    for (int i = 0; i < 8; ++i)
      if (c + i < kDim)
        partial[c + i] = acc[g][i];
  }
  if (arrive_last(p.counter, isLast))
    add_partials_in_order<kThreads>(p.dw, p.dw_partial, kDim, p.counter);
}

} // namespace xlc::device

#endif // XLC_DEVICE_RMS_NORM_BACKWARD_CUH
