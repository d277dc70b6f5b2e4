//===- Generator.h - Prefill and decode loop over a Backend -----*- C++ -*-===//
//
// Generates continuations of a batch of prompts (token ids) on one Backend:
//
//   1. Sequence i lives in slot i (n ≤ the backend's maxBatch); slots [0, n) are reset.
//   2. Prefill (planPrefill): the prompts are fed with `prefill` calls over contiguous runs of
//      slots. The first call runs all n slots for the length every prompt has; then each maximal
//      run of contiguous sequences that still have tokens is fed, batched, the shortest remainder
//      in the run, and so on, so prompts of different lengths cost no padding and few calls (equal
//      lengths: one call; one long prompt among short ones: one batched call plus one B=1 call).
//      A run longer than the backend's maxSeq is split into pieces of at most maxSeq tokens, all
//      but the last a multiple of the artifact's chunk size. The recurrent state carries across
//      calls exactly, so the result equals one prefill of the whole prompt.
//   3. Generated token 0 of each sequence is drawn from the last-position logits of the prefill
//      call in which its prompt ends (the artifact's `prefill` computes the LM head for the last
//      position of each sequence only; its logits are [B, 1, V]). Then `decode_step` calls feed every sequence its latest
//      token and draw the next one, until each sequence has maxNewTokens tokens or (unless
//      ignoreEos) has produced the EOS id. A finished sequence inside the batch keeps being fed
//      its last token (its slots sit between live ones; its outputs are ignored); finished
//      sequences at either end of the slot range are left out of the call.
//
// The draws happen on the backend, in the same call (Backend::run with a DrawRequest): the CUDA
// backend draws on the GPU and copies back only the drawn ids, the CPU backend (and a CUDA backend
// created with host sampling) downloads the rows and uses Sampler; both give the same tokens
// (runtime/device/sampling.cuh says how exactly). The logits come to the host only for onLogits.
//
// Invariant (checked by the tests with a recording fake backend): after generate(), the tokens
// fed to slot i are exactly prompt_i followed by generated_i without its last token, and each
// generated token j was drawn from the logits of that history.
//
// Teacher forcing (parity tests): generated token j of sequence i is forcedTokens[i][j] instead
// of the drawn one while j < forcedTokens[i].size(); logits are computed and reported as usual.
//
// Prompts are used as given: nothing is prepended. Hugging Face's tokenizer for xLSTM 7B
// (GPT-NeoX-20B) adds no BOS (its post_processor is ByteLevel, which only adjusts offsets), and
// transformers' generate() feeds the ids as given; the xLSTM 7B model card asks users to prepend
// BOS (id 0) themselves. Callers decide (xlc-run --bos). An empty prompt is an error: the first
// token would have no logits to come from.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_GENERATOR_H
#define XLC_RUNTIME_EXEC_GENERATOR_H

#include "runtime/exec/Backend.h"
#include "runtime/exec/Sampler.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace xlc::exec {

/// One `prefill` call of the plan: slots [firstSlot, firstSlot + batch) are each fed their prompt
/// tokens [offset, offset + seq).
struct PrefillCall {
  std::uint64_t firstSlot = 0;
  std::uint64_t batch = 0;
  std::uint64_t offset = 0;
  std::uint64_t seq = 0;
  friend bool operator==(const PrefillCall &, const PrefillCall &) = default;
};

/// The prefill calls for prompts of |lengths| (slot i holds prompt i; every length ≥ 1) with at
/// most |maxSeq| tokens per call and the artifact's |chunkSize| (0 = no preference). In order:
/// for every slot the calls cover its tokens [0, length) exactly once, in increasing offsets.
std::vector<PrefillCall> planPrefill(std::span<const std::uint64_t> lengths, std::uint64_t maxSeq,
                                     std::uint64_t chunkSize);

/// Lengths of the pieces a run of |length| tokens is cut into: |length| itself when it fits in
/// |maxSeq|; otherwise pieces of the largest multiple of |chunkSize| ≤ maxSeq (maxSeq itself when
/// chunkSize is 0 or larger than maxSeq) until the rest fits, then the rest.
std::vector<std::uint64_t> splitPrefill(std::uint64_t length, std::uint64_t maxSeq,
                                        std::uint64_t chunkSize);

enum class StopReason : std::uint8_t {
  MaxTokens, ///< produced maxNewTokens tokens
  Eos,       ///< produced the EOS id (kept as its last token)
};
std::string_view stopReasonName(StopReason reason); ///< "max_tokens", "eos"

struct GenerateOptions {
  /// Tokens to generate per sequence (0: prefill only).
  std::uint64_t maxNewTokens = 64;
  SamplingOptions sampling;
  /// Keep generating after EOS (every sequence then gets exactly maxNewTokens tokens).
  bool ignoreEos = false;
  /// The EOS id; default: the artifact's model.eosTokenId.
  std::optional<std::int32_t> eosTokenId;
  /// Teacher forcing: empty, or one list per sequence (see the file comment).
  std::vector<std::vector<std::int32_t>> forcedTokens;
  /// The sampler's stream of each sequence: empty = its index. Running a prompt alone with the
  /// stream it had in a batch reproduces its batched samples.
  std::vector<std::uint64_t> rngStreams;
};

struct GenerateCallbacks {
  /// A token was appended to |sequence| (in step order; within a step, in sequence order).
  std::function<void(std::size_t sequence, std::int32_t token)> onToken;
  /// |sequence| finished (called once per sequence, after its last onToken).
  std::function<void(std::size_t sequence, StopReason reason)> onFinish;
  /// The logits generated token |step| of |sequence| is drawn from (step 0: the prefill's last
  /// position), before the token is taken (a NaN row is reported here before it fails the
  /// draw). Valid during the call only. Not called for finished sequences. Setting it makes
  /// every call also copy its logits to the host.
  std::function<void(std::size_t sequence, std::uint64_t step, std::span<const float> logits)>
      onLogits;
};

struct GenerateStats {
  std::uint64_t sequences = 0;
  std::uint64_t promptTokens = 0;    ///< sum of the prompt lengths
  std::uint64_t generatedTokens = 0; ///< sum of the generated lengths
  std::uint64_t prefillCalls = 0;
  std::uint64_t decodeCalls = 0;
  /// From the start of generate() (state reset included) until every sequence has its first
  /// token: prefill wall time plus sampling.
  double timeToFirstTokenSeconds = 0;
  /// From then until the end of generation.
  double decodeSeconds = 0;
  /// (generatedTokens − tokens drawn from the prefill) / decodeSeconds; 0 when nothing was
  /// decoded.
  double decodeTokensPerSecond = 0;
  double totalSeconds = 0;
};

struct SequenceResult {
  std::vector<std::int32_t> tokens; ///< the generated ids (an EOS that stopped it included)
  StopReason stop = StopReason::MaxTokens;
};

struct GenerateResult {
  std::vector<SequenceResult> sequences; ///< one per prompt, in order
  GenerateStats stats;
};

class Generator {
public:
  explicit Generator(Backend &backend) : backend_(backend) {}

  /// Generates a continuation of every prompt. Throws xlc::Error (naming the sequence and, where
  /// it applies, the token or step) on: no prompts, more prompts than the backend's slots, an
  /// empty prompt, a token id outside the vocabulary, forced tokens or RNG streams given for a
  /// different number of sequences, invalid sampling options, NaN logits, and any backend error.
  /// After an error the state of the slots is unspecified (the next generate() resets them).
  GenerateResult generate(const std::vector<std::vector<std::int32_t>> &prompts,
                          const GenerateOptions &options, const GenerateCallbacks &callbacks = {});

private:
  Backend &backend_;
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_GENERATOR_H
