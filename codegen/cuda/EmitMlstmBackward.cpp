//===- EmitMlstmBackward.cpp - The mLSTM cell's backward ------------------===//
//
// xk.mlstm_cell_grad becomes the four launches of runtime/device/mlstm_chunk_backward.cuh, all
// over one parameter struct: R (readout: per-token s, δden, δm, β), S (the state gradient δC, δn
// per chunk, last chunk to first), P (every chunk's dq, dk, dv and gate pieces in parallel) and G
// (the stabiliser's gradient and the raw gates' gradients). They read the cell's forward: its
// output h and the chunk-start states its two-kernel form saved (ws_C, ws_n, ws_m), which the
// writer keeps alive until here. The gradients are strided destinations, so they land in place in
// the fused q|k|v|o-gate and i|f gradient buffers.
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/KernelEmitter.h"
#include "codegen/cuda/KernelEmitterUtils.h"
#include "codegen/cuda/MlstmEmitterUtils.h"

using namespace mlir;

namespace xlc::codegen {
namespace art = xlc::artifact;

LogicalResult emitMlstmCellGrad(xk::MLSTMCellGradOp op, EmitContext &ctx) {
  FailureOr<int64_t> chunk = tileEntry(op, "chunk"), tile = tileEntry(op, "tile");
  if (failed(chunk) || failed(tile))
    return failure();
  auto forward = op.getH().getDefiningOp<xk::MLSTMChunkwiseOp>();
  std::optional<ChunkStates> saved = ctx.chunkStates(op.getH());
  if (!forward || !saved)
    return op.emitError() << "h must be the output of an xk.mlstm_chunkwise in the two-kernel "
                             "form (its chunk-start states are the backward's input)";
  auto fwdTile = forward->getAttrOfType<xk::TileAttr>("tile");
  if (!fwdTile || fwdTile.get("chunk") != *chunk)
    return op.emitError() << "chunk " << *chunk << " is not the forward's ("
                          << (fwdTile ? fwdTile.str() : std::string("no tile")) << ")";

  kernels::Config config = mlstmCellConfig(forward);
  config["chunk"] = *chunk;
  config["tile"] = *tile;
  config["resets"] = static_cast<bool>(op.getResets());
  std::array<art::KernelIndex, 4> kernels{};
  const char *families[] = {"mlstm_backward_readout", "mlstm_backward_states",
                            "mlstm_backward_chunk", "mlstm_backward_gates"};
  for (int i = 0; i < 4; ++i) {
    FailureOr<art::KernelIndex> k = emitFamilyKernel(op, ctx, families[i], config);
    if (failed(k))
      return failure();
    kernels[i] = *k;
  }

  auto state = cast<xlstm::StateType>(forward.getInitialState().getType());
  const std::uint64_t nh = static_cast<std::uint64_t>(state.getNumHeads()),
                      dqk = static_cast<std::uint64_t>(state.getQkHeadDim()),
                      dv = static_cast<std::uint64_t>(state.getVHeadDim()),
                      l = static_cast<std::uint64_t>(*chunk);
  // Per (b, head): one record per token (ws_tok, ws_gate: 4 floats) or per chunk; a sequence
  // has NC = ceil(S/L) ≤ (S + L − 1)/L chunks.
  auto perChunk = [&](std::uint64_t bytes) {
    return art::ceilDiv(art::Expr{0, nh * bytes * (l - 1), 0, nh * bytes, 1}, l);
  };
  const std::string name = ctx.nameOf(op);
  art::BufferId wsTok = ctx.workspace(name + ".ws_tok", art::DType::F32, art::Expr::batchSeq(nh * 16));
  art::BufferId wsDC = ctx.workspace(name + ".ws_dC", art::DType::F32, perChunk(dqk * dv * 4));
  art::BufferId wsDN = ctx.workspace(name + ".ws_dn", art::DType::F32, perChunk(dqk * 4));
  art::BufferId wsGate = ctx.workspace(name + ".ws_gate", art::DType::F32, art::Expr::batchSeq(nh * 16));
  art::BufferId wsChunk = ctx.workspace(name + ".ws_chunk", art::DType::F32, perChunk(32));

  FailureOr<art::BufferId> h = contiguous(op, ctx, op.getH(), "h");
  FailureOr<art::BufferId> dh = contiguous(op, ctx, op.getDh(), "dh");
  if (failed(h) || failed(dh))
    return failure();
  std::vector<art::Arg> args =
      viewArgs(ctx, {op.getQ(), op.getK(), op.getV(), op.getIgate(), op.getFgate()});
  args.push_back(resetsArg(op.getResets(), ctx));
  for (art::BufferId id : {saved->C, saved->n, saved->m, *h, *dh})
    args.push_back(art::Arg::buffer(id));
  for (Value grad : {op.getDQ(), op.getDK(), op.getDV(), op.getDIgate(), op.getDFgate()})
    appendView(args, ctx.outputView(grad));
  for (art::BufferId id : {wsTok, wsDC, wsDN, wsGate, wsChunk})
    args.push_back(art::Arg::buffer(id));
  args.push_back(art::Arg::symbol(art::Symbol::B));
  args.push_back(art::Arg::symbol(art::Symbol::S));
  args.push_back(art::Arg::f32(static_cast<float>(forward.getEps().convertToDouble())));
  args.push_back(art::Arg::f32(static_cast<float>(mlstmCapOf(forward.getGateSoftCap()))));

  nlohmann::json attrs = mlstmCellAttrs(forward);
  attrs["chunk"] = *chunk;
  const char *phases[] = {"readout", "states", "chunk", "gates"};
  for (int i = 0; i < 4; ++i) {
    attrs["phase"] = phases[i];
    ctx.step(art::Step::makeLaunch("mlstm_cell_grad", attrs, kernels[i], args));
  }
  return success();
}

} // namespace xlc::codegen
