//===- DeviceSampler.h - Generation's draws on the GPU ----------*- C++ -*-===//
//
// The CUDA backend's draws (Backend.h DrawRequest): the sampling kernel of the device library
// (runtime/device/sampling.cuh, one block per sequence) reads the logits where the LM head wrote
// them and writes one 16-byte result per sequence, which is all that comes back to the host. It
// picks the host sampler's token (Sampler.h) — same options, same seeded streams — except when
// the uniform number falls within double rounding of a bucket edge (sampling.cuh says exactly).
//
// A draw is staged before the function runs (the options and rows go to pinned memory and are
// uploaded on the compute stream), launched right after the function's last step in the same
// stream — inside the decode step's CUDA graph: the kernel reads options and rows from device
// memory, so one graph serves every step and every option — and its results are copied to pinned
// memory before the backend's one synchronisation of the call.
//
// The kernel is not part of the artifact: the runtime compiles it (NVRTC, through the same disk
// cache as the artifact's kernels) for the element types of the artifact's logits, and launches
// it once at start on a row of zeros (module loading paid there, on defined data; the greedy
// draw of token 0 doubles as a check that the kernel works).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_DEVICESAMPLER_H
#define XLC_RUNTIME_EXEC_CUDA_DEVICESAMPLER_H

#include "runtime/artifact/Artifact.h"
#include "runtime/cuda/Device.h"
#include "runtime/exec/Backend.h"
#include "runtime/exec/cuda/KernelCache.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace xlc::exec {

/// The host's copies of sampling.cuh's structs (the runtime never includes device headers); the
/// emulator tests check that sizes and offsets agree.
namespace sampling_abi {
struct Options { // SamplingOptionsBlock
  double invTemperature;
  double topP;
  std::int64_t topK;
  std::int64_t greedy;
  std::uint64_t seed;
};
struct Row { // SamplingRow
  std::uint64_t stream;
  std::uint64_t step;
  std::int64_t active;
};
struct Result { // SampledToken
  std::int32_t token, nanCount, firstNan, kept;
};
struct Params { // SamplingParams
  std::uint64_t logits;
  std::int64_t rowStride;
  std::int64_t vocab;
  std::uint64_t options, rows, out;
};
} // namespace sampling_abi

class DeviceSampler {
public:
  /// Threads per sequence (SamplingConfig<T, kThreads>).
  static constexpr int kThreads = 256;
  /// The largest vocabulary the kernel's 128-bit fixed-point sums allow.
  static constexpr std::uint64_t kMaxVocab = std::uint64_t{1} << 27;

  /// The config the runtime instantiates for logits of |dtype| (f32 or bf16), spelled as the
  /// translation unit spells it: "xlc::device::SamplingConfig<float, 256>".
  static std::string configText(artifact::DType dtype);
  /// The kernel for logits of |dtype|: its translation unit (the emitted form: header, Config,
  /// one extern "C" entry) and options, ready for KernelCache.
  static artifact::Kernel kernel(artifact::DType dtype);
  /// The element types of the logits (first outputs) of |artifact|'s functions.
  static std::vector<artifact::DType> logitDtypes(const artifact::Artifact &artifact);

  using Cubins = std::map<artifact::DType, CompiledCubin>;
  /// Compiles (or loads from |cache|) the kernel for each of |dtypes| for |arch|.
  static Cubins compile(const KernelCache &cache, const std::string &arch,
                        std::span<const artifact::DType> dtypes);

  /// Loads |cubins|, allocates room for |maxBatch| sequences of |vocab| logits and makes one
  /// greedy draw from a row of zeros on |stream| (throws if it does not give token 0).
  DeviceSampler(const Cubins &cubins, std::uint64_t maxBatch, std::uint64_t vocab,
                CUstream stream);
  DeviceSampler(const DeviceSampler &) = delete;
  DeviceSampler &operator=(const DeviceSampler &) = delete;

  /// One launch: |rows| rows of logits of |dtype|, row b at element b·rowStride from |logits|.
  struct Launch {
    CUdeviceptr logits = 0;
    artifact::DType dtype = artifact::DType::F32;
    std::uint64_t rowStride = 0, rows = 0;
  };

  /// Stages a draw: |options| (validated) and |rows| (one per row of |launch|) go to pinned
  /// memory and are uploaded on |stream|; the launch is pending until take(). Throws naming the
  /// problem for an unsupported dtype, too many rows, or a vocabulary other than the sampler's.
  void stage(const SamplingOptions &options, std::span<const DrawRow> rows, const Launch &launch,
             std::uint64_t vocab, CUstream stream);
  /// The pending launch, if any; it is no longer pending.
  std::optional<Launch> take() { return std::exchange(pending_, std::nullopt); }
  /// Enqueues the kernel on |stream| (capturable into a graph).
  void enqueue(const Launch &launch, CUstream stream) const;
  /// Enqueues the copy of the launch's results to pinned host memory.
  void enqueueDownload(const Launch &launch, CUstream stream) const;
  /// The results of the last launch, once its stream is synchronised (|out|: one per row).
  void results(std::span<Draw> out) const;
  /// All of the above at once, synchronously (start-up check, tests, benchmarks).
  void drawNow(const SamplingOptions &options, std::span<const DrawRow> rows,
               const Launch &launch, std::uint64_t vocab, CUstream stream, std::span<Draw> out);

private:
  struct Compiled {
    cuda::Module module;
    cuda::Kernel kernel;
  };
  std::map<artifact::DType, Compiled> kernels_;
  std::uint64_t maxBatch_ = 0, vocab_ = 0;
  /// Device: the options at 0, the rows at rowsOffset_, the results at resultsOffset_.
  cuda::DeviceBuffer device_;
  std::uint64_t rowsOffset_ = 0, resultsOffset_ = 0;
  /// Pinned host memory (cuMemHostAlloc; the copies to and from it are truly asynchronous):
  /// the staged options and rows (the device layout), and the results.
  struct FreePinned {
    void operator()(void *p) const;
  };
  std::unique_ptr<void, FreePinned> stagedHost_, resultsHost_;
  std::uint64_t rowsStaged_ = 0;
  std::optional<Launch> pending_;
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_DEVICESAMPLER_H
