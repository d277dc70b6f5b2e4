//===- tensor_core.cuh - Warp-level tensor-core and async-copy primitives -*- CUDA -*-===//
//
// The register-level building blocks of the chunkwise kernels: `ldmatrix` (shared memory →
// fragment registers, optionally transposed), `mma.sync.m16n8k16` (bf16 × bf16 → fp32) and
// `cp.async` (global → shared without a register round trip, zero-filling what is out of range).
// Unlike nvcuda::wmma the fragment layouts are fixed by the PTX ISA, so a kernel can apply
// per-row and per-column factors (gates, stabilisers, causal masks) to accumulators in registers
// and turn an fp32 accumulator straight into the A operand of the next product.
//
// ---- Fragment layouts of mma.m16n8k16 (PTX ISA, "Matrix fragments for mma.m16n8k16") ----------
// Lane l = 4·g + q (g = l / 4 ∈ [0, 8), q = l % 4). Each 32-bit register holds two bf16 with
// the lower column / lower k in the low half.
//   A (16 × 16, m × k): a[0] = A[g][2q, 2q+1]     a[1] = A[g+8][2q, 2q+1]
//                       a[2] = A[g][2q+8, 2q+9]   a[3] = A[g+8][2q+8, 2q+9]
//   B (16 × 8,  k × n): b[0] = B[2q, 2q+1][g]     b[1] = B[2q+8, 2q+9][g]
//   C (16 × 8,  fp32):  c[0], c[1] = C[g][2q, 2q+1]   c[2], c[3] = C[g+8][2q, 2q+1]
// So the accumulators of two adjacent n8 tiles (columns 16j .. 16j+15) are, rounded to bf16,
// exactly the A fragment of k-step j of a following product (the FlashAttention-2 trick).
//
// ---- ldmatrix.x4 ----------------------------------------------------------------------------
// Four 8 × 8 matrices of 16-bit elements; lanes 8i .. 8i+7 give the row addresses (16 contiguous
// bytes each, 16-byte aligned) of matrix i. Register i of lane l receives row g, elements
// 2q, 2q+1 of matrix i; with .trans it receives rows 2q, 2q+1 of column g. The helpers below
// compute the lane addresses for the three operand shapes the kernels use.
//
// Under XLC_DEVICE_EMULATION the same functions run on the SIMT emulator: ldmatrix and mma
// exchange registers through a warp-wide gather, cp.async is a synchronous copy.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_TENSOR_CORE_CUH
#define XLC_DEVICE_TENSOR_CORE_CUH

#include "xlc/device/common.cuh"

namespace xlc::device::tc {

/// Two fp32 values rounded to bf16 and packed as one register (low half = |lo|).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const bf16 l = __float2bfloat16_rn(lo), h = __float2bfloat16_rn(hi);
  uint16_t lb, hb;
  memcpy(&lb, &l, 2);
  memcpy(&hb, &h, 2);
  return static_cast<uint32_t>(lb) | (static_cast<uint32_t>(hb) << 16);
}

/// The two bf16 of a packed register as fp32 (low half first).
__device__ __forceinline__ void unpack_bf16(uint32_t r, float &lo, float &hi) {
  const uint16_t lb = static_cast<uint16_t>(r & 0xffffu), hb = static_cast<uint16_t>(r >> 16);
  bf16 l, h;
  memcpy(&l, &lb, 2);
  memcpy(&h, &hb, 2);
  lo = __bfloat162float(l);
  hi = __bfloat162float(h);
}

#if defined(XLC_DEVICE_EMULATION)
namespace emu_detail {
inline unsigned lane() { return ::xlc::emu::detail::lane(); }
/// The 16-bit element |e| (0 or 1) of a packed register.
inline uint16_t half(uint32_t r, int e) { return static_cast<uint16_t>(e ? r >> 16 : r & 0xffffu); }
inline float bf16Bits(uint16_t bits) {
  const uint32_t f = static_cast<uint32_t>(bits) << 16;
  float out;
  std::memcpy(&out, &f, 4);
  return out;
}
} // namespace emu_detail
#endif

/// ldmatrix.x4 (kTrans: .trans) from the row address |row| of this lane.
template <bool kTrans>
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16 *row) {
#if defined(XLC_DEVICE_EMULATION)
  const uintptr_t mine = reinterpret_cast<uintptr_t>(row);
  if (mine % 16 != 0)
    ::xlc::emu::contractViolation("ldmatrix row address is not 16-byte aligned");
  uintptr_t all[32];
  ::xlc::emu::warpGather(&mine, sizeof(mine), all);
  const unsigned l = emu_detail::lane(), g = l / 4, q = l % 4;
  for (int i = 0; i < 4; ++i) {
    uint16_t lo, hi;
    if (!kTrans) {
      const uint16_t *p = reinterpret_cast<const uint16_t *>(all[8 * i + g]);
      lo = p[2 * q];
      hi = p[2 * q + 1];
    } else {
      lo = reinterpret_cast<const uint16_t *>(all[8 * i + 2 * q])[g];
      hi = reinterpret_cast<const uint16_t *>(all[8 * i + 2 * q + 1])[g];
    }
    r[i] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
  }
#else
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  if constexpr (kTrans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
#endif
}

/// The A fragment of rows [m0, m0+16) × columns [k0, k0+16) of a row-major bf16 matrix in shared
/// memory (pitch |ld| elements, a multiple of 8).
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const bf16 *base, int ld, int m0, int k0) {
  const int l = threadIdx.x % 32;
  ldmatrix_x4<false>(a, base + (m0 + (l % 8) + ((l / 8) % 2) * 8) * ld + k0 + (l / 16) * 8);
}

/// The A fragment of A = Xᵀ where X [k][m] is row-major in shared memory: A's rows [m0, m0+16),
/// columns [k0, k0+16) are X's rows [k0, k0+16), columns [m0, m0+16).
__device__ __forceinline__ void load_a_trans(uint32_t (&a)[4], const bf16 *base, int ld, int m0,
                                             int k0) {
  const int l = threadIdx.x % 32;
  ldmatrix_x4<true>(a, base + (k0 + (l % 8) + (l / 16) * 8) * ld + m0 + ((l / 8) % 2) * 8);
}

/// B fragments of two adjacent n8 tiles, B rows [k0, k0+16) × columns [n0, n0+16), where B [k][n]
/// is row-major in shared memory (v, C): b[0..1] for columns n0.., b[2..3] for n0+8...
__device__ __forceinline__ void load_b_rows(uint32_t (&b)[4], const bf16 *base, int ld, int k0,
                                            int n0) {
  const int l = threadIdx.x % 32;
  ldmatrix_x4<true>(b, base + (k0 + (l % 8) + ((l / 8) % 2) * 8) * ld + n0 + (l / 16) * 8);
}

/// B fragments of two adjacent n8 tiles of B = Yᵀ where Y [n][k] is row-major in shared memory
/// (keys for S = Q·Kᵀ): b[0..1] for columns n0.., b[2..3] for n0+8...
__device__ __forceinline__ void load_b_cols(uint32_t (&b)[4], const bf16 *base, int ld, int k0,
                                            int n0) {
  const int l = threadIdx.x % 32;
  ldmatrix_x4<false>(b, base + (n0 + (l % 8) + (l / 16) * 8) * ld + k0 + ((l / 8) % 2) * 8);
}

/// d += a·b for one m16n8k16 tile (bf16 operands, fp32 accumulators).
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
#if defined(XLC_DEVICE_EMULATION)
  struct Regs {
    uint32_t a[4], b[2];
  } mine{{a[0], a[1], a[2], a[3]}, {b0, b1}}, all[32];
  ::xlc::emu::warpGather(&mine, sizeof(Regs), all);
  using emu_detail::bf16Bits;
  using emu_detail::half;
  // A(m, k) lives in lane 4·(m%8) + (k%8)/2, register (m/8) + 2·(k/8), half k%2;
  // B(k, n) in lane 4·n + (k%8)/2, register k/8, half k%2.
  auto A = [&](int m, int k) {
    return bf16Bits(half(all[4 * (m % 8) + (k % 8) / 2].a[(m / 8) + 2 * (k / 8)], k % 2));
  };
  auto B = [&](int k, int n) {
    return bf16Bits(half(all[4 * n + (k % 8) / 2].b[k / 8], k % 2));
  };
  const unsigned l = emu_detail::lane(), g = l / 4, q = l % 4;
  for (int e = 0; e < 4; ++e) {
    const int m = static_cast<int>(g) + (e / 2) * 8, n = 2 * static_cast<int>(q) + e % 2;
    float sum = d[e];
    for (int k = 0; k < 16; ++k)
      sum += A(m, k) * B(k, n);
    d[e] = sum;
  }
#else
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
               "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

/// cp.async of 16 bytes from global |src| to shared |dst| (both 16-byte aligned); with
/// |valid| false the 16 bytes are zero-filled and |src| is not read.
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool valid) {
#if defined(XLC_DEVICE_EMULATION)
  if (valid)
    std::memcpy(dst, src, 16);
  else
    std::memset(dst, 0, 16);
#else
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(src),
               "r"(bytes));
#endif
}

/// Closes the group of cp.async issued by this thread since the last commit.
__device__ __forceinline__ void cp_async_commit() {
#if !defined(XLC_DEVICE_EMULATION)
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

/// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending> __device__ __forceinline__ void cp_async_wait() {
#if !defined(XLC_DEVICE_EMULATION)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
#endif
}

/// Starts copying a [kRows × kCols] tile of a strided global matrix of T into bf16 shared memory
/// (pitch |ld| elements, a multiple of 8), zeros outside the valid |rows| × |cols| region. When
/// T is bf16 and the view is 16-byte aligned (|vector|), full 8-element groups go through
/// cp.async (complete after the next cp_async_wait + barrier); everything else — edge groups,
/// unaligned views, fp32 sources — is converted and stored synchronously.
template <int kRows, int kCols, int kThreads, class T>
__device__ __forceinline__ void async_load_tile(bf16 *dst, int ld, const T *src, int64_t stride,
                                                int rows, int cols, bool vector) {
  static_assert(kCols % 8 == 0, "tile width must be a multiple of 8");
  constexpr int kGroups = kCols / 8;
  for (int idx = threadIdx.x; idx < kRows * kGroups; idx += kThreads) {
    const int r = idx / kGroups, c = (idx % kGroups) * 8;
    bf16 *d = dst + r * ld + c;
    const bool full = r < rows && c + 8 <= cols;
    if constexpr (sizeof(T) == 2) {
      if (vector && (full || r >= rows || c >= cols)) {
        cp_async16(d, full ? src + r * stride + c : src, full);
        continue;
      }
    }
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
      v[i] = (r < rows && c + i < cols) ? to_float(src[r * stride + c + i]) : 0.0f;
    store_floats<8, true>(d, v);
  }
}

} // namespace xlc::device::tc

#endif // XLC_DEVICE_TENSOR_CORE_CUH
