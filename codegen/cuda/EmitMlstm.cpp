//===- EmitMlstm.cpp - Chunkwise and decode-step mLSTM kernels ------------===//
//
// xk.mlstm_chunkwise becomes two launches sharing one parameter struct (runtime/device/
// mlstm_chunkwise.cuh): kernel A materialises the chunk-start states in a workspace, kernel B
// computes all chunk outputs in parallel. xk.mlstm_decode_step becomes one fused launch
// (mlstm_decode_step.cuh). Both update the state buffers in place.
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/KernelEmitter.h"
#include "codegen/cuda/KernelEmitterUtils.h"
#include "codegen/cuda/KernelSource.h"

using namespace mlir;

namespace xlc::codegen {
namespace art = xlc::artifact;

namespace {

/// The MlstmCellConfig<...> type of a cell op.
template <typename Op> std::string cellConfig(Op op) {
  auto state = cast<xlstm::StateType>(op.getInitialState().getType());
  std::string gate = op.getInputGate() == xlstm::InputGateKind::Exp ? "kExp" : "kSigmoid";
  std::string norm = op.getNormalizer() == xlstm::NormalizerKind::MaxAbs ? "kMaxAbs" : "kNone";
  return "xlc::device::MlstmCellConfig<" + cudaType(op.getQ().getType().getElementType()) + ", " +
         cudaType(op.getIgate().getType().getElementType()) + ", " +
         cudaType(state.getElementType()) + ", " + std::to_string(state.getNumHeads()) + ", " +
         std::to_string(state.getQkHeadDim()) + ", " + std::to_string(state.getVHeadDim()) +
         ", xlc::device::InputGate::" + gate + ", xlc::device::Normalizer::" + norm + ">";
}

/// The strided q, k, v, i, f operands as (buffer, offset, stride) argument triples.
template <typename Op> std::vector<art::Arg> viewArgs(Op op, EmitContext &ctx) {
  std::vector<art::Arg> args;
  for (Value v : {op.getQ(), op.getK(), op.getV(), op.getIgate(), op.getFgate()}) {
    BufferView view = ctx.view(v);
    args.push_back(art::Arg::buffer(view.id));
    args.push_back(art::Arg::i64(view.offset));
    args.push_back(art::Arg::i64(view.stride));
  }
  return args;
}

std::vector<art::KernelParam> viewParams() {
  std::vector<art::KernelParam> params;
  for (const char *name : {"q", "k", "v", "igate", "fgate"}) {
    params.push_back(bufferParam(name));
    params.push_back(i64Param(std::string(name) + "_offset"));
    params.push_back(i64Param(std::string(name) + "_stride"));
  }
  return params;
}

template <typename Op> nlohmann::json cellAttrs(Op op) {
  auto state = cast<xlstm::StateType>(op.getInitialState().getType());
  return {{"num_heads", state.getNumHeads()},
          {"qk_head_dim", state.getQkHeadDim()},
          {"v_head_dim", state.getVHeadDim()},
          {"eps", op.getEps().convertToDouble()},
          {"gate_soft_cap", op.getGateSoftCap() ? op.getGateSoftCap()->convertToDouble() : 0.0},
          {"input_gate", op.getInputGate() == xlstm::InputGateKind::Exp ? "exp" : "sigmoid"},
          {"normalizer", op.getNormalizer() == xlstm::NormalizerKind::MaxAbs ? "max_abs" : "none"}};
}

double capOf(std::optional<llvm::APFloat> cap) { return cap ? cap->convertToDouble() : 0.0; }

/// Each warp of a chunkwise kernel owns whole 16-row fragment rows of its tile: the largest
/// warp count ≤ |warps| that divides the tile's |fragmentRows|.
int64_t warpsFor(int64_t fragmentRows, int64_t warps) {
  int64_t w = std::max<int64_t>(1, std::min(warps, fragmentRows));
  while (fragmentRows % w != 0)
    --w;
  return w;
}

// Dynamic shared memory of the two chunkwise kernels, mirroring the layouts of
// MlstmChunkStatesConfig and MlstmChunkOutputsConfig (runtime/device/mlstm_chunkwise.cuh);
// the emitted source static_asserts the two agree.
int64_t smemBytes(int64_t elements, int64_t elementSize) {
  return (elements * elementSize + 127) / 128 * 128;
}

int64_t chunkStatesSharedBytes(int64_t chunk, int64_t tileK, int64_t tileV) {
  int64_t ldK = tileK + 8, ldV = tileV + 8, ldC = tileV + 4;
  return smemBytes(chunk * ldK, 2) + smemBytes(chunk * ldV, 2) + smemBytes(tileK * ldC, 4) +
         smemBytes(3 * chunk, 4) + smemBytes(tileK, 4) + 128;
}

int64_t chunkOutputsSharedBytes(int64_t chunk, int64_t blockL, int64_t blockDV, int64_t blockDQK,
                                int64_t dqk) {
  int64_t qWidth = (dqk + blockDQK - 1) / blockDQK * blockDQK;
  int64_t ldQ = qWidth + 8, ldK = blockDQK + 8, ldC = blockDV + 8, ldV = blockDV + 8,
          ldP = blockL + 8, ldS = std::max(blockL, blockDV) + 4;
  return smemBytes(blockL * ldQ, 2) + smemBytes(blockL * ldK, 2) + smemBytes(blockDQK * ldC, 2) +
         smemBytes(blockL * ldV, 2) + smemBytes(blockL * ldS, 4) + smemBytes(blockL * ldP, 2) +
         smemBytes(3 * chunk, 4) + smemBytes(4 * blockL, 4) + smemBytes(qWidth, 4);
}

} // namespace

LogicalResult emitMlstmChunkwise(xk::MLSTMChunkwiseOp op, EmitContext &ctx) {
  FailureOr<int64_t> chunk = tileEntry(op, "chunk"), blockQ = tileEntry(op, "block_q"),
                     blockDQK = tileEntry(op, "block_dqk"), blockDV = tileEntry(op, "block_dv"),
                     warps = tileEntry(op, "warps");
  if (failed(chunk) || failed(blockQ) || failed(blockDQK) || failed(blockDV) || failed(warps))
    return failure();
  auto state = cast<xlstm::StateType>(op.getInitialState().getType());
  const int64_t nh = state.getNumHeads(), dqk = state.getQkHeadDim(), dv = state.getVHeadDim();
  if (*chunk % 16 != 0 || *chunk % *blockQ != 0 || *blockQ % 16 != 0)
    return op.emitError() << "chunk " << *chunk << " must be a multiple of 16 and of block_q "
                          << *blockQ << ", itself a multiple of 16";
  // Tiles of C are whole 16x16 fragments: round head dims below 16 up (zero-padded in the kernel).
  auto fragTile = [](int64_t tile) { return std::max<int64_t>(16, tile); };
  const int64_t threadsA = 32 * warpsFor(fragTile(*blockDQK) / 16, *warps);
  const int64_t threadsB = 32 * warpsFor(*blockQ / 16, *warps);
  std::string cell = cellConfig(op);

  std::vector<art::KernelParam> params = viewParams();
  for (const char *name : {"C", "n", "m", "ws_C", "ws_n", "ws_m", "h"})
    params.push_back(bufferParam(name));
  params.push_back(i64Param("batch"));
  params.push_back(i64Param("seq_len"));
  params.push_back(f64Param("eps"));
  params.push_back(f64Param("gate_soft_cap"));

  // Kernel A: chunk-start states. One block per (C tile, batch·head).
  KernelSpec a;
  a.family = "mlstm_chunk_states";
  a.header = "mlstm_chunkwise";
  a.config = "xlc::device::MlstmChunkStatesConfig<" + cell + ", " + std::to_string(*chunk) + ", " +
             std::to_string(fragTile(*blockDQK)) + ", " + std::to_string(fragTile(*blockDV)) +
             ", " + std::to_string(threadsA) + ">";
  a.paramsType = "MlstmChunkwiseParams";
  a.function = "mlstm_chunk_states";
  a.tile = tileText(op);
  a.params = params;
  a.block = {static_cast<std::uint32_t>(threadsA), 1, 1};
  int64_t tilesK = (dqk + fragTile(*blockDQK) - 1) / fragTile(*blockDQK);
  int64_t tilesV = (dv + fragTile(*blockDV) - 1) / fragTile(*blockDV);
  a.grid = {art::Expr::constant(static_cast<std::uint64_t>(tilesK * tilesV)),
            art::Expr::batch(static_cast<std::uint64_t>(nh)), art::Expr::constant(1)};
  a.sharedBytes = static_cast<std::uint32_t>(
      chunkStatesSharedBytes(*chunk, fragTile(*blockDQK), fragTile(*blockDV)));
  a.assertSharedBytes = true;

  // Kernel B: outputs. One block per (DV tile, query block of the sequence, batch·head).
  KernelSpec b = a;
  b.family = "mlstm_chunk_outputs";
  b.config = "xlc::device::MlstmChunkOutputsConfig<" + cell + ", " + std::to_string(*chunk) + ", " +
             std::to_string(*blockQ) + ", " + std::to_string(fragTile(*blockDV)) + ", " +
             std::to_string(fragTile(*blockDQK)) + ", " + std::to_string(threadsB) + ">";
  b.function = "mlstm_chunk_outputs";
  b.block = {static_cast<std::uint32_t>(threadsB), 1, 1};
  b.sharedBytes = static_cast<std::uint32_t>(chunkOutputsSharedBytes(
      *chunk, *blockQ, fragTile(*blockDV), fragTile(*blockDQK), dqk));
  b.grid = {art::Expr::constant(static_cast<std::uint64_t>(tilesV)),
            art::ceilDiv(art::Expr::seq(), static_cast<std::uint64_t>(*blockQ)),
            art::Expr::batch(static_cast<std::uint64_t>(nh))};

  // The chunk-start states: (NC+1) slots per (b, head) with NC = ceil(S/L) ≤ (S+L−1)/L, so
  // B·NH·(S + 2L − 1)/L slots (rounded up) cover every S.
  auto slots = [&](std::uint64_t perSlot) {
    std::uint64_t l = static_cast<std::uint64_t>(*chunk);
    return art::ceilDiv(art::Expr{0, nh * perSlot * (2 * l - 1), 0, nh * perSlot, 1}, l);
  };
  StateBuffers s = ctx.state(op.getInitialState());
  art::BufferId wsC = ctx.workspace(ctx.nameOf(op) + ".ws_C", art::DType::F32,
                                    slots(static_cast<std::uint64_t>(dqk * dv) * 4));
  art::BufferId wsN = ctx.workspace(ctx.nameOf(op) + ".ws_n", art::DType::F32,
                                    slots(static_cast<std::uint64_t>(dqk) * 4));
  art::BufferId wsM = ctx.workspace(ctx.nameOf(op) + ".ws_m", art::DType::F32, slots(4));

  std::vector<art::Arg> args = viewArgs(op, ctx);
  for (art::BufferId id : {s.C, s.n, s.m, wsC, wsN, wsM, ctx.output(op.getH())})
    args.push_back(art::Arg::buffer(id));
  args.push_back(art::Arg::symbol(art::Symbol::B));
  args.push_back(art::Arg::symbol(art::Symbol::S));
  args.push_back(art::Arg::f32(static_cast<float>(op.getEps().convertToDouble())));
  args.push_back(art::Arg::f32(static_cast<float>(capOf(op.getGateSoftCap()))));

  nlohmann::json attrs = cellAttrs(op);
  attrs["chunk"] = *chunk;
  attrs["phase"] = "states";
  ctx.step(art::Step::makeLaunch("mlstm_chunkwise", attrs, ctx.kernel(makeKernel(a)), args));
  attrs["phase"] = "outputs";
  ctx.step(art::Step::makeLaunch("mlstm_chunkwise", attrs, ctx.kernel(makeKernel(b)), args));
  return success();
}

LogicalResult emitMlstmDecodeStep(xk::MLSTMDecodeStepOp op, EmitContext &ctx) {
  FailureOr<int64_t> blockDV = tileEntry(op, "block_dv"), warps = tileEntry(op, "warps");
  if (failed(blockDV) || failed(warps))
    return failure();
  auto state = cast<xlstm::StateType>(op.getInitialState().getType());
  const int64_t nh = state.getNumHeads(), dv = state.getVHeadDim();
  KernelSpec spec;
  spec.family = "mlstm_decode_step";
  spec.header = "mlstm_decode_step";
  spec.config = "xlc::device::MlstmDecodeConfig<" + cellConfig(op) + ", " +
                std::to_string(*blockDV) + ", " + std::to_string(*warps * 32) + ">";
  spec.paramsType = "MlstmDecodeParams";
  spec.function = "mlstm_decode_step";
  spec.tile = tileText(op);
  spec.params = viewParams();
  for (const char *name : {"C", "n", "m", "counters", "h"})
    spec.params.push_back(bufferParam(name));
  spec.params.push_back(i64Param("batch"));
  spec.params.push_back(f64Param("eps"));
  spec.params.push_back(f64Param("gate_soft_cap"));
  spec.block = {static_cast<std::uint32_t>(*warps * 32), 1, 1};
  spec.grid = {art::Expr::constant(static_cast<std::uint64_t>((dv + *blockDV - 1) / *blockDV)),
               art::Expr::batch(static_cast<std::uint64_t>(nh)), art::Expr::constant(1)};

  StateBuffers s = ctx.state(op.getInitialState());
  art::BufferId counters = ctx.workspace(ctx.nameOf(op) + ".counters", art::DType::I64,
                                         art::Expr::batch(static_cast<std::uint64_t>(nh) * 8));
  std::vector<art::Arg> args = viewArgs(op, ctx);
  for (art::BufferId id : {s.C, s.n, s.m, counters, ctx.output(op.getH())})
    args.push_back(art::Arg::buffer(id));
  args.push_back(art::Arg::symbol(art::Symbol::B));
  args.push_back(art::Arg::f32(static_cast<float>(op.getEps().convertToDouble())));
  args.push_back(art::Arg::f32(static_cast<float>(capOf(op.getGateSoftCap()))));
  nlohmann::json attrs = cellAttrs(op);
  attrs["zero_before"] = {counters};
  ctx.step(art::Step::makeLaunch("mlstm_decode_step", attrs, ctx.kernel(makeKernel(spec)),
                                 std::move(args)));
  return success();
}

} // namespace xlc::codegen
