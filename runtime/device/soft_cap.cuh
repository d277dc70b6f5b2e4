//===- soft_cap.cuh - In-place logit soft-cap ----------------------*- CUDA -*-===//
//
// x[i] = cap · tanh(x[i] / cap) for i in [0, count), in place (xlstm-7b.md §2.1 step 5: the
// output soft-cap, 30 for the 7B, applied to the fp32 logits of the LM-head GEMM). Flat: the
// logits [rows, V] are treated as count = rows·V contiguous elements.
//
// Grid (ceil(count / (kThreads·8)), 1, 1), block (kThreads, 1, 1), no dynamic shared memory. Each
// thread owns 8 consecutive elements (two float4 for fp32) and uses 16-byte accesses when the base
// is aligned; the tail past the last full group is scalar.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_SOFT_CAP_CUH
#define XLC_DEVICE_SOFT_CAP_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

struct SoftCapParams {
  void *x;       ///< [count] of T, in place
  int64_t count; ///< rows·V
  double cap;    ///< > 0
};

template <class T_, int kThreads_> struct SoftCapConfig {
  using T = T_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kSharedBytes = 0;
  static constexpr int kElemsPerBlock = kThreads * 8;
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
};

template <class Config> __device__ void soft_cap(const SoftCapParams &p) {
  using T = typename Config::T;
  const int64_t i0 = (static_cast<int64_t>(blockIdx.x) * Config::kThreads + threadIdx.x) * 8;
  if (i0 >= p.count)
    return;
  T *x = static_cast<T *>(p.x) + i0;
  const float cap = static_cast<float>(p.cap);
  if (i0 + 8 <= p.count && view_aligned16<T>(p.x, 0, 0)) {
    float v[8];
    load_floats<8, true>(x, v);
#pragma unroll
    for (int i = 0; i < 8; ++i)
      v[i] = cap * tanhf(v[i] / cap);
    store_floats<8, true>(x, v);
  } else {
    for (int i = 0; i < 8 && i0 + i < p.count; ++i)
      x[i] = from_float<T>(cap * tanhf(to_float(x[i]) / cap));
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_SOFT_CAP_CUH
