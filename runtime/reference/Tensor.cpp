//===- Tensor.cpp - Dense float64 tensors for the reference ---------------===//

#include "runtime/reference/Tensor.h"

#include "runtime/support/Error.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace xlc::ref {

std::int64_t numElements(const Shape &shape) {
  std::int64_t count = 1;
  for (std::int64_t extent : shape) {
    check(extent >= 0, "tensor shape {} has a negative extent", shapeString(shape));
    count *= extent;
  }
  return count;
}

std::string shapeString(const Shape &shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

Tensor::Tensor(Shape shapeIn, double fill)
    : shape(std::move(shapeIn)), data(static_cast<std::size_t>(numElements(shape)), fill) {}

Tensor::Tensor(Shape shapeIn, std::vector<double> dataIn)
    : shape(std::move(shapeIn)), data(std::move(dataIn)) {
  check(static_cast<std::int64_t>(data.size()) == numElements(shape),
        "tensor of shape {} needs {} elements, got {}", shapeString(shape), numElements(shape),
        data.size());
}

std::int64_t Tensor::dim(std::int64_t axis) const {
  std::int64_t resolved = axis < 0 ? axis + rank() : axis;
  check(resolved >= 0 && resolved < rank(), "axis {} out of range for a tensor of shape {}", axis,
        shapeString(shape));
  return shape[static_cast<std::size_t>(resolved)];
}

std::size_t Tensor::offset(std::initializer_list<std::int64_t> index) const {
  check(static_cast<std::int64_t>(index.size()) == rank(),
        "index with {} components into a tensor of shape {}", index.size(), shapeString(shape));
  std::int64_t flat = 0;
  std::size_t axis = 0;
  for (std::int64_t i : index) {
    check(i >= 0 && i < shape[axis], "index {} out of range for axis {} of a tensor of shape {}", i,
          axis, shapeString(shape));
    flat = flat * shape[axis] + i;
    ++axis;
  }
  return static_cast<std::size_t>(flat);
}

void checkShape(const Tensor &tensor, const Shape &expected, std::string_view what) {
  check(tensor.shape == expected, "{}: expected shape {}, got {}", what, shapeString(expected),
        shapeString(tensor.shape));
  check(static_cast<std::int64_t>(tensor.data.size()) == numElements(expected),
        "{}: shape {} but {} elements", what, shapeString(expected), tensor.data.size());
}

bool allFinite(const Tensor &tensor) {
  for (double x : tensor.data)
    if (!std::isfinite(x))
      return false;
  return true;
}

double relativeError(const Tensor &out, const Tensor &ref) {
  check(out.shape == ref.shape, "relativeError: shapes differ ({} vs reference {})",
        shapeString(out.shape), shapeString(ref.shape));
  if (!allFinite(out) || !allFinite(ref))
    return std::numeric_limits<double>::infinity();
  double diff = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < ref.data.size(); ++i) {
    double d = out.data[i] - ref.data[i];
    diff += d * d;
    norm += ref.data[i] * ref.data[i];
  }
  return norm == 0.0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

double maxAbsError(const Tensor &out, const Tensor &ref) {
  check(out.shape == ref.shape, "maxAbsError: shapes differ ({} vs reference {})",
        shapeString(out.shape), shapeString(ref.shape));
  if (!allFinite(out) || !allFinite(ref))
    return std::numeric_limits<double>::infinity();
  double worst = 0.0;
  for (std::size_t i = 0; i < ref.data.size(); ++i)
    worst = std::max(worst, std::abs(out.data[i] - ref.data[i]));
  return worst;
}

double Random::uniform(double lo, double hi) {
  double unit = static_cast<double>(engine_() >> 11) * 0x1.0p-53; // [0, 1)
  return lo + (hi - lo) * unit;
}

double Random::normal(double mean, double stddev) {
  // Box–Muller with u1 in (0, 1] so the logarithm is finite.
  double u1 = 1.0 - uniform(0.0, 1.0);
  double u2 = uniform(0.0, 1.0);
  double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  return mean + stddev * z;
}

Tensor Random::uniform(const Shape &shape, double lo, double hi) {
  Tensor t(shape);
  for (double &x : t.data)
    x = uniform(lo, hi);
  return t;
}

Tensor Random::normal(const Shape &shape, double mean, double stddev) {
  Tensor t(shape);
  for (double &x : t.data)
    x = normal(mean, stddev);
  return t;
}

} // namespace xlc::ref
