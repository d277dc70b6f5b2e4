//===- SamplingTests.cpp - Drawing tokens on the GPU vs. the host sampler ===//
//
// The sampling kernel (runtime/device/sampling.cuh) on the GPU against runtime/exec/Sampler.cpp
// on the same logits, two ways:
//   - through the kernel harness (harness/SamplingCases.h, the cases the emulator runs in CI,
//     with more rows): every option set, small vocabularies and the 7B's V = 50304 with 256
//     rows per launch, fp32 and bf16 logits;
//   - through the runtime's DeviceSampler (what the CUDA backend runs: KernelCache, pinned
//     staging, the launch, the results), at batch 256 with rows that are not contiguous, inside a
//     captured CUDA graph replayed with other options and steps, and split over several launches
//     (the results must not change: the kernel's sums are exact).
// Every active row must give exactly the host's draw (token, NaN count, first NaN, kept-set
// size), except a draw within 1e-12 of a bucket edge of the host's distribution (documented in
// sampling.cuh; listed when it happens). Without a usable GPU every test SKIPS with the reason,
// and FAILS instead when XLC_REQUIRE_GPU is set (harness/GpuSkip.h).
//
//===----------------------------------------------------------------------===//
#include "GpuBackend.h"
#include "GpuSkip.h"
#include "SamplingCases.h"

#include "runtime/exec/cuda/DeviceSampler.h"
#include "runtime/exec/cuda/GraphCache.h"
#include "runtime/support/Error.h"

#include <gtest/gtest.h>

#include <memory>

namespace {

using namespace xlc::test;
using namespace xlc::test::variants;
namespace exec = xlc::exec;
using xlc::artifact::DType;

/// The harness backend (harness/GpuBackend.h) and the runtime's sampler kernels, once.
struct Gpu {
  GpuBackend &be;
  const exec::DeviceSampler::Cubins &cubins;
};

#define XLC_REQUIRE_GPU(gpu)                                                                   \
  XLC_REQUIRE_GPU_BACKEND(gpu##Backend);                                                       \
  Gpu gpu{gpu##Backend, samplerCubins(gpu##Backend)}

const exec::DeviceSampler::Cubins &samplerCubins(GpuBackend &be) {
  static const exec::DeviceSampler::Cubins cubins = [&] {
    const DType dtypes[] = {DType::F32, DType::BF16};
    return exec::DeviceSampler::compile(exec::KernelCache(""), be.device().arch(), dtypes);
  }();
  return cubins;
}

void expectOk(const CaseReport &report) {
  std::printf("%s", report.describe().c_str());
  std::fflush(stdout);
  EXPECT_TRUE(report.ok()) << report.describe();
}

TEST(GpuSampling, HarnessCasesMatchTheHostSampler) {
  XLC_REQUIRE_GPU(gpu);
  for (int64_t vocab : {1, 2, 33, 1000, 4099})
    forEachOptionSet(vocab, 96, 17, [&](const std::string &name, const SamplingCase &c) {
      expectOk(runSampling<GpuBackend, SamplingTiny>(gpu.be, name, c));
      expectOk(runSampling<GpuBackend, SamplingF32>(gpu.be, name + " (256 threads)", c));
    });
  forEachOptionSet(50304, 256, 99, [&](const std::string &name, SamplingCase c) {
    expectOk(runSampling<GpuBackend, SamplingF32>(gpu.be, name + ", B 256", c));
    c.rows = 48;
    expectOk(runSampling<GpuBackend, SamplingBf16>(gpu.be, "bf16 " + name, c));
  });
}

/// Rows of logits on the device, B rows of V with a stride, and the host's copy of each row.
struct DeviceRows {
  std::vector<std::vector<float>> rows;
  std::vector<exec::DrawRow> draws;
  xlc::cuda::DeviceBuffer buffer;
  std::uint64_t stride = 0;
};

DeviceRows makeRows(std::int64_t batch, std::int64_t vocab, std::int64_t padding,
                    std::uint64_t seed) {
  DeviceRows d;
  d.stride = static_cast<std::uint64_t>(vocab + padding);
  xlc::ref::Random rng(seed);
  std::vector<float> flat(static_cast<std::size_t>(batch) * d.stride,
                          std::numeric_limits<float>::quiet_NaN());
  const std::vector<LogitKind> &kinds = allLogitKinds();
  for (std::int64_t b = 0; b < batch; ++b) {
    d.rows.push_back(makeLogitRow(kinds[static_cast<std::size_t>(b) % kinds.size()], vocab, rng));
    std::copy(d.rows.back().begin(), d.rows.back().end(), flat.begin() + b * d.stride);
    d.draws.push_back({static_cast<std::uint64_t>(b), static_cast<std::uint64_t>(seed % 1000),
                       b % 9 != 4});
  }
  d.buffer = xlc::cuda::DeviceBuffer(flat.size() * 4);
  d.buffer.upload(flat.data(), flat.size() * 4);
  return d;
}

/// Counts the draws that differ from the host's (beyond the documented bucket-edge rounding).
int mismatches(const DeviceRows &d, const exec::SamplingOptions &options,
               std::span<const exec::Draw> got, const std::string &what) {
  exec::Sampler sampler(options);
  int bad = 0;
  for (std::size_t b = 0; b < d.rows.size(); ++b) {
    const exec::DrawRow &row = d.draws[b];
    const exec::Draw want = row.active ? sampler.draw(d.rows[b], row.stream, row.step)
                                       : exec::Draw{};
    if (got[b] == want)
      continue;
    const double margin = row.active && want.token >= 0
                              ? hostDrawMargin(d.rows[b], options, row.stream, row.step)
                              : std::numeric_limits<double>::infinity();
    std::printf("  %s row %zu: device token %d kept %d nan %u, host token %d kept %d nan %u, "
                "margin %.3g\n",
                what.c_str(), b, got[b].token, got[b].kept, got[b].nanCount, want.token,
                want.kept, want.nanCount, margin);
    bad += margin < kEdgeTolerance ? 0 : 1;
  }
  return bad;
}

TEST(GpuSampling, DeviceSamplerMatchesTheHostSamplerAtBatch256) {
  XLC_REQUIRE_GPU(gpu);
  const std::int64_t batch = 256, vocab = 50304;
  const xlc::cuda::Stream stream;
  exec::DeviceSampler sampler(gpu.cubins, batch, vocab, stream.handle());
  DeviceRows d = makeRows(batch, vocab, 64, 5);
  for (const auto &[name, options] : samplingOptionSets(vocab)) {
    std::vector<exec::Draw> got(batch);
    sampler.drawNow(options, d.draws,
                    {d.buffer.address(), DType::F32, d.stride, static_cast<std::uint64_t>(batch)},
                    vocab, stream.handle(), got);
    EXPECT_EQ(mismatches(d, options, got, name), 0) << name;

    // The same rows in four launches of 64 (other blocks, other atomics' order): the same draws.
    std::vector<exec::Draw> parts(batch);
    for (std::int64_t first = 0; first < batch; first += 64)
      sampler.drawNow(options, std::span(d.draws).subspan(first, 64),
                      {d.buffer.address() + first * d.stride * 4, DType::F32, d.stride, 64},
                      vocab, stream.handle(), std::span(parts).subspan(first, 64));
    EXPECT_EQ(parts, got) << name << ": split launches drew differently";
  }
}

TEST(GpuSampling, OneCapturedGraphServesEveryOptionAndStep) {
  XLC_REQUIRE_GPU(gpu);
  const std::int64_t batch = 64, vocab = 50304;
  const xlc::cuda::Stream stream;
  exec::DeviceSampler sampler(gpu.cubins, batch, vocab, stream.handle());
  DeviceRows d = makeRows(batch, vocab, 0, 11);
  exec::GraphCache graphs;
  const exec::DeviceSampler::Launch launch{d.buffer.address(), DType::F32, d.stride,
                                           static_cast<std::uint64_t>(batch)};
  std::uint64_t step = 0;
  for (const auto &[name, options] : samplingOptionSets(vocab)) {
    for (exec::DrawRow &row : d.draws)
      row.step = ++step; // new uniform numbers every replay
    sampler.stage(options, d.draws, launch, vocab, stream.handle());
    const exec::DeviceSampler::Launch pending = *sampler.take();
    graphs.launch("draw", 0, batch, stream.handle(),
                  [&] { sampler.enqueue(pending, stream.handle()); });
    sampler.enqueueDownload(launch, stream.handle());
    stream.synchronize();
    std::vector<exec::Draw> got(batch);
    sampler.results(got);
    EXPECT_EQ(mismatches(d, options, got, name + " (graph)"), 0) << name;
  }
  EXPECT_EQ(graphs.size(), 1u); // captured once, replayed for every option set
}

TEST(GpuSampling, RefusesWhatItCannotDraw) {
  XLC_REQUIRE_GPU(gpu);
  const xlc::cuda::Stream stream;
  exec::DeviceSampler sampler(gpu.cubins, 4, 1000, stream.handle());
  const exec::DrawRow rows[2] = {{0, 0, true}, {1, 0, true}};
  const exec::DeviceSampler::Launch launch{0, DType::F32, 1000, 2};
  auto message = [&](auto &&fn) {
    try {
      fn();
    } catch (const xlc::Error &e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  EXPECT_NE(message([&] { sampler.stage({}, rows, launch, 999, stream.handle()); })
                .find("rows of 999 logits, the sampler was made for 1000"),
            std::string::npos);
  EXPECT_NE(message([&] { sampler.stage({}, std::span(rows, 1), launch, 1000, stream.handle()); })
                .find("2 rows (1 given)"),
            std::string::npos);
  exec::SamplingOptions bad;
  bad.topP = 0;
  EXPECT_NE(message([&] { sampler.stage(bad, rows, launch, 1000, stream.handle()); })
                .find("top-p"),
            std::string::npos);
  EXPECT_FALSE(sampler.take().has_value()); // nothing was staged
}

} // namespace
