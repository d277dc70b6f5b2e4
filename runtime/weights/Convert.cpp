//===- Convert.cpp - Element conversion to the runtime's storage types ----===//

#include "runtime/weights/Convert.h"

#include "runtime/support/Error.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

namespace xlc::weights {

float f16ToF32(std::uint16_t h) {
  std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign; // ±0
    } else {
      // Subnormal: mantissa·2^-24. Shift the leading one up to the implicit-bit position; each
      // shift lowers the binary exponent by one, starting from 2^-14 (biased 113 in binary32).
      std::uint32_t e = 113;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        --e;
      }
      bits = sign | (e << 23) | ((mantissa & 0x3ffu) << 13);
    }
  } else if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13); // Inf, or NaN with its payload
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13); // rebias 15 -> 127
  }
  return std::bit_cast<float>(bits);
}

namespace {

/// Runs fn(begin, end) over [0, n) in contiguous pieces, on several threads when n is large.
/// Parallel conversion also spreads the page faults of a freshly mapped checkpoint over cores.
template <typename Fn> void parallelFor(std::size_t n, Fn fn) {
  if (n == 0)
    return; // also keeps memcpy away from the null data() of empty spans
  constexpr std::size_t kMinPerThread = std::size_t{1} << 20;
  std::size_t hw = std::max(1u, std::thread::hardware_concurrency());
  std::size_t threads = std::min<std::size_t>({hw, 16, n / kMinPerThread});
  if (threads <= 1) {
    fn(std::size_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  std::size_t chunk = (n + threads - 1) / threads;
  for (std::size_t t = 1; t < threads; ++t) {
    std::size_t begin = std::min(n, t * chunk), end = std::min(n, begin + chunk);
    pool.emplace_back([=] { fn(begin, end); });
  }
  fn(std::size_t{0}, std::min(n, chunk));
  for (std::thread &t : pool)
    t.join();
}

template <typename T> T load(const std::uint8_t *p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

void checkSizes(DType source, std::span<const std::uint8_t> bytes, std::size_t outElements,
                std::string_view target, std::string_view what) {
  if (!isConvertibleFloat(source))
    fail("{}: dtype {} cannot be read as {} (supported source dtypes: F32, BF16, F16)", what,
         dtypeName(source), target);
  std::size_t size = dtypeSize(source);
  if (bytes.size() % size != 0 || bytes.size() / size != outElements)
    fail("{}: destination holds {} {} elements, but the tensor has {} bytes = {} {} elements", what,
         outElements, target, bytes.size(), bytes.size() / size, dtypeName(source));
}

} // namespace

void convertToF32(DType source, std::span<const std::uint8_t> bytes, std::span<float> out,
                  std::string_view what) {
  checkSizes(source, bytes, out.size(), "F32", what);
  const std::uint8_t *src = bytes.data();
  float *dst = out.data();
  switch (source) {
  case DType::F32:
    parallelFor(out.size(), [&](std::size_t b, std::size_t e) {
      std::memcpy(dst + b, src + 4 * b, 4 * (e - b));
    });
    return;
  case DType::BF16:
    parallelFor(out.size(), [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i)
        dst[i] = bf16ToF32(load<std::uint16_t>(src + 2 * i));
    });
    return;
  case DType::F16:
    parallelFor(out.size(), [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i)
        dst[i] = f16ToF32(load<std::uint16_t>(src + 2 * i));
    });
    return;
  default:
    break; // rejected by checkSizes
  }
}

void convertToBF16(DType source, std::span<const std::uint8_t> bytes, std::span<std::uint16_t> out,
                   std::string_view what) {
  checkSizes(source, bytes, out.size(), "BF16", what);
  const std::uint8_t *src = bytes.data();
  std::uint16_t *dst = out.data();
  switch (source) {
  case DType::F32:
    parallelFor(out.size(), [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i)
        dst[i] = f32ToBF16(load<float>(src + 4 * i));
    });
    return;
  case DType::BF16:
    parallelFor(out.size(), [&](std::size_t b, std::size_t e) {
      std::memcpy(dst + b, src + 2 * b, 2 * (e - b));
    });
    return;
  case DType::F16:
    // f16 -> f32 is exact, so this rounds once, from the f16 value itself.
    parallelFor(out.size(), [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i)
        dst[i] = f32ToBF16(f16ToF32(load<std::uint16_t>(src + 2 * i)));
    });
    return;
  default:
    break;
  }
}

} // namespace xlc::weights
