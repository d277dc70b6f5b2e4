//===- DynamicLibrary.cpp -------------------------------------------------===//
#include "runtime/cuda/DynamicLibrary.h"

#include "runtime/support/Error.h"

#include <dlfcn.h>

#include <utility>

namespace xlc::cuda {

DynamicLibrary::DynamicLibrary(DynamicLibrary &&other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), path_(std::move(other.path_)) {}

DynamicLibrary &DynamicLibrary::operator=(DynamicLibrary &&other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr)
      dlclose(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

DynamicLibrary::~DynamicLibrary() {
  if (handle_ != nullptr)
    dlclose(handle_);
}

DynamicLibrary DynamicLibrary::open(std::span<const std::string> candidates,
                                    const std::string &what) {
  std::string tried;
  for (const std::string &candidate : candidates) {
    dlerror(); // clear
    if (void *handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      DynamicLibrary library;
      library.handle_ = handle;
      library.path_ = candidate;
      return library;
    }
    const char *reason = dlerror();
    tried += fmt::format("\n  {}: {}", candidate, reason != nullptr ? reason : "unknown error");
  }
  fail("cannot load {}; tried:{}", what, tried.empty() ? std::string(" (no candidates)") : tried);
}

void *DynamicLibrary::symbol(const char *symbol) const {
  return handle_ != nullptr ? dlsym(handle_, symbol) : nullptr;
}

} // namespace xlc::cuda
