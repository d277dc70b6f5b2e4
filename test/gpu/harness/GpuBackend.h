//===- GpuBackend.h - Run kernel variants on the GPU via NVRTC ----*- C++ -*-===//
//
// The GPU side of KernelHarness.h: emits the compiler's translation unit for a variant, compiles
// it with NVRTC against the embedded device headers for the device's architecture (sm_90a on
// Hopper), caches the module per source text, launches, and synchronises after every launch so
// that a fault is attributed to the kernel that caused it.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_GPU_HARNESS_GPUBACKEND_H
#define XLC_TEST_GPU_HARNESS_GPUBACKEND_H

#include "KernelHarness.h"

#include "runtime/cuda/Device.h"

#include <map>
#include <memory>

namespace xlc::test {

class GpuBackend {
public:
  static constexpr const char *kName = "gpu";
  using Buffer = cuda::DeviceBuffer;

  explicit GpuBackend(cuda::CudaDevice &device);

  Buffer alloc(size_t bytes) { return Buffer(bytes); }
  void upload(Buffer &buffer, const void *host, size_t bytes) { buffer.upload(host, bytes); }
  void download(const Buffer &buffer, void *host, size_t bytes) { buffer.download(host, bytes); }
  void fill(Buffer &buffer, uint8_t value) { buffer.fill(value); }

  /// The compiled kernel for a variant (compiled on first use; the log is kept in compileLog()).
  const cuda::Kernel &kernel(const Family &family, const char *config);

  template <class Params>
  void launch(const Family &family, const char *config, void (*)(const Params &),
              const LaunchDims &dims, const Params &params) {
    launchRaw(family, config, dims, &params, sizeof(Params));
  }

  void launchRaw(const Family &family, const char *config, const LaunchDims &dims,
                 const void *params, size_t paramBytes);

  /// Launches without synchronising (timing loops).
  void launchAsync(const Family &family, const char *config, const LaunchDims &dims,
                   const void *params, size_t paramBytes, CUstream stream);

  cuda::CudaDevice &device() { return device_; }
  /// NVRTC log (ptxas -v: registers, spills) of every compiled variant, by config text.
  const std::map<std::string, std::string> &compileLogs() const { return logs_; }

private:
  struct Compiled {
    cuda::Module module;
    cuda::Kernel kernel;
  };
  cuda::CudaDevice &device_;
  std::string arch_;
  std::map<std::string, std::unique_ptr<Compiled>> modules_;
  std::map<std::string, std::string> logs_;
};

/// Device 0 and a GpuBackend on it, opened once per process for the GPU test binaries (the GPU
/// and NVRTC versions printed once); null, with the reason, when there is no usable driver, GPU
/// or NVRTC.
GpuBackend *sharedGpuBackend(std::string *reason);

} // namespace xlc::test

#endif // XLC_TEST_GPU_HARNESS_GPUBACKEND_H
