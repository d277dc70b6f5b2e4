//===- adamw.cuh - The AdamW update of one tensor -----------------*- CUDA -*-===//
//
// One optimizer step for every element i < count of one parameter tensor, in fp32
// (runtime/train/AdamW.h is the same arithmetic on the host and documents it; xlstm-7b.md §6.2):
//     g = grad_scale·grad[i]                          grad_scale: the global-norm clipping factor
//     m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
//     p ← p − lr·( (m / c1) / (√(v / c2) + ε) + λ·p )   c1 = 1 − β1^t, c2 = 1 − β2^t
// with λ the weight decay (0 for tensors that do not decay: the caller passes it per tensor).
// kMaster: p is an fp32 master copy and the working weight (T, what the forward reads) is
// rewritten from it, rounded to nearest; otherwise the working weight is updated in place
// (T = float: exact; bf16 without a master loses updates below half an ulp — the low-memory mode
// adds stochastic rounding later).
//
// The step consumes the gradient: each grad[i] is zeroed once read, so the gradient buffers are
// ready for the next step's micro-batches to accumulate into (train_step adds into them).
//
// Grid (any, 1, 1), block (kThreads, 1, 1), no shared memory: a grid-stride loop over groups of
// 8 elements (16-byte accesses; scalar for the last partial group or unaligned pointers), so one
// kernel serves every tensor size (the launch picks enough blocks to fill the GPU: the step
// moves ~34 bytes per element and is bound by HBM bandwidth). Elementwise: no ordering questions,
// bit-identical from run to run and the same bits whichever path an element takes.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_ADAMW_CUH
#define XLC_DEVICE_ADAMW_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct AdamWParams {
  void *weight;        ///< [count] of T: the working weight the forward reads
  float *master;       ///< [count] fp32 master weights (kMaster), else null
  float *grad;         ///< [count], zeroed after it is read
  float *m;            ///< [count] first moment
  float *v;            ///< [count] second moment
  int64_t count;
  double lr;
  double beta1, beta2, eps;
  double weight_decay; ///< λ for this tensor (0: no decay)
  double c1, c2;       ///< bias corrections 1 − β^t of this step
  double grad_scale;   ///< the clipping factor
};

template <class T_, bool kMaster_, int kThreads_> struct AdamWConfig {
  using T = T_;
  static constexpr bool kMaster = kMaster_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kSharedBytes = 0;
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
};

/// One element's update: the moments and the fp32 parameter in registers.
__device__ __forceinline__ void adamw_element(float g, float &m, float &v, float &param, float b1,
                                              float b2, float eps, float lr, float lambda,
                                              float c1, float c2) {
  m = b1 * m + (1.0f - b1) * g;
  v = b2 * v + (1.0f - b2) * g * g;
  param -= lr * ((m / c1) / (sqrtf(v / c2) + eps) + lambda * param);
}

template <class Config> __device__ void adamw(const AdamWParams &p) {
  using T = typename Config::T;
  // Each thread takes groups of kGroup consecutive elements: one 16-byte store of a bf16 weight,
  // two 16-byte loads of each fp32 array. Every load of a group is issued before any of its
  // stores (the arrays could alias as far as the compiler knows, so program order is the order
  // the loads go out in): 128 bytes in flight per thread, which is what keeps HBM busy.
  constexpr int kGroup = 8;
  const float b1 = static_cast<float>(p.beta1), b2 = static_cast<float>(p.beta2);
  const float eps = static_cast<float>(p.eps), lr = static_cast<float>(p.lr);
  const float lambda = static_cast<float>(p.weight_decay), scale = static_cast<float>(p.grad_scale);
  const float c1 = static_cast<float>(p.c1), c2 = static_cast<float>(p.c2);
  T *w = static_cast<T *>(p.weight);
  const int64_t first = static_cast<int64_t>(blockIdx.x) * Config::kThreads + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * Config::kThreads;
  const bool vector = view_aligned16<float>(p.grad, 0, 0) && view_aligned16<float>(p.m, 0, 0) &&
                      view_aligned16<float>(p.v, 0, 0) && view_aligned16<T>(w, 0, 0) &&
                      (!Config::kMaster || view_aligned16<float>(p.master, 0, 0));
  const int64_t groups = vector ? p.count / kGroup : 0;
  for (int64_t gi = first; gi < groups; gi += stride) {
    const int64_t i = gi * kGroup;
    float g[kGroup], m[kGroup], v[kGroup], param[kGroup];
    load_floats<kGroup, true>(p.grad + i, g);
    load_floats<kGroup, true>(p.m + i, m);
    load_floats<kGroup, true>(p.v + i, v);
    if constexpr (Config::kMaster)
      load_floats<kGroup, true>(p.master + i, param);
    else
      load_floats<kGroup, true>(w + i, param);
#pragma unroll
    for (int e = 0; e < kGroup; ++e)
      adamw_element(scale * g[e], m[e], v[e], param[e], b1, b2, eps, lr, lambda, c1, c2);
    const float zeros[kGroup] = {};
    store_floats<kGroup, true>(p.grad + i, zeros);
    store_floats<kGroup, true>(p.m + i, m);
    store_floats<kGroup, true>(p.v + i, v);
    if constexpr (Config::kMaster)
      store_floats<kGroup, true>(p.master + i, param);
    store_floats<kGroup, true>(w + i, param);
  }
  // The elements after the last whole group (all of them when a pointer is not 16-byte aligned).
  for (int64_t i = groups * kGroup + first; i < p.count; i += stride) {
    const float g = scale * p.grad[i];
    float m = p.m[i], v = p.v[i];
    float param = Config::kMaster ? p.master[i] : to_float(w[i]);
    adamw_element(g, m, v, param, b1, b2, eps, lr, lambda, c1, c2);
    p.grad[i] = 0.0f;
    p.m[i] = m;
    p.v[i] = v;
    if (Config::kMaster)
      p.master[i] = param;
    w[i] = from_float<T>(param);
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_ADAMW_CUH
