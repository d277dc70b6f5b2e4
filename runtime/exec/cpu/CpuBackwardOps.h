//===- CpuBackwardOps.h - fp32 gradients of the CPU backend's ops -*- C++ -*-===//
//
// The backward counterparts of CpuOps.h for training: same conventions (raw fp32 pointers, views,
// ThreadPool, results independent of the number of threads), the math of the float64 reference's
// gradients (runtime/reference/BlockOps.h, MlstmCellBackward.h) in fp32 storage with float64
// accumulation of every sum. Weight gradients are ACCUMULATED (+=) into their buffers, as the
// artifact's accumulate duty says: a training step zeroes them once and every use adds.
//
// Determinism: a weight gradient is a sum over rows. Rows are cut into fixed blocks of
// kRowBlock rows (independent of the thread count); each block's partial sum is computed by one
// task in row order, and the partials are added in block order by one task per column range. So
// the same inputs give the same bits on any machine and any number of threads.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CPU_CPUBACKWARDOPS_H
#define XLC_RUNTIME_EXEC_CPU_CPUBACKWARDOPS_H

#include "runtime/exec/cpu/CpuOps.h"

#include <cstdint>

namespace xlc::exec::cpu {

inline constexpr std::int64_t kRowBlock = 64;

/// y = x·r·w, r = (mean(x²) + eps)^{−1/2} (w null: no weight). With g = dy ⊙ w:
///   dx = r·g − r³·x·⟨g, x⟩/D   (written, [rows, dim] contiguous)
///   dw += Σ_rows dy ⊙ x·r      (only when w is given)
void rmsNormBackward(ThreadPool &pool, View x, const float *weight, View dy, float *dx,
                     float *dw, std::int64_t rows, std::int64_t dim, double eps);

/// out = LN_head(h) ⊙ w ⊙ σ(o) (CpuOps normGate). With y = LN(h) ⊙ w, x̂ the normalised h:
///   do = dout·y·σ(o)σ(−o),  g = dout·σ(o)·w,
///   dh = r·(g − mean_head(g) − x̂·mean_head(g·x̂)),  dw += Σ_rows dout·σ(o)·x̂.
void normGateBackward(ThreadPool &pool, View h, const float *weight, View o, View dout, float *dh,
                      float *dO, float *dw, std::int64_t rows, std::int64_t numHeads,
                      std::int64_t headDim, double eps);

/// out[c] += Σ_rows x[r, c] (a bias's gradient), in the fixed row blocks of the file comment.
void columnSum(ThreadPool &pool, View x, float *out, std::int64_t rows, std::int64_t cols);

/// out = SiLU(g)·u: dg = dout·u·σ(g)(1 + g·σ(−g)), du = dout·SiLU(g).
void swigluBackward(ThreadPool &pool, View gate, View up, View dout, float *dgate, float *dup,
                    std::int64_t rows, std::int64_t dim);

/// table [vocab, dim]: dtable[tokens[r], :] += dy[r, :] over r in row order (each task owns a
/// column range and walks all rows). Returns 0, or 1 + the first row whose token is outside
/// [0, vocab) (that row adds nothing), as the forward's error flag.
std::int64_t embeddingBackward(ThreadPool &pool, const std::int32_t *tokens, View dy,
                               float *dtable, std::int64_t vocab, std::int64_t dim,
                               std::int64_t rows);

/// The loss head on pre-cap logits z [rows, vocab] (in place): per row with target ≥ 0,
/// l = cap·tanh(z/cap) (cap 0: l = z), loss_r = logΣ e^{l} − l[target], and z becomes
/// gradScale·(softmax(l) − onehot)·(1 − tanh²(z/cap)); a row with a negative target becomes 0.
/// Returns Σ_r loss_r summed in row order (gradScale is typically 1/(counted rows)); with
/// |lossRows| each row's loss_r (0 where not counted) is stored there, as the kernel's loss_rows.
double crossEntropyBackward(ThreadPool &pool, float *z, const std::int32_t *targets,
                            std::int64_t rows, std::int64_t vocab, double cap, double gradScale,
                            float *lossRows = nullptr);

/// The mLSTM cell's exact backward (MlstmCellBackward.h) in the four stages of the GPU's
/// kernels (runtime/device/mlstm_chunk_backward.cuh has the math), each a function here with the
/// same workspaces, so the CPU backend executes the same plan: readout (R), state gradient (S),
/// per-chunk gradients (P), stabiliser and gates (G). |forward| gives the cell's inputs (q, k, v
/// and the RAW gate views: the soft-cap is part of the cell, its derivative applied to di, df),
/// sizes, the chunk length and the forward's chunk-start states wsC, wsN, wsM ([B, NH, NC+1, ...],
/// slot 0 the initial state); its C, n, m and h are not read. h is the forward's output and dh
/// its gradient ([rows, NH·DV] views). Written: dq, dk [rows, NH·dqk], dv [rows, NH·dv], di, df
/// [rows, NH] (strided destinations) and the workspaces (sizes as the kernels'): wsTok
/// [B·NH, S, 4], wsDC [B·NH, NC, dqk, dv], wsDN [B·NH, NC, dqk], wsGate [B·NH, S, 4], wsChunk
/// [B·NH, NC, 8]. dCf, dnf, dmf (optional, null = 0) are the final state's gradient; dC0, dn0,
/// dm0 (optional) receive the initial state's (these four are CPU-only: the kernels start from a
/// zero final-state gradient and leave the initial state's unwritten, as training needs). float64 arithmetic, fp32 storage; parallel over
/// (b, head) pairs and chunks, each result computed by one task in a fixed order.
struct MlstmChunkBackward {
  MlstmChunkwise forward;
  View h, dh;
  MutView dq, dk, dv, di, df;
  float *wsTok = nullptr, *wsDC = nullptr, *wsDN = nullptr, *wsGate = nullptr, *wsChunk = nullptr;
  const float *dCf = nullptr, *dnf = nullptr, *dmf = nullptr;
  float *dC0 = nullptr, *dn0 = nullptr, *dm0 = nullptr;
};
void mlstmBackwardReadout(ThreadPool &pool, const MlstmChunkBackward &op);
void mlstmBackwardStates(ThreadPool &pool, const MlstmChunkBackward &op);
void mlstmBackwardChunks(ThreadPool &pool, const MlstmChunkBackward &op);
void mlstmBackwardGates(ThreadPool &pool, const MlstmChunkBackward &op);

/// The four stages in order with workspaces of their own: the cell's backward in one call, for
/// callers that hold no plan (tests, the reference comparisons). Gradient outputs contiguous.
struct MlstmCellBackward {
  MlstmChunkwise forward; ///< the cell, chunk length and chunk-start states of the forward
  View h, dh;
  float *dq = nullptr, *dk = nullptr, *dv = nullptr, *di = nullptr, *df = nullptr;
  float *dC0 = nullptr, *dn0 = nullptr, *dm0 = nullptr;
  const float *dCf = nullptr, *dnf = nullptr, *dmf = nullptr;
};
void mlstmCellBackward(ThreadPool &pool, const MlstmCellBackward &op);

} // namespace xlc::exec::cpu

#endif // XLC_RUNTIME_EXEC_CPU_CPUBACKWARDOPS_H
