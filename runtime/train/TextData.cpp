//===- TextData.cpp - Text files to a training token file, once ------------===//

#include "runtime/train/TextData.h"

#include "runtime/support/Error.h"
#include "runtime/support/MappedFile.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace xlc::train {
namespace {
namespace fs = std::filesystem;

/// What identifies a source file's contents without reading it: path, size, modification time.
nlohmann::json fileRecord(const std::string &path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  check(!ec, "cannot read '{}': {}", path, ec.message());
  const auto mtime = fs::last_write_time(path, ec);
  check(!ec, "cannot read '{}': {}", path, ec.message());
  return {{"path", fs::absolute(path).lexically_normal().string()},
          {"bytes", size},
          {"mtime", mtime.time_since_epoch().count()}};
}

nlohmann::json sourcesRecord(const std::vector<std::string> &paths,
                             const std::string &tokenizerPath) {
  nlohmann::json texts = nlohmann::json::array();
  for (const std::string &p : paths)
    texts.push_back(fileRecord(p));
  return {{"format", "xlc-token-file-sources"},
          {"texts", texts},
          {"tokenizer", fileRecord(tokenizerPath)}};
}

} // namespace

bool isTokenFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  check(bool(in), "cannot open '{}'", path);
  char magic[8] = {};
  in.read(magic, sizeof magic);
  return in.gcount() == 8 && std::string_view(magic, 8) == std::string_view("XLCTOKS\0", 8);
}

TokenData encodeDocuments(const Tokenizer &tokenizer, const std::vector<std::string> &paths,
                          const std::function<void(const std::string &)> &progress) {
  TokenData data;
  data.vocabSize = tokenizer.vocabSize();
  for (const std::string &path : paths) {
    if (progress)
      progress(path);
    const std::vector<TokenId> ids = tokenizer.encode(readFile(path));
    data.addDocument(std::vector<std::uint32_t>(ids.begin(), ids.end()));
  }
  return data;
}

std::optional<std::string> recordedTokenizer(const std::string &tokenFile) {
  const std::string recordPath = tokenFile + ".sources.json";
  if (!fs::exists(recordPath))
    return std::nullopt;
  const nlohmann::json record = nlohmann::json::parse(readFile(recordPath), nullptr, false);
  if (!record.is_object() || !record.contains("tokenizer") || !record["tokenizer"].is_object())
    return std::nullopt;
  const nlohmann::json &path = record["tokenizer"].value("path", nlohmann::json());
  return path.is_string() ? std::optional(path.get<std::string>()) : std::nullopt;
}

bool tokenizeOnce(const std::string &tokenFile, const std::vector<std::string> &paths,
                  const std::string &tokenizerPath,
                  const std::function<void(const std::string &)> &progress) {
  check(!paths.empty(), "no text files to tokenise into '{}'", tokenFile);
  const nlohmann::json want = sourcesRecord(paths, tokenizerPath);
  const std::string recordPath = tokenFile + ".sources.json";
  if (fs::exists(tokenFile) && fs::exists(recordPath)) {
    const nlohmann::json have = nlohmann::json::parse(readFile(recordPath), nullptr, false);
    if (have == want) {
      TokenFile::open(tokenFile); // validates it; throws naming the file if it is damaged
      return false;
    }
  }
  std::error_code ec;
  fs::remove(recordPath, ec); // the record goes first and comes back last
  const Tokenizer tokenizer = Tokenizer::fromFile(tokenizerPath);
  writeTokenFile(tokenFile, encodeDocuments(tokenizer, paths, progress));
  const std::string text = want.dump(2) + "\n";
  writeFileAtomically(recordPath, std::span(reinterpret_cast<const std::uint8_t *>(text.data()),
                                            text.size()));
  return true;
}

} // namespace xlc::train
