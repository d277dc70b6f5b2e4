//===- AdamWTest.cpp - The optimizer's arithmetic and clipping -------------===//

#include "runtime/train/AdamW.h"

#include "test/runtime/ErrorMatchers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace xlc::train {
namespace {

using xlc::testing::expectError;

TEST(AdamW, FirstUpdateIsLrTimesTheSignPlusDecay) {
  // Step 1: m̂ = g, v̂ = g², so the step is lr·g/(|g| + ε) ≈ lr·sign(g), plus lr·λ·p.
  std::vector<float> p{1.0f, -2.0f, 0.5f}, g{0.3f, -4.0f, 0.0f}, m(3, 0.0f), v(3, 0.0f);
  AdamWConfig c;
  adamwUpdate(p, g, m, v, c, 1, 1e-2, 1.0f, true);
  EXPECT_NEAR(p[0], 1.0f - 1e-2f * (1.0f + 0.1f * 1.0f), 1e-6);
  EXPECT_NEAR(p[1], -2.0f - 1e-2f * (-1.0f + 0.1f * -2.0f), 1e-6);
  EXPECT_NEAR(p[2], 0.5f - 1e-2f * (0.1f * 0.5f), 1e-7); // no gradient: decay only
  EXPECT_NEAR(m[1], 0.1f * -4.0f, 1e-6);
  EXPECT_NEAR(v[1], 0.05f * 16.0f, 1e-5);
}

TEST(AdamW, MatchesTheFormulaInDoubleOverManySteps) {
  std::vector<float> p{0.7f}, m{0.0f}, v{0.0f};
  double pd = 0.7, md = 0.0, vd = 0.0;
  AdamWConfig c;
  for (int t = 1; t <= 50; ++t) {
    const float g = std::sin(0.3f * static_cast<float>(t));
    adamwUpdate(p, std::vector<float>{g}, m, v, c, t, 1e-3, 0.5f, false);
    const double gd = 0.5 * g;
    md = c.beta1 * md + (1 - c.beta1) * gd;
    vd = c.beta2 * vd + (1 - c.beta2) * gd * gd;
    pd -= 1e-3 * (md / (1 - std::pow(c.beta1, t)) / (std::sqrt(vd / (1 - std::pow(c.beta2, t))) +
                                                    c.eps));
  }
  EXPECT_NEAR(p[0], pd, 1e-5);
}

TEST(AdamW, DecayRuleNormAndClipping) {
  EXPECT_TRUE(decaysWeight("backbone.blocks.0.mlstm_layer.q.weight", 2));
  EXPECT_TRUE(decaysWeight("lm_head.weight", 2));
  EXPECT_FALSE(decaysWeight("backbone.embeddings.weight", 2));
  EXPECT_FALSE(decaysWeight("backbone.blocks.0.norm_mlstm.weight", 1));
  EXPECT_FALSE(decaysWeight("backbone.blocks.0.mlstm_layer.igate_preact.bias", 1));

  std::vector<float> a{3.0f, 0.0f}, b{4.0f};
  std::vector<std::span<const float>> grads{a, b};
  EXPECT_DOUBLE_EQ(globalGradNorm(grads), 5.0);
  EXPECT_FLOAT_EQ(clipScale(5.0, 1.0), static_cast<float>(1.0 / (5.0 + 1e-6)));
  EXPECT_FLOAT_EQ(clipScale(0.5, 1.0), 1.0f);
  EXPECT_FLOAT_EQ(clipScale(100.0, 0.0), 1.0f);

  std::vector<float> p(2), g(3), m(2), v(2);
  expectError([&] { adamwUpdate(p, g, m, v, AdamWConfig{}, 1, 1e-3, 1.0f, false); },
              {"2 elements", "gradient 3"});
  AdamWConfig bad;
  bad.beta2 = 1.0;
  expectError([&] { bad.validate(); }, {"beta2"});
}

} // namespace
} // namespace xlc::train
