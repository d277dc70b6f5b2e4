//===- KernelSource.cpp - The emitted kernel translation unit -------------===//

#include "codegen/cuda/KernelSource.h"


#include "mlir/IR/BuiltinTypes.h"

namespace xlc::codegen {

artifact::Kernel makeKernel(const KernelSpec &spec) {
  artifact::Kernel kernel;
  kernel.family = spec.family;
  kernel.entry = "xlc_kernel";
  kernel.tile = spec.tile;
  kernel.options = {"--std=c++17"};
  kernel.block = spec.block;
  kernel.grid = spec.grid;
  kernel.sharedBytes = spec.sharedBytes;
  kernel.params = spec.params;
  kernel.source = "// xlc kernel: " + spec.family + " " + spec.tile + "\n" +
                  "#include \"xlc/device/" + spec.header + ".cuh\"\n" +
                  "using Config = " + spec.config + ";\n" +
                  (spec.assertSharedBytes
                       ? "static_assert(Config::kSharedBytes == " +
                             std::to_string(spec.sharedBytes) +
                             ", \"codegen's shared-memory size disagrees with the header\");\n"
                       : std::string()) +
                  "extern \"C\" __global__ void __launch_bounds__(Config::kThreads)\n" +
                  "xlc_kernel(xlc::device::" + spec.paramsType + " p) {\n" +
                  "  xlc::device::" + spec.function + "<Config>(p);\n" + "}\n";
  return kernel;
}

std::string cudaType(mlir::Type type) {
  if (type.isBF16())
    return "__nv_bfloat16";
  if (type.isF16())
    return "__half";
  return "float";
}

artifact::KernelParam bufferParam(std::string name) {
  return {std::move(name), artifact::ParamKind::Buffer};
}
artifact::KernelParam i64Param(std::string name) {
  return {std::move(name), artifact::ParamKind::I64};
}
artifact::KernelParam f64Param(std::string name) {
  return {std::move(name), artifact::ParamKind::F32};
}

} // namespace xlc::codegen
