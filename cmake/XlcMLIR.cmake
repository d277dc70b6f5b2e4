#===- XlcMLIR.cmake - find MLIR 19 for the compiler half -------------------===#
#
# Included only when XLC_BUILD_COMPILER is ON. It deliberately does not include
# HandleLLVMOptions (which would add -fno-exceptions to every later target, the runtime's tests
# among them) and sets no global include directories: compiler targets link xlc_mlir_headers.
#
#===------------------------------------------------------------------------===#
# MLIRConfigVersion accepts only exact versions (19.1.7), so check the major version ourselves.
find_package(MLIR REQUIRED CONFIG PATHS /usr/lib/llvm-19/lib/cmake/mlir)
if(NOT LLVM_VERSION_MAJOR EQUAL 19)
  message(FATAL_ERROR "xlc needs MLIR 19 (libmlir-19-dev); found ${LLVM_PACKAGE_VERSION} at ${MLIR_DIR}")
endif()
message(STATUS "Using MLIR ${LLVM_PACKAGE_VERSION} from ${MLIR_DIR}")

list(APPEND CMAKE_MODULE_PATH "${MLIR_CMAKE_DIR}" "${LLVM_CMAKE_DIR}")

# Debian's LLVM tree ships lit as a script, not as an `llvm-lit` command.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(LLVM_EXTERNAL_LIT "${LLVM_TOOLS_BINARY_DIR}/../build/utils/lit/lit.py" CACHE FILEPATH "lit.py")
if(NOT EXISTS "${LLVM_EXTERNAL_LIT}")
  set(LLVM_EXTERNAL_LIT "/usr/lib/llvm-19/build/utils/lit/lit.py" CACHE FILEPATH "lit.py" FORCE)
endif()

include(TableGen)
include(AddLLVM)
include(AddMLIR)


add_library(xlc_mlir_headers INTERFACE)
target_include_directories(xlc_mlir_headers SYSTEM INTERFACE ${LLVM_INCLUDE_DIRS} ${MLIR_INCLUDE_DIRS})
target_include_directories(xlc_mlir_headers INTERFACE ${XLC_SOURCE_ROOT} ${XLC_BINARY_ROOT})
target_compile_definitions(xlc_mlir_headers INTERFACE ${LLVM_DEFINITIONS})
