//===- Workload.cpp - Bytes and FLOPs of a call, and the limits they meet -===//

#include "tools/xlc-bench/Workload.h"

#include "runtime/support/Error.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

namespace xlc::bench {
namespace art = xlc::artifact;

Work &Work::operator+=(const Work &other) {
  flops += other.flops;
  weightBytes += other.weightBytes;
  stateBytes += other.stateBytes;
  ioBytes += other.ioBytes;
  activationBytes += other.activationBytes;
  return *this;
}

Work Work::scaled(double factor) const {
  Work w = *this;
  w.flops *= factor;
  w.weightBytes *= factor;
  w.stateBytes *= factor;
  w.ioBytes *= factor;
  w.activationBytes *= factor;
  return w;
}

namespace {

/// Adds |bytes| to the class of buffer |b|.
void addBytes(Work &w, const art::Buffer &b, double bytes) {
  switch (b.cls) {
  case art::BufferClass::Weight:
  case art::BufferClass::Parameter:
  case art::BufferClass::Gradient:
  case art::BufferClass::Optimizer:
    w.weightBytes += bytes;
    return;
  case art::BufferClass::State:
    w.stateBytes += bytes;
    return;
  case art::BufferClass::Input:
  case art::BufferClass::Output:
    w.ioBytes += bytes;
    return;
  case art::BufferClass::Activation:
  case art::BufferClass::Workspace:
    w.activationBytes += bytes;
    return;
  }
}

/// Bytes per element of |dtype| as the backend stores it.
double elementBytes(art::DType dtype, FloatStorage storage) {
  const bool isFloat =
      dtype == art::DType::F32 || dtype == art::DType::BF16 || dtype == art::DType::F16;
  return storage == FloatStorage::Fp32 && isFloat ? 4.0
                                                  : static_cast<double>(art::dtypeSize(dtype));
}

/// Bytes of buffer |id| at |shape| (static classes have one size) as the backend stores it.
double bufferBytes(const exec::Plan &plan, art::BufferId id, const exec::CallShape &shape,
                   FloatStorage storage) {
  const art::Buffer &b = plan.artifact().buffers[id];
  const double elements =
      static_cast<double>(art::isStaticClass(b.cls) ? plan.elements(id, 1, 1)
                                                    : plan.elements(id, shape.batch, shape.seq));
  return elements * elementBytes(b.dtype, storage);
}

std::uint64_t configNumber(const art::Kernel &kernel, const char *key) {
  const auto it = kernel.config.find(key);
  return it != kernel.config.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

/// Useful FLOPs of an mLSTM cell launch (the table in Workload.h), 0 for other families.
double cellFlops(const art::Kernel &kernel, const exec::CallShape &shape) {
  const std::string &family = kernel.family;
  if (!family.starts_with("mlstm_"))
    return 0;
  const double heads = static_cast<double>(configNumber(kernel, "num_heads"));
  const double k = static_cast<double>(configNumber(kernel, "qk_head_dim"));
  const double v = static_cast<double>(configNumber(kernel, "v_head_dim"));
  const double chunk = static_cast<double>(configNumber(kernel, "chunk"));
  const double tokens = static_cast<double>(shape.batch) * static_cast<double>(shape.seq);
  double perToken = 0;
  if (family == "mlstm_chunk_scores")
    perToken = chunk * k;
  else if (family == "mlstm_chunk_fused")
    perToken = chunk * v + 4 * k * v;
  else if (family == "mlstm_chunk_states")
    perToken = 2 * k * v;
  else if (family == "mlstm_chunk_outputs")
    perToken = chunk * (k + v) + 2 * k * v;
  else if (family == "mlstm_decode_step")
    perToken = 4 * k * v;
  return tokens * heads * perToken;
}

using Vec16 = float __attribute__((vector_size(64)));
constexpr int kFmaChains = 8;

/// acc = acc·a + b on kFmaChains independent 16-lane vectors, |iterations| times: 2 FLOPs per
/// lane each. Compiled for AVX-512, AVX2+FMA and the baseline like the CPU backend's GEMM
/// (runtime/exec/cpu/CpuOps.cpp), so it measures what that code can reach: eight chains cover
/// the FMA latency on two pipes.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) float
fmaLoop(float a, float b, std::uint64_t iterations) {
  Vec16 acc[kFmaChains];
  for (int j = 0; j < kFmaChains; ++j)
    for (int l = 0; l < 16; ++l)
      acc[j][l] = static_cast<float>(j + l);
  for (std::uint64_t i = 0; i < iterations; ++i)
    for (int j = 0; j < kFmaChains; ++j)
      acc[j] = acc[j] * a + b;
  float sum = 0;
  for (int j = 0; j < kFmaChains; ++j)
    for (int l = 0; l < 16; ++l)
      sum += acc[j][l];
  return sum;
}

} // namespace

Work stepWork(const exec::Plan &plan, const exec::PreparedStep &ps,
              const exec::CallShape &shape, FloatStorage storage) {
  const art::Artifact &a = plan.artifact();
  const art::Step &step = *ps.step;
  Work w;
  if (const art::GemmStep *g = step.gemm()) {
    const double m = static_cast<double>(g->m.evaluate(shape.batch, shape.seq, ps.where));
    const double n = static_cast<double>(g->n.evaluate(shape.batch, shape.seq, ps.where));
    const double k = static_cast<double>(g->k.evaluate(shape.batch, shape.seq, ps.where));
    auto size = [&](art::BufferId id) { return elementBytes(a.buffers[id].dtype, storage); };
    w.flops = 2 * m * n * k;
    addBytes(w, a.buffers[g->a], m * k * size(g->a));
    addBytes(w, a.buffers[g->b], n * k * size(g->b));
    if (g->c)
      addBytes(w, a.buffers[*g->c],
               (g->epilogue == art::Epilogue::Bias ? n : m * n) * size(*g->c));
    addBytes(w, a.buffers[g->d], (g->accumulate ? 2 : 1) * m * n * size(g->d));
    return w;
  }
  if (const art::CopyStep *c = step.copy()) {
    // |bytes| are the artifact dtype's; the CPU backend copies the same elements as fp32.
    const art::Buffer &src = a.buffers[c->src];
    const double bytes =
        static_cast<double>(c->bytes.evaluate(shape.batch, shape.seq, ps.where)) /
        static_cast<double>(art::dtypeSize(src.dtype)) * elementBytes(src.dtype, storage);
    addBytes(w, src, bytes);
    addBytes(w, a.buffers[c->dst], bytes);
    return w;
  }
  const art::LaunchStep &launch = *step.launch();
  const art::Kernel &kernel = *ps.kernel;
  // The embedding gathers one table row per output row: it reads as many table bytes as it
  // writes output elements (times the table's element size), not the whole table. Its backward
  // scatters one gradient row per row of dy into the table's gradient, likewise.
  std::optional<double> gatheredElements;
  const bool gather = kernel.family == "embedding", scatter = kernel.family == "embedding_backward";
  if (gather || scatter)
    for (std::size_t i = 0; i < launch.args.size() && i < kernel.params.size(); ++i)
      if (kernel.params[i].name == (gather ? "out" : "dy") &&
          launch.args[i].kind == art::ArgKind::Buffer)
        gatheredElements = static_cast<double>(
            plan.elements(launch.args[i].bufferId, shape.batch, shape.seq));
  std::set<art::BufferId> seen;
  for (const art::Arg &arg : launch.args) {
    if (arg.kind != art::ArgKind::Buffer || !seen.insert(arg.bufferId).second)
      continue;
    const art::Buffer &b = a.buffers[arg.bufferId];
    double bytes = bufferBytes(plan, arg.bufferId, shape, storage);
    if (gatheredElements && (art::isBoundClass(b.cls) || b.cls == art::BufferClass::Gradient))
      bytes = std::min(bytes, *gatheredElements * elementBytes(b.dtype, storage));
    if (b.cls == art::BufferClass::State)
      bytes *= 2; // read at the start, written back at the end
    addBytes(w, b, bytes);
  }
  w.flops = cellFlops(kernel, shape);
  return w;
}

Work callWork(const exec::Plan &plan, std::string_view function, const exec::CallShape &shape,
              FloatStorage storage) {
  Work total;
  for (const exec::PreparedStep &ps : plan.function(function).steps)
    total += stepWork(plan, ps.forBatch(shape.batch), shape, storage); // the kernel B runs
  return total;
}

DeviceLimit gpuLimit(std::string_view name) {
  DeviceLimit limit;
  const bool h200 = name.find("H200") != std::string_view::npos;
  const bool h100 = name.find("H100") != std::string_view::npos &&
                    (name.find("HBM3") != std::string_view::npos ||
                     name.find("SXM") != std::string_view::npos);
  if (h200) {
    limit.bytesPerSecond = 4.8e12;
    limit.flopsPerSecond = 790e12;
    limit.source = "table: H200 (4.8 TB/s peak HBM3e bandwidth; 790 TFLOP/s dense bf16 as "
                   "cuBLAS reaches on the H100's GH100, not measured on this card)";
  } else if (h100) {
    limit.bytesPerSecond = 3.35e12;
    limit.flopsPerSecond = 790e12;
    limit.source = "table: H100 SXM 80GB HBM3 (3.35 TB/s peak HBM bandwidth, 3.17 TB/s read "
                   "measured; 790 TFLOP/s dense bf16 reached by cuBLAS at 8192^3; "
                   "issue 10)";
  } else {
    limit.source = fmt::format("unknown device '{}': no ratios to the limit unless --bandwidth "
                               "and --tflops are given",
                               name);
  }
  return limit;
}

DeviceLimit measureCpuLimit(unsigned threads) {
  using Clock = std::chrono::steady_clock;
  const unsigned n = threads ? threads : std::max(1u, std::thread::hardware_concurrency());
  auto parallel = [n](auto &&body) {
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < n; ++t)
      pool.emplace_back(body, t);
    for (std::thread &t : pool)
      t.join();
  };
  auto seconds = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };

  // Read bandwidth: every thread sums its slice of a 256 MiB array (written once before, so
  // every page is resident); best of three passes.
  const std::size_t count = (256u << 20) / sizeof(std::uint64_t);
  std::vector<std::uint64_t> data(count);
  for (std::size_t i = 0; i < count; ++i)
    data[i] = i * 0x9E3779B97F4A7C15ull;
  std::vector<std::uint64_t> sums(n);
  double bestRead = 1e30;
  for (int pass = 0; pass < 3; ++pass) {
    const auto start = Clock::now();
    parallel([&](unsigned t) {
      const std::size_t begin = count * t / n, end = count * (t + 1) / n;
      std::uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      std::size_t i = begin;
      for (; i + 4 <= end; i += 4) {
        s0 += data[i];
        s1 += data[i + 1];
        s2 += data[i + 2];
        s3 += data[i + 3];
      }
      for (; i < end; ++i)
        s0 += data[i];
      sums[t] = s0 + s1 + s2 + s3;
    });
    bestRead = std::min(bestRead, seconds(start));
  }

  // fp32 multiply-add: fmaLoop (16-lane vectors, 8 independent chains) on every thread.
  volatile float aIn = 0.9999999f, bIn = 1e-7f;
  const float a = aIn, b = bIn;
  const std::uint64_t iterations = 1u << 21;
  std::vector<float> results(n);
  double bestFma = 1e30;
  for (int pass = 0; pass < 3; ++pass) {
    const auto start = Clock::now();
    parallel([&](unsigned t) { results[t] = fmaLoop(a, b, iterations); });
    bestFma = std::min(bestFma, seconds(start));
  }
  volatile std::uint64_t sink = 0;
  for (unsigned t = 0; t < n; ++t)
    sink = sink + sums[t] + static_cast<std::uint64_t>(results[t] != 0);

  DeviceLimit limit;
  limit.bytesPerSecond = static_cast<double>(count * sizeof(std::uint64_t)) / bestRead;
  limit.flopsPerSecond =
      2.0 * kFmaChains * 16 * static_cast<double>(iterations) * n / bestFma;
  limit.source = fmt::format("measured on this CPU at start with {} thread(s): read of a 256 MiB "
                             "array, fp32 multiply-add loop (a ceiling for this build, not a "
                             "datasheet value)",
                             n);
  return limit;
}

std::optional<Bound> limitTime(const Work &work, const DeviceLimit &limit, bool useTraffic) {
  if (!limit.known())
    return std::nullopt;
  const double memory =
      (useTraffic ? work.trafficBytes() : work.compulsoryBytes()) / limit.bytesPerSecond;
  const double compute = work.flops / limit.flopsPerSecond;
  return memory >= compute ? Bound{memory, "bandwidth"} : Bound{compute, "compute"};
}

} // namespace xlc::bench
