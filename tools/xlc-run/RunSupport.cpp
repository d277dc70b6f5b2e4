//===- RunSupport.cpp - xlc-run's input files, logits dump and text stream ===//

#include "tools/xlc-run/RunSupport.h"

#include "runtime/support/Error.h"

#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace xlc::run {

namespace {

std::string readFile(const std::string &path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  check(static_cast<bool>(in), "{}: cannot open {}: {}", path, what, std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  check(!in.bad(), "{}: error while reading {}", path, what);
  return text.str();
}

std::vector<std::string> splitLines(const std::string &text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD"; // U+FFFD in UTF-8

} // namespace

std::vector<std::vector<std::int32_t>> readIdLines(const std::string &path) {
  std::string text = readFile(path, "the token-id file");
  std::vector<std::vector<std::int32_t>> sequences;
  std::vector<std::string> lines = splitLines(text);
  for (std::size_t n = 0; n < lines.size(); ++n) {
    const std::string &line = lines[n];
    std::vector<std::int32_t> ids;
    std::size_t pos = 0;
    while (pos < line.size()) {
      char c = line[pos];
      if (c == ' ' || c == '\t' || c == ',') {
        ++pos;
        continue;
      }
      std::size_t end = pos;
      std::uint64_t value = 0;
      while (end < line.size() && line[end] >= '0' && line[end] <= '9' &&
             value <= static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()))
        value = value * 10 + static_cast<unsigned>(line[end++] - '0');
      bool separated =
          end == line.size() || line[end] == ' ' || line[end] == '\t' || line[end] == ',';
      if (end == pos || !separated ||
          value > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
        std::size_t stop = line.find_first_of(" \t,", pos);
        fail("{}:{}: expected token ids (integers in [0, 2^31)) separated by spaces or commas, "
             "got \"{}\"",
             path, n + 1, line.substr(pos, stop == std::string::npos ? 40 : stop - pos));
      }
      ids.push_back(static_cast<std::int32_t>(value));
      pos = end;
    }
    if (!ids.empty())
      sequences.push_back(std::move(ids));
  }
  check(!sequences.empty(), "{}: no token ids (every line is empty)", path);
  return sequences;
}

std::vector<std::string> readPromptLines(const std::string &path) {
  std::vector<std::string> prompts;
  for (std::string &line : splitLines(readFile(path, "the batch file")))
    if (!line.empty())
      prompts.push_back(std::move(line));
  check(!prompts.empty(), "{}: no prompts (every line is empty)", path);
  return prompts;
}

std::string NpyWriter::header(const std::vector<std::uint64_t> &shape) {
  std::string dims;
  for (std::uint64_t d : shape)
    dims += std::to_string(d) + ", ";
  if (shape.size() != 1 && !dims.empty())
    dims.resize(dims.size() - 2); // "(2, 3)"; a 1-tuple keeps its comma: "(2,)"
  else if (!dims.empty())
    dims.pop_back();
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic (6) + version (2) + header length (2) + dict + padding + '\n', a multiple of 64 bytes
  // (what NumPy writes, so the data are aligned for memory mapping).
  std::size_t total = 10 + dict.size() + 1;
  std::size_t padded = (total + 63) / 64 * 64;
  dict.append(padded - total, ' ');
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xFF);
  out += static_cast<char>((dict.size() >> 8) & 0xFF);
  return out + dict;
}

NpyWriter::NpyWriter(std::string path, std::uint64_t rows, std::uint64_t batch, std::uint64_t vocab)
    : path_(std::move(path)), partial_(path_ + ".partial"), rows_(rows), batch_(batch),
      vocab_(vocab), written_(rows * batch, false) {
  file_ = std::fopen(partial_.c_str(), "wb");
  check(file_ != nullptr, "--dump-logits: cannot create '{}': {}", partial_, std::strerror(errno));
  std::string head = header({rows, batch, vocab});
  headerBytes_ = head.size();
  check(std::fwrite(head.data(), 1, head.size(), file_) == head.size(),
        "--dump-logits: cannot write '{}': {}", partial_, std::strerror(errno));
}

NpyWriter::~NpyWriter() {
  if (file_)
    std::fclose(file_);
  if (!committed_)
    std::remove(partial_.c_str());
}

void NpyWriter::write(std::uint64_t row, std::uint64_t sequence, std::span<const float> values) {
  check(row < rows_ && sequence < batch_ && values.size() == vocab_,
        "--dump-logits: row {} of sequence {} ({} values) is outside the array [{}, {}, {}]", row,
        sequence, values.size(), rows_, batch_, vocab_);
  const std::uint64_t offset = headerBytes_ + (row * batch_ + sequence) * vocab_ * sizeof(float);
  check(fseeko(file_, static_cast<off_t>(offset), SEEK_SET) == 0,
        "--dump-logits: cannot seek in '{}': {}", partial_, std::strerror(errno));
  std::size_t count = values.size();
  if constexpr (std::endian::native == std::endian::little) {
    check(std::fwrite(values.data(), sizeof(float), count, file_) == count,
          "--dump-logits: cannot write '{}': {}", partial_, std::strerror(errno));
  } else {
    std::vector<std::uint32_t> swapped(count);
    for (std::size_t i = 0; i < count; ++i) {
      std::uint32_t bits = std::bit_cast<std::uint32_t>(values[i]);
      swapped[i] =
          (bits >> 24) | ((bits >> 8) & 0xFF00u) | ((bits << 8) & 0xFF0000u) | (bits << 24);
    }
    check(std::fwrite(swapped.data(), sizeof(std::uint32_t), count, file_) == count,
          "--dump-logits: cannot write '{}': {}", partial_, std::strerror(errno));
  }
  written_[row * batch_ + sequence] = true;
}

void NpyWriter::commit() {
  for (std::uint64_t i = 0; i < written_.size(); ++i)
    check(written_[i], "--dump-logits: row {} of sequence {} was never produced", i / batch_,
          i % batch_);
  int closed = std::fclose(file_);
  file_ = nullptr;
  check(closed == 0, "--dump-logits: cannot write '{}': {}", partial_, std::strerror(errno));
  check(std::rename(partial_.c_str(), path_.c_str()) == 0,
        "--dump-logits: cannot rename '{}' to '{}': {}", partial_, path_, std::strerror(errno));
  committed_ = true;
}

void TextStream::add(TokenId token) {
  pending_.push_back(token);
  std::string text = tokenizer_.decode(pending_, DecodeOptions{/*skipSpecial=*/true});
  std::size_t stable = text.size();
  while (stable >= kReplacement.size() &&
         std::string_view(text).substr(stable - kReplacement.size()) == kReplacement)
    stable -= kReplacement.size();
  if (stable > printed_) {
    std::fwrite(text.data() + printed_, 1, stable - printed_, out_);
    std::fflush(out_);
    printed_ = stable;
  }
  // A clean boundary: the bytes of every pending token form complete characters, so the next
  // token's text starts a new character and can be decoded on its own.
  if (stable == text.size()) {
    pending_.clear();
    printed_ = 0;
  }
}

void TextStream::finish() {
  std::string text = tokenizer_.decode(pending_, DecodeOptions{/*skipSpecial=*/true});
  if (text.size() > printed_)
    std::fwrite(text.data() + printed_, 1, text.size() - printed_, out_);
  std::fflush(out_);
  pending_.clear();
  printed_ = 0;
}

std::string displayText(const Tokenizer &tokenizer, std::span<const std::int32_t> ids) {
  std::vector<TokenId> tokens;
  tokens.reserve(ids.size());
  for (std::int32_t id : ids)
    tokens.push_back(static_cast<TokenId>(id));
  return tokenizer.decode(tokens, DecodeOptions{/*skipSpecial=*/true});
}

} // namespace xlc::run
