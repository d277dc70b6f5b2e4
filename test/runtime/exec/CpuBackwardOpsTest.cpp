//===- CpuBackwardOpsTest.cpp - The CPU backend's gradients against float64 -===//
//
// Each fp32 backward op of CpuBackwardOps.h against the float64 reference gradient of the same
// op (runtime/reference, itself checked against finite differences), on strided views where the
// op takes views, and bit-identical results for different thread counts.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cpu/CpuBackwardOps.h"
#include "runtime/exec/cpu/CpuOps.h"
#include "runtime/exec/cpu/ThreadPool.h"
#include "runtime/reference/BlockOps.h"
#include "runtime/reference/MlstmCellBackward.h"

#include "test/runtime/exec/CpuTestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace xlc::exec {
namespace {

using cpu::View;
using testing::randomFloats;
using testing::toTensor;
using testing::viewTensor;

constexpr double kTol = 1e-5; // fp32 storage of O(1) values, float64 sums

TEST(CpuBackwardOpsTest, RmsNormWithAndWithoutWeight) {
  std::mt19937 rng(1);
  const std::int64_t rows = 150, dim = 24, stride = 40, offset = 7;
  const auto x = randomFloats(static_cast<std::size_t>(rows * stride), rng, 0.2f, 1.5f);
  const auto dy = randomFloats(static_cast<std::size_t>(rows * dim), rng);
  const auto w = randomFloats(static_cast<std::size_t>(dim), rng, 1.0f, 0.2f);
  for (bool withWeight : {true, false}) {
    std::vector<float> first;
    for (unsigned threads : {1u, 3u}) {
      ThreadPool pool(threads);
      std::vector<float> dx(static_cast<std::size_t>(rows * dim), NAN);
      std::vector<float> dw(static_cast<std::size_t>(dim), 0.5f); // accumulated into
      cpu::rmsNormBackward(pool, View{x.data(), offset, stride}, withWeight ? w.data() : nullptr,
                           View{dy.data(), 0, dim}, dx.data(), dw.data(), rows, dim, 1e-6);
      const ref::Tensor weight = withWeight ? toTensor(w, {dim}) : ref::Tensor({dim}, 1.0);
      ref::NormGrads g = ref::rmsNormBackward(viewTensor(x, rows, stride, offset, dim), weight,
                                              1e-6, toTensor(dy, {rows, dim}));
      EXPECT_LT(ref::relativeError(toTensor(dx, {rows, dim}), g.x), kTol);
      if (withWeight) {
        for (double &v : g.weight.data)
          v += 0.5;
        EXPECT_LT(ref::relativeError(toTensor(dw, {dim}), g.weight), kTol);
      }
      if (first.empty())
        first = dw;
      else
        EXPECT_EQ(first, dw) << "the weight gradient depends on the thread count";
    }
  }
}

TEST(CpuBackwardOpsTest, NormGate) {
  std::mt19937 rng(2);
  ThreadPool pool(2);
  const std::int64_t rows = 70, heads = 3, dv = 8, width = heads * dv, hStride = 30, oStride = 50;
  const auto h = randomFloats(static_cast<std::size_t>(rows * hStride), rng, 0.3f, 2.0f);
  const auto o = randomFloats(static_cast<std::size_t>(rows * oStride), rng, 0.0f, 2.0f);
  const auto w = randomFloats(static_cast<std::size_t>(width), rng, 1.0f, 0.2f);
  const auto dout = randomFloats(static_cast<std::size_t>(rows * width), rng);
  std::vector<float> dh(static_cast<std::size_t>(rows * width), NAN),
      dO(static_cast<std::size_t>(rows * width), NAN), dw(static_cast<std::size_t>(width), 0.0f);
  cpu::normGateBackward(pool, View{h.data(), 3, hStride}, w.data(), View{o.data(), 20, oStride},
                        View{dout.data(), 0, width}, dh.data(), dO.data(), dw.data(), rows, heads,
                        dv, 1e-6);
  const ref::Tensor hT = viewTensor(h, rows, hStride, 3, width), oT = viewTensor(o, rows, oStride, 20, width);
  const ref::Tensor wT = toTensor(w, {width}), dT = toTensor(dout, {rows, width});
  const ref::Tensor normed = ref::multiHeadLayerNorm(hT, wT, heads, 1e-6);
  ref::GatedGrads gate = ref::outputGateBackward(oT, normed, dT);
  ref::NormGrads ln = ref::multiHeadLayerNormBackward(hT, wT, heads, 1e-6, gate.value);
  EXPECT_LT(ref::relativeError(toTensor(dO, {rows, width}), gate.gate), kTol);
  EXPECT_LT(ref::relativeError(toTensor(dh, {rows, width}), ln.x), kTol);
  EXPECT_LT(ref::relativeError(toTensor(dw, {width}), ln.weight), kTol);
}

TEST(CpuBackwardOpsTest, SwigluEmbeddingAndLossHead) {
  std::mt19937 rng(3);
  ThreadPool pool(3);
  {
    const std::int64_t rows = 11, dim = 30, stride = 2 * dim;
    const auto gu = randomFloats(static_cast<std::size_t>(rows * stride), rng, 0.0f, 3.0f);
    const auto dout = randomFloats(static_cast<std::size_t>(rows * dim), rng);
    std::vector<float> dg(static_cast<std::size_t>(rows * dim)), du(static_cast<std::size_t>(rows * dim));
    cpu::swigluBackward(pool, View{gu.data(), 0, stride}, View{gu.data(), dim, stride},
                        View{dout.data(), 0, dim}, dg.data(), du.data(), rows, dim);
    ref::GatedGrads g = ref::swigluBackward(viewTensor(gu, rows, stride, 0, dim),
                                            viewTensor(gu, rows, stride, dim, dim),
                                            toTensor(dout, {rows, dim}));
    EXPECT_LT(ref::relativeError(toTensor(dg, {rows, dim}), g.gate), kTol);
    EXPECT_LT(ref::relativeError(toTensor(du, {rows, dim}), g.value), kTol);
  }
  {
    const std::int64_t vocab = 13, dim = 70, rows = 9;
    const std::vector<std::int32_t> tokens{4, 0, 4, 12, 7, 4, 0, 3, 9};
    const auto dy = randomFloats(static_cast<std::size_t>(rows * dim), rng);
    std::vector<float> table(static_cast<std::size_t>(vocab * dim), 0.0f);
    EXPECT_EQ(cpu::embeddingBackward(pool, tokens.data(), View{dy.data(), 0, dim}, table.data(),
                                     vocab, dim, rows),
              0);
    const std::vector<std::int64_t> t64(tokens.begin(), tokens.end());
    EXPECT_LT(ref::relativeError(toTensor(table, {vocab, dim}),
                                 ref::embeddingBackward(t64, vocab, toTensor(dy, {rows, dim}))),
              1e-7);
    const std::vector<std::int32_t> bad{1, 13, 2};
    EXPECT_EQ(cpu::embeddingBackward(pool, bad.data(), View{dy.data(), 0, dim}, table.data(),
                                     vocab, dim, 3),
              2);
  }
  {
    const std::int64_t rows = 6, vocab = 50;
    const auto z0 = randomFloats(static_cast<std::size_t>(rows * vocab), rng, 0.0f, 20.0f);
    const std::vector<std::int32_t> targets{3, -100, 49, 0, 17, -1};
    const std::vector<std::int64_t> t64(targets.begin(), targets.end());
    for (double cap : {30.0, 0.0}) {
      auto z = z0;
      const double sum = cpu::crossEntropyBackward(pool, z.data(), targets.data(), rows, vocab,
                                                   cap, 1.0 / 4.0);
      const ref::Tensor zT = toTensor(z0, {rows, vocab});
      const ref::Tensor logits = cap > 0 ? ref::softCap(zT, cap) : zT;
      ref::CrossEntropy ce = ref::crossEntropy(logits, t64);
      ASSERT_EQ(ce.count, 4);
      EXPECT_NEAR(sum / 4.0, ce.loss, 1e-6 * ce.loss);
      const ref::Tensor dz = cap > 0 ? ref::softCapBackward(zT, cap, ce.dLogits) : ce.dLogits;
      EXPECT_LT(ref::relativeError(toTensor(z, {rows, vocab}), dz), kTol);
    }
  }
}

/// The cell's backward: the forward's chunk-start states and output from mlstmChunkStates and
/// mlstmChunkOutputs (kernels A and B), then mlstmCellBackward (the four stages of the GPU's
/// backward), against the float64 recurrent backward with the soft-cap's derivative
/// applied to the gate gradients.
void checkCellBackward(ref::InputGate gate, ref::Normalizer norm, double cap, std::int64_t seq,
                       std::int64_t chunk, unsigned threads) {
  SCOPED_TRACE(std::string(ref::toString(gate)) + "/" + std::string(ref::toString(norm)) +
               " cap " + std::to_string(cap) + " S " + std::to_string(seq) + " L " +
               std::to_string(chunk));
  std::mt19937 rng(static_cast<unsigned>(seq * 31 + chunk));
  ThreadPool pool(threads);
  const std::int64_t batch = 2, nh = 2, dqk = 6, dv = 5, rows = batch * seq;
  const auto q = randomFloats(static_cast<std::size_t>(rows * nh * dqk), rng);
  const auto k = randomFloats(static_cast<std::size_t>(rows * nh * dqk), rng);
  const auto v = randomFloats(static_cast<std::size_t>(rows * nh * dv), rng);
  std::vector<float> ig(static_cast<std::size_t>(rows * nh)), fg(ig.size());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::size_t i = 0; i < ig.size(); ++i) {
    ig[i] = 4.0f * normal(rng);
    fg[i] = 2.0f + 3.0f * normal(rng);
  }
  auto C = randomFloats(static_cast<std::size_t>(batch * nh * dqk * dv), rng, 0.0f, 0.5f);
  auto n = randomFloats(static_cast<std::size_t>(batch * nh * dqk), rng);
  std::vector<float> m(static_cast<std::size_t>(batch * nh), 0.3f);
  const auto dh = randomFloats(static_cast<std::size_t>(rows * nh * dv), rng);
  const auto dCf = randomFloats(C.size(), rng), dnf = randomFloats(n.size(), rng);
  const std::vector<float> dmf(m.size(), 0.2f);

  const ref::MlstmStates initial{toTensor(C, {batch, nh, dqk, dv}), toTensor(n, {batch, nh, dqk}),
                                 toTensor(m, {batch, nh})};
  const std::int64_t nc = (seq + chunk - 1) / chunk;
  std::vector<float> wsC(static_cast<std::size_t>(batch * nh * (nc + 1) * dqk * dv)),
      wsN(static_cast<std::size_t>(batch * nh * (nc + 1) * dqk)),
      wsM(static_cast<std::size_t>(batch * nh * (nc + 1)));
  cpu::MlstmCellBackward op;
  cpu::MlstmCell &cell = op.forward.cell;
  cell.q = View{q.data(), 0, nh * dqk};
  cell.k = View{k.data(), 0, nh * dqk};
  cell.v = View{v.data(), 0, nh * dv};
  cell.igate = View{ig.data(), 0, nh};
  cell.fgate = View{fg.data(), 0, nh};
  cell.C = C.data(), cell.n = n.data(), cell.m = m.data();
  cell.batch = batch, cell.seq = seq, cell.numHeads = nh, cell.dqk = dqk, cell.dv = dv;
  cell.eps = 1e-6, cell.gateSoftCap = cap;
  cell.inputGate = gate == ref::InputGate::Exp ? cpu::InputGate::Exp : cpu::InputGate::Sigmoid;
  cell.normalizer = norm == ref::Normalizer::MaxAbs ? cpu::Normalizer::MaxAbs : cpu::Normalizer::None;
  op.forward.chunk = chunk;
  op.forward.wsC = wsC.data(), op.forward.wsN = wsN.data(), op.forward.wsM = wsM.data();
  // The forward (kernels A and B) updates C, n, m in place; the backward wants the initial
  // state there, and the forward's output h.
  std::vector<float> h(static_cast<std::size_t>(rows * nh * dv));
  cell.h = h.data();
  const auto C0 = C, n0 = n, m0 = m;
  cpu::mlstmChunkStates(pool, op.forward);
  cpu::mlstmChunkOutputs(pool, op.forward);
  C = C0, n = n0, m = m0;
  op.h = View{h.data(), 0, nh * dv};
  op.dh = View{dh.data(), 0, nh * dv};
  std::vector<float> dq(q.size()), dk(k.size()), dvv(v.size()), di(ig.size()), df(fg.size()),
      dC0(C.size()), dn0(n.size()), dm0(m.size());
  op.dq = dq.data(), op.dk = dk.data(), op.dv = dvv.data(), op.di = di.data(), op.df = df.data();
  op.dC0 = dC0.data(), op.dn0 = dn0.data(), op.dm0 = dm0.data();
  op.dCf = dCf.data(), op.dnf = dnf.data(), op.dmf = dmf.data();
  cpu::mlstmCellBackward(pool, op);

  auto capT = [&](const std::vector<float> &g) {
    ref::Tensor t = toTensor(g, {batch, seq, nh});
    return cap > 0 ? ref::softCap(t, cap) : t;
  };
  const ref::Tensor qT = toTensor(q, {batch, seq, nh * dqk}), kT = toTensor(k, {batch, seq, nh * dqk});
  const ref::Tensor vT = toTensor(v, {batch, seq, nh * dv});
  const ref::MlstmStates dFinal{toTensor(dCf, {batch, nh, dqk, dv}), toTensor(dnf, {batch, nh, dqk}),
                                toTensor(dmf, {batch, nh})};
  const ref::MlstmCellAttrs attrs{1e-6, gate, norm};
  ref::MlstmCellGrads g = ref::mlstmCellBackward(qT, kT, vT, capT(ig), capT(fg), nh, &initial,
                                                 attrs, toTensor(dh, {batch, seq, nh * dv}),
                                                 &dFinal);
  auto raw = [&](const ref::Tensor &dCapped, const std::vector<float> &pre) {
    return cap > 0 ? ref::softCapBackward(toTensor(pre, {batch, seq, nh}), cap, dCapped) : dCapped;
  };
  const double errQ = ref::relativeError(toTensor(dq, qT.shape), g.q);
  const double errK = ref::relativeError(toTensor(dk, kT.shape), g.k);
  const double errV = ref::relativeError(toTensor(dvv, vT.shape), g.v);
  const double errI = ref::relativeError(toTensor(di, {batch, seq, nh}), raw(g.iPre, ig));
  const double errF = ref::relativeError(toTensor(df, {batch, seq, nh}), raw(g.fPre, fg));
  const double errC = ref::relativeError(toTensor(dC0, initial.C.shape), g.initial.C);
  const double errN = ref::relativeError(toTensor(dn0, initial.n.shape), g.initial.n);
  const double errM = ref::relativeError(toTensor(dm0, initial.m.shape), g.initial.m);
  std::printf("[ measure  ] cell backward %s/%s cap %g S %lld L %lld: dq %.1e dk %.1e dv %.1e "
              "di %.1e df %.1e dC0 %.1e dn0 %.1e dm0 %.1e\n",
              std::string(ref::toString(gate)).c_str(), std::string(ref::toString(norm)).c_str(),
              cap, static_cast<long long>(seq), static_cast<long long>(chunk), errQ, errK, errV,
              errI, errF, errC, errN, errM);
  // fp32 inputs and chunk-start states, float64 arithmetic: the states' rounding (u = 6e-8)
  // amplified by the readout's conditioning.
  for (double e : {errQ, errK, errV, errI, errF, errC, errN, errM})
    EXPECT_LT(e, 2e-5);
}

TEST(CpuBackwardOpsTest, MlstmCellMatchesTheFloat64Backward) {
  checkCellBackward(ref::InputGate::Exp, ref::Normalizer::MaxAbs, 15.0, 37, 8, 3);
  checkCellBackward(ref::InputGate::Exp, ref::Normalizer::MaxAbs, 15.0, 16, 16, 1);
  checkCellBackward(ref::InputGate::Sigmoid, ref::Normalizer::MaxAbs, 0.0, 21, 4, 2);
  checkCellBackward(ref::InputGate::Exp, ref::Normalizer::None, 15.0, 9, 3, 4);
  checkCellBackward(ref::InputGate::Exp, ref::Normalizer::MaxAbs, 15.0, 5, 64, 2); // S < L
}

} // namespace
} // namespace xlc::exec
