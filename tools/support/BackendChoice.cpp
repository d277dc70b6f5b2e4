//===- BackendChoice.cpp - Picking and creating a backend for a tool ------===//

#include "tools/support/BackendChoice.h"

#include "runtime/exec/cpu/CpuBackend.h"
#include "runtime/support/Error.h"

#if XLC_HAVE_CUDA_BACKEND
#include "runtime/cuda/DriverApi.h"
#include "runtime/exec/cuda/CudaBackend.h"
#endif

#include <CLI/CLI.hpp>

#include <cstdio>

namespace xlc::tools {

bool haveCudaBackend() { return XLC_HAVE_CUDA_BACKEND != 0; }

std::string chooseDevice(std::string_view requested, std::string_view tool) {
  check(requested == "auto" || requested == "cpu" || requested == "cuda",
        "--device {}: expected auto, cpu or cuda", requested);
  if (requested == "cpu")
    return "cpu";
#if XLC_HAVE_CUDA_BACKEND
  std::string reason;
  const bool gpu = cuda::cudaAvailable(&reason);
  if (requested == "cuda") {
    check(gpu, "--device cuda: no usable GPU: {}", reason);
    return "cuda";
  }
  if (gpu) {
    std::fprintf(stderr, "%.*s: --device auto: using the GPU (cuda)\n",
                 static_cast<int>(tool.size()), tool.data());
    return "cuda";
  }
  std::fprintf(stderr, "%.*s: --device auto: using the CPU (no usable GPU: %s)\n",
               static_cast<int>(tool.size()), tool.data(), reason.c_str());
  return "cpu";
#else
  check(requested != "cuda",
        "--device cuda: this {} was built without the CUDA backend (the CUDA toolkit's headers "
        "were not found when it was configured); use --device cpu",
        tool);
  std::fprintf(stderr, "%.*s: --device auto: using the CPU (built without the CUDA backend)\n",
               static_cast<int>(tool.size()), tool.data());
  return "cpu";
#endif
}

void addBackendOptions(CLI::App &app, std::string &device, BackendSettings &settings) {
  app.add_option("--device", device,
                 "auto: the GPU if this build has the CUDA backend and a GPU is usable, else "
                 "the CPU")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--threads", settings.threads, "CPU backend threads; 0 = all cores")
      ->capture_default_str();
  app.add_option("--kernel-cache", settings.kernelCache,
                 "CUDA kernel cache directory, or 'off' (default: $XLC_CACHE_DIR, else "
                 "$XDG_CACHE_HOME/xlc/kernels, else ~/.cache/xlc/kernels). It must be private "
                 "(created mode 0700; one writable by others or owned by another user is not "
                 "used, with a warning)")
      ->type_name("<dir|off>");
  app.add_flag("--host-sampling", settings.hostSampling,
               "CUDA: copy every step's logits to the host and draw there, instead of drawing "
               "on the GPU and copying back only the token ids (the same tokens; for comparing "
               "the two). The CPU backend always draws on the host");
  app.add_option("--gemv", settings.gemv,
                 "CUDA: decode GEMMs (at most 8 rows) on xlc's GEMV kernel: off (cuBLASLt), on, "
                 "or auto (measured per shape); default: $XLC_GEMV, else auto")
      ->check(CLI::IsMember({"off", "on", "auto"}));
  app.add_option("--pdl", settings.pdl,
                 "CUDA: programmatic dependent launch (each kernel may be scheduled while the "
                 "previous one finishes; it waits for it before touching memory): on or off; "
                 "default: $XLC_PDL, else on")
      ->check(CLI::IsMember({"off", "on"}));
  app.add_option("--gemv-prologues", settings.gemvPrologues,
                 "CUDA: let the GEMV kernel absorb the RMS norms and SwiGLUs whose outputs only "
                 "the decode GEMMs right after them read (the row kernels are then not "
                 "launched): on or off; default: $XLC_GEMV_PROLOGUES, else off (slower at "
                 "batch-1 decode on the H100)")
      ->check(CLI::IsMember({"off", "on"}));
  app.add_option("--kept-counters", settings.keptCounters,
                 "CUDA: keep the mLSTM kernels' self-resetting counters in memory of their own, "
                 "zeroed once, instead of zeroing them before every launch: on or off; default: "
                 "$XLC_KEPT_COUNTERS, else on")
      ->check(CLI::IsMember({"off", "on"}));
}

std::unique_ptr<exec::Backend> createBackend(std::string_view device,
                                             const artifact::Artifact &artifact,
                                             const weights::Checkpoint &checkpoint,
                                             const exec::Limits &limits,
                                             const BackendSettings &settings) {
  if (device == "cuda") {
#if XLC_HAVE_CUDA_BACKEND
    exec::CudaBackendOptions options;
    options.cacheDir = settings.kernelCache;
    options.verbose = settings.verbose;
    options.useGraphs = settings.graphs;
    options.deviceSampling = !settings.hostSampling;
    options.gemv = settings.gemv;
    options.pdl = settings.pdl;
    options.gemvPrologues = settings.gemvPrologues;
    options.keptCounters = settings.keptCounters;
    return exec::createCudaBackend(artifact, checkpoint, limits, options);
#else
    fail("device 'cuda': this build has no CUDA backend");
#endif
  }
  check(device == "cpu", "unknown device '{}' (expected cpu or cuda)", device);
  return exec::createCpuBackend(artifact, checkpoint, limits, settings.threads);
}

} // namespace xlc::tools
