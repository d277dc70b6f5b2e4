//===- Parse.cpp - The reader: container bytes -> Artifact ----------------===//
//
// Reads the payload field by field with the checked accessors of Json.h: every field the
// schema names must be present with its JSON type (optional: an expression's keys, "offset",
// "scale_columns_by", "attrs", a GEMM's "a_rows"), enum strings must be known, and a field the schema does not name
// is an error (a misspelt "scale_column_by" must not silently drop a folded norm). Cross-item
// rules (references, shapes, arguments against parameters, ...) are validateStructure's.
//
// The reader accepts every spelling the writer produces plus an expression written as an object
// with zero or default-valued keys, a constant expression written as an object, and integer f32
// arguments; anything it accepts re-serializes canonically.
//
//===----------------------------------------------------------------------===//

#include "runtime/support/Json.h"
#include "runtime/artifact/Serialize.h"
#include "runtime/artifact/Validate.h"
#include "runtime/support/Error.h"
#include "runtime/support/MappedFile.h"

#include <cmath>
#include <limits>

namespace xlc::artifact {

using namespace xlc::json;

namespace {

/// Deep enough for the schema (a launch argument sits at depth 6) and for op attributes nested a
/// few levels; shallow enough that no recursion over the tree can exhaust the stack.
constexpr int kMaxJsonDepth = 32;

/// "<source>: <kind> <index> '<name>'" with the name peeked from the item when it has one.
std::string itemLabel(const std::string &source, std::string_view kind, std::size_t index,
                      const Json &value) {
  std::string label = fmt::format("{}: {} {}", source, kind, index);
  if (value.is_object())
    if (auto it = value.find("name"); it != value.end() && it->is_string())
      label += fmt::format(" {}", quoteText(it->get_ref<const std::string &>()));
  return label;
}

Expr parseExpr(const Json &value, const Loc &loc) {
  if (value.is_number_unsigned())
    return Expr::constant(value.get<std::uint64_t>());
  if (!value.is_object())
    fail("{} must be a non-negative integer or an expression object with keys c, B, S, BS, div; "
         "got {}",
         loc.str(), describe(value));
  ObjectReader r(value, loc);
  Expr e;
  auto coefficient = [&](const char *key, std::uint64_t &out) {
    if (const Json *v = r.find(key))
      out = asU64(*v, r.field(key));
  };
  coefficient("c", e.c);
  coefficient("B", e.b);
  coefficient("S", e.s);
  coefficient("BS", e.bs);
  coefficient("div", e.div);
  if (e.div == 0)
    fail("{} must be at least 1, got 0", r.field("div").str());
  r.finish();
  return e;
}

bool asBool(const Json &value, const Loc &loc) {
  if (!value.is_boolean())
    fail("{} must be true or false, got {}", loc.str(), describe(value));
  return value.get<bool>();
}

Dim parseDim(const Json &value, const Loc &loc) {
  if (value.is_number_unsigned())
    return Dim(value.get<std::uint64_t>());
  if (value.is_string()) {
    const std::string &s = value.get_ref<const std::string &>();
    if (s == "B")
      return Dim::batch();
    if (s == "S")
      return Dim::seq();
  }
  fail("{} must be a positive integer, \"B\" or \"S\"; got {}", loc.str(), describe(value));
}

template <typename E>
E parseEnum(const std::string &name, std::optional<E> (*parse)(std::string_view), const Loc &loc,
            std::string_view allowed) {
  if (auto e = parse(name))
    return *e;
  fail("{}: unknown value {} (expected one of {})", loc.str(), quoteText(name), allowed);
}

std::vector<BufferId> parseIdList(const Json &value, const Loc &loc) {
  std::vector<BufferId> ids;
  const Json::array_t &array = asArray(value, loc);
  for (std::size_t i = 0; i < array.size(); ++i)
    ids.push_back(asU32(array[i], loc.index(i)));
  return ids;
}

std::vector<std::string> parseStringList(const Json &value, const Loc &loc) {
  std::vector<std::string> out;
  const Json::array_t &array = asArray(value, loc);
  for (std::size_t i = 0; i < array.size(); ++i)
    out.push_back(asString(array[i], loc.index(i)));
  return out;
}

nlohmann::json parseAttrs(const Json *value, const Loc &loc) {
  if (!value)
    return Json::object();
  if (!value->is_object())
    fail("{} must be an object, got {}", loc.str(), describe(*value));
  return *value;
}

Kernel parseKernel(const Json &value, const std::string &source, std::size_t index) {
  ObjectReader r(value, {itemLabel(source, "kernel", index, value), ""});
  Kernel k;
  k.name = r.string("name");
  k.family = r.string("family");
  k.entry = r.string("entry");
  k.tile = r.string("tile");
  {
    const Json &config = r.get("config");
    if (!config.is_object())
      fail("{} must be an object, got {}", r.field("config").str(), describe(config));
    k.config = config;
  }
  k.source = r.string("source");
  k.options = parseStringList(r.get("options"), r.field("options"));

  Loc blockLoc = r.field("block");
  const Json::array_t &block = r.array("block");
  if (block.size() != 3)
    fail("{} must have 3 entries (x, y, z), got {}", blockLoc.str(), block.size());
  for (std::size_t i = 0; i < 3; ++i)
    k.block[i] = asU32(block[i], blockLoc.index(i));

  Loc gridLoc = r.field("grid");
  const Json::array_t &grid = r.array("grid");
  if (grid.size() != 3)
    fail("{} must have 3 entries (x, y, z), got {}", gridLoc.str(), grid.size());
  for (std::size_t i = 0; i < 3; ++i)
    k.grid[i] = parseExpr(grid[i], gridLoc.index(i));

  k.sharedBytes = r.u32("shared_bytes");

  Loc paramsLoc = r.field("params");
  const Json::array_t &params = r.array("params");
  for (std::size_t i = 0; i < params.size(); ++i) {
    ObjectReader p(params[i], paramsLoc.index(i));
    KernelParam param;
    param.name = p.string("name");
    param.kind =
        parseEnum<ParamKind>(p.string("kind"), parseParamKind, p.field("kind"), "buffer, i64, f32");
    p.finish();
    k.params.push_back(std::move(param));
  }
  if (const Json *tuning = r.find("tuning")) {
    ObjectReader t(*tuning, r.field("tuning"));
    KernelTuning kt;
    kt.record = t.string("record");
    kt.defaultTile = t.string("default");
    kt.defaultUs = asNumber(t.get("default_us"), t.field("default_us"));
    kt.chosenUs = asNumber(t.get("chosen_us"), t.field("chosen_us"));
    t.finish();
    k.tuning = std::move(kt);
  }
  r.finish();
  return k;
}

Buffer parseBuffer(const Json &value, const std::string &source, std::size_t index) {
  ObjectReader r(value, {itemLabel(source, "buffer", index, value), ""});
  Buffer b;
  b.id = r.u32("id");
  b.name = r.string("name");
  b.cls = parseEnum<BufferClass>(r.string("class"), parseBufferClass, r.field("class"),
                                 "weight, input, output, activation, workspace, state, "
                                 "parameter, gradient, optimizer");
  b.dtype = parseEnum<DType>(r.string("dtype"), parseDType, r.field("dtype"),
                             "f32, bf16, f16, i64, i32, u8");
  Loc shapeLoc = r.field("shape");
  const Json::array_t &shape = r.array("shape");
  for (std::size_t i = 0; i < shape.size(); ++i)
    b.shape.push_back(parseDim(shape[i], shapeLoc.index(i)));
  if (const Json *offset = r.find("offset"))
    b.offset = parseExpr(*offset, r.field("offset"));
  if (const Json *bytes = r.find("bytes"))
    b.bytes = parseExpr(*bytes, r.field("bytes"));
  if (r.find("parameter"))
    b.parameter = r.u32("parameter");
  if (r.find("role"))
    b.role = parseEnum<OptimizerRole>(r.string("role"), parseOptimizerRole, r.field("role"),
                                      "exp_avg, exp_avg_sq, master");
  r.finish();
  return b;
}

WeightBinding parseWeight(const Json &value, const std::string &source, std::size_t index) {
  ObjectReader r(value, {itemLabel(source, "weight binding", index, value), ""});
  WeightBinding w;
  w.buffer = r.u32("buffer");
  w.sources = parseStringList(r.get("sources"), r.field("sources"));
  Loc shapesLoc = r.field("source_shapes");
  const Json::array_t &shapes = r.array("source_shapes");
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    Loc shapeLoc = shapesLoc.index(i);
    std::vector<std::uint64_t> shape;
    const Json::array_t &dims = asArray(shapes[i], shapeLoc);
    for (std::size_t d = 0; d < dims.size(); ++d)
      shape.push_back(asU64(dims[d], shapeLoc.index(d)));
    w.sourceShapes.push_back(std::move(shape));
  }
  w.concatAxis = r.u32("concat_axis");
  if (const Json *scale = r.find("scale_columns_by"))
    w.scaleColumnsBy = asString(*scale, r.field("scale_columns_by"));
  r.finish();
  return w;
}

Arg parseArg(const Json &value, const Loc &loc) {
  if (!value.is_object() || value.size() != 1)
    fail("{} must be an object with exactly one of the keys buffer, symbol, i64, expr, f32, "
         "scalar; got {}",
         loc.str(), value.is_object() ? fmt::format("{} keys", value.size()) : describe(value));
  auto it = value.begin();
  const std::string &key = it.key();
  const Json &v = it.value();
  Loc vLoc = loc.child(key);
  if (key == "buffer")
    return Arg::buffer(asU32(v, vLoc));
  if (key == "symbol") {
    const std::string &name = asString(v, vLoc);
    return Arg::symbol(parseEnum<Symbol>(name, parseSymbol, vLoc, "B, S, BS"));
  }
  if (key == "i64")
    return Arg::i64(asI64(v, vLoc));
  if (key == "expr")
    return Arg::expr(parseExpr(v, vLoc));
  if (key == "scalar")
    return Arg::scalar(asU32(v, vLoc));
  if (key == "f32") {
    double d = asNumber(v, vLoc);
    // Values from 2^128 - 2^103 up round to infinity in f32 (and converting a double outside
    // float's range is undefined behaviour); an f32 parameter has no business holding one.
    // Below that threshold but above FLT_MAX, a value rounds to FLT_MAX.
    constexpr double kOverflow = 0x1.ffffffp127;
    constexpr float kMax = std::numeric_limits<float>::max();
    if (!(std::fabs(d) < kOverflow))
      fail("{} = {} is outside the range of f32", vLoc.str(), d);
    if (std::fabs(d) > kMax)
      return Arg::f32(d > 0 ? kMax : -kMax);
    return Arg::f32(static_cast<float>(d));
  }
  fail("{}: unknown argument key {} (expected buffer, symbol, i64, expr, f32 or scalar)",
       loc.str(),
       quoteText(key));
}

Step parseStep(const Json &value, const Loc &loc) {
  ObjectReader r(value, loc);
  Step step;
  const std::string &kind = r.string("kind");
  step.op = r.string("op");
  step.attrs = parseAttrs(r.find("attrs"), r.field("attrs"));
  Loc dutiesLoc = r.field("duties");
  const Json::array_t &duties = r.array("duties");
  for (std::size_t i = 0; i < duties.size(); ++i) {
    ObjectReader d(duties[i], dutiesLoc.index(i));
    Duty duty;
    duty.kind = parseEnum<DutyKind>(d.string("kind"), parseDutyKind, d.field("kind"),
                                    "zero, error_flag, accumulate");
    duty.buffer = d.u32("buffer");
    d.finish();
    step.duties.push_back(duty);
  }
  if (kind == "launch") {
    LaunchStep launch;
    launch.kernel = r.u32("kernel");
    Loc argsLoc = r.field("args");
    const Json::array_t &args = r.array("args");
    for (std::size_t i = 0; i < args.size(); ++i)
      launch.args.push_back(parseArg(args[i], argsLoc.index(i)));
    if (const Json *byBatch = r.find("by_batch")) { // optional: absent = no variants
      Loc variantsLoc = r.field("by_batch");
      const Json::array_t &variants = asArray(*byBatch, variantsLoc);
      for (std::size_t i = 0; i < variants.size(); ++i) {
        ObjectReader v(variants[i], variantsLoc.index(i));
        BatchVariant variant;
        variant.maxBatch = v.u64("max_batch");
        variant.kernel = v.u32("kernel");
        v.finish();
        launch.byBatch.push_back(variant);
      }
    }
    step.body = std::move(launch);
  } else if (kind == "gemm") {
    GemmStep gemm;
    gemm.a = r.u32("a");
    gemm.b = r.u32("b");
    gemm.d = r.u32("d");
    if (const Json &c = r.get("c"); !c.is_null())
      gemm.c = asU32(c, r.field("c"));
    gemm.m = parseExpr(r.get("m"), r.field("m"));
    gemm.n = parseExpr(r.get("n"), r.field("n"));
    gemm.k = parseExpr(r.get("k"), r.field("k"));
    gemm.epilogue = parseEnum<Epilogue>(r.string("epilogue"), parseEpilogue, r.field("epilogue"),
                                        "none, residual_add, bias");
    gemm.transA = asBool(r.get("trans_a"), r.field("trans_a"));
    gemm.transB = asBool(r.get("trans_b"), r.field("trans_b"));
    gemm.accumulate = asBool(r.get("accumulate"), r.field("accumulate"));
    // Optional: artifacts written before it existed read every row.
    if (const Json *rows = r.find("a_rows"))
      gemm.aRows = parseEnum<GemmRows>(asString(*rows, r.field("a_rows")), parseGemmRows,
                                       r.field("a_rows"), "all, last_position");
    step.body = gemm;
  } else if (kind == "copy") {
    CopyStep copy;
    copy.src = r.u32("src");
    copy.dst = r.u32("dst");
    copy.bytes = parseExpr(r.get("bytes"), r.field("bytes"));
    step.body = copy;
  } else {
    fail("{}: unknown value {} (expected one of launch, gemm, copy)", r.field("kind").str(),
         quoteText(kind));
  }
  r.finish();
  return step;
}

Function parseFunction(const Json &value, const std::string &source, std::size_t index) {
  std::string label = fmt::format("{}: function {}", source, index);
  if (value.is_object())
    if (auto it = value.find("name"); it != value.end() && it->is_string())
      label = fmt::format("{}: function {}", source, quoteText(it->get_ref<const std::string &>()));
  ObjectReader r(value, {label, ""});
  Function f;
  f.name = r.string("name");
  auto args = [&](const char *key) {
    std::vector<FunctionArg> out;
    Loc loc = r.field(key);
    const Json::array_t &array = r.array(key);
    for (std::size_t i = 0; i < array.size(); ++i) {
      ObjectReader a(array[i], loc.index(i));
      out.push_back({a.string("name"), a.u32("buffer")});
      a.finish();
    }
    return out;
  };
  f.inputs = args("inputs");
  f.outputs = args("outputs");
  {
    Loc loc = r.field("scalars");
    const Json::array_t &array = r.array("scalars");
    for (std::size_t i = 0; i < array.size(); ++i) {
      ObjectReader a(array[i], loc.index(i));
      ScalarParam p;
      p.name = a.string("name");
      p.kind = parseEnum<ParamKind>(a.string("kind"), parseParamKind, a.field("kind"), "i64, f32");
      a.finish();
      f.scalars.push_back(std::move(p));
    }
  }
  f.states = parseIdList(r.get("states"), r.field("states"));
  const Json::array_t &steps = r.array("steps");
  for (std::size_t i = 0; i < steps.size(); ++i)
    f.steps.push_back(parseStep(
        steps[i], {fmt::format("{}: step {} of function {}", source, i, quoteText(f.name)), ""}));
  r.finish();
  return f;
}

template <typename T, typename Fn>
std::vector<T> parseList(ObjectReader &root, const char *key, Fn parseItem) {
  std::vector<T> items;
  const Json::array_t &array = root.array(key);
  items.reserve(array.size());
  for (std::size_t i = 0; i < array.size(); ++i)
    items.push_back(parseItem(array[i], i));
  return items;
}

Artifact parsePayload(const Json &root, const std::string &source) {
  if (!root.is_object())
    fail("{}: the payload must be a JSON object, got {}", source, describe(root));
  ObjectReader r(root, {source, ""});
  std::uint32_t version = r.u32("schema_version");
  if (version < kSchemaVersion)
    fail("{}: payload schema_version {} is older than this runtime's {}: recompile the model with "
         "this release's xlc-compile",
         source, version, kSchemaVersion);
  if (version != kSchemaVersion)
    fail("{}: payload schema_version is {}, but this runtime reads version {}", source, version,
         kSchemaVersion);

  Artifact a;
  a.sourceName = source;
  {
    ObjectReader c(r.get("compiler"), r.field("compiler"));
    a.compiler.name = c.string("name");
    a.compiler.version = c.string("version");
    c.finish();
  }
  {
    ObjectReader t(r.get("target"), r.field("target"));
    a.targetArch = t.string("arch");
    t.finish();
  }
  {
    ObjectReader m(r.get("model"), r.field("model"));
    a.model.name = m.string("name");
    a.model.vocabSize = m.u64("vocab_size");
    a.model.embeddingDim = m.u64("embedding_dim");
    a.model.numBlocks = m.u64("num_blocks");
    a.model.chunkSize = m.u64("chunk_size");
    a.model.bosTokenId = m.u64("bos_token_id");
    a.model.eosTokenId = m.u64("eos_token_id");
    a.model.padTokenId = m.u64("pad_token_id");
    m.finish();
  }
  a.deviceHeadersHash = r.string("device_headers_hash");
  a.kernels = parseList<Kernel>(
      r, "kernels", [&](const Json &v, std::size_t i) { return parseKernel(v, source, i); });
  a.buffers = parseList<Buffer>(
      r, "buffers", [&](const Json &v, std::size_t i) { return parseBuffer(v, source, i); });
  a.weights = parseList<WeightBinding>(
      r, "weights", [&](const Json &v, std::size_t i) { return parseWeight(v, source, i); });
  a.functions = parseList<Function>(
      r, "functions", [&](const Json &v, std::size_t i) { return parseFunction(v, source, i); });
  {
    ObjectReader arena(r.get("arena"), r.field("arena"));
    a.arenaBytes = parseExpr(arena.get("bytes"), arena.field("bytes"));
    arena.finish();
  }
  r.finish();
  return a;
}

} // namespace

Artifact parseArtifact(std::span<const std::uint8_t> bytes, const std::string &sourceName) {
  std::string_view payload = unwrapContainer(bytes, sourceName);
  Json root = parseStrictJson(payload, sourceName, kMaxJsonDepth);
  Artifact artifact = parsePayload(root, sourceName);
  validateStructure(artifact);
  return artifact;
}

Artifact loadArtifact(const std::string &path) {
  MappedFile file = MappedFile::open(path);
  return parseArtifact(file.bytes(), path);
}

} // namespace xlc::artifact
