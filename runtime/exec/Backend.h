//===- Backend.h - Executing a compiled model's functions --------*- C++ -*-===//
//
// A Backend runs the functions of one validated artifact (`prefill`, `decode_step`) on one
// device: the CPU backend interprets each step's op and attributes in fp32 (the oracle of the GPU
// tests, and the fallback without a GPU); the CUDA backend launches the artifact's kernels
// (NVRTC, disk-cached) and runs its GEMMs through cuBLASLt.
//
// Sequences live in *slots*. A backend is created for at most `maxBatch` slots and at most
// `maxSeq` tokens per sequence per call (the arena is planned at those limits). Every slot owns
// one recurrent state per mLSTM block (C, n, m in the artifact's state dtypes). A call runs one
// function on the contiguous slots [firstSlot, firstSlot + batch), each fed `seq` tokens; the
// state of those slots is read and updated in place, the other slots are untouched. So a prompt
// can be fed in pieces (the state carries across calls, exactly), and sequences of different
// lengths are batched by the caller (runtime/exec/Generator.h).
//
// Logits come back in fp32: for every position ([batch, seq, V], row b·seq + t) or only for the
// last position of each sequence ([batch, V]).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_BACKEND_H
#define XLC_RUNTIME_EXEC_BACKEND_H

#include "runtime/artifact/Artifact.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::weights {
class Checkpoint;
}

namespace xlc::exec {

/// The sizes a backend is prepared for.
struct Limits {
  std::uint64_t maxBatch = 1; ///< sequence slots
  std::uint64_t maxSeq = 1;   ///< tokens per sequence in one call
};

/// Which positions' logits a call returns.
enum class Logits : std::uint8_t { LastPosition, AllPositions };

class Backend {
public:
  virtual ~Backend() = default;

  /// "cpu" or "cuda".
  virtual std::string_view kind() const = 0;
  /// One line for humans: the device, threads, memory.
  virtual std::string description() const = 0;

  const artifact::Artifact &artifact() const { return *artifact_; }
  const Limits &limits() const { return limits_; }
  std::uint64_t vocabSize() const { return artifact_->model.vocabSize; }

  /// Sets the state of slots [firstSlot, firstSlot + count) to the state before the first token
  /// (C = 0, n = 0, m = 0). Throws xlc::Error when the range exceeds maxBatch.
  virtual void resetStates(std::uint64_t firstSlot, std::uint64_t count) = 0;

  /// Runs |function| ("prefill" or "decode_step"; decode_step needs seq == 1) on slots
  /// [firstSlot, firstSlot + batch), |tokens| row-major [batch, seq]. |logits| must hold
  /// batch·V (LastPosition) or batch·seq·V (AllPositions) floats. Throws xlc::Error naming the
  /// function and the offending value on bad sizes or a token id outside [0, V) (the state of
  /// the slots is then unspecified; reset them).
  virtual void run(std::string_view function, std::uint64_t firstSlot, std::uint64_t batch,
                   std::uint64_t seq, std::span<const std::int32_t> tokens,
                   std::span<float> logits, Logits which = Logits::LastPosition) = 0;

  /// Copies one state buffer of one slot to the host as fp32 (for tests and debugging):
  /// |stateIndex| indexes the artifact's state buffers in id order (C, n, m of block 0, ...).
  virtual std::vector<float> readState(std::uint64_t slot, std::size_t stateIndex) = 0;

protected:
  Backend(const artifact::Artifact &artifact, Limits limits)
      : artifact_(&artifact), limits_(limits) {}

  /// Checks the common preconditions of run(): a known function, 1 ≤ batch, slots in range,
  /// 1 ≤ seq ≤ maxSeq (seq == 1 for decode_step), token and logit counts. Returns the function.
  const artifact::Function &checkRun(std::string_view function, std::uint64_t firstSlot,
                                     std::uint64_t batch, std::uint64_t seq,
                                     std::span<const std::int32_t> tokens,
                                     std::span<float> logits, Logits which) const;
  /// Throws unless [firstSlot, firstSlot + count) lies within maxBatch.
  void checkSlots(std::uint64_t firstSlot, std::uint64_t count, std::string_view what) const;

private:
  const artifact::Artifact *artifact_;
  Limits limits_;
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_BACKEND_H
