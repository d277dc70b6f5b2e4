//===- FuseProjections.cpp - One GEMM per input ---------------------------===//
//
// Implements xlc-fuse-projections. Projections of one input are fused when their weights (and
// biases) are read straight from checkpoint parameters; the fused weight is an
// xlstm.assembled_parameter, so the loader concatenates the checkpoint tensors once and the
// artifact records how.
//
//===----------------------------------------------------------------------===//

#include "passes/ParameterUtils.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"

#define DEBUG_TYPE "xlc-fuse-projections"

namespace xlc {
#define GEN_PASS_DEF_FUSEPROJECTIONS
#include "passes/Passes.h.inc"
} // namespace xlc

using namespace mlir;
using namespace xlc;
using namespace xlc::xlstm;

namespace {

/// "blocks.0.mlstm_layer.q.weight" + "blocks.0.mlstm_layer.k.weight" ->
/// "blocks.0.mlstm_layer.q_k.weight": the common dotted prefix and suffix around the parts
/// that differ.
std::string fusedName(ArrayRef<StringRef> names) {
  auto split = [](StringRef s) {
    SmallVector<StringRef> parts;
    s.split(parts, '.');
    return parts;
  };
  SmallVector<SmallVector<StringRef>> parts;
  for (StringRef n : names)
    parts.push_back(split(n));
  size_t minLen = parts.front().size();
  for (auto &p : parts)
    minLen = std::min(minLen, p.size());
  size_t prefix = 0;
  while (prefix < minLen && llvm::all_of(parts, [&](auto &p) {
           return p[prefix] == parts.front()[prefix];
         }))
    ++prefix;
  size_t suffix = 0;
  while (suffix < minLen - prefix && llvm::all_of(parts, [&](auto &p) {
           return p[p.size() - 1 - suffix] == parts.front()[parts.front().size() - 1 - suffix];
         }))
    ++suffix;
  std::string out;
  for (size_t i = 0; i < prefix; ++i)
    out += parts.front()[i].str() + ".";
  for (auto [j, p] : llvm::enumerate(parts)) {
    if (j)
      out += "_";
    for (size_t i = prefix; i < p.size() - suffix; ++i)
      out += (i > prefix ? "." : "") + p[i].str();
  }
  for (size_t i = parts.front().size() - suffix; i < parts.front().size(); ++i)
    out += "." + parts.front()[i].str();
  return out;
}

/// Declares `concat [sources]` along axis 0 as a new parameter and returns its symbol name.
StringAttr declareConcat(ModuleOp module, ArrayRef<ParameterOp> sources) {
  SmallVector<StringRef> names;
  SmallVector<Attribute> refs;
  int64_t rows = 0;
  for (ParameterOp p : sources) { // ops are handles: copies are cheap and non-const
    names.push_back(p.getSymName());
    refs.push_back(FlatSymbolRefAttr::get(p.getSymNameAttr()));
    rows += p.getTensorType().getDimSize(0);
  }
  ParameterOp front = sources.front();
  RankedTensorType first = front.getTensorType();
  SmallVector<int64_t> shape(first.getShape());
  shape[0] = rows;
  OpBuilder b(module.getContext());
  auto fused = b.create<AssembledParameterOp>(
      front.getLoc(), b.getStringAttr(fusedName(names)),
      TypeAttr::get(RankedTensorType::get(shape, first.getElementType())),
      b.getArrayAttr(refs), b.getI64IntegerAttr(0), FlatSymbolRefAttr());
  module.getBody()->push_back(fused);
  insertParameterDeclaration(module, fused);
  return fused.getSymNameAttr();
}

/// A projection the pass may fuse: weight (and bias) read from checkpoint parameters.
struct Candidate {
  LinearOp op;
  ParameterOp weight, bias;
};

void fuseGroup(ModuleOp module, ArrayRef<Candidate> group) {
  SmallVector<ParameterOp> weights, biases;
  for (const Candidate &c : group) {
    weights.push_back(c.weight);
    if (c.bias)
      biases.push_back(c.bias);
  }
  StringAttr weightSym = declareConcat(module, weights);
  StringAttr biasSym = biases.empty() ? StringAttr() : declareConcat(module, biases);

  LinearOp first = group.front().op;
  // (Candidates hold op handles; copies are cheap and give non-const access.)
  OpBuilder b(first);
  auto param = [&](StringAttr sym) -> Value {
    auto decl = SymbolTable::lookupNearestSymbolFrom<AssembledParameterOp>(first, sym);
    return b.create<ParamOp>(decl.getLoc(), decl.getTensorType(), FlatSymbolRefAttr::get(sym));
  };
  Value weight = param(weightSym);
  Value bias = biasSym ? param(biasSym) : Value();

  RankedTensorType firstType = first.getResult().getType();
  int64_t features = 0;
  SmallVector<Type> sliceTypes;
  SmallVector<std::string> names;
  for (Candidate c : group) {
    features += c.op.getResult().getType().getShape().back();
    sliceTypes.push_back(c.op.getResult().getType());
    names.push_back(locName(c.op.getLoc(), "proj"));
  }
  SmallVector<int64_t> shape(firstType.getShape());
  shape.back() = features;
  Location loc = namedLoc(first.getLoc(), fusedName(SmallVector<StringRef>(names.begin(),
                                                                          names.end())));
  auto fused = b.create<LinearOp>(loc, RankedTensorType::get(shape, firstType.getElementType()),
                                  first.getInput(), weight, bias);
  auto split = b.create<SplitOp>(loc, sliceTypes, fused.getResult());
  for (auto [candidate, slice] : llvm::zip(group, split.getResults())) {
    Candidate c = candidate;
    Value oldWeight = c.op.getWeight(), oldBias = c.op.getBias();
    c.op.getResult().replaceAllUsesWith(slice);
    c.op.erase();
    for (Value read : {oldWeight, oldBias})
      if (read && read.use_empty())
        read.getDefiningOp()->erase();
  }
}

struct FuseProjectionsPass : public xlc::impl::FuseProjectionsBase<FuseProjectionsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    // Groups keyed by (input, has bias, weight and result element types), in program order:
    // only projections that can share one GEMM (one bias epilogue, one output dtype) fuse.
    using Key = std::tuple<Value, unsigned, Type, Type>;
    llvm::MapVector<Key, SmallVector<Candidate>> groups;
    module.walk([&](LinearOp op) {
      ParameterOp weight = getCheckpointParameter(op.getWeight());
      ParameterOp bias = getCheckpointParameter(op.getBias());
      if (!weight || (op.getBias() && !bias))
        return;
      Key key{op.getInput(), bias ? 1u : 0u, weight.getTensorType().getElementType(),
              op.getResult().getType().getElementType()};
      groups[key].push_back({op, weight, bias});
    });
    for (auto &[key, group] : groups)
      if (group.size() >= 2)
        fuseGroup(module, group);
  }
};

} // namespace
