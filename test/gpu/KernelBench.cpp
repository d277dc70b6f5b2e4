//===- KernelBench.cpp - Timings of the mLSTM kernels at xLSTM 7B shapes --===//
//
//   kernel_bench [--json FILE] [--reps N] [--warmup N] [--quick] [--only VARIANT] [--shape BxS]
//                [--gemv-only | --no-gemv | --decode-only | --backward-only]
//
// 1. Chunkwise forward (the two-kernel form mlstm_chunk_states + mlstm_chunk_outputs, and the
//    fused form mlstm_chunk_scores + the mlstm_chunk_fused state pass) at NH=8, DQK=256, DV=512 for
//    B=8 S=8192 (prefill) and B=1 S=2048 (time to first token), for each tiling in run() and the
//    mLSTMsig chunk-128 variant. Each variant is first
//    checked on that very shape: the h rows and final states of three sampled (batch, head) pairs
//    against the float64 recurrent reference (KernelCases.h tolerances). Then warm-up runs and
//    N ≥ 20 timed runs, each bracketed by CUDA events: median (and min) of the pair and of each
//    kernel alone ("1st": states or scores; "2nd": outputs or the state pass).
// 2. Decode step at batch 1 and 64 (fp32 state; DV tile 64 and 32; bf16 state), checked against
//    the reference for every head after one step, then timed as the median over N repetitions of
//    100 back-to-back launches between two events (a single launch is a few microseconds; at
//    batch 1 the number may be bounded by the launch rate, which CUDA graphs would remove).
// 3. Decode GEMMs (GemvBench.h): xlc's GEMV kernel (every launch candidate of the runtime) and
//    cuBLASLt on every projection shape of the 7B at m = 1, 2, 4, 8, L2-cold, GB/s and % of
//    3.35 TB/s side by side; the fastest plan checked against cuBLASLt first.
// 4. With --backward-only: the training backward of the mLSTM cell (mlstm_chunk_backward.cuh, four
//    kernels) after the two-kernel forward from the zero state, at the 7B head (chunk 64) for
//    B=8 S=8192 and B=1 S=2048: the last (batch, head) checked against the float64 recurrent
//    backward on that shape, then the forward and each backward kernel timed between events.
// Prints a table, then one JSON document (also written to --json FILE). Exit status 1 if any
// correctness check failed (timings are still printed). A benchmark, not a test: CI never runs it.
//
//===----------------------------------------------------------------------===//
#include "GemvBench.h"
#include "GpuBackend.h"
#include "KernelCases.h"
#include "Variants.h"

#include "runtime/cuda/Nvrtc.h"
#include "runtime/support/Error.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <array>
#include <functional>
#include <string>
#include <vector>

namespace {

using namespace xlc::test;
using namespace xlc::test::variants;
namespace ref = xlc::ref;

struct Options {
  std::string jsonPath;
  int reps = 30;
  int warmup = 3;
  bool quick = false; ///< smaller shapes (a smoke run of the benchmark itself)
  std::string only;   ///< run only the chunkwise variant of this name (and no decode step)
  int64_t batch = 0, seq = 0; ///< --shape BxS: only this chunkwise shape
  bool gemv = true;           ///< the decode GEMM section (--no-gemv: without)
  bool gemvOnly = false;      ///< only the decode GEMM section
  bool decodeOnly = false;    ///< only the decode step section
  bool backwardOnly = false;  ///< only the training backward section
};

struct Stats {
  double median = 0, min = 0;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Stats s;
  if (v.empty())
    return s;
  s.min = v.front();
  s.median = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  return s;
}

std::string jsonNumber(double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : "null"; }

struct ChunkResult {
  std::string name;
  int64_t chunk = 0;
  int64_t batch = 0, seq = 0;
  bool ok = false;
  CaseReport check;
  Stats total, states, outputs;
  double tokensPerS = 0, usefulTflops = 0, workspaceGB = 0;
};

struct DecodeResult {
  std::string name;
  int64_t batch = 0;
  bool ok = false;
  CaseReport check;
  Stats step; // microseconds
  double stateGBps = 0;
};

/// The mLSTM inputs of a benchmark shape (B·S rows): q|k|v|o uniform from a counter-based
/// generator (fast at the 7B's sizes) with |seed|, the gate patterns of the tests from |rng|.
template <class Cell> MlstmInputs benchInputs(ref::Random &rng, int64_t B, int64_t S, uint64_t seed) {
  constexpr int64_t NH = Cell::kNumHeads, DQK = Cell::kDQK, DV = Cell::kDV;
  MlstmInputs in;
  in.rows = B * S;
  in.width = 2 * NH * DQK + 2 * NH * DV;
  in.kOffset = NH * DQK;
  in.vOffset = 2 * NH * DQK;
  in.qkvo = HostArray(dtypeOf<typename Cell::T>(), in.rows * in.width);
  fillUniform(in.qkvo, in.rows, in.width, seed);
  in.gates = HostArray(dtypeOf<typename Cell::TGate>(), in.rows * 2 * NH);
  for (int64_t r = 0; r < in.rows; ++r)
    for (int hd = 0; hd < NH; ++hd) {
      in.gates.set(r * 2 * NH + hd, rawInputGate(rng, hd));
      in.gates.set(r * 2 * NH + NH + hd, rawForgetGate(rng, hd, NH, r % S));
    }
  return in;
}

/// One kernel launch of a timed chunkwise forward: the kernel, its geometry and its parameter
/// struct.
struct ChunkLaunch {
  const xlc::cuda::Kernel *kernel;
  LaunchDims dims;
  const void *params;
  size_t paramBytes;
};

/// Checks and times one chunkwise forward of two launches, split by an event between them into
/// the "first" and "second" columns: |Run| is ChunkwiseRun (kernel A, the chunk states; kernel
/// B, the outputs) or ChunkFusedRun (the scores kernel; the state pass). |launches| resolves
/// the run's kernels.
template <class Run>
ChunkResult benchChunk(GpuBackend &be, const std::string &name, int64_t B, int64_t S,
                       const Options &o,
                       const std::function<std::vector<ChunkLaunch>(const Run &)> &launches) {
  using Cell = typename Run::Cell;
  constexpr int64_t NH = Run::NH, DQK = Run::DQK, DV = Run::DV, L = Run::L;
  const double cap = 15.0, eps = 1e-6;
  ChunkResult res;
  res.name = name;
  res.chunk = L;
  res.batch = B;
  res.seq = S;
  std::printf("[bench] %s: B=%lld S=%lld NH=%lld DQK=%lld DV=%lld L=%lld\n", name.c_str(),
              static_cast<long long>(B), static_cast<long long>(S), static_cast<long long>(NH),
              static_cast<long long>(DQK), static_cast<long long>(DV), static_cast<long long>(L));
  std::fflush(stdout);

  // Inputs at the full shape: fast uniform q|k|v|o, the usual gate patterns, a random state.
  ref::Random rng(1234);
  MlstmInputs in = benchInputs<Cell>(rng, B, S, 99);
  MlstmStateArrays state = makeMlstmState<Cell>(rng, B, true);
  Run run(be, in, state, B, S, cap, eps);

  // ---- Correctness on this shape: three sampled heads, all tokens, final states.
  run.launch(be);
  HostArray h = fromDevice(be, run.h, dtypeOf<typename Cell::T>(), B * S * NH * DV);
  HostArray C = fromDevice(be, run.C, state.C.dtype(), state.C.size());
  HostArray n = fromDevice(be, run.n, DType::F32, state.n.size());
  HostArray m = fromDevice(be, run.m, DType::F32, state.m.size());
  const std::vector<std::pair<int64_t, int>> samples = {{0, 0}, {B / 2, static_cast<int>(NH / 2 + 1) % NH},
                                                        {B - 1, static_cast<int>(NH - 1)}};
  std::vector<std::vector<double>> hOut(samples.size()), hRef(samples.size()), cOut(samples.size()),
      cRef(samples.size()), nOut(samples.size()), nRef(samples.size());
  std::vector<double> mOut(samples.size()), mRef(samples.size());
  const ref::MlstmCellAttrs attrs = mlstmAttrs<Cell>(eps);
  parallelFor(static_cast<int64_t>(samples.size()), [&](int64_t i) {
    const auto [b, hd] = samples[i];
    const int64_t bh = b * NH + hd;
    HeadInputs x = headInputs<Cell>(in, b, hd, S, cap);
    ref::MlstmHeadState init = headState<Cell>(state, bh);
    ref::MlstmHeadResult r = ref::mlstmRecurrent(x.q, x.k, x.v, x.iPre, x.fPre, &init, attrs);
    for (int64_t t = 0; t < S; ++t)
      for (int64_t e = 0; e < DV; ++e) {
        hOut[i].push_back(h.get((b * S + t) * NH * DV + hd * DV + e));
        hRef[i].push_back(r.h.at(t, e));
      }
    for (int64_t j = 0; j < DQK * DV; ++j) {
      cOut[i].push_back(C.get(bh * DQK * DV + j));
      cRef[i].push_back(r.state.C.data[j]);
    }
    for (int64_t j = 0; j < DQK; ++j) {
      nOut[i].push_back(n.get(bh * DQK + j));
      nRef[i].push_back(r.state.n.data[j]);
    }
    mOut[i] = m.get(bh);
    mRef[i] = r.state.m;
  });
  auto flat = [](const std::vector<std::vector<double>> &v) {
    std::vector<double> out;
    for (const auto &x : v)
      out.insert(out.end(), x.begin(), x.end());
    return out;
  };
  constexpr bool kBf16State = std::is_same_v<typename Cell::TState, __nv_bfloat16>;
  res.check = CaseReport{name + " on the benchmark shape (3 sampled heads)", "gpu", {}, {}};
  res.check.add("h rel err", relativeError(flat(hOut), flat(hRef)), kTolChunkH);
  res.check.add("final C rel err", relativeError(flat(cOut), flat(cRef)),
                kBf16State ? kTolStateBf16 : kTolChunkC);
  res.check.add("final n rel err", relativeError(flat(nOut), flat(nRef)), kTolN);
  res.check.add("final m max abs err", maxAbsError(mOut, mRef), kTolM);
  res.ok = res.check.ok();
  std::printf("%s", res.check.describe().c_str());

  // ---- Timing.
  xlc::cuda::Stream stream;
  xlc::cuda::Event start, mid, stop;
  // Resolve the kernels once: the timed loop only calls cuLaunchKernel.
  const std::vector<ChunkLaunch> kernels = launches(run);
  for (const ChunkLaunch &l : kernels)
    l.kernel->setMaxDynamicSharedMemory(static_cast<int>(l.dims.sharedBytes));
  auto once = [&] {
    for (std::size_t i = 0; i < kernels.size(); ++i) {
      const LaunchDims &d = kernels[i].dims;
      kernels[i].kernel->launch({d.grid[0], d.grid[1], d.grid[2]}, {d.block, 1, 1},
                                d.sharedBytes, stream.handle(), kernels[i].params,
                                kernels[i].paramBytes);
      if (i == 0)
        mid.record(stream.handle());
    }
  };
  for (int i = 0; i < o.warmup; ++i)
    once();
  stream.synchronize();
  std::vector<double> total, states, outputs;
  for (int i = 0; i < o.reps; ++i) {
    start.record(stream.handle());
    once();
    stop.record(stream.handle());
    stop.synchronize();
    total.push_back(stop.elapsedSince(start));
    states.push_back(mid.elapsedSince(start));
    outputs.push_back(stop.elapsedSince(mid));
  }
  res.total = stats(total);
  res.states = stats(states);
  res.outputs = stats(outputs);
  const double tokens = static_cast<double>(B * S);
  res.tokensPerS = tokens / (res.total.median * 1e-3);
  // Useful FLOPs per token and head: state update 2·DQK·DV, inter-chunk readout 2·DQK·DV,
  // intra-chunk causal QKᵀ and PV ≈ 2·(L/2)·(DQK + DV).
  const double flops = tokens * NH * (4.0 * DQK * DV + 2.0 * (L / 2.0) * (DQK + DV));
  res.usefulTflops = flops / (res.total.median * 1e-3) / 1e12;
  res.workspaceGB = run.workspaceBytes() / 1e9;
  return res;
}

template <class VA, class VB>
ChunkResult benchChunkwise(GpuBackend &be, const std::string &name, int64_t B, int64_t S,
                           const Options &o) {
  using Run = ChunkwiseRun<GpuBackend, VA, VB>;
  return benchChunk<Run>(be, name, B, S, o, [&](const Run &r) {
    return std::vector<ChunkLaunch>{
        {&be.kernel(kChunkStates, VA::kConfig), r.dimsA, &r.params, sizeof(r.params)},
        {&be.kernel(kChunkOutputs, VB::kConfig), r.dimsB, &r.params, sizeof(r.params)}};
  });
}

template <class V>
ChunkResult benchChunkFused(GpuBackend &be, const std::string &name, int64_t B, int64_t S,
                            const Options &o) {
  using Run = ChunkFusedRun<GpuBackend, V>;
  return benchChunk<Run>(be, name, B, S, o, [&](const Run &r) {
    return std::vector<ChunkLaunch>{
        {&be.kernel(kChunkScores, r.scoresConfig.c_str()), r.scoresDims, &r.scoresParams,
         sizeof(r.scoresParams)},
        {&be.kernel(kChunkFused, V::kConfig), r.dims, &r.params, sizeof(r.params)}};
  });
}

template <class V>
DecodeResult benchDecode(GpuBackend &be, const std::string &name, int64_t B, const Options &o) {
  using Run = DecodeRun<GpuBackend, V>;
  using Cell = typename Run::Cell;
  constexpr int64_t NH = Run::NH, DQK = Run::DQK, DV = Run::DV;
  DecodeResult res;
  res.name = name;
  res.batch = B;
  res.check = runDecode<GpuBackend, V>(be, fmt::format("{} B{} (1 step)", name, B),
                                       {.batch = B, .steps = 1, .seed = 77});
  res.ok = res.check.ok();
  std::printf("%s", res.check.describe().c_str());

  ref::Random rng(4321);
  MlstmInputs in = makeMlstmInputs<Cell>(rng, B, 0);
  MlstmStateArrays state = makeMlstmState<Cell>(rng, B, true);
  Run run(be, in, state, B, 15.0, 1e-6);
  xlc::cuda::Stream stream;
  xlc::cuda::Event start, stop;
  constexpr int kLaunches = 100;
  const xlc::cuda::Kernel &kernel = be.kernel(kDecodeStep, V::kConfig);
  auto batch = [&] {
    for (int i = 0; i < kLaunches; ++i)
      kernel.launch({run.dims.grid[0], run.dims.grid[1], run.dims.grid[2]}, {run.dims.block, 1, 1},
                    0, stream.handle(), run.params);
  };
  for (int i = 0; i < o.warmup; ++i)
    batch();
  stream.synchronize();
  std::vector<double> us;
  for (int i = 0; i < o.reps; ++i) {
    start.record(stream.handle());
    batch();
    stop.record(stream.handle());
    stop.synchronize();
    us.push_back(stop.elapsedSince(start) * 1e3 / kLaunches);
  }
  res.step = stats(us);
  const double bytes = static_cast<double>(B * NH) *
                       (2.0 * DQK * DV * sizeof(typename Cell::TState) + 2.0 * DQK * 4 + 8);
  res.stateGBps = bytes / (res.step.median * 1e-6) / 1e9;
  return res;
}

/// The training backward of the mLSTM cell (mlstm_chunk_backward.cuh) after its forward.
struct BackwardResult {
  std::string name;
  int64_t batch = 0, seq = 0;
  bool ok = false;
  CaseReport check;
  Stats forward;                 ///< the two-kernel forward whose states the backward reads
  std::array<Stats, 4> kernels;  ///< readout, state gradient, per-chunk gradients, gates
  Stats backward;                ///< the four together
};

/// Checks one sampled head (the last (b, head)) against the float64 recurrent backward on the
/// timed shape, then times the forward (states + outputs) and each backward kernel.
template <class VA, class VB, class VG>
BackwardResult benchBackward(GpuBackend &be, const std::string &name, int64_t B, int64_t S,
                             const Options &o) {
  using Forward = ChunkwiseRun<GpuBackend, VA, VB>;
  using Run = BackwardRun<GpuBackend, VG>;
  using Cell = typename Run::Cell;
  constexpr int64_t NH = Run::NH, DQK = Run::DQK, DV = Run::DV;
  const double cap = 15.0, eps = 1e-6;
  BackwardResult res;
  res.name = name;
  res.batch = B;
  res.seq = S;
  std::printf("[bench] backward %s: B=%lld S=%lld\n", name.c_str(), static_cast<long long>(B),
              static_cast<long long>(S));
  std::fflush(stdout);
  ref::Random rng(4321);
  MlstmInputs in = benchInputs<Cell>(rng, B, S, 77);
  MlstmStateArrays state = makeMlstmState<Cell>(rng, B, false); // training: the zero state
  HostArray dh(dtypeOf<typename Cell::T>(), in.rows * NH * DV);
  fillUniform(dh, in.rows, NH * DV, 78);
  Forward fwd(be, in, state, B, S, cap, eps);
  fwd.launch(be);
  Run run(be, in, fwd, dh, B, S, cap, eps);
  run.launch(be);

  // ---- Correctness: the last (b, head) against the float64 recurrent backward.
  const int64_t b = B - 1;
  const int hd = static_cast<int>(NH - 1);
  HostArray got = fromDevice(be, run.dqkvo, dtypeOf<typename Cell::T>(), in.rows * in.width);
  HostArray gotGates =
      fromDevice(be, run.dgates, dtypeOf<typename Cell::TGate>(), in.rows * 2 * NH);
  const HeadInputs x = headInputs<Cell>(in, b, hd, S, cap);
  const ref::MlstmHeadState init = headState<Cell>(state, b * NH + hd);
  ref::Tensor dhHead({S, DV});
  for (int64_t t = 0; t < S; ++t)
    for (int64_t e = 0; e < DV; ++e)
      dhHead.at(t, e) = dh.get((b * S + t) * NH * DV + hd * DV + e);
  const ref::MlstmHeadGrads g = ref::mlstmRecurrentBackward(x.q, x.k, x.v, x.iPre, x.fPre, &init,
                                                            mlstmAttrs<Cell>(eps), dhHead);
  std::vector<double> oq, rq, ok, rk, ov, rv, og, rg;
  for (int64_t t = 0; t < S; ++t) {
    const int64_t r = b * S + t;
    for (int64_t d = 0; d < DQK; ++d) {
      oq.push_back(got.get(r * in.width + in.qOffset + hd * DQK + d));
      rq.push_back(g.q.at(t, d));
      ok.push_back(got.get(r * in.width + in.kOffset + hd * DQK + d));
      rk.push_back(g.k.at(t, d));
    }
    for (int64_t e = 0; e < DV; ++e) {
      ov.push_back(got.get(r * in.width + in.vOffset + hd * DV + e));
      rv.push_back(g.v.at(t, e));
    }
    const double slopeI = 1.0 - std::pow(std::tanh(in.gates.get(r * 2 * NH + hd) / cap), 2);
    const double slopeF = 1.0 - std::pow(std::tanh(in.gates.get(r * 2 * NH + NH + hd) / cap), 2);
    og.push_back(gotGates.get(r * 2 * NH + hd));
    rg.push_back(g.iPre.at(t) * slopeI);
    og.push_back(gotGates.get(r * 2 * NH + NH + hd));
    rg.push_back(g.fPre.at(t) * slopeF);
  }
  res.check = CaseReport{name + " on the benchmark shape (the last head)", "gpu", {}, {}};
  res.check.add("dq rel err", relativeError(oq, rq), kTolBackwardQK);
  res.check.add("dk rel err", relativeError(ok, rk), kTolBackwardQK);
  res.check.add("dv rel err", relativeError(ov, rv), kTolBackwardV);
  res.check.add("di, df rel err", relativeError(og, rg), kTolBackwardGates);
  res.ok = res.check.ok();
  std::printf("%s", res.check.describe().c_str());

  // ---- Timing: the forward, then each backward kernel between events.
  xlc::cuda::Stream stream;
  std::array<xlc::cuda::Event, 6> ev;
  struct L {
    const xlc::cuda::Kernel *kernel;
    LaunchDims dims;
    const void *params;
    size_t bytes;
  };
  const std::vector<L> launches = {
      {&be.kernel(kChunkStates, VA::kConfig), fwd.dimsA, &fwd.params, sizeof(fwd.params)},
      {&be.kernel(kChunkOutputs, VB::kConfig), fwd.dimsB, &fwd.params, sizeof(fwd.params)},
      {&be.kernel(kBackwardReadout, VG::kConfig), run.dimsR, &run.params, sizeof(run.params)},
      {&be.kernel(kBackwardStates, VG::kConfig), run.dimsS, &run.params, sizeof(run.params)},
      {&be.kernel(kBackwardChunk, VG::kConfig), run.dimsP, &run.params, sizeof(run.params)},
      {&be.kernel(kBackwardGates, VG::kConfig), run.dimsG, &run.params, sizeof(run.params)}};
  for (const L &l : launches)
    l.kernel->setMaxDynamicSharedMemory(static_cast<int>(l.dims.sharedBytes));
  auto once = [&] {
    for (std::size_t i = 0; i < launches.size(); ++i) {
      const LaunchDims &d = launches[i].dims;
      launches[i].kernel->launch({d.grid[0], d.grid[1], d.grid[2]}, {d.block, 1, 1}, d.sharedBytes,
                                 stream.handle(), launches[i].params, launches[i].bytes);
      if (i >= 1)
        ev[i - 1].record(stream.handle());
    }
  };
  xlc::cuda::Event start;
  for (int i = 0; i < o.warmup; ++i)
    once();
  stream.synchronize();
  std::vector<double> fwdMs, bwdMs;
  std::array<std::vector<double>, 4> each;
  const int reps = std::max(3, o.reps / 3); // the backward is long: a third of the repeats
  for (int i = 0; i < reps; ++i) {
    start.record(stream.handle());
    once();
    ev[4].synchronize();
    fwdMs.push_back(ev[0].elapsedSince(start));
    for (int k = 0; k < 4; ++k)
      each[k].push_back(ev[k + 1].elapsedSince(ev[k]));
    bwdMs.push_back(ev[4].elapsedSince(ev[0]));
  }
  res.forward = stats(fwdMs);
  for (int k = 0; k < 4; ++k)
    res.kernels[k] = stats(each[k]);
  res.backward = stats(bwdMs);
  return res;
}

int run(const Options &o) {
  std::string reason;
  if (!xlc::cuda::cudaAvailable(&reason)) {
    std::fprintf(stderr, "kernel_bench: no usable GPU: %s\n", reason.c_str());
    return 2;
  }
  xlc::cuda::CudaDevice device = xlc::cuda::CudaDevice::open(0);
  GpuBackend be(device);
  const auto [nvMajor, nvMinor] = xlc::cuda::Nvrtc::instance().version();
  std::printf("[bench] device: %s; NVRTC %d.%d; arch %s; %d warm-up + %d timed runs\n",
              device.summary().c_str(), nvMajor, nvMinor, device.arch().c_str(), o.warmup, o.reps);

  // The prefill shape of the chunkwise goal (B8 S8192) and the time-to-first-token shape (B1
  // S2048, where a sequential-over-chunks kernel has the fewest blocks).
  struct Shape {
    int64_t batch, seq;
  };
  std::vector<Shape> shapes =
      o.quick ? std::vector<Shape>{{2, 1024}} : std::vector<Shape>{{8, 8192}, {1, 2048}};
  if (o.batch > 0)
    shapes = {{o.batch, o.seq}};
  auto want = [&](const char *name) { return o.only.empty() || o.only == name; };
  std::vector<ChunkResult> chunk;
  if (o.gemvOnly || o.decodeOnly || o.backwardOnly)
    shapes.clear();
  for (const Shape &sh : shapes) {
    const int64_t B = sh.batch, S = sh.seq;
    if (want("fused L64"))
      chunk.push_back(benchChunkFused<Fused64>(be, "fused L64", B, S, o));
    if (want("fused L64 DV32"))
      chunk.push_back(benchChunkFused<Fused64T32>(be, "fused L64 DV32", B, S, o));
    if (want("fused L64 split4"))
      chunk.push_back(benchChunkFused<Fused64S4>(be, "fused L64 split4", B, S, o));
    if (want("fused L64 DV32 split4"))
      chunk.push_back(benchChunkFused<Fused64T32S4>(be, "fused L64 DV32 split4", B, S, o));
    if (want("fused mLSTMsig L64"))
      chunk.push_back(benchChunkFused<SigFused64>(be, "fused mLSTMsig L64", B, S, o));
    if (want("L64"))
      chunk.push_back(benchChunkwise<States64, Outputs64>(be, "L64", B, S, o));
    if (want("L64 out DV128"))
      chunk.push_back(benchChunkwise<States64, Outputs64W>(be, "L64 out DV128", B, S, o));
    if (want("L128"))
      chunk.push_back(benchChunkwise<States128, Outputs128>(be, "L128", B, S, o));
    if (want("L128 states DV128"))
      chunk.push_back(benchChunkwise<States128W, Outputs128>(be, "L128 states DV128", B, S, o));
    if (want("L128 states K128"))
      chunk.push_back(benchChunkwise<States128K, Outputs128>(be, "L128 states K128", B, S, o));
    if (want("L128 states K256"))
      chunk.push_back(benchChunkwise<States128F, Outputs128>(be, "L128 states K256", B, S, o));
    if (want("L128 out Q128 8w"))
      chunk.push_back(benchChunkwise<States128, Outputs128Q>(be, "L128 out Q128 8w", B, S, o));
    if (want("L256"))
      chunk.push_back(benchChunkwise<States256, Outputs256>(be, "L256", B, S, o));
    if (want("mLSTMsig L128"))
      chunk.push_back(benchChunkwise<SigStates128, SigOutputs128>(be, "mLSTMsig L128", B, S, o));
  }
  std::vector<BackwardResult> backward;
  if (o.backwardOnly)
    for (const Shape &sh : o.batch > 0 ? std::vector<Shape>{{o.batch, o.seq}}
                                       : std::vector<Shape>{{8, 8192}, {1, 2048}})
      backward.push_back(
          benchBackward<States64, Outputs64, Backward64>(be, "7B head L64", sh.batch, sh.seq, o));
  std::vector<DecodeResult> decode;
  for (int64_t batch : {int64_t{1}, int64_t{64}}) {
    if (!o.only.empty() || o.gemvOnly || o.backwardOnly)
      break;
    decode.push_back(benchDecode<Decode7B>(be, "decode fp32 state, DV tile 64", batch, o));
    decode.push_back(benchDecode<Decode7B32>(be, "decode fp32 state, DV tile 32", batch, o));
    decode.push_back(benchDecode<Bf16Decode7B>(be, "decode bf16 state, DV tile 64", batch, o));
  }

  // ---- Table.
  std::printf("\n%-26s %6s %6s %10s %10s %10s %12s %9s %6s\n", "chunkwise forward", "B", "S",
              "total ms", "1st ms", "2nd ms", "tokens/s", "TFLOP/s", "check");
  for (const ChunkResult &r : chunk)
    std::printf("%-26s %6lld %6lld %10.3f %10.3f %10.3f %12.0f %9.1f %6s\n", r.name.c_str(),
                static_cast<long long>(r.batch), static_cast<long long>(r.seq), r.total.median,
                r.states.median, r.outputs.median, r.tokensPerS, r.usefulTflops,
                r.ok ? "ok" : "FAIL");
  std::printf("  (1st: kernel A or the scores kernel; 2nd: kernel B or the fused state pass)\n");
  std::printf("  (goal at B8 S8192: ≤ 2.8 ms; NX-AI TFLA Triton measured 5.29 ms on the same H100 kind)\n");
  std::printf("\n%-32s %6s %12s %12s %14s %6s\n", "decode step", "batch", "median us", "min us",
              "state GB/s", "check");
  for (const DecodeResult &r : decode)
    std::printf("%-32s %6lld %12.2f %12.2f %14.0f %6s\n", r.name.c_str(),
                static_cast<long long>(r.batch), r.step.median, r.step.min, r.stateGBps,
                r.ok ? "ok" : "FAIL");
  std::printf("  (state GB/s: C read + written once per step; the card copies ≈3000 GB/s)\n");

  if (!backward.empty()) {
    std::printf("\n%-20s %6s %6s %10s %9s %9s %9s %9s %10s %10s %6s\n", "training backward", "B",
                "S", "fwd ms", "R ms", "S ms", "P ms", "G ms", "bwd ms", "fwd+bwd", "check");
    for (const BackwardResult &r : backward)
      std::printf("%-20s %6lld %6lld %10.3f %9.3f %9.3f %9.3f %9.3f %10.3f %10.3f %6s\n",
                  r.name.c_str(), static_cast<long long>(r.batch), static_cast<long long>(r.seq),
                  r.forward.median, r.kernels[0].median, r.kernels[1].median, r.kernels[2].median,
                  r.kernels[3].median, r.backward.median, r.forward.median + r.backward.median,
                  r.ok ? "ok" : "FAIL");
    std::printf("  (R readout, S state gradient, P per-chunk gradients, G gates; the forward is the\n"
                "   two-kernel form whose chunk-start states the backward reads; issue 11's goal:\n"
                "   forward + backward <= 10 ms at B8 S8192)\n");
  }

  bool gemvOk = true;
  std::string gemvJson = "[]";
  if (o.gemv && o.only.empty() && !o.backwardOnly)
    gemvJson =
        runGemvBench(device, {.reps = o.reps, .warmup = o.warmup, .quick = o.quick}, gemvOk);

  // ---- JSON.
  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::string json = fmt::format(
      "{{\n  \"device\": \"{}\",\n  \"nvrtc\": \"{}.{}\",\n  \"arch\": \"{}\",\n  \"date\": \"{}\",\n"
      "  \"reps\": {},\n  \"warmup\": {},\n  \"chunkwise\": [\n",
      device.name(), nvMajor, nvMinor, device.arch(), date, o.reps, o.warmup);
  for (size_t i = 0; i < chunk.size(); ++i) {
    const ChunkResult &r = chunk[i];
    json += fmt::format(
        "    {{\"variant\": \"{}\", \"B\": {}, \"S\": {}, \"NH\": 8, \"DQK\": 256, \"DV\": 512, "
        "\"chunk\": {}, \"check_ok\": {}, \"h_rel_err\": {}, \"median_ms\": {}, \"min_ms\": {}, "
        "\"first_median_ms\": {}, \"second_median_ms\": {}, \"tokens_per_s\": {}, "
        "\"useful_tflops\": {}, \"workspace_gb\": {}}}{}\n",
        r.name, r.batch, r.seq, r.chunk, r.ok ? "true" : "false", jsonNumber(r.check.metrics[0].value),
        jsonNumber(r.total.median), jsonNumber(r.total.min), jsonNumber(r.states.median),
        jsonNumber(r.outputs.median), jsonNumber(r.tokensPerS), jsonNumber(r.usefulTflops),
        jsonNumber(r.workspaceGB), i + 1 < chunk.size() ? "," : "");
  }
  json += "  ],\n  \"decode\": [\n";
  for (size_t i = 0; i < decode.size(); ++i) {
    const DecodeResult &r = decode[i];
    json += fmt::format("    {{\"variant\": \"{}\", \"batch\": {}, \"check_ok\": {}, "
                        "\"h_rel_err\": {}, \"median_us\": {}, \"min_us\": {}, "
                        "\"state_gbps\": {}}}{}\n",
                        r.name, r.batch, r.ok ? "true" : "false",
                        jsonNumber(r.check.metrics[0].value), jsonNumber(r.step.median),
                        jsonNumber(r.step.min), jsonNumber(r.stateGBps),
                        i + 1 < decode.size() ? "," : "");
  }
  json += "  ],\n  \"backward\": [\n";
  for (size_t i = 0; i < backward.size(); ++i) {
    const BackwardResult &r = backward[i];
    json += fmt::format("    {{\"variant\": \"{}\", \"B\": {}, \"S\": {}, \"check_ok\": {}, "
                        "\"forward_ms\": {}, \"readout_ms\": {}, \"states_ms\": {}, "
                        "\"chunk_ms\": {}, \"gates_ms\": {}, \"backward_ms\": {}}}{}\n",
                        r.name, r.batch, r.seq, r.ok ? "true" : "false",
                        jsonNumber(r.forward.median), jsonNumber(r.kernels[0].median),
                        jsonNumber(r.kernels[1].median), jsonNumber(r.kernels[2].median),
                        jsonNumber(r.kernels[3].median), jsonNumber(r.backward.median),
                        i + 1 < backward.size() ? "," : "");
  }
  json += "  ],\n  \"gemv\": " + gemvJson + "\n}\n";
  std::printf("\n%s", json.c_str());
  if (!o.jsonPath.empty()) {
    std::ofstream out(o.jsonPath);
    out << json;
  }
  bool ok = gemvOk;
  for (const ChunkResult &r : chunk)
    ok &= r.ok;
  for (const DecodeResult &r : decode)
    ok &= r.ok;
  for (const BackwardResult &r : backward)
    ok &= r.ok;
  return ok ? 0 : 1;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kernel_bench: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--json")
      o.jsonPath = value();
    else if (arg == "--reps")
      o.reps = std::max(1, std::stoi(value()));
    else if (arg == "--warmup")
      o.warmup = std::max(0, std::stoi(value()));
    else if (arg == "--quick")
      o.quick = true;
    else if (arg == "--only")
      o.only = value();
    else if (arg == "--gemv-only")
      o.gemvOnly = true;
    else if (arg == "--no-gemv")
      o.gemv = false;
    else if (arg == "--backward-only") {
      o.backwardOnly = true;
      o.gemv = false;
    }
    else if (arg == "--decode-only") {
      o.decodeOnly = true;
      o.gemv = false;
    }
    else if (arg == "--shape") {
      const std::string v = value();
      const size_t x = v.find('x');
      o.batch = x == std::string::npos ? 0 : std::stoll(v.substr(0, x));
      o.seq = x == std::string::npos ? 0 : std::stoll(v.substr(x + 1));
      if (o.batch <= 0 || o.seq <= 0) {
        std::fprintf(stderr, "kernel_bench: --shape wants BxS with B, S > 0 (got %s)\n", v.c_str());
        return 2;
      }
    }
    else if (arg == "--help" || arg == "-h") {
      std::printf("usage: kernel_bench [--json FILE] [--reps N (default 30)] [--warmup N (3)] "
                  "[--quick]\n"
                  "                    [--only VARIANT] [--shape BxS] [--gemv-only | --no-gemv |\n"
                  "                    --decode-only | --backward-only]\n"
                  "  --only VARIANT  time only the chunkwise tiling of that name (e.g. \"L128\"), no\n"
                  "                  decode step (for profilers)\n"
                  "  --shape BxS     only this chunkwise shape (default 8x8192 and 1x2048)\n"
                  "  --gemv-only     only the decode GEMMs: xlc's GEMV vs cuBLASLt at 7B shapes\n"
                  "  --no-gemv       without the decode GEMMs\n"
                  "  --decode-only   only the mLSTM decode step (batch 1 and 64)\n"
                  "  --backward-only only the training backward of the mLSTM cell at the 7B head\n"
                  "                  (after its forward; B8 S8192 and B1 S2048, or --shape)\n");
      return 0;
    } else {
      std::fprintf(stderr, "kernel_bench: unknown argument %s (try --help)\n", arg.c_str());
      return 2;
    }
  }
  try {
    return run(o);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "kernel_bench: %s\n", e.what());
    return 1;
  }
}
