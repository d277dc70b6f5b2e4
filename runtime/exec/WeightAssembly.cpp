//===- WeightAssembly.cpp - Filling weight buffers from a checkpoint ------===//

#include "runtime/exec/WeightAssembly.h"

#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/DType.h"

#include <fmt/ranges.h>

#include <string>

namespace xlc::exec {
namespace art = xlc::artifact;

namespace {

std::vector<std::uint64_t> bufferDims(const art::Buffer &buffer) {
  std::vector<std::uint64_t> dims;
  for (const art::Dim &d : buffer.shape)
    dims.push_back(d.value);
  return dims;
}

std::string dimsString(std::span<const std::int64_t> dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

bool sameShape(std::span<const std::int64_t> actual, std::span<const std::uint64_t> expected) {
  if (actual.size() != expected.size())
    return false;
  for (std::size_t i = 0; i < actual.size(); ++i)
    if (actual[i] < 0 || static_cast<std::uint64_t>(actual[i]) != expected[i])
      return false;
  return true;
}

} // namespace

void checkWeights(const art::Artifact &artifact, const weights::Checkpoint &checkpoint) {
  std::vector<std::string> problems;
  auto checkTensor = [&](const std::string &name, std::span<const std::uint64_t> shape,
                         const std::string &buffer) {
    const weights::TensorInfo *t = checkpoint.find(name);
    if (!t) {
      problems.push_back(fmt::format("tensor '{}' (for {}) is missing", name, buffer));
      return;
    }
    if (!weights::isConvertibleFloat(t->dtype))
      problems.push_back(fmt::format("tensor '{}' has dtype {}, expected F32, BF16 or F16", name,
                                     weights::dtypeName(t->dtype)));
    if (!sameShape(t->shape, shape))
      problems.push_back(fmt::format("tensor '{}' has shape {}, the artifact expects [{}]", name,
                                     dimsString(t->shape), fmt::join(shape, ", ")));
  };
  for (const art::WeightBinding &binding : artifact.weights) {
    const art::Buffer *buffer = artifact.findBuffer(binding.buffer);
    check(buffer != nullptr, "{}: weight binding names missing buffer {}", artifact.label(),
          binding.buffer);
    for (std::size_t i = 0; i < binding.sources.size(); ++i)
      checkTensor(binding.sources[i], binding.sourceShapes[i], buffer->name);
    if (binding.scaleColumnsBy) {
      std::vector<std::uint64_t> dims = bufferDims(*buffer);
      std::vector<std::uint64_t> vec{dims.empty() ? 0 : dims.back()};
      checkTensor(*binding.scaleColumnsBy, vec, buffer->name + " (folded norm weight)");
    }
  }
  if (!problems.empty())
    fail("checkpoint {} does not match artifact {} ({} problem{}):\n  {}", checkpoint.path(),
         artifact.label(), problems.size(), problems.size() == 1 ? "" : "s",
         fmt::join(problems, "\n  "));
}

std::vector<float> assembleWeight(const art::Artifact &artifact, const art::WeightBinding &binding,
                                  const weights::Checkpoint &checkpoint) {
  const art::Buffer *buffer = artifact.findBuffer(binding.buffer);
  check(buffer != nullptr, "{}: weight binding names missing buffer {}", artifact.label(),
        binding.buffer);
  const std::vector<std::uint64_t> dims = bufferDims(*buffer);
  std::uint64_t count = 1;
  for (std::uint64_t d : dims)
    count *= d;
  std::vector<float> out(count);

  // Concatenation along |axis| of row-major tensors: with outer = Π dims[0:axis] and each source
  // contributing a contiguous run of (its axis extent · inner) elements per outer index.
  const std::uint32_t axis = binding.concatAxis;
  check(axis < dims.size() || dims.empty(), "{}: concat axis {} of {} is out of range",
        artifact.label(), axis, buffer->name);
  std::uint64_t outer = 1, inner = 1;
  for (std::uint32_t i = 0; i < axis; ++i)
    outer *= dims[i];
  for (std::size_t i = axis + 1; i < dims.size(); ++i)
    inner *= dims[i];
  const std::uint64_t rowOut = dims.empty() ? 1 : dims[axis] * inner;
  std::uint64_t column = 0;
  std::vector<float> source;
  for (std::size_t s = 0; s < binding.sources.size(); ++s) {
    const std::string &name = binding.sources[s];
    const std::uint64_t run =
        (binding.sourceShapes[s].empty() ? 1 : binding.sourceShapes[s][axis]) * inner;
    source.resize(outer * run);
    checkpoint.readF32(name, source);
    check(column + run <= rowOut, "{}: sources of {} overflow its shape", artifact.label(),
          buffer->name);
    for (std::uint64_t o = 0; o < outer; ++o)
      std::copy_n(source.data() + o * run, run, out.data() + o * rowOut + column);
    column += run;
  }
  check(column == rowOut, "{}: sources of {} fill {} of {} elements per row", artifact.label(),
        buffer->name, column, rowOut);

  if (binding.scaleColumnsBy) {
    check(dims.size() == 2, "{}: {} folds a norm weight but is not 2-D", artifact.label(),
          buffer->name);
    std::vector<float> scale = checkpoint.readF32(*binding.scaleColumnsBy);
    check(scale.size() == dims[1], "{}: norm weight '{}' has {} values, {} needs {}",
          artifact.label(), *binding.scaleColumnsBy, scale.size(), buffer->name, dims[1]);
    for (std::uint64_t r = 0; r < dims[0]; ++r)
      for (std::uint64_t c = 0; c < dims[1]; ++c)
        out[r * dims[1] + c] *= scale[c];
  }
  return out;
}

std::uint64_t weightBytes(const art::Artifact &artifact) {
  std::uint64_t total = 0;
  for (const art::Buffer &b : artifact.buffers)
    if (b.cls == art::BufferClass::Weight)
      total += art::byteSize(b).evaluate(1, 1, b.name);
  return total;
}

} // namespace xlc::exec
