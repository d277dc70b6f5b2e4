//===- SafetensorsTest.cpp - Writing and reading checkpoints --------------===//

#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Progress.h"
#include "runtime/weights/SafetensorsWriter.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

using namespace xlc::weights;
using namespace xlc::weights::testing;

namespace {

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

/// Tensors of many dtypes and odd shapes: scalar, empty, 1-D, 3-D.
TensorSet mixedTensors() {
  std::mt19937 rng(42);
  TensorSet set;
  set.add("z.f32", DType::F32, {3, 5}, randomValues(DType::F32, 15, rng));
  set.add("a.bf16", DType::BF16, {7}, randomValues(DType::BF16, 7, rng));
  set.add("m.f16", DType::F16, {2, 3, 2}, randomValues(DType::F16, 12, rng));
  set.add("scalar", DType::F32, {}, randomValues(DType::F32, 1, rng));
  set.add("empty", DType::BF16, {0, 4}, {});
  std::vector<std::uint8_t> i64(8 * 3), u8 = {1, 2, 3}, boolean = {0, 1}, f64(8 * 2);
  for (std::size_t i = 0; i < i64.size(); ++i)
    i64[i] = static_cast<std::uint8_t>(rng());
  for (std::size_t i = 0; i < f64.size(); ++i)
    f64[i] = static_cast<std::uint8_t>(rng());
  set.add("ids", DType::I64, {3}, i64);
  set.add("bytes", DType::U8, {3}, u8);
  set.add("mask", DType::BOOL, {2}, boolean);
  set.add("double", DType::F64, {2}, f64);
  set.add("unicode.ñame.📦", DType::F32, {1}, randomValues(DType::F32, 1, rng));
  return set;
}

void expectSameTensors(const Checkpoint &checkpoint, const TensorSet &set) {
  ASSERT_EQ(checkpoint.tensors().size(), set.tensors.size());
  for (const TensorToWrite &t : set.tensors) {
    const TensorInfo *info = checkpoint.find(t.name);
    ASSERT_NE(info, nullptr) << t.name;
    EXPECT_EQ(info->dtype, t.dtype) << t.name;
    EXPECT_EQ(info->shape, t.shape) << t.name;
    std::span<const std::uint8_t> data = checkpoint.rawData(*info);
    ASSERT_EQ(data.size(), t.data.size()) << t.name;
    EXPECT_TRUE(std::equal(data.begin(), data.end(), t.data.begin())) << t.name;
  }
  EXPECT_TRUE(
      std::is_sorted(checkpoint.tensors().begin(), checkpoint.tensors().end(),
                     [](const TensorInfo &a, const TensorInfo &b) { return a.name < b.name; }));
}

} // namespace

TEST(Safetensors, RoundTripIsBitExactForEveryDtype) {
  TempDir dir;
  TensorSet set = mixedTensors();
  SafetensorsMetadata metadata = {{"format", "pt"}, {"note", "xlc test ✓"}};
  std::string path = dir.file("model.safetensors");
  writeSafetensors(path, set.tensors, metadata);

  Checkpoint checkpoint = Checkpoint::open(path);
  EXPECT_EQ(checkpoint.layout(), Checkpoint::Layout::SingleFile);
  expectSameTensors(checkpoint, set);
  EXPECT_EQ(checkpoint.files().at(0).metadata(), metadata);
  EXPECT_TRUE(checkpoint.warnings().empty());

  // The layout the reference writer produces: data 8-aligned, each tensor aligned to its element
  // size, the header starting with '{' and padded with spaces.
  const SafetensorsHeader &header = checkpoint.files()[0].header();
  EXPECT_EQ(header.dataOffset % 8, 0u);
  for (const TensorInfo &t : header.tensors)
    EXPECT_EQ(t.begin % dtypeSize(t.dtype), 0u) << t.name;
  std::vector<std::uint8_t> bytes = serializeSafetensors(set.tensors, metadata);
  EXPECT_EQ(bytes[8], '{');
  EXPECT_EQ(bytes.size(), std::filesystem::file_size(path));
  // The in-memory serialisation is the same file.
  std::vector<std::uint8_t> onDisk(bytes.size());
  std::ifstream(path, std::ios::binary)
      .read(reinterpret_cast<char *>(onDisk.data()), static_cast<std::streamsize>(onDisk.size()));
  EXPECT_EQ(bytes, onDisk);
}

TEST(Safetensors, DirectoryFindsTheSingleFile) {
  TempDir dir;
  TensorSet set = mixedTensors();
  writeSafetensors(dir.file("model.safetensors"), set.tensors);
  Checkpoint checkpoint = Checkpoint::open(dir.path());
  EXPECT_EQ(checkpoint.layout(), Checkpoint::Layout::SingleFile);
  EXPECT_EQ(checkpoint.directory(), dir.path());
  expectSameTensors(checkpoint, set);
}

TEST(Safetensors, ShardedDirectoryRoundTrip) {
  TempDir dir;
  TensorSet set = xlstmTensors(tinyConfig(), DType::BF16, 3);
  // 20 kB shards split the tiny model (about 130 kB in bf16) into several files.
  std::vector<std::string> shards =
      writeShardedSafetensors(dir.path(), set.tensors, 20'000, {{"format", "pt"}});
  ASSERT_GT(shards.size(), 3u);
  EXPECT_EQ(shards.front(), fmt::format("model-00001-of-{:05d}.safetensors", shards.size()));
  EXPECT_TRUE(std::filesystem::exists(dir.file("model.safetensors.index.json")));

  Checkpoint checkpoint = Checkpoint::open(dir.path());
  EXPECT_EQ(checkpoint.layout(), Checkpoint::Layout::Sharded);
  EXPECT_EQ(checkpoint.files().size(), shards.size());
  expectSameTensors(checkpoint, set);
  EXPECT_TRUE(checkpoint.warnings().empty()) << checkpoint.warnings().front();
  std::uint64_t bytes = 0;
  for (const TensorToWrite &t : set.tensors)
    bytes += t.data.size();
  EXPECT_EQ(checkpoint.totalBytes(), bytes);
  EXPECT_EQ(checkpoint.totalParameters(), bytes / 2);

  // Opening the index file directly is the same checkpoint.
  Checkpoint viaIndex = Checkpoint::open(dir.file("model.safetensors.index.json"));
  EXPECT_EQ(viaIndex.tensors().size(), checkpoint.tensors().size());
  // Each tensor is read from the shard the index names.
  const TensorInfo &last = checkpoint.get("lm_head.weight");
  EXPECT_EQ(std::filesystem::path(checkpoint.fileOf(last)).filename(), shards.back());
}

TEST(Safetensors, ReadsConvertToF32AndBF16) {
  TempDir dir;
  std::vector<float> values = {1.0f,     -2.5f, 3.140625f, 1.00390625f /* 1 + 2^-8: ties to 1 */,
                               65504.0f, -0.0f};
  std::vector<std::uint8_t> f32(values.size() * 4), bf16(values.size() * 2), f16(values.size() * 2);
  std::memcpy(f32.data(), values.data(), f32.size());
  const std::uint16_t bf16Bits[] = {0x3f80, 0xc020, 0x4049, 0x3f80, 0x4780, 0x8000};
  const std::uint16_t f16Bits[] = {0x3c00, 0xc100, 0x4248, 0x3c04, 0x7bff, 0x8000};
  std::memcpy(bf16.data(), bf16Bits, bf16.size());
  std::memcpy(f16.data(), f16Bits, f16.size());
  TensorSet set;
  set.add("f32", DType::F32, {2, 3}, f32);
  set.add("bf16", DType::BF16, {6}, bf16);
  set.add("f16", DType::F16, {6}, f16);
  set.add("ids", DType::I32, {1}, {1, 0, 0, 0});
  writeSafetensors(dir.file("w.safetensors"), set.tensors);
  Checkpoint checkpoint = Checkpoint::open(dir.file("w.safetensors"));

  EXPECT_EQ(checkpoint.readF32("f32"), values);
  std::vector<float> fromF16 = checkpoint.readF32("f16");
  EXPECT_EQ(fromF16, (std::vector<float>{1.0f, -2.5f, 3.140625f, 1.00390625f, 65504.0f, -0.0f}));
  std::vector<float> fromBF16 = checkpoint.readF32("bf16");
  EXPECT_EQ(fromBF16, (std::vector<float>{1.0f, -2.5f, 3.140625f, 1.0f, 65536.0f, -0.0f}));

  std::vector<std::uint16_t> out(6);
  checkpoint.readBF16("f32", out);
  EXPECT_EQ(out, (std::vector<std::uint16_t>(std::begin(bf16Bits), std::end(bf16Bits))));
  checkpoint.readBF16("f16", out);
  EXPECT_EQ(out, (std::vector<std::uint16_t>(std::begin(bf16Bits), std::end(bf16Bits))));

  std::string message = errorOf([&] { checkpoint.readF32("ids"); });
  EXPECT_TRUE(contains(message, "w.safetensors': tensor 'ids': dtype I32 cannot be read as F32"))
      << message;
  message = errorOf([&] { checkpoint.readF32("nope"); });
  EXPECT_TRUE(contains(message, "checkpoint has no tensor 'nope'")) << message;
  std::vector<float> wrongSize(5);
  message = errorOf([&] { checkpoint.readF32("f32", wrongSize); });
  EXPECT_TRUE(contains(message, "tensor 'f32': destination holds 5 F32 elements")) << message;
}

TEST(Safetensors, ForEachTensorVisitsStorageOrder) {
  TempDir dir;
  TensorSet set = xlstmTensors(tinyConfig(), DType::F32, 5);
  writeShardedSafetensors(dir.path(), set.tensors, 50'000);
  Checkpoint checkpoint = Checkpoint::open(dir.path());
  std::size_t visited = 0, lastFile = 0;
  std::uint64_t lastEnd = 0, bytes = 0;
  checkpoint.forEachTensor([&](const TensorInfo &t, std::span<const std::uint8_t> data) {
    EXPECT_EQ(data.size(), t.byteSize);
    if (t.file == lastFile)
      EXPECT_GE(t.begin, lastEnd) << t.name;
    else
      EXPECT_GT(t.file, lastFile);
    lastFile = t.file;
    lastEnd = t.end;
    bytes += data.size();
    ++visited;
  });
  EXPECT_EQ(visited, set.tensors.size());
  EXPECT_EQ(bytes, checkpoint.totalBytes());
}

TEST(Safetensors, WriterIsAtomicAndOverwrites) {
  TempDir dir;
  TensorSet first = mixedTensors();
  std::string path = dir.file("ckpt.safetensors");
  writeSafetensors(path, first.tensors);
  TensorSet second;
  second.add("only", DType::F32, {1}, {0, 0, 128, 63});
  writeSafetensors(path, second.tensors);
  EXPECT_EQ(Checkpoint::open(path).tensors().size(), 1u);
  // A failed write leaves the old file and no temporary behind.
  TensorSet bad;
  bad.add("x", DType::F32, {2}, {0, 0, 0, 0}); // 4 bytes for 2 floats
  std::string message = errorOf([&] { writeSafetensors(path, bad.tensors); });
  EXPECT_TRUE(contains(message, "tensor 'x' (F32 [2]) needs 8 bytes, but 4 were given")) << message;
  EXPECT_EQ(Checkpoint::open(path).tensors().size(), 1u);
  std::size_t files = 0;
  for (const auto &entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1u);
}

TEST(Safetensors, WriterRejectsBadNames) {
  TensorSet set;
  set.add("a", DType::F32, {1}, {0, 0, 0, 0});
  set.add("a", DType::F32, {1}, {0, 0, 0, 0});
  EXPECT_TRUE(
      contains(errorOf([&] { serializeSafetensors(set.tensors); }), "tensor 'a' is given twice"));
  TensorSet reserved;
  reserved.add("__metadata__", DType::F32, {1}, {0, 0, 0, 0});
  EXPECT_TRUE(contains(errorOf([&] { serializeSafetensors(reserved.tensors); }), "reserved"));
  TensorSet empty;
  empty.add("", DType::F32, {1}, {0, 0, 0, 0});
  EXPECT_TRUE(contains(errorOf([&] { serializeSafetensors(empty.tensors); }), "empty name"));
  TensorSet invalid;
  invalid.add("bad\xff", DType::F32, {1}, {0, 0, 0, 0});
  EXPECT_TRUE(contains(errorOf([&] { serializeSafetensors(invalid.tensors); }), "not valid UTF-8"));
  TensorSet negative;
  negative.add("n", DType::F32, {-1}, {});
  EXPECT_TRUE(
      contains(errorOf([&] { serializeSafetensors(negative.tensors); }), "negative extent"));
}

TEST(Safetensors, EmptyCheckpointIsValid) {
  TempDir dir;
  writeSafetensors(dir.file("model.safetensors"), {});
  Checkpoint checkpoint = Checkpoint::open(dir.path());
  EXPECT_TRUE(checkpoint.tensors().empty());
  EXPECT_EQ(checkpoint.totalBytes(), 0u);
}

TEST(Progress, QuietWhenDisabledAndCountsWhenEnabled) {
  ::testing::internal::CaptureStderr();
  {
    Progress quiet("loading", 100, 2, /*enabled=*/false);
    quiet.advance(50);
    quiet.advance(50);
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ::testing::internal::CaptureStderr();
  {
    Progress shown("loading", 3000, 2, /*enabled=*/true);
    shown.advance(1000);
    shown.advance(2000);
  }
  std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(contains(out, "loading: 3.00 kB / 3.00 kB (100%), 2 / 2 tensors")) << out;
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(formatBytes(27'461'699'584), "27.5 GB");
  EXPECT_EQ(formatBytes(999), "999 B");
}
