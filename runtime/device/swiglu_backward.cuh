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
  // ∂/∂g silu(g)·u = u·σ(g)(1 + g(1 − σ(g))), ∂/∂u = silu(g) = g·σ(g).
  auto grads = [](float gv, float uv, float dv, float &dg, float &du) {
    const float s = sigmoid(gv);
    dg = dv * uv * s * (1.0f + gv * (1.0f - s));
    du = dv * gv * s;
  };
  // Eight consecutive columns per thread: 16-byte loads and stores when every view allows them
  // (the fused gate|up buffer of a bf16 model does), else element by element.
  const bool vector = c0 + 8 <= kDim &&
                      view_aligned16<T>(p.gate, p.gate_offset, p.gate_stride) &&
                      view_aligned16<T>(p.up, p.up_offset, p.up_stride) &&
                      view_aligned16<T>(p.dout, 0, kDim) &&
                      view_aligned16<T>(p.d, p.dgate_offset, p.d_stride) &&
                      view_aligned16<T>(p.d, p.dup_offset, p.d_stride);
  if (vector) {
    float gv[8], uv[8], dv[8], dg[8], du[8];
    load_floats<8, true>(g + c0, gv);
    load_floats<8, true>(u + c0, uv);
    load_floats<8, true>(dout + c0, dv);
#pragma unroll
    for (int i = 0; i < 8; ++i)
      grads(gv[i], uv[i], dv[i], dg[i], du[i]);
    store_floats<8, true>(d + p.dgate_offset + c0, dg);
    store_floats<8, true>(d + p.dup_offset + c0, du);
    return;
  }
  for (int c = c0; c < c0 + 8 && c < kDim; ++c) {
    float dg, du;
    grads(to_float(g[c]), to_float(u[c]), to_float(dout[c]), dg, du);
    d[p.dgate_offset + c] = from_float<T>(dg);
    d[p.dup_offset + c] = from_float<T>(du);
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_SWIGLU_BACKWARD_CUH
