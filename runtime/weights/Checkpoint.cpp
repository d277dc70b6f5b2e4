//===- Checkpoint.cpp - A model's safetensors weights, one file or sharded ===//

#include "runtime/weights/Checkpoint.h"

#include "runtime/support/Error.h"
#include "runtime/support/Json.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/Progress.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <system_error>

namespace xlc::weights {

namespace fs = std::filesystem;

namespace {

/// An index is a flat map of names; 100 MB is far beyond any real one (the 7B index is 40 kB).
constexpr std::uint64_t kMaxIndexSize = 100'000'000;
/// The index nests root -> weight_map/metadata -> values; a little slack for tools that put
/// structured values in metadata, while still bounding the tree a hostile file can build.
constexpr int kIndexMaxDepth = 8;
/// How many problems one error message lists before summarising the rest.
constexpr std::size_t kMaxListedProblems = 25;

std::string parentDirectory(const std::string &file) {
  fs::path parent = fs::path(file).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

bool isRegularFile(const fs::path &p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

/// A shard must be a file next to the index: no directories, no way out of the checkpoint.
bool isPlainFileName(const std::string &name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

[[noreturn]] void failWithProblems(const std::string &what,
                                   const std::vector<std::string> &problems) {
  std::string message =
      fmt::format("{} ({} problem{}):", what, problems.size(), problems.size() == 1 ? "" : "s");
  for (std::size_t i = 0; i < problems.size() && i < kMaxListedProblems; ++i)
    message += "\n  - " + problems[i];
  if (problems.size() > kMaxListedProblems)
    message += fmt::format("\n  ... and {} more", problems.size() - kMaxListedProblems);
  throw Error(message);
}

} // namespace

Checkpoint Checkpoint::open(const std::string &path) {
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status))
    fail("'{}': no such file or directory", path);
  if (fs::is_directory(status)) {
    fs::path single = fs::path(path) / kSingleFileName;
    fs::path index = fs::path(path) / kIndexFileName;
    if (isRegularFile(single)) {
      Checkpoint result = openSingle(single.string());
      if (isRegularFile(index))
        result.warnings_.push_back(
            fmt::format("'{}' holds both {} and {}; using {} as transformers does", path,
                        kSingleFileName, kIndexFileName, kSingleFileName));
      return result;
    }
    if (isRegularFile(index))
      return openSharded(index.string());
    std::vector<std::string> found;
    for (const fs::directory_entry &entry : fs::directory_iterator(path, ec))
      if (entry.path().extension() == ".safetensors")
        found.push_back(entry.path().filename().string());
    std::sort(found.begin(), found.end());
    std::string hint;
    if (!found.empty()) {
      hint = " (it has ";
      for (std::size_t i = 0; i < found.size() && i < 5; ++i)
        hint += (i ? ", " : "") + json::quoteText(found[i]);
      hint += found.size() > 5 ? ", ...; " : "; ";
      hint += "pass one file's path to open it alone)";
    }
    fail("'{}': neither {} nor {} is present{}", path, kSingleFileName, kIndexFileName, hint);
  }
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0)
    return openSharded(path);
  return openSingle(path);
}

Checkpoint Checkpoint::openSingle(const std::string &file) {
  Checkpoint result;
  result.layout_ = Layout::SingleFile;
  result.path_ = file;
  result.directory_ = parentDirectory(file);
  result.files_.push_back(SafetensorsFile::open(file));
  result.tensors_ = result.files_[0].tensors();
  result.warnings_ = result.files_[0].header().warnings;
  return result;
}

Checkpoint Checkpoint::openSharded(const std::string &indexPath) {
  Checkpoint result;
  result.layout_ = Layout::Sharded;
  result.path_ = indexPath;
  result.directory_ = parentDirectory(indexPath);

  MappedFile indexFile = MappedFile::open(indexPath);
  if (indexFile.size() > kMaxIndexSize)
    fail("'{}': index is {} bytes, more than the {} bytes any index needs", indexPath,
         indexFile.size(), kMaxIndexSize);
  std::string label = fmt::format("'{}'", indexPath);
  nlohmann::json root = json::parseStrictJson(
      std::string_view(reinterpret_cast<const char *>(indexFile.data()), indexFile.size()), label,
      kIndexMaxDepth);
  if (!root.is_object())
    fail("{}: index must be a JSON object, found {}", label, json::typeName(root));
  if (!root.contains("weight_map"))
    fail("{}: index has no 'weight_map'", label);
  const nlohmann::json &weightMap = root["weight_map"];
  if (!weightMap.is_object())
    fail("{}: 'weight_map' must be an object mapping tensor names to shard files, found {}", label,
         json::typeName(weightMap));

  std::vector<std::string> problems;
  // tensor -> shard named by the index; shard -> tensors the index puts there
  std::map<std::string, std::string> shardOf;
  std::map<std::string, std::vector<std::string>> listedIn;
  for (const auto &item : weightMap.items()) {
    if (!item.value().is_string()) {
      problems.push_back(fmt::format("weight_map entry {} must be a shard file name, found {}",
                                     json::quoteText(item.key()), json::typeName(item.value())));
      continue;
    }
    const std::string &shard = item.value().get_ref<const std::string &>();
    if (!isPlainFileName(shard)) {
      problems.push_back(fmt::format("weight_map maps {} to {}, which is not a plain file name "
                                     "in the index's directory",
                                     json::quoteText(item.key()), json::quoteText(shard)));
      continue;
    }
    shardOf.emplace(item.key(), shard);
    listedIn[shard].push_back(item.key());
  }
  if (shardOf.empty() && problems.empty())
    result.warnings_.push_back(fmt::format("{}: weight_map lists no tensors", label));

  // Open every shard the index names (in name order, so file indices are deterministic).
  std::map<std::string, std::size_t> fileIndex;
  for (const auto &[shard, names] : listedIn) {
    fs::path shardPath = fs::path(result.directory_) / shard;
    if (!isRegularFile(shardPath)) {
      problems.push_back(fmt::format("weight_map maps {} tensor{} (first {}) to shard {}, which "
                                     "does not exist in '{}'",
                                     names.size(), names.size() == 1 ? "" : "s",
                                     json::quoteText(names.front()), json::quoteText(shard),
                                     result.directory_));
      continue;
    }
    fileIndex.emplace(shard, result.files_.size());
    result.files_.push_back(SafetensorsFile::open(shardPath.string()));
  }

  // Tensors as the shards hold them, checked against the index.
  std::map<std::string, std::vector<std::string>> holders; // tensor -> shards that contain it
  for (const auto &[shard, index] : fileIndex) {
    for (const TensorInfo &tensor : result.files_[index].tensors()) {
      holders[tensor.name].push_back(shard);
      if (!shardOf.count(tensor.name))
        problems.push_back(fmt::format("shard {} holds tensor {}, which the index does not list",
                                       json::quoteText(shard), json::quoteText(tensor.name)));
      TensorInfo copy = tensor;
      copy.file = index;
      result.tensors_.push_back(std::move(copy));
    }
    for (const std::string &warning : result.files_[index].header().warnings)
      result.warnings_.push_back(warning);
  }
  for (const auto &[name, shards] : holders)
    if (shards.size() > 1)
      problems.push_back(fmt::format("tensor {} is stored in both {} and {}", json::quoteText(name),
                                     json::quoteText(shards[0]), json::quoteText(shards[1])));
  for (const auto &[name, shard] : shardOf) {
    if (!fileIndex.count(shard))
      continue; // already reported as a missing shard
    const TensorInfo *found = result.files_[fileIndex.at(shard)].find(name);
    if (found != nullptr)
      continue;
    auto elsewhere = holders.find(name);
    if (elsewhere != holders.end())
      problems.push_back(fmt::format("weight_map maps tensor {} to {}, but it is stored in {}",
                                     json::quoteText(name), json::quoteText(shard),
                                     json::quoteText(elsewhere->second[0])));
    else
      problems.push_back(fmt::format("weight_map maps tensor {} to {}, but that shard has no "
                                     "such tensor",
                                     json::quoteText(name), json::quoteText(shard)));
  }
  if (!problems.empty())
    failWithProblems(fmt::format("{}: the index does not match its shards", label), problems);

  std::sort(result.tensors_.begin(), result.tensors_.end(),
            [](const TensorInfo &a, const TensorInfo &b) { return a.name < b.name; });

  // metadata.total_size is informational (transformers writes the sum of the tensor sizes).
  if (root.contains("metadata") && root["metadata"].is_object() &&
      root["metadata"].contains("total_size")) {
    const nlohmann::json &total = root["metadata"]["total_size"];
    if (total.is_number_unsigned() && total.get<std::uint64_t>() != result.totalBytes())
      result.warnings_.push_back(fmt::format("{}: metadata.total_size is {} but the tensors hold "
                                             "{} bytes",
                                             label, total.get<std::uint64_t>(),
                                             result.totalBytes()));
  }
  return result;
}

const TensorInfo *Checkpoint::find(std::string_view name) const {
  return findTensor(tensors_, name);
}

const TensorInfo &Checkpoint::get(std::string_view name) const {
  const TensorInfo *tensor = find(name);
  if (tensor == nullptr)
    fail("'{}': checkpoint has no tensor {}", path_, json::quoteText(name));
  return *tensor;
}

const std::string &Checkpoint::fileOf(const TensorInfo &tensor) const {
  check(tensor.file < files_.size(), "'{}': tensor {} refers to file #{} of {}", path_,
        json::quoteText(tensor.name), tensor.file, files_.size());
  return files_[tensor.file].path();
}

std::span<const std::uint8_t> Checkpoint::rawData(const TensorInfo &tensor) const {
  fileOf(tensor); // checks the file index
  return files_[tensor.file].data(tensor);
}

void Checkpoint::readF32(const TensorInfo &tensor, std::span<float> out) const {
  convertToF32(tensor.dtype, rawData(tensor), out,
               fmt::format("'{}': tensor {}", fileOf(tensor), json::quoteText(tensor.name)));
}

std::vector<float> Checkpoint::readF32(std::string_view name) const {
  const TensorInfo &tensor = get(name);
  std::vector<float> out(tensor.numElements);
  readF32(tensor, out);
  return out;
}

void Checkpoint::readBF16(const TensorInfo &tensor, std::span<std::uint16_t> out) const {
  convertToBF16(tensor.dtype, rawData(tensor), out,
                fmt::format("'{}': tensor {}", fileOf(tensor), json::quoteText(tensor.name)));
}

void Checkpoint::forEachTensor(
    const std::function<void(const TensorInfo &, std::span<const std::uint8_t>)> &visit,
    std::string_view label) const {
  std::vector<const TensorInfo *> order;
  order.reserve(tensors_.size());
  for (const TensorInfo &t : tensors_)
    order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const TensorInfo *a, const TensorInfo *b) {
    return a->file != b->file ? a->file < b->file : a->begin < b->begin;
  });
  Progress progress(std::string(label), totalBytes(), tensors_.size());
  for (const TensorInfo *t : order) {
    visit(*t, rawData(*t));
    progress.advance(t->byteSize);
  }
  progress.finish();
}

std::uint64_t Checkpoint::totalBytes() const {
  std::uint64_t sum = 0;
  for (const TensorInfo &t : tensors_)
    sum += t.byteSize;
  return sum;
}

std::uint64_t Checkpoint::totalParameters() const {
  std::uint64_t sum = 0;
  for (const TensorInfo &t : tensors_)
    sum += t.numElements;
  return sum;
}

} // namespace xlc::weights
