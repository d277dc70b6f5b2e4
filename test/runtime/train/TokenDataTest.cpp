//===- TokenDataTest.cpp - Token files and the sequence stream -----------===//

#include "runtime/train/SequenceStream.h"
#include "runtime/train/TokenFile.h"

#include "test/runtime/ErrorMatchers.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

namespace xlc::train {
namespace {

namespace fs = std::filesystem;
using xlc::testing::expectError;

class TokenDataTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("xlc-token-data-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string &name) const { return (dir_ / name).string(); }

  /// Three documents of lengths 5, 9 and 12 with ids i·7 mod vocab.
  static TokenData threeDocuments(std::uint64_t vocab) {
    TokenData d;
    d.vocabSize = vocab;
    std::uint32_t next = 0;
    for (int len : {5, 9, 12}) {
      std::vector<std::uint32_t> doc;
      for (int i = 0; i < len; ++i, ++next)
        doc.push_back(static_cast<std::uint32_t>((next * 7) % vocab));
      d.addDocument(doc);
    }
    return d;
  }

  fs::path dir_;
};

TEST_F(TokenDataTest, RoundTripsWithTwoAndFourByteIds) {
  for (std::uint64_t vocab : {50304ull, 65536ull, 100000ull}) {
    TokenData data = threeDocuments(vocab);
    writeTokenFile(path("t.bin"), data);
    TokenFile f = TokenFile::open(path("t.bin"));
    EXPECT_EQ(f.idBytes(), vocab <= 65536 ? 2u : 4u);
    EXPECT_EQ(f.vocabSize(), vocab);
    ASSERT_EQ(f.size(), data.ids.size());
    for (std::uint64_t i = 0; i < f.size(); ++i)
      EXPECT_EQ(f.id(i), data.ids[i]);
    EXPECT_EQ(std::vector<std::uint64_t>(f.documentStarts().begin(), f.documentStarts().end()),
              (std::vector<std::uint64_t>{0, 5, 14}));
    EXPECT_EQ(fs::file_size(path("t.bin")), 64 + 26 * f.idBytes() + 3 * 8);
  }
}

TEST_F(TokenDataTest, RejectsCorruptFilesNamingTheProblem) {
  writeTokenFile(path("good.bin"), threeDocuments(100));
  auto bytes = [&] {
    std::ifstream in(path("good.bin"), std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
  };
  auto writeRaw = [&](const std::vector<char> &b) {
    std::ofstream(path("bad.bin"), std::ios::binary).write(b.data(), std::streamsize(b.size()));
  };
  std::vector<char> b = bytes();
  b[0] = 'Y';
  writeRaw(b);
  expectError([&] { TokenFile::open(path("bad.bin")); }, {"bad.bin", "not an xlc token file"});
  b = bytes();
  b[8] = 9;
  writeRaw(b);
  expectError([&] { TokenFile::open(path("bad.bin")); }, {"bad.bin", "version 9"});
  b = bytes();
  b.pop_back();
  writeRaw(b);
  expectError([&] { TokenFile::open(path("bad.bin")); }, {"bad.bin", "bytes"});
  b = bytes();
  b[64] = static_cast<char>(200); // id 200 ≥ vocab 100
  writeRaw(b);
  expectError([&] { TokenFile::open(path("bad.bin")); }, {"bad.bin", "token 0", "id 200"});
  b = bytes();
  b[64 + 26 * 2 + 8] = 20; // document 1 starts at 20, after document 2's 14
  writeRaw(b);
  expectError([&] { TokenFile::open(path("bad.bin")); }, {"bad.bin", "document"});
  expectError([&] { TokenFile::open(path("missing.bin")); }, {"missing.bin"});
}

TEST_F(TokenDataTest, WriterRejectsIdsOutsideTheVocabularyAndLeavesNoFile) {
  TokenData d = threeDocuments(100);
  d.ids[3] = 100;
  expectError([&] { writeTokenFile(path("x.bin"), d); }, {"x.bin", "token 3", "id 100"});
  EXPECT_FALSE(fs::exists(path("x.bin")));
}

TEST_F(TokenDataTest, WindowsTargetsAndDocumentResets) {
  writeTokenFile(path("t.bin"), threeDocuments(1000));
  TokenFile f = TokenFile::open(path("t.bin"));
  // 26 tokens, S = 4: windows start at 0, 4, ..., 20 (the one at 24 lacks a target): 6 windows.
  SequenceStream s(f, 0, f.size(), 4, /*seed=*/1, /*shuffle=*/false);
  EXPECT_EQ(s.windowsPerEpoch(), 6u);
  Batch b = s.next(2);
  for (std::int64_t t = 0; t < 8; ++t) {
    EXPECT_EQ(b.tokens[t], f.id(t));
    EXPECT_EQ(b.targets[t], f.id(t + 1));
  }
  // Document 1 starts at token 5 = row 1 (window at 4), position 1.
  EXPECT_EQ(std::vector<std::uint8_t>(b.resets.begin(), b.resets.end()),
            (std::vector<std::uint8_t>{0, 0, 0, 0, 0, 1, 0, 0}));
  s.next(4);
  EXPECT_EQ(s.position(), (StreamPosition{1, 0})); // the epoch wrapped
}

TEST_F(TokenDataTest, ShuffledEpochsVisitEveryWindowOnceAndResumeExactly) {
  TokenData d;
  d.vocabSize = 500;
  std::vector<std::uint32_t> doc(400);
  for (std::uint32_t i = 0; i < 400; ++i)
    doc[i] = i;
  d.addDocument(doc);
  writeTokenFile(path("t.bin"), d);
  TokenFile f = TokenFile::open(path("t.bin"));
  SequenceStream a(f, 0, f.size(), 8, 42);
  const std::uint64_t n = a.windowsPerEpoch(); // (400 − 1) / 8 = 49
  EXPECT_EQ(n, 49u);
  std::set<std::uint64_t> seen;
  std::vector<std::uint64_t> order;
  for (std::uint64_t i = 0; i < n; ++i) {
    seen.insert(a.windowAt(0, i));
    order.push_back(a.windowAt(0, i));
  }
  EXPECT_EQ(seen.size(), n);
  std::vector<std::uint64_t> identity(n);
  for (std::uint64_t i = 0; i < n; ++i)
    identity[i] = i;
  EXPECT_NE(order, identity);
  EXPECT_NE(a.windowAt(1, 0) * 1000 + a.windowAt(1, 1), order[0] * 1000 + order[1]);

  // Resume: a stream moved to another's position continues with the same batches.
  a.next(3);
  a.next(30);
  SequenceStream b(f, 0, f.size(), 8, 42);
  b.seek(a.position());
  for (int i = 0; i < 5; ++i) {
    Batch x = a.next(7), y = b.next(7);
    EXPECT_EQ(x.tokens, y.tokens);
    EXPECT_EQ(x.targets, y.targets);
  }
  // And the order is a function of the seed alone: a third stream from scratch agrees.
  SequenceStream c(f, 0, f.size(), 8, 42);
  EXPECT_EQ(c.windowAt(0, 0), order[0]);
}

TEST_F(TokenDataTest, SplitAndTooShortRanges) {
  Split s = splitTokens(1000, 0.1);
  EXPECT_EQ(s.trainEnd, 900u);
  EXPECT_EQ(s.validationBegin, 900u);
  EXPECT_EQ(s.validationEnd, 1000u);
  EXPECT_EQ(splitTokens(1000, 0.0).trainEnd, 1000u);
  expectError([] { splitTokens(10, 1.0); }, {"validation fraction"});
  writeTokenFile(path("t.bin"), threeDocuments(100));
  TokenFile f = TokenFile::open(path("t.bin"));
  expectError([&] { SequenceStream(f, 0, 8, 8, 1); }, {"t.bin", "9 tokens needed"});
  expectError([&] { SequenceStream(f, 0, 99, 4, 1); }, {"t.bin", "outside"});
}

} // namespace
} // namespace xlc::train
