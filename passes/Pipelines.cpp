//===- Pipelines.cpp - Named pass pipelines -------------------------------===//
//
// The phases of compilation as named pipelines, so each can be replayed in xlc-opt:
//
//   xlc-fusion-pipeline     model-level IR -> fused model-level IR
//                           (decompose, fuse projections, fold norm weights, fuse cell gates)
//   xlc-kernel-pipeline     fused model-level IR -> xk kernels with tile configurations
//   xlc-inference-pipeline  both
//   xlc-training-pipeline   both, with xlc-autodiff's @train_step (before the norm weights are
//                           folded, which leaves @train_step's norms alone)
//
// The pass manager runs the IR verifier after every pass; the kernel pipeline ends with
// xlc-verify-kernel-form, the seam codegen relies on.
//
//===----------------------------------------------------------------------===//

#include "passes/Pipelines.h"

#include "passes/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace xlc {

void buildFusionPipeline(mlir::OpPassManager &pm) {
  pm.addPass(createDecomposeBlocks());
  pm.addPass(createFuseProjections());
  pm.addPass(createFoldNormWeights());
  pm.addPass(createFuseCellGates());
  pm.addPass(mlir::createCanonicalizerPass());
}

void buildKernelPipeline(mlir::OpPassManager &pm) {
  pm.addPass(createLowerToKernels());
  pm.addPass(createUniformGemmOperands());
  pm.addPass(createAssignTileConfigs());
  pm.addPass(mlir::createCSEPass());
  pm.addPass(createVerifyKernelForm());
}

void buildInferencePipeline(mlir::OpPassManager &pm) {
  buildFusionPipeline(pm);
  buildKernelPipeline(pm);
}

void buildTrainingFusionPipeline(mlir::OpPassManager &pm) {
  pm.addPass(createDecomposeBlocks());
  pm.addPass(createFuseProjections());
  pm.addPass(createFuseCellGates());
  pm.addPass(createAutodiff());
  pm.addPass(createFoldNormWeights());
  pm.addPass(mlir::createCanonicalizerPass());
}

void buildTrainingPipeline(mlir::OpPassManager &pm) {
  buildTrainingFusionPipeline(pm);
  buildKernelPipeline(pm);
}

void registerXlcPipelines() {
  mlir::PassPipelineRegistration<>(
      "xlc-fusion-pipeline",
      "Decomposes blocks and applies the model-level fusions (projections, norm weights, gates).",
      buildFusionPipeline);
  mlir::PassPipelineRegistration<>(
      "xlc-kernel-pipeline",
      "Forms kernels for @prefill, @decode_step and @score and assigns their tile configurations.",
      buildKernelPipeline);
  mlir::PassPipelineRegistration<>(
      "xlc-inference-pipeline",
      "Model-level IR to kernel-level IR: the fusion pipeline, then the kernel pipeline.",
      buildInferencePipeline);
  mlir::PassPipelineRegistration<>(
      "xlc-training-pipeline",
      "The inference pipeline plus @train_step: xlc-autodiff after the fusions that keep "
      "gradients recoverable, before norm-weight folding; then kernel formation for all.",
      buildTrainingPipeline);
}

} // namespace xlc
