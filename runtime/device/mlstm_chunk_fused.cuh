//===- mlstm_chunk_fused.cuh - Chunkwise mLSTM forward: the state pass -*- CUDA -*-===//
//
// The chunkwise mLSTM forward (the math of mlstm_chunkwise.cuh, same stabilisers) with the state
// kept on chip for the whole sequence, after mlstm_chunk_scores.cuh has computed every chunk's
// gated scores P̃ and gate sums in parallel. One block per (DV tile, batch·head) walks the
// NC = ceil(S / L) chunks in order and, per chunk,
//
//   1. the stabiliser step m → m' and the row and key factors β_t, ρ_t, m_t, ā_j (scalar),
//   2. outputs h = β_t q̂ᵀC_prev + ρ_t P̃·V over its DV tile, normalised, stored,
//   3. state   C' = d·C + Kᵀ(ā ⊙ V) in fp32 registers, n' = d·n + Σ ā_j k_j in fp32.
//
// Compared with the two-kernel form (kernel A materialises every chunk-start state in a
// workspace, kernel B reads it back) this moves no state through memory: per token and head the
// two-kernel form writes and reads DQK·DV/L state elements (as many as q, k and v together at
// L = 256, twice as many at L = 64), the state pass none; the scores' records add L·2 + 16 bytes
// per token and head (P̃ in bf16 and the gate vectors), read once per DV tile, mostly from L2.
// The price is parallelism: the chunk loop is sequential, so a launch has B·NH·ceil(DV / kTileV)
// blocks (512 for 8 sequences of the 7B, 64 for one). Taking the scores and the gate scans off
// the chain (they were computed here, once per DV tile) removes the L × L × DQK product, the
// scans and a barrier from every chunk step. The DV-tile blocks of one (b, head) are adjacent in
// launch order, so their q, k and record reads mostly hit L2.
//
// ---- Math, per (b, head), chunk of length Lc ≤ L (mlstm_chunk_scores.cuh defines p, b, σ, a) --
//   M_t = max(m, p_t),  β_t = e^{m − M_t},  ρ_t = e^{p_t − M_t},  m_t = b_t + M_t
//   num_t = β_t q̂_tᵀC + ρ_t Σ_j P̃_tj v_j,   den_t = β_t q̂_tᵀn + ρ_t σ_t,
//   h_t = num_t · mlstm_output_scale(den_t, m_t, eps)
//   m' = max(g + m, A),  ā_j = e^{a_j − m'},  d = e^{g + m − m'},
//   C' = d·C + Kᵀ(ā ⊙ V),  n' = d·n + Σ_j ā_j k_j.
// (q̂ = q/√DQK; P̃ already carries the 1/√DQK.) Every thread carries m in a register and takes
// the max-plus step itself from the record's g and A: the same float operations in every
// thread, so every thread holds the same m without a barrier.
// Precision as in mlstm_chunkwise.cuh: C is carried in fp32 registers; the chunk-start C is
// rounded to bf16 only as the operand of q̂ᵀC, ā ⊙ V and P̃ are rounded as tensor-core operands;
// the denominator path (n, q̂ᵀn, σ) is fp32. β_t and ρ_t scale the two products' fp32
// accumulators, so each row's larger factor is exactly 1 (M_t is m or p_t) and nothing is
// rounded twice.
//
// ---- Work split (kWarps = (L/16)·kKeySplit warps) -----------------------------------------------
// Warp w owns query strip qs = w % (L/16) (16 rows) and part p = w / (L/16) of the split:
//   P̃·V over keys [p·L/kKeySplit, (p+1)·L/kKeySplit) (skipped where causally empty),
//   q̂ᵀC over DQK rows [p·DQK'/kKeySplit, ...) (DQK' = DQK rounded up to 16),
// and the parts' partial numerators are summed in a fixed order through shared memory
// (deterministic). The C tile's 16-row strips are dealt to the warps round-robin (strip w, w +
// kWarps, ...); each warp holds its strips' fp32 accumulators for the whole sequence.
//
// ---- Pipeline and barriers, per chunk ----------------------------------------------------------
//   wait(chunk c tiles and record); B1; issue cp.async of chunk c+1 (other stage)
//   L threads: β, ρ, m_t, ā into shared vectors | all: q̂ᵀC_prev, P̃·V (no factors needed)
//   B2; all: q̂ᵀn (den), scale the products, C and n update (registers / other n buffer)
//   B3; parts > 0 write partials; every warp publishes its C strips (bf16) for the next chunk
//   B4; part 0 combines, normalises, stores h (16-byte rows through a staging tile)
//
// ---- In-place state ---------------------------------------------------------------------------
// C tiles are disjoint per block, so each block writes its final C tile in place. n and m are
// read by every DV-tile block of a (b, head): as in the decode step, each block increments
// counters[bh] after reading them and the block that sees ceil(DV/kTileV) − 1 (the last reader)
// writes n', m' at its end and resets the counter (no block waits for another). counters is
// [B·NH] int64, zero before the launch, zero after it.
//
// ---- Launch geometry ---------------------------------------------------------------------------
//   grid (kTilesV, B·NH, 1), block (kThreads, 1, 1), dynamic smem kSharedBytes.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_MLSTM_CHUNK_FUSED_CUH
#define XLC_DEVICE_MLSTM_CHUNK_FUSED_CUH

#include "xlc/device/common.cuh"
#include "xlc/device/mlstm_cell.cuh"
#include "xlc/device/mlstm_chunk_scores.cuh"
#include "xlc/device/mlstm_chunkwise.cuh"
#include "xlc/device/tensor_core.cuh"

namespace xlc::device {

/// Parameters of the state pass, in this order (all members 8 bytes). Views as in
/// MlstmChunkwiseParams; ws_p and ws_g are the scores kernel's records (same chunk length).
struct MlstmChunkFusedParams {
  const void *q; ///< T
  int64_t q_offset;
  int64_t q_stride;
  const void *k; ///< T
  int64_t k_offset;
  int64_t k_stride;
  const void *v; ///< T
  int64_t v_offset;
  int64_t v_stride;
  const void *ws_p;  ///< [B·NH·NC, L, L] bf16: P̃ (mlstm_chunk_scores.cuh)
  const float *ws_g; ///< [B·NH·NC, 4L + 4]: p, b, σ, a, g, A
  void *C;           ///< [B, NH, DQK, DV] TState: initial state in, final state out
  float *n;          ///< [B, NH, DQK]
  float *m;          ///< [B, NH]
  int64_t *counters; ///< [B·NH], zero before and after the launch
  void *h;           ///< [B·S, NH·DV] of T, contiguous
  int64_t batch;
  int64_t seq_len;
  double eps;
};

/// Chunk length L, DV tile kTileV of one block, and the number of warps kKeySplit sharing each
/// 16-row query strip (they split the keys of P̃·V and the DQK rows of q̂ᵀC).
template <class Cell_, int kChunk_, int kTileV_, int kKeySplit_> struct MlstmChunkFusedConfig {
  using Cell = Cell_;
  using Record = MlstmChunkRecord<kChunk_>;
  static constexpr int kChunk = kChunk_;
  static constexpr int kTileV = kTileV_;
  static constexpr int kKeySplit = kKeySplit_;
  static constexpr int kQStrips = kChunk / 16;
  static constexpr int kWarps = kQStrips * kKeySplit;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kQW = ceil_div(Cell::kDQK, 16) * 16; ///< staged q/k width (zero-padded)
  static constexpr int kTilesV = ceil_div(Cell::kDV, kTileV); ///< grid.x
  static constexpr int kKeysPerWarp = kChunk / kKeySplit;
  static constexpr int kDqkPerWarp = kQW / kKeySplit; ///< q̂ᵀC rows of a warp
  static constexpr int kColTiles = kTileV / 8;        ///< n8 output / state tiles
  static constexpr int kCStrips = kQW / 16;           ///< 16-row strips of the C tile
  static constexpr int kCStripsPerWarp = ceil_div(kCStrips, kWarps);
  /// Threads that share one row in the q̂ᵀn pass (a power of two ≤ 32).
  static constexpr int kRowThreads = kThreads >= kChunk ? kThreads / kChunk : 1;
  // Pitches (elements): +8 bf16 moves consecutive rows by 16 bytes (conflict-free ldmatrix).
  static constexpr int kLdQ = kQW + 8;
  static constexpr int kLdV = kTileV + 8;
  static constexpr int kLdP = kChunk + 8;
  static constexpr int kLdC = kTileV + 8;
  // Shared memory (byte offsets, every region 128-byte aligned).
  static constexpr int kQBytes = smem_bytes<bf16>(kChunk * kLdQ);
  static constexpr int kVBytes = smem_bytes<bf16>(kChunk * kLdV);
  static constexpr int kPBytes = smem_bytes<bf16>(kChunk * kLdP);
  static constexpr int kGBytes = smem_bytes<float>(Record::kG);
  // One stage: q, k, the v tile, P̃ and the gate record of one chunk.
  static constexpr int kStageBytes = 2 * kQBytes + kVBytes + kPBytes + kGBytes;
  static constexpr int kOffStageP = 2 * kQBytes + kVBytes; // within a stage
  static constexpr int kOffStageG = kOffStageP + kPBytes;
  // The parts' partial numerators and the h staging tile are written only after the chunk's
  // last read of its stage (barrier B3) and read before the stage is refilled (after the next
  // chunk's B1), so they live in that stage when they fit there.
  static constexpr int kRedBytes = smem_bytes<float>((kKeySplit - 1) * kChunk * kTileV);
  static constexpr int kHBytes = smem_bytes<bf16>(kChunk * kLdV);
  static constexpr int kEpilogueBytes = kRedBytes + kHBytes;
  static constexpr bool kEpilogueInStage = kEpilogueBytes <= kStageBytes;
  static constexpr int kOffStage = 0;                                     // 2 stages
  static constexpr int kOffC = kOffStage + 2 * kStageBytes;               // C_prev [kQW][kLdC] bf16
  static constexpr int kOffEpilogue = kOffC + smem_bytes<bf16>(kQW * kLdC); // when not in stage
  static constexpr int kOffRow =
      kOffEpilogue + (kEpilogueInStage ? 0 : kEpilogueBytes);            // 5 × [L] f32
  static constexpr int kOffN = kOffRow + smem_bytes<float>(5 * kChunk);    // n [2][kQW] f32
  static constexpr int kSharedBytes = kOffN + smem_bytes<float>(2 * kQW) + 128;

  static_assert(kChunk % 16 == 0 && kChunk > 0, "chunk length must be a multiple of 16");
  static_assert(kTileV % 16 == 0, "the DV tile must be whole 16-column fragments");
  static_assert(kKeySplit >= 1 && kKeysPerWarp % 16 == 0,
                "each warp's key range must be whole 16-key steps");
  static_assert(kDqkPerWarp % 16 == 0, "each warp's DQK range must be whole 16-row steps");
  static_assert(kThreads <= 1024, "at most 1024 threads");
  static_assert(kThreads >= kQW, "one thread per DQK row updates n");
  static_assert(is_pow2(kRowThreads) && kRowThreads <= 32, "threads per row: power of two <= 32");
  static_assert(sizeof(typename Cell::T) == 2,
                "the chunkwise kernels take bf16 q, k, v (tensor-core operands and the exact "
                "denominator path assume it)");
};

template <class Config> __device__ void mlstm_chunk_fused(const MlstmChunkFusedParams &p) {
  using Cell = typename Config::Cell;
  using T = typename Cell::T;
  using TState = typename Cell::TState;
  using Record = typename Config::Record;
  constexpr int kNH = Cell::kNumHeads, kDQK = Cell::kDQK, kDV = Cell::kDV;
  constexpr int L = Config::kChunk, kTV = Config::kTileV, kQW = Config::kQW;
  constexpr int kThreads = Config::kThreads, kQStrips = Config::kQStrips;
  constexpr int kKPW = Config::kKeysPerWarp;
  constexpr int kDPW = Config::kDqkPerWarp, kCT = Config::kColTiles;
  constexpr int kCSPW = Config::kCStripsPerWarp, kCStrips = Config::kCStrips;
  constexpr int kLdQ = Config::kLdQ, kLdV = Config::kLdV, kLdP = Config::kLdP;
  constexpr int kLdC = Config::kLdC;
  constexpr int kRT = Config::kRowThreads, kRowsPerPass = kThreads / kRT;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, qd = lane % 4;
  const int vt = blockIdx.x;
  const int64_t bh = blockIdx.y;
  const int64_t b = bh / kNH;
  const int hd = static_cast<int>(bh % kNH);
  if (b >= p.batch || vt >= Config::kTilesV)
    return;
  const int e0 = vt * kTV, cols = min(kTV, kDV - e0);
  const int64_t S = p.seq_len;
  const int64_t NC = (S + L - 1) / L;
  const float eps = static_cast<float>(p.eps);
  const float scale = 1.0f / sqrtf(static_cast<float>(kDQK));
  // This warp's query strip and part of the split.
  const int qs = warp % kQStrips, part = warp / kQStrips;
  const int r0 = qs * 16, kp0 = part * kKPW, dp0 = part * kDPW;

  unsigned char *smem = dynamic_smem();
  auto stage = [&](int st) { return smem + Config::kOffStage + st * Config::kStageBytes; };
  auto Qs = [&](int st) { return reinterpret_cast<bf16 *>(stage(st)); };
  auto Ks = [&](int st) { return reinterpret_cast<bf16 *>(stage(st) + Config::kQBytes); };
  auto Vs = [&](int st) { return reinterpret_cast<bf16 *>(stage(st) + 2 * Config::kQBytes); };
  auto Ps = [&](int st) { return reinterpret_cast<bf16 *>(stage(st) + Config::kOffStageP); };
  auto Gs = [&](int st) { return reinterpret_cast<float *>(stage(st) + Config::kOffStageG); };
  bf16 *Cs = reinterpret_cast<bf16 *>(smem + Config::kOffC);
  // Chunk c's epilogue buffers: in stage c % 2 (free after B3) or in a region of their own.
  auto epilogue = [&](int st) {
    return Config::kEpilogueInStage ? stage(st) : smem + Config::kOffEpilogue;
  };
  float *rowBeta = reinterpret_cast<float *>(smem + Config::kOffRow); // β_t / √DQK
  float *rowRho = rowBeta + L;                                          // ρ_t
  float *rowStab = rowBeta + 2 * L;                                     // m_t
  float *rowDen = rowBeta + 3 * L;                                      // den_t
  float *keyAbar = rowBeta + 4 * L;                                     // ā_j
  float *nBuf = reinterpret_cast<float *>(smem + Config::kOffN);        // [2][kQW]

  // Global views of this (b, head, DV tile).
  TState *Cst = static_cast<TState *>(p.C) + bh * kDQK * kDV + e0;
  const int64_t rowBase = b * S;
  const T *qBase = static_cast<const T *>(p.q) + rowBase * p.q_stride + p.q_offset + hd * kDQK;
  const T *kBase = static_cast<const T *>(p.k) + rowBase * p.k_stride + p.k_offset + hd * kDQK;
  const T *vBase = static_cast<const T *>(p.v) + rowBase * p.v_stride + p.v_offset + hd * kDV + e0;
  const bf16 *pBase = static_cast<const bf16 *>(p.ws_p) + bh * NC * Record::kP;
  const float *gBase = p.ws_g + bh * NC * Record::kG;
  T *hBase = static_cast<T *>(p.h) + rowBase * (kNH * kDV) + hd * kDV + e0;
  const bool vecQ = view_aligned16<T>(qBase, 0, p.q_stride);
  const bool vecK = view_aligned16<T>(kBase, 0, p.k_stride);
  const bool vecV = view_aligned16<T>(vBase, 0, p.v_stride);
  const bool vecH = view_aligned16<T>(hBase, 0, kNH * kDV);

  // Chunk c's q, k (full padded width), v tile, P̃ and record into stage |st|; always one commit
  // group. The record is whole (mlstm_chunk_scores.cuh), so P̃ and the gates need no masking.
  auto issue = [&](int64_t c, int st) {
    if (c < NC) {
      const int64_t t0 = c * L;
      const int Lc = static_cast<int>(min(static_cast<int64_t>(L), S - t0));
      tc::async_load_tile<L, kQW, kThreads>(Qs(st), kLdQ, qBase + t0 * p.q_stride, p.q_stride,
                                            Lc, kDQK, vecQ);
      tc::async_load_tile<L, kQW, kThreads>(Ks(st), kLdQ, kBase + t0 * p.k_stride, p.k_stride,
                                            Lc, kDQK, vecK);
      tc::async_load_tile<L, kTV, kThreads>(Vs(st), kLdV, vBase + t0 * p.v_stride, p.v_stride,
                                            Lc, cols, vecV);
      tc::async_load_tile<L, L, kThreads>(Ps(st), kLdP, pBase + c * Record::kP, L, L, L, true);
      const float *rec = gBase + c * Record::kG;
      for (int i = tid; i < Record::kG / 4; i += kThreads)
        tc::cp_async16(Gs(st) + 4 * i, rec + 4 * i, true);
    }
    tc::cp_async_commit();
  };
  issue(0, 0);

  // The initial state: C into the fp32 accumulators and, rounded, into Cs; n; m.
  // Strip i of this warp is C-tile strip cs = warp + i·kWarps; element e of n8 tile nt is row
  // cs·16 + g + 8·(e/2), column nt·8 + 2·qd + e%2.
  float acc[kCSPW][kCT][4];
#pragma unroll
  for (int i = 0; i < kCSPW; ++i) {
    const int cs = warp + i * Config::kWarps;
#pragma unroll
    for (int nt = 0; nt < kCT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = cs * 16 + g + 8 * (e / 2), col = nt * 8 + 2 * qd + e % 2;
        acc[i][nt][e] =
            cs < kCStrips && row < kDQK && col < cols ? to_float(Cst[row * kDV + col]) : 0.0f;
      }
  }
  auto publishC = [&]() {
#pragma unroll
    for (int i = 0; i < kCSPW; ++i) {
      const int cs = warp + i * Config::kWarps;
      if (cs >= kCStrips)
        continue;
#pragma unroll
      for (int nt = 0; nt < kCT; ++nt)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh)
          *reinterpret_cast<uint32_t *>(Cs + (cs * 16 + g + 8 * hh) * kLdC + nt * 8 + 2 * qd) =
              tc::pack_bf16(acc[i][nt][2 * hh], acc[i][nt][2 * hh + 1]);
    }
  };
  publishC();
  for (int r = tid; r < kQW; r += kThreads)
    nBuf[r] = r < kDQK ? p.n[bh * kDQK + r] : 0.0f;
  // Every thread carries the stabiliser m (the same value in all of them, see above).
  float mPrev = p.m[bh];
  __shared__ int isLast;
  if (tid == 0) {
    // This block has read the initial n and m: count it. The last reader writes n', m' at the end.
    __threadfence();
    const unsigned long long prev =
        atomicAdd(reinterpret_cast<unsigned long long *>(p.counters + bh), 1ull);
    isLast = prev == static_cast<unsigned long long>(gridDim.x - 1);
  }
  int cur = 0; // nBuf[cur] holds the chunk-start n

  for (int64_t c = 0; c < NC; ++c) {
    const int64_t t0 = c * L;
    const int Lc = static_cast<int>(min(static_cast<int64_t>(L), S - t0));
    const int st = static_cast<int>(c & 1);
    tc::cp_async_wait<0>(); // chunk c's tiles (the only group in flight)
    __syncthreads();        // B1: tiles, Cs, n visible; chunk c − 1 is done everywhere
    issue(c + 1, st ^ 1);
    const bf16 *Q = Qs(st), *K = Ks(st), *V = Vs(st), *P = Ps(st);
    const float *G = Gs(st);

    // ---- The stabiliser step (every thread) and the row and key factors (L threads).
    const float mNew = fmaxf(G[Record::kSum] + mPrev, G[Record::kKeyMax]);
    const float decay = expf(G[Record::kSum] + mPrev - mNew);
    if (tid < L) {
      const float pt = G[Record::kRowMax + tid];
      const float M = fmaxf(mPrev, pt);
      rowBeta[tid] = scale * expf(mPrev - M);
      rowRho[tid] = expf(pt - M);
      rowStab[tid] = G[Record::kRowCum + tid] + M;
      keyAbar[tid] = expf(G[Record::kKeyLog + tid] - mNew); // 0 past Lc (a = −∞)
    }

    // ---- Inter-chunk numerator over this warp's DQK rows: o = Q[:, dp0..] · C_prev[dp0.., :].
    float o[kCT][4], pv[kCT][4];
#pragma unroll
    for (int nt = 0; nt < kCT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        o[nt][e] = 0.0f;
        pv[nt][e] = 0.0f;
      }
#pragma unroll
    for (int kk = 0; kk < kDPW / 16; ++kk) {
      uint32_t a[4];
      tc::load_a(a, Q, kLdQ, r0, dp0 + kk * 16);
#pragma unroll
      for (int np = 0; np < kCT / 2; ++np) {
        uint32_t bc[4];
        tc::load_b_rows(bc, Cs, kLdC, dp0 + kk * 16, np * 16);
        tc::mma_bf16(o[2 * np], a, bc[0], bc[1]);
        tc::mma_bf16(o[2 * np + 1], a, bc[2], bc[3]);
      }
    }
    // ---- Intra-chunk numerator over this warp's keys: pv = P̃[:, kp0..] · V[kp0.., :].
#pragma unroll
    for (int kk = 0; kk < kKPW / 16; ++kk) {
      if (kp0 + kk * 16 > r0 + 15 || kp0 + kk * 16 >= Lc)
        continue; // causally empty or past the chunk's end: P̃ is zero there
      uint32_t a[4];
      tc::load_a(a, P, kLdP, r0, kp0 + kk * 16);
#pragma unroll
      for (int np = 0; np < kCT / 2; ++np) {
        uint32_t bv[4];
        tc::load_b_rows(bv, V, kLdV, kp0 + kk * 16, np * 16);
        tc::mma_bf16(pv[2 * np], a, bv[0], bv[1]);
        tc::mma_bf16(pv[2 * np + 1], a, bv[2], bv[3]);
      }
    }
    __syncthreads(); // B2: row and key factors visible

    // ---- den_t = β_t q̂_tᵀn + ρ_t σ_t (fp32, exact bf16 q).
    for (int tr = 0; tr < L; tr += kRowsPerPass) {
      const int t = tr + tid / kRT;
      float sum = 0.0f;
      if (t < L)
        for (int d = tid % kRT; d < kDQK; d += kRT)
          sum += to_float(Q[t * kLdQ + d]) * nBuf[cur * kQW + d];
      sum = group_sum<kRT>(sum);
      if (t < L && tid % kRT == 0)
        rowDen[t] = rowBeta[t] * sum + rowRho[t] * G[Record::kRowSum + t];
    }
    // ---- This part's numerator: β_t q̂ᵀC + ρ_t P̃·V.
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int t = r0 + g + 8 * hh;
      const float fb = rowBeta[t], fr = rowRho[t];
#pragma unroll
      for (int nt = 0; nt < kCT; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          o[nt][2 * hh + e] = fb * o[nt][2 * hh + e] + fr * pv[nt][2 * hh + e];
    }

    // ---- State: C' = d·C + Kᵀ(ā ⊙ V) on this warp's strips; n' = d·n + Σ_j ā_j k_j.
#pragma unroll
    for (int i = 0; i < kCSPW; ++i)
#pragma unroll
      for (int nt = 0; nt < kCT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          acc[i][nt][e] *= decay;
#pragma unroll
    for (int kk = 0; kk < L / 16; ++kk) {
      if (kk * 16 >= Lc)
        break; // keys past the end have ā = 0
      uint32_t a[kCSPW][4];
#pragma unroll
      for (int i = 0; i < kCSPW; ++i) {
        const int cs = warp + i * Config::kWarps;
        if (cs < kCStrips)
          tc::load_a_trans(a[i], K, kLdQ, cs * 16, kk * 16);
      }
      // b[0], b[2] hold keys kk·16 + 2qd, +1; b[1], b[3] keys kk·16 + 2qd + 8, +9.
      const float s0 = keyAbar[kk * 16 + 2 * qd], s1 = keyAbar[kk * 16 + 2 * qd + 1];
      const float s8 = keyAbar[kk * 16 + 2 * qd + 8], s9 = keyAbar[kk * 16 + 2 * qd + 9];
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
        for (int i = 0; i < kCSPW; ++i) {
          if (warp + i * Config::kWarps >= kCStrips)
            continue;
          tc::mma_bf16(acc[i][2 * np], a[i], bv[0], bv[1]);
          tc::mma_bf16(acc[i][2 * np + 1], a[i], bv[2], bv[3]);
        }
      }
    }
    for (int r = tid; r < kQW; r += kThreads) {
      float sum = 0.0f;
      for (int j = 0; j < Lc; ++j)
        sum += keyAbar[j] * to_float(K[j * kLdQ + r]);
      nBuf[(cur ^ 1) * kQW + r] = decay * nBuf[cur * kQW + r] + sum;
    }
    __syncthreads(); // B3: every read of Cs, the factors' inputs, the old n and this stage is done

    float *red = reinterpret_cast<float *>(epilogue(st)); // [kKeySplit−1][L][kTV]
    T *hStage = reinterpret_cast<T *>(epilogue(st) + Config::kRedBytes);
    if (part > 0) {
      float *mine = red + (part - 1) * L * kTV;
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int t = r0 + g + 8 * hh;
#pragma unroll
        for (int nt = 0; nt < kCT; ++nt) {
          mine[t * kTV + nt * 8 + 2 * qd] = o[nt][2 * hh];
          mine[t * kTV + nt * 8 + 2 * qd + 1] = o[nt][2 * hh + 1];
        }
      }
    }
    publishC();
    mPrev = mNew;
    cur ^= 1;
    __syncthreads(); // B4: partials visible

    if (part == 0) {
      // Combine the parts in a fixed order, normalise, stage h as bf16 rows, store this strip.
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int t = r0 + g + 8 * hh;
        for (int pp = 1; pp < Config::kKeySplit; ++pp) {
          const float *theirs = red + (pp - 1) * L * kTV;
#pragma unroll
          for (int nt = 0; nt < kCT; ++nt) {
            o[nt][2 * hh] += theirs[t * kTV + nt * 8 + 2 * qd];
            o[nt][2 * hh + 1] += theirs[t * kTV + nt * 8 + 2 * qd + 1];
          }
        }
        const float rs =
            t < Lc ? mlstm_output_scale<Cell::kNormalizer>(rowDen[t], rowStab[t], eps) : 0.0f;
#pragma unroll
        for (int nt = 0; nt < kCT; ++nt) {
          T *dst = hStage + t * kLdV + nt * 8 + 2 * qd;
          if constexpr (sizeof(T) == 2) {
            *reinterpret_cast<uint32_t *>(dst) =
                tc::pack_bf16(o[nt][2 * hh] * rs, o[nt][2 * hh + 1] * rs);
          } else {
            dst[0] = from_float<T>(o[nt][2 * hh] * rs);
            dst[1] = from_float<T>(o[nt][2 * hh + 1] * rs);
          }
        }
      }
      __syncwarp();
      constexpr int kGroups = kTV / 8;
      for (int idx = lane; idx < 16 * kGroups; idx += 32) {
        const int t = r0 + idx / kGroups, e = (idx % kGroups) * 8;
        if (t >= Lc || e >= cols)
          continue;
        T *dst = hBase + (t0 + t) * (kNH * kDV) + e;
        if (vecH && e + 8 <= cols) {
          *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(hStage + t * kLdV + e);
        } else {
          for (int u = 0; u < 8 && e + u < cols; ++u)
            dst[u] = hStage[t * kLdV + e + u];
        }
      }
    }
  }
  tc::cp_async_wait<0>(); // nothing may be in flight when the block exits

  // ---- Final state in place: this block's C tile from the fp32 registers; n and m by the last
  // block of the (b, head) to have read the initial ones.
#pragma unroll
  for (int i = 0; i < kCSPW; ++i) {
    const int cs = warp + i * Config::kWarps;
    if (cs >= kCStrips)
      continue;
#pragma unroll
    for (int nt = 0; nt < kCT; ++nt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
        chunkwise_detail::store_pair(Cst, kDV, cs * 16 + g + 8 * hh, nt * 8 + 2 * qd, kDQK, cols,
                                     acc[i][nt][2 * hh], acc[i][nt][2 * hh + 1]);
  }
  __syncthreads(); // isLast (and, for NC = 0, the initial reads) visible
  if (isLast) {
    for (int r = tid; r < kDQK; r += kThreads)
      p.n[bh * kDQK + r] = nBuf[cur * kQW + r];
    if (tid == 0) {
      p.m[bh] = mPrev;
      p.counters[bh] = 0;
    }
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_MLSTM_CHUNK_FUSED_CUH
