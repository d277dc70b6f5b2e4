//===- WeightUploadTests.cpp - The raw-bytes weight upload on the GPU -----===//
//
// runtime/exec/cuda/WeightUpload.h on the GPU: the raw-bytes path (pread into pinned staging,
// cuMemcpyHtoDAsync on several streams, the weight_transform kernel for conversions, folds and
// inner-axis concatenations) must leave every device buffer byte for byte as the host path
// leaves it, for
//   - every kind of assembly with every delicate bit pattern (test/gpu/harness/
//     WeightUploadCases.h), with staging buffers from 12 bytes (pieces end inside rows; the ring
//     of two slots per thread is reused thousands of times) to 16 MiB, 1 to 8 threads;
//   - the compiled models of $XLC_GPU_ARTIFACTS (tiny, sig/tied, 125M) from random F32 and BF16
//     checkpoints;
// and a failure in the middle of an upload (the file shrinks under it) must name the tensor and
// the file and leave nothing in flight: the device works and a second upload succeeds.
// Both paths are also compared with the host oracle (assembleWeightBytes) directly.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/cuda/Device.h"
#include "runtime/cuda/DriverApi.h"
#include "runtime/cuda/Nvrtc.h"
#include "runtime/exec/cuda/WeightUpload.h"
#include "runtime/reference/RandomCheckpoint.h"
#include "runtime/support/Error.h"
#include "test/gpu/harness/ArtifactDirs.h"
#include "test/gpu/harness/GpuSkip.h"
#include "test/gpu/harness/WeightUploadCases.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <unistd.h>

namespace xlc::exec {
namespace {
namespace fs = std::filesystem;
namespace art = xlc::artifact;
using namespace xlc::test::weight_upload;

using test::artifactDir;
using test::repoDir;

fs::path workDir(const std::string &name) {
  const fs::path dir =
      fs::temp_directory_path() / fmt::format("xlc-gpu-weight-upload-{}-{}", ::getpid(), name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

class WeightUploadGpu : public ::testing::Test {
protected:
  void SetUp() override {
    std::string reason;
    if (!cuda::cudaAvailable(&reason))
      XLC_SKIP_OR_FAIL("no GPU: " << reason);
    if (!cuda::Nvrtc::available(&reason)) // the transform kernel is compiled at upload
      XLC_SKIP_OR_FAIL("libnvrtc cannot be loaded: " << reason);
    device_.emplace(cuda::CudaDevice::open());
    cache_ = workDir("cache");
  }
  void TearDown() override { fs::remove_all(cache_); }

  /// Device buffers for the bound buffers of |a|, poisoned (0xa5) so that an element nobody
  /// writes shows.
  std::vector<cuda::DeviceBuffer> allocate(const art::Artifact &a) {
    std::vector<cuda::DeviceBuffer> buffers(a.buffers.size());
    for (const art::WeightBinding &w : a.weights) {
      buffers[w.buffer] =
          cuda::DeviceBuffer(art::byteSize(a.buffers[w.buffer]).evaluate(1, 1, "buffer"));
      buffers[w.buffer].fill(0xa5);
    }
    device_->synchronize();
    return buffers;
  }

  std::map<art::BufferId, std::vector<std::uint8_t>>
  upload(const art::Artifact &a, const weights::Checkpoint &checkpoint,
         WeightUploadOptions options) {
    options.cacheDir = cache_.string();
    std::vector<cuda::DeviceBuffer> buffers = allocate(a);
    uploadWeights(a, checkpoint, buffers, options);
    std::map<art::BufferId, std::vector<std::uint8_t>> out;
    for (const art::WeightBinding &w : a.weights) {
      std::vector<std::uint8_t> &bytes = out[w.buffer];
      bytes.resize(buffers[w.buffer].bytes());
      buffers[w.buffer].download(bytes.data(), bytes.size());
    }
    return out;
  }

  /// Raw with |options| and host: both equal the oracle, byte for byte.
  void expectBothPathsEqual(const art::Artifact &a, const weights::Checkpoint &checkpoint,
                            WeightUploadOptions raw, const std::string &what) {
    raw.path = WeightUploadOptions::Path::Raw;
    WeightUploadOptions host;
    host.path = WeightUploadOptions::Path::Host;
    const auto expected = expectedBytes(a, checkpoint);
    const auto rawBytes = upload(a, checkpoint, raw);
    const auto hostBytes = upload(a, checkpoint, host);
    for (const auto &[id, bytes] : expected) {
      EXPECT_EQ(firstDifference(a.buffers[id], rawBytes.at(id), bytes), "")
          << what << ", raw path (" << raw.threads << " threads, staging " << raw.stagingBytes
          << " bytes)";
      EXPECT_EQ(firstDifference(a.buffers[id], hostBytes.at(id), bytes), "") << what
                                                                              << ", host path";
    }
  }

  std::optional<cuda::CudaDevice> device_;
  fs::path cache_;
};

TEST_F(WeightUploadGpu, EveryAssemblyRawEqualsHostByteForByte) {
  const art::Artifact a = assemblyArtifact();
  const fs::path dir = workDir("cases");
  writeAssemblyCheckpoint(dir.string());
  const weights::Checkpoint checkpoint = weights::Checkpoint::open(dir.string());
  checkWeights(a, checkpoint);
  struct Setting {
    unsigned threads;
    std::uint64_t staging;
  };
  for (const Setting s : {Setting{1, 12}, Setting{3, 12}, Setting{2, 64}, Setting{8, 1000},
                          Setting{4, 1u << 20}, Setting{0, std::uint64_t{16} << 20}}) {
    WeightUploadOptions options;
    options.threads = s.threads;
    options.stagingBytes = s.staging;
    options.verbose = true;
    expectBothPathsEqual(a, checkpoint, options, "assembly cases");
  }
  fs::remove_all(dir);
}

TEST_F(WeightUploadGpu, ModelsFromF32AndBf16CheckpointsRawEqualsHost) {
  std::size_t models = 0;
  for (const std::string model : {"xlstm-tiny", "xlstm-sig-tied", "xlstm-125m"}) {
    const fs::path path = artifactDir() / (model + ".xlca");
    if (!fs::exists(path))
      continue;
    ++models;
    const art::Artifact a = art::loadArtifact(path.string());
    for (const weights::DType dtype : {weights::DType::F32, weights::DType::BF16}) {
      const fs::path dir = workDir(fmt::format("{}-{}", model, weights::dtypeName(dtype)));
      ref::writeRandomCheckpoint((repoDir() / "models" / model / "config.json").string(),
                                 dir.string(), {.seed = 3, .dtype = dtype});
      const weights::Checkpoint checkpoint = weights::Checkpoint::open(dir.string());
      checkWeights(a, checkpoint);
      WeightUploadOptions options;
      options.verbose = true;
      expectBothPathsEqual(a, checkpoint, options,
                           fmt::format("{} from {}", model, weights::dtypeName(dtype)));
      options.stagingBytes = 1u << 16; // many pieces per tensor
      options.threads = 5;
      expectBothPathsEqual(a, checkpoint, options,
                           fmt::format("{} from {}, 64 KiB pieces", model,
                                       weights::dtypeName(dtype)));
      fs::remove_all(dir);
    }
  }
  if (models == 0)
    XLC_SKIP_OR_FAIL("no model artifact in " << artifactDir()
                                             << " (scripts/gpu-bundle.sh compiles them)");
}

TEST_F(WeightUploadGpu, FailureNamesTensorAndFileAndLeavesNothingInFlight) {
  const art::Artifact a = assemblyArtifact();
  const fs::path dir = workDir("truncated");
  writeAssemblyCheckpoint(dir.string());
  const weights::Checkpoint checkpoint = weights::Checkpoint::open(dir.string());
  // The file shrinks after it was opened: the tensor stored last can no longer be read.
  const weights::TensorInfo *last = &checkpoint.tensors()[0];
  for (const weights::TensorInfo &t : checkpoint.tensors())
    if (t.end > last->end)
      last = &t;
  // Norm weights are read through the mapping (a read there past the end would be SIGBUS).
  for (const art::WeightBinding &w : a.weights)
    ASSERT_NE(w.scaleColumnsBy.value_or(""), last->name) << "the last tensor is a norm weight";
  fs::resize_file(dir / "model.safetensors",
                  checkpoint.files()[0].header().dataOffset + last->begin);
  WeightUploadOptions options;
  options.path = WeightUploadOptions::Path::Raw;
  options.threads = 4;
  options.stagingBytes = 12; // many pieces in flight when the read fails
  options.cacheDir = cache_.string();
  std::vector<cuda::DeviceBuffer> buffers = allocate(a);
  try {
    uploadWeights(a, checkpoint, buffers, options);
    FAIL() << "an upload from a truncated file succeeded";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("'" + last->name + "'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
  // Nothing left running or failed on the device: it synchronises cleanly and works.
  EXPECT_EQ(cuda::driver().cuCtxSynchronize(), CUDA_SUCCESS);
  fs::remove_all(dir);
  const fs::path good = workDir("good");
  writeAssemblyCheckpoint(good.string());
  const weights::Checkpoint intact = weights::Checkpoint::open(good.string());
  WeightUploadOptions again;
  again.threads = 4;
  expectBothPathsEqual(a, intact, again, "after a failed upload");
  fs::remove_all(good);
}

#ifdef XLC_FAKE_CUDA_DRIVER_TESTS
// Under the fake driver only (test/runtime/cuda/FakeCudaDriver.cpp): a kernel launch that fails
// in the middle of the upload, with copies and kernels of other pieces in flight.
TEST_F(WeightUploadGpu, FailedLaunchNamesTheTensorAndLeavesNothingInFlight) {
  ASSERT_NE(cuda::driverStatus().libraryPath.find("fake"), std::string::npos)
      << "this test needs the fake driver's fault injection";
  const art::Artifact a = assemblyArtifact();
  const fs::path dir = workDir("launch");
  writeAssemblyCheckpoint(dir.string());
  const weights::Checkpoint checkpoint = weights::Checkpoint::open(dir.string());
  WeightUploadOptions options;
  options.path = WeightUploadOptions::Path::Raw;
  options.threads = 4;
  options.stagingBytes = 12;
  options.cacheDir = cache_.string();
  std::vector<cuda::DeviceBuffer> buffers = allocate(a);
  ::setenv("XLC_FAKE_CUDA_FAIL_LAUNCH", "20", 1);
  try {
    uploadWeights(a, checkpoint, buffers, options);
    ADD_FAILURE() << "an upload with a failing launch succeeded";
  } catch (const Error &e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("uploading tensor '"), std::string::npos) << what;
    EXPECT_NE(what.find("model.safetensors"), std::string::npos) << what;
    EXPECT_NE(what.find("LAUNCH_FAILED"), std::string::npos) << what;
  }
  ::unsetenv("XLC_FAKE_CUDA_FAIL_LAUNCH");
  EXPECT_EQ(cuda::driver().cuCtxSynchronize(), CUDA_SUCCESS);
  WeightUploadOptions again;
  again.threads = 4;
  expectBothPathsEqual(a, checkpoint, again, "after a failed launch");
  fs::remove_all(dir);
}
#endif

} // namespace
} // namespace xlc::exec
