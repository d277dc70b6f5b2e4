//===- KernelCache.h - NVRTC compilation with a disk cache -------*- C++ -*-===//
//
// Compiling the 7B's kernels with NVRTC takes seconds (the mLSTM kernels 1.5-3 s each); a second
// run of the same artifact must be ready in well under 2 s. Every CUBIN is therefore cached on
// disk under a key that spells out everything that changes the binary:
//
//   the cache format version, the runtime version, NVRTC's version, the target architecture,
//   the NVRTC options, the device-header hash (the embedded .cuh library), the entry point and
//   the kernel's full source text.
//
// The file name is a 64-bit FNV-1a hash of that key; the file stores the whole key and a checksum
// of the CUBIN, so a hash collision, a truncated or a corrupted file is detected and the kernel is
// recompiled (and the file replaced) instead of loading a wrong binary. Files are written to a
// temporary name and renamed, so concurrent runs never see half a file.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_KERNELCACHE_H
#define XLC_RUNTIME_EXEC_CUDA_KERNELCACHE_H

#include "runtime/artifact/Artifact.h"

#include <cstdint>
#include <string>
#include <vector>

namespace xlc::exec {

/// The default cache directory: $XLC_CACHE_DIR, else $XDG_CACHE_HOME/xlc/kernels, else
/// $HOME/.cache/xlc/kernels ("" when none of them is set).
std::string defaultKernelCacheDir();

struct CompiledCubin {
  std::vector<char> cubin;
  bool fromCache = false;
  double compileSeconds = 0; ///< NVRTC time (0 for a cache hit)
};

class KernelCache {
public:
  /// |directory| empty disables the disk cache (every kernel is compiled).
  explicit KernelCache(std::string directory);

  const std::string &directory() const { return directory_; }

  /// The cache key text of |kernel| compiled for |arch| (see the file comment).
  static std::string keyOf(const artifact::Kernel &kernel, const std::string &arch,
                           std::string_view deviceHeadersHash);

  /// The CUBIN of |kernel| for |arch|: from the cache when a valid entry exists, else compiled
  /// with NVRTC over the embedded device headers and stored. Thread-safe for distinct kernels.
  CompiledCubin get(const artifact::Kernel &kernel, const std::string &arch) const;

private:
  std::string directory_;
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_KERNELCACHE_H
