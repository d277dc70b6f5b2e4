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
// Tensor cores (mma.sync m16n8k16 through tensor_core.cuh, bf16 in, fp32 accumulate) for
// Kᵀ(ā⊙V) in A and for Q·C, Q·Kᵀ and P·V in B; everything else fp32. Roundings to bf16 happen
// only on the numerator's path: ā⊙V and the chunk-start C (as tensor-core operands) and
// P = (QKᵀ ⊙ D̄)/√DQK. The denominator's path stays fp32 end to end (n from the exact bf16 k and
// fp32 ā; q̂ᵀn and ΣP in fp32), because the max(|q̂ᵀn|, e^{−m}) normaliser can be ill-conditioned
// (cancellation in q̂ᵀn) and would amplify bf16 rounding there; the numerator's errors are not
// amplified by it. Kernel A carries C in fp32 registers across the whole sequence; only the
// published copies in ws_C are rounded (to T, the operand type B reads them as).
//
// ---- Workspace (caller-provided, need not be initialised) -------------------------------------
//   ws_C [B, NH, NC+1, DQK, DV] of T,  ws_n [B, NH, NC+1, DQK] fp32,  ws_m [B, NH, NC+1] fp32
// Slot c holds the state before chunk c: slot 0 = the initial state, slot NC = the final state.
// ws_C is stored in T (bf16 for a bf16 model): B consumes it as a bf16 tensor-core operand, so a
// wider copy would only double the traffic of the largest stream (per token and head DQK·DV/L
// elements, as many as q, k and v together at L = 256). Kernels A and B must use the same chunk
// size L (Config::kChunk).
//
// ---- Pipelines --------------------------------------------------------------------------------
// A double-buffers the next chunk's k and v tiles with cp.async while it updates C. B streams
// its operand tiles — the DQK slices of the chunk-start C, then per causal key block the DQK
// slices of k and the v tile — through a ring of kStages shared-memory slots, kStages − 1 tiles
// ahead of the tensor cores, one barrier per tile.
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
#include "xlc/device/tensor_core.cuh"

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
  /// [B·S] or null: nonzero where the token at row b·S + t starts a document; its lf is
  /// logσ(kResetForgetGate) whatever fgate holds (mlstm_cell.cuh; training only).
  const uint8_t *resets;
  void *C;     ///< [B, NH, DQK, DV] TState: initial state in, final state out
  float *n;    ///< [B, NH, DQK]
  float *m;    ///< [B, NH]
  void *ws_C;  ///< [B, NH, NC+1, DQK, DV] of T
  float *ws_n; ///< [B, NH, NC+1, DQK]
  float *ws_m; ///< [B, NH, NC+1]
  void *h;     ///< [B·S, NH·DV] of T, contiguous
  int64_t batch;
  int64_t seq_len;
  double eps;
  double gate_soft_cap; ///< 0 = no cap
};

/// Kernel A's configuration: chunk length L, the C tile (kTileK × kTileV) of one block, threads.
/// The tile's 16-row strips are split evenly over the warps (warp w owns strips
/// [w·kStripsPerWarp, (w+1)·kStripsPerWarp)); a strip's accumulators cover all kTileV columns.
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
  static constexpr int kStrips = kTileK / 16;
  static constexpr int kStripsPerWarp = kStrips / kWarps;
  static constexpr int kColTiles = kTileV / 8; ///< n8 accumulator tiles per strip
  static constexpr int kScanPerLane = ceil_div(kChunk, 32);
  // Shared-memory pitches (elements): +8 bf16 shifts consecutive rows by 16 bytes, so the eight
  // row addresses of an ldmatrix hit distinct bank groups.
  static constexpr int kLdK = kTileK + 8;
  static constexpr int kLdV = kTileV + 8;
  // Shared-memory layout (byte offsets), every region 128-byte aligned: two stages of (k, v),
  // gates, n, scalars, and the staging tile through which C is published with 16-byte stores.
  static constexpr int kStageBytes = smem_bytes<bf16>(kChunk * kLdK) + smem_bytes<bf16>(kChunk * kLdV);
  static constexpr int kOffStage = 0;                                  // 2 × (k [L][kLdK], v [L][kLdV])
  static constexpr int kOffGate = kOffStage + 2 * kStageBytes;         // 3 × [L] f32
  static constexpr int kOffN = kOffGate + smem_bytes<float>(3 * kChunk); // n [kTileK] f32
  static constexpr int kOffScalar = kOffN + smem_bytes<float>(kTileK);  // m, m', d
  static constexpr int kLdOut = kTileV + 8;
  static constexpr int kOffOut = kOffScalar + 128; // published C tile [kTileK][kLdOut] of T
  static constexpr int kSharedBytes = kOffOut + smem_bytes<typename Cell::T>(kTileK * kLdOut);
  static constexpr int kGatesPerThread = ceil_div(kChunk, kThreads);

  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
  static_assert(kChunk % 16 == 0 && kChunk > 0, "chunk length must be a multiple of 16");
  static_assert(kTileK % 16 == 0 && kTileV % 16 == 0, "C tile must be whole 16x16 fragments");
  static_assert(kStrips % kWarps == 0, "each warp must own whole 16-row strips of the C tile");
  static_assert(sizeof(typename Cell::T) == 2, "the chunkwise kernels take bf16 q, k, v: their tensor-core operands and the exact denominator path (n from the staged k, q^T n from the staged q, sum P from bf16 products) assume it");
};

/// Kernel B's configuration: chunk length L (same as kernel A's), query block kBlockL (a divisor
/// of L; also the key block of the causal loop), output columns kBlockDV per block, and the DQK
/// slice kBlockDQK streamed per tile. Warp w owns query strips [w·kStripsPerWarp, ...) of 16 rows.
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
  static constexpr int kStrips = kBlockL / 16;
  static constexpr int kStripsPerWarp = kStrips / kWarps;
  static constexpr int kColTiles = kBlockDV / 8;  ///< n8 output tiles per strip
  static constexpr int kKeyTiles = kBlockL / 8;   ///< n8 score tiles per strip
  static constexpr int kScanPerLane = ceil_div(kChunk, 32);
  /// Threads that share one row in the q̂ᵀn pass (a power of two ≤ 32).
  static constexpr int kRowThreads = kThreads >= kBlockL ? kThreads / kBlockL : 1;
  static constexpr int kStages = 3; ///< operand ring depth
  static constexpr int kLdQ = kQWidth + 8;
  static constexpr int kLdC = kBlockDV + 8;  ///< C slice [kBlockDQK][kLdC]
  static constexpr int kLdK = kBlockDQK + 8; ///< k slice [kBlockL][kLdK]
  static constexpr int kLdV = kBlockDV + 8;  ///< v tile [kBlockL][kLdV]
  static constexpr int kSlotBytes =
      max_int(smem_bytes<bf16>(kBlockDQK * kLdC),
              max_int(smem_bytes<bf16>(kBlockL * kLdK), smem_bytes<bf16>(kBlockL * kLdV)));
  static constexpr int kOffQ = 0;                                            // q [BL][kLdQ] bf16
  static constexpr int kOffSlots = kOffQ + smem_bytes<bf16>(kBlockL * kLdQ); // kStages slots
  static constexpr int kOffGate = kOffSlots + kStages * kSlotBytes;          // b, u, pm [L] f32
  static constexpr int kOffRow = kOffGate + smem_bytes<float>(3 * kChunk);   // M, m, β, den [BL]
  static constexpr int kOffN = kOffRow + smem_bytes<float>(4 * kBlockL);     // n [kQWidth] f32
  static constexpr int kSharedBytes = kOffN + smem_bytes<float>(kQWidth);

  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
  static_assert(kChunk % kBlockL == 0, "kBlockL must divide the chunk length");
  static_assert(kBlockL % 16 == 0 && kBlockDV % 16 == 0 && kBlockDQK % 16 == 0,
                "blocks must be whole 16x16 fragments");
  static_assert(kStrips % kWarps == 0, "each warp must own whole 16-row query strips");
  static_assert(sizeof(typename Cell::T) == 2, "the chunkwise kernels take bf16 q, k, v: their tensor-core operands and the exact denominator path (n from the staged k, q^T n from the staged q, sum P from bf16 products) assume it");
  static_assert(is_pow2(kRowThreads) && kRowThreads <= 32, "threads per row: power of two <= 32");
  static_assert(kThreads % kRowThreads == 0, "rows must tile the block");
};

namespace chunkwise_detail {

/// Stores the accumulator pair (v0, v1) at columns (col, col+1) of row |row| of a row-major
/// matrix of T with row stride |ld|, inside the valid |rows| × |cols| region. A bf16 pair is one
/// 4-byte store when both columns are valid and the address is 4-byte aligned.
template <class T>
__device__ __forceinline__ void store_pair(T *base, int64_t ld, int row, int col, int rows,
                                           int cols, float v0, float v1) {
  if (row >= rows || col >= cols)
    return;
  T *dst = base + row * ld + col;
  if constexpr (sizeof(T) == 2) {
    if (col + 1 < cols && reinterpret_cast<uintptr_t>(dst) % 4 == 0) {
      *reinterpret_cast<uint32_t *>(dst) = tc::pack_bf16(v0, v1); // a typed 4-byte store
      return;
    }
  }
  dst[0] = from_float<T>(v0);
  if (col + 1 < cols)
    dst[1] = from_float<T>(v1);
}

} // namespace chunkwise_detail

namespace chunkwise_detail {

/// Writes the C tile held in fp32 accumulators (the layout of kernel A) to a row-major global
/// matrix of T (row stride |ld|): through the shared staging tile |stage| (pitch kLdOut), so that
/// global stores are whole 16-byte rows segments. Contains a barrier: call it uniformly; the
/// caller must not rewrite |stage| before the next barrier.
template <class Config, class T, int kSPW, int kCT>
__device__ __forceinline__ void publish_tile(T *dst, int64_t ld, T *stage,
                                             const float (&acc)[kSPW][kCT][4], int rows, int cols,
                                             bool vector) {
  constexpr int kLd = Config::kLdOut, kTileK = Config::kTileK, kTileV = Config::kTileV;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, qd = lane % 4;
#pragma unroll
  for (int s = 0; s < kSPW; ++s)
#pragma unroll
    for (int nt = 0; nt < kCT; ++nt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        T *p = stage + ((warp * kSPW + s) * 16 + g + 8 * hh) * kLd + nt * 8 + 2 * qd;
        p[0] = from_float<T>(acc[s][nt][2 * hh]);
        p[1] = from_float<T>(acc[s][nt][2 * hh + 1]);
      }
  __syncthreads();
  constexpr int kVec = kVec16<T>, kGroups = kTileV / kVec;
  for (int idx = threadIdx.x; idx < kTileK * kGroups; idx += Config::kThreads) {
    const int r = idx / kGroups, c = (idx % kGroups) * kVec;
    if (r >= rows || c >= cols)
      continue;
    if (vector && c + kVec <= cols) {
      // Typed 16-byte accesses (a memcpy here compiles to byte loads and stores).
      *reinterpret_cast<uint4 *>(dst + r * ld + c) =
          *reinterpret_cast<const uint4 *>(stage + r * kLd + c);
    } else {
      for (int i = 0; i < kVec && c + i < cols; ++i)
        dst[r * ld + c + i] = stage[r * kLd + c + i];
    }
  }
}

} // namespace chunkwise_detail

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
  constexpr int kThreads = Config::kThreads;
  constexpr int kSPW = Config::kStripsPerWarp, kCT = Config::kColTiles;
  constexpr int kLdK = Config::kLdK, kLdV = Config::kLdV;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, qd = lane % 4; // fragment row group and column pair of this lane
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
  auto Ks = [&](int stage) {
    return reinterpret_cast<bf16 *>(smem + Config::kOffStage + stage * Config::kStageBytes);
  };
  auto Vs = [&](int stage) {
    return reinterpret_cast<bf16 *>(smem + Config::kOffStage + stage * Config::kStageBytes +
                                    smem_bytes<bf16>(L * kLdK));
  };
  float *gLf = reinterpret_cast<float *>(smem + Config::kOffGate); // lf, later a_j
  float *gIg = gLf + L;                                              // ĩ
  float *gAbar = gLf + 2 * L;                                        // suffix sums, later ā
  float *ns = reinterpret_cast<float *>(smem + Config::kOffN);
  float *scalars = reinterpret_cast<float *>(smem + Config::kOffScalar); // [0] m, [1] m', [2] d
  T *outStage = reinterpret_cast<T *>(smem + Config::kOffOut);

  // Global views of this (b, head, tile).
  TState *Cst = static_cast<TState *>(p.C) + bh * kDQK * kDV + r0 * kDV + c0;
  float *nst = p.n + bh * kDQK + r0;
  T *wsC = static_cast<T *>(p.ws_C) + bh * (NC + 1) * kDQK * kDV + r0 * kDV + c0;
  float *wsN = p.ws_n + bh * (NC + 1) * kDQK + r0;
  float *wsM = p.ws_m + bh * (NC + 1);
  const T *kBase = static_cast<const T *>(p.k) + b * S * p.k_stride + p.k_offset + hd * kDQK + r0;
  const T *vBase = static_cast<const T *>(p.v) + b * S * p.v_stride + p.v_offset + hd * kDV + c0;
  const TGate *iBase = static_cast<const TGate *>(p.igate) + b * S * p.i_stride + p.i_offset + hd;
  const TGate *fBase = static_cast<const TGate *>(p.fgate) + b * S * p.f_stride + p.f_offset + hd;
  const bool vecK = view_aligned16<T>(kBase, 0, p.k_stride);
  const bool vecV = view_aligned16<T>(vBase, 0, p.v_stride);
  const bool vecWs = view_aligned16<T>(wsC, 0, kDV);

  // Chunk c's k and v tiles into stage |stage| (an empty group past the end keeps the count).
  auto issue = [&](int64_t c, int stage) {
    if (c < NC) {
      const int64_t t0 = c * L;
      const int Lc = static_cast<int>(min(static_cast<int64_t>(L), S - t0));
      tc::async_load_tile<L, kTileK, kThreads>(Ks(stage), kLdK, kBase + t0 * p.k_stride,
                                               p.k_stride, Lc, rows, vecK);
      tc::async_load_tile<L, kTileV, kThreads>(Vs(stage), kLdV, vBase + t0 * p.v_stride,
                                               p.v_stride, Lc, cols, vecV);
    }
    tc::cp_async_commit();
  };
  issue(0, 0);

  // The C tile lives in fp32 accumulators for the whole sequence: strip s of this warp, n8 tile
  // nt, element e is row (warp·kSPW + s)·16 + g + 8·(e/2), column nt·8 + 2·qd + e%2.
  float acc[kSPW][kCT][4];
#pragma unroll
  for (int s = 0; s < kSPW; ++s)
#pragma unroll
    for (int nt = 0; nt < kCT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = (warp * kSPW + s) * 16 + g + 8 * (e / 2), col = nt * 8 + 2 * qd + e % 2;
        acc[s][nt][e] = row < rows && col < cols ? to_float(Cst[row * kDV + col]) : 0.0f;
      }
  // Slot 0 of the workspace is the initial state.
  chunkwise_detail::publish_tile<Config>(wsC, kDV, outStage, acc, rows, cols, vecWs);
  for (int r = tid; r < kTileK; r += kThreads) {
    ns[r] = r < rows ? nst[r] : 0.0f;
    if (vt == 0 && r < rows)
      wsN[r] = ns[r];
  }
  if (tid == 0) {
    scalars[0] = p.m[bh];
    if (tile == 0)
      wsM[0] = scalars[0];
  }

  // Raw gates of the next chunk, loaded one chunk ahead so that their latency is hidden.
  constexpr int kGPT = Config::kGatesPerThread;
  float fRaw[kGPT], iRaw[kGPT];
  bool reset[kGPT];
  auto prefetchGates = [&](int64_t c) {
#pragma unroll
    for (int u = 0; u < kGPT; ++u) {
      const int j = tid + u * kThreads;
      const int64_t row = c * L + j;
      const bool valid = c < NC && j < L && row < S;
      fRaw[u] = valid ? to_float(fBase[row * p.f_stride]) : 0.0f;
      iRaw[u] = valid ? to_float(iBase[row * p.i_stride]) : 0.0f;
      reset[u] = valid && p.resets != nullptr && p.resets[b * S + row] != 0;
    }
  };
  prefetchGates(0);

  for (int64_t c = 0; c < NC; ++c) {
    const int64_t t0 = c * L;
    const int Lc = static_cast<int>(min(static_cast<int64_t>(L), S - t0));
    const int stage = static_cast<int>(c & 1);
    __syncthreads(); // everyone is done with chunk c − 1: its stage and the gate arrays are free
    issue(c + 1, stage ^ 1);

    // ---- Gates of the chunk: lf_j, ĩ_j (padding positions: lf = 0, ĩ = −∞).
#pragma unroll
    for (int u = 0; u < kGPT; ++u) {
      const int j = tid + u * kThreads;
      if (j < L) {
        if (j < Lc) {
          gLf[j] = reset[u] ? log_sigmoid(kResetForgetGate) : mlstm_log_forget(fRaw[u], cap);
          gIg[j] = mlstm_log_input<Cell::kInputGate>(iRaw[u], cap);
        } else {
          gLf[j] = 0.0f;
          gIg[j] = -kInfinity;
        }
        gAbar[j] = gLf[j];
      }
    }
    prefetchGates(c + 1);
    __syncthreads();
    if (warp == 0) {
      // Suffix sums: gAbar[j] = Σ_{s=j..Lc−1} lf_s; g = gAbar[0].
      warp_scan_inplace<Config::kScanPerLane, false, true>(gAbar, Lc);
      const float gSum = gAbar[0];
      const float mPrev = scalars[0];
      // a_j = Σ_{s=j+1..Lc−1} lf_s + ĩ_j, into gLf (lf is no longer needed).
      float aMax = -kInfinity;
      for (int j = lane; j < Lc; j += 32) {
        const float a = (j + 1 < Lc ? gAbar[j + 1] : 0.0f) + gIg[j];
        gLf[j] = a;
        aMax = fmaxf(aMax, a);
      }
      aMax = warp_max(aMax);
      const float mNew = fmaxf(gSum + mPrev, aMax);
      __syncwarp(); // every lane has read gAbar before it is overwritten
      for (int j = lane; j < L; j += 32)
        gAbar[j] = j < Lc ? expf(gLf[j] - mNew) : 0.0f;
      if (lane == 0) {
        scalars[1] = mNew;
        scalars[2] = expf(gSum + mPrev - mNew);
      }
    }
    tc::cp_async_wait<1>(); // chunk c's tiles (the newest group, chunk c + 1, may be in flight)
    __syncthreads();
    const float decay = scalars[2];
    const bf16 *K = Ks(stage), *V = Vs(stage);

    // ---- n' = d·n + Σ_j ā_j k_j in fp32 (first DV tile only; it owns these rows of n).
    if (vt == 0) {
      for (int r = tid; r < kTileK; r += kThreads) {
        float sum = 0.0f;
        for (int j = 0; j < Lc; ++j)
          sum += gAbar[j] * to_float(K[j * kLdK + r]);
        ns[r] = decay * ns[r] + sum;
      }
    }

    // ---- C' = d·C + Kᵀ (ā ⊙ V): A = Kᵀ (k read transposed), B = v scaled by ā_j in registers
    // (rounded to bf16, as the operand it is).
#pragma unroll
    for (int s = 0; s < kSPW; ++s)
#pragma unroll
      for (int nt = 0; nt < kCT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          acc[s][nt][e] *= decay;
#pragma unroll
    for (int kk = 0; kk < L / 16; ++kk) {
      uint32_t a[kSPW][4];
#pragma unroll
      for (int s = 0; s < kSPW; ++s)
        tc::load_a_trans(a[s], K, kLdK, (warp * kSPW + s) * 16, kk * 16);
      // b[0], b[2] hold keys kk·16 + 2qd, +1; b[1], b[3] keys kk·16 + 2qd + 8, +9.
      const float s0 = gAbar[kk * 16 + 2 * qd], s1 = gAbar[kk * 16 + 2 * qd + 1];
      const float s8 = gAbar[kk * 16 + 2 * qd + 8], s9 = gAbar[kk * 16 + 2 * qd + 9];
#pragma unroll
      for (int np = 0; np < kCT / 2; ++np) {
        uint32_t bv[4];
        tc::load_b_rows(bv, V, kLdV, kk * 16, np * 16);
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          float lo, hi;
          tc::unpack_bf16(bv[r], lo, hi);
          bv[r] = r % 2 == 0 ? tc::pack_bf16(lo * s0, hi * s1) : tc::pack_bf16(lo * s8, hi * s9);
        }
#pragma unroll
        for (int s = 0; s < kSPW; ++s) {
          tc::mma_bf16(acc[s][2 * np], a[s], bv[0], bv[1]);
          tc::mma_bf16(acc[s][2 * np + 1], a[s], bv[2], bv[3]);
        }
      }
    }

    // ---- Publish the state after the chunk in workspace slot c + 1.
    chunkwise_detail::publish_tile<Config>(wsC + (c + 1) * kDQK * kDV, kDV, outStage, acc, rows,
                                           cols, vecWs);
    if (vt == 0)
      for (int r = tid; r < rows; r += kThreads)
        wsN[(c + 1) * kDQK + r] = ns[r]; // the thread that updated ns[r]
    if (tid == 0) {
      if (tile == 0)
        wsM[c + 1] = scalars[1];
      scalars[0] = scalars[1]; // read again only after the next iteration's first barrier
    }
  }

  // ---- Final state in place, from the fp32 registers.
#pragma unroll
  for (int s = 0; s < kSPW; ++s)
#pragma unroll
    for (int nt = 0; nt < kCT; ++nt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
        chunkwise_detail::store_pair(Cst, kDV, (warp * kSPW + s) * 16 + g + 8 * hh,
                                     nt * 8 + 2 * qd, rows, cols, acc[s][nt][2 * hh],
                                     acc[s][nt][2 * hh + 1]);
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
  constexpr int BDQK = Config::kBlockDQK, kPieces = Config::kPieces;
  constexpr int kThreads = Config::kThreads, kStages = Config::kStages;
  constexpr int kSPW = Config::kStripsPerWarp, kCT = Config::kColTiles, kKT = Config::kKeyTiles;
  constexpr int kLdQ = Config::kLdQ, kLdC = Config::kLdC, kLdK = Config::kLdK;
  constexpr int kLdV = Config::kLdV;
  constexpr int kRT = Config::kRowThreads; // threads per row in the q̂ᵀn pass
  constexpr int kRowsPerPass = kThreads / kRT;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, qd = lane % 4;
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
  auto slotPtr = [&](int i) {
    return reinterpret_cast<bf16 *>(smem + Config::kOffSlots + (i % kStages) * Config::kSlotBytes);
  };
  float *gB = reinterpret_cast<float *>(smem + Config::kOffGate); // b_j (inclusive cumsum)
  float *gU = gB + L;                                               // u_j = ĩ_j − b_j
  float *gPm = gB + 2 * L;                                          // prefix max of u
  float *rowM = reinterpret_cast<float *>(smem + Config::kOffRow);  // M_t
  float *rowStab = rowM + BL;                                       // m_t = b_t + M_t
  float *rowBeta = rowM + 2 * BL;                                   // β_t
  float *rowDen = rowM + 3 * BL;                                    // β_t q̂_tᵀn
  float *nPrev = reinterpret_cast<float *>(smem + Config::kOffN);

  const int64_t slot = bh * (NC + 1) + c; // state before chunk c
  const float mPrev = p.ws_m[slot];
  const T *wsC = static_cast<const T *>(p.ws_C) + slot * kDQK * kDV + e0;
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
  const bool vecC = view_aligned16<T>(wsC, 0, kDV);

  // ---- The operand stream: tiles 0 .. kPieces−1 are the DQK slices of the chunk-start C; then
  // for each causal key block kb = 0..qb, kPieces slices of k followed by the v tile.
  const int nTiles = kPieces + (qb + 1) * (kPieces + 1);
  auto issue = [&](int i) {
    if (i < nTiles) {
      bf16 *dst = slotPtr(i);
      if (i < kPieces) {
        const int d0 = i * BDQK;
        tc::async_load_tile<BDQK, BDV, kThreads>(dst, kLdC, wsC + d0 * kDV, kDV,
                                                 min(BDQK, kDQK - d0), colsV, vecC);
      } else {
        const int j = i - kPieces, kb = j / (kPieces + 1), r = j % (kPieces + 1);
        const int k0 = kb * BL, rowsK = min(BL, Lc - k0);
        if (r < kPieces)
          tc::async_load_tile<BL, BDQK, kThreads>(dst, kLdK, kBase + k0 * p.k_stride + r * BDQK,
                                                  p.k_stride, rowsK, min(BDQK, kDQK - r * BDQK),
                                                  vecK);
        else
          tc::async_load_tile<BL, BDV, kThreads>(dst, kLdV, vBase + k0 * p.v_stride, p.v_stride,
                                                 rowsK, colsV, vecV);
      }
    }
    tc::cp_async_commit();
  };

  // q rows (full, zero-padded width) join the first tile's group.
  tc::async_load_tile<BL, Config::kQWidth, kThreads>(Qs, kLdQ, qBase, p.q_stride, rowsQ, kDQK,
                                                     vecQ);
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i)
    issue(i);

  // ---- Gates: b_j, u_j and the per-row stabilisers M_t, m_t, β_t; the chunk-start n.
  for (int j = tid; j < nPos; j += kThreads) {
    gB[j] = mlstm_log_forget(to_float(fBase[j * p.f_stride]), cap, p.resets, rowBase + j);
    gU[j] = mlstm_log_input<Cell::kInputGate>(to_float(iBase[j * p.i_stride]), cap);
  }
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
  // (the first tile's barrier below publishes the row stabilisers)

  // Accumulators of this warp's query strips: o (numerator, kCT n8 tiles over BDV), s (scores of
  // one key block), den (fp32 denominators of rows g and g + 8 of each strip).
  float o[kSPW][kCT][4];
  float sc[kSPW][kKT][4];
  uint32_t pf[kSPW][BL / 16][4]; // P of the key block as bf16 A fragments
  float den[kSPW][2];
#pragma unroll
  for (int s = 0; s < kSPW; ++s) {
#pragma unroll
    for (int nt = 0; nt < kCT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        o[s][nt][e] = 0.0f;
    den[s][0] = den[s][1] = 0.0f;
  }
  auto stripRow = [&](int s, int hh) { return (warp * kSPW + s) * 16 + g + 8 * hh; };

  for (int i = 0; i < nTiles; ++i) {
    tc::cp_async_wait<kStages - 2>();
    __syncthreads(); // tile i landed for everyone; everyone is done with tile i − 1's slot
    issue(i + kStages - 1);
    const bf16 *tileBuf = slotPtr(i);

    if (i == 0) {
      // den_t starts with the inter-chunk term β_t q̂_tᵀn (fp32, exact bf16 q).
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
    }

    if (i < kPieces) {
      // ---- Inter-chunk numerator: o += Q[:, d0 : d0 + BDQK] · C[d0 : d0 + BDQK, e0 : e0 + BDV].
      const int d0 = i * BDQK;
#pragma unroll
      for (int kk = 0; kk < BDQK / 16; ++kk) {
        uint32_t a[kSPW][4];
#pragma unroll
        for (int s = 0; s < kSPW; ++s)
          tc::load_a(a[s], Qs, kLdQ, (warp * kSPW + s) * 16, d0 + kk * 16);
#pragma unroll
        for (int np = 0; np < kCT / 2; ++np) {
          uint32_t bc[4];
          tc::load_b_rows(bc, tileBuf, kLdC, kk * 16, np * 16);
#pragma unroll
          for (int s = 0; s < kSPW; ++s) {
            tc::mma_bf16(o[s][2 * np], a[s], bc[0], bc[1]);
            tc::mma_bf16(o[s][2 * np + 1], a[s], bc[2], bc[3]);
          }
        }
      }
      if (i == kPieces - 1) {
        // Row scale q̂ = q/√DQK and β_t of the inter-chunk term.
#pragma unroll
        for (int s = 0; s < kSPW; ++s)
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            const float f = scale * rowBeta[stripRow(s, hh)];
#pragma unroll
            for (int nt = 0; nt < kCT; ++nt) {
              o[s][nt][2 * hh] *= f;
              o[s][nt][2 * hh + 1] *= f;
            }
          }
      }
      continue;
    }

    const int j = i - kPieces, kb = j / (kPieces + 1), r = j % (kPieces + 1);
    const int k0 = kb * BL;
    if (r < kPieces) {
      // ---- Scores of key block kb: s += Q[:, slice r] · K[k0 .. k0 + BL, slice r]ᵀ.
      if (r == 0) {
#pragma unroll
        for (int s = 0; s < kSPW; ++s)
#pragma unroll
          for (int nt = 0; nt < kKT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e)
              sc[s][nt][e] = 0.0f;
      }
      const int d0 = r * BDQK;
#pragma unroll
      for (int kk = 0; kk < BDQK / 16; ++kk) {
        uint32_t a[kSPW][4];
#pragma unroll
        for (int s = 0; s < kSPW; ++s)
          tc::load_a(a[s], Qs, kLdQ, (warp * kSPW + s) * 16, d0 + kk * 16);
#pragma unroll
        for (int np = 0; np < kKT / 2; ++np) {
          uint32_t bk[4];
          tc::load_b_cols(bk, tileBuf, kLdK, kk * 16, np * 16);
#pragma unroll
          for (int s = 0; s < kSPW; ++s) {
            tc::mma_bf16(sc[s][2 * np], a[s], bk[0], bk[1]);
            tc::mma_bf16(sc[s][2 * np + 1], a[s], bk[2], bk[3]);
          }
        }
      }
      if (r == kPieces - 1) {
        // P_tj = S_tj · scale · e^{u_j − M_t} for keys j ≤ t (else 0), den_t += Σ_j P_tj in
        // fp32; P rounded to bf16 as the A operand of P·V.
#pragma unroll
        for (int s = 0; s < kSPW; ++s) {
          float rowSum[2] = {0.0f, 0.0f};
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            const int t = stripRow(s, hh);
            const float M = rowM[t];
            const int qPos = q0 + t;
#pragma unroll
            for (int nt = 0; nt < kKT; ++nt)
#pragma unroll
              for (int e = 0; e < 2; ++e) {
                const int kPos = k0 + nt * 8 + 2 * qd + e;
                float pv = 0.0f;
                if (t < rowsQ && kPos <= qPos)
                  pv = sc[s][nt][2 * hh + e] * scale * expf(gU[kPos] - M);
                sc[s][nt][2 * hh + e] = pv;
                rowSum[hh] += pv;
              }
          }
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            rowSum[hh] += __shfl_xor_sync(0xffffffffu, rowSum[hh], 1);
            rowSum[hh] += __shfl_xor_sync(0xffffffffu, rowSum[hh], 2);
            den[s][hh] += rowSum[hh];
          }
#pragma unroll
          for (int kk = 0; kk < BL / 16; ++kk) {
            pf[s][kk][0] = tc::pack_bf16(sc[s][2 * kk][0], sc[s][2 * kk][1]);
            pf[s][kk][1] = tc::pack_bf16(sc[s][2 * kk][2], sc[s][2 * kk][3]);
            pf[s][kk][2] = tc::pack_bf16(sc[s][2 * kk + 1][0], sc[s][2 * kk + 1][1]);
            pf[s][kk][3] = tc::pack_bf16(sc[s][2 * kk + 1][2], sc[s][2 * kk + 1][3]);
          }
        }
      }
      continue;
    }

    // ---- o += P · V[k0 .. k0 + BL, e0 .. e0 + BDV].
#pragma unroll
    for (int kk = 0; kk < BL / 16; ++kk)
#pragma unroll
      for (int np = 0; np < kCT / 2; ++np) {
        uint32_t bv[4];
        tc::load_b_rows(bv, tileBuf, kLdV, kk * 16, np * 16);
#pragma unroll
        for (int s = 0; s < kSPW; ++s) {
          tc::mma_bf16(o[s][2 * np], pf[s][kk], bv[0], bv[1]);
          tc::mma_bf16(o[s][2 * np + 1], pf[s][kk], bv[2], bv[3]);
        }
      }
  }
  tc::cp_async_wait<0>(); // nothing may be in flight when the block exits

  // ---- Normalise and store h (T) for the valid rows and columns. bf16: staged in a ring slot
  // (free after the barrier) so that the global stores are 16-byte row segments; fp32: straight
  // from the registers.
  T *hBase = static_cast<T *>(p.h) + (rowBase + q0) * (kNH * kDV) + hd * kDV + e0;
  float rowScale[kSPW][2];
#pragma unroll
  for (int s = 0; s < kSPW; ++s)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int t = stripRow(s, hh);
      rowScale[s][hh] = t < rowsQ ? mlstm_output_scale<Cell::kNormalizer>(rowDen[t] + den[s][hh],
                                                                           rowStab[t], eps)
                                  : 0.0f;
    }
  if constexpr (sizeof(T) == 2) {
    static_assert(BL * kLdV * 2 <= Config::kSlotBytes, "the h staging tile must fit a ring slot");
    T *stage = reinterpret_cast<T *>(slotPtr(0));
    __syncthreads(); // every warp is done with the ring
#pragma unroll
    for (int s = 0; s < kSPW; ++s)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
#pragma unroll
        for (int nt = 0; nt < kCT; ++nt) {
          *reinterpret_cast<uint32_t *>(stage + stripRow(s, hh) * kLdV + nt * 8 + 2 * qd) =
              tc::pack_bf16(o[s][nt][2 * hh] * rowScale[s][hh],
                            o[s][nt][2 * hh + 1] * rowScale[s][hh]);
        }
    __syncthreads();
    const bool vecH = view_aligned16<T>(hBase, 0, kNH * kDV);
    constexpr int kGroups = BDV / 8;
    for (int idx = tid; idx < BL * kGroups; idx += kThreads) {
      const int t = idx / kGroups, e = (idx % kGroups) * 8;
      if (t >= rowsQ || e >= colsV)
        continue;
      T *dst = hBase + t * (kNH * kDV) + e;
      if (vecH && e + 8 <= colsV) {
        *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(stage + t * kLdV + e);
      } else {
        for (int u = 0; u < 8 && e + u < colsV; ++u)
          dst[u] = stage[t * kLdV + e + u];
      }
    }
  } else {
#pragma unroll
    for (int s = 0; s < kSPW; ++s)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
#pragma unroll
        for (int nt = 0; nt < kCT; ++nt)
          chunkwise_detail::store_pair(hBase, kNH * kDV, stripRow(s, hh), nt * 8 + 2 * qd, rowsQ,
                                       colsV, o[s][nt][2 * hh] * rowScale[s][hh],
                                       o[s][nt][2 * hh + 1] * rowScale[s][hh]);
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_MLSTM_CHUNKWISE_CUH
