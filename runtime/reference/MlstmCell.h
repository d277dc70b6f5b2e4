//===- MlstmCell.h - float64 reference of the mLSTM cell --------*- C++ -*-===//
//
// The mLSTM cell in three mathematically equivalent forms, in float64. This is the spec: every
// kernel (chunkwise prefill, fused decode step) and the CPU backend are compared with it.
// Equation numbers refer to shared/reference/xlstm-7b.md.
//
// Per (batch, head), for tokens t = 1..S, with q_t, k_t ∈ R^DQK, v_t ∈ R^DV and the gate
// pre-activations ĩ_t, f̃_t (already soft-capped by the caller, §2.3 step 2):
//
//   lf_t = logσ(f̃_t)                                  forget gate, in log space
//   m_t  = max(lf_t + m_{t−1}, ĩ_t)                    stabiliser ("max state")
//   fa_t = exp(lf_t + m_{t−1} − m_t),  ia_t = exp(ĩ_t − m_t)
//   C_t  = fa_t C_{t−1} + ia_t k_t v_tᵀ                k is NOT scaled
//   n_t  = fa_t n_{t−1} + ia_t k_t
//   q̂_t  = q_t / √DQK                                 only q is scaled
//   h_t  = q̂_tᵀC_t / ( max(|q̂_tᵀn_t|, exp(−m_t)) + eps )                     (§2.5)
//
// State convention: (C, n, m) are the *stabilised* states. The un-stabilised states they stand for
// are C̃ = e^m C and ñ = e^m n; in those terms C̃_t = e^{lf_t} C̃_{t−1} + e^{ĩ_t} k_t v_tᵀ and
// h_t = q̂ᵀC̃_t / (max(|q̂ᵀñ_t|, 1) + eps·e^{m_t}). The default initial state is zeros with
// m_0 = 0 (the recurrent and chunkwise conventions of §2.5/§3.2).
//
// Tensors per (batch, head): q, k [S, DQK]; v [S, DV]; iPre, fPre [S]; C [DQK, DV]; n [DQK].
// S may be 0 (then h is [0, DV] and the state passes through unchanged).
//
// ---- Input gate kind ------------------------------------------------------------------------
// InputGate::Exp is the exponential gate above. InputGate::Sigmoid (mLSTMsig, TFLA paper) runs the
// very same stabilised equations with ĩ_t replaced by logσ(ĩ_t). Since exp(logσ(ĩ)) = σ(ĩ), the
// un-stabilised states then follow
//     C̃_t = σ(f̃_t) C̃_{t−1} + σ(ĩ_t) k_t v_tᵀ,   ñ_t = σ(f̃_t) ñ_{t−1} + σ(ĩ_t) k_t
// (multiply the stabilised update by e^{m_t}: fa_t e^{m_t} = σ(f̃_t) e^{m_{t−1}},
//  ia_t e^{m_t} = σ(ĩ_t)), and
//     h_t = e^{−m_t} q̂ᵀC̃_t / ( e^{−m_t} max(|q̂ᵀñ_t|, 1) + eps )
//         = q̂ᵀC̃_t / ( max(|q̂ᵀñ_t|, 1) + eps·e^{m_t} ),
// which is the mLSTMsig cell with normaliser max(|q̂ᵀñ|, 1), except that eps enters scaled by
// e^{m_t}. From m_0 = 0 both terms of the max are ≤ 0, so m_t ≤ 0 and eps·e^{m_t} ≤ eps: the
// two differ by at most eps relative. The stabiliser is harmless here (σ ≤ 1 cannot overflow) but
// keeps one code path, one state layout and one kernel family for both gate kinds.
//
// ---- Normalizer -----------------------------------------------------------------------------
// Normalizer::MaxAbs is the formula above. Normalizer::None returns the un-normalised readout in
// the un-stabilised scale, h_t = q̂_tᵀC̃_t = e^{m_t} · q̂_tᵀC_t (no max, no eps). This is the only
// choice that is the same function of the inputs in all three forms (they use different m_t, see
// the parallel form below) and it is what the mLSTMsig kernels compute with normalize=False.
// Note |h| can reach e^{15}·S·|q̂ᵀk|·|v| with soft-capped gates; fine in float64.
//
// ---- Per-token outputs ----------------------------------------------------------------------
// Besides h every form returns, per token, m_t and denom_t, where h_t = num_t / (denom_t + eps)
// with num_t = q̂_tᵀC_t (stabilised). For MaxAbs denom_t = max(|q̂_tᵀn_t|, exp(−m_t)) (the kernels'
// vecN_out; m_t is vecM_out, §3.3); for None denom_t = exp(−m_t) and h_t = num_t / denom_t (eps
// does not enter). The backward pass (a later issue) consumes exactly these.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_REFERENCE_MLSTMCELL_H
#define XLC_RUNTIME_REFERENCE_MLSTMCELL_H

#include "runtime/reference/Tensor.h"

#include <cstdint>
#include <string_view>

namespace xlc::ref {

enum class InputGate { Exp, Sigmoid };
enum class Normalizer { MaxAbs, None };
enum class MlstmForm { Recurrent, Chunkwise, Parallel };

std::string_view toString(InputGate gate);   // "exp" | "sigmoid" (the IR attribute spelling)
std::string_view toString(Normalizer norm);  // "max_abs" | "none"
std::string_view toString(MlstmForm form);   // "recurrent" | "chunkwise" | "parallel"

/// The forget gate's pre-activation, after the soft cap, at a token that starts a document inside
/// a training sequence (xlstm-7b.md §6.3): logσ(−25) ≈ −25 multiplies the carried state by
/// ~1.4e-11, i.e. the document starts from (numerically) the zero state. No capped gate can reach
/// it (the cap's range is ±15), so the override is applied after the cap, and the raw
/// pre-activation gets no gradient there.
inline constexpr double kResetForgetGate = -25.0;

/// The cell op's attributes.
struct MlstmCellAttrs {
  double eps = 1e-6; ///< Added to the denominator (MaxAbs only). 1e-6 in the 7B config.
  InputGate inputGate = InputGate::Exp;
  Normalizer normalizer = Normalizer::MaxAbs;
};

/// Stabilised recurrent state of one (batch, head): C [DQK, DV], n [DQK], scalar m.
struct MlstmHeadState {
  Tensor C;
  Tensor n;
  double m = 0.0;

  /// C = 0, n = 0, m = 0: the default initial state.
  static MlstmHeadState zeros(std::int64_t dqk, std::int64_t dv);
};

/// Per-token outputs of one (batch, head): h [S, DV], m [S], denom [S] (see the file comment).
struct MlstmHeadOutputs {
  Tensor h;
  Tensor m;
  Tensor denom;
};

/// Outputs plus the final state (after the last token; the initial state if S = 0).
struct MlstmHeadResult : MlstmHeadOutputs {
  MlstmHeadState state;
};

//===--------------------------------------------------------------------===//
// The three forms, per (batch, head)
//===--------------------------------------------------------------------===//

/// One decode step (§2.5, §4.2) on single-token inputs q, k [DQK], v [DV]. Updates |state| in
/// place and returns h [DV]; |denom| (optional) receives denom_t.
Tensor mlstmStep(const Tensor &q, const Tensor &k, const Tensor &v, double iPre, double fPre,
                 MlstmHeadState &state, const MlstmCellAttrs &attrs, double *denom = nullptr);

/// Recurrent form (§2.5): the step applied token by token. |initial| may be null (zeros, m_0 = 0).
/// This is the definition the other forms are measured against.
MlstmHeadResult mlstmRecurrent(const Tensor &q, const Tensor &k, const Tensor &v,
                               const Tensor &iPre, const Tensor &fPre,
                               const MlstmHeadState *initial, const MlstmCellAttrs &attrs);

/// Chunkwise form (§3.1–3.3) with chunk length |chunkSize| ≥ 1; S need not be a multiple of it
/// (the last chunk is partial). For a chunk of length L with positions j = 1..L, state
/// (C_{k−1}, n_{k−1}, m_{k−1}) before it, and ĩ already mapped for the gate kind:
///   b_j = Σ_{s≤j} lf_s,  g = b_L,  a_j = Σ_{s=j+1..L} lf_s + ĩ_j   (a by reverse cumsum, the
///                                                              stable form: no b_L − b_j)
///   inter-chunk: m_k = max(g + m_{k−1}, max_j a_j),
///                C_k = e^{g + m_{k−1} − m_k} C_{k−1} + Σ_j e^{a_j − m_k} k_j v_jᵀ  (n likewise)
///   intra-chunk: log D_tj = Σ_{s=j+1..t} lf_s + ĩ_j (j ≤ t; accumulated from t downwards, again
///                without differences of cumulative sums), m_comb_t = max(b_t + m_{k−1}, max_j log D_tj),
///                β_t = e^{b_t + m_{k−1} − m_comb_t},
///                num_t = β_t q̂_tᵀC_{k−1} + Σ_j e^{log D_tj − m_comb_t} (q̂_tᵀk_j) v_j, den_t likewise
///                with n_{k−1} and 1 in place of v_j, h_t = num_t / (max(|den_t|, e^{−m_comb_t}) + eps).
/// m_comb_t equals the recurrent m_t exactly (both are the max over the same set of log-weights,
/// including the initial-state term b + m_0), so this form equals mlstmRecurrent up to rounding
/// for every input, initial state included: ~1e-13 relative in float64, more only on tokens whose
/// readout is ill-conditioned (see mlstmReadoutCondition). No −10 floor on the
/// running max here (TFLA's MINIMUM_MAX_VAL, §3.4, is a kernel deviation measured against this).
MlstmHeadResult mlstmChunkwise(const Tensor &q, const Tensor &k, const Tensor &v,
                               const Tensor &iPre, const Tensor &fPre,
                               const MlstmHeadState *initial, std::int64_t chunkSize,
                               const MlstmCellAttrs &attrs);

/// Parallel (quadratic) form (§2.6): log D_tj = Σ_{s=j+1..t} lf_s + ĩ_j (j ≤ t),
/// m_t = max_j log D_tj, D̄ = exp(log D − m_t), C̃ = (Q Kᵀ/√DQK) ⊙ D̄,
/// denom_t = max(|Σ_j C̃_tj|, exp(−m_t)), H = (C̃ / (denom + eps)) V. No initial state, and no
/// initial-state term inside the max, and it produces no final state.
///
/// How it differs from the recurrent form (zero initial state). Both compute exactly
///     h_t = q̂ᵀC̃_t / ( max(|q̂ᵀñ_t|, 1) + eps·e^{m_t} )
/// with the same un-stabilised C̃_t = Σ_{j≤t} e^{log D_tj} k_j v_jᵀ: the lower bound exp(−m_t) of
/// the max is the stabilised form of the same bound 1 in both. They differ only in m_t:
///     m_t^par = max_j log D_tj,   m_t^rec = max(B_t + m_0, m_t^par),  B_t = Σ_{s≤t} lf_s, m_0 = 0.
/// Hence (a) with eps = 0, or with Normalizer::None, the forms are identical for all inputs;
/// (b) they are identical whenever m^rec = m^par, which holds for every t as soon as
///     ĩ_1 ≥ lf_1 (because log D_t1 = B_t − lf_1 + ĩ_1; ĩ in log space, i.e. logσ(ĩ) for the
///     sigmoid gate);
/// (c) otherwise — strongly negative input gates relative to the cumulative forget, e.g. the 7B
///     init (ĩ ≈ −10, f̃ ∈ [3, 6]) for the first few hundred tokens — m^rec = B_t ≤ 0 exceeds
///     m^par, and h^par/h^rec = (M_t + eps e^{m^rec}) / (M_t + eps e^{m^par}), M_t = max(|q̂ᵀñ_t|, 1):
///     a relative difference of up to eps (≈1e-6), largest where the lower bound is the active
///     branch of the max (|q̂ᵀn| < exp(−m): M = 1), shrinking like 1/|q̂ᵀñ_t| where |q̂ᵀñ| dominates.
/// So §2.6's "differ when |q̂ᵀn| < exp(−m)" is where the difference is largest, not where it lives:
/// it lives in the eps term. The per-token m and denom also differ (by e^{m^rec − m^par}), while
/// denom·e^{m} = M_t agrees.
MlstmHeadOutputs mlstmParallel(const Tensor &q, const Tensor &k, const Tensor &v,
                               const Tensor &iPre, const Tensor &fPre,
                               const MlstmCellAttrs &attrs);

/// Per-token condition number of the readout [S]: how much relative rounding in the terms of the
/// sums behind h_t can be amplified in ‖h_t‖. With w_tj = e^{log D_tj − m_t}, β_t the weight of
/// the initial state (e^{B_t + m_0 − m_t}) and |q̂| taken element-wise:
///   A_t     = β_t |q̂_t|ᵀ|n_0| + Σ_j w_tj |q̂_t|ᵀ|k_j|                  (mass behind q̂ᵀn)
///   Ā_t[e]  = β_t (|q̂_t|ᵀ|C_0|)[e] + Σ_j w_tj (|q̂_t|ᵀ|k_j|) |v_j[e]|    (mass behind q̂ᵀC)
///   cond_t  = ‖Ā_t‖ / ‖num_t‖ + A_t / denom_t     (the second term only for MaxAbs)
/// An evaluation with unit roundoff u should satisfy ‖Δh_t‖ / ‖h_t‖ ≲ c·u·cond_t, c growing mildly
/// with S and DQK. Why this matters: random inputs with soft-capped gates regularly produce tokens
/// where |q̂ᵀn| is a heavily cancelled sum just above exp(−m) (max cond ≈ 1.1e4 over the
/// 288-case chunkwise test sweep, S ≤ 130), and such tokens have large h and dominate
/// ‖out − ref‖/‖ref‖ (in float64 about 1 random case in 200 exceeds 1e-12 for that reason alone). Kernel tests should scale their
/// per-token tolerance by cond_t (or exclude tokens with cond_t·u ≳ tolerance) rather than loosen
/// the global tolerance for all tokens.
Tensor mlstmReadoutCondition(const Tensor &q, const Tensor &k, const Tensor &v,
                             const Tensor &iPre, const Tensor &fPre,
                             const MlstmHeadState *initial, const MlstmCellAttrs &attrs);

//===--------------------------------------------------------------------===//
// The model's flat layout (the IR op: one cell op with a num_heads attribute)
//===--------------------------------------------------------------------===//

/// States of all (batch, head) pairs: C [B, NH, DQK, DV], n [B, NH, DQK], m [B, NH].
struct MlstmStates {
  Tensor C;
  Tensor n;
  Tensor m;

  static MlstmStates zeros(std::int64_t batch, std::int64_t numHeads, std::int64_t dqk,
                           std::int64_t dv);
  /// Throws xlc::Error naming |what| unless the three tensors have the shapes above.
  void checkShapes(std::int64_t batch, std::int64_t numHeads, std::int64_t dqk, std::int64_t dv,
                   std::string_view what) const;
};

/// Which form runs the cell, and its chunk size (chunkwise only).
struct MlstmSchedule {
  MlstmForm form = MlstmForm::Chunkwise;
  std::int64_t chunkSize = 64;
};

struct MlstmCellResult {
  Tensor h;           ///< [B, S, NH·DV]
  MlstmStates state;  ///< Final states; empty tensors (isEmpty()) for the parallel form.
};

/// The cell on the model layout: q, k [B, S, NH·DQK], v [B, S, NH·DV], iPre, fPre [B, S, NH]
/// (head h owns columns [h·D, (h+1)·D) of q, k, v and column h of the gates, i.e. the
/// "[B,S,NH,D] viewed as [B,S,NH·D]" reshape of §2.3 step 3), returning h [B, S, NH·DV] in the same
/// layout. |initial| may be null (zeros, m = 0); the parallel form rejects an initial state.
MlstmCellResult mlstmCell(const Tensor &q, const Tensor &k, const Tensor &v, const Tensor &iPre,
                          const Tensor &fPre, std::int64_t numHeads, const MlstmStates *initial,
                          const MlstmCellAttrs &attrs, const MlstmSchedule &schedule = {});

} // namespace xlc::ref

#endif // XLC_RUNTIME_REFERENCE_MLSTMCELL_H
