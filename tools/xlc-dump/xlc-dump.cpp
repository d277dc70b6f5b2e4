//===- xlc-dump.cpp - Inspect xlc inputs for humans and scripts -----------===//
//
//   xlc-dump <artifact.xlca> [--compile-kernels] [--json]
//   xlc-dump --weights <dir|file> [--config <config.json> | --no-config] [--check-values] [--json]
//
// Artifact mode loads and validates a compiled artifact and prints its functions, kernels with
// their tile configurations, buffer plan with the arena size, and weight bindings;
// --compile-kernels also compiles every kernel with NVRTC for the artifact's architecture (no
// GPU needed) and reports each one's time and binary size.
//
// Weights mode opens a safetensors checkpoint (a directory with model.safetensors or
// model.safetensors.index.json + shards, a .safetensors file, or an index file), validates every
// file, lists every tensor (name, dtype, shape, bytes) sorted by name with totals, and checks the
// names and shapes against the xLSTM config.json next to the weights (or the one given).
// --check-values also reads every value and rejects NaN or Inf. Exit status: 0 when everything
// checks, 1 on any defect (the reason goes to stderr), CLI11's codes for usage errors.
//
// Each kind of input is one mode with its own options struct and run function; main() parses
// the command line and dispatches. Another input kind (a compiled artifact as a positional
// argument) is added as one more mode next to --weights.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/artifact/Summary.h"
#include "runtime/cuda/Nvrtc.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/support/Error.h"
#include "runtime/support/Json.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/Expected.h"
#include "runtime/weights/Progress.h"
#include "runtime/weights/XlstmWeights.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

namespace {

using xlc::weights::formatGrouped;

using namespace xlc::weights;
using Json = nlohmann::ordered_json;

struct WeightsOptions {
  std::string path;
  std::string config;
  bool noConfig = false;
  bool checkValues = false;
  bool json = false;
};


/// A tensor name fit for a terminal: as is, or quoted and escaped if it has control characters.
std::string printable(const std::string &name) {
  bool plain = std::none_of(name.begin(), name.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
  return plain ? name : xlc::json::quoteText(name);
}

std::string layoutName(const Checkpoint &checkpoint) {
  return checkpoint.layout() == Checkpoint::Layout::Sharded ? "sharded" : "single";
}

/// The config.json to check against, if any: --config, else config.json beside the weights.
std::optional<std::string> findConfig(const WeightsOptions &options, const Checkpoint &checkpoint) {
  if (!options.config.empty())
    return options.config;
  if (options.noConfig)
    return std::nullopt;
  std::filesystem::path beside = std::filesystem::path(checkpoint.directory()) / "config.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(beside, ec))
    return beside.string();
  return std::nullopt;
}

struct ValueReport {
  std::uint64_t checkedTensors = 0, checkedValues = 0, skippedTensors = 0;
  std::vector<std::string> bad; // "'name': 3 NaN, 1 Inf"
};

/// Reads every float tensor through the f32 conversion, counting NaN and Inf.
ValueReport checkValues(const Checkpoint &checkpoint) {
  ValueReport report;
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  std::vector<float> buffer;
  checkpoint.forEachTensor(
      [&](const TensorInfo &t, std::span<const std::uint8_t> data) {
        if (!isConvertibleFloat(t.dtype)) {
          ++report.skippedTensors;
          return;
        }
        std::size_t size = dtypeSize(t.dtype);
        std::uint64_t nan = 0, inf = 0;
        for (std::uint64_t begin = 0; begin < t.numElements; begin += kChunk) {
          std::size_t count =
              static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, t.numElements - begin));
          buffer.resize(count);
          convertToF32(t.dtype, data.subspan(begin * size, count * size), buffer,
                       fmt::format("tensor {}", xlc::json::quoteText(t.name)));
          for (float v : buffer) {
            nan += std::isnan(v);
            inf += std::isinf(v);
          }
        }
        ++report.checkedTensors;
        report.checkedValues += t.numElements;
        if (nan || inf)
          report.bad.push_back(
              fmt::format("{}: {} NaN, {} Inf", xlc::json::quoteText(t.name), nan, inf));
      },
      "checking values");
  return report;
}

int runWeights(const WeightsOptions &options) {
  Checkpoint checkpoint = Checkpoint::open(options.path);
  const std::vector<TensorInfo> &tensors = checkpoint.tensors();
  std::optional<std::string> error;
  Json document;

  document["path"] = checkpoint.path();
  document["layout"] = layoutName(checkpoint);
  Json files = Json::array();
  for (std::size_t i = 0; i < checkpoint.files().size(); ++i) {
    const SafetensorsFile &file = checkpoint.files()[i];
    std::size_t count = std::count_if(tensors.begin(), tensors.end(),
                                      [&](const TensorInfo &t) { return t.file == i; });
    files.push_back({{"path", file.path()},
                     {"tensors", count},
                     {"bytes", file.fileSize()},
                     {"metadata", file.metadata()}});
  }
  document["files"] = std::move(files);
  Json list = Json::array();
  for (const TensorInfo &t : tensors)
    list.push_back({{"name", t.name},
                    {"dtype", std::string(dtypeName(t.dtype))},
                    {"shape", t.shape},
                    {"bytes", t.byteSize},
                    {"file", t.file}});
  document["tensors"] = std::move(list);
  document["totals"] = {{"tensors", tensors.size()},
                        {"parameters", checkpoint.totalParameters()},
                        {"bytes", checkpoint.totalBytes()}};

  if (!options.json) {
    std::printf("checkpoint %s (%s, %zu file%s)\n", checkpoint.path().c_str(),
                layoutName(checkpoint).c_str(), checkpoint.files().size(),
                checkpoint.files().size() == 1 ? "" : "s");
    std::size_t nameWidth = 4, shapeWidth = 5;
    for (const TensorInfo &t : tensors) {
      nameWidth = std::max(nameWidth, printable(t.name).size());
      shapeWidth = std::max(shapeWidth, shapeString(t.shape).size());
    }
    std::printf("  %-*s  %-7s  %-*s  %s\n", static_cast<int>(nameWidth), "name", "dtype",
                static_cast<int>(shapeWidth), "shape", "bytes");
    for (const TensorInfo &t : tensors)
      std::printf("  %-*s  %-7s  %-*s  %s\n", static_cast<int>(nameWidth),
                  printable(t.name).c_str(), std::string(dtypeName(t.dtype)).c_str(),
                  static_cast<int>(shapeWidth), shapeString(t.shape).c_str(),
                  formatGrouped(t.byteSize).c_str());
    if (checkpoint.layout() == Checkpoint::Layout::Sharded)
      for (const auto &file : document["files"])
        std::printf("  file %s: %s tensor%s, %s\n", file["path"].get<std::string>().c_str(),
                    formatGrouped(file["tensors"].get<std::uint64_t>()).c_str(),
                    file["tensors"].get<std::uint64_t>() == 1 ? "" : "s",
                    formatBytes(file["bytes"].get<std::uint64_t>()).c_str());
    std::printf("%zu tensor%s, %s parameters, %s bytes (%s)\n", tensors.size(),
                tensors.size() == 1 ? "" : "s", formatGrouped(checkpoint.totalParameters()).c_str(),
                formatGrouped(checkpoint.totalBytes()).c_str(),
                formatBytes(checkpoint.totalBytes()).c_str());
    std::fflush(stdout);
  }

  // Names and shapes against the model's config.
  document["config"] = nullptr;
  if (std::optional<std::string> configPath = findConfig(options, checkpoint)) {
    try {
      xlc::config::ModelConfig config;
      std::vector<ExpectedTensor> expected =
          xlstmExpectedTensorsForConfigFile(*configPath, &config);
      document["config"] = {{"path", *configPath},
                            {"summary", config.summary()},
                            {"expected_tensors", expected.size()},
                            {"expected_parameters", parameterCount(expected)}};
      checkTensors(checkpoint, expected,
                   fmt::format("{} ({})", std::filesystem::path(*configPath).filename().string(),
                               config.summary()));
      document["config"]["matches"] = true;
      if (!options.json)
        std::printf("config %s: %s; every tensor matches config.json\n", configPath->c_str(),
                    config.summary().c_str());
    } catch (const xlc::Error &e) {
      if (document["config"].is_object())
        document["config"]["matches"] = false;
      error = e.what();
    }
  } else if (!options.json) {
    std::printf("config: none found beside the weights; names and shapes not checked "
                "(pass --config)\n");
  }

  if (options.checkValues && !error) {
    try {
      ValueReport values = checkValues(checkpoint);
      document["values"] = {{"checked_tensors", values.checkedTensors},
                            {"checked_values", values.checkedValues},
                            {"skipped_tensors", values.skippedTensors},
                            {"non_finite", values.bad}};
      if (!values.bad.empty()) {
        std::string message =
            fmt::format("'{}': {} tensor{} hold NaN or Inf values:", checkpoint.path(),
                        values.bad.size(), values.bad.size() == 1 ? "" : "s");
        for (std::size_t i = 0; i < values.bad.size() && i < 20; ++i)
          message += "\n  - " + values.bad[i];
        error = message;
      } else if (!options.json) {
        std::printf(
            "values: all values finite in %s tensors (%s values)%s\n",
            formatGrouped(values.checkedTensors).c_str(), formatGrouped(values.checkedValues).c_str(),
            values.skippedTensors
                ? fmt::format("; {} non-float tensors skipped", values.skippedTensors).c_str()
                : "");
      }
    } catch (const xlc::Error &e) {
      error = e.what();
    }
  }

  document["warnings"] = checkpoint.warnings();
  for (const std::string &warning : checkpoint.warnings())
    std::fprintf(stderr, "xlc-dump: warning: %s\n", warning.c_str());
  document["ok"] = !error.has_value();
  if (error) {
    document["error"] = *error;
    std::fprintf(stderr, "xlc-dump: error: %s\n", error->c_str());
  }
  if (options.json)
    std::cout << document.dump(2) << '\n';
  return error ? 1 : 0;
}

struct ArtifactOptions {
  std::string path;
  bool compileKernels = false;
  bool json = false;
};

int runArtifact(const ArtifactOptions &options) {
  xlc::artifact::Artifact artifact = xlc::artifact::loadArtifact(options.path);
  Json document = {{"ok", true}, {"path", options.path}};
  if (!options.json)
    xlc::artifact::printSummary(std::cout, artifact);
  else
    document["artifact"] = xlc::artifact::toJson(artifact);
  if (!options.compileKernels) {
    if (options.json)
      std::cout << document.dump(2) << '\n';
    return 0;
  }
  // Every kernel through NVRTC, with the embedded device headers, as the runtime will do it.
  const xlc::cuda::Nvrtc &nvrtc = xlc::cuda::Nvrtc::instance();
  std::vector<xlc::cuda::NvrtcHeader> headers;
  for (const xlc::device::EmbeddedHeader &h : xlc::device::embeddedHeaders())
    headers.push_back({h.name, h.text});
  Json compiled = Json::array();
  for (const xlc::artifact::Kernel &kernel : artifact.kernels) {
    std::vector<std::string> flags = xlc::cuda::Nvrtc::defaultOptions(artifact.targetArch);
    for (const std::string &o : kernel.options)
      if (std::find(flags.begin(), flags.end(), o) == flags.end())
        flags.push_back(o);
    auto start = std::chrono::steady_clock::now();
    std::vector<char> cubin = nvrtc.compile(kernel.source, kernel.name + ".cu", flags, headers);
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    compiled.push_back({{"kernel", kernel.name}, {"ms", ms}, {"cubin_bytes", cubin.size()}});
    if (!options.json)
      std::fprintf(stdout, "compiled %-28s %8.1f ms %9zu bytes of CUBIN for %s\n",
                   kernel.name.c_str(), ms, cubin.size(), artifact.targetArch.c_str());
  }
  if (options.json) {
    document["compiled"] = std::move(compiled);
    std::cout << document.dump(2) << '\n';
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"xlc-dump: inspect what xlc reads, for humans (tables) and scripts (--json).\n"
               "Give a compiled artifact (xlc-compile -o model.xlca) to validate it and list\n"
               "its functions, kernels, buffer plan and weight bindings, or --weights to\n"
               "validate a safetensors checkpoint, list every tensor and check names and shapes\n"
               "against the xLSTM config.json beside the weights.",
               "xlc-dump"};
  ArtifactOptions artifact;
  CLI::Option *artifactPath =
      app.add_option("artifact", artifact.path, "Compiled artifact to inspect")
          ->type_name("<artifact.xlca>");
  app.add_flag("--compile-kernels", artifact.compileKernels,
               "Artifact mode: compile every kernel with NVRTC (no GPU needed)")
      ->needs(artifactPath);
  WeightsOptions weights;
  app.add_option("--weights", weights.path,
                     "Checkpoint to inspect: a directory holding model.safetensors or "
                     "model.safetensors.index.json (+ shards), a .safetensors file, or an "
                     "index file")
      ->type_name("<dir|file>")
      ->excludes(artifactPath);
  CLI::Option *config =
      app.add_option("--config", weights.config,
                     "Hugging Face config.json to check names and shapes against (default: "
                     "config.json beside the weights, if present)")
          ->type_name("<config.json>");
  app.add_flag("--no-config", weights.noConfig, "Do not check against any config.json")
      ->excludes(config);
  app.add_flag("--check-values", weights.checkValues,
               "Also read every value (with progress on a terminal) and reject NaN or Inf");
  bool json = false;
  app.add_flag("--json", json, "Print one JSON document on stdout instead of tables");
  app.footer("Exit status: 0 when the checkpoint is valid (and matches its config), 1 on any "
             "defect, with the reason on stderr.");
  CLI11_PARSE(app, argc, argv);
  weights.json = json;
  artifact.json = json;
  if (artifact.path.empty() && weights.path.empty()) {
    std::fprintf(stderr, "xlc-dump: error: give an artifact or --weights <dir|file> (see --help)\n");
    return 1;
  }

  try {
    if (!artifact.path.empty())
      return runArtifact(artifact);
    return runWeights(weights);
  } catch (const xlc::Error &e) {
    std::fprintf(stderr, "xlc-dump: error: %s\n", e.what());
    if (json)
      std::cout << Json{{"ok", false}, {"error", e.what()}}.dump(2) << '\n';
    return 1;
  }
}
