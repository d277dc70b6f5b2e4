//===- Embedding.cpp - The embedding gather -------------------------------===//
//
// out[r, :] = table[tokens[r], :] for r < rows; a token outside [0, vocab) gives a zero row and
// sets the error flag to 1 + the first such row (runtime/device/embedding.cuh). One block of
// `threads` per row.
//
//===----------------------------------------------------------------------===//

#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"
#include "runtime/support/Error.h"

namespace xlc::kernels {

namespace {

void runCpu(CpuLaunch &l) {
  const std::int64_t rows = l.count("rows"), vocab = l.count("vocab");
  const std::int64_t dim = l.cfg("dim");
  const std::int32_t *tokens = l.i32s("tokens", u64(rows));
  const float *table = l.floats("table", l.product({vocab, dim}));
  float *out = l.floats("out", l.product({rows, dim}));
  std::int64_t *error = l.i64s("error", 1);
  *error = exec::cpu::embedding(l.pool(), tokens, table, vocab, dim, out, rows);
}

} // namespace

const FamilyDef &embeddingFamily() {
  static const FamilyDef def{
      .name = "embedding",
      .op = "embedding",
      .header = "embedding",
      .paramsType = "EmbeddingParams",
      .function = "embedding",
      .config = {ConfigField::dtype("dtype"), ConfigField::integer("dim"),
                 ConfigField::integer("threads", 32, 1024)},
      .attrs = {{"vocab", AttrCheck::Source::I64Arg, "vocab"}},
      .params =
          [](const Config &) {
            return std::vector<ParamDef>{
                bufferParam("tokens", artifact::DType::I32), bufferParam("table", "dtype"),
                bufferParam("out", "dtype"),
                bufferParam("error", artifact::DType::I64, Duty::ErrorFlag), i64Param("rows"),
                i64Param("vocab")};
          },
      .configType =
          [](const Config &c) {
            return configSpelling("EmbeddingConfig",
                                  cfgCudaType(c, "dtype") + ", " +
                                      num(c, "dim") + ", " +
                                      num(c, "threads"));
          },
      .geometry = rowGeometry,
      .cpu = runCpu,
      .tuning = threadsSpace,
  };
  return def;
}

} // namespace xlc::kernels
