//===- WeightAssembly.h - Filling weight buffers from a checkpoint -*- C++ -*-===//
//
// An artifact's weight buffers are not checkpoint tensors one to one: the compiler fuses
// projections (the sources of a binding concatenated along an axis) and folds RMSNorm weights
// into the following projection (every row of the [out, in] matrix multiplied elementwise by the
// norm weight). This file checks a checkpoint against every binding before anything is allocated
// and computes each buffer's contents in fp32 (exact from F32, BF16, F16 sources; the product of
// a fold is computed in fp32). A backend that stores the buffer as bf16 rounds that fp32 value
// once; the CPU backend keeps it. Which tensor feeds the LM head of a model with tied
// embeddings is decided here too (see "Tied embeddings and the LM head" below).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_WEIGHTASSEMBLY_H
#define XLC_RUNTIME_EXEC_WEIGHTASSEMBLY_H

#include "runtime/artifact/Artifact.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::weights {
class Checkpoint;
}

namespace xlc::exec {

/// The checkpoint names of the input embedding table and of the LM head
/// (reference/xlstm-7b.md §5.1).
inline constexpr std::string_view kEmbeddingTensor = "backbone.embeddings.weight";
inline constexpr std::string_view kLmHeadTensor = "lm_head.weight";

// Tied embeddings and the LM head
// -------------------------------
// With tie_word_embeddings true the importer lets the LM head read the embedding's parameter
// (models/import/BuildModel.cpp), so the artifact binds the head's weight buffer to
// 'backbone.embeddings.weight'. Today that buffer is the head's own ('weight.embeddings.weight.
// scaled': out_norm is folded into it); an artifact that does not fold may share one buffer
// between the embedding lookup and the head. transformers 5, however, writes lm_head.weight into
// a tied checkpoint and, loading it, uses that tensor as the LM head: where the two differ, the
// embedding gives logits unrelated to transformers' (issue 10: relative error 1.0).
//
// Which checkpoint tensor fills a binding therefore depends on the checkpoint, and is decided
// here, once, by bindingSources(): a binding whose only source is the embedding and whose buffer
// is the weight of a GEMM is the tied LM head, and it reads lm_head.weight when the checkpoint
// has one, the embedding otherwise. checkWeights, assembleWeight (both backends, every binding)
// and describeLmHead (the --verbose line) all ask it, so they cannot disagree; the artifact stays
// as compiled (it says "tied", the checkpoint supplies the values, as in transformers). A stored
// lm_head.weight of the wrong shape or dtype is an error, never silently replaced by the
// embedding. Where one buffer serves both the lookup and the head it cannot hold two tensors: a
// stored lm_head.weight must then equal the embedding, or checkWeights refuses the checkpoint.

/// Whether |binding| is the LM head of a model with tied embeddings: its only source is
/// kEmbeddingTensor and its buffer is the weight (B operand) of a GEMM step.
bool isTiedLmHead(const artifact::Artifact &artifact, const artifact::WeightBinding &binding);

/// The checkpoint tensors that fill |binding|, one per binding.sources entry (same shapes):
/// binding.sources, except for a tied LM head with its own buffer when |checkpoint| holds
/// lm_head.weight, which reads that tensor instead of the embedding.
std::vector<std::string> bindingSources(const artifact::Artifact &artifact,
                                        const artifact::WeightBinding &binding,
                                        const weights::Checkpoint &checkpoint);

/// One line per LM head of |artifact| (a GEMM weight bound to lm_head.weight or, tied, to the
/// embedding) saying which checkpoint tensor it is read from and why; for --verbose output.
std::vector<std::string> describeLmHead(const artifact::Artifact &artifact,
                                        const weights::Checkpoint &checkpoint);

/// Checks that |checkpoint| holds every tensor the artifact's bindings read (bindingSources),
/// with the recorded shapes and a float dtype (F32, BF16, F16), and that every scale_columns_by
/// tensor is a vector of the buffer's column count. All problems are collected into one
/// xlc::Error naming the checkpoint, the artifact and each tensor (a tied LM head's
/// lm_head.weight also with the file that holds it).
void checkWeights(const artifact::Artifact &artifact, const weights::Checkpoint &checkpoint);

/// The fp32 contents of the buffer that |binding| fills (row-major, the buffer's shape), from
/// the tensors bindingSources names.
std::vector<float> assembleWeight(const artifact::Artifact &artifact,
                                  const artifact::WeightBinding &binding,
                                  const weights::Checkpoint &checkpoint);

/// Total bytes of all weight buffers in their artifact dtypes.
std::uint64_t weightBytes(const artifact::Artifact &artifact);

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_WEIGHTASSEMBLY_H
