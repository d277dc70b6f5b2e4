#===- ExpectFailure.cmake - Run a command that must fail with a message ----===#
#
# cmake -DCOMMAND="prog;arg;..." -DEXPECT_EXIT=1 -DEXPECT_REGEX="..." -P ExpectFailure.cmake
# Passes only when the command exits with EXPECT_EXIT (a crash or a signal is never accepted)
# and its stderr matches EXPECT_REGEX: a bad checkpoint must be rejected for the right reason.

execute_process(COMMAND ${COMMAND}
  RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT "${result}" STREQUAL "${EXPECT_EXIT}")
  message(FATAL_ERROR "expected exit code ${EXPECT_EXIT}, got '${result}'\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(NOT err MATCHES "${EXPECT_REGEX}")
  message(FATAL_ERROR "stderr does not match '${EXPECT_REGEX}':\n${err}")
endif()
message(STATUS "failed as expected:\n${err}")
