//===- ArtifactDirs.h - Where the GPU tests find the repository and artifacts -*- C++ -*-===//
//
// The GPU machine runs binaries built elsewhere (scripts/gpu-bundle.sh) on artifacts compiled
// elsewhere, so both places can be given: $XLC_REPO_DIR (models/*/config.json) and
// $XLC_GPU_ARTIFACTS (<model>.xlca).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_GPU_HARNESS_ARTIFACTDIRS_H
#define XLC_TEST_GPU_HARNESS_ARTIFACTDIRS_H

#include <cstdlib>
#include <filesystem>

namespace xlc::test {

/// The repository root: $XLC_REPO_DIR (binaries built elsewhere and carried to the GPU machine),
/// else the source tree this binary was built from.
inline std::filesystem::path repoDir() {
  if (const char *dir = std::getenv("XLC_REPO_DIR"); dir && *dir)
    return dir;
  return XLC_SOURCE_DIR;
}

/// The compiled models: $XLC_GPU_ARTIFACTS, else <repository>/.artifacts.
inline std::filesystem::path artifactDir() {
  if (const char *dir = std::getenv("XLC_GPU_ARTIFACTS"); dir && *dir)
    return dir;
  return repoDir() / ".artifacts";
}

} // namespace xlc::test

#endif // XLC_TEST_GPU_HARNESS_ARTIFACTDIRS_H
