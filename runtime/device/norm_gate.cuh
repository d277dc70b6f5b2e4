//===- norm_gate.cuh - Multi-head LayerNorm times the output gate -*- CUDA -*-===//
//
// For every row r and head hd (features [hd·kHeadDim, (hd+1)·kHeadDim) of h):
//   μ  = mean_e h[r, hd, e],  σ² = mean_e (h[r, hd, e] − μ)²          (biased variance)
//   out[r, hd·kHeadDim + e] = (h[r, hd, e] − μ) · rsqrt(σ² + eps) · w[hd·kHeadDim + e]
//                             · σ(o[r, hd·kHeadDim + e])
// (xlstm-7b.md §2.3 steps 5 and 6: LayerNorm per (token, head) with one weight over all heads, no
// bias, fp32 statistics; then the sigmoid output gate.) h and o are strided views (o is a column
// range of the fused q|k|v|o projection); out is contiguous [rows, kNumHeads·kHeadDim].
//
// Grid (rows, 1, 1), block (kThreads, 1, 1), no dynamic shared memory. Warp w normalises heads
// w, w + kThreads/32, ...; each lane holds ceil(kHeadDim / 256) groups of 8 values in registers,
// so both passes (mean, then centred variance: no cancellation) read h once; only warp shuffles.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_NORM_GATE_CUH
#define XLC_DEVICE_NORM_GATE_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct NormGateParams {
  const void *h;      ///< cell output view of T, [rows, NH·DV]
  int64_t h_offset;
  int64_t h_stride;
  const void *weight; ///< [NH·DV] of T
  const void *o;      ///< output-gate pre-activation view of T
  int64_t o_offset;
  int64_t o_stride;
  void *out;          ///< [rows, NH·DV] of T
  int64_t rows;
  double eps;
};

template <class T_, int kNumHeads_, int kHeadDim_, int kThreads_> struct NormGateConfig {
  using T = T_;
  static constexpr int kNumHeads = kNumHeads_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kSharedBytes = 0;
  static constexpr int kWidth = kNumHeads * kHeadDim;
  static constexpr int kGroups = ceil_div(kHeadDim, 32 * 8); ///< groups of 8 per lane and head
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
};

namespace detail {
template <class Config, bool kVector> __device__ void norm_gate_row(const NormGateParams &p) {
  using T = typename Config::T;
  constexpr int kHeadDim = Config::kHeadDim, kGroups = Config::kGroups;
  constexpr int kWarps = Config::kThreads / 32;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t row = blockIdx.x;
  const T *hrow = static_cast<const T *>(p.h) + row * p.h_stride + p.h_offset;
  const T *orow = static_cast<const T *>(p.o) + row * p.o_stride + p.o_offset;
  const T *w = static_cast<const T *>(p.weight);
  T *out = static_cast<T *>(p.out) + row * Config::kWidth;
  const float eps = static_cast<float>(p.eps);
  for (int head = warp; head < Config::kNumHeads; head += kWarps) {
    const int base = head * kHeadDim;
    float v[kGroups][8];
    float sum = 0.0f;
#pragma unroll
    for (int g = 0; g < kGroups; ++g) {
      const int e = (g * 32 + lane) * 8;
      if (kVector && e + 8 <= kHeadDim) {
        load_floats<8, true>(hrow + base + e, v[g]);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i)
          v[g][i] = e + i < kHeadDim ? to_float(hrow[base + e + i]) : 0.0f;
      }
#pragma unroll
      for (int i = 0; i < 8; ++i)
        sum += v[g][i];
    }
    const float mean = warp_sum(sum) / kHeadDim;
    float sq = 0.0f;
#pragma unroll
    for (int g = 0; g < kGroups; ++g) {
      const int e = (g * 32 + lane) * 8;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float d = e + i < kHeadDim ? v[g][i] - mean : 0.0f;
        sq += d * d;
      }
    }
    const float rstd = rsqrtf(warp_sum(sq) / kHeadDim + eps);
#pragma unroll
    for (int g = 0; g < kGroups; ++g) {
      const int e = (g * 32 + lane) * 8;
      if (e >= kHeadDim)
        continue;
      float wv[8], ov[8], y[8];
      if (kVector && e + 8 <= kHeadDim) {
        load_floats<8, true>(w + base + e, wv);
        load_floats<8, true>(orow + base + e, ov);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          wv[i] = e + i < kHeadDim ? to_float(w[base + e + i]) : 0.0f;
          ov[i] = e + i < kHeadDim ? to_float(orow[base + e + i]) : 0.0f;
        }
      }
#pragma unroll
      for (int i = 0; i < 8; ++i)
        y[i] = (v[g][i] - mean) * rstd * wv[i] * sigmoid(ov[i]);
      if (kVector && e + 8 <= kHeadDim) {
        store_floats<8, true>(out + base + e, y);
      } else {
        for (int i = 0; i < 8 && e + i < kHeadDim; ++i)
          out[base + e + i] = from_float<T>(y[i]);
      }
    }
  }
}
} // namespace detail

template <class Config> __device__ void norm_gate(const NormGateParams &p) {
  using T = typename Config::T;
  if (static_cast<int64_t>(blockIdx.x) >= p.rows)
    return;
  const bool vector = Config::kHeadDim % 8 == 0 &&
                      view_aligned16<T>(p.h, p.h_offset, p.h_stride) &&
                      view_aligned16<T>(p.o, p.o_offset, p.o_stride) &&
                      view_aligned16<T>(p.weight, 0, 0) &&
                      view_aligned16<T>(p.out, 0, Config::kWidth);
  if (vector)
    detail::norm_gate_row<Config, true>(p);
  else
    detail::norm_gate_row<Config, false>(p);
}

} // namespace xlc::device

#endif // XLC_DEVICE_NORM_GATE_CUH
