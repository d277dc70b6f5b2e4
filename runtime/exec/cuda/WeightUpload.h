//===- WeightUpload.h - Weights from the checkpoint to the GPU ---*- C++ -*-===//
//
// Assembles every bound buffer (weights, parameters) on host threads (WeightAssembly.h) and
// uploads it in its artifact dtype; reads one back as fp32 (parameter export). GEMMs whose bias
// is narrower than their fp32 output get an fp32 copy of the bias (cuBLASLt reads the bias in
// the output's type); the copy is made from the checkpoint's values, so nothing is lost.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_WEIGHTUPLOAD_H
#define XLC_RUNTIME_EXEC_CUDA_WEIGHTUPLOAD_H

#include "runtime/artifact/Artifact.h"
#include "runtime/cuda/Device.h"

#include <map>
#include <vector>

namespace xlc::weights {
class Checkpoint;
}

namespace xlc::exec {

/// Fills buffers[binding.buffer] (allocated, in the artifact dtype) for every binding, and
/// returns the widened fp32 biases by buffer id. |verbose| prints progress, the time and which
/// checkpoint tensor each LM head was read from (describeLmHead in WeightAssembly.h).
std::map<artifact::BufferId, cuda::DeviceBuffer>
uploadWeights(const artifact::Artifact &artifact, const weights::Checkpoint &checkpoint,
              std::vector<cuda::DeviceBuffer> &buffers, bool verbose);

/// The fp32 values of a device buffer holding |count| elements of |dtype| (f32 or bf16).
std::vector<float> downloadAsF32(const cuda::DeviceBuffer &buffer, artifact::DType dtype,
                                 std::uint64_t count, std::uint64_t byteOffset = 0);

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_WEIGHTUPLOAD_H
