//===- swiglu_backward.cuh - Gradient of SiLU(gate) · up ----------*- CUDA -*-===//
//
// The backward of swiglu.cuh (runtime/reference/BlockOps.h swigluBackward): with s = σ(g),
//     dgate = dout · u · s·(1 + g·(1 − s)),     dup = dout · g·s
// gate and up are the forward's views (the two halves of the fused gate|up projection); the two
// gradients are written as two column ranges of one strided output, normally the [rows, 2F]
// gradient of that fused projection (dgate at column dgate_offset, dup at dup_offset, row stride
// d_stride), which the projection's backward GEMMs read whole. fp32 math, one rounding to T.
//
// Grid (rows, ceil(kDim / (kThreads·8)), 1), block (kThreads, 1, 1), no shared memory: each
// thread handles 8 consecutive columns of one row (scalar accesses: the views' alignment is not
// known).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_SWIGLU_BACKWARD_CUH
#define XLC_DEVICE_SWIGLU_BACKWARD_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct SwigluBackwardParams {
  const void *gate; ///< view of T
  int64_t gate_offset;
  int64_t gate_stride;
  const void *up;   ///< view of T
  int64_t up_offset;
  int64_t up_stride;
  const void *dout; ///< [rows, kDim] of T
  void *d;          ///< the gradients' destination of T (see the file comment)
  int64_t dgate_offset;
  int64_t dup_offset;
  int64_t d_stride;
  int64_t rows;
};

template <class T_, int kDim_, int kThreads_> struct SwigluBackwardConfig {
  using T = T_;
  static constexpr int kDim = kDim_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kSharedBytes = 0;
  static constexpr int kColsPerBlock = kThreads * 8;
  static constexpr int kColBlocks = ceil_div(kDim, kColsPerBlock); ///< grid.y
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
};

template <class Config> __device__ void swiglu_backward(const SwigluBackwardParams &p) {
  using T = typename Config::T;
  constexpr int kDim = Config::kDim;
  const int64_t row = blockIdx.x;
  const int c0 = blockIdx.y * Config::kColsPerBlock + threadIdx.x * 8;
  if (row >= p.rows || c0 >= kDim)
    return;
  const T *g = static_cast<const T *>(p.gate) + row * p.gate_stride + p.gate_offset;
  const T *u = static_cast<const T *>(p.up) + row * p.up_stride + p.up_offset;
  const T *dout = static_cast<const T *>(p.dout) + row * kDim;
  T *d = static_cast<T *>(p.d) + row * p.d_stride;
  for (int c = c0; c < c0 + 8 && c < kDim; ++c) {
    const float gv = to_float(g[c]), uv = to_float(u[c]), dv = to_float(dout[c]);
    const float s = sigmoid(gv);
    d[p.dgate_offset + c] = from_float<T>(dv * uv * s * (1.0f + gv * (1.0f - s)));
    d[p.dup_offset + c] = from_float<T>(dv * gv * s);
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_SWIGLU_BACKWARD_CUH
