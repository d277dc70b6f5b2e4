//===- Tensor.h - Dense float64 tensors for the reference -------*- C++ -*-===//
//
// The float64 reference (runtime/reference) is the numerics spec that every kernel and the CPU
// backend are checked against. It favours obviousness over speed: a tensor is a shape plus a
// row-major std::vector<double>, nothing more. No views, no strides, no broadcasting; every op
// checks the shapes it is given and says which tensor is wrong.
//
// Also here: the comparison metric of DESIGN.md ("Numerics"), ‖out − ref‖₂ / ‖ref‖₂ with NaN never
// passing, and a portable random generator for test inputs and random weights.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_REFERENCE_TENSOR_H
#define XLC_RUNTIME_REFERENCE_TENSOR_H

#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::ref {

using Shape = std::vector<std::int64_t>;

/// Product of the extents; throws xlc::Error on a negative extent.
std::int64_t numElements(const Shape &shape);

/// "[2, 3, 4]".
std::string shapeString(const Shape &shape);

/// A dense row-major float64 tensor. Invariant: data.size() == numElements(shape).
/// A rank-0 tensor (empty shape) holds one element; a default-constructed Tensor is rank 0 with no
/// data and is used only as "absent" (see isEmpty()).
struct Tensor {
  Shape shape;
  std::vector<double> data;

  Tensor() = default;
  /// A tensor of |shape| filled with |fill|.
  explicit Tensor(Shape shape, double fill = 0.0);
  /// Takes |data| as the row-major contents of |shape|; throws if the sizes disagree.
  Tensor(Shape shape, std::vector<double> data);

  std::int64_t rank() const { return static_cast<std::int64_t>(shape.size()); }
  /// Extent of dimension |axis|; negative axes count from the back (-1 = last).
  std::int64_t dim(std::int64_t axis) const;
  std::int64_t numel() const { return static_cast<std::int64_t>(data.size()); }
  bool isEmpty() const { return shape.empty() && data.empty(); }

  /// Checked row-major element access: t.at(b, s, j). Throws on a wrong index count or range.
  template <typename... Index> double &at(Index... index) {
    return data[offset({static_cast<std::int64_t>(index)...})];
  }
  template <typename... Index> double at(Index... index) const {
    return data[offset({static_cast<std::int64_t>(index)...})];
  }

  /// Row-major offset of a full index; throws xlc::Error if out of range.
  std::size_t offset(std::initializer_list<std::int64_t> index) const;
};

/// Throws xlc::Error naming |what| unless |tensor| has exactly |expected| as its shape.
void checkShape(const Tensor &tensor, const Shape &expected, std::string_view what);

/// ‖out − ref‖₂ / ‖ref‖₂ over all elements (shapes must match exactly, else xlc::Error).
/// Returns +infinity if either tensor holds a NaN or an infinity, so that "error < tolerance" never
/// passes on non-finite data. If ‖ref‖ = 0 returns ‖out‖ (absolute error). Never test on zeros.
double relativeError(const Tensor &out, const Tensor &ref);

/// max_i |out_i − ref_i| (+infinity on non-finite data, like relativeError).
double maxAbsError(const Tensor &out, const Tensor &ref);

/// True iff every element is finite.
bool allFinite(const Tensor &tensor);

/// Random numbers whose sequence depends only on the seed, not on the standard library:
/// std::uniform_real_distribution and std::normal_distribution are implementation-defined, and
/// tests on the development and the GPU machine must see the same inputs.
class Random {
public:
  explicit Random(std::uint64_t seed) : engine_(seed) {}

  /// Uniform on [lo, hi) with 53 random bits.
  double uniform(double lo, double hi);
  /// Normal(mean, stddev) by Box–Muller.
  double normal(double mean, double stddev);

  Tensor uniform(const Shape &shape, double lo, double hi);
  Tensor normal(const Shape &shape, double mean, double stddev);

private:
  std::mt19937_64 engine_;
};

} // namespace xlc::ref

#endif // XLC_RUNTIME_REFERENCE_TENSOR_H
