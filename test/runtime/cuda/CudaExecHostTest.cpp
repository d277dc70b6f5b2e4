//===- CudaExecHostTest.cpp - Host-side parts of the CUDA backend ---------===//
//
// What of runtime/exec/cuda runs without a GPU: the bounded LRU that holds cuBLASLt's GEMM plans
// (CublasLt.h) and the private-directory check of the kernel cache (KernelCache.h). Runs in CI.
//
//===----------------------------------------------------------------------===//
#include "runtime/exec/cuda/CublasLt.h"
#include "runtime/exec/cuda/KernelCache.h"
#include "runtime/support/Error.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

namespace xlc::exec {
namespace {
namespace fs = std::filesystem;

// ---- The plan cache ---------------------------------------------------------------------------

TEST(LruCache, EvictsTheLeastRecentlyUsedEntry) {
  LruCache<int, std::string> cache(3);
  cache.insert(1, "a");
  cache.insert(2, "b");
  cache.insert(3, "c");
  ASSERT_NE(cache.find(1), nullptr); // 1 is now the most recently used; 2 the least
  cache.insert(4, "d");
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_FALSE(cache.contains(2));
  EXPECT_EQ(*cache.find(1), "a");
  EXPECT_EQ(*cache.find(3), "c");
  EXPECT_EQ(*cache.find(4), "d");
  // Inserting an existing key replaces the value and evicts nothing.
  cache.insert(3, "C");
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_EQ(*cache.find(3), "C");
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.find(1), nullptr);
}

TEST(LruCache, ValuesStayPutUntilEvicted) {
  LruCache<int, std::unique_ptr<int>> cache(2);
  int *first = cache.insert(1, std::make_unique<int>(10)).get();
  std::unique_ptr<int> &second = cache.insert(2, std::make_unique<int>(20));
  ASSERT_NE(cache.find(1), nullptr); // reordering moves no value
  EXPECT_EQ(cache.find(1)->get(), first);
  EXPECT_EQ(*second, 20);
  EXPECT_EQ(&second, cache.find(2));
}

// GEMM shapes as varied prompt lengths make them: the plan cache never exceeds its bound.
TEST(LruCache, PlanCacheIsBoundedUnderVariedPromptLengths) {
  LruCache<GemmShape, std::unique_ptr<int>> plans(CublasLt::kMaxPlans);
  for (std::uint64_t tokens = 1; tokens <= 5000; ++tokens)
    for (std::uint64_t n : {4096u, 8192u, 10944u}) {
      GemmShape shape{.m = tokens, .n = n, .k = 4096};
      if (plans.find(shape) == nullptr)
        plans.insert(shape, std::make_unique<int>(0));
      ASSERT_LE(plans.size(), CublasLt::kMaxPlans);
    }
  EXPECT_EQ(plans.size(), CublasLt::kMaxPlans);
  EXPECT_EQ(plans.evictions(), 3u * 5000u - CublasLt::kMaxPlans);
  // The most recent shapes are the ones kept.
  EXPECT_TRUE(plans.contains(GemmShape{.m = 5000, .n = 10944, .k = 4096}));
  EXPECT_FALSE(plans.contains(GemmShape{.m = 1, .n = 4096, .k = 4096}));
}

// ---- The kernel cache directory ---------------------------------------------------------------

class KernelCacheDir : public ::testing::Test {
protected:
  void SetUp() override {
    // A private parent, so that the test does not depend on who else uses the temp directory.
    root_ = fs::temp_directory_path() /
            ("xlc-kernel-cache-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directory(root_);
    fs::permissions(root_, fs::perms::owner_all);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(root_, fs::perms::owner_all, ec);
    fs::remove_all(root_, ec);
  }
  static unsigned modeOf(const fs::path &p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }
  static std::string refusal(const fs::path &p) {
    try {
      checkPrivateCacheDir(p.string());
    } catch (const Error &e) {
      return e.what();
    }
    return "";
  }
  fs::path root_;
};

TEST_F(KernelCacheDir, MissingDirectoryIsCreatedPrivate) {
  const fs::path dir = root_ / "a" / "b" / "kernels";
  const std::string used = checkPrivateCacheDir(dir.string() + "/");
  EXPECT_EQ(used, fs::canonical(dir).string());
  EXPECT_EQ(modeOf(dir), 0700u);
  KernelCache cache(dir.string());
  EXPECT_EQ(cache.directory(), fs::canonical(dir).string());
  EXPECT_TRUE(cache.disabledReason().empty());
}

TEST_F(KernelCacheDir, PrivateOrReadOnlyForOthersIsAccepted) {
  const fs::path dir = root_ / "kernels";
  fs::create_directory(dir);
  fs::permissions(dir, fs::perms::owner_all);
  EXPECT_EQ(refusal(dir), "");
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);
  EXPECT_EQ(refusal(dir), "");
}

TEST_F(KernelCacheDir, WritableByOthersIsRefusedAndDisablesTheCache) {
  const fs::path dir = root_ / "shared";
  fs::create_directory(dir);
  fs::permissions(dir, fs::perms::all); // 0777, as a /tmp folder made by someone else
  const std::string why = refusal(dir);
  EXPECT_NE(why.find("writable by group or others (mode 0777)"), std::string::npos) << why;
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_all);
  EXPECT_NE(refusal(dir).find("writable by group or others (mode 0770)"), std::string::npos);

  KernelCache cache(dir.string());
  EXPECT_EQ(cache.directory(), "");
  EXPECT_NE(cache.disabledReason().find("writable by group or others"), std::string::npos);
  EXPECT_EQ(KernelCache("").directory(), "");
  EXPECT_EQ(KernelCache("").disabledReason(), "");
}

TEST_F(KernelCacheDir, ParentWritableByOthersIsRefusedUnlessSticky) {
  const fs::path parent = root_ / "open";
  const fs::path dir = parent / "kernels";
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all);
  fs::permissions(parent, fs::perms::all);
  const std::string why = refusal(dir);
  EXPECT_NE(why.find("lies below " + fs::canonical(parent).string()), std::string::npos) << why;
  EXPECT_NE(why.find("without the sticky bit (mode 0777)"), std::string::npos) << why;
  // Like /tmp: others may add entries but not rename or remove this user's.
  fs::permissions(parent, fs::perms::all | fs::perms::sticky_bit);
  EXPECT_EQ(refusal(dir), "");
}

TEST_F(KernelCacheDir, SymbolicLinkIsResolvedOnce) {
  const fs::path real = root_ / "real";
  fs::create_directory(real);
  fs::permissions(real, fs::perms::owner_all);
  fs::create_directory_symlink(real, root_ / "link");
  EXPECT_EQ(checkPrivateCacheDir((root_ / "link").string()), fs::canonical(real).string());
}

TEST_F(KernelCacheDir, NotADirectoryIsRefused) {
  const fs::path file = root_ / "file";
  { std::ofstream(file) << "x"; }
  EXPECT_NE(refusal(file).find("is not a directory"), std::string::npos) << refusal(file);
}

TEST_F(KernelCacheDir, OwnedBySomeoneElseIsRefused) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "giving a directory to another user needs root";
  const fs::path dir = root_ / "theirs";
  fs::create_directory(dir);
  fs::permissions(dir, fs::perms::owner_all);
  ASSERT_EQ(::chown(dir.c_str(), 54321, 54321), 0);
  const std::string why = refusal(dir);
  EXPECT_NE(why.find("is owned by uid 54321, not by this user"), std::string::npos) << why;
  // And a parent owned by another user (neither root nor this one).
  const fs::path below = dir / "kernels";
  fs::create_directory(below);
  fs::permissions(below, fs::perms::owner_all);
  EXPECT_NE(refusal(below).find("owned by uid 54321 (neither root nor this user"),
            std::string::npos)
      << refusal(below);
}

} // namespace
} // namespace xlc::exec
