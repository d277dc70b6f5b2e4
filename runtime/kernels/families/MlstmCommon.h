//===- MlstmCommon.h - What the three mLSTM families share -------*- C++ -*-===//
//
// The cell configuration (element types, head sizes, gate and normaliser kinds: the device
// headers' MlstmCellConfig), the strided q, k, v, input- and forget-gate views every mLSTM
// kernel takes first, and the CPU side's reading of them.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_KERNELS_FAMILIES_MLSTMCOMMON_H
#define XLC_RUNTIME_KERNELS_FAMILIES_MLSTMCOMMON_H

#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"

#include <initializer_list>

namespace xlc::kernels::mlstm {

/// The cell's configuration fields, followed by |extra|.
std::vector<ConfigField> cellFields(std::vector<ConfigField> extra);
/// Attribute cross-checks of every mLSTM launch: the cell's configuration fields, the f32
/// arguments |f32Args| the kernel takes, then |extra|.
std::vector<AttrCheck> cellAttrs(std::vector<AttrCheck> extra = {},
                                 std::vector<std::string_view> f32Args = {"eps",
                                                                          "gate_soft_cap"});
/// "xlc::device::MlstmCellConfig<...>".
std::string cellConfigType(const Config &config);
/// name, name_offset, name_stride for each of |names| (q, k, v: "dtype"; igate, fgate:
/// "gate_dtype"), by default q, q_offset, q_stride, k, ..., fgate_stride.
std::vector<ParamDef> viewParams(std::initializer_list<const char *> names = {"q", "k", "v",
                                                                              "igate", "fgate"});
/// The document-reset mask of the training forward and backward (configuration field `resets`):
/// a u8 buffer `resets` [B·S] (nonzero: the token starts a document, its forget gate is
/// overridden), or without it an i64 `resets_null` that must be 0 (the kernel's null pointer).
ParamDef resetsParam(const Config &config);

/// C, n, m, counters (zeroed before the launch, left zero by it), h: the state updated in place.
std::vector<ParamDef> inPlaceStateParams();
/// The decode step's parameters (state updated in place): viewParams(),
/// then C, n, m, counters (zeroed before the launch), h, batch, seq_len when |withSeqLen|, eps,
/// gate_soft_cap.
std::vector<ParamDef> inPlaceParams(bool withSeqLen);

/// The cell of one launch: sizes and kinds from the configuration, batch and sequence length
/// from the arguments (|seq| for the decode step is 1), views and state buffers checked. Reads
/// only what the kernel declares (v, the gate views, the state and h, eps, gate_soft_cap).
exec::cpu::MlstmCell cellOf(const CpuLaunch &launch, std::int64_t seq);

/// A tile knob's values over a head dimension |dim|: powers of two from 16 up to |cap| and to
/// the first that covers |dim| padded to whole 16-wide fragments.
std::vector<std::int64_t> tileValues(std::int64_t dim, std::int64_t cap);

} // namespace xlc::kernels::mlstm

#endif // XLC_RUNTIME_KERNELS_FAMILIES_MLSTMCOMMON_H
