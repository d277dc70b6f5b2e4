//===- XlstmWeights.h - The tensors of an xLSTM checkpoint ------*- C++ -*-===//
//
// The names and shapes of the weights of a Hugging Face `xLSTMForCausalLM` (transformers'
// modeling_xlstm.py, the layout of NX-AI/xLSTM-7b; reference/xlstm-7b.md §5.1), computed from
// the handful of config.json fields that determine them. Shapes of linear layers are [out, in].
//
//   backbone.embeddings.weight                          [vocab, d]
//   backbone.blocks.{i}.norm_mlstm.weight               [d]
//   backbone.blocks.{i}.mlstm_layer.q.weight            [qk, d]      (k likewise)
//   backbone.blocks.{i}.mlstm_layer.v.weight            [v, d]       (ogate_preact likewise)
//   backbone.blocks.{i}.mlstm_layer.igate_preact.weight [heads, d]   + .bias [heads] (fgate too)
//   backbone.blocks.{i}.mlstm_layer.multihead_norm.weight [v]
//   backbone.blocks.{i}.mlstm_layer.out_proj.weight     [d, v]
//   backbone.blocks.{i}.norm_ffn.weight                 [d]
//   backbone.blocks.{i}.ffn.proj_up_gate.weight         [ffn, d]     (proj_up likewise)
//   backbone.blocks.{i}.ffn.proj_down.weight            [d, ffn]
//   backbone.out_norm.weight                            [d]
//   lm_head.weight                                      [vocab, d]   (not stored when tied)
//
// Widths, exactly as the modules that create the weights compute them:
//   qk  = int(d * qk_dim_factor), v = int(d * v_dim_factor)     (xLSTMLayer, and xlstm's
//         mLSTMLayer; xLSTMConfig.qk_dim rounds up to 64 instead, which agrees whenever
//         d * factor is a multiple of 64, as for every published config)
//   ffn = round_up_to_next_multiple_of(d * ffn_proj_factor, ffn_round_up_to_multiple_of),
//         i.e. int(((x + m - 1) // m) * m) on the Python float x (7B: 10924.03 -> 10944)
//
// use_bias adds a bias to every linear layer and norm of a block; weight_mode "fused" stores
// q|k|v|ogate as `qkv_opreact`, i|f gates as `ifgate_preact` and the FFN up projections as
// `proj_up_gate_z`. transformers' xLSTMModel creates out_norm whatever add_out_norm says, so
// with add_out_norm false the tensor is optional rather than unexpected.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_WEIGHTS_XLSTMWEIGHTS_H
#define XLC_RUNTIME_WEIGHTS_XLSTMWEIGHTS_H

#include "runtime/weights/Expected.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::weights {

enum class XlstmWeightMode { Single, Fused };

/// The config.json fields that determine the checkpoint's tensors; defaults are xLSTM 7B's.
struct XlstmConfig {
  std::int64_t embeddingDim = 4096; ///< embedding_dim / hidden_size
  std::int64_t numHeads = 8;
  double qkDimFactor = 0.5;
  double vDimFactor = 1.0;
  double ffnProjFactor = 2.667;
  std::int64_t ffnRoundUpToMultipleOf = 64;
  std::int64_t numBlocks = 32; ///< num_blocks / num_hidden_layers
  std::int64_t vocabSize = 50304;
  bool tieWordEmbeddings = false;
  bool addOutNorm = true;
  bool useBias = false;
  XlstmWeightMode weightMode = XlstmWeightMode::Single;

  std::int64_t qkDim() const;
  std::int64_t vDim() const;
  std::int64_t ffnDim() const;

  /// Throws xlc::Error naming the field when a size is not positive, a width is not a multiple
  /// of the head count, or the tensors would be absurdly large.
  void validate() const;

  /// "xLSTM d=4096, 32 blocks, 8 heads (qk 2048, v 4096), ffn 10944, vocab 50304, untied"
  std::string summary() const;

  /// Reads a transformers config.json (either field spelling; missing fields take the
  /// defaults of transformers' xLSTMConfig). Throws naming |source| and the field on a wrong
  /// type, a model_type other than "xlstm", or disagreeing aliases. The result is validated.
  static XlstmConfig fromHfConfigJson(std::string_view jsonText, std::string_view source);
  static XlstmConfig fromHfConfigFile(const std::string &path);
};

/// Python's round_up_to_next_multiple_of(x, m) for a float x: int(((x + m - 1) // m) * m).
std::int64_t roundUpToMultipleOf(double x, std::int64_t multiple);

/// The tensors of an xLSTMForCausalLM checkpoint with |config|, in model order, each accepting
/// |dtypes| (by default the float types the runtime converts: F32, BF16, F16).
std::vector<ExpectedTensor> xlstmExpectedTensors(const XlstmConfig &config,
                                                 std::vector<DType> dtypes = {
                                                     DType::F32, DType::BF16, DType::F16});

} // namespace xlc::weights

#endif // XLC_RUNTIME_WEIGHTS_XLSTMWEIGHTS_H
