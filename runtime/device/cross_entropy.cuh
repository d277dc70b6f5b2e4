//===- cross_entropy.cuh - The loss head: soft-capped cross-entropy and its gradient -*- CUDA -*-===//
//
// For a chunk of rows of pre-cap logits z = x Wᵀ [rows, vocab] (fp32, in place), with
// l = cap·tanh(z/cap) (kCapped; else l = z) and a target per row (runtime/reference/BlockOps.h
// crossEntropy, ModelBackward.h):
//     loss_r = log Σ_v e^{l_v} − l_target                      (rows with target < 0: 0)
//     z[r, v] ← grad_scale · (softmax(l)_v − [v = target]) · (1 − tanh²(z/cap))   (0 if target < 0)
//     loss   += grad_scale · Σ_r loss_r                        (fp32, ACCUMULATED, row order)
// grad_scale is the caller's 1/(counted positions) times the loss scale, so the loss is the mean
// and z becomes ∂loss/∂z, ready for the head's backward GEMMs. The logits of a whole batch never
// need to exist at once: the caller runs this over row chunks of the head's output.
//
// Grid (rows, 1, 1), block (kThreads, 1, 1), no dynamic shared memory: a block takes one row in
// three passes over the vocabulary (max, Σ e^{l − max}, the gradient), recomputing l each time
// rather than storing it. Each block writes loss_r to loss_rows; the last block to finish (an
// atomic counter it resets) adds them in row order into *loss, so the loss is bit-identical from
// run to run. A target ≥ vocab is an error: *error receives row + 1 (zeroed before the launch).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_CROSS_ENTROPY_CUH
#define XLC_DEVICE_CROSS_ENTROPY_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct CrossEntropyParams {
  float *z;               ///< [rows, vocab] pre-cap logits, replaced by ∂loss/∂z
  const int32_t *targets; ///< [rows]; negative: the row is not counted
  float *loss_rows;       ///< [rows]: each row's loss_r, unscaled (0 where not counted)
  float *loss;            ///< [1], accumulated
  int64_t *counter;       ///< [1], zero before the launch (left zero after it)
  int64_t *error;         ///< [1], zero before the launch; row + 1 of a target ≥ vocab after
  int64_t rows;
  int64_t vocab;
  double cap;             ///< the logit soft-cap (ignored unless kCapped)
  double grad_scale;
};

template <int kThreads_, bool kCapped_> struct CrossEntropyConfig {
  static constexpr int kThreads = kThreads_;
  static constexpr bool kCapped = kCapped_;
  static constexpr int kSharedBytes = 0;
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
};

template <class Config> __device__ void cross_entropy(const CrossEntropyParams &p) {
  constexpr int kThreads = Config::kThreads;
  __shared__ float scratch[32];
  __shared__ bool isLast;
  const int64_t row = blockIdx.x;
  float *z = p.z + row * p.vocab;
  const int32_t target = p.targets[row];
  const float cap = static_cast<float>(p.cap), scale = static_cast<float>(p.grad_scale);
  auto capped = [&](float v) { return Config::kCapped ? soft_cap(v, cap) : v; };
  float lossRow = 0.0f;
  if (target >= p.vocab) {
    if (threadIdx.x == 0)
      atomicCAS(reinterpret_cast<unsigned long long *>(p.error), 0ull,
                static_cast<unsigned long long>(row + 1));
  }
  if (target < 0 || target >= p.vocab) {
    for (int64_t v = threadIdx.x; v < p.vocab; v += kThreads)
      z[v] = 0.0f;
  } else {
    float top = -kInfinity;
    for (int64_t v = threadIdx.x; v < p.vocab; v += kThreads)
      top = fmaxf(top, capped(z[v]));
    // Block max through the sum's scratch: warp max, then over warps.
    top = warp_max(top);
    if (threadIdx.x % 32 == 0)
      scratch[threadIdx.x / 32] = top;
    __syncthreads();
    top = -kInfinity;
    for (int w = 0; w < kThreads / 32; ++w)
      top = fmaxf(top, scratch[w]);
    __syncthreads();
    float sum = 0.0f;
    for (int64_t v = threadIdx.x; v < p.vocab; v += kThreads)
      sum += __expf(capped(z[v]) - top);
    sum = block_sum<kThreads>(sum, scratch);
    const float lt = capped(z[target]);
    __syncthreads(); // every thread read z[target] before anyone overwrites it
    lossRow = logf(sum) + top - lt;
    const float inv = 1.0f / sum;
    for (int64_t v = threadIdx.x; v < p.vocab; v += kThreads) {
      const float l = capped(z[v]);
      float d = __expf(l - top) * inv - (v == target ? 1.0f : 0.0f);
      if (Config::kCapped) {
        const float t = l / cap;
        d *= 1.0f - t * t;
      }
      z[v] = scale * d;
    }
  }
  if (threadIdx.x == 0)
    p.loss_rows[row] = lossRow;
  if (!arrive_last(p.counter, isLast) || threadIdx.x != 0)
    return;
  float total = 0.0f;
  for (int64_t r = 0; r < p.rows; ++r)
    total += load_partial(p.loss_rows + r);
  *p.loss += scale * total;
  *p.counter = 0;
}

} // namespace xlc::device

#endif // XLC_DEVICE_CROSS_ENTROPY_CUH
