//===- CpuChunkwise.cpp - The chunkwise mLSTM form on the CPU -------------===//
//
// The two halves of the chunkwise cell exactly as the GPU splits them (mlstm_chunkwise.cuh), so
// the CPU backend fills the same chunk-state workspaces the GPU's first kernel does (backward
// kernels will read them) and its second half reads only those workspaces; likewise the
// per-chunk records of the scores kernel and the state pass that reads them. Gate scalars are
// carried in double, matrix work in fp32 with fp32 accumulators.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cpu/CpuOps.h"

#include "runtime/exec/cpu/ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace xlc::exec::cpu {
namespace {

double logSigmoid(double x) {
  return x >= 0.0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}

/// The log-space gates of rows [row0, row0 + len) of one head: lf (forget) and ig (input).
void chunkGates(const MlstmCell &cell, std::int64_t row0, std::int64_t len, std::int64_t hd,
                std::vector<double> &lf, std::vector<double> &ig) {
  lf.resize(static_cast<std::size_t>(len));
  ig.resize(static_cast<std::size_t>(len));
  for (std::int64_t j = 0; j < len; ++j) {
    double iPre = cell.igate.row(row0 + j)[hd], fPre = cell.fgate.row(row0 + j)[hd];
    if (cell.gateSoftCap > 0.0) {
      iPre = cell.gateSoftCap * std::tanh(iPre / cell.gateSoftCap);
      fPre = cell.gateSoftCap * std::tanh(fPre / cell.gateSoftCap);
    }
    if (cell.resets && cell.resets[row0 + j])
      fPre = kResetForgetGate;
    lf[j] = logSigmoid(fPre);
    ig[j] = cell.inputGate == InputGate::Exp ? iPre : logSigmoid(iPre);
  }
}

std::int64_t numChunks(const MlstmChunkwise &op) {
  return (op.cell.seq + op.chunk - 1) / op.chunk;
}

/// C' = decay·C + Σ_j weight_j k_j v_jᵀ and n' = decay·n + Σ_j weight_j k_j over the chunk's
/// rows [row0, row0 + len) of head hd (cNext, nNext may be cPrev, nPrev: the update is in place
/// element by element).
void chunkStateUpdate(const MlstmCell &cell, std::int64_t row0, std::int64_t len,
                      std::int64_t hd, const float *weight, float decay, const float *cPrev,
                      const float *nPrev, float *cNext, float *nNext) {
  const std::int64_t dqk = cell.dqk, dv = cell.dv;
  for (std::int64_t d = 0; d < dqk; ++d) {
    float nd = decay * nPrev[d];
    float *row = cNext + d * dv;
    const float *prev = cPrev + d * dv;
    for (std::int64_t e = 0; e < dv; ++e)
      row[e] = decay * prev[e];
    for (std::int64_t j = 0; j < len; ++j) {
      const float kd = weight[j] * cell.k.row(row0 + j)[hd * dqk + d];
      nd += kd;
      const float *__restrict v = cell.v.row(row0 + j) + hd * dv;
      for (std::int64_t e = 0; e < dv; ++e)
        row[e] += kd * v[e];
    }
    nNext[d] = nd;
  }
}

/// Offsets into one record's gate vectors (MlstmChunkRecord in mlstm_chunk_scores.cuh).
struct RecordLayout {
  std::int64_t L;
  std::int64_t p() const { return L * L; }
  std::int64_t g() const { return 4 * L + 4; }
  std::int64_t rowMax() const { return 0; }
  std::int64_t rowCum() const { return L; }
  std::int64_t rowSum() const { return 2 * L; }
  std::int64_t keyLog() const { return 3 * L; }
  std::int64_t sum() const { return 4 * L; }
  std::int64_t keyMax() const { return 4 * L + 1; }
};

/// The magnitude factor of the readout: h = num · outputFactor(den, m_t).
float outputFactor(const MlstmCell &cell, double den, double mt) {
  if (cell.normalizer == Normalizer::MaxAbs)
    return static_cast<float>(1.0 / (std::max(std::abs(den), std::exp(-mt)) + cell.eps));
  return static_cast<float>(std::exp(mt));
}

} // namespace

void mlstmChunkStates(ThreadPool &pool, const MlstmChunkwise &op) {
  const MlstmCell &cell = op.cell;
  const std::int64_t pairs = cell.batch * cell.numHeads;
  if (pairs == 0 || cell.seq == 0)
    return;
  const std::int64_t dqk = cell.dqk, dv = cell.dv, nh = cell.numHeads, L = op.chunk;
  const std::int64_t nc = numChunks(op);

  pool.parallelFor(static_cast<std::size_t>(pairs), [&](std::size_t task) {
    const std::int64_t pair = static_cast<std::int64_t>(task);
    const std::int64_t b = pair / nh, hd = pair % nh;
    float *wsC = op.wsC + pair * (nc + 1) * dqk * dv;
    float *wsN = op.wsN + pair * (nc + 1) * dqk;
    float *wsM = op.wsM + pair * (nc + 1);
    // Slot 0: the initial state.
    std::copy_n(cell.C + pair * dqk * dv, dqk * dv, wsC);
    std::copy_n(cell.n + pair * dqk, dqk, wsN);
    wsM[0] = cell.m[pair];

    std::vector<double> lf, ig;
    std::vector<float> weight(static_cast<std::size_t>(L));
    for (std::int64_t c = 0; c < nc; ++c) {
      const std::int64_t len = std::min(L, cell.seq - c * L);
      const std::int64_t row0 = b * cell.seq + c * L;
      chunkGates(cell, row0, len, hd, lf, ig);
      // a_j from a suffix sum of lf (no difference of large cumulative sums).
      double g = 0.0, aMax = -INFINITY;
      std::vector<double> a(static_cast<std::size_t>(len));
      for (std::int64_t j = len - 1; j >= 0; --j) {
        a[j] = g + ig[j];
        g += lf[j];
        aMax = std::max(aMax, a[j]);
      }
      const double m = wsM[c];
      const float mNew = static_cast<float>(std::max(g + m, aMax));
      const float decay = static_cast<float>(std::exp(g + m - static_cast<double>(mNew)));
      for (std::int64_t j = 0; j < len; ++j)
        weight[j] = static_cast<float>(std::exp(a[j] - static_cast<double>(mNew)));

      chunkStateUpdate(cell, row0, len, hd, weight.data(), decay, wsC + c * dqk * dv,
                       wsN + c * dqk, wsC + (c + 1) * dqk * dv, wsN + (c + 1) * dqk);
      wsM[c + 1] = mNew;
    }
    std::copy_n(wsC + nc * dqk * dv, dqk * dv, cell.C + pair * dqk * dv);
    std::copy_n(wsN + nc * dqk, dqk, cell.n + pair * dqk);
  });
}

void mlstmChunkOutputs(ThreadPool &pool, const MlstmChunkwise &op) {
  const MlstmCell &cell = op.cell;
  const std::int64_t pairs = cell.batch * cell.numHeads;
  if (pairs == 0 || cell.seq == 0)
    return;
  const std::int64_t dqk = cell.dqk, dv = cell.dv, nh = cell.numHeads, L = op.chunk;
  const std::int64_t nc = numChunks(op);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dqk)));

  // Tasks: (pair, chunk); every chunk reads only its own workspace slot.
  pool.parallelFor(static_cast<std::size_t>(pairs * nc), [&](std::size_t task) {
    const std::int64_t pair = static_cast<std::int64_t>(task) / nc;
    const std::int64_t c = static_cast<std::int64_t>(task) % nc;
    const std::int64_t b = pair / nh, hd = pair % nh;
    const std::int64_t len = std::min(L, cell.seq - c * L);
    const std::int64_t row0 = b * cell.seq + c * L;
    const float *C = op.wsC + (pair * (nc + 1) + c) * dqk * dv;
    const float *n = op.wsN + (pair * (nc + 1) + c) * dqk;
    const double m = op.wsM[pair * (nc + 1) + c];

    std::vector<double> lf, ig;
    chunkGates(cell, row0, len, hd, lf, ig);
    std::vector<double> u(static_cast<std::size_t>(len)), bCum(static_cast<std::size_t>(len));
    double run = 0.0;
    for (std::int64_t j = 0; j < len; ++j) {
      run += lf[j];
      bCum[j] = run;
      u[j] = ig[j] - run;
    }
    std::vector<float> qHat(static_cast<std::size_t>(dqk)), num(static_cast<std::size_t>(dv));
    double mMax = m; // running max_{j≤t} u_j together with m
    for (std::int64_t t = 0; t < len; ++t) {
      mMax = std::max(mMax, u[t]);
      const double bigM = mMax;
      const float *q = cell.q.row(row0 + t) + hd * dqk;
      for (std::int64_t d = 0; d < dqk; ++d)
        qHat[d] = q[d] * scale;
      // Inter-chunk part: β_t (q̂ᵀC, q̂ᵀn).
      const float beta = static_cast<float>(std::exp(m - bigM));
      std::fill(num.begin(), num.end(), 0.0f);
      double den = 0.0;
      for (std::int64_t d = 0; d < dqk; ++d) {
        const float qd = qHat[d];
        den += static_cast<double>(qd) * n[d];
        const float *__restrict row = C + d * dv;
        for (std::int64_t e = 0; e < dv; ++e)
          num[e] += qd * row[e];
      }
      den *= beta;
      for (std::int64_t e = 0; e < dv; ++e)
        num[e] *= beta;
      // Intra-chunk part: Σ_{j≤t} D̄_tj (q̂ᵀk_j) (v_j, 1).
      for (std::int64_t j = 0; j <= t; ++j) {
        const float *k = cell.k.row(row0 + j) + hd * dqk;
        float s = 0.0f;
        for (std::int64_t d = 0; d < dqk; ++d)
          s += qHat[d] * k[d];
        const float p = static_cast<float>(std::exp(u[j] - bigM)) * s;
        den += p;
        const float *__restrict v = cell.v.row(row0 + j) + hd * dv;
        for (std::int64_t e = 0; e < dv; ++e)
          num[e] += p * v[e];
      }
      const double mt = bCum[t] + bigM;
      const float factor = outputFactor(cell, den, mt);
      float *h = cell.h + (row0 + t) * nh * dv + hd * dv;
      for (std::int64_t e = 0; e < dv; ++e)
        h[e] = num[e] * factor;
    }
  });
  for (std::int64_t pair = 0; pair < pairs; ++pair)
    cell.m[pair] = op.wsM[pair * (nc + 1) + nc];
}

void mlstmChunkScores(ThreadPool &pool, const MlstmChunkRecords &op) {
  const MlstmCell &cell = op.cell;
  const std::int64_t pairs = cell.batch * cell.numHeads;
  const std::int64_t L = op.chunk, nc = (cell.seq + L - 1) / L;
  if (pairs == 0 || nc == 0)
    return;
  const std::int64_t dqk = cell.dqk, nh = cell.numHeads;
  const RecordLayout rec{L};
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dqk)));
  pool.parallelFor(static_cast<std::size_t>(pairs * nc), [&](std::size_t task) {
    const std::int64_t r = static_cast<std::int64_t>(task);
    const std::int64_t pair = r / nc, c = r % nc;
    const std::int64_t b = pair / nh, hd = pair % nh;
    const std::int64_t len = std::min(L, cell.seq - c * L);
    const std::int64_t row0 = b * cell.seq + c * L;
    float *P = op.wsP + r * rec.p();
    float *G = op.wsG + r * rec.g();
    std::fill_n(P, rec.p(), 0.0f);
    std::fill_n(G, rec.g(), 0.0f);
    std::vector<double> lf, ig;
    chunkGates(cell, row0, len, hd, lf, ig);
    std::vector<double> u(static_cast<std::size_t>(len)), pMax(static_cast<std::size_t>(len));
    double cum = 0.0, runMax = -INFINITY;
    for (std::int64_t t = 0; t < len; ++t) {
      cum += lf[t];
      u[t] = ig[t] - cum;
      runMax = std::max(runMax, u[t]);
      pMax[t] = runMax;
      G[rec.rowCum() + t] = static_cast<float>(cum);
      G[rec.rowMax() + t] = static_cast<float>(runMax);
    }
    double suffix = 0.0, aMax = -INFINITY;
    for (std::int64_t j = L - 1; j >= 0; --j) {
      if (j >= len) {
        G[rec.keyLog() + j] = -INFINITY;
        continue;
      }
      const double a = suffix + ig[j];
      aMax = std::max(aMax, a);
      G[rec.keyLog() + j] = static_cast<float>(a);
      suffix += lf[j];
    }
    G[rec.sum()] = static_cast<float>(suffix);
    G[rec.keyMax()] = static_cast<float>(aMax);
    for (std::int64_t t = 0; t < len; ++t) {
      const float *q = cell.q.row(row0 + t) + hd * dqk;
      double sigma = 0.0;
      for (std::int64_t j = 0; j <= t; ++j) {
        const float *k = cell.k.row(row0 + j) + hd * dqk;
        float s = 0.0f;
        for (std::int64_t d = 0; d < dqk; ++d)
          s += q[d] * k[d];
        const float pv = s * scale * static_cast<float>(std::exp(u[j] - pMax[t]));
        P[t * L + j] = pv;
        sigma += pv;
      }
      G[rec.rowSum() + t] = static_cast<float>(sigma);
    }
  });
}

void mlstmChunkStatePass(ThreadPool &pool, const MlstmChunkRecords &op) {
  const MlstmCell &cell = op.cell;
  const std::int64_t pairs = cell.batch * cell.numHeads;
  const std::int64_t L = op.chunk, nc = (cell.seq + L - 1) / L;
  if (pairs == 0 || nc == 0)
    return;
  const std::int64_t dqk = cell.dqk, dv = cell.dv, nh = cell.numHeads;
  const RecordLayout rec{L};
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dqk)));
  pool.parallelFor(static_cast<std::size_t>(pairs), [&](std::size_t task) {
    const std::int64_t pair = static_cast<std::int64_t>(task);
    const std::int64_t b = pair / nh, hd = pair % nh;
    float *C = cell.C + pair * dqk * dv;
    float *n = cell.n + pair * dqk;
    double m = cell.m[pair];
    std::vector<float> num(static_cast<std::size_t>(dv)), weight(static_cast<std::size_t>(L));
    for (std::int64_t c = 0; c < nc; ++c) {
      const std::int64_t r = pair * nc + c;
      const float *P = op.wsP + r * rec.p();
      const float *G = op.wsG + r * rec.g();
      const std::int64_t len = std::min(L, cell.seq - c * L);
      const std::int64_t row0 = b * cell.seq + c * L;
      // Outputs from the chunk-start state.
      for (std::int64_t t = 0; t < len; ++t) {
        const double pt = G[rec.rowMax() + t];
        const double bigM = std::max(m, pt);
        const float beta = static_cast<float>(std::exp(m - bigM));
        const float rho = static_cast<float>(std::exp(pt - bigM));
        const float *q = cell.q.row(row0 + t) + hd * dqk;
        std::fill(num.begin(), num.end(), 0.0f);
        double qn = 0.0;
        for (std::int64_t d = 0; d < dqk; ++d) {
          const float qd = q[d] * scale;
          qn += static_cast<double>(qd) * n[d];
          const float *__restrict row = C + d * dv;
          for (std::int64_t e = 0; e < dv; ++e)
            num[e] += qd * row[e];
        }
        for (std::int64_t e = 0; e < dv; ++e)
          num[e] *= beta;
        for (std::int64_t j = 0; j <= t; ++j) {
          const float pv = rho * P[t * L + j];
          const float *__restrict v = cell.v.row(row0 + j) + hd * dv;
          for (std::int64_t e = 0; e < dv; ++e)
            num[e] += pv * v[e];
        }
        const double den = beta * qn + static_cast<double>(rho) * G[rec.rowSum() + t];
        const float factor = outputFactor(cell, den, G[rec.rowCum() + t] + bigM);
        float *h = cell.h + (row0 + t) * nh * dv + hd * dv;
        for (std::int64_t e = 0; e < dv; ++e)
          h[e] = num[e] * factor;
      }
      // The state after the chunk.
      const double g = G[rec.sum()];
      const double mNew = std::max(g + m, static_cast<double>(G[rec.keyMax()]));
      const float decay = static_cast<float>(std::exp(g + m - mNew));
      for (std::int64_t j = 0; j < len; ++j)
        weight[j] = static_cast<float>(std::exp(G[rec.keyLog() + j] - mNew));
      chunkStateUpdate(cell, row0, len, hd, weight.data(), decay, C, n, C, n);
      m = mNew;
    }
    cell.m[pair] = static_cast<float>(m);
  });
}

} // namespace xlc::exec::cpu
