//===- xlc-run.cpp - Generate text with a compiled xLSTM model ------------===//
//
//   xlc-run --model model.xlca --weights <hf-dir> --prompt "text" [--max-tokens N]
//           [--temperature T] [--top-k K] [--top-p P] [--seed S] [--device auto|cpu|cuda]
//           [--host-sampling]
//   xlc-run ... --batch-file prompts.txt          (one prompt per line, generated as one batch)
//   xlc-run ... --prompt-ids ids.txt [--force-tokens forced.txt] [--dump-logits out.npy]
//   xlc-run ... --score [--dump-logits out.npy]   (log-likelihood of the prompts, no generation)
//
// Steps: parse and check the options; read the prompts (text through the tokenizer, or token
// ids); load and validate the artifact at (number of sequences, --max-seq); open the checkpoint
// and check it against every weight binding (so a mismatched checkpoint fails before any
// allocation, listing every problem); create the CPU or CUDA backend; generate
// (runtime/exec/Generator.h); print.
//
// Functions. Generation runs the artifact's `prefill` (the LM head on each prompt's last
// position only) and `decode_step`; the backend is created for those two, so it holds B·V
// logits, not B·S·V. --score runs `score` instead (the logits of every prompt position) and
// reports the log-probability of every prompt token given the ones before it.
//
// Output. One sequence: the completion streams to stdout as it is generated (whole UTF-8
// characters only). Several: each completion is printed, labelled, when its sequence finishes.
// The statistics go to stderr. --json prints one JSON object on stdout at the end instead (and
// no streamed text): model, device, sampling, per sequence the prompt, its ids, the generated
// ids ("generated") and text and why it stopped, and the statistics.
//
// Text shown and reported is decoded with special tokens skipped, and without the EOS token that
// stopped a sequence (the ids keep it). Prompts get no BOS token unless --bos is given: that is
// what Hugging Face's tokenizer for xLSTM 7B does (the GPT-NeoX post_processor is ByteLevel and
// adds nothing), while the model card asks for BOS (id 0) to be prepended.
//
// Exit status: 0 on success, 1 on any error (the message on stderr names the file, option or
// value), 2 on usage errors.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/artifact/Validate.h"
#include "runtime/exec/Generator.h"
#include "runtime/exec/WeightAssembly.h"
#include "runtime/support/Error.h"
#include "runtime/tokenizer/Tokenizer.h"
#include "runtime/weights/Checkpoint.h"
#include "tools/support/BackendChoice.h"
#include "tools/xlc-run/RunSupport.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>

namespace {

using namespace xlc;
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string model, weights, tokenizer;
  std::string prompt, batchFile, promptIds, forceTokens, dumpLogits;
  std::string device = "auto";
  tools::BackendSettings backend; ///< --threads, --kernel-cache, --host-sampling, --gemv
  std::uint64_t maxTokens = 64;
  std::uint64_t maxSeq = 0; // 0 = derived from the prompts
  exec::SamplingOptions sampling;
  bool bos = false, ignoreEos = false, noStream = false, verbose = false, json = false;
  bool score = false;
};

/// An error in how the tool was called: exit status 2.
struct UsageError : Error {
  using Error::Error;
};

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void note(const Options &options, const std::string &line) {
  if (options.verbose)
    std::fprintf(stderr, "xlc-run: %s\n", line.c_str());
}

/// The directory the weights live in (where config.json and tokenizer.json usually are).
std::filesystem::path weightsDirectory(const std::string &weights) {
  std::error_code ec;
  std::filesystem::path path(weights);
  if (std::filesystem::is_directory(path, ec))
    return path;
  return path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
}

/// The tokenizer: --tokenizer, else tokenizer.json beside the weights. Required for text
/// prompts; optional with --prompt-ids (then no text is shown).
std::optional<Tokenizer> loadTokenizer(const Options &options, bool required) {
  if (!options.tokenizer.empty())
    return Tokenizer::fromFile(options.tokenizer);
  std::filesystem::path beside = weightsDirectory(options.weights) / "tokenizer.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(beside, ec))
    return Tokenizer::fromFile(beside.string());
  check(!required,
        "no tokenizer: '{}' does not exist; pass --tokenizer PATH (a Hugging Face "
        "tokenizer.json), or give token ids with --prompt-ids",
        beside.string());
  return std::nullopt;
}

std::uint64_t roundUp(std::uint64_t value, std::uint64_t multiple) {
  return multiple == 0 ? value : (value + multiple - 1) / multiple * multiple;
}

Json idsJson(std::span<const std::int32_t> ids) {
  Json array = Json::array();
  for (std::int32_t id : ids)
    array.push_back(id);
  return array;
}

std::string idsText(std::span<const std::int32_t> ids) {
  std::string text;
  for (std::size_t i = 0; i < ids.size(); ++i)
    text += (i ? " " : "") + std::to_string(ids[i]);
  return text;
}

/// --score: every prompt through `score` (in the generator's prefill calls: batched, pieces of at
/// most max-seq tokens), the log-probability of each prompt token after the first given the ones
/// before it (log-softmax of the previous position's logits, in double), their sum and the
/// perplexity; with --dump-logits the logits of every position as [sequences, longest, V].
int scorePrompts(const Options &options, exec::Backend &backend, const std::string &weights,
                 const exec::Limits &limits, const std::vector<std::vector<std::int32_t>> &prompts,
                 const std::vector<std::string> &promptTexts,
                 const std::optional<Tokenizer> &tokenizer, Clock::time_point start) {
  const artifact::Artifact &artifact = backend.artifact();
  const std::uint64_t n = prompts.size(), vocab = backend.vocabSize();
  std::vector<std::uint64_t> lengths;
  std::uint64_t longest = 0, promptTokens = 0;
  for (const auto &prompt : prompts) {
    lengths.push_back(prompt.size());
    longest = std::max<std::uint64_t>(longest, prompt.size());
    promptTokens += prompt.size();
  }
  std::optional<run::NpyWriter> npy;
  if (!options.dumpLogits.empty())
    npy.emplace(options.dumpLogits, n, longest, vocab);

  const Clock::time_point scoreStart = Clock::now();
  std::vector<std::vector<double>> logprobs(n);
  std::vector<std::int32_t> tokens;
  std::vector<float> logits;
  std::uint64_t calls = 0;
  backend.resetStates(0, n);
  for (const exec::PrefillCall &call :
       exec::planPrefill(lengths, limits.maxSeq, artifact.model.chunkSize)) {
    tokens.clear();
    for (std::uint64_t b = 0; b < call.batch; ++b) {
      const std::vector<std::int32_t> &prompt = prompts[call.firstSlot + b];
      tokens.insert(tokens.end(), prompt.begin() + static_cast<std::ptrdiff_t>(call.offset),
                    prompt.begin() + static_cast<std::ptrdiff_t>(call.offset + call.seq));
    }
    logits.resize(call.batch * call.seq * vocab);
    backend.run("score", call.firstSlot, call.batch, call.seq, tokens, logits,
                exec::Logits::AllPositions);
    ++calls;
    for (std::uint64_t b = 0; b < call.batch; ++b) {
      const std::size_t i = call.firstSlot + b;
      for (std::uint64_t t = 0; t < call.seq; ++t) {
        const std::uint64_t position = call.offset + t;
        std::span<const float> row(logits.data() + (b * call.seq + t) * vocab, vocab);
        if (npy)
          npy->write(i, position, row);
        if (position + 1 >= lengths[i])
          continue;
        double top = -std::numeric_limits<double>::infinity(), sum = 0;
        for (float x : row)
          top = std::max(top, static_cast<double>(x));
        for (float x : row)
          sum += std::exp(static_cast<double>(x) - top);
        check(std::isfinite(top) && std::isfinite(sum),
              "--score: the logits of sequence {} at position {} are not finite", i, position);
        logprobs[i].push_back(static_cast<double>(row[prompts[i][position + 1]]) - top -
                              std::log(sum));
      }
    }
  }
  const double scoreMs = msSince(scoreStart);
  if (npy) {
    const std::vector<float> nan(vocab, std::numeric_limits<float>::quiet_NaN());
    for (std::size_t i = 0; i < n; ++i)
      for (std::uint64_t position = lengths[i]; position < longest; ++position)
        npy->write(i, position, nan);
    npy->commit();
  }

  auto sum = [](const std::vector<double> &v) {
    double total = 0;
    for (double x : v)
      total += x;
    return total;
  };
  std::fprintf(stderr,
               "xlc-run: scored %llu prompt tokens (%llu sequences) in %llu calls, %.1f ms; total "
               "%.1f ms; device: %s\n",
               static_cast<unsigned long long>(promptTokens), static_cast<unsigned long long>(n),
               static_cast<unsigned long long>(calls), scoreMs, msSince(start),
               backend.description().c_str());
  if (!options.json) {
    for (std::size_t i = 0; i < n; ++i) {
      const double ll = sum(logprobs[i]);
      std::printf("sequence %zu: %zu tokens scored, log-likelihood %.6f%s\n", i,
                  logprobs[i].size(), ll,
                  logprobs[i].empty()
                      ? ""
                      : fmt::format(", perplexity {:.6f}",
                                    std::exp(-ll / static_cast<double>(logprobs[i].size())))
                            .c_str());
    }
    return 0;
  }
  Json sequences = Json::array();
  for (std::size_t i = 0; i < n; ++i) {
    Json entry;
    entry["index"] = i;
    entry["prompt"] = promptTexts.empty() ? Json(nullptr) : Json(promptTexts[i]);
    entry["prompt_ids"] = idsJson(prompts[i]);
    entry["token_logprobs"] = logprobs[i];
    const double ll = sum(logprobs[i]);
    entry["log_likelihood"] = ll;
    entry["perplexity"] = logprobs[i].empty()
                              ? Json(nullptr)
                              : Json(std::exp(-ll / static_cast<double>(logprobs[i].size())));
    sequences.push_back(std::move(entry));
  }
  (void)tokenizer;
  Json document;
  document["model"] = artifact.model.name;
  document["artifact"] = options.model;
  document["weights"] = weights;
  document["device"] = {{"kind", std::string(backend.kind())},
                        {"description", backend.description()}};
  document["max_seq"] = limits.maxSeq;
  document["sequences"] = std::move(sequences);
  document["stats"] = {{"sequences", n},
                       {"prompt_tokens", promptTokens},
                       {"score_calls", calls},
                       {"score_ms", scoreMs},
                       {"total_ms", msSince(start)}};
  document["logits_file"] = options.dumpLogits.empty() ? Json(nullptr) : Json(options.dumpLogits);
  std::cout << document.dump(2, ' ', false, Json::error_handler_t::replace) << '\n';
  return 0;
}

int runGeneration(const Options &options) {
  const Clock::time_point start = Clock::now();
  const bool textPrompts = options.promptIds.empty();

  // Inputs first: the cheap checks fail before anything large is read.
  artifact::Artifact artifact = artifact::loadArtifact(options.model);
  const artifact::ModelInfo &model = artifact.model;
  std::optional<Tokenizer> tokenizer = loadTokenizer(options, textPrompts);

  std::vector<std::string> promptTexts;
  std::vector<std::vector<std::int32_t>> prompts;
  if (textPrompts) {
    if (!options.batchFile.empty())
      promptTexts = run::readPromptLines(options.batchFile);
    else
      promptTexts.push_back(options.prompt);
    for (const std::string &text : promptTexts) {
      std::vector<std::int32_t> ids;
      for (TokenId id : tokenizer->encode(text))
        ids.push_back(static_cast<std::int32_t>(id));
      prompts.push_back(std::move(ids));
    }
  } else {
    prompts = run::readIdLines(options.promptIds);
  }
  if (options.bos)
    for (auto &prompt : prompts)
      prompt.insert(prompt.begin(), static_cast<std::int32_t>(model.bosTokenId));
  for (std::size_t i = 0; i < prompts.size(); ++i)
    check(!prompts[i].empty(),
          "prompt {} is empty after tokenization; give some text, or pass --bos to start from "
          "the BOS token (id {})",
          i, model.bosTokenId);

  exec::GenerateOptions generate;
  generate.maxNewTokens = options.maxTokens;
  generate.sampling = options.sampling;
  generate.ignoreEos = options.ignoreEos || !options.dumpLogits.empty();
  if (!options.forceTokens.empty()) {
    generate.forcedTokens = run::readIdLines(options.forceTokens);
    check(generate.forcedTokens.size() == prompts.size(),
          "{}: {} lines of forced tokens, but there are {} prompts (one line per sequence)",
          options.forceTokens, generate.forcedTokens.size(), prompts.size());
  }

  const std::uint64_t n = prompts.size();
  std::uint64_t longest = 0;
  for (const auto &prompt : prompts)
    longest = std::max<std::uint64_t>(longest, prompt.size());
  // Generation calls prefill (logits of each prompt's last position only) and decode_step:
  // only their logits are allocated, B·V floats, whatever the prompt length. Scoring calls
  // score, whose logits are B·S·V floats.
  if (options.score)
    check(artifact.findFunction("score") != nullptr,
          "--score: {} has no 'score' function (the logits of every position); recompile the "
          "model with this release's xlc-compile",
          options.model);
  const exec::Limits limits{
      n,
      options.maxSeq ? options.maxSeq
                     : roundUp(std::min<std::uint64_t>(longest, 2048), model.chunkSize),
      options.score ? std::vector<std::string>{"score"}
                    : std::vector<std::string>{"prefill", "decode_step"}};
  const std::string device = tools::chooseDevice(options.device, "xlc-run");

  artifact::validate(artifact, limits.maxBatch, limits.maxSeq);
  note(options, fmt::format("artifact {}: model '{}', vocabulary {}, chunk {}; {} sequence(s), "
                            "longest prompt {} tokens, up to {} tokens per prefill call",
                            options.model, model.name, model.vocabSize, model.chunkSize, n, longest,
                            limits.maxSeq));
  weights::Checkpoint checkpoint = weights::Checkpoint::open(options.weights);
  exec::checkWeights(artifact, checkpoint);
  note(options,
       fmt::format("weights {}: {} tensors, {} bytes; they match the artifact", checkpoint.path(),
                   checkpoint.tensors().size(), checkpoint.totalBytes()));
  // Which tensor the LM head comes from (tied embeddings: runtime/exec/WeightAssembly.h).
  for (const std::string &line : exec::describeLmHead(artifact, checkpoint))
    note(options, line);

  Clock::time_point backendStart = Clock::now();
  tools::BackendSettings settings = options.backend;
  settings.verbose = options.verbose;
  std::unique_ptr<exec::Backend> backend =
      tools::createBackend(device, artifact, checkpoint, limits, settings);
  note(options, fmt::format("backend ready in {:.0f} ms: {}", msSince(backendStart),
                            backend->description()));
  if (options.score)
    return scorePrompts(options, *backend, checkpoint.path(), limits, prompts, promptTexts,
                        tokenizer, start);
  note(options, fmt::format("sampling: {}", exec::describeSamplingOptions(options.sampling)));

  // Output while generating.
  const std::int64_t eos = static_cast<std::int64_t>(model.eosTokenId);
  const bool stream = !options.json && !options.noStream && n == 1;
  std::optional<run::TextStream> textStream;
  if (stream && tokenizer)
    textStream.emplace(*tokenizer, stdout);
  std::optional<run::NpyWriter> npy;
  if (!options.dumpLogits.empty())
    npy.emplace(options.dumpLogits, options.maxTokens, n, backend->vocabSize());

  std::vector<std::vector<std::int32_t>> streamed(n);
  exec::GenerateCallbacks callbacks;
  callbacks.onToken = [&](std::size_t sequence, std::int32_t token) {
    streamed[sequence].push_back(token);
    if (!stream || (!generate.ignoreEos && token == eos))
      return; // the EOS that stops a sequence is not shown
    if (textStream) {
      textStream->add(static_cast<TokenId>(token));
    } else {
      std::printf("%s%d", streamed[sequence].size() > 1 ? " " : "", token);
      std::fflush(stdout);
    }
  };
  // Text of a finished sequence, without the EOS that stopped it.
  auto completion = [&](std::size_t sequence, exec::StopReason reason) {
    std::span<const std::int32_t> ids = streamed[sequence];
    if (reason == exec::StopReason::Eos)
      ids = ids.first(ids.size() - 1);
    return tokenizer ? run::displayText(*tokenizer, ids) : idsText(ids);
  };
  callbacks.onFinish = [&](std::size_t sequence, exec::StopReason reason) {
    if (options.json)
      return;
    if (stream) {
      if (textStream)
        textStream->finish();
      std::printf("\n");
    } else if (n > 1 || options.noStream) {
      std::printf("%s%s\n",
                  n > 1 ? fmt::format("=== sequence {} ({}, {} tokens) ===\n", sequence,
                                      exec::stopReasonName(reason), streamed[sequence].size())
                              .c_str()
                        : "",
                  completion(sequence, reason).c_str());
    }
    std::fflush(stdout);
  };
  if (npy)
    callbacks.onLogits = [&](std::size_t sequence, std::uint64_t step,
                             std::span<const float> logits) { npy->write(step, sequence, logits); };

  exec::Generator generator(*backend);
  exec::GenerateResult result = generator.generate(prompts, generate, callbacks);
  if (npy)
    npy->commit();

  const exec::GenerateStats &stats = result.stats;
  const std::uint64_t decoded =
      stats.generatedTokens -
      std::min<std::uint64_t>(stats.generatedTokens, options.maxTokens ? n : 0);
  std::fprintf(stderr,
               "xlc-run: %llu prompt tokens, %llu generated tokens; time to first token %.1f ms; "
               "decode %.1f tokens/s (%llu tokens in %.1f ms); total %.1f ms; device: %s\n",
               static_cast<unsigned long long>(stats.promptTokens),
               static_cast<unsigned long long>(stats.generatedTokens),
               stats.timeToFirstTokenSeconds * 1e3, stats.decodeTokensPerSecond,
               static_cast<unsigned long long>(decoded), stats.decodeSeconds * 1e3,
               stats.totalSeconds * 1e3, backend->description().c_str());

  if (options.json) {
    Json sequences = Json::array();
    for (std::size_t i = 0; i < n; ++i) {
      const exec::SequenceResult &sequence = result.sequences[i];
      Json entry;
      entry["index"] = i;
      entry["prompt"] = textPrompts ? Json(promptTexts[i]) : Json(nullptr);
      entry["prompt_ids"] = idsJson(prompts[i]);
      entry["generated"] = idsJson(sequence.tokens);
      entry["text"] = tokenizer ? Json(completion(i, sequence.stop)) : Json(nullptr);
      entry["stop"] = std::string(exec::stopReasonName(sequence.stop));
      sequences.push_back(std::move(entry));
    }
    Json document;
    document["model"] = model.name;
    document["artifact"] = options.model;
    document["weights"] = checkpoint.path();
    document["device"] = {{"kind", std::string(backend->kind())},
                          {"description", backend->description()}};
    document["sampling"] = {{"temperature", options.sampling.temperature},
                            {"top_k", options.sampling.topK},
                            {"top_p", options.sampling.topP},
                            {"seed", options.sampling.seed},
                            {"greedy", options.sampling.isGreedy()},
                            {"drawn_on", backend->kind() == "cuda" && !options.backend.hostSampling
                                             ? "gpu"
                                             : "host"}};
    document["max_tokens"] = options.maxTokens;
    document["ignore_eos"] = generate.ignoreEos;
    document["eos_token_id"] = model.eosTokenId;
    document["max_seq"] = limits.maxSeq;
    document["sequences"] = std::move(sequences);
    document["stats"] = {{"sequences", stats.sequences},
                         {"prompt_tokens", stats.promptTokens},
                         {"generated_tokens", stats.generatedTokens},
                         {"prefill_calls", stats.prefillCalls},
                         {"decode_calls", stats.decodeCalls},
                         {"time_to_first_token_ms", stats.timeToFirstTokenSeconds * 1e3},
                         {"decode_ms", stats.decodeSeconds * 1e3},
                         {"decode_tokens_per_s", stats.decodeTokensPerSecond},
                         {"generate_ms", stats.totalSeconds * 1e3},
                         {"total_ms", msSince(start)}};
    document["logits_file"] = options.dumpLogits.empty() ? Json(nullptr) : Json(options.dumpLogits);
    std::cout << document.dump(2, ' ', false, Json::error_handler_t::replace) << '\n';
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"xlc-run: generate text with a compiled xLSTM model (an xlc-compile artifact and "
               "a Hugging Face safetensors checkpoint) on the CPU or a CUDA GPU.",
               "xlc-run"};
  Options options;
  app.add_option("--model", options.model, "Compiled artifact (xlc-compile -o model.xlca)")
      ->type_name("<artifact.xlca>")
      ->required();
  app.add_option("--weights", options.weights,
                 "Checkpoint: a directory with model.safetensors or model.safetensors.index.json "
                 "(+ shards), a .safetensors file or an index file")
      ->type_name("<hf-dir>")
      ->required();
  app.add_option("--tokenizer", options.tokenizer,
                 "Hugging Face tokenizer.json (default: tokenizer.json beside the weights)")
      ->type_name("<tokenizer.json>");
  CLI::Option *prompt =
      app.add_option("--prompt", options.prompt, "The prompt text")->type_name("<text>");
  CLI::Option *batch =
      app.add_option("--batch-file", options.batchFile,
                     "Prompts, one per line (empty lines skipped), generated as one batch")
          ->type_name("<file>")
          ->excludes(prompt);
  CLI::Option *ids =
      app.add_option("--prompt-ids", options.promptIds,
                     "Token ids instead of text: one sequence per line, ids separated by spaces "
                     "or commas (no tokenizer needed)")
          ->type_name("<file>")
          ->excludes(prompt)
          ->excludes(batch);
  app.add_option("--max-tokens", options.maxTokens, "Tokens to generate per sequence")
      ->capture_default_str();
  app.add_option("--temperature", options.sampling.temperature,
                 "Sampling temperature; 0 = greedy (argmax)")
      ->capture_default_str();
  app.add_option("--top-k", options.sampling.topK, "Sample among the k most likely tokens; 0 = off")
      ->capture_default_str();
  app.add_option("--top-p", options.sampling.topP,
                 "Sample among the smallest set of most likely tokens with mass >= p; 1 = off")
      ->capture_default_str();
  app.add_option("--seed", options.sampling.seed,
                 "Seed of the sampler (the same seed gives the same tokens on every platform)")
      ->capture_default_str();
  tools::addBackendOptions(app, options.device, options.backend);
  app.add_option("--max-seq", options.maxSeq,
                 "Tokens per sequence per prefill call (longer prompts are fed in pieces); "
                 "default: the longest prompt, at most 2048, rounded up to the chunk size")
      ->check(CLI::PositiveNumber);
  app.add_flag("--bos", options.bos,
               "Prepend the model's BOS token (id 0 for xLSTM 7B, as its model card asks) to "
               "every prompt");
  app.add_flag("--ignore-eos", options.ignoreEos, "Keep generating after the EOS token");
  app.add_flag("--no-stream", options.noStream,
               "Print a single sequence's completion at the end instead of as it is generated");
  app.add_flag("--verbose", options.verbose, "Report each loading step on stderr");
  app.add_flag("--json", options.json,
               "Print one JSON object on stdout at the end (no streamed text)");
  app.add_option("--force-tokens", options.forceTokens,
                 "Teacher forcing (parity tests): one line of ids per sequence; generated token "
                 "i is the i-th id instead of the sampled one")
      ->type_name("<file>");
  app.add_option("--dump-logits", options.dumpLogits,
                 "Write the logits as a float32 .npy [max-tokens, sequences, vocabulary]: row i "
                 "holds the logits generated token i was drawn from (implies --ignore-eos). "
                 "With --score: [sequences, longest prompt, vocabulary], the logits at every "
                 "prompt position (NaN past the end of a shorter prompt)")
      ->type_name("<out.npy>");
  CLI::Option *score =
      app.add_flag("--score", options.score,
                   "Score the prompts instead of generating: run the model's 'score' function "
                   "(the logits of every prompt position; generation computes them for the last "
                   "position only) and print per sequence the log-likelihood of its tokens after "
                   "the first and the perplexity (--json: also every token's log-probability)");
  app.footer("Exit status: 0 on success, 1 on errors (the message names the file, option or "
             "value), 2 on usage errors.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  try {
    if (score->count() > 0)
      for (const char *generationOnly : {"--force-tokens", "--max-tokens", "--temperature",
                                         "--top-k", "--top-p", "--seed", "--ignore-eos",
                                         "--no-stream", "--host-sampling"})
        if (app.get_option(generationOnly)->count() > 0)
          throw UsageError(fmt::format("--score scores the prompts and generates nothing; {} "
                                       "applies to generation only",
                                       generationOnly));
    if (prompt->count() == 0 && batch->count() == 0 && ids->count() == 0)
      throw UsageError("give a prompt: --prompt TEXT, --batch-file FILE or --prompt-ids FILE");
    try {
      exec::validateSamplingOptions(options.sampling);
    } catch (const Error &e) {
      throw UsageError(e.what());
    }
    return runGeneration(options);
  } catch (const UsageError &e) {
    std::fprintf(stderr, "xlc-run: error: %s\nRun with --help for more information.\n", e.what());
    return 2;
  } catch (const Error &e) {
    std::fprintf(stderr, "xlc-run: error: %s\n", e.what());
    return 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "xlc-run: error: %s\n", e.what());
    return 1;
  }
}
