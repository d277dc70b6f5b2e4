//===- FakeCudaDriverDefaults.cpp - The fake driver's other entry points --===//
//
// Every entry point the runtime resolves (runtime/cuda/DriverSymbols.inc) must exist in a driver
// library. FakeCudaDriver.cpp implements those the weight upload uses; this file defines all of
// them weakly, returning CUDA_ERROR_NOT_SUPPORTED (801), so the library keeps loading as entries
// are added. It must not include cuda.h: the weak definitions take no parameters (the x86-64
// calling convention lets a caller pass arguments a callee ignores).
//
//===----------------------------------------------------------------------===//

extern "C" {
#define XLC_CU_SYMBOL(name, fallback)                                                          \
  __attribute__((weak)) int name() { return 801; }
#include "runtime/cuda/DriverSymbols.inc"
#undef XLC_CU_SYMBOL
}
