//===- Backend.cpp - The checks and order of a call, shared by backends ---===//

#include "runtime/exec/Backend.h"

#include "runtime/support/Error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

namespace xlc::exec {
namespace art = xlc::artifact;

Backend::Backend(const art::Artifact &artifact, Limits limits)
    : plan_((check(limits.maxBatch >= 1 && limits.maxSeq >= 1,
                   "max batch ({}) and max sequence length ({}) must be at least 1",
                   limits.maxBatch, limits.maxSeq),
             artifact),
            limits.maxBatch, limits.maxSeq),
      limits_(std::move(limits)) {
  for (const std::string &name : limits_.functions)
    plan_.function(name); // throws naming the functions there are
}

bool Backend::prepared(std::string_view function) const {
  return limits_.functions.empty() ||
         std::find(limits_.functions.begin(), limits_.functions.end(), function) !=
             limits_.functions.end();
}

std::vector<bool> Backend::buffersInUse() const {
  const art::Artifact &a = artifact();
  std::vector<bool> used(a.buffers.size(), false);
  auto mark = [&](art::BufferId id) {
    if (id < used.size())
      used[id] = true;
  };
  for (const art::Function &fn : a.functions) {
    if (!prepared(fn.name))
      continue;
    for (const auto *args : {&fn.inputs, &fn.outputs})
      for (const art::FunctionArg &arg : *args)
        mark(arg.buffer);
    for (art::BufferId id : fn.states)
      mark(id);
    for (const art::Step &step : fn.steps)
      for (art::BufferId id : art::buffersOf(step))
        mark(id);
  }
  return used;
}

void Backend::checkSlots(std::uint64_t firstSlot, std::uint64_t count,
                         std::string_view what) const {
  check(count >= 1 && firstSlot < limits_.maxBatch && count <= limits_.maxBatch - firstSlot,
        "{}: slots [{}, {}) are outside the {} slot(s) this backend was created for", what,
        firstSlot, firstSlot + count, limits_.maxBatch);
}

void Backend::checkShape(const CallShape &shape, std::string_view what) const {
  checkSlots(shape.firstSlot, shape.batch, what);
  check(shape.seq >= 1 && shape.seq <= limits_.maxSeq,
        "{}: {} tokens per sequence is outside [1, {}] (the backend's maximum sequence length)",
        what, shape.seq, limits_.maxSeq);
}

namespace {

/// The rows of a float output at a call: [B, S, ...] holds B·S rows (every position),
/// [B, 1, ...] B rows (the last position of each sequence).
struct OutputRows {
  std::uint64_t rows = 0, rowElements = 0;
  bool everyPosition = false;
  bool whole = false; ///< a static shape: one row of every element
};

OutputRows outputRows(const Plan &plan, const art::Function &fn, const art::FunctionArg &out,
                      const CallShape &shape) {
  const art::Buffer &b = plan.artifact().buffers[out.buffer];
  check(b.dtype == art::DType::F32 || b.dtype == art::DType::BF16,
        "{}: output '{}' is {}; only f32 and bf16 outputs come back (as fp32)", fn.name,
        out.name, art::dtypeName(b.dtype));
  OutputRows r;
  const std::uint64_t elements = plan.elements(out.buffer, shape.batch, shape.seq);
  // A static shape (no B, no S: the squared gradient norm) comes back whole, as one row.
  if (std::all_of(b.shape.begin(), b.shape.end(), [](const art::Dim &d) { return d.isConstant(); })) {
    r.rows = 1;
    r.rowElements = elements;
    r.whole = true;
    return r;
  }
  r.everyPosition = b.shape.size() >= 2 && b.shape[1].kind == art::Dim::Kind::Seq;
  const bool lastPosition = b.shape.size() >= 2 && b.shape[1] == art::Dim(1);
  check(b.shape[0].kind == art::Dim::Kind::Batch && (r.everyPosition || lastPosition),
        "{}: output '{}' is {}; outputs come back as rows of [B, S, ...] (every position), "
        "[B, 1, ...] (the last position of each sequence) or whole (a static shape)",
        fn.name, out.name, art::shapeToString(b.shape));
  r.rows = r.everyPosition ? shape.batch * shape.seq : shape.batch;
  check(elements % r.rows == 0, "{}: output '{}' ({} elements) is not [{}, ...]", fn.name,
        out.name, elements, r.everyPosition ? "B·S" : "B");
  r.rowElements = elements / r.rows;
  return r;
}

} // namespace

void Backend::call(std::string_view function, const CallArgs &args) {
  const PreparedFunction &pf = plan_.function(function);
  const art::Function &fn = *pf.function;
  const art::Artifact &a = artifact();
  check(prepared(fn.name),
        "{}: this backend was created for the functions {} only (its inputs and outputs are "
        "allocated for those); create it with '{}' among Limits::functions",
        fn.name, fmt::join(limits_.functions, ", "), fn.name);
  checkShape({args.batch, args.seq, args.firstSlot}, fn.name);
  check(fn.name != "decode_step" || args.seq == 1,
        "decode_step: takes one token per sequence, got {}", args.seq);
  const CallShape shape{args.batch, args.seq, args.firstSlot};

  // Names: every input and scalar given, nothing unknown.
  for (const auto &[name, bytes] : args.inputs)
    check(fn.findInput(name) != nullptr, "{}: the function has no input '{}'", fn.name, name);
  for (const auto &[name, request] : args.outputs)
    check(fn.findOutput(name) != nullptr, "{}: the function has no output '{}'", fn.name, name);
  std::vector<double> scalars;
  for (const auto &[name, value] : args.scalars)
    check(std::any_of(fn.scalars.begin(), fn.scalars.end(),
                      [&](const art::ScalarParam &p) { return p.name == name; }),
          "{}: the function has no scalar '{}'", fn.name, name);
  for (const art::ScalarParam &p : fn.scalars) {
    auto it = args.scalars.find(p.name);
    check(it != args.scalars.end(), "{}: scalar argument '{}' is missing", fn.name, p.name);
    const double v = it->second;
    check(std::isfinite(v), "{}: scalar '{}' = {} is not finite", fn.name, p.name, v);
    if (p.kind == art::ParamKind::I64)
      check(v == std::trunc(v) && std::fabs(v) < 9.2e18,
            "{}: scalar '{}' = {} is not an i64 value", fn.name, p.name, v);
    else
      check(std::fabs(v) <= 3.4028234663852886e38, "{}: scalar '{}' = {} is outside f32", fn.name,
            p.name, v);
    scalars.push_back(v);
  }

  // Inputs: exactly the buffer's bytes at this call's size.
  for (const art::FunctionArg &in : fn.inputs) {
    auto it = args.inputs.find(in.name);
    check(it != args.inputs.end(), "{}: input '{}' is missing", fn.name, in.name);
    const std::uint64_t bytes = plan_.bytes(in.buffer, shape.batch, shape.seq);
    check(it->second.size() == bytes,
          "{}: input '{}' holds {} bytes, expected {} ({} {} at B={}, S={})", fn.name, in.name,
          it->second.size(), bytes, art::dtypeName(a.buffers[in.buffer].dtype),
          art::shapeToString(a.buffers[in.buffer].shape), shape.batch, shape.seq);
  }
  // Outputs: float buffers of B·S rows (every position, [B, S, ...]) or B rows (the last
  // position of each sequence, [B, 1, ...]); the span holds the rows asked for.
  struct Fetch {
    BufferRef ref;
    const OutputRequest *request;
    std::uint64_t rowElements;
    bool everyPosition; ///< the buffer holds B·S rows
    bool whole = false; ///< a static shape, one row
  };
  std::vector<Fetch> fetches;
  for (const art::FunctionArg &out : fn.outputs) {
    auto it = args.outputs.find(out.name);
    if (it == args.outputs.end())
      continue;
    const OutputRows r = outputRows(plan_, fn, out, shape);
    if (r.whole) {
      check(it->second.data.size() == r.rowElements,
            "{}: the span for output '{}' holds {} floats, expected {}", fn.name, out.name,
            it->second.data.size(), r.rowElements);
      fetches.push_back({BufferRef{}, &it->second, r.rowElements, false, true});
      fetches.back().ref.id = out.buffer;
      continue;
    }
    check(r.everyPosition || it->second.rows == Logits::LastPosition || shape.seq == 1,
          "{}: output '{}' ({}) holds only the last position of each sequence, but every "
          "position of {} tokens was asked for; call a function that returns every position "
          "(the artifact's 'score')",
          fn.name, out.name, art::shapeToString(a.buffers[out.buffer].shape), shape.seq);
    const std::uint64_t wanted =
        (it->second.rows == Logits::AllPositions ? r.rows : shape.batch) * r.rowElements;
    check(it->second.data.size() == wanted,
          "{}: the span for output '{}' holds {} floats, expected {} ({} rows x {})", fn.name,
          out.name, it->second.data.size(), wanted, wanted / r.rowElements, r.rowElements);
    fetches.push_back({BufferRef{}, &it->second, r.rowElements, r.everyPosition});
    fetches.back().ref.id = out.buffer;
  }
  // The draw reads the last position of each sequence of the first output (the logits).
  std::optional<DrawSource> drawSource;
  if (args.draw != nullptr) {
    const DrawRequest &draw = *args.draw;
    check(!fn.outputs.empty(), "{}: a draw needs logits, but the function has no output",
          fn.name);
    check(draw.rows.size() == shape.batch && draw.results.size() == shape.batch,
          "{}: the draw has {} rows and room for {} results, the call has {} sequences", fn.name,
          draw.rows.size(), draw.results.size(), shape.batch);
    validateSamplingOptions(draw.options);
    const OutputRows r = outputRows(plan_, fn, fn.outputs[0], shape);
    check(r.rowElements == vocabSize(),
          "{}: a draw reads rows of the vocabulary's {} logits, but output '{}' has rows of {}",
          fn.name, vocabSize(), fn.outputs[0].name, r.rowElements);
    drawSource.emplace();
    drawSource->buffer.id = fn.outputs[0].buffer;
    drawSource->elements = r.rowElements;
    drawSource->first = r.everyPosition ? (shape.seq - 1) * r.rowElements : 0;
    drawSource->stride = r.everyPosition ? shape.seq * r.rowElements : r.rowElements;
  }

  const Memory &mem = memory();
  for (const art::FunctionArg &in : fn.inputs)
    uploadInput(plan_.resolve(mem, in.buffer, shape), args.inputs.find(in.name)->second);
  if (drawSource) {
    drawSource->buffer = plan_.resolve(mem, drawSource->buffer.id, shape);
    prepareDraw(*drawSource, shape, *args.draw);
  }
  const std::vector<std::int64_t> flags = execute(pf, shape, scalars, args.observer);
  plan_.checkErrorFlags(pf, flags, shape);
  for (Fetch &f : fetches) {
    f.ref = plan_.resolve(mem, f.ref.id, shape);
    float *out = f.request->data.data();
    // With one token per sequence, or an output of the last positions only, the rows asked
    // for are all rows: one transfer.
    if (f.whole) {
      downloadRows(f.ref, 0, 1, f.rowElements, out);
    } else if (f.request->rows == Logits::AllPositions || shape.seq == 1 || !f.everyPosition) {
      downloadRows(f.ref, 0, f.everyPosition ? shape.batch * shape.seq : shape.batch,
                   f.rowElements, out);
    } else {
      for (std::uint64_t b = 0; b < shape.batch; ++b)
        downloadRows(f.ref, b * shape.seq + shape.seq - 1, 1, f.rowElements,
                     out + b * f.rowElements);
    }
  }
  if (drawSource)
    finishDraw(*drawSource, shape, *args.draw);
}

void Backend::prepareDraw(const DrawSource &, const CallShape &, const DrawRequest &) {}

void Backend::finishDraw(const DrawSource &source, const CallShape &shape,
                         const DrawRequest &draw) {
  // The logits come to the host (one transfer when the rows are contiguous) and Sampler draws.
  const std::uint64_t v = source.elements;
  drawRows_.resize(shape.batch * v);
  if (source.stride == v) {
    downloadRows(source.buffer, source.first / v, shape.batch, v, drawRows_.data());
  } else {
    for (std::uint64_t b = 0; b < shape.batch; ++b)
      downloadRows(source.buffer, (source.first + b * source.stride) / v, 1, v,
                   drawRows_.data() + b * v);
  }
  Sampler sampler(draw.options);
  for (std::uint64_t b = 0; b < shape.batch; ++b) {
    const DrawRow &row = draw.rows[b];
    draw.results[b] =
        row.active ? sampler.draw(std::span<const float>(drawRows_).subspan(b * v, v),
                                  row.stream, row.step)
                   : Draw{};
  }
}

void Backend::run(std::string_view function, std::uint64_t firstSlot, std::uint64_t batch,
                  std::uint64_t seq, std::span<const std::int32_t> tokens,
                  std::span<float> logits, Logits which, const DrawRequest *draw) {
  const art::Function &fn = *plan_.function(function).function;
  check(fn.inputs.size() == 1 && fn.outputs.size() >= 1,
        "{}: function '{}' must take one token input and return logits first (has {} inputs, {} "
        "outputs)",
        artifact().label(), fn.name, fn.inputs.size(), fn.outputs.size());
  check(artifact().buffers[fn.inputs[0].buffer].dtype == art::DType::I32,
        "{}: function '{}': input '{}' must be i32 token ids", artifact().label(), fn.name,
        fn.inputs[0].name);
  check(tokens.size() == batch * seq, "{}: expected {} token ids ({} sequences x {}), got {}",
        fn.name, batch * seq, batch, seq, tokens.size());
  // Host-side check first: it names the exact sequence, position and id.
  const std::uint64_t vocab = vocabSize();
  for (std::size_t i = 0; i < tokens.size(); ++i)
    check(tokens[i] >= 0 && static_cast<std::uint64_t>(tokens[i]) < vocab,
          "{}: token id {} of sequence {} (slot {}) at position {} is outside the vocabulary "
          "[0, {})",
          fn.name, tokens[i], i / seq, firstSlot + i / seq, i % seq, vocab);
  CallArgs args;
  args.firstSlot = firstSlot;
  args.batch = batch;
  args.seq = seq;
  args.inputs.emplace(fn.inputs[0].name, std::as_bytes(tokens));
  // The logits come back only when asked for (a span to fill).
  if (!logits.empty())
    args.outputs.emplace(fn.outputs[0].name, OutputRequest{logits, which});
  args.draw = draw;
  call(function, args);
}

namespace {

/// Cuts |values| (a bound buffer's contents, |shape|) along the binding's concatenation axis
/// into its sources: outer × (axis extent) × inner, source by source.
void splitBinding(const art::WeightBinding &w, const art::Shape &shape,
                  const std::vector<float> &values, std::vector<NamedTensor> &out) {
  std::uint64_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d < w.concatAxis)
      outer *= shape[d].value;
    else if (d > w.concatAxis)
      inner *= shape[d].value;
  }
  const std::uint64_t total = shape[w.concatAxis].value;
  std::uint64_t start = 0;
  for (std::size_t s = 0; s < w.sources.size(); ++s) {
    NamedTensor t;
    t.name = w.sources[s];
    t.shape = w.sourceShapes[s];
    const std::uint64_t extent = t.shape[w.concatAxis];
    t.values.reserve(outer * extent * inner);
    for (std::uint64_t o = 0; o < outer; ++o) {
      const float *row = values.data() + (o * total + start) * inner;
      t.values.insert(t.values.end(), row, row + extent * inner);
    }
    start += extent;
    out.push_back(std::move(t));
  }
}

} // namespace

std::vector<NamedTensor> Backend::exportParameters(bool parametersOnly) {
  const art::Artifact &a = artifact();
  std::vector<NamedTensor> out;
  for (const art::WeightBinding &w : a.weights) {
    const art::Buffer &b = a.buffers[w.buffer];
    if ((parametersOnly && b.cls != art::BufferClass::Parameter) || w.scaleColumnsBy)
      continue;
    splitBinding(w, b.shape, readBoundBuffer(w.buffer), out);
  }
  return out;
}

const art::WeightBinding &Backend::bindingOf(const art::Buffer &b) const {
  const art::Artifact &a = artifact();
  const art::BufferId bound = b.parameter ? *b.parameter : b.id;
  const auto it = std::find_if(a.weights.begin(), a.weights.end(),
                               [&](const art::WeightBinding &w) { return w.buffer == bound; });
  check(it != a.weights.end(), "buffer '{}': no weight binding says which tensors it holds",
        b.name);
  return *it;
}

std::vector<NamedTensor> Backend::exportGradients() {
  std::vector<NamedTensor> out;
  for (const art::Buffer &b : artifact().buffers)
    if (b.cls == art::BufferClass::Gradient && b.parameter)
      splitBinding(bindingOf(b), b.shape, readBuffer(b.id, CallShape{}), out);
  return out;
}

std::vector<NamedTensor> Backend::exportOptimizerState(art::OptimizerRole role) {
  std::vector<NamedTensor> out;
  for (const art::Buffer &b : artifact().buffers)
    if (b.cls == art::BufferClass::Optimizer && b.role == role)
      splitBinding(bindingOf(b), b.shape, readBuffer(b.id, CallShape{}), out);
  return out;
}

void Backend::importTensors(
    std::optional<art::OptimizerRole> role,
    const std::map<std::string, std::span<const float>, std::less<>> &tensors) {
  for (const art::Buffer &b : artifact().buffers) {
    const bool wanted = role ? b.cls == art::BufferClass::Optimizer && b.role == role
                             : b.cls == art::BufferClass::Parameter;
    if (!wanted)
      continue;
    // The inverse of splitBinding: source by source into its slab of every outer row.
    const art::WeightBinding &w = bindingOf(b);
    std::uint64_t outer = 1, inner = 1;
    for (std::size_t d = 0; d < b.shape.size(); ++d) {
      if (d < w.concatAxis)
        outer *= b.shape[d].value;
      else if (d > w.concatAxis)
        inner *= b.shape[d].value;
    }
    const std::uint64_t total = b.shape[w.concatAxis].value;
    std::vector<float> values(outer * total * inner);
    std::uint64_t start = 0;
    for (std::size_t s = 0; s < w.sources.size(); ++s) {
      const std::string &name = w.sources[s];
      const auto it = tensors.find(name);
      check(it != tensors.end(), "buffer '{}': no tensor '{}'{} to restore it from", b.name, name,
            role ? fmt::format(" ({})", art::optimizerRoleName(*role)) : std::string());
      const std::uint64_t extent = w.sourceShapes[s][w.concatAxis];
      check(it->second.size() == outer * extent * inner,
            "tensor '{}'{}: {} values, but '{}' takes {}", name,
            role ? fmt::format(" ({})", art::optimizerRoleName(*role)) : std::string(),
            it->second.size(), b.name, outer * extent * inner);
      for (std::uint64_t o = 0; o < outer; ++o)
        std::copy_n(it->second.data() + o * extent * inner, extent * inner,
                    values.data() + (o * total + start) * inner);
      start += extent;
    }
    writeBuffer(b.id, CallShape{}, values);
  }
}

void Backend::fillMasterCopies() {
  // Through the host: the values as fp32, what the master holds. (The 7B's masters would
  // rather be converted on the device; this is the CPU backend's and the tests' path.)
  for (const art::Buffer &b : artifact().buffers)
    if (b.role == art::OptimizerRole::Master)
      writeBuffer(b.id, CallShape{}, readBoundBuffer(*b.parameter));
}

void Backend::zeroGradients() {
  for (const art::Buffer &b : artifact().buffers)
    if (b.cls == art::BufferClass::Gradient)
      writeBuffer(b.id, CallShape{},
                  std::vector<float>(plan_.elements(b.id, 1, 1), 0.0f));
}

} // namespace xlc::exec
