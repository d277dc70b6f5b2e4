//===- KernelFamily.h - The kernel-family registry --------------*- C++ -*-===//
//
// A kernel family (rms_norm, mlstm_chunk_states, ...) is defined once, here, for everyone who
// needs to know it:
//
//   - codegen builds a kernel from a family and a *configuration* (renderKernel): the entry
//     point's parameters, the CUDA source (a thin instantiation over the family's device header),
//     the launch geometry as expressions over B and S, and the shared-memory size;
//   - the validator re-renders every kernel of an artifact from its family and configuration and
//     refuses any difference (checkKernel), and checks every launch of it (checkLaunch): duties
//     on the parameters that need them, attributes that agree with the configuration and the
//     arguments;
//   - the CPU backend executes a launch with the family's CPU implementation, reading the same
//     launch arguments and configuration the GPU receives (CpuLaunch.h).
//
// The configuration is a flat JSON object of the family's fields (ConfigField): element types,
// sizes, enum choices and the tile sizes after codegen's derivations. It is stored in the
// artifact next to the kernel (`config`), so what the GPU compiles and what the CPU executes
// come from one description. Adding a family is one file in runtime/kernels/families/ plus one
// line in Registry.cpp (docs/kernel-families.md).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_KERNELS_KERNELFAMILY_H
#define XLC_RUNTIME_KERNELS_KERNELFAMILY_H

#include "runtime/artifact/Artifact.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::kernels {

class CpuLaunch;

using Config = nlohmann::json; ///< an object: field name -> integer, string or bool

/// One field of a family's configuration.
struct ConfigField {
  enum class Kind : std::uint8_t { Int, Bool, DType, Choice };
  std::string_view name;
  Kind kind = Kind::Int;
  std::int64_t min = 1, max = 1 << 20;            ///< Int: inclusive range
  std::vector<std::string_view> choices = {};     ///< Choice: the allowed strings

  static ConfigField integer(std::string_view name, std::int64_t min = 1,
                             std::int64_t max = 1 << 20) {
    return {name, Kind::Int, min, max};
  }
  static ConfigField boolean(std::string_view name) { return {name, Kind::Bool}; }
  /// A float element type: "bf16", "f32" or "f16".
  static ConfigField dtype(std::string_view name) { return {name, Kind::DType}; }
  static ConfigField choice(std::string_view name, std::vector<std::string_view> choices) {
    return {name, Kind::Choice, 0, 0, std::move(choices)};
  }
};

/// What a launch must arrange for a buffer parameter besides passing its address.
enum class Duty : std::uint8_t {
  None,
  /// An i64 the kernel sets nonzero on bad input: zeroed before the launch and read after the
  /// function returns (a `zero` and an `error_flag` duty on the argument).
  ErrorFlag,
  /// Scratch counters the kernel expects at zero (a `zero` duty on the argument).
  Zeroed,
};

/// One entry-point parameter. A buffer parameter's elements are of a fixed type (|dtype|) or of
/// the type a configuration field names (|dtypeField|): the kernel reads the bytes as that type,
/// so the validator refuses a buffer of another dtype.
struct ParamDef {
  std::string name;
  artifact::ParamKind kind = artifact::ParamKind::Buffer;
  Duty duty = Duty::None;
  std::string dtypeField = {};                  ///< e.g. "dtype", "state_dtype"
  std::optional<artifact::DType> dtype = {};    ///< e.g. i32 token ids, f32 workspaces
};

/// The launch geometry of one kernel.
struct Geometry {
  std::array<std::uint32_t, 3> block{1, 1, 1};
  std::array<artifact::Expr, 3> grid{artifact::Expr::constant(1), artifact::Expr::constant(1),
                                     artifact::Expr::constant(1)};
  std::uint32_t sharedBytes = 0;
  /// The source asserts Config::kSharedBytes == sharedBytes (the family mirrors the header's
  /// shared-memory layout here, and every NVRTC compile checks the two agree).
  bool assertSharedBytes = false;
  /// The Config member the assertion reads (a header with several entry points names one per
  /// entry point).
  std::string_view sharedBytesConstant = "kSharedBytes";
};

/// A step attribute that must agree with the configuration or with a launch argument. Attributes
/// are for people and the IR's history; execution never reads them.
struct AttrCheck {
  enum class Source : std::uint8_t { ConfigField, F32Arg, I64Arg };
  std::string_view attr;
  Source source = Source::ConfigField;
  std::string_view name; ///< the config field or the parameter
};

/// One field of a family's tuning space and the values a tuner tries for it (docs/auto-tuning.md).
struct TuningKnob {
  std::string_view field;
  std::vector<std::int64_t> values;
};

struct FamilyDef {
  std::string_view name;       ///< the artifact's `family`
  std::string_view op;         ///< the model-level op its launch steps name
  std::string_view header;     ///< device header: xlc/device/<header>.cuh
  std::string_view paramsType; ///< xlc::device::<paramsType>
  std::string_view function;   ///< xlc::device::<function><Config>(p)
  std::vector<ConfigField> config;
  std::vector<AttrCheck> attrs;
  /// The entry point's parameters for a configuration (some depend on it: a folded RMSNorm
  /// takes an i64 null in place of its weight).
  std::vector<ParamDef> (*params)(const Config &config) = nullptr;
  /// The Config type's C++ spelling, e.g. "xlc::device::RmsNormConfig<__nv_bfloat16, 64, 32>".
  std::string (*configType)(const Config &config) = nullptr;
  Geometry (*geometry)(const Config &config) = nullptr;
  /// Executes one launch on the CPU in fp32 (CpuLaunch.h); throws xlc::Error naming the step.
  void (*cpu)(CpuLaunch &launch) = nullptr;
  /// The device function calls grid_dependency_sync() itself, after issuing the loads of
  /// memory that the kernel before it never writes (the recurrent state), so that under
  /// programmatic dependent launch those loads overlap that kernel's tail; the entry point then
  /// does not call it first.
  bool waitsInside = false;
  /// The tuning space around a kernel of configuration |config|: the integer fields a tuner may
  /// change and the values it tries (they may depend on the kernel's shapes); nullptr or empty
  /// when the family has nothing to tune. A knob changes how a kernel works (tiles, threads,
  /// splits), never its parameters, the buffers it reads or writes, or what it computes: a
  /// variant drops into the same launch step.
  std::vector<TuningKnob> (*tuning)(const Config &config) = nullptr;
  /// What rules |config| out beyond the schema, "" when nothing does: the device header's
  /// static_asserts and layout limits, so that a variant is refused before it is compiled
  /// (runtime/kernels/Tuning.h adds the limits every launch has).
  std::string (*constraint)(const Config &config) = nullptr;
};

/// Every family, in a fixed order.
std::span<const FamilyDef *const> families();
/// The family called |name|, or nullptr.
const FamilyDef *findFamily(std::string_view name);

/// Throws xlc::Error "<where>: ..." unless |config| is an object holding exactly the family's
/// fields, each of its kind and in its range.
void checkConfig(const FamilyDef &family, const Config &config, std::string_view where);

/// The kernel codegen emits for |config| (name left empty: the artifact writer names kernels).
/// The configuration is checked first.
artifact::Kernel renderKernel(const FamilyDef &family, const Config &config, std::string tile);

/// Throws unless |kernel| is exactly what its family renders from its configuration and tile:
/// source, entry, options, parameters, block, grid and shared memory.
void checkKernel(const artifact::Kernel &kernel, std::string_view where);

/// Throws unless the launch |step| of |kernel| has the duties its parameters need and its
/// attributes agree with the configuration and the arguments.
void checkLaunch(const artifact::Artifact &artifact, const artifact::Step &step,
                 const artifact::Kernel &kernel, std::string_view where);

/// Every kernel and launch of |artifact| (checkKernel, checkLaunch). Part of artifact
/// validation for every backend (runtime/exec/Plan.h).
void checkFamilies(const artifact::Artifact &artifact);

// Config accessors for family definitions (the configuration is checked before they run).
std::int64_t cfgInt(const Config &config, std::string_view key);
bool cfgBool(const Config &config, std::string_view key);
const std::string &cfgString(const Config &config, std::string_view key);
/// The CUDA spelling of a dtype field: "__nv_bfloat16", "float" or "__half".
std::string cfgCudaType(const Config &config, std::string_view key);

} // namespace xlc::kernels

#endif // XLC_RUNTIME_KERNELS_KERNELFAMILY_H
