//===- Artifact.cpp - Enum spellings and helpers of the artifact model -----===//

#include "runtime/artifact/Artifact.h"

#include "runtime/support/Error.h"

#include <fmt/format.h>

namespace xlc::artifact {

namespace {

/// One table per enum keeps the spelling and the parser in one place.
template <typename E, std::size_t N>
std::string_view nameIn(const std::pair<E, std::string_view> (&table)[N], E value) {
  for (const auto &[e, name] : table)
    if (e == value)
      return name;
  return "?";
}

template <typename E, std::size_t N>
std::optional<E> parseIn(const std::pair<E, std::string_view> (&table)[N], std::string_view name) {
  for (const auto &[e, spelled] : table)
    if (spelled == name)
      return e;
  return std::nullopt;
}

constexpr std::pair<DType, std::string_view> kDTypes[] = {
    {DType::F32, "f32"}, {DType::BF16, "bf16"}, {DType::F16, "f16"},
    {DType::I64, "i64"}, {DType::I32, "i32"},   {DType::U8, "u8"}};

constexpr std::pair<BufferClass, std::string_view> kClasses[] = {
    {BufferClass::Weight, "weight"},       {BufferClass::Input, "input"},
    {BufferClass::Output, "output"},       {BufferClass::Activation, "activation"},
    {BufferClass::Workspace, "workspace"}, {BufferClass::State, "state"},
    {BufferClass::Parameter, "parameter"}, {BufferClass::Gradient, "gradient"},
    {BufferClass::Optimizer, "optimizer"}};

constexpr std::pair<DutyKind, std::string_view> kDutyKinds[] = {
    {DutyKind::Zero, "zero"}, {DutyKind::ErrorFlag, "error_flag"},
    {DutyKind::Accumulate, "accumulate"}};

constexpr std::pair<ParamKind, std::string_view> kParamKinds[] = {
    {ParamKind::Buffer, "buffer"}, {ParamKind::I64, "i64"}, {ParamKind::F32, "f32"}};

constexpr std::pair<Epilogue, std::string_view> kEpilogues[] = {
    {Epilogue::None, "none"}, {Epilogue::ResidualAdd, "residual_add"}, {Epilogue::Bias, "bias"}};

constexpr std::pair<GemmRows, std::string_view> kGemmRows[] = {
    {GemmRows::All, "all"}, {GemmRows::LastPosition, "last_position"}};
constexpr std::pair<OptimizerRole, std::string_view> kOptimizerRoles[] = {
    {OptimizerRole::ExpAvg, "exp_avg"},
    {OptimizerRole::ExpAvgSq, "exp_avg_sq"},
    {OptimizerRole::Master, "master"}};

} // namespace

std::string_view dtypeName(DType dtype) { return nameIn(kDTypes, dtype); }
std::optional<DType> parseDType(std::string_view name) { return parseIn(kDTypes, name); }

std::uint64_t dtypeSize(DType dtype) {
  switch (dtype) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::BF16:
  case DType::F16:
    return 2;
  case DType::I64:
    return 8;
  case DType::U8:
    return 1;
  }
  return 0;
}

std::string_view bufferClassName(BufferClass cls) { return nameIn(kClasses, cls); }
std::optional<BufferClass> parseBufferClass(std::string_view name) {
  return parseIn(kClasses, name);
}
bool isArenaClass(BufferClass cls) {
  return cls == BufferClass::Activation || cls == BufferClass::Workspace;
}
bool isStaticClass(BufferClass cls) {
  return cls == BufferClass::Weight || cls == BufferClass::Parameter ||
         cls == BufferClass::Gradient || cls == BufferClass::Optimizer;
}
bool isBoundClass(BufferClass cls) {
  return cls == BufferClass::Weight || cls == BufferClass::Parameter;
}

std::string_view dutyKindName(DutyKind kind) { return nameIn(kDutyKinds, kind); }
std::optional<DutyKind> parseDutyKind(std::string_view name) { return parseIn(kDutyKinds, name); }

std::string_view paramKindName(ParamKind kind) { return nameIn(kParamKinds, kind); }
std::optional<ParamKind> parseParamKind(std::string_view name) {
  return parseIn(kParamKinds, name);
}

std::string_view epilogueName(Epilogue epilogue) { return nameIn(kEpilogues, epilogue); }
std::optional<Epilogue> parseEpilogue(std::string_view name) { return parseIn(kEpilogues, name); }
std::string_view gemmRowsName(GemmRows rows) { return nameIn(kGemmRows, rows); }
std::optional<GemmRows> parseGemmRows(std::string_view name) { return parseIn(kGemmRows, name); }
std::string_view optimizerRoleName(OptimizerRole role) { return nameIn(kOptimizerRoles, role); }
std::optional<OptimizerRole> parseOptimizerRole(std::string_view name) {
  return parseIn(kOptimizerRoles, name);
}

std::string_view stepKindName(StepKind kind) {
  switch (kind) {
  case StepKind::Launch:
    return "launch";
  case StepKind::Gemm:
    return "gemm";
  case StepKind::Copy:
    return "copy";
  }
  return "?";
}

Expr Dim::toExpr() const {
  switch (kind) {
  case Kind::Constant:
    return Expr::constant(value);
  case Kind::Batch:
    return Expr::batch();
  case Kind::Seq:
    return Expr::seq();
  }
  return {};
}

std::string Dim::toString() const {
  switch (kind) {
  case Kind::Constant:
    return fmt::format("{}", value);
  case Kind::Batch:
    return "B";
  case Kind::Seq:
    return "S";
  }
  return "?";
}

std::string shapeToString(const Shape &shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i)
      out += ", ";
    out += shape[i].toString();
  }
  return out + "]";
}

std::optional<Expr> shapeProduct(const Shape &shape, std::uint64_t factor) {
  std::uint64_t constant = factor;
  bool hasBatch = false, hasSeq = false;
  for (const Dim &d : shape) {
    switch (d.kind) {
    case Dim::Kind::Constant:
      if (__builtin_mul_overflow(constant, d.value, &constant))
        return std::nullopt;
      break;
    case Dim::Kind::Batch:
      if (hasBatch)
        return std::nullopt;
      hasBatch = true;
      break;
    case Dim::Kind::Seq:
      if (hasSeq)
        return std::nullopt;
      hasSeq = true;
      break;
    }
  }
  Expr e;
  if (hasBatch && hasSeq)
    e.bs = constant;
  else if (hasBatch)
    e.b = constant;
  else if (hasSeq)
    e.s = constant;
  else
    e.c = constant;
  return e;
}

Expr byteSize(const Buffer &buffer) {
  if (buffer.bytes)
    return *buffer.bytes;
  if (auto e = shapeProduct(buffer.shape, dtypeSize(buffer.dtype)))
    return *e;
  fail("buffer {} '{}': shape {} of {} has no affine byte size (a symbol repeats or the size "
       "overflows u64)",
       buffer.id, buffer.name, shapeToString(buffer.shape), dtypeName(buffer.dtype));
}

Arg Arg::expr(const Expr &e) {
  Arg a;
  a.kind = ArgKind::Expr;
  a.exprValue = e;
  return a;
}

Arg Arg::buffer(BufferId id) {
  Arg a;
  a.kind = ArgKind::Buffer;
  a.bufferId = id;
  return a;
}

Arg Arg::symbol(Symbol s) {
  Arg a;
  a.kind = ArgKind::Symbol;
  a.symbolValue = s;
  return a;
}

Arg Arg::i64(std::int64_t v) {
  Arg a;
  a.kind = ArgKind::I64;
  a.intValue = v;
  return a;
}

Arg Arg::f32(float v) {
  Arg a;
  a.kind = ArgKind::F32;
  a.floatValue = v;
  return a;
}

Arg Arg::scalar(std::uint32_t index) {
  Arg a;
  a.kind = ArgKind::Scalar;
  a.scalarIndex = index;
  return a;
}

Step Step::makeLaunch(std::string op, nlohmann::json attrs, KernelIndex kernel,
                      std::vector<Arg> args) {
  return Step{std::move(op), std::move(attrs), {}, LaunchStep{kernel, std::move(args)}};
}

Step Step::makeGemm(std::string op, nlohmann::json attrs, GemmStep gemm) {
  return Step{std::move(op), std::move(attrs), {}, std::move(gemm)};
}

Step Step::makeCopy(std::string op, BufferId src, BufferId dst, Expr bytes) {
  return Step{std::move(op), nlohmann::json::object(), {}, CopyStep{src, dst, bytes}};
}

std::vector<BufferId> buffersOf(const Step &step) {
  std::vector<BufferId> ids;
  if (const LaunchStep *launch = step.launch()) {
    for (const Arg &arg : launch->args)
      if (arg.kind == ArgKind::Buffer)
        ids.push_back(arg.bufferId);
  } else if (const GemmStep *gemm = step.gemm()) {
    ids = {gemm->a, gemm->b};
    if (gemm->c)
      ids.push_back(*gemm->c);
    ids.push_back(gemm->d);
  } else if (const CopyStep *copy = step.copy()) {
    ids = {copy->src, copy->dst};
  }
  for (const Duty &duty : step.duties)
    ids.push_back(duty.buffer);
  return ids;
}

std::vector<std::optional<LiveRange>> liveRanges(const Function &function,
                                                 std::size_t bufferCount) {
  std::vector<std::optional<LiveRange>> ranges(bufferCount);
  for (std::size_t i = 0; i < function.steps.size(); ++i) {
    for (BufferId id : buffersOf(function.steps[i])) {
      if (id >= bufferCount)
        continue;
      if (!ranges[id])
        ranges[id] = LiveRange{i, i};
      else
        ranges[id]->last = i;
    }
  }
  return ranges;
}

const Function *Artifact::findFunction(std::string_view name) const {
  for (const Function &f : functions)
    if (f.name == name)
      return &f;
  return nullptr;
}

const FunctionArg *Function::findInput(std::string_view n) const {
  for (const FunctionArg &a : inputs)
    if (a.name == n)
      return &a;
  return nullptr;
}

const FunctionArg *Function::findOutput(std::string_view n) const {
  for (const FunctionArg &a : outputs)
    if (a.name == n)
      return &a;
  return nullptr;
}

const Buffer *Artifact::findBuffer(BufferId id) const {
  return id < buffers.size() ? &buffers[id] : nullptr;
}

bool operator==(const Artifact &lhs, const Artifact &rhs) {
  return lhs.compiler == rhs.compiler && lhs.targetArch == rhs.targetArch &&
         lhs.model == rhs.model && lhs.deviceHeadersHash == rhs.deviceHeadersHash &&
         lhs.kernels == rhs.kernels && lhs.buffers == rhs.buffers && lhs.weights == rhs.weights &&
         lhs.functions == rhs.functions && lhs.arenaBytes == rhs.arenaBytes;
}

} // namespace xlc::artifact
