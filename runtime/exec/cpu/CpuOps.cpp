//===- CpuOps.cpp - fp32 kernels of the CPU backend -----------------------===//
//
// Compiled with -ffp-contract=fast (runtime/exec/cpu/CMakeLists.txt) so that a·b + c becomes
// one FMA where the target has it: the GEMM micro-kernel's clones for AVX2+FMA and AVX-512 rely
// on it, and fused rounding only makes the results more accurate.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cpu/CpuOps.h"

#include "runtime/exec/cpu/ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

// One clone per ISA level, chosen by the loader (ifunc) on first call. The vector-extension
// code below is written for 16 floats; each clone maps that onto its widest registers.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define XLC_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define XLC_CPU_CLONES
#endif

namespace xlc::exec::cpu {
namespace {

//===----------------------------------------------------------------------===//
// GEMM
//===----------------------------------------------------------------------===//

/// 16 floats as one value (GCC/Clang vector extension); memcpy loads and stores it without
/// alignment requirements.
using Vec16 = float __attribute__((vector_size(64)));

constexpr int kMR = 6;              ///< rows of D per micro-kernel call
constexpr int kNR = 16;             ///< columns of D per micro-kernel call (one Vec16)
constexpr std::int64_t kKC = 256;   ///< depth of a packed B block
constexpr std::int64_t kNC = 256;   ///< columns of a packed B block (a multiple of kNR)
constexpr std::int64_t kMC = 96;    ///< rows of D per task (a multiple of kMR)

inline Vec16 loadVec(const float *p) {
  Vec16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/// Packs B[j0 .. j0+nc, k0 .. k0+kc] (B row-major [n, k]) into ceil(nc/kNR) panels; panel p holds
/// columns j0 + p·kNR + [0, kNR) as kc consecutive groups of kNR floats (k-major), so the
/// micro-kernel reads one Vec16 per k step. Columns at or past n are zero.
void packB(const float *b, std::int64_t n, std::int64_t k, std::int64_t j0, std::int64_t nc,
           std::int64_t k0, std::int64_t kc, float *packed) {
  const std::int64_t panels = (nc + kNR - 1) / kNR;
  for (std::int64_t p = 0; p < panels; ++p) {
    float *panel = packed + p * kc * kNR;
    for (int jr = 0; jr < kNR; ++jr) {
      const std::int64_t j = j0 + p * kNR + jr;
      float *dst = panel + jr;
      if (p * kNR + jr < nc && j < n) {
        const float *src = b + j * k + k0;
        for (std::int64_t kk = 0; kk < kc; ++kk)
          dst[kk * kNR] = src[kk];
      } else {
        for (std::int64_t kk = 0; kk < kc; ++kk)
          dst[kk * kNR] = 0.0f;
      }
    }
  }
}

/// tile[i][:] = Σ_{p<kc} rows[i][p] · panel[p][:] for the kMR rows (kMR × kNR accumulators in
/// registers). Callers with fewer rows repeat the last row pointer and ignore the extra results.
inline __attribute__((always_inline)) void microKernel(std::int64_t kc, const float *const *rows,
                                                       const float *panel, float *tile) {
  Vec16 c0 = {}, c1 = {}, c2 = {}, c3 = {}, c4 = {}, c5 = {};
  const float *a0 = rows[0], *a1 = rows[1], *a2 = rows[2], *a3 = rows[3], *a4 = rows[4],
              *a5 = rows[5];
  for (std::int64_t p = 0; p < kc; ++p) {
    const Vec16 bv = loadVec(panel + p * kNR);
    c0 += a0[p] * bv;
    c1 += a1[p] * bv;
    c2 += a2[p] * bv;
    c3 += a3[p] * bv;
    c4 += a4[p] * bv;
    c5 += a5[p] * bv;
  }
  std::memcpy(tile + 0 * kNR, &c0, sizeof c0);
  std::memcpy(tile + 1 * kNR, &c1, sizeof c1);
  std::memcpy(tile + 2 * kNR, &c2, sizeof c2);
  std::memcpy(tile + 3 * kNR, &c3, sizeof c3);
  std::memcpy(tile + 4 * kNR, &c4, sizeof c4);
  std::memcpy(tile + 5 * kNR, &c5, sizeof c5);
}

struct GemmArgs {
  std::int64_t m, n, k;
  const float *a, *b;
  float *d;
  GemmEpilogue epilogue;
  const float *extra;
};

/// One task of the blocked path: rows [i0, i1) × columns [j0, j0 + nc) of D, over all of k in
/// blocks of kKC. The epilogue is applied with the first k block (so that D == C works: C's
/// element is read before D's is first written); later blocks add to D.
XLC_CPU_CLONES
void gemmBlock(const GemmArgs &g, std::int64_t i0, std::int64_t i1, std::int64_t j0,
               std::int64_t nc, float *packed) {
  const std::int64_t panels = (nc + kNR - 1) / kNR;
  alignas(64) float tile[kMR * kNR];
  for (std::int64_t k0 = 0; k0 < g.k; k0 += kKC) {
    const std::int64_t kc = std::min(kKC, g.k - k0);
    const bool first = k0 == 0;
    packB(g.b, g.n, g.k, j0, nc, k0, kc, packed);
    for (std::int64_t ir = i0; ir < i1; ir += kMR) {
      const int mr = static_cast<int>(std::min<std::int64_t>(kMR, i1 - ir));
      const float *rows[kMR];
      for (int i = 0; i < kMR; ++i)
        rows[i] = g.a + (ir + std::min(i, mr - 1)) * g.k + k0;
      for (std::int64_t p = 0; p < panels; ++p) {
        microKernel(kc, rows, packed + p * kc * kNR, tile);
        const std::int64_t jBase = j0 + p * kNR;
        const int nr = static_cast<int>(std::min<std::int64_t>(kNR, nc - p * kNR));
        for (int i = 0; i < mr; ++i) {
          float *dRow = g.d + (ir + i) * g.n + jBase;
          const float *t = tile + i * kNR;
          if (!first) {
            for (int j = 0; j < nr; ++j)
              dRow[j] += t[j];
          } else if (g.epilogue == GemmEpilogue::Bias) {
            for (int j = 0; j < nr; ++j)
              dRow[j] = t[j] + g.extra[jBase + j];
          } else if (g.epilogue == GemmEpilogue::ResidualAdd) {
            const float *cRow = g.extra + (ir + i) * g.n + jBase;
            for (int j = 0; j < nr; ++j)
              dRow[j] = t[j] + cRow[j];
          } else {
            for (int j = 0; j < nr; ++j)
              dRow[j] = t[j];
          }
        }
      }
    }
  }
}

/// Σ_p a[p]·b[p] with 32 partial sums (two Vec16) and a scalar tail.
inline __attribute__((always_inline)) float dot(const float *a, const float *b, std::int64_t k) {
  Vec16 s0 = {}, s1 = {};
  std::int64_t p = 0;
  for (; p + 2 * kNR <= k; p += 2 * kNR) {
    s0 += loadVec(a + p) * loadVec(b + p);
    s1 += loadVec(a + p + kNR) * loadVec(b + p + kNR);
  }
  for (; p + kNR <= k; p += kNR)
    s0 += loadVec(a + p) * loadVec(b + p);
  s0 += s1;
  float sum = 0.0f;
  for (int i = 0; i < kNR; ++i)
    sum += s0[i];
  for (; p < k; ++p)
    sum += a[p] * b[p];
  return sum;
}

/// The small-m path: columns [j0, j1) of every row, one dot product per element (B's rows are
/// read once per row of A, from cache).
XLC_CPU_CLONES
void gemmDots(const GemmArgs &g, std::int64_t j0, std::int64_t j1) {
  for (std::int64_t j = j0; j < j1; ++j) {
    const float *bRow = g.b + j * g.k;
    for (std::int64_t i = 0; i < g.m; ++i) {
      float v = dot(g.a + i * g.k, bRow, g.k);
      if (g.epilogue == GemmEpilogue::Bias)
        v += g.extra[j];
      else if (g.epilogue == GemmEpilogue::ResidualAdd)
        v += g.extra[i * g.n + j];
      g.d[i * g.n + j] = v;
    }
  }
}

//===----------------------------------------------------------------------===//
// Vectorised tanh for the logit soft-cap (B·S·V elements: libm's tanhf, one call per element,
// took 3–5 s at S = 8192 on the tiny model; this takes a few hundred ms)
//===----------------------------------------------------------------------===//

using Vec16i = std::int32_t __attribute__((vector_size(64)));

/// e^z for z in [−18, 0] (Cephes expf: z = n·ln2 + r with |r| ≤ ln2/2, a degree-6 polynomial
/// for e^r, accurate to ~1 ulp, then the exponent bits); NaN propagates through r.
inline __attribute__((always_inline)) Vec16 expNonPositive(Vec16 z) {
  const Vec16 t = z * 1.44269504088896341f + 0.5f;
  Vec16i n = __builtin_convertvector(t, Vec16i); // truncates toward zero
  n += (__builtin_convertvector(n, Vec16) > t);  // floor: −1 where truncation rounded up
  const Vec16 nf = __builtin_convertvector(n, Vec16);
  Vec16 r = z - nf * 0.693359375f;
  r = r - nf * -2.12194440e-4f;
  Vec16 p = 1.9875691500e-4f * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const Vec16i scale = (n + 127) << 23; // 2^n, n ≥ −26 (a normal float)
  return p * std::bit_cast<Vec16>(scale);
}

/// tanh(y) (Cephes tanhf, ~2 ulp): an odd polynomial for |y| < 0.625, (1 − e)/(1 + e) with
/// e = e^{−2|y|} above, |y| clamped to 9 (tanh(9) = 1 in fp32), the sign restored last.
/// NaN stays NaN, ±∞ gives ±1.
inline __attribute__((always_inline)) Vec16 tanhVec(Vec16 y) {
  const Vec16i bits = std::bit_cast<Vec16i>(y);
  const Vec16i sign = bits & static_cast<std::int32_t>(0x80000000u);
  const Vec16i absBits = bits & 0x7fffffff;
  Vec16 a = std::bit_cast<Vec16>(absBits);
  a = a > 9.0f ? Vec16{} + 9.0f : a; // NaN compares false and stays NaN
  const Vec16 z = a * a;
  Vec16 poly = -5.70498872745e-3f * z + 2.06390887954e-2f;
  poly = poly * z - 5.37397155531e-2f;
  poly = poly * z + 1.33314422036e-1f;
  poly = poly * z - 3.33332819422e-1f;
  const Vec16 small = a + a * z * poly;
  const Vec16 e = expNonPositive(-2.0f * a);
  const Vec16 large = (1.0f - e) / (1.0f + e);
  const Vec16 result = a < 0.625f ? small : large;
  const Vec16i out = std::bit_cast<Vec16i>(result) | sign;
  return std::bit_cast<Vec16>(out);
}

XLC_CPU_CLONES
void softCapRange(float *x, std::size_t count, float cap, float invCap) {
  std::size_t i = 0;
  for (; i + kNR <= count; i += kNR) {
    const Vec16 v = cap * tanhVec(loadVec(x + i) * invCap);
    std::memcpy(x + i, &v, sizeof v);
  }
  for (; i < count; ++i)
    x[i] = static_cast<float>(cap * std::tanh(static_cast<double>(x[i]) * invCap));
}

//===----------------------------------------------------------------------===//
// Scalar helpers (double, overflow-free; the formulas of runtime/reference/BlockOps.h)
//===----------------------------------------------------------------------===//

inline double logSigmoid(double x) {
  return x >= 0.0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}

inline double sigmoid(double x) {
  if (x >= 0.0)
    return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

/// Rows per task for a row-wise op touching |width| values per row: about 64 Ki values.
std::size_t rowChunk(std::int64_t width) {
  return static_cast<std::size_t>(std::max<std::int64_t>(1, 65536 / std::max<std::int64_t>(1, width)));
}

} // namespace

//===----------------------------------------------------------------------===//
// Public entry points
//===----------------------------------------------------------------------===//

void gemm(ThreadPool &pool, std::int64_t m, std::int64_t n, std::int64_t k, const float *a,
          const float *b, float *d, GemmEpilogue epilogue, const float *extra) {
  if (m <= 0 || n <= 0)
    return;
  const GemmArgs g{m, n, k, a, b, d, epilogue, extra};
  if (k <= 0) { // an empty product: only the epilogue
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j)
        d[i * n + j] = epilogue == GemmEpilogue::Bias          ? extra[j]
                       : epilogue == GemmEpilogue::ResidualAdd ? extra[i * n + j]
                                                               : 0.0f;
    return;
  }
  if (m < kMR) {
    // Enough columns per task to amortise the call, enough tasks to balance the threads.
    const std::size_t minCols =
        static_cast<std::size_t>(std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(1, k * m)));
    pool.parallelRange(static_cast<std::size_t>(n), minCols, [&](std::size_t j0, std::size_t j1) {
      gemmDots(g, static_cast<std::int64_t>(j0), static_cast<std::int64_t>(j1));
    });
    return;
  }
  const std::int64_t rowBlocks = (m + kMC - 1) / kMC;
  const std::int64_t colBlocks = (n + kNC - 1) / kNC;
  const std::size_t packedFloats = static_cast<std::size_t>(kKC * kNC);
  pool.parallelFor(static_cast<std::size_t>(rowBlocks * colBlocks), [&](std::size_t task) {
    // One packing buffer per thread, reused across tasks and calls.
    thread_local std::unique_ptr<float[]> packed;
    if (!packed)
      packed = std::make_unique<float[]>(packedFloats);
    // Column-block-major order: consecutive tasks share a B block (warm in the shared cache).
    const std::int64_t cb = static_cast<std::int64_t>(task) / rowBlocks;
    const std::int64_t rb = static_cast<std::int64_t>(task) % rowBlocks;
    const std::int64_t i0 = rb * kMC, i1 = std::min(m, i0 + kMC);
    const std::int64_t j0 = cb * kNC, nc = std::min(kNC, n - j0);
    gemmBlock(g, i0, i1, j0, nc, packed.get());
  });
}

void rmsNorm(ThreadPool &pool, View x, const float *weight, float *y, std::int64_t rows,
             std::int64_t dim, double eps) {
  pool.parallelRange(static_cast<std::size_t>(rows), rowChunk(dim),
                     [&](std::size_t r0, std::size_t r1) {
    for (std::int64_t r = static_cast<std::int64_t>(r0); r < static_cast<std::int64_t>(r1); ++r) {
      const float *xr = x.row(r);
      double sumSquares = 0.0;
      for (std::int64_t c = 0; c < dim; ++c)
        sumSquares += static_cast<double>(xr[c]) * xr[c];
      const double scale = 1.0 / std::sqrt(sumSquares / static_cast<double>(dim) + eps);
      float *yr = y + r * dim;
      for (std::int64_t c = 0; c < dim; ++c)
        yr[c] = static_cast<float>(xr[c] * scale * (weight ? weight[c] : 1.0f));
    }
  });
}

void normGate(ThreadPool &pool, View h, const float *weight, View o, float *out,
              std::int64_t rows, std::int64_t numHeads, std::int64_t headDim, double eps) {
  const std::int64_t width = numHeads * headDim;
  pool.parallelRange(static_cast<std::size_t>(rows), rowChunk(width),
                     [&](std::size_t r0, std::size_t r1) {
    for (std::int64_t r = static_cast<std::int64_t>(r0); r < static_cast<std::int64_t>(r1); ++r) {
      const float *hr = h.row(r);
      const float *orow = o.row(r);
      float *outRow = out + r * width;
      for (std::int64_t hd = 0; hd < numHeads; ++hd) {
        const float *x = hr + hd * headDim;
        double mean = 0.0;
        for (std::int64_t e = 0; e < headDim; ++e)
          mean += x[e];
        mean /= static_cast<double>(headDim);
        double var = 0.0; // centred: no cancellation
        for (std::int64_t e = 0; e < headDim; ++e) {
          const double c = x[e] - mean;
          var += c * c;
        }
        var /= static_cast<double>(headDim);
        const double inv = 1.0 / std::sqrt(var + eps);
        for (std::int64_t e = 0; e < headDim; ++e) {
          const std::int64_t c = hd * headDim + e;
          outRow[c] = static_cast<float>((x[e] - mean) * inv * weight[c] * sigmoid(orow[c]));
        }
      }
    }
  });
}

void swiglu(ThreadPool &pool, View gate, View up, float *out, std::int64_t rows,
            std::int64_t dim) {
  pool.parallelRange(static_cast<std::size_t>(rows), rowChunk(dim),
                     [&](std::size_t r0, std::size_t r1) {
    for (std::int64_t r = static_cast<std::int64_t>(r0); r < static_cast<std::int64_t>(r1); ++r) {
      const float *g = gate.row(r);
      const float *u = up.row(r);
      float *outRow = out + r * dim;
      for (std::int64_t c = 0; c < dim; ++c) {
        const double x = g[c];
        outRow[c] = static_cast<float>(x * sigmoid(x) * u[c]);
      }
    }
  });
}

void softCap(ThreadPool &pool, float *x, std::int64_t count, double cap) {
  const float capF = static_cast<float>(cap), invCap = static_cast<float>(1.0 / cap);
  pool.parallelRange(static_cast<std::size_t>(count), 1 << 16, [&](std::size_t i0, std::size_t i1) {
    softCapRange(x + i0, i1 - i0, capF, invCap);
  });
}

std::int64_t embedding(ThreadPool &pool, const std::int32_t *tokens, const float *table,
                       std::int64_t vocab, std::int64_t dim, float *out, std::int64_t rows) {
  std::atomic<std::int64_t> firstBad{std::numeric_limits<std::int64_t>::max()};
  pool.parallelRange(static_cast<std::size_t>(rows), rowChunk(dim),
                     [&](std::size_t r0, std::size_t r1) {
    for (std::int64_t r = static_cast<std::int64_t>(r0); r < static_cast<std::int64_t>(r1); ++r) {
      const std::int64_t token = tokens[r];
      float *outRow = out + r * dim;
      if (token < 0 || token >= vocab) {
        std::fill(outRow, outRow + dim, 0.0f);
        std::int64_t seen = firstBad.load();
        while (r < seen && !firstBad.compare_exchange_weak(seen, r)) {
        }
        continue;
      }
      std::memcpy(outRow, table + token * dim, static_cast<std::size_t>(dim) * sizeof(float));
    }
  });
  const std::int64_t bad = firstBad.load();
  return bad == std::numeric_limits<std::int64_t>::max() ? 0 : bad + 1;
}

void mlstmRecurrent(ThreadPool &pool, const MlstmCell &cell) {
  const std::int64_t pairs = cell.batch * cell.numHeads;
  if (pairs == 0 || cell.seq == 0)
    return;
  const std::int64_t dqk = cell.dqk, dv = cell.dv, nh = cell.numHeads;

  // Column blocks of C: one per pair when there are enough pairs to keep the threads busy,
  // otherwise split DV (in multiples of 16 columns) until there are about two tasks per thread.
  std::int64_t blocks = 1;
  const std::int64_t threads = static_cast<std::int64_t>(pool.size());
  if (pairs < 2 * threads)
    blocks = std::min<std::int64_t>((dv + 15) / 16, (2 * threads + pairs - 1) / pairs);
  std::int64_t blockWidth = (dv + blocks - 1) / blocks;
  blockWidth = (blockWidth + 15) / 16 * 16;
  blocks = (dv + blockWidth - 1) / blockWidth;

  // Every block task of a pair starts from the same n and m; block 0 writes the final ones back
  // to the state. Snapshot the initial values so that no task can read an already updated n, m.
  const std::vector<float> n0(cell.n, cell.n + pairs * dqk);
  const std::vector<float> m0(cell.m, cell.m + pairs);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dqk)));

  pool.parallelFor(static_cast<std::size_t>(pairs * blocks), [&](std::size_t task) {
    const std::int64_t pair = static_cast<std::int64_t>(task) / blocks;
    const std::int64_t block = static_cast<std::int64_t>(task) % blocks;
    const std::int64_t b = pair / nh, hd = pair % nh;
    const std::int64_t e0 = block * blockWidth, width = std::min(blockWidth, dv - e0);

    float *C = cell.C + pair * dqk * dv;
    std::vector<float> n(n0.begin() + pair * dqk, n0.begin() + (pair + 1) * dqk);
    std::vector<float> qHat(static_cast<std::size_t>(dqk));
    std::vector<float> num(static_cast<std::size_t>(width));
    float m = m0[pair];

    for (std::int64_t t = 0; t < cell.seq; ++t) {
      const std::int64_t row = b * cell.seq + t;
      const float *q = cell.q.row(row) + hd * dqk;
      const float *k = cell.k.row(row) + hd * dqk;
      const float *v = cell.v.row(row) + hd * dv + e0;

      // Gates in double. The new stabiliser is rounded to fp32 first and then used for both
      // exponents, so the stored (C, n, m) stay an exactly consistent stabilised state.
      double iPre = cell.igate.row(row)[hd], fPre = cell.fgate.row(row)[hd];
      if (cell.gateSoftCap > 0.0) {
        iPre = cell.gateSoftCap * std::tanh(iPre / cell.gateSoftCap);
        fPre = cell.gateSoftCap * std::tanh(fPre / cell.gateSoftCap);
      }
      if (cell.resets && cell.resets[row])
        fPre = kResetForgetGate;
      const double lf = logSigmoid(fPre);
      const double ig = cell.inputGate == InputGate::Exp ? iPre : logSigmoid(iPre);
      const float mNew = static_cast<float>(std::max(lf + m, ig));
      const float fa = static_cast<float>(std::exp(lf + m - static_cast<double>(mNew)));
      const float ia = static_cast<float>(std::exp(ig - static_cast<double>(mNew)));
      m = mNew;

      // n' = fa·n + ia·k and the denominator q̂ᵀn' (all of DQK, in every block task).
      double den = 0.0;
      for (std::int64_t d = 0; d < dqk; ++d) {
        n[d] = fa * n[d] + ia * k[d];
        qHat[d] = q[d] * scale;
        den += static_cast<double>(qHat[d]) * n[d];
      }
      // C' = fa·C + (ia·k) vᵀ and num = q̂ᵀC', one pass over this block's columns of C.
      std::fill(num.begin(), num.end(), 0.0f);
      for (std::int64_t d = 0; d < dqk; ++d) {
        float *__restrict cRow = C + d * dv + e0;
        float *__restrict acc = num.data();
        const float kd = ia * k[d], qd = qHat[d];
        for (std::int64_t e = 0; e < width; ++e) {
          const float c = fa * cRow[e] + kd * v[e];
          cRow[e] = c;
          acc[e] += qd * c;
        }
      }
      float *h = cell.h + row * nh * dv + hd * dv + e0;
      if (cell.normalizer == Normalizer::MaxAbs) {
        const double denom = std::max(std::abs(den), std::exp(-static_cast<double>(m)));
        const float divisor = static_cast<float>(denom + cell.eps);
        for (std::int64_t e = 0; e < width; ++e)
          h[e] = num[e] / divisor;
      } else {
        const float unstabilise = static_cast<float>(std::exp(static_cast<double>(m)));
        for (std::int64_t e = 0; e < width; ++e)
          h[e] = num[e] * unstabilise;
      }
    }
    if (block == 0) {
      std::copy(n.begin(), n.end(), cell.n + pair * dqk);
      cell.m[pair] = m;
    }
  });
}

} // namespace xlc::exec::cpu
