//===- xlc_device_emulation.h - Host SIMT emulator for device code -*- C++ -*-===//
//
// Lets the xlc device headers (runtime/device/*.cuh) compile as host C++ and run on the CPU, so
// CI can check every kernel's logic on a machine without a GPU. common.cuh includes this file
// instead of the CUDA headers when XLC_DEVICE_EMULATION is defined.
//
// Model: a launch runs its blocks one after another; the threads of a block are real host
// threads (std::thread), so __syncthreads is a std::barrier over the block, a warp shuffle is an
// exchange through a per-warp slot array between two warp barriers, and __syncwarp is the warp
// barrier. __shared__ variables become function-local statics (one instance per kernel
// instantiation, shared by the block's threads; blocks never overlap). Dynamic shared memory is a
// 128-byte aligned buffer filled with NaN bytes before every block, so reading what no thread
// wrote shows up in the results.
//
// nvcuda::wmma is functional, not bit-exact in layout: every lane holds the whole 16x16 tile of a
// fragment and computes the whole product (so `x[i]` element-wise code that is uniform over the
// fragment, like a scale of an accumulator, behaves as on the GPU). load/store check the CUDA
// contract (256-bit aligned pointer, ldm a multiple of 16 bytes) and abort on a violation;
// store_matrix_sync is performed by lane 0 only, so a missing __syncwarp/__syncthreads before other
// threads read the result is a race here as on the GPU.
//
// The register-level tensor-core primitives of tensor_core.cuh (ldmatrix, mma.sync) run here
// bit-exact in layout through warpGather; cp.async is a synchronous copy.
//
// Limits: full warps only (block sizes that are multiples of 32, full-mask shuffles and
// ballots), no clusters. Timing means nothing.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_GPU_HARNESS_XLC_DEVICE_EMULATION_H
#define XLC_TEST_GPU_HARNESS_XLC_DEVICE_EMULATION_H

// CUDA execution-space keywords, defined before the CUDA headers see them (host_defines.h only
// defines these when they are not defined yet).
#define __global__
#define __device__
#define __host__
#define __constant__
#define __shared__ static

#include <cuda_bf16.h>
#include <vector_functions.h>
#include <vector_types.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>

namespace xlc::emu {

/// Per-thread view of the launch (set by launch(); used by the intrinsics below).
struct ThreadContext {
  struct BlockState *block = nullptr;
  unsigned linear = 0; ///< linear thread index in the block
};
ThreadContext &context();

unsigned char *dynamicSharedMemory();
void syncThreads();
void syncWarp();
/// Publishes |bits| as this lane's value and returns lane |srcLane|'s value (whole warp).
uint64_t warpExchange(uint64_t bits, unsigned srcLane);
/// Publishes |bytes| (≤ 64) at |mine| as this lane's value and copies all 32 lanes' values, in
/// lane order, to |all| (32·|bytes|). Whole warp; the register exchange behind ldmatrix and mma.
void warpGather(const void *mine, size_t bytes, void *all);

/// Runs |body| as a kernel over |grid| × |block| with |sharedBytes| of dynamic shared memory.
/// Blocks run one after another; the block's threads run concurrently.
void launch(dim3 grid, dim3 block, size_t sharedBytes, const std::function<void()> &body);

[[noreturn]] void contractViolation(const char *what);

} // namespace xlc::emu

// Built-in variables.
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

inline void __syncthreads() { xlc::emu::syncThreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  if (mask != 0xffffffffu)
    xlc::emu::contractViolation("__syncwarp with a partial mask");
  xlc::emu::syncWarp();
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

namespace xlc::emu::detail {
template <class T> T shuffle(unsigned mask, T value, unsigned srcLane) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a large type");
  if (mask != 0xffffffffu)
    contractViolation("warp shuffle with a partial mask");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = warpExchange(bits, srcLane);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}
inline unsigned lane() { return context().linear % 32; }
} // namespace xlc::emu::detail

template <class T> T __shfl_sync(unsigned mask, T value, int srcLane, int width = 32) {
  const unsigned lane = xlc::emu::detail::lane();
  const unsigned base = lane / width * width;
  return xlc::emu::detail::shuffle(mask, value, base + static_cast<unsigned>(srcLane) % width);
}
template <class T> T __shfl_xor_sync(unsigned mask, T value, int laneMask, int width = 32) {
  const unsigned lane = xlc::emu::detail::lane();
  unsigned src = lane ^ static_cast<unsigned>(laneMask);
  if (src / width != lane / width)
    src = lane;
  return xlc::emu::detail::shuffle(mask, value, src);
}
template <class T> T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  const unsigned lane = xlc::emu::detail::lane();
  const unsigned src = lane % width >= delta ? lane - delta : lane;
  return xlc::emu::detail::shuffle(mask, value, src);
}
template <class T> T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  const unsigned lane = xlc::emu::detail::lane();
  const unsigned src = lane % width + delta < static_cast<unsigned>(width) ? lane + delta : lane;
  return xlc::emu::detail::shuffle(mask, value, src);
}

/// The warp's predicates as a bit mask (bit l = lane l), in every lane.
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  if (mask != 0xffffffffu)
    xlc::emu::contractViolation("__ballot_sync with a partial mask");
  const unsigned char mine = predicate != 0;
  unsigned char all[32];
  xlc::emu::warpGather(&mine, 1, all);
  unsigned bits = 0;
  for (unsigned l = 0; l < 32; ++l)
    bits |= static_cast<unsigned>(all[l]) << l;
  return bits;
}
/// 1 + the index of the lowest set bit; 0 for 0.
inline int __ffs(unsigned x) { return x == 0 ? 0 : __builtin_ctz(x) + 1; }

inline unsigned atomicAdd(unsigned *address, unsigned value) {
  return std::atomic_ref<unsigned>(*address).fetch_add(value);
}
inline unsigned long long atomicXor(unsigned long long *address, unsigned long long value) {
  return std::atomic_ref<unsigned long long>(*address).fetch_xor(value);
}
inline unsigned long long atomicAdd(unsigned long long *address, unsigned long long value) {
  return std::atomic_ref<unsigned long long>(*address).fetch_add(value);
}
inline unsigned long long atomicCAS(unsigned long long *address, unsigned long long compare,
                                    unsigned long long value) {
  std::atomic_ref<unsigned long long>(*address).compare_exchange_strong(compare, value);
  return compare;
}
inline float atomicAdd(float *address, float value) {
  std::atomic_ref<float> ref(*address);
  float old = ref.load();
  while (!ref.compare_exchange_weak(old, old + value)) {
  }
  return old;
}

// Device math functions that glibc does not provide.
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
template <class T> inline T min(T a, T b) { return b < a ? b : a; }
template <class T> inline T max(T a, T b) { return a < b ? b : a; }

//===--------------------------------------------------------------------===//
// nvcuda::wmma (the subset the device library uses), functional emulation
//===--------------------------------------------------------------------===//
namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

/// The whole tile, row-major over (rows, cols): A is M×K, B is K×N, the accumulator M×N.
template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
  static constexpr int kRows = std::is_same_v<Use, matrix_b> ? K : M;
  static constexpr int kCols = std::is_same_v<Use, matrix_a> ? K : N;
  static constexpr int num_elements = kRows * kCols;
  T x[num_elements];
};

namespace detail {
inline void checkPointer(const void *ptr, unsigned ldm, size_t elementBytes) {
  if (reinterpret_cast<uintptr_t>(ptr) % 32 != 0)
    xlc::emu::contractViolation("wmma load/store pointer is not 256-bit aligned");
  if ((ldm * elementBytes) % 16 != 0)
    xlc::emu::contractViolation("wmma ldm is not a multiple of 16 bytes");
}
inline float toFloat(float x) { return x; }
inline float toFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
} // namespace detail

template <class Use, int M, int N, int K, class T, class Layout>
void fill_fragment(fragment<Use, M, N, K, T, Layout> &frag, T value) {
  for (int i = 0; i < frag.num_elements; ++i)
    frag.x[i] = value;
}

/// matrix_a / matrix_b with a compile-time layout.
template <class Use, int M, int N, int K, class T, class Layout>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout> &frag, const T *ptr, unsigned ldm) {
  static_assert(!std::is_same_v<Use, accumulator>, "accumulators take a layout_t argument");
  detail::checkPointer(ptr, ldm, sizeof(T));
  using F = fragment<Use, M, N, K, T, Layout>;
  for (int r = 0; r < F::kRows; ++r)
    for (int c = 0; c < F::kCols; ++c)
      frag.x[r * F::kCols + c] =
          std::is_same_v<Layout, row_major> ? ptr[r * ldm + c] : ptr[c * ldm + r];
}

template <int M, int N, int K, class T>
void load_matrix_sync(fragment<accumulator, M, N, K, T> &frag, const T *ptr, unsigned ldm,
                      layout_t layout) {
  detail::checkPointer(ptr, ldm, sizeof(T));
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c)
      frag.x[r * N + c] = layout == mem_row_major ? ptr[r * ldm + c] : ptr[c * ldm + r];
}

template <int M, int N, int K, class T>
void store_matrix_sync(T *ptr, const fragment<accumulator, M, N, K, T> &frag, unsigned ldm,
                       layout_t layout) {
  detail::checkPointer(ptr, ldm, sizeof(T));
  if (xlc::emu::detail::lane() != 0)
    return;
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c)
      (layout == mem_row_major ? ptr[r * ldm + c] : ptr[c * ldm + r]) = frag.x[r * N + c];
}

/// d = a·b + c with fp32 accumulation (bf16 products are exact in fp32). The emulator's hot loop
/// (every lane computes the whole tile): left uninstrumented so sanitizer builds stay fast; it
/// only touches the fragments passed in.
template <int M, int N, int K, class TAB, class LA, class LB>
__attribute__((no_sanitize("address", "undefined"))) void mma_sync(fragment<accumulator, M, N, K, float> &d,
              const fragment<matrix_a, M, N, K, TAB, LA> &a,
              const fragment<matrix_b, M, N, K, TAB, LB> &b,
              const fragment<accumulator, M, N, K, float> &c) {
  float out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float sum = c.x[i * N + j];
      for (int k = 0; k < K; ++k)
        sum += detail::toFloat(a.x[i * K + k]) * detail::toFloat(b.x[k * N + j]);
      out[i * N + j] = sum;
    }
  for (int i = 0; i < M * N; ++i)
    d.x[i] = out[i];
}

} // namespace nvcuda::wmma

#endif // XLC_TEST_GPU_HARNESS_XLC_DEVICE_EMULATION_H
