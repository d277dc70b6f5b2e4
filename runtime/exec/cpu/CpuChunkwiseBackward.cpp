//===- CpuChunkwiseBackward.cpp - The mLSTM cell's backward in four stages -===//
//
// The CPU twin of runtime/device/mlstm_chunk_backward.cuh, stage for stage and workspace for
// workspace (that header has the math; runtime/reference/MlstmChunkwiseBackward.cpp is the
// float64 spec both follow). Arithmetic in float64, workspaces and results in fp32.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cpu/CpuBackwardOps.h"

#include "runtime/exec/cpu/ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace xlc::exec::cpu {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double sigmoid(double x) {
  if (x >= 0.0)
    return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

double logSigmoid(double x) {
  return x >= 0.0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}

/// Whether row r (b·seq + t) starts a document.
bool resetAt(const MlstmCell &cell, std::int64_t r) { return cell.resets && cell.resets[r]; }

double capped(double x, double cap) { return cap > 0.0 ? cap * std::tanh(x / cap) : x; }

double capSlope(double x, double cap) {
  if (cap <= 0.0)
    return 1.0;
  const double t = std::tanh(x / cap);
  return 1.0 - t * t;
}

/// Sizes and addressing shared by the stages.
struct Geometry {
  const MlstmCell &cell;
  std::int64_t L, S, NC, NH, DQK, DV;
  double scale;
  explicit Geometry(const MlstmChunkBackward &op)
      : cell(op.forward.cell), L(op.forward.chunk), S(cell.seq), NC((S + L - 1) / L),
        NH(cell.numHeads), DQK(cell.dqk), DV(cell.dv),
        scale(1.0 / std::sqrt(static_cast<double>(cell.dqk))) {}
  std::int64_t pairs() const { return cell.batch * NH; }
  std::int64_t len(std::int64_t c) const { return std::min(L, S - c * L); }
  std::int64_t row(std::int64_t bh, std::int64_t t) const { return (bh / NH) * S + t; }
  double q(std::int64_t bh, std::int64_t t, std::int64_t d) const {
    return cell.q.row(row(bh, t))[(bh % NH) * DQK + d] * scale; // q̂
  }
  double k(std::int64_t bh, std::int64_t t, std::int64_t d) const {
    return cell.k.row(row(bh, t))[(bh % NH) * DQK + d];
  }
  double v(std::int64_t bh, std::int64_t t, std::int64_t e) const {
    return cell.v.row(row(bh, t))[(bh % NH) * DV + e];
  }
  std::int64_t slot(std::int64_t bh, std::int64_t c) const { return bh * (NC + 1) + c; }
  std::int64_t chunkIndex(std::int64_t bh, std::int64_t c) const { return bh * NC + c; }
  std::int64_t token(std::int64_t bh, std::int64_t t) const { return bh * S + t; }
};

/// The gate scan of one chunk (the device's scan_gates): entries past len are lf 0, −∞ else.
struct ChunkGates {
  std::vector<double> lf, ig, b, u, p, a;
  std::vector<std::int64_t> parg; ///< first argmax of u over [0, j]
  double g = 0.0, aMax = -kInf;
  std::int64_t aArg = -1, len = 0;

  ChunkGates(const Geometry &geo, std::int64_t bh, std::int64_t c)
      : lf(geo.L, 0.0), ig(geo.L, -kInf), b(geo.L), u(geo.L, -kInf), p(geo.L), a(geo.L, -kInf),
        parg(geo.L), len(geo.len(c)) {
    const MlstmCell &cell = geo.cell;
    const double cap = cell.gateSoftCap;
    const std::int64_t hd = bh % geo.NH;
    for (std::int64_t j = 0; j < len; ++j) {
      const std::int64_t r = geo.row(bh, c * geo.L + j);
      lf[j] = logSigmoid(resetAt(cell, r) ? kResetForgetGate : capped(cell.fgate.row(r)[hd], cap));
      const double ic = capped(cell.igate.row(r)[hd], cap);
      ig[j] = cell.inputGate == InputGate::Exp ? ic : logSigmoid(ic);
    }
    double run = 0.0, best = -kInf, suffix = 0.0;
    std::int64_t arg = -1;
    for (std::int64_t j = 0; j < geo.L; ++j) {
      run += lf[j];
      b[j] = run;
      if (j < len)
        u[j] = ig[j] - b[j];
      if (j == 0 || u[j] > best)
        best = u[j], arg = j;
      p[j] = best;
      parg[j] = arg;
    }
    g = b[len - 1];
    for (std::int64_t j = len - 1; j >= 0; --j) {
      a[j] = suffix + ig[j];
      suffix += lf[j];
    }
    for (std::int64_t j = 0; j < len; ++j)
      if (a[j] > aMax)
        aMax = a[j], aArg = j;
  }
};

/// The token's stabiliser M_t = max(m_c, p_t) and the branch it took (−1: m_c).
struct TokenMax {
  double M;
  std::int64_t arg;
};
TokenMax tokenMax(const ChunkGates &gs, double mC, std::int64_t t) {
  if (!(mC < gs.p[t]))
    return {mC, -1};
  return {gs.p[t], gs.parg[t]};
}

} // namespace

void mlstmBackwardReadout(ThreadPool &pool, const MlstmChunkBackward &op) {
  const Geometry geo(op);
  const MlstmCell &cell = geo.cell;
  const bool maxAbs = cell.normalizer == Normalizer::MaxAbs;
  pool.parallelFor(static_cast<std::size_t>(geo.pairs() * geo.NC), [&](std::size_t task) {
    const auto bh = static_cast<std::int64_t>(task) / geo.NC, c = static_cast<std::int64_t>(task) % geo.NC;
    const ChunkGates gs(geo, bh, c);
    const std::int64_t start = c * geo.L, hd = bh % geo.NH;
    const double mC = op.forward.wsM[geo.slot(bh, c)], mNext = op.forward.wsM[geo.slot(bh, c + 1)];
    const float *nC = op.forward.wsN + geo.slot(bh, c) * geo.DQK;
    for (std::int64_t t = 0; t < gs.len; ++t) {
      const TokenMax tm = tokenMax(gs, mC, t);
      const double beta = std::exp(mC - tm.M);
      double qn = 0.0, den = 0.0;
      for (std::int64_t d = 0; d < geo.DQK; ++d)
        qn += geo.q(bh, start + t, d) * nC[d];
      for (std::int64_t j = 0; j <= t; ++j) {
        double s = 0.0;
        for (std::int64_t d = 0; d < geo.DQK; ++d)
          s += geo.q(bh, start + t, d) * geo.k(bh, start + j, d);
        den += std::exp(gs.u[j] - tm.M) * s;
      }
      den += beta * qn;
      const std::int64_t r = geo.row(bh, start + t);
      double rho = 0.0;
      for (std::int64_t e = 0; e < geo.DV; ++e)
        rho += static_cast<double>(op.dh.row(r)[hd * geo.DV + e]) * op.h.row(r)[hd * geo.DV + e];
      const double mt = gs.b[t] + tm.M;
      double s, dden = 0.0, dm = 0.0;
      if (maxAbs) {
        const double floor = std::exp(-mt);
        const bool absBranch = !(std::abs(den) < floor);
        s = 1.0 / ((absBranch ? std::abs(den) : floor) + cell.eps);
        const double ddenom = -rho * s;
        if (absBranch)
          dden = den >= 0.0 ? ddenom : -ddenom;
        else
          dm = -ddenom * floor;
      } else {
        s = std::exp(mt);
        dm = rho;
      }
      float *out = op.wsTok + geo.token(bh, start + t) * 4;
      out[0] = static_cast<float>(s);
      out[1] = static_cast<float>(dden);
      out[2] = static_cast<float>(dm);
      out[3] = static_cast<float>(beta);
    }
    op.wsChunk[geo.chunkIndex(bh, c) * 8] = static_cast<float>(std::exp(gs.g + mC - mNext));
  });
}

void mlstmBackwardStates(ThreadPool &pool, const MlstmChunkBackward &op) {
  const Geometry geo(op);
  const std::int64_t DQK = geo.DQK, DV = geo.DV, NH = geo.NH;
  pool.parallelFor(static_cast<std::size_t>(geo.pairs()), [&](std::size_t task) {
    const auto bh = static_cast<std::int64_t>(task);
    const std::int64_t hd = bh % NH;
    std::vector<double> dC(static_cast<std::size_t>(DQK * DV), 0.0), dn(static_cast<std::size_t>(DQK), 0.0);
    if (op.dCf)
      std::copy(op.dCf + bh * DQK * DV, op.dCf + (bh + 1) * DQK * DV, dC.begin());
    if (op.dnf)
      std::copy(op.dnf + bh * DQK, op.dnf + (bh + 1) * DQK, dn.begin());
    for (std::int64_t c = geo.NC - 1; c >= 0; --c) {
      std::copy(dC.begin(), dC.end(), op.wsDC + geo.chunkIndex(bh, c) * DQK * DV);
      std::copy(dn.begin(), dn.end(), op.wsDN + geo.chunkIndex(bh, c) * DQK);
      const double d = op.wsChunk[geo.chunkIndex(bh, c) * 8];
      for (double &x : dC)
        x *= d;
      for (double &x : dn)
        x *= d;
      const std::int64_t start = c * geo.L;
      for (std::int64_t t = 0; t < geo.len(c); ++t) {
        const float *tk = op.wsTok + geo.token(bh, start + t) * 4;
        const double coefC = static_cast<double>(tk[3]) * tk[0], coefN = static_cast<double>(tk[3]) * tk[1];
        const float *dh = op.dh.row(geo.row(bh, start + t)) + hd * DV;
        for (std::int64_t dd = 0; dd < DQK; ++dd) {
          const double qv = geo.q(bh, start + t, dd);
          for (std::int64_t e = 0; e < DV; ++e)
            dC[dd * DV + e] += coefC * qv * dh[e];
          dn[dd] += coefN * qv;
        }
      }
    }
    if (op.dC0)
      for (std::int64_t i = 0; i < DQK * DV; ++i)
        op.dC0[bh * DQK * DV + i] = static_cast<float>(dC[i]);
    if (op.dn0)
      for (std::int64_t dd = 0; dd < DQK; ++dd)
        op.dn0[bh * DQK + dd] = static_cast<float>(dn[dd]);
  });
}

void mlstmBackwardChunks(ThreadPool &pool, const MlstmChunkBackward &op) {
  const Geometry geo(op);
  const std::int64_t DQK = geo.DQK, DV = geo.DV, NH = geo.NH, L = geo.L;
  pool.parallelFor(static_cast<std::size_t>(geo.pairs() * geo.NC), [&](std::size_t task) {
    const auto bh = static_cast<std::int64_t>(task) / geo.NC, c = static_cast<std::int64_t>(task) % geo.NC;
    const ChunkGates gs(geo, bh, c);
    const std::int64_t start = c * L, len = gs.len, hd = bh % NH;
    const double mC = op.forward.wsM[geo.slot(bh, c)], mNext = op.forward.wsM[geo.slot(bh, c + 1)];
    const float *nC = op.forward.wsN + geo.slot(bh, c) * DQK;
    const float *cC = op.forward.wsC + geo.slot(bh, c) * DQK * DV;
    const float *dC = op.wsDC + geo.chunkIndex(bh, c) * DQK * DV;
    const float *dn = op.wsDN + geo.chunkIndex(bh, c) * DQK;
    float *rec = op.wsChunk + geo.chunkIndex(bh, c) * 8;
    const double decay = rec[0];
    std::vector<double> s(len), dden(len), dmR(len), beta(len), M(len), abar(len);
    std::vector<std::int64_t> arg(len);
    for (std::int64_t t = 0; t < len; ++t) {
      const float *tk = op.wsTok + geo.token(bh, start + t) * 4;
      s[t] = tk[0], dden[t] = tk[1], dmR[t] = tk[2], beta[t] = tk[3];
      const TokenMax tm = tokenMax(gs, mC, t);
      M[t] = tm.M, arg[t] = tm.arg;
      abar[t] = std::exp(gs.a[t] - mNext);
    }
    auto dh = [&](std::int64_t t) { return op.dh.row(geo.row(bh, start + t)) + hd * DV; };
    // W_tj and P'_tj (j ≤ t), the pair gradients gw_tj and their row and column sums.
    std::vector<double> W(len * len, 0.0), P(len * len, 0.0), rowGw(len, 0.0), colGw(len, 0.0);
    for (std::int64_t t = 0; t < len; ++t)
      for (std::int64_t j = 0; j <= t; ++j) {
        double S = 0.0, G = 0.0;
        for (std::int64_t d = 0; d < DQK; ++d)
          S += geo.q(bh, start + t, d) * geo.k(bh, start + j, d);
        for (std::int64_t e = 0; e < DV; ++e)
          G += static_cast<double>(dh(t)[e]) * geo.v(bh, start + j, e);
        const double dbar = std::exp(gs.u[j] - M[t]);
        W[t * len + j] = dbar * (s[t] * G + dden[t]);
        P[t * len + j] = dbar * S * s[t];
        const double gw = W[t * len + j] * S;
        rowGw[t] += gw;
        colGw[j] += gw;
      }
    // δq̂, δk, δv and the row pieces δβ, δā; ⟨δC, C_c⟩ + ⟨δn, n_c⟩.
    double dDecay = 0.0;
    for (std::int64_t i = 0; i < DQK * DV; ++i)
      dDecay += static_cast<double>(dC[i]) * cC[i];
    for (std::int64_t d = 0; d < DQK; ++d)
      dDecay += static_cast<double>(dn[d]) * nC[d];
    std::vector<double> dBeta(len, 0.0), dAbar(len, 0.0), E(DQK), F(DQK);
    for (std::int64_t t = 0; t < len; ++t) {
      // E_t = C_c δh_t, F_t = δC v_t (DQK each).
      for (std::int64_t d = 0; d < DQK; ++d) {
        double e1 = 0.0, f1 = 0.0;
        for (std::int64_t e = 0; e < DV; ++e) {
          e1 += static_cast<double>(cC[d * DV + e]) * dh(t)[e];
          f1 += static_cast<double>(dC[d * DV + e]) * geo.v(bh, start + t, e);
        }
        E[d] = e1, F[d] = f1;
      }
      const std::int64_t r = geo.row(bh, start + t);
      for (std::int64_t d = 0; d < DQK; ++d) {
        double gq = beta[t] * (s[t] * E[d] + dden[t] * nC[d]);
        double gk = abar[t] * (F[d] + dn[d]);
        for (std::int64_t j = 0; j <= t; ++j)
          gq += W[t * len + j] * geo.k(bh, start + j, d);
        for (std::int64_t i = t; i < len; ++i)
          gk += W[i * len + t] * geo.q(bh, start + i, d);
        op.dq.row(r)[hd * DQK + d] = static_cast<float>(gq * geo.scale);
        op.dk.row(r)[hd * DQK + d] = static_cast<float>(gk);
        const double qv = geo.q(bh, start + t, d);
        dBeta[t] += qv * (s[t] * E[d] + dden[t] * nC[d]);
        dAbar[t] += geo.k(bh, start + t, d) * (F[d] + dn[d]);
      }
      for (std::int64_t e = 0; e < DV; ++e) {
        double h = 0.0, pv = 0.0;
        for (std::int64_t d = 0; d < DQK; ++d)
          h += geo.k(bh, start + t, d) * dC[d * DV + e];
        for (std::int64_t i = t; i < len; ++i)
          pv += P[i * len + t] * dh(i)[e];
        op.dv.row(r)[hd * DV + e] = static_cast<float>(pv + abar[t] * h);
      }
    }
    // Token pieces and the routing of each token's stabiliser gradient.
    std::vector<double> dM(len), routed(len, 0.0);
    double sumA = 0.0, sumBeta = 0.0, routedPrior = 0.0;
    for (std::int64_t t = 0; t < len; ++t) {
      dAbar[t] *= abar[t];
      dBeta[t] *= beta[t];
      dM[t] = dmR[t] - rowGw[t] - dBeta[t];
      if (arg[t] < 0)
        routedPrior += dM[t];
      else
        routed[arg[t]] += dM[t];
      sumA += dAbar[t];
      sumBeta += dBeta[t];
    }
    for (std::int64_t j = 0; j < len; ++j) {
      float *out = op.wsGate + geo.token(bh, start + j) * 4;
      out[0] = static_cast<float>(dAbar[j]);
      out[1] = static_cast<float>(dmR[j] - colGw[j] - routed[j]);
      out[2] = static_cast<float>(colGw[j] + routed[j]);
      out[3] = 0.0f;
    }
    const double W0 = decay * dDecay;
    rec[1] = static_cast<float>(sumA + W0);
    rec[2] = static_cast<float>(W0 + sumBeta + routedPrior);
    rec[3] = static_cast<float>(W0);
    rec[4] = gs.g + mC < gs.aMax ? static_cast<float>(gs.aArg) : -1.0f;
  });
}

void mlstmBackwardGates(ThreadPool &pool, const MlstmChunkBackward &op) {
  const Geometry geo(op);
  const MlstmCell &cell = geo.cell;
  const double cap = cell.gateSoftCap;
  pool.parallelFor(static_cast<std::size_t>(geo.pairs()), [&](std::size_t task) {
    const auto bh = static_cast<std::int64_t>(task);
    const std::int64_t hd = bh % geo.NH;
    double dm = op.dmf ? op.dmf[bh] : 0.0;
    for (std::int64_t c = geo.NC - 1; c >= 0; --c) {
      float *rec = op.wsChunk + geo.chunkIndex(bh, c) * 8;
      const double delta = dm - rec[1];
      if (rec[4] < 0.0f) {
        rec[5] = 0.0f;
        rec[6] = static_cast<float>(rec[3] + delta);
        dm = rec[2] + delta;
      } else {
        rec[5] = static_cast<float>(delta);
        rec[6] = rec[3];
        dm = rec[2];
      }
    }
    if (op.dm0)
      op.dm0[bh] = static_cast<float>(dm);
    for (std::int64_t c = 0; c < geo.NC; ++c) {
      const float *rec = op.wsChunk + geo.chunkIndex(bh, c) * 8;
      const std::int64_t start = c * geo.L, len = geo.len(c), endArg = static_cast<std::int64_t>(rec[4]);
      std::vector<double> dA(len), dB(len);
      for (std::int64_t j = 0; j < len; ++j) {
        const float *gp = op.wsGate + geo.token(bh, start + j) * 4;
        dA[j] = gp[0] + (j == endArg ? static_cast<double>(rec[5]) : 0.0);
        dB[j] = gp[1];
      }
      double suffixB = 0.0, prefixA = 0.0;
      std::vector<double> dLf(len);
      for (std::int64_t j = len - 1; j >= 0; --j) {
        suffixB += dB[j];
        dLf[j] = suffixB + rec[6];
      }
      for (std::int64_t j = 0; j < len; ++j) {
        dLf[j] += prefixA;
        prefixA += dA[j];
        const std::int64_t r = geo.row(bh, start + j);
        const double fRaw = cell.fgate.row(r)[hd], iRaw = cell.igate.row(r)[hd];
        double dIg = op.wsGate[geo.token(bh, start + j) * 4 + 2] + dA[j];
        if (cell.inputGate == InputGate::Sigmoid)
          dIg *= sigmoid(-capped(iRaw, cap));
        // An overridden forget gate is a constant: its raw pre-activation gets no gradient.
        op.df.row(r)[hd] = resetAt(cell, r) ? 0.0f
                                            : static_cast<float>(dLf[j] * sigmoid(-capped(fRaw, cap)) *
                                                                 capSlope(fRaw, cap));
        op.di.row(r)[hd] = static_cast<float>(dIg * capSlope(iRaw, cap));
      }
    }
  });
}

void mlstmCellBackward(ThreadPool &pool, const MlstmCellBackward &cellOp) {
  const MlstmCell &cell = cellOp.forward.cell;
  const std::int64_t L = cellOp.forward.chunk, NC = (cell.seq + L - 1) / L;
  const std::int64_t pairs = cell.batch * cell.numHeads, NH = cell.numHeads;
  auto sized = [](std::int64_t n) { return std::vector<float>(static_cast<std::size_t>(n)); };
  std::vector<float> tok = sized(pairs * cell.seq * 4), gate = sized(pairs * cell.seq * 4);
  std::vector<float> dC = sized(pairs * NC * cell.dqk * cell.dv), dn = sized(pairs * NC * cell.dqk);
  std::vector<float> chunk = sized(pairs * NC * 8);
  MlstmChunkBackward op;
  op.forward = cellOp.forward;
  op.h = cellOp.h;
  op.dh = cellOp.dh;
  op.dq = {cellOp.dq, 0, NH * cell.dqk};
  op.dk = {cellOp.dk, 0, NH * cell.dqk};
  op.dv = {cellOp.dv, 0, NH * cell.dv};
  op.di = {cellOp.di, 0, NH};
  op.df = {cellOp.df, 0, NH};
  op.wsTok = tok.data(), op.wsDC = dC.data(), op.wsDN = dn.data();
  op.wsGate = gate.data(), op.wsChunk = chunk.data();
  op.dCf = cellOp.dCf, op.dnf = cellOp.dnf, op.dmf = cellOp.dmf;
  op.dC0 = cellOp.dC0, op.dn0 = cellOp.dn0, op.dm0 = cellOp.dm0;
  mlstmBackwardReadout(pool, op);
  mlstmBackwardStates(pool, op);
  mlstmBackwardChunks(pool, op);
  mlstmBackwardGates(pool, op);
}

} // namespace xlc::exec::cpu
