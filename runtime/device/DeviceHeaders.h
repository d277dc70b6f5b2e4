//===- DeviceHeaders.h - The device-header library, embedded -----*- C++ -*-===//
//
// The hand-written CUDA headers of runtime/device/*.cuh travel inside the runtime: CMake turns
// them into string literals at build time (EmbedHeaders.cmake) and NVRTC receives them as
// in-memory headers, so a kernel translation unit can `#include "xlc/device/rms_norm.cuh"` on a
// machine that has no source tree. headerHash() identifies the exact set of texts; the kernel
// cache key includes it, so editing any header invalidates every cached kernel.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_DEVICE_DEVICEHEADERS_H
#define XLC_RUNTIME_DEVICE_DEVICEHEADERS_H

#include <span>
#include <string_view>

namespace xlc::device {

/// One header: its include name ("xlc/device/common.cuh") and its full text (NUL-terminated).
struct EmbeddedHeader {
  std::string_view name;
  std::string_view text;
};

/// Every header of the library, sorted by name.
std::span<const EmbeddedHeader> embeddedHeaders();

/// The header named |includeName|, or nullptr.
const EmbeddedHeader *findEmbeddedHeader(std::string_view includeName);

/// SHA-256 (64 lowercase hex digits) over the sorted headers' names, lengths and texts.
std::string_view headerHash();

} // namespace xlc::device

#endif // XLC_RUNTIME_DEVICE_DEVICEHEADERS_H
