//===- WeightPieces.h - A checkpoint's stored bytes, cut for a raw upload -*- C++ -*-===//
//
// The raw-bytes weight upload (runtime/exec/cuda/WeightUpload.h, docs/weight-loading.md) moves
// each source tensor's bytes as stored in the checkpoint (usually bf16) to the GPU and does the
// assembly there, instead of computing every buffer in fp32 on the host (WeightAssembly.h). This
// file is its backend-independent half: which byte ranges of which tensors go where, and how to
// read them.
//
// A binding fills a row-major buffer with its sources concatenated along concatAxis: with
// outer = Π dims[0:axis], inner = Π dims[axis+1:] and rowOut = dims[axis]·inner, source element
// j lands at ⌊j / run⌋·rowOut + column + (j mod run), where run = (the source's extent along the
// axis)·inner and column = the runs of the sources before it. Each source tensor is cut into
// pieces of at most pieceBytes (whole elements). A piece is
//   - a copy when the bytes are already the buffer's: same element type, no fold, and one run
//     (outer = 1, as for every concatenation along axis 0): they go to their place unchanged;
//   - a transform otherwise (another element type, a folded norm weight, or several runs): the
//     bytes go to scratch and runtime/device/weight_transform.cuh writes the buffer's elements
//     (WeightTransform holds that kernel's map for the piece).
// Folded norm weights are read once, widened to fp32 (exact), into WeightUploadPlan::scales.
// A binding the raw path does not cover (a buffer type other than f32/bf16, a fold of a non-2-D
// buffer, sources whose type or size do not fit — all of which the host path refuses with its
// own message) is listed with the reason, for the host path.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_WEIGHTPIECES_H
#define XLC_RUNTIME_EXEC_WEIGHTPIECES_H

#include "runtime/artifact/Artifact.h"
#include "runtime/weights/DType.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace xlc::weights {
class Checkpoint;
struct TensorInfo;
} // namespace xlc::weights

namespace xlc::exec {

/// The element map of a transform piece (weight_transform.cuh's WeightTransformParams, minus
/// the pointers): elements [first, first + count) of the source go to the buffer as above.
struct WeightTransform {
  weights::DType source = weights::DType::F32; ///< F32, BF16 or F16
  artifact::DType target = artifact::DType::BF16; ///< F32 or BF16
  std::uint64_t first = 0, count = 0;
  std::uint64_t run = 0, rowOut = 0, column = 0;
  std::uint64_t columns = 0;               ///< the buffer's last dimension, when folding
  std::optional<std::uint64_t> scaleOffset; ///< the fold's factors in WeightUploadPlan::scales
};

struct WeightPiece {
  std::size_t binding = 0; ///< index into artifact.weights
  std::size_t tensor = 0;  ///< index into WeightUploadPlan::tensors
  const weights::TensorInfo *source = nullptr;
  std::uint64_t byteBegin = 0, bytes = 0; ///< of the source's stored bytes; whole elements
  bool transform = false;
  std::uint64_t dstByteOffset = 0; ///< a copy: where the bytes go in the buffer
  WeightTransform map;             ///< a transform
};

struct WeightUploadPlan {
  /// Copies first, then transforms (a GPU can copy while the transform kernel is compiled),
  /// each in binding and source order.
  std::vector<WeightPiece> pieces;
  /// Every source tensor read (one entry per binding source), with its number of pieces.
  struct Tensor {
    const weights::TensorInfo *info = nullptr;
    std::size_t pieces = 0;
  };
  std::vector<Tensor> tensors;
  /// The folded norm weights in fp32, concatenated (WeightTransform::scaleOffset).
  std::vector<float> scales;
  /// Bindings left to the host path, and why.
  struct HostBinding {
    std::size_t binding = 0;
    std::string reason;
  };
  std::vector<HostBinding> host;
  std::uint64_t copyBytes = 0, transformBytes = 0; ///< stored bytes read by each kind
  std::uint64_t largestPiece = 0;     ///< bytes of the largest piece
  std::uint64_t largestTransform = 0; ///< bytes of the largest transform piece
};

/// One past the last byte of the buffer that |piece| writes (a piece of at least one element).
std::uint64_t pieceEnd(const WeightPiece &piece);

/// Cuts every binding of |artifact| (checked against |checkpoint| by checkWeights) into pieces
/// of at most |pieceBytes| (> 0, a multiple of 4) stored bytes.
///
/// |skip| (empty, or one flag per binding): bindings the plan leaves out (their buffers are not
/// allocated: no function of the backend reads them).
WeightUploadPlan planWeightUpload(const artifact::Artifact &artifact,
                                  const weights::Checkpoint &checkpoint, std::uint64_t pieceBytes,
                                  const std::vector<bool> &skip = {});

/// Reads pieces of a checkpoint's tensors with pread(2) from the files the checkpoint mapped
/// (the same page cache, without faulting the mapping in page by page); any number of threads
/// may read at once. Move-only; closes the files.
class CheckpointReader {
public:
  explicit CheckpointReader(const weights::Checkpoint &checkpoint);
  CheckpointReader(CheckpointReader &&other) noexcept;
  CheckpointReader &operator=(CheckpointReader &&) = delete;
  CheckpointReader(const CheckpointReader &) = delete;
  ~CheckpointReader();

  /// Reads bytes [byteBegin, byteBegin + bytes) of |tensor|'s stored data into |out|. Throws
  /// xlc::Error naming the tensor, the file and the OS error (or a file that ended early).
  void read(const weights::TensorInfo &tensor, std::uint64_t byteBegin, std::uint64_t bytes,
            void *out) const;

private:
  const weights::Checkpoint *checkpoint_;
  std::vector<int> fds_;
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_WEIGHTPIECES_H
