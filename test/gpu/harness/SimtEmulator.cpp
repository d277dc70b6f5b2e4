//===- SimtEmulator.cpp - Host SIMT emulator for device code -----------===//
//
// See xlc_device_emulation.h. One std::thread per CUDA thread of a block, created once per
// launch; the threads walk the grid's blocks in lock step (a block barrier between blocks).
//
//===----------------------------------------------------------------------===//
#include "xlc_device_emulation.h"

#include <array>
#include <barrier>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <thread>
#include <vector>

namespace xlc::emu {

struct BlockState {
  explicit BlockState(unsigned threads)
      : threads(threads), block(static_cast<std::ptrdiff_t>(threads)), warpSlots(threads / 32),
        gatherSlots(threads / 32) {
    for (unsigned w = 0; w < threads / 32; ++w)
      warps.push_back(std::make_unique<std::barrier<>>(32));
  }
  unsigned threads;
  std::barrier<> block;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  std::vector<std::array<uint64_t, 32>> warpSlots;
  std::vector<std::array<std::array<unsigned char, 64>, 32>> gatherSlots;
  unsigned char *smem = nullptr;
};

ThreadContext &context() {
  static thread_local ThreadContext ctx;
  return ctx;
}

[[noreturn]] void contractViolation(const char *what) {
  std::fprintf(stderr, "SIMT emulator: CUDA contract violated: %s (block %u,%u,%u thread %u)\n",
               what, blockIdx.x, blockIdx.y, blockIdx.z, context().linear);
  std::fflush(stderr);
  std::abort();
}

unsigned char *dynamicSharedMemory() {
  BlockState *block = context().block;
  if (block == nullptr || block->smem == nullptr)
    contractViolation("dynamic shared memory used outside a launch or with 0 bytes requested");
  return block->smem;
}

void syncThreads() { context().block->block.arrive_and_wait(); }

void syncWarp() {
  ThreadContext &ctx = context();
  ctx.block->warps[ctx.linear / 32]->arrive_and_wait();
}

uint64_t warpExchange(uint64_t bits, unsigned srcLane) {
  ThreadContext &ctx = context();
  const unsigned warp = ctx.linear / 32, lane = ctx.linear % 32;
  std::array<uint64_t, 32> &slots = ctx.block->warpSlots[warp];
  std::barrier<> &barrier = *ctx.block->warps[warp];
  slots[lane] = bits;
  barrier.arrive_and_wait();
  const uint64_t value = slots[srcLane % 32];
  barrier.arrive_and_wait();
  return value;
}

void warpGather(const void *mine, size_t bytes, void *all) {
  if (bytes > 64)
    contractViolation("warpGather of more than 64 bytes per lane");
  ThreadContext &ctx = context();
  const unsigned warp = ctx.linear / 32, lane = ctx.linear % 32;
  auto &slots = ctx.block->gatherSlots[warp];
  std::barrier<> &barrier = *ctx.block->warps[warp];
  std::memcpy(slots[lane].data(), mine, bytes);
  barrier.arrive_and_wait();
  for (unsigned l = 0; l < 32; ++l)
    std::memcpy(static_cast<unsigned char *>(all) + l * bytes, slots[l].data(), bytes);
  barrier.arrive_and_wait();
}

void launch(dim3 grid, dim3 block, size_t sharedBytes, const std::function<void()> &body) {
  const unsigned threads = block.x * block.y * block.z;
  if (threads == 0 || threads % 32 != 0 || threads > 1024)
    contractViolation("block size must be a positive multiple of 32, at most 1024");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0)
    contractViolation("empty grid");
  BlockState state(threads);
  struct Free {
    void operator()(unsigned char *p) const { ::operator delete[](p, std::align_val_t(128)); }
  };
  std::unique_ptr<unsigned char, Free> smem;
  if (sharedBytes > 0) {
    smem.reset(static_cast<unsigned char *>(
        ::operator new[](sharedBytes, std::align_val_t(128))));
    state.smem = smem.get();
  }
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ThreadContext &ctx = context();
      ctx.block = &state;
      ctx.linear = t;
      threadIdx = make_uint3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
      blockDim = block;
      gridDim = grid;
      for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
          for (unsigned x = 0; x < grid.x; ++x) {
            blockIdx = make_uint3(x, y, z);
            if (t == 0 && state.smem != nullptr)
              std::memset(state.smem, 0xFF, sharedBytes); // NaN for fp32 and bf16
            state.block.arrive_and_wait();
            body();
            state.block.arrive_and_wait();
          }
      ctx.block = nullptr;
    });
  }
  for (std::thread &thread : pool)
    thread.join();
}

} // namespace xlc::emu
