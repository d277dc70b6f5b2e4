//===- Nvrtc.h - NVRTC, loaded with dlopen ------------------------*- C++ -*-===//
//
// Run-time compilation of CUDA C++ to CUBIN. Needs no GPU and no driver: only libnvrtc (tried as
// $XLC_NVRTC_LIBRARY, libnvrtc.so.13, libnvrtc.so, then the same names in the toolkit's library
// directory) and the toolkit's include directory for cuda_bf16.h (NVRTC 13 has no built-in
// fp16/bf16 headers). The xlc device headers are handed over in memory (NvrtcHeader), so a kernel
// translation unit includes "xlc/device/<family>.cuh" without any file on disk.
//
// Every nvrtcResult goes through XLC_NVRTC_CHECK (xlc::Error with the call, file:line and the
// error name); a failed compilation's error carries NVRTC's full log.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_CUDA_NVRTC_H
#define XLC_RUNTIME_CUDA_NVRTC_H

#include "runtime/cuda/DynamicLibrary.h"

#include <nvrtc.h>

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xlc::cuda {

/// The resolved NVRTC entry points (NvrtcSymbols.inc).
struct NvrtcApi {
#define XLC_NVRTC_SYMBOL(name) decltype(&::name) name = nullptr;
#include "runtime/cuda/NvrtcSymbols.inc"
#undef XLC_NVRTC_SYMBOL
};

/// An in-memory header: the name a translation unit #includes, and its text.
struct NvrtcHeader {
  std::string_view name;
  std::string_view text;
};

class Nvrtc {
public:
  /// The process-wide instance; throws xlc::Error (every library tried, with reasons) if libnvrtc
  /// cannot be loaded or lacks an entry point.
  static const Nvrtc &instance();

  /// True iff instance() would succeed; *reason says why not.
  static bool available(std::string *reason = nullptr);

  /// The library names tried, in order.
  static std::vector<std::string> libraryCandidates();

  /// The CUDA include directory holding cuda_bf16.h: $XLC_CUDA_INCLUDE_DIR, $CUDA_HOME/include,
  /// $CUDA_PATH/include, the toolkit found at build time, /usr/local/cuda/include. Throws if none.
  static std::string cudaIncludeDir();

  /// {"--gpu-architecture=<arch>", "--std=c++17", "--include-path=<cudaIncludeDir()>"}.
  static std::vector<std::string> defaultOptions(std::string_view arch = "sm_90a");

  const NvrtcApi &api() const { return api_; }
  /// (major, minor), e.g. (13, 0).
  std::pair<int, int> version() const { return version_; }
  const std::string &libraryPath() const { return library_.path(); }

  /// Compiles |source| (the translation unit's name is |name|, used in diagnostics) to CUBIN
  /// for the architecture named in |options|. Throws xlc::Error with NVRTC's log on failure;
  /// stores the log (warnings, ptxas -v output) in *log on success if given.
  std::vector<char> compile(std::string_view source, std::string_view name,
                            std::span<const std::string> options,
                            std::span<const NvrtcHeader> headers, std::string *log = nullptr) const;

private:
  friend struct NvrtcLoader;
  Nvrtc() = default;
  DynamicLibrary library_;
  NvrtcApi api_;
  std::pair<int, int> version_{0, 0};
};

/// Throws xlc::Error("<call> failed at <file>:<line>: <NVRTC error name>") unless NVRTC_SUCCESS.
void checkNvrtc(nvrtcResult result, const char *call, const char *file, int line);

} // namespace xlc::cuda

#define XLC_NVRTC_CHECK(call) ::xlc::cuda::checkNvrtc((call), #call, __FILE__, __LINE__)

#endif // XLC_RUNTIME_CUDA_NVRTC_H
