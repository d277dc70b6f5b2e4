//===- JsonTest.cpp - The strict JSON helper ------------------------------===//
//
// runtime/support/Json.h directly. Its users test it too, through their formats: safetensors
// headers and index files (test/runtime/weights/CorruptionTest.cpp), the artifact payload
// (test/runtime/artifact/CorruptionTest.cpp), config.json (test/runtime/config).
//
//===----------------------------------------------------------------------===//

#include "runtime/support/Json.h"

#include "runtime/support/Error.h"
#include "test/runtime/ErrorMatchers.h"

#include <gtest/gtest.h>

#include <string>

namespace xlc::json {
namespace {

using xlc::testing::errorOf;

std::string parseError(std::string_view text, int maxDepth = 8) {
  return errorOf([&] { parseStrictJson(text, "f.json", maxDepth); });
}

TEST(StrictJson, AcceptsOrdinaryJson) {
  Json v = parseStrictJson(R"({"a": [1, 2.5, "x", null, true], "b": {"a": 1}})", "f.json", 8);
  EXPECT_EQ(v["a"].size(), 5u);
  EXPECT_EQ(v["b"]["a"], 1); // the same key in different objects is fine
}

TEST(StrictJson, RefusesWhatNlohmannAccepts) {
  EXPECT_EQ(parseError(R"({"a": 1, "a": 2})"), "f.json: duplicate key 'a' in one JSON object");
  EXPECT_EQ(parseError(R"({"x": {"k": 1, "k": 1}})"),
            "f.json: duplicate key 'k' in one JSON object");
  EXPECT_EQ(parseError(std::string_view("{}\0{}", 5)),
            "f.json: not valid JSON: NUL byte at offset 2");
  EXPECT_EQ(parseError("[[[1]]]", 1),
            "f.json: JSON nests deeper than the 2 levels this format uses");
  EXPECT_EQ(parseError("{\"a\xc0\xaf\": 1}"), "f.json: not valid UTF-8 (byte 0xc0 at offset 3)");
  EXPECT_EQ(parseError("\"\xed\xa0\x80\""), "f.json: not valid UTF-8 (byte 0xed at offset 1)");
}

TEST(StrictJson, SyntaxErrorsNameTheLastKey) {
  std::string message = parseError(R"({"eps": 1e999})");
  EXPECT_NE(message.find("f.json: not valid JSON: "), std::string::npos) << message;
  EXPECT_NE(message.find("number overflow parsing '1e999'"), std::string::npos) << message;
  EXPECT_NE(message.find("(after the key 'eps')"), std::string::npos) << message;
  EXPECT_NE(parseError("").find("f.json: not valid JSON: "), std::string::npos);
}

TEST(StrictJson, Utf8Scanner) {
  EXPECT_FALSE(findInvalidUtf8("plain, \xc3\xa9, \xe2\x82\xac, \xf0\x9f\x98\x80").has_value());
  EXPECT_EQ(findInvalidUtf8("ab\x80"), 2u);           // continuation byte without a lead
  EXPECT_EQ(findInvalidUtf8("\xf4\x90\x80\x80"), 0u); // above U+10FFFF
  EXPECT_EQ(findInvalidUtf8("a\xe2\x82"), 1u);        // truncated
}

TEST(Messages, QuoteTextEscapesAndShortens) {
  EXPECT_EQ(quoteText("plain"), "'plain'");
  EXPECT_EQ(quoteText("it's \\ \n\x1b\xc3\xa9"), "'it\\'s \\\\ \\x0a\\x1b\\xc3\\xa9'");
  EXPECT_EQ(quoteText(std::string(100, 'x')), "'" + std::string(80, 'x') + "...' (100 bytes)");
}

TEST(Messages, TypeNamesAndDescriptions) {
  EXPECT_EQ(typeName(Json::parse("4")), "an unsigned integer"); // as the parser stores it
  EXPECT_EQ(typeName(Json(4)), "an integer");
  EXPECT_EQ(typeName(Json(-4)), "a negative integer");
  EXPECT_EQ(typeName(Json(4.0)), "a floating-point number");
  EXPECT_EQ(typeName(Json("x")), "a string");
  EXPECT_EQ(typeName(Json::array()), "an array");
  EXPECT_EQ(describe(Json(4)), "the integer 4");
  EXPECT_EQ(describe(Json(4.5)), "the number 4.5");
  EXPECT_EQ(describe(Json("x\n")), "the string 'x\\x0a'");
  EXPECT_EQ(describe(Json(nullptr)), "null");
}

TEST(Accessors, CheckTypeAndRange) {
  Loc loc{"f.json: item 0", "size"};
  EXPECT_EQ(asU64(Json(7u), loc), 7u);
  EXPECT_EQ(errorOf([&] { asU64(Json(7.0), loc); }),
            "f.json: item 0: size must be a non-negative integer, got the number 7");
  EXPECT_EQ(errorOf([&] { asU32(Json(std::uint64_t{1} << 32), loc); }),
            "f.json: item 0: size must be at most 4294967295, got 4294967296");
  EXPECT_EQ(asI64(Json(-3), loc), -3);
  EXPECT_EQ(asNumber(Json(3), loc), 3.0);
  EXPECT_EQ(errorOf([&] { asString(Json(3), loc); }),
            "f.json: item 0: size must be a string, got the integer 3");
  EXPECT_EQ(loc.child("dims").index(2).str(), "f.json: item 0: size.dims[2]");
}

TEST(Accessors, ObjectReaderRefusesMissingAndUnknownFields) {
  Json v = parseStrictJson(R"({"id": 3, "name": "w", "extra": 1})", "f.json", 4);
  ObjectReader r(v, {"f.json: buffer 0", ""});
  EXPECT_EQ(r.u32("id"), 3u);
  EXPECT_EQ(r.string("name"), "w");
  EXPECT_EQ(r.find("absent"), nullptr);
  EXPECT_EQ(errorOf([&] { r.get("shape"); }), "f.json: buffer 0: missing field 'shape'");
  EXPECT_EQ(errorOf([&] { r.finish(); }), "f.json: buffer 0: unknown field 'extra'");
  EXPECT_EQ(errorOf([&] {
              ObjectReader(Json::array(), {"f.json", ""});
            }),
            "f.json must be an object, got an array");
}

} // namespace
} // namespace xlc::json
