//===- MlstmCell.cpp - float64 reference of the mLSTM cell ----------------===//
//
// The loops index row-major data directly (q row t is &q.data[t * DQK]) instead of going through
// Tensor::at: the sweep tests run thousands of cells and the checked accessor would dominate.
// Shapes are checked once on entry.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/MlstmCell.h"

#include "runtime/reference/BlockOps.h"
#include "runtime/reference/MlstmCellDetail.h"
#include "runtime/support/Error.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace xlc::ref {

std::string_view toString(InputGate gate) {
  return gate == InputGate::Exp ? "exp" : "sigmoid";
}

std::string_view toString(Normalizer norm) {
  return norm == Normalizer::MaxAbs ? "max_abs" : "none";
}

std::string_view toString(MlstmForm form) {
  switch (form) {
  case MlstmForm::Recurrent:
    return "recurrent";
  case MlstmForm::Chunkwise:
    return "chunkwise";
  case MlstmForm::Parallel:
    return "parallel";
  }
  return "?";
}

MlstmHeadState MlstmHeadState::zeros(std::int64_t dqk, std::int64_t dv) {
  return {Tensor({dqk, dv}), Tensor({dqk}), 0.0};
}

namespace detail {

HeadDims checkHeadInputs(const Tensor &q, const Tensor &k, const Tensor &v, const Tensor &iPre,
                         const Tensor &fPre, const MlstmHeadState *initial, std::string_view form) {
  check(q.rank() == 2, "mLSTM {}: q must be [S, DQK], got {}", form, shapeString(q.shape));
  check(v.rank() == 2, "mLSTM {}: v must be [S, DV], got {}", form, shapeString(v.shape));
  HeadDims dims{q.dim(0), q.dim(1), v.dim(1)};
  check(dims.dqk > 0 && dims.dv > 0, "mLSTM {}: head dims must be positive (q {}, v {})", form,
        shapeString(q.shape), shapeString(v.shape));
  checkShape(k, {dims.seq, dims.dqk}, fmt::format("mLSTM {} k", form));
  checkShape(v, {dims.seq, dims.dv}, fmt::format("mLSTM {} v", form));
  checkShape(iPre, {dims.seq}, fmt::format("mLSTM {} input-gate pre-activation", form));
  checkShape(fPre, {dims.seq}, fmt::format("mLSTM {} forget-gate pre-activation", form));
  if (initial) {
    checkShape(initial->C, {dims.dqk, dims.dv}, fmt::format("mLSTM {} initial C", form));
    checkShape(initial->n, {dims.dqk}, fmt::format("mLSTM {} initial n", form));
  }
  return dims;
}

double logInputGate(double iPre, InputGate gate) {
  return gate == InputGate::Exp ? iPre : logSigmoid(iPre);
}

CellDims checkCellInputs(const Tensor &q, const Tensor &k, const Tensor &v, const Tensor &iPre,
                         const Tensor &fPre, std::int64_t numHeads, std::string_view what) {
  check(numHeads > 0, "{}: num_heads must be positive, got {}", what, numHeads);
  check(q.rank() == 3 && v.rank() == 3, "{}: q and v must be [B, S, NH*D], got {} and {}", what,
        shapeString(q.shape), shapeString(v.shape));
  const std::int64_t batch = q.dim(0), seq = q.dim(1);
  check(q.dim(2) % numHeads == 0 && v.dim(2) % numHeads == 0 && q.dim(2) > 0 && v.dim(2) > 0,
        "{}: feature sizes of q ({}) and v ({}) must be positive multiples of num_heads {}", what,
        q.dim(2), v.dim(2), numHeads);
  const std::int64_t dqk = q.dim(2) / numHeads, dv = v.dim(2) / numHeads;
  checkShape(k, q.shape, fmt::format("{} k", what));
  checkShape(v, {batch, seq, numHeads * dv}, fmt::format("{} v", what));
  checkShape(iPre, {batch, seq, numHeads}, fmt::format("{} input-gate pre-activation", what));
  checkShape(fPre, {batch, seq, numHeads}, fmt::format("{} forget-gate pre-activation", what));
  return {batch, seq, numHeads, dqk, dv};
}

Tensor gatherHead(const Tensor &x, std::int64_t batch, std::int64_t head, std::int64_t numHeads) {
  const std::int64_t seq = x.dim(1), width = x.dim(2) / numHeads;
  Tensor rows({seq, width});
  for (std::int64_t t = 0; t < seq; ++t)
    for (std::int64_t d = 0; d < width; ++d)
      rows.data[t * width + d] = x.data[((batch * seq + t) * numHeads + head) * width + d];
  return rows;
}

Tensor gatherGate(const Tensor &x, std::int64_t batch, std::int64_t head, std::int64_t numHeads) {
  Tensor rows = gatherHead(x, batch, head, numHeads);
  return Tensor({rows.dim(0)}, std::move(rows.data));
}

void scatterHead(Tensor &x, const Tensor &rows, std::int64_t batch, std::int64_t head,
                 std::int64_t numHeads) {
  const std::int64_t seq = x.dim(1), width = x.dim(2) / numHeads;
  for (std::int64_t t = 0; t < seq; ++t)
    for (std::int64_t d = 0; d < width; ++d)
      x.data[((batch * seq + t) * numHeads + head) * width + d] = rows.data[t * width + d];
}

MlstmHeadState gatherState(const MlstmStates &states, std::int64_t pair) {
  const std::int64_t dqk = states.C.dim(2), dv = states.C.dim(3);
  auto slice = [](const Tensor &t, std::int64_t begin, std::int64_t size) {
    return std::vector<double>(t.data.begin() + begin, t.data.begin() + begin + size);
  };
  return {Tensor({dqk, dv}, slice(states.C, pair * dqk * dv, dqk * dv)),
          Tensor({dqk}, slice(states.n, pair * dqk, dqk)), states.m.data[pair]};
}

void scatterState(MlstmStates &states, const MlstmHeadState &head, std::int64_t pair) {
  std::copy(head.C.data.begin(), head.C.data.end(), states.C.data.begin() + head.C.numel() * pair);
  std::copy(head.n.data.begin(), head.n.data.end(), states.n.data.begin() + head.n.numel() * pair);
  states.m.data[pair] = head.m;
}

} // namespace detail

namespace {

using detail::checkHeadInputs;
using detail::HeadDims;
using detail::logInputGate;

/// Final readout shared by all forms. |num| [DV] = q̂ᵀC (stabilised by e^{−m}), |den| = q̂ᵀn.
/// Writes h [DV] and returns denom (header: "Per-token outputs").
double normalise(const double *num, double den, double m, const MlstmCellAttrs &attrs,
                 std::int64_t dv, double *h) {
  if (attrs.normalizer == Normalizer::MaxAbs) {
    double denom = std::max(std::abs(den), std::exp(-m));
    for (std::int64_t e = 0; e < dv; ++e)
      h[e] = num[e] / (denom + attrs.eps);
    return denom;
  }
  double unstabilise = std::exp(m);
  for (std::int64_t e = 0; e < dv; ++e)
    h[e] = num[e] * unstabilise;
  return std::exp(-m);
}

double dot(const double *a, const double *b, std::int64_t n) {
  double acc = 0.0;
  for (std::int64_t d = 0; d < n; ++d)
    acc += a[d] * b[d];
  return acc;
}

/// One recurrent step (§2.5) on raw rows; updates |state|, writes h [DV], returns denom.
double stepInPlace(const double *q, const double *k, const double *v, double iPre, double fPre,
                   std::int64_t dqk, std::int64_t dv, MlstmHeadState &state,
                   const MlstmCellAttrs &attrs, double *h) {
  double lf = logSigmoid(fPre);
  double ig = logInputGate(iPre, attrs.inputGate);
  double mNew = std::max(lf + state.m, ig);
  double fa = std::exp(lf + state.m - mNew);
  double ia = std::exp(ig - mNew);
  double *C = state.C.data.data();
  double *n = state.n.data.data();
  for (std::int64_t d = 0; d < dqk; ++d) {
    n[d] = fa * n[d] + ia * k[d];
    for (std::int64_t e = 0; e < dv; ++e)
      C[d * dv + e] = fa * C[d * dv + e] + ia * k[d] * v[e];
  }
  state.m = mNew;

  double scale = 1.0 / std::sqrt(static_cast<double>(dqk));
  std::vector<double> num(static_cast<std::size_t>(dv), 0.0);
  double den = 0.0;
  for (std::int64_t d = 0; d < dqk; ++d) {
    double qd = q[d] * scale;
    den += qd * n[d];
    for (std::int64_t e = 0; e < dv; ++e)
      num[e] += qd * C[d * dv + e];
  }
  return normalise(num.data(), den, mNew, attrs, dv, h);
}

MlstmHeadResult emptyResult(const HeadDims &dims, const MlstmHeadState *initial) {
  MlstmHeadResult result;
  result.h = Tensor({dims.seq, dims.dv});
  result.m = Tensor({dims.seq});
  result.denom = Tensor({dims.seq});
  result.state = initial ? *initial : MlstmHeadState::zeros(dims.dqk, dims.dv);
  return result;
}

/// log D_tj = Σ_{s=j+1..t} lf_s + ig_j for j = 0..t (indices relative to |lf|, |ig|), summed
/// from t downwards so that no difference of cumulative sums is ever formed. Returns max_j log D_tj.
double logDecayRow(const std::vector<double> &lf, const std::vector<double> &ig, std::int64_t t,
                   std::vector<double> &logD) {
  double acc = 0.0;
  double maxLogD = -std::numeric_limits<double>::infinity();
  for (std::int64_t j = t; j >= 0; --j) {
    logD[j] = acc + ig[j];
    maxLogD = std::max(maxLogD, logD[j]);
    acc += lf[j];
  }
  return maxLogD;
}

} // namespace

Tensor mlstmStep(const Tensor &q, const Tensor &k, const Tensor &v, double iPre, double fPre,
                 MlstmHeadState &state, const MlstmCellAttrs &attrs, double *denom) {
  check(q.rank() == 1 && v.rank() == 1 && q.dim(0) > 0 && v.dim(0) > 0,
        "mLSTM step: q must be [DQK] and v [DV], got {} and {}", shapeString(q.shape),
        shapeString(v.shape));
  std::int64_t dqk = q.dim(0), dv = v.dim(0);
  checkShape(k, {dqk}, "mLSTM step k");
  checkShape(state.C, {dqk, dv}, "mLSTM step state C");
  checkShape(state.n, {dqk}, "mLSTM step state n");
  Tensor h({dv});
  double d = stepInPlace(q.data.data(), k.data.data(), v.data.data(), iPre, fPre, dqk, dv, state,
                         attrs, h.data.data());
  if (denom)
    *denom = d;
  return h;
}

MlstmHeadResult mlstmRecurrent(const Tensor &q, const Tensor &k, const Tensor &v,
                               const Tensor &iPre, const Tensor &fPre,
                               const MlstmHeadState *initial, const MlstmCellAttrs &attrs) {
  HeadDims dims = checkHeadInputs(q, k, v, iPre, fPre, initial, "recurrent");
  MlstmHeadResult result = emptyResult(dims, initial);
  for (std::int64_t t = 0; t < dims.seq; ++t) {
    result.denom.data[t] =
        stepInPlace(&q.data[t * dims.dqk], &k.data[t * dims.dqk], &v.data[t * dims.dv],
                    iPre.data[t], fPre.data[t], dims.dqk, dims.dv, result.state, attrs,
                    &result.h.data[t * dims.dv]);
    result.m.data[t] = result.state.m;
  }
  return result;
}

MlstmHeadResult mlstmChunkwise(const Tensor &q, const Tensor &k, const Tensor &v,
                               const Tensor &iPre, const Tensor &fPre,
                               const MlstmHeadState *initial, std::int64_t chunkSize,
                               const MlstmCellAttrs &attrs) {
  HeadDims dims = checkHeadInputs(q, k, v, iPre, fPre, initial, "chunkwise");
  check(chunkSize >= 1, "mLSTM chunkwise: chunk size must be >= 1, got {}", chunkSize);
  const std::int64_t dqk = dims.dqk, dv = dims.dv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dqk));
  MlstmHeadResult result = emptyResult(dims, initial);
  MlstmHeadState &state = result.state; // (C_{k−1}, n_{k−1}, m_{k−1}) before each chunk

  std::vector<double> lf, ig, b, a, logD, num(static_cast<std::size_t>(dv));
  for (std::int64_t start = 0; start < dims.seq; start += chunkSize) {
    const std::int64_t len = std::min(chunkSize, dims.seq - start);
    lf.assign(len, 0.0);
    ig.assign(len, 0.0);
    b.assign(len, 0.0);
    a.assign(len, 0.0);
    logD.assign(len, 0.0);
    for (std::int64_t j = 0; j < len; ++j) {
      lf[j] = logSigmoid(fPre.data[start + j]);
      ig[j] = logInputGate(iPre.data[start + j], attrs.inputGate);
    }
    // §3.1: b_j (inclusive forward cumsum, decay from the chunk start), g = b_L, and a_j by the
    // stable reverse cumsum (decay from j to the chunk end, 0 for the last position) + ĩ_j.
    for (std::int64_t j = 0; j < len; ++j)
      b[j] = (j ? b[j - 1] : 0.0) + lf[j];
    const double g = b[len - 1];
    double reverse = 0.0;
    for (std::int64_t j = len - 1; j >= 0; --j) {
      a[j] = reverse + ig[j];
      reverse += lf[j];
    }

    // §3.3: intra-chunk outputs, combined with the state before the chunk.
    const double *C = state.C.data.data();
    const double *n = state.n.data.data();
    for (std::int64_t t = 0; t < len; ++t) {
      const double *qt = &q.data[(start + t) * dqk];
      double mIntra = logDecayRow(lf, ig, t, logD);
      double mComb = std::max(b[t] + state.m, mIntra);
      double beta = std::exp(b[t] + state.m - mComb);
      // Inter-chunk part: β q̂ᵀC_{k−1} and β q̂ᵀn_{k−1}.
      std::fill(num.begin(), num.end(), 0.0);
      double den = 0.0;
      for (std::int64_t d = 0; d < dqk; ++d) {
        double qd = beta * qt[d] * scale;
        den += qd * n[d];
        for (std::int64_t e = 0; e < dv; ++e)
          num[e] += qd * C[d * dv + e];
      }
      // Intra-chunk part: Σ_j D̄_tj (q̂_tᵀk_j) v_j.
      for (std::int64_t j = 0; j <= t; ++j) {
        double w = std::exp(logD[j] - mComb) * scale * dot(qt, &k.data[(start + j) * dqk], dqk);
        den += w;
        const double *vj = &v.data[(start + j) * dv];
        for (std::int64_t e = 0; e < dv; ++e)
          num[e] += w * vj[e];
      }
      result.denom.data[start + t] =
          normalise(num.data(), den, mComb, attrs, dv, &result.h.data[(start + t) * dv]);
      result.m.data[start + t] = mComb;
    }

    // §3.2: inter-chunk recurrence to the state after this chunk.
    double mNew = g + state.m;
    for (std::int64_t j = 0; j < len; ++j)
      mNew = std::max(mNew, a[j]);
    double decay = std::exp(g + state.m - mNew);
    double *Cw = state.C.data.data();
    double *nw = state.n.data.data();
    for (std::int64_t x = 0; x < dqk * dv; ++x)
      Cw[x] *= decay;
    for (std::int64_t d = 0; d < dqk; ++d)
      nw[d] *= decay;
    for (std::int64_t j = 0; j < len; ++j) {
      double w = std::exp(a[j] - mNew);
      const double *kj = &k.data[(start + j) * dqk];
      const double *vj = &v.data[(start + j) * dv];
      for (std::int64_t d = 0; d < dqk; ++d) {
        nw[d] += w * kj[d];
        for (std::int64_t e = 0; e < dv; ++e)
          Cw[d * dv + e] += w * kj[d] * vj[e];
      }
    }
    state.m = mNew;
  }
  return result;
}

MlstmHeadOutputs mlstmParallel(const Tensor &q, const Tensor &k, const Tensor &v,
                               const Tensor &iPre, const Tensor &fPre,
                               const MlstmCellAttrs &attrs) {
  HeadDims dims = checkHeadInputs(q, k, v, iPre, fPre, nullptr, "parallel");
  const std::int64_t seq = dims.seq, dqk = dims.dqk, dv = dims.dv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dqk));
  MlstmHeadOutputs out{Tensor({seq, dv}), Tensor({seq}), Tensor({seq})};

  std::vector<double> lf(seq), ig(seq), logD(seq), num(static_cast<std::size_t>(dv));
  for (std::int64_t t = 0; t < seq; ++t) {
    lf[t] = logSigmoid(fPre.data[t]);
    ig[t] = logInputGate(iPre.data[t], attrs.inputGate);
  }
  for (std::int64_t t = 0; t < seq; ++t) {
    const double *qt = &q.data[t * dqk];
    double m = logDecayRow(lf, ig, t, logD); // m_t = max_j log D_tj: no initial-state term
    std::fill(num.begin(), num.end(), 0.0);
    double den = 0.0; // Σ_j C̃_tj
    for (std::int64_t j = 0; j <= t; ++j) {
      double w = std::exp(logD[j] - m) * scale * dot(qt, &k.data[j * dqk], dqk);
      den += w;
      const double *vj = &v.data[j * dv];
      for (std::int64_t e = 0; e < dv; ++e)
        num[e] += w * vj[e];
    }
    out.denom.data[t] = normalise(num.data(), den, m, attrs, dv, &out.h.data[t * dv]);
    out.m.data[t] = m;
  }
  return out;
}

Tensor mlstmReadoutCondition(const Tensor &q, const Tensor &k, const Tensor &v,
                             const Tensor &iPre, const Tensor &fPre,
                             const MlstmHeadState *initial, const MlstmCellAttrs &attrs) {
  HeadDims dims = checkHeadInputs(q, k, v, iPre, fPre, initial, "readout condition");
  const std::int64_t seq = dims.seq, dqk = dims.dqk, dv = dims.dv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dqk));
  // m_t, denom_t and h_t (hence num_t) of the definition come from the recurrent form.
  MlstmHeadResult rec = mlstmRecurrent(q, k, v, iPre, fPre, initial, attrs);
  const double m0 = initial ? initial->m : 0.0;

  std::vector<double> lf(seq), ig(seq), logD(seq), absQ(dqk), massNum(dv);
  for (std::int64_t t = 0; t < seq; ++t) {
    lf[t] = logSigmoid(fPre.data[t]);
    ig[t] = logInputGate(iPre.data[t], attrs.inputGate);
  }
  Tensor cond({seq});
  double decayFromStart = 0.0; // B_t
  for (std::int64_t t = 0; t < seq; ++t) {
    decayFromStart += lf[t];
    const double m = rec.m.data[t];
    for (std::int64_t d = 0; d < dqk; ++d)
      absQ[d] = std::abs(q.data[t * dqk + d]) * scale;
    double massDen = 0.0;
    std::fill(massNum.begin(), massNum.end(), 0.0);
    if (initial) {
      double beta = std::exp(decayFromStart + m0 - m);
      for (std::int64_t d = 0; d < dqk; ++d) {
        massDen += beta * absQ[d] * std::abs(initial->n.data[d]);
        for (std::int64_t e = 0; e < dv; ++e)
          massNum[e] += beta * absQ[d] * std::abs(initial->C.data[d * dv + e]);
      }
    }
    logDecayRow(lf, ig, t, logD);
    for (std::int64_t j = 0; j <= t; ++j) {
      double absQK = 0.0;
      for (std::int64_t d = 0; d < dqk; ++d)
        absQK += absQ[d] * std::abs(k.data[j * dqk + d]);
      double w = std::exp(logD[j] - m) * absQK;
      massDen += w;
      for (std::int64_t e = 0; e < dv; ++e)
        massNum[e] += w * std::abs(v.data[j * dv + e]);
    }
    const double denom = rec.denom.data[t];
    const double numFactor =
        attrs.normalizer == Normalizer::MaxAbs ? denom + attrs.eps : std::exp(-m);
    double numNorm = 0.0, massNumNorm = 0.0;
    for (std::int64_t e = 0; e < dv; ++e) {
      double num = rec.h.data[t * dv + e] * numFactor;
      numNorm += num * num;
      massNumNorm += massNum[e] * massNum[e];
    }
    double c = numNorm > 0.0 ? std::sqrt(massNumNorm / numNorm)
                             : std::numeric_limits<double>::infinity();
    if (attrs.normalizer == Normalizer::MaxAbs)
      c += massDen / denom;
    cond.data[t] = c;
  }
  return cond;
}

//===--------------------------------------------------------------------===//
// Flat layout
//===--------------------------------------------------------------------===//

MlstmStates MlstmStates::zeros(std::int64_t batch, std::int64_t numHeads, std::int64_t dqk,
                               std::int64_t dv) {
  return {Tensor({batch, numHeads, dqk, dv}), Tensor({batch, numHeads, dqk}),
          Tensor({batch, numHeads})};
}

void MlstmStates::checkShapes(std::int64_t batch, std::int64_t numHeads, std::int64_t dqk,
                              std::int64_t dv, std::string_view what) const {
  checkShape(C, {batch, numHeads, dqk, dv}, fmt::format("{} C", what));
  checkShape(n, {batch, numHeads, dqk}, fmt::format("{} n", what));
  checkShape(m, {batch, numHeads}, fmt::format("{} m", what));
}

MlstmCellResult mlstmCell(const Tensor &q, const Tensor &k, const Tensor &v, const Tensor &iPre,
                          const Tensor &fPre, std::int64_t numHeads, const MlstmStates *initial,
                          const MlstmCellAttrs &attrs, const MlstmSchedule &schedule) {
  const detail::CellDims dims =
      detail::checkCellInputs(q, k, v, iPre, fPre, numHeads, "mLSTM cell");
  if (initial)
    initial->checkShapes(dims.batch, numHeads, dims.dqk, dims.dv, "mLSTM cell initial state");
  const bool parallel = schedule.form == MlstmForm::Parallel;
  check(!(parallel && initial), "mLSTM cell: the parallel form takes no initial state");

  MlstmCellResult result;
  result.h = Tensor({dims.batch, dims.seq, numHeads * dims.dv});
  if (!parallel)
    result.state = MlstmStates::zeros(dims.batch, numHeads, dims.dqk, dims.dv);

  for (std::int64_t bi = 0; bi < dims.batch; ++bi) {
    for (std::int64_t h = 0; h < numHeads; ++h) {
      Tensor qh = detail::gatherHead(q, bi, h, numHeads), kh = detail::gatherHead(k, bi, h, numHeads),
             vh = detail::gatherHead(v, bi, h, numHeads);
      Tensor ih = detail::gatherGate(iPre, bi, h, numHeads),
             fh = detail::gatherGate(fPre, bi, h, numHeads);
      const std::int64_t pair = bi * numHeads + h;
      MlstmHeadState init;
      if (initial)
        init = detail::gatherState(*initial, pair);
      const MlstmHeadState *initPtr = initial ? &init : nullptr;

      MlstmHeadResult head;
      switch (schedule.form) {
      case MlstmForm::Recurrent:
        head = mlstmRecurrent(qh, kh, vh, ih, fh, initPtr, attrs);
        break;
      case MlstmForm::Chunkwise:
        head = mlstmChunkwise(qh, kh, vh, ih, fh, initPtr, schedule.chunkSize, attrs);
        break;
      case MlstmForm::Parallel:
        static_cast<MlstmHeadOutputs &>(head) = mlstmParallel(qh, kh, vh, ih, fh, attrs);
        break;
      }
      detail::scatterHead(result.h, head.h, bi, h, numHeads);
      if (!parallel)
        detail::scatterState(result.state, head.state, pair);
    }
  }
  return result;
}

} // namespace xlc::ref
