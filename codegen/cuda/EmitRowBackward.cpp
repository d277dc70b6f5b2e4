//===- EmitRowBackward.cpp - The row-wise gradient kernels ----------------===//
//
// The backward of the row-wise families: rms_norm_backward, norm_gate_backward,
// swiglu_backward, the bias gradient column_sum, the loss head cross_entropy and the embedding's
// embedding_backward. Weight gradients are f32 and every kernel ADDS into them (docs/kernels.md):
// a persistent gradient buffer sums the micro-batches of a step; an arena destination is zeroed
// by the step that first writes it. Per-block partial sums and completion counters live in
// workspaces of the step, so every sum is taken in a fixed order (the same bits every run).
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/KernelEmitter.h"
#include "codegen/cuda/KernelEmitterUtils.h"

using namespace mlir;

namespace xlc::codegen {
namespace art = xlc::artifact;

namespace {

/// Bytes of one f32 partial-sum row of |width| columns per block of |rowsPerBlock| rows, for
/// every block a launch over |rows| rows has: ceil(rows / rowsPerBlock)·width·4 ≤
/// (rows + rowsPerBlock − 1)·width·4 / rowsPerBlock.
art::Expr partialBytes(const art::Expr &rows, int64_t rowsPerBlock, int64_t width) {
  const std::uint64_t row = static_cast<std::uint64_t>(width) * 4;
  const std::uint64_t perBlock = static_cast<std::uint64_t>(rowsPerBlock);
  return art::ceilDiv(rows * row + art::Expr::constant((perBlock - 1) * row), perBlock);
}

/// The duties of a step that adds into |buffer| (EmitContext::accumulateDuties), after its own.
void addAccumulateDuties(art::Step &step, EmitContext &ctx, art::BufferId buffer) {
  for (const art::Duty &d : ctx.accumulateDuties(buffer))
    step.duties.push_back(d);
}

/// A completion counter: one i64, zeroed before the launch (the last block resets it).
art::BufferId counterFor(Operation *op, EmitContext &ctx) {
  return ctx.workspace(ctx.nameOf(op) + ".counter", art::DType::I64, art::Expr::constant(8));
}

} // namespace

LogicalResult emitRmsNormBackward(xk::RMSNormBackwardOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads"),
                     rowsPerBlock = tileEntry(op, "rows_per_block");
  if (failed(threads) || failed(rowsPerBlock))
    return failure();
  RankedTensorType type = op.getInput().getType();
  const int64_t dim = type.getShape().back();
  const bool weight = bool(op.getWeight()), residual = bool(op.getResidual());
  kernels::Config config = {{"dtype", dtypeText(type.getElementType())},
                            {"dim", dim},
                            {"threads", *threads},
                            {"rows_per_block", *rowsPerBlock},
                            {"has_weight", weight},
                            {"residual", residual}};
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "rms_norm_backward", config);
  if (failed(kernel))
    return failure();

  FailureOr<art::BufferId> dy = contiguous(op, ctx, op.getDy(), "dy");
  FailureOr<art::BufferId> res =
      residual ? contiguous(op, ctx, op.getResidual(), "the residual gradient") : art::BufferId{};
  FailureOr<art::BufferId> dx = contiguousOutput(op, ctx, op.getDInput(), "d_input");
  if (failed(dy) || failed(res) || failed(dx))
    return failure();
  art::BufferId counter = counterFor(op, ctx);
  std::vector<art::Arg> args;
  appendView(args, ctx.view(op.getInput()));
  args.push_back(weight ? art::Arg::buffer(ctx.view(op.getWeight()).id) : art::Arg::i64(0));
  args.push_back(art::Arg::buffer(*dy));
  args.push_back(residual ? art::Arg::buffer(*res) : art::Arg::i64(0));
  args.push_back(art::Arg::buffer(*dx));
  std::vector<art::Duty> duties = {{art::DutyKind::Zero, counter}};
  if (weight) {
    art::BufferId partial =
        ctx.workspace(ctx.nameOf(op) + ".dw_partial", art::DType::F32,
                      partialBytes(rowsExpr(type), *rowsPerBlock, dim));
    FailureOr<art::BufferId> dw = contiguousOutput(op, ctx, op.getDWeight(), "d_weight");
    if (failed(dw))
      return failure();
    args.push_back(art::Arg::buffer(partial));
    args.push_back(art::Arg::buffer(*dw));
    for (const art::Duty &d : ctx.accumulateDuties(*dw))
      duties.push_back(d);
  } else {
    args.push_back(art::Arg::i64(0));
    args.push_back(art::Arg::i64(0));
  }
  args.push_back(art::Arg::buffer(counter));
  args.push_back(rowsArg(type));
  args.push_back(art::Arg::f32(static_cast<float>(op.getEps().convertToDouble())));
  art::Step step = art::Step::makeLaunch(
      "rms_norm_backward",
      {{"eps", op.getEps().convertToDouble()}, {"has_weight", weight}, {"residual", residual}},
      *kernel, std::move(args));
  step.duties = std::move(duties);
  ctx.step(std::move(step));
  return success();
}

LogicalResult emitNormGateBackward(xk::NormGateBackwardOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads"),
                     rowsPerBlock = tileEntry(op, "rows_per_block");
  if (failed(threads) || failed(rowsPerBlock))
    return failure();
  RankedTensorType type = op.getInput().getType();
  const int64_t numHeads = op.getNumHeads(), width = type.getShape().back();
  kernels::Config config = {{"dtype", dtypeText(type.getElementType())},
                            {"num_heads", numHeads},
                            {"head_dim", width / numHeads},
                            {"threads", *threads},
                            {"rows_per_block", *rowsPerBlock}};
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "norm_gate_backward", config);
  if (failed(kernel))
    return failure();

  FailureOr<art::BufferId> dout = contiguous(op, ctx, op.getDy(), "dy");
  FailureOr<art::BufferId> dh = contiguousOutput(op, ctx, op.getDInput(), "d_input");
  FailureOr<art::BufferId> dw = contiguousOutput(op, ctx, op.getDWeight(), "d_weight");
  if (failed(dout) || failed(dh) || failed(dw))
    return failure();
  art::BufferId partial = ctx.workspace(ctx.nameOf(op) + ".dw_partial", art::DType::F32,
                                        partialBytes(rowsExpr(type), *rowsPerBlock, width));
  art::BufferId counter = counterFor(op, ctx);
  std::vector<art::Arg> args;
  appendView(args, ctx.view(op.getInput()));
  args.push_back(art::Arg::buffer(ctx.view(op.getWeight()).id));
  appendView(args, ctx.view(op.getOgate()));
  args.push_back(art::Arg::buffer(*dout));
  args.push_back(art::Arg::buffer(*dh));
  appendView(args, ctx.outputView(op.getDOgate()));
  for (art::BufferId id : {partial, *dw, counter})
    args.push_back(art::Arg::buffer(id));
  args.push_back(rowsArg(type));
  args.push_back(art::Arg::f32(static_cast<float>(op.getEps().convertToDouble())));
  art::Step step = art::Step::makeLaunch(
      "norm_gate_backward", {{"eps", op.getEps().convertToDouble()}, {"num_heads", numHeads}},
      *kernel, std::move(args));
  step.duties = {{art::DutyKind::Zero, counter}};
  addAccumulateDuties(step, ctx, *dw);
  ctx.step(std::move(step));
  return success();
}

LogicalResult emitSwiGLUBackward(xk::SwiGLUBackwardOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads");
  if (failed(threads))
    return failure();
  RankedTensorType type = op.getDy().getType();
  const int64_t dim = type.getShape().back();
  kernels::Config config = {
      {"dtype", dtypeText(type.getElementType())}, {"dim", dim}, {"threads", *threads}};
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "swiglu_backward", config);
  if (failed(kernel))
    return failure();

  // Both gradients go to one buffer with one row stride (the kernel's `d`): where an
  // xlstm.concat placed them (the fused gate|up projection's gradient), else side by side in a
  // new [..., 2·dim] buffer.
  std::optional<BufferView> dGate = ctx.placement(op.getDGate()),
                            dUp = ctx.placement(op.getDUp());
  if (!dGate && !dUp) {
    SmallVector<int64_t> shape(type.getShape());
    shape.back() = 2 * dim;
    BufferView both = ctx.activation(ctx.nameOf(op) + ".d",
                                     RankedTensorType::get(shape, type.getElementType()));
    dGate = both;
    dUp = BufferView{both.id, dim, both.stride};
    ctx.place(op.getDGate(), *dGate);
    ctx.place(op.getDUp(), *dUp);
  }
  if (!dGate || !dUp || dGate->id != dUp->id || dGate->stride != dUp->stride)
    return op.emitError() << "the gate's and the up projection's gradients must share one buffer "
                             "and row stride (swiglu_backward writes them together)";
  FailureOr<art::BufferId> dout = contiguous(op, ctx, op.getDy(), "dy");
  if (failed(dout))
    return failure();
  std::vector<art::Arg> args;
  appendView(args, ctx.view(op.getGate()));
  appendView(args, ctx.view(op.getUp()));
  args.push_back(art::Arg::buffer(*dout));
  args.push_back(art::Arg::buffer(dGate->id));
  args.push_back(art::Arg::i64(dGate->offset));
  args.push_back(art::Arg::i64(dUp->offset));
  args.push_back(art::Arg::i64(dGate->stride));
  args.push_back(rowsArg(type));
  ctx.step(art::Step::makeLaunch("swiglu_backward", nlohmann::json::object(), *kernel,
                                 std::move(args)));
  return success();
}

LogicalResult emitColumnSum(xk::ColumnSumOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads"),
                     rowsPerBlock = tileEntry(op, "rows_per_block");
  if (failed(threads) || failed(rowsPerBlock))
    return failure();
  RankedTensorType type = op.getInput().getType();
  const int64_t cols = type.getShape().back();
  kernels::Config config = {{"dtype", dtypeText(type.getElementType())},
                            {"cols", cols},
                            {"threads", *threads},
                            {"rows_per_block", *rowsPerBlock}};
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "column_sum", config);
  FailureOr<art::BufferId> out = contiguousOutput(op, ctx, op.getResult(), "the column sums");
  if (failed(kernel) || failed(out))
    return failure();
  art::BufferId partial = ctx.workspace(ctx.nameOf(op) + ".partial", art::DType::F32,
                                        partialBytes(rowsExpr(type), *rowsPerBlock, cols));
  art::BufferId counter = counterFor(op, ctx);
  std::vector<art::Arg> args;
  appendView(args, ctx.view(op.getInput()));
  for (art::BufferId id : {partial, *out, counter})
    args.push_back(art::Arg::buffer(id));
  args.push_back(rowsArg(type));
  art::Step step =
      art::Step::makeLaunch("column_sum", nlohmann::json::object(), *kernel, std::move(args));
  step.duties = {{art::DutyKind::Zero, counter}};
  addAccumulateDuties(step, ctx, *out);
  ctx.step(std::move(step));
  return success();
}

LogicalResult emitEmbeddingBackward(xk::EmbeddingBackwardOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads"),
                     partitions = tileEntry(op, "partitions");
  if (failed(threads) || failed(partitions))
    return failure();
  RankedTensorType dy = op.getDy().getType(), table = op.getDTable().getType();
  kernels::Config config = {{"dtype", dtypeText(dy.getElementType())},
                            {"dim", dy.getShape().back()},
                            {"threads", *threads},
                            {"partitions", *partitions}};
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "embedding_backward", config);
  FailureOr<art::BufferId> dyBuffer = contiguous(op, ctx, op.getDy(), "dy");
  // With an addend the writer placed it in the result's buffer: the kernel adds on top of it.
  FailureOr<art::BufferId> dtable = contiguousOutput(op, ctx, op.getDTable(), "d_table");
  if (failed(kernel) || failed(dyBuffer) || failed(dtable))
    return failure();
  if (op.getAddend() && ctx.view(op.getAddend()).id != *dtable)
    return op.emitError() << "the addend must be placed in the result's buffer";
  art::BufferId error =
      ctx.workspace(ctx.nameOf(op) + ".error", art::DType::I64, art::Expr::constant(8));
  const int64_t vocab = table.getDimSize(0);
  std::vector<art::Arg> args = {art::Arg::buffer(ctx.view(op.getTokens()).id),
                                art::Arg::buffer(*dyBuffer),
                                art::Arg::buffer(*dtable),
                                art::Arg::buffer(error),
                                rowsArg(dy),
                                art::Arg::i64(vocab)};
  art::Step step = art::Step::makeLaunch("embedding_backward", {{"vocab", vocab}}, *kernel,
                                         std::move(args));
  step.duties = {{art::DutyKind::Zero, error}, {art::DutyKind::ErrorFlag, error}};
  addAccumulateDuties(step, ctx, *dtable);
  ctx.step(std::move(step));
  return success();
}

LogicalResult emitCrossEntropy(xk::CrossEntropyOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads");
  if (failed(threads))
    return failure();
  RankedTensorType logits = op.getLogits().getType();
  const int64_t vocab = logits.getShape().back();
  const bool capped = op.getCap().has_value();
  kernels::Config config = {{"threads", *threads}, {"capped", capped}};
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "cross_entropy", config);
  FailureOr<art::BufferId> z = contiguous(op, ctx, op.getLogits(), "the logits");
  FailureOr<art::Arg> scale = ctx.scalarArg(op.getScale());
  if (failed(kernel) || failed(z) || failed(scale))
    return failure();
  // The logits' gradient replaces them in place.
  ctx.alias(op.getDLogits(), *z);
  // The per-row losses: the function's per-token loss output where the writer placed the loss
  // there, else scratch. The summed loss is scratch too: its value is the rows' sum.
  std::string name = ctx.nameOf(op);
  std::optional<BufferView> placed = ctx.placement(op.getLoss());
  art::BufferId lossRows =
      placed ? placed->id
             : ctx.workspace(name + ".loss_rows", art::DType::F32, rowsExpr(logits, 4));
  art::BufferId loss = ctx.workspace(name + ".loss", art::DType::F32, art::Expr::constant(4));
  art::BufferId counter = counterFor(op, ctx);
  art::BufferId error = ctx.workspace(name + ".error", art::DType::I64, art::Expr::constant(8));
  std::vector<art::Arg> args = {art::Arg::buffer(*z),        art::Arg::buffer(ctx.view(op.getTargets()).id),
                                art::Arg::buffer(lossRows),  art::Arg::buffer(loss),
                                art::Arg::buffer(counter),   art::Arg::buffer(error),
                                rowsArg(logits),             art::Arg::i64(vocab),
                                art::Arg::f32(capped ? static_cast<float>(op.getCap()->convertToDouble()) : 0.0f),
                                *scale};
  art::Step step = art::Step::makeLaunch("cross_entropy", {{"vocab", vocab}}, *kernel,
                                         std::move(args));
  step.duties = {{art::DutyKind::Zero, loss},
                 {art::DutyKind::Accumulate, loss},
                 {art::DutyKind::Zero, counter},
                 {art::DutyKind::Zero, error},
                 {art::DutyKind::ErrorFlag, error}};
  ctx.step(std::move(step));
  return success();
}

} // namespace xlc::codegen
