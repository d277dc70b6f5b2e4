//===- Plan.h - The one plan executor ---------------------------*- C++ -*-===//
//
// Every backend runs a function of the artifact the same way, and this is written once here:
// the step loop, the addressing of every buffer at a call's (B, S, first slot), and the runtime
// duties around the steps (zero a buffer before a step, record an error flag after it). A backend
// supplies only what differs: where its buffer classes live (Memory) and how it performs one
// launch, GEMM, copy or zeroing (StepHandlers).
//
// Addresses are integers: host pointers on the CPU, device pointers on the GPU. Arena buffers
// live at arenaBase + arenaScale·offset(B, S): the CPU backend holds float buffers as fp32, which
// at most doubles any element, so it doubles every planned offset (arenaScale = 2) and keeps the
// compiler's memory plan valid (runtime/exec/cpu/CpuBackend.h). Element counts are those of the
// artifact's dtype; a backend multiplies by its own storage size.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_PLAN_H
#define XLC_RUNTIME_EXEC_PLAN_H

#include "runtime/artifact/Artifact.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::exec {

/// The sizes of one call: B sequences in slots [firstSlot, firstSlot + B), S tokens each.
struct CallShape {
  std::uint64_t batch = 1, seq = 1, firstSlot = 0;
};

/// A buffer operand resolved for one call.
struct BufferRef {
  artifact::BufferId id = 0;
  std::uint64_t address = 0;
  std::uint64_t elements = 0; ///< elements of the artifact dtype at the call's (B, S)
  const artifact::Buffer *buffer = nullptr;
};

/// A launch argument resolved for one call: a buffer, an i64 or an f32 (passed as double).
struct LaunchArg {
  artifact::ParamKind kind = artifact::ParamKind::I64;
  BufferRef buffer;
  std::int64_t integer = 0;
  double real = 0;
};

/// Where a backend keeps its buffers.
struct Memory {
  std::uint64_t arenaBase = 0;
  std::uint64_t arenaScale = 1;
  /// By buffer id: the base of every non-arena buffer (static classes, states, inputs, outputs).
  std::vector<std::uint64_t> base;
  /// By buffer id: bytes per sequence slot of a state buffer in the backend's storage.
  std::vector<std::uint64_t> slotBytes;
};

/// A step as the executor prepared it.
struct PreparedStep {
  std::size_t index = 0;
  const artifact::Step *step = nullptr;
  const artifact::Kernel *kernel = nullptr; ///< launches: the kernel this step launches
  artifact::KernelIndex kernelIndex = 0;    ///< launches: its index in the artifact
  std::string where; ///< "prefill step 4 (mlstm_chunkwise, kernel 'mlstm_chunk_states_2')"
  std::vector<std::size_t> errorFlags; ///< indices into PreparedFunction::errorFlags
  /// Launches with batch variants (artifact::LaunchStep::byBatch): the step as prepared for
  /// each variant's kernel, in the artifact's order, with the variant's batch bound.
  std::vector<std::pair<std::uint64_t, PreparedStep>> byBatch;

  /// The step as a call of |batch| sequences runs it: the first variant whose bound holds
  /// |batch|, else this one. Handlers and observers only ever see the chosen one.
  const PreparedStep &forBatch(std::uint64_t batch) const {
    for (const auto &[maxBatch, variant] : byBatch)
      if (batch <= maxBatch)
        return variant;
    return *this;
  }
};

struct ErrorFlagSite {
  std::size_t step = 0;
  artifact::BufferId buffer = 0;
};

struct PreparedFunction {
  const artifact::Function *function = nullptr;
  std::vector<PreparedStep> steps;
  std::vector<artifact::BufferId> buffers; ///< every buffer a step or duty names, sorted
  std::vector<ErrorFlagSite> errorFlags;
};

/// What a backend does for each kind of step. Every operand has been resolved and its extent at
/// the call's sizes computed; handlers check the sizes they need against `elements`.
class StepHandlers {
public:
  virtual ~StepHandlers() = default;
  virtual void zero(const BufferRef &buffer, const PreparedStep &step) = 0;
  virtual void launch(const PreparedStep &step, std::span<const LaunchArg> args,
                      const CallShape &shape) = 0;
  /// m, n, k evaluated; c present exactly when the epilogue is not none.
  virtual void gemm(const PreparedStep &step, const artifact::GemmStep &gemm, std::uint64_t m,
                    std::uint64_t n, std::uint64_t k, const BufferRef &a, const BufferRef &b,
                    const std::optional<BufferRef> &c, const BufferRef &d) = 0;
  /// |bytes| bytes of the artifact's dtype.
  virtual void copy(const PreparedStep &step, const BufferRef &src, const BufferRef &dst,
                    std::uint64_t bytes) = 0;
  /// Right after the step that may set it: keep error flag |index| of the function (the arena
  /// is shared, a later step may overwrite the buffer).
  virtual void keepErrorFlag(std::size_t index, const BufferRef &flag) = 0;
};

/// Sees every step of a call, before and after it runs (tests: step-by-step comparison of two
/// backends). A backend runs an observed call eagerly (no graphs), and the observer may read and
/// write the backend's buffers from inside the hooks (Backend::readBuffer / writeBuffer).
class StepObserver {
public:
  virtual ~StepObserver() = default;
  virtual void beforeStep(const PreparedStep &step, const CallShape &shape) = 0;
  virtual void afterStep(const PreparedStep &step, const CallShape &shape) = 0;
};

/// A validated artifact with every function prepared for execution.
class Plan {
public:
  /// Validates |artifact| at |maxBatch|, |maxSeq| (structure, limits, kernel families) and
  /// prepares its functions. The artifact must outlive the plan.
  Plan(const artifact::Artifact &artifact, std::uint64_t maxBatch, std::uint64_t maxSeq);

  const artifact::Artifact &artifact() const { return *artifact_; }
  /// The prepared function, or an error naming the functions there are.
  const PreparedFunction &function(std::string_view name) const;
  const std::map<std::string, PreparedFunction, std::less<>> &functions() const {
    return functions_;
  }

  /// Elements of buffer |id| (artifact dtype) at (B, S), overflow-checked.
  std::uint64_t elements(artifact::BufferId id, std::uint64_t batch, std::uint64_t seq) const;
  /// Bytes of buffer |id| (artifact dtype) at (B, S), overflow-checked.
  std::uint64_t bytes(artifact::BufferId id, std::uint64_t batch, std::uint64_t seq) const;

  /// Runs the steps of |fn| in order through |handlers| at |shape|, with the function's scalar
  /// arguments |scalars| (by index into Function::scalars).
  void execute(const PreparedFunction &fn, const Memory &memory, const CallShape &shape,
               std::span<const double> scalars, StepHandlers &handlers,
               StepObserver *observer = nullptr) const;

  /// Byte offsets of every input and output buffer in one block the functions share (they never
  /// run at once): within each function its buffers are disjoint; a buffer that several
  /// functions name has one offset. |bytesOf| gives a buffer's bytes at the limits; offsets are
  /// multiples of |alignment|. Only the functions named in |functions| are laid out (all when it
  /// is empty); the other functions' buffers get offset 0 and must not be used. Returns the
  /// offsets by buffer id and the block's size in |total|.
  std::vector<std::uint64_t> ioLayout(const std::function<std::uint64_t(artifact::BufferId)> &bytesOf,
                                      std::uint64_t alignment, std::uint64_t &total,
                                      std::span<const std::string> functions = {}) const;

  /// The address of buffer |id| at |shape|.
  std::uint64_t address(const Memory &memory, artifact::BufferId id, const CallShape &shape) const;
  BufferRef resolve(const Memory &memory, artifact::BufferId id, const CallShape &shape) const;

  /// Throws the error a nonzero error flag stands for (naming the function, step, op and, for
  /// the embedding, the sequence and position of the bad token).
  void checkErrorFlags(const PreparedFunction &fn, std::span<const std::int64_t> values,
                       const CallShape &shape) const;

private:
  const artifact::Artifact *artifact_;
  std::vector<artifact::Expr> byteSizes_; ///< by buffer id
  std::map<std::string, PreparedFunction, std::less<>> functions_;
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_PLAN_H
