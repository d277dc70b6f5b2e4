//===- mlstm_chunk_backward.cuh - Chunkwise mLSTM backward (training) -*- CUDA -*-===//
//
// The exact gradient of the chunkwise mLSTM forward (mlstm_chunkwise.cuh) with respect to q, k,
// v and the raw gate pre-activations, organised as runtime/reference/MlstmChunkwiseBackward.cpp
// organises it (that float64 function is the spec; it equals the finite-difference-checked
// recurrent backward). Unlike TFLA's backward, the denominator max(|q̂ᵀn|, e^{−m}) and the
// stabiliser m are differentiated. Four kernels share one parameter struct; launch them in order
// on one stream:
//
//   mlstm_backward_readout  (R) per (chunk, b·head): recomputes the forward's per-token
//                           stabiliser and denominator and turns δh into the readout's scalars.
//   mlstm_backward_states   (S) per (δC tile, b·head), chunks last to first: the state gradient
//                           δC, δn after every chunk (the reverse of the forward's state pass).
//   mlstm_backward_chunk    (P) per (chunk, b·head): δq, δk, δv and the gate-gradient pieces
//                           that do not depend on the stabiliser's gradient.
//   mlstm_backward_gates    (G) per b·head: the stabiliser's gradient across chunks (a scalar
//                           recurrence), then δĩ, δf̃ of every token through the cumulative sums.
//
// ---- Forward quantities, per (b, head), chunk c of length Lc ≤ L (as the forward has them) -----
// lf_j = logσ(f̃_j), ig_j = ĩ_j or logσ(ĩ_j) (soft-capped, mlstm_cell.cuh), b_t = Σ_{s≤t} lf_s,
// g = b_{Lc−1}, a_j = Σ_{s>j} lf_s + ig_j, u_j = ig_j − b_j, p_t = max_{j≤t} u_j.
// With m_c, m_{c+1} the forward's saved stabilisers before and after the chunk (ws_m):
//   M_t = max(m_c, p_t), β_t = e^{m_c − M_t}, m_t = b_t + M_t, D̄_tj = e^{u_j − M_t} (j ≤ t),
//   ā_j = e^{a_j − m_{c+1}}, d = e^{g + m_c − m_{c+1}}, S_tj = q̂_t·k_j,
//   den_t = β_t q̂_t·n_c + Σ_j D̄_tj S_tj, num_t = β_t C_cᵀq̂_t + Σ_j D̄_tj S_tj v_j, h_t = num_t·scale_t.
// A max passes its gradient to the branch the forward took; at a tie the earlier operand (the
// incoming stabiliser, then the lowest index) wins, as std::max and the reference do.
//
// ---- R: readout scalars ------------------------------------------------------------------------
// With ρ_t = ⟨δh_t, h_t⟩ (h is the forward's output, saved for the LayerNorm's backward anyway):
//   kMaxAbs: s_t = 1/(max(|den_t|, e^{−m_t}) + eps), δdenom = −ρ_t s_t; if |den_t| ≥ e^{−m_t}:
//            δden_t = sign(den_t)·δdenom, δm_t = 0; else δden_t = 0, δm_t = −δdenom·e^{−m_t}
//   kNone:   s_t = e^{m_t}, δden_t = 0, δm_t = ρ_t
// so δnum_t = s_t δh_t. Written: ws_tok[t] = (s_t, δden_t, δm_t, β_t), ws_chunk[c][0] = d.
//
// ---- S: state gradient (sequential over chunks, last to first) ----------------------------------
// δC, δn: the gradient of the state after chunk c (zero, or δC_final, after the last chunk):
//   ws_dC[c] = δC, ws_dn[c] = δn;  then δC ← d·δC + Σ_t β_t s_t q̂_t δh_tᵀ,  δn ← d·δn + Σ_t β_t δden_t q̂_t
// Nothing of the stabiliser's gradient enters: the recurrence is linear in (δC, δn).
//
// ---- P: per-chunk gradients ---------------------------------------------------------------------
// With G_tj = δh_t·v_j, W_tj = D̄_tj (s_t G_tj + δden_t) (t ≥ j), E = δH C_cᵀ [Lc × DQK],
// F = V δC_{c+1}ᵀ [Lc × DQK], H = K δC_{c+1} [Lc × DV] (δC_{c+1} = ws_dC[c]):
//   δq̂_t = Σ_j W_tj k_j + β_t s_t E_t + β_t δden_t n_c           (δq = δq̂ / √DQK)
//   δk_j = Σ_t W_tj q̂_t + ā_j (F_j + δn_{c+1})
//   δv_j = Σ_t D̄_tj S_tj s_t δh_t + ā_j H_j
// Gate pieces (the exponentials' gradients, value × its δ, before the stabiliser's routing):
//   gw_tj = W_tj S_tj;  δā_j ā_j = ā_j k_j·(F_j + δn_{c+1});  δβ_t β_t = β_t (s_t q̂_t·E_t + δden_t q̂_t·n_c)
//   δd d = d (⟨δC_{c+1}, C_c⟩ + ⟨δn_{c+1}, n_c⟩)
//   token stabiliser: δM_t = δm_t − Σ_j gw_tj − δβ_t β_t, routed to m_c (M_t = m_c) or to u_{arg t}
// Written per token ws_gate[t] = (δā_t ā_t, δb_t, δig_t, 0) with δb_t = δm_t − Σ_{t'} gw_t't − R_t,
// δig_t = Σ_{t'} gw_t't + R_t (R_j = Σ_{t: arg t = j} δM_t), and per chunk ws_chunk[c][1..4] =
// (X, Y, W, arg of m_{c+1}) with W = δd d, X = Σ_j δā_j ā_j + W, Y = W + Σ_t δβ_t β_t + Σ_{t: M_t = m_c} δM_t.
//
// ---- G: stabiliser and gates --------------------------------------------------------------------
// δm (the gradient of m_{c+1}, zero after the last chunk): with Δ = δm − X, the chunk-end max
// m_{c+1} = max(g + m_c, max_j a_j) routes Δ to g and m_c (δg = W + Δ, δm ← Y + Δ) or to a_{arg}
// (δg = W, δā_arg ā_arg += Δ, δm ← Y). Then per token δlf_j = Σ_{t≥j} δb_t + δg + Σ_{i<j} δā_i ā_i,
// δig_j += δā_j ā_j, δf̃ = δlf σ(−f̃)·cap′(f), δĩ = δig (·σ(−ĩ) for sigmoid gates)·cap′(i).
// Document resets (p.resets): lf of a document's first token is logσ(kResetForgetGate) in every
// scan above, and its δf̃ is 0 (the override is a constant).
// The state after the sequence has no gradient (a training loss reads only h), and the initial
// state's gradient is not produced (training starts every sequence from the zero state).
//
// ---- Precision and determinism ------------------------------------------------------------------
// P's products S = Q̂Kᵀ, G = δH Vᵀ and the three state products E = δH C_cᵀ, F = V δCᵀ and
// H = K δC (L·DQK·DV each per chunk, three quarters of its arithmetic) run on tensor cores
// (mma.sync m16n8k16, bf16 in, fp32 accumulate): q, k, v, δH and C_c are bf16 already (T), so
// their products are exact; δC is fp32 and enters as the sum of two bf16 operands δC = hi + lo
// (hi = bf16(δC), lo = bf16(δC − hi), ~2⁻¹⁷ relative, the 2xBF16 split), one mma each. The
// products with the fp32 W and P' (W K, Wᵀ Q̂, P'ᵀ δH) and everything else are fp32 SIMT FMA. Every sum has a fixed order
// (no atomics): gradients are bit-identical from run to run.
//
// ---- Launch geometry (256 threads each) ---------------------------------------------------------
//   R, P: grid (NC, B·NH, 1);  S: grid (ceil(DQK/kTile)·ceil(DV/kTile), B·NH, 1);  G: grid (B·NH).
// Block-level products use a 16 × 16 thread grid: thread (ty, tx) owns rows ty + 16i and columns
// tx + 16j of a product, so a row's partial sums meet in one half-warp (group_sum<16>).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_MLSTM_CHUNK_BACKWARD_CUH
#define XLC_DEVICE_MLSTM_CHUNK_BACKWARD_CUH

#include "xlc/device/common.cuh"
#include "xlc/device/mlstm_cell.cuh"
#include "xlc/device/tensor_core.cuh"

namespace xlc::device {

/// Parameters of the four backward kernels, in this order (all members 8 bytes). The forward's
/// views as in MlstmChunkwiseParams; gradient destinations are strided views of the same form
/// (element (row, col) of dq at dq[row·dq_stride + dq_offset + col]).
struct MlstmChunkBackwardParams {
  const void *q; ///< T
  int64_t q_offset;
  int64_t q_stride;
  const void *k; ///< T
  int64_t k_offset;
  int64_t k_stride;
  const void *v; ///< T
  int64_t v_offset;
  int64_t v_stride;
  const void *igate; ///< TGate, raw input-gate pre-activations
  int64_t i_offset;
  int64_t i_stride;
  const void *fgate; ///< TGate, raw forget-gate pre-activations
  int64_t f_offset;
  int64_t f_stride;
  const uint8_t *resets; ///< [B·S] or null: document starts, as the forward's (the gate's δ is 0)
  const void *ws_C;   ///< [B, NH, NC+1, DQK, DV] of T: the forward's chunk-start states
  const float *ws_n;  ///< [B, NH, NC+1, DQK]
  const float *ws_m;  ///< [B, NH, NC+1]
  const void *h;      ///< [B·S, NH·DV] of T: the forward's output
  const void *dh;     ///< [B·S, NH·DV] of T
  void *dq;           ///< T
  int64_t dq_offset;
  int64_t dq_stride;
  void *dk; ///< T
  int64_t dk_offset;
  int64_t dk_stride;
  void *dv; ///< T
  int64_t dv_offset;
  int64_t dv_stride;
  void *di; ///< TGate
  int64_t di_offset;
  int64_t di_stride;
  void *df; ///< TGate
  int64_t df_offset;
  int64_t df_stride;
  float *ws_tok;   ///< [B·NH, S, 4]: s_t, δden_t, δm_t, β_t
  float *ws_dC;    ///< [B·NH, NC, DQK, DV]: δC after chunk c
  float *ws_dn;    ///< [B·NH, NC, DQK]
  float *ws_gate;  ///< [B·NH, S, 4]: δā ā, δb, δig, 0
  float *ws_chunk; ///< [B·NH, NC, 8]: d, X, Y, W, arg, Δ routed to a_arg, δg, 0
  int64_t batch;
  int64_t seq_len;
  double eps;
  double gate_soft_cap; ///< 0 = no cap
};

/// kChunk: the forward's chunk length L (a multiple of 16, ≤ 128). kTile: the width of the DQK
/// and DV slices the products stream through shared memory (a multiple of 16, ≤ 64). Requires a
/// 2-byte T (bf16): the tensor-core products take q, k, v, δh and the chunk-start C as they are.
template <class Cell_, int kChunk_, int kTile_> struct MlstmChunkBackwardConfig {
  using Cell = Cell_;
  static constexpr int kChunk = kChunk_;
  static constexpr int kTile = kTile_;
  static constexpr int kThreads = 256;
  static constexpr int kDQK = Cell::kDQK, kDV = Cell::kDV;
  static constexpr int kTilesK = ceil_div(kDQK, kTile), kTilesV = ceil_div(kDV, kTile);
  static constexpr int kTiles = kTilesK * kTilesV; ///< S's blocks per (b, head)
  static constexpr int kLd = kTile + 1;            ///< pitch of a [rows × kTile] fp32 tile
  static constexpr int kLdL = kChunk + 1;          ///< pitch of an [L × L] fp32 matrix
  static constexpr int kPerLane = ceil_div(kChunk, 32);
  static_assert(kChunk % 16 == 0 && kChunk <= 128, "kChunk must be a multiple of 16, <= 128");
  static_assert(kTile % 16 == 0 && kTile <= 64, "kTile must be a multiple of 16, <= 64");
  static_assert(is_bf16<typename Cell::T>, "the backward's tensor-core products take bf16 operands");
  // P's tensor-core tiling: warp w owns the 16-row strip w % kStrips of an [L × kTile] product
  // and the n16 column pairs p ≡ w / kStrips (mod kWarpsPerStrip).
  static constexpr int kStrips = kChunk / 16;
  static constexpr int kWarpsPerStrip = kStrips >= 8 ? 1 : 8 / kStrips;
  static constexpr int kLdB = kTile + 8; ///< pitch of a bf16 tile (16-byte rows for ldmatrix)

  // Shared memory of P (regions rounded to 128 bytes, at these offsets): the gate scan (8 fp32
  // vectors of L), per-token scalars (12 vectors of L), 32 floats of scratch, two fp32 L × L
  // matrices (S and G, later P' and W), four fp32 [L × kTile] tiles, then the tensor cores' bf16
  // operands: two [L × kTile] tiles (δH or K, and V) and three [kTile × kTile] tiles (C_c, and
  // δC as hi and lo).
  // R uses the same layout up to its two row tiles; S and G have their own, smaller ones.
  static constexpr int kVec = smem_bytes<float>(kChunk);
  static constexpr int kMatrixBytes = smem_bytes<float>(kChunk * kLdL);
  static constexpr int kRowTileBytes = smem_bytes<float>(kChunk * kLd);
  static constexpr int kRowTileBf16Bytes = smem_bytes<bf16>(kChunk * kLdB);
  static constexpr int kSquareTileBytes = smem_bytes<bf16>(kTile * kLdB);
  static constexpr int kOffTok = 8 * kVec;
  static constexpr int kOffScratch = kOffTok + 12 * kVec;
  static constexpr int kOffMatrix = kOffScratch + smem_bytes<float>(32);
  static constexpr int kOffRows = kOffMatrix + 2 * kMatrixBytes;
  static constexpr int kOffBf16 = kOffRows + 4 * kRowTileBytes;
  static constexpr int kOffSquare = kOffBf16 + 2 * kRowTileBf16Bytes;
  static constexpr int kSharedBytes = kOffSquare + 3 * kSquareTileBytes; ///< P
  static constexpr int kReadoutBytes = kOffRows + 2 * kRowTileBytes;    ///< R
  static constexpr int kStatesBytes = 2 * kVec + 2 * kRowTileBytes;     ///< S: β s, β δden, q̂, δH
  static constexpr int kGatesBytes = 8 * 3 * kVec;                      ///< G: 3 vectors per warp
};

namespace mlstm_bwd {

/// The length of the chunk starting at |start| (L, or what is left of the sequence).
__device__ __forceinline__ int chunk_length(int64_t S, int64_t start, int L) {
  return static_cast<int>(S - start < L ? S - start : L);
}

/// The gate scan of one chunk (see the file comment), in shared memory.
struct GateScan {
  float *lf, *ig, *b, *u, *p, *parg, *a, *tmp;
  float g, aMax;
  int aArg;
};

template <class Config> __device__ __forceinline__ GateScan gate_arrays(float *base) {
  constexpr int n = Config::kVec / 4;
  return {base, base + n, base + 2 * n, base + 3 * n, base + 4 * n, base + 5 * n, base + 6 * n,
          base + 7 * n, 0.0f, 0.0f, -1};
}

/// The scans of scan_gates, by the 32 lanes of warp 0; lane 0 leaves g, max a and its first
/// argmax in scratch[0..2].
template <class Config>
__device__ __forceinline__ void scan_gates_warp(GateScan &gs, const MlstmChunkBackwardParams &p,
                                                int64_t row0, int len, int hd, float cap,
                                                float *scratch) {
  using Cell = typename Config::Cell;
  using TGate = typename Cell::TGate;
  constexpr int L = Config::kChunk, kPer = Config::kPerLane;
  const int lane = threadIdx.x;
  const TGate *ig = static_cast<const TGate *>(p.igate);
  const TGate *fg = static_cast<const TGate *>(p.fgate);
  for (int j = lane; j < L; j += 32) {
    const bool in = j < len;
    const int64_t r = row0 + j;
    gs.lf[j] =
        in ? mlstm_log_forget(to_float(fg[r * p.f_stride + p.f_offset + hd]), cap, p.resets, r)
           : 0.0f;
    gs.ig[j] = in ? mlstm_log_input<Cell::kInputGate>(
                        to_float(ig[r * p.i_stride + p.i_offset + hd]), cap)
                  : -kInfinity;
  }
  __syncwarp();
  for (int j = lane; j < L; j += 32) {
    gs.b[j] = gs.lf[j];
    gs.tmp[j] = j + 1 < len ? gs.lf[j + 1] : 0.0f;
  }
  __syncwarp();
  warp_scan_inplace<kPer, false, false>(gs.b, L);
  warp_scan_inplace<kPer, false, true>(gs.tmp, L); // Σ_{s>j} lf_s
  for (int j = lane; j < L; j += 32) {
    const bool in = j < len;
    gs.a[j] = in ? gs.tmp[j] + gs.ig[j] : -kInfinity;
    gs.u[j] = in ? gs.ig[j] - gs.b[j] : -kInfinity;
    gs.p[j] = gs.u[j];
  }
  __syncwarp();
  warp_scan_inplace<kPer, true, false>(gs.p, L);
  // The first index attaining each prefix max: j starts a new maximum when u_j > p_{j−1}.
  for (int j = lane; j < L; j += 32)
    gs.parg[j] = (j == 0 || gs.u[j] > gs.p[j - 1]) ? static_cast<float>(j) : -1.0f;
  __syncwarp();
  warp_scan_inplace<kPer, true, false>(gs.parg, L);
  float best = -kInfinity;
  int arg = L;
  for (int j = lane; j < len; j += 32)
    if (gs.a[j] > best)
      best = gs.a[j], arg = j;
  const float aMax = warp_max(best);
  int first = best == aMax ? arg : L;
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1)
    first = min(first, __shfl_xor_sync(0xffffffffu, first, mask));
  if (lane == 0) {
    scratch[0] = gs.b[len - 1];
    scratch[1] = aMax;
    scratch[2] = static_cast<float>(first);
  }
}

/// Warp 0 fills |gs| for the chunk starting at row |row0| (global row b·S + start) of length
/// |len|, and every thread gets g, max a and its argmax. Entries j ≥ len: lf = 0, ig = u = a =
/// −∞. Contains two __syncthreads: call it with the whole block.
template <class Config>
__device__ __forceinline__ void scan_gates(GateScan &gs, const MlstmChunkBackwardParams &p,
                                           int64_t row0, int len, int hd, float cap,
                                           float *scratch) {
  if (threadIdx.x < 32)
    scan_gates_warp<Config>(gs, p, row0, len, hd, cap, scratch);
  // Every thread of the block reaches the same two barriers (warp 0 after its scans).
  __syncthreads();
  gs.g = scratch[0];
  gs.aMax = scratch[1];
  gs.aArg = static_cast<int>(scratch[2]);
  __syncthreads();
}

/// acc[i][j] += Σ_{kk<K} A(ty + 16i, kk) · B(kk, tx + 16j) for the 16 × 16 thread grid.
template <int kI, int kJ, class FA, class FB>
__device__ __forceinline__ void block_product(float (&acc)[kI][kJ], int K, FA a, FB b) {
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  for (int kk = 0; kk < K; ++kk) {
    float av[kI], bv[kJ];
#pragma unroll
    for (int i = 0; i < kI; ++i)
      av[i] = a(ty + 16 * i, kk);
#pragma unroll
    for (int j = 0; j < kJ; ++j)
      bv[j] = b(kk, tx + 16 * j);
#pragma unroll
    for (int i = 0; i < kI; ++i)
#pragma unroll
      for (int j = 0; j < kJ; ++j)
        acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
  }
}

template <int kI, int kJ> __device__ __forceinline__ void zero(float (&acc)[kI][kJ]) {
#pragma unroll
  for (int i = 0; i < kI; ++i)
#pragma unroll
    for (int j = 0; j < kJ; ++j)
      acc[i][j] = 0.0f;
}

/// Row |r| of a strided view.
template <class T>
__device__ __forceinline__ const T *view_row(const void *base, int64_t offset, int64_t stride,
                                             int64_t r) {
  return static_cast<const T *>(base) + r * stride + offset;
}

/// An fp32 [kRows × kCols] tile of a strided matrix as two bf16 tiles hi = bf16(x) and
/// lo = bf16(x − hi) (pitch |ld|), zeros outside the valid |rows| × |cols|: x·y = hi·y + lo·y to
/// ~2⁻¹⁷ relative for a bf16 y, two tensor-core products.
template <int kRows, int kCols>
__device__ __forceinline__ void load_split_tile(bf16 *hi, bf16 *lo, int ld, const float *src,
                                                int64_t stride, int rows, int cols) {
  static_assert(kCols % 8 == 0, "tile width must be a multiple of 8");
  constexpr int kGroups = kCols / 8;
  for (int idx = threadIdx.x; idx < kRows * kGroups; idx += 256) {
    const int r = idx / kGroups, c = (idx % kGroups) * 8;
    float x[8], rest[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      x[i] = (r < rows && c + i < cols) ? src[r * stride + c + i] : 0.0f;
      rest[i] = x[i] - to_float(from_float<bf16>(x[i]));
    }
    store_floats<8, true>(hi + r * ld + c, x);
    store_floats<8, true>(lo + r * ld + c, rest);
  }
}

/// The fp32 accumulators of a warp's [16 × kN] strip of an [L × kN] tensor-core product (kN a
/// multiple of 16; Config's tiling: the strip w % kStrips, the n16 column pairs
/// p ≡ w / kStrips mod kWarpsPerStrip): d[2i + h] is the n8 tile h of the warp's i-th pair.
/// The reduction runs over kK = Config::kTile columns of the operand tiles per call.
template <class Config, int kN = Config::kTile> struct StripAcc {
  static constexpr int kPairs = kN / 16;
  static constexpr int kPairsPerWarp = ceil_div(kPairs, Config::kWarpsPerStrip);
  static_assert(kN % 16 == 0, "a strip's width must be whole n16 pairs");
  float d[2 * kPairsPerWarp][4];

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int t = 0; t < 2 * kPairsPerWarp; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        d[t][e] = 0.0f;
  }
  /// The warp's strip and first column pair, and the pair stride; false: the warp owns nothing.
  __device__ __forceinline__ static bool owner(int &strip, int &pair0) {
    const int warp = threadIdx.x / 32;
    strip = warp % Config::kStrips;
    pair0 = warp / Config::kStrips;
    return warp < Config::kStrips * Config::kWarpsPerStrip;
  }
  /// d += A·B over k in [0, kTile), A [L × kTile] row-major (the strip's rows), B given as
  /// |b| plus, when |bLo| is not null, |bLo| (the two halves of a split fp32 operand). kBRows:
  /// B [kTile(k) × kN(n)] row-major; else B = Yᵀ with Y [kN(n) × kTile(k)] row-major.
  template <bool kBRows>
  __device__ __forceinline__ void mma(const bf16 *a, const bf16 *b, const bf16 *bLo) {
    int strip, pair0;
    if (!owner(strip, pair0))
      return;
    auto product = [&](const bf16 *from, const uint32_t (&af)[4], int i, int k0, int n0) {
      uint32_t bf[4];
      if constexpr (kBRows)
        tc::load_b_rows(bf, from, Config::kLdB, k0, n0);
      else
        tc::load_b_cols(bf, from, Config::kLdB, k0, n0);
      tc::mma_bf16(d[2 * i], af, bf[0], bf[1]);
      tc::mma_bf16(d[2 * i + 1], af, bf[2], bf[3]);
    };
    for (int k0 = 0; k0 < Config::kTile; k0 += 16) {
      uint32_t af[4];
      tc::load_a(af, a, Config::kLdB, strip * 16, k0);
#pragma unroll
      for (int i = 0; i < kPairsPerWarp; ++i) {
        const int pair = pair0 + i * Config::kWarpsPerStrip;
        if (pair < kPairs) {
          product(b, af, i, k0, pair * 16);
          if (bLo != nullptr)
            product(bLo, af, i, k0, pair * 16);
        }
      }
    }
  }
  /// |factor| times the strip into an fp32 [L × kN] matrix (pitch |ld|).
  __device__ __forceinline__ void store(float *out, int ld, float factor = 1.0f) const {
    int strip, pair0;
    if (!owner(strip, pair0))
      return;
    const int lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
#pragma unroll
    for (int i = 0; i < kPairsPerWarp; ++i) {
      const int pair = pair0 + i * Config::kWarpsPerStrip;
      if (pair < kPairs)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            out[(strip * 16 + g + (e / 2) * 8) * ld + pair * 16 + h * 8 + 2 * q + e % 2] =
                factor * d[2 * i + h][e];
    }
  }
};

} // namespace mlstm_bwd

//===----------------------------------------------------------------------===//
// R: the readout's scalars
//===----------------------------------------------------------------------===//

template <class Config> __device__ void mlstm_backward_readout(const MlstmChunkBackwardParams &p) {
  using namespace mlstm_bwd;
  using Cell = typename Config::Cell;
  using T = typename Cell::T;
  constexpr int L = Config::kChunk, kT = Config::kTile, kLd = Config::kLd;
  constexpr int NH = Cell::kNumHeads, DQK = Cell::kDQK, DV = Cell::kDV;
  const int64_t S = p.seq_len, NC = (S + L - 1) / L;
  const int c = blockIdx.x, bh = blockIdx.y, b = bh / NH, hd = bh % NH;
  const int start = c * L, len = chunk_length(S, start, L);
  const int64_t row0 = b * S + start;
  const float cap = static_cast<float>(p.gate_soft_cap), eps = static_cast<float>(p.eps);
  const float scale = rsqrtf(static_cast<float>(DQK));

  unsigned char *smem = dynamic_smem();
  float *gateBase = reinterpret_cast<float *>(smem);
  float *qn = reinterpret_cast<float *>(smem + Config::kOffTok);
  float *scratch = reinterpret_cast<float *>(smem + Config::kOffScratch);
  float *Sm = reinterpret_cast<float *>(smem + Config::kOffMatrix);
  float *qs = reinterpret_cast<float *>(smem + Config::kOffRows);
  float *ks = qs + Config::kRowTileBytes / 4;

  GateScan gs = gate_arrays<Config>(gateBase);
  scan_gates<Config>(gs, p, row0, len, hd, cap, scratch);

  const float *nC = p.ws_n + (static_cast<int64_t>(bh) * (NC + 1) + c) * DQK;
  const float mC = p.ws_m[static_cast<int64_t>(bh) * (NC + 1) + c];
  const float mNext = p.ws_m[static_cast<int64_t>(bh) * (NC + 1) + c + 1];
  if (threadIdx.x < L)
    qn[threadIdx.x] = 0.0f;

  // S = Q̂ Kᵀ over DQK slices; q̂·n_c alongside.
  float acc[L / 16][L / 16];
  zero(acc);
  const T *q0 = view_row<T>(p.q, p.q_offset + hd * DQK, p.q_stride, row0);
  const T *k0 = view_row<T>(p.k, p.k_offset + hd * DQK, p.k_stride, row0);
  for (int d0 = 0; d0 < DQK; d0 += kT) {
    const int w = min(kT, DQK - d0);
    __syncthreads();
    load_tile_f32<L, kT, 256>(qs, kLd, q0 + d0, p.q_stride, len, w, false);
    load_tile_f32<L, kT, 256>(ks, kLd, k0 + d0, p.k_stride, len, w, false);
    __syncthreads();
    if (threadIdx.x < L) {
      float s = qn[threadIdx.x];
      for (int d = 0; d < w; ++d)
        s = fmaf(qs[threadIdx.x * kLd + d], nC[d0 + d], s);
      qn[threadIdx.x] = s;
    }
    block_product(acc, kT, [&](int t, int d) { return qs[t * kLd + d]; },
                  [&](int d, int j) { return ks[j * kLd + d]; });
  }
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
  for (int i = 0; i < L / 16; ++i)
#pragma unroll
    for (int j = 0; j < L / 16; ++j)
      Sm[(ty + 16 * i) * Config::kLdL + tx + 16 * j] = acc[i][j] * scale;
  __syncthreads();

  // One warp per token: den_t over the keys, ρ_t = ⟨δh_t, h_t⟩ over DV.
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const T *hRow = static_cast<const T *>(p.h), *dhRow = static_cast<const T *>(p.dh);
  for (int t = warp; t < len; t += 8) {
    const bool prior = !(mC < gs.p[t]);
    const float M = prior ? mC : gs.p[t];
    float den = 0.0f;
    for (int j = lane; j <= t; j += 32)
      den = fmaf(expf(gs.u[j] - M), Sm[t * Config::kLdL + j], den);
    den = warp_sum(den);
    const int64_t r = row0 + t;
    float rho = 0.0f;
    for (int e = lane; e < DV; e += 32) {
      const int64_t idx = r * NH * DV + hd * DV + e;
      rho = fmaf(to_float(dhRow[idx]), to_float(hRow[idx]), rho);
    }
    rho = warp_sum(rho);
    if (lane == 0) {
      const float beta = expf(mC - M);
      den = fmaf(beta, qn[t] * scale, den);
      const float mt = gs.b[t] + M;
      float s, dden = 0.0f, dm = 0.0f;
      if constexpr (Cell::kNormalizer == Normalizer::kMaxAbs) {
        const float floor = expf(-mt);
        const bool absBranch = !(fabsf(den) < floor);
        s = 1.0f / ((absBranch ? fabsf(den) : floor) + eps);
        const float ddenom = -rho * s;
        if (absBranch)
          dden = den >= 0.0f ? ddenom : -ddenom;
        else
          dm = -ddenom * floor;
      } else {
        s = expf(mt);
        dm = rho;
      }
      float *out = p.ws_tok + (static_cast<int64_t>(bh) * S + start + t) * 4;
      out[0] = s;
      out[1] = dden;
      out[2] = dm;
      out[3] = beta;
    }
  }
  if (threadIdx.x == 0)
    p.ws_chunk[(static_cast<int64_t>(bh) * NC + c) * 8] = expf(gs.g + mC - mNext);
}

//===----------------------------------------------------------------------===//
// S: the state gradient
//===----------------------------------------------------------------------===//

template <class Config> __device__ void mlstm_backward_states(const MlstmChunkBackwardParams &p) {
  using namespace mlstm_bwd;
  using Cell = typename Config::Cell;
  using T = typename Cell::T;
  constexpr int L = Config::kChunk, kT = Config::kTile, kLd = Config::kLd;
  constexpr int NH = Cell::kNumHeads, DQK = Cell::kDQK, DV = Cell::kDV;
  constexpr int kI = kT / 16;
  const int64_t S = p.seq_len, NC = (S + L - 1) / L;
  const int bh = blockIdx.y, b = bh / NH, hd = bh % NH;
  const int d0 = (blockIdx.x / Config::kTilesV) * kT, e0 = (blockIdx.x % Config::kTilesV) * kT;
  const int wk = min(kT, DQK - d0), wv = min(kT, DV - e0);
  const float scale = rsqrtf(static_cast<float>(DQK));

  unsigned char *smem = dynamic_smem();
  float *coefC = reinterpret_cast<float *>(smem);
  float *coefN = coefC + Config::kVec / 4;
  float *qs = coefN + Config::kVec / 4;
  float *hs = qs + Config::kRowTileBytes / 4;

  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  float acc[kI][kI];
  zero(acc);
  float dn = 0.0f; // δn[d0 + threadIdx.x] in the blocks of DV slice 0
  const bool ownsN = e0 == 0 && threadIdx.x < wk;
  for (int64_t c = NC - 1; c >= 0; --c) {
    const int start = static_cast<int>(c) * L, len = chunk_length(S, start, L);
    const int64_t row0 = b * S + start;
    // Publish the gradient of the state after chunk c, for P.
    float *dC = p.ws_dC + ((static_cast<int64_t>(bh) * NC + c) * DQK + d0) * DV + e0;
#pragma unroll
    for (int i = 0; i < kI; ++i)
#pragma unroll
      for (int j = 0; j < kI; ++j) {
        const int r = ty + 16 * i, col = tx + 16 * j;
        if (r < wk && col < wv)
          dC[static_cast<int64_t>(r) * DV + col] = acc[i][j];
      }
    if (ownsN)
      p.ws_dn[(static_cast<int64_t>(bh) * NC + c) * DQK + d0 + threadIdx.x] = dn;
    __syncthreads(); // the previous chunk's tiles are consumed
    if (threadIdx.x < L) {
      const int t = threadIdx.x;
      const float *tk = p.ws_tok + (static_cast<int64_t>(bh) * S + start + t) * 4;
      // q̂ = q·scale: the scale folded into the per-token coefficients, not into every product.
      coefC[t] = t < len ? tk[3] * tk[0] * scale : 0.0f; // β_t s_t
      coefN[t] = t < len ? tk[3] * tk[1] * scale : 0.0f; // β_t δden_t
    }
    __syncthreads();
    load_tile_f32<L, kT, 256>(qs, kLd,
                              view_row<T>(p.q, p.q_offset + hd * DQK + d0, p.q_stride, row0),
                              p.q_stride, len, wk, false);
    load_tile_f32<L, kT, 256>(hs, kLd,
                              static_cast<const T *>(p.dh) + row0 * NH * DV + hd * DV + e0,
                              NH * DV, len, wv, false);
    __syncthreads();
    for (int idx = threadIdx.x; idx < L * kT; idx += 256) // rows of δH times β_t s_t·scale
      hs[(idx / kT) * kLd + idx % kT] *= coefC[idx / kT];
    const float d = p.ws_chunk[(static_cast<int64_t>(bh) * NC + c) * 8];
#pragma unroll
    for (int i = 0; i < kI; ++i)
#pragma unroll
      for (int j = 0; j < kI; ++j)
        acc[i][j] *= d;
    __syncthreads();
    // δC += Q̂ᵀ diag(β s) δH: A(d, t) = q_td, B(t, e) = β_t s_t·scale·δh_te.
    block_product(acc, len, [&](int dd, int t) { return qs[t * kLd + dd]; },
                  [&](int t, int e) { return hs[t * kLd + e]; });
    if (ownsN) {
      float s = dn * d;
      for (int t = 0; t < len; ++t)
        s = fmaf(coefN[t], qs[t * kLd + threadIdx.x], s);
      dn = s;
    }
  }
}

//===----------------------------------------------------------------------===//
// P: the per-chunk gradients
//===----------------------------------------------------------------------===//

template <class Config> __device__ void mlstm_backward_chunk(const MlstmChunkBackwardParams &p) {
  using namespace mlstm_bwd;
  using Cell = typename Config::Cell;
  using T = typename Cell::T;
  constexpr int L = Config::kChunk, kT = Config::kTile, kLd = Config::kLd, kLdL = Config::kLdL;
  constexpr int NH = Cell::kNumHeads, DQK = Cell::kDQK, DV = Cell::kDV;
  constexpr int kL = L / 16, kJ = kT / 16;
  const int64_t S = p.seq_len, NC = (S + L - 1) / L;
  const int c = blockIdx.x, bh = blockIdx.y, b = bh / NH, hd = bh % NH;
  const int start = c * L, len = chunk_length(S, start, L);
  const int64_t row0 = b * S + start;
  const float cap = static_cast<float>(p.gate_soft_cap);
  const float scale = rsqrtf(static_cast<float>(DQK));
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;

  unsigned char *smem = dynamic_smem();
  float *gateBase = reinterpret_cast<float *>(smem);
  float *tokBase = reinterpret_cast<float *>(smem + Config::kOffTok);
  float *scratch = reinterpret_cast<float *>(smem + Config::kOffScratch);
  float *Sm = reinterpret_cast<float *>(smem + Config::kOffMatrix); // S, then P' = D̄∘S∘s
  float *Gm = Sm + Config::kMatrixBytes / 4;                         // G, then W
  float *x1 = reinterpret_cast<float *>(smem + Config::kOffRows);
  float *x2 = x1 + Config::kRowTileBytes / 4;
  float *x3 = x2 + Config::kRowTileBytes / 4, *x4 = x3 + Config::kRowTileBytes / 4;
  // bf16 tensor-core operands: rowA (δH or K), rowV (V), sqC (C_c), sqHi/sqLo (δC split).
  constexpr int kLdB = Config::kLdB;
  bf16 *rowA = reinterpret_cast<bf16 *>(smem + Config::kOffBf16);
  bf16 *rowV = reinterpret_cast<bf16 *>(smem + Config::kOffBf16 + Config::kRowTileBf16Bytes);
  bf16 *sqC = reinterpret_cast<bf16 *>(smem + Config::kOffSquare);
  bf16 *sqHi = reinterpret_cast<bf16 *>(smem + Config::kOffSquare + Config::kSquareTileBytes);
  bf16 *sqLo = reinterpret_cast<bf16 *>(smem + Config::kOffSquare + 2 * Config::kSquareTileBytes);
  constexpr int nL = Config::kVec / 4;
  float *sT = tokBase, *ddenT = sT + nL, *dmT = ddenT + nL, *betaT = dmT + nL, *MT = betaT + nL;
  float *argT = MT + nL, *abar = argT + nL, *dAbar = abar + nL, *dBeta = dAbar + nL;
  float *rowGw = dBeta + nL, *colGw = rowGw + nL, *dM = colGw + nL;

  GateScan gs = gate_arrays<Config>(gateBase);
  scan_gates<Config>(gs, p, row0, len, hd, cap, scratch);
  const float mC = p.ws_m[static_cast<int64_t>(bh) * (NC + 1) + c];
  const float mNext = p.ws_m[static_cast<int64_t>(bh) * (NC + 1) + c + 1];
  const float *nC = p.ws_n + (static_cast<int64_t>(bh) * (NC + 1) + c) * DQK;
  const T *cC = static_cast<const T *>(p.ws_C) + (static_cast<int64_t>(bh) * (NC + 1) + c) * DQK * DV;
  const float *dC = p.ws_dC + (static_cast<int64_t>(bh) * NC + c) * DQK * DV;
  const float *dn = p.ws_dn + (static_cast<int64_t>(bh) * NC + c) * DQK;
  float *chunkRec = p.ws_chunk + (static_cast<int64_t>(bh) * NC + c) * 8;
  const float decay = chunkRec[0];
  if (threadIdx.x < L) {
    const int t = threadIdx.x;
    const bool in = t < len;
    const float *tk = p.ws_tok + (static_cast<int64_t>(bh) * S + start + t) * 4;
    const bool prior = !(mC < gs.p[t]);
    sT[t] = in ? tk[0] : 0.0f;
    ddenT[t] = in ? tk[1] : 0.0f;
    dmT[t] = in ? tk[2] : 0.0f;
    betaT[t] = in ? tk[3] : 0.0f;
    MT[t] = prior ? mC : gs.p[t];
    argT[t] = prior ? -1.0f : gs.parg[t];
    abar[t] = in ? expf(gs.a[t] - mNext) : 0.0f;
    dAbar[t] = 0.0f;
    dBeta[t] = 0.0f;
  }

  const T *q0 = view_row<T>(p.q, p.q_offset + hd * DQK, p.q_stride, row0);
  const T *k0 = view_row<T>(p.k, p.k_offset + hd * DQK, p.k_stride, row0);
  const T *v0 = view_row<T>(p.v, p.v_offset + hd * DV, p.v_stride, row0);
  const T *dh0 = static_cast<const T *>(p.dh) + row0 * NH * DV + hd * DV;
  const int64_t dhStride = static_cast<int64_t>(NH) * DV;

  // S = Q̂Kᵀ, G = δH Vᵀ (each through its own slices) on tensor cores: bf16 operands, exact
  // products, fp32 sums.
  const bool vecQ = view_aligned16<T>(q0, 0, p.q_stride), vecK = view_aligned16<T>(k0, 0, p.k_stride);
  const bool vecDh = view_aligned16<T>(dh0, 0, dhStride), vecV = view_aligned16<T>(v0, 0, p.v_stride);
  const bool vecC = view_aligned16<T>(cC, 0, DV);
  {
    StripAcc<Config, L> acc;
    acc.zero();
    for (int d0 = 0; d0 < DQK; d0 += kT) {
      __syncthreads();
      tc::async_load_tile<L, kT, 256>(rowA, kLdB, q0 + d0, p.q_stride, len, min(kT, DQK - d0), vecQ);
      tc::async_load_tile<L, kT, 256>(rowV, kLdB, k0 + d0, p.k_stride, len, min(kT, DQK - d0), vecK);
      tc::cp_async_commit();
      tc::cp_async_wait<0>();
      __syncthreads();
      acc.template mma<false>(rowA, rowV, nullptr);
    }
    acc.store(Sm, kLdL, scale);
    acc.zero();
    for (int e0 = 0; e0 < DV; e0 += kT) {
      __syncthreads();
      tc::async_load_tile<L, kT, 256>(rowA, kLdB, dh0 + e0, dhStride, len, min(kT, DV - e0), vecDh);
      tc::async_load_tile<L, kT, 256>(rowV, kLdB, v0 + e0, p.v_stride, len, min(kT, DV - e0), vecV);
      tc::cp_async_commit();
      tc::cp_async_wait<0>();
      __syncthreads();
      acc.template mma<false>(rowA, rowV, nullptr);
    }
    acc.store(Gm, kLdL);
  }
  __syncthreads();

  // gw_tj = D̄_tj (s_t G_tj + δden_t) S_tj: row sums (warp per row), column sums (warp per column).
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  auto gw = [&](int t, int j) {
    return expf(gs.u[j] - MT[t]) * fmaf(sT[t], Gm[t * kLdL + j], ddenT[t]) * Sm[t * kLdL + j];
  };
  for (int t = warp; t < L; t += 8) {
    float s = 0.0f;
    if (t < len)
      for (int j = lane; j <= t; j += 32)
        s += gw(t, j);
    s = warp_sum(s);
    if (lane == 0)
      rowGw[t] = s;
  }
  for (int j = warp; j < L; j += 8) {
    float s = 0.0f;
    for (int t = j + lane; t < len; t += 32)
      s += gw(t, j);
    s = warp_sum(s);
    if (lane == 0)
      colGw[j] = s;
  }
  __syncthreads();
  // In place: S → P'_tj = D̄_tj S_tj s_t, G → W_tj = D̄_tj (s_t G_tj + δden_t); zero off (j ≤ t < len).
  for (int idx = threadIdx.x; idx < L * L; idx += 256) {
    const int t = idx / L, j = idx % L;
    float pv = 0.0f, wv = 0.0f;
    if (j <= t && t < len) {
      const float dbar = expf(gs.u[j] - MT[t]);
      pv = dbar * Sm[t * kLdL + j] * sT[t];
      wv = dbar * fmaf(sT[t], Gm[t * kLdL + j], ddenT[t]);
    }
    Sm[t * kLdL + j] = pv;
    Gm[t * kLdL + j] = wv;
  }

  // DQK slices: δq, δk and the row pieces δā, δβ; ⟨δC, C_c⟩ + ⟨δn, n_c⟩ on the way.
  // E = δH C_cᵀ and F = V δCᵀ on tensor cores (x3 and x4 receive them, fp32).
  float dDecay = 0.0f;
  for (int d0 = 0; d0 < DQK; d0 += kT) {
    const int wk = min(kT, DQK - d0);
    StripAcc<Config> accE, accF;
    accE.zero();
    accF.zero();
    for (int e0 = 0; e0 < DV; e0 += kT) {
      const int wv = min(kT, DV - e0);
      __syncthreads(); // the previous slice's operands are consumed
      tc::async_load_tile<L, kT, 256>(rowA, kLdB, dh0 + e0, dhStride, len, wv, vecDh);
      tc::async_load_tile<L, kT, 256>(rowV, kLdB, v0 + e0, p.v_stride, len, wv, vecV);
      tc::async_load_tile<kT, kT, 256>(sqC, kLdB, cC + static_cast<int64_t>(d0) * DV + e0, DV, wk,
                                       wv, vecC);
      tc::cp_async_commit();
      load_split_tile<kT, kT>(sqHi, sqLo, kLdB, dC + static_cast<int64_t>(d0) * DV + e0, DV, wk, wv);
      tc::cp_async_wait<0>();
      __syncthreads();
      for (int idx = threadIdx.x; idx < kT * kT; idx += 256) {
        const int r = idx / kT, col = idx % kT;
        dDecay = fmaf(to_float(sqC[r * kLdB + col]),
                      to_float(sqHi[r * kLdB + col]) + to_float(sqLo[r * kLdB + col]), dDecay);
      }
      // E_td = Σ_e δh_te C_de, F_jd = Σ_e v_je δC_de.
      accE.template mma<false>(rowA, sqC, nullptr);
      accF.template mma<false>(rowV, sqHi, sqLo);
    }
    __syncthreads();
    accE.store(x3, kLd);
    accF.store(x4, kLd);
    __syncthreads();
    load_tile_f32<L, kT, 256>(x1, kLd, q0 + d0, p.q_stride, len, wk, false);
    load_tile_f32<L, kT, 256>(x2, kLd, k0 + d0, p.k_stride, len, wk, false);
    __syncthreads();
    if (threadIdx.x < wk)
      dDecay = fmaf(dn[d0 + threadIdx.x], nC[d0 + threadIdx.x], dDecay);
    // Row pieces: δβ_t += s_t q̂_t·E_t + δden_t q̂_t·n_c;  δā_j += k_j·(F_j + δn).
#pragma unroll
    for (int i = 0; i < kL; ++i) {
      const int r = ty + 16 * i;
      float beta = 0.0f, ab = 0.0f;
#pragma unroll
      for (int j = 0; j < kJ; ++j) {
        const int col = tx + 16 * j;
        if (col < wk) {
          const float qv = x1[r * kLd + col] * scale;
          beta += qv * fmaf(sT[r], x3[r * kLd + col], ddenT[r] * nC[d0 + col]);
          ab += x2[r * kLd + col] * (x4[r * kLd + col] + dn[d0 + col]);
        }
      }
      beta = group_sum<16>(beta);
      ab = group_sum<16>(ab);
      if (tx == 0) {
        dBeta[r] += beta;
        dAbar[r] += ab;
      }
    }
    // δq̂ = W K + diag(β s) E + β δden n;  δk = (Wᵀ Q)·scale + diag(ā)(F + δn).
    float accQ[kL][kJ], accK[kL][kJ];
    zero(accQ);
    zero(accK);
    block_product(accQ, len, [&](int t, int j) { return Gm[t * kLdL + j]; },
                  [&](int j, int dd) { return x2[j * kLd + dd]; });
    block_product(accK, len, [&](int j, int t) { return Gm[t * kLdL + j]; },
                  [&](int t, int dd) { return x1[t * kLd + dd]; });
    T *dq = static_cast<T *>(p.dq), *dk = static_cast<T *>(p.dk);
#pragma unroll
    for (int i = 0; i < kL; ++i)
#pragma unroll
      for (int j = 0; j < kJ; ++j) {
        const int r = ty + 16 * i, col = tx + 16 * j;
        if (r < len && col < wk) {
          const float gq =
              accQ[i][j] + betaT[r] * fmaf(sT[r], x3[r * kLd + col], ddenT[r] * nC[d0 + col]);
          const float gk = accK[i][j] * scale + abar[r] * (x4[r * kLd + col] + dn[d0 + col]);
          const int64_t row = row0 + r;
          dq[row * p.dq_stride + p.dq_offset + hd * DQK + d0 + col] = from_float<T>(gq * scale);
          dk[row * p.dk_stride + p.dk_offset + hd * DQK + d0 + col] = from_float<T>(gk);
        }
      }
  }

  // DV slices: δv = P'ᵀ δH + diag(ā) K δC, H = K δC on tensor cores (into x4, fp32).
  for (int e0 = 0; e0 < DV; e0 += kT) {
    const int wv = min(kT, DV - e0);
    StripAcc<Config> accH;
    accH.zero();
    for (int d0 = 0; d0 < DQK; d0 += kT) {
      const int wk = min(kT, DQK - d0);
      __syncthreads();
      tc::async_load_tile<L, kT, 256>(rowA, kLdB, k0 + d0, p.k_stride, len, wk, vecK);
      tc::cp_async_commit();
      load_split_tile<kT, kT>(sqHi, sqLo, kLdB, dC + static_cast<int64_t>(d0) * DV + e0, DV, wk, wv);
      tc::cp_async_wait<0>();
      __syncthreads();
      accH.template mma<true>(rowA, sqHi, sqLo);
    }
    __syncthreads();
    accH.store(x4, kLd);
    __syncthreads();
    load_tile_f32<L, kT, 256>(x3, kLd, dh0 + e0, dhStride, len, wv, false);
    __syncthreads();
    float accV[kL][kJ];
    zero(accV);
    block_product(accV, len, [&](int j, int t) { return Sm[t * kLdL + j]; },
                  [&](int t, int e) { return x3[t * kLd + e]; });
    T *dvOut = static_cast<T *>(p.dv);
#pragma unroll
    for (int i = 0; i < kL; ++i)
#pragma unroll
      for (int j = 0; j < kJ; ++j) {
        const int r = ty + 16 * i, col = tx + 16 * j;
        if (r < len && col < wv)
          dvOut[(row0 + r) * p.dv_stride + p.dv_offset + hd * DV + e0 + col] =
              from_float<T>(accV[i][j] + abar[r] * x4[r * kLd + col]);
      }
  }
  dDecay = block_sum<256>(dDecay, scratch);

  // Token pieces (thread t): δā ā, δβ β, the token stabiliser's δM and its routing.
  if (threadIdx.x < L) {
    const int t = threadIdx.x;
    const bool in = t < len;
    dAbar[t] = in ? dAbar[t] * abar[t] : 0.0f;
    dBeta[t] = in ? dBeta[t] * betaT[t] : 0.0f;
    dM[t] = in ? dmT[t] - rowGw[t] - dBeta[t] : 0.0f;
  }
  __syncthreads();
  float routedPrior = 0.0f, sumA = 0.0f, sumBeta = 0.0f;
  if (threadIdx.x < L) {
    const int j = threadIdx.x;
    float routed = 0.0f;
    for (int t = j; t < len; ++t)
      if (static_cast<int>(argT[t]) == j)
        routed += dM[t];
    if (j < len) {
      float *out = p.ws_gate + (static_cast<int64_t>(bh) * S + start + j) * 4;
      out[0] = dAbar[j];
      out[1] = dmT[j] - colGw[j] - routed;
      out[2] = colGw[j] + routed;
      out[3] = 0.0f;
      routedPrior = argT[j] < 0.0f ? dM[j] : 0.0f;
      sumA = dAbar[j];
      sumBeta = dBeta[j];
    }
  }
  routedPrior = block_sum<256>(routedPrior, scratch);
  sumA = block_sum<256>(sumA, scratch);
  sumBeta = block_sum<256>(sumBeta, scratch);
  if (threadIdx.x == 0) {
    const float W = decay * dDecay;
    chunkRec[1] = sumA + W;
    chunkRec[2] = W + sumBeta + routedPrior;
    chunkRec[3] = W;
    chunkRec[4] = (gs.g + mC < gs.aMax) ? static_cast<float>(gs.aArg) : -1.0f;
  }
}

//===----------------------------------------------------------------------===//
// G: the stabiliser's gradient and the gates
//===----------------------------------------------------------------------===//

template <class Config> __device__ void mlstm_backward_gates(const MlstmChunkBackwardParams &p) {
  using namespace mlstm_bwd;
  using Cell = typename Config::Cell;
  using TGate = typename Cell::TGate;
  constexpr int L = Config::kChunk, kPer = Config::kPerLane;
  constexpr int NH = Cell::kNumHeads;
  const int64_t S = p.seq_len, NC = (S + L - 1) / L;
  const int bh = blockIdx.x, b = bh / NH, hd = bh % NH;
  const float cap = static_cast<float>(p.gate_soft_cap);

  // The scalar recurrence over chunks, last to first (thread 0).
  if (threadIdx.x == 0) {
    float dm = 0.0f;
    for (int64_t c = NC - 1; c >= 0; --c) {
      float *rec = p.ws_chunk + (static_cast<int64_t>(bh) * NC + c) * 8;
      const float delta = dm - rec[1];
      if (rec[4] < 0.0f) {
        rec[5] = 0.0f;
        rec[6] = rec[3] + delta;
        dm = rec[2] + delta;
      } else {
        rec[5] = delta;
        rec[6] = rec[3];
        dm = rec[2];
      }
    }
  }
  __syncthreads();

  // Each warp takes whole chunks: δlf by a suffix sum of δb and a prefix sum of δā ā.
  unsigned char *smem = dynamic_smem();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  constexpr int nL = Config::kVec / 4;
  float *sB = reinterpret_cast<float *>(smem) + warp * 3 * nL, *pA = sB + nL, *dIg = pA + nL;
  const TGate *ig = static_cast<const TGate *>(p.igate);
  const TGate *fg = static_cast<const TGate *>(p.fgate);
  TGate *di = static_cast<TGate *>(p.di), *df = static_cast<TGate *>(p.df);
  for (int64_t c = warp; c < NC; c += 8) {
    const int start = static_cast<int>(c) * L, len = chunk_length(S, start, L);
    const float *rec = p.ws_chunk + (static_cast<int64_t>(bh) * NC + c) * 8;
    const int endArg = static_cast<int>(rec[4]);
    const float routed = rec[5], dG = rec[6];
    for (int j = lane; j < L; j += 32) {
      const float *gp = p.ws_gate + (static_cast<int64_t>(bh) * S + start + j) * 4;
      const bool in = j < len;
      const float dA = in ? gp[0] + (j == endArg ? routed : 0.0f) : 0.0f;
      sB[j] = in ? gp[1] : 0.0f;
      dIg[j] = in ? gp[2] + dA : 0.0f;
      // Exclusive prefix of δā ā: shift by one.
      pA[j] = dA;
    }
    __syncwarp();
    warp_scan_inplace<kPer, false, true>(sB, L);  // Σ_{t≥j} δb_t
    warp_scan_inplace<kPer, false, false>(pA, L); // Σ_{i≤j} δā_i ā_i (inclusive)
    for (int j = lane; j < len; j += 32) {
      const float *gp = p.ws_gate + (static_cast<int64_t>(bh) * S + start + j) * 4;
      const float dAj = gp[0] + (j == endArg ? routed : 0.0f);
      const float dLf = sB[j] + dG + (pA[j] - dAj);
      const int64_t r = static_cast<int64_t>(b) * S + start + j;
      const float fRaw = to_float(fg[r * p.f_stride + p.f_offset + hd]);
      const float iRaw = to_float(ig[r * p.i_stride + p.i_offset + hd]);
      const float fCap = soft_cap(fRaw, cap), iCap = soft_cap(iRaw, cap);
      auto slope = [cap](float x) {
        if (cap <= 0.0f)
          return 1.0f;
        const float th = tanhf(x / cap);
        return 1.0f - th * th;
      };
      float dI = dIg[j];
      if constexpr (Cell::kInputGate == InputGate::kSigmoid)
        dI *= sigmoid(-iCap);
      // An overridden forget gate (a document start) is a constant: no gradient to the raw gate.
      const bool reset = p.resets != nullptr && p.resets[r] != 0;
      df[r * p.df_stride + p.df_offset + hd] =
          from_float<TGate>(reset ? 0.0f : dLf * sigmoid(-fCap) * slope(fRaw));
      di[r * p.di_stride + p.di_offset + hd] = from_float<TGate>(dI * slope(iRaw));
    }
    __syncwarp();
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_MLSTM_CHUNK_BACKWARD_CUH
