//===- weight_transform.cuh - Checkpoint bytes into a weight buffer on the GPU -*- CUDA -*-===//
//
// weight_transform: the GPU half of the raw-bytes weight upload (runtime/exec/cuda/WeightUpload.h,
// docs/weight-loading.md). The host copies a piece of one checkpoint tensor — its stored bytes,
// unchanged — into device scratch; this kernel turns each element into the weight buffer's
// element at its place in the (fused) buffer:
//
//   j = first + i                    the element's index in its source tensor, i ∈ [0, count)
//   d = ⌊j / run⌋·row_out + column + (j mod run)
//                                    its index in the buffer: the concatenation along an axis of
//                                    row-major tensors (WeightBinding), where each source puts a
//                                    contiguous run of (its extent along the axis)·inner elements
//                                    at column (the sources before it) of every destination row of
//                                    row_out elements; run ≥ first + count means one run (outer 1)
//   v = widen(src[i])                exact: f32 as is, bf16 and f16 widened bit for bit
//   v = fold_product(v, scale[d mod columns])   when scale is not null (a folded RMSNorm weight,
//                                    one fp32 factor per column of the 2-D buffer)
//   dst[d] = v, or f32_to_bf16(v)    round to nearest even once, NaN kept a NaN
//
// except that an element stored in the buffer's own type and not folded is copied bit for bit
// (a bf16 concatenated along an inner axis: widening and rounding would quiet a signalling NaN).
//
// Every step is the host path's (runtime/exec/WeightAssembly.h assembleWeightBytes, with the
// conversions of runtime/weights/Convert.h) done with the same operations, so the
// result is bit-identical: widening and rounding are integer code here and there; the one
// floating-point operation, the fold's product, is a single IEEE fp32 multiply (round to nearest
// even, subnormals kept: NVRTC compiles without -ftz, and a lone multiply cannot be contracted
// into an FMA). Only a NaN product is hardware-specific (x86 returns an operand's payload, in
// an order the compiler may swap; NVIDIA GPUs return 0x7fffffff), so both sides pick the NaN by
// one rule, fold_product below. The emulator tests (kernel_emulation_tests) compare these
// functions with the host's on every 16-bit pattern and millions of fp32 patterns, and the
// whole upload with the host path byte for byte; gpu_backend_tests do the same on the GPU.
//
// Launch: any grid (a grid-stride loop over the piece), Config::kThreads threads, no shared
// memory. Reads are contiguous (src[i]); writes are contiguous within a run.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_WEIGHT_TRANSFORM_CUH
#define XLC_DEVICE_WEIGHT_TRANSFORM_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

/// Element types of a weight transform (the codes in WeightTransformParams).
enum class WeightElement : int64_t { kF32 = 0, kBF16 = 1, kF16 = 2 };

/// One piece of one source tensor (all members 8 bytes; the runtime's host copy is
/// xlc::exec::weight_transform_abi::Params, checked against this by the emulator tests).
struct WeightTransformParams {
  const void *src;    ///< count elements of src_type, element i is source element first + i
  void *dst;          ///< the weight buffer (element 0), of dst_type
  const float *scale; ///< fp32 factors, one per column of the 2-D buffer; null: no fold
  int64_t count;      ///< elements in this piece
  int64_t first;      ///< index of the piece's first element in its source tensor
  int64_t run;        ///< contiguous elements per destination row: extent along the axis · inner
  int64_t row_out;    ///< destination elements per outer index: the buffer's axis extent · inner
  int64_t column;     ///< where this source's run starts in a destination row (elements)
  int64_t columns;    ///< the buffer's last dimension (the scale's length); unused without scale
  int64_t src_type;   ///< WeightElement: kF32, kBF16 or kF16
  int64_t dst_type;   ///< WeightElement: kF32 or kBF16
};

/// kThreads: threads per block (whole warps).
template <int kThreadsArg> struct WeightTransformConfig {
  static constexpr int kThreads = kThreadsArg;
  static constexpr int kSharedBytes = 0;
  static_assert(kThreads % 32 == 0 && kThreads >= 32 && kThreads <= 1024,
                "weight_transform needs whole warps, at most 1024 threads");
};

namespace weight {

__host__ __device__ inline float bits_to_f32(uint32_t bits) {
  return __builtin_bit_cast(float, bits);
}
__host__ __device__ inline uint32_t f32_to_bits(float value) {
  return __builtin_bit_cast(uint32_t, value);
}

/// bf16 bit pattern -> fp32 (exact): the pattern is the upper half of the fp32 one.
__host__ __device__ inline float bf16_to_f32(uint16_t bits) {
  return bits_to_f32(static_cast<uint32_t>(bits) << 16);
}

/// IEEE binary16 bit pattern -> fp32 (exact; subnormals, Inf and NaN payloads kept), the same
/// integer steps as runtime/weights/Convert.cpp f16ToF32.
__host__ __device__ inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    if (mantissa == 0)
      return bits_to_f32(sign); // ±0
    // Subnormal m·2⁻²⁴: shift the leading one up to the implicit-bit position; each shift lowers
    // the exponent by one, starting from 2⁻¹⁴ (biased 113 in binary32).
    uint32_t e = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    return bits_to_f32(sign | (e << 23) | ((mantissa & 0x3ffu) << 13));
  }
  if (exponent == 0x1f)
    return bits_to_f32(sign | 0x7f800000u | (mantissa << 13)); // Inf, or NaN with its payload
  return bits_to_f32(sign | ((exponent + 112) << 23) | (mantissa << 13)); // rebias 15 -> 127
}

/// fp32 -> bf16 bit pattern, round to nearest even; a NaN stays a NaN (its upper half with the
/// quiet bit set). Runtime/weights/Convert.h f32ToBF16, step for step.
__host__ __device__ inline uint16_t f32_to_bf16(float value) {
  uint32_t bits = f32_to_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  // + 0x7fff + the kept part's lowest bit carries into the kept half exactly when the dropped
  // half is above one half ulp, or equal to it with an odd kept part; overflow gives Inf.
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

/// The fold's product v·s (one IEEE fp32 multiply, round to nearest even), with a NaN result
/// chosen by rule rather than by the hardware: v quietened if v is a NaN, else s quietened if s
/// is, else (∞·0) the positive quiet NaN 0x7fc00000. runtime/exec/WeightAssembly.h foldProduct.
__host__ __device__ inline float fold_product(float v, float s) {
  const float p = v * s;
  if (p == p)
    return p;
  const uint32_t vb = f32_to_bits(v), sb = f32_to_bits(s);
  if ((vb & 0x7fffffffu) > 0x7f800000u)
    return bits_to_f32(vb | 0x00400000u);
  if ((sb & 0x7fffffffu) > 0x7f800000u)
    return bits_to_f32(sb | 0x00400000u);
  return bits_to_f32(0x7fc00000u);
}

/// Element i of a piece of |type|, widened exactly.
__device__ __forceinline__ float load(const void *src, int64_t i, int64_t type) {
  if (type == static_cast<int64_t>(WeightElement::kF32))
    return bits_to_f32(static_cast<const uint32_t *>(src)[i]);
  const uint16_t bits = static_cast<const uint16_t *>(src)[i];
  return type == static_cast<int64_t>(WeightElement::kBF16) ? bf16_to_f32(bits) : f16_to_f32(bits);
}

} // namespace weight

template <class Config> __device__ void weight_transform(const WeightTransformParams &p) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * Config::kThreads;
  // One run (axis 0, or every outer extent 1): the element lands at column + j, no division.
  const bool one_run = p.run >= p.first + p.count;
  const bool to_bf16 = p.dst_type == static_cast<int64_t>(WeightElement::kBF16);
  // Elements stored in the buffer's type and not folded keep their bits (widening and rounding a
  // bf16 would quiet a signalling NaN; the host path copies them too).
  const bool copy_bits = p.scale == nullptr && p.src_type == p.dst_type;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * Config::kThreads + threadIdx.x;
       i < p.count; i += stride) {
    const int64_t j = p.first + i;
    const int64_t d = one_run ? p.column + j : j / p.run * p.row_out + p.column + j % p.run;
    if (copy_bits) {
      if (to_bf16)
        static_cast<uint16_t *>(p.dst)[d] = static_cast<const uint16_t *>(p.src)[i];
      else
        static_cast<uint32_t *>(p.dst)[d] = static_cast<const uint32_t *>(p.src)[i];
      continue;
    }
    float v = weight::load(p.src, i, p.src_type);
    if (p.scale != nullptr) {
      // The column of d; 32-bit division where both fit (every buffer of the 7B does).
      const int64_t c = ((static_cast<uint64_t>(d) | static_cast<uint64_t>(p.columns)) >> 32) == 0
                            ? static_cast<int64_t>(static_cast<uint32_t>(d) %
                                                   static_cast<uint32_t>(p.columns))
                            : d % p.columns;
      v = weight::fold_product(v, p.scale[c]);
    }
    if (to_bf16)
      static_cast<uint16_t *>(p.dst)[d] = weight::f32_to_bf16(v);
    else
      static_cast<uint32_t *>(p.dst)[d] = weight::f32_to_bits(v);
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_WEIGHT_TRANSFORM_CUH
