//===- TokenFile.h - Tokenised training data on disk ------------*- C++ -*-===//
//
// xlc-train tokenises its text once into a token file and streams fixed-length sequences out of
// it. The format is a fixed 64-byte header, the ids, and the document index:
//
//   offset  size  field
//        0     8  magic "XLCTOKS" followed by a zero byte
//        8     4  version (1), little-endian like every field
//       12     4  id bytes: 2 (uint16 ids, when the vocabulary has at most 65,536 entries) or 4
//       16     8  vocabulary size (every id is below it)
//       24     8  token count N
//       32     8  document count D (≥ 1 when N > 0)
//       40    24  zero
//       64  N·id  the ids, documents one after another
//   64+N·id  8·D  each document's first token index (uint64, strictly increasing, the first is 0)
//
// The document index is what lets training reset the recurrent state where a document begins
// (xlstm-7b.md §6.3) without reserving a token for it. The file size must equal
// 64 + N·id + 8·D exactly; a reader checks every field and names the file and the field that is
// wrong. Files are written atomically (temporary file, fsync, rename), so a crash while
// tokenising never leaves a half-written token file under the final name.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TRAIN_TOKENFILE_H
#define XLC_RUNTIME_TRAIN_TOKENFILE_H

#include "runtime/support/MappedFile.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace xlc::train {

inline constexpr std::uint32_t kTokenFileVersion = 1;
inline constexpr std::size_t kTokenFileHeaderBytes = 64;

/// Tokens of one or more documents, in memory.
struct TokenData {
  std::uint64_t vocabSize = 0;
  std::vector<std::uint32_t> ids;
  std::vector<std::uint64_t> documentStarts; ///< first token of each document; [0] = 0

  /// Appends one document's ids (an empty document adds nothing).
  void addDocument(std::span<const std::uint32_t> documentIds);
};

/// Writes |data| to |path| atomically, with uint16 ids when vocabSize ≤ 65,536. Throws
/// xlc::Error naming the path if an id is not below vocabSize or the write fails.
void writeTokenFile(const std::string &path, const TokenData &data);

/// A token file mapped read-only.
class TokenFile {
public:
  /// Maps and validates |path| (every header field, the size, the document index).
  static TokenFile open(const std::string &path);

  std::uint64_t vocabSize() const { return vocabSize_; }
  std::uint64_t size() const { return count_; }
  std::uint32_t idBytes() const { return idBytes_; }
  const std::string &path() const { return file_.path(); }
  /// Token |index| (< size()).
  std::uint32_t id(std::uint64_t index) const;
  /// Copies tokens [begin, begin + out.size()) into |out|.
  void read(std::uint64_t begin, std::span<std::uint32_t> out) const;
  std::span<const std::uint64_t> documentStarts() const { return starts_; }

private:
  MappedFile file_;
  std::uint64_t vocabSize_ = 0, count_ = 0;
  std::uint32_t idBytes_ = 2;
  const std::uint8_t *ids_ = nullptr;
  std::vector<std::uint64_t> starts_;
};

} // namespace xlc::train

#endif // XLC_RUNTIME_TRAIN_TOKENFILE_H
