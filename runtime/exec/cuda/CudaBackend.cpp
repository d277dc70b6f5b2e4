//===- CudaBackend.cpp - Running an artifact on an NVIDIA GPU -------------===//

#include "runtime/exec/cuda/CudaBackend.h"

#include "runtime/artifact/Validate.h"
#include "runtime/cuda/Device.h"
#include "runtime/cuda/DriverApi.h"
#include "runtime/cuda/Nvrtc.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/exec/WeightAssembly.h"
#include "runtime/exec/cuda/CublasLt.h"
#include "runtime/exec/cuda/KernelCache.h"
#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/Progress.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <cstring>
#include <future>
#include <map>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>

namespace xlc::exec {
namespace art = xlc::artifact;

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string gib(std::uint64_t bytes) {
  return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1ull << 30));
}

/// The driver table, or an error that says why there is none and what to do instead.
const cuda::DriverApi &requireDriver() {
  std::string reason;
  check(cuda::cudaAvailable(&reason), "no usable CUDA GPU: {} (run with --device cpu instead)",
        reason);
  return cuda::driver();
}

/// Opens the device after the checks that turn the usual setup problems into plain messages.
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

std::uint64_t f64Bits(double v) {
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

/// Converts fp32 values to the bf16/f16/f32 bytes of |dtype|, in parallel for large tensors.
std::vector<std::uint8_t> toDType(const std::vector<float> &values, art::DType dtype,
                                  const std::string &what) {
  std::vector<std::uint8_t> bytes(values.size() * art::dtypeSize(dtype));
  auto convertRange = [&](std::size_t begin, std::size_t end) {
    switch (dtype) {
    case art::DType::F32:
      std::memcpy(bytes.data() + begin * 4, values.data() + begin, (end - begin) * 4);
      break;
    case art::DType::BF16:
      for (std::size_t i = begin; i < end; ++i) {
        std::uint16_t b = weights::f32ToBF16(values[i]);
        std::memcpy(bytes.data() + 2 * i, &b, 2);
      }
      break;
    default:
      fail("{}: weights of dtype {} are not supported by the CUDA backend", what,
           art::dtypeName(dtype));
    }
  };
  const std::size_t n = values.size();
  const std::size_t threads =
      n < (1u << 20) ? 1 : std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  if (threads == 1) {
    convertRange(0, n);
    return bytes;
  }
  std::vector<std::future<void>> parts;
  for (std::size_t t = 0; t < threads; ++t)
    parts.push_back(std::async(std::launch::async, convertRange, n * t / threads,
                               n * (t + 1) / threads));
  for (auto &p : parts)
    p.get();
  return bytes;
}

float elementToF32(const std::uint8_t *p, art::DType dtype) {
  if (dtype == art::DType::BF16) {
    std::uint16_t b;
    std::memcpy(&b, p, 2);
    return weights::bf16ToF32(b);
  }
  float f;
  std::memcpy(&f, p, 4);
  return f;
}

class CudaBackend final : public Backend {
public:
  CudaBackend(const art::Artifact &artifact, const weights::Checkpoint &checkpoint, Limits limits,
              const CudaBackendOptions &options);
  ~CudaBackend() override;

  std::string_view kind() const override { return "cuda"; }
  std::string description() const override { return description_; }
  void resetStates(std::uint64_t firstSlot, std::uint64_t count) override;
  void run(std::string_view function, std::uint64_t firstSlot, std::uint64_t batch,
           std::uint64_t seq, std::span<const std::int32_t> tokens, std::span<float> logits,
           Logits which) override;
  std::vector<float> readState(std::uint64_t slot, std::size_t stateIndex) override;

private:
  /// A captured and instantiated decode step; destroys both handles (also when the backend's
  /// constructor fails after the warm-up captured one).
  struct Graph {
    CUgraph graph = nullptr;
    CUgraphExec exec = nullptr;
    Graph() = default;
    Graph(Graph &&o) noexcept
        : graph(std::exchange(o.graph, nullptr)), exec(std::exchange(o.exec, nullptr)) {}
    Graph &operator=(Graph &&) = delete;
    ~Graph() {
      if (exec)
        cuda::driver().cuGraphExecDestroy(exec);
      if (graph)
        cuda::driver().cuGraphDestroy(graph);
    }
  };
  /// Decode shapes kept as graphs at once. The generator's batch shrinks as sequences finish, so
  /// the shapes of a long run are many; beyond this the cache starts over (a capture costs about
  /// as much as one eager step).
  static constexpr std::size_t kMaxGraphs = 64;
  /// An embedding-style step that reports bad input through an i64 flag (docs/artifact.md).
  struct ErrorFlag {
    std::size_t step;
    art::BufferId flag;
    std::size_t slot; ///< index into errorFlags_
  };

  void compileKernels(const CudaBackendOptions &options);
  void allocate();
  void uploadWeights(const weights::Checkpoint &checkpoint);
  void warmUp();
  CUdeviceptr address(art::BufferId id, std::uint64_t firstSlot, std::uint64_t batch,
                      std::uint64_t seq) const;
  void enqueue(const art::Function &fn, std::uint64_t firstSlot, std::uint64_t batch,
               std::uint64_t seq);
  const std::vector<ErrorFlag> &errorFlags(const art::Function &fn);

  const cuda::DriverApi &api_;
  cuda::CudaDevice device_;
  CudaBackendOptions options_;
  std::optional<cuda::Stream> stream_;
  std::vector<cuda::Module> modules_;
  std::vector<cuda::Kernel> kernels_;
  std::unique_ptr<CublasLt> blas_;
  std::vector<cuda::DeviceBuffer> buffers_; ///< by buffer id; empty for arena buffers
  /// Biases stored in a narrower dtype than the output of a GEMM that adds them (bf16 bias,
  /// fp32 gate pre-activations): an fp32 copy, so cuBLASLt's bias matches its output type.
  std::map<art::BufferId, cuda::DeviceBuffer> widenedBiases_;
  std::vector<std::uint64_t> slotBytes_;    ///< state buffers: bytes per sequence slot
  cuda::DeviceBuffer arena_;
  cuda::DeviceBuffer errorFlags_;
  std::map<std::string, std::vector<ErrorFlag>, std::less<>> flagsByFunction_;
  std::map<std::tuple<std::string, std::uint64_t, std::uint64_t>, Graph> graphs_;
  std::string description_;
};

CudaBackend::CudaBackend(const art::Artifact &artifact, const weights::Checkpoint &checkpoint,
                         Limits limits, const CudaBackendOptions &options)
    : Backend(artifact, limits), api_(requireDriver()),
      device_(openDevice(artifact, options.deviceOrdinal)), options_(options) {
  const auto start = Clock::now();
  art::validate(artifact, limits.maxBatch, limits.maxSeq);
  checkWeights(artifact, checkpoint);
  stream_.emplace();
  compileKernels(options);
  allocate();
  blas_ = std::make_unique<CublasLt>();
  uploadWeights(checkpoint);
  warmUp();
  resetStates(0, limits.maxBatch);
  device_.synchronize();
  std::size_t freeBytes = 0, totalBytes = 0;
  XLC_CU_CHECK(api_.cuMemGetInfo_v2(&freeBytes, &totalBytes));
  description_ = fmt::format("cuda: {}; {}; {} in use, ready in {:.2f} s", device_.summary(),
                             blas_->description(), gib(totalBytes - freeBytes),
                             secondsSince(start));
}

CudaBackend::~CudaBackend() = default;

void CudaBackend::compileKernels(const CudaBackendOptions &options) {
  const art::Artifact &a = artifact();
  std::string dir = options.cacheDir == "off" ? std::string()
                    : options.cacheDir.empty() ? defaultKernelCacheDir()
                                               : options.cacheDir;
  KernelCache cache(dir);
  const auto start = Clock::now();
  // NVRTC compiles independent programs concurrently; the driver loads modules afterwards on
  // this thread (where the context is current).
  std::vector<std::future<CompiledCubin>> jobs;
  for (const art::Kernel &kernel : a.kernels)
    jobs.push_back(std::async(std::launch::async,
                              [&cache, &kernel, &a] { return cache.get(kernel, a.targetArch); }));
  std::size_t hits = 0;
  double compileSeconds = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    CompiledCubin compiled = jobs[i].get();
    hits += compiled.fromCache;
    compileSeconds += compiled.compileSeconds;
    const art::Kernel &kernel = a.kernels[i];
    modules_.push_back(cuda::Module::load(compiled.cubin));
    kernels_.push_back(modules_.back().kernel(kernel.entry.c_str()));
    if (kernel.sharedBytes > 48u * 1024u) {
      check(static_cast<int>(kernel.sharedBytes) <= device_.maxSharedMemoryPerBlockOptin(),
            "{}: kernel {} needs {} bytes of shared memory, the device allows {}", a.label(),
            kernel.name, kernel.sharedBytes, device_.maxSharedMemoryPerBlockOptin());
      kernels_.back().setMaxDynamicSharedMemory(static_cast<int>(kernel.sharedBytes));
    }
  }
  if (options.verbose)
    fmt::print(stderr, "[xlc] {} kernels ready in {:.2f} s: {} from the cache{}, {} compiled "
                       "({:.1f} s of NVRTC)\n",
               a.kernels.size(), secondsSince(start), hits,
               dir.empty() ? " (disabled)" : " " + dir, a.kernels.size() - hits, compileSeconds);
}

void CudaBackend::allocate() {
  const art::Artifact &a = artifact();
  const std::uint64_t maxB = limits().maxBatch, maxS = limits().maxSeq;
  // Add everything up first: an out-of-memory message should say what needs the memory.
  std::uint64_t weightsBytes = 0, stateBytes = 0, ioBytes = 0;
  for (const art::Buffer &b : a.buffers) {
    switch (b.cls) {
    case art::BufferClass::Weight:
      weightsBytes += art::byteSize(b).evaluate(1, 1, b.name);
      break;
    case art::BufferClass::State:
      stateBytes += art::byteSize(b).evaluate(maxB, 1, b.name);
      break;
    case art::BufferClass::Input:
    case art::BufferClass::Output:
      ioBytes += art::byteSize(b).evaluate(maxB, maxS, b.name);
      break;
    default:
      break;
    }
  }
  const std::uint64_t arenaBytes = a.arenaBytes.evaluate(maxB, maxS, "the arena");
  const std::uint64_t blasBytes = 32u << 20;
  const std::uint64_t total = weightsBytes + stateBytes + ioBytes + arenaBytes + blasBytes;
  std::size_t freeBytes = 0, totalBytes = 0;
  XLC_CU_CHECK(api_.cuMemGetInfo_v2(&freeBytes, &totalBytes));
  const std::string budget =
      fmt::format("weights {}, recurrent state {} ({} sequence slots), inputs and logits {}, "
                  "activation arena {} (batch {}, {} tokens per call), GEMM workspace {}: {} in "
                  "all",
                  gib(weightsBytes), gib(stateBytes), maxB, gib(ioBytes), gib(arenaBytes), maxB,
                  maxS, gib(blasBytes), gib(total));
  check(total <= freeBytes,
        "out of GPU memory: {} needs {}, but {} has only {} free of {}. Lower the batch or the "
        "tokens per call (--max-seq), or run with --device cpu",
        a.label(), budget, device_.name(), gib(freeBytes), gib(totalBytes));
  try {
    buffers_.resize(a.buffers.size());
    slotBytes_.assign(a.buffers.size(), 0);
    for (const art::Buffer &b : a.buffers) {
      switch (b.cls) {
      case art::BufferClass::Weight:
        buffers_[b.id] = cuda::DeviceBuffer(art::byteSize(b).evaluate(1, 1, b.name));
        break;
      case art::BufferClass::State:
        slotBytes_[b.id] = art::byteSize(b).evaluate(1, 1, b.name);
        buffers_[b.id] = cuda::DeviceBuffer(slotBytes_[b.id] * maxB);
        break;
      case art::BufferClass::Input:
      case art::BufferClass::Output:
        buffers_[b.id] = cuda::DeviceBuffer(art::byteSize(b).evaluate(maxB, maxS, b.name));
        break;
      default:
        break;
      }
    }
    arena_ = cuda::DeviceBuffer(std::max<std::uint64_t>(arenaBytes, 256));
    std::size_t flags = 0;
    for (const art::Function &fn : a.functions)
      flags += errorFlags(fn).size();
    errorFlags_ = cuda::DeviceBuffer(std::max<std::size_t>(flags, 1) * 8);
  } catch (const Error &e) {
    fail("allocating GPU memory for {} failed ({}); it needs {}", a.label(), e.what(), budget);
  }
}

const std::vector<CudaBackend::ErrorFlag> &CudaBackend::errorFlags(const art::Function &fn) {
  if (auto it = flagsByFunction_.find(fn.name); it != flagsByFunction_.end())
    return it->second;
  std::size_t next = 0;
  for (const auto &[name, flags] : flagsByFunction_)
    next += flags.size();
  std::vector<ErrorFlag> flags;
  for (std::size_t i = 0; i < fn.steps.size(); ++i)
    if (auto it = fn.steps[i].attrs.find("error_flag"); it != fn.steps[i].attrs.end())
      flags.push_back({i, it->get<art::BufferId>(), next++});
  return flagsByFunction_.emplace(fn.name, std::move(flags)).first->second;
}

void CudaBackend::uploadWeights(const weights::Checkpoint &checkpoint) {
  const art::Artifact &a = artifact();
  weights::Progress progress("uploading weights", weightBytes(a), a.weights.size(),
                             options_.verbose && weights::Progress::enabledByDefault());
  const auto start = Clock::now();
  // Assembly (reading the mapped checkpoint, concatenating, folding, rounding) is host work that
  // parallelises across bindings; the uploads stay on this thread, in binding order. A few
  // bindings are assembled ahead, which bounds the host memory held at once.
  auto assemble = [&](const art::WeightBinding &binding) {
    const art::Buffer &buffer = a.buffers[binding.buffer];
    return toDType(assembleWeight(a, binding, checkpoint), buffer.dtype, buffer.name);
  };
  const std::size_t ahead = std::max(2u, std::min(8u, std::thread::hardware_concurrency() / 2));
  std::deque<std::future<std::vector<std::uint8_t>>> pending;
  std::size_t next = 0;
  for (std::size_t i = 0; i < a.weights.size(); ++i) {
    while (next < a.weights.size() && pending.size() < ahead)
      pending.push_back(std::async(std::launch::async, assemble, std::cref(a.weights[next++])));
    std::vector<std::uint8_t> bytes = pending.front().get();
    pending.pop_front();
    buffers_[a.weights[i].buffer].upload(bytes.data(), bytes.size());
    progress.advance(bytes.size());
  }
  progress.finish();
  for (const art::Function &fn : a.functions)
    for (const art::Step &step : fn.steps) {
      const art::GemmStep *gemm = step.gemm();
      if (!gemm || gemm->epilogue != art::Epilogue::Bias || widenedBiases_.count(*gemm->c) ||
          a.buffers[*gemm->c].dtype == a.buffers[gemm->d].dtype ||
          a.buffers[gemm->d].dtype != art::DType::F32)
        continue;
      for (const art::WeightBinding &binding : a.weights)
        if (binding.buffer == *gemm->c) {
          // The checkpoint's values, not the rounded bf16 buffer: nothing is lost this way.
          std::vector<float> values = assembleWeight(a, binding, checkpoint);
          cuda::DeviceBuffer wide(values.size() * 4);
          wide.upload(values.data(), values.size() * 4);
          widenedBiases_.emplace(*gemm->c, std::move(wide));
        }
    }
  if (options_.verbose)
    fmt::print(stderr, "[xlc] {} of weights assembled and uploaded in {:.1f} s\n",
               gib(weightBytes(a)), secondsSince(start));
}

/// Runs every function once on slot 0 (one chunk of prefill, one decode step), so that what a
/// first call would otherwise pay for -- the driver's lazy module loading, cuBLASLt's algorithm
/// choice, the capture of the batch-1 decode graph -- is paid at start, not in the time to the
/// first token. The caller resets the state afterwards.
void CudaBackend::warmUp() {
  const art::Artifact &a = artifact();
  const std::uint64_t seq = std::min<std::uint64_t>(limits().maxSeq, a.model.chunkSize);
  std::vector<std::int32_t> tokens(seq, static_cast<std::int32_t>(a.model.bosTokenId));
  std::vector<float> logits(vocabSize());
  if (a.findFunction("prefill"))
    run("prefill", 0, 1, seq, tokens, logits, Logits::LastPosition);
  if (a.findFunction("decode_step"))
    run("decode_step", 0, 1, 1, std::span(tokens).first(1), logits, Logits::LastPosition);
}

CUdeviceptr CudaBackend::address(art::BufferId id, std::uint64_t firstSlot, std::uint64_t batch,
                                 std::uint64_t seq) const {
  const art::Buffer &b = artifact().buffers[id];
  if (art::isArenaClass(b.cls))
    return arena_.address() + b.offset->evaluate(batch, seq, b.name);
  if (b.cls == art::BufferClass::State)
    return buffers_[id].address() + firstSlot * slotBytes_[id];
  return buffers_[id].address();
}

void CudaBackend::enqueue(const art::Function &fn, std::uint64_t firstSlot, std::uint64_t batch,
                          std::uint64_t seq) {
  const art::Artifact &a = artifact();
  const CUstream stream = stream_->handle();
  const std::vector<ErrorFlag> &flags = errorFlags(fn);
  std::vector<std::uint64_t> slots;
  for (std::size_t i = 0; i < fn.steps.size(); ++i) {
    const art::Step &step = fn.steps[i];
    const std::string what = fmt::format("{} step {} ({})", fn.name, i, step.op);
    if (auto zero = step.attrs.find("zero_before"); zero != step.attrs.end())
      for (const auto &idJson : *zero) {
        const art::BufferId id = idJson.get<art::BufferId>();
        const std::uint64_t bytes =
            art::byteSize(a.buffers[id]).evaluate(batch, seq, a.buffers[id].name);
        XLC_CU_CHECK(api_.cuMemsetD8Async(address(id, firstSlot, batch, seq), 0, bytes, stream));
      }
    if (const art::LaunchStep *launch = step.launch()) {
      const art::Kernel &kernel = a.kernels[launch->kernel];
      slots.clear();
      for (const art::Arg &arg : launch->args) {
        switch (arg.kind) {
        case art::ArgKind::Buffer:
          slots.push_back(address(arg.bufferId, firstSlot, batch, seq));
          break;
        case art::ArgKind::Symbol:
          slots.push_back(*art::symbolValue(arg.symbolValue, batch, seq));
          break;
        case art::ArgKind::I64:
          slots.push_back(static_cast<std::uint64_t>(arg.intValue));
          break;
        case art::ArgKind::Expr:
          slots.push_back(arg.exprValue.evaluate(batch, seq, what));
          break;
        case art::ArgKind::F32:
          slots.push_back(f64Bits(static_cast<double>(arg.floatValue)));
          break;
        }
      }
      cuda::Dim3 grid;
      std::uint64_t g[3];
      for (int d = 0; d < 3; ++d)
        g[d] = kernel.grid[d].evaluate(batch, seq, what);
      grid = {static_cast<unsigned>(g[0]), static_cast<unsigned>(g[1]),
              static_cast<unsigned>(g[2])};
      kernels_[launch->kernel].launchSlots(grid, {kernel.block[0], kernel.block[1], kernel.block[2]},
                                           kernel.sharedBytes, stream, slots);
    } else if (const art::GemmStep *gemm = step.gemm()) {
      GemmShape shape;
      shape.m = gemm->m.evaluate(batch, seq, what);
      shape.n = gemm->n.evaluate(batch, seq, what);
      shape.k = gemm->k.evaluate(batch, seq, what);
      shape.ab = a.buffers[gemm->a].dtype;
      shape.d = a.buffers[gemm->d].dtype;
      shape.epilogue = gemm->epilogue;
      CUdeviceptr c = 0;
      if (gemm->c) {
        shape.bias = a.buffers[*gemm->c].dtype;
        c = address(*gemm->c, firstSlot, batch, seq);
        if (auto wide = widenedBiases_.find(*gemm->c);
            wide != widenedBiases_.end() && gemm->epilogue == art::Epilogue::Bias &&
            shape.d == art::DType::F32) {
          shape.bias = art::DType::F32;
          c = wide->second.address();
        }
      }
      check(a.buffers[gemm->b].dtype == shape.ab, "{}: A is {} but W is {}", what,
            art::dtypeName(shape.ab), art::dtypeName(a.buffers[gemm->b].dtype));
      check(gemm->epilogue != art::Epilogue::ResidualAdd || shape.bias == shape.d,
            "{}: the residual is {} but D is {} (cuBLASLt reads C in D's type)", what,
            art::dtypeName(shape.bias), art::dtypeName(shape.d));
      blas_->gemm(shape, address(gemm->a, firstSlot, batch, seq),
                  address(gemm->b, firstSlot, batch, seq), c,
                  address(gemm->d, firstSlot, batch, seq), stream, what);
    } else if (const art::CopyStep *copy = step.copy()) {
      XLC_CU_CHECK(api_.cuMemcpyDtoDAsync_v2(address(copy->dst, firstSlot, batch, seq),
                                             address(copy->src, firstSlot, batch, seq),
                                             copy->bytes.evaluate(batch, seq, what), stream));
    }
    // The flag lives in the reused arena: keep a copy before a later step overwrites it.
    for (const ErrorFlag &f : flags)
      if (f.step == i)
        XLC_CU_CHECK(api_.cuMemcpyDtoDAsync_v2(errorFlags_.address() + 8 * f.slot,
                                               address(f.flag, firstSlot, batch, seq), 8, stream));
  }
}

void CudaBackend::run(std::string_view function, std::uint64_t firstSlot, std::uint64_t batch,
                      std::uint64_t seq, std::span<const std::int32_t> tokens,
                      std::span<float> logits, Logits which) {
  const art::Function &fn = checkRun(function, firstSlot, batch, seq, tokens, logits, which);
  const art::Artifact &a = artifact();
  const std::uint64_t vocab = vocabSize();
  // Host-side check first: it names the exact sequence and position.
  for (std::size_t i = 0; i < tokens.size(); ++i)
    check(tokens[i] >= 0 && static_cast<std::uint64_t>(tokens[i]) < vocab,
          "{}: token id {} of sequence {} at position {} is outside the vocabulary [0, {})",
          function, tokens[i], i / seq, i % seq, vocab);
  const art::Buffer &input = a.buffers[fn.inputs[0]];
  const art::Buffer &output = a.buffers[fn.outputs[0]];
  check(input.dtype == art::DType::I32, "{}: token input {} must be i32", a.label(), input.name);
  const CUstream stream = stream_->handle();
  // On the compute stream: a synchronous copy runs on the legacy stream, which the non-blocking
  // compute stream does not wait for, so the first kernel could read the previous call's ids.
  // From pageable memory the copy is staged before this returns, so |tokens| may go right away.
  XLC_CU_CHECK(api_.cuMemcpyHtoDAsync_v2(buffers_[input.id].address(), tokens.data(),
                                         tokens.size_bytes(), stream));
  if (function == "decode_step" && options_.useGraphs) {
    auto key = std::make_tuple(std::string(function), firstSlot, batch);
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
      if (graphs_.size() >= kMaxGraphs)
        graphs_.clear();
      Graph g; // owns whatever the capture produced, on every path
      XLC_CU_CHECK(
          api_.cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
      try {
        enqueue(fn, firstSlot, batch, seq);
      } catch (...) {
        api_.cuStreamEndCapture(stream, &g.graph);
        throw;
      }
      XLC_CU_CHECK(api_.cuStreamEndCapture(stream, &g.graph));
      XLC_CU_CHECK(api_.cuGraphInstantiateWithFlags(&g.exec, g.graph, 0));
      it = graphs_.emplace(key, std::move(g)).first;
    }
    XLC_CU_CHECK(api_.cuGraphLaunch(it->second.exec, stream));
  } else {
    enqueue(fn, firstSlot, batch, seq);
  }
  stream_->synchronize();

  for (const ErrorFlag &f : errorFlags(fn)) {
    std::int64_t value = 0;
    errorFlags_.download(&value, 8, 8 * f.slot);
    check(value == 0, "{}: step {} ({}) reported an out-of-range token in row {} (sequence {}, "
                      "position {})",
          function, f.step, fn.steps[f.step].op, value - 1, (value - 1) / static_cast<std::int64_t>(seq),
          (value - 1) % static_cast<std::int64_t>(seq));
  }

  // Logits: every row, or the last position of each sequence.
  const std::uint64_t elem = art::dtypeSize(output.dtype);
  const std::uint64_t rowBytes = vocab * elem;
  std::vector<std::uint8_t> staging;
  auto fetchRows = [&](std::uint64_t firstRow, std::uint64_t rows, float *out) {
    if (output.dtype == art::DType::F32) {
      buffers_[output.id].download(out, rows * rowBytes, firstRow * rowBytes);
      return;
    }
    staging.resize(rows * rowBytes);
    buffers_[output.id].download(staging.data(), staging.size(), firstRow * rowBytes);
    for (std::uint64_t i = 0; i < rows * vocab; ++i)
      out[i] = elementToF32(staging.data() + i * elem, output.dtype);
  };
  if (which == Logits::AllPositions) {
    fetchRows(0, batch * seq, logits.data());
  } else {
    for (std::uint64_t b = 0; b < batch; ++b)
      fetchRows(b * seq + seq - 1, 1, logits.data() + b * vocab);
  }
}

void CudaBackend::resetStates(std::uint64_t firstSlot, std::uint64_t count) {
  checkSlots(firstSlot, count, "resetStates");
  for (const art::Buffer &b : artifact().buffers)
    if (b.cls == art::BufferClass::State)
      XLC_CU_CHECK(api_.cuMemsetD8_v2(buffers_[b.id].address() + firstSlot * slotBytes_[b.id], 0,
                                      count * slotBytes_[b.id]));
  device_.synchronize();
}

std::vector<float> CudaBackend::readState(std::uint64_t slot, std::size_t stateIndex) {
  checkSlots(slot, 1, "readState");
  std::size_t seen = 0;
  for (const art::Buffer &b : artifact().buffers) {
    if (b.cls != art::BufferClass::State || seen++ != stateIndex)
      continue;
    std::vector<std::uint8_t> bytes(slotBytes_[b.id]);
    buffers_[b.id].download(bytes.data(), bytes.size(), slot * slotBytes_[b.id]);
    const std::uint64_t elem = art::dtypeSize(b.dtype);
    std::vector<float> out(bytes.size() / elem);
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = elementToF32(bytes.data() + i * elem, b.dtype);
    return out;
  }
  fail("readState: the artifact has {} state buffers, index {} is out of range", seen,
       stateIndex);
}

} // namespace

std::unique_ptr<Backend> createCudaBackend(const art::Artifact &artifact,
                                           const weights::Checkpoint &checkpoint, Limits limits,
                                           const CudaBackendOptions &options) {
  return std::make_unique<CudaBackend>(artifact, checkpoint, limits, options);
}

} // namespace xlc::exec
