//===- GpuBackend.cpp -----------------------------------------------------===//
#include "GpuBackend.h"

#include "runtime/cuda/Nvrtc.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/support/Error.h"

#include <cstdio>
#include <memory>

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

GpuBackend *sharedGpuBackend(std::string *reason) {
  struct Session {
    std::string reason;
    std::unique_ptr<cuda::CudaDevice> device;
    std::unique_ptr<GpuBackend> backend;
  };
  static Session *session = [] {
    auto *s = new Session(); // lives as long as the process (kernels may run at exit)
    if (!cuda::cudaAvailable(&s->reason) || !cuda::Nvrtc::available(&s->reason))
      return s;
    try {
      s->device = std::make_unique<cuda::CudaDevice>(cuda::CudaDevice::open(0));
      std::printf("GPU: %s; NVRTC %d.%d; compiling for %s\n", s->device->summary().c_str(),
                  cuda::Nvrtc::instance().version().first,
                  cuda::Nvrtc::instance().version().second, s->device->arch().c_str());
      s->backend = std::make_unique<GpuBackend>(*s->device);
    } catch (const Error &e) {
      s->reason = e.what();
      s->backend.reset();
    }
    return s;
  }();
  *reason = session->reason;
  return session->backend.get();
}

} // namespace xlc::test
