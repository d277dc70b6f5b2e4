#===- run_tool_test.cmake - Runs xlc-tokenize once and checks the result ---===#
# cmake -DTOOL=... -DTOKENIZER=... -DARGS=a|b|c -DINPUT=... -DEXPECT=... -DEXIT=<code|nonzero>
#       [-DSTDERR=substring] -DWORK=dir -P run_tool_test.cmake
# Feeds INPUT on stdin; checks the exit code, stdout == EXPECT (unless checking --help, where
# EXPECT is empty and only the exit code is checked) and that stderr contains STDERR.

cmake_minimum_required(VERSION 3.20)
file(MAKE_DIRECTORY "${WORK}")
file(WRITE "${WORK}/stdin" "${INPUT}")
string(REPLACE "|" ";" args "${ARGS}")
# ARGS may name its own --tokenizer; otherwise the shared GPT-NeoX one is used.
if(NOT "--tokenizer" IN_LIST args)
  list(PREPEND args --tokenizer "${TOKENIZER}")
endif()
execute_process(
  COMMAND "${TOOL}" ${args}
  INPUT_FILE "${WORK}/stdin"
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  RESULT_VARIABLE rc)

if(("${EXIT}" STREQUAL "nonzero" AND "${rc}" STREQUAL "0") OR
   (NOT "${EXIT}" STREQUAL "nonzero" AND NOT "${rc}" STREQUAL "${EXIT}"))
  message(FATAL_ERROR "exit code ${rc}, expected ${EXIT}\nstdout: ${out}\nstderr: ${err}")
endif()
if(NOT "${EXPECT}" STREQUAL "" AND NOT "${out}" STREQUAL "${EXPECT}")
  message(FATAL_ERROR "stdout:\n[${out}]\nexpected:\n[${EXPECT}]\nstderr: ${err}")
endif()
if(NOT "${STDERR}" STREQUAL "")
  string(FIND "${err}" "${STDERR}" found)
  if(found EQUAL -1)
    message(FATAL_ERROR "stderr lacks \"${STDERR}\":\n${err}")
  endif()
endif()
