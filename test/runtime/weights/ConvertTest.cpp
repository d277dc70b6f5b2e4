//===- ConvertTest.cpp - bf16/f16/f32 conversions -------------------------===//

#include "runtime/weights/Convert.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace xlc::weights;
using xlc::weights::testing::errorOf;

namespace {

std::uint32_t bitsOf(float f) { return std::bit_cast<std::uint32_t>(f); }
float fromBits(std::uint32_t b) { return std::bit_cast<float>(b); }

/// Independent reference for f32 -> bf16: pick the nearer of the two neighbouring bf16 values
/// in double arithmetic, ties to the even pattern.
std::uint16_t referenceBF16(float f) {
  std::uint32_t bits = bitsOf(f);
  std::uint16_t lo = static_cast<std::uint16_t>(bits >> 16);
  if ((bits & 0xffffu) == 0)
    return lo;
  std::uint16_t hi = static_cast<std::uint16_t>(lo + 1); // next magnitude up (may be Inf)
  double x = std::fabs(static_cast<double>(f));
  double a = std::fabs(static_cast<double>(bf16ToF32(lo)));
  double b;
  if ((hi & 0x7fffu) == 0x7f80u) // rounding up reaches Inf: the "next value" is 2^128
    b = std::ldexp(1.0, 128);
  else
    b = std::fabs(static_cast<double>(bf16ToF32(hi)));
  double da = x - a, db = b - x;
  if (da < db)
    return lo;
  if (db < da)
    return hi;
  return (lo & 1u) == 0 ? lo : hi;
}

/// Independent reference for f16 -> f32 in double arithmetic.
double referenceF16(std::uint16_t h) {
  int sign = (h & 0x8000) ? -1 : 1;
  int exponent = (h >> 10) & 0x1f;
  int mantissa = h & 0x3ff;
  if (exponent == 0)
    return sign * std::ldexp(mantissa, -24);
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

} // namespace

TEST(Convert, BF16ToF32IsExactForEveryPattern) {
  for (std::uint32_t b = 0; b <= 0xffff; ++b)
    ASSERT_EQ(bitsOf(bf16ToF32(static_cast<std::uint16_t>(b))), b << 16) << b;
}

TEST(Convert, F16ToF32HandPicked) {
  EXPECT_EQ(f16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(f16ToF32(0xc000), -2.0f);
  EXPECT_EQ(f16ToF32(0x7bff), 65504.0f);                 // largest finite
  EXPECT_EQ(f16ToF32(0x0400), std::ldexp(1.0f, -14));    // smallest normal
  EXPECT_EQ(f16ToF32(0x0001), std::ldexp(1.0f, -24));    // smallest subnormal
  EXPECT_EQ(f16ToF32(0x03ff), std::ldexp(1023.0f, -24)); // largest subnormal
  EXPECT_EQ(bitsOf(f16ToF32(0x8000)), 0x80000000u);      // -0
  EXPECT_EQ(f16ToF32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16ToF32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16ToF32(0x7e00)));
  EXPECT_EQ(bitsOf(f16ToF32(0x7e01)), 0x7fc02000u); // NaN payload carried over
  EXPECT_TRUE(std::signbit(f16ToF32(0xfe00)));
}

TEST(Convert, F16ToF32IsExactForEveryPattern) {
  for (std::uint32_t h = 0; h <= 0xffff; ++h) {
    float f = f16ToF32(static_cast<std::uint16_t>(h));
    if (((h >> 10) & 0x1f) == 0x1f) {
      if ((h & 0x3ff) == 0)
        ASSERT_TRUE(std::isinf(f)) << h;
      else
        ASSERT_TRUE(std::isnan(f)) << h;
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), referenceF16(static_cast<std::uint16_t>(h))) << h;
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;
  }
}

TEST(Convert, F32ToBF16RoundsToNearestEven) {
  EXPECT_EQ(f32ToBF16(1.0f), 0x3f80);
  EXPECT_EQ(f32ToBF16(-2.0f), 0xc000);
  EXPECT_EQ(f32ToBF16(fromBits(0x3f808000)), 0x3f80); // halfway, even below: down
  EXPECT_EQ(f32ToBF16(fromBits(0x3f818000)), 0x3f82); // halfway, odd below: up
  EXPECT_EQ(f32ToBF16(fromBits(0x3f808001)), 0x3f81); // just above halfway: up
  EXPECT_EQ(f32ToBF16(fromBits(0x3f807fff)), 0x3f80); // just below halfway: down
  EXPECT_EQ(f32ToBF16(fromBits(0xbf818000)), 0xbf82); // negative ties likewise
  EXPECT_EQ(f32ToBF16(fromBits(0x3fffffff)), 0x4000); // carry into the exponent
  EXPECT_EQ(f32ToBF16(fromBits(0x7f7fffff)), 0x7f80); // FLT_MAX rounds to Inf
  EXPECT_EQ(f32ToBF16(fromBits(0x7f7f7fff)), 0x7f7f); // ... but not just below
  EXPECT_EQ(f32ToBF16(fromBits(0x00000001)), 0x0000); // subnormals round too
  EXPECT_EQ(f32ToBF16(fromBits(0x00008000)), 0x0000);
  EXPECT_EQ(f32ToBF16(fromBits(0x00018000)), 0x0002);
  EXPECT_EQ(f32ToBF16(-0.0f), 0x8000);
  EXPECT_EQ(f32ToBF16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(f32ToBF16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(f32ToBF16(fromBits(0x7fc00000)), 0x7fc0); // quiet NaN
  EXPECT_EQ(f32ToBF16(fromBits(0x7f800001)), 0x7fc0); // payload only in the low half: still NaN
  EXPECT_EQ(f32ToBF16(fromBits(0xff800001)), 0xffc0); // sign kept
  EXPECT_EQ(f32ToBF16(fromBits(0x7fbfffff)),
            0x7fff); // signalling NaN quietened, not rounded to Inf
  EXPECT_TRUE(std::isnan(bf16ToF32(f32ToBF16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Convert, F32ToBF16MatchesReferenceOnRandomBits) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 2'000'000; ++i) {
    std::uint32_t bits = rng();
    float f = fromBits(bits);
    if (std::isnan(f))
      continue;
    ASSERT_EQ(f32ToBF16(f), referenceBF16(f)) << std::hex << bits;
  }
}

TEST(Convert, SpansInAllDirectionsIncludingThreadedAndUnaligned) {
  // 3M elements take the multi-threaded path; the +1 offset makes every source unaligned.
  const std::size_t n = 3'000'000;
  std::mt19937 rng(7);
  std::vector<std::uint8_t> f32(4 * n + 1), bf16(2 * n + 1), f16(2 * n + 1);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits = rng();
    std::memcpy(&f32[1 + 4 * i], &bits, 4);
    std::uint16_t h = static_cast<std::uint16_t>(rng());
    std::memcpy(&bf16[1 + 2 * i], &h, 2);
    std::memcpy(&f16[1 + 2 * i], &h, 2);
  }
  auto sub = [](const std::vector<std::uint8_t> &v) { return std::span(v).subspan(1); };

  std::vector<float> out(n);
  convertToF32(DType::F32, sub(f32), out, "t");
  EXPECT_EQ(std::memcmp(out.data(), f32.data() + 1, 4 * n), 0);
  convertToF32(DType::BF16, sub(bf16), out, "t");
  for (std::size_t i = 0; i < n; i += 997) {
    std::uint16_t h;
    std::memcpy(&h, &bf16[1 + 2 * i], 2);
    ASSERT_EQ(bitsOf(out[i]), static_cast<std::uint32_t>(h) << 16);
  }
  convertToF32(DType::F16, sub(f16), out, "t");
  for (std::size_t i = 0; i < n; i += 997) {
    std::uint16_t h;
    std::memcpy(&h, &f16[1 + 2 * i], 2);
    ASSERT_EQ(bitsOf(out[i]), bitsOf(f16ToF32(h)));
  }

  std::vector<std::uint16_t> half(n);
  convertToBF16(DType::F32, sub(f32), half, "t");
  for (std::size_t i = 0; i < n; i += 997) {
    float f;
    std::memcpy(&f, &f32[1 + 4 * i], 4);
    ASSERT_EQ(half[i], f32ToBF16(f));
  }
  convertToBF16(DType::BF16, sub(bf16), half, "t");
  EXPECT_EQ(std::memcmp(half.data(), bf16.data() + 1, 2 * n), 0);
  convertToBF16(DType::F16, sub(f16), half, "t");
  for (std::size_t i = 0; i < n; i += 997) {
    std::uint16_t h;
    std::memcpy(&h, &f16[1 + 2 * i], 2);
    ASSERT_EQ(half[i], f32ToBF16(f16ToF32(h)));
  }
}

TEST(Convert, EmptyTensorsConvert) {
  std::vector<float> none;
  convertToF32(DType::BF16, {}, none, "empty");
  std::vector<std::uint16_t> none16;
  convertToBF16(DType::F32, {}, none16, "empty");
}

TEST(Convert, RejectsUnsupportedDtypesAndSizeMismatch) {
  std::vector<std::uint8_t> bytes(16);
  std::vector<float> out(2);
  std::string message = errorOf([&] { convertToF32(DType::I64, bytes, out, "tensor 'x'"); });
  EXPECT_NE(message.find("tensor 'x'"), std::string::npos) << message;
  EXPECT_NE(message.find("dtype I64 cannot be read as F32"), std::string::npos) << message;

  std::vector<std::uint16_t> out16(3);
  message = errorOf([&] { convertToBF16(DType::F32, bytes, out16, "tensor 'y'"); });
  EXPECT_NE(message.find("tensor 'y': destination holds 3 BF16 elements"), std::string::npos)
      << message;
  EXPECT_NE(message.find("4 F32 elements"), std::string::npos) << message;
}
