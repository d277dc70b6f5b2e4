#===- XlcTargets.cmake - helpers for declaring xlc targets -----------------===#

# xlc_runtime_library(<name> SOURCES ... [DEPS ...])
# A static library of the runtime half: C++20, exceptions on, no MLIR/LLVM include paths.
function(xlc_runtime_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${XLC_SOURCE_ROOT} ${XLC_BINARY_ROOT})
  target_link_libraries(${name} PUBLIC fmt::fmt-header-only ${ARG_DEPS})
  target_compile_options(${name} PRIVATE -Wall -Wextra)
endfunction()

# xlc_gtest(<name> SOURCES ... [DEPS ...])
# A GoogleTest binary registered with ctest (one ctest entry per binary, so a binary that cannot
# start is reported instead of silently discovering nothing).
# SHARDS n (optional): register the binary as n ctest tests ${name}_shard<i>, each running every
# n-th test case (GoogleTest's own sharding), so that a long suite runs in parallel under
# ctest -j and each part has its own time limit.
function(xlc_gtest name)
  cmake_parse_arguments(ARG "" "SHARDS" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${XLC_SOURCE_ROOT} ${XLC_BINARY_ROOT})
  target_link_libraries(${name} PRIVATE GTest::gtest_main ${ARG_DEPS})
  target_compile_definitions(${name} PRIVATE
    XLC_SOURCE_DIR="${XLC_SOURCE_ROOT}" XLC_SHARED_DATA_DIR="${XLC_SHARED_DATA_DIR}")
  if(ARG_SHARDS)
    math(EXPR last "${ARG_SHARDS} - 1")
    foreach(i RANGE ${last})
      add_test(NAME ${name}_shard${i} COMMAND ${name})
      set_tests_properties(${name}_shard${i} PROPERTIES
        ENVIRONMENT "GTEST_TOTAL_SHARDS=${ARG_SHARDS};GTEST_SHARD_INDEX=${i}")
    endforeach()
  else()
    add_test(NAME ${name} COMMAND ${name})
  endif()
endfunction()
