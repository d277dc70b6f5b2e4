//===- grad_norm.cuh - Squared L2 norm of a gradient, for global-norm clipping -*- CUDA -*-===//
//
// norm_sq += Σ_{i < count} grad[i]²       (fp32, ACCUMULATED; grad of G: fp32 or bf16)
// One launch per gradient tensor, in a fixed tensor order, all adding into the same norm_sq:
// the global norm ‖g‖ = √norm_sq then gives the clipping factor min(1, c / (‖g‖ + 1e-6))
// (runtime/train/AdamW.h clipScale) that the optimizer step takes as grad_scale.
//
// Grid (kBlocks, 1, 1), block (kThreads, 1, 1), no dynamic shared memory: a grid-stride loop
// over groups of 64 bytes (16-byte loads; scalar for the partial group or an unaligned pointer),
// each block's sum (a block_sum, a fixed shuffle order) written to partial[blockIdx.x], and the
// last block to finish (an atomic counter it resets) adds the partials in block order. For a
// fixed configuration the result is bit-identical from run to run.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_GRAD_NORM_CUH
#define XLC_DEVICE_GRAD_NORM_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct GradNormParams {
  const void *grad;  ///< [count] of G
  float *partial;    ///< [gridDim.x] scratch
  float *norm_sq;    ///< [1], accumulated
  int64_t *counter;  ///< [1], zero before the launch (left zero after it)
  int64_t count;
};

template <class G_, int kThreads_> struct GradNormConfig {
  using G = G_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kSharedBytes = 0;
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
};

template <class Config> __device__ void grad_norm(const GradNormParams &p) {
  __shared__ float scratch[32];
  __shared__ bool isLast;
  // Groups of 64 bytes per thread (four 16-byte loads in flight: 16 fp32 or 32 bf16 elements),
  // then the partial group.
  using G = typename Config::G;
  constexpr int kGroup = static_cast<int>(64 / sizeof(G));
  const G *grad = static_cast<const G *>(p.grad);
  const int64_t first = static_cast<int64_t>(blockIdx.x) * Config::kThreads + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * Config::kThreads;
  const int64_t groups = view_aligned16<G>(grad, 0, 0) ? p.count / kGroup : 0;
  float sum = 0.0f;
  for (int64_t gi = first; gi < groups; gi += stride) {
    float g[kGroup];
    load_floats<kGroup, true>(grad + gi * kGroup, g);
#pragma unroll
    for (int e = 0; e < kGroup; ++e)
      sum += g[e] * g[e];
  }
  for (int64_t i = groups * kGroup + first; i < p.count; i += stride) {
    const float g = to_float(grad[i]);
    sum += g * g;
  }
  sum = block_sum<Config::kThreads>(sum, scratch);
  if (threadIdx.x == 0)
    p.partial[blockIdx.x] = sum;
  if (!arrive_last(p.counter, isLast) || threadIdx.x != 0)
    return;
  float total = 0.0f;
  for (unsigned b = 0; b < gridDim.x; ++b)
    total += load_partial(p.partial + b);
  *p.norm_sq += total;
  *p.counter = 0;
}

} // namespace xlc::device

#endif // XLC_DEVICE_GRAD_NORM_CUH
