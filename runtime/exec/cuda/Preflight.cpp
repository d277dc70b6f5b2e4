//===- Preflight.cpp - Turning the usual CUDA setup problems into messages ===//

#include "runtime/exec/cuda/Preflight.h"

#include "runtime/artifact/Validate.h"
#include "runtime/cuda/Nvrtc.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/support/Error.h"

namespace xlc::exec {
namespace art = xlc::artifact;

const cuda::DriverApi &requireDriver() {
  std::string reason;
  check(cuda::cudaAvailable(&reason), "no usable CUDA GPU: {} (run with --device cpu instead)",
        reason);
  return cuda::driver();
}

cuda::CudaDevice openDevice(const art::Artifact &artifact, int ordinal) {
  const cuda::DriverStatus &status = cuda::driverStatus();
  check(ordinal >= 0 && ordinal < status.deviceCount,
        "CUDA device {} does not exist ({} device(s) found)", ordinal, status.deviceCount);
  // CUBINs from NVRTC X.Y need a driver that supports CUDA X.Y.
  const auto [major, minor] = cuda::Nvrtc::instance().version();
  const int needed = major * 1000 + minor * 10;
  check(status.driverVersion >= needed,
        "the CUDA driver ({}) supports CUDA {}.{}, but the kernels are compiled by NVRTC {}.{}: "
        "update the NVIDIA driver to one for CUDA {}.{} or newer, or run with --device cpu",
        status.libraryPath, status.driverVersion / 1000, (status.driverVersion % 1000) / 10, major,
        minor, major, minor);
  cuda::CudaDevice device = cuda::CudaDevice::open(ordinal);
  art::checkDeviceArch(artifact, device.computeMajor(), device.computeMinor());
  check(artifact.deviceHeadersHash == device::headerHash(),
        "{} was compiled against device headers {} but this runtime embeds {}: recompile the "
        "model with the xlc-compile of this release",
        artifact.label(), artifact.deviceHeadersHash, device::headerHash());
  return device;
}

} // namespace xlc::exec
