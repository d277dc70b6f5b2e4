//===- GemvFusion.cpp - Row kernels a decode GEMV absorbs -----------------===//

#include "runtime/exec/cuda/GemvFusion.h"

#include "runtime/support/Error.h"

#include <algorithm>
#include <optional>

namespace xlc::exec {
namespace art = xlc::artifact;

namespace {

/// The index of |kernel|'s parameter |name|, if it has one.
std::optional<std::size_t> paramIndex(const art::Kernel &kernel, std::string_view name) {
  for (std::size_t i = 0; i < kernel.params.size(); ++i)
    if (kernel.params[i].name == name)
      return i;
  return std::nullopt;
}

/// The argument of |launch| for parameter |name| when it is of |kind|.
const art::Arg *argOf(const art::Kernel &kernel, const art::LaunchStep &launch,
                      std::string_view name, art::ArgKind kind) {
  const std::optional<std::size_t> i = paramIndex(kernel, name);
  if (!i || *i >= launch.args.size() || launch.args[*i].kind != kind)
    return nullptr;
  return &launch.args[*i];
}

std::optional<art::BufferId> bufferArg(const art::Kernel &kernel, const art::LaunchStep &launch,
                                       std::string_view name) {
  const art::Arg *arg = argOf(kernel, launch, name, art::ArgKind::Buffer);
  return arg ? std::optional<art::BufferId>(arg->bufferId) : std::nullopt;
}

/// A literal i64 argument.
std::optional<std::int64_t> intArg(const art::Kernel &kernel, const art::LaunchStep &launch,
                                   std::string_view name) {
  const art::Arg *arg = argOf(kernel, launch, name, art::ArgKind::I64);
  return arg ? std::optional<std::int64_t>(arg->intValue) : std::nullopt;
}

/// The prologue form of a launch and the buffer it writes, when it is a row kernel a GEMV can
/// form itself: a bf16 rms_norm without a weight, or a bf16 swiglu whose gate and up are column
/// ranges of one buffer with one row stride (the fused gate|up projection).
std::optional<std::pair<gemv_abi::Prologue, art::BufferId>>
rowKernelForm(const art::Artifact &artifact, const art::Step &step) {
  const art::LaunchStep *launch = step.launch();
  if (!launch || !launch->byBatch.empty() || !step.duties.empty())
    return std::nullopt;
  const art::Kernel &kernel = artifact.kernels.at(launch->kernel);
  const std::string dtype = kernel.config.value("dtype", std::string());
  if (dtype != "bf16")
    return std::nullopt;
  if (kernel.family == "rms_norm" && !kernel.config.value("has_weight", true)) {
    if (std::optional<art::BufferId> y = bufferArg(kernel, *launch, "y"))
      return std::make_pair(gemv_abi::Prologue::RmsNorm, *y);
    return std::nullopt;
  }
  if (kernel.family == "swiglu") {
    const auto gate = bufferArg(kernel, *launch, "gate"), up = bufferArg(kernel, *launch, "up");
    const auto gateStride = intArg(kernel, *launch, "gate_stride");
    const auto upStride = intArg(kernel, *launch, "up_stride");
    const auto gateOffset = intArg(kernel, *launch, "gate_offset");
    const auto upOffset = intArg(kernel, *launch, "up_offset");
    const auto out = bufferArg(kernel, *launch, "out");
    if (gate && up && *gate == *up && gateStride && upStride && *gateStride == *upStride &&
        gateOffset && upOffset && out)
      return std::make_pair(gemv_abi::Prologue::SwiGlu, *out);
  }
  return std::nullopt;
}

/// Whether |step| reads |buffer| as the A of a plain forward GEMM, names it nowhere else and has
/// no duties (nothing may run between two GEMMs that share a launch).
bool readsAsPlainA(const art::Step &step, art::BufferId buffer) {
  const art::GemmStep *g = step.gemm();
  if (!g || g->a != buffer || g->transA || !g->transB || g->accumulate ||
      g->aRows != art::GemmRows::All || !step.duties.empty())
    return false;
  const std::vector<art::BufferId> named = art::buffersOf(step);
  return std::count(named.begin(), named.end(), buffer) == 1;
}

} // namespace

std::vector<AbsorbableRowKernel> findAbsorbableRowKernels(const art::Artifact &artifact,
                                                          const art::Function &function) {
  std::vector<AbsorbableRowKernel> found;
  const std::vector<art::Step> &steps = function.steps;
  for (std::size_t j = 0; j < steps.size(); ++j) {
    const auto form = rowKernelForm(artifact, steps[j]);
    if (!form)
      continue;
    const art::BufferId out = form->second;
    if (artifact.buffers.at(out).cls != art::BufferClass::Activation)
      continue;
    AbsorbableRowKernel row{j, {}, form->first, out};
    for (std::size_t c = j + 1; c < steps.size() && readsAsPlainA(steps[c], out); ++c)
      row.consumers.push_back(c);
    if (row.consumers.empty())
      continue;
    // No other step may touch the output: skipping its write must be unobservable. The row
    // kernel itself names it once, as its output.
    bool alone = true;
    for (std::size_t s = 0; s < steps.size() && alone; ++s) {
      if (s == j || std::find(row.consumers.begin(), row.consumers.end(), s) !=
                        row.consumers.end())
        continue;
      const std::vector<art::BufferId> named = art::buffersOf(steps[s]);
      alone = std::find(named.begin(), named.end(), out) == named.end();
    }
    const std::vector<art::BufferId> own = art::buffersOf(steps[j]);
    if (alone && std::count(own.begin(), own.end(), out) == 1)
      found.push_back(std::move(row));
  }
  return found;
}

AbsorbedInput absorbedInput(const art::Kernel &kernel, gemv_abi::Prologue kind,
                            std::span<const LaunchArg> args) {
  auto arg = [&](std::string_view name) -> const LaunchArg & {
    const std::optional<std::size_t> i = paramIndex(kernel, name);
    check(i && *i < args.size(), "kernel '{}' has no argument '{}' (a GEMV prologue needs it)",
          kernel.name, name);
    return args[*i];
  };
  AbsorbedInput in;
  in.prologue.kind = kind;
  const BufferRef &input = arg(kind == gemv_abi::Prologue::RmsNorm ? "x" : "gate").buffer;
  in.inputBegin = input.address;
  in.inputEnd = input.address + input.elements * art::dtypeSize(input.buffer->dtype);
  if (kind == gemv_abi::Prologue::RmsNorm) {
    in.a = arg("x").buffer.address + 2 * static_cast<std::uint64_t>(arg("x_offset").integer);
    in.lda = static_cast<std::uint64_t>(arg("x_stride").integer);
    in.prologue.eps = arg("eps").real;
  } else {
    const std::int64_t gateOffset = arg("gate_offset").integer;
    in.a = arg("gate").buffer.address + 2 * static_cast<std::uint64_t>(gateOffset);
    in.lda = static_cast<std::uint64_t>(arg("gate_stride").integer);
    in.prologue.upOffset = arg("up_offset").integer - gateOffset;
  }
  return in;
}

} // namespace xlc::exec
