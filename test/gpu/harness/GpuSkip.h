//===- GpuSkip.h - A GPU test's skip, or a failure where a GPU is required -*- C++ -*-===//
//
// Tests that need a GPU, a driver, libnvrtc or compiled artifacts SKIP (with the reason) where
// those are missing: that is what CI without a GPU expects. On the GPU machine the same skip would
// hide a broken setup (no artifacts, NVRTC not found) behind a green summary, so the GPU scripts
// (test/gpu/run_on_gpu.sh, test/gpu/run_bundle.sh) export XLC_REQUIRE_GPU=1, which turns each
// such skip into a fatal failure that carries the same reason:
//
//   if (!cuda::cudaAvailable(&reason))
//     XLC_SKIP_OR_FAIL("no GPU: " << reason);
//
// XLC_REQUIRE_GPU unset, empty or "0": skip; any other value: fail. The failure is fatal (like
// FAIL()), so a skip point in a fixture's SetUp() keeps the test body from running either way.
// Use it only for GPU-dependent skips; other skips (e.g. a slow case under a sanitizer) stay
// GTEST_SKIP().
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_GPU_HARNESS_GPUSKIP_H
#define XLC_TEST_GPU_HARNESS_GPUSKIP_H

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace xlc::test {

/// True when $XLC_REQUIRE_GPU is set to a non-empty value other than "0".
inline bool gpuRequired() {
  const char *value = std::getenv("XLC_REQUIRE_GPU");
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
}

} // namespace xlc::test

/// Skips the current test with |reason|, or fails it fatally when XLC_REQUIRE_GPU is set (see
/// the file comment). Returns from the enclosing function either way, so use it in functions
/// returning void (test bodies, SetUp()). |reason| is pasted after "<<" unparenthesised on
/// purpose, so it may itself be a chain: XLC_SKIP_OR_FAIL("no artifact " << path).
#define XLC_SKIP_OR_FAIL(reason)                                                               \
  do {                                                                                         \
    if (::xlc::test::gpuRequired())                                                            \
      FAIL() << "XLC_REQUIRE_GPU is set, so this skip is a failure: " << reason;               \
    else                                                                                       \
      GTEST_SKIP() << reason;                                                                  \
  } while (false)

namespace xlc::test {
class GpuBackend;
GpuBackend *sharedGpuBackend(std::string *reason); // harness/GpuBackend.h
} // namespace xlc::test

/// In a GPU test body: `GpuBackend &be` is the process's shared harness backend
/// (sharedGpuBackend), or the test skips -- fails under XLC_REQUIRE_GPU -- with the reason.
#define XLC_REQUIRE_GPU_BACKEND(be)                                                            \
  std::string be##Reason;                                                                      \
  ::xlc::test::GpuBackend *be##Ptr = ::xlc::test::sharedGpuBackend(&be##Reason);               \
  if (be##Ptr == nullptr)                                                                      \
    XLC_SKIP_OR_FAIL("no usable GPU: " << be##Reason);                                         \
  ::xlc::test::GpuBackend &be = *be##Ptr

#endif // XLC_TEST_GPU_HARNESS_GPUSKIP_H
