//===- ConfigCorpusTest.cpp - One corpus of config.json files, every reader ===//
//
// corpus/good/*.json must be accepted, corpus/bad/*.json refused, by every path that reads a
// Hugging Face config.json in the runtime:
//   - the config reader itself (config::loadModelConfig),
//   - the weight checks' entry point (weights::xlstmExpectedTensorsForConfigFile, xlc-dump),
//   - the float64 reference / random checkpoints (ref::modelConfigFromHfJson and
//     ref::writeRandomCheckpoint, xlc-random-weights).
// Each bad file has a sidecar <name>.expect: every non-empty line must appear in the message,
// and so must the file's name. corpus/unsupported/*.json are checkpoint layouts the weight checks
// understand but xlc does not compile or run: accepted by the reader and the weight checks,
// refused by the reference (and by xlc-import, test/import/config-corpus.test).
//
//===----------------------------------------------------------------------===//

#include "runtime/config/ModelConfig.h"
#include "runtime/reference/RandomCheckpoint.h"
#include "runtime/support/Error.h"
#include "runtime/weights/XlstmWeights.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace xlc {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(XLC_SOURCE_DIR) / "test/runtime/config/corpus";

std::vector<fs::path> corpusFiles(const std::string &dir) {
  std::vector<fs::path> files;
  for (const fs::directory_entry &e : fs::directory_iterator(kCorpus / dir))
    if (e.path().extension() == ".json")
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

/// The non-empty lines of <file>.expect.
std::vector<std::string> expectations(const fs::path &file) {
  fs::path sidecar = file;
  sidecar.replace_extension(".expect");
  std::ifstream in(sidecar);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      lines.push_back(line);
  return lines;
}

struct Reader {
  const char *name;
  std::function<void(const std::string &path)> read;
};

std::string scratchDir() { return (fs::path(::testing::TempDir()) / "xlc-config-corpus").string(); }

/// Every reader of a config.json path in the runtime.
std::vector<Reader> allReaders() {
  return {
      {"config::loadModelConfig", [](const std::string &p) { config::loadModelConfig(p); }},
      {"weights::xlstmExpectedTensorsForConfigFile",
       [](const std::string &p) { weights::xlstmExpectedTensorsForConfigFile(p); }},
      {"ref::modelConfigFromHfJson", [](const std::string &p) { ref::modelConfigFromHfJson(p); }},
  };
}

/// The message of the xlc::Error |read| throws for |path|, or nullopt when it succeeds.
std::optional<std::string> errorOf(const Reader &reader, const std::string &path) {
  try {
    reader.read(path);
  } catch (const Error &e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

void expectRefused(const Reader &reader, const fs::path &file) {
  SCOPED_TRACE(std::string(reader.name) + " on " + file.filename().string());
  std::vector<std::string> expected = expectations(file);
  ASSERT_FALSE(expected.empty()) << "no " << file.stem().string() << ".expect beside it";
  std::optional<std::string> message = errorOf(reader, file.string());
  ASSERT_TRUE(message.has_value()) << "accepted";
  EXPECT_NE(message->find(file.filename().string()), std::string::npos)
      << "the message does not name the file: " << *message;
  for (const std::string &part : expected)
    EXPECT_NE(message->find(part), std::string::npos)
        << "message '" << *message << "' lacks '" << part << "'";
}

TEST(ConfigCorpus, HasFiles) {
  EXPECT_GE(corpusFiles("good").size(), 5u);
  EXPECT_GE(corpusFiles("bad").size(), 20u);
  EXPECT_GE(corpusFiles("unsupported").size(), 2u);
}

TEST(ConfigCorpus, EveryReaderAcceptsEveryGoodConfig) {
  for (const fs::path &file : corpusFiles("good")) {
    for (const Reader &reader : allReaders()) {
      SCOPED_TRACE(std::string(reader.name) + " on " + file.filename().string());
      std::optional<std::string> message = errorOf(reader, file.string());
      EXPECT_FALSE(message.has_value()) << *message;
    }
  }
}

TEST(ConfigCorpus, EveryReaderRefusesEveryBadConfigNamingTheField) {
  std::vector<Reader> readers = allReaders();
  // xlc-random-weights' whole path refuses before it writes anything.
  readers.push_back({"ref::writeRandomCheckpoint", [](const std::string &p) {
                       ref::writeRandomCheckpoint(p, scratchDir(), {});
                     }});
  for (const fs::path &file : corpusFiles("bad"))
    for (const Reader &reader : readers)
      expectRefused(reader, file);
  EXPECT_FALSE(fs::exists(fs::path(scratchDir()) / "model.safetensors"));
}

TEST(ConfigCorpus, UnsupportedLayoutsAreCheckedButNotRun) {
  std::vector<Reader> readers = allReaders();
  for (const fs::path &file : corpusFiles("unsupported")) {
    for (const Reader &reader : {readers[0], readers[1]}) {
      SCOPED_TRACE(std::string(reader.name) + " on " + file.filename().string());
      std::optional<std::string> message = errorOf(reader, file.string());
      EXPECT_FALSE(message.has_value()) << *message;
    }
    expectRefused(readers[2], file);
    expectRefused(
        {"config::checkSupported",
         [](const std::string &p) { config::checkSupported(config::loadModelConfig(p)); }},
        file);
  }
}

/// The readers agree on what they read, not only on whether they accept it.
TEST(ConfigCorpus, ReadersAgreeOnTheSizes) {
  for (const fs::path &file : corpusFiles("good")) {
    SCOPED_TRACE(file.filename().string());
    const config::ModelConfig c = config::loadModelConfig(file.string());
    const ref::ModelConfig r = ref::modelConfigFromHfJson(file.string());
    EXPECT_EQ(r.embeddingDim, c.embeddingDim);
    EXPECT_EQ(r.numHeads, c.numHeads);
    EXPECT_EQ(r.qkDim, c.qkDim());
    EXPECT_EQ(r.vDim, c.vDim());
    EXPECT_EQ(r.ffnDim, c.ffnDim());
    EXPECT_EQ(r.numBlocks, c.numBlocks);
    EXPECT_EQ(r.vocabSize, c.vocabSize);
    EXPECT_EQ(r.normEps, c.normEps);
    EXPECT_EQ(r.layerNormEps, c.mhNormEps);
    EXPECT_EQ(r.cellEps, c.cellEps);
    EXPECT_EQ(r.gateSoftCap, c.gateSoftCap);
    EXPECT_EQ(r.outputLogitSoftCap, c.outputLogitSoftCap);
    EXPECT_EQ(r.tieWordEmbeddings, c.tieWordEmbeddings);
    EXPECT_EQ(r.inputGate == ref::InputGate::Sigmoid, c.inputGate == config::InputGate::Sigmoid);
    EXPECT_TRUE(r.addOutNorm);

    config::ModelConfig parsed;
    std::vector<weights::ExpectedTensor> expected =
        weights::xlstmExpectedTensorsForConfigFile(file.string(), &parsed);
    EXPECT_EQ(parsed.summary(), c.summary());
    const std::size_t perBlock = 15;
    EXPECT_EQ(expected.size(), 3 + perBlock * static_cast<std::size_t>(c.numBlocks));
  }
}

//===----------------------------------------------------------------------===//
// Details of the reader that the corpus files do not show.
//===----------------------------------------------------------------------===//

TEST(ModelConfig, DefaultsAreXlstm7B) {
  const config::ModelConfig c =
      config::loadModelConfig((kCorpus / "good/minimal-defaults.json").string());
  EXPECT_EQ(c.summary(),
            "xLSTM d=4096, 32 blocks, 8 heads (qk 2048, v 4096), ffn 10944, vocab 50304, untied");
  EXPECT_EQ(c.qkHeadDim(), 256);
  EXPECT_EQ(c.vHeadDim(), 512);
  EXPECT_EQ(c.name, "good");
  EXPECT_EQ(c.source, (kCorpus / "good/minimal-defaults.json").string());
}

TEST(ModelConfig, SevenBillionConfigAsPublished) {
  const config::ModelConfig c =
      config::loadModelConfig(std::string(XLC_SOURCE_DIR) + "/models/xlstm-7b/config.json");
  EXPECT_EQ(c.name, "xlstm-7b");
  EXPECT_EQ(c.ffnDim(), 10944);
  std::uint64_t parameters = 0;
  for (const weights::ExpectedTensor &t : weights::xlstmExpectedTensors(c)) {
    std::uint64_t n = 1;
    for (std::int64_t d : t.shape)
      n *= static_cast<std::uint64_t>(d);
    parameters += n;
  }
  EXPECT_EQ(parameters, 6'865'424'896ull);
}

TEST(ModelConfig, WarningsAndNotes) {
  const std::string base =
      R"({"hidden_size": 64, "num_heads": 4, "num_blocks": 1, "vocab_size": 96)";
  config::ModelConfig c = config::parseModelConfig(base + R"(, "my_field": 1, "use_cache": true,
      "eos_token_id": [2, 3], "add_out_norm": false})",
                                                   "cfg.json");
  EXPECT_EQ(c.ignoredFields, std::vector<std::string>{"use_cache"});
  ASSERT_EQ(c.warnings.size(), 3u);
  EXPECT_NE(c.warnings[0].find("add_out_norm is false"), std::string::npos);
  EXPECT_NE(c.warnings[1].find("'eos_token_id' lists several ids; xlc uses the first, 2"),
            std::string::npos);
  EXPECT_EQ(c.warnings[2], "unknown field 'my_field' ignored");
  EXPECT_EQ(c.eosTokenId, 2);
  EXPECT_FALSE(c.addOutNorm);

  // An explicit null disables a soft cap; elsewhere null means "unset".
  c = config::parseModelConfig(base + R"(, "gate_soft_cap": null, "norm_eps": null})", "cfg.json");
  EXPECT_FALSE(c.gateSoftCap.has_value());
  EXPECT_EQ(c.outputLogitSoftCap, 30.0);
  EXPECT_EQ(c.normEps, 1e-6);
}

TEST(ModelConfig, ValidateNamesTheFieldOfConfigsBuiltInCode) {
  config::ModelConfig c;
  c.numHeads = 3;
  try {
    c.validate();
    ADD_FAILURE() << "accepted";
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(), "model config: field 'num_heads' (3) does not divide the qk dimension "
                           "2048 = int(4096 * qk_dim_factor)");
  }
}

TEST(ModelConfig, MissingFileIsNamed) {
  try {
    config::loadModelConfig("/no/such/config.json");
    ADD_FAILURE() << "accepted";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("/no/such/config.json: cannot open the file"),
              std::string::npos)
        << e.what();
  }
}

} // namespace
} // namespace xlc
