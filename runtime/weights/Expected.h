//===- Expected.h - Checking a checkpoint against the tensors a model needs -*- C++ -*-===//
//
// A model (today: an xLSTM config, XlstmWeights.h; later: the weight bindings of a compiled
// artifact) states the tensors it needs by name, accepted dtypes and shape. The check compares
// that list with what a checkpoint holds and reports every missing, unexpected, mis-shaped or
// mis-typed tensor with expected and actual values, all in one error.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_WEIGHTS_EXPECTED_H
#define XLC_RUNTIME_WEIGHTS_EXPECTED_H

#include "runtime/weights/Safetensors.h"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::weights {

class Checkpoint;

struct ExpectedTensor {
  std::string name;
  std::vector<DType> dtypes; ///< accepted dtypes; empty accepts any
  std::vector<std::int64_t> shape;
  bool optional = false; ///< may be absent (but must match when present)
};

/// The element count of |shape| (product of extents; 1 for a scalar).
std::uint64_t elementCount(std::span<const std::int64_t> shape);

/// The sum of the element counts of the required tensors.
std::uint64_t parameterCount(std::span<const ExpectedTensor> expected);

/// Every difference between |actual| (any order) and |expected|, one sentence each, in name
/// order: missing required tensors, dtype or shape mismatches, and (unless |allowExtra|)
/// tensors nobody expects. Empty when they match. Duplicate expected names are reported too.
std::vector<std::string> findTensorProblems(std::span<const TensorInfo> actual,
                                            std::span<const ExpectedTensor> expected,
                                            bool allowExtra = false);

/// Throws xlc::Error listing every problem (up to a cap) unless |checkpoint| matches
/// |expected|. |against| says what the list came from, e.g. "config.json (xLSTM, 2 blocks)".
void checkTensors(const Checkpoint &checkpoint, std::span<const ExpectedTensor> expected,
                  std::string_view against, bool allowExtra = false);

/// As checkTensors, for a bare tensor list; |source| names where the tensors came from.
void checkTensors(std::span<const TensorInfo> actual, std::string_view source,
                  std::span<const ExpectedTensor> expected, std::string_view against,
                  bool allowExtra = false);

} // namespace xlc::weights

#endif // XLC_RUNTIME_WEIGHTS_EXPECTED_H
