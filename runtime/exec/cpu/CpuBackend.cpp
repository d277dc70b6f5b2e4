//===- CpuBackend.cpp - Running an artifact on the CPU in fp32 ------------===//
//
// The CPU backend is storage plus four step handlers; the step loop, addressing and duties are
// the plan executor's (runtime/exec/Plan.h). A launch runs its kernel family's CPU
// implementation (runtime/kernels) on the launch arguments and the kernel's configuration, the
// very values the GPU receives. Every operand's extent at the call's sizes comes with it, and
// every access is checked against it (CpuLaunch.h), so a crafted artifact that survives
// validation gets an error, not an out-of-bounds access.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cpu/CpuBackend.h"

#include "runtime/exec/WeightAssembly.h"
#include "runtime/exec/cpu/CpuOps.h"
#include "runtime/exec/cpu/ThreadPool.h"
#include "runtime/kernels/CpuLaunch.h"
#include "runtime/support/Error.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include <unistd.h>

namespace xlc::exec {
namespace art = xlc::artifact;

namespace {

//===----------------------------------------------------------------------===//
// Storage: every float type as fp32, integers in their own types
//===----------------------------------------------------------------------===//

bool isFloat(art::DType dtype) {
  return dtype == art::DType::F32 || dtype == art::DType::BF16 || dtype == art::DType::F16;
}

/// Bytes per element in CPU storage.
std::uint64_t storageSize(art::DType dtype) {
  return isFloat(dtype) ? 4 : art::dtypeSize(dtype);
}

/// "12.5 MiB".
std::string humanBytes(std::uint64_t bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, units[unit]);
}

/// a·b, or an error naming |what| on u64 overflow.
std::uint64_t mulChecked(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r;
  check(!__builtin_mul_overflow(a, b, &r), "{}: size overflows u64", what);
  return r;
}

std::uint64_t addChecked(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r;
  check(!__builtin_add_overflow(a, b, &r), "{}: size overflows u64", what);
  return r;
}

/// The machine's physical memory in bytes (0 when unknown).
std::uint64_t physicalMemory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), pageSize = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && pageSize > 0 ? static_cast<std::uint64_t>(pages) *
                                         static_cast<std::uint64_t>(pageSize)
                                   : 0;
}

/// Zeroed memory of |bytes| bytes (at least 1), or an xlc::Error that names what it was for.
/// A request beyond the machine's physical memory is refused before it is made (an allocator
/// may hand out address space it cannot back, or abort on absurd sizes).
std::unique_ptr<std::byte[]> allocateBytes(std::uint64_t bytes, std::string_view what,
                                           const Limits &limits) {
  const std::uint64_t n = std::max<std::uint64_t>(bytes, 1);
  const std::uint64_t physical = physicalMemory();
  auto refuse = [&] {
    fail("cpu backend: cannot allocate {} for the {} at max batch {} and max sequence length {} "
         "(the machine has {} of memory); use a smaller --max-seq or --max-batch",
         humanBytes(n), what, limits.maxBatch, limits.maxSeq,
         physical ? humanBytes(physical) : std::string("an unknown amount"));
  };
  if (n > std::numeric_limits<std::size_t>::max() || (physical != 0 && n > physical))
    refuse();
  try {
    return std::make_unique<std::byte[]>(static_cast<std::size_t>(n));
  } catch (const std::bad_alloc &) {
    refuse();
  }
  return nullptr;
}

template <typename T> T *at(const BufferRef &ref) {
  return reinterpret_cast<T *>(static_cast<std::uintptr_t>(ref.address));
}

/// |needed| elements of |ref| (a float buffer), or an error naming the step and the role.
float *floatOperand(const PreparedStep &ps, const BufferRef &ref, std::uint64_t needed,
                    std::string_view role, const CallShape &shape) {
  check(isFloat(ref.buffer->dtype), "{}: {} '{}' must be a float buffer, is {}", ps.where, role,
        ref.buffer->name, art::dtypeName(ref.buffer->dtype));
  check(needed <= ref.elements, "{}: {} '{}' needs {} elements, holds {} at B={}, S={}", ps.where,
        role, ref.buffer->name, needed, ref.elements, shape.batch, shape.seq);
  return at<float>(ref);
}

//===----------------------------------------------------------------------===//
// The backend
//===----------------------------------------------------------------------===//

class CpuBackend final : public Backend, private StepHandlers {
public:
  CpuBackend(const art::Artifact &artifact, const weights::Checkpoint &checkpoint, Limits limits,
             unsigned threads);

  std::string_view kind() const override { return "cpu"; }
  std::string description() const override;
  void resetStates(std::uint64_t firstSlot, std::uint64_t count) override;
  std::vector<float> readState(std::uint64_t slot, std::size_t stateIndex) override;
  std::vector<float> readBoundBuffer(art::BufferId id) override;
  std::vector<float> readBuffer(art::BufferId id, const CallShape &shape) override;
  void writeBuffer(art::BufferId id, const CallShape &shape,
                   std::span<const float> values) override;

private:
  // Backend.
  const Memory &memory() const override { return memory_; }
  void uploadInput(const BufferRef &dst, std::span<const std::byte> bytes) override;
  std::vector<std::int64_t> execute(const PreparedFunction &fn, const CallShape &shape,
                                    std::span<const double> scalars,
                                    StepObserver *observer) override;
  void downloadRows(const BufferRef &src, std::uint64_t firstRow, std::uint64_t rows,
                    std::uint64_t rowElements, float *out) override;

  // StepHandlers.
  void zero(const BufferRef &buffer, const PreparedStep &step) override;
  void launch(const PreparedStep &step, std::span<const LaunchArg> args,
              const CallShape &shape) override;
  void gemm(const PreparedStep &step, const art::GemmStep &gemm, std::uint64_t m,
            std::uint64_t n, std::uint64_t k, const BufferRef &a, const BufferRef &b,
            const std::optional<BufferRef> &c, const BufferRef &d) override;
  void copy(const PreparedStep &step, const BufferRef &src, const BufferRef &dst,
            std::uint64_t bytes) override;
  void keepErrorFlag(std::size_t index, const BufferRef &flag) override;

  void allocate();
  void loadWeights(const weights::Checkpoint &checkpoint);

  ThreadPool pool_;
  Memory memory_;
  std::vector<std::unique_ptr<std::byte[]>> storage_; ///< one block per persistent set
  std::vector<std::uint64_t> staticBytes_;            ///< by buffer id: static-class bytes
  std::vector<art::BufferId> stateIds_;
  std::uint64_t arenaBytes_ = 0, ioBytes_ = 0, stateBytes_ = 0, staticTotal_ = 0;
  CallShape shape_;                       ///< of the call in progress
  std::vector<std::int64_t> errorFlags_;  ///< of the call in progress
  bool profile_ = false; ///< XLC_CPU_PROFILE set: time every step on stderr
};

CpuBackend::CpuBackend(const art::Artifact &artifact, const weights::Checkpoint &checkpoint,
                       Limits limits, unsigned threads)
    : Backend(artifact, limits), pool_(threads) {
  for (const art::Buffer &b : artifact.buffers)
    check(b.cls != art::BufferClass::State ||
              std::all_of(b.shape.begin() + 1, b.shape.end(),
                          [](const art::Dim &d) { return d.isConstant(); }),
          "{}: state buffer '{}' must have shape [B, <constants>], is {}", artifact.label(),
          b.name, art::shapeToString(b.shape));
  checkWeights(artifact, checkpoint);
  allocate();
  loadWeights(checkpoint);
  fillMasterCopies();
  resetStates(0, limits.maxBatch);
  const char *profile = std::getenv("XLC_CPU_PROFILE");
  profile_ = profile != nullptr && *profile != '\0' && std::string_view(profile) != "0";
}

void CpuBackend::allocate() {
  const art::Artifact &a = artifact();
  const Limits &lim = limits();
  const std::size_t count = a.buffers.size();
  memory_.base.assign(count, 0);
  memory_.slotBytes.assign(count, 0);
  staticBytes_.assign(count, 0);
  // Storage bytes of a buffer at (B, S): its elements times the CPU storage size.
  auto storageAt = [&](art::BufferId id, std::uint64_t batch, std::uint64_t seq) {
    return mulChecked(plan().elements(id, batch, seq), storageSize(a.buffers[id].dtype),
                      a.buffers[id].name);
  };

  // The arena: every planned offset and size doubled (no element grows more than 2x).
  arenaBytes_ = mulChecked(2, a.arenaBytes.evaluate(lim.maxBatch, lim.maxSeq, "arena"), "arena");
  memory_.arenaScale = 2;
  // Inputs and outputs: one block that all functions share (they never run at the same time).
  const std::vector<std::uint64_t> ioOffset = plan().ioLayout(
      [&](art::BufferId id) { return storageAt(id, lim.maxBatch, lim.maxSeq); }, 64, ioBytes_,
      lim.functions);
  std::vector<std::uint64_t> stateOffset(count, 0), staticOffset(count, 0);
  for (const art::Buffer &b : a.buffers) {
    if (b.cls == art::BufferClass::State) {
      memory_.slotBytes[b.id] = storageAt(b.id, 1, 1);
      stateOffset[b.id] = stateBytes_;
      stateBytes_ = addChecked(stateBytes_, mulChecked(memory_.slotBytes[b.id], lim.maxBatch,
                                                       b.name), "states");
      stateIds_.push_back(b.id);
    } else if (art::isStaticClass(b.cls)) {
      staticBytes_[b.id] = storageAt(b.id, 1, 1);
      staticOffset[b.id] = staticTotal_;
      staticTotal_ = addChecked(staticTotal_, (staticBytes_[b.id] + 63) / 64 * 64, "weights");
    }
  }
  storage_.push_back(allocateBytes(arenaBytes_, "activation arena", lim));
  memory_.arenaBase = reinterpret_cast<std::uintptr_t>(storage_.back().get());
  storage_.push_back(allocateBytes(ioBytes_, "inputs and outputs", lim));
  const auto io = reinterpret_cast<std::uintptr_t>(storage_.back().get());
  storage_.push_back(allocateBytes(stateBytes_, "recurrent states", lim));
  const auto states = reinterpret_cast<std::uintptr_t>(storage_.back().get());
  storage_.push_back(allocateBytes(staticTotal_, "weights and parameters", lim));
  const auto statics = reinterpret_cast<std::uintptr_t>(storage_.back().get());
  for (const art::Buffer &b : a.buffers) {
    if (b.cls == art::BufferClass::Input || b.cls == art::BufferClass::Output)
      memory_.base[b.id] = io + ioOffset[b.id];
    else if (b.cls == art::BufferClass::State)
      memory_.base[b.id] = states + stateOffset[b.id];
    else if (art::isStaticClass(b.cls))
      memory_.base[b.id] = statics + staticOffset[b.id]; // gradients, optimizer state: zero
  }
}

void CpuBackend::loadWeights(const weights::Checkpoint &checkpoint) {
  const art::Artifact &a = artifact();
  for (const art::WeightBinding &binding : a.weights) {
    std::vector<float> values;
    try {
      values = assembleWeight(a, binding, checkpoint);
    } catch (const std::bad_alloc &) {
      fail("cpu backend: cannot allocate {} for weight '{}'",
           humanBytes(staticBytes_[binding.buffer]), a.buffers[binding.buffer].name);
    }
    check(values.size() * 4 == staticBytes_[binding.buffer],
          "{}: weight '{}' assembled to {} values, the buffer holds {}", a.label(),
          a.buffers[binding.buffer].name, values.size(), staticBytes_[binding.buffer] / 4);
    std::memcpy(reinterpret_cast<void *>(memory_.base[binding.buffer]), values.data(),
                values.size() * 4);
  }
}

std::string CpuBackend::description() const {
  return fmt::format("cpu: {} thread{}, arena {}, weights {}, states {} ({} slot{}), inputs and "
                     "outputs {}",
                     pool_.size(), pool_.size() == 1 ? "" : "s", humanBytes(arenaBytes_),
                     humanBytes(staticTotal_), humanBytes(stateBytes_), limits().maxBatch,
                     limits().maxBatch == 1 ? "" : "s", humanBytes(ioBytes_));
}

void CpuBackend::resetStates(std::uint64_t firstSlot, std::uint64_t count) {
  checkSlots(firstSlot, count, "resetStates");
  for (art::BufferId id : stateIds_) {
    const std::uint64_t per = memory_.slotBytes[id];
    std::memset(reinterpret_cast<std::byte *>(memory_.base[id]) + firstSlot * per, 0,
                count * per);
  }
}

std::vector<float> CpuBackend::readState(std::uint64_t slot, std::size_t stateIndex) {
  checkSlots(slot, 1, "readState");
  check(stateIndex < stateIds_.size(),
        "readState: state index {} is out of range; the artifact has {} state buffers",
        stateIndex, stateIds_.size());
  const art::BufferId id = stateIds_[stateIndex];
  const std::uint64_t per = memory_.slotBytes[id] / 4;
  const float *begin = reinterpret_cast<const float *>(memory_.base[id]) + slot * per;
  return std::vector<float>(begin, begin + per);
}

std::vector<float> CpuBackend::readBoundBuffer(art::BufferId id) {
  check(id < artifact().buffers.size() && art::isBoundClass(artifact().buffers[id].cls),
        "readBoundBuffer: buffer {} is not a weight or parameter", id);
  const float *begin = reinterpret_cast<const float *>(memory_.base[id]);
  return std::vector<float>(begin, begin + staticBytes_[id] / 4);
}

void CpuBackend::uploadInput(const BufferRef &dst, std::span<const std::byte> bytes) {
  const art::DType dtype = dst.buffer->dtype;
  if (!isFloat(dtype) || dtype == art::DType::F32) {
    std::memcpy(at<std::byte>(dst), bytes.data(), bytes.size());
    return;
  }
  float *out = at<float>(dst);
  for (std::size_t i = 0; i < bytes.size() / 2; ++i) {
    std::uint16_t v;
    std::memcpy(&v, bytes.data() + 2 * i, 2);
    out[i] = dtype == art::DType::BF16 ? weights::bf16ToF32(v) : weights::f16ToF32(v);
  }
}

void CpuBackend::downloadRows(const BufferRef &src, std::uint64_t firstRow, std::uint64_t rows,
                              std::uint64_t rowElements, float *out) {
  std::memcpy(out, at<float>(src) + firstRow * rowElements, rows * rowElements * 4);
}

std::vector<float> CpuBackend::readBuffer(art::BufferId id, const CallShape &shape) {
  checkShape(shape, "readBuffer");
  const BufferRef ref = plan().resolve(memory_, id, shape);
  check(isFloat(ref.buffer->dtype), "readBuffer: '{}' is not a float buffer", ref.buffer->name);
  return std::vector<float>(at<float>(ref), at<float>(ref) + ref.elements);
}

void CpuBackend::writeBuffer(art::BufferId id, const CallShape &shape,
                             std::span<const float> values) {
  checkShape(shape, "writeBuffer");
  const BufferRef ref = plan().resolve(memory_, id, shape);
  check(isFloat(ref.buffer->dtype) && values.size() == ref.elements,
        "writeBuffer: '{}' takes {} floats, got {}", ref.buffer->name, ref.elements,
        values.size());
  std::copy(values.begin(), values.end(), at<float>(ref));
}

std::vector<std::int64_t> CpuBackend::execute(const PreparedFunction &fn, const CallShape &shape,
                                              std::span<const double> scalars,
                                              StepObserver *observer) {
  shape_ = shape;
  errorFlags_.assign(fn.errorFlags.size(), 0);
  if (!profile_) {
    plan().execute(fn, memory_, shape, scalars, *this, observer);
  } else {
    const auto start = std::chrono::steady_clock::now();
    plan().execute(fn, memory_, shape, scalars, *this, observer);
    std::fprintf(stderr, "[xlc cpu] %s at B=%llu, S=%llu: %.3f ms\n", fn.function->name.c_str(),
                 static_cast<unsigned long long>(shape.batch),
                 static_cast<unsigned long long>(shape.seq),
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                           start)
                     .count());
  }
  return errorFlags_;
}

void CpuBackend::zero(const BufferRef &buffer, const PreparedStep &) {
  std::memset(at<std::byte>(buffer), 0, buffer.elements * storageSize(buffer.buffer->dtype));
}

void CpuBackend::launch(const PreparedStep &ps, std::span<const LaunchArg> args,
                        const CallShape &shape) {
  std::vector<kernels::CpuArg> cpuArgs(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    cpuArgs[i].integer = args[i].integer;
    cpuArgs[i].real = args[i].real;
    if (args[i].kind == art::ParamKind::Buffer) {
      cpuArgs[i].data = at<std::byte>(args[i].buffer);
      cpuArgs[i].elements = args[i].buffer.elements;
      cpuArgs[i].buffer = args[i].buffer.buffer;
    }
  }
  kernels::CpuLaunch launch(*ps.kernel, cpuArgs, pool_, shape.batch, shape.seq, ps.where);
  kernels::findFamily(ps.kernel->family)->cpu(launch);
}

void CpuBackend::gemm(const PreparedStep &ps, const art::GemmStep &g, std::uint64_t m,
                      std::uint64_t n, std::uint64_t k, const BufferRef &aRef,
                      const BufferRef &bRef, const std::optional<BufferRef> &cRef,
                      const BufferRef &dRef) {
  const std::uint64_t mk = mulChecked(m, k, ps.where), nk = mulChecked(n, k, ps.where),
                      mn = mulChecked(m, n, ps.where);
  const float *a = nullptr;
  std::vector<float> aLast;
  if (g.aRows == art::GemmRows::LastPosition) {
    // A is [B, S, k] and the product reads the last position of each sequence (m = B): gather
    // those rows first, as the GPU's row stride of S·k does.
    const std::uint64_t seq = shape_.seq;
    check(!g.transA && m == shape_.batch, "{}: a_rows last_position needs m = B = {}, got m = {}",
          ps.where, shape_.batch, m);
    const float *all =
        floatOperand(ps, aRef, mulChecked(mk, seq, ps.where), "GEMM operand A", shape_);
    aLast.resize(mk);
    for (std::uint64_t r = 0; r < m; ++r)
      std::copy_n(all + ((r + 1) * seq - 1) * k, k, aLast.data() + r * k);
    a = aLast.data();
  } else {
    a = floatOperand(ps, aRef, mk, "GEMM operand A", shape_);
  }
  const float *b = floatOperand(ps, bRef, nk, "GEMM operand B", shape_);
  float *d = floatOperand(ps, dRef, mn, "GEMM result D", shape_);
  cpu::GemmEpilogue epilogue = cpu::GemmEpilogue::None;
  const float *extra = nullptr;
  if (g.epilogue == art::Epilogue::Bias) {
    epilogue = cpu::GemmEpilogue::Bias;
    extra = floatOperand(ps, *cRef, n, "GEMM bias", shape_);
  } else if (g.epilogue == art::Epilogue::ResidualAdd) {
    epilogue = cpu::GemmEpilogue::ResidualAdd;
    extra = floatOperand(ps, *cRef, mn, "GEMM residual C", shape_);
  }
  const auto im = static_cast<std::int64_t>(m), in = static_cast<std::int64_t>(n),
             ik = static_cast<std::int64_t>(k);
  // The micro-kernel computes A[m, k]·B[n, k]ᵀ; other layouts are transposed into that first.
  std::vector<float> aT, bT;
  if (g.transA) { // A is stored [k, m]
    aT.resize(mk);
    for (std::uint64_t r = 0; r < k; ++r)
      for (std::uint64_t c = 0; c < m; ++c)
        aT[c * k + r] = a[r * m + c];
    a = aT.data();
  }
  if (!g.transB) { // B is stored [k, n]
    bT.resize(nk);
    for (std::uint64_t r = 0; r < k; ++r)
      for (std::uint64_t c = 0; c < n; ++c)
        bT[c * k + r] = b[r * n + c];
    b = bT.data();
  }
  if (g.accumulate) // D += A·Bᵀ is the residual epilogue with C = D
    cpu::gemm(pool_, im, in, ik, a, b, d, cpu::GemmEpilogue::ResidualAdd, d);
  else
    cpu::gemm(pool_, im, in, ik, a, b, d, epilogue, extra);
}

void CpuBackend::copy(const PreparedStep &ps, const BufferRef &src, const BufferRef &dst,
                      std::uint64_t bytes) {
  check(src.buffer->dtype == dst.buffer->dtype,
        "{}: copy from '{}' ({}) to '{}' ({}) changes the dtype", ps.where, src.buffer->name,
        art::dtypeName(src.buffer->dtype), dst.buffer->name, art::dtypeName(dst.buffer->dtype));
  const std::uint64_t size = art::dtypeSize(src.buffer->dtype);
  check(bytes % size == 0, "{}: copies {} bytes, not a whole number of {} elements", ps.where,
        bytes, art::dtypeName(src.buffer->dtype));
  // Bytes in the artifact's dtype become elements in the CPU storage type.
  const std::uint64_t elements = bytes / size;
  check(elements <= src.elements && elements <= dst.elements,
        "{}: copies {} elements, more than '{}' or '{}' hold", ps.where, elements,
        src.buffer->name, dst.buffer->name);
  std::memmove(at<std::byte>(dst), at<std::byte>(src),
               elements * storageSize(src.buffer->dtype));
}

void CpuBackend::keepErrorFlag(std::size_t index, const BufferRef &flag) {
  check(flag.elements >= 1 && flag.buffer->dtype == art::DType::I64,
        "error flag '{}' must hold an i64", flag.buffer->name);
  errorFlags_[index] = *at<std::int64_t>(flag);
}

} // namespace

std::unique_ptr<Backend> createCpuBackend(const art::Artifact &artifact,
                                          const weights::Checkpoint &checkpoint, Limits limits,
                                          unsigned threads) {
  return std::make_unique<CpuBackend>(artifact, checkpoint, limits, threads);
}

} // namespace xlc::exec
