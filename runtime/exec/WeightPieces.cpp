//===- WeightPieces.cpp - A checkpoint's stored bytes, cut for a raw upload -===//

#include "runtime/exec/WeightPieces.h"

#include "runtime/exec/WeightAssembly.h"
#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace xlc::exec {
namespace art = xlc::artifact;

namespace {

/// The weights dtype whose elements are the buffer's (f32 and bf16 buffers only).
std::optional<weights::DType> storedAs(art::DType dtype) {
  if (dtype == art::DType::F32)
    return weights::DType::F32;
  if (dtype == art::DType::BF16)
    return weights::DType::BF16;
  return std::nullopt;
}

/// Why the raw path cannot fill |binding| (empty: it can). Each of these is an error of the host
/// path too, which reports it in its own words.
std::string unsupportedReason(const art::WeightBinding &binding, const art::Buffer &buffer,
                              const weights::Checkpoint &checkpoint,
                              const std::vector<std::string> &sources) {
  if (!storedAs(buffer.dtype))
    return fmt::format("the buffer's dtype is {}; the raw path writes f32 and bf16",
                       art::dtypeName(buffer.dtype));
  const std::size_t rank = buffer.shape.size();
  if (binding.scaleColumnsBy && rank != 2)
    return fmt::format("it folds a norm weight into a {}-D buffer", rank);
  if (rank > 0 && binding.concatAxis >= rank)
    return fmt::format("concat axis {} is out of range for rank {}", binding.concatAxis, rank);
  if (sources.size() != binding.sourceShapes.size())
    return fmt::format("{} sources but {} source shapes", sources.size(),
                       binding.sourceShapes.size());
  for (std::size_t s = 0; s < sources.size(); ++s) {
    const weights::TensorInfo *t = checkpoint.find(sources[s]);
    if (!t)
      return fmt::format("tensor '{}' is missing", sources[s]);
    if (!weights::isConvertibleFloat(t->dtype))
      return fmt::format("tensor '{}' has dtype {}", t->name, weights::dtypeName(t->dtype));
    std::uint64_t expected = 1;
    for (std::uint64_t d : binding.sourceShapes[s])
      expected *= d;
    if (t->numElements != expected || binding.sourceShapes[s].size() != rank)
      return fmt::format("tensor '{}' has shape {}, the binding expects another", t->name,
                         weights::shapeString(t->shape));
  }
  if (binding.scaleColumnsBy) {
    const weights::TensorInfo *t = checkpoint.find(*binding.scaleColumnsBy);
    if (!t || !weights::isConvertibleFloat(t->dtype) ||
        t->numElements != buffer.shape[1].value)
      return fmt::format("the folded norm weight '{}' is missing or not a vector of {} floats",
                         *binding.scaleColumnsBy, buffer.shape[1].value);
  }
  return {};
}

} // namespace

std::uint64_t pieceEnd(const WeightPiece &piece) {
  if (!piece.transform)
    return piece.dstByteOffset + piece.bytes;
  const WeightTransform &m = piece.map;
  const std::uint64_t j = m.first + m.count - 1; // elements of a run are contiguous and ordered
  return (j / m.run * m.rowOut + m.column + j % m.run + 1) * art::dtypeSize(m.target);
}

WeightUploadPlan planWeightUpload(const art::Artifact &artifact,
                                  const weights::Checkpoint &checkpoint,
                                  std::uint64_t pieceBytes, const std::vector<bool> &skip) {
  check(pieceBytes > 0 && pieceBytes % 4 == 0,
        "weight pieces of {} bytes: the size must be a positive multiple of 4", pieceBytes);
  WeightUploadPlan plan;
  std::vector<WeightPiece> transforms;
  for (std::size_t b = 0; b < artifact.weights.size(); ++b) {
    if (b < skip.size() && skip[b])
      continue;
    const art::WeightBinding &binding = artifact.weights[b];
    const art::Buffer *buffer = artifact.findBuffer(binding.buffer);
    check(buffer != nullptr, "{}: weight binding names missing buffer {}", artifact.label(),
          binding.buffer);
    const std::vector<std::string> sources = bindingSources(artifact, binding, checkpoint);
    if (std::string reason = unsupportedReason(binding, *buffer, checkpoint, sources);
        !reason.empty()) {
      plan.host.push_back({b, fmt::format("'{}': {}", buffer->name, reason)});
      continue;
    }
    const ConcatLayout layout = concatLayout(artifact, binding);
    const weights::DType target = *storedAs(buffer->dtype);
    const std::uint64_t targetSize = weights::dtypeSize(target);

    std::optional<std::uint64_t> scaleOffset;
    if (binding.scaleColumnsBy) {
      scaleOffset = plan.scales.size();
      const std::vector<float> scale = checkpoint.readF32(*binding.scaleColumnsBy);
      plan.scales.insert(plan.scales.end(), scale.begin(), scale.end());
    }

    for (std::size_t s = 0; s < sources.size(); ++s) {
      const weights::TensorInfo &t = checkpoint.get(sources[s]);
      const std::uint64_t run = layout.runs[s], column = layout.columns[s];
      const std::uint64_t size = weights::dtypeSize(t.dtype);
      const bool copy = !scaleOffset && t.dtype == target && layout.outer == 1;
      const std::size_t tensor = plan.tensors.size();
      plan.tensors.push_back({&t, 0});
      for (std::uint64_t begin = 0; begin < t.byteSize; begin += pieceBytes) {
        WeightPiece piece;
        piece.binding = b;
        piece.tensor = tensor;
        piece.source = &t;
        piece.byteBegin = begin;
        piece.bytes = std::min(pieceBytes, t.byteSize - begin);
        const std::uint64_t first = begin / size;
        plan.largestPiece = std::max(plan.largestPiece, piece.bytes);
        if (copy) {
          piece.dstByteOffset = (column + first) * targetSize;
          plan.copyBytes += piece.bytes;
          plan.pieces.push_back(piece);
        } else {
          piece.transform = true;
          piece.map = {t.dtype,
                       buffer->dtype,
                       first,
                       piece.bytes / size,
                       run,
                       layout.rowOut,
                       column,
                       scaleOffset ? layout.dims[1] : 0,
                       scaleOffset};
          plan.transformBytes += piece.bytes;
          plan.largestTransform = std::max(plan.largestTransform, piece.bytes);
          transforms.push_back(piece);
        }
        ++plan.tensors[tensor].pieces;
      }
    }
  }
  plan.pieces.insert(plan.pieces.end(), transforms.begin(), transforms.end());
  return plan;
}

CheckpointReader::CheckpointReader(const weights::Checkpoint &checkpoint)
    : checkpoint_(&checkpoint) {
  for (const weights::SafetensorsFile &file : checkpoint.files()) {
    const int fd = ::open(file.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      for (int open : fds_)
        ::close(open);
      fail("cannot open '{}' to read its tensors: {}", file.path(), std::strerror(err));
    }
    fds_.push_back(fd);
  }
}

CheckpointReader::CheckpointReader(CheckpointReader &&other) noexcept
    : checkpoint_(other.checkpoint_), fds_(std::exchange(other.fds_, {})) {}

CheckpointReader::~CheckpointReader() {
  for (int fd : fds_)
    ::close(fd);
}

void CheckpointReader::read(const weights::TensorInfo &tensor, std::uint64_t byteBegin,
                            std::uint64_t bytes, void *out) const {
  const std::string &path = checkpoint_->fileOf(tensor); // checks the file index
  check(byteBegin <= tensor.byteSize && bytes <= tensor.byteSize - byteBegin,
        "'{}': bytes [{}, {}) of tensor '{}' lie outside its {} bytes", path, byteBegin,
        byteBegin + bytes, tensor.name, tensor.byteSize);
  const weights::SafetensorsHeader &header = checkpoint_->files()[tensor.file].header();
  check(tensor.end <= header.dataSize, "'{}': tensor '{}' lies outside the data buffer", path,
        tensor.name);
  std::uint64_t offset = header.dataOffset + tensor.begin + byteBegin;
  auto *dst = static_cast<unsigned char *>(out);
  while (bytes > 0) {
    const ssize_t got = ::pread(fds_[tensor.file], dst, bytes, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      fail("reading tensor '{}' from '{}' (byte {} of the file): {}", tensor.name, path, offset,
           std::strerror(errno));
    if (got == 0)
      fail("reading tensor '{}' from '{}': the file ends at byte {}, before the tensor does "
           "(was it changed after it was opened?)",
           tensor.name, path, offset);
    dst += got;
    offset += static_cast<std::uint64_t>(got);
    bytes -= static_cast<std::uint64_t>(got);
  }
}

} // namespace xlc::exec
