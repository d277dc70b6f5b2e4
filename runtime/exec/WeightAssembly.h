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

#include <bit>
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

/// The product of a fold (a weight times its folded norm weight), as every path computes it:
/// the IEEE fp32 product v·s (round to nearest even, subnormals kept), except that a NaN result
/// is chosen by rule, not by the hardware (x86 returns an operand's payload, in an order the
/// compiler may swap; NVIDIA GPUs return 0x7fffffff): v quietened if v is a NaN, else s
/// quietened if s is, else (∞·0) the positive quiet NaN 0x7fc00000. The GPU's weight transform
/// (runtime/device/weight_transform.cuh fold_product) follows the same rule, so both uploads
/// are bit-identical.
inline float foldProduct(float v, float s) {
  const float p = v * s;
  if (p == p)
    return p;
  const std::uint32_t vb = std::bit_cast<std::uint32_t>(v), sb = std::bit_cast<std::uint32_t>(s);
  if ((vb & 0x7fffffffu) > 0x7f800000u)
    return std::bit_cast<float>(vb | 0x00400000u);
  if ((sb & 0x7fffffffu) > 0x7f800000u)
    return std::bit_cast<float>(sb | 0x00400000u);
  return std::bit_cast<float>(0x7fc00000u);
}

/// Where the sources of a binding go in its buffer (row-major, dims): the concatenation along
/// concatAxis. With outer = Π dims[0:axis], inner = Π dims[axis+1:] and rowOut = dims[axis]·inner,
/// source s contributes a contiguous run of runs[s] = (its extent along the axis)·inner elements
/// at columns[s] of each of the outer rows of rowOut elements, so its element j lands at
/// ⌊j / runs[s]⌋·rowOut + columns[s] + (j mod runs[s]).
struct ConcatLayout {
  std::vector<std::uint64_t> dims;
  std::uint64_t outer = 1, rowOut = 1;
  std::vector<std::uint64_t> runs, columns; ///< one per source
};

/// The layout of |binding|; throws naming the artifact and the buffer when the axis is out of
/// range or the sources do not fill a row exactly.
ConcatLayout concatLayout(const artifact::Artifact &artifact,
                          const artifact::WeightBinding &binding);

/// The fp32 contents of the buffer that |binding| fills (row-major, the buffer's shape), from
/// the tensors bindingSources names; folds multiply with foldProduct.
std::vector<float> assembleWeight(const artifact::Artifact &artifact,
                                  const artifact::WeightBinding &binding,
                                  const weights::Checkpoint &checkpoint);

/// The bytes of that buffer in its artifact dtype (f32 or bf16; else an error naming the buffer),
/// as the CUDA backend's host path stores it: assembleWeight's values rounded once (f32ToBF16),
/// except that without a fold the elements of a source stored in the buffer's own type keep
/// their stored bits (bf16 -> fp32 -> bf16 is the identity but for signalling NaNs, which it
/// quiets; a stored tensor is copied, not converted). The raw-bytes upload (WeightPieces.h)
/// produces exactly these bytes.
std::vector<std::uint8_t> assembleWeightBytes(const artifact::Artifact &artifact,
                                              const artifact::WeightBinding &binding,
                                              const weights::Checkpoint &checkpoint);

/// Total bytes of all weight buffers in their artifact dtypes.
std::uint64_t weightBytes(const artifact::Artifact &artifact);

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_WEIGHTASSEMBLY_H
