//===- AssignTileConfigs.cpp - Default tile configurations ----------------===//
//
// Implements xlc-assign-tile-configs: heuristic defaults per kernel family, derived from the
// op's shapes. Every configuration satisfies the family's constraints (see docs/kernels.md):
// tiles divide the dimensions they tile, thread counts are warp multiples. GEMMs carry no tile:
// cuBLASLt's heuristic picks the algorithm at run time (the tuner will record choices later).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "runtime/kernels/Tuning.h"
#include "runtime/kernels/families/MlstmChunkwise.h"

#include "mlir/IR/Builders.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#define DEBUG_TYPE "xlc-assign-tile-configs"

namespace xlc {
#define GEN_PASS_DEF_ASSIGNTILECONFIGS
#include "passes/Passes.h.inc"
} // namespace xlc

using namespace mlir;
using namespace xlc;

namespace {

/// The largest power of two ≤ |cap| that divides |dim| (≥ 1).
int64_t tileFor(int64_t dim, int64_t cap) {
  int64_t tile = 1;
  while (tile * 2 <= cap && dim % (tile * 2) == 0)
    tile *= 2;
  return tile;
}

/// Threads for a row-wise kernel over |features| elements: one 16-byte vector (8 bf16) per
/// thread and pass, a warp multiple between 32 and 256.
int64_t rowThreads(int64_t features) {
  int64_t vectors = (features + 7) / 8;
  int64_t threads = ((vectors + 31) / 32) * 32;
  return std::clamp<int64_t>(threads, 32, 256);
}

/// The key split of the fused chunkwise kernel at (chunk, DQK, DV tile), or nothing when the
/// fused form does not fit (its family's constraint: runtime/kernels/families/MlstmCommon.cpp;
/// shared memory of the state pass or the scores kernel beyond sm_90's 227 KiB per block). Two
/// warps per 16-row query strip when both the chunk's keys and the padded DQK halve into whole
/// 16-wide steps, else one (four measured 21 % slower at the 7B head on the H100:
/// docs/benchmarks/chunkwise-fused-h100-2026-12-06.md).
std::optional<int64_t> fusedKeySplit(int64_t chunk, int64_t dqk, int64_t tileV) {
  namespace mlstm = xlc::kernels::mlstm;
  if (chunk % 16 != 0 || tileV % 16 != 0)
    return std::nullopt;
  const int64_t qw = (dqk + 15) / 16 * 16;
  const int64_t split = (chunk / 2) % 16 == 0 && (qw / 2) % 16 == 0 ? 2 : 1;
  if (!mlstm::fusedConstraint(chunk, dqk, split).empty() ||
      mlstm::fusedSharedBytes(chunk, dqk, tileV, split) > xlc::kernels::kMaxSharedBytes ||
      mlstm::scoresSharedBytes(chunk, dqk) > xlc::kernels::kMaxSharedBytes)
    return std::nullopt;
  return split;
}

/// SMs of the devices sm_90a artifacts run on (H100 SXM and H200: 132).
constexpr int64_t kTargetSMs = 132;

int64_t lastDim(Value v) { return cast<RankedTensorType>(v.getType()).getShape().back(); }

struct AssignTileConfigsPass : public xlc::impl::AssignTileConfigsBase<AssignTileConfigsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    int64_t chunk = 64;
    if (auto attr = module->getAttrOfType<IntegerAttr>("xlstm.chunk_size"))
      chunk = attr.getInt();

    module.walk([&](Operation *op) {
      if (op->hasAttr("tile"))
        return;
      xk::TileAttr tile;
      if (auto cell = dyn_cast<xk::MLSTMChunkwiseOp>(op)) {
        auto state = cast<xlstm::StateType>(cell.getInitialState().getType());
        int64_t dqk = state.getQkHeadDim(), dv = state.getVHeadDim();
        // Kernel B's DV tile (block_dv) is wider than kernel A's C tile (state_dv): B recomputes
        // Q·Kᵀ once per DV tile, while A's register accumulators grow with its tile; each choice
        // was the faster one at the 7B head on the H100 (docs/benchmarks/chunkwise-h100-2026-12-06.md).
        std::vector<std::pair<llvm::StringRef, int64_t>> entries = {
            {"chunk", chunk},
            {"block_q", std::min<int64_t>(64, chunk)},
            {"block_kv", std::min<int64_t>(64, chunk)},
            {"block_dqk", tileFor(dqk, 64)},
            {"block_dv", tileFor(dv, 128)},
            {"state_dv", tileFor(dv, 64)},
            {"warps", 4}};
        // A forward the training backward reads keeps the two-kernel form: its chunk-start
        // states (ws_C, ws_n, ws_m) are the backward's input. So does one with document resets
        // (only the two-kernel form reads them).
        const bool saved = cell.getResets() ||
                           llvm::any_of(cell.getH().getUsers(), [](Operation *user) {
                             return isa<xk::MLSTMCellGradOp>(user);
                           });
        // The fused form (one kernel, state on chip: mlstm_chunk_fused.cuh) wherever its
        // shared memory fits: two warps per query strip when the chunk and DQK split evenly.
        if (std::optional<int64_t> split = saved ? std::nullopt
                                                 : fusedKeySplit(chunk, dqk, tileFor(dv, 64))) {
          entries.push_back({"fused", 1});
          entries.push_back({"key_split", *split});
          // Few sequences leave SMs idle: B·NH·ceil(DV / tile) blocks (the 7B: 64 at B = 1 for
          // 132 SMs). Where that is at most half the SMs, a DV tile half as wide doubles the
          // blocks: at the 7B head on the H100 (B1 S2048) 0.280 ms against 0.334, while at
          // B8 S8192 it is 1.66x slower (docs/benchmarks/chunkwise-fused-h100-2026-12-06.md).
          // The launch carries it as a batch variant for B ≤ small_batch_max.
          const int64_t tile = tileFor(dv, 64), narrow = tile / 2;
          const int64_t blocksPerSequence = state.getNumHeads() * ((dv + tile - 1) / tile);
          const int64_t smallMax = kTargetSMs / 2 / blocksPerSequence;
          if (narrow >= 16 && smallMax >= 1)
            if (std::optional<int64_t> narrowSplit = fusedKeySplit(chunk, dqk, narrow)) {
              entries.push_back({"small_batch_tile_v", narrow});
              entries.push_back({"small_batch_key_split", *narrowSplit});
              entries.push_back({"small_batch_max", smallMax});
            }
        }
        tile = xk::TileAttr::get(ctx, entries);
      } else if (auto grad = dyn_cast<xk::MLSTMCellGradOp>(op)) {
        // The backward's chunk is the forward's; its DQK/DV slices as wide as shared memory
        // allows (mlstm_chunk_backward.cuh: two L×L matrices and six slices per block).
        auto forward = grad.getH().getDefiningOp<xk::MLSTMChunkwiseOp>();
        const int64_t l = forward.getTile() ? forward.getTile()->get("chunk").value_or(chunk) : chunk;
        auto state = cast<xlstm::StateType>(forward.getInitialState().getType());
        const int64_t widest = std::max(state.getQkHeadDim(), state.getVHeadDim());
        int64_t slice = std::min<int64_t>(64, (widest + 15) / 16 * 16);
        while (slice > 16) { // whole n16 tiles: 64, 48, 32, 16
          const xlc::kernels::Config c = {{"chunk", l}, {"tile", slice}};
          if (xlc::kernels::mlstm::backwardShared(c).chunk <= xlc::kernels::kMaxSharedBytes)
            break;
          slice -= 16;
        }
        tile = xk::TileAttr::get(ctx, {{"chunk", l}, {"tile", slice}});
      } else if (isa<xk::RMSNormBackwardOp, xk::NormGateBackwardOp>(op)) {
        // A block sums its rows' weight-gradient terms in registers: 32 rows a block gives
        // 1024 partial rows for the 7B's 8 x 4096 tokens, ~8 blocks per SM.
        tile = xk::TileAttr::get(ctx, {{"threads", rowThreads(lastDim(op->getOperand(0)))},
                                       {"rows_per_block", 32}});
      } else if (isa<xk::ColumnSumOp>(op)) {
        // A bias gradient has few columns (the gates: 2·NH): long row blocks.
        tile = xk::TileAttr::get(ctx, {{"threads", rowThreads(lastDim(op->getOperand(0)))},
                                       {"rows_per_block", 256}});
      } else if (isa<xk::SwiGLUBackwardOp, xk::CrossEntropyOp, xk::ConvertOp>(op)) {
        tile = xk::TileAttr::get(ctx, {{"threads", rowThreads(lastDim(op->getOperand(0)))}});
      } else if (auto emb = dyn_cast<xk::EmbeddingBackwardOp>(op)) {
        // Blocks own the token ids t ≡ y (mod partitions): 64 partitions times the column
        // blocks (2 at the 7B's 4096 features) keep every SM busy without atomics.
        tile = xk::TileAttr::get(ctx, {{"threads", rowThreads(lastDim(emb.getDy()))},
                                       {"partitions", 64}});
      } else if (auto step = dyn_cast<xk::MLSTMDecodeStepOp>(op)) {
        auto state = cast<xlstm::StateType>(step.getInitialState().getType());
        // DV tiles of 64 and 32 measured the same at batch 1 and 64 slightly faster at batch 64
        // on the H100 at the 7B shape (docs/benchmarks/kernels-h100-2026-11-22.md).
        tile = xk::TileAttr::get(ctx, {{"block_dv", tileFor(state.getVHeadDim(), 64)},
                                       {"warps", 4}});
      } else if (isa<xk::RMSNormOp, xk::NormGateOp, xk::SwiGLUOp, xk::SoftCapOp,
                     xk::EmbeddingOp>(op)) {
        tile = xk::TileAttr::get(ctx, {{"threads", rowThreads(lastDim(op->getResult(0)))}});
      } else {
        return;
      }
      op->setAttr("tile", tile);
    });
  }
};

} // namespace
