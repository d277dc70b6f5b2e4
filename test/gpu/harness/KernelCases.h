//===- KernelCases.h - Every kernel family vs. the float64 reference -*- C++ -*-===//
//
// One function per family: build random inputs (never zeros; gates over realistic ranges including
// soft-capped extremes and an input-gate bias near −10 on some heads), poison every output with
// NaN bit patterns (0xFF bytes), launch on the backend, and compare with runtime/reference by
// ‖out − ref‖ / ‖ref‖ (NaN and unwritten elements never pass). Inputs are first rounded to the
// kernel's dtypes and the reference receives exactly those values, so the metric measures the
// kernel, not input quantisation.
//
// Tolerances (‖out − ref‖/‖ref‖ unless noted), from the precision each output implies:
//  * bf16 output of fp32 math (rms_norm, norm_gate, swiglu): one rounding, every element's
//    relative error ≤ 2⁻⁹ ≈ 1.95e-3, so the norm ratio ≤ 1.95e-3: tolerance 4e-3.
//  * fp32 output (soft_cap, fp32 variants): 1e-5 (a few ulp of fp32 transcendental functions).
//  * embedding: exact copy (0).
//  * mLSTM h (bf16): the numerator goes through up to three bf16 roundings of tensor-core operands
//    (ā⊙v and C in the state kernel/inter term, P = QKᵀ⊙D̄ in the intra term) plus the output
//    rounding, each ≤ 2⁻⁹ relative and independent across terms: tolerance 1e-2 (≈ 5·2⁻⁹).
//  * mLSTM final C (fp32 state): sums of bf16(ā⊙v)-rounded terms: 5e-3. bf16 state: 1e-2.
//    n (fp32 end to end): 1e-4. m (fp32 gate math): max abs 1e-4.
//  * decode h (bf16 out of fp32 math): 4e-3; decode C, n (fp32): 1e-5 (bf16 state: 1e-2).
// Where a metric fails, the report's notes list the worst tokens with the readout's condition
// number (ref::mlstmReadoutCondition), which separates kernel bugs from ill-conditioned tokens.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_GPU_HARNESS_KERNELCASES_H
#define XLC_TEST_GPU_HARNESS_KERNELCASES_H

#include "KernelHarness.h"

#include "runtime/reference/BlockOps.h"
#include "runtime/reference/MlstmCell.h"
#include "runtime/reference/MlstmCellBackward.h"
#include "runtime/reference/Tensor.h"
#include "runtime/train/AdamW.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <thread>

namespace xlc::test {

// Tolerances (see the file comment).
inline constexpr double kTolBf16Out = 4e-3;
inline constexpr double kTolF32Out = 1e-5;
inline constexpr double kTolChunkH = 1e-2;
inline constexpr double kTolChunkC = 5e-3;
inline constexpr double kTolStateBf16 = 1e-2;
inline constexpr double kTolN = 1e-4;
inline constexpr double kTolM = 1e-4;
inline constexpr double kTolDecodeState = 1e-5;

template <class T> constexpr double outputTolerance() {
  return std::is_same_v<T, float> ? kTolF32Out : kTolBf16Out;
}

/// Runs fn(i) for i in [0, n) on all cores.
void parallelFor(int64_t n, const std::function<void(int64_t)> &fn);

/// Fills |a| ([rows, width]) with uniform values on [−√3, √3) (unit variance) from a
/// counter-based generator (splitmix64), rows in parallel: fast enough for the 7B's tensors.
void fillUniform(HostArray &a, int64_t rows, int64_t width, uint64_t seed);

/// Raw gate pre-activations by head, deterministic in |rng|: input gates cycle through the 7B
/// init (bias −10), moderate N(0, 2), soft-cap extremes U(−40, 40) and N(−3, 4); forget gates
/// are linspace(3, 6) over heads plus N(0, 1.5) noise, every 16th token an extreme U(−40, 40),
/// and fast forgetting N(0, 4) on the heads with extreme input gates.
double rawInputGate(ref::Random &rng, int head);
double rawForgetGate(ref::Random &rng, int head, int numHeads, int64_t token);

//===--------------------------------------------------------------------===//
// embedding_backward
//===--------------------------------------------------------------------===//

struct EmbeddingBackwardCase {
  int64_t rows = 11;
  int64_t vocab = 7;            ///< few ids: every id repeats, partitions see several rows
  std::vector<int64_t> badRows; ///< rows given an out-of-range token
  uint64_t seed = 12;
};

/// dtable (fp32, accumulated onto random values) against ref::embeddingBackward: the same
/// additions in the same row order per element, so 1e-6 (only the initial value's addition
/// differs); the error flag names a bad row (any of them) or stays 0.
template <class Backend, class V>
CaseReport runEmbeddingBackward(Backend &be, const std::string &name,
                                const EmbeddingBackwardCase &c) {
  using Config = typename V::Config;
  using T = typename Config::T;
  constexpr int64_t D = Config::kDim;
  ref::Random rng(c.seed);
  std::vector<int32_t> tokens(c.rows);
  std::vector<int64_t> good;
  for (int64_t r = 0; r < c.rows; ++r) {
    tokens[r] = static_cast<int32_t>(rng.uniform(0.0, static_cast<double>(c.vocab)));
    if (std::find(c.badRows.begin(), c.badRows.end(), r) != c.badRows.end())
      tokens[r] = r % 2 ? -1 : static_cast<int32_t>(c.vocab);
  }
  HostArray tok(DType::I32, c.rows), dy(dtypeOf<T>(), c.rows * D), table(DType::F32, c.vocab * D);
  for (int64_t r = 0; r < c.rows; ++r)
    tok.set(r, tokens[r]);
  for (size_t i = 0; i < dy.size(); ++i)
    dy.set(i, rng.normal(0.0, 1.0));
  for (size_t i = 0; i < table.size(); ++i)
    table.set(i, rng.normal(0.0, 0.5));
  auto tb = toDevice(be, tok), db = toDevice(be, dy), out = toDevice(be, table);
  auto error = toDevice(be, HostArray(DType::I64, 1));
  device::EmbeddingBackwardParams p{static_cast<const int32_t *>(tb.pointer()), db.pointer(),
                                    static_cast<float *>(out.pointer()),
                                    static_cast<int64_t *>(error.pointer()), c.rows, c.vocab};
  LaunchDims dims;
  dims.grid[0] = Config::kColBlocks;
  dims.grid[1] = Config::kPartitions;
  dims.block = Config::kThreads;
  be.launch(kEmbeddingBackward, V::kConfig, &device::embedding_backward<Config>, dims, p);
  HostArray got = fromDevice(be, out, DType::F32, c.vocab * D);
  const double flag = fromDevice(be, error, DType::I64, 1).get(0);

  std::vector<double> expected(table.size());
  for (size_t i = 0; i < table.size(); ++i)
    expected[i] = table.get(i);
  for (int64_t r = 0; r < c.rows; ++r)
    if (tokens[r] >= 0 && tokens[r] < c.vocab)
      for (int64_t i = 0; i < D; ++i)
        expected[tokens[r] * D + i] += dy.get(r * D + i);
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("dtable rel err", relativeError(got.values(), expected), 1e-6);
  const bool flagOk = c.badRows.empty()
                          ? flag == 0.0
                          : std::find(c.badRows.begin(), c.badRows.end(),
                                      static_cast<int64_t>(flag) - 1) != c.badRows.end();
  report.add("error flag wrong", flagOk ? 0.0 : 1.0, 0.0);
  return report;
}

//===--------------------------------------------------------------------===//
// column_sum
//===--------------------------------------------------------------------===//

struct ColumnSumCase {
  int64_t rows = 100;
  int64_t offset = 0; ///< column offset of the view
  int64_t stride = 0; ///< row stride of the view (0: the column count)
  uint64_t seed = 21;
};

/// out (fp32, accumulated onto random values) against float64 sums of the view's columns; the
/// other columns of the strided rows must not count; the counter must be left zero.
template <class Backend, class V>
CaseReport runColumnSum(Backend &be, const std::string &name, const ColumnSumCase &c) {
  using Config = typename V::Config;
  using T = typename Config::T;
  constexpr int64_t N = Config::kCols;
  const int64_t stride = c.stride > 0 ? c.stride : N;
  const int64_t blocks = (c.rows + Config::kRowsPerBlock - 1) / Config::kRowsPerBlock;
  ref::Random rng(c.seed);
  HostArray x(dtypeOf<T>(), c.rows * stride + c.offset), out0(DType::F32, N);
  for (size_t i = 0; i < x.size(); ++i)
    x.set(i, rng.normal(0.0, 1.0));
  for (int64_t i = 0; i < N; ++i)
    out0.set(i, rng.normal(0.0, 0.5));
  auto xb = toDevice(be, x), outb = toDevice(be, out0);
  auto counter = toDevice(be, HostArray(DType::I64, 1));
  auto partial = be.alloc(blocks * N * sizeof(float));
  be.fill(partial, 0xFF);
  device::ColumnSumParams p{xb.pointer(), c.offset, stride,
                            static_cast<float *>(partial.pointer()),
                            static_cast<float *>(outb.pointer()),
                            static_cast<int64_t *>(counter.pointer()), c.rows};
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>(blocks);
  dims.block = Config::kThreads;
  be.launch(kColumnSum, V::kConfig, &device::column_sum<Config>, dims, p);
  HostArray out = fromDevice(be, outb, DType::F32, N);
  std::vector<double> expected(N);
  for (int64_t i = 0; i < N; ++i) {
    expected[i] = out0.get(i);
    for (int64_t r = 0; r < c.rows; ++r)
      expected[i] += x.get(r * stride + c.offset + i);
  }
  CaseReport report{name, Backend::kName, {}, {}};
  // fp32 sums of ~rows unit terms in another order than float64's.
  report.add("out rel err", relativeError(out.values(), expected), 1e-5);
  report.add("counter left nonzero", fromDevice(be, counter, DType::I64, 1).get(0), 0.0);
  return report;
}

//===--------------------------------------------------------------------===//
// convert
//===--------------------------------------------------------------------===//

/// A strided view of |rows| rows converted into a contiguous buffer of the other type, against
/// the host's rounding (HostArray stores through the same round-to-nearest-even): every element
/// equal, and the destination's rows past the last untouched.
template <class Backend, class V>
CaseReport runConvert(Backend &be, const std::string &name, int64_t rows, int64_t stride,
                      int64_t offset) {
  using Config = typename V::Config;
  constexpr int64_t N = Config::kCols;
  ref::Random rng(31);
  HostArray x(dtypeOf<typename Config::TIn>(), rows * stride + offset);
  for (size_t i = 0; i < x.size(); ++i)
    x.set(i, rng.normal(0.0, 3.0));
  HostArray want(dtypeOf<typename Config::TOut>(), (rows + 1) * N);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < N; ++i)
      want.set(r * N + i, x.get(r * stride + offset + i));
  HostArray init(dtypeOf<typename Config::TOut>(), (rows + 1) * N);
  for (size_t i = 0; i < init.size(); ++i)
    init.set(i, 7.0); // the row past the last must keep it
  for (int64_t i = 0; i < N; ++i)
    want.set(rows * N + i, 7.0);
  auto xb = toDevice(be, x), yb = toDevice(be, init);
  device::ConvertParams p{xb.pointer(), offset, stride, yb.pointer(), rows};
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>(rows);
  dims.grid[1] = Config::kColBlocks;
  dims.block = Config::kThreads;
  be.launch(kConvert, V::kConfig, &device::convert<Config>, dims, p);
  const std::vector<double> got =
      fromDevice(be, yb, dtypeOf<typename Config::TOut>(), (rows + 1) * N).values();
  double mismatches = 0.0;
  for (size_t i = 0; i < got.size(); ++i)
    mismatches += got[i] != want.get(i);
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("elements not the host's rounding", mismatches, 0.0);
  return report;
}

//===--------------------------------------------------------------------===//
// adamw
//===--------------------------------------------------------------------===//

struct AdamWCase {
  int64_t count = 1000;
  unsigned blocks = 3;  ///< fewer than count needs: the grid-stride loop runs
  int steps = 3;        ///< consecutive updates (t = 1..steps)
  double weightDecay = 0.1;
  uint64_t seed = 14;
};

/// What a |dtype| array of the kernel holds after it stores fp32 |x| at element |i|: bf16 rounded
/// to nearest, or stochastically with AdamW's rounding value of |array| (stochastic_rounding.cuh);
/// fp32 as is.
inline float storedAs(DType dtype, bool stochastic, unsigned int keyA, unsigned int keyB,
                      int array, int64_t i, float x) {
  if (dtype != DType::BF16)
    return x;
  const uint16_t bits =
      stochastic ? device::bf16_bits_stochastic(
                       std::bit_cast<uint32_t>(x),
                       device::adamw_rounding_value(keyA, keyB, array, static_cast<uint64_t>(i)))
                 : bf16Bits(x);
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

/// |steps| updates against the host's train::adamwApply (the same fp32 arithmetic), the host's
/// arrays rounded after each step as the kernel stores them (storedAs: the working weight, the
/// moments when they are bf16), so the comparison is exact up to fp32 contraction: m, v and the
/// fp32 parameter (the master, or the weight itself) to 1e-6 when fp32, 1e-4 when bf16 (an
/// fp32 ulp apart can land on the other side of a rounding step, rarely), a bf16 working weight
/// beside a master to one rounding of it.
template <class Backend, class V>
CaseReport runAdamW(Backend &be, const std::string &name, const AdamWCase &c) {
  using Config = typename V::Config;
  using T = typename Config::T;
  constexpr DType kW = dtypeOf<T>(), kG = dtypeOf<typename Config::G>(),
                  kM = dtypeOf<typename Config::M>();
  constexpr bool kSR = Config::kStochastic;
  const int64_t tensor = 5; // the launch's index in optimizer_step: part of the random key
  ref::Random rng(c.seed);
  std::vector<float> param(c.count), m(c.count, 0.0f), v(c.count, 0.0f);
  HostArray w(kW, c.count), master(DType::F32, c.count), zeros(kM, c.count);
  for (int64_t i = 0; i < c.count; ++i) {
    master.set(i, rng.normal(0.0, 0.05));
    w.set(i, master.get(i));
    param[i] = static_cast<float>(Config::kMaster ? master.get(i) : w.get(i));
  }
  auto wb = toDevice(be, w), mb = toDevice(be, master), m1 = toDevice(be, zeros), v1 = toDevice(be, zeros);
  train::AdamWConfig cfg;
  cfg.weightDecay = c.weightDecay;
  double gradLeft = 0.0;
  for (int t = 1; t <= c.steps; ++t) {
    HostArray g(kG, c.count);
    std::vector<float> grad(c.count);
    for (int64_t i = 0; i < c.count; ++i) {
      g.set(i, rng.normal(0.0, 1.0));
      grad[i] = static_cast<float>(g.get(i));
    }
    auto gb = toDevice(be, g);
    const train::AdamWStep step = train::adamwStep(cfg, t, 1e-3, 0.7f);
    device::AdamWParams p{wb.pointer(),
                          Config::kMaster ? static_cast<float *>(mb.pointer()) : nullptr,
                          gb.pointer(), m1.pointer(), v1.pointer(),
                          c.count, static_cast<int64_t>(t), tensor,
                          step.lr, cfg.beta1, cfg.beta2, cfg.eps, c.weightDecay,
                          step.c1, step.c2, step.gradScale};
    LaunchDims dims;
    dims.grid[0] = c.blocks;
    dims.block = Config::kThreads;
    be.launch(kAdamW, V::kConfig, &device::adamw<Config>, dims, p);
    train::adamwApply(param, grad, m, v, cfg, step, c.weightDecay > 0.0);
    const unsigned int stream = static_cast<unsigned int>(tensor) * 2U;
    const unsigned int keyA = device::rounding_key(t, stream),
                       keyB = device::rounding_key(t, stream + 1U);
    for (int64_t i = 0; i < c.count; ++i) {
      if (!Config::kMaster)
        param[i] = storedAs(kW, kSR, keyA, keyB, 0, i, param[i]);
      m[i] = storedAs(kM, kSR, keyA, keyB, 1, i, m[i]);
      v[i] = storedAs(kM, kSR, keyA, keyB, 2, i, v[i]);
    }
    // The step consumes the gradient: every element left zero.
    double left = 0.0;
    for (double x : fromDevice(be, gb, kG, c.count).values())
      left = std::max(left, std::fabs(x));
    gradLeft = std::max(gradLeft, left);
  }
  auto asDouble = [](const std::vector<float> &f) { return std::vector<double>(f.begin(), f.end()); };
  HostArray gotW = fromDevice(be, wb, kW, c.count);
  HostArray gotP = Config::kMaster ? fromDevice(be, mb, DType::F32, c.count) : gotW;
  const double tolP = gotP.dtype() == DType::BF16 ? 1e-4 : 1e-6;
  const double tolM = kM == DType::BF16 ? 1e-4 : 1e-6;
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("param rel err", relativeError(gotP.values(), asDouble(param)), tolP);
  report.add("m rel err", relativeError(fromDevice(be, m1, kM, c.count).values(), asDouble(m)), tolM);
  report.add("v rel err", relativeError(fromDevice(be, v1, kM, c.count).values(), asDouble(v)), tolM);
  if (Config::kMaster)
    report.add("working weight rel err", relativeError(gotW.values(), asDouble(param)), 4e-3);
  report.add("gradient left (max |g|)", gradLeft, 0.0);
  return report;
}

/// Why the low-memory mode rounds stochastically: bf16 weights of 1.0 (ulp 2⁻⁷ above, 2⁻⁸ below),
/// a constant gradient (so m̂/√v̂ ≈ 1), no decay, lr = 1e-4: every update is ~1/80 of an ulp, and
/// rounding to nearest would leave every weight at 1.0 forever. Stochastically rounded, each
/// weight is 1.0 or 1 − 2⁻⁸ and their mean follows the exact trajectory 1 − steps·lr to within
/// its sampling error (6σ, σ = ½·2⁻⁸/√count). Also: each moment's mean stays within 1e-3 of its
/// fp32 value.
template <class Backend, class V>
CaseReport runAdamWUnbiased(Backend &be, const std::string &name, int64_t count, int steps) {
  using Config = typename V::Config;
  static_assert(Config::kStochastic && !Config::kMaster, "a stochastic, master-less variant");
  using T = typename Config::T;
  constexpr DType kW = dtypeOf<T>(), kG = dtypeOf<typename Config::G>(),
                  kM = dtypeOf<typename Config::M>();
  const double lr = 1e-4, g0 = 0.25;
  HostArray w(kW, count), g(kG, count), zeros(kM, count);
  for (int64_t i = 0; i < count; ++i) {
    w.set(i, 1.0);
    g.set(i, g0);
  }
  auto wb = toDevice(be, w), m1 = toDevice(be, zeros), v1 = toDevice(be, zeros);
  train::AdamWConfig cfg;
  std::vector<float> pRef{1.0f}, mRef{0.0f}, vRef{0.0f};
  for (int t = 1; t <= steps; ++t) {
    auto gb = toDevice(be, g);
    const train::AdamWStep step = train::adamwStep(cfg, t, lr, 1.0f);
    device::AdamWParams p{wb.pointer(), nullptr, gb.pointer(), m1.pointer(), v1.pointer(), count,
                          static_cast<int64_t>(t), 0, step.lr, cfg.beta1, cfg.beta2, cfg.eps,
                          0.0, step.c1, step.c2, step.gradScale};
    LaunchDims dims;
    dims.grid[0] = 4;
    dims.block = Config::kThreads;
    be.launch(kAdamW, V::kConfig, &device::adamw<Config>, dims, p);
    const std::vector<float> grad{static_cast<float>(g0)};
    train::adamwApply(pRef, grad, mRef, vRef, cfg, step, false);
  }
  auto mean = [&](const HostArray &a) {
    double sum = 0.0;
    for (double x : a.values())
      sum += x;
    return sum / static_cast<double>(count);
  };
  const double sigma = 0.5 * std::ldexp(1.0, -8) / std::sqrt(static_cast<double>(count));
  const double drift = 1.0 - pRef[0];
  CaseReport report{name, Backend::kName, {}, {}};
  // Rounding to nearest would leave the mean at 1, drift/σ away: the case tells only if that is
  // far outside the tolerance of 6σ.
  report.add("drift below 20σ (the case would not tell)", drift > 20.0 * sigma ? 0.0 : 1.0, 0.0);
  report.add("|mean w − exact| / σ", std::fabs(mean(fromDevice(be, wb, kW, count)) - pRef[0]) / sigma, 6.0);
  const double mMean = mean(fromDevice(be, m1, kM, count)), vMean = mean(fromDevice(be, v1, kM, count));
  report.add("mean m rel err", std::fabs(mMean - mRef[0]) / mRef[0], 1e-3);
  report.add("mean v rel err", std::fabs(vMean - vRef[0]) / vRef[0], 1e-3);
  return report;
}

//===--------------------------------------------------------------------===//
// grad_norm
//===--------------------------------------------------------------------===//

/// Two tensors' squares summed into one norm_sq (starting at 0.5) against train::globalGradNorm,
/// to fp32 summation accuracy; a second identical run gives the same bits; the counter is left 0.
template <class Backend, class V>
CaseReport runGradNorm(Backend &be, const std::string &name, unsigned blocks) {
  using Config = typename V::Config;
  ref::Random rng(15);
  const int64_t sizes[2] = {5000, 333};
  std::vector<std::vector<float>> host(2);
  std::vector<typename Backend::Buffer> bufs;
  for (int t = 0; t < 2; ++t) {
    HostArray g(dtypeOf<typename Config::G>(), sizes[t]);
    for (int64_t i = 0; i < sizes[t]; ++i) {
      g.set(i, rng.normal(0.0, 1.0));
      host[t].push_back(static_cast<float>(g.get(i)));
    }
    bufs.push_back(toDevice(be, g));
  }
  auto run = [&] {
    HostArray start(DType::F32, 1);
    start.set(0, 0.5);
    auto norm = toDevice(be, start), counter = toDevice(be, HostArray(DType::I64, 1));
    auto partial = be.alloc(blocks * sizeof(float));
    for (int t = 0; t < 2; ++t) {
      device::GradNormParams p{bufs[t].pointer(),
                               static_cast<float *>(partial.pointer()),
                               static_cast<float *>(norm.pointer()),
                               static_cast<int64_t *>(counter.pointer()), sizes[t]};
      LaunchDims dims;
      dims.grid[0] = blocks;
      dims.block = Config::kThreads;
      be.launch(kGradNorm, V::kConfig, &device::grad_norm<Config>, dims, p);
    }
    return std::pair{fromDevice(be, norm, DType::F32, 1).get(0),
                     fromDevice(be, counter, DType::I64, 1).get(0)};
  };
  const auto [first, left] = run();
  const auto [second, unused] = run();
  std::vector<std::span<const float>> spans{host[0], host[1]};
  const double norm = train::globalGradNorm(spans);
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("norm_sq rel err", std::abs(first - (0.5 + norm * norm)) / (0.5 + norm * norm), 1e-5);
  report.add("runs differ", first == second ? 0.0 : 1.0, 0.0);
  report.add("counter left nonzero", left != 0.0 ? 1.0 : 0.0, 0.0);
  return report;
}

//===--------------------------------------------------------------------===//
// cross_entropy
//===--------------------------------------------------------------------===//

struct CrossEntropyCase {
  int64_t rows = 6;
  int64_t vocab = 300;
  double cap = 30.0;           ///< used when the variant is capped
  std::vector<int32_t> targets; ///< empty: random in [0, vocab) with row 1 not counted (−100)
  uint64_t seed = 13;
};

/// dz and the accumulated loss (onto 0.25) against ref::crossEntropy (with ref::softCap and
/// softCapBackward when capped), grad_scale = 1/(counted rows); the counter left zero and the
/// error flag naming a row whose target is ≥ vocab.
template <class Backend, class V>
CaseReport runCrossEntropy(Backend &be, const std::string &name, const CrossEntropyCase &c) {
  using Config = typename V::Config;
  ref::Random rng(c.seed);
  std::vector<int32_t> targets = c.targets;
  if (targets.empty()) {
    for (int64_t r = 0; r < c.rows; ++r)
      targets.push_back(static_cast<int32_t>(rng.uniform(0.0, static_cast<double>(c.vocab))));
    targets[1] = -100;
  }
  int64_t counted = 0, badRow = -1;
  for (int64_t r = 0; r < c.rows; ++r) {
    counted += targets[r] >= 0 && targets[r] < c.vocab;
    if (targets[r] >= c.vocab && badRow < 0)
      badRow = r;
  }
  HostArray z(DType::F32, c.rows * c.vocab), t(DType::I32, c.rows), loss(DType::F32, 1);
  for (size_t i = 0; i < z.size(); ++i)
    z.set(i, rng.normal(0.0, 20.0));
  for (int64_t r = 0; r < c.rows; ++r)
    t.set(r, targets[r]);
  loss.set(0, 0.25);
  auto zb = toDevice(be, z), tb = toDevice(be, t), lb = toDevice(be, loss);
  auto rowsb = be.alloc(c.rows * sizeof(float));
  auto counter = toDevice(be, HostArray(DType::I64, 1)), error = toDevice(be, HostArray(DType::I64, 1));
  const double scale = counted ? 1.0 / static_cast<double>(counted) : 0.0;
  device::CrossEntropyParams p{static_cast<float *>(zb.pointer()),
                               static_cast<const int32_t *>(tb.pointer()),
                               static_cast<float *>(rowsb.pointer()),
                               static_cast<float *>(lb.pointer()),
                               static_cast<int64_t *>(counter.pointer()),
                               static_cast<int64_t *>(error.pointer()),
                               c.rows, c.vocab, c.cap, scale};
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>(c.rows);
  dims.block = Config::kThreads;
  be.launch(kCrossEntropy, V::kConfig, &device::cross_entropy<Config>, dims, p);
  HostArray dz = fromDevice(be, zb, DType::F32, c.rows * c.vocab);
  const double gotLoss = fromDevice(be, lb, DType::F32, 1).get(0);
  const double left = fromDevice(be, counter, DType::I64, 1).get(0);
  const double flag = fromDevice(be, error, DType::I64, 1).get(0);

  ref::Tensor zt({c.rows, c.vocab});
  for (size_t i = 0; i < z.size(); ++i)
    zt.data[i] = z.get(i);
  std::vector<int64_t> t64;
  for (int32_t v : targets)
    t64.push_back(v < c.vocab ? v : -1);
  const ref::Tensor logits = Config::kCapped ? ref::softCap(zt, c.cap) : zt;
  const ref::CrossEntropy ce = ref::crossEntropy(logits, t64);
  const ref::Tensor dzRef = Config::kCapped ? ref::softCapBackward(zt, c.cap, ce.dLogits) : ce.dLogits;
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("dz rel err", relativeError(dz.values(), dzRef.data), 1e-5);
  report.add("loss rel err", std::abs(gotLoss - (0.25 + ce.loss)) / (0.25 + ce.loss), 1e-5);
  report.add("counter left nonzero", left != 0.0 ? 1.0 : 0.0, 0.0);
  report.add("error flag wrong", flag == static_cast<double>(badRow + 1) ? 0.0 : 1.0, 0.0);
  return report;
}

//===--------------------------------------------------------------------===//
// rms_norm
//===--------------------------------------------------------------------===//

struct RmsNormCase {
  int64_t rows = 5;
  int64_t offset = 0; ///< column offset of the input view
  int64_t stride = 0; ///< row stride of the input view (0: kDim)
  bool weight = true;
  double eps = 1e-6;
  uint64_t seed = 1;
};

template <class Backend, class V>
CaseReport runRmsNorm(Backend &be, const std::string &name, const RmsNormCase &c) {
  using Config = typename V::Config;
  using T = typename Config::T;
  constexpr int64_t D = Config::kDim;
  const int64_t stride = c.stride > 0 ? c.stride : D;
  ref::Random rng(c.seed);
  HostArray x(dtypeOf<T>(), c.rows * stride + c.offset), w(dtypeOf<T>(), D);
  for (size_t i = 0; i < x.size(); ++i)
    x.set(i, rng.normal(0.3, 1.5));
  for (int64_t i = 0; i < D; ++i)
    w.set(i, rng.normal(1.0, 0.2));
  auto xb = toDevice(be, x), wb = toDevice(be, w);
  auto yb = be.alloc(c.rows * D * sizeof(T));
  be.fill(yb, 0xFF);
  device::RmsNormParams p{xb.pointer(), c.offset, stride, c.weight ? wb.pointer() : nullptr,
                          yb.pointer(), c.rows, c.eps};
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>(c.rows);
  dims.block = Config::kThreads;
  be.launch(kRmsNorm, V::kConfig, &device::rms_norm<Config>, dims, p);
  HostArray y = fromDevice(be, yb, dtypeOf<T>(), c.rows * D);

  ref::Tensor xt({c.rows, D}), wt({D}, 1.0);
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t i = 0; i < D; ++i)
      xt.at(r, i) = x.get(r * stride + c.offset + i);
  if (c.weight)
    for (int64_t i = 0; i < D; ++i)
      wt.at(i) = w.get(i);
  ref::Tensor yr = ref::rmsNorm(xt, wt, c.eps);
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("y rel err", relativeError(y.values(), yr.data), outputTolerance<T>());
  return report;
}

//===--------------------------------------------------------------------===//
// rms_norm_backward
//===--------------------------------------------------------------------===//

struct RmsNormBackwardCase {
  int64_t rows = 9;   ///< more than one block of rows, so the last-block reduction runs
  int64_t offset = 0; ///< column offset of the input view
  int64_t stride = 0; ///< row stride of the input view (0: kDim)
  bool weight = true;
  bool residual = false; ///< a second gradient added to dx (the residual block's skip path)
  double eps = 1e-6;
  uint64_t seed = 11;
};

/// dx (T) against ref::rmsNormBackward (plus the residual); dw (fp32, accumulated onto random initial values) to
/// kTolF32Out·(rows per block) since its sums are fp32 in a different order; the counter must be
/// left zero.
template <class Backend, class V>
CaseReport runRmsNormBackward(Backend &be, const std::string &name, const RmsNormBackwardCase &c) {
  using Config = typename V::Config;
  using T = typename Config::T;
  constexpr int64_t D = Config::kDim;
  const int64_t stride = c.stride > 0 ? c.stride : D;
  const int64_t blocks = (c.rows + Config::kRowsPerBlock - 1) / Config::kRowsPerBlock;
  ref::Random rng(c.seed);
  HostArray x(dtypeOf<T>(), c.rows * stride + c.offset), w(dtypeOf<T>(), D);
  HostArray dy(dtypeOf<T>(), c.rows * D), dw0(DType::F32, D), res(dtypeOf<T>(), c.rows * D);
  for (size_t i = 0; i < x.size(); ++i)
    x.set(i, rng.normal(0.3, 1.5));
  for (int64_t i = 0; i < D; ++i) {
    w.set(i, rng.normal(1.0, 0.2));
    dw0.set(i, rng.normal(0.0, 0.5));
  }
  for (size_t i = 0; i < dy.size(); ++i)
    dy.set(i, rng.normal(0.0, 1.0));
  for (size_t i = 0; i < res.size(); ++i)
    res.set(i, rng.normal(0.0, 1.0));
  auto xb = toDevice(be, x), wb = toDevice(be, w), dyb = toDevice(be, dy), dwb = toDevice(be, dw0);
  auto resb = toDevice(be, res);
  auto counter = toDevice(be, HostArray(DType::I64, 1));
  auto dxb = be.alloc(c.rows * D * sizeof(T)), partial = be.alloc(blocks * D * sizeof(float));
  be.fill(dxb, 0xFF);
  be.fill(partial, 0xFF);
  device::RmsNormBackwardParams p{xb.pointer(), c.offset, stride,
                                  c.weight ? wb.pointer() : nullptr, dyb.pointer(),
                                  c.residual ? resb.pointer() : nullptr, dxb.pointer(),
                                  c.weight ? static_cast<float *>(partial.pointer()) : nullptr,
                                  c.weight ? static_cast<float *>(dwb.pointer()) : nullptr,
                                  static_cast<int64_t *>(counter.pointer()), c.rows, c.eps};
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>(blocks);
  dims.block = Config::kThreads;
  be.launch(kRmsNormBackward, V::kConfig, &device::rms_norm_backward<Config>, dims, p);
  HostArray dx = fromDevice(be, dxb, dtypeOf<T>(), c.rows * D);
  HostArray dw = fromDevice(be, dwb, DType::F32, D);
  HostArray left = fromDevice(be, counter, DType::I64, 1);

  ref::Tensor xt({c.rows, D}), wt({D}, 1.0), dyt({c.rows, D});
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t i = 0; i < D; ++i) {
      xt.at(r, i) = x.get(r * stride + c.offset + i);
      dyt.at(r, i) = dy.get(r * D + i);
    }
  if (c.weight)
    for (int64_t i = 0; i < D; ++i)
      wt.at(i) = w.get(i);
  ref::NormGrads g = ref::rmsNormBackward(xt, wt, c.eps, dyt);
  if (c.residual)
    for (size_t i = 0; i < g.x.data.size(); ++i)
      g.x.data[i] += res.get(i);
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("dx rel err", relativeError(dx.values(), g.x.data), outputTolerance<T>());
  if (c.weight) {
    std::vector<double> expected(D);
    for (int64_t i = 0; i < D; ++i)
      expected[i] = dw0.get(i) + g.weight.data[i];
    report.add("dw rel err", relativeError(dw.values(), expected), 1e-5);
  } else {
    std::vector<double> untouched(D);
    for (int64_t i = 0; i < D; ++i)
      untouched[i] = dw0.get(i);
    report.add("dw untouched", relativeError(dw.values(), untouched), 0.0);
  }
  report.add("counter left nonzero", left.get(0) != 0.0 ? 1.0 : 0.0, 0.0);
  return report;
}

//===--------------------------------------------------------------------===//
// norm_gate
//===--------------------------------------------------------------------===//

struct NormGateCase {
  int64_t rows = 4;
  int64_t hOffset = 0, hStride = 0; ///< 0: width
  int64_t oOffset = 0, oStride = 0; ///< 0: width
  double eps = 1e-6;
  uint64_t seed = 2;
};

template <class Backend, class V>
CaseReport runNormGate(Backend &be, const std::string &name, const NormGateCase &c) {
  using Config = typename V::Config;
  using T = typename Config::T;
  constexpr int64_t NH = Config::kNumHeads, DV = Config::kHeadDim, W = Config::kWidth;
  const int64_t hStride = c.hStride > 0 ? c.hStride : W, oStride = c.oStride > 0 ? c.oStride : W;
  ref::Random rng(c.seed);
  HostArray h(dtypeOf<T>(), c.rows * hStride + c.hOffset);
  HostArray o(dtypeOf<T>(), c.rows * oStride + c.oOffset), w(dtypeOf<T>(), W);
  for (size_t i = 0; i < h.size(); ++i)
    h.set(i, rng.normal(0.5, 2.0));
  for (size_t i = 0; i < o.size(); ++i)
    o.set(i, rng.normal(0.0, 3.0));
  for (int64_t i = 0; i < W; ++i)
    w.set(i, rng.normal(1.0, 0.3));
  auto hb = toDevice(be, h), ob = toDevice(be, o), wb = toDevice(be, w);
  auto yb = be.alloc(c.rows * W * sizeof(T));
  be.fill(yb, 0xFF);
  device::NormGateParams p{hb.pointer(), c.hOffset, hStride, wb.pointer(), ob.pointer(),
                           c.oOffset,    oStride,   yb.pointer(), c.rows, c.eps};
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>(c.rows);
  dims.block = Config::kThreads;
  be.launch(kNormGate, V::kConfig, &device::norm_gate<Config>, dims, p);
  HostArray y = fromDevice(be, yb, dtypeOf<T>(), c.rows * W);

  ref::Tensor ht({c.rows, W}), ot({c.rows, W}), wt({W});
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t i = 0; i < W; ++i) {
      ht.at(r, i) = h.get(r * hStride + c.hOffset + i);
      ot.at(r, i) = o.get(r * oStride + c.oOffset + i);
    }
  for (int64_t i = 0; i < W; ++i)
    wt.at(i) = w.get(i);
  ref::Tensor yr = ref::outputGate(ot, ref::multiHeadLayerNorm(ht, wt, NH, c.eps));
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("out rel err", relativeError(y.values(), yr.data), outputTolerance<T>());
  (void)DV;
  return report;
}

//===--------------------------------------------------------------------===//
// norm_gate_backward
//===--------------------------------------------------------------------===//

/// h and o as views (o inside a wider q|k|v|o-like row), do written into a destination of that
/// layout; dh, do against the float64 gradients, dw (fp32, accumulated onto random values) to
/// 1e-5, the counter left zero.
template <class Backend, class V>
CaseReport runNormGateBackward(Backend &be, const std::string &name, const NormGateCase &c) {
  using Config = typename V::Config;
  using T = typename Config::T;
  constexpr int64_t NH = Config::kNumHeads, W = Config::kWidth;
  const int64_t hStride = c.hStride > 0 ? c.hStride : W, oStride = c.oStride > 0 ? c.oStride : W;
  const int64_t blocks = (c.rows + Config::kRowsPerBlock - 1) / Config::kRowsPerBlock;
  ref::Random rng(c.seed);
  HostArray h(dtypeOf<T>(), c.rows * hStride + c.hOffset);
  HostArray o(dtypeOf<T>(), c.rows * oStride + c.oOffset), w(dtypeOf<T>(), W);
  HostArray dout(dtypeOf<T>(), c.rows * W), dw0(DType::F32, W);
  for (size_t i = 0; i < h.size(); ++i)
    h.set(i, rng.normal(0.5, 2.0));
  for (size_t i = 0; i < o.size(); ++i)
    o.set(i, rng.normal(0.0, 3.0));
  for (int64_t i = 0; i < W; ++i) {
    w.set(i, rng.normal(1.0, 0.3));
    dw0.set(i, rng.normal(0.0, 0.5));
  }
  for (size_t i = 0; i < dout.size(); ++i)
    dout.set(i, rng.normal(0.0, 1.0));
  auto hb = toDevice(be, h), ob = toDevice(be, o), wb = toDevice(be, w), db = toDevice(be, dout);
  auto dwb = toDevice(be, dw0), counter = toDevice(be, HostArray(DType::I64, 1));
  auto dhb = be.alloc(c.rows * W * sizeof(T)), dob = be.alloc(o.size() * sizeof(T));
  auto partial = be.alloc(blocks * W * sizeof(float));
  be.fill(dhb, 0xFF);
  be.fill(dob, 0xFF);
  device::NormGateBackwardParams p{hb.pointer(),  c.hOffset,    hStride,     wb.pointer(),
                                   ob.pointer(),  c.oOffset,    oStride,     db.pointer(),
                                   dhb.pointer(), dob.pointer(), c.oOffset,  oStride,
                                   static_cast<float *>(partial.pointer()),
                                   static_cast<float *>(dwb.pointer()),
                                   static_cast<int64_t *>(counter.pointer()), c.rows, c.eps};
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>(blocks);
  dims.block = Config::kThreads;
  be.launch(kNormGateBackward, V::kConfig, &device::norm_gate_backward<Config>, dims, p);
  HostArray dh = fromDevice(be, dhb, dtypeOf<T>(), c.rows * W);
  HostArray dO = fromDevice(be, dob, dtypeOf<T>(), o.size());
  HostArray dw = fromDevice(be, dwb, DType::F32, W);
  HostArray left = fromDevice(be, counter, DType::I64, 1);

  ref::Tensor ht({c.rows, W}), ot({c.rows, W}), wt({W}), dt({c.rows, W});
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t i = 0; i < W; ++i) {
      ht.at(r, i) = h.get(r * hStride + c.hOffset + i);
      ot.at(r, i) = o.get(r * oStride + c.oOffset + i);
      dt.at(r, i) = dout.get(r * W + i);
    }
  for (int64_t i = 0; i < W; ++i)
    wt.at(i) = w.get(i);
  const ref::GatedGrads gate = ref::outputGateBackward(ot, ref::multiHeadLayerNorm(ht, wt, NH, c.eps), dt);
  const ref::NormGrads ln = ref::multiHeadLayerNormBackward(ht, wt, NH, c.eps, gate.value);
  std::vector<double> gotDo(c.rows * W), expectedDw(W);
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t i = 0; i < W; ++i)
      gotDo[r * W + i] = dO.get(r * oStride + c.oOffset + i);
  for (int64_t i = 0; i < W; ++i)
    expectedDw[i] = dw0.get(i) + ln.weight.data[i];
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("dh rel err", relativeError(dh.values(), ln.x.data), outputTolerance<T>());
  report.add("do rel err", relativeError(gotDo, gate.gate.data), outputTolerance<T>());
  report.add("dw rel err", relativeError(dw.values(), expectedDw), 1e-5);
  report.add("counter left nonzero", left.get(0) != 0.0 ? 1.0 : 0.0, 0.0);
  return report;
}

//===--------------------------------------------------------------------===//
// swiglu
//===--------------------------------------------------------------------===//

struct SwigluCase {
  int64_t rows = 3;
  int64_t stride = 0;     ///< of the fused [gate | up] buffer (0: 2·kDim)
  int64_t gateOffset = 0;
  int64_t upOffset = -1;  ///< -1: kDim
  uint64_t seed = 3;
};

template <class Backend, class V>
CaseReport runSwiglu(Backend &be, const std::string &name, const SwigluCase &c) {
  using Config = typename V::Config;
  using T = typename Config::T;
  constexpr int64_t D = Config::kDim;
  const int64_t stride = c.stride > 0 ? c.stride : 2 * D;
  const int64_t upOffset = c.upOffset >= 0 ? c.upOffset : D;
  ref::Random rng(c.seed);
  HostArray buf(dtypeOf<T>(), c.rows * stride + std::max(c.gateOffset, upOffset));
  for (size_t i = 0; i < buf.size(); ++i)
    buf.set(i, rng.normal(0.0, 2.5));
  auto bb = toDevice(be, buf);
  auto yb = be.alloc(c.rows * D * sizeof(T));
  be.fill(yb, 0xFF);
  device::SwigluParams p{bb.pointer(), c.gateOffset, stride, bb.pointer(),
                         upOffset,     stride,       yb.pointer(), c.rows};
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>(c.rows);
  dims.grid[1] = Config::kColBlocks;
  dims.block = Config::kThreads;
  be.launch(kSwiglu, V::kConfig, &device::swiglu<Config>, dims, p);
  HostArray y = fromDevice(be, yb, dtypeOf<T>(), c.rows * D);
  ref::Tensor g({c.rows, D}), u({c.rows, D});
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t i = 0; i < D; ++i) {
      g.at(r, i) = buf.get(r * stride + c.gateOffset + i);
      u.at(r, i) = buf.get(r * stride + upOffset + i);
    }
  ref::Tensor yr = ref::swiglu(g, u);
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("out rel err", relativeError(y.values(), yr.data), outputTolerance<T>());
  return report;
}

//===--------------------------------------------------------------------===//
// swiglu_backward
//===--------------------------------------------------------------------===//

/// The forward's fused [gate | up] input and the gradients written into a fused [dgate | dup]
/// destination of the same layout, against ref::swigluBackward; the destination's other columns
/// (a wider stride) must stay untouched.
template <class Backend, class V>
CaseReport runSwigluBackward(Backend &be, const std::string &name, const SwigluCase &c) {
  using Config = typename V::Config;
  using T = typename Config::T;
  constexpr int64_t D = Config::kDim;
  const int64_t stride = c.stride > 0 ? c.stride : 2 * D;
  const int64_t upOffset = c.upOffset >= 0 ? c.upOffset : D;
  ref::Random rng(c.seed);
  HostArray buf(dtypeOf<T>(), c.rows * stride + std::max(c.gateOffset, upOffset));
  HostArray dout(dtypeOf<T>(), c.rows * D), dest(dtypeOf<T>(), buf.size());
  for (size_t i = 0; i < buf.size(); ++i) {
    buf.set(i, rng.normal(0.0, 2.5));
    dest.set(i, 7.0); // sentinel for the columns the kernel must not write
  }
  for (size_t i = 0; i < dout.size(); ++i)
    dout.set(i, rng.normal(0.0, 1.0));
  auto bb = toDevice(be, buf), db = toDevice(be, dout), out = toDevice(be, dest);
  device::SwigluBackwardParams p{bb.pointer(), c.gateOffset, stride,   bb.pointer(),
                                 upOffset,     stride,       db.pointer(), out.pointer(),
                                 c.gateOffset, upOffset,     stride,   c.rows};
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>(c.rows);
  dims.grid[1] = Config::kColBlocks;
  dims.block = Config::kThreads;
  be.launch(kSwigluBackward, V::kConfig, &device::swiglu_backward<Config>, dims, p);
  HostArray got = fromDevice(be, out, dtypeOf<T>(), dest.size());
  ref::Tensor g({c.rows, D}), u({c.rows, D}), dy({c.rows, D});
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t i = 0; i < D; ++i) {
      g.at(r, i) = buf.get(r * stride + c.gateOffset + i);
      u.at(r, i) = buf.get(r * stride + upOffset + i);
      dy.at(r, i) = dout.get(r * D + i);
    }
  ref::GatedGrads ref = ref::swigluBackward(g, u, dy);
  std::vector<double> dg(c.rows * D), du(c.rows * D), refG(ref.gate.data), refU(ref.value.data);
  double untouched = 0.0;
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t i = 0; i < D; ++i) {
      dg[r * D + i] = got.get(r * stride + c.gateOffset + i);
      du[r * D + i] = got.get(r * stride + upOffset + i);
    }
    for (int64_t i = 0; i < stride; ++i) {
      const bool written = (i >= c.gateOffset && i < c.gateOffset + D) ||
                           (i >= upOffset && i < upOffset + D);
      if (!written && got.get(r * stride + i) != 7.0)
        untouched += 1.0;
    }
  }
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("dgate rel err", relativeError(dg, refG), outputTolerance<T>());
  report.add("dup rel err", relativeError(du, refU), outputTolerance<T>());
  report.add("other columns written", untouched, 0.0);
  return report;
}

//===--------------------------------------------------------------------===//
// soft_cap
//===--------------------------------------------------------------------===//

struct SoftCapCase {
  int64_t count = 1000;
  bool misaligned = false; ///< start one element into the buffer (scalar path)
  double cap = 30.0;
  uint64_t seed = 4;
};

template <class Backend, class V>
CaseReport runSoftCap(Backend &be, const std::string &name, const SoftCapCase &c) {
  using Config = typename V::Config;
  using T = typename Config::T;
  const int64_t shift = c.misaligned ? 1 : 0;
  ref::Random rng(c.seed);
  HostArray x(dtypeOf<T>(), c.count + shift);
  for (size_t i = 0; i < x.size(); ++i)
    x.set(i, rng.normal(0.0, 40.0));
  auto xb = toDevice(be, x);
  void *start = static_cast<char *>(xb.pointer()) + shift * sizeof(T);
  device::SoftCapParams p{start, c.count, c.cap};
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>((c.count + Config::kElemsPerBlock - 1) /
                                       Config::kElemsPerBlock);
  dims.block = Config::kThreads;
  be.launch(kSoftCap, V::kConfig, &device::soft_cap<Config>, dims, p);
  HostArray y = fromDevice(be, xb, dtypeOf<T>(), c.count + shift);
  std::vector<double> out, expect;
  for (int64_t i = 0; i < c.count; ++i) {
    out.push_back(y.get(shift + i));
    expect.push_back(ref::softCap(x.get(shift + i), c.cap));
  }
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("x rel err", relativeError(out, expect), outputTolerance<T>());
  if (shift)
    report.add("element before the range untouched", std::abs(y.get(0) - x.get(0)), 0.0);
  return report;
}

//===--------------------------------------------------------------------===//
// embedding
//===--------------------------------------------------------------------===//

struct EmbeddingCase {
  int64_t rows = 6;
  int64_t vocab = 50;
  std::vector<int64_t> badRows; ///< rows whose token is out of range (−1 or vocab + row)
  uint64_t seed = 5;
};

template <class Backend, class V>
CaseReport runEmbedding(Backend &be, const std::string &name, const EmbeddingCase &c) {
  using Config = typename V::Config;
  using T = typename Config::T;
  constexpr int64_t D = Config::kDim;
  ref::Random rng(c.seed);
  HostArray table(dtypeOf<T>(), c.vocab * D), tokens(DType::I32, c.rows), error(DType::I64, 1);
  for (size_t i = 0; i < table.size(); ++i)
    table.set(i, rng.normal(0.0, 1.0));
  std::vector<bool> bad(c.rows, false);
  for (int64_t r : c.badRows)
    bad[r] = true;
  for (int64_t r = 0; r < c.rows; ++r) {
    const int64_t token = static_cast<int64_t>(rng.uniform(0.0, static_cast<double>(c.vocab)));
    tokens.set(r, bad[r] ? (r % 2 == 0 ? -1 : c.vocab + r) : std::min(token, c.vocab - 1));
  }
  auto tb = toDevice(be, table), kb = toDevice(be, tokens), eb = toDevice(be, error);
  auto yb = be.alloc(c.rows * D * sizeof(T));
  be.fill(yb, 0xFF);
  device::EmbeddingParams p{static_cast<const int32_t *>(kb.pointer()), tb.pointer(), yb.pointer(),
                            static_cast<int64_t *>(eb.pointer()), c.rows, c.vocab};
  LaunchDims dims;
  dims.grid[0] = static_cast<unsigned>(c.rows);
  dims.block = Config::kThreads;
  be.launch(kEmbedding, V::kConfig, &device::embedding<Config>, dims, p);
  HostArray y = fromDevice(be, yb, dtypeOf<T>(), c.rows * D);
  HostArray flag = fromDevice(be, eb, DType::I64, 1);
  std::vector<double> good, goodRef;
  double badMax = 0.0;
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t i = 0; i < D; ++i) {
      const double v = y.get(r * D + i);
      if (bad[r]) {
        badMax = std::isfinite(v) ? std::max(badMax, std::abs(v)) : INFINITY;
      } else {
        good.push_back(v);
        goodRef.push_back(table.get(static_cast<int64_t>(tokens.get(r)) * D + i));
      }
    }
  const int64_t flagged = static_cast<int64_t>(flag.get(0));
  const bool flagOk = c.badRows.empty()
                          ? flagged == 0
                          : (flagged >= 1 && flagged <= c.rows && bad[flagged - 1]);
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("valid rows rel err (exact copy)", good.empty() ? 0.0 : relativeError(good, goodRef),
             0.0);
  report.add("out-of-range rows max |value|", badMax, 0.0);
  report.add("error flag wrong (0 = right)", flagOk ? 0.0 : 1.0, 0.0);
  report.notes.push_back(fmt::format("error flag = {}", flagged));
  return report;
}

//===--------------------------------------------------------------------===//
// mLSTM: shared input generation and reference
//===--------------------------------------------------------------------===//

/// Inputs of the mLSTM kernels on the model's fused layout: qkvo [rows, 2·NH·DQK + 2·NH·DV]
/// (q | k | v | o, o unused here) and gates [rows, 2·NH] (i | f, raw pre-activations).
struct MlstmInputs {
  int64_t rows = 0, width = 0, qOffset = 0, kOffset = 0, vOffset = 0;
  HostArray qkvo, gates;
  /// [rows] or empty: nonzero where the token of a row starts a document (its forget gate is
  /// overridden after the cap: kResetForgetGate, mlstm_cell.cuh).
  std::vector<uint8_t> resets;
};

/// Flags |rows| (b·seq + t) of |in| as document starts.
inline void setResets(MlstmInputs &in, const std::vector<int64_t> &rows) {
  if (rows.empty())
    return;
  in.resets.assign(static_cast<size_t>(in.rows), 0);
  for (int64_t r : rows)
    in.resets.at(static_cast<size_t>(r)) = 1;
}

/// The views of a params struct over |in|'s fused buffers: q, k (and v, the gates when the
/// struct has them) in q|k|v|o of row stride |in.width|, i and f in i|f of row stride 2·|nh|.
template <class P>
void setMlstmViews(P &p, const MlstmInputs &in, void *qkvo, void *gates, int64_t nh) {
  p.q = qkvo;
  p.q_offset = in.qOffset;
  p.q_stride = in.width;
  p.k = qkvo;
  p.k_offset = in.kOffset;
  p.k_stride = in.width;
  if constexpr (requires { p.v; }) {
    p.v = qkvo;
    p.v_offset = in.vOffset;
    p.v_stride = in.width;
  }
  if constexpr (requires { p.igate; }) {
    p.igate = gates;
    p.i_offset = 0;
    p.i_stride = 2 * nh;
    p.fgate = gates;
    p.f_offset = nh;
    p.f_stride = 2 * nh;
  }
}

template <class Cell> MlstmInputs makeMlstmInputs(ref::Random &rng, int64_t rows, int64_t seq) {
  constexpr int64_t NH = Cell::kNumHeads, DQK = Cell::kDQK, DV = Cell::kDV;
  MlstmInputs in;
  in.rows = rows;
  in.width = 2 * NH * DQK + 2 * NH * DV;
  in.qOffset = 0;
  in.kOffset = NH * DQK;
  in.vOffset = 2 * NH * DQK;
  in.qkvo = HostArray(dtypeOf<typename Cell::T>(), rows * in.width);
  in.gates = HostArray(dtypeOf<typename Cell::TGate>(), rows * 2 * NH);
  for (size_t i = 0; i < in.qkvo.size(); ++i)
    in.qkvo.set(i, rng.normal(0.0, 1.0));
  for (int64_t r = 0; r < rows; ++r)
    for (int hd = 0; hd < NH; ++hd) {
      in.gates.set(r * 2 * NH + hd, rawInputGate(rng, hd));
      in.gates.set(r * 2 * NH + NH + hd, rawForgetGate(rng, hd, NH, seq > 0 ? r % seq : r));
    }
  return in;
}

/// Stabilised states (C of TState; n, m fp32), random or zero.
struct MlstmStateArrays {
  HostArray C, n, m;
};

template <class Cell>
MlstmStateArrays makeMlstmState(ref::Random &rng, int64_t batch, bool random) {
  constexpr int64_t NH = Cell::kNumHeads, DQK = Cell::kDQK, DV = Cell::kDV;
  MlstmStateArrays s{HostArray(dtypeOf<typename Cell::TState>(), batch * NH * DQK * DV),
                     HostArray(DType::F32, batch * NH * DQK), HostArray(DType::F32, batch * NH)};
  if (random) {
    for (size_t i = 0; i < s.C.size(); ++i)
      s.C.set(i, rng.normal(0.0, 0.5));
    for (size_t i = 0; i < s.n.size(); ++i)
      s.n.set(i, rng.normal(0.0, 1.0));
    for (size_t i = 0; i < s.m.size(); ++i)
      s.m.set(i, rng.uniform(-2.0, 2.0));
  }
  return s;
}

template <class Cell> ref::MlstmCellAttrs mlstmAttrs(double eps) {
  ref::MlstmCellAttrs attrs;
  attrs.eps = eps;
  attrs.inputGate = Cell::kInputGate == device::InputGate::kSigmoid ? ref::InputGate::Sigmoid
                                                                     : ref::InputGate::Exp;
  attrs.normalizer = Cell::kNormalizer == device::Normalizer::kNone ? ref::Normalizer::None
                                                                     : ref::Normalizer::MaxAbs;
  return attrs;
}

/// The per-head tensors of (b, hd) for tokens [0, seq) of rows b·seq + t.
struct HeadInputs {
  ref::Tensor q, k, v, iPre, fPre;
};

template <class Cell>
HeadInputs headInputs(const MlstmInputs &in, int64_t b, int hd, int64_t seq, double cap) {
  constexpr int64_t NH = Cell::kNumHeads, DQK = Cell::kDQK, DV = Cell::kDV;
  HeadInputs h{ref::Tensor({seq, DQK}), ref::Tensor({seq, DQK}), ref::Tensor({seq, DV}),
               ref::Tensor({seq}), ref::Tensor({seq})};
  for (int64_t t = 0; t < seq; ++t) {
    const int64_t row = b * seq + t;
    for (int64_t d = 0; d < DQK; ++d) {
      h.q.at(t, d) = in.qkvo.get(row * in.width + in.qOffset + hd * DQK + d);
      h.k.at(t, d) = in.qkvo.get(row * in.width + in.kOffset + hd * DQK + d);
    }
    for (int64_t e = 0; e < DV; ++e)
      h.v.at(t, e) = in.qkvo.get(row * in.width + in.vOffset + hd * DV + e);
    const double i = in.gates.get(row * 2 * NH + hd), f = in.gates.get(row * 2 * NH + NH + hd);
    h.iPre.at(t) = cap > 0 ? ref::softCap(i, cap) : i;
    h.fPre.at(t) = cap > 0 ? ref::softCap(f, cap) : f;
    if (!in.resets.empty() && in.resets[row])
      h.fPre.at(t) = ref::kResetForgetGate;
  }
  return h;
}

template <class Cell>
ref::MlstmHeadState headState(const MlstmStateArrays &s, int64_t bh) {
  constexpr int64_t DQK = Cell::kDQK, DV = Cell::kDV;
  ref::MlstmHeadState st = ref::MlstmHeadState::zeros(DQK, DV);
  for (int64_t i = 0; i < DQK * DV; ++i)
    st.C.data[i] = s.C.get(bh * DQK * DV + i);
  for (int64_t i = 0; i < DQK; ++i)
    st.n.data[i] = s.n.get(bh * DQK + i);
  st.m = s.m.get(bh);
  return st;
}

//===--------------------------------------------------------------------===//
// mlstm_chunkwise (kernel A then kernel B)
//===--------------------------------------------------------------------===//

struct ChunkwiseCase {
  int64_t batch = 1;
  int64_t seq = 16;
  bool initialState = true;
  std::vector<int64_t> resets; ///< rows b·seq + t that start a document (two-kernel form only)
  double cap = 15.0;
  double eps = 1e-6;
  uint64_t seed = 7;
};

/// The device buffers and launch geometry of one chunkwise forward (also used by the benchmark).
template <class Backend, class VA, class VB> struct ChunkwiseRun {
  using ConfigA = typename VA::Config;
  using ConfigB = typename VB::Config;
  using Cell = typename ConfigA::Cell;
  static_assert(std::is_same_v<Cell, typename ConfigB::Cell>, "kernels A and B: same cell");
  static_assert(ConfigA::kChunk == ConfigB::kChunk, "kernels A and B: same chunk size");
  static constexpr int64_t NH = Cell::kNumHeads, DQK = Cell::kDQK, DV = Cell::kDV;
  static constexpr int64_t L = ConfigA::kChunk;

  int64_t batch, seq, chunks;
  typename Backend::Buffer qkvo, gates, C, n, m, wsC, wsN, wsM, h, resets;
  device::MlstmChunkwiseParams params{};
  LaunchDims dimsA, dimsB;

  ChunkwiseRun(Backend &be, const MlstmInputs &in, const MlstmStateArrays &state, int64_t batch,
               int64_t seq, double cap, double eps)
      : batch(batch), seq(seq), chunks((seq + L - 1) / L) {
    qkvo = toDevice(be, in.qkvo);
    gates = toDevice(be, in.gates);
    C = toDevice(be, state.C);
    n = toDevice(be, state.n);
    m = toDevice(be, state.m);
    const int64_t slots = batch * NH * (chunks + 1);
    wsC = be.alloc(slots * DQK * DV * sizeof(typename Cell::T)); // chunk-start C in T
    wsN = be.alloc(slots * DQK * sizeof(float));
    wsM = be.alloc(slots * sizeof(float));
    h = be.alloc(batch * seq * NH * DV * sizeof(typename Cell::T));
    poison(be);
    auto &p = params;
    setMlstmViews(p, in, qkvo.pointer(), gates.pointer(), NH);
    p.C = C.pointer();
    p.n = static_cast<float *>(n.pointer());
    p.m = static_cast<float *>(m.pointer());
    p.ws_C = wsC.pointer();
    p.ws_n = static_cast<float *>(wsN.pointer());
    p.ws_m = static_cast<float *>(wsM.pointer());
    p.h = h.pointer();
    if (!in.resets.empty()) {
      resets = be.alloc(in.resets.size());
      be.upload(resets, in.resets.data(), in.resets.size());
      p.resets = static_cast<const uint8_t *>(resets.pointer());
    }
    p.batch = batch;
    p.seq_len = seq;
    p.eps = eps;
    p.gate_soft_cap = cap;
    dimsA.grid[0] = ConfigA::kTiles;
    dimsA.grid[1] = static_cast<unsigned>(batch * NH);
    dimsA.block = ConfigA::kThreads;
    dimsA.sharedBytes = ConfigA::kSharedBytes;
    dimsB.grid[0] = ConfigB::kTilesV;
    dimsB.grid[1] = static_cast<unsigned>((seq + ConfigB::kBlockL - 1) / ConfigB::kBlockL);
    dimsB.grid[2] = static_cast<unsigned>(batch * NH);
    dimsB.block = ConfigB::kThreads;
    dimsB.sharedBytes = ConfigB::kSharedBytes;
  }

  /// NaN bytes in everything the kernels write.
  void poison(Backend &be) {
    be.fill(wsC, 0xFF);
    be.fill(wsN, 0xFF);
    be.fill(wsM, 0xFF);
    be.fill(h, 0xFF);
  }

  /// The chunk-state workspace (B·NH·(NC+1) states of T).
  double workspaceBytes() const {
    return static_cast<double>(batch * NH * (chunks + 1) * DQK * DV * sizeof(typename Cell::T));
  }

  void launch(Backend &be) {
    be.launch(kChunkStates, VA::kConfig, &device::mlstm_chunk_states<ConfigA>, dimsA, params);
    be.launch(kChunkOutputs, VB::kConfig, &device::mlstm_chunk_outputs<ConfigB>, dimsB, params);
  }
};

/// The device buffers and launch geometry of one fused chunkwise forward (mlstm_chunk_scores,
/// then the mlstm_chunk_fused state pass over its records; also used by the benchmark).
template <class Backend, class V> struct ChunkFusedRun {
  using Config = typename V::Config;
  using Cell = typename Config::Cell;
  using ScoresConfig = device::MlstmChunkScoresConfig<Cell, Config::kChunk>;
  using Record = typename Config::Record;
  static constexpr int64_t NH = Cell::kNumHeads, DQK = Cell::kDQK, DV = Cell::kDV;
  static constexpr int64_t L = Config::kChunk;

  int64_t batch, seq, chunks;
  std::string scoresConfig = scoresConfigOf(V::kConfig);
  typename Backend::Buffer qkvo, gates, C, n, m, counters, wsP, wsG, h;
  device::MlstmChunkScoresParams scoresParams{};
  device::MlstmChunkFusedParams params{};
  LaunchDims scoresDims, dims;

  ChunkFusedRun(Backend &be, const MlstmInputs &in, const MlstmStateArrays &state, int64_t batch,
                int64_t seq, double cap, double eps)
      : batch(batch), seq(seq), chunks((seq + L - 1) / L) {
    if (!in.resets.empty()) // the fused form serves prefill, which has no document resets
      throw std::invalid_argument("ChunkFusedRun: the fused form takes no document resets");
    qkvo = toDevice(be, in.qkvo);
    gates = toDevice(be, in.gates);
    C = toDevice(be, state.C);
    n = toDevice(be, state.n);
    m = toDevice(be, state.m);
    counters = toDevice(be, HostArray(DType::I64, batch * NH)); // zero, as the runtime's duty
    const int64_t records = batch * NH * chunks;
    wsP = be.alloc(records * Record::kP * sizeof(__nv_bfloat16));
    wsG = be.alloc(records * Record::kG * sizeof(float));
    h = be.alloc(batch * seq * NH * DV * sizeof(typename Cell::T));
    // NaN bytes in everything the kernels write (the scores kernel writes whole records).
    be.fill(wsP, 0xFF);
    be.fill(wsG, 0xFF);
    be.fill(h, 0xFF);
    auto &s = scoresParams;
    setMlstmViews(s, in, qkvo.pointer(), gates.pointer(), NH);
    s.ws_p = wsP.pointer();
    s.ws_g = static_cast<float *>(wsG.pointer());
    s.batch = batch;
    s.seq_len = seq;
    s.gate_soft_cap = cap;
    auto &p = params;
    setMlstmViews(p, in, qkvo.pointer(), gates.pointer(), NH);
    p.ws_p = wsP.pointer();
    p.ws_g = static_cast<const float *>(wsG.pointer());
    p.C = C.pointer();
    p.n = static_cast<float *>(n.pointer());
    p.m = static_cast<float *>(m.pointer());
    p.counters = static_cast<int64_t *>(counters.pointer());
    p.h = h.pointer();
    p.batch = batch;
    p.seq_len = seq;
    p.eps = eps;
    scoresDims.grid[0] = static_cast<unsigned>(chunks);
    scoresDims.grid[1] = static_cast<unsigned>(batch * NH);
    scoresDims.block = ScoresConfig::kThreads;
    scoresDims.sharedBytes = ScoresConfig::kSharedBytes;
    dims.grid[0] = Config::kTilesV;
    dims.grid[1] = static_cast<unsigned>(batch * NH);
    dims.block = Config::kThreads;
    dims.sharedBytes = Config::kSharedBytes;
  }

  /// The scores' records (P̃ and the gate vectors of every chunk).
  double workspaceBytes() const {
    return static_cast<double>(batch * NH * chunks * (Record::kP * 2 + Record::kG * 4));
  }

  void launch(Backend &be) {
    be.launch(kChunkScores, scoresConfig.c_str(), &device::mlstm_chunk_scores<ScoresConfig>,
              scoresDims, scoresParams);
    be.launch(kChunkFused, V::kConfig, &device::mlstm_chunk_fused<Config>, dims, params);
  }
};

/// Per-head reference results of the recurrent form (the definition).
struct MlstmReference {
  std::vector<double> h, C, n, m;
};

template <class Cell>
MlstmReference chunkwiseReference(const MlstmInputs &in, const MlstmStateArrays &state,
                                  int64_t batch, int64_t seq, double cap, double eps) {
  constexpr int64_t NH = Cell::kNumHeads, DQK = Cell::kDQK, DV = Cell::kDV;
  MlstmReference r;
  r.h.assign(batch * seq * NH * DV, 0.0);
  r.C.assign(batch * NH * DQK * DV, 0.0);
  r.n.assign(batch * NH * DQK, 0.0);
  r.m.assign(batch * NH, 0.0);
  const ref::MlstmCellAttrs attrs = mlstmAttrs<Cell>(eps);
  parallelFor(batch * NH, [&](int64_t bh) {
    const int64_t b = bh / NH;
    const int hd = static_cast<int>(bh % NH);
    HeadInputs x = headInputs<Cell>(in, b, hd, seq, cap);
    ref::MlstmHeadState init = headState<Cell>(state, bh);
    ref::MlstmHeadResult res = ref::mlstmRecurrent(x.q, x.k, x.v, x.iPre, x.fPre, &init, attrs);
    for (int64_t t = 0; t < seq; ++t)
      for (int64_t e = 0; e < DV; ++e)
        r.h[(b * seq + t) * NH * DV + hd * DV + e] = res.h.at(t, e);
    std::copy(res.state.C.data.begin(), res.state.C.data.end(), r.C.begin() + bh * DQK * DV);
    std::copy(res.state.n.data.begin(), res.state.n.data.end(), r.n.begin() + bh * DQK);
    r.m[bh] = res.state.m;
  });
  return r;
}

/// Notes naming the |count| tokens with the largest relative error of h, with their readout
/// condition numbers (only computed when a metric failed).
template <class Cell>
std::vector<std::string> worstTokens(const MlstmInputs &in, const MlstmStateArrays &state,
                                     const std::vector<double> &h, const std::vector<double> &hRef,
                                     int64_t batch, int64_t seq, double cap, double eps,
                                     int count = 6) {
  constexpr int64_t NH = Cell::kNumHeads, DV = Cell::kDV;
  struct Token {
    double err;
    int64_t b, t;
    int hd;
  };
  std::vector<Token> tokens;
  for (int64_t b = 0; b < batch; ++b)
    for (int hd = 0; hd < NH; ++hd)
      for (int64_t t = 0; t < seq; ++t) {
        const int64_t base = (b * seq + t) * NH * DV + hd * DV;
        std::vector<double> o(h.begin() + base, h.begin() + base + DV);
        std::vector<double> r(hRef.begin() + base, hRef.begin() + base + DV);
        tokens.push_back({relativeError(o, r), b, t, hd});
      }
  std::partial_sort(tokens.begin(), tokens.begin() + std::min<size_t>(count, tokens.size()),
                    tokens.end(), [](const Token &a, const Token &b) { return a.err > b.err; });
  std::vector<std::string> notes;
  const ref::MlstmCellAttrs attrs = mlstmAttrs<Cell>(eps);
  for (int i = 0; i < count && i < static_cast<int>(tokens.size()); ++i) {
    const Token &tk = tokens[i];
    HeadInputs x = headInputs<Cell>(in, tk.b, tk.hd, seq, cap);
    ref::MlstmHeadState init = headState<Cell>(state, tk.b * NH + tk.hd);
    ref::Tensor cond = ref::mlstmReadoutCondition(x.q, x.k, x.v, x.iPre, x.fPre, &init, attrs);
    notes.push_back(fmt::format("token b={} head={} t={}: rel err {:.3e}, readout condition {:.3e}",
                                tk.b, tk.hd, tk.t, tk.err, cond.at(tk.t)));
  }
  return notes;
}

/// Runs one chunkwise forward (either form: |Run| is ChunkwiseRun or ChunkFusedRun) and checks
/// h and the final state against the float64 recurrent form.
template <class Run, class Backend>
CaseReport runChunkwiseWith(Backend &be, const std::string &name, const ChunkwiseCase &c) {
  using Cell = typename Run::Cell;
  constexpr bool kBf16State = std::is_same_v<typename Cell::TState, __nv_bfloat16>;
  ref::Random rng(c.seed);
  MlstmInputs in = makeMlstmInputs<Cell>(rng, c.batch * c.seq, c.seq);
  setResets(in, c.resets);
  MlstmStateArrays state = makeMlstmState<Cell>(rng, c.batch, c.initialState);
  Run run(be, in, state, c.batch, c.seq, c.cap, c.eps);
  run.launch(be);

  HostArray h = fromDevice(be, run.h, dtypeOf<typename Cell::T>(), c.batch * c.seq * Run::NH * Run::DV);
  HostArray C = fromDevice(be, run.C, state.C.dtype(), state.C.size());
  HostArray n = fromDevice(be, run.n, DType::F32, state.n.size());
  HostArray m = fromDevice(be, run.m, DType::F32, state.m.size());
  MlstmReference r = chunkwiseReference<Cell>(in, state, c.batch, c.seq, c.cap, c.eps);

  CaseReport report{name, Backend::kName, {}, {}};
  const std::vector<double> hv = h.values();
  report.add("h rel err", relativeError(hv, r.h), kTolChunkH);
  report.add("final C rel err", relativeError(C.values(), r.C), kBf16State ? kTolStateBf16 : kTolChunkC);
  report.add("final n rel err", relativeError(n.values(), r.n), kTolN);
  report.add("final m max abs err", maxAbsError(m.values(), r.m), kTolM);
  if (!report.ok())
    report.notes = worstTokens<Cell>(in, state, hv, r.h, c.batch, c.seq, c.cap, c.eps);
  return report;
}

template <class Backend, class VA, class VB>
CaseReport runChunkwise(Backend &be, const std::string &name, const ChunkwiseCase &c) {
  return runChunkwiseWith<ChunkwiseRun<Backend, VA, VB>>(be, name, c);
}

template <class Backend, class V>
CaseReport runChunkFused(Backend &be, const std::string &name, const ChunkwiseCase &c) {
  return runChunkwiseWith<ChunkFusedRun<Backend, V>>(be, name, c);
}

//===--------------------------------------------------------------------===//
// mlstm backward (readout, state gradient, per-chunk gradients, gates) after the forward
//===--------------------------------------------------------------------===//

struct MlstmBackwardCase {
  int64_t batch = 2;
  int64_t seq = 37;
  bool initialState = false; ///< training starts from the zero state; a random one also works
  std::vector<int64_t> resets; ///< rows b·seq + t that start a document
  double cap = 15.0;
  double eps = 1e-6;
  uint64_t seed = 31;
};

/// bf16 q, k, v, h, δh and gradients (fp32 gates where the cell has them): the gradient is a
/// product of factors each rounded once to bf16 (the saved chunk-start C and h, the outputs),
/// and δq, δk go through the readout's conditioning (the emulator measures up to 1.7e-2 with
/// uncapped gates, 2e-3 to 1e-2 elsewhere; δv at most 2.6e-3; δĩ at most 7e-3; δf̃ from 1.6e-3 to
/// 1.3e-2 over the seeds tried, the largest at seed 43 with and without document resets alike).
/// Dropping the denominator's gradient fails every quantity but δv by 50x; dropping the routing
/// of the token stabilisers' gradient fails δf̃ of the uncapped and no-normaliser cases.
inline constexpr double kTolBackwardQK = 2e-2;
inline constexpr double kTolBackwardV = 5e-3;
inline constexpr double kTolBackwardGates = 2e-2;

/// The device buffers and launches of the four backward kernels over a forward's saved state.
template <class Backend, class VG> struct BackwardRun {
  using Config = typename VG::Config;
  using Cell = typename Config::Cell;
  static constexpr int64_t NH = Cell::kNumHeads, DQK = Cell::kDQK, DV = Cell::kDV;
  static constexpr int64_t L = Config::kChunk;
  int64_t batch, seq, chunks;
  typename Backend::Buffer dh, dqkvo, dgates, wsTok, wsDC, wsDN, wsGate, wsChunk;
  device::MlstmChunkBackwardParams params{};
  LaunchDims dimsR, dimsS, dimsP, dimsG;

  template <class Forward>
  BackwardRun(Backend &be, const MlstmInputs &in, const Forward &fwd, const HostArray &dhHost,
              int64_t batch, int64_t seq, double cap, double eps)
      : batch(batch), seq(seq), chunks((seq + L - 1) / L) {
    const int64_t pairs = batch * NH, rows = batch * seq;
    dh = toDevice(be, dhHost);
    dqkvo = be.alloc(rows * in.width * sizeof(typename Cell::T));
    dgates = be.alloc(rows * 2 * NH * sizeof(typename Cell::TGate));
    be.fill(dqkvo, 0xFF);
    be.fill(dgates, 0xFF);
    wsTok = be.alloc(pairs * seq * 4 * sizeof(float));
    wsDC = be.alloc(pairs * chunks * DQK * DV * sizeof(float));
    wsDN = be.alloc(pairs * chunks * DQK * sizeof(float));
    wsGate = be.alloc(pairs * seq * 4 * sizeof(float));
    wsChunk = be.alloc(pairs * chunks * 8 * sizeof(float));
    for (auto *w : {&wsTok, &wsDC, &wsDN, &wsGate, &wsChunk})
      be.fill(*w, 0xFF);
    auto &p = params;
    setMlstmViews(p, in, fwd.qkvo.pointer(), fwd.gates.pointer(), NH);
    p.resets = fwd.params.resets;
    p.ws_C = fwd.wsC.pointer();
    p.ws_n = static_cast<const float *>(fwd.wsN.pointer());
    p.ws_m = static_cast<const float *>(fwd.wsM.pointer());
    p.h = fwd.h.pointer();
    p.dh = dh.pointer();
    p.dq = dqkvo.pointer();
    p.dq_offset = in.qOffset;
    p.dq_stride = in.width;
    p.dk = dqkvo.pointer();
    p.dk_offset = in.kOffset;
    p.dk_stride = in.width;
    p.dv = dqkvo.pointer();
    p.dv_offset = in.vOffset;
    p.dv_stride = in.width;
    p.di = dgates.pointer();
    p.di_offset = 0;
    p.di_stride = 2 * NH;
    p.df = dgates.pointer();
    p.df_offset = NH;
    p.df_stride = 2 * NH;
    p.ws_tok = static_cast<float *>(wsTok.pointer());
    p.ws_dC = static_cast<float *>(wsDC.pointer());
    p.ws_dn = static_cast<float *>(wsDN.pointer());
    p.ws_gate = static_cast<float *>(wsGate.pointer());
    p.ws_chunk = static_cast<float *>(wsChunk.pointer());
    p.batch = batch;
    p.seq_len = seq;
    p.eps = eps;
    p.gate_soft_cap = cap;
    const auto bh = static_cast<unsigned>(pairs), nc = static_cast<unsigned>(chunks);
    dimsR.grid[0] = nc, dimsR.grid[1] = bh, dimsR.block = Config::kThreads;
    dimsR.sharedBytes = Config::kReadoutBytes;
    dimsS.grid[0] = Config::kTiles, dimsS.grid[1] = bh, dimsS.block = Config::kThreads;
    dimsS.sharedBytes = Config::kStatesBytes;
    dimsP.grid[0] = nc, dimsP.grid[1] = bh, dimsP.block = Config::kThreads;
    dimsP.sharedBytes = Config::kSharedBytes;
    dimsG.grid[0] = bh, dimsG.block = Config::kThreads;
    dimsG.sharedBytes = Config::kGatesBytes;
  }

  void launch(Backend &be) {
    be.launch(kBackwardReadout, VG::kConfig, &device::mlstm_backward_readout<Config>, dimsR, params);
    be.launch(kBackwardStates, VG::kConfig, &device::mlstm_backward_states<Config>, dimsS, params);
    be.launch(kBackwardChunk, VG::kConfig, &device::mlstm_backward_chunk<Config>, dimsP, params);
    be.launch(kBackwardGates, VG::kConfig, &device::mlstm_backward_gates<Config>, dimsG, params);
  }
};

/// The chunkwise forward (kernels A and B of VA, VB) and then the four backward kernels of VG on
/// a random δh, against the float64 recurrent backward per (b, head) with the soft-cap's
/// derivative applied to the gate gradients. The o columns of the fused gradient buffer must be
/// left as they were (the kernels write only q, k and v columns).
template <class Backend, class VA, class VB, class VG>
CaseReport runMlstmBackward(Backend &be, const std::string &name, const MlstmBackwardCase &c) {
  using Forward = ChunkwiseRun<Backend, VA, VB>;
  using Run = BackwardRun<Backend, VG>;
  using Cell = typename Run::Cell;
  using T = typename Cell::T;
  static_assert(std::is_same_v<Cell, typename Forward::Cell>, "forward and backward: one cell");
  static_assert(Run::L == Forward::L, "forward and backward: one chunk size");
  constexpr int64_t NH = Run::NH, DQK = Run::DQK, DV = Run::DV;
  ref::Random rng(c.seed);
  const int64_t rows = c.batch * c.seq;
  MlstmInputs in = makeMlstmInputs<Cell>(rng, rows, c.seq);
  setResets(in, c.resets);
  MlstmStateArrays state = makeMlstmState<Cell>(rng, c.batch, c.initialState);
  Forward fwd(be, in, state, c.batch, c.seq, c.cap, c.eps);
  fwd.launch(be);
  HostArray dh(dtypeOf<T>(), rows * NH * DV);
  for (size_t i = 0; i < dh.size(); ++i)
    dh.set(i, rng.normal(0.0, 1.0));
  Run run(be, in, fwd, dh, c.batch, c.seq, c.cap, c.eps);
  run.launch(be);
  HostArray got = fromDevice(be, run.dqkvo, dtypeOf<T>(), rows * in.width);
  HostArray gotGates = fromDevice(be, run.dgates, dtypeOf<typename Cell::TGate>(), rows * 2 * NH);

  // Reference per (b, head), gathered in the fused layouts' column order.
  std::vector<double> dq(rows * NH * DQK), dk(dq.size()), dv(rows * NH * DV), di(rows * NH),
      df(rows * NH);
  const ref::MlstmCellAttrs attrs = mlstmAttrs<Cell>(c.eps);
  parallelFor(c.batch * NH, [&](int64_t bh) {
    const int64_t b = bh / NH;
    const int hd = static_cast<int>(bh % NH);
    const HeadInputs h = headInputs<Cell>(in, b, hd, c.seq, c.cap);
    const ref::MlstmHeadState initial = headState<Cell>(state, bh);
    ref::Tensor dhHead({c.seq, DV});
    for (int64_t t = 0; t < c.seq; ++t)
      for (int64_t e = 0; e < DV; ++e)
        dhHead.at(t, e) = dh.get((b * c.seq + t) * NH * DV + hd * DV + e);
    const ref::MlstmHeadGrads g =
        ref::mlstmRecurrentBackward(h.q, h.k, h.v, h.iPre, h.fPre, &initial, attrs, dhHead);
    auto slope = [&](double raw) {
      if (c.cap <= 0)
        return 1.0;
      const double th = std::tanh(raw / c.cap);
      return 1.0 - th * th;
    };
    for (int64_t t = 0; t < c.seq; ++t) {
      const int64_t r = b * c.seq + t;
      for (int64_t d = 0; d < DQK; ++d) {
        dq[r * NH * DQK + hd * DQK + d] = g.q.at(t, d);
        dk[r * NH * DQK + hd * DQK + d] = g.k.at(t, d);
      }
      for (int64_t e = 0; e < DV; ++e)
        dv[r * NH * DV + hd * DV + e] = g.v.at(t, e);
      di[r * NH + hd] = g.iPre.at(t) * slope(in.gates.get(r * 2 * NH + hd));
      // An overridden forget gate is a constant: the raw gate's gradient is 0 there.
      const bool reset = !in.resets.empty() && in.resets[r];
      df[r * NH + hd] = reset ? 0.0 : g.fPre.at(t) * slope(in.gates.get(r * 2 * NH + NH + hd));
    }
  });
  std::vector<double> gq(dq.size()), gk(dk.size()), gv(dv.size()), gi(di.size()), gf(df.size());
  double untouched = 0.0; // o columns written by the kernels (they must stay NaN)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t x = 0; x < NH * DQK; ++x) {
      gq[r * NH * DQK + x] = got.get(r * in.width + in.qOffset + x);
      gk[r * NH * DQK + x] = got.get(r * in.width + in.kOffset + x);
    }
    for (int64_t x = 0; x < NH * DV; ++x) {
      gv[r * NH * DV + x] = got.get(r * in.width + in.vOffset + x);
      if (!std::isnan(got.get(r * in.width + in.vOffset + NH * DV + x)))
        untouched += 1.0;
    }
    for (int64_t hd = 0; hd < NH; ++hd) {
      gi[r * NH + hd] = gotGates.get(r * 2 * NH + hd);
      gf[r * NH + hd] = gotGates.get(r * 2 * NH + NH + hd);
    }
  }
  CaseReport report{name, Backend::kName, {}, {}};
  report.add("dq rel err", relativeError(gq, dq), kTolBackwardQK);
  report.add("dk rel err", relativeError(gk, dk), kTolBackwardQK);
  report.add("dv rel err", relativeError(gv, dv), kTolBackwardV);
  report.add("di rel err", relativeError(gi, di), kTolBackwardGates);
  report.add("df rel err", relativeError(gf, df), kTolBackwardGates);
  report.add("o columns written", untouched, 0.0);
  return report;
}

//===--------------------------------------------------------------------===//
// mlstm_decode_step (chained over several steps)
//===--------------------------------------------------------------------===//

struct DecodeCase {
  int64_t batch = 2;
  int steps = 4;
  bool initialState = true;
  double cap = 15.0;
  double eps = 1e-6;
  uint64_t seed = 11;
};

/// Device buffers and geometry of decode steps (also used by the benchmark).
template <class Backend, class V> struct DecodeRun {
  using Config = typename V::Config;
  using Cell = typename Config::Cell;
  static constexpr int64_t NH = Cell::kNumHeads, DQK = Cell::kDQK, DV = Cell::kDV;
  int64_t batch;
  typename Backend::Buffer qkvo, gates, C, n, m, counters, h;
  device::MlstmDecodeParams params{};
  LaunchDims dims;

  DecodeRun(Backend &be, const MlstmInputs &in, const MlstmStateArrays &state, int64_t batch,
            double cap, double eps)
      : batch(batch) {
    qkvo = toDevice(be, in.qkvo);
    gates = toDevice(be, in.gates);
    C = toDevice(be, state.C);
    n = toDevice(be, state.n);
    m = toDevice(be, state.m);
    counters = toDevice(be, HostArray(DType::I64, batch * NH));
    h = be.alloc(batch * NH * DV * sizeof(typename Cell::T));
    be.fill(h, 0xFF);
    auto &p = params;
    setMlstmViews(p, in, qkvo.pointer(), gates.pointer(), NH);
    p.C = C.pointer();
    p.n = static_cast<float *>(n.pointer());
    p.m = static_cast<float *>(m.pointer());
    p.counters = static_cast<int64_t *>(counters.pointer());
    p.h = h.pointer();
    p.batch = batch;
    p.eps = eps;
    p.gate_soft_cap = cap;
    dims.grid[0] = Config::kTilesV;
    dims.grid[1] = static_cast<unsigned>(batch * NH);
    dims.block = Config::kThreads;
  }

  /// Replaces this step's q|k|v|o and gates.
  void setInputs(Backend &be, const MlstmInputs &in) {
    be.upload(qkvo, in.qkvo.data(), in.qkvo.bytes());
    be.upload(gates, in.gates.data(), in.gates.bytes());
    be.fill(h, 0xFF);
  }

  void launch(Backend &be) {
    be.launch(kDecodeStep, V::kConfig, &device::mlstm_decode_step<Config>, dims, params);
  }
};

template <class Backend, class V>
CaseReport runDecode(Backend &be, const std::string &name, const DecodeCase &c) {
  using Run = DecodeRun<Backend, V>;
  using Cell = typename Run::Cell;
  constexpr int64_t NH = Run::NH, DQK = Run::DQK, DV = Run::DV;
  constexpr bool kBf16State = std::is_same_v<typename Cell::TState, __nv_bfloat16>;
  ref::Random rng(c.seed);
  MlstmStateArrays state = makeMlstmState<Cell>(rng, c.batch, c.initialState);
  std::vector<ref::MlstmHeadState> refState;
  for (int64_t bh = 0; bh < c.batch * NH; ++bh)
    refState.push_back(headState<Cell>(state, bh));
  const ref::MlstmCellAttrs attrs = mlstmAttrs<Cell>(c.eps);

  MlstmInputs first = makeMlstmInputs<Cell>(rng, c.batch, 0);
  Run run(be, first, state, c.batch, c.cap, c.eps);
  std::vector<double> hAll, hRefAll;
  for (int step = 0; step < c.steps; ++step) {
    MlstmInputs in = step == 0 ? std::move(first) : makeMlstmInputs<Cell>(rng, c.batch, 0);
    if (step > 0)
      run.setInputs(be, in);
    run.launch(be);
    HostArray h = fromDevice(be, run.h, dtypeOf<typename Cell::T>(), c.batch * NH * DV);
    std::vector<double> hv = h.values();
    hAll.insert(hAll.end(), hv.begin(), hv.end());
    std::vector<double> hr(c.batch * NH * DV);
    parallelFor(c.batch * NH, [&](int64_t bh) {
      const int64_t b = bh / NH;
      const int hd = static_cast<int>(bh % NH);
      HeadInputs x = headInputs<Cell>(in, b, hd, 1, c.cap);
      ref::Tensor q({DQK}), k({DQK}), v({DV});
      std::copy(x.q.data.begin(), x.q.data.end(), q.data.begin());
      std::copy(x.k.data.begin(), x.k.data.end(), k.data.begin());
      std::copy(x.v.data.begin(), x.v.data.end(), v.data.begin());
      ref::Tensor out = ref::mlstmStep(q, k, v, x.iPre.at(0), x.fPre.at(0), refState[bh], attrs);
      std::copy(out.data.begin(), out.data.end(), hr.begin() + bh * DV);
    });
    hRefAll.insert(hRefAll.end(), hr.begin(), hr.end());
  }
  HostArray C = fromDevice(be, run.C, state.C.dtype(), state.C.size());
  HostArray n = fromDevice(be, run.n, DType::F32, state.n.size());
  HostArray m = fromDevice(be, run.m, DType::F32, state.m.size());
  HostArray counters = fromDevice(be, run.counters, DType::I64, c.batch * NH);
  std::vector<double> Cref, nref, mref;
  for (const ref::MlstmHeadState &s : refState) {
    Cref.insert(Cref.end(), s.C.data.begin(), s.C.data.end());
    nref.insert(nref.end(), s.n.data.begin(), s.n.data.end());
    mref.push_back(s.m);
  }
  double nonzero = 0;
  for (size_t i = 0; i < counters.size(); ++i)
    nonzero += counters.get(i) != 0.0;

  CaseReport report{name, Backend::kName, {}, {}};
  report.add(fmt::format("h rel err ({} steps)", c.steps), relativeError(hAll, hRefAll),
             kBf16State ? kTolStateBf16 : outputTolerance<typename Cell::T>());
  report.add("final C rel err", relativeError(C.values(), Cref),
             kBf16State ? kTolStateBf16 : kTolDecodeState);
  report.add("final n rel err", relativeError(n.values(), nref), kTolDecodeState * 10);
  report.add("final m max abs err", maxAbsError(m.values(), mref), kTolM);
  report.add("counters left nonzero", nonzero, 0.0);
  return report;
}

} // namespace xlc::test

#endif // XLC_TEST_GPU_HARNESS_KERNELCASES_H
