//===- Summary.cpp - A human-readable listing of an artifact --------------===//

#include "runtime/artifact/Summary.h"

#include "runtime/support/Json.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace xlc::artifact {

using json::quoteText;

namespace {

struct Point {
  std::uint64_t batch, seq;
};

std::string humanBytes(std::optional<std::uint64_t> bytes) {
  if (!bytes)
    return "overflow";
  const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (*bytes < 1024)
    return fmt::format("{} B", *bytes);
  double v = static_cast<double>(*bytes);
  int u = -1;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, units[u]);
}

/// Adds without wrapping: nullopt once anything overflowed.
std::optional<std::uint64_t> addBytes(std::optional<std::uint64_t> x,
                                      std::optional<std::uint64_t> y) {
  std::uint64_t r;
  if (!x || !y || __builtin_add_overflow(*x, *y, &r))
    return std::nullopt;
  return r;
}

class Printer {
public:
  Printer(std::ostream &out, const Artifact &a) : out_(out), a_(a) {
    std::uint64_t chunk = std::max<std::uint64_t>(a.model.chunkSize, 1);
    points_ = {{1, 1}, {1, chunk}, {8, 8192}};
  }

  void print() {
    header();
    functions();
    kernels();
    buffers();
    memory();
    weights();
  }

private:
  template <typename... Args> void line(fmt::format_string<Args...> format, Args &&...args) {
    out_ << fmt::format(format, std::forward<Args>(args)...) << '\n';
  }

  std::string ref(BufferId id) const {
    if (const Buffer *b = a_.findBuffer(id))
      return fmt::format("%{} {}", id, quoteText(b->name));
    return fmt::format("%{} (?)", id);
  }

  std::optional<std::uint64_t> bytesAt(const Buffer &b, Point p) const {
    std::optional<Expr> size = shapeProduct(b.shape, dtypeSize(b.dtype));
    return size ? size->tryEvaluate(p.batch, p.seq) : std::nullopt;
  }

  void header() {
    const ModelInfo &m = a_.model;
    line("xlc artifact {} (schema {}), compiled by {} {} for {}", a_.label(), kSchemaVersion,
         a_.compiler.name, a_.compiler.version, a_.targetArch);
    line("model {}: vocab {}, embedding {}, {} blocks, chunk {}; bos {}, eos {}, pad {}", m.name,
         m.vocabSize, m.embeddingDim, m.numBlocks, m.chunkSize, m.bosTokenId, m.eosTokenId,
         m.padTokenId);
    line("device headers {}", a_.deviceHeadersHash);
    std::map<BufferClass, int> classes;
    for (const Buffer &b : a_.buffers)
      ++classes[b.cls];
    std::vector<std::string> counts;
    for (const auto &[cls, n] : classes)
      counts.push_back(fmt::format("{} {}", n, bufferClassName(cls)));
    line("{} kernels, {} buffers ({}), {} weight bindings, {} functions", a_.kernels.size(),
         a_.buffers.size(), fmt::join(counts, ", "), a_.weights.size(), a_.functions.size());
  }

  std::string argText(const Arg &arg) const {
    switch (arg.kind) {
    case ArgKind::Buffer:
      return ref(arg.bufferId);
    case ArgKind::Symbol:
      return std::string(symbolName(arg.symbolValue));
    case ArgKind::I64:
      return fmt::format("{}", arg.intValue);
    case ArgKind::F32:
      return fmt::format("{}f", arg.floatValue);
    case ArgKind::Expr:
      return arg.exprValue.toString();
    case ArgKind::Scalar:
      return fmt::format("scalar {}", arg.scalarIndex);
    }
    return "?";
  }

  std::string stepText(const Step &step) const {
    std::string attrs;
    if (step.attrs.is_object() && !step.attrs.empty())
      attrs = fmt::format(
          " {}", step.attrs.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    for (const Duty &d : step.duties)
      attrs += fmt::format(" [{} %{}]", dutyKindName(d.kind), d.buffer);
    if (const LaunchStep *l = step.launch()) {
      std::string kernel = l->kernel < a_.kernels.size() ? a_.kernels[l->kernel].name : "?";
      std::vector<std::string> args;
      for (const Arg &arg : l->args)
        args.push_back(argText(arg));
      std::string variants;
      for (const BatchVariant &v : l->byBatch)
        variants += fmt::format("  [B <= {}: kernel {} {}]", v.maxBatch, v.kernel,
                                v.kernel < a_.kernels.size() ? a_.kernels[v.kernel].name : "?");
      return fmt::format("launch {}{}  kernel {} {}({}){}", step.op, attrs, l->kernel, kernel,
                         fmt::join(args, ", "), variants);
    }
    if (const GemmStep *g = step.gemm()) {
      std::string epilogue;
      if (g->epilogue == Epilogue::ResidualAdd)
        epilogue = fmt::format(" + {}", g->c ? ref(*g->c) : "?");
      else if (g->epilogue == Epilogue::Bias)
        epilogue = fmt::format(" + bias {}", g->c ? ref(*g->c) : "?");
      return fmt::format("gemm   {}{}  {} {} {}{} x {}{}{}  [m={}, n={}, k={}]", step.op, attrs,
                         ref(g->d), g->accumulate ? "+=" : "=", ref(g->a),
                         g->aRows == GemmRows::LastPosition ? "[:, S-1]"
                         : g->transA                        ? "^T"
                                                            : "",
                         ref(g->b), g->transB ? "^T" : "", epilogue, g->m.toString(),
                         g->n.toString(), g->k.toString());
    }
    if (const CopyStep *c = step.copy())
      return fmt::format("copy   {}{}  {} -> {}  ({} bytes)", step.op, attrs, ref(c->src),
                         ref(c->dst), c->bytes.toString());
    return "?";
  }

  std::string idList(const std::vector<BufferId> &ids) const {
    std::vector<std::string> refs;
    for (BufferId id : ids)
      refs.push_back(ref(id));
    return refs.empty() ? "none" : fmt::format("{}", fmt::join(refs, ", "));
  }

  std::string argList(const std::vector<FunctionArg> &args) const {
    std::vector<std::string> refs;
    for (const FunctionArg &a : args)
      refs.push_back(fmt::format("{} = {}", a.name, ref(a.buffer)));
    return refs.empty() ? "none" : fmt::format("{}", fmt::join(refs, ", "));
  }

  void functions() {
    line("");
    line("functions");
    for (const Function &f : a_.functions) {
      std::vector<std::string> scalars;
      for (const ScalarParam &p : f.scalars)
        scalars.push_back(fmt::format("{}: {}", p.name, paramKindName(p.kind)));
      line("  {}: {} steps; inputs {}; outputs {}; {}states {}", f.name, f.steps.size(),
           argList(f.inputs), argList(f.outputs),
           scalars.empty() ? std::string()
                           : fmt::format("scalars {}; ", fmt::join(scalars, ", ")),
           idList(f.states));
      for (std::size_t i = 0; i < f.steps.size(); ++i)
        line("    [{:>3}] {}", i, stepText(f.steps[i]));
    }
  }

  void kernels() {
    line("");
    line("kernels");
    for (std::size_t i = 0; i < a_.kernels.size(); ++i) {
      const Kernel &k = a_.kernels[i];
      std::vector<std::string> params;
      for (const KernelParam &p : k.params)
        params.push_back(fmt::format("{}: {}", p.name, paramKindName(p.kind)));
      line("  [{}] {}  family {}  entry {}", i, k.name, k.family, k.entry);
      line("      tile {}", k.tile);
      if (k.tuning)
        line("      tuned: {:.2f} us against {:.2f} us for the default {} (record {})",
             k.tuning->chosenUs, k.tuning->defaultUs, k.tuning->defaultTile, k.tuning->record);
      line("      config {}", k.config.dump());
      line("      grid [{}, {}, {}]  block [{}, {}, {}]  shared {} bytes  source {} bytes",
           k.grid[0].toString(), k.grid[1].toString(), k.grid[2].toString(), k.block[0], k.block[1],
           k.block[2], k.sharedBytes, k.source.size());
      line("      params ({}){}", fmt::join(params, ", "),
           k.options.empty() ? std::string()
                             : fmt::format("  options {}", fmt::join(k.options, " ")));
    }
  }

  void buffers() {
    line("");
    line("buffers");
    line("  {:>5}  {:<10}  {:<5}  {:<20}  {:<16}  {}", "id", "class", "dtype", "shape", "offset",
         "bytes");
    for (const Buffer &b : a_.buffers) {
      std::optional<Expr> size = shapeProduct(b.shape, dtypeSize(b.dtype));
      line("  {:>5}  {:<10}  {:<5}  {:<20}  {:<16}  {}  {}{}", fmt::format("%{}", b.id),
           bufferClassName(b.cls), dtypeName(b.dtype), shapeToString(b.shape),
           b.offset ? b.offset->toString() : "-", size ? size->toString() : "not affine",
           quoteText(b.name), b.parameter ? fmt::format(" of parameter %{}", *b.parameter) : "");
    }
  }

  /// The largest total of arena bytes live at one step of |f|.
  std::optional<std::uint64_t> peakLive(const Function &f, Point p) const {
    std::vector<std::optional<LiveRange>> ranges = liveRanges(f, a_.buffers.size());
    std::optional<std::uint64_t> peak = 0;
    for (std::size_t i = 0; i < f.steps.size(); ++i) {
      std::optional<std::uint64_t> live = 0;
      for (const Buffer &b : a_.buffers)
        if (b.offset && ranges[b.id] && ranges[b.id]->first <= i && i <= ranges[b.id]->last)
          live = addBytes(live, bytesAt(b, p));
      if (!live)
        return std::nullopt;
      peak = std::max(*peak, *live);
    }
    return peak;
  }

  void memory() {
    line("");
    std::string head = fmt::format("  {:<28}", "memory");
    for (Point p : points_)
      head += fmt::format("  {:>14}", fmt::format("B={},S={}", p.batch, p.seq));
    line("{}", head);
    auto row = [&](const std::string &name, auto valueAt) {
      std::string text = fmt::format("  {:<28}", name);
      for (Point p : points_)
        text += fmt::format("  {:>14}", humanBytes(valueAt(p)));
      line("{}", text);
    };
    row("arena", [&](Point p) { return a_.arenaBytes.tryEvaluate(p.batch, p.seq); });
    for (const Function &f : a_.functions)
      row(fmt::format("peak live arena ({})", f.name), [&](Point p) { return peakLive(f, p); });
    auto classTotal = [&](BufferClass cls) {
      return [this, cls](Point p) {
        std::optional<std::uint64_t> total = 0;
        for (const Buffer &b : a_.buffers)
          if (b.cls == cls)
            total = addBytes(total, bytesAt(b, p));
        return total;
      };
    };
    row("weights", classTotal(BufferClass::Weight));
    // Training: the parameters train_step reads and updates, their f32 gradients, and AdamW's
    // state (moments, and master copies of bf16 parameters) -- with the train_step arena above,
    // what a training run needs on the device before anything is allocated.
    for (BufferClass cls : {BufferClass::Parameter, BufferClass::Gradient, BufferClass::Optimizer}) {
      const bool any = std::any_of(a_.buffers.begin(), a_.buffers.end(),
                                   [cls](const Buffer &b) { return b.cls == cls; });
      if (any)
        row(cls == BufferClass::Parameter  ? "parameters"
            : cls == BufferClass::Gradient ? "gradients"
                                           : "optimizer state",
            classTotal(cls));
    }
    row("states", classTotal(BufferClass::State));
    row("inputs", classTotal(BufferClass::Input));
    row("outputs", classTotal(BufferClass::Output));
    // What a backend that runs only this function allocates for its arguments and results.
    for (const Function &f : a_.functions)
      row(fmt::format("inputs+outputs ({})", f.name), [&](Point p) {
        std::optional<std::uint64_t> total = 0;
        for (const auto *list : {&f.inputs, &f.outputs})
          for (const FunctionArg &arg : *list)
            if (const Buffer *b = a_.findBuffer(arg.buffer))
              total = addBytes(total, bytesAt(*b, p));
        return total;
      });
  }

  void weights() {
    line("");
    line("weight bindings");
    for (const WeightBinding &w : a_.weights) {
      const Buffer *b = a_.findBuffer(w.buffer);
      std::string target =
          b ? fmt::format("{} {} {}", ref(w.buffer), dtypeName(b->dtype), shapeToString(b->shape))
            : ref(w.buffer);
      std::string fold = w.scaleColumnsBy ? fmt::format(", columns scaled by {} (folded norm)",
                                                        quoteText(*w.scaleColumnsBy))
                                          : std::string();
      auto shapeOf = [&](std::size_t i) {
        return i < w.sourceShapes.size() ? fmt::format("[{}]", fmt::join(w.sourceShapes[i], ", "))
                                         : std::string("[?]");
      };
      if (w.sources.size() == 1) {
        line("  {} <- {} {}{}", target, quoteText(w.sources[0]), shapeOf(0), fold);
        continue;
      }
      line("  {} = concat along axis {} of {} tensors (fused){}", target, w.concatAxis,
           w.sources.size(), fold);
      for (std::size_t i = 0; i < w.sources.size(); ++i)
        line("      {} {}", quoteText(w.sources[i]), shapeOf(i));
    }
  }

  std::ostream &out_;
  const Artifact &a_;
  std::vector<Point> points_;
};

} // namespace

void printSummary(std::ostream &out, const Artifact &artifact) { Printer(out, artifact).print(); }

} // namespace xlc::artifact
