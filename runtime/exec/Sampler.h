//===- Sampler.h - Choosing the next token from logits ----------*- C++ -*-===//
//
// Greedy decoding (temperature 0) and sampling from softmax(logits / T), optionally restricted to
// the k most likely tokens (top-k) and then to the smallest set of most likely tokens whose mass
// reaches p (top-p, nucleus), in Hugging Face's order: temperature, top-k, top-p.
//
// Reproducibility: a fixed seed gives the same tokens on every platform and standard library.
// No std::*_distribution is used (their algorithms are implementation-defined); the random number
// of one draw is a pure function of (seed, stream, step): three rounds of the SplitMix64
// finalizer, whose top 53 bits make a double in [0, 1). A sequence's stream is normally its index
// in the batch, so a draw does not depend on which other sequences are batched with it or on how
// many draws came before (teacher-forced steps, finished neighbours). Ranking is by the total
// order (logit descending, token id ascending), so ties and partial sorts are deterministic too.
// The one platform dependency left is exp() in double precision (libm implementations differ by
// at most an ulp on some arguments), which moves a draw only when the uniform number falls within
// ~1e-16 of a bucket edge.
//
// Logits: NaN anywhere is an error naming the sequence and step (a broken model or kernel must
// not produce plausible-looking text). -inf marks an impossible token; +inf tokens take all the
// mass (shared equally). All -inf is an error.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_SAMPLER_H
#define XLC_RUNTIME_EXEC_SAMPLER_H

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace xlc::exec {

struct SamplingOptions {
  /// 0 = greedy (argmax, lowest id on ties); otherwise softmax(logits / temperature). ≥ 0.
  double temperature = 0.0;
  /// Keep only the k most likely tokens; 0 = no limit.
  std::uint64_t topK = 0;
  /// Keep the smallest set of most likely tokens whose probability mass is ≥ topP (after top-k);
  /// 1 = no limit. In (0, 1].
  double topP = 1.0;
  /// The seed of every stream.
  std::uint64_t seed = 0;

  /// True when sampling reduces to argmax: temperature 0, or top-k 1.
  bool isGreedy() const { return temperature == 0.0 || topK == 1; }
};

/// Throws xlc::Error naming the option and its value unless temperature ≥ 0 (finite),
/// 0 < topP ≤ 1. (topK is unsigned; 0 means off.)
void validateSamplingOptions(const SamplingOptions &options);

/// One line for humans and logs: "greedy" or "temperature 0.8, top-k 40, top-p 0.95, seed 1".
std::string describeSamplingOptions(const SamplingOptions &options);

/// The uniform number in [0, 1) of draw (seed, stream, step): a multiple of 2^-53.
/// runtime/device/sampling.cuh has the same function for the GPU, bit for bit.
double uniformDraw(std::uint64_t seed, std::uint64_t stream, std::uint64_t step);

/// The outcome of one draw from one row of logits, on the host (Sampler::draw) or on the GPU
/// (runtime/exec/cuda/DeviceSampler.h): the token, or the facts that make the row unusable.
struct Draw {
  std::int32_t token = -1;    ///< the drawn id; -1 when there is none
  std::uint32_t nanCount = 0; ///< NaN logits in the row (token -1)
  std::uint32_t firstNan = 0; ///< the first NaN's id, when nanCount > 0
  /// How many tokens the draw chose among (the size of Sampler::distribution(); 1 when greedy).
  /// With token -1 and no NaN: 0 = every logit is -inf; -1 = the device sampler found no token
  /// (an internal error).
  std::int32_t kept = 0;
  friend bool operator==(const Draw &, const Draw &) = default;
};

/// The token of |draw|, or throws the error its row stands for (xlc::Error naming the sequence
/// |stream| and |step|: NaN logits, every logit -inf). |vocab| is the row's length.
std::int32_t drawnToken(const Draw &draw, std::uint64_t vocab, std::uint64_t stream,
                        std::uint64_t step);

class Sampler {
public:
  /// Validates |options| (validateSamplingOptions).
  explicit Sampler(const SamplingOptions &options);

  const SamplingOptions &options() const { return options_; }

  /// The token drawn from |logits| (one row of fp32 logits over the vocabulary) with the random
  /// number of (seed, stream, step). |stream| and |step| also name the sequence and the step in
  /// error messages (NaN logits, all -inf, an empty row). Not thread-safe (scratch buffers);
  /// use one Sampler per thread.
  std::int32_t sample(std::span<const float> logits, std::uint64_t stream, std::uint64_t step);

  /// The same draw, with an unusable row (NaN, every logit -inf) reported in the result instead
  /// of thrown (drawnToken() turns it into sample()'s error). An empty row still throws.
  Draw draw(std::span<const float> logits, std::uint64_t stream, std::uint64_t step);

  /// The distribution sample() draws from, for tests: (token, probability) pairs of the tokens
  /// that survive top-k and top-p, most likely first, probabilities summing to 1. For greedy
  /// options, the argmax with probability 1.
  std::vector<std::pair<std::int32_t, double>>
  distribution(std::span<const float> logits, std::uint64_t stream = 0, std::uint64_t step = 0);

private:
  /// Fills candidates_ with the kept tokens, most likely first, and weights_ with their
  /// unnormalized probabilities; returns their sum. For an unusable row, leaves candidates_
  /// empty and records why in |status|.
  double keptTokens(std::span<const float> logits, std::uint64_t stream, std::uint64_t step,
                    Draw &status);

  SamplingOptions options_;
  std::vector<std::int32_t> candidates_;
  std::vector<double> weights_;
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_SAMPLER_H
