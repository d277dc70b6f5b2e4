//===- SafetensorsWriter.h - Writing safetensors files ----------*- C++ -*-===//
//
// Writes the format described in Safetensors.h the way the reference implementation does: the
// JSON header ("__metadata__" first, then the tensors in data order) padded with spaces so the
// data buffer starts at a multiple of 8, tensors packed without gaps and ordered by decreasing
// element size, then name, so every tensor starts aligned to its element size.
//
// Files are written atomically: into a temporary file in the same directory, flushed with fsync,
// renamed over the target, and the directory flushed, so a crash leaves the old file or the new
// one, never a torn checkpoint. Tensor data is streamed from the caller's buffers, not copied.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_WEIGHTS_SAFETENSORSWRITER_H
#define XLC_RUNTIME_WEIGHTS_SAFETENSORSWRITER_H

#include "runtime/weights/DType.h"

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace xlc::weights {

/// One tensor to write; |data| (numElements * dtypeSize bytes, little-endian) must stay alive
/// until the write returns.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::span<const std::uint8_t> data;
};

using SafetensorsMetadata = std::map<std::string, std::string>;

/// The complete file contents in memory (for tests and small files).
std::vector<std::uint8_t> serializeSafetensors(std::span<const TensorToWrite> tensors,
                                               const SafetensorsMetadata &metadata = {});

/// Writes one safetensors file atomically. Throws xlc::Error naming the tensor on a bad name
/// (empty, "__metadata__", repeated, not UTF-8), a negative extent, or a data size that does not
/// match the shape, and naming the path on an I/O failure (the target is left untouched).
void writeSafetensors(const std::string &path, std::span<const TensorToWrite> tensors,
                      const SafetensorsMetadata &metadata = {});

/// Writes |tensors| into |directory| as transformers does for large models: shards
/// `model-00001-of-0000N.safetensors` of at most |maxShardBytes| of tensor data each (a larger
/// tensor gets a shard of its own), filled in name order, each carrying |metadata|, plus
/// `model.safetensors.index.json` with metadata.total_size and the weight_map. Returns the
/// shard file names.
std::vector<std::string> writeShardedSafetensors(const std::string &directory,
                                                 std::span<const TensorToWrite> tensors,
                                                 std::uint64_t maxShardBytes,
                                                 const SafetensorsMetadata &metadata = {});

} // namespace xlc::weights

#endif // XLC_RUNTIME_WEIGHTS_SAFETENSORSWRITER_H
