//===- CorruptionTest.cpp - Damaged containers and ill-formed payloads ----===//
//
// Each case damages one thing and checks the whole message, or the part that names the file and
// the item, so a vague or misattributed error fails the test.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

using namespace xlc::artifact;
using namespace xlc::artifact::testing;
using Json = nlohmann::json;

namespace {

std::string parseError(const std::vector<std::uint8_t> &bytes) {
  return errorOf([&] { parseArtifact(bytes, kSource); });
}

std::string parseErrorOfPayload(std::string_view payload) {
  return parseError(wrapContainer(payload));
}

TEST(Container, EveryPrefixIsACleanError) {
  // A small artifact, so every prefix length can be tried.
  Artifact a = makeTestArtifact();
  a.kernels.resize(1);
  a.functions.clear();
  std::vector<std::uint8_t> bytes = serialize(a);
  ASSERT_LT(bytes.size(), 8000u);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::vector<std::uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<long>(n));
    std::string message = parseError(prefix);
    ASSERT_TRUE(contains(message, "test.xlca: truncated: ")) << "prefix of " << n << " bytes";
  }
  EXPECT_EQ(parseError({}), "test.xlca: truncated: 0 bytes, but the artifact header alone is 32 "
                            "bytes");
  EXPECT_EQ(parseError(std::vector<std::uint8_t>(bytes.begin(), bytes.end() - 1)),
            fmt::format("test.xlca: truncated: the header announces a {}-byte payload, but only "
                        "{} bytes follow it",
                        bytes.size() - 32, bytes.size() - 33));
}

TEST(Container, WrongMagic) {
  std::vector<std::uint8_t> bytes = serialize(makeTestArtifact());
  bytes[3] = 'X';
  EXPECT_EQ(parseError(bytes),
            "test.xlca: not an xlc artifact (magic \"XLCXRTF\\x00\", expected \"XLCARTF\\x00\")");
  // A safetensors file (8-byte length first) is not mistaken for a truncated artifact.
  std::vector<std::uint8_t> other = {0x10, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
  EXPECT_TRUE(contains(parseError(other), "test.xlca: not an xlc artifact"));
}

TEST(Container, WrongVersion) {
  std::vector<std::uint8_t> bytes = serialize(makeTestArtifact());
  bytes[8] = 3;
  EXPECT_EQ(parseError(bytes),
            "test.xlca: unsupported artifact schema version 3 (this runtime reads version 2)");
  // A version-1 artifact (before typed duties, named function arguments and kernel
  // configurations) is refused with what to do.
  bytes[8] = 1;
  EXPECT_EQ(parseError(bytes),
            "test.xlca: artifact schema version 1 is older than this runtime's 2: recompile the "
            "model with this release's xlc-compile");
}

TEST(Container, NonZeroFlags) {
  std::vector<std::uint8_t> bytes = serialize(makeTestArtifact());
  bytes[13] = 1;
  EXPECT_EQ(parseError(bytes),
            "test.xlca: unknown header flags 0x00000100 (version 2 defines none)");
}

TEST(Container, TrailingBytes) {
  std::vector<std::uint8_t> bytes = serialize(makeTestArtifact());
  std::size_t payload = bytes.size() - 32;
  bytes.push_back('\n');
  bytes.push_back(0);
  EXPECT_EQ(parseError(bytes),
            fmt::format("test.xlca: 2 trailing bytes after the {}-byte payload", payload));
}

TEST(Container, HugeLengthIsTruncationNotOverflow) {
  std::vector<std::uint8_t> bytes = serialize(makeTestArtifact());
  for (int i = 16; i < 24; ++i)
    bytes[i] = 0xff;
  EXPECT_TRUE(contains(parseError(bytes),
                       "truncated: the header announces a 18446744073709551615-byte payload"));
}

TEST(Container, ChecksumMismatch) {
  std::vector<std::uint8_t> bytes = serialize(makeTestArtifact());
  bytes[bytes.size() / 2] ^= 0x20;
  EXPECT_TRUE(contains(parseError(bytes), "test.xlca: payload checksum mismatch (header says 0x"));
  EXPECT_TRUE(contains(parseError(bytes), "the file is damaged"));
}

TEST(Payload, NotJson) {
  // The strict JSON reader is runtime/support/Json.h, shared with the weights and config.json.
  EXPECT_TRUE(
      contains(parseErrorOfPayload("{\"schema_version\": 1,"), "test.xlca: not valid JSON: "));
  EXPECT_TRUE(contains(parseErrorOfPayload(""), "test.xlca: not valid JSON: "));
  EXPECT_TRUE(contains(parseErrorOfPayload("{} {}"), "test.xlca: not valid JSON: "));
  EXPECT_EQ(parseErrorOfPayload(std::string_view("{}\0xx", 5)),
            "test.xlca: not valid JSON: NUL byte at offset 2");
  // Ill-formed UTF-8 inside a string; the raw byte is not repeated in the message.
  std::string message = parseErrorOfPayload("{\"name\": \"\xc3\x28\"}");
  EXPECT_EQ(message, "test.xlca: not valid UTF-8 (byte 0xc3 at offset 10)");
  EXPECT_EQ(message.find('\xc3'), std::string::npos);
}

TEST(Payload, NotAnObject) {
  EXPECT_EQ(parseErrorOfPayload("[1, 2]"),
            "test.xlca: the payload must be a JSON object, got an array");
  EXPECT_EQ(parseErrorOfPayload("\"XLCARTF\""),
            "test.xlca: the payload must be a JSON object, got the string 'XLCARTF'");
}

TEST(Payload, DuplicateKeys) {
  std::string text = toJson(makeTestArtifact()).dump();
  text.insert(1, "\"arena\": {\"bytes\": 0}, ");
  EXPECT_EQ(parseErrorOfPayload(text), "test.xlca: duplicate key 'arena' in one JSON object");
}

TEST(Payload, DeepNesting) {
  std::string text = "{\"x\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(parseErrorOfPayload(text),
            "test.xlca: JSON nests deeper than the 33 levels this format uses");
}

TEST(Payload, SchemaVersionMismatch) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["schema_version"] = 3; }),
            "test.xlca: payload schema_version is 3, but this runtime reads version 2");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["schema_version"] = 1; }),
            "test.xlca: payload schema_version 1 is older than this runtime's 2: recompile the "
            "model with this release's xlc-compile");
}

TEST(Payload, MissingField) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { p.erase("arena"); }), "test.xlca: missing field 'arena'");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][3].erase("dtype"); }),
            "test.xlca: buffer 3 'blocks.0.w_qkvo': missing field 'dtype'");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["functions"][0]["steps"][2].erase("k"); }),
            "test.xlca: step 2 of function 'prefill': missing field 'k'");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["model"].erase("chunk_size"); }),
            "test.xlca: model: missing field 'chunk_size'");
}

TEST(Payload, UnknownField) {
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["weights"][1]["scale_column_by"] = p["weights"][1]["scale_columns_by"];
              p["weights"][1].erase("scale_columns_by");
            }),
            "test.xlca: weight binding 1: unknown field 'scale_column_by'");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][6]["offset"] = "0"; }),
            "test.xlca: buffer 6 'x': offset must be a non-negative integer or an expression "
            "object with keys c, B, S, BS, div; got the string '0'");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][7]["offset"]["bS"] = 1; }),
            "test.xlca: buffer 7 'blocks.0.xn': offset: unknown field 'bS'");
}

TEST(Payload, IllTypedFields) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["kernels"][1]["shared_bytes"] = "0"; }),
            "test.xlca: kernel 1 'rms_norm_0': shared_bytes must be a non-negative integer, got "
            "the string '0'");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["kernels"][1]["block"][2] = 1.0; }),
            "test.xlca: kernel 1 'rms_norm_0': block[2] must be a non-negative integer, got the "
            "number 1");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["kernels"][1]["block"] = {32, 1};
            }),
            "test.xlca: kernel 1 'rms_norm_0': block must have 3 entries (x, y, z), got 2");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][0]["id"] = 1ull << 32; }),
            "test.xlca: buffer 0 'tokens': id must be at most 4294967295, got 4294967296");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["kernels"] = Json::object(); }),
            "test.xlca: kernels must be an array, got an object");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["functions"][0]["steps"][1]["attrs"] = {1, 2};
            }),
            "test.xlca: step 1 of function 'prefill': attrs must be an object, got an array");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["functions"][0]["steps"][0]["args"][3] = {{"i64", 1}, {"f32", 2}};
            }),
            "test.xlca: step 0 of function 'prefill': args[3] must be an object with exactly one "
            "of the keys buffer, symbol, i64, expr, f32, scalar; got 2 keys");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["functions"][0]["steps"][1]["args"][4] = {{"f32", 1e300}};
            }),
            "test.xlca: step 1 of function 'prefill': args[4].f32 = 1e+300 is outside the range "
            "of f32");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["functions"][0]["steps"][1]["args"][3] = {{"i64", 1ull << 63}};
            }),
            "test.xlca: step 1 of function 'prefill': args[3].i64 does not fit in i64: "
            "9223372036854775808");
}

TEST(Payload, UnknownEnumStrings) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][6]["dtype"] = "bf17"; }),
            "test.xlca: buffer 6 'x': dtype: unknown value 'bf17' (expected one of f32, bf16, "
            "f16, i64, i32, u8)");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][6]["class"] = "gradients"; }),
            "test.xlca: buffer 6 'x': class: unknown value 'gradients' (expected one of weight, "
            "input, output, activation, workspace, state, parameter, gradient, optimizer)");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["kernels"][0]["params"][3]["kind"] = "u64"; }),
            "test.xlca: kernel 0 'embedding_0': params[3].kind: unknown value 'u64' (expected "
            "one of buffer, i64, f32)");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["functions"][1]["steps"][1]["kind"] = "memcpy"; }),
            "test.xlca: step 1 of function 'decode_step': kind: unknown value 'memcpy' (expected "
            "one of launch, gemm, copy)");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["functions"][0]["steps"][2]["epilogue"] = "gelu"; }),
            "test.xlca: step 2 of function 'prefill': epilogue: unknown value 'gelu' (expected "
            "one of none, residual_add, bias)");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["functions"][0]["steps"][0]["args"][3] = {{"symbol", "T"}};
            }),
            "test.xlca: step 0 of function 'prefill': args[3].symbol: unknown value 'T' "
            "(expected one of B, S, BS)");
}

TEST(Payload, NegativeAndZeroDimensions) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][6]["shape"][2] = -32; }),
            "test.xlca: buffer 6 'x': shape[2] must be a positive integer, \"B\" or \"S\"; got "
            "the integer -32");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][6]["shape"][2] = 0; }),
            "test.xlca: buffer 6 'x': shape[2] is 0; dimensions must be positive");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["weights"][0]["source_shapes"][0][1] = -1; }),
            "test.xlca: weight binding 0: source_shapes[0][1] must be a non-negative integer, "
            "got the integer -1");
}

TEST(Payload, ZeroDivisor) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["kernels"][0]["grid"][0]["div"] = 0; }),
            "test.xlca: kernel 0 'embedding_0': grid[0].div must be at least 1, got 0");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["arena"]["bytes"] = {{"BS", 1024}, {"div", 0}};
            }),
            "test.xlca: arena.bytes.div must be at least 1, got 0");
}

TEST(Payload, HostileNamesAreEscapedInMessages) {
  std::string message = parseErrorAfter([](Json &p) {
    p["buffers"][6]["name"] = "x\n\x1b[31m'evil";
    p["buffers"][6]["dtype"] = "bf17";
  });
  EXPECT_EQ(message, "test.xlca: buffer 6 'x\\x0a\\x1b[31m\\'evil': dtype: unknown value 'bf17' "
                     "(expected one of f32, bf16, f16, i64, i32, u8)");
}

} // namespace
