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
// Trust: a cache entry is machine code that is loaded onto the GPU and run. The key and the
// checksum detect accidents (collisions, truncation, stale entries), not an adversary: anyone who
// can write into the directory can write an entry with the right key and checksum. The cache is
// therefore trusted only because its directory is private. The default is a per-user directory
// ($XDG_CACHE_HOME/xlc/kernels, else ~/.cache/xlc/kernels), and every directory, the default or
// one given ($XLC_CACHE_DIR, --kernel-cache), is checked before use (checkPrivateCacheDir):
// created with mode 0700 when absent; refused when it is not a directory, is not owned by this
// user, is writable by group or others, or sits below a directory that another user could
// change (one not owned by root or this user, or writable by group or others without the sticky
// bit, as /tmp has). A refused directory disables the disk cache for the run with one warning
// on stderr (kernels are then compiled every time; a cache is an optimisation, never a reason
// for a run to fail), and the warning says how to fix it.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_KERNELCACHE_H
#define XLC_RUNTIME_EXEC_CUDA_KERNELCACHE_H

#include "runtime/artifact/Artifact.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::exec {

/// The default cache directory: $XLC_CACHE_DIR, else $XDG_CACHE_HOME/xlc/kernels, else
/// $HOME/.cache/xlc/kernels ("" when none of them is set).
std::string defaultKernelCacheDir();

/// Makes |directory| ready to serve as a private kernel cache (see the file comment): creates it
/// with mode 0700 (and its missing parents with the default mode) when it does not exist, then
/// checks it and every directory above it. Returns the directory's canonical path, which the
/// cache then uses (so a symbolic link on the way cannot be re-pointed later), or throws
/// xlc::Error saying why the directory cannot be trusted or created.
std::string checkPrivateCacheDir(const std::string &directory);

/// A kernel the runtime itself owns (not the artifact's: DeviceSampler's, ...), in the form of
/// every emitted kernel (runtime/kernels/Registry.cpp renderKernel): the family header
/// "xlc/device/<header>.cuh", `using Config = <config>;`, one extern "C" entry `xlc_kernel`
/// taking xlc::device::<params> by value and calling xlc::device::<function><Config>; options
/// --std=c++17; |threads| per block. Compiled through KernelCache like the artifact's kernels.
artifact::Kernel runtimeKernel(std::string name, std::string family, std::string_view header,
                               std::string_view config, std::string_view params,
                               std::string_view function, unsigned threads);

struct CompiledCubin {
  std::vector<char> cubin;
  bool fromCache = false;
  double compileSeconds = 0; ///< NVRTC time (0 for a cache hit)
};

class KernelCache {
public:
  /// |directory| empty disables the disk cache (every kernel is compiled). A directory that
  /// checkPrivateCacheDir() refuses disables it too, with one warning on stderr.
  explicit KernelCache(std::string directory);

  /// The canonical cache directory in use; empty when the disk cache is disabled.
  const std::string &directory() const { return directory_; }
  /// Why a requested directory is not used (empty when it is, or when none was requested).
  const std::string &disabledReason() const { return disabledReason_; }

  /// The cache key text of |kernel| compiled for |arch| (see the file comment).
  static std::string keyOf(const artifact::Kernel &kernel, const std::string &arch,
                           std::string_view deviceHeadersHash);

  /// The CUBIN of |kernel| for |arch|: from the cache when a valid entry exists, else compiled
  /// with NVRTC over the embedded device headers and stored. Thread-safe for distinct kernels.
  CompiledCubin get(const artifact::Kernel &kernel, const std::string &arch) const;

private:
  std::string directory_;
  std::string disabledReason_;
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_KERNELCACHE_H
