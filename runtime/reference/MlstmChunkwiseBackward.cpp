//===- MlstmChunkwiseBackward.cpp - The cell's exact derivative, chunk by chunk -===//
//
// The spec of the chunkwise backward kernels: the same derivative as mlstmRecurrentBackward,
// organised as the kernels organise it (MlstmCellBackward.h, mlstmChunkwiseBackward). Plain loops
// over (t, j) pairs inside a chunk; indices are chunk-local (0-based) below.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/MlstmCellBackward.h"

#include "runtime/reference/BlockOps.h"
#include "runtime/reference/MlstmCellDetail.h"
#include "runtime/support/Error.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace xlc::ref {
namespace {

/// Rows [begin, begin + len) of x ([S, D] or [S]).
Tensor rowSlice(const Tensor &x, std::int64_t begin, std::int64_t len) {
  const std::int64_t width = x.rank() == 1 ? 1 : x.dim(1);
  Shape shape = x.shape;
  shape[0] = len;
  return Tensor(shape, std::vector<double>(x.data.begin() + begin * width,
                                           x.data.begin() + (begin + len) * width));
}

/// The chunk-local gate quantities of §3.1/§3.3 (as mlstmChunkwise computes them) and which term
/// won each max.
struct ChunkGates {
  std::vector<double> lf, ig, b, a;
  double g = 0.0;
  std::vector<std::vector<double>> logD; // logD[t][j], j ≤ t
  std::vector<double> mTok;              // m_t (the token's stabiliser)
  std::vector<std::int64_t> tokArg;      // −1: b_t + m_{k−1} won, else the winning j
  double mEnd = 0.0;                     // m_k
  std::int64_t endArg = -1;              // −1: g + m_{k−1} won, else the winning j
};

ChunkGates chunkGates(const Tensor &iPre, const Tensor &fPre, std::int64_t start,
                      std::int64_t len, double mPrev, InputGate gate) {
  ChunkGates c;
  c.lf.resize(len), c.ig.resize(len), c.b.resize(len), c.a.resize(len);
  for (std::int64_t j = 0; j < len; ++j) {
    c.lf[j] = logSigmoid(fPre.data[start + j]);
    c.ig[j] = detail::logInputGate(iPre.data[start + j], gate);
    c.b[j] = (j ? c.b[j - 1] : 0.0) + c.lf[j];
  }
  c.g = c.b[len - 1];
  double reverse = 0.0;
  for (std::int64_t j = len - 1; j >= 0; --j) {
    c.a[j] = reverse + c.ig[j];
    reverse += c.lf[j];
  }
  c.logD.assign(len, {});
  c.mTok.resize(len);
  c.tokArg.assign(len, -1);
  for (std::int64_t t = 0; t < len; ++t) {
    c.logD[t].resize(t + 1);
    double acc = 0.0;
    for (std::int64_t j = t; j >= 0; --j) { // summed from t down, as the forward does
      c.logD[t][j] = acc + c.ig[j];
      acc += c.lf[j];
    }
    double best = c.b[t] + mPrev;
    for (std::int64_t j = 0; j <= t; ++j)
      if (best < c.logD[t][j]) // std::max keeps the earlier term on ties
        best = c.logD[t][j], c.tokArg[t] = j;
    c.mTok[t] = best;
  }
  c.mEnd = c.g + mPrev;
  for (std::int64_t j = 0; j < len; ++j)
    if (c.mEnd < c.a[j])
      c.mEnd = c.a[j], c.endArg = j;
  return c;
}

} // namespace

MlstmHeadGrads mlstmChunkwiseBackward(const Tensor &q, const Tensor &k, const Tensor &v,
                                      const Tensor &iPre, const Tensor &fPre,
                                      const MlstmHeadState *initial, std::int64_t chunkSize,
                                      const MlstmCellAttrs &attrs, const Tensor &dh,
                                      const MlstmHeadState *dFinal) {
  const detail::HeadDims dims =
      detail::checkHeadInputs(q, k, v, iPre, fPre, initial, "chunkwise backward");
  check(chunkSize >= 1, "mLSTM chunkwise backward: chunk size must be >= 1, got {}", chunkSize);
  const std::int64_t S = dims.seq, DQK = dims.dqk, DV = dims.dv;
  checkShape(dh, {S, DV}, "mLSTM chunkwise backward dh");
  if (dFinal) {
    checkShape(dFinal->C, {DQK, DV}, "mLSTM chunkwise backward dC of the final state");
    checkShape(dFinal->n, {DQK}, "mLSTM chunkwise backward dn of the final state");
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(DQK));
  const bool maxAbs = attrs.normalizer == Normalizer::MaxAbs;

  // The state before every chunk, by the chunkwise forward (what the kernels save or recompute).
  std::vector<MlstmHeadState> before;
  before.push_back(initial ? *initial : MlstmHeadState::zeros(DQK, DV));
  for (std::int64_t start = 0; start < S; start += chunkSize) {
    const std::int64_t len = std::min(chunkSize, S - start);
    before.push_back(mlstmChunkwise(rowSlice(q, start, len), rowSlice(k, start, len),
                                    rowSlice(v, start, len), rowSlice(iPre, start, len),
                                    rowSlice(fPre, start, len), &before.back(), chunkSize, attrs)
                         .state);
  }

  MlstmHeadGrads grads{Tensor({S, DQK}), Tensor({S, DQK}), Tensor({S, DV}), Tensor({S}),
                       Tensor({S}), MlstmHeadState::zeros(DQK, DV)};
  Tensor dC({DQK, DV}), dn({DQK});
  double dm = 0.0;
  if (dFinal)
    dC = dFinal->C, dn = dFinal->n, dm = dFinal->m;

  const std::int64_t numChunks = static_cast<std::int64_t>(before.size()) - 1;
  for (std::int64_t c = numChunks - 1; c >= 0; --c) {
    const std::int64_t start = c * chunkSize, len = std::min(chunkSize, S - start);
    const MlstmHeadState &prev = before[c];
    const ChunkGates gt = chunkGates(iPre, fPre, start, len, prev.m, attrs.inputGate);
    auto Q = [&](std::int64_t t, std::int64_t d) { return q.data[(start + t) * DQK + d] * scale; };
    auto K = [&](std::int64_t j, std::int64_t d) { return k.data[(start + j) * DQK + d]; };
    auto V = [&](std::int64_t j, std::int64_t e) { return v.data[(start + j) * DV + e]; };
    double *dQ = &grads.q.data[start * DQK], *dK = &grads.k.data[start * DQK];
    double *dV = &grads.v.data[start * DV];

    std::vector<double> dB(len, 0.0), dIg(len, 0.0), dA(len, 0.0), dMTok(len, 0.0);
    double dG = 0.0, dMPrev = 0.0, dMEnd = dm;

    // State update C_k = d C_{k−1} + Σ_j ā_j k_j v_jᵀ (δC, δn: the gradient of C_k, n_k).
    const double decay = std::exp(gt.g + prev.m - gt.mEnd);
    double dDecay = 0.0;
    for (std::int64_t i = 0; i < DQK * DV; ++i)
      dDecay += dC.data[i] * prev.C.data[i];
    for (std::int64_t d = 0; d < DQK; ++d)
      dDecay += dn.data[d] * prev.n.data[d];
    for (std::int64_t j = 0; j < len; ++j) {
      const double abar = std::exp(gt.a[j] - gt.mEnd);
      double dAbar = 0.0;
      for (std::int64_t d = 0; d < DQK; ++d) {
        double cv = 0.0;
        for (std::int64_t e = 0; e < DV; ++e)
          cv += dC.data[d * DV + e] * V(j, e);
        dK[j * DQK + d] += abar * (cv + dn.data[d]);
        dAbar += K(j, d) * (cv + dn.data[d]);
      }
      for (std::int64_t e = 0; e < DV; ++e) {
        double ck = 0.0;
        for (std::int64_t d = 0; d < DQK; ++d)
          ck += dC.data[d * DV + e] * K(j, d);
        dV[j * DV + e] += abar * ck;
      }
      dA[j] += dAbar * abar;
      dMEnd -= dAbar * abar;
    }
    dG += dDecay * decay;
    dMPrev += dDecay * decay;
    dMEnd -= dDecay * decay;
    for (double &x : dC.data)
      x *= decay;
    for (double &x : dn.data)
      x *= decay;

    // Readout of every token of the chunk; δC, δn now accumulate the gradient of C_{k−1}, n_{k−1}.
    std::vector<double> num(DV), dNum(DV);
    for (std::int64_t t = 0; t < len; ++t) {
      const double m = gt.mTok[t];
      const double beta = std::exp(gt.b[t] + prev.m - m);
      std::vector<double> w(t + 1), s(t + 1); // w_tj and q̂_t·k_j
      for (std::int64_t j = 0; j <= t; ++j) {
        w[j] = std::exp(gt.logD[t][j] - m);
        s[j] = 0.0;
        for (std::int64_t d = 0; d < DQK; ++d)
          s[j] += Q(t, d) * K(j, d);
      }
      double qn = 0.0, den = 0.0;
      std::fill(num.begin(), num.end(), 0.0);
      for (std::int64_t d = 0; d < DQK; ++d) {
        qn += Q(t, d) * prev.n.data[d];
        for (std::int64_t e = 0; e < DV; ++e)
          num[e] += Q(t, d) * prev.C.data[d * DV + e];
      }
      for (std::int64_t e = 0; e < DV; ++e)
        num[e] *= beta;
      den = beta * qn;
      for (std::int64_t j = 0; j <= t; ++j) {
        den += w[j] * s[j];
        for (std::int64_t e = 0; e < DV; ++e)
          num[e] += w[j] * s[j] * V(j, e);
      }
      const double *dht = &dh.data[(start + t) * DV];
      double dDen = 0.0;
      if (maxAbs) {
        const double denom = std::max(std::abs(den), std::exp(-m));
        const double inv = 1.0 / (denom + attrs.eps);
        double dDenom = 0.0;
        for (std::int64_t e = 0; e < DV; ++e) {
          dNum[e] = dht[e] * inv;
          dDenom -= dht[e] * num[e] * inv * inv;
        }
        if (!(std::abs(den) < std::exp(-m)))
          dDen = den >= 0.0 ? dDenom : -dDenom;
        else
          dMTok[t] -= dDenom * std::exp(-m);
      } else {
        const double unstabilise = std::exp(m);
        for (std::int64_t e = 0; e < DV; ++e) {
          dNum[e] = dht[e] * unstabilise;
          dMTok[t] += dht[e] * num[e] * unstabilise;
        }
      }
      // Inter-chunk part β q̂ᵀC_{k−1}, β q̂ᵀn_{k−1}.
      double dBeta = qn * dDen;
      for (std::int64_t d = 0; d < DQK; ++d) {
        double cNum = 0.0;
        for (std::int64_t e = 0; e < DV; ++e) {
          cNum += prev.C.data[d * DV + e] * dNum[e];
          dC.data[d * DV + e] += beta * Q(t, d) * dNum[e];
        }
        dn.data[d] += beta * Q(t, d) * dDen;
        dQ[t * DQK + d] += beta * (cNum + dDen * prev.n.data[d]) * scale;
        dBeta += Q(t, d) * cNum;
      }
      // Intra-chunk part Σ_j w_tj s_tj (v_j, 1).
      for (std::int64_t j = 0; j <= t; ++j) {
        double vNum = dDen;
        for (std::int64_t e = 0; e < DV; ++e) {
          vNum += V(j, e) * dNum[e];
          dV[j * DV + e] += w[j] * s[j] * dNum[e];
        }
        for (std::int64_t d = 0; d < DQK; ++d) {
          dQ[t * DQK + d] += w[j] * vNum * K(j, d) * scale;
          dK[j * DQK + d] += w[j] * vNum * Q(t, d);
        }
        const double gw = w[j] * s[j] * vNum; // δw_tj · w_tj
        dB[t] += gw;
        dB[j] -= gw;
        dIg[j] += gw;
        dMTok[t] -= gw;
      }
      dB[t] += dBeta * beta;
      dMPrev += dBeta * beta;
      dMTok[t] -= dBeta * beta;
      // m_t = max(b_t + m_{k−1}, max_j logD_tj), logD_tj = b_t − b_j + ig_j.
      dB[t] += dMTok[t];
      if (gt.tokArg[t] < 0) {
        dMPrev += dMTok[t];
      } else {
        dB[gt.tokArg[t]] -= dMTok[t];
        dIg[gt.tokArg[t]] += dMTok[t];
      }
    }
    // m_k = max(g + m_{k−1}, max_j a_j).
    if (gt.endArg < 0) {
      dG += dMEnd;
      dMPrev += dMEnd;
    } else {
      dA[gt.endArg] += dMEnd;
    }
    // b_t = Σ_{s≤t} lf_s, g = b_L, a_j = Σ_{s>j} lf_s + ig_j.
    std::vector<double> dLf(len, 0.0);
    double suffixB = 0.0, prefixA = 0.0;
    for (std::int64_t s = len - 1; s >= 0; --s) {
      suffixB += dB[s];
      dLf[s] += suffixB + dG;
    }
    for (std::int64_t s = 0; s < len; ++s) {
      dLf[s] += prefixA; // Σ_{j<s} δa_j
      prefixA += dA[s];
      dIg[s] += dA[s];
    }
    for (std::int64_t j = 0; j < len; ++j) {
      grads.fPre.data[start + j] = dLf[j] * sigmoid(-fPre.data[start + j]);
      grads.iPre.data[start + j] = attrs.inputGate == InputGate::Exp
                                       ? dIg[j]
                                       : dIg[j] * sigmoid(-iPre.data[start + j]);
    }
    dm = dMPrev;
  }
  grads.initial = {std::move(dC), std::move(dn), dm};
  return grads;
}

} // namespace xlc::ref
