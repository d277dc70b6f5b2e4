//===- ModelBackward.cpp - float64 reference of the training objective and its gradient -===//
//
// The forward below is ModelForward.cpp's, op for op, with every intermediate kept (BlockTape);
// the reverse walks the tape backwards. test/reference/ModelBackwardTest.cpp checks that the
// kept forward's logits equal modelForward's and that every gradient equals finite differences.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/ModelBackward.h"

#include "runtime/reference/BlockOps.h"
#include "runtime/reference/MlstmCellBackward.h"
#include "runtime/reference/ModelForward.h"
#include "runtime/support/Error.h"

#include <algorithm>

namespace xlc::ref {
namespace {

/// One block's forward, every intermediate kept for the reverse sweep.
struct BlockTape {
  Tensor x;                        // block input (the residual stream)
  Tensor xNorm;                    // RMSNorm_mlstm(x)
  Tensor q, k, v, oPre;            // projections
  Tensor iRaw, fRaw;               // gate pre-activations before the soft-cap
  Tensor iPre, fPre;               // as the cell receives them
  Tensor h;                        // cell output [B, S, NH·DV]
  Tensor hNorm;                    // multi-head LayerNorm(h)
  Tensor gated;                    // σ(oPre) ⊙ hNorm
  Tensor mid;                      // x + out_proj(gated)
  Tensor midNorm;                  // RMSNorm_ffn(mid)
  Tensor gate, up;                 // FFN branches
  Tensor act;                      // SiLU(gate) ⊙ up
};

struct ModelTape {
  std::vector<BlockTape> blocks;
  Tensor last;   // residual stream after the last block
  Tensor normed; // RMSNorm_out(last), or last without the out-norm
  Tensor z;      // x W_lmᵀ before the soft-cap
  Tensor logits;
};

const Tensor &headWeight(const ModelConfig &config, const ModelWeights &weights) {
  return config.tieWordEmbeddings && weights.lmHead.isEmpty() ? weights.embedding
                                                              : weights.lmHead;
}

void checkTokens(const ModelConfig &config, std::span<const std::int64_t> tokens,
                 std::span<const std::int64_t> targets, std::span<const std::uint8_t> resets,
                 std::int64_t batch, std::int64_t seq) {
  check(batch >= 0 && seq >= 0, "model loss: batch {} and seq {} must be non-negative", batch, seq);
  check(static_cast<std::int64_t>(tokens.size()) == batch * seq,
        "model loss: {} token ids for batch {} × seq {}", tokens.size(), batch, seq);
  check(static_cast<std::int64_t>(targets.size()) == batch * seq,
        "model loss: {} targets for batch {} × seq {}", targets.size(), batch, seq);
  check(resets.empty() || static_cast<std::int64_t>(resets.size()) == batch * seq,
        "model loss: {} document resets for batch {} × seq {} (none, or one per token)",
        resets.size(), batch, seq);
  for (std::size_t p = 0; p < targets.size(); ++p)
    check(targets[p] < config.vocabSize,
          "model loss: target {} at flat position {} is outside [0, {}) (negative: not counted)",
          targets[p], p, config.vocabSize);
}

/// x[b, t, ·] = |value| at every position whose reset flag is set (x is [B, S, NH]: the forget
/// gates as the cell receives them get kResetForgetGate there, and their gradient 0: an
/// overridden gate is a constant).
void fillAtResets(Tensor &x, std::span<const std::uint8_t> resets, double value) {
  const auto heads = static_cast<std::size_t>(x.shape.back());
  for (std::size_t p = 0; p < resets.size(); ++p)
    if (resets[p])
      std::fill_n(x.data.begin() + static_cast<std::ptrdiff_t>(p * heads), heads, value);
}

ModelTape forwardWithTape(const ModelConfig &config, const ModelWeights &weights,
                          std::span<const std::int64_t> tokens, std::int64_t batch,
                          std::int64_t seq, std::span<const std::uint8_t> resets) {
  validateWeights(config, weights);
  ModelTape tape;
  Tensor x = embedding(weights.embedding, tokens, {batch, seq});
  const MlstmCellAttrs attrs = config.cellAttrs();
  for (const BlockWeights &w : weights.blocks) {
    BlockTape t;
    t.x = x;
    t.xNorm = rmsNorm(x, w.normMlstm, config.normEps);
    t.q = linear(t.xNorm, w.q);
    t.k = linear(t.xNorm, w.k);
    t.v = linear(t.xNorm, w.v);
    t.oPre = linear(t.xNorm, w.ogate);
    t.iRaw = linear(t.xNorm, w.igate, &w.igateBias);
    t.fRaw = linear(t.xNorm, w.fgate, &w.fgateBias);
    t.iPre = config.gateSoftCap ? softCap(t.iRaw, *config.gateSoftCap) : t.iRaw;
    t.fPre = config.gateSoftCap ? softCap(t.fRaw, *config.gateSoftCap) : t.fRaw;
    fillAtResets(t.fPre, resets, kResetForgetGate);
    t.h = mlstmCell(t.q, t.k, t.v, t.iPre, t.fPre, config.numHeads, nullptr, attrs).h;
    t.hNorm = multiHeadLayerNorm(t.h, w.multiheadNorm, config.numHeads, config.layerNormEps);
    t.gated = outputGate(t.oPre, t.hNorm);
    t.mid = add(x, linear(t.gated, w.outProj));
    t.midNorm = rmsNorm(t.mid, w.normFfn, config.normEps);
    t.gate = linear(t.midNorm, w.ffnUpGate);
    t.up = linear(t.midNorm, w.ffnUp);
    t.act = swiglu(t.gate, t.up);
    x = add(t.mid, linear(t.act, w.ffnDown));
    tape.blocks.push_back(std::move(t));
  }
  tape.last = x;
  tape.normed = config.addOutNorm ? rmsNorm(x, weights.outNorm, config.normEps) : x;
  tape.z = linear(tape.normed, headWeight(config, weights));
  tape.logits =
      config.outputLogitSoftCap ? softCap(tape.z, *config.outputLogitSoftCap) : tape.z;
  return tape;
}

/// dst += src (same shapes).
void accumulate(Tensor &dst, const Tensor &src) {
  for (std::size_t i = 0; i < dst.data.size(); ++i)
    dst.data[i] += src.data[i];
}

/// Zero tensors shaped like every tensor of |weights| (empty stays empty).
ModelWeights zerosLike(const ModelWeights &weights) {
  ModelWeights g = weights;
  auto zero = [](Tensor &t) { std::fill(t.data.begin(), t.data.end(), 0.0); };
  zero(g.embedding);
  zero(g.outNorm);
  zero(g.lmHead);
  for (BlockWeights &b : g.blocks)
    for (Tensor *t : {&b.normMlstm, &b.q, &b.k, &b.v, &b.ogate, &b.igate, &b.igateBias, &b.fgate,
                      &b.fgateBias, &b.multiheadNorm, &b.outProj, &b.normFfn, &b.ffnUpGate,
                      &b.ffnUp, &b.ffnDown})
      zero(*t);
  return g;
}

} // namespace

std::vector<std::int64_t> nextTokenTargets(std::span<const std::int64_t> tokens,
                                           std::int64_t batch, std::int64_t seq) {
  check(static_cast<std::int64_t>(tokens.size()) == batch * seq,
        "next-token targets: {} token ids for batch {} × seq {}", tokens.size(), batch, seq);
  std::vector<std::int64_t> targets(tokens.size(), -1);
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t t = 0; t + 1 < seq; ++t)
      targets[static_cast<std::size_t>(b * seq + t)] = tokens[static_cast<std::size_t>(b * seq + t + 1)];
  return targets;
}

ModelLoss modelLoss(const ModelConfig &config, const ModelWeights &weights,
                    std::span<const std::int64_t> tokens, std::span<const std::int64_t> targets,
                    std::int64_t batch, std::int64_t seq, std::span<const std::uint8_t> resets) {
  checkTokens(config, tokens, targets, resets, batch, seq);
  if (!resets.empty()) {
    const CrossEntropy ce =
        crossEntropy(forwardWithTape(config, weights, tokens, batch, seq, resets).logits, targets);
    return {ce.loss, ce.count};
  }
  ModelState state = ModelState::zeros(config, batch);
  CrossEntropy ce =
      crossEntropy(modelForward(config, weights, tokens, batch, seq, state), targets);
  return {ce.loss, ce.count};
}

ModelLossAndGrads modelLossAndGrads(const ModelConfig &config, const ModelWeights &weights,
                                    std::span<const std::int64_t> tokens,
                                    std::span<const std::int64_t> targets, std::int64_t batch,
                                    std::int64_t seq, std::span<const std::uint8_t> resets) {
  checkTokens(config, tokens, targets, resets, batch, seq);
  ModelTape tape = forwardWithTape(config, weights, tokens, batch, seq, resets);
  CrossEntropy ce = crossEntropy(tape.logits, targets);
  ModelLossAndGrads out;
  out.loss = ce.loss;
  out.count = ce.count;
  out.grads = zerosLike(weights);
  ModelWeights &g = out.grads;

  // Head: logits = cap·tanh(z/cap), z = normed W_lmᵀ, normed = RMSNorm_out(last).
  Tensor dz = config.outputLogitSoftCap
                  ? softCapBackward(tape.z, *config.outputLogitSoftCap, ce.dLogits)
                  : ce.dLogits;
  LinearGrads head = linearBackward(tape.normed, headWeight(config, weights), false, dz);
  accumulate(config.tieWordEmbeddings && weights.lmHead.isEmpty() ? g.embedding : g.lmHead,
             head.weight);
  Tensor dx = head.x;
  if (config.addOutNorm) {
    NormGrads norm = rmsNormBackward(tape.last, weights.outNorm, config.normEps, dx);
    g.outNorm = std::move(norm.weight);
    dx = std::move(norm.x);
  }

  const MlstmCellAttrs attrs = config.cellAttrs();
  for (std::size_t i = tape.blocks.size(); i-- > 0;) {
    const BlockTape &t = tape.blocks[i];
    const BlockWeights &w = weights.blocks[i];
    BlockWeights &gw = g.blocks[i];

    // FFN: out = mid + act W_downᵀ, act = SiLU(gate) ⊙ up, gate|up = midNorm W_{gate|up}ᵀ.
    LinearGrads down = linearBackward(t.act, w.ffnDown, false, dx);
    gw.ffnDown = std::move(down.weight);
    GatedGrads glu = swigluBackward(t.gate, t.up, down.x);
    LinearGrads gateProj = linearBackward(t.midNorm, w.ffnUpGate, false, glu.gate);
    LinearGrads upProj = linearBackward(t.midNorm, w.ffnUp, false, glu.value);
    gw.ffnUpGate = std::move(gateProj.weight);
    gw.ffnUp = std::move(upProj.weight);
    accumulate(gateProj.x, upProj.x);
    NormGrads ffnNorm = rmsNormBackward(t.mid, w.normFfn, config.normEps, gateProj.x);
    gw.normFfn = std::move(ffnNorm.weight);
    Tensor dMid = dx;
    accumulate(dMid, ffnNorm.x);

    // mLSTM layer: mid = x + gated W_outᵀ, gated = σ(oPre) ⊙ MHLN(h), h = cell(q, k, v, ĩ, f̃).
    LinearGrads outProj = linearBackward(t.gated, w.outProj, false, dMid);
    gw.outProj = std::move(outProj.weight);
    GatedGrads og = outputGateBackward(t.oPre, t.hNorm, outProj.x);
    NormGrads mhln = multiHeadLayerNormBackward(t.h, w.multiheadNorm, config.numHeads,
                                                config.layerNormEps, og.value);
    gw.multiheadNorm = std::move(mhln.weight);
    MlstmCellGrads cell =
        mlstmCellBackward(t.q, t.k, t.v, t.iPre, t.fPre, config.numHeads, nullptr, attrs, mhln.x);
    fillAtResets(cell.fPre, resets, 0.0);
    Tensor dIRaw = config.gateSoftCap ? softCapBackward(t.iRaw, *config.gateSoftCap, cell.iPre)
                                      : cell.iPre;
    Tensor dFRaw = config.gateSoftCap ? softCapBackward(t.fRaw, *config.gateSoftCap, cell.fPre)
                                      : cell.fPre;
    Tensor dxNorm(t.xNorm.shape);
    auto project = [&](const Tensor &weight, const Tensor &dy, Tensor &dWeight, Tensor *dBias) {
      LinearGrads lg = linearBackward(t.xNorm, weight, dBias != nullptr, dy);
      dWeight = std::move(lg.weight);
      if (dBias)
        *dBias = std::move(lg.bias);
      accumulate(dxNorm, lg.x);
    };
    project(w.q, cell.q, gw.q, nullptr);
    project(w.k, cell.k, gw.k, nullptr);
    project(w.v, cell.v, gw.v, nullptr);
    project(w.ogate, og.gate, gw.ogate, nullptr);
    project(w.igate, dIRaw, gw.igate, &gw.igateBias);
    project(w.fgate, dFRaw, gw.fgate, &gw.fgateBias);
    NormGrads mlstmNorm = rmsNormBackward(t.x, w.normMlstm, config.normEps, dxNorm);
    gw.normMlstm = std::move(mlstmNorm.weight);
    dx = std::move(dMid);
    accumulate(dx, mlstmNorm.x);
  }
  accumulate(g.embedding, embeddingBackward(tokens, config.vocabSize, dx));
  return out;
}

} // namespace xlc::ref
