//===- xlc-opt.cpp - Run xlc passes on MLIR files -------------------------===//
//
// The `mlir-opt` of this project: parses, verifies, transforms and prints IR of the xlstm
// dialect. It registers only the dialects and passes the project uses.
//
//===----------------------------------------------------------------------===//

#include "dialect/XkDialect.h"
#include "dialect/XlstmDialect.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<xlc::xlstm::XlstmDialect, xlc::xk::XkDialect, mlir::func::FuncDialect>();
  xlc::registerXlcPasses();
  xlc::registerXlcPipelines();
  // Generic clean-ups the pipelines use between phases.
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  mlir::registerSymbolDCEPass();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "xlc optimizer driver\n", registry));
}
