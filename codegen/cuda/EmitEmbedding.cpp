//===- EmitEmbedding.cpp - The embedding gather ---------------------------===//

#include "codegen/cuda/KernelEmitter.h"
#include "codegen/cuda/KernelEmitterUtils.h"

using namespace mlir;

namespace xlc::codegen {
namespace art = xlc::artifact;

LogicalResult emitEmbedding(xk::EmbeddingOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads");
  if (failed(threads))
    return failure();
  RankedTensorType table = op.getTable().getType();
  kernels::Config config = {{"dtype", dtypeText(table.getElementType())},
                            {"dim", table.getDimSize(1)},
                            {"threads", *threads}};
  FailureOr<art::KernelIndex> kernel = emitFamilyKernel(op, ctx, "embedding", config);
  if (failed(kernel))
    return failure();

  // The error flag: zeroed before the launch, nonzero afterwards names a bad token's row + 1.
  art::BufferId error =
      ctx.workspace(ctx.nameOf(op) + ".error", art::DType::I64, art::Expr::constant(8));
  std::vector<art::Arg> args = {art::Arg::buffer(ctx.view(op.getTokens()).id),
                                art::Arg::buffer(ctx.view(op.getTable()).id),
                                art::Arg::buffer(ctx.output(op.getResult())),
                                art::Arg::buffer(error), art::Arg::symbol(art::Symbol::BS),
                                art::Arg::i64(table.getDimSize(0))};
  art::Step step = art::Step::makeLaunch("embedding", {{"vocab", table.getDimSize(0)}}, *kernel,
                                         std::move(args));
  step.duties = {{art::DutyKind::Zero, error}, {art::DutyKind::ErrorFlag, error}};
  ctx.step(std::move(step));
  return success();
}

} // namespace xlc::codegen
