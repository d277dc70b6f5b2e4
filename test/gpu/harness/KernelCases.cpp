//===- KernelCases.cpp ----------------------------------------------------===//
#include "KernelCases.h"

#include <atomic>
#include <vector>

namespace xlc::test {

void parallelFor(int64_t n, const std::function<void(int64_t)> &fn) {
  const int64_t workers =
      std::min<int64_t>(n, std::max(1u, std::thread::hardware_concurrency()));
  if (workers <= 1) {
    for (int64_t i = 0; i < n; ++i)
      fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::vector<std::thread> pool;
  for (int64_t w = 0; w < workers; ++w)
    pool.emplace_back([&] {
      for (int64_t i = next++; i < n; i = next++)
        fn(i);
    });
  for (std::thread &t : pool)
    t.join();
}

void fillUniform(HostArray &a, int64_t rows, int64_t width, uint64_t seed) {
  parallelFor(rows, [&](int64_t r) {
    uint64_t x = seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(r + 1));
    for (int64_t i = 0; i < width; ++i) {
      x += 0x9E3779B97F4A7C15ull; // splitmix64
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z ^= z >> 31;
      const double u = static_cast<double>(z >> 11) * 0x1.0p-53;
      a.set(r * width + i, (2.0 * u - 1.0) * 1.7320508075688772);
    }
  });
}

double rawInputGate(ref::Random &rng, int head) {
  switch (head % 4) {
  case 0:
    return rng.normal(-10.0, 1.5); // the 7B's input-gate bias init
  case 1:
    return rng.normal(0.0, 2.0);
  case 2:
    return rng.uniform(-40.0, 40.0); // far into the soft-cap's saturation
  default:
    return rng.normal(-3.0, 4.0);
  }
}

double rawForgetGate(ref::Random &rng, int head, int numHeads, int64_t token) {
  if (head % 4 == 2)
    return rng.normal(0.0, 4.0); // fast forgetting next to extreme input gates
  if (token % 16 == 5)
    return rng.uniform(-40.0, 40.0); // an occasional extreme (document-reset-like when negative)
  const double bias = numHeads > 1 ? 3.0 + 3.0 * head / (numHeads - 1) : 4.5;
  return bias + rng.normal(0.0, 1.5);
}

} // namespace xlc::test
