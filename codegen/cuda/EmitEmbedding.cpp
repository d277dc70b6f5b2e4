//===- EmitEmbedding.cpp - The embedding gather ---------------------------===//

#include "codegen/cuda/KernelEmitter.h"
#include "codegen/cuda/KernelEmitterUtils.h"
#include "codegen/cuda/KernelSource.h"

using namespace mlir;

namespace xlc::codegen {
namespace art = xlc::artifact;

LogicalResult emitEmbedding(xk::EmbeddingOp op, EmitContext &ctx) {
  FailureOr<int64_t> threads = tileEntry(op, "threads");
  if (failed(threads))
    return failure();
  RankedTensorType table = op.getTable().getType();
  KernelSpec spec;
  spec.family = "embedding";
  spec.header = "embedding";
  spec.config = "xlc::device::EmbeddingConfig<" + cudaType(table.getElementType()) + ", " +
                std::to_string(table.getDimSize(1)) + ", " + std::to_string(*threads) + ">";
  spec.paramsType = "EmbeddingParams";
  spec.function = "embedding";
  spec.tile = tileText(op);
  spec.params = {bufferParam("tokens"), bufferParam("table"), bufferParam("out"),
                 bufferParam("error"),  i64Param("rows"),     i64Param("vocab")};
  spec.block = {static_cast<std::uint32_t>(*threads), 1, 1};
  spec.grid[0] = art::Expr::batchSeq();
  art::KernelIndex kernel = ctx.kernel(makeKernel(spec));

  // The error flag: zeroed before the launch, nonzero afterwards names a bad token's row + 1.
  art::BufferId error = ctx.workspace(ctx.nameOf(op) + ".error", art::DType::I64, art::Expr::constant(8));
  std::vector<art::Arg> args = {art::Arg::buffer(ctx.view(op.getTokens()).id),
                                art::Arg::buffer(ctx.view(op.getTable()).id),
                                art::Arg::buffer(ctx.output(op.getResult())),
                                art::Arg::buffer(error), art::Arg::symbol(art::Symbol::BS),
                                art::Arg::i64(table.getDimSize(0))};
  ctx.step(art::Step::makeLaunch(
      "embedding",
      {{"vocab", table.getDimSize(0)}, {"zero_before", {error}}, {"error_flag", error}}, kernel,
      std::move(args)));
  return success();
}

} // namespace xlc::codegen
