//===- CublasLt.h - GEMMs with epilogues through cuBLASLt --------*- C++ -*-===//
//
// The artifact's GEMM steps compute, on row-major buffers,
//
//   D[m, n] = op(A) · op(B)  (+ bias[n] | + C[m, n] | + D[m, n] when accumulating)
//
// with op(B) = Wᵀ for a weight W in the checkpoint's [out, in] layout (the forward form, transB)
// and the other forms for the backward (dX = dY·W: B stored [k, n]; dW += dYᵀ·X: A stored
// [k, m], accumulate). cuBLASLt is column-major, and a row-major [r, c] matrix is the
// column-major [c, r] matrix, so we ask it for Dᵀ = op(B)ᵀ · op(A)ᵀ: its "A" operand is B's
// buffer (column-major [k, n] with op T, ld k, when transB; [n, k] with op N, ld n otherwise),
// its "B" operand is A's buffer (column-major [k, m], op N, ld k -- or the row stride lda when
// A's rows are read in place from a larger buffer; or [m, k], op T, ld m when transA), and D
// (and the residual C) are column-major [n, m] (ld n).
// The bias of the BIAS epilogue runs along the rows of that Dᵀ, i.e. over n, as the artifact's
// bias does. Accumulation and scaling are fp32 (CUBLAS_COMPUTE_32F).
//
// libcublasLt.so.13 is loaded with dlopen like the driver, so binaries start without it. The
// algorithm of each distinct GEMM (sizes, dtypes, epilogue) is chosen by cuBLASLt's heuristic and
// kept with its descriptors in a plan cache; every call uses one preallocated workspace, so GEMMs
// can be captured in CUDA graphs.
//
// The plan cache is bounded: M is the number of tokens in a call, so every new prompt length (or
// batch of lengths) brings a handful of new shapes, and a long-running process fed varied prompts
// would otherwise grow it without end. It keeps the kMaxPlans (256) most recently used plans
// (LruCache below): a model's few GEMM shapes per token count leave room for dozens of distinct
// token counts before a plan is evicted, and an evicted plan only costs another heuristic query
// (microseconds) when its shape comes back. Evicting does not disturb captured graphs: cuBLASLt
// reads the descriptors during the call that enqueues (or is captured into) the work, not when a
// graph replays it (PyTorch creates and destroys its descriptors around every call, captured or
// not); the workspace, which kernels do use at replay, is never evicted.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_CUBLASLT_H
#define XLC_RUNTIME_EXEC_CUDA_CUBLASLT_H

#include "runtime/artifact/Artifact.h"
#include "runtime/cuda/Device.h"
#include "runtime/cuda/DynamicLibrary.h"

#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

namespace xlc::exec {

struct CublasLtApi {
#define XLC_CUBLASLT_SYMBOL(name) decltype(&::name) name = nullptr;
#include "runtime/exec/cuda/CublasLtSymbols.inc"
#undef XLC_CUBLASLT_SYMBOL
};

/// One GEMM's shape and types (everything that selects an algorithm).
struct GemmShape {
  std::uint64_t m = 0, n = 0, k = 0;
  artifact::DType ab = artifact::DType::BF16;   ///< A and W
  artifact::DType d = artifact::DType::BF16;    ///< D (and the residual C)
  artifact::DType bias = artifact::DType::BF16; ///< the bias vector (Bias epilogue only)
  artifact::Epilogue epilogue = artifact::Epilogue::None;
  bool transA = false;     ///< A stored [k, m] (row-major) instead of [m, k]
  bool transB = true;      ///< B stored [n, k] (the forward form, a weight) instead of [k, n]
  bool accumulate = false; ///< D += op(A)·op(B)
  /// A's row stride in elements when it is not the dense k (rows read in place from a larger
  /// buffer: the last position of each sequence, stride S·k); 0 = dense. Not with transA.
  std::uint64_t lda = 0;
  /// The alignment in bytes A's pointer is guaranteed to have when it is less than the 256 the
  /// heuristic otherwise assumes (a row inside a buffer); 0 = 256.
  std::uint32_t aAlignment = 0;
  auto key() const {
    return std::tie(m, n, k, ab, d, bias, epilogue, transA, transB, accumulate, lda, aAlignment);
  }
  friend bool operator<(const GemmShape &x, const GemmShape &y) { return x.key() < y.key(); }
};

/// A map of at most capacity() entries that evicts the least recently used one (looked up or
/// inserted longest ago) to make room. A pointer or reference to a value stays valid until that
/// entry is evicted or the cache is cleared. Not thread-safe.
template <typename Key, typename Value, typename Less = std::less<Key>>
class LruCache {
public:
  explicit LruCache(std::size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  /// The value stored under |key|, now the most recently used; nullptr when absent.
  Value *find(const Key &key) {
    auto it = index_.find(key);
    if (it == index_.end())
      return nullptr;
    entries_.splice(entries_.begin(), entries_, it->second);
    return &it->second->second;
  }

  /// Stores |value| under |key| (replacing what was there) as the most recently used entry,
  /// first evicting the least recently used one if the cache is full.
  Value &insert(const Key &key, Value value) {
    if (auto it = index_.find(key); it != index_.end()) {
      it->second->second = std::move(value);
      entries_.splice(entries_.begin(), entries_, it->second);
      return it->second->second;
    }
    if (entries_.size() >= capacity_) {
      index_.erase(entries_.back().first);
      entries_.pop_back();
      ++evictions_;
    }
    entries_.emplace_front(key, std::move(value));
    index_.emplace(key, entries_.begin());
    return entries_.front().second;
  }

  bool contains(const Key &key) const { return index_.count(key) != 0; }
  std::size_t size() const { return entries_.size(); }
  std::size_t capacity() const { return capacity_; }
  std::size_t evictions() const { return evictions_; }
  void clear() {
    index_.clear();
    entries_.clear();
  }

private:
  using Entries = std::list<std::pair<Key, Value>>; ///< most recently used first
  std::size_t capacity_;
  std::size_t evictions_ = 0;
  Entries entries_;
  std::map<Key, typename Entries::iterator, Less> index_;
};

class CublasLt {
public:
  /// The most GEMM plans kept at once (see the file comment).
  static constexpr std::size_t kMaxPlans = 256;

  /// Loads libcublasLt (tried as $XLC_CUBLASLT_LIBRARY, libcublasLt.so.13, libcublasLt.so, then
  /// in the toolkit's library directory) and creates a handle. Needs a current CUDA context.
  /// |workspaceBytes| of device memory are allocated for the algorithms' scratch space.
  explicit CublasLt(std::size_t workspaceBytes = 32u << 20);
  ~CublasLt();
  CublasLt(const CublasLt &) = delete;
  CublasLt &operator=(const CublasLt &) = delete;

  /// "cuBLASLt 130100 (libcublasLt.so.13)".
  std::string description() const;
  /// cublasLtGetVersion(), e.g. 130100.
  std::size_t version() const;

  /// D = op(A)·op(W) (+ epilogue, or + D when accumulating) on |stream|. |c| is the residual
  /// (ResidualAdd) or the bias (Bias), ignored otherwise. Throws xlc::Error naming |what| when cuBLASLt has no algorithm for the
  /// shape or the call fails.
  void gemm(const GemmShape &shape, CUdeviceptr a, CUdeviceptr w, CUdeviceptr c, CUdeviceptr d,
            CUstream stream, const std::string &what);

private:
  struct Plan;
  Plan &plan(const GemmShape &shape, const std::string &what);
  void checkStatus(cublasStatus_t status, const char *call, const std::string &what) const;

  cuda::DynamicLibrary library_;
  CublasLtApi api_;
  cublasLtHandle_t handle_ = nullptr;
  cuda::DeviceBuffer workspace_;
  /// At most kMaxPlans; constructed in CublasLt.cpp, where Plan is a complete type.
  LruCache<GemmShape, std::unique_ptr<Plan>> plans_;
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_CUBLASLT_H
