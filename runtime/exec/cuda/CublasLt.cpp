//===- CublasLt.cpp - GEMMs with epilogues through cuBLASLt ---------------===//

#include "runtime/exec/cuda/CublasLt.h"

#include "runtime/support/Error.h"

#include <cstdlib>

#ifndef XLC_CUDA_TOOLKIT_LIBRARY_DIR
#define XLC_CUDA_TOOLKIT_LIBRARY_DIR ""
#endif

namespace xlc::exec {
namespace art = xlc::artifact;

namespace {

std::vector<std::string> libraryCandidates() {
  std::vector<std::string> names;
  if (const char *override = std::getenv("XLC_CUBLASLT_LIBRARY"); override != nullptr && *override)
    names.emplace_back(override);
  names.emplace_back("libcublasLt.so.13");
  names.emplace_back("libcublasLt.so");
  for (std::string dir : {std::string(XLC_CUDA_TOOLKIT_LIBRARY_DIR),
                          std::string("/usr/local/cuda/lib64")})
    if (!dir.empty())
      names.push_back(dir + "/libcublasLt.so.13");
  return names;
}

cudaDataType_t cudaType(art::DType dtype, const std::string &what) {
  switch (dtype) {
  case art::DType::BF16:
    return CUDA_R_16BF;
  case art::DType::F16:
    return CUDA_R_16F;
  case art::DType::F32:
    return CUDA_R_32F;
  default:
    fail("{}: cuBLASLt GEMMs take f32, bf16 or f16 operands, not {}", what,
         art::dtypeName(dtype));
  }
}

} // namespace

/// The descriptors and the chosen algorithm of one GEMM shape.
struct CublasLt::Plan {
  const CublasLtApi *api = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t w = nullptr, a = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (d)
      api->cublasLtMatrixLayoutDestroy(d);
    if (c)
      api->cublasLtMatrixLayoutDestroy(c);
    if (a)
      api->cublasLtMatrixLayoutDestroy(a);
    if (w)
      api->cublasLtMatrixLayoutDestroy(w);
    if (desc)
      api->cublasLtMatmulDescDestroy(desc);
  }
};

CublasLt::CublasLt(std::size_t workspaceBytes) : plans_(kMaxPlans) {
  library_ = cuda::DynamicLibrary::open(libraryCandidates(), "cuBLASLt");
#define XLC_CUBLASLT_SYMBOL(name)                                                              \
  {                                                                                            \
    void *address = library_.symbol(#name);                                                    \
    check(address != nullptr, "cuBLASLt library {} does not export {}", library_.path(),       \
          #name);                                                                              \
    api_.name = reinterpret_cast<decltype(api_.name)>(address);                                \
  }
#include "runtime/exec/cuda/CublasLtSymbols.inc"
#undef XLC_CUBLASLT_SYMBOL
  // The workspace first: if it cannot be allocated, no handle is left behind.
  workspace_ = cuda::DeviceBuffer(workspaceBytes);
  checkStatus(api_.cublasLtCreate(&handle_), "cublasLtCreate", "cuBLASLt");
}

CublasLt::~CublasLt() {
  plans_.clear();
  if (handle_)
    api_.cublasLtDestroy(handle_);
}

std::string CublasLt::description() const {
  return fmt::format("cuBLASLt {} ({})", api_.cublasLtGetVersion(), library_.path());
}

std::size_t CublasLt::version() const { return api_.cublasLtGetVersion(); }

void CublasLt::checkStatus(cublasStatus_t status, const char *call,
                           const std::string &what) const {
  if (status == CUBLAS_STATUS_SUCCESS)
    return;
  const char *text = api_.cublasLtGetStatusString ? api_.cublasLtGetStatusString(status) : nullptr;
  fail("{}: {} failed: {} ({})", what, call, text ? text : "cublasStatus_t",
       static_cast<int>(status));
}

CublasLt::Plan &CublasLt::plan(const GemmShape &shape, const std::string &what) {
  if (std::unique_ptr<Plan> *cached = plans_.find(shape))
    return **cached;
  auto p = std::make_unique<Plan>();
  p->api = &api_;
  const cudaDataType_t ab = cudaType(shape.ab, what), d = cudaType(shape.d, what);
  const auto m = static_cast<std::uint64_t>(shape.m), n = static_cast<std::uint64_t>(shape.n),
             k = static_cast<std::uint64_t>(shape.k);
  checkStatus(api_.cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
              "cublasLtMatmulDescCreate", what);
  // cuBLASLt's first operand is the artifact's B (W), its second the artifact's A.
  const cublasOperation_t opW = shape.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opA = shape.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  checkStatus(api_.cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opW,
                                                  sizeof(opW)),
              "cublasLtMatmulDescSetAttribute(TRANSA)", what);
  checkStatus(api_.cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opA,
                                                  sizeof(opA)),
              "cublasLtMatmulDescSetAttribute(TRANSB)", what);
  if (shape.epilogue == art::Epilogue::Bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    checkStatus(api_.cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                    &epilogue, sizeof(epilogue)),
                "cublasLtMatmulDescSetAttribute(EPILOGUE)", what);
    const cudaDataType_t biasType = cudaType(shape.bias, what);
    checkStatus(api_.cublasLtMatmulDescSetAttribute(
                    p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &biasType, sizeof(biasType)),
                "cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)", what);
  }
  // Column-major views of the row-major buffers (see the header).
  if (shape.transB)
    checkStatus(api_.cublasLtMatrixLayoutCreate(&p->w, ab, k, n, static_cast<int64_t>(k)),
                "cublasLtMatrixLayoutCreate(W)", what);
  else
    checkStatus(api_.cublasLtMatrixLayoutCreate(&p->w, ab, n, k, static_cast<int64_t>(n)),
                "cublasLtMatrixLayoutCreate(W)", what);
  if (shape.transA)
    checkStatus(api_.cublasLtMatrixLayoutCreate(&p->a, ab, m, k, static_cast<int64_t>(m)),
                "cublasLtMatrixLayoutCreate(A)", what);
  else
    checkStatus(api_.cublasLtMatrixLayoutCreate(&p->a, ab, k, m,
                                                static_cast<int64_t>(shape.lda ? shape.lda : k)),
                "cublasLtMatrixLayoutCreate(A)", what);
  checkStatus(api_.cublasLtMatrixLayoutCreate(&p->c, d, n, m, static_cast<int64_t>(n)),
              "cublasLtMatrixLayoutCreate(C)", what);
  checkStatus(api_.cublasLtMatrixLayoutCreate(&p->d, d, n, m, static_cast<int64_t>(n)),
              "cublasLtMatrixLayoutCreate(D)", what);

  cublasLtMatmulPreference_t preference = nullptr;
  checkStatus(api_.cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate",
              what);
  struct DestroyPreference {
    const CublasLtApi &api;
    cublasLtMatmulPreference_t p;
    ~DestroyPreference() { api.cublasLtMatmulPreferenceDestroy(p); }
  } destroy{api_, preference};
  const std::uint64_t workspaceBytes = workspace_.bytes();
  checkStatus(api_.cublasLtMatmulPreferenceSetAttribute(preference,
                                                        CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                        &workspaceBytes, sizeof(workspaceBytes)),
              "cublasLtMatmulPreferenceSetAttribute", what);
  if (shape.aAlignment != 0) // cuBLASLt's second operand is the artifact's A
    checkStatus(api_.cublasLtMatmulPreferenceSetAttribute(
                    preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &shape.aAlignment,
                    sizeof(shape.aAlignment)),
                "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_B_BYTES)", what);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  checkStatus(api_.cublasLtMatmulAlgoGetHeuristic(handle_, p->desc, p->w, p->a, p->c, p->d,
                                                  preference, 1, &result, &found),
              "cublasLtMatmulAlgoGetHeuristic", what);
  check(found > 0 && result.state == CUBLAS_STATUS_SUCCESS,
        "{}: cuBLASLt has no algorithm for D[{}, {}] {} op(A)·op(B) with k = {} (A{}, B{}; {} "
        "operands, {} output, epilogue {})",
        what, m, n, shape.accumulate ? "+=" : "=", k, shape.transA ? "ᵀ" : "",
        shape.transB ? "ᵀ" : "", art::dtypeName(shape.ab), art::dtypeName(shape.d),
        art::epilogueName(shape.epilogue));
  p->algo = result.algo;
  // May evict the least recently used plan (its descriptors are destroyed with it).
  return *plans_.insert(shape, std::move(p));
}

void CublasLt::gemm(const GemmShape &shape, CUdeviceptr a, CUdeviceptr w, CUdeviceptr c,
                    CUdeviceptr d, CUstream stream, const std::string &what) {
  Plan &p = plan(shape, what);
  if (shape.epilogue == art::Epilogue::Bias) {
    void *bias = reinterpret_cast<void *>(static_cast<uintptr_t>(c));
    checkStatus(api_.cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                    &bias, sizeof(bias)),
                "cublasLtMatmulDescSetAttribute(BIAS_POINTER)", what);
  }
  const float alpha = 1.0f;
  const bool addsC = shape.epilogue == art::Epilogue::ResidualAdd || shape.accumulate;
  const float beta = addsC ? 1.0f : 0.0f;
  auto ptr = [](CUdeviceptr x) { return reinterpret_cast<void *>(static_cast<uintptr_t>(x)); };
  // With beta = 0 cuBLASLt does not read C; pass D so the pointer is valid either way.
  // Accumulating is the residual form with C = D.
  void *cPtr = shape.epilogue == art::Epilogue::ResidualAdd ? ptr(c) : ptr(d);
  checkStatus(api_.cublasLtMatmul(handle_, p.desc, &alpha, ptr(w), p.w, ptr(a), p.a, &beta, cPtr,
                                  p.c, ptr(d), p.d, &p.algo, workspace_.pointer(),
                                  workspace_.bytes(), reinterpret_cast<cudaStream_t>(stream)),
              "cublasLtMatmul", what);
}

} // namespace xlc::exec
