//===- DriverApi.cpp ------------------------------------------------------===//
#include "runtime/cuda/DriverApi.h"

#include "runtime/support/Error.h"

#include <cstdlib>
#include <mutex>
#include <optional>

#ifndef XLC_SOURCE_ROOT_DIR
#define XLC_SOURCE_ROOT_DIR ""
#endif

namespace xlc::cuda {
namespace {

/// The names of the results most worth recognising when the driver cannot name them itself
/// (it never loaded, or it is the link stub, whose cuGetErrorName fails too).
const char *knownCuResultName(CUresult result) {
  switch (result) {
#define XLC_CU_NAME(code)                                                                      \
  case code:                                                                                   \
    return #code;
    XLC_CU_NAME(CUDA_SUCCESS)
    XLC_CU_NAME(CUDA_ERROR_INVALID_VALUE)
    XLC_CU_NAME(CUDA_ERROR_OUT_OF_MEMORY)
    XLC_CU_NAME(CUDA_ERROR_NOT_INITIALIZED)
    XLC_CU_NAME(CUDA_ERROR_DEINITIALIZED)
    XLC_CU_NAME(CUDA_ERROR_STUB_LIBRARY)
    XLC_CU_NAME(CUDA_ERROR_SYSTEM_DRIVER_MISMATCH)
    XLC_CU_NAME(CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER)
    XLC_CU_NAME(CUDA_ERROR_NO_DEVICE)
    XLC_CU_NAME(CUDA_ERROR_INVALID_DEVICE)
    XLC_CU_NAME(CUDA_ERROR_DEVICE_UNAVAILABLE)
    XLC_CU_NAME(CUDA_ERROR_INVALID_IMAGE)
    XLC_CU_NAME(CUDA_ERROR_INVALID_CONTEXT)
    XLC_CU_NAME(CUDA_ERROR_NO_BINARY_FOR_GPU)
    XLC_CU_NAME(CUDA_ERROR_INVALID_PTX)
    XLC_CU_NAME(CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
    XLC_CU_NAME(CUDA_ERROR_INVALID_HANDLE)
    XLC_CU_NAME(CUDA_ERROR_NOT_FOUND)
    XLC_CU_NAME(CUDA_ERROR_ILLEGAL_ADDRESS)
    XLC_CU_NAME(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES)
    XLC_CU_NAME(CUDA_ERROR_LAUNCH_TIMEOUT)
    XLC_CU_NAME(CUDA_ERROR_MISALIGNED_ADDRESS)
    XLC_CU_NAME(CUDA_ERROR_LAUNCH_FAILED)
    XLC_CU_NAME(CUDA_ERROR_UNKNOWN)
#undef XLC_CU_NAME
  default:
    return nullptr;
  }
}

/// "NAME (number): description" using whatever entry points |api| has resolved.
std::string describeWith(const DriverApi &api, CUresult result) {
  const char *name = nullptr;
  const char *text = nullptr;
  if (api.cuGetErrorName == nullptr || api.cuGetErrorName(result, &name) != CUDA_SUCCESS)
    name = nullptr;
  if (api.cuGetErrorString == nullptr || api.cuGetErrorString(result, &text) != CUDA_SUCCESS)
    text = nullptr;
  if (name == nullptr)
    name = knownCuResultName(result);
  return fmt::format("{} ({}){}{}", name != nullptr ? name : "CUresult",
                     static_cast<int>(result), text != nullptr ? ": " : "",
                     text != nullptr ? text : "");
}

/// The process-wide driver: library, table and status. Built once, never destroyed (a driver
/// must outlive every object that might call it from a static destructor).
struct LoadedDriver {
  std::optional<DynamicLibrary> library;
  DriverApi api;
  DriverStatus status;
};

LoadedDriver &loadedDriver() {
  static LoadedDriver *loaded = [] {
    auto *d = new LoadedDriver();
    try {
      d->library.emplace(DynamicLibrary::open(driverCandidates(), "the CUDA driver"));
      d->status.libraryPath = d->library->path();
      d->api = resolveDriverApi(*d->library);
    } catch (const Error &e) {
      d->status.reason = e.what();
      return d;
    }
    if (CUresult r = d->api.cuInit(0); r != CUDA_SUCCESS) {
      d->status.reason = fmt::format("cuInit(0) failed: {} (driver library {})",
                                     describeWith(d->api, r), d->status.libraryPath);
      return d;
    }
    d->api.cuDriverGetVersion(&d->status.driverVersion);
    if (CUresult r = d->api.cuDeviceGetCount(&d->status.deviceCount); r != CUDA_SUCCESS) {
      d->status.reason = fmt::format("cuDeviceGetCount failed: {}", describeWith(d->api, r));
      return d;
    }
    if (d->status.deviceCount == 0) {
      d->status.reason = "the CUDA driver reports no device";
      return d;
    }
    d->status.available = true;
    return d;
  }();
  return *loaded;
}

/// __FILE__ from the repository root on ("runtime/cuda/Device.cpp"), for shorter messages.
std::string_view shortFile(const char *file) {
  std::string_view path(file), root(XLC_SOURCE_ROOT_DIR);
  if (!root.empty() && path.substr(0, root.size()) == root)
    path.remove_prefix(root.size());
  return path;
}

} // namespace

std::vector<std::string> driverCandidates() {
  std::vector<std::string> candidates;
  if (const char *override = std::getenv("XLC_CUDA_DRIVER"); override != nullptr && *override)
    candidates.emplace_back(override);
  candidates.emplace_back("libcuda.so.1");
  return candidates;
}

DriverApi resolveDriverApi(const DynamicLibrary &library) {
  DriverApi api;
#define XLC_CU_SYMBOL(name, fallback)                                                          \
  {                                                                                            \
    void *address = library.symbol(#name);                                                     \
    if (address == nullptr && *(fallback) != '\0')                                             \
      address = library.symbol(fallback);                                                      \
    if (address == nullptr)                                                                    \
      fail("the CUDA driver {} does not export {}{}", library.path(), #name,                   \
           *(fallback) != '\0' ? " (nor " fallback ")" : "");                                  \
    api.name = reinterpret_cast<decltype(api.name)>(address);                                  \
  }
#include "runtime/cuda/DriverSymbols.inc"
#undef XLC_CU_SYMBOL
  return api;
}

const DriverStatus &driverStatus() { return loadedDriver().status; }

bool cudaAvailable(std::string *reason) {
  const DriverStatus &status = driverStatus();
  if (!status.available && reason != nullptr)
    *reason = status.reason;
  return status.available;
}

const DriverApi &driver() {
  LoadedDriver &d = loadedDriver();
  check(d.status.available, "CUDA is not available: {}", d.status.reason);
  return d.api;
}

std::string describeCuResult(CUresult result) { return describeWith(loadedDriver().api, result); }

void checkCu(CUresult result, const char *call, const char *file, int line) {
  if (result != CUDA_SUCCESS)
    fail("{} failed at {}:{}: {}", call, shortFile(file), line, describeCuResult(result));
}

} // namespace xlc::cuda
