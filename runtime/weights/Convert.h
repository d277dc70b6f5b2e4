//===- Convert.h - Element conversion to the runtime's storage types -*- C++ -*-===//
//
// Checkpoints arrive as F32 (NX-AI/xLSTM-7b is published in fp32), BF16 or F16; the runtime keeps
// weights as bf16 (GPU) or fp32 (CPU reference backend). Widening to f32 is exact for all three.
// Narrowing f32 to bf16 rounds to nearest, ties to even, as torch's `.to(torch.bfloat16)` does:
// overflow goes to ±Inf, Inf stays Inf, and every NaN stays a NaN (quietened, sign kept).
// bf16 values travel as their 16-bit patterns (std::uint16_t).
//
// Source bytes are little-endian and may be unaligned (safetensors only promises byte offsets), so
// elements are read with memcpy, never through a cast pointer.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_WEIGHTS_CONVERT_H
#define XLC_RUNTIME_WEIGHTS_CONVERT_H

#include "runtime/weights/DType.h"

#include <bit>
#include <cstdint>
#include <span>
#include <string_view>

namespace xlc::weights {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host needs byte swaps here");

/// bf16 bit pattern -> float (exact).
inline float bf16ToF32(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

/// float -> bf16 bit pattern, round to nearest even; NaN stays NaN.
inline std::uint16_t f32ToBF16(float value) {
  std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  // NaN: truncate and set the quiet bit, so a payload only in the low half cannot become Inf.
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);
  // Adding 0x7fff plus the kept part's lowest bit carries into the kept half exactly when the
  // dropped half is above one half ulp, or equal to it with an odd kept part (ties to even).
  // Overflow carries into the exponent and yields Inf, as it should.
  std::uint32_t lsb = (bits >> 16) & 1u;
  bits += 0x7fffu + lsb;
  return static_cast<std::uint16_t>(bits >> 16);
}

/// IEEE binary16 bit pattern -> float (exact, subnormals, Inf and NaN payloads included).
float f16ToF32(std::uint16_t bits);

/// Converts |bytes| (elements of |source|) into |out|; |out| must hold exactly as many elements.
/// Large inputs are converted by several threads. |what| names the tensor in error messages.
/// Throws xlc::Error when |source| is not F32, BF16 or F16 or the sizes disagree.
void convertToF32(DType source, std::span<const std::uint8_t> bytes, std::span<float> out,
                  std::string_view what);

/// As convertToF32, into bf16 bit patterns (F32 and F16 sources are rounded to nearest even).
void convertToBF16(DType source, std::span<const std::uint8_t> bytes, std::span<std::uint16_t> out,
                   std::string_view what);

} // namespace xlc::weights

#endif // XLC_RUNTIME_WEIGHTS_CONVERT_H
