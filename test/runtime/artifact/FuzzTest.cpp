//===- FuzzTest.cpp - Random damage never crashes the reader --------------===//
//
// Three seeded loops over the test artifact:
//   1. random byte flips anywhere in the file: the checksum (or the header checks) must reject
//      every one of them;
//   2. random edits of the payload text (flips, JSON-significant bytes, deletions, duplicated
//      ranges), re-wrapped with a correct checksum so the JSON parser and the reader see them;
//   3. random edits of the payload tree (numbers replaced by boundary values, fields removed,
//      array elements duplicated or dropped, strings swapped for symbols), which survive JSON
//      parsing and exercise the validator.
// Every case must end in success or a clean xlc::Error (anything else escapes and fails the
// test; the sanitizer build catches memory errors and UB). A survivor must also pass through
// validate() or fail cleanly, print a summary, and re-serialize to bytes that parse back to the
// same artifact. (About 7% of text edits and 25% of tree edits survive parsing; the rejections
// spread over the JSON, field, reference, shape, binding and arena checks.)
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"
#include "runtime/artifact/Summary.h"
#include "runtime/artifact/Validate.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <random>
#include <sstream>

using namespace xlc::artifact;
using namespace xlc::artifact::testing;
using Json = nlohmann::json;

namespace {

struct Outcome {
  int accepted = 0, rejected = 0;
};

/// Parses |bytes|; on success exercises everything a loaded artifact goes through.
void tryOne(const std::vector<std::uint8_t> &bytes, Outcome &outcome) {
  Artifact a;
  try {
    a = parseArtifact(bytes, kSource);
  } catch (const xlc::Error &) {
    ++outcome.rejected;
    return;
  }
  ++outcome.accepted;
  try {
    validate(a, 8, 8192);
  } catch (const xlc::Error &) {
  }
  std::ostringstream summary;
  printSummary(summary, a);
  Artifact back = parseArtifact(serialize(a), kSource);
  ASSERT_EQ(back, a);
}

TEST(Fuzz, ByteFlipsAreAllRejected) {
  const std::vector<std::uint8_t> original = serialize(makeTestArtifact());
  std::mt19937_64 rng(20240601);
  for (int i = 0; i < 4000; ++i) {
    std::vector<std::uint8_t> bytes = original;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f)
      bytes[rng() % bytes.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    if (bytes == original)
      continue;
    std::string message = errorOf([&] { parseArtifact(bytes, kSource); });
    ASSERT_NE(message, "<no error>") << "mutation " << i << " was accepted";
    ASSERT_EQ(message.rfind("test.xlca: ", 0), 0u) << message;
  }
}

TEST(Fuzz, PayloadTextMutationsEndCleanly) {
  const std::string original = toJson(makeTestArtifact()).dump();
  static const char kSignificant[] = "\"{}[],:0123456789-.eE \\uBS\x80\xff";
  std::mt19937_64 rng(7);
  auto pick = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  Outcome outcome;
  for (int i = 0; i < 1000; ++i) {
    std::string text = original;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      std::size_t at = pick(text.size());
      switch (rng() % 5) {
      case 0:
        text[at] = static_cast<char>(text[at] ^ (1 << (rng() % 8)));
        break;
      case 1:
        text[at] = kSignificant[pick(sizeof(kSignificant) - 1)];
        break;
      case 2:
        text.erase(at, 1 + pick(16));
        break;
      case 3: { // duplicate a range (repeats keys, elements, digits)
        std::size_t len = 1 + pick(std::min<std::size_t>(64, text.size() - at));
        text.insert(at, text.substr(at, len));
        break;
      }
      case 4:
        text.insert(at, 1, kSignificant[pick(sizeof(kSignificant) - 1)]);
        break;
      }
    }
    tryOne(wrapContainer(text), outcome);
    if (HasFatalFailure())
      FAIL() << "payload mutation " << i;
  }
  EXPECT_GT(outcome.rejected, 0);
  // Edits inside kernel sources, names and attrs are harmless, so some must survive.
  EXPECT_GT(outcome.accepted, 0);
}

/// Every value in |j| (depth first), so one can be picked at random.
void collect(Json &j, std::vector<Json *> &out) {
  out.push_back(&j);
  if (j.is_structured())
    for (Json &child : j)
      collect(child, out);
}

TEST(Fuzz, PayloadTreeMutationsEndCleanly) {
  const Json original = toJson(makeTestArtifact());
  const Json boundary[] = {0,
                           1,
                           2,
                           255,
                           256,
                           257,
                           1024,
                           65535,
                           65536,
                           (1ull << 31) - 1,
                           1ull << 32,
                           1ull << 62,
                           1ull << 63,
                           ~0ull,
                           -1,
                           0.5,
                           1e300,
                           "B",
                           "S",
                           "BS",
                           "",
                           nullptr,
                           Json::array(),
                           Json::object(),
                           Json::parse(R"({"BS": 256, "div": 2})"),
                           Json::parse(R"({"S": 1, "B": 1})")};
  std::mt19937_64 rng(99);
  Outcome outcome;
  for (int i = 0; i < 550; ++i) {
    Json payload = original;
    int edits = 1 + static_cast<int>(rng() % 2);
    for (int e = 0; e < edits; ++e) {
      std::vector<Json *> nodes;
      collect(payload, nodes);
      Json &node = *nodes[rng() % nodes.size()];
      switch (rng() % 4) {
      case 0:
      case 1: // replace a value (most often a leaf) by a boundary value
        node = boundary[rng() % std::size(boundary)];
        break;
      case 2: // remove a field or an element
        if (node.is_object() && !node.empty()) {
          auto it = node.begin();
          std::advance(it, static_cast<long>(rng() % node.size()));
          node.erase(it);
        } else if (node.is_array() && !node.empty()) {
          node.erase(rng() % node.size());
        }
        break;
      case 3: // duplicate an element, or add a bogus field
        if (node.is_array() && !node.empty())
          node.push_back(node[rng() % node.size()]);
        else if (node.is_object())
          node["bogus"] = 1;
        break;
      }
    }
    tryOne(rewrap(payload), outcome);
    if (HasFatalFailure())
      FAIL() << "tree mutation " << i;
  }
  EXPECT_GT(outcome.rejected, 0);
  EXPECT_GT(outcome.accepted, 0);
}

} // namespace
