//===- GpuBackend.cpp -----------------------------------------------------===//
#include "GpuBackend.h"

#include "runtime/cuda/Nvrtc.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/support/Error.h"

namespace xlc::test {

GpuBackend::GpuBackend(cuda::CudaDevice &device) : device_(device), arch_(device.arch(true)) {}

const cuda::Kernel &GpuBackend::kernel(const Family &family, const char *config) {
  const std::string source = translationUnit(family, config);
  auto it = modules_.find(source);
  if (it == modules_.end()) {
    std::vector<cuda::NvrtcHeader> headers;
    for (const device::EmbeddedHeader &h : device::embeddedHeaders())
      headers.push_back({h.name, h.text});
    std::vector<std::string> options = cuda::Nvrtc::defaultOptions(arch_);
    options.emplace_back("--ptxas-options=-v");
    std::string log;
    std::vector<char> cubin = cuda::Nvrtc::instance().compile(
        source, std::string(family.function) + ".cu", options, headers, &log);
    auto compiled = std::make_unique<Compiled>();
    compiled->module = cuda::Module::load(cubin);
    compiled->kernel = compiled->module.kernel("xlc_kernel");
    logs_[config] = log;
    it = modules_.emplace(source, std::move(compiled)).first;
  }
  return it->second->kernel;
}

void GpuBackend::launchAsync(const Family &family, const char *config, const LaunchDims &dims,
                             const void *params, size_t paramBytes, CUstream stream) {
  const cuda::Kernel &k = kernel(family, config);
  k.setMaxDynamicSharedMemory(static_cast<int>(dims.sharedBytes));
  k.launch({dims.grid[0], dims.grid[1], dims.grid[2]}, {dims.block, 1, 1}, dims.sharedBytes,
           stream, params, paramBytes);
}

void GpuBackend::launchRaw(const Family &family, const char *config, const LaunchDims &dims,
                           const void *params, size_t paramBytes) {
  launchAsync(family, config, dims, params, paramBytes, nullptr);
  try {
    device_.synchronize();
  } catch (const Error &e) {
    fail("kernel {} with config {} failed: {}", family.function, config, e.what());
  }
}

} // namespace xlc::test
