//===- AdamW.cpp - The AdamW update of one tensor --------------------------===//
//
// m, v and the weight (and with `master` an fp32 master copy the working weight is rounded
// from) updated element by element in fp32 (runtime/device/adamw.cuh; the arithmetic is
// runtime/train/AdamW.h's, which the CPU implementation calls). Grid `blocks` × `threads` in a
// grid-stride loop: one kernel serves every tensor size. Hyper-parameters and the step's bias
// corrections and clipping factor are launch arguments (function scalars in a train step).
// `grad_dtype` and `moment_dtype` are the gradient's and the moments' storage types; `rounding`
// says how a bf16 store rounds: to nearest, or stochastically with the counter-based bits of
// stochastic_rounding.cuh (the low-memory mode), keyed by the launch's `seed` (the optimizer
// step) and `tensor` (its index in the step). The CPU twin includes that header and rounds every
// element with the same bits, so both backends hold the same bf16 values.
//
//===----------------------------------------------------------------------===//

#include "runtime/device/stochastic_rounding.cuh"
#include "runtime/kernels/CpuLaunch.h"
#include "runtime/kernels/families/Families.h"
#include "runtime/support/Error.h"
#include "runtime/train/AdamW.h"
#include "runtime/weights/Convert.h"

#include <algorithm>
#include <bit>

namespace xlc::kernels {

namespace {

/// |values| as the kernel stores them in a |type| array (the CPU holds them as fp32): a bf16 store
/// rounds to nearest, or stochastically with the values adamw_rounding_value(keyA, keyB, array,
/// element) gives; f16 to nearest.
void roundAsStored(std::span<float> values, std::string_view type, bool stochastic,
                   unsigned int keyA, unsigned int keyB, int array) {
  if (type == "bf16") {
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::uint16_t bits =
          stochastic ? device::bf16_bits_stochastic(
                           std::bit_cast<std::uint32_t>(values[i]),
                           device::adamw_rounding_value(keyA, keyB, array, i))
                     : weights::f32ToBF16(values[i]);
      values[i] = weights::bf16ToF32(bits);
    }
  } else if (type == "f16") {
    for (float &x : values)
      x = static_cast<float>(static_cast<_Float16>(x));
  }
}

void runCpu(CpuLaunch &l) {
  const std::int64_t count = l.count("count");
  const auto n = static_cast<std::size_t>(count);
  float *weight = l.floats("weight", u64(count));
  const bool master = cfgBool(l.config(), "master");
  float *param = master ? l.floats("master", u64(count)) : weight;
  if (!master)
    check(l.integer("master_null") == 0, "{}: master_null must be 0 (a null pointer), got {}",
          l.where(), l.integer("master_null"));
  float *grad = l.floats("grad", u64(count));
  float *m = l.floats("m", u64(count)), *v = l.floats("v", u64(count));
  train::AdamWConfig c;
  c.beta1 = l.real("beta1");
  c.beta2 = l.real("beta2");
  c.eps = l.real("eps");
  c.weightDecay = l.real("weight_decay");
  const train::AdamWStep step{l.real("lr"), l.real("c1"), l.real("c2"),
                              static_cast<float>(l.real("grad_scale"))};
  train::adamwApply({param, n}, {grad, n}, {m, n}, {v, n}, c, step, c.weightDecay > 0.0);
  // Every array narrower than f32 holds what the kernel stores: the CPU keeps fp32 buffers, but
  // a checkpoint saves these values, and a resumed run must read back exactly what the
  // uninterrupted one computes with.
  const bool stochastic = cfgString(l.config(), "rounding") == "stochastic";
  const auto seed = static_cast<std::uint64_t>(l.integer("seed"));
  const auto stream = static_cast<unsigned int>(l.integer("tensor")) * 2U;
  const unsigned int keyA = device::rounding_key(seed, stream);
  const unsigned int keyB = device::rounding_key(seed, stream + 1U);
  const std::string &type = cfgString(l.config(), "dtype");
  const std::string &momentType = cfgString(l.config(), "moment_dtype");
  if (master)
    std::copy(param, param + n, weight); // the working copy, rounded to nearest below
  roundAsStored({weight, n}, type, stochastic && !master, keyA, keyB, 0);
  roundAsStored({m, n}, momentType, stochastic, keyA, keyB, 1);
  roundAsStored({v, n}, momentType, stochastic, keyA, keyB, 2);
  std::fill(grad, grad + n, 0.0f); // consumed, as the kernel leaves it
}

} // namespace

const FamilyDef &adamwFamily() {
  static const FamilyDef def{
      .name = "adamw",
      .op = "adamw",
      .header = "adamw",
      .paramsType = "AdamWParams",
      .function = "adamw",
      .config = {ConfigField::dtype("dtype"), ConfigField::dtype("grad_dtype"),
                 ConfigField::dtype("moment_dtype"), ConfigField::boolean("master"),
                 ConfigField::choice("rounding", {"nearest", "stochastic"}),
                 ConfigField::integer("threads", 32, 1024), ConfigField::integer("blocks", 1, 65535)},
      .attrs = {},
      .params =
          [](const Config &c) {
            return std::vector<ParamDef>{
                bufferParam("weight", "dtype"),
                cfgBool(c, "master") ? bufferParam("master", artifact::DType::F32)
                                     : i64Param("master_null"),
                bufferParam("grad", "grad_dtype"),
                bufferParam("m", "moment_dtype"),
                bufferParam("v", "moment_dtype"),
                i64Param("count"),
                i64Param("seed"),
                i64Param("tensor"),
                f32Param("lr"),
                f32Param("beta1"),
                f32Param("beta2"),
                f32Param("eps"),
                f32Param("weight_decay"),
                f32Param("c1"),
                f32Param("c2"),
                f32Param("grad_scale")};
          },
      .configType =
          [](const Config &c) {
            const bool stochastic = cfgString(c, "rounding") == "stochastic";
            return configSpelling("AdamWConfig", cfgCudaType(c, "dtype") + ", " +
                                                     cfgCudaType(c, "grad_dtype") + ", " +
                                                     cfgCudaType(c, "moment_dtype") + ", " +
                                                     (cfgBool(c, "master") ? "true" : "false") +
                                                     ", " + (stochastic ? "true" : "false") +
                                                     ", " + num(c, "threads"));
          },
      .geometry = gridStrideGeometry,
      .cpu = runCpu,
      .tuning =
          [](const Config &) {
            // blocks: 1 to 16 waves of 132 SMs' worth of 2-block residency.
            return std::vector<TuningKnob>{threadsKnob(128, 1024),
                                           {"blocks", {132, 264, 528, 1056, 2112}}};
          },
  };
  return def;
}

} // namespace xlc::kernels
