//===- DeviceSampler.cpp - Generation's draws on the GPU ------------------===//

#include "runtime/exec/cuda/DeviceSampler.h"

#include "runtime/cuda/DriverApi.h"
#include "runtime/support/Error.h"

#include <algorithm>
#include <cstring>

namespace xlc::exec {
namespace art = xlc::artifact;

namespace {

static_assert(sizeof(sampling_abi::Options) == 40 && sizeof(sampling_abi::Row) == 24 &&
                  sizeof(sampling_abi::Result) == 16 && sizeof(sampling_abi::Params) == 48,
              "the host copies of sampling.cuh's structs are made of 8-byte slots");

constexpr std::uint64_t kAlign = 256;

std::uint64_t alignUp(std::uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

void *allocPinned(std::uint64_t bytes) {
  void *p = nullptr;
  XLC_CU_CHECK(cuda::driver().cuMemHostAlloc(&p, bytes, 0));
  return p;
}

} // namespace

void DeviceSampler::FreePinned::operator()(void *p) const { cuda::driver().cuMemFreeHost(p); }

std::string DeviceSampler::configText(art::DType dtype) {
  check(dtype == art::DType::F32 || dtype == art::DType::BF16,
        "device sampling: logits of type {} are not supported (f32 or bf16)",
        art::dtypeName(dtype));
  return fmt::format("xlc::device::SamplingConfig<{}, {}>",
                     dtype == art::DType::F32 ? "float" : "__nv_bfloat16", kThreads);
}

art::Kernel DeviceSampler::kernel(art::DType dtype) {
  return runtimeKernel(fmt::format("sample_tokens_{}", art::dtypeName(dtype)), "sampling",
                       "sampling", configText(dtype), "SamplingParams", "sample_tokens",
                       kThreads);
}

std::vector<art::DType> DeviceSampler::logitDtypes(const art::Artifact &artifact) {
  std::vector<art::DType> dtypes;
  for (const art::Function &f : artifact.functions) {
    if (f.outputs.empty())
      continue;
    const art::DType d = artifact.buffers[f.outputs[0].buffer].dtype;
    if ((d == art::DType::F32 || d == art::DType::BF16) &&
        std::find(dtypes.begin(), dtypes.end(), d) == dtypes.end())
      dtypes.push_back(d);
  }
  return dtypes;
}

DeviceSampler::Cubins DeviceSampler::compile(const KernelCache &cache, const std::string &arch,
                                             std::span<const art::DType> dtypes) {
  Cubins cubins;
  for (art::DType d : dtypes)
    cubins.emplace(d, cache.get(kernel(d), arch));
  return cubins;
}

DeviceSampler::DeviceSampler(const Cubins &cubins, std::uint64_t maxBatch, std::uint64_t vocab,
                             CUstream stream)
    : maxBatch_(maxBatch), vocab_(vocab) {
  check(vocab >= 1 && vocab <= kMaxVocab,
        "device sampling: a vocabulary of {} tokens is outside [1, 2^27] (the kernel's exact "
        "128-bit sums); sample on the host instead",
        vocab);
  check(maxBatch >= 1 && !cubins.empty(), "device sampling: nothing to sample for");
  for (const auto &[dtype, compiled] : cubins) {
    Compiled &c = kernels_[dtype];
    c.module = cuda::Module::load(compiled.cubin);
    c.kernel = c.module.kernel("xlc_kernel");
  }
  rowsOffset_ = alignUp(sizeof(sampling_abi::Options));
  resultsOffset_ = rowsOffset_ + alignUp(maxBatch * sizeof(sampling_abi::Row));
  device_ = cuda::DeviceBuffer(resultsOffset_ + alignUp(maxBatch * sizeof(sampling_abi::Result)));
  stagedHost_.reset(allocPinned(resultsOffset_));
  resultsHost_.reset(allocPinned(maxBatch * sizeof(sampling_abi::Result)));
  // Warm-up and self-check on defined data: a row of zeros draws token 0 greedily.
  const art::DType dtype = kernels_.begin()->first;
  cuda::DeviceBuffer zeros(vocab * art::dtypeSize(dtype));
  XLC_CU_CHECK(cuda::driver().cuMemsetD8Async(zeros.address(), 0, zeros.bytes(), stream));
  const DrawRow row{0, 0, true};
  Draw draw;
  drawNow(SamplingOptions{}, std::span(&row, 1), {zeros.address(), dtype, vocab, 1}, vocab,
          stream, std::span(&draw, 1));
  check(draw.token == 0 && draw.kept == 1,
        "device sampling: the warm-up drew token {} (kept {}) from a row of zeros instead of "
        "token 0; the sampling kernel is broken",
        draw.token, draw.kept);
}

void DeviceSampler::stage(const SamplingOptions &options, std::span<const DrawRow> rows,
                          const Launch &launch, std::uint64_t vocab, CUstream stream) {
  validateSamplingOptions(options);
  check(kernels_.count(launch.dtype) != 0,
        "device sampling: no kernel for {} logits (compiled for the artifact's logits only)",
        art::dtypeName(launch.dtype));
  check(vocab == vocab_, "device sampling: rows of {} logits, the sampler was made for {}", vocab,
        vocab_);
  check(launch.rows >= 1 && launch.rows <= maxBatch_ && rows.size() == launch.rows,
        "device sampling: {} rows ({} given) for room of {}", launch.rows, rows.size(), maxBatch_);
  check(launch.rowStride >= vocab, "device sampling: a row stride of {} is below V = {}",
        launch.rowStride, vocab);
  sampling_abi::Options o{};
  o.invTemperature = options.temperature > 0.0 ? 1.0 / options.temperature : 0.0;
  o.topP = options.topP;
  o.topK = static_cast<std::int64_t>(std::min<std::uint64_t>(options.topK, vocab));
  o.greedy = options.isGreedy() ? 1 : 0;
  o.seed = options.seed;
  auto *base = static_cast<unsigned char *>(stagedHost_.get());
  std::memcpy(base, &o, sizeof o);
  auto *staged = reinterpret_cast<sampling_abi::Row *>(base + rowsOffset_);
  for (std::size_t b = 0; b < rows.size(); ++b)
    staged[b] = {rows[b].stream, rows[b].step, rows[b].active ? 1 : 0};
  // One upload of the options and the rows, ordered before the launch on the stream. The pinned
  // staging is rewritten only by the next call's stage(), after this call synchronised.
  XLC_CU_CHECK(cuda::driver().cuMemcpyHtoDAsync_v2(
      device_.address(), stagedHost_.get(), rowsOffset_ + rows.size() * sizeof(sampling_abi::Row),
      stream));
  rowsStaged_ = rows.size();
  pending_ = launch;
}

void DeviceSampler::enqueue(const Launch &launch, CUstream stream) const {
  const sampling_abi::Params p{launch.logits,
                               static_cast<std::int64_t>(launch.rowStride),
                               static_cast<std::int64_t>(vocab_),
                               device_.address(),
                               device_.address() + rowsOffset_,
                               device_.address() + resultsOffset_};
  kernels_.at(launch.dtype)
      .kernel.launch({static_cast<unsigned>(launch.rows), 1, 1},
                     {static_cast<unsigned>(kThreads), 1, 1}, 0, stream, p);
}

void DeviceSampler::enqueueDownload(const Launch &launch, CUstream stream) const {
  XLC_CU_CHECK(cuda::driver().cuMemcpyDtoHAsync_v2(
      resultsHost_.get(), device_.address() + resultsOffset_,
      launch.rows * sizeof(sampling_abi::Result), stream));
}

void DeviceSampler::drawNow(const SamplingOptions &options, std::span<const DrawRow> rows,
                            const Launch &launch, std::uint64_t vocab, CUstream stream,
                            std::span<Draw> out) {
  stage(options, rows, launch, vocab, stream);
  enqueue(*take(), stream);
  enqueueDownload(launch, stream);
  XLC_CU_CHECK(cuda::driver().cuStreamSynchronize(stream));
  results(out);
}

void DeviceSampler::results(std::span<Draw> out) const {
  check(out.size() == rowsStaged_, "device sampling: {} results asked for, {} rows were drawn",
        out.size(), rowsStaged_);
  const auto *r = static_cast<const sampling_abi::Result *>(resultsHost_.get());
  for (std::size_t b = 0; b < out.size(); ++b) {
    out[b].token = r[b].token;
    out[b].nanCount = static_cast<std::uint32_t>(r[b].nanCount);
    out[b].firstNan = static_cast<std::uint32_t>(r[b].firstNan);
    out[b].kept = r[b].kept;
  }
}

} // namespace xlc::exec
