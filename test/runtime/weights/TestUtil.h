//===- TestUtil.h - Helpers shared by the weights tests ---------*- C++ -*-===//
//
// A temporary directory that removes itself, an error-expectation helper, and a tiny xLSTM
// checkpoint with the real tensor names, filled with deterministic random values. The helper
// binary that makes test checkpoints for the xlc-dump ctest uses the same code.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_RUNTIME_WEIGHTS_TESTUTIL_H
#define XLC_TEST_RUNTIME_WEIGHTS_TESTUTIL_H

#include "runtime/support/Error.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/SafetensorsWriter.h"
#include "runtime/weights/XlstmWeights.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace xlc::weights::testing {

using config::ModelConfig;

/// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
public:
  TempDir() {
    const char *base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/xlc-weights-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = buffer.data();
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

inline void writeText(const std::string &path, const std::string &text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline void writeBytes(const std::string &path, const std::vector<std::uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

/// Runs |fn| and returns the xlc::Error message it throws, or "<no error>".
template <typename Fn> std::string errorOf(Fn &&fn) {
  try {
    fn();
  } catch (const xlc::Error &e) {
    return e.what();
  }
  return "<no error>";
}

/// Tensors with owned storage, plus the TensorToWrite views the writer takes.
struct TensorSet {
  std::vector<std::vector<std::uint8_t>> storage;
  std::vector<TensorToWrite> tensors;

  void add(std::string name, DType dtype, std::vector<std::int64_t> shape,
           std::vector<std::uint8_t> bytes) {
    storage.push_back(std::move(bytes));
    tensors.push_back(TensorToWrite{std::move(name), dtype, std::move(shape), {}});
    refresh();
  }
  /// Re-points the views (storage may have moved while growing).
  void refresh() {
    for (std::size_t i = 0; i < tensors.size(); ++i)
      tensors[i].data = storage[i];
  }
};

/// Random values in [-1, 1) of |dtype| (F32, BF16 or F16 patterns of normal numbers).
inline std::vector<std::uint8_t> randomValues(DType dtype, std::uint64_t count, std::mt19937 &rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<std::uint8_t> bytes(count * dtypeSize(dtype));
  for (std::uint64_t i = 0; i < count; ++i) {
    float v = dist(rng);
    if (dtype == DType::F32) {
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    } else if (dtype == DType::BF16) {
      std::uint16_t b = f32ToBF16(v);
      std::memcpy(bytes.data() + 2 * i, &b, 2);
    } else { // F16 from a few exact patterns: sign, exponent 14 (0.5..1), random mantissa
      std::uint16_t h =
          static_cast<std::uint16_t>((rng() & 0x8000u) | (14u << 10) | (rng() & 0x3ffu));
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  }
  return bytes;
}

/// A small xLSTM with every tensor kind of the 7B (2 blocks, d 64, 4 heads, vocab 96).
inline ModelConfig tinyConfig() {
  ModelConfig c;
  c.embeddingDim = 64;
  c.numHeads = 4;
  c.numBlocks = 2;
  c.vocabSize = 96;
  return c;
}

/// config.json as transformers writes it for |c| (the fields that matter, both spellings).
inline std::string hfConfigJson(const ModelConfig &c) {
  return fmt::format(R"({{
  "architectures": ["xLSTMForCausalLM"],
  "model_type": "xlstm",
  "hidden_size": {0}, "embedding_dim": {0},
  "num_hidden_layers": {1}, "num_blocks": {1},
  "num_heads": {2}, "vocab_size": {3},
  "qk_dim_factor": {4}, "v_dim_factor": {5},
  "ffn_proj_factor": {6}, "ffn_round_up_to_multiple_of": {7},
  "tie_word_embeddings": {8}, "add_out_norm": {9}, "use_bias": false,
  "weight_mode": "single", "chunk_size": 16, "torch_dtype": "bfloat16"
}}
)",
                     c.embeddingDim, c.numBlocks, c.numHeads, c.vocabSize, c.qkDimFactor,
                     c.vDimFactor, c.ffnProjFactor, c.ffnRoundUpToMultipleOf,
                     c.tieWordEmbeddings ? "true" : "false", c.addOutNorm ? "true" : "false");
}

/// Every tensor of |config| with random values of |dtype|.
inline TensorSet xlstmTensors(const ModelConfig &config, DType dtype, unsigned seed) {
  std::mt19937 rng(seed);
  TensorSet set;
  for (const ExpectedTensor &e : xlstmExpectedTensors(config)) {
    if (e.optional)
      continue;
    set.add(e.name, dtype, e.shape, randomValues(dtype, elementCount(e.shape), rng));
  }
  return set;
}

} // namespace xlc::weights::testing

#endif // XLC_TEST_RUNTIME_WEIGHTS_TESTUTIL_H
