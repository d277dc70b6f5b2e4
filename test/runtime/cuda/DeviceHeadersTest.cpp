//===- DeviceHeadersTest.cpp - The embedded device-header library ---------===//
#include "runtime/device/DeviceHeaders.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace {

std::string readFile(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every .cuh of runtime/device is embedded, under its include name, with identical text, and
// nothing else is: adding a header without listing it in runtime/device/CMakeLists.txt fails here.
TEST(DeviceHeaders, EveryHeaderEmbeddedVerbatim) {
  const std::filesystem::path dir = std::filesystem::path(XLC_SOURCE_DIR) / "runtime" / "device";
  std::set<std::string> onDisk;
  for (const auto &entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".cuh")
      onDisk.insert("xlc/device/" + entry.path().filename().string());
  ASSERT_FALSE(onDisk.empty());

  std::set<std::string> embedded;
  for (const xlc::device::EmbeddedHeader &h : xlc::device::embeddedHeaders()) {
    EXPECT_TRUE(embedded.insert(std::string(h.name)).second) << "duplicate " << h.name;
    const std::string file = std::string(h.name).substr(std::string("xlc/device/").size());
    EXPECT_EQ(h.text, readFile(dir / file)) << h.name << " is stale; rebuild";
    EXPECT_EQ(h.text.data()[h.text.size()], '\0') << h.name << " must be NUL-terminated";
  }
  EXPECT_EQ(embedded, onDisk);
}

TEST(DeviceHeaders, SortedAndFindable) {
  auto headers = xlc::device::embeddedHeaders();
  for (size_t i = 1; i < headers.size(); ++i)
    EXPECT_LT(headers[i - 1].name, headers[i].name);
  const xlc::device::EmbeddedHeader *common = xlc::device::findEmbeddedHeader("xlc/device/common.cuh");
  ASSERT_NE(common, nullptr);
  EXPECT_NE(common->text.find("XLC_DEVICE_COMMON_CUH"), std::string_view::npos);
  EXPECT_EQ(xlc::device::findEmbeddedHeader("xlc/device/nope.cuh"), nullptr);
}

TEST(DeviceHeaders, HashIsSha256Hex) {
  const std::string_view hash = xlc::device::headerHash();
  ASSERT_EQ(hash.size(), 64u);
  for (char c : hash)
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << hash;
  EXPECT_EQ(hash, xlc::device::headerHash()); // stable within the build
}

} // namespace
