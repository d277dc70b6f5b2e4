//===- Child.h - Running a helper script as a child process -------*- C++ -*-===//
//
// xlc-bench runs two Python scripts as child processes: scripts/hf-bench.py (transformers on
// the same cases) and scripts/plot-bench.py (the PNG plots). The child's stdout is sent to
// xlc-bench's stderr, so that nothing it prints mixes with a JSON document on stdout.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_XLC_BENCH_CHILD_H
#define XLC_TOOLS_XLC_BENCH_CHILD_H

#include <string>
#include <vector>

namespace xlc::bench {

struct ChildResult {
  enum class End { Exited, Signalled, TimedOut, NotStarted } end = End::NotStarted;
  int status = 0;   ///< the exit status (Exited) or the signal (Signalled)
  std::string why;  ///< for humans: "exited with status 3", "killed by signal 9", ...
  bool ok() const { return end == End::Exited && status == 0; }
};

/// Runs |argv| (argv[0] looked up on PATH) and waits at most |timeoutSeconds|; past that the
/// child is sent SIGTERM, and SIGKILL 10 s later.
ChildResult runChild(const std::vector<std::string> &argv, double timeoutSeconds);

} // namespace xlc::bench

#endif // XLC_TOOLS_XLC_BENCH_CHILD_H
