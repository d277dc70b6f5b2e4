//===- xlc-compile.cpp - xLSTM model to artifact --------------------------===//
//
//   xlc-compile <model.mlir | config.json> -o model.xlca
//   xlc-compile <input> --compile-to=<phase>      print the IR (or plan) after a phase
//   xlc-compile <input> --training -o model.xlca  also @train_step (xlc-training-pipeline's
//                                                 fusions and xlc-autodiff before kernels)
//   ... --training --training-precision low-memory  bf16 GEMM gradients and AdamW moments, no
//                                                 master copies, stochastic rounding (the 7B on
//                                                 one 80 GB GPU)
//   ... --training --recompute ffn                the FFN's gate|up projection and SwiGLU
//                                                 recomputed in the backward, not saved
//                                                 (xlc-recompute-ffn)
//
// Phases, in order: model (imported or parsed IR), fused (xlc-fusion-pipeline), kernels
// (xlc-kernel-pipeline: @prefill, @decode_step and @score as xk kernels with tiles), artifact (the
// default: buffers, arena plan, CUDA per kernel, written with the runtime's serializer).
//
//===----------------------------------------------------------------------===//

#include "codegen/ArtifactWriter.h"
#include "dialect/XkDialect.h"
#include "dialect/XlstmDialect.h"
#include "models/import/BuildModel.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"
#include "runtime/artifact/Serialize.h"
#include "runtime/artifact/Summary.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/tune/ApplyTuning.h"
#include "runtime/support/Error.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <optional>

namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

/// Parses an .mlir file or imports a config.json.
mlir::OwningOpRef<mlir::ModuleOp> loadInput(mlir::MLIRContext &context, const std::string &path) {
  if (llvm::StringRef(path).ends_with(".json")) {
    xlc::config::ModelConfig config;
    try {
      config = xlc::config::loadModelConfig(path);
      xlc::config::checkSupported(config);
    } catch (const xlc::Error &e) {
      llvm::errs() << "xlc-compile: error: " << e.what() << "\n";
      return nullptr;
    }
    for (const std::string &warning : config.warnings)
      llvm::errs() << "xlc-compile: warning: " << warning << "\n";
    return xlc::models::buildModel(context, config);
  }
  llvm::SourceMgr sourceMgr;
  std::string error;
  auto file = mlir::openInputFile(path, &error);
  if (!file) {
    llvm::errs() << "xlc-compile: error: " << error << "\n";
    return nullptr;
  }
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  return mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, &context);
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"xlc-compile: compile an xLSTM model (xlstm IR or a Hugging Face config.json) "
               "into an artifact the runtime executes"};
  std::string input, output, phase = "artifact", arch = "sm_90a", precision = "standard",
              recompute = "none", tuningDb;
  bool verbose = false, training = false;
  app.add_option("input", input, "model IR (.mlir) or Hugging Face config.json")->required();
  app.add_option("-o,--output", output, "output file (artifact, or IR with --compile-to)");
  app.add_option("--compile-to", phase, "stop after this phase and print its result")
      ->check(CLI::IsMember({"model", "fused", "kernels", "plan", "artifact"}));
  app.add_option("--arch", arch, "target GPU architecture")->check(CLI::IsMember({"sm_90a"}));
  app.add_flag("--training", training,
               "also compile @train_step (xlc-autodiff): the artifact can train the model");
  app.add_option("--training-precision", precision,
                 "with --training: 'standard' (fp32 gradients, moments and master copies) or "
                 "'low-memory' (bf16 GEMM gradients and moments, no masters, stochastic "
                 "rounding)")
      ->check(CLI::IsMember({"standard", "low-memory"}));
  app.add_option("--recompute", recompute,
                 "with --training: activations the backward recomputes instead of saving them: "
                 "'none', or 'ffn' (each FFN's gate|up projection and SwiGLU: less memory, one "
                 "more GEMM per block)")
      ->check(CLI::IsMember({"none", "ffn"}));
  app.add_option("--tuning-db", tuningDb,
                 "a tuning database written by xlc-tune: every kernel it has records for "
                 "launches the measured choice (per measured batch) instead of the default "
                 "(docs/auto-tuning.md)");
  app.add_flag("-v,--verbose", verbose, "print the time of every phase");
  CLI11_PARSE(app, argc, argv);
  if (recompute != "none" && !training) {
    std::cerr << "xlc-compile: error: --recompute " << recompute
              << " needs --training (it changes what @train_step saves)\n";
    return 1;
  }
  if (precision != "standard" && !training) {
    std::cerr << "xlc-compile: error: --training-precision " << precision
              << " needs --training (it says how @train_step keeps its gradients)\n";
    return 1;
  }
  // The database is read and checked before anything is compiled: a stale or corrupt one is
  // refused at once.
  std::optional<xlc::tune::Database> database;
  if (!tuningDb.empty()) {
    try {
      database = xlc::tune::readDatabase(tuningDb);
    } catch (const xlc::Error &e) {
      std::cerr << "xlc-compile: error: " << e.what() << "\n";
      return 1;
    }
    const std::string stale =
        xlc::tune::compileTimeStaleness(*database, std::string(xlc::device::headerHash()),
                                        xlc::codegen::CodegenOptions{}.compilerVersion);
    if (!stale.empty()) {
      std::cerr << "xlc-compile: error: " << tuningDb << " was measured with other kernels ("
                << stale << "); tune again with xlc-tune\n";
      return 1;
    }
  }
  if (phase == "artifact" && output.empty()) {
    std::cerr << "xlc-compile: error: an artifact needs an output file (-o model.xlca)\n";
    return 1;
  }

  mlir::MLIRContext context;
  context.loadDialect<xlc::xlstm::XlstmDialect, xlc::xk::XkDialect, mlir::func::FuncDialect>();
  auto report = [&](const char *what, Clock::time_point start) {
    if (verbose)
      std::cerr << "xlc-compile: " << what << " in " << msSince(start) << " ms\n";
  };
  auto printIR = [&](mlir::ModuleOp module) {
    std::string error;
    auto out = mlir::openOutputFile(output.empty() ? "-" : output, &error);
    if (!out) {
      llvm::errs() << "xlc-compile: error: " << error << "\n";
      return 1;
    }
    module.print(out->os());
    out->os() << "\n";
    out->keep();
    return 0;
  };

  Clock::time_point start = Clock::now();
  mlir::OwningOpRef<mlir::ModuleOp> module = loadInput(context, input);
  if (!module)
    return 1;
  report("model loaded", start);
  if (phase == "model")
    return printIR(*module);

  for (auto [name, build] : {std::pair<const char *, void (*)(mlir::OpPassManager &)>{
                                 "fused", training ? xlc::buildTrainingFusionPipeline
                                                   : xlc::buildFusionPipeline},
                             {"kernels", xlc::buildKernelPipeline}}) {
    Clock::time_point t = Clock::now();
    mlir::PassManager pm(&context);
    build(pm);
    if (std::string_view(name) == "kernels" && recompute == "ffn") {
      pm.addPass(xlc::createRecomputeFfn());
      pm.addPass(xlc::createVerifyKernelForm());
    }
    if (mlir::failed(pm.run(*module))) {
      llvm::errs() << "xlc-compile: error: the " << name << " phase failed\n";
      return 1;
    }
    report(name, t);
    if (phase == name)
      return printIR(*module);
  }

  Clock::time_point t = Clock::now();
  xlc::codegen::CodegenOptions options;
  options.arch = arch;
  options.trainingPrecision = precision == "low-memory"
                                  ? xlc::codegen::TrainingPrecision::LowMemory
                                  : xlc::codegen::TrainingPrecision::Standard;
  mlir::FailureOr<xlc::artifact::Artifact> artifact =
      xlc::codegen::buildArtifact(*module, options);
  if (mlir::failed(artifact)) {
    llvm::errs() << "xlc-compile: error: code generation failed\n";
    return 1;
  }
  report("codegen", t);
  try {
    if (database) {
      const xlc::tune::ApplyReport applied = xlc::tune::applyTuning(*artifact, *database);
      std::cerr << "xlc-compile: " << tuningDb << ": " << applied.tunedLaunches << " of "
                << applied.launches << " tunable launches take a tuned kernel ("
                << applied.kernelsAdded << " added, " << applied.kernelsDropped
                << " defaults dropped); " << applied.untuned.size()
                << " kernel problems have no record\n";
      if (verbose)
        for (const std::string &problem : applied.untuned)
          std::cerr << "xlc-compile:   no record: " << problem << "\n";
    }
    if (phase == "plan") {
      xlc::artifact::printSummary(std::cout, *artifact);
      return 0;
    }
    t = Clock::now();
    xlc::artifact::writeArtifact(output, *artifact);
    report("artifact written", t);
  } catch (const xlc::Error &e) {
    std::cerr << "xlc-compile: error: " << e.what() << "\n";
    return 1;
  }
  if (verbose)
    std::cerr << "xlc-compile: total " << msSince(start) << " ms\n";
  return 0;
}
