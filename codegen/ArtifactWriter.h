//===- ArtifactWriter.h - Kernel-level IR to an artifact --------*- C++ -*-===//
//
// Turns a module after xlc-inference-pipeline (functions @prefill, @decode_step and, when
// present, @score, of xk ops) into an artifact::Artifact: weight buffers with their bindings to
// checkpoint tensors (fused and folded weights say how they are assembled), persistent state
// buffers shared by all functions,
// activation and workspace buffers placed in one arena by liveness (ArenaPlanner), kernels emitted
// per family and deduplicated, and every function as ordered steps that also name the op they
// compute, so the CPU backend can run the same plan.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_CODEGEN_ARTIFACTWRITER_H
#define XLC_CODEGEN_ARTIFACTWRITER_H

#include "runtime/artifact/Artifact.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"

#include <string>

namespace xlc::codegen {

/// How @train_step's artifact keeps gradients and optimizer state (docs/plans/training.md).
enum class TrainingPrecision {
  /// fp32 gradients, fp32 AdamW moments, an fp32 master copy of every bf16 parameter.
  Standard,
  /// What fits the 7B on one 80 GB GPU: the gradients that only GEMMs write (the projection
  /// matrices, the LM head) in bf16, bf16 moments, no master copies; every bf16 store of the
  /// optimizer rounds stochastically.
  LowMemory,
};

struct CodegenOptions {
  std::string arch = "sm_90a";
  std::string compilerVersion = "0.1.0";
  TrainingPrecision trainingPrecision = TrainingPrecision::Standard;
};

/// Builds the artifact; emits diagnostics and fails on anything it cannot compile.
mlir::FailureOr<artifact::Artifact> buildArtifact(mlir::ModuleOp module,
                                                  const CodegenOptions &options);

} // namespace xlc::codegen

#endif // XLC_CODEGEN_ARTIFACTWRITER_H
