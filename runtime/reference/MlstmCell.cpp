//===- MlstmCell.cpp - float64 reference of the mLSTM cell ----------------===//
//
// The loops index row-major data directly (q row t is &q.data[t * DQK]) instead of going through
// Tensor::at: the sweep tests run thousands of cells and the checked accessor would dominate.
// Shapes are checked once on entry.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/MlstmCell.h"

#include "runtime/reference/BlockOps.h"
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

namespace {

struct HeadDims {
  std::int64_t seq;
  std::int64_t dqk;
  std::int64_t dv;
};

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

/// The input gate in log space: ĩ itself for the exponential gate, logσ(ĩ) for the sigmoid gate
/// (see "Input gate kind" in the header).
double logInputGate(double iPre, InputGate gate) {
  return gate == InputGate::Exp ? iPre : logSigmoid(iPre);
}

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
  check(numHeads > 0, "mLSTM cell: num_heads must be positive, got {}", numHeads);
  check(q.rank() == 3 && v.rank() == 3,
        "mLSTM cell: q and v must be [B, S, NH*D], got {} and {}", shapeString(q.shape),
        shapeString(v.shape));
  const std::int64_t batch = q.dim(0), seq = q.dim(1);
  check(q.dim(2) % numHeads == 0 && v.dim(2) % numHeads == 0 && q.dim(2) > 0 && v.dim(2) > 0,
        "mLSTM cell: feature sizes of q ({}) and v ({}) must be positive multiples of num_heads {}",
        q.dim(2), v.dim(2), numHeads);
  const std::int64_t dqk = q.dim(2) / numHeads, dv = v.dim(2) / numHeads;
  checkShape(k, q.shape, "mLSTM cell k");
  checkShape(v, {batch, seq, numHeads * dv}, "mLSTM cell v");
  checkShape(iPre, {batch, seq, numHeads}, "mLSTM cell input-gate pre-activation");
  checkShape(fPre, {batch, seq, numHeads}, "mLSTM cell forget-gate pre-activation");
  if (initial)
    initial->checkShapes(batch, numHeads, dqk, dv, "mLSTM cell initial state");
  const bool parallel = schedule.form == MlstmForm::Parallel;
  check(!(parallel && initial), "mLSTM cell: the parallel form takes no initial state");

  MlstmCellResult result;
  result.h = Tensor({batch, seq, numHeads * dv});
  if (!parallel)
    result.state = MlstmStates::zeros(batch, numHeads, dqk, dv);

  Tensor qh({seq, dqk}), kh({seq, dqk}), vh({seq, dv}), ih({seq}), fh({seq});
  for (std::int64_t bi = 0; bi < batch; ++bi) {
    for (std::int64_t h = 0; h < numHeads; ++h) {
      for (std::int64_t t = 0; t < seq; ++t) {
        std::int64_t row = bi * seq + t;
        for (std::int64_t d = 0; d < dqk; ++d) {
          qh.data[t * dqk + d] = q.data[row * numHeads * dqk + h * dqk + d];
          kh.data[t * dqk + d] = k.data[row * numHeads * dqk + h * dqk + d];
        }
        for (std::int64_t e = 0; e < dv; ++e)
          vh.data[t * dv + e] = v.data[row * numHeads * dv + h * dv + e];
        ih.data[t] = iPre.data[row * numHeads + h];
        fh.data[t] = fPre.data[row * numHeads + h];
      }

      const std::int64_t pair = bi * numHeads + h;
      MlstmHeadState init;
      if (initial) {
        init.C = Tensor({dqk, dv}, std::vector<double>(initial->C.data.begin() + pair * dqk * dv,
                                                       initial->C.data.begin() + (pair + 1) * dqk * dv));
        init.n = Tensor({dqk}, std::vector<double>(initial->n.data.begin() + pair * dqk,
                                                   initial->n.data.begin() + (pair + 1) * dqk));
        init.m = initial->m.data[pair];
      }
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

      for (std::int64_t t = 0; t < seq; ++t)
        for (std::int64_t e = 0; e < dv; ++e)
          result.h.data[(bi * seq + t) * numHeads * dv + h * dv + e] = head.h.data[t * dv + e];
      if (!parallel) {
        std::copy(head.state.C.data.begin(), head.state.C.data.end(),
                  result.state.C.data.begin() + pair * dqk * dv);
        std::copy(head.state.n.data.begin(), head.state.n.data.end(),
                  result.state.n.data.begin() + pair * dqk);
        result.state.m.data[pair] = head.state.m;
      }
    }
  }
  return result;
}

} // namespace xlc::ref
