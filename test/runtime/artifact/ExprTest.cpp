//===- ExprTest.cpp - Affine size expressions and shapes ------------------===//

#include "runtime/artifact/Expr.h"
#include "runtime/artifact/Artifact.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <limits>

using namespace xlc::artifact;
using namespace xlc::artifact::testing;

namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

TEST(Expr, EvaluatesEveryTermWithCeilDivision) {
  Expr e{64, 3, 2, 5, 64};         // ceil((64 + 3B + 2S + 5BS) / 64)
  EXPECT_EQ(e.evaluate(1, 1), 2u); // 74 / 64
  EXPECT_EQ(e.evaluate(0, 0), 1u); // exact
  EXPECT_EQ(e.evaluate(8, 8192), (64 + 24 + 16384 + 327680 + 63) / 64);
  EXPECT_EQ(Expr::batchSeq(8192).evaluate(8, 8192), 8192u * 8 * 8192);
  EXPECT_EQ(Expr::constant(7).evaluate(123, 456), 7u);
  EXPECT_EQ((Expr{0, 0, 1, 0, 16}).evaluate(1, 1), 1u);  // ceil(1/16)
  EXPECT_EQ((Expr{0, 0, 1, 0, 16}).evaluate(1, 32), 2u); // exact multiple
  EXPECT_EQ((Expr{0, 0, 1, 0, 16}).evaluate(1, 33), 3u);
}

TEST(Expr, PrintsReadably) {
  EXPECT_EQ(Expr{}.toString(), "0");
  EXPECT_EQ(Expr::constant(4096).toString(), "4096");
  EXPECT_EQ(Expr::batchSeq(8192).toString(), "8192*B*S");
  EXPECT_EQ((Expr{64, 0, 2, 0, 64}).toString(), "ceil((64 + 2*S)/64)");
  EXPECT_EQ((Expr{0, 0, 1, 0, 16}).toString(), "ceil(S/16)");
  EXPECT_EQ((Expr{1, 1, 1, 1, 1}).toString(), "1 + B + S + B*S");
  EXPECT_EQ(Expr::batch().toString(), "B");
  EXPECT_EQ((Expr{0, 0, 0, 0, 3}).toString(), "ceil(0/3)");
}

TEST(Expr, OverflowIsAnErrorNamingTheOwner) {
  Expr big = Expr::batchSeq(kMax / 4);
  EXPECT_FALSE(big.tryEvaluate(2, 4).has_value());
  EXPECT_EQ(
      errorOf([&] { big.evaluate(2, 4, "model.xlca: buffer 3 'x': size"); }),
      fmt::format("model.xlca: buffer 3 'x': size: {}*B*S overflows u64 at B=2, S=4", kMax / 4));
  // Every intermediate is checked: the sum, each product, and B·S itself.
  EXPECT_FALSE((Expr{kMax, 1, 0, 0, 1}).tryEvaluate(1, 0).has_value());
  EXPECT_FALSE((Expr{0, 0, 0, 1, 1}).tryEvaluate(kMax, 2).has_value());
  EXPECT_FALSE((Expr{0, 0, kMax, 0, 1}).tryEvaluate(0, 2).has_value());
  // ... but B·S overflowing does not matter when its coefficient is 0.
  EXPECT_EQ((Expr{5, 0, 0, 0, 1}).tryEvaluate(kMax, kMax), 5u);
  // The ceil never forms sum + div - 1.
  EXPECT_EQ((Expr{kMax, 0, 0, 0, kMax}).evaluate(0, 0), 1u);
  EXPECT_EQ((Expr{kMax, 0, 0, 0, 2}).evaluate(0, 0), kMax / 2 + 1);
}

TEST(Expr, ZeroDivisorIsAnErrorNotACrash) {
  Expr e{1, 0, 0, 0, 0};
  EXPECT_FALSE(e.tryEvaluate(1, 1).has_value());
  EXPECT_EQ(errorOf([&] { e.evaluate(1, 1, "grid[0]"); }),
            "grid[0]: expression ceil(1/0) divides by zero");
}

TEST(Expr, NormalizesExactDivisions) {
  EXPECT_EQ((Expr{64, 128, 0, 256, 64}).normalized(), (Expr{1, 2, 0, 4, 1}));
  EXPECT_EQ((Expr{65, 128, 0, 256, 64}).normalized(), (Expr{65, 128, 0, 256, 64}));
  EXPECT_EQ((Expr{0, 0, 0, 0, 9}).normalized(), Expr{});
}

TEST(Expr, BuildersStayExactOrRefuse) {
  Expr e = Expr::batchSeq(64) * 4 + Expr::constant(256) + 2 * Expr::seq(3);
  EXPECT_EQ(e, (Expr{256, 0, 6, 256, 1}));
  EXPECT_EQ(ceilDiv(Expr::seq(), 16), (Expr{0, 0, 1, 0, 16}));
  EXPECT_EQ(ceilDiv(ceilDiv(Expr::seq(), 4), 4), (Expr{0, 0, 1, 0, 16}));
  EXPECT_EQ(ceilDiv(Expr::batchSeq(64), 64), Expr::batchSeq());
  EXPECT_NE(errorOf([] { ceilDiv(Expr::seq(), 16) + Expr::constant(1); }).find("not affine"),
            std::string::npos);
  EXPECT_NE(errorOf([] { Expr::constant(kMax) + Expr::constant(1); }).find("overflows u64"),
            std::string::npos);
  EXPECT_NE(errorOf([] { Expr::batch(kMax) * 2; }).find("overflows u64"), std::string::npos);
  EXPECT_NE(errorOf([] { ceilDiv(Expr::seq(), 0); }).find("by zero"), std::string::npos);
}

TEST(Expr, Symbols) {
  EXPECT_EQ(parseSymbol("BS"), Symbol::BS);
  EXPECT_FALSE(parseSymbol("b").has_value());
  EXPECT_EQ(symbolName(Symbol::S), "S");
  EXPECT_EQ(symbolValue(Symbol::BS, 8, 8192), 65536u);
  EXPECT_FALSE(symbolValue(Symbol::BS, kMax, 2).has_value());
}

TEST(Shape, ProductsAreAffine) {
  const Dim B = Dim::batch(), S = Dim::seq();
  EXPECT_EQ(shapeProduct({B, S, 2048}, 2), Expr::batchSeq(4096));
  EXPECT_EQ(shapeProduct({B, 4, 8}, 4), Expr::batch(128));
  EXPECT_EQ(shapeProduct({S}), Expr::seq());
  EXPECT_EQ(shapeProduct({}, 8), Expr::constant(8));
  EXPECT_FALSE(shapeProduct({B, B}).has_value());
  EXPECT_FALSE(shapeProduct({S, 4, S}).has_value());
  EXPECT_FALSE(shapeProduct({1ull << 40, 1ull << 40}).has_value());
  EXPECT_EQ(shapeToString({B, S, 2048}), "[B, S, 2048]");

  Buffer b{3, "x", BufferClass::Activation, DType::F32, {B, B}, std::nullopt};
  EXPECT_NE(errorOf([&] { byteSize(b); }).find("buffer 3 'x': shape [B, B] of f32"),
            std::string::npos);
}

TEST(Enums, SpellingsRoundTrip) {
  for (DType d : {DType::F32, DType::BF16, DType::F16, DType::I64, DType::I32, DType::U8})
    EXPECT_EQ(parseDType(dtypeName(d)), d);
  EXPECT_EQ(dtypeSize(DType::BF16), 2u);
  EXPECT_EQ(dtypeSize(DType::I64), 8u);
  for (BufferClass c : {BufferClass::Weight, BufferClass::Input, BufferClass::Output,
                        BufferClass::Activation, BufferClass::Workspace, BufferClass::State})
    EXPECT_EQ(parseBufferClass(bufferClassName(c)), c);
  EXPECT_FALSE(parseDType("BF16").has_value());
  EXPECT_FALSE(parseBufferClass("gradients").has_value());
  EXPECT_EQ(parseBufferClass("gradient"), BufferClass::Gradient);
  EXPECT_EQ(parseEpilogue("residual_add"), Epilogue::ResidualAdd);
  EXPECT_EQ(parseParamKind("f32"), ParamKind::F32);
}

TEST(LiveRanges, SpanFirstToLastTouch) {
  Artifact a = makeTestArtifact();
  auto ranges = liveRanges(*a.findFunction("prefill"), a.buffers.size());
  ASSERT_TRUE(ranges[kX].has_value());
  EXPECT_EQ(ranges[kX]->first, 0u);
  EXPECT_EQ(ranges[kX]->last, 4u); // the residual operand of the out projection
  EXPECT_EQ(ranges[kXn]->first, 1u);
  EXPECT_EQ(ranges[kXn]->last, 2u);
  EXPECT_FALSE(ranges[kRes].has_value()); // decode_step only
}

} // namespace
