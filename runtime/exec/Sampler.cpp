//===- Sampler.cpp - Greedy, temperature, top-k and top-p sampling --------===//

#include "runtime/exec/Sampler.h"

#include "runtime/support/Error.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace xlc::exec {

namespace {

/// The SplitMix64 finalizer (Stafford's "Mix13"): a bijection of u64 whose output bits each
/// depend on every input bit.
constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull; // 2^64 / φ, SplitMix64's increment

} // namespace

void validateSamplingOptions(const SamplingOptions &options) {
  check(std::isfinite(options.temperature) && options.temperature >= 0.0,
        "sampling: temperature must be a finite number >= 0 (0 = greedy), got {}",
        options.temperature);
  // Logits are divided by the temperature: 1/T must be finite (a subnormal T would make every
  // weight exp(0·inf) = NaN).
  check(options.temperature == 0.0 || std::isfinite(1.0 / options.temperature),
        "sampling: temperature {} is too small to divide by (use 0 for greedy)",
        options.temperature);
  check(std::isfinite(options.topP) && options.topP > 0.0 && options.topP <= 1.0,
        "sampling: top-p must lie in (0, 1] (1 = off), got {}", options.topP);
}

std::string describeSamplingOptions(const SamplingOptions &options) {
  if (options.temperature == 0.0)
    return "greedy";
  std::string text = fmt::format("temperature {}", options.temperature);
  if (options.topK != 0)
    text += fmt::format(", top-k {}", options.topK);
  if (options.topP < 1.0)
    text += fmt::format(", top-p {}", options.topP);
  text += fmt::format(", seed {}", options.seed);
  if (options.topK == 1)
    text += " (top-k 1: greedy)";
  return text;
}

double uniformDraw(std::uint64_t seed, std::uint64_t stream, std::uint64_t step) {
  // Three chained SplitMix64 rounds: (seed) -> (seed, stream) -> (seed, stream, step). Each input
  // enters through an addition of a distinct odd multiple, so neighbouring streams and steps land
  // on unrelated points of the finalizer.
  std::uint64_t h = mix64(seed + kGolden);
  h = mix64(h + (stream + 1) * kGolden);
  h = mix64(h + (step + 1) * 0xD1B54A32D192ED03ull);
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

std::int32_t drawnToken(const Draw &draw, std::uint64_t vocab, std::uint64_t stream,
                        std::uint64_t step) {
  check(draw.nanCount == 0,
        "sampling: sequence {}, step {}: {} of {} logits are NaN (first at token {}); the model "
        "or a kernel produced invalid values",
        stream, step, draw.nanCount, vocab, draw.firstNan);
  check(draw.token >= 0 || draw.kept != 0,
        "sampling: sequence {}, step {}: every one of the {} logits is -inf", stream, step, vocab);
  check(draw.token >= 0 && static_cast<std::uint64_t>(draw.token) < vocab,
        "sampling: sequence {}, step {}: the device sampler returned token {} (kept {}) for a "
        "vocabulary of {}; this is a bug in xlc (run with host sampling to compare)",
        stream, step, draw.token, draw.kept, vocab);
  return draw.token;
}

Sampler::Sampler(const SamplingOptions &options) : options_(options) {
  validateSamplingOptions(options_);
}

double Sampler::keptTokens(std::span<const float> logits, std::uint64_t stream,
                           std::uint64_t step, Draw &status) {
  check(!logits.empty(), "sampling: sequence {}, step {}: empty logits row", stream, step);
  const std::size_t vocab = logits.size();
  check(vocab <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
        "sampling: a vocabulary of {} tokens does not fit int32 token ids", vocab);

  // One pass: NaN check, maximum (first index on ties), count of +inf and of possible tokens.
  std::size_t nanCount = 0, firstNan = 0, possible = 0, posInf = 0, argmax = 0;
  float maxLogit = -std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < vocab; ++i) {
    float l = logits[i];
    if (std::isnan(l)) {
      if (nanCount++ == 0)
        firstNan = i;
      continue;
    }
    if (l == -std::numeric_limits<float>::infinity())
      continue;
    ++possible;
    posInf += std::isinf(l);
    if (possible == 1 || l > maxLogit) {
      maxLogit = l;
      argmax = i;
    }
  }
  candidates_.clear();
  weights_.clear();
  if (nanCount != 0 || possible == 0) {
    status.nanCount = static_cast<std::uint32_t>(nanCount);
    status.firstNan = static_cast<std::uint32_t>(firstNan);
    status.kept = 0;
    return 0.0;
  }
  if (options_.isGreedy()) {
    candidates_.push_back(static_cast<std::int32_t>(argmax));
    weights_.push_back(1.0);
    return 1.0;
  }

  // The candidates and their unnormalized probabilities exp((l - max) / T), in double. When some
  // logits are +inf, those tokens share all the mass and everything else has none.
  const double invT = 1.0 / options_.temperature;
  auto weightOf = [&](std::int32_t token) {
    float l = logits[static_cast<std::size_t>(token)];
    if (posInf)
      return std::isinf(l) ? 1.0 : 0.0;
    return std::exp((static_cast<double>(l) - static_cast<double>(maxLogit)) * invT);
  };
  for (std::size_t i = 0; i < vocab; ++i) {
    float l = logits[i];
    if (posInf ? l == std::numeric_limits<float>::infinity()
               : l != -std::numeric_limits<float>::infinity())
      candidates_.push_back(static_cast<std::int32_t>(i));
  }

  // The ranking: logit descending, then token id ascending (a total order, so every partial sort
  // below is deterministic).
  auto ranksBefore = [&](std::int32_t a, std::int32_t b) {
    float la = logits[static_cast<std::size_t>(a)], lb = logits[static_cast<std::size_t>(b)];
    return la > lb || (la == lb && a < b);
  };

  // Top-k: the k best, in rank order.
  bool ranked = false;
  if (options_.topK != 0 && options_.topK < candidates_.size()) {
    auto kth = candidates_.begin() + static_cast<std::ptrdiff_t>(options_.topK);
    std::nth_element(candidates_.begin(), kth, candidates_.end(), ranksBefore);
    candidates_.erase(kth, candidates_.end());
    std::sort(candidates_.begin(), candidates_.end(), ranksBefore);
    ranked = true;
  }

  double total = 0;
  for (std::int32_t token : candidates_)
    total += weightOf(token);

  // Top-p: walk the candidates in rank order until the kept mass reaches p of the total. Most of
  // the mass is usually in a few tokens, so rank a growing prefix (nth_element + sort of the next
  // block) instead of sorting the whole vocabulary.
  if (options_.topP < 1.0) {
    const double target = options_.topP * total;
    double mass = 0;
    std::size_t sorted = ranked ? candidates_.size() : 0, kept = 0;
    std::size_t block = 64;
    while (kept < candidates_.size()) {
      if (kept == sorted) {
        std::size_t end = std::min(candidates_.size(), sorted + block);
        auto first = candidates_.begin() + static_cast<std::ptrdiff_t>(sorted);
        auto last = candidates_.begin() + static_cast<std::ptrdiff_t>(end);
        if (last != candidates_.end())
          std::nth_element(first, last, candidates_.end(), ranksBefore);
        std::sort(first, last, ranksBefore);
        sorted = end;
        block *= 4;
      }
      mass += weightOf(candidates_[kept++]);
      if (mass >= target)
        break;
    }
    candidates_.resize(kept);
  }

  double kept = 0;
  weights_.reserve(candidates_.size());
  for (std::int32_t token : candidates_) {
    weights_.push_back(weightOf(token));
    kept += weights_.back();
  }
  return kept;
}

std::int32_t Sampler::sample(std::span<const float> logits, std::uint64_t stream,
                             std::uint64_t step) {
  return drawnToken(draw(logits, stream, step), logits.size(), stream, step);
}

Draw Sampler::draw(std::span<const float> logits, std::uint64_t stream, std::uint64_t step) {
  Draw result;
  const double total = keptTokens(logits, stream, step, result);
  if (candidates_.empty())
    return result;
  result.kept = static_cast<std::int32_t>(candidates_.size());
  if (candidates_.size() == 1) {
    result.token = candidates_.front();
    return result;
  }
  // Inverse CDF over the kept tokens in their (deterministic) order. The running sum ends at
  // exactly |total| (same additions in the same order), so u < total always finds a token except
  // when u·total rounds up to total: then the last token with non-zero weight.
  const double u = uniformDraw(options_.seed, stream, step) * total;
  double cumulative = 0;
  std::size_t lastPositive = 0;
  for (std::size_t i = 0; i < candidates_.size(); ++i) {
    if (weights_[i] <= 0)
      continue;
    cumulative += weights_[i];
    lastPositive = i;
    if (u < cumulative) {
      result.token = candidates_[i];
      return result;
    }
  }
  result.token = candidates_[lastPositive];
  return result;
}

std::vector<std::pair<std::int32_t, double>>
Sampler::distribution(std::span<const float> logits, std::uint64_t stream, std::uint64_t step) {
  Draw status;
  const double total = keptTokens(logits, stream, step, status);
  if (candidates_.empty())
    drawnToken(status, logits.size(), stream, step); // throws the row's error
  std::vector<std::pair<std::int32_t, double>> result;
  for (std::size_t i = 0; i < candidates_.size(); ++i)
    result.emplace_back(candidates_[i], weights_[i] / total);
  std::sort(result.begin(), result.end(), [&](const auto &a, const auto &b) {
    float la = logits[static_cast<std::size_t>(a.first)];
    float lb = logits[static_cast<std::size_t>(b.first)];
    return la > lb || (la == lb && a.first < b.first);
  });
  return result;
}

} // namespace xlc::exec
