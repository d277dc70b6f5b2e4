//===- Registry.cpp - The kernel families and their checks ----------------===//

#include "runtime/kernels/KernelFamily.h"

#include "runtime/kernels/families/Families.h"
#include "runtime/support/Error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace xlc::kernels {
namespace art = xlc::artifact;

std::span<const FamilyDef *const> families() {
  // One line per family (docs/kernel-families.md).
  static const FamilyDef *const all[] = {
      &embeddingFamily(),         &rmsNormFamily(),          &normGateFamily(),
      &swigluFamily(),            &softCapFamily(),          &mlstmChunkStatesFamily(),
      &mlstmChunkOutputsFamily(), &mlstmChunkScoresFamily(), &mlstmChunkFusedFamily(),
      &mlstmDecodeStepFamily(),   &rmsNormBackwardFamily(),    &swigluBackwardFamily(),
      &normGateBackwardFamily(),  &embeddingBackwardFamily(),
      &crossEntropyFamily(),      &adamwFamily(),             &gradNormFamily(),
      &mlstmBackwardReadoutFamily(), &mlstmBackwardStatesFamily(), &mlstmBackwardChunkFamily(),
      &mlstmBackwardGatesFamily(), &columnSumFamily(),          &convertFamily(),
  };
  return all;
}

const FamilyDef *findFamily(std::string_view name) {
  for (const FamilyDef *f : families())
    if (f->name == name)
      return f;
  return nullptr;
}

namespace {

std::string familyNames() {
  std::vector<std::string_view> names;
  for (const FamilyDef *f : families())
    names.push_back(f->name);
  return fmt::format("{}", fmt::join(names, ", "));
}

const nlohmann::json &field(const Config &config, std::string_view key) {
  auto it = config.find(std::string(key));
  check(it != config.end(), "configuration has no field '{}'", key);
  return *it;
}

} // namespace

std::int64_t cfgInt(const Config &config, std::string_view key) {
  const nlohmann::json &v = field(config, key);
  check(v.is_number_integer(), "configuration field '{}' must be an integer", key);
  return v.get<std::int64_t>();
}

bool cfgBool(const Config &config, std::string_view key) {
  const nlohmann::json &v = field(config, key);
  check(v.is_boolean(), "configuration field '{}' must be true or false", key);
  return v.get<bool>();
}

const std::string &cfgString(const Config &config, std::string_view key) {
  const nlohmann::json &v = field(config, key);
  check(v.is_string(), "configuration field '{}' must be a string", key);
  return v.get_ref<const std::string &>();
}

std::string cfgCudaType(const Config &config, std::string_view key) {
  const std::string &t = cfgString(config, key);
  if (t == "bf16")
    return "__nv_bfloat16";
  if (t == "f16")
    return "__half";
  return "float";
}

void checkConfig(const FamilyDef &family, const Config &config, std::string_view where) {
  check(config.is_object(), "{}: the configuration of family '{}' must be an object", where,
        family.name);
  for (const auto &[key, value] : config.items())
    check(std::any_of(family.config.begin(), family.config.end(),
                      [&](const ConfigField &f) { return f.name == key; }),
          "{}: family '{}' has no configuration field '{}'", where, family.name, key);
  for (const ConfigField &f : family.config) {
    auto it = config.find(std::string(f.name));
    check(it != config.end(), "{}: configuration field '{}' of family '{}' is missing", where,
          f.name, family.name);
    const nlohmann::json &v = *it;
    switch (f.kind) {
    case ConfigField::Kind::Int:
      check(v.is_number_integer() && v.get<std::int64_t>() >= f.min &&
                v.get<std::int64_t>() <= f.max,
            "{}: configuration field '{}' must be an integer in [{}, {}], got {}", where, f.name,
            f.min, f.max, v.dump());
      break;
    case ConfigField::Kind::Bool:
      check(v.is_boolean(), "{}: configuration field '{}' must be true or false, got {}", where,
            f.name, v.dump());
      break;
    case ConfigField::Kind::DType:
      check(v.is_string() && (v == "bf16" || v == "f32" || v == "f16"),
            "{}: configuration field '{}' must be \"bf16\", \"f32\" or \"f16\", got {}", where,
            f.name, v.dump());
      break;
    case ConfigField::Kind::Choice:
      check(v.is_string() && std::find(f.choices.begin(), f.choices.end(),
                                       v.get_ref<const std::string &>()) != f.choices.end(),
            "{}: configuration field '{}' must be one of {}, got {}", where, f.name,
            fmt::join(f.choices, ", "), v.dump());
      break;
    }
  }
}

art::Kernel renderKernel(const FamilyDef &family, const Config &config, std::string tile) {
  checkConfig(family, config, fmt::format("kernel family '{}'", family.name));
  art::Kernel kernel;
  kernel.family = std::string(family.name);
  kernel.entry = "xlc_kernel";
  kernel.tile = std::move(tile);
  kernel.config = config;
  kernel.options = {"--std=c++17"};
  for (const ParamDef &p : family.params(config))
    kernel.params.push_back({p.name, p.kind});
  const Geometry g = family.geometry(config);
  kernel.block = g.block;
  kernel.grid = g.grid;
  kernel.sharedBytes = g.sharedBytes;
  const std::string configType = family.configType(config);
  kernel.source =
      fmt::format("// xlc kernel: {} {}\n#include \"xlc/device/{}.cuh\"\nusing Config = {};\n",
                  family.name, kernel.tile, family.header, configType);
  if (g.assertSharedBytes)
    kernel.source += fmt::format("static_assert(Config::{} == {}, \"codegen's "
                                 "shared-memory size disagrees with the header\");\n",
                                 g.sharedBytesConstant, g.sharedBytes);
  kernel.source += fmt::format("extern \"C\" __global__ void __launch_bounds__(Config::kThreads)\n"
                               "xlc_kernel(xlc::device::{} p) {{\n{}"
                               "  xlc::device::{}<Config>(p);\n}}\n",
                               family.paramsType,
                               family.waitsInside ? "" : "  xlc::device::grid_dependency_sync();\n",
                               family.function);
  return kernel;
}

void checkKernel(const art::Kernel &kernel, std::string_view where) {
  const FamilyDef *family = findFamily(kernel.family);
  check(family != nullptr, "{}: unknown kernel family '{}' (this runtime knows {})", where,
        kernel.family, familyNames());
  checkConfig(*family, kernel.config, where);
  const art::Kernel expected = renderKernel(*family, kernel.config, kernel.tile);
  auto differs = [&](std::string_view what) {
    fail("{}: the kernel's {} is not what family '{}' renders from its configuration {}; the "
         "artifact was not written by this release's compiler or was altered",
         where, what, family->name, kernel.config.dump());
  };
  if (kernel.source != expected.source)
    differs("source");
  if (kernel.entry != expected.entry)
    differs("entry");
  if (kernel.options != expected.options)
    differs("options");
  if (kernel.params != expected.params)
    differs("parameter list");
  if (kernel.block != expected.block)
    differs("block");
  for (int d = 0; d < 3; ++d)
    if (kernel.grid[d].normalized() != expected.grid[d].normalized())
      differs(fmt::format("grid[{}]", d));
  if (kernel.sharedBytes != expected.sharedBytes)
    differs("shared memory size");
}

void checkLaunch(const art::Artifact &artifact, const art::Step &step, const art::Kernel &kernel,
                 std::string_view where) {
  const FamilyDef &family = *findFamily(kernel.family);
  const art::LaunchStep &launch = *step.launch();
  check(step.op == family.op, "{}: op '{}' does not match kernel family '{}' (op '{}')", where,
        step.op, family.name, family.op);
  const std::vector<ParamDef> params = family.params(kernel.config);
  auto hasDuty = [&](art::DutyKind kind, art::BufferId id) {
    return std::any_of(step.duties.begin(), step.duties.end(),
                       [&](const art::Duty &d) { return d.kind == kind && d.buffer == id; });
  };
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (params[i].kind != art::ParamKind::Buffer)
      continue;
    // The kernel reads the buffer's bytes as the parameter's element type.
    const art::Buffer &b = artifact.buffers[launch.args[i].bufferId];
    std::optional<art::DType> want = params[i].dtype;
    if (!params[i].dtypeField.empty())
      want = art::parseDType(cfgString(kernel.config, params[i].dtypeField));
    check(!want || b.dtype == *want,
          "{}: parameter '{}' of family '{}' takes {} elements{}, but buffer {} '{}' is {}", where,
          params[i].name, family.name, want ? art::dtypeName(*want) : "?",
          params[i].dtypeField.empty() ? ""
                                       : fmt::format(" (configuration field '{}')",
                                                     params[i].dtypeField),
          b.id, b.name, art::dtypeName(b.dtype));
    if (params[i].duty == Duty::None)
      continue;
    const art::BufferId id = launch.args[i].bufferId;
    check(hasDuty(art::DutyKind::Zero, id),
          "{}: parameter '{}' of family '{}' needs a 'zero' duty on its buffer {}", where,
          params[i].name, family.name, id);
    if (params[i].duty == Duty::ErrorFlag)
      check(hasDuty(art::DutyKind::ErrorFlag, id),
            "{}: parameter '{}' of family '{}' needs an 'error_flag' duty on its buffer {}",
            where, params[i].name, family.name, id);
  }
  // Attributes say the same as the configuration and the arguments, or they are refused.
  auto argIndex = [&](std::string_view name) {
    for (std::size_t i = 0; i < kernel.params.size(); ++i)
      if (kernel.params[i].name == name)
        return i;
    fail("{}: family '{}' checks attribute against unknown parameter '{}'", where, family.name,
         name);
  };
  for (const AttrCheck &c : family.attrs) {
    auto it = step.attrs.find(std::string(c.attr));
    if (it == step.attrs.end())
      continue;
    const nlohmann::json &attr = *it;
    bool same = false;
    std::string expected;
    switch (c.source) {
    case AttrCheck::Source::ConfigField: {
      const nlohmann::json &v = kernel.config.at(std::string(c.name));
      same = attr == v;
      expected = fmt::format("configuration field '{}' = {}", c.name, v.dump());
      break;
    }
    case AttrCheck::Source::F32Arg: {
      const art::Arg &arg = launch.args[argIndex(c.name)];
      same = attr.is_number() && static_cast<float>(attr.get<double>()) == arg.floatValue;
      expected = fmt::format("argument '{}' = {}", c.name, arg.floatValue);
      break;
    }
    case AttrCheck::Source::I64Arg: {
      const art::Arg &arg = launch.args[argIndex(c.name)];
      same = arg.kind == art::ArgKind::I64 && attr.is_number_integer() &&
             attr.get<std::int64_t>() == arg.intValue;
      expected = fmt::format("argument '{}'", c.name);
      break;
    }
    }
    check(same, "{}: attribute '{}' = {} disagrees with {}", where, c.attr, attr.dump(),
          expected);
  }
}

void checkFamilies(const art::Artifact &artifact) {
  for (std::size_t i = 0; i < artifact.kernels.size(); ++i)
    checkKernel(artifact.kernels[i],
                fmt::format("{}: kernel {} '{}'", artifact.label(), i, artifact.kernels[i].name));
  for (const art::Function &fn : artifact.functions)
    for (std::size_t j = 0; j < fn.steps.size(); ++j)
      if (const art::LaunchStep *launch = fn.steps[j].launch()) {
        const std::string where =
            fmt::format("{}: {} step {} ({})", artifact.label(), fn.name, j, fn.steps[j].op);
        checkLaunch(artifact, fn.steps[j], artifact.kernels[launch->kernel], where);
        for (std::size_t v = 0; v < launch->byBatch.size(); ++v)
          checkLaunch(artifact, fn.steps[j], artifact.kernels[launch->byBatch[v].kernel],
                      fmt::format("{}, by_batch[{}]", where, v));
      }
}

} // namespace xlc::kernels
