//===- swiglu.cuh - SiLU(gate) · up --------------------------------*- CUDA -*-===//
//
// out[r, c] = silu(gate[r, c]) · up[r, c],  silu(x) = x·σ(x)          (xlstm-7b.md §2.4)
//
// gate and up are strided views, normally two column ranges of the fused FFN projection
// [rows, 2F] ([gate | up]); out is contiguous [rows, kDim]. fp32 math, one rounding to T.
//
// Grid (rows, ceil(kDim / (kThreads·8)), 1), block (kThreads, 1, 1), no dynamic shared memory:
// each thread handles one group of 8 consecutive columns (16-byte accesses for bf16 when the
// views are aligned). Rows go in grid.x, whose limit (2³¹ − 1) fits B·S; grid.y is small.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_SWIGLU_CUH
#define XLC_DEVICE_SWIGLU_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct SwigluParams {
  const void *gate; ///< view of T
  int64_t gate_offset;
  int64_t gate_stride;
  const void *up;   ///< view of T
  int64_t up_offset;
  int64_t up_stride;
  void *out;        ///< [rows, kDim] of T
  int64_t rows;
};

template <class T_, int kDim_, int kThreads_> struct SwigluConfig {
  using T = T_;
  static constexpr int kDim = kDim_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kSharedBytes = 0;
  static constexpr int kColsPerBlock = kThreads * 8;
  static constexpr int kColBlocks = ceil_div(kDim, kColsPerBlock); ///< grid.y
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
};

template <class Config> __device__ void swiglu(const SwigluParams &p) {
  using T = typename Config::T;
  constexpr int kDim = Config::kDim;
  const int64_t row = blockIdx.x;
  const int c = blockIdx.y * Config::kColsPerBlock + threadIdx.x * 8;
  if (row >= p.rows || c >= kDim)
    return;
  const T *g = static_cast<const T *>(p.gate) + row * p.gate_stride + p.gate_offset + c;
  const T *u = static_cast<const T *>(p.up) + row * p.up_stride + p.up_offset + c;
  T *out = static_cast<T *>(p.out) + row * kDim + c;
  const bool vector = c + 8 <= kDim && view_aligned16<T>(p.gate, p.gate_offset, p.gate_stride) &&
                      view_aligned16<T>(p.up, p.up_offset, p.up_stride) &&
                      view_aligned16<T>(p.out, 0, kDim);
  if (vector) {
    float gv[8], uv[8], y[8];
    load_floats<8, true>(g, gv);
    load_floats<8, true>(u, uv);
#pragma unroll
    for (int i = 0; i < 8; ++i)
      y[i] = silu(gv[i]) * uv[i];
    store_floats<8, true>(out, y);
  } else {
    for (int i = 0; i < 8 && c + i < kDim; ++i)
      out[i] = from_float<T>(silu(to_float(g[i])) * to_float(u[i]));
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_SWIGLU_CUH
