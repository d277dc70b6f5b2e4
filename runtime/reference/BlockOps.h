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

} // namespace xlc::ref

#endif // XLC_RUNTIME_REFERENCE_BLOCKOPS_H
