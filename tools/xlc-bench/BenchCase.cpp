//===- BenchCase.cpp - xlc-bench's cases: names, sets, call sizes ---------===//

#include "tools/xlc-bench/BenchCase.h"

#include "runtime/support/Error.h"

#include <algorithm>
#include <charconv>
#include <optional>

namespace xlc::bench {

namespace {

constexpr std::string_view kGrammar =
    "prefill-b<B>-p<P>, decode-b<B>-p<P>, profile-prefill-b<B>-p<P>, profile-decode-b<B> "
    "(B sequences, P prompt tokens each), train-b<B>-s<S> or profile-train-b<B>-s<S> (B "
    "sequences of S tokens)";

/// A positive decimal number without a leading zero, at most |max|; nullopt otherwise.
std::optional<std::uint64_t> parseCount(std::string_view text, std::uint64_t max) {
  if (text.empty() || text.front() == '0')
    return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > max)
    return std::nullopt;
  return value;
}

/// Splits on ',' (items trimmed of spaces).
std::vector<std::string_view> splitList(std::string_view list) {
  std::vector<std::string_view> items;
  std::size_t start = 0;
  while (true) {
    std::size_t end = list.find(',', start);
    std::string_view item = list.substr(start, end == std::string_view::npos ? end : end - start);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    items.push_back(item);
    if (end == std::string_view::npos)
      return items;
    start = end + 1;
  }
}

std::string setNames() {
  std::string names;
  for (const CaseSet &set : caseSets())
    names += (names.empty() ? "" : ", ") + std::string(set.name);
  return names;
}

} // namespace

std::string_view caseKindName(CaseKind kind) {
  switch (kind) {
  case CaseKind::Prefill:
    return "prefill";
  case CaseKind::Decode:
    return "decode";
  case CaseKind::ProfilePrefill:
    return "profile-prefill";
  case CaseKind::ProfileDecode:
    return "profile-decode";
  case CaseKind::Train:
    return "train";
  case CaseKind::ProfileTrain:
    return "profile-train";
  }
  return "?";
}

std::string caseName(CaseKind kind, std::uint64_t batch, std::uint64_t prompt) {
  if (kind == CaseKind::ProfileDecode)
    return fmt::format("{}-b{}", caseKindName(kind), batch);
  if (kind == CaseKind::Train || kind == CaseKind::ProfileTrain)
    return fmt::format("{}-b{}-s{}", caseKindName(kind), batch, prompt);
  return fmt::format("{}-b{}-p{}", caseKindName(kind), batch, prompt);
}

BenchCase parseCase(std::string_view name) {
  BenchCase c;
  std::string_view rest = name;
  // Longest prefixes first: "profile-prefill-" before "prefill-".
  constexpr std::pair<std::string_view, CaseKind> kPrefixes[] = {
      {"profile-prefill-", CaseKind::ProfilePrefill},
      {"profile-decode-", CaseKind::ProfileDecode},
      {"profile-train-", CaseKind::ProfileTrain},
      {"train-", CaseKind::Train},
      {"prefill-", CaseKind::Prefill},
      {"decode-", CaseKind::Decode},
  };
  bool matched = false;
  for (const auto &[prefix, kind] : kPrefixes)
    if (rest.starts_with(prefix)) {
      c.kind = kind;
      rest.remove_prefix(prefix.size());
      matched = true;
      break;
    }
  check(matched, "unknown case '{}': a case is {}, or a set: {}", name, kGrammar, setNames());
  check(rest.starts_with("b"), "case '{}': expected b<B> after '{}-' (the batch), as in {}", name,
        caseKindName(c.kind), kGrammar);
  rest.remove_prefix(1);
  const std::size_t dash = rest.find('-');
  const std::string_view batchText = rest.substr(0, dash);
  const std::optional<std::uint64_t> batch = parseCount(batchText, kMaxBatch);
  check(batch.has_value(),
        "case '{}': the batch '{}' must be a whole number from 1 to {} without leading zeros",
        name, batchText, kMaxBatch);
  c.batch = *batch;
  if (c.kind == CaseKind::ProfileDecode) {
    check(dash == std::string_view::npos,
          "case '{}': profile-decode-b<B> takes no prompt length (a decode step's time does not "
          "depend on it)",
          name);
  } else {
    // Prompt length -p<P>; a training case's sequence length -s<S>.
    const bool training = c.isTraining();
    const std::string_view marker = training ? "-s" : "-p";
    const std::string_view what = training ? "the sequence length" : "the prompt length";
    check(dash != std::string_view::npos && rest.substr(dash).starts_with(marker),
          "case '{}': expected {}<{}> after the batch ({}), as in {}", name, marker,
          training ? "S" : "P", what, kGrammar);
    const std::string_view promptText = rest.substr(dash + 2);
    const std::optional<std::uint64_t> prompt = parseCount(promptText, kMaxPrompt);
    check(prompt.has_value(),
          "case '{}': {} '{}' must be a whole number from 1 to {} without leading zeros", name,
          what, promptText, kMaxPrompt);
    c.prompt = *prompt;
  }
  c.name = caseName(c.kind, c.batch, c.prompt);
  return c;
}

const std::vector<CaseSet> &caseSets() {
  static const std::vector<CaseSet> sets = {
      {"issue10", "the rows of issue 10's table: decode at batch 1 after 2048 tokens, time to "
                  "first token at 2048 and 16384, prefill of 8 x 8192, decode at batch 64",
       "decode-b1-p2048,prefill-b1-p2048,prefill-b1-p16384,prefill-b8-p8192,decode-b64-p128"},
      {"prefill", "prefill and time to first token over prompt lengths and batches",
       "prefill-b1-p512,prefill-b1-p2048,prefill-b1-p8192,prefill-b1-p16384,prefill-b2-p32768,"
       "prefill-b8-p8192"},
      {"decode", "decode at batch 1, 8, 64 and 256 after prompts of 128 and 8192 tokens",
       "decode-b1-p128,decode-b8-p128,decode-b64-p128,decode-b256-p128,decode-b1-p8192,"
       "decode-b8-p8192,decode-b64-p8192,decode-b256-p8192"},
      {"profiles", "every step of a prefill (1 x 2048, 8 x 8192) and of a decode step (batch 1, "
                   "64) timed: the share of each kernel and GEMM shape",
       "profile-prefill-b1-p2048,profile-prefill-b8-p8192,profile-decode-b1,profile-decode-b64"},
      {"all", "issue10, prefill, decode and profiles (the default on the GPU)",
       "issue10,prefill,decode,profiles"},
      {"tiny", "a few small cases for the tiny model on the CPU (the default on the CPU)",
       "prefill-b1-p64,prefill-b2-p128,decode-b1-p32,decode-b4-p32,profile-prefill-b1-p64,"
       "profile-decode-b1"},
      {"training", "an optimizer step of xLSTM 7B's and 1.4B's training cases (1 x 4096, "
                   "4 x 4096, 8 x 512) and where a 4 x 4096 train_step's time goes (an "
                   "artifact compiled with --training)",
       "train-b1-s4096,train-b4-s4096,train-b8-s512,profile-train-b4-s4096"},
      {"train-tiny", "small training cases for the tiny model on the CPU (--training artifact)",
       "train-b2-s64,profile-train-b2-s64"},
  };
  return sets;
}

std::vector<BenchCase> parseCaseList(std::string_view list) {
  std::vector<BenchCase> cases;
  auto add = [&](BenchCase c) {
    if (std::find(cases.begin(), cases.end(), c) == cases.end())
      cases.push_back(std::move(c));
  };
  // Sets may name sets (all); |depth| stops a cycle, which the table above does not have.
  auto expand = [&](auto &&self, std::string_view text, int depth) -> void {
    check(depth < 4, "case sets nest too deeply at '{}'", text);
    for (std::string_view item : splitList(text)) {
      check(!item.empty(), "--cases '{}': an empty item (two commas, or a comma at an end)",
            list);
      auto set = std::find_if(caseSets().begin(), caseSets().end(),
                              [&](const CaseSet &s) { return s.name == item; });
      if (set != caseSets().end())
        self(self, set->cases, depth + 1);
      else
        add(parseCase(item));
    }
  };
  expand(expand, list, 0);
  return cases;
}

std::uint64_t seqPerCall(const BenchCase &c, std::uint64_t tokensPerCall, std::uint64_t chunk) {
  check(tokensPerCall >= 1, "--tokens-per-call must be at least 1");
  check(c.batch <= tokensPerCall,
        "case {}: batch {} exceeds --tokens-per-call {}: a prefill call holds at least one token "
        "per sequence; raise --tokens-per-call or lower the batch",
        c.name, c.batch, tokensPerCall);
  switch (c.kind) {
  case CaseKind::ProfileDecode:
    return std::max<std::uint64_t>(chunk, 1);
  case CaseKind::ProfilePrefill:
    check(c.batch * c.prompt <= tokensPerCall,
          "case {}: one prefill call of {} x {} = {} tokens exceeds --tokens-per-call {} (a "
          "profile times exactly one call); raise --tokens-per-call",
          c.name, c.batch, c.prompt, c.batch * c.prompt, tokensPerCall);
    return c.prompt;
  case CaseKind::Train:
  case CaseKind::ProfileTrain:
    return c.prompt;
  case CaseKind::Prefill:
  case CaseKind::Decode:
    break;
  }
  if (c.batch * c.prompt <= tokensPerCall)
    return c.prompt;
  const std::uint64_t fit = tokensPerCall / c.batch; // ≥ 1: batch ≤ tokensPerCall
  // Pieces in whole chunks when a chunk fits (the generator cuts there too).
  return chunk != 0 && fit >= chunk ? fit / chunk * chunk : fit;
}

} // namespace xlc::bench
