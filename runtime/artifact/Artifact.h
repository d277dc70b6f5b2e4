//===- Artifact.h - The compiled model, as the runtime sees it --*- C++ -*-===//
//
// The data model of an `.xlca` artifact, schema version 2 (docs/artifact.md). The compiler fills
// these structs and writes them with serialize() (Serialize.h); the runtime reads them with
// parseArtifact()/loadArtifact(), which validate the structure, and checks them against its
// size limits with validate() (Validate.h). Nothing in this header depends on MLIR or LLVM.
//
// Identity and references:
//   - kernels are referenced by their index in Artifact::kernels;
//   - buffers carry an id equal to their index in Artifact::buffers (dense, in order), and every
//     reference to a buffer (step operands, function inputs/outputs/states, weight bindings) is
//     such an id;
//   - kernel, buffer and function names are unique within an artifact.
//
// Memory: `activation` and `workspace` buffers live in one arena at a 256-aligned offset; an
// arena buffer is live in a function from the first to the last step of that function that
// touches it, and two buffers live at the same time in one function must not overlap. `weight`
// and `parameter` buffers have static shapes and are filled once through a WeightBinding
// (parameters are trainable: steps may write them, and the runtime can split them back into the
// checkpoint's tensors); `state` buffers persist across calls (shape [B, ...]); `gradient` and
// `optimizer` buffers persist like parameters (static shapes, zero at creation); `input` and
// `output` buffers are a function's named arguments and results.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_ARTIFACT_ARTIFACT_H
#define XLC_RUNTIME_ARTIFACT_ARTIFACT_H

#include "runtime/artifact/Expr.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace xlc::artifact {

/// The schema version this code reads and writes (container header and payload field).
inline constexpr std::uint32_t kSchemaVersion = 2;
/// Arena offsets are multiples of this for every B and S.
inline constexpr std::uint64_t kArenaAlignment = 256;

using BufferId = std::uint32_t;
using KernelIndex = std::uint32_t;

//===----------------------------------------------------------------------===//
// Enums (each with its artifact spelling and a parser that returns nullopt on unknown names)
//===----------------------------------------------------------------------===//

enum class DType : std::uint8_t { F32, BF16, F16, I64, I32, U8 };
std::string_view dtypeName(DType dtype); ///< "f32", "bf16", "f16", "i64", "i32", "u8"
std::optional<DType> parseDType(std::string_view name);
std::uint64_t dtypeSize(DType dtype); ///< bytes per element

enum class BufferClass : std::uint8_t {
  Weight,
  Input,
  Output,
  Activation,
  Workspace,
  State,
  Parameter,
  Gradient,
  Optimizer,
};
std::string_view bufferClassName(BufferClass cls); ///< "weight", "input", ...
std::optional<BufferClass> parseBufferClass(std::string_view name);
/// Whether buffers of this class live in the arena (activation, workspace) and carry an offset.
bool isArenaClass(BufferClass cls);
/// Whether buffers of this class have static shapes and live as long as the executable:
/// weight, parameter, gradient, optimizer.
bool isStaticClass(BufferClass cls);
/// Whether buffers of this class are filled from the checkpoint (weight, parameter).
bool isBoundClass(BufferClass cls);

/// What an optimizer buffer holds for its parameter: AdamW's first and second moments, or the
/// fp32 master copy of a parameter stored in a narrower type (the runtime fills it from the
/// parameter at load; the others start at zero). The names are the training checkpoint's.
enum class OptimizerRole : std::uint8_t { ExpAvg, ExpAvgSq, Master };
std::string_view optimizerRoleName(OptimizerRole role); ///< "exp_avg", "exp_avg_sq", "master"
std::optional<OptimizerRole> parseOptimizerRole(std::string_view name);

enum class ParamKind : std::uint8_t { Buffer, I64, F32 };
std::string_view paramKindName(ParamKind kind); ///< "buffer", "i64", "f32"
std::optional<ParamKind> parseParamKind(std::string_view name);

enum class Epilogue : std::uint8_t { None, ResidualAdd, Bias };
std::string_view epilogueName(Epilogue epilogue); ///< "none", "residual_add", "bias"
std::optional<Epilogue> parseEpilogue(std::string_view name);

/// Which rows of operand A a GEMM reads: every row of its matrix view, or, for an A of shape
/// [B, S, k], the last position of each sequence (row b of op(A) is A[b, S-1, :]; m = B): the
/// generation prefill's LM head, which needs no logits for the other positions.
enum class GemmRows : std::uint8_t { All, LastPosition };
std::string_view gemmRowsName(GemmRows rows); ///< "all", "last_position"
std::optional<GemmRows> parseGemmRows(std::string_view name);

//===----------------------------------------------------------------------===//
// Shapes
//===----------------------------------------------------------------------===//

/// One dimension of a buffer shape: a positive integer, or the symbol B or S. A shape names each
/// symbol at most once, so element counts stay affine (k, k·B, k·S or k·B·S).
struct Dim {
  enum class Kind : std::uint8_t { Constant, Batch, Seq };
  Kind kind = Kind::Constant;
  std::uint64_t value = 0; ///< the size when kind == Constant

  constexpr Dim() = default;
  /// Implicit, so writers can spell shapes as {Dim::batch(), Dim::seq(), 4096}.
  constexpr Dim(std::uint64_t size) : kind(Kind::Constant), value(size) {}
  static constexpr Dim batch() { return withKind(Kind::Batch); }
  static constexpr Dim seq() { return withKind(Kind::Seq); }

  bool isConstant() const { return kind == Kind::Constant; }
  Expr toExpr() const;          ///< value, B or S
  std::string toString() const; ///< "4096", "B" or "S"

  friend bool operator==(const Dim &, const Dim &) = default;

private:
  static constexpr Dim withKind(Kind kind) {
    Dim d;
    d.kind = kind;
    return d;
  }
};

using Shape = std::vector<Dim>;

/// "[B, S, 2048]".
std::string shapeToString(const Shape &shape);
/// The product of the dimensions times |factor|, or nullopt when a constant product overflows u64
/// or a symbol appears twice (the product would not be affine).
std::optional<Expr> shapeProduct(const Shape &shape, std::uint64_t factor = 1);

//===----------------------------------------------------------------------===//
// Kernels
//===----------------------------------------------------------------------===//

struct KernelParam {
  std::string name;
  ParamKind kind = ParamKind::Buffer;
  friend bool operator==(const KernelParam &, const KernelParam &) = default;
};

/// Where a tuned kernel's configuration came from: the tuning-database record
/// (runtime/tune/TuningDb.h) xlc-compile --tuning-db took it from, and what was measured.
struct KernelTuning {
  std::string record;      ///< the record's key: "family problem B=.. S=.."
  std::string defaultTile; ///< the variant the compiler would have used
  double defaultUs = 0;    ///< its median time in the record
  double chosenUs = 0;     ///< the chosen variant's
  friend bool operator==(const KernelTuning &, const KernelTuning &) = default;
};

/// One NVRTC compilation unit with one entry point.
struct Kernel {
  std::string name;                 ///< unique in the artifact, e.g. "mlstm_chunkwise_fwd_0"
  std::string family;               ///< kernel family: "rms_norm", "mlstm_chunkwise_fwd", ...
  std::string entry;                ///< the extern "C" entry point (a C identifier)
  std::string tile;                 ///< canonical printed tile attribute; the variant's identity
  std::string source;               ///< CUDA C++ handed to NVRTC
  std::vector<std::string> options; ///< NVRTC options besides the architecture
  std::array<std::uint32_t, 3> block{1, 1, 1}; ///< threads per block (CUDA limits apply)
  std::array<Expr, 3> grid{Expr::constant(1), Expr::constant(1), Expr::constant(1)};
  std::uint32_t sharedBytes = 0;   ///< dynamic shared memory per block
  std::vector<KernelParam> params; ///< the entry point's parameters, in order
  /// The family's configuration (runtime/kernels/KernelFamily.h): the kernel is exactly what
  /// the family renders from it, and the CPU backend executes it.
  nlohmann::json config = nlohmann::json::object();
  /// Set when the configuration is a tuned variant rather than the compiler's default.
  std::optional<KernelTuning> tuning;
  friend bool operator==(const Kernel &, const Kernel &) = default;
};

//===----------------------------------------------------------------------===//
// Buffers and weight bindings
//===----------------------------------------------------------------------===//

struct Buffer {
  BufferId id = 0; ///< equals the buffer's index in Artifact::buffers
  std::string name;
  BufferClass cls = BufferClass::Activation;
  DType dtype = DType::BF16;
  Shape shape;
  /// Byte offset in the arena: present exactly for arena classes, and a multiple of 256 for
  /// every B and S (the validator checks every coefficient is a multiple of 256·div).
  std::optional<Expr> offset;
  /// Workspace buffers may give their size in bytes instead of a shape (shape then empty): a
  /// chunkwise kernel's per-chunk states take ceil(S/L)+1 slots, which no shape of B, S and
  /// constants spells.
  std::optional<Expr> bytes;
  /// Gradient and optimizer buffers: the parameter buffer they belong to (a gradient has its
  /// shape; the runtime splits it into the checkpoint's tensors through that parameter's
  /// binding, and the optimizer step pairs them). Absent for every other class.
  std::optional<BufferId> parameter;
  /// Optimizer buffers (and only they): what they hold for their parameter.
  std::optional<OptimizerRole> role;
  friend bool operator==(const Buffer &, const Buffer &) = default;
};

/// The buffer's size in bytes as an expression. Throws xlc::Error naming the buffer when the
/// shape is not affine or its constant part overflows u64 (validated artifacts never do).
Expr byteSize(const Buffer &buffer);

/// How a weight buffer is filled from checkpoint tensors: the sources concatenated along
/// concatAxis (one source is a plain copy), then, if scaleColumnsBy names a vector tensor, each
/// row of the 2-D result multiplied elementwise by it (an RMSNorm weight folded into the
/// following projection, whose [out, in] rows run over the normalized features).
struct WeightBinding {
  BufferId buffer = 0;
  std::vector<std::string> sources;                     ///< checkpoint tensor names
  std::vector<std::vector<std::uint64_t>> sourceShapes; ///< one shape per source
  std::uint32_t concatAxis = 0;
  std::optional<std::string> scaleColumnsBy;
  friend bool operator==(const WeightBinding &, const WeightBinding &) = default;
};

//===----------------------------------------------------------------------===//
// Steps and functions
//===----------------------------------------------------------------------===//

enum class ArgKind : std::uint8_t { Buffer, Symbol, I64, F32, Expr, Scalar };

/// One launch argument: a buffer's device pointer (for a `buffer` parameter), a size symbol or an
/// i64 constant (for an `i64` parameter), an f32 constant (for an `f32` parameter; finite), or
/// one of the function's scalar arguments (of the parameter's kind, given at the call).
struct Arg {
  ArgKind kind = ArgKind::I64;
  BufferId bufferId = 0;          ///< kind == Buffer
  Symbol symbolValue = Symbol::B; ///< kind == Symbol
  std::int64_t intValue = 0;      ///< kind == I64
  float floatValue = 0;           ///< kind == F32
  artifact::Expr exprValue;       ///< kind == Expr: an i64 evaluated at the call's (B, S)
  std::uint32_t scalarIndex = 0;  ///< kind == Scalar: index into Function::scalars

  static Arg buffer(BufferId id);
  static Arg symbol(Symbol s);
  static Arg i64(std::int64_t v);
  static Arg f32(float v);
  static Arg expr(const artifact::Expr &e);
  static Arg scalar(std::uint32_t index);
  friend bool operator==(const Arg &, const Arg &) = default;
};

/// A kernel that replaces a launch step's kernel for small calls: B ≤ maxBatch. It is of the same
/// family and takes the same parameters (the same arguments), with another configuration — e.g.
/// narrower tiles, so that a call with few sequences still has a block for every SM.
struct BatchVariant {
  std::uint64_t maxBatch = 1;
  KernelIndex kernel = 0;
  friend bool operator==(const BatchVariant &, const BatchVariant &) = default;
};

struct LaunchStep {
  KernelIndex kernel = 0;
  std::vector<Arg> args; ///< must match the kernel's params in count and kind
  /// In ascending maxBatch: a call of B sequences launches the first variant with B ≤ maxBatch,
  /// |kernel| when there is none.
  std::vector<BatchVariant> byBatch;

  /// The kernel a call of |batch| sequences launches.
  KernelIndex kernelFor(std::uint64_t batch) const {
    for (const BatchVariant &v : byBatch)
      if (batch <= v.maxBatch)
        return v.kernel;
    return kernel;
  }
  friend bool operator==(const LaunchStep &, const LaunchStep &) = default;
};

/// D[m, n] = op(A) · op(B) with op(A) [m, k] and op(B) [k, n], then the epilogue: residual_add
/// D = C + op(A)·op(B) (C shaped like D), bias D = op(A)·op(B) + c (c of shape [n]); with
/// |accumulate| D += op(A)·op(B) (epilogue none). Operands are row-major matrices: A is [m, k],
/// or [k, m] when transA; B is [k, n], or [n, k] when transB (the default: a weight in the
/// checkpoint's [out, in] layout, so the forward product is A·Bᵀ). The backward needs the other
/// forms: dX = dY·W (transB false), dW += dYᵀ·X (transA, accumulate). A matrix's rows are the
/// product of its buffer's leading dimensions, its columns the last one. With |aRows| =
/// LastPosition, A is a [B, S, k] buffer read in place with a row stride of S·k from row S-1:
/// op(A) holds the last position of each sequence (m = B, no transA).
struct GemmStep {
  BufferId a = 0, b = 0, d = 0;
  std::optional<BufferId> c; ///< present exactly when epilogue != None
  Expr m, n, k;
  Epilogue epilogue = Epilogue::None;
  bool transA = false;
  bool transB = true;
  bool accumulate = false;
  GemmRows aRows = GemmRows::All;
  friend bool operator==(const GemmStep &, const GemmStep &) = default;
};

/// Copies |bytes| bytes from the start of src to the start of dst (both at least that large).
struct CopyStep {
  BufferId src = 0, dst = 0;
  Expr bytes;
  friend bool operator==(const CopyStep &, const CopyStep &) = default;
};

enum class StepKind : std::uint8_t { Launch, Gemm, Copy };
std::string_view stepKindName(StepKind kind); ///< "launch", "gemm", "copy"

/// What the runtime does around a step for one of its buffers (docs/artifact.md "Duties").
enum class DutyKind : std::uint8_t {
  Zero,       ///< set the buffer to zero right before the step (error flags, counters)
  ErrorFlag,  ///< an i64 the step may set; nonzero after the function is an error it reports
  Accumulate, ///< the step adds into the buffer: it must hold a value before (read and written)
};
std::string_view dutyKindName(DutyKind kind); ///< "zero", "error_flag", "accumulate"
std::optional<DutyKind> parseDutyKind(std::string_view name);

struct Duty {
  DutyKind kind = DutyKind::Zero;
  BufferId buffer = 0;
  friend bool operator==(const Duty &, const Duty &) = default;
};

/// One step of a function. Every step names the model-level op it computes and that op's
/// attributes, so the CPU backend can execute the plan without the CUDA source.
struct Step {
  std::string op;                                  ///< "rms_norm", "linear", "copy", ...
  nlohmann::json attrs = nlohmann::json::object(); ///< an object; numbers finite; never executed
  std::vector<Duty> duties;                        ///< the runtime's work around the step
  std::variant<LaunchStep, GemmStep, CopyStep> body;

  StepKind kind() const { return static_cast<StepKind>(body.index()); }
  const LaunchStep *launch() const { return std::get_if<LaunchStep>(&body); }
  const GemmStep *gemm() const { return std::get_if<GemmStep>(&body); }
  const CopyStep *copy() const { return std::get_if<CopyStep>(&body); }

  static Step makeLaunch(std::string op, nlohmann::json attrs, KernelIndex kernel,
                         std::vector<Arg> args);
  static Step makeGemm(std::string op, nlohmann::json attrs, GemmStep gemm);
  static Step makeCopy(std::string op, BufferId src, BufferId dst, Expr bytes);
  friend bool operator==(const Step &, const Step &) = default;
};

/// The buffers a step touches, in operand order, then the buffers of its duties (repeats
/// possible).
std::vector<BufferId> buffersOf(const Step &step);

/// A named buffer argument or result of a function.
struct FunctionArg {
  std::string name; ///< an identifier, unique among the function's inputs and outputs
  BufferId buffer = 0;
  friend bool operator==(const FunctionArg &, const FunctionArg &) = default;
};

/// A named scalar argument of a function (a learning rate, a step count), passed to launches by
/// ArgKind::Scalar.
struct ScalarParam {
  std::string name;
  ParamKind kind = ParamKind::F32; ///< i64 or f32
  friend bool operator==(const ScalarParam &, const ScalarParam &) = default;
};

/// An entry point of the compiled model (`prefill`, `decode_step`, later `train_step`).
struct Function {
  std::string name;
  std::vector<FunctionArg> inputs;  ///< input-class buffers the caller fills
  std::vector<FunctionArg> outputs; ///< output-class buffers the caller reads
  std::vector<ScalarParam> scalars;
  std::vector<BufferId> states;     ///< state-class buffers the function reads and updates
  std::vector<Step> steps;          ///< executed in order
  const FunctionArg *findInput(std::string_view name) const;
  const FunctionArg *findOutput(std::string_view name) const;
  friend bool operator==(const Function &, const Function &) = default;
};

/// The closed step interval [first, last] in which a buffer is live within one function.
struct LiveRange {
  std::size_t first = 0, last = 0;
};

/// For each buffer id below |bufferCount|, its live range in |function| (nullopt if no step
/// touches it). Ids at or above |bufferCount| are ignored.
std::vector<std::optional<LiveRange>> liveRanges(const Function &function, std::size_t bufferCount);

//===----------------------------------------------------------------------===//
// The artifact
//===----------------------------------------------------------------------===//

struct ModelInfo {
  std::string name;
  std::uint64_t vocabSize = 0;
  std::uint64_t embeddingDim = 0;
  std::uint64_t numBlocks = 0;
  std::uint64_t chunkSize = 0;
  std::uint64_t bosTokenId = 0, eosTokenId = 0, padTokenId = 0; ///< each < vocabSize
  friend bool operator==(const ModelInfo &, const ModelInfo &) = default;
};

struct CompilerInfo {
  std::string name = "xlc";
  std::string version;
  friend bool operator==(const CompilerInfo &, const CompilerInfo &) = default;
};

struct Artifact {
  CompilerInfo compiler;
  std::string targetArch; ///< "sm_90a": sm_<major><minor>, 'a' = arch-specific features
  ModelInfo model;
  std::string deviceHeadersHash; ///< lowercase hex; part of the kernel cache key
  std::vector<Kernel> kernels;
  std::vector<Buffer> buffers;
  std::vector<WeightBinding> weights;
  std::vector<Function> functions;
  Expr arenaBytes; ///< size of the arena all activation/workspace buffers share

  /// Where the artifact was read from (set by the loader, used in messages, not serialized).
  std::string sourceName;

  const Function *findFunction(std::string_view name) const;
  /// The buffer with |id|, or nullptr when out of range.
  const Buffer *findBuffer(BufferId id) const;
  /// sourceName, or "artifact" for one built in memory.
  std::string_view label() const {
    return sourceName.empty() ? std::string_view("artifact") : std::string_view(sourceName);
  }

  /// Equality of the serialized content (sourceName is ignored).
  friend bool operator==(const Artifact &lhs, const Artifact &rhs);
};

} // namespace xlc::artifact

#endif // XLC_RUNTIME_ARTIFACT_ARTIFACT_H
