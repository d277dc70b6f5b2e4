//===- RoundTripTest.cpp - Writer and reader agree, byte for byte ---------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/artifact/Validate.h"
#include "runtime/support/MappedFile.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace xlc::artifact;
using namespace xlc::artifact::testing;
using Json = nlohmann::json;

namespace {

std::uint64_t readU64(const std::vector<std::uint8_t> &bytes, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | bytes[at + i];
  return v;
}

TEST(RoundTrip, SerializeParseSerializeGivesIdenticalBytes) {
  Artifact original = makeTestArtifact();
  std::vector<std::uint8_t> bytes = serialize(original);
  Artifact parsed = parseArtifact(bytes, kSource);
  EXPECT_EQ(parsed, original);
  EXPECT_EQ(parsed.sourceName, kSource);
  EXPECT_EQ(serialize(parsed), bytes);
}

TEST(RoundTrip, BatchVariantsSurvive) {
  Artifact original = makeTestArtifact();
  Kernel narrow = original.kernels[kRmsNormKernel];
  narrow.name = "rms_norm_narrow";
  original.kernels.push_back(narrow);
  auto &launch = std::get<LaunchStep>(original.functions[0].steps[1].body);
  launch.byBatch = {{1, static_cast<KernelIndex>(original.kernels.size() - 1)}};
  std::vector<std::uint8_t> bytes = serialize(original);
  Artifact parsed = parseArtifact(bytes, kSource);
  EXPECT_EQ(parsed, original);
  EXPECT_EQ(parsed.functions[0].steps[1].launch()->kernelFor(1), original.kernels.size() - 1);
  EXPECT_EQ(parsed.functions[0].steps[1].launch()->kernelFor(2), kRmsNormKernel);
  EXPECT_EQ(serialize(parsed), bytes);
}

TEST(RoundTrip, OutputIsDeterministic) {
  // Two independently built artifacts, attrs inserted in different orders.
  Artifact a = makeTestArtifact(), b = makeTestArtifact();
  b.functions[0].steps[3].attrs = Json::object();
  for (const char *key :
       {"chunk_size", "gate_soft_cap", "normalizer", "input_gate", "eps", "num_heads"})
    b.functions[0].steps[3].attrs[key] = a.functions[0].steps[3].attrs[key];
  EXPECT_EQ(serialize(a), serialize(b));
}

TEST(RoundTrip, ContainerLayoutFollowsTheSpec) {
  std::vector<std::uint8_t> bytes = serialize(makeTestArtifact());
  ASSERT_GT(bytes.size(), kHeaderBytes);
  EXPECT_EQ(std::memcmp(bytes.data(), "XLCARTF\0", 8), 0);
  EXPECT_EQ(bytes[8], 2);
  EXPECT_EQ(bytes[9] | bytes[10] | bytes[11], 0);
  EXPECT_EQ(bytes[12] | bytes[13] | bytes[14] | bytes[15], 0);
  std::uint64_t length = readU64(bytes, 16);
  EXPECT_EQ(length, bytes.size() - kHeaderBytes);
  EXPECT_EQ(readU64(bytes, 24),
            fnv1a64(std::span<const std::uint8_t>(bytes).subspan(kHeaderBytes)));
  Json payload = payloadOf(bytes);
  EXPECT_EQ(payload["schema_version"], 2);
  EXPECT_EQ(payload["target"]["arch"], "sm_90a");
}

TEST(RoundTrip, Fnv1aKnownValues) {
  auto hash = [](std::string_view s) {
    return fnv1a64({reinterpret_cast<const std::uint8_t *>(s.data()), s.size()});
  };
  EXPECT_EQ(hash(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(hash("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(hash("foobar"), 0x85944171f73967e8ull);
}

TEST(RoundTrip, CanonicalSpellingOfExpressionsAndOptionals) {
  Json payload = toJson(makeTestArtifact());
  const Json &x = payload["buffers"][kX];
  EXPECT_EQ(x["shape"], Json::parse(R"(["B", "S", 32])"));
  EXPECT_EQ(x["offset"], 0); // a constant is an integer
  EXPECT_EQ(payload["buffers"][kXn]["offset"], Json::parse(R"({"BS": 256})")); // non-zero keys
  EXPECT_FALSE(payload["buffers"][kTokens].contains("offset"));
  EXPECT_EQ(payload["kernels"][kEmbedKernel]["grid"][0], Json::parse(R"({"BS": 32, "div": 128})"));
  EXPECT_FALSE(payload["weights"][0].contains("scale_columns_by"));
  const Json &gemm = payload["functions"][0]["steps"][2];
  EXPECT_EQ(gemm["kind"], "gemm");
  EXPECT_TRUE(gemm["c"].is_null());
  EXPECT_EQ(gemm["m"], Json::parse(R"({"BS": 1})"));
  EXPECT_EQ(gemm["n"], 96);
  EXPECT_EQ(gemm["a_rows"], "all"); // always written
  const Json &copy = payload["functions"][1]["steps"][1];
  EXPECT_EQ(copy["attrs"], Json::object());
  EXPECT_EQ(payload["functions"][0]["steps"][1]["args"][4]["f32"].dump(), "1e-06");
}

TEST(RoundTrip, ReaderAcceptsNonCanonicalSpellingsAndRewritesThem) {
  Json payload = toJson(makeTestArtifact());
  payload["buffers"][kX]["offset"] = Json::parse(R"({"c": 0, "B": 0, "div": 1})");
  payload["functions"][0]["steps"][2]["n"] = Json::parse(R"({"c": 96})");
  payload["functions"][1]["steps"][1].erase("attrs");
  payload["functions"][0]["steps"][2].erase("a_rows"); // optional: every row
  Artifact a = parseArtifact(rewrap(payload), kSource);
  EXPECT_EQ(a, makeTestArtifact());
  EXPECT_EQ(serialize(a), serialize(makeTestArtifact()));
}

TEST(RoundTrip, F32ArgumentsSurviveExactly) {
  const float values[] = {1e-6f,
                          0.1f,
                          -0.0f,
                          1.0f / 3.0f,
                          std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::min(),
                          16777217.0f,
                          -15.0f};
  Artifact a = makeTestArtifact();
  for (float v : values) {
    std::get<LaunchStep>(a.functions[0].steps[1].body).args[4] = Arg::f32(v);
    std::vector<std::uint8_t> bytes = serialize(a);
    Artifact back = parseArtifact(bytes, kSource);
    float got = std::get<LaunchStep>(back.functions[0].steps[1].body).args[4].floatValue;
    EXPECT_EQ(std::memcmp(&got, &v, sizeof v), 0) << v;
    EXPECT_EQ(serialize(back), bytes) << v;
  }
}

TEST(RoundTrip, WriteAndLoadAFile) {
  TempDir dir;
  std::string path = dir.file("model.xlca");
  Artifact a = makeTestArtifact();
  writeArtifact(path, a);
  Artifact back = loadArtifact(path);
  EXPECT_EQ(back, a);
  EXPECT_EQ(back.sourceName, path);
  std::string onDisk = xlc::readFile(path);
  std::vector<std::uint8_t> bytes = serialize(a);
  EXPECT_EQ(std::vector<std::uint8_t>(onDisk.begin(), onDisk.end()), bytes);
  EXPECT_NE(errorOf([&] { loadArtifact(dir.file("missing.xlca")); }).find("missing.xlca"),
            std::string::npos);
}

TEST(RoundTrip, TheTestArtifactIsValidAtRealisticLimits) {
  Artifact a = makeTestArtifact();
  validate(a, 1, 1);
  validate(a, 8, 8192);
  validate(a, 256, 1 << 20);
}

TEST(RoundTrip, AnEmptyPlanIsValid) {
  Artifact a = makeTestArtifact();
  a.kernels.clear();
  a.buffers.clear();
  a.weights.clear();
  a.functions.clear();
  a.arenaBytes = Expr{};
  Artifact back = parseArtifact(serialize(a), kSource);
  EXPECT_EQ(back, a);
  validate(back, 8, 8192);
}

} // namespace

// Tests the two forms a chunkwise prefill needs: a workspace sized in bytes (ceil(S/L)+1 chunk
// states have no shape over B, S and constants) and an int64 argument given as an expression.
TEST(RoundTrip, WorkspaceBytesAndExpressionArguments) {
  Artifact a = makeTestArtifact();
  Buffer &ws = a.buffers[kWorkspace];
  ws.shape.clear();
  ws.bytes = ceilDiv(Expr{0, 2 * 4 * 127, 0, 2 * 4, 1}, 64); // B·8·(S + 127)/64 rounded up
  ws.offset = Expr{0, 0, 0, 0, 1} + *a.buffers[kWorkspace].offset;
  for (Function &f : a.functions)
    for (Step &step : f.steps)
      if (auto *launch = std::get_if<LaunchStep>(&step.body))
        for (Arg &arg : launch->args)
          if (arg.kind == ArgKind::I64 && arg.intValue == 32)
            arg = Arg::expr(Expr::batchSeq(32));
  std::vector<std::uint8_t> bytes = serialize(a);
  Artifact back = parseArtifact(bytes, "test.xlca");
  EXPECT_EQ(serialize(back), bytes);
  EXPECT_TRUE(back.buffers[kWorkspace].bytes.has_value());
  EXPECT_EQ(byteSize(back.buffers[kWorkspace]).evaluate(1, 64), (8 * (64 + 127) + 63) / 64);
  bool sawExpr = false;
  for (const Function &f : back.functions)
    for (const Step &step : f.steps)
      if (const LaunchStep *launch = step.launch())
        for (const Arg &arg : launch->args)
          sawExpr |= arg.kind == ArgKind::Expr && arg.exprValue == Expr::batchSeq(32);
  EXPECT_TRUE(sawExpr);
}

// Tests that only workspace buffers may be sized in bytes.
TEST(RoundTrip, BytesOnlyForWorkspaces) {
  Artifact a = makeTestArtifact();
  a.buffers[kX].bytes = Expr::batchSeq(64);
  std::string message = errorOf([&] { validateStructure(a); });
  EXPECT_NE(message.find("only workspace buffers may give their size in bytes"),
            std::string::npos)
      << message;
}
