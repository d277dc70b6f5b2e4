//===- rms_norm.cuh - RMSNorm over the feature axis ---------------*- CUDA -*-===//
//
// y[r, :] = x[r, :] · rsqrt(mean_c x[r, c]² + eps) · w      (xlstm-7b.md §2.2)
//
// x is a strided view (element (r, c) = x[r·x_stride + x_offset + c]; the final norm of a prefill
// can read only each sequence's last token with rows = B, stride = S·D), y is contiguous
// [rows, kDim]. w [kDim] may be null: the compiler folds the weight into the next projection.
// The sum of squares is reduced in fp32; y is rounded to T once, after the weight multiply.
//
// Grid (rows, 1, 1), block (kThreads, 1, 1), no dynamic shared memory. Each thread keeps its
// ceil(kDim / (kThreads·8)) groups of 8 elements in registers between the two passes, so x is
// read once.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_RMS_NORM_CUH
#define XLC_DEVICE_RMS_NORM_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct RmsNormParams {
  const void *x;    ///< input view of T
  int64_t x_offset; ///< column offset of the view, elements
  int64_t x_stride; ///< row stride of the view, elements
  const void *weight; ///< [kDim] of T, or null (no weight)
  void *y;          ///< [rows, kDim] of T
  int64_t rows;
  double eps;
};

template <class T_, int kDim_, int kThreads_> struct RmsNormConfig {
  using T = T_;
  static constexpr int kDim = kDim_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kSharedBytes = 0;
  /// Groups of 8 elements per thread (8 bf16 = one 16-byte vector; fp32 uses two).
  static constexpr int kGroups = ceil_div(kDim, kThreads * 8);
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
};

namespace detail {
template <class Config, bool kVector> __device__ void rms_norm_row(const RmsNormParams &p) {
  using T = typename Config::T;
  constexpr int kDim = Config::kDim, kGroups = Config::kGroups;
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T *x = static_cast<const T *>(p.x) + row * p.x_stride + p.x_offset;
  float v[kGroups][8];
  float sumsq = 0.0f;
#pragma unroll
  for (int g = 0; g < kGroups; ++g) {
    const int c = (g * Config::kThreads + threadIdx.x) * 8;
    if (kVector && c + 8 <= kDim) {
      load_floats<8, true>(x + c, v[g]);
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i)
        v[g][i] = c + i < kDim ? to_float(x[c + i]) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i)
      sumsq += v[g][i] * v[g][i];
  }
  const float total = block_sum<Config::kThreads>(sumsq, scratch);
  const float rstd = rsqrtf(total / kDim + static_cast<float>(p.eps));
  const T *w = static_cast<const T *>(p.weight);
  T *y = static_cast<T *>(p.y) + row * kDim;
#pragma unroll
  for (int g = 0; g < kGroups; ++g) {
    const int c = (g * Config::kThreads + threadIdx.x) * 8;
    if (c >= kDim)
      continue;
    float wv[8];
    if (w == nullptr) {
#pragma unroll
      for (int i = 0; i < 8; ++i)
        wv[i] = 1.0f;
    } else if (kVector && c + 8 <= kDim) {
      load_floats<8, true>(w + c, wv);
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i)
        wv[i] = c + i < kDim ? to_float(w[c + i]) : 0.0f;
    }
    float out[8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
      out[i] = v[g][i] * rstd * wv[i];
    if (kVector && c + 8 <= kDim) {
      store_floats<8, true>(y + c, out);
    } else {
      for (int i = 0; i < 8 && c + i < kDim; ++i)
        y[c + i] = from_float<T>(out[i]);
    }
  }
}
} // namespace detail

template <class Config> __device__ void rms_norm(const RmsNormParams &p) {
  using T = typename Config::T;
  if (static_cast<int64_t>(blockIdx.x) >= p.rows)
    return;
  // One uniform branch: 16-byte access needs the view, the weight and the output aligned.
  const bool vector = view_aligned16<T>(p.x, p.x_offset, p.x_stride) &&
                      view_aligned16<T>(p.weight, 0, 0) &&
                      view_aligned16<T>(p.y, 0, Config::kDim);
  if (vector)
    detail::rms_norm_row<Config, true>(p);
  else
    detail::rms_norm_row<Config, false>(p);
}

} // namespace xlc::device

#endif // XLC_DEVICE_RMS_NORM_CUH
