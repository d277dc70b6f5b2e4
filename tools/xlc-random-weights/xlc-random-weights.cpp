//===- xlc-random-weights.cpp - A model directory with random weights ----===//
//
//   xlc-random-weights <config.json> <out-dir> [--seed N] [--dtype f32|bf16] [--init test|xlstm-7b]
//                      [--fast] [--json]
//
// Reads a Hugging Face xLSTM config.json, draws random weights with the float64 reference's
// initialisation (ref::randomWeights: deterministic in the seed on every platform; never zero
// with --init test, xLSTM 7B's training initialisation exactly with --init xlstm-7b),
// and writes <out-dir>/model.safetensors under the Hugging Face tensor names (tied models store
// lm_head.weight too, as transformers' save_pretrained does) plus a copy of config.json: a model
// directory that xlc-dump --weights, xlc-compile and xlc-run accept. The file is written
// atomically. Exit status: 0 on success, 1 on any error (the reason on stderr), CLI11's codes for
// usage errors.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/RandomCheckpoint.h"
#include "runtime/support/Error.h"
#include "runtime/weights/Progress.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <map>

namespace {

using xlc::weights::formatGrouped;


std::string megabytes(std::uint64_t bytes) {
  return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6);
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"xlc-random-weights: write a Hugging Face xLSTM model directory (config.json +\n"
               "model.safetensors) with random weights drawn by xlc's float64 reference\n"
               "(deterministic in --seed, never zero), for tests and benchmarks.",
               "xlc-random-weights"};
  std::string configPath, outDir;
  std::uint64_t seed = 0;
  std::string dtypeName = "f32";
  bool json = false;
  app.add_option("config", configPath, "Hugging Face config.json of an xLSTM model")
      ->required()
      ->check(CLI::ExistingFile)
      ->type_name("<config.json>");
  app.add_option("out-dir", outDir, "Directory to write model.safetensors and config.json into "
                                    "(created if missing)")
      ->required()
      ->type_name("<out-dir>");
  app.add_option("--seed", seed, "Random seed (default 0)")->type_name("N");
  app.add_option("--dtype", dtypeName, "Tensor dtype on disk (default f32)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->type_name("f32|bf16");
  std::string init = "test";
  app.add_option("--init", init,
                 "test (default): xLSTM 7B's initialisation in spirit but never zero, so that every "
                 "tensor matters (tests, benchmarks); xlstm-7b: its initialisation exactly "
                 "(xlstm-7b.md 6.1: o-gate and i/f-gate kernels zero, gate biases -10 and "
                 "linspace(3, 6), norms 1), where training starts")
      ->check(CLI::IsMember({"test", "xlstm-7b"}))
      ->type_name("test|xlstm-7b");
  bool fast = false;
  app.add_flag("--fast", fast,
               "Draw with a counter-based generator on every core (the same initialisation, other "
               "values than the float64 reference's; for benchmark checkpoints: the 7B in seconds)");
  app.add_flag("--json", json, "Print one JSON summary on stdout instead of a line of text");
  app.footer("Exit status: 0 on success, 1 on any error, with the reason on stderr.");
  CLI11_PARSE(app, argc, argv);

  try {
    xlc::ref::RandomCheckpointOptions options;
    options.seed = seed;
    options.dtype = dtypeName == "bf16" ? xlc::weights::DType::BF16 : xlc::weights::DType::F32;
    options.fast = fast;
    options.init = init == "xlstm-7b" ? xlc::ref::InitScheme::Xlstm7b : xlc::ref::InitScheme::Test;
    std::vector<std::string> warnings;
    const xlc::ref::ModelConfig config = xlc::ref::modelConfigFromHfJson(configPath, &warnings);
    for (const std::string &w : warnings)
      std::fprintf(stderr, "xlc-random-weights: warning: %s: %s\n", configPath.c_str(), w.c_str());
    if (!json)
      std::fprintf(stderr, "xlc-random-weights: drawing %s random weights (seed %llu) for %s ...\n",
                   dtypeName.c_str(), static_cast<unsigned long long>(seed), configPath.c_str());
    const auto start = std::chrono::steady_clock::now();
    const xlc::ref::CheckpointSummary summary =
        xlc::ref::writeRandomCheckpoint(configPath, outDir, options);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    if (json) {
      nlohmann::ordered_json out;
      out["weights"] = summary.path;
      out["config"] = (std::filesystem::path(outDir) / "config.json").string();
      out["dtype"] = dtypeName;
      out["seed"] = seed;
      out["generator"] = fast ? "counter" : "reference";
      out["init"] = init;
      out["tensors"] = summary.tensors;
      out["parameters"] = summary.parameters;
      out["bytes"] = summary.bytes;
      out["embedding_dim"] = config.embeddingDim;
      out["num_blocks"] = config.numBlocks;
      out["num_heads"] = config.numHeads;
      out["vocab_size"] = config.vocabSize;
      out["tied"] = config.tieWordEmbeddings;
      out["warnings"] = warnings;
      std::cout << out.dump(2) << "\n";
    } else {
      std::printf("wrote %s: %zu tensors, %s parameters, %s (%s, seed %llu, %.1f s); config.json "
                  "copied next to it\n",
                  summary.path.c_str(), summary.tensors, formatGrouped(summary.parameters).c_str(),
                  megabytes(summary.bytes).c_str(), dtypeName.c_str(),
                  static_cast<unsigned long long>(seed), seconds);
    }
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "xlc-random-weights: error: %s\n", e.what());
    return 1;
  }
}
