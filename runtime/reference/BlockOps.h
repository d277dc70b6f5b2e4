//===- BlockOps.h - float64 reference of the block-level ops ----*- C++ -*-===//
//
// The element-wise, normalisation and projection ops that surround the mLSTM cell in an xLSTM
// block (shared/reference/xlstm-7b.md §2.1–2.4), in float64, on the flat layout: the last axis is
// the feature axis and all leading axes are rows (so [B, S, F] and [B·S, F] mean the same thing).
// Weights are laid out as in the checkpoint: a linear layer's W is [out, in] (y = x Wᵀ + b).
//
// The 7B computes norm reductions in fp32 and casts back before the weight multiply; in float64
// there is nothing to cast, so each op here is the plain formula.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_REFERENCE_BLOCKOPS_H
#define XLC_RUNTIME_REFERENCE_BLOCKOPS_H

#include "runtime/reference/Tensor.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <span>

namespace xlc::ref {

//===--------------------------------------------------------------------===//
// Scalar functions (overflow-free for every finite input)
//===--------------------------------------------------------------------===//

/// log σ(x) = −log(1 + e^{−x}), evaluated so that no exponential of a positive number is taken:
/// x ≥ 0: −log1p(e^{−x});  x < 0: x − log1p(e^{x}). Exact to rounding at both tails
/// (logσ(−1000) = −1000, logσ(1000) = −0).
inline double logSigmoid(double x) {
  return x >= 0.0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}

/// σ(x) = 1 / (1 + e^{−x}) without overflow for large |x|.
inline double sigmoid(double x) {
  if (x >= 0.0)
    return 1.0 / (1.0 + std::exp(-x));
  double e = std::exp(x);
  return e / (1.0 + e);
}

/// SiLU(x) = x σ(x).
inline double silu(double x) { return x * sigmoid(x); }

/// Soft-cap a·tanh(x/a), a > 0: odd, monotone, ≈ x for |x| ≪ a, bounded by a (§9 item 10).
inline double softCap(double x, double cap) { return cap * std::tanh(x / cap); }

//===--------------------------------------------------------------------===//
// Tensor ops
//===--------------------------------------------------------------------===//

/// Embedding lookup: out[..., :] = table[token, :] for table [V, D]; tokens are |tokens| laid out
/// as |tokenShape| (e.g. [B, S]) and the result is [tokenShape..., D]. No scaling (§2.1 step 1).
/// Throws xlc::Error naming the position of a token outside [0, V).
Tensor embedding(const Tensor &table, std::span<const std::int64_t> tokens,
                 const Shape &tokenShape);

/// RMSNorm over the last axis: y = x · rsqrt(mean(x²) + eps) · w, w [D], no bias (§2.2).
Tensor rmsNorm(const Tensor &x, const Tensor &weight, double eps);

/// Linear layer y = x Wᵀ + b over the last axis: x [..., in], W [out, in], b [out] or null.
Tensor linear(const Tensor &x, const Tensor &weight, const Tensor *bias = nullptr);

/// Element-wise a·tanh(x/a).
Tensor softCap(const Tensor &x, double cap);

/// Element-wise logσ(x).
Tensor logSigmoid(const Tensor &x);

/// Multi-head LayerNorm (§2.3 step 5): the last axis [NH·DV] is split into |numHeads| groups of
/// DV values; each group is mean-centred and divided by sqrt(biased variance + eps); the result is
/// multiplied by |weight| [NH·DV]. No bias. (LayerNorm per (token, head), one weight over all heads.)
Tensor multiHeadLayerNorm(const Tensor &x, const Tensor &weight, std::int64_t numHeads,
                          double eps);

/// Output gate (§2.3 step 6): σ(oPre) ⊙ h, same shapes.
Tensor outputGate(const Tensor &oPre, const Tensor &h);

/// SwiGLU gating (§2.4): SiLU(gate) ⊙ up, same shapes.
Tensor swiglu(const Tensor &gate, const Tensor &up);

/// Residual add a + b, same shapes.
Tensor add(const Tensor &a, const Tensor &b);

/// LM head (§2.1 steps 4–5): logits = x Wᵀ (W [V, D], no bias), then cap·tanh(logits/cap) when a
/// cap is given (30 for the 7B).
Tensor lmHead(const Tensor &x, const Tensor &weight, std::optional<double> logitSoftCap);

//===--------------------------------------------------------------------===//
// Gradients (reverse mode). Each takes the op's forward inputs and dy = ∂L/∂y and returns ∂L/∂ of
// every input, so that an op and its derivative sit side by side; test/reference checks each
// against finite differences of the op above.
//===--------------------------------------------------------------------===//

struct LinearGrads {
  Tensor x;      ///< dy W, shaped like x
  Tensor weight; ///< Σ_rows dyᵀ x, [out, in]
  Tensor bias;   ///< Σ_rows dy, [out]; empty when the op had no bias
};
/// y = x Wᵀ + b.
LinearGrads linearBackward(const Tensor &x, const Tensor &weight, bool hasBias, const Tensor &dy);

struct NormGrads {
  Tensor x;
  Tensor weight;
};
/// y = x·r·w, r = (mean(x²) + eps)^{−1/2}: with g = dy ⊙ w,
/// dx = r·g − r³·x·⟨g, x⟩/D and dw = Σ_rows dy ⊙ x·r.
NormGrads rmsNormBackward(const Tensor &x, const Tensor &weight, double eps, const Tensor &dy);

/// Per head: x̂ = (x − μ)·r, r = (var + eps)^{−1/2}, y = x̂ ⊙ w: with g = dy ⊙ w,
/// dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)) and dw = Σ_rows dy ⊙ x̂.
NormGrads multiHeadLayerNormBackward(const Tensor &x, const Tensor &weight,
                                     std::int64_t numHeads, double eps, const Tensor &dy);

/// y = a·tanh(x/a): dx = dy·(1 − tanh²(x/a)).
Tensor softCapBackward(const Tensor &x, double cap, const Tensor &dy);

struct GatedGrads {
  Tensor gate;  ///< ∂L/∂ of the gate's pre-activation (oPre, or the SwiGLU gate branch)
  Tensor value; ///< ∂L/∂ of the gated value (h, or the SwiGLU up branch)
};
/// y = σ(o)·h: do = dy·h·σ(o)(1 − σ(o)), dh = dy·σ(o).
GatedGrads outputGateBackward(const Tensor &oPre, const Tensor &h, const Tensor &dy);
/// y = SiLU(g)·u: dg = dy·u·σ(g)(1 + g(1 − σ(g))), du = dy·SiLU(g).
GatedGrads swigluBackward(const Tensor &gate, const Tensor &up, const Tensor &dy);

/// ∂L/∂table [vocab, D] of an embedding lookup: row t accumulates dy of every position holding
/// token t, summed in position order (deterministic).
Tensor embeddingBackward(std::span<const std::int64_t> tokens, std::int64_t vocab,
                         const Tensor &dy);

/// The next-token objective of §2.1 step 6: mean over counted positions of
/// −log softmax(logits_p)[target_p], for logits [..., V] and one target per row; a negative target
/// is not counted (transformers' ignore index −100, or a padded position). Also ∂loss/∂logits
/// = (softmax − onehot)/count on counted rows, 0 on the others. Log-sum-exp with the row max
/// subtracted. Throws naming the position of a target ≥ V.
struct CrossEntropy {
  double loss = 0.0;      ///< 0 when nothing is counted
  std::int64_t count = 0; ///< counted positions
  Tensor dLogits;
};
CrossEntropy crossEntropy(const Tensor &logits, std::span<const std::int64_t> targets);

} // namespace xlc::ref

#endif // XLC_RUNTIME_REFERENCE_BLOCKOPS_H
