//===- BackwardGemmArtifact.h - A plan of the backward's GEMM forms --*- C++ -*-===//
//
// A small valid artifact whose one function, `backward`, runs the two GEMM forms a backward
// pass needs on named inputs g [B, S, 16] and a [B, S, 32] (bf16) and a weight w [16, 32]:
//   dx  = g · w        (trans_b false; an output [B, S, 32], f32)
//   dw += gᵀ · a       (trans_a, accumulate; a gradient buffer [16, 32], f32, persistent)
// and a checkpoint holding w, so both backends can run it and be compared with each other and
// with plain loops.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_RUNTIME_EXEC_BACKWARDGEMMARTIFACT_H
#define XLC_TEST_RUNTIME_EXEC_BACKWARDGEMMARTIFACT_H

#include "runtime/artifact/Artifact.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/SafetensorsWriter.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace xlc::testing {

enum : artifact::BufferId { kG, kA, kW, kDx, kDw };
inline constexpr std::uint64_t kIn = 16, kOut = 32;

inline artifact::Artifact backwardGemmArtifact(std::string deviceHeadersHash) {
  namespace art = xlc::artifact;
  const art::Dim B = art::Dim::batch(), S = art::Dim::seq();
  art::Artifact a;
  a.compiler = {"xlc", "test"};
  a.targetArch = "sm_90a";
  a.deviceHeadersHash = std::move(deviceHeadersHash);
  a.model = {"backward-gemms", 64, kOut, 1, 16, 0, 2, 1};
  a.sourceName = "backward-gemms.xlca";
  a.buffers = {
      {kG, "g", art::BufferClass::Input, art::DType::BF16, {B, S, kIn}, {}, {}},
      {kA, "a", art::BufferClass::Input, art::DType::BF16, {B, S, kOut}, {}, {}},
      {kW, "w", art::BufferClass::Weight, art::DType::BF16, {kIn, kOut}, {}, {}},
      {kDx, "dx", art::BufferClass::Output, art::DType::F32, {B, S, kOut}, {}, {}},
      {kDw, "dw", art::BufferClass::Gradient, art::DType::F32, {kIn, kOut}, {}, {}},
  };
  a.weights = {{kW, {"w"}, {{kIn, kOut}}, 0, std::nullopt}};
  art::GemmStep dx;
  dx.a = kG, dx.b = kW, dx.d = kDx;
  dx.m = art::Expr::batchSeq(), dx.n = art::Expr::constant(kOut), dx.k = art::Expr::constant(kIn);
  dx.transB = false;
  art::GemmStep dw;
  dw.a = kG, dw.b = kA, dw.d = kDw;
  dw.m = art::Expr::constant(kIn), dw.n = art::Expr::constant(kOut), dw.k = art::Expr::batchSeq();
  dw.transA = true, dw.transB = false, dw.accumulate = true;
  art::Step accumulate = art::Step::makeGemm("linear_grad_weight", nlohmann::json::object(), dw);
  accumulate.duties = {{art::DutyKind::Accumulate, kDw}};
  art::Function f;
  f.name = "backward";
  f.inputs = {{"g", kG}, {"a", kA}};
  f.outputs = {{"dx", kDx}};
  f.steps = {art::Step::makeGemm("linear_grad_input", nlohmann::json::object(), dx), accumulate};
  a.functions = {f};
  a.arenaBytes = art::Expr::constant(0);
  return a;
}

/// |count| random bf16 values (as their fp32 values and bit patterns).
struct Bf16Values {
  std::vector<float> values;
  std::vector<std::uint16_t> bits;
};
inline Bf16Values randomBf16(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Bf16Values v;
  for (std::size_t i = 0; i < count; ++i) {
    v.bits.push_back(weights::f32ToBF16(normal(rng)));
    v.values.push_back(weights::bf16ToF32(v.bits.back()));
  }
  return v;
}

/// Writes the checkpoint (one tensor "w") to |path| and returns w's values.
inline std::vector<float> writeBackwardGemmCheckpoint(const std::string &path) {
  const Bf16Values w = randomBf16(kIn * kOut, 5);
  weights::TensorToWrite t{"w", weights::DType::BF16, {kIn, kOut},
                           {reinterpret_cast<const std::uint8_t *>(w.bits.data()),
                            w.bits.size() * 2}};
  weights::writeSafetensors(path, std::span(&t, 1));
  return w.values;
}

} // namespace xlc::testing

#endif // XLC_TEST_RUNTIME_EXEC_BACKWARDGEMMARTIFACT_H
