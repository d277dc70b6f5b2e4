//===- EmitRowKernels.cpp - rms_norm, norm_gate, swiglu, soft_cap, convert ===//
//
// The row-wise kernel families: one block per row (rows = the product of the leading dimensions
// of the op's type: B·S for activations, B for the last positions), the feature loop inside.
// Each emitter derives the family's configuration from the op's types and tile and lets the
// registry (runtime/kernels) render the kernel; it then adds the launch with its arguments.
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/KernelEmitter.h"
#include "codegen/cuda/KernelEmitterUtils.h"

using namespace mlir;

namespace xlc::codegen {
namespace art = xlc::artifact;

LogicalResult emitRmsNorm(xk::RMSNormOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads");
  if (failed(threads))
    return failure();
  RankedTensorType type = op.getResult().getType();
  // A folded norm has no weight: its slot is a null pointer, declared as an int64 zero.
  kernels::Config config = {{"dtype", dtypeText(type.getElementType())},
                            {"dim", type.getShape().back()},
                            {"threads", *threads},
                            {"has_weight", bool(op.getWeight())}};
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "rms_norm", config);
  if (failed(kernel))
    return failure();

  BufferView x = ctx.view(op.getInput());
  std::vector<art::Arg> args = {art::Arg::buffer(x.id), art::Arg::i64(x.offset),
                                art::Arg::i64(x.stride)};
  args.push_back(op.getWeight() ? art::Arg::buffer(ctx.view(op.getWeight()).id)
                                : art::Arg::i64(0));
  args.push_back(art::Arg::buffer(ctx.output(op.getResult())));
  args.push_back(rowsArg(type));
  args.push_back(art::Arg::f32(static_cast<float>(op.getEps().convertToDouble())));
  ctx.step(art::Step::makeLaunch(
      "rms_norm", {{"eps", op.getEps().convertToDouble()}, {"has_weight", bool(op.getWeight())}},
      *kernel, std::move(args)));
  return success();
}

LogicalResult emitNormGate(xk::NormGateOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads");
  if (failed(threads))
    return failure();
  RankedTensorType type = op.getResult().getType();
  int64_t numHeads = op.getNumHeads(), width = type.getShape().back();
  kernels::Config config = {{"dtype", dtypeText(type.getElementType())},
                            {"num_heads", numHeads},
                            {"head_dim", width / numHeads},
                            {"threads", *threads}};
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "norm_gate", config);
  if (failed(kernel))
    return failure();

  BufferView h = ctx.view(op.getInput()), o = ctx.view(op.getOgate());
  std::vector<art::Arg> args = {
      art::Arg::buffer(h.id),        art::Arg::i64(h.offset),
      art::Arg::i64(h.stride),       art::Arg::buffer(ctx.view(op.getWeight()).id),
      art::Arg::buffer(o.id),        art::Arg::i64(o.offset),
      art::Arg::i64(o.stride),       art::Arg::buffer(ctx.output(op.getResult())),
      rowsArg(type),
      art::Arg::f32(static_cast<float>(op.getEps().convertToDouble()))};
  ctx.step(art::Step::makeLaunch(
      "norm_gate", {{"eps", op.getEps().convertToDouble()}, {"num_heads", numHeads}}, *kernel,
      std::move(args)));
  return success();
}

LogicalResult emitSwiGLU(xk::SwiGLUOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads");
  if (failed(threads))
    return failure();
  RankedTensorType type = op.getResult().getType();
  kernels::Config config = {{"dtype", dtypeText(type.getElementType())},
                            {"dim", type.getShape().back()},
                            {"threads", *threads}};
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "swiglu", config);
  if (failed(kernel))
    return failure();

  BufferView g = ctx.view(op.getGate()), u = ctx.view(op.getUp());
  std::vector<art::Arg> args = {art::Arg::buffer(g.id), art::Arg::i64(g.offset),
                                art::Arg::i64(g.stride), art::Arg::buffer(u.id),
                                art::Arg::i64(u.offset), art::Arg::i64(u.stride),
                                art::Arg::buffer(ctx.output(op.getResult())),
                                rowsArg(type)};
  ctx.step(art::Step::makeLaunch("swiglu", nlohmann::json::object(), *kernel, std::move(args)));
  return success();
}

LogicalResult emitSoftCap(xk::SoftCapOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads");
  if (failed(threads))
    return failure();
  RankedTensorType type = op.getResult().getType();
  BufferView x = ctx.view(op.getInput());
  if (x.offset != 0 || x.stride != type.getShape().back())
    return op.emitError() << "soft_cap works in place on a contiguous buffer";
  int64_t width = type.getShape().back();
  kernels::Config config = {
      {"dtype", dtypeText(type.getElementType())}, {"width", width}, {"threads", *threads}};
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "soft_cap", config);
  if (failed(kernel))
    return failure();
  ctx.alias(op.getResult(), x.id);
  // count = rows·V elements, evaluated by the runtime at the call's B and S (B·S·V for the
  // logits of every position, B·V for the last positions).
  std::vector<art::Arg> args = {
      art::Arg::buffer(x.id), art::Arg::expr(rowsExpr(type, static_cast<std::uint64_t>(width))),
      art::Arg::f32(static_cast<float>(op.getCap().convertToDouble()))};
  ctx.step(art::Step::makeLaunch("soft_cap", {{"cap", op.getCap().convertToDouble()}}, *kernel,
                                 std::move(args)));
  return success();
}

LogicalResult emitConvert(xk::ConvertOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads");
  if (failed(threads))
    return failure();
  RankedTensorType in = op.getInput().getType(), out = op.getResult().getType();
  const int64_t cols = in.getShape().back();
  kernels::Config config = {{"src_dtype", dtypeText(in.getElementType())},
                            {"dst_dtype", dtypeText(out.getElementType())},
                            {"cols", cols},
                            {"threads", *threads}};
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "convert", config);
  FailureOr<art::BufferId> y = contiguousOutput(op, ctx, op.getResult(), "the result");
  if (failed(kernel) || failed(y))
    return failure();
  BufferView x = ctx.view(op.getInput());
  std::vector<art::Arg> args = {art::Arg::buffer(x.id), art::Arg::i64(x.offset),
                                art::Arg::i64(x.stride), art::Arg::buffer(*y), rowsArg(in)};
  ctx.step(art::Step::makeLaunch("convert", nlohmann::json::object(), *kernel, std::move(args)));
  return success();
}

} // namespace xlc::codegen
