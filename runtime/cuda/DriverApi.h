//===- DriverApi.h - The CUDA driver API, loaded with dlopen -----*- C++ -*-===//
//
// libcuda.so.1 is opened at first use, never linked: a binary built here starts on a machine
// without a driver (this development machine has only the link stub), and GPU tests skip with
// the reason instead of failing to load. Entry points live in one X-macro table
// (DriverSymbols.inc, IREE's dynamic_symbol_tables.h pattern), typed from the toolkit's cuda.h,
// which is used for its declarations only.
//
// Every CUresult goes through XLC_CU_CHECK, which turns a failure into an xlc::Error carrying
// the call's text, file:line and the error's name and description.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_CUDA_DRIVERAPI_H
#define XLC_RUNTIME_CUDA_DRIVERAPI_H

#include "runtime/cuda/DynamicLibrary.h"

#include <cuda.h>

#include <string>

namespace xlc::cuda {

/// The resolved driver entry points. Members are named after the exported symbols (so the
/// `_v2` suffixes show where the ABI requires them).
struct DriverApi {
#define XLC_CU_SYMBOL(name, fallback) decltype(&::name) name = nullptr;
#include "runtime/cuda/DriverSymbols.inc"
#undef XLC_CU_SYMBOL
};

/// Resolves every entry of DriverSymbols.inc from |library|; throws xlc::Error naming the first
/// missing symbol and the library's path.
DriverApi resolveDriverApi(const DynamicLibrary &library);

/// The library names tried for the driver, in order: $XLC_CUDA_DRIVER if set, then libcuda.so.1.
std::vector<std::string> driverCandidates();

/// What loading the driver found. Computed once per process by driverStatus().
struct DriverStatus {
  bool available = false;
  std::string reason;      ///< why not, when !available
  std::string libraryPath; ///< the library that was opened, if any
  int driverVersion = 0;   ///< e.g. 13000
  int deviceCount = 0;
};

/// Loads the driver, resolves the table, calls cuInit(0) and counts the devices, once per
/// process (thread-safe). Never throws: failure is reported in the status.
const DriverStatus &driverStatus();

/// True iff the driver loaded, cuInit succeeded and there is at least one device. On false,
/// *reason (if given) says why, e.g. "cuInit(0) failed: CUDA_ERROR_STUB_LIBRARY (34) ...".
bool cudaAvailable(std::string *reason = nullptr);

/// The driver table; throws xlc::Error with the reason when cudaAvailable() is false.
const DriverApi &driver();

/// "CUDA_ERROR_OUT_OF_MEMORY (2): out of memory" (the number alone if the driver never loaded).
std::string describeCuResult(CUresult result);

/// Throws xlc::Error("<call> failed at <file>:<line>: <describeCuResult>") unless CUDA_SUCCESS.
void checkCu(CUresult result, const char *call, const char *file, int line);

} // namespace xlc::cuda

/// XLC_CU_CHECK(api.cuMemAlloc_v2(&ptr, bytes)): throw xlc::Error on failure.
#define XLC_CU_CHECK(call) ::xlc::cuda::checkCu((call), #call, __FILE__, __LINE__)

#endif // XLC_RUNTIME_CUDA_DRIVERAPI_H
