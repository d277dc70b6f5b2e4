//===- CpuTestUtil.h - Shared helpers of the CPU kernel tests ----*- C++ -*-===//
//
// Random fp32 inputs, the fp32-vs-float64 error metric and conversions between the CPU kernels'
// row-major buffers (with strided views) and reference tensors.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_RUNTIME_EXEC_CPUTESTUTIL_H
#define XLC_TEST_RUNTIME_EXEC_CPUTESTUTIL_H

#include "runtime/reference/Tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace xlc::exec::testing {

/// Normal(mean, sd) floats, never exactly zero.
inline std::vector<float> randomFloats(std::size_t count, std::mt19937 &rng, float mean = 0.0f,
                                float sd = 1.0f) {
  std::normal_distribution<float> dist(mean, sd);
  std::vector<float> v(count);
  for (float &x : v) {
    do
      x = dist(rng);
    while (x == 0.0f);
  }
  return v;
}

/// ‖out − ref‖₂ / ‖ref‖₂ in double; +∞ on any non-finite value.
inline double relError(const std::vector<float> &out, const std::vector<double> &ref) {
  EXPECT_EQ(out.size(), ref.size());
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < out.size() && i < ref.size(); ++i) {
    if (!std::isfinite(out[i]) || !std::isfinite(ref[i]))
      return INFINITY;
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

/// Columns [offset, offset + width) of |rows| rows of a row-major [rows, stride] buffer as a
/// float64 tensor [rows, width].
inline ref::Tensor viewTensor(const std::vector<float> &buf, std::int64_t rows, std::int64_t stride,
                       std::int64_t offset, std::int64_t width) {
  ref::Tensor t({rows, width});
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < width; ++c)
      t.data[r * width + c] = buf[r * stride + offset + c];
  return t;
}

inline ref::Tensor toTensor(const std::vector<float> &v, ref::Shape shape) {
  return ref::Tensor(std::move(shape), std::vector<double>(v.begin(), v.end()));
}

} // namespace xlc::exec::testing

#endif // XLC_TEST_RUNTIME_EXEC_CPUTESTUTIL_H
