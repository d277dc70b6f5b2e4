//===- TokenFile.cpp - Tokenised training data on disk --------------------===//

#include "runtime/train/TokenFile.h"

#include "runtime/support/Error.h"

#include <cstring>

namespace xlc::train {
namespace {

constexpr char kMagic[8] = {'X', 'L', 'C', 'T', 'O', 'K', 'S', '\0'};

template <typename T> void put(std::vector<std::uint8_t> &out, std::size_t offset, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    out[offset + i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(value) >> (8 * i));
}

template <typename T> T get(const std::uint8_t *in) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    value |= static_cast<std::uint64_t>(in[i]) << (8 * i);
  return static_cast<T>(value);
}

} // namespace

void TokenData::addDocument(std::span<const std::uint32_t> documentIds) {
  if (documentIds.empty())
    return;
  documentStarts.push_back(ids.size());
  ids.insert(ids.end(), documentIds.begin(), documentIds.end());
}

void writeTokenFile(const std::string &path, const TokenData &data) {
  check(data.vocabSize > 0, "{}: the vocabulary size must be positive", path);
  check(data.ids.empty() == data.documentStarts.empty(),
        "{}: {} tokens but {} documents", path, data.ids.size(), data.documentStarts.size());
  for (std::size_t d = 0; d < data.documentStarts.size(); ++d)
    check(d == 0 ? data.documentStarts[d] == 0
                 : data.documentStarts[d] > data.documentStarts[d - 1] &&
                       data.documentStarts[d] < data.ids.size(),
          "{}: document {} starts at token {}, which is not after the previous document's start "
          "and inside the {} tokens",
          path, d, data.documentStarts[d], data.ids.size());
  const std::uint32_t idBytes = data.vocabSize <= 65536 ? 2 : 4;
  const std::size_t n = data.ids.size(), docs = data.documentStarts.size();
  std::vector<std::uint8_t> bytes(kTokenFileHeaderBytes + n * idBytes + 8 * docs, 0);
  std::memcpy(bytes.data(), kMagic, sizeof kMagic);
  put<std::uint32_t>(bytes, 8, kTokenFileVersion);
  put<std::uint32_t>(bytes, 12, idBytes);
  put<std::uint64_t>(bytes, 16, data.vocabSize);
  put<std::uint64_t>(bytes, 24, n);
  put<std::uint64_t>(bytes, 32, docs);
  for (std::size_t i = 0; i < n; ++i) {
    check(data.ids[i] < data.vocabSize, "{}: token {} has id {}, not below the vocabulary size {}",
          path, i, data.ids[i], data.vocabSize);
    if (idBytes == 2)
      put<std::uint16_t>(bytes, kTokenFileHeaderBytes + 2 * i, data.ids[i]);
    else
      put<std::uint32_t>(bytes, kTokenFileHeaderBytes + 4 * i, data.ids[i]);
  }
  for (std::size_t d = 0; d < docs; ++d)
    put<std::uint64_t>(bytes, kTokenFileHeaderBytes + n * idBytes + 8 * d, data.documentStarts[d]);
  writeFileAtomically(path, bytes);
}

TokenFile TokenFile::open(const std::string &path) {
  TokenFile f;
  f.file_ = MappedFile::open(path);
  const std::uint8_t *p = f.file_.data();
  const std::size_t size = f.file_.size();
  check(size >= kTokenFileHeaderBytes && std::memcmp(p, kMagic, sizeof kMagic) == 0,
        "{}: not an xlc token file (no \"XLCTOKS\" header; write one with xlc-train's "
        "tokenisation)",
        path);
  const auto version = get<std::uint32_t>(p + 8);
  check(version == kTokenFileVersion, "{}: token file version {}, this build reads version {}",
        path, version, kTokenFileVersion);
  f.idBytes_ = get<std::uint32_t>(p + 12);
  check(f.idBytes_ == 2 || f.idBytes_ == 4, "{}: id bytes {}, expected 2 or 4", path, f.idBytes_);
  f.vocabSize_ = get<std::uint64_t>(p + 16);
  f.count_ = get<std::uint64_t>(p + 24);
  const auto docs = get<std::uint64_t>(p + 32);
  check(f.vocabSize_ > 0, "{}: vocabulary size 0", path);
  check(f.idBytes_ == 4 || f.vocabSize_ <= 65536,
        "{}: 2-byte ids cannot hold a vocabulary of {}", path, f.vocabSize_);
  check((f.count_ == 0) == (docs == 0), "{}: {} tokens but {} documents", path, f.count_, docs);
  // Sizes first in 128-bit-safe form: counts come from the file and may be garbage.
  check(f.count_ <= size && docs <= size &&
            size == kTokenFileHeaderBytes + f.count_ * f.idBytes_ + 8 * docs,
        "{}: {} bytes, but the header's {} tokens of {} bytes and {} documents need {}", path,
        size, f.count_, f.idBytes_, docs,
        kTokenFileHeaderBytes + f.count_ * f.idBytes_ + 8 * docs);
  f.ids_ = p + kTokenFileHeaderBytes;
  const std::uint8_t *index = f.ids_ + f.count_ * f.idBytes_;
  f.starts_.resize(docs);
  for (std::uint64_t d = 0; d < docs; ++d) {
    f.starts_[d] = get<std::uint64_t>(index + 8 * d);
    check(d == 0 ? f.starts_[d] == 0 : f.starts_[d] > f.starts_[d - 1] && f.starts_[d] < f.count_,
          "{}: document {} starts at token {}: starts must begin at 0, increase and stay below "
          "the {} tokens",
          path, d, f.starts_[d], f.count_);
  }
  for (std::uint64_t i = 0; i < f.count_; ++i)
    check(f.id(i) < f.vocabSize_, "{}: token {} has id {}, not below the vocabulary size {}",
          path, i, f.id(i), f.vocabSize_);
  return f;
}

std::uint32_t TokenFile::id(std::uint64_t index) const {
  const std::uint8_t *p = ids_ + index * idBytes_;
  return idBytes_ == 2 ? get<std::uint16_t>(p) : get<std::uint32_t>(p);
}

void TokenFile::read(std::uint64_t begin, std::span<std::uint32_t> out) const {
  check(begin <= count_ && out.size() <= count_ - begin,
        "{}: tokens [{}, {}) are outside its {} tokens", path(), begin, begin + out.size(),
        count_);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = id(begin + i);
}

} // namespace xlc::train
