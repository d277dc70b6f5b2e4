//===- Pipelines.h - Named pass pipelines -----------------------*- C++ -*-===//
#ifndef XLC_PASSES_PIPELINES_H
#define XLC_PASSES_PIPELINES_H

#include "mlir/Pass/PassManager.h"

namespace xlc {

/// Model-level fusions: decompose blocks, fuse projections, fold norm weights, fuse cell gates.
void buildFusionPipeline(mlir::OpPassManager &pm);

/// Kernel formation (@prefill, @decode_step, @score) and tile configuration.
void buildKernelPipeline(mlir::OpPassManager &pm);

/// Fusion, then kernel formation: model-level IR to kernel-level IR.
void buildInferencePipeline(mlir::OpPassManager &pm);

/// The training pipeline's model-level part (everything before kernel formation).
void buildTrainingFusionPipeline(mlir::OpPassManager &pm);

/// The inference pipeline with @train_step: decompose, fuse projections and cell gates,
/// xlc-autodiff, then fold the norm weights (into the inference functions' projections only:
/// @train_step's norms keep their checkpoint weights and gradients) and the kernel pipeline.
void buildTrainingPipeline(mlir::OpPassManager &pm);

/// Registers the named pipelines with the global pass registry (for xlc-opt).
void registerXlcPipelines();

} // namespace xlc

#endif // XLC_PASSES_PIPELINES_H
