//===- CpuLaunch.h - One kernel launch as the CPU executes it ----*- C++ -*-===//
//
// The CPU implementation of a kernel family reads exactly what the GPU kernel receives: the
// launch arguments, by the kernel's parameter names, and the kernel's configuration. Buffer
// arguments arrive resolved to host memory at the call's (B, S) with the number of elements the
// buffer holds there; every access is checked against that count before anything is read or
// written (sizes computed with overflow checks), so a hostile artifact that survives validation
// gets an error, never an out-of-bounds access.
//
// Storage: the CPU backend holds every float buffer (f32, bf16, f16) as fp32 and integer buffers
// in their own types; floats() and the view accessors hand out fp32 pointers.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_KERNELS_CPULAUNCH_H
#define XLC_RUNTIME_KERNELS_CPULAUNCH_H

#include "runtime/exec/cpu/CpuOps.h"
#include "runtime/kernels/KernelFamily.h"

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

namespace xlc::exec {
class ThreadPool;
}

namespace xlc::kernels {

/// One resolved launch argument.
struct CpuArg {
  std::byte *data = nullptr;                   ///< buffer arguments: host storage
  std::uint64_t elements = 0;                  ///< buffer arguments: elements held at (B, S)
  const artifact::Buffer *buffer = nullptr;    ///< buffer arguments
  std::int64_t integer = 0;                    ///< i64 parameters
  double real = 0;                             ///< f32 parameters (as the GPU gets them)
};

class CpuLaunch {
public:
  CpuLaunch(const artifact::Kernel &kernel, std::span<const CpuArg> args, exec::ThreadPool &pool,
            std::uint64_t batch, std::uint64_t seq, std::string where);

  const std::string &where() const { return where_; }
  exec::ThreadPool &pool() const { return pool_; }
  std::uint64_t batch() const { return batch_; }
  std::uint64_t seq() const { return seq_; }
  const Config &config() const { return kernel_.config; }
  std::int64_t cfg(std::string_view key) const { return cfgInt(kernel_.config, key); }

  /// Whether the kernel declares a parameter |name|.
  bool has(std::string_view name) const;
  /// An i64 argument.
  std::int64_t integer(std::string_view name) const;
  /// A non-negative i64 argument.
  std::int64_t count(std::string_view name) const;
  /// An f32 argument, as the double the device headers receive.
  double real(std::string_view name) const;

  /// A float buffer argument holding at least |needed| elements.
  float *floats(std::string_view name, std::uint64_t needed) const;
  std::int32_t *i32s(std::string_view name, std::uint64_t needed) const;
  std::int64_t *i64s(std::string_view name, std::uint64_t needed) const;
  const std::uint8_t *u8s(std::string_view name, std::uint64_t needed) const;

  /// The strided view (buffer |name|, i64 |offsetName|, i64 |strideName|) of |rows| rows of
  /// |width| elements, checked to lie inside the buffer.
  exec::cpu::View view(std::string_view name, std::string_view offsetName,
                       std::string_view strideName, std::int64_t rows, std::int64_t width) const;
  /// The same, as a destination the launch writes.
  exec::cpu::MutView mutView(std::string_view name, std::string_view offsetName,
                             std::string_view strideName, std::int64_t rows,
                             std::int64_t width) const;

  /// The product of non-negative factors, or an error naming the step when it overflows u64.
  std::uint64_t product(std::initializer_list<std::int64_t> factors) const;

private:
  const CpuArg &arg(std::string_view name, artifact::ParamKind kind) const;
  std::byte *storage(std::string_view name, std::uint64_t needed, bool isFloat,
                     artifact::DType intType) const;

  const artifact::Kernel &kernel_;
  std::span<const CpuArg> args_;
  exec::ThreadPool &pool_;
  std::uint64_t batch_, seq_;
  std::string where_;
};

} // namespace xlc::kernels

#endif // XLC_RUNTIME_KERNELS_CPULAUNCH_H
