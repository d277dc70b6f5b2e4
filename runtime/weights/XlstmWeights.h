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
//   lm_head.weight                                      [vocab, d]   (optional when tied)
//
// The widths (qk, v, ffn) and every config.json rule live in runtime/config/ModelConfig.h: the
// weight checks read config.json with the same reader as the importer and the reference.
//
// With tie_word_embeddings, transformers 5 still stores lm_head.weight and uses it as the LM
// head, so a stored one is checked like any other tensor and is the head the runtime reads
// (runtime/exec/WeightAssembly.h); only its absence makes the embedding the head.
//
// use_bias adds a bias to every linear layer and norm of a block; weight_mode "fused" stores
// q|k|v|ogate as `qkv_opreact`, i|f gates as `ifgate_preact` and the FFN up projections as
// `proj_up_gate_z`. transformers' xLSTMModel creates out_norm whatever add_out_norm says, so
// with add_out_norm false the tensor is optional rather than unexpected.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_WEIGHTS_XLSTMWEIGHTS_H
#define XLC_RUNTIME_WEIGHTS_XLSTMWEIGHTS_H

#include "runtime/config/ModelConfig.h"
#include "runtime/weights/Expected.h"

#include <string>
#include <vector>

namespace xlc::weights {

/// The tensors of an xLSTMForCausalLM checkpoint with |config| (validated first), in model
/// order, each accepting |dtypes| (by default the float types the runtime converts: F32, BF16,
/// F16). use_bias and weight_mode "fused" change the list; add_out_norm false makes out_norm
/// optional.
std::vector<ExpectedTensor> xlstmExpectedTensors(const config::ModelConfig &config,
                                                 std::vector<DType> dtypes = {
                                                     DType::F32, DType::BF16, DType::F16});

/// The entry point of the weight checks (xlc-dump --weights): reads the config.json at |path|
/// with config::loadModelConfig (every error names the file and the field) and returns the
/// tensors it expects; the parsed config goes to |parsed| when given.
std::vector<ExpectedTensor>
xlstmExpectedTensorsForConfigFile(const std::string &path, config::ModelConfig *parsed = nullptr);

} // namespace xlc::weights

#endif // XLC_RUNTIME_WEIGHTS_XLSTMWEIGHTS_H
