//===- Progress.cpp - Progress line for long loads ------------------------===//

#include "runtime/weights/Progress.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace xlc::weights {

std::string formatBytes(std::uint64_t bytes) {
  const char *units[] = {"B", "kB", "MB", "GB", "TB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1000.0 && unit < 4) {
    value /= 1000.0;
    ++unit;
  }
  if (unit == 0)
    return fmt::format("{} B", bytes);
  return fmt::format("{:.{}f} {}", value, value < 10 ? 2 : (value < 100 ? 1 : 0), units[unit]);
}

bool Progress::enabledByDefault() {
  if (const char *env = std::getenv("XLC_PROGRESS"))
    return std::strcmp(env, "0") != 0;
  return ::isatty(STDERR_FILENO) == 1;
}

Progress::Progress(std::string label, std::uint64_t totalBytes, std::size_t totalItems,
                   bool enabled)
    : label_(std::move(label)), totalBytes_(totalBytes), totalItems_(totalItems), enabled_(enabled),
      start_(std::chrono::steady_clock::now()), lastDraw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::advance(std::uint64_t bytes, std::size_t items) {
  doneBytes_ += bytes;
  doneItems_ += items;
  if (!enabled_)
    return;
  auto now = std::chrono::steady_clock::now();
  if (now - lastDraw_ >= std::chrono::milliseconds(100)) {
    lastDraw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_)
    return;
  finished_ = true;
  if (enabled_ && (drawn_ || doneItems_ > 0))
    draw(true);
}

void Progress::draw(bool final) {
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double percent = totalBytes_ > 0
                       ? 100.0 * static_cast<double>(doneBytes_) / static_cast<double>(totalBytes_)
                       : 100.0;
  std::string rate =
      seconds > 0
          ? formatBytes(static_cast<std::uint64_t>(static_cast<double>(doneBytes_) / seconds)) +
                "/s"
          : "-";
  std::string line =
      fmt::format("{}: {} / {} ({:.0f}%), {} / {} tensors, {}", label_, formatBytes(doneBytes_),
                  formatBytes(totalBytes_), percent, doneItems_, totalItems_, rate);
  // \r returns to the line start; \x1b[K clears what a longer previous line left behind.
  std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), final ? "\n" : "");
  std::fflush(stderr);
  drawn_ = true;
}

std::string formatGrouped(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return out;
}

} // namespace xlc::weights
