//===- TextData.h - Text files to a training token file, once --*- C++ -*-===//
//
// xlc-train takes text files as well as token files: each text file is one document, encoded with
// a tokenizer.json into a token file (TokenFile.h) beside the run, once. A small JSON record next
// to the token file (<file>.sources.json) names the texts (path, size, modification time) and
// the tokenizer (path, size, modification time) it was made from; a later run with the same
// sources reuses the token file instead of encoding again, and one whose sources changed encodes
// anew. xlc-tokenize --token-file writes the same token file from the same texts.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TRAIN_TEXTDATA_H
#define XLC_RUNTIME_TRAIN_TEXTDATA_H

#include "runtime/tokenizer/Tokenizer.h"
#include "runtime/train/TokenFile.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace xlc::train {

/// Whether |path| starts with the token file's magic (a token file, not text).
bool isTokenFile(const std::string &path);

/// Encodes each of |paths| as one document (no BOS, special tokens not parsed: text is text).
/// |progress| (optional) is called with each path before it is read.
TokenData encodeDocuments(const Tokenizer &tokenizer, const std::vector<std::string> &paths,
                          const std::function<void(const std::string &)> &progress = {});

/// The tokenizer path in |tokenFile|'s sources record, if it has a readable one (a resumed run
/// that was given text files uses the tokenizer it started with).
std::optional<std::string> recordedTokenizer(const std::string &tokenFile);

/// Makes |tokenFile| from the text files |paths| with the tokenizer at |tokenizerPath|, unless it
/// already exists with a sources record that matches them; returns true if it encoded. Throws
/// xlc::Error naming the file on a missing text or tokenizer, or a failed write (the token file
/// and its record are written atomically, record last).
bool tokenizeOnce(const std::string &tokenFile, const std::vector<std::string> &paths,
                  const std::string &tokenizerPath,
                  const std::function<void(const std::string &)> &progress = {});

} // namespace xlc::train

#endif // XLC_RUNTIME_TRAIN_TEXTDATA_H
