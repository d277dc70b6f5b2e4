//===- KernelEmitter.h - xk ops to kernel launches --------------*- C++ -*-===//
//
// Codegen of one xk kernel op: the CUDA translation unit (a thin instantiation over the device
// header library in runtime/device, the flashinfer pattern), its launch geometry as expressions
// over B and S, and the launch step with its arguments. One file per kernel family
// (Emit<Family>.cpp); the artifact writer owns buffers and deduplicates identical kernels.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_CODEGEN_CUDA_KERNELEMITTER_H
#define XLC_CODEGEN_CUDA_KERNELEMITTER_H

#include "dialect/XkDialect.h"
#include "runtime/artifact/Artifact.h"

#include <array>
#include <optional>
#include <string>

namespace xlc::codegen {

/// Where a tensor value lives: a buffer, and for views (xlstm.split results) the column offset
/// and row stride in elements. A contiguous [rows, F] buffer is {id, 0, F}.
struct BufferView {
  artifact::BufferId id = 0;
  int64_t offset = 0;
  int64_t stride = 0;
};

/// The state buffers of one mLSTM cell: C [B, NH, DQK, DV], n [B, NH, DQK], m [B, NH].
struct StateBuffers {
  artifact::BufferId C = 0, n = 0, m = 0;
};

/// The chunk-start states a two-kernel chunkwise forward saves ([B, NH, NC+1, ...] workspaces),
/// which the cell's backward reads.
struct ChunkStates {
  artifact::BufferId C = 0, n = 0, m = 0;
};

/// What an emitter may ask of the artifact writer.
class EmitContext {
public:
  virtual ~EmitContext() = default;
  /// The buffer (view) holding |value|.
  virtual BufferView view(mlir::Value value) = 0;
  /// The buffer |result| is written to (allocated on first request).
  virtual artifact::BufferId output(mlir::Value result) = 0;
  /// The view |result| is written to: where the writer placed it (a column slice of an
  /// xlstm.concat's buffer, the buffer of the addend it is summed into, a gradient buffer), else
  /// a new contiguous buffer.
  virtual BufferView outputView(mlir::Value result) = 0;
  /// Where |value| was placed before its producer ran, if anywhere.
  virtual std::optional<BufferView> placement(mlir::Value value) = 0;
  /// Places |value| at |view| (its producer writes there).
  virtual void place(mlir::Value value, BufferView view) = 0;
  /// A new contiguous activation buffer of |type| ([?, ?, F]: B, S and constants).
  virtual BufferView activation(const std::string &name, mlir::RankedTensorType type) = 0;
  /// Makes |result| live in |buffer| (in-place kernels).
  virtual void alias(mlir::Value result, artifact::BufferId buffer) = 0;
  /// The duties of a step that adds into |buffer|: `accumulate`, preceded by `zero` unless the
  /// buffer persists (a gradient) or an earlier step of the function wrote it.
  virtual std::vector<artifact::Duty> accumulateDuties(artifact::BufferId buffer) = 0;
  /// The launch argument of a scalar function argument (a 0-d tensor argument), or a diagnostic.
  virtual mlir::FailureOr<artifact::Arg> scalarArg(mlir::Value value) = 0;
  /// Records / looks up the chunk-start states saved by the forward that computed |h|.
  virtual void saveChunkStates(mlir::Value h, ChunkStates states) = 0;
  virtual std::optional<ChunkStates> chunkStates(mlir::Value h) = 0;
  /// A workspace buffer of |bytes| bytes owned by the current function.
  virtual artifact::BufferId workspace(const std::string &name, artifact::DType dtype,
                                       const artifact::Expr &bytes) = 0;
  /// The persistent state buffers behind a `!xlstm.state` value.
  virtual StateBuffers state(mlir::Value state) = 0;
  /// Adds |kernel| (or finds an identical one) and returns its index.
  virtual artifact::KernelIndex kernel(artifact::Kernel kernel) = 0;
  virtual void step(artifact::Step step) = 0;
  /// A name for buffers made for |op| (from its location).
  virtual std::string nameOf(mlir::Operation *op) = 0;
};

/// Emits the launches of one xk kernel op (everything but xk.gemm, xk.matmul and xk.zero_state,
/// which the writer turns into GEMM steps and zeroed buffers). Emits a diagnostic on the op
/// and fails when the op's shapes or tile are outside what its family supports.
mlir::LogicalResult emitKernelOp(mlir::Operation *op, EmitContext &ctx);

/// The device-header hash the emitted kernels are compiled against.
std::string deviceHeadersHash();

} // namespace xlc::codegen

#endif // XLC_CODEGEN_CUDA_KERNELEMITTER_H
