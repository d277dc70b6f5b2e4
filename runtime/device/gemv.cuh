//===- gemv.cuh - Split-K GEMV for decode: D = A·Wᵀ (+ bias | + C) --*- CUDA -*-===//
//
//   D[i, j] = Σ_κ A[i, κ]·W[j, κ]  (+ bias[j] | + C[i, j]),   i < m ≤ 8, j < n, κ < k
//
// the projections of a decode step (m = batch rows, W a bf16 weight in the checkpoint's [out, in]
// layout, the "transB" GEMM of the artifact). At m ≤ 8 a GEMM reads n·k weights for 2·m·n·k
// FLOPs: it is bound by the weight stream, and the only goal is to read W once at the memory's
// read bandwidth. The host side is runtime/exec/cuda/Gemv.h; docs/kernels.md ("gemv") has the
// design and the measurements.
//
// ---- Products on the tensor cores, operands straight from global memory -----------------------
// Each warp step multiplies 16 rows of W by the (zero-padded) 8 rows of A over 32 values of κ
// with two mma.m16n8k16 (tensor_core.cuh has the fragment layouts): W is the m16 operand ("A"
// of the instruction, 16 outputs j), Aᵀ the n8 operand (8 batch rows i), fp32 accumulators. The
// sum over κ does not care in which order the κ are paired up, so the κ of the fragments are
// permuted such that every lane loads whole 16-byte vectors and no shuffle is needed. Lane
// l = 4·g + q of a warp at step base κ₀ loads
//     W[j₀ + g][κ₀ + 8q .. +8)  and  W[j₀ + g + 8][κ₀ + 8q .. +8)    (two 16-byte vectors)
//     A[g][κ₀ + 8q .. +8)                                        (one 16-byte vector; g ≥ m: unused)
// as packed bf16 pairs w0..w3, w'0..w'3, x0..x3, and issues
//     mma({w0, w'0, w1, w'1}, {x0, x1})   then   mma({w2, w'2, w3, w'3}, {x2, x3}).
// In the first product, fragment column 2q, 2q+1 of W row g is κ₀ + 8q + {0, 1} and fragment
// column 2q+8, 2q+9 is κ₀ + 8q + {2, 3}; B fragment rows 2q, 2q+1 / 2q+8, 2q+9 of column g are the
// same κ of A row g: both operands agree on every κ, so each product adds Σ over its 16 κ of
// W[j, κ]·A[i, κ] (the second product takes κ₀ + 8q + {4..7}). Accumulator c[0], c[1] of lane
// (g, q) is D[2q, 2q+1] at output j₀ + g, c[2], c[3] the same at j₀ + g + 8.
//
// ---- Work split ------------------------------------------------------------------------------
// A block owns kRows = 16·kRowTiles consecutive outputs j (grid.x = ⌈n / kRows⌉) and a slice
// [κ_b, κ_b + k_split) of the reduction (grid.y = ⌈k / k_split⌉, the split-K factor S). Its kWarps
// warps share the slice: the slice is a sequence of 32-wide steps, taken kUnroll at a time
// ("groups"), group γ by warp γ mod kWarps. A warp issues all 2·kRowTiles·kUnroll weight loads and
// kUnroll activation loads of a group before the first product, so every lane keeps
// 32·kRowTiles·kUnroll bytes of W in flight (1 KiB·kRowTiles·kUnroll per warp); at any moment
// the warps of a block read kWarps·kUnroll·64 contiguous bytes of each of their rows. With
// kStages = 2 a warp issues the loads of its next group before the products of the current one
// (double-buffered registers): one to two groups in flight instead of one, then none.
// Weights are read once, with ld.global.nc.L1::no_allocate (L1 keeps the activations, which
// every block reads) and a 256-byte L2 prefetch hint; activations with ld.global.nc.
//
// ---- Deterministic reduction -------------------------------------------------------------------
// No float atomics: the result does not depend on timing. (1) In the block: every warp writes its
// accumulators to shared memory, then each output (j, i) is the sum over warps 0, 1, ... in
// order. (2) With S > 1, each block writes that sum to partials[blockIdx.y, i, j] (fp32), and
// the block that finishes last for its grid.x column (an integer atomic on counters[blockIdx.x],
// after a __threadfence) sums the S partials in the order y = 0, 1, ... and applies the epilogue;
// it then returns the counter to zero, so the next launch -- or the next replay of a CUDA graph
// that contains this one -- finds it zero. Launches on one stream never overlap, so one partials
// buffer and one counter array serve every launch of a stream.
//
// ---- Epilogue ----------------------------------------------------------------------------------
// v = Σ (+ bias[j] | + C[i, j], C with row stride n), one rounding to TOut: what cuBLASLt's
// BIAS / plain-C epilogues compute. C may be D itself (an in-place residual: every element is
// read and then written by one thread). The bias and residual element type is a launch argument
// (bf16 or fp32), TOut a template parameter.
//
// ---- Prologues: A formed from the a operand on the fly --------------------------------------------
// A decode step's projections read what a row kernel made of the previous one's output; two such
// kernels fold into the GEMV that consumes them (the artifact's gemm prologue, docs/artifact.md):
//   kRmsNorm  D[i, j] = r_i · Σ_κ a[i, κ]·W[j, κ],  r_i = rsqrt(Σ_κ a[i, κ]² / k + eps):
//             rms_norm.cuh without a weight (the compiler folds the norm weight into W). The
//             lanes that load a[i, κ] also add up its squares (in their κ order, then over the 4
//             lanes of the row and the warps in order, then over the split-K slices in order);
//             the row scale multiplies the reduced sum. Against the materialised form this
//             skips the rounding of the normalised a to bf16 (one rounding less).
//   kSwiGlu   A[i, κ] = bf16(silu(a[i, κ])·a[i, a_up_offset + κ]): swiglu.cuh's value, bit for
//             bit, over a fused gate|up row.
//
// ---- Two GEMMs in one launch ------------------------------------------------------------------
// A decode step projects the same normalised row twice: q|k|v|o (12288 outputs, bf16) and the
// i|f gates (16 outputs, fp32 with a bias), a 128 KB GEMV that on its own is a whole launch of
// latency. With grid_x1 > 0 the blocks x ≥ grid_x1 compute the second GEMM (W2, C2, D2, its own
// epilogue and output type) over the same A, prologue, tiling and split of k; its split-K
// partials follow the first GEMM's, its grid columns have their own counters.
//
// ---- Programmatic dependent launch -------------------------------------------------------------
// The entry point does not begin with grid_dependency_sync() (docs/kernels.md): gemv() calls it
// after each warp has asked L2 for the weights of its first group, so that under programmatic
// dependent launch the weight stream of this GEMV starts while the kernel before it finishes
// (its last wave, its split-K reduction). Nothing else is touched before the wait. Invariant:
// the kernel launched right before a GEMV does not write W (weights are written at load and,
// in training, by an optimizer step that must not be PDL-launched right before a GEMV).
//
// ---- Contract (the host checks it: runtime/exec/cuda/Gemv.cpp unsupportedReason) ---------------
//   1 ≤ m ≤ 8; k a multiple of 8; W and every row of A 16-byte aligned (lda a multiple of 8);
//   k_split a positive multiple of 32 with grid.y = ⌈k / k_split⌉ ≤ 65535; with grid.y > 1,
//   partials holds grid.y·m·(n + 1) floats and counters grid.x zeroed uint64; kSwiGlu: a_up_offset
//   a multiple of 8 (the up values 16-byte aligned too). With a second GEMM: grid.x = grid_x1 +
//   ⌈n2 / kRows⌉, W2 16-byte aligned, partials grid.y·m·(n + n2 + 1) floats. n is arbitrary (rows
//   past n are never written); a step past k (k % 32 ≠ 0) contributes zeros.
// Launch: grid (⌈n / kRows⌉, S, 1), block (kThreads, 1, 1), kSharedBytes of dynamic shared memory.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_GEMV_CUH
#define XLC_DEVICE_GEMV_CUH

#include "xlc/device/common.cuh"
#include "xlc/device/tensor_core.cuh"

namespace xlc::device {

enum class GemvEpilogue : int { kNone = 0, kBias = 1, kResidual = 2 };

/// How the kernel forms A from its a operand ("Prologues" in the file comment).
enum class GemvPrologue : int { kNone = 0, kRmsNorm = 1, kSwiGlu = 2 };

struct GemvParams {
  const void *a;     ///< bf16, row i at a + i·lda elements
  int64_t lda;       ///< row stride of a in elements (a multiple of 8)
  const void *w;     ///< bf16 [n, k], row-major
  const void *c;     ///< bias [n] or residual [m, n] (row stride n); unused for kNone
  void *d;           ///< TOut [m, n], row stride n
  int64_t m;
  int64_t n;
  int64_t k;
  int64_t k_split;   ///< κ per grid.y slice, a positive multiple of 32
  int64_t epilogue;  ///< GemvEpilogue
  int64_t c_is_f32;  ///< element type of c: 1 fp32, 0 bf16
  void *partials;    ///< fp32 [grid.y, m, n]; used when grid.y > 1
  void *counters;    ///< uint64 [grid.x], zero before and after a launch; used when grid.y > 1
  int64_t prologue;  ///< GemvPrologue
  int64_t a_up_offset; ///< kSwiGlu: elements from a row's gate values to its up values
  double eps;        ///< kRmsNorm: added to the mean square
  // A second GEMM over the same A ("Two GEMMs in one launch"): blocks x ≥ grid_x1 compute
  // D2 = A·W2ᵀ (+ bias2 | + C2). grid_x1 = 0: none.
  int64_t grid_x1;
  const void *w2;    ///< bf16 [n2, k]
  const void *c2;    ///< bias [n2] or residual [m, n2]
  void *d2;          ///< [m, n2] of fp32 (d2_is_f32) or bf16
  int64_t n2;
  int64_t epilogue2;
  int64_t c2_is_f32;
  int64_t d2_is_f32;
};

template <class TOut_, int kRowTiles_, int kWarps_, int kUnroll_, int kStages_ = 1>
struct GemvConfig {
  using TOut = TOut_;
  static constexpr int kRowTiles = kRowTiles_; ///< 16-output mma tiles per block
  static constexpr int kWarps = kWarps_;       ///< warps per block, sharing its κ slice
  static constexpr int kUnroll = kUnroll_;     ///< 32-wide κ steps a warp loads at once
  static constexpr int kStages = kStages_;     ///< groups a warp has in flight (1 or 2)
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kRows = 16 * kRowTiles; ///< outputs j per block: grid.x = ⌈n / kRows⌉
  static constexpr int kMaxM = 8;              ///< the mma's n8: rows of A
  static constexpr int kStepK = 32;            ///< κ per warp step (two m16n8k16)
  /// The block reduction's buffers: fp32 [kWarps][kRows][kMaxM] of products, then fp32
  /// [kWarps][kMaxM] of sums of squares (kRmsNorm).
  static constexpr int kSharedBytes = kWarps * (kRows + 1) * kMaxM * 4;
  static_assert(sizeof(TOut_) == 2 || sizeof(TOut_) == 4, "TOut is bf16 or fp32");
  static_assert(kRowTiles >= 1 && kRowTiles <= 8, "1..8 row tiles");
  static_assert(kWarps >= 1 && kWarps <= 32, "1..32 warps");
  static_assert(kUnroll >= 1 && kUnroll <= 16, "1..16 steps in flight");
  static_assert(kStages == 1 || kStages == 2, "one group in flight, or two (double-buffered)");
  static_assert(kSharedBytes <= 48 * 1024, "the reduction buffer must fit the default 48 KiB");
};

namespace gemv_detail {

/// 16 bytes of weights, read exactly once: not kept in L1, with a 256-byte L2 prefetch hint.
__device__ __forceinline__ uint4 load_weights16(const bf16 *p) {
#if defined(XLC_DEVICE_EMULATION)
  uint4 v;
  memcpy(&v, p, 16);
  return v;
#else
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];\n"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
#endif
}

/// Asks L2 for the line holding |p| (no register, no wait): the weights of a warp's first group,
/// before the dependency wait.
__device__ __forceinline__ void prefetch_weights_l2(const bf16 *p) {
#if !defined(XLC_DEVICE_EMULATION)
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
#else
  (void)p;
#endif
}

/// 16 bytes of activations (read-only during the kernel; every block reads them: cached in L1).
__device__ __forceinline__ uint4 load_activations16(const bf16 *p) {
#if defined(XLC_DEVICE_EMULATION)
  uint4 v;
  memcpy(&v, p, 16);
  return v;
#else
  return __ldg(reinterpret_cast<const uint4 *>(p));
#endif
}

/// |v| where |keep|, zeros elsewhere (a select, not a branch).
__device__ __forceinline__ uint4 keep_if(uint4 v, bool keep) {
  const uint32_t mask = keep ? 0xffffffffu : 0u;
  return make_uint4(v.x & mask, v.y & mask, v.z & mask, v.w & mask);
}

/// The 8 bf16 of a 16-byte vector as floats.
__device__ __forceinline__ void unpack8(const uint4 &v, float (&f)[8]) {
  const bf16 *h = reinterpret_cast<const bf16 *>(&v);
#pragma unroll
  for (int i = 0; i < 8; ++i)
    f[i] = to_float(h[i]);
}

/// silu(gate)·up of 8 bf16 pairs, each rounded to bf16 once: what swiglu.cuh stores.
__device__ __forceinline__ uint4 swiglu8(const uint4 &gate, const uint4 &up) {
  float g[8], u[8];
  unpack8(gate, g);
  unpack8(up, u);
  uint4 out;
  bf16 *h = reinterpret_cast<bf16 *>(&out);
#pragma unroll
  for (int i = 0; i < 8; ++i)
    h[i] = from_float<bf16>(silu(g[i]) * u[i]);
  return out;
}

/// Σ of the squares of 8 bf16, in order.
__device__ __forceinline__ float sum_squares8(const uint4 &v) {
  float f[8];
  unpack8(v, f);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 8; ++i)
    s += f[i] * f[i];
  return s;
}

/// The GEMM a block computes: the launch's first (D = A·Wᵀ ...) or its second (D2 = A·W2ᵀ ...).
struct Segment {
  const bf16 *w;
  const void *c;
  void *d;
  int64_t n;
  int64_t epilogue;
  bool cIsF32, dIsF32;
  int64_t partials; ///< where its split-K partials [grid.y, m, n] start in the partials buffer
  int64_t firstBlock; ///< its first block along grid.x
};

/// D[i, j] = v (+ bias[j] | + C[i, j]) rounded to D's type.
__device__ __forceinline__ void store_output(const Segment &s, int64_t i, int64_t j, float v) {
  const int64_t at = i * s.n + j;
  // (a row scale of kRmsNorm is already in v)
  if (s.epilogue == static_cast<int64_t>(GemvEpilogue::kBias)) {
    v += s.cIsF32 ? static_cast<const float *>(s.c)[j]
                  : to_float(static_cast<const bf16 *>(s.c)[j]);
  } else if (s.epilogue == static_cast<int64_t>(GemvEpilogue::kResidual)) {
    v += s.cIsF32 ? static_cast<const float *>(s.c)[at]
                  : to_float(static_cast<const bf16 *>(s.c)[at]);
  }
  if (s.dIsF32)
    static_cast<float *>(s.d)[at] = v;
  else
    static_cast<bf16 *>(s.d)[at] = from_float<bf16>(v);
}

} // namespace gemv_detail

template <class Config> __device__ void gemv(const GemvParams &p) {
  using TOut = typename Config::TOut;
  constexpr int kRowTiles = Config::kRowTiles, kWarps = Config::kWarps;
  constexpr int kUnroll = Config::kUnroll, kRows = Config::kRows, kMaxM = Config::kMaxM;
  constexpr int kStepK = Config::kStepK;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int g = lane / 4, q = lane % 4;
  const int64_t gridY = gridDim.y;
  const bool second = p.grid_x1 > 0 && blockIdx.x >= p.grid_x1;
  const gemv_detail::Segment seg =
      second ? gemv_detail::Segment{static_cast<const bf16 *>(p.w2), p.c2, p.d2, p.n2,
                                    p.epilogue2, p.c2_is_f32 != 0, p.d2_is_f32 != 0,
                                    gridY * p.m * p.n, p.grid_x1}
             : gemv_detail::Segment{static_cast<const bf16 *>(p.w), p.c, p.d, p.n, p.epilogue,
                                    p.c_is_f32 != 0, sizeof(TOut) == 4, 0, 0};
  const int64_t j0 = (static_cast<int64_t>(blockIdx.x) - seg.firstBlock) * kRows;
  const int64_t kBegin = static_cast<int64_t>(blockIdx.y) * p.k_split;
  const int64_t kEnd = kBegin + p.k_split < p.k ? kBegin + p.k_split : p.k;
  const int64_t steps = (kEnd - kBegin + kStepK - 1) / kStepK;

  // This lane's two rows of each row tile, and its row of A, at κ offset 8q. A row past n is
  // read as row 0 and an A row past m as row 0 of A: they only feed outputs that are never
  // stored (output j depends on W row j only, column i on A row i only).
  const bf16 *wRow[kRowTiles][2];
#pragma unroll
  for (int t = 0; t < kRowTiles; ++t)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t j = j0 + 16 * t + 8 * h + g;
      wRow[t][h] = seg.w + (j < seg.n ? j : 0) * p.k + 8 * q;
    }
  const bf16 *aRow = static_cast<const bf16 *>(p.a) + (g < p.m ? g : 0) * p.lda + 8 * q;

  float acc[kRowTiles][4];
#pragma unroll
  for (int t = 0; t < kRowTiles; ++t)
    acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;

  // The weights do not depend on the kernels before this one ("Programmatic dependent launch"
  // above): the lines of each warp's first group are requested before the dependency wait, so
  // the weight stream starts while the previous kernel finishes and the first loads hit L2.
  for (int u = 0; u < kUnroll; ++u) {
    const int64_t kappa = kBegin + (static_cast<int64_t>(warp) * kUnroll + u) * kStepK;
    if (kappa + 8 * q < kEnd)
#pragma unroll
      for (int t = 0; t < kRowTiles; ++t)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          gemv_detail::prefetch_weights_l2(wRow[t][h] + kappa);
  }
  grid_dependency_sync();

  // One group's operands in registers.
  struct Group {
    uint4 w[kUnroll][kRowTiles][2];
    uint4 x[kUnroll];
    uint4 up[kUnroll]; // kSwiGlu: the up values beside x's gate values
    bool inK[kUnroll];
  };
  const bool swiglu = p.prologue == static_cast<int64_t>(GemvPrologue::kSwiGlu);
  const bool rmsNorm = p.prologue == static_cast<int64_t>(GemvPrologue::kRmsNorm);
  float squares = 0.0f; // kRmsNorm: Σ A[g, κ]² over the κ this lane loads
  // Issues every load of group |group| (bytes in flight). The loads are unconditional -- a step
  // past the slice reads the row's first 8 elements of the slice (offset kBegin − 8q from this
  // lane's pointer, so row + kBegin: valid however short the slice is), and its values are
  // replaced by zeros in multiply() -- so that no branch or dependent instruction keeps the
  // compiler from issuing them all before the first product waits.
  auto load = [&](int64_t group, Group &g) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t s = group * kUnroll + u;
      const int64_t kappa = kBegin + s * kStepK;
      g.inK[u] = s < steps && kappa + 8 * q < kEnd; // kEnd − κ is a multiple of 8
      const int64_t at = g.inK[u] ? kappa : kBegin - 8 * q;
#pragma unroll
      for (int t = 0; t < kRowTiles; ++t)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          g.w[u][t][h] = gemv_detail::load_weights16(wRow[t][h] + at);
      g.x[u] = gemv_detail::load_activations16(aRow + at);
      if (swiglu)
        g.up[u] = gemv_detail::load_activations16(aRow + p.a_up_offset + at);
    }
  };
  auto multiply = [&](const Group &g) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const uint4 x = gemv_detail::keep_if(
          swiglu ? gemv_detail::swiglu8(g.x[u], g.up[u]) : g.x[u], g.inK[u]);
      if (rmsNorm)
        squares += gemv_detail::sum_squares8(x);
#pragma unroll
      for (int t = 0; t < kRowTiles; ++t) {
        const uint4 w0 = gemv_detail::keep_if(g.w[u][t][0], g.inK[u]);
        const uint4 w1 = gemv_detail::keep_if(g.w[u][t][1], g.inK[u]);
        const uint32_t lo[4] = {w0.x, w1.x, w0.y, w1.y};
        tc::mma_bf16(acc[t], lo, x.x, x.y);
        const uint32_t hi[4] = {w0.z, w1.z, w0.w, w1.w};
        tc::mma_bf16(acc[t], hi, x.z, x.w);
      }
    }
  };
  // Group γ is taken by warp γ mod kWarps.
  if constexpr (Config::kStages == 1) {
    // Load a group, multiply it: one group in flight at a time.
    for (int64_t group = warp; group * kUnroll < steps; group += kWarps) {
      Group g;
      load(group, g);
      multiply(g);
    }
  } else {
    // Double-buffered: the loads of the warp's next group are issued before the products of
    // the current one wait for theirs, so the warp always has one or two groups in flight.
    Group even, odd;
    int64_t group = warp;
    if (group * kUnroll < steps)
      load(group, even);
    while (group * kUnroll < steps) {
      const int64_t next = group + kWarps;
      const bool hasNext = next * kUnroll < steps;
      if (hasNext)
        load(next, odd);
      multiply(even);
      if (!hasNext)
        break;
      const int64_t after = next + kWarps;
      if (after * kUnroll < steps)
        load(after, even);
      multiply(odd);
      group = after;
    }
  }

  // (1) Sum over the block's warps, in warp order: red[warp][j − j0][i]; with kRmsNorm also
  // the sums of squares, redSq[warp][i] (lanes q = 0..3 of row g hold disjoint κ).
  float *red = reinterpret_cast<float *>(dynamic_smem());
  float *redSq = red + kWarps * kRows * kMaxM;
  if (rmsNorm) {
    squares += __shfl_xor_sync(0xffffffffu, squares, 1);
    squares += __shfl_xor_sync(0xffffffffu, squares, 2);
    if (q == 0)
      redSq[warp * kMaxM + g] = squares;
  }
#pragma unroll
  for (int t = 0; t < kRowTiles; ++t) {
    float *lower = red + (warp * kRows + 16 * t + g) * kMaxM + 2 * q;
    float *upper = lower + 8 * kMaxM;
    lower[0] = acc[t][0];
    lower[1] = acc[t][1];
    upper[0] = acc[t][2];
    upper[1] = acc[t][3];
  }
  __syncthreads();
  const bool split = gridDim.y > 1;
  float *partials = static_cast<float *>(p.partials);
  // kRmsNorm: the block's Σ A[i, κ]² over its slice, in warp order; the sums of squares of
  // split-K slices follow the products of both GEMMs in partials: [grid.y, m].
  // (every block of a slice writes the same sums: the slice of A is the same)
  float *squaresOut = partials + gridY * p.m * (p.n + (p.grid_x1 > 0 ? p.n2 : 0));
  __shared__ float rowScale[kMaxM];
  if (rmsNorm && threadIdx.x < p.m) {
    float sum = 0.0f;
    for (int v = 0; v < kWarps; ++v)
      sum += redSq[v * kMaxM + threadIdx.x];
    if (split)
      squaresOut[static_cast<int64_t>(blockIdx.y) * p.m + threadIdx.x] = sum;
    else
      rowScale[threadIdx.x] = rsqrtf(sum / static_cast<float>(p.k) + static_cast<float>(p.eps));
  }
  if (rmsNorm && !split)
    __syncthreads();
  // Output r + kRows·i of the block: consecutive threads take consecutive j (coalesced stores).
  for (int idx = threadIdx.x; idx < kRows * kMaxM; idx += Config::kThreads) {
    const int r = idx % kRows, i = idx / kRows;
    const int64_t j = j0 + r;
    if (i >= p.m || j >= seg.n)
      continue;
    float sum = 0.0f;
    for (int v = 0; v < kWarps; ++v)
      sum += red[(v * kRows + r) * kMaxM + i];
    if (split)
      partials[seg.partials + (static_cast<int64_t>(blockIdx.y) * p.m + i) * seg.n + j] = sum;
    else
      gemv_detail::store_output(seg, i, j, rmsNorm ? sum * rowScale[i] : sum);
  }
  if (!split)
    return;

  // (2) The last block of this column of the grid sums the S partials in order y = 0, 1, ...
  __shared__ int isLast;
  __threadfence(); // this block's partials are visible device-wide before it is counted
  __syncthreads();
  unsigned long long *counter = static_cast<unsigned long long *>(p.counters) + blockIdx.x;
  if (threadIdx.x == 0)
    isLast = atomicAdd(counter, 1ull) == gridDim.y - 1;
  __syncthreads();
  if (!isLast)
    return;
  __threadfence(); // order the reads below after the counter that saw every block
  if (rmsNorm) {
    if (threadIdx.x < p.m) {
      float sum = 0.0f;
      for (unsigned y = 0; y < gridDim.y; ++y)
        sum += load_partial(squaresOut + static_cast<int64_t>(y) * p.m + threadIdx.x);
      rowScale[threadIdx.x] = rsqrtf(sum / static_cast<float>(p.k) + static_cast<float>(p.eps));
    }
    __syncthreads();
  }
  for (int idx = threadIdx.x; idx < kRows * kMaxM; idx += Config::kThreads) {
    const int r = idx % kRows, i = idx / kRows;
    const int64_t j = j0 + r;
    if (i >= p.m || j >= seg.n)
      continue;
    float sum = 0.0f;
    for (unsigned y = 0; y < gridDim.y; ++y)
      sum += load_partial(partials + seg.partials +
                                       (static_cast<int64_t>(y) * p.m + i) * seg.n + j);
    gemv_detail::store_output(seg, i, j, rmsNorm ? sum * rowScale[i] : sum);
  }
  if (threadIdx.x == 0)
    *counter = 0; // ready for the next launch (stream order)
}

} // namespace xlc::device

#endif // XLC_DEVICE_GEMV_CUH
