//===- ModelForward.h - float64 reference of the xLSTM forward pass -*- C++ -*-===//
//
// The mLSTM block, the FFN block and the whole-model forward of shared/reference/xlstm-7b.md
// §2.1–2.4, composed from BlockOps and the mLSTM cell. Activations are [B, S, features];
// recurrent state is threaded explicitly (ModelState), so a sequence can be fed in pieces:
// forward(tokens[0:s]) then forward(tokens[s:S]) with the same state equals forward(tokens[0:S]).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_REFERENCE_MODELFORWARD_H
#define XLC_RUNTIME_REFERENCE_MODELFORWARD_H

#include "runtime/reference/MlstmCell.h"
#include "runtime/reference/Model.h"
#include "runtime/reference/Tensor.h"

#include <cstdint>
#include <span>

namespace xlc::ref {

/// The mLSTM layer (§2.3) on the block-normed input x̂ [B, S, d]:
///   q, k, v, o = x̂ W_{q,k,v,o}ᵀ (no bias); ĩ, f̃ = x̂ W_{i,f}ᵀ + b_{i,f} [B, S, NH];
///   ĩ, f̃ ← cap·tanh(·/cap) if config.gateSoftCap;  h = mLSTM cell (num_heads NH, |state| in/out);
///   h ← MultiHeadLayerNorm(h) ⊙ w;  y = (σ(o) ⊙ h) W_outᵀ.
/// Returns y [B, S, d] and updates |state| ([B, NH, ...], see MlstmStates) to the final state.
/// |schedule| must be recurrent or chunkwise (the parallel form cannot carry state).
Tensor mlstmLayer(const Tensor &xNorm, const BlockWeights &weights, const ModelConfig &config,
                  MlstmStates &state, const MlstmSchedule &schedule = {});

/// Pre-norm residual mLSTM block (§2.2): x + mlstmLayer(RMSNorm_mlstm(x)).
Tensor mlstmBlock(const Tensor &x, const BlockWeights &weights, const ModelConfig &config,
                  MlstmStates &state, const MlstmSchedule &schedule = {});

/// SwiGLU feed-forward (§2.4) on x̂ [..., d]: (SiLU(x̂ W_up_gateᵀ) ⊙ x̂ W_upᵀ) W_downᵀ.
Tensor ffn(const Tensor &xNorm, const BlockWeights &weights);

/// Pre-norm residual FFN block (§2.2): x + ffn(RMSNorm_ffn(x)).
Tensor ffnBlock(const Tensor &x, const BlockWeights &weights, const ModelConfig &config);

/// Whole model (§2.1): tokens [batch, seq] (row-major ids in [0, V)) → logits [batch, seq, V].
///   x = Embedding(tokens); for each block: x = ffnBlock(mlstmBlock(x));
///   x = RMSNorm_out(x) if addOutNorm; logits = x W_lmᵀ (W_lm = lm_head; if tied, the
///   embedding unless weights.lmHead holds a stored lm_head.weight);
///   logits ← cap·tanh(logits/cap) if outputLogitSoftCap.
/// |state| holds one MlstmStates per block for this batch (ModelState::zeros to start) and is
/// updated in place. Validates the config, the weights and the state shapes first.
Tensor modelForward(const ModelConfig &config, const ModelWeights &weights,
                    std::span<const std::int64_t> tokens, std::int64_t batch, std::int64_t seq,
                    ModelState &state, const MlstmSchedule &schedule = {});

} // namespace xlc::ref

#endif // XLC_RUNTIME_REFERENCE_MODELFORWARD_H
