//===- TokenizerTestUtil.h - Shared helpers of the tokenizer tests -*- C++ -*-===//
#ifndef XLC_TEST_RUNTIME_TOKENIZER_TOKENIZERTESTUTIL_H
#define XLC_TEST_RUNTIME_TOKENIZER_TOKENIZERTESTUTIL_H

#include "runtime/tokenizer/Tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace xlc::test {

inline std::string sharedDataPath(const char *file) {
  return std::string(XLC_SHARED_DATA_DIR) + "/" + file;
}

inline std::string gptNeoxTokenizerPath() { return sharedDataPath("gpt-neox-20b-tokenizer.json"); }

/// The GPT-NeoX-20B tokenizer, loaded once. Fails the calling test with the path when the shared
/// data is missing (../shared/data/README.md: tests fail, naming the path).
inline const Tokenizer *gptNeox() {
  static const Tokenizer *tokenizer = []() -> const Tokenizer * {
    std::string path = gptNeoxTokenizerPath();
    if (!std::filesystem::exists(path))
      return nullptr;
    return new Tokenizer(Tokenizer::fromFile(path));
  }();
  if (!tokenizer)
    ADD_FAILURE() << "missing shared test data: " << gptNeoxTokenizerPath();
  return tokenizer;
}

} // namespace xlc::test

#endif // XLC_TEST_RUNTIME_TOKENIZER_TOKENIZERTESTUTIL_H
