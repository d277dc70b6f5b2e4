//===- RunSupport.h - xlc-run's input files, logits dump and text stream -*- C++ -*-===//
//
// The pieces of xlc-run that are not the command line: reading prompt and token-id files,
// writing the --dump-logits .npy file, and printing a sequence's text as it grows without
// splitting UTF-8 characters.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TOOLS_XLC_RUN_RUNSUPPORT_H
#define XLC_TOOLS_XLC_RUN_RUNSUPPORT_H

#include "runtime/tokenizer/Tokenizer.h"

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace xlc::run {

/// Token ids, one sequence per non-blank line, ids separated by spaces, tabs and/or commas.
/// Throws xlc::Error "<path>:<line>: ..." on anything that is not a non-negative int32, and
/// when no line holds ids.
std::vector<std::vector<std::int32_t>> readIdLines(const std::string &path);

/// Text prompts: one per line (a trailing '\r' removed), empty lines skipped. Throws when the
/// file cannot be read or holds no prompt.
std::vector<std::string> readPromptLines(const std::string &path);

/// Writes a float32 array of shape [rows, batch, vocab] as a NumPy .npy file (format 1.0,
/// '<f4', C order). Rows may arrive in any order; the data go to "<path>.partial", which
/// commit() checks is complete and renames to |path| (a failed run leaves no truncated .npy).
class NpyWriter {
public:
  NpyWriter(std::string path, std::uint64_t rows, std::uint64_t batch, std::uint64_t vocab);
  NpyWriter(const NpyWriter &) = delete;
  NpyWriter &operator=(const NpyWriter &) = delete;
  ~NpyWriter(); ///< removes the partial file unless committed

  /// Stores row (row, sequence): |values| holds vocab floats.
  void write(std::uint64_t row, std::uint64_t sequence, std::span<const float> values);
  /// Throws unless every (row, sequence) was written; then flushes and renames.
  void commit();

  /// The .npy header for |shape| (magic, version 1.0, length, dict padded to 64 bytes).
  static std::string header(const std::vector<std::uint64_t> &shape);

private:
  std::string path_, partial_;
  std::uint64_t rows_, batch_, vocab_;
  std::uint64_t headerBytes_ = 0;
  std::vector<bool> written_;
  std::FILE *file_ = nullptr;
  bool committed_ = false;
};

/// Prints one sequence's decoded text to a FILE as tokens arrive. Byte-level BPE tokens can end
/// inside a UTF-8 character; the decoder then shows U+FFFD at the end. Only the text up to such
/// a trailing replacement character is printed; the rest waits for the next token (or finish()).
/// Decoding restarts after every clean character boundary, so the cost per token is constant.
class TextStream {
public:
  TextStream(const Tokenizer &tokenizer, std::FILE *out) : tokenizer_(tokenizer), out_(out) {}
  void add(TokenId token);
  /// Prints whatever is held back.
  void finish();

private:
  const Tokenizer &tokenizer_;
  std::FILE *out_;
  std::vector<TokenId> pending_; ///< tokens since the last clean boundary
  std::size_t printed_ = 0;      ///< bytes of decode(pending_) already printed
};

/// decode(ids) with special tokens skipped: the text xlc-run shows and reports.
std::string displayText(const Tokenizer &tokenizer, std::span<const std::int32_t> ids);

} // namespace xlc::run

#endif // XLC_TOOLS_XLC_RUN_RUNSUPPORT_H
