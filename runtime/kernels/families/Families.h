//===- Families.h - One definition per kernel family ------------*- C++ -*-===//
//
// Each family lives in its own file here; Registry.cpp lists them. The helpers below are shared
// by the family files.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_KERNELS_FAMILIES_FAMILIES_H
#define XLC_RUNTIME_KERNELS_FAMILIES_FAMILIES_H

#include "runtime/kernels/KernelFamily.h"
#include "runtime/kernels/Tuning.h"

#include <string>

namespace xlc::kernels {

const FamilyDef &adamwFamily();
const FamilyDef &columnSumFamily();
const FamilyDef &convertFamily();
const FamilyDef &embeddingFamily();
const FamilyDef &gradNormFamily();
const FamilyDef &crossEntropyFamily();
const FamilyDef &embeddingBackwardFamily();
const FamilyDef &rmsNormFamily();
const FamilyDef &rmsNormBackwardFamily();
const FamilyDef &normGateFamily();
const FamilyDef &normGateBackwardFamily();
const FamilyDef &swigluFamily();
const FamilyDef &swigluBackwardFamily();
const FamilyDef &softCapFamily();
const FamilyDef &mlstmChunkStatesFamily();
const FamilyDef &mlstmChunkOutputsFamily();
const FamilyDef &mlstmChunkScoresFamily();
const FamilyDef &mlstmChunkFusedFamily();
const FamilyDef &mlstmDecodeStepFamily();
const FamilyDef &mlstmBackwardReadoutFamily();
const FamilyDef &mlstmBackwardStatesFamily();
const FamilyDef &mlstmBackwardChunkFamily();
const FamilyDef &mlstmBackwardGatesFamily();

/// A buffer of the element type configuration field |dtypeField| names.
inline ParamDef bufferParam(std::string name, std::string dtypeField) {
  return {std::move(name), artifact::ParamKind::Buffer, Duty::None, std::move(dtypeField)};
}
/// A buffer of a fixed element type.
inline ParamDef bufferParam(std::string name, artifact::DType dtype, Duty duty = Duty::None) {
  return {std::move(name), artifact::ParamKind::Buffer, duty, {}, dtype};
}
inline ParamDef i64Param(std::string name) { return {std::move(name), artifact::ParamKind::I64}; }
inline ParamDef f32Param(std::string name) { return {std::move(name), artifact::ParamKind::F32}; }

inline std::uint64_t u64(std::int64_t v) { return static_cast<std::uint64_t>(v); }

/// "xlc::device::<name><args...>" from already spelt template arguments.
inline std::string configSpelling(std::string_view name, std::string_view args) {
  return "xlc::device::" + std::string(name) + "<" + std::string(args) + ">";
}

/// An integer configuration field spelt as a template argument.
inline std::string num(const Config &config, std::string_view key) {
  return std::to_string(cfgInt(config, key));
}

/// The row-wise families' geometry: one block of `threads` per token row, grid (B·S, 1, 1).
inline Geometry rowGeometry(const Config &config) {
  Geometry g;
  g.block = {static_cast<std::uint32_t>(cfgInt(config, "threads")), 1, 1};
  g.grid[0] = artifact::Expr::batchSeq();
  return g;
}

/// Row-wise families whose threads take 8 consecutive columns each: grid (B·S, ceil(width /
/// (threads·8)), 1), the width being configuration field |widthField|.
inline Geometry rowColumnBlockGeometry(const Config &config, std::string_view widthField) {
  Geometry g = rowGeometry(config);
  const std::int64_t threads = cfgInt(config, "threads");
  g.grid[1] = artifact::Expr::constant(
      static_cast<std::uint64_t>((cfgInt(config, widthField) + threads * 8 - 1) / (threads * 8)));
  return g;
}

/// The geometry of families whose blocks take `rows_per_block` consecutive token rows each (a
/// block sums its rows' weight-gradient terms): grid (ceil(B·S / rows_per_block), 1, 1) of
/// `threads`.
inline Geometry rowBlockGeometry(const Config &config) {
  Geometry g;
  g.block = {static_cast<std::uint32_t>(cfgInt(config, "threads")), 1, 1};
  g.grid[0] = artifact::ceilDiv(artifact::Expr::batchSeq(), u64(cfgInt(config, "rows_per_block")));
  return g;
}

/// The geometry of grid-stride families (one kernel for every tensor size): `blocks` blocks of
/// `threads`.
inline Geometry gridStrideGeometry(const Config &config) {
  Geometry g;
  g.block = {static_cast<std::uint32_t>(cfgInt(config, "threads")), 1, 1};
  g.grid[0] = artifact::Expr::constant(u64(cfgInt(config, "blocks")));
  return g;
}

// Tuning spaces shared by several families (FamilyDef::tuning).

/// `threads`: whole warps, 32 to 1024 (row-wise and grid-stride kernels loop over what a block
/// does not cover, so every count is legal).
inline TuningKnob threadsKnob(std::int64_t lo = 32, std::int64_t hi = 1024) {
  return {"threads", powersOfTwo(lo, hi)};
}
inline std::vector<TuningKnob> threadsSpace(const Config &) { return {threadsKnob()}; }

} // namespace xlc::kernels

#endif // XLC_RUNTIME_KERNELS_FAMILIES_FAMILIES_H
