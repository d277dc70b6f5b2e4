//===- MlstmCommon.cpp - What the three mLSTM families share --------------===//

#include "runtime/kernels/families/MlstmCommon.h"

#include "runtime/kernels/families/MlstmChunkwise.h"

#include "runtime/support/Error.h"

#include <fmt/format.h>

namespace xlc::kernels::mlstm {

std::vector<ConfigField> cellFields(std::vector<ConfigField> extra) {
  std::vector<ConfigField> fields = {
      ConfigField::dtype("dtype"),         ConfigField::dtype("gate_dtype"),
      ConfigField::dtype("state_dtype"),   ConfigField::integer("num_heads"),
      ConfigField::integer("qk_head_dim"), ConfigField::integer("v_head_dim"),
      ConfigField::choice("input_gate", {"exp", "sigmoid"}),
      ConfigField::choice("normalizer", {"max_abs", "none"})};
  fields.insert(fields.end(), extra.begin(), extra.end());
  return fields;
}

std::vector<AttrCheck> cellAttrs(std::vector<AttrCheck> extra,
                                 std::vector<std::string_view> f32Args) {
  std::vector<AttrCheck> attrs = {
      {"num_heads", AttrCheck::Source::ConfigField, "num_heads"},
      {"qk_head_dim", AttrCheck::Source::ConfigField, "qk_head_dim"},
      {"v_head_dim", AttrCheck::Source::ConfigField, "v_head_dim"},
      {"input_gate", AttrCheck::Source::ConfigField, "input_gate"},
      {"normalizer", AttrCheck::Source::ConfigField, "normalizer"}};
  for (std::string_view arg : f32Args)
    attrs.push_back({arg, AttrCheck::Source::F32Arg, arg});
  attrs.insert(attrs.end(), extra.begin(), extra.end());
  return attrs;
}

std::string cellConfigType(const Config &c) {
  return configSpelling(
      "MlstmCellConfig",
      cfgCudaType(c, "dtype") + ", " + cfgCudaType(c, "gate_dtype") + ", " +
          cfgCudaType(c, "state_dtype") + ", " + num(c, "num_heads") + ", " +
          num(c, "qk_head_dim") + ", " +
          num(c, "v_head_dim") + ", xlc::device::InputGate::" +
          (cfgString(c, "input_gate") == "exp" ? "kExp" : "kSigmoid") +
          ", xlc::device::Normalizer::" +
          (cfgString(c, "normalizer") == "max_abs" ? "kMaxAbs" : "kNone"));
}

std::vector<ParamDef> viewParams(std::initializer_list<const char *> names) {
  std::vector<ParamDef> params;
  for (const char *name : names) {
    const bool gate = name[0] == 'i' || name[0] == 'f';
    params.push_back(bufferParam(name, gate ? "gate_dtype" : "dtype"));
    params.push_back(i64Param(std::string(name) + "_offset"));
    params.push_back(i64Param(std::string(name) + "_stride"));
  }
  return params;
}

ParamDef resetsParam(const Config &c) {
  return cfgBool(c, "resets") ? bufferParam("resets", artifact::DType::U8) : i64Param("resets_null");
}

std::vector<ParamDef> inPlaceStateParams() {
  return {bufferParam("C", "state_dtype"), bufferParam("n", artifact::DType::F32),
          bufferParam("m", artifact::DType::F32),
          bufferParam("counters", artifact::DType::I64, Duty::Zeroed), bufferParam("h", "dtype")};
}

std::vector<ParamDef> inPlaceParams(bool withSeqLen) {
  std::vector<ParamDef> params = viewParams();
  for (ParamDef &p : inPlaceStateParams())
    params.push_back(std::move(p));
  params.push_back(i64Param("batch"));
  if (withSeqLen)
    params.push_back(i64Param("seq_len"));
  params.push_back(f32Param("eps"));
  params.push_back(f32Param("gate_soft_cap"));
  return params;
}

exec::cpu::MlstmCell cellOf(const CpuLaunch &l, std::int64_t seq) {
  exec::cpu::MlstmCell cell;
  cell.numHeads = l.cfg("num_heads");
  cell.dqk = l.cfg("qk_head_dim");
  cell.dv = l.cfg("v_head_dim");
  cell.batch = l.count("batch");
  cell.seq = seq;
  cell.inputGate = cfgString(l.config(), "input_gate") == "exp" ? exec::cpu::InputGate::Exp
                                                                : exec::cpu::InputGate::Sigmoid;
  cell.normalizer = cfgString(l.config(), "normalizer") == "max_abs"
                        ? exec::cpu::Normalizer::MaxAbs
                        : exec::cpu::Normalizer::None;
  // The scores kernel takes no eps and the state pass no gate cap: read what the kernel declares.
  for (auto [name, value] : {std::pair{"eps", &cell.eps}, {"gate_soft_cap", &cell.gateSoftCap}})
    if (l.has(name)) {
      *value = l.real(name);
      check(*value >= 0.0, "{}: {} ({}) must be non-negative", l.where(), name, *value);
    }
  const std::int64_t rows = static_cast<std::int64_t>(l.product({cell.batch, seq}));
  const std::int64_t qkWidth = static_cast<std::int64_t>(l.product({cell.numHeads, cell.dqk}));
  const std::int64_t vWidth = static_cast<std::int64_t>(l.product({cell.numHeads, cell.dv}));
  cell.q = l.view("q", "q_offset", "q_stride", rows, qkWidth);
  cell.k = l.view("k", "k_offset", "k_stride", rows, qkWidth);
  if (l.has("v"))
    cell.v = l.view("v", "v_offset", "v_stride", rows, vWidth);
  if (l.has("igate")) {
    cell.igate = l.view("igate", "igate_offset", "igate_stride", rows, cell.numHeads);
    cell.fgate = l.view("fgate", "fgate_offset", "fgate_stride", rows, cell.numHeads);
  }
  if (l.has("resets"))
    cell.resets = l.u8s("resets", u64(rows));
  else if (l.has("resets_null"))
    check(l.integer("resets_null") == 0, "{}: resets_null must be 0 (a null pointer), got {}",
          l.where(), l.integer("resets_null"));
  if (l.has("C")) {
    cell.C = l.floats("C", l.product({cell.batch, cell.numHeads, cell.dqk, cell.dv}));
    cell.n = l.floats("n", l.product({cell.batch, cell.numHeads, cell.dqk}));
    cell.m = l.floats("m", l.product({cell.batch, cell.numHeads}));
    cell.h = l.floats("h", l.product({rows, vWidth}));
  }
  return cell;
}


std::vector<ParamDef> chunkwiseParams(const Config &config) {
  std::vector<ParamDef> params = viewParams();
  params.push_back(resetsParam(config));
  params.push_back(bufferParam("C", "state_dtype"));
  for (const char *name : {"n", "m"})
    params.push_back(bufferParam(name, artifact::DType::F32));
  // The chunk-start C is a tensor-core operand of kernel B: stored in the cell's dtype.
  params.push_back(bufferParam("ws_C", "dtype"));
  for (const char *name : {"ws_n", "ws_m"})
    params.push_back(bufferParam(name, artifact::DType::F32));
  params.push_back(bufferParam("h", "dtype"));
  params.push_back(i64Param("batch"));
  params.push_back(i64Param("seq_len"));
  params.push_back(f32Param("eps"));
  params.push_back(f32Param("gate_soft_cap"));
  return params;
}

std::vector<ParamDef> recordParams() {
  // P̃ is the state pass's tensor-core operand: bf16 (the chunkwise kernels take bf16 q, k, v).
  return {bufferParam("ws_p", artifact::DType::BF16), bufferParam("ws_g", artifact::DType::F32)};
}

exec::cpu::MlstmChunkRecords recordsOf(const CpuLaunch &l) {
  exec::cpu::MlstmChunkRecords op;
  op.cell = cellOf(l, l.count("seq_len"));
  op.chunk = l.cfg("chunk");
  const std::int64_t records = static_cast<std::int64_t>(
      l.product({op.cell.batch, op.cell.numHeads, (op.cell.seq + op.chunk - 1) / op.chunk}));
  op.wsP = l.floats("ws_p", l.product({records, op.chunk, op.chunk}));
  op.wsG = l.floats("ws_g", l.product({records, 4 * op.chunk + 4}));
  return op;
}

exec::cpu::MlstmChunkwise chunkwiseOf(const CpuLaunch &l) {
  exec::cpu::MlstmChunkwise op;
  op.cell = cellOf(l, l.count("seq_len"));
  op.chunk = l.cfg("chunk");
  const std::int64_t chunks = (op.cell.seq + op.chunk - 1) / op.chunk;
  const std::int64_t slots =
      static_cast<std::int64_t>(l.product({op.cell.batch, op.cell.numHeads, chunks + 1}));
  op.wsC = l.floats("ws_C", l.product({slots, op.cell.dqk, op.cell.dv}));
  op.wsN = l.floats("ws_n", l.product({slots, op.cell.dqk}));
  op.wsM = l.floats("ws_m", static_cast<std::uint64_t>(slots));
  return op;
}

std::vector<ParamDef> backwardParams(const Config &config) {
  std::vector<ParamDef> params = viewParams();
  params.push_back(resetsParam(config));
  params.push_back(bufferParam("ws_C", "dtype"));
  for (const char *name : {"ws_n", "ws_m"})
    params.push_back(bufferParam(name, artifact::DType::F32));
  params.push_back(bufferParam("h", "dtype"));
  params.push_back(bufferParam("dh", "dtype"));
  for (const char *name : {"dq", "dk", "dv", "di", "df"}) {
    params.push_back(bufferParam(name, name[1] == 'i' || name[1] == 'f' ? "gate_dtype" : "dtype"));
    params.push_back(i64Param(std::string(name) + "_offset"));
    params.push_back(i64Param(std::string(name) + "_stride"));
  }
  for (const char *name : {"ws_tok", "ws_dC", "ws_dn", "ws_gate", "ws_chunk"})
    params.push_back(bufferParam(name, artifact::DType::F32));
  params.push_back(i64Param("batch"));
  params.push_back(i64Param("seq_len"));
  params.push_back(f32Param("eps"));
  params.push_back(f32Param("gate_soft_cap"));
  return params;
}

std::vector<ConfigField> backwardFields() {
  return cellFields({ConfigField::integer("chunk", 16, 128), ConfigField::integer("tile", 16, 64),
                     ConfigField::boolean("resets")});
}

std::string backwardConfigType(const Config &c) {
  return configSpelling("MlstmChunkBackwardConfig",
                        cellConfigType(c) + ", " + num(c, "chunk") + ", " + num(c, "tile"));
}

std::vector<std::int64_t> tileValues(std::int64_t dim, std::int64_t cap) {
  const std::int64_t padded = (dim + 15) / 16 * 16;
  std::vector<std::int64_t> out;
  for (std::int64_t t = 16; t <= cap; t *= 2) {
    out.push_back(t);
    if (t >= padded)
      break;
  }
  return out;
}

std::string fusedConstraint(std::int64_t chunk, std::int64_t dqk, std::int64_t keySplit) {
  const std::int64_t qw = (dqk + 15) / 16 * 16;
  const std::int64_t threads = 32 * (chunk / 16) * keySplit;
  if (chunk % 16 != 0 || (chunk / keySplit) % 16 != 0 || chunk % keySplit != 0)
    return fmt::format("key_split {} leaves a warp a partial 16-key step of the chunk {}",
                       keySplit, chunk);
  if (qw % keySplit != 0 || (qw / keySplit) % 16 != 0)
    return fmt::format("key_split {} leaves a warp a partial 16-row step of DQK {}", keySplit,
                       qw);
  if (threads > 1024 || threads < qw)
    return fmt::format("{} threads: one per padded DQK row ({}) and at most 1024 needed",
                       threads, qw);
  const std::int64_t rowThreads = threads >= chunk ? threads / chunk : 1;
  if ((rowThreads & (rowThreads - 1)) != 0 || rowThreads > 32)
    return fmt::format("{} threads per row of the q̂ᵀn pass: a power of two ≤ 32 needed",
                       rowThreads);
  return {};
}

BackwardShared backwardShared(const Config &c) {
  // MlstmChunkBackwardConfig's layout: regions rounded to 128 bytes; P adds the tensor cores'
  // bf16 operand tiles (pitch tile + 8) after its fp32 ones.
  const std::int64_t L = cfgInt(c, "chunk"), tile = cfgInt(c, "tile");
  const std::int64_t vec = smemBytes(L, 4), matrix = smemBytes(L * (L + 1), 4);
  const std::int64_t rowTile = smemBytes(L * (tile + 1), 4);
  const std::int64_t rowTileBf16 = smemBytes(L * (tile + 8), 2);
  const std::int64_t squareTileBf16 = smemBytes(tile * (tile + 8), 2);
  const std::int64_t rows = 8 * vec + 12 * vec + 128 + 2 * matrix;
  return {rows + 2 * rowTile, 2 * vec + 2 * rowTile,
          rows + 4 * rowTile + 2 * rowTileBf16 + 3 * squareTileBf16, 24 * vec};
}

Geometry backwardGeometry(const Config &c, std::array<artifact::Expr, 3> grid,
                          std::int64_t BackwardShared::*bytes, std::string_view constant) {
  Geometry g;
  g.block = {256, 1, 1};
  g.grid = std::move(grid);
  g.sharedBytes = static_cast<std::uint32_t>(backwardShared(c).*bytes);
  g.assertSharedBytes = true;
  g.sharedBytesConstant = constant;
  return g;
}

FamilyDef backwardFamily(std::string_view function, Geometry (*geometry)(const Config &),
                         void (*cpu)(CpuLaunch &)) {
  return FamilyDef{
      .name = function,
      .op = "mlstm_cell_grad",
      .header = "mlstm_chunk_backward",
      .paramsType = "MlstmChunkBackwardParams",
      .function = function,
      .config = backwardFields(),
      .attrs = cellAttrs({{"chunk", AttrCheck::Source::ConfigField, "chunk"}}),
      .params = backwardParams,
      .configType = backwardConfigType,
      .geometry = geometry,
      .cpu = cpu,
      // The slice width of the DQK/DV loops (whole n16 tiles; the schema caps it at 64).
      .tuning =
          [](const Config &c) {
            const std::int64_t widest =
                std::max(cfgInt(c, "qk_head_dim"), cfgInt(c, "v_head_dim"));
            std::vector<std::int64_t> values;
            for (std::int64_t t = 16; t <= std::min<std::int64_t>(64, (widest + 15) / 16 * 16);
                 t += 16)
              values.push_back(t);
            return std::vector<TuningKnob>{{"tile", values}};
          },
  };
}

exec::cpu::MlstmChunkBackward backwardOf(const CpuLaunch &l) {
  exec::cpu::MlstmChunkBackward op;
  op.forward.cell = cellOf(l, l.count("seq_len"));
  op.forward.chunk = l.cfg("chunk");
  const exec::cpu::MlstmCell &cell = op.forward.cell;
  const std::int64_t chunks = (cell.seq + op.forward.chunk - 1) / op.forward.chunk;
  const std::int64_t pairs = static_cast<std::int64_t>(l.product({cell.batch, cell.numHeads}));
  const std::int64_t slots = static_cast<std::int64_t>(l.product({pairs, chunks + 1}));
  op.forward.wsC = l.floats("ws_C", l.product({slots, cell.dqk, cell.dv}));
  op.forward.wsN = l.floats("ws_n", l.product({slots, cell.dqk}));
  op.forward.wsM = l.floats("ws_m", static_cast<std::uint64_t>(slots));
  const std::int64_t rows = static_cast<std::int64_t>(l.product({cell.batch, cell.seq}));
  const std::int64_t qk = cell.numHeads * cell.dqk, v = cell.numHeads * cell.dv;
  op.h = {l.floats("h", l.product({rows, v})), 0, v};
  op.dh = {l.floats("dh", l.product({rows, v})), 0, v};
  op.dq = l.mutView("dq", "dq_offset", "dq_stride", rows, qk);
  op.dk = l.mutView("dk", "dk_offset", "dk_stride", rows, qk);
  op.dv = l.mutView("dv", "dv_offset", "dv_stride", rows, v);
  op.di = l.mutView("di", "di_offset", "di_stride", rows, cell.numHeads);
  op.df = l.mutView("df", "df_offset", "df_stride", rows, cell.numHeads);
  op.wsTok = l.floats("ws_tok", l.product({pairs, cell.seq, 4}));
  op.wsDC = l.floats("ws_dC", l.product({pairs, chunks, cell.dqk, cell.dv}));
  op.wsDN = l.floats("ws_dn", l.product({pairs, chunks, cell.dqk}));
  op.wsGate = l.floats("ws_gate", l.product({pairs, cell.seq, 4}));
  op.wsChunk = l.floats("ws_chunk", l.product({pairs, chunks, 8}));
  return op;
}

} // namespace xlc::kernels::mlstm
