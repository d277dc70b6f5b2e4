//===- MlstmCellBackwardTest.cpp - The cell's gradients against finite differences -===//
//
// L = ⟨W_h, h⟩ + ⟨W_C, C_S⟩ + ⟨W_n, n_S⟩ + w_m·m_S with random weights W (so every output and
// every element of the final state is read), differentiated by mlstmRecurrentBackward and by
// central differences of mlstmRecurrent w.r.t. every input element, over gate regimes, both
// input-gate kinds, both normalisers, with and without an initial state. Small sizes: the
// finite differences run the forward twice per input element.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/MlstmCellBackward.h"

#include "runtime/reference/MlstmCell.h"
#include "runtime/support/Error.h"
#include "test/reference/FiniteDifference.h"
#include "test/reference/RandomCellInputs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace xlc::ref {
namespace {

using testing::Gates;
using testing::HeadInputs;
using testing::gradientError;
using testing::inner;
using testing::innerAbs;
using testing::numericDerivative;
using testing::numericGradient;

constexpr double kGradTol = 1e-6; // gradientError of a gradient vs finite differences

struct Case {
  Gates gates;
  InputGate inputGate;
  Normalizer normalizer;
  bool withInitial;
  std::int64_t seq;
};

std::string describe(const Case &c) {
  return std::string(testing::name(c.gates)) + "/" + std::string(toString(c.inputGate)) + "/" +
         std::string(toString(c.normalizer)) + (c.withInitial ? "/initial" : "/zeros") + "/S" +
         std::to_string(c.seq);
}

struct Tally {
  int lowerBoundTokens = 0, denTokens = 0; // which branch of the normaliser's max was active
};

void checkCase(const Case &c, std::uint64_t seed, Tally &tally) {
  SCOPED_TRACE(describe(c));
  constexpr std::int64_t kDqk = 4, kDv = 3;
  Random rng(seed);
  HeadInputs in = testing::randomHead(rng, c.seq, kDqk, kDv, c.gates);
  MlstmHeadState init = testing::randomState(rng, kDqk, kDv);
  MlstmCellAttrs attrs{1e-6, c.inputGate, c.normalizer};
  MlstmHeadState *initPtr = c.withInitial ? &init : nullptr;

  // Scale the output weights so that each term of L is O(1) whatever the regime.
  MlstmHeadResult fwd = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, initPtr, attrs);
  auto maxAbs = [](const Tensor &t) {
    double m = 1e-300;
    for (double x : t.data)
      m = std::max(m, std::abs(x));
    return m;
  };
  Tensor wh = rng.normal(fwd.h.shape, 0.0, 1.0 / maxAbs(fwd.h));
  MlstmHeadState wFinal{rng.normal({kDqk, kDv}, 0.0, 1.0 / maxAbs(fwd.state.C)),
                        rng.normal({kDqk}, 0.0, 1.0 / maxAbs(fwd.state.n)), rng.normal(0.0, 0.1)};
  for (std::int64_t t = 0; t < c.seq; ++t) {
    if (c.normalizer == Normalizer::MaxAbs && fwd.denom.data[t] == std::exp(-fwd.m.data[t]))
      ++tally.lowerBoundTokens;
    else
      ++tally.denTokens;
  }

  auto loss = [&] {
    MlstmHeadResult r = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, initPtr, attrs);
    return inner(wh, r.h) + inner(wFinal.C, r.state.C) + inner(wFinal.n, r.state.n) +
           wFinal.m * r.state.m;
  };
  const double floor = 1e-3 * (innerAbs(wh, fwd.h) + innerAbs(wFinal.C, fwd.state.C) +
                               innerAbs(wFinal.n, fwd.state.n) + std::abs(wFinal.m * fwd.state.m));
  MlstmHeadGrads g =
      mlstmRecurrentBackward(in.q, in.k, in.v, in.i, in.f, initPtr, attrs, wh, &wFinal);

  EXPECT_LT(gradientError(g.q, numericGradient(loss, in.q), floor), kGradTol) << "dq";
  EXPECT_LT(gradientError(g.k, numericGradient(loss, in.k), floor), kGradTol) << "dk";
  EXPECT_LT(gradientError(g.v, numericGradient(loss, in.v), floor), kGradTol) << "dv";
  EXPECT_LT(gradientError(g.iPre, numericGradient(loss, in.i), floor), kGradTol) << "di";
  EXPECT_LT(gradientError(g.fPre, numericGradient(loss, in.f), floor), kGradTol) << "df";
  if (c.withInitial) {
    EXPECT_LT(gradientError(g.initial.C, numericGradient(loss, init.C), floor), kGradTol) << "dC0";
    EXPECT_LT(gradientError(g.initial.n, numericGradient(loss, init.n), floor), kGradTol) << "dn0";
    const double dm0 = numericDerivative(loss, init.m);
    EXPECT_NEAR(g.initial.m, dm0, kGradTol * (std::abs(dm0) + floor)) << "dm0";
  }
}

TEST(MlstmCellBackward, MatchesFiniteDifferencesOverRegimesGatesAndNormalisers) {
  Tally tally;
  std::uint64_t seed = 1000;
  for (Gates gates :
       {Gates::Realistic, Gates::SevenBInit, Gates::StrongForget, Gates::WeakForget})
    for (InputGate ig : {InputGate::Exp, InputGate::Sigmoid})
      for (Normalizer norm : {Normalizer::MaxAbs, Normalizer::None})
        for (bool withInitial : {false, true})
          checkCase({gates, ig, norm, withInitial, 9}, ++seed, tally);
  // Both branches of max(|q̂ᵀn|, e^{−m}) carried gradient somewhere in the sweep.
  EXPECT_GT(tally.lowerBoundTokens, 10);
  EXPECT_GT(tally.denTokens, 10);
}

TEST(MlstmCellBackward, LongerSequencesAndSingleToken) {
  Tally tally;
  checkCase({Gates::Realistic, InputGate::Exp, Normalizer::MaxAbs, true, 33}, 7, tally);
  checkCase({Gates::SevenBInit, InputGate::Exp, Normalizer::MaxAbs, false, 33}, 8, tally);
  checkCase({Gates::Realistic, InputGate::Exp, Normalizer::MaxAbs, true, 1}, 9, tally);
}

TEST(MlstmCellBackward, EmptySequencePassesTheFinalStateGradientThrough) {
  MlstmHeadState init = MlstmHeadState::zeros(4, 3), dFinal = MlstmHeadState::zeros(4, 3);
  Random rng(3);
  dFinal.C = rng.normal({4, 3}, 0.0, 1.0);
  dFinal.n = rng.normal({4}, 0.0, 1.0);
  dFinal.m = 0.5;
  MlstmHeadGrads g = mlstmRecurrentBackward(Tensor({0, 4}), Tensor({0, 4}), Tensor({0, 3}),
                                            Tensor({0}), Tensor({0}), &init, {}, Tensor({0, 3}),
                                            &dFinal);
  EXPECT_EQ(relativeError(g.initial.C, dFinal.C), 0.0);
  EXPECT_EQ(relativeError(g.initial.n, dFinal.n), 0.0);
  EXPECT_EQ(g.initial.m, 0.5);
}

TEST(MlstmCellBackward, ModelLayoutEqualsPerHeadBackward) {
  constexpr std::int64_t B = 2, S = 5, NH = 3, DQK = 4, DV = 2;
  Random rng(11);
  Tensor q = rng.normal({B, S, NH * DQK}, 0, 1), k = rng.normal({B, S, NH * DQK}, 0, 1);
  Tensor v = rng.normal({B, S, NH * DV}, 0, 1);
  Tensor i = rng.uniform({B, S, NH}, -10, 10), f = rng.uniform({B, S, NH}, -5, 10);
  Tensor dh = rng.normal({B, S, NH * DV}, 0, 1);
  MlstmStates init = MlstmStates::zeros(B, NH, DQK, DV);
  init.C = rng.normal(init.C.shape, 0, 1);
  init.n = rng.normal(init.n.shape, 0, 1);
  init.m = rng.uniform(init.m.shape, -2, 2);
  MlstmCellAttrs attrs;
  MlstmCellGrads g = mlstmCellBackward(q, k, v, i, f, NH, &init, attrs, dh);

  // The loss ⟨dh, h⟩ through the model-layout forward: finite differences on a few inputs.
  auto loss = [&] { return inner(dh, mlstmCell(q, k, v, i, f, NH, &init, attrs).h); };
  const double floor = 1e-3 * innerAbs(dh, mlstmCell(q, k, v, i, f, NH, &init, attrs).h);
  EXPECT_LT(gradientError(g.q, numericGradient(loss, q), floor), kGradTol);
  EXPECT_LT(gradientError(g.fPre, numericGradient(loss, f), floor), kGradTol);
  EXPECT_LT(gradientError(g.initial.m, numericGradient(loss, init.m), floor), kGradTol);
}

TEST(MlstmCellBackward, RejectsMisShapedGradients) {
  Tensor q({3, 4}), v({3, 2}), g({3});
  EXPECT_THROW(mlstmRecurrentBackward(q, q, v, g, g, nullptr, {}, Tensor({3, 3})), Error);
  MlstmHeadState bad = MlstmHeadState::zeros(4, 3);
  EXPECT_THROW(mlstmRecurrentBackward(q, q, v, g, g, nullptr, {}, Tensor({3, 2}), &bad), Error);
}

} // namespace
} // namespace xlc::ref

namespace xlc::ref {
namespace {

// The chunkwise organisation of the backward (the kernels' algorithm) against the recurrent one:
// the same derivative, so float64 rounding apart; the floor is that of the finite-difference
// tests scaled down by 1e3 (Λ·1e-12 absolute per element).
TEST(MlstmChunkwiseBackward, EqualsTheRecurrentBackward) {
  constexpr double kTol = 1e-9;
  std::uint64_t seed = 5000;
  int cases = 0;
  for (Gates gates :
       {Gates::Realistic, Gates::SevenBInit, Gates::StrongForget, Gates::WeakForget})
    for (InputGate ig : {InputGate::Exp, InputGate::Sigmoid})
      for (Normalizer norm : {Normalizer::MaxAbs, Normalizer::None})
        for (std::int64_t chunk : {1, 4, 7, 16})
          for (bool withInitial : {false, true}) {
            const std::int64_t seq = 13, dqk = 4, dv = 3;
            SCOPED_TRACE(std::string(testing::name(gates)) + "/" + std::string(toString(ig)) + "/" +
                         std::string(toString(norm)) + "/L" + std::to_string(chunk) +
                         (withInitial ? "/initial" : "/zeros"));
            Random rng(++seed);
            HeadInputs in = testing::randomHead(rng, seq, dqk, dv, gates);
            MlstmHeadState init = testing::randomState(rng, dqk, dv);
            const MlstmCellAttrs attrs{1e-6, ig, norm};
            const MlstmHeadState *initPtr = withInitial ? &init : nullptr;
            MlstmHeadResult fwd = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, initPtr, attrs);
            Tensor dh = rng.normal(fwd.h.shape, 0.0, 1.0);
            MlstmHeadState dFinal = testing::randomState(rng, dqk, dv);
            const double floor = 1e-6 * (innerAbs(dh, fwd.h) + innerAbs(dFinal.C, fwd.state.C) +
                                         innerAbs(dFinal.n, fwd.state.n) +
                                         std::abs(dFinal.m * fwd.state.m));
            MlstmHeadGrads ref = mlstmRecurrentBackward(in.q, in.k, in.v, in.i, in.f, initPtr,
                                                        attrs, dh, &dFinal);
            MlstmHeadGrads got = mlstmChunkwiseBackward(in.q, in.k, in.v, in.i, in.f, initPtr,
                                                        chunk, attrs, dh, &dFinal);
            EXPECT_LT(gradientError(got.q, ref.q, floor), kTol) << "dq";
            EXPECT_LT(gradientError(got.k, ref.k, floor), kTol) << "dk";
            EXPECT_LT(gradientError(got.v, ref.v, floor), kTol) << "dv";
            EXPECT_LT(gradientError(got.iPre, ref.iPre, floor), kTol) << "di";
            EXPECT_LT(gradientError(got.fPre, ref.fPre, floor), kTol) << "df";
            EXPECT_LT(gradientError(got.initial.C, ref.initial.C, floor), kTol) << "dC0";
            EXPECT_LT(gradientError(got.initial.n, ref.initial.n, floor), kTol) << "dn0";
            EXPECT_NEAR(got.initial.m, ref.initial.m, kTol * (std::abs(ref.initial.m) + floor))
                << "dm0";
            ++cases;
          }
  EXPECT_EQ(cases, 128);
}

TEST(MlstmChunkwiseBackward, RejectsABadChunkSize) {
  Tensor q({3, 4}), v({3, 2}), g({3});
  EXPECT_THROW(mlstmChunkwiseBackward(q, q, v, g, g, nullptr, 0, {}, Tensor({3, 2})), Error);
}

} // namespace
} // namespace xlc::ref
