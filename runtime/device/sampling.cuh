//===- sampling.cuh - Drawing the next token of every sequence on the GPU -*- CUDA -*-===//
//
// sample_tokens: one block per sequence draws its next token from its row of logits, with exactly
// the rules of the host sampler (runtime/exec/Sampler.h): greedy is the argmax with the lowest id
// on ties; otherwise softmax(logits / T) restricted to the top k by the total order (logit
// descending, id ascending), then to the smallest prefix of that order whose mass reaches p of
// the remaining mass (Hugging Face's order), and an inverse-CDF draw with the uniform number of
// (seed, stream, step) — the same three SplitMix64 rounds, bit for bit. NaN anywhere, or no
// possible token (every logit −inf), is reported per row, not drawn from; +inf logits share all
// the mass. Only a 16-byte result per row leaves the device (SampledToken).
//
// The walk order matters, not only the kept set: the host walks the candidates in id order when
// nothing is cut (top-k off or ≥ the candidates, top-p 1) and in rank order otherwise, so a
// uniform number u selects "the first token, in that order, at which the cumulative weight
// exceeds u·total". The kernel answers exactly that question without sorting:
//
//  * Weights are the host's doubles, w = exp((double(l) − double(max))·(1/T)) ∈ [0, 1], turned
//    into 128-bit fixed point W = ⌊w·2¹⁰⁰⌋ (exact for every w ≥ 2⁻⁴⁷; a smaller w loses < 2⁻¹⁰⁰).
//    Sums of W are integer sums: exact, and the same whatever the order of the additions, so the
//    result does not depend on the launch, the block size or the atomics' order (determinism).
//  * Rank order (top-k and/or top-p): a key per candidate, (monotone bits of the logit, with
//    −0 read as +0) << id_bits | (V − 1 − id), is unique and orders candidates exactly as the
//    host's ranking (the largest key first). An MSD radix search (10-bit digits, a histogram of
//    counts, 128-bit masses and XORs of the keys in shared memory per level) finds the first key
//    K, from the largest down, whose cumulative weight Σ_{key ≥ K} W exceeds a target X: each
//    level keeps the one bucket in which the cumulative mass crosses X, until the bucket holds
//    one key (its XOR is that key). The same search with unit weights is the top-k threshold
//    (the k-th key: X = k − 1); with X = ⌈p·total⌉ − 1 it is the top-p cut (the first prefix
//    with mass ≥ p·total); with X = ⌊u·kept⌋ it is the draw. A lower bound on the key restricts
//    each search to what the previous one kept, and the totals come from the first level.
//  * Id order (no cut): the range [0, V) is split among the warps, each sums its part, the part
//    in which the cumulative weight crosses X is split again, down to 32 tokens that one warp
//    scans. No atomics; contiguous, coalesced reads.
//
// Agreement with the host: the kernel's sums are exact, the host's are sequential double sums
// with a rounding error ≲ n·2⁻⁵³ relative to the total (n kept tokens; ~1e-16 per addition), and
// CUDA's exp() may differ from the host's libm by one ulp. So the two pick the same token except
// when the uniform number falls within that rounding error (≲ 1e-16·n relative) of a bucket edge
// — the same platform caveat Sampler.h states for libm — and the same caveat applies to the
// top-p cut (p·total falling within rounding of a prefix mass). Under the SIMT emulator exp() is
// the host's, so the emulated kernel and Sampler.cpp differ only by the summation order.
//
// Launch: grid.x = rows (sequences), Config::kThreads threads, static shared memory only
// (≈ 29 KiB). Inactive rows (SamplingRow::active = 0) write token −1 and return. Options and rows
// live in device memory (written by the host before the launch), so a launch captured into a
// CUDA graph stays valid for every options and step: only the pointers are baked in.
//
// Cost per row (V = 50304): one pass for the NaN/max scan, then per search 2–5 passes over the
// keys in range (the first over every candidate, the later ones over one bucket's members);
// exp() only for keys in range. No global scratch, no sort.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_DEVICE_SAMPLING_CUH
#define XLC_DEVICE_SAMPLING_CUH

#include "xlc/device/common.cuh"

namespace xlc::device {

/// The options of one call, shared by every row (device memory; the host validated them:
/// Sampler.h validateSamplingOptions). All members 8 bytes.
struct SamplingOptionsBlock {
  double inv_temperature; ///< 1/T (unused when greedy)
  double top_p;           ///< (0, 1]; 1 = off
  int64_t top_k;          ///< 0 = off
  int64_t greedy;         ///< nonzero: argmax (temperature 0 or top-k 1)
  uint64_t seed;          ///< the seed of every stream
};

/// One row's draw: the coordinates of its uniform number, or inactive (no draw).
struct SamplingRow {
  uint64_t stream;
  uint64_t step;
  int64_t active;
};

/// One row's result. token −1: no token — inactive, or unusable logits (nan_count > 0: NaN, the
/// first at first_nan; nan_count = 0 and kept = 0: every logit −inf; kept = −1: the search found
/// no token, which the exact arithmetic rules out — an internal error).
struct SampledToken {
  int32_t token;
  int32_t nan_count;
  int32_t first_nan;
  int32_t kept; ///< tokens the draw chose among (1 when greedy); the host's distribution size
};

struct SamplingParams {
  const void *logits;                  ///< T: row r (blockIdx.x) at logits + r·row_stride
  int64_t row_stride;                  ///< elements between consecutive rows
  int64_t vocab;                       ///< V ≤ 2^27 (the fixed-point sums need V·2^100 < 2^128)
  const SamplingOptionsBlock *options; ///< one
  const SamplingRow *rows;             ///< [grid.x]
  SampledToken *out;                   ///< [grid.x]
};

/// T: the logits' element type (float or bf16); kThreads: threads per row (whole warps, ≤ 1024).
template <class TLogit, int kThreadsArg> struct SamplingConfig {
  using T = TLogit;
  static constexpr int kThreads = kThreadsArg;
  static constexpr int kSharedBytes = 0; // static shared memory only
  static_assert(kThreads % 32 == 0 && kThreads >= 32 && kThreads <= 1024,
                "sampling: whole warps, at most 1024 threads");
};

namespace sampling {

/// +∞ as an int sentinel for minima.
constexpr int kNoIndex = 0x7fffffff;
/// 10-bit digits: 1024 bins per level of the radix search.
constexpr int kDigitBits = 10;
constexpr int kBins = 1 << kDigitBits;

//===--------------------------------------------------------------------===//
// The uniform number: SplitMix64, as runtime/exec/Sampler.cpp (bit-identical)
//===--------------------------------------------------------------------===//

/// The SplitMix64 finalizer (Stafford's "Mix13").
__host__ __device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// The uniform number in [0, 1) of draw (seed, stream, step): a multiple of 2^-53.
__host__ __device__ __forceinline__ double uniform_draw(uint64_t seed, uint64_t stream,
                                                        uint64_t step) {
  constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull; // 2^64 / φ
  uint64_t h = mix64(seed + kGolden);
  h = mix64(h + (stream + 1) * kGolden);
  h = mix64(h + (step + 1) * 0xD1B54A32D192ED03ull);
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

//===--------------------------------------------------------------------===//
// 128-bit fixed point: W = ⌊w·2^100⌋
//===--------------------------------------------------------------------===//

using u64 = unsigned long long; // the type of the 64-bit atomics and shuffles

struct U128 {
  u64 lo, hi;
};

__device__ __forceinline__ U128 u128(u64 lo, u64 hi = 0) {
  U128 r;
  r.lo = lo;
  r.hi = hi;
  return r;
}
__device__ __forceinline__ U128 add(U128 a, U128 b) {
  U128 r;
  r.lo = a.lo + b.lo;
  r.hi = a.hi + b.hi + (r.lo < a.lo ? 1ull : 0ull);
  return r;
}
__device__ __forceinline__ U128 sub(U128 a, U128 b) {
  U128 r;
  r.lo = a.lo - b.lo;
  r.hi = a.hi - b.hi - (a.lo < b.lo ? 1ull : 0ull);
  return r;
}
__device__ __forceinline__ bool greater(U128 a, U128 b) {
  return a.hi > b.hi || (a.hi == b.hi && a.lo > b.lo);
}
__device__ __forceinline__ bool is_zero(U128 a) { return (a.lo | a.hi) == 0; }

constexpr double kFixedOne = 0x1p100; // weight 1 in fixed point

/// ⌊x·2^100⌋ (or ⌈x·2^100⌉ with |round_up|) for 0 ≤ x < 2^27. Every step is exact: scaling by
/// powers of two, the truncation of s/2^64 (a double's integer part), and s − hi·2^64 (the low
/// bits of s, representable); only the final conversion drops s's fraction, which exists only
/// for x < 2^-47.
__device__ __forceinline__ U128 to_fixed(double x, bool round_up) {
  const double s = x * kFixedOne;
  const u64 hi = static_cast<u64>(s * 0x1p-64);
  const double r = s - static_cast<double>(hi) * 0x1p64;
  const u64 lo = static_cast<u64>(r);
  U128 v = u128(lo, hi);
  if (round_up && r != static_cast<double>(lo))
    v = add(v, u128(1));
  return v;
}

/// The fixed-point value as a double in weight units (deterministic; ≤ 2 roundings).
__device__ __forceinline__ double to_double(U128 v) {
  return (static_cast<double>(v.hi) * 0x1p64 + static_cast<double>(v.lo)) * 0x1p-100;
}

__device__ __forceinline__ U128 shfl_up(U128 v, int delta) {
  return u128(__shfl_up_sync(0xffffffffu, v.lo, delta), __shfl_up_sync(0xffffffffu, v.hi, delta));
}
__device__ __forceinline__ U128 shfl(U128 v, int lane) {
  return u128(__shfl_sync(0xffffffffu, v.lo, lane), __shfl_sync(0xffffffffu, v.hi, lane));
}

/// Inclusive warp scan (all 32 lanes call it).
__device__ __forceinline__ U128 warp_inclusive_scan(U128 v) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int delta = 1; delta < 32; delta <<= 1) {
    const U128 other = shfl_up(v, delta);
    if (lane >= delta)
      v = add(v, other);
  }
  return v;
}

/// The warp's total in every lane.
__device__ __forceinline__ U128 warp_total(U128 v) { return shfl(warp_inclusive_scan(v), 31); }

/// Adds v to the 128-bit counter (lo, hi) in shared memory. The final value is the exact sum mod
/// 2^128 whatever the order: each carry out of lo is counted once, by the add that wrapped it.
__device__ __forceinline__ void atomic_add(u64 *lo, u64 *hi, U128 v) {
  u64 carry = 0;
  if (v.lo != 0) {
    const u64 old = atomicAdd(lo, v.lo);
    carry = old + v.lo < old ? 1ull : 0ull;
  }
  if (v.hi + carry != 0)
    atomicAdd(hi, v.hi + carry);
}

//===--------------------------------------------------------------------===//
// Targets of a search
//===--------------------------------------------------------------------===//

/// What a search looks for: the first key (largest first, or lowest id first) whose inclusive
/// cumulative weight exceeds X, with X fixed or derived from the total of the search's range.
struct Target {
  enum Kind : int { kFixed, kFloor, kCeilMinusOne } kind;
  U128 fixed;      ///< kFixed: X
  double fraction; ///< kFloor: X = ⌊f·total⌋ (a draw); kCeilMinusOne: X = ⌈f·total⌉ − 1 (top-p)
};

/// X for |total| (> 0), at most total − 1 so that a key is always found: a draw whose u·total
/// rounds up to total takes the last token of positive weight, as the host does.
__device__ __forceinline__ U128 target_x(const Target &t, U128 total) {
  U128 x = t.fixed;
  if (t.kind != Target::kFixed) {
    // As the host: f·total in double (the host's total is its own double sum).
    x = to_fixed(t.fraction * to_double(total), t.kind == Target::kCeilMinusOne);
    if (t.kind == Target::kCeilMinusOne)
      x = is_zero(x) ? x : sub(x, u128(1));
  }
  const U128 last = sub(total, u128(1));
  return greater(x, last) ? last : x;
}

//===--------------------------------------------------------------------===//
// Shared memory and one row's view
//===--------------------------------------------------------------------===//

/// What the scan of a row finds (Sampler.cpp's first pass).
struct RowFacts {
  int nan_count, first_nan; ///< first_nan = kNoIndex when none
  int possible, pos_inf;    ///< tokens that are not −inf (nor NaN); of them +inf
  float max_logit;          ///< over the possible tokens
  int argmax;               ///< the first index of max_logit; −1 when nothing is possible
};

struct SamplingShared {
  // Radix search: per bin the count, the mass (128-bit, lo/hi) and the XOR of the keys.
  unsigned int count[kBins];
  u64 mass_lo[kBins], mass_hi[kBins], key_xor[kBins];
  // Per warp: partial results.
  RowFacts facts[32];
  u64 part_lo[32], part_hi[32];
  // A search's state, broadcast by warp 0.
  u64 prefix, key, x_lo, x_hi, before_lo, before_hi, bucket_lo, bucket_hi;
  unsigned int before_count, bucket_count;
  int range_lo, range_hi, token, failed;
};

/// One row of logits as the searches see it.
template <class T> struct LogitRow {
  const T *logits;
  int vocab;
  int id_bits;       ///< bits of V − 1
  bool pos_inf;      ///< some logit is +inf: those tokens are the candidates, weight 1 each
  float max_logit;   ///< the weights' reference
  double inv_t;      ///< 1/T

  __device__ __forceinline__ float at(int i) const { return to_float(logits[i]); }
  /// A token the draw may take (NaN is ruled out before any search).
  __device__ __forceinline__ bool candidate(float l) const {
    return pos_inf ? l == kInfinity : l != -kInfinity;
  }
  /// The host's weight in fixed point (Sampler.cpp weightOf). (l − max)·(1/T) has no
  /// multiply-add to contract, so every call gives the same bits.
  __device__ __forceinline__ U128 weight(float l) const {
    if (pos_inf)
      return u128(0, 1ull << 36); // 2^100: the +inf tokens share the mass equally
    return to_fixed(exp((static_cast<double>(l) - static_cast<double>(max_logit)) * inv_t), false);
  }
  /// The rank key: larger = ranked first (logit descending, then id ascending). −0 ranks as +0.
  __device__ __forceinline__ u64 rank_key(float l, int i) const {
    uint32_t bits = __builtin_bit_cast(uint32_t, l == 0.0f ? 0.0f : l);
    bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    return (static_cast<u64>(bits) << id_bits) | static_cast<u64>(vocab - 1 - i);
  }
  __device__ __forceinline__ int id_of(u64 key) const {
    return vocab - 1 - static_cast<int>(key & ((1ull << id_bits) - 1));
  }
};

//===--------------------------------------------------------------------===//
// The scan: NaN, the maximum, the candidates (one pass, block-reduced)
//===--------------------------------------------------------------------===//

__device__ __forceinline__ RowFacts combine(RowFacts a, const RowFacts &b) {
  a.nan_count += b.nan_count;
  a.first_nan = b.first_nan < a.first_nan ? b.first_nan : a.first_nan;
  a.possible += b.possible;
  a.pos_inf += b.pos_inf;
  if (b.argmax >= 0 && (a.argmax < 0 || b.max_logit > a.max_logit ||
                        (b.max_logit == a.max_logit && b.argmax < a.argmax))) {
    a.max_logit = b.max_logit;
    a.argmax = b.argmax;
  }
  return a;
}

__device__ __forceinline__ RowFacts shfl_xor(const RowFacts &f, int mask) {
  RowFacts o;
  o.nan_count = __shfl_xor_sync(0xffffffffu, f.nan_count, mask);
  o.first_nan = __shfl_xor_sync(0xffffffffu, f.first_nan, mask);
  o.possible = __shfl_xor_sync(0xffffffffu, f.possible, mask);
  o.pos_inf = __shfl_xor_sync(0xffffffffu, f.pos_inf, mask);
  o.max_logit = __shfl_xor_sync(0xffffffffu, f.max_logit, mask);
  o.argmax = __shfl_xor_sync(0xffffffffu, f.argmax, mask);
  return o;
}

template <int kThreads, class T>
__device__ RowFacts scan_row(const T *logits, int vocab, SamplingShared &sh) {
  constexpr int kWarps = kThreads / 32;
  RowFacts f;
  f.nan_count = 0;
  f.first_nan = kNoIndex;
  f.possible = 0;
  f.pos_inf = 0;
  f.max_logit = -kInfinity;
  f.argmax = -1;
  // Each thread visits increasing ids, so its first NaN and its first maximum are its lowest.
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const float l = to_float(logits[i]);
    if (l != l) {
      if (f.nan_count++ == 0)
        f.first_nan = i;
      continue;
    }
    if (l == -kInfinity)
      continue;
    ++f.possible;
    f.pos_inf += l == kInfinity ? 1 : 0;
    if (f.argmax < 0 || l > f.max_logit) {
      f.max_logit = l;
      f.argmax = i;
    }
  }
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1)
    f = combine(f, shfl_xor(f, mask));
  if (threadIdx.x % 32 == 0)
    sh.facts[threadIdx.x / 32] = f;
  __syncthreads();
  RowFacts all = sh.facts[0];
  for (int w = 1; w < kWarps; ++w) // every thread, in the same order: the same result
    all = combine(all, sh.facts[w]);
  return all;
}

//===--------------------------------------------------------------------===//
// Rank order: the MSD radix search
//===--------------------------------------------------------------------===//

struct Selection {
  u64 key;              ///< the selected key
  U128 cumulative;      ///< Σ W over the range's keys ≥ key (inclusive)
  unsigned int rank;    ///< how many of the range's keys are ≥ key
  bool failed;          ///< no key found (cannot happen with exact sums; reported, not hidden)
};

/// The first key K from the largest down, among the candidates with key ≥ |lower|, whose
/// cumulative weight Σ_{key ≥ K} W (|weighted|) or count (unit weights) exceeds the target's X.
/// Every thread of the block calls it; every thread gets the result.
template <int kThreads, class T>
__device__ Selection radix_select(const LogitRow<T> &row, bool weighted, u64 lower,
                                  const Target &target, SamplingShared &sh) {
  const int tid = threadIdx.x, lane = tid % 32;
  const int key_bits = 32 + row.id_bits;
  u64 prefix = 0;
  int fixed = 0; // leading key bits decided so far: the range is the keys with that prefix
  U128 before = u128(0), x = u128(0), bucket = u128(0);
  unsigned int before_count = 0, bucket_count = 0;
  bool first = true;
  do {
    const int digit_bits = key_bits - fixed < kDigitBits ? key_bits - fixed : kDigitBits;
    const int shift = key_bits - fixed - digit_bits;
    const int bins = 1 << digit_bits;
    for (int b = tid; b < bins; b += kThreads) {
      sh.count[b] = 0;
      sh.mass_lo[b] = 0;
      sh.mass_hi[b] = 0;
      sh.key_xor[b] = 0;
    }
    __syncthreads();
    for (int i = tid; i < row.vocab; i += kThreads) {
      const float l = row.at(i);
      if (!row.candidate(l))
        continue;
      const u64 key = row.rank_key(l, i);
      if (key < lower || (fixed > 0 && (key >> (shift + digit_bits)) != prefix))
        continue;
      const int d = static_cast<int>((key >> shift) & static_cast<u64>(bins - 1));
      atomicAdd(&sh.count[d], 1u);
      atomicXor(&sh.key_xor[d], key);
      if (weighted)
        atomic_add(&sh.mass_lo[d], &sh.mass_hi[d], row.weight(l));
    }
    __syncthreads();
    if (tid < 32) {
      // Lane l owns positions [l·per, l·per + per) of the bins in descending digit order.
      const int per = (bins + 31) / 32;
      const int q0 = lane * per, q1 = q0 + per < bins ? q0 + per : bins;
      U128 mine = u128(0);
      unsigned int mine_count = 0;
      for (int q = q0; q < q1; ++q) {
        const int d = bins - 1 - q;
        mine_count += sh.count[d];
        mine = add(mine, weighted ? u128(sh.mass_lo[d], sh.mass_hi[d]) : u128(sh.count[d]));
      }
      const U128 inclusive = warp_inclusive_scan(mine);
      unsigned int count_inclusive = mine_count;
#pragma unroll
      for (int delta = 1; delta < 32; delta <<= 1) {
        const unsigned int other = __shfl_up_sync(0xffffffffu, count_inclusive, delta);
        if (lane >= delta)
          count_inclusive += other;
      }
      if (first) {
        const U128 total = shfl(inclusive, 31);
        x = is_zero(total) ? total : target_x(target, total);
        if (lane == 0) {
          sh.x_lo = x.lo;
          sh.x_hi = x.hi;
        }
      }
      const unsigned int crossing =
          __ballot_sync(0xffffffffu, greater(add(before, inclusive), x));
      const int owner = __ffs(crossing) - 1;
      // Written after this level's histogram barrier, when every thread is done reading the
      // last level's state; the owner clears it once its bins hold the crossing.
      if (lane == 0)
        sh.failed = 1;
      __syncwarp();
      if (lane == owner) {
        U128 run = add(before, sub(inclusive, mine));
        unsigned int run_count = before_count + count_inclusive - mine_count;
        for (int q = q0; q < q1; ++q) {
          const int d = bins - 1 - q;
          const U128 m = weighted ? u128(sh.mass_lo[d], sh.mass_hi[d]) : u128(sh.count[d]);
          if (greater(add(run, m), x)) {
            sh.prefix = (prefix << digit_bits) | static_cast<u64>(d);
            sh.before_lo = run.lo;
            sh.before_hi = run.hi;
            sh.before_count = run_count;
            sh.bucket_lo = m.lo;
            sh.bucket_hi = m.hi;
            sh.bucket_count = sh.count[d];
            sh.key = sh.key_xor[d];
            sh.failed = 0;
            break;
          }
          run = add(run, m);
          run_count += sh.count[d];
        }
      }
    }
    __syncthreads();
    if (sh.failed)
      return Selection{0, u128(0), 0, true};
    prefix = sh.prefix;
    before = u128(sh.before_lo, sh.before_hi);
    before_count = sh.before_count;
    bucket = u128(sh.bucket_lo, sh.bucket_hi);
    bucket_count = sh.bucket_count;
    x = u128(sh.x_lo, sh.x_hi);
    fixed += digit_bits;
    first = false;
    // The bins are cleared again only after the next level's first barrier, which every
    // thread reaches after reading the state above; warp 0 rewrites the state only after two.
  } while (fixed < key_bits && bucket_count > 1);
  // The bucket holds one key (keys are unique): its XOR is the key.
  return Selection{sh.key, add(before, bucket), before_count + 1, false};
}

//===--------------------------------------------------------------------===//
// Id order: contiguous ranges, narrowed by warps
//===--------------------------------------------------------------------===//

/// The first token in id order whose cumulative weight Σ_{j ≤ i} W_j (over the candidates)
/// exceeds the target's X; −1 if none (ruled out by exact sums). Every thread calls it.
template <int kThreads, class T>
__device__ int id_order_select(const LogitRow<T> &row, const Target &target, SamplingShared &sh) {
  constexpr int kWarps = kThreads / 32;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  int lo = 0, hi = row.vocab;
  U128 before = u128(0), x = u128(0);
  bool first = true;
  auto weight_at = [&](int i) {
    if (i >= hi)
      return u128(0);
    const float l = row.at(i);
    return row.candidate(l) ? row.weight(l) : u128(0);
  };
  while (hi - lo > 32) {
    // Warp w sums [lo + w·part, lo + (w + 1)·part) ∩ [lo, hi); parts are whole warps of tokens.
    const int part = round_up(ceil_div(hi - lo, kWarps), 32);
    const int a = lo + warp * part;
    U128 sum = u128(0);
    for (int i = a + lane; i < a + part && i < hi; i += 32)
      sum = add(sum, weight_at(i));
    sum = warp_total(sum);
    if (lane == 0) {
      sh.part_lo[warp] = sum.lo;
      sh.part_hi[warp] = sum.hi;
    }
    __syncthreads();
    if (tid < 32) {
      const U128 mine = lane < kWarps ? u128(sh.part_lo[lane], sh.part_hi[lane]) : u128(0);
      const U128 inclusive = warp_inclusive_scan(mine);
      if (first) {
        const U128 total = shfl(inclusive, 31);
        x = is_zero(total) ? total : target_x(target, total);
      }
      const unsigned int crossing =
          __ballot_sync(0xffffffffu, greater(add(before, inclusive), x));
      const int owner = __ffs(crossing) - 1;
      if (lane == 0)
        sh.failed = crossing == 0 ? 1 : 0;
      if (lane == owner) {
        const U128 start = add(before, sub(inclusive, mine));
        sh.range_lo = lo + owner * part;
        sh.range_hi = lo + (owner + 1) * part < hi ? lo + (owner + 1) * part : hi;
        sh.before_lo = start.lo;
        sh.before_hi = start.hi;
        sh.x_lo = x.lo;
        sh.x_hi = x.hi;
      }
    }
    __syncthreads();
    if (sh.failed)
      return -1;
    lo = sh.range_lo;
    hi = sh.range_hi;
    before = u128(sh.before_lo, sh.before_hi);
    x = u128(sh.x_lo, sh.x_hi);
    first = false;
  }
  // At most 32 tokens left: warp 0 finds the crossing lane.
  if (tid < 32) {
    const U128 mine = weight_at(lo + lane);
    const U128 inclusive = warp_inclusive_scan(mine);
    if (first) {
      const U128 total = shfl(inclusive, 31);
      x = is_zero(total) ? total : target_x(target, total);
    }
    const unsigned int crossing = __ballot_sync(0xffffffffu, greater(add(before, inclusive), x));
    if (lane == 0)
      sh.token = crossing != 0 ? lo + __ffs(crossing) - 1 : -1;
  }
  __syncthreads();
  return sh.token;
}

} // namespace sampling

//===--------------------------------------------------------------------===//
// The kernel
//===--------------------------------------------------------------------===//

template <class Config> __device__ void sample_tokens(const SamplingParams &p) {
  using T = typename Config::T;
  using namespace sampling;
  constexpr int kThreads = Config::kThreads;
  __shared__ SamplingShared sh;
  const int64_t row = blockIdx.x;
  const SamplingRow task = p.rows[row];
  SampledToken *out = p.out + row;
  auto finish = [&](int token, int nan_count, int first_nan, int kept) {
    if (threadIdx.x == 0) {
      SampledToken r;
      r.token = token;
      r.nan_count = nan_count;
      r.first_nan = first_nan;
      r.kept = kept;
      *out = r;
    }
  };
  if (task.active == 0)
    return finish(-1, 0, 0, 0);
  const int vocab = static_cast<int>(p.vocab);
  const T *logits = static_cast<const T *>(p.logits) + row * p.row_stride;

  const RowFacts facts = scan_row<kThreads>(logits, vocab, sh);
  if (facts.nan_count > 0)
    return finish(-1, facts.nan_count, facts.first_nan, 0);
  if (facts.possible == 0)
    return finish(-1, 0, 0, 0);
  const SamplingOptionsBlock o = *p.options;
  if (o.greedy != 0)
    return finish(facts.argmax, 0, 0, 1);

  LogitRow<T> r;
  r.logits = logits;
  r.vocab = vocab;
  r.id_bits = 0;
  while ((1 << r.id_bits) < vocab)
    ++r.id_bits;
  r.pos_inf = facts.pos_inf > 0;
  r.max_logit = facts.max_logit;
  r.inv_t = o.inv_temperature;
  const int candidates = r.pos_inf ? facts.pos_inf : facts.possible;
  const double u = uniform_draw(o.seed, task.stream, task.step);
  Target draw;
  draw.kind = Target::kFloor;
  draw.fixed = u128(0);
  draw.fraction = u;

  const bool cut_k = o.top_k > 0 && o.top_k < candidates;
  const bool cut_p = o.top_p < 1.0;
  if (!cut_k && !cut_p) {
    const int token = id_order_select<kThreads>(r, draw, sh);
    return finish(token, 0, 0, token >= 0 ? candidates : -1);
  }
  u64 lower = 0; // the smallest key still kept
  int kept = candidates;
  if (cut_k) {
    Target k;
    k.kind = Target::kFixed;
    k.fixed = u128(static_cast<u64>(o.top_k - 1));
    k.fraction = 0;
    const Selection s = radix_select<kThreads>(r, false, 0, k, sh);
    if (s.failed)
      return finish(-1, 0, 0, -1);
    lower = s.key;
    kept = static_cast<int>(o.top_k);
  }
  if (cut_p) {
    Target t;
    t.kind = Target::kCeilMinusOne;
    t.fixed = u128(0);
    t.fraction = o.top_p;
    const Selection s = radix_select<kThreads>(r, true, lower, t, sh);
    if (s.failed)
      return finish(-1, 0, 0, -1);
    lower = s.key;
    kept = static_cast<int>(s.rank);
  }
  const Selection s = radix_select<kThreads>(r, true, lower, draw, sh);
  if (s.failed)
    return finish(-1, 0, 0, -1);
  finish(r.id_of(s.key), 0, 0, kept);
}

} // namespace xlc::device

#endif // XLC_DEVICE_SAMPLING_CUH
