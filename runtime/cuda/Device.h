//===- Device.h - Minimal CUDA device, memory, module and launch --*- C++ -*-===//
//
// The smallest set of RAII wrappers over the dlopen'ed driver that kernels need: one device with
// its primary context, device buffers, modules loaded from CUBIN, kernel launches whose single
// parameter is a packed struct of 8-byte slots (the device library's <Family>Params ABI),
// streams and events. Everything throws xlc::Error (via XLC_CU_CHECK) with the failing call.
//
// Threading: the device's primary context is made current on the thread that opens it; call
// CudaDevice::makeCurrent() on any other thread before using these objects there.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_CUDA_DEVICE_H
#define XLC_RUNTIME_CUDA_DEVICE_H

#include "runtime/cuda/DriverApi.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

namespace xlc::cuda {

/// Device 0 (or |ordinal|) with its primary context retained and current. Move-only.
class CudaDevice {
public:
  static CudaDevice open(int ordinal = 0);
  CudaDevice(CudaDevice &&other) noexcept;
  CudaDevice &operator=(CudaDevice &&) = delete;
  CudaDevice(const CudaDevice &) = delete;
  ~CudaDevice();

  void makeCurrent() const;
  void synchronize() const;

  int ordinal() const { return ordinal_; }
  CUdevice handle() const { return device_; }
  const std::string &name() const { return name_; }
  int computeMajor() const { return major_; }
  int computeMinor() const { return minor_; }
  /// "sm_90" style; "sm_90a" when |archSpecific| (the a-suffixed target of Hopper and later).
  std::string arch(bool archSpecific = true) const;
  int smCount() const { return smCount_; }
  size_t totalMemory() const { return totalMemory_; }
  int maxSharedMemoryPerBlockOptin() const { return maxSharedOptin_; }
  int l2CacheBytes() const { return l2Bytes_; }
  /// One line: name, compute capability, SMs, memory, driver version.
  std::string summary() const;

private:
  CudaDevice() = default;
  int ordinal_ = 0;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
  std::string name_;
  int major_ = 0, minor_ = 0, smCount_ = 0, maxSharedOptin_ = 0, l2Bytes_ = 0;
  size_t totalMemory_ = 0;
};

/// A device allocation (cuMemAlloc). Move-only; freed on destruction.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  DeviceBuffer(DeviceBuffer &&other) noexcept;
  DeviceBuffer &operator=(DeviceBuffer &&other) noexcept;
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  ~DeviceBuffer();

  CUdeviceptr address() const { return ptr_; }
  /// The address as a pointer, for a kernel parameter struct.
  void *pointer() const { return reinterpret_cast<void *>(static_cast<uintptr_t>(ptr_)); }
  size_t bytes() const { return bytes_; }

  void upload(const void *host, size_t bytes, size_t offset = 0);
  void download(void *host, size_t bytes, size_t offset = 0) const;
  /// Sets every byte to |value| (0xFF poisons fp32 and bf16 with NaN bit patterns).
  void fill(uint8_t value);

private:
  CUdeviceptr ptr_ = 0;
  size_t bytes_ = 0;
};

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

/// A kernel entry point of a loaded module.
class Kernel {
public:
  Kernel() = default;
  explicit Kernel(CUfunction function) : function_(function) {}

  CUfunction handle() const { return function_; }
  /// Allows launches with more than 48 KiB of dynamic shared memory (no-op below that).
  void setMaxDynamicSharedMemory(int bytes) const;
  int numRegisters() const;
  int localBytes() const; ///< spill/stack bytes per thread

  /// Launch with programmatic stream serialization (PDL): the kernel may be scheduled while the
  /// stream's previous kernel finishes. Only for kernels whose entry point begins with
  /// xlc::device::grid_dependency_sync() (common.cuh), which waits for that kernel's completion
  /// before any memory access: every emitted kernel and the runtime's own.
  void setProgrammaticLaunch(bool on) { programmatic_ = on; }
  bool programmaticLaunch() const { return programmatic_; }

  /// Launches with one by-value parameter: |paramBytes| bytes at |params| (a packed struct of
  /// 8-byte slots, or any trivially copyable struct).
  void launch(Dim3 grid, Dim3 block, unsigned sharedBytes, CUstream stream, const void *params,
              size_t paramBytes) const;

  template <class Params>
  void launch(Dim3 grid, Dim3 block, unsigned sharedBytes, CUstream stream,
              const Params &params) const {
    static_assert(std::is_trivially_copyable_v<Params>, "kernel parameters must be POD");
    static_assert(sizeof(Params) % 8 == 0, "parameter structs are made of 8-byte slots");
    launch(grid, block, sharedBytes, stream, &params, sizeof(Params));
  }

  /// Launches with the parameter struct given as its 8-byte slots, in order.
  void launchSlots(Dim3 grid, Dim3 block, unsigned sharedBytes, CUstream stream,
                   std::span<const uint64_t> slots) const {
    launch(grid, block, sharedBytes, stream, slots.data(), slots.size() * sizeof(uint64_t));
  }

private:
  CUfunction function_ = nullptr;
  bool programmatic_ = false;
};

/// A module loaded from a CUBIN image (cuModuleLoadData). Move-only; unloaded on destruction.
class Module {
public:
  Module() = default;
  static Module load(std::span<const char> cubin);
  Module(Module &&other) noexcept;
  Module &operator=(Module &&other) noexcept;
  Module(const Module &) = delete;
  Module &operator=(const Module &) = delete;
  ~Module();

  Kernel kernel(const char *name) const;

private:
  CUmodule module_ = nullptr;
};

/// A stream (non-default). Move-only.
class Stream {
public:
  Stream();
  Stream(Stream &&other) noexcept;
  Stream &operator=(Stream &&) = delete;
  Stream(const Stream &) = delete;
  ~Stream();
  CUstream handle() const { return stream_; }
  void synchronize() const;

private:
  CUstream stream_ = nullptr;
};

/// An event for timing. Move-only.
class Event {
public:
  Event();
  Event(Event &&other) noexcept;
  Event &operator=(Event &&) = delete;
  Event(const Event &) = delete;
  ~Event();
  void record(CUstream stream) const;
  void synchronize() const;
  /// Milliseconds from |start| to this event (both recorded and complete).
  float elapsedSince(const Event &start) const;

private:
  CUevent event_ = nullptr;
};

} // namespace xlc::cuda

#endif // XLC_RUNTIME_CUDA_DEVICE_H
