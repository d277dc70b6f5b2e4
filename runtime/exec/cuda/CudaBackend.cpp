//===- CudaBackend.cpp - Running an artifact on an NVIDIA GPU -------------===//
//
// Device memory plus four step handlers that enqueue on one stream; the step loop, addressing
// and duties are the plan executor's (runtime/exec/Plan.h). The setup checks live in
// Preflight.h, the weight upload in WeightUpload.h, the decode graphs in GraphCache.h.
// Every entry point makes the backend's context current first, so any thread may call it (one
// call at a time).
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cuda/CudaBackend.h"

#include "runtime/cuda/Device.h"
#include "runtime/cuda/DriverApi.h"
#include "runtime/exec/WeightAssembly.h"
#include "runtime/exec/cuda/CublasLt.h"
#include "runtime/exec/cuda/DeviceSampler.h"
#include "runtime/exec/cuda/Gemv.h"
#include "runtime/exec/cuda/GemvFusion.h"
#include "runtime/exec/cuda/KeptCounters.h"
#include "runtime/exec/cuda/GraphCache.h"
#include "runtime/exec/cuda/KernelCache.h"
#include "runtime/exec/cuda/Preflight.h"
#include "runtime/exec/cuda/WeightUpload.h"
#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <optional>
#include <set>
#include <tuple>

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

/// An on/off option of CudaBackendOptions: "on" or "off"; empty = $|env|, else on.
bool onOffOption(const std::string &option, const char *env, std::string_view what,
                 const char *fallback = "on") {
  std::string value = option;
  std::string where = fmt::format("the CUDA backend's {} option", what);
  if (value.empty()) {
    const char *set = std::getenv(env);
    value = set != nullptr && *set != '\0' ? set : fallback;
    where = fmt::format("${}", env);
  }
  check(value == "on" || value == "off", "{}: '{}' is not a {} mode (on or off)", where, value,
        what);
  return value == "on";
}

std::uint64_t f64Bits(double v) {
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

/// Step handlers that see only the GEMM steps (a dry run of a function's plan): the backend
/// decides every GEMM of a call with them before it enqueues the call (Gemv.h).
class GemmVisitor final : public StepHandlers {
public:
  using Visit = std::function<void(const PreparedStep &, const art::GemmStep &, std::uint64_t,
                                   std::uint64_t, std::uint64_t, const BufferRef &,
                                   const BufferRef &, const std::optional<BufferRef> &,
                                   const BufferRef &)>;
  using VisitLaunch = std::function<void(const PreparedStep &, std::span<const LaunchArg>)>;
  explicit GemmVisitor(Visit visit, VisitLaunch visitLaunch = {})
      : visit_(std::move(visit)), visitLaunch_(std::move(visitLaunch)) {}
  void zero(const BufferRef &, const PreparedStep &) override {}
  void launch(const PreparedStep &step, std::span<const LaunchArg> args,
              const CallShape &) override {
    if (visitLaunch_)
      visitLaunch_(step, args);
  }
  void gemm(const PreparedStep &step, const art::GemmStep &gemm, std::uint64_t m, std::uint64_t n,
            std::uint64_t k, const BufferRef &a, const BufferRef &b,
            const std::optional<BufferRef> &c, const BufferRef &d) override {
    visit_(step, gemm, m, n, k, a, b, c, d);
  }
  void copy(const PreparedStep &, const BufferRef &, const BufferRef &, std::uint64_t) override {}
  void keepErrorFlag(std::size_t, const BufferRef &) override {}

private:
  Visit visit_;
  VisitLaunch visitLaunch_;
};

/// One GEMM step as the backend runs it: the shape and the operands' addresses.
struct GemmCall {
  GemmShape shape;
  CUdeviceptr a = 0, w = 0, c = 0, d = 0;
};

class CudaBackend final : public Backend, private StepHandlers {
public:
  CudaBackend(const art::Artifact &artifact, const weights::Checkpoint &checkpoint, Limits limits,
              const CudaBackendOptions &options);
  ~CudaBackend() override = default;

  std::string_view kind() const override { return "cuda"; }
  std::string description() const override { return description_; }
  std::uint64_t nativeStream() const override {
    return reinterpret_cast<std::uint64_t>(stream_->handle());
  }
  void resetStates(std::uint64_t firstSlot, std::uint64_t count) override;
  std::vector<float> readState(std::uint64_t slot, std::size_t stateIndex) override;
  std::vector<float> readBoundBuffer(art::BufferId id) override;
  std::vector<float> readBuffer(art::BufferId id, const CallShape &shape) override;
  /// A static buffer this backend did not allocate (no function of it reads it) is an error.
  void checkHeld(const art::Buffer &b, std::string_view what) const;
  void writeBuffer(art::BufferId id, const CallShape &shape,
                   std::span<const float> values) override;

private:
  // Backend.
  const Memory &memory() const override { return memory_; }
  void uploadInput(const BufferRef &dst, std::span<const std::byte> bytes) override;
  std::vector<std::int64_t> execute(const PreparedFunction &fn, const CallShape &shape,
                                    std::span<const double> scalars,
                                    StepObserver *observer) override;
  void downloadRows(const BufferRef &src, std::uint64_t firstRow, std::uint64_t rows,
                    std::uint64_t rowElements, float *out) override;
  void prepareDraw(const DrawSource &source, const CallShape &shape,
                   const DrawRequest &draw) override;
  void finishDraw(const DrawSource &source, const CallShape &shape,
                  const DrawRequest &draw) override;

  // StepHandlers: enqueue on the stream.
  void zero(const BufferRef &buffer, const PreparedStep &step) override;
  void launch(const PreparedStep &step, std::span<const LaunchArg> args,
              const CallShape &shape) override;
  void gemm(const PreparedStep &step, const art::GemmStep &gemm, std::uint64_t m,
            std::uint64_t n, std::uint64_t k, const BufferRef &a, const BufferRef &b,
            const std::optional<BufferRef> &c, const BufferRef &d) override;
  void copy(const PreparedStep &step, const BufferRef &src, const BufferRef &dst,
            std::uint64_t bytes) override;
  void keepErrorFlag(std::size_t index, const BufferRef &flag) override;

  /// Checks a GEMM step's operands and says how it runs (shape, addresses).
  GemmCall gemmCall(const PreparedStep &step, const art::GemmStep &gemm, std::uint64_t m,
                    std::uint64_t n, std::uint64_t k, const BufferRef &a, const BufferRef &b,
                    const std::optional<BufferRef> &c, const BufferRef &d) const;
  /// Decides (Gemv::prepare) every GEMM of |fn| at |shape| that is not decided yet, outside any
  /// graph capture: a dry run of the plan, once per (function, B, S).
  void decideGemms(const PreparedFunction &fn, const CallShape &shape,
                   std::span<const double> scalars);
  /// Forgets the absorbed row kernel of the call in progress (a step that is not one of its
  /// GEMMs came); a first GEMM still waiting for its partner is a bug.
  void dropPendingPrologue();

  void compileKernels(const CudaBackendOptions &options);
  void allocate();
  void warmUp();

  const cuda::DriverApi &api_;
  cuda::CudaDevice device_;
  CudaBackendOptions options_;
  std::optional<cuda::Stream> stream_;
  std::vector<cuda::Module> modules_;
  std::vector<cuda::Kernel> kernels_;
  std::unique_ptr<CublasLt> blas_;
  std::vector<cuda::DeviceBuffer> buffers_; ///< by buffer id: states and static classes
  std::map<art::BufferId, cuda::DeviceBuffer> widenedBiases_;
  /// Per function: the widened trainable biases its launches may write (the optimizer's
  /// update), widened again after each call of it.
  std::map<std::string, std::vector<art::BufferId>, std::less<>> rewiden_;
  cuda::DeviceBuffer arena_, io_;
  Memory memory_;
  CallShape call_; ///< of the call in progress (a GEMM reading the last positions needs S)
  /// Error flags of the call in progress, copied out of the arena right after their step.
  cuda::DeviceBuffer errorFlags_;
  std::size_t maxErrorFlags_ = 0;
  std::unique_ptr<DeviceSampler> sampler_; ///< null: draws on the host (deviceSampling off)
  std::unique_ptr<Gemv> gemv_; ///< the small-m GEMMs' own kernel; null when XLC_GEMV=off
  bool pdl_ = true;            ///< kernels launched with programmatic stream serialization
  /// Row kernels a GEMV may absorb (GemvFusion.h), by function name and step index; empty when
  /// there is no GEMV or CudaBackendOptions::gemvPrologues is off.
  std::map<std::string, std::map<std::size_t, AbsorbableRowKernel>, std::less<>> absorbable_;
  /// Those absorbed at a (function, B, S): every GEMM reading the output runs on the GEMV. The
  /// value says whether its two GEMMs share one launch (Gemv::canPair).
  std::map<std::tuple<std::string, std::uint64_t, std::uint64_t>, std::map<std::size_t, bool>>
      absorbed_;
  const std::map<std::size_t, bool> *absorbedNow_ = nullptr; ///< of the call in progress, if any
  const std::map<std::size_t, AbsorbableRowKernel> *absorbableNow_ = nullptr; ///< its function's
  /// An absorbed row kernel of the call in progress whose GEMMs are still to come.
  struct PendingPrologue {
    art::BufferId output = 0;
    AbsorbedInput input;
    bool paired = false;             ///< its two GEMMs run in one launch
    std::optional<GemmCall> first;   ///< paired: the first GEMM, waiting for the second
  };
  std::optional<PendingPrologue> pending_;
  /// Counters outside the arena, zeroed once (KeptCounters.h), by buffer id; empty when
  /// CudaBackendOptions::keptCounters is off.
  std::map<art::BufferId, cuda::DeviceBuffer> keptCounters_;
  /// keptCounters_ for the call in progress; null while an observer looks at every step (it
  /// then sees the arena's counters zeroed before each launch, as the CPU backend has them).
  const std::map<art::BufferId, cuda::DeviceBuffer> *keptNow_ = nullptr;
  /// (function, B, S) whose GEMMs decideGemms() has seen (cleared beyond kMaxDecidedCalls).
  std::set<std::tuple<std::string, std::uint64_t, std::uint64_t>> gemmsDecided_;
  static constexpr std::size_t kMaxDecidedCalls = 4096;
  GraphCache graphs_; // after sampler_: graphs that launch its kernel go first
  std::vector<std::uint64_t> slots_; ///< a launch's parameter slots (reused)
  std::string description_;
};

CudaBackend::CudaBackend(const art::Artifact &artifact, const weights::Checkpoint &checkpoint,
                         Limits limits, const CudaBackendOptions &options)
    : Backend(artifact, limits), api_(requireDriver()),
      device_(openDevice(artifact, options.deviceOrdinal)), options_(options) {
  const auto start = Clock::now();
  checkWeights(artifact, checkpoint);
  stream_.emplace();
  compileKernels(options);
  // Off unless asked for: on the H100 the absorbed row kernels made batch-1 decode slower
  // (177 -> 148 tok/s, docs/benchmarks/decode-ab-h100-2026-12-07.md).
  if (gemv_ && onOffOption(options.gemvPrologues, "XLC_GEMV_PROLOGUES", "GEMV prologue", "off"))
    for (const art::Function &f : artifact.functions)
      for (AbsorbableRowKernel &row : findAbsorbableRowKernels(artifact, f))
        absorbable_[f.name].emplace(row.step, std::move(row));
  allocate();
  if (onOffOption(options.keptCounters, "XLC_KEPT_COUNTERS", "kept-counters"))
    for (art::BufferId id : findKeptCounters(artifact)) {
      const std::uint64_t bytes = plan().bytes(id, limits.maxBatch, limits.maxSeq);
      cuda::DeviceBuffer buffer(std::max<std::uint64_t>(bytes, 8));
      XLC_CU_CHECK(api_.cuMemsetD8_v2(buffer.address(), 0, buffer.bytes()));
      keptCounters_.emplace(id, std::move(buffer));
    }
  blas_ = std::make_unique<CublasLt>();
  widenedBiases_ = uploadWeights(artifact, checkpoint, buffers_,
                                 {.verbose = options_.verbose, .cacheDir = options_.cacheDir});
  fillMasterCopies();
  for (const art::Function &fn : artifact.functions)
    for (const auto &[bias, wide] : widenedBiases_) {
      if (artifact.buffers[bias].cls != art::BufferClass::Parameter)
        continue;
      const bool passed = std::any_of(fn.steps.begin(), fn.steps.end(), [&](const art::Step &s) {
        const art::LaunchStep *launch = s.launch();
        return launch && std::any_of(launch->args.begin(), launch->args.end(),
                                     [&](const art::Arg &arg) {
                                       return arg.kind == art::ArgKind::Buffer &&
                                              arg.bufferId == bias;
                                     });
      });
      if (passed)
        rewiden_[fn.name].push_back(bias);
    }
  warmUp();
  resetStates(0, 1); // the warm-up's slot; allocate() zeroed every slot
  std::size_t freeBytes = 0, totalBytes = 0;
  XLC_CU_CHECK(api_.cuMemGetInfo_v2(&freeBytes, &totalBytes));
  description_ = fmt::format(
      "cuda: {}; {}; small-m GEMMs {}{}; PDL {}; {} kept counters; {} in use, ready in {:.2f} "
      "s; tokens drawn on the {}",
      device_.summary(), blas_->description(),
      gemv_ ? fmt::format("GEMV {}", Gemv::modeName(gemv_->mode())) : std::string("cuBLASLt"),
      absorbable_.empty() ? "" : " (absorbing the row kernels before them)", pdl_ ? "on" : "off",
      keptCounters_.size(),
      gib(totalBytes - freeBytes), secondsSince(start), sampler_ ? "GPU" : "host");
}

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
  // The runtime's own GEMV kernels (Gemv.h), alongside, unless the mode is off (a bad mode
  // fails here, before anything is compiled).
  const Gemv::Mode gemvMode = options.gemv.empty()
                                  ? Gemv::modeFromEnvironment()
                                  : Gemv::parseMode(options.gemv, "the CUDA backend's GEMV mode");
  std::future<Gemv::Cubins> gemvJob;
  if (gemvMode != Gemv::Mode::Off)
    gemvJob = std::async(std::launch::async,
                         [&cache, &a] { return Gemv::compile(cache, a.targetArch); });
  std::future<DeviceSampler::Cubins> samplerJob; // the runtime's own sampling kernel, alongside
  if (options.deviceSampling)
    samplerJob = std::async(std::launch::async, [&cache, &a] {
      return DeviceSampler::compile(cache, a.targetArch, DeviceSampler::logitDtypes(a));
    });
  pdl_ = onOffOption(options.pdl, "XLC_PDL", "PDL");
  std::size_t hits = 0;
  double compileSeconds = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    CompiledCubin compiled = jobs[i].get();
    hits += compiled.fromCache;
    compileSeconds += compiled.compileSeconds;
    const art::Kernel &kernel = a.kernels[i];
    modules_.push_back(cuda::Module::load(compiled.cubin));
    kernels_.push_back(modules_.back().kernel(kernel.entry.c_str()));
    kernels_.back().setProgrammaticLaunch(pdl_);
    if (kernel.sharedBytes > 48u * 1024u) {
      check(static_cast<int>(kernel.sharedBytes) <= device_.maxSharedMemoryPerBlockOptin(),
            "{}: kernel {} needs {} bytes of shared memory, the device allows {}", a.label(),
            kernel.name, kernel.sharedBytes, device_.maxSharedMemoryPerBlockOptin());
      kernels_.back().setMaxDynamicSharedMemory(static_cast<int>(kernel.sharedBytes));
    }
  }
  if (gemvJob.valid()) {
    gemv_ = std::make_unique<Gemv>(gemvJob.get(), device_, gemvMode, options.verbose);
    gemv_->setProgrammaticLaunch(pdl_);
  }
  if (samplerJob.valid())
    sampler_ = std::make_unique<DeviceSampler>(samplerJob.get(), limits().maxBatch, vocabSize(),
                                               stream_->handle());
  if (options.verbose)
    fmt::print(stderr, "[xlc] {} kernels ready in {:.2f} s: {} from the cache{}, {} compiled "
                       "({:.1f} s of NVRTC)\n",
               a.kernels.size(), secondsSince(start), hits,
               dir.empty() ? " (disabled)" : " " + dir, a.kernels.size() - hits, compileSeconds);
}

void CudaBackend::allocate() {
  const art::Artifact &a = artifact();
  const std::uint64_t maxB = limits().maxBatch, maxS = limits().maxSeq;
  const std::size_t count = a.buffers.size();
  memory_.base.assign(count, 0);
  memory_.slotBytes.assign(count, 0);
  // Add everything up first: an out-of-memory message should say what needs the memory.
  std::uint64_t staticBytes = 0, stateBytes = 0, ioBytes = 0;
  // Weights no function of this backend reads are neither allocated nor uploaded: a training
  // backend skips the inference functions' folded weights (8.7 GiB for xLSTM 7B).
  const std::vector<bool> inUse = buffersInUse();
  auto needed = [&](const art::Buffer &b) {
    return b.cls != art::BufferClass::Weight || inUse[b.id];
  };
  // Inputs and outputs: one block that all functions share (they never run at the same time).
  const std::vector<std::uint64_t> ioOffset = plan().ioLayout(
      [&](art::BufferId id) { return plan().bytes(id, maxB, maxS); }, 256, ioBytes,
      limits().functions);
  for (const auto &[name, pf] : plan().functions())
    maxErrorFlags_ = std::max(maxErrorFlags_, pf.errorFlags.size());
  for (const art::Buffer &b : a.buffers) {
    if (art::isStaticClass(b.cls) && needed(b))
      staticBytes += plan().bytes(b.id, 1, 1);
    else if (b.cls == art::BufferClass::State)
      stateBytes += plan().bytes(b.id, maxB, 1);
  }
  const std::uint64_t arenaBytes = a.arenaBytes.evaluate(maxB, maxS, "the arena");
  const std::uint64_t blasBytes = 32u << 20;
  const std::uint64_t total = staticBytes + stateBytes + ioBytes + arenaBytes + blasBytes;
  std::size_t freeBytes = 0, totalBytes = 0;
  XLC_CU_CHECK(api_.cuMemGetInfo_v2(&freeBytes, &totalBytes));
  const std::string budget =
      fmt::format("weights {}, recurrent state {} ({} sequence slots), inputs and logits {}, "
                  "activation arena {} (batch {}, {} tokens per call), GEMM workspace {}: {} in "
                  "all",
                  gib(staticBytes), gib(stateBytes), maxB, gib(ioBytes), gib(arenaBytes), maxB,
                  maxS, gib(blasBytes), gib(total));
  check(total <= freeBytes,
        "out of GPU memory: {} needs {}, but {} has only {} free of {}. Lower the batch or the "
        "tokens per call (--max-seq), or run with --device cpu",
        a.label(), budget, device_.name(), gib(freeBytes), gib(totalBytes));
  try {
    buffers_.resize(count);
    for (const art::Buffer &b : a.buffers) {
      if (art::isStaticClass(b.cls) && needed(b)) {
        buffers_[b.id] = cuda::DeviceBuffer(plan().bytes(b.id, 1, 1));
        if (b.cls == art::BufferClass::Gradient || b.cls == art::BufferClass::Optimizer)
          buffers_[b.id].fill(0);
      } else if (b.cls == art::BufferClass::State) {
        memory_.slotBytes[b.id] = plan().bytes(b.id, 1, 1);
        buffers_[b.id] = cuda::DeviceBuffer(memory_.slotBytes[b.id] * maxB);
        // Zero (the state before the first token) now, once: the warm-up's prefill reads the
        // initial C, n, m of slot 0 (chunkwise kernel A) before anything has written them,
        // which compute-sanitizer's initcheck reports (issue 10). The other buffers a function
        // reads are written before: inputs by the upload, arena buffers by an earlier step of
        // the same call, counters and error flags by their step's zero duty, weights at load.
        // Nothing is zeroed per call; test/gpu/run_sanitizers.sh checks the whole run.
        buffers_[b.id].fill(0);
      }
      if (buffers_[b.id].bytes() > 0)
        memory_.base[b.id] = buffers_[b.id].address();
    }
    arena_ = cuda::DeviceBuffer(std::max<std::uint64_t>(arenaBytes, 256));
    memory_.arenaBase = arena_.address();
    memory_.arenaScale = 1;
    io_ = cuda::DeviceBuffer(std::max<std::uint64_t>(ioBytes, 256));
    for (const art::Buffer &b : a.buffers)
      if (b.cls == art::BufferClass::Input || b.cls == art::BufferClass::Output)
        memory_.base[b.id] = io_.address() + ioOffset[b.id];
    errorFlags_ = cuda::DeviceBuffer(std::max<std::size_t>(maxErrorFlags_, 1) * 8);
    // The fills above run on the legacy stream, which the non-blocking compute stream does not
    // wait for: finish them before the warm-up reads the state.
    device_.synchronize();
  } catch (const Error &e) {
    fail("allocating GPU memory for {} failed ({}); it needs {}", a.label(), e.what(), budget);
  }
}

/// Runs every function that takes token ids once on slot 0 (one chunk of prefill, one decode
/// step), so that what a first call would otherwise pay for -- the driver's lazy module loading,
/// cuBLASLt's algorithm choice, the capture of the batch-1 decode graph -- is paid at start, not
/// in the time to the first token. It reads defined data only -- BOS tokens, the weights, the
/// state that allocate() zeroed -- so that compute-sanitizer's initcheck has nothing to report
/// (test/gpu/run_sanitizers.sh). The caller resets slot 0 afterwards. The decode step draws a
/// token, as generation calls it, so the graph captured here is the one generation replays.
void CudaBackend::warmUp() {
  const art::Artifact &a = artifact();
  const std::uint64_t seq = std::min<std::uint64_t>(limits().maxSeq, a.model.chunkSize);
  std::vector<std::int32_t> tokens(seq, static_cast<std::int32_t>(a.model.bosTokenId));
  std::vector<float> logits(vocabSize());
  if (a.findFunction("prefill") && prepared("prefill"))
    run("prefill", 0, 1, seq, tokens, logits, Logits::LastPosition);
  if (a.findFunction("decode_step") && prepared("decode_step")) {
    const DrawRow row{0, 0, true};
    Draw drawn;
    const DrawRequest draw{SamplingOptions{}, std::span(&row, 1), std::span(&drawn, 1)};
    run("decode_step", 0, 1, 1, std::span(tokens).first(1), {}, Logits::LastPosition, &draw);
  }
}

void CudaBackend::uploadInput(const BufferRef &dst, std::span<const std::byte> bytes) {
  device_.makeCurrent();
  // On the compute stream: a synchronous copy runs on the legacy stream, which the non-blocking
  // compute stream does not wait for, so the first kernel could read the previous call's input.
  // From pageable memory the copy is staged before this returns, so |bytes| may go right away.
  XLC_CU_CHECK(
      api_.cuMemcpyHtoDAsync_v2(dst.address, bytes.data(), bytes.size(), stream_->handle()));
}

void CudaBackend::checkHeld(const art::Buffer &b, std::string_view what) const {
  check(!art::isStaticClass(b.cls) || b.id >= buffers_.size() || buffers_[b.id].bytes() > 0,
        "{}: weight '{}' is not held by this backend: none of its functions ({}) reads it", what,
        b.name, fmt::join(limits().functions, ", "));
}

std::vector<float> CudaBackend::readBuffer(art::BufferId id, const CallShape &shape) {
  checkShape(shape, "readBuffer");
  device_.makeCurrent();
  stream_->synchronize();
  const BufferRef ref = plan().resolve(memory_, id, shape);
  checkHeld(*ref.buffer, "readBuffer");
  const art::DType dtype = ref.buffer->dtype;
  check(dtype == art::DType::F32 || dtype == art::DType::BF16,
        "readBuffer: '{}' is not an f32 or bf16 buffer", ref.buffer->name);
  std::vector<float> out(ref.elements);
  if (dtype == art::DType::F32) {
    XLC_CU_CHECK(api_.cuMemcpyDtoH_v2(out.data(), ref.address, ref.elements * 4));
    return out;
  }
  std::vector<std::uint16_t> raw(ref.elements);
  XLC_CU_CHECK(api_.cuMemcpyDtoH_v2(raw.data(), ref.address, ref.elements * 2));
  for (std::size_t i = 0; i < raw.size(); ++i)
    out[i] = weights::bf16ToF32(raw[i]);
  return out;
}

void CudaBackend::writeBuffer(art::BufferId id, const CallShape &shape,
                              std::span<const float> values) {
  checkShape(shape, "writeBuffer");
  device_.makeCurrent();
  stream_->synchronize();
  const BufferRef ref = plan().resolve(memory_, id, shape);
  checkHeld(*ref.buffer, "writeBuffer");
  const art::DType dtype = ref.buffer->dtype;
  check((dtype == art::DType::F32 || dtype == art::DType::BF16) && values.size() == ref.elements,
        "writeBuffer: '{}' takes {} f32/bf16 values, got {}", ref.buffer->name, ref.elements,
        values.size());
  // On the compute stream and waited for: a synchronous copy from pageable memory may return
  // before the bytes land, and the non-blocking compute stream would not wait for it.
  if (dtype == art::DType::F32) {
    XLC_CU_CHECK(api_.cuMemcpyHtoDAsync_v2(ref.address, values.data(), values.size() * 4,
                                           stream_->handle()));
  } else {
    std::vector<std::uint16_t> raw(values.size());
    for (std::size_t i = 0; i < raw.size(); ++i)
      raw[i] = weights::f32ToBF16(values[i]);
    XLC_CU_CHECK(api_.cuMemcpyHtoDAsync_v2(ref.address, raw.data(), raw.size() * 2,
                                           stream_->handle()));
  }
  stream_->synchronize();
}

std::vector<std::int64_t> CudaBackend::execute(const PreparedFunction &fn, const CallShape &shape,
                                               std::span<const double> scalars,
                                               StepObserver *observer) {
  device_.makeCurrent();
  const CUstream stream = stream_->handle();
  call_ = shape;
  // Every GEMM's kernel is chosen by measurement before anything of the call is enqueued: a
  // graph capture cannot time, and an eager call should not stall halfway.
  if (gemv_)
    decideGemms(fn, shape, scalars);
  // An observer compares every step's outputs: no row kernel is absorbed then.
  absorbedNow_ = nullptr;
  pending_.reset();
  if (auto it = absorbed_.find({fn.function->name, shape.batch, shape.seq});
      it != absorbed_.end() && !it->second.empty() && !observer) {
    absorbedNow_ = &it->second;
    absorbableNow_ = &absorbable_.find(fn.function->name)->second;
  }
  keptNow_ = observer || keptCounters_.empty() ? nullptr : &keptCounters_;
  // A staged draw runs right after the function, in its graph (its options and rows are in
  // device memory, so the graph of a shape serves every step), and its results come back
  // before the one synchronisation below.
  const std::optional<DeviceSampler::Launch> draw = sampler_ ? sampler_->take() : std::nullopt;
  auto enqueue = [&] {
    plan().execute(fn, memory_, shape, scalars, *this, observer);
    if (draw)
      sampler_->enqueue(*draw, stream);
  };
  // Graphs bake in every argument: only for functions without scalars (decode steps), and not
  // while an observer looks at every step.
  if (fn.function->name == "decode_step" && options_.useGraphs && scalars.empty() && !observer)
    graphs_.launch(draw ? fn.function->name + "+draw" : fn.function->name, shape.firstSlot,
                   shape.batch, stream, enqueue);
  else
    enqueue();
  if (draw)
    sampler_->enqueueDownload(*draw, stream);
  stream_->synchronize();
  if (auto it = rewiden_.find(fn.function->name); it != rewiden_.end())
    for (art::BufferId bias : it->second) { // small vectors (the gates' biases): via the host
      const art::Buffer &b = artifact().buffers[bias];
      const std::uint64_t count = plan().elements(bias, 1, 1);
      const std::vector<float> values = downloadAsF32(buffers_[bias], b.dtype, count);
      widenedBiases_.at(bias).upload(values.data(), count * 4);
    }
  std::vector<std::int64_t> flags(fn.errorFlags.size(), 0);
  if (!flags.empty())
    errorFlags_.download(flags.data(), flags.size() * 8);
  return flags;
}

void CudaBackend::downloadRows(const BufferRef &src, std::uint64_t firstRow, std::uint64_t rows,
                               std::uint64_t rowElements, float *out) {
  const art::DType dtype = src.buffer->dtype;
  check(dtype == art::DType::F32 || dtype == art::DType::BF16,
        "output '{}' is {}; the CUDA backend returns f32 and bf16 outputs", src.buffer->name,
        art::dtypeName(dtype));
  const std::uint64_t elem = art::dtypeSize(dtype);
  const std::uint64_t count = rows * rowElements;
  const std::uint64_t offset = src.address - io_.address() + firstRow * rowElements * elem;
  if (dtype == art::DType::F32) { // straight into the caller's span: no staging copy
    io_.download(out, count * 4, offset);
    return;
  }
  std::vector<float> values = downloadAsF32(io_, dtype, count, offset);
  std::memcpy(out, values.data(), count * 4);
}

void CudaBackend::prepareDraw(const DrawSource &source, const CallShape &shape,
                              const DrawRequest &draw) {
  if (!sampler_)
    return Backend::prepareDraw(source, shape, draw);
  device_.makeCurrent();
  const art::DType dtype = source.buffer.buffer->dtype;
  sampler_->stage(draw.options, draw.rows,
                  {source.buffer.address + source.first * art::dtypeSize(dtype), dtype,
                   source.stride, shape.batch},
                  source.elements, stream_->handle());
}

void CudaBackend::finishDraw(const DrawSource &source, const CallShape &shape,
                             const DrawRequest &draw) {
  if (!sampler_)
    return Backend::finishDraw(source, shape, draw);
  sampler_->results(draw.results);
}

void CudaBackend::zero(const BufferRef &buffer, const PreparedStep &) {
  dropPendingPrologue();
  if (keptNow_ && keptNow_->count(buffer.id))
    return; // zero since the last launch left it so (KeptCounters.h)
  XLC_CU_CHECK(api_.cuMemsetD8Async(buffer.address, 0,
                                    buffer.elements * art::dtypeSize(buffer.buffer->dtype),
                                    stream_->handle()));
}

void CudaBackend::launch(const PreparedStep &ps, std::span<const LaunchArg> args,
                         const CallShape &shape) {
  dropPendingPrologue();
  if (absorbedNow_ && absorbedNow_->count(ps.index)) {
    // The GEMMs right after this row kernel form its output themselves (GemvFusion.h).
    const AbsorbableRowKernel &row = absorbableNow_->at(ps.index);
    pending_ = PendingPrologue{row.output, absorbedInput(*ps.kernel, row.kind, args),
                               absorbedNow_->at(ps.index), std::nullopt};
    return;
  }
  const art::Kernel &kernel = *ps.kernel;
  slots_.clear();
  for (const LaunchArg &arg : args) {
    switch (arg.kind) {
    case art::ParamKind::Buffer: {
      CUdeviceptr address = arg.buffer.address;
      if (keptNow_)
        if (auto kept = keptNow_->find(arg.buffer.id); kept != keptNow_->end())
          address = kept->second.address();
      slots_.push_back(address);
      break;
    }
    case art::ParamKind::I64:
      slots_.push_back(static_cast<std::uint64_t>(arg.integer));
      break;
    case art::ParamKind::F32:
      slots_.push_back(f64Bits(arg.real));
      break;
    }
  }
  std::uint64_t g[3];
  for (int d = 0; d < 3; ++d)
    g[d] = kernel.grid[d].evaluate(shape.batch, shape.seq, ps.where);
  kernels_[ps.kernelIndex].launchSlots(
      {static_cast<unsigned>(g[0]), static_cast<unsigned>(g[1]), static_cast<unsigned>(g[2])},
      {kernel.block[0], kernel.block[1], kernel.block[2]}, kernel.sharedBytes,
      stream_->handle(), slots_);
}

GemmCall CudaBackend::gemmCall(const PreparedStep &ps, const art::GemmStep &g, std::uint64_t m,
                               std::uint64_t n, std::uint64_t k, const BufferRef &a,
                               const BufferRef &b, const std::optional<BufferRef> &c,
                               const BufferRef &d) const {
  const std::string &what = ps.where;
  // Reading the last position of each sequence, A is [B, S, k] and row r of op(A) starts at
  // element ((r + 1)·S − 1)·k: the pointer moves to row S − 1 and the row stride is S·k.
  const bool lastRows = g.aRows == art::GemmRows::LastPosition;
  const std::uint64_t seq = lastRows ? call_.seq : 1;
  std::uint64_t mk = 0, nk = 0, mn = 0, aNeeded = 0;
  check(!__builtin_mul_overflow(m, k, &mk) && !__builtin_mul_overflow(n, k, &nk) &&
            !__builtin_mul_overflow(m, n, &mn) && !__builtin_mul_overflow(mk, seq, &aNeeded) &&
            a.elements >= aNeeded && b.elements >= nk && d.elements >= mn,
        "{}: GEMM operands are smaller than m = {}, n = {}, k = {} need", what, m, n, k);
  check(!lastRows || (!g.transA && m == call_.batch),
        "{}: a_rows last_position needs m = B = {}, got m = {}", what, call_.batch, m);
  GemmShape shape;
  shape.m = m;
  shape.n = n;
  shape.k = k;
  shape.ab = a.buffer->dtype;
  shape.d = d.buffer->dtype;
  shape.epilogue = g.epilogue;
  shape.transA = g.transA;
  shape.transB = g.transB;
  shape.accumulate = g.accumulate;
  CUdeviceptr cAddress = 0;
  if (c) {
    shape.bias = c->buffer->dtype;
    cAddress = c->address;
    if (auto wide = widenedBiases_.find(c->id); wide != widenedBiases_.end() &&
                                                g.epilogue == art::Epilogue::Bias &&
                                                shape.d == art::DType::F32) {
      shape.bias = art::DType::F32;
      cAddress = wide->second.address();
    }
  }
  check(g.epilogue != art::Epilogue::Bias || shape.bias == shape.d || shape.d != art::DType::F32,
        "{}: the bias '{}' is {} but D is f32, and it was not widened at load (only biases "
        "bound from the checkpoint are)",
        what, c->buffer->name, art::dtypeName(shape.bias));
  check(b.buffer->dtype == shape.ab,
        "{}: A is {} but B is {} (cuBLASLt multiplies one type by itself; the compiler's "
        "xlc-uniform-gemm-operands converts the wider operand)",
        what, art::dtypeName(shape.ab),
        art::dtypeName(b.buffer->dtype));
  check(g.epilogue != art::Epilogue::ResidualAdd || shape.bias == shape.d,
        "{}: the residual is {} but D is {} (cuBLASLt reads C in D's type)", what,
        art::dtypeName(shape.bias), art::dtypeName(shape.d));
  CUdeviceptr aAddress = a.address;
  if (lastRows && seq > 1) {
    const std::uint64_t rowBytes = k * art::dtypeSize(shape.ab);
    aAddress += (seq - 1) * rowBytes;
    shape.lda = seq * k;
    // The lowest set bit of the address is its alignment; the heuristic assumes 256.
    const std::uint64_t alignment = aAddress & (~aAddress + 1);
    if (alignment < 256)
      shape.aAlignment = static_cast<std::uint32_t>(alignment);
  }
  return {shape, aAddress, b.address, cAddress, d.address};
}

void CudaBackend::gemm(const PreparedStep &ps, const art::GemmStep &g, std::uint64_t m,
                       std::uint64_t n, std::uint64_t k, const BufferRef &a, const BufferRef &b,
                       const std::optional<BufferRef> &c, const BufferRef &d) {
  GemmCall call = gemmCall(ps, g, m, n, k, a, b, c, d);
  const CUstream stream = stream_->handle();
  if (pending_ && pending_->output == a.id) {
    // The row kernel that writes A was not launched: the GEMV forms A from its input.
    call.shape.lda = pending_->input.lda;
    if (pending_->paired && !pending_->first) {
      pending_->first = call; // the second GEMM, the next step, launches both
      return;
    }
    if (pending_->paired) {
      const GemmCall &first = *pending_->first;
      gemv_->runPair(first.shape, pending_->input.a, first.w, first.c, first.d,
                     GemvSecond{call.shape, call.w, call.c, call.d}, stream,
                     pending_->input.prologue);
      pending_->first.reset();
      return;
    }
    check(gemv_->run(call.shape, pending_->input.a, call.w, call.c, call.d, stream, *blas_,
                     ps.where, pending_->input.prologue),
          "{}: the row kernel before this GEMM was absorbed, but the GEMM did not run on the "
          "GEMV kernel (a bug: decideGemms checked it would)",
          ps.where);
    return;
  }
  dropPendingPrologue();
  if (gemv_ && gemv_->run(call.shape, call.a, call.w, call.c, call.d, stream, *blas_, ps.where))
    return;
  blas_->gemm(call.shape, call.a, call.w, call.c, call.d, stream, ps.where);
}

void CudaBackend::dropPendingPrologue() {
  check(!pending_ || !pending_->first,
        "a GEMM that shares a launch with the next one was not followed by it (a bug: "
        "findAbsorbableRowKernels only pairs adjacent GEMM steps)");
  pending_.reset();
}

void CudaBackend::decideGemms(const PreparedFunction &fn, const CallShape &shape,
                              std::span<const double> scalars) {
  auto key = std::make_tuple(fn.function->name, shape.batch, shape.seq);
  if (gemmsDecided_.count(key))
    return;
  if (gemmsDecided_.size() >= kMaxDecidedCalls) {
    gemmsDecided_.clear(); // re-walking a call's plan is cheap; deciding a shape happens once
    absorbed_.clear();
  }
  // A row kernel is absorbed when every GEMM reading its output runs on the GEMV kernel and
  // the GEMV can read the row kernel's input in its place.
  const auto rows = absorbable_.find(fn.function->name);
  std::map<std::size_t, bool> absorbable; // row kernel step -> all its GEMMs agree so far
  std::map<std::size_t, std::size_t> consumerOf;
  std::map<std::size_t, std::vector<GemmCall>> consumerCalls; // as they would run absorbed
  std::optional<std::pair<std::size_t, AbsorbedInput>> current;
  GemmVisitor visitor(
      [&](const PreparedStep &ps, const art::GemmStep &g, std::uint64_t m, std::uint64_t n,
          std::uint64_t k, const BufferRef &a, const BufferRef &b,
          const std::optional<BufferRef> &c, const BufferRef &d) {
        const GemmCall call = gemmCall(ps, g, m, n, k, a, b, c, d);
        gemv_->prepare(call.shape, call.a, call.w, *blas_, stream_->handle(), ps.where);
        auto owner = consumerOf.find(ps.index);
        if (owner == consumerOf.end() || !current || current->first != owner->second)
          return;
        GemmShape absorbed = call.shape;
        absorbed.lda = current->second.lda;
        consumerCalls[owner->second].push_back({absorbed, current->second.a, call.w, 0, 0});
        const Gemv::Decision *decision = gemv_->decision(call.shape);
        const bool upAligned = current->second.prologue.upOffset % 8 == 0;
        // D may take the row kernel's input's place in the arena (unfused, that input is dead
        // by then); the absorbing GEMV still reads it.
        const CUdeviceptr dEnd = d.address + d.elements * art::dtypeSize(d.buffer->dtype);
        const bool apart =
            dEnd <= current->second.inputBegin || d.address >= current->second.inputEnd;
        absorbable[owner->second] =
            absorbable[owner->second] && decision && decision->useGemv && upAligned && apart &&
            Gemv::unsupportedReason(absorbed, current->second.a, call.w).empty();
      },
      [&](const PreparedStep &ps, std::span<const LaunchArg> args) {
        current.reset();
        if (rows == absorbable_.end())
          return;
        auto row = rows->second.find(ps.index);
        if (row == rows->second.end())
          return;
        current.emplace(ps.index, absorbedInput(*ps.kernel, row->second.kind, args));
        absorbable.emplace(ps.index, true);
        for (std::size_t c : row->second.consumers)
          consumerOf[c] = ps.index;
      });
  plan().execute(fn, memory_, shape, scalars, visitor);
  // Two GEMMs of one row (q|k|v|o and the gates) share a launch when they can.
  std::map<std::size_t, bool> absorbed;
  for (const auto &[step, ok] : absorbable) {
    const std::vector<GemmCall> &calls = consumerCalls[step];
    if (!ok || calls.size() != rows->second.at(step).consumers.size())
      continue;
    absorbed[step] = calls.size() == 2 && gemv_->canPair(calls[0].shape, calls[1].shape,
                                                         calls[1].w);
  }
  if (options_.verbose && rows != absorbable_.end()) {
    const auto pairs = std::count_if(absorbed.begin(), absorbed.end(),
                                     [](const auto &entry) { return entry.second; });
    fmt::print(stderr,
               "[xlc] {} at B = {}, S = {}: {} of {} row kernels absorbed by the GEMV kernel, "
               "{} GEMM pairs in one launch each\n",
               fn.function->name, shape.batch, shape.seq, absorbed.size(), rows->second.size(),
               pairs);
  }
  absorbed_[key] = std::move(absorbed);
  gemmsDecided_.insert(std::move(key));
}

void CudaBackend::copy(const PreparedStep &ps, const BufferRef &src, const BufferRef &dst,
                       std::uint64_t bytes) {
  dropPendingPrologue();
  check(bytes <= src.elements * art::dtypeSize(src.buffer->dtype) &&
            bytes <= dst.elements * art::dtypeSize(dst.buffer->dtype),
        "{}: copies {} bytes, more than '{}' or '{}' hold", ps.where, bytes, src.buffer->name,
        dst.buffer->name);
  XLC_CU_CHECK(api_.cuMemcpyDtoDAsync_v2(dst.address, src.address, bytes, stream_->handle()));
}

void CudaBackend::keepErrorFlag(std::size_t index, const BufferRef &flag) {
  // The flag lives in the reused arena: keep a copy before a later step overwrites it.
  XLC_CU_CHECK(api_.cuMemcpyDtoDAsync_v2(errorFlags_.address() + 8 * index, flag.address, 8,
                                         stream_->handle()));
}

void CudaBackend::resetStates(std::uint64_t firstSlot, std::uint64_t count) {
  checkSlots(firstSlot, count, "resetStates");
  device_.makeCurrent();
  for (const art::Buffer &b : artifact().buffers)
    if (b.cls == art::BufferClass::State)
      XLC_CU_CHECK(api_.cuMemsetD8_v2(buffers_[b.id].address() +
                                          firstSlot * memory_.slotBytes[b.id],
                                      0, count * memory_.slotBytes[b.id]));
  device_.synchronize();
}

std::vector<float> CudaBackend::readState(std::uint64_t slot, std::size_t stateIndex) {
  checkSlots(slot, 1, "readState");
  device_.makeCurrent();
  std::size_t seen = 0;
  for (const art::Buffer &b : artifact().buffers) {
    if (b.cls != art::BufferClass::State || seen++ != stateIndex)
      continue;
    const std::uint64_t per = memory_.slotBytes[b.id];
    return downloadAsF32(buffers_[b.id], b.dtype, per / art::dtypeSize(b.dtype), slot * per);
  }
  fail("readState: the artifact has {} state buffers, index {} is out of range", seen,
       stateIndex);
}

std::vector<float> CudaBackend::readBoundBuffer(art::BufferId id) {
  check(id < artifact().buffers.size() && art::isBoundClass(artifact().buffers[id].cls),
        "readBoundBuffer: buffer {} is not a weight or parameter", id);
  device_.makeCurrent();
  const art::Buffer &b = artifact().buffers[id];
  return downloadAsF32(buffers_[id], b.dtype, plan().elements(id, 1, 1));
}

} // namespace

std::unique_ptr<Backend> createCudaBackend(const art::Artifact &artifact,
                                           const weights::Checkpoint &checkpoint, Limits limits,
                                           const CudaBackendOptions &options) {
  return std::make_unique<CudaBackend>(artifact, checkpoint, limits, options);
}

} // namespace xlc::exec
