//===- CpuOps.h - fp32 kernels of the CPU backend ---------------*- C++ -*-===//
//
// The numerical work of the CPU backend, on raw fp32 pointers and plain sizes: nothing here
// knows the artifact. CpuBackend.cpp reads a step's arguments and attributes, checks them
// against the buffers, and calls one of these. Every function splits its work over a
// ThreadPool; results do not depend on the number of threads (every output element is computed
// by exactly one task with a fixed order of operations).
//
// Semantics are those of docs/kernels.md and of the float64 reference (runtime/reference),
// computed in fp32 with fp32 accumulators; row reductions (RMSNorm, LayerNorm statistics) and
// the scalar gate math of the mLSTM cell are carried in double, which costs nothing measurable
// and keeps this oracle closer to the reference.
//
// Views: a strided input (base, offset, stride) in elements: element (r, c) is
// base[r·stride + offset + c] (docs/kernels.md "Views"). Outputs are contiguous.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CPU_CPUOPS_H
#define XLC_RUNTIME_EXEC_CPU_CPUOPS_H

#include <cstddef>
#include <cstdint>

namespace xlc::exec {

class ThreadPool;

namespace cpu {

/// A read-only strided row view.
struct View {
  const float *base = nullptr;
  std::int64_t offset = 0;
  std::int64_t stride = 0;
  const float *row(std::int64_t r) const { return base + r * stride + offset; }
};

/// A strided destination, as View: element (r, c) at base[r·stride + offset + c].
struct MutView {
  float *base = nullptr;
  std::int64_t offset = 0;
  std::int64_t stride = 0;
  float *row(std::int64_t r) const { return base + r * stride + offset; }
};

enum class GemmEpilogue { None, Bias, ResidualAdd };

/// D[m, n] = A[m, k] · B[n, k]ᵀ (+ bias[n] | + C[m, n]), all row-major and contiguous (leading
/// dimensions k, k, n, n), fp32 with fp32 accumulation. |extra| is the bias or C (null for
/// None). D must not overlap A or B; D == C is allowed (each element of C is read before the
/// same element of D is written, by the same task).
///
/// Blocking: B is packed per (KC × NC) block into NR-column panels laid out k-major, so the
/// micro-kernel (MR rows × NR columns of D in registers) streams A rows and one panel with unit
/// stride; tasks are (row block, column block) pairs, each packing its own B block (the packing
/// is ~1/(2·MC) of the work). With m below MR the packing would cost as much as the product, so
/// those calls take a dot-product path over B's rows instead. The micro-kernel is compiled for
/// AVX-512, AVX2+FMA and baseline x86-64 and picked at load time.
void gemm(ThreadPool &pool, std::int64_t m, std::int64_t n, std::int64_t k, const float *a,
          const float *b, float *d, GemmEpilogue epilogue, const float *extra);

/// y[r, :] = x[r, :] · rsqrt(mean(x[r, :]²) + eps) · w (w null = no weight), r < rows,
/// dim features; y [rows, dim] contiguous.
void rmsNorm(ThreadPool &pool, View x, const float *weight, float *y, std::int64_t rows,
             std::int64_t dim, double eps);

/// Multi-head LayerNorm times weight times the sigmoid output gate, per row and head (features
/// [hd·headDim, (hd+1)·headDim)): out = (h − μ)·rsqrt(σ² + eps) · w · σ(o), σ² the biased,
/// centred variance. out [rows, numHeads·headDim] contiguous.
void normGate(ThreadPool &pool, View h, const float *weight, View o, float *out,
              std::int64_t rows, std::int64_t numHeads, std::int64_t headDim, double eps);

/// out[r, c] = silu(gate[r, c]) · up[r, c]; out [rows, dim] contiguous.
void swiglu(ThreadPool &pool, View gate, View up, float *out, std::int64_t rows,
            std::int64_t dim);

/// x[i] = cap·tanh(x[i]/cap) in place for i < count (cap > 0).
void softCap(ThreadPool &pool, float *x, std::int64_t count, double cap);

/// out[r, :] = table[tokens[r], :] for r < rows; a token outside [0, vocab) gives a zero row.
/// Returns 0, or 1 + the index of the first row with a bad token (the error-flag convention of
/// the embedding kernel, docs/kernels.md).
std::int64_t embedding(ThreadPool &pool, const std::int32_t *tokens, const float *table,
                       std::int64_t vocab, std::int64_t dim, float *out, std::int64_t rows);

enum class InputGate { Exp, Sigmoid };

/// The forget-gate pre-activation (after the soft cap) of a token that starts a document: the
/// float64 reference's ref::kResetForgetGate.
inline constexpr double kResetForgetGate = -25.0;
enum class Normalizer { MaxAbs, None };

/// The mLSTM cell on the model layout (docs/kernels.md "The mLSTM cell configuration"): rows are
/// b·seq + t; head hd reads columns [hd·dqk, (hd+1)·dqk) of q and k, [hd·dv, (hd+1)·dv) of v,
/// and column hd of the raw gate views. State C [batch, NH, dqk, dv], n [batch, NH, dqk],
/// m [batch, NH] (the stabilised states, read and updated in place), h [batch·seq, NH·dv].
struct MlstmCell {
  View q, k, v, igate, fgate;
  /// [batch·seq] or null: nonzero where a token starts a document (xlstm-7b.md §6.3); its
  /// forget gate, after the cap, is kResetForgetGate, and its raw gate gets no gradient.
  const std::uint8_t *resets = nullptr;
  float *C = nullptr, *n = nullptr, *m = nullptr;
  float *h = nullptr;
  std::int64_t batch = 0, seq = 0, numHeads = 0, dqk = 0, dv = 0;
  double eps = 0;          ///< MaxAbs only
  double gateSoftCap = 0;  ///< 0 = none
  InputGate inputGate = InputGate::Exp;
  Normalizer normalizer = Normalizer::MaxAbs;
};

/// Runs the cell over all seq tokens in the recurrent stabilised form (runtime/reference
/// MlstmCell.h), per (b, head), token by token:
///   ĩ, f̃ ← cap·tanh(·/cap) if cap > 0;  lf = logσ(f̃);  ig = ĩ (Exp) or logσ(ĩ) (Sigmoid)
///   m' = max(lf + m, ig);  fa = e^{lf + m − m'};  ia = e^{ig − m'}
///   C' = fa·C + ia·k vᵀ;  n' = fa·n + ia·k;  q̂ = q/√dqk
///   h = q̂ᵀC' / (max(|q̂ᵀn'|, e^{−m'}) + eps)    (MaxAbs)    or    h = e^{m'}·q̂ᵀC'   (None)
/// The chunkwise and recurrent forms are the same function (MlstmCell.h), so this serves both
/// the prefill (chunkwise) and the decode step. C is read and written once per token in one
/// pass; the (b, head) pairs and, when there are fewer pairs than threads, column blocks of C
/// are the tasks (each block task recomputes the cheap scalar gates and n locally).
void mlstmRecurrent(ThreadPool &pool, const MlstmCell &cell);

/// The chunkwise form, as the GPU's two chunkwise kernels split it (runtime/device/
/// mlstm_chunkwise.cuh): |cell| as for mlstmRecurrent, plus the chunk length L and the fp32
/// workspaces of the chunk-start states, per (b, head) pair NC + 1 slots with NC = ceil(seq/L):
/// wsC [batch, NH, NC+1, dqk, dv], wsN [batch, NH, NC+1, dqk], wsM [batch, NH, NC+1]. Slot c is
/// the state before chunk c (slot 0 the initial state, slot NC the final one).
struct MlstmChunkwise {
  MlstmCell cell;
  std::int64_t chunk = 0;
  float *wsC = nullptr, *wsN = nullptr, *wsM = nullptr;
};

/// Kernel A's work: fills every workspace slot by the inter-chunk recurrence
///   g = Σ_j lf_j,  a_j = Σ_{s>j} lf_s + ig_j,  m' = max(g + m, max_j a_j),
///   C' = e^{g+m−m'}·C + Σ_j e^{a_j−m'} k_j v_jᵀ,  n' = e^{g+m−m'}·n + Σ_j e^{a_j−m'} k_j,
/// then writes the final C and n into the state in place (the final m is kernel B's to write).
/// Nothing for seq = 0.
void mlstmChunkStates(ThreadPool &pool, const MlstmChunkwise &op);

/// Kernel B's work: every output h from the chunk's q, k, v, gates and the workspace slot before
/// the chunk (never the state buffers), with the exact stabiliser M_t = max(m, max_{j≤t} u_j),
/// u_j = ig_j − b_j, b_t = Σ_{s≤t} lf_s inside the chunk:
///   num_t = e^{m−M_t} q̂ᵀC + Σ_{j≤t} e^{u_j−M_t} (q̂ᵀk_j) v_j,  den_t likewise with n and 1,
///   h_t = num_t · scale(den_t, b_t + M_t);
/// then copies the final m from workspace slot NC into the state.
void mlstmChunkOutputs(ThreadPool &pool, const MlstmChunkwise &op);

/// The chunkwise form as the GPU's scores kernel and fused state pass split it
/// (runtime/device/mlstm_chunk_scores.cuh, mlstm_chunk_fused.cuh): one record per (b, head,
/// chunk), index r = (b·NH + hd)·NC + c, NC = ceil(seq/L): wsP [r][L][L] the gated causal scores
/// P̃, wsG [r][4L + 4] the vectors p_t | b_t | σ_t | a_j, then g, A, 0, 0 (the headers define
/// them). The scores read q, k and the gate views of |cell|; the state pass q, k, v, the state
/// and h.
struct MlstmChunkRecords {
  MlstmCell cell;
  std::int64_t chunk = 0;
  float *wsP = nullptr, *wsG = nullptr;
};

/// The scores kernel's work, every record in parallel (padding rows and keys of a partial last
/// chunk as the device writes them: P̃ and σ zero, a = −∞). Nothing for seq = 0.
void mlstmChunkScores(ThreadPool &pool, const MlstmChunkRecords &op);

/// The state pass's work, per (b, head) over the chunks in order: with the incoming m,
///   M_t = max(m, p_t), β_t = e^{m−M_t}, ρ_t = e^{p_t−M_t},
///   h_t = (β_t q̂ᵀC + ρ_t Σ_j P̃_tj v_j) · scale(β_t q̂ᵀn + ρ_t σ_t, b_t + M_t),
///   m' = max(g + m, A), C' = e^{g+m−m'}·C + Σ_j e^{a_j−m'} k_j v_jᵀ (n likewise),
/// the state updated in place.
void mlstmChunkStatePass(ThreadPool &pool, const MlstmChunkRecords &op);

} // namespace cpu
} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CPU_CPUOPS_H
