//===- CpuOpsTest.cpp - The CPU backend's fp32 kernels and thread pool ----===//
//
// Every kernel of runtime/exec/cpu/CpuOps.h against the float64 reference (or a plain double
// loop for the GEMM) on random, never-zero inputs, with strided views and shapes that are not
// multiples of the blocking; and the thread pool's contract. Independent of the compiler, so
// these also run in the runtime-only AddressSanitizer build.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cpu/CpuOps.h"
#include "runtime/exec/cpu/ThreadPool.h"
#include "runtime/reference/BlockOps.h"
#include "runtime/reference/MlstmCell.h"
#include "runtime/support/Error.h"

#include "test/runtime/exec/CpuTestUtil.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

namespace xlc::exec {
namespace {

using testing::randomFloats;
using testing::relError;
using testing::toTensor;
using testing::viewTensor;

using cpu::View;

//===----------------------------------------------------------------------===//
// Thread pool
//===----------------------------------------------------------------------===//

TEST(ThreadPoolTest, RunsEveryTaskOnce) {
  for (unsigned threads : {1u, 2u, 5u}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (std::size_t count : {0u, 1u, 3u, 1000u}) {
      std::vector<std::atomic<int>> hits(count);
      pool.parallelFor(count, [&](std::size_t i) { hits[i].fetch_add(1); });
      for (std::size_t i = 0; i < count; ++i)
        ASSERT_EQ(hits[i].load(), 1) << "task " << i << " of " << count << ", " << threads
                                     << " threads";
    }
  }
}

TEST(ThreadPoolTest, ManyJobsInARow) {
  ThreadPool pool(4);
  std::atomic<long> sum{0};
  for (int job = 0; job < 2000; ++job)
    pool.parallelFor(7, [&](std::size_t i) { sum += static_cast<long>(i); });
  EXPECT_EQ(sum.load(), 2000L * 21);
}

TEST(ThreadPoolTest, RangesCoverExactly) {
  ThreadPool pool(3);
  for (std::size_t total : {1u, 5u, 100u, 12345u}) {
    for (std::size_t minChunk : {1u, 7u, 100000u}) {
      std::vector<std::atomic<int>> hits(total);
      pool.parallelRange(total, minChunk, [&](std::size_t b, std::size_t e) {
        ASSERT_LT(b, e);
        for (std::size_t i = b; i < e; ++i)
          hits[i].fetch_add(1);
      });
      for (std::size_t i = 0; i < total; ++i)
        ASSERT_EQ(hits[i].load(), 1);
    }
  }
}

TEST(ThreadPoolTest, RethrowsTheFirstErrorAndStaysUsable) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallelFor(100,
                                [](std::size_t i) {
                                  if (i == 37)
                                    throw Error("task 37 failed");
                                }),
               Error);
  std::atomic<int> count{0};
  pool.parallelFor(50, [&](std::size_t) { ++count; });
  EXPECT_EQ(count.load(), 50);
}

TEST(ThreadPoolTest, NestedCallsRunSerially) {
  ThreadPool pool(3);
  std::atomic<int> count{0};
  pool.parallelFor(8, [&](std::size_t) { pool.parallelFor(8, [&](std::size_t) { ++count; }); });
  EXPECT_EQ(count.load(), 64);
}

//===----------------------------------------------------------------------===//
// GEMM
//===----------------------------------------------------------------------===//

struct GemmCase {
  std::int64_t m, n, k;
};

std::vector<double> naiveGemm(const GemmCase &c, const std::vector<float> &a,
                              const std::vector<float> &b, cpu::GemmEpilogue epilogue,
                              const std::vector<float> &extra) {
  std::vector<double> d(static_cast<std::size_t>(c.m * c.n));
  for (std::int64_t i = 0; i < c.m; ++i)
    for (std::int64_t j = 0; j < c.n; ++j) {
      double s = 0.0;
      for (std::int64_t p = 0; p < c.k; ++p)
        s += static_cast<double>(a[i * c.k + p]) * b[j * c.k + p];
      if (epilogue == cpu::GemmEpilogue::Bias)
        s += extra[j];
      else if (epilogue == cpu::GemmEpilogue::ResidualAdd)
        s += extra[i * c.n + j];
      d[i * c.n + j] = s;
    }
  return d;
}

TEST(CpuGemmTest, MatchesDoubleOverShapesAndEpilogues) {
  std::mt19937 rng(1);
  ThreadPool pool(3);
  const GemmCase cases[] = {{1, 1, 1},     {1, 50, 64},    {5, 17, 3},    {6, 16, 256},
                            {7, 33, 257},  {97, 300, 70},  {200, 16, 600}, {13, 1, 513},
                            {96, 256, 256}, {193, 515, 31}};
  double worst = 0.0;
  for (const GemmCase &c : cases) {
    const auto a = randomFloats(static_cast<std::size_t>(c.m * c.k), rng);
    const auto b = randomFloats(static_cast<std::size_t>(c.n * c.k), rng);
    for (cpu::GemmEpilogue ep :
         {cpu::GemmEpilogue::None, cpu::GemmEpilogue::Bias, cpu::GemmEpilogue::ResidualAdd}) {
      const auto extra = randomFloats(
          static_cast<std::size_t>(ep == cpu::GemmEpilogue::Bias ? c.n : c.m * c.n), rng);
      std::vector<float> d(static_cast<std::size_t>(c.m * c.n), NAN);
      cpu::gemm(pool, c.m, c.n, c.k, a.data(), b.data(), d.data(), ep,
                ep == cpu::GemmEpilogue::None ? nullptr : extra.data());
      const double err = relError(d, naiveGemm(c, a, b, ep, extra));
      worst = std::max(worst, err);
      EXPECT_LT(err, 1e-5) << "m " << c.m << " n " << c.n << " k " << c.k << " epilogue "
                           << static_cast<int>(ep);
      if (ep == cpu::GemmEpilogue::ResidualAdd) {
        // In place: D is the residual C.
        std::vector<float> inPlace = extra;
        cpu::gemm(pool, c.m, c.n, c.k, a.data(), b.data(), inPlace.data(), ep, inPlace.data());
        EXPECT_EQ(std::memcmp(inPlace.data(), d.data(), d.size() * sizeof(float)), 0)
            << "in-place residual, m " << c.m << " n " << c.n << " k " << c.k;
      }
    }
  }
  std::printf("[ measure  ] GEMM vs double: worst relative L2 error %.2e\n", worst);
}

TEST(CpuGemmTest, ResultDoesNotDependOnThreads) {
  std::mt19937 rng(2);
  const GemmCase c{150, 700, 300};
  const auto a = randomFloats(static_cast<std::size_t>(c.m * c.k), rng);
  const auto b = randomFloats(static_cast<std::size_t>(c.n * c.k), rng);
  std::vector<float> d1(static_cast<std::size_t>(c.m * c.n)), d4(d1.size());
  ThreadPool one(1), four(4);
  cpu::gemm(one, c.m, c.n, c.k, a.data(), b.data(), d1.data(), cpu::GemmEpilogue::None, nullptr);
  cpu::gemm(four, c.m, c.n, c.k, a.data(), b.data(), d4.data(), cpu::GemmEpilogue::None, nullptr);
  EXPECT_EQ(std::memcmp(d1.data(), d4.data(), d1.size() * sizeof(float)), 0);
}

//===----------------------------------------------------------------------===//
// Row-wise ops on strided views
//===----------------------------------------------------------------------===//

TEST(CpuRowOpsTest, RmsNormWithAndWithoutWeight) {
  std::mt19937 rng(3);
  ThreadPool pool(2);
  const std::int64_t rows = 37, dim = 48, stride = 130, offset = 19;
  const auto x = randomFloats(static_cast<std::size_t>(rows * stride), rng);
  const auto w = randomFloats(static_cast<std::size_t>(dim), rng, 1.0f, 0.1f);
  for (bool withWeight : {true, false}) {
    std::vector<float> y(static_cast<std::size_t>(rows * dim), NAN);
    cpu::rmsNorm(pool, View{x.data(), offset, stride}, withWeight ? w.data() : nullptr, y.data(),
                 rows, dim, 1e-5);
    const ref::Tensor weight = withWeight ? toTensor(w, {dim}) : ref::Tensor({dim}, 1.0);
    const ref::Tensor expected =
        ref::rmsNorm(viewTensor(x, rows, stride, offset, dim), weight, 1e-5);
    EXPECT_LT(ref::relativeError(toTensor(y, {rows, dim}), expected), 1e-6);
  }
}

TEST(CpuRowOpsTest, NormGate) {
  std::mt19937 rng(4);
  ThreadPool pool(2);
  const std::int64_t rows = 21, heads = 3, dv = 20, width = heads * dv;
  const std::int64_t hStride = 70, hOffset = 5, oStride = 200, oOffset = 130;
  const auto h = randomFloats(static_cast<std::size_t>(rows * hStride), rng, 0.3f, 2.0f);
  const auto o = randomFloats(static_cast<std::size_t>(rows * oStride), rng);
  const auto w = randomFloats(static_cast<std::size_t>(width), rng, 1.0f, 0.1f);
  std::vector<float> out(static_cast<std::size_t>(rows * width), NAN);
  cpu::normGate(pool, View{h.data(), hOffset, hStride}, w.data(), View{o.data(), oOffset, oStride},
                out.data(), rows, heads, dv, 1e-6);
  const ref::Tensor normed = ref::multiHeadLayerNorm(viewTensor(h, rows, hStride, hOffset, width),
                                                     toTensor(w, {width}), heads, 1e-6);
  const ref::Tensor expected =
      ref::outputGate(viewTensor(o, rows, oStride, oOffset, width), normed);
  EXPECT_LT(ref::relativeError(toTensor(out, {rows, width}), expected), 1e-6);
}

TEST(CpuRowOpsTest, SwigluAndSoftCap) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  const std::int64_t rows = 9, dim = 40, stride = 2 * dim;
  const auto gu = randomFloats(static_cast<std::size_t>(rows * stride), rng, 0.0f, 3.0f);
  std::vector<float> out(static_cast<std::size_t>(rows * dim), NAN);
  cpu::swiglu(pool, View{gu.data(), 0, stride}, View{gu.data(), dim, stride}, out.data(), rows,
              dim);
  const ref::Tensor expected = ref::swiglu(viewTensor(gu, rows, stride, 0, dim),
                                           viewTensor(gu, rows, stride, dim, dim));
  EXPECT_LT(ref::relativeError(toTensor(out, {rows, dim}), expected), 1e-6);

  auto logits = randomFloats(100000, rng, 0.0f, 40.0f);
  const ref::Tensor before = toTensor(logits, {100000});
  cpu::softCap(pool, logits.data(), static_cast<std::int64_t>(logits.size()), 30.0);
  EXPECT_LT(ref::relativeError(toTensor(logits, {100000}), ref::softCap(before, 30.0)), 1e-6);
}

TEST(CpuRowOpsTest, SoftCapIsAccurateElementwise) {
  // The vectorised tanh against double precision, element by element: every region of it
  // (odd polynomial below |x/cap| = 0.625, exponential form above, the clamp at 9, the scalar
  // tail of a count that is not a multiple of 16) and the special values.
  ThreadPool pool(2);
  std::vector<float> x;
  for (double v = -400.0; v <= 400.0; v += 0.0371)
    x.push_back(static_cast<float>(v));
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-20f, 18.75f, -18.75f, 18.7499f, 270.0f, 1e30f, -1e30f})
    x.push_back(v);
  x.push_back(INFINITY);
  x.push_back(-INFINITY);
  x.push_back(NAN);
  std::vector<float> y = x;
  cpu::softCap(pool, y.data(), static_cast<std::int64_t>(y.size()), 30.0);
  double worst = 0.0;
  for (std::size_t i = 0; i + 1 < x.size(); ++i) {
    const double expected = 30.0 * std::tanh(static_cast<double>(x[i]) / 30.0);
    const double err = std::abs(y[i] - expected) / std::max(std::abs(expected), 1e-30);
    worst = std::max(worst, err);
    ASSERT_LT(err, 1e-6) << "x = " << x[i] << ": " << y[i] << " vs " << expected;
  }
  EXPECT_TRUE(std::isnan(y.back()));
  EXPECT_EQ(std::signbit(y[x.size() - 12]), true); // −0 keeps its sign
  std::printf("[ measure  ] soft cap vs double: worst relative error %.2e\n", worst);
}

TEST(CpuRowOpsTest, EmbeddingFlagsTheFirstBadRow) {
  ThreadPool pool(2);
  const std::int64_t vocab = 11, dim = 5;
  std::vector<float> table(static_cast<std::size_t>(vocab * dim));
  for (std::size_t i = 0; i < table.size(); ++i)
    table[i] = static_cast<float>(i) + 0.5f;
  const std::vector<std::int32_t> good = {3, 0, 10, 7};
  std::vector<float> out(good.size() * dim, NAN);
  EXPECT_EQ(cpu::embedding(pool, good.data(), table.data(), vocab, dim, out.data(), 4), 0);
  for (std::size_t r = 0; r < good.size(); ++r)
    for (std::int64_t c = 0; c < dim; ++c)
      EXPECT_EQ(out[r * dim + c], table[good[r] * dim + c]);
  const std::vector<std::int32_t> bad = {3, 11, -1, 2};
  EXPECT_EQ(cpu::embedding(pool, bad.data(), table.data(), vocab, dim, out.data(), 4), 2);
  for (std::int64_t c = 0; c < dim; ++c) {
    EXPECT_EQ(out[1 * dim + c], 0.0f);
    EXPECT_EQ(out[2 * dim + c], 0.0f);
  }
}

//===----------------------------------------------------------------------===//
// The mLSTM cell
//===----------------------------------------------------------------------===//

struct CellCase {
  ref::InputGate gate;
  ref::Normalizer normalizer;
  double softCap; ///< 0 = none
  std::int64_t seq;
  unsigned threads;
  /// 0: mlstmRecurrent; L > 0: the fused chunkwise form's split, mlstmChunkScores then
  /// mlstmChunkStatePass, at chunk length L.
  std::int64_t chunk = 0;
};

/// q|k|v|o fused like the model's projection, gates i|f fused, a random initial state; the cell
/// is run in two calls (the state carries) and compared with the float64 recurrent form.
void checkCell(const CellCase &c) {
  std::mt19937 rng(static_cast<unsigned>(c.seq * 7 + c.threads));
  ThreadPool pool(c.threads);
  const std::int64_t batch = 2, nh = 3, dqk = 8, dv = 20;
  const std::int64_t qkvStride = 2 * nh * dqk + 2 * nh * dv, gateStride = 2 * nh;
  const std::int64_t rows = batch * c.seq;
  const auto qkvo = randomFloats(static_cast<std::size_t>(rows * qkvStride), rng);
  std::vector<float> gates(static_cast<std::size_t>(rows * gateStride));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t h = 0; h < nh; ++h) {
      gates[r * gateStride + h] = 2.0f * normal(rng) - 1.0f;                        // ĩ
      gates[r * gateStride + nh + h] = 3.0f + 1.5f * static_cast<float>(h) + normal(rng); // f̃
    }
  auto C = randomFloats(static_cast<std::size_t>(batch * nh * dqk * dv), rng, 0.0f, 0.5f);
  auto n = randomFloats(static_cast<std::size_t>(batch * nh * dqk), rng);
  std::vector<float> m(static_cast<std::size_t>(batch * nh));
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  for (float &x : m)
    x = uniform(rng);

  // Reference inputs: the views as [B, S, ...] tensors; gates soft-capped by the caller there.
  auto columns = [&](const std::vector<float> &buf, std::int64_t stride, std::int64_t offset,
                     std::int64_t width, bool cap) {
    ref::Tensor t({batch, c.seq, width});
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < width; ++j) {
        double x = buf[r * stride + offset + j];
        t.data[r * width + j] = cap && c.softCap > 0 ? ref::softCap(x, c.softCap) : x;
      }
    return t;
  };
  const ref::Tensor q = columns(qkvo, qkvStride, 0, nh * dqk, false);
  const ref::Tensor k = columns(qkvo, qkvStride, nh * dqk, nh * dqk, false);
  const ref::Tensor v = columns(qkvo, qkvStride, 2 * nh * dqk, nh * dv, false);
  const ref::Tensor ig = columns(gates, gateStride, 0, nh, true);
  const ref::Tensor fg = columns(gates, gateStride, nh, nh, true);
  ref::MlstmStates initial{toTensor(C, {batch, nh, dqk, dv}), toTensor(n, {batch, nh, dqk}),
                           toTensor(m, {batch, nh})};
  const ref::MlstmCellAttrs attrs{1e-6, c.gate, c.normalizer};
  const ref::MlstmCellResult expected = ref::mlstmCell(
      q, k, v, ig, fg, nh, &initial, attrs, {ref::MlstmForm::Recurrent, 1});

  // The CPU cell, fed the sequence in two pieces [0, s1) and [s1, S): each piece's views start
  // at its first token's row, which the rows b·seq + t of a [B, S] batch do not allow, so the
  // pieces run per sequence (batch 1 at a time, pointer offsets to each sequence's state).
  std::vector<float> h(static_cast<std::size_t>(rows * nh * dv), NAN);
  const std::int64_t s1 = c.seq / 3;
  for (std::int64_t b = 0; b < batch; ++b) {
    for (auto [start, len] : {std::pair{std::int64_t{0}, s1}, std::pair{s1, c.seq - s1}}) {
      const std::int64_t row0 = b * c.seq + start;
      cpu::MlstmCell cell;
      cell.q = View{qkvo.data() + row0 * qkvStride, 0, qkvStride};
      cell.k = View{qkvo.data() + row0 * qkvStride, nh * dqk, qkvStride};
      cell.v = View{qkvo.data() + row0 * qkvStride, 2 * nh * dqk, qkvStride};
      cell.igate = View{gates.data() + row0 * gateStride, 0, gateStride};
      cell.fgate = View{gates.data() + row0 * gateStride, nh, gateStride};
      cell.C = C.data() + b * nh * dqk * dv;
      cell.n = n.data() + b * nh * dqk;
      cell.m = m.data() + b * nh;
      cell.h = h.data() + row0 * nh * dv;
      cell.batch = 1;
      cell.seq = len;
      cell.numHeads = nh;
      cell.dqk = dqk;
      cell.dv = dv;
      cell.eps = 1e-6;
      cell.gateSoftCap = c.softCap;
      cell.inputGate = c.gate == ref::InputGate::Exp ? cpu::InputGate::Exp : cpu::InputGate::Sigmoid;
      cell.normalizer =
          c.normalizer == ref::Normalizer::MaxAbs ? cpu::Normalizer::MaxAbs : cpu::Normalizer::None;
      if (c.chunk == 0) {
        cpu::mlstmRecurrent(pool, cell);
        continue;
      }
      cpu::MlstmChunkRecords op;
      op.cell = cell;
      op.chunk = c.chunk;
      const std::int64_t records = nh * ((len + c.chunk - 1) / c.chunk);
      std::vector<float> wsP(static_cast<std::size_t>(records * c.chunk * c.chunk), NAN);
      std::vector<float> wsG(static_cast<std::size_t>(records * (4 * c.chunk + 4)), NAN);
      op.wsP = wsP.data();
      op.wsG = wsG.data();
      cpu::mlstmChunkScores(pool, op);
      cpu::mlstmChunkStatePass(pool, op);
    }
  }
  const double errH = ref::relativeError(toTensor(h, {batch, c.seq, nh * dv}), expected.h);
  const double errC = ref::relativeError(toTensor(C, {batch, nh, dqk, dv}), expected.state.C);
  const double errN = ref::relativeError(toTensor(n, {batch, nh, dqk}), expected.state.n);
  const double errM = ref::maxAbsError(toTensor(m, {batch, nh}), expected.state.m);
  std::printf("[ measure  ] cell %s/%s cap %g S %lld threads %u chunk %lld: h %.2e, C %.2e, "
              "n %.2e, m %.2e (abs)\n",
              std::string(ref::toString(c.gate)).c_str(),
              std::string(ref::toString(c.normalizer)).c_str(), c.softCap,
              static_cast<long long>(c.seq), c.threads, static_cast<long long>(c.chunk), errH,
              errC, errN, errM);
  EXPECT_LT(errH, 1e-4);
  EXPECT_LT(errC, 1e-5);
  EXPECT_LT(errN, 1e-5);
  EXPECT_LT(errM, 1e-5);
}

TEST(CpuMlstmTest, MatchesTheRecurrentReference) {
  checkCell({ref::InputGate::Exp, ref::Normalizer::MaxAbs, 15.0, 37, 1});
  checkCell({ref::InputGate::Exp, ref::Normalizer::MaxAbs, 15.0, 37, 4}); // split columns of C
  checkCell({ref::InputGate::Sigmoid, ref::Normalizer::MaxAbs, 0.0, 50, 3});
  checkCell({ref::InputGate::Exp, ref::Normalizer::None, 15.0, 23, 2});
  checkCell({ref::InputGate::Sigmoid, ref::Normalizer::None, 0.0, 3, 8});
}

// The fused chunkwise form's CPU split (what the CPU backend runs for mlstm_chunk_scores and
// mlstm_chunk_fused): partial last chunks, S < L, both gates and normalisers, the state carried
// between the two calls.
TEST(CpuMlstmTest, ScoresAndStatePassMatchTheRecurrentReference) {
  checkCell({ref::InputGate::Exp, ref::Normalizer::MaxAbs, 15.0, 37, 1, 8});
  checkCell({ref::InputGate::Exp, ref::Normalizer::MaxAbs, 15.0, 50, 4, 16});
  checkCell({ref::InputGate::Sigmoid, ref::Normalizer::MaxAbs, 0.0, 50, 3, 4});
  checkCell({ref::InputGate::Exp, ref::Normalizer::None, 15.0, 23, 2, 8});
  checkCell({ref::InputGate::Sigmoid, ref::Normalizer::None, 0.0, 3, 8, 16});
}

} // namespace
} // namespace xlc::exec
