//===- DynamicLibrary.h - dlopen'ed shared libraries -------------*- C++ -*-===//
//
// The runtime never links against libcuda or libnvrtc: binaries must start, and tests must skip
// cleanly, on machines without a driver. Both are loaded with dlopen and their entry points
// resolved by name into a table of function pointers (DriverApi.h, NvrtcApi.h).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_CUDA_DYNAMICLIBRARY_H
#define XLC_RUNTIME_CUDA_DYNAMICLIBRARY_H

#include <span>
#include <string>
#include <vector>

namespace xlc::cuda {

/// An open shared library (RAII around dlopen/dlclose). Move-only.
class DynamicLibrary {
public:
  DynamicLibrary() = default;
  DynamicLibrary(DynamicLibrary &&other) noexcept;
  DynamicLibrary &operator=(DynamicLibrary &&other) noexcept;
  DynamicLibrary(const DynamicLibrary &) = delete;
  DynamicLibrary &operator=(const DynamicLibrary &) = delete;
  ~DynamicLibrary();

  /// Opens the first of |candidates| (file names or paths) that dlopen accepts. Throws
  /// xlc::Error naming |what|, every candidate tried and dlerror()'s reason for each.
  static DynamicLibrary open(std::span<const std::string> candidates, const std::string &what);

  /// The address of |symbol|, or nullptr if the library does not export it.
  void *symbol(const char *symbol) const;

  bool isOpen() const { return handle_ != nullptr; }
  /// The candidate that was opened.
  const std::string &path() const { return path_; }

private:
  void *handle_ = nullptr;
  std::string path_;
};

} // namespace xlc::cuda

#endif // XLC_RUNTIME_CUDA_DYNAMICLIBRARY_H
