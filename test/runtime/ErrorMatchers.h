//===- ErrorMatchers.h - Checking xlc::Error messages in tests --*- C++ -*-===//
//
// Errors are part of the interface: a test checks that the message names what is wrong.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_RUNTIME_ERRORMATCHERS_H
#define XLC_TEST_RUNTIME_ERRORMATCHERS_H

#include "runtime/support/Error.h"

#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <string>

namespace xlc::testing {

/// The message of the xlc::Error |f| throws, or "<no error>".
inline std::string errorOf(const std::function<void()> &f) {
  try {
    f();
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

/// Expects |fn| to throw xlc::Error whose message contains every one of |parts|.
template <typename Fn> void expectError(Fn fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error &e) {
    for (const std::string &p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "message '" << e.what() << "' lacks '" << p << "'";
  }
}

} // namespace xlc::testing

#endif // XLC_TEST_RUNTIME_ERRORMATCHERS_H
