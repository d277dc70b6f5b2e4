//===- Safetensors.h - Reading one safetensors file -------------*- C++ -*-===//
//
// The safetensors format (huggingface/safetensors):
//
//   [8 bytes]  N, the header length, unsigned little-endian
//   [N bytes]  UTF-8 JSON object: { "<tensor name>": { "dtype": "BF16", "shape": [d0, d1, ...],
//                                                      "data_offsets": [begin, end] }, ...,
//                                   "__metadata__": { "<key>": "<string>", ... } (optional) }
//              (writers pad it with trailing spaces so that 8 + N is a multiple of 8)
//   [rest]     the data buffer; each tensor occupies [begin, end) of it, row-major, little-endian
//
// Everything in a file is checked before any tensor is handed out, so a bad file ends in an
// xlc::Error that names the file, the tensor and what was expected, never in an out-of-bounds read:
// header length within the file and at most kMaxHeaderSize; the header valid UTF-8 JSON, an object,
// without duplicate keys; every tensor entry with a known dtype, a shape of non-negative integers
// whose product fits, data_offsets with begin <= end inside the data buffer and end - begin equal
// to product(shape) * dtype size; no two tensors overlapping. Unused bytes (gaps between tensors,
// bytes after the last) are allowed, as other readers allow them, and reported as warnings.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_WEIGHTS_SAFETENSORS_H
#define XLC_RUNTIME_WEIGHTS_SAFETENSORS_H

#include "runtime/support/MappedFile.h"
#include "runtime/weights/DType.h"

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::weights {

/// The reference implementation's cap on the JSON header; a larger length is a corrupt file.
inline constexpr std::uint64_t kMaxHeaderSize = 100'000'000;

/// The reserved header key that holds string-to-string metadata instead of a tensor.
inline constexpr std::string_view kMetadataKey = "__metadata__";

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t numElements = 0;
  std::uint64_t byteSize = 0;
  std::uint64_t begin = 0; ///< offset of the first byte within the data buffer
  std::uint64_t end = 0;   ///< one past the last byte within the data buffer
  std::size_t file = 0;    ///< which file of a Checkpoint holds it (0 for a single file)
};

/// "[2048, 4096]"
std::string shapeString(std::span<const std::int64_t> shape);

/// A validated header of one file.
struct SafetensorsHeader {
  std::uint64_t headerSize = 0;    ///< N
  std::uint64_t dataOffset = 0;    ///< 8 + N, where the data buffer starts in the file
  std::uint64_t dataSize = 0;      ///< bytes from dataOffset to the end of the file
  std::vector<TensorInfo> tensors; ///< sorted by name (byte order)
  std::map<std::string, std::string> metadata;
  std::vector<std::string> warnings; ///< harmless oddities: unused bytes, unknown entry fields
};

/// Parses and validates the header of the safetensors file whose complete contents are |file|.
/// |label| (usually the path) starts every error message. Throws xlc::Error on any defect.
SafetensorsHeader parseSafetensorsHeader(std::span<const std::uint8_t> file,
                                         std::string_view label);

/// One memory-mapped, validated safetensors file.
class SafetensorsFile {
public:
  /// Maps and validates |path|; throws xlc::Error naming the path and the defect.
  static SafetensorsFile open(const std::string &path);

  const std::string &path() const { return file_.path(); }
  const SafetensorsHeader &header() const { return header_; }
  const std::vector<TensorInfo> &tensors() const { return header_.tensors; }
  const std::map<std::string, std::string> &metadata() const { return header_.metadata; }

  /// nullptr when the file has no tensor of that name.
  const TensorInfo *find(std::string_view name) const;

  /// The bytes of a tensor of this file (validated to lie inside the mapping).
  std::span<const std::uint8_t> data(const TensorInfo &tensor) const;

  std::uint64_t fileSize() const { return file_.size(); }

private:
  MappedFile file_;
  SafetensorsHeader header_;
};

/// Binary search in a name-sorted tensor list; nullptr when absent.
const TensorInfo *findTensor(std::span<const TensorInfo> sortedByName, std::string_view name);

} // namespace xlc::weights

#endif // XLC_RUNTIME_WEIGHTS_SAFETENSORS_H
