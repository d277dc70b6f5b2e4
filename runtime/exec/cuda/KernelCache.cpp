//===- KernelCache.cpp - NVRTC compilation with a disk cache --------------===//

#include "runtime/exec/cuda/KernelCache.h"

#include "runtime/artifact/Serialize.h"
#include "runtime/cuda/Nvrtc.h"
#include "runtime/device/DeviceHeaders.h"
#include "runtime/support/Error.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef XLC_RUNTIME_VERSION
#define XLC_RUNTIME_VERSION "unknown"
#endif

namespace xlc::exec {
namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'X', 'L', 'C', 'K', 'C', 'U', 'B', '1'};

std::uint64_t hashOf(std::string_view text) {
  return artifact::fnv1a64(
      {reinterpret_cast<const std::uint8_t *>(text.data()), text.size()});
}

void appendU64(std::string &out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool readU64(std::string_view &in, std::uint64_t &v) {
  if (in.size() < 8)
    return false;
  v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  in.remove_prefix(8);
  return true;
}

/// The CUBIN stored under |path| for exactly |key|, or nothing (absent, other key, damaged).
std::optional<std::vector<char>> readEntry(const fs::path &path, const std::string &key) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return std::nullopt;
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::string_view in(bytes);
  if (in.size() < sizeof(kMagic) || std::memcmp(in.data(), kMagic, sizeof(kMagic)) != 0)
    return std::nullopt;
  in.remove_prefix(sizeof(kMagic));
  std::uint64_t keyLen = 0, cubinLen = 0, checksum = 0;
  if (!readU64(in, keyLen) || in.size() < keyLen || in.substr(0, keyLen) != key)
    return std::nullopt;
  in.remove_prefix(keyLen);
  if (!readU64(in, cubinLen) || in.size() != cubinLen + 8)
    return std::nullopt;
  std::string_view cubin = in.substr(0, cubinLen);
  in.remove_prefix(cubinLen);
  if (!readU64(in, checksum) || checksum != hashOf(cubin) || cubin.empty())
    return std::nullopt;
  return std::vector<char>(cubin.begin(), cubin.end());
}

/// Writes the entry to a temporary file in the same directory and renames it into place.
/// Failure to cache is not an error (a read-only home directory must not stop a run).
void writeEntry(const fs::path &path, const std::string &key, const std::vector<char> &cubin) {
  std::string bytes(kMagic, sizeof(kMagic));
  appendU64(bytes, key.size());
  bytes += key;
  appendU64(bytes, cubin.size());
  bytes.append(cubin.data(), cubin.size());
  appendU64(bytes, hashOf({cubin.data(), cubin.size()}));
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::random_device rd;
  fs::path tmp = path;
  tmp += fmt::format(".tmp.{}.{:x}", ::getpid(), rd());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      return;
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush())
      return (void)fs::remove(tmp, ec);
  }
  fs::rename(tmp, path, ec);
  if (ec)
    fs::remove(tmp, ec);
}

} // namespace

artifact::Kernel runtimeKernel(std::string name, std::string family, std::string_view header,
                               std::string_view config, std::string_view params,
                               std::string_view function, unsigned threads) {
  artifact::Kernel k;
  k.source = fmt::format("// xlc runtime kernel: {}\n#include \"xlc/device/{}.cuh\"\n"
                         "using Config = {};\n"
                         "extern \"C\" __global__ void __launch_bounds__(Config::kThreads)\n"
                         "xlc_kernel(xlc::device::{} p) {{\n"
                         "  xlc::device::grid_dependency_sync();\n"
                         "  xlc::device::{}<Config>(p);\n}}\n",
                         name, header, config, params, function);
  k.name = std::move(name);
  k.family = std::move(family);
  k.entry = "xlc_kernel";
  k.options = {"--std=c++17"};
  k.block = {threads, 1, 1};
  return k;
}

std::string defaultKernelCacheDir() {
  auto env = [](const char *name) -> std::string {
    const char *v = std::getenv(name);
    return v != nullptr ? v : "";
  };
  if (std::string dir = env("XLC_CACHE_DIR"); !dir.empty())
    return dir;
  if (std::string dir = env("XDG_CACHE_HOME"); !dir.empty())
    return dir + "/xlc/kernels";
  if (std::string home = env("HOME"); !home.empty())
    return home + "/.cache/xlc/kernels";
  return "";
}

std::string checkPrivateCacheDir(const std::string &directory) {
  check(!directory.empty(), "the kernel cache directory is an empty path");
  fs::path dir = fs::path(directory).lexically_normal();
  if (!dir.has_filename() && dir.has_parent_path() && dir != dir.root_path())
    dir = dir.parent_path(); // "a/b/" -> "a/b"
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    const int err = errno;
    check(err == ENOENT, "kernel cache {}: {}", directory, std::strerror(err));
    // Missing: the parents with the default mode, the cache itself private from the start.
    std::error_code ec;
    if (dir.has_parent_path())
      fs::create_directories(dir.parent_path(), ec);
    check(!ec, "cannot create {} for the kernel cache: {}", dir.parent_path().string(),
          ec.message());
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      fail("cannot create the kernel cache {}: {}", directory, std::strerror(errno));
  }
  std::error_code ec;
  const fs::path canonical = fs::canonical(dir, ec);
  check(!ec, "kernel cache {}: {}", directory, ec.message());
  const uid_t me = ::geteuid();
  auto statOf = [&](const fs::path &p) {
    struct stat s {};
    if (::stat(p.c_str(), &s) != 0)
      fail("kernel cache {}: cannot stat {}: {}", directory, p.string(), std::strerror(errno));
    return s;
  };
  auto mode = [](const struct stat &s) { return fmt::format("{:04o}", s.st_mode & 07777); };
  st = statOf(canonical);
  check(S_ISDIR(st.st_mode), "kernel cache {} is not a directory", canonical.string());
  check(st.st_uid == me, "kernel cache {} is owned by uid {}, not by this user (uid {})",
        canonical.string(), st.st_uid, me);
  check((st.st_mode & (S_IWGRP | S_IWOTH)) == 0,
        "kernel cache {} is writable by group or others (mode {}), so another user could plant "
        "kernels in it (chmod go-w it)",
        canonical.string(), mode(st));
  // Every directory above it: one that another user may change could have the cache renamed
  // and replaced. Root's and this user's own are fine, and so are shared ones with the sticky bit
  // (/tmp), where only an entry's owner may rename or remove it.
  for (fs::path p = canonical.parent_path();; p = p.parent_path()) {
    const struct stat s = statOf(p);
    check(s.st_uid == 0 || s.st_uid == me,
          "kernel cache {} lies below {}, which is owned by uid {} (neither root nor this user, "
          "uid {}), so its owner could replace the cache",
          canonical.string(), p.string(), s.st_uid, me);
    check((s.st_mode & (S_IWGRP | S_IWOTH)) == 0 || (s.st_mode & S_ISVTX) != 0,
          "kernel cache {} lies below {}, which is writable by group or others without the "
          "sticky bit (mode {}), so another user could replace the cache",
          canonical.string(), p.string(), mode(s));
    if (p == p.parent_path())
      break;
  }
  return canonical.string();
}

KernelCache::KernelCache(std::string directory) {
  if (directory.empty())
    return;
  try {
    directory_ = checkPrivateCacheDir(directory);
  } catch (const Error &e) {
    disabledReason_ = e.what();
    std::fprintf(stderr,
                 "[xlc] warning: kernel cache disabled, every kernel is compiled this run: %s. "
                 "The cache must be a private directory (--kernel-cache DIR or $XLC_CACHE_DIR "
                 "names one; 'off' disables the cache).\n",
                 disabledReason_.c_str());
  }
}

std::string KernelCache::keyOf(const artifact::Kernel &kernel, const std::string &arch,
                               std::string_view deviceHeadersHash) {
  const auto [major, minor] = cuda::Nvrtc::instance().version();
  std::ostringstream key;
  key << "xlc kernel cache 1\nruntime " << XLC_RUNTIME_VERSION << "\nnvrtc " << major << "."
      << minor << "\narch " << arch << "\nheaders " << deviceHeadersHash << "\noptions";
  // Length-prefixed, so {"-DA=1 -DB=2"} and {"-DA=1", "-DB=2"} are different keys.
  for (const std::string &option : kernel.options)
    key << " " << option.size() << ":" << option;
  key << "\nentry " << kernel.entry << "\nsource " << kernel.source.size() << "\n"
      << kernel.source;
  return key.str();
}

CompiledCubin KernelCache::get(const artifact::Kernel &kernel, const std::string &arch) const {
  const std::string key = keyOf(kernel, arch, device::headerHash());
  fs::path path;
  if (!directory_.empty()) {
    path = fs::path(directory_) / fmt::format("{}-{:016x}.cubin", kernel.family, hashOf(key));
    if (auto cubin = readEntry(path, key))
      return {std::move(*cubin), true, 0.0};
  }
  // Options: the artifact's own (e.g. --std=c++17) and the target; the include path for
  // cuda_bf16.h comes from the toolkit on this machine and does not change the binary.
  std::vector<std::string> options = kernel.options;
  options.push_back("--gpu-architecture=" + arch);
  options.push_back("--include-path=" + cuda::Nvrtc::cudaIncludeDir());
  std::vector<cuda::NvrtcHeader> headers;
  for (const device::EmbeddedHeader &h : device::embeddedHeaders())
    headers.push_back({h.name, h.text});
  const auto start = std::chrono::steady_clock::now();
  std::vector<char> cubin =
      cuda::Nvrtc::instance().compile(kernel.source, kernel.name + ".cu", options, headers);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!path.empty())
    writeEntry(path, key, cubin);
  return {std::move(cubin), false, seconds};
}

} // namespace xlc::exec
