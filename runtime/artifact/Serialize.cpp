//===- Serialize.cpp - The container and the writer -----------------------===//
//
// The writer's canonical JSON spelling (the reader accepts a little more, see Parse.cpp):
//   - an expression that is a plain constant (no B, S, B·S term, div 1) is an integer; any other
//     expression is an object holding only its non-zero coefficients and div when it is not 1;
//   - a constant dimension is an integer, a symbolic one "B" or "S";
//   - optional fields (offset, scale_columns_by) are omitted when absent, except a GEMM's "c",
//     which is null when absent;
//   - every step carries "attrs", an object, and "duties", a list;
//   - objects are std::map-backed, so keys come out sorted, and doubles print in nlohmann's
//     shortest round-tripping form. An f32 argument is written as the shortest decimal that reads
//     back as the same float.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Serialize.h"

#include "runtime/artifact/Validate.h"
#include "runtime/support/Error.h"
#include "runtime/support/MappedFile.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>

namespace xlc::artifact {

using Json = nlohmann::json;

namespace {

void putU32(std::uint8_t *out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

void putU64(std::uint8_t *out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::uint32_t getU32(const std::uint8_t *in) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | in[i];
  return v;
}

std::uint64_t getU64(const std::uint8_t *in) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | in[i];
  return v;
}

/// "XLCARTF\0" with unprintable bytes escaped.
std::string printableMagic(const std::uint8_t *bytes, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char c = bytes[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
      out += static_cast<char>(c);
    else
      out += fmt::format("\\x{:02x}", c);
  }
  return out;
}

Json exprJson(const Expr &e) {
  if (e.isConstant() && e.div == 1)
    return e.c;
  Json j = Json::object();
  if (e.c)
    j["c"] = e.c;
  if (e.b)
    j["B"] = e.b;
  if (e.s)
    j["S"] = e.s;
  if (e.bs)
    j["BS"] = e.bs;
  if (e.div != 1)
    j["div"] = e.div;
  return j;
}

Json dimJson(const Dim &d) {
  switch (d.kind) {
  case Dim::Kind::Constant:
    return d.value;
  case Dim::Kind::Batch:
    return "B";
  case Dim::Kind::Seq:
    return "S";
  }
  return nullptr;
}

/// The shortest decimal that parses back to |v| as a float, as a double; the float's exact
/// double value in the rare case where decimal -> double -> float would round differently.
double floatJson(float v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf) - 1, v);
  if (ec == std::errc()) {
    *end = '\0';
    double shortest = std::strtod(buf, nullptr);
    if (static_cast<float>(shortest) == v)
      return shortest;
  }
  return static_cast<double>(v);
}

Json argJson(const Arg &arg) {
  switch (arg.kind) {
  case ArgKind::Buffer:
    return {{"buffer", arg.bufferId}};
  case ArgKind::Symbol:
    return {{"symbol", symbolName(arg.symbolValue)}};
  case ArgKind::I64:
    return {{"i64", arg.intValue}};
  case ArgKind::F32:
    return {{"f32", floatJson(arg.floatValue)}};
  case ArgKind::Expr:
    return {{"expr", exprJson(arg.exprValue)}};
  case ArgKind::Scalar:
    return {{"scalar", arg.scalarIndex}};
  }
  return nullptr;
}

Json stepJson(const Step &step) {
  Json duties = Json::array();
  for (const Duty &d : step.duties)
    duties.push_back({{"kind", dutyKindName(d.kind)}, {"buffer", d.buffer}});
  Json j = {{"kind", stepKindName(step.kind())},
            {"op", step.op},
            {"attrs", step.attrs},
            {"duties", std::move(duties)}};
  if (const LaunchStep *launch = step.launch()) {
    j["kernel"] = launch->kernel;
    Json args = Json::array();
    for (const Arg &arg : launch->args)
      args.push_back(argJson(arg));
    j["args"] = std::move(args);
    if (!launch->byBatch.empty()) { // written only when there are variants
      Json variants = Json::array();
      for (const BatchVariant &v : launch->byBatch)
        variants.push_back({{"max_batch", v.maxBatch}, {"kernel", v.kernel}});
      j["by_batch"] = std::move(variants);
    }
  } else if (const GemmStep *gemm = step.gemm()) {
    j["a"] = gemm->a;
    j["b"] = gemm->b;
    j["d"] = gemm->d;
    j["c"] = gemm->c ? Json(*gemm->c) : Json(nullptr);
    j["m"] = exprJson(gemm->m);
    j["n"] = exprJson(gemm->n);
    j["k"] = exprJson(gemm->k);
    j["epilogue"] = epilogueName(gemm->epilogue);
    j["trans_a"] = gemm->transA;
    j["trans_b"] = gemm->transB;
    j["accumulate"] = gemm->accumulate;
    j["a_rows"] = gemmRowsName(gemm->aRows);
  } else if (const CopyStep *copy = step.copy()) {
    j["src"] = copy->src;
    j["dst"] = copy->dst;
    j["bytes"] = exprJson(copy->bytes);
  }
  return j;
}

Json kernelJson(const Kernel &k) {
  Json params = Json::array();
  for (const KernelParam &p : k.params)
    params.push_back({{"name", p.name}, {"kind", paramKindName(p.kind)}});
  Json j = {{"name", k.name},
            {"family", k.family},
            {"entry", k.entry},
            {"tile", k.tile},
            {"config", k.config},
            {"source", k.source},
            {"options", k.options},
            {"block", k.block},
            {"grid", {exprJson(k.grid[0]), exprJson(k.grid[1]), exprJson(k.grid[2])}},
            {"shared_bytes", k.sharedBytes},
            {"params", std::move(params)}};
  if (k.tuning)
    j["tuning"] = {{"record", k.tuning->record},
                   {"default", k.tuning->defaultTile},
                   {"default_us", k.tuning->defaultUs},
                   {"chosen_us", k.tuning->chosenUs}};
  return j;
}

Json bufferJson(const Buffer &b) {
  Json shape = Json::array();
  for (const Dim &d : b.shape)
    shape.push_back(dimJson(d));
  Json j = {{"id", b.id},
            {"name", b.name},
            {"class", bufferClassName(b.cls)},
            {"dtype", dtypeName(b.dtype)},
            {"shape", std::move(shape)}};
  if (b.offset)
    j["offset"] = exprJson(*b.offset);
  if (b.bytes)
    j["bytes"] = exprJson(*b.bytes);
  if (b.parameter)
    j["parameter"] = *b.parameter;
  if (b.role)
    j["role"] = optimizerRoleName(*b.role);
  return j;
}

Json weightJson(const WeightBinding &w) {
  Json j = {{"buffer", w.buffer},
            {"sources", w.sources},
            {"source_shapes", w.sourceShapes},
            {"concat_axis", w.concatAxis}};
  if (w.scaleColumnsBy)
    j["scale_columns_by"] = *w.scaleColumnsBy;
  return j;
}

Json functionJson(const Function &f) {
  Json steps = Json::array();
  for (const Step &s : f.steps)
    steps.push_back(stepJson(s));
  auto args = [](const std::vector<FunctionArg> &list) {
    Json out = Json::array();
    for (const FunctionArg &a : list)
      out.push_back({{"name", a.name}, {"buffer", a.buffer}});
    return out;
  };
  Json scalars = Json::array();
  for (const ScalarParam &p : f.scalars)
    scalars.push_back({{"name", p.name}, {"kind", paramKindName(p.kind)}});
  return {{"name", f.name},
          {"inputs", args(f.inputs)},
          {"outputs", args(f.outputs)},
          {"scalars", std::move(scalars)},
          {"states", f.states},
          {"steps", std::move(steps)}};
}

} // namespace

std::uint64_t fnv1a64(std::span<const std::uint8_t> bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::uint8_t b : bytes) {
    h ^= b;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::vector<std::uint8_t> wrapContainer(std::string_view payload) {
  std::vector<std::uint8_t> out(kHeaderBytes + payload.size());
  std::memcpy(out.data(), kMagic, sizeof(kMagic));
  putU32(out.data() + 8, kSchemaVersion);
  putU32(out.data() + 12, 0);
  putU64(out.data() + 16, payload.size());
  if (!payload.empty())
    std::memcpy(out.data() + kHeaderBytes, payload.data(), payload.size());
  putU64(out.data() + 24, fnv1a64({out.data() + kHeaderBytes, payload.size()}));
  return out;
}

std::string_view unwrapContainer(std::span<const std::uint8_t> bytes, std::string_view sourceName) {
  const std::uint8_t *p = bytes.data();
  std::size_t size = bytes.size();
  // Compare the magic as far as the file goes first, so a short non-artifact is reported as
  // "not an artifact" rather than "truncated".
  std::size_t magicBytes = std::min(size, sizeof(kMagic));
  if (magicBytes > 0 && std::memcmp(p, kMagic, magicBytes) != 0)
    fail("{}: not an xlc artifact (magic \"{}\", expected \"XLCARTF\\x00\")", sourceName,
         printableMagic(p, magicBytes));
  if (size < kHeaderBytes)
    fail("{}: truncated: {} bytes, but the artifact header alone is {} bytes", sourceName, size,
         kHeaderBytes);
  std::uint32_t version = getU32(p + 8);
  if (version < kSchemaVersion)
    fail("{}: artifact schema version {} is older than this runtime's {}: recompile the model "
         "with this release's xlc-compile",
         sourceName, version, kSchemaVersion);
  if (version != kSchemaVersion)
    fail("{}: unsupported artifact schema version {} (this runtime reads version {})", sourceName,
         version, kSchemaVersion);
  std::uint32_t flags = getU32(p + 12);
  if (flags != 0)
    fail("{}: unknown header flags 0x{:08x} (version {} defines none)", sourceName, flags,
         kSchemaVersion);
  std::uint64_t length = getU64(p + 16);
  std::uint64_t available = size - kHeaderBytes;
  if (length > available)
    fail("{}: truncated: the header announces a {}-byte payload, but only {} bytes follow it",
         sourceName, length, available);
  if (length < available)
    fail("{}: {} trailing bytes after the {}-byte payload", sourceName, available - length, length);
  std::uint64_t expected = getU64(p + 24);
  std::uint64_t actual = fnv1a64(bytes.subspan(kHeaderBytes));
  if (expected != actual)
    fail("{}: payload checksum mismatch (header says 0x{:016x}, payload hashes to 0x{:016x}): "
         "the file is damaged",
         sourceName, expected, actual);
  return {reinterpret_cast<const char *>(p + kHeaderBytes), static_cast<std::size_t>(length)};
}

Json toJson(const Artifact &a) {
  Json kernels = Json::array(), buffers = Json::array(), weights = Json::array(),
       functions = Json::array();
  for (const Kernel &k : a.kernels)
    kernels.push_back(kernelJson(k));
  for (const Buffer &b : a.buffers)
    buffers.push_back(bufferJson(b));
  for (const WeightBinding &w : a.weights)
    weights.push_back(weightJson(w));
  for (const Function &f : a.functions)
    functions.push_back(functionJson(f));
  const ModelInfo &m = a.model;
  return {{"schema_version", kSchemaVersion},
          {"compiler", {{"name", a.compiler.name}, {"version", a.compiler.version}}},
          {"target", {{"arch", a.targetArch}}},
          {"model",
           {{"name", m.name},
            {"vocab_size", m.vocabSize},
            {"embedding_dim", m.embeddingDim},
            {"num_blocks", m.numBlocks},
            {"chunk_size", m.chunkSize},
            {"bos_token_id", m.bosTokenId},
            {"eos_token_id", m.eosTokenId},
            {"pad_token_id", m.padTokenId}}},
          {"device_headers_hash", a.deviceHeadersHash},
          {"kernels", std::move(kernels)},
          {"buffers", std::move(buffers)},
          {"weights", std::move(weights)},
          {"functions", std::move(functions)},
          {"arena", {{"bytes", exprJson(a.arenaBytes)}}}};
}

std::vector<std::uint8_t> serialize(const Artifact &artifact) {
  validateStructure(artifact);
  std::string payload;
  try {
    payload = toJson(artifact).dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::strict);
  } catch (const Json::exception &e) {
    // The only failure left after validation: a string that is not valid UTF-8.
    fail("{}: cannot serialize: {}", artifact.label(), e.what());
  }
  return wrapContainer(payload);
}

void writeArtifact(const std::string &path, const Artifact &artifact) {
  std::vector<std::uint8_t> bytes = serialize(artifact);
  writeFileAtomically(path, bytes);
}

} // namespace xlc::artifact
