//===- MlstmCellBackward.h - float64 reference gradients of the mLSTM cell -*- C++ -*-===//
//
// The exact derivative of the mLSTM cell of MlstmCell.h, in float64: the spec that the
// backward kernels (chunkwise, training) and the CPU backend's backward are checked against, and
// itself checked against central finite differences of the forward (test/reference).
//
// The function differentiated is the recurrent form, read as a function of everything it reads,
//     (q, k, v, ĩ, f̃, C_0, n_0, m_0)  ↦  (h_1..h_S, C_S, n_S, m_S),
// including the stabiliser m and the normaliser's max. Nothing is treated as a constant:
//   * TFLA's backward (xlstm-7b.md §3.5) drops the gradient through the denominator
//     max(|q̂ᵀn|, e^{−m}), arguing that the multi-head LayerNorm after the cell cancels it. That is
//     only true up to the LayerNorm's eps, and the cell's own gradient is then not the cell's.
//     Here the denominator is differentiated: through |q̂ᵀn| (sign(q̂ᵀn) into q̂ and n) where that
//     branch of the max is active, through e^{−m} into m otherwise.
//   * m is differentiated like any other value (torch autograd does the same through the
//     stabilised computation). The output depends on m only through eps (h = q̂ᵀC̃ /
//     (max(|q̂ᵀñ|, 1) + eps·e^{m})), so these terms are small, but they are the exact derivative.
// At ties of a max (measure zero for real inputs) the branch the forward took gets the whole
// gradient: std::max(a, b) returns a when a == b, and so does this backward.
//
// One step, reversed (stabilised states, lf = logσ(f̃), ig = ĩ or logσ(ĩ)):
//   forward   m_t = max(lf_t + m_{t−1}, ig_t), fa = e^{lf_t + m_{t−1} − m_t}, ia = e^{ig_t − m_t},
//             C_t = fa C_{t−1} + ia k vᵀ, n_t = fa n_{t−1} + ia k,
//             num = C_tᵀ q̂, den = q̂ᵀn_t, denom = max(|den|, e^{−m_t}), h = num / (denom + eps)
//   backward  (δC, δn, δm hold ∂L/∂ of the state after step t; δh = ∂L/∂h_t)
//             δnum = δh / (denom + eps),  δdenom = −δh·h / (denom + eps)
//             δden = δdenom·sign(den) if |den| ≥ e^{−m_t}, else δm += −δdenom·e^{−m_t}
//             δC += q̂ δnumᵀ,  δn += δden q̂,  δq = (C_t δnum + δden n_t) / √DQK
//             δk = ia (δC v + δn),  δv = ia δCᵀk,  δia = kᵀδC v + δnᵀk,  δfa = ⟨δC, C_{t−1}⟩ + ⟨δn, n_{t−1}⟩
//             δlf = fa δfa,  δm_{t−1} = fa δfa,  δig = ia δia,  δm −= fa δfa + ia δia
//             through the max: δlf += δm, δm_{t−1} += δm (first branch) or δig += δm (second)
//             δf̃ = δlf σ(−f̃);  δĩ = δig (exp gate) or δig σ(−ĩ) (sigmoid gate)
//             δC ← fa δC, δn ← fa δn, δm ← δm_{t−1}
// Normalizer::None reads out h = e^{m_t} num: δnum = e^{m_t} δh, δm += δh·h, and no denominator.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_REFERENCE_MLSTMCELLBACKWARD_H
#define XLC_RUNTIME_REFERENCE_MLSTMCELLBACKWARD_H

#include "runtime/reference/MlstmCell.h"
#include "runtime/reference/Tensor.h"

#include <cstdint>

namespace xlc::ref {

/// ∂L/∂ of one (batch, head)'s inputs: q, k [S, DQK], v [S, DV], iPre, fPre [S] (the gate
/// pre-activations as the cell receives them, i.e. after any soft-cap), and of the initial state.
struct MlstmHeadGrads {
  Tensor q, k, v;
  Tensor iPre, fPre;
  MlstmHeadState initial;
};

/// Reverse mode through mlstmRecurrent(q, k, v, iPre, fPre, initial, attrs) given dh = ∂L/∂h
/// [S, DV] and, optionally, ∂L/∂ of the final state (null: the loss does not read it). |initial|
/// null means the zero state, whose gradient is returned all the same.
MlstmHeadGrads mlstmRecurrentBackward(const Tensor &q, const Tensor &k, const Tensor &v,
                                      const Tensor &iPre, const Tensor &fPre,
                                      const MlstmHeadState *initial, const MlstmCellAttrs &attrs,
                                      const Tensor &dh, const MlstmHeadState *dFinal = nullptr);

/// The same derivative computed the way the chunkwise backward kernels compute it (§3.5, but
/// exact): the state before every chunk recomputed by the chunkwise forward, then per chunk, last
/// to first, with (δC, δn, δm) the gradient of the state after it:
///   readout   as in the recurrent backward, per token, with num_t = β_t q̂_tᵀC_{k−1}
///             + Σ_{j≤t} w_tj (q̂_t·k_j) v_j (den_t likewise with n_{k−1} and 1), giving
///             δq̂_t = β_t (C_{k−1} δnum_t + δden_t n_{k−1}) + Σ_j w_tj (v_j·δnum_t + δden_t) k_j,
///             δk_j, δv_j from the same pairs, δC_{k−1} += Σ_t β_t q̂_t δnum_tᵀ (δn likewise),
///             δβ_t and δw_tj = (q̂_t·k_j)(v_j·δnum_t + δden_t);
///   update    C_k = d C_{k−1} + Σ_j ā_j k_j v_jᵀ: δk_j += ā_j (δC v_j + δn), δv_j += ā_j δCᵀk_j,
///             δd = ⟨δC, C_{k−1}⟩ + ⟨δn, n_{k−1}⟩, δā_j = k_jᵀδC v_j + δn·k_j, δC ← d δC;
///   log space β_t = e^{b_t + m_{k−1} − m_t}, w_tj = e^{b_t − b_j + ig_j − m_t}, d = e^{g + m_{k−1} − m_k},
///             ā_j = e^{a_j − m_k}: each exponential's gradient (value × its δ) goes to the
///             exponent's terms; m_t and m_k pass theirs to the argmax of their max;
///   gates     b_t = Σ_{s≤t} lf_s, g = b_L, a_j = Σ_{s>j} lf_s + ig_j summed back into δlf, δig.
/// Agrees with mlstmRecurrentBackward to float64 rounding for every input (both are the
/// derivative of the same function, and m_t is the same max in both forms).
MlstmHeadGrads mlstmChunkwiseBackward(const Tensor &q, const Tensor &k, const Tensor &v,
                                      const Tensor &iPre, const Tensor &fPre,
                                      const MlstmHeadState *initial, std::int64_t chunkSize,
                                      const MlstmCellAttrs &attrs, const Tensor &dh,
                                      const MlstmHeadState *dFinal = nullptr);

/// ∂L/∂ of the cell's inputs on the model layout (MlstmCell.h's mlstmCell): q, k, v, iPre, fPre
/// and, when an initial state was given, of it (else an empty MlstmStates).
struct MlstmCellGrads {
  Tensor q, k, v;
  Tensor iPre, fPre;
  MlstmStates initial;
};

/// Reverse mode through mlstmCell on the model layout, dh [B, S, NH·DV]; |dFinal| as above,
/// [B, NH, ...]. The forward form does not matter (all forms compute the same function up to
/// rounding; mlstmCell's parallel form differs only by eps, see MlstmCell.h): this is the
/// derivative of the recurrent form.
MlstmCellGrads mlstmCellBackward(const Tensor &q, const Tensor &k, const Tensor &v,
                                 const Tensor &iPre, const Tensor &fPre, std::int64_t numHeads,
                                 const MlstmStates *initial, const MlstmCellAttrs &attrs,
                                 const Tensor &dh, const MlstmStates *dFinal = nullptr);

} // namespace xlc::ref

#endif // XLC_RUNTIME_REFERENCE_MLSTMCELLBACKWARD_H
