//===- Checkpoint.h - A model's safetensors weights, one file or sharded -*- C++ -*-===//
//
// Hugging Face publishes weights either as one `model.safetensors` or as shards listed by
// `model.safetensors.index.json`:
//
//   { "metadata": { "total_size": <bytes> }, "weight_map": { "<tensor>": "<shard file>", ... } }
//
// Checkpoint::open accepts a directory (and picks whichever is present, the single file first,
// as transformers does), a .safetensors file, or an index file. Every shard is mapped and fully
// validated (Safetensors.h), and the index is checked against the shards: each listed shard
// exists and is a plain file name in the index's directory, each listed tensor is in the shard
// the index names, no tensor is in two shards, and no shard holds a tensor the index omits.
// All index problems are collected and reported in one error.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_WEIGHTS_CHECKPOINT_H
#define XLC_RUNTIME_WEIGHTS_CHECKPOINT_H

#include "runtime/weights/Safetensors.h"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::weights {

inline constexpr std::string_view kSingleFileName = "model.safetensors";
inline constexpr std::string_view kIndexFileName = "model.safetensors.index.json";

class Checkpoint {
public:
  enum class Layout { SingleFile, Sharded };

  /// Opens and validates a checkpoint directory, .safetensors file or index file.
  static Checkpoint open(const std::string &path);

  Layout layout() const { return layout_; }
  /// The file that was opened: the .safetensors file or the index.
  const std::string &path() const { return path_; }
  /// The directory holding path() (where config.json usually is).
  const std::string &directory() const { return directory_; }

  /// The mapped files; TensorInfo::file indexes this list.
  const std::vector<SafetensorsFile> &files() const { return files_; }
  /// Every tensor of every file, sorted by name.
  const std::vector<TensorInfo> &tensors() const { return tensors_; }
  /// Harmless oddities found while validating (unused bytes, index total_size mismatch, ...).
  const std::vector<std::string> &warnings() const { return warnings_; }

  /// nullptr when absent.
  const TensorInfo *find(std::string_view name) const;
  /// Throws xlc::Error naming the checkpoint and the tensor when absent.
  const TensorInfo &get(std::string_view name) const;
  /// The path of the file that holds |tensor|.
  const std::string &fileOf(const TensorInfo &tensor) const;

  /// The stored bytes of |tensor| (little-endian elements of tensor.dtype).
  std::span<const std::uint8_t> rawData(const TensorInfo &tensor) const;

  /// Reads a tensor as float32 into |out| (exact from F32, BF16, F16); |out| must hold exactly
  /// numElements values. Throws naming the tensor when the dtype or size does not fit.
  void readF32(const TensorInfo &tensor, std::span<float> out) const;
  void readF32(std::string_view name, std::span<float> out) const { readF32(get(name), out); }
  std::vector<float> readF32(std::string_view name) const;

  /// Reads a tensor as bf16 bit patterns into |out| (F32/F16 rounded to nearest even).
  void readBF16(const TensorInfo &tensor, std::span<std::uint16_t> out) const;
  void readBF16(std::string_view name, std::span<std::uint16_t> out) const {
    readBF16(get(name), out);
  }

  /// Calls |visit| for every tensor in storage order (file by file, by offset), which reads the
  /// files sequentially, and shows progress (Progress.h) under |label|.
  void
  forEachTensor(const std::function<void(const TensorInfo &, std::span<const std::uint8_t>)> &visit,
                std::string_view label = "reading weights") const;

  std::uint64_t totalBytes() const;      ///< sum of the tensors' byte sizes
  std::uint64_t totalParameters() const; ///< sum of the tensors' element counts

private:
  static Checkpoint openSingle(const std::string &file);
  static Checkpoint openSharded(const std::string &index);

  Layout layout_ = Layout::SingleFile;
  std::string path_, directory_;
  std::vector<SafetensorsFile> files_;
  std::vector<TensorInfo> tensors_;
  std::vector<std::string> warnings_;
};

} // namespace xlc::weights

#endif // XLC_RUNTIME_WEIGHTS_CHECKPOINT_H
