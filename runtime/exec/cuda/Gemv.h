//===- Gemv.h - The decode GEMMs on xlc's own split-K GEMV kernel -*- C++ -*-===//
//
// At decode every projection is a GEMM with m = the batch (1..8) rows: D = A·Wᵀ (+ bias | + C)
// with W a bf16 weight [n, k]. Its time is the time to read W, and cuBLASLt reads it at only
// 58-84 % of the H100's bandwidth (../shared/reference/kernel-anchors.md §3.1). The GEMV kernel
// of the device library (runtime/device/gemv.cuh: tensor-core products on operands loaded
// straight from global memory, split-K with a deterministic reduction) does better on most
// shapes, but not necessarily on all, so each shape is decided by measurement:
//
//  * The first time a GEMM shape (m, n, k, element types, epilogue) is met, every GEMV
//    candidate (a tiling of gemvTilings() × a split-K factor) and cuBLASLt are timed on it with
//    CUDA events -- one warm-up, then kReps launches each preceded by a write of twice the L2
//    size (the weight comes from HBM, as in a decode step, where the other layers' weights
//    have evicted it), the median -- on scratch A, C and D and the real weight W (only read).
//    The faster one runs that shape from then on; --verbose prints each decision.
//  * Decisions are kept per process and device kind, shared by every backend (two backends of a
//    process choose alike and give the same bits; timing noise cannot make them disagree).
//  * A CUDA graph capture cannot time anything, so the backend decides every GEMM of a call
//    before it enqueues the call (CudaBackend.cpp: a dry run of the plan's GEMM steps); a shape
//    met undecided during a capture falls back to cuBLASLt (and says so with --verbose).
//  * XLC_GEMV=off|on|auto (CudaBackendOptions::gemv): off never uses the GEMV kernel; on uses it
//    for every GEMM it can compute (the fastest candidate, cuBLASLt is not timed); auto (the
//    default) lets the measurement choose.
//
// What the GEMV kernel computes (unsupportedReason says which condition fails): A·Wᵀ with A and
// W bf16, not transposed A, not accumulating, m ≤ 8, k a multiple of 8, A (every row: lda a
// multiple of 8) and W 16-byte aligned, D bf16 or fp32, epilogue none, bias (bf16 or fp32) or
// residual (D's type). Anything else goes to cuBLASLt.
//
// The kernels are not part of the artifact: the runtime compiles two translation units (bf16 and
// fp32 outputs, one entry point per tiling) through the kernel cache, next to the artifact's.
// Split-K launches share one partials buffer (kMaxPartials floats) and one counter array
// (kMaxCounters, zero between launches) per backend: a backend runs on one stream, so launches
// never overlap, inside a graph or not.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_GEMV_H
#define XLC_RUNTIME_EXEC_CUDA_GEMV_H

#include "runtime/artifact/Artifact.h"
#include "runtime/cuda/Device.h"
#include "runtime/exec/cuda/CublasLt.h"
#include "runtime/exec/cuda/KernelCache.h"

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace xlc::exec {

/// The host's copy of gemv.cuh's GemvParams (the runtime never includes device headers); the
/// emulator tests check that sizes and offsets agree.
namespace gemv_abi {
enum class Epilogue : std::int64_t { None = 0, Bias = 1, Residual = 2 };
enum class Prologue : std::int64_t { None = 0, RmsNorm = 1, SwiGlu = 2 };
struct Params {
  std::uint64_t a;
  std::int64_t lda;
  std::uint64_t w, c, d;
  std::int64_t m, n, k, kSplit, epilogue, cIsF32;
  std::uint64_t partials, counters;
  std::int64_t prologue, aUpOffset;
  double eps;
  std::int64_t gridX1;
  std::uint64_t w2, c2, d2;
  std::int64_t n2, epilogue2, c2IsF32, d2IsF32;
};
} // namespace gemv_abi

/// A second GEMM over the same A that rides in the first one's launch (gemv.cuh "Two GEMMs in one
/// launch"): same m, k and A type; its own W, epilogue, C and D.
struct GemvSecond {
  GemmShape shape;
  CUdeviceptr w = 0, c = 0, d = 0;
};

/// How the GEMV forms A from the a operand (gemv.cuh "Prologues"): the row kernel that the
/// artifact's gemm prologue would run, folded into the GEMV.
struct GemvPrologue {
  gemv_abi::Prologue kind = gemv_abi::Prologue::None;
  std::int64_t upOffset = 0; ///< SwiGlu: elements from a row's gate values to its up values
  double eps = 0;            ///< RmsNorm
};

/// One instantiation of gemv.cuh's GemvConfig<TOut, kRowTiles, kWarps, kUnroll>: the family's
/// tuning space besides the split-K factor.
struct GemvTiling {
  int rowTiles = 1; ///< 16-output tensor-core tiles per block
  int warps = 4;    ///< warps per block, sharing its κ slice
  int unroll = 4;   ///< 32-wide κ steps whose loads a warp has in flight
  int stages = 1;   ///< 2: a warp loads its next group before multiplying the current one
  int rows() const { return 16 * rowTiles; }
  int threads() const { return 32 * warps; }
  int sharedBytes() const { return warps * (rows() + 1) * 8 * 4; }
  /// "rows 32, warps 4, unroll 4" (+ ", 2 stages").
  std::string describe() const;
};

/// The tilings the runtime compiles, in entry-point order.
const std::vector<GemvTiling> &gemvTilings();

/// Bytes a GEMM of |shape| must move at least: W, A, D and the bias or residual.
double gemmBytes(const GemmShape &shape);

/// The device's peak memory bandwidth from its memory clock and bus width (double data rate),
/// bytes per second; 0 when the driver does not say.
double peakBytesPerSecond(const cuda::CudaDevice &device);

/// One GEMV launch: a tiling and the split of k over grid.y.
struct GemvPlan {
  std::size_t tiling = 0;
  std::uint64_t kSplit = 0; ///< κ per grid.y slice (a multiple of 32)
  std::uint32_t gridX = 0, gridY = 0;
  /// "rows 32, warps 4, unroll 4, split 2 (k 2048 per block), grid 384x2".
  std::string describe() const;
};

class Gemv {
public:
  enum class Mode { Off, On, Auto };
  /// "off", "on" or "auto"; anything else throws an error naming |what| and the value.
  static Mode parseMode(std::string_view text, std::string_view what);
  static std::string_view modeName(Mode mode);
  /// $XLC_GEMV, auto when unset or empty.
  static Mode modeFromEnvironment();

  static constexpr std::uint64_t kMaxM = 8;              ///< the kernel's mma n8
  static constexpr std::uint64_t kMaxPartials = 1 << 20; ///< fp32 split-K partials (4 MiB)
  static constexpr std::uint64_t kMaxCounters = 1 << 14; ///< split-K grid columns
  static constexpr int kReps = 7;                        ///< timed launches per candidate

  /// Why the GEMV kernel cannot compute |shape| with A at |a| and W at |w| (device addresses);
  /// empty when it can.
  static std::string unsupportedReason(const GemmShape &shape, CUdeviceptr a, CUdeviceptr w);

  /// The config type of |tiling| for outputs of |out|: "xlc::device::GemvConfig<float, 1, 4, 4>".
  static std::string configText(artifact::DType out, const GemvTiling &tiling);
  /// The entry point of tiling |index|: "xlc_gemv_<index>".
  static std::string entryName(std::size_t index);
  /// The translation unit for outputs of |out| (bf16 or f32): every tiling's entry point.
  static artifact::Kernel kernel(artifact::DType out);
  using Cubins = std::map<artifact::DType, CompiledCubin>;
  /// Compiles (or loads from |cache|) both translation units for |arch|.
  static Cubins compile(const KernelCache &cache, const std::string &arch);

  /// Every launch the tuner tries for |shape| (assumed supported): each tiling with split 1,
  /// and with the splits that give about one, two and four blocks per SM of |smCount| (within
  /// kMaxPartials and kMaxCounters).
  static std::vector<GemvPlan> candidates(const GemmShape &shape, int smCount);

  /// Loads |cubins| and allocates the split-K workspace (counters zeroed). |mode| Off makes
  /// run() and prepare() no-ops.
  Gemv(const Cubins &cubins, const cuda::CudaDevice &device, Mode mode, bool verbose);
  /// Launch every tiling with programmatic stream serialization (cuda::Kernel).
  void setProgrammaticLaunch(bool on);
  Gemv(const Gemv &) = delete;
  Gemv &operator=(const Gemv &) = delete;

  Mode mode() const { return mode_; }

  /// Enqueues |plan| for |shape| on |stream| (capturable). |c|: bias or residual, 0 for none.
  /// With a |prologue|, |a| is the prologue's input (the gate values' view for SwiGlu).
  void launch(const GemvPlan &plan, const GemmShape &shape, CUdeviceptr a, CUdeviceptr w,
              CUdeviceptr c, CUdeviceptr d, CUstream stream, const GemvPrologue &prologue = {},
              const GemvSecond *second = nullptr) const;

  /// Decides |shape| (measuring on |stream|, which must not be capturing, with cuBLASLt |blas|
  /// as the competitor) unless it is decided or the GEMV kernel cannot compute it. |what| names
  /// the GEMM in messages.
  void prepare(const GemmShape &shape, CUdeviceptr a, CUdeviceptr w, CublasLt &blas,
               CUstream stream, const std::string &what);

  /// Runs the GEMM on the GEMV kernel when that is the decision for |shape| (deciding it first
  /// if needed and |stream| is not capturing); returns false when the caller should use
  /// cuBLASLt. With a |prologue| (which the decision does not depend on: it adds no weight
  /// bytes), |a| is the prologue's input and the GEMV forms A itself.
  bool run(const GemmShape &shape, CUdeviceptr a, CUdeviceptr w, CUdeviceptr c, CUdeviceptr d,
           CUstream stream, CublasLt &blas, const std::string &what,
           const GemvPrologue &prologue = {});

  /// Whether |second| can ride in the launch of |first| (both decided for the GEMV kernel, the
  /// same m, k and A type, within the split-K workspace); W2 at |w2|.
  bool canPair(const GemmShape &first, const GemmShape &second, CUdeviceptr w2) const;
  /// Runs |first| and |second| (canPair) in one launch with |first|'s plan.
  void runPair(const GemmShape &first, CUdeviceptr a, CUdeviceptr w, CUdeviceptr c,
               CUdeviceptr d, const GemvSecond &second, CUstream stream,
               const GemvPrologue &prologue = {});

  /// What was measured for one shape.
  struct Decision {
    bool useGemv = false;
    GemvPlan plan;
    double gemvUs = std::numeric_limits<double>::quiet_NaN();
    double cublasUs = std::numeric_limits<double>::quiet_NaN(); ///< NaN in mode on
  };
  /// The decision for |shape| in this backend's mode, or nullptr when there is none yet.
  const Decision *decision(const GemmShape &shape) const;

private:
  /// The key of a decision: the shape without A's stride and alignment.
  using Key = std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, artifact::DType,
                         artifact::DType, artifact::DType, artifact::Epilogue>;
  static Key keyOf(const GemmShape &shape);
  Decision measure(const GemmShape &shape, CUdeviceptr w, CublasLt &blas, CUstream stream,
                   const std::string &what);

  struct Compiled {
    cuda::Module module;
    std::vector<cuda::Kernel> entries; ///< by tiling
  };
  std::map<artifact::DType, Compiled> kernels_;
  Mode mode_;
  bool verbose_;
  std::string deviceKey_; ///< name and SM count: decisions are shared between equal devices
  int smCount_ = 0, l2Bytes_ = 0;
  double peakBytesPerSecond_ = 0; ///< from the memory clock and bus width (0 if unknown)
  cuda::DeviceBuffer partials_, counters_;
  std::map<Key, Decision> decided_; ///< this backend's view of the process-wide table
  bool warnedCapture_ = false;
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_GEMV_H
