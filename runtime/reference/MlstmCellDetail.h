//===- MlstmCellDetail.h - Helpers shared by the cell's forward and backward -*- C++ -*-===//
//
// Internal to runtime/reference: the input checks and the gate mapping that the forward forms
// (MlstmCell.cpp) and the backward (MlstmCellBackward.cpp) must agree on, and the head
// gather/scatter between the model layout [B, S, NH·D] and one (batch, head)'s rows [S, D].
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_REFERENCE_MLSTMCELLDETAIL_H
#define XLC_RUNTIME_REFERENCE_MLSTMCELLDETAIL_H

#include "runtime/reference/MlstmCell.h"
#include "runtime/reference/Tensor.h"

#include <cstdint>
#include <string_view>

namespace xlc::ref::detail {

struct HeadDims {
  std::int64_t seq;
  std::int64_t dqk;
  std::int64_t dv;
};

/// Checks one (batch, head)'s inputs (q, k [S, DQK], v [S, DV], gates [S], initial state) and
/// returns their sizes; |form| names the caller in the error.
HeadDims checkHeadInputs(const Tensor &q, const Tensor &k, const Tensor &v, const Tensor &iPre,
                         const Tensor &fPre, const MlstmHeadState *initial, std::string_view form);

/// The input gate in log space: ĩ itself for the exponential gate, logσ(ĩ) for the sigmoid gate
/// (MlstmCell.h, "Input gate kind").
double logInputGate(double iPre, InputGate gate);

/// Sizes of the model layout: q, k [B, S, NH·DQK], v [B, S, NH·DV], gates [B, S, NH]; checked,
/// with |what| naming the caller.
struct CellDims {
  std::int64_t batch, seq, numHeads, dqk, dv;
};
CellDims checkCellInputs(const Tensor &q, const Tensor &k, const Tensor &v, const Tensor &iPre,
                         const Tensor &fPre, std::int64_t numHeads, std::string_view what);

/// Rows of head |head| of sequence |batch| out of x [B, S, NH·D] → [S, D]; for the gates
/// (x [B, S, NH]) gatherGate gives [S].
Tensor gatherHead(const Tensor &x, std::int64_t batch, std::int64_t head, std::int64_t numHeads);
Tensor gatherGate(const Tensor &x, std::int64_t batch, std::int64_t head, std::int64_t numHeads);
/// The inverse: writes |rows| ([S, D], or [S] for a gate) into head |head| of sequence |batch| of
/// x [B, S, NH·D].
void scatterHead(Tensor &x, const Tensor &rows, std::int64_t batch, std::int64_t head,
                 std::int64_t numHeads);
/// (b, h)'s state out of the flat states [B, NH, ...], and back.
MlstmHeadState gatherState(const MlstmStates &states, std::int64_t pair);
void scatterState(MlstmStates &states, const MlstmHeadState &head, std::int64_t pair);

} // namespace xlc::ref::detail

#endif // XLC_RUNTIME_REFERENCE_MLSTMCELLDETAIL_H
