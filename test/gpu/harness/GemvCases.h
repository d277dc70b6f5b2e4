//===- GemvCases.h - The decode GEMV against the float64 reference -*- C++ -*-===//
//
// runtime/device/gemv.cuh on a backend of KernelHarness.h (the SIMT emulator in CI, the GPU
// through NVRTC): D = A·Wᵀ (+ bias | + C) on random bf16 A and W (rounded first, so the float64
// reference sees exactly the kernel's inputs), every epilogue, bias and residual element types,
// the residual read from D itself, A rows read in place with a row stride above k, split-K over
// several blocks. Besides the value, every case checks what the contract promises:
//  * only D[0, m·n) is written (D is followed by poisoned elements that must stay poisoned);
//  * the split-K counters are zero again after the launch;
//  * a second launch on the same inputs gives the same bits (the reduction order is fixed; no
//    float atomics), unless the residual is D itself.
// The prologues (RMS norm, SwiGLU) are checked against A formed on the host: rounded to bf16 like
// swiglu.cuh's output, the RMS row scale in float64.
//
// Tolerance (‖D − ref‖ / ‖ref‖): the products of bf16 operands are exact in fp32; the tensor
// cores add each 16-term product into the fp32 accumulator with one error of at most 2⁻²³ of its
// magnitude (truncation on Hopper), so at most k/16 + kWarps + S such errors reach an output:
// tolF32 = 2⁻²³·(k/16 + 48), about 1e-5 at k = 4096 (a wrong index, row or epilogue is O(1)).
// A bf16 output adds one rounding, ≤ 2⁻⁹ relative: KernelCases.h's kTolBf16Out.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_GPU_HARNESS_GEMVCASES_H
#define XLC_TEST_GPU_HARNESS_GEMVCASES_H

#include "KernelCases.h"

#include "xlc/device/gemv.cuh"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace xlc::test {

inline constexpr Family kGemv{"xlc/device/gemv.cuh", "xlc::device::GemvParams",
                              "xlc::device::gemv"};

namespace variants {
// The tilings the runtime instantiates (runtime/exec/cuda/Gemv.cpp gemvTilings(), checked by
// EmulatedGemv.RuntimeAbiAndTilingsAreTheTestedOnes), for bf16 and fp32 outputs:
// <TOut, 16-row tiles per block, warps per block, κ steps per group, groups in flight>.
XLC_VARIANT(GemvBf16R1W4U2, xlc::device::GemvConfig<__nv_bfloat16, 1, 4, 2, 1>);
XLC_VARIANT(GemvBf16R1W4U4, xlc::device::GemvConfig<__nv_bfloat16, 1, 4, 4, 1>);
XLC_VARIANT(GemvBf16R2W4U4, xlc::device::GemvConfig<__nv_bfloat16, 2, 4, 4, 1>);
XLC_VARIANT(GemvBf16R2W8U2, xlc::device::GemvConfig<__nv_bfloat16, 2, 8, 2, 1>);
XLC_VARIANT(GemvBf16R4W4U2, xlc::device::GemvConfig<__nv_bfloat16, 4, 4, 2, 1>);
XLC_VARIANT(GemvBf16R1W8U4, xlc::device::GemvConfig<__nv_bfloat16, 1, 8, 4, 1>);
XLC_VARIANT(GemvBf16R1W4U2S2, xlc::device::GemvConfig<__nv_bfloat16, 1, 4, 2, 2>);
XLC_VARIANT(GemvBf16R1W4U4S2, xlc::device::GemvConfig<__nv_bfloat16, 1, 4, 4, 2>);
XLC_VARIANT(GemvBf16R1W8U2S2, xlc::device::GemvConfig<__nv_bfloat16, 1, 8, 2, 2>);
XLC_VARIANT(GemvBf16R1W8U4S2, xlc::device::GemvConfig<__nv_bfloat16, 1, 8, 4, 2>);
XLC_VARIANT(GemvF32R1W4U2, xlc::device::GemvConfig<float, 1, 4, 2, 1>);
XLC_VARIANT(GemvF32R1W4U4, xlc::device::GemvConfig<float, 1, 4, 4, 1>);
XLC_VARIANT(GemvF32R2W4U4, xlc::device::GemvConfig<float, 2, 4, 4, 1>);
XLC_VARIANT(GemvF32R2W8U2, xlc::device::GemvConfig<float, 2, 8, 2, 1>);
XLC_VARIANT(GemvF32R4W4U2, xlc::device::GemvConfig<float, 4, 4, 2, 1>);
XLC_VARIANT(GemvF32R1W8U4, xlc::device::GemvConfig<float, 1, 8, 4, 1>);
XLC_VARIANT(GemvF32R1W4U2S2, xlc::device::GemvConfig<float, 1, 4, 2, 2>);
XLC_VARIANT(GemvF32R1W4U4S2, xlc::device::GemvConfig<float, 1, 4, 4, 2>);
XLC_VARIANT(GemvF32R1W8U2S2, xlc::device::GemvConfig<float, 1, 8, 2, 2>);
XLC_VARIANT(GemvF32R1W8U4S2, xlc::device::GemvConfig<float, 1, 8, 4, 2>);
} // namespace variants

/// Calls f.template operator()<V>() for each variant V of the runtime's list, bf16 then fp32.
template <class F> void forEachGemvVariant(F &&f) {
  using namespace variants;
  f.template operator()<GemvBf16R1W4U2>();
  f.template operator()<GemvBf16R1W4U4>();
  f.template operator()<GemvBf16R2W4U4>();
  f.template operator()<GemvBf16R2W8U2>();
  f.template operator()<GemvBf16R4W4U2>();
  f.template operator()<GemvBf16R1W8U4>();
  f.template operator()<GemvBf16R1W4U2S2>();
  f.template operator()<GemvBf16R1W4U4S2>();
  f.template operator()<GemvBf16R1W8U2S2>();
  f.template operator()<GemvBf16R1W8U4S2>();
  f.template operator()<GemvF32R1W4U2>();
  f.template operator()<GemvF32R1W4U4>();
  f.template operator()<GemvF32R2W4U4>();
  f.template operator()<GemvF32R2W8U2>();
  f.template operator()<GemvF32R4W4U2>();
  f.template operator()<GemvF32R1W8U4>();
  f.template operator()<GemvF32R1W4U2S2>();
  f.template operator()<GemvF32R1W4U4S2>();
  f.template operator()<GemvF32R1W8U2S2>();
  f.template operator()<GemvF32R1W8U4S2>();
}

struct GemvCase {
  int64_t m = 1, n = 37, k = 96;
  int64_t lda = 0;  ///< row stride of A in elements (0: k); above k reads rows in place
  int64_t split = 1; ///< split-K wish: k_split = 32·⌈⌈k / split⌉ / 32⌉, grid.y = ⌈k / k_split⌉
  device::GemvEpilogue epilogue = device::GemvEpilogue::kNone;
  bool cF32 = false;   ///< bias element type fp32 (else bf16); a residual always has TOut's
  bool inPlace = false; ///< the residual is D itself
  /// kRmsNorm: D = r_i·(A·Wᵀ), r_i = rsqrt(mean A[i]² + eps); kSwiGlu: each row of a holds k
  /// gate values, then (at k + 8, a gap the kernel must skip) k up values.
  device::GemvPrologue prologue = device::GemvPrologue::kNone;
  /// > 0: a second GEMM in the same launch, D2 = A·W2ᵀ + bias2 in fp32 (the i|f gate form).
  int64_t n2 = 0;
  uint64_t seed = 11;
};

/// x·σ(x) in float, as common.cuh computes it.
inline float hostSilu(float x) {
  const float sigmoid = x >= 0.0f ? 1.0f / (1.0f + std::exp(-x)) : std::exp(x) / (1.0f + std::exp(x));
  return x * sigmoid;
}

/// The tolerance of a GEMV output of TOut at reduction length k (see the file comment).
template <class TOut> double gemvTolerance(int64_t k) {
  const double f32 = std::ldexp(1.0, -23) * (static_cast<double>(k) / 16.0 + 48.0);
  return std::is_same_v<TOut, float> ? f32 : kTolBf16Out + f32;
}

template <class Backend, class V>
CaseReport runGemv(Backend &be, const std::string &name, const GemvCase &c) {
  using Config = typename V::Config;
  using TOut = typename Config::TOut;
  using device::GemvEpilogue;
  using device::GemvPrologue;
  const bool swiglu = c.prologue == GemvPrologue::kSwiGlu;
  const int64_t m = c.m, n = c.n, k = c.k;
  const int64_t upOffset = swiglu ? k + 8 : 0;
  const int64_t lda = c.lda > 0 ? c.lda : upOffset + k;
  const int64_t kSplit = ((k + c.split - 1) / c.split + 31) / 32 * 32;
  const int64_t gridY = (k + kSplit - 1) / kSplit;
  const int64_t gridX = (n + Config::kRows - 1) / Config::kRows;
  constexpr int64_t kGuard = 40; // poisoned elements after D
  const bool residual = c.epilogue == GemvEpilogue::kResidual;
  const bool cF32 = residual ? std::is_same_v<TOut, float> : c.cF32;

  HostArray a(DType::BF16, (m - 1) * lda + upOffset + k), w(DType::BF16, n * k);
  fillUniform(a, 1, static_cast<int64_t>(a.size()), c.seed);
  fillUniform(w, n, k, c.seed + 1);
  // The epilogue operand at the scale of the products (√k), so that a wrong one shows.
  const int64_t cCount = residual ? m * n : n;
  HostArray cv(cF32 ? DType::F32 : DType::BF16, cCount);
  fillUniform(cv, 1, cCount, c.seed + 2);
  for (int64_t i = 0; i < cCount; ++i)
    cv.set(i, cv.get(i) * std::sqrt(static_cast<double>(k)));

  auto ab = toDevice(be, a), wb = toDevice(be, w);
  auto cb = toDevice(be, cv);
  // D with a poisoned guard; the in-place residual starts as C.
  HostArray dInit(dtypeOf<TOut>(), m * n + kGuard);
  std::memset(dInit.data(), 0xFF, dInit.bytes());
  if (c.inPlace)
    std::memcpy(dInit.data(), cv.data(), cv.bytes());
  auto db = toDevice(be, dInit);
  const int64_t n2 = c.n2, gridX2 = (n2 + Config::kRows - 1) / Config::kRows;
  HostArray w2(DType::BF16, std::max<int64_t>(n2, 1) * k), bias2(DType::F32, std::max<int64_t>(n2, 1));
  fillUniform(w2, std::max<int64_t>(n2, 1), k, c.seed + 3);
  fillUniform(bias2, 1, std::max<int64_t>(n2, 1), c.seed + 4);
  HostArray d2Init(DType::F32, n2 * m + kGuard);
  std::memset(d2Init.data(), 0xFF, d2Init.bytes());
  auto w2b = toDevice(be, w2), bias2b = toDevice(be, bias2), d2b = toDevice(be, d2Init);
  auto partials = be.alloc(static_cast<size_t>(gridY * m * (n + n2 + 1)) * 4);
  be.fill(partials, 0xFF);
  HostArray counterInit(DType::I64, gridX + gridX2);
  auto counters = toDevice(be, counterInit);

  device::GemvParams p{};
  p.a = ab.pointer();
  p.lda = lda;
  p.w = wb.pointer();
  p.c = c.epilogue == GemvEpilogue::kNone ? nullptr : (c.inPlace ? db.pointer() : cb.pointer());
  p.d = db.pointer();
  p.m = m;
  p.n = n;
  p.k = k;
  p.k_split = kSplit;
  p.epilogue = static_cast<int64_t>(c.epilogue);
  p.c_is_f32 = cF32 ? 1 : 0;
  p.partials = partials.pointer();
  p.counters = counters.pointer();
  p.prologue = static_cast<int64_t>(c.prologue);
  p.a_up_offset = upOffset;
  p.eps = 1e-6;
  if (n2 > 0) {
    p.grid_x1 = gridX;
    p.w2 = w2b.pointer();
    p.c2 = bias2b.pointer();
    p.d2 = d2b.pointer();
    p.n2 = n2;
    p.epilogue2 = static_cast<int64_t>(GemvEpilogue::kBias);
    p.c2_is_f32 = 1;
    p.d2_is_f32 = 1;
  }
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>(gridX + gridX2);
  dims.grid[1] = static_cast<unsigned>(gridY);
  dims.block = Config::kThreads;
  dims.sharedBytes = Config::kSharedBytes;
  be.launch(kGemv, V::kConfig, &device::gemv<Config>, dims, p);
  HostArray d = fromDevice(be, db, dtypeOf<TOut>(), m * n + kGuard);
  HostArray countersAfter = fromDevice(be, counters, DType::I64, gridX + gridX2);
  HostArray d2 = fromDevice(be, d2b, DType::F32, n2 * m + kGuard);

  // float64 reference on the rounded inputs: A as the prologue forms it (kSwiGlu: rounded to
  // bf16 like swiglu.cuh's output; kRmsNorm: the row scale in float64).
  HostArray aFormed(DType::BF16, m * k);
  std::vector<double> rowScale(m, 1.0);
  for (int64_t i = 0; i < m; ++i) {
    double squares = 0.0;
    for (int64_t x = 0; x < k; ++x) {
      const double g = a.get(i * lda + x);
      aFormed.set(i * k + x,
                  swiglu ? hostSilu(static_cast<float>(g)) *
                               static_cast<float>(a.get(i * lda + upOffset + x))
                         : g);
      squares += g * g;
    }
    if (c.prologue == GemvPrologue::kRmsNorm)
      rowScale[i] = 1.0 / std::sqrt(squares / static_cast<double>(k) + 1e-6);
  }
  std::vector<double> ref(m * n), out(m * n);
  parallelFor(n, [&](int64_t j) {
    for (int64_t i = 0; i < m; ++i) {
      double sum = 0.0;
      for (int64_t x = 0; x < k; ++x)
        sum += aFormed.get(i * k + x) * w.get(j * k + x);
      sum *= rowScale[i];
      if (c.epilogue == GemvEpilogue::kBias)
        sum += cv.get(j);
      else if (residual)
        sum += cv.get(i * n + j);
      ref[i * n + j] = sum;
    }
  });
  for (int64_t i = 0; i < m * n; ++i)
    out[i] = d.get(i);
  std::vector<double> ref2(m * n2), out2(m * n2);
  for (int64_t j = 0; j < n2; ++j)
    for (int64_t i = 0; i < m; ++i) {
      double sum = 0.0;
      for (int64_t x = 0; x < k; ++x)
        sum += aFormed.get(i * k + x) * w2.get(j * k + x);
      ref2[i * n2 + j] = sum * rowScale[i] + bias2.get(j);
      out2[i * n2 + j] = d2.get(i * n2 + j);
    }

  CaseReport report{name, Backend::kName, {}, {}};
  // kSwiGlu: host and device expf may differ in the last bit, which can flip the bf16 rounding
  // of an element of A (2⁻⁸ of it): allowed for, far below a wrong index's O(1).
  report.add("D rel err", relativeError(out, ref),
             gemvTolerance<TOut>(k) + (swiglu ? std::ldexp(1.0, -9) : 0.0));
  if (n2 > 0) {
    report.add("D2 rel err", relativeError(out2, ref2),
               gemvTolerance<float>(k) + (swiglu ? std::ldexp(1.0, -9) : 0.0));
    int64_t guard2 = 0;
    for (int64_t i = m * n2; i < m * n2 + kGuard; ++i)
      guard2 += std::memcmp(static_cast<const unsigned char *>(d2.data()) + i * 4,
                            static_cast<const unsigned char *>(d2Init.data()) + i * 4, 4) != 0;
    report.add("elements written past D2", static_cast<double>(guard2), 0.0);
  }
  int64_t guardWritten = 0;
  for (int64_t i = m * n; i < m * n + kGuard; ++i)
    guardWritten += std::memcmp(static_cast<const unsigned char *>(d.data()) + i * sizeof(TOut),
                                static_cast<const unsigned char *>(dInit.data()) + i * sizeof(TOut),
                                sizeof(TOut)) != 0;
  report.add("elements written past D", static_cast<double>(guardWritten), 0.0);
  double countersLeft = 0;
  for (int64_t x = 0; x < gridX + gridX2; ++x)
    countersLeft += countersAfter.get(x) != 0.0;
  report.add("split-K counters left nonzero", countersLeft, 0.0);
  if (!c.inPlace) {
    be.launch(kGemv, V::kConfig, &device::gemv<Config>, dims, p);
    HostArray again = fromDevice(be, db, dtypeOf<TOut>(), m * n);
    report.add("bits differing in a second launch",
               static_cast<double>(std::memcmp(again.data(), d.data(), again.bytes()) != 0), 0.0);
  }
  report.notes.push_back(fmt::format("m {} n {} (+ n2 {}) k {} lda {} grid {}x{} k_split {} "
                                     "prologue {}",
                                     m, n, n2, k, lda, gridX + gridX2, gridY, kSplit,
                                     static_cast<int>(c.prologue)));
  return report;
}

} // namespace xlc::test

#endif // XLC_TEST_GPU_HARNESS_GEMVCASES_H
