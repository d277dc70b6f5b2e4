//===- Backend.h - Executing a compiled model's functions --------*- C++ -*-===//
//
// A Backend is an executable: one validated artifact (a Plan, runtime/exec/Plan.h) on one
// device, with the buffer sets that outlive a call: the recurrent states of every sequence
// slot, the weights and trainable parameters (and, for training artifacts, gradients and
// optimizer state). The CPU backend interprets each launch with its kernel family's CPU
// implementation in fp32 (the oracle of the GPU tests, and the fallback without a GPU); the CUDA
// backend launches the artifact's kernels (NVRTC, disk-cached) and runs its GEMMs on cuBLASLt.
// Both run the plan through the one executor in Plan.h.
//
// The generic entry is call(function, named host buffers): inputs by the function's input
// names (bytes in the artifact's dtype), float outputs by name (returned as fp32, every row or
// the last position of each sequence), scalars by name. The model functions keep a thin
// wrapper, run(), for the generator: token ids in, logits out. `prefill` (generation) returns
// the logits of the last position of each sequence only, `score` those of every position,
// `decode_step` those of its one token (docs/artifact.md).
//
// Generation draws its tokens through the same call (CallArgs::draw, run()'s last argument):
// one token per active sequence from the last-position logits, with the host sampler's exact
// rules (Sampler.h). Only the draws come back; the logits are downloaded only when the call also
// asks for them. By default a backend downloads the rows and draws on the host (prepareDraw /
// finishDraw); the CUDA backend draws on the GPU (cuda/DeviceSampler.h), so a decode step copies
// 16 bytes per sequence back instead of V floats.
//
// Sequences live in *slots*. A backend is created for at most `maxBatch` slots and at most
// `maxSeq` tokens per sequence per call (the arena is planned at those limits). A call runs one
// function on the contiguous slots [firstSlot, firstSlot + batch), each fed `seq` tokens; the
// state of those slots is read and updated in place, the other slots are untouched.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_BACKEND_H
#define XLC_RUNTIME_EXEC_BACKEND_H

#include "runtime/artifact/Artifact.h"
#include "runtime/exec/Plan.h"
#include "runtime/exec/Sampler.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::weights {
class Checkpoint;
}

namespace xlc::exec {

/// The sizes and functions a backend is prepared for.
struct Limits {
  std::uint64_t maxBatch = 1; ///< sequence slots
  std::uint64_t maxSeq = 1;   ///< tokens per sequence in one call
  /// The functions the backend may call. Only their inputs and outputs are allocated (at
  /// maxBatch, maxSeq), so a generator that names "prefill" and "decode_step" holds B·V logits,
  /// not the B·S·V of "score". Empty: every function of the artifact.
  std::vector<std::string> functions = {};
};

/// Which rows of an output a call returns: of an output [B, S, ...] (every position) the last
/// position of each sequence or all rows; an output [B, 1, ...] (the last position only, as
/// `prefill` returns its logits) has one row per sequence, which is what LastPosition asks for
/// (AllPositions only when S = 1).
enum class Logits : std::uint8_t { LastPosition, AllPositions };

/// A float output the caller wants back as fp32.
struct OutputRequest {
  std::span<float> data;
  Logits rows = Logits::AllPositions;
};

/// One sequence's draw in a call.
struct DrawRow {
  std::uint64_t stream = 0; ///< the sampler's stream (uniformDraw)
  std::uint64_t step = 0;   ///< which generated token of the sequence this is
  bool active = false;      ///< false: nothing is drawn for this sequence (its Draw stays empty)
};

/// Generation's draw in a call: one token per active sequence from the last-position row of the
/// function's first output (the logits), with |options| (validated by the call).
struct DrawRequest {
  SamplingOptions options;
  std::span<const DrawRow> rows; ///< one per sequence of the call
  std::span<Draw> results;       ///< out: one per sequence (inactive ones: Draw{})
};

/// One call's arguments, by the function's names.
struct CallArgs {
  std::uint64_t firstSlot = 0, batch = 1, seq = 1;
  std::map<std::string, std::span<const std::byte>, std::less<>> inputs;
  std::map<std::string, OutputRequest, std::less<>> outputs;
  std::map<std::string, double, std::less<>> scalars;
  /// Sees every step (tests); the call then runs eagerly.
  StepObserver *observer = nullptr;
  /// Draws a token per active sequence after the function ran (generation).
  const DrawRequest *draw = nullptr;
};

/// A tensor in the checkpoint's layout, fp32.
struct NamedTensor {
  std::string name;
  std::vector<std::uint64_t> shape;
  std::vector<float> values;
};

class Backend {
public:
  virtual ~Backend() = default;

  /// "cpu" or "cuda".
  virtual std::string_view kind() const = 0;
  /// One line for humans: the device, threads, memory.
  virtual std::string description() const = 0;

  const Plan &plan() const { return plan_; }
  const artifact::Artifact &artifact() const { return plan_.artifact(); }
  const Limits &limits() const { return limits_; }
  /// Whether |function| is one this backend was created to call (Limits::functions).
  bool prepared(std::string_view function) const;
  /// By buffer id: whether a step, input, output or state of a function this backend may call
  /// touches the buffer. A training backend (train_step, grad_norm, optimizer_step) reads none of
  /// the folded weights of the inference functions, and the CUDA backend then allocates none.
  std::vector<bool> buffersInUse() const;
  /// The stream a call enqueues its steps on, as an integer (the CUDA backend's CUstream); 0 for
  /// a backend whose steps have finished when StepObserver::afterStep runs (the CPU backend). An
  /// observer may enqueue work there between steps: xlc-bench records timing events around each.
  virtual std::uint64_t nativeStream() const { return 0; }
  std::uint64_t vocabSize() const { return artifact().model.vocabSize; }

  /// Runs |function| on slots [firstSlot, firstSlot + batch): every input of the function must
  /// be given (its bytes at the call's size in the artifact's dtype), outputs are optional (a
  /// float output's fp32 rows), and every scalar must be given. Throws xlc::Error naming the
  /// function and the offending name or size, or the step that reported an error (the state of
  /// the slots is then unspecified; reset them).
  void call(std::string_view function, const CallArgs &args);

  /// The generator's entry: |function| ("prefill", "decode_step" or "score"; decode_step needs
  /// seq == 1) from token ids [batch, seq] to logits (batch·V floats for LastPosition,
  /// batch·seq·V for AllPositions, which needs a function that returns every position:
  /// "score"; an empty span: the logits are not returned), and with |draw| a token drawn per
  /// active sequence. Token ids outside [0, V) are refused before anything runs.
  void run(std::string_view function, std::uint64_t firstSlot, std::uint64_t batch,
           std::uint64_t seq, std::span<const std::int32_t> tokens, std::span<float> logits,
           Logits which = Logits::LastPosition, const DrawRequest *draw = nullptr);

  /// Sets the state of slots [firstSlot, firstSlot + count) to the state before the first token
  /// (C = 0, n = 0, m = 0). Throws xlc::Error when the range exceeds maxBatch.
  virtual void resetStates(std::uint64_t firstSlot, std::uint64_t count) = 0;

  /// Copies one state buffer of one slot to the host as fp32 (for tests and debugging):
  /// |stateIndex| indexes the artifact's state buffers in id order (C, n, m of block 0, ...).
  virtual std::vector<float> readState(std::uint64_t slot, std::size_t stateIndex) = 0;

  /// The fp32 contents of a weight or parameter buffer.
  virtual std::vector<float> readBoundBuffer(artifact::BufferId id) = 0;

  /// A float buffer's elements at |shape| as fp32 (arena buffers at that call's offsets, state
  /// buffers from slot shape.firstSlot on), and the way back (rounded to the buffer's dtype).
  /// For tests and debugging, also from inside a StepObserver's hooks.
  virtual std::vector<float> readBuffer(artifact::BufferId id, const CallShape &shape) = 0;
  virtual void writeBuffer(artifact::BufferId id, const CallShape &shape,
                           std::span<const float> values) = 0;

  /// The checkpoint tensors behind every binding that can be inverted (fusion concatenations are
  /// split back; a folded norm cannot be, so weight buffers with scale_columns_by are skipped —
  /// parameter buffers never fold). With |parametersOnly| only parameter-class buffers.
  std::vector<NamedTensor> exportParameters(bool parametersOnly = true);

  /// The gradients a training function accumulated (its gradient buffers), split into the
  /// checkpoint's tensors through their parameters' bindings, as exportParameters splits the
  /// parameters: one tensor per checkpoint tensor a gradient covers, named as in the checkpoint.
  std::vector<NamedTensor> exportGradients();

  /// Sets every gradient buffer to zero (a training step's gradients accumulate until then).
  void zeroGradients();

  /// The optimizer buffers of |role| split into the checkpoint's tensors, as exportGradients
  /// splits the gradients (AdamW's moments, the f32 master copies).
  std::vector<NamedTensor> exportOptimizerState(artifact::OptimizerRole role);

  /// Writes checkpoint tensors back into the buffers they make up, the inverse of the exports:
  /// every parameter buffer (|role| empty) or every optimizer buffer of |role|, assembled from
  /// |tensors| by the checkpoint names of its parameter's binding (a resumed training run).
  /// Throws xlc::Error naming a missing tensor or one of the wrong size.
  void importTensors(std::optional<artifact::OptimizerRole> role,
                     const std::map<std::string, std::span<const float>, std::less<>> &tensors);

protected:
  Backend(const artifact::Artifact &artifact, Limits limits);

  /// Fills every master-copy optimizer buffer from its parameter (the working weight, as
  /// loaded): the one optimizer buffer that does not start at zero. Backends call it once
  /// their bound buffers are loaded.
  void fillMasterCopies();

  /// The binding that says which checkpoint tensors a parameter buffer, or the gradient or
  /// optimizer buffer of one, holds. Throws xlc::Error naming the buffer when there is none.
  const artifact::WeightBinding &bindingOf(const artifact::Buffer &buffer) const;

  /// Throws unless [firstSlot, firstSlot + count) lies within maxBatch.
  void checkSlots(std::uint64_t firstSlot, std::uint64_t count, std::string_view what) const;
  /// Throws unless |shape| is one a call could have: slots within maxBatch, 1 ≤ seq ≤ maxSeq.
  void checkShape(const CallShape &shape, std::string_view what) const;

  // What a backend does in a call (Backend::call does the checks and the order).
  virtual const Memory &memory() const = 0;
  /// Copies |bytes| (artifact dtype) into input buffer |dst|.
  virtual void uploadInput(const BufferRef &dst, std::span<const std::byte> bytes) = 0;
  /// Runs the function (Plan::execute with the backend's handlers) and waits for it; returns
  /// the values of the function's error flags.
  virtual std::vector<std::int64_t> execute(const PreparedFunction &fn, const CallShape &shape,
                                            std::span<const double> scalars,
                                            StepObserver *observer) = 0;
  /// Copies |rows| rows of |rowElements| elements starting at row |firstRow| of float buffer
  /// |src| to |out| as fp32.
  virtual void downloadRows(const BufferRef &src, std::uint64_t firstRow, std::uint64_t rows,
                            std::uint64_t rowElements, float *out) = 0;

  /// Where a draw reads: row b of the call (b < batch) is the |elements| values (V) starting at
  /// element first + b·stride of |buffer| (the function's first output, resolved for the call).
  struct DrawSource {
    BufferRef buffer;
    std::uint64_t first = 0, stride = 0, elements = 0;
  };
  /// A call with a draw (CallArgs::draw): prepareDraw() runs before execute(), finishDraw() after
  /// it, the error flags and the outputs; finishDraw() fills draw.results. The defaults download
  /// the rows and draw on the host with Sampler; a backend that draws where the logits are
  /// overrides both.
  virtual void prepareDraw(const DrawSource &source, const CallShape &shape,
                           const DrawRequest &draw);
  virtual void finishDraw(const DrawSource &source, const CallShape &shape,
                          const DrawRequest &draw);

  Plan plan_;

private:
  Limits limits_;
  std::vector<float> drawRows_; ///< the default finishDraw's host copy of the logits
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_BACKEND_H
