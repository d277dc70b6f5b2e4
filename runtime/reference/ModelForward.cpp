//===- ModelForward.cpp - float64 reference of the xLSTM forward pass -----===//

#include "runtime/reference/ModelForward.h"

#include "runtime/reference/BlockOps.h"
#include "runtime/support/Error.h"

namespace xlc::ref {

Tensor mlstmLayer(const Tensor &xNorm, const BlockWeights &weights, const ModelConfig &config,
                  MlstmStates &state, const MlstmSchedule &schedule) {
  check(xNorm.rank() == 3 && xNorm.dim(2) == config.embeddingDim,
        "mLSTM layer: input must be [B, S, {}], got {}", config.embeddingDim,
        shapeString(xNorm.shape));
  check(schedule.form != MlstmForm::Parallel,
        "mLSTM layer: the parallel form cannot carry state; use recurrent or chunkwise");
  Tensor q = linear(xNorm, weights.q);
  Tensor k = linear(xNorm, weights.k);
  Tensor v = linear(xNorm, weights.v);
  Tensor oPre = linear(xNorm, weights.ogate);
  Tensor iPre = linear(xNorm, weights.igate, &weights.igateBias);
  Tensor fPre = linear(xNorm, weights.fgate, &weights.fgateBias);
  if (config.gateSoftCap) {
    iPre = softCap(iPre, *config.gateSoftCap);
    fPre = softCap(fPre, *config.gateSoftCap);
  }
  MlstmCellResult cell = mlstmCell(q, k, v, iPre, fPre, config.numHeads, &state,
                                   config.cellAttrs(), schedule);
  state = std::move(cell.state);
  Tensor hNorm =
      multiHeadLayerNorm(cell.h, weights.multiheadNorm, config.numHeads, config.layerNormEps);
  return linear(outputGate(oPre, hNorm), weights.outProj);
}

Tensor mlstmBlock(const Tensor &x, const BlockWeights &weights, const ModelConfig &config,
                  MlstmStates &state, const MlstmSchedule &schedule) {
  Tensor xNorm = rmsNorm(x, weights.normMlstm, config.normEps);
  return add(x, mlstmLayer(xNorm, weights, config, state, schedule));
}

Tensor ffn(const Tensor &xNorm, const BlockWeights &weights) {
  Tensor gate = linear(xNorm, weights.ffnUpGate);
  Tensor up = linear(xNorm, weights.ffnUp);
  return linear(swiglu(gate, up), weights.ffnDown);
}

Tensor ffnBlock(const Tensor &x, const BlockWeights &weights, const ModelConfig &config) {
  return add(x, ffn(rmsNorm(x, weights.normFfn, config.normEps), weights));
}

Tensor modelForward(const ModelConfig &config, const ModelWeights &weights,
                    std::span<const std::int64_t> tokens, std::int64_t batch, std::int64_t seq,
                    ModelState &state, const MlstmSchedule &schedule) {
  validateWeights(config, weights);
  check(batch >= 0 && seq >= 0, "model forward: batch {} and seq {} must be non-negative", batch,
        seq);
  check(static_cast<std::int64_t>(state.blocks.size()) == config.numBlocks,
        "model forward: state has {} blocks, config has num_blocks {}", state.blocks.size(),
        config.numBlocks);
  for (std::int64_t i = 0; i < config.numBlocks; ++i)
    state.blocks[static_cast<std::size_t>(i)].checkShapes(
        batch, config.numHeads, config.qkHeadDim(), config.vHeadDim(),
        fmt::format("model forward: state of block {}", i));

  Tensor x = embedding(weights.embedding, tokens, {batch, seq});
  for (std::int64_t i = 0; i < config.numBlocks; ++i) {
    const BlockWeights &block = weights.blocks[static_cast<std::size_t>(i)];
    x = mlstmBlock(x, block, config, state.blocks[static_cast<std::size_t>(i)], schedule);
    x = ffnBlock(x, block, config);
  }
  if (config.addOutNorm)
    x = rmsNorm(x, weights.outNorm, config.normEps);
  // Tied: the embedding, unless the checkpoint stored its own lm_head.weight, which transformers
  // 5 writes and uses (runtime/exec/WeightAssembly.h, "Tied embeddings and the LM head").
  const Tensor &head =
      config.tieWordEmbeddings && weights.lmHead.isEmpty() ? weights.embedding : weights.lmHead;
  return lmHead(x, head, config.outputLogitSoftCap);
}

} // namespace xlc::ref
