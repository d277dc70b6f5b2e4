//===- DriverTest.cpp - The dlopen'ed driver and NVRTC layer -------------===//
//
// Runs everywhere. On a machine without a driver (this development machine has only the link
// stub: dlopen("libcuda.so.1") fails, or cuInit returns CUDA_ERROR_STUB_LIBRARY) the layer must
// say so cleanly; on the GPU machine the same tests check the device opens. With XLC_REQUIRE_GPU
// set (the GPU scripts), no driver and no libnvrtc are failures, not skips (GpuSkip.h).
//
//===----------------------------------------------------------------------===//
#include "runtime/cuda/Device.h"
#include "runtime/cuda/DriverApi.h"
#include "runtime/cuda/DynamicLibrary.h"
#include "runtime/cuda/Nvrtc.h"
#include "runtime/support/Error.h"
#include "test/gpu/harness/GpuSkip.h"

#include <gtest/gtest.h>

namespace {

using xlc::cuda::DynamicLibrary;

TEST(DynamicLibrary, MissingLibraryNamesEveryCandidate) {
  const std::vector<std::string> candidates = {"libxlc-missing-a.so.1", "/nonexistent/libb.so"};
  try {
    DynamicLibrary::open(candidates, "a test library");
    FAIL() << "expected xlc::Error";
  } catch (const xlc::Error &e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("cannot load a test library"), std::string::npos) << message;
    EXPECT_NE(message.find("libxlc-missing-a.so.1"), std::string::npos) << message;
    EXPECT_NE(message.find("/nonexistent/libb.so"), std::string::npos) << message;
  }
}

// The X-macro resolver names the first entry point a library lacks.
TEST(DynamicLibrary, ResolverNamesMissingDriverSymbol) {
  const std::vector<std::string> libm = {"libm.so.6"};
  DynamicLibrary library = DynamicLibrary::open(libm, "libm");
  EXPECT_NE(library.symbol("cos"), nullptr);
  EXPECT_EQ(library.symbol("cuInit"), nullptr);
  try {
    xlc::cuda::resolveDriverApi(library);
    FAIL() << "expected xlc::Error";
  } catch (const xlc::Error &e) {
    EXPECT_NE(std::string(e.what()).find("does not export cuGetErrorName"), std::string::npos)
        << e.what();
  }
}

TEST(Driver, AvailabilityIsReportedCleanly) {
  std::string reason;
  const bool available = xlc::cuda::cudaAvailable(&reason);
  const xlc::cuda::DriverStatus &status = xlc::cuda::driverStatus();
  EXPECT_EQ(available, status.available);
  if (!available) {
    if (xlc::test::gpuRequired())
      ADD_FAILURE() << "XLC_REQUIRE_GPU is set, but CUDA is unavailable: " << reason;
    std::printf("CUDA unavailable (expected without a GPU): %s\n", reason.c_str());
    EXPECT_FALSE(reason.empty());
    EXPECT_TRUE(reason.find("libcuda.so.1") != std::string::npos ||
                reason.find("cuInit") != std::string::npos ||
                reason.find("no device") != std::string::npos)
        << reason;
    try {
      xlc::cuda::driver();
      FAIL() << "driver() must throw when CUDA is unavailable";
    } catch (const xlc::Error &e) {
      EXPECT_NE(std::string(e.what()).find("CUDA is not available"), std::string::npos);
    }
    EXPECT_THROW(xlc::cuda::CudaDevice::open(0), xlc::Error);
  } else {
    xlc::cuda::CudaDevice device = xlc::cuda::CudaDevice::open(0);
    std::printf("device: %s\n", device.summary().c_str());
    EXPECT_FALSE(device.name().empty());
    EXPECT_GT(device.smCount(), 0);
    xlc::cuda::DeviceBuffer buffer(64);
    const std::vector<uint8_t> in(64, 7);
    std::vector<uint8_t> out(64, 0);
    buffer.upload(in.data(), in.size());
    buffer.download(out.data(), out.size());
    EXPECT_EQ(in, out);
  }
}

TEST(Driver, ErrorsCarryCallLocationAndName) {
  try {
    XLC_CU_CHECK(CUDA_ERROR_INVALID_VALUE);
    FAIL() << "expected xlc::Error";
  } catch (const xlc::Error &e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("CUDA_ERROR_INVALID_VALUE failed at test/runtime/cuda/DriverTest.cpp:"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find(": CUDA_ERROR_INVALID_VALUE (1)"), std::string::npos) << message;
  }
  EXPECT_NO_THROW(XLC_CU_CHECK(CUDA_SUCCESS));
}

TEST(Nvrtc, LoadsOrSaysWhy) {
  std::string reason;
  if (!xlc::cuda::Nvrtc::available(&reason))
    XLC_SKIP_OR_FAIL("libnvrtc cannot be loaded: " << reason);
  const auto [major, minor] = xlc::cuda::Nvrtc::instance().version();
  std::printf("NVRTC %d.%d from %s\n", major, minor,
              xlc::cuda::Nvrtc::instance().libraryPath().c_str());
  EXPECT_GE(major, 12);
}

TEST(Nvrtc, CompileErrorCarriesTheLog) {
  std::string reason;
  if (!xlc::cuda::Nvrtc::available(&reason))
    XLC_SKIP_OR_FAIL("libnvrtc cannot be loaded: " << reason);
  const std::string source = "extern \"C\" __global__ void k() { this_is_not_declared = 1; }\n";
  const auto options = xlc::cuda::Nvrtc::defaultOptions("sm_90a");
  try {
    xlc::cuda::Nvrtc::instance().compile(source, "broken.cu", options, {});
    FAIL() << "expected xlc::Error";
  } catch (const xlc::Error &e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("NVRTC failed to compile broken.cu"), std::string::npos) << message;
    EXPECT_NE(message.find("NVRTC_ERROR_COMPILATION"), std::string::npos) << message;
    EXPECT_NE(message.find("this_is_not_declared"), std::string::npos) << message;
  }
}

TEST(Nvrtc, InMemoryHeaders) {
  std::string reason;
  if (!xlc::cuda::Nvrtc::available(&reason))
    XLC_SKIP_OR_FAIL("libnvrtc cannot be loaded: " << reason);
  const xlc::cuda::NvrtcHeader header{"xlc/test/value.cuh", "constexpr int kValue = 42;\n"};
  const std::string source = "#include \"xlc/test/value.cuh\"\n"
                             "extern \"C\" __global__ void k(int *out) { *out = kValue; }\n";
  std::vector<char> cubin = xlc::cuda::Nvrtc::instance().compile(
      source, "headers.cu", xlc::cuda::Nvrtc::defaultOptions("sm_90a"), {&header, 1});
  EXPECT_GT(cubin.size(), 0u);
}

} // namespace
