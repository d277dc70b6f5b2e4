//===- FuzzTest.cpp - Random damage to a real header never crashes --------===//
//
// Takes a checkpoint with realistic xLSTM names written by the writer and applies thousands of
// seeded random mutations (byte flips, JSON-significant bytes, truncation, length-prefix edits,
// inserted and deleted bytes). Each must end in success or a clean xlc::Error; when parsing
// succeeds, every tensor is read in full, so an offset the validation let through that points
// outside the buffer shows up under ASan (the CI runs this binary in the sanitizer build).
//
//===----------------------------------------------------------------------===//

#include "runtime/weights/Checkpoint.h"
#include "runtime/weights/Convert.h"
#include "runtime/weights/Safetensors.h"
#include "runtime/weights/SafetensorsWriter.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

using namespace xlc::weights;
using namespace xlc::weights::testing;

namespace {

/// One tensor of each float dtype per block, so conversions of every kind run on survivors.
std::vector<std::uint8_t> realisticFile() {
  ModelConfig config = tinyConfig();
  config.embeddingDim = 16;
  config.vocabSize = 32;
  std::mt19937 rng(99);
  TensorSet set;
  const DType kinds[] = {DType::F32, DType::BF16, DType::F16};
  std::size_t i = 0;
  for (const ExpectedTensor &e : xlstmExpectedTensors(config)) {
    DType dtype = kinds[i++ % 3];
    set.add(e.name, dtype, e.shape, randomValues(dtype, elementCount(e.shape), rng));
  }
  return serializeSafetensors(set.tensors, {{"format", "pt"}, {"producer", "xlc fuzz"}});
}

std::uint64_t headerLength(const std::vector<std::uint8_t> &file) {
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | file[i];
  return n;
}

std::vector<std::uint8_t> mutate(std::vector<std::uint8_t> file, std::uint64_t headerEnd,
                                 std::mt19937_64 &rng) {
  static const char kSignificant[] = "\"{}[],:0123456789-.eE \\u\x80\xff\x00";
  auto pick = [&](std::uint64_t n) { return n == 0 ? 0 : rng() % n; };
  // Mostly aim at the header, where the parser works; sometimes anywhere.
  auto position = [&] {
    return pick(rng() % 8 == 0 ? file.size() : std::min<std::uint64_t>(headerEnd, file.size()));
  };
  int mutations = 1 + static_cast<int>(rng() % 4);
  for (int m = 0; m < mutations && !file.empty(); ++m) {
    switch (rng() % 7) {
    case 0: // flip random bits
      file[position()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
      break;
    case 1: // random byte
      file[position()] = static_cast<std::uint8_t>(rng());
      break;
    case 2: // a byte that means something to JSON or UTF-8
      file[position()] = static_cast<std::uint8_t>(kSignificant[pick(sizeof(kSignificant) - 1)]);
      break;
    case 3: // truncate
      file.resize(pick(file.size() + 1));
      break;
    case 4: { // edit the length prefix near its true value, or anywhere
      std::uint64_t n = headerLength(file);
      std::uint64_t edited = rng() % 2 ? n + (rng() % 64) - 32 : rng() >> (rng() % 64);
      if (file.size() >= 8)
        for (int i = 0; i < 8; ++i)
          file[i] = static_cast<std::uint8_t>(edited >> (8 * i));
      break;
    }
    case 5: // insert a byte (shifts everything after it)
      file.insert(file.begin() + static_cast<std::ptrdiff_t>(position()),
                  static_cast<std::uint8_t>(kSignificant[pick(sizeof(kSignificant) - 1)]));
      break;
    case 6: // delete a byte
      file.erase(file.begin() + static_cast<std::ptrdiff_t>(position()));
      break;
    }
  }
  return file;
}

/// Reads every tensor of a parsed file, converting the float ones.
std::uint64_t readEverything(const std::vector<std::uint8_t> &file,
                             const SafetensorsHeader &header) {
  std::uint64_t checksum = 0;
  std::span<const std::uint8_t> all(file);
  for (const TensorInfo &t : header.tensors) {
    std::span<const std::uint8_t> data = all.subspan(header.dataOffset + t.begin, t.byteSize);
    for (std::uint8_t b : data)
      checksum += b;
    if (isConvertibleFloat(t.dtype)) {
      std::vector<float> out(t.numElements);
      convertToF32(t.dtype, data, out, t.name);
      std::vector<std::uint16_t> half(t.numElements);
      convertToBF16(t.dtype, data, half, t.name);
    }
  }
  return checksum;
}

} // namespace

TEST(Fuzz, RandomDamageEndsInSuccessOrCleanError) {
  const std::vector<std::uint8_t> original = realisticFile();
  const std::uint64_t headerEnd = 8 + headerLength(original);
  ASSERT_NO_THROW(parseSafetensorsHeader(original, "original"));

  TempDir dir;
  std::mt19937_64 rng(20261122);
  int succeeded = 0, failed = 0;
  for (int iteration = 0; iteration < 6000; ++iteration) {
    // Heap copy of exactly the mutated size, so any read past it is an ASan report.
    std::vector<std::uint8_t> file = mutate(original, headerEnd, rng);
    try {
      SafetensorsHeader header = parseSafetensorsHeader(file, "'fuzz'");
      readEverything(file, header);
      ++succeeded;
    } catch (const xlc::Error &e) {
      std::string message = e.what();
      ASSERT_EQ(message.rfind("'fuzz'", 0), 0u) << "iteration " << iteration << ": " << message;
      ++failed;
    } catch (const std::exception &e) {
      FAIL() << "iteration " << iteration << " threw a non-xlc exception: " << e.what();
    }
    // Now and then the same bytes go through the file path: mmap, Checkpoint, readF32/readBF16.
    if (iteration % 200 == 0) {
      std::string path = dir.file("fuzz.safetensors");
      writeBytes(path, file);
      try {
        Checkpoint checkpoint = Checkpoint::open(path);
        for (const TensorInfo &t : checkpoint.tensors())
          if (isConvertibleFloat(t.dtype)) {
            std::vector<float> out(t.numElements);
            checkpoint.readF32(t, out);
            std::vector<std::uint16_t> half(t.numElements);
            checkpoint.readBF16(t, half);
          }
      } catch (const xlc::Error &) {
      }
    }
  }
  // Both outcomes must actually occur, or the mutations are not exercising anything.
  EXPECT_GT(succeeded, 100);
  EXPECT_GT(failed, 1000);
  std::printf("fuzz: %d parsed, %d rejected\n", succeeded, failed);
}

TEST(Fuzz, EveryTruncationIsRejectedCleanly) {
  const std::vector<std::uint8_t> original = realisticFile();
  const std::uint64_t headerEnd = 8 + headerLength(original);
  // Every cut inside the length prefix and header; in the data, a spread of cuts and the last ones.
  std::size_t dataStep = std::max<std::size_t>(1, (original.size() - headerEnd) / 500);
  for (std::size_t size = 0; size < original.size();
       size += (size < headerEnd || size + 16 >= original.size()) ? 1 : dataStep) {
    std::vector<std::uint8_t> file(original.begin(),
                                   original.begin() + static_cast<std::ptrdiff_t>(size));
    std::string message = errorOf([&] { parseSafetensorsHeader(file, "'cut'"); });
    ASSERT_NE(message, "<no error>") << "size " << size;
    if (size >= 8 && size < headerEnd)
      ASSERT_NE(message.find("runs past the end of the file"), std::string::npos) << message;
    else if (size >= headerEnd)
      ASSERT_NE(message.find("run past the end of the data buffer"), std::string::npos) << message;
  }
}
