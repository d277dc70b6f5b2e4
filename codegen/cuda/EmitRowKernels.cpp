//===- EmitRowKernels.cpp - rms_norm, norm_gate, swiglu, soft_cap ---------===//
//
// The row-wise kernel families: one block per token row (rows = B·S), the feature loop inside
// (see runtime/device/<family>.cuh for the math and the geometry).
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/KernelEmitter.h"
#include "codegen/cuda/KernelSource.h"
#include "codegen/cuda/KernelEmitterUtils.h"

using namespace mlir;

namespace xlc::codegen {
namespace art = xlc::artifact;

namespace {

/// The spec shared by the row-wise families: header, device function and family all named
/// |family|, Config = xlc::device::<ConfigName><configArgs..., threads>, one block of |threads|
/// per token row (grid.x = B·S).
KernelSpec rowSpec(Operation *op, const std::string &family, const std::string &configName,
                   const std::string &paramsType, const std::string &configArgs,
                   int64_t threads) {
  KernelSpec spec;
  spec.family = family;
  spec.header = family;
  spec.function = family;
  spec.config = "xlc::device::" + configName + "<" + configArgs + ", " + std::to_string(threads) +
                ">";
  spec.paramsType = paramsType;
  spec.tile = tileText(op);
  spec.block = {static_cast<std::uint32_t>(threads), 1, 1};
  spec.grid[0] = art::Expr::batchSeq();
  return spec;
}

} // namespace

LogicalResult emitRmsNorm(xk::RMSNormOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads");
  if (failed(threads))
    return failure();
  RankedTensorType type = op.getResult().getType();
  int64_t dim = type.getShape().back();
  KernelSpec spec = rowSpec(op, "rms_norm", "RmsNormConfig", "RmsNormParams",
                            cudaType(type.getElementType()) + ", " + std::to_string(dim), *threads);
  // A folded norm has no weight: its slot is a null pointer, declared as an int64 zero.
  spec.params = {bufferParam("x"), i64Param("x_offset"), i64Param("x_stride"),
                 op.getWeight() ? bufferParam("weight") : i64Param("weight_null"),
                 bufferParam("y"), i64Param("rows"), f64Param("eps")};
  art::KernelIndex kernel = ctx.kernel(makeKernel(spec));

  BufferView x = ctx.view(op.getInput());
  std::vector<art::Arg> args = {art::Arg::buffer(x.id), art::Arg::i64(x.offset),
                                art::Arg::i64(x.stride)};
  args.push_back(op.getWeight() ? art::Arg::buffer(ctx.view(op.getWeight()).id)
                                : art::Arg::i64(0));
  args.push_back(art::Arg::buffer(ctx.output(op.getResult())));
  args.push_back(art::Arg::symbol(art::Symbol::BS));
  args.push_back(art::Arg::f32(static_cast<float>(op.getEps().convertToDouble())));
  ctx.step(art::Step::makeLaunch(
      "rms_norm", {{"eps", op.getEps().convertToDouble()}, {"has_weight", bool(op.getWeight())}},
      kernel, std::move(args)));
  return success();
}

LogicalResult emitNormGate(xk::NormGateOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads");
  if (failed(threads))
    return failure();
  RankedTensorType type = op.getResult().getType();
  int64_t numHeads = op.getNumHeads(), width = type.getShape().back();
  KernelSpec spec = rowSpec(op, "norm_gate", "NormGateConfig", "NormGateParams",
                            cudaType(type.getElementType()) + ", " + std::to_string(numHeads) +
                                ", " + std::to_string(width / numHeads),
                            *threads);
  spec.params = {bufferParam("h"),      i64Param("h_offset"), i64Param("h_stride"),
                 bufferParam("weight"), bufferParam("o"),     i64Param("o_offset"),
                 i64Param("o_stride"),  bufferParam("out"),   i64Param("rows"),
                 f64Param("eps")};
  art::KernelIndex kernel = ctx.kernel(makeKernel(spec));

  BufferView h = ctx.view(op.getInput()), o = ctx.view(op.getOgate());
  std::vector<art::Arg> args = {
      art::Arg::buffer(h.id),        art::Arg::i64(h.offset),
      art::Arg::i64(h.stride),       art::Arg::buffer(ctx.view(op.getWeight()).id),
      art::Arg::buffer(o.id),        art::Arg::i64(o.offset),
      art::Arg::i64(o.stride),       art::Arg::buffer(ctx.output(op.getResult())),
      art::Arg::symbol(art::Symbol::BS),
      art::Arg::f32(static_cast<float>(op.getEps().convertToDouble()))};
  ctx.step(art::Step::makeLaunch(
      "norm_gate", {{"eps", op.getEps().convertToDouble()}, {"num_heads", numHeads}}, kernel,
      std::move(args)));
  return success();
}

LogicalResult emitSwiGLU(xk::SwiGLUOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads");
  if (failed(threads))
    return failure();
  RankedTensorType type = op.getResult().getType();
  int64_t dim = type.getShape().back();
  KernelSpec spec = rowSpec(op, "swiglu", "SwigluConfig", "SwigluParams",
                            cudaType(type.getElementType()) + ", " + std::to_string(dim), *threads);
  spec.params = {bufferParam("gate"), i64Param("gate_offset"), i64Param("gate_stride"),
                 bufferParam("up"),   i64Param("up_offset"),   i64Param("up_stride"),
                 bufferParam("out"),  i64Param("rows")};
  // grid.y = Config::kColBlocks = ceil(dim / (threads·8)).
  spec.grid[1] = art::Expr::constant(static_cast<std::uint64_t>((dim + *threads * 8 - 1) /
                                                                (*threads * 8)));
  art::KernelIndex kernel = ctx.kernel(makeKernel(spec));

  BufferView g = ctx.view(op.getGate()), u = ctx.view(op.getUp());
  std::vector<art::Arg> args = {art::Arg::buffer(g.id), art::Arg::i64(g.offset),
                                art::Arg::i64(g.stride), art::Arg::buffer(u.id),
                                art::Arg::i64(u.offset), art::Arg::i64(u.stride),
                                art::Arg::buffer(ctx.output(op.getResult())),
                                art::Arg::symbol(art::Symbol::BS)};
  ctx.step(art::Step::makeLaunch("swiglu", nlohmann::json::object(), kernel, std::move(args)));
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
  KernelSpec spec = rowSpec(op, "soft_cap", "SoftCapConfig", "SoftCapParams",
                            cudaType(type.getElementType()), *threads);
  spec.params = {bufferParam("x"), i64Param("count"), f64Param("cap")};
  // ceil(rows·V / (threads·8)) blocks.
  spec.grid[0] = art::ceilDiv(art::Expr::batchSeq(static_cast<std::uint64_t>(width)),
                              static_cast<std::uint64_t>(*threads * 8));
  art::KernelIndex kernel = ctx.kernel(makeKernel(spec));
  ctx.alias(op.getResult(), x.id);
  // count = rows·V elements, evaluated by the runtime at the call's B and S.
  std::vector<art::Arg> args = {
      art::Arg::buffer(x.id), art::Arg::expr(art::Expr::batchSeq(static_cast<std::uint64_t>(width))),
      art::Arg::f32(static_cast<float>(op.getCap().convertToDouble()))};
  ctx.step(art::Step::makeLaunch("soft_cap", {{"cap", op.getCap().convertToDouble()}}, kernel,
                                 std::move(args)));
  return success();
}

} // namespace xlc::codegen
