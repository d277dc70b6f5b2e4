//===- BackendChoice.h - Picking and creating a backend for a tool -*- C++ -*-===//
//
// What every runtime tool that executes a model does the same way: the backend options on its
// command line, the choice between the CPU and the CUDA backend for --device auto|cpu|cuda (the
// GPU when this build has the CUDA backend and a GPU is usable, with the reason on stderr when
// auto falls back to the CPU), and the creation of that backend with the tool's settings. Shared by xlc-run and xlc-bench. This header names no CUDA
// type: a build without the CUDA toolkit compiles it too (XLC_HAVE_CUDA_BACKEND=0 in
// BackendChoice.cpp), and then refuses --device cuda with a message that says why.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_SUPPORT_BACKENDCHOICE_H
#define XLC_TOOLS_SUPPORT_BACKENDCHOICE_H

#include "runtime/exec/Backend.h"

#include <memory>
#include <string>
#include <string_view>

namespace CLI {
class App;
}
namespace xlc::weights {
class Checkpoint;
}

namespace xlc::tools {

/// "cpu" or "cuda" for a --device value ("auto", "cpu" or "cuda"). |tool| prefixes the line that
/// auto prints on stderr ("xlc-run: --device auto: using the GPU (cuda)"). Throws xlc::Error for
/// cuda without a usable GPU, or in a build without the CUDA backend, naming the reason.
std::string chooseDevice(std::string_view requested, std::string_view tool);

/// Whether this build has the CUDA backend (the toolkit's headers were found at configure time).
bool haveCudaBackend();

/// The settings of a backend that a tool's options decide.
struct BackendSettings {
  /// CUDA kernel cache directory ("" = the default, "off" = none).
  std::string kernelCache;
  /// Progress lines of the CUDA backend on stderr.
  bool verbose = false;
  /// CUDA: replay decode steps as CUDA graphs.
  bool graphs = true;
  /// CUDA: draw generation's tokens on the host instead of the GPU (for comparison).
  bool hostSampling = false;
  /// CUDA: decode GEMMs on xlc's GEMV kernel, "off", "on" or "auto" ("" = $XLC_GEMV, else auto;
  /// CudaBackendOptions::gemv).
  std::string gemv;
  /// CUDA: programmatic dependent launch, "on" or "off" ("" = $XLC_PDL, else on;
  /// CudaBackendOptions::pdl).
  std::string pdl;
  /// CUDA: the GEMV kernel absorbs the RMS norms and SwiGLUs before decode GEMMs, "on" or "off"
  /// ("" = $XLC_GEMV_PROLOGUES, else off; CudaBackendOptions::gemvPrologues).
  std::string gemvPrologues;
  /// --kept-counters ("" = $XLC_KEPT_COUNTERS, else on; CudaBackendOptions::keptCounters).
  std::string keptCounters;
  /// CPU backend threads; 0 = all cores.
  unsigned threads = 0;
};

/// Adds the options every tool that creates a backend has, with one help text each: --device
/// (auto, cpu, cuda) into |device|, and --threads, --kernel-cache, --host-sampling, --gemv,
/// --pdl, --gemv-prologues and --kept-counters into |settings|.
void addBackendOptions(CLI::App &app, std::string &device, BackendSettings &settings);

/// The backend for |device| ("cpu" or "cuda", from chooseDevice) on |artifact| and |checkpoint|
/// at |limits|. Throws what the backend's creation throws (xlc::Error).
std::unique_ptr<exec::Backend> createBackend(std::string_view device,
                                             const artifact::Artifact &artifact,
                                             const weights::Checkpoint &checkpoint,
                                             const exec::Limits &limits,
                                             const BackendSettings &settings);

} // namespace xlc::tools

#endif // XLC_TOOLS_SUPPORT_BACKENDCHOICE_H
