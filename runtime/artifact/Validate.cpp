//===- Validate.cpp - Structural and limit checks of an artifact ----------===//
//
// Why four evaluation points are enough. Every expression e(B, S) = ceil((c + b·B + s·S +
// bs·B·S)/div) has non-negative coefficients, so it is non-decreasing in B and in S:
//   - "no overflow", "grid within limits" (upper bounds on one expression) hold on the whole box
//     1 ≤ B ≤ maxBatch, 1 ≤ S ≤ maxSeq iff they hold at (maxBatch, maxSeq), and lower bounds
//     ("grid at least 1", "m at least 1") iff they hold at (1, 1);
//   - constraints between two expressions ("end ≤ arena", "copy bytes ≤ buffer bytes", "A ends
//     before B starts") are not monotone: the difference of two monotone functions can dip in
//     the middle of an edge, e.g. arena = 256·B·S holds a buffer of 256·B + 256·S - 256 bytes at
//     (1,1) and (8,8) but not at (1,8). Such a difference g(B, S) = e1 - e2 is, without divisors,
//     bilinear: linear in B for fixed S and in S for fixed B, so its minimum over the box is at
//     one of the four corners. Buffer sizes and (validated) offsets have no divisor; where one
//     side is ceil(x/d) (the arena size, copy bytes), e2 ≤ ceil(x/d) ⇔ x + d - 1 - d·e2 ≥ 0 for
//     integer e2, again bilinear. So each such constraint is checked exactly at the corners
//     (1,1), (1,maxSeq), (maxBatch,1), (maxBatch,maxSeq).
//   - "A and B do not overlap" is a disjunction (A before B, or B before A) whose answer could
//     change across the box. We require the same order at all four corners, which then holds on
//     the whole box by the argument above. This is slightly stricter than necessary (two buffers
//     could leap-frog across the range without ever sharing a byte), but no planner lays buffers
//     out that way, and a plan that does cannot be shown safe from corner values alone.
// Alignment must hold at every point, not just at corners; it is checked on the coefficients:
// a div-1 offset is a multiple of 256 for every B, S ≥ 1 iff all four coefficients are (the four
// finite differences at (1..2, 1..2) recover them), and multiples of 256·div make a div-d offset
// exact and aligned.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Validate.h"

#include "runtime/support/Json.h"
#include "runtime/support/Error.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <set>

namespace xlc::artifact {

using json::quoteText;

namespace {

bool isIdentifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9'))
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

/// Kernel names become cache file names: letters, digits, '_', '.', '-'.
bool isKernelName(std::string_view s) {
  return !s.empty() && s[0] != '.' && s[0] != '-' && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

bool isLowerHex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

class StructureChecker {
public:
  explicit StructureChecker(const Artifact &a) : a_(a), src_(a.label()) {}

  void run() {
    checkHeader();
    checkModel();
    checkKernels();
    checkBuffers();
    checkWeights();
    checkFunctions();
    checkExpr(a_.arenaBytes, "arena.bytes");
  }

private:
  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> format, Args &&...args) const {
    fail("{}: {}", src_, fmt::format(format, std::forward<Args>(args)...));
  }

  std::string kernelLabel(std::size_t i) const {
    return fmt::format("kernel {} {}", i, quoteText(a_.kernels[i].name));
  }
  std::string bufferLabel(BufferId id) const {
    return fmt::format("buffer {} {}", id, quoteText(a_.buffers[id].name));
  }
  std::string stepLabel(const Function &f, std::size_t j) const {
    return fmt::format("step {} of function {}", j, quoteText(f.name));
  }

  void checkExpr(const Expr &e, const std::string &owner) const {
    if (e.div == 0)
      error("{}: expression divisor (div) must be at least 1", owner);
  }

  void checkHeader() const {
    if (a_.compiler.name.empty())
      error("compiler.name is empty");
    if (!parseTargetArch(a_.targetArch))
      error("target.arch {} is not of the form sm_<major><minor>[a] (e.g. sm_90a)",
            quoteText(a_.targetArch));
    if (!isLowerHex(a_.deviceHeadersHash))
      error("device_headers_hash {} is not a lowercase hexadecimal string",
            quoteText(a_.deviceHeadersHash));
  }

  void checkModel() const {
    const ModelInfo &m = a_.model;
    if (m.name.empty())
      error("model.name is empty");
    const std::pair<const char *, std::uint64_t> sizes[] = {{"vocab_size", m.vocabSize},
                                                            {"embedding_dim", m.embeddingDim},
                                                            {"num_blocks", m.numBlocks},
                                                            {"chunk_size", m.chunkSize}};
    for (const auto &[name, value] : sizes)
      if (value == 0)
        error("model.{} must be positive", name);
    const std::pair<const char *, std::uint64_t> tokens[] = {{"bos_token_id", m.bosTokenId},
                                                             {"eos_token_id", m.eosTokenId},
                                                             {"pad_token_id", m.padTokenId}};
    for (const auto &[name, value] : tokens)
      if (value >= m.vocabSize)
        error("model.{} is {}, outside the vocabulary of {} tokens", name, value, m.vocabSize);
  }

  void checkKernels() const {
    std::set<std::string_view> names;
    for (std::size_t i = 0; i < a_.kernels.size(); ++i) {
      const Kernel &k = a_.kernels[i];
      std::string label = kernelLabel(i);
      if (!isKernelName(k.name))
        error("{}: name must be non-empty and use only letters, digits, '_', '.', '-'", label);
      if (!names.insert(k.name).second)
        error("{}: another kernel has the same name", label);
      if (!isIdentifier(k.family))
        error("{}: family {} is not an identifier", label, quoteText(k.family));
      if (!isIdentifier(k.entry))
        error("{}: entry {} is not a C identifier", label, quoteText(k.entry));
      if (k.tile.empty())
        error("{}: tile is empty", label);
      if (k.source.empty())
        error("{}: source is empty", label);
      // CUDA's limits on a block: x, y ≤ 1024, z ≤ 64, at most 1024 threads.
      const std::uint32_t maxBlock[3] = {1024, 1024, 64};
      std::uint64_t threads = 1;
      for (int d = 0; d < 3; ++d) {
        if (k.block[d] == 0 || k.block[d] > maxBlock[d])
          error("{}: block[{}] = {} is outside CUDA's range 1..{}", label, d, k.block[d],
                maxBlock[d]);
        threads *= k.block[d];
        checkExpr(k.grid[d], fmt::format("{}: grid[{}]", label, d));
      }
      if (threads > 1024)
        error("{}: block [{}, {}, {}] has {} threads; CUDA allows at most 1024", label, k.block[0],
              k.block[1], k.block[2], threads);
      std::set<std::string_view> params;
      for (std::size_t p = 0; p < k.params.size(); ++p) {
        if (!isIdentifier(k.params[p].name))
          error("{}: parameter {} name {} is not a C identifier", label, p,
                quoteText(k.params[p].name));
        if (!params.insert(k.params[p].name).second)
          error("{}: parameter name {} appears twice", label, quoteText(k.params[p].name));
      }
    }
  }

  void checkBuffers() const {
    std::set<std::string_view> names;
    for (std::size_t i = 0; i < a_.buffers.size(); ++i) {
      const Buffer &b = a_.buffers[i];
      if (b.id != i) {
        for (std::size_t j = 0; j < i; ++j)
          if (a_.buffers[j].id == b.id)
            error("buffers[{}] {} repeats id {} of buffers[{}] {}", i, quoteText(b.name), b.id, j,
                  quoteText(a_.buffers[j].name));
        error("buffers[{}] {} has id {}; ids must be 0, 1, 2, ... in order", i, quoteText(b.name),
              b.id);
      }
      std::string label = bufferLabel(b.id);
      if (b.name.empty())
        error("{}: name is empty", label);
      if (!names.insert(b.name).second)
        error("{}: another buffer has the same name", label);
      int batchDims = 0, seqDims = 0;
      for (std::size_t d = 0; d < b.shape.size(); ++d) {
        const Dim &dim = b.shape[d];
        if (dim.isConstant() && dim.value == 0)
          error("{}: shape[{}] is 0; dimensions must be positive", label, d);
        batchDims += dim.kind == Dim::Kind::Batch;
        seqDims += dim.kind == Dim::Kind::Seq;
      }
      if (batchDims > 1 || seqDims > 1)
        error("{}: shape {} names {} more than once; sizes must stay affine in B and S", label,
              shapeToString(b.shape), batchDims > 1 ? "B" : "S");
      if (!shapeProduct(b.shape, dtypeSize(b.dtype)))
        error("{}: shape {} of {} has more than 2^64 bytes", label, shapeToString(b.shape),
              dtypeName(b.dtype));
      if (isStaticClass(b.cls) && (batchDims || seqDims))
        error("{}: {} buffers have static shapes, got {}", label, bufferClassName(b.cls),
              shapeToString(b.shape));
      if (b.cls == BufferClass::State &&
          (b.shape.empty() || b.shape[0].kind != Dim::Kind::Batch || seqDims))
        error("{}: state buffers have shape [B, <constants>...], got {}", label,
              shapeToString(b.shape));
      if (b.bytes) {
        if (b.cls != BufferClass::Workspace || !b.shape.empty())
          error("{}: only workspace buffers may give their size in bytes, and then with an "
                "empty shape",
                label);
        checkExpr(*b.bytes, label + ": bytes");
      } else if (b.shape.empty() && b.cls == BufferClass::Workspace) {
        error("{}: a workspace buffer needs a shape or a byte size", label);
      }
      const bool belongs = b.cls == BufferClass::Gradient || b.cls == BufferClass::Optimizer;
      if (b.parameter && !belongs)
        error("{}: only gradient and optimizer buffers name a parameter, not {} buffers", label,
              bufferClassName(b.cls));
      if (b.cls == BufferClass::Optimizer && (!b.parameter || !b.role))
        error("{}: an optimizer buffer names its parameter and its role (exp_avg, exp_avg_sq, "
              "master)",
              label);
      if (b.role && b.cls != BufferClass::Optimizer)
        error("{}: only optimizer buffers have a role, not {} buffers", label,
              bufferClassName(b.cls));
      // f32, or bf16 in the low-memory training mode (docs/artifact.md); a master copy exists to
      // hold what bf16 cannot, so it is f32.
      if ((b.cls == BufferClass::Optimizer || b.cls == BufferClass::Gradient) &&
          b.dtype != DType::F32 && b.dtype != DType::BF16)
        error("{}: {} buffers are f32 or bf16, got {}", label, bufferClassName(b.cls),
              dtypeName(b.dtype));
      if (b.role == OptimizerRole::Master && b.dtype != DType::F32)
        error("{}: a master copy is f32, got {}", label, dtypeName(b.dtype));
      if (b.parameter) {
        if (*b.parameter >= a_.buffers.size() ||
            a_.buffers[*b.parameter].cls != BufferClass::Parameter)
          error("{}: parameter {} is not a parameter buffer", label, *b.parameter);
        if (a_.buffers[*b.parameter].shape != b.shape)
          error("{}: shape {} differs from its parameter {}'s {}", label, shapeToString(b.shape),
                bufferLabel(*b.parameter), shapeToString(a_.buffers[*b.parameter].shape));
      }
      if (isArenaClass(b.cls) != b.offset.has_value())
        error("{}: {} buffers {} an arena offset", label, bufferClassName(b.cls),
              isArenaClass(b.cls) ? "need" : "must not have");
      if (b.offset) {
        const Expr &o = *b.offset;
        checkExpr(o, label + ": offset");
        std::uint64_t unit;
        if (__builtin_mul_overflow(kArenaAlignment, o.div, &unit) || o.c % unit || o.b % unit ||
            o.s % unit || o.bs % unit)
          error("{}: offset {} is not a multiple of {} for every B and S (each coefficient must "
                "be a multiple of {}·div)",
                label, o.toString(), kArenaAlignment, kArenaAlignment);
      }
    }
  }

  void checkWeights() const {
    std::vector<int> bindings(a_.buffers.size(), -1);
    for (std::size_t i = 0; i < a_.weights.size(); ++i) {
      const WeightBinding &w = a_.weights[i];
      std::string label = fmt::format("weight binding {}", i);
      if (w.buffer >= a_.buffers.size())
        error("{} names buffer {}, but the artifact has {} buffers", label, w.buffer,
              a_.buffers.size());
      const Buffer &b = a_.buffers[w.buffer];
      label = fmt::format("weight binding {} (for {})", i, bufferLabel(w.buffer));
      if (!isBoundClass(b.cls))
        error("{}: the buffer is of class {}, not weight or parameter", label,
              bufferClassName(b.cls));
      if (bindings[w.buffer] >= 0)
        error("{}: weight binding {} already fills this buffer", label, bindings[w.buffer]);
      bindings[w.buffer] = static_cast<int>(i);

      if (w.sources.empty())
        error("{}: no sources", label);
      if (w.sourceShapes.size() != w.sources.size())
        error("{}: {} sources but {} source shapes", label, w.sources.size(),
              w.sourceShapes.size());
      std::size_t rank = b.shape.size();
      if (w.concatAxis >= rank)
        error("{}: concat_axis {} is out of range for the buffer's rank {}", label, w.concatAxis,
              rank);
      std::uint64_t axisSum = 0;
      for (std::size_t s = 0; s < w.sources.size(); ++s) {
        const std::vector<std::uint64_t> &shape = w.sourceShapes[s];
        std::string source = fmt::format("source {} {}", s, quoteText(w.sources[s]));
        if (w.sources[s].empty())
          error("{}: source {} has an empty name", label, s);
        if (shape.size() != rank)
          error("{}: {} has rank {} but the buffer {} has rank {}", label, source, shape.size(),
                shapeToString(b.shape), rank);
        for (std::size_t d = 0; d < rank; ++d) {
          if (shape[d] == 0)
            error("{}: {} has a zero dimension", label, source);
          if (d != w.concatAxis && shape[d] != b.shape[d].value)
            error("{}: {} has shape {}, which does not match the buffer {} outside concat_axis {}",
                  label, source, fmt::format("[{}]", fmt::join(shape, ", ")),
                  shapeToString(b.shape), w.concatAxis);
        }
        if (__builtin_add_overflow(axisSum, shape[w.concatAxis], &axisSum))
          error("{}: source sizes along concat_axis overflow u64", label);
      }
      if (axisSum != b.shape[w.concatAxis].value) {
        std::vector<std::string> shapes;
        for (const auto &shape : w.sourceShapes)
          shapes.push_back(fmt::format("[{}]", fmt::join(shape, ", ")));
        error("{}: sources {} concatenated along axis {} have size {} there, but the buffer is {}",
              label, fmt::join(shapes, " + "), w.concatAxis, axisSum, shapeToString(b.shape));
      }
      if (w.scaleColumnsBy) {
        if (b.cls == BufferClass::Parameter)
          error("{}: a trainable parameter cannot fold scale_columns_by: the product could not be "
                "split back into the checkpoint's tensors",
                label);
        if (rank != 2)
          error("{}: scale_columns_by needs a 2-D buffer, but the buffer is {}", label,
                shapeToString(b.shape));
        if (w.scaleColumnsBy->empty())
          error("{}: scale_columns_by is empty", label);
      }
    }
    for (const Buffer &b : a_.buffers)
      if (isBoundClass(b.cls) && bindings[b.id] < 0)
        error("{} is a {} buffer, but no weight binding fills it", bufferLabel(b.id),
              bufferClassName(b.cls));
  }

  void checkAttrs(const nlohmann::json &j, const std::string &label, int depth) const {
    if (depth > 64)
      error("{}: attrs nest deeper than 64 levels", label);
    if (j.is_number_float() && !std::isfinite(j.get<double>()))
      error("{}: attrs hold a non-finite number, which JSON cannot represent", label);
    if (j.is_structured())
      for (const auto &element : j)
        checkAttrs(element, label, depth + 1);
  }

  /// A reference from a step: in range, and an input/output/state buffer must be one of the
  /// function's own.
  void checkRef(const Function &f, std::size_t j, BufferId id, std::string_view role) const {
    if (id >= a_.buffers.size())
      error("{}: {} names buffer {}, but the artifact has {} buffers", stepLabel(f, j), role, id,
            a_.buffers.size());
    const Buffer &b = a_.buffers[id];
    auto named = [&](const std::vector<FunctionArg> &list) {
      return std::any_of(list.begin(), list.end(),
                         [&](const FunctionArg &arg) { return arg.buffer == id; });
    };
    bool listed = true;
    const char *listName = "";
    switch (b.cls) {
    case BufferClass::Input:
      listed = named(f.inputs), listName = "inputs";
      break;
    case BufferClass::Output:
      listed = named(f.outputs), listName = "outputs";
      break;
    case BufferClass::State:
      listed = std::find(f.states.begin(), f.states.end(), id) != f.states.end();
      listName = "states";
      break;
    default:
      break;
    }
    if (!listed)
      error("{}: {} is {} {}, which is not among the function's {}", stepLabel(f, j), role,
            bufferClassName(b.cls), bufferLabel(id), listName);
  }

  /// A buffer a step writes must be writable: not a weight and not a function argument.
  void checkWritable(const Function &f, std::size_t j, BufferId id, std::string_view role) const {
    const Buffer &b = a_.buffers[id];
    if (b.cls == BufferClass::Weight || b.cls == BufferClass::Input)
      error("{}: {} {} is {} buffer, which steps must not write", stepLabel(f, j), role,
            bufferLabel(id), b.cls == BufferClass::Weight ? "a weight" : "an input");
  }

  /// The leading dimensions' product (rows of a row-major matrix view) and the last dimension.
  std::pair<Expr, Expr> matrixView(BufferId id) const {
    const Shape &shape = a_.buffers[id].shape;
    if (shape.empty())
      return {Expr::constant(1), Expr::constant(1)};
    Shape leading(shape.begin(), shape.end() - 1);
    return {*shapeProduct(leading), shape.back().toExpr()};
  }

  void checkGemm(const Function &f, std::size_t j, const GemmStep &g) const {
    std::string label = stepLabel(f, j);
    checkRef(f, j, g.a, "operand a");
    checkRef(f, j, g.b, "operand b");
    checkRef(f, j, g.d, "result d");
    if (g.c)
      checkRef(f, j, *g.c, "operand c");
    checkWritable(f, j, g.d, "result d");
    if (g.d == g.a || g.d == g.b)
      error("{}: result d (buffer {}) is also an input of the product", label, g.d);
    checkExpr(g.m, label + ": m");
    checkExpr(g.n, label + ": n");
    checkExpr(g.k, label + ": k");
    if ((g.epilogue != Epilogue::None) != g.c.has_value())
      error("{}: epilogue {} {} operand c", label, epilogueName(g.epilogue),
            g.c ? "takes no" : "needs an");
    if (g.accumulate && g.epilogue != Epilogue::None)
      error("{}: an accumulating GEMM takes no epilogue (got {})", label,
            epilogueName(g.epilogue));
    if (g.accumulate && !hasDuty(f.steps[j], DutyKind::Accumulate, g.d))
      error("{}: accumulates into result d {} without an 'accumulate' duty on it", label,
            bufferLabel(g.d));

    Expr m = g.m.normalized(), n = g.n.normalized(), k = g.k.normalized();
    // |part| of operand |role| (a row count or last dimension) must be the GEMM's |extent|.
    auto expect = [&](const Expr &part, const char *partName, const char *role, BufferId id,
                      const Expr &extent, const char *extentName) {
      if (part.normalized() != extent)
        error("{}: {} {} is {}, so its {} is {}, but the GEMM's {} is {}", label, role,
              bufferLabel(id), shapeToString(a_.buffers[id].shape), partName, part.toString(),
              extentName, extent.toString());
    };
    // A is [m, k] (or [k, m] transposed), B [k, n] (or [n, k]), D [m, n]. Reading the last
    // position of each sequence, A is [B, S, k] and m = B.
    auto [aRows, aCols] = matrixView(g.a);
    if (g.aRows == GemmRows::LastPosition && g.transA)
      error("{}: a_rows last_position reads A's rows in place and takes no trans_a", label);
    expect(aCols, "last dimension", "operand a", g.a, g.transA ? m : k, g.transA ? "m" : "k");
    if (g.aRows == GemmRows::All) {
      expect(aRows, "row count", "operand a", g.a, g.transA ? k : m, g.transA ? "k" : "m");
    } else {
      const Shape &aShape = a_.buffers[g.a].shape;
      if (aShape.size() != 3 || aShape[0].kind != Dim::Kind::Batch ||
          aShape[1].kind != Dim::Kind::Seq || !aShape[2].isConstant())
        error("{}: a_rows last_position needs operand a of shape [B, S, k], but {} is {}", label,
              bufferLabel(g.a), shapeToString(aShape));
      if (m != Expr::batch())
        error("{}: a_rows last_position reads one row per sequence, so m must be B, not {}",
              label, m.toString());
    }
    auto [bRows, bCols] = matrixView(g.b);
    expect(bCols, "last dimension", "operand b", g.b, g.transB ? k : n, g.transB ? "k" : "n");
    expect(bRows, "row count", "operand b", g.b, g.transB ? n : k, g.transB ? "n" : "k");
    auto [dRows, dCols] = matrixView(g.d);
    expect(dCols, "last dimension", "result d", g.d, n, "n");
    expect(dRows, "row count", "result d", g.d, m, "m");
    if (g.c) {
      const Shape &cShape = a_.buffers[*g.c].shape;
      if (g.epilogue == Epilogue::ResidualAdd && cShape != a_.buffers[g.d].shape)
        error("{}: residual operand c {} is {}, but d is {}", label, bufferLabel(*g.c),
              shapeToString(cShape), shapeToString(a_.buffers[g.d].shape));
      if (g.epilogue == Epilogue::Bias && (cShape.size() != 1 || cShape[0].toExpr() != n))
        error("{}: bias operand c {} is {}, but the bias is [n] = [{}]", label, bufferLabel(*g.c),
              shapeToString(cShape), n.toString());
    }
  }

  void checkLaunch(const Function &f, std::size_t j, const LaunchStep &launch) const {
    std::string label = stepLabel(f, j);
    if (launch.kernel >= a_.kernels.size())
      error("{} names kernel {}, but the artifact has {} kernels", label, launch.kernel,
            a_.kernels.size());
    const Kernel &k = a_.kernels[launch.kernel];
    if (launch.args.size() != k.params.size()) {
      std::vector<std::string> params;
      for (const KernelParam &p : k.params)
        params.push_back(fmt::format("{}: {}", p.name, paramKindName(p.kind)));
      error("{} passes {} arguments to {}, which takes {} ({})", label, launch.args.size(),
            kernelLabel(launch.kernel), k.params.size(), fmt::join(params, ", "));
    }
    for (std::size_t i = 0; i < launch.args.size(); ++i) {
      const Arg &arg = launch.args[i];
      const KernelParam &p = k.params[i];
      bool ok =
          arg.kind == ArgKind::Scalar ||
          (p.kind == ParamKind::Buffer && arg.kind == ArgKind::Buffer) ||
          (p.kind == ParamKind::I64 && (arg.kind == ArgKind::I64 || arg.kind == ArgKind::Symbol ||
                                        arg.kind == ArgKind::Expr)) ||
          (p.kind == ParamKind::F32 && arg.kind == ArgKind::F32);
      if (!ok) {
        static constexpr const char *kArgKinds[] = {"a buffer",      "a symbol", "an i64",
                                                    "an f32",        "an expression",
                                                    "a scalar"};
        error("{}: argument {} is {}, but parameter {} of {} is {}", label, i,
              kArgKinds[static_cast<int>(arg.kind)], quoteText(p.name), kernelLabel(launch.kernel),
              paramKindName(p.kind));
      }
      if (arg.kind == ArgKind::Scalar) {
        if (arg.scalarIndex >= f.scalars.size())
          error("{}: argument {} names scalar {}, but function {} has {} scalars", label, i,
                arg.scalarIndex, quoteText(f.name), f.scalars.size());
        ok = f.scalars[arg.scalarIndex].kind == p.kind;
        if (!ok)
          error("{}: argument {} is the {} scalar {}, but parameter {} is {}", label, i,
                paramKindName(f.scalars[arg.scalarIndex].kind),
                quoteText(f.scalars[arg.scalarIndex].name), quoteText(p.name),
                paramKindName(p.kind));
      }
      if (arg.kind == ArgKind::Buffer)
        checkRef(f, j, arg.bufferId, fmt::format("argument {}", i));
      if (arg.kind == ArgKind::F32 && !std::isfinite(arg.floatValue))
        error("{}: argument {} is not finite", label, i);
      if (arg.kind == ArgKind::Expr)
        checkExpr(arg.exprValue, fmt::format("{}: argument {}", label, i));
    }
    checkBatchVariants(label, launch);
  }

  /// A variant runs with the step's arguments in place of its kernel, so it must be a kernel of
  /// the same family taking exactly the same parameters; the batch bounds ascend strictly.
  void checkBatchVariants(const std::string &label, const LaunchStep &launch) const {
    const Kernel &k = a_.kernels[launch.kernel];
    std::uint64_t previous = 0;
    for (std::size_t v = 0; v < launch.byBatch.size(); ++v) {
      const BatchVariant &variant = launch.byBatch[v];
      std::string where = fmt::format("{}: by_batch[{}]", label, v);
      if (variant.kernel >= a_.kernels.size())
        error("{} names kernel {}, but the artifact has {} kernels", where, variant.kernel,
              a_.kernels.size());
      if (variant.maxBatch == 0 || variant.maxBatch <= previous)
        error("{}: max_batch {} must be at least 1 and above the previous variant's ({})", where,
              variant.maxBatch, previous);
      previous = variant.maxBatch;
      const Kernel &alt = a_.kernels[variant.kernel];
      if (alt.family != k.family)
        error("{}: {} is of family {}, but the step's {} is of family {}", where,
              kernelLabel(variant.kernel), quoteText(alt.family), kernelLabel(launch.kernel),
              quoteText(k.family));
      if (alt.params != k.params)
        error("{}: {} does not take the parameters of {} (a variant runs with the step's "
              "arguments)",
              where, kernelLabel(variant.kernel), kernelLabel(launch.kernel));
    }
  }

  void checkCopy(const Function &f, std::size_t j, const CopyStep &copy) const {
    std::string label = stepLabel(f, j);
    checkRef(f, j, copy.src, "source");
    checkRef(f, j, copy.dst, "destination");
    checkWritable(f, j, copy.dst, "destination");
    if (copy.src == copy.dst)
      error("{}: copies buffer {} onto itself", label, copy.src);
    if (a_.buffers[copy.src].dtype != a_.buffers[copy.dst].dtype)
      error("{}: copies {} ({}) to {} ({}); a copy keeps the dtype", label,
            bufferLabel(copy.src), dtypeName(a_.buffers[copy.src].dtype), bufferLabel(copy.dst),
            dtypeName(a_.buffers[copy.dst].dtype));
    checkExpr(copy.bytes, label + ": bytes");
  }

  static bool hasDuty(const Step &step, DutyKind kind, BufferId id) {
    return std::any_of(step.duties.begin(), step.duties.end(),
                       [&](const Duty &d) { return d.kind == kind && d.buffer == id; });
  }

  /// Duties name buffers the function may touch; zeroed and accumulated buffers are writable;
  /// an error flag is an i64 arena buffer zeroed by the same step; an accumulated arena buffer
  /// holds a value: an earlier step of the function touched it, or this step zeroes it.
  void checkDuties(const Function &f, std::size_t j) const {
    const Step &step = f.steps[j];
    std::set<std::pair<int, BufferId>> seen;
    for (std::size_t i = 0; i < step.duties.size(); ++i) {
      const Duty &d = step.duties[i];
      std::string role = fmt::format("duty {} ({})", i, dutyKindName(d.kind));
      checkRef(f, j, d.buffer, role);
      if (!seen.insert({static_cast<int>(d.kind), d.buffer}).second)
        error("{}: {} repeats an earlier duty", stepLabel(f, j), role);
      const Buffer &b = a_.buffers[d.buffer];
      switch (d.kind) {
      case DutyKind::Zero:
      case DutyKind::Accumulate:
        checkWritable(f, j, d.buffer, role);
        break;
      case DutyKind::ErrorFlag:
        if (b.dtype != DType::I64 || !isArenaClass(b.cls))
          error("{}: {} names {} ({} {}); an error flag is an i64 arena buffer", stepLabel(f, j),
                role, bufferLabel(d.buffer), bufferClassName(b.cls), dtypeName(b.dtype));
        if (!hasDuty(step, DutyKind::Zero, d.buffer))
          error("{}: error flag {} is not zeroed by the same step (a 'zero' duty)",
                stepLabel(f, j), bufferLabel(d.buffer));
        if (!step.launch())
          error("{}: only launches report error flags", stepLabel(f, j));
        break;
      }
      if (d.kind == DutyKind::Accumulate && isArenaClass(b.cls) &&
          !hasDuty(step, DutyKind::Zero, d.buffer)) {
        bool earlier = false;
        for (std::size_t k = 0; k < j && !earlier; ++k)
          for (BufferId id : buffersOf(f.steps[k]))
            earlier = earlier || id == d.buffer;
        if (!earlier)
          error("{}: accumulates into arena buffer {}, which no earlier step of the function "
                "wrote and this step does not zero",
                stepLabel(f, j), bufferLabel(d.buffer));
      }
    }
  }

  void checkArgList(const Function &f, const std::vector<FunctionArg> &args, BufferClass cls,
                    const char *listName) const {
    std::vector<BufferId> ids;
    for (const FunctionArg &arg : args) {
      if (!isIdentifier(arg.name))
        error("function {}: {} name {} is not an identifier", quoteText(f.name), listName,
              quoteText(arg.name));
      ids.push_back(arg.buffer);
    }
    checkIdList(f, ids, cls, listName);
  }

  void checkIdList(const Function &f, const std::vector<BufferId> &ids, BufferClass cls,
                   const char *listName) const {
    std::set<BufferId> seen;
    for (BufferId id : ids) {
      if (id >= a_.buffers.size())
        error("function {}: {} names buffer {}, but the artifact has {} buffers", quoteText(f.name),
              listName, id, a_.buffers.size());
      if (a_.buffers[id].cls != cls)
        error("function {}: {} lists {}, which is of class {}, not {}", quoteText(f.name), listName,
              bufferLabel(id), bufferClassName(a_.buffers[id].cls), bufferClassName(cls));
      if (!seen.insert(id).second)
        error("function {}: {} lists {} twice", quoteText(f.name), listName, bufferLabel(id));
    }
  }

  void checkFunctions() const {
    std::set<std::string_view> names;
    for (const Function &f : a_.functions) {
      if (!isIdentifier(f.name))
        error("function {}: name is not an identifier", quoteText(f.name));
      if (!names.insert(f.name).second)
        error("function {}: another function has the same name", quoteText(f.name));
      checkArgList(f, f.inputs, BufferClass::Input, "inputs");
      checkArgList(f, f.outputs, BufferClass::Output, "outputs");
      checkIdList(f, f.states, BufferClass::State, "states");
      std::set<std::string_view> argNames;
      for (const auto *list : {&f.inputs, &f.outputs})
        for (const FunctionArg &arg : *list)
          if (!argNames.insert(arg.name).second)
            error("function {}: argument name {} appears twice", quoteText(f.name),
                  quoteText(arg.name));
      for (const ScalarParam &p : f.scalars) {
        if (!isIdentifier(p.name))
          error("function {}: scalar name {} is not an identifier", quoteText(f.name),
                quoteText(p.name));
        if (!argNames.insert(p.name).second)
          error("function {}: scalar name {} appears twice", quoteText(f.name), quoteText(p.name));
        if (p.kind == ParamKind::Buffer)
          error("function {}: scalar {} must be i64 or f32", quoteText(f.name), quoteText(p.name));
      }
      for (std::size_t j = 0; j < f.steps.size(); ++j) {
        const Step &step = f.steps[j];
        if (step.op.empty())
          error("{}: op is empty", stepLabel(f, j));
        if (!step.attrs.is_object())
          error("{}: attrs must be an object", stepLabel(f, j));
        checkAttrs(step.attrs, stepLabel(f, j), 0);
        for (const char *reserved : {"zero_before", "error_flag"})
          if (step.attrs.contains(reserved))
            error("{}: attribute '{}' is a schema-1 runtime duty; schema 2 spells it in "
                  "'duties' (recompile the model)",
                  stepLabel(f, j), reserved);
        checkDuties(f, j);
        if (const LaunchStep *launch = step.launch())
          checkLaunch(f, j, *launch);
        else if (const GemmStep *gemm = step.gemm())
          checkGemm(f, j, *gemm);
        else if (const CopyStep *copy = step.copy())
          checkCopy(f, j, *copy);
      }
    }
  }

  const Artifact &a_;
  std::string src_;
};

struct Point {
  std::uint64_t batch, seq;
};

class LimitChecker {
public:
  LimitChecker(const Artifact &a, std::uint64_t maxBatch, std::uint64_t maxSeq)
      : a_(a), src_(a.label()), max_{maxBatch, maxSeq}, corners_{Point{1, 1}, Point{1, maxSeq},
                                                                 Point{maxBatch, 1},
                                                                 Point{maxBatch, maxSeq}} {}

  void run() {
    checkKernels();
    checkExprArgs();
    computeBufferExtents();
    checkArena();
    checkSteps();
  }

private:
  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> format, Args &&...args) const {
    fail("{}: {}", src_, fmt::format(format, std::forward<Args>(args)...));
  }

  /// e at p, or an error naming |owner| when it overflows.
  std::uint64_t at(const Expr &e, Point p, const std::string &owner) const {
    return e.evaluate(p.batch, p.seq, fmt::format("{}: {}", src_, owner));
  }

  std::string bufferLabel(BufferId id) const {
    return fmt::format("buffer {} {}", id, quoteText(a_.buffers[id].name));
  }

  /// Expression arguments are int64 kernel parameters: their largest value must fit.
  void checkExprArgs() const {
    for (const Function &f : a_.functions)
      for (std::size_t j = 0; j < f.steps.size(); ++j)
        if (const LaunchStep *launch = f.steps[j].launch())
          for (std::size_t i = 0; i < launch->args.size(); ++i) {
            const Arg &arg = launch->args[i];
            if (arg.kind != ArgKind::Expr)
              continue;
            std::string owner = fmt::format("step {} of function {}: argument {}", j,
                                            quoteText(f.name), i);
            if (at(arg.exprValue, max_, owner) >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
              error("{} = {} does not fit an int64 at B={}, S={}", owner,
                    arg.exprValue.toString(), max_.batch, max_.seq);
          }
  }

  void checkKernels() const {
    // CUDA's grid limits: x < 2^31, y and z ≤ 65535.
    const std::uint64_t maxGrid[3] = {(1ull << 31) - 1, 65535, 65535};
    for (std::size_t i = 0; i < a_.kernels.size(); ++i) {
      const Kernel &k = a_.kernels[i];
      for (int d = 0; d < 3; ++d) {
        std::string owner = fmt::format("kernel {} {}: grid[{}]", i, quoteText(k.name), d);
        std::uint64_t most = at(k.grid[d], max_, owner);
        if (most > maxGrid[d])
          error("{} = {} is {} at B={}, S={}, beyond CUDA's limit of {}", owner,
                k.grid[d].toString(), most, max_.batch, max_.seq, maxGrid[d]);
        if (at(k.grid[d], corners_[0], owner) == 0)
          error("{} = {} is 0 at B=1, S=1; a launch needs at least one block", owner,
                k.grid[d].toString());
      }
    }
  }

  /// Sizes at (maxBatch, maxSeq) first, so an overflow is reported as such; then every corner.
  void computeBufferExtents() {
    for (const Buffer &b : a_.buffers) {
      std::string label = bufferLabel(b.id);
      Expr bytes = byteSize(b);
      at(bytes, max_, label + ": size");
      std::array<std::uint64_t, 4> size{}, offset{};
      for (int c = 0; c < 4; ++c) {
        size[c] = at(bytes, corners_[c], label + ": size");
        if (b.offset) {
          offset[c] = at(*b.offset, corners_[c], label + ": offset");
          std::uint64_t end;
          if (__builtin_add_overflow(offset[c], size[c], &end))
            error("{}: offset {} + size {} overflows u64 at B={}, S={}", label,
                  b.offset->toString(), bytes.toString(), corners_[c].batch, corners_[c].seq);
        }
      }
      sizes_.push_back(size);
      offsets_.push_back(offset);
    }
  }

  void checkArena() const {
    std::array<std::uint64_t, 4> arena{};
    for (int c = 0; c < 4; ++c)
      arena[c] = at(a_.arenaBytes, corners_[c], "arena.bytes");
    for (const Buffer &b : a_.buffers) {
      if (!b.offset)
        continue;
      for (int c = 0; c < 4; ++c) {
        std::uint64_t end = offsets_[b.id][c] + sizes_[b.id][c];
        if (end > arena[c])
          error("{}: occupies arena bytes [{}, {}) at B={}, S={}, but the arena ({}) has {} bytes",
                bufferLabel(b.id), offsets_[b.id][c], end, corners_[c].batch, corners_[c].seq,
                a_.arenaBytes.toString(), arena[c]);
      }
    }
    for (const Function &f : a_.functions)
      checkOverlaps(f);
  }

  /// Arena buffers live at the same time in |f| must not share bytes at any (B, S): one of them
  /// must end before the other starts, in the same order at every corner (see the file comment).
  void checkOverlaps(const Function &f) const {
    std::vector<std::optional<LiveRange>> ranges = liveRanges(f, a_.buffers.size());
    std::vector<BufferId> arena;
    for (const Buffer &b : a_.buffers)
      if (b.offset && ranges[b.id])
        arena.push_back(b.id);
    // Stable, so ties keep id order and messages are deterministic.
    std::stable_sort(arena.begin(), arena.end(),
                     [&](BufferId x, BufferId y) { return ranges[x]->first < ranges[y]->first; });
    std::vector<BufferId> active;
    for (BufferId id : arena) {
      std::size_t start = ranges[id]->first;
      std::erase_if(active, [&](BufferId other) { return ranges[other]->last < start; });
      for (BufferId other : active)
        checkPair(f, other, id, *ranges[other], *ranges[id]);
      active.push_back(id);
    }
  }

  void checkPair(const Function &f, BufferId x, BufferId y, LiveRange rx, LiveRange ry) const {
    auto describe = [&](BufferId id, LiveRange r, int c) {
      return fmt::format("{} (bytes [{}, {}), live in steps {}-{})", bufferLabel(id),
                         offsets_[id][c], offsets_[id][c] + sizes_[id][c], r.first, r.last);
    };
    int xFirstAt = -1, yFirstAt = -1;
    for (int c = 0; c < 4; ++c) {
      std::uint64_t xStart = offsets_[x][c], xEnd = xStart + sizes_[x][c];
      std::uint64_t yStart = offsets_[y][c], yEnd = yStart + sizes_[y][c];
      if (xEnd <= yStart)
        xFirstAt = c;
      else if (yEnd <= xStart)
        yFirstAt = c;
      else
        error("function {}: {} and {} overlap in the arena at B={}, S={} while both are live",
              quoteText(f.name), describe(x, rx, c), describe(y, ry, c), corners_[c].batch,
              corners_[c].seq);
    }
    if (xFirstAt >= 0 && yFirstAt >= 0)
      error("function {}: {} and {} are live at the same time but lie in the arena in one order "
            "at B={}, S={} and in the other at B={}, S={}; the plan must keep one order",
            quoteText(f.name), describe(x, rx, xFirstAt), describe(y, ry, yFirstAt),
            corners_[xFirstAt].batch, corners_[xFirstAt].seq, corners_[yFirstAt].batch,
            corners_[yFirstAt].seq);
  }

  void checkSteps() const {
    for (const Function &f : a_.functions) {
      for (std::size_t j = 0; j < f.steps.size(); ++j) {
        std::string label = fmt::format("step {} of function {}", j, quoteText(f.name));
        for (const Duty &d : f.steps[j].duties)
          if (d.kind == DutyKind::ErrorFlag && sizes_[d.buffer][0] < 8)
            error("{}: error flag {} holds {} bytes at B=1, S=1; an i64 needs 8", label,
                  bufferLabel(d.buffer), sizes_[d.buffer][0]);
        if (const GemmStep *g = f.steps[j].gemm()) {
          const std::pair<const char *, const Expr *> extents[] = {
              {"m", &g->m}, {"n", &g->n}, {"k", &g->k}};
          for (const auto &[name, e] : extents) {
            std::string owner = fmt::format("{}: {}", label, name);
            at(*e, max_, owner);
            if (at(*e, corners_[0], owner) == 0)
              error("{} = {} is 0 at B=1, S=1", owner, e->toString());
          }
        } else if (const CopyStep *copy = f.steps[j].copy()) {
          std::string owner = fmt::format("{}: bytes", label);
          at(copy->bytes, max_, owner);
          for (int c = 0; c < 4; ++c) {
            std::uint64_t n = at(copy->bytes, corners_[c], owner);
            for (BufferId id : {copy->src, copy->dst})
              if (n > sizes_[id][c])
                error("{} copies {} bytes at B={}, S={}, but {} has only {}", label, n,
                      corners_[c].batch, corners_[c].seq, bufferLabel(id), sizes_[id][c]);
          }
        }
      }
    }
  }

  const Artifact &a_;
  std::string src_;
  Point max_;
  std::array<Point, 4> corners_;
  std::vector<std::array<std::uint64_t, 4>> sizes_, offsets_; // per buffer, per corner
};

} // namespace

void validateStructure(const Artifact &artifact) { StructureChecker(artifact).run(); }

void validate(const Artifact &artifact, std::uint64_t maxBatch, std::uint64_t maxSeq) {
  validateStructure(artifact);
  if (maxBatch == 0 || maxSeq == 0)
    fail("{}: cannot validate for max batch {} and max sequence length {}: both must be at "
         "least 1",
         artifact.label(), maxBatch, maxSeq);
  // Kernels receive B·S as an i64 argument.
  std::uint64_t tokens;
  if (__builtin_mul_overflow(maxBatch, maxSeq, &tokens) ||
      tokens > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    fail("{}: max batch {} times max sequence length {} does not fit in i64", artifact.label(),
         maxBatch, maxSeq);
  LimitChecker(artifact, maxBatch, maxSeq).run();
}

std::optional<TargetArch> parseTargetArch(std::string_view arch) {
  if (arch.size() < 5 || arch.substr(0, 3) != "sm_")
    return std::nullopt;
  std::string_view digits = arch.substr(3);
  TargetArch t;
  if (digits.back() == 'a') {
    t.archSpecific = true;
    digits.remove_suffix(1);
  }
  if (digits.size() < 2 || digits.size() > 4 || digits[0] == '0' ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  for (char c : digits.substr(0, digits.size() - 1))
    t.major = t.major * 10 + (c - '0');
  t.minor = digits.back() - '0';
  return t;
}

void checkDeviceArch(const Artifact &artifact, int deviceMajor, int deviceMinor) {
  std::optional<TargetArch> target = parseTargetArch(artifact.targetArch);
  if (!target)
    fail("{}: target.arch {} is not of the form sm_<major><minor>[a]", artifact.label(),
         quoteText(artifact.targetArch));
  bool ok = target->archSpecific ? deviceMajor == target->major && deviceMinor == target->minor
                                 : deviceMajor == target->major && deviceMinor >= target->minor;
  if (!ok)
    fail("{}: kernels are built for {}, which needs a device of compute capability {}.{}{}; this "
         "device is {}.{}",
         artifact.label(), artifact.targetArch, target->major, target->minor,
         target->archSpecific ? " exactly" : " or a later minor version", deviceMajor, deviceMinor);
}

} // namespace xlc::artifact
