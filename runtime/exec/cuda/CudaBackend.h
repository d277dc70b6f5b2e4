//===- CudaBackend.h - Running an artifact on an NVIDIA GPU ------*- C++ -*-===//
//
// The CUDA backend: the driver is loaded with dlopen (runtime/cuda/DriverApi.h), every kernel of
// the artifact is compiled with NVRTC for the device's architecture through a disk cache
// (KernelCache.h), GEMM steps run on cuBLASLt (CublasLt.h, also dlopen'ed) or, for the few rows
// of a decode step, on xlc's own GEMV kernel where measurement prefers it (Gemv.h), and all
// activation and workspace buffers live in one device arena planned by the compiler (sized at
// the backend's limits). Weights go to the GPU as the checkpoint stores them, through pinned
// staging on several streams, and are fused, folded and converted there (WeightUpload.h,
// docs/weight-loading.md), bit for bit as the host path would. Each decode_step call shape
// (first slot, batch) is captured once into a CUDA graph and replayed. Generation's draws run
// on the GPU (DeviceSampler.h), inside the decode step's graph.
//
// Errors, each an xlc::Error with a message that says what to do: no driver or no GPU, a driver
// older than the NVRTC that compiles the kernels, an artifact built for another architecture,
// weights that do not match the artifact, and not enough device memory (the message lists what
// each part needs). Nothing is left allocated when construction fails.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_CUDABACKEND_H
#define XLC_RUNTIME_EXEC_CUDA_CUDABACKEND_H

#include "runtime/exec/Backend.h"

#include <memory>
#include <string>

namespace xlc::exec {

struct CudaBackendOptions {
  int deviceOrdinal = 0;
  /// Kernel cache directory; empty = $XLC_CACHE_DIR, else $XDG_CACHE_HOME/xlc/kernels, else
  /// ~/.cache/xlc/kernels. "off" disables the disk cache.
  std::string cacheDir;
  /// Capture decode steps into CUDA graphs (replayed on later calls of the same shape).
  bool useGraphs = true;
  /// Draw generation's tokens on the GPU (DeviceSampler.h: only the ids come back); false:
  /// download the logits and draw on the host with Sampler, as before (for comparison).
  bool deviceSampling = true;
  /// GEMMs of at most 8 rows (decode) on xlc's own GEMV kernel (Gemv.h): "off" (cuBLASLt
  /// always), "on" (the GEMV kernel wherever it applies) or "auto" (measured per shape against
  /// cuBLASLt); empty = $XLC_GEMV, else auto.
  std::string gemv;
  /// Programmatic dependent launch for the artifact's kernels and the GEMV kernel ("on" or
  /// "off"; empty = $XLC_PDL, else on): each may be scheduled while the stream's previous kernel
  /// finishes (its entry waits for that kernel before touching memory: common.cuh
  /// grid_dependency_sync), hiding launch and start-up gaps between the many short kernels of a
  /// decode step.
  std::string pdl;
  /// Let the GEMV kernel absorb the row kernels (RMS norm, SwiGLU) whose outputs only the GEMMs
  /// right after them read, when all of those run on it (GemvFusion.h): "on" or "off"; empty =
  /// $XLC_GEMV_PROLOGUES, else off (measured slower at batch-1 decode on the H100).
  std::string gemvPrologues;
  /// Give the self-resetting counters of the mLSTM kernels (KeptCounters.h) device memory of
  /// their own, zeroed once, instead of zeroing them in the arena before every launch: "on" or
  /// "off"; empty = $XLC_KEPT_COUNTERS, else on.
  std::string keptCounters;
  /// Progress and timing lines on stderr (kernel compilation, weight upload, the checkpoint
  /// tensor the LM head was read from).
  bool verbose = false;
};

/// Loads the device, compiles (or loads from the cache) every kernel, uploads the weights.
std::unique_ptr<Backend> createCudaBackend(const artifact::Artifact &artifact,
                                           const weights::Checkpoint &checkpoint, Limits limits,
                                           const CudaBackendOptions &options = {});

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_CUDABACKEND_H
