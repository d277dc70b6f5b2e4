//===- WeightUpload.h - Weights from the checkpoint to the GPU ---*- C++ -*-===//
//
// Fills every bound buffer (weights, parameters) in its artifact dtype, by one of two paths
// (docs/weight-loading.md):
//
//  * raw bytes (the default): each source tensor's stored bytes (WeightPieces.h) are read by
//    several host threads with pread into a ring of pinned staging buffers and copied
//    asynchronously (cuMemcpyHtoDAsync, one stream per thread) straight to their place in the
//    buffer; pieces that need a change — another element type, a folded norm weight, a
//    concatenation along an inner axis — go to device scratch and the weight_transform kernel
//    (runtime/device/weight_transform.cuh, compiled through the kernel cache) writes the
//    buffer's elements, bit-identical to the host path.
//  * host: every buffer computed in fp32 on host threads (WeightAssembly.h assembleWeight),
//    rounded once and uploaded synchronously. Chosen by XLC_WEIGHT_UPLOAD=host (or the option),
//    and used for any binding the raw path does not cover (--verbose says which and why).
//
// When a raw upload fails, nothing stays in flight: every thread is joined and every stream
// synchronised before the staging memory is freed and the error (naming the tensor and its
// file) leaves uploadWeights.
//
// GEMMs whose bias is narrower than their fp32 output get an fp32 copy of the bias (cuBLASLt
// reads the bias in the output's type); the copy is made from the checkpoint's values, so
// nothing is lost. downloadAsF32 reads a buffer back as fp32 (parameter export).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_WEIGHTUPLOAD_H
#define XLC_RUNTIME_EXEC_CUDA_WEIGHTUPLOAD_H

#include "runtime/artifact/Artifact.h"
#include "runtime/cuda/Device.h"
#include "runtime/exec/WeightPieces.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace xlc::weights {
class Checkpoint;
}

namespace xlc::exec {

/// The host's copy of weight_transform.cuh's WeightTransformParams (the runtime never includes
/// device headers); the emulator tests check that sizes and offsets agree.
namespace weight_transform_abi {
enum Element : std::int64_t { kF32 = 0, kBF16 = 1, kF16 = 2 }; // WeightElement
struct Params {
  std::uint64_t src, dst, scale;
  std::int64_t count, first, run, rowOut, column, columns, srcType, dstType;
};
} // namespace weight_transform_abi

/// The runtime's weight transform kernel (not part of any artifact).
struct WeightTransformKernel {
  /// Threads per block (WeightTransformConfig<kThreads>).
  static constexpr int kThreads = 256;
  /// The config the translation unit instantiates: "xlc::device::WeightTransformConfig<256>".
  static std::string configText();
  /// Its translation unit (the emitted form: header, Config, one extern "C" entry) and options,
  /// ready for KernelCache.
  static artifact::Kernel kernel();
  /// The launch parameters of a transform piece whose bytes are at |src|, into the buffer at
  /// |dst|, with the plan's scales (WeightUploadPlan::scales, all of them) at |scales|: device
  /// addresses.
  static weight_transform_abi::Params params(const WeightTransform &map, std::uint64_t src,
                                             std::uint64_t dst, std::uint64_t scales);
  /// Blocks for a piece of |count| elements (a grid-stride loop covers the rest).
  static unsigned blocks(std::uint64_t count);
};

struct WeightUploadOptions {
  enum class Path { Auto, Raw, Host };
  /// Auto: $XLC_WEIGHT_UPLOAD ("raw" or "host"), raw when unset.
  Path path = Path::Auto;
  /// Progress and the timing line on stderr.
  bool verbose = false;
  /// The kernel cache option of CudaBackendOptions::cacheDir: "" the default directory, "off"
  /// none; the transform kernel is cached with the artifact's kernels.
  std::string cacheDir;
  /// Reader threads (each with its stream and two staging buffers); 0: $XLC_WEIGHT_THREADS,
  /// else min(8, hardware threads).
  unsigned threads = 0;
  /// Bytes of one staging buffer (a multiple of 4; pieces are at most this large); 0:
  /// $XLC_WEIGHT_STAGING_MIB mebibytes, else 16 MiB.
  std::uint64_t stagingBytes = 0;
};

/// Fills buffers[binding.buffer] (allocated, in the artifact dtype) for every binding, and
/// returns the widened fp32 biases by buffer id (weights and trainable parameters: the caller
/// widens a parameter again when a step may have changed it). With |options.verbose|: progress, the time
/// split into read / transfer / transform, and any binding left to the host path and why.
std::map<artifact::BufferId, cuda::DeviceBuffer>
uploadWeights(const artifact::Artifact &artifact, const weights::Checkpoint &checkpoint,
              std::vector<cuda::DeviceBuffer> &buffers, const WeightUploadOptions &options);

/// The fp32 values of a device buffer holding |count| elements of |dtype| (f32 or bf16).
std::vector<float> downloadAsF32(const cuda::DeviceBuffer &buffer, artifact::DType dtype,
                                 std::uint64_t count, std::uint64_t byteOffset = 0);

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_WEIGHTUPLOAD_H
