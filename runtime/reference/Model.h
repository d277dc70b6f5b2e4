//===- Model.h - Configuration, weights and state of an xLSTM model -*- C++ -*-===//
//
// A generic description of an mLSTM-only xLSTM language model (the xLSTM 7B architecture,
// shared/reference/xlstm-7b.md §1–2) for the float64 reference: every size comes from
// ModelConfig, nothing is hard-coded to the 7B. Weights are float64 tensors in checkpoint layout
// (linear W is [out, in]), named by their Hugging Face checkpoint keys (§5.1, single-weight mode)
// so that a loader can fill them by name and error messages say which checkpoint tensor is wrong.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_REFERENCE_MODEL_H
#define XLC_RUNTIME_REFERENCE_MODEL_H

#include "runtime/reference/MlstmCell.h"
#include "runtime/reference/Tensor.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::ref {

/// Hyper-parameters. The defaults of the optional fields are the 7B's (§1.1); the sizes have no
/// defaults. For the 7B: embeddingDim 4096, numHeads 8, qkDim 2048, vDim 4096, ffnDim 10944,
/// numBlocks 32, vocabSize 50304.
struct ModelConfig {
  std::int64_t embeddingDim = 0; ///< d (HF hidden_size)
  std::int64_t numHeads = 0;     ///< NH
  std::int64_t qkDim = 0;        ///< NH·DQK (all heads together; d·qk_dim_factor rounded)
  std::int64_t vDim = 0;         ///< NH·DV
  std::int64_t ffnDim = 0;       ///< SwiGLU hidden size (already rounded up, e.g. 10944)
  std::int64_t numBlocks = 0;
  std::int64_t vocabSize = 0;

  double normEps = 1e-6;      ///< block pre-norms and the output RMSNorm (norm_eps)
  double layerNormEps = 1e-6; ///< multi-head LayerNorm after the cell (cell_norm_eps)
  double cellEps = 1e-6;      ///< mLSTM denominator eps (eps)
  std::optional<double> gateSoftCap = 15.0;        ///< applied to ĩ and f̃ pre-activations
  std::optional<double> outputLogitSoftCap = 30.0; ///< applied to the logits
  InputGate inputGate = InputGate::Exp;
  Normalizer normalizer = Normalizer::MaxAbs;
  bool addOutNorm = true;           ///< final RMSNorm before the LM head (add_out_norm)
  bool tieWordEmbeddings = false;   ///< LM head reuses the embedding table unless lmHead is set

  std::int64_t qkHeadDim() const { return qkDim / numHeads; } ///< DQK
  std::int64_t vHeadDim() const { return vDim / numHeads; }   ///< DV

  /// Throws xlc::Error naming the first field that is non-positive or inconsistent (e.g. qkDim
  /// not a multiple of numHeads, a non-positive eps or soft-cap).
  void validate() const;

  /// The cell attributes this config implies.
  MlstmCellAttrs cellAttrs() const { return {cellEps, inputGate, normalizer}; }
};

/// Weights of one block (§2.2–2.4, §5.1 key suffixes after "backbone.blocks.{i}.").
struct BlockWeights {
  Tensor normMlstm;     ///< norm_mlstm.weight [d]
  Tensor q;             ///< mlstm_layer.q.weight [qkDim, d]
  Tensor k;             ///< mlstm_layer.k.weight [qkDim, d]
  Tensor v;             ///< mlstm_layer.v.weight [vDim, d]
  Tensor ogate;         ///< mlstm_layer.ogate_preact.weight [vDim, d]
  Tensor igate;         ///< mlstm_layer.igate_preact.weight [NH, d]
  Tensor igateBias;     ///< mlstm_layer.igate_preact.bias [NH]
  Tensor fgate;         ///< mlstm_layer.fgate_preact.weight [NH, d]
  Tensor fgateBias;     ///< mlstm_layer.fgate_preact.bias [NH]
  Tensor multiheadNorm; ///< mlstm_layer.multihead_norm.weight [vDim]
  Tensor outProj;       ///< mlstm_layer.out_proj.weight [d, vDim]
  Tensor normFfn;       ///< norm_ffn.weight [d]
  Tensor ffnUpGate;     ///< ffn.proj_up_gate.weight [ffnDim, d] (the SiLU branch)
  Tensor ffnUp;         ///< ffn.proj_up.weight [ffnDim, d]
  Tensor ffnDown;       ///< ffn.proj_down.weight [d, ffnDim]
};

struct ModelWeights {
  Tensor embedding;                ///< backbone.embeddings.weight [V, d]
  std::vector<BlockWeights> blocks;
  Tensor outNorm;                  ///< backbone.out_norm.weight [d] (only if addOutNorm)
  /// lm_head.weight [V, d]. With tieWordEmbeddings: empty = the embedding is the head; set = a
  /// stored lm_head.weight, the head transformers 5 uses even when tied.
  Tensor lmHead;
};

/// One weight tensor as the config expects it: checkpoint key, shape, and where it lives.
struct WeightSlot {
  std::string name;
  Shape shape;
  Tensor *tensor;
};

/// Every tensor the config requires, in checkpoint order (embedding, blocks 0..N−1, out_norm,
/// lm_head), pointing into |weights|. Resizes weights.blocks to numBlocks. A loader fills each
/// slot by name; randomWeights fills them from a generator.
std::vector<WeightSlot> weightSlots(const ModelConfig &config, ModelWeights &weights);

/// Throws xlc::Error naming the checkpoint key of the first missing or mis-shaped tensor.
void validateWeights(const ModelConfig &config, const ModelWeights &weights);

/// Which initialisation randomWeights draws.
enum class InitScheme {
  /// The 7B's recipe in spirit but never zero, so that every tensor influences the output (tests
  /// and benchmarks): see randomWeights.
  Test,
  /// The 7B's recipe exactly (xlstm-7b.md §6.1, the start of training): Normal(0, √(2/(5d))) for
  /// embedding, q, k, v, FFN up/gate and lm_head; Normal(0, 2/(numBlocks·√d)) for out_proj and
  /// proj_down; zeros for the o-gate and the i/f-gate kernels; input-gate bias −10, forget-gate
  /// bias linspace(3, 6) over heads; norm weights 1.
  Xlstm7b,
};

/// How a checkpoint tensor is initialised: Normal(mean, stddev) (stddev 0: the constant mean),
/// plus for the forget-gate bias a ramp over the heads (3 + 3·h/(NH − 1)).
struct InitRule {
  double mean = 0.0, stddev = 1.0;
  bool headRamp = false;
  /// The ramp's value for element |index| of |count| (0 without a ramp).
  double offset(std::int64_t index, std::int64_t count) const;
};
InitRule initRule(const ModelConfig &config, std::string_view name,
                  InitScheme scheme = InitScheme::Test);

/// Random weights following the 7B initialisation (§6.1) in spirit, but never zero, so that every
/// tensor influences the output: Normal(0, √(2/(5d))) for embedding, q, k, v, o-gate, i/f-gate
/// kernels, FFN up/gate and lm_head; Normal(0, 2/(numBlocks·√d)) for out_proj and proj_down;
/// input-gate bias −10 + Normal(0, 1); forget-gate bias linspace(3, 6) over heads + Normal(0, 1);
/// norm weights 1 + Normal(0, 0.1). Deterministic in |seed| on every platform.
/// With InitScheme::Xlstm7b, the 7B's recipe exactly (see InitScheme).
ModelWeights randomWeights(const ModelConfig &config, std::uint64_t seed,
                           InitScheme scheme = InitScheme::Test);

/// Recurrent state of every block for a batch of sequences.
struct ModelState {
  std::vector<MlstmStates> blocks; ///< one per block; C [B,NH,DQK,DV], n [B,NH,DQK], m [B,NH]

  /// All zeros with m = 0: the state before the first token.
  static ModelState zeros(const ModelConfig &config, std::int64_t batch);
};

} // namespace xlc::ref

#endif // XLC_RUNTIME_REFERENCE_MODEL_H
