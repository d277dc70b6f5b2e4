//===- AdamW.h - The optimizer's arithmetic, and gradient clipping -*- C++ -*-===//
//
// The host (CPU backend) implementation and the spec of the fused GPU optimizer kernel: one
// update of one tensor in fp32, element by element (xlstm-7b.md §6.2; llm.c's adamw.cuh):
//   g  = s·grad                          s: the global-norm clipping factor (1 if unclipped)
//   m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
//   m̂ = m / (1 − β1^t),     v̂ = v / (1 − β2^t)        t = 1, 2, ... (the update's number)
//   p ← p − lr·( m̂ / (√v̂ + ε) + λ·p )                 λ = weight decay for matrices, else 0
// Weight decay applies to the dense projection matrices only (the 7B's ".*kernel" rule): not to
// the embedding, norms or biases. Clipping scales all gradients by min(1, c / (‖g‖ + 1e-6)) with
// ‖g‖ the global L2 norm over every tensor, summed in float64 in a fixed order (tensor order, then
// element order) so that the same gradients always give the same factor.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TRAIN_ADAMW_H
#define XLC_RUNTIME_TRAIN_ADAMW_H

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>

namespace xlc::train {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weightDecay = 0.1;
  double maxGradNorm = 1.0; ///< ≤ 0: no clipping (the 7B used 0.5)

  /// Throws xlc::Error naming the first bad field.
  void validate() const;
};

/// The constants of one step: the learning rate, the bias corrections c1 = 1 − β1^t and
/// c2 = 1 − β2^t, and the clipping factor (what the GPU kernel takes as launch arguments).
struct AdamWStep {
  double lr = 0.0;
  double c1 = 1.0, c2 = 1.0;
  float gradScale = 1.0f;
  std::int64_t number = 1; ///< t: keys the low-memory mode's stochastic rounding
};
/// The constants of update number |step| (1-based).
AdamWStep adamwStep(const AdamWConfig &config, std::int64_t step, double lr, float gradScale);

/// The scalars of an artifact's optimizer_step for |step| (lr, beta1, beta2, eps, weight_decay,
/// c1, c2, grad_scale, step), as exec::CallArgs::scalars takes them.
std::map<std::string, double, std::less<>> optimizerStepScalars(const AdamWConfig &config,
                                                               const AdamWStep &step);

/// One update of one tensor with the constants of |step| (all spans the same length).
void adamwApply(std::span<float> param, std::span<const float> grad, std::span<float> m,
                std::span<float> v, const AdamWConfig &config, const AdamWStep &step, bool decay);

/// adamwApply with adamwStep(config, step, lr, gradScale); |step| is 1-based.
void adamwUpdate(std::span<float> param, std::span<const float> grad, std::span<float> m,
                 std::span<float> v, const AdamWConfig &config, std::int64_t step, double lr,
                 float gradScale, bool decay);

/// Whether a checkpoint tensor gets weight decay: rank-2 projection matrices, not the embedding
/// (its name ends in "embeddings.weight").
bool decaysWeight(std::string_view checkpointName, std::size_t rank);

/// √(Σ over tensors, Σ over elements of g²), accumulated in float64 in that order.
double globalGradNorm(std::span<const std::span<const float>> grads);

/// min(1, maxNorm / (norm + 1e-6)); 1 when maxNorm ≤ 0 (no clipping).
float clipScale(double norm, double maxNorm);

} // namespace xlc::train

#endif // XLC_RUNTIME_TRAIN_ADAMW_H
