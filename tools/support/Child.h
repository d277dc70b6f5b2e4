//===- Child.h - Running a helper script as a child process -------*- C++ -*-===//
//
// The runtime tools run Python scripts as child processes: xlc-bench scripts/hf-bench.py
// (transformers on the same cases) and scripts/plot-bench.py, xlc-train scripts/plot-train.py.
// The child's stdout is sent to the tool's stderr, so that nothing it prints mixes with a JSON
// document on stdout. findScriptsDir() finds the repository's scripts/ from the binary.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_SUPPORT_CHILD_H
#define XLC_TOOLS_SUPPORT_CHILD_H

#include <string>
#include <string_view>
#include <vector>

namespace xlc::tools {

struct ChildResult {
  enum class End { Exited, Signalled, TimedOut, NotStarted } end = End::NotStarted;
  int status = 0;   ///< the exit status (Exited) or the signal (Signalled)
  std::string why;  ///< for humans: "exited with status 3", "killed by signal 9", ...
  bool ok() const { return end == End::Exited && status == 0; }
};

/// Runs |argv| (argv[0] looked up on PATH) and waits at most |timeoutSeconds|; past that the
/// child is sent SIGTERM, and SIGKILL 10 s later.
ChildResult runChild(const std::vector<std::string> &argv, double timeoutSeconds);

/// The directory holding |marker| (a script of scripts/): |override| when given, else
/// $XLC_REPO_DIR/scripts, else scripts/ next to the repository this binary sits in (a build
/// tree's tools/<tool>/, or the GPU bundle's .gpu/bin/), else ./scripts.
std::string findScriptsDir(const std::string &override, std::string_view marker);

} // namespace xlc::tools

#endif // XLC_TOOLS_SUPPORT_CHILD_H
