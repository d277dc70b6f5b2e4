//===- mlstm_cell.cuh - What the mLSTM kernel families share -------*- CUDA -*-===//
//
// The cell's compile-time description (dtypes, head count and sizes, gate kind, normaliser) and
// the per-token gate preprocessing, shared by mlstm_chunkwise.cuh and mlstm_decode_step.cuh.
// Not a kernel family itself.
//
// The math (runtime/reference/MlstmCell.h is the spec, shared/reference/xlstm-7b.md §2.5):
//   ĩ_t = cap·tanh(i_t / cap), f̃_t = cap·tanh(f_t / cap)        (gate_soft_cap; cap 0 = none)
//   lf_t = logσ(f̃_t);  for kSigmoid gates ĩ_t ← logσ(ĩ_t)
//   m_t = max(lf_t + m_{t−1}, ĩ_t),  fa_t = e^{lf_t + m_{t−1} − m_t},  ia_t = e^{ĩ_t − m_t}
//   C_t = fa_t C_{t−1} + ia_t k_t v_tᵀ,  n_t = fa_t n_{t−1} + ia_t k_t,  q̂_t = q_t / √DQK
//   kMaxAbs: h_t = q̂_tᵀC_t / (max(|q̂_tᵀn_t|, e^{−m_t}) + eps);  kNone: h_t = e^{m_t} q̂_tᵀC_t.
// The gate pre-activations arrive raw (before the soft-cap), straight from the gate projection.
// Everything in here is fp32.
//
// State layout, per (batch b, head hd), bh = b·NH + hd: C [B, NH, DQK, DV] of TState (fp32, or
// bf16 to halve the state traffic), n [B, NH, DQK] fp32, m [B, NH] fp32. These are the stabilised
// states of the reference (C̃ = e^m C).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_MLSTM_CELL_CUH
#define XLC_DEVICE_MLSTM_CELL_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

/// Compile-time description of one mLSTM cell (one layer's cell op).
///   T       dtype of q, k, v and h (bf16; the chunkwise kernels require it)
///   TGate   dtype of the raw gate pre-activations (fp32 or bf16)
///   TState  dtype of the state C (fp32 or bf16; n and m are always fp32)
template <class T_, class TGate_, class TState_, int kNumHeads_, int kDQK_, int kDV_,
          InputGate kInputGate_, Normalizer kNormalizer_>
struct MlstmCellConfig {
  using T = T_;
  using TGate = TGate_;
  using TState = TState_;
  static constexpr int kNumHeads = kNumHeads_;
  static constexpr int kDQK = kDQK_;
  static constexpr int kDV = kDV_;
  static constexpr InputGate kInputGate = kInputGate_;
  static constexpr Normalizer kNormalizer = kNormalizer_;
  static_assert(kNumHeads > 0 && kDQK > 0 && kDV > 0, "cell sizes must be positive");
};

/// Log forget gate lf = logσ(softcap(f)).
__device__ __forceinline__ float mlstm_log_forget(float fRaw, float cap) {
  return log_sigmoid(soft_cap(fRaw, cap));
}

/// The forget gate's pre-activation, after the soft cap, at a token that starts a document
/// inside a training sequence (xlstm-7b.md §6.3; ref::kResetForgetGate): logσ(−25) ≈ −25 scales
/// the carried state by ~1.4e-11. Beyond the cap's range, so it overrides the capped gate, and
/// the raw gate's gradient there is 0.
constexpr float kResetForgetGate = -25.0f;

/// lf of one token with the document-reset override: |resets| is [B·S] (nonzero: the token at
/// row r starts a document) or null (no resets).
__device__ __forceinline__ float mlstm_log_forget(float fRaw, float cap, const uint8_t *resets,
                                                  int64_t r) {
  return resets != nullptr && resets[r] ? log_sigmoid(kResetForgetGate)
                                        : mlstm_log_forget(fRaw, cap);
}

/// Input gate in log space: softcap(i) for kExp, logσ(softcap(i)) for kSigmoid.
template <InputGate kGate> __device__ __forceinline__ float mlstm_log_input(float iRaw, float cap) {
  const float capped = soft_cap(iRaw, cap);
  if constexpr (kGate == InputGate::kSigmoid)
    return log_sigmoid(capped);
  else
    return capped;
}

/// The readout's final factor for one token: h = num · mlstm_output_scale(den, m, eps), where num
/// is the stabilised numerator q̂ᵀC and den the stabilised q̂ᵀn, both relative to the stabiliser m.
///   kMaxAbs: 1 / (max(|den|, e^{−m}) + eps);  kNone: e^{m} (den unused).
template <Normalizer kNorm>
__device__ __forceinline__ float mlstm_output_scale(float den, float m, float eps) {
  if constexpr (kNorm == Normalizer::kMaxAbs)
    return 1.0f / (fmaxf(fabsf(den), expf(-m)) + eps);
  else
    return expf(m);
}

} // namespace xlc::device

#endif // XLC_DEVICE_MLSTM_CELL_CUH
