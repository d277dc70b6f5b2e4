//===- BuildModel.cpp - xLSTM model IR from a ModelConfig -----------------===//

#include "models/import/BuildModel.h"

#include "dialect/XlstmDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Verifier.h"

#include <string>

using namespace mlir;

namespace xlc::models {
namespace {

/// Emits parameters at module level and their reads inside @forward.
class ModelBuilder {
public:
  ModelBuilder(MLIRContext &context, const ModelConfig &config, const BuildOptions &options)
      : ctx_(context), config_(config), b_(&context) {
    weightType_ = options.weightDtype == WeightDtype::BF16 ? Type(b_.getBF16Type())
                                                             : Type(b_.getF32Type());
  }

  OwningOpRef<ModuleOp> build();

private:
  /// Declares `xlstm.parameter` for checkpoint tensor |checkpoint| and reads it in @forward.
  /// The symbol drops the `backbone.` prefix of the Hugging Face name.
  Value param(const std::string &checkpoint, ArrayRef<int64_t> shape) {
    std::string sym = checkpoint.rfind("backbone.", 0) == 0 ? checkpoint.substr(9) : checkpoint;
    auto type = RankedTensorType::get(shape, weightType_);
    {
      OpBuilder::InsertionGuard guard(b_);
      b_.setInsertionPoint(forward_);
      b_.create<xlstm::ParameterOp>(loc(sym), b_.getStringAttr(sym), TypeAttr::get(type),
                                    b_.getStringAttr(checkpoint));
    }
    return b_.create<xlstm::ParamOp>(loc(sym), type, FlatSymbolRefAttr::get(&ctx_, sym));
  }

  Location loc(const std::string &name) { return NameLoc::get(b_.getStringAttr(name)); }

  RankedTensorType activation(int64_t features, Type element) {
    return RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic, features}, element);
  }

  MLIRContext &ctx_;
  const ModelConfig &config_;
  OpBuilder b_;
  Type weightType_;
  func::FuncOp forward_;
};

OwningOpRef<ModuleOp> ModelBuilder::build() {
  const ModelConfig &c = config_;
  Location unknown = UnknownLoc::get(&ctx_);
  OwningOpRef<ModuleOp> module = ModuleOp::create(unknown, StringRef(c.name));

  // Facts the runtime and tools need beyond the graph.
  module->getOperation()->setAttr(
      "xlstm.tokens",
      b_.getDictionaryAttr({b_.getNamedAttr("bos", b_.getI64IntegerAttr(c.bosTokenId)),
                            b_.getNamedAttr("eos", b_.getI64IntegerAttr(c.eosTokenId)),
                            b_.getNamedAttr("pad", b_.getI64IntegerAttr(c.padTokenId))}));
  module->getOperation()->setAttr("xlstm.chunk_size", b_.getI64IntegerAttr(c.chunkSize));

  Type stateElement =
      c.stateDtype == config::StateDtype::F32 ? Type(b_.getF32Type()) : Type(b_.getBF16Type());
  auto stateType = xlstm::StateType::get(&ctx_, c.numHeads, c.qkHeadDim(), c.vHeadDim(),
                                         stateElement);
  auto tokensType = RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic},
                                          b_.getI32Type());
  auto hiddenType = activation(c.embeddingDim, weightType_);
  auto logitsType = activation(c.vocabSize, b_.getF32Type());

  SmallVector<Type> inputs{tokensType}, results{logitsType};
  inputs.append(c.numBlocks, stateType);
  results.append(c.numBlocks, stateType);

  b_.setInsertionPointToEnd(module->getBody());
  forward_ = b_.create<func::FuncOp>(loc("forward"), "forward",
                                     b_.getFunctionType(inputs, results));
  Block *entry = forward_.addEntryBlock();
  b_.setInsertionPointToStart(entry);

  const int64_t d = c.embeddingDim, nh = c.numHeads;
  Value embeddings = param("backbone.embeddings.weight", {c.vocabSize, d});
  Value x = b_.create<xlstm::EmbeddingOp>(loc("embedding"), hiddenType, embeddings,
                                          entry->getArgument(0));

  auto epsAttr = [&](double v) { return b_.getF64FloatAttr(v); };
  auto gateKind = xlstm::InputGateKindAttr::get(&ctx_, c.inputGate == config::InputGate::Exp
                                                           ? xlstm::InputGateKind::Exp
                                                           : xlstm::InputGateKind::Sigmoid);
  SmallVector<Value> finalStates;
  for (int64_t i = 0; i < c.numBlocks; ++i) {
    std::string p = "backbone.blocks." + std::to_string(i) + ".";
    std::string m = p + "mlstm_layer.";
    Value norm = param(p + "norm_mlstm.weight", {d});
    Value wq = param(m + "q.weight", {c.qkDim(), d});
    Value wk = param(m + "k.weight", {c.qkDim(), d});
    Value wv = param(m + "v.weight", {c.vDim(), d});
    Value wo = param(m + "ogate_preact.weight", {c.vDim(), d});
    Value wi = param(m + "igate_preact.weight", {nh, d});
    Value bi = param(m + "igate_preact.bias", {nh});
    Value wf = param(m + "fgate_preact.weight", {nh, d});
    Value bf = param(m + "fgate_preact.bias", {nh});
    Value mhNorm = param(m + "multihead_norm.weight", {c.vDim()});
    Value wout = param(m + "out_proj.weight", {d, c.vDim()});

    auto block = b_.create<xlstm::MLSTMBlockOp>(
        loc("blocks." + std::to_string(i) + ".mlstm"), hiddenType, stateType, x, norm, wq, wk,
        wv, wo, wi, wf, bi, bf, mhNorm, wout, entry->getArgument(1 + i),
        b_.getI64IntegerAttr(nh), epsAttr(c.normEps), epsAttr(c.mhNormEps),
        epsAttr(c.cellEps), c.gateSoftCap ? epsAttr(*c.gateSoftCap) : FloatAttr(), gateKind,
        xlstm::NormalizerKindAttr::get(&ctx_, xlstm::NormalizerKind::MaxAbs));
    x = block.getResult();
    finalStates.push_back(block.getFinalState());

    Value ffnNorm = param(p + "norm_ffn.weight", {d});
    Value wg = param(p + "ffn.proj_up_gate.weight", {c.ffnDim(), d});
    Value wu = param(p + "ffn.proj_up.weight", {c.ffnDim(), d});
    Value wd = param(p + "ffn.proj_down.weight", {d, c.ffnDim()});
    x = b_.create<xlstm::FFNBlockOp>(loc("blocks." + std::to_string(i) + ".ffn"), hiddenType, x,
                                     ffnNorm, wg, wu, wd, epsAttr(c.normEps));
  }

  // Hugging Face's xLSTMModel applies out_norm whatever add_out_norm says (ModelConfig.h).
  Value outNorm = param("backbone.out_norm.weight", {d});
  x = b_.create<xlstm::RMSNormOp>(loc("out_norm"), x.getType(), x, outNorm, epsAttr(c.normEps));
  Value lmWeight = c.tieWordEmbeddings ? embeddings : param("lm_head.weight", {c.vocabSize, d});
  auto head = b_.create<xlstm::LMHeadOp>(
      loc("lm_head"), logitsType, x, lmWeight,
      c.outputLogitSoftCap ? epsAttr(*c.outputLogitSoftCap) : FloatAttr());

  SmallVector<Value> returned{head.getResult()};
  returned.append(finalStates);
  b_.create<func::ReturnOp>(loc("forward"), returned);
  return module;
}

} // namespace

OwningOpRef<ModuleOp> buildModel(MLIRContext &context, const ModelConfig &config,
                                 const BuildOptions &options) {
  context.loadDialect<xlstm::XlstmDialect, func::FuncDialect>();
  ModelBuilder builder(context, config, options);
  OwningOpRef<ModuleOp> module = builder.build();
  if (failed(verify(*module)))
    return nullptr;
  return module;
}

ModelStats computeModelStats(ModuleOp module) {
  ModelStats stats;
  llvm::StringMap<int64_t> elementsBySymbol;
  for (auto param : module.getOps<xlstm::ParameterOp>()) {
    RankedTensorType type = param.getTensorType();
    int64_t elements = type.getNumElements();
    elementsBySymbol[param.getSymName()] = elements;
    stats.parameters += elements;
    stats.parameterBytes += elements * (type.getElementTypeBitWidth() / 8);
    ++stats.parameterTensors;
  }
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return stats;
  forward.walk([&](Operation *op) {
    if (isa<xlstm::MLSTMBlockOp, xlstm::MLSTMCellOp>(op)) {
      for (Type t : op->getResultTypes())
        if (auto state = dyn_cast<xlstm::StateType>(t)) {
          stats.stateBytesPerSequence += state.getBytesPerSequence();
          ++stats.mlstmCells;
        }
    }
    // Weights consumed as matrices (not through the embedding lookup) cost 2 FLOP per
    // element and token in a forward pass.
    if (isa<xlstm::EmbeddingOp>(op))
      return;
    for (Value operand : op->getOperands())
      if (auto read = operand.getDefiningOp<xlstm::ParamOp>())
        if (cast<RankedTensorType>(read.getType()).getRank() == 2)
          stats.matmulParameters += elementsBySymbol.lookup(read.getName());
  });
  return stats;
}

} // namespace xlc::models
