//===- WeightUploadCases.h - Checkpoints that exercise every weight assembly -*- C++ -*-===//
//
// Shared by the emulator tests (test/runtime/cuda/EmulatedWeightUploadTest.cpp, CI) and the GPU
// tests (test/gpu/WeightUploadTests.cpp): the raw-bytes weight upload (WeightPieces.h,
// runtime/device/weight_transform.cuh) must give every buffer the host path's bytes exactly.
//
// assemblyArtifact() binds one buffer per kind of assembly the artifact format allows:
// concatenation along axis 0 (of F32, BF16 and F16 sources at once) and along inner axes (a 2-D
// and a 3-D buffer), folded norm weights (BF16, F32 and F16 vectors) into bf16 and f32 buffers,
// plain copies (bf16 and f32, the raw path's direct case), a conversion (f32 -> bf16) and one
// buffer large enough to be cut into many pieces. writeAssemblyCheckpoint() writes its sources
// with random values and, in every tensor, the patterns where a conversion or a fold could
// differ: NaNs (quiet with payloads, signalling, negative), ±Inf, ±0, subnormals, the largest
// finite values (which round to Inf in bf16), bf16 rounding ties (to even, both ways), and in
// the norm weights 0 (∞·0), NaN, Inf, huge and tiny factors (products that overflow and
// underflow into subnormals).
//
// expectedBytes() is the oracle: the host path's buffer bytes (WeightAssembly.h
// assembleWeightBytes: assembleWeight in fp32, rounded once to the buffer's dtype, sources of the
// buffer's own type copied when nothing is folded).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_GPU_HARNESS_WEIGHTUPLOADCASES_H
#define XLC_TEST_GPU_HARNESS_WEIGHTUPLOADCASES_H

#include "runtime/artifact/Artifact.h"
#include "runtime/exec/WeightAssembly.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/SafetensorsWriter.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace xlc::test::weight_upload {

/// One source tensor of the synthetic checkpoint.
struct SourceSpec {
  std::string name;
  weights::DType dtype;
  std::vector<std::uint64_t> shape;
};

/// One buffer and its binding.
struct BindingSpec {
  std::string buffer;
  artifact::DType dtype;
  std::vector<std::uint64_t> shape;
  std::vector<SourceSpec> sources;
  std::uint32_t axis = 0;
  std::optional<SourceSpec> scale; ///< a folded norm weight
};

inline std::vector<BindingSpec> assemblySpecs() {
  using weights::DType;
  using A = artifact::DType;
  return {
      // q|k|v: three source types at once, along axis 0, with a bf16 norm folded in.
      {"qkv", A::BF16, {12, 8},
       {{"q", DType::BF16, {4, 8}}, {"k", DType::F32, {4, 8}}, {"v", DType::F16, {4, 8}}}, 0,
       SourceSpec{"norm_qkv", DType::BF16, {8}}},
      // Along the inner axis into an f32 buffer, with an f32 norm.
      {"wide", A::F32, {4, 10}, {{"wa", DType::F16, {4, 3}}, {"wb", DType::BF16, {4, 7}}}, 1,
       SourceSpec{"norm_wide", DType::F32, {10}}},
      // A 3-D concatenation along axis 1 (outer 2, inner 5).
      {"cube", A::BF16, {2, 3, 5}, {{"c0", DType::F32, {2, 1, 5}}, {"c1", DType::BF16, {2, 2, 5}}},
       1, std::nullopt},
      // Plain copies, the raw path's direct case.
      {"plain", A::BF16, {16, 8}, {{"plain", DType::BF16, {16, 8}}}, 0, std::nullopt},
      {"plain_f32", A::F32, {5, 3}, {{"plain_f32", DType::F32, {5, 3}}}, 0, std::nullopt},
      // A conversion only.
      {"conv", A::BF16, {7, 9}, {{"conv", DType::F32, {7, 9}}}, 0, std::nullopt},
      // f16 into an f32 buffer with an f16 norm.
      {"half", A::F32, {3, 6}, {{"half", DType::F16, {3, 6}}}, 0,
       SourceSpec{"norm_half", DType::F16, {6}}},
      // Big enough for many pieces (and a piece boundary inside every source).
      {"big", A::BF16, {64, 48},
       {{"big_a", DType::BF16, {40, 48}}, {"big_b", DType::BF16, {24, 48}}}, 0,
       SourceSpec{"norm_big", DType::BF16, {48}}},
  };
}

/// The artifact of |specs|: weight buffers and bindings only (no functions; weight assembly
/// needs nothing else).
inline artifact::Artifact assemblyArtifact(const std::vector<BindingSpec> &specs = assemblySpecs()) {
  namespace art = xlc::artifact;
  art::Artifact a;
  a.compiler = {"xlc", "test"};
  a.targetArch = "sm_90a";
  a.sourceName = "weight-assembly.xlca";
  for (const BindingSpec &spec : specs) {
    art::Buffer b;
    b.id = static_cast<art::BufferId>(a.buffers.size());
    b.name = spec.buffer;
    b.cls = art::BufferClass::Weight;
    b.dtype = spec.dtype;
    for (std::uint64_t d : spec.shape)
      b.shape.push_back(art::Dim(d));
    art::WeightBinding w;
    w.buffer = b.id;
    for (const SourceSpec &s : spec.sources) {
      w.sources.push_back(s.name);
      w.sourceShapes.push_back(s.shape);
    }
    w.concatAxis = spec.axis;
    if (spec.scale)
      w.scaleColumnsBy = spec.scale->name;
    a.buffers.push_back(b);
    a.weights.push_back(w);
  }
  a.arenaBytes = art::Expr::constant(0);
  return a;
}

/// Bit patterns where conversions and folds are delicate, per element size.
inline const std::vector<std::uint32_t> &specialF32() {
  static const std::vector<std::uint32_t> v = {
      0x7fc12345u, 0x7f800001u, 0xffc00000u, 0xff812345u, // NaNs: quiet+payload, signalling, ...
      0x7f800000u, 0xff800000u, 0x00000000u, 0x80000000u, // ±Inf, ±0
      0x00000001u, 0x807fffffu, 0x00400000u,              // subnormals
      0x7f7fffffu, 0xff7fffffu, 0x7f7f8000u,              // largest: round to Inf in bf16
      0x3f808000u, 0x3f818000u, 0xbf808001u, 0x3f807fffu, // bf16 ties and near-ties
  };
  return v;
}
inline const std::vector<std::uint16_t> &specialBF16() {
  static const std::vector<std::uint16_t> v = {0x7fc1, 0x7f81, 0xffc0, 0x7f80, 0xff80, 0x0000,
                                               0x8000, 0x0001, 0x807f, 0x7f7f, 0xff7f, 0x3f81};
  return v;
}
inline const std::vector<std::uint16_t> &specialF16() {
  static const std::vector<std::uint16_t> v = {0x7e01, 0x7c01, 0xfe00, 0x7c00, 0xfc00, 0x0000,
                                               0x8000, 0x0001, 0x83ff, 0x0200, 0x7bff, 0xfbff};
  return v;
}
/// Norm factors: 0 (∞·0 is NaN), NaN, Inf, huge (overflow), tiny (underflow to subnormals).
inline const std::vector<std::uint32_t> &specialScales() {
  static const std::vector<std::uint32_t> v = {0x00000000u, 0x7fc00abcu, 0x7f800000u,
                                               0x7e800000u, 0x0d800000u, 0x80000000u};
  return v;
}

/// |count| elements of |dtype| as little-endian bytes: N(0, 1) values (a norm weight: around
/// 1), with the special patterns spread over them (every |stride|-th element).
inline std::vector<std::uint8_t> tensorBytes(weights::DType dtype, std::uint64_t count,
                                             std::uint64_t seed, bool norm) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(norm ? 1.0f : 0.0f, norm ? 0.25f : 1.0f);
  const std::size_t size = weights::dtypeSize(dtype);
  std::vector<std::uint8_t> bytes(count * size);
  const std::uint64_t stride = 3;
  std::size_t special = seed % 5;
  for (std::uint64_t i = 0; i < count; ++i) {
    const float value = normal(rng);
    const bool plant = i % stride == 1;
    std::uint32_t bits32 = std::bit_cast<std::uint32_t>(value);
    std::uint16_t bits16 = 0;
    if (dtype == weights::DType::F32) {
      if (plant) {
        const auto &s = norm ? specialScales() : specialF32();
        bits32 = s[special++ % s.size()];
      }
      std::memcpy(&bytes[i * 4], &bits32, 4);
      continue;
    }
    if (dtype == weights::DType::BF16) {
      bits16 = weights::f32ToBF16(value);
      if (plant) {
        if (norm)
          bits16 = static_cast<std::uint16_t>(specialScales()[special++ % specialScales().size()] >> 16);
        else
          bits16 = specialBF16()[special++ % specialBF16().size()];
      }
    } else { // F16: a value on the f16 grid in [-4, 4], or a special pattern
      const float clamped = std::fmax(-4.0f, std::fmin(4.0f, value));
      const int steps = static_cast<int>(std::lround(std::fabs(clamped) * 256.0f)); // 2^-8 grid
      // sign | exponent | mantissa of steps·2⁻⁸ (steps < 1024·2 fits the binary16 grid there)
      std::uint16_t h = 0;
      if (steps > 0) {
        int e = 0;
        while ((steps >> e) >= 2)
          ++e;
        const int mantissa = (steps << (10 - e)) & 0x3ff;
        h = static_cast<std::uint16_t>(((e - 8 + 15) << 10) | mantissa);
      }
      bits16 = static_cast<std::uint16_t>(h | (clamped < 0 ? 0x8000 : 0));
      if (plant)
        bits16 = norm ? static_cast<std::uint16_t>(special++ % 2 ? 0x0000 : 0x7c00)
                      : specialF16()[special++ % specialF16().size()];
    }
    std::memcpy(&bytes[i * 2], &bits16, 2);
  }
  return bytes;
}

/// Writes the sources of |specs| into <directory>/model.safetensors.
inline void writeAssemblyCheckpoint(const std::string &directory,
                                    const std::vector<BindingSpec> &specs = assemblySpecs()) {
  std::vector<SourceSpec> sources;
  std::vector<bool> norm;
  for (const BindingSpec &spec : specs) {
    for (const SourceSpec &s : spec.sources) {
      sources.push_back(s);
      norm.push_back(false);
    }
    if (spec.scale) {
      sources.push_back(*spec.scale);
      norm.push_back(true);
    }
  }
  std::vector<std::vector<std::uint8_t>> data;
  std::vector<weights::TensorToWrite> tensors;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    std::uint64_t count = 1;
    std::vector<std::int64_t> shape;
    for (std::uint64_t d : sources[i].shape) {
      count *= d;
      shape.push_back(static_cast<std::int64_t>(d));
    }
    data.push_back(tensorBytes(sources[i].dtype, count, 1000 + i, norm[i]));
    tensors.push_back({sources[i].name, sources[i].dtype, shape, data.back()});
  }
  std::filesystem::create_directories(directory);
  weights::writeSafetensors(directory + "/model.safetensors", tensors);
}

/// The host path's bytes of every bound buffer, by buffer id (assembleWeightBytes).
inline std::map<artifact::BufferId, std::vector<std::uint8_t>>
expectedBytes(const artifact::Artifact &a, const weights::Checkpoint &checkpoint) {
  std::map<artifact::BufferId, std::vector<std::uint8_t>> out;
  for (const artifact::WeightBinding &w : a.weights)
    out[w.buffer] = exec::assembleWeightBytes(a, w, checkpoint);
  return out;
}

/// "" when |actual| equals |expected| byte for byte; else where the first difference is.
inline std::string firstDifference(const artifact::Buffer &buffer,
                                   const std::vector<std::uint8_t> &actual,
                                   const std::vector<std::uint8_t> &expected) {
  if (actual.size() != expected.size())
    return fmt::format("'{}': {} bytes, expected {}", buffer.name, actual.size(), expected.size());
  const std::size_t size = artifact::dtypeSize(buffer.dtype);
  std::size_t differing = 0, first = actual.size();
  for (std::size_t i = 0; i < actual.size(); i += size)
    if (std::memcmp(&actual[i], &expected[i], size) != 0) {
      ++differing;
      first = std::min(first, i);
    }
  if (differing == 0)
    return "";
  std::uint32_t got = 0, want = 0;
  std::memcpy(&got, &actual[first], size);
  std::memcpy(&want, &expected[first], size);
  return fmt::format("'{}': {} of {} elements differ, the first at element {}: 0x{:0{}x}, "
                     "expected 0x{:0{}x}",
                     buffer.name, differing, actual.size() / size, first / size, got, 2 * size,
                     want, 2 * size);
}

} // namespace xlc::test::weight_upload

#endif // XLC_TEST_GPU_HARNESS_WEIGHTUPLOADCASES_H
