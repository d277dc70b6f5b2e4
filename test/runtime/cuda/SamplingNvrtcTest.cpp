//===- SamplingNvrtcTest.cpp - The runtime's sampling kernels compile ------===//
//
// Verification ladder step 3 for the one kernel the runtime owns (not the artifact): the exact
// translation units DeviceSampler compiles at start (runtime/exec/cuda/DeviceSampler.h, over
// runtime/device/sampling.cuh), for fp32 and bf16 logits, compiled by NVRTC to CUBIN for sm_90a
// against the embedded device headers, through the same KernelCache entry point the backend
// uses (with the disk cache off). No GPU needed; skipped (with the reason) only when libnvrtc
// cannot be loaded, and failed instead when XLC_REQUIRE_GPU is set. ptxas's register and spill
// report is printed.
//
//===----------------------------------------------------------------------===//
#include "runtime/cuda/Nvrtc.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/exec/cuda/DeviceSampler.h"
#include "test/gpu/harness/GpuSkip.h"

#include <gtest/gtest.h>

#include <regex>

namespace {

using xlc::artifact::DType;
using xlc::exec::DeviceSampler;

TEST(SamplingNvrtc, RuntimeKernelsCompileForSm90a) {
  std::string reason;
  if (!xlc::cuda::Nvrtc::available(&reason))
    XLC_SKIP_OR_FAIL("libnvrtc cannot be loaded: " << reason);
  for (DType dtype : {DType::F32, DType::BF16}) {
    const xlc::artifact::Kernel kernel = DeviceSampler::kernel(dtype);
    // What KernelCache::get adds to the kernel's options, plus ptxas's report.
    std::vector<std::string> options = kernel.options;
    options.push_back("--gpu-architecture=sm_90a");
    options.push_back("--include-path=" + xlc::cuda::Nvrtc::cudaIncludeDir());
    options.emplace_back("--ptxas-options=-v");
    std::vector<xlc::cuda::NvrtcHeader> headers;
    for (const xlc::device::EmbeddedHeader &h : xlc::device::embeddedHeaders())
      headers.push_back({h.name, h.text});
    std::string log;
    std::vector<char> cubin;
    ASSERT_NO_THROW(cubin = xlc::cuda::Nvrtc::instance().compile(kernel.source, kernel.name + ".cu",
                                                                 options, headers, &log))
        << kernel.source;
    ASSERT_GE(cubin.size(), 4u);
    EXPECT_EQ(std::string(cubin.data() + 1, 3), "ELF");
    std::smatch regs, spills;
    ASSERT_TRUE(std::regex_search(log, regs, std::regex(R"(Used (\d+) registers)"))) << log;
    ASSERT_TRUE(std::regex_search(
        log, spills, std::regex(R"((\d+) bytes spill stores, (\d+) bytes spill loads)")))
        << log;
    std::printf("%-20s %7zu bytes cubin, %s registers, %s bytes spill stores\n",
                kernel.name.c_str(), cubin.size(), regs[1].str().c_str(),
                spills[1].str().c_str());
    // The cache path the backend takes compiles the same source (disk cache disabled).
    const xlc::exec::CompiledCubin viaCache = xlc::exec::KernelCache("").get(kernel, "sm_90a");
    EXPECT_FALSE(viaCache.fromCache);
    EXPECT_GT(viaCache.cubin.size(), 0u);
  }
}

} // namespace
