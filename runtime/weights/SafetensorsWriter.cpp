//===- SafetensorsWriter.cpp - Writing safetensors files ------------------===//

#include "runtime/weights/SafetensorsWriter.h"

#include "runtime/support/Error.h"
#include "runtime/support/Json.h"
#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <set>
#include <unistd.h>

namespace xlc::weights {

namespace {

/// A file written under a temporary name and renamed into place by commit(); destroyed without
/// commit, it removes the temporary file.
class AtomicFileWriter {
public:
  explicit AtomicFileWriter(std::string path) : path_(std::move(path)) {
    static std::atomic<unsigned> counter{0};
    tmp_ = fmt::format("{}.tmp.{}.{}", path_, ::getpid(), counter++);
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0)
      fail("cannot create '{}': {}", tmp_, std::strerror(errno));
  }
  AtomicFileWriter(const AtomicFileWriter &) = delete;
  AtomicFileWriter &operator=(const AtomicFileWriter &) = delete;
  ~AtomicFileWriter() {
    if (fd_ >= 0)
      ::close(fd_);
    if (!committed_)
      ::unlink(tmp_.c_str());
  }

  void write(std::span<const std::uint8_t> bytes) {
    const std::uint8_t *p = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
      // Linux write() moves at most ~2 GiB per call; loop for larger tensors.
      ssize_t n = ::write(fd_, p, std::min<std::size_t>(left, std::size_t{1} << 30));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        fail("cannot write '{}': {}", tmp_, n < 0 ? std::strerror(errno) : "no progress");
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

  void commit() {
    if (::fsync(fd_) != 0)
      fail("cannot flush '{}': {}", tmp_, std::strerror(errno));
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0)
      fail("cannot close '{}': {}", tmp_, std::strerror(errno));
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      fail("cannot rename '{}' to '{}': {}", tmp_, path_, std::strerror(errno));
    committed_ = true;
    // Make the rename itself durable.
    std::string dir = std::filesystem::path(path_).parent_path().string();
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }

private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

/// The header bytes (length prefix, JSON, padding) and the tensors in data order.
struct Layout {
  std::vector<std::uint8_t> prefix;
  std::vector<const TensorToWrite *> order;
  std::uint64_t dataSize = 0;
};

Layout plan(std::span<const TensorToWrite> tensors, const SafetensorsMetadata &metadata) {
  Layout layout;
  std::set<std::string_view> names;
  for (const TensorToWrite &t : tensors) {
    check(!t.name.empty(), "safetensors writer: a tensor has an empty name");
    check(t.name != kMetadataKey, "safetensors writer: '{}' is reserved for metadata",
          kMetadataKey);
    check(!json::findInvalidUtf8(t.name), "safetensors writer: tensor name {} is not valid UTF-8",
          json::quoteText(t.name));
    check(names.insert(t.name).second, "safetensors writer: tensor {} is given twice",
          json::quoteText(t.name));
    std::uint64_t elements = 1;
    for (std::int64_t extent : t.shape) {
      check(extent >= 0, "safetensors writer: tensor {} has negative extent in shape {}",
            json::quoteText(t.name), shapeString(t.shape));
      check(!__builtin_mul_overflow(elements, static_cast<std::uint64_t>(extent), &elements),
            "safetensors writer: tensor {} shape {} overflows", json::quoteText(t.name),
            shapeString(t.shape));
    }
    std::uint64_t bytes = 0;
    check(!__builtin_mul_overflow(elements, dtypeSize(t.dtype), &bytes),
          "safetensors writer: tensor {} shape {} overflows", json::quoteText(t.name),
          shapeString(t.shape));
    check(t.data.size() == bytes,
          "safetensors writer: tensor {} ({} {}) needs {} bytes, but {} were given",
          json::quoteText(t.name), dtypeName(t.dtype), shapeString(t.shape), bytes, t.data.size());
    layout.order.push_back(&t);
  }
  for (const auto &[key, value] : metadata)
    check(!json::findInvalidUtf8(key) && !json::findInvalidUtf8(value),
          "safetensors writer: metadata entry {} is not valid UTF-8", json::quoteText(key));

  std::stable_sort(layout.order.begin(), layout.order.end(),
                   [](const TensorToWrite *a, const TensorToWrite *b) {
                     std::size_t sa = dtypeSize(a->dtype), sb = dtypeSize(b->dtype);
                     return sa != sb ? sa > sb : a->name < b->name;
                   });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto &[key, value] : metadata)
      meta[key] = value;
    header[std::string(kMetadataKey)] = std::move(meta);
  }
  std::uint64_t offset = 0;
  for (const TensorToWrite *t : layout.order) {
    std::uint64_t end = offset + t->data.size();
    header[t->name] = {{"dtype", std::string(dtypeName(t->dtype))},
                       {"shape", t->shape},
                       {"data_offsets", {offset, end}}};
    offset = end;
  }
  layout.dataSize = offset;

  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::uint64_t n = json.size();
  layout.prefix.resize(8 + json.size());
  for (int i = 0; i < 8; ++i)
    layout.prefix[i] = static_cast<std::uint8_t>(n >> (8 * i));
  std::memcpy(layout.prefix.data() + 8, json.data(), json.size());
  return layout;
}

} // namespace

std::vector<std::uint8_t> serializeSafetensors(std::span<const TensorToWrite> tensors,
                                               const SafetensorsMetadata &metadata) {
  Layout layout = plan(tensors, metadata);
  std::vector<std::uint8_t> out = std::move(layout.prefix);
  out.reserve(out.size() + layout.dataSize);
  for (const TensorToWrite *t : layout.order)
    out.insert(out.end(), t->data.begin(), t->data.end());
  return out;
}

void writeSafetensors(const std::string &path, std::span<const TensorToWrite> tensors,
                      const SafetensorsMetadata &metadata) {
  Layout layout = plan(tensors, metadata);
  AtomicFileWriter file(path);
  file.write(layout.prefix);
  for (const TensorToWrite *t : layout.order)
    file.write(t->data);
  file.commit();
}

std::vector<std::string> writeShardedSafetensors(const std::string &directory,
                                                 std::span<const TensorToWrite> tensors,
                                                 std::uint64_t maxShardBytes,
                                                 const SafetensorsMetadata &metadata) {
  check(maxShardBytes > 0, "safetensors writer: the shard size limit must be positive");
  std::vector<const TensorToWrite *> sorted;
  for (const TensorToWrite &t : tensors)
    sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(),
            [](const TensorToWrite *a, const TensorToWrite *b) { return a->name < b->name; });

  std::vector<std::vector<TensorToWrite>> shards;
  std::uint64_t shardBytes = 0, totalBytes = 0;
  for (const TensorToWrite *t : sorted) {
    if (shards.empty() || (shardBytes > 0 && shardBytes + t->data.size() > maxShardBytes)) {
      shards.emplace_back();
      shardBytes = 0;
    }
    shards.back().push_back(*t);
    shardBytes += t->data.size();
    totalBytes += t->data.size();
  }
  if (shards.empty())
    shards.emplace_back();

  nlohmann::ordered_json weightMap = nlohmann::ordered_json::object();
  std::vector<std::string> names;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    std::string name = fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    writeSafetensors((std::filesystem::path(directory) / name).string(), shards[i], metadata);
    for (const TensorToWrite &t : shards[i])
      weightMap[t.name] = name;
    names.push_back(std::move(name));
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", totalBytes}}},
                                  {"weight_map", std::move(weightMap)}};
  std::string text = index.dump(2) + "\n";
  writeFileAtomically((std::filesystem::path(directory) / kIndexFileName).string(),
                      std::span(reinterpret_cast<const std::uint8_t *>(text.data()), text.size()));
  return names;
}

} // namespace xlc::weights
