//===- xlc-import.cpp - Hugging Face config.json to xlstm IR --------------===//
//
//   xlc-import <config.json> [-o model.mlir] [--weight-dtype=bf16|f32]
//   xlc-import <config.json> --stats [--json]
//
// Prints the model-level IR of the configured model, or (--stats) figures computed from that IR:
// parameter count and bytes, recurrent state per sequence, FLOPs per token.
//
//===----------------------------------------------------------------------===//

#include "dialect/XlstmDialect.h"
#include "models/import/BuildModel.h"
#include "runtime/support/Error.h"

#include <CLI/CLI.hpp>

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

namespace {
std::string humanCount(int64_t n) {
  if (n >= 1000000000)
    return formatv("{0:F2} B", n / 1e9).str();
  if (n >= 1000000)
    return formatv("{0:F1} M", n / 1e6).str();
  return std::to_string(n);
}

void printSummary(raw_ostream &os, const xlc::config::ModelConfig &c,
                  const xlc::models::ModelStats &s) {
  auto cap = [](const std::optional<double> &v) {
    return v ? formatv("{0}", *v).str() : std::string("none");
  };
  os << "model                 " << c.name << "\n";
  if (!c.hfName.empty())
    os << "source                " << c.hfName << "\n";
  os << "blocks                " << c.numBlocks << " x (mLSTM layer + SwiGLU FFN)\n"
     << "embedding dim         " << c.embeddingDim << "\n"
     << "heads                 " << c.numHeads << " (qk head dim " << c.qkHeadDim()
     << ", v head dim " << c.vHeadDim() << ")\n"
     << "qk / v / ffn dims     " << c.qkDim() << " / " << c.vDim() << " / " << c.ffnDim() << "\n"
     << "vocabulary            " << c.vocabSize
     << (c.tieWordEmbeddings ? " (tied embeddings)" : " (separate lm_head)") << "\n"
     << "input gate            " << (c.inputGate == xlc::config::InputGate::Exp ? "exp" : "sigmoid")
     << "\n"
     << "soft caps             gates " << cap(c.gateSoftCap) << ", logits "
     << cap(c.outputLogitSoftCap) << "\n"
     << "parameters            " << s.parameters << " (" << humanCount(s.parameters) << ", "
     << s.parameterTensors << " tensors, " << formatv("{0:F2}", s.parameterBytes / 1e9)
     << " GB in the IR's weight type)\n"
     << "state per sequence    " << s.stateBytesPerSequence << " bytes ("
     << formatv("{0:F1}", s.stateBytesPerSequence / 1048576.0) << " MiB over " << s.mlstmCells
     << " cells)\n"
     << "forward FLOPs/token   " << formatv("{0:F2}", 2.0 * s.matmulParameters / 1e9)
     << " GFLOP in matrix products\n";
}
} // namespace

int main(int argc, char **argv) {
  // CLI11 rather than llvm::cl: LLVM registers its own global `-stats` option.
  CLI::App app{"xlc-import: turn a Hugging Face xLSTM config.json into xlstm dialect IR\n\n"
               "  xlc-import models/xlstm-7b/config.json -o xlstm-7b.mlir\n"
               "  xlc-import models/xlstm-7b/config.json --stats --json"};
  std::string inputPath, outputPath = "-", weightDtypeName = "bf16";
  bool printStats = false, printJson = false, verbose = false;
  app.add_option("config", inputPath, "Hugging Face config.json of an xLSTM model")->required();
  app.add_option("-o,--output", outputPath, "Output file for the IR (default: stdout)");
  app.add_flag("--stats", printStats, "Print model statistics instead of the IR");
  app.add_flag("--json", printJson, "With --stats: print one JSON object");
  app.add_option("--weight-dtype", weightDtypeName,
                 "Element type of weights and activations in the IR")
      ->check(CLI::IsMember({"bf16", "f32"}));
  app.add_flag("-v,--verbose", verbose, "Also list config fields accepted without effect");
  CLI11_PARSE(app, argc, argv);

  xlc::config::ModelConfig config;
  try {
    config = xlc::config::loadModelConfig(inputPath);
    xlc::config::checkSupported(config);
  } catch (const xlc::Error &e) {
    errs() << "xlc-import: error: " << e.what() << "\n";
    return 1;
  }
  for (const std::string &warning : config.warnings)
    errs() << "xlc-import: warning: " << warning << "\n";
  if (verbose)
    for (const std::string &field : config.ignoredFields)
      errs() << "xlc-import: note: field '" << field
             << "' selects a Python kernel or training option; ignored\n";

  mlir::MLIRContext context;
  xlc::models::BuildOptions options;
  options.weightDtype = weightDtypeName == "f32" ? xlc::models::WeightDtype::F32
                                                 : xlc::models::WeightDtype::BF16;
  mlir::OwningOpRef<mlir::ModuleOp> module = xlc::models::buildModel(context, config, options);
  if (!module) {
    errs() << "xlc-import: error: the IR built from " << inputPath << " does not verify\n";
    return 1;
  }

  std::string errorMessage;
  auto output = mlir::openOutputFile(outputPath, &errorMessage);
  if (!output) {
    errs() << "xlc-import: error: " << errorMessage << "\n";
    return 1;
  }
  raw_ostream &os = output->os();
  if (printStats) {
    xlc::models::ModelStats s = xlc::models::computeModelStats(*module);
    if (printJson) {
      json::OStream j(os, 2);
      j.object([&] {
        j.attribute("model", config.name);
        j.attribute("parameters", s.parameters);
        j.attribute("parameter_bytes", s.parameterBytes);
        j.attribute("parameter_tensors", s.parameterTensors);
        j.attribute("state_bytes_per_sequence", s.stateBytesPerSequence);
        j.attribute("mlstm_cells", s.mlstmCells);
        j.attribute("forward_flops_per_token", 2 * s.matmulParameters);
        j.attribute("num_blocks", config.numBlocks);
        j.attribute("embedding_dim", config.embeddingDim);
        j.attribute("num_heads", config.numHeads);
        j.attribute("qk_head_dim", config.qkHeadDim());
        j.attribute("v_head_dim", config.vHeadDim());
        j.attribute("ffn_dim", config.ffnDim());
        j.attribute("vocab_size", config.vocabSize);
      });
      os << "\n";
    } else {
      printSummary(os, config, s);
    }
  } else {
    module->print(os);
    os << "\n";
  }
  output->keep();
  return 0;
}
