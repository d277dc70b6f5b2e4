//===- EmbeddingBackward.cpp - Gradient of the embedding gather ------------===//
//
// dtable[tokens[r], :] += dy[r, :] in row order per token id (deterministic), fp32, accumulated;
// a token outside [0, vocab) adds nothing and sets the error flag to 1 + a bad row
// (runtime/device/embedding_backward.cuh: column blocks × token-id partitions, each walking all
// rows).
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cpu/CpuBackwardOps.h"
#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  const std::int64_t rows = l.count("rows"), vocab = l.count("vocab");
  const std::int64_t dim = l.cfg("dim");
  const std::int32_t *tokens = l.i32s("tokens", u64(rows));
  const float *dy = l.floats("dy", l.product({rows, dim}));
  float *dtable = l.floats("dtable", l.product({vocab, dim}));
  std::int64_t *error = l.i64s("error", 1);
  *error = exec::cpu::embeddingBackward(l.pool(), tokens, exec::cpu::View{dy, 0, dim}, dtable,
                                        vocab, dim, rows);
}

} // namespace

const FamilyDef &embeddingBackwardFamily() {
  static const FamilyDef def{
      .name = "embedding_backward",
      .op = "embedding_backward",
      .header = "embedding_backward",
      .paramsType = "EmbeddingBackwardParams",
      .function = "embedding_backward",
      .config = {ConfigField::dtype("dtype"), ConfigField::integer("dim"),
                 ConfigField::integer("threads", 32, 1024),
                 ConfigField::integer("partitions", 1, 65535)},
      .attrs = {{"vocab", AttrCheck::Source::I64Arg, "vocab"}},
      .params =
          [](const Config &) {
            return std::vector<ParamDef>{
                bufferParam("tokens", artifact::DType::I32), bufferParam("dy", "dtype"),
                bufferParam("dtable", artifact::DType::F32),
                bufferParam("error", artifact::DType::I64, Duty::ErrorFlag), i64Param("rows"),
                i64Param("vocab")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("EmbeddingBackwardConfig",
                                  cfgCudaType(c, "dtype") + ", " + num(c, "dim") + ", " +
                                      num(c, "threads") + ", " + num(c, "partitions"));
          },
      .geometry =
          [](const Config &c) {
            Geometry g;
            const std::int64_t threads = cfgInt(c, "threads");
            g.block = {static_cast<std::uint32_t>(threads), 1, 1};
            g.grid[0] =
                artifact::Expr::constant(u64((cfgInt(c, "dim") + threads * 8 - 1) / (threads * 8)));
            g.grid[1] = artifact::Expr::constant(u64(cfgInt(c, "partitions")));
            return g;
          },
      .cpu = runCpu,
      // partitions: blocks own the token ids t ≡ y (mod partitions); more blocks, more passes.
      .tuning =
          [](const Config &) {
            return std::vector<TuningKnob>{threadsKnob(), {"partitions", powersOfTwo(16, 256)}};
          },
  };
  return def;
}

} // namespace xlc::kernels
