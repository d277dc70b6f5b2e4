//===- SamplingCases.h - The sampling kernel against the host sampler -*- C++ -*-===//
//
// The sampling kernel (runtime/device/sampling.cuh) on a backend of KernelHarness.h — the SIMT
// emulator in CI, the GPU through NVRTC — against runtime/exec/Sampler.cpp on the very same
// logits (rounded to the kernel's element type first): for every active row the kernel's result
// must equal Sampler::draw()'s (token, NaN count, first NaN, kept-set size); inactive rows must
// come back as token −1. Rows are padded with NaN beyond V, so a kernel that reads past its row
// fails.
//
// The oracle is exact, and so is the comparison, with one documented exception (sampling.cuh):
// the host sums weights in double in sequence, the kernel exactly, so the two may disagree when
// the uniform number (or top-p's p) falls within double rounding of a bucket edge. A mismatch
// passes only when the host's own distribution puts that edge within 1e-12 of the draw — far
// wider than the rounding (~1e-16·n) and far narrower than any real error (a wrong order, set,
// weight or draw moves the token by a whole bucket) — and is listed in the notes. In the runs so
// far there have been none.
//
// Rows cover: normal and wide logits (exp underflow at low temperatures), exact ties (across the
// top-k boundary), −inf holes, a single finite token, +inf tokens, NaN rows, all −inf, all equal,
// ±0 ties, values near ±FLT_MAX and subnormals, one dominant token.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_GPU_HARNESS_SAMPLINGCASES_H
#define XLC_TEST_GPU_HARNESS_SAMPLINGCASES_H

#include "KernelHarness.h"

#include "xlc/device/sampling.cuh"

#include "runtime/exec/Sampler.h"
#include "runtime/reference/Tensor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace xlc::test {

inline constexpr Family kSampling{"xlc/device/sampling.cuh", "xlc::device::SamplingParams",
                                  "xlc::device::sample_tokens"};

namespace variants {
/// Small blocks: the emulator's many-row cases (one thread per CUDA thread).
XLC_VARIANT(SamplingTiny, xlc::device::SamplingConfig<float, 64>);
/// What the runtime launches (runtime/exec/cuda/DeviceSampler.h configText).
XLC_VARIANT(SamplingF32, xlc::device::SamplingConfig<float, 256>);
XLC_VARIANT(SamplingBf16, xlc::device::SamplingConfig<__nv_bfloat16, 256>);
} // namespace variants

enum class LogitKind {
  Normal,     ///< N(0, 2)
  Wide,       ///< N(0, 12): most weights underflow at low temperatures
  Ties,       ///< N(0, 1.5) on a grid of 1/4: many exact ties
  NegInfHoles,///< Normal with 40 % −inf
  OneFinite,  ///< −inf except one token
  PosInf,     ///< Normal with 1–3 +inf (and some −inf)
  Nan,        ///< Normal with 1–3 NaN: an error row
  AllNegInf,  ///< an error row
  AllEqual,   ///< one value everywhere
  SignedZeros,///< ±0 and a few small values: ties across the sign of zero
  Extreme,    ///< ±3e38, ±FLT_MAX, subnormals, ordinary values
  Peaked,     ///< Normal plus one token 25 above the rest
};

inline const char *logitKindName(LogitKind k) {
  static const char *names[] = {"normal",  "wide",      "ties",         "-inf holes",
                                "one finite", "+inf",   "NaN",          "all -inf",
                                "all equal", "signed zeros", "extreme", "peaked"};
  return names[static_cast<int>(k)];
}

inline const std::vector<LogitKind> &allLogitKinds() {
  static const std::vector<LogitKind> kinds = {
      LogitKind::Normal,   LogitKind::Wide,        LogitKind::Ties,    LogitKind::NegInfHoles,
      LogitKind::OneFinite, LogitKind::PosInf,     LogitKind::Nan,     LogitKind::AllNegInf,
      LogitKind::AllEqual, LogitKind::SignedZeros, LogitKind::Extreme, LogitKind::Peaked};
  return kinds;
}

/// One row of |vocab| logits of |kind|, deterministic in |rng|.
inline std::vector<float> makeLogitRow(LogitKind kind, int64_t vocab, ref::Random &rng) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
  constexpr float kMax = std::numeric_limits<float>::max();
  std::vector<float> row(static_cast<size_t>(vocab));
  auto any = [&] { return static_cast<size_t>(rng.uniform(0.0, static_cast<double>(vocab))) %
                          static_cast<size_t>(vocab); };
  for (float &x : row)
    x = static_cast<float>(rng.normal(0.0, 2.0));
  switch (kind) {
  case LogitKind::Normal:
    break;
  case LogitKind::Wide:
    for (float &x : row)
      x = static_cast<float>(rng.normal(0.0, 12.0));
    break;
  case LogitKind::Ties:
    for (float &x : row)
      x = std::round(static_cast<float>(rng.normal(0.0, 1.5)) * 4.0f) / 4.0f;
    break;
  case LogitKind::NegInfHoles:
    for (float &x : row)
      if (rng.uniform(0.0, 1.0) < 0.4)
        x = -kInf;
    break;
  case LogitKind::OneFinite:
    std::fill(row.begin(), row.end(), -kInf);
    row[any()] = static_cast<float>(rng.normal(0.0, 3.0));
    break;
  case LogitKind::PosInf:
    for (int n = 1 + static_cast<int>(rng.uniform(0.0, 3.0)); n > 0; --n)
      row[any()] = kInf;
    row[any()] = -kInf;
    break;
  case LogitKind::Nan:
    for (int n = 1 + static_cast<int>(rng.uniform(0.0, 3.0)); n > 0; --n)
      row[any()] = kNan;
    break;
  case LogitKind::AllNegInf:
    std::fill(row.begin(), row.end(), -kInf);
    break;
  case LogitKind::AllEqual:
    std::fill(row.begin(), row.end(), static_cast<float>(rng.normal(0.0, 3.0)));
    break;
  case LogitKind::SignedZeros: {
    const float values[] = {0.0f, -0.0f, 0.0f, -0.0f, 0.5f, -0.5f, -1.0f};
    for (float &x : row)
      x = values[static_cast<int>(rng.uniform(0.0, 7.0)) % 7];
    break;
  }
  case LogitKind::Extreme: {
    const float values[] = {3e38f, -3e38f, kMax, -kMax, 1e-40f, -1e-40f, 1e-45f, 7.0f};
    for (float &x : row)
      if (rng.uniform(0.0, 1.0) < 0.5)
        x = values[static_cast<int>(rng.uniform(0.0, 8.0)) % 8];
    break;
  }
  case LogitKind::Peaked:
    row[any()] += 25.0f;
    break;
  }
  return row;
}

/// Named option sets: every path of the kernel (greedy; id order; top-k; top-p; both; cuts that
/// keep everything or nearly nothing; sharp and flat temperatures).
inline std::vector<std::pair<std::string, exec::SamplingOptions>> samplingOptionSets(
    int64_t vocab) {
  auto o = [](double t, uint64_t k, double p, uint64_t seed) {
    exec::SamplingOptions s;
    s.temperature = t;
    s.topK = k;
    s.topP = p;
    s.seed = seed;
    return s;
  };
  const uint64_t v = static_cast<uint64_t>(vocab);
  return {
      {"greedy", o(0.0, 0, 1.0, 1)},
      {"T1", o(1.0, 0, 1.0, 2)},
      {"T0.7 k40", o(0.7, 40, 1.0, 3)},
      {"T2 k1 p0.5 (greedy)", o(2.0, 1, 0.5, 4)},
      {"T1 p0.9", o(1.0, 0, 0.9, 5)},
      {"T0.8 k50 p0.95", o(0.8, 50, 0.95, 6)},
      {"T2 p0.5", o(2.0, 0, 0.5, 7)},
      {"T1.3 k=V", o(1.3, v, 1.0, 8)},
      {"T1 k=V-1", o(1.0, v > 1 ? v - 1 : 1, 1.0, 9)},
      {"T0.5 p1e-9", o(0.5, 0, 1e-9, 10)},
      {"T1 p0.999999", o(1.0, 0, 0.999999, 11)},
      {"T0.05", o(0.05, 0, 1.0, 12)},
      {"T50 k3", o(50.0, 3, 1.0, 13)},
  };
}

/// How close the host's draw is to an edge of its distribution (the uniform number to a bucket
/// edge of the walk, top-p's p to a prefix mass), relative to the kept mass; +inf for greedy.
inline double hostDrawMargin(std::span<const float> row, const exec::SamplingOptions &options,
                             uint64_t stream, uint64_t step) {
  if (options.isGreedy())
    return std::numeric_limits<double>::infinity();
  exec::SamplingOptions all = options;
  all.topK = 0;
  all.topP = 1.0;
  const size_t candidates = exec::Sampler(all).distribution(row).size();
  auto kept = exec::Sampler(options).distribution(row, stream, step);
  const bool cut = (options.topK != 0 && options.topK < candidates) || options.topP < 1.0;
  if (!cut) // the host walks in id order when nothing is cut
    std::sort(kept.begin(), kept.end());
  const double u = exec::uniformDraw(options.seed, stream, step);
  double margin = std::numeric_limits<double>::infinity(), cumulative = 0;
  for (const auto &[token, p] : kept) {
    cumulative += p;
    margin = std::min(margin, std::fabs(u - cumulative));
  }
  if (options.topP < 1.0) {
    exec::SamplingOptions k = options;
    k.topP = 1.0;
    cumulative = 0;
    for (const auto &[token, p] : exec::Sampler(k).distribution(row, stream, step)) {
      cumulative += p;
      margin = std::min(margin, std::fabs(options.topP - cumulative));
    }
  }
  return margin;
}

struct SamplingCase {
  int64_t vocab = 100;
  int rows = 24;                ///< rows per launch; kinds cycle over allLogitKinds()
  exec::SamplingOptions options;
  int64_t padding = 3;          ///< NaN elements after each row (row stride V + padding)
  uint64_t seed = 1;
  std::vector<LogitKind> kinds = allLogitKinds();
};

/// Calls fn(name, case) for each option set of samplingOptionSets(vocab): |rows| rows of
/// |vocab| logits, a seed derived from |seed|, the vocabulary and the option set.
template <class Fn> void forEachOptionSet(int64_t vocab, int rows, uint64_t seed, Fn &&fn) {
  for (const auto &[name, options] : samplingOptionSets(vocab)) {
    SamplingCase c;
    c.vocab = vocab;
    c.rows = rows;
    c.options = options;
    c.seed = seed * 1000003u + static_cast<uint64_t>(vocab) * 131u + options.seed;
    fn(fmt::format("V {} {}", vocab, name), c);
  }
}

/// The allowed distance of a mismatched draw from a bucket edge (see the file comment).
inline constexpr double kEdgeTolerance = 1e-12;

template <class Backend, class V>
CaseReport runSampling(Backend &be, const std::string &name, const SamplingCase &c) {
  using Config = typename V::Config;
  using T = typename Config::T;
  const int64_t stride = c.vocab + c.padding;
  ref::Random rng(c.seed);
  HostArray logits(dtypeOf<T>(), static_cast<size_t>(c.rows * stride));
  std::vector<std::vector<float>> rows(static_cast<size_t>(c.rows));
  std::vector<device::SamplingRow> tasks(static_cast<size_t>(c.rows));
  for (int r = 0; r < c.rows; ++r) {
    const LogitKind kind = c.kinds[static_cast<size_t>(r) % c.kinds.size()];
    std::vector<float> row = makeLogitRow(kind, c.vocab, rng);
    for (int64_t i = 0; i < stride; ++i)
      logits.set(static_cast<size_t>(r * stride + i),
                 i < c.vocab ? row[static_cast<size_t>(i)] : std::nan(""));
    for (int64_t i = 0; i < c.vocab; ++i) // the values the kernel reads (bf16-rounded)
      row[static_cast<size_t>(i)] = static_cast<float>(logits.get(static_cast<size_t>(r * stride + i)));
    rows[static_cast<size_t>(r)] = std::move(row);
    tasks[static_cast<size_t>(r)] = {static_cast<uint64_t>(r) * 7919u + c.seed,
                                     static_cast<uint64_t>(rng.uniform(0.0, 1e6)),
                                     r % 7 == 5 ? 0 : 1};
  }
  device::SamplingOptionsBlock block{};
  block.inv_temperature = c.options.temperature > 0 ? 1.0 / c.options.temperature : 0.0;
  block.top_p = c.options.topP;
  block.top_k = static_cast<int64_t>(std::min<uint64_t>(c.options.topK, c.vocab));
  block.greedy = c.options.isGreedy() ? 1 : 0;
  block.seed = c.options.seed;

  auto logitsBuf = toDevice(be, logits);
  auto optionsBuf = be.alloc(sizeof block);
  be.upload(optionsBuf, &block, sizeof block);
  auto tasksBuf = be.alloc(tasks.size() * sizeof(device::SamplingRow));
  be.upload(tasksBuf, tasks.data(), tasks.size() * sizeof(device::SamplingRow));
  auto outBuf = be.alloc(tasks.size() * sizeof(device::SampledToken));
  be.fill(outBuf, 0xFF);
  device::SamplingParams p{logitsBuf.pointer(),
                           stride,
                           c.vocab,
                           static_cast<const device::SamplingOptionsBlock *>(optionsBuf.pointer()),
                           static_cast<const device::SamplingRow *>(tasksBuf.pointer()),
                           static_cast<device::SampledToken *>(outBuf.pointer())};
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>(c.rows);
  dims.block = Config::kThreads;
  be.launch(kSampling, V::kConfig, &device::sample_tokens<Config>, dims, p);
  std::vector<device::SampledToken> out(tasks.size());
  be.download(outBuf, out.data(), out.size() * sizeof(device::SampledToken));

  CaseReport report{name, Backend::kName, {}, {}};
  exec::Sampler sampler(c.options);
  int mismatches = 0, nearEdge = 0;
  for (int r = 0; r < c.rows; ++r) {
    const device::SampledToken &got = out[static_cast<size_t>(r)];
    const device::SamplingRow &task = tasks[static_cast<size_t>(r)];
    exec::Draw want;
    if (task.active)
      want = sampler.draw(rows[static_cast<size_t>(r)], task.stream, task.step);
    const exec::Draw have{got.token, static_cast<uint32_t>(got.nan_count),
                          static_cast<uint32_t>(got.first_nan), got.kept};
    if (have == want)
      continue;
    const LogitKind kind = c.kinds[static_cast<size_t>(r) % c.kinds.size()];
    const double margin =
        task.active && want.token >= 0
            ? hostDrawMargin(rows[static_cast<size_t>(r)], c.options, task.stream, task.step)
            : std::numeric_limits<double>::infinity();
    const bool edge = margin < kEdgeTolerance && got.token >= 0 && got.nan_count == 0;
    (edge ? nearEdge : mismatches) += 1;
    if (report.notes.size() < 8)
      report.notes.push_back(fmt::format(
          "row {} ({}{}): kernel token {} nan {} first {} kept {}; host token {} nan {} first {} "
          "kept {}; draw margin {:.3g}{}",
          r, logitKindName(kind), task.active ? "" : ", inactive", got.token, got.nan_count,
          got.first_nan, got.kept, want.token, want.nanCount, want.firstNan, want.kept, margin,
          edge ? " (within rounding of a bucket edge: allowed)" : ""));
  }
  report.add("draws unlike the host's", mismatches, 0);
  if (nearEdge > 0)
    report.notes.push_back(fmt::format("{} draw(s) within {} of a bucket edge differ", nearEdge,
                                       kEdgeTolerance));
  return report;
}

} // namespace xlc::test

#endif // XLC_TEST_GPU_HARNESS_SAMPLINGCASES_H
