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

struct CodegenOptions {
  std::string arch = "sm_90a";
  std::string compilerVersion = "0.1.0";
};

/// Builds the artifact; emits diagnostics and fails on anything it cannot compile.
mlir::FailureOr<artifact::Artifact> buildArtifact(mlir::ModuleOp module,
                                                  const CodegenOptions &options);

} // namespace xlc::codegen

#endif // XLC_CODEGEN_ARTIFACTWRITER_H
