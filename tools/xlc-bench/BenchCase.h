//===- BenchCase.h - xlc-bench's cases: names, sets, call sizes ---*- C++ -*-===//
//
// A case is named by what it measures, so a name is its whole definition:
//
//   prefill-b<B>-p<P>          B prompts of P tokens each: time to first token (reset, prefill,
//                              first draw) and prefill tokens/s = B·P / that time
//   decode-b<B>-p<P>           B prompts of P tokens, then greedy decode steps at batch B:
//                              decode tokens/s = B·steps / time, and the step latency
//   profile-prefill-b<B>-p<P>  one `prefill` call of B×P tokens, every step timed (CUDA events
//                              on the GPU, the host clock on the CPU): the share of each kernel,
//                              GEMM shape and copy
//   profile-decode-b<B>        one `decode_step` call at batch B, every step timed
//   train-b<B>-s<S>            one optimizer step on B sequences of S tokens (an artifact
//                              compiled with --training): train_step, grad_norm, optimizer_step;
//                              training tokens/s = B·S / that time, and model FLOP/s at 6·N per
//                              token (N: the parameters train_step updates)
//   profile-train-b<B>-s<S>    one `train_step` call of B×S tokens, every step timed
//
// Sets name groups of cases (caseSets(): issue10, prefill, decode, profiles, all, tiny, training,
// train-tiny). A case
// list is a comma-separated mix of both; repeats are dropped, the first position kept.
//
// Call sizes. The backend of a case is created for its batch and for the tokens per sequence of
// one prefill call: the whole prompt when B·P ≤ tokensPerCall, else the largest multiple of the
// chunk size with B·seq ≤ tokensPerCall (the generator then feeds the prompt in pieces, exactly
// as xlc-run does with --max-seq). A batch above tokensPerCall cannot be prefilled at one token
// per sequence and is refused.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_XLC_BENCH_BENCHCASE_H
#define XLC_TOOLS_XLC_BENCH_BENCHCASE_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::bench {

enum class CaseKind : std::uint8_t {
  Prefill,
  Decode,
  ProfilePrefill,
  ProfileDecode,
  Train,
  ProfileTrain,
};
std::string_view caseKindName(CaseKind kind); ///< "prefill", "decode", "profile-prefill", ...

struct BenchCase {
  std::string name; ///< canonical: what caseName() gives
  CaseKind kind = CaseKind::Prefill;
  std::uint64_t batch = 1;
  std::uint64_t prompt = 0; ///< tokens per sequence (0 for profile-decode; S for training)

  bool isProfile() const {
    return kind == CaseKind::ProfilePrefill || kind == CaseKind::ProfileDecode ||
           kind == CaseKind::ProfileTrain;
  }
  /// Runs the training functions (a backend of its own, created for them).
  bool isTraining() const { return kind == CaseKind::Train || kind == CaseKind::ProfileTrain; }
  friend bool operator==(const BenchCase &, const BenchCase &) = default;
};

/// The canonical name of a case ("decode-b64-p128").
std::string caseName(CaseKind kind, std::uint64_t batch, std::uint64_t prompt);

/// Parses one case name. Throws xlc::Error naming the text and the grammar: an unknown form,
/// a number that is missing, zero, has a leading zero or exceeds kMaxBatch / kMaxPrompt.
BenchCase parseCase(std::string_view name);

/// Upper bounds of the grammar (far above anything a GPU holds; the backend's own limits and
/// its memory check come later, per case, with their own messages).
inline constexpr std::uint64_t kMaxBatch = 1u << 16;
inline constexpr std::uint64_t kMaxPrompt = 1u << 24;

struct CaseSet {
  std::string_view name;
  std::string_view description;
  std::string_view cases; ///< comma-separated case names
};
/// The named sets, in the order --help lists them.
const std::vector<CaseSet> &caseSets();

/// Expands a comma-separated list of case and set names (empty items are an error), without
/// repeats. Throws xlc::Error naming an unknown item and listing the sets.
std::vector<BenchCase> parseCaseList(std::string_view list);

/// Tokens per sequence of one prefill call for |c| (see the file comment); profile-prefill gets
/// its whole prompt (one call; refused above tokensPerCall), profile-decode one chunk (what the
/// backend's warm-up prefill needs), the training cases their S (one train_step call). Throws xlc::Error naming the case when the batch exceeds
/// tokensPerCall.
std::uint64_t seqPerCall(const BenchCase &c, std::uint64_t tokensPerCall, std::uint64_t chunk);

} // namespace xlc::bench

#endif // XLC_TOOLS_XLC_BENCH_BENCHCASE_H
