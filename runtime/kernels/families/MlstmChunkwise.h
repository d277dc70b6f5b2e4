//===- MlstmChunkwise.h - What the two chunkwise kernels share ---*- C++ -*-===//
//
// Both kernels of the two-kernel form take one parameter struct (MlstmChunkwiseParams): the
// views, the state, the chunk-state workspaces and h. The fused form's scores kernel and state
// pass share the per-chunk records instead.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_KERNELS_FAMILIES_MLSTMCHUNKWISE_H
#define XLC_RUNTIME_KERNELS_FAMILIES_MLSTMCHUNKWISE_H

#include "runtime/exec/cpu/CpuBackwardOps.h"
#include "runtime/kernels/families/MlstmCommon.h"

#include <array>

namespace xlc::kernels::mlstm {

/// viewParams(), resetsParam(), then C, n, m, ws_C, ws_n, ws_m, h, batch, seq_len, eps,
/// gate_soft_cap.
std::vector<ParamDef> chunkwiseParams(const Config &config);

/// The cell and its workspaces (NC + 1 slots per (b, head), NC = ceil(seq_len / chunk)).
exec::cpu::MlstmChunkwise chunkwiseOf(const CpuLaunch &launch);

/// The records of the scores kernel and the fused state pass: ws_p (bf16), ws_g (f32).
std::vector<ParamDef> recordParams();

/// The cell (cellOf) and the records (B·NH·NC of them, NC = ceil(seq_len / chunk)) of a scores
/// or state-pass launch.
exec::cpu::MlstmChunkRecords recordsOf(const CpuLaunch &launch);

/// The backward's four kernels (mlstm_chunk_backward.cuh) share one parameter struct: the
/// forward's views, its saved chunk-start states and output h, δh, the gradient destinations and
/// the backward's workspaces.
std::vector<ParamDef> backwardParams(const Config &config);

/// Their configuration fields: the cell's, then chunk (the forward's L), tile and resets.
std::vector<ConfigField> backwardFields();

/// "xlc::device::MlstmChunkBackwardConfig<CELL, chunk, tile>".
std::string backwardConfigType(const Config &config);

/// MlstmChunkBackwardConfig's shared-memory sizes (the header's kReadoutBytes, kStatesBytes,
/// kSharedBytes, kGatesBytes).
struct BackwardShared {
  std::int64_t readout, states, chunk, gates;
};
BackwardShared backwardShared(const Config &config);

/// A backward kernel's geometry: |grid| × 256 threads, the shared memory of member |bytes|,
/// asserted equal to the header's Config::|constant|.
Geometry backwardGeometry(const Config &config, std::array<artifact::Expr, 3> grid,
                          std::int64_t BackwardShared::*bytes, std::string_view constant);

/// The definition every backward family shares (op mlstm_cell_grad, the header, the parameter
/// struct, configuration and attributes), with its entry point |function| (also its name), its
/// geometry and its CPU stage.
FamilyDef backwardFamily(std::string_view function, Geometry (*geometry)(const Config &),
                         void (*cpu)(CpuLaunch &));

/// The CPU stages' view of a backward launch.
exec::cpu::MlstmChunkBackward backwardOf(const CpuLaunch &launch);

/// A shared-memory region of |elements| elements of |size| bytes, rounded up to 128 bytes.
inline std::int64_t smemBytes(std::int64_t elements, std::int64_t size) {
  return (elements * size + 127) / 128 * 128;
}

/// Dynamic shared memory of the fused kernel (MlstmChunkFusedConfig::kSharedBytes) for chunk
/// |chunk|, head dim |dqk|, DV tile |tileV| and |keySplit| warps per query strip. The compiler
/// picks the fused form only where this fits the device's limit.
std::int64_t fusedSharedBytes(std::int64_t chunk, std::int64_t dqk, std::int64_t tileV,
                              std::int64_t keySplit);

/// Dynamic shared memory of the scores kernel (MlstmChunkScoresConfig::kSharedBytes).
std::int64_t scoresSharedBytes(std::int64_t chunk, std::int64_t dqk);

/// The fused state pass's constraint (mlstm_chunk_fused.cuh's static_asserts): each of the
/// key_split warps of a 16-row query strip takes whole 16-key and 16-DQK-row steps, one thread
/// per padded DQK row, at most 1024 threads; "" when they hold.
std::string fusedConstraint(std::int64_t chunk, std::int64_t dqk, std::int64_t keySplit);

} // namespace xlc::kernels::mlstm

#endif // XLC_RUNTIME_KERNELS_FAMILIES_MLSTMCHUNKWISE_H
