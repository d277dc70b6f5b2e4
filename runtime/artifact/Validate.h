//===- Validate.h - Checking an artifact before running it ------*- C++ -*-===//
//
// Two levels, both throwing xlc::Error "<source>: <item>: <what is wrong>":
//
//   validateStructure  everything that holds or fails independently of the batch and sequence
//                      limits: references in range, buffer ids dense, names unique, shapes
//                      positive and affine, launch arguments against kernel parameters, GEMM
//                      operand shapes against m/n/k, weight bindings concatenating to their
//                      buffer, arena offsets 256-aligned for every B and S, attrs finite.
//                      parseArtifact and serialize run it.
//
//   validate           validateStructure plus the checks at the runtime's limits
//                      1 ≤ B ≤ maxBatch, 1 ≤ S ≤ maxSeq: no expression overflows u64, launch grids
//                      are non-empty and within CUDA's limits, copies fit their buffers, arena
//                      buffers lie inside the arena, and arena buffers live at the same time do
//                      not overlap. The runtime calls it once after loading.
//
// checkDeviceArch compares the artifact's target with the device's compute capability.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_ARTIFACT_VALIDATE_H
#define XLC_RUNTIME_ARTIFACT_VALIDATE_H

#include "runtime/artifact/Artifact.h"

#include <cstdint>
#include <optional>
#include <string_view>

namespace xlc::artifact {

void validateStructure(const Artifact &artifact);

void validate(const Artifact &artifact, std::uint64_t maxBatch, std::uint64_t maxSeq);

/// A parsed target architecture "sm_<major><minor>[a]".
struct TargetArch {
  int major = 0, minor = 0;
  bool archSpecific = false; ///< the "a" suffix: features (wgmma, setmaxnreg) of exactly this arch
};
std::optional<TargetArch> parseTargetArch(std::string_view arch);

/// Throws unless kernels built for the artifact's target run on a device of compute capability
/// major.minor: an arch-specific target ("sm_90a") needs exactly that capability, a plain one
/// ("sm_80") the same major version and at least its minor version.
void checkDeviceArch(const Artifact &artifact, int deviceMajor, int deviceMinor);

} // namespace xlc::artifact

#endif // XLC_RUNTIME_ARTIFACT_VALIDATE_H
