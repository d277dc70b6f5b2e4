//===- adamw.cuh - The AdamW update of one tensor -----------------*- CUDA -*-===//
//
// One optimizer step for every element i < count of one parameter tensor, in fp32
// (runtime/train/AdamW.h is the same arithmetic on the host and documents it; xlstm-7b.md §6.2):
//     g = grad_scale·grad[i]                          grad_scale: the global-norm clipping factor
//     m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
//     p ← p − lr·( (m / c1) / (√(v / c2) + ε) + λ·p )   c1 = 1 − β1^t, c2 = 1 − β2^t
// with λ the weight decay (0 for tensors that do not decay: the caller passes it per tensor).
// kMaster: p is an fp32 master copy and the working weight (T, what the forward reads) is
// rewritten from it, rounded to nearest; otherwise the working weight is updated in place.
//
// Storage types: the gradient G and the moments M are fp32 or bf16; the arithmetic is fp32
// whatever they are (a bf16 value widens exactly). A bf16 store rounds to nearest, or with
// kStochastic stochastically (stochastic_rounding.cuh), which the low-memory mode needs: bf16
// moments and a bf16 weight without a master, where rounding to nearest would drop every update
// below half an ulp. Element i's random bits are two words, A = rounding_word(rounding_key(seed,
// 2·tensor), i) and B = rounding_word(rounding_key(seed, 2·tensor + 1), i): the weight rounds
// with A's low 16 bits, m with A's high 16, v with B's low 16 (adamw_rounding_bits), with seed
// the optimizer step and tensor the launch's index in optimizer_step: a pure function of (step,
// tensor, array, element), so a resumed run and the CPU backend
// (runtime/kernels/families/AdamW.cpp) round identically.
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
#include "xlc/device/stochastic_rounding.cuh"

namespace xlc::device {

struct AdamWParams {
  void *weight;        ///< [count] of T: the working weight the forward reads
  float *master;       ///< [count] fp32 master weights (kMaster), else null
  void *grad;          ///< [count] of G, zeroed after it is read
  void *m;             ///< [count] of M: the first moment
  void *v;             ///< [count] of M: the second moment
  int64_t count;
  int64_t seed;        ///< kStochastic: the optimizer step (the random bits' counter)
  int64_t tensor;      ///< kStochastic: which tensor of the step (its launch index)
  double lr;
  double beta1, beta2, eps;
  double weight_decay; ///< λ for this tensor (0: no decay)
  double c1, c2;       ///< bias corrections 1 − β^t of this step
  double grad_scale;   ///< the clipping factor
};

template <class T_, class G_, class M_, bool kMaster_, bool kStochastic_, int kThreads_>
struct AdamWConfig {
  using T = T_;
  using G = G_;
  using M = M_;
  static constexpr bool kMaster = kMaster_;
  static constexpr bool kStochastic = kStochastic_;
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

/// Stores N fp32 values as X at p + i (element indices i..i+N−1 of the tensor): bf16 rounded
/// stochastically with the 16-bit values bits[e] when kStochastic, else as from_float rounds (to
/// nearest). kVector: one or more 16-byte stores (p + i 16-byte aligned).
template <int N, bool kVector, bool kStochastic, class X>
__device__ __forceinline__ void store_rounded(X *p, int64_t i, const float (&in)[N],
                                              const unsigned int (&bits)[N]) {
  if constexpr (kStochastic && is_bf16<X>) {
    unsigned short out[N];
#pragma unroll
    for (int e = 0; e < N; ++e)
      out[e] = bf16_bits_stochastic(__builtin_bit_cast(unsigned int, in[e]), bits[e]);
    if constexpr (kVector) {
      static_assert((N * 2) % 16 == 0, "vector store of a partial 16-byte group");
#pragma unroll
      for (int c = 0; c < N / 8; ++c) {
        uint4 raw;
        memcpy(&raw, out + 8 * c, 16);
        reinterpret_cast<uint4 *>(p + i)[c] = raw;
      }
    } else {
#pragma unroll
      for (int e = 0; e < N; ++e)
        memcpy(p + i + e, out + e, 2);
    }
  } else {
    store_floats<N, kVector>(p + i, in);
  }
}

/// The 16-bit rounding values of elements i..i+N−1 for the weight, m and v (file comment).
template <int N>
__device__ __forceinline__ void adamw_rounding_bits(unsigned int keyA, unsigned int keyB,
                                                    int64_t i, unsigned int (&w)[N],
                                                    unsigned int (&m)[N], unsigned int (&v)[N]) {
#pragma unroll
  for (int e = 0; e < N; ++e) {
    const unsigned int a = rounding_word(keyA, static_cast<uint64_t>(i + e));
    w[e] = a & 0xffffU;
    m[e] = a >> 16;
    v[e] = rounding_word(keyB, static_cast<uint64_t>(i + e)) & 0xffffU;
  }
}

template <class Config> __device__ void adamw(const AdamWParams &p) {
  using T = typename Config::T;
  using G = typename Config::G;
  using M = typename Config::M;
  constexpr bool kSR = Config::kStochastic;
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
  G *grad = static_cast<G *>(p.grad);
  M *mom1 = static_cast<M *>(p.m), *mom2 = static_cast<M *>(p.v);
  const uint64_t seed = static_cast<uint64_t>(p.seed);
  const unsigned int stream = static_cast<unsigned int>(p.tensor) * 2U;
  const unsigned int keyA = kSR ? rounding_key(seed, stream) : 0U;
  const unsigned int keyB = kSR ? rounding_key(seed, stream + 1U) : 0U;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * Config::kThreads + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * Config::kThreads;
  const bool vector = view_aligned16<G>(grad, 0, 0) && view_aligned16<M>(mom1, 0, 0) &&
                      view_aligned16<M>(mom2, 0, 0) && view_aligned16<T>(w, 0, 0) &&
                      (!Config::kMaster || view_aligned16<float>(p.master, 0, 0));
  const int64_t groups = vector ? p.count / kGroup : 0;
  for (int64_t gi = first; gi < groups; gi += stride) {
    const int64_t i = gi * kGroup;
    float g[kGroup], m[kGroup], v[kGroup], param[kGroup];
    load_floats<kGroup, true>(grad + i, g);
    load_floats<kGroup, true>(mom1 + i, m);
    load_floats<kGroup, true>(mom2 + i, v);
    if constexpr (Config::kMaster)
      load_floats<kGroup, true>(p.master + i, param);
    else
      load_floats<kGroup, true>(w + i, param);
#pragma unroll
    for (int e = 0; e < kGroup; ++e)
      adamw_element(scale * g[e], m[e], v[e], param[e], b1, b2, eps, lr, lambda, c1, c2);
    unsigned int bitsW[kGroup] = {}, bitsM[kGroup] = {}, bitsV[kGroup] = {};
    if constexpr (kSR)
      adamw_rounding_bits(keyA, keyB, i, bitsW, bitsM, bitsV);
    const float zeros[kGroup] = {};
    store_floats<kGroup, true>(grad + i, zeros);
    store_rounded<kGroup, true, kSR>(mom1, i, m, bitsM);
    store_rounded<kGroup, true, kSR>(mom2, i, v, bitsV);
    if constexpr (Config::kMaster) {
      store_floats<kGroup, true>(p.master + i, param);
      store_floats<kGroup, true>(w + i, param); // the working copy, rounded to nearest
    } else {
      store_rounded<kGroup, true, kSR>(w, i, param, bitsW);
    }
  }
  // The elements after the last whole group (all of them when a pointer is not 16-byte aligned).
  for (int64_t i = groups * kGroup + first; i < p.count; i += stride) {
    float g[1] = {scale * to_float(grad[i])}, m[1] = {to_float(mom1[i])}, v[1] = {to_float(mom2[i])};
    float param[1] = {Config::kMaster ? p.master[i] : to_float(w[i])};
    adamw_element(g[0], m[0], v[0], param[0], b1, b2, eps, lr, lambda, c1, c2);
    unsigned int bitsW[1] = {}, bitsM[1] = {}, bitsV[1] = {};
    if constexpr (kSR)
      adamw_rounding_bits(keyA, keyB, i, bitsW, bitsM, bitsV);
    grad[i] = from_float<G>(0.0f);
    store_rounded<1, false, kSR>(mom1, i, m, bitsM);
    store_rounded<1, false, kSR>(mom2, i, v, bitsV);
    if constexpr (Config::kMaster) {
      p.master[i] = param[0];
      w[i] = from_float<T>(param[0]);
    } else {
      store_rounded<1, false, kSR>(w, i, param, bitsW);
    }
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_ADAMW_CUH
