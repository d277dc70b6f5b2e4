//===- Safetensors.cpp - Reading one safetensors file ---------------------===//

#include "runtime/weights/Safetensors.h"

#include "runtime/support/Error.h"
#include "runtime/support/Json.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace xlc::weights {

std::string shapeString(std::span<const std::int64_t> shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0)
      out += ", ";
    out += std::to_string(shape[i]);
  }
  out += ']';
  return out;
}

const TensorInfo *findTensor(std::span<const TensorInfo> sortedByName, std::string_view name) {
  auto it = std::lower_bound(sortedByName.begin(), sortedByName.end(), name,
                             [](const TensorInfo &t, std::string_view n) { return t.name < n; });
  if (it == sortedByName.end() || it->name != name)
    return nullptr;
  return &*it;
}

namespace {

/// PyTorch's own limit on tensor rank; a longer shape is corrupt.
constexpr std::size_t kMaxRank = 64;

/// The header nests at most root object -> tensor entry -> shape array (depths 0, 1, 2).
constexpr int kHeaderMaxDepth = 2;

std::uint64_t readLE64(const std::uint8_t *p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

/// A JSON value for a message, cut short if a hostile header made it long.
std::string shortDump(const nlohmann::json &value) {
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true);
  if (text.size() > 120)
    text = text.substr(0, 100) + "...(" + std::to_string(text.size()) + " characters)";
  return text;
}

/// Parses one tensor entry (|entry| is the JSON value under |name|).
TensorInfo parseEntry(std::string_view label, const std::string &name, const nlohmann::json &entry,
                      std::uint64_t dataSize, std::vector<std::string> &warnings) {
  std::string where = fmt::format("{}: tensor {}", label, json::quoteText(name));
  if (!entry.is_object())
    fail("{}: expected an object with dtype, shape and data_offsets, found {}", where,
         json::typeName(entry));
  for (const char *field : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(field))
      fail("{}: missing field '{}'", where, field);
  for (const auto &item : entry.items())
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets")
      warnings.push_back(
          fmt::format("{}: ignoring unknown field {}", where, json::quoteText(item.key())));

  TensorInfo info;
  info.name = name;

  const nlohmann::json &dtype = entry["dtype"];
  if (!dtype.is_string())
    fail("{}: 'dtype' must be a string, found {}", where, json::typeName(dtype));
  const std::string &dtypeText = dtype.get_ref<const std::string &>();
  std::optional<DType> parsed = parseDType(dtypeText);
  if (!parsed)
    fail("{}: unknown dtype {} (known: BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, "
         "BF16, I32, U32, F32, I64, U64, F64, C64)",
         where, json::quoteText(dtypeText));
  info.dtype = *parsed;

  const nlohmann::json &shape = entry["shape"];
  if (!shape.is_array())
    fail("{}: 'shape' must be an array of non-negative integers, found {}", where,
         json::typeName(shape));
  if (shape.size() > kMaxRank)
    fail("{}: shape has {} dimensions, more than the {} any framework writes", where, shape.size(),
         kMaxRank);
  // Product of the non-zero extents, checked against overflow even when another extent is zero:
  // a shape whose element count cannot be represented is corrupt whatever its other extents.
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t product = 1;
  bool hasZero = false;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const nlohmann::json &dim = shape[i];
    if (!dim.is_number_unsigned())
      fail("{}: shape[{}] must be a non-negative integer, found {} ({})", where, i,
           json::typeName(dim), shortDump(dim));
    std::uint64_t extent = dim.get<std::uint64_t>();
    if (extent > kMax)
      fail("{}: shape[{}] = {} is too large", where, i, extent);
    info.shape.push_back(static_cast<std::int64_t>(extent));
    if (extent == 0) {
      hasZero = true;
    } else if (product > kMax / extent) {
      fail("{}: the element count of shape {} overflows 64 bits", where, shortDump(shape));
    } else {
      product *= extent;
    }
  }
  info.numElements = hasZero ? 0 : product;
  std::size_t elementSize = dtypeSize(info.dtype);
  if (info.numElements > kMax / elementSize)
    fail("{}: shape {} of {} needs more than 2^63 bytes", where, shapeString(info.shape),
         dtypeText);
  info.byteSize = info.numElements * elementSize;

  const nlohmann::json &offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    fail("{}: 'data_offsets' must be [begin, end] with non-negative integers, found {}", where,
         shortDump(offsets));
  info.begin = offsets[0].get<std::uint64_t>();
  info.end = offsets[1].get<std::uint64_t>();
  if (info.end < info.begin)
    fail("{}: data_offsets [{}, {}] end before they begin", where, info.begin, info.end);
  if (info.end - info.begin != info.byteSize)
    fail("{}: data_offsets [{}, {}] span {} bytes, but shape {} of {} needs {} bytes", where,
         info.begin, info.end, info.end - info.begin, shapeString(info.shape), dtypeText,
         info.byteSize);
  if (info.end > dataSize)
    fail("{}: data_offsets [{}, {}] run past the end of the data buffer ({} bytes)", where,
         info.begin, info.end, dataSize);
  return info;
}

/// Rejects overlapping tensors; reports unused bytes as one warning.
void checkLayout(std::string_view label, const std::vector<TensorInfo> &tensors,
                 std::uint64_t dataSize, std::vector<std::string> &warnings) {
  std::vector<const TensorInfo *> byOffset;
  byOffset.reserve(tensors.size());
  for (const TensorInfo &t : tensors)
    if (t.byteSize > 0) // an empty tensor occupies no bytes and cannot overlap anything
      byOffset.push_back(&t);
  std::sort(byOffset.begin(), byOffset.end(), [](const TensorInfo *a, const TensorInfo *b) {
    return a->begin != b->begin ? a->begin < b->begin : a->name < b->name;
  });
  std::uint64_t covered = 0, unused = 0, gaps = 0;
  const TensorInfo *previous = nullptr;
  for (const TensorInfo *t : byOffset) {
    if (previous != nullptr && t->begin < previous->end)
      fail("{}: tensors {} (bytes [{}, {})) and {} (bytes [{}, {})) overlap", label,
           json::quoteText(previous->name), previous->begin, previous->end,
           json::quoteText(t->name), t->begin, t->end);
    if (t->begin > covered) {
      unused += t->begin - covered;
      ++gaps;
    }
    covered = t->end;
    previous = t;
  }
  if (dataSize > covered) {
    unused += dataSize - covered;
    ++gaps;
  }
  if (unused > 0)
    warnings.push_back(fmt::format("{}: {} bytes of the data buffer ({} gap{}) belong to no tensor",
                                   label, unused, gaps, gaps == 1 ? "" : "s"));
}

} // namespace

SafetensorsHeader parseSafetensorsHeader(std::span<const std::uint8_t> file,
                                         std::string_view label) {
  if (file.size() < 8)
    fail("{}: file is {} bytes, too short for a safetensors file (it starts with an 8-byte "
         "header length)",
         label, file.size());
  SafetensorsHeader header;
  header.headerSize = readLE64(file.data());
  if (header.headerSize > kMaxHeaderSize)
    fail("{}: header length {} exceeds the limit of {} bytes (corrupt or not a safetensors file)",
         label, header.headerSize, kMaxHeaderSize);
  if (header.headerSize > file.size() - 8)
    fail("{}: header length {} runs past the end of the file ({} bytes, so at most {} header "
         "bytes)",
         label, header.headerSize, file.size(), file.size() - 8);
  header.dataOffset = 8 + header.headerSize;
  header.dataSize = file.size() - header.dataOffset;

  std::string_view text(reinterpret_cast<const char *>(file.data() + 8), header.headerSize);
  std::string headerLabel = fmt::format("{}: header", label);
  nlohmann::json root = json::parseStrictJson(text, headerLabel, kHeaderMaxDepth);
  if (!root.is_object())
    fail("{}: must be a JSON object, found {}", headerLabel, json::typeName(root));

  header.tensors.reserve(root.size());
  for (const auto &item : root.items()) {
    const std::string &key = item.key();
    if (key == kMetadataKey) {
      const nlohmann::json &metadata = item.value();
      if (!metadata.is_object())
        fail("{}: '__metadata__' must be an object of strings, found {}", headerLabel,
             json::typeName(metadata));
      for (const auto &entry : metadata.items()) {
        if (!entry.value().is_string())
          fail("{}: '__metadata__' value {} must be a string, found {}", headerLabel,
               json::quoteText(entry.key()), json::typeName(entry.value()));
        header.metadata.emplace(entry.key(), entry.value().get<std::string>());
      }
      continue;
    }
    header.tensors.push_back(
        parseEntry(label, key, item.value(), header.dataSize, header.warnings));
  }
  // nlohmann::json objects iterate in key order, so the list is already sorted by name.
  checkLayout(label, header.tensors, header.dataSize, header.warnings);
  return header;
}

SafetensorsFile SafetensorsFile::open(const std::string &path) {
  SafetensorsFile result;
  result.file_ = MappedFile::open(path);
  result.header_ = parseSafetensorsHeader(result.file_.bytes(), fmt::format("'{}'", path));
  return result;
}

const TensorInfo *SafetensorsFile::find(std::string_view name) const {
  return findTensor(header_.tensors, name);
}

std::span<const std::uint8_t> SafetensorsFile::data(const TensorInfo &tensor) const {
  // Re-checked here because TensorInfo is a plain struct a caller could have edited.
  check(tensor.begin <= tensor.end && tensor.end <= header_.dataSize,
        "'{}': tensor {} bytes [{}, {}) lie outside the data buffer ({} bytes)", path(),
        json::quoteText(tensor.name), tensor.begin, tensor.end, header_.dataSize);
  return file_.bytes().subspan(header_.dataOffset + tensor.begin, tensor.end - tensor.begin);
}

} // namespace xlc::weights
