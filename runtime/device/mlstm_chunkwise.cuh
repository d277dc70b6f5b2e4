//===- mlstm_chunkwise.cuh - Chunkwise mLSTM forward (prefill) ----*- CUDA -*-===//
//
// The mLSTM cell over a whole sequence (prefill and the training forward) in the chunkwise
// form of TFLA (xlstm-7b.md §3.1–3.4, runtime/reference/MlstmCell.h mlstmChunkwise), with the two
// levels of parallelism as two kernels sharing one parameter struct:
//
//   mlstm_chunk_states   (kernel A) walks the NC = ceil(S / L) chunks of each sequence in order,
//                        one block per (C tile, batch·head), and materialises the state before
//                        every chunk in an fp32 workspace; it writes the final C and n in place.
//   mlstm_chunk_outputs  (kernel B) computes every chunk's outputs in parallel, one block per
//                        (DV tile, chunk·query block, batch·head), from the chunk's q, k, v, gates
//                        and the state before the chunk; it also writes the final m.
//
// Launch A then B on one stream; B reads only the workspace that A wrote, never the state
// buffers, so the in-place state update is race-free (see "Who writes the final state").
//
// ---- Math, per (b, head), chunk c of length Lc ≤ L, positions j = 0..Lc−1 ----------------------
// lf_j, ĩ_j as in mlstm_cell.cuh; (C, n, m) the state before the chunk (workspace slot c).
//   b_j = Σ_{s≤j} lf_s  (inclusive),  g = b_{Lc−1},  a_j = Σ_{s=j+1..Lc−1} lf_s + ĩ_j
// Kernel A (inter-chunk recurrence, §3.2):
//   m' = max(g + m, max_j a_j),  ā_j = e^{a_j − m'},  d = e^{g + m − m'}
//   C' = d·C + Σ_j ā_j k_j v_jᵀ = d·C + Kᵀ (ā ⊙ V),   n' = d·n + Σ_j ā_j k_j
//   a_j comes from a suffix sum of lf (no difference of large cumulative sums).
// Kernel B (intra-chunk + inter-chunk readout, §3.3). The stabiliser of token t is
//   m_t = max(b_t + m, max_{j≤t} (b_t − b_j + ĩ_j)) = b_t + M_t,  M_t = max(m, max_{j≤t} u_j),
//   u_j = ĩ_j − b_j.
// M_t depends on the gates only, so it is computed exactly up front by a prefix max (no
// FlashAttention-style running max and no rescaling of accumulators), and b_t cancels:
//   D̄_tj = e^{log D_tj − m_t} = e^{u_j − M_t} ≤ 1 (j ≤ t),   β_t = e^{b_t + m − m_t} = e^{m − M_t} ≤ 1
//   num_t = β_t q̂_tᵀC + Σ_{j≤t} D̄_tj (q̂_tᵀk_j) v_j,   den_t = β_t q̂_tᵀn + Σ_{j≤t} D̄_tj (q̂_tᵀk_j)
//   h_t = num_t · mlstm_output_scale(den_t, m_t, eps).
// This equals the recurrent form exactly in exact arithmetic (the reference's chunkwise form).
// TFLA's −10 floor on the running max (§3.4) is not applied.
//
// ---- Precision --------------------------------------------------------------------------------
// Tensor cores (nvcuda::wmma m16n16k16, bf16 in, fp32 accumulate) for Kᵀ(ā⊙V) in A and for
// Q·C, Q·Kᵀ and P·V in B; everything else fp32. Roundings to bf16 happen only on the numerator's
// path: ā⊙V and the chunk-start C (as tensor-core operands) and P = (QKᵀ ⊙ D̄)/√DQK. The
// denominator's path stays fp32 end to end (n from the exact bf16 k and fp32 ā; q̂ᵀn and ΣP in
// fp32), because the max(|q̂ᵀn|, e^{−m}) normaliser can be ill-conditioned (cancellation in
// q̂ᵀn) and would amplify bf16 rounding there; the numerator's errors are not amplified by it.
//
// ---- Workspace (caller-provided, fp32, need not be initialised) --------------------------------
//   ws_C [B, NH, NC+1, DQK, DV],  ws_n [B, NH, NC+1, DQK],  ws_m [B, NH, NC+1]
// Slot c holds the state before chunk c: slot 0 = the initial state, slot NC = the final state.
// Kernels A and B must use the same chunk size L (Config::kChunk).
//
// ---- Who writes the final state ----------------------------------------------------------------
// Every block of A reads the initial m of its (b, head), so no block of A may overwrite it. A
// block of A owns its C tile and (for the first DV tile) its rows of n exclusively, so A writes
// the final C and n in place at its end; B's block (DV tile 0, chunk NC−1, query block 0) copies
// the final m from ws_m slot NC. S = 0 is not supported (launch nothing: the state is unchanged).
//
// ---- Launch geometry ---------------------------------------------------------------------------
//   A: grid (kTilesK·kTilesV, B·NH, 1), block (kThreads, 1, 1), dynamic smem kSharedBytes,
//      kTilesK = ceil(DQK / kTileK), kTilesV = ceil(DV / kTileV).
//   B: grid (ceil(DV / kBlockDV), ceil(S / kBlockL), B·NH), block (kThreads, 1, 1), dynamic
//      smem kSharedBytes. Block y covers query rows [y·kBlockL, (y+1)·kBlockL) of the sequence:
//      chunk c = y / (L / kBlockL), query block qb = y % (L / kBlockL) inside it.
// Sizes that are not multiples of 16 (a tiny model's DQK = 8) are zero-padded in shared memory.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_MLSTM_CHUNKWISE_CUH
#define XLC_DEVICE_MLSTM_CHUNKWISE_CUH

#include "xlc/device/common.cuh"
#include "xlc/device/mlstm_cell.cuh"

namespace xlc::device {

/// Parameters of both chunkwise kernels, in this order (all members 8 bytes). Views: element
/// (row, col) of q is q[row·q_stride + q_offset + col] with row = b·S + t and head hd owning
/// columns [hd·DQK, (hd+1)·DQK); k, v likewise (v with DV); the gates igate/fgate hold one column
/// per head (column i_offset + hd).
struct MlstmChunkwiseParams {
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
  void *C;     ///< [B, NH, DQK, DV] TState: initial state in, final state out
  float *n;    ///< [B, NH, DQK]
  float *m;    ///< [B, NH]
  float *ws_C; ///< [B, NH, NC+1, DQK, DV]
  float *ws_n; ///< [B, NH, NC+1, DQK]
  float *ws_m; ///< [B, NH, NC+1]
  void *h;     ///< [B·S, NH·DV] of T, contiguous
  int64_t batch;
  int64_t seq_len;
  double eps;
  double gate_soft_cap; ///< 0 = no cap
};

namespace wmma = nvcuda::wmma;

/// Kernel A's configuration: chunk length L, the C tile (kTileK × kTileV) of one block, threads.
/// Warp w owns fragment rows w, w + W, ... of the tile (all fragment columns).
template <class Cell_, int kChunk_, int kTileK_, int kTileV_, int kThreads_>
struct MlstmChunkStatesConfig {
  using Cell = Cell_;
  static constexpr int kChunk = kChunk_;
  static constexpr int kTileK = kTileK_;
  static constexpr int kTileV = kTileV_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kWarps = kThreads / 32;
  static constexpr int kTilesK = ceil_div(Cell::kDQK, kTileK);
  static constexpr int kTilesV = ceil_div(Cell::kDV, kTileV);
  static constexpr int kTiles = kTilesK * kTilesV; ///< grid.x
  static constexpr int kFragRows = kTileK / 16;
  static constexpr int kFragCols = kTileV / 16;
  static constexpr int kFragRowsPerWarp = kFragRows / kWarps;
  static constexpr int kScanPerLane = ceil_div(kChunk, 32);
  // Shared-memory pitches (elements): +8 bf16 / +4 fp32 keeps rows 16-byte aligned and shifts
  // consecutive rows by 4 banks.
  static constexpr int kLdK = kTileK + 8;
  static constexpr int kLdV = kTileV + 8;
  static constexpr int kLdC = kTileV + 4;
  // Shared-memory layout (byte offsets), every region 128-byte aligned.
  static constexpr int kOffK = 0;                                         // k   [L][kLdK] bf16
  static constexpr int kOffV = kOffK + smem_bytes<bf16>(kChunk * kLdK);   // ā⊙v [L][kLdV] bf16
  static constexpr int kOffC = kOffV + smem_bytes<bf16>(kChunk * kLdV);   // C   [kTileK][kLdC] f32
  static constexpr int kOffGate = kOffC + smem_bytes<float>(kTileK * kLdC); // 3 × [L] f32
  static constexpr int kOffN = kOffGate + smem_bytes<float>(3 * kChunk);  // n   [kTileK] f32
  static constexpr int kOffScalar = kOffN + smem_bytes<float>(kTileK);    // m, m', d
  static constexpr int kSharedBytes = kOffScalar + 128;

  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
  static_assert(kChunk % 16 == 0 && kChunk > 0, "chunk length must be a multiple of 16");
  static_assert(kTileK % 16 == 0 && kTileV % 16 == 0, "C tile must be whole 16x16 fragments");
  static_assert(kFragRows % kWarps == 0, "each warp must own whole fragment rows of the C tile");
};

/// Kernel B's configuration: chunk length L (same as kernel A's), query/key block kBlockL (a
/// divisor of L), output columns kBlockDV per block, and the DQK slice kBlockDQK staged per step.
/// Warp w owns fragment rows w, w + W, ... of the kBlockL query rows.
template <class Cell_, int kChunk_, int kBlockL_, int kBlockDV_, int kBlockDQK_, int kThreads_>
struct MlstmChunkOutputsConfig {
  using Cell = Cell_;
  static constexpr int kChunk = kChunk_;
  static constexpr int kBlockL = kBlockL_;
  static constexpr int kBlockDV = kBlockDV_;
  static constexpr int kBlockDQK = kBlockDQK_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kWarps = kThreads / 32;
  static constexpr int kQueryBlocks = kChunk / kBlockL;  ///< per chunk; grid.y = ceil(S / kBlockL)
  static constexpr int kTilesV = ceil_div(Cell::kDV, kBlockDV); ///< grid.x
  static constexpr int kPieces = ceil_div(Cell::kDQK, kBlockDQK);
  static constexpr int kQWidth = kPieces * kBlockDQK; ///< staged q row width (zero-padded DQK)
  static constexpr int kFragRows = kBlockL / 16;
  static constexpr int kFragCols = kBlockDV / 16;
  static constexpr int kFragRowsPerWarp = kFragRows / kWarps;
  static constexpr int kScanPerLane = ceil_div(kChunk, 32);
  /// Threads that share one row in the element-wise passes (a power of two ≤ 32).
  static constexpr int kRowThreads = kThreads >= kBlockL ? kThreads / kBlockL : 1;
  static constexpr int kLdQ = kQWidth + 8;
  static constexpr int kLdK = kBlockDQK + 8;
  static constexpr int kLdC = kBlockDV + 8;
  static constexpr int kLdV = kBlockDV + 8;
  static constexpr int kLdP = kBlockL + 8;
  static constexpr int kLdS = max_int(kBlockL, kBlockDV) + 4;
  static constexpr int kOffQ = 0;                                            // q  [BL][kLdQ] bf16
  static constexpr int kOffK = kOffQ + smem_bytes<bf16>(kBlockL * kLdQ);     // k  [BL][kLdK] bf16
  static constexpr int kOffC = kOffK + smem_bytes<bf16>(kBlockL * kLdK);     // C  [BDQK][kLdC] bf16
  static constexpr int kOffV = kOffC + smem_bytes<bf16>(kBlockDQK * kLdC);   // v  [BL][kLdV] bf16
  static constexpr int kOffS = kOffV + smem_bytes<bf16>(kBlockL * kLdV);     // S / out [BL][kLdS] f32
  static constexpr int kOffP = kOffS + smem_bytes<float>(kBlockL * kLdS);    // P  [BL][kLdP] bf16
  static constexpr int kOffGate = kOffP + smem_bytes<bf16>(kBlockL * kLdP);  // b, u, pm [L] f32
  static constexpr int kOffRow = kOffGate + smem_bytes<float>(3 * kChunk);   // M, m, β, den [BL]
  static constexpr int kOffN = kOffRow + smem_bytes<float>(4 * kBlockL);     // n  [kQWidth] f32
  static constexpr int kSharedBytes = kOffN + smem_bytes<float>(kQWidth);

  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
  static_assert(kChunk % kBlockL == 0, "kBlockL must divide the chunk length");
  static_assert(kBlockL % 16 == 0 && kBlockDV % 16 == 0 && kBlockDQK % 16 == 0,
                "blocks must be whole 16x16 fragments");
  static_assert(kFragRows % kWarps == 0, "each warp must own whole fragment rows");
  static_assert(is_pow2(kRowThreads) && kRowThreads <= 32, "threads per row: power of two <= 32");
  static_assert(kThreads % kRowThreads == 0, "rows must tile the block");
};

//===--------------------------------------------------------------------===//
// Kernel A: chunk states
//===--------------------------------------------------------------------===//

template <class Config> __device__ void mlstm_chunk_states(const MlstmChunkwiseParams &p) {
  using Cell = typename Config::Cell;
  using T = typename Cell::T;
  using TGate = typename Cell::TGate;
  using TState = typename Cell::TState;
  constexpr int kNH = Cell::kNumHeads, kDQK = Cell::kDQK, kDV = Cell::kDV;
  constexpr int L = Config::kChunk, kTileK = Config::kTileK, kTileV = Config::kTileV;
  constexpr int kThreads = Config::kThreads, kWarps = Config::kWarps;
  constexpr int kFC = Config::kFragCols, kRPW = Config::kFragRowsPerWarp;
  constexpr int kLdK = Config::kLdK, kLdV = Config::kLdV, kLdC = Config::kLdC;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int tile = blockIdx.x;
  const int kt = tile / Config::kTilesV, vt = tile % Config::kTilesV;
  const int64_t bh = blockIdx.y;
  const int64_t b = bh / kNH;
  const int hd = static_cast<int>(bh % kNH);
  if (b >= p.batch || tile >= Config::kTiles)
    return;
  const int r0 = kt * kTileK, c0 = vt * kTileV; // tile origin in (DQK, DV)
  const int rows = min(kTileK, kDQK - r0), cols = min(kTileV, kDV - c0);
  const int64_t S = p.seq_len;
  const int64_t NC = (S + L - 1) / L;
  const float cap = static_cast<float>(p.gate_soft_cap);

  unsigned char *smem = dynamic_smem();
  bf16 *Ks = reinterpret_cast<bf16 *>(smem + Config::kOffK);
  bf16 *Vs = reinterpret_cast<bf16 *>(smem + Config::kOffV);
  float *Cs = reinterpret_cast<float *>(smem + Config::kOffC);
  float *gLf = reinterpret_cast<float *>(smem + Config::kOffGate); // lf, later a_j
  float *gIg = gLf + L;                                              // ĩ
  float *gAbar = gLf + 2 * L;                                        // suffix sums, later ā
  float *ns = reinterpret_cast<float *>(smem + Config::kOffN);
  float *scalars = reinterpret_cast<float *>(smem + Config::kOffScalar); // [0] m, [1] m', [2] d

  // Global views of this (b, head, tile).
  TState *Cst = static_cast<TState *>(p.C) + bh * kDQK * kDV + r0 * kDV + c0;
  float *nst = p.n + bh * kDQK + r0;
  float *wsC = p.ws_C + bh * (NC + 1) * kDQK * kDV + r0 * kDV + c0;
  float *wsN = p.ws_n + bh * (NC + 1) * kDQK + r0;
  float *wsM = p.ws_m + bh * (NC + 1);
  const T *kBase = static_cast<const T *>(p.k) + b * S * p.k_stride + p.k_offset + hd * kDQK + r0;
  const T *vBase = static_cast<const T *>(p.v) + b * S * p.v_stride + p.v_offset + hd * kDV + c0;
  const TGate *iBase = static_cast<const TGate *>(p.igate) + b * S * p.i_stride + p.i_offset + hd;
  const TGate *fBase = static_cast<const TGate *>(p.fgate) + b * S * p.f_stride + p.f_offset + hd;
  const bool vecK = view_aligned16<T>(kBase, 0, p.k_stride);
  const bool vecV = view_aligned16<T>(vBase, 0, p.v_stride);
  const bool vecState = view_aligned16<TState>(Cst, 0, kDV);
  const bool vecWs = view_aligned16<float>(wsC, 0, kDV);

  // Initial state: C tile into shared memory (fp32, zero-padded), n rows, m.
  load_tile_f32<kTileK, kTileV, kThreads>(Cs, kLdC, Cst, kDV, rows, cols, vecState);
  if (vt == 0)
    for (int r = tid; r < kTileK; r += kThreads)
      ns[r] = r < rows ? nst[r] : 0.0f;
  if (tid == 0)
    scalars[0] = p.m[bh];
  __syncthreads();
  // Slot 0 of the workspace is the initial state.
  store_tile_f32<kTileK, kTileV, kThreads>(wsC, kDV, Cs, kLdC, rows, cols, vecWs);
  if (vt == 0)
    for (int r = tid; r < rows; r += kThreads)
      wsN[r] = ns[r];
  if (tile == 0 && tid == 0)
    wsM[0] = scalars[0];

  // The C tile lives in fp32 accumulator fragments for the whole sequence.
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kRPW][kFC];
#pragma unroll
  for (int i = 0; i < kRPW; ++i) {
    const int fi = warp + kWarps * i;
#pragma unroll
    for (int fj = 0; fj < kFC; ++fj)
      wmma::load_matrix_sync(acc[i][fj], Cs + fi * 16 * kLdC + fj * 16, kLdC, wmma::mem_row_major);
  }

  for (int64_t c = 0; c < NC; ++c) {
    const int64_t t0 = c * L;
    const int Lc = static_cast<int>(min(static_cast<int64_t>(L), S - t0));

    // ---- Gates of the chunk: lf_j, ĩ_j (padding positions: lf = 0, ĩ = −∞).
    for (int j = tid; j < L; j += kThreads) {
      if (j < Lc) {
        const int64_t row = t0 + j;
        gLf[j] = mlstm_log_forget(to_float(fBase[row * p.f_stride]), cap);
        gIg[j] = mlstm_log_input<Cell::kInputGate>(to_float(iBase[row * p.i_stride]), cap);
      } else {
        gLf[j] = 0.0f;
        gIg[j] = -kInfinity;
      }
      gAbar[j] = gLf[j];
    }
    __syncthreads();
    if (warp == 0) {
      // Suffix sums: gAbar[j] = Σ_{s=j..Lc−1} lf_s; g = gAbar[0].
      warp_scan_inplace<Config::kScanPerLane, false, true>(gAbar, Lc);
      const float g = gAbar[0];
      const float mPrev = scalars[0];
      // a_j = Σ_{s=j+1..Lc−1} lf_s + ĩ_j, into gLf (lf is no longer needed).
      float aMax = -kInfinity;
      for (int j = lane; j < Lc; j += 32) {
        const float a = (j + 1 < Lc ? gAbar[j + 1] : 0.0f) + gIg[j];
        gLf[j] = a;
        aMax = fmaxf(aMax, a);
      }
      aMax = warp_max(aMax);
      const float mNew = fmaxf(g + mPrev, aMax);
      __syncwarp(); // every lane has read gAbar before it is overwritten
      for (int j = lane; j < L; j += 32)
        gAbar[j] = j < Lc ? expf(gLf[j] - mNew) : 0.0f;
      if (lane == 0) {
        scalars[1] = mNew;
        scalars[2] = expf(g + mPrev - mNew);
      }
    }
    __syncthreads();

    // ---- Stage k (exact) and ā ⊙ v (rounded to bf16: the tensor-core operand).
    load_tile_bf16<L, kTileK, kThreads>(Ks, kLdK, kBase + t0 * p.k_stride, p.k_stride, Lc, rows,
                                        nullptr, vecK);
    load_tile_bf16<L, kTileV, kThreads>(Vs, kLdV, vBase + t0 * p.v_stride, p.v_stride, Lc, cols,
                                        gAbar, vecV);
    __syncthreads();
    const float decay = scalars[2];

    // ---- n' = d·n + Σ_j ā_j k_j in fp32 (first DV tile only; it owns these rows of n).
    if (vt == 0) {
      for (int r = tid; r < kTileK; r += kThreads) {
        float sum = 0.0f;
        for (int j = 0; j < Lc; ++j)
          sum += gAbar[j] * to_float(Ks[j * kLdK + r]);
        ns[r] = decay * ns[r] + sum;
      }
    }

    // ---- C' = d·C + Kᵀ (ā ⊙ V) on tensor cores. A = Kᵀ is K read column-major.
#pragma unroll
    for (int i = 0; i < kRPW; ++i)
#pragma unroll
      for (int fj = 0; fj < kFC; ++fj)
#pragma unroll
        for (int e = 0; e < acc[i][fj].num_elements; ++e)
          acc[i][fj].x[e] *= decay;
#pragma unroll
    for (int kk = 0; kk < L / 16; ++kk) {
#pragma unroll
      for (int i = 0; i < kRPW; ++i) {
        const int fi = warp + kWarps * i;
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> aFrag;
        wmma::load_matrix_sync(aFrag, Ks + kk * 16 * kLdK + fi * 16, kLdK);
#pragma unroll
        for (int fj = 0; fj < kFC; ++fj) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> bFrag;
          wmma::load_matrix_sync(bFrag, Vs + kk * 16 * kLdV + fj * 16, kLdV);
          wmma::mma_sync(acc[i][fj], aFrag, bFrag, acc[i][fj]);
        }
      }
    }

    // ---- Publish the state after the chunk in workspace slot c + 1.
#pragma unroll
    for (int i = 0; i < kRPW; ++i) {
      const int fi = warp + kWarps * i;
#pragma unroll
      for (int fj = 0; fj < kFC; ++fj)
        wmma::store_matrix_sync(Cs + fi * 16 * kLdC + fj * 16, acc[i][fj], kLdC,
                                wmma::mem_row_major);
    }
    __syncthreads();
    store_tile_f32<kTileK, kTileV, kThreads>(wsC + (c + 1) * kDQK * kDV, kDV, Cs, kLdC, rows, cols,
                                             vecWs);
    if (vt == 0)
      for (int r = tid; r < rows; r += kThreads)
        wsN[(c + 1) * kDQK + r] = ns[r];
    if (tid == 0) {
      if (tile == 0)
        wsM[c + 1] = scalars[1];
      scalars[0] = scalars[1];
    }
    __syncthreads();
  }

  // ---- Final state in place: Cs holds the last published C (the initial one when NC = 0).
  store_tile_f32<kTileK, kTileV, kThreads>(Cst, kDV, Cs, kLdC, rows, cols, vecState);
  if (vt == 0)
    for (int r = tid; r < rows; r += kThreads)
      nst[r] = ns[r];
}

//===--------------------------------------------------------------------===//
// Kernel B: chunk outputs
//===--------------------------------------------------------------------===//

template <class Config> __device__ void mlstm_chunk_outputs(const MlstmChunkwiseParams &p) {
  using Cell = typename Config::Cell;
  using T = typename Cell::T;
  using TGate = typename Cell::TGate;
  constexpr int kNH = Cell::kNumHeads, kDQK = Cell::kDQK, kDV = Cell::kDV;
  constexpr int L = Config::kChunk, BL = Config::kBlockL, BDV = Config::kBlockDV;
  constexpr int BDQK = Config::kBlockDQK;
  constexpr int kThreads = Config::kThreads, kWarps = Config::kWarps;
  constexpr int kFL = Config::kFragRows, kFV = Config::kFragCols;
  constexpr int kRPW = Config::kFragRowsPerWarp;
  constexpr int kLdQ = Config::kLdQ, kLdK = Config::kLdK, kLdC = Config::kLdC;
  constexpr int kLdV = Config::kLdV, kLdP = Config::kLdP, kLdS = Config::kLdS;
  constexpr int kRT = Config::kRowThreads;       // threads per row in element-wise passes
  constexpr int kRowsPerPass = kThreads / kRT;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int vtile = blockIdx.x;
  const int64_t cq = blockIdx.y;
  const int64_t c = cq / Config::kQueryBlocks;
  const int qb = static_cast<int>(cq % Config::kQueryBlocks);
  const int64_t bh = blockIdx.z;
  const int64_t b = bh / kNH;
  const int hd = static_cast<int>(bh % kNH);
  const int64_t S = p.seq_len;
  const int64_t NC = (S + L - 1) / L;
  if (b >= p.batch || c >= NC || vtile >= Config::kTilesV)
    return;
  const int64_t t0 = c * L;
  const int Lc = static_cast<int>(min(static_cast<int64_t>(L), S - t0));
  const int q0 = qb * BL;            // first query position of this block within the chunk
  const int rowsQ = min(BL, Lc - q0); // valid query rows
  const int e0 = vtile * BDV, colsV = min(BDV, kDV - e0);

  // The final m: the state after the last chunk is workspace slot NC (kernel A wrote it).
  if (vtile == 0 && c == NC - 1 && qb == 0 && tid == 0)
    p.m[bh] = p.ws_m[bh * (NC + 1) + NC];
  if (rowsQ <= 0)
    return; // past the end of a partial last chunk (only if grid.y exceeds ceil(S / kBlockL))

  const float cap = static_cast<float>(p.gate_soft_cap);
  const float eps = static_cast<float>(p.eps);
  const float scale = 1.0f / sqrtf(static_cast<float>(kDQK));
  const int nPos = q0 + rowsQ; // gate positions needed: keys up to the last query row

  unsigned char *smem = dynamic_smem();
  bf16 *Qs = reinterpret_cast<bf16 *>(smem + Config::kOffQ);
  bf16 *Ks = reinterpret_cast<bf16 *>(smem + Config::kOffK);
  bf16 *Cs = reinterpret_cast<bf16 *>(smem + Config::kOffC);
  bf16 *Vs = reinterpret_cast<bf16 *>(smem + Config::kOffV);
  float *Ss = reinterpret_cast<float *>(smem + Config::kOffS);
  bf16 *Ps = reinterpret_cast<bf16 *>(smem + Config::kOffP);
  float *gB = reinterpret_cast<float *>(smem + Config::kOffGate); // b_j (inclusive cumsum)
  float *gU = gB + L;                                               // u_j = ĩ_j − b_j
  float *gPm = gB + 2 * L;                                          // prefix max of u
  float *rowM = reinterpret_cast<float *>(smem + Config::kOffRow);  // M_t
  float *rowStab = rowM + BL;                                       // m_t = b_t + M_t
  float *rowBeta = rowM + 2 * BL;                                   // β_t
  float *rowDen = rowM + 3 * BL;                                    // den_t
  float *nPrev = reinterpret_cast<float *>(smem + Config::kOffN);

  const int64_t slot = bh * (NC + 1) + c; // state before chunk c
  const float mPrev = p.ws_m[slot];
  const float *wsC = p.ws_C + slot * kDQK * kDV + e0;
  const float *wsN = p.ws_n + slot * kDQK;
  const int64_t rowBase = b * S + t0; // global row of chunk position 0
  const T *qBase = static_cast<const T *>(p.q) + (rowBase + q0) * p.q_stride + p.q_offset +
                   hd * kDQK;
  const T *kBase = static_cast<const T *>(p.k) + rowBase * p.k_stride + p.k_offset + hd * kDQK;
  const T *vBase = static_cast<const T *>(p.v) + rowBase * p.v_stride + p.v_offset + hd * kDV + e0;
  const TGate *iBase = static_cast<const TGate *>(p.igate) + rowBase * p.i_stride + p.i_offset + hd;
  const TGate *fBase = static_cast<const TGate *>(p.fgate) + rowBase * p.f_stride + p.f_offset + hd;
  const bool vecQ = view_aligned16<T>(qBase, 0, p.q_stride);
  const bool vecK = view_aligned16<T>(kBase, 0, p.k_stride);
  const bool vecV = view_aligned16<T>(vBase, 0, p.v_stride);
  const bool vecC = view_aligned16<float>(wsC, 0, kDV);

  // ---- Gates: b_j, u_j and the per-row stabilisers M_t, m_t, β_t.
  for (int j = tid; j < nPos; j += kThreads) {
    gB[j] = mlstm_log_forget(to_float(fBase[j * p.f_stride]), cap);
    gU[j] = mlstm_log_input<Cell::kInputGate>(to_float(iBase[j * p.i_stride]), cap);
  }
  // ---- Stage this block's q rows (full, zero-padded width) and the chunk-start n.
  load_tile_bf16<BL, Config::kQWidth, kThreads>(Qs, kLdQ, qBase, p.q_stride, rowsQ, kDQK, nullptr,
                                                vecQ);
  for (int d = tid; d < Config::kQWidth; d += kThreads)
    nPrev[d] = d < kDQK ? wsN[d] : 0.0f;
  __syncthreads();
  if (warp == 0) {
    warp_scan_inplace<Config::kScanPerLane, false, false>(gB, nPos); // b_j
    for (int j = lane; j < nPos; j += 32) {
      gU[j] -= gB[j];
      gPm[j] = gU[j];
    }
    __syncwarp();
    warp_scan_inplace<Config::kScanPerLane, true, false>(gPm, nPos); // max_{i≤j} u_i
    for (int t = lane; t < BL; t += 32) {
      if (t < rowsQ) {
        const float M = fmaxf(mPrev, gPm[q0 + t]);
        rowM[t] = M;
        rowStab[t] = gB[q0 + t] + M;
        rowBeta[t] = expf(mPrev - M);
      } else {
        rowM[t] = 0.0f;
        rowStab[t] = 0.0f;
        rowBeta[t] = 0.0f;
      }
    }
  }
  __syncthreads();

  // ---- den_t starts with the inter-chunk term β_t q̂_tᵀn (fp32, exact bf16 q).
  for (int t0r = 0; t0r < BL; t0r += kRowsPerPass) {
    const int t = t0r + tid / kRT;
    float sum = 0.0f;
    if (t < BL)
      for (int d = tid % kRT; d < kDQK; d += kRT)
        sum += to_float(Qs[t * kLdQ + d]) * nPrev[d];
    sum = group_sum<kRT>(sum);
    if (t < BL && tid % kRT == 0)
      rowDen[t] = scale * rowBeta[t] * sum;
  }

  // ---- Inter-chunk numerator: acc = Q · C[:, e0 : e0 + BDV] (C rounded to bf16 in smem).
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kRPW][kFV];
#pragma unroll
  for (int i = 0; i < kRPW; ++i)
#pragma unroll
    for (int fj = 0; fj < kFV; ++fj)
      wmma::fill_fragment(acc[i][fj], 0.0f);
  for (int d0 = 0; d0 < Config::kQWidth; d0 += BDQK) {
    load_tile_bf16<BDQK, BDV, kThreads>(Cs, kLdC, wsC + d0 * kDV, kDV, min(BDQK, kDQK - d0), colsV,
                                        nullptr, vecC);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BDQK / 16; ++kk) {
#pragma unroll
      for (int i = 0; i < kRPW; ++i) {
        const int fi = warp + kWarps * i;
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> aFrag;
        wmma::load_matrix_sync(aFrag, Qs + fi * 16 * kLdQ + d0 + kk * 16, kLdQ);
#pragma unroll
        for (int fj = 0; fj < kFV; ++fj) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> bFrag;
          wmma::load_matrix_sync(bFrag, Cs + kk * 16 * kLdC + fj * 16, kLdC);
          wmma::mma_sync(acc[i][fj], aFrag, bFrag, acc[i][fj]);
        }
      }
    }
    __syncthreads();
  }
  // Row scale q̂ = q/√DQK and β_t: through shared memory (fragment layouts are opaque).
#pragma unroll
  for (int i = 0; i < kRPW; ++i) {
    const int fi = warp + kWarps * i;
#pragma unroll
    for (int fj = 0; fj < kFV; ++fj)
      wmma::store_matrix_sync(Ss + fi * 16 * kLdS + fj * 16, acc[i][fj], kLdS, wmma::mem_row_major);
  }
  __syncthreads();
  for (int idx = tid; idx < BL * BDV; idx += kThreads) {
    const int t = idx / BDV, e = idx % BDV;
    Ss[t * kLdS + e] *= scale * rowBeta[t];
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kRPW; ++i) {
    const int fi = warp + kWarps * i;
#pragma unroll
    for (int fj = 0; fj < kFV; ++fj)
      wmma::load_matrix_sync(acc[i][fj], Ss + fi * 16 * kLdS + fj * 16, kLdS, wmma::mem_row_major);
  }
  __syncthreads(); // Ss is reused for the score tile below

  // ---- Intra-chunk part: key blocks 0..qb (causal), P = (Q Kᵀ)·scale ⊙ D̄, acc += P V.
  for (int kb = 0; kb <= qb; ++kb) {
    const int k0 = kb * BL;
    const int rowsK = min(BL, Lc - k0);
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> sFrag[kRPW][kFL];
#pragma unroll
    for (int i = 0; i < kRPW; ++i)
#pragma unroll
      for (int fj = 0; fj < kFL; ++fj)
        wmma::fill_fragment(sFrag[i][fj], 0.0f);
    for (int d0 = 0; d0 < Config::kQWidth; d0 += BDQK) {
      load_tile_bf16<BL, BDQK, kThreads>(Ks, kLdK, kBase + k0 * p.k_stride + d0, p.k_stride, rowsK,
                                         min(BDQK, kDQK - d0), nullptr, vecK);
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < BDQK / 16; ++kk) {
#pragma unroll
        for (int i = 0; i < kRPW; ++i) {
          const int fi = warp + kWarps * i;
          wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> aFrag;
          wmma::load_matrix_sync(aFrag, Qs + fi * 16 * kLdQ + d0 + kk * 16, kLdQ);
#pragma unroll
          for (int fj = 0; fj < kFL; ++fj) {
            // B = Kᵀ: element (d, j) is Ks[j][d], i.e. Ks read column-major.
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> bFrag;
            wmma::load_matrix_sync(bFrag, Ks + fj * 16 * kLdK + kk * 16, kLdK);
            wmma::mma_sync(sFrag[i][fj], aFrag, bFrag, sFrag[i][fj]);
          }
        }
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < kRPW; ++i) {
      const int fi = warp + kWarps * i;
#pragma unroll
      for (int fj = 0; fj < kFL; ++fj)
        wmma::store_matrix_sync(Ss + fi * 16 * kLdS + fj * 16, sFrag[i][fj], kLdS,
                                wmma::mem_row_major);
    }
    load_tile_bf16<BL, BDV, kThreads>(Vs, kLdV, vBase + k0 * p.v_stride, p.v_stride, rowsK, colsV,
                                      nullptr, vecV);
    __syncthreads();

    // P_tj = S_tj · scale · e^{u_j − M_t} for valid j ≤ t, else 0; den_t += Σ_j P_tj (fp32).
    for (int t0r = 0; t0r < BL; t0r += kRowsPerPass) {
      const int t = t0r + tid / kRT;
      float rowSum = 0.0f;
      if (t < BL) {
        const int qPos = q0 + t;
        const float M = rowM[t];
        for (int j = tid % kRT; j < BL; j += kRT) {
          const int kPos = k0 + j;
          float pv = 0.0f;
          if (t < rowsQ && j < rowsK && kPos <= qPos)
            pv = Ss[t * kLdS + j] * scale * expf(gU[kPos] - M);
          Ps[t * kLdP + j] = from_float<bf16>(pv);
          rowSum += pv;
        }
      }
      rowSum = group_sum<kRT>(rowSum);
      if (t < BL && tid % kRT == 0)
        rowDen[t] += rowSum;
    }
    __syncthreads();

#pragma unroll
    for (int kk = 0; kk < BL / 16; ++kk) {
#pragma unroll
      for (int i = 0; i < kRPW; ++i) {
        const int fi = warp + kWarps * i;
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> aFrag;
        wmma::load_matrix_sync(aFrag, Ps + fi * 16 * kLdP + kk * 16, kLdP);
#pragma unroll
        for (int fj = 0; fj < kFV; ++fj) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> bFrag;
          wmma::load_matrix_sync(bFrag, Vs + kk * 16 * kLdV + fj * 16, kLdV);
          wmma::mma_sync(acc[i][fj], aFrag, bFrag, acc[i][fj]);
        }
      }
    }
    __syncthreads(); // Ks, Vs, Ps and Ss are restaged by the next key block
  }

  // ---- Normalise and store h (T) for the valid rows and columns.
#pragma unroll
  for (int i = 0; i < kRPW; ++i) {
    const int fi = warp + kWarps * i;
#pragma unroll
    for (int fj = 0; fj < kFV; ++fj)
      wmma::store_matrix_sync(Ss + fi * 16 * kLdS + fj * 16, acc[i][fj], kLdS, wmma::mem_row_major);
  }
  __syncthreads();
  T *hBase = static_cast<T *>(p.h) + (rowBase + q0) * (kNH * kDV) + hd * kDV + e0;
  const bool vecH = view_aligned16<T>(hBase, 0, kNH * kDV);
  constexpr int kGroups = BDV / 8;
  for (int idx = tid; idx < BL * kGroups; idx += kThreads) {
    const int t = idx / kGroups, e = (idx % kGroups) * 8;
    if (t >= rowsQ || e >= colsV)
      continue;
    const float s = mlstm_output_scale<Cell::kNormalizer>(rowDen[t], rowStab[t], eps);
    float out[8];
#pragma unroll
    for (int u = 0; u < 8; ++u)
      out[u] = Ss[t * kLdS + e + u] * s;
    T *dst = hBase + t * (kNH * kDV) + e;
    if (e + 8 <= colsV && vecH) {
      store_floats<8, true>(dst, out);
    } else {
      for (int u = 0; u < 8 && e + u < colsV; ++u)
        dst[u] = from_float<T>(out[u]);
    }
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_MLSTM_CHUNKWISE_CUH
