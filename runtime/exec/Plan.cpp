//===- Plan.cpp - The one plan executor -----------------------------------===//

#include "runtime/exec/Plan.h"

#include "runtime/artifact/Validate.h"
#include "runtime/kernels/KernelFamily.h"
#include "runtime/support/Error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace xlc::exec {
namespace art = xlc::artifact;

Plan::Plan(const art::Artifact &artifact, std::uint64_t maxBatch, std::uint64_t maxSeq)
    : artifact_(&artifact) {
  art::validate(artifact, maxBatch, maxSeq);
  kernels::checkFamilies(artifact);
  for (const art::Buffer &b : artifact.buffers)
    byteSizes_.push_back(art::byteSize(b));
  for (const art::Function &fn : artifact.functions) {
    PreparedFunction pf;
    pf.function = &fn;
    std::set<art::BufferId> used;
    for (const art::FunctionArg &arg : fn.inputs)
      used.insert(arg.buffer);
    for (const art::FunctionArg &arg : fn.outputs)
      used.insert(arg.buffer);
    used.insert(fn.states.begin(), fn.states.end());
    for (std::size_t i = 0; i < fn.steps.size(); ++i) {
      const art::Step &step = fn.steps[i];
      PreparedStep ps;
      ps.index = i;
      ps.step = &step;
      if (const art::LaunchStep *launch = step.launch()) {
        auto useKernel = [&](PreparedStep &into, art::KernelIndex k) {
          into.kernelIndex = k;
          into.kernel = &artifact.kernels[k];
          into.where = fmt::format("{} step {} ({}, kernel '{}')", fn.name, i, step.op,
                                   into.kernel->name);
        };
        useKernel(ps, launch->kernel);
        for (const art::BatchVariant &v : launch->byBatch) {
          PreparedStep variant;
          variant.index = i;
          variant.step = &step;
          useKernel(variant, v.kernel);
          ps.byBatch.emplace_back(v.maxBatch, std::move(variant));
        }
      } else {
        ps.where = fmt::format("{} step {} ({}, {})", fn.name, i, step.op,
                               art::stepKindName(step.kind()));
      }
      for (const art::Duty &duty : step.duties)
        if (duty.kind == art::DutyKind::ErrorFlag) {
          ps.errorFlags.push_back(pf.errorFlags.size());
          pf.errorFlags.push_back({i, duty.buffer});
        }
      for (art::BufferId id : art::buffersOf(step))
        used.insert(id);
      for (auto &[maxBatch, variant] : ps.byBatch)
        variant.errorFlags = ps.errorFlags;
      pf.steps.push_back(std::move(ps));
    }
    pf.buffers.assign(used.begin(), used.end());
    functions_.emplace(fn.name, std::move(pf));
  }
}

const PreparedFunction &Plan::function(std::string_view name) const {
  auto it = functions_.find(name);
  if (it == functions_.end()) {
    std::vector<std::string_view> names;
    for (const auto &[n, f] : functions_)
      names.push_back(n);
    fail("{}: the artifact has no function '{}' (it has {})", artifact_->label(), name,
         fmt::join(names, ", "));
  }
  return it->second;
}

std::uint64_t Plan::bytes(art::BufferId id, std::uint64_t batch, std::uint64_t seq) const {
  return byteSizes_[id].evaluate(batch, seq, artifact_->buffers[id].name);
}

std::uint64_t Plan::elements(art::BufferId id, std::uint64_t batch, std::uint64_t seq) const {
  return bytes(id, batch, seq) / art::dtypeSize(artifact_->buffers[id].dtype);
}

std::vector<std::uint64_t>
Plan::ioLayout(const std::function<std::uint64_t(art::BufferId)> &bytesOf,
               std::uint64_t alignment, std::uint64_t &total,
               std::span<const std::string> functions) const {
  const std::size_t count = artifact_->buffers.size();
  std::vector<std::uint64_t> offset(count, 0);
  std::vector<bool> placed(count, false);
  total = 0;
  auto alignUp = [&](std::uint64_t x) {
    std::uint64_t r;
    check(!__builtin_add_overflow(x, alignment - 1, &r), "inputs and outputs: size overflows");
    return r / alignment * alignment;
  };
  for (const auto &[name, pf] : functions_) {
    if (!functions.empty() &&
        std::find(functions.begin(), functions.end(), name) == functions.end())
      continue;
    // This function's buffers go after every buffer it already has a place for (a shared one
    // placed by an earlier function), so its own are disjoint.
    std::uint64_t end = 0;
    for (const auto *list : {&pf.function->inputs, &pf.function->outputs})
      for (const art::FunctionArg &arg : *list)
        if (placed[arg.buffer])
          end = std::max(end, offset[arg.buffer] + bytesOf(arg.buffer));
    for (const auto *list : {&pf.function->inputs, &pf.function->outputs})
      for (const art::FunctionArg &arg : *list) {
        if (placed[arg.buffer])
          continue;
        offset[arg.buffer] = alignUp(end);
        placed[arg.buffer] = true;
        check(!__builtin_add_overflow(offset[arg.buffer], bytesOf(arg.buffer), &end),
              "inputs and outputs: size overflows");
      }
    total = std::max(total, end);
  }
  return offset;
}

std::uint64_t Plan::address(const Memory &memory, art::BufferId id,
                            const CallShape &shape) const {
  const art::Buffer &b = artifact_->buffers[id];
  if (art::isArenaClass(b.cls)) {
    // validate() proved offset + size ≤ arena bytes at every (B, S) within the limits; the
    // product with the scale is checked anyway (the backend allocated scale · arena bytes).
    std::uint64_t offset = b.offset->evaluate(shape.batch, shape.seq, b.name), scaled;
    check(!__builtin_mul_overflow(offset, memory.arenaScale, &scaled),
          "buffer '{}': arena offset overflows", b.name);
    return memory.arenaBase + scaled;
  }
  if (b.cls == art::BufferClass::State) {
    std::uint64_t skip;
    check(!__builtin_mul_overflow(shape.firstSlot, memory.slotBytes[id], &skip),
          "buffer '{}': slot offset overflows", b.name);
    return memory.base[id] + skip;
  }
  return memory.base[id];
}

BufferRef Plan::resolve(const Memory &memory, art::BufferId id, const CallShape &shape) const {
  BufferRef ref;
  ref.id = id;
  ref.buffer = &artifact_->buffers[id];
  ref.address = address(memory, id, shape);
  ref.elements = elements(id, shape.batch, shape.seq);
  return ref;
}

void Plan::execute(const PreparedFunction &fn, const Memory &memory, const CallShape &shape,
                   std::span<const double> scalars, StepHandlers &handlers,
                   StepObserver *observer) const {
  check(scalars.size() == fn.function->scalars.size(), "{}: {} scalar arguments for {}",
        fn.function->name, scalars.size(), fn.function->scalars.size());
  std::vector<LaunchArg> args;
  for (const PreparedStep &prepared : fn.steps) {
    const PreparedStep &ps = prepared.forBatch(shape.batch);
    const art::Step &step = *ps.step;
    if (observer)
      observer->beforeStep(ps, shape);
    for (const art::Duty &duty : step.duties)
      if (duty.kind == art::DutyKind::Zero)
        handlers.zero(resolve(memory, duty.buffer, shape), ps);

    if (const art::LaunchStep *launch = step.launch()) {
      args.clear();
      for (std::size_t i = 0; i < launch->args.size(); ++i) {
        const art::Arg &a = launch->args[i];
        LaunchArg arg;
        arg.kind = ps.kernel->params[i].kind;
        const std::string name = ps.kernel->params[i].name;
        std::uint64_t value = 0;
        switch (a.kind) {
        case art::ArgKind::Buffer:
          arg.buffer = resolve(memory, a.bufferId, shape);
          break;
        case art::ArgKind::I64:
          arg.integer = a.intValue;
          break;
        case art::ArgKind::F32:
          arg.real = static_cast<double>(a.floatValue);
          break;
        case art::ArgKind::Symbol: {
          std::optional<std::uint64_t> v = art::symbolValue(a.symbolValue, shape.batch, shape.seq);
          check(v.has_value(), "{}: parameter '{}' overflows", ps.where, name);
          value = *v;
          break;
        }
        case art::ArgKind::Expr:
          value = a.exprValue.evaluate(shape.batch, shape.seq,
                                       fmt::format("{} parameter '{}'", ps.where, name));
          break;
        case art::ArgKind::Scalar:
          if (arg.kind == art::ParamKind::F32) {
            arg.real = static_cast<double>(static_cast<float>(scalars[a.scalarIndex]));
          } else {
            // Backend::call checked the value is an integer inside the i64 range.
            const double v = scalars[a.scalarIndex];
            check(std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 9.2e18,
                  "{}: scalar '{}' = {} is not an i64 value", ps.where,
                  fn.function->scalars[a.scalarIndex].name, v);
            arg.integer = static_cast<std::int64_t>(v);
          }
          break;
        }
        if (a.kind == art::ArgKind::Symbol || a.kind == art::ArgKind::Expr) {
          check(value <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
                "{}: parameter '{}' = {} does not fit an int64", ps.where, name, value);
          arg.integer = static_cast<std::int64_t>(value);
        }
        args.push_back(arg);
      }
      handlers.launch(ps, args, shape);
    } else if (const art::GemmStep *g = step.gemm()) {
      const std::uint64_t m = g->m.evaluate(shape.batch, shape.seq, ps.where + " m");
      const std::uint64_t n = g->n.evaluate(shape.batch, shape.seq, ps.where + " n");
      const std::uint64_t k = g->k.evaluate(shape.batch, shape.seq, ps.where + " k");
      std::optional<BufferRef> c;
      if (g->c)
        c = resolve(memory, *g->c, shape);
      handlers.gemm(ps, *g, m, n, k, resolve(memory, g->a, shape), resolve(memory, g->b, shape),
                    c, resolve(memory, g->d, shape));
    } else if (const art::CopyStep *copy = step.copy()) {
      handlers.copy(ps, resolve(memory, copy->src, shape), resolve(memory, copy->dst, shape),
                    copy->bytes.evaluate(shape.batch, shape.seq, ps.where));
    }

    for (std::size_t index : ps.errorFlags)
      handlers.keepErrorFlag(index, resolve(memory, fn.errorFlags[index].buffer, shape));
    if (observer)
      observer->afterStep(ps, shape);
  }
}

void Plan::checkErrorFlags(const PreparedFunction &fn, std::span<const std::int64_t> values,
                           const CallShape &shape) const {
  for (std::size_t i = 0; i < values.size() && i < fn.errorFlags.size(); ++i) {
    const std::int64_t v = values[i];
    if (v == 0)
      continue;
    const PreparedStep &ps = fn.steps[fn.errorFlags[i].step];
    if (ps.step->op == "embedding" && v > 0) {
      // The embedding's flag is 1 + the first row with a token id outside the vocabulary.
      const std::uint64_t row = static_cast<std::uint64_t>(v - 1);
      fail("{}: a token id outside the vocabulary at sequence {} (slot {}), position {}",
           ps.where, row / shape.seq, shape.firstSlot + row / shape.seq, row % shape.seq);
    }
    fail("{}: the step reported error {} (flag '{}')", ps.where, v,
         artifact_->buffers[fn.errorFlags[i].buffer].name);
  }
}

} // namespace xlc::exec
