//===- TrainCheckpoint.h - Resumable training checkpoints -------*- C++ -*-===//
//
// What a training run saves so that a resumed run continues bit for bit (docs/plans/training.md,
// step 3; llm.c's pattern, shared/reference/training-anchors.md): a directory
//
//   model.safetensors       the trainable tensors under their checkpoint names, in their dtype:
//                           a Hugging Face model directory together with config.json
//   optimizer.safetensors   per tensor "<name>.exp_avg", "<name>.exp_avg_sq" (AdamW's moments,
//                           f32, or bf16 in the low-memory mode) and, when the run keeps one,
//                           "<name>.master" (f32 master copy)
//   trainer_state.json      {"format": "xlc-train-checkpoint", "version": 1, "step",
//                           "tokens_seen", "stream": {"epoch", "index"}, "data_seed", "run": {...}}
//   config.json             the model's configuration
//   COMPLETE                the completion marker, written last
//
// Writing is atomic at the directory level: everything goes into "<dir>.tmp" (each file fsynced),
// the marker last, then a previous "<dir>" is moved to "<dir>.prev", "<dir>.tmp" renamed to
// "<dir>" and "<dir>.prev" removed (the parent directory fsynced after each rename). A crash
// leaves "<dir>" complete, or no "<dir>" and a complete "<dir>.prev", which readTrainCheckpoint
// then reads. A directory without the marker is never read.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TRAIN_TRAINCHECKPOINT_H
#define XLC_RUNTIME_TRAIN_TRAINCHECKPOINT_H

#include "runtime/train/SequenceStream.h"
#include "runtime/weights/Safetensors.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::train {

/// One trainable tensor and its optimizer state. |weight| holds the working weight's values
/// (bf16-exact when dtype is BF16); |master| is empty when the run keeps no master copy.
struct ParameterState {
  std::string name;                  ///< the checkpoint tensor name
  std::vector<std::int64_t> shape;
  weights::DType dtype = weights::DType::F32; ///< of the working weight on disk: F32 or BF16
  std::vector<float> weight, master, m, v;
  /// Of both moments on disk: F32, or BF16 (their values must then be bf16-exact, as the
  /// low-memory mode's optimizer buffers hold them).
  weights::DType momentDtype = weights::DType::F32;
};

struct TrainerState {
  std::int64_t step = 0;             ///< optimizer steps taken
  std::uint64_t tokensSeen = 0;
  StreamPosition stream;             ///< where the next batch starts
  std::uint64_t dataSeed = 0;        ///< the stream's shuffle seed
  nlohmann::json run = nlohmann::json::object(); ///< the run's settings, checked on resume
  /// The lowest held-out loss so far and the step it was measured after (0: no evaluation yet);
  /// xlc-train --save-best keeps that step's weights in <run>/best.
  std::int64_t bestEvalStep = 0;
  double bestEvalLoss = 0.0;
};

struct TrainCheckpoint {
  std::vector<ParameterState> params;
  TrainerState state;
  std::string configJson;
  std::string directory; ///< what was read: <dir>, or <dir>.prev after an interrupted replace
};

/// A file the checkpoint carries beside the model, such as the run's tokenizer.json, so that the
/// directory is a model that xlc-run and transformers load as it is.
struct ExtraFile {
  std::string name; ///< a plain file name, not one the checkpoint writes itself
  std::string contents;
};

/// Writes the checkpoint directory |dir| atomically (file comment), with |extraFiles| inside it.
/// Throws xlc::Error naming the tensor or path on bad input (sizes that do not match the shape, a
/// bf16 weight that is not bf16-exact, a master copy of the wrong size, an extra file's name
/// that is not a plain name or is one of the checkpoint's own) or on I/O failure; a failed write
/// leaves any previous checkpoint at |dir| as it was.
void writeTrainCheckpoint(const std::string &dir, std::span<const ParameterState> params,
                          const TrainerState &state, std::string_view configJson,
                          std::span<const ExtraFile> extraFiles = {});

/// Reads a checkpoint written by writeTrainCheckpoint (from "<dir>.prev" when "<dir>" is missing
/// after an interrupted replace). Throws xlc::Error naming the directory or file when the marker
/// is missing, a file is malformed, or the optimizer tensors do not match the model's.
TrainCheckpoint readTrainCheckpoint(const std::string &dir);

} // namespace xlc::train

#endif // XLC_RUNTIME_TRAIN_TRAINCHECKPOINT_H
