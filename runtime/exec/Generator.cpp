//===- Generator.cpp - Prefill plan, sampling loop, statistics ------------===//

#include "runtime/exec/Generator.h"

#include "runtime/support/Error.h"

#include <algorithm>
#include <chrono>

namespace xlc::exec {

std::string_view stopReasonName(StopReason reason) {
  switch (reason) {
  case StopReason::MaxTokens:
    return "max_tokens";
  case StopReason::Eos:
    return "eos";
  }
  return "unknown";
}

std::vector<std::uint64_t> splitPrefill(std::uint64_t length, std::uint64_t maxSeq,
                                        std::uint64_t chunkSize) {
  check(maxSeq >= 1, "prefill plan: the maximum sequence length per call must be >= 1");
  std::vector<std::uint64_t> pieces;
  if (length == 0)
    return pieces;
  // Every piece but the last starts and ends on a chunk boundary (relative to the run's start),
  // so the chunkwise kernels see whole chunks; the last piece takes whatever is left (≤ maxSeq).
  const std::uint64_t piece =
      chunkSize != 0 && chunkSize <= maxSeq ? maxSeq / chunkSize * chunkSize : maxSeq;
  while (length > maxSeq) {
    pieces.push_back(piece);
    length -= piece;
  }
  pieces.push_back(length);
  return pieces;
}

std::vector<PrefillCall> planPrefill(std::span<const std::uint64_t> lengths, std::uint64_t maxSeq,
                                     std::uint64_t chunkSize) {
  for (std::size_t i = 0; i < lengths.size(); ++i)
    check(lengths[i] >= 1, "prefill plan: prompt {} is empty", i);
  std::vector<PrefillCall> plan;
  // A run is a maximal range of contiguous slots that still have prompt tokens; all its slots
  // have been fed the same number of tokens (|offset|): true for [0, n) at the start, and the
  // sub-runs of a run are separated by slots that finished in it. Feed the run its shortest
  // remainder, batched, then recurse into the sub-runs of the slots that have tokens left.
  struct Run {
    std::uint64_t first, end, offset;
  };
  std::vector<Run> work;
  if (!lengths.empty())
    work.push_back({0, lengths.size(), 0});
  while (!work.empty()) {
    Run run = work.back();
    work.pop_back();
    std::uint64_t common = lengths[run.first] - run.offset;
    for (std::uint64_t i = run.first; i < run.end; ++i)
      common = std::min(common, lengths[i] - run.offset);
    std::uint64_t offset = run.offset;
    for (std::uint64_t piece : splitPrefill(common, maxSeq, chunkSize)) {
      plan.push_back({run.first, run.end - run.first, offset, piece});
      offset += piece;
    }
    // Sub-runs, pushed right to left so that the left one is planned first.
    std::vector<Run> next;
    for (std::uint64_t i = run.first; i < run.end;) {
      if (lengths[i] == offset) {
        ++i;
        continue;
      }
      std::uint64_t j = i;
      while (j < run.end && lengths[j] > offset)
        ++j;
      next.push_back({i, j, offset});
      i = j;
    }
    work.insert(work.end(), next.rbegin(), next.rend());
  }
  return plan;
}

namespace {

using Clock = std::chrono::steady_clock;

double secondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

} // namespace

GenerateResult Generator::generate(const std::vector<std::vector<std::int32_t>> &prompts,
                                   const GenerateOptions &options,
                                   const GenerateCallbacks &callbacks) {
  const Clock::time_point start = Clock::now();
  const std::uint64_t n = prompts.size();
  const std::uint64_t vocab = backend_.vocabSize();
  const Limits &limits = backend_.limits();

  // Every argument is checked before the first backend call.
  check(n >= 1, "generate: no prompts");
  check(n <= limits.maxBatch,
        "generate: {} prompts but the backend was created for {} sequence slot(s); create it "
        "with a maximum batch of at least {}",
        n, limits.maxBatch, n);
  auto checkIds = [&](std::span<const std::int32_t> ids, std::string_view what, std::size_t i) {
    for (std::size_t t = 0; t < ids.size(); ++t)
      check(ids[t] >= 0 && static_cast<std::uint64_t>(ids[t]) < vocab,
            "generate: {} {}: token {} is {}, outside the vocabulary [0, {})", what, i, t, ids[t],
            vocab);
  };
  std::vector<std::uint64_t> lengths(n);
  for (std::size_t i = 0; i < n; ++i) {
    check(!prompts[i].empty(),
          "generate: prompt {} is empty; every sequence needs at least one token (e.g. the BOS "
          "id {})",
          i, backend_.artifact().model.bosTokenId);
    checkIds(prompts[i], "prompt", i);
    lengths[i] = prompts[i].size();
  }
  check(options.forcedTokens.empty() || options.forcedTokens.size() == n,
        "generate: forced tokens are given for {} sequences, but there are {} prompts",
        options.forcedTokens.size(), n);
  for (std::size_t i = 0; i < options.forcedTokens.size(); ++i)
    checkIds(options.forcedTokens[i], "forced tokens of sequence", i);
  check(options.rngStreams.empty() || options.rngStreams.size() == n,
        "generate: RNG streams are given for {} sequences, but there are {} prompts",
        options.rngStreams.size(), n);
  validateSamplingOptions(options.sampling);
  const std::int64_t eos = options.eosTokenId
                               ? static_cast<std::int64_t>(*options.eosTokenId)
                               : static_cast<std::int64_t>(backend_.artifact().model.eosTokenId);

  GenerateResult result;
  result.sequences.resize(n);
  GenerateStats &stats = result.stats;
  stats.sequences = n;
  for (std::uint64_t length : lengths)
    stats.promptTokens += length;

  std::vector<bool> finished(n, options.maxNewTokens == 0);
  auto streamOf = [&](std::size_t i) -> std::uint64_t {
    return options.rngStreams.empty() ? i : options.rngStreams[i];
  };
  // Appends generated token |step| of sequence |i| -- |draw|, made by the backend from |row|
  // (given only to onLogits), or forced -- and reports it.
  auto emit = [&](std::size_t i, std::uint64_t step, const Draw &draw,
                  std::span<const float> row) {
    if (callbacks.onLogits)
      callbacks.onLogits(i, step, row);
    // Drawn even when forced: the draw also rejects NaN logits, which forcing must not hide.
    std::int32_t token = drawnToken(draw, vocab, streamOf(i), step);
    if (!options.forcedTokens.empty() && step < options.forcedTokens[i].size())
      token = options.forcedTokens[i][step];
    SequenceResult &sequence = result.sequences[i];
    sequence.tokens.push_back(token);
    ++stats.generatedTokens;
    if (callbacks.onToken)
      callbacks.onToken(i, token);
    if (!options.ignoreEos && token == eos) {
      sequence.stop = StopReason::Eos;
      finished[i] = true;
    } else if (sequence.tokens.size() >= options.maxNewTokens) {
      sequence.stop = StopReason::MaxTokens;
      finished[i] = true;
    }
    if (finished[i] && callbacks.onFinish)
      callbacks.onFinish(i, sequence.stop);
  };

  backend_.resetStates(0, n);

  // Every call draws the tokens of its active sequences on the backend (DrawRequest): only
  // the draws come back, and the logits too only when onLogits wants them.
  const bool wantLogits = static_cast<bool>(callbacks.onLogits);
  std::vector<std::int32_t> tokens;
  std::vector<float> logits;
  std::vector<DrawRow> drawRows;
  std::vector<Draw> draws;
  DrawRequest request{options.sampling, {}, {}};
  auto rowOf = [&](std::uint64_t b) {
    return wantLogits ? std::span<const float>(logits).subspan(b * vocab, vocab)
                      : std::span<const float>();
  };

  // Prefill. A sequence's first token is drawn from the call holding its prompt's last token
  // (its last-position row of that call).
  for (const PrefillCall &call :
       planPrefill(lengths, limits.maxSeq, backend_.artifact().model.chunkSize)) {
    tokens.resize(call.batch * call.seq);
    drawRows.assign(call.batch, DrawRow{});
    bool drawing = false;
    for (std::uint64_t b = 0; b < call.batch; ++b) {
      const std::size_t i = call.firstSlot + b;
      const std::vector<std::int32_t> &prompt = prompts[i];
      std::copy_n(prompt.begin() + static_cast<std::ptrdiff_t>(call.offset), call.seq,
                  tokens.begin() + static_cast<std::ptrdiff_t>(b * call.seq));
      if (options.maxNewTokens != 0 && call.offset + call.seq == lengths[i]) {
        drawRows[b] = {streamOf(i), 0, true};
        drawing = true;
      }
    }
    draws.assign(call.batch, Draw{});
    request.rows = drawRows;
    request.results = draws;
    logits.resize(wantLogits && drawing ? call.batch * vocab : 0);
    backend_.run("prefill", call.firstSlot, call.batch, call.seq, tokens, logits,
                 Logits::LastPosition, drawing ? &request : nullptr);
    ++stats.prefillCalls;
    for (std::uint64_t b = 0; b < call.batch; ++b)
      if (drawRows[b].active)
        emit(call.firstSlot + b, 0, draws[b], rowOf(b));
  }
  if (options.maxNewTokens == 0 && callbacks.onFinish)
    for (std::size_t i = 0; i < n; ++i)
      callbacks.onFinish(i, StopReason::MaxTokens);
  const Clock::time_point firstTokens = Clock::now();
  const std::uint64_t prefillTokens = stats.generatedTokens;

  // Decode. Every live sequence has generated exactly |step| tokens when the step starts (each
  // gets one per step until it finishes). The call covers the live range [lo, hi); finished
  // sequences inside it are fed their last token again and their rows are ignored.
  for (std::uint64_t step = 1;; ++step) {
    std::uint64_t lo = 0, hi = n;
    while (lo < n && finished[lo])
      ++lo;
    if (lo == n)
      break;
    while (finished[hi - 1])
      --hi;
    const std::uint64_t batch = hi - lo;
    tokens.resize(batch);
    drawRows.resize(batch);
    for (std::uint64_t b = 0; b < batch; ++b) {
      tokens[b] = result.sequences[lo + b].tokens.back();
      drawRows[b] = {streamOf(lo + b), step, !finished[lo + b]};
    }
    draws.assign(batch, Draw{});
    request.rows = drawRows;
    request.results = draws;
    logits.resize(wantLogits ? batch * vocab : 0);
    backend_.run("decode_step", lo, batch, 1, tokens, logits, Logits::LastPosition, &request);
    ++stats.decodeCalls;
    for (std::uint64_t b = 0; b < batch; ++b)
      if (drawRows[b].active)
        emit(lo + b, step, draws[b], rowOf(b));
  }

  const Clock::time_point end = Clock::now();
  stats.timeToFirstTokenSeconds = secondsBetween(start, firstTokens);
  stats.decodeSeconds = secondsBetween(firstTokens, end);
  stats.totalSeconds = secondsBetween(start, end);
  const std::uint64_t decoded = stats.generatedTokens - prefillTokens;
  stats.decodeTokensPerSecond = decoded > 0 && stats.decodeSeconds > 0
                                    ? static_cast<double>(decoded) / stats.decodeSeconds
                                    : 0.0;
  return result;
}

} // namespace xlc::exec
