//===- ValidateTest.cpp - Well-formed documents that say something wrong --===//
//
// Each case edits the test artifact's payload JSON (re-wrapped with a correct checksum, so the
// damage reaches the validator) or builds a plan in memory, and checks the whole message.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Validate.h"
#include "runtime/artifact/Serialize.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace xlc::artifact;
using namespace xlc::artifact::testing;
using Json = nlohmann::json;

namespace {

/// The message validate() gives at (maxBatch, maxSeq) for the payload after |edit|; parsing
/// itself must succeed.
template <typename Edit>
std::string limitErrorAfter(Edit &&edit, std::uint64_t maxBatch = 8, std::uint64_t maxSeq = 8192) {
  Json payload = toJson(makeTestArtifact());
  edit(payload);
  Artifact a = parseArtifact(rewrap(payload), kSource);
  return errorOf([&] { validate(a, maxBatch, maxSeq); });
}

Json &step(Json &p, int function, int index) { return p["functions"][function]["steps"][index]; }

//===----------------------------------------------------------------------===//
// References, arguments, ids
//===----------------------------------------------------------------------===//

TEST(Validate, StepNamesAMissingKernel) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 0, 1)["kernel"] = 40; }),
            "test.xlca: step 1 of function 'prefill' names kernel 40, but the artifact has 4 "
            "kernels");
}

TEST(Validate, StepNamesAMissingBuffer) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 0, 2)["a"] = 99; }),
            "test.xlca: step 2 of function 'prefill': operand a names buffer 99, but the "
            "artifact has 17 buffers");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              step(p, 1, 0)["args"][2] = {{"buffer", 17}};
            }),
            "test.xlca: step 0 of function 'decode_step': argument 2 names buffer 17, but the "
            "artifact has 17 buffers");
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 1, 1)["dst"] = 1000; }),
            "test.xlca: step 1 of function 'decode_step': destination names buffer 1000, but the "
            "artifact has 17 buffers");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["functions"][0]["states"][1] = 50; }),
            "test.xlca: function 'prefill': states names buffer 50, but the artifact has 17 "
            "buffers");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["weights"][2]["buffer"] = 17; }),
            "test.xlca: weight binding 2 names buffer 17, but the artifact has 17 buffers");
}

TEST(Validate, ArgumentCountMismatch) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 0, 1)["args"].erase(4); }),
            "test.xlca: step 1 of function 'prefill' passes 4 arguments to kernel 1 'rms_norm_0', "
            "which takes 5 (x: buffer, y: buffer, rows: i64, cols: i64, eps: f32)");
}

TEST(Validate, ArgumentKindMismatch) {
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              step(p, 0, 1)["args"][4] = {{"i64", 1}};
            }),
            "test.xlca: step 1 of function 'prefill': argument 4 is an i64, but parameter 'eps' "
            "of kernel 1 'rms_norm_0' is f32");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              step(p, 0, 1)["args"][0] = {{"symbol", "BS"}};
            }),
            "test.xlca: step 1 of function 'prefill': argument 0 is a symbol, but parameter 'x' "
            "of kernel 1 'rms_norm_0' is buffer");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              step(p, 0, 1)["args"][2] = {{"f32", 3.5}};
            }),
            "test.xlca: step 1 of function 'prefill': argument 2 is an f32, but parameter 'rows' "
            "of kernel 1 'rms_norm_0' is i64");
}

// A batch variant replaces the step's kernel for small calls with the step's own arguments: a
// kernel of the same family with the same parameters, under ascending batch bounds.
TEST(Validate, BatchVariantsShareFamilyAndParameters) {
  // Kernel 4: rms_norm_0 under another name (another configuration, in a real artifact).
  auto withNarrowKernel = [](Json &p) {
    Json narrow = p["kernels"][1];
    narrow["name"] = "rms_norm_narrow";
    p["kernels"].push_back(narrow);
  };
  EXPECT_EQ(parseErrorAfter([&](Json &p) {
              withNarrowKernel(p);
              step(p, 0, 1)["by_batch"] = Json::array({{{"max_batch", 1}, {"kernel", 4}},
                                                       {{"max_batch", 4}, {"kernel", 1}}});
            }),
            "<no error>");
  EXPECT_EQ(parseErrorAfter([&](Json &p) {
              withNarrowKernel(p);
              step(p, 0, 1)["by_batch"] = Json::array({{{"max_batch", 1}, {"kernel", 40}}});
            }),
            "test.xlca: step 1 of function 'prefill': by_batch[0] names kernel 40, but the "
            "artifact has 5 kernels");
  EXPECT_EQ(parseErrorAfter([&](Json &p) {
              step(p, 0, 1)["by_batch"] = Json::array({{{"max_batch", 2}, {"kernel", 1}},
                                                       {{"max_batch", 2}, {"kernel", 1}}});
            }),
            "test.xlca: step 1 of function 'prefill': by_batch[1]: max_batch 2 must be at least 1 "
            "and above the previous variant's (2)");
  EXPECT_EQ(parseErrorAfter([&](Json &p) {
              step(p, 0, 1)["by_batch"] = Json::array({{{"max_batch", 0}, {"kernel", 1}}});
            }),
            "test.xlca: step 1 of function 'prefill': by_batch[0]: max_batch 0 must be at least 1 "
            "and above the previous variant's (0)");
  EXPECT_EQ(parseErrorAfter([&](Json &p) {
              step(p, 0, 1)["by_batch"] = Json::array({{{"max_batch", 1}, {"kernel", 0}}});
            }),
            "test.xlca: step 1 of function 'prefill': by_batch[0]: kernel 0 'embedding_0' is of "
            "family 'embedding', but the step's kernel 1 'rms_norm_0' is of family 'rms_norm'");
  EXPECT_EQ(parseErrorAfter([&](Json &p) {
              withNarrowKernel(p);
              p["kernels"][4]["params"].erase(4);
              step(p, 0, 1)["by_batch"] = Json::array({{{"max_batch", 1}, {"kernel", 4}}});
            }),
            "test.xlca: step 1 of function 'prefill': by_batch[0]: kernel 4 'rms_norm_narrow' "
            "does not take the parameters of kernel 1 'rms_norm_0' (a variant runs with the "
            "step's arguments)");
  EXPECT_TRUE(contains(parseErrorAfter([&](Json &p) {
                         step(p, 0, 1)["by_batch"] =
                             Json::array({{{"max_batch", 1}, {"kernel", 1}, {"tile", 3}}});
                       }),
                       "tile"));
}

TEST(Validate, BufferIdsAreDenseAndInOrder) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][7]["id"] = 6; }),
            "test.xlca: buffers[7] 'blocks.0.xn' repeats id 6 of buffers[6] 'x'");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][7]["id"] = 40; }),
            "test.xlca: buffers[7] 'blocks.0.xn' has id 40; ids must be 0, 1, 2, ... in order");
}

TEST(Validate, NamesAreUnique) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][7]["name"] = "x"; }),
            "test.xlca: buffer 7 'x': another buffer has the same name");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["kernels"][3]["name"] = "rms_norm_0"; }),
            "test.xlca: kernel 3 'rms_norm_0': another kernel has the same name");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["functions"][1]["name"] = "prefill"; }),
            "test.xlca: function 'prefill': another function has the same name");
}

TEST(Validate, FunctionArgumentsBelongToTheFunction) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["functions"][1]["inputs"] = Json::array(); }),
            "test.xlca: step 0 of function 'decode_step': argument 0 is input buffer 0 'tokens', "
            "which is not among the function's inputs");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["functions"][0]["states"].erase(2); }),
            "test.xlca: step 3 of function 'prefill': argument 5 is state buffer 15 "
            "'blocks.0.state.m', which is not among the function's states");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["functions"][0]["outputs"] = {{{"name", "logits"}, {"buffer", 6}}};
            }),
            "test.xlca: function 'prefill': outputs lists buffer 6 'x', which is of class "
            "activation, not output");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["functions"][0]["inputs"] = {{{"name", "a"}, {"buffer", 0}},
                                             {{"name", "b"}, {"buffer", 0}}};
            }),
            "test.xlca: function 'prefill': inputs lists buffer 0 'tokens' twice");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["functions"][0]["outputs"][0]["name"] = "tokens";
            }),
            "test.xlca: function 'prefill': argument name 'tokens' appears twice");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["functions"][0]["inputs"][0]["name"] = "1x"; }),
            "test.xlca: function 'prefill': inputs name '1x' is not an identifier");
}

TEST(Validate, StepsDoNotWriteWeightsOrInputs) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 1, 1)["dst"] = kEmbedding; }),
            "test.xlca: step 1 of function 'decode_step': destination buffer 2 'embedding' is a "
            "weight buffer, which steps must not write");
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 0, 2)["d"] = kXn; }),
            "test.xlca: step 2 of function 'prefill': result d (buffer 7) is also an input of "
            "the product");
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 1, 1)["dst"] = kX; }),
            "test.xlca: step 1 of function 'decode_step': copies buffer 6 onto itself");
}

//===----------------------------------------------------------------------===//
// Shapes, GEMMs, weight bindings
//===----------------------------------------------------------------------===//

TEST(Validate, ShapesStayAffineAndClassRulesHold) {
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["buffers"][6]["shape"] = {"B", "B", 32};
            }),
            "test.xlca: buffer 6 'x': shape [B, B, 32] names B more than once; sizes must stay "
            "affine in B and S");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["buffers"][13]["shape"] = {2, 8, 16};
            }),
            "test.xlca: buffer 13 'blocks.0.state.c': state buffers have shape [B, "
            "<constants>...], got [2, 8, 16]");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["buffers"][2]["shape"] = {"S", 32};
            }),
            "test.xlca: buffer 2 'embedding': weight buffers have static shapes, got [S, 32]");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["buffers"][2]["shape"] = {1ull << 62, 4};
            }),
            "test.xlca: buffer 2 'embedding': shape [4611686018427387904, 4] of bf16 has more "
            "than 2^64 bytes");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][0]["offset"] = 0; }),
            "test.xlca: buffer 0 'tokens': input buffers must not have an arena offset");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][6].erase("offset"); }),
            "test.xlca: buffer 6 'x': activation buffers need an arena offset");
}

TEST(Validate, GemmOperandsMatchMNK) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 0, 2)["k"] = 64; }),
            "test.xlca: step 2 of function 'prefill': operand a buffer 7 'blocks.0.xn' is [B, S, "
            "32], so its last dimension is 32, but the GEMM's k is 64");
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 0, 2)["n"] = 95; }),
            "test.xlca: step 2 of function 'prefill': operand b buffer 3 'blocks.0.w_qkvo' is "
            "[96, 32], so its row count is 96, but the GEMM's n is 95");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              step(p, 0, 2)["m"] = {{"B", 1}};
            }),
            "test.xlca: step 2 of function 'prefill': operand a buffer 7 'blocks.0.xn' is [B, S, "
            "32], so its row count is B*S, but the GEMM's m is B");
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 0, 2)["b"] = kWOut; }),
            "test.xlca: step 2 of function 'prefill': operand b buffer 4 'blocks.0.w_out' is "
            "[32, 32], so its row count is 32, but the GEMM's n is 96");
  // Transposed operands: with trans_b false, B is [k, n] (32 x 96 needed, [96, 32] given).
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 0, 2)["trans_b"] = false; }),
            "test.xlca: step 2 of function 'prefill': operand b buffer 3 'blocks.0.w_qkvo' is "
            "[96, 32], so its last dimension is 32, but the GEMM's n is 96");
  // Accumulation needs its duty, and no epilogue.
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 0, 2)["accumulate"] = true; }),
            "test.xlca: step 2 of function 'prefill': accumulates into result d buffer 8 "
            "'blocks.0.qkvo' without an 'accumulate' duty on it");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              step(p, 0, 4)["accumulate"] = true;
            }),
            "test.xlca: step 4 of function 'prefill': an accumulating GEMM takes no epilogue (got "
            "residual_add)");
  // m written with an exact divisor is the same m.
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              step(p, 0, 2)["m"] = {{"BS", 64}, {"div", 64}};
            }),
            "<no error>");
}

// The LM head of a generation prefill reads the last position of each sequence in place:
// a_rows last_position, A [B, S, k], m = B, and D of one row per sequence.
TEST(Validate, GemmReadsTheLastPositions) {
  auto lastPositions = [](Json &p) {
    p["buffers"][kLogits]["shape"] = Json::parse(R"(["B", 1, 64])");
    for (auto [function, index] : {std::pair{0, 6}, std::pair{1, 7}}) {
      step(p, function, index)["a_rows"] = "last_position";
      step(p, function, index)["m"] = {{"B", 1}};
    }
  };
  EXPECT_EQ(parseErrorAfter(lastPositions), "<no error>");
  EXPECT_EQ(limitErrorAfter(lastPositions), "<no error>");
  Json payload = toJson(makeTestArtifact());
  lastPositions(payload);
  const Artifact a = parseArtifact(rewrap(payload), kSource);
  EXPECT_EQ(a.functions[0].steps[6].gemm()->aRows, GemmRows::LastPosition);
  EXPECT_EQ(a.functions[0].steps[2].gemm()->aRows, GemmRows::All);
  EXPECT_EQ(toJson(a), payload);

  EXPECT_EQ(parseErrorAfter([&](Json &p) {
              lastPositions(p);
              step(p, 0, 6)["m"] = {{"BS", 1}};
            }),
            "test.xlca: step 6 of function 'prefill': a_rows last_position reads one row per "
            "sequence, so m must be B, not B*S");
  EXPECT_EQ(parseErrorAfter([&](Json &p) {
              lastPositions(p);
              step(p, 0, 6)["trans_a"] = true;
            }),
            "test.xlca: step 6 of function 'prefill': a_rows last_position reads A's rows in "
            "place and takes no trans_a");
  EXPECT_EQ(parseErrorAfter([&](Json &p) {
              lastPositions(p);
              step(p, 0, 6)["a"] = kEmbedding;
            }),
            "test.xlca: step 6 of function 'prefill': a_rows last_position needs operand a of "
            "shape [B, S, k], but buffer 2 'embedding' is [64, 32]");
  EXPECT_EQ(parseErrorAfter([&](Json &p) { step(p, 0, 6)["a_rows"] = "first_position"; }),
            "test.xlca: step 6 of function 'prefill': a_rows: unknown value 'first_position' "
            "(expected one of all, last_position)");
  // Without it, the product reads every row: [B, 1, 64] logits are not B·S rows.
  EXPECT_EQ(parseErrorAfter([&](Json &p) {
              lastPositions(p);
              step(p, 0, 6).erase("a_rows");
            }),
            "test.xlca: step 6 of function 'prefill': operand a buffer 12 'yn' is [B, S, 32], so "
            "its row count is B*S, but the GEMM's m is B");
}

TEST(Validate, EpilogueAndOperandCAgree) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 0, 4)["c"] = nullptr; }),
            "test.xlca: step 4 of function 'prefill': epilogue residual_add needs an operand c");
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 0, 2)["c"] = kX; }),
            "test.xlca: step 2 of function 'prefill': epilogue none takes no operand c");
  EXPECT_EQ(parseErrorAfter([](Json &p) { step(p, 0, 4)["c"] = kQkvo; }),
            "test.xlca: step 4 of function 'prefill': residual operand c buffer 8 'blocks.0.qkvo' "
            "is [B, S, 96], but d is [B, S, 32]");
}

TEST(Validate, WeightBindingsConcatenateToTheBuffer) {
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["weights"][1]["source_shapes"][2] = {32, 31};
            }),
            "test.xlca: weight binding 1 (for buffer 3 'blocks.0.w_qkvo'): source 2 "
            "'backbone.blocks.0.mlstm_layer.v.weight' has shape [32, 31], which does not match "
            "the buffer [96, 32] outside concat_axis 0");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["weights"][1]["source_shapes"][0] = {17, 32};
            }),
            "test.xlca: weight binding 1 (for buffer 3 'blocks.0.w_qkvo'): sources [17, 32] + "
            "[16, 32] + [32, 32] + [32, 32] concatenated along axis 0 have size 97 there, but the "
            "buffer is [96, 32]");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["weights"][1]["source_shapes"][0] = {16, 32, 1};
            }),
            "test.xlca: weight binding 1 (for buffer 3 'blocks.0.w_qkvo'): source 0 "
            "'backbone.blocks.0.mlstm_layer.q.weight' has rank 3 but the buffer [96, 32] has "
            "rank 2");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["weights"][1]["concat_axis"] = 2; }),
            "test.xlca: weight binding 1 (for buffer 3 'blocks.0.w_qkvo'): concat_axis 2 is out "
            "of range for the buffer's rank 2");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["weights"][1]["sources"].erase(3); }),
            "test.xlca: weight binding 1 (for buffer 3 'blocks.0.w_qkvo'): 3 sources but 4 "
            "source shapes");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["buffers"][5]["shape"] = {2, 32, 32};
              p["weights"][3]["source_shapes"][0] = {2, 32, 32};
            }),
            "test.xlca: weight binding 3 (for buffer 5 'lm_head'): scale_columns_by needs a 2-D "
            "buffer, but the buffer is [2, 32, 32]");
}

TEST(Validate, EveryWeightBufferIsBoundOnce) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["weights"].erase(2); }),
            "test.xlca: buffer 4 'blocks.0.w_out' is a weight buffer, but no weight binding "
            "fills it");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["weights"].push_back(p["weights"][0]); }),
            "test.xlca: weight binding 4 (for buffer 2 'embedding'): weight binding 0 already "
            "fills this buffer");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["weights"][2]["buffer"] = kX; }),
            "test.xlca: weight binding 2 (for buffer 6 'x'): the buffer is of class activation, "
            "not weight or parameter");
}

//===----------------------------------------------------------------------===//
// Header and model facts
//===----------------------------------------------------------------------===//

TEST(Validate, HeaderAndModel) {
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["model"]["eos_token_id"] = 64; }),
            "test.xlca: model.eos_token_id is 64, outside the vocabulary of 64 tokens");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["model"]["chunk_size"] = 0; }),
            "test.xlca: model.chunk_size must be positive");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["target"]["arch"] = "sm90"; }),
            "test.xlca: target.arch 'sm90' is not of the form sm_<major><minor>[a] (e.g. sm_90a)");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["device_headers_hash"] = "XYZ"; }),
            "test.xlca: device_headers_hash 'XYZ' is not a lowercase hexadecimal string");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["kernels"][1]["block"] = {2048, 1, 1};
            }),
            "test.xlca: kernel 1 'rms_norm_0': block[0] = 2048 is outside CUDA's range 1..1024");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["kernels"][1]["block"] = {64, 32, 1};
            }),
            "test.xlca: kernel 1 'rms_norm_0': block [64, 32, 1] has 2048 threads; CUDA allows "
            "at most 1024");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["kernels"][1]["entry"] = "1kernel"; }),
            "test.xlca: kernel 1 'rms_norm_0': entry '1kernel' is not a C identifier");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["kernels"][1]["name"] = "../evil"; }),
            "test.xlca: kernel 1 '../evil': name must be non-empty and use only letters, "
            "digits, '_', '.', '-'");
}

TEST(Validate, DeviceArchitecture) {
  Artifact a = makeTestArtifact();
  a.sourceName = kSource;
  checkDeviceArch(a, 9, 0);
  EXPECT_EQ(errorOf([&] { checkDeviceArch(a, 8, 9); }),
            "test.xlca: kernels are built for sm_90a, which needs a device of compute capability "
            "9.0 exactly; this device is 8.9");
  EXPECT_EQ(errorOf([&] { checkDeviceArch(a, 10, 0); }),
            "test.xlca: kernels are built for sm_90a, which needs a device of compute capability "
            "9.0 exactly; this device is 10.0");
  a.targetArch = "sm_80";
  checkDeviceArch(a, 8, 6);
  EXPECT_EQ(errorOf([&] { checkDeviceArch(a, 9, 0); }),
            "test.xlca: kernels are built for sm_80, which needs a device of compute capability "
            "8.0 or a later minor version; this device is 9.0");
  auto t = parseTargetArch("sm_100a");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->major, 10);
  EXPECT_EQ(t->minor, 0);
  EXPECT_TRUE(t->archSpecific);
  EXPECT_FALSE(parseTargetArch("sm_9").has_value());
  EXPECT_FALSE(parseTargetArch("sm_09").has_value());
  EXPECT_FALSE(parseTargetArch("sm_90b").has_value());
  EXPECT_FALSE(parseTargetArch("compute_90").has_value());
}

//===----------------------------------------------------------------------===//
// The writer refuses what the reader would reject
//===----------------------------------------------------------------------===//

TEST(Validate, SerializeRefusesAnInvalidArtifact) {
  Artifact a = makeTestArtifact();
  std::get<LaunchStep>(a.functions[0].steps[1].body).kernel = 40;
  EXPECT_EQ(errorOf([&] { serialize(a); }),
            "artifact: step 1 of function 'prefill' names kernel 40, but the artifact has 4 "
            "kernels");

  a = makeTestArtifact();
  a.functions[0].steps[1].attrs["eps"] = std::nan("");
  EXPECT_EQ(errorOf([&] { serialize(a); }),
            "artifact: step 1 of function 'prefill': attrs hold a non-finite number, which JSON "
            "cannot represent");

  a = makeTestArtifact();
  std::get<LaunchStep>(a.functions[0].steps[1].body).args[4] =
      Arg::f32(std::numeric_limits<float>::infinity());
  EXPECT_EQ(errorOf([&] { serialize(a); }),
            "artifact: step 1 of function 'prefill': argument 4 is not finite");

  a = makeTestArtifact();
  a.kernels[0].grid[1].div = 0;
  EXPECT_EQ(errorOf([&] { serialize(a); }),
            "artifact: kernel 0 'embedding_0': grid[1]: expression divisor (div) must be at "
            "least 1");

  a = makeTestArtifact();
  a.kernels[0].source = "bad \xff byte";
  EXPECT_TRUE(contains(errorOf([&] { serialize(a); }), "artifact: cannot serialize: "));
}

//===----------------------------------------------------------------------===//
// Checks at the runtime's limits
//===----------------------------------------------------------------------===//

TEST(Validate, MisalignedArenaOffset) {
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["buffers"][7]["offset"] = {{"BS", 256}, {"c", 64}};
            }),
            "test.xlca: buffer 7 'blocks.0.xn': offset 64 + 256*B*S is not a multiple of 256 for "
            "every B and S (each coefficient must be a multiple of 256·div)");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["buffers"][7]["offset"] = {{"BS", 256}, {"div", 2}};
            }),
            "test.xlca: buffer 7 'blocks.0.xn': offset ceil(256*B*S/2) is not a multiple of 256 "
            "for every B and S (each coefficient must be a multiple of 256·div)");
  // An exact divisor that keeps every term aligned is fine.
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["buffers"][7]["offset"] = {{"BS", 512}, {"div", 2}};
            }),
            "<no error>");
}

TEST(Validate, OverlappingLiveArenaBuffers) {
  // h moved onto qkvo, which the cell kernel reads while it writes h.
  EXPECT_EQ(limitErrorAfter([](Json &p) {
              p["buffers"][kH]["offset"] = {{"BS", 512}};
            }),
            "test.xlca: function 'prefill': buffer 8 'blocks.0.qkvo' (bytes [512, 704), live in "
            "steps 2-3) and buffer 9 'blocks.0.h' (bytes [512, 576), live in steps 3-4) overlap "
            "in the arena at B=1, S=1 while both are live");
  // The same bytes are fine for buffers that are never live together (xn and h already share).
  EXPECT_EQ(limitErrorAfter([](Json &) {}), "<no error>");
}

TEST(Validate, ArenaBufferOutsideTheArena) {
  EXPECT_EQ(limitErrorAfter([](Json &p) {
              p["arena"]["bytes"] = {{"BS", 768}};
            }),
            "test.xlca: buffer 10 'blocks.0.chunk_states': occupies arena bytes [768, 776) at "
            "B=1, S=1, but the arena (768*B*S) has 768 bytes");
}

TEST(Validate, SizesThatOverflowAtTheLimits) {
  auto edit = [](Json &p) { p["buffers"][kWorkspace]["shape"] = {"B", "S", 1ull << 50}; };
  EXPECT_EQ(limitErrorAfter(edit, 8, 8192),
            "test.xlca: buffer 10 'blocks.0.chunk_states': size: 4503599627370496*B*S overflows "
            "u64 at B=8, S=8192");
  // A grid that overflows is named as the kernel's.
  EXPECT_EQ(limitErrorAfter(
                [](Json &p) {
                  p["kernels"][1]["grid"][0] = {{"BS", 1ull << 60}};
                },
                64, 64),
            "test.xlca: kernel 1 'rms_norm_0': grid[0]: 1152921504606846976*B*S overflows u64 at "
            "B=64, S=64");
  Artifact a = makeTestArtifact();
  EXPECT_EQ(errorOf([&] { validate(a, 1ull << 32, 1ull << 32); }),
            "artifact: max batch 4294967296 times max sequence length 4294967296 does not fit in "
            "i64");
  EXPECT_EQ(errorOf([&] { validate(a, 0, 16); }),
            "artifact: cannot validate for max batch 0 and max sequence length 16: both must be "
            "at least 1");
}

TEST(Validate, LaunchGridsAndGemmExtentsAtTheLimits) {
  EXPECT_EQ(limitErrorAfter([](Json &p) { p["kernels"][1]["grid"][1] = 0; }),
            "test.xlca: kernel 1 'rms_norm_0': grid[1] = 0 is 0 at B=1, S=1; a launch needs at "
            "least one block");
  EXPECT_EQ(limitErrorAfter([](Json &p) {
              p["kernels"][1]["grid"][0] = {{"BS", 1 << 20}};
            }),
            "test.xlca: kernel 1 'rms_norm_0': grid[0] = 1048576*B*S is 68719476736 at B=8, "
            "S=8192, beyond CUDA's limit of 2147483647");
  EXPECT_EQ(limitErrorAfter([](Json &p) {
              p["kernels"][2]["grid"][2] = {{"S", 16}};
            }),
            "test.xlca: kernel 2 'mlstm_chunkwise_fwd_0': grid[2] = 16*S is 131072 at B=8, "
            "S=8192, beyond CUDA's limit of 65535");
}

TEST(Validate, CopiesFitTheirBuffers) {
  EXPECT_EQ(limitErrorAfter([](Json &p) {
              step(p, 1, 1)["bytes"] = {{"BS", 128}};
            }),
            "test.xlca: step 1 of function 'decode_step' copies 128 bytes at B=1, S=1, but buffer "
            "6 'x' has only 64");
}

/// One function whose single launch touches arena buffers a and b (u8, the given shapes and
/// offsets) in an arena of |arena| bytes.
Artifact twoBufferPlan(Shape shapeA, Expr offsetA, Shape shapeB, Expr offsetB, Expr arena) {
  Artifact a;
  a.compiler = {"xlc", "0.1.0"};
  a.targetArch = "sm_90a";
  a.model = {"plan", 16, 16, 1, 16, 0, 1, 2};
  a.deviceHeadersHash = "00";
  Kernel k = makeKernel("touch_0", "touch", "#xk.tile<>", {32, 1, 1},
                        {Expr::constant(1), Expr::constant(1), Expr::constant(1)}, 0,
                        {{"a", ParamKind::Buffer}, {"b", ParamKind::Buffer}});
  a.kernels = {k};
  a.buffers = {makeBuffer(0, "a", BufferClass::Activation, DType::U8, std::move(shapeA), offsetA),
               makeBuffer(1, "b", BufferClass::Workspace, DType::U8, std::move(shapeB), offsetB)};
  a.arenaBytes = arena;
  Function f;
  f.name = "f";
  f.steps = {Step::makeLaunch("touch", Json::object(), 0, {Arg::buffer(0), Arg::buffer(1)})};
  a.functions = {f};
  a.sourceName = "plan.xlca";
  return a;
}

TEST(Validate, ArenaBoundsAreCheckedAtAllFourCorners) {
  // end = 256·S + 256·B, arena = 128·B·S + 384: equal at (1,1), ample at (8,8), short at (1,8)
  // and (8,1). Checking only (1,1) and (max,max) would miss it.
  Artifact a = twoBufferPlan({Dim::batch(), 256}, Expr::seq(256), {1}, Expr::constant(0),
                             Expr{384, 0, 0, 128, 1});
  a.buffers[1].offset = Expr::constant(0);
  a.functions[0].steps[0] =
      Step::makeLaunch("touch", Json::object(), 0, {Arg::buffer(0), Arg::buffer(0)});
  EXPECT_EQ(errorOf([&] { validate(a, 8, 8); }),
            "plan.xlca: buffer 0 'a': occupies arena bytes [2048, 2304) at B=1, S=8, but the "
            "arena (384 + 128*B*S) has 1408 bytes");
}

TEST(Validate, OverlapIsCheckedAtAllFourCorners) {
  // a = [0, 256·S), b starts at 256·B: apart at (1,1) and (8,8), overlapping at (1,8).
  Artifact a = twoBufferPlan({Dim::seq(), 256}, Expr::constant(0), {256}, Expr::batch(256),
                             Expr::batchSeq(1 << 20));
  EXPECT_EQ(errorOf([&] { validate(a, 8, 8); }),
            "plan.xlca: function 'f': buffer 0 'a' (bytes [0, 2048), live in steps 0-0) and "
            "buffer 1 'b' (bytes [256, 512), live in steps 0-0) overlap in the arena at B=1, S=8 "
            "while both are live");
  validate(a, 1, 1); // at (1,1) they only touch
}

TEST(Validate, LiveBuffersKeepOneOrderInTheArena) {
  // a at 256 + 512·B, b at 512·S (256 bytes each): b first at (1,1), (8,1) and (8,8), a first at
  // (1,8). They never share a byte at these corners, but the order flips across the range.
  Artifact a =
      twoBufferPlan({256}, Expr{256, 512, 0, 0, 1}, {256}, Expr::seq(512), Expr::batchSeq(1 << 20));
  EXPECT_EQ(errorOf([&] { validate(a, 8, 8); }),
            "plan.xlca: function 'f': buffer 0 'a' (bytes [768, 1024), live in steps 0-0) and "
            "buffer 1 'b' (bytes [4096, 4352), live in steps 0-0) are live at the same time but "
            "lie in the arena in one order at B=1, S=8 and in the other at B=8, S=8; the plan "
            "must keep one order");
}

} // namespace

//===----------------------------------------------------------------------===//
// Schema 2: typed duties, named arguments, scalars, trainable classes
//===----------------------------------------------------------------------===//

namespace {
void expectErrorContains(const std::string &error, const std::string &part) {
  EXPECT_NE(error.find(part), std::string::npos) << "'" << error << "' lacks '" << part << "'";
}
} // namespace

TEST(Validate, DutiesAreTypedAndChecked) {
  using xlc::artifact::testing::kWorkspace;
  // An error flag must be an i64 arena buffer that the same step zeroes.
  expectErrorContains(parseErrorAfter([](Json &p) {
                        step(p, 0, 0)["duties"] = {{{"kind", "error_flag"}, {"buffer", kX}}};
                      }),
                      "an error flag is an i64 arena buffer");
  expectErrorContains(parseErrorAfter([](Json &p) {
                        p["buffers"][kWorkspace]["dtype"] = "i64";
                        step(p, 0, 0)["duties"] = {
                            {{"kind", "error_flag"}, {"buffer", kWorkspace}}};
                      }),
                      "is not zeroed by the same step");
  // Duties name buffers the function may touch and may not write weights.
  expectErrorContains(parseErrorAfter([](Json &p) {
                        step(p, 0, 0)["duties"] = {{{"kind", "zero"}, {"buffer", kEmbedding}}};
                      }),
                      "duty 0 (zero) buffer 2 'embedding' is a weight buffer");
  expectErrorContains(parseErrorAfter([](Json &p) {
                        step(p, 0, 0)["duties"] = {{{"kind", "clear"}, {"buffer", kX}}};
                      }),
                      "unknown value 'clear' (expected one of zero, error_flag, accumulate)");
  // Accumulating into an arena buffer nothing wrote before.
  expectErrorContains(parseErrorAfter([](Json &p) {
                        step(p, 0, 0)["duties"] = {{{"kind", "accumulate"}, {"buffer", kRes}}};
                      }),
                      "which no earlier step of the function wrote and this step does not zero");
  // Schema-1 duties spelt as attributes are refused with what to do.
  expectErrorContains(parseErrorAfter([](Json &p) {
                        step(p, 0, 0)["attrs"]["zero_before"] = {kWorkspace};
                      }),
                      "attribute 'zero_before' is a schema-1 runtime duty");
}

TEST(Validate, CopiesKeepTheDtype) {
  expectErrorContains(parseErrorAfter([](Json &p) { p["buffers"][kRes]["dtype"] = "f32"; }),
                      "a copy keeps the dtype");
}

TEST(Validate, ScalarsAndTrainableClasses) {
  // A scalar argument must name one of the function's scalars, of the parameter's kind.
  expectErrorContains(parseErrorAfter([](Json &p) {
                        step(p, 0, 1)["args"][4] = {{"scalar", 0}};
                      }),
                      "names scalar 0, but function 'prefill' has 0 scalars");
  expectErrorContains(parseErrorAfter([](Json &p) {
                        p["functions"][0]["scalars"] = {{{"name", "steps"}, {"kind", "i64"}}};
                        step(p, 0, 1)["args"][4] = {{"scalar", 0}};
                      }),
                      "is the i64 scalar 'steps', but parameter 'eps' is f32");
  EXPECT_EQ(parseErrorAfter([](Json &p) {
              p["functions"][0]["scalars"] = {{{"name", "lr"}, {"kind", "f32"}}};
              step(p, 0, 1)["args"][4] = {{"scalar", 0}};
            }),
            "<no error>");
  // A trainable parameter cannot fold a norm weight (it could not be split back).
  expectErrorContains(parseErrorAfter([](Json &p) { p["buffers"][kWQkvo]["class"] = "parameter"; }),
                      "a trainable parameter cannot fold scale_columns_by");
  EXPECT_EQ(parseErrorAfter([](Json &p) { p["buffers"][kWOut]["class"] = "parameter"; }),
            "<no error>");
  // Gradients have static shapes and no binding.
  expectErrorContains(parseErrorAfter([](Json &p) { p["buffers"][kX]["class"] = "gradient"; }),
                      "gradient buffers have static shapes");
}

TEST(Validate, GradientAndOptimizerBuffersBelongToAParameter) {
  // A gradient (and AdamW's buffers) of the out projection, made a parameter: f32, its shape.
  auto add = [](Json &p, const char *name, const char *cls) -> Json & {
    p["buffers"][kWOut]["class"] = "parameter";
    const std::size_t id = p["buffers"].size();
    p["buffers"].push_back({{"id", id}, {"name", name}, {"class", cls}, {"dtype", "f32"},
                            {"shape", {32, 32}}, {"parameter", kWOut}});
    return p["buffers"][id];
  };
  EXPECT_EQ(parseErrorAfter([&](Json &p) { add(p, "grad", "gradient"); }), "<no error>");
  EXPECT_EQ(parseErrorAfter([&](Json &p) { add(p, "m", "optimizer")["role"] = "exp_avg"; }),
            "<no error>");
  expectErrorContains(parseErrorAfter([&](Json &p) { add(p, "m", "optimizer"); }),
                      "an optimizer buffer names its parameter and its role");
  expectErrorContains(
      parseErrorAfter([&](Json &p) { add(p, "m", "optimizer")["role"] = "momentum"; }),
      "exp_avg, exp_avg_sq, master");
  expectErrorContains(parseErrorAfter([&](Json &p) { add(p, "g", "gradient")["role"] = "master"; }),
                      "only optimizer buffers have a role");
  // bf16 gradients and moments are the low-memory mode's; a master copy is always f32.
  EXPECT_EQ(parseErrorAfter([&](Json &p) { add(p, "g", "gradient")["dtype"] = "bf16"; }),
            "<no error>");
  EXPECT_EQ(parseErrorAfter([&](Json &p) {
              Json &m = add(p, "m", "optimizer");
              m["role"] = "exp_avg";
              m["dtype"] = "bf16";
            }),
            "<no error>");
  expectErrorContains(parseErrorAfter([&](Json &p) { add(p, "g", "gradient")["dtype"] = "f16"; }),
                      "gradient buffers are f32 or bf16, got f16");
  expectErrorContains(parseErrorAfter([&](Json &p) {
                        Json &m = add(p, "m", "optimizer");
                        m["role"] = "master";
                        m["dtype"] = "bf16";
                      }),
                      "a master copy is f32, got bf16");
  expectErrorContains(
      parseErrorAfter([&](Json &p) { add(p, "g", "gradient")["shape"] = {32, 16}; }),
      "shape [32, 16] differs from its parameter");
  expectErrorContains(parseErrorAfter([&](Json &p) { add(p, "g", "gradient")["parameter"] = kX; }),
                      "is not a parameter buffer");
  expectErrorContains(parseErrorAfter([&](Json &p) {
                        add(p, "w2", "gradient");
                        p["buffers"].back()["class"] = "weight";
                      }),
                      "only gradient and optimizer buffers name a parameter");
}
