//===- BuildModel.h - xLSTM model IR from a ModelConfig ---------*- C++ -*-===//
//
// Builds the model-level IR of an mLSTM-only xLSTM language model: one `xlstm.parameter` per
// checkpoint tensor (names as in Hugging Face checkpoints, xlstm-7b.md §5.1) and a
// `func.func @forward(tokens, state_0..state_{L-1}) -> (logits, state_0'..state_{L-1}')` made of
// embedding, L × (mlstm_block, ffn_block), the output RMSNorm and the LM head.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_MODELS_IMPORT_BUILDMODEL_H
#define XLC_MODELS_IMPORT_BUILDMODEL_H

#include "runtime/config/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace xlc::models {

using config::ModelConfig;

enum class WeightDtype { BF16, F32 };

struct BuildOptions {
  /// Element type of weights and activations in the IR (the loader converts the checkpoint).
  WeightDtype weightDtype = WeightDtype::BF16;
};

/// Builds the module; the result verifies.
mlir::OwningOpRef<mlir::ModuleOp> buildModel(mlir::MLIRContext &context,
                                             const ModelConfig &config,
                                             const BuildOptions &options = {});

/// Figures computed from a model module (not from the config it came from).
struct ModelStats {
  int64_t parameters = 0;             ///< elements over all xlstm.parameter ops
  int64_t parameterBytes = 0;         ///< in the IR's weight element types
  int64_t parameterTensors = 0;
  int64_t stateBytesPerSequence = 0;  ///< recurrent state of all cells, one sequence
  int64_t mlstmCells = 0;             ///< mLSTM cells (composite blocks or bare cells)
  int64_t matmulParameters = 0;       ///< weights used as matrices after the embedding lookup
};

/// Walks |module| and totals parameters and recurrent state. The state size is read from the
/// `!xlstm.state` results of every mLSTM cell and block in @forward.
ModelStats computeModelStats(mlir::ModuleOp module);

} // namespace xlc::models

#endif // XLC_MODELS_IMPORT_BUILDMODEL_H
