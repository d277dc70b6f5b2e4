//===- mlstm_decode_step.cuh - Fused mLSTM decode step ------------*- CUDA -*-===//
//
// One token per sequence (generation): gates, state update, readout and normalisation in one
// pass over C, which is read once and written once, in place (xlstm-7b.md §4.2; the recurrent
// equations of mlstm_cell.cuh for a single step):
//   m' = max(lf + m, ĩ),  fa = e^{lf + m − m'},  ia = e^{ĩ − m'}
//   C' = fa·C + ia·k vᵀ,  n' = fa·n + ia·k,  h = (q̂ᵀC') · mlstm_output_scale(q̂ᵀn', m', eps)
//
// The entry point does not call grid_dependency_sync(): the kernel does, once its C loads are
// in flight (see below).
//
// Grid (ceil(DV / kBlockDV), B·NH, 1), block (kThreads, 1, 1), no dynamic shared memory
// (static shared memory: q̂, k, n' [DQK] and the column partial sums). Block (x, bh) owns the
// columns [x·kBlockDV, (x+1)·kBlockDV) of C for (b, head) = (bh / NH, bh % NH). Threads sweep C
// in 16-byte vectors (4 fp32 or 8 bf16 columns): kBlockDV / vec threads per row and
// kThreads / (kBlockDV / vec) rows per pass; all passes' loads are issued before the first use.
// Each block recomputes the (scalar) gates and the whole of n' and q̂ᵀn' (DQK values: cheap).
//
// In-place n and m: every block of a (b, head) reads the old n and m, so none may overwrite them
// until all have read. Each block increments counters[bh] after its reads (atomically, after a
// fence); the block that sees count = gridDim.x − 1 is the last and writes n', m' and resets the
// counter to 0. No block waits for another (no co-residency assumption). The runtime allocates
// counters [B·NH] int64 zeroed once; every completed launch leaves them zero again.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_MLSTM_DECODE_STEP_CUH
#define XLC_DEVICE_MLSTM_DECODE_STEP_CUH

#include "xlc/device/common.cuh"
#include "xlc/device/mlstm_cell.cuh"

namespace xlc::device {

/// Parameters of the decode step, in this order. Views as in MlstmChunkwiseParams with row = b
/// (one token per sequence).
struct MlstmDecodeParams {
  const void *q; ///< T, view
  int64_t q_offset;
  int64_t q_stride;
  const void *k; ///< T, view
  int64_t k_offset;
  int64_t k_stride;
  const void *v; ///< T, view
  int64_t v_offset;
  int64_t v_stride;
  const void *igate; ///< TGate, raw
  int64_t i_offset;
  int64_t i_stride;
  const void *fgate; ///< TGate, raw
  int64_t f_offset;
  int64_t f_stride;
  void *C;            ///< [B, NH, DQK, DV] TState, updated in place
  float *n;           ///< [B, NH, DQK], updated in place
  float *m;           ///< [B, NH], updated in place
  int64_t *counters;  ///< [B·NH] zero-initialised workspace (see the file comment)
  void *h;            ///< [B, NH·DV] of T
  int64_t batch;
  double eps;
  double gate_soft_cap; ///< 0 = no cap
};

template <class Cell_, int kBlockDV_, int kThreads_> struct MlstmDecodeConfig {
  using Cell = Cell_;
  using TState = typename Cell::TState;
  static constexpr int kBlockDV = kBlockDV_;
  static constexpr int kThreads = kThreads_;
  static constexpr int kSharedBytes = 0;
  static constexpr int kTilesV = ceil_div(Cell::kDV, kBlockDV); ///< grid.x
  static constexpr int kVec = kVec16<TState>;                   ///< columns per thread
  static constexpr int kColThreads = kBlockDV / kVec;           ///< threads per row of C
  static constexpr int kRowsPerPass = kThreads / kColThreads;
  static constexpr int kPasses = ceil_div(Cell::kDQK, kRowsPerPass);
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "kThreads must be whole warps");
  static_assert(kBlockDV % kVec == 0, "kBlockDV must be whole 16-byte vectors of the state");
  static_assert(kThreads % kColThreads == 0, "rows must tile the block");
};

template <class Config> __device__ void mlstm_decode_step(const MlstmDecodeParams &p) {
  using Cell = typename Config::Cell;
  using T = typename Cell::T;
  using TGate = typename Cell::TGate;
  using TState = typename Cell::TState;
  constexpr int kNH = Cell::kNumHeads, kDQK = Cell::kDQK, kDV = Cell::kDV;
  constexpr int kBlockDV = Config::kBlockDV, kThreads = Config::kThreads, kVec = Config::kVec;
  constexpr int kColThreads = Config::kColThreads, kRowsPerPass = Config::kRowsPerPass;
  constexpr int kPasses = Config::kPasses;

  __shared__ float qs[kDQK];  // q̂ = q/√DQK
  __shared__ float ks[kDQK];
  __shared__ float nNew[kDQK];
  __shared__ float vs[kBlockDV];
  __shared__ float partial[kRowsPerPass][kBlockDV];
  __shared__ float scratch[32];
  __shared__ int isLast;

  const int tid = threadIdx.x;
  const int64_t bh = blockIdx.y;
  const int64_t b = bh / kNH;
  const int hd = static_cast<int>(bh % kNH);
  if (b >= p.batch)
    return;
  const int e0 = blockIdx.x * kBlockDV, cols = min(kBlockDV, kDV - e0);
  const float cap = static_cast<float>(p.gate_soft_cap);
  const float scale = 1.0f / sqrtf(static_cast<float>(kDQK));

  // ---- The C tile first: its loads (the bulk of the bytes) do not depend on the gates, q or
  // k, so they are all in flight while those are loaded and reduced below; then one pass
  // updates, stores and accumulates q̂ᵀC'. They are even issued before this kernel waits for
  // the one before it (the entry point does not wait: the family's waitsInside): under
  // programmatic dependent launch they overlap that kernel's tail. Invariant: the kernel right
  // before a decode step never writes C (it is the gate GEMM; only this kernel writes C).
  TState *Ctile = static_cast<TState *>(p.C) + bh * kDQK * kDV + e0;
  const int rowInPass = tid / kColThreads, e = (tid % kColThreads) * kVec;
  const bool vector = e + kVec <= cols && view_aligned16<TState>(Ctile, 0, kDV);
  float cv[kPasses][kVec];
#pragma unroll
  for (int ps = 0; ps < kPasses; ++ps) {
    const int r = ps * kRowsPerPass + rowInPass;
    if (r < kDQK && e < cols) {
      if (vector) {
        load_floats<kVec, true>(Ctile + r * kDV + e, cv[ps]);
      } else {
#pragma unroll
        for (int i = 0; i < kVec; ++i)
          cv[ps][i] = e + i < cols ? to_float(Ctile[r * kDV + e + i]) : 0.0f;
      }
    }
  }
  // Everything below reads what the previous kernel wrote (q, k, v, the gates) or writes.
  grid_dependency_sync();

  // ---- Gates (every thread computes the same scalars).
  const float lf = mlstm_log_forget(
      to_float(static_cast<const TGate *>(p.fgate)[b * p.f_stride + p.f_offset + hd]), cap);
  const float ig = mlstm_log_input<Cell::kInputGate>(
      to_float(static_cast<const TGate *>(p.igate)[b * p.i_stride + p.i_offset + hd]), cap);
  const float mOld = p.m[bh];
  const float mNew = fmaxf(lf + mOld, ig);
  const float fa = expf(lf + mOld - mNew);
  const float ia = expf(ig - mNew);

  // ---- q̂, k, n' = fa·n + ia·k, and this block's columns of v.
  const T *q = static_cast<const T *>(p.q) + b * p.q_stride + p.q_offset + hd * kDQK;
  const T *k = static_cast<const T *>(p.k) + b * p.k_stride + p.k_offset + hd * kDQK;
  const T *v = static_cast<const T *>(p.v) + b * p.v_stride + p.v_offset + hd * kDV + e0;
  const float *nOld = p.n + bh * kDQK;
  float qn = 0.0f;
  for (int d = tid; d < kDQK; d += kThreads) {
    const float qd = to_float(q[d]) * scale, kd = to_float(k[d]);
    const float nd = fa * nOld[d] + ia * kd;
    qs[d] = qd;
    ks[d] = kd;
    nNew[d] = nd;
    qn += qd * nd;
  }
  for (int c = tid; c < kBlockDV; c += kThreads)
    vs[c] = c < cols ? to_float(v[c]) : 0.0f;
  qn = block_sum<kThreads>(qn, scratch); // also orders the shared writes above

  float num[kVec];
#pragma unroll
  for (int i = 0; i < kVec; ++i)
    num[i] = 0.0f;
#pragma unroll
  for (int ps = 0; ps < kPasses; ++ps) {
    const int r = ps * kRowsPerPass + rowInPass;
    if (r < kDQK && e < cols) {
      const float kr = ia * ks[r], qr = qs[r];
#pragma unroll
      for (int i = 0; i < kVec; ++i) {
        const float cNew = fa * cv[ps][i] + kr * vs[e + i];
        cv[ps][i] = cNew;
        num[i] += qr * cNew;
      }
      if (vector) {
        store_floats<kVec, true>(Ctile + r * kDV + e, cv[ps]);
      } else {
        for (int i = 0; i < kVec && e + i < cols; ++i)
          Ctile[r * kDV + e + i] = from_float<TState>(cv[ps][i]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kVec; ++i)
    partial[rowInPass][e + i] = num[i];
  __syncthreads();

  // ---- h = (q̂ᵀC') · scale(q̂ᵀn', m').
  const float outScale =
      mlstm_output_scale<Cell::kNormalizer>(qn, mNew, static_cast<float>(p.eps));
  T *h = static_cast<T *>(p.h) + b * (kNH * kDV) + hd * kDV + e0;
  for (int col = tid; col < cols; col += kThreads) {
    float sum = 0.0f;
#pragma unroll 4
    for (int r = 0; r < kRowsPerPass; ++r)
      sum += partial[r][col];
    h[col] = from_float<T>(sum * outScale);
  }

  // ---- The last block of this (b, head) to finish writes n' and m' (see the file comment).
  if (tid == 0) {
    __threadfence();
    const unsigned long long prev =
        atomicAdd(reinterpret_cast<unsigned long long *>(p.counters + bh), 1ull);
    isLast = prev == static_cast<unsigned long long>(gridDim.x - 1);
  }
  __syncthreads();
  if (isLast) {
    for (int d = tid; d < kDQK; d += kThreads)
      p.n[bh * kDQK + d] = nNew[d];
    if (tid == 0) {
      p.m[bh] = mNew;
      p.counters[bh] = 0;
    }
  }
}

} // namespace xlc::device

#endif // XLC_DEVICE_MLSTM_DECODE_STEP_CUH
