//===- EmitMlstm.cpp - Chunkwise and decode-step mLSTM kernels ------------===//
//
// xk.mlstm_chunkwise becomes the fused form when its tile says "fused": a scores launch
// (runtime/device/mlstm_chunk_scores.cuh: every chunk's gated scores in parallel) and the state
// pass (mlstm_chunk_fused.cuh: state on chip for the whole sequence); else two launches sharing one
// parameter struct (runtime/device/mlstm_chunkwise.cuh): kernel A materialises the chunk-start
// states in a workspace, kernel B computes all chunk outputs in parallel. xk.mlstm_decode_step becomes one fused launch
// (mlstm_decode_step.cuh). Both update the state buffers in place.
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/KernelEmitter.h"
#include "codegen/cuda/KernelEmitterUtils.h"
#include "codegen/cuda/MlstmEmitterUtils.h"

using namespace mlir;

namespace xlc::codegen {
namespace art = xlc::artifact;

namespace {

/// The q, k, v, i, f operands as (buffer, offset, stride) argument triples.
template <typename Op> std::vector<art::Arg> viewArgs(Op op, EmitContext &ctx) {
  return viewArgs(ctx, {op.getQ(), op.getK(), op.getV(), op.getIgate(), op.getFgate()});
}

/// Each warp of a chunkwise kernel owns whole 16-row fragment rows of its tile: the largest
/// warp count ≤ |warps| that divides the tile's |fragmentRows|.
int64_t warpsFor(int64_t fragmentRows, int64_t warps) {
  int64_t w = std::max<int64_t>(1, std::min(warps, fragmentRows));
  while (fragmentRows % w != 0)
    --w;
  return w;
}

} // namespace

/// A narrower DV tile of the fused form for calls of at most |maxBatch| sequences (the tile's
/// small_batch_* entries): twice the blocks where B·NH·ceil(DV / tile) leaves SMs idle.
struct FusedSmallBatch {
  int64_t tileV = 0, keySplit = 0, maxBatch = 0;
};

/// The fused form: the scores kernel (every chunk's P̃ and gate vectors, in parallel) and the
/// state pass (state on chip, no chunk-state workspace; per-(b, head) counters, zeroed before
/// the launch, let the last reader of the initial n, m write the final ones).
LogicalResult emitMlstmChunkFused(xk::MLSTMChunkwiseOp op, EmitContext &ctx, int64_t chunk,
                                  int64_t tileV, int64_t keySplit,
                                  std::optional<FusedSmallBatch> small) {
  auto state = cast<xlstm::StateType>(op.getInitialState().getType());
  const std::uint64_t nh = static_cast<std::uint64_t>(state.getNumHeads());
  const std::uint64_t l = static_cast<std::uint64_t>(chunk);

  // The records: B·NH·NC of them with NC = ceil(S/L) ≤ (S + L − 1)/L.
  auto records = [&](std::uint64_t bytesPerRecord) {
    return art::ceilDiv(art::Expr{0, nh * bytesPerRecord * (l - 1), 0, nh * bytesPerRecord, 1},
                        l);
  };
  art::BufferId wsP =
      ctx.workspace(ctx.nameOf(op) + ".ws_p", art::DType::BF16, records(l * l * 2));
  art::BufferId wsG =
      ctx.workspace(ctx.nameOf(op) + ".ws_g", art::DType::F32, records((4 * l + 4) * 4));
  nlohmann::json attrs = mlstmCellAttrs(op);
  attrs["chunk"] = chunk;

  kernels::Config scoresConfig = mlstmCellConfig(op);
  scoresConfig["chunk"] = chunk;
  FailureOr<art::KernelIndex> scores =
      emitFamilyKernel(op, ctx, "mlstm_chunk_scores", scoresConfig);
  if (failed(scores))
    return failure();
  std::vector<art::Arg> scoresArgs =
      viewArgs(ctx, {op.getQ(), op.getK(), op.getIgate(), op.getFgate()});
  for (art::BufferId id : {wsP, wsG})
    scoresArgs.push_back(art::Arg::buffer(id));
  scoresArgs.push_back(art::Arg::symbol(art::Symbol::B));
  scoresArgs.push_back(art::Arg::symbol(art::Symbol::S));
  scoresArgs.push_back(art::Arg::f32(static_cast<float>(mlstmCapOf(op.getGateSoftCap()))));
  attrs["phase"] = "scores";
  ctx.step(art::Step::makeLaunch("mlstm_chunkwise", attrs, *scores, std::move(scoresArgs)));

  auto fusedKernel = [&](int64_t tile, int64_t split) {
    kernels::Config config = mlstmCellConfig(op);
    config["chunk"] = chunk;
    config["tile_v"] = std::max<int64_t>(16, tile);
    config["key_split"] = split;
    return emitFamilyKernel(op, ctx, "mlstm_chunk_fused", config);
  };
  FailureOr<art::KernelIndex> kernel = fusedKernel(tileV, keySplit);
  if (failed(kernel))
    return failure();
  std::vector<art::BatchVariant> byBatch;
  if (small) {
    FailureOr<art::KernelIndex> narrow = fusedKernel(small->tileV, small->keySplit);
    if (failed(narrow))
      return failure();
    byBatch.push_back({static_cast<std::uint64_t>(small->maxBatch), *narrow});
  }
  StateBuffers s = ctx.state(op.getInitialState());
  art::BufferId counters =
      ctx.workspace(ctx.nameOf(op) + ".counters", art::DType::I64, art::Expr::batch(nh * 8));
  std::vector<art::Arg> args = viewArgs(ctx, {op.getQ(), op.getK(), op.getV()});
  for (art::BufferId id : {wsP, wsG, s.C, s.n, s.m, counters, ctx.output(op.getH())})
    args.push_back(art::Arg::buffer(id));
  args.push_back(art::Arg::symbol(art::Symbol::B));
  args.push_back(art::Arg::symbol(art::Symbol::S));
  args.push_back(art::Arg::f32(static_cast<float>(op.getEps().convertToDouble())));
  attrs["phase"] = "fused";
  art::Step step = art::Step::makeLaunch("mlstm_chunkwise", attrs, *kernel, std::move(args));
  std::get<art::LaunchStep>(step.body).byBatch = std::move(byBatch);
  step.duties = {{art::DutyKind::Zero, counters}};
  ctx.step(std::move(step));
  return success();
}

LogicalResult emitMlstmChunkwise(xk::MLSTMChunkwiseOp op, EmitContext &ctx) {
  FailureOr<int64_t> chunk = tileEntry(op, "chunk"), blockQ = tileEntry(op, "block_q"),
                     blockDQK = tileEntry(op, "block_dqk"), blockDV = tileEntry(op, "block_dv"),
                     warps = tileEntry(op, "warps");
  if (failed(chunk) || failed(blockQ) || failed(blockDQK) || failed(blockDV) || failed(warps))
    return failure();
  auto state = cast<xlstm::StateType>(op.getInitialState().getType());
  const int64_t nh = state.getNumHeads(), dqk = state.getQkHeadDim(), dv = state.getVHeadDim();
  if (*chunk % 16 != 0 || *chunk % *blockQ != 0 || *blockQ % 16 != 0)
    return op.emitError() << "chunk " << *chunk << " must be a multiple of 16 and of block_q "
                          << *blockQ << ", itself a multiple of 16";
  // Tiles of C are whole 16x16 fragments: round head dims below 16 up (zero-padded in the kernel).
  auto fragTile = [](int64_t tile) { return std::max<int64_t>(16, tile); };
  auto tileAttr = op->getAttrOfType<xk::TileAttr>("tile");
  const int64_t stateDV = tileAttr.get("state_dv").value_or(*blockDV);
  if (tileAttr.get("fused").value_or(0) != 0) {
    if (op.getResets())
      return op.emitError() << "the fused form takes no document resets (the two-kernel form does)";
    FailureOr<int64_t> keySplit = tileEntry(op, "key_split");
    if (failed(keySplit))
      return failure();
    std::optional<FusedSmallBatch> small;
    if (tileAttr.get("small_batch_max")) {
      FailureOr<int64_t> smallTile = tileEntry(op, "small_batch_tile_v"),
                         smallSplit = tileEntry(op, "small_batch_key_split"),
                         smallMax = tileEntry(op, "small_batch_max");
      if (failed(smallTile) || failed(smallSplit) || failed(smallMax))
        return failure();
      if (*smallMax < 1)
        return op.emitError() << "small_batch_max " << *smallMax << " must be at least 1";
      small = FusedSmallBatch{*smallTile, *smallSplit, *smallMax};
    }
    return emitMlstmChunkFused(op, ctx, *chunk, stateDV, *keySplit, small);
  }

  // Kernel A: chunk-start states. One block per (C tile, batch·head).
  kernels::Config a = mlstmCellConfig(op);
  a["chunk"] = *chunk;
  a["tile_k"] = fragTile(*blockDQK);
  // Kernel A's C tile columns: the tile's state_dv, else block_dv (tiles written before state_dv).
  a["tile_v"] = fragTile(stateDV);
  a["threads"] = 32 * warpsFor(fragTile(*blockDQK) / 16, *warps);
  a["resets"] = static_cast<bool>(op.getResets());
  // Kernel B: outputs. One block per (DV tile, query block of the sequence, batch·head).
  kernels::Config b = mlstmCellConfig(op);
  b["chunk"] = *chunk;
  b["block_l"] = *blockQ;
  b["block_dv"] = fragTile(*blockDV);
  b["block_dqk"] = fragTile(*blockDQK);
  b["threads"] = 32 * warpsFor(*blockQ / 16, *warps);
  b["resets"] = a["resets"];
  FailureOr<art::KernelIndex> kernelA = emitFamilyKernel(op, ctx, "mlstm_chunk_states", a);
  FailureOr<art::KernelIndex> kernelB = emitFamilyKernel(op, ctx, "mlstm_chunk_outputs", b);
  if (failed(kernelA) || failed(kernelB))
    return failure();

  // The chunk-start states: (NC+1) slots per (b, head) with NC = ceil(S/L) ≤ (S+L−1)/L, so
  // B·NH·(S + 2L − 1)/L slots (rounded up) cover every S.
  auto slots = [&](std::uint64_t perSlot) {
    std::uint64_t l = static_cast<std::uint64_t>(*chunk);
    return art::ceilDiv(art::Expr{0, nh * perSlot * (2 * l - 1), 0, nh * perSlot, 1}, l);
  };
  StateBuffers s = ctx.state(op.getInitialState());
  // ws_C holds the chunk-start C in the cell's dtype (kernel B's tensor-core operand type).
  const mlir::Type cellType = op.getQ().getType().getElementType();
  const art::DType wsCType = cellType.isBF16()  ? art::DType::BF16
                            : cellType.isF16() ? art::DType::F16
                                               : art::DType::F32;
  art::BufferId wsC =
      ctx.workspace(ctx.nameOf(op) + ".ws_C", wsCType,
                    slots(static_cast<std::uint64_t>(dqk * dv) * art::dtypeSize(wsCType)));
  art::BufferId wsN = ctx.workspace(ctx.nameOf(op) + ".ws_n", art::DType::F32,
                                    slots(static_cast<std::uint64_t>(dqk) * 4));
  art::BufferId wsM = ctx.workspace(ctx.nameOf(op) + ".ws_m", art::DType::F32, slots(4));

  std::vector<art::Arg> args = viewArgs(op, ctx);
  args.push_back(resetsArg(op.getResets(), ctx));
  for (art::BufferId id : {s.C, s.n, s.m, wsC, wsN, wsM, ctx.output(op.getH())})
    args.push_back(art::Arg::buffer(id));
  args.push_back(art::Arg::symbol(art::Symbol::B));
  args.push_back(art::Arg::symbol(art::Symbol::S));
  args.push_back(art::Arg::f32(static_cast<float>(op.getEps().convertToDouble())));
  args.push_back(art::Arg::f32(static_cast<float>(mlstmCapOf(op.getGateSoftCap()))));

  // The backward (xk.mlstm_cell_grad on h) reads these chunk-start states.
  ctx.saveChunkStates(op.getH(), ChunkStates{wsC, wsN, wsM});
  nlohmann::json attrs = mlstmCellAttrs(op);
  attrs["chunk"] = *chunk;
  attrs["phase"] = "states";
  ctx.step(art::Step::makeLaunch("mlstm_chunkwise", attrs, *kernelA, args));
  attrs["phase"] = "outputs";
  ctx.step(art::Step::makeLaunch("mlstm_chunkwise", attrs, *kernelB, args));
  return success();
}

LogicalResult emitMlstmDecodeStep(xk::MLSTMDecodeStepOp op, EmitContext &ctx) {
  FailureOr<int64_t> blockDV = tileEntry(op, "block_dv"), warps = tileEntry(op, "warps");
  if (failed(blockDV) || failed(warps))
    return failure();
  auto state = cast<xlstm::StateType>(op.getInitialState().getType());
  const int64_t nh = state.getNumHeads();
  kernels::Config config = mlstmCellConfig(op);
  config["block_dv"] = *blockDV;
  config["threads"] = *warps * 32;
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "mlstm_decode_step", config);
  if (failed(kernel))
    return failure();

  StateBuffers s = ctx.state(op.getInitialState());
  art::BufferId counters = ctx.workspace(ctx.nameOf(op) + ".counters", art::DType::I64,
                                         art::Expr::batch(static_cast<std::uint64_t>(nh) * 8));
  std::vector<art::Arg> args = viewArgs(op, ctx);
  for (art::BufferId id : {s.C, s.n, s.m, counters, ctx.output(op.getH())})
    args.push_back(art::Arg::buffer(id));
  args.push_back(art::Arg::symbol(art::Symbol::B));
  args.push_back(art::Arg::f32(static_cast<float>(op.getEps().convertToDouble())));
  args.push_back(art::Arg::f32(static_cast<float>(mlstmCapOf(op.getGateSoftCap()))));
  art::Step step =
      art::Step::makeLaunch("mlstm_decode_step", mlstmCellAttrs(op), *kernel, std::move(args));
  step.duties = {{art::DutyKind::Zero, counters}};
  ctx.step(std::move(step));
  return success();
}

} // namespace xlc::codegen
