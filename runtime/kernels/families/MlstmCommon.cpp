//===- MlstmCommon.cpp - What the three mLSTM families share --------------===//

#include "runtime/kernels/families/MlstmCommon.h"

#include "runtime/kernels/families/MlstmChunkwise.h"

#include "runtime/support/Error.h"

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

std::vector<AttrCheck> cellAttrs(std::vector<AttrCheck> extra) {
  std::vector<AttrCheck> attrs = {
      {"num_heads", AttrCheck::Source::ConfigField, "num_heads"},
      {"qk_head_dim", AttrCheck::Source::ConfigField, "qk_head_dim"},
      {"v_head_dim", AttrCheck::Source::ConfigField, "v_head_dim"},
      {"input_gate", AttrCheck::Source::ConfigField, "input_gate"},
      {"normalizer", AttrCheck::Source::ConfigField, "normalizer"},
      {"eps", AttrCheck::Source::F32Arg, "eps"},
      {"gate_soft_cap", AttrCheck::Source::F32Arg, "gate_soft_cap"}};
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

std::vector<ParamDef> viewParams() {
  std::vector<ParamDef> params;
  for (const char *name : {"q", "k", "v", "igate", "fgate"}) {
    const bool gate = name[0] == 'i' || name[0] == 'f';
    params.push_back(bufferParam(name, gate ? "gate_dtype" : "dtype"));
    params.push_back(i64Param(std::string(name) + "_offset"));
    params.push_back(i64Param(std::string(name) + "_stride"));
  }
  return params;
}

std::vector<ParamDef> inPlaceParams(bool withSeqLen) {
  std::vector<ParamDef> params = viewParams();
  params.push_back(bufferParam("C", "state_dtype"));
  params.push_back(bufferParam("n", artifact::DType::F32));
  params.push_back(bufferParam("m", artifact::DType::F32));
  params.push_back(bufferParam("counters", artifact::DType::I64, Duty::Zeroed));
  params.push_back(bufferParam("h", "dtype"));
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
  cell.eps = l.real("eps");
  cell.gateSoftCap = l.real("gate_soft_cap");
  check(cell.eps >= 0.0 && cell.gateSoftCap >= 0.0,
        "{}: eps ({}) and gate_soft_cap ({}) must be non-negative", l.where(), cell.eps,
        cell.gateSoftCap);
  const std::int64_t rows = static_cast<std::int64_t>(l.product({cell.batch, seq}));
  const std::int64_t qkWidth = static_cast<std::int64_t>(l.product({cell.numHeads, cell.dqk}));
  const std::int64_t vWidth = static_cast<std::int64_t>(l.product({cell.numHeads, cell.dv}));
  cell.q = l.view("q", "q_offset", "q_stride", rows, qkWidth);
  cell.k = l.view("k", "k_offset", "k_stride", rows, qkWidth);
  cell.v = l.view("v", "v_offset", "v_stride", rows, vWidth);
  cell.igate = l.view("igate", "igate_offset", "igate_stride", rows, cell.numHeads);
  cell.fgate = l.view("fgate", "fgate_offset", "fgate_stride", rows, cell.numHeads);
  cell.C = l.floats("C", l.product({cell.batch, cell.numHeads, cell.dqk, cell.dv}));
  cell.n = l.floats("n", l.product({cell.batch, cell.numHeads, cell.dqk}));
  cell.m = l.floats("m", l.product({cell.batch, cell.numHeads}));
  cell.h = l.floats("h", l.product({rows, vWidth}));
  return cell;
}


std::vector<ParamDef> chunkwiseParams() {
  std::vector<ParamDef> params = viewParams();
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

} // namespace xlc::kernels::mlstm
