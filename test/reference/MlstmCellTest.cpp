//===- MlstmCellTest.cpp - The three mLSTM forms agree (and where they don't) ===//
//
// Random inputs only (fixed seeds), gate pre-activations over the soft-capped range so that the
// max stabiliser and both branches of the normaliser's max are exercised. Errors are
// ‖out − ref‖₂/‖ref‖₂ (relativeError), which is +inf on NaN.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/BlockOps.h"
#include "runtime/reference/MlstmCell.h"
#include "runtime/support/Error.h"
#include "test/reference/RandomCellInputs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace xlc::ref {
namespace {

using testing::Gates;
using testing::HeadInputs;
using testing::name;
using testing::randomHead;
using testing::randomState;

constexpr double kTight = 1e-12; // float64 forms of the same math

Tensor rows(const Tensor &t, std::int64_t begin, std::int64_t end) {
  std::int64_t width = t.rank() == 1 ? 1 : t.dim(1);
  Shape shape = t.shape;
  shape[0] = end - begin;
  return Tensor(shape, std::vector<double>(t.data.begin() + begin * width,
                                           t.data.begin() + end * width));
}

/// Row |r| of a [S, D] tensor as a [D] tensor.
Tensor row(const Tensor &t, std::int64_t r) {
  return Tensor({t.dim(1)}, rows(t, r, r + 1).data);
}

Tensor concatRows(const Tensor &a, const Tensor &b) {
  Shape shape = a.shape;
  shape[0] += b.dim(0);
  std::vector<double> data = a.data;
  data.insert(data.end(), b.data.begin(), b.data.end());
  return Tensor(shape, data);
}

HeadInputs sliceHead(const HeadInputs &in, std::int64_t begin, std::int64_t end) {
  return {rows(in.q, begin, end), rows(in.k, begin, end), rows(in.v, begin, end),
          rows(in.i, begin, end), rows(in.f, begin, end)};
}

double stateMError(double m, double ref) { return std::abs(m - ref) / std::max(1.0, std::abs(ref)); }

/// Errors of one form against another. h is compared two ways:
///  - h: the global ‖Δh‖/‖h‖ of DESIGN.md; meaningful only where the readout is well conditioned;
///  - hScaled: max_t (‖Δh_t‖/‖h_t‖) / cond_t with cond_t = mlstmReadoutCondition (the per-token
///    amplification of rounding), which is what two correct float64 evaluations must satisfy.
struct FormErrors {
  double h = 0, hScaled = 0, condMax = 0, tokenM = 0, denom = 0, C = 0, n = 0, m = 0;
  double others() const { return std::max({tokenM, denom, C, n, m}); }
  void takeMax(const FormErrors &o) {
    h = std::max(h, o.h), hScaled = std::max(hScaled, o.hScaled);
    condMax = std::max(condMax, o.condMax), tokenM = std::max(tokenM, o.tokenM);
    denom = std::max(denom, o.denom), C = std::max(C, o.C), n = std::max(n, o.n);
    m = std::max(m, o.m);
  }
};

constexpr double kScaled = 1e-14;          // ≈ 90 u per unit of conditioning
constexpr double kWellConditioned = 1e3;   // cases with max_t cond_t below this: global ≤ kTight

FormErrors compareOutputs(const MlstmHeadOutputs &out, const MlstmHeadOutputs &ref,
                          const Tensor &cond) {
  FormErrors e;
  e.h = relativeError(out.h, ref.h);
  e.tokenM = relativeError(out.m, ref.m);
  e.denom = relativeError(out.denom, ref.denom);
  std::int64_t seq = ref.h.dim(0), dv = ref.h.dim(1);
  for (std::int64_t t = 0; t < seq; ++t) {
    double diff = 0, norm = 0;
    for (std::int64_t x = 0; x < dv; ++x) {
      double d = out.h.at(t, x) - ref.h.at(t, x);
      diff += d * d;
      norm += ref.h.at(t, x) * ref.h.at(t, x);
    }
    double rel = norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
    if (!std::isfinite(rel))
      rel = std::numeric_limits<double>::infinity();
    e.hScaled = std::max(e.hScaled, rel / cond.at(t));
    e.condMax = std::max(e.condMax, cond.at(t));
  }
  return e;
}

FormErrors compare(const MlstmHeadResult &out, const MlstmHeadResult &ref, const Tensor &cond) {
  FormErrors e = compareOutputs(out, ref, cond);
  e.C = relativeError(out.state.C, ref.state.C);
  e.n = relativeError(out.state.n, ref.state.n);
  e.m = stateMError(out.state.m, ref.state.m);
  return e;
}

/// The agreement two float64 forms of the same math must show.
::testing::AssertionResult consistent(const FormErrors &e) {
  bool ok = e.hScaled < kScaled && e.others() < kTight &&
            (e.condMax > kWellConditioned || e.h < kTight);
  auto result = ok ? ::testing::AssertionSuccess() : ::testing::AssertionFailure();
  return result << "h " << e.h << " (max cond " << e.condMax << ", per-token/cond " << e.hScaled
                << "), m_t " << e.tokenM << ", denom " << e.denom << ", C " << e.C << ", n "
                << e.n << ", m " << e.m;
}

void printErrors(const char *what, const FormErrors &e, std::int64_t cases) {
  std::printf("[%s] %lld cases; worst: h %.2e (per-token/cond %.2e, max cond %.2e), m_t %.2e, "
              "denom %.2e, C %.2e, n %.2e, m %.2e\n",
              what, static_cast<long long>(cases), e.h, e.hScaled, e.condMax, e.tokenM, e.denom,
              e.C, e.n, e.m);
}

//===--------------------------------------------------------------------===//
// Hand-checked recurrent steps
//===--------------------------------------------------------------------===//

TEST(MlstmRecurrent, TwoHandComputedSteps) {
  // DQK = DV = 2. Step 1: ĩ = 1, f̃ = 2 from zero state: m1 = max(logσ(2) + 0, 1) = 1, ia = 1,
  // C1 = k1 v1ᵀ, n1 = k1, q̂1ᵀn1 = (3 − 2)/√2 > e^{−1}, so h1 = (q̂1ᵀk1) v1 / (q̂1ᵀk1 + eps).
  Tensor q({2, 2}, {1.0, 2.0, -0.5, 1.5});
  Tensor k({2, 2}, {3.0, -1.0, 2.0, 0.25});
  Tensor v({2, 2}, {0.5, 2.0, -1.0, 4.0});
  Tensor i({2}, {1.0, -3.0});
  Tensor f({2}, {2.0, -1.0});
  MlstmCellAttrs attrs; // eps 1e-6, exp gate, max_abs
  MlstmHeadResult r = mlstmRecurrent(q, k, v, i, f, nullptr, attrs);

  const double eps = 1e-6, s = 1.0 / std::sqrt(2.0);
  double qk1 = (1.0 * 3.0 + 2.0 * -1.0) * s;
  EXPECT_NEAR(r.m.at(0), 1.0, 1e-15);
  EXPECT_NEAR(r.denom.at(0), qk1, 1e-15);
  EXPECT_NEAR(r.h.at(0, 0), qk1 * 0.5 / (qk1 + eps), 1e-15);
  EXPECT_NEAR(r.h.at(0, 1), qk1 * 2.0 / (qk1 + eps), 1e-15);

  // Step 2: ĩ = −3, f̃ = −1: m2 = max(logσ(−1) + 1, −3) = 1 − log(1 + e) ≈ −0.3133,
  // fa = exp(logσ(−1) + 1 − m2) = 1, ia = exp(−3 − m2).
  double m2 = 1.0 - std::log1p(std::exp(1.0));
  double ia = std::exp(-3.0 - m2);
  double C[2][2], n[2];
  for (int d = 0; d < 2; ++d) {
    n[d] = k.at(0, d) + ia * k.at(1, d);
    for (int e = 0; e < 2; ++e)
      C[d][e] = k.at(0, d) * v.at(0, e) + ia * k.at(1, d) * v.at(1, e);
  }
  double qn = (-0.5 * n[0] + 1.5 * n[1]) * s;
  double denom = std::max(std::abs(qn), std::exp(-m2));
  EXPECT_NEAR(r.m.at(1), m2, 1e-15);
  EXPECT_NEAR(r.denom.at(1), denom, 1e-14);
  for (int e = 0; e < 2; ++e)
    EXPECT_NEAR(r.h.at(1, e), (-0.5 * C[0][e] + 1.5 * C[1][e]) * s / (denom + eps), 1e-14);
  EXPECT_NEAR(r.state.m, m2, 1e-15);
  EXPECT_NEAR(r.state.C.at(1, 1), C[1][1], 1e-14);
  EXPECT_NEAR(r.state.n.at(0), n[0], 1e-14);
}

TEST(MlstmRecurrent, StepApiEqualsRecurrent) {
  Random rng(11);
  HeadInputs in = randomHead(rng, 23, 8, 16, Gates::Realistic);
  MlstmHeadState init = randomState(rng, 8, 16);
  MlstmCellAttrs attrs;
  MlstmHeadResult ref = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, &init, attrs);
  MlstmHeadState state = init;
  Tensor h({23, 16});
  for (std::int64_t t = 0; t < 23; ++t) {
    double denom = 0;
    Tensor ht = mlstmStep(row(in.q, t), row(in.k, t), row(in.v, t), in.i.at(t), in.f.at(t), state,
                          attrs, &denom);
    std::copy(ht.data.begin(), ht.data.end(), h.data.begin() + t * 16);
    EXPECT_EQ(denom, ref.denom.at(t));
  }
  EXPECT_EQ(relativeError(h, ref.h), 0.0);
  EXPECT_EQ(relativeError(state.C, ref.state.C), 0.0);
  EXPECT_EQ(state.m, ref.state.m);
}

TEST(MlstmRecurrent, EmptySequencePassesStateThrough) {
  Random rng(12);
  HeadInputs in = randomHead(rng, 0, 8, 16, Gates::Realistic);
  MlstmHeadState init = randomState(rng, 8, 16);
  for (bool chunkwise : {false, true}) {
    MlstmHeadResult r = chunkwise ? mlstmChunkwise(in.q, in.k, in.v, in.i, in.f, &init, 4, {})
                                  : mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, &init, {});
    EXPECT_EQ(r.h.shape, (Shape{0, 16}));
    EXPECT_EQ(r.state.C.data, init.C.data);
    EXPECT_EQ(r.state.m, init.m);
  }
}

//===--------------------------------------------------------------------===//
// Chunkwise == recurrent
//===--------------------------------------------------------------------===//

TEST(MlstmChunkwise, MatchesRecurrentSweep) {
  const std::pair<std::int64_t, std::int64_t> dims[] = {{8, 16}, {16, 8}, {32, 64}};
  const std::int64_t lengths[] = {1, 5, 17, 64, 100, 130};
  const std::int64_t chunks[] = {1, 3, 16, 64};
  FormErrors worst;
  double maxM = -1e300, minM = 1e300;
  std::int64_t lowerBoundTokens = 0, qnTokens = 0, cases = 0;
  Random rng(2024);
  for (Gates gates : {Gates::Realistic, Gates::SevenBInit, Gates::StrongForget, Gates::WeakForget}) {
    for (auto [dqk, dv] : dims) {
      for (std::int64_t seq : lengths) {
        // The full sweep in the realistic regime; the others at two lengths to stay fast.
        if (gates != Gates::Realistic && seq != 17 && seq != 130)
          continue;
        for (bool withInitial : {false, true}) {
          HeadInputs in = randomHead(rng, seq, dqk, dv, gates);
          MlstmHeadState init = randomState(rng, dqk, dv);
          const MlstmHeadState *initPtr = withInitial ? &init : nullptr;
          MlstmHeadResult ref = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, initPtr, {});
          Tensor cond = mlstmReadoutCondition(in.q, in.k, in.v, in.i, in.f, initPtr, {});
          for (std::int64_t t = 0; t < seq; ++t) {
            maxM = std::max(maxM, ref.m.at(t));
            minM = std::min(minM, ref.m.at(t));
            (ref.denom.at(t) == std::exp(-ref.m.at(t)) ? lowerBoundTokens : qnTokens) += 1;
          }
          for (std::int64_t chunk : chunks) {
            MlstmHeadResult out =
                mlstmChunkwise(in.q, in.k, in.v, in.i, in.f, initPtr, chunk, {});
            FormErrors e = compare(out, ref, cond);
            worst.takeMax(e);
            ++cases;
            EXPECT_TRUE(consistent(e))
                << name(gates) << " DQK " << dqk << " DV " << dv << " S " << seq << " L " << chunk
                << (withInitial ? " with" : " without") << " initial state";
          }
        }
      }
    }
  }
  printErrors("chunkwise vs recurrent", worst, cases);
  std::printf("  m_t range [%.2f, %.2f]; normaliser branch: |q.n| %lld, exp(-m) %lld tokens\n", minM,
              maxM, static_cast<long long>(qnTokens), static_cast<long long>(lowerBoundTokens));
  // The sweep must actually exercise the stabiliser and both branches of the normaliser's max.
  EXPECT_GT(maxM, 12.0);
  EXPECT_LT(minM, -8.0);
  EXPECT_GT(lowerBoundTokens, 100);
  EXPECT_GT(qnTokens, 100);
}

TEST(MlstmChunkwise, SigmoidGateAndNoNormalizerMatchRecurrent) {
  Random rng(7);
  FormErrors worst;
  std::int64_t cases = 0;
  for (InputGate gate : {InputGate::Exp, InputGate::Sigmoid}) {
    for (Normalizer norm : {Normalizer::MaxAbs, Normalizer::None}) {
      MlstmCellAttrs attrs{1e-6, gate, norm};
      for (Gates gates : {Gates::Realistic, Gates::SevenBInit}) {
        HeadInputs in = randomHead(rng, 100, 16, 32, gates);
        MlstmHeadState init = randomState(rng, 16, 32);
        MlstmHeadResult ref = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, &init, attrs);
        Tensor cond = mlstmReadoutCondition(in.q, in.k, in.v, in.i, in.f, &init, attrs);
        for (std::int64_t chunk : {3, 16, 64}) {
          FormErrors e = compare(mlstmChunkwise(in.q, in.k, in.v, in.i, in.f, &init, chunk, attrs),
                                 ref, cond);
          worst.takeMax(e);
          ++cases;
          EXPECT_TRUE(consistent(e)) << toString(gate) << " " << toString(norm) << " "
                                     << name(gates) << " L " << chunk;
        }
      }
    }
  }
  printErrors("chunkwise vs recurrent, {exp, sigmoid} x {max_abs, none}", worst, cases);
}

//===--------------------------------------------------------------------===//
// State carry
//===--------------------------------------------------------------------===//

TEST(MlstmState, TwoPiecesWithThreadedStateEqualOneRun) {
  Random rng(99);
  const std::int64_t seq = 100;
  FormErrors worst;
  std::int64_t cases = 0;
  for (Gates gates : {Gates::Realistic, Gates::SevenBInit}) {
    HeadInputs in = randomHead(rng, seq, 16, 8, gates);
    MlstmHeadState init = randomState(rng, 16, 8);
    for (bool withInitial : {false, true}) {
      const MlstmHeadState *initPtr = withInitial ? &init : nullptr;
      MlstmHeadResult whole = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, initPtr, {});
      Tensor cond = mlstmReadoutCondition(in.q, in.k, in.v, in.i, in.f, initPtr, {});
      for (std::int64_t split : {1, 37, 64, 99}) {
        for (std::int64_t chunk : {0, 5, 16}) { // 0 = recurrent
          auto run = [&](const HeadInputs &part, const MlstmHeadState *s) {
            return chunk == 0 ? mlstmRecurrent(part.q, part.k, part.v, part.i, part.f, s, {})
                              : mlstmChunkwise(part.q, part.k, part.v, part.i, part.f, s, chunk, {});
          };
          MlstmHeadResult first = run(sliceHead(in, 0, split), initPtr);
          MlstmHeadResult second = run(sliceHead(in, split, seq), &first.state);
          MlstmHeadResult joined = second;
          joined.h = concatRows(first.h, second.h);
          joined.m = concatRows(first.m, second.m);
          joined.denom = concatRows(first.denom, second.denom);
          FormErrors e = compare(joined, whole, cond);
          worst.takeMax(e);
          ++cases;
          EXPECT_TRUE(consistent(e)) << name(gates) << " split " << split << " chunk " << chunk;
        }
      }
    }
  }
  printErrors("state carry: two pieces vs one run", worst, cases);

  // The carried state matters: the second piece from a fresh state is different.
  HeadInputs in = randomHead(rng, seq, 16, 8, Gates::WeakForget);
  MlstmHeadResult whole = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, nullptr, {});
  HeadInputs tail = sliceHead(in, 50, seq);
  MlstmHeadResult fresh = mlstmRecurrent(tail.q, tail.k, tail.v, tail.i, tail.f, nullptr, {});
  EXPECT_GT(relativeError(fresh.h, rows(whole.h, 50, seq)), 1e-3);
}

//===--------------------------------------------------------------------===//
// Parallel vs recurrent (see mlstmParallel in MlstmCell.h for the derivation)
//===--------------------------------------------------------------------===//

TEST(MlstmParallel, MatchesRecurrentWhenFirstInputGateDominates) {
  // With ĩ_1 ≥ logσ(f̃_1) the recurrent m_t never takes its initial-state branch, so m^rec = m^par
  // and the two forms agree in h, m_t and denom for every token.
  Random rng(5);
  FormErrors worst;
  std::int64_t cases = 0;
  for (Gates gates : {Gates::Realistic, Gates::StrongForget, Gates::WeakForget}) {
    for (auto [dqk, dv] : {std::pair<std::int64_t, std::int64_t>{8, 16}, {32, 64}}) {
      for (std::int64_t seq : {1, 17, 130}) {
        HeadInputs in = randomHead(rng, seq, dqk, dv, gates);
        in.i.data[0] = std::max(in.i.data[0], logSigmoid(in.f.data[0]));
        MlstmHeadResult rec = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, nullptr, {});
        MlstmHeadOutputs par = mlstmParallel(in.q, in.k, in.v, in.i, in.f, {});
        Tensor cond = mlstmReadoutCondition(in.q, in.k, in.v, in.i, in.f, nullptr, {});
        FormErrors e = compareOutputs(par, rec, cond);
        worst.takeMax(e);
        ++cases;
        EXPECT_TRUE(consistent(e)) << name(gates) << " S " << seq << " DQK " << dqk;
      }
    }
  }
  printErrors("parallel vs recurrent, m^rec = m^par", worst, cases);
}

/// Per-token relative difference of h^par against h^rec, measured along h^rec.
std::vector<double> tokenRelDiff(const Tensor &par, const Tensor &rec) {
  std::int64_t seq = rec.dim(0), dv = rec.dim(1);
  std::vector<double> diff(seq);
  for (std::int64_t t = 0; t < seq; ++t) {
    double num = 0, den = 0;
    for (std::int64_t e = 0; e < dv; ++e) {
      num += (par.at(t, e) - rec.at(t, e)) * rec.at(t, e);
      den += rec.at(t, e) * rec.at(t, e);
    }
    diff[t] = num / den;
  }
  return diff;
}

TEST(MlstmParallel, DiffersFromRecurrentOnlyInTheEpsTerm) {
  // 7B init gates: ĩ ≈ −10 < B_t for the whole sequence, so m^rec = B_t (the m_0 = 0 branch) sits
  // far above m^par ≈ −10, and the lower bound of the normaliser is the active branch (M_t = 1).
  // Both forms compute q̂ᵀC̃ / (M_t + eps·e^{m_t}) with the same M_t; h^par/h^rec − 1 must equal
  // the prediction (M + eps e^{m^rec}) / (M + eps e^{m^par}) − 1 ≈ eps, and vanish with eps = 0.
  Random rng(31);
  const std::int64_t seq = 64, dqk = 16, dv = 32;
  const double eps = 1e-6;
  struct Case {
    const char *what;
    double qkScale;
    Gates gates;
  };
  // Second case: |q̂ᵀñ| ≫ 1 (large q, k; ĩ = −1 after the first token): the |q̂ᵀn| branch of the max
  // is active and the difference shrinks like 1/M_t, but m^rec ≠ m^par still.
  for (Case c : {Case{"lower bound active", 1.0, Gates::SevenBInit},
                 Case{"|q.n| dominant", 6.0, Gates::WeakForget}}) {
    HeadInputs in = randomHead(rng, seq, dqk, dv, c.gates, c.qkScale);
    if (c.gates == Gates::WeakForget)
      for (std::int64_t t = 0; t < seq; ++t)
        in.i.data[t] = -1.0;
    MlstmHeadResult rec = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, nullptr, {eps});
    MlstmHeadOutputs par = mlstmParallel(in.q, in.k, in.v, in.i, in.f, {eps});
    std::vector<double> diff = tokenRelDiff(par.h, rec.h);

    double worstPrediction = 0, maxDiff = 0, minM = 1e300, maxM = 0, minMGap = 1e300;
    for (std::int64_t t = 0; t < seq; ++t) {
      double mRec = rec.m.at(t), mPar = par.m.at(t);
      double M = rec.denom.at(t) * std::exp(mRec); // max(|q̂ᵀñ|, 1), same in both forms
      EXPECT_NEAR(par.denom.at(t) * std::exp(mPar) / M, 1.0, kTight) << c.what << " t " << t;
      double predicted = (M + eps * std::exp(mRec)) / (M + eps * std::exp(mPar)) - 1.0;
      worstPrediction = std::max(worstPrediction, std::abs(diff[t] - predicted));
      EXPECT_LE(std::abs(diff[t]), eps / M + 1e-14) << c.what << " t " << t; // e^{m^rec} <= 1
      maxDiff = std::max(maxDiff, std::abs(diff[t]));
      minM = std::min(minM, M);
      maxM = std::max(maxM, M);
      minMGap = std::min(minMGap, mRec - mPar);
    }
    std::printf("[parallel vs recurrent, %s] m^rec - m^par >= %.2f, M_t in [%.3g, %.3g], "
                "max |h^par/h^rec - 1| = %.3e, |measured - predicted| <= %.2e\n",
                c.what, minMGap, minM, maxM, maxDiff, worstPrediction);
    EXPECT_LT(worstPrediction, 1e-13) << c.what;
    EXPECT_GT(minMGap, 0.5) << c.what << ": the m_0 = 0 branch must be active for the whole sequence";
    if (c.qkScale == 1.0) {
      // The documented difference is real: ≈ eps relative where the lower bound is active.
      EXPECT_NEAR(maxM, 1.0, 1e-14);
      EXPECT_GT(diff[0], 0.5 * eps);
      EXPECT_LT(maxDiff, eps);
    } else {
      // |q̂ᵀñ| dominates for every token: the difference is ≤ eps / M_t, below the first case's.
      EXPECT_GT(minM, 2.0);
      EXPECT_LT(maxDiff, 0.5 * eps);
      EXPECT_GT(maxDiff, 1e-9);
    }
    // eps = 0: the forms are identical although m differs.
    MlstmHeadResult rec0 = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, nullptr, {0.0});
    MlstmHeadOutputs par0 = mlstmParallel(in.q, in.k, in.v, in.i, in.f, {0.0});
    EXPECT_LT(relativeError(par0.h, rec0.h), kTight) << c.what;
    EXPECT_GT(relativeError(par0.m, rec0.m), 0.1) << c.what;
  }
}

TEST(MlstmParallel, NoNormalizerMatchesRecurrentForAllGates) {
  // Normalizer::None has neither max nor eps: the forms are identical for every input.
  Random rng(41);
  double worst = 0;
  for (InputGate gate : {InputGate::Exp, InputGate::Sigmoid}) {
    for (Gates gates : {Gates::Realistic, Gates::SevenBInit, Gates::StrongForget}) {
      HeadInputs in = randomHead(rng, 90, 16, 8, gates);
      MlstmCellAttrs attrs{1e-6, gate, Normalizer::None};
      double e = relativeError(mlstmParallel(in.q, in.k, in.v, in.i, in.f, attrs).h,
                               mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, nullptr, attrs).h);
      worst = std::max(worst, e);
      EXPECT_LT(e, kTight) << toString(gate) << " " << name(gates);
    }
  }
  std::printf("[parallel vs recurrent, normalizer none] worst rel. error %.2e\n", worst);
}

//===--------------------------------------------------------------------===//
// Direct (un-stabilised) formulations
//===--------------------------------------------------------------------===//

/// The textbook recurrences in the un-stabilised scale: C̃ = F C̃ + I k vᵀ with
/// F = σ(f̃), I = σ(ĩ) (sigmoid gate) or F = e^{logσ(f̃)}, I = e^{ĩ} (exp gate), starting from
/// C̃_0 = e^{m_0} C_0. Returns q̂ᵀC̃_t and M_t = max(|q̂ᵀñ_t|, 1) per token.
struct Direct {
  Tensor num; // [S, DV]
  Tensor M;   // [S]
};

Direct directRecurrence(const HeadInputs &in, const MlstmHeadState *init, InputGate gate) {
  std::int64_t seq = in.q.dim(0), dqk = in.q.dim(1), dv = in.v.dim(1);
  Tensor C({dqk, dv}), n({dqk});
  if (init) {
    for (std::int64_t x = 0; x < dqk * dv; ++x)
      C.data[x] = std::exp(init->m) * init->C.data[x];
    for (std::int64_t d = 0; d < dqk; ++d)
      n.data[d] = std::exp(init->m) * init->n.data[d];
  }
  Direct out{Tensor({seq, dv}), Tensor({seq})};
  for (std::int64_t t = 0; t < seq; ++t) {
    double F = sigmoid(in.f.at(t));
    double I = gate == InputGate::Sigmoid ? sigmoid(in.i.at(t)) : std::exp(in.i.at(t));
    double qn = 0;
    for (std::int64_t d = 0; d < dqk; ++d) {
      n.at(d) = F * n.at(d) + I * in.k.at(t, d);
      qn += in.q.at(t, d) / std::sqrt(double(dqk)) * n.at(d);
      for (std::int64_t e = 0; e < dv; ++e) {
        C.at(d, e) = F * C.at(d, e) + I * in.k.at(t, d) * in.v.at(t, e);
      }
    }
    for (std::int64_t e = 0; e < dv; ++e) {
      double acc = 0;
      for (std::int64_t d = 0; d < dqk; ++d)
        acc += in.q.at(t, d) / std::sqrt(double(dqk)) * C.at(d, e);
      out.num.at(t, e) = acc;
    }
    out.M.at(t) = std::max(std::abs(qn), 1.0);
  }
  return out;
}

TEST(MlstmSigmoidGate, EqualsDirectSigmoidRecurrence) {
  // mLSTMsig: C̃ = σ(f̃)C̃ + σ(ĩ) k vᵀ, h = q̂ᵀC̃ / (max(|q̂ᵀñ|, 1) + eps'), computed here without
  // any stabiliser. The reference (exp gating of logσ(ĩ)) has eps' = eps·e^{m_t}; the plain form
  // eps' = eps differs by at most eps relative (m_t ≤ 0 from a zero state).
  Random rng(77);
  double worstExact = 0, worstPlain = 0;
  for (Gates gates : {Gates::Realistic, Gates::SevenBInit, Gates::StrongForget, Gates::WeakForget}) {
    for (bool withInitial : {false, true}) {
      HeadInputs in = randomHead(rng, 80, 16, 8, gates);
      MlstmHeadState init = randomState(rng, 16, 8);
      const MlstmHeadState *initPtr = withInitial ? &init : nullptr;
      Direct direct = directRecurrence(in, initPtr, InputGate::Sigmoid);
      for (double eps : {0.0, 1e-6}) {
        MlstmHeadResult r = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, initPtr,
                                           {eps, InputGate::Sigmoid, Normalizer::MaxAbs});
        Tensor exact(direct.num.shape), plain(direct.num.shape);
        for (std::int64_t t = 0; t < 80; ++t)
          for (std::int64_t e = 0; e < 8; ++e) {
            exact.at(t, e) = direct.num.at(t, e) / (direct.M.at(t) + eps * std::exp(r.m.at(t)));
            plain.at(t, e) = direct.num.at(t, e) / (direct.M.at(t) + eps);
          }
        double eExact = relativeError(r.h, exact), ePlain = relativeError(r.h, plain);
        worstExact = std::max(worstExact, eExact);
        EXPECT_LT(eExact, kTight) << name(gates) << " eps " << eps;
        if (!withInitial) {
          worstPlain = std::max(worstPlain, ePlain);
          EXPECT_LE(ePlain, eps + kTight) << name(gates);
        }
      }
    }
  }
  std::printf("[sigmoid gate vs direct mLSTMsig] exact-eps form %.2e, plain-eps form %.2e\n",
              worstExact, worstPlain);
}

TEST(MlstmNormalizerNone, EqualsDirectUnstabilisedRecurrence) {
  // h_t = q̂ᵀC̃_t with C̃ = e^{logσ(f̃)} C̃ + e^{ĩ} k vᵀ (exp gate) or σ-gated (sigmoid gate),
  // from C̃_0 = e^{m_0} C_0. Exercises the e^{m_t} un-stabilisation up to e^{15}-sized values.
  Random rng(88);
  double worst = 0;
  for (InputGate gate : {InputGate::Exp, InputGate::Sigmoid}) {
    for (Gates gates : {Gates::Realistic, Gates::SevenBInit, Gates::WeakForget}) {
      for (bool withInitial : {false, true}) {
        HeadInputs in = randomHead(rng, 70, 8, 16, gates);
        MlstmHeadState init = randomState(rng, 8, 16);
        const MlstmHeadState *initPtr = withInitial ? &init : nullptr;
        MlstmCellAttrs attrs{1e-6, gate, Normalizer::None};
        Direct direct = directRecurrence(in, initPtr, gate);
        for (std::int64_t chunk : {0, 16}) {
          MlstmHeadResult r =
              chunk ? mlstmChunkwise(in.q, in.k, in.v, in.i, in.f, initPtr, chunk, attrs)
                    : mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, initPtr, attrs);
          double e = relativeError(r.h, direct.num);
          worst = std::max(worst, e);
          EXPECT_LT(e, kTight) << toString(gate) << " " << name(gates) << " chunk " << chunk;
          for (std::int64_t t = 0; t < 70; ++t)
            EXPECT_NEAR(r.denom.at(t) * std::exp(r.m.at(t)), 1.0, 1e-14);
        }
      }
    }
  }
  std::printf("[normalizer none vs direct un-stabilised recurrence] worst rel. error %.2e\n", worst);
}

TEST(MlstmExpGate, MaxAbsEqualsDirectUnstabilisedForm) {
  // The file comment's identity h_t = q̂ᵀC̃_t / (max(|q̂ᵀñ_t|, 1) + eps·e^{m_t}) for the exp gate.
  Random rng(89);
  for (Gates gates : {Gates::Realistic, Gates::SevenBInit}) {
    HeadInputs in = randomHead(rng, 60, 8, 16, gates);
    MlstmHeadState init = randomState(rng, 8, 16);
    MlstmHeadResult r = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, &init, {});
    Direct direct = directRecurrence(in, &init, InputGate::Exp);
    Tensor expected(direct.num.shape);
    for (std::int64_t t = 0; t < 60; ++t)
      for (std::int64_t e = 0; e < 16; ++e)
        expected.at(t, e) = direct.num.at(t, e) / (direct.M.at(t) + 1e-6 * std::exp(r.m.at(t)));
    EXPECT_LT(relativeError(r.h, expected), kTight) << name(gates);
  }
}

//===--------------------------------------------------------------------===//
// Flat (model) layout and argument checking
//===--------------------------------------------------------------------===//

TEST(MlstmCellFlat, EqualsPerHeadCalls) {
  const std::int64_t B = 2, S = 11, NH = 3, DQK = 4, DV = 6;
  Random rng(3);
  Tensor q = rng.normal({B, S, NH * DQK}, 0, 1), k = rng.normal({B, S, NH * DQK}, 0, 1);
  Tensor v = rng.normal({B, S, NH * DV}, 0, 1);
  Tensor i = softCap(rng.uniform({B, S, NH}, -30, 30), 15.0);
  Tensor f = softCap(rng.uniform({B, S, NH}, -30, 30), 15.0);
  MlstmStates init{rng.normal({B, NH, DQK, DV}, 0, 1), rng.normal({B, NH, DQK}, 0, 1),
                   rng.uniform({B, NH}, -3, 3)};
  for (MlstmForm form : {MlstmForm::Recurrent, MlstmForm::Chunkwise, MlstmForm::Parallel}) {
    bool parallel = form == MlstmForm::Parallel;
    MlstmCellResult flat =
        mlstmCell(q, k, v, i, f, NH, parallel ? nullptr : &init, {}, {form, 4});
    EXPECT_EQ(flat.state.C.isEmpty(), parallel);
    for (std::int64_t b = 0; b < B; ++b) {
      for (std::int64_t h = 0; h < NH; ++h) {
        HeadInputs in{Tensor({S, DQK}), Tensor({S, DQK}), Tensor({S, DV}), Tensor({S}), Tensor({S})};
        for (std::int64_t t = 0; t < S; ++t) {
          for (std::int64_t d = 0; d < DQK; ++d) {
            in.q.at(t, d) = q.at(b, t, h * DQK + d);
            in.k.at(t, d) = k.at(b, t, h * DQK + d);
          }
          for (std::int64_t e = 0; e < DV; ++e)
            in.v.at(t, e) = v.at(b, t, h * DV + e);
          in.i.at(t) = i.at(b, t, h);
          in.f.at(t) = f.at(b, t, h);
        }
        MlstmHeadState hs{Tensor({DQK, DV}), Tensor({DQK}), init.m.at(b, h)};
        for (std::int64_t d = 0; d < DQK; ++d) {
          hs.n.at(d) = init.n.at(b, h, d);
          for (std::int64_t e = 0; e < DV; ++e)
            hs.C.at(d, e) = init.C.at(b, h, d, e);
        }
        MlstmHeadResult ref;
        if (parallel)
          static_cast<MlstmHeadOutputs &>(ref) = mlstmParallel(in.q, in.k, in.v, in.i, in.f, {});
        else
          ref = mlstmRecurrent(in.q, in.k, in.v, in.i, in.f, &hs, {});
        for (std::int64_t t = 0; t < S; ++t)
          for (std::int64_t e = 0; e < DV; ++e)
            EXPECT_NEAR(flat.h.at(b, t, h * DV + e), ref.h.at(t, e),
                        kTight * (1 + std::abs(ref.h.at(t, e))))
                << toString(form) << " b " << b << " h " << h << " t " << t;
        if (!parallel) {
          EXPECT_NEAR(flat.state.m.at(b, h), ref.state.m, kTight * (1 + std::abs(ref.state.m)));
          for (std::int64_t d = 0; d < DQK; ++d) {
            EXPECT_NEAR(flat.state.n.at(b, h, d), ref.state.n.at(d), 1e-11);
            EXPECT_NEAR(flat.state.C.at(b, h, d, DV - 1), ref.state.C.at(d, DV - 1), 1e-11);
          }
        }
      }
    }
  }
}

TEST(MlstmCellFlat, RejectsBadArguments) {
  Random rng(4);
  Tensor q = rng.normal({1, 5, 8}, 0, 1), v = rng.normal({1, 5, 12}, 0, 1);
  Tensor g = rng.normal({1, 5, 2}, 0, 1);
  MlstmStates init = MlstmStates::zeros(1, 2, 4, 6);
  EXPECT_NO_THROW(mlstmCell(q, q, v, g, g, 2, &init, {}));
  EXPECT_THROW(mlstmCell(q, q, v, g, g, 3, nullptr, {}), Error); // 8 % 3 != 0
  EXPECT_THROW(mlstmCell(q, rng.normal({1, 5, 4}, 0, 1), v, g, g, 2, nullptr, {}), Error);
  EXPECT_THROW(mlstmCell(q, q, v, rng.normal({1, 4, 2}, 0, 1), g, 2, nullptr, {}), Error);
  EXPECT_THROW(mlstmCell(q, q, v, g, g, 2, &init, {}, {MlstmForm::Parallel}), Error);
  EXPECT_THROW(mlstmCell(q, q, v, g, g, 2, nullptr, {}, {MlstmForm::Chunkwise, 0}), Error);
  MlstmStates wrong = MlstmStates::zeros(1, 2, 6, 4);
  EXPECT_THROW(mlstmCell(q, q, v, g, g, 2, &wrong, {}), Error);
  try {
    mlstmCell(q, q, v, g, g, 2, &wrong, {});
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("initial state C"), std::string::npos) << e.what();
  }
}

} // namespace
} // namespace xlc::ref
