//===- CpuBackend.cpp - Running an artifact on the CPU in fp32 ------------===//
//
// Construction prepares every function once: each step is classified (launch by its kernel's
// family, GEMM, copy), the launch parameters each kind needs are looked up by name, and the
// buffers each function touches are collected, so that an artifact this backend cannot run is
// rejected before anything is allocated, with the function, step index and op in the message.
// A call then resolves the touched buffers to pointers at its (B, S, first slot) and executes
// the steps in order; every argument is checked against the size of the buffer it addresses
// (at the call's B and S) before an op reads or writes through it.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cpu/CpuBackend.h"

#include "runtime/artifact/Validate.h"
#include "runtime/exec/WeightAssembly.h"
#include "runtime/exec/cpu/CpuOps.h"
#include "runtime/exec/cpu/ThreadPool.h"
#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <set>

namespace xlc::exec {
namespace art = xlc::artifact;

namespace {

//===----------------------------------------------------------------------===//
// Storage types and sizes
//===----------------------------------------------------------------------===//

/// How a buffer's elements are held on the CPU: every float type as fp32.
enum class Storage : std::uint8_t { F32, I32, I64, U8 };

Storage storageOf(art::DType dtype) {
  switch (dtype) {
  case art::DType::F32:
  case art::DType::BF16:
  case art::DType::F16:
    return Storage::F32;
  case art::DType::I32:
    return Storage::I32;
  case art::DType::I64:
    return Storage::I64;
  case art::DType::U8:
    return Storage::U8;
  }
  return Storage::U8;
}

std::uint64_t storageSize(Storage storage) {
  switch (storage) {
  case Storage::F32:
  case Storage::I32:
    return 4;
  case Storage::I64:
    return 8;
  case Storage::U8:
    return 1;
  }
  return 1;
}

std::string_view storageName(Storage storage) {
  switch (storage) {
  case Storage::F32:
    return "a float type (f32, bf16, f16)";
  case Storage::I32:
    return "i32";
  case Storage::I64:
    return "i64";
  case Storage::U8:
    return "u8";
  }
  return "?";
}

/// "12.5 MiB".
std::string humanBytes(std::uint64_t bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, units[unit]);
}

/// a·b, or an error naming |what| on u64 overflow.
std::uint64_t mulChecked(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r;
  check(!__builtin_mul_overflow(a, b, &r), "{}: size overflows u64", what);
  return r;
}

/// Uninitialised memory for |count| elements of T, or an xlc::Error that names what it was for,
/// the limits, and |needs| (every allocation of the backend with its size).
template <typename T>
std::unique_ptr<T[]> allocateArray(std::uint64_t count, std::string_view what,
                                   const Limits &limits, const std::string &needs) {
  const std::uint64_t n = std::max<std::uint64_t>(count, 1);
  try {
    check(n <= std::numeric_limits<std::size_t>::max() / sizeof(T), "{}: size overflows", what);
    return std::make_unique_for_overwrite<T[]>(static_cast<std::size_t>(n));
  } catch (const std::bad_alloc &) {
    fail("cpu backend: cannot allocate {} for the {} at max batch {} and max sequence length {} "
         "(the backend needs {}); use a smaller --max-seq or --max-batch",
         humanBytes(mulChecked(n, sizeof(T), what)), what, limits.maxBatch, limits.maxSeq,
         needs);
  }
}

//===----------------------------------------------------------------------===//
// Prepared functions
//===----------------------------------------------------------------------===//

enum class OpKind : std::uint8_t {
  Embedding,
  RmsNorm,
  NormGate,
  Swiglu,
  SoftCap,
  MlstmStates,  ///< chunkwise phase 1: here the whole cell
  MlstmOutputs, ///< chunkwise phase 2: nothing left to do
  MlstmDecode,
  Gemm,
  Copy,
};

struct ParamSpec {
  std::string_view name;  ///< the artifact's spelling
  art::ParamKind kind;
  std::string_view alias = {}; ///< another accepted spelling (the docs'), or empty
};

using PK = art::ParamKind;

// The launch parameters each kind reads (docs/kernels.md), besides rms_norm's weight, which is
// either a buffer `weight` or an i64 `weight_null` (checked separately). The gate views'
// offsets and strides are spelt igate_offset/i_offset etc.: the artifact's and the docs' names.
const std::vector<ParamSpec> &requiredParams(OpKind kind) {
  static const std::vector<ParamSpec> embedding = {
      {"tokens", PK::Buffer}, {"table", PK::Buffer}, {"out", PK::Buffer},
      {"error", PK::Buffer},  {"rows", PK::I64},     {"vocab", PK::I64}};
  static const std::vector<ParamSpec> rmsNorm = {
      {"x", PK::Buffer}, {"x_offset", PK::I64}, {"x_stride", PK::I64},
      {"y", PK::Buffer}, {"rows", PK::I64},     {"eps", PK::F32}};
  static const std::vector<ParamSpec> normGate = {
      {"h", PK::Buffer},      {"h_offset", PK::I64}, {"h_stride", PK::I64},
      {"weight", PK::Buffer}, {"o", PK::Buffer},     {"o_offset", PK::I64},
      {"o_stride", PK::I64},  {"out", PK::Buffer},   {"rows", PK::I64},
      {"eps", PK::F32}};
  static const std::vector<ParamSpec> swiglu = {
      {"gate", PK::Buffer}, {"gate_offset", PK::I64}, {"gate_stride", PK::I64},
      {"up", PK::Buffer},   {"up_offset", PK::I64},   {"up_stride", PK::I64},
      {"out", PK::Buffer},  {"rows", PK::I64}};
  static const std::vector<ParamSpec> softCap = {
      {"x", PK::Buffer}, {"count", PK::I64}, {"cap", PK::F32}};
  static const std::vector<ParamSpec> cellInputs = {
      {"q", PK::Buffer},
      {"q_offset", PK::I64},
      {"q_stride", PK::I64},
      {"k", PK::Buffer},
      {"k_offset", PK::I64},
      {"k_stride", PK::I64},
      {"v", PK::Buffer},
      {"v_offset", PK::I64},
      {"v_stride", PK::I64},
      {"igate", PK::Buffer},
      {"igate_offset", PK::I64, "i_offset"},
      {"igate_stride", PK::I64, "i_stride"},
      {"fgate", PK::Buffer},
      {"fgate_offset", PK::I64, "f_offset"},
      {"fgate_stride", PK::I64, "f_stride"},
      {"C", PK::Buffer},
      {"n", PK::Buffer},
      {"m", PK::Buffer},
      {"h", PK::Buffer},
      {"batch", PK::I64},
      {"eps", PK::F32},
      {"gate_soft_cap", PK::F32}};
  static const std::vector<ParamSpec> chunkwise = [] {
    std::vector<ParamSpec> p = cellInputs;
    p.push_back({"seq_len", PK::I64});
    return p;
  }();
  static const std::vector<ParamSpec> none;
  switch (kind) {
  case OpKind::Embedding:
    return embedding;
  case OpKind::RmsNorm:
    return rmsNorm;
  case OpKind::NormGate:
    return normGate;
  case OpKind::Swiglu:
    return swiglu;
  case OpKind::SoftCap:
    return softCap;
  case OpKind::MlstmStates:
    return chunkwise;
  case OpKind::MlstmDecode:
    return cellInputs;
  case OpKind::MlstmOutputs:
  case OpKind::Gemm:
  case OpKind::Copy:
    return none;
  }
  return none;
}

struct PreparedStep {
  std::size_t index = 0;
  const art::Step *step = nullptr;
  OpKind kind = OpKind::Gemm;
  const art::Kernel *kernel = nullptr; ///< launches only
  std::vector<art::BufferId> zeroBefore;
  std::optional<art::BufferId> errorFlag;
  std::string where; ///< "prefill step 4 (mlstm_chunkwise, kernel 'mlstm_chunk_states_2')"
};

struct PreparedFunction {
  const art::Function *function = nullptr;
  std::vector<PreparedStep> steps;
  std::vector<art::BufferId> buffers; ///< every buffer a step or a step attribute names
  bool runnable = false;              ///< one i32 [B, S] input and one [B, S, V] output
};

/// Everything a call needs to resolve arguments: its sizes and a pointer per buffer id.
struct Call {
  const PreparedFunction *function = nullptr;
  std::uint64_t batch = 0, seq = 0, firstSlot = 0;
  std::vector<std::byte *> pointers; ///< by buffer id; null for buffers the function never uses
};

//===----------------------------------------------------------------------===//
// The backend
//===----------------------------------------------------------------------===//

class CpuBackend final : public Backend {
public:
  CpuBackend(const art::Artifact &artifact, const weights::Checkpoint &checkpoint, Limits limits,
             unsigned threads);

  std::string_view kind() const override { return "cpu"; }
  std::string description() const override;
  void resetStates(std::uint64_t firstSlot, std::uint64_t count) override;
  void run(std::string_view function, std::uint64_t firstSlot, std::uint64_t batch,
           std::uint64_t seq, std::span<const std::int32_t> tokens, std::span<float> logits,
           Logits which) override;
  std::vector<float> readState(std::uint64_t slot, std::size_t stateIndex) override;

  // Used by the step executors below.
  const art::Buffer &buffer(art::BufferId id) const { return artifact().buffers[id]; }
  /// Elements of buffer |id| at (B, S) in its artifact dtype (= fp32 elements for floats).
  std::uint64_t elementsAt(art::BufferId id, std::uint64_t batch, std::uint64_t seq) const;
  ThreadPool &pool() { return pool_; }

private:
  void prepareFunctions();
  PreparedStep prepareStep(const art::Function &function, std::size_t index);
  void checkBuffers();
  void allocate();
  void loadWeights(const weights::Checkpoint &checkpoint);
  void execute(Call &call, const PreparedStep &step);

  ThreadPool pool_;
  std::vector<art::Expr> byteSizes_;          ///< by buffer id
  std::map<std::string, PreparedFunction, std::less<>> functions_;
  std::vector<std::vector<float>> weights_;   ///< by buffer id (empty for other classes)
  std::vector<art::BufferId> stateIds_;       ///< state buffers in id order
  std::vector<std::uint64_t> stateSlotElems_; ///< fp32 elements per slot, by buffer id
  std::vector<std::unique_ptr<float[]>> states_; ///< by buffer id: maxBatch slots each
  std::uint64_t arenaBytes_ = 0;              ///< 2 · arena_bytes(maxBatch, maxSeq)
  std::unique_ptr<std::byte[]> arena_;
  std::uint64_t inputElements_ = 0, outputElements_ = 0;
  std::unique_ptr<std::int32_t[]> input_;
  std::unique_ptr<float[]> output_;
  std::uint64_t weightFloats_ = 0, stateFloats_ = 0;
  bool profile_ = false; ///< XLC_CPU_PROFILE set: time every step on stderr
};

//===----------------------------------------------------------------------===//
// Reading a step: attributes and launch arguments by parameter name
//===----------------------------------------------------------------------===//

const nlohmann::json *findAttr(const PreparedStep &ps, std::string_view key) {
  const nlohmann::json &attrs = ps.step->attrs;
  if (!attrs.is_object())
    return nullptr;
  auto it = attrs.find(std::string(key));
  return it == attrs.end() ? nullptr : &*it;
}

std::int64_t attrInt(const PreparedStep &ps, std::string_view key) {
  const nlohmann::json *v = findAttr(ps, key);
  check(v != nullptr, "{}: attribute '{}' is missing", ps.where, key);
  check(v->is_number_integer(), "{}: attribute '{}' must be an integer, got {}", ps.where, key,
        v->dump());
  return v->get<std::int64_t>();
}

std::string attrString(const PreparedStep &ps, std::string_view key) {
  const nlohmann::json *v = findAttr(ps, key);
  check(v != nullptr, "{}: attribute '{}' is missing", ps.where, key);
  check(v->is_string(), "{}: attribute '{}' must be a string, got {}", ps.where, key, v->dump());
  return v->get<std::string>();
}

std::optional<double> attrNumber(const PreparedStep &ps, std::string_view key) {
  const nlohmann::json *v = findAttr(ps, key);
  if (v == nullptr)
    return std::nullopt;
  check(v->is_number(), "{}: attribute '{}' must be a number, got {}", ps.where, key, v->dump());
  return v->get<double>();
}

/// The launch arguments of one step at one call, looked up by the kernel's parameter names.
class Args {
public:
  Args(CpuBackend &backend, const Call &call, const PreparedStep &ps)
      : backend_(backend), call_(call), ps_(ps), launch_(*ps.step->launch()) {}

  const std::string &where() const { return ps_.where; }

  /// Index of the first of |names| that the kernel declares, or nullopt.
  std::optional<std::size_t> find(std::initializer_list<std::string_view> names) const {
    for (std::string_view name : names)
      for (std::size_t i = 0; i < ps_.kernel->params.size(); ++i)
        if (ps_.kernel->params[i].name == name)
          return i;
    return std::nullopt;
  }
  bool has(std::string_view name) const { return find({name}).has_value(); }

  std::size_t index(std::initializer_list<std::string_view> names) const {
    std::optional<std::size_t> i = find(names);
    check(i.has_value(), "{}: the kernel has no parameter '{}'", where(), *names.begin());
    return *i;
  }

  /// An i64 parameter: a constant, a size symbol or an expression at the call's (B, S).
  std::int64_t integer(std::initializer_list<std::string_view> names) const {
    const std::size_t i = index(names);
    const art::Arg &arg = launch_.args.at(i);
    const std::string &name = ps_.kernel->params[i].name;
    std::uint64_t value = 0;
    switch (arg.kind) {
    case art::ArgKind::I64:
      return arg.intValue;
    case art::ArgKind::Symbol: {
      std::optional<std::uint64_t> v = art::symbolValue(arg.symbolValue, call_.batch, call_.seq);
      check(v.has_value(), "{}: parameter '{}' overflows", where(), name);
      value = *v;
      break;
    }
    case art::ArgKind::Expr:
      value = arg.exprValue.evaluate(call_.batch, call_.seq,
                                     fmt::format("{} parameter '{}'", where(), name));
      break;
    default:
      fail("{}: parameter '{}' must be an integer argument", where(), name);
    }
    check(value <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
          "{}: parameter '{}' = {} is out of range", where(), name, value);
    return static_cast<std::int64_t>(value);
  }

  double real(std::initializer_list<std::string_view> names) const {
    const std::size_t i = index(names);
    const art::Arg &arg = launch_.args.at(i);
    check(arg.kind == art::ArgKind::F32, "{}: parameter '{}' must be an f32 argument", where(),
          ps_.kernel->params[i].name);
    return arg.floatValue;
  }

  /// The op's attribute |attr| if present (exact, double), else the f32 launch argument.
  double scalar(std::string_view attr, std::initializer_list<std::string_view> names) const {
    if (std::optional<double> v = attrNumber(ps_, attr))
      return *v;
    return real(names);
  }

  art::BufferId bufferId(std::initializer_list<std::string_view> names) const {
    const std::size_t i = index(names);
    const art::Arg &arg = launch_.args.at(i);
    check(arg.kind == art::ArgKind::Buffer, "{}: parameter '{}' must be a buffer argument",
          where(), ps_.kernel->params[i].name);
    return arg.bufferId;
  }

  /// The pointer of a buffer parameter of storage |storage|, after checking that it holds at
  /// least |needed| elements at the call's sizes.
  std::byte *pointer(std::initializer_list<std::string_view> names, Storage storage,
                     std::uint64_t needed) const {
    const art::BufferId id = bufferId(names);
    const art::Buffer &buf = backend_.buffer(id);
    check(storageOf(buf.dtype) == storage, "{}: buffer '{}' ({}) passed as '{}' must be {}",
          where(), buf.name, art::dtypeName(buf.dtype), *names.begin(), storageName(storage));
    const std::uint64_t have = backend_.elementsAt(id, call_.batch, call_.seq);
    check(needed <= have,
          "{}: '{}' needs {} elements of buffer '{}', which holds {} at B={}, S={}", where(),
          *names.begin(), needed, buf.name, have, call_.batch, call_.seq);
    std::byte *p = call_.pointers.at(id);
    check(p != nullptr, "{}: buffer '{}' has no storage in this function", where(), buf.name);
    return p;
  }
  float *floats(std::initializer_list<std::string_view> names, std::uint64_t needed) const {
    return reinterpret_cast<float *>(pointer(names, Storage::F32, needed));
  }

  /// The view (name, name_offset, name_stride) of |rows| rows of |width| elements, checked to
  /// lie inside its buffer. |shortName| is the documented alternative prefix (docs/kernels.md
  /// spells the gate views' scalars i_offset, f_offset, ...).
  cpu::View view(std::string_view name, std::int64_t rows, std::int64_t width,
                 std::string_view shortName = {}) const {
    const std::string offsetName = fmt::format("{}_offset", name);
    const std::string strideName = fmt::format("{}_stride", name);
    const std::string shortOffset = fmt::format("{}_offset", shortName.empty() ? name : shortName);
    const std::string shortStride = fmt::format("{}_stride", shortName.empty() ? name : shortName);
    const std::int64_t offset = integer({offsetName, shortOffset});
    const std::int64_t stride = integer({strideName, shortStride});
    check(offset >= 0 && stride >= 0 && rows >= 0 && width >= 0,
          "{}: view '{}' has a negative offset ({}), stride ({}), rows ({}) or width ({})",
          where(), name, offset, stride, rows, width);
    std::uint64_t end = 0; // one past the last element read
    if (rows > 0 && width > 0) {
      std::uint64_t last = mulChecked(static_cast<std::uint64_t>(rows - 1),
                                      static_cast<std::uint64_t>(stride), where());
      check(!__builtin_add_overflow(last, static_cast<std::uint64_t>(offset + width), &end),
            "{}: view '{}' overflows", where(), name);
    }
    const float *base = floats({name}, end);
    return {base, offset, stride};
  }

  /// The constant last dimension of a buffer parameter (the feature width of row-wise ops).
  std::int64_t lastDim(std::initializer_list<std::string_view> names) const {
    const art::Buffer &buf = backend_.buffer(bufferId(names));
    check(!buf.shape.empty() && buf.shape.back().isConstant(),
          "{}: buffer '{}' passed as '{}' must have a constant last dimension, has shape {}",
          where(), buf.name, *names.begin(), art::shapeToString(buf.shape));
    return static_cast<std::int64_t>(buf.shape.back().value);
  }

private:
  CpuBackend &backend_;
  const Call &call_;
  const PreparedStep &ps_;
  const art::LaunchStep &launch_;
};

std::int64_t positive(std::int64_t value, std::string_view what, const std::string &where) {
  check(value > 0, "{}: {} must be positive, got {}", where, what, value);
  return value;
}

std::uint64_t u64(std::int64_t v) { return static_cast<std::uint64_t>(std::max<std::int64_t>(v, 0)); }

//===----------------------------------------------------------------------===//
// Step executors
//===----------------------------------------------------------------------===//

void runEmbedding(CpuBackend &backend, const Call &call, const PreparedStep &ps) {
  Args a(backend, call, ps);
  const std::int64_t rows = a.integer({"rows"}), vocab = a.integer({"vocab"});
  check(rows >= 0, "{}: rows must be non-negative, got {}", ps.where, rows);
  const art::Buffer &table = backend.buffer(a.bufferId({"table"}));
  check(table.shape.size() == 2 && table.shape[0].isConstant() && table.shape[1].isConstant(),
        "{}: the embedding table '{}' must be [vocab, dim], has shape {}", ps.where, table.name,
        art::shapeToString(table.shape));
  check(vocab > 0 && static_cast<std::uint64_t>(vocab) == table.shape[0].value,
        "{}: vocab = {} but the table '{}' has {} rows", ps.where, vocab, table.name,
        table.shape[0].value);
  const std::int64_t dim = static_cast<std::int64_t>(table.shape[1].value);
  const auto *tokens =
      reinterpret_cast<const std::int32_t *>(a.pointer({"tokens"}, Storage::I32, u64(rows)));
  const float *tableData = a.floats({"table"}, u64(vocab) * u64(dim));
  float *out = a.floats({"out"}, u64(rows) * u64(dim));
  auto *error = reinterpret_cast<std::int64_t *>(a.pointer({"error"}, Storage::I64, 1));

  *error = cpu::embedding(backend.pool(), tokens, tableData, vocab, dim, out, rows);
  if (*error != 0) {
    const std::int64_t row = *error - 1;
    const std::int64_t seq = static_cast<std::int64_t>(call.seq);
    const std::string position =
        rows == static_cast<std::int64_t>(call.batch * call.seq)
            ? fmt::format("sequence {} (slot {}), position {}", row / seq,
                          call.firstSlot + static_cast<std::uint64_t>(row / seq), row % seq)
            : fmt::format("row {}", row);
    fail("{}: token id {} at {} is outside the vocabulary [0, {})",
         call.function->function->name, tokens[row], position, vocab);
  }
}

void runRmsNorm(CpuBackend &backend, const Call &call, const PreparedStep &ps) {
  Args a(backend, call, ps);
  const std::int64_t rows = a.integer({"rows"});
  const std::int64_t dim = a.lastDim({"y"});
  const cpu::View x = a.view("x", rows, dim);
  const float *weight = nullptr;
  if (a.has("weight")) {
    weight = a.floats({"weight"}, u64(dim));
  } else {
    check(a.integer({"weight_null"}) == 0,
          "{}: weight_null must be 0 (a null weight pointer), got {}", ps.where,
          a.integer({"weight_null"}));
  }
  float *y = a.floats({"y"}, u64(rows) * u64(dim));
  cpu::rmsNorm(backend.pool(), x, weight, y, rows, dim, a.scalar("eps", {"eps"}));
}

void runNormGate(CpuBackend &backend, const Call &call, const PreparedStep &ps) {
  Args a(backend, call, ps);
  const std::int64_t rows = a.integer({"rows"});
  const std::int64_t width = a.lastDim({"out"});
  const std::int64_t numHeads = positive(attrInt(ps, "num_heads"), "num_heads", ps.where);
  check(width % numHeads == 0, "{}: the output width {} is not a multiple of num_heads {}",
        ps.where, width, numHeads);
  const cpu::View h = a.view("h", rows, width);
  const cpu::View o = a.view("o", rows, width);
  const float *weight = a.floats({"weight"}, u64(width));
  float *out = a.floats({"out"}, u64(rows) * u64(width));
  cpu::normGate(backend.pool(), h, weight, o, out, rows, numHeads, width / numHeads,
                a.scalar("eps", {"eps"}));
}

void runSwiglu(CpuBackend &backend, const Call &call, const PreparedStep &ps) {
  Args a(backend, call, ps);
  const std::int64_t rows = a.integer({"rows"});
  const std::int64_t dim = a.lastDim({"out"});
  const cpu::View gate = a.view("gate", rows, dim);
  const cpu::View up = a.view("up", rows, dim);
  float *out = a.floats({"out"}, u64(rows) * u64(dim));
  cpu::swiglu(backend.pool(), gate, up, out, rows, dim);
}

void runSoftCap(CpuBackend &backend, const Call &call, const PreparedStep &ps) {
  Args a(backend, call, ps);
  const std::int64_t count = a.integer({"count"});
  const double cap = a.scalar("cap", {"cap"});
  check(cap > 0.0, "{}: cap must be positive, got {}", ps.where, cap);
  float *x = a.floats({"x"}, u64(count));
  cpu::softCap(backend.pool(), x, count, cap);
}

/// Both mLSTM launches that compute: the chunkwise "states" phase (the whole cell, see
/// CpuBackend.h) and the decode step (seq = 1, row = b).
void runMlstm(CpuBackend &backend, const Call &call, const PreparedStep &ps) {
  Args a(backend, call, ps);
  cpu::MlstmCell cell;
  cell.numHeads = positive(attrInt(ps, "num_heads"), "num_heads", ps.where);
  cell.dqk = positive(attrInt(ps, "qk_head_dim"), "qk_head_dim", ps.where);
  cell.dv = positive(attrInt(ps, "v_head_dim"), "v_head_dim", ps.where);
  cell.batch = a.integer({"batch"});
  cell.seq = ps.kind == OpKind::MlstmStates ? a.integer({"seq_len"}) : 1;
  check(cell.batch >= 0 && cell.seq >= 0, "{}: batch ({}) and seq_len ({}) must be non-negative",
        ps.where, cell.batch, cell.seq);

  const std::string inputGate = attrString(ps, "input_gate");
  if (inputGate == "exp")
    cell.inputGate = cpu::InputGate::Exp;
  else if (inputGate == "sigmoid")
    cell.inputGate = cpu::InputGate::Sigmoid;
  else
    fail("{}: input_gate must be \"exp\" or \"sigmoid\", got \"{}\"", ps.where, inputGate);
  const std::string normalizer = attrString(ps, "normalizer");
  if (normalizer == "max_abs")
    cell.normalizer = cpu::Normalizer::MaxAbs;
  else if (normalizer == "none")
    cell.normalizer = cpu::Normalizer::None;
  else
    fail("{}: normalizer must be \"max_abs\" or \"none\", got \"{}\"", ps.where, normalizer);
  cell.eps = a.scalar("eps", {"eps"});
  cell.gateSoftCap = a.scalar("gate_soft_cap", {"gate_soft_cap"});
  check(cell.eps >= 0.0 && cell.gateSoftCap >= 0.0,
        "{}: eps ({}) and gate_soft_cap ({}) must be non-negative", ps.where, cell.eps,
        cell.gateSoftCap);

  const std::int64_t rows = cell.batch * cell.seq;
  const std::uint64_t pairs = u64(cell.batch) * u64(cell.numHeads);
  const std::int64_t qkWidth = cell.numHeads * cell.dqk, vWidth = cell.numHeads * cell.dv;
  cell.q = a.view("q", rows, qkWidth);
  cell.k = a.view("k", rows, qkWidth);
  cell.v = a.view("v", rows, vWidth);
  cell.igate = a.view("igate", rows, cell.numHeads, "i");
  cell.fgate = a.view("fgate", rows, cell.numHeads, "f");
  cell.C = a.floats({"C"}, pairs * u64(cell.dqk) * u64(cell.dv));
  cell.n = a.floats({"n"}, pairs * u64(cell.dqk));
  cell.m = a.floats({"m"}, pairs);
  cell.h = a.floats({"h"}, u64(rows) * u64(vWidth));
  cpu::mlstmRecurrent(backend.pool(), cell);
}

void runGemm(CpuBackend &backend, const Call &call, const PreparedStep &ps) {
  const art::GemmStep &g = *ps.step->gemm();
  const std::uint64_t m = g.m.evaluate(call.batch, call.seq, ps.where + " m");
  const std::uint64_t n = g.n.evaluate(call.batch, call.seq, ps.where + " n");
  const std::uint64_t k = g.k.evaluate(call.batch, call.seq, ps.where + " k");
  const auto operand = [&](art::BufferId id, std::uint64_t needed, std::string_view role) {
    const art::Buffer &buf = backend.buffer(id);
    check(storageOf(buf.dtype) == Storage::F32, "{}: GEMM operand {} '{}' must be a float buffer",
          ps.where, role, buf.name);
    const std::uint64_t have = backend.elementsAt(id, call.batch, call.seq);
    check(needed <= have, "{}: GEMM operand {} '{}' needs {} elements, holds {} at B={}, S={}",
          ps.where, role, buf.name, needed, have, call.batch, call.seq);
    std::byte *p = call.pointers.at(id);
    check(p != nullptr, "{}: buffer '{}' has no storage in this function", ps.where, buf.name);
    return reinterpret_cast<float *>(p);
  };
  const float *aData = operand(g.a, mulChecked(m, k, ps.where), "A");
  const float *bData = operand(g.b, mulChecked(n, k, ps.where), "B");
  float *dData = operand(g.d, mulChecked(m, n, ps.where), "D");
  cpu::GemmEpilogue epilogue = cpu::GemmEpilogue::None;
  const float *extra = nullptr;
  switch (g.epilogue) {
  case art::Epilogue::None:
    break;
  case art::Epilogue::Bias:
    check(g.c.has_value(), "{}: a bias epilogue needs a bias buffer", ps.where);
    epilogue = cpu::GemmEpilogue::Bias;
    extra = operand(*g.c, n, "bias");
    break;
  case art::Epilogue::ResidualAdd:
    check(g.c.has_value(), "{}: a residual epilogue needs a C buffer", ps.where);
    epilogue = cpu::GemmEpilogue::ResidualAdd;
    extra = operand(*g.c, mulChecked(m, n, ps.where), "C");
    break;
  }
  cpu::gemm(backend.pool(), static_cast<std::int64_t>(m), static_cast<std::int64_t>(n),
            static_cast<std::int64_t>(k), aData, bData, dData, epilogue, extra);
}

void runCopy(CpuBackend &backend, const Call &call, const PreparedStep &ps) {
  const art::CopyStep &c = *ps.step->copy();
  const art::Buffer &src = backend.buffer(c.src), &dst = backend.buffer(c.dst);
  check(src.dtype == dst.dtype, "{}: copy from '{}' ({}) to '{}' ({}) changes the dtype",
        ps.where, src.name, art::dtypeName(src.dtype), dst.name, art::dtypeName(dst.dtype));
  const std::uint64_t bytes = c.bytes.evaluate(call.batch, call.seq, ps.where);
  const std::uint64_t size = art::dtypeSize(src.dtype);
  check(bytes % size == 0, "{}: copies {} bytes, not a whole number of {} elements", ps.where,
        bytes, art::dtypeName(src.dtype));
  // Bytes in the artifact's dtype become elements in the CPU storage type.
  const std::uint64_t elements = bytes / size;
  check(elements <= backend.elementsAt(c.src, call.batch, call.seq) &&
            elements <= backend.elementsAt(c.dst, call.batch, call.seq),
        "{}: copies {} elements, more than '{}' or '{}' hold", ps.where, elements, src.name,
        dst.name);
  std::byte *from = call.pointers.at(c.src), *to = call.pointers.at(c.dst);
  check(from && to, "{}: copy buffers have no storage in this function", ps.where);
  std::memmove(to, from, elements * storageSize(storageOf(src.dtype)));
}

//===----------------------------------------------------------------------===//
// CpuBackend
//===----------------------------------------------------------------------===//

CpuBackend::CpuBackend(const art::Artifact &artifact, const weights::Checkpoint &checkpoint,
                       Limits limits, unsigned threads)
    : Backend(artifact, limits), pool_(threads) {
  check(limits.maxBatch >= 1 && limits.maxSeq >= 1,
        "cpu backend: max batch ({}) and max sequence length ({}) must be at least 1",
        limits.maxBatch, limits.maxSeq);
  art::validate(artifact, limits.maxBatch, limits.maxSeq);
  for (const art::Buffer &b : artifact.buffers)
    byteSizes_.push_back(art::byteSize(b));
  prepareFunctions();
  checkBuffers();
  checkWeights(artifact, checkpoint);
  allocate();
  loadWeights(checkpoint);
  resetStates(0, limits.maxBatch);
  const char *profile = std::getenv("XLC_CPU_PROFILE");
  profile_ = profile != nullptr && *profile != '\0' && std::string_view(profile) != "0";
}

std::uint64_t CpuBackend::elementsAt(art::BufferId id, std::uint64_t batch,
                                     std::uint64_t seq) const {
  const art::Buffer &b = buffer(id);
  return byteSizes_[id].evaluate(batch, seq, b.name) / art::dtypeSize(b.dtype);
}

PreparedStep CpuBackend::prepareStep(const art::Function &function, std::size_t index) {
  const art::Step &step = function.steps[index];
  PreparedStep ps;
  ps.index = index;
  ps.step = &step;
  const std::string label(artifact().label());
  switch (step.kind()) {
  case art::StepKind::Gemm:
    ps.kind = OpKind::Gemm;
    ps.where = fmt::format("{} step {} ({}, gemm)", function.name, index, step.op);
    break;
  case art::StepKind::Copy:
    ps.kind = OpKind::Copy;
    ps.where = fmt::format("{} step {} ({}, copy)", function.name, index, step.op);
    break;
  case art::StepKind::Launch: {
    ps.kernel = &artifact().kernels.at(step.launch()->kernel);
    const std::string &family = ps.kernel->family;
    ps.where = fmt::format("{} step {} ({}, kernel '{}')", function.name, index, step.op,
                           ps.kernel->name);
    // The chunkwise cell's two entry points, by family or by the op's phase attribute.
    std::string phase;
    if (const nlohmann::json *p = findAttr(ps, "phase"); p && p->is_string())
      phase = p->get<std::string>();
    if (family == "embedding")
      ps.kind = OpKind::Embedding;
    else if (family == "rms_norm")
      ps.kind = OpKind::RmsNorm;
    else if (family == "norm_gate")
      ps.kind = OpKind::NormGate;
    else if (family == "swiglu")
      ps.kind = OpKind::Swiglu;
    else if (family == "soft_cap")
      ps.kind = OpKind::SoftCap;
    else if (family == "mlstm_chunk_states" ||
             (step.op == "mlstm_chunkwise" && phase == "states"))
      ps.kind = OpKind::MlstmStates;
    else if (family == "mlstm_chunk_outputs" ||
             (step.op == "mlstm_chunkwise" && phase == "outputs"))
      ps.kind = OpKind::MlstmOutputs;
    else if (family == "mlstm_decode_step")
      ps.kind = OpKind::MlstmDecode;
    else
      fail("{}: function '{}' step {}: op '{}' (kernel '{}', family '{}') is not supported by "
           "the CPU backend",
           label, function.name, index, step.op, ps.kernel->name, family);

    // Every parameter this kind reads must be declared, with the expected kind.
    const auto declared = [&](std::string_view name) -> const art::KernelParam * {
      for (const art::KernelParam &p : ps.kernel->params)
        if (p.name == name)
          return &p;
      return nullptr;
    };
    for (const ParamSpec &spec : requiredParams(ps.kind)) {
      const art::KernelParam *found = declared(spec.name);
      if (!found && !spec.alias.empty())
        found = declared(spec.alias);
      check(found != nullptr, "{}: {}: kernel family '{}' needs a parameter '{}'", label,
            ps.where, family, spec.name);
      check(found->kind == spec.kind, "{}: {}: parameter '{}' must be of kind {}, is {}", label,
            ps.where, found->name, art::paramKindName(spec.kind),
            art::paramKindName(found->kind));
    }
    if (ps.kind == OpKind::RmsNorm) {
      const art::KernelParam *w = declared("weight");
      const art::KernelParam *null = declared("weight_null");
      check((w && w->kind == PK::Buffer) || (null && null->kind == PK::I64),
            "{}: {}: rms_norm needs a buffer parameter 'weight' or an i64 'weight_null'", label,
            ps.where);
    }
    break;
  }
  }

  // Runtime duties (docs/artifact.md): buffers to zero before the step, an error flag after it.
  if (const nlohmann::json *zero = findAttr(ps, "zero_before")) {
    check(zero->is_array(), "{}: {}: zero_before must be a list of buffer ids", label, ps.where);
    for (const nlohmann::json &id : *zero) {
      check(id.is_number_unsigned() && id.get<std::uint64_t>() < artifact().buffers.size(),
            "{}: {}: zero_before names {}, not a buffer id", label, ps.where, id.dump());
      const art::Buffer &b = buffer(static_cast<art::BufferId>(id.get<std::uint64_t>()));
      check(art::isArenaClass(b.cls), "{}: {}: zero_before names '{}', a {} buffer", label,
            ps.where, b.name, art::bufferClassName(b.cls));
      ps.zeroBefore.push_back(b.id);
    }
  }
  if (const nlohmann::json *flag = findAttr(ps, "error_flag")) {
    check(flag->is_number_unsigned() && flag->get<std::uint64_t>() < artifact().buffers.size(),
          "{}: {}: error_flag {} is not a buffer id", label, ps.where, flag->dump());
    const art::Buffer &b = buffer(static_cast<art::BufferId>(flag->get<std::uint64_t>()));
    check(b.dtype == art::DType::I64 && art::isArenaClass(b.cls),
          "{}: {}: error_flag '{}' must be an i64 arena buffer", label, ps.where, b.name);
    ps.errorFlag = b.id;
  }
  return ps;
}

void CpuBackend::prepareFunctions() {
  const art::Artifact &a = artifact();
  for (const art::Function &function : a.functions) {
    PreparedFunction pf;
    pf.function = &function;
    std::set<art::BufferId> used(function.inputs.begin(), function.inputs.end());
    used.insert(function.outputs.begin(), function.outputs.end());
    used.insert(function.states.begin(), function.states.end());
    for (std::size_t i = 0; i < function.steps.size(); ++i) {
      PreparedStep ps = prepareStep(function, i);
      for (art::BufferId id : art::buffersOf(*ps.step))
        used.insert(id);
      used.insert(ps.zeroBefore.begin(), ps.zeroBefore.end());
      if (ps.errorFlag)
        used.insert(*ps.errorFlag);
      pf.steps.push_back(std::move(ps));
    }
    pf.buffers.assign(used.begin(), used.end());

    // The calling convention run() implements: token ids i32 [B, S] in, logits [B, S, V] out.
    if (function.inputs.size() == 1 && function.outputs.size() == 1) {
      const art::Buffer &in = buffer(function.inputs[0]);
      const art::Buffer &out = buffer(function.outputs[0]);
      const std::optional<art::Expr> inElems = art::shapeProduct(in.shape);
      const std::optional<art::Expr> outElems = art::shapeProduct(out.shape);
      check(in.dtype == art::DType::I32 && inElems &&
                inElems->normalized() == art::Expr::batchSeq(1),
            "{}: function '{}': input '{}' must be i32 token ids [B, S], is {} {}", a.label(),
            function.name, in.name, art::dtypeName(in.dtype), art::shapeToString(in.shape));
      check(storageOf(out.dtype) == Storage::F32 && outElems &&
                outElems->normalized() == art::Expr::batchSeq(a.model.vocabSize),
            "{}: function '{}': output '{}' must be float logits [B, S, {}], is {} {}",
            a.label(), function.name, out.name, a.model.vocabSize, art::dtypeName(out.dtype),
            art::shapeToString(out.shape));
      pf.runnable = true;
    }
    functions_.emplace(function.name, std::move(pf));
  }
}

void CpuBackend::checkBuffers() {
  const art::Artifact &a = artifact();
  stateSlotElems_.assign(a.buffers.size(), 0);
  for (const art::Buffer &b : a.buffers) {
    if (b.cls == art::BufferClass::Weight) {
      check(storageOf(b.dtype) == Storage::F32, "{}: weight buffer '{}' has dtype {}; the CPU "
            "backend holds weights as fp32 and needs a float dtype", a.label(), b.name,
            art::dtypeName(b.dtype));
    } else if (b.cls == art::BufferClass::State) {
      check(storageOf(b.dtype) == Storage::F32 && !b.shape.empty() &&
                b.shape[0].kind == art::Dim::Kind::Batch &&
                std::all_of(b.shape.begin() + 1, b.shape.end(),
                            [](const art::Dim &d) { return d.isConstant(); }),
            "{}: state buffer '{}' must be a float buffer of shape [B, <constants>], is {} {}",
            a.label(), b.name, art::dtypeName(b.dtype), art::shapeToString(b.shape));
      std::uint64_t perSlot = 1;
      for (std::size_t i = 1; i < b.shape.size(); ++i)
        perSlot = mulChecked(perSlot, b.shape[i].value, b.name);
      stateSlotElems_[b.id] = perSlot;
      stateIds_.push_back(b.id);
    }
  }
}

void CpuBackend::allocate() {
  const art::Artifact &a = artifact();
  const Limits &lim = limits();
  // The arena: every planned byte offset and size doubled (see CpuBackend.h).
  arenaBytes_ = mulChecked(2, a.arenaBytes.evaluate(lim.maxBatch, lim.maxSeq, "arena"), "arena");
  // One token input and one logits output, shared by the functions (they never run at once).
  for (const auto &[name, pf] : functions_) {
    if (!pf.runnable)
      continue;
    inputElements_ = std::max(inputElements_,
                              elementsAt(pf.function->inputs[0], lim.maxBatch, lim.maxSeq));
    outputElements_ = std::max(outputElements_,
                               elementsAt(pf.function->outputs[0], lim.maxBatch, lim.maxSeq));
  }
  std::vector<std::uint64_t> stateCounts;
  for (art::BufferId id : stateIds_) {
    stateCounts.push_back(mulChecked(stateSlotElems_[id], lim.maxBatch, buffer(id).name));
    stateFloats_ += stateCounts.back();
  }
  std::uint64_t weightBytes = 0;
  for (const art::WeightBinding &binding : a.weights)
    weightBytes += 4 * elementsAt(binding.buffer, 1, 1);
  const std::string needs = fmt::format(
      "arena {}, logits {}, token ids {}, states {}, weights {}", humanBytes(arenaBytes_),
      humanBytes(mulChecked(outputElements_, 4, "logits")), humanBytes(4 * inputElements_),
      humanBytes(mulChecked(stateFloats_, 4, "states")), humanBytes(weightBytes));

  arena_ = allocateArray<std::byte>(arenaBytes_, "activation arena", lim, needs);
  input_ = allocateArray<std::int32_t>(inputElements_, "token ids", lim, needs);
  output_ = allocateArray<float>(outputElements_, "logits", lim, needs);
  states_.resize(a.buffers.size());
  for (std::size_t i = 0; i < stateIds_.size(); ++i)
    states_[stateIds_[i]] = allocateArray<float>(
        stateCounts[i], fmt::format("state '{}'", buffer(stateIds_[i]).name), lim, needs);
}

void CpuBackend::loadWeights(const weights::Checkpoint &checkpoint) {
  const art::Artifact &a = artifact();
  weights_.resize(a.buffers.size());
  std::vector<bool> bound(a.buffers.size(), false);
  for (const art::WeightBinding &binding : a.weights) {
    check(binding.buffer < a.buffers.size() && !bound[binding.buffer],
          "{}: weight buffer {} is bound twice", a.label(), binding.buffer);
    bound[binding.buffer] = true;
    try {
      weights_[binding.buffer] = assembleWeight(a, binding, checkpoint);
    } catch (const std::bad_alloc &) {
      fail("cpu backend: cannot allocate {} for weight '{}'",
           humanBytes(elementsAt(binding.buffer, 1, 1) * 4), buffer(binding.buffer).name);
    }
    weightFloats_ += weights_[binding.buffer].size();
  }
  for (const art::Buffer &b : a.buffers)
    check(b.cls != art::BufferClass::Weight || bound[b.id],
          "{}: weight buffer '{}' has no weight binding", a.label(), b.name);
}

std::string CpuBackend::description() const {
  return fmt::format("cpu: {} thread{}, arena {}, weights {}, states {} ({} slot{}), logits "
                     "buffer {}",
                     pool_.size(), pool_.size() == 1 ? "" : "s", humanBytes(arenaBytes_),
                     humanBytes(weightFloats_ * 4), humanBytes(stateFloats_ * 4),
                     limits().maxBatch, limits().maxBatch == 1 ? "" : "s",
                     humanBytes(outputElements_ * 4));
}

void CpuBackend::resetStates(std::uint64_t firstSlot, std::uint64_t count) {
  checkSlots(firstSlot, count, "resetStates");
  for (art::BufferId id : stateIds_) {
    const std::uint64_t per = stateSlotElems_[id];
    std::fill_n(states_[id].get() + firstSlot * per, count * per, 0.0f);
  }
}

std::vector<float> CpuBackend::readState(std::uint64_t slot, std::size_t stateIndex) {
  checkSlots(slot, 1, "readState");
  check(stateIndex < stateIds_.size(),
        "readState: state index {} is out of range; the artifact has {} state buffers",
        stateIndex, stateIds_.size());
  const art::BufferId id = stateIds_[stateIndex];
  const std::uint64_t per = stateSlotElems_[id];
  const float *begin = states_[id].get() + slot * per;
  return std::vector<float>(begin, begin + per);
}

void CpuBackend::execute(Call &call, const PreparedStep &ps) {
  for (art::BufferId id : ps.zeroBefore) {
    const std::uint64_t bytes =
        elementsAt(id, call.batch, call.seq) * storageSize(storageOf(buffer(id).dtype));
    std::memset(call.pointers[id], 0, bytes);
  }
  switch (ps.kind) {
  case OpKind::Embedding:
    runEmbedding(*this, call, ps);
    break;
  case OpKind::RmsNorm:
    runRmsNorm(*this, call, ps);
    break;
  case OpKind::NormGate:
    runNormGate(*this, call, ps);
    break;
  case OpKind::Swiglu:
    runSwiglu(*this, call, ps);
    break;
  case OpKind::SoftCap:
    runSoftCap(*this, call, ps);
    break;
  case OpKind::MlstmStates:
  case OpKind::MlstmDecode:
    runMlstm(*this, call, ps);
    break;
  case OpKind::MlstmOutputs:
    break; // h and the final state were computed by the "states" step
  case OpKind::Gemm:
    runGemm(*this, call, ps);
    break;
  case OpKind::Copy:
    runCopy(*this, call, ps);
    break;
  }
  if (ps.errorFlag) {
    const std::int64_t flag = *reinterpret_cast<const std::int64_t *>(call.pointers[*ps.errorFlag]);
    check(flag == 0, "{}: the step reported error {} (flag '{}')", ps.where, flag,
          buffer(*ps.errorFlag).name);
  }
}

void CpuBackend::run(std::string_view function, std::uint64_t firstSlot, std::uint64_t batch,
                     std::uint64_t seq, std::span<const std::int32_t> tokens,
                     std::span<float> logits, Logits which) {
  const art::Function &fn = checkRun(function, firstSlot, batch, seq, tokens, logits, which);
  const PreparedFunction &pf = functions_.find(fn.name)->second;
  check(pf.runnable, "{}: function '{}' does not take token ids and return logits",
        artifact().label(), fn.name);

  Call call;
  call.function = &pf;
  call.batch = batch;
  call.seq = seq;
  call.firstSlot = firstSlot;
  call.pointers.assign(artifact().buffers.size(), nullptr);
  const art::BufferId outputId = fn.outputs[0];
  // All positions: the logits span is exactly the output buffer at (B, S), so the plan writes
  // into it directly; for the last positions the rows are copied out of output_ afterwards.
  float *output = which == Logits::AllPositions ? logits.data() : output_.get();
  for (art::BufferId id : pf.buffers) {
    const art::Buffer &b = buffer(id);
    std::byte *p = nullptr;
    switch (b.cls) {
    case art::BufferClass::Weight:
      p = reinterpret_cast<std::byte *>(weights_[id].data());
      break;
    case art::BufferClass::State:
      p = reinterpret_cast<std::byte *>(states_[id].get() + firstSlot * stateSlotElems_[id]);
      break;
    case art::BufferClass::Input:
      check(id == fn.inputs[0], "{}: buffer '{}' is another function's input", fn.name, b.name);
      p = reinterpret_cast<std::byte *>(input_.get());
      break;
    case art::BufferClass::Output:
      check(id == outputId, "{}: buffer '{}' is another function's output", fn.name, b.name);
      p = reinterpret_cast<std::byte *>(output);
      break;
    case art::BufferClass::Activation:
    case art::BufferClass::Workspace:
      // Doubled offsets: validate() proved offset + size ≤ arena_bytes at every (B, S) in the
      // limits, so 2·offset + 2·size ≤ arenaBytes_.
      p = arena_.get() + 2 * b.offset->evaluate(batch, seq, b.name);
      break;
    }
    call.pointers[id] = p;
  }

  std::copy(tokens.begin(), tokens.end(), input_.get());
  for (const PreparedStep &ps : pf.steps) {
    if (!profile_) {
      execute(call, ps);
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    execute(call, ps);
    std::fprintf(stderr, "[xlc cpu] %s at B=%llu, S=%llu: %.3f ms\n", ps.where.c_str(),
                 static_cast<unsigned long long>(batch), static_cast<unsigned long long>(seq),
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }

  if (which == Logits::LastPosition) {
    const std::uint64_t v = vocabSize();
    for (std::uint64_t b = 0; b < batch; ++b)
      std::copy_n(output_.get() + (b * seq + seq - 1) * v, v, logits.data() + b * v);
  }
}

} // namespace

std::unique_ptr<Backend> createCpuBackend(const art::Artifact &artifact,
                                          const weights::Checkpoint &checkpoint, Limits limits,
                                          unsigned threads) {
  return std::make_unique<CpuBackend>(artifact, checkpoint, limits, threads);
}

} // namespace xlc::exec
