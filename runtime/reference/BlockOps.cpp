//===- BlockOps.cpp - float64 reference of the block-level ops ------------===//

#include "runtime/reference/BlockOps.h"

#include "runtime/support/Error.h"

#include <algorithm>
#include <cmath>

namespace xlc::ref {
namespace {

/// Rows × features view of a tensor of rank ≥ 1 (the feature axis is the last one).
struct RowView {
  std::int64_t rows;
  std::int64_t features;
};

RowView rowsOf(const Tensor &x, std::string_view what) {
  check(x.rank() >= 1, "{}: expected a tensor of rank >= 1, got shape {}", what,
        shapeString(x.shape));
  std::int64_t features = x.dim(-1);
  return {features == 0 ? 0 : x.numel() / features, features};
}

void checkSameShape(const Tensor &a, const Tensor &b, std::string_view op) {
  check(a.shape == b.shape, "{}: operand shapes differ ({} vs {})", op, shapeString(a.shape),
        shapeString(b.shape));
}

template <typename Fn> Tensor map(const Tensor &x, Fn fn) {
  Tensor y(x.shape);
  for (std::size_t i = 0; i < x.data.size(); ++i)
    y.data[i] = fn(x.data[i]);
  return y;
}

template <typename Fn> Tensor zipWith(const Tensor &a, const Tensor &b, std::string_view op, Fn fn) {
  checkSameShape(a, b, op);
  Tensor y(a.shape);
  for (std::size_t i = 0; i < a.data.size(); ++i)
    y.data[i] = fn(a.data[i], b.data[i]);
  return y;
}

} // namespace

Tensor embedding(const Tensor &table, std::span<const std::int64_t> tokens,
                 const Shape &tokenShape) {
  check(table.rank() == 2, "embedding: table must be [V, D], got {}", shapeString(table.shape));
  check(static_cast<std::int64_t>(tokens.size()) == numElements(tokenShape),
        "embedding: {} token ids for token shape {}", tokens.size(), shapeString(tokenShape));
  std::int64_t vocab = table.dim(0), dim = table.dim(1);
  Shape outShape = tokenShape;
  outShape.push_back(dim);
  Tensor out(outShape);
  for (std::size_t p = 0; p < tokens.size(); ++p) {
    std::int64_t token = tokens[p];
    check(token >= 0 && token < vocab, "embedding: token id {} at flat position {} is outside [0, {})",
          token, p, vocab);
    for (std::int64_t j = 0; j < dim; ++j)
      out.data[p * dim + j] = table.data[token * dim + j];
  }
  return out;
}

Tensor rmsNorm(const Tensor &x, const Tensor &weight, double eps) {
  auto [rows, d] = rowsOf(x, "rmsNorm");
  checkShape(weight, {d}, "rmsNorm weight");
  Tensor y(x.shape);
  for (std::int64_t r = 0; r < rows; ++r) {
    const double *xr = &x.data[r * d];
    double sumSq = 0.0;
    for (std::int64_t j = 0; j < d; ++j)
      sumSq += xr[j] * xr[j];
    double scale = 1.0 / std::sqrt(sumSq / static_cast<double>(d) + eps);
    for (std::int64_t j = 0; j < d; ++j)
      y.data[r * d + j] = xr[j] * scale * weight.data[j];
  }
  return y;
}

Tensor linear(const Tensor &x, const Tensor &weight, const Tensor *bias) {
  auto [rows, in] = rowsOf(x, "linear");
  check(weight.rank() == 2 && weight.dim(1) == in,
        "linear: weight must be [out, {}] for input {}, got {}", in, shapeString(x.shape),
        shapeString(weight.shape));
  std::int64_t out = weight.dim(0);
  if (bias)
    checkShape(*bias, {out}, "linear bias");
  Shape yShape = x.shape;
  yShape.back() = out;
  Tensor y(yShape);
  for (std::int64_t r = 0; r < rows; ++r) {
    const double *xr = &x.data[r * in];
    for (std::int64_t o = 0; o < out; ++o) {
      const double *wo = &weight.data[o * in];
      double acc = bias ? bias->data[o] : 0.0;
      for (std::int64_t j = 0; j < in; ++j)
        acc += xr[j] * wo[j];
      y.data[r * out + o] = acc;
    }
  }
  return y;
}

Tensor softCap(const Tensor &x, double cap) {
  check(cap > 0.0, "softCap: cap must be positive, got {}", cap);
  return map(x, [cap](double v) { return softCap(v, cap); });
}

Tensor logSigmoid(const Tensor &x) {
  return map(x, [](double v) { return logSigmoid(v); });
}

Tensor multiHeadLayerNorm(const Tensor &x, const Tensor &weight, std::int64_t numHeads,
                          double eps) {
  auto [rows, features] = rowsOf(x, "multiHeadLayerNorm");
  check(numHeads > 0 && features % numHeads == 0,
        "multiHeadLayerNorm: {} features do not split into {} heads", features, numHeads);
  checkShape(weight, {features}, "multiHeadLayerNorm weight");
  std::int64_t dv = features / numHeads;
  Tensor y(x.shape);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t h = 0; h < numHeads; ++h) {
      std::int64_t base = r * features + h * dv;
      double mean = 0.0;
      for (std::int64_t j = 0; j < dv; ++j)
        mean += x.data[base + j];
      mean /= static_cast<double>(dv);
      double var = 0.0; // biased (divide by DV), as torch's layer_norm
      for (std::int64_t j = 0; j < dv; ++j) {
        double c = x.data[base + j] - mean;
        var += c * c;
      }
      var /= static_cast<double>(dv);
      double scale = 1.0 / std::sqrt(var + eps);
      for (std::int64_t j = 0; j < dv; ++j)
        y.data[base + j] = (x.data[base + j] - mean) * scale * weight.data[h * dv + j];
    }
  }
  return y;
}

Tensor outputGate(const Tensor &oPre, const Tensor &h) {
  return zipWith(oPre, h, "outputGate", [](double o, double v) { return sigmoid(o) * v; });
}

Tensor swiglu(const Tensor &gate, const Tensor &up) {
  return zipWith(gate, up, "swiglu", [](double g, double u) { return silu(g) * u; });
}

Tensor add(const Tensor &a, const Tensor &b) {
  return zipWith(a, b, "add", [](double x, double y) { return x + y; });
}

Tensor lmHead(const Tensor &x, const Tensor &weight, std::optional<double> logitSoftCap) {
  Tensor logits = linear(x, weight);
  return logitSoftCap ? softCap(logits, *logitSoftCap) : logits;
}

//===--------------------------------------------------------------------===//
// Gradients
//===--------------------------------------------------------------------===//

LinearGrads linearBackward(const Tensor &x, const Tensor &weight, bool hasBias, const Tensor &dy) {
  auto [rows, in] = rowsOf(x, "linear backward");
  check(weight.rank() == 2 && weight.dim(1) == in,
        "linear backward: weight must be [out, {}] for input {}, got {}", in,
        shapeString(x.shape), shapeString(weight.shape));
  const std::int64_t out = weight.dim(0);
  Shape yShape = x.shape;
  yShape.back() = out;
  checkShape(dy, yShape, "linear backward dy");
  LinearGrads g{Tensor(x.shape), Tensor(weight.shape), hasBias ? Tensor({out}) : Tensor()};
  for (std::int64_t r = 0; r < rows; ++r) {
    const double *xr = &x.data[r * in], *dyr = &dy.data[r * out];
    double *dxr = &g.x.data[r * in];
    for (std::int64_t o = 0; o < out; ++o) {
      const double d = dyr[o];
      const double *wo = &weight.data[o * in];
      double *dwo = &g.weight.data[o * in];
      for (std::int64_t j = 0; j < in; ++j) {
        dxr[j] += d * wo[j];
        dwo[j] += d * xr[j];
      }
      if (hasBias)
        g.bias.data[o] += d;
    }
  }
  return g;
}

NormGrads rmsNormBackward(const Tensor &x, const Tensor &weight, double eps, const Tensor &dy) {
  auto [rows, d] = rowsOf(x, "rmsNorm backward");
  checkShape(weight, {d}, "rmsNorm backward weight");
  checkShape(dy, x.shape, "rmsNorm backward dy");
  NormGrads g{Tensor(x.shape), Tensor({d})};
  for (std::int64_t r = 0; r < rows; ++r) {
    const double *xr = &x.data[r * d], *dyr = &dy.data[r * d];
    double sumSq = 0.0, gx = 0.0;
    for (std::int64_t j = 0; j < d; ++j) {
      sumSq += xr[j] * xr[j];
      gx += dyr[j] * weight.data[j] * xr[j];
    }
    const double scale = 1.0 / std::sqrt(sumSq / static_cast<double>(d) + eps);
    const double cubed = scale * scale * scale / static_cast<double>(d);
    for (std::int64_t j = 0; j < d; ++j) {
      g.x.data[r * d + j] = scale * dyr[j] * weight.data[j] - cubed * xr[j] * gx;
      g.weight.data[j] += dyr[j] * xr[j] * scale;
    }
  }
  return g;
}

NormGrads multiHeadLayerNormBackward(const Tensor &x, const Tensor &weight,
                                     std::int64_t numHeads, double eps, const Tensor &dy) {
  auto [rows, features] = rowsOf(x, "multiHeadLayerNorm backward");
  check(numHeads > 0 && features % numHeads == 0,
        "multiHeadLayerNorm backward: {} features do not split into {} heads", features, numHeads);
  checkShape(weight, {features}, "multiHeadLayerNorm backward weight");
  checkShape(dy, x.shape, "multiHeadLayerNorm backward dy");
  const std::int64_t dv = features / numHeads;
  const double n = static_cast<double>(dv);
  NormGrads g{Tensor(x.shape), Tensor({features})};
  std::vector<double> xhat(static_cast<std::size_t>(dv));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t h = 0; h < numHeads; ++h) {
      const std::int64_t base = r * features + h * dv;
      double mean = 0.0, var = 0.0;
      for (std::int64_t j = 0; j < dv; ++j)
        mean += x.data[base + j];
      mean /= n;
      for (std::int64_t j = 0; j < dv; ++j)
        var += (x.data[base + j] - mean) * (x.data[base + j] - mean);
      const double scale = 1.0 / std::sqrt(var / n + eps);
      double gMean = 0.0, gxMean = 0.0;
      for (std::int64_t j = 0; j < dv; ++j) {
        xhat[j] = (x.data[base + j] - mean) * scale;
        const double gj = dy.data[base + j] * weight.data[h * dv + j];
        gMean += gj;
        gxMean += gj * xhat[j];
        g.weight.data[h * dv + j] += dy.data[base + j] * xhat[j];
      }
      gMean /= n;
      gxMean /= n;
      for (std::int64_t j = 0; j < dv; ++j)
        g.x.data[base + j] =
            scale * (dy.data[base + j] * weight.data[h * dv + j] - gMean - xhat[j] * gxMean);
    }
  }
  return g;
}

Tensor softCapBackward(const Tensor &x, double cap, const Tensor &dy) {
  check(cap > 0.0, "softCap backward: cap must be positive, got {}", cap);
  return zipWith(x, dy, "softCap backward", [cap](double v, double d) {
    const double t = std::tanh(v / cap);
    return d * (1.0 - t * t);
  });
}

namespace {

/// y = γ(gate)·value: ∂L/∂gate = dy·value·γ'(gate), ∂L/∂value = dy·γ(gate).
template <typename Derivative, typename Activation>
GatedGrads gatedBackward(const Tensor &gate, const Tensor &value, const Tensor &dy,
                         std::string_view op, Derivative derivative, Activation activation) {
  checkSameShape(gate, value, op);
  checkSameShape(gate, dy, op);
  GatedGrads g{Tensor(gate.shape), Tensor(gate.shape)};
  for (std::size_t i = 0; i < dy.data.size(); ++i) {
    g.gate.data[i] = dy.data[i] * value.data[i] * derivative(gate.data[i]);
    g.value.data[i] = dy.data[i] * activation(gate.data[i]);
  }
  return g;
}

} // namespace

GatedGrads outputGateBackward(const Tensor &oPre, const Tensor &h, const Tensor &dy) {
  return gatedBackward(
      oPre, h, dy, "outputGate backward", [](double o) { return sigmoid(o) * sigmoid(-o); },
      [](double o) { return sigmoid(o); });
}

GatedGrads swigluBackward(const Tensor &gate, const Tensor &up, const Tensor &dy) {
  return gatedBackward(
      gate, up, dy, "swiglu backward",
      [](double x) {
        const double s = sigmoid(x);
        return s * (1.0 + x * (1.0 - s));
      },
      [](double x) { return silu(x); });
}

Tensor embeddingBackward(std::span<const std::int64_t> tokens, std::int64_t vocab,
                         const Tensor &dy) {
  auto [rows, dim] = rowsOf(dy, "embedding backward");
  check(static_cast<std::int64_t>(tokens.size()) == rows,
        "embedding backward: {} token ids for dy {}", tokens.size(), shapeString(dy.shape));
  Tensor table({vocab, dim});
  for (std::int64_t p = 0; p < rows; ++p) {
    const std::int64_t token = tokens[static_cast<std::size_t>(p)];
    check(token >= 0 && token < vocab,
          "embedding backward: token id {} at flat position {} is outside [0, {})", token, p, vocab);
    for (std::int64_t j = 0; j < dim; ++j)
      table.data[token * dim + j] += dy.data[p * dim + j];
  }
  return table;
}

CrossEntropy crossEntropy(const Tensor &logits, std::span<const std::int64_t> targets) {
  auto [rows, vocab] = rowsOf(logits, "cross-entropy");
  check(static_cast<std::int64_t>(targets.size()) == rows,
        "cross-entropy: {} targets for logits {}", targets.size(), shapeString(logits.shape));
  CrossEntropy ce{0.0, 0, Tensor(logits.shape)};
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t target = targets[static_cast<std::size_t>(r)];
    check(target < vocab, "cross-entropy: target {} at flat position {} is outside [0, {})", target,
          r, vocab);
    ce.count += target >= 0 ? 1 : 0;
  }
  if (ce.count == 0)
    return ce;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t target = targets[static_cast<std::size_t>(r)];
    if (target < 0)
      continue;
    const double *lr = &logits.data[r * vocab];
    const double top = *std::max_element(lr, lr + vocab);
    double sum = 0.0;
    for (std::int64_t v = 0; v < vocab; ++v)
      sum += std::exp(lr[v] - top);
    ce.loss += top + std::log(sum) - lr[target];
    for (std::int64_t v = 0; v < vocab; ++v)
      ce.dLogits.data[r * vocab + v] =
          (std::exp(lr[v] - top) / sum - (v == target ? 1.0 : 0.0)) / static_cast<double>(ce.count);
  }
  ce.loss /= static_cast<double>(ce.count);
  return ce;
}

} // namespace xlc::ref
