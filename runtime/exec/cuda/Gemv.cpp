//===- Gemv.cpp - The decode GEMMs on xlc's own split-K GEMV kernel -------===//

#include "runtime/exec/cuda/Gemv.h"

#include "runtime/cuda/DriverApi.h"
#include "runtime/support/Error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>

namespace xlc::exec {
namespace art = xlc::artifact;

namespace {

static_assert(sizeof(gemv_abi::Params) == 24 * 8,
              "the host copy of gemv.cuh's GemvParams is made of 8-byte slots");

/// The process-wide measurements, by device kind and shape (Gemv.h: backends share them).
struct Measured {
  GemvPlan plan;
  double gemvUs = 0, cublasUs = 0;
};

std::mutex &tableMutex() {
  static std::mutex mutex;
  return mutex;
}

template <class Key> std::map<std::pair<std::string, Key>, Measured> &table() {
  static std::map<std::pair<std::string, Key>, Measured> measured;
  return measured;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::uint64_t ceilDiv(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

gemv_abi::Epilogue abiEpilogue(art::Epilogue e) {
  return e == art::Epilogue::Bias          ? gemv_abi::Epilogue::Bias
         : e == art::Epilogue::ResidualAdd ? gemv_abi::Epilogue::Residual
                                           : gemv_abi::Epilogue::None;
}

} // namespace

double gemmBytes(const GemmShape &s) {
  double bytes = static_cast<double>(s.n) * s.k * 2 + static_cast<double>(s.m) * s.k * 2 +
                 static_cast<double>(s.m) * s.n * art::dtypeSize(s.d);
  if (s.epilogue == art::Epilogue::Bias)
    bytes += static_cast<double>(s.n) * art::dtypeSize(s.bias);
  else if (s.epilogue == art::Epilogue::ResidualAdd)
    bytes += static_cast<double>(s.m) * s.n * art::dtypeSize(s.d);
  return bytes;
}

double peakBytesPerSecond(const cuda::CudaDevice &device) {
  int clockKHz = 0, busBits = 0;
  const cuda::DriverApi &api = cuda::driver();
  if (api.cuDeviceGetAttribute(&clockKHz, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE,
                               device.handle()) != CUDA_SUCCESS ||
      api.cuDeviceGetAttribute(&busBits, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH,
                               device.handle()) != CUDA_SUCCESS)
    return 0;
  return 2.0 * clockKHz * 1e3 * busBits / 8.0;
}

std::string GemvTiling::describe() const {
  return fmt::format("rows {}, warps {}, unroll {}{}", rows(), warps, unroll,
                     stages == 2 ? ", 2 stages" : "");
}

const std::vector<GemvTiling> &gemvTilings() {
  // Small to large blocks and bytes in flight per warp (1 KiB·rowTiles·unroll): (1, 4, 2) is the
  // finest grain for small n with a deep split; (2, 4, 4) and (1, 8, 4) keep 8 and 4 KiB per
  // warp in flight; (4, 4, 2) reuses each activation load over 64 outputs. The double-buffered
  // ones (stages 2) keep one to two groups in flight per warp; they are the 16-row tilings,
  // whose registers stay at most 120 a thread (the 32-row ones need up to 206). The order is
  // the entry-point order of the translation units (and the test variants' order, GemvCases.h).
  static const std::vector<GemvTiling> tilings = {
      {1, 4, 2, 1}, {1, 4, 4, 1}, {2, 4, 4, 1}, {2, 8, 2, 1}, {4, 4, 2, 1}, {1, 8, 4, 1},
      {1, 4, 2, 2}, {1, 4, 4, 2}, {1, 8, 2, 2}, {1, 8, 4, 2},
  };
  return tilings;
}

std::string GemvPlan::describe() const {
  const GemvTiling &t = gemvTilings().at(tiling);
  return fmt::format("{}, split {} (k {} per block), grid {}x{}", t.describe(), gridY, kSplit,
                     gridX, gridY);
}

Gemv::Mode Gemv::parseMode(std::string_view text, std::string_view what) {
  if (text == "off")
    return Mode::Off;
  if (text == "on")
    return Mode::On;
  if (text == "auto")
    return Mode::Auto;
  fail("{} is '{}': the GEMV mode is off (always cuBLASLt), on (the GEMV kernel wherever it "
       "applies) or auto (measured per shape)",
       what, text);
}

std::string_view Gemv::modeName(Mode mode) {
  switch (mode) {
  case Mode::Off:
    return "off";
  case Mode::On:
    return "on";
  case Mode::Auto:
    break;
  }
  return "auto";
}

Gemv::Mode Gemv::modeFromEnvironment() {
  const char *value = std::getenv("XLC_GEMV");
  return value == nullptr || *value == '\0' ? Mode::Auto : parseMode(value, "$XLC_GEMV");
}

std::string Gemv::unsupportedReason(const GemmShape &s, CUdeviceptr a, CUdeviceptr w) {
  const std::uint64_t lda = s.lda != 0 ? s.lda : s.k;
  if (s.transA || !s.transB || s.accumulate)
    return "not the forward form D = A·Wᵀ";
  if (s.m < 1 || s.m > kMaxM)
    return fmt::format("m = {} is not in 1..{}", s.m, kMaxM);
  if (s.n < 1 || s.k < 1)
    return "an empty GEMM";
  if (s.ab != art::DType::BF16)
    return fmt::format("A and W are {}, not bf16", art::dtypeName(s.ab));
  if (s.d != art::DType::BF16 && s.d != art::DType::F32)
    return fmt::format("D is {}, not bf16 or f32", art::dtypeName(s.d));
  if (s.epilogue == art::Epilogue::Bias && s.bias != art::DType::BF16 && s.bias != art::DType::F32)
    return fmt::format("the bias is {}, not bf16 or f32", art::dtypeName(s.bias));
  if (s.epilogue == art::Epilogue::ResidualAdd && s.bias != s.d)
    return "the residual's type is not D's";
  if (s.k % 8 != 0 || lda % 8 != 0)
    return fmt::format("k = {} or the row stride {} of A is not a multiple of 8", s.k, lda);
  if (a % 16 != 0 || w % 16 != 0)
    return "A or W is not 16-byte aligned";
  if (ceilDiv(s.n, 16) > 0x7fffffffu)
    return fmt::format("n = {} needs more than 2^31 - 1 blocks", s.n);
  return {};
}

std::string Gemv::configText(art::DType out, const GemvTiling &t) {
  check(out == art::DType::BF16 || out == art::DType::F32,
        "GEMV: outputs of type {} are not supported (bf16 or f32)", art::dtypeName(out));
  return fmt::format("xlc::device::GemvConfig<{}, {}, {}, {}, {}>",
                     out == art::DType::F32 ? "float" : "__nv_bfloat16", t.rowTiles, t.warps,
                     t.unroll, t.stages);
}

std::string Gemv::entryName(std::size_t index) { return fmt::format("xlc_gemv_{}", index); }

art::Kernel Gemv::kernel(art::DType out) {
  art::Kernel k;
  k.name = fmt::format("gemv_{}", art::dtypeName(out));
  k.family = "gemv";
  k.entry = entryName(0);
  k.options = {"--std=c++17"};
  // One translation unit per output type, one entry point per tiling (the emitted form of
  // runtime/kernels/Registry.cpp renderKernel, repeated): one NVRTC run parses the headers once.
  k.source = fmt::format("// xlc runtime kernels: {} (runtime/exec/cuda/Gemv.cpp)\n"
                         "#include \"xlc/device/gemv.cuh\"\n",
                         k.name);
  const std::vector<GemvTiling> &tilings = gemvTilings();
  for (std::size_t i = 0; i < tilings.size(); ++i)
    k.source += fmt::format("extern \"C\" __global__ void __launch_bounds__({0}::kThreads)\n"
                            "{1}(xlc::device::GemvParams p) {{\n"
                            "  xlc::device::gemv<{0}>(p); // waits inside (gemv.cuh)\n}}\n",
                            configText(out, tilings[i]), entryName(i));
  return k;
}

Gemv::Cubins Gemv::compile(const KernelCache &cache, const std::string &arch) {
  Cubins cubins;
  for (art::DType out : {art::DType::BF16, art::DType::F32})
    cubins.emplace(out, cache.get(kernel(out), arch));
  return cubins;
}

std::vector<GemvPlan> Gemv::candidates(const GemmShape &s, int smCount) {
  std::vector<GemvPlan> plans;
  const std::uint64_t steps = ceilDiv(s.k, 32);
  const std::vector<GemvTiling> &tilings = gemvTilings();
  for (std::size_t t = 0; t < tilings.size(); ++t) {
    const GemvTiling &tiling = tilings[t];
    const std::uint64_t gridX = ceilDiv(s.n, static_cast<std::uint64_t>(tiling.rows()));
    std::vector<std::uint64_t> gridYs = {1};
    // Splits for about 1, 2 and 4 blocks per SM; slices whole groups of `unroll` steps.
    for (std::uint64_t perSm : {1, 2, 4}) {
      const std::uint64_t wish = ceilDiv(perSm * static_cast<std::uint64_t>(smCount), gridX);
      if (wish < 2)
        continue;
      const std::uint64_t unroll = static_cast<std::uint64_t>(tiling.unroll);
      const std::uint64_t kSplit = 32 * unroll * ceilDiv(steps, wish * unroll);
      const std::uint64_t gridY = ceilDiv(s.k, kSplit);
      // Partials: the products and, for an RMS-norm prologue, the row sums of squares.
      if (gridY < 2 || gridY > 65535 || gridY * s.m * (s.n + 1) > kMaxPartials ||
          gridX > kMaxCounters)
        continue;
      if (std::find(gridYs.begin(), gridYs.end(), gridY) == gridYs.end())
        gridYs.push_back(gridY);
    }
    for (std::uint64_t gridY : gridYs) {
      GemvPlan p;
      p.tiling = t;
      p.kSplit = gridY == 1 ? 32 * steps : 32 * ceilDiv(steps, gridY);
      // Whole groups per slice where that keeps the same number of slices.
      const std::uint64_t grouped =
          32 * static_cast<std::uint64_t>(tiling.unroll) *
          ceilDiv(ceilDiv(steps, gridY), static_cast<std::uint64_t>(tiling.unroll));
      if (ceilDiv(s.k, grouped) == gridY)
        p.kSplit = grouped;
      p.gridX = static_cast<std::uint32_t>(gridX);
      p.gridY = static_cast<std::uint32_t>(ceilDiv(s.k, p.kSplit));
      plans.push_back(p);
    }
  }
  return plans;
}

void Gemv::setProgrammaticLaunch(bool on) {
  for (auto &[out, compiled] : kernels_)
    for (cuda::Kernel &entry : compiled.entries)
      entry.setProgrammaticLaunch(on);
}

Gemv::Gemv(const Cubins &cubins, const cuda::CudaDevice &device, Mode mode, bool verbose)
    : mode_(mode), verbose_(verbose) {
  const std::vector<GemvTiling> &tilings = gemvTilings();
  for (const auto &[out, compiled] : cubins) {
    Compiled &c = kernels_[out];
    c.module = cuda::Module::load(compiled.cubin);
    for (std::size_t i = 0; i < tilings.size(); ++i)
      c.entries.push_back(c.module.kernel(entryName(i).c_str()));
  }
  smCount_ = device.smCount();
  l2Bytes_ = device.l2CacheBytes();
  deviceKey_ = fmt::format("{} ({} SMs)", device.name(), smCount_);
  peakBytesPerSecond_ = peakBytesPerSecond(device);
  partials_ = cuda::DeviceBuffer(kMaxPartials * 4);
  counters_ = cuda::DeviceBuffer(kMaxCounters * 8);
  counters_.fill(0);
  // The fill ran on the legacy stream, which the compute stream does not wait for.
  device.synchronize();
}

Gemv::Key Gemv::keyOf(const GemmShape &s) {
  // The bias type only matters with a bias or residual.
  const art::DType c = s.epilogue == art::Epilogue::None ? art::DType::BF16 : s.bias;
  return {s.m, s.n, s.k, s.ab, s.d, c, s.epilogue};
}

void Gemv::launch(const GemvPlan &plan, const GemmShape &s, CUdeviceptr a, CUdeviceptr w,
                  CUdeviceptr c, CUdeviceptr d, CUstream stream, const GemvPrologue &prologue,
                  const GemvSecond *second) const {
  const GemvTiling &tiling = gemvTilings().at(plan.tiling);
  gemv_abi::Params p{};
  p.a = a;
  p.lda = static_cast<std::int64_t>(s.lda != 0 ? s.lda : s.k);
  p.w = w;
  p.c = s.epilogue == art::Epilogue::None ? 0 : c;
  p.d = d;
  p.m = static_cast<std::int64_t>(s.m);
  p.n = static_cast<std::int64_t>(s.n);
  p.k = static_cast<std::int64_t>(s.k);
  p.kSplit = static_cast<std::int64_t>(plan.kSplit);
  p.epilogue = static_cast<std::int64_t>(abiEpilogue(s.epilogue));
  p.cIsF32 = s.bias == art::DType::F32 ? 1 : 0;
  p.partials = partials_.address();
  p.counters = counters_.address();
  p.prologue = static_cast<std::int64_t>(prologue.kind);
  p.aUpOffset = prologue.upOffset;
  p.eps = prologue.eps;
  std::uint32_t gridX = plan.gridX;
  if (second) {
    const GemmShape &s2 = second->shape;
    p.gridX1 = plan.gridX;
    p.w2 = second->w;
    p.c2 = s2.epilogue == art::Epilogue::None ? 0 : second->c;
    p.d2 = second->d;
    p.n2 = static_cast<std::int64_t>(s2.n);
    p.epilogue2 = static_cast<std::int64_t>(abiEpilogue(s2.epilogue));
    p.c2IsF32 = s2.bias == art::DType::F32 ? 1 : 0;
    p.d2IsF32 = s2.d == art::DType::F32 ? 1 : 0;
    gridX += static_cast<std::uint32_t>(ceilDiv(s2.n, static_cast<std::uint64_t>(tiling.rows())));
  }
  kernels_.at(s.d).entries.at(plan.tiling).launch(
      {gridX, plan.gridY, 1}, {static_cast<unsigned>(tiling.threads()), 1, 1},
      static_cast<unsigned>(tiling.sharedBytes()), stream, p);
}

Gemv::Decision Gemv::measure(const GemmShape &shape, CUdeviceptr w, CublasLt &blas,
                             CUstream stream, const std::string &what) {
  const cuda::DriverApi &api = cuda::driver();
  CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
  XLC_CU_CHECK(api.cuStreamIsCapturing(stream, &capture));
  check(capture == CU_STREAM_CAPTURE_STATUS_NONE,
        "{}: the GEMV choice for this GEMM would be measured inside a CUDA graph capture (the "
        "backend decides every GEMM before it captures; this is a bug)",
        what);
  // Scratch operands with defined values (bf16 and fp32 ≈ 0.0115 from the byte 0x3C): A dense,
  // C and D at D's widest. Only W is the real one, and it is only read.
  GemmShape dense = shape;
  dense.lda = 0;
  dense.aAlignment = 0;
  cuda::DeviceBuffer a(shape.m * shape.k * 2), c(shape.m * shape.n * 4), d(shape.m * shape.n * 4);
  XLC_CU_CHECK(api.cuMemsetD8Async(a.address(), 0x3C, a.bytes(), stream));
  XLC_CU_CHECK(api.cuMemsetD8Async(c.address(), 0x3C, c.bytes(), stream));
  const CUdeviceptr cArg = shape.epilogue == art::Epilogue::None ? 0 : c.address();
  // Twice the L2, rewritten before every timed launch, so that W comes from HBM.
  cuda::DeviceBuffer flush;
  try {
    flush = cuda::DeviceBuffer(2 * static_cast<std::size_t>(std::max(l2Bytes_, 1 << 20)));
  } catch (const Error &) {
    if (verbose_)
      std::fprintf(stderr, "[xlc] GEMV tuning: no room for an L2 flush buffer; timing with a "
                           "warm L2\n");
  }
  auto time = [&](const std::function<void()> &enqueue) {
    enqueue(); // warm-up: module loading, instruction caches
    std::vector<cuda::Event> start(kReps), stop(kReps);
    for (int r = 0; r < kReps; ++r) {
      if (flush.bytes() > 0)
        XLC_CU_CHECK(api.cuMemsetD8Async(flush.address(), static_cast<unsigned char>(r),
                                         flush.bytes(), stream));
      start[r].record(stream);
      enqueue();
      stop[r].record(stream);
    }
    stop.back().synchronize();
    std::vector<double> us;
    for (int r = 0; r < kReps; ++r)
      us.push_back(stop[r].elapsedSince(start[r]) * 1e3);
    return median(us);
  };
  Decision best;
  for (const GemvPlan &plan : candidates(shape, smCount_)) {
    const double us = time([&] { launch(plan, dense, a.address(), w, cArg, d.address(), stream); });
    if (std::isnan(best.gemvUs) || us < best.gemvUs) {
      best.gemvUs = us;
      best.plan = plan;
    }
  }
  best.cublasUs =
      time([&] { blas.gemm(dense, a.address(), w, cArg, d.address(), stream, what); });
  return best;
}

void Gemv::prepare(const GemmShape &shape, CUdeviceptr a, CUdeviceptr w, CublasLt &blas,
                   CUstream stream, const std::string &what) {
  if (mode_ == Mode::Off || !unsupportedReason(shape, a, w).empty())
    return;
  const Key key = keyOf(shape);
  if (decided_.count(key))
    return;
  Measured measured;
  bool found = false;
  {
    std::lock_guard lock(tableMutex());
    auto it = table<Key>().find({deviceKey_, key});
    if (it != table<Key>().end()) {
      measured = it->second;
      found = true;
    }
  }
  if (!found) {
    const Decision d = measure(shape, w, blas, stream, what);
    measured = {d.plan, d.gemvUs, d.cublasUs};
    std::lock_guard lock(tableMutex());
    // Another backend may have measured the same shape meanwhile: the first result stands.
    measured = table<Key>().try_emplace({deviceKey_, key}, measured).first->second;
  }
  Decision &d = decided_[key];
  d.plan = measured.plan;
  d.gemvUs = measured.gemvUs;
  d.cublasUs = measured.cublasUs;
  // Ties go to the GEMV kernel (its reduction order is fixed).
  d.useGemv = mode_ == Mode::On || d.gemvUs <= d.cublasUs;
  if (verbose_) {
    const double bytes = gemmBytes(shape);
    auto rate = [&](double us) {
      const double perSecond = bytes / (us * 1e-6);
      return peakBytesPerSecond_ > 0
                 ? fmt::format("{:.0f} GB/s, {:.0f} % of {:.0f} GB/s", perSecond / 1e9,
                               100.0 * perSecond / peakBytesPerSecond_, peakBytesPerSecond_ / 1e9)
                 : fmt::format("{:.0f} GB/s", perSecond / 1e9);
    };
    std::fprintf(stderr,
                 "[xlc] GEMM m %llu n %llu k %llu (%s -> %s, %s%s; first at %s): GEMV %.1f us "
                 "(%s) with %s; cuBLASLt %.1f us (%s): %s%s\n",
                 static_cast<unsigned long long>(shape.m),
                 static_cast<unsigned long long>(shape.n),
                 static_cast<unsigned long long>(shape.k),
                 std::string(art::dtypeName(shape.ab)).c_str(),
                 std::string(art::dtypeName(shape.d)).c_str(),
                 std::string(art::epilogueName(shape.epilogue)).c_str(),
                 shape.epilogue == art::Epilogue::None
                     ? ""
                     : fmt::format(" {}", art::dtypeName(shape.bias)).c_str(),
                 what.c_str(), d.gemvUs, rate(d.gemvUs).c_str(), d.plan.describe().c_str(),
                 d.cublasUs, rate(d.cublasUs).c_str(), d.useGemv ? "GEMV" : "cuBLASLt",
                 found ? " (measured before in this process)" : "");
  }
}

bool Gemv::run(const GemmShape &shape, CUdeviceptr a, CUdeviceptr w, CUdeviceptr c,
               CUdeviceptr d, CUstream stream, CublasLt &blas, const std::string &what,
               const GemvPrologue &prologue) {
  if (mode_ == Mode::Off || !unsupportedReason(shape, a, w).empty())
    return false;
  // The up values of a SwiGlu row must be 16-byte aligned like its gate values.
  if (prologue.kind == gemv_abi::Prologue::SwiGlu && prologue.upOffset % 8 != 0)
    return false;
  auto it = decided_.find(keyOf(shape));
  if (it == decided_.end()) {
    CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
    XLC_CU_CHECK(cuda::driver().cuStreamIsCapturing(stream, &capture));
    if (capture != CU_STREAM_CAPTURE_STATUS_NONE) {
      if (verbose_ && !warnedCapture_)
        std::fprintf(stderr, "[xlc] %s: a GEMM shape first met inside a CUDA graph capture runs "
                             "on cuBLASLt (nothing can be timed there)\n",
                     what.c_str());
      warnedCapture_ = true;
      return false;
    }
    prepare(shape, a, w, blas, stream, what);
    it = decided_.find(keyOf(shape));
  }
  if (!it->second.useGemv)
    return false;
  launch(it->second.plan, shape, a, w, c, d, stream, prologue);
  return true;
}

bool Gemv::canPair(const GemmShape &first, const GemmShape &second, CUdeviceptr w2) const {
  const Decision *d1 = decision(first), *d2 = decision(second);
  if (!d1 || !d2 || !d1->useGemv || !d2->useGemv || first.m != second.m ||
      first.k != second.k || first.ab != second.ab || w2 % 16 != 0)
    return false;
  const GemvPlan &plan = d1->plan;
  const std::uint64_t rows = static_cast<std::uint64_t>(gemvTilings().at(plan.tiling).rows());
  const std::uint64_t gridX = plan.gridX + ceilDiv(second.n, rows);
  return gridX <= 0x7fffffffu && (plan.gridY == 1 || gridX <= kMaxCounters) &&
         (plan.gridY == 1 ||
          plan.gridY * first.m * (first.n + second.n + 1) <= kMaxPartials);
}

void Gemv::runPair(const GemmShape &first, CUdeviceptr a, CUdeviceptr w, CUdeviceptr c,
                   CUdeviceptr d, const GemvSecond &second, CUstream stream,
                   const GemvPrologue &prologue) {
  check(canPair(first, second.shape, second.w),
        "GEMV: two GEMMs that cannot share a launch were paired (a bug)");
  launch(decision(first)->plan, first, a, w, c, d, stream, prologue, &second);
}

const Gemv::Decision *Gemv::decision(const GemmShape &shape) const {
  auto it = decided_.find(keyOf(shape));
  return it == decided_.end() ? nullptr : &it->second;
}

} // namespace xlc::exec
