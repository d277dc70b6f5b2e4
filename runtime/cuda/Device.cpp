//===- Device.cpp ---------------------------------------------------------===//
#include "runtime/cuda/Device.h"

#include "runtime/support/Error.h"

#include <utility>

namespace xlc::cuda {

//===--------------------------------------------------------------------===//
// CudaDevice
//===--------------------------------------------------------------------===//

CudaDevice CudaDevice::open(int ordinal) {
  const DriverApi &api = driver();
  const int count = driverStatus().deviceCount;
  check(ordinal >= 0 && ordinal < count, "CUDA device {} does not exist ({} device(s))", ordinal,
        count);
  CudaDevice d;
  d.ordinal_ = ordinal;
  XLC_CU_CHECK(api.cuDeviceGet(&d.device_, ordinal));
  XLC_CU_CHECK(api.cuDevicePrimaryCtxRetain(&d.context_, d.device_));
  XLC_CU_CHECK(api.cuCtxSetCurrent(d.context_));
  char name[256] = {};
  XLC_CU_CHECK(api.cuDeviceGetName(name, sizeof(name) - 1, d.device_));
  d.name_ = name;
  auto attribute = [&](CUdevice_attribute a) {
    int value = 0;
    XLC_CU_CHECK(api.cuDeviceGetAttribute(&value, a, d.device_));
    return value;
  };
  d.major_ = attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  d.minor_ = attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  d.smCount_ = attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  d.maxSharedOptin_ = attribute(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
  d.l2Bytes_ = attribute(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
  XLC_CU_CHECK(api.cuDeviceTotalMem_v2(&d.totalMemory_, d.device_));
  return d;
}

CudaDevice::CudaDevice(CudaDevice &&other) noexcept
    : ordinal_(other.ordinal_), device_(other.device_),
      context_(std::exchange(other.context_, nullptr)), name_(std::move(other.name_)),
      major_(other.major_), minor_(other.minor_), smCount_(other.smCount_),
      maxSharedOptin_(other.maxSharedOptin_), l2Bytes_(other.l2Bytes_),
      totalMemory_(other.totalMemory_) {}

CudaDevice::~CudaDevice() {
  if (context_ != nullptr)
    driver().cuDevicePrimaryCtxRelease_v2(device_);
}

void CudaDevice::makeCurrent() const { XLC_CU_CHECK(driver().cuCtxSetCurrent(context_)); }

void CudaDevice::synchronize() const { XLC_CU_CHECK(driver().cuCtxSynchronize()); }

std::string CudaDevice::arch(bool archSpecific) const {
  return fmt::format("sm_{}{}{}", major_, minor_, archSpecific && major_ >= 9 ? "a" : "");
}

std::string CudaDevice::summary() const {
  return fmt::format("{} (compute {}.{}, {} SMs, {:.1f} GiB, L2 {} MiB, driver {})", name_, major_,
                     minor_, smCount_, static_cast<double>(totalMemory_) / (1u << 30),
                     l2Bytes_ >> 20, driverStatus().driverVersion);
}

//===--------------------------------------------------------------------===//
// DeviceBuffer
//===--------------------------------------------------------------------===//

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes > 0)
    XLC_CU_CHECK(driver().cuMemAlloc_v2(&ptr_, bytes));
}

DeviceBuffer::DeviceBuffer(DeviceBuffer &&other) noexcept
    : ptr_(std::exchange(other.ptr_, 0)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer &DeviceBuffer::operator=(DeviceBuffer &&other) noexcept {
  if (this != &other) {
    if (ptr_ != 0)
      driver().cuMemFree_v2(ptr_);
    ptr_ = std::exchange(other.ptr_, 0);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_ != 0)
    driver().cuMemFree_v2(ptr_);
}

void DeviceBuffer::upload(const void *host, size_t bytes, size_t offset) {
  check(offset + bytes <= bytes_, "upload of {} bytes at offset {} overruns a {}-byte buffer",
        bytes, offset, bytes_);
  if (bytes > 0)
    XLC_CU_CHECK(driver().cuMemcpyHtoD_v2(ptr_ + offset, host, bytes));
}

void DeviceBuffer::download(void *host, size_t bytes, size_t offset) const {
  check(offset + bytes <= bytes_, "download of {} bytes at offset {} overruns a {}-byte buffer",
        bytes, offset, bytes_);
  if (bytes > 0)
    XLC_CU_CHECK(driver().cuMemcpyDtoH_v2(host, ptr_ + offset, bytes));
}

void DeviceBuffer::fill(uint8_t value) {
  if (bytes_ > 0)
    XLC_CU_CHECK(driver().cuMemsetD8_v2(ptr_, value, bytes_));
}

//===--------------------------------------------------------------------===//
// Module and Kernel
//===--------------------------------------------------------------------===//

Module Module::load(std::span<const char> cubin) {
  check(!cubin.empty(), "cannot load an empty CUBIN image");
  Module m;
  XLC_CU_CHECK(driver().cuModuleLoadData(&m.module_, cubin.data()));
  return m;
}

Module::Module(Module &&other) noexcept : module_(std::exchange(other.module_, nullptr)) {}

Module &Module::operator=(Module &&other) noexcept {
  if (this != &other) {
    if (module_ != nullptr)
      driver().cuModuleUnload(module_);
    module_ = std::exchange(other.module_, nullptr);
  }
  return *this;
}

Module::~Module() {
  if (module_ != nullptr)
    driver().cuModuleUnload(module_);
}

Kernel Module::kernel(const char *name) const {
  check(module_ != nullptr, "kernel '{}' requested from an unloaded module", name);
  CUfunction function = nullptr;
  XLC_CU_CHECK(driver().cuModuleGetFunction(&function, module_, name));
  return Kernel(function);
}

void Kernel::setMaxDynamicSharedMemory(int bytes) const {
  if (bytes > 48 * 1024)
    XLC_CU_CHECK(driver().cuFuncSetAttribute(
        function_, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes));
}

int Kernel::numRegisters() const {
  int value = 0;
  XLC_CU_CHECK(driver().cuFuncGetAttribute(&value, CU_FUNC_ATTRIBUTE_NUM_REGS, function_));
  return value;
}

int Kernel::localBytes() const {
  int value = 0;
  XLC_CU_CHECK(driver().cuFuncGetAttribute(&value, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, function_));
  return value;
}

void Kernel::launch(Dim3 grid, Dim3 block, unsigned sharedBytes, CUstream stream,
                    const void *params, size_t paramBytes) const {
  check(function_ != nullptr, "launch of a null kernel");
  check(paramBytes % 8 == 0, "kernel parameters must be whole 8-byte slots ({} bytes)", paramBytes);
  check(grid.x > 0 && grid.y > 0 && grid.z > 0, "empty grid ({}, {}, {})", grid.x, grid.y, grid.z);
  // The kernel's one parameter is the whole struct: kernelParams[0] points at its bytes.
  void *args[] = {const_cast<void *>(params)};
  if (!programmatic_) {
    XLC_CU_CHECK(driver().cuLaunchKernel(function_, grid.x, grid.y, grid.z, block.x, block.y,
                                         block.z, sharedBytes, stream, args, nullptr));
    return;
  }
  CUlaunchAttribute attribute{};
  attribute.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
  attribute.value.programmaticStreamSerializationAllowed = 1;
  CUlaunchConfig config{};
  config.gridDimX = grid.x;
  config.gridDimY = grid.y;
  config.gridDimZ = grid.z;
  config.blockDimX = block.x;
  config.blockDimY = block.y;
  config.blockDimZ = block.z;
  config.sharedMemBytes = sharedBytes;
  config.hStream = stream;
  config.attrs = &attribute;
  config.numAttrs = 1;
  XLC_CU_CHECK(driver().cuLaunchKernelEx(&config, function_, args, nullptr));
}

//===--------------------------------------------------------------------===//
// Stream and Event
//===--------------------------------------------------------------------===//

Stream::Stream() { XLC_CU_CHECK(driver().cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING)); }

Stream::Stream(Stream &&other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}

Stream::~Stream() {
  if (stream_ != nullptr)
    driver().cuStreamDestroy_v2(stream_);
}

void Stream::synchronize() const { XLC_CU_CHECK(driver().cuStreamSynchronize(stream_)); }

Event::Event() { XLC_CU_CHECK(driver().cuEventCreate(&event_, CU_EVENT_DEFAULT)); }

Event::Event(Event &&other) noexcept : event_(std::exchange(other.event_, nullptr)) {}

Event::~Event() {
  if (event_ != nullptr)
    driver().cuEventDestroy_v2(event_);
}

void Event::record(CUstream stream) const { XLC_CU_CHECK(driver().cuEventRecord(event_, stream)); }

void Event::synchronize() const { XLC_CU_CHECK(driver().cuEventSynchronize(event_)); }

float Event::elapsedSince(const Event &start) const {
  float ms = 0.0f;
  XLC_CU_CHECK(driver().cuEventElapsedTime_v2(&ms, start.event_, event_));
  return ms;
}

} // namespace xlc::cuda
