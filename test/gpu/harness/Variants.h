//===- Variants.h - The kernel variants the tests and the benchmark use -*- C++ -*-===//
//
// Every config is spelled out in full (XLC_VARIANT pastes the very text into NVRTC). Tiny-model
// variants run everywhere (emulator in CI, GPU); 7B variants are compiled by NVRTC in CI and run
// on the GPU (a few small 7B-head cases also run on the emulator).
//
// A variant is one emitted kernel: a family plus a config; the names say which.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_GPU_HARNESS_VARIANTS_H
#define XLC_TEST_GPU_HARNESS_VARIANTS_H

#include "KernelHarness.h"

namespace xlc::test::variants {

// ---- Tiny model: NH 4, DQK 8, DV 16, D 64, FFN 192, chunk 16 ----
XLC_VARIANT(TinyEmbedding,
            xlc::device::EmbeddingConfig<__nv_bfloat16, 64, 64>);
XLC_VARIANT(TinyEmbeddingBackward,
            xlc::device::EmbeddingBackwardConfig<__nv_bfloat16, 64, 32, 3>);
XLC_VARIANT(AdamWMasterBf16,
            xlc::device::AdamWConfig<__nv_bfloat16, float, float, true, false, 128>);
XLC_VARIANT(AdamWF32,
            xlc::device::AdamWConfig<float, float, float, false, false, 64>);
XLC_VARIANT(AdamWLowMemory,
            xlc::device::AdamWConfig<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, false, true, 128>);
XLC_VARIANT(AdamWLowMemoryF32Grad,
            xlc::device::AdamWConfig<__nv_bfloat16, float, __nv_bfloat16, false, true, 64>);
XLC_VARIANT(ConvertF32ToBf16,
            xlc::device::ConvertConfig<float, __nv_bfloat16, 300, 32>);
XLC_VARIANT(ColumnSumGates,
            xlc::device::ColumnSumConfig<float, 16, 32, 64>);
XLC_VARIANT(ColumnSumBf16Wide,
            xlc::device::ColumnSumConfig<__nv_bfloat16, 300, 128, 16>);
XLC_VARIANT(GradNorm256,
            xlc::device::GradNormConfig<float, 256>);
XLC_VARIANT(GradNormBf16,
            xlc::device::GradNormConfig<__nv_bfloat16, 256>);
XLC_VARIANT(CrossEntropyCapped,
            xlc::device::CrossEntropyConfig<128, true>);
XLC_VARIANT(CrossEntropyPlain,
            xlc::device::CrossEntropyConfig<64, false>);
XLC_VARIANT(TinyRmsNorm,
            xlc::device::RmsNormConfig<__nv_bfloat16, 64, 64>);
XLC_VARIANT(TinyRmsNormF32,
            xlc::device::RmsNormConfig<float, 64, 32>);
XLC_VARIANT(TinyRmsNormBackward,
            xlc::device::RmsNormBackwardConfig<__nv_bfloat16, 64, 32, 4>);
XLC_VARIANT(TinyRmsNormBackwardF32,
            xlc::device::RmsNormBackwardConfig<float, 64, 32, 3>);
XLC_VARIANT(TinyNormGate,
            xlc::device::NormGateConfig<__nv_bfloat16, 4, 16, 64>);
XLC_VARIANT(TinySwiglu,
            xlc::device::SwigluConfig<__nv_bfloat16, 192, 64>);
XLC_VARIANT(TinyNormGateBackward,
            xlc::device::NormGateBackwardConfig<__nv_bfloat16, 4, 16, 64, 3>);
XLC_VARIANT(TinySwigluBackward,
            xlc::device::SwigluBackwardConfig<__nv_bfloat16, 192, 32>);
XLC_VARIANT(SoftCapF32,
            xlc::device::SoftCapConfig<float, 256>);
XLC_VARIANT(SoftCapBf16,
            xlc::device::SoftCapConfig<__nv_bfloat16, 128>);
// chunk 16: one warp, one 16x16 C tile (DQK 8 zero-padded)
XLC_VARIANT(TinyStates16,
            xlc::device::MlstmChunkStatesConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 16, 16, 16, 32>);
XLC_VARIANT(TinyOutputs16,
            xlc::device::MlstmChunkOutputsConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 16, 16, 16, 16, 32>);
// chunk 32: two warps; two query blocks of 16 per chunk (causal key-block loop)
XLC_VARIANT(TinyStates32,
            xlc::device::MlstmChunkStatesConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 32, 32, 16, 64>);
XLC_VARIANT(TinyOutputs32,
            xlc::device::MlstmChunkOutputsConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 32, 16, 16, 16, 32>);
// chunk 32 with one 32-row query block and two warps
XLC_VARIANT(TinyOutputs32Wide,
            xlc::device::MlstmChunkOutputsConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 32, 32, 16, 16, 64>);
// sigmoid input gate, no normaliser
XLC_VARIANT(TinySigStates16,
            xlc::device::MlstmChunkStatesConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kSigmoid, xlc::device::Normalizer::kNone>, 16, 16, 16, 32>);
XLC_VARIANT(TinySigOutputs16,
            xlc::device::MlstmChunkOutputsConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kSigmoid, xlc::device::Normalizer::kNone>, 16, 16, 16, 16, 32>);
// bf16 gates and bf16 state C
XLC_VARIANT(TinyBf16States16,
            xlc::device::MlstmChunkStatesConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 16, 16, 16, 32>);
XLC_VARIANT(TinyBf16Outputs16,
            xlc::device::MlstmChunkOutputsConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 16, 16, 16, 16, 32>);
// training backward (four kernels), after the forward of the same cell and chunk
XLC_VARIANT(TinyBackward16,
            xlc::device::MlstmChunkBackwardConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 16, 16>);
XLC_VARIANT(TinyBackward32,
            xlc::device::MlstmChunkBackwardConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 32, 16>);
XLC_VARIANT(TinySigBackward16,
            xlc::device::MlstmChunkBackwardConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kSigmoid, xlc::device::Normalizer::kNone>, 16, 16>);
XLC_VARIANT(TinyBf16Backward16,
            xlc::device::MlstmChunkBackwardConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 16, 16>);
// fused form (state on chip, one launch): one warp per 16-row query strip
XLC_VARIANT(TinyFused16,
            xlc::device::MlstmChunkFusedConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 16, 16, 1>);
XLC_VARIANT(TinyFused32,
            xlc::device::MlstmChunkFusedConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 32, 16, 1>);
XLC_VARIANT(TinySigFused16,
            xlc::device::MlstmChunkFusedConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kSigmoid, xlc::device::Normalizer::kNone>, 16, 16, 1>);
XLC_VARIANT(TinyBf16Fused16,
            xlc::device::MlstmChunkFusedConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 16, 16, 1>);
// fused form with two warps per strip (split keys and DQK rows), DV 48 in tiles of 32 (partial)
XLC_VARIANT(SmallFused32,
            xlc::device::MlstmChunkFusedConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 2, 32, 48, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 32, 32, 2>);
// fused form with four warps per strip (16 warps), DV 48 in tiles of 32 (partial): the epilogue
// buffers live in the chunk's q/k/v stage
XLC_VARIANT(SmallFused64S4,
            xlc::device::MlstmChunkFusedConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 2, 64, 48, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 32, 4>);
// decode: one block per (b, head)
XLC_VARIANT(TinyDecode,
            xlc::device::MlstmDecodeConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 16, 32>);
// decode: two DV tiles per (b, head) (the last-block n/m write-back)
XLC_VARIANT(TinyDecodeSplit,
            xlc::device::MlstmDecodeConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 8, 64>);
XLC_VARIANT(TinySigDecode,
            xlc::device::MlstmDecodeConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 4, 8, 16, xlc::device::InputGate::kSigmoid, xlc::device::Normalizer::kNone>, 8, 64>);
XLC_VARIANT(TinyBf16Decode,
            xlc::device::MlstmDecodeConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, 4, 8, 16, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 8, 32>);

// ---- xLSTM 7B: NH 8, DQK 256, DV 512, D 4096, FFN 10944, chunk 64 and 128 ----
XLC_VARIANT(Embedding7B,
            xlc::device::EmbeddingConfig<__nv_bfloat16, 4096, 256>);
XLC_VARIANT(RmsNorm7B,
            xlc::device::RmsNormConfig<__nv_bfloat16, 4096, 256>);
XLC_VARIANT(EmbeddingBackward7B,
            xlc::device::EmbeddingBackwardConfig<__nv_bfloat16, 4096, 128, 64>);
XLC_VARIANT(NormGateBackward7B,
            xlc::device::NormGateBackwardConfig<__nv_bfloat16, 8, 512, 256, 16>);
XLC_VARIANT(SwigluBackward7B,
            xlc::device::SwigluBackwardConfig<__nv_bfloat16, 10944, 128>);
XLC_VARIANT(RmsNormBackward7B,
            xlc::device::RmsNormBackwardConfig<__nv_bfloat16, 4096, 256, 16>);
XLC_VARIANT(NormGate7B,
            xlc::device::NormGateConfig<__nv_bfloat16, 8, 512, 256>);
XLC_VARIANT(Swiglu7B,
            xlc::device::SwigluConfig<__nv_bfloat16, 10944, 256>);
XLC_VARIANT(States64,
            xlc::device::MlstmChunkStatesConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 64, 64, 128>);
XLC_VARIANT(Outputs64,
            xlc::device::MlstmChunkOutputsConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 64, 64, 64, 128>);
XLC_VARIANT(States128,
            xlc::device::MlstmChunkStatesConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 128, 64, 64, 128>);
XLC_VARIANT(Outputs128,
            xlc::device::MlstmChunkOutputsConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 128, 64, 128, 64, 128>);
// training backward at the 7B head: chunk 64 in slices of 64; chunk 128 in slices of 16 (what
// xlc-assign-tile-configs picks: slices of 32 need 233 KB of shared memory there)
XLC_VARIANT(Backward64,
            xlc::device::MlstmChunkBackwardConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 64>);
XLC_VARIANT(SigBackward128,
            xlc::device::MlstmChunkBackwardConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kSigmoid, xlc::device::Normalizer::kNone>, 128, 16>);
// Tiling alternatives timed by kernel_bench (wider DV tiles, longer chunks, 128-row query blocks)
XLC_VARIANT(Outputs64W,
            xlc::device::MlstmChunkOutputsConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 64, 128, 64, 128>);
XLC_VARIANT(States128W,
            xlc::device::MlstmChunkStatesConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 128, 64, 128, 128>);
XLC_VARIANT(States128K,
            xlc::device::MlstmChunkStatesConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 128, 128, 64, 256>);
XLC_VARIANT(States128F,
            xlc::device::MlstmChunkStatesConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 128, 256, 64, 256>);
XLC_VARIANT(Outputs128Q,
            xlc::device::MlstmChunkOutputsConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 128, 128, 128, 64, 256>);
XLC_VARIANT(States256,
            xlc::device::MlstmChunkStatesConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 256, 64, 64, 128>);
XLC_VARIANT(Outputs256,
            xlc::device::MlstmChunkOutputsConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 256, 64, 128, 64, 128>);
// mLSTMsig (TFLA's fastest 7B variant)
XLC_VARIANT(SigStates128,
            xlc::device::MlstmChunkStatesConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kSigmoid, xlc::device::Normalizer::kNone>, 128, 64, 64, 128>);
XLC_VARIANT(SigOutputs128,
            xlc::device::MlstmChunkOutputsConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kSigmoid, xlc::device::Normalizer::kNone>, 128, 64, 128, 64, 128>);
// bf16 gates and bf16 state
XLC_VARIANT(Bf16States64,
            xlc::device::MlstmChunkStatesConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 64, 64, 128>);
XLC_VARIANT(Bf16Outputs64,
            xlc::device::MlstmChunkOutputsConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 64, 64, 64, 128>);
// fused form at the 7B head: chunk 64, DV tiles of 64 (the default) or 32 (twice the blocks), two
// or four warps per query strip
XLC_VARIANT(Fused64,
            xlc::device::MlstmChunkFusedConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 64, 2>);
XLC_VARIANT(Fused64T32,
            xlc::device::MlstmChunkFusedConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 32, 2>);
XLC_VARIANT(Fused64S4,
            xlc::device::MlstmChunkFusedConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 64, 4>);
XLC_VARIANT(Fused64T32S4,
            xlc::device::MlstmChunkFusedConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 32, 4>);
XLC_VARIANT(SigFused64,
            xlc::device::MlstmChunkFusedConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kSigmoid, xlc::device::Normalizer::kNone>, 64, 64, 2>);
XLC_VARIANT(Bf16Fused64,
            xlc::device::MlstmChunkFusedConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 64, 2>);
XLC_VARIANT(Decode7B,
            xlc::device::MlstmDecodeConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 256>);
XLC_VARIANT(Decode7B32,
            xlc::device::MlstmDecodeConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, float, float, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 32, 128>);
XLC_VARIANT(Bf16Decode7B,
            xlc::device::MlstmDecodeConfig<xlc::device::MlstmCellConfig<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, 8, 256, 512, xlc::device::InputGate::kExp, xlc::device::Normalizer::kMaxAbs>, 64, 128>);

} // namespace xlc::test::variants

#endif // XLC_TEST_GPU_HARNESS_VARIANTS_H
