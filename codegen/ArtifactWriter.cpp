//===- ArtifactWriter.cpp - Kernel-level IR to an artifact ----------------===//

#include "codegen/ArtifactWriter.h"

#include "codegen/ArenaPlanner.h"
#include "codegen/cuda/KernelEmitter.h"
#include "codegen/cuda/KernelEmitterUtils.h"
#include "dialect/XkDialect.h"
#include "runtime/kernels/KernelFamily.h"
#include "runtime/train/AdamW.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

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
  if (type.isInteger(8))
    return art::DType::U8; // document resets: nonzero or not
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
  art::BufferId output(Value result) override { return outputView(result).id; }
  BufferView outputView(Value result) override;
  std::optional<BufferView> placement(Value value) override {
    auto it = views_.find(value);
    return it == views_.end() ? std::nullopt : std::optional<BufferView>(it->second);
  }
  void place(Value value, BufferView view) override { views_[value] = view; }
  BufferView activation(const std::string &name, RankedTensorType type) override;
  void alias(Value result, art::BufferId buffer) override {
    auto type = cast<RankedTensorType>(result.getType());
    views_[result] = BufferView{buffer, 0, type.getShape().back()};
  }
  std::vector<art::Duty> accumulateDuties(art::BufferId buffer) override;
  FailureOr<art::Arg> scalarArg(Value value) override;
  void saveChunkStates(Value h, ChunkStates states) override { chunkStates_[h] = states; }
  std::optional<ChunkStates> chunkStates(Value h) override {
    auto it = chunkStates_.find(h);
    return it == chunkStates_.end() ? std::nullopt : std::optional<ChunkStates>(it->second);
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
  FailureOr<art::BufferId> weightBuffer(FlatSymbolRefAttr symbol, Operation *user);
  LogicalResult writeFunction(func::FuncOp func);
  LogicalResult writeResults(func::FuncOp func, func::ReturnOp ret);
  LogicalResult placeOperands(Block &body);
  LogicalResult writeGemm(xk::GemmOp gemm);
  LogicalResult writeMatmul(xk::MatmulOp matmul);
  LogicalResult writeZeroState(xk::ZeroStateOp op);
  LogicalResult checkConcat(xlstm::ConcatOp concat);
  void writeOptimizerFunctions();
  void narrowGemmGradients();
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
  /// The parameters @train_step reads: their buffers are trainable (class parameter).
  llvm::StringSet<> trainable_;
  /// The function's scalar arguments (0-d tensors): index into Function::scalars.
  llvm::DenseMap<Value, std::uint32_t> scalars_;
  llvm::DenseMap<Value, ChunkStates> chunkStates_;
  /// xk.zero_state results: the cell that reads one zeroes it in its first launch.
  llvm::DenseSet<Value> zeroStates_;
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
  // The backward's ops carry their forward op's location: "d." tells a gradient from the value.
  if (isa<xk::MatmulOp, xk::RMSNormBackwardOp, xk::NormGateBackwardOp, xk::SwiGLUBackwardOp,
          xk::ColumnSumOp, xk::EmbeddingBackwardOp, xk::MLSTMCellGradOp, xlstm::ConcatOp>(op))
    base = "d." + base;
  return functionName_ + "." + base;
}

BufferView Writer::outputView(Value result) {
  auto it = views_.find(result);
  if (it != views_.end())
    return it->second;
  Operation *op = result.getDefiningOp();
  std::string name = nameOf(op);
  // A result of several: the buffer is named after it (".0", ".1", ...).
  if (op->getNumResults() > 1)
    name += "." + std::to_string(cast<OpResult>(result).getResultNumber());
  BufferView view = activation(name, cast<RankedTensorType>(result.getType()));
  views_[result] = view;
  return view;
}

BufferView Writer::activation(const std::string &name, RankedTensorType type) {
  Operation *where = module_;
  art::BufferId id = addBuffer(name, art::BufferClass::Activation,
                               *dtypeOf(type.getElementType(), where), *shapeOf(type, where));
  return BufferView{id, 0, type.getRank() == 0 ? 1 : type.getShape().back()};
}

std::vector<art::Duty> Writer::accumulateDuties(art::BufferId buffer) {
  // Gradient buffers persist across calls and sum the micro-batches of a step (the optimizer
  // step zeroes them); an arena buffer is zeroed by the first step that adds into it.
  if (artifact_.buffers[buffer].cls == art::BufferClass::Gradient)
    return {{art::DutyKind::Accumulate, buffer}};
  for (const art::Step &step : function_->steps)
    for (art::BufferId id : art::buffersOf(step))
      if (id == buffer)
        return {{art::DutyKind::Accumulate, buffer}};
  return {{art::DutyKind::Zero, buffer}, {art::DutyKind::Accumulate, buffer}};
}

FailureOr<art::Arg> Writer::scalarArg(Value value) {
  auto it = scalars_.find(value);
  if (it == scalars_.end()) {
    Operation *where = value.getDefiningOp() ? value.getDefiningOp() : module_.getOperation();
    return where->emitError() << "a scalar operand must be an argument of the function";
  }
  return art::Arg::scalar(it->second);
}

art::BufferId Writer::workspace(const std::string &name, art::DType dtype,
                                const art::Expr &bytes) {
  // Workspaces are flat: sized in bytes (docs/artifact.md), typed for the CPU backend's benefit.
  art::BufferId id = addBuffer(name, art::BufferClass::Workspace, dtype, {});
  artifact_.buffers[id].bytes = bytes;
  return id;
}

art::KernelIndex Writer::kernel(art::Kernel kernel) {
  // Identical source means identical binary: one kernel entry for all 32 layers of a 7B. The
  // parameters are part of the identity: one source may take a pointer or its null (an RMSNorm
  // with its weight, in @train_step, and folded, in @prefill).
  std::string key = kernel.entry + "\n" + kernel.source;
  for (const art::KernelParam &p : kernel.params)
    key += "\n" + p.name + ":" + std::string(art::paramKindName(p.kind));
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
  return weightBuffer(read.getNameAttr(), read);
}

FailureOr<art::BufferId> Writer::weightBuffer(FlatSymbolRefAttr ref, Operation *user) {
  StringRef symbol = ref.getValue();
  if (auto it = weights_.find(symbol); it != weights_.end())
    return it->second;
  Operation *decl = SymbolTable::lookupNearestSymbolFrom(user, ref);
  RankedTensorType type;
  if (auto p = dyn_cast_or_null<xlstm::ParameterOp>(decl))
    type = p.getTensorType();
  else if (auto a = dyn_cast_or_null<xlstm::AssembledParameterOp>(decl))
    type = a.getTensorType();
  else
    return user->emitError() << "'" << symbol << "' is not a parameter";
  FailureOr<art::DType> dtype = dtypeOf(type.getElementType(), user);
  if (failed(dtype))
    return failure();
  art::Shape shape;
  for (int64_t d : type.getShape())
    shape.push_back(art::Dim(static_cast<std::uint64_t>(d)));
  // What @train_step reads is trained: a parameter buffer (steps may write it, and it splits
  // back into the checkpoint's tensors); what only inference reads is a weight.
  const bool trainable = trainable_.contains(symbol);
  art::BufferId id =
      addBuffer((trainable ? "param." : "weight.") + symbol.str(),
                trainable ? art::BufferClass::Parameter : art::BufferClass::Weight, *dtype, shape);

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
    if (auto scale = a.getScaleColumnsAttr()) {
      if (trainable)
        return user->emitError() << "'" << symbol << "' folds a norm weight into its columns, "
                                 << "so @train_step cannot train it (no norm folding before "
                                    "xlc-autodiff)";
      binding.scaleColumnsBy =
          SymbolTable::lookupNearestSymbolFrom<xlstm::ParameterOp>(a, scale).getCheckpoint().str();
    }
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

LogicalResult Writer::writeMatmul(xk::MatmulOp matmul) {
  RankedTensorType at = matmul.getA().getType(), bt = matmul.getB().getType(),
                   dt = matmul.getResult().getType();
  FailureOr<art::BufferId> a = contiguous(matmul, *this, matmul.getA(), "operand A");
  FailureOr<art::BufferId> b = contiguous(matmul, *this, matmul.getB(), "operand B");
  FailureOr<art::BufferId> d = contiguousOutput(matmul, *this, matmul.getResult(), "the result");
  if (failed(a) || failed(b) || failed(d))
    return failure();
  // op(A) is [m, k]: A [rows, cols] as it is, or transposed (a weight's gradient dYᵀ·X sums over
  // the rows, every token of the batch).
  const art::Expr aRows = rowsExpr(at);
  const art::Expr aCols = art::Expr::constant(static_cast<std::uint64_t>(at.getShape().back()));
  art::GemmStep step;
  step.a = *a;
  step.b = *b;
  step.d = *d;
  step.transA = matmul.getTransA();
  step.transB = matmul.getTransB();
  step.m = step.transA ? aCols : aRows;
  step.k = step.transA ? aRows : aCols;
  step.n = art::Expr::constant(static_cast<std::uint64_t>(dt.getShape().back()));
  if (rowsExpr(bt) != (step.transB ? step.n : step.k) &&
      art::Expr::constant(static_cast<std::uint64_t>(bt.getShape().back())) !=
          (step.transB ? step.k : step.n))
    return matmul.emitError() << "operand B " << bt << " does not fit the product";
  // With an addend the product is added to it, in its buffer (placeOperands put it there); a
  // gradient buffer is always added to.
  if (matmul.getAddend() && view(matmul.getAddend()).id != *d)
    return matmul.emitError() << "the addend must be placed in the result's buffer";
  step.accumulate = bool(matmul.getAddend()) ||
                    artifact_.buffers[*d].cls == art::BufferClass::Gradient;
  nlohmann::json attrs = {{"trans_a", step.transA},
                          {"trans_b", step.transB},
                          {"accumulate", step.accumulate}};
  art::Step gemm = art::Step::makeGemm("matmul", std::move(attrs), step);
  if (step.accumulate)
    gemm.duties = accumulateDuties(*d);
  this->step(std::move(gemm));
  return success();
}

LogicalResult Writer::writeZeroState(xk::ZeroStateOp op) {
  // A training sequence starts from zero: the state lives in the arena for this call only, and
  // the cell that reads it zeroes it first (writeFunction adds the duties).
  auto state = cast<xlstm::StateType>(op.getState().getType());
  const std::uint64_t nh = state.getNumHeads(), dqk = state.getQkHeadDim(),
                      dv = state.getVHeadDim();
  const art::DType cType = state.getElementType().isBF16() ? art::DType::BF16 : art::DType::F32;
  const std::string base = nameOf(op);
  StateBuffers s;
  s.C = addBuffer(base + ".C", art::BufferClass::Workspace, cType, {art::Dim::batch(), nh, dqk, dv});
  s.n = addBuffer(base + ".n", art::BufferClass::Workspace, art::DType::F32,
                  {art::Dim::batch(), nh, dqk});
  s.m = addBuffer(base + ".m", art::BufferClass::Workspace, art::DType::F32,
                  {art::Dim::batch(), nh});
  states_[op.getState()] = s;
  zeroStates_.insert(op.getState());
  return success();
}

LogicalResult Writer::checkConcat(xlstm::ConcatOp concat) {
  // placeOperands put every operand in its column slice of the result's buffer; its producer
  // must have written it there.
  BufferView whole = view(concat.getResult());
  int64_t column = whole.offset;
  for (auto [i, operand] : llvm::enumerate(concat.getInputs())) {
    BufferView got = view(operand);
    if (got.id != whole.id || got.offset != column || got.stride != whole.stride)
      return concat.emitError() << "operand " << i << " was not written in place, at column "
                                << column << " of the concatenation's buffer";
    column += cast<RankedTensorType>(operand.getType()).getShape().back();
  }
  return success();
}

LogicalResult Writer::placeOperands(Block &body) {
  // Backwards over the function, so a value is placed before the ops that produce its pieces
  // are visited: the operands of an xlstm.concat become column slices of its buffer, and an
  // addend (a sum absorbed into a producer's epilogue) lives in its result's buffer, which the
  // producer then adds into.
  for (Operation &op : llvm::reverse(body.without_terminator())) {
    auto claim = [&](Value operand, BufferView at, StringRef what) -> LogicalResult {
      Operation *producer = operand.getDefiningOp();
      if (!producer || isa<xlstm::ParamOp, xlstm::SplitOp, xlstm::ConcatOp>(producer))
        return op.emitError() << what << " must be the result of a kernel, to be written in place";
      if (!operand.hasOneUse())
        return op.emitError() << what << " has other uses, so it cannot be written in place";
      if (views_.count(operand))
        return op.emitError() << what << " is already placed elsewhere";
      views_[operand] = at;
      return success();
    };
    if (auto concat = dyn_cast<xlstm::ConcatOp>(op)) {
      BufferView whole = outputView(concat.getResult());
      int64_t column = whole.offset;
      for (Value operand : concat.getInputs()) {
        if (failed(claim(operand, {whole.id, column, whole.stride}, "a concatenated operand")))
          return failure();
        column += cast<RankedTensorType>(operand.getType()).getShape().back();
      }
    } else if (auto matmul = dyn_cast<xk::MatmulOp>(op)) {
      if (matmul.getAddend() &&
          failed(claim(matmul.getAddend(), outputView(matmul.getResult()), "the addend")))
        return failure();
    } else if (auto emb = dyn_cast<xk::EmbeddingBackwardOp>(op)) {
      if (emb.getAddend() &&
          failed(claim(emb.getAddend(), outputView(emb.getDTable()), "the addend")))
        return failure();
    }
  }
  return success();
}

LogicalResult Writer::writeResults(func::FuncOp func, func::ReturnOp ret) {
  // Returned tensors are written straight into their buffers: gradients into the persistent
  // gradient buffer of their parameter, the loss as per-token losses, everything else into an
  // output buffer (an in-place soft-cap passes that buffer on to the GEMM that produces its
  // input).
  for (auto [index, v] : llvm::enumerate(ret.getOperands())) {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type)
      continue;
    Operation *producer = v.getDefiningOp();
    if (auto of = func.getResultAttrOfType<FlatSymbolRefAttr>(index, "xlstm.gradient_of")) {
      FailureOr<art::BufferId> param = weightBuffer(of, ret);
      if (failed(param))
        return failure();
      if (artifact_.buffers[*param].cls != art::BufferClass::Parameter)
        return ret.emitError() << "result " << index << " is the gradient of " << of
                               << ", which @train_step does not read";
      FailureOr<art::Shape> shape = shapeOf(type, ret);
      if (failed(shape))
        return failure();
      if (!type.getElementType().isF32() || *shape != artifact_.buffers[*param].shape)
        return ret.emitError() << "result " << index << " (" << type << ") must be an f32 "
                               << "tensor shaped like " << of;
      if (views_.count(v))
        return ret.emitError() << "result " << index << " is returned twice";
      art::BufferId id = addBuffer("grad." + of.getValue().str(), art::BufferClass::Gradient,
                                   art::DType::F32, artifact_.buffers[*param].shape);
      artifact_.buffers[id].parameter = *param;
      views_[v] = BufferView{id, 0, type.getShape().back()};
      continue;
    }
    if (auto ce = dyn_cast_or_null<xk::CrossEntropyOp>(producer); ce && v == ce.getLoss()) {
      // The loss comes back per token (0 where a target is not counted): the caller sums it in
      // a fixed order, and evaluation gets its per-token losses.
      FailureOr<art::Shape> shape = shapeOf(ce.getTargets().getType(), ret);
      if (failed(shape))
        return failure();
      art::BufferId id = addBuffer(functionName_ + ".token_loss", art::BufferClass::Output,
                                   art::DType::F32, *shape);
      function_->outputs.push_back({"token_loss", id});
      views_[v] = BufferView{id, 0, 1};
      continue;
    }
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
  return success();
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
    if (type.getRank() == 0) {
      // A 0-d float argument is a scalar given at each call (the loss head's gradient scale).
      if (!type.getElementType().isF32())
        return func.emitError() << "scalar argument " << arg.getArgNumber() << " must be f32";
      scalars_[arg] = static_cast<std::uint32_t>(function_->scalars.size());
      function_->scalars.push_back(
          {argumentName(func, arg.getArgNumber(), type), art::ParamKind::F32});
      continue;
    }
    FailureOr<art::DType> dtype = dtypeOf(type.getElementType(), op);
    FailureOr<art::Shape> shape = shapeOf(type, op);
    if (failed(dtype) || failed(shape))
      return failure();
    art::BufferId id = addBuffer(functionName_ + ".input." + std::to_string(arg.getArgNumber()),
                                 art::BufferClass::Input, *dtype, *shape);
    views_[arg] = BufferView{id, 0, type.getShape().back()};
    function_->inputs.push_back({argumentName(func, arg.getArgNumber(), type), id});
  }

  auto ret = cast<func::ReturnOp>(body.getTerminator());
  if (failed(writeResults(func, ret)) || failed(placeOperands(body)))
    return failure();

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
    } else if (auto concat = dyn_cast<xlstm::ConcatOp>(op)) {
      if (failed(checkConcat(concat)))
        return failure();
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
    } else if (auto matmul = dyn_cast<xk::MatmulOp>(op)) {
      if (failed(writeMatmul(matmul)))
        return failure();
    } else if (auto zero = dyn_cast<xk::ZeroStateOp>(op)) {
      if (failed(writeZeroState(zero)))
        return failure();
    } else if (op.getDialect() && isa<xk::XkDialect>(op.getDialect())) {
      // mLSTM kernels update the state in place: the final state is the initial one's buffers.
      Value initial;
      if (auto cell = dyn_cast<xk::MLSTMChunkwiseOp>(op)) {
        states_[cell.getFinalState()] = states_.lookup(cell.getInitialState());
        initial = cell.getInitialState();
      }
      if (auto cell = dyn_cast<xk::MLSTMDecodeStepOp>(op)) {
        states_[cell.getFinalState()] = states_.lookup(cell.getInitialState());
        initial = cell.getInitialState();
      }
      const std::size_t first = function_->steps.size();
      if (failed(emitKernelOp(&op, *this)))
        return failure();
      if (initial && zeroStates_.contains(initial)) {
        // A zero initial state: its buffers are zeroed before the cell's first launch.
        if (!initial.hasOneUse() || function_->steps.size() == first)
          return op.emitError() << "a zero state must be read by exactly one cell";
        StateBuffers s = states_.lookup(initial);
        std::vector<art::Duty> &duties = function_->steps[first].duties;
        duties.insert(duties.begin(), {art::Duty{art::DutyKind::Zero, s.C},
                                       art::Duty{art::DutyKind::Zero, s.n},
                                       art::Duty{art::DutyKind::Zero, s.m}});
      }
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

void Writer::narrowGemmGradients() {
  // Low-memory mode: a bf16 parameter's gradient is kept in bf16 when only GEMMs write it (a
  // projection matrix, the LM head): cuBLASLt accumulates each product in fp32 and rounds once
  // into the buffer, so a step of one micro-batch loses nothing a bf16 gradient can hold (each
  // further micro-batch rounds the running sum once more). A gradient that a kernel family sums
  // into (the embedding's, by token, possibly hundreds of rows into one; the norms' and biases'
  // column sums) stays fp32: rounding every partial sum would lose far more, and those tensors
  // are small next to the matrices (the 7B's embedding gradient is 0.8 GB of its 26).
  const art::Function *train = nullptr;
  for (const art::Function &f : artifact_.functions)
    if (f.name == "train_step")
      train = &f;
  if (!train)
    return;
  for (art::Buffer &b : artifact_.buffers) {
    if (b.cls != art::BufferClass::Gradient || !b.parameter ||
        artifact_.buffers[*b.parameter].dtype != art::DType::BF16)
      continue;
    bool onlyGemms = true, written = false;
    for (const art::Step &s : train->steps) {
      const std::vector<art::BufferId> ids = art::buffersOf(s);
      if (std::find(ids.begin(), ids.end(), b.id) == ids.end())
        continue;
      const art::GemmStep *g = s.gemm();
      // cuBLASLt writes a bf16 D from bf16 operands (an f32 × f32 product has an f32 D).
      onlyGemms = onlyGemms && g && g->d == b.id && g->a != b.id && g->b != b.id &&
                  (!g->c || *g->c != b.id) &&
                  artifact_.buffers[g->a].dtype == art::DType::BF16;
      written = true;
    }
    if (onlyGemms && written)
      b.dtype = art::DType::BF16;
  }
}

void Writer::writeOptimizerFunctions() {
  const bool lowMemory = options_.trainingPrecision == TrainingPrecision::LowMemory;
  if (lowMemory)
    narrowGemmGradients();
  // The gradients train_step accumulates, in the order it returns them (the order of the global
  // norm's sum and of the updates).
  std::vector<art::BufferId> grads;
  for (const art::Buffer &b : artifact_.buffers)
    if (b.cls == art::BufferClass::Gradient)
      grads.push_back(b.id);
  // Grid-stride loops over groups of 8 elements: four blocks of 256 threads per H100 SM (the
  // AdamW kernel's ~60 registers per thread allow 1024 threads per SM), 128 bytes in flight per
  // thread; both kernels are bound by HBM bandwidth (AdamW moves ~34 bytes per bf16 parameter
  // in the standard mode, 14 in the low-memory mode).
  constexpr int64_t kThreads = 256, kBlocks = 528;
  auto count = [&](art::BufferId id) {
    return static_cast<int64_t>(artifact_.buffers[id].shape.empty()
                                    ? 1
                                    : art::shapeProduct(artifact_.buffers[id].shape)->c);
  };
  auto dtypeText = [&](art::BufferId id) {
    return std::string(art::dtypeName(artifact_.buffers[id].dtype));
  };
  auto familyKernel = [&](std::string_view family, const kernels::Config &config) {
    return kernel(kernels::renderKernel(*kernels::findFamily(family), config,
                                        "#xk.tile<threads = 256>"));
  };

  // grad_norm() -> norm_sq [1]: Σ over every gradient of Σ g², for global-norm clipping (the
  // caller takes the square root and passes min(1, c / (‖g‖ + 1e-6)) as grad_scale).
  artifact_.functions.emplace_back();
  function_ = &artifact_.functions.back();
  function_->name = functionName_ = "grad_norm";
  const art::BufferId normSq =
      addBuffer("grad_norm.norm_sq", art::BufferClass::Output, art::DType::F32, {art::Dim(1)});
  function_->outputs.push_back({"norm_sq", normSq});
  const art::BufferId partial = workspace("grad_norm.partial", art::DType::F32,
                                          art::Expr::constant(kBlocks * 4));
  const art::BufferId counter =
      workspace("grad_norm.counter", art::DType::I64, art::Expr::constant(8));
  for (std::size_t i = 0; i < grads.size(); ++i) {
    const art::KernelIndex normKernel = familyKernel(
        "grad_norm",
        {{"grad_dtype", dtypeText(grads[i])}, {"threads", kThreads}, {"blocks", kBlocks}});
    art::Step s = art::Step::makeLaunch(
        "grad_norm", nlohmann::json::object(), normKernel,
        {art::Arg::buffer(grads[i]), art::Arg::buffer(partial), art::Arg::buffer(normSq),
         art::Arg::buffer(counter), art::Arg::i64(count(grads[i]))});
    s.duties = {{art::DutyKind::Zero, counter}};
    if (i == 0)
      s.duties.push_back({art::DutyKind::Zero, normSq});
    s.duties.push_back({art::DutyKind::Accumulate, normSq});
    step(std::move(s));
  }

  // optimizer_step(lr, beta1, beta2, eps, weight_decay, c1, c2, grad_scale, step): AdamW on
  // every parameter train_step reads, from its gradient (which the update consumes: zeroed), its
  // moments, and in the standard mode, for a parameter narrower than f32, an f32 master copy it
  // updates (the working weight is rewritten from it). The low-memory mode keeps a bf16
  // parameter's moments in bf16 and no master; its bf16 stores round stochastically, with random
  // bits keyed by `step` (the optimizer step, so that a resumed run rounds as the uninterrupted
  // one) and the tensor's index below. Weight decay applies to the projection matrices only.
  artifact_.functions.emplace_back();
  function_ = &artifact_.functions.back();
  function_->name = functionName_ = "optimizer_step";
  const char *scalarNames[] = {"lr", "beta1", "beta2", "eps", "weight_decay", "c1", "c2",
                               "grad_scale"};
  for (const char *name : scalarNames)
    function_->scalars.push_back({name, art::ParamKind::F32});
  function_->scalars.push_back({"step", art::ParamKind::I64});
  auto scalar = [](std::uint32_t i) { return art::Arg::scalar(i); };
  for (std::size_t tensor = 0; tensor < grads.size(); ++tensor) {
    const art::BufferId g = grads[tensor];
    const art::BufferId param = *artifact_.buffers[g].parameter;
    const art::Buffer p = artifact_.buffers[param];
    const std::string base = "optimizer." + p.name.substr(p.name.find('.') + 1);
    const art::DType momentType =
        lowMemory && p.dtype == art::DType::BF16 ? art::DType::BF16 : art::DType::F32;
    auto optimizerBuffer = [&](const char *suffix, art::OptimizerRole role, art::DType dtype) {
      art::BufferId id = addBuffer(base + "." + suffix, art::BufferClass::Optimizer, dtype,
                                   p.shape);
      artifact_.buffers[id].parameter = param;
      artifact_.buffers[id].role = role;
      return id;
    };
    const art::BufferId m = optimizerBuffer("exp_avg", art::OptimizerRole::ExpAvg, momentType);
    const art::BufferId v =
        optimizerBuffer("exp_avg_sq", art::OptimizerRole::ExpAvgSq, momentType);
    const bool master = !lowMemory && p.dtype != art::DType::F32;
    std::optional<art::BufferId> masterId;
    if (master)
      masterId = optimizerBuffer("master", art::OptimizerRole::Master, art::DType::F32);
    // Decay when every checkpoint tensor of the parameter decays (a fused projection's pieces
    // are all matrices; norms, biases and the embedding never decay).
    const auto binding = std::find_if(artifact_.weights.begin(), artifact_.weights.end(),
                                      [&](const art::WeightBinding &w) { return w.buffer == param; });
    bool decay = binding != artifact_.weights.end();
    if (decay)
      for (std::size_t i = 0; i < binding->sources.size(); ++i)
        decay = decay && train::decaysWeight(binding->sources[i], binding->sourceShapes[i].size());
    const art::KernelIndex k =
        familyKernel("adamw", {{"dtype", std::string(art::dtypeName(p.dtype))},
                               {"grad_dtype", dtypeText(g)},
                               {"moment_dtype", std::string(art::dtypeName(momentType))},
                               {"master", master},
                               {"rounding", lowMemory ? "stochastic" : "nearest"},
                               {"threads", kThreads},
                               {"blocks", kBlocks}});
    std::vector<art::Arg> args = {art::Arg::buffer(param),
                                  master ? art::Arg::buffer(*masterId) : art::Arg::i64(0),
                                  art::Arg::buffer(g),
                                  art::Arg::buffer(m),
                                  art::Arg::buffer(v),
                                  art::Arg::i64(count(param)),
                                  scalar(8),
                                  art::Arg::i64(static_cast<std::int64_t>(tensor)),
                                  scalar(0),
                                  scalar(1),
                                  scalar(2),
                                  scalar(3),
                                  decay ? scalar(4) : art::Arg::f32(0.0f),
                                  scalar(5),
                                  scalar(6),
                                  scalar(7)};
    step(art::Step::makeLaunch("adamw", {{"decay", decay}}, k, std::move(args)));
  }
  function_ = nullptr;
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
  // What @train_step reads is trainable, whichever function binds it first.
  auto train = module_.lookupSymbol<func::FuncOp>("train_step");
  if (train)
    train.walk([&](xlstm::ParamOp read) { trainable_.insert(read.getName()); });
  // @score (the prefill with logits at every position) and @train_step are optional.
  for (StringRef name : {"prefill", "decode_step", "score", "train_step"}) {
    auto func = module_.lookupSymbol<func::FuncOp>(name);
    if (!func && (name == "score" || name == "train_step"))
      continue;
    if (!func)
      return module_.emitError() << "the module has no @" << name;
    if (failed(writeFunction(func)))
      return failure();
  }
  if (train)
    writeOptimizerFunctions();
  planArena(artifact_);
  return std::move(artifact_);
}

} // namespace

FailureOr<art::Artifact> buildArtifact(ModuleOp module, const CodegenOptions &options) {
  Writer writer(module, options);
  return writer.build();
}

} // namespace xlc::codegen
