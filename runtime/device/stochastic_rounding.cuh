//===- stochastic_rounding.cuh - fp32 -> bf16 rounding with counter-based random bits -*- CUDA -*-===//
//
// The low-memory training mode keeps weights and AdamW's moments in bf16 with no fp32 master
// (docs/plans/training.md). Rounding each update to nearest would lose every update smaller than
// half a bf16 ulp (2^-9 relative): a weight of 1.0 would never move for lr·update < 2e-3. So the
// update rounds stochastically: x is rounded up (away from zero) with probability equal to its
// distance from the truncated value, in units of the bf16 ulp, so that E[round(x)] = x.
//
// On the bits: a finite fp32 x with bits u rounds to bf16 bits (u + r) >> 16 with r uniform in
// [0, 2^16). Adding r carries into bit 16 exactly when r ≥ 2^16 − (u & 0xffff), probability
// (u & 0xffff) / 2^16 — the fraction of an ulp that truncation would drop. The sign bit is
// untouched (magnitude rounding), a carry out of the mantissa steps the exponent (the next
// binade's first value, correct), and the largest finite values may round up to ±∞ exactly as
// round-to-nearest can. ±∞ and NaN are kept (a NaN stays a quiet NaN).
//
// The random bits are a pure function of (seed, stream, index): the optimizer step number, which
// array of which tensor, and the element. No state is carried, so a run resumed from a checkpoint
// rounds exactly as the uninterrupted run would, on any grid, and the CPU backend (which includes
// this header as host C++: it has no device dependencies) rounds every element exactly as the
// kernel does. The hash is Chris Wellons' lowbias32 (a 32-bit integer permutation with low bias),
// applied in a chain so that each input word is fully mixed before the next enters.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_STOCHASTIC_ROUNDING_CUH
#define XLC_DEVICE_STOCHASTIC_ROUNDING_CUH

#if defined(__CUDACC__)
#define XLC_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define XLC_HOST_DEVICE inline
#endif

namespace xlc::device {

/// lowbias32: a bijection of 32-bit words whose output bits each flip with probability ≈ 1/2
/// when any input bit flips.
XLC_HOST_DEVICE unsigned int mix32(unsigned int x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

/// The per-launch key of one stream of random words (computed once per thread; rounding_word
/// mixes the element index into it).
XLC_HOST_DEVICE unsigned int rounding_key(unsigned long long seed, unsigned int stream) {
  unsigned int h = mix32(static_cast<unsigned int>(seed) ^ 0x9e3779b9U);
  h = mix32(h ^ static_cast<unsigned int>(seed >> 32));
  return mix32(h ^ stream);
}

/// 32 random bits for element |index| under |key|: one mix per element (the optimizer step is
/// bound by memory only while its integer work stays this small; each word serves two 16-bit
/// roundings). Distinct indices below 2³² give distinct words under one key (mix32 is a
/// bijection); the high half of a larger index is folded in by a multiply.
XLC_HOST_DEVICE unsigned int rounding_word(unsigned int key, unsigned long long index) {
  return mix32(key ^ static_cast<unsigned int>(index) ^
               (static_cast<unsigned int>(index >> 32) * 0x85ebca6bU));
}

/// AdamW's 16-bit rounding value for element |index| of |array| (0: the weight, 1: exp_avg, 2:
/// exp_avg_sq) of one tensor, whose keys are keyA = rounding_key(step, 2·tensor) and keyB =
/// rounding_key(step, 2·tensor + 1): the weight takes word A's low half, exp_avg its high half,
/// exp_avg_sq word B's low half. (adamw.cuh computes word A once for both.)
XLC_HOST_DEVICE unsigned int adamw_rounding_value(unsigned int keyA, unsigned int keyB, int array,
                                                  unsigned long long index) {
  const unsigned int word = rounding_word(array == 2 ? keyB : keyA, index);
  return array == 1 ? word >> 16 : word & 0xffffU;
}

/// The bf16 bits of fp32 bits |u| rounded with the 16 random bits |r| < 2¹⁶ (file comment).
XLC_HOST_DEVICE unsigned short bf16_bits_stochastic(unsigned int u, unsigned int r) {
  if ((u & 0x7f800000U) == 0x7f800000U) // ±∞ stays; a NaN stays a (quiet) NaN
    return static_cast<unsigned short>((u >> 16) | ((u & 0x007fffffU) != 0 ? 0x0040U : 0U));
  return static_cast<unsigned short>((u + r) >> 16);
}

} // namespace xlc::device

#undef XLC_HOST_DEVICE

#endif // XLC_DEVICE_STOCHASTIC_ROUNDING_CUH
