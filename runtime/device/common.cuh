//===- common.cuh - Shared helpers of the xlc device library ------*- CUDA -*-===//
//
// Everything the kernel families share: fixed-width integer types under NVRTC (which has no libc
// headers), bf16/fp32 conversions, 16-byte vector loads and stores, warp and block reductions, a
// one-warp scan over a shared-memory array, the gate math of the mLSTM cell (soft-cap,
// log-sigmoid), the dynamic shared-memory pointer, and the enums that appear in configs.
//
// Conventions of the whole library (docs/kernels.md says the same for the compiler's side):
//  * A family exposes `struct <Family>Params` whose members are all 8 bytes (device pointers,
//    int64_t, double for float scalars), a `template <...> struct <Family>Config` of compile-time
//    sizes with `kThreads` (block size) and `kSharedBytes` (dynamic shared memory), and
//    `template <class Config> __device__ void <family>(const <Family>Params &)`.
//  * Activations are row-major [rows = B·S, features], token-major. A strided input is a view
//    (base, column offset, row stride), all in elements: element (r, c) is
//    base[r·stride + offset + c]. Outputs are contiguous unless a family says otherwise.
//  * fp32 for every reduction, every gate and every accumulator; T (bf16 or fp32) only at the
//    boundaries.
//
// The headers compile three ways: under NVRTC (the product), under nvcc, and as host C++ with
// XLC_DEVICE_EMULATION defined, where a SIMT emulator supplies threadIdx, __syncthreads, warp
// shuffles and a functional nvcuda::wmma (test/gpu/harness/SimtEmulator.h). The emulator lets CI
// run every kernel's logic on the CPU; nothing here depends on it beyond the include below.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_COMMON_CUH
#define XLC_DEVICE_COMMON_CUH

#if defined(XLC_DEVICE_EMULATION)
#include "xlc_device_emulation.h"
#else
#include <cuda_bf16.h>
#include <mma.h>
#if defined(__CUDACC_RTC__)
// NVRTC ships no <cstdint>. These are the LP64 types of the device ABI (8-byte long long).
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
typedef unsigned long long uintptr_t;
#else
#include <cstdint>
#endif
#endif

namespace xlc::device {

using bf16 = __nv_bfloat16;
/// Whether T is bf16 (a 2-byte f16 is not: kernels that hand bytes to bf16 tensor cores say so).
template <class T> constexpr bool is_bf16 = false;
template <> constexpr bool is_bf16<bf16> = true;

/// +∞ as a constant expression (INFINITY is undefined under NVRTC, which has no <cmath>).
constexpr float kInfinity = __builtin_bit_cast(float, 0x7f800000u);

/// Input-gate kind of the mLSTM cell (runtime/reference/MlstmCell.h): kExp uses ĩ as is
/// (exponential gating), kSigmoid replaces ĩ by logσ(ĩ) and runs the same stabilised equations.
enum class InputGate : int { kExp = 0, kSigmoid = 1 };

/// Normaliser of the readout: kMaxAbs is h = num / (max(|den|, e^{−m}) + eps); kNone returns the
/// un-normalised readout in the un-stabilised scale, h = e^{m}·num.
enum class Normalizer : int { kMaxAbs = 0, kNone = 1 };

__host__ __device__ constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }
__host__ __device__ constexpr int round_up(int a, int b) { return ceil_div(a, b) * b; }
__host__ __device__ constexpr int max_int(int a, int b) { return a > b ? a : b; }
__host__ __device__ constexpr bool is_pow2(int x) { return x > 0 && (x & (x - 1)) == 0; }

//===--------------------------------------------------------------------===//
// Element types
//===--------------------------------------------------------------------===//

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }

template <class T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_float<bf16>(float x) {
  return __float2bfloat16_rn(x);
}

/// Elements of T in one 16-byte vector: 8 for bf16, 4 for fp32.
template <class T> constexpr int kVec16 = 16 / static_cast<int>(sizeof(T));

/// True when a strided view (base, offset, stride) can be read with 16-byte vectors: the base
/// address, the column offset and the row stride (in bytes) are all multiples of 16.
template <class T>
__device__ __forceinline__ bool view_aligned16(const void *base, int64_t offset, int64_t stride) {
  const uint64_t bits = reinterpret_cast<uint64_t>(base) |
                        static_cast<uint64_t>(offset * static_cast<int64_t>(sizeof(T))) |
                        static_cast<uint64_t>(stride * static_cast<int64_t>(sizeof(T)));
  return (bits & 15u) == 0;
}

/// Loads N consecutive elements of T starting at p into fp32 registers. kVector selects 16-byte
/// loads (p must then be 16-byte aligned and N·sizeof(T) a multiple of 16); otherwise scalar.
template <int N, bool kVector, class T>
__device__ __forceinline__ void load_floats(const T *p, float (&out)[N]) {
  if constexpr (kVector) {
    static_assert((N * sizeof(T)) % 16 == 0, "vector load of a partial 16-byte group");
    constexpr int kChunks = static_cast<int>(N * sizeof(T) / 16);
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const uint4 raw = reinterpret_cast<const uint4 *>(p)[c];
      T e[kVec16<T>];
      memcpy(e, &raw, 16); // not a pointer cast: that would break strict aliasing
#pragma unroll
      for (int i = 0; i < kVec16<T>; ++i)
        out[c * kVec16<T> + i] = to_float(e[i]);
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i)
      out[i] = to_float(p[i]);
  }
}

/// Stores N fp32 values as T at p (16-byte stores when kVector; same contract as load_floats).
template <int N, bool kVector, class T>
__device__ __forceinline__ void store_floats(T *p, const float (&in)[N]) {
  if constexpr (kVector) {
    static_assert((N * sizeof(T)) % 16 == 0, "vector store of a partial 16-byte group");
    constexpr int kChunks = static_cast<int>(N * sizeof(T) / 16);
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      T e[kVec16<T>];
#pragma unroll
      for (int i = 0; i < kVec16<T>; ++i)
        e[i] = from_float<T>(in[c * kVec16<T> + i]);
      uint4 raw;
      memcpy(&raw, e, 16);
      reinterpret_cast<uint4 *>(p)[c] = raw;
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i)
      p[i] = from_float<T>(in[i]);
  }
}

//===--------------------------------------------------------------------===//
// Reductions
//===--------------------------------------------------------------------===//

/// The handshake of a cross-block reduction: every block calls it once, with all its threads,
/// after writing its partial results to global memory. It returns true in exactly one block,
/// the last to arrive (an atomic counter), after a fence, so that every other block's partials
/// are visible there (read them with load_partial). That block must set *counter back to 0, so
/// that a completed launch leaves it zero for the next. |flag| is a __shared__ bool of the caller.
__device__ __forceinline__ bool arrive_last(int64_t *counter, bool &flag) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    const unsigned long long prev =
        atomicAdd(reinterpret_cast<unsigned long long *>(counter), 1ull);
    flag = prev == static_cast<unsigned long long>(gridDim.x) * gridDim.y * gridDim.z - 1;
  }
  __syncthreads();
  if (flag)
    __threadfence();
  return flag;
}

/// A partial sum another block wrote during this launch (after its __threadfence and a counter
/// that says it is done): read from L2 (ld.global.cg), never from a possibly stale L1 line.
__device__ __forceinline__ float load_partial(const float *p) {
#if defined(XLC_DEVICE_EMULATION)
  return *static_cast<const volatile float *>(p);
#else
  return __ldcg(p);
#endif
}

/// The last block's part of a cross-block column sum (after arrive_last returned true):
/// out[c] += Σ_b partial[b, c] over the grid's blocks in block order, for c < cols, then the
/// counter back to zero. The fixed order makes the sum bit-identical from run to run.
template <int kThreads>
__device__ __forceinline__ void add_partials_in_order(float *out, const float *partial, int cols,
                                                      int64_t *counter) {
  for (int c = threadIdx.x; c < cols; c += kThreads) {
    float sum = 0.0f;
    for (unsigned b = 0; b < gridDim.x; ++b)
      sum += load_partial(partial + static_cast<int64_t>(b) * cols + c);
    out[c] += sum;
  }
  if (threadIdx.x == 0)
    *counter = 0;
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1)
    x += __shfl_xor_sync(0xffffffffu, x, mask);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1)
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, mask));
  return x;
}

/// Sum over groups of kWidth consecutive lanes (kWidth a power of two ≤ 32); every lane of a
/// group gets the group's sum.
template <int kWidth> __device__ __forceinline__ float group_sum(float x) {
  static_assert(is_pow2(kWidth) && kWidth <= 32, "group width must be a power of two <= 32");
#pragma unroll
  for (int mask = kWidth / 2; mask > 0; mask >>= 1)
    x += __shfl_xor_sync(0xffffffffu, x, mask);
  return x;
}

/// Block-wide sum for a block of kThreads (a multiple of 32). |scratch| is ≥ 32 floats of shared
/// memory; every thread gets the total. Contains two __syncthreads: call it uniformly.
template <int kThreads> __device__ __forceinline__ float block_sum(float x, float *scratch) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "block size must be whole warps");
  constexpr int kWarps = kThreads / 32;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  x = warp_sum(x);
  if (lane == 0)
    scratch[warp] = x;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w)
    total += scratch[w];
  __syncthreads(); // scratch may be reused right after
  return total;
}

/// One warp scans data[0, n) in shared memory in place, n ≤ 32·kPerLane: inclusive prefix
/// (kReverse = false: data[i] = op(data[0..i])) or suffix (kReverse = true:
/// data[i] = op(data[i..n−1])) under op = sum (kMax = false) or max (kMax = true). Each lane scans
/// kPerLane consecutive elements sequentially, then the lane totals are combined by a shuffle
/// scan. All 32 lanes of the calling warp must call it.
template <int kPerLane, bool kMax, bool kReverse>
__device__ __forceinline__ void warp_scan_inplace(float *data, int n) {
  const int lane = threadIdx.x % 32;
  const float identity = kMax ? -kInfinity : 0.0f;
  auto op = [](float a, float b) { return kMax ? fmaxf(a, b) : a + b; };
  // Position p in scan order maps to index kReverse ? n−1−p : p.
  auto index = [n](int p) { return kReverse ? n - 1 - p : p; };
  float local[kPerLane];
  float running = identity;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int p = lane * kPerLane + i;
    running = op(running, p < n ? data[index(p)] : identity);
    local[i] = running;
  }
  // Inclusive scan of the lane totals, then shift by one lane for the exclusive offset.
  float total = running;
#pragma unroll
  for (int delta = 1; delta < 32; delta <<= 1) {
    const float other = __shfl_up_sync(0xffffffffu, total, delta);
    if (lane >= delta)
      total = op(total, other);
  }
  float offset = __shfl_up_sync(0xffffffffu, total, 1);
  if (lane == 0)
    offset = identity;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int p = lane * kPerLane + i;
    if (p < n)
      data[index(p)] = op(offset, local[i]);
  }
  __syncwarp();
}

//===--------------------------------------------------------------------===//
// Gate math (fp32; runtime/reference/BlockOps.h has the float64 definitions)
//===--------------------------------------------------------------------===//

/// cap·tanh(x/cap); cap ≤ 0 means no cap.
__device__ __forceinline__ float soft_cap(float x, float cap) {
  return cap > 0.0f ? cap * tanhf(x / cap) : x;
}

/// logσ(x) without overflow: x ≥ 0: −log1p(e^{−x}); x < 0: x − log1p(e^{x}).
__device__ __forceinline__ float log_sigmoid(float x) {
  return x >= 0.0f ? -log1pf(expf(-x)) : x - log1pf(expf(x));
}

/// σ(x) without overflow.
__device__ __forceinline__ float sigmoid(float x) {
  if (x >= 0.0f)
    return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}

/// x·σ(x).
__device__ __forceinline__ float silu(float x) { return x * sigmoid(x); }

//===--------------------------------------------------------------------===//
// Programmatic dependent launch
//===--------------------------------------------------------------------===//

/// The first statement of every xlc kernel entry point. The runtime may launch a kernel with
/// programmatic stream serialization (PDL, sm_90): the kernel can then be scheduled while the
/// previous kernel of its stream is still finishing, so that its launch and block start-up hide
/// behind that kernel's last wave. `griddepcontrol.wait` blocks until every grid this one
/// depends on has completed and its memory operations are visible, so no load or store of the
/// kernel can race with its predecessor (nor a store with a predecessor's load).
/// `griddepcontrol.launch_dependents` lets the stream's next kernel start launching once every
/// block of this grid has executed it (or exited); that kernel waits the same way. Launched
/// without the attribute, both instructions do nothing.
__device__ __forceinline__ void grid_dependency_sync() {
#if !defined(XLC_DEVICE_EMULATION)
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

//===--------------------------------------------------------------------===//
// Shared memory
//===--------------------------------------------------------------------===//

/// The block's dynamic shared memory (Config::kSharedBytes bytes, 128-byte aligned).
__device__ __forceinline__ unsigned char *dynamic_smem() {
#if defined(XLC_DEVICE_EMULATION)
  return ::xlc::emu::dynamicSharedMemory();
#else
  extern __shared__ __align__(128) unsigned char xlc_dynamic_smem[];
  return xlc_dynamic_smem;
#endif
}

/// Bytes of an array of n T, rounded up to 128 so that consecutive regions stay 128-byte aligned
/// (wmma needs 32-byte aligned tile pointers; 128 keeps every region on its own cache line).
template <class T> __host__ __device__ constexpr int smem_bytes(int n) {
  return round_up(n * static_cast<int>(sizeof(T)), 128);
}

/// Copies a [kRows × kCols] tile of a strided global matrix into shared memory as bf16 with row
/// pitch |ld| elements, multiplying row r by rowScale[r] (if given) and writing zeros outside the
/// |rows| × |cols| valid region (padding rows of a partial chunk, padding columns of a head
/// narrower than a tensor-core tile). Source element (r, c) is src[r·stride + c]. With |vector|
/// the valid part is read in 16-byte vectors (src, stride aligned as view_aligned16 checks);
/// groups that straddle the valid edge fall back to scalar loads. kCols % 8 == 0, ld % 8 == 0.
template <int kRows, int kCols, int kThreads, class TSrc>
__device__ __forceinline__ void load_tile_bf16(bf16 *dst, int ld, const TSrc *src, int64_t stride,
                                               int rows, int cols, const float *rowScale,
                                               bool vector) {
  static_assert(kCols % 8 == 0, "tile width must be a multiple of 8");
  constexpr int kGroups = kCols / 8;
  for (int idx = threadIdx.x; idx < kRows * kGroups; idx += kThreads) {
    const int r = idx / kGroups, c = (idx % kGroups) * 8;
    float v[8];
    if (r < rows && c + 8 <= cols && vector) {
      load_floats<8, true>(src + r * stride + c, v);
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i)
        v[i] = (r < rows && c + i < cols) ? to_float(src[r * stride + c + i]) : 0.0f;
    }
    if (rowScale != nullptr && r < rows) {
      const float s = rowScale[r];
#pragma unroll
      for (int i = 0; i < 8; ++i)
        v[i] *= s;
    }
    store_floats<8, true>(dst + r * ld + c, v);
  }
}

/// Copies a [kRows × kCols] tile of a row-major global matrix of TSrc (row stride |stride|
/// elements) into fp32 shared memory with row pitch |ld|, zero outside rows × cols. Groups of 4
/// elements per thread: with |vector| and an fp32 source a full valid group is one float4 load
/// (src and stride 16-byte aligned); bf16 sources and edge groups use scalar loads.
template <int kRows, int kCols, int kThreads, class TSrc>
__device__ __forceinline__ void load_tile_f32(float *dst, int ld, const TSrc *src, int64_t stride,
                                              int rows, int cols, bool vector) {
  static_assert(kCols % 4 == 0, "tile width must be a multiple of 4");
  constexpr int kGroups = kCols / 4;
  for (int idx = threadIdx.x; idx < kRows * kGroups; idx += kThreads) {
    const int r = idx / kGroups, c = (idx % kGroups) * 4;
    float v[4];
    if constexpr (sizeof(TSrc) == 4) {
      if (r < rows && c + 4 <= cols && vector) {
        load_floats<4, true>(src + r * stride + c, v);
      } else {
#pragma unroll
        for (int i = 0; i < 4; ++i)
          v[i] = (r < rows && c + i < cols) ? to_float(src[r * stride + c + i]) : 0.0f;
      }
    } else {
#pragma unroll
      for (int i = 0; i < 4; ++i)
        v[i] = (r < rows && c + i < cols) ? to_float(src[r * stride + c + i]) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
      dst[r * ld + c + i] = v[i];
  }
}

/// Copies the valid rows × cols part of an fp32 shared-memory tile (row pitch |ld|) to a
/// row-major global matrix of TDst (row stride |stride| elements), converting to TDst. With
/// |vector| and TDst = fp32, full groups of 4 are written as float4 (dst and stride 16-byte
/// aligned); otherwise scalar stores.
template <int kRows, int kCols, int kThreads, class TDst>
__device__ __forceinline__ void store_tile_f32(TDst *dst, int64_t stride, const float *src, int ld,
                                               int rows, int cols, bool vector) {
  static_assert(kCols % 4 == 0, "tile width must be a multiple of 4");
  constexpr int kGroups = kCols / 4;
  for (int idx = threadIdx.x; idx < kRows * kGroups; idx += kThreads) {
    const int r = idx / kGroups, c = (idx % kGroups) * 4;
    if (r >= rows || c >= cols)
      continue;
    if constexpr (sizeof(TDst) == 4) {
      if (c + 4 <= cols && vector) {
        const float v[4] = {src[r * ld + c], src[r * ld + c + 1], src[r * ld + c + 2],
                            src[r * ld + c + 3]};
        store_floats<4, true>(dst + r * stride + c, v);
        continue;
      }
    }
    for (int i = 0; i < 4 && c + i < cols; ++i)
      dst[r * stride + c + i] = from_float<TDst>(src[r * ld + c + i]);
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_COMMON_CUH
