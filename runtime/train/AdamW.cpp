//===- AdamW.cpp - The optimizer's arithmetic, and gradient clipping ------===//

#include "runtime/train/AdamW.h"

#include "runtime/support/Error.h"

#include <algorithm>
#include <cmath>

namespace xlc::train {

void AdamWConfig::validate() const {
  check(beta1 >= 0.0 && beta1 < 1.0, "AdamW: beta1 {} must be in [0, 1)", beta1);
  check(beta2 >= 0.0 && beta2 < 1.0, "AdamW: beta2 {} must be in [0, 1)", beta2);
  check(eps > 0.0, "AdamW: eps {} must be positive", eps);
  check(weightDecay >= 0.0, "AdamW: weight decay {} must be >= 0", weightDecay);
}

AdamWStep adamwStep(const AdamWConfig &config, std::int64_t step, double lr, float gradScale) {
  check(step >= 1, "AdamW: update number {} must be >= 1", step);
  return {lr, 1.0 - std::pow(config.beta1, static_cast<double>(step)),
          1.0 - std::pow(config.beta2, static_cast<double>(step)), gradScale, step};
}

std::map<std::string, double, std::less<>> optimizerStepScalars(const AdamWConfig &config,
                                                               const AdamWStep &step) {
  return {{"lr", step.lr},
          {"beta1", config.beta1},
          {"beta2", config.beta2},
          {"eps", config.eps},
          {"weight_decay", config.weightDecay},
          {"c1", step.c1},
          {"c2", step.c2},
          {"grad_scale", step.gradScale},
          {"step", static_cast<double>(step.number)}};
}

void adamwApply(std::span<float> param, std::span<const float> grad, std::span<float> m,
                std::span<float> v, const AdamWConfig &config, const AdamWStep &step, bool decay) {
  check(grad.size() == param.size() && m.size() == param.size() && v.size() == param.size(),
        "AdamW: parameter of {} elements with gradient {}, m {}, v {}", param.size(), grad.size(),
        m.size(), v.size());
  check(step.c1 > 0.0 && step.c2 > 0.0, "AdamW: bias corrections {} and {} must be positive",
        step.c1, step.c2);
  const float b1 = static_cast<float>(config.beta1), b2 = static_cast<float>(config.beta2);
  const float c1 = static_cast<float>(step.c1), c2 = static_cast<float>(step.c2);
  const float eps = static_cast<float>(config.eps), rate = static_cast<float>(step.lr);
  const float lambda = decay ? static_cast<float>(config.weightDecay) : 0.0f;
  for (std::size_t i = 0; i < param.size(); ++i) {
    const float g = step.gradScale * grad[i];
    m[i] = b1 * m[i] + (1.0f - b1) * g;
    v[i] = b2 * v[i] + (1.0f - b2) * g * g;
    const float mHat = m[i] / c1, vHat = v[i] / c2;
    param[i] -= rate * (mHat / (std::sqrt(vHat) + eps) + lambda * param[i]);
  }
}

void adamwUpdate(std::span<float> param, std::span<const float> grad, std::span<float> m,
                 std::span<float> v, const AdamWConfig &config, std::int64_t step, double lr,
                 float gradScale, bool decay) {
  adamwApply(param, grad, m, v, config, adamwStep(config, step, lr, gradScale), decay);
}

bool decaysWeight(std::string_view checkpointName, std::size_t rank) {
  return rank == 2 && !checkpointName.ends_with("embeddings.weight");
}

double globalGradNorm(std::span<const std::span<const float>> grads) {
  double sum = 0.0;
  for (std::span<const float> g : grads)
    for (float x : g)
      sum += static_cast<double>(x) * static_cast<double>(x);
  return std::sqrt(sum);
}

float clipScale(double norm, double maxNorm) {
  if (maxNorm <= 0.0)
    return 1.0f;
  return static_cast<float>(std::min(1.0, maxNorm / (norm + 1e-6)));
}

} // namespace xlc::train
