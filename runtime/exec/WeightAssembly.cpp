//===- WeightAssembly.cpp - Filling weight buffers from a checkpoint ------===//

#include "runtime/exec/WeightAssembly.h"

#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/DType.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
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

bool isGemmWeight(const art::Artifact &artifact, art::BufferId id) {
  for (const art::Function &f : artifact.functions)
    for (const art::Step &step : f.steps)
      if (const art::GemmStep *gemm = step.gemm(); gemm && gemm->b == id)
        return true;
  return false;
}

/// Whether buffer |id| is the table of an embedding launch: one buffer for the lookup and the
/// tied head, which cannot take a distinct lm_head.weight.
bool isEmbeddingTable(const art::Artifact &artifact, art::BufferId id) {
  for (const art::Function &f : artifact.functions)
    for (const art::Step &step : f.steps) {
      const art::LaunchStep *launch = step.launch();
      if (!launch || launch->kernel >= artifact.kernels.size() ||
          artifact.kernels[launch->kernel].family != "embedding")
        continue;
      for (const art::Arg &arg : launch->args)
        if (arg.kind == art::ArgKind::Buffer && arg.bufferId == id)
          return true;
    }
  return false;
}

/// Whether two tensors of |checkpoint| hold the same values (bit for bit when stored alike).
bool sameValues(const weights::Checkpoint &checkpoint, const weights::TensorInfo &x,
                const weights::TensorInfo &y) {
  if (x.shape != y.shape)
    return false;
  if (x.dtype == y.dtype) {
    std::span<const std::uint8_t> a = checkpoint.rawData(x), b = checkpoint.rawData(y);
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
  }
  return checkpoint.readF32(x.name) == checkpoint.readF32(y.name);
}

} // namespace

bool isTiedLmHead(const art::Artifact &artifact, const art::WeightBinding &binding) {
  return binding.sources.size() == 1 && binding.sources[0] == kEmbeddingTensor &&
         isGemmWeight(artifact, binding.buffer);
}

std::vector<std::string> bindingSources(const art::Artifact &artifact,
                                        const art::WeightBinding &binding,
                                        const weights::Checkpoint &checkpoint) {
  // The one place that decides (WeightAssembly.h, "Tied embeddings and the LM head").
  if (isTiedLmHead(artifact, binding) && checkpoint.find(kLmHeadTensor) != nullptr &&
      !isEmbeddingTable(artifact, binding.buffer))
    return {std::string(kLmHeadTensor)};
  return binding.sources;
}

std::vector<std::string> describeLmHead(const art::Artifact &artifact,
                                        const weights::Checkpoint &checkpoint) {
  std::vector<std::string> lines;
  const bool stored = checkpoint.find(kLmHeadTensor) != nullptr;
  for (const art::WeightBinding &binding : artifact.weights) {
    const art::Buffer *buffer = artifact.findBuffer(binding.buffer);
    if (!buffer || !isGemmWeight(artifact, binding.buffer))
      continue;
    const std::string name = buffer->name;
    const bool untied = binding.sources.size() == 1 && binding.sources[0] == kLmHeadTensor;
    if (untied) {
      lines.push_back(fmt::format("LM head '{}' from tensor '{}' (untied embeddings)", name,
                                  kLmHeadTensor));
    } else if (isTiedLmHead(artifact, binding)) {
      const std::string source = bindingSources(artifact, binding, checkpoint)[0];
      if (source == kLmHeadTensor)
        lines.push_back(fmt::format(
            "LM head '{}' from tensor '{}': tie_word_embeddings is true, but the checkpoint "
            "stores its own LM head, which transformers uses too (the input embedding stays "
            "'{}')",
            name, kLmHeadTensor, kEmbeddingTensor));
      else if (stored)
        lines.push_back(fmt::format(
            "LM head '{}' from tensor '{}' (tied embeddings; this artifact uses one buffer for "
            "the lookup and the head, and the checkpoint's '{}' equals it)",
            name, kEmbeddingTensor, kLmHeadTensor));
      else
        lines.push_back(fmt::format("LM head '{}' from tensor '{}' (tied embeddings; the "
                                    "checkpoint has no '{}')",
                                    name, kEmbeddingTensor, kLmHeadTensor));
    }
  }
  return lines;
}

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
  // A tied LM head read from lm_head.weight: the tensor is not the one the artifact names, so
  // its problems say which file holds it and why it is read.
  auto checkTiedHead = [&](std::span<const std::uint64_t> shape, const std::string &buffer) {
    const weights::TensorInfo &t = checkpoint.get(kLmHeadTensor);
    const std::string why = fmt::format(
        "tie_word_embeddings is true, but a stored {} is the LM head transformers uses, so xlc "
        "uses it too",
        kLmHeadTensor);
    if (!weights::isConvertibleFloat(t.dtype))
      problems.push_back(fmt::format("tensor '{}' in {} has dtype {}, expected F32, BF16 or F16 "
                                     "for the LM head '{}' ({})",
                                     kLmHeadTensor, checkpoint.fileOf(t),
                                     weights::dtypeName(t.dtype), buffer, why));
    if (!sameShape(t.shape, shape))
      problems.push_back(fmt::format("tensor '{}' in {} has shape {}, but the LM head '{}' "
                                     "needs [{}], the shape of '{}' ({})",
                                     kLmHeadTensor, checkpoint.fileOf(t), dimsString(t.shape),
                                     buffer, fmt::join(shape, ", "), kEmbeddingTensor, why));
  };
  for (const art::WeightBinding &binding : artifact.weights) {
    const art::Buffer *buffer = artifact.findBuffer(binding.buffer);
    check(buffer != nullptr, "{}: weight binding names missing buffer {}", artifact.label(),
          binding.buffer);
    const std::vector<std::string> sources = bindingSources(artifact, binding, checkpoint);
    for (std::size_t i = 0; i < sources.size(); ++i) {
      if (sources[i] != binding.sources[i])
        checkTiedHead(binding.sourceShapes[i], buffer->name);
      else
        checkTensor(sources[i], binding.sourceShapes[i], buffer->name);
    }
    // One buffer for the lookup and the tied head holds one tensor: a stored lm_head.weight
    // must be that tensor.
    const weights::TensorInfo *head = checkpoint.find(kLmHeadTensor);
    const weights::TensorInfo *embedding = checkpoint.find(kEmbeddingTensor);
    if (head && embedding && isTiedLmHead(artifact, binding) &&
        isEmbeddingTable(artifact, binding.buffer) && !sameValues(checkpoint, *head, *embedding))
      problems.push_back(fmt::format(
          "tensor '{}' in {} differs from '{}', but this artifact reads the tied LM head from "
          "the embedding lookup's own buffer '{}', which cannot hold both (transformers would "
          "use '{}' as the head); compile the model with tie_word_embeddings false to use it",
          kLmHeadTensor, checkpoint.fileOf(*head), kEmbeddingTensor, buffer->name,
          kLmHeadTensor));
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

ConcatLayout concatLayout(const art::Artifact &artifact, const art::WeightBinding &binding) {
  const art::Buffer *buffer = artifact.findBuffer(binding.buffer);
  check(buffer != nullptr, "{}: weight binding names missing buffer {}", artifact.label(),
        binding.buffer);
  ConcatLayout layout;
  layout.dims = bufferDims(*buffer);
  const std::vector<std::uint64_t> &dims = layout.dims;
  const std::uint32_t axis = binding.concatAxis;
  check(axis < dims.size() || dims.empty(), "{}: concat axis {} of {} is out of range",
        artifact.label(), axis, buffer->name);
  std::uint64_t inner = 1;
  for (std::uint32_t i = 0; i < axis; ++i)
    layout.outer *= dims[i];
  for (std::size_t i = axis + 1; i < dims.size(); ++i)
    inner *= dims[i];
  layout.rowOut = dims.empty() ? 1 : dims[axis] * inner;
  std::uint64_t column = 0;
  for (const std::vector<std::uint64_t> &shape : binding.sourceShapes) {
    check(shape.empty() || axis < shape.size(), "{}: a source of {} has rank {}, below axis {}",
          artifact.label(), buffer->name, shape.size(), axis);
    const std::uint64_t run = (shape.empty() ? 1 : shape[axis]) * inner;
    check(column + run <= layout.rowOut, "{}: sources of {} overflow its shape", artifact.label(),
          buffer->name);
    layout.runs.push_back(run);
    layout.columns.push_back(column);
    column += run;
  }
  check(column == layout.rowOut, "{}: sources of {} fill {} of {} elements per row",
        artifact.label(), buffer->name, column, layout.rowOut);
  return layout;
}

std::vector<float> assembleWeight(const art::Artifact &artifact, const art::WeightBinding &binding,
                                  const weights::Checkpoint &checkpoint) {
  const ConcatLayout layout = concatLayout(artifact, binding);
  const std::vector<std::uint64_t> &dims = layout.dims;
  const std::string &name = artifact.buffers[binding.buffer].name;
  std::uint64_t count = 1;
  for (std::uint64_t d : dims)
    count *= d;
  std::vector<float> out(count);
  std::vector<float> source;
  const std::vector<std::string> sources = bindingSources(artifact, binding, checkpoint);
  for (std::size_t s = 0; s < sources.size(); ++s) {
    const std::uint64_t run = layout.runs[s];
    source.resize(layout.outer * run);
    checkpoint.readF32(sources[s], source);
    for (std::uint64_t o = 0; o < layout.outer; ++o)
      std::copy_n(source.data() + o * run, run,
                  out.data() + o * layout.rowOut + layout.columns[s]);
  }

  if (binding.scaleColumnsBy) {
    check(dims.size() == 2, "{}: {} folds a norm weight but is not 2-D", artifact.label(), name);
    std::vector<float> scale = checkpoint.readF32(*binding.scaleColumnsBy);
    check(scale.size() == dims[1], "{}: norm weight '{}' has {} values, {} needs {}",
          artifact.label(), *binding.scaleColumnsBy, scale.size(), name, dims[1]);
    for (std::uint64_t r = 0; r < dims[0]; ++r)
      for (std::uint64_t c = 0; c < dims[1]; ++c)
        out[r * dims[1] + c] = foldProduct(out[r * dims[1] + c], scale[c]);
  }
  return out;
}

std::vector<std::uint8_t> assembleWeightBytes(const art::Artifact &artifact,
                                              const art::WeightBinding &binding,
                                              const weights::Checkpoint &checkpoint) {
  const art::Buffer &buffer = artifact.buffers.at(binding.buffer);
  check(buffer.dtype == art::DType::F32 || buffer.dtype == art::DType::BF16,
        "{}: weights of dtype {} are not supported by the CUDA backend", buffer.name,
        art::dtypeName(buffer.dtype));
  const std::vector<float> values = assembleWeight(artifact, binding, checkpoint);
  const std::size_t size = art::dtypeSize(buffer.dtype);
  std::vector<std::uint8_t> bytes(values.size() * size);
  const std::span<const std::uint8_t> valueBytes(
      reinterpret_cast<const std::uint8_t *>(values.data()), values.size() * 4);
  if (buffer.dtype == art::DType::F32)
    std::memcpy(bytes.data(), values.data(), bytes.size());
  else
    weights::convertToBF16(
        weights::DType::F32, valueBytes,
        {reinterpret_cast<std::uint16_t *>(bytes.data()), values.size()}, buffer.name);
  if (binding.scaleColumnsBy)
    return bytes;
  // Sources stored in the buffer's type keep their bits (the round trip through fp32 would quiet
  // a signalling NaN).
  const weights::DType stored = buffer.dtype == art::DType::F32 ? weights::DType::F32
                                                                : weights::DType::BF16;
  const ConcatLayout layout = concatLayout(artifact, binding);
  const std::vector<std::string> sources = bindingSources(artifact, binding, checkpoint);
  for (std::size_t s = 0; s < sources.size(); ++s) {
    const weights::TensorInfo &t = checkpoint.get(sources[s]);
    if (t.dtype != stored)
      continue;
    const std::span<const std::uint8_t> raw = checkpoint.rawData(t);
    const std::uint64_t run = layout.runs[s] * size;
    check(raw.size() == layout.outer * run, "{}: tensor '{}' has {} bytes, {} expects {}",
          artifact.label(), t.name, raw.size(), buffer.name, layout.outer * run);
    for (std::uint64_t o = 0; o < layout.outer; ++o)
      std::memcpy(bytes.data() + (o * layout.rowOut + layout.columns[s]) * size,
                  raw.data() + o * run, run);
  }
  return bytes;
}

std::uint64_t weightBytes(const art::Artifact &artifact) {
  std::uint64_t total = 0;
  for (const art::Buffer &b : artifact.buffers)
    if (b.cls == art::BufferClass::Weight)
      total += art::byteSize(b).evaluate(1, 1, b.name);
  return total;
}

} // namespace xlc::exec
