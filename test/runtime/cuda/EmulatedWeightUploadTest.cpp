//===- EmulatedWeightUploadTest.cpp - The raw-bytes weight upload on the CPU ===//
//
// The GPU half of the raw-bytes weight upload (runtime/device/weight_transform.cuh) on the SIMT
// emulator, driven by the same plan (runtime/exec/WeightPieces.h) and the same reader as the CUDA
// backend, with host memory standing in for the device buffers: every buffer must hold the host
// path's bytes exactly (test/gpu/harness/WeightUploadCases.h: every kind of assembly, every
// delicate bit pattern, pieces from 4 bytes to whole tensors, the runtime's launch geometry and a
// small one whose grid-stride loop wraps). Also: the device's conversions and fold equal the
// host's on every 16-bit pattern and millions of fp32 ones; the plan's layout and its host-path
// reasons; the reader's errors; the runtime's host copy of the kernel's parameter struct; and
// NVRTC compiles the kernel for sm_90a. test/gpu/WeightUploadTests.cpp checks the same on the GPU.
//
//===----------------------------------------------------------------------===//
#include "WeightUploadCases.h"

#include "xlc/device/weight_transform.cuh"

#include "runtime/artifact/Serialize.h"
#include "runtime/cuda/Nvrtc.h"
#include "runtime/exec/WeightPieces.h"
#include "runtime/exec/cuda/KernelCache.h"
#include "runtime/exec/cuda/WeightUpload.h"
#include "runtime/reference/RandomCheckpoint.h"
#include "runtime/support/Error.h"
#include "test/gpu/harness/GpuSkip.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <filesystem>
#include <random>

namespace {

namespace art = xlc::artifact;
namespace device = xlc::device;
namespace exec = xlc::exec;
namespace fs = std::filesystem;
namespace weights = xlc::weights;
using namespace xlc::test::weight_upload;

std::uint32_t bitsOf(float f) { return std::bit_cast<std::uint32_t>(f); }

fs::path workDir(const std::string &name) {
  const fs::path dir = fs::temp_directory_path() /
                       fmt::format("xlc-emulated-weight-upload-{}-{}", ::getpid(), name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

//===--------------------------------------------------------------------===//
// The element operations
//===--------------------------------------------------------------------===//

TEST(WeightTransformScalars, WideningEqualsTheHostOnEvery16BitPattern) {
  for (std::uint32_t b = 0; b <= 0xffff; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    ASSERT_EQ(bitsOf(device::weight::bf16_to_f32(h)), bitsOf(weights::bf16ToF32(h))) << b;
    ASSERT_EQ(bitsOf(device::weight::f16_to_f32(h)), bitsOf(weights::f16ToF32(h))) << b;
  }
}

TEST(WeightTransformScalars, RoundingToBf16EqualsTheHost) {
  std::vector<std::uint32_t> patterns = specialF32();
  // Every upper half with the lower halves around the rounding decisions.
  for (std::uint32_t hi = 0; hi <= 0xffff; ++hi)
    for (std::uint32_t lo : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu})
      patterns.push_back(hi << 16 | lo);
  std::mt19937 rng(11);
  for (int i = 0; i < 1'000'000; ++i)
    patterns.push_back(rng());
  for (std::uint32_t p : patterns)
    ASSERT_EQ(device::weight::f32_to_bf16(std::bit_cast<float>(p)),
              weights::f32ToBF16(std::bit_cast<float>(p)))
        << std::hex << p;
}

TEST(WeightTransformScalars, FoldProductEqualsTheHost) {
  std::vector<std::uint32_t> values = specialF32(), scales = specialScales();
  std::mt19937 rng(12);
  for (int i = 0; i < 2000; ++i) {
    values.push_back(rng());
    scales.push_back(rng());
  }
  std::normal_distribution<float> normal(1.0f, 0.5f);
  for (int i = 0; i < 200; ++i)
    scales.push_back(bitsOf(normal(rng)));
  std::size_t nans = 0;
  for (std::uint32_t v : values)
    for (std::uint32_t s : scales) {
      const float fv = std::bit_cast<float>(v), fs = std::bit_cast<float>(s);
      const float host = exec::foldProduct(fv, fs);
      ASSERT_EQ(bitsOf(device::weight::fold_product(fv, fs)), bitsOf(host))
          << std::hex << v << " * " << s;
      if (host != host) {
        ++nans;
        // The rule, not the hardware, picks the NaN.
        const std::uint32_t expected =
            (v & 0x7fffffffu) > 0x7f800000u   ? (v | 0x00400000u)
            : (s & 0x7fffffffu) > 0x7f800000u ? (s | 0x00400000u)
                                              : 0x7fc00000u;
        ASSERT_EQ(bitsOf(host), expected) << std::hex << v << " * " << s;
      } else {
        ASSERT_EQ(bitsOf(host), bitsOf(fv * fs));
      }
    }
  EXPECT_GT(nans, 0u);
}

//===--------------------------------------------------------------------===//
// The plan and the reader
//===--------------------------------------------------------------------===//

/// A checkpoint of the assembly cases, written once per process.
const weights::Checkpoint &assemblyCheckpoint() {
  static const weights::Checkpoint checkpoint = [] {
    const fs::path dir = workDir("cases");
    writeAssemblyCheckpoint(dir.string());
    return weights::Checkpoint::open(dir.string());
  }();
  return checkpoint;
}

TEST(WeightUploadPlan, PiecesCoverEveryTensorOnceCopiesFirst) {
  const art::Artifact a = assemblyArtifact();
  const weights::Checkpoint &checkpoint = assemblyCheckpoint();
  exec::checkWeights(a, checkpoint);
  for (std::uint64_t pieceBytes : {4ull, 12ull, 64ull, 1000ull, 1ull << 20}) {
    const exec::WeightUploadPlan plan = exec::planWeightUpload(a, checkpoint, pieceBytes);
    EXPECT_TRUE(plan.host.empty());
    std::map<std::string, std::uint64_t> covered; // tensor -> bytes, in order
    bool seenTransform = false;
    std::size_t copies = 0;
    for (const exec::WeightPiece &p : plan.pieces) {
      EXPECT_LE(p.bytes, pieceBytes);
      EXPECT_GT(p.bytes, 0u);
      EXPECT_EQ(p.byteBegin % weights::dtypeSize(p.source->dtype), 0u);
      EXPECT_EQ(p.bytes % weights::dtypeSize(p.source->dtype), 0u);
      EXPECT_FALSE(seenTransform && !p.transform) << "a copy after a transform";
      seenTransform |= p.transform;
      copies += !p.transform;
      EXPECT_EQ(covered[p.source->name], p.byteBegin) << p.source->name;
      covered[p.source->name] += p.bytes;
      EXPECT_LE(exec::pieceEnd(p),
                art::byteSize(a.buffers[a.weights[p.binding].buffer]).evaluate(1, 1, "b"));
    }
    for (const auto &[name, bytes] : covered)
      EXPECT_EQ(bytes, checkpoint.get(name).byteSize) << name;
    // Only 'plain' and 'plain_f32' are copied unchanged (same type, no fold, one run).
    std::uint64_t copyBytes = 0;
    for (const exec::WeightPiece &p : plan.pieces)
      if (!p.transform) {
        const std::string &buffer = a.buffers[a.weights[p.binding].buffer].name;
        EXPECT_TRUE(buffer == "plain" || buffer == "plain_f32") << buffer;
        copyBytes += p.bytes;
      }
    EXPECT_EQ(copyBytes, plan.copyBytes);
    EXPECT_EQ(copyBytes, checkpoint.get("plain").byteSize + checkpoint.get("plain_f32").byteSize);
    EXPECT_GT(copies, 0u);
    // Every folded norm weight, in fp32.
    EXPECT_EQ(plan.scales.size(), 8u + 10u + 6u + 48u);
  }
  EXPECT_THROW(exec::planWeightUpload(a, checkpoint, 6), xlc::Error);
}

TEST(WeightUploadPlan, BindingsTheRawPathCannotFillGoToTheHostWithTheReason) {
  std::vector<BindingSpec> specs = assemblySpecs();
  specs[3].dtype = art::DType::F16; // 'plain' as an f16 buffer
  const art::Artifact a = assemblyArtifact(specs);
  const exec::WeightUploadPlan plan = exec::planWeightUpload(a, assemblyCheckpoint(), 64);
  ASSERT_EQ(plan.host.size(), 1u);
  EXPECT_EQ(plan.host[0].binding, 3u);
  EXPECT_NE(plan.host[0].reason.find("'plain'"), std::string::npos) << plan.host[0].reason;
  EXPECT_NE(plan.host[0].reason.find("f16"), std::string::npos) << plan.host[0].reason;
  for (const exec::WeightPiece &p : plan.pieces)
    EXPECT_NE(p.binding, 3u);
}

/// Bindings a backend does not allocate (no function of it reads them) are left out entirely:
/// no piece, no host binding, no scale.
TEST(WeightUploadPlan, SkippedBindingsGetNoPieces) {
  std::vector<BindingSpec> specs = assemblySpecs();
  specs[3].dtype = art::DType::F16; // 'plain' as an f16 buffer: host path unless skipped
  const art::Artifact a = assemblyArtifact(specs);
  const exec::WeightUploadPlan all = exec::planWeightUpload(a, assemblyCheckpoint(), 64);
  std::vector<bool> skip(a.weights.size(), false);
  skip[3] = true;
  skip[0] = true;
  const exec::WeightUploadPlan some = exec::planWeightUpload(a, assemblyCheckpoint(), 64, skip);
  EXPECT_TRUE(some.host.empty());
  std::size_t kept = 0;
  for (const exec::WeightPiece &p : some.pieces) {
    EXPECT_NE(p.binding, 0u);
    EXPECT_NE(p.binding, 3u);
    ++kept;
  }
  std::size_t expected = 0;
  for (const exec::WeightPiece &p : all.pieces)
    expected += p.binding != 0 && p.binding != 3;
  EXPECT_EQ(kept, expected);
  EXPECT_GT(kept, 0u);
}

TEST(CheckpointReader, ErrorsNameTheTensorAndTheFile) {
  const fs::path dir = workDir("reader");
  writeAssemblyCheckpoint(dir.string());
  const weights::Checkpoint checkpoint = weights::Checkpoint::open(dir.string());
  const exec::CheckpointReader reader(checkpoint);
  const weights::TensorInfo &big = checkpoint.get("big_a");
  std::vector<std::uint8_t> out(big.byteSize);
  reader.read(big, 0, big.byteSize, out.data());
  const std::span<const std::uint8_t> mapped = checkpoint.rawData(big);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), mapped.begin()));
  try {
    reader.read(big, 8, big.byteSize, out.data());
    FAIL() << "read past the tensor";
  } catch (const xlc::Error &e) {
    EXPECT_NE(std::string(e.what()).find("big_a"), std::string::npos) << e.what();
  }
  // The file shrinks under the reader: the read fails naming the tensor and the file.
  const weights::TensorInfo *last = &checkpoint.tensors()[0];
  for (const weights::TensorInfo &t : checkpoint.tensors())
    if (t.end > last->end)
      last = &t;
  fs::resize_file(dir / "model.safetensors", checkpoint.files()[0].header().dataOffset + last->begin);
  try {
    reader.read(*last, 0, last->byteSize, out.data());
    FAIL() << "read from a truncated file";
  } catch (const xlc::Error &e) {
    EXPECT_NE(std::string(e.what()).find(last->name), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

//===--------------------------------------------------------------------===//
// The whole upload on the emulator
//===--------------------------------------------------------------------===//

// The host struct mirrors the device struct: the same size, each field at the same offset.
#define XLC_SAME_FIELD(h, d)                                                                   \
  static_assert(offsetof(exec::weight_transform_abi::Params, h) ==                             \
                    offsetof(device::WeightTransformParams, d),                                \
                "Params::" #h " vs WeightTransformParams::" #d)
static_assert(sizeof(exec::weight_transform_abi::Params) == sizeof(device::WeightTransformParams));
XLC_SAME_FIELD(src, src);
XLC_SAME_FIELD(dst, dst);
XLC_SAME_FIELD(scale, scale);
XLC_SAME_FIELD(count, count);
XLC_SAME_FIELD(first, first);
XLC_SAME_FIELD(run, run);
XLC_SAME_FIELD(rowOut, row_out);
XLC_SAME_FIELD(column, column);
XLC_SAME_FIELD(columns, columns);
XLC_SAME_FIELD(srcType, src_type);
XLC_SAME_FIELD(dstType, dst_type);
#undef XLC_SAME_FIELD
static_assert(exec::weight_transform_abi::kF32 ==
                  static_cast<std::int64_t>(device::WeightElement::kF32) &&
              exec::weight_transform_abi::kBF16 ==
                  static_cast<std::int64_t>(device::WeightElement::kBF16) &&
              exec::weight_transform_abi::kF16 ==
                  static_cast<std::int64_t>(device::WeightElement::kF16));

using RuntimeConfig = device::WeightTransformConfig<exec::WeightTransformKernel::kThreads>;
using SmallConfig = device::WeightTransformConfig<64>;

TEST(EmulatedWeightUpload, RuntimeKernelSourceIsTheTestedConfig) {
  EXPECT_EQ(exec::WeightTransformKernel::configText(), "xlc::device::WeightTransformConfig<256>");
  const art::Kernel k = exec::WeightTransformKernel::kernel();
  EXPECT_NE(k.source.find("using Config = " + exec::WeightTransformKernel::configText() + ";"),
            std::string::npos);
  EXPECT_NE(k.source.find("#include \"xlc/device/weight_transform.cuh\""), std::string::npos);
}

std::uint64_t addressOf(const void *p) { return reinterpret_cast<std::uint64_t>(p); }

/// The raw upload of |a| from |checkpoint|, with host memory as device memory: the plan's pieces
/// read by the reader, copies placed, transforms run by the emulated kernel (the runtime's block
/// and grid, or 64 threads and at most |maxBlocks| blocks, so that the grid-stride loop wraps).
std::map<art::BufferId, std::vector<std::uint8_t>>
emulateRawUpload(const art::Artifact &a, const weights::Checkpoint &checkpoint,
                 std::uint64_t pieceBytes, bool runtimeGeometry, unsigned maxBlocks = 3) {
  const exec::WeightUploadPlan plan = exec::planWeightUpload(a, checkpoint, pieceBytes);
  EXPECT_TRUE(plan.host.empty());
  std::map<art::BufferId, std::vector<std::uint8_t>> buffers;
  for (const art::WeightBinding &w : a.weights) // poisoned: an element nobody writes shows
    buffers[w.buffer].assign(art::byteSize(a.buffers[w.buffer]).evaluate(1, 1, "buffer"), 0xa5);
  const exec::CheckpointReader reader(checkpoint);
  std::vector<std::uint32_t> staging; // 4-byte aligned, as device scratch is (256)
  for (const exec::WeightPiece &p : plan.pieces) {
    staging.assign((p.bytes + 3) / 4, 0xdeadbeefu);
    reader.read(*p.source, p.byteBegin, p.bytes, staging.data());
    std::vector<std::uint8_t> &dst = buffers[a.weights[p.binding].buffer];
    if (exec::pieceEnd(p) > dst.size()) {
      ADD_FAILURE() << "a piece of " << p.source->name << " ends past its buffer";
      continue;
    }
    if (!p.transform) {
      std::memcpy(dst.data() + p.dstByteOffset, staging.data(), p.bytes);
      continue;
    }
    const exec::weight_transform_abi::Params params = exec::WeightTransformKernel::params(
        p.map, addressOf(staging.data()), addressOf(dst.data()), addressOf(plan.scales.data()));
    device::WeightTransformParams dp;
    std::memcpy(&dp, &params, sizeof dp);
    if (runtimeGeometry)
      xlc::emu::launch(dim3(exec::WeightTransformKernel::blocks(p.map.count)),
                       dim3(RuntimeConfig::kThreads), 0,
                       [&] { device::weight_transform<RuntimeConfig>(dp); });
    else
      xlc::emu::launch(
          dim3(std::min<unsigned>(maxBlocks, (p.map.count + SmallConfig::kThreads - 1) /
                                                 SmallConfig::kThreads)),
          dim3(SmallConfig::kThreads), 0, [&] { device::weight_transform<SmallConfig>(dp); });
  }
  return buffers;
}

void expectHostBytes(const art::Artifact &a, const weights::Checkpoint &checkpoint,
                     const std::map<art::BufferId, std::vector<std::uint8_t>> &actual,
                     const std::string &what) {
  const auto expected = expectedBytes(a, checkpoint);
  for (const auto &[id, bytes] : expected) {
    const std::string diff = firstDifference(a.buffers[id], actual.at(id), bytes);
    EXPECT_EQ(diff, "") << what;
  }
}

TEST(EmulatedWeightUpload, EveryAssemblyEqualsTheHostPathByteForByte) {
  const art::Artifact a = assemblyArtifact();
  const weights::Checkpoint &checkpoint = assemblyCheckpoint();
  // 12 bytes: 3 f32 or 6 bf16/f16 elements, so pieces end inside runs and rows.
  for (std::uint64_t pieceBytes : {12ull, 1000ull, 1ull << 20})
    expectHostBytes(a, checkpoint, emulateRawUpload(a, checkpoint, pieceBytes, false),
                    fmt::format("pieces of {} bytes, 64 threads", pieceBytes));
  expectHostBytes(a, checkpoint, emulateRawUpload(a, checkpoint, 1000, true),
                  "pieces of 1000 bytes, the runtime's geometry");
  expectHostBytes(a, checkpoint, emulateRawUpload(a, checkpoint, 1ull << 20, true),
                  "whole tensors, the runtime's geometry");
}

TEST(EmulatedWeightUpload, TiedModelFromF32AndBf16CheckpointsEqualsTheHostPath) {
  const art::Artifact a = art::loadArtifact(XLC_WEIGHT_UPLOAD_ARTIFACT);
  for (const weights::DType dtype : {weights::DType::F32, weights::DType::BF16}) {
    const fs::path dir = workDir(fmt::format("model-{}", weights::dtypeName(dtype)));
    xlc::ref::writeRandomCheckpoint(XLC_WEIGHT_UPLOAD_CONFIG, dir.string(),
                                    {.seed = 5, .dtype = dtype});
    const weights::Checkpoint checkpoint = weights::Checkpoint::open(dir.string());
    exec::checkWeights(a, checkpoint);
    const exec::WeightUploadPlan plan = exec::planWeightUpload(a, checkpoint, 1u << 16);
    EXPECT_TRUE(plan.host.empty());
    EXPECT_GT(plan.transformBytes, 0u); // folded norms
    expectHostBytes(a, checkpoint, emulateRawUpload(a, checkpoint, 1u << 16, false, 8),
                    fmt::format("{} checkpoint", weights::dtypeName(dtype)));
    fs::remove_all(dir);
  }
}

TEST(WeightTransformKernel, CompilesWithNvrtcForSm90a) {
  std::string reason;
  if (!xlc::cuda::Nvrtc::available(&reason))
    XLC_SKIP_OR_FAIL("libnvrtc cannot be loaded: " << reason);
  const exec::CompiledCubin compiled =
      exec::KernelCache("").get(exec::WeightTransformKernel::kernel(), "sm_90a");
  ASSERT_GE(compiled.cubin.size(), 4u);
  EXPECT_EQ(std::string(compiled.cubin.data() + 1, 3), "ELF");
}

} // namespace
