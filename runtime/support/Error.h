//===- Error.h - The runtime's error type -----------------------*- C++ -*-===//
//
// Runtime code reports failure by throwing xlc::Error with a message that names the file,
// tensor, op or value at fault and what was expected. Tools catch it in main() and exit
// non-zero. Nothing else is thrown on purpose.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_SUPPORT_ERROR_H
#define XLC_RUNTIME_SUPPORT_ERROR_H

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace xlc {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string &message) : std::runtime_error(message) {}
};

/// Throws xlc::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args &&...args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

/// Throws xlc::Error unless |condition| holds.
template <typename... Args>
void check(bool condition, fmt::format_string<Args...> format, Args &&...args) {
  if (!condition)
    throw Error(fmt::format(format, std::forward<Args>(args)...));
}

} // namespace xlc

#endif // XLC_RUNTIME_SUPPORT_ERROR_H
