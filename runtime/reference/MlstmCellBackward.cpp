//===- MlstmCellBackward.cpp - float64 reference gradients of the mLSTM cell -===//
//
// The forward is replayed token by token and every state C_t, n_t, m_t (t = 0..S) is kept, so the
// reverse sweep reads C_{t−1} and C_t directly: O(S·DQK·DV) memory, fine for a reference that
// runs on test shapes. (The kernels recompute states from chunk boundaries instead, §3.5.)
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

/// What step t computed besides the states, recomputed from the gates and the kept states exactly
/// as the forward step computes it (same operations, same order, so the same branches).
struct StepRecord {
  double lf, ig;     // forget gate and input gate in log space
  double m;          // stabiliser after the step
  double fa, ia;     // stabilised gates
  double den;        // q̂ᵀn_t
  bool firstBranch;  // m_t = lf + m_{t−1} (else m_t = ig)
};

StepRecord replayStep(double iPre, double fPre, const MlstmHeadState &prev,
                      const MlstmHeadState &cur, const double *q, double scale, InputGate gate) {
  StepRecord r;
  r.lf = logSigmoid(fPre);
  r.ig = detail::logInputGate(iPre, gate);
  r.firstBranch = !(r.lf + prev.m < r.ig); // std::max(a, b) returns a unless a < b
  r.m = cur.m;
  r.fa = std::exp(r.lf + prev.m - r.m);
  r.ia = std::exp(r.ig - r.m);
  r.den = 0.0;
  for (std::int64_t d = 0; d < cur.n.numel(); ++d)
    r.den += q[d] * scale * cur.n.data[d];
  return r;
}

Tensor row(const Tensor &x, std::int64_t t) {
  const std::int64_t width = x.dim(1);
  return Tensor({width}, std::vector<double>(x.data.begin() + t * width,
                                             x.data.begin() + (t + 1) * width));
}

} // namespace

MlstmHeadGrads mlstmRecurrentBackward(const Tensor &q, const Tensor &k, const Tensor &v,
                                      const Tensor &iPre, const Tensor &fPre,
                                      const MlstmHeadState *initial, const MlstmCellAttrs &attrs,
                                      const Tensor &dh, const MlstmHeadState *dFinal) {
  const detail::HeadDims dims =
      detail::checkHeadInputs(q, k, v, iPre, fPre, initial, "recurrent backward");
  const std::int64_t S = dims.seq, DQK = dims.dqk, DV = dims.dv;
  checkShape(dh, {S, DV}, "mLSTM recurrent backward dh");
  if (dFinal) {
    checkShape(dFinal->C, {DQK, DV}, "mLSTM recurrent backward dC of the final state");
    checkShape(dFinal->n, {DQK}, "mLSTM recurrent backward dn of the final state");
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(DQK));
  const bool maxAbs = attrs.normalizer == Normalizer::MaxAbs;

  // Forward replay by the forward's own step, keeping C_t, n_t, m_t and h_t for t = 0..S
  // (states[t] is the state after t tokens).
  std::vector<MlstmHeadState> states;
  states.reserve(static_cast<std::size_t>(S + 1));
  states.push_back(initial ? *initial : MlstmHeadState::zeros(DQK, DV));
  std::vector<double> denoms(static_cast<std::size_t>(S));
  Tensor h({S, DV});
  for (std::int64_t t = 0; t < S; ++t) {
    MlstmHeadState next = states.back();
    Tensor ht = mlstmStep(row(q, t), row(k, t), row(v, t), iPre.data[t], fPre.data[t], next, attrs,
                          &denoms[static_cast<std::size_t>(t)]);
    std::copy(ht.data.begin(), ht.data.end(), h.data.begin() + t * DV);
    states.push_back(std::move(next));
  }

  MlstmHeadGrads grads{Tensor({S, DQK}), Tensor({S, DQK}), Tensor({S, DV}), Tensor({S}),
                       Tensor({S}), MlstmHeadState::zeros(DQK, DV)};
  Tensor dC({DQK, DV}), dn({DQK});
  double dm = 0.0;
  if (dFinal) {
    dC = dFinal->C;
    dn = dFinal->n;
    dm = dFinal->m;
  }
  std::vector<double> dnum(static_cast<std::size_t>(DV)), dCv(static_cast<std::size_t>(DQK));
  for (std::int64_t t = S - 1; t >= 0; --t) {
    const MlstmHeadState &prev = states[static_cast<std::size_t>(t)];
    const MlstmHeadState &cur = states[static_cast<std::size_t>(t + 1)];
    const double *qt = &q.data[t * DQK], *kt = &k.data[t * DQK], *vt = &v.data[t * DV];
    const StepRecord r = replayStep(iPre.data[t], fPre.data[t], prev, cur, qt, scale, attrs.inputGate);
    const double denom = denoms[static_cast<std::size_t>(t)];
    const double *dht = &dh.data[t * DV], *ht = &h.data[t * DV];

    // Readout.
    double dden = 0.0;
    if (maxAbs) {
      const double inv = 1.0 / (denom + attrs.eps);
      double ddenom = 0.0;
      for (std::int64_t e = 0; e < DV; ++e) {
        dnum[static_cast<std::size_t>(e)] = dht[e] * inv;
        ddenom -= dht[e] * ht[e] * inv;
      }
      if (!(std::abs(r.den) < std::exp(-r.m))) // std::max(|den|, e^{−m}) took |den|
        dden = r.den >= 0.0 ? ddenom : -ddenom;
      else
        dm -= ddenom * std::exp(-r.m);
    } else {
      const double unstabilise = std::exp(r.m);
      for (std::int64_t e = 0; e < DV; ++e) {
        dnum[static_cast<std::size_t>(e)] = dht[e] * unstabilise;
        dm += dht[e] * ht[e];
      }
    }
    for (std::int64_t d = 0; d < DQK; ++d) {
      const double qd = qt[d] * scale;
      double dq = dden * cur.n.data[d];
      dn.data[d] += dden * qd;
      for (std::int64_t e = 0; e < DV; ++e) {
        dq += cur.C.data[d * DV + e] * dnum[static_cast<std::size_t>(e)];
        dC.data[d * DV + e] += qd * dnum[static_cast<std::size_t>(e)];
      }
      grads.q.data[t * DQK + d] = dq * scale;
    }

    // State update C_t = fa C_{t−1} + ia k vᵀ, n_t = fa n_{t−1} + ia k.
    double dfa = 0.0, dia = 0.0;
    for (std::int64_t d = 0; d < DQK; ++d) {
      double acc = 0.0;
      for (std::int64_t e = 0; e < DV; ++e) {
        acc += dC.data[d * DV + e] * vt[e];
        dfa += dC.data[d * DV + e] * prev.C.data[d * DV + e];
      }
      dCv[static_cast<std::size_t>(d)] = acc;
      dfa += dn.data[d] * prev.n.data[d];
      dia += kt[d] * (acc + dn.data[d]);
      grads.k.data[t * DQK + d] = r.ia * (acc + dn.data[d]);
    }
    for (std::int64_t e = 0; e < DV; ++e) {
      double acc = 0.0;
      for (std::int64_t d = 0; d < DQK; ++d)
        acc += dC.data[d * DV + e] * kt[d];
      grads.v.data[t * DV + e] = r.ia * acc;
    }
    for (double &x : dC.data)
      x *= r.fa;
    for (double &x : dn.data)
      x *= r.fa;

    // Gates: fa = e^{lf + m_{t−1} − m_t}, ia = e^{ig − m_t}, then m_t = max(lf + m_{t−1}, ig).
    const double gfa = dfa * r.fa, gia = dia * r.ia;
    double dlf = gfa, dig = gia, dmPrev = gfa;
    dm -= gfa + gia;
    if (r.firstBranch) {
      dlf += dm;
      dmPrev += dm;
    } else {
      dig += dm;
    }
    grads.fPre.data[t] = dlf * sigmoid(-fPre.data[t]);
    grads.iPre.data[t] =
        attrs.inputGate == InputGate::Exp ? dig : dig * sigmoid(-iPre.data[t]);
    dm = dmPrev;
  }
  grads.initial = {std::move(dC), std::move(dn), dm};
  return grads;
}

MlstmCellGrads mlstmCellBackward(const Tensor &q, const Tensor &k, const Tensor &v,
                                 const Tensor &iPre, const Tensor &fPre, std::int64_t numHeads,
                                 const MlstmStates *initial, const MlstmCellAttrs &attrs,
                                 const Tensor &dh, const MlstmStates *dFinal) {
  const detail::CellDims dims =
      detail::checkCellInputs(q, k, v, iPre, fPre, numHeads, "mLSTM cell backward");
  checkShape(dh, {dims.batch, dims.seq, numHeads * dims.dv}, "mLSTM cell backward dh");
  if (initial)
    initial->checkShapes(dims.batch, numHeads, dims.dqk, dims.dv,
                         "mLSTM cell backward initial state");
  if (dFinal)
    dFinal->checkShapes(dims.batch, numHeads, dims.dqk, dims.dv,
                        "mLSTM cell backward gradient of the final state");

  MlstmCellGrads grads{Tensor(q.shape), Tensor(k.shape), Tensor(v.shape), Tensor(iPre.shape),
                       Tensor(fPre.shape), {}};
  if (initial)
    grads.initial = MlstmStates::zeros(dims.batch, numHeads, dims.dqk, dims.dv);
  for (std::int64_t b = 0; b < dims.batch; ++b) {
    for (std::int64_t h = 0; h < numHeads; ++h) {
      const std::int64_t pair = b * numHeads + h;
      MlstmHeadState init, dfin;
      if (initial)
        init = detail::gatherState(*initial, pair);
      if (dFinal)
        dfin = detail::gatherState(*dFinal, pair);
      MlstmHeadGrads head = mlstmRecurrentBackward(
          detail::gatherHead(q, b, h, numHeads), detail::gatherHead(k, b, h, numHeads),
          detail::gatherHead(v, b, h, numHeads), detail::gatherGate(iPre, b, h, numHeads),
          detail::gatherGate(fPre, b, h, numHeads), initial ? &init : nullptr, attrs,
          detail::gatherHead(dh, b, h, numHeads), dFinal ? &dfin : nullptr);
      detail::scatterHead(grads.q, head.q, b, h, numHeads);
      detail::scatterHead(grads.k, head.k, b, h, numHeads);
      detail::scatterHead(grads.v, head.v, b, h, numHeads);
      detail::scatterHead(grads.iPre, head.iPre, b, h, numHeads);
      detail::scatterHead(grads.fPre, head.fPre, b, h, numHeads);
      if (initial)
        detail::scatterState(grads.initial, head.initial, pair);
    }
  }
  return grads;
}

} // namespace xlc::ref
