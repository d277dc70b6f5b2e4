//===- xlc-tokenize.cpp - Encode or decode text with a tokenizer.json -----===//
//
//   xlc-tokenize --tokenizer tokenizer.json [--bos] [--special] [--json]   < text  > ids
//   xlc-tokenize --tokenizer tokenizer.json --decode [--skip-special] [--json] < ids > text
//   xlc-tokenize --tokenizer tokenizer.json --bench N < text   (timing on stderr)
//   xlc-tokenize --tokenizer tokenizer.json --token-file out.tok [--json] [file ...]
//
// With --token-file, each named file (or stdin, when none is named) is encoded as one document
// and the documents are written as one training token file (runtime/train/TokenFile.h: uint16
// ids when the vocabulary fits, a document index so training resets the state at document
// starts), atomically; a one-line summary (or a JSON object with --json) goes to stdout.
// Encode reads all of stdin as bytes (ill-formed UTF-8 becomes U+FFFD) and writes the ids
// space-separated on one line, or {"ids": [...], "count": N} with --json. Decode reads ids
// separated by whitespace and/or commas, a JSON array, or the --json object of encode, and
// writes the text as is (no newline added), or {"text": "..."} with --json.
//
//===----------------------------------------------------------------------===//

#include "runtime/support/Error.h"
#include "runtime/support/MappedFile.h"
#include "runtime/tokenizer/Tokenizer.h"
#include "runtime/train/TokenFile.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

namespace {

std::string readStdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

std::vector<xlc::TokenId> parseIdsJson(const std::string &input) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(input);
  } catch (const nlohmann::json::exception &e) {
    xlc::fail("stdin: not valid JSON: {}", e.what());
  }
  if (j.is_object() && j.contains("ids"))
    j = j["ids"];
  xlc::check(j.is_array(), "stdin: expected a JSON array of ids or an object with \"ids\"");
  std::vector<xlc::TokenId> ids;
  for (std::size_t i = 0; i < j.size(); ++i) {
    xlc::check(j[i].is_number_unsigned() && j[i].get<std::uint64_t>() <= 0xFFFFFFFFu,
               "stdin: element {} is not a token id: {}", i, j[i].dump());
    ids.push_back(static_cast<xlc::TokenId>(j[i].get<std::uint64_t>()));
  }
  return ids;
}

std::vector<xlc::TokenId> parseIds(const std::string &input) {
  std::size_t first = input.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (input[first] == '[' || input[first] == '{'))
    return parseIdsJson(input);
  std::vector<xlc::TokenId> ids;
  std::size_t pos = 0;
  while (pos < input.size()) {
    char c = input[pos];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',') {
      ++pos;
      continue;
    }
    std::size_t end = pos;
    std::uint64_t value = 0;
    while (end < input.size() && input[end] >= '0' && input[end] <= '9' && value <= 0xFFFFFFFFu)
      value = value * 10 + static_cast<unsigned>(input[end++] - '0');
    bool separated =
        end == input.size() || std::string(" \t\r\n,").find(input[end]) != std::string::npos;
    xlc::check(end > pos && separated && value <= 0xFFFFFFFFu,
               "stdin: expected token ids separated by whitespace or commas, got \"{}\" at byte "
               "{}",
               input.substr(pos, 20), pos);
    ids.push_back(static_cast<xlc::TokenId>(value));
    pos = end;
  }
  return ids;
}

void writeIds(const std::vector<xlc::TokenId> &ids, bool json) {
  std::string out;
  out.reserve(ids.size() * 6 + 32);
  out += json ? "{\"ids\": [" : "";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i)
      out += json ? ", " : " ";
    out += std::to_string(ids[i]);
  }
  out += json ? fmt::format("], \"count\": {}}}\n", ids.size()) : "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"Encode text to token ids, or decode ids to text, with a Hugging Face "
               "tokenizer.json (byte-level BPE, ids identical to HF tokenizers)"};
  std::string tokenizerPath;
  bool decode = false, json = false, bos = false, special = false, skipSpecial = false;
  int benchRuns = 0;
  std::string tokenFile;
  std::vector<std::string> documents;
  app.add_option("--tokenizer", tokenizerPath, "tokenizer.json to load")->required();
  app.add_flag("--decode", decode, "read ids on stdin and write text");
  app.add_flag("--json", json,
               "write {\"ids\": [...], \"count\": N} (encode) or {\"text\": ...} (decode)");
  app.add_flag("--bos", bos, "encode: prepend the BOS id (<|endoftext|>, id 0 for xLSTM 7B)");
  app.add_flag("--special", special,
               "encode: recognise special tokens such as <|endoftext|> written in the text");
  app.add_flag("--skip-special", skipSpecial, "decode: leave out special tokens");
  app.add_option("--bench", benchRuns,
                 "encode stdin this many times and report the time per run on stderr")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--token-file", tokenFile,
                 "encode each input file (or stdin) as one document and write a training token "
                 "file here");
  app.add_option("files", documents, "with --token-file: text files, one document each");
  CLI11_PARSE(app, argc, argv);

  try {
    if (decode && (bos || special || benchRuns))
      xlc::fail("--bos, --special and --bench apply to encoding, not to --decode");
    if (!decode && skipSpecial)
      xlc::fail("--skip-special applies to --decode only");
    if (!documents.empty() && tokenFile.empty())
      xlc::fail("input files are read only with --token-file (otherwise the text comes on stdin)");
    if (!tokenFile.empty() && (decode || benchRuns))
      xlc::fail("--token-file encodes; it does not combine with --decode or --bench");

    auto loadStart = std::chrono::steady_clock::now();
    xlc::Tokenizer tokenizer = xlc::Tokenizer::fromFile(tokenizerPath);
    auto loadEnd = std::chrono::steady_clock::now();
    xlc::EncodeOptions options{bos, special};
    if (!tokenFile.empty()) {
      xlc::train::TokenData data;
      data.vocabSize = tokenizer.vocabSize();
      std::uint64_t bytes = 0;
      auto add = [&](const std::string &text) {
        bytes += text.size();
        std::vector<xlc::TokenId> ids = tokenizer.encode(text, options);
        data.addDocument(std::vector<std::uint32_t>(ids.begin(), ids.end()));
      };
      if (documents.empty())
        add(readStdin());
      for (const std::string &path : documents) {
        std::fprintf(stderr, "[xlc-tokenize] %s\n", path.c_str());
        add(xlc::readFile(path));
      }
      xlc::train::writeTokenFile(tokenFile, data);
      const unsigned idBytes = data.vocabSize <= 65536 ? 2 : 4;
      if (json)
        std::printf("%s\n", nlohmann::json{{"token_file", tokenFile},
                                            {"tokens", data.ids.size()},
                                            {"documents", data.documentStarts.size()},
                                            {"text_bytes", bytes},
                                            {"vocab_size", data.vocabSize},
                                            {"id_bytes", idBytes}}
                                .dump()
                                .c_str());
      else
        std::printf("%s: %zu tokens in %zu documents from %llu bytes of text (%u-byte ids, "
                    "vocabulary %llu)\n",
                    tokenFile.c_str(), data.ids.size(), data.documentStarts.size(),
                    static_cast<unsigned long long>(bytes), idBytes,
                    static_cast<unsigned long long>(data.vocabSize));
      return 0;
    }
    std::string input = readStdin();

    if (decode) {
      std::vector<xlc::TokenId> ids = parseIds(input);
      std::string text = tokenizer.decode(ids, xlc::DecodeOptions{skipSpecial});
      if (json)
        text = nlohmann::json{{"text", text}}.dump() + "\n";
      std::fwrite(text.data(), 1, text.size(), stdout);
      return 0;
    }

    if (benchRuns) {
      // Wall time and process CPU time (std::clock) per run: on a shared machine the CPU time is
      // the steadier number. The first run starts with an empty word cache.
      using Clock = std::chrono::steady_clock;
      std::vector<xlc::TokenId> ids;
      std::vector<double> wall, cpu;
      for (int run = 0; run < benchRuns; ++run) {
        auto start = Clock::now();
        std::clock_t cpuStart = std::clock();
        ids = tokenizer.encode(input, options);
        cpu.push_back(double(std::clock() - cpuStart) / CLOCKS_PER_SEC);
        wall.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      }
      auto best = [](const std::vector<double> &v) {
        return *std::min_element(v.begin(), v.end());
      };
      double load = std::chrono::duration<double>(loadEnd - loadStart).count();
      std::fprintf(stderr,
                   "load %.1f ms; encode %zu bytes -> %zu ids: first run %.1f ms wall / %.1f ms "
                   "CPU (cold word cache); best of %d runs %.1f ms wall / %.1f ms CPU\n",
                   load * 1e3, input.size(), ids.size(), wall[0] * 1e3, cpu[0] * 1e3, benchRuns,
                   best(wall) * 1e3, best(cpu) * 1e3);
      return 0;
    }
    writeIds(tokenizer.encode(input, options), json);
    return 0;
  } catch (const xlc::Error &e) {
    std::fprintf(stderr, "xlc-tokenize: error: %s\n", e.what());
    return 1;
  }
}
