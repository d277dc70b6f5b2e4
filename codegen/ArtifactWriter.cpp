//===- ArtifactWriter.cpp - Kernel-level IR to an artifact ----------------===//

#include "codegen/ArtifactWriter.h"

#include "codegen/ArenaPlanner.h"
#include "codegen/cuda/KernelEmitter.h"
#include "dialect/XkDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

#include <map>

using namespace mlir;

namespace xlc::codegen {
namespace art = xlc::artifact;

namespace {

FailureOr<art::DType> dtypeOf(Type type, Operation *op) {
  if (type.isBF16())
    return art::DType::BF16;
  if (type.isF32())
    return art::DType::F32;
  if (type.isF16())
    return art::DType::F16;
  if (type.isInteger(32))
    return art::DType::I32;
  op->emitError() << "no artifact dtype for " << type;
  return failure();
}

/// [?, ?, F] -> [B, S, F]: the first dynamic dimension is the batch, the second the sequence.
FailureOr<art::Shape> shapeOf(RankedTensorType type, Operation *op) {
  art::Shape shape;
  int dynamic = 0;
  for (int64_t d : type.getShape()) {
    if (ShapedType::isDynamic(d)) {
      if (dynamic == 2) {
        op->emitError() << "only the batch and sequence dimensions may be dynamic, got " << type;
        return failure();
      }
      shape.push_back(dynamic++ == 0 ? art::Dim::batch() : art::Dim::seq());
    } else {
      shape.push_back(art::Dim(static_cast<std::uint64_t>(d)));
    }
  }
  return shape;
}

class Writer final : public EmitContext {
public:
  Writer(ModuleOp module, const CodegenOptions &options) : module_(module), options_(options) {}

  FailureOr<art::Artifact> build();

  // EmitContext.
  BufferView view(Value value) override { return views_.lookup(value); }
  art::BufferId output(Value result) override;
  void alias(Value result, art::BufferId buffer) override {
    auto type = cast<RankedTensorType>(result.getType());
    views_[result] = BufferView{buffer, 0, type.getShape().back()};
  }
  art::BufferId workspace(const std::string &name, art::DType dtype,
                          const art::Expr &bytes) override;
  StateBuffers state(Value state) override { return states_.lookup(state); }
  art::KernelIndex kernel(art::Kernel kernel) override;
  void step(art::Step step) override { function_->steps.push_back(std::move(step)); }
  std::string nameOf(Operation *op) override;

private:
  art::BufferId addBuffer(std::string name, art::BufferClass cls, art::DType dtype,
                          art::Shape shape);
  FailureOr<art::BufferId> weightBuffer(xlstm::ParamOp read);
  LogicalResult writeFunction(func::FuncOp func);
  LogicalResult writeGemm(xk::GemmOp gemm);
  LogicalResult fillModelInfo();

  ModuleOp module_;
  const CodegenOptions &options_;
  art::Artifact artifact_;
  art::Function *function_ = nullptr;
  std::string functionName_;
  llvm::DenseMap<Value, BufferView> views_;
  /// xlstm.last_position results: the view of the [B, S, F] value they select from.
  llvm::DenseMap<Value, BufferView> lastPositions_;
  llvm::DenseMap<Value, StateBuffers> states_;
  llvm::StringMap<art::BufferId> weights_;
  std::map<unsigned, StateBuffers> stateByArg_;
  std::map<std::string, art::KernelIndex> kernelBySource_;
  llvm::StringMap<unsigned> nameUses_;
};

art::BufferId Writer::addBuffer(std::string name, art::BufferClass cls, art::DType dtype,
                                art::Shape shape) {
  // Names are unique in an artifact: a repeated one gets a numeric suffix.
  unsigned &uses = nameUses_[name];
  if (uses++ > 0)
    name += "#" + std::to_string(uses - 1);
  art::Buffer buffer;
  buffer.id = static_cast<art::BufferId>(artifact_.buffers.size());
  buffer.name = std::move(name);
  buffer.cls = cls;
  buffer.dtype = dtype;
  buffer.shape = std::move(shape);
  artifact_.buffers.push_back(std::move(buffer));
  return artifact_.buffers.back().id;
}

std::string Writer::nameOf(Operation *op) {
  std::string base = op->getName().stripDialect().str();
  if (auto named = dyn_cast<NameLoc>(op->getLoc()))
    base = named.getName().str();
  return functionName_ + "." + base;
}

art::BufferId Writer::output(Value result) {
  auto it = views_.find(result);
  if (it != views_.end())
    return it->second.id;
  Operation *op = result.getDefiningOp();
  auto type = cast<RankedTensorType>(result.getType());
  art::BufferId id = addBuffer(nameOf(op), art::BufferClass::Activation,
                               *dtypeOf(type.getElementType(), op), *shapeOf(type, op));
  views_[result] = BufferView{id, 0, type.getShape().back()};
  return id;
}

art::BufferId Writer::workspace(const std::string &name, art::DType dtype,
                                const art::Expr &bytes) {
  // Workspaces are flat: sized in bytes (docs/artifact.md), typed for the CPU backend's benefit.
  art::BufferId id = addBuffer(name, art::BufferClass::Workspace, dtype, {});
  artifact_.buffers[id].bytes = bytes;
  return id;
}

art::KernelIndex Writer::kernel(art::Kernel kernel) {
  // Identical source means identical binary: one kernel entry for all 32 layers of a 7B.
  std::string key = kernel.entry + "\n" + kernel.source;
  auto it = kernelBySource_.find(key);
  if (it != kernelBySource_.end())
    return it->second;
  kernel.name = kernel.family + "_" + std::to_string(artifact_.kernels.size());
  auto index = static_cast<art::KernelIndex>(artifact_.kernels.size());
  artifact_.kernels.push_back(std::move(kernel));
  kernelBySource_[key] = index;
  return index;
}

FailureOr<art::BufferId> Writer::weightBuffer(xlstm::ParamOp read) {
  StringRef symbol = read.getName();
  if (auto it = weights_.find(symbol); it != weights_.end())
    return it->second;
  Operation *decl = SymbolTable::lookupNearestSymbolFrom(read, read.getNameAttr());
  auto type = cast<RankedTensorType>(read.getType());
  FailureOr<art::DType> dtype = dtypeOf(type.getElementType(), read);
  if (failed(dtype))
    return failure();
  art::Shape shape;
  for (int64_t d : type.getShape())
    shape.push_back(art::Dim(static_cast<std::uint64_t>(d)));
  art::BufferId id = addBuffer("weight." + symbol.str(), art::BufferClass::Weight, *dtype, shape);

  art::WeightBinding binding;
  binding.buffer = id;
  auto sourceOf = [&](xlstm::ParameterOp p) {
    binding.sources.push_back(p.getCheckpoint().str());
    std::vector<std::uint64_t> dims(p.getTensorType().getShape().begin(),
                                    p.getTensorType().getShape().end());
    binding.sourceShapes.push_back(std::move(dims));
  };
  if (auto p = dyn_cast_or_null<xlstm::ParameterOp>(decl)) {
    sourceOf(p);
  } else if (auto a = dyn_cast_or_null<xlstm::AssembledParameterOp>(decl)) {
    for (Attribute ref : a.getSources())
      sourceOf(SymbolTable::lookupNearestSymbolFrom<xlstm::ParameterOp>(
          a, cast<FlatSymbolRefAttr>(ref)));
    binding.concatAxis = static_cast<std::uint32_t>(a.getAxis());
    if (auto scale = a.getScaleColumnsAttr())
      binding.scaleColumnsBy =
          SymbolTable::lookupNearestSymbolFrom<xlstm::ParameterOp>(a, scale).getCheckpoint().str();
  } else {
    return read.emitError() << "'" << symbol << "' is not a parameter";
  }
  artifact_.weights.push_back(std::move(binding));
  weights_[symbol] = id;
  return id;
}

LogicalResult Writer::writeGemm(xk::GemmOp gemm) {
  RankedTensorType at = gemm.getA().getType();
  // A GEMM reading xlstm.last_position reads the producer's buffer in place, one row per
  // sequence (a_rows = last_position).
  auto lastPosition = lastPositions_.find(gemm.getA());
  const bool lastRows = lastPosition != lastPositions_.end();
  BufferView a = lastRows ? lastPosition->second : view(gemm.getA());
  if (a.offset != 0 || a.stride != at.getShape().back())
    return gemm.emitError() << "GEMM operand A must be a contiguous buffer";
  if (lastRows) {
    const art::Shape &shape = artifact_.buffers[a.id].shape;
    if (shape.size() != 3 || shape[0] != art::Dim::batch() || shape[1] != art::Dim::seq())
      return gemm.emitError() << "the last positions must be read from a [B, S, features] "
                                 "buffer, got "
                              << art::shapeToString(shape);
  }
  auto weight = gemm.getWeight().getDefiningOp<xlstm::ParamOp>();
  if (!weight)
    return gemm.emitError() << "GEMM weights must be parameters";
  FailureOr<art::BufferId> b = weightBuffer(weight);
  if (failed(b))
    return failure();
  art::GemmStep step;
  step.a = a.id;
  if (lastRows)
    step.aRows = art::GemmRows::LastPosition;
  step.b = *b;
  step.d = output(gemm.getResult());
  int64_t n = gemm.getWeight().getType().getDimSize(0);
  int64_t k = gemm.getWeight().getType().getDimSize(1);
  step.n = art::Expr::constant(static_cast<std::uint64_t>(n));
  step.k = art::Expr::constant(static_cast<std::uint64_t>(k));
  // Rows: the product of the leading dimensions (B·S for activations, B for the last
  // positions [B, 1, k]).
  FailureOr<art::Shape> shape = shapeOf(at, gemm);
  if (failed(shape))
    return failure();
  art::Shape lead(shape->begin(), shape->end() - 1);
  step.m = *art::shapeProduct(lead);
  std::string op = "linear";
  switch (gemm.getEpilogue()) {
  case xk::Epilogue::None:
    step.epilogue = art::Epilogue::None;
    break;
  case xk::Epilogue::Bias: {
    step.epilogue = art::Epilogue::Bias;
    auto bias = gemm.getBias().getDefiningOp<xlstm::ParamOp>();
    if (!bias)
      return gemm.emitError() << "GEMM biases must be parameters";
    FailureOr<art::BufferId> c = weightBuffer(bias);
    if (failed(c))
      return failure();
    step.c = *c;
    break;
  }
  case xk::Epilogue::ResidualAdd: {
    step.epilogue = art::Epilogue::ResidualAdd;
    BufferView c = view(gemm.getResidual());
    if (c.offset != 0 || c.stride != n)
      return gemm.emitError() << "the residual must be a contiguous buffer";
    step.c = c.id;
    op = "linear_residual";
    break;
  }
  }
  nlohmann::json attrs = {{"epilogue", std::string(art::epilogueName(step.epilogue))}};
  this->step(art::Step::makeGemm(op, std::move(attrs), step));
  return success();
}

/// A function argument's name in the artifact: the `xlstm.name` argument attribute when the IR
/// gives one, else "tokens" for the integer token ids the model functions take, else
/// "input_<n>".
std::string argumentName(func::FuncOp func, unsigned index, RankedTensorType type) {
  if (auto name = func.getArgAttrOfType<StringAttr>(index, "xlstm.name"))
    return name.str();
  if (type.getElementType().isInteger(32))
    return "tokens";
  return "input_" + std::to_string(index);
}

/// A returned tensor's name: the model functions return the logits first.
std::string resultName(std::size_t index) {
  return index == 0 ? "logits" : "output_" + std::to_string(index);
}

LogicalResult Writer::writeFunction(func::FuncOp func) {
  artifact_.functions.emplace_back();
  function_ = &artifact_.functions.back();
  function_->name = func.getSymName().str();
  functionName_ = function_->name;

  Block &body = func.getBody().front();
  for (BlockArgument arg : body.getArguments()) {
    Operation *op = func;
    if (auto state = dyn_cast<xlstm::StateType>(arg.getType())) {
      // One set of state buffers per cell, shared by every function (index = argument number).
      auto [it, inserted] = stateByArg_.try_emplace(arg.getArgNumber());
      if (inserted) {
        std::string base = "state." + std::to_string(arg.getArgNumber() - 1);
        uint64_t nh = state.getNumHeads(), dqk = state.getQkHeadDim(), dv = state.getVHeadDim();
        art::DType cType = state.getElementType().isBF16() ? art::DType::BF16 : art::DType::F32;
        it->second.C = addBuffer(base + ".C", art::BufferClass::State, cType,
                                 {art::Dim::batch(), nh, dqk, dv});
        it->second.n = addBuffer(base + ".n", art::BufferClass::State, art::DType::F32,
                                 {art::Dim::batch(), nh, dqk});
        it->second.m = addBuffer(base + ".m", art::BufferClass::State, art::DType::F32,
                                 {art::Dim::batch(), nh});
      }
      states_[arg] = it->second;
      for (art::BufferId id : {it->second.C, it->second.n, it->second.m})
        function_->states.push_back(id);
      continue;
    }
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    if (!type)
      return func.emitError() << "unsupported argument type " << arg.getType();
    FailureOr<art::DType> dtype = dtypeOf(type.getElementType(), op);
    FailureOr<art::Shape> shape = shapeOf(type, op);
    if (failed(dtype) || failed(shape))
      return failure();
    art::BufferId id = addBuffer(functionName_ + ".input." + std::to_string(arg.getArgNumber()),
                                 art::BufferClass::Input, *dtype, *shape);
    views_[arg] = BufferView{id, 0, type.getShape().back()};
    function_->inputs.push_back({argumentName(func, arg.getArgNumber(), type), id});
  }

  // Returned tensors are written straight into output buffers; an in-place soft-cap passes
  // that buffer on to the GEMM that produces its input.
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  for (Value v : ret.getOperands()) {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type)
      continue;
    Operation *producer = v.getDefiningOp();
    FailureOr<art::DType> dtype = dtypeOf(type.getElementType(), ret);
    FailureOr<art::Shape> shape = shapeOf(type, ret);
    if (failed(dtype) || failed(shape))
      return failure();
    art::BufferId id =
        addBuffer(functionName_ + ".output." + std::to_string(function_->outputs.size()),
                  art::BufferClass::Output, *dtype, *shape);
    function_->outputs.push_back({resultName(function_->outputs.size()), id});
    views_[v] = BufferView{id, 0, type.getShape().back()};
    if (auto cap = dyn_cast_or_null<xk::SoftCapOp>(producer))
      views_[cap.getInput()] = BufferView{id, 0, type.getShape().back()};
  }

  for (Operation &op : body.without_terminator()) {
    if (auto read = dyn_cast<xlstm::ParamOp>(op)) {
      FailureOr<art::BufferId> id = weightBuffer(read);
      if (failed(id))
        return failure();
      views_[read.getResult()] = BufferView{*id, 0, read.getType().getShape().back()};
    } else if (auto split = dyn_cast<xlstm::SplitOp>(op)) {
      BufferView parent = view(split.getInput());
      int64_t column = parent.offset;
      for (Value slice : split.getResults()) {
        views_[slice] = BufferView{parent.id, column, parent.stride};
        column += cast<RankedTensorType>(slice.getType()).getShape().back();
      }
    } else if (auto last = dyn_cast<xlstm::LastPositionOp>(op)) {
      // A view, like a split: the GEMMs that read it take their rows in place.
      for (OpOperand &use : last->getUses()) {
        auto gemm = dyn_cast<xk::GemmOp>(use.getOwner());
        if (!gemm || use.getOperandNumber() != 0)
          return use.getOwner()->emitError()
                 << "reads an xlstm.last_position; only the A operand of an xk.gemm can";
      }
      lastPositions_[last.getResult()] = view(last.getInput());
    } else if (auto gemm = dyn_cast<xk::GemmOp>(op)) {
      if (failed(writeGemm(gemm)))
        return failure();
    } else if (op.getDialect() && isa<xk::XkDialect>(op.getDialect())) {
      // mLSTM kernels update the state in place: the final state is the initial one's buffers.
      if (auto cell = dyn_cast<xk::MLSTMChunkwiseOp>(op))
        states_[cell.getFinalState()] = states_.lookup(cell.getInitialState());
      if (auto cell = dyn_cast<xk::MLSTMDecodeStepOp>(op))
        states_[cell.getFinalState()] = states_.lookup(cell.getInitialState());
      if (failed(emitKernelOp(&op, *this)))
        return failure();
    } else {
      return op.emitError() << "no code generation for this op; run xlc-inference-pipeline";
    }
  }

  // The returned states must be the function's own state buffers, updated in place.
  unsigned stateArg = 0;
  for (Value v : ret.getOperands()) {
    if (!isa<xlstm::StateType>(v.getType()))
      continue;
    while (stateArg < body.getNumArguments() &&
           !isa<xlstm::StateType>(body.getArgument(stateArg).getType()))
      ++stateArg;
    if (stateArg >= body.getNumArguments() ||
        states_.lookup(v).C != states_.lookup(body.getArgument(stateArg)).C)
      return ret.emitError() << "returned state " << stateArg
                             << " is not the in-place update of the same argument";
    ++stateArg;
  }
  function_ = nullptr;
  return success();
}

LogicalResult Writer::fillModelInfo() {
  art::ModelInfo &m = artifact_.model;
  m.name = module_.getSymName() ? module_.getSymName()->str() : std::string("model");
  auto prefill = module_.lookupSymbol<func::FuncOp>("prefill");
  if (!prefill)
    return module_.emitError() << "the module has no @prefill: run xlc-inference-pipeline first";
  auto results = prefill.getFunctionType().getResults();
  auto logits = results.empty() ? RankedTensorType() : dyn_cast<RankedTensorType>(results[0]);
  if (!logits)
    return prefill.emitError() << "@prefill must return logits first";
  m.vocabSize = static_cast<std::uint64_t>(logits.getShape().back());
  m.numBlocks = results.size() - 1;
  prefill.walk([&](xk::EmbeddingOp e) {
    m.embeddingDim = static_cast<std::uint64_t>(e.getTable().getType().getDimSize(1));
  });
  m.chunkSize = 64;
  if (auto chunk = module_->getAttrOfType<IntegerAttr>("xlstm.chunk_size"))
    m.chunkSize = static_cast<std::uint64_t>(chunk.getInt());
  if (auto tokens = module_->getAttrOfType<DictionaryAttr>("xlstm.tokens")) {
    auto get = [&](StringRef key) {
      auto v = tokens.getAs<IntegerAttr>(key);
      return v ? static_cast<std::uint64_t>(v.getInt()) : 0;
    };
    m.bosTokenId = get("bos");
    m.eosTokenId = get("eos");
    m.padTokenId = get("pad");
  }
  return success();
}

FailureOr<art::Artifact> Writer::build() {
  artifact_.compiler.name = "xlc";
  artifact_.compiler.version = options_.compilerVersion;
  artifact_.targetArch = options_.arch;
  artifact_.deviceHeadersHash = deviceHeadersHash();
  if (failed(fillModelInfo()))
    return failure();
  // @score (the prefill with logits at every position) is optional.
  for (StringRef name : {"prefill", "decode_step", "score"}) {
    auto func = module_.lookupSymbol<func::FuncOp>(name);
    if (!func && name == "score")
      continue;
    if (!func)
      return module_.emitError() << "the module has no @" << name;
    if (failed(writeFunction(func)))
      return failure();
  }
  planArena(artifact_);
  return std::move(artifact_);
}

} // namespace

FailureOr<art::Artifact> buildArtifact(ModuleOp module, const CodegenOptions &options) {
  Writer writer(module, options);
  return writer.build();
}

} // namespace xlc::codegen
