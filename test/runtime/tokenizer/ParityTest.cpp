//===- ParityTest.cpp - Ids identical to Hugging Face tokenizers ------------===//
//
// Compares against fixtures written by test/parity/make_tokenizer_fixtures.py from HF
// `tokenizers` (see that script for what each fixture holds). Skips, naming the file, while the
// fixtures have not been generated yet.
//
//===----------------------------------------------------------------------===//

#include "TokenizerTestUtil.h"

#include "runtime/support/MappedFile.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>

namespace xlc {
namespace {

using Ids = std::vector<TokenId>;

const std::string kFixtureDir = std::string(XLC_SOURCE_DIR) + "/test/runtime/tokenizer/fixtures";
const std::string kFixtureJson = kFixtureDir + "/tokenizer_fixtures.json";

#define SKIP_WITHOUT(path)                                                                         \
  if (!std::filesystem::exists(path))                                                              \
  GTEST_SKIP() << "missing fixture " << (path)                                                     \
               << " (generate it with test/parity/make_tokenizer_fixtures.py)"

const nlohmann::json &fixtures() {
  static const nlohmann::json j = nlohmann::json::parse(readFile(kFixtureJson));
  return j;
}

Ids idsOf(const nlohmann::json &j) { return j.get<Ids>(); }

/// Where two id sequences first differ, for a readable failure on long sequences.
std::string firstDifference(const Ids &got, const Ids &want) {
  std::size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i])
    ++i;
  if (i == got.size() && i == want.size())
    return "identical";
  auto at = [&](const Ids &v) { return i < v.size() ? std::to_string(v[i]) : "end"; };
  return "first difference at index " + std::to_string(i) + ": got " + at(got) + ", want " +
         at(want) + " (lengths " + std::to_string(got.size()) + " vs " +
         std::to_string(want.size()) + ")";
}

std::string fromHex(const std::string &hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

TEST(Parity, FixturesMatchTheCurrentInputs) {
  SKIP_WITHOUT(kFixtureJson);
  const auto &cases = fixtures().at("cases");
  ASSERT_FALSE(cases.empty());
  ASSERT_EQ(cases[0].at("name"), "hard_cases.txt");
  std::string hard =
      readFile(std::string(XLC_SOURCE_DIR) + "/test/runtime/tokenizer/hard_cases.txt");
  EXPECT_EQ(cases[0].at("text").get<std::string>(), hard)
      << "hard_cases.txt changed since the fixtures were made: regenerate them with "
         "test/parity/make_tokenizer_fixtures.py";
}

TEST(Parity, EncodeMatchesHf) {
  SKIP_WITHOUT(kFixtureJson);
  const Tokenizer *t = test::gptNeox();
  ASSERT_TRUE(t);
  EncodeOptions special;
  special.parseSpecial = true;
  int compared = 0;
  for (const auto &c : fixtures().at("cases")) {
    std::string name = c.at("name");
    std::string text = c.at("text");
    // HF's default recognises special tokens in the text: our parseSpecial.
    Ids want = idsOf(c.at("ids"));
    Ids got = t->encode(text, special);
    EXPECT_EQ(got, want) << name << ": " << firstDifference(got, want);
    // encode_special_tokens=True: special-token strings are plain text, our default.
    if (!c.at("ids_special_as_text").is_null()) {
      Ids wantPlain = idsOf(c.at("ids_special_as_text"));
      Ids gotPlain = t->encode(text);
      EXPECT_EQ(gotPlain, wantPlain)
          << name << " (special as text): " << firstDifference(gotPlain, wantPlain);
    }
    ++compared;
  }
  EXPECT_GT(compared, 50);
}

TEST(Parity, InvalidUtf8MatchesHfOnReplacedText) {
  SKIP_WITHOUT(kFixtureJson);
  const Tokenizer *t = test::gptNeox();
  ASSERT_TRUE(t);
  EncodeOptions special;
  special.parseSpecial = true;
  for (const auto &c : fixtures().at("invalid_utf8")) {
    Ids want = idsOf(c.at("ids"));
    Ids got = t->encode(fromHex(c.at("bytes_hex")), special);
    EXPECT_EQ(got, want) << c.at("name") << ": " << firstDifference(got, want);
  }
}

TEST(Parity, DecodeMatchesHf) {
  SKIP_WITHOUT(kFixtureJson);
  const Tokenizer *t = test::gptNeox();
  ASSERT_TRUE(t);
  for (const auto &c : fixtures().at("decode")) {
    DecodeOptions options;
    options.skipSpecial = c.at("skip_special");
    EXPECT_EQ(t->decode(idsOf(c.at("ids")), options), c.at("text").get<std::string>())
        << c.at("name") << (options.skipSpecial ? " (skip special)" : "");
  }
}

TEST(Parity, TinyShakespeareMatchesHf) {
  SKIP_WITHOUT(kFixtureJson);
  const auto &meta = fixtures().at("tinyshakespeare");
  std::string idsPath = kFixtureDir + "/" + meta.at("ids_file").get<std::string>();
  SKIP_WITHOUT(idsPath);
  const Tokenizer *t = test::gptNeox();
  ASSERT_TRUE(t);
  std::string textPath = test::sharedDataPath("tinyshakespeare.txt");
  ASSERT_TRUE(std::filesystem::exists(textPath)) << "missing shared test data: " << textPath;
  std::string text = readFile(textPath);
  ASSERT_EQ(text.size(), meta.at("source_bytes").get<std::size_t>())
      << textPath << " is not the file the fixtures were made from";

  std::string raw = readFile(idsPath);
  std::size_t count = meta.at("count");
  ASSERT_EQ(raw.size(), count * 4) << idsPath;
  Ids want(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto *p = reinterpret_cast<const unsigned char *>(raw.data() + 4 * i);
    want[i] = TokenId(p[0]) | TokenId(p[1]) << 8 | TokenId(p[2]) << 16 | TokenId(p[3]) << 24;
  }
  Ids got = t->encode(text);
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << firstDifference(got, want);
  EXPECT_TRUE(t->decode(want) == text) << "decode of the HF ids differs from the text";
}

} // namespace
} // namespace xlc
