//===- WeightUpload.cpp - Weights from the checkpoint to the GPU ----------===//

#include "runtime/exec/cuda/WeightUpload.h"

#include "runtime/exec/WeightAssembly.h"
#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/Progress.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <future>
#include <thread>

namespace xlc::exec {
namespace art = xlc::artifact;

namespace {

/// Converts fp32 values to the bf16/f32 bytes of |dtype|, in parallel for large tensors.
std::vector<std::uint8_t> toDType(const std::vector<float> &values, art::DType dtype,
                                  const std::string &what) {
  check(dtype == art::DType::F32 || dtype == art::DType::BF16,
        "{}: weights of dtype {} are not supported by the CUDA backend", what,
        art::dtypeName(dtype));
  std::vector<std::uint8_t> bytes(values.size() * art::dtypeSize(dtype));
  auto convertRange = [&](std::size_t begin, std::size_t end) {
    if (dtype == art::DType::F32) {
      std::memcpy(bytes.data() + begin * 4, values.data() + begin, (end - begin) * 4);
      return;
    }
    for (std::size_t i = begin; i < end; ++i) {
      std::uint16_t b = weights::f32ToBF16(values[i]);
      std::memcpy(bytes.data() + 2 * i, &b, 2);
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

} // namespace

std::map<art::BufferId, cuda::DeviceBuffer>
uploadWeights(const art::Artifact &a, const weights::Checkpoint &checkpoint,
              std::vector<cuda::DeviceBuffer> &buffers, bool verbose) {
  weights::Progress progress("uploading weights", weightBytes(a), a.weights.size(),
                             verbose && weights::Progress::enabledByDefault());
  const auto start = std::chrono::steady_clock::now();
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
    buffers[a.weights[i].buffer].upload(bytes.data(), bytes.size());
    progress.advance(bytes.size());
  }
  progress.finish();

  std::map<art::BufferId, cuda::DeviceBuffer> widened;
  for (const art::Function &fn : a.functions)
    for (const art::Step &step : fn.steps) {
      const art::GemmStep *gemm = step.gemm();
      // Only weights: a trainable parameter's fp32 copy would go stale when a step updates it.
      if (!gemm || gemm->epilogue != art::Epilogue::Bias || widened.count(*gemm->c) ||
          a.buffers[*gemm->c].cls != art::BufferClass::Weight ||
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
  if (verbose) {
    fmt::print(stderr, "[xlc] {:.2f} GiB of weights assembled and uploaded in {:.1f} s\n",
               static_cast<double>(weightBytes(a)) / (1ull << 30),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
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
