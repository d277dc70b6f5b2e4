//===- TokenizerTest.cpp - Tokenizer behaviour that needs no HF fixtures ---===//
//
// Three groups: the real GPT-NeoX-20B tokenizer.json (encodings worked out from its vocabulary and
// merges, round trips, options), small synthetic tokenizer.json files (BPE merge order, added-token
// flags; expectations checked once against HF `tokenizers` 0.23.2 by hand), and malformed files
// (the error names the field).
//
//===----------------------------------------------------------------------===//

#include "TokenizerTestUtil.h"

#include "runtime/support/Error.h"
#include "runtime/support/MappedFile.h"
#include "runtime/tokenizer/ByteLevel.h"
#include "runtime/tokenizer/Normalizer.h"
#include "runtime/tokenizer/Utf8.h"

#include <nlohmann/json.hpp>

#include <random>
#include <thread>

namespace xlc {
namespace {

using Ids = std::vector<TokenId>;
using test::gptNeox;

EncodeOptions withSpecial() {
  EncodeOptions o;
  o.parseSpecial = true;
  return o;
}

//===-- GPT-NeoX-20B -------------------------------------------------------===//

TEST(GptNeox, HelloWorldFromTheVocabulary) {
  const Tokenizer *t = gptNeox();
  ASSERT_TRUE(t);
  // "Hello world" pre-tokenizes to "Hello" and " world"; byte-level turns the space into 'Ġ'.
  // Both words are whole vocabulary entries, reachable by merges (e.g. "H ello"... "Ġ world"),
  // so each becomes one id.
  auto hello = t->tokenToId("Hello");
  auto world = t->tokenToId("\xC4\xA0world"); // "Ġworld"
  ASSERT_TRUE(hello && world);
  EXPECT_EQ(*hello, 12092u);
  EXPECT_EQ(*world, 1533u);
  EXPECT_EQ(t->encode("Hello world"), (Ids{12092, 1533}));
  EXPECT_EQ(t->decode(Ids{12092, 1533}), "Hello world");
  EXPECT_EQ(t->idToToken(12092), std::optional<std::string_view>("Hello"));
  EXPECT_EQ(t->idToToken(60000), std::nullopt);
}

TEST(GptNeox, MergesAreAppliedByRank) {
  const Tokenizer *t = gptNeox();
  ASSERT_TRUE(t);
  // A word that is not in the vocabulary splits into vocabulary pieces; whatever the split, it
  // must decode back and every piece must be a vocabulary token of the byte-level alphabet.
  Ids ids = t->encode(" Supercalifragilistic");
  EXPECT_GT(ids.size(), 1u);
  std::string joined;
  for (TokenId id : ids)
    joined += std::string(*t->idToToken(id));
  EXPECT_EQ(joined, bytelevel::encode(" Supercalifragilistic"));
  // Single bytes that never merge map to their byte tokens: '!' is id 2.
  EXPECT_EQ(t->encode("!"), (Ids{2}));
  EXPECT_EQ(t->encode("\n"), (Ids{*t->tokenToId("\xC4\x8A")})); // 'Ċ'
}

TEST(GptNeox, VocabularyAndSpecialTokens) {
  const Tokenizer *t = gptNeox();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->vocabSize(), 50277u);
  EXPECT_EQ(t->tokenToId("<|endoftext|>"), std::optional<TokenId>(0));
  EXPECT_EQ(t->tokenToId("<|padding|>"), std::optional<TokenId>(1));
  EXPECT_TRUE(t->isSpecial(0));
  EXPECT_TRUE(t->isSpecial(1));
  EXPECT_FALSE(t->isSpecial(2));
  EXPECT_FALSE(t->isSpecial(50276)); // "  " is added but not special
  EXPECT_EQ(t->bosId(), std::optional<TokenId>(0));
}

TEST(GptNeox, WhitespaceAddedTokens) {
  const Tokenizer *t = gptNeox();
  ASSERT_TRUE(t);
  // GPT-NeoX adds tokens for runs of 2..24 spaces; they are matched before the pre-tokenizer,
  // longest first, so "b" after them gets no 'Ġ'.
  TokenId a = *t->tokenToId("a"), b = *t->tokenToId("b");
  EXPECT_EQ(t->encode("a   b"), (Ids{a, *t->tokenToId("   "), b}));
  EXPECT_EQ(t->encode("a" + std::string(30, ' ') + "b"),
            (Ids{a, *t->tokenToId(std::string(24, ' ')), *t->tokenToId(std::string(6, ' ')), b}));
  EXPECT_EQ(t->encode("a b"), (Ids{a, *t->tokenToId("\xC4\xA0"
                                                    "b")}));
  EXPECT_EQ(t->decode(t->encode("a   b")), "a   b");
}

TEST(GptNeox, SpecialTokensOnlyWhenAsked) {
  const Tokenizer *t = gptNeox();
  ASSERT_TRUE(t);
  const std::string text = "Hi<|endoftext|>there";
  Ids parsed = t->encode(text, withSpecial());
  EXPECT_EQ(parsed, (Ids{*t->tokenToId("Hi"), 0, *t->tokenToId("there")}));
  Ids plain = t->encode(text);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 0u), 0);
  EXPECT_GT(plain.size(), 3u);
  EXPECT_EQ(t->decode(plain), text);
  EXPECT_EQ(t->decode(parsed), text);
  DecodeOptions skip;
  skip.skipSpecial = true;
  EXPECT_EQ(t->decode(parsed, skip), "Hithere");
  EXPECT_EQ(t->decode(Ids{0, 1}, skip), "");
  EXPECT_EQ(t->encode("<|padding|>", withSpecial()), (Ids{1}));
}

TEST(GptNeox, BosIsPrependedOnlyOnRequest) {
  const Tokenizer *t = gptNeox();
  ASSERT_TRUE(t);
  EncodeOptions bos;
  bos.addBos = true;
  EXPECT_EQ(t->encode("Hello world", bos), (Ids{0, 12092, 1533}));
  EXPECT_EQ(t->encode("", bos), (Ids{0}));
  EXPECT_EQ(t->encode(""), Ids{});
  Tokenizer copy = Tokenizer::fromFile(test::gptNeoxTokenizerPath());
  copy.setBosId(7);
  EXPECT_EQ(copy.encode("Hello", bos).front(), 7u);
  copy.setBosId(std::nullopt);
  EXPECT_THROW(copy.encode("Hello", bos), Error);
}

TEST(GptNeox, DecodeSkipsIdsWithoutToken) {
  const Tokenizer *t = gptNeox();
  ASSERT_TRUE(t);
  // The xLSTM 7B embedding has 50304 rows; ids past the vocabulary have no text (HF drops them).
  EXPECT_EQ(t->decode(Ids{12092, 50277, 50303, 4000000000u, 1533}), "Hello world");
}

TEST(GptNeox, DecodeRepairsCutCharacters) {
  const Tokenizer *t = gptNeox();
  ASSERT_TRUE(t);
  // U+1F600 is F0 9F 98 80; decoding only its first two byte tokens leaves an ill-formed tail.
  auto byteId = [&](unsigned char b) {
    return *t->tokenToId(std::string(bytelevel::byteToUtf8(b)));
  };
  EXPECT_EQ(t->decode(Ids{byteId(0xF0), byteId(0x9F), byteId(0x98), byteId(0x80)}),
            "\xF0\x9F\x98\x80");
  EXPECT_EQ(t->decode(Ids{byteId(0xF0), byteId(0x9F), byteId('x')}), "\xEF\xBF\xBDx");
}

TEST(GptNeox, InvalidUtf8InputIsReplacedFirst) {
  const Tokenizer *t = gptNeox();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->encode("caf\xE9!"), t->encode("caf\xEF\xBF\xBD!"));
  EXPECT_EQ(t->decode(t->encode("a\xF0\x9F\x98 b\xFF")), "a\xEF\xBF\xBD b\xEF\xBF\xBD");
}

/// Random well-formed UTF-8 drawn from several distributions (ASCII with lots of whitespace and
/// punctuation, Latin with combining marks, any scalar value).
std::string randomText(std::mt19937 &rng, int flavour, std::size_t length) {
  static const char32_t kInteresting[] = {
      ' ',    ' ',    ' ',    '\n',   '\t',   '\r',    '\'',   's',    'd',    'a',    '1',   '!',
      0x00A0, 0x0301, 0x0323, 0x00E9, 0x3000, 0x1F600, 0x200D, 0xFE0F, 0x1100, 0x1161, 0x11A8};
  std::string s;
  for (std::size_t i = 0; i < length; ++i) {
    char32_t cp;
    switch (flavour) {
    case 0:
      cp = std::uniform_int_distribution<int>(0, 127)(rng);
      break;
    case 1:
      cp = kInteresting[std::uniform_int_distribution<std::size_t>(0, std::size(kInteresting) -
                                                                          1)(rng)];
      break;
    default:
      do {
        cp = std::uniform_int_distribution<char32_t>(0, 0x10FFFF)(rng);
      } while (cp >= 0xD800 && cp < 0xE000);
    }
    utf8::append(s, cp);
  }
  return s;
}

TEST(GptNeox, RoundTripIsNfc) {
  const Tokenizer *t = gptNeox();
  ASSERT_TRUE(t);
  std::vector<std::string> texts = {"",
                                    " ",
                                    "  ",
                                    "\n\n",
                                    "Hello world",
                                    "caf\xC3\xA9 cafe\xCC\x81",
                                    "<|endoftext|>",
                                    "   leading and trailing   ",
                                    "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9",
                                    "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB",
                                    "x" + std::string(100, ' ') + "y"};
  std::string hard =
      readFile(std::string(XLC_SOURCE_DIR) + "/test/runtime/tokenizer/hard_cases.txt");
  texts.push_back(hard);
  std::mt19937 rng(1234);
  for (int flavour = 0; flavour < 3; ++flavour)
    for (int i = 0; i < 150; ++i)
      texts.push_back(
          randomText(rng, flavour, std::uniform_int_distribution<std::size_t>(0, 60)(rng)));
  for (const std::string &text : texts) {
    EXPECT_EQ(t->decode(t->encode(text)), toNfc(text)) << "text: " << text;
    EXPECT_EQ(t->decode(t->encode(text, withSpecial())), toNfc(text)) << "text: " << text;
  }
}

TEST(GptNeox, RoundTripOfRandomBytes) {
  const Tokenizer *t = gptNeox();
  ASSERT_TRUE(t);
  std::mt19937 rng(99);
  for (int i = 0; i < 300; ++i) {
    std::string bytes(std::uniform_int_distribution<std::size_t>(0, 40)(rng), '\0');
    for (char &c : bytes)
      c = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
    EXPECT_EQ(t->decode(t->encode(bytes)), toNfc(utf8::sanitize(bytes)));
  }
}

TEST(GptNeox, ConcurrentEncodesAgree) {
  const Tokenizer *t = gptNeox();
  ASSERT_TRUE(t);
  std::string text =
      readFile(std::string(XLC_SOURCE_DIR) + "/test/runtime/tokenizer/hard_cases.txt");
  Ids expected = t->encode(text);
  std::vector<Ids> results(4);
  std::vector<std::thread> threads;
  for (auto &r : results)
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i)
        r = t->encode(text);
    });
  for (auto &th : threads)
    th.join();
  for (const Ids &r : results)
    EXPECT_EQ(r, expected);
}

//===-- Synthetic tokenizer.json --------------------------------------------===//

/// A byte-level BPE tokenizer.json whose vocabulary is the 256 byte tokens (id = byte value)
/// followed by |extra| tokens (ids 256, 257, ...).
nlohmann::json syntheticJson(const std::vector<std::string> &extra = {},
                             nlohmann::json merges = nlohmann::json::array(),
                             nlohmann::json added = nlohmann::json::array()) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b)
    vocab[std::string(bytelevel::byteToUtf8(static_cast<std::uint8_t>(b)))] = b;
  for (std::size_t i = 0; i < extra.size(); ++i)
    vocab[bytelevel::encode(extra[i])] = 256 + i;
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "ByteLevel"},
        {"add_prefix_space", false},
        {"trim_offsets", true},
        {"use_regex", true}}},
      {"post_processor", {{"type", "ByteLevel"}, {"trim_offsets", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
  };
}

Tokenizer load(const nlohmann::json &j) { return Tokenizer::fromJson(j.dump(), "synthetic.json"); }

nlohmann::json addedToken(TokenId id, const std::string &content, nlohmann::json flags) {
  nlohmann::json t = {{"id", id},        {"content", content}, {"single_word", false},
                      {"lstrip", false}, {"rstrip", false},    {"normalized", false},
                      {"special", false}};
  for (auto it = flags.begin(); it != flags.end(); ++it)
    t[it.key()] = it.value();
  return t;
}

TEST(SyntheticBpe, EqualRanksMergeLeftmostFirst) {
  Tokenizer t = load(syntheticJson({"aa", "bc", "ab", "abc"}, {"a a"}));
  EXPECT_EQ(t.encode("aaaa"), (Ids{256, 256}));
  EXPECT_EQ(t.encode("aaa"), (Ids{256, 'a'}));
  EXPECT_EQ(t.encode("abc"), (Ids{'a', 'b', 'c'}));
}

TEST(SyntheticBpe, LowerRankWins) {
  // "b c" (rank 0) before "a b" (rank 1): abc -> a|bc -> abc via "a bc".
  Tokenizer t1 = load(syntheticJson({"aa", "bc", "ab", "abc"}, {"b c", "a b", "a bc"}));
  EXPECT_EQ(t1.encode("abc"), (Ids{259}));
  EXPECT_EQ(t1.encode(" abc"), (Ids{' ', 259}));
  EXPECT_EQ(t1.encode("abcd"), (Ids{259, 'd'}));
  // "a b" first: ab|c, and "ab c" is no merge. Merges as [left, right] pairs.
  using J = nlohmann::json;
  Tokenizer t2 = load(
      syntheticJson({"aa", "bc", "ab", "abc"},
                    J::array({J::array({"a", "b"}), J::array({"b", "c"}), J::array({"a", "bc"})})));
  EXPECT_EQ(t2.encode("abc"), (Ids{258, 'c'}));
  EXPECT_EQ(t2.decode(Ids{258, 'c'}), "abc");
}

TEST(SyntheticBpe, IgnoreMergesTakesWholeWords) {
  nlohmann::json j = syntheticJson({"aa", "bc", "ab", "abc"}, {"a b"});
  j["model"]["ignore_merges"] = true;
  Tokenizer t = load(j);
  EXPECT_EQ(t.encode("abc"), (Ids{259}));
  EXPECT_EQ(t.encode(" abc"), (Ids{' ', 258, 'c'})); // "Ġabc" is not a vocabulary word
}

TEST(SyntheticAddedTokens, FlagsBehaveAsInHf) {
  nlohmann::json added = nlohmann::json::array();
  added.push_back(addedToken(256, "[X]", {{"single_word", true}}));
  added.push_back(addedToken(257, "<L>", {{"lstrip", true}, {"special", true}}));
  added.push_back(addedToken(258, "<R>", {{"rstrip", true}, {"special", true}}));
  added.push_back(addedToken(259, "ab", {{"normalized", true}}));
  added.push_back(addedToken(260, "abc", {{"normalized", true}}));
  nlohmann::json j = syntheticJson({}, nlohmann::json::array(), added);
  j["normalizer"] = nullptr;
  Tokenizer t = load(j);
  EncodeOptions sp = withSpecial();
  // Expected ids as HF tokenizers 0.23.2 gives them for this file.
  EXPECT_EQ(t.encode("a[X]b"), (Ids{'a', '[', 'X', ']', 'b'}));
  EXPECT_EQ(t.encode("a [X] b"), (Ids{'a', ' ', 256, ' ', 'b'}));
  EXPECT_EQ(t.encode("[X]"), (Ids{256}));
  EXPECT_EQ(t.encode("_[X]"), (Ids{'_', '[', 'X', ']'}));
  EXPECT_EQ(t.encode("1[X]"), (Ids{'1', '[', 'X', ']'}));
  EXPECT_EQ(t.encode("[X]\xCC\x81"), (Ids{'[', 'X', ']', 0xCC, 0x81}));
  EXPECT_EQ(t.encode("x <L>y", sp), (Ids{'x', 257, 'y'}));
  EXPECT_EQ(t.encode("x   <L>y", sp), (Ids{'x', 257, 'y'}));
  EXPECT_EQ(t.encode("x<R>   y", sp), (Ids{'x', 258, 'y'}));
  EXPECT_EQ(t.encode("\t<L>\t<R>\t", sp), (Ids{257, '\t', 258}));
  EXPECT_EQ(t.encode("x\xC2\xA0<L>", sp), (Ids{'x', 257}));
  EXPECT_EQ(t.encode("<L><L>", sp), (Ids{257, 257}));
  EXPECT_EQ(t.encode("<R> <L>", sp), (Ids{258, 257}));
  EXPECT_EQ(t.encode("abcab"), (Ids{260, 259})); // leftmost-longest
  // Special tokens not asked for are plain text, spaces included.
  EXPECT_EQ(t.encode("x <L>"), (Ids{'x', ' ', '<', 'L', '>'}));
}

TEST(SyntheticAddedTokens, NormalizedTokensMatchNormalizedText) {
  nlohmann::json added = nlohmann::json::array();
  // The content is written decomposed; the NFC of it ("é") is what is searched for, in the
  // normalized text.
  added.push_back(addedToken(256, "e\xCC\x81", {{"normalized", true}}));
  Tokenizer t = load(syntheticJson({}, nlohmann::json::array(), added));
  EXPECT_EQ(t.encode("cafe\xCC\x81"), (Ids{'c', 'a', 'f', 256}));
  EXPECT_EQ(t.encode("caf\xC3\xA9"), (Ids{'c', 'a', 'f', 256}));
  // Going back, HF (0.23) names the token by its normalized content, U+00E9, which the byte-level
  // decoder reads as the single byte 0xE9: not UTF-8, so U+FFFD. Token -> id uses the content as
  // written.
  EXPECT_EQ(t.decode(Ids{256}), "\xEF\xBF\xBD");
  EXPECT_EQ(t.idToToken(256), std::optional<std::string_view>("\xC3\xA9"));
  EXPECT_EQ(t.tokenToId("e\xCC\x81"), std::optional<TokenId>(256));
  EXPECT_EQ(t.tokenToId("\xC3\xA9"), std::optional<TokenId>(0xE9));
}

//===-- Malformed tokenizer.json --------------------------------------------===//

/// The message of the xlc::Error that loading |j| throws ("" if it loads).
std::string loadError(const std::string &text) {
  try {
    Tokenizer::fromJson(text, "bad.json");
  } catch (const Error &e) {
    return e.what();
  }
  return "";
}
std::string loadError(const nlohmann::json &j) { return loadError(j.dump()); }

#define EXPECT_ERROR_MENTIONS(json, ...)                                                           \
  do {                                                                                             \
    std::string message = loadError(json);                                                         \
    EXPECT_FALSE(message.empty()) << "loaded without error";                                       \
    for (const char *part : {__VA_ARGS__})                                                         \
      EXPECT_NE(message.find(part), std::string::npos)                                             \
          << "message: " << message << "\nlacks: " << part;                                        \
  } while (0)

TEST(MalformedJson, ErrorsNameTheField) {
  EXPECT_ERROR_MENTIONS(std::string("{\"model\": "), "bad.json", "not valid JSON");
  // A key twice in one object would let the last silently win (a merge or vocabulary entry).
  EXPECT_ERROR_MENTIONS(std::string("{\"model\": {}, \"model\": {}}"), "bad.json",
                        "duplicate key 'model'");
  EXPECT_ERROR_MENTIONS(std::string("[1, 2]"), "bad.json", "expected an object");

  auto with = [](auto edit) {
    nlohmann::json j = syntheticJson({"ab"}, {"a b"});
    edit(j);
    return j;
  };
  using J = nlohmann::json;
  EXPECT_ERROR_MENTIONS(with([](J &j) { j.erase("model"); }), "model: missing");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["model"]["type"] = "WordPiece"; }), "model.type",
                        "WordPiece");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["model"]["dropout"] = 0.1; }), "model.dropout");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["model"]["continuing_subword_prefix"] = "##"; }),
                        "model.continuing_subword_prefix", "##");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["model"]["byte_fallback"] = true; }),
                        "model.byte_fallback");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["model"]["vocab"]["x"] = "seven"; }),
                        "model.vocab[\"x\"]", "token id");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["model"]["vocab"]["dup"] = 3; }), "model.vocab", "id 3");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["model"]["merges"] = J::array({"a b c"}); }),
                        "model.merges[0]");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["model"]["merges"] = J::array({"a zz"}); }),
                        "model.merges[0]", "\"zz\" is not in model.vocab");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["model"]["merges"] = J::array({J::array({"a"})}); }),
                        "model.merges[0]");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["model"]["unk_token"] = "<unk>"; }), "model.unk_token",
                        "<unk>");
  EXPECT_ERROR_MENTIONS(with([](J &j) {
                          j["normalizer"] = {{"type", "Lowercase"}};
                        }),
                        "normalizer.type", "Lowercase");
  EXPECT_ERROR_MENTIONS(with([](J &j) {
                          j["normalizer"] = {
                              {"type", "Sequence"},
                              {"normalizers", J::array({{{"type", "NFC"}}, {{"type", "NFKC"}}})}};
                        }),
                        "normalizer.normalizers[1].type", "NFKC");
  EXPECT_ERROR_MENTIONS(with([](J &j) {
                          j["pre_tokenizer"] = {{"type", "Whitespace"}};
                        }),
                        "pre_tokenizer.type", "Whitespace");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["pre_tokenizer"] = nullptr; }), "pre_tokenizer");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["pre_tokenizer"]["use_regex"] = "yes"; }),
                        "pre_tokenizer.use_regex");
  EXPECT_ERROR_MENTIONS(with([](J &j) {
                          j["decoder"] = {{"type", "WordPiece"}};
                        }),
                        "decoder.type", "WordPiece");
  EXPECT_ERROR_MENTIONS(with([](J &j) {
                          j["post_processor"] = {{"type", "TemplateProcessing"}};
                        }),
                        "post_processor.type", "TemplateProcessing");
  EXPECT_ERROR_MENTIONS(with([](J &j) { j["truncation"] = {{"max_length", 512}}; }), "truncation");
  EXPECT_ERROR_MENTIONS(with([](J &j) {
                          j["padding"] = {{"strategy", "BatchLongest"}};
                        }),
                        "padding");
  EXPECT_ERROR_MENTIONS(
      with([](J &j) { j["added_tokens"] = J::array({addedToken(300, "<x>", J::object())}); }),
      "added_tokens[0].id", "300", "257");
  EXPECT_ERROR_MENTIONS(
      with([](J &j) { j["added_tokens"] = J::array({addedToken(257, "", J::object())}); }),
      "added_tokens[0].content");
  EXPECT_ERROR_MENTIONS(with([](J &j) {
                          j["added_tokens"] = J::array({{{"id", 257}}});
                        }),
                        "added_tokens[0].content: missing");
}

TEST(MalformedJson, SupportedVariantsLoad) {
  nlohmann::json j = syntheticJson({"ab"}, {"#version: 0.2", "a b"});
  j["normalizer"] = nullptr;
  j["decoder"] = nullptr;
  j["post_processor"] = nullptr;
  j["model"]["dropout"] = nullptr;
  j["model"].erase("type");
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", nlohmann::json::array({j["pre_tokenizer"]})}};
  Tokenizer t = load(j);
  EXPECT_EQ(t.encode("ab"), (Ids{256}));
  EXPECT_EQ(t.decode(Ids{256, 'c'}), "ab c"); // no decoder: HF joins tokens with spaces
}

} // namespace
} // namespace xlc
