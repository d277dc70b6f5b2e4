//===- CpuLaunch.cpp - Checked access to a launch's arguments -------------===//

#include "runtime/kernels/CpuLaunch.h"

#include "runtime/support/Error.h"

#include <limits>

namespace xlc::kernels {
namespace art = xlc::artifact;

namespace {
bool isFloat(art::DType dtype) {
  return dtype == art::DType::F32 || dtype == art::DType::BF16 || dtype == art::DType::F16;
}
} // namespace

CpuLaunch::CpuLaunch(const art::Kernel &kernel, std::span<const CpuArg> args,
                     exec::ThreadPool &pool, std::uint64_t batch, std::uint64_t seq,
                     std::string where)
    : kernel_(kernel), args_(args), pool_(pool), batch_(batch), seq_(seq),
      where_(std::move(where)) {
  check(args.size() == kernel.params.size(), "{}: {} arguments for {} parameters", where_,
        args.size(), kernel.params.size());
}

bool CpuLaunch::has(std::string_view name) const {
  for (const art::KernelParam &p : kernel_.params)
    if (p.name == name)
      return true;
  return false;
}

const CpuArg &CpuLaunch::arg(std::string_view name, art::ParamKind kind) const {
  for (std::size_t i = 0; i < kernel_.params.size(); ++i) {
    if (kernel_.params[i].name != name)
      continue;
    check(kernel_.params[i].kind == kind, "{}: parameter '{}' is {}, expected {}", where_, name,
          art::paramKindName(kernel_.params[i].kind), art::paramKindName(kind));
    return args_[i];
  }
  fail("{}: kernel '{}' has no parameter '{}'", where_, kernel_.name, name);
}

std::int64_t CpuLaunch::integer(std::string_view name) const {
  return arg(name, art::ParamKind::I64).integer;
}

std::int64_t CpuLaunch::count(std::string_view name) const {
  const std::int64_t v = integer(name);
  check(v >= 0, "{}: '{}' must be non-negative, got {}", where_, name, v);
  return v;
}

double CpuLaunch::real(std::string_view name) const {
  return arg(name, art::ParamKind::F32).real;
}

std::byte *CpuLaunch::storage(std::string_view name, std::uint64_t needed, bool wantFloat,
                              art::DType intType) const {
  const CpuArg &a = arg(name, art::ParamKind::Buffer);
  check(a.buffer != nullptr && a.data != nullptr, "{}: buffer '{}' has no storage in this call",
        where_, name);
  const art::Buffer &b = *a.buffer;
  if (wantFloat)
    check(isFloat(b.dtype), "{}: buffer '{}' ({}) passed as '{}' must be a float type", where_,
          b.name, art::dtypeName(b.dtype), name);
  else
    check(b.dtype == intType, "{}: buffer '{}' ({}) passed as '{}' must be {}", where_, b.name,
          art::dtypeName(b.dtype), name, art::dtypeName(intType));
  check(needed <= a.elements,
        "{}: '{}' needs {} elements of buffer '{}', which holds {} at B={}, S={}", where_, name,
        needed, b.name, a.elements, batch_, seq_);
  return a.data;
}

float *CpuLaunch::floats(std::string_view name, std::uint64_t needed) const {
  return reinterpret_cast<float *>(storage(name, needed, true, art::DType::F32));
}
std::int32_t *CpuLaunch::i32s(std::string_view name, std::uint64_t needed) const {
  return reinterpret_cast<std::int32_t *>(storage(name, needed, false, art::DType::I32));
}
std::int64_t *CpuLaunch::i64s(std::string_view name, std::uint64_t needed) const {
  return reinterpret_cast<std::int64_t *>(storage(name, needed, false, art::DType::I64));
}
const std::uint8_t *CpuLaunch::u8s(std::string_view name, std::uint64_t needed) const {
  return reinterpret_cast<const std::uint8_t *>(storage(name, needed, false, art::DType::U8));
}

std::uint64_t CpuLaunch::product(std::initializer_list<std::int64_t> factors) const {
  std::uint64_t p = 1;
  for (std::int64_t f : factors) {
    check(f >= 0, "{}: a size factor is negative ({})", where_, f);
    check(!__builtin_mul_overflow(p, static_cast<std::uint64_t>(f), &p),
          "{}: a buffer extent overflows u64", where_);
  }
  return p;
}

exec::cpu::View CpuLaunch::view(std::string_view name, std::string_view offsetName,
                                std::string_view strideName, std::int64_t rows,
                                std::int64_t width) const {
  const std::int64_t offset = count(offsetName), stride = count(strideName);
  check(rows >= 0 && width >= 0, "{}: view '{}' has {} rows of width {}", where_, name, rows,
        width);
  // One past the last element read: (rows − 1)·stride + offset + width, overflow-checked.
  std::uint64_t end = 0;
  if (rows > 0 && width > 0) {
    end = product({rows - 1, stride});
    check(!__builtin_add_overflow(end, static_cast<std::uint64_t>(offset), &end) &&
              !__builtin_add_overflow(end, static_cast<std::uint64_t>(width), &end),
          "{}: view '{}' overflows u64", where_, name);
  }
  return {floats(name, end), offset, stride};
}

exec::cpu::MutView CpuLaunch::mutView(std::string_view name, std::string_view offsetName,
                                      std::string_view strideName, std::int64_t rows,
                                      std::int64_t width) const {
  const exec::cpu::View v = view(name, offsetName, strideName, rows, width); // checks the extent
  return {floats(name, 0), v.offset, v.stride};
}

} // namespace xlc::kernels
