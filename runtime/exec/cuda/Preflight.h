//===- Preflight.h - Turning the usual CUDA setup problems into messages -*- C++ -*-===//
//
// Before a CUDA backend allocates anything: is there a driver and a GPU, is the driver new
// enough for the NVRTC that compiles the kernels, was the artifact compiled for this device's
// architecture and against the device headers this runtime embeds. Each failure is one
// xlc::Error that says what to do.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_PREFLIGHT_H
#define XLC_RUNTIME_EXEC_CUDA_PREFLIGHT_H

#include "runtime/artifact/Artifact.h"
#include "runtime/cuda/Device.h"
#include "runtime/cuda/DriverApi.h"

namespace xlc::exec {

/// The driver table, or an error that says why there is none and what to do instead.
const cuda::DriverApi &requireDriver();

/// Opens device |ordinal| after checking the driver version, the artifact's target
/// architecture and its device-header hash.
cuda::CudaDevice openDevice(const artifact::Artifact &artifact, int ordinal);

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_PREFLIGHT_H
