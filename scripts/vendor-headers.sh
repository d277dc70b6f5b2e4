#!/usr/bin/env bash
# Copies what the runtime-only build needs and the GPU machine lacks into .deps/, to be carried
# there with the working tree (test/gpu/run_on_gpu.sh uses it):
#   .deps/include/{nlohmann,CLI,fmt}       header-only libraries (fmt is used header-only)
#   .deps/lib/cmake/<package>/             minimal CMake package configs for them
#   .deps/googletest-src/                  GoogleTest sources, built there only if the GPU
#                                          machine's own GoogleTest has no CMake package
# Run it on this (development) machine, where the Debian packages are installed:
#   scripts/vendor-headers.sh
# .deps/ is git-ignored (.gitignore), so it travels to the GPU machine only when the device run
# names it in its carry list: carry [".deps"]. About 6 MB.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps="$here/.deps"

need() {
  [ -e "$1" ] || { echo "[vendor] missing $1 (install $2)" >&2; exit 1; }
}
need /usr/include/nlohmann/json.hpp nlohmann-json3-dev
need /usr/include/CLI/CLI.hpp libcli11-dev
need /usr/include/fmt/format.h libfmt-dev
need /usr/src/googletest/CMakeLists.txt googletest

version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null | sed 's/^[0-9]*://; s/[-+~].*//' || true; }
json_version="$(version nlohmann-json3-dev)"; json_version="${json_version:-3.11.2}"
cli_version="$(version libcli11-dev)"; cli_version="${cli_version:-2.1.2}"
fmt_version="$(version libfmt-dev)"; fmt_version="${fmt_version:-9.1.0}"
gtest_version="$(version googletest)"; gtest_version="${gtest_version:-1.12.1}"

rm -rf "$deps"
mkdir -p "$deps/include" "$deps/lib/cmake"
cp -r /usr/include/nlohmann /usr/include/CLI /usr/include/fmt "$deps/include/"
cp -r /usr/src/googletest "$deps/googletest-src"

# write_package NAME VERSION TARGET-SETUP: <NAME>Config.cmake + <NAME>ConfigVersion.cmake.
write_package() {
  local name="$1" ver="$2" body="$3" dir="$deps/lib/cmake/$1"
  mkdir -p "$dir"
  cat > "$dir/${name}Config.cmake" <<CMAKE
# Written by scripts/vendor-headers.sh: $name $ver, header-only, from .deps/include.
get_filename_component(_xlc_deps_root "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
$body
set(${name}_FOUND TRUE)
set(${name}_VERSION $ver)
unset(_xlc_deps_root)
CMAKE
  cat > "$dir/${name}ConfigVersion.cmake" <<CMAKE
set(PACKAGE_VERSION "$ver")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
CMAKE
}

write_package nlohmann_json "$json_version" '
if(NOT TARGET nlohmann_json::nlohmann_json)
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  set_target_properties(nlohmann_json::nlohmann_json PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_xlc_deps_root}/include")
endif()'

write_package CLI11 "$cli_version" '
if(NOT TARGET CLI11::CLI11)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  set_target_properties(CLI11::CLI11 PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_xlc_deps_root}/include")
endif()'

write_package fmt "$fmt_version" '
if(NOT TARGET fmt::fmt-header-only)
  add_library(fmt::fmt-header-only INTERFACE IMPORTED)
  set_target_properties(fmt::fmt-header-only PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_xlc_deps_root}/include"
    INTERFACE_COMPILE_DEFINITIONS "FMT_HEADER_ONLY=1")
endif()
if(NOT TARGET fmt::fmt)
  add_library(fmt::fmt INTERFACE IMPORTED)
  set_target_properties(fmt::fmt PROPERTIES INTERFACE_LINK_LIBRARIES fmt::fmt-header-only)
endif()'

cat > "$deps/VERSIONS" <<TXT
nlohmann-json $json_version
CLI11 $cli_version
fmt $fmt_version (header-only)
googletest $gtest_version (sources)
TXT
echo "[vendor] wrote $deps ($(du -sh "$deps" | cut -f1)):"
sed 's/^/[vendor]   /' "$deps/VERSIONS"
