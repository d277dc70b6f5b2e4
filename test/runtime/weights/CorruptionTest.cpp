//===- CorruptionTest.cpp - Every defect ends in a clear xlc::Error -------===//
//
// Each case builds a broken file (or index) by hand and checks that the error names the file,
// the tensor where there is one, and the defect.
//
//===----------------------------------------------------------------------===//

#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Safetensors.h"
#include "runtime/weights/SafetensorsWriter.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

using namespace xlc::weights;
using namespace xlc::weights::testing;

namespace {

/// A file: 8-byte length of |json|, |json|, then |dataBytes| zero bytes.
std::vector<std::uint8_t> fileWith(const std::string &json, std::size_t dataBytes,
                                   std::uint64_t declaredLength = ~std::uint64_t{0}) {
  std::uint64_t n = declaredLength == ~std::uint64_t{0} ? json.size() : declaredLength;
  std::vector<std::uint8_t> bytes(8 + json.size() + dataBytes, 0);
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<std::uint8_t>(n >> (8 * i));
  std::copy(json.begin(), json.end(), bytes.begin() + 8);
  return bytes;
}

std::string parseError(const std::vector<std::uint8_t> &bytes) {
  return errorOf([&] { parseSafetensorsHeader(bytes, "'bad.safetensors'"); });
}

#define EXPECT_ERROR_HAS(message, ...)                                                             \
  do {                                                                                             \
    const std::string m_ = (message);                                                              \
    for (const char *part : {__VA_ARGS__})                                                         \
      EXPECT_NE(m_.find(part), std::string::npos) << "missing \"" << part << "\" in: " << m_;      \
  } while (0)

const char *kFile = "'bad.safetensors'";

} // namespace

TEST(Corruption, TooShortForTheLength) {
  EXPECT_ERROR_HAS(parseError({}), kFile, "file is 0 bytes, too short");
  EXPECT_ERROR_HAS(parseError({1, 2, 3, 4, 5, 6, 7}), "file is 7 bytes, too short");
}

TEST(Corruption, HeaderLengthPastTheEnd) {
  EXPECT_ERROR_HAS(parseError(fileWith("{}", 0, 100)), kFile,
                   "header length 100 runs past the end of the file (10 bytes, so at most 2");
}

TEST(Corruption, HeaderLengthAbsurd) {
  EXPECT_ERROR_HAS(parseError(fileWith("{}", 0, 200'000'000)), kFile,
                   "header length 200000000 exceeds the limit of 100000000 bytes");
  EXPECT_ERROR_HAS(parseError(fileWith("{}", 0, ~std::uint64_t{0} - 1)), "exceeds the limit");
}

TEST(Corruption, HeaderNotJson) {
  EXPECT_ERROR_HAS(parseError(fileWith("{\"a\": ", 0)), kFile, "header: not valid JSON");
  EXPECT_ERROR_HAS(parseError(fileWith("", 0)), "header: not valid JSON");
  // nlohmann::json stops at a NUL byte; the header must not be cut short that way.
  EXPECT_ERROR_HAS(parseError(fileWith(std::string("{}\0\0", 4), 0)),
                   "header: not valid JSON: NUL byte at offset 2");
  EXPECT_ERROR_HAS(parseError(fileWith(std::string("{}\0{\"x\": 1}", 10), 0)), "NUL byte");
}

TEST(Corruption, HeaderNotAnObject) {
  EXPECT_ERROR_HAS(parseError(fileWith("[1, 2]", 0)),
                   "header: must be a JSON object, found an array");
  EXPECT_ERROR_HAS(parseError(fileWith("\"x\"", 0)), "found a string");
}

TEST(Corruption, NonUtf8Names) {
  EXPECT_ERROR_HAS(
      parseError(fileWith(
          "{\"w\xff\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]}}", 4)),
      kFile, "header: not valid UTF-8 (byte 0xff at offset 3)");
  // Overlong encoding of '/' and an encoded surrogate are not UTF-8 either.
  EXPECT_ERROR_HAS(parseError(fileWith("{\"\xc0\xaf\": 1}", 0)), "not valid UTF-8");
  EXPECT_ERROR_HAS(parseError(fileWith("{\"\xed\xa0\x80\": 1}", 0)), "not valid UTF-8");
  // A lone surrogate written as a JSON escape is rejected by the JSON parser.
  EXPECT_ERROR_HAS(parseError(fileWith("{\"\\ud800\": 1}", 0)), "not valid JSON");
}

TEST(Corruption, MissingFields) {
  EXPECT_ERROR_HAS(parseError(fileWith(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4)),
                   kFile, "tensor 'w': missing field 'dtype'");
  EXPECT_ERROR_HAS(parseError(fileWith(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4)),
                   "tensor 'w': missing field 'shape'");
  EXPECT_ERROR_HAS(parseError(fileWith(R"({"w": {"dtype": "F32", "shape": [1]}})", 4)),
                   "tensor 'w': missing field 'data_offsets'");
}

TEST(Corruption, IllTypedFields) {
  EXPECT_ERROR_HAS(parseError(fileWith(R"({"w": 5})", 0)),
                   "tensor 'w': expected an object with dtype, shape and data_offsets, found an "
                   "unsigned integer");
  EXPECT_ERROR_HAS(
      parseError(fileWith(R"({"w": {"dtype": 5, "shape": [1], "data_offsets": [0, 4]}})", 4)),
      "tensor 'w': 'dtype' must be a string, found an unsigned integer");
  EXPECT_ERROR_HAS(
      parseError(fileWith(R"({"w": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}})", 4)),
      "tensor 'w': 'shape' must be an array of non-negative integers, found a string");
  EXPECT_ERROR_HAS(
      parseError(fileWith(R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4)),
      "tensor 'w': shape[0] must be a non-negative integer, found a floating-point number (1.5)");
  EXPECT_ERROR_HAS(
      parseError(fileWith(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4)),
      "tensor 'w': 'data_offsets' must be [begin, end] with non-negative integers, found [0]");
  EXPECT_ERROR_HAS(
      parseError(fileWith(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, -4]}})", 4)),
      "'data_offsets' must be [begin, end]");
  EXPECT_ERROR_HAS(
      parseError(fileWith(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": {"a": 1}}})", 4)),
      "'data_offsets' must be [begin, end]");
}

TEST(Corruption, UnknownDtype) {
  EXPECT_ERROR_HAS(
      parseError(fileWith(R"({"w": {"dtype": "Q4_K", "shape": [1], "data_offsets": [0, 1]}})", 1)),
      kFile, "tensor 'w': unknown dtype 'Q4_K'");
  // Names are case-sensitive, as in the format.
  EXPECT_ERROR_HAS(
      parseError(fileWith(R"({"w": {"dtype": "f32", "shape": [1], "data_offsets": [0, 4]}})", 4)),
      "unknown dtype 'f32'");
}

TEST(Corruption, NegativeOrOverflowingShape) {
  EXPECT_ERROR_HAS(
      parseError(
          fileWith(R"({"w": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 4]}})", 4)),
      "tensor 'w': shape[0] must be a non-negative integer, found a negative integer (-1)");
  EXPECT_ERROR_HAS(
      parseError(fileWith(
          R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})",
          4)),
      "tensor 'w': the element count of shape [4294967296,4294967296] overflows 64 bits");
  // The element count fits, the byte count does not.
  EXPECT_ERROR_HAS(
      parseError(fileWith(
          R"({"w": {"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 8]}})", 8)),
      "needs more than 2^63 bytes");
  // Bigger than any 64-bit integer: the JSON parser makes it a float.
  EXPECT_ERROR_HAS(
      parseError(fileWith(
          R"({"w": {"dtype": "F32", "shape": [99999999999999999999999], "data_offsets": [0, 4]}})",
          4)),
      "shape[0] must be a non-negative integer, found a floating-point number");
  std::string rank100 = "[1";
  for (int i = 1; i < 100; ++i)
    rank100 += ",1";
  rank100 += "]";
  EXPECT_ERROR_HAS(parseError(fileWith(R"({"w": {"dtype": "F32", "shape": )" + rank100 +
                                           R"(, "data_offsets": [0, 4]}})",
                                       4)),
                   "tensor 'w': shape has 100 dimensions, more than the 64");
  // Overflow is caught even when another extent is zero.
  EXPECT_ERROR_HAS(
      parseError(fileWith(
          R"({"w": {"dtype": "F32", "shape": [0, 4294967296, 4294967296], "data_offsets": [0, 0]}})",
          0)),
      "overflows 64 bits");
}

TEST(Corruption, BadDataOffsets) {
  EXPECT_ERROR_HAS(
      parseError(fileWith(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 8)),
      kFile, "tensor 'w': data_offsets [8, 4] end before they begin");
  EXPECT_ERROR_HAS(
      parseError(fileWith(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8)),
      "tensor 'w': data_offsets [0, 8] span 8 bytes, but shape [3] of F32 needs 12 bytes");
  EXPECT_ERROR_HAS(
      parseError(fileWith(R"({"w": {"dtype": "BF16", "shape": [4], "data_offsets": [4, 12]}})", 8)),
      "tensor 'w': data_offsets [4, 12] run past the end of the data buffer (8 bytes)");
  EXPECT_ERROR_HAS(
      parseError(fileWith(
          R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [18446744073709551615, 18446744073709551616]}})",
          8)),
      "'data_offsets' must be [begin, end]");
}

TEST(Corruption, OverlappingTensors) {
  std::string json = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
  EXPECT_ERROR_HAS(parseError(fileWith(json, 12)), kFile,
                   "tensors 'a' (bytes [0, 8)) and 'b' (bytes [4, 12)) overlap");
  // Identical ranges overlap too.
  json = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]}})";
  EXPECT_ERROR_HAS(parseError(fileWith(json, 8)), "overlap");
  // Empty tensors may sit anywhere.
  json = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}})";
  EXPECT_EQ(parseSafetensorsHeader(fileWith(json, 8), "ok").tensors.size(), 2u);
}

TEST(Corruption, GapsAreAllowedWithAWarning) {
  std::string json = R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                         "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})";
  SafetensorsHeader header = parseSafetensorsHeader(fileWith(json, 16), "'gappy'");
  ASSERT_EQ(header.warnings.size(), 1u);
  EXPECT_ERROR_HAS(header.warnings[0],
                   "'gappy': 8 bytes of the data buffer (2 gaps) belong to no tensor");
}

TEST(Corruption, DuplicateNames) {
  std::string json = R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                         "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})";
  EXPECT_ERROR_HAS(parseError(fileWith(json, 8)), kFile, "duplicate key 'w'");
  json = R"({"w": {"dtype": "F32", "dtype": "F16", "shape": [1], "data_offsets": [0, 4]}})";
  EXPECT_ERROR_HAS(parseError(fileWith(json, 4)), "duplicate key 'dtype'");
  json = R"({"__metadata__": {"k": "a", "k": "b"}})";
  EXPECT_ERROR_HAS(parseError(fileWith(json, 0)), "duplicate key 'k'");
}

TEST(Corruption, BadMetadata) {
  EXPECT_ERROR_HAS(parseError(fileWith(R"({"__metadata__": [1]})", 0)),
                   "'__metadata__' must be an object of strings, found an array");
  EXPECT_ERROR_HAS(parseError(fileWith(R"({"__metadata__": {"step": 5}})", 0)),
                   "'__metadata__' value 'step' must be a string, found an unsigned integer");
}

TEST(Corruption, DeepNestingIsRefused) {
  std::string json =
      "{\"w\": {\"dtype\": \"F32\", \"shape\": [[[[1]]]], \"data_offsets\": [0, 4]}}";
  EXPECT_ERROR_HAS(parseError(fileWith(json, 4)), "nests deeper than");
  std::string deep = "{\"w\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_ERROR_HAS(parseError(fileWith(deep, 0)), "nests deeper than");
}

TEST(Corruption, HostileNamesAreEscapedInMessages) {
  std::string json =
      R"({"evil\nname\u001b[2J": {"dtype": "F32", "shape": [3], "data_offsets": [0, 4]}})";
  std::string message = parseError(fileWith(json, 4));
  EXPECT_ERROR_HAS(message, "tensor 'evil\\x0aname\\x1b[2J'");
  EXPECT_EQ(message.find('\x1b'), std::string::npos);
}

TEST(Corruption, UnknownFieldsAreWarnings) {
  std::string json = R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "extra": 1}})";
  SafetensorsHeader header = parseSafetensorsHeader(fileWith(json, 4), "'f'");
  ASSERT_EQ(header.warnings.size(), 1u);
  EXPECT_ERROR_HAS(header.warnings[0], "tensor 'w': ignoring unknown field 'extra'");
}

TEST(Corruption, FileErrorsNameThePath) {
  TempDir dir;
  writeBytes(dir.file("model.safetensors"),
             fileWith(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8));
  std::string message = errorOf([&] { Checkpoint::open(dir.path()); });
  const std::string where = dir.file("model.safetensors") + "': tensor 'w'";
  EXPECT_ERROR_HAS(message, where.c_str(), "needs 12 bytes");
  EXPECT_ERROR_HAS(errorOf([&] { Checkpoint::open(dir.file("absent")); }),
                   "no such file or directory");
  TempDir empty;
  writeText(empty.file("other.safetensors"), "x");
  EXPECT_ERROR_HAS(errorOf([&] { Checkpoint::open(empty.path()); }),
                   "neither model.safetensors nor model.safetensors.index.json is present",
                   "'other.safetensors'");
}

//===----------------------------------------------------------------------===//
// Sharded checkpoints: the index against its shards
//===----------------------------------------------------------------------===//

namespace {

/// Two shards: a.safetensors {x, y}, b.safetensors {z}.
struct ShardedFixture {
  TempDir dir;
  TensorSet a, b;
  ShardedFixture() {
    a.add("x", DType::F32, {1}, {0, 0, 128, 63});
    a.add("y", DType::F32, {1}, {0, 0, 0, 64});
    b.add("z", DType::BF16, {2}, {128, 63, 0, 64});
    writeSafetensors(dir.file("a.safetensors"), a.tensors);
    writeSafetensors(dir.file("b.safetensors"), b.tensors);
  }
  void index(const std::string &json) { writeText(dir.file("model.safetensors.index.json"), json); }
  std::string openError() {
    return errorOf([&] { Checkpoint::open(dir.path()); });
  }
};

} // namespace

TEST(ShardedCorruption, ValidIndexOpens) {
  ShardedFixture f;
  f.index(R"({"metadata": {"total_size": 12},
              "weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}})");
  Checkpoint checkpoint = Checkpoint::open(f.dir.path());
  EXPECT_EQ(checkpoint.tensors().size(), 3u);
  EXPECT_TRUE(checkpoint.warnings().empty());
  EXPECT_EQ(checkpoint.readF32("z"), (std::vector<float>{1.0f, 2.0f}));
}

TEST(ShardedCorruption, MissingShard) {
  ShardedFixture f;
  f.index(R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors",
                             "w": "c.safetensors"}})");
  EXPECT_ERROR_HAS(
      f.openError(),
      "model.safetensors.index.json': the index does not match its shards (1 problem)",
      "weight_map maps 1 tensor (first 'w') to shard 'c.safetensors', which does not exist");
}

TEST(ShardedCorruption, TensorMissingFromItsShard) {
  ShardedFixture f;
  f.index(R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors",
                             "q": "b.safetensors"}})");
  EXPECT_ERROR_HAS(
      f.openError(),
      "weight_map maps tensor 'q' to 'b.safetensors', but that shard has no such tensor");
}

TEST(ShardedCorruption, TensorInTheWrongShard) {
  ShardedFixture f;
  f.index(R"({"weight_map": {"x": "b.safetensors", "y": "a.safetensors", "z": "b.safetensors"}})");
  EXPECT_ERROR_HAS(
      f.openError(),
      "weight_map maps tensor 'x' to 'b.safetensors', but it is stored in 'a.safetensors'");
}

TEST(ShardedCorruption, SameTensorInTwoShards) {
  ShardedFixture f;
  TensorSet c;
  c.add("x", DType::F32, {1}, {0, 0, 0, 0});
  writeSafetensors(f.dir.file("c.safetensors"), c.tensors);
  f.index(R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors",
                             "dummy": "c.safetensors"}})");
  std::string message = f.openError();
  EXPECT_ERROR_HAS(
      message, "tensor 'x' is stored in both 'a.safetensors' and 'c.safetensors'",
      "weight_map maps tensor 'dummy' to 'c.safetensors', but that shard has no such tensor",
      "(2 problems)");
}

TEST(ShardedCorruption, UnlistedTensor) {
  ShardedFixture f;
  f.index(R"({"weight_map": {"x": "a.safetensors", "z": "b.safetensors"}})");
  EXPECT_ERROR_HAS(f.openError(),
                   "shard 'a.safetensors' holds tensor 'y', which the index does not list");
}

TEST(ShardedCorruption, ShardOutsideTheDirectory) {
  ShardedFixture f;
  f.index(R"({"weight_map": {"x": "../a.safetensors", "y": "/etc/passwd", "z": ".."}})");
  std::string message = f.openError();
  EXPECT_ERROR_HAS(message,
                   "weight_map maps 'x' to '../a.safetensors', which is not a plain file name",
                   "'/etc/passwd'", "(3 problems)");
}

TEST(ShardedCorruption, BadIndexJson) {
  ShardedFixture f;
  f.index("{\"weight_map\": {\"x\": \"a.safetensors\",}}");
  EXPECT_ERROR_HAS(f.openError(), "model.safetensors.index.json': not valid JSON");
  f.index(R"({"metadata": {}})");
  EXPECT_ERROR_HAS(f.openError(), "index has no 'weight_map'");
  f.index(R"({"weight_map": ["a.safetensors"]})");
  EXPECT_ERROR_HAS(
      f.openError(),
      "'weight_map' must be an object mapping tensor names to shard files, found an array");
  f.index(R"({"weight_map": {"x": 1, "y": "a.safetensors", "z": "b.safetensors"}})");
  EXPECT_ERROR_HAS(f.openError(),
                   "weight_map entry 'x' must be a shard file name, found an unsigned integer");
  f.index(R"({"weight_map": {"x": "a.safetensors", "x": "b.safetensors"}})");
  EXPECT_ERROR_HAS(f.openError(), "duplicate key 'x'");
}

TEST(ShardedCorruption, CorruptShardNamesTheShard) {
  ShardedFixture f;
  writeBytes(f.dir.file("b.safetensors"), {1, 2, 3});
  f.index(R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}})");
  EXPECT_ERROR_HAS(f.openError(), "b.safetensors': file is 3 bytes, too short");
}

TEST(ShardedCorruption, TotalSizeMismatchIsAWarning) {
  ShardedFixture f;
  f.index(R"({"metadata": {"total_size": 99},
              "weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}})");
  Checkpoint checkpoint = Checkpoint::open(f.dir.path());
  ASSERT_EQ(checkpoint.warnings().size(), 1u);
  EXPECT_ERROR_HAS(checkpoint.warnings()[0],
                   "metadata.total_size is 99 but the tensors hold 12 bytes");
}

TEST(ShardedCorruption, BothLayoutsPresentPrefersTheSingleFile) {
  ShardedFixture f;
  f.index(R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}})");
  writeSafetensors(f.dir.file("model.safetensors"), f.b.tensors);
  Checkpoint checkpoint = Checkpoint::open(f.dir.path());
  EXPECT_EQ(checkpoint.layout(), Checkpoint::Layout::SingleFile);
  ASSERT_EQ(checkpoint.warnings().size(), 1u);
  EXPECT_ERROR_HAS(checkpoint.warnings()[0], "using model.safetensors as transformers does");
}
