//===- Nvrtc.cpp ----------------------------------------------------------===//
#include "runtime/cuda/Nvrtc.h"

#include "runtime/support/Error.h"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>

#ifndef XLC_CUDA_TOOLKIT_INCLUDE_DIR
#define XLC_CUDA_TOOLKIT_INCLUDE_DIR ""
#endif
#ifndef XLC_CUDA_TOOLKIT_LIBRARY_DIR
#define XLC_CUDA_TOOLKIT_LIBRARY_DIR ""
#endif

#ifndef XLC_SOURCE_ROOT_DIR
#define XLC_SOURCE_ROOT_DIR ""
#endif

namespace xlc::cuda {
namespace {

struct LoadedNvrtc {
  std::unique_ptr<Nvrtc> nvrtc;
  std::string error;
};

std::string_view shortFile(const char *file) {
  std::string_view path(file), root(XLC_SOURCE_ROOT_DIR);
  if (!root.empty() && path.substr(0, root.size()) == root)
    path.remove_prefix(root.size());
  return path;
}

const char *errorName(const NvrtcApi &api, nvrtcResult result) {
  const char *name = api.nvrtcGetErrorString != nullptr ? api.nvrtcGetErrorString(result) : nullptr;
  return name != nullptr ? name : "nvrtcResult";
}

} // namespace

// The only code that builds an Nvrtc (a friend of the class).
struct NvrtcLoader {
  static LoadedNvrtc &loaded() {
    static LoadedNvrtc *l = [] {
      auto *result = new LoadedNvrtc();
      try {
        result->nvrtc = load();
      } catch (const Error &e) {
        result->error = e.what();
      }
      return result;
    }();
    return *l;
  }

  static std::unique_ptr<Nvrtc> load() {
    std::unique_ptr<Nvrtc> n(new Nvrtc());
    n->library_ = DynamicLibrary::open(Nvrtc::libraryCandidates(), "NVRTC");
#define XLC_NVRTC_SYMBOL(name)                                                                 \
  {                                                                                            \
    void *address = n->library_.symbol(#name);                                                 \
    if (address == nullptr)                                                                    \
      fail("NVRTC library {} does not export {}", n->library_.path(), #name);                  \
    n->api_.name = reinterpret_cast<decltype(n->api_.name)>(address);                          \
  }
#include "runtime/cuda/NvrtcSymbols.inc"
#undef XLC_NVRTC_SYMBOL
    int major = 0, minor = 0;
    // Not XLC_NVRTC_CHECK: that would re-enter loaded() during its own initialisation.
    if (nvrtcResult r = n->api_.nvrtcVersion(&major, &minor); r != NVRTC_SUCCESS)
      fail("nvrtcVersion failed: {} ({})", errorName(n->api_, r), static_cast<int>(r));
    n->version_ = {major, minor};
    return n;
  }
};

const Nvrtc &Nvrtc::instance() {
  LoadedNvrtc &l = NvrtcLoader::loaded();
  check(l.nvrtc != nullptr, "NVRTC is not available: {}", l.error);
  return *l.nvrtc;
}

bool Nvrtc::available(std::string *reason) {
  LoadedNvrtc &l = NvrtcLoader::loaded();
  if (l.nvrtc == nullptr && reason != nullptr)
    *reason = l.error;
  return l.nvrtc != nullptr;
}

std::vector<std::string> Nvrtc::libraryCandidates() {
  std::vector<std::string> names;
  if (const char *override = std::getenv("XLC_NVRTC_LIBRARY"); override != nullptr && *override)
    names.emplace_back(override);
  names.emplace_back("libnvrtc.so.13");
  names.emplace_back("libnvrtc.so");
  for (std::string dir : {std::string(XLC_CUDA_TOOLKIT_LIBRARY_DIR),
                          std::string("/usr/local/cuda/lib64")}) {
    if (dir.empty())
      continue;
    for (const char *file : {"/libnvrtc.so.13", "/libnvrtc.so"}) {
      std::string path = dir + file;
      bool seen = false;
      for (const std::string &n : names)
        seen |= n == path;
      if (!seen)
        names.push_back(std::move(path));
    }
  }
  return names;
}

std::string Nvrtc::cudaIncludeDir() {
  std::vector<std::string> candidates;
  auto addEnv = [&](const char *var, const char *suffix) {
    if (const char *value = std::getenv(var); value != nullptr && *value)
      candidates.push_back(std::string(value) + suffix);
  };
  addEnv("XLC_CUDA_INCLUDE_DIR", "");
  addEnv("CUDA_HOME", "/include");
  addEnv("CUDA_PATH", "/include");
  if (*XLC_CUDA_TOOLKIT_INCLUDE_DIR)
    candidates.emplace_back(XLC_CUDA_TOOLKIT_INCLUDE_DIR);
  candidates.emplace_back("/usr/local/cuda/include");
  std::error_code ec;
  for (const std::string &dir : candidates)
    if (std::filesystem::exists(std::filesystem::path(dir) / "cuda_bf16.h", ec))
      return dir;
  std::string tried;
  for (const std::string &dir : candidates)
    tried += "\n  " + dir;
  fail("cannot find the CUDA include directory (cuda_bf16.h) for NVRTC; tried:{}", tried);
}

std::vector<std::string> Nvrtc::defaultOptions(std::string_view arch) {
  return {fmt::format("--gpu-architecture={}", arch), "--std=c++17",
          fmt::format("--include-path={}", cudaIncludeDir())};
}

std::vector<char> Nvrtc::compile(std::string_view source, std::string_view name,
                                 std::span<const std::string> options,
                                 std::span<const NvrtcHeader> headers, std::string *log) const {
  // NVRTC wants NUL-terminated strings: copy everything once.
  const std::string sourceText(source), programName(name);
  std::vector<std::string> headerTexts, headerNames;
  headerTexts.reserve(headers.size());
  headerNames.reserve(headers.size());
  for (const NvrtcHeader &h : headers) {
    headerTexts.emplace_back(h.text);
    headerNames.emplace_back(h.name);
  }
  std::vector<const char *> textPtrs, namePtrs, optionPtrs;
  for (size_t i = 0; i < headers.size(); ++i) {
    textPtrs.push_back(headerTexts[i].c_str());
    namePtrs.push_back(headerNames[i].c_str());
  }
  for (const std::string &option : options)
    optionPtrs.push_back(option.c_str());

  nvrtcProgram program = nullptr;
  XLC_NVRTC_CHECK(api_.nvrtcCreateProgram(&program, sourceText.c_str(), programName.c_str(),
                                          static_cast<int>(headers.size()), textPtrs.data(),
                                          namePtrs.data()));
  struct Destroy {
    const NvrtcApi &api;
    nvrtcProgram &program;
    ~Destroy() { api.nvrtcDestroyProgram(&program); }
  } destroy{api_, program};

  const nvrtcResult compiled = api_.nvrtcCompileProgram(
      program, static_cast<int>(optionPtrs.size()), optionPtrs.data());
  size_t logSize = 0;
  XLC_NVRTC_CHECK(api_.nvrtcGetProgramLogSize(program, &logSize));
  std::string programLog(logSize, '\0');
  if (logSize > 0)
    XLC_NVRTC_CHECK(api_.nvrtcGetProgramLog(program, programLog.data()));
  while (!programLog.empty() && (programLog.back() == '\0' || programLog.back() == '\n'))
    programLog.pop_back();
  if (compiled != NVRTC_SUCCESS) {
    std::string joined;
    for (const std::string &option : options)
      joined += " " + option;
    fail("NVRTC failed to compile {}: {} (options:{})\n{}", programName,
         errorName(api_, compiled), joined, programLog);
  }
  size_t cubinSize = 0;
  XLC_NVRTC_CHECK(api_.nvrtcGetCUBINSize(program, &cubinSize));
  check(cubinSize > 0, "NVRTC produced no CUBIN for {} (a compute_XX architecture gives PTX only; "
                       "name a real sm_XX one)", programName);
  std::vector<char> cubin(cubinSize);
  XLC_NVRTC_CHECK(api_.nvrtcGetCUBIN(program, cubin.data()));
  if (log != nullptr)
    *log = std::move(programLog);
  return cubin;
}

void checkNvrtc(nvrtcResult result, const char *call, const char *file, int line) {
  if (result == NVRTC_SUCCESS)
    return;
  LoadedNvrtc &l = NvrtcLoader::loaded();
  const char *name = l.nvrtc != nullptr ? errorName(l.nvrtc->api(), result) : "nvrtcResult";
  fail("{} failed at {}:{}: {} ({})", call, shortFile(file), line, name, static_cast<int>(result));
}

} // namespace xlc::cuda
