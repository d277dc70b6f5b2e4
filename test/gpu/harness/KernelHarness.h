//===- KernelHarness.h - Run device-library kernels on a backend --*- C++ -*-===//
//
// The kernel tests are written once (KernelCases.h) against a backend that allocates memory,
// copies it and launches one kernel variant:
//   EmuBackend  runs the device function on the CPU through the SIMT emulator (CI, no GPU);
//   GpuBackend  (GpuBackend.h) emits the same translation unit the compiler emits, compiles it
//               with NVRTC against the embedded headers, and launches it with the driver.
// A kernel variant is a config type plus its spelling (XLC_VARIANT), so the emulator can
// instantiate it and NVRTC can compile it from the very same text.
//
// Both backends compile the device headers as host code (XLC_DEVICE_EMULATION) to get the
// Params structs and Config constants: the host packs exactly the struct the kernel receives.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_GPU_HARNESS_KERNELHARNESS_H
#define XLC_TEST_GPU_HARNESS_KERNELHARNESS_H

#include "KernelSource.h"

#include "xlc/device/adamw.cuh"
#include "xlc/device/column_sum.cuh"
#include "xlc/device/convert.cuh"
#include "xlc/device/cross_entropy.cuh"
#include "xlc/device/embedding.cuh"
#include "xlc/device/grad_norm.cuh"
#include "xlc/device/embedding_backward.cuh"
#include "xlc/device/mlstm_chunk_fused.cuh"
#include "xlc/device/mlstm_chunk_scores.cuh"
#include "xlc/device/mlstm_chunk_backward.cuh"
#include "xlc/device/mlstm_chunkwise.cuh"
#include "xlc/device/mlstm_decode_step.cuh"
#include "xlc/device/norm_gate.cuh"
#include "xlc/device/norm_gate_backward.cuh"
#include "xlc/device/rms_norm.cuh"
#include "xlc/device/rms_norm_backward.cuh"
#include "xlc/device/soft_cap.cuh"
#include "xlc/device/swiglu.cuh"
#include "xlc/device/swiglu_backward.cuh"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

/// Declares a kernel variant: struct Name { using Config = ...; kConfig = "<the same text>"; }.
/// Spell the config fully qualified (it is pasted into an NVRTC translation unit).
#define XLC_VARIANT(Name, ...)                                                                 \
  struct Name {                                                                                \
    using Config = __VA_ARGS__;                                                                \
    static constexpr const char *kConfig = #__VA_ARGS__;                                       \
  }

namespace xlc::test {

struct LaunchDims {
  unsigned grid[3] = {1, 1, 1};
  unsigned block = 32;
  unsigned sharedBytes = 0;
};

//===--------------------------------------------------------------------===//
// Host arrays of the device dtypes
//===--------------------------------------------------------------------===//

enum class DType { F32, BF16, I32, I64 };

inline size_t dtypeBytes(DType t) {
  switch (t) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::BF16:
    return 2;
  case DType::I64:
    return 8;
  }
  return 0;
}

template <class T> constexpr DType dtypeOf();
template <> constexpr DType dtypeOf<float>() { return DType::F32; }
template <> constexpr DType dtypeOf<__nv_bfloat16>() { return DType::BF16; }

/// Round-to-nearest-even fp32 -> bf16 bits (NaN stays NaN), as __float2bfloat16_rn.
inline uint16_t bf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return 0x7fc0;
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16Value(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// A flat host array of one dtype. set() rounds to the dtype; get() returns the stored value.
class HostArray {
public:
  HostArray() = default;
  HostArray(DType dtype, size_t count) : dtype_(dtype), count_(count), bytes_(count * dtypeBytes(dtype)) {}

  DType dtype() const { return dtype_; }
  size_t size() const { return count_; }
  size_t bytes() const { return bytes_.size(); }
  void *data() { return bytes_.data(); }
  const void *data() const { return bytes_.data(); }

  void set(size_t i, double value) {
    switch (dtype_) {
    case DType::F32: {
      float f = static_cast<float>(value);
      std::memcpy(&bytes_[i * 4], &f, 4);
      break;
    }
    case DType::BF16: {
      uint16_t b = bf16Bits(static_cast<float>(value));
      std::memcpy(&bytes_[i * 2], &b, 2);
      break;
    }
    case DType::I32: {
      int32_t v = static_cast<int32_t>(value);
      std::memcpy(&bytes_[i * 4], &v, 4);
      break;
    }
    case DType::I64: {
      int64_t v = static_cast<int64_t>(value);
      std::memcpy(&bytes_[i * 8], &v, 8);
      break;
    }
    }
  }
  double get(size_t i) const {
    switch (dtype_) {
    case DType::F32: {
      float f;
      std::memcpy(&f, &bytes_[i * 4], 4);
      return f;
    }
    case DType::BF16: {
      uint16_t b;
      std::memcpy(&b, &bytes_[i * 2], 2);
      return bf16Value(b);
    }
    case DType::I32: {
      int32_t v;
      std::memcpy(&v, &bytes_[i * 4], 4);
      return v;
    }
    case DType::I64: {
      int64_t v;
      std::memcpy(&v, &bytes_[i * 8], 8);
      return static_cast<double>(v);
    }
    }
    return 0.0;
  }
  /// Every element as double.
  std::vector<double> values() const {
    std::vector<double> out(count_);
    for (size_t i = 0; i < count_; ++i)
      out[i] = get(i);
    return out;
  }

private:
  DType dtype_ = DType::F32;
  size_t count_ = 0;
  std::vector<unsigned char> bytes_;
};

//===--------------------------------------------------------------------===//
// Metrics
//===--------------------------------------------------------------------===//

/// ‖out − ref‖₂ / ‖ref‖₂; +∞ when anything is non-finite (NaN never passes) or sizes differ.
double relativeError(const std::vector<double> &out, const std::vector<double> &ref);
/// max |out − ref|; +∞ on non-finite data.
double maxAbsError(const std::vector<double> &out, const std::vector<double> &ref);

struct Metric {
  std::string what;
  double value;
  double tolerance;
  bool ok() const { return value <= tolerance; } // false for NaN
};

/// The outcome of one test case: its metrics and any notes (e.g. per-token diagnostics).
struct CaseReport {
  std::string name;
  std::string backend;
  std::vector<Metric> metrics;
  std::vector<std::string> notes;

  void add(std::string what, double value, double tolerance) {
    metrics.push_back({std::move(what), value, tolerance});
  }
  bool ok() const;
  /// One line per metric: "  h rel err 2.1e-03 <= 1.0e-02 ok".
  std::string describe() const;
};

//===--------------------------------------------------------------------===//
// The emulator backend
//===--------------------------------------------------------------------===//

class EmuBackend {
public:
  static constexpr const char *kName = "emulator";

  /// A 256-byte aligned host allocation (cudaMalloc's alignment).
  class Buffer {
  public:
    Buffer() = default;
    explicit Buffer(size_t bytes)
        : data_(static_cast<unsigned char *>(::operator new[](bytes > 0 ? bytes : 1,
                                                              std::align_val_t(256)))),
          bytes_(bytes) {}
    void *pointer() const { return data_.get(); }
    size_t bytes() const { return bytes_; }

  private:
    struct Free {
      void operator()(unsigned char *p) const { ::operator delete[](p, std::align_val_t(256)); }
    };
    std::unique_ptr<unsigned char, Free> data_;
    size_t bytes_ = 0;
  };

  Buffer alloc(size_t bytes) { return Buffer(bytes); }
  void upload(Buffer &buffer, const void *host, size_t bytes) {
    std::memcpy(buffer.pointer(), host, bytes);
  }
  void download(const Buffer &buffer, void *host, size_t bytes) {
    std::memcpy(host, buffer.pointer(), bytes);
  }
  void fill(Buffer &buffer, uint8_t value) {
    std::memset(buffer.pointer(), value, buffer.bytes());
  }

  template <class Params>
  void launch(const Family &, const char *, void (*entry)(const Params &), const LaunchDims &dims,
              const Params &params) {
    ::xlc::emu::launch(dim3(dims.grid[0], dims.grid[1], dims.grid[2]), dim3(dims.block, 1, 1),
                       dims.sharedBytes, [&] { entry(params); });
  }
};

// Uploads a HostArray into a fresh buffer of the backend.
template <class Backend> typename Backend::Buffer toDevice(Backend &backend, const HostArray &a) {
  auto buffer = backend.alloc(a.bytes());
  backend.upload(buffer, a.data(), a.bytes());
  return buffer;
}

// Downloads a buffer into a HostArray of |dtype| and |count| elements.
template <class Backend>
HostArray fromDevice(Backend &backend, const typename Backend::Buffer &buffer, DType dtype,
                     size_t count) {
  HostArray a(dtype, count);
  backend.download(buffer, a.data(), a.bytes());
  return a;
}

} // namespace xlc::test

#endif // XLC_TEST_GPU_HARNESS_KERNELHARNESS_H
