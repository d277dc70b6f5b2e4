//===- ModelBackward.h - float64 reference of the training objective and its gradient -*- C++ -*-===//
//
// The loss the trainer minimises and its exact gradient w.r.t. every checkpoint tensor, in float64:
// the oracle of the compiled train_step (CPU backend in CI, the GPU against it and against torch
// autograd). Composed from the ops of BlockOps.h and their gradients, and the cell's
// (MlstmCellBackward.h), by hand-written reverse mode over ModelForward.h's forward:
//
//   logits = modelForward(tokens) from the zero state (a training sequence starts fresh),
//   loss   = mean over positions p with targets[p] ≥ 0 of −log softmax(logits_p)[targets[p]].
//
// Gradients are per checkpoint tensor (ModelWeights holds them, keyed as the checkpoint), never
// per fused or folded tensor: with tied embeddings and no stored lm_head, the head's gradient is
// added to the embedding's. The caller shifts targets (targets[b, t] = tokens[b, t + 1], −1 at the
// last position: transformers' labels[:, 1:] against logits[:, :−1]).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_REFERENCE_MODELBACKWARD_H
#define XLC_RUNTIME_REFERENCE_MODELBACKWARD_H

#include "runtime/reference/Model.h"

#include <cstdint>
#include <span>
#include <vector>

namespace xlc::ref {

struct ModelLoss {
  double loss = 0.0;      ///< mean cross-entropy over counted positions (0 if none)
  std::int64_t count = 0; ///< counted positions
};

/// The objective alone (forward only): tokens and targets [batch, seq], row-major. |resets|
/// (empty, or [batch, seq]): nonzero where a token starts a document, whose forget gates are
/// then kResetForgetGate after the soft cap (MlstmCell.h; train_step's `resets` input).
ModelLoss modelLoss(const ModelConfig &config, const ModelWeights &weights,
                    std::span<const std::int64_t> tokens, std::span<const std::int64_t> targets,
                    std::int64_t batch, std::int64_t seq,
                    std::span<const std::uint8_t> resets = {});

struct ModelLossAndGrads : ModelLoss {
  /// ∂loss/∂ of every tensor of |weights|, same shapes and names (empty where |weights| is).
  ModelWeights grads;
};

/// The objective and its gradient. Activations of every block are kept, so memory grows with
/// batch·seq·(width of the widest layer)·blocks: a reference for test shapes.
/// |resets| as for modelLoss: the forget-gate gradient is zero where a gate was overridden.
ModelLossAndGrads modelLossAndGrads(const ModelConfig &config, const ModelWeights &weights,
                                    std::span<const std::int64_t> tokens,
                                    std::span<const std::int64_t> targets, std::int64_t batch,
                                    std::int64_t seq, std::span<const std::uint8_t> resets = {});

/// targets[b, t] = tokens[b, t + 1], and −1 (not counted) at t = seq − 1.
std::vector<std::int64_t> nextTokenTargets(std::span<const std::int64_t> tokens,
                                           std::int64_t batch, std::int64_t seq);

} // namespace xlc::ref

#endif // XLC_RUNTIME_REFERENCE_MODELBACKWARD_H
