//===- mlstm_chunk_scores.cuh - Chunkwise mLSTM: per-chunk scores and gates -*- CUDA -*-===//
//
// The part of the chunkwise mLSTM forward that does not depend on the state: for every chunk of
// every (b, head), in parallel, the gated causal scores and the gate sums. The fused state pass
// (mlstm_chunk_fused.cuh) then walks the chunks in order with nothing left on its sequential
// chain but the products with the state, the state update and the stabiliser's max-plus step.
// Two launches on one stream: this kernel, then the state pass, which reads what this one wrote.
//
// ---- Math, per (b, head), chunk c of length Lc ≤ L (mlstm_chunkwise.cuh has the derivation) -----
// Chunk-local, independent of the incoming state (C, n, m):
//   b_t = Σ_{s≤t} lf_s,  u_j = ĩ_j − b_j,  p_t = max_{j≤t} u_j          (prefix sum, prefix max)
//   g = b_{Lc−1},  a_j = Σ_{s=j+1..Lc−1} lf_s + ĩ_j,  A = max_j a_j     (suffix sum)
//   P̃_tj = (q_t·k_j)/√DQK · e^{u_j − p_t}  (j ≤ t < Lc; 0 elsewhere),  σ_t = Σ_j P̃_tj
// With the incoming stabiliser m the chunkwise form's quantities follow by scalar steps only:
//   M_t = max(m, p_t),  β_t = e^{m − M_t},  ρ_t = e^{p_t − M_t},  m_t = b_t + M_t,
//   P_tj = ρ_t·P̃_tj  (the gated score of mlstm_chunkwise.cuh: e^{u_j − p_t}·e^{p_t − M_t}),
//   m' = max(g + m, A),  ā_j = e^{a_j − m'},  d = e^{g + m − m'}.
// e^{u_j − p_t} ≤ 1 for j ≤ t, so P̃ has the range of the scores themselves whatever m is.
//
// ---- Precision --------------------------------------------------------------------------------
// q·k on the tensor cores (bf16 in, fp32 accumulate), everything else fp32. P̃ is stored in bf16
// (it is the state pass's tensor-core operand, rounded exactly once, as P is in the other
// forms); σ_t is summed in fp32 from the unrounded P̃, so the denominator's path stays fp32.
//
// ---- Record (one per (b, head, chunk); index r = (b·NH + head)·NC + c, NC = ceil(S / L)) -------
//   ws_p [r][L][L] of bf16: P̃, row t, column j (zeros outside j ≤ t < Lc)
//   ws_g [r][4L + 4] of fp32: p_t | b_t | σ_t | a_j (each L; rows and keys ≥ Lc: 0, 0, 0, −∞),
//        then g, A, 0, 0
// Every record is written whole, so the state pass may read full tiles without masking.
//
// ---- Launch geometry ---------------------------------------------------------------------------
//   grid (NC, B·NH, 1), block (32·L/16, 1, 1), dynamic smem kSharedBytes. Warp w owns query rows
//   [16w, 16w+16) of the scores over all keys; warps 0 and 1 (warp 0 alone when L = 16) also run
//   the prefix and suffix scans of the gates.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_MLSTM_CHUNK_SCORES_CUH
#define XLC_DEVICE_MLSTM_CHUNK_SCORES_CUH

#include "xlc/device/common.cuh"
#include "xlc/device/mlstm_cell.cuh"
#include "xlc/device/tensor_core.cuh"

namespace xlc::device {

/// Parameters of the scores kernel, in this order (all members 8 bytes). Views as in
/// MlstmChunkwiseParams.
struct MlstmChunkScoresParams {
  const void *q; ///< T
  int64_t q_offset;
  int64_t q_stride;
  const void *k; ///< T
  int64_t k_offset;
  int64_t k_stride;
  const void *igate; ///< TGate, raw input-gate pre-activations
  int64_t i_offset;
  int64_t i_stride;
  const void *fgate; ///< TGate, raw forget-gate pre-activations
  int64_t f_offset;
  int64_t f_stride;
  void *ws_p;  ///< [B·NH·NC, L, L] bf16: P̃
  float *ws_g; ///< [B·NH·NC, 4L + 4]: p, b, σ, a, then g, A
  int64_t batch;
  int64_t seq_len;
  double gate_soft_cap; ///< 0 = no cap
};

/// The layout of one chunk's record (shared by the scores kernel and the state pass).
template <int kChunk> struct MlstmChunkRecord {
  static constexpr int kP = kChunk * kChunk;  ///< bf16 elements of P̃
  static constexpr int kG = 4 * kChunk + 4;   ///< fp32 elements of the gate vectors
  static constexpr int kRowMax = 0;           ///< p_t
  static constexpr int kRowCum = kChunk;      ///< b_t
  static constexpr int kRowSum = 2 * kChunk;  ///< σ_t
  static constexpr int kKeyLog = 3 * kChunk;  ///< a_j
  static constexpr int kSum = 4 * kChunk;     ///< g
  static constexpr int kKeyMax = 4 * kChunk + 1; ///< A
  static_assert(kG * 4 % 16 == 0 && kP * 2 % 16 == 0, "records are whole 16-byte vectors");
};

template <class Cell_, int kChunk_> struct MlstmChunkScoresConfig {
  using Cell = Cell_;
  using Record = MlstmChunkRecord<kChunk_>;
  static constexpr int kChunk = kChunk_;
  static constexpr int kWarps = kChunk / 16;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kQW = ceil_div(Cell::kDQK, 16) * 16; ///< staged q/k width (zero-padded)
  static constexpr int kLdQ = kQW + 8;  ///< +8 bf16: conflict-free ldmatrix
  static constexpr int kLdP = kChunk + 8;
  static constexpr int kScanPerLane = ceil_div(kChunk, 32);
  static constexpr int kOffQ = 0;
  static constexpr int kOffK = kOffQ + smem_bytes<bf16>(kChunk * kLdQ);
  static constexpr int kOffP = kOffK + smem_bytes<bf16>(kChunk * kLdQ); // P̃ staging, bf16
  static constexpr int kOffGate = kOffP + smem_bytes<bf16>(kChunk * kLdP); // 6 × [L] f32
  static constexpr int kSharedBytes = kOffGate + smem_bytes<float>(6 * kChunk) + 128;

  static_assert(kChunk % 16 == 0 && kChunk > 0, "chunk length must be a multiple of 16");
  static_assert(kThreads <= 1024, "at most 1024 threads");
  static_assert(sizeof(typename Cell::T) == 2, "the chunkwise kernels take bf16 q and k");
};

template <class Config> __device__ void mlstm_chunk_scores(const MlstmChunkScoresParams &p) {
  using Cell = typename Config::Cell;
  using T = typename Cell::T;
  using TGate = typename Cell::TGate;
  using Record = typename Config::Record;
  constexpr int kNH = Cell::kNumHeads, kDQK = Cell::kDQK;
  constexpr int L = Config::kChunk, kQW = Config::kQW, kLdQ = Config::kLdQ, kLdP = Config::kLdP;
  constexpr int kThreads = Config::kThreads, kSPL = Config::kScanPerLane;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, qd = lane % 4;
  const int64_t c = blockIdx.x;
  const int64_t bh = blockIdx.y;
  const int64_t b = bh / kNH;
  const int hd = static_cast<int>(bh % kNH);
  const int64_t S = p.seq_len;
  const int64_t NC = (S + L - 1) / L;
  if (b >= p.batch || c >= NC)
    return;
  const int64_t t0 = c * L;
  const int Lc = static_cast<int>(min(static_cast<int64_t>(L), S - t0));
  const float cap = static_cast<float>(p.gate_soft_cap);
  const float scale = 1.0f / sqrtf(static_cast<float>(kDQK));

  unsigned char *smem = dynamic_smem();
  bf16 *Qs = reinterpret_cast<bf16 *>(smem + Config::kOffQ);
  bf16 *Ks = reinterpret_cast<bf16 *>(smem + Config::kOffK);
  bf16 *Ps = reinterpret_cast<bf16 *>(smem + Config::kOffP);
  float *gCum = reinterpret_cast<float *>(smem + Config::kOffGate); // b_t
  float *gU = gCum + L;                                              // u_j
  float *gMax = gCum + 2 * L;                                        // p_t
  float *gSfx = gCum + 3 * L;                                        // suffix sums of lf
  float *gA = gCum + 4 * L;                                          // ĩ_j, then a_j
  float *gSum = gCum + 5 * L;                                        // σ_t

  const int64_t row0 = b * S + t0;
  const T *qBase = static_cast<const T *>(p.q) + row0 * p.q_stride + p.q_offset + hd * kDQK;
  const T *kBase = static_cast<const T *>(p.k) + row0 * p.k_stride + p.k_offset + hd * kDQK;
  tc::async_load_tile<L, kQW, kThreads>(Qs, kLdQ, qBase, p.q_stride, Lc, kDQK,
                                        view_aligned16<T>(qBase, 0, p.q_stride));
  tc::async_load_tile<L, kQW, kThreads>(Ks, kLdQ, kBase, p.k_stride, Lc, kDQK,
                                        view_aligned16<T>(kBase, 0, p.k_stride));
  tc::cp_async_commit();

  // ---- Gate scans while the tiles arrive: warp 0 the prefix side, warp 1 the suffix side.
  const TGate *iBase = static_cast<const TGate *>(p.igate) + row0 * p.i_stride + p.i_offset + hd;
  const TGate *fBase = static_cast<const TGate *>(p.fgate) + row0 * p.f_stride + p.f_offset + hd;
  constexpr int kSuffixWarp = Config::kWarps > 1 ? 1 : 0;
  float *record = p.ws_g + (bh * NC + c) * Record::kG;
  if (warp == 0) {
    for (int j = lane; j < L; j += 32) {
      gCum[j] = j < Lc ? mlstm_log_forget(to_float(fBase[j * p.f_stride]), cap) : 0.0f;
      gU[j] = j < Lc ? mlstm_log_input<Cell::kInputGate>(to_float(iBase[j * p.i_stride]), cap)
                     : -kInfinity;
    }
    __syncwarp();
    warp_scan_inplace<kSPL, false, false>(gCum, Lc); // b_t
    for (int j = lane; j < L; j += 32) {
      gU[j] -= gCum[j];
      gMax[j] = gU[j];
    }
    __syncwarp();
    warp_scan_inplace<kSPL, true, false>(gMax, Lc); // p_t
  }
  if (warp == kSuffixWarp) {
    for (int j = lane; j < L; j += 32) {
      gSfx[j] = j < Lc ? mlstm_log_forget(to_float(fBase[j * p.f_stride]), cap) : 0.0f;
      gA[j] = j < Lc ? mlstm_log_input<Cell::kInputGate>(to_float(iBase[j * p.i_stride]), cap)
                     : -kInfinity;
    }
    __syncwarp();
    warp_scan_inplace<kSPL, false, true>(gSfx, Lc); // Σ_{s=j..Lc−1} lf_s
    float aMax = -kInfinity;
    for (int j = lane; j < L; j += 32) {
      const float a = j < Lc ? (j + 1 < Lc ? gSfx[j + 1] : 0.0f) + gA[j] : -kInfinity;
      aMax = fmaxf(aMax, a);
      record[Record::kKeyLog + j] = a;
    }
    aMax = warp_max(aMax);
    if (lane == 0) {
      record[Record::kSum] = gSfx[0];
      record[Record::kKeyMax] = aMax;
      record[Record::kKeyMax + 1] = 0.0f;
      record[Record::kKeyMax + 2] = 0.0f;
    }
  }
  tc::cp_async_wait<0>();
  __syncthreads(); // tiles, b, u, p visible

  // ---- S = Q·Kᵀ for this warp's 16 query rows, all keys (causally empty 16-key blocks skipped).
  const int r0 = warp * 16;
  float sc[L / 8][4];
#pragma unroll
  for (int nt = 0; nt < L / 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      sc[nt][e] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < kQW / 16; ++kk) {
    uint32_t a[4];
    tc::load_a(a, Qs, kLdQ, r0, kk * 16);
#pragma unroll
    for (int np = 0; np < L / 16; ++np) {
      if (np * 16 > r0 + 15)
        continue;
      uint32_t bk[4];
      tc::load_b_cols(bk, Ks, kLdQ, kk * 16, np * 16);
      tc::mma_bf16(sc[2 * np], a, bk[0], bk[1]);
      tc::mma_bf16(sc[2 * np + 1], a, bk[2], bk[3]);
    }
  }
  // ---- Gate, mask, row sums in fp32, stage P̃ as bf16.
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const int t = r0 + g + 8 * hh;
    const float pt = t < Lc ? gMax[t] : 0.0f;
    float rowSum = 0.0f;
#pragma unroll
    for (int nt = 0; nt < L / 8; ++nt) {
      float pv[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = nt * 8 + 2 * qd + e;
        pv[e] = t < Lc && key <= t ? sc[nt][2 * hh + e] * scale * expf(gU[key] - pt) : 0.0f;
        rowSum += pv[e];
      }
      *reinterpret_cast<uint32_t *>(Ps + t * kLdP + nt * 8 + 2 * qd) = tc::pack_bf16(pv[0], pv[1]);
    }
    rowSum += __shfl_xor_sync(0xffffffffu, rowSum, 1);
    rowSum += __shfl_xor_sync(0xffffffffu, rowSum, 2);
    if (qd == 0)
      gSum[t] = rowSum;
  }
  __syncthreads(); // the staged P̃ and σ complete

  // ---- The record: P̃ in 16-byte rows, then the row vectors.
  bf16 *pOut = static_cast<bf16 *>(p.ws_p) + (bh * NC + c) * Record::kP;
  constexpr int kGroups = L / 8;
  for (int idx = tid; idx < L * kGroups; idx += kThreads) {
    const int t = idx / kGroups, e = (idx % kGroups) * 8;
    *reinterpret_cast<uint4 *>(pOut + t * L + e) = *reinterpret_cast<const uint4 *>(Ps + t * kLdP + e);
  }
  for (int t = tid; t < L; t += kThreads) {
    const bool valid = t < Lc;
    record[Record::kRowMax + t] = valid ? gMax[t] : 0.0f;
    record[Record::kRowCum + t] = valid ? gCum[t] : 0.0f;
    record[Record::kRowSum + t] = valid ? gSum[t] : 0.0f;
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_MLSTM_CHUNK_SCORES_CUH
