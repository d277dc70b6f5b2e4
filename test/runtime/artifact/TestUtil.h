//===- TestUtil.h - A small realistic artifact and corruption helpers -*- C++ -*-===//
//
// makeTestArtifact() builds the plan a compiler would emit for a one-block xLSTM with embedding
// 32, vocabulary 64, two heads and chunk 16: four kernels, buffers of every class, weights with a
// fused q|k|v|o-gate projection that also folds the block's RMSNorm weight, an LM head with the
// output norm folded, and `prefill` / `decode_step` functions made of launches, GEMMs (one with a
// residual epilogue) and a copy. Arena buffers reuse each other's bytes where their live ranges
// allow, so the overlap check has real work to do.
//
// Semantic corruptions are made by editing the payload JSON and re-wrapping it with a correct
// checksum (rewrap), so they reach the validator instead of the checksum check.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_RUNTIME_ARTIFACT_TESTUTIL_H
#define XLC_TEST_RUNTIME_ARTIFACT_TESTUTIL_H

#include "runtime/artifact/Artifact.h"
#include "runtime/artifact/Serialize.h"
#include "runtime/support/Error.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

namespace xlc::artifact::testing {

inline constexpr const char *kSource = "test.xlca";

// Buffer ids of the test artifact.
enum : BufferId {
  kTokens,
  kLogits,
  kEmbedding,
  kWQkvo,
  kWOut,
  kLmHead,
  kX,
  kXn,
  kQkvo,
  kH,
  kWorkspace,
  kY,
  kYn,
  kStateC,
  kStateN,
  kStateM,
  kRes,
  kBufferCount
};

// Kernel indices.
enum : KernelIndex { kEmbedKernel, kRmsNormKernel, kChunkwiseKernel, kDecodeKernel };

inline Kernel makeKernel(std::string name, std::string family, std::string tile,
                         std::array<std::uint32_t, 3> block, std::array<Expr, 3> grid,
                         std::uint32_t shared, std::vector<KernelParam> params) {
  Kernel k;
  k.name = std::move(name);
  k.family = family;
  k.entry = "xlc_kernel";
  k.tile = std::move(tile);
  k.source = "#include \"xlc/" + family +
             ".cuh\"\nextern \"C\" __global__ void xlc_kernel(xlc::" + family +
             "::Params p) { xlc::" + family + "::run<Tile>(p); }\n";
  k.options = {"--std=c++17", "-default-device"};
  k.block = block;
  k.grid = grid;
  k.sharedBytes = shared;
  k.params = std::move(params);
  return k;
}

inline Buffer makeBuffer(BufferId id, std::string name, BufferClass cls, DType dtype, Shape shape,
                         std::optional<Expr> offset = std::nullopt) {
  return Buffer{id, std::move(name), cls, dtype, std::move(shape), offset};
}

inline Artifact makeTestArtifact() {
  using P = ParamKind;
  const Dim B = Dim::batch(), S = Dim::seq();
  Artifact a;
  a.compiler = {"xlc", "0.1.0"};
  a.targetArch = "sm_90a";
  a.model = {"xlstm-tiny", 64, 32, 1, 16, 0, 2, 1};
  a.deviceHeadersHash = "3f2a9c0d1e7b5a64";

  a.kernels = {
      makeKernel("embedding_0", "embedding", "#xk.tile<block = 128>", {128, 1, 1},
                 {ceilDiv(Expr::batchSeq(32), 128), Expr::constant(1), Expr::constant(1)}, 0,
                 {{"tokens", P::Buffer},
                  {"table", P::Buffer},
                  {"out", P::Buffer},
                  {"num_tokens", P::I64},
                  {"dim", P::I64}}),
      makeKernel("rms_norm_0", "rms_norm", "#xk.tile<rows = 1, warps = 1>", {32, 1, 1},
                 {Expr::batchSeq(), Expr::constant(1), Expr::constant(1)}, 0,
                 {{"x", P::Buffer},
                  {"y", P::Buffer},
                  {"rows", P::I64},
                  {"cols", P::I64},
                  {"eps", P::F32}}),
      makeKernel("mlstm_chunkwise_fwd_0", "mlstm_chunkwise_fwd",
                 "#xk.tile<chunk = 16, block_q = 16, block_kv = 16, warps = 4, stages = 2>",
                 {128, 1, 1}, {Expr::constant(2), Expr::batch(), Expr::constant(1)}, 49152,
                 {{"qkvo", P::Buffer},
                  {"h", P::Buffer},
                  {"workspace", P::Buffer},
                  {"c", P::Buffer},
                  {"n", P::Buffer},
                  {"m", P::Buffer},
                  {"batch", P::I64},
                  {"seq_len", P::I64}}),
      makeKernel("mlstm_decode_step_0", "mlstm_decode_step", "#xk.tile<warps = 4>", {128, 1, 1},
                 {Expr::constant(2), Expr::batch(), Expr::constant(1)}, 8192,
                 {{"qkvo", P::Buffer},
                  {"h", P::Buffer},
                  {"c", P::Buffer},
                  {"n", P::Buffer},
                  {"m", P::Buffer},
                  {"batch", P::I64}}),
  };

  // Activations take 256 bytes per token slot; regions are reused once their tenant is dead.
  auto slot = [](std::uint64_t k) { return Expr::batchSeq(256 * k); };
  a.buffers = {
      makeBuffer(kTokens, "tokens", BufferClass::Input, DType::I32, {B, S}),
      makeBuffer(kLogits, "logits", BufferClass::Output, DType::F32, {B, S, 64}),
      makeBuffer(kEmbedding, "embedding", BufferClass::Weight, DType::BF16, {64, 32}),
      makeBuffer(kWQkvo, "blocks.0.w_qkvo", BufferClass::Weight, DType::BF16, {96, 32}),
      makeBuffer(kWOut, "blocks.0.w_out", BufferClass::Weight, DType::BF16, {32, 32}),
      makeBuffer(kLmHead, "lm_head", BufferClass::Weight, DType::BF16, {64, 32}),
      makeBuffer(kX, "x", BufferClass::Activation, DType::BF16, {B, S, 32}, slot(0)),
      makeBuffer(kXn, "blocks.0.xn", BufferClass::Activation, DType::BF16, {B, S, 32}, slot(1)),
      makeBuffer(kQkvo, "blocks.0.qkvo", BufferClass::Activation, DType::BF16, {B, S, 96}, slot(2)),
      makeBuffer(kH, "blocks.0.h", BufferClass::Activation, DType::BF16, {B, S, 32}, slot(1)),
      makeBuffer(kWorkspace, "blocks.0.chunk_states", BufferClass::Workspace, DType::F32, {B, S, 2},
                 slot(3)),
      makeBuffer(kY, "blocks.0.y", BufferClass::Activation, DType::BF16, {B, S, 32}, slot(2)),
      makeBuffer(kYn, "yn", BufferClass::Activation, DType::BF16, {B, S, 32}, slot(0)),
      makeBuffer(kStateC, "blocks.0.state.c", BufferClass::State, DType::F32, {B, 2, 8, 16}),
      makeBuffer(kStateN, "blocks.0.state.n", BufferClass::State, DType::F32, {B, 2, 8}),
      makeBuffer(kStateM, "blocks.0.state.m", BufferClass::State, DType::F32, {B, 2}),
      makeBuffer(kRes, "blocks.0.residual", BufferClass::Activation, DType::BF16, {B, S, 32},
                 slot(3)),
  };
  a.arenaBytes = slot(4);

  a.weights = {
      {kEmbedding, {"backbone.embeddings.weight"}, {{64, 32}}, 0, std::nullopt},
      {kWQkvo,
       {"backbone.blocks.0.mlstm_layer.q.weight", "backbone.blocks.0.mlstm_layer.k.weight",
        "backbone.blocks.0.mlstm_layer.v.weight",
        "backbone.blocks.0.mlstm_layer.ogate_preact.weight"},
       {{16, 32}, {16, 32}, {32, 32}, {32, 32}},
       0,
       "backbone.blocks.0.norm_mlstm.weight"},
      {kWOut, {"backbone.blocks.0.mlstm_layer.out_proj.weight"}, {{32, 32}}, 0, std::nullopt},
      {kLmHead, {"lm_head.weight"}, {{64, 32}}, 0, "backbone.out_norm.weight"},
  };

  const Arg BS = Arg::symbol(Symbol::BS);
  auto buf = [](BufferId id) { return Arg::buffer(id); };
  auto rmsNorm = [&](BufferId x, BufferId y) {
    return Step::makeLaunch("rms_norm", {{"eps", 1e-6}, {"weight", "folded"}}, kRmsNormKernel,
                            {buf(x), buf(y), BS, Arg::i64(32), Arg::f32(1e-6f)});
  };
  auto linear = [&](BufferId x, BufferId w, BufferId y, std::uint64_t n,
                    std::optional<BufferId> residual = std::nullopt) {
    GemmStep g;
    g.a = x, g.b = w, g.d = y, g.c = residual;
    g.m = Expr::batchSeq(), g.n = Expr::constant(n), g.k = Expr::constant(32);
    g.epilogue = residual ? Epilogue::ResidualAdd : Epilogue::None;
    return Step::makeGemm("linear", nlohmann::json::object(), g);
  };
  Step embed = Step::makeLaunch("embedding", nlohmann::json::object(), kEmbedKernel,
                                {buf(kTokens), buf(kEmbedding), buf(kX), BS, Arg::i64(32)});
  nlohmann::json cellAttrs = {{"num_heads", 2},        {"eps", 1e-6},
                              {"input_gate", "exp"},   {"normalizer", "max_abs"},
                              {"gate_soft_cap", 15.0}, {"chunk_size", 16}};

  Function prefill;
  prefill.name = "prefill";
  prefill.inputs = {{"tokens", kTokens}};
  prefill.outputs = {{"logits", kLogits}};
  prefill.states = {kStateC, kStateN, kStateM};
  prefill.steps = {
      embed,
      rmsNorm(kX, kXn),
      linear(kXn, kWQkvo, kQkvo, 96),
      Step::makeLaunch("mlstm_cell", cellAttrs, kChunkwiseKernel,
                       {buf(kQkvo), buf(kH), buf(kWorkspace), buf(kStateC), buf(kStateN),
                        buf(kStateM), Arg::symbol(Symbol::B), Arg::symbol(Symbol::S)}),
      linear(kH, kWOut, kY, 32, kX),
      rmsNorm(kY, kYn),
      linear(kYn, kLmHead, kLogits, 64),
  };

  Function decode;
  decode.name = "decode_step";
  decode.inputs = {{"tokens", kTokens}};
  decode.outputs = {{"logits", kLogits}};
  decode.states = {kStateC, kStateN, kStateM};
  decode.steps = {
      embed,
      Step::makeCopy("copy", kX, kRes, Expr::batchSeq(64)),
      rmsNorm(kX, kXn),
      linear(kXn, kWQkvo, kQkvo, 96),
      Step::makeLaunch(
          "mlstm_cell", cellAttrs, kDecodeKernel,
          {buf(kQkvo), buf(kH), buf(kStateC), buf(kStateN), buf(kStateM), Arg::symbol(Symbol::B)}),
      linear(kH, kWOut, kY, 32, kRes),
      rmsNorm(kY, kYn),
      linear(kYn, kLmHead, kLogits, 64),
  };
  a.functions = {prefill, decode};
  return a;
}

/// The payload JSON of container bytes (no validation).
inline nlohmann::json payloadOf(const std::vector<std::uint8_t> &bytes) {
  std::string_view payload = unwrapContainer(bytes, kSource);
  return nlohmann::json::parse(payload);
}

/// Re-wraps an edited payload with a correct checksum.
inline std::vector<std::uint8_t> rewrap(const nlohmann::json &payload) {
  return wrapContainer(payload.dump());
}

/// Runs |fn| and returns the xlc::Error message it throws, or "<no error>". Any other exception
/// propagates and fails the test.
template <typename Fn> std::string errorOf(Fn &&fn) {
  try {
    fn();
  } catch (const xlc::Error &e) {
    return e.what();
  }
  return "<no error>";
}

/// Whether |text| contains |part|, printing both when it does not.
inline ::testing::AssertionResult contains(const std::string &text, const std::string &part) {
  if (text.find(part) != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\"\n  does not contain\n\"" << part << "\"";
}

/// The message parseArtifact gives for the test artifact's payload after |edit|.
template <typename Edit> std::string parseErrorAfter(Edit &&edit) {
  nlohmann::json payload = toJson(makeTestArtifact());
  edit(payload);
  std::vector<std::uint8_t> bytes = rewrap(payload);
  return errorOf([&] { parseArtifact(bytes, kSource); });
}

/// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
public:
  TempDir() {
    const char *base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/xlc-artifact-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = buffer.data();
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string &name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

} // namespace xlc::artifact::testing

#endif // XLC_TEST_RUNTIME_ARTIFACT_TESTUTIL_H
