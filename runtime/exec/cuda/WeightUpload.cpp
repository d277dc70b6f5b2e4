//===- WeightUpload.cpp - Weights from the checkpoint to the GPU ----------===//

#include "runtime/exec/cuda/WeightUpload.h"

#include "runtime/cuda/DriverApi.h"
#include "runtime/exec/WeightAssembly.h"
#include "runtime/exec/cuda/KernelCache.h"
#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/Progress.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace xlc::exec {
namespace art = xlc::artifact;
namespace abi = weight_transform_abi;

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double gib(std::uint64_t bytes) { return static_cast<double>(bytes) / (1ull << 30); }

//===--------------------------------------------------------------------===//
// The host path
//===--------------------------------------------------------------------===//

struct HostTimes {
  double uploadSeconds = 0; ///< in the synchronous uploads (the rest is waiting for assembly)
};

/// Assembles the buffers of |bindings| (indices into a.weights) in fp32 on host threads, rounds
/// them to their dtype and uploads them synchronously, in binding order. A few bindings are
/// assembled ahead, which bounds the host memory held at once.
void uploadOnHost(const art::Artifact &a, const weights::Checkpoint &checkpoint,
                  std::vector<cuda::DeviceBuffer> &buffers, const std::vector<std::size_t> &bindings,
                  weights::Progress &progress, HostTimes &times) {
  auto assemble = [&](const art::WeightBinding &binding) {
    return assembleWeightBytes(a, binding, checkpoint);
  };
  const std::size_t ahead = std::max(2u, std::min(8u, std::thread::hardware_concurrency() / 2));
  std::deque<std::future<std::vector<std::uint8_t>>> pending;
  std::size_t next = 0;
  for (std::size_t i = 0; i < bindings.size(); ++i) {
    while (next < bindings.size() && pending.size() < ahead)
      pending.push_back(
          std::async(std::launch::async, assemble, std::cref(a.weights[bindings[next++]])));
    std::vector<std::uint8_t> bytes = pending.front().get();
    pending.pop_front();
    const auto start = Clock::now();
    buffers[a.weights[bindings[i]].buffer].upload(bytes.data(), bytes.size());
    times.uploadSeconds += secondsSince(start);
    progress.advance(bytes.size());
  }
}

//===--------------------------------------------------------------------===//
// The raw-bytes path
//===--------------------------------------------------------------------===//

abi::Element elementOf(weights::DType dtype) {
  switch (dtype) {
  case weights::DType::F32:
    return abi::kF32;
  case weights::DType::BF16:
    return abi::kBF16;
  case weights::DType::F16:
    return abi::kF16;
  default:
    fail("weight transform: source dtype {} is not F32, BF16 or F16", weights::dtypeName(dtype));
  }
}

/// Pinned host memory (cuMemHostAlloc): copies from it are truly asynchronous DMA.
class PinnedBuffer {
public:
  explicit PinnedBuffer(std::uint64_t bytes) {
    XLC_CU_CHECK(cuda::driver().cuMemHostAlloc(&data_, bytes, 0));
  }
  PinnedBuffer(const PinnedBuffer &) = delete;
  PinnedBuffer &operator=(const PinnedBuffer &) = delete;
  ~PinnedBuffer() { cuda::driver().cuMemFreeHost(data_); }
  void *data() const { return data_; }

private:
  void *data_ = nullptr;
};

struct RawTimes {
  double readSeconds = 0;      ///< pread time summed over the threads
  double copySeconds = 0;      ///< copy-engine time of the uploads (CUDA events), summed
  double transformSeconds = 0; ///< transform kernel time (CUDA events), summed
  unsigned threads = 0;
};

/// One raw upload in flight: |threads| workers, each with a stream and two staging slots (pinned
/// host memory, device scratch for transforms, events), take the plan's pieces in order. A
/// worker reads a piece into a slot while the slot's previous piece may still be copying, so
/// reading, copying and transforming overlap across pieces and workers.
///
/// Nothing stays in flight: the destructor stops and joins every worker, then synchronises every
/// stream, before the module, the scratch and the pinned memory are freed.
class RawUpload {
public:
  RawUpload(const art::Artifact &artifact, const weights::Checkpoint &checkpoint,
            const WeightUploadPlan &plan, std::vector<cuda::DeviceBuffer> &buffers,
            unsigned threads, std::uint64_t stagingBytes,
            std::shared_future<CompiledCubin> transformCubin)
      : artifact_(artifact), checkpoint_(checkpoint), plan_(plan), buffers_(buffers),
        reader_(checkpoint),
        cubin_(std::move(transformCubin)),
        piecesLeft_(std::make_unique<std::atomic<std::size_t>[]>(plan.tensors.size())) {
    const cuda::DriverApi &api = cuda::driver();
    XLC_CU_CHECK(api.cuCtxGetCurrent(&context_));
    check(context_ != nullptr, "uploading weights: no CUDA context is current");
    for (std::size_t t = 0; t < plan.tensors.size(); ++t) {
      piecesLeft_[t] = plan.tensors[t].pieces;
      tensorsDone_ += plan.tensors[t].pieces == 0;
    }
    if (!plan.scales.empty()) {
      scales_ = cuda::DeviceBuffer(plan.scales.size() * 4);
      scales_.upload(plan.scales.data(), plan.scales.size() * 4);
      // That copy ran on the legacy stream, which the workers' non-blocking streams do not wait
      // for: let it land before any transform reads it.
      XLC_CU_CHECK(api.cuCtxSynchronize());
    }
    const std::uint64_t scratchBytes = std::min(stagingBytes, plan.largestTransform);
    for (unsigned w = 0; w < threads; ++w) {
      auto worker = std::make_unique<Worker>();
      for (Slot &slot : worker->slots) {
        slot.host = std::make_unique<PinnedBuffer>(std::min(stagingBytes, plan.largestPiece));
        if (scratchBytes > 0)
          slot.scratch = cuda::DeviceBuffer(scratchBytes);
      }
      workers_.push_back(std::move(worker));
    }
  }

  RawUpload(const RawUpload &) = delete;
  RawUpload &operator=(const RawUpload &) = delete;

  ~RawUpload() {
    failed_ = true; // workers stop after their current piece
    for (std::thread &t : threads_)
      t.join();
    for (const auto &w : workers_) // an error may have left copies or kernels queued
      cuda::driver().cuStreamSynchronize(w->stream.handle());
  }

  /// Runs every piece; updates |progress| from this thread. Throws the first worker's error,
  /// once every worker has stopped and every stream is idle.
  void run(weights::Progress &progress) {
    for (const auto &w : workers_)
      threads_.emplace_back([this, worker = w.get()] { work(*worker); });
    std::uint64_t shownBytes = 0;
    std::size_t shownTensors = 0;
    auto show = [&] {
      const std::uint64_t bytes = bytesDone_;
      const std::size_t tensors = tensorsDone_;
      progress.advance(bytes - shownBytes, tensors - shownTensors);
      shownBytes = bytes;
      shownTensors = tensors;
    };
    {
      std::unique_lock lock(mutex_);
      while (finished_ < workers_.size()) {
        finishedChanged_.wait_for(lock, std::chrono::milliseconds(100));
        show();
      }
    }
    for (std::thread &t : threads_)
      t.join();
    threads_.clear();
    show();
    if (error_)
      std::rethrow_exception(error_);
  }

  RawTimes times() const {
    RawTimes t;
    t.threads = static_cast<unsigned>(workers_.size());
    for (const auto &w : workers_) {
      t.readSeconds += w->readSeconds;
      t.copySeconds += w->copyMs / 1000.0;
      t.transformSeconds += w->transformMs / 1000.0;
    }
    return t;
  }

private:
  struct Slot {
    std::unique_ptr<PinnedBuffer> host;
    cuda::DeviceBuffer scratch;
    cuda::Event start, copied, done;
    const WeightPiece *piece = nullptr; ///< the piece in flight, if any
  };
  struct Worker {
    cuda::Stream stream;
    Slot slots[2];
    double readSeconds = 0, copyMs = 0, transformMs = 0;
  };

  /// "tensor 'x' of '<file>' (bytes [a, b) of n) into 'buffer'"
  std::string describe(const WeightPiece &piece) const {
    return fmt::format("tensor '{}' of '{}' (bytes [{}, {}) of {}) into '{}'", piece.source->name,
                       checkpoint_.fileOf(*piece.source), piece.byteBegin,
                       piece.byteBegin + piece.bytes, piece.source->byteSize,
                       artifact_.buffers[artifact_.weights[piece.binding].buffer].name);
  }

  void work(Worker &w) noexcept {
    try {
      XLC_CU_CHECK(cuda::driver().cuCtxSetCurrent(context_));
      unsigned k = 0;
      while (!failed_) {
        const std::size_t i = next_.fetch_add(1);
        if (i >= plan_.pieces.size())
          break;
        Slot &slot = w.slots[k];
        k ^= 1;
        retire(w, slot);
        enqueue(w, slot, plan_.pieces[i]);
      }
      for (Slot &slot : w.slots)
        retire(w, slot);
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_)
        error_ = std::current_exception();
      failed_ = true;
    }
    std::lock_guard lock(mutex_);
    ++finished_;
    finishedChanged_.notify_all();
  }

  /// Waits until |slot|'s piece is done (its staging and scratch are free again) and adds its
  /// copy and transform times.
  void retire(Worker &w, Slot &slot) {
    if (!slot.piece)
      return;
    const WeightPiece &piece = *slot.piece;
    slot.piece = nullptr;
    try {
      slot.done.synchronize();
      w.copyMs += slot.copied.elapsedSince(slot.start);
      if (piece.transform)
        w.transformMs += slot.done.elapsedSince(slot.copied);
    } catch (const Error &e) {
      fail("uploading {}: {}", describe(piece), e.what());
    }
  }

  void enqueue(Worker &w, Slot &slot, const WeightPiece &piece) {
    const art::Buffer &buffer = artifact_.buffers[artifact_.weights[piece.binding].buffer];
    const cuda::DeviceBuffer &dst = buffers_[buffer.id];
    // The last byte the piece writes must lie inside the buffer.
    const std::uint64_t end = pieceEnd(piece);
    check(end <= dst.bytes(),
          "uploading {}: the piece ends at byte {} of a buffer of {} bytes", describe(piece), end,
          dst.bytes());

    const auto readStart = Clock::now();
    reader_.read(*piece.source, piece.byteBegin, piece.bytes, slot.host->data());
    w.readSeconds += secondsSince(readStart);

    const cuda::DriverApi &api = cuda::driver();
    const CUstream stream = w.stream.handle();
    try {
      slot.start.record(stream);
      const CUdeviceptr target =
          piece.transform ? slot.scratch.address() : dst.address() + piece.dstByteOffset;
      XLC_CU_CHECK(api.cuMemcpyHtoDAsync_v2(target, slot.host->data(), piece.bytes, stream));
      slot.copied.record(stream);
      if (piece.transform) {
        const WeightTransform &m = piece.map;
        const abi::Params params = WeightTransformKernel::params(
            m, slot.scratch.address(), dst.address(), scales_.address());
        transformKernel().launch({WeightTransformKernel::blocks(m.count), 1, 1},
                                 {WeightTransformKernel::kThreads, 1, 1}, 0, stream, params);
      }
      slot.done.record(stream);
    } catch (const Error &e) {
      // What was queued before the failure finishes before the slot is touched again.
      slot.piece = nullptr;
      api.cuStreamSynchronize(stream);
      fail("uploading {}: {}", describe(piece), e.what());
    }
    slot.piece = &piece;
    bytesDone_ += piece.bytes;
    if (piecesLeft_[piece.tensor].fetch_sub(1) == 1)
      ++tensorsDone_;
  }

  /// The transform kernel, loaded by the first worker that needs it (its compilation started
  /// before the upload, and the copy pieces run first).
  const cuda::Kernel &transformKernel() {
    std::lock_guard lock(kernelMutex_);
    if (!kernelLoaded_) {
      try {
        module_ = cuda::Module::load(cubin_.get().cubin);
      } catch (const Error &e) {
        fail("the weight transform kernel: {}", e.what());
      }
      kernel_ = module_.kernel("xlc_kernel");
      kernelLoaded_ = true;
    }
    return kernel_;
  }

  const art::Artifact &artifact_;
  const weights::Checkpoint &checkpoint_;
  const WeightUploadPlan &plan_;
  std::vector<cuda::DeviceBuffer> &buffers_;
  CheckpointReader reader_;
  std::shared_future<CompiledCubin> cubin_;
  CUcontext context_ = nullptr;
  cuda::DeviceBuffer scales_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex kernelMutex_;
  bool kernelLoaded_ = false;
  cuda::Module module_; // after workers_: unloaded before their streams are destroyed
  cuda::Kernel kernel_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> failed_{false};
  std::atomic<std::uint64_t> bytesDone_{0};
  std::atomic<std::size_t> tensorsDone_{0};
  std::unique_ptr<std::atomic<std::size_t>[]> piecesLeft_;
  std::mutex mutex_; ///< guards error_ and finished_
  std::condition_variable finishedChanged_;
  std::exception_ptr error_;
  std::size_t finished_ = 0;
};


/// The kernel cache directory for CudaBackendOptions::cacheDir's convention, or "" (none). A
/// directory the cache refuses gives "": the backend has warned about it already.
std::string transformCacheDir(const std::string &option) {
  if (option == "off")
    return "";
  const std::string dir = option.empty() ? defaultKernelCacheDir() : option;
  if (dir.empty())
    return "";
  try {
    return checkPrivateCacheDir(dir);
  } catch (const Error &) {
    return "";
  }
}

WeightUploadOptions::Path resolvePath(WeightUploadOptions::Path path) {
  if (path != WeightUploadOptions::Path::Auto)
    return path;
  const char *env = std::getenv("XLC_WEIGHT_UPLOAD");
  const std::string value = env ? env : "";
  if (value.empty() || value == "raw")
    return WeightUploadOptions::Path::Raw;
  check(value == "host", "XLC_WEIGHT_UPLOAD={}: expected 'raw' (the default) or 'host'", value);
  return WeightUploadOptions::Path::Host;
}

/// $|name| as a whole number in [1, max], or 0 when unset or empty.
std::uint64_t positiveFromEnv(const char *name, std::uint64_t max, const char *what) {
  const char *env = std::getenv(name);
  if (!env || !*env)
    return 0;
  char *end = nullptr;
  const long long n = std::strtoll(env, &end, 10);
  check(*end == '\0' && n >= 1 && static_cast<std::uint64_t>(n) <= max,
        "{}={}: expected {} from 1 to {}", name, env, what, max);
  return static_cast<std::uint64_t>(n);
}

unsigned resolveThreads(unsigned threads) {
  if (threads > 0)
    return threads;
  if (const std::uint64_t n = positiveFromEnv("XLC_WEIGHT_THREADS", 256, "a number of threads"))
    return static_cast<unsigned>(n);
  return std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
}

std::uint64_t resolveStagingBytes(std::uint64_t bytes) {
  if (bytes > 0)
    return bytes;
  if (const std::uint64_t mib = positiveFromEnv("XLC_WEIGHT_STAGING_MIB", 1024, "mebibytes"))
    return mib << 20;
  return std::uint64_t{16} << 20;
}

} // namespace

std::string WeightTransformKernel::configText() {
  return fmt::format("xlc::device::WeightTransformConfig<{}>", kThreads);
}

art::Kernel WeightTransformKernel::kernel() {
  return runtimeKernel("weight_transform", "weight_transform", "weight_transform", configText(),
                       "WeightTransformParams", "weight_transform", kThreads);
}

abi::Params WeightTransformKernel::params(const WeightTransform &map, std::uint64_t src,
                                          std::uint64_t dst, std::uint64_t scales) {
  check(map.target == art::DType::F32 || map.target == art::DType::BF16,
        "weight transform: the buffer dtype {} is not f32 or bf16", art::dtypeName(map.target));
  check(map.run > 0 && (!map.scaleOffset || map.columns > 0),
        "weight transform: a piece with run {} and {} columns", map.run, map.columns);
  auto i64 = [](std::uint64_t v) { return static_cast<std::int64_t>(v); };
  return {src,
          dst,
          map.scaleOffset ? scales + *map.scaleOffset * 4 : 0,
          i64(map.count),
          i64(map.first),
          i64(map.run),
          i64(map.rowOut),
          i64(map.column),
          i64(map.columns),
          elementOf(map.source),
          map.target == art::DType::F32 ? abi::kF32 : abi::kBF16};
}

unsigned WeightTransformKernel::blocks(std::uint64_t count) {
  // Enough blocks to fill an H100 several times over; a grid-stride loop does the rest.
  const std::uint64_t needed = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::clamp<std::uint64_t>(needed, 1, 4096));
}

std::map<art::BufferId, cuda::DeviceBuffer>
uploadWeights(const art::Artifact &a, const weights::Checkpoint &checkpoint,
              std::vector<cuda::DeviceBuffer> &buffers, const WeightUploadOptions &options) {
  const auto start = Clock::now();
  const WeightUploadOptions::Path path = resolvePath(options.path);
  const std::uint64_t stagingBytes = resolveStagingBytes(options.stagingBytes);
  std::vector<std::size_t> hostBindings;
  std::vector<std::string> hostReasons;
  std::optional<WeightUploadPlan> plan;
  std::optional<RawTimes> rawTimes;
  HostTimes hostTimes;
  // Bindings whose buffer the backend did not allocate (no function of it reads them).
  std::vector<bool> skip(a.weights.size(), false);
  for (std::size_t b = 0; b < a.weights.size(); ++b)
    skip[b] = buffers[a.weights[b].buffer].bytes() == 0;
  auto everyLoadedBinding = [&] {
    std::vector<std::size_t> all;
    for (std::size_t b = 0; b < a.weights.size(); ++b)
      if (!skip[b])
        all.push_back(b);
    return all;
  };

  if (path == WeightUploadOptions::Path::Raw) {
    plan = planWeightUpload(a, checkpoint, stagingBytes, skip);
    for (const WeightUploadPlan::HostBinding &h : plan->host) {
      hostBindings.push_back(h.binding);
      hostReasons.push_back(h.reason);
    }
  } else {
    hostBindings = everyLoadedBinding();
    hostReasons.push_back(options.path == WeightUploadOptions::Path::Host
                              ? "the host path was asked for"
                              : "XLC_WEIGHT_UPLOAD=host");
  }
  std::unique_ptr<RawUpload> raw;
  if (plan && !plan->pieces.empty()) {
    // The transform kernel compiles (or comes from the cache) while the copies run.
    std::shared_future<CompiledCubin> cubin;
    if (plan->transformBytes > 0)
      cubin = std::async(std::launch::async,
                         [dir = transformCacheDir(options.cacheDir), arch = a.targetArch] {
                           return KernelCache(dir).get(WeightTransformKernel::kernel(), arch);
                         })
                  .share();
    const unsigned threads = static_cast<unsigned>(
        std::min<std::size_t>(resolveThreads(options.threads), plan->pieces.size()));
    try {
      raw = std::make_unique<RawUpload>(a, checkpoint, *plan, buffers, threads, stagingBytes,
                                        cubin);
    } catch (const Error &e) {
      // No staging (pinned host memory or device scratch): every binding goes the host way,
      // which is several times slower, so this is said even without --verbose.
      hostBindings.clear();
      hostReasons = {fmt::format("the raw path could not start: {}", e.what())};
      if (!options.verbose)
        fmt::print(stderr, "[xlc] warning: weights are uploaded by the slower host path, {}\n",
                   hostReasons[0]);
      hostBindings = everyLoadedBinding();
      plan.reset();
    }
  }
  std::uint64_t hostBytes = 0;
  for (std::size_t b : hostBindings)
    hostBytes += buffers[a.weights[b].buffer].bytes();
  const std::uint64_t rawBytes = plan ? plan->copyBytes + plan->transformBytes : 0;
  // Bytes: the stored bytes read by the raw path and the buffer bytes of the host path; items:
  // source tensors and host-path bindings.
  weights::Progress progress("uploading weights", rawBytes + hostBytes,
                             (plan ? plan->tensors.size() : 0) + hostBindings.size(),
                             options.verbose && weights::Progress::enabledByDefault());
  const double setupSeconds = secondsSince(start);
  double runSeconds = 0;
  if (raw) {
    const auto runStart = Clock::now();
    raw->run(progress);
    runSeconds = secondsSince(runStart);
    rawTimes = raw->times();
    raw.reset(); // the staging memory goes before the host path allocates its own
  }
  uploadOnHost(a, checkpoint, buffers, hostBindings, progress, hostTimes);
  progress.finish();

  std::map<art::BufferId, cuda::DeviceBuffer> widened;
  for (const art::Function &fn : a.functions)
    for (const art::Step &step : fn.steps) {
      const art::GemmStep *gemm = step.gemm();
      // A trainable parameter's fp32 copy goes stale when a step updates the parameter: the
      // CUDA backend widens it again after any call that passes it to a launch (the optimizer).
      if (!gemm || gemm->epilogue != art::Epilogue::Bias || widened.count(*gemm->c) ||
          buffers[*gemm->c].bytes() == 0 ||
          !art::isBoundClass(a.buffers[*gemm->c].cls) ||
          a.buffers[*gemm->c].dtype == a.buffers[gemm->d].dtype ||
          a.buffers[gemm->d].dtype != art::DType::F32)
        continue;
      for (const art::WeightBinding &binding : a.weights)
        if (binding.buffer == *gemm->c) {
          std::vector<float> values = assembleWeight(a, binding, checkpoint);
          cuda::DeviceBuffer wide(values.size() * 4);
          wide.upload(values.data(), values.size() * 4);
          widened.emplace(*gemm->c, std::move(wide));
        }
    }
  if (options.verbose) {
    const double seconds = secondsSince(start);
    std::uint64_t loadedBytes = 0;
    for (std::size_t b : everyLoadedBinding())
      loadedBytes += buffers[a.weights[b].buffer].bytes();
    std::string how;
    if (rawTimes) {
      const double perThread = rawTimes->readSeconds > 0
                                   ? static_cast<double>(rawBytes) / rawTimes->readSeconds / 1e9
                                   : 0.0;
      const double copyRate = rawTimes->copySeconds > 0
                                  ? static_cast<double>(rawBytes) / rawTimes->copySeconds / 1e9
                                  : 0.0;
      how = fmt::format(
          "raw bytes: {} pieces of <= {}, {} threads; setup {:.2f} s, then {:.2f} s for: "
          "read {:.2f} GiB in {:.2f} s of thread time ({:.1f} GB/s per thread), transfer "
          "{:.2f} s summed over the streams ({:.1f} GB/s), transform {:.3f} s on the GPU "
          "({:.2f} GiB of pieces)",
          plan->pieces.size(),
          stagingBytes % (1 << 20) == 0 ? fmt::format("{} MiB", stagingBytes >> 20)
                                        : fmt::format("{} bytes", stagingBytes),
          rawTimes->threads, setupSeconds, runSeconds, gib(rawBytes), rawTimes->readSeconds,
          perThread, rawTimes->copySeconds, copyRate, rawTimes->transformSeconds,
          gib(plan->transformBytes));
    }
    if (!hostBindings.empty())
      how += fmt::format("{}host path for {} binding{}: assembled in fp32 and uploaded "
                         "({:.2f} s in the uploads)",
                         how.empty() ? "" : "; ", hostBindings.size(),
                         hostBindings.size() == 1 ? "" : "s", hostTimes.uploadSeconds);
    fmt::print(stderr, "[xlc] {:.2f} GiB of weights assembled and uploaded in {:.1f} s ({})\n",
               gib(loadedBytes), seconds, how.empty() ? "no weights" : how);
    for (const std::string &reason : hostReasons)
      fmt::print(stderr, "[xlc]   on the host path: {}\n", reason);
  }
  return widened;
}

std::vector<float> downloadAsF32(const cuda::DeviceBuffer &buffer, art::DType dtype,
                                 std::uint64_t count, std::uint64_t byteOffset) {
  std::vector<float> out(count);
  if (dtype == art::DType::F32) {
    buffer.download(out.data(), count * 4, byteOffset);
    return out;
  }
  check(dtype == art::DType::BF16, "reading a {} buffer back as fp32 is not supported",
        art::dtypeName(dtype));
  std::vector<std::uint16_t> raw(count);
  buffer.download(raw.data(), count * 2, byteOffset);
  for (std::uint64_t i = 0; i < count; ++i)
    out[i] = weights::bf16ToF32(raw[i]);
  return out;
}

} // namespace xlc::exec
