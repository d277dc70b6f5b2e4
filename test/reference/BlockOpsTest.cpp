//===- BlockOpsTest.cpp - Hand-checked cases of the block-level ops -------===//
//
// Expected values are decimal literals computed independently (Python, float64), not the same
// expression as the implementation.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/BlockOps.h"
#include "runtime/support/Error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace xlc::ref {
namespace {

void expectTensorNear(const Tensor &out, const std::vector<double> &expected, double tol) {
  ASSERT_EQ(out.data.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(out.data[i], expected[i], tol) << "element " << i;
}

std::string messageOf(auto &&fn) {
  try {
    fn();
  } catch (const Error &e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BlockOps, RmsNormKnownVector) {
  // mean((1,2,3,4)²) = 7.5 → scale 1/sqrt(7.5 + 1e-6) = 0.36514834732688840.
  Tensor x({2, 4}, {1.0, 2.0, 3.0, 4.0, /*row 2*/ 3.0, -4.0, 0.0, 0.0});
  Tensor w({4}, {1.0, 1.0, 2.0, 0.5});
  Tensor y = rmsNorm(x, w, 1e-6);
  EXPECT_EQ(y.shape, x.shape);
  // Row 2: mean square 25/4 → scale 1/sqrt(6.25 + 1e-6).
  const double s2 = 0.3999999680000038; // 1/sqrt(6.250001)
  expectTensorNear(y,
                   {0.3651483473268884, 0.7302966946537768, 2.1908900839613303, 0.7302966946537768,
                    3.0 * s2, -4.0 * s2, 0.0, 0.0},
                   1e-15);
  // Invariant: with unit weight and eps = 0 every row has mean square 1.
  Tensor u = rmsNorm(x, Tensor({4}, 1.0), 0.0);
  for (int r = 0; r < 2; ++r) {
    double ms = 0;
    for (int j = 0; j < 4; ++j)
      ms += u.at(r, j) * u.at(r, j) / 4.0;
    EXPECT_NEAR(ms, 1.0, 1e-15);
  }
  EXPECT_THROW(rmsNorm(x, Tensor({3}, 1.0), 1e-6), Error);
}

TEST(BlockOps, MultiHeadLayerNormKnownVector) {
  // Head 0: (1,2,3,4): mean 2.5, biased var 1.25. Head 1: (10,10,10,14): mean 11, var 3; weight 2.
  Tensor x({1, 8}, {1, 2, 3, 4, 10, 10, 10, 14});
  Tensor w({8}, {1, 1, 1, 1, 2, 2, 2, 2});
  Tensor y = multiHeadLayerNorm(x, w, 2, 1e-6);
  expectTensorNear(y,
                   {-1.341640249843881, -0.44721341661462705, 0.44721341661462705, 1.341640249843881,
                    -1.1547003459292098, -1.1547003459292098, -1.1547003459292098,
                    3.4641010377876293},
                   1e-14);
  // Normalising over all 8 values at once (one head) would give something else.
  Tensor ones({8}, 1.0);
  EXPECT_GT(relativeError(multiHeadLayerNorm(x, ones, 1, 1e-6), multiHeadLayerNorm(x, ones, 2, 1e-6)),
            0.5);
  EXPECT_THROW(multiHeadLayerNorm(x, w, 3, 1e-6), Error);
  EXPECT_THROW(multiHeadLayerNorm(x, Tensor({4}, 1.0), 2, 1e-6), Error);
}

TEST(BlockOps, LinearIsXTimesWTransposedPlusBias) {
  Tensor x({2, 3}, {1, 2, 3, -1, 0, 2});
  Tensor W({2, 3}, {1, 0, -1, 0.5, 2, 1}); // [out = 2, in = 3], checkpoint layout
  Tensor b({2}, {0.25, -1});
  expectTensorNear(linear(x, W, &b), {1 - 3 + 0.25, 0.5 + 4 + 3 - 1, -1 - 2 + 0.25, -0.5 + 2 - 1},
                   0.0);
  expectTensorNear(linear(x, W), {-2, 7.5, -3, 1.5}, 0.0);
  // Leading axes are rows: [1, 2, 3] → [1, 2, 2].
  EXPECT_EQ(linear(Tensor({1, 2, 3}, x.data), W).shape, (Shape{1, 2, 2}));
  EXPECT_THROW(linear(x, Tensor({3, 2}, 1.0)), Error);
  EXPECT_THROW(linear(x, W, &x), Error);
}

TEST(BlockOps, SoftCapValues) {
  EXPECT_EQ(softCap(0.0, 15.0), 0.0);
  EXPECT_NEAR(softCap(15.0 * std::atanh(0.5), 15.0), 7.5, 1e-14);
  EXPECT_NEAR(softCap(45.0, 30.0), 27.154447609345993, 1e-13);
  EXPECT_EQ(softCap(1e6, 15.0), 15.0);
  EXPECT_EQ(softCap(-1e6, 15.0), -15.0);
  EXPECT_NEAR(softCap(1e-3, 15.0), 1e-3, 1e-11); // ≈ x − x³/(3a²)
  EXPECT_EQ(softCap(-3.7, 15.0), -softCap(3.7, 15.0));
  Tensor t = softCap(Tensor({3}, {-100.0, 1.0, 100.0}), 15.0);
  EXPECT_GT(t.at(0), -15.0);
  EXPECT_LT(t.at(2), 15.0);
  EXPECT_THROW(softCap(t, 0.0), Error);
}

TEST(BlockOps, LogSigmoidStableAtLargeMagnitude) {
  EXPECT_NEAR(logSigmoid(0.0), -std::log(2.0), 1e-16);
  EXPECT_NEAR(logSigmoid(1.0), -0.31326168751822286, 1e-16);
  EXPECT_NEAR(logSigmoid(-1.0), -1.3132616875182228, 1e-15);
  // Far tails: no overflow, no cancellation.
  EXPECT_EQ(logSigmoid(-1000.0), -1000.0);
  EXPECT_EQ(logSigmoid(-1e300), -1e300);
  EXPECT_LE(logSigmoid(1000.0), 0.0);
  EXPECT_GT(logSigmoid(1000.0), -1e-300);
  EXPECT_NEAR(logSigmoid(40.0) / -std::exp(-40.0), 1.0, 1e-15); // −log1p(e^{−40}) ≈ −e^{−40}
  EXPECT_EQ(logSigmoid(-40.0), -40.0 - std::exp(-40.0));
  Tensor t = logSigmoid(Tensor({4}, {-1e4, -15.0, 15.0, 1e4}));
  EXPECT_TRUE(allFinite(t));
  EXPECT_EQ(t.at(0), -1e4);
}

TEST(BlockOps, SigmoidSiluSwigluOutputGate) {
  EXPECT_EQ(sigmoid(-1000.0), 0.0);
  EXPECT_EQ(sigmoid(1000.0), 1.0);
  EXPECT_EQ(silu(-1000.0), 0.0); // not NaN
  Tensor g({3}, {0.0, 1.0, -2.0}), u({3}, {3.0, 4.0, 5.0});
  expectTensorNear(swiglu(g, u), {0.0, 2.9242343145200196, -1.1920292202211755}, 1e-15);
  expectTensorNear(outputGate(g, u), {1.5, 2.9242343145200196, 0.5960146101105877}, 1e-15);
  EXPECT_THROW(swiglu(g, Tensor({2}, 1.0)), Error);
}

TEST(BlockOps, EmbeddingLookupAndResidual) {
  Tensor table({4, 2}, {0, 1, 10, 11, 20, 21, 30, 31});
  std::vector<std::int64_t> tokens{2, 0, 3, 3};
  Tensor x = embedding(table, tokens, {2, 2});
  EXPECT_EQ(x.shape, (Shape{2, 2, 2}));
  expectTensorNear(x, {20, 21, 0, 1, 30, 31, 30, 31}, 0.0);
  std::vector<std::int64_t> bad{1, 4};
  EXPECT_NE(messageOf([&] { embedding(table, bad, {2}); }).find("token id 4"), std::string::npos);
  std::vector<std::int64_t> negative{-1};
  EXPECT_THROW(embedding(table, negative, {1}), Error);
  EXPECT_THROW(embedding(table, tokens, {3}), Error);
  expectTensorNear(add(x, x), {40, 42, 0, 2, 60, 62, 60, 62}, 0.0);
  EXPECT_THROW(add(x, table), Error);
}

TEST(BlockOps, LmHeadWithAndWithoutLogitCap) {
  Tensor x({1, 2}, {3.0, -2.0});
  Tensor W({3, 2}, {10, 0, 0, 10, 1, 1}); // logits 30, -20, 1
  expectTensorNear(lmHead(x, W, std::nullopt), {30.0, -20.0, 1.0}, 0.0);
  expectTensorNear(lmHead(x, W, 30.0),
                   {30.0 * std::tanh(1.0), 30.0 * std::tanh(-20.0 / 30.0), 30.0 * std::tanh(1.0 / 30.0)},
                   1e-14);
  Tensor big = lmHead(x, Tensor({1, 2}, {1e5, 0}), 30.0);
  EXPECT_EQ(big.at(0, 0), 30.0);
}

TEST(TensorSupport, RelativeErrorAndChecks) {
  Tensor a({2}, {3.0, 4.0}), b({2}, {3.0, 4.5});
  EXPECT_NEAR(relativeError(b, a), 0.1, 1e-16);
  EXPECT_EQ(relativeError(a, a), 0.0);
  Tensor nan({2}, {std::numeric_limits<double>::quiet_NaN(), 0.0});
  EXPECT_FALSE(relativeError(nan, a) < 1.0); // NaN never passes
  EXPECT_THROW(relativeError(a, Tensor({3}, 1.0)), Error);
  EXPECT_THROW(Tensor({2, 2}, std::vector<double>{1.0}), Error);
  EXPECT_THROW(a.at(2), Error);
  EXPECT_NE(messageOf([&] { checkShape(a, {3}, "the thing"); }).find("the thing: expected shape [3], got [2]"),
            std::string::npos);
  // Random is deterministic in its seed.
  Random r1(5), r2(5);
  EXPECT_EQ(r1.normal({4}, 0, 1).data, r2.normal({4}, 0, 1).data);
}

} // namespace
} // namespace xlc::ref
