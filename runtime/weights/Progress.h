//===- Progress.h - Progress line for long loads ----------------*- C++ -*-===//
//
// Loading a 7B checkpoint reads 14-27 GB; a person at a terminal should see it move. The line is
// redrawn in place on stderr at most ten times a second and only when stderr is a terminal, so
// logs and pipes stay clean. XLC_PROGRESS=1 forces it on, XLC_PROGRESS=0 off.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_WEIGHTS_PROGRESS_H
#define XLC_RUNTIME_WEIGHTS_PROGRESS_H

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace xlc::weights {

class Progress {
public:
  /// Whether progress should be shown: XLC_PROGRESS if set, else isatty(stderr).
  static bool enabledByDefault();

  Progress(std::string label, std::uint64_t totalBytes, std::size_t totalItems,
           bool enabled = enabledByDefault());
  Progress(const Progress &) = delete;
  Progress &operator=(const Progress &) = delete;
  ~Progress();

  /// Records |bytes| and |items| more done; redraws when enough time has passed.
  void advance(std::uint64_t bytes, std::size_t items = 1);

  /// Draws the final state and ends the line (idempotent; the destructor calls it).
  void finish();

  bool enabled() const { return enabled_; }

private:
  void draw(bool final);

  std::string label_;
  std::uint64_t totalBytes_, doneBytes_ = 0;
  std::size_t totalItems_, doneItems_ = 0;
  bool enabled_, finished_ = false, drawn_ = false;
  std::chrono::steady_clock::time_point start_, lastDraw_;
};

/// "1.50 GB", "12.0 MB", "512 B" (decimal units, as file sizes are usually quoted).
std::string formatBytes(std::uint64_t bytes);

/// "1,234,567": digits grouped by thousands (parameter and tensor counts).
std::string formatGrouped(std::uint64_t n);

} // namespace xlc::weights

#endif // XLC_RUNTIME_WEIGHTS_PROGRESS_H
