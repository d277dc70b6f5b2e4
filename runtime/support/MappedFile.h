//===- MappedFile.h - Read-only memory-mapped files -------------*- C++ -*-===//
//
// A whole file mapped read-only. Checkpoints are tens of gigabytes: mapping lets the loader touch
// only what it converts and lets the kernel page it in. Move-only; unmaps on destruction.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_SUPPORT_MAPPEDFILE_H
#define XLC_RUNTIME_SUPPORT_MAPPEDFILE_H

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace xlc {

class MappedFile {
public:
  /// Maps |path|; throws xlc::Error naming the path and the OS reason on failure.
  /// An empty file maps to an empty span.
  static MappedFile open(const std::string &path);

  MappedFile() = default;
  MappedFile(MappedFile &&other) noexcept;
  MappedFile &operator=(MappedFile &&other) noexcept;
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;
  ~MappedFile();

  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
  const std::uint8_t *data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string &path() const { return path_; }

private:
  void reset();

  const std::uint8_t *data_ = nullptr;
  std::size_t size_ = 0;
  std::string path_;
};

/// Reads a whole file into a string; throws xlc::Error naming the path on failure.
std::string readFile(const std::string &path);

/// Writes |bytes| to |path| atomically: a temporary file in the same directory is written, flushed
/// to disk and renamed over |path|, so a crash leaves either the old file or the new one.
void writeFileAtomically(const std::string &path, std::span<const std::uint8_t> bytes);

} // namespace xlc

#endif // XLC_RUNTIME_SUPPORT_MAPPEDFILE_H
