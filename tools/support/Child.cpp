//===- Child.cpp - Running a helper script as a child process -------------===//

#include "tools/support/Child.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <thread>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace xlc::tools {

ChildResult runChild(const std::vector<std::string> &argv, double timeoutSeconds) {
  using Clock = std::chrono::steady_clock;
  ChildResult result;
  std::vector<char *> args;
  for (const std::string &a : argv)
    args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    result.why = fmt::format("cannot start '{}': {}", argv[0], std::strerror(spawned));
    return result;
  }
  const Clock::time_point start = Clock::now();
  std::optional<Clock::time_point> terminated;
  while (true) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      if (terminated) {
        result.end = ChildResult::End::TimedOut;
        result.why = fmt::format("did not finish within {:.0f} s and was stopped", timeoutSeconds);
      } else if (WIFEXITED(status)) {
        result.end = ChildResult::End::Exited;
        result.status = WEXITSTATUS(status);
        result.why = fmt::format("exited with status {}", result.status);
      } else {
        result.end = ChildResult::End::Signalled;
        result.status = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        result.why = fmt::format("killed by signal {}", result.status);
      }
      return result;
    }
    if (done < 0 && errno != EINTR) {
      result.why = fmt::format("waitpid failed: {}", std::strerror(errno));
      return result;
    }
    // Only this child, by its id.
    if (!terminated &&
        std::chrono::duration<double>(Clock::now() - start).count() > timeoutSeconds) {
      kill(pid, SIGTERM);
      terminated = Clock::now();
    } else if (terminated && Clock::now() - *terminated > std::chrono::seconds(10)) {
      kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string findScriptsDir(const std::string &override, std::string_view marker) {
  namespace fs = std::filesystem;
  if (!override.empty())
    return override;
  std::vector<fs::path> candidates;
  if (const char *repo = std::getenv("XLC_REPO_DIR"))
    candidates.push_back(fs::path(repo) / "scripts");
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    for (fs::path dir = exe.parent_path(); dir.has_relative_path(); dir = dir.parent_path())
      candidates.push_back(dir / "scripts");
  candidates.push_back("scripts");
  for (const fs::path &dir : candidates)
    if (fs::is_regular_file(dir / marker, ec))
      return dir.string();
  return "scripts";
}

} // namespace xlc::tools
