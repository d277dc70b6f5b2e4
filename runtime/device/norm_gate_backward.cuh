//===- norm_gate_backward.cuh - Gradient of the multi-head LayerNorm times the output gate -*- CUDA -*-===//
//
// The backward of norm_gate.cuh, out = LN_head(h) ⊙ w ⊙ σ(o) (runtime/reference/BlockOps.h:
// outputGateBackward then multiHeadLayerNormBackward). Per row and head, with x̂ = (h − μ)·r,
// r = rsqrt(σ² + eps), y = x̂ ⊙ w and s = σ(o):
//     do = dout·y·s·(1 − s)
//     g  = dout·s·w,   dh = r·(g − mean_head(g) − x̂·mean_head(g ⊙ x̂))
//     dw += Σ_rows dout·s·x̂        (fp32, ACCUMULATED)
// h and o are the forward's views; dh is contiguous [rows, NH·DV]; do is written into a strided
// destination (normally the o-gate columns of the fused q|k|v|o projection's gradient).
//
// Grid (ceil(rows / kRowsPerBlock), 1, 1), block (kThreads, 1, 1), no dynamic shared memory.
// Warp w handles heads w, w + kWarps, ... of each of its block's rows; lane l the columns
// l, l + 32, ... of a head, so every per-head statistic is a warp_sum (a fixed shuffle order).
// Each lane sums its columns' dw terms over the block's rows in registers; the blocks' partials
// are added in block order by the last block to finish (as rms_norm_backward.cuh): the weight
// gradient is bit-identical from run to run.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_NORM_GATE_BACKWARD_CUH
#define XLC_DEVICE_NORM_GATE_BACKWARD_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct NormGateBackwardParams {
  const void *h;      ///< the forward's cell-output view of T
  int64_t h_offset;
  int64_t h_stride;
  const void *weight; ///< [NH·DV] of T
  const void *o;      ///< the forward's output-gate pre-activation view of T
  int64_t o_offset;
  int64_t o_stride;
  const void *dout;   ///< [rows, NH·DV] of T
  void *dh;           ///< [rows, NH·DV] of T, written
  void *d_o;          ///< destination of do (T): element (r, c) at d_o[r·do_stride + do_offset + c]
  int64_t do_offset;
  int64_t do_stride;
  float *dw_partial;  ///< [gridDim.x, NH·DV] fp32 scratch
  float *dw;          ///< [NH·DV] fp32, accumulated (+=)
  int64_t *counter;   ///< [1], zero before the launch (left zero after it)
  int64_t rows;
  double eps;
};

template <class T_, int kNumHeads_, int kHeadDim_, int kThreads_, int kRowsPerBlock_>
struct NormGateBackwardConfig {
  using T = T_;
  static constexpr int kNumHeads = kNumHeads_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kWidth = kNumHeads * kHeadDim;
  static constexpr int kThreads = kThreads_;
  static constexpr int kRowsPerBlock = kRowsPerBlock_;
  static constexpr int kSharedBytes = 0;
  static constexpr int kWarps = kThreads / 32;
  static constexpr int kHeadsPerWarp = ceil_div(kNumHeads, kWarps);
  static constexpr int kPerLane = ceil_div(kHeadDim, 32);
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
  static_assert(kRowsPerBlock >= 1, "kRowsPerBlock must be positive");
};

template <class Config> __device__ void norm_gate_backward(const NormGateBackwardParams &p) {
  using T = typename Config::T;
  constexpr int kDV = Config::kHeadDim, kW = Config::kWidth, kPer = Config::kPerLane;
  __shared__ bool isLast;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const T *w = static_cast<const T *>(p.weight);
  float acc[Config::kHeadsPerWarp][kPer];
#pragma unroll
  for (int a = 0; a < Config::kHeadsPerWarp; ++a)
#pragma unroll
    for (int j = 0; j < kPer; ++j)
      acc[a][j] = 0.0f;

  const int64_t first = static_cast<int64_t>(blockIdx.x) * Config::kRowsPerBlock;
  const int64_t last =
      first + Config::kRowsPerBlock < p.rows ? first + Config::kRowsPerBlock : p.rows;
  for (int64_t row = first; row < last; ++row) {
    const T *h = static_cast<const T *>(p.h) + row * p.h_stride + p.h_offset;
    const T *o = static_cast<const T *>(p.o) + row * p.o_stride + p.o_offset;
    const T *dout = static_cast<const T *>(p.dout) + row * kW;
    T *dh = static_cast<T *>(p.dh) + row * kW;
    T *d_o = static_cast<T *>(p.d_o) + row * p.do_stride + p.do_offset;
#pragma unroll
    for (int a = 0; a < Config::kHeadsPerWarp; ++a) {
      const int hd = warp + a * Config::kWarps;
      if (hd >= Config::kNumHeads)
        break;
      // Every load of the head's row (h, o, dout, w) is issued before the reductions and before
      // any store: the views may alias as far as the compiler knows, so loads after a store
      // would wait for it.
      float xv[kPer], gv[kPer], ov[kPer], dv[kPer], wv[kPer];
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < kPer; ++j) {
        const int e = lane + 32 * j;
        const bool in = e < kDV;
        xv[j] = in ? to_float(h[hd * kDV + e]) : 0.0f;
        ov[j] = in ? to_float(o[hd * kDV + e]) : 0.0f;
        dv[j] = in ? to_float(dout[hd * kDV + e]) : 0.0f;
        wv[j] = in ? to_float(w[hd * kDV + e]) : 0.0f;
        sum += xv[j];
      }
      const float mean = warp_sum(sum) / kDV;
      float sq = 0.0f;
#pragma unroll
      for (int j = 0; j < kPer; ++j) {
        const int e = lane + 32 * j;
        xv[j] = e < kDV ? xv[j] - mean : 0.0f;
        sq += xv[j] * xv[j];
      }
      const float r = rsqrtf(warp_sum(sq) / kDV + static_cast<float>(p.eps));
      float gSum = 0.0f, gxSum = 0.0f;
#pragma unroll
      for (int j = 0; j < kPer; ++j) {
        const int e = lane + 32 * j;
        gv[j] = 0.0f;
        if (e >= kDV)
          continue;
        const int c = hd * kDV + e;
        const float xhat = xv[j] * r, wc = wv[j], s = sigmoid(ov[j]);
        const float d = dv[j];
        d_o[c] = from_float<T>(d * xhat * wc * s * (1.0f - s));
        gv[j] = d * s * wc;
        xv[j] = xhat;
        gSum += gv[j];
        gxSum += gv[j] * xhat;
        acc[a][j] += d * s * xhat;
      }
      const float gMean = warp_sum(gSum) / kDV, gxMean = warp_sum(gxSum) / kDV;
#pragma unroll
      for (int j = 0; j < kPer; ++j) {
        const int e = lane + 32 * j;
        if (e < kDV)
          dh[hd * kDV + e] = from_float<T>(r * (gv[j] - gMean - xv[j] * gxMean));
      }
    }
  }

  float *partial = p.dw_partial + static_cast<int64_t>(blockIdx.x) * kW;
#pragma unroll
  for (int a = 0; a < Config::kHeadsPerWarp; ++a) {
    const int hd = warp + a * Config::kWarps;
    if (hd >= Config::kNumHeads)
      break;
#pragma unroll
    for (int j = 0; j < kPer; ++j)
      if (lane + 32 * j < kDV)
        partial[hd * kDV + lane + 32 * j] = acc[a][j];
  }
  if (arrive_last(p.counter, isLast))
    add_partials_in_order<Config::kThreads>(p.dw, p.dw_partial, kW, p.counter);
}

} // namespace xlc::device

#endif // XLC_DEVICE_NORM_GATE_BACKWARD_CUH
