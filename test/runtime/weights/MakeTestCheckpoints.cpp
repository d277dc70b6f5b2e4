//===- MakeTestCheckpoints.cpp - Checkpoints for the xlc-dump ctests ------===//
//
// Usage: xlc-weights-testdata <output directory>
// Writes, each with a config.json as transformers writes it:
//   tiny/          model.safetensors, bf16, tiny xLSTM (2 blocks)          -> xlc-dump passes
//   tiny-sharded/  shards + model.safetensors.index.json, f32              -> xlc-dump passes
//   corrupt/       model.safetensors whose first tensor's data_offsets
//                  are one element short                                   -> xlc-dump fails
//   mismatch/      a 2-block checkpoint under a 3-block config.json        -> xlc-dump fails
//
//===----------------------------------------------------------------------===//

#include "runtime/weights/SafetensorsWriter.h"

#include "TestUtil.h"

#include <cstdio>
#include <filesystem>

using namespace xlc::weights;
using namespace xlc::weights::testing;

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output directory>\n", argv[0]);
    return 2;
  }
  try {
    namespace fs = std::filesystem;
    fs::path out = argv[1];
    for (const char *sub : {"tiny", "tiny-sharded", "corrupt", "mismatch"}) {
      fs::remove_all(out / sub);
      fs::create_directories(out / sub);
    }
    ModelConfig config = tinyConfig();

    TensorSet bf16 = xlstmTensors(config, DType::BF16, 1);
    writeSafetensors((out / "tiny" / "model.safetensors").string(), bf16.tensors,
                     {{"format", "pt"}});
    writeText((out / "tiny" / "config.json").string(), hfConfigJson(config));

    TensorSet f32 = xlstmTensors(config, DType::F32, 2);
    writeShardedSafetensors((out / "tiny-sharded").string(), f32.tensors, 100'000,
                            {{"format", "pt"}});
    writeText((out / "tiny-sharded" / "config.json").string(), hfConfigJson(config));

    // Damage the header in place: shrink the end offset of the first tensor by one element.
    std::vector<std::uint8_t> bytes = serializeSafetensors(bf16.tensors, {{"format", "pt"}});
    std::string header(bytes.begin() + 8, bytes.end());
    std::size_t at = header.find("\"data_offsets\":[0,");
    if (at == std::string::npos)
      throw std::runtime_error("unexpected header layout");
    std::size_t numberStart = at + std::string("\"data_offsets\":[0,").size();
    std::size_t numberEnd = header.find(']', numberStart);
    std::uint64_t end = std::stoull(header.substr(numberStart, numberEnd - numberStart));
    std::string shorter = std::to_string(end - 2);
    shorter.resize(numberEnd - numberStart, ' '); // keep the header length: pad with spaces
    std::copy(shorter.begin(), shorter.end(),
              bytes.begin() + 8 + static_cast<std::ptrdiff_t>(numberStart));
    writeBytes((out / "corrupt" / "model.safetensors").string(), bytes);
    writeText((out / "corrupt" / "config.json").string(), hfConfigJson(config));

    writeSafetensors((out / "mismatch" / "model.safetensors").string(), bf16.tensors);
    ModelConfig threeBlocks = config;
    threeBlocks.numBlocks = 3;
    writeText((out / "mismatch" / "config.json").string(), hfConfigJson(threeBlocks));
  } catch (const std::exception &e) {
    std::fprintf(stderr, "xlc-weights-testdata: %s\n", e.what());
    return 1;
  }
  return 0;
}
