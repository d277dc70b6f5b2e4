//===- SamplingBench.cpp - Drawing tokens on the GPU vs. on the host ------===//
//
//   sampling_bench [--reps N] [--json FILE]
//
// What a decode step pays to turn its logits into token ids, at the 7B's vocabulary (V = 50304)
// and batch 1, 8, 64 and 256, for greedy and three sampling settings:
//   device kernel  the sampling kernel alone (CUDA events around back-to-back launches)
//   device call    what the CUDA backend adds to a step: staging the options and rows, the
//                  launch, the copy of the 16-byte results, the synchronisation (wall clock)
//   host           the path it replaces: copying B·V fp32 logits to pageable host memory (as
//                  CudaBackend::downloadRows) and Sampler::draw on each row on one thread
// Medians of --reps repetitions (default 20; host: at most 5). The draws are checked equal to
// the host's on the way (a benchmark of wrong results is worthless). Logit rows: N(0, 2),
// N(0, 2) with one token 25 higher, N(0, 12), cycled. Not a test: numbers vary with the GPU and
// the host.
//
//===----------------------------------------------------------------------===//
#include "SamplingCases.h"

#include "runtime/cuda/Device.h"
#include "runtime/cuda/Nvrtc.h"
#include "runtime/exec/cuda/DeviceSampler.h"
#include "runtime/support/Error.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace {

using namespace xlc;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int run(int reps, const std::string &jsonPath) {
  cuda::CudaDevice device = cuda::CudaDevice::open(0);
  std::printf("GPU: %s\n", device.summary().c_str());
  const std::int64_t vocab = 50304;
  const artifact::DType dtypes[] = {artifact::DType::F32};
  const exec::DeviceSampler::Cubins cubins =
      exec::DeviceSampler::compile(exec::KernelCache(""), device.arch(), dtypes);
  const cuda::Stream stream;
  const std::int64_t maxBatch = 256;
  exec::DeviceSampler sampler(cubins, maxBatch, vocab, stream.handle());

  // The logits: maxBatch rows on the device, and the host's copies.
  ref::Random rng(2026);
  const test::LogitKind kinds[] = {test::LogitKind::Normal, test::LogitKind::Peaked,
                                   test::LogitKind::Wide};
  std::vector<float> flat(static_cast<std::size_t>(maxBatch * vocab));
  for (std::int64_t b = 0; b < maxBatch; ++b) {
    std::vector<float> row = test::makeLogitRow(kinds[b % 3], vocab, rng);
    std::copy(row.begin(), row.end(), flat.begin() + b * vocab);
  }
  cuda::DeviceBuffer logits(flat.size() * 4);
  logits.upload(flat.data(), flat.size() * 4);
  std::vector<float> downloaded(flat.size());

  auto options = [](double t, std::uint64_t k, double p) {
    exec::SamplingOptions o;
    o.temperature = t;
    o.topK = k;
    o.topP = p;
    o.seed = 7;
    return o;
  };
  const std::vector<std::pair<std::string, exec::SamplingOptions>> settings = {
      {"greedy", options(0, 0, 1)},
      {"T0.8 k50 p0.95", options(0.8, 50, 0.95)},
      {"T1 p0.9", options(1.0, 0, 0.9)},
      {"T1", options(1.0, 0, 1.0)}};

  nlohmann::json records = nlohmann::json::array();
  std::printf("\nV = %lld; medians of %d repetitions (host: %d)\n", static_cast<long long>(vocab),
              reps, std::min(reps, 5));
  std::printf("%-16s %5s %14s %14s %14s %14s %10s\n", "options", "batch", "kernel us",
              "device call us", "host copy ms", "host draw ms", "speedup");
  for (const auto &[name, o] : settings)
    for (std::int64_t batch : {1, 8, 64, 256}) {
      std::vector<exec::DrawRow> rows(static_cast<std::size_t>(batch));
      for (std::int64_t b = 0; b < batch; ++b)
        rows[b] = {static_cast<std::uint64_t>(b), 0, true};
      const exec::DeviceSampler::Launch launch{logits.address(), artifact::DType::F32,
                                               static_cast<std::uint64_t>(vocab),
                                               static_cast<std::uint64_t>(batch)};
      // The device call, as a decode step makes it (the step number changes every time).
      std::vector<double> call, kernel, copy, draw;
      std::vector<exec::Draw> got(static_cast<std::size_t>(batch));
      for (int r = 0; r < reps + 1; ++r) {
        for (exec::DrawRow &row : rows)
          row.step = static_cast<std::uint64_t>(r);
        const auto t = Clock::now();
        sampler.drawNow(o, rows, launch, vocab, stream.handle(), got);
        if (r > 0) // the first is a warm-up
          call.push_back(secondsSince(t) * 1e6);
      }
      // The kernel alone: back-to-back launches between two events.
      sampler.stage(o, rows, launch, vocab, stream.handle());
      sampler.take();
      const cuda::Event start, stop;
      for (int r = 0; r < reps; ++r) {
        start.record(stream.handle());
        for (int i = 0; i < 10; ++i)
          sampler.enqueue(launch, stream.handle());
        stop.record(stream.handle());
        stop.synchronize();
        kernel.push_back(stop.elapsedSince(start) * 1e3 / 10);
      }
      // The host path, and the check that both draw the same tokens.
      exec::Sampler host(o);
      int differ = 0;
      for (int r = 0; r < std::min(reps, 5); ++r) {
        auto t = Clock::now();
        logits.download(downloaded.data(), static_cast<std::size_t>(batch * vocab) * 4);
        copy.push_back(secondsSince(t) * 1e3);
        t = Clock::now();
        for (std::int64_t b = 0; b < batch; ++b) {
          const exec::Draw d = host.draw(
              std::span<const float>(downloaded).subspan(b * vocab, vocab), rows[b].stream, reps);
          differ += r == 0 && !(d == got[b]) ? 1 : 0;
        }
        draw.push_back(secondsSince(t) * 1e3);
      }
      const double hostMs = median(copy) + median(draw);
      std::printf("%-16s %5lld %14.1f %14.1f %14.3f %14.3f %9.1fx%s\n", name.c_str(),
                  static_cast<long long>(batch), median(kernel), median(call), median(copy),
                  median(draw), hostMs * 1e3 / median(call),
                  differ ? fmt::format("  ({} draws differ!)", differ).c_str() : "");
      records.push_back({{"options", name},
                         {"batch", batch},
                         {"vocab", vocab},
                         {"kernel_us", median(kernel)},
                         {"device_call_us", median(call)},
                         {"host_copy_ms", median(copy)},
                         {"host_draw_ms", median(draw)},
                         {"speedup", hostMs * 1e3 / median(call)},
                         {"draws_differing", differ}});
      if (differ != 0)
        std::fprintf(stderr, "sampling_bench: %d draws differ from the host's (%s, batch %lld)\n",
                     differ, name.c_str(), static_cast<long long>(batch));
    }
  if (!jsonPath.empty()) {
    std::ofstream out(jsonPath);
    out << nlohmann::json{{"device", device.summary()}, {"records", records}}.dump(2) << "\n";
  }
  for (const auto &r : records)
    if (r["draws_differing"] != 0)
      return 1;
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  int reps = 20;
  std::string json;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
      reps = std::max(1, std::atoi(argv[++i]));
    else if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc)
      json = argv[++i];
    else {
      std::fprintf(stderr, "usage: sampling_bench [--reps N] [--json FILE]\n");
      return 2;
    }
  }
  try {
    return run(reps, json);
  } catch (const xlc::Error &e) {
    std::fprintf(stderr, "sampling_bench: %s\n", e.what());
    return 1;
  }
}
