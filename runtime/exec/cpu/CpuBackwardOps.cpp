//===- CpuBackwardOps.cpp - fp32 gradients of the CPU backend's ops --------===//

#include "runtime/exec/cpu/CpuBackwardOps.h"

#include "runtime/exec/cpu/ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace xlc::exec::cpu {
namespace {

double sigmoid(double x) {
  if (x >= 0.0)
    return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

double logSigmoid(double x) {
  return x >= 0.0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}

/// Runs rowTask(r, partial) for every row, partial the [width] float64 accumulator of r's row
/// block, then adds the blocks' partials into out[width] in block order (file comment of the
/// header: deterministic for any thread count). out null: rowTask gets a scratch accumulator.
template <typename RowTask>
void rowsWithColumnSum(ThreadPool &pool, std::int64_t rows, std::int64_t width, float *out,
                       RowTask rowTask) {
  const std::int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  std::vector<double> partial(static_cast<std::size_t>(std::max<std::int64_t>(blocks, 1) * width));
  pool.parallelFor(static_cast<std::size_t>(blocks), [&](std::size_t b) {
    double *acc = width ? &partial[b * static_cast<std::size_t>(width)] : nullptr;
    const std::int64_t end = std::min(rows, static_cast<std::int64_t>(b + 1) * kRowBlock);
    for (std::int64_t r = static_cast<std::int64_t>(b) * kRowBlock; r < end; ++r)
      rowTask(r, acc);
  });
  if (!out)
    return;
  constexpr std::int64_t kCols = 256;
  pool.parallelFor(static_cast<std::size_t>((width + kCols - 1) / kCols), [&](std::size_t cb) {
    const std::int64_t c0 = static_cast<std::int64_t>(cb) * kCols;
    for (std::int64_t c = c0; c < std::min(width, c0 + kCols); ++c) {
      double sum = 0.0;
      for (std::int64_t b = 0; b < blocks; ++b)
        sum += partial[b * width + c];
      out[c] += static_cast<float>(sum);
    }
  });
}

} // namespace

void rmsNormBackward(ThreadPool &pool, View x, const float *weight, View dy, float *dx,
                     float *dw, std::int64_t rows, std::int64_t dim, double eps) {
  rowsWithColumnSum(pool, rows, dim, weight ? dw : nullptr, [&](std::int64_t r, double *acc) {
    const float *xr = x.row(r), *dyr = dy.row(r);
    double sumSq = 0.0, gx = 0.0;
    for (std::int64_t j = 0; j < dim; ++j) {
      const double g = static_cast<double>(dyr[j]) * (weight ? weight[j] : 1.0f);
      sumSq += static_cast<double>(xr[j]) * xr[j];
      gx += g * xr[j];
    }
    const double scale = 1.0 / std::sqrt(sumSq / static_cast<double>(dim) + eps);
    const double cubed = scale * scale * scale / static_cast<double>(dim);
    for (std::int64_t j = 0; j < dim; ++j) {
      const double g = static_cast<double>(dyr[j]) * (weight ? weight[j] : 1.0f);
      dx[r * dim + j] = static_cast<float>(scale * g - cubed * xr[j] * gx);
      acc[j] += static_cast<double>(dyr[j]) * xr[j] * scale;
    }
  });
}

void normGateBackward(ThreadPool &pool, View h, const float *weight, View o, View dout, float *dh,
                      float *dO, float *dw, std::int64_t rows, std::int64_t numHeads,
                      std::int64_t headDim, double eps) {
  const std::int64_t width = numHeads * headDim;
  rowsWithColumnSum(pool, rows, width, dw, [&](std::int64_t r, double *acc) {
    const float *hr = h.row(r), *orow = o.row(r), *dr = dout.row(r);
    std::vector<double> xhat(static_cast<std::size_t>(headDim)), g(static_cast<std::size_t>(headDim));
    for (std::int64_t hd = 0; hd < numHeads; ++hd) {
      const std::int64_t base = hd * headDim;
      double mean = 0.0, var = 0.0;
      for (std::int64_t j = 0; j < headDim; ++j)
        mean += hr[base + j];
      mean /= static_cast<double>(headDim);
      for (std::int64_t j = 0; j < headDim; ++j)
        var += (hr[base + j] - mean) * (hr[base + j] - mean);
      const double scale = 1.0 / std::sqrt(var / static_cast<double>(headDim) + eps);
      double gMean = 0.0, gxMean = 0.0;
      for (std::int64_t j = 0; j < headDim; ++j) {
        const std::int64_t c = base + j;
        xhat[j] = (hr[c] - mean) * scale;
        const double sg = sigmoid(orow[c]);
        const double y = xhat[j] * weight[c];
        dO[r * width + c] = static_cast<float>(dr[c] * y * sg * (1.0 - sg));
        const double dy = dr[c] * sg; // ∂L/∂(LN(h)·w)
        g[j] = dy * weight[c];
        gMean += g[j];
        gxMean += g[j] * xhat[j];
        acc[c] += dy * xhat[j];
      }
      gMean /= static_cast<double>(headDim);
      gxMean /= static_cast<double>(headDim);
      for (std::int64_t j = 0; j < headDim; ++j)
        dh[r * width + base + j] = static_cast<float>(scale * (g[j] - gMean - xhat[j] * gxMean));
    }
  });
}

void swigluBackward(ThreadPool &pool, View gate, View up, View dout, float *dgate, float *dup,
                    std::int64_t rows, std::int64_t dim) {
  rowsWithColumnSum(pool, rows, 0, nullptr, [&](std::int64_t r, double *) {
    const float *gr = gate.row(r), *ur = up.row(r), *dr = dout.row(r);
    for (std::int64_t j = 0; j < dim; ++j) {
      const double s = sigmoid(gr[j]);
      dgate[r * dim + j] = static_cast<float>(dr[j] * ur[j] * s * (1.0 + gr[j] * (1.0 - s)));
      dup[r * dim + j] = static_cast<float>(dr[j] * gr[j] * s);
    }
  });
}

std::int64_t embeddingBackward(ThreadPool &pool, const std::int32_t *tokens, View dy,
                               float *dtable, std::int64_t vocab, std::int64_t dim,
                               std::int64_t rows) {
  std::int64_t bad = 0;
  for (std::int64_t r = 0; r < rows && !bad; ++r)
    if (tokens[r] < 0 || tokens[r] >= vocab)
      bad = r + 1;
  constexpr std::int64_t kCols = 64;
  pool.parallelFor(static_cast<std::size_t>((dim + kCols - 1) / kCols), [&](std::size_t cb) {
    const std::int64_t c0 = static_cast<std::int64_t>(cb) * kCols, c1 = std::min(dim, c0 + kCols);
    for (std::int64_t r = 0; r < rows; ++r) {
      if (tokens[r] < 0 || tokens[r] >= vocab)
        continue;
      float *row = dtable + static_cast<std::int64_t>(tokens[r]) * dim;
      const float *d = dy.row(r);
      for (std::int64_t c = c0; c < c1; ++c)
        row[c] += d[c];
    }
  });
  return bad;
}

double crossEntropyBackward(ThreadPool &pool, float *z, const std::int32_t *targets,
                            std::int64_t rows, std::int64_t vocab, double cap, double gradScale) {
  std::vector<double> loss(static_cast<std::size_t>(rows), 0.0);
  pool.parallelFor(static_cast<std::size_t>(rows), [&](std::size_t ru) {
    const std::int64_t r = static_cast<std::int64_t>(ru);
    float *zr = z + r * vocab;
    const std::int32_t target = targets[r];
    if (target < 0) {
      std::fill(zr, zr + vocab, 0.0f);
      return;
    }
    std::vector<double> l(static_cast<std::size_t>(vocab));
    double top = -std::numeric_limits<double>::infinity();
    for (std::int64_t v = 0; v < vocab; ++v) {
      l[v] = cap > 0.0 ? cap * std::tanh(zr[v] / cap) : zr[v];
      top = std::max(top, l[v]);
    }
    double sum = 0.0;
    for (std::int64_t v = 0; v < vocab; ++v)
      sum += std::exp(l[v] - top);
    loss[ru] = top + std::log(sum) - l[target];
    for (std::int64_t v = 0; v < vocab; ++v) {
      double d = std::exp(l[v] - top) / sum - (v == target ? 1.0 : 0.0);
      if (cap > 0.0) {
        const double t = l[v] / cap;
        d *= 1.0 - t * t;
      }
      zr[v] = static_cast<float>(gradScale * d);
    }
  });
  double total = 0.0;
  for (double x : loss)
    total += x;
  return total;
}

//===----------------------------------------------------------------------===//
// mLSTM cell
//===----------------------------------------------------------------------===//

namespace {

/// One (b, head) pair's backward over its chunks, last to first (MlstmChunkwiseBackward.cpp, the
/// float64 reference of the same organisation, explains each term).
void cellBackwardPair(const MlstmCellBackward &op, std::int64_t b, std::int64_t hd) {
  const MlstmCell &cell = op.forward.cell;
  const std::int64_t NH = cell.numHeads, DQK = cell.dqk, DV = cell.dv, L = op.forward.chunk;
  const std::int64_t S = cell.seq, NC = (S + L - 1) / L, pair = b * NH + hd;
  const double scale = 1.0 / std::sqrt(static_cast<double>(DQK));
  const double cap = cell.gateSoftCap;
  const bool maxAbs = cell.normalizer == Normalizer::MaxAbs;
  auto row = [&](std::int64_t t) { return b * S + t; };
  auto Q = [&](std::int64_t t, std::int64_t d) { return cell.q.row(row(t))[hd * DQK + d] * scale; };
  auto K = [&](std::int64_t t, std::int64_t d) { return static_cast<double>(cell.k.row(row(t))[hd * DQK + d]); };
  auto V = [&](std::int64_t t, std::int64_t e) { return static_cast<double>(cell.v.row(row(t))[hd * DV + e]); };
  auto capped = [&](double x) { return cap > 0.0 ? cap * std::tanh(x / cap) : x; };
  auto capSlope = [&](double x) {
    if (cap <= 0.0)
      return 1.0;
    const double t = std::tanh(x / cap);
    return 1.0 - t * t;
  };
  const float *slotC = op.forward.wsC + pair * (NC + 1) * DQK * DV;
  const float *slotN = op.forward.wsN + pair * (NC + 1) * DQK;
  const float *slotM = op.forward.wsM + pair * (NC + 1);

  std::vector<double> dC(static_cast<std::size_t>(DQK * DV), 0.0), dn(static_cast<std::size_t>(DQK), 0.0);
  double dm = 0.0;
  if (op.dCf)
    for (std::int64_t i = 0; i < DQK * DV; ++i)
      dC[i] = op.dCf[pair * DQK * DV + i];
  if (op.dnf)
    for (std::int64_t d = 0; d < DQK; ++d)
      dn[d] = op.dnf[pair * DQK + d];
  if (op.dmf)
    dm = op.dmf[pair];

  // Per-pair accumulators of dq, dk, dv (rows of this pair only, so no other task touches them).
  std::vector<double> dq(static_cast<std::size_t>(S * DQK), 0.0), dk(static_cast<std::size_t>(S * DQK), 0.0),
      dvv(static_cast<std::size_t>(S * DV), 0.0);
  std::vector<double> num(static_cast<std::size_t>(DV)), dNum(static_cast<std::size_t>(DV));
  for (std::int64_t c = NC - 1; c >= 0; --c) {
    const std::int64_t start = c * L, len = std::min(L, S - start);
    const float *Cp = slotC + c * DQK * DV, *np = slotN + c * DQK;
    const double mPrev = slotM[c];
    // Gates of the chunk, as the forward computes them (double).
    std::vector<double> lf(len), ig(len), bb(len), aa(len), iRaw(len), fRaw(len);
    for (std::int64_t j = 0; j < len; ++j) {
      iRaw[j] = cell.igate.row(row(start + j))[hd];
      fRaw[j] = cell.fgate.row(row(start + j))[hd];
      lf[j] = logSigmoid(capped(fRaw[j]));
      const double ic = capped(iRaw[j]);
      ig[j] = cell.inputGate == InputGate::Exp ? ic : logSigmoid(ic);
      bb[j] = (j ? bb[j - 1] : 0.0) + lf[j];
    }
    const double g = bb[len - 1];
    double reverse = 0.0;
    for (std::int64_t j = len - 1; j >= 0; --j) {
      aa[j] = reverse + ig[j];
      reverse += lf[j];
    }
    double mEnd = g + mPrev;
    std::int64_t endArg = -1;
    for (std::int64_t j = 0; j < len; ++j)
      if (mEnd < aa[j])
        mEnd = aa[j], endArg = j;

    std::vector<double> dB(len, 0.0), dIg(len, 0.0), dA(len, 0.0);
    double dG = 0.0, dMPrev = 0.0, dMEnd = dm;

    // State update.
    const double decay = std::exp(g + mPrev - mEnd);
    double dDecay = 0.0;
    for (std::int64_t i = 0; i < DQK * DV; ++i)
      dDecay += dC[i] * Cp[i];
    for (std::int64_t d = 0; d < DQK; ++d)
      dDecay += dn[d] * np[d];
    for (std::int64_t j = 0; j < len; ++j) {
      const double abar = std::exp(aa[j] - mEnd);
      double dAbar = 0.0;
      for (std::int64_t d = 0; d < DQK; ++d) {
        double cv = 0.0;
        for (std::int64_t e = 0; e < DV; ++e)
          cv += dC[d * DV + e] * V(start + j, e);
        dk[(start + j) * DQK + d] += abar * (cv + dn[d]);
        dAbar += K(start + j, d) * (cv + dn[d]);
      }
      for (std::int64_t e = 0; e < DV; ++e) {
        double ck = 0.0;
        for (std::int64_t d = 0; d < DQK; ++d)
          ck += dC[d * DV + e] * K(start + j, d);
        dvv[(start + j) * DV + e] += abar * ck;
      }
      dA[j] += dAbar * abar;
      dMEnd -= dAbar * abar;
    }
    dG += dDecay * decay;
    dMPrev += dDecay * decay;
    dMEnd -= dDecay * decay;
    for (double &x : dC)
      x *= decay;
    for (double &x : dn)
      x *= decay;

    // Readouts.
    std::vector<double> logD(len), w(len), s(len);
    for (std::int64_t t = 0; t < len; ++t) {
      double acc = 0.0, m = bb[t] + mPrev;
      std::int64_t arg = -1;
      for (std::int64_t j = t; j >= 0; --j) {
        logD[j] = acc + ig[j];
        acc += lf[j];
      }
      for (std::int64_t j = 0; j <= t; ++j)
        if (m < logD[j])
          m = logD[j], arg = j;
      const double beta = std::exp(bb[t] + mPrev - m);
      for (std::int64_t j = 0; j <= t; ++j) {
        w[j] = std::exp(logD[j] - m);
        s[j] = 0.0;
        for (std::int64_t d = 0; d < DQK; ++d)
          s[j] += Q(start + t, d) * K(start + j, d);
      }
      double qn = 0.0;
      std::fill(num.begin(), num.end(), 0.0);
      for (std::int64_t d = 0; d < DQK; ++d) {
        qn += Q(start + t, d) * np[d];
        for (std::int64_t e = 0; e < DV; ++e)
          num[e] += Q(start + t, d) * Cp[d * DV + e];
      }
      double den = beta * qn;
      for (std::int64_t e = 0; e < DV; ++e)
        num[e] *= beta;
      for (std::int64_t j = 0; j <= t; ++j) {
        den += w[j] * s[j];
        for (std::int64_t e = 0; e < DV; ++e)
          num[e] += w[j] * s[j] * V(start + j, e);
      }
      const float *dht = op.dh.row(row(start + t)) + hd * DV;
      double dDen = 0.0, dMTok = 0.0;
      if (maxAbs) {
        const double denom = std::max(std::abs(den), std::exp(-m));
        const double inv = 1.0 / (denom + cell.eps);
        double dDenom = 0.0;
        for (std::int64_t e = 0; e < DV; ++e) {
          dNum[e] = dht[e] * inv;
          dDenom -= dht[e] * num[e] * inv * inv;
        }
        if (!(std::abs(den) < std::exp(-m)))
          dDen = den >= 0.0 ? dDenom : -dDenom;
        else
          dMTok -= dDenom * std::exp(-m);
      } else {
        const double unstabilise = std::exp(m);
        for (std::int64_t e = 0; e < DV; ++e) {
          dNum[e] = dht[e] * unstabilise;
          dMTok += dht[e] * num[e] * unstabilise;
        }
      }
      double dBeta = qn * dDen;
      for (std::int64_t d = 0; d < DQK; ++d) {
        double cNum = 0.0;
        for (std::int64_t e = 0; e < DV; ++e) {
          cNum += Cp[d * DV + e] * dNum[e];
          dC[d * DV + e] += beta * Q(start + t, d) * dNum[e];
        }
        dn[d] += beta * Q(start + t, d) * dDen;
        dq[(start + t) * DQK + d] += beta * (cNum + dDen * np[d]) * scale;
        dBeta += Q(start + t, d) * cNum;
      }
      for (std::int64_t j = 0; j <= t; ++j) {
        double vNum = dDen;
        for (std::int64_t e = 0; e < DV; ++e) {
          vNum += V(start + j, e) * dNum[e];
          dvv[(start + j) * DV + e] += w[j] * s[j] * dNum[e];
        }
        for (std::int64_t d = 0; d < DQK; ++d) {
          dq[(start + t) * DQK + d] += w[j] * vNum * K(start + j, d) * scale;
          dk[(start + j) * DQK + d] += w[j] * vNum * Q(start + t, d);
        }
        const double gw = w[j] * s[j] * vNum;
        dB[t] += gw;
        dB[j] -= gw;
        dIg[j] += gw;
        dMTok -= gw;
      }
      dB[t] += dBeta * beta;
      dMPrev += dBeta * beta;
      dMTok -= dBeta * beta;
      dB[t] += dMTok;
      if (arg < 0) {
        dMPrev += dMTok;
      } else {
        dB[arg] -= dMTok;
        dIg[arg] += dMTok;
      }
    }
    if (endArg < 0) {
      dG += dMEnd;
      dMPrev += dMEnd;
    } else {
      dA[endArg] += dMEnd;
    }
    std::vector<double> dLf(len, 0.0);
    double suffixB = 0.0, prefixA = 0.0;
    for (std::int64_t j = len - 1; j >= 0; --j) {
      suffixB += dB[j];
      dLf[j] += suffixB + dG;
    }
    for (std::int64_t j = 0; j < len; ++j) {
      dLf[j] += prefixA;
      prefixA += dA[j];
      dIg[j] += dA[j];
    }
    for (std::int64_t j = 0; j < len; ++j) {
      const double fCap = capped(fRaw[j]), iCap = capped(iRaw[j]);
      const double dfCap = dLf[j] * sigmoid(-fCap);
      const double diCap = cell.inputGate == InputGate::Exp ? dIg[j] : dIg[j] * sigmoid(-iCap);
      op.df[row(start + j) * NH + hd] = static_cast<float>(dfCap * capSlope(fRaw[j]));
      op.di[row(start + j) * NH + hd] = static_cast<float>(diCap * capSlope(iRaw[j]));
    }
    dm = dMPrev;
  }
  for (std::int64_t t = 0; t < S; ++t) {
    for (std::int64_t d = 0; d < DQK; ++d) {
      op.dq[row(t) * NH * DQK + hd * DQK + d] = static_cast<float>(dq[t * DQK + d]);
      op.dk[row(t) * NH * DQK + hd * DQK + d] = static_cast<float>(dk[t * DQK + d]);
    }
    for (std::int64_t e = 0; e < DV; ++e)
      op.dv[row(t) * NH * DV + hd * DV + e] = static_cast<float>(dvv[t * DV + e]);
  }
  if (op.dC0)
    for (std::int64_t i = 0; i < DQK * DV; ++i)
      op.dC0[pair * DQK * DV + i] = static_cast<float>(dC[i]);
  if (op.dn0)
    for (std::int64_t d = 0; d < DQK; ++d)
      op.dn0[pair * DQK + d] = static_cast<float>(dn[d]);
  if (op.dm0)
    op.dm0[pair] = static_cast<float>(dm);
}

} // namespace

void mlstmCellBackward(ThreadPool &pool, const MlstmCellBackward &op) {
  const MlstmCell &cell = op.forward.cell;
  pool.parallelFor(static_cast<std::size_t>(cell.batch * cell.numHeads), [&](std::size_t p) {
    const auto pair = static_cast<std::int64_t>(p);
    cellBackwardPair(op, pair / cell.numHeads, pair % cell.numHeads);
  });
}

} // namespace xlc::exec::cpu
