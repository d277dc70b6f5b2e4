//===- RuntimeKernelsNvrtcTest.cpp - The runtime's own kernels compile -----===//
//
// Verification ladder step 3 for the kernels the runtime owns (not the artifact): the exact
// translation units it compiles at start -- DeviceSampler's (runtime/device/sampling.cuh, fp32
// and bf16 logits) and Gemv's (runtime/device/gemv.cuh, bf16 and fp32 outputs, one entry point
// per tiling) -- compiled by NVRTC to CUBIN for sm_90a against the embedded device headers,
// through the same KernelCache entry point the backend uses (with the disk cache off). No GPU
// needed; skipped (with the reason) only when libnvrtc cannot be loaded, and failed instead when
// XLC_REQUIRE_GPU is set. ptxas's register and spill report is printed per entry point; the GEMV
// entries, whose speed is their point, must not spill.
//
//===----------------------------------------------------------------------===//
#include "runtime/cuda/Nvrtc.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/exec/cuda/DeviceSampler.h"
#include "runtime/exec/cuda/Gemv.h"
#include "test/gpu/harness/GpuSkip.h"

#include <gtest/gtest.h>

#include <regex>

namespace {

using xlc::artifact::DType;
using xlc::exec::DeviceSampler;
using xlc::exec::Gemv;

struct EntryReport {
  std::string entry;
  int registers = -1, spillStores = -1;
};

/// Compiles |kernel| as KernelCache::get does (plus ptxas's report) and through KernelCache
/// itself; returns the report of every entry point in the CUBIN.
std::vector<EntryReport> compileForSm90a(const xlc::artifact::Kernel &kernel) {
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
  EXPECT_NO_THROW(cubin = xlc::cuda::Nvrtc::instance().compile(kernel.source, kernel.name + ".cu",
                                                               options, headers, &log))
      << kernel.source;
  EXPECT_GE(cubin.size(), 4u);
  if (cubin.size() >= 4)
    EXPECT_EQ(std::string(cubin.data() + 1, 3), "ELF");
  // ptxas -v: "Compiling entry function 'NAME' ..." then "... N bytes spill stores ..." and
  // "Used N registers" for that entry.
  std::vector<EntryReport> entries;
  const std::regex line(R"(entry function '(\w+)'|(\d+) bytes spill stores|Used (\d+) registers)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
       ++it) {
    const std::smatch &m = *it;
    if (m[1].matched)
      entries.push_back({m[1].str()});
    else if (!entries.empty() && m[2].matched)
      entries.back().spillStores = std::stoi(m[2].str());
    else if (!entries.empty() && m[3].matched)
      entries.back().registers = std::stoi(m[3].str());
  }
  EXPECT_FALSE(entries.empty()) << log;
  for (const EntryReport &e : entries)
    std::printf("%-14s %-16s %7zu bytes cubin, %d registers, %d bytes spill stores\n",
                kernel.name.c_str(), e.entry.c_str(), cubin.size(), e.registers, e.spillStores);
  // The cache path the backend takes compiles the same source (disk cache disabled).
  const xlc::exec::CompiledCubin viaCache = xlc::exec::KernelCache("").get(kernel, "sm_90a");
  EXPECT_FALSE(viaCache.fromCache);
  EXPECT_GT(viaCache.cubin.size(), 0u);
  return entries;
}

TEST(RuntimeKernelsNvrtc, SamplingKernelsCompileForSm90a) {
  std::string reason;
  if (!xlc::cuda::Nvrtc::available(&reason))
    XLC_SKIP_OR_FAIL("libnvrtc cannot be loaded: " << reason);
  for (DType dtype : {DType::F32, DType::BF16})
    EXPECT_EQ(compileForSm90a(DeviceSampler::kernel(dtype)).size(), 1u);
}

TEST(RuntimeKernelsNvrtc, GemvKernelsCompileForSm90aWithoutSpills) {
  std::string reason;
  if (!xlc::cuda::Nvrtc::available(&reason))
    XLC_SKIP_OR_FAIL("libnvrtc cannot be loaded: " << reason);
  for (DType dtype : {DType::BF16, DType::F32}) {
    const std::vector<EntryReport> entries = compileForSm90a(Gemv::kernel(dtype));
    EXPECT_EQ(entries.size(), xlc::exec::gemvTilings().size());
    for (const EntryReport &e : entries)
      EXPECT_EQ(e.spillStores, 0) << Gemv::kernel(dtype).name << " " << e.entry;
  }
}

} // namespace
